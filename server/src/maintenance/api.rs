//! `/api/v1/maintenance/…`: periods, windows, stacks and their actuators,
//! and a preview of the maintenance page.
//!
//! Viewers read everything; operators turn maintenance on and off, extend
//! it and edit windows; admins configure actuators (proxy mode runs argv in
//! containers, so it is an admin's choice).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use opsdeck_wire::{
    Actuator, ActuatorWrite, EndMaintenance, ExtendMaintenance, MaintenancePeriod,
    MaintenancePeriodDetail, MaintenanceStack, MaintenanceWindow, StartMaintenance, Suppression,
    WindowPreview, WindowWrite,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::MaintenanceError;
use super::model::{self, NewPeriod};
use super::{actuate, recurrence, store, windows};
use crate::audit::Actor;
use crate::auth::{Admin, Auth, Operator, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;
use crate::timeline;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_periods, start))
        .routes(routes!(get_period))
        .routes(routes!(end))
        .routes(routes!(extend))
        .routes(routes!(list_windows, create_window))
        .routes(routes!(update_window, delete_window))
        .routes(routes!(preview_window))
        .routes(routes!(stacks))
        .routes(routes!(put_actuator, delete_actuator))
        .routes(routes!(page_preview))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PeriodParams {
    /// `open` (requested or in effect) or `all` (default).
    pub status: Option<String>,
}

/// Maintenance periods, newest first (at most 100).
#[utoipa::path(get, path = "/api/v1/maintenance/periods", tag = "maintenance", params(PeriodParams),
    responses((status = 200, body = Vec<MaintenancePeriod>), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_periods(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<PeriodParams>,
) -> ApiResult<Json<Vec<MaintenancePeriod>>> {
    let open_only = match q.status.as_deref() {
        None | Some("all") => false,
        Some("open") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "status \"{}\": open or all",
                other.escape_default()
            )))
        }
    };
    let rows = store::periods(&state.pool, open_only).await?;
    Ok(Json(
        rows.into_iter().map(store::PeriodRow::into_wire).collect(),
    ))
}

/// Turn maintenance on now. 202 with the new period (its enable run
/// applies it); 200 with the open period of the same scope when there is
/// one (nothing changes).
#[utoipa::path(post, path = "/api/v1/maintenance/periods", tag = "maintenance",
    request_body = StartMaintenance,
    responses((status = 202, body = MaintenancePeriod), (status = 200, body = MaintenancePeriod),
        (status = 400), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn start(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<StartMaintenance>,
) -> ApiResult<(StatusCode, Json<MaintenancePeriod>)> {
    let now = Utc::now();
    model::check_reason(&req.reason).map_err(MaintenanceError::Invalid)?;
    model::check_until(req.until, now).map_err(MaintenanceError::Invalid)?;
    if req.reason.trim().is_empty() {
        return Err(MaintenanceError::Invalid(
            "reason: say why (it is shown in the panel's banner)".into(),
        )
        .into());
    }
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    let resolved = model::resolve_scope(&mut tx, &req.scope)
        .await
        .map_err(MaintenanceError::Invalid)?;
    // Serialise starts so two identical requests cannot both open a period.
    store::lock_starts(&mut tx).await?;
    if let Some(id) = model::open_with_scope(&mut tx, &resolved.scope).await? {
        // Enabling twice changes nothing; the request is still on record.
        ctx.audit(
            &mut tx,
            p,
            "maintenance.start.unchanged",
            Some(format!("maintenance:{id}")),
            json!({ "scope": resolved.scope }),
        )
        .await?;
        let period = model::load(&mut tx, id).await?;
        ctx.commit(tx).await?;
        return Ok((StatusCode::OK, Json(period)));
    }
    let title = match &resolved.scope {
        opsdeck_wire::MaintenanceScope::Stack { stack } => format!("Maintenance of {stack}"),
        opsdeck_wire::MaintenanceScope::Services { services } if services.len() <= 3 => {
            format!("Maintenance of {}", services.join(", "))
        }
        opsdeck_wire::MaintenanceScope::Services { services } => {
            format!("Maintenance of {} services", services.len())
        }
    };
    let actor = Actor::of(p);
    let (id, run) = model::open(
        &state,
        &mut tx,
        NewPeriod {
            window: None,
            title,
            reason: req.reason.clone(),
            resolved: resolved.clone(),
            actuate: req.actuate,
            actor: &actor,
            user: Some(p.user_id),
            starts_at: now,
            ends_at: req.until,
        },
    )
    .await?
    .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("period not created")))?;
    ctx.audit(
        &mut tx,
        p,
        "maintenance.start",
        Some(format!("maintenance:{id}")),
        json!({ "scope": resolved.scope, "until": req.until, "actuate": req.actuate,
                "reason": req.reason.trim(), "run": run }),
    )
    .await?;
    let period = model::load(&mut tx, id).await?;
    ctx.commit(tx).await?;
    state.runs().changed(run).await;
    Ok((StatusCode::ACCEPTED, Json(period)))
}

/// A period with its suppressions and timeline.
#[utoipa::path(get, path = "/api/v1/maintenance/periods/{id}", tag = "maintenance",
    params(("id" = i64, Path)),
    responses((status = 200, body = MaintenancePeriodDetail), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_period(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<MaintenancePeriodDetail>> {
    let mut conn = state.pool.acquire().await?;
    let period = model::load(&mut conn, id).await?;
    let suppressions: Vec<Suppression> = store::suppressions(&mut conn, id).await?;
    let timeline = timeline::list(&mut conn, "maintenance", id).await?;
    Ok(Json(MaintenancePeriodDetail {
        period,
        suppressions,
        timeline,
    }))
}

/// End a period now (a requested one is cancelled).
#[utoipa::path(post, path = "/api/v1/maintenance/periods/{id}/end", tag = "maintenance",
    params(("id" = i64, Path)), request_body = EndMaintenance,
    responses((status = 202, body = MaintenancePeriod), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn end(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(body): Json<EndMaintenance>,
) -> ApiResult<(StatusCode, Json<MaintenancePeriod>)> {
    let note = body.note;
    if note.chars().count() > 2000 {
        return Err(MaintenanceError::Invalid("note: at most 2000 characters".into()).into());
    }
    let p = &auth.principal;
    let actor = Actor::of(p);
    let why = if note.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", note.trim())
    };
    let mut tx = state.pool.begin().await?;
    let ending = model::end(&state, &mut tx, id, &actor, Some(p.user_id), &why).await?;
    let run = match ending {
        model::Ending::Queued(run) => Some(run),
        model::Ending::Cancelled => None,
    };
    ctx.audit(
        &mut tx,
        p,
        "maintenance.end",
        Some(format!("maintenance:{id}")),
        json!({ "note": note.trim(), "run": run }),
    )
    .await?;
    let period = model::load(&mut tx, id).await?;
    ctx.commit(tx).await?;
    if let Some(run) = run {
        state.runs().changed(run).await;
    }
    Ok((StatusCode::ACCEPTED, Json(period)))
}

/// Move an open period's end.
#[utoipa::path(post, path = "/api/v1/maintenance/periods/{id}/extend", tag = "maintenance",
    params(("id" = i64, Path)), request_body = ExtendMaintenance,
    responses((status = 200, body = MaintenancePeriod), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn extend(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<ExtendMaintenance>,
) -> ApiResult<Json<MaintenancePeriod>> {
    model::check_until(req.until, Utc::now()).map_err(MaintenanceError::Invalid)?;
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    model::extend(&mut tx, id, req.until, &Actor::of(p)).await?;
    ctx.audit(
        &mut tx,
        p,
        "maintenance.extend",
        Some(format!("maintenance:{id}")),
        json!({ "until": req.until }),
    )
    .await?;
    let period = model::load(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(period))
}

// ---------------------------------------------------------------- windows

/// Scheduled windows.
#[utoipa::path(get, path = "/api/v1/maintenance/windows", tag = "maintenance",
    responses((status = 200, body = Vec<MaintenanceWindow>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_windows(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<MaintenanceWindow>>> {
    let now = Utc::now();
    let rows = store::windows(&state.pool, false).await?;
    Ok(Json(
        rows.into_iter().map(|r| windows::to_wire(r, now)).collect(),
    ))
}

async fn checked_window(
    conn: &mut sqlx::PgConnection,
    mut w: WindowWrite,
) -> ApiResult<WindowWrite> {
    windows::validate(&mut w).map_err(MaintenanceError::Invalid)?;
    let resolved = model::resolve_scope(conn, &w.scope)
        .await
        .map_err(MaintenanceError::Invalid)?;
    w.scope = resolved.scope;
    Ok(w)
}

async fn write_window(
    conn: &mut sqlx::PgConnection,
    id: Option<i64>,
    w: &WindowWrite,
    p: &crate::auth::Principal,
) -> ApiResult<i64> {
    let scope = serde_json::to_value(&w.scope).map_err(anyhow::Error::from)?;
    let repeat = windows::repeat_str(w.repeat);
    let values = store::WindowValues {
        title: &w.title,
        reason: w.reason.trim(),
        scope: &scope,
        actuate: w.actuate,
        starts_at: w.starts_at,
        ends_at: w.ends_at,
        repeat,
        weekdays: &w.weekdays,
        time_zone: &w.time_zone,
        until: w.until,
        enabled: w.enabled,
    };
    let id = match id {
        None => Some(store::insert_window(conn, &values, &p.username, p.user_id).await?),
        Some(id) => store::update_window(conn, id, &values).await?,
    };
    id.ok_or_else(|| ApiError::NotFound("maintenance window".into()))
}

fn window_audit(w: &WindowWrite) -> serde_json::Value {
    json!({ "title": w.title, "scope": w.scope, "starts_at": w.starts_at, "ends_at": w.ends_at,
            "repeat": windows::repeat_str(w.repeat), "weekdays": w.weekdays,
            "time_zone": w.time_zone, "until": w.until, "enabled": w.enabled,
            "actuate": w.actuate })
}

async fn load_window(conn: &mut sqlx::PgConnection, id: i64) -> ApiResult<MaintenanceWindow> {
    let r = store::window(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("maintenance window {id}")))?;
    Ok(windows::to_wire(r, Utc::now()))
}

/// Schedule a window.
#[utoipa::path(post, path = "/api/v1/maintenance/windows", tag = "maintenance",
    request_body = WindowWrite,
    responses((status = 201, body = MaintenanceWindow), (status = 400)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn create_window(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(w): Json<WindowWrite>,
) -> ApiResult<(StatusCode, Json<MaintenanceWindow>)> {
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    let w = checked_window(&mut tx, w).await?;
    let id = write_window(&mut tx, None, &w, p).await?;
    ctx.audit(
        &mut tx,
        p,
        "maintenance.window.create",
        Some(format!("maintenance_window:{id}")),
        window_audit(&w),
    )
    .await?;
    let out = load_window(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Change a window (a period it already opened runs to its own end).
#[utoipa::path(put, path = "/api/v1/maintenance/windows/{id}", tag = "maintenance",
    params(("id" = i64, Path)), request_body = WindowWrite,
    responses((status = 200, body = MaintenanceWindow), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn update_window(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(w): Json<WindowWrite>,
) -> ApiResult<Json<MaintenanceWindow>> {
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    let w = checked_window(&mut tx, w).await?;
    write_window(&mut tx, Some(id), &w, p).await?;
    ctx.audit(
        &mut tx,
        p,
        "maintenance.window.update",
        Some(format!("maintenance_window:{id}")),
        window_audit(&w),
    )
    .await?;
    let out = load_window(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(out))
}

/// Delete a window (a period it already opened runs to its own end).
#[utoipa::path(delete, path = "/api/v1/maintenance/windows/{id}", tag = "maintenance",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn delete_window(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let title = store::delete_window(&mut tx, id).await?;
    let title = title.ok_or_else(|| ApiError::NotFound(format!("maintenance window {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "maintenance.window.delete",
        Some(format!("maintenance_window:{id}")),
        json!({ "title": title }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A window's next occurrences, before saving it.
#[utoipa::path(post, path = "/api/v1/maintenance/windows/preview", tag = "maintenance",
    request_body = WindowWrite,
    responses((status = 200, body = WindowPreview), (status = 400)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn preview_window(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(mut w): Json<WindowWrite>,
) -> ApiResult<Json<WindowPreview>> {
    let spec = windows::validate(&mut w).map_err(MaintenanceError::Invalid)?;
    // A POST like every preview, so it is on record like them.
    let mut tx = state.pool.begin().await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "maintenance.window.preview",
        None,
        window_audit(&w),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(WindowPreview {
        summary: recurrence::summary(&spec),
        next: recurrence::occurrences(&spec, Utc::now(), 5),
    }))
}

// ---------------------------------------------------------------- stacks

/// The stacks (compose projects of the inventory) and their actuators.
#[utoipa::path(get, path = "/api/v1/maintenance/stacks", tag = "maintenance",
    responses((status = 200, body = Vec<MaintenanceStack>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn stacks(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<MaintenanceStack>>> {
    let mut conn = state.pool.acquire().await?;
    let rows = store::stacks(&mut conn).await?;
    let mut out = Vec::with_capacity(rows.len());
    for (stack, services) in rows {
        let actuator = store::actuator(&mut conn, &stack).await?;
        out.push(MaintenanceStack {
            stack,
            services,
            actuator,
        });
    }
    Ok(Json(out))
}

/// Configure what a stack's maintenance does (admins).
#[utoipa::path(put, path = "/api/v1/maintenance/actuators/{stack}", tag = "maintenance",
    params(("stack" = String, Path)), request_body = ActuatorWrite,
    responses((status = 200, body = Actuator), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn put_actuator(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(stack): Path<String>,
    Json(mut a): Json<ActuatorWrite>,
) -> ApiResult<Json<Actuator>> {
    let stack_ok = !stack.is_empty()
        && stack.len() <= 128
        && stack
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
        && stack
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric());
    if !stack_ok {
        return Err(MaintenanceError::Invalid(
            "stack: a compose project name (letters, digits, _ . -)".into(),
        )
        .into());
    }
    let mut tx = state.pool.begin().await?;
    actuate::validate(&mut tx, &mut a)
        .await
        .map_err(MaintenanceError::Invalid)?;
    let mode = match a.mode {
        opsdeck_wire::ActuationMode::None => "none",
        opsdeck_wire::ActuationMode::Proxy => "proxy",
        opsdeck_wire::ActuationMode::Runbook => "runbook",
    };
    let config = actuate::config_json(&a);
    // Not while the stack is in maintenance (its disable must reload the
    // proxy it enabled). A change left half-done (`enabling`/`disabling`
    // after a failed restore) may be reconfigured — e.g. a broken reload
    // argv fixed: `saved` names its own paths, and the next enable or
    // disable restores them first.
    let busy = store::actuating_period(&mut tx, &stack).await?;
    let on = store::actuator_on(&mut tx, &stack).await?;
    if busy.is_some() || on {
        return Err(ApiError::Conflict(format!(
            "stack {stack} is in maintenance{}: change its actuation after it ended",
            busy.map(|id| format!(" (period #{id})"))
                .unwrap_or_default()
        )));
    }
    store::upsert_actuator(&mut tx, &stack, mode, &config).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "maintenance.actuator.set",
        Some(format!("stack:{stack}")),
        json!({ "mode": mode, "config": config }),
    )
    .await?;
    let out = store::actuator(&mut tx, &stack)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("actuator not stored")))?;
    ctx.commit(tx).await?;
    Ok(Json(out))
}

/// Remove a stack's actuator (admins); refused while it is not `off`.
#[utoipa::path(delete, path = "/api/v1/maintenance/actuators/{stack}", tag = "maintenance",
    params(("stack" = String, Path)),
    responses((status = 204), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_actuator(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(stack): Path<String>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let st = store::lock_actuator_state(&mut tx, &stack).await?;
    match st.as_deref() {
        None => return Err(ApiError::NotFound(format!("actuator of stack {stack}"))),
        Some("off") => {}
        Some(s) => {
            return Err(ApiError::Conflict(format!(
                "stack {stack} is {s}: remove its actuation after its maintenance ended"
            )))
        }
    }
    store::delete_actuator(&mut tx, &stack).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "maintenance.actuator.delete",
        Some(format!("stack:{stack}")),
        json!({}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct PageParams {
    /// The expected end shown on the page (default: in one hour).
    pub until: Option<DateTime<Utc>>,
}

/// The maintenance page as proxy mode places it.
#[utoipa::path(get, path = "/api/v1/maintenance/page", tag = "maintenance", params(PageParams),
    responses((status = 200, content_type = "text/html", description = "the maintenance page")),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn page_preview(_auth: Auth<Viewer>, Query(q): Query<PageParams>) -> Response {
    let until = q
        .until
        .unwrap_or_else(|| Utc::now() + chrono::Duration::hours(1));
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        super::page::render(until),
    )
        .into_response()
}
