//! Database access: choosing the server (embedded cluster or `DATABASE_URL`),
//! the connection pool, and the migrations embedded from `migrations/`.

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

use crate::config::Settings;
use crate::embedded_pg::EmbeddedPg;

/// The migrations, compiled into the binary.
pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// The database Opsdeck runs on, and the embedded cluster behind it if any.
#[derive(Debug)]
pub struct Database {
    pub pool: PgPool,
    embedded: Option<EmbeddedPg>,
}

impl Database {
    /// Connects to `DATABASE_URL`, or starts/attaches the embedded cluster.
    pub async fn open(settings: &Settings) -> anyhow::Result<Database> {
        let (options, embedded) = match &settings.database_url {
            Some(url) => (
                PgConnectOptions::from_str(url.expose())
                    .context("DATABASE_URL is not a valid Postgres URL")?,
                None,
            ),
            None => {
                let pg = EmbeddedPg::start(&settings.data_dir, settings.pg_bin.as_deref()).await?;
                (pg.connect_options(), Some(pg))
            }
        };
        let pool = pool(options).await?;
        Ok(Database { pool, embedded })
    }

    /// Closes the pool and stops an embedded cluster this process started.
    pub async fn close(mut self) {
        self.pool.close().await;
        if let Some(pg) = self.embedded.as_mut() {
            pg.stop().await;
        }
    }
}

/// A pool with Opsdeck's settings: short acquire timeout so a database outage
/// turns into clear 503s instead of hanging requests.
pub async fn pool(options: PgConnectOptions) -> anyhow::Result<PgPool> {
    PgPoolOptions::new()
        .max_connections(16)
        .min_connections(1)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options.application_name("opsdeck"))
        .await
        .context("connecting to Postgres")
}

/// Applies pending migrations.
pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR
        .run(pool)
        .await
        .context("applying database migrations")
}

/// `None` when the database schema is current, else the reason it is not.
pub async fn schema_problem(pool: &PgPool) -> Option<String> {
    let latest = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
    let applied: Result<Option<i64>, _> =
        sqlx::query_scalar("SELECT max(version) FROM _sqlx_migrations WHERE success")
            .fetch_one(pool)
            .await;
    match applied {
        Ok(Some(v)) if v >= latest => None,
        Ok(v) => Some(format!(
            "migrations not applied (database at {}, code at {latest})",
            v.unwrap_or(0)
        )),
        Err(e) => Some(format!("database unreachable: {e}")),
    }
}
