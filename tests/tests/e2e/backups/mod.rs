//! The backup catalog end to end: Postgres sources on the test cluster
//! (real `pg_dump`, `pg_dumpall`, `pg_restore`), a local directory target,
//! runs of the built-in `backup-run` / `backup-verify` runbooks, the files
//! they leave (checked byte for byte, decompressed and restored here with
//! the real tools, data compared), download, delete, failures and a
//! kill -9 mid-backup with real `opsdeck serve` processes.
//!
//! Each source database is a service with a Postgres check made through the
//! API, as an operator would, pointing at a database created on the test
//! cluster for the test.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use opsdeck_e2e::fixtures::{
    backup_ids_from, cluster_conn, content_digest, create_db, drop_db, files_under, fill_ledger,
    pg_tool, row_counts, sha256_hex, socket_dir, unique, unzstd, LEDGER_TABLES,
};
use opsdeck_e2e::flows::audit::audit;
use opsdeck_e2e::flows::backups::{
    backup_incidents, backups, cluster_service, create_plan, create_target, detail, finished,
    pg_service, postgres_plan, report_line, run_plan, run_text, started,
};
use opsdeck_e2e::server::TestServer;
use opsdeck_e2e::util::{expect_error, ok_json, poll};
use opsdeck_wire::{
    AuditPage, AuditVerifyReport, BackupPlan, BackupStatus, BackupTarget, CheckStatus, Outcome,
    Role, Run, RunStatus, Service, Verification,
};
use serde_json::{json, Value};
use sqlx::{Connection, Executor};

mod browser;
mod failures;
mod round_trip;
mod validation;
