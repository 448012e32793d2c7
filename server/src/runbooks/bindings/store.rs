//! The SQL of runbook bindings and their firings.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use opsdeck_wire::{BindingFiring, BindingMode, BindingTrigger, BindingWrite, RunbookBinding};
use serde_json::Value;
use sqlx::PgConnection;

/// A binding with its runbook's current definition and its service's name.
#[derive(Debug, Clone)]
pub struct BindingRow {
    pub id: i64,
    pub runbook_id: i64,
    pub runbook: String,
    pub definition: Value,
    pub mode: String,
    pub check_id: Option<i64>,
    pub check_kind: Option<String>,
    pub service_id: Option<i64>,
    pub service: Option<String>,
    pub alert_name: Option<String>,
    pub alert_labels: Value,
    pub severity: Option<i16>,
    pub params: Value,
    pub max_per_hour: i32,
    pub cooldown_s: i32,
    pub enabled: bool,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
}

impl BindingRow {
    /// The trigger in its wire form.
    pub fn trigger(&self) -> BindingTrigger {
        BindingTrigger {
            check_id: self.check_id,
            check_kind: self.check_kind.clone(),
            service: self.service.clone(),
            alert_name: self.alert_name.clone(),
            alert_labels: serde_json::from_value(self.alert_labels.clone()).unwrap_or_default(),
            severity: self.severity.map(|s| s as u8),
        }
    }

    pub fn into_wire(self) -> RunbookBinding {
        RunbookBinding {
            id: self.id,
            runbook_id: self.runbook_id,
            def: BindingWrite {
                trigger: self.trigger(),
                runbook: self.runbook,
                mode: BindingMode::parse(&self.mode).unwrap_or(BindingMode::Suggested),
                params: serde_json::from_value(self.params).unwrap_or_default(),
                max_per_hour: self.max_per_hour as u32,
                cooldown_s: self.cooldown_s as u32,
                enabled: self.enabled,
            },
            created_by: self.created_by,
            created_at: self.created_at,
        }
    }
}

pub async fn all(conn: &mut PgConnection) -> sqlx::Result<Vec<BindingRow>> {
    sqlx::query_as!(
        BindingRow,
        r#"SELECT b.id, b.runbook_id, r.name AS runbook, v.definition, b.mode, b.check_id,
                  b.check_kind, b.service_id, s.name AS "service?", b.alert_name, b.alert_labels,
                  b.severity, b.params, b.max_per_hour, b.cooldown_s, b.enabled, b.created_by,
                  b.created_at
           FROM runbook_bindings b
           JOIN runbooks r ON r.id = b.runbook_id
           JOIN runbook_versions v ON v.runbook_id = r.id AND v.version = r.current_version
           LEFT JOIN services s ON s.id = b.service_id
           ORDER BY b.id"#
    )
    .fetch_all(conn)
    .await
}

pub async fn insert(
    conn: &mut PgConnection,
    runbook_id: i64,
    service_id: Option<i64>,
    w: &BindingWrite,
    by: &str,
) -> sqlx::Result<i64> {
    let t = &w.trigger;
    sqlx::query_scalar!(
        "INSERT INTO runbook_bindings (runbook_id, mode, check_id, check_kind, service_id,
                                       alert_name, alert_labels, severity, params, max_per_hour,
                                       cooldown_s, enabled, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id",
        runbook_id,
        w.mode.as_str(),
        t.check_id,
        t.check_kind.as_deref(),
        service_id,
        t.alert_name.as_deref().map(str::trim),
        serde_json::to_value(&t.alert_labels).unwrap_or_default(),
        t.severity.map(i16::from),
        serde_json::to_value(&w.params).unwrap_or_default(),
        w.max_per_hour as i32,
        w.cooldown_s as i32,
        w.enabled,
        by
    )
    .fetch_one(conn)
    .await
}

pub async fn delete(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM runbook_bindings WHERE id = $1", id)
        .execute(conn)
        .await
        .map(drop)
}

pub async fn check_exists(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM checks WHERE id = $1) AS "e!""#,
        id
    )
    .fetch_one(conn)
    .await
}

pub async fn incident_exists(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM incidents WHERE id = $1) AS "e!""#,
        id
    )
    .fetch_one(conn)
    .await
}

pub async fn service_id(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT id FROM services WHERE name = $1", name)
        .fetch_optional(conn)
        .await
}

/// A runbook's id and current definition, by name.
pub async fn runbook_by_name(
    conn: &mut PgConnection,
    name: &str,
) -> sqlx::Result<Option<(i64, Value)>> {
    Ok(sqlx::query!(
        "SELECT r.id, v.definition FROM runbooks r
         JOIN runbook_versions v ON v.runbook_id = r.id AND v.version = r.current_version
         WHERE r.name = $1",
        name
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.id, r.definition)))
}

/// An open, not recovered incident as bindings see it.
pub struct AlertRow {
    pub incident_id: i64,
    pub severity: i16,
    pub service_ids: Vec<i64>,
    pub service_names: Vec<String>,
    pub check_ids: Vec<i64>,
    pub check_kinds: Vec<String>,
    pub check_services: Vec<i64>,
    pub labels: Value,
}

/// Open incidents that are not marked recovered (all, or the one with
/// `id`): their root and affected services, the critical checks of those
/// services, and the labels of the Alertmanager alert that opened them.
pub async fn alerts(conn: &mut PgConnection, id: Option<i64>) -> sqlx::Result<Vec<AlertRow>> {
    sqlx::query_as!(
        AlertRow,
        r#"SELECT i.id AS incident_id, i.severity,
                  coalesce(sv.ids, '{}') AS "service_ids!", coalesce(sv.names, '{}') AS "service_names!",
                  coalesce(ck.ids, '{}') AS "check_ids!", coalesce(ck.kinds, '{}') AS "check_kinds!",
                  coalesce(ck.services, '{}') AS "check_services!",
                  coalesce((SELECT e.data->'labels' FROM timeline_events e
                            WHERE e.subject_type = 'incident' AND e.subject_id = i.id
                              AND e.kind = 'alert' ORDER BY e.id LIMIT 1), '{}') AS "labels!"
           FROM incidents i
           LEFT JOIN LATERAL (
               SELECT array_agg(s.id ORDER BY x.role DESC, s.name) AS ids,
                      array_agg(s.name ORDER BY x.role DESC, s.name) AS names
               FROM incident_services x JOIN services s ON s.id = x.service_id
               WHERE x.incident_id = i.id AND x.role IN ('root', 'affected')) sv ON true
           LEFT JOIN LATERAL (
               SELECT array_agg(c.id ORDER BY c.id) AS ids, array_agg(c.kind ORDER BY c.id) AS kinds,
                      array_agg(c.service_id ORDER BY c.id) AS services
               FROM checks c
               WHERE c.service_id = ANY (sv.ids) AND c.enabled AND c.status = 'critical') ck ON true
           WHERE i.status IN ('triggered', 'acknowledged', 'mitigated') AND i.recovered_at IS NULL
             AND ($1::bigint IS NULL OR i.id = $1)
           ORDER BY i.id"#,
        id
    )
    .fetch_all(conn)
    .await
}

/// The (binding, incident) pairs decided already.
pub async fn decided(conn: &mut PgConnection) -> sqlx::Result<HashSet<(i64, i64)>> {
    Ok(sqlx::query!(
        "SELECT f.binding_id, f.incident_id FROM runbook_binding_firings f
         JOIN incidents i ON i.id = f.incident_id
         WHERE i.status IN ('triggered', 'acknowledged', 'mitigated')"
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|r| (r.binding_id, r.incident_id))
    .collect())
}

/// Locks the binding's row; `false` when another process holds it or it
/// is gone.
pub async fn lock_binding(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar!(
        "SELECT id FROM runbook_bindings WHERE id = $1 AND enabled FOR UPDATE SKIP LOCKED",
        id
    )
    .fetch_optional(conn)
    .await?
    .is_some())
}

pub async fn is_decided(
    conn: &mut PgConnection,
    binding: i64,
    incident: i64,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM runbook_binding_firings
                          WHERE binding_id = $1 AND incident_id = $2) AS "e!""#,
        binding,
        incident
    )
    .fetch_one(conn)
    .await
}

/// Why the binding may not start a run now (its hourly limit or its
/// cooldown on `target`), or `None`.
pub async fn limited(
    conn: &mut PgConnection,
    binding: i64,
    target: &str,
    max_per_hour: i32,
    cooldown_s: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<String>> {
    let r = sqlx::query!(
        r#"SELECT count(*) FILTER (WHERE at > $2::timestamptz - interval '1 hour') AS "hour!",
                  max(at) FILTER (WHERE target = $3) AS last_on_target
           FROM runbook_binding_firings WHERE binding_id = $1 AND outcome = 'started'"#,
        binding,
        now,
        target
    )
    .fetch_one(conn)
    .await?;
    if r.hour >= i64::from(max_per_hour) {
        return Ok(Some(format!(
            "limit reached: {} runs in the last hour (at most {max_per_hour}); not started",
            r.hour
        )));
    }
    if let Some(last) = r.last_on_target {
        let since = (now - last).num_seconds();
        if since < i64::from(cooldown_s) {
            return Ok(Some(format!(
                "cooling down: the last run on {target} started {since} s ago (cooldown {cooldown_s} s); not started"
            )));
        }
    }
    Ok(None)
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_firing(
    conn: &mut PgConnection,
    binding: i64,
    incident: i64,
    target: &str,
    outcome: &str,
    run: Option<i64>,
    detail: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO runbook_binding_firings (binding_id, incident_id, target, outcome, run_id, detail,
                                              settled_at)
         VALUES ($1, $2, $3, $4, $5, $6, CASE WHEN $4 = 'started' THEN NULL ELSE now() END)",
        binding,
        incident,
        target,
        outcome,
        run,
        detail
    )
    .execute(conn)
    .await
    .map(drop)
}

/// What each binding did for incident `id`: (binding id, firing).
pub async fn firings_of(
    conn: &mut PgConnection,
    incident: i64,
) -> sqlx::Result<Vec<(i64, BindingFiring)>> {
    Ok(sqlx::query!(
        "SELECT binding_id, outcome, run_id, detail, at FROM runbook_binding_firings
         WHERE incident_id = $1",
        incident
    )
    .fetch_all(conn)
    .await?
    .into_iter()
    .map(|r| {
        (
            r.binding_id,
            BindingFiring {
                outcome: r.outcome,
                run_id: r.run_id,
                detail: r.detail,
                at: r.at,
            },
        )
    })
    .collect())
}

/// A started run that has ended and is not settled yet.
pub struct Ended {
    pub firing_id: i64,
    pub binding_id: i64,
    pub incident_id: i64,
    pub run_id: i64,
    pub runbook: String,
    pub status: String,
    pub error: Option<String>,
}

pub async fn ended_runs(conn: &mut PgConnection) -> sqlx::Result<Vec<Ended>> {
    sqlx::query_as!(
        Ended,
        r#"SELECT f.id AS firing_id, f.binding_id, f.incident_id, r.id AS run_id,
                  b.name AS runbook, r.status, r.error
           FROM runbook_binding_firings f
           JOIN runs r ON r.id = f.run_id
           JOIN runbooks b ON b.id = r.runbook_id
           WHERE f.outcome = 'started' AND f.settled_at IS NULL
             AND r.status NOT IN ('queued', 'running', 'waiting')
           ORDER BY f.id"#
    )
    .fetch_all(conn)
    .await
}

/// Marks a firing settled; `false` when it already was.
pub async fn settle(conn: &mut PgConnection, firing: i64) -> sqlx::Result<bool> {
    Ok(sqlx::query!(
        "UPDATE runbook_binding_firings SET settled_at = now() WHERE id = $1 AND settled_at IS NULL",
        firing
    )
    .execute(conn)
    .await?
    .rows_affected()
        > 0)
}
