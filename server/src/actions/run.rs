//! The rules of container and stack actions: read-only mode, the gate, the
//! target lookup, and running an action (its `running` row and an
//! `action.started` audit entry first, then the engine, then the outcome
//! with the audit entry in one transaction).
//!
//! Decision (no action outlives its request without a durable record): the
//! engine work and the completion entry run in a detached task
//! ([`detached`]), bounded by the action's own limits (stop grace period,
//! exec timeout), not by the request. When the request ends first (the
//! request timeout answers 408, or the client goes away) the action still
//! finishes and records its outcome; the `action.started` entry (who, what,
//! which containers, argv) is already durable before the engine is asked.
//! A process that dies in between leaves the `action.started` entry without
//! a completion and the `running` row, which the upkeep closes as
//! `interrupted`.

use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use opsdeck_wire::{
    ActionRecord, ActionStep, ContainerActionKind, ContainerActionRequest, ContainerInfo, Outcome,
    StackActionKind, StackActionRequest, Tier,
};
use serde_json::json;

use super::store::{self, Filter};
use super::ActionError;
use crate::audit::Actor;
use crate::auth::RequestCtx;
use crate::docker::{ops, Client, EngineConn};
use crate::inventory::{overview, Snapshot};
use crate::state::AppState;

/// Default and largest stop grace period.
const DEFAULT_STOP_SECS: u32 = 10;
const MAX_STOP_SECS: u32 = 600;

/// What an action is about, for the gate.
#[derive(Debug, Clone)]
pub struct ActionSubject<'a> {
    /// e.g. `container.stop`, `stack.restart`.
    pub kind: &'a str,
    /// Name that must be typed to confirm (service or project).
    pub name: &'a str,
    /// The action takes a critical-tier service away.
    pub disrupts_critical: bool,
    pub confirm: Option<&'a str>,
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Gate {
    Allow,
    /// The caller must repeat the request with `confirm` set to this name.
    NeedsConfirmation(String),
}

/// Decides whether an action may run now. The one place every action kind
/// passes; approval policies (runbooks issue) plug in here.
pub fn gate(s: &ActionSubject<'_>) -> Gate {
    if s.disrupts_critical && s.confirm.map(str::trim) != Some(s.name) {
        Gate::NeedsConfirmation(s.name.to_owned())
    } else {
        Gate::Allow
    }
}

/// Read-only mode: the one check every change to containers passes
/// (`what` names the change, e.g. `container.restart`). Reading — logs,
/// stats, inspect, the inventory, checks — stays open.
pub fn ensure_writable(state: &AppState, what: &str) -> Result<(), ActionError> {
    if state.settings.read_only {
        Err(ActionError::ReadOnly(format!(
            "{what} refused: this Opsdeck runs read-only (OPSDECK_READ_ONLY=true) and changes no container"
        )))
    } else {
        Ok(())
    }
}

/// The gate as an error: `NeedsConfirmation` refuses with what to send.
pub fn check_gate(s: &ActionSubject<'_>) -> Result<(), ActionError> {
    match gate(s) {
        Gate::Allow => Ok(()),
        Gate::NeedsConfirmation(name) => Err(ActionError::NeedsConfirmation(format!(
            "{} takes a critical-tier service away: confirm by sending \"confirm\": \"{name}\"",
            s.kind
        ))),
    }
}

/// A service with its containers.
pub struct Target {
    pub id: i64,
    pub name: String,
    pub tier: Tier,
    pub project: Option<String>,
    pub containers: Vec<ContainerInfo>,
}

/// A service by id or name, with its containers, or `NotFound`.
pub async fn target(
    state: &AppState,
    id: Option<i64>,
    name: Option<&str>,
) -> Result<Target, ActionError> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    let o = overview(&snapshot, &state.engines)
        .into_iter()
        .find(|o| Some(o.service.id) == id || Some(o.service.name.as_str()) == name)
        .ok_or_else(|| match name {
            Some(n) => ActionError::NotFound(format!("service \"{n}\"")),
            None => ActionError::NotFound(format!("service {}", id.unwrap_or_default())),
        })?;
    Ok(Target {
        id: o.service.id,
        name: o.service.name,
        tier: o.service.tier,
        project: o.service.compose_project,
        containers: o.containers,
    })
}

/// A service's containers for an action, by name.
pub async fn service_target(state: &AppState, name: &str) -> Result<Target, ActionError> {
    target(state, None, Some(name)).await
}

/// The refusal when a service maps to no container.
pub fn no_containers(name: &str) -> ActionError {
    ActionError::NoContainers(format!(
        "service \"{name}\" maps to no container on a reachable engine"
    ))
}

/// The engine of a container, connected, or `Unavailable`.
pub fn engine_of(
    state: &AppState,
    c: &ContainerInfo,
) -> Result<(Arc<EngineConn>, Client), ActionError> {
    let conn = state.engines.get(c.engine_id).ok_or_else(|| {
        ActionError::Unavailable(format!("engine \"{}\" is not registered", c.engine))
    })?;
    let docker = conn
        .client()
        .map_err(|e| ActionError::Unavailable(e.to_string()))?;
    Ok((conn, docker))
}

/// Who runs an action: a request (audited with its source, marking the
/// request audited) or a runbook step (audited as the run's requester).
pub struct Invoker<'a> {
    pub actor: Actor,
    pub ctx: Option<&'a RequestCtx>,
}

impl Invoker<'_> {
    /// Writes the audit entry on `tx` and commits.
    pub(super) async fn audit(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        kind: &str,
        target: &str,
        params: serde_json::Value,
        outcome: Outcome,
        detail: Option<String>,
    ) -> Result<(), ActionError> {
        match self.ctx {
            Some(ctx) => {
                ctx.audit_as(
                    &mut tx,
                    self.actor.clone(),
                    kind,
                    Some(target.to_owned()),
                    params,
                    outcome,
                    detail,
                )
                .await?;
                tx.commit().await?;
                ctx.slots.mark_audited();
            }
            None => {
                crate::audit::record(
                    &mut tx,
                    crate::audit::NewEntry {
                        actor: self.actor.clone(),
                        action: kind.to_owned(),
                        target: Some(target.to_owned()),
                        params,
                        source: None,
                        outcome,
                        detail,
                    },
                )
                .await?;
                tx.commit().await?;
            }
        }
        Ok(())
    }
}

impl Invoker<'_> {
    /// Writes the `action.started` entry (who, `kind`, target and `params`,
    /// e.g. the argv and container) before the engine is asked, marks the
    /// request audited, and hands back what the completion entry needs once
    /// the request may be gone.
    pub(super) async fn started(
        &self,
        state: &AppState,
        kind: &str,
        target: &str,
        mut params: serde_json::Value,
    ) -> Result<Recorder, ActionError> {
        if let Some(map) = params.as_object_mut() {
            map.insert("kind".into(), json!(kind));
        }
        let tx = state.pool.begin().await?;
        self.audit(
            tx,
            STARTED,
            target,
            params,
            Outcome::Success,
            Some("started".into()),
        )
        .await?;
        Ok(Recorder {
            actor: self.actor.clone(),
            source: self.ctx.and_then(|c| c.source.clone()),
        })
    }
}

/// The audit action written before an action asks the engine (its
/// `params.kind` names the action; the completion entry carries the
/// action's own name, e.g. `container.exec`).
pub const STARTED: &str = "action.started";

/// Who ran an action, owned: writes the completion entry from a task that
/// may outlive the request.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub actor: Actor,
    pub source: Option<String>,
}

impl Recorder {
    /// Appends the completion entry on `conn` (normally the transaction
    /// that finishes the action's row).
    pub(super) async fn record(
        &self,
        conn: &mut sqlx::PgConnection,
        kind: &str,
        target: &str,
        params: serde_json::Value,
        outcome: Outcome,
        detail: Option<String>,
    ) -> sqlx::Result<()> {
        crate::audit::record(
            conn,
            crate::audit::NewEntry {
                actor: self.actor.clone(),
                action: kind.to_owned(),
                target: Some(target.to_owned()),
                params,
                source: self.source.clone(),
                outcome,
                detail,
            },
        )
        .await
    }
}

/// Runs `work` in its own task and waits for it: dropping the caller (a
/// request that timed out, a client that went away, a cancelled runbook
/// step) does not cancel the action, which finishes within its own bounds
/// and records its outcome.
pub(super) async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, ActionError>> + Send + 'static,
) -> Result<T, ActionError> {
    tokio::spawn(work)
        .await
        .map_err(|e| ActionError::Internal(anyhow::anyhow!("the action's task failed: {e}")))?
}

/// Finishes the row and writes the audit entry, in one transaction.
#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    by: &Recorder,
    id: i64,
    kind: &str,
    target: &str,
    params: serde_json::Value,
    steps: &[ActionStep],
) -> Result<ActionRecord, ActionError> {
    let failed: Vec<String> = steps
        .iter()
        .filter(|s| !s.ok)
        .map(|s| {
            format!(
                "{} {}: {}",
                s.action,
                s.container,
                s.error.as_deref().unwrap_or("failed")
            )
        })
        .collect();
    let (outcome, error) = if failed.is_empty() {
        ("succeeded", None)
    } else {
        ("failed", Some(failed.join("; ")))
    };
    let mut tx = state.pool.begin().await?;
    let service = store::finish(&mut tx, id, outcome, error.as_deref(), steps).await?;
    // An action on a service with an open incident shows on its timeline.
    if let Some(service) = service {
        let summary = format!(
            "{kind} on {target} by {}: {}",
            by.actor.name,
            error.as_deref().unwrap_or(outcome)
        );
        store::link_to_open_incident(&mut tx, id, service, &summary).await?;
    }
    by.record(
        &mut tx,
        kind,
        target,
        json!({"action_id": id, "params": params, "steps": steps.len()}),
        if error.is_none() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        error.clone(),
    )
    .await?;
    tx.commit().await?;
    state.engines.bump();
    let record = store::load(&state.pool, Filter::Id(id), 1)
        .await?
        .pop()
        .ok_or_else(|| ActionError::NotFound(format!("action {id}")))?;
    Ok(record)
}

/// Runs one action on one container and refreshes its cache entry.
async fn step(
    state: &AppState,
    service: Option<&str>,
    c: &ContainerInfo,
    action: ContainerActionKind,
    timeout: u32,
    signal: &str,
) -> ActionStep {
    let started = Instant::now();
    let result = async {
        let (conn, docker) = engine_of(state, c).map_err(|e| anyhow::anyhow!("{e}"))?;
        ops::act(&docker, &c.id, action, timeout, signal).await?;
        // The events stream updates the cache too; refreshing here makes the
        // answer reflect the new state at once.
        let _ = conn.refresh_container(&docker, &c.id).await;
        anyhow::Ok(())
    }
    .await;
    ActionStep {
        service: service.map(str::to_owned),
        container: c.name.clone(),
        action: action.as_str().to_owned(),
        ok: result.is_ok(),
        error: result.err().map(|e| format!("{e:#}")),
        duration_ms: started.elapsed().as_millis() as i64,
    }
}

fn stop_secs(t: Option<u32>) -> Result<u32, ActionError> {
    let t = t.unwrap_or(DEFAULT_STOP_SECS);
    if t > MAX_STOP_SECS {
        return Err(ActionError::Invalid(format!(
            "timeout_secs: at most {MAX_STOP_SECS}"
        )));
    }
    Ok(t)
}

/// Runs a container action on every container of the service (the gate has
/// been passed by the caller). Writes the `running` row first and finishes
/// it with the audit entry.
pub async fn run_service_action(
    state: &AppState,
    by: &Invoker<'_>,
    t: Target,
    req: &ContainerActionRequest,
) -> Result<ActionRecord, ActionError> {
    ensure_writable(state, &format!("container.{}", req.action.as_str()))?;
    let timeout = stop_secs(req.timeout_secs)?;
    let signal = req
        .signal
        .as_deref()
        .unwrap_or("SIGKILL")
        .to_ascii_uppercase();
    if req.action == ContainerActionKind::Kill && !ops::SIGNALS.contains(&signal.as_str()) {
        return Err(ActionError::Invalid(format!(
            "signal: one of {}",
            ops::SIGNALS.join(", ")
        )));
    }
    let kind = format!("container.{}", req.action.as_str());
    if t.containers.is_empty() {
        return Err(no_containers(&t.name));
    }
    // Fail fast, before recording anything, when an engine is down.
    for c in &t.containers {
        engine_of(state, c)?;
    }
    let mut params = json!({"action": req.action, "containers": t.containers.iter().map(|c| &c.name).collect::<Vec<_>>()});
    if matches!(
        req.action,
        ContainerActionKind::Stop | ContainerActionKind::Restart
    ) {
        params["timeout_secs"] = json!(timeout);
    }
    if req.action == ContainerActionKind::Kill {
        params["signal"] = json!(signal);
    }
    let action_id = store::begin(
        &state.pool,
        &kind,
        &t.name,
        Some(t.id),
        t.project.as_deref(),
        &params,
        &by.actor,
    )
    .await?;
    let target = format!("service:{}", t.name);
    let rec = by
        .started(
            state,
            &kind,
            &target,
            json!({"action_id": action_id, "params": params}),
        )
        .await?;
    let state = state.clone();
    let action = req.action;
    detached(async move {
        let steps: Vec<ActionStep> = futures::future::join_all(
            t.containers
                .iter()
                .map(|c| step(&state, Some(&t.name), c, action, timeout, &signal)),
        )
        .await;
        finish(&state, &rec, action_id, &kind, &target, params, &steps).await
    })
    .await
}

/// Runs a stack action in dependency order (stop: dependents first; start:
/// dependencies first; restart: stop all in reverse order, then start all
/// in order). `gated`: apply the typed confirmation for critical-tier
/// stacks (runbook steps are gated by approval policies instead).
pub async fn run_stack_action(
    state: &AppState,
    by: &Invoker<'_>,
    project: &str,
    req: &StackActionRequest,
    gated: bool,
) -> Result<ActionRecord, ActionError> {
    ensure_writable(state, &format!("stack.{}", req.action.as_str()))?;
    let state = state.clone();
    let project = project.to_owned();
    let timeout = stop_secs(req.timeout_secs)?;
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    drop(conn);
    let services: Vec<_> = overview(&snapshot, &state.engines)
        .into_iter()
        .filter(|o| o.service.compose_project.as_deref() == Some(project.as_str()))
        .collect();
    if services.is_empty() {
        return Err(ActionError::NotFound(format!(
            "compose project \"{project}\""
        )));
    }
    let kind = format!("stack.{}", req.action.as_str());
    let critical = services.iter().any(|o| o.service.tier == Tier::Critical);
    if gated {
        check_gate(&ActionSubject {
            kind: &kind,
            name: &project,
            disrupts_critical: critical && req.action != StackActionKind::Start,
            confirm: req.confirm.as_deref(),
        })?;
    }
    for o in &services {
        for c in &o.containers {
            engine_of(&state, c)?;
        }
    }
    let g = snapshot
        .graph()
        .map_err(|e| ActionError::Internal(anyhow::anyhow!("stored graph is invalid: {e}")))?;
    let names: Vec<String> = services.iter().map(|o| o.service.name.clone()).collect();
    let start_order = g
        .start_order(&names)
        .map_err(|e| ActionError::Internal(anyhow::anyhow!("{e}")))?;
    let stop_order: Vec<String> = start_order.iter().rev().cloned().collect();
    let mut plan: Vec<(String, ContainerActionKind)> = Vec::new();
    if matches!(req.action, StackActionKind::Stop | StackActionKind::Restart) {
        plan.extend(
            stop_order
                .iter()
                .map(|n| (n.clone(), ContainerActionKind::Stop)),
        );
    }
    if matches!(
        req.action,
        StackActionKind::Start | StackActionKind::Restart
    ) {
        plan.extend(
            start_order
                .iter()
                .map(|n| (n.clone(), ContainerActionKind::Start)),
        );
    }
    let params = json!({"action": req.action, "timeout_secs": timeout, "start_order": start_order});
    let target_name = format!("stack:{project}");
    let action_id = store::begin(
        &state.pool,
        &kind,
        &target_name,
        None,
        Some(&project),
        &params,
        &by.actor,
    )
    .await?;
    let rec = by
        .started(
            &state,
            &kind,
            &target_name,
            json!({"action_id": action_id, "params": params}),
        )
        .await?;
    detached(async move {
        let mut steps = Vec::new();
        let mut failed: HashSet<String> = HashSet::new();
        for (name, action) in plan {
            let Some(o) = services.iter().find(|o| o.service.name == name) else {
                continue;
            };
            // Never start a service whose dependency failed to start.
            if action == ContainerActionKind::Start
                && o.service.requires.iter().any(|r| failed.contains(r))
            {
                steps.push(ActionStep {
                    service: Some(name.clone()),
                    container: "-".into(),
                    action: "start".into(),
                    ok: false,
                    error: Some("skipped: a dependency failed to start".into()),
                    duration_ms: 0,
                });
                failed.insert(name.clone());
                continue;
            }
            let results = futures::future::join_all(
                o.containers
                    .iter()
                    .map(|c| step(&state, Some(&name), c, action, timeout, "SIGKILL")),
            )
            .await;
            if action == ContainerActionKind::Start && results.iter().any(|s| !s.ok) {
                failed.insert(name.clone());
            }
            steps.extend(results);
        }
        finish(&state, &rec, action_id, &kind, &target_name, params, &steps).await
    })
    .await
}

/// A service's or a project's recent actions, newest first.
pub async fn activity(state: &AppState, f: Filter) -> Result<Vec<ActionRecord>, ActionError> {
    Ok(store::load(&state.pool, f, 100).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gate_asks_for_the_name_on_critical_disruptions() {
        let s = |confirm: Option<&'static str>, critical: bool| ActionSubject {
            kind: "container.stop",
            name: "postgres",
            disrupts_critical: critical,
            confirm,
        };
        assert_eq!(gate(&s(None, false)), Gate::Allow);
        assert_eq!(
            gate(&s(None, true)),
            Gate::NeedsConfirmation("postgres".into())
        );
        assert_eq!(
            gate(&s(Some("postgre"), true)),
            Gate::NeedsConfirmation("postgres".into())
        );
        assert_eq!(gate(&s(Some("postgres"), true)), Gate::Allow);
        assert_eq!(gate(&s(Some(" postgres "), true)), Gate::Allow);
    }
}
