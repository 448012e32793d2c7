//! The schedules' SQL: the ticker's reads, locks and tick claims, and the
//! API's reads and writes, compile-checked against the schema. No rules
//! here: each function is one statement.

use chrono::{DateTime, Utc};
use opsdeck_wire::ScheduleWrite;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::Checked;

/// A schedule row as the ticker's statements return it.
pub struct DueRow {
    pub id: i64,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub missed: String,
    pub checked_until: DateTime<Utc>,
    pub runbook_id: i64,
    pub params: Value,
}

/// Enabled schedules not settled up to `now` (read without locks).
pub async fn unsettled(pool: &PgPool, now: DateTime<Utc>) -> sqlx::Result<Vec<DueRow>> {
    sqlx::query_as!(
        DueRow,
        "SELECT id, name, cron, timezone, missed, checked_until, runbook_id, params
         FROM schedules WHERE enabled AND checked_until < $1 ORDER BY id",
        now
    )
    .fetch_all(pool)
    .await
}

/// Locks an enabled schedule; `None` when it is gone, disabled, or another
/// process holds it right now (`SKIP LOCKED`).
pub async fn lock_due(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<DueRow>> {
    sqlx::query_as!(
        DueRow,
        "SELECT id, name, cron, timezone, missed, checked_until, runbook_id, params
         FROM schedules WHERE id = $1 AND enabled FOR UPDATE SKIP LOCKED",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Every occurrence up to `now` is settled (never backwards).
pub async fn settled_until(
    conn: &mut PgConnection,
    id: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE schedules SET checked_until = greatest(checked_until, $2) WHERE id = $1",
        id,
        now
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Claims one tick; `false` when another process claimed it first.
pub async fn claim_tick(
    conn: &mut PgConnection,
    id: i64,
    tick: DateTime<Utc>,
    owner: &str,
) -> sqlx::Result<bool> {
    let claimed: Option<DateTime<Utc>> = sqlx::query_scalar!(
        "INSERT INTO schedule_ticks (schedule_id, tick_at, claimed_by) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING RETURNING tick_at",
        id,
        tick,
        owner
    )
    .fetch_optional(conn)
    .await?;
    Ok(claimed.is_some())
}

/// Records what a claimed tick did (its run, or why it was skipped).
pub async fn tick_outcome(
    conn: &mut PgConnection,
    id: i64,
    tick: DateTime<Utc>,
    run: Option<i64>,
    outcome: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE schedule_ticks SET run_id = $3, outcome = $4
         WHERE schedule_id = $1 AND tick_at = $2",
        id,
        tick,
        run,
        outcome
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A schedule as the API reads it (with its last tick and last run); the
/// statement is written out in [`one`] and [`all`] (the macros need
/// literal SQL).
pub struct ScheduleRow {
    pub id: i64,
    pub runbook_id: i64,
    pub runbook: String,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub params: Value,
    pub enabled: bool,
    pub missed: String,
    pub tick_at: Option<DateTime<Utc>>,
    pub run_id: Option<i64>,
    pub run_status: Option<String>,
}

pub async fn one(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<ScheduleRow>> {
    sqlx::query_as!(
        ScheduleRow,
        r#"SELECT s.id, s.runbook_id, b.name AS runbook, s.name, s.cron, s.timezone, s.params,
                  s.enabled, s.missed, t.tick_at AS "tick_at?", lr.run_id AS "run_id?",
                  r.status AS "run_status?"
           FROM schedules s
           JOIN runbooks b ON b.id = s.runbook_id
           LEFT JOIN LATERAL (SELECT tick_at FROM schedule_ticks
                              WHERE schedule_id = s.id ORDER BY tick_at DESC LIMIT 1) t ON true
           LEFT JOIN LATERAL (SELECT run_id FROM schedule_ticks
                              WHERE schedule_id = s.id AND run_id IS NOT NULL
                              ORDER BY tick_at DESC LIMIT 1) lr ON true
           LEFT JOIN runs r ON r.id = lr.run_id
           WHERE s.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn all(conn: &mut PgConnection) -> sqlx::Result<Vec<ScheduleRow>> {
    sqlx::query_as!(
        ScheduleRow,
        r#"SELECT s.id, s.runbook_id, b.name AS runbook, s.name, s.cron, s.timezone, s.params,
                  s.enabled, s.missed, t.tick_at AS "tick_at?", lr.run_id AS "run_id?",
                  r.status AS "run_status?"
           FROM schedules s
           JOIN runbooks b ON b.id = s.runbook_id
           LEFT JOIN LATERAL (SELECT tick_at FROM schedule_ticks
                              WHERE schedule_id = s.id ORDER BY tick_at DESC LIMIT 1) t ON true
           LEFT JOIN LATERAL (SELECT run_id FROM schedule_ticks
                              WHERE schedule_id = s.id AND run_id IS NOT NULL
                              ORDER BY tick_at DESC LIMIT 1) lr ON true
           LEFT JOIN runs r ON r.id = lr.run_id
           ORDER BY s.name"#
    )
    .fetch_all(conn)
    .await
}

/// The current definition of a runbook, if it exists.
pub async fn current_definition(
    conn: &mut PgConnection,
    runbook_id: i64,
) -> sqlx::Result<Option<Value>> {
    sqlx::query_scalar!(
        "SELECT v.definition FROM runbooks b
         JOIN runbook_versions v ON v.runbook_id = b.id AND v.version = b.current_version
         WHERE b.id = $1",
        runbook_id
    )
    .fetch_optional(conn)
    .await
}

pub async fn insert(
    conn: &mut PgConnection,
    w: &ScheduleWrite,
    c: &Checked,
    params: &Value,
    missed: &str,
    by: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO schedules (runbook_id, name, cron, timezone, params, enabled, missed,
                                checked_until, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, now(), $8) RETURNING id",
        w.runbook_id,
        &c.name,
        &c.cron,
        &c.timezone,
        params,
        w.enabled,
        missed,
        by
    )
    .fetch_one(conn)
    .await
}

/// What an update compares against, locked for the update.
pub struct Current {
    pub enabled: bool,
    pub cron: String,
    pub timezone: String,
}

pub async fn lock_current(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<Current>> {
    sqlx::query_as!(
        Current,
        "SELECT enabled, cron, timezone FROM schedules WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Replaces a schedule; `restart` starts its timetable now.
pub async fn update(
    conn: &mut PgConnection,
    id: i64,
    w: &ScheduleWrite,
    c: &Checked,
    params: &Value,
    missed: &str,
    restart: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE schedules SET runbook_id = $2, name = $3, cron = $4, timezone = $5, params = $6,
                enabled = $7, missed = $8, updated_at = now(),
                checked_until = CASE WHEN $9 THEN now() ELSE checked_until END
         WHERE id = $1",
        id,
        w.runbook_id,
        &c.name,
        &c.cron,
        &c.timezone,
        params,
        w.enabled,
        missed,
        restart
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a schedule; its name, or `None` when there was none.
pub async fn delete(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("DELETE FROM schedules WHERE id = $1 RETURNING name", id)
        .fetch_optional(conn)
        .await
}
