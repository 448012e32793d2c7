//! The `/api/v1/checks`, `/api/v1/status` and heartbeat routes: extract,
//! authorise, call the domain (`defs`) and the store, map the answer.
//! Every change writes its audit entry in the same transaction.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use futures::Stream;
use opsdeck_wire::{
    Check, CheckEngineStats, CheckHistory, CheckInput, CheckSpec, HealthSettings, ProbeResult,
    PublicStatusInput, ServiceStatus, StatusBoard,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::defs::{
    self, audit_params, clean_password, credential_target, load_one, validate_def, validate_target,
    CheckError, Valid, DEFAULT_FAIL_AFTER, DEFAULT_INTERVAL_S, DEFAULT_RECOVER_AFTER,
    DEFAULT_TIMEOUT_MS,
};
use super::probe;
mod public;
mod report;
mod rules;

pub use public::{css, page};

use super::store;
use crate::auth::{Admin, Auth, Heartbeat, Operator, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(run))
        .routes(routes!(heartbeat_by_id))
        .routes(routes!(history))
        .routes(routes!(engine_stats))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(board))
        .routes(routes!(events))
        .routes(routes!(set_public))
        .merge(report::router())
        .merge(rules::router())
}

// ------------------------------------------------------------------ reading

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Only the checks of this service; `0`: host checks only.
    pub service_id: Option<i64>,
}

/// Checks with their settled state and latest result.
#[utoipa::path(get, path = "/api/v1/checks", tag = "checks", params(ListParams),
    responses((status = 200, body = Vec<Check>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<Vec<Check>>> {
    let show = auth.principal.role >= opsdeck_wire::Role::Operator;
    Ok(Json(
        defs::load(&state.pool, state.health(), q.service_id, show).await?,
    ))
}

/// One check.
#[utoipa::path(get, path = "/api/v1/checks/{id}", tag = "checks",
    responses((status = 200, body = Check), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_one(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Check>> {
    let show = auth.principal.role >= opsdeck_wire::Role::Operator;
    Ok(Json(load_one(&state.pool, state.health(), id, show).await?))
}

// ------------------------------------------------------------------ writing

/// Add a check.
#[utoipa::path(post, path = "/api/v1/checks", tag = "checks", request_body = CheckInput,
    responses((status = 201, body = Check), (status = 400), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn create(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(input): Json<CheckInput>,
) -> ApiResult<(StatusCode, Json<Check>)> {
    let spec = input
        .spec
        .ok_or_else(|| ApiError::BadRequest("spec: required".into()))?;
    let heartbeat = matches!(spec, CheckSpec::Heartbeat(_));
    let one = if heartbeat { 1 } else { DEFAULT_FAIL_AFTER };
    let mut v = Valid {
        service_id: input.service_id,
        name: input.name.unwrap_or_default(),
        interval_s: input.interval_s.unwrap_or(DEFAULT_INTERVAL_S),
        timeout_ms: input.timeout_ms.unwrap_or(
            DEFAULT_TIMEOUT_MS.min(input.interval_s.unwrap_or(DEFAULT_INTERVAL_S) * 1000),
        ),
        fail_after: input.fail_after.unwrap_or(one),
        recover_after: input.recover_after.unwrap_or(if heartbeat {
            1
        } else {
            DEFAULT_RECOVER_AFTER
        }),
        enabled: input.enabled.unwrap_or(true),
        spec,
    };
    validate_def(&mut v)?;
    validate_target(&v.spec, state.settings.checks_allow_link_local)?;
    let password = clean_password(input.password).flatten();
    ask_server(&state, &v, password.as_deref()).await?;
    let token = heartbeat.then(crate::auth::random_token);
    let mut tx = state.pool.begin().await?;
    defs::validate_engine(&mut tx, &v.spec).await?;
    if let Some(sid) = v.service_id {
        if !store::service_exists(&mut tx, sid).await? {
            return Err(ApiError::BadRequest(format!(
                "service_id: no service {sid}"
            )));
        }
    }
    let id = store::insert(
        &mut tx,
        v.service_id,
        v.spec.kind(),
        v.columns()?,
        password.as_deref(),
        token.as_deref(),
    )
    .await
    .map_err(|e| CheckError::on_write(e, &v.name))?;
    let mut params = audit_params(&v);
    params["id"] = json!(id);
    params["password_set"] = json!(password.is_some());
    ctx.audit(
        &mut tx,
        &auth.principal,
        "check.create",
        Some(format!("check:{id}")),
        params,
    )
    .await?;
    ctx.commit(tx).await?;
    state.health().reload_check(id).await?;
    crate::fanout::publish(&state, crate::fanout::Change::Check(id)).await;
    Ok((
        StatusCode::CREATED,
        Json(load_one(&state.pool, state.health(), id, true).await?),
    ))
}

/// A Prometheus check's query, asked once of its server before it is
/// saved (a query the server refuses is a 400 in the server's words); a
/// scrape check's target, scraped once (it must answer an exposition).
async fn ask_server(state: &AppState, v: &Valid, token: Option<&str>) -> ApiResult<()> {
    let timeout = std::time::Duration::from_millis(u64::from(v.timeout_ms));
    match &v.spec {
        CheckSpec::Prometheus(c) => {
            probe::prometheus::validate(state.health().http(), c, token, timeout)
                .await
                .map_err(ApiError::from_validation)?;
        }
        CheckSpec::Scrape(c) => {
            probe::scrape::validate(state.health().http(), c, v.interval_s, token, timeout)
                .await
                .map_err(|(f, e)| ApiError::from_validation(format!("{f}: {e}")))?;
        }
        _ => {}
    }
    Ok(())
}

/// Change a check (only the fields given). `password: ""` removes it.
#[utoipa::path(patch, path = "/api/v1/checks/{id}", tag = "checks", request_body = CheckInput,
    responses((status = 200, body = Check), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn update(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(input): Json<CheckInput>,
) -> ApiResult<Json<Check>> {
    let cur = load_one(&state.pool, state.health(), id, true).await?;
    if let Some(spec) = &input.spec {
        if spec.kind() != cur.spec.kind() {
            return Err(ApiError::BadRequest(
                "spec: the kind of a check cannot change; add a new check".into(),
            ));
        }
    }
    if input.service_id.is_some() && input.service_id != cur.service_id {
        return Err(ApiError::BadRequest(
            "service_id: a check cannot move to another service".into(),
        ));
    }
    let cur_target = credential_target(&cur.spec);
    let mut v = Valid {
        service_id: cur.service_id,
        name: input.name.unwrap_or(cur.name),
        spec: input.spec.unwrap_or(cur.spec),
        interval_s: input.interval_s.unwrap_or(cur.interval_s),
        timeout_ms: input.timeout_ms.unwrap_or(cur.timeout_ms),
        fail_after: input.fail_after.unwrap_or(cur.fail_after),
        recover_after: input.recover_after.unwrap_or(cur.recover_after),
        enabled: input.enabled.unwrap_or(cur.enabled),
    };
    validate_def(&mut v)?;
    validate_target(&v.spec, state.settings.checks_allow_link_local)?;
    let password = clean_password(input.password);
    // A stored password never follows the check to another server: a new
    // host, port, user or TLS mode needs it again in the same request.
    if cur.has_password && password.is_none() && cur_target != credential_target(&v.spec) {
        return Err(ApiError::invalid_field(
            "password",
            "required again because the host, port, user or TLS mode changed \
             (or send \"\" to remove it)",
        ));
    }
    let stored = (password.is_none() && cur.has_password)
        .then(|| state.health().stored_password(id))
        .flatten();
    ask_server(&state, &v, password.clone().flatten().or(stored).as_deref()).await?;
    let mut tx = state.pool.begin().await?;
    defs::validate_engine(&mut tx, &v.spec).await?;
    store::update(
        &mut tx,
        id,
        v.columns()?,
        password.as_ref().map(Option::as_deref),
    )
    .await
    .map_err(|e| CheckError::on_write(e, &v.name))?;
    let mut params = audit_params(&v);
    if let Some(p) = &password {
        params["password_set"] = json!(p.is_some());
    }
    ctx.audit(
        &mut tx,
        &auth.principal,
        "check.update",
        Some(format!("check:{id}")),
        params,
    )
    .await?;
    ctx.commit(tx).await?;
    state.health().reload_check(id).await?;
    crate::fanout::publish(&state, crate::fanout::Change::Check(id)).await;
    Ok(Json(load_one(&state.pool, state.health(), id, true).await?))
}

/// Delete a check with its history.
#[utoipa::path(delete, path = "/api/v1/checks/{id}", tag = "checks",
    responses((status = 204), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn delete(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let name = store::delete(&mut tx, id).await?;
    let name = name.ok_or_else(|| ApiError::NotFound(format!("check {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "check.delete",
        Some(format!("check:{id}")),
        json!({"name": name}),
    )
    .await?;
    ctx.commit(tx).await?;
    state.health().reload_check(id).await?;
    crate::fanout::publish(&state, crate::fanout::Change::Check(id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Probe now and record the result.
#[utoipa::path(post, path = "/api/v1/checks/{id}/run", tag = "checks",
    responses((status = 200, body = ProbeResult), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ProbeResult>> {
    let result = state
        .health()
        .run_now(id)
        .await
        .ok_or_else(|| ApiError::NotFound(format!("check {id}")))?;
    let mut tx = state.pool.begin().await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "check.run",
        Some(format!("check:{id}")),
        json!({"status": result.status, "message": result.message}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(result))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryParams {
    /// `day` (per-minute rollups, default), `week` or `month` (hourly).
    pub range: Option<String>,
}

/// Rollups, state changes and uptime of a check.
#[utoipa::path(get, path = "/api/v1/checks/{id}/history", tag = "checks", params(HistoryParams),
    responses((status = 200, body = CheckHistory), (status = 400), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn history(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<HistoryParams>,
) -> ApiResult<Json<CheckHistory>> {
    let (hourly, days, resolution) = defs::history_range(q.range.as_deref())?;
    if !store::exists(&state.pool, id).await? {
        return Err(ApiError::NotFound(format!("check {id}")));
    }
    // History shows finished minutes; the live value is on the check itself.
    let rollups = store::rollups(&state.pool, id, hourly, days).await?;
    let events = store::events(&state.pool, id, days).await?;
    let uptime = store::uptime_of(&state.pool, id).await?;
    Ok(Json(CheckHistory {
        check_id: id,
        resolution: resolution.into(),
        rollups,
        events,
        uptime,
    }))
}

/// Figures of the check engine.
#[utoipa::path(get, path = "/api/v1/checks/engine", tag = "checks",
    responses((status = 200, body = CheckEngineStats)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn engine_stats(_auth: Auth<Admin>, State(state): State<AppState>) -> Json<CheckEngineStats> {
    Json(state.health().stats())
}

/// Retention of rollups and events; time of the daily report.
#[utoipa::path(get, path = "/api/v1/checks/settings", tag = "checks",
    responses((status = 200, body = HealthSettings)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn get_settings(
    _auth: Auth<Admin>,
    State(state): State<AppState>,
) -> ApiResult<Json<HealthSettings>> {
    Ok(Json(store::settings(&state.pool).await?))
}

/// Change retention and the report time.
#[utoipa::path(put, path = "/api/v1/checks/settings", tag = "checks", request_body = HealthSettings,
    responses((status = 200, body = HealthSettings), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn put_settings(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(s): Json<HealthSettings>,
) -> ApiResult<Json<HealthSettings>> {
    defs::validate_settings(&s)?;
    let mut tx = state.pool.begin().await?;
    store::put_settings(&mut tx, &s).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "health.settings",
        None,
        serde_json::to_value(&s).map_err(anyhow::Error::from)?,
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(store::settings(&state.pool).await?))
}

// ------------------------------------------------------------------ board

#[derive(Debug, Deserialize, IntoParams)]
pub struct BoardParams {
    /// Only each tier's first N services in the dashboard's order (worst
    /// health first, then name), with `tier_totals` saying how many each
    /// tier has: the dashboard's first screen, before the whole board.
    /// 1 to 1000.
    pub first: Option<usize>,
}

/// The dashboard's data: every service's status, host checks, engines.
#[utoipa::path(get, path = "/api/v1/status", tag = "status", params(BoardParams),
    responses((status = 200, body = StatusBoard), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn board(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<BoardParams>,
) -> ApiResult<Response> {
    let json =
        |b: axum::body::Bytes| ([(header::CONTENT_TYPE, "application/json")], b).into_response();
    let first = match q.first {
        Some(n @ 1..=1000) => Some(n),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "first",
                "must be between 1 and 1000",
            ))
        }
        None => None,
    };
    if first.is_none() {
        if let Some(b) = state.health().cached_board() {
            return Ok(json(b));
        }
    }
    let hub = state.health();
    let (version, services, tier_totals) = match first {
        Some(n) => {
            let (v, s, t) = hub.first_statuses(n);
            (v, s, Some(t))
        }
        None => {
            let (v, s) = hub.statuses();
            (v, s, None)
        }
    };
    let engines = crate::engines::list_wire(&state).await?;
    let (overall, counts) = hub.overall_and_counts();
    let board = StatusBoard {
        overall,
        counts,
        services,
        host_checks: hub.host_checks(),
        hosts: hub.hosts(),
        engines,
        version,
        generated_at: Utc::now(),
        maintenance: hub.maintenance_banners(),
        tier_totals,
    };
    let body = axum::body::Bytes::from(serde_json::to_vec(&board).map_err(anyhow::Error::from)?);
    if first.is_none() {
        hub.store_board(version, body.clone());
    }
    Ok(json(body))
}

/// Live status changes: SSE `status` events (data: StatusChange JSON) as
/// services change; `resync` when this client fell behind, and once a
/// minute when sparklines and uptime moved on (refetch the board).
#[utoipa::path(get, path = "/api/v1/status/events", tag = "status",
    responses((status = 200, description = "text/event-stream of `status` events")),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn events(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.health().subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        use tokio::sync::broadcast::error::RecvError;
        let ev = match rx.recv().await {
            Ok(super::engine::Push::Change(bytes)) => Event::default()
                .event("status")
                .data(String::from_utf8_lossy(&bytes)),
            Ok(super::engine::Push::Refresh) => Event::default().event("resync").data("minute"),
            Err(RecvError::Lagged(_)) => Event::default().event("resync").data("lagged"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(ev), rx))
    });
    let stream = futures::StreamExt::take_until(stream, state.engines.closed());
    // The stream ends with the session that opened it.
    let stream = futures::StreamExt::take_until(
        stream,
        crate::auth::credential_ended(state.pool.clone(), &auth.principal),
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Show a service on the public status page, or hide it.
#[utoipa::path(put, path = "/api/v1/services/{id}/public", tag = "status", request_body = PublicStatusInput,
    responses((status = 200, body = ServiceStatus), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn set_public(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(input): Json<PublicStatusInput>,
) -> ApiResult<Json<ServiceStatus>> {
    let name = defs::public_name(input.public_name)?;
    let mut tx = state.pool.begin().await?;
    let found = store::set_public(&mut tx, id, input.public, name.as_deref()).await?;
    let service = found.ok_or_else(|| ApiError::NotFound(format!("service {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "service.public",
        Some(format!("service:{service}")),
        json!({"public": input.public, "public_name": name}),
    )
    .await?;
    ctx.commit(tx).await?;
    state.health().refresh_inventory().await?;
    state
        .health()
        .status_of(id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))
}

/// A job reports in with an API token (scope `heartbeat`) instead of the
/// check's capability URL. Like the capability URL it is a probe result, not
/// an audited action (one entry per ping would flood the log): the handler
/// marks the request as handled for the audit layer, the ping shows in the
/// check's history.
#[utoipa::path(post, path = "/api/v1/checks/{id}/heartbeat", tag = "checks",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn heartbeat_by_id(
    _auth: Auth<Operator, Heartbeat>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let found = state
        .health()
        .heartbeat_by_id(id)
        .await
        .map_err(|e| ApiError::Unavailable(format!("recording the heartbeat failed: {e:#}")))?;
    if !found {
        return Err(ApiError::NotFound(format!("heartbeat check {id}")));
    }
    ctx.slots.mark_audited();
    Ok(StatusCode::NO_CONTENT)
}

/// `GET|POST /api/v1/heartbeat/{token}`: a job reports in. No session: the
/// token is the credential. Mounted outside the audit and CSRF layers (see
/// the module docs).
pub async fn heartbeat(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    if token.len() > 128
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return (StatusCode::NOT_FOUND, "unknown heartbeat\n").into_response();
    }
    match state.health().heartbeat(&token).await {
        Ok(true) => (StatusCode::OK, "OK\n").into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, "unknown heartbeat\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "recording a heartbeat failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response()
        }
    }
}
