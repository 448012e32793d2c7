//! Maintenance mode and maintenance windows.
//!
//! **Periods.** One stretch of maintenance is a row of `maintenance_periods`:
//! turned on by hand (`POST /api/v1/maintenance/periods`) or one occurrence
//! of a scheduled window ([`windows`], [`recurrence`]). Its life is
//! `requested → enabling → active → disabling → ended`, or `failed` (enabling
//! failed and was rolled back) or `cancelled` (it never started). While it is
//! *in effect* (enabling, active, disabling) its services show `maintenance`
//! on the board and the public page, their checks keep running, and what they
//! would raise is recorded as a suppression instead ([`suppress`]): no
//! incident from a down root service, none from Alertmanager alerts for them,
//! and escalation levels of open incidents on them are held until it ends.
//!
//! **Actuation is a run.** Enabling and disabling are the built-in runbooks
//! `maintenance-enable` and `maintenance-disable` (one `maintenance` step
//! each, [`actuate`]). So they share the one job/lease model of runs
//! (claimed, leased, interrupted on a crash, resumable), show progress live
//! on the run page, and an approval policy on the action kind
//! `maintenance.enable` gates maintenance like any other dangerous step.
//!
//! **Exactly once with several servers.** Every process runs the registry
//! tasks of [`tasks`] ([`crate::jobs`]): a ticker ([`tick`], `maintenance`) that starts each window occurrence once (a unique index
//! on `(window_id, occurrence_start)`), ends due periods once (a conditional
//! `UPDATE … WHERE disable_run_id IS NULL`), and settles periods whose enable
//! run ended without acting, and reloads this process's status board marks
//! every 5 s (`maintenance.marks`); between reloads, `NOTIFY opsdeck_maintenance` (followed by
//! [`crate::fanout`]) keeps them current at once.
//!
//! **Per-stack actuation** (`maintenance_actuators`) changes a stack under
//! a Postgres advisory lock per stack, with its state (`off → enabling → on →
//! disabling → off`) and what it replaced (`saved`) written before the first
//! change, so an interrupted change is undone by the next enable or disable.
//! Overlapping periods share the actuation: the stack goes back only when the
//! last period in effect ends; enabling a stack that is already on changes
//! nothing.

pub mod actuate;
pub mod api;
pub mod error;
pub mod hold;
pub mod model;
pub mod page;
pub mod proxy;
pub mod recurrence;
pub mod store;
pub mod windows;

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use opsdeck_wire::{MaintenanceBanner, MaintenanceMark, PeriodStatus, ServiceHealth};
use serde_json::json;
use sqlx::PgConnection;

use crate::jobs::{Pace, Scope, Task};
use crate::state::AppState;
use crate::timeline;

/// Postgres NOTIFY channel of maintenance changes (payload: the period id).
pub const CHANNEL: &str = crate::fanout::MAINTENANCE;

/// Queues a NOTIFY that every process receives when the surrounding
/// transaction commits (their boards follow).
pub async fn touch(conn: &mut PgConnection, period_id: i64) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_notify($1, $2)", CHANNEL, period_id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The registry tasks: `maintenance` ([`tick`] every second) and
/// `maintenance.marks` (reloads the board marks every 5 s; the
/// notifications of [`CHANNEL`] reach [`refresh_marks`] through
/// [`crate::fanout`] in between). Every process runs both.
///
/// Also registers maintenance's [`hold::MAINTENANCE`] with incidents (which
/// asks it whether an alarm is held), once, before the first tick.
pub fn tasks(state: AppState) -> Vec<Task> {
    crate::incidents::hold::register(&hold::MAINTENANCE);
    crate::fanout::follow(CHANNEL, follow_marks);
    vec![
        Task::every(
            "maintenance",
            Duration::from_secs(1),
            Scope::EveryProcess,
            state.clone(),
            |state| async move {
                tick(&state, Utc::now()).await?;
                Ok(Pace::Normal)
            },
        ),
        Task::every(
            "maintenance.marks",
            Duration::from_secs(5),
            Scope::EveryProcess,
            state,
            |state| async move {
                refresh_marks(&state).await;
                Ok(Pace::Normal)
            },
        )
        .delay_first(),
    ]
}

/// The fanout follower of [`CHANNEL`]: any maintenance change (or a
/// reconnect) re-reads the marks.
fn follow_marks<'a>(state: &'a AppState, _period: Option<&'a str>) -> BoxFuture<'a, ()> {
    Box::pin(refresh_marks(state))
}

/// Re-reads the periods in effect and hands the marks to the status board.
pub async fn refresh_marks(state: &AppState) {
    match load_marks(&state.pool).await {
        Ok((marks, banners)) => state.health().set_maintenance(marks, banners),
        Err(e) => tracing::warn!(error = %e, "maintenance: loading periods failed"),
    }
}

/// The marks of services covered by periods in effect (the period ending
/// last wins), and the banner lines.
pub async fn load_marks(
    pool: &sqlx::PgPool,
) -> sqlx::Result<(HashMap<i64, MaintenanceMark>, Vec<MaintenanceBanner>)> {
    let rows = sqlx::query!(
        r#"SELECT p.id, p.title, p.reason, p.status, p.started_by, p.ends_at, p.service_ids,
                coalesce((SELECT array_agg(s.name ORDER BY s.name) FROM services s
                          WHERE s.id = ANY(p.service_ids)), '{}') AS "names!"
         FROM maintenance_periods p WHERE p.status IN ('enabling', 'active', 'disabling')
         ORDER BY p.ends_at, p.id"#
    )
    .fetch_all(pool)
    .await?;
    let mut marks = HashMap::new();
    let mut banners = Vec::with_capacity(rows.len());
    for r in rows {
        let id = r.id;
        let until: DateTime<Utc> = r.ends_at;
        let reason = r.reason;
        let started_by = r.started_by;
        for sid in r.service_ids {
            // Ordered by end: the period ending last overwrites.
            marks.insert(
                sid,
                MaintenanceMark {
                    period_id: id,
                    reason: reason.clone(),
                    started_by: started_by.clone(),
                    until,
                    observed: ServiceHealth::Unknown,
                },
            );
        }
        banners.push(MaintenanceBanner {
            period_id: id,
            title: r.title,
            reason,
            status: PeriodStatus::parse(&r.status).unwrap_or(PeriodStatus::Active),
            started_by,
            until,
            services: r.names,
        });
    }
    Ok((marks, banners))
}

/// Records an alarm a period held back, once per (period, source, key): a
/// suppression row and a line on the period's timeline. Returns whether it
/// was new.
pub async fn suppress(
    conn: &mut PgConnection,
    period_id: i64,
    source: &str,
    key: &str,
    message: &str,
) -> sqlx::Result<bool> {
    let new = sqlx::query_scalar!(
        "INSERT INTO maintenance_suppressions (period_id, source, key, message)
         VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING period_id",
        period_id,
        source,
        key,
        message
    )
    .fetch_optional(&mut *conn)
    .await?;
    if new.is_none() {
        return Ok(false);
    }
    timeline::append(
        conn,
        "maintenance",
        period_id,
        "suppressed",
        Some(&crate::audit::Actor::system("maintenance")),
        None,
        &format!("Suppressed ({source}): {message}"),
        json!({ "source": source, "key": key }),
    )
    .await?;
    touch(conn, period_id).await?;
    Ok(true)
}

/// The period in effect covering every one of `service_ids` (the one ending
/// last), if they are all covered. `None` for an empty list.
pub async fn covering(conn: &mut PgConnection, service_ids: &[i64]) -> sqlx::Result<Option<i64>> {
    if service_ids.is_empty() {
        return Ok(None);
    }
    let r = sqlx::query!(
        r#"SELECT
           (SELECT count(*) FROM unnest($1::bigint[]) AS s(id)
             WHERE NOT EXISTS (SELECT 1 FROM maintenance_periods p
                               WHERE p.status IN ('enabling', 'active', 'disabling')
                                 AND s.id = ANY(p.service_ids))) AS "uncovered!",
           (SELECT p.id FROM maintenance_periods p
             WHERE p.status IN ('enabling', 'active', 'disabling') AND p.service_ids && $1::bigint[]
             ORDER BY p.ends_at DESC, p.id DESC LIMIT 1) AS "period?""#,
        service_ids
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(if r.uncovered == 0 { r.period } else { None })
}

/// The period holding an incident's pages: every root service of it (or,
/// without roots, every service) is in maintenance.
pub async fn holding_incident(
    conn: &mut PgConnection,
    incident_id: i64,
) -> sqlx::Result<Option<i64>> {
    let ids: Vec<i64> = sqlx::query_scalar!(
        "SELECT service_id FROM incident_services WHERE incident_id = $1
           AND (role = 'root' OR NOT EXISTS (SELECT 1 FROM incident_services
                                              WHERE incident_id = $1 AND role = 'root'))",
        incident_id
    )
    .fetch_all(&mut *conn)
    .await?;
    covering(conn, &ids).await
}

/// What one tick did (for tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// Periods created for window occurrences.
    pub started: Vec<i64>,
    /// Periods whose end was due (disable queued, or cancelled).
    pub ended: Vec<i64>,
    /// Requested periods settled because their enable run ended.
    pub settled: Vec<i64>,
}

/// Starts due window occurrences, ends due periods and settles periods whose
/// enable run ended without acting. Safe in every process at once.
pub async fn tick(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<TickReport> {
    let mut report = TickReport {
        started: windows::start_due(state, now).await?,
        ..Default::default()
    };
    report.ended = model::end_due(state, now).await?;
    report.settled = model::settle_requested(state).await?;
    Ok(report)
}
