//! `/api/v1/engines/{id}/disk` (viewers) and
//! `/api/v1/engines/{id}/cleanup…` (operators, audited).

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{CleanupApply, CleanupPreview, CleanupRequest, CleanupStarted, DiskUsage};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::preview;
use crate::auth::{Auth, Operator, RequestCtx, Viewer};
use crate::error::{ApiResult, Json, Path};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(disk))
        .routes(routes!(make_preview))
        .routes(routes!(apply))
}

/// An engine's disk usage (`docker system df`): images, containers,
/// volumes and build cache, with what removing the unused ones would free.
#[utoipa::path(get, path = "/api/v1/engines/{id}/disk", tag = "engines",
    params(("id" = i64, Path)),
    responses((status = 200, body = DiskUsage), (status = 404), (status = 503)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn disk(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<DiskUsage>> {
    Ok(Json(preview::disk(&state, id).await?))
}

/// Exactly what a clean-up of the engine would remove (stored as a
/// preview to apply), and what matched but is kept, with why.
#[utoipa::path(post, path = "/api/v1/engines/{id}/cleanup/preview", tag = "engines",
    params(("id" = i64, Path)), request_body = CleanupRequest,
    responses((status = 201, body = CleanupPreview), (status = 400), (status = 404), (status = 503)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn make_preview(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<CleanupRequest>,
) -> ApiResult<(StatusCode, Json<CleanupPreview>)> {
    let p = &auth.principal;
    let survey = preview::survey(&state, id, &req).await?;
    let mut tx = state.pool.begin().await?;
    let made = preview::make(&mut tx, survey, req, p).await?;
    ctx.audit(
        &mut tx,
        p,
        "cleanup.preview",
        Some(format!("engine:{id}")),
        json!({
            "preview": made.id,
            "request": made.request,
            "items": made.items.len(),
            "kept": made.kept.len(),
            "total_bytes": made.total_bytes,
        }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// Applies a preview: a run of the built-in `docker-cleanup` runbook (its
/// step waits for the `prune` approval policy), one run per preview.
#[utoipa::path(post, path = "/api/v1/engines/{id}/cleanup", tag = "engines",
    params(("id" = i64, Path)), request_body = CleanupApply,
    responses((status = 202, body = CleanupStarted), (status = 400), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn apply(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(body): Json<CleanupApply>,
) -> ApiResult<(StatusCode, Json<CleanupStarted>)> {
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    let (run, items) = preview::start(&state, &mut tx, id, body.preview_id, p).await?;
    ctx.audit(
        &mut tx,
        p,
        "cleanup.apply",
        Some(format!("engine:{id}")),
        json!({ "preview": body.preview_id, "run": run, "items": items }),
    )
    .await?;
    ctx.commit(tx).await?;
    state.runs().changed(run).await;
    Ok((StatusCode::ACCEPTED, Json(CleanupStarted { run_id: run })))
}
