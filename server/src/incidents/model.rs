//! The incident domain: reading incidents as wire types (with live SLA
//! timers), opening one (deduplicated), the status transitions, and linking
//! runs and container actions. The SQL is in [`super::store`].

use std::collections::HashMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use opsdeck_wire::Outcome;
use opsdeck_wire::{Incident, IncidentStatus, Severity, SlaTarget, SlaTimer};
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::audit::{self, Actor, NewEntry};
use crate::timeline;

use super::error::{IncidentError, Result};
use super::store;
use super::touch;

/// The shared incident read and its row mapping, for the escalation
/// ticker's own filter.
pub(crate) use super::store::{from_row, SELECT};

/// SLA targets per severity (1–4).
pub type Targets = HashMap<i16, SlaTarget>;

/// The SLA milestones in order, with the column that marks each as met.
pub const MILESTONES: [&str; 5] = ["ack", "diagnose", "mitigate", "resolve", "postmortem"];

pub async fn targets(conn: &mut PgConnection) -> sqlx::Result<Targets> {
    store::targets(conn).await
}

/// The milestone timestamps of an incident, in [`MILESTONES`] order.
pub fn milestone_times(i: &Incident) -> [Option<DateTime<Utc>>; 5] {
    [
        i.acknowledged_at,
        i.diagnosed_at,
        i.mitigated_at,
        i.resolved_at,
        i.postmortem_done_at,
    ]
}

fn target_secs(t: &SlaTarget, milestone: usize) -> Option<i64> {
    match milestone {
        0 => t.ack_secs,
        1 => t.diagnose_secs,
        2 => t.mitigate_secs,
        3 => t.resolve_secs,
        _ => t.postmortem_secs,
    }
}

/// Timers for every milestone with a target. A milestone counts as met when
/// it was reached, or when a later one was (resolving without a separate
/// "mitigated" meets the mitigation target at the resolution time).
pub fn sla_timers(i: &Incident, t: Option<&SlaTarget>, now: DateTime<Utc>) -> Vec<SlaTimer> {
    let Some(t) = t else { return Vec::new() };
    let times = milestone_times(i);
    let mut out = Vec::new();
    for (idx, name) in MILESTONES.iter().enumerate() {
        let Some(secs) = target_secs(t, idx) else {
            continue;
        };
        // Diagnosis is implied by mitigation or resolution; mitigation by
        // resolution; acknowledgement by anything later. The post-mortem is
        // its own milestone.
        let met_at = if idx < 4 {
            times[idx..4].iter().flatten().min().copied()
        } else {
            times[4]
        };
        let due_at = i.triggered_at + ChronoDuration::seconds(secs);
        let breached = match met_at {
            Some(m) => m > due_at,
            None => now > due_at,
        };
        out.push(SlaTimer {
            milestone: (*name).to_owned(),
            target_secs: secs,
            due_at,
            met_at,
            breached,
        });
    }
    out
}

/// Fills in the SLA timers.
pub fn with_sla(mut i: Incident, targets: &Targets, now: DateTime<Utc>) -> Incident {
    i.sla = sla_timers(&i, targets.get(&i.severity.level()), now);
    i
}

/// One incident with its timers.
pub async fn load(conn: &mut PgConnection, id: i64) -> Result<Incident> {
    let i = store::incident(&mut *conn, id)
        .await?
        .ok_or(IncidentError::NotFound(id))?;
    let t = targets(conn).await?;
    Ok(with_sla(i, &t, Utc::now()))
}

/// How an incident's escalation policy is chosen when it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolicyChoice {
    /// The default policy of the incident settings.
    Default,
    /// This policy.
    Policy(i64),
    /// None: nobody is paged.
    Nobody,
}

/// A new incident (or an update of the open one with the same key).
#[derive(Debug, Clone)]
pub struct Opening {
    pub title: String,
    pub severity: Severity,
    /// manual, health, alertmanager, backup or runbook.
    pub source: &'static str,
    pub dedup_key: Option<String>,
    pub summary: String,
    /// (service id, role).
    pub services: Vec<(i64, &'static str)>,
    pub commander_id: Option<i64>,
    pub policy: PolicyChoice,
    /// Who opens it (a person, or a system actor such as `health`).
    pub actor: Actor,
    /// The first timeline event: (kind, message, data) — e.g. `detected`
    /// with the check's values.
    pub first_event: (String, String, Value),
    pub now: DateTime<Utc>,
}

/// Opens an incident in the caller's transaction, or finds the open one with
/// the same `dedup_key`. Returns `(id, created)`; after committing a created
/// incident, call [`super::escalation::wake`] so its first level fires now. A created incident has its
/// timeline's first event and an audit entry; its first escalation level is
/// due at `triggered_at + delay(level 0)`.
pub async fn open(conn: &mut PgConnection, o: Opening) -> sqlx::Result<(i64, bool)> {
    let policy_id: Option<i64> = match o.policy {
        PolicyChoice::Nobody => None,
        PolicyChoice::Policy(id) => Some(id),
        PolicyChoice::Default => store::default_policy(&mut *conn).await?,
    };
    let first_delay: Option<i32> = match policy_id {
        Some(p) => store::first_level_delay(&mut *conn, p).await?,
        None => None,
    };
    let next_at = first_delay.map(|d| o.now + ChronoDuration::seconds(i64::from(d)));
    let inserted = store::insert(
        &mut *conn,
        &store::NewRow {
            title: &o.title,
            severity: o.severity.level(),
            source: o.source,
            dedup_key: o.dedup_key.as_deref(),
            summary: &o.summary,
            commander_id: o.commander_id,
            policy_id,
            next_at,
            triggered_at: o.now,
            created_by: &o.actor.name,
        },
    )
    .await?;
    let Some(id) = inserted else {
        let id = store::open_with_key(&mut *conn, o.dedup_key.as_deref()).await?;
        return Ok((id, false));
    };
    for (service, role) in &o.services {
        store::add_service(&mut *conn, id, *service, role).await?;
    }
    let (kind, message, data) = &o.first_event;
    timeline::append(
        conn,
        "incident",
        id,
        kind,
        Some(&o.actor),
        None,
        message,
        data.clone(),
    )
    .await?;
    audit::record(
        conn,
        NewEntry {
            actor: o.actor.clone(),
            action: "incident.open".into(),
            target: Some(format!("incident:{id}")),
            params: json!({
                "title": o.title, "severity": o.severity.as_str(), "source": o.source,
                "services": o.services.iter().map(|s| s.0).collect::<Vec<_>>(),
                "escalation_policy_id": policy_id,
            }),
            source: None,
            outcome: Outcome::Success,
            detail: None,
        },
    )
    .await?;
    touch(conn, id).await?;
    // The caller calls `escalation::wake()` after committing: a tick before
    // the commit would not see the new incident.
    Ok((id, true))
}

/// A status action on an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    Acknowledge,
    Diagnose,
    Mitigate,
    Resolve,
    Reopen,
    PostmortemDone,
}

impl Act {
    pub fn name(self) -> &'static str {
        match self {
            Act::Acknowledge => "acknowledge",
            Act::Diagnose => "diagnose",
            Act::Mitigate => "mitigate",
            Act::Resolve => "resolve",
            Act::Reopen => "reopen",
            Act::PostmortemDone => "postmortem_done",
        }
    }

    /// The timeline event kind.
    fn event(self) -> &'static str {
        match self {
            Act::Acknowledge => "acknowledged",
            Act::Diagnose => "diagnosed",
            Act::Mitigate => "mitigated",
            Act::Resolve => "resolved",
            Act::Reopen => "reopened",
            Act::PostmortemDone => "postmortem",
        }
    }
}

/// Applies `act` in the caller's transaction (locks the row): status,
/// timestamps, escalation stop, timeline event and audit entry, touch.
/// 409 when the status does not allow it.
pub async fn apply(
    conn: &mut PgConnection,
    id: i64,
    act: Act,
    actor: &Actor,
    note: &str,
    source: Option<String>,
) -> Result<()> {
    let row = store::status_for_update(&mut *conn, id).await?;
    let (status, diagnosed) = row.ok_or(IncidentError::NotFound(id))?;
    let status = IncidentStatus::parse(&status)
        .ok_or_else(|| IncidentError::Internal(anyhow::anyhow!("incident status {status}")))?;
    use IncidentStatus as S;
    let allowed = match act {
        Act::Acknowledge => status == S::Triggered,
        Act::Diagnose => status.is_open() && diagnosed.is_none(),
        Act::Mitigate => matches!(status, S::Triggered | S::Acknowledged),
        Act::Resolve => status.is_open(),
        Act::Reopen => status == S::Resolved,
        Act::PostmortemDone => status == S::Resolved,
    };
    if !allowed {
        let why = match act {
            Act::Diagnose if diagnosed.is_some() => "is already diagnosed".to_owned(),
            _ => format!("is {}", status.label().to_lowercase()),
        };
        return Err(IncidentError::Conflict(format!(
            "cannot {} incident {id}: it {why}",
            act.name().replace('_', " ")
        )));
    }
    // Acknowledgement is implied by every act on a triggered incident.
    let acks = status == S::Triggered && act != Act::Reopen;
    store::set_status(&mut *conn, id, act).await?;
    if acks {
        stop_escalation(conn, id, &actor.name).await?;
        if act != Act::Acknowledge {
            timeline::append(
                conn,
                "incident",
                id,
                "acknowledged",
                Some(actor),
                None,
                &format!("Acknowledged by {} (with {})", actor.name, act.name()),
                json!({}),
            )
            .await?;
        }
    }
    let what = match act {
        Act::Acknowledge => format!("Acknowledged by {}; escalation stopped", actor.name),
        Act::Diagnose => format!("Root cause identified ({})", actor.name),
        Act::Mitigate => format!("Mitigated ({})", actor.name),
        Act::Resolve => format!("Resolved by {}", actor.name),
        Act::Reopen => format!("Reopened by {}", actor.name),
        Act::PostmortemDone => format!("Post-mortem done ({})", actor.name),
    };
    let message = if note.trim().is_empty() {
        what
    } else {
        format!("{what}: {}", note.trim())
    };
    timeline::append(
        conn,
        "incident",
        id,
        act.event(),
        Some(actor),
        None,
        &message,
        json!({}),
    )
    .await?;
    audit::record(
        conn,
        NewEntry {
            actor: actor.clone(),
            action: format!("incident.{}", act.name()),
            target: Some(format!("incident:{id}")),
            params: json!({ "note": note.trim() }),
            source,
            outcome: Outcome::Success,
            detail: None,
        },
    )
    .await?;
    touch(conn, id).await?;
    Ok(())
}

/// Marks an incident acknowledged and stops its escalation: no further
/// levels, and queued messages not yet being sent are cancelled.
async fn stop_escalation(conn: &mut PgConnection, id: i64, by: &str) -> sqlx::Result<()> {
    store::stop_escalation(conn, id, by).await
}

/// Acknowledges through a signed link from a notification (the link was
/// verified by the caller). Returns false when the incident was no longer
/// triggered (someone else acknowledged first: nothing changes).
pub async fn acknowledge_via_link(
    conn: &mut PgConnection,
    incident_id: i64,
    person_name: &str,
) -> anyhow::Result<bool> {
    // The audit log knows user, token, system and anonymous actors: a link
    // from a notification acts as the system on the recipient's behalf.
    let actor = Actor {
        id: None,
        name: format!("{person_name} (ack link)"),
        kind: "system",
    };
    match apply(
        conn,
        incident_id,
        Act::Acknowledge,
        &actor,
        "acknowledged from a notification link",
        Some("ack link".into()),
    )
    .await
    {
        Ok(()) => Ok(true),
        Err(IncidentError::Conflict(_)) => Ok(false),
        Err(e) => Err(anyhow::anyhow!("acknowledging incident {incident_id}: {e}")),
    }
}

/// Links a new run to an incident, in the caller's transaction: the one
/// named in the request (`"42"` or `"#42"`), else the open incident whose
/// services include the run's target service. Appends a `run` event to that
/// incident's timeline. Returns the incident id.
pub async fn link_run(
    conn: &mut PgConnection,
    run_id: i64,
    named: Option<&str>,
    target: &str,
    runbook: &str,
    requested_by: &str,
) -> sqlx::Result<Option<i64>> {
    let explicit = named
        .map(|s| s.trim().trim_start_matches('#'))
        .and_then(|s| s.parse::<i64>().ok());
    let incident: Option<i64> = match explicit {
        Some(id) => store::exists(&mut *conn, id).await?.then_some(id),
        None => store::open_on_service_named(&mut *conn, target).await?,
    };
    let Some(incident) = incident else {
        return Ok(None);
    };
    store::link_run(&mut *conn, run_id, incident).await?;
    timeline::append(
        conn,
        "incident",
        incident,
        "run",
        None,
        None,
        &format!("Runbook {runbook} started by {requested_by} (run #{run_id})"),
        json!({ "run_id": run_id }),
    )
    .await?;
    touch(conn, incident).await?;
    Ok(Some(incident))
}

/// Opens the incident of a run's failure (or joins the open one with the
/// same dedup key), links the run to it and commits `tx`. A joined
/// incident gets `again` on its timeline; a new one wakes escalation.
/// Returns the incident and whether it was opened now.
pub async fn open_for_run(
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    run_id: i64,
    opening: Opening,
    again: &str,
) -> sqlx::Result<(i64, bool)> {
    let (id, created) = open(&mut tx, opening).await?;
    store::link_run(&mut tx, run_id, id).await?;
    if !created {
        let data = json!({ "run_id": run_id });
        timeline::append(&mut tx, "incident", id, "run", None, None, again, data).await?;
        touch(&mut tx, id).await?;
    }
    tx.commit().await?;
    if created {
        super::escalation::wake();
    }
    Ok((id, created))
}

/// Links a container action on a service to the open incident concerning
/// that service, in the caller's transaction.
pub async fn link_action(
    conn: &mut PgConnection,
    action_id: i64,
    service_id: i64,
    summary: &str,
) -> sqlx::Result<()> {
    let incident = store::open_on_service(&mut *conn, service_id).await?;
    let Some(incident) = incident else {
        return Ok(());
    };
    store::link_action(&mut *conn, action_id, incident).await?;
    timeline::append(
        conn,
        "incident",
        incident,
        "action",
        None,
        None,
        summary,
        json!({ "container_action_id": action_id }),
    )
    .await?;
    touch(conn, incident).await
}
