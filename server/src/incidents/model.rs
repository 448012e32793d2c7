//! Incident rows: reading them as wire types (with live SLA timers),
//! opening one (deduplicated), and the status transitions.

use std::collections::HashMap;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use opsdeck_wire::{Incident, IncidentService, IncidentStatus, Severity, SlaTarget, SlaTimer};
use serde_json::{json, Value};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::audit::{self, Actor, NewEntry};
use crate::error::{ApiError, ApiResult};
use crate::timeline;
use opsdeck_wire::Outcome;

use super::touch;

/// The columns every incident read selects (`i` = incidents).
pub(crate) const SELECT: &str = r#"
    SELECT i.id, i.title, i.severity, i.status, i.source, i.summary, i.commander_id,
           u.username AS commander, i.escalation_policy_id, p.name AS escalation_policy,
           i.escalation_level, i.next_escalation_at, i.triggered_at, i.acknowledged_at,
           i.acknowledged_by, i.diagnosed_at, i.mitigated_at, i.resolved_at,
           i.postmortem_done_at, i.recovered_at, i.sla_breaches, i.created_by, i.updated_at,
           coalesce((SELECT json_agg(json_build_object('service_id', s.id, 'name', s.name, 'role', x.role)
                                     ORDER BY x.role DESC, s.name)
                     FROM incident_services x JOIN services s ON s.id = x.service_id
                     WHERE x.incident_id = i.id), '[]') AS services
    FROM incidents i
    LEFT JOIN users u ON u.id = i.commander_id
    LEFT JOIN escalation_policies p ON p.id = i.escalation_policy_id"#;

/// SLA targets per severity (1–4).
pub type Targets = HashMap<i16, SlaTarget>;

/// The SLA milestones in order, with the column that marks each as met.
pub const MILESTONES: [&str; 5] = ["ack", "diagnose", "mitigate", "resolve", "postmortem"];

pub async fn targets(conn: &mut PgConnection) -> sqlx::Result<Targets> {
    let rows = sqlx::query(
        "SELECT severity, ack_secs, diagnose_secs, mitigate_secs, resolve_secs, postmortem_secs
         FROM sla_targets",
    )
    .fetch_all(conn)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        let sev: i16 = r.get("severity");
        let Some(severity) = Severity::from_level(sev) else {
            continue;
        };
        let secs = |c: &str| r.get::<Option<i32>, _>(c).map(i64::from);
        out.insert(
            sev,
            SlaTarget {
                severity,
                ack_secs: secs("ack_secs"),
                diagnose_secs: secs("diagnose_secs"),
                mitigate_secs: secs("mitigate_secs"),
                resolve_secs: secs("resolve_secs"),
                postmortem_secs: secs("postmortem_secs"),
            },
        );
    }
    Ok(out)
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

/// Reads a row of [`SELECT`] (SLA timers left empty: see [`with_sla`]).
pub fn from_row(r: &PgRow) -> sqlx::Result<Incident> {
    let services: Value = r.try_get("services")?;
    let status: String = r.try_get("status")?;
    let sev: i16 = r.try_get("severity")?;
    Ok(Incident {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        severity: Severity::from_level(sev).unwrap_or(Severity::P4),
        status: IncidentStatus::parse(&status).unwrap_or(IncidentStatus::Triggered),
        source: r.try_get("source")?,
        summary: r.try_get("summary")?,
        commander_id: r.try_get("commander_id")?,
        commander: r.try_get("commander")?,
        services: serde_json::from_value::<Vec<IncidentService>>(services).unwrap_or_default(),
        escalation_policy_id: r.try_get("escalation_policy_id")?,
        escalation_policy: r.try_get("escalation_policy")?,
        escalation_level: r.try_get("escalation_level")?,
        next_escalation_at: r.try_get("next_escalation_at")?,
        triggered_at: r.try_get("triggered_at")?,
        acknowledged_at: r.try_get("acknowledged_at")?,
        acknowledged_by: r.try_get("acknowledged_by")?,
        diagnosed_at: r.try_get("diagnosed_at")?,
        mitigated_at: r.try_get("mitigated_at")?,
        resolved_at: r.try_get("resolved_at")?,
        postmortem_done_at: r.try_get("postmortem_done_at")?,
        recovered_at: r.try_get("recovered_at")?,
        sla: Vec::new(),
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
    })
}

/// Fills in the SLA timers.
pub fn with_sla(mut i: Incident, targets: &Targets, now: DateTime<Utc>) -> Incident {
    i.sla = sla_timers(&i, targets.get(&i.severity.level()), now);
    i
}

/// One incident with its timers.
pub async fn load(conn: &mut PgConnection, id: i64) -> ApiResult<Incident> {
    let row = sqlx::query(&format!("{SELECT} WHERE i.id = $1"))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("incident {id}")))?;
    let t = targets(conn).await?;
    Ok(with_sla(from_row(&row)?, &t, Utc::now()))
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
        PolicyChoice::Default => {
            // The incident settings' choice, else the policy flagged default
            // on the Contacts & escalation page.
            sqlx::query_scalar(
                "SELECT coalesce((SELECT default_policy_id FROM incident_settings),
                                 (SELECT id FROM escalation_policies WHERE is_default))",
            )
            .fetch_one(&mut *conn)
            .await?
        }
    };
    let first_delay: Option<i32> = match policy_id {
        Some(p) => sqlx::query_scalar(
            "SELECT delay_secs FROM escalation_levels WHERE policy_id = $1 ORDER BY level LIMIT 1",
        )
        .bind(p)
        .fetch_optional(&mut *conn)
        .await?,
        None => None,
    };
    let next_at = first_delay.map(|d| o.now + ChronoDuration::seconds(i64::from(d)));
    let inserted: Option<i64> = sqlx::query_scalar(
        "INSERT INTO incidents (title, severity, source, dedup_key, summary, commander_id,
                                escalation_policy_id, next_escalation_at, triggered_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (dedup_key)
             WHERE dedup_key IS NOT NULL AND status IN ('triggered', 'acknowledged', 'mitigated')
             DO NOTHING
         RETURNING id",
    )
    .bind(&o.title)
    .bind(o.severity.level())
    .bind(o.source)
    .bind(&o.dedup_key)
    .bind(&o.summary)
    .bind(o.commander_id)
    .bind(policy_id)
    .bind(next_at)
    .bind(o.now)
    .bind(&o.actor.name)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(id) = inserted else {
        let id: i64 = sqlx::query_scalar(
            "SELECT id FROM incidents WHERE dedup_key = $1
               AND status IN ('triggered', 'acknowledged', 'mitigated')",
        )
        .bind(&o.dedup_key)
        .fetch_one(&mut *conn)
        .await?;
        return Ok((id, false));
    };
    for (service, role) in &o.services {
        sqlx::query(
            "INSERT INTO incident_services (incident_id, service_id, role) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(service)
        .bind(role)
        .execute(&mut *conn)
        .await?;
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
) -> ApiResult<()> {
    let row: Option<(String, Option<DateTime<Utc>>)> =
        sqlx::query_as("SELECT status, diagnosed_at FROM incidents WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *conn)
            .await?;
    let (status, diagnosed) = row.ok_or_else(|| ApiError::NotFound(format!("incident {id}")))?;
    let status = IncidentStatus::parse(&status)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("incident status {status}")))?;
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
        return Err(ApiError::Conflict(format!(
            "cannot {} incident {id}: it {why}",
            act.name().replace('_', " ")
        )));
    }
    // Acknowledgement is implied by every act on a triggered incident.
    let acks = status == S::Triggered && act != Act::Reopen;
    let sql = match act {
        Act::Acknowledge => "UPDATE incidents SET status = 'acknowledged' WHERE id = $1",
        Act::Diagnose => "UPDATE incidents SET diagnosed_at = now() WHERE id = $1",
        Act::Mitigate => "UPDATE incidents SET status = 'mitigated', mitigated_at = now() WHERE id = $1",
        Act::Resolve => "UPDATE incidents SET status = 'resolved', resolved_at = now(),
                                mitigated_at = coalesce(mitigated_at, now()) WHERE id = $1",
        Act::Reopen => "UPDATE incidents SET status = 'acknowledged', resolved_at = NULL,
                               recovered_at = NULL WHERE id = $1",
        Act::PostmortemDone => {
            "UPDATE incidents SET status = 'postmortem_done', postmortem_done_at = now() WHERE id = $1"
        }
    };
    sqlx::query(sql).bind(id).execute(&mut *conn).await?;
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
    sqlx::query(
        "UPDATE incidents SET acknowledged_at = coalesce(acknowledged_at, now()),
                acknowledged_by = coalesce(acknowledged_by, $2), next_escalation_at = NULL
         WHERE id = $1",
    )
    .bind(id)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE notifications SET status = 'cancelled', last_error = 'incident acknowledged'
         WHERE incident_id = $1 AND kind = 'escalation' AND status = 'pending'
           AND (lease_until IS NULL OR lease_until < now())",
    )
    .bind(id)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
        Err(ApiError::Conflict(_)) => Ok(false),
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
        Some(id) => {
            sqlx::query_scalar("SELECT id FROM incidents WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        }
        None => {
            sqlx::query_scalar(
                "SELECT i.id FROM incidents i
             JOIN incident_services x ON x.incident_id = i.id
             JOIN services s ON s.id = x.service_id
             WHERE s.name = $1 AND i.status IN ('triggered', 'acknowledged', 'mitigated')
             ORDER BY i.id DESC LIMIT 1",
            )
            .bind(target)
            .fetch_optional(&mut *conn)
            .await?
        }
    };
    let Some(incident) = incident else {
        return Ok(None);
    };
    sqlx::query("UPDATE runs SET incident_id = $2 WHERE id = $1")
        .bind(run_id)
        .bind(incident)
        .execute(&mut *conn)
        .await?;
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

/// Links a container action on a service to the open incident concerning
/// that service, in the caller's transaction.
pub async fn link_action(
    conn: &mut PgConnection,
    action_id: i64,
    service_id: i64,
    summary: &str,
) -> sqlx::Result<()> {
    let incident: Option<i64> = sqlx::query_scalar(
        "SELECT i.id FROM incidents i JOIN incident_services x ON x.incident_id = i.id
         WHERE x.service_id = $1 AND i.status IN ('triggered', 'acknowledged', 'mitigated')
         ORDER BY i.id DESC LIMIT 1",
    )
    .bind(service_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(incident) = incident else {
        return Ok(());
    };
    sqlx::query("UPDATE container_actions SET incident_id = $2 WHERE id = $1")
        .bind(action_id)
        .bind(incident)
        .execute(&mut *conn)
        .await?;
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
