//! The runbook bindings' routes: list (viewers), create and delete (admins,
//! audited `runbook_binding.create|delete`), and the runbooks an incident
//! suggests (viewers).

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{BindingWrite, RunbookBinding, SuggestedRunbook};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::error::{ApiResult, Json, Path};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(delete))
        .routes(routes!(for_incident))
}

/// Runbook bindings: which runbooks alerts suggest or start.
#[utoipa::path(get, path = "/api/v1/runbook-bindings", tag = "runs",
    responses((status = 200, body = Vec<RunbookBinding>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<RunbookBinding>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(super::list(&mut conn).await?))
}

/// Bind a runbook to alerts (suggested or automatic).
#[utoipa::path(post, path = "/api/v1/runbook-bindings", tag = "runs", request_body = BindingWrite,
    responses((status = 201, body = RunbookBinding), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(w): Json<BindingWrite>,
) -> ApiResult<(StatusCode, Json<RunbookBinding>)> {
    let mut tx = state.pool.begin().await?;
    let b = super::create(&mut tx, &w, &auth.principal.username).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "runbook_binding.create",
        Some(format!("runbook_binding:{}", b.id)),
        serde_json::to_value(&w).unwrap_or_default(),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(b)))
}

/// Remove a binding (the runs it started stay).
#[utoipa::path(delete, path = "/api/v1/runbook-bindings/{id}", tag = "runs",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let what = super::delete(&mut tx, id).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "runbook_binding.delete",
        Some(format!("runbook_binding:{id}")),
        json!({ "binding": what }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The runbooks bound to an open incident's alert, with the parameters
/// they start with, and what the automatic ones did.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/runbooks", tag = "incidents",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<SuggestedRunbook>), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn for_incident(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<SuggestedRunbook>>> {
    Ok(Json(super::for_incident(&state, id).await?))
}
