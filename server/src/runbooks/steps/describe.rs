//! What a dry run says a step would do ([`describe`]), whether a step
//! changes something, and which policy kind it counts as.

use opsdeck_wire::StepAction;

use crate::actions;
use crate::runbooks::def::parse_duration;
use crate::state::AppState;

/// What a step would do, in words, for a dry run. Reads the inventory and
/// the engines' caches; changes nothing.
pub async fn describe(state: &AppState, action: &StepAction) -> String {
    let containers_of = |service: &str| {
        let service = service.to_owned();
        let state = state.clone();
        async move {
            match actions::service_target(&state, &service).await {
                Ok(t) if t.containers.is_empty() => "no containers (the step would fail)".into(),
                Ok(t) => t
                    .containers
                    .iter()
                    .map(|c| format!("{} on {}", c.name, c.engine))
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(e) => format!("{e} (the step would fail)"),
            }
        }
    };
    match action {
        StepAction::Container { service, action } => format!(
            "{action} the containers of service {service}: {}",
            containers_of(service).await
        ),
        StepAction::Stack { project, action } => {
            format!("{action} compose project {project} in dependency order")
        }
        StepAction::Scale { service, replicas } => format!(
            "scale service {service} to {replicas} replicas (now: {})",
            containers_of(service).await
        ),
        StepAction::Exec { service, argv, .. } => format!(
            "run [{}] (argv, no shell) in a running container of {service}: {}",
            argv.iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            containers_of(service).await
        ),
        StepAction::Logs { service, lines } => {
            format!("show the last {lines} log lines of {service}")
        }
        StepAction::Status { service } => format!("report the health of {service}"),
        StepAction::Database {
            database,
            op,
            older_than,
            table,
            limit,
        } => crate::runbooks::dbops::describe(
            database,
            *op,
            older_than.as_deref().and_then(|d| parse_duration(d).ok()),
            table.as_deref(),
            *limit,
        ),
        StepAction::Http {
            url,
            method,
            expect_status,
            contains,
        } => format!(
            "{method} {url}, expect HTTP {expect_status}{}",
            contains
                .as_deref()
                .map(|c| format!(" and a body containing {c:?}"))
                .unwrap_or_default()
        ),
        StepAction::Checks {
            service,
            check_kind,
        } => format!(
            "run the {}checks of {} now; fail if one is critical",
            check_kind
                .as_deref()
                .map(|k| format!("{k} "))
                .unwrap_or_default(),
            service.as_deref().unwrap_or("every service")
        ),
        StepAction::WaitHealthy { service } => {
            format!("wait until {service}'s containers run and its checks pass")
        }
        StepAction::Sleep { duration } => format!("wait {duration}"),
        StepAction::Prune { what, engine } => format!(
            "remove unused {what} on {}",
            engine
                .as_deref()
                .map(|e| format!("engine {e}"))
                .unwrap_or_else(|| "every engine".into())
        ),
        StepAction::Manual { instructions } => {
            format!("an operator ticks off: {instructions}")
        }
        StepAction::Approval { message } => format!(
            "wait for approval{}",
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ),
        StepAction::Notify { message, severity } => {
            format!("notify ({severity}): {message}")
        }
        StepAction::Runbook { runbook, params } => format!(
            "run runbook {runbook} with {} and wait for it",
            serde_json::to_string(params).unwrap_or_default()
        ),
        StepAction::Backup { op, subject } => match op.as_str() {
            "delete" => format!(
                "delete backup {subject}: remove its objects from the target and mark it deleted"
            ),
            "drill" => format!(
                "restore drill of plan {subject}: verify its newest good backup again (read back, checksum, test restore, row counts)"
            ),
            "verify" => format!(
                "verify backup {subject}: read it back, check its checksum, test-restore it into a scratch database and compare row counts"
            ),
            "restore" => format!(
                "restore from backup {subject} (artifact and destination as in the parameters): check its checksum, back up the original first, stop its dependents when asked, restore, start them again"
            ),
            _ => format!(
                "run backup plan {subject}: dump each source, compress (zstd), checksum and store; then verify when the plan says so"
            ),
        },
        StepAction::Image {
            op, target, to, ..
        } => {
            let version = if to.is_empty() {
                "the newest image of its tag".to_owned()
            } else {
                to.clone()
            };
            if op == "stack" {
                format!("update every service of stack {target} to {version}, dependencies first, each gated on its health; roll back and stop at the first that fails")
            } else {
                format!("update {target} to {version}: pull, recreate with the same configuration, wait for its health, roll back by itself when it fails")
            }
        }
        StepAction::Cleanup { preview } => format!(
            "remove exactly the items of clean-up preview {preview}, skipping any that came into use since"
        ),
        StepAction::Maintenance { op, period } => format!(
            "{op} maintenance period {period} (mark its services, run its stack's actuation{})",
            if op == "enable" {
                "; rolled back on failure"
            } else {
                "; restore the previous state"
            }
        ),
    }
}

/// Whether a step changes something (and so gets its own audit entry):
/// container and stack actions, scale, exec, prune, clean-up, HTTP requests other than
/// GET/HEAD, and the database operations that terminate, vacuum, reindex or
/// promote. Reading steps (status, logs, checks, waits, reports) are on the
/// run's timeline only; manual ticks and approvals are audited by their API.
pub fn changes_something(action: &StepAction) -> bool {
    use opsdeck_wire::DbOp;
    match action {
        StepAction::Container { .. }
        | StepAction::Stack { .. }
        | StepAction::Scale { .. }
        | StepAction::Exec { .. }
        | StepAction::Prune { .. }
        | StepAction::Cleanup { .. } => true,
        StepAction::Http { method, .. } => !matches!(method.as_str(), "GET" | "HEAD"),
        StepAction::Database { op, .. } => matches!(
            op,
            DbOp::TerminateIdle
                | DbOp::TerminateActive
                | DbOp::VacuumAnalyze
                | DbOp::Reindex
                | DbOp::Promote
        ),
        _ => false,
    }
}

/// The action kind an approval policy can name for this (rendered) step:
/// `container.stop.critical` (stop, kill or restart of a critical-tier
/// service), `stack.stop`, `prune`, `exec`, `scale`, `database.promote`,
/// `database.terminate`, `database.maintenance` (vacuum, reindex).
pub async fn policy_kind(state: &AppState, action: &StepAction) -> Option<String> {
    use opsdeck_wire::DbOp;
    Some(match action {
        StepAction::Container { service, action }
            if matches!(action.as_str(), "stop" | "kill" | "restart") =>
        {
            let tier: Option<String> = sqlx::query_scalar!(
                r#"SELECT tier::text AS "tier!" FROM services WHERE name = $1"#,
                service
            )
            .fetch_optional(&state.pool)
            .await
            .ok()
            .flatten();
            if tier.as_deref() == Some("critical") {
                "container.stop.critical".into()
            } else {
                return None;
            }
        }
        StepAction::Stack { action, .. } if action != "start" => "stack.stop".into(),
        StepAction::Prune { .. } | StepAction::Cleanup { .. } => "prune".into(),
        StepAction::Image { .. } => "image.update".into(),
        StepAction::Maintenance { op, .. } if op == "enable" => "maintenance.enable".into(),
        StepAction::Backup { op, .. } if op == "delete" => "backup.delete".into(),
        StepAction::Exec { .. } => "exec".into(),
        StepAction::Scale { .. } => "scale".into(),
        StepAction::Database { op, .. } => match op {
            DbOp::Promote => "database.promote".into(),
            DbOp::TerminateIdle | DbOp::TerminateActive => "database.terminate".into(),
            DbOp::VacuumAnalyze | DbOp::Reindex => "database.maintenance".into(),
            _ => return None,
        },
        _ => return None,
    })
}
