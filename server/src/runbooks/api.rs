//! Runbook and run routes: extract, authorise, call [`super::library`] or
//! [`super::runs`], map the answer. The rules and the SQL live there.
//!
//! Definitions: admins create, edit (each save is a new version; old
//! versions stay readable), import/export YAML and delete runbooks without
//! runs. Runs: operators start (parameters checked by type), dry-run, cancel,
//! resume (from the first step that did not succeed), re-run (same
//! parameters, current version), close an interrupted run, and tick off
//! manual steps. Viewers read everything, live over SSE.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use opsdeck_wire::{
    CloseRun, CompleteStep, DryRun, Run, RunSummary, Runbook, RunbookSummary, RunbookVersion,
    RunbookWrite, StartRun,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::engine::{enqueue, NewRun};
use super::{library, runs};
use crate::audit::Actor;
use crate::auth::{Admin, Auth, Operator, Principal, RequestCtx, Viewer};
use crate::error::{ApiResult, Json, Path, Query};
/// Kept reachable here for callers not yet moved to [`crate::sse`].
pub(crate) use crate::sse::async_stream;
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runbooks, create_runbook))
        .routes(routes!(import_runbook))
        .routes(routes!(get_runbook, update_runbook, delete_runbook))
        .routes(routes!(versions))
        .routes(routes!(export))
        .routes(routes!(start_run))
        .routes(routes!(dry_run))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(cancel_run))
        .routes(routes!(resume_run))
        .routes(routes!(rerun))
        .routes(routes!(close_run))
        .routes(routes!(complete_step))
}

// ------------------------------------------------------------ definitions

/// Runbooks with their current version and last run.
#[utoipa::path(get, path = "/api/v1/runbooks", tag = "runbooks",
    responses((status = 200, body = Vec<RunbookSummary>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_runbooks(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<RunbookSummary>>> {
    Ok(Json(library::list(&state).await?))
}

/// Create a runbook from a definition (JSON or YAML).
#[utoipa::path(post, path = "/api/v1/runbooks", tag = "runbooks", request_body = RunbookWrite,
    responses((status = 201, body = Runbook), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create_runbook(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(w): Json<RunbookWrite>,
) -> ApiResult<(StatusCode, Json<Runbook>)> {
    let rb = library::create(&state, &ctx, &auth.principal, w).await?;
    Ok((StatusCode::CREATED, Json(rb)))
}

/// Import a YAML definition: creates the runbook, or adds a version to the
/// one with that name.
#[utoipa::path(post, path = "/api/v1/runbooks/import", tag = "runbooks", request_body = RunbookWrite,
    responses((status = 200, body = Runbook), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn import_runbook(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(w): Json<RunbookWrite>,
) -> ApiResult<Json<Runbook>> {
    Ok(Json(
        library::import(&state, &ctx, &auth.principal, w).await?,
    ))
}

/// A runbook's current definition.
#[utoipa::path(get, path = "/api/v1/runbooks/{id}", tag = "runbooks", params(("id" = i64, Path)),
    responses((status = 200, body = Runbook), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_runbook(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Runbook>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(library::load(&mut conn, id).await?))
}

/// Save a new version of a runbook.
#[utoipa::path(put, path = "/api/v1/runbooks/{id}", tag = "runbooks", params(("id" = i64, Path)),
    request_body = RunbookWrite,
    responses((status = 200, body = Runbook), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update_runbook(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(w): Json<RunbookWrite>,
) -> ApiResult<Json<Runbook>> {
    Ok(Json(
        library::update(&state, &ctx, &auth.principal, id, w).await?,
    ))
}

/// Delete a runbook that has never run (runs keep their history).
#[utoipa::path(delete, path = "/api/v1/runbooks/{id}", tag = "runbooks", params(("id" = i64, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "it has runs")),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_runbook(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    library::delete(&state, &ctx, &auth.principal, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every saved version, newest first.
#[utoipa::path(get, path = "/api/v1/runbooks/{id}/versions", tag = "runbooks", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<RunbookVersion>), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn versions(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<RunbookVersion>>> {
    Ok(Json(library::versions(&state, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// A version (default: the current one).
    pub version: Option<i32>,
}

/// The definition as a YAML file.
#[utoipa::path(get, path = "/api/v1/runbooks/{id}/export", tag = "runbooks",
    params(("id" = i64, Path), ExportQuery),
    responses((status = 200, content_type = "application/yaml", body = serde_json::Value, description = "the definition as a YAML document"), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn export(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let (name, yaml) = library::export(&state, id, q.version).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/yaml; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.yaml\""),
            ),
        ],
        yaml,
    )
        .into_response())
}

// ------------------------------------------------------------------ runs

/// Loads a run for the run page.
pub async fn load_run(state: &AppState, id: i64, me: Option<&Principal>) -> ApiResult<Run> {
    Ok(runs::load(state, id, me).await?)
}

/// Start a run of the runbook's current version.
#[utoipa::path(post, path = "/api/v1/runbooks/{id}/runs", tag = "runs", params(("id" = i64, Path)),
    request_body = StartRun,
    responses((status = 201, body = Run), (status = 400, description = "invalid parameters"),
        (status = 404), (status = 409, description = "a run for this target is active")),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn start_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<StartRun>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = start(&state, &auth.principal, &ctx, id, req, None).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// Enqueues a run (the engine's `enqueue`) and records it.
async fn start(
    state: &AppState,
    p: &Principal,
    ctx: &RequestCtx,
    runbook_id: i64,
    req: StartRun,
    rerun_of: Option<i64>,
) -> ApiResult<Run> {
    let mut tx = state.pool.begin().await?;
    let params_for_audit = json!(req.params);
    let id = enqueue(
        state,
        &mut tx,
        NewRun {
            runbook_id,
            params: req.params,
            reason: req.reason,
            incident: req.incident,
            requested_by: Actor::of(p),
            requested_by_user: Some(p.user_id),
            schedule_id: None,
            parent: None,
        },
    )
    .await?;
    Ok(runs::audit_start(
        state,
        ctx,
        p,
        tx,
        (id, runbook_id),
        params_for_audit,
        rerun_of,
    )
    .await?)
}

/// What each step would do now, without doing it.
#[utoipa::path(post, path = "/api/v1/runbooks/{id}/dry-run", tag = "runs", params(("id" = i64, Path)),
    request_body = StartRun,
    responses((status = 200, body = DryRun), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn dry_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<StartRun>,
) -> ApiResult<Json<DryRun>> {
    Ok(Json(
        runs::dry_run(&state, &ctx, &auth.principal, id, &req).await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    pub runbook: Option<i64>,
    pub status: Option<String>,
    /// At most this many, newest first (default 100, at most 500).
    pub limit: Option<i64>,
}

/// Runs, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunFilter),
    responses((status = 200, body = Vec<RunSummary>), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_runs(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(f): Query<RunFilter>,
) -> ApiResult<Json<Vec<RunSummary>>> {
    Ok(Json(
        runs::list(&state, f.runbook, f.status.as_deref(), f.limit).await?,
    ))
}

/// A run with its steps, approvals and timeline.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = Run), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_run(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Run>> {
    Ok(Json(load_run(&state, id, Some(&auth.principal)).await?))
}

/// Live run: a `run` event with the whole run whenever it changes; the
/// stream ends after the run has finished.
#[utoipa::path(get, path = "/api/v1/runs/{id}/events", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/event-stream", description = "`run` events (Run JSON)"), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn run_events(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>> {
    let first = load_run(&state, id, Some(&auth.principal)).await?;
    let mut changes = state.runs().subscribe();
    let closed = state.engines.closed();
    let principal = auth.principal.clone();
    let state_pool = state.pool.clone();
    let stream = async_stream(move |tx| async move {
        tokio::pin!(closed);
        let mut last = serde_json::to_string(&first).unwrap_or_default();
        let mut active = first.summary.status.is_active();
        if tx
            .send(Event::default().event("run").data(last.clone()))
            .await
            .is_err()
        {
            return;
        }
        while active {
            tokio::select! {
                _ = &mut closed => return,
                c = changes.recv() => match c {
                    Ok(changed) if changed != id => continue,
                    _ => {}
                },
                // Other processes' writes arrive by NOTIFY; this is the
                // backstop if a notification was missed.
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            let Ok(run) = load_run(&state, id, Some(&principal)).await else {
                continue;
            };
            active = run.summary.status.is_active();
            let json = serde_json::to_string(&run).unwrap_or_default();
            if json != last {
                last = json;
                if tx
                    .send(Event::default().event("run").data(last.clone()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    // The stream ends with the session that opened it.
    let ended = crate::auth::credential_ended(state_pool, &auth.principal);
    Ok(Sse::new(futures::StreamExt::take_until(stream, ended)).keep_alive(KeepAlive::default()))
}

/// Cancel a run: a queued or waiting run ends at once; a running one stops
/// at its current step.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = Run), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn cancel_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Run>> {
    Ok(Json(runs::cancel(&state, &ctx, &auth.principal, id).await?))
}

/// Resume a failed or interrupted run from the first main step that did not
/// succeed.
#[utoipa::path(post, path = "/api/v1/runs/{id}/resume", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = Run), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn resume_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Run>> {
    Ok(Json(runs::resume(&state, &ctx, &auth.principal, id).await?))
}

/// Start the same runbook again with the same parameters (current version).
#[utoipa::path(post, path = "/api/v1/runs/{id}/rerun", tag = "runs", params(("id" = i64, Path)),
    responses((status = 201, body = Run), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn rerun(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let (runbook, req) = runs::rerun_request(&state, id).await?;
    let run = start(&state, &auth.principal, &ctx, runbook, req, Some(id)).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// Close an interrupted run without resuming it.
#[utoipa::path(post, path = "/api/v1/runs/{id}/close", tag = "runs", params(("id" = i64, Path)),
    request_body = CloseRun,
    responses((status = 200, body = Run), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn close_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<CloseRun>,
) -> ApiResult<Json<Run>> {
    Ok(Json(
        runs::close(&state, &ctx, &auth.principal, id, &req.note).await?,
    ))
}

/// Tick off a manual step the run is waiting on.
#[utoipa::path(post, path = "/api/v1/runs/{id}/steps/{idx}/complete", tag = "runs",
    params(("id" = i64, Path), ("idx" = i32, Path)), request_body = CompleteStep,
    responses((status = 200, body = Run), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn complete_step(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path((id, idx)): Path<(i64, i32)>,
    Json(req): Json<CompleteStep>,
) -> ApiResult<Json<Run>> {
    Ok(Json(
        runs::complete_step(&state, &ctx, &auth.principal, (id, idx), &req.note).await?,
    ))
}
