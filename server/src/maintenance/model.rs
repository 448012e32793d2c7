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
use sqlx::PgConnection;

use crate::audit::Actor;
use crate::runbooks::engine::{enqueue, NewRun};
use crate::state::AppState;
use crate::timeline;

use super::error::{MaintenanceError, Result};
use super::{store, touch};

/// The furthest ahead a period may end (extend it again if needed).
pub const MAX_AHEAD: ChronoDuration = ChronoDuration::days(7);
/// Built-in runbooks that apply and undo a period.
pub const ENABLE_RUNBOOK: &str = "maintenance-enable";
pub const DISABLE_RUNBOOK: &str = "maintenance-disable";

pub async fn load(conn: &mut PgConnection, id: i64) -> Result<MaintenancePeriod> {
    store::period(conn, id)
        .await?
        .map(store::PeriodRow::into_wire)
        .ok_or_else(|| MaintenanceError::NotFound(format!("maintenance period {id}")))
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
) -> std::result::Result<Resolved, String> {
    match scope {
        MaintenanceScope::Stack { stack } => {
            let stack = stack.trim();
            if stack.is_empty() {
                return Err("scope.stack: required".into());
            }
            let ids = store::stack_service_ids(conn, stack)
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
            let found = store::services_named(conn, &names)
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

pub fn check_reason(reason: &str) -> std::result::Result<(), String> {
    if reason.chars().count() > 2000 {
        return Err("reason: at most 2000 characters".into());
    }
    Ok(())
}

pub fn check_until(until: DateTime<Utc>, now: DateTime<Utc>) -> std::result::Result<(), String> {
    if until <= now {
        return Err("until: must be in the future".into());
    }
    if until > now + MAX_AHEAD {
        return Err("until: at most 7 days ahead (extend the period later if needed)".into());
    }
    Ok(())
}

async fn builtin(conn: &mut PgConnection, name: &str) -> Result<i64> {
    store::runbook_id(&mut *conn, name).await?.ok_or_else(|| {
        MaintenanceError::Conflict(format!(
            "the built-in runbook {name} is missing (it is seeded at start-up when absent)"
        ))
    })
}

/// Queues the enable or disable run of a period (in the caller's
/// transaction). The caller calls `state.runs().changed(run)` after commit.
pub async fn queue_run(
    state: &AppState,
    conn: &mut PgConnection,
    period: i64,
    enable: bool,
    actor: &Actor,
    user: Option<i64>,
    reason: &str,
) -> Result<i64> {
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
    if enable {
        store::set_enable_run(conn, period, run).await?;
    } else {
        store::set_disable_run(conn, period, run).await?;
    }
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
) -> Result<Option<(i64, i64)>> {
    let actuate = p.actuate && p.resolved.stack.is_some();
    let scope = serde_json::to_value(&p.resolved.scope).map_err(anyhow::Error::from)?;
    let id = store::insert_period(conn, &p, &scope, actuate).await?;
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
) -> Result<Option<i64>> {
    let scope = serde_json::to_value(scope).map_err(anyhow::Error::from)?;
    Ok(store::open_with_scope(conn, &scope).await?)
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
) -> Result<Ending> {
    let r = store::lock_for_end(conn, id)
        .await?
        .ok_or_else(|| MaintenanceError::NotFound(format!("maintenance period {id}")))?;
    let status = PeriodStatus::parse(&r.status).unwrap_or(PeriodStatus::Failed);
    match status {
        PeriodStatus::Requested => {
            cancel(conn, id, actor, why, r.enable_run_id).await?;
            Ok(Ending::Cancelled)
        }
        s if s.is_in_effect() => {
            let busy = r
                .disable_status
                .as_deref()
                .is_some_and(|s| matches!(s, "queued" | "running" | "waiting" | "succeeded"));
            if busy {
                return Err(MaintenanceError::Conflict(format!(
                    "maintenance period {id} is already ending (run #{})",
                    r.disable_run_id.unwrap_or_default()
                )));
            }
            store::set_ended_by(conn, id, &actor.name).await?;
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
        other => Err(MaintenanceError::Conflict(format!(
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
) -> Result<()> {
    store::cancel_requested(conn, id, &actor.name).await?;
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
) -> Result<()> {
    let old = store::lock_open_end(conn, id).await?;
    let Some(old) = old else {
        load(conn, id).await?;
        return Err(MaintenanceError::Conflict(format!(
            "maintenance period {id} is not open (or already ending); it cannot be extended"
        )));
    };
    store::set_ends_at(conn, id, until).await?;
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
        let due = store::next_due(&mut tx, now).await?;
        let Some((id, status, enable_run)) = due else {
            break;
        };
        let mut run = None;
        if status == "requested" {
            cancel(&mut tx, id, &actor, " (its end passed first)", enable_run)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        } else {
            store::set_ended_by_once(&mut tx, id, &actor.name).await?;
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
            state.runs().changed(run).await;
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
    let rows = store::lock_unsettled(&mut tx).await?;
    let actor = Actor::system("maintenance");
    let mut done = Vec::new();
    for r in rows {
        let store::Unsettled {
            id,
            run_id: run,
            run_status,
            run_error: err,
            refused,
        } = r;
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
        store::settle(&mut tx, id, status, &msg).await?;
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
