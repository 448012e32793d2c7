//! Maintenance's SQL: periods, suppressions, windows and actuators, all
//! compile-checked (`query!` and friends). The step and its actuators
//! (`actuate`) keep their few statements next to the state machine they
//! drive.

use chrono::{DateTime, NaiveDate, Utc};
use opsdeck_wire::{Actuator, MaintenancePeriod, MaintenanceScope, PeriodStatus, Suppression};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};

use super::actuate;
use super::model::NewPeriod;

// ---------------------------------------------------------------- periods

/// A period as read for the API.
pub struct PeriodRow {
    pub id: i64,
    pub window_id: Option<i64>,
    pub title: String,
    pub reason: String,
    pub scope: Value,
    pub actuate: bool,
    pub status: String,
    pub started_by: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub enabled_at: Option<DateTime<Utc>>,
    pub ended_at: Option<DateTime<Utc>>,
    pub ended_by: Option<String>,
    pub error: Option<String>,
    pub enable_run_id: Option<i64>,
    pub disable_run_id: Option<i64>,
    pub names: Vec<String>,
    pub suppressed: i64,
}

impl PeriodRow {
    pub fn into_wire(self) -> MaintenancePeriod {
        MaintenancePeriod {
            id: self.id,
            window_id: self.window_id,
            title: self.title,
            reason: self.reason,
            scope: serde_json::from_value(self.scope).unwrap_or(MaintenanceScope::Services {
                services: Vec::new(),
            }),
            services: self.names,
            actuate: self.actuate,
            status: PeriodStatus::parse(&self.status).unwrap_or(PeriodStatus::Failed),
            started_by: self.started_by,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            enabled_at: self.enabled_at,
            ended_at: self.ended_at,
            ended_by: self.ended_by,
            error: self.error,
            enable_run_id: self.enable_run_id,
            disable_run_id: self.disable_run_id,
            suppressed: self.suppressed,
        }
    }
}

pub async fn period(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<PeriodRow>> {
    sqlx::query_as!(
        PeriodRow,
        r#"SELECT p.id, p.window_id, p.title, p.reason, p.scope, p.actuate, p.status,
            p.started_by, p.starts_at, p.ends_at, p.enabled_at, p.ended_at, p.ended_by, p.error,
            p.enable_run_id, p.disable_run_id,
            coalesce((SELECT array_agg(s.name ORDER BY s.name) FROM services s
                      WHERE s.id = ANY(p.service_ids)), '{}') AS "names!",
            (SELECT count(*) FROM maintenance_suppressions x WHERE x.period_id = p.id) AS "suppressed!"
         FROM maintenance_periods p WHERE p.id = $1"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Newest first, at most 100; `open_only`: requested or in effect.
pub async fn periods<'e>(ex: impl PgExecutor<'e>, open_only: bool) -> sqlx::Result<Vec<PeriodRow>> {
    sqlx::query_as!(
        PeriodRow,
        r#"SELECT p.id, p.window_id, p.title, p.reason, p.scope, p.actuate, p.status,
            p.started_by, p.starts_at, p.ends_at, p.enabled_at, p.ended_at, p.ended_by, p.error,
            p.enable_run_id, p.disable_run_id,
            coalesce((SELECT array_agg(s.name ORDER BY s.name) FROM services s
                      WHERE s.id = ANY(p.service_ids)), '{}') AS "names!",
            (SELECT count(*) FROM maintenance_suppressions x WHERE x.period_id = p.id) AS "suppressed!"
         FROM maintenance_periods p
         WHERE NOT $1 OR p.status IN ('requested', 'enabling', 'active', 'disabling')
         ORDER BY p.starts_at DESC, p.id DESC LIMIT 100"#,
        open_only
    )
    .fetch_all(ex)
    .await
}

pub async fn suppressions(conn: &mut PgConnection, period: i64) -> sqlx::Result<Vec<Suppression>> {
    sqlx::query_as!(
        Suppression,
        "SELECT at, source, key, message FROM maintenance_suppressions
         WHERE period_id = $1 ORDER BY at, key",
        period
    )
    .fetch_all(&mut *conn)
    .await
}

/// Serialises starts so two identical requests cannot both open a period
/// (until the transaction ends).
pub async fn lock_starts(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('opsdeck.maintenance.start'))")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

pub async fn stack_service_ids(conn: &mut PgConnection, stack: &str) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar!(
        "SELECT id FROM services WHERE compose_project = $1 ORDER BY id",
        stack
    )
    .fetch_all(&mut *conn)
    .await
}

pub async fn services_named(
    conn: &mut PgConnection,
    names: &[String],
) -> sqlx::Result<Vec<(i64, String)>> {
    let rows = sqlx::query!(
        "SELECT id, name FROM services WHERE name = ANY($1) ORDER BY id",
        names
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
}

pub async fn runbook_id<'e>(ex: impl PgExecutor<'e>, name: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT id FROM runbooks WHERE name = $1", name)
        .fetch_optional(ex)
        .await
}

pub async fn set_enable_run(conn: &mut PgConnection, period: i64, run: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE maintenance_periods SET enable_run_id = $2 WHERE id = $1",
        period,
        run
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_disable_run(conn: &mut PgConnection, period: i64, run: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE maintenance_periods SET disable_run_id = $2 WHERE id = $1",
        period,
        run
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts a period; `None` when the window occurrence already has one.
pub async fn insert_period(
    conn: &mut PgConnection,
    p: &NewPeriod<'_>,
    scope: &Value,
    actuate: bool,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "INSERT INTO maintenance_periods (window_id, occurrence_start, title, reason, scope, stack,
             service_ids, actuate, started_by, started_by_id, starts_at, ends_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (window_id, occurrence_start) WHERE window_id IS NOT NULL DO NOTHING
         RETURNING id",
        p.window.map(|w| w.0),
        p.window.map(|w| w.1),
        p.title,
        p.reason.trim(),
        scope,
        p.resolved.stack,
        &p.resolved.service_ids,
        actuate,
        p.actor.name,
        p.user,
        p.starts_at,
        p.ends_at
    )
    .fetch_optional(&mut *conn)
    .await
}

pub async fn open_with_scope(conn: &mut PgConnection, scope: &Value) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT id FROM maintenance_periods
         WHERE scope = $1 AND status IN ('requested', 'enabling', 'active', 'disabling')
         ORDER BY id LIMIT 1",
        scope
    )
    .fetch_optional(&mut *conn)
    .await
}

/// A period locked for ending.
pub struct EndRow {
    pub status: String,
    pub disable_run_id: Option<i64>,
    pub disable_status: Option<String>,
    pub enable_run_id: Option<i64>,
}

pub async fn lock_for_end(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<EndRow>> {
    sqlx::query_as!(
        EndRow,
        r#"SELECT status, disable_run_id,
                (SELECT status FROM runs WHERE id = disable_run_id) AS "disable_status?",
                enable_run_id
         FROM maintenance_periods WHERE id = $1 FOR UPDATE"#,
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

pub async fn set_ended_by(conn: &mut PgConnection, id: i64, by: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE maintenance_periods SET ended_by = $2 WHERE id = $1",
        id,
        by
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn set_ended_by_once(conn: &mut PgConnection, id: i64, by: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE maintenance_periods SET ended_by = coalesce(ended_by, $2) WHERE id = $1",
        id,
        by
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

pub async fn cancel_requested(conn: &mut PgConnection, id: i64, by: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE maintenance_periods SET status = 'cancelled', ended_at = now(), ended_by = $2
         WHERE id = $1 AND status = 'requested'",
        id,
        by
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The end of a period open and not ending, locked; `None` otherwise.
pub async fn lock_open_end(
    conn: &mut PgConnection,
    id: i64,
) -> sqlx::Result<Option<DateTime<Utc>>> {
    sqlx::query_scalar!(
        "SELECT ends_at FROM maintenance_periods WHERE id = $1
           AND status IN ('requested', 'enabling', 'active') FOR UPDATE",
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

pub async fn set_ends_at(
    conn: &mut PgConnection,
    id: i64,
    until: DateTime<Utc>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE maintenance_periods SET ends_at = $2 WHERE id = $1",
        id,
        until
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// One period whose end is due and has no disable run, locked (skipping
/// those another process holds): `(id, status, enable run)`.
pub async fn next_due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<(i64, String, Option<i64>)>> {
    let r = sqlx::query!(
        "SELECT id, status, enable_run_id FROM maintenance_periods
         WHERE ends_at <= $1 AND disable_run_id IS NULL
           AND (status IN ('enabling', 'active', 'disabling') OR status = 'requested')
         ORDER BY ends_at LIMIT 1 FOR UPDATE SKIP LOCKED",
        now
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(r.map(|r| (r.id, r.status, r.enable_run_id)))
}

/// A requested period whose enable run ended without acting.
pub struct Unsettled {
    pub id: i64,
    pub run_id: i64,
    pub run_status: String,
    pub run_error: String,
    pub refused: bool,
}

pub async fn lock_unsettled(conn: &mut PgConnection) -> sqlx::Result<Vec<Unsettled>> {
    sqlx::query_as!(
        Unsettled,
        r#"SELECT p.id, r.id AS run_id, r.status AS run_status,
                coalesce(r.error, '') AS "run_error!",
                EXISTS (SELECT 1 FROM approvals a WHERE a.run_id = r.id
                          AND a.status IN ('denied', 'expired', 'withdrawn')) AS "refused!"
         FROM maintenance_periods p JOIN runs r ON r.id = p.enable_run_id
         WHERE p.status = 'requested' AND r.status IN ('failed', 'cancelled', 'succeeded')
         FOR UPDATE OF p SKIP LOCKED"#
    )
    .fetch_all(&mut *conn)
    .await
}

pub async fn settle(conn: &mut PgConnection, id: i64, status: &str, msg: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE maintenance_periods SET status = $2, error = $3, ended_at = now() WHERE id = $1",
        id,
        status,
        msg
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------- windows

/// A stored window.
pub struct WindowRow {
    pub id: i64,
    pub title: String,
    pub reason: String,
    pub scope: Value,
    pub actuate: bool,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub repeat: String,
    pub weekdays: Vec<String>,
    pub time_zone: String,
    pub until: Option<NaiveDate>,
    pub enabled: bool,
    pub created_by: String,
    pub created_by_id: Option<i64>,
    pub created_at: DateTime<Utc>,
}

pub async fn windows<'e>(
    ex: impl PgExecutor<'e>,
    enabled_only: bool,
) -> sqlx::Result<Vec<WindowRow>> {
    sqlx::query_as!(
        WindowRow,
        "SELECT id, title, reason, scope, actuate, starts_at, ends_at, repeat,
             weekdays, time_zone, until, enabled, created_by, created_by_id, created_at
         FROM maintenance_windows WHERE enabled OR NOT $1 ORDER BY id",
        enabled_only
    )
    .fetch_all(ex)
    .await
}

pub async fn window(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<WindowRow>> {
    sqlx::query_as!(
        WindowRow,
        "SELECT id, title, reason, scope, actuate, starts_at, ends_at, repeat,
             weekdays, time_zone, until, enabled, created_by, created_by_id, created_at
         FROM maintenance_windows WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Whether the occurrence of a window starting at `start` has its period.
pub async fn occurrence_opened<'e>(
    ex: impl PgExecutor<'e>,
    window: i64,
    start: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM maintenance_periods
                          WHERE window_id = $1 AND occurrence_start = $2) AS "exists!""#,
        window,
        start
    )
    .fetch_one(ex)
    .await?;
    Ok(exists)
}

/// A window's columns as written.
pub struct WindowValues<'a> {
    pub title: &'a str,
    pub reason: &'a str,
    pub scope: &'a Value,
    pub actuate: bool,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub repeat: &'a str,
    pub weekdays: &'a [String],
    pub time_zone: &'a str,
    pub until: Option<NaiveDate>,
    pub enabled: bool,
}

pub async fn insert_window(
    conn: &mut PgConnection,
    w: &WindowValues<'_>,
    by: &str,
    by_id: i64,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO maintenance_windows (title, reason, scope, actuate, starts_at, ends_at,
                 repeat, weekdays, time_zone, until, enabled, created_by, created_by_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        w.title,
        w.reason,
        w.scope,
        w.actuate,
        w.starts_at,
        w.ends_at,
        w.repeat,
        w.weekdays,
        w.time_zone,
        w.until,
        w.enabled,
        by,
        by_id
    )
    .fetch_one(&mut *conn)
    .await
}

/// `None` when there is no such window.
pub async fn update_window(
    conn: &mut PgConnection,
    id: i64,
    w: &WindowValues<'_>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "UPDATE maintenance_windows SET title = $2, reason = $3, scope = $4, actuate = $5,
             starts_at = $6, ends_at = $7, repeat = $8, weekdays = $9, time_zone = $10,
             until = $11, enabled = $12, updated_at = now()
         WHERE id = $1 RETURNING id",
        id,
        w.title,
        w.reason,
        w.scope,
        w.actuate,
        w.starts_at,
        w.ends_at,
        w.repeat,
        w.weekdays,
        w.time_zone,
        w.until,
        w.enabled
    )
    .fetch_optional(&mut *conn)
    .await
}

/// Deletes a window; its title, `None` when there was none.
pub async fn delete_window(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "DELETE FROM maintenance_windows WHERE id = $1 RETURNING title",
        id
    )
    .fetch_optional(&mut *conn)
    .await
}

// ---------------------------------------------------------------- actuators

pub async fn actuator(conn: &mut PgConnection, stack: &str) -> sqlx::Result<Option<Actuator>> {
    let r = sqlx::query!(
        "SELECT stack, mode, config, state, changed_at, error FROM maintenance_actuators
         WHERE stack = $1",
        stack
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(r.map(|r| Actuator {
        stack: r.stack,
        def: actuate::def_from(&r.mode, &r.config),
        state: r.state,
        changed_at: r.changed_at,
        error: r.error,
    }))
}

/// Every stack (compose projects of the inventory and stacks with an
/// actuator) with its services.
pub async fn stacks(conn: &mut PgConnection) -> sqlx::Result<Vec<(String, Vec<String>)>> {
    let rows = sqlx::query!(
        r#"SELECT stack AS "stack!", COALESCE(array_agg(name ORDER BY name) FILTER (WHERE name IS NOT NULL), '{}') AS "services!"
         FROM (SELECT compose_project AS stack, name FROM services WHERE compose_project IS NOT NULL
               UNION ALL SELECT stack, NULL FROM maintenance_actuators) x
         GROUP BY stack ORDER BY stack"#
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.stack, r.services)).collect())
}

/// A period in effect that actuates the stack, if any.
pub async fn actuating_period(conn: &mut PgConnection, stack: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT id FROM maintenance_periods WHERE stack = $1 AND actuate
           AND status IN ('enabling', 'active', 'disabling') LIMIT 1",
        stack
    )
    .fetch_optional(&mut *conn)
    .await
}

pub async fn actuator_on(conn: &mut PgConnection, stack: &str) -> sqlx::Result<bool> {
    let on = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM maintenance_actuators WHERE stack = $1 AND state = 'on') AS "on!""#,
        stack
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(on)
}

pub async fn upsert_actuator(
    conn: &mut PgConnection,
    stack: &str,
    mode: &str,
    config: &Value,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO maintenance_actuators (stack, mode, config) VALUES ($1, $2, $3)
         ON CONFLICT (stack) DO UPDATE SET mode = $2, config = $3, error = NULL, updated_at = now()",
        stack,
        mode,
        config
    )
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The actuator's state, locked; `None` when the stack has none.
pub async fn lock_actuator_state(
    conn: &mut PgConnection,
    stack: &str,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT state FROM maintenance_actuators WHERE stack = $1 FOR UPDATE",
        stack
    )
    .fetch_optional(&mut *conn)
    .await
}

pub async fn delete_actuator(conn: &mut PgConnection, stack: &str) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM maintenance_actuators WHERE stack = $1", stack)
        .execute(&mut *conn)
        .await?;
    Ok(())
}
