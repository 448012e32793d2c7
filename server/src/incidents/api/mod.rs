//! `/api/v1/incidents…`, `/api/v1/incident-settings`,
//! `/api/v1/integrations/alertmanager` and `/api/v1/reports/incidents…`.
//!
//! Viewers read everything (incident history, post-mortems, reports);
//! operators open and work incidents; admins change the settings (SLA
//! targets, auto-open, recovery policy, default escalation policy).
//!
//! Extract, authorise, call the domain ([`super::edit`], [`super::model`],
//! [`super::settings`], [`super::postmortem`], [`super::report`]), add the
//! request's audit entry in the same transaction, commit, map. Domain
//! errors become answers in `crate::error`.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use opsdeck_wire::{
    AddIncidentService, AlertmanagerPayload, AlertmanagerResult, Incident, IncidentAct,
    IncidentDetail, IncidentList, IncidentPatch, IncidentReport, IncidentSettings,
    LogExcerptRequest, NewIncident, NewNote, Postmortem, TimelineEvent,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::Actor;
use crate::auth::{Admin, AlertsWrite, Auth, Operator, Principal, RequestCtx, Viewer};
use crate::docker::ops;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::sse::async_stream;
use crate::state::AppState;

use super::model::{self, Act};
use super::{edit, postmortem, report, settings};

pub mod ack;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(list_events))
        .routes(routes!(get_one, patch))
        .routes(routes!(detail_events))
        .routes(routes!(acknowledge))
        .routes(routes!(diagnose))
        .routes(routes!(mitigate))
        .routes(routes!(resolve))
        .routes(routes!(reopen))
        .routes(routes!(postmortem_done))
        .routes(routes!(add_note))
        .routes(routes!(log_excerpt))
        .routes(routes!(add_service))
        .routes(routes!(get_postmortem, put_postmortem))
        .routes(routes!(postmortem_markdown))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(alertmanager))
        .routes(routes!(incident_report))
        .routes(routes!(incident_report_csv))
}

// ----------------------------------------------------------------- reading

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// open (default), closed, all, or one status.
    pub status: Option<String>,
    /// P1 … P4.
    pub severity: Option<String>,
    /// Text in the title or summary.
    pub q: Option<String>,
    pub service_id: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Incidents, newest first.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(ListParams),
    responses((status = 200, body = IncidentList), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(p): Query<ListParams>,
) -> ApiResult<Json<IncidentList>> {
    let mut conn = state.pool.acquire().await?;
    let list = edit::list(
        &mut conn,
        edit::ListQuery {
            status: p.status.as_deref(),
            severity: p.severity.as_deref(),
            q: p.q.as_deref(),
            service_id: p.service_id,
            limit: p.limit,
            offset: p.offset,
        },
    )
    .await?;
    Ok(Json(list))
}

/// One incident with its timeline, linked runs and notifications.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, body = IncidentDetail), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_one(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<IncidentDetail>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(edit::detail(&mut conn, id).await?))
}

/// Live incident list: an `incident` event (Incident JSON) for every change.
#[utoipa::path(get, path = "/api/v1/incidents/events", tag = "incidents",
    responses((status = 200, content_type = "text/event-stream", description = "`incident` events (Incident JSON)")),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_events(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>> {
    let mut changes = state.incidents().subscribe();
    let closed = state.engines.closed();
    let state_pool = state.pool.clone();
    let stream = async_stream(move |tx| async move {
        tokio::pin!(closed);
        loop {
            let id = tokio::select! {
                _ = &mut closed => return,
                c = changes.recv() => match c {
                    Ok(id) => id,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if tx.send(Event::default().event("resync").data("{}")).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    Err(_) => return,
                },
            };
            let Ok(mut conn) = state.pool.acquire().await else {
                continue;
            };
            let Ok(i) = model::load(&mut conn, id).await else {
                continue;
            };
            let data = serde_json::to_string(&i).unwrap_or_default();
            if tx
                .send(Event::default().event("incident").data(data))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let ended = crate::auth::credential_ended(state_pool, &auth.principal);
    Ok(Sse::new(futures::StreamExt::take_until(stream, ended)).keep_alive(KeepAlive::default()))
}

/// Live incident page: an `incident` event (IncidentDetail JSON) at once and
/// on every change (timeline, notifications, timers' inputs).
#[utoipa::path(get, path = "/api/v1/incidents/{id}/events", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/event-stream", description = "`incident` events (IncidentDetail JSON)"), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn detail_events(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>> {
    let first = {
        let mut conn = state.pool.acquire().await?;
        edit::detail(&mut conn, id).await?
    };
    let mut changes = state.incidents().subscribe();
    let closed = state.engines.closed();
    let state_pool = state.pool.clone();
    let stream = async_stream(move |tx| async move {
        tokio::pin!(closed);
        let mut last = serde_json::to_string(&first).unwrap_or_default();
        if tx
            .send(Event::default().event("incident").data(last.clone()))
            .await
            .is_err()
        {
            return;
        }
        loop {
            tokio::select! {
                _ = &mut closed => return,
                c = changes.recv() => match c {
                    Ok(changed) if changed != id => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    _ => {}
                },
                // A missed notification (LISTEN reconnecting) is caught here.
                _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            }
            let Ok(mut conn) = state.pool.acquire().await else {
                continue;
            };
            let Ok(d) = edit::detail(&mut conn, id).await else {
                continue;
            };
            drop(conn);
            let json = serde_json::to_string(&d).unwrap_or_default();
            if json != last {
                last = json;
                if tx
                    .send(Event::default().event("incident").data(last.clone()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    let ended = crate::auth::credential_ended(state_pool, &auth.principal);
    Ok(Sse::new(futures::StreamExt::take_until(stream, ended)).keep_alive(KeepAlive::default()))
}

// ---------------------------------------------------------------- writing

/// Declare an incident by hand. Escalation starts with the chosen policy
/// (else the default one).
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = NewIncident,
    responses((status = 201, body = Incident), (status = 400)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn create(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(n): Json<NewIncident>,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    let actor = Actor::of(&auth.principal);
    let mut tx = state.pool.begin().await?;
    let (id, title) = edit::create(&mut tx, &n, &actor).await?;
    // `open` wrote the `incident.open` entry as the declarer; the request's
    // own entry (source address) marks it audited for the middleware.
    ctx.audit(
        &mut tx,
        &auth.principal,
        "incident.create",
        Some(format!("incident:{id}")),
        json!({ "title": title, "severity": n.severity.as_str() }),
    )
    .await?;
    ctx.commit(tx).await?;
    super::escalation::wake();
    let mut conn = state.pool.acquire().await?;
    Ok((StatusCode::CREATED, Json(model::load(&mut conn, id).await?)))
}

/// Change title, severity (with a reason), summary, commander or escalation
/// policy. Each change is a timeline event.
#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = i64, Path)),
    request_body = IncidentPatch,
    responses((status = 200, body = Incident), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn patch(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(p): Json<IncidentPatch>,
) -> ApiResult<Json<Incident>> {
    let actor = Actor::of(&auth.principal);
    let mut tx = state.pool.begin().await?;
    let patched = edit::patch(&mut tx, id, &p, &actor).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "incident.update",
        Some(format!("incident:{id}")),
        json!({ "changes": patched.changes, "reason": patched.reason }),
    )
    .await?;
    ctx.commit(tx).await?;
    super::escalation::wake();
    let mut conn = state.pool.acquire().await?;
    Ok(Json(model::load(&mut conn, id).await?))
}

async fn act(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
    which: Act,
    body: IncidentAct,
) -> ApiResult<Json<Incident>> {
    let mut tx = state.pool.begin().await?;
    edit::act(
        &mut tx,
        id,
        which,
        &Actor::of(p),
        &body.note,
        ctx.source.clone(),
    )
    .await?;
    ctx.commit(tx).await?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(model::load(&mut conn, id).await?))
}

/// The optional body of a status action: empty, or `IncidentAct` JSON.
fn act_body(body: &[u8]) -> ApiResult<IncidentAct> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(IncidentAct {
            note: String::new(),
        });
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("invalid JSON body: {e}")))
}

macro_rules! act_route {
    ($fn:ident, $path:literal, $act:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "incidents", params(("id" = i64, Path)),
                    request_body = IncidentAct,
                    responses((status = 200, body = Incident), (status = 404), (status = 409)),
                    security(("session" = ["operator"]), ("token" = ["operator"])))]
        async fn $fn(
            auth: Auth<Operator>,
            ctx: RequestCtx,
            State(state): State<AppState>,
            Path(id): Path<i64>,
            body: axum::body::Bytes,
        ) -> ApiResult<Json<Incident>> {
            act(&state, &ctx, &auth.principal, id, $act, act_body(&body)?).await
        }
    };
}

act_route!(
    acknowledge,
    "/api/v1/incidents/{id}/acknowledge",
    Act::Acknowledge,
    "Acknowledge: someone is on it; escalation stops."
);
act_route!(
    diagnose,
    "/api/v1/incidents/{id}/diagnose",
    Act::Diagnose,
    "Mark the root cause identified (the diagnose milestone)."
);
act_route!(
    mitigate,
    "/api/v1/incidents/{id}/mitigate",
    Act::Mitigate,
    "Mark the impact mitigated."
);
act_route!(
    resolve,
    "/api/v1/incidents/{id}/resolve",
    Act::Resolve,
    "Resolve the incident."
);
act_route!(
    reopen,
    "/api/v1/incidents/{id}/reopen",
    Act::Reopen,
    "Reopen a resolved incident (acknowledged by whoever reopens it)."
);
act_route!(
    postmortem_done,
    "/api/v1/incidents/{id}/postmortem/done",
    Act::PostmortemDone,
    "Mark the post-mortem done (the incident is closed for good)."
);

/// Add a note to the timeline.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/notes", tag = "incidents", params(("id" = i64, Path)),
    request_body = NewNote,
    responses((status = 201, body = TimelineEvent), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn add_note(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(n): Json<NewNote>,
) -> ApiResult<(StatusCode, Json<TimelineEvent>)> {
    let text = edit::check_note(&n.text)?;
    let event = add_event(
        &state,
        &ctx,
        &auth.principal,
        id,
        ("note", text.clone(), json!({})),
        ("incident.note", json!({ "length": text.chars().count() })),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(event)))
}

/// Appends a person's event to an incident's timeline with its audit entry,
/// commits, and returns the event.
async fn add_event(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
    (kind, message, data): (&str, String, serde_json::Value),
    (action, params): (&str, serde_json::Value),
) -> ApiResult<TimelineEvent> {
    let mut tx = state.pool.begin().await?;
    let event = edit::add_event(&mut tx, id, &Actor::of(p), kind, &message, data).await?;
    ctx.audit(&mut tx, p, action, Some(format!("incident:{id}")), params)
        .await?;
    ctx.commit(tx).await?;
    Ok(event)
}

/// Keep the last lines of a service's container logs on the timeline.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/log-excerpt", tag = "incidents", params(("id" = i64, Path)),
    request_body = LogExcerptRequest,
    responses((status = 201, body = TimelineEvent), (status = 400), (status = 404), (status = 503)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn log_excerpt(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(r): Json<LogExcerptRequest>,
) -> ApiResult<(StatusCode, Json<TimelineEvent>)> {
    if !(1..=500).contains(&r.lines) {
        return Err(ApiError::BadRequest("lines: 1–500".into()));
    }
    let name = {
        let mut conn = state.pool.acquire().await?;
        model::load(&mut conn, id).await?;
        edit::service_name(&mut conn, r.service_id).await?
    };
    let target = crate::actions::service_target(&state, &name).await?;
    if target.containers.is_empty() {
        return Err(crate::actions::no_containers(&target.name));
    }
    let mut text = String::new();
    for c in &target.containers {
        let (_, docker) = crate::actions::engine_of(&state, c)?;
        text.push_str(&format!("── {} ({}) ──\n", c.name, c.state));
        let mut stream = Box::pin(ops::log_lines(
            &docker,
            &c.id,
            &ops::LogQuery {
                tail: Some(r.lines),
                timestamps: true,
                ..Default::default()
            },
        ));
        let read = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(line) = stream.next().await {
                match line {
                    Ok(l) => {
                        text.push_str(&l);
                        text.push('\n');
                    }
                    Err(e) => {
                        text.push_str(&format!("(log read failed: {e:#})\n"));
                        break;
                    }
                }
            }
        })
        .await;
        if read.is_err() {
            text.push_str("(log read timed out)\n");
        }
    }
    let text = edit::bound_log(text);
    let event = add_event(
        &state,
        &ctx,
        &auth.principal,
        id,
        (
            "log",
            format!(
                "Logs of {name} (last {} lines):\n{}",
                r.lines,
                text.trim_end()
            ),
            json!({ "service_id": r.service_id, "lines": r.lines }),
        ),
        (
            "incident.log_excerpt",
            json!({ "service": name, "lines": r.lines }),
        ),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(event)))
}

/// Add an affected service.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/services", tag = "incidents", params(("id" = i64, Path)),
    request_body = AddIncidentService,
    responses((status = 200, body = Incident), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn add_service(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(a): Json<AddIncidentService>,
) -> ApiResult<Json<Incident>> {
    let mut tx = state.pool.begin().await?;
    let name = edit::add_service(&mut tx, id, a.service_id, &Actor::of(&auth.principal)).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "incident.service.add",
        Some(format!("incident:{id}")),
        json!({ "service": name }),
    )
    .await?;
    ctx.commit(tx).await?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(model::load(&mut conn, id).await?))
}

// ------------------------------------------------------------- post-mortem

/// The post-mortem (a template prefilled from the timeline until saved).
#[utoipa::path(get, path = "/api/v1/incidents/{id}/postmortem", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, body = Postmortem), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_postmortem(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Postmortem>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(postmortem::load(&mut conn, id).await?.1))
}

/// Save the post-mortem.
#[utoipa::path(put, path = "/api/v1/incidents/{id}/postmortem", tag = "incidents", params(("id" = i64, Path)),
    request_body = Postmortem,
    responses((status = 200, body = Postmortem), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn put_postmortem(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(p): Json<Postmortem>,
) -> ApiResult<Json<Postmortem>> {
    postmortem::check(&p)?;
    let mut tx = state.pool.begin().await?;
    let p = postmortem::save(&mut tx, id, p, &Actor::of(&auth.principal)).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "incident.postmortem.save",
        Some(format!("incident:{id}")),
        json!({ "action_items": p.action_items.len() }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(p))
}

/// The post-mortem as a Markdown file.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/postmortem/markdown", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/markdown", body = String), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn postmortem_markdown(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let mut conn = state.pool.acquire().await?;
    let (i, p) = postmortem::load(&mut conn, id).await?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/markdown; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"incident-{id}-postmortem.md\""),
            ),
        ],
        postmortem::markdown(&i, &p),
    )
        .into_response())
}

// ---------------------------------------------------------------- settings

/// Incident settings: SLA targets per severity, automatic opening, what
/// recovery does, the default escalation policy, ack-link lifetime.
#[utoipa::path(get, path = "/api/v1/incident-settings", tag = "incidents",
    responses((status = 200, body = IncidentSettings)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_settings(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<IncidentSettings>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(settings::read(&mut conn).await?))
}

/// Change the incident settings (admins).
#[utoipa::path(put, path = "/api/v1/incident-settings", tag = "incidents", request_body = IncidentSettings,
    responses((status = 200, body = IncidentSettings), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn put_settings(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(s): Json<IncidentSettings>,
) -> ApiResult<Json<IncidentSettings>> {
    let mut tx = state.pool.begin().await?;
    settings::save(&mut tx, &s).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "incident.settings.update",
        None,
        serde_json::to_value(&s).unwrap_or_default(),
    )
    .await?;
    ctx.commit(tx).await?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(settings::read(&mut conn).await?))
}

// ------------------------------------------------------------ integrations

/// Prometheus Alertmanager webhook (`webhook_configs` with an API token as
/// bearer credentials; a token with the `alerts:write` scope suffices and
/// can do nothing else). Each alert is an incident keyed by its fingerprint:
/// firing opens or finds it, resolved marks it recovered.
#[utoipa::path(post, path = "/api/v1/integrations/alertmanager", tag = "incidents",
    request_body = AlertmanagerPayload,
    responses((status = 200, body = AlertmanagerResult), (status = 400)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn alertmanager(
    auth: Auth<Operator, AlertsWrite>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(p): Json<AlertmanagerPayload>,
) -> ApiResult<Json<AlertmanagerResult>> {
    let actor = Actor::of(&auth.principal);
    let mut tx = state.pool.begin().await?;
    let result = edit::alertmanager(&mut tx, &p, &actor).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "incident.alertmanager",
        None,
        json!({ "group_key": p.group_key, "alerts": p.alerts.len(),
                "opened": result.opened, "updated": result.updated }),
    )
    .await?;
    ctx.commit(tx).await?;
    if !result.opened.is_empty() {
        super::escalation::wake();
    }
    Ok(Json(result))
}

// ----------------------------------------------------------------- reports

#[derive(Debug, Deserialize, IntoParams)]
pub struct ReportParams {
    /// Start (RFC 3339; default 30 days ago).
    pub from: Option<DateTime<Utc>>,
    /// End (RFC 3339; default now).
    pub to: Option<DateTime<Utc>>,
}

/// Incidents per week, MTTA, MTTR, SLA breaches by severity and service,
/// uptime per service.
#[utoipa::path(get, path = "/api/v1/reports/incidents", tag = "reports", params(ReportParams),
    responses((status = 200, body = IncidentReport), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn incident_report(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(p): Query<ReportParams>,
) -> ApiResult<Json<IncidentReport>> {
    let (from, to) = report::period(p.from, p.to)?;
    let mut conn = state.pool.acquire().await?;
    Ok(Json(report::build(&mut conn, from, to, Utc::now()).await?))
}

/// The incidents of a period as CSV (one line per incident).
#[utoipa::path(get, path = "/api/v1/reports/incidents/csv", tag = "reports", params(ReportParams),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn incident_report_csv(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(p): Query<ReportParams>,
) -> ApiResult<Response> {
    let (from, to) = report::period(p.from, p.to)?;
    let mut conn = state.pool.acquire().await?;
    let items = report::incidents_in(&mut conn, from, to, Utc::now()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!(
                    "attachment; filename=\"incidents-{}-{}.csv\"",
                    from.format("%Y%m%d"),
                    to.format("%Y%m%d")
                ),
            ),
        ],
        report::csv(&items),
    )
        .into_response())
}
