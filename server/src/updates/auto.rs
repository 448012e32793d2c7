//! The `auto` update policy: a service whose settings say `policy = 'auto'`
//! and whose image has an update (discovery's `image_status`: the
//! registry's digest differs from the running one, no registry error) is
//! updated by itself, only inside maintenance, one update at a time.
//!
//! **Inside a maintenance window.** Only while a maintenance period in
//! status `active` covers the service (a scheduled window's occurrence or
//! maintenance turned on by hand: both hold the service's alarms while the
//! update runs). A period still enabling or already disabling does not
//! count. Outside: nothing at all.
//!
//! **One at a time.** While any `image-update` or `stack-update` run asked
//! for by a system actor is queued, running or waiting, nothing new is
//! queued, and one tick queues at most one run; so one stack is updating at
//! a time (decision: one *service* at a time, which implies it).
//!
//! **Once per discovery.** A service is tried once per discovery result: a
//! try of this policy (its audit entry, queued or refused) after discovery
//! last looked (`image_status.checked_at`) keeps it out, so a failed,
//! refused or rolled-back update is not retried every 30 s but after
//! discovery has looked again.
//!
//! **Exactly once across processes.** Every process runs the task
//! `updates.auto` ([`task`], every 30 s); a tick takes its decision in one
//! transaction under a transaction-scoped advisory lock
//! (`pg_try_advisory_xact_lock`): a process that finds it taken skips the
//! tick, and the next holder sees the run the last one committed.
//!
//! The run is the built-in `image-update` runbook with parameters
//! `{service, to: ""}` (`to` empty: the service's own tag), asked for by the
//! system actor `system:auto-update`, with an audit entry
//! `update.auto.start` and an `update.auto` event on the maintenance
//! period's timeline in the same transaction.

use std::time::Duration;

use opsdeck_wire::Outcome;
use serde_json::json;

use super::policy_store as store;
use crate::audit::{self, Actor, NewEntry};
use crate::jobs::{Pace, Scope, Task};
use crate::runbooks::engine::{self, NewRun, RunError};
use crate::state::AppState;
use crate::timeline;

/// Who the auto update policy acts as (audit actor kind `system`).
pub const ACTOR: &str = "system:auto-update";
/// The audit action of every try (queued or refused).
pub const AUDIT_ACTION: &str = "update.auto.start";
/// The runbook it runs.
pub const RUNBOOK: &str = "image-update";
/// How often the task looks.
pub const PERIOD: Duration = Duration::from_secs(30);

/// The registry task `updates.auto` (every process, every 30 s; the
/// decision is exactly-once through an advisory lock, see the module doc).
pub fn task(state: AppState) -> Task {
    Task::every(
        "updates.auto",
        PERIOD,
        Scope::EveryProcess,
        state,
        |state| async move {
            tick(&state).await?;
            Ok(Pace::Normal)
        },
    )
}

/// What one tick did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tick {
    /// Another process is deciding.
    Busy,
    /// An update the policy asked for is still active (its run id).
    Updating(i64),
    /// Nothing to update now (no candidate inside an active period).
    Idle,
    /// The runbook does not exist (deleted, or not seeded).
    NoRunbook,
    /// The run engine refused the candidate (the message says why).
    Refused(String),
    /// Queued this run.
    Queued { run_id: i64, service: String },
}

/// One decision (see the module doc). Tests call it directly.
pub async fn tick(state: &AppState) -> anyhow::Result<Tick> {
    let mut tx = state.pool.begin().await?;
    if !store::try_auto_lock(&mut tx).await? {
        return Ok(Tick::Busy);
    }
    if let Some(run) = store::active_system_update(&mut tx).await? {
        return Ok(Tick::Updating(run));
    }
    let candidates = store::auto_candidates(&mut tx).await?;
    let Some(c) = candidates.into_iter().next() else {
        return Ok(Tick::Idle);
    };
    let Some(runbook_id) = store::runbook_id(&mut tx, RUNBOOK).await? else {
        tracing::warn!(service = %c.service, "auto update: there is no {RUNBOOK} runbook");
        return Ok(Tick::NoRunbook);
    };
    let actor = Actor::system(ACTOR);
    let reason = format!(
        "auto update in maintenance period #{}: {} ({}) has a new image {} (running {})",
        c.period_id,
        c.service,
        c.image_ref,
        c.latest_digest.as_deref().unwrap_or("?"),
        c.running_digest.as_deref().unwrap_or("unknown"),
    );
    let queued = engine::enqueue(
        state,
        &mut tx,
        NewRun {
            runbook_id,
            params: [
                ("service".to_owned(), json!(c.service)),
                ("to".to_owned(), json!("")),
            ]
            .into(),
            reason: reason.clone(),
            incident: None,
            requested_by: actor.clone(),
            requested_by_user: None,
            schedule_id: None,
            parent: None,
        },
    )
    .await;
    let (run, outcome, detail) = match queued {
        Ok(run) => (Some(run), Outcome::Success, None),
        Err(RunError::Database(e)) => return Err(e.into()),
        Err(e) => (None, Outcome::Failure, Some(e.to_string())),
    };
    if let Some(run) = run {
        // The window's page shows what ran in it.
        timeline::append(
            &mut tx,
            "maintenance",
            c.period_id,
            "update.auto",
            Some(&actor),
            None,
            &format!(
                "Auto update of {} started (run #{run}): {} has a new image",
                c.service, c.image_ref
            ),
            json!({"service": c.service, "service_id": c.service_id, "run_id": run}),
        )
        .await?;
        crate::maintenance::touch(&mut tx, c.period_id).await?;
    }
    audit::record(
        &mut tx,
        NewEntry {
            actor,
            action: AUDIT_ACTION.into(),
            target: Some(match run {
                Some(r) => format!("run:{r}"),
                None => format!("service:{}", c.service),
            }),
            params: json!({
                "policy": "auto", "service": c.service, "service_id": c.service_id,
                "runbook": RUNBOOK, "run_id": run, "period_id": c.period_id,
                "image_ref": c.image_ref, "running_digest": c.running_digest,
                "latest_digest": c.latest_digest, "reason": reason,
            }),
            source: None,
            outcome,
            detail: detail.clone(),
        },
    )
    .await?;
    tx.commit().await?;
    match run {
        Some(run_id) => {
            state.runs().changed(run_id).await;
            tracing::info!(service = %c.service, run = run_id, "auto update queued");
            Ok(Tick::Queued {
                run_id,
                service: c.service,
            })
        }
        None => {
            let why = detail.unwrap_or_default();
            tracing::warn!(service = %c.service, reason = %why, "auto update refused");
            Ok(Tick::Refused(why))
        }
    }
}
