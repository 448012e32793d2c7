//! The schedules' routes: extract, authorise, call the domain
//! ([`super`]), map (its [`super::ScheduleError`] converts in `error.rs`),
//! audit `schedule.create|update|delete`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use opsdeck_wire::{CronPreview, Schedule, ScheduleWrite};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{missed_str, Checked, Timetable, NEXT_RUNS};
use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(preview))
        .routes(routes!(get_one, update, delete))
}

fn audit_params(w: &ScheduleWrite, c: &Checked) -> Value {
    json!({
        "name": c.name,
        "runbook_id": w.runbook_id,
        "cron": c.cron,
        "timezone": c.timezone,
        "params": w.params,
        "enabled": w.enabled,
        "missed": missed_str(w.missed),
    })
}

/// Schedules with their next runs, last tick and last run.
#[utoipa::path(get, path = "/api/v1/schedules", tag = "schedules",
    responses((status = 200, body = Vec<Schedule>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Schedule>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(super::list(&mut conn).await?))
}

/// One schedule.
#[utoipa::path(get, path = "/api/v1/schedules/{id}", tag = "schedules",
    responses((status = 200, body = Schedule), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_one(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Schedule>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(super::get(&mut conn, id).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PreviewParams {
    /// Cron expression: 5 fields, or 6 with seconds first.
    pub cron: String,
    /// IANA time zone (default UTC).
    pub timezone: Option<String>,
}

/// The next runs of a cron expression in a time zone.
#[utoipa::path(get, path = "/api/v1/schedules/preview", tag = "schedules", params(PreviewParams),
    responses((status = 200, body = CronPreview), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn preview(
    _auth: Auth<Viewer>,
    Query(q): Query<PreviewParams>,
) -> ApiResult<Json<CronPreview>> {
    let t = Timetable::new(&q.cron, q.timezone.as_deref().unwrap_or("UTC"))
        .map_err(ApiError::BadRequest)?;
    let next_runs = t.next(Utc::now(), NEXT_RUNS);
    let local = next_runs.iter().map(|&d| t.local(d)).collect();
    Ok(Json(CronPreview { next_runs, local }))
}

/// Create a schedule (its first tick is the first occurrence after now).
#[utoipa::path(post, path = "/api/v1/schedules", tag = "schedules", request_body = ScheduleWrite,
    responses((status = 201, body = Schedule), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(w): Json<ScheduleWrite>,
) -> ApiResult<(StatusCode, Json<Schedule>)> {
    let mut tx = state.pool.begin().await?;
    let (id, c) = super::create(&state, &mut tx, &w, &auth.principal.username).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "schedule.create",
        Some(format!("schedule:{id}")),
        audit_params(&w, &c),
    )
    .await?;
    let s = super::get(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(s)))
}

/// Replace a schedule. Enabling it, or changing its cron or zone, starts
/// its timetable now (no catch-up for the time before).
#[utoipa::path(put, path = "/api/v1/schedules/{id}", tag = "schedules", request_body = ScheduleWrite,
    responses((status = 200, body = Schedule), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(w): Json<ScheduleWrite>,
) -> ApiResult<Json<Schedule>> {
    let mut tx = state.pool.begin().await?;
    let c = super::update(&state, &mut tx, id, &w).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "schedule.update",
        Some(format!("schedule:{id}")),
        audit_params(&w, &c),
    )
    .await?;
    let s = super::get(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(s))
}

/// Delete a schedule (its runs stay, without the link).
#[utoipa::path(delete, path = "/api/v1/schedules/{id}", tag = "schedules",
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let name = super::delete(&mut tx, id).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "schedule.delete",
        Some(format!("schedule:{id}")),
        json!({"name": name}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}
