//! Periods: reading, opening (by hand or for a window occurrence), ending,
//! extending, and the ticker's sweeps.
//!
//! Opening a period and queueing its enable run happen in one transaction,
//! so a period always has its run; so does queueing the disable run and
//! recording who ended it.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use opsdeck_wire::{MaintenancePeriod, MaintenanceScope, PeriodStatus};
use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::audit::Actor;
use crate::error::{ApiError, ApiResult};
use crate::runbooks::engine::{enqueue, NewRun};
use crate::state::AppState;
use crate::timeline;

use super::{touch, IN_EFFECT};

/// The furthest ahead a period may end (extend it again if needed).
pub const MAX_AHEAD: ChronoDuration = ChronoDuration::days(7);
/// Built-in runbooks that apply and undo a period.
pub const ENABLE_RUNBOOK: &str = "maintenance-enable";
pub const DISABLE_RUNBOOK: &str = "maintenance-disable";

pub const SELECT: &str =
    "SELECT p.id, p.window_id, p.title, p.reason, p.scope, p.actuate, p.status,
        p.started_by, p.starts_at, p.ends_at, p.enabled_at, p.ended_at, p.ended_by, p.error,
        p.enable_run_id, p.disable_run_id, p.stack, p.service_ids, p.started_by_id,
        coalesce((SELECT array_agg(s.name ORDER BY s.name) FROM services s
                  WHERE s.id = ANY(p.service_ids)), '{}') AS names,
        (SELECT count(*) FROM maintenance_suppressions x WHERE x.period_id = p.id) AS suppressed
     FROM maintenance_periods p";

pub fn from_row(r: &PgRow) -> MaintenancePeriod {
    MaintenancePeriod {
        id: r.get("id"),
        window_id: r.get("window_id"),
        title: r.get("title"),
        reason: r.get("reason"),
        scope: serde_json::from_value(r.get("scope")).unwrap_or(MaintenanceScope::Services {
            services: Vec::new(),
        }),
        services: r.get("names"),
        actuate: r.get("actuate"),
        status: PeriodStatus::parse(r.get("status")).unwrap_or(PeriodStatus::Failed),
        started_by: r.get("started_by"),
        starts_at: r.get("starts_at"),
        ends_at: r.get("ends_at"),
        enabled_at: r.get("enabled_at"),
        ended_at: r.get("ended_at"),
        ended_by: r.get("ended_by"),
        error: r.get("error"),
        enable_run_id: r.get("enable_run_id"),
        disable_run_id: r.get("disable_run_id"),
        suppressed: r.get("suppressed"),
    }
}

pub async fn load(conn: &mut PgConnection, id: i64) -> ApiResult<MaintenancePeriod> {
    let r = sqlx::query(&format!("{SELECT} WHERE p.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("maintenance period {id}")))?;
    Ok(from_row(&r))
}

/// A scope checked against the inventory: canonical form (services sorted),
/// the stack (for a stack scope) and the service ids it covers now.
#[derive(Debug, Clone)]
pub struct Resolved {
    pub scope: MaintenanceScope,
    pub stack: Option<String>,
    pub service_ids: Vec<i64>,
}

pub async fn resolve_scope(
    conn: &mut PgConnection,
    scope: &MaintenanceScope,
) -> Result<Resolved, String> {
    match scope {
        MaintenanceScope::Stack { stack } => {
            let stack = stack.trim();
            if stack.is_empty() {
                return Err("scope.stack: required".into());
            }
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM services WHERE compose_project = $1 ORDER BY id",
            )
            .bind(stack)
            .fetch_all(&mut *conn)
            .await
            .map_err(|e| e.to_string())?;
            if ids.is_empty() {
                return Err(format!(
                    "scope.stack: no service of the inventory belongs to the stack \"{}\"",
                    stack.escape_default()
                ));
            }
            Ok(Resolved {
                scope: MaintenanceScope::Stack {
                    stack: stack.to_owned(),
                },
                stack: Some(stack.to_owned()),
                service_ids: ids,
            })
        }
        MaintenanceScope::Services { services } => {
            let mut names: Vec<String> = services.iter().map(|s| s.trim().to_owned()).collect();
            names.sort();
            names.dedup();
            names.retain(|n| !n.is_empty());
            if names.is_empty() {
                return Err("scope.services: name at least one service".into());
            }
            if names.len() > 500 {
                return Err("scope.services: at most 500 services".into());
            }
            let found: Vec<(i64, String)> =
                sqlx::query_as("SELECT id, name FROM services WHERE name = ANY($1) ORDER BY id")
                    .bind(&names)
                    .fetch_all(&mut *conn)
                    .await
                    .map_err(|e| e.to_string())?;
            if let Some(missing) = names.iter().find(|n| !found.iter().any(|(_, f)| f == *n)) {
                return Err(format!(
                    "scope.services: no service named \"{}\"",
                    missing.escape_default()
                ));
            }
            Ok(Resolved {
                scope: MaintenanceScope::Services { services: names },
                stack: None,
                service_ids: found.into_iter().map(|(id, _)| id).collect(),
            })
        }
    }
}

pub fn check_reason(reason: &str) -> Result<(), String> {
    if reason.chars().count() > 2000 {
        return Err("reason: at most 2000 characters".into());
    }
    Ok(())
}

pub fn check_until(until: DateTime<Utc>, now: DateTime<Utc>) -> Result<(), String> {
    if until <= now {
        return Err("until: must be in the future".into());
    }
    if until > now + MAX_AHEAD {
        return Err("until: at most 7 days ahead (extend the period later if needed)".into());
    }
    Ok(())
}

async fn builtin(conn: &mut PgConnection, name: &str) -> ApiResult<i64> {
    sqlx::query_scalar("SELECT id FROM runbooks WHERE name = $1")
        .bind(name)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "the built-in runbook {name} is missing (it is seeded at start-up when absent)"
            ))
        })
}

/// Queues the enable or disable run of a period (in the caller's
/// transaction). The caller calls `state.runs.changed(run)` after commit.
pub async fn queue_run(
    state: &AppState,
    conn: &mut PgConnection,
    period: i64,
    enable: bool,
    actor: &Actor,
    user: Option<i64>,
    reason: &str,
) -> ApiResult<i64> {
    let runbook_id = builtin(
        conn,
        if enable {
            ENABLE_RUNBOOK
        } else {
            DISABLE_RUNBOOK
        },
    )
    .await?;
    let params: BTreeMap<String, Value> = [("period".to_owned(), json!(period))].into();
    let run = enqueue(
        state,
        conn,
        NewRun {
            runbook_id,
            params,
            reason: reason.chars().take(2000).collect(),
            incident: None,
            requested_by: actor.clone(),
            requested_by_user: user,
            schedule_id: None,
            parent: None,
        },
    )
    .await?;
    sqlx::query(if enable {
        "UPDATE maintenance_periods SET enable_run_id = $2 WHERE id = $1"
    } else {
        "UPDATE maintenance_periods SET disable_run_id = $2 WHERE id = $1"
    })
    .bind(period)
    .bind(run)
    .execute(&mut *conn)
    .await?;
    Ok(run)
}

/// A period to open.
pub struct NewPeriod<'a> {
    pub window: Option<(i64, DateTime<Utc>)>,
    pub title: String,
    pub reason: String,
    pub resolved: Resolved,
    pub actuate: bool,
    pub actor: &'a Actor,
    pub user: Option<i64>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Inserts a period and queues its enable run, in the caller's transaction.
/// Returns `(period, run)`; `None` when the window occurrence already has
/// its period.
pub async fn open(
    state: &AppState,
    conn: &mut PgConnection,
    p: NewPeriod<'_>,
) -> ApiResult<Option<(i64, i64)>> {
    let actuate = p.actuate && p.resolved.stack.is_some();
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO maintenance_periods (window_id, occurrence_start, title, reason, scope, stack,
             service_ids, actuate, started_by, started_by_id, starts_at, ends_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (window_id, occurrence_start) WHERE window_id IS NOT NULL DO NOTHING
         RETURNING id",
    )
    .bind(p.window.map(|w| w.0))
    .bind(p.window.map(|w| w.1))
    .bind(&p.title)
    .bind(p.reason.trim())
    .bind(serde_json::to_value(&p.resolved.scope).map_err(anyhow::Error::from)?)
    .bind(&p.resolved.stack)
    .bind(&p.resolved.service_ids)
    .bind(actuate)
    .bind(&p.actor.name)
    .bind(p.user)
    .bind(p.starts_at)
    .bind(p.ends_at)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = id else { return Ok(None) };
    let why = if p.reason.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", p.reason.trim())
    };
    timeline::append(
        conn,
        "maintenance",
        id,
        "requested",
        Some(p.actor),
        None,
        &format!(
            "Maintenance requested by {} until {}{why}",
            p.actor.name,
            p.ends_at.format("%Y-%m-%d %H:%M UTC")
        ),
        json!({ "scope": p.resolved.scope, "actuate": actuate }),
    )
    .await?;
    let run = queue_run(state, conn, id, true, p.actor, p.user, &p.title).await?;
    touch(conn, id).await?;
    Ok(Some((id, run)))
}

/// The open period with exactly this scope, if any (enabling twice changes
/// nothing).
pub async fn open_with_scope(
    conn: &mut PgConnection,
    scope: &MaintenanceScope,
) -> ApiResult<Option<i64>> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM maintenance_periods
         WHERE scope = $1 AND status IN ('requested', 'enabling', 'active', 'disabling')
         ORDER BY id LIMIT 1",
    )
    .bind(serde_json::to_value(scope).map_err(anyhow::Error::from)?)
    .fetch_optional(&mut *conn)
    .await?)
}

/// What ending a period did.
pub enum Ending {
    /// The disable run was queued.
    Queued(i64),
    /// It had not started: cancelled at once (its enable run withdrawn).
    Cancelled,
}

/// Ends an open period (in the caller's transaction): a requested one is
/// cancelled at once, one in effect gets its disable run — unless one is
/// already under way (409).
pub async fn end(
    state: &AppState,
    conn: &mut PgConnection,
    id: i64,
    actor: &Actor,
    user: Option<i64>,
    why: &str,
) -> ApiResult<Ending> {
    let r = sqlx::query(
        "SELECT status, disable_run_id,
                (SELECT status FROM runs WHERE id = disable_run_id) AS disable_status,
                enable_run_id
         FROM maintenance_periods WHERE id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("maintenance period {id}")))?;
    let status = PeriodStatus::parse(r.get("status")).unwrap_or(PeriodStatus::Failed);
    match status {
        PeriodStatus::Requested => {
            cancel(conn, id, actor, why, r.get("enable_run_id")).await?;
            Ok(Ending::Cancelled)
        }
        s if s.is_in_effect() => {
            let busy = r
                .get::<Option<String>, _>("disable_status")
                .is_some_and(|s| {
                    matches!(s.as_str(), "queued" | "running" | "waiting" | "succeeded")
                });
            if busy {
                return Err(ApiError::Conflict(format!(
                    "maintenance period {id} is already ending (run #{})",
                    r.get::<Option<i64>, _>("disable_run_id")
                        .unwrap_or_default()
                )));
            }
            sqlx::query("UPDATE maintenance_periods SET ended_by = $2 WHERE id = $1")
                .bind(id)
                .bind(&actor.name)
                .execute(&mut *conn)
                .await?;
            timeline::append(
                conn,
                "maintenance",
                id,
                "end_requested",
                Some(actor),
                None,
                &format!("End requested by {}{why}", actor.name),
                json!({}),
            )
            .await?;
            let run = queue_run(state, conn, id, false, actor, user, "end of maintenance").await?;
            touch(conn, id).await?;
            Ok(Ending::Queued(run))
        }
        other => Err(ApiError::Conflict(format!(
            "maintenance period {id} is {}; only open periods can be ended",
            other.as_str()
        ))),
    }
}

/// Cancels a requested period and withdraws its enable run if it is still
/// queued or waiting (for an approval).
async fn cancel(
    conn: &mut PgConnection,
    id: i64,
    actor: &Actor,
    why: &str,
    enable_run: Option<i64>,
) -> ApiResult<()> {
    sqlx::query(
        "UPDATE maintenance_periods SET status = 'cancelled', ended_at = now(), ended_by = $2
         WHERE id = $1 AND status = 'requested'",
    )
    .bind(id)
    .bind(&actor.name)
    .execute(&mut *conn)
    .await?;
    if let Some(run) = enable_run {
        let why = format!("maintenance period {id} cancelled");
        if crate::runbooks::engine::withdraw(conn, run, &why).await? {
            timeline::append(
                conn,
                "run",
                run,
                "run.cancelled",
                Some(actor),
                None,
                &format!("Cancelled: maintenance period {id} ended before it started"),
                json!({}),
            )
            .await?;
        }
    }
    timeline::append(
        conn,
        "maintenance",
        id,
        "cancelled",
        Some(actor),
        None,
        &format!("Cancelled by {} before it started{why}", actor.name),
        json!({}),
    )
    .await?;
    touch(conn, id).await?;
    Ok(())
}

/// Moves an open period's end (in the caller's transaction).
pub async fn extend(
    conn: &mut PgConnection,
    id: i64,
    until: DateTime<Utc>,
    actor: &Actor,
) -> ApiResult<()> {
    let old: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT ends_at FROM maintenance_periods WHERE id = $1
           AND status IN ('requested', 'enabling', 'active') FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(old) = old else {
        load(conn, id).await?;
        return Err(ApiError::Conflict(format!(
            "maintenance period {id} is not open (or already ending); it cannot be extended"
        )));
    };
    sqlx::query("UPDATE maintenance_periods SET ends_at = $2 WHERE id = $1")
        .bind(id)
        .bind(until)
        .execute(&mut *conn)
        .await?;
    timeline::append(
        conn,
        "maintenance",
        id,
        "extended",
        Some(actor),
        None,
        &format!(
            "End moved by {} from {} to {}",
            actor.name,
            old.format("%Y-%m-%d %H:%M UTC"),
            until.format("%Y-%m-%d %H:%M UTC")
        ),
        json!({ "from": old, "to": until }),
    )
    .await?;
    touch(conn, id).await?;
    Ok(())
}

/// Ends every period whose end is due: in effect → disable run queued once;
/// requested → cancelled.
pub async fn end_due(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<Vec<i64>> {
    let mut done = Vec::new();
    let actor = Actor::system("maintenance-schedule");
    loop {
        let mut tx = state.pool.begin().await?;
        let due: Option<(i64, String, Option<i64>)> = sqlx::query_as(&format!(
            "SELECT id, status, enable_run_id FROM maintenance_periods
             WHERE ends_at <= $1 AND disable_run_id IS NULL
               AND (status IN {IN_EFFECT} OR status = 'requested')
             ORDER BY ends_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        ))
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((id, status, enable_run)) = due else {
            break;
        };
        let mut run = None;
        if status == "requested" {
            cancel(&mut tx, id, &actor, " (its end passed first)", enable_run)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        } else {
            sqlx::query(
                "UPDATE maintenance_periods SET ended_by = coalesce(ended_by, $2) WHERE id = $1",
            )
            .bind(id)
            .bind(&actor.name)
            .execute(&mut *tx)
            .await?;
            timeline::append(
                &mut tx,
                "maintenance",
                id,
                "end_requested",
                Some(&actor),
                None,
                "The period's end is reached: ending maintenance",
                json!({}),
            )
            .await?;
            run = Some(
                queue_run(
                    state,
                    &mut tx,
                    id,
                    false,
                    &actor,
                    None,
                    "end of maintenance (scheduled)",
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            );
            touch(&mut tx, id).await?;
        }
        tx.commit().await?;
        if let Some(run) = run {
            state.runs.changed(run).await;
        }
        done.push(id);
    }
    Ok(done)
}

/// Requested periods whose enable run ended without acting (denied,
/// expired, cancelled, failed before the step) are settled: `cancelled`
/// when it was cancelled or denied, `failed` otherwise.
pub async fn settle_requested(state: &AppState) -> anyhow::Result<Vec<i64>> {
    let mut tx = state.pool.begin().await?;
    let rows = sqlx::query(
        "SELECT p.id, r.id AS run_id, r.status AS run_status, coalesce(r.error, '') AS run_error,
                EXISTS (SELECT 1 FROM approvals a WHERE a.run_id = r.id
                          AND a.status IN ('denied', 'expired', 'withdrawn')) AS refused
         FROM maintenance_periods p JOIN runs r ON r.id = p.enable_run_id
         WHERE p.status = 'requested' AND r.status IN ('failed', 'cancelled', 'succeeded')
         FOR UPDATE OF p SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    let actor = Actor::system("maintenance");
    let mut done = Vec::new();
    for r in rows {
        let id: i64 = r.get("id");
        let run: i64 = r.get("run_id");
        let run_status: String = r.get("run_status");
        let refused: bool = r.get("refused");
        let err: String = r.get("run_error");
        let status = if run_status == "cancelled" || refused {
            "cancelled"
        } else {
            "failed"
        };
        let msg = format!(
            "Enable run #{run} {run_status} before it acted{}",
            if err.is_empty() {
                String::new()
            } else {
                format!(": {err}")
            }
        );
        sqlx::query(
            "UPDATE maintenance_periods SET status = $2, error = $3, ended_at = now() WHERE id = $1",
        )
        .bind(id)
        .bind(status)
        .bind(&msg)
        .execute(&mut *tx)
        .await?;
        timeline::append(
            &mut tx,
            "maintenance",
            id,
            status,
            Some(&actor),
            None,
            &msg,
            json!({ "run": run }),
        )
        .await?;
        touch(&mut tx, id).await?;
        done.push(id);
    }
    tx.commit().await?;
    Ok(done)
}
