//! What a dry run says a step would do ([`describe`]), whether a step
//! changes something, and which approval policy kind gates it ([`kind_gate`]).

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

/// What gates a rendered step through the approval policy of its action
/// kind (see [`kind_gate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KindGate {
    /// No policy kind names this step.
    Free,
    /// The policy of this action kind applies (when one is set).
    Policy(String),
    /// The kind's policy does not apply now; `reason` says why, for the
    /// run's timeline.
    Waived { kind: String, reason: String },
}

/// The policy kind of this (rendered) step, looking at the state it acts on.
///
/// Kinds: `container.stop.critical` (stop, kill or restart of a
/// critical-tier service), `stack.stop`, `prune`, `exec`, `scale`,
/// `database.promote`, `database.terminate`, `database.maintenance`
/// (vacuum, reindex), `maintenance.enable`, `backup.delete`, `image.update`.
///
/// **Bringing back a service that is down is not gated** (issue 25): the
/// `container.stop.critical` policy protects a running critical service,
/// so a *restart* of a critical service none of whose containers serves
/// (each is exited, dead, created, restarting or HEALTHCHECK-unhealthy, as
/// the engines report it now) is [`KindGate::Waived`]. A stop or kill, a
/// restart while any container serves or is paused, and a service with no
/// container on a reachable engine stay gated. The state is read when the
/// step is about to run; the decision and its reason go on the run's
/// timeline (`approval.waived`).
pub async fn kind_gate(state: &AppState, action: &StepAction) -> KindGate {
    use opsdeck_wire::DbOp;
    let kind: String = match action {
        StepAction::Container { service, action }
            if matches!(action.as_str(), "stop" | "kill" | "restart") =>
        {
            let Ok(t) = actions::service_target(state, service).await else {
                return KindGate::Free; // not in the inventory: the step fails
            };
            if t.tier != opsdeck_wire::Tier::Critical {
                return KindGate::Free;
            }
            let kind = "container.stop.critical".to_owned();
            return match down_reason(service, &t.containers) {
                Some(reason) if action == "restart" => KindGate::Waived { kind, reason },
                _ => KindGate::Policy(kind),
            };
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
            _ => return KindGate::Free,
        },
        _ => return KindGate::Free,
    };
    KindGate::Policy(kind)
}

/// Why service `name` counts as down when none of `containers` serves (see
/// [`kind_gate`]); `None` while one runs healthy or is paused, or when it
/// has no container at all.
fn down_reason(name: &str, containers: &[opsdeck_wire::ContainerInfo]) -> Option<String> {
    let unhealthy = |c: &opsdeck_wire::ContainerInfo| c.health.as_deref() == Some("unhealthy");
    let serving = |c: &opsdeck_wire::ContainerInfo| {
        (c.state == "running" && !unhealthy(c)) || c.state == "paused"
    };
    if containers.is_empty() || containers.iter().any(serving) {
        return None;
    }
    let states: Vec<String> = containers
        .iter()
        .map(|c| {
            let s = if c.state == "running" {
                "unhealthy"
            } else {
                c.state.as_str()
            };
            format!("{} {s}", c.name)
        })
        .collect();
    Some(format!(
        "No approval needed: service {name} is down ({}); the container.stop.critical policy protects running services, and this restart brings a stopped one back",
        states.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::down_reason;
    use opsdeck_wire::ContainerInfo;

    fn c(name: &str, state: &str, health: Option<&str>) -> ContainerInfo {
        ContainerInfo {
            engine_id: 1,
            engine: "main".into(),
            id: name.into(),
            name: name.into(),
            image: "busybox".into(),
            state: state.into(),
            status: String::new(),
            health: health.map(Into::into),
            restart_count: 0,
            started_at: None,
            compose_project: None,
            compose_service: None,
        }
    }

    #[test]
    fn a_service_is_down_only_when_none_of_its_containers_serves() {
        let down = down_reason(
            "db",
            &[
                c("db-1", "exited", None),
                c("db-2", "running", Some("unhealthy")),
            ],
        )
        .expect("down");
        assert!(
            down.contains("service db is down (db-1 exited, db-2 unhealthy)"),
            "{down}"
        );
        assert!(down_reason("db", &[c("db-1", "restarting", None)]).is_some());
        assert!(down_reason("db", &[c("db-1", "dead", None)]).is_some());
        // One serving replica, a paused one, or none at all: not down.
        assert_eq!(
            down_reason(
                "db",
                &[c("db-1", "exited", None), c("db-2", "running", None)]
            ),
            None
        );
        assert_eq!(
            down_reason("db", &[c("db-1", "running", Some("healthy"))]),
            None
        );
        assert_eq!(
            down_reason("db", &[c("db-1", "running", Some("starting"))]),
            None
        );
        assert_eq!(down_reason("db", &[c("db-1", "paused", None)]), None);
        assert_eq!(down_reason("db", &[]), None);
    }
}
