//! The actions' routes: extract, authorise, call [`run`](super::run) or
//! [`container`](super::container), map the answer. The only file of
//! `actions` that speaks HTTP.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use opsdeck_wire::{
    ActionRecord, ContainerActionRequest, ContainerStats, ExecRequest, ExecResult,
    StackActionRequest, Tier,
};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::container::{self, LogRequest};
use super::run::{self, check_gate, ensure_writable, ActionSubject, Invoker};
use super::store::Filter;
use crate::audit::Actor;
use crate::auth::{Auth, Operator, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

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

/// The refusal when a service maps to no container, as an answer (409).
pub fn no_containers(name: &str) -> ApiError {
    run::no_containers(name).into()
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
    let t = run::target(&state, Some(id), None).await?;
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
    Ok(Json(run::run_service_action(&state, &by, t, &req).await?))
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
        run::run_stack_action(&state, &by, &project, &req, true).await?,
    ))
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
    Ok(Json(run::activity(&state, Filter::Service(id)).await?))
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
    Ok(Json(run::activity(&state, Filter::Project(project)).await?))
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
    auth: Auth<Operator>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(p): Query<LogParams>,
) -> ApiResult<Response> {
    let logs = container::logs(
        &state,
        id,
        &LogRequest {
            tail: p.tail.unwrap_or(200),
            timestamps: p.timestamps,
            filter: p.filter,
            container: p.container,
            follow: p.follow,
        },
    )
    .await?;
    if p.follow {
        let events = logs
            .lines
            .map(|line| {
                Ok::<_, Infallible>(match line {
                    Ok(l) => Event::default().event("line").data(l),
                    Err(e) => Event::default().event("error").data(format!("{e:#}")),
                })
            })
            .take_until(state.engines.closed())
            // A follow ends with the session that opened it.
            .take_until(crate::auth::credential_ended(
                state.pool.clone(),
                &auth.principal,
            ));
        return Ok(Sse::new(events)
            .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
            .into_response());
    }
    let lines = container::collect_lines(logs.lines).await?;
    let mut body = lines.join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    let mut res = ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response();
    if p.download {
        let name = format!(
            "{}-{}.log",
            logs.service,
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
    Ok(Json(container::stats(&state, id).await?))
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
    Ok(Json(container::inspect(&state, id).await?))
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
    let by = Invoker {
        actor: Actor::of(&auth.principal),
        ctx: Some(&ctx),
    };
    Ok(Json(container::exec(&state, &by, id, &req).await?))
}
