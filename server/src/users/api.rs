//! `/api/v1/users`: extract, authorise (admins only), call [`super`], map.

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{
    CreateUserRequest, EndedSessions, ResetPasswordRequest, UpdateUserRequest, User,
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Admin, Auth, RequestCtx};
use crate::error::{ApiResult, Json, Path};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update))
        .routes(routes!(reset_password))
        .routes(routes!(end_sessions))
}

/// List users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = Vec<User>)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn list(_auth: Auth<Admin>, State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    Ok(Json(super::list(&state.pool).await?))
}

/// Create a user; they must change the password at first login.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let user = super::create(&state.pool, &ctx, &auth.principal, req).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Change a user's display name, role, or disabled state.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUserRequest,
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = User), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(
        super::update(&state.pool, &ctx, &auth.principal, id, req).await?,
    ))
}

/// Set a new password for a user; ends their sessions; they must change it at next login.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", request_body = ResetPasswordRequest,
    params(("id" = i64, Path, description = "user id")),
    responses((status = 204), (status = 400), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn reset_password(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    super::reset_password(&state.pool, &ctx, &auth.principal, id, req.new_password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// End all sessions of a user.
#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = EndedSessions), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn end_sessions(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<EndedSessions>> {
    let ended = super::end_sessions(&state.pool, &ctx, &auth.principal, id).await?;
    Ok(Json(EndedSessions { ended }))
}
