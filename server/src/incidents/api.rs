//! `/api/v1/incidents…`, `/api/v1/incident-settings`,
//! `/api/v1/integrations/alertmanager` and `/api/v1/reports/incidents…`.
//!
//! Viewers read everything (incident history, post-mortems, reports);
//! operators open and work incidents; admins change the settings (SLA
//! targets, auto-open, recovery policy, default escalation policy).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use futures::StreamExt;
use opsdeck_wire::{
    AddIncidentService, AlertmanagerPayload, AlertmanagerResult, Incident, IncidentAct,
    IncidentDetail, IncidentList, IncidentPatch, IncidentReport, IncidentSettings, IncidentStatus,
    LinkedRun, LogExcerptRequest, NewIncident, NewNote, Notification, Postmortem, RunStatus,
    Severity, SlaTarget, TimelineEvent,
};
use serde::Deserialize;
use serde_json::json;
use sqlx::{PgConnection, Row};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::audit::Actor;
use crate::auth::{Admin, Auth, Operator, Principal, RequestCtx, Viewer};
use crate::docker::ops;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::runbooks::api::async_stream;
use crate::state::AppState;
use crate::timeline;

use super::model::{self, Act, Opening, PolicyChoice};
use super::{detect, postmortem, report, touch};

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
    let statuses: Vec<String> = match p.status.as_deref().unwrap_or("open") {
        "open" => vec!["triggered".into(), "acknowledged".into(), "mitigated".into()],
        "closed" => vec!["resolved".into(), "postmortem_done".into()],
        "all" => IncidentStatus::ALL.iter().map(|s| s.as_str().into()).collect(),
        s => match IncidentStatus::parse(s) {
            Some(st) => vec![st.as_str().into()],
            None => {
                return Err(ApiError::BadRequest(format!(
                    "status: one of open, closed, all, triggered, acknowledged, mitigated, resolved, postmortem_done (got {s:?})"
                )))
            }
        },
    };
    let severity: Option<i16> = match p.severity.as_deref() {
        None | Some("") => None,
        Some(s) => Some(
            Severity::ALL
                .iter()
                .find(|x| x.as_str().eq_ignore_ascii_case(s))
                .ok_or_else(|| ApiError::BadRequest(format!("severity: P1 … P4 (got {s:?})")))?
                .level(),
        ),
    };
    let limit = p.limit.unwrap_or(50).clamp(1, 500);
    let offset = p.offset.unwrap_or(0).max(0);
    let q = p.q.as_deref().map(str::trim).filter(|q| !q.is_empty());
    let filter = "WHERE i.status = ANY($1) AND ($2::smallint IS NULL OR i.severity = $2)
          AND ($3::text IS NULL OR i.title ILIKE '%' || $3 || '%' OR i.summary ILIKE '%' || $3 || '%')
          AND ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM incident_services x
                                             WHERE x.incident_id = i.id AND x.service_id = $4))";
    let mut conn = state.pool.acquire().await?;
    let total: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM incidents i {filter}"))
        .bind(&statuses)
        .bind(severity)
        .bind(q)
        .bind(p.service_id)
        .fetch_one(&mut *conn)
        .await?;
    let rows = sqlx::query(&format!(
        "{} {filter} ORDER BY i.triggered_at DESC, i.id DESC LIMIT $5 OFFSET $6",
        model::SELECT
    ))
    .bind(&statuses)
    .bind(severity)
    .bind(q)
    .bind(p.service_id)
    .bind(limit)
    .bind(offset)
    .fetch_all(&mut *conn)
    .await?;
    let targets = model::targets(&mut conn).await?;
    let now = Utc::now();
    let items = rows
        .iter()
        .map(|r| Ok(model::with_sla(model::from_row(r)?, &targets, now)))
        .collect::<sqlx::Result<Vec<_>>>()?;
    Ok(Json(IncidentList { items, total }))
}

async fn detail(conn: &mut PgConnection, id: i64) -> ApiResult<IncidentDetail> {
    let incident = model::load(conn, id).await?;
    let timeline = timeline::list(conn, "incident", id).await?;
    let runs = sqlx::query(
        "SELECT r.id, b.name, r.status, r.requested_by, r.created_at
         FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         WHERE r.incident_id = $1 ORDER BY r.id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| LinkedRun {
        id: r.get("id"),
        runbook: r.get("name"),
        status: RunStatus::parse(r.get("status")).unwrap_or(RunStatus::Failed),
        requested_by: r.get("requested_by"),
        created_at: r.get("created_at"),
    })
    .collect();
    let notifications = sqlx::query(
        "SELECT id, kind, incident_id, level, channel_name, channel_kind, person_name, address,
                status, attempts, last_error, sent_at, created_at
         FROM notifications WHERE incident_id = $1 ORDER BY id",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|r| Notification {
        id: r.get("id"),
        kind: r.get("kind"),
        incident_id: r.get("incident_id"),
        level: r.get("level"),
        channel: r.get("channel_name"),
        channel_kind: r.get("channel_kind"),
        person: r.get("person_name"),
        address: r.get("address"),
        status: r.get("status"),
        attempts: r.get("attempts"),
        last_error: r.get("last_error"),
        sent_at: r.get("sent_at"),
        created_at: r.get("created_at"),
    })
    .collect();
    Ok(IncidentDetail {
        incident,
        timeline,
        runs,
        notifications,
    })
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
    Ok(Json(detail(&mut conn, id).await?))
}

/// Live incident list: an `incident` event (Incident JSON) for every change.
#[utoipa::path(get, path = "/api/v1/incidents/events", tag = "incidents",
    responses((status = 200, content_type = "text/event-stream", description = "`incident` events (Incident JSON)")),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_events(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>> {
    let mut changes = state.incidents.subscribe();
    let closed = state.engines.closed();
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
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Live incident page: an `incident` event (IncidentDetail JSON) at once and
/// on every change (timeline, notifications, timers' inputs).
#[utoipa::path(get, path = "/api/v1/incidents/{id}/events", tag = "incidents", params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/event-stream", description = "`incident` events (IncidentDetail JSON)"), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn detail_events(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>> {
    let first = {
        let mut conn = state.pool.acquire().await?;
        detail(&mut conn, id).await?
    };
    let mut changes = state.incidents.subscribe();
    let closed = state.engines.closed();
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
            let Ok(d) = detail(&mut conn, id).await else {
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
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

// ---------------------------------------------------------------- writing

fn check_title(t: &str) -> ApiResult<String> {
    let t = t.trim();
    let n = t.chars().count();
    if n == 0 || n > 200 {
        return Err(ApiError::BadRequest("title: 1–200 characters".into()));
    }
    if t.chars().any(char::is_control) {
        return Err(ApiError::BadRequest("title: no control characters".into()));
    }
    Ok(t.to_owned())
}

fn check_text(field: &str, t: &str, max: usize) -> ApiResult<String> {
    if t.chars().count() > max {
        return Err(ApiError::BadRequest(format!(
            "{field}: at most {max} characters"
        )));
    }
    Ok(t.trim().to_owned())
}

async fn check_user(conn: &mut PgConnection, id: i64) -> ApiResult<()> {
    let ok: Option<i64> =
        sqlx::query_scalar("SELECT id FROM users WHERE id = $1 AND disabled_at IS NULL")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    ok.map(|_| ())
        .ok_or_else(|| ApiError::BadRequest(format!("commander_id: no active user with id {id}")))
}

async fn check_policy(conn: &mut PgConnection, id: i64) -> ApiResult<()> {
    let ok: Option<i64> = sqlx::query_scalar("SELECT id FROM escalation_policies WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    ok.map(|_| ()).ok_or_else(|| {
        ApiError::BadRequest(format!(
            "escalation_policy_id: no escalation policy with id {id}"
        ))
    })
}

async fn check_service(conn: &mut PgConnection, id: i64) -> ApiResult<String> {
    let name: Option<String> = sqlx::query_scalar("SELECT name FROM services WHERE id = $1")
        .bind(id)
        .fetch_optional(conn)
        .await?;
    name.ok_or_else(|| ApiError::BadRequest(format!("services: no service with id {id}")))
}

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
    let title = check_title(&n.title)?;
    let summary = check_text("summary", &n.summary, 10_000)?;
    let mut tx = state.pool.begin().await?;
    let mut services = Vec::new();
    for s in &n.services {
        check_service(&mut tx, *s).await?;
        if !services.iter().any(|(x, _)| x == s) {
            services.push((*s, "affected"));
        }
    }
    if let Some(c) = n.commander_id {
        check_user(&mut tx, c).await?;
    }
    let policy = match n.escalation_policy_id {
        Some(0) => PolicyChoice::Nobody,
        Some(p) => {
            check_policy(&mut tx, p).await?;
            PolicyChoice::Policy(p)
        }
        None => PolicyChoice::Default,
    };
    let actor = Actor::of(&auth.principal);
    let (id, _) = model::open(
        &mut tx,
        Opening {
            title: title.clone(),
            severity: n.severity,
            source: "manual",
            dedup_key: None,
            summary,
            services,
            commander_id: n.commander_id,
            policy,
            actor: actor.clone(),
            first_event: (
                "created".into(),
                format!(
                    "Declared by {}: {} ({})",
                    actor.name,
                    n.severity.as_str(),
                    n.severity.meaning()
                ),
                json!({}),
            ),
            now: Utc::now(),
        },
    )
    .await?;
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
    // Lock first, then read: concurrent edits describe what they changed.
    sqlx::query("SELECT 1 FROM incidents WHERE id = $1 FOR UPDATE")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    let cur = model::load(&mut tx, id).await?;
    let reason = check_text("reason", &p.reason, 1000)?;
    let because = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    let mut events: Vec<(&str, String)> = Vec::new();
    if let Some(t) = &p.title {
        let t = check_title(t)?;
        if t != cur.title {
            sqlx::query("UPDATE incidents SET title = $2 WHERE id = $1")
                .bind(id)
                .bind(&t)
                .execute(&mut *tx)
                .await?;
            events.push(("title", format!("Title changed to \"{t}\"")));
        }
    }
    if let Some(s) = p.severity {
        if s != cur.severity {
            sqlx::query("UPDATE incidents SET severity = $2 WHERE id = $1")
                .bind(id)
                .bind(s.level())
                .execute(&mut *tx)
                .await?;
            events.push((
                "severity",
                format!(
                    "Severity {} → {}{because}",
                    cur.severity.as_str(),
                    s.as_str()
                ),
            ));
        }
    }
    if let Some(s) = &p.summary {
        let s = check_text("summary", s, 10_000)?;
        if s != cur.summary {
            sqlx::query("UPDATE incidents SET summary = $2 WHERE id = $1")
                .bind(id)
                .bind(&s)
                .execute(&mut *tx)
                .await?;
            events.push(("summary", "Summary updated".into()));
        }
    }
    if let Some(c) = p.commander_id {
        let new = (c != 0).then_some(c);
        if let Some(c) = new {
            check_user(&mut tx, c).await?;
        }
        if new != cur.commander_id {
            sqlx::query("UPDATE incidents SET commander_id = $2 WHERE id = $1")
                .bind(id)
                .bind(new)
                .execute(&mut *tx)
                .await?;
            let name: Option<String> = match new {
                Some(c) => {
                    sqlx::query_scalar("SELECT username FROM users WHERE id = $1")
                        .bind(c)
                        .fetch_optional(&mut *tx)
                        .await?
                }
                None => None,
            };
            events.push((
                "commander",
                match name {
                    Some(n) => format!("Incident commander: {n}"),
                    None => "Incident commander cleared".into(),
                },
            ));
        }
    }
    if let Some(pid) = p.escalation_policy_id {
        let new = (pid != 0).then_some(pid);
        if let Some(pid) = new {
            check_policy(&mut tx, pid).await?;
        }
        if new != cur.escalation_policy_id {
            // A new policy starts from its first level not yet due…
            // counted from the trigger time, like every level.
            let next_at: Option<DateTime<Utc>> = match new {
                Some(pid) if cur.status == IncidentStatus::Triggered => {
                    let d: Option<i32> = sqlx::query_scalar(
                        "SELECT delay_secs FROM escalation_levels WHERE policy_id = $1 ORDER BY level LIMIT 1",
                    )
                    .bind(pid)
                    .fetch_optional(&mut *tx)
                    .await?;
                    d.map(|d| cur.triggered_at + ChronoDuration::seconds(i64::from(d)))
                }
                _ => None,
            };
            sqlx::query(
                "UPDATE incidents SET escalation_policy_id = $2, escalation_level = 0,
                        next_escalation_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(new)
            .bind(next_at)
            .execute(&mut *tx)
            .await?;
            events.push((
                "escalation",
                match new {
                    Some(_) => "Escalation policy changed (starts again at level 1)".into(),
                    None => "Escalation stopped (no policy)".into(),
                },
            ));
        }
    }
    if events.is_empty() {
        return Err(ApiError::BadRequest("nothing to change".into()));
    }
    for (kind, message) in &events {
        timeline::append(
            &mut tx,
            "incident",
            id,
            kind,
            Some(&actor),
            None,
            message,
            json!({}),
        )
        .await?;
    }
    touch(&mut tx, id).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "incident.update",
        Some(format!("incident:{id}")),
        json!({ "changes": events.iter().map(|e| e.0).collect::<Vec<_>>(), "reason": reason }),
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
    let note = check_text("note", &body.note, 2000)?;
    let mut tx = state.pool.begin().await?;
    model::apply(&mut tx, id, which, &Actor::of(p), &note, ctx.source.clone()).await?;
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
    let text = check_text("text", &n.text, 10_000)?;
    if text.is_empty() {
        return Err(ApiError::BadRequest("text: a note cannot be empty".into()));
    }
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
    model::load(&mut tx, id).await?;
    let actor = Actor::of(p);
    let event = timeline::append(
        &mut tx,
        "incident",
        id,
        kind,
        Some(&actor),
        None,
        &message,
        data,
    )
    .await?;
    touch(&mut tx, id).await?;
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
        check_service(&mut conn, r.service_id).await?
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
                tail: r.lines,
                timestamps: true,
                follow: false,
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
    // Bounded like step output.
    const MAX: usize = 64 * 1024;
    if text.len() > MAX {
        let mut cut = text.len() - MAX;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!("(earlier lines cut)\n{}", &text[cut..]);
    }
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
    model::load(&mut tx, id).await?;
    let name = check_service(&mut tx, a.service_id).await?;
    let added = sqlx::query(
        "INSERT INTO incident_services (incident_id, service_id, role) VALUES ($1, $2, 'affected')
         ON CONFLICT DO NOTHING",
    )
    .bind(id)
    .bind(a.service_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if added == 0 {
        return Err(ApiError::Conflict(format!(
            "{name} is already on incident {id}"
        )));
    }
    let actor = Actor::of(&auth.principal);
    timeline::append(
        &mut tx,
        "incident",
        id,
        "service",
        Some(&actor),
        None,
        &format!("{name} added as affected"),
        json!({ "service_id": a.service_id }),
    )
    .await?;
    touch(&mut tx, id).await?;
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

async fn load_postmortem(conn: &mut PgConnection, id: i64) -> ApiResult<(Incident, Postmortem)> {
    let incident = model::load(conn, id).await?;
    let saved: Option<serde_json::Value> =
        sqlx::query_scalar("SELECT postmortem FROM incidents WHERE id = $1")
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
    let pm = match saved.and_then(|v| serde_json::from_value::<Postmortem>(v).ok()) {
        Some(p) => p,
        None => {
            let events = timeline::list(conn, "incident", id).await?;
            postmortem::template(&incident, &events)
        }
    };
    Ok((incident, pm))
}

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
    Ok(Json(load_postmortem(&mut conn, id).await?.1))
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
    Json(mut p): Json<Postmortem>,
) -> ApiResult<Json<Postmortem>> {
    for (field, v) in [
        ("summary", &p.summary),
        ("impact", &p.impact),
        ("timeline", &p.timeline),
        ("root_cause", &p.root_cause),
        ("went_well", &p.went_well),
        ("went_badly", &p.went_badly),
    ] {
        check_text(field, v, 50_000)?;
    }
    if p.action_items.len() > 100 {
        return Err(ApiError::BadRequest("action_items: at most 100".into()));
    }
    for (n, a) in p.action_items.iter().enumerate() {
        if a.what.trim().is_empty() {
            return Err(ApiError::BadRequest(format!(
                "action_items[{n}].what: describe the action"
            )));
        }
        check_text("action_items.what", &a.what, 1000)?;
        check_text("action_items.owner", &a.owner, 200)?;
    }
    p.updated_at = Some(Utc::now());
    p.updated_by = Some(auth.principal.username.clone());
    let mut tx = state.pool.begin().await?;
    model::load(&mut tx, id).await?;
    sqlx::query("UPDATE incidents SET postmortem = $2 WHERE id = $1")
        .bind(id)
        .bind(serde_json::to_value(&p).map_err(|e| ApiError::Internal(e.into()))?)
        .execute(&mut *tx)
        .await?;
    let actor = Actor::of(&auth.principal);
    timeline::append(
        &mut tx,
        "incident",
        id,
        "postmortem",
        Some(&actor),
        None,
        &format!(
            "Post-mortem saved ({} action item{})",
            p.action_items.len(),
            if p.action_items.len() == 1 { "" } else { "s" }
        ),
        json!({}),
    )
    .await?;
    touch(&mut tx, id).await?;
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
    let (i, p) = load_postmortem(&mut conn, id).await?;
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

async fn read_settings(conn: &mut PgConnection) -> ApiResult<IncidentSettings> {
    let r = sqlx::query(
        "SELECT auto_open, on_recovery, default_policy_id, ack_link_ttl_secs FROM incident_settings",
    )
    .fetch_one(&mut *conn)
    .await?;
    let targets = model::targets(conn).await?;
    let mut sla: Vec<SlaTarget> = targets.into_values().collect();
    sla.sort_by_key(|t| t.severity);
    Ok(IncidentSettings {
        auto_open: r.get("auto_open"),
        on_recovery: r.get("on_recovery"),
        default_policy_id: r.get("default_policy_id"),
        ack_link_ttl_secs: i64::from(r.get::<i32, _>("ack_link_ttl_secs")),
        sla,
    })
}

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
    Ok(Json(read_settings(&mut conn).await?))
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
    if s.on_recovery != "propose" && s.on_recovery != "resolve" {
        return Err(ApiError::BadRequest(
            "on_recovery: propose or resolve".into(),
        ));
    }
    if !(60..=604_800).contains(&s.ack_link_ttl_secs) {
        return Err(ApiError::BadRequest(
            "ack_link_ttl_secs: 60 s to 7 days".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    if let Some(p) = s.default_policy_id {
        check_policy(&mut tx, p).await?;
    }
    sqlx::query(
        "UPDATE incident_settings SET auto_open = $1, on_recovery = $2, default_policy_id = $3,
                ack_link_ttl_secs = $4",
    )
    .bind(s.auto_open)
    .bind(&s.on_recovery)
    .bind(s.default_policy_id)
    .bind(s.ack_link_ttl_secs as i32)
    .execute(&mut *tx)
    .await?;
    let mut seen = Vec::new();
    for t in &s.sla {
        if seen.contains(&t.severity) {
            return Err(ApiError::BadRequest(format!(
                "sla: {} given twice",
                t.severity.as_str()
            )));
        }
        seen.push(t.severity);
        let secs = [
            ("ack_secs", t.ack_secs),
            ("diagnose_secs", t.diagnose_secs),
            ("mitigate_secs", t.mitigate_secs),
            ("resolve_secs", t.resolve_secs),
            ("postmortem_secs", t.postmortem_secs),
        ];
        for (name, v) in secs {
            if let Some(v) = v {
                if !(1..=31_536_000).contains(&v) {
                    return Err(ApiError::BadRequest(format!(
                        "sla {}: {name} must be 1 s to 1 year",
                        t.severity.as_str()
                    )));
                }
            }
        }
        sqlx::query(
            "UPDATE sla_targets SET ack_secs = $2, diagnose_secs = $3, mitigate_secs = $4,
                    resolve_secs = $5, postmortem_secs = $6 WHERE severity = $1",
        )
        .bind(t.severity.level())
        .bind(t.ack_secs.map(|v| v as i32))
        .bind(t.diagnose_secs.map(|v| v as i32))
        .bind(t.mitigate_secs.map(|v| v as i32))
        .bind(t.resolve_secs.map(|v| v as i32))
        .bind(t.postmortem_secs.map(|v| v as i32))
        .execute(&mut *tx)
        .await?;
    }
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
    Ok(Json(read_settings(&mut conn).await?))
}

// ------------------------------------------------------------ integrations

/// Prometheus Alertmanager webhook (`webhook_configs` with an API token as
/// bearer credentials). Each alert is an incident keyed by its fingerprint:
/// firing opens or finds it, resolved marks it recovered.
#[utoipa::path(post, path = "/api/v1/integrations/alertmanager", tag = "incidents",
    request_body = AlertmanagerPayload,
    responses((status = 200, body = AlertmanagerResult), (status = 400)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn alertmanager(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(p): Json<AlertmanagerPayload>,
) -> ApiResult<Json<AlertmanagerResult>> {
    if p.alerts.len() > 1000 {
        return Err(ApiError::BadRequest("alerts: at most 1000 per call".into()));
    }
    for (n, a) in p.alerts.iter().enumerate() {
        if a.fingerprint.trim().is_empty() || a.fingerprint.len() > 200 {
            return Err(ApiError::BadRequest(format!(
                "alerts[{n}].fingerprint: 1–200 characters"
            )));
        }
        if a.status != "firing" && a.status != "resolved" {
            return Err(ApiError::BadRequest(format!(
                "alerts[{n}].status: firing or resolved"
            )));
        }
    }
    let actor = Actor::of(&auth.principal);
    let mut tx = state.pool.begin().await?;
    let mut outcomes = Vec::new();
    let now = Utc::now();
    for a in &p.alerts {
        if let Some(o) = detect::alert(&mut tx, a, &actor, now).await? {
            outcomes.push(o);
        }
    }
    let result = detect::result(&outcomes);
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

fn period(p: &ReportParams) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
    let to = p.to.unwrap_or_else(Utc::now);
    let from = p.from.unwrap_or(to - ChronoDuration::days(30));
    if from >= to {
        return Err(ApiError::BadRequest("from must be before to".into()));
    }
    if to - from > ChronoDuration::days(366 * 3) {
        return Err(ApiError::BadRequest("period: at most 3 years".into()));
    }
    Ok((from, to))
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
    let (from, to) = period(&p)?;
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
    let (from, to) = period(&p)?;
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
