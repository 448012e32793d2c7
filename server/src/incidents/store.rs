//! The incidents capability's SQL: every statement on `incidents`,
//! `incident_services`, `incident_settings` and `sla_targets` that the
//! domain ([`super::model`], [`super::edit`], [`super::postmortem`],
//! [`super::report`]) runs, compile-checked against the schema. No rules
//! here: each function is one statement (or one read and its mapping).
//!
//! The incident read is written out in each query that needs it (the
//! macros need literal SQL); [`SELECT`] and [`from_row`] remain for the
//! escalation ticker's own read.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use opsdeck_wire::{
    Incident, IncidentService, IncidentStatus, LinkedRun, Notification, RunStatus, Severity,
    SlaTarget,
};
use serde_json::Value;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::CHANNEL;

/// The columns every incident read selects (`i` = incidents), for callers
/// that add their own runtime filter (the escalation ticker).
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

/// An incident as read (SLA timers not yet computed).
struct IncidentRow {
    id: i64,
    title: String,
    severity: i16,
    status: String,
    source: String,
    summary: String,
    commander_id: Option<i64>,
    commander: Option<String>,
    escalation_policy_id: Option<i64>,
    escalation_policy: Option<String>,
    escalation_level: i32,
    next_escalation_at: Option<DateTime<Utc>>,
    triggered_at: DateTime<Utc>,
    acknowledged_at: Option<DateTime<Utc>>,
    acknowledged_by: Option<String>,
    diagnosed_at: Option<DateTime<Utc>>,
    mitigated_at: Option<DateTime<Utc>>,
    resolved_at: Option<DateTime<Utc>>,
    postmortem_done_at: Option<DateTime<Utc>>,
    recovered_at: Option<DateTime<Utc>>,
    created_by: String,
    updated_at: DateTime<Utc>,
    services: Value,
}

impl From<IncidentRow> for Incident {
    fn from(r: IncidentRow) -> Incident {
        Incident {
            id: r.id,
            title: r.title,
            severity: Severity::from_level(r.severity).unwrap_or(Severity::P4),
            status: IncidentStatus::parse(&r.status).unwrap_or(IncidentStatus::Triggered),
            source: r.source,
            summary: r.summary,
            commander_id: r.commander_id,
            commander: r.commander,
            services: serde_json::from_value::<Vec<IncidentService>>(r.services)
                .unwrap_or_default(),
            escalation_policy_id: r.escalation_policy_id,
            escalation_policy: r.escalation_policy,
            escalation_level: r.escalation_level,
            next_escalation_at: r.next_escalation_at,
            triggered_at: r.triggered_at,
            acknowledged_at: r.acknowledged_at,
            acknowledged_by: r.acknowledged_by,
            diagnosed_at: r.diagnosed_at,
            mitigated_at: r.mitigated_at,
            resolved_at: r.resolved_at,
            postmortem_done_at: r.postmortem_done_at,
            recovered_at: r.recovered_at,
            sla: Vec::new(),
            created_by: r.created_by,
            updated_at: r.updated_at,
        }
    }
}

/// Reads a row of [`SELECT`] (SLA timers left empty).
pub fn from_row(r: &PgRow) -> sqlx::Result<Incident> {
    Ok(IncidentRow {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        severity: r.try_get("severity")?,
        status: r.try_get("status")?,
        source: r.try_get("source")?,
        summary: r.try_get("summary")?,
        commander_id: r.try_get("commander_id")?,
        commander: r.try_get("commander")?,
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
        created_by: r.try_get("created_by")?,
        updated_at: r.try_get("updated_at")?,
        services: r.try_get("services")?,
    }
    .into())
}

// ------------------------------------------------------------------ reads

/// One incident (timers empty), if it exists.
pub async fn incident(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<Incident>> {
    let row = sqlx::query_as!(
        IncidentRow,
        r#"SELECT i.id, i.title, i.severity, i.status, i.source, i.summary, i.commander_id,
                  u.username AS "commander?", i.escalation_policy_id,
                  p.name AS "escalation_policy?", i.escalation_level, i.next_escalation_at,
                  i.triggered_at, i.acknowledged_at, i.acknowledged_by, i.diagnosed_at,
                  i.mitigated_at, i.resolved_at, i.postmortem_done_at, i.recovered_at,
                  i.created_by, i.updated_at,
                  coalesce((SELECT json_agg(json_build_object('service_id', s.id, 'name', s.name, 'role', x.role)
                                            ORDER BY x.role DESC, s.name)
                            FROM incident_services x JOIN services s ON s.id = x.service_id
                            WHERE x.incident_id = i.id), '[]') AS "services!"
           FROM incidents i
           LEFT JOIN users u ON u.id = i.commander_id
           LEFT JOIN escalation_policies p ON p.id = i.escalation_policy_id
           WHERE i.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Incident::from))
}

/// The list filter: statuses, severity level, text in title or summary,
/// affected service. Every part is optional through a NULL parameter, so
/// the statement stays static.
pub struct ListFilter<'a> {
    pub statuses: &'a [String],
    pub severity: Option<i16>,
    pub q: Option<&'a str>,
    pub service_id: Option<i64>,
}

/// How many incidents match the filter.
pub async fn count(conn: &mut PgConnection, f: &ListFilter<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM incidents i
           WHERE i.status = ANY($1) AND ($2::smallint IS NULL OR i.severity = $2)
             AND ($3::text IS NULL OR i.title ILIKE '%' || $3 || '%' OR i.summary ILIKE '%' || $3 || '%')
             AND ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM incident_services x
                                                WHERE x.incident_id = i.id AND x.service_id = $4))"#,
        f.statuses,
        f.severity,
        f.q,
        f.service_id
    )
    .fetch_one(conn)
    .await
}

/// One page of the incidents matching the filter, newest first.
pub async fn list(
    conn: &mut PgConnection,
    f: &ListFilter<'_>,
    limit: i64,
    offset: i64,
) -> sqlx::Result<Vec<Incident>> {
    let rows = sqlx::query_as!(
        IncidentRow,
        r#"SELECT i.id, i.title, i.severity, i.status, i.source, i.summary, i.commander_id,
                  u.username AS "commander?", i.escalation_policy_id,
                  p.name AS "escalation_policy?", i.escalation_level, i.next_escalation_at,
                  i.triggered_at, i.acknowledged_at, i.acknowledged_by, i.diagnosed_at,
                  i.mitigated_at, i.resolved_at, i.postmortem_done_at, i.recovered_at,
                  i.created_by, i.updated_at,
                  coalesce((SELECT json_agg(json_build_object('service_id', s.id, 'name', s.name, 'role', x.role)
                                            ORDER BY x.role DESC, s.name)
                            FROM incident_services x JOIN services s ON s.id = x.service_id
                            WHERE x.incident_id = i.id), '[]') AS "services!"
           FROM incidents i
           LEFT JOIN users u ON u.id = i.commander_id
           LEFT JOIN escalation_policies p ON p.id = i.escalation_policy_id
           WHERE i.status = ANY($1) AND ($2::smallint IS NULL OR i.severity = $2)
             AND ($3::text IS NULL OR i.title ILIKE '%' || $3 || '%' OR i.summary ILIKE '%' || $3 || '%')
             AND ($4::bigint IS NULL OR EXISTS (SELECT 1 FROM incident_services x
                                                WHERE x.incident_id = i.id AND x.service_id = $4))
           ORDER BY i.triggered_at DESC, i.id DESC LIMIT $5 OFFSET $6"#,
        f.statuses,
        f.severity,
        f.q,
        f.service_id,
        limit,
        offset
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Incident::from).collect())
}

/// Incidents triggered in `[from, to)`, oldest first (timers empty).
pub async fn triggered_in(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<Incident>> {
    let rows = sqlx::query_as!(
        IncidentRow,
        r#"SELECT i.id, i.title, i.severity, i.status, i.source, i.summary, i.commander_id,
                  u.username AS "commander?", i.escalation_policy_id,
                  p.name AS "escalation_policy?", i.escalation_level, i.next_escalation_at,
                  i.triggered_at, i.acknowledged_at, i.acknowledged_by, i.diagnosed_at,
                  i.mitigated_at, i.resolved_at, i.postmortem_done_at, i.recovered_at,
                  i.created_by, i.updated_at,
                  coalesce((SELECT json_agg(json_build_object('service_id', s.id, 'name', s.name, 'role', x.role)
                                            ORDER BY x.role DESC, s.name)
                            FROM incident_services x JOIN services s ON s.id = x.service_id
                            WHERE x.incident_id = i.id), '[]') AS "services!"
           FROM incidents i
           LEFT JOIN users u ON u.id = i.commander_id
           LEFT JOIN escalation_policies p ON p.id = i.escalation_policy_id
           WHERE i.triggered_at >= $1 AND i.triggered_at < $2 ORDER BY i.triggered_at"#,
        from,
        to
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Incident::from).collect())
}

/// SLA targets per severity level (1–4).
pub async fn targets(conn: &mut PgConnection) -> sqlx::Result<HashMap<i16, SlaTarget>> {
    let rows = sqlx::query!(
        "SELECT severity, ack_secs, diagnose_secs, mitigate_secs, resolve_secs, postmortem_secs
         FROM sla_targets"
    )
    .fetch_all(conn)
    .await?;
    let mut out = HashMap::new();
    for r in rows {
        let Some(severity) = Severity::from_level(r.severity) else {
            continue;
        };
        out.insert(
            r.severity,
            SlaTarget {
                severity,
                ack_secs: r.ack_secs.map(i64::from),
                diagnose_secs: r.diagnose_secs.map(i64::from),
                mitigate_secs: r.mitigate_secs.map(i64::from),
                resolve_secs: r.resolve_secs.map(i64::from),
                postmortem_secs: r.postmortem_secs.map(i64::from),
            },
        );
    }
    Ok(out)
}

/// The runs linked to an incident.
pub async fn linked_runs(conn: &mut PgConnection, id: i64) -> sqlx::Result<Vec<LinkedRun>> {
    let rows = sqlx::query!(
        "SELECT r.id, b.name, r.status, r.requested_by, r.created_at
         FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         WHERE r.incident_id = $1 ORDER BY r.id",
        id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| LinkedRun {
            id: r.id,
            runbook: r.name,
            status: RunStatus::parse(&r.status).unwrap_or(RunStatus::Failed),
            requested_by: r.requested_by,
            created_at: r.created_at,
        })
        .collect())
}

/// The notifications about an incident.
pub async fn notifications(conn: &mut PgConnection, id: i64) -> sqlx::Result<Vec<Notification>> {
    sqlx::query_as!(
        Notification,
        r#"SELECT id, kind, incident_id, level, channel_name AS channel, channel_kind,
                  person_name AS person, address, status, attempts, last_error, sent_at, created_at
           FROM notifications WHERE incident_id = $1 ORDER BY id"#,
        id
    )
    .fetch_all(conn)
    .await
}

/// Whether an active (not disabled) user has this id.
pub async fn active_user(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(
        "SELECT id FROM users WHERE id = $1 AND disabled_at IS NULL",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// A user's name.
pub async fn username(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT username FROM users WHERE id = $1", id)
        .fetch_optional(conn)
        .await
}

/// Whether an escalation policy has this id.
pub async fn policy_exists(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!("SELECT id FROM escalation_policies WHERE id = $1", id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// A service's name.
pub async fn service_name(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT name FROM services WHERE id = $1", id)
        .fetch_optional(conn)
        .await
}

/// The delay of a policy's first level.
pub async fn first_level_delay(
    conn: &mut PgConnection,
    policy_id: i64,
) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar!(
        "SELECT delay_secs FROM escalation_levels WHERE policy_id = $1 ORDER BY level LIMIT 1",
        policy_id
    )
    .fetch_optional(conn)
    .await
}

/// The default escalation policy: the incident settings' choice, else the
/// policy flagged default on the Contacts & escalation page.
pub async fn default_policy(conn: &mut PgConnection) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT coalesce((SELECT default_policy_id FROM incident_settings),
                         (SELECT id FROM escalation_policies WHERE is_default))"
    )
    .fetch_one(conn)
    .await
}

// ----------------------------------------------------------------- writes

/// Bumps `updated_at` and queues the NOTIFY (see [`super::touch`]).
pub async fn touch(conn: &mut PgConnection, incident_id: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE incidents SET updated_at = now() WHERE id = $1",
        incident_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!("SELECT pg_notify($1, $2)", CHANNEL, incident_id.to_string())
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// A new incident row's values.
pub struct NewRow<'a> {
    pub title: &'a str,
    pub severity: i16,
    pub source: &'a str,
    pub dedup_key: Option<&'a str>,
    pub summary: &'a str,
    pub commander_id: Option<i64>,
    pub policy_id: Option<i64>,
    pub next_at: Option<DateTime<Utc>>,
    pub triggered_at: DateTime<Utc>,
    pub created_by: &'a str,
}

/// Inserts an incident unless an open one has the same dedup key (then
/// `None`).
pub async fn insert(conn: &mut PgConnection, n: &NewRow<'_>) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "INSERT INTO incidents (title, severity, source, dedup_key, summary, commander_id,
                                escalation_policy_id, next_escalation_at, triggered_at, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (dedup_key)
             WHERE dedup_key IS NOT NULL AND status IN ('triggered', 'acknowledged', 'mitigated')
             DO NOTHING
         RETURNING id",
        n.title,
        n.severity,
        n.source,
        n.dedup_key,
        n.summary,
        n.commander_id,
        n.policy_id,
        n.next_at,
        n.triggered_at,
        n.created_by
    )
    .fetch_optional(conn)
    .await
}

/// The open incident with this dedup key.
pub async fn open_with_key(conn: &mut PgConnection, key: Option<&str>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "SELECT id FROM incidents WHERE dedup_key = $1
           AND status IN ('triggered', 'acknowledged', 'mitigated')",
        key
    )
    .fetch_one(conn)
    .await
}

/// Adds a service to an incident; false when it was already there.
pub async fn add_service(
    conn: &mut PgConnection,
    incident_id: i64,
    service_id: i64,
    role: &str,
) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "INSERT INTO incident_services (incident_id, service_id, role) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
        incident_id,
        service_id,
        role
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Locks an incident's row for the transaction.
pub async fn lock(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "SELECT 1 AS one FROM incidents WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(())
}

/// Status and diagnosis time, the row locked.
pub async fn status_for_update(
    conn: &mut PgConnection,
    id: i64,
) -> sqlx::Result<Option<(String, Option<DateTime<Utc>>)>> {
    let r = sqlx::query!(
        "SELECT status, diagnosed_at FROM incidents WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(r.map(|r| (r.status, r.diagnosed_at)))
}

pub async fn set_title(conn: &mut PgConnection, id: i64, title: &str) -> sqlx::Result<()> {
    sqlx::query!("UPDATE incidents SET title = $2 WHERE id = $1", id, title)
        .execute(conn)
        .await
        .map(drop)
}

pub async fn set_severity(conn: &mut PgConnection, id: i64, level: i16) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE incidents SET severity = $2 WHERE id = $1",
        id,
        level
    )
    .execute(conn)
    .await
    .map(drop)
}

pub async fn set_summary(conn: &mut PgConnection, id: i64, summary: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE incidents SET summary = $2 WHERE id = $1",
        id,
        summary
    )
    .execute(conn)
    .await
    .map(drop)
}

pub async fn set_commander(
    conn: &mut PgConnection,
    id: i64,
    commander: Option<i64>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE incidents SET commander_id = $2 WHERE id = $1",
        id,
        commander
    )
    .execute(conn)
    .await
    .map(drop)
}

/// A new escalation policy, starting again at level 0.
pub async fn set_policy(
    conn: &mut PgConnection,
    id: i64,
    policy: Option<i64>,
    next_at: Option<DateTime<Utc>>,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE incidents SET escalation_policy_id = $2, escalation_level = 0,
                next_escalation_at = $3 WHERE id = $1",
        id,
        policy,
        next_at
    )
    .execute(conn)
    .await
    .map(drop)
}

/// The status change of a status action (see [`super::model::Act`]).
pub async fn set_status(
    conn: &mut PgConnection,
    id: i64,
    act: super::model::Act,
) -> sqlx::Result<()> {
    use super::model::Act;
    match act {
        Act::Acknowledge => {
            sqlx::query!("UPDATE incidents SET status = 'acknowledged' WHERE id = $1", id)
            .execute(conn)
            .await
        }
        Act::Diagnose => sqlx::query!("UPDATE incidents SET diagnosed_at = now() WHERE id = $1", id)
            .execute(conn)
            .await,
        Act::Mitigate => sqlx::query!(
            "UPDATE incidents SET status = 'mitigated', mitigated_at = now() WHERE id = $1",
            id
        )
            .execute(conn)
            .await,
        Act::Resolve => sqlx::query!(
            "UPDATE incidents SET status = 'resolved', resolved_at = now(),
                    mitigated_at = coalesce(mitigated_at, now()) WHERE id = $1",
            id
        )
        .execute(conn)
        .await,
        Act::Reopen => sqlx::query!(
            "UPDATE incidents SET status = 'acknowledged', resolved_at = NULL,
                    recovered_at = NULL WHERE id = $1",
            id
        )
            .execute(conn)
            .await,
        Act::PostmortemDone => sqlx::query!(
            "UPDATE incidents SET status = 'postmortem_done', postmortem_done_at = now() WHERE id = $1",
            id
        )
            .execute(conn)
            .await,
    }
    .map(drop)
}

/// Marks acknowledged (first time only) and stops escalation: no further
/// levels, queued messages not yet leased for sending cancelled.
pub async fn stop_escalation(conn: &mut PgConnection, id: i64, by: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE incidents SET acknowledged_at = coalesce(acknowledged_at, now()),
                acknowledged_by = coalesce(acknowledged_by, $2), next_escalation_at = NULL
         WHERE id = $1",
        id,
        by
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE notifications SET status = 'cancelled', last_error = 'incident acknowledged'
         WHERE incident_id = $1 AND kind = 'escalation' AND status = 'pending'
           AND (lease_until IS NULL OR lease_until < now())",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Whether an incident exists.
pub async fn exists(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!("SELECT id FROM incidents WHERE id = $1", id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// The newest open incident on the service with this name.
pub async fn open_on_service_named(
    conn: &mut PgConnection,
    service: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT i.id FROM incidents i
         JOIN incident_services x ON x.incident_id = i.id
         JOIN services s ON s.id = x.service_id
         WHERE s.name = $1 AND i.status IN ('triggered', 'acknowledged', 'mitigated')
         ORDER BY i.id DESC LIMIT 1",
        service
    )
    .fetch_optional(conn)
    .await
}

/// The newest open incident on this service.
pub async fn open_on_service(
    conn: &mut PgConnection,
    service_id: i64,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT i.id FROM incidents i JOIN incident_services x ON x.incident_id = i.id
         WHERE x.service_id = $1 AND i.status IN ('triggered', 'acknowledged', 'mitigated')
         ORDER BY i.id DESC LIMIT 1",
        service_id
    )
    .fetch_optional(conn)
    .await
}

pub async fn link_run(conn: &mut PgConnection, run_id: i64, incident: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE runs SET incident_id = $2 WHERE id = $1",
        run_id,
        incident
    )
    .execute(conn)
    .await
    .map(drop)
}

pub async fn link_action(
    conn: &mut PgConnection,
    action_id: i64,
    incident: i64,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE container_actions SET incident_id = $2 WHERE id = $1",
        action_id,
        incident
    )
    .execute(conn)
    .await
    .map(drop)
}

// ------------------------------------------------------------ post-mortem

/// The saved post-mortem document, if any (`None` when the incident does
/// not exist either).
pub async fn postmortem(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<Value>> {
    let v = sqlx::query_scalar!("SELECT postmortem FROM incidents WHERE id = $1", id)
        .fetch_optional(conn)
        .await?;
    Ok(v.flatten())
}

pub async fn save_postmortem(conn: &mut PgConnection, id: i64, doc: &Value) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE incidents SET postmortem = $2 WHERE id = $1",
        id,
        doc
    )
    .execute(conn)
    .await
    .map(drop)
}

// --------------------------------------------------------------- settings

/// The single settings row: auto-open, on-recovery, default policy id,
/// ack-link lifetime.
pub struct SettingsRow {
    pub auto_open: bool,
    pub on_recovery: String,
    pub default_policy_id: Option<i64>,
    pub ack_link_ttl_secs: i32,
}

pub async fn settings(conn: &mut PgConnection) -> sqlx::Result<SettingsRow> {
    sqlx::query_as!(
        SettingsRow,
        "SELECT auto_open, on_recovery, default_policy_id, ack_link_ttl_secs FROM incident_settings"
    )
    .fetch_one(conn)
    .await
}

pub async fn save_settings(conn: &mut PgConnection, s: &SettingsRow) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE incident_settings SET auto_open = $1, on_recovery = $2, default_policy_id = $3,
                ack_link_ttl_secs = $4",
        s.auto_open,
        s.on_recovery,
        s.default_policy_id,
        s.ack_link_ttl_secs
    )
    .execute(conn)
    .await
    .map(drop)
}

/// One severity's SLA targets in seconds: ack, diagnose, mitigate,
/// resolve, post-mortem.
pub async fn save_target(
    conn: &mut PgConnection,
    severity: i16,
    secs: [Option<i32>; 5],
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE sla_targets SET ack_secs = $2, diagnose_secs = $3, mitigate_secs = $4,
                resolve_secs = $5, postmortem_secs = $6 WHERE severity = $1",
        severity,
        secs[0],
        secs[1],
        secs[2],
        secs[3],
        secs[4]
    )
    .execute(conn)
    .await
    .map(drop)
}

// ---------------------------------------------------------------- reports

/// `(service, ok probes, probes)` from the hourly rollups of enabled checks
/// in `[from, to)`, for services with probes.
pub async fn probes_by_service(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<Vec<(String, i64, i64)>> {
    let rows = sqlx::query!(
        r#"SELECT s.name, sum(r.ok)::bigint AS "ok!", sum(r.probes)::bigint AS "probes!"
           FROM check_rollups_hour r
           JOIN checks c ON c.id = r.check_id
           JOIN services s ON s.id = c.service_id
           WHERE r.bucket >= $1 AND r.bucket < $2 AND c.enabled
           GROUP BY s.name HAVING sum(r.probes) > 0"#,
        from,
        to
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.name, r.ok, r.probes)).collect())
}
