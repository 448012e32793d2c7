//! Container and stack actions, logs, stats, inspect and exec on the
//! containers of a service (operator and above; the activity list and stats
//! are open to viewers, who see status but not logs or configuration).
//!
//! Every action goes through one path: [`gate`] decides whether it may run
//! now (a stop or kill of a critical-tier service needs the service's name
//! typed as confirmation; the approvals of the runbooks issue will add a
//! `NeedsApproval` outcome here, so every action kind can be gated in one
//! place), then a `container_actions` row is written as `running` *before*
//! the engine is asked, and finished with the outcome, steps and duration in
//! the same transaction as the action's audit entry. A crash in between
//! leaves the row `running`; the upkeep task closes such rows as
//! `interrupted` after [`MAX_ACTION`].
//!
//! Read-only mode (`OPSDECK_READ_ONLY`) is checked by [`ensure_writable`]
//! before anything else: here for container and stack actions and exec
//! (whoever calls them: a request or a runbook step), in the step executor
//! for scale and prune, and before maintenance proxy pages are placed.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use opsdeck_wire::{
    ActionOutcome, ActionRecord, ActionStep, ContainerActionKind, ContainerActionRequest,
    ContainerInfo, ContainerStats, ExecRequest, ExecResult, Outcome, StackActionKind,
    StackActionRequest, Tier,
};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgPool;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::audit::Actor;
use crate::auth::{Auth, Operator, RequestCtx, Viewer};
use crate::docker::{ops, EngineConn};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::inventory::{overview, Snapshot};
use crate::state::AppState;

/// Longest an action may take before a `running` row counts as interrupted.
pub const MAX_ACTION: Duration = Duration::from_secs(15 * 60);
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
pub fn ensure_writable(state: &AppState, what: &str) -> ApiResult<()> {
    if state.settings.read_only {
        Err(ApiError::ReadOnly(format!(
            "{what} refused: this Opsdeck runs read-only (OPSDECK_READ_ONLY=true) and changes no container"
        )))
    } else {
        Ok(())
    }
}

fn check_gate(s: &ActionSubject<'_>) -> ApiResult<()> {
    match gate(s) {
        Gate::Allow => Ok(()),
        Gate::NeedsConfirmation(name) => Err(ApiError::ConfirmationRequired(format!(
            "{} takes a critical-tier service away: confirm by sending \"confirm\": \"{name}\"",
            s.kind
        ))),
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(service_action))
        .routes(routes!(stack_action))
        .routes(routes!(activity))
        .routes(routes!(stack_activity))
        .routes(routes!(logs))
        .routes(routes!(stats))
        .routes(routes!(inspect))
        .routes(routes!(exec))
}

/// A service with its containers, or 404.
pub struct Target {
    pub id: i64,
    pub name: String,
    pub tier: Tier,
    pub project: Option<String>,
    pub containers: Vec<ContainerInfo>,
}

async fn target(state: &AppState, id: Option<i64>, name: Option<&str>) -> ApiResult<Target> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    let o = overview(&snapshot, &state.engines)
        .into_iter()
        .find(|o| Some(o.service.id) == id || Some(o.service.name.as_str()) == name)
        .ok_or_else(|| match name {
            Some(n) => ApiError::NotFound(format!("service \"{n}\"")),
            None => ApiError::NotFound(format!("service {}", id.unwrap_or_default())),
        })?;
    Ok(Target {
        id: o.service.id,
        name: o.service.name,
        tier: o.service.tier,
        project: o.service.compose_project,
        containers: o.containers,
    })
}

pub fn no_containers(name: &str) -> ApiError {
    ApiError::Conflict(format!(
        "service \"{name}\" maps to no container on a reachable engine"
    ))
}

/// The engine of a container, connected, or a clear 503.
pub fn engine_of(
    state: &AppState,
    c: &ContainerInfo,
) -> ApiResult<(std::sync::Arc<EngineConn>, bollard::Docker)> {
    let conn = state.engines.get(c.engine_id).ok_or_else(|| {
        ApiError::Unavailable(format!("engine \"{}\" is not registered", c.engine))
    })?;
    let docker = conn
        .client()
        .map_err(|e| ApiError::Unavailable(e.to_string()))?;
    Ok((conn, docker))
}

/// Writes the `running` row before anything is asked of an engine.
async fn begin(
    pool: &PgPool,
    kind: &str,
    target: &str,
    service_id: Option<i64>,
    project: Option<&str>,
    params: &serde_json::Value,
    actor: &Actor,
) -> ApiResult<i64> {
    Ok(sqlx::query_scalar!(
        r#"INSERT INTO container_actions (kind, target, service_id, compose_project, params, actor, actor_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"#,
        kind,
        target,
        service_id,
        project,
        params,
        actor.name,
        actor.id
    )
    .fetch_one(pool)
    .await?)
}

/// Finishes the row and writes the audit entry, in one transaction.
#[allow(clippy::too_many_arguments)]
async fn finish(
    state: &AppState,
    by: &Invoker<'_>,
    id: i64,
    kind: &str,
    target: &str,
    params: serde_json::Value,
    steps: &[ActionStep],
) -> ApiResult<ActionRecord> {
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
    sqlx::query!(
        "UPDATE container_actions SET finished_at = now(), outcome = $2, error = $3, steps = $4 WHERE id = $1",
        id,
        outcome,
        error,
        json!(steps)
    )
    .execute(&mut *tx)
    .await?;
    // An action on a service with an open incident shows on its timeline.
    let service: Option<i64> =
        sqlx::query_scalar("SELECT service_id FROM container_actions WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if let Some(service) = service {
        let summary = format!(
            "{kind} on {target} by {}: {}",
            by.actor.name,
            error.as_deref().unwrap_or(outcome)
        );
        crate::incidents::model::link_action(&mut tx, id, service, &summary).await?;
    }
    by.audit(
        tx,
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
    state.engines.bump();
    let record = load_records(&state.pool, Filter::Id(id), 1)
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("action {id}")))?;
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

fn stop_secs(t: Option<u32>) -> ApiResult<u32> {
    let t = t.unwrap_or(DEFAULT_STOP_SECS);
    if t > MAX_STOP_SECS {
        return Err(ApiError::BadRequest(format!(
            "timeout_secs: at most {MAX_STOP_SECS}"
        )));
    }
    Ok(t)
}

/// Start, stop, restart, kill, pause or unpause the containers of a service.
#[utoipa::path(post, path = "/api/v1/services/{id}/actions", tag = "actions",
    params(("id" = i64, Path)), request_body = ContainerActionRequest,
    responses((status = 200, body = ActionRecord, description = "the action ran; see `outcome`"),
        (status = 400), (status = 404), (status = 409), (status = 428, description = "confirmation required"),
        (status = 503, description = "engine unreachable")),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn service_action(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<ContainerActionRequest>,
) -> ApiResult<Json<ActionRecord>> {
    let kind = format!("container.{}", req.action.as_str());
    ensure_writable(&state, &kind)?;
    let t = target(&state, Some(id), None).await?;
    check_gate(&ActionSubject {
        kind: &kind,
        name: &t.name,
        disrupts_critical: t.tier == Tier::Critical && req.action.is_disruptive(),
        confirm: req.confirm.as_deref(),
    })?;
    let by = Invoker {
        actor: Actor::of(&auth.principal),
        ctx: Some(&ctx),
    };
    Ok(Json(run_service_action(&state, &by, t, &req).await?))
}

/// Who runs an action: a request (audited with its source, marking the
/// request audited) or a runbook step (audited as the run's requester).
pub struct Invoker<'a> {
    pub actor: Actor,
    pub ctx: Option<&'a RequestCtx>,
}

impl Invoker<'_> {
    /// Writes the audit entry on `tx` and commits.
    async fn audit(
        &self,
        mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
        kind: &str,
        target: &str,
        params: serde_json::Value,
        outcome: Outcome,
        detail: Option<String>,
    ) -> ApiResult<()> {
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
                Ok(ctx.commit(tx).await?)
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
                Ok(())
            }
        }
    }
}

/// A service's containers for an action, by id or by name.
pub async fn service_target(state: &AppState, name: &str) -> ApiResult<Target> {
    target(state, None, Some(name)).await
}

/// Runs a container action on every container of the service (the gate has
/// been passed by the caller). Writes the `running` row first and finishes
/// it with the audit entry.
pub async fn run_service_action(
    state: &AppState,
    by: &Invoker<'_>,
    t: Target,
    req: &ContainerActionRequest,
) -> ApiResult<ActionRecord> {
    ensure_writable(state, &format!("container.{}", req.action.as_str()))?;
    let timeout = stop_secs(req.timeout_secs)?;
    let signal = req
        .signal
        .as_deref()
        .unwrap_or("SIGKILL")
        .to_ascii_uppercase();
    if req.action == ContainerActionKind::Kill && !ops::SIGNALS.contains(&signal.as_str()) {
        return Err(ApiError::BadRequest(format!(
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
    let action_id = begin(
        &state.pool,
        &kind,
        &t.name,
        Some(t.id),
        t.project.as_deref(),
        &params,
        &by.actor,
    )
    .await?;
    let steps: Vec<ActionStep> = futures::future::join_all(
        t.containers
            .iter()
            .map(|c| step(state, Some(&t.name), c, req.action, timeout, &signal)),
    )
    .await;
    finish(
        state,
        by,
        action_id,
        &kind,
        &format!("service:{}", t.name),
        params,
        &steps,
    )
    .await
}

/// Start, stop or restart every service of a compose project in dependency
/// order (stop: dependents first; start: dependencies first; restart: stop
/// all in reverse order, then start all in order).
#[utoipa::path(post, path = "/api/v1/stacks/{project}/actions", tag = "actions",
    params(("project" = String, Path)), request_body = StackActionRequest,
    responses((status = 200, body = ActionRecord), (status = 400), (status = 404), (status = 428), (status = 503)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn stack_action(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(project): Path<String>,
    Json(req): Json<StackActionRequest>,
) -> ApiResult<Json<ActionRecord>> {
    let by = Invoker {
        actor: Actor::of(&auth.principal),
        ctx: Some(&ctx),
    };
    Ok(Json(
        run_stack_action(&state, &by, &project, &req, true).await?,
    ))
}

/// Runs a stack action in dependency order. `gated`: apply the typed
/// confirmation for critical-tier stacks (runbook steps are gated by
/// approval policies instead).
pub async fn run_stack_action(
    state: &AppState,
    by: &Invoker<'_>,
    project: &str,
    req: &StackActionRequest,
    gated: bool,
) -> ApiResult<ActionRecord> {
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
        return Err(ApiError::NotFound(format!("compose project \"{project}\"")));
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
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored graph is invalid: {e}")))?;
    let names: Vec<String> = services.iter().map(|o| o.service.name.clone()).collect();
    let start_order = g
        .start_order(&names)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("{e}")))?;
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
    let action_id = begin(
        &state.pool,
        &kind,
        &target_name,
        None,
        Some(&project),
        &params,
        &by.actor,
    )
    .await?;
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
    finish(&state, by, action_id, &kind, &target_name, params, &steps).await
}

/// Which actions to list.
enum Filter {
    Id(i64),
    Service(i64),
    Project(String),
}

async fn load_records(pool: &PgPool, f: Filter, limit: i64) -> sqlx::Result<Vec<ActionRecord>> {
    let (id, service, project) = match f {
        Filter::Id(i) => (Some(i), None, None),
        Filter::Service(s) => (None, Some(s), None),
        Filter::Project(p) => (None, None, Some(p)),
    };
    let rows = sqlx::query!(
        r#"SELECT id, kind, target, service_id, params, actor, started_at, finished_at, outcome, error, steps
           FROM container_actions
           WHERE ($1::bigint IS NULL OR id = $1)
             AND ($2::bigint IS NULL OR service_id = $2)
             AND ($3::text IS NULL OR compose_project = $3)
           ORDER BY started_at DESC, id DESC LIMIT $4"#,
        id,
        service,
        project,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ActionRecord {
            id: r.id,
            kind: r.kind,
            target: r.target,
            service_id: r.service_id,
            params: r.params,
            actor: r.actor,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: r.finished_at.map(|f| (f - r.started_at).num_milliseconds()),
            outcome: match r.outcome.as_str() {
                "running" => ActionOutcome::Running,
                "succeeded" => ActionOutcome::Succeeded,
                "failed" => ActionOutcome::Failed,
                _ => ActionOutcome::Interrupted,
            },
            error: r.error,
            steps: serde_json::from_value(r.steps).unwrap_or_default(),
        })
        .collect())
}

/// Closes actions left `running` by a crash (called by the upkeep task).
pub async fn close_interrupted(pool: &PgPool) -> sqlx::Result<u64> {
    let max = MAX_ACTION.as_secs_f64();
    let r = sqlx::query!(
        r#"UPDATE container_actions SET outcome = 'interrupted', finished_at = now(),
               error = 'the server stopped before the action finished; check the containers'' state'
           WHERE outcome = 'running' AND started_at < now() - make_interval(secs => $1)"#,
        max
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}

/// A service's recent actions (activity list), newest first.
#[utoipa::path(get, path = "/api/v1/services/{id}/activity", tag = "actions",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ActionRecord>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn activity(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ActionRecord>>> {
    Ok(Json(
        load_records(&state.pool, Filter::Service(id), 100).await?,
    ))
}

/// A compose project's recent actions, newest first.
#[utoipa::path(get, path = "/api/v1/stacks/{project}/activity", tag = "actions",
    params(("project" = String, Path)),
    responses((status = 200, body = Vec<ActionRecord>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn stack_activity(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(project): Path<String>,
) -> ApiResult<Json<Vec<ActionRecord>>> {
    Ok(Json(
        load_records(&state.pool, Filter::Project(project), 100).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct LogParams {
    /// Last lines per container (default 200, at most 10000).
    pub tail: Option<u32>,
    /// Prefix lines with the engine's timestamps.
    #[serde(default)]
    pub timestamps: bool,
    /// Keep only lines containing this text (case-insensitive).
    pub filter: Option<String>,
    /// Container name; default: all of the service's containers.
    pub container: Option<String>,
    /// Follow live as Server-Sent Events (`line` events).
    #[serde(default)]
    pub follow: bool,
    /// Answer as a file download.
    #[serde(default)]
    pub download: bool,
}

/// Logs of a service's containers: the last lines as text, a download, or
/// followed live over SSE. Operators and above: logs often carry what a
/// viewer (a manager reading status) should not see.
#[utoipa::path(get, path = "/api/v1/services/{id}/logs", tag = "actions",
    params(("id" = i64, Path), LogParams),
    responses((status = 200, content_type = "text/plain", body = String), (status = 404), (status = 503)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn logs(
    _auth: Auth<Operator>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(p): Query<LogParams>,
) -> ApiResult<Response> {
    let tail = p.tail.unwrap_or(200);
    if tail > 10_000 {
        return Err(ApiError::BadRequest("tail: at most 10000".into()));
    }
    let t = target(&state, Some(id), None).await?;
    let containers: Vec<ContainerInfo> = t
        .containers
        .into_iter()
        .filter(|c| {
            p.container
                .as_deref()
                .is_none_or(|n| n == c.name || n == c.id)
        })
        .collect();
    if containers.is_empty() {
        return Err(no_containers(&t.name));
    }
    let filter = p
        .filter
        .as_deref()
        .map(str::to_lowercase)
        .filter(|f| !f.is_empty());
    let query = ops::LogQuery {
        tail,
        timestamps: p.timestamps,
        follow: p.follow,
    };
    let many = containers.len() > 1;
    let mut streams = Vec::new();
    for c in &containers {
        let (_, docker) = engine_of(&state, c)?;
        let prefix = if many {
            format!("{} | ", c.name)
        } else {
            String::new()
        };
        let filter = filter.clone();
        streams.push(
            ops::log_lines(&docker, &c.id, &query)
                .filter_map(move |line| {
                    let keep = match &line {
                        Ok(l) => filter
                            .as_deref()
                            .is_none_or(|f| l.to_lowercase().contains(f)),
                        Err(_) => true,
                    };
                    let prefix = prefix.clone();
                    async move { keep.then(|| line.map(|l| format!("{prefix}{l}"))) }
                })
                .boxed(),
        );
    }
    let merged = futures::stream::select_all(streams);
    if p.follow {
        let events = merged
            .map(|line| {
                Ok::<_, Infallible>(match line {
                    Ok(l) => Event::default().event("line").data(l),
                    Err(e) => Event::default().event("error").data(format!("{e:#}")),
                })
            })
            .take_until(state.engines.closed());
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response());
    }
    let lines: Vec<String> =
        tokio::time::timeout(Duration::from_secs(20), merged.collect::<Vec<_>>())
            .await
            .map_err(|_| ApiError::Unavailable("the engine did not send the logs in time".into()))?
            .into_iter()
            .collect::<Result<_, _>>()
            .map_err(|e| ApiError::EngineError(format!("{e:#}")))?;
    let mut body = lines.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    let mut res = ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    if p.download {
        let name = format!(
            "{}-{}.log",
            t.name,
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        );
        if let Ok(v) = header::HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
            res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
        }
    }
    Ok(res)
}

/// CPU, memory, network and block I/O of a service's running containers
/// (one-shot stats, sampled concurrently).
#[utoipa::path(get, path = "/api/v1/services/{id}/stats", tag = "actions",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ContainerStats>), (status = 404), (status = 503)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn stats(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ContainerStats>>> {
    let t = target(&state, Some(id), None).await?;
    let running: Vec<&ContainerInfo> = t
        .containers
        .iter()
        .filter(|c| c.state == "running")
        .collect();
    let mut jobs = Vec::new();
    for c in running {
        let (conn, docker) = engine_of(&state, c)?;
        jobs.push(async move { ops::stats(&conn, &docker, &c.id, &c.name).await });
    }
    let results: Vec<_> = futures::stream::iter(jobs)
        .buffer_unordered(16)
        .collect()
        .await;
    let mut out = Vec::new();
    for r in results {
        out.push(r.map_err(|e| ApiError::EngineError(format!("{e:#}")))?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(out))
}

/// The engine's inspect documents of a service's containers; environment
/// values whose names look secret (PASSWORD, SECRET, TOKEN, KEY…) masked.
#[utoipa::path(get, path = "/api/v1/services/{id}/inspect", tag = "actions",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<serde_json::Value>), (status = 404), (status = 503)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn inspect(
    _auth: Auth<Operator>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let t = target(&state, Some(id), None).await?;
    let mut out = Vec::new();
    for c in &t.containers {
        let (_, docker) = engine_of(&state, c)?;
        out.push(
            ops::inspect(&docker, &c.id)
                .await
                .map_err(|e| ApiError::EngineError(format!("{e:#}")))?,
        );
    }
    Ok(Json(out))
}

/// Run an argv array in a container of the service (no shell), capturing
/// output and exit code.
#[utoipa::path(post, path = "/api/v1/services/{id}/exec", tag = "actions",
    params(("id" = i64, Path)), request_body = ExecRequest,
    responses((status = 200, body = ExecResult), (status = 400), (status = 404), (status = 409), (status = 503)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn exec(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<ExecRequest>,
) -> ApiResult<Json<ExecResult>> {
    ensure_writable(&state, "container.exec")?;
    if req.argv.is_empty() || req.argv[0].trim().is_empty() {
        return Err(ApiError::BadRequest(
            "argv: give the program and its arguments".into(),
        ));
    }
    if req.argv.len() > 256 || req.argv.iter().any(|a| a.len() > 8192 || a.contains('\0')) {
        return Err(ApiError::BadRequest(
            "argv: at most 256 arguments of at most 8192 bytes, no NUL".into(),
        ));
    }
    let timeout = req.timeout_secs.unwrap_or(30);
    if !(1..=300).contains(&timeout) {
        return Err(ApiError::BadRequest("timeout_secs: 1 to 300".into()));
    }
    let t = target(&state, Some(id), None).await?;
    let c = match &req.container {
        Some(n) => t.containers.iter().find(|c| &c.name == n || &c.id == n),
        None => t.containers.iter().find(|c| c.state == "running"),
    }
    .ok_or_else(|| no_containers(&t.name))?;
    let (_, docker) = engine_of(&state, c)?;
    let result = ops::exec(
        &docker,
        &c.id,
        &req.argv,
        Duration::from_secs(u64::from(timeout)),
    )
    .await;
    let mut tx = state.pool.begin().await?;
    let (outcome, detail) = match &result {
        Ok(r) if r.exit_code == Some(0) => (Outcome::Success, None),
        Ok(r) => (
            Outcome::Failure,
            Some(match r.exit_code {
                Some(code) => format!("exit code {code}"),
                None => "timed out".to_owned(),
            }),
        ),
        Err(e) => (Outcome::Failure, Some(format!("{e:#}"))),
    };
    ctx.audit_as(
        &mut tx,
        Actor::of(&auth.principal),
        "container.exec",
        Some(format!("service:{}", t.name)),
        json!({"container": c.name, "argv": req.argv}),
        outcome,
        detail,
    )
    .await?;
    ctx.commit(tx).await?;
    result
        .map(|mut r| {
            // The engine is asked by id; answer with the name people read.
            r.container = c.name.clone();
            Json(r)
        })
        .map_err(|e| ApiError::EngineError(format!("{e:#}")))
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
