//! `GET /api/v1/updates` (viewers: what discovery last saw),
//! `POST /api/v1/updates/check` (operators: run discovery now, audited),
//! `GET`/`PUT /api/v1/services/{id}/update-settings` (viewers read,
//! operators change, audited).
//!
//! The list reads the table only, never a registry: it answers at once
//! however slow or down the registries are.

use axum::extract::State;
use opsdeck_wire::{ImageStatus, UpdateCheck, UpdateSettings};
use serde_json::json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::{Auth, Operator, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::state::AppState;
use crate::updates::{discover, status};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(check))
        .routes(routes!(get_settings, put_settings))
}

/// What each service's registry said at the last check, by service name.
#[utoipa::path(get, path = "/api/v1/updates", tag = "updates",
    responses((status = 200, body = Vec<ImageStatus>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ImageStatus>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(status::list(&mut conn, None).await?))
}

/// Check now (operators): asks the registries for every service with
/// containers (or the ones named) and returns the fresh statuses.
#[utoipa::path(post, path = "/api/v1/updates/check", tag = "updates",
    request_body = UpdateCheck,
    responses((status = 200, body = Vec<ImageStatus>), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn check(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(body): Json<UpdateCheck>,
) -> ApiResult<Json<Vec<ImageStatus>>> {
    if let Some(ids) = &body.service_ids {
        if ids.len() > 1000 {
            return Err(ApiError::invalid_field("service_ids", "at most 1000"));
        }
        let mut conn = state.pool.acquire().await?;
        for id in ids {
            if !status::service_exists(&mut conn, *id).await? {
                return Err(ApiError::NotFound(format!("service {id}")));
            }
        }
    }
    let statuses = discover::discover(&state, body.service_ids.as_deref()).await?;
    let mut tx = state.pool.begin().await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "updates.check",
        None,
        json!({
            "service_ids": body.service_ids,
            "checked": statuses.len(),
            "updates": statuses.iter().filter(|s| s.update_available).count(),
            "errors": statuses.iter().filter(|s| s.error.is_some()).count(),
        }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(statuses))
}

/// A service's update settings (the defaults until changed).
#[utoipa::path(get, path = "/api/v1/services/{id}/update-settings", tag = "updates",
    params(("id" = i64, Path)),
    responses((status = 200, body = UpdateSettings), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_settings(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<UpdateSettings>> {
    let mut conn = state.pool.acquire().await?;
    if !status::service_exists(&mut conn, id).await? {
        return Err(ApiError::NotFound(format!("service {id}")));
    }
    Ok(Json(status::settings(&mut conn, id).await?))
}

/// The bounds of each setting (as in the migration's checks).
fn validate(s: &UpdateSettings) -> Result<(), ApiError> {
    if !(5..=3600).contains(&s.gate_seconds) {
        return Err(ApiError::invalid_field(
            "gate_seconds",
            "between 5 and 3600 seconds",
        ));
    }
    if let Some(m) = s.heal_after_minutes {
        if !(1..=1440).contains(&m) {
            return Err(ApiError::invalid_field(
                "heal_after_minutes",
                "between 1 and 1440 minutes (or null: auto-heal off)",
            ));
        }
    }
    if !(1..=60).contains(&s.heal_max_per_hour) {
        return Err(ApiError::invalid_field(
            "heal_max_per_hour",
            "between 1 and 60",
        ));
    }
    Ok(())
}

/// Change a service's update settings (operators).
#[utoipa::path(put, path = "/api/v1/services/{id}/update-settings", tag = "updates",
    params(("id" = i64, Path)), request_body = UpdateSettings,
    responses((status = 200, body = UpdateSettings), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn put_settings(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(s): Json<UpdateSettings>,
) -> ApiResult<Json<UpdateSettings>> {
    validate(&s)?;
    let mut tx = state.pool.begin().await?;
    if !status::service_exists(&mut tx, id).await? {
        return Err(ApiError::NotFound(format!("service {id}")));
    }
    let before = status::settings(&mut tx, id).await?;
    status::put_settings(&mut tx, id, &s).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "service.update_settings",
        Some(format!("service:{id}")),
        json!({ "before": before, "after": s }),
    )
    .await?;
    let out = status::settings(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(out))
}
