//! Executing one step of a run, and describing it for dry runs.
//!
//! Each kind reuses the panel's one path for that kind of work: container
//! and stack actions go through `actions` (their own `container_actions`
//! rows and audit entries), exec and logs through `docker::ops`, health
//! through the `HealthHub`, database actions through `runbooks::dbops`.
//! Values arrive already rendered from templates; they are data (names,
//! argv elements, URLs), checked here before use. Parking kinds (manual,
//! approval, runbook) and notify are handled by the engine; `backup` and
//! `maintenance` by their capabilities, registered as [`super::step::StepKind`]s.
//!
//! Split by topic: [`containers`] (container, stack, scale, exec, logs and
//! prune steps: the Docker side), [`probes`] (status, http, checks and
//! wait-healthy steps: the health side), [`describe`] (what a dry run
//! says and which policy kind a step counts as). This file dispatches.

mod containers;
mod describe;
mod probes;

pub use describe::{changes_something, describe, kind_gate, KindGate};

use opsdeck_wire::StepAction;
use serde_json::json;

use crate::actions;
use crate::runbooks::def::parse_duration;

pub use super::step::{StepCx, StepResult};

use containers::{container, exec, logs, prune, scale, stack};
use probes::{http, run_checks, status, wait_healthy};

/// Runs a non-parking step and returns its named outputs.
pub async fn execute(cx: &StepCx<'_>, action: &StepAction) -> StepResult {
    // Kinds other capabilities registered (backup, maintenance).
    if let Some(kind) = cx.state.step_kinds().get(action.kind()) {
        return kind.execute(cx, action).await;
    }
    // Read-only mode refuses the kinds that change containers before they
    // look anything up (container and stack steps pass `actions` too).
    if matches!(
        action,
        StepAction::Container { .. }
            | StepAction::Stack { .. }
            | StepAction::Scale { .. }
            | StepAction::Exec { .. }
            | StepAction::Prune { .. }
    ) {
        actions::ensure_writable(cx.state, &format!("a {} step", action.kind()))
            .map_err(|e| e.to_string())?;
    }
    match action {
        StepAction::Container { service, action } => container(cx, service, action).await,
        StepAction::Stack { project, action } => stack(cx, project, action).await,
        StepAction::Scale { service, replicas } => scale(cx, service, replicas).await,
        StepAction::Exec {
            service,
            argv,
            container,
        } => exec(cx, service, argv, container.as_deref()).await,
        StepAction::Logs { service, lines } => logs(cx, service, *lines).await,
        StepAction::Status { service } => status(cx, service).await,
        StepAction::Database {
            database,
            op,
            older_than,
            table,
            limit,
        } => {
            let older = older_than
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| format!("older_than: {e}"))?;
            super::dbops::run(
                cx.state,
                database,
                *op,
                older,
                table.as_deref(),
                *limit,
                cx.out,
            )
            .await
        }
        StepAction::Http {
            url,
            method,
            expect_status,
            contains,
        } => http(cx, url, method, *expect_status, contains.as_deref()).await,
        StepAction::Checks {
            service,
            check_kind,
        } => {
            let tally = run_checks(cx, service.as_deref(), check_kind.as_deref()).await?;
            if tally.critical > 0 {
                Err(format!(
                    "{} of {} checks critical",
                    tally.critical,
                    tally.total()
                ))
            } else {
                Ok(tally.json())
            }
        }
        StepAction::WaitHealthy { service } => wait_healthy(cx, service).await,
        StepAction::Sleep { duration } => {
            let d = parse_duration(duration)?;
            cx.out
                .line(format!("sleeping {}", humantime::format_duration(d)));
            tokio::time::sleep(d).await;
            Ok(json!({"slept_secs": d.as_secs_f64()}))
        }
        StepAction::Prune { what, engine } => prune(cx, what, engine.as_deref()).await,
        StepAction::Maintenance { .. }
        | StepAction::Backup { .. }
        | StepAction::Image { .. }
        | StepAction::Cleanup { .. } => Err(format!(
            "{} steps are not available: no capability registered them",
            action.kind()
        )),
        StepAction::Manual { .. }
        | StepAction::Approval { .. }
        | StepAction::Notify { .. }
        | StepAction::Runbook { .. } => Err(format!(
            "{} steps are run by the engine, not executed",
            action.kind()
        )),
    }
}
