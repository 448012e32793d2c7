//! The SQL of runbook definitions and runs as the API sees them (the
//! engine's own claims and writes live with the engine).
//!
//! Every statement is compile-checked (`query!`/`query_as!`/
//! `query_scalar!`). Functions take a connection so callers choose the
//! transaction; rows come back as plain structs the domain turns into wire
//! types.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};

// ------------------------------------------------------------ definitions

/// A runbook with its current version.
pub struct RunbookRow {
    pub id: i64,
    pub name: String,
    pub builtin: bool,
    pub current_version: i32,
    pub definition: Value,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
}

pub async fn runbook(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<RunbookRow>> {
    sqlx::query_as!(
        RunbookRow,
        "SELECT b.id, b.name, b.builtin, b.current_version, v.definition, v.created_at, v.created_by
         FROM runbooks b JOIN runbook_versions v ON v.runbook_id = b.id AND v.version = b.current_version
         WHERE b.id = $1",
        id,
    )
    .fetch_optional(conn)
    .await
}

/// Every runbook with its current version, by name.
pub async fn runbooks(conn: &mut PgConnection) -> sqlx::Result<Vec<RunbookRow>> {
    sqlx::query_as!(
        RunbookRow,
        "SELECT b.id, b.name, b.builtin, b.current_version, v.definition, v.created_at, v.created_by
         FROM runbooks b JOIN runbook_versions v ON v.runbook_id = b.id AND v.version = b.current_version
         ORDER BY b.name",
    )
    .fetch_all(conn)
    .await
}

/// Stores version `version` and makes it the current one.
pub async fn insert_version(
    conn: &mut PgConnection,
    id: i64,
    version: i32,
    (name, definition, yaml): (&str, Value, &str),
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO runbook_versions (runbook_id, version, definition, yaml, created_by)
         VALUES ($1, $2, $3, $4, $5)",
        id,
        version,
        definition,
        yaml,
        by,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE runbooks SET name = $2, current_version = $3, updated_at = now() WHERE id = $1",
        id,
        name,
        version,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A new runbook's id, or `None` when the name is taken.
pub async fn create(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "INSERT INTO runbooks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id",
        name,
    )
    .fetch_optional(conn)
    .await
}

/// The runbook named `name` (created if missing), locked, and its next
/// version number.
pub async fn lock_or_create_by_name(
    conn: &mut PgConnection,
    name: &str,
) -> sqlx::Result<(i64, i32)> {
    sqlx::query!(
        "INSERT INTO runbooks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING",
        name
    )
    .execute(&mut *conn)
    .await?;
    let r = sqlx::query!(
        r#"SELECT b.id,
                  coalesce((SELECT max(version) FROM runbook_versions v WHERE v.runbook_id = b.id), 0) + 1
                    AS "next!: i32"
           FROM runbooks b WHERE b.name = $1 FOR UPDATE"#,
        name,
    )
    .fetch_one(conn)
    .await?;
    Ok((r.id, r.next))
}

/// Locks a runbook; its next version number (`None`: no such runbook).
pub async fn lock_next_version(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar!(
        r#"SELECT (SELECT max(version) FROM runbook_versions WHERE runbook_id = b.id) + 1 AS "next!"
           FROM runbooks b WHERE b.id = $1 FOR UPDATE"#,
        id,
    )
    .fetch_optional(conn)
    .await
}

/// Whether another runbook than `id` is named `name`.
pub async fn name_taken(conn: &mut PgConnection, name: &str, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM runbooks WHERE name = $1 AND id <> $2) AS "taken!""#,
        name,
        id,
    )
    .fetch_one(conn)
    .await
}

/// Locks a runbook; its name (`None`: no such runbook).
pub async fn lock_name(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT name FROM runbooks WHERE id = $1 FOR UPDATE", id)
        .fetch_optional(conn)
        .await
}

pub async fn run_count(conn: &mut PgConnection, runbook: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM runs WHERE runbook_id = $1"#,
        runbook
    )
    .fetch_one(conn)
    .await
}

pub async fn delete(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM runbooks WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

pub struct VersionRow {
    pub version: i32,
    pub created_at: DateTime<Utc>,
    pub created_by: Option<String>,
    pub definition: Value,
    pub yaml: String,
}

/// Every version of a runbook, newest first.
pub async fn versions(db: impl PgExecutor<'_>, id: i64) -> sqlx::Result<Vec<VersionRow>> {
    sqlx::query_as!(
        VersionRow,
        "SELECT version, created_at, created_by, definition, yaml FROM runbook_versions
         WHERE runbook_id = $1 ORDER BY version DESC",
        id,
    )
    .fetch_all(db)
    .await
}

/// A version's (runbook name, YAML text); the current one when `version`
/// is `None`.
pub async fn yaml(
    db: impl PgExecutor<'_>,
    id: i64,
    version: Option<i32>,
) -> sqlx::Result<Option<(String, String)>> {
    Ok(sqlx::query!(
        "SELECT b.name, v.yaml FROM runbooks b JOIN runbook_versions v ON v.runbook_id = b.id
         WHERE b.id = $1 AND v.version = coalesce($2, b.current_version)",
        id,
        version,
    )
    .fetch_optional(db)
    .await?
    .map(|r| (r.name, r.yaml)))
}

// ------------------------------------------------------------------ runs

/// A run as the run lists show it.
pub struct RunRow {
    pub id: i64,
    pub runbook_id: i64,
    pub runbook: String,
    pub title: String,
    pub version: i32,
    pub status: String,
    pub target: String,
    pub requested_by: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub schedule_id: Option<i64>,
    pub done_steps: i32,
    pub total_steps: i32,
}

/// The last run of each runbook.
pub async fn last_runs(conn: &mut PgConnection) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as!(
        RunRow,
        r#"SELECT r.id, r.runbook_id, b.name AS runbook,
            coalesce(v.definition->>'title', b.name) AS "title!", r.version, r.status, r.target,
            r.requested_by, r.reason, r.created_at, r.started_at, r.finished_at, r.schedule_id,
            (SELECT count(*) FILTER (WHERE s.status IN ('succeeded', 'skipped', 'failed')) FROM run_steps s
              WHERE s.run_id = r.id AND s.phase = 'main')::int AS "done_steps!",
            (SELECT count(*) FROM run_steps s WHERE s.run_id = r.id AND s.phase = 'main')::int AS "total_steps!"
         FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         JOIN runbook_versions v ON v.runbook_id = r.runbook_id AND v.version = r.version
         WHERE r.id IN (SELECT max(id) FROM runs GROUP BY runbook_id)"#,
    )
    .fetch_all(conn)
    .await
}

/// Runs, newest first, optionally of one runbook and in one status.
pub async fn runs(
    db: impl PgExecutor<'_>,
    runbook: Option<i64>,
    status: Option<&str>,
    limit: i64,
) -> sqlx::Result<Vec<RunRow>> {
    sqlx::query_as!(
        RunRow,
        r#"SELECT r.id, r.runbook_id, b.name AS runbook,
            coalesce(v.definition->>'title', b.name) AS "title!", r.version, r.status, r.target,
            r.requested_by, r.reason, r.created_at, r.started_at, r.finished_at, r.schedule_id,
            (SELECT count(*) FILTER (WHERE s.status IN ('succeeded', 'skipped', 'failed')) FROM run_steps s
              WHERE s.run_id = r.id AND s.phase = 'main')::int AS "done_steps!",
            (SELECT count(*) FROM run_steps s WHERE s.run_id = r.id AND s.phase = 'main')::int AS "total_steps!"
         FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         JOIN runbook_versions v ON v.runbook_id = r.runbook_id AND v.version = r.version
         WHERE ($1::bigint IS NULL OR r.runbook_id = $1) AND ($2::text IS NULL OR r.status = $2)
         ORDER BY r.id DESC LIMIT $3"#,
        runbook,
        status,
        limit,
    )
    .fetch_all(db)
    .await
}

/// A run with what its page shows beyond the list's columns.
pub struct RunDetailRow {
    pub id: i64,
    pub runbook_id: i64,
    pub runbook: String,
    pub title: String,
    pub version: i32,
    pub status: String,
    pub target: String,
    pub requested_by: String,
    pub reason: String,
    pub created_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub schedule_id: Option<i64>,
    pub done_steps: i32,
    pub total_steps: i32,
    pub params: Value,
    pub incident: Option<String>,
    pub parent_run_id: Option<i64>,
    pub error: Option<String>,
    pub closed_by: Option<String>,
    pub cancel_requested: bool,
    pub binding: Vec<u8>,
}

pub async fn run(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<RunDetailRow>> {
    sqlx::query_as!(
        RunDetailRow,
        r#"SELECT r.id, r.runbook_id, b.name AS runbook,
            coalesce(v.definition->>'title', b.name) AS "title!", r.version, r.status, r.target,
            r.requested_by, r.reason, r.created_at, r.started_at, r.finished_at, r.schedule_id,
            (SELECT count(*) FILTER (WHERE s.status IN ('succeeded', 'skipped', 'failed')) FROM run_steps s
              WHERE s.run_id = r.id AND s.phase = 'main')::int AS "done_steps!",
            (SELECT count(*) FROM run_steps s WHERE s.run_id = r.id AND s.phase = 'main')::int AS "total_steps!",
            r.params, r.incident, r.parent_run_id, r.error, r.closed_by, r.cancel_requested, r.binding
         FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         JOIN runbook_versions v ON v.runbook_id = r.runbook_id AND v.version = r.version
         WHERE r.id = $1"#,
        id,
    )
    .fetch_optional(conn)
    .await
}

pub struct StepRow {
    pub idx: i32,
    pub name: String,
    pub title: String,
    pub kind: String,
    pub phase: String,
    pub status: String,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub output: String,
    pub output_truncated: bool,
    pub result: Value,
    pub error: Option<String>,
    pub note: Option<String>,
}

/// A run's steps in order.
pub async fn steps(conn: &mut PgConnection, run: i64) -> sqlx::Result<Vec<StepRow>> {
    sqlx::query_as!(
        StepRow,
        "SELECT idx, name, title, kind, phase, status, started_at, finished_at, output,
                output_truncated, result, error, note
         FROM run_steps WHERE run_id = $1 ORDER BY idx",
        run,
    )
    .fetch_all(conn)
    .await
}

/// Locks a run; its (status, closed_by).
pub async fn lock_run(
    conn: &mut PgConnection,
    id: i64,
) -> sqlx::Result<Option<(String, Option<String>)>> {
    Ok(sqlx::query!(
        "SELECT status, closed_by FROM runs WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.status, r.closed_by)))
}

pub async fn request_cancel(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query!("UPDATE runs SET cancel_requested = true WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// The first main step of a run that did not succeed or was skipped.
pub async fn first_unfinished_step(conn: &mut PgConnection, run: i64) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar!(
        "SELECT min(idx) FROM run_steps WHERE run_id = $1 AND phase = 'main'
           AND status NOT IN ('succeeded', 'skipped')",
        run,
    )
    .fetch_one(conn)
    .await
}

/// Queues a run again from step `from`: the main steps from there that did
/// not succeed become pending. Fails on `runs_one_active_per_target` when
/// another run holds the target.
pub async fn requeue_from(conn: &mut PgConnection, run: i64, from: i32) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE run_steps SET status = 'pending', started_at = NULL, finished_at = NULL, error = NULL
         WHERE run_id = $1 AND phase = 'main' AND idx >= $2 AND status <> 'succeeded'",
        run,
        from,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE runs SET status = 'queued', next_step = $2, error = NULL, finished_at = NULL,
                cancel_requested = false
         WHERE id = $1",
        run,
        from,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What a re-run repeats: (runbook, params, reason, incident).
pub async fn rerun_source(
    db: impl PgExecutor<'_>,
    id: i64,
) -> sqlx::Result<Option<(i64, Value, String, Option<String>)>> {
    Ok(sqlx::query!(
        "SELECT runbook_id, params, reason, incident FROM runs WHERE id = $1",
        id
    )
    .fetch_optional(db)
    .await?
    .map(|r| (r.runbook_id, r.params, r.reason, r.incident)))
}

pub async fn close(conn: &mut PgConnection, id: i64, by: &str) -> sqlx::Result<()> {
    sqlx::query!("UPDATE runs SET closed_by = $2 WHERE id = $1", id, by)
        .execute(conn)
        .await?;
    Ok(())
}

/// Locks a step; its (kind, status, name).
pub async fn lock_step(
    conn: &mut PgConnection,
    run: i64,
    idx: i32,
) -> sqlx::Result<Option<(String, String, String)>> {
    Ok(sqlx::query!(
        "SELECT kind, status, name FROM run_steps WHERE run_id = $1 AND idx = $2 FOR UPDATE",
        run,
        idx,
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.kind, r.status, r.name)))
}

/// Marks a manual step ticked off and queues its run again.
pub async fn tick_step(
    conn: &mut PgConnection,
    run: i64,
    idx: i32,
    note: Option<&str>,
    result: Value,
    output: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE run_steps SET status = 'succeeded', finished_at = now(), note = $3,
                result = $4, output = $5
         WHERE run_id = $1 AND idx = $2",
        run,
        idx,
        note,
        result,
        output,
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("UPDATE runs SET status = 'queued' WHERE id = $1", run)
        .execute(conn)
        .await?;
    Ok(())
}
