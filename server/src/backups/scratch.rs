//! What a test restore needs of a database server, for Postgres and
//! MariaDB alike: a scratch database made and always dropped again, the
//! restore tool pointed at it, its row counts, and messages scrubbed of the
//! server's password. [`super::run`] verifies every database dump through
//! this one path.

use std::collections::BTreeMap;

use tokio::process::Command;

use super::mariadb::{self, MyTarget};
use super::postgres::{self, PgTarget};

/// A database server a dump can be test-restored on.
pub(crate) trait ScratchServer: Sync {
    /// Removes the server's password from a message.
    fn scrub(&self, msg: String) -> String;
    /// The restore tool reading a dump from stdin into `db`.
    fn restore_cmd(&self, db: &str) -> Command;
    /// Creates the empty scratch database `name` (`opsdeck_verify_…`).
    async fn create_scratch(&self, name: &str) -> Result<(), String>;
    /// Drops the scratch database `name` if it exists.
    async fn drop_scratch(&self, name: &str) -> Result<(), String>;
    /// Rows per table of `db`.
    async fn row_counts(&self, db: &str) -> Result<BTreeMap<String, i64>, String>;
}

impl ScratchServer for PgTarget {
    fn scrub(&self, msg: String) -> String {
        postgres::scrub(self, msg)
    }
    fn restore_cmd(&self, db: &str) -> Command {
        postgres::restore_cmd(self, db)
    }
    async fn create_scratch(&self, name: &str) -> Result<(), String> {
        postgres::create_database(self, name).await
    }
    async fn drop_scratch(&self, name: &str) -> Result<(), String> {
        postgres::drop_database(self, name).await
    }
    async fn row_counts(&self, db: &str) -> Result<BTreeMap<String, i64>, String> {
        postgres::row_counts(self, db).await
    }
}

impl ScratchServer for MyTarget {
    fn scrub(&self, msg: String) -> String {
        mariadb::scrub(self, msg)
    }
    fn restore_cmd(&self, db: &str) -> Command {
        mariadb::restore_cmd(self, db)
    }
    async fn create_scratch(&self, name: &str) -> Result<(), String> {
        mariadb::create_database(self, name, false).await
    }
    async fn drop_scratch(&self, name: &str) -> Result<(), String> {
        mariadb::drop_database(self, name, false).await
    }
    async fn row_counts(&self, db: &str) -> Result<BTreeMap<String, i64>, String> {
        mariadb::row_counts(self, db).await
    }
}
