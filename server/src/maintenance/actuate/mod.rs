//! The `maintenance` runbook step: applies (`enable`) or undoes (`disable`) a
//! period, and the per-stack actuators it drives.
//!
//! Both operations are idempotent, so a resumed or repeated run is safe:
//! enabling a period that is already active, or disabling one that has
//! ended, changes nothing. A stack is changed under the advisory lock
//! `(hashtext('opsdeck.maintenance'), hashtext(stack))`, held by a
//! transaction of its own for the whole change (a crash or a step timeout
//! drops the connection and releases it).
//!
//! **Proxy mode.** For every running container of the proxy service: read
//! what is at the page and snippet paths, store it in the actuator's
//! `saved` with state `enabling` (committed before the first write), place
//! the rendered page and the snippet, run the reload argv. Any error
//! restores what was saved in every container, reloads, sets the state back
//! to `off` and fails the step: the period is `failed`, nothing half-done
//! remains. Disabling restores the saved files byte for byte (removing
//! files that were absent) and reloads. A state left at `enabling` or
//! `disabling` by a crash is restored first by the next enable or disable.
//!
//! **Runbook mode.** Runs the stack's enable runbook and waits for it; if
//! it does not succeed, the disable runbook runs as the rollback. Disabling
//! runs the disable runbook.
//!
//! This file holds the step entry and the period state machine; the
//! per-stack actuators are in `stack`, the two modes in `proxy_mode` and
//! `runbook_mode`.

use chrono::Utc;
use opsdeck_wire::{Outcome, PeriodStatus};
use serde_json::json;

use super::touch;
use crate::audit::{self, Actor, NewEntry};
use crate::runbooks::step::{StepCx, StepKind, StepResult};

mod proxy_mode;
mod runbook_mode;
mod stack;

use crate::state::AppState;
use crate::timeline;
pub use proxy_mode::render_snippet;
pub use stack::{config_json, def_from, validate, Stored};
use stack::{stack_disable, stack_enable};

/// The `maintenance` step kind, registered with the runbook engine at
/// start-up.
pub struct MaintenanceStep;

impl StepKind for MaintenanceStep {
    fn kind(&self) -> &'static str {
        "maintenance"
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepCx<'a>,
        action: &'a opsdeck_wire::StepAction,
    ) -> futures::future::BoxFuture<'a, StepResult> {
        Box::pin(async move {
            match action {
                opsdeck_wire::StepAction::Maintenance { op, period } => step(cx, op, period).await,
                other => Err(format!("not a maintenance step: {}", other.kind())),
            }
        })
    }
}

/// The step: `op` is `enable` or `disable`, `period` the rendered id.
pub async fn step(cx: &StepCx<'_>, op: &str, period: &str) -> StepResult {
    let id: i64 = period
        .trim()
        .parse()
        .map_err(|_| format!("period: \"{}\" is not a period id", period.escape_default()))?;
    match op {
        "enable" => enable(cx, id).await,
        "disable" => disable(cx, id).await,
        other => Err(format!(
            "op \"{}\": enable or disable",
            other.escape_default()
        )),
    }
}

struct PeriodRow {
    status: PeriodStatus,
    stack: Option<String>,
    actuate: bool,
    ends_at: chrono::DateTime<Utc>,
    started_by_id: Option<i64>,
}

async fn period_row(state: &AppState, id: i64) -> Result<PeriodRow, String> {
    let r = sqlx::query!(
        "SELECT status, stack, actuate, ends_at, started_by_id FROM maintenance_periods WHERE id = $1",
        id
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("maintenance period {id} does not exist"))?;
    Ok(PeriodRow {
        status: PeriodStatus::parse(&r.status).unwrap_or(PeriodStatus::Failed),
        stack: r.stack,
        actuate: r.actuate,
        ends_at: r.ends_at,
        started_by_id: r.started_by_id,
    })
}

/// The time column a transition stamps with `now()`, besides the status.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stamp {
    Nothing,
    EnabledAt,
    EndedAt,
}

/// Moves a period from one of `from` to `to` with a timeline line (and
/// a time column stamped), in one transaction. Returns whether it moved.
#[allow(clippy::too_many_arguments)]
async fn transition(
    state: &AppState,
    id: i64,
    from: &[&str],
    to: &str,
    stamp: Stamp,
    actor: &Actor,
    kind: &str,
    message: &str,
    audit: Option<(&str, Outcome, Option<String>)>,
) -> Result<bool, String> {
    let go = async {
        let mut tx = state.pool.begin().await?;
        let from: Vec<String> = from.iter().map(|s| (*s).to_owned()).collect();
        let moved = sqlx::query!(
            "UPDATE maintenance_periods SET status = $2,
                 enabled_at = CASE WHEN $4 THEN now() ELSE enabled_at END,
                 ended_at = CASE WHEN $5 THEN now() ELSE ended_at END
             WHERE id = $1 AND status = ANY($3)",
            id,
            to,
            &from,
            stamp == Stamp::EnabledAt,
            stamp == Stamp::EndedAt
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if moved {
            timeline::append(
                &mut tx,
                "maintenance",
                id,
                kind,
                Some(actor),
                None,
                message,
                json!({}),
            )
            .await?;
            if let Some((action, outcome, detail)) = audit {
                audit::record(
                    &mut tx,
                    NewEntry {
                        actor: actor.clone(),
                        action: action.into(),
                        target: Some(format!("maintenance:{id}")),
                        params: json!({}),
                        source: None,
                        outcome,
                        detail,
                    },
                )
                .await?;
            }
            touch(&mut tx, id).await?;
        }
        tx.commit().await?;
        anyhow::Ok(moved)
    };
    go.await.map_err(|e| format!("{e:#}"))
}

async fn note(state: &AppState, id: i64, actor: &Actor, kind: &str, message: &str) {
    let r = async {
        let mut tx = state.pool.begin().await?;
        timeline::append(
            &mut tx,
            "maintenance",
            id,
            kind,
            Some(actor),
            None,
            message,
            json!({}),
        )
        .await?;
        touch(&mut tx, id).await?;
        tx.commit().await?;
        anyhow::Ok(())
    };
    if let Err(e) = r.await {
        tracing::warn!(period = id, error = %e, "maintenance timeline write failed");
    }
}

async fn enable(cx: &StepCx<'_>, id: i64) -> StepResult {
    let p = period_row(cx.state, id).await?;
    if !matches!(p.status, PeriodStatus::Requested | PeriodStatus::Enabling) {
        cx.out.line(format!(
            "maintenance period {id} is {}: nothing to do",
            p.status.as_str()
        ));
        return Ok(json!({ "period": id, "status": p.status.as_str(), "changed": false }));
    }
    if p.ends_at <= Utc::now() {
        transition(
            cx.state,
            id,
            &["requested", "enabling"],
            "cancelled",
            Stamp::EndedAt,
            cx.actor,
            "cancelled",
            "Its end passed before it started: cancelled",
            None,
        )
        .await?;
        cx.out
            .line("the period's end passed before it started: cancelled");
        return Ok(json!({ "period": id, "status": "cancelled", "changed": false }));
    }
    transition(
        cx.state,
        id,
        &["requested"],
        "enabling",
        Stamp::Nothing,
        cx.actor,
        "enabling",
        "Enabling: services show maintenance, alarms are suppressed",
        None,
    )
    .await?;
    cx.out.line(format!(
        "period {id}: services show maintenance; alarms are suppressed"
    ));
    if let (true, Some(stack)) = (p.actuate, p.stack.as_deref()) {
        let lock = lock_stack(cx.state, stack).await?;
        let r = stack_enable(cx, stack, id, p.started_by_id).await;
        drop(lock);
        if let Err(e) = r {
            let msg = format!("Enabling failed and was rolled back: {e}");
            set_error(cx.state, id, &e).await;
            transition(
                cx.state,
                id,
                &["enabling"],
                "failed",
                Stamp::EndedAt,
                cx.actor,
                "failed",
                &msg,
                Some(("maintenance.enable", Outcome::Failure, Some(e.clone()))),
            )
            .await?;
            return Err(msg);
        }
    }
    let moved = transition(
        cx.state,
        id,
        &["enabling"],
        "active",
        Stamp::EnabledAt,
        cx.actor,
        "active",
        &format!(
            "In maintenance until {}",
            p.ends_at.format("%Y-%m-%d %H:%M UTC")
        ),
        Some(("maintenance.enable", Outcome::Success, None)),
    )
    .await?;
    if !moved {
        cx.out
            .line("the period was ended meanwhile; its disable run undoes the change");
    }
    Ok(json!({ "period": id, "status": "active", "changed": moved }))
}

async fn set_error(state: &AppState, id: i64, e: &str) {
    let _ = sqlx::query!(
        "UPDATE maintenance_periods SET error = $2 WHERE id = $1",
        id,
        e
    )
    .execute(&state.pool)
    .await;
}

async fn disable(cx: &StepCx<'_>, id: i64) -> StepResult {
    let p = period_row(cx.state, id).await?;
    match p.status {
        PeriodStatus::Requested => {
            transition(
                cx.state,
                id,
                &["requested"],
                "cancelled",
                Stamp::EndedAt,
                cx.actor,
                "cancelled",
                "Ended before it started: cancelled",
                None,
            )
            .await?;
            cx.out.line("the period had not started: cancelled");
            return Ok(json!({ "period": id, "status": "cancelled" }));
        }
        s if !s.is_in_effect() => {
            cx.out.line(format!(
                "maintenance period {id} is {}: nothing to do",
                s.as_str()
            ));
            return Ok(json!({ "period": id, "status": s.as_str(), "changed": false }));
        }
        _ => {}
    }
    transition(
        cx.state,
        id,
        &["enabling", "active"],
        "disabling",
        Stamp::Nothing,
        cx.actor,
        "disabling",
        "Disabling: restoring the previous state",
        None,
    )
    .await?;
    if let (true, Some(stack)) = (p.actuate, p.stack.as_deref()) {
        let lock = lock_stack(cx.state, stack).await?;
        let r = stack_disable(cx, stack, id, p.started_by_id).await;
        drop(lock);
        if let Err(e) = r {
            set_error(cx.state, id, &e).await;
            note(
                cx.state,
                id,
                cx.actor,
                "disable_failed",
                &format!("Disabling failed (still in maintenance; resume the run to retry): {e}"),
            )
            .await;
            let _ = audit_only(
                cx.state,
                cx.actor,
                id,
                "maintenance.disable",
                Outcome::Failure,
                Some(e.clone()),
            )
            .await;
            return Err(e);
        }
    }
    let mut tx = cx.state.pool.begin().await.map_err(|e| e.to_string())?;
    let ended = sqlx::query_scalar!(
        "UPDATE maintenance_periods SET status = 'ended', ended_at = now(), error = NULL
         WHERE id = $1 AND status = 'disabling' RETURNING service_ids",
        id
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    if let Some(ids) = ended {
        // Pages held during maintenance are due again now.
        sqlx::query!(
            "UPDATE incidents SET next_escalation_at = now()
             WHERE next_escalation_at > now() AND status = 'triggered'
               AND id IN (SELECT incident_id FROM incident_services WHERE service_id = ANY($1))",
            &ids
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        timeline::append(
            &mut tx,
            "maintenance",
            id,
            "ended",
            Some(cx.actor),
            None,
            "Maintenance ended; alarms resume",
            json!({}),
        )
        .await
        .map_err(|e| e.to_string())?;
        audit::record(
            &mut tx,
            NewEntry {
                actor: cx.actor.clone(),
                action: "maintenance.disable".into(),
                target: Some(format!("maintenance:{id}")),
                params: json!({}),
                source: None,
                outcome: Outcome::Success,
                detail: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        touch(&mut tx, id).await.map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    crate::incidents::escalation::wake();
    cx.out.line(format!("period {id} ended; alarms resume"));
    Ok(json!({ "period": id, "status": "ended" }))
}

async fn audit_only(
    state: &AppState,
    actor: &Actor,
    id: i64,
    action: &str,
    outcome: Outcome,
    detail: Option<String>,
) -> anyhow::Result<()> {
    let mut tx = state.pool.begin().await?;
    audit::record(
        &mut tx,
        NewEntry {
            actor: actor.clone(),
            action: action.into(),
            target: Some(format!("maintenance:{id}")),
            params: json!({}),
            source: None,
            outcome,
            detail,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Holds the stack's advisory lock until dropped.
async fn lock_stack(
    state: &AppState,
    stack: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, String> {
    let mut tx = state.pool.begin().await.map_err(|e| e.to_string())?;
    sqlx::query!(
        "SELECT pg_advisory_xact_lock(hashtext('opsdeck.maintenance'), hashtext($1))",
        stack
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    Ok(tx)
}
