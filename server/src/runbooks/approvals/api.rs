//! Approval routes: extract, authorise, call [`super`], map.

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{ActionPolicy, Approval, ApprovalCount, ApprovalPolicy, Vote};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Admin, Auth, Operator, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(count))
        .routes(routes!(approve))
        .routes(routes!(deny))
        .routes(routes!(policies))
        .routes(routes!(put_policy, delete_policy))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApprovalFilter {
    /// `pending` (default) or `all`.
    pub status: Option<String>,
}

/// Approval requests (pending by default), newest first.
#[utoipa::path(get, path = "/api/v1/approvals", tag = "approvals", params(ApprovalFilter),
    responses((status = 200, body = Vec<Approval>)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn list(
    auth: Auth<Operator>,
    State(state): State<AppState>,
    Query(f): Query<ApprovalFilter>,
) -> ApiResult<Json<Vec<Approval>>> {
    let all = match f.status.as_deref() {
        None | Some("pending") => false,
        Some("all") => true,
        Some(_) => return Err(ApiError::BadRequest("status: pending or all".into())),
    };
    Ok(Json(super::list(&state, &auth.principal, all).await?))
}

/// How many pending requests the caller could vote on (the navigation badge).
#[utoipa::path(get, path = "/api/v1/approvals/count", tag = "approvals",
    responses((status = 200, body = ApprovalCount)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn count(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<ApprovalCount>> {
    let pending = super::votable(&state, &auth.principal).await?;
    Ok(Json(ApprovalCount { pending }))
}

/// Approve a request. `binding` must be the digest shown with it.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/approve", tag = "approvals",
    params(("id" = i64, Path)), request_body = Vote,
    responses((status = 200, body = Approval), (status = 403, description = "own request, or a role the policy does not list"),
        (status = 404), (status = 409, description = "decided, expired, already voted, or the request changed")),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn approve(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(v): Json<Vote>,
) -> ApiResult<Json<Approval>> {
    let a = super::vote(
        &state,
        &auth.principal,
        &ctx,
        id,
        &v.binding,
        &v.reason,
        true,
    )
    .await?;
    Ok(Json(a))
}

/// Deny a request (a reason is required); the run fails.
#[utoipa::path(post, path = "/api/v1/approvals/{id}/deny", tag = "approvals",
    params(("id" = i64, Path)), request_body = Vote,
    responses((status = 200, body = Approval), (status = 400), (status = 403), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn deny(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(v): Json<Vote>,
) -> ApiResult<Json<Approval>> {
    let a = super::vote(
        &state,
        &auth.principal,
        &ctx,
        id,
        &v.binding,
        &v.reason,
        false,
    )
    .await?;
    Ok(Json(a))
}

/// Approval policies per action kind.
#[utoipa::path(get, path = "/api/v1/approval-policies", tag = "approvals",
    responses((status = 200, body = Vec<ActionPolicy>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn policies(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ActionPolicy>>> {
    Ok(Json(super::policies(&state).await?))
}

/// Set the approval policy of an action kind.
#[utoipa::path(put, path = "/api/v1/approval-policies/{kind}", tag = "approvals",
    params(("kind" = String, Path)), request_body = ApprovalPolicy,
    responses((status = 200, body = ActionPolicy), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn put_policy(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(kind): Path<String>,
    Json(policy): Json<ApprovalPolicy>,
) -> ApiResult<Json<ActionPolicy>> {
    super::put_policy(&state, &ctx, &auth.principal, &kind, &policy).await?;
    Ok(Json(ActionPolicy {
        action_kind: kind,
        policy,
    }))
}

/// Remove the approval policy of an action kind.
#[utoipa::path(delete, path = "/api/v1/approval-policies/{kind}", tag = "approvals",
    params(("kind" = String, Path)),
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_policy(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(kind): Path<String>,
) -> ApiResult<StatusCode> {
    super::delete_policy(&state, &ctx, &auth.principal, &kind).await?;
    Ok(StatusCode::NO_CONTENT)
}
