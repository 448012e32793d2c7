//! The backup catalog: plans (sources, a storage target, compression,
//! verification, schedules, retention), backup sets with one artifact per
//! stored object, their verification, restore drills and restores.
//!
//! **A backup is a run.** Running a plan, verifying a backup, a restore
//! drill and a restore are runs of the built-in runbooks `backup-run`,
//! `backup-verify`, `backup-drill` and `backup-restore` (one `backup` step
//! each, [`run`]): the one job/lease model (claimed, leased, interrupted on
//! a crash), live progress on the run page, schedules ([`timing`]) and
//! approvals ([`restore`]) from the runbook engine.
//!
//! **Sources** (one artifact each, see [`run`]): Postgres (`pg_dumpall
//! --globals-only`, then `pg_dump -Fc -Z0` per database, [`postgres`]),
//! MariaDB/MySQL (`mariadb-dump --single-transaction` per database,
//! [`mariadb`]), Docker volumes (a tar through the engine's archive API of
//! a never-started busybox helper container, [`volumes`]) and host files
//! or directories (a tar built in a thread, [`files`]). Storage targets:
//! a local directory or S3-compatible object storage ([`storage`]).
//!
//! **Nothing is marked good that is not.** A backup row is `running` until
//! every artifact is stored — complete and durable under its key (local:
//! `<key>.partial`, synced, renamed; S3: a completed multipart upload) —
//! with its SHA-256 recorded; only then `succeeded`. Any error fails the
//! artifact and the set, removes partial and stored objects of the set, and
//! opens (or finds) the incident `backup:<plan>` (objects removed before
//! the failure commits). A run that ends without finishing its backup
//! (kill -9, lost lease, cancel) leaves `running` behind; the [`sweep`]
//! turns it `interrupted`, removes its objects and opens the incident too.
//!
//! **The pipeline streams** ([`pipeline`]): the tool's stdout (or a tar
//! stream) goes through zstd (multi-threaded) and SHA-256 into the storage
//! writer; nothing is held in memory or spooled to a temporary file.
//!
//! **Verification** reads every object back and compares its checksum,
//! then test-restores it: each database dump into a scratch database on the
//! same server (`opsdeck_verify_<backup>_<idx>_<random>`, always dropped
//! afterwards) with its tables' row counts compared with those taken at
//! dump time; each volume archive into a scratch volume, read back and
//! counted; host file archives are walked and counted. Archive entries are
//! checked ([`archive`]) before anything is written anywhere.
//!
//! **Retention** ([`retention`]) prunes after each good backup; the
//! dashboard's notice ([`attention`]) names failed backups,
//! verifications and drills.
//!
//! **Layers.** [`api`] is HTTP only (extract, authorise, call, map: the
//! only file here naming `ApiError` or `axum`); [`catalog`] does the work
//! behind it and says why it refuses with [`catalog::BackupError`]
//! (turned into answers in `crate::error`); [`store`] holds the catalog's
//! SQL. The step modules ([`run`], [`restore`], [`retention`], [`timing`])
//! keep their own statements next to the work; all are compile-checked
//! except those sent to MariaDB servers ([`mariadb`]) and identifiers
//! (table names to count, database names to create or drop).

pub mod api;
pub mod archive;
pub mod attention;
pub mod catalog;
pub mod files;
pub mod mariadb;
pub mod model;
pub mod own;
pub mod pipeline;
pub mod postgres;
pub mod report;
pub mod restore;
pub mod retention;
pub mod run;
mod scratch;
pub mod storage;
pub mod store;
pub mod timing;
pub mod volumes;

use std::time::Duration;

use crate::jobs::{Pace, Scope, Task};
use crate::state::AppState;

/// The sweep as a registry task (`backups.sweep`, every 5 s, every
/// process: settling a backup is guarded by its status).
pub fn task(state: AppState) -> Task {
    Task::every(
        "backups.sweep",
        Duration::from_secs(5),
        Scope::EveryProcess,
        state,
        |state| async move {
            sweep(&state).await?;
            Ok(Pace::Normal)
        },
    )
}

/// Backups still `running` whose run has ended (interrupted, failed,
/// cancelled, or gone) become `interrupted`: their objects are removed and
/// the failure is raised like any other. Returns the backups settled.
pub async fn sweep(state: &AppState) -> anyhow::Result<Vec<i64>> {
    let stale: Vec<(i64, Option<String>)> = sqlx::query_as(
        "SELECT b.id, r.status FROM backups b LEFT JOIN runs r ON r.id = b.run_id
         WHERE b.status = 'running'
           AND (r.id IS NULL OR r.status IN ('interrupted', 'failed', 'cancelled', 'succeeded'))",
    )
    .fetch_all(&state.pool)
    .await?;
    let mut done = Vec::new();
    for (id, run_status) in stale {
        let why = format!(
            "interrupted: its run {} before the backup finished",
            run_status.as_deref().unwrap_or("disappeared")
        );
        if run::fail(state, id, "interrupted", &why).await? {
            done.push(id);
        }
    }
    Ok(done)
}
