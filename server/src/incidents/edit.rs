//! Working incidents by hand and reading them: the list filter, the detail
//! view, declaring, editing (title, severity, summary, commander, policy),
//! status actions, notes and log excerpts, affected services, and the
//! Alertmanager webhook's batch. Each function runs in the caller's
//! transaction; the caller adds its request's audit entry and commits, then
//! wakes escalation where a function says so.

use chrono::{Duration as ChronoDuration, Utc};
use opsdeck_wire::{
    AlertmanagerPayload, AlertmanagerResult, IncidentDetail, IncidentList, IncidentPatch,
    IncidentStatus, NewIncident, Severity, TimelineEvent,
};
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::audit::Actor;
use crate::timeline;

use super::error::{invalid, IncidentError, Result};
use super::model::{self, Act, Opening, PolicyChoice};
use super::{detect, store, touch};

// ------------------------------------------------------------- validation

/// A title: trimmed, 1–200 characters, no control characters.
pub fn check_title(t: &str) -> Result<String> {
    let t = t.trim();
    let n = t.chars().count();
    if n == 0 || n > 200 {
        return Err(invalid("title: 1–200 characters"));
    }
    if t.chars().any(char::is_control) {
        return Err(invalid("title: no control characters"));
    }
    Ok(t.to_owned())
}

/// Free text of at most `max` characters, trimmed.
pub fn check_text(field: &str, t: &str, max: usize) -> Result<String> {
    if t.chars().count() > max {
        return Err(invalid(format!("{field}: at most {max} characters")));
    }
    Ok(t.trim().to_owned())
}

async fn check_user(conn: &mut PgConnection, id: i64) -> Result<()> {
    if store::active_user(conn, id).await? {
        Ok(())
    } else {
        Err(invalid(format!(
            "commander_id: no active user with id {id}"
        )))
    }
}

/// An escalation policy id that exists.
pub async fn check_policy(conn: &mut PgConnection, id: i64) -> Result<()> {
    if store::policy_exists(conn, id).await? {
        Ok(())
    } else {
        Err(invalid(format!(
            "escalation_policy_id: no escalation policy with id {id}"
        )))
    }
}

/// The name of a service that exists.
pub async fn service_name(conn: &mut PgConnection, id: i64) -> Result<String> {
    store::service_name(conn, id)
        .await?
        .ok_or_else(|| invalid(format!("services: no service with id {id}")))
}

// ---------------------------------------------------------------- reading

/// The list filter of the API (`status`: open, closed, all or one status;
/// `severity`: P1 … P4; `q`: text in title or summary).
pub struct ListQuery<'a> {
    pub status: Option<&'a str>,
    pub severity: Option<&'a str>,
    pub q: Option<&'a str>,
    pub service_id: Option<i64>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// Incidents matching the filter, newest first, with their timers.
pub async fn list(conn: &mut PgConnection, p: ListQuery<'_>) -> Result<IncidentList> {
    let statuses: Vec<String> = match p.status.unwrap_or("open") {
        "open" => vec!["triggered".into(), "acknowledged".into(), "mitigated".into()],
        "closed" => vec!["resolved".into(), "postmortem_done".into()],
        "all" => IncidentStatus::ALL.iter().map(|s| s.as_str().into()).collect(),
        s => match IncidentStatus::parse(s) {
            Some(st) => vec![st.as_str().into()],
            None => {
                return Err(invalid(format!(
                    "status: one of open, closed, all, triggered, acknowledged, mitigated, resolved, postmortem_done (got {s:?})"
                )))
            }
        },
    };
    let severity: Option<i16> = match p.severity {
        None | Some("") => None,
        Some(s) => Some(
            Severity::ALL
                .iter()
                .find(|x| x.as_str().eq_ignore_ascii_case(s))
                .ok_or_else(|| invalid(format!("severity: P1 … P4 (got {s:?})")))?
                .level(),
        ),
    };
    let limit = p.limit.unwrap_or(50).clamp(1, 500);
    let offset = p.offset.unwrap_or(0).max(0);
    let q = p.q.map(str::trim).filter(|q| !q.is_empty());
    let filter = store::ListFilter {
        statuses: &statuses,
        severity,
        q,
        service_id: p.service_id,
    };
    let total = store::count(&mut *conn, &filter).await?;
    let rows = store::list(&mut *conn, &filter, limit, offset).await?;
    let targets = model::targets(conn).await?;
    let now = Utc::now();
    let items = rows
        .into_iter()
        .map(|i| model::with_sla(i, &targets, now))
        .collect();
    Ok(IncidentList { items, total })
}

/// One incident with its timeline, linked runs and notifications.
pub async fn detail(conn: &mut PgConnection, id: i64) -> Result<IncidentDetail> {
    let incident = model::load(conn, id).await?;
    let timeline = timeline::list(conn, "incident", id).await?;
    let runs = store::linked_runs(conn, id).await?;
    let notifications = store::notifications(conn, id).await?;
    Ok(IncidentDetail {
        incident,
        timeline,
        runs,
        notifications,
    })
}

// ---------------------------------------------------------------- writing

/// Declares an incident by hand; returns its id and the checked title.
/// Wake escalation after committing.
pub async fn create(
    conn: &mut PgConnection,
    n: &NewIncident,
    actor: &Actor,
) -> Result<(i64, String)> {
    let title = check_title(&n.title)?;
    let summary = check_text("summary", &n.summary, 10_000)?;
    let mut services = Vec::new();
    for s in &n.services {
        service_name(conn, *s).await?;
        if !services.iter().any(|(x, _)| x == s) {
            services.push((*s, "affected"));
        }
    }
    if let Some(c) = n.commander_id {
        check_user(conn, c).await?;
    }
    let policy = match n.escalation_policy_id {
        Some(0) => PolicyChoice::Nobody,
        Some(p) => {
            check_policy(conn, p).await?;
            PolicyChoice::Policy(p)
        }
        None => PolicyChoice::Default,
    };
    let (id, _) = model::open(
        conn,
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
    Ok((id, title))
}

/// What a patch changed (timeline event kinds) and its reason.
pub struct Patched {
    pub changes: Vec<&'static str>,
    pub reason: String,
}

/// Changes title, severity (with a reason), summary, commander or
/// escalation policy; each change is a timeline event. Refuses a patch
/// that changes nothing. Wake escalation after committing.
pub async fn patch(
    conn: &mut PgConnection,
    id: i64,
    p: &IncidentPatch,
    actor: &Actor,
) -> Result<Patched> {
    // Lock first, then read: concurrent edits describe what they changed.
    store::lock(conn, id).await?;
    let cur = model::load(conn, id).await?;
    let reason = check_text("reason", &p.reason, 1000)?;
    let because = if reason.is_empty() {
        String::new()
    } else {
        format!(": {reason}")
    };
    let mut events: Vec<(&'static str, String)> = Vec::new();
    if let Some(t) = &p.title {
        let t = check_title(t)?;
        if t != cur.title {
            store::set_title(conn, id, &t).await?;
            events.push(("title", format!("Title changed to \"{t}\"")));
        }
    }
    if let Some(s) = p.severity {
        if s != cur.severity {
            store::set_severity(conn, id, s.level()).await?;
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
            store::set_summary(conn, id, &s).await?;
            events.push(("summary", "Summary updated".into()));
        }
    }
    if let Some(c) = p.commander_id {
        let new = (c != 0).then_some(c);
        if let Some(c) = new {
            check_user(conn, c).await?;
        }
        if new != cur.commander_id {
            store::set_commander(conn, id, new).await?;
            let name = match new {
                Some(c) => store::username(conn, c).await?,
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
            check_policy(conn, pid).await?;
        }
        if new != cur.escalation_policy_id {
            // A new policy starts from its first level not yet due…
            // counted from the trigger time, like every level.
            let next_at = match new {
                Some(pid) if cur.status == IncidentStatus::Triggered => {
                    store::first_level_delay(conn, pid)
                        .await?
                        .map(|d| cur.triggered_at + ChronoDuration::seconds(i64::from(d)))
                }
                _ => None,
            };
            store::set_policy(conn, id, new, next_at).await?;
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
        return Err(invalid("nothing to change"));
    }
    for (kind, message) in &events {
        timeline::append(
            conn,
            "incident",
            id,
            kind,
            Some(actor),
            None,
            message,
            json!({}),
        )
        .await?;
    }
    touch(conn, id).await?;
    Ok(Patched {
        changes: events.iter().map(|e| e.0).collect(),
        reason,
    })
}

/// A status action with an optional note (see [`model::apply`]).
pub async fn act(
    conn: &mut PgConnection,
    id: i64,
    which: Act,
    actor: &Actor,
    note: &str,
    source: Option<String>,
) -> Result<()> {
    let note = check_text("note", note, 2000)?;
    model::apply(conn, id, which, actor, &note, source).await
}

/// Appends a person's event to an incident's timeline and touches it.
pub async fn add_event(
    conn: &mut PgConnection,
    id: i64,
    actor: &Actor,
    kind: &str,
    message: &str,
    data: Value,
) -> Result<TimelineEvent> {
    model::load(conn, id).await?;
    let event =
        timeline::append(conn, "incident", id, kind, Some(actor), None, message, data).await?;
    touch(conn, id).await?;
    Ok(event)
}

/// A note's text: 1–10,000 characters.
pub fn check_note(text: &str) -> Result<String> {
    let text = check_text("text", text, 10_000)?;
    if text.is_empty() {
        return Err(invalid("text: a note cannot be empty"));
    }
    Ok(text)
}

/// Bounds a log excerpt like step output (the last 64 KiB).
pub fn bound_log(mut text: String) -> String {
    const MAX: usize = 64 * 1024;
    if text.len() > MAX {
        let mut cut = text.len() - MAX;
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text = format!("(earlier lines cut)\n{}", &text[cut..]);
    }
    text
}

/// Adds an affected service; returns its name. 409 when it is already on
/// the incident.
pub async fn add_service(
    conn: &mut PgConnection,
    id: i64,
    service_id: i64,
    actor: &Actor,
) -> Result<String> {
    model::load(conn, id).await?;
    let name = service_name(conn, service_id).await?;
    if !store::add_service(conn, id, service_id, "affected").await? {
        return Err(IncidentError::Conflict(format!(
            "{name} is already on incident {id}"
        )));
    }
    timeline::append(
        conn,
        "incident",
        id,
        "service",
        Some(actor),
        None,
        &format!("{name} added as affected"),
        json!({ "service_id": service_id }),
    )
    .await?;
    touch(conn, id).await?;
    Ok(name)
}

// ------------------------------------------------------------ integrations

/// An Alertmanager webhook batch: each alert is an incident keyed by its
/// fingerprint (firing opens or finds it, resolved marks it recovered).
/// Wake escalation after committing when something was opened.
pub async fn alertmanager(
    conn: &mut PgConnection,
    p: &AlertmanagerPayload,
    actor: &Actor,
) -> Result<AlertmanagerResult> {
    if p.alerts.len() > 1000 {
        return Err(invalid("alerts: at most 1000 per call"));
    }
    for (n, a) in p.alerts.iter().enumerate() {
        if a.fingerprint.trim().is_empty() || a.fingerprint.len() > 200 {
            return Err(invalid(format!(
                "alerts[{n}].fingerprint: 1–200 characters"
            )));
        }
        if a.status != "firing" && a.status != "resolved" {
            return Err(invalid(format!("alerts[{n}].status: firing or resolved")));
        }
    }
    let mut outcomes = Vec::new();
    let now = Utc::now();
    for a in &p.alerts {
        if let Some(o) = detect::alert(conn, a, actor, now).await? {
            outcomes.push(o);
        }
    }
    Ok(detect::result(&outcomes))
}
