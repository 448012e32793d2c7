//! Automatic incidents: from the status board (dependency-aware health) and
//! from Prometheus Alertmanager.
//!
//! **Health.** Only the health lease holder ([`HealthHub::is_leader`]) acts,
//! on every board change and every 10 s:
//! * a **down** service (a root cause: its own critical check fails and no
//!   dependency explains it) opens — or finds — the incident keyed
//!   `health:<service id>`; severity from its tier (critical P1, application
//!   P2, support P3); the first event names the failing checks and values;
//! * an **impacted** service is attached to its root causes' incidents as a
//!   `symptom` (a timeline event, never a new incident);
//! * an engine's **host** whose host checks settled critical opens — or
//!   finds — the incident keyed `host:<engine>` ("host db01: disk / 93.0 %
//!   used"), the services on that host listed as symptoms; it is marked
//!   recovered like a service once its checks are ok or warning again;
//! * a root service that is operational or degraded again marks its open
//!   incident **recovered**: with `on_recovery = propose` (default) the
//!   timeline says so and the page offers "resolve"; with `resolve` it is
//!   resolved by the `health` actor. Going down again clears the mark.
//!
//! Every write is idempotent (dedup key, `ON CONFLICT`, `WHERE recovered_at
//! IS NULL`), so a lease handover that makes two processes act once each
//! changes nothing twice.
//!
//! **Alertmanager.** Each alert is keyed by its fingerprint
//! (`alertmanager:<fingerprint>`): firing opens or finds the incident,
//! resolved marks it recovered (same policy as health).
//!
//! [`HealthHub::is_leader`]: crate::checks::HealthHub::is_leader

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use opsdeck_wire::{
    AlertmanagerAlert, AlertmanagerResult, CheckStatus, HostStatus, ServiceHealth, ServiceStatus,
    Severity,
};
use serde_json::json;
use sqlx::PgConnection;

use crate::audit::Actor;
use crate::checks::engine::Push;
use crate::jobs::{Pace, Scope, Task, Wake};
use crate::state::AppState;
use crate::timeline;

use super::model::{self, Act, Opening, PolicyChoice};
use super::touch;

/// The detector for the jobs registry (`detection`, every process, acting
/// only where the health lease is held): every 10 s and on every board
/// change.
pub fn task(state: AppState) -> Task {
    let changes = BoardChanges(state.health().subscribe());
    Task::every(
        "detection",
        Duration::from_secs(10),
        Scope::EveryProcess,
        state,
        |state| async move {
            if state.health().is_leader() {
                let (_, statuses) = state.health().statuses();
                reconcile(&state, &statuses, Utc::now()).await?;
            }
            Ok(Pace::Normal)
        },
    )
    .wake(changes)
    .delay_first()
}

/// Wakes the detector on a change of the board (a refresh is no change).
struct BoardChanges(tokio::sync::broadcast::Receiver<Push>);

impl Wake for BoardChanges {
    fn wait(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            loop {
                match self.0.recv().await {
                    Ok(Push::Change(_))
                    | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => return,
                    Ok(Push::Refresh) => continue,
                    Err(_) => std::future::pending::<()>().await,
                }
            }
        })
    }
}

struct Policy {
    auto_open: bool,
    resolve_on_recovery: bool,
}

async fn policy(conn: &mut PgConnection) -> sqlx::Result<Policy> {
    let row = sqlx::query!("SELECT auto_open, on_recovery FROM incident_settings")
        .fetch_one(conn)
        .await?;
    let (auto_open, on_recovery) = (row.auto_open, row.on_recovery);
    Ok(Policy {
        auto_open,
        resolve_on_recovery: on_recovery == "resolve",
    })
}

/// Brings incidents in line with the board (see the module doc).
pub async fn reconcile(
    state: &AppState,
    statuses: &[ServiceStatus],
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let actor = Actor::system("health");
    let mut conn = state.pool.acquire().await?;
    let pol = policy(&mut conn).await?;
    drop(conn);
    let by_name: HashMap<&str, &ServiceStatus> =
        statuses.iter().map(|s| (s.name.as_str(), s)).collect();
    // Root causes under maintenance: recorded as suppressed, no incident.
    for s in statuses.iter() {
        let Some(m) = s.maintenance.as_ref() else {
            continue;
        };
        if m.observed != ServiceHealth::Down {
            continue;
        }
        let mut conn = state.pool.acquire().await?;
        super::hold::suppress(
            &mut conn,
            m.period_id,
            "health",
            &format!("service:{}", s.name),
            &format!("{}; no incident opened", down_text(s)),
        )
        .await?;
    }
    // Root causes.
    for s in statuses.iter().filter(|s| s.health == ServiceHealth::Down) {
        let again = (
            format!("{} is down again: {}", s.name, s.problems.join("; ")),
            json!({ "problems": s.problems }),
        );
        open_or_note(
            state,
            &pol,
            &actor,
            format!("health:{}", s.service_id),
            again,
            || Opening {
                title: format!("{} is down", s.name),
                severity: Severity::of_tier(s.tier),
                source: "health",
                dedup_key: None,
                summary: String::new(),
                services: vec![(s.service_id, "root")],
                commander_id: None,
                policy: PolicyChoice::Default,
                actor: actor.clone(),
                first_event: (
                    "detected".into(),
                    format!("Detected by health checks: {}", down_text(s)),
                    json!({ "service_id": s.service_id, "problems": s.problems, "since": s.since }),
                ),
                now,
            },
        )
        .await?;
    }
    // Hosts of engines.
    let hosts = state.health().hosts();
    critical_hosts(state, &hosts, &by_name, &pol, &actor, now).await?;
    // Symptoms attach to their root causes' incidents.
    for s in statuses
        .iter()
        .filter(|s| s.health == ServiceHealth::Impacted)
    {
        for root in &s.impacted_by {
            let Some(r) = by_name.get(root.as_str()) else {
                continue;
            };
            let mut tx = state.pool.begin().await?;
            let inserted: Option<i64> = sqlx::query_scalar!(
                "INSERT INTO incident_services (incident_id, service_id, role)
                 SELECT id, $2, 'symptom' FROM incidents
                 WHERE dedup_key = $1 AND status IN ('triggered', 'acknowledged', 'mitigated')
                 ON CONFLICT DO NOTHING RETURNING incident_id",
                format!("health:{}", r.service_id),
                s.service_id
            )
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(id) = inserted {
                let detail = if s.problems.is_empty() {
                    String::new()
                } else {
                    format!(" — {}", s.problems.join("; "))
                };
                timeline::append(
                    &mut tx,
                    "incident",
                    id,
                    "symptom",
                    Some(&actor),
                    None,
                    &format!(
                        "{} is impacted by {root} (symptom, not a new incident){detail}",
                        s.name
                    ),
                    json!({ "service_id": s.service_id, "problems": s.problems }),
                )
                .await?;
                touch(&mut tx, id).await?;
            }
            tx.commit().await?;
        }
    }
    // Recovery of root causes.
    let open: Vec<(i64, String)> = sqlx::query!(
        r#"SELECT id, dedup_key AS "dedup_key!" FROM incidents
         WHERE source = 'health' AND recovered_at IS NULL
           AND status IN ('triggered', 'acknowledged', 'mitigated')"#
    )
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.dedup_key))
    .collect();
    let by_id: HashMap<i64, &ServiceStatus> = statuses.iter().map(|s| (s.service_id, s)).collect();
    for (id, key) in open {
        if let Some(engine) = key.strip_prefix("host:") {
            let host = hosts.iter().find(|h| h.engine.as_deref() == Some(engine));
            let Some(h) =
                host.filter(|h| matches!(h.status, CheckStatus::Ok | CheckStatus::Warning))
            else {
                continue;
            };
            let mut tx = state.pool.begin().await?;
            let message = format!("Host checks recovered: {} is {}", h.name, h.status.as_str());
            recovered(&mut tx, id, &pol, &actor, &message).await?;
            tx.commit().await?;
            continue;
        }
        let Some(sid) = key
            .strip_prefix("health:")
            .and_then(|x| x.parse::<i64>().ok())
        else {
            continue;
        };
        let Some(s) = by_id.get(&sid) else { continue };
        // Under maintenance, what the checks say decides.
        let health = s.maintenance.as_ref().map_or(s.health, |m| m.observed);
        if !matches!(health, ServiceHealth::Operational | ServiceHealth::Degraded) {
            continue;
        }
        let mut tx = state.pool.begin().await?;
        recovered(
            &mut tx,
            id,
            &pol,
            &actor,
            &format!("Health checks recovered: {} is {}", s.name, health.as_str()),
        )
        .await?;
        tx.commit().await?;
    }
    Ok(())
}

/// The open incident with `key`: its id and when it was marked recovered.
async fn open_incident(
    conn: &mut PgConnection,
    key: &str,
) -> sqlx::Result<Option<(i64, Option<DateTime<Utc>>)>> {
    Ok(sqlx::query!(
        "SELECT id, recovered_at FROM incidents WHERE dedup_key = $1
               AND status IN ('triggered', 'acknowledged', 'mitigated')",
        key
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.id, r.recovered_at)))
}

/// Down again: the recovered mark goes.
async fn clear_recovered(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query!("UPDATE incidents SET recovered_at = NULL WHERE id = $1", id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Critical hosts (an engine's host whose host checks settled critical)
/// open — or find — the incident keyed `host:<engine>`, listing the
/// services on that host as symptoms; severity from the most critical tier
/// among them (P2 without services). Down again after a recovery clears
/// the mark. Recovery is in [`reconcile`]'s last loop.
async fn critical_hosts(
    state: &AppState,
    hosts: &[HostStatus],
    services: &HashMap<&str, &ServiceStatus>,
    pol: &Policy,
    actor: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    for h in hosts.iter().filter(|h| h.status == CheckStatus::Critical) {
        let Some(engine) = h.engine.as_deref() else {
            continue;
        };
        let key = format!("host:{engine}");
        let problems = h.problems.join("; ");
        let on_host: Vec<&ServiceStatus> = h
            .services
            .iter()
            .filter_map(|n| services.get(n.as_str()).copied())
            .collect();
        let again = (
            format!("{} is critical again: {problems}", h.name),
            json!({ "engine": engine, "problems": h.problems }),
        );
        open_or_note(state, pol, actor, key, again, || {
            let first = h.problems.first().map_or("critical", String::as_str);
            let names = if h.services.is_empty() {
                "no service is known on it".to_owned()
            } else {
                format!("services on it: {}", h.services.join(", "))
            };
            Opening {
                title: format!("{}: {first}", h.name),
                severity: on_host
                    .iter()
                    .map(|s| Severity::of_tier(s.tier))
                    .min()
                    .unwrap_or(Severity::P2),
                source: "health",
                dedup_key: None,
                summary: String::new(),
                services: on_host.iter().map(|s| (s.service_id, "symptom")).collect(),
                commander_id: None,
                policy: PolicyChoice::Default,
                actor: actor.clone(),
                first_event: (
                    "detected".into(),
                    format!(
                        "Detected by host checks: {} is critical — {problems}; {names}",
                        h.name
                    ),
                    json!({ "engine": engine, "problems": h.problems, "services": h.services }),
                ),
                now,
            }
        })
        .await?;
    }
    Ok(())
}

/// "api is down (critical tier) — <problems>".
fn down_text(s: &ServiceStatus) -> String {
    let problems = if s.problems.is_empty() {
        "critical".to_owned()
    } else {
        s.problems.join("; ")
    };
    format!("{} is down ({} tier) — {problems}", s.name, s.tier.as_str())
}

/// One detected problem under dedup `key`: an open incident already
/// marked recovered gets `again` (message, data) on its timeline and is
/// active again; an open one is left alone; with none open, `opening`
/// opens one (when the policy opens incidents by itself) and escalation is
/// woken after the commit.
async fn open_or_note(
    state: &AppState,
    pol: &Policy,
    actor: &Actor,
    key: String,
    again: (String, serde_json::Value),
    opening: impl FnOnce() -> Opening,
) -> anyhow::Result<()> {
    let mut opened = false;
    let mut tx = state.pool.begin().await?;
    match open_incident(&mut tx, &key).await? {
        Some((id, Some(_))) => {
            clear_recovered(&mut tx, id).await?;
            let (message, data) = again;
            timeline::append(
                &mut tx,
                "incident",
                id,
                "detected",
                Some(actor),
                None,
                &message,
                data,
            )
            .await?;
            touch(&mut tx, id).await?;
        }
        Some(_) => {}
        None if pol.auto_open => {
            opened = true;
            let opening = Opening {
                dedup_key: Some(key),
                ..opening()
            };
            model::open(&mut tx, opening).await?;
        }
        None => {}
    }
    tx.commit().await?;
    if opened {
        super::escalation::wake();
    }
    Ok(())
}

/// Marks an open incident recovered (once), or resolves it by policy.
async fn recovered(
    conn: &mut PgConnection,
    id: i64,
    pol: &Policy,
    actor: &Actor,
    message: &str,
) -> anyhow::Result<()> {
    let marked: Option<i64> = sqlx::query_scalar!(
        "UPDATE incidents SET recovered_at = now() WHERE id = $1 AND recovered_at IS NULL
           AND status IN ('triggered', 'acknowledged', 'mitigated') RETURNING id",
        id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if marked.is_none() {
        return Ok(());
    }
    if pol.resolve_on_recovery {
        model::apply(conn, id, Act::Resolve, actor, message, None)
            .await
            .map_err(|e| anyhow::anyhow!("resolving incident {id}: {e}"))?;
    } else {
        timeline::append(
            conn,
            "incident",
            id,
            "recovered",
            Some(actor),
            None,
            &format!("{message}; resolve the incident when the cause is understood"),
            json!({}),
        )
        .await?;
        touch(conn, id).await?;
    }
    Ok(())
}

/// Alertmanager's `severity` (or `priority`) label → severity.
pub fn alert_severity(labels: &BTreeMap<String, String>) -> Severity {
    let v = labels
        .get("priority")
        .or_else(|| labels.get("severity"))
        .map(|s| s.to_ascii_lowercase())
        .unwrap_or_default();
    match v.as_str() {
        "p1" | "critical" | "page" | "emergency" => Severity::P1,
        "p2" | "high" | "error" | "major" => Severity::P2,
        "p4" | "info" | "low" | "none" => Severity::P4,
        _ => Severity::P3,
    }
}

/// Handles one Alertmanager alert in the caller's transaction. Returns the
/// incident id and whether it was opened by this alert.
pub async fn alert(
    conn: &mut PgConnection,
    a: &AlertmanagerAlert,
    actor: &Actor,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<(i64, bool)>> {
    let key = format!("alertmanager:{}", a.fingerprint);
    let name = a
        .labels
        .get("alertname")
        .cloned()
        .unwrap_or_else(|| "alert".into());
    if a.status == "resolved" {
        let id: Option<i64> = sqlx::query_scalar!(
            "SELECT id FROM incidents WHERE dedup_key = $1
               AND status IN ('triggered', 'acknowledged', 'mitigated')",
            &key
        )
        .fetch_optional(&mut *conn)
        .await?;
        let Some(id) = id else { return Ok(None) };
        let pol = policy(conn).await?;
        recovered(
            conn,
            id,
            &pol,
            actor,
            &format!("Alertmanager: {name} resolved"),
        )
        .await?;
        return Ok(Some((id, false)));
    }
    // Services named by the usual labels.
    let mut services = Vec::new();
    for label in ["service", "job", "container", "compose_service"] {
        if let Some(v) = a.labels.get(label) {
            let id: Option<i64> = sqlx::query_scalar!("SELECT id FROM services WHERE name = $1", v)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(id) = id {
                if !services.iter().any(|(s, _)| *s == id) {
                    services.push((id, "affected"));
                }
            }
        }
    }
    let title: String = a
        .annotations
        .get("summary")
        .cloned()
        .unwrap_or_else(|| name.clone())
        .chars()
        .take(200)
        .collect();
    let description = a
        .annotations
        .get("description")
        .cloned()
        .unwrap_or_default();
    let pol = policy(conn).await?;
    if !pol.auto_open {
        return Ok(None);
    }
    // Alerts about services all under maintenance open nothing (unless
    // their incident is open already).
    let ids: Vec<i64> = services.iter().map(|(id, _)| *id).collect();
    if let Some(period) = super::hold::covering(conn, &ids).await? {
        let open: bool = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM incidents WHERE dedup_key = $1
               AND status IN ('triggered', 'acknowledged', 'mitigated')) AS "exists!""#,
            &key
        )
        .fetch_one(&mut *conn)
        .await?;
        if !open {
            super::hold::suppress(
                conn,
                period,
                "alertmanager",
                &a.fingerprint,
                &format!("Alertmanager: {name} firing; no incident opened"),
            )
            .await?;
            return Ok(None);
        }
    }
    let (id, created) = model::open(
        conn,
        Opening {
            title: if title.trim().is_empty() {
                "Alert".into()
            } else {
                title
            },
            severity: alert_severity(&a.labels),
            source: "alertmanager",
            dedup_key: Some(key),
            summary: description.clone(),
            services,
            commander_id: None,
            policy: PolicyChoice::Default,
            actor: actor.clone(),
            first_event: (
                "alert".into(),
                format!(
                    "Alertmanager: {name} firing{}{}",
                    a.starts_at
                        .map(|t| format!(" since {}", t.format("%Y-%m-%d %H:%M:%S UTC")))
                        .unwrap_or_default(),
                    if description.is_empty() {
                        String::new()
                    } else {
                        format!(" — {description}")
                    }
                ),
                json!({ "labels": a.labels, "fingerprint": a.fingerprint,
                        "generator_url": a.generator_url }),
            ),
            now,
        },
    )
    .await?;
    if !created {
        let cleared: Option<i64> = sqlx::query_scalar!(
            "UPDATE incidents SET recovered_at = NULL WHERE id = $1 AND recovered_at IS NOT NULL
             RETURNING id",
            id
        )
        .fetch_optional(&mut *conn)
        .await?;
        if cleared.is_some() {
            timeline::append(
                conn,
                "incident",
                id,
                "alert",
                Some(actor),
                None,
                &format!("Alertmanager: {name} firing again"),
                json!({ "fingerprint": a.fingerprint }),
            )
            .await?;
            touch(conn, id).await?;
        }
    }
    Ok(Some((id, created)))
}

/// The result of a webhook call.
pub fn result(outcomes: &[(i64, bool)]) -> AlertmanagerResult {
    let mut r = AlertmanagerResult {
        opened: Vec::new(),
        updated: Vec::new(),
    };
    for &(id, created) in outcomes {
        let list = if created {
            &mut r.opened
        } else {
            &mut r.updated
        };
        if !list.contains(&id) {
            list.push(id);
        }
    }
    r
}
