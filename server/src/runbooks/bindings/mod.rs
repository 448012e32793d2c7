//! Runbooks bound to alerts (issue 25): a binding names a runbook for the
//! incidents an alert opens, as a **suggestion** (listed on the incident
//! with its parameters filled in, one click to start) or **automatic**
//! (started by the system when the incident is open).
//!
//! **What matches.** Every incident is an alert here: health detection
//! (a service down), host checks, Alertmanager and failed backups all open
//! one. A binding's trigger ([`opsdeck_wire::BindingTrigger`]) matches an
//! open incident when every field it gives matches ([`matches`]): a check
//! that is critical now on one of the incident's services, a check kind
//! critical on a service, the service itself, an Alertmanager `alertname`
//! and labels (from the incident's first `alert` event), a severity at
//! least as high. The target service is the one whose check matched, else
//! the binding's service, else the incident's first root or affected
//! service. Parameters the binding does not fix are filled from it:
//! `service` and `database` parameters with its name, `container`
//! parameters with its first container.
//!
//! **Automatic runs are decided once** per (binding, incident), whatever
//! the number of processes: the task `runbooks.bindings` (every 5 s, every
//! process) decides under the binding's row lock (`FOR UPDATE SKIP
//! LOCKED`) and records the decision in `runbook_binding_firings` (unique
//! per binding and incident) in the transaction that queues the run:
//! * the incident is held by a maintenance period: **suppressed**, nothing
//!   runs;
//! * `max_per_hour` runs of the binding in the last hour, or one on the
//!   same target within `cooldown_s`: **limited**, nothing runs;
//! * the run engine refuses (an active run on the target, a parameter it
//!   cannot fill): **refused**;
//! * else the run is queued as `system:binding:<id>` (actor kind
//!   `system`), linked to the incident: **started**.
//!
//! Each decision is on the incident's timeline (`binding.started`,
//! `binding.suppressed`, …) and in the audit log (`runbook_binding.fire`,
//! as the binding's system actor, naming binding, runbook and run). A
//! started run that ends failed or interrupted puts `binding.failed` on
//! the incident and pages its next escalation level now when nobody has
//! acknowledged it; the firing is then settled (`settled_at`), once.
//! Steps keep their own approval gates: a binding does not bypass the
//! `container.stop.critical` policy or a runbook's approval.
//!
//! Decision (where the issue was silent): a binding fires once per
//! incident, not again when the same open incident goes down again after
//! a recovery; a new incident fires it again within its limits. Bindings
//! are created and deleted by admins, listed by viewers.

pub mod api;
pub mod store;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use opsdeck_wire::{
    BindingMode, BindingWrite, Outcome, ParamKind, RunbookBinding, RunbookDef, SuggestedRunbook,
};
use serde_json::{json, Value};
use sqlx::PgConnection;

use crate::audit::{self, Actor, NewEntry};
use crate::jobs::{Pace, Scope, Task};
use crate::state::AppState;
use crate::timeline;

use super::engine::{self, NewRun, RunError};
use super::error::{RunbookError, RunbookResult};
use store::{AlertRow, BindingRow};

/// How often the task looks at open incidents.
pub const PERIOD: Duration = Duration::from_secs(5);

/// The system actor of a binding's automatic runs.
pub fn actor(binding: i64) -> Actor {
    Actor::system(&format!("system:binding:{binding}"))
}

/// An open incident as bindings see it (see [`store::alerts`]).
#[derive(Debug, Clone)]
pub struct Alert {
    pub incident_id: i64,
    pub severity: i16,
    /// Root and affected services: (id, name).
    pub services: Vec<(i64, String)>,
    /// Critical checks of those services: (check id, kind, service id).
    pub critical: Vec<(i64, String, i64)>,
    /// The labels of the Alertmanager alert that opened it.
    pub labels: BTreeMap<String, String>,
}

impl Alert {
    fn from_row(r: AlertRow) -> Alert {
        Alert {
            incident_id: r.incident_id,
            severity: r.severity,
            services: r.service_ids.into_iter().zip(r.service_names).collect(),
            critical: r
                .check_ids
                .into_iter()
                .zip(r.check_kinds)
                .zip(r.check_services)
                .map(|((id, kind), service)| (id, kind, service))
                .collect(),
            labels: serde_json::from_value(r.labels).unwrap_or_default(),
        }
    }
}

/// Why `b` matches `a` and the target service, or `None` (see the module
/// doc).
pub fn matches(b: &BindingRow, a: &Alert) -> Option<(String, Option<(i64, String)>)> {
    let mut why = Vec::new();
    let mut target: Option<i64> = None;
    if let Some(sid) = b.service_id {
        if !a.services.iter().any(|(id, _)| *id == sid)
            && !a.critical.iter().any(|(_, _, s)| *s == sid)
        {
            return None;
        }
        target = Some(sid);
        why.push(format!(
            "on service {}",
            b.service.as_deref().unwrap_or("?")
        ));
    }
    if let Some(cid) = b.check_id {
        let (_, kind, sid) = a.critical.iter().find(|(id, _, _)| *id == cid)?;
        target = Some(*sid);
        why.push(format!("check #{cid} ({kind}) is critical"));
    }
    if let Some(kind) = &b.check_kind {
        let (id, _, sid) = a
            .critical
            .iter()
            .find(|(_, k, s)| k == kind && b.service_id.is_none_or(|want| want == *s))?;
        target = target.or(Some(*sid));
        why.push(format!("a {kind} check (#{id}) is critical"));
    }
    if let Some(name) = &b.alert_name {
        if a.labels.get("alertname") != Some(name) {
            return None;
        }
        why.push(format!("Alertmanager alert {name}"));
    }
    let labels: BTreeMap<String, String> =
        serde_json::from_value(b.alert_labels.clone()).unwrap_or_default();
    for (k, v) in &labels {
        if a.labels.get(k) != Some(v) {
            return None;
        }
    }
    if !labels.is_empty() {
        let shown: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        why.push(format!("labels {}", shown.join(", ")));
    }
    if let Some(sev) = b.severity {
        if a.severity > sev {
            return None;
        }
        why.push(format!("severity P{} or worse", sev));
    }
    if why.is_empty() {
        return None; // a binding without a trigger matches nothing
    }
    let target = target.or_else(|| a.services.first().map(|(id, _)| *id));
    let named = target.map(|id| {
        let name = a
            .services
            .iter()
            .find(|(s, _)| *s == id)
            .map(|(_, n)| n.clone())
            .or_else(|| b.service.clone().filter(|_| b.service_id == Some(id)))
            .unwrap_or_default();
        (id, name)
    });
    Some((why.join("; "), named))
}

/// The parameters a run of `def` starts with: the binding's fixed ones,
/// then `service`/`database` parameters ← the target's name and
/// `container` parameters ← its first container.
pub fn fill_params(
    state: &AppState,
    def: &RunbookDef,
    fixed: &BTreeMap<String, Value>,
    target: Option<&str>,
) -> BTreeMap<String, Value> {
    let mut params = fixed.clone();
    let Some(service) = target.filter(|s| !s.is_empty()) else {
        return params;
    };
    for p in &def.params {
        if params.contains_key(&p.name) {
            continue;
        }
        let value = match p.kind {
            ParamKind::Service | ParamKind::Database => Some(json!(service)),
            ParamKind::Container => first_container(state, service).map(|c| json!(c)),
            _ => None,
        };
        if let Some(v) = value {
            params.insert(p.name.clone(), v);
        }
    }
    params
}

/// The first container of `service` the engines report, by name.
fn first_container(state: &AppState, service: &str) -> Option<String> {
    let mut names: Vec<String> = state
        .engines
        .engines()
        .iter()
        .flat_map(|e| e.containers())
        .filter(|c| c.compose_service.as_deref() == Some(service) || c.name == service)
        .map(|c| c.name)
        .collect();
    names.sort();
    names.into_iter().next()
}

// ------------------------------------------------------------ bindings CRUD

/// Checks a binding at the boundary; returns the runbook's id and the
/// service's id.
async fn check(conn: &mut PgConnection, w: &BindingWrite) -> RunbookResult<(i64, Option<i64>)> {
    let invalid = |m: &str| Err(RunbookError::Invalid(m.to_owned()));
    let t = &w.trigger;
    let given = t.check_id.is_some()
        || t.check_kind.is_some()
        || t.service.is_some()
        || t.alert_name.is_some()
        || !t.alert_labels.is_empty()
        || t.severity.is_some();
    if !given {
        return invalid("trigger: give at least one of check_id, check_kind, service, alert_name, alert_labels, severity");
    }
    if let Some(k) = &t.check_kind {
        if k.is_empty() || k.len() > 32 || !k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
            return invalid("trigger.check_kind: a check kind such as container, http or postgres");
        }
    }
    if let Some(n) = &t.alert_name {
        if n.trim().is_empty() || n.len() > 200 {
            return invalid("trigger.alert_name: 1 to 200 characters");
        }
    }
    if t.alert_labels.len() > 20
        || t.alert_labels
            .iter()
            .any(|(k, v)| k.is_empty() || k.len() > 100 || v.len() > 200)
    {
        return invalid(
            "trigger.alert_labels: at most 20 labels, names 1–100 and values up to 200 characters",
        );
    }
    if t.severity.is_some_and(|s| !(1..=4).contains(&s)) {
        return invalid("trigger.severity: 1 (P1) to 4 (P4)");
    }
    if !(1..=60).contains(&w.max_per_hour) {
        return invalid("max_per_hour: 1 to 60");
    }
    if w.cooldown_s > 86_400 {
        return invalid("cooldown_s: 0 to 86400");
    }
    if let Some(id) = t.check_id {
        if !store::check_exists(conn, id).await? {
            return invalid(&format!("trigger.check_id: no check {id}"));
        }
    }
    let service_id = match &t.service {
        Some(name) => Some(store::service_id(conn, name).await?.ok_or_else(|| {
            RunbookError::Invalid(format!("trigger.service: no service \"{name}\""))
        })?),
        None => None,
    };
    let (runbook_id, def) = store::runbook_by_name(conn, &w.runbook)
        .await?
        .ok_or_else(|| RunbookError::Invalid(format!("runbook: no runbook \"{}\"", w.runbook)))?;
    let def: RunbookDef = serde_json::from_value(def).map_err(RunbookError::stored)?;
    for name in w.params.keys() {
        if !def.params.iter().any(|p| &p.name == name) {
            return invalid(&format!(
                "params.{name}: runbook {} has no such parameter",
                w.runbook
            ));
        }
    }
    Ok((runbook_id, service_id))
}

/// Stores a new binding (checked); the caller audits and commits.
pub async fn create(
    conn: &mut PgConnection,
    w: &BindingWrite,
    by: &str,
) -> RunbookResult<RunbookBinding> {
    let (runbook_id, service_id) = check(conn, w).await?;
    let id = store::insert(conn, runbook_id, service_id, w, by).await?;
    get(conn, id).await
}

pub async fn get(conn: &mut PgConnection, id: i64) -> RunbookResult<RunbookBinding> {
    store::all(conn)
        .await?
        .into_iter()
        .find(|b| b.id == id)
        .map(BindingRow::into_wire)
        .ok_or_else(|| RunbookError::NotFound(format!("runbook binding {id}")))
}

pub async fn list(conn: &mut PgConnection) -> RunbookResult<Vec<RunbookBinding>> {
    Ok(store::all(conn)
        .await?
        .into_iter()
        .map(BindingRow::into_wire)
        .collect())
}

/// Deletes a binding (its firings go with it; its runs stay). Returns what
/// the audit entry says.
pub async fn delete(conn: &mut PgConnection, id: i64) -> RunbookResult<Value> {
    let b = get(conn, id).await?;
    store::delete(conn, id).await?;
    Ok(json!({"runbook": b.def.runbook, "mode": b.def.mode.as_str()}))
}

// -------------------------------------------------------------- suggestions

/// Every enabled binding that matches open incident `id`, suggested and
/// automatic, with the parameters it (would) start with.
pub async fn for_incident(state: &AppState, id: i64) -> RunbookResult<Vec<SuggestedRunbook>> {
    let mut conn = state.pool.acquire().await?;
    if !store::incident_exists(&mut conn, id).await? {
        return Err(RunbookError::NotFound(format!("incident {id}")));
    }
    let Some(alert) = store::alerts(&mut conn, Some(id))
        .await?
        .into_iter()
        .next()
        .map(Alert::from_row)
    else {
        return Ok(Vec::new()); // closed: nothing to suggest
    };
    let firings = store::firings_of(&mut conn, id).await?;
    let mut out = Vec::new();
    for b in store::all(&mut conn)
        .await?
        .into_iter()
        .filter(|b| b.enabled)
    {
        let Some((because, target)) = matches(&b, &alert) else {
            continue;
        };
        let def: RunbookDef = match serde_json::from_value(b.definition.clone()) {
            Ok(d) => d,
            Err(_) => continue,
        };
        let fixed: BTreeMap<String, Value> =
            serde_json::from_value(b.params.clone()).unwrap_or_default();
        let params = fill_params(state, &def, &fixed, target.as_ref().map(|t| t.1.as_str()));
        out.push(SuggestedRunbook {
            binding_id: b.id,
            mode: BindingMode::parse(&b.mode).unwrap_or(BindingMode::Suggested),
            runbook_id: b.runbook_id,
            runbook: b.runbook.clone(),
            title: def.title.clone(),
            params,
            because,
            fired: firings.iter().find(|f| f.0 == b.id).map(|f| f.1.clone()),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------- automatic runs

/// The registry task `runbooks.bindings` (every process, every 5 s; each
/// decision exactly once, see the module doc).
pub fn task(state: AppState) -> Task {
    Task::every(
        "runbooks.bindings",
        PERIOD,
        Scope::EveryProcess,
        state,
        |state| async move {
            tick(&state, Utc::now()).await?;
            Ok(Pace::Normal)
        },
    )
}

/// One pass: decide every (automatic binding, open incident) pair not
/// decided yet, then settle the started runs that ended.
pub async fn tick(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut conn = state.pool.acquire().await?;
    let bindings: Vec<BindingRow> = store::all(&mut conn)
        .await?
        .into_iter()
        .filter(|b| b.enabled && b.mode == BindingMode::Automatic.as_str())
        .collect();
    if !bindings.is_empty() {
        let alerts: Vec<Alert> = store::alerts(&mut conn, None)
            .await?
            .into_iter()
            .map(Alert::from_row)
            .collect();
        let decided = store::decided(&mut conn).await?;
        drop(conn);
        for a in &alerts {
            for b in &bindings {
                if decided.contains(&(b.id, a.incident_id)) {
                    continue;
                }
                if let Some((because, target)) = matches(b, a) {
                    decide(state, b, a, &because, target, now).await?;
                }
            }
        }
    } else {
        drop(conn);
    }
    settle(state, now).await
}

/// Decides one (binding, incident) pair in one transaction (see the module
/// doc); a pair another process holds or decided is left alone.
async fn decide(
    state: &AppState,
    b: &BindingRow,
    a: &Alert,
    because: &str,
    target: Option<(i64, String)>,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let mut tx = state.pool.begin().await?;
    if !store::lock_binding(&mut tx, b.id).await?
        || store::is_decided(&mut tx, b.id, a.incident_id).await?
    {
        return Ok(());
    }
    let who = actor(b.id);
    let target_name = target.as_ref().map(|t| t.1.clone()).unwrap_or_default();
    let target_key = if target_name.is_empty() {
        "*".to_owned()
    } else {
        target_name.clone()
    };
    let (outcome, run, detail) = if let Some(period) =
        crate::incidents::hold::holding_incident(&mut tx, a.incident_id).await?
    {
        (
            "suppressed",
            None,
            format!("under maintenance (period #{period}): not started"),
        )
    } else if let Some(why) = store::limited(
        &mut tx,
        b.id,
        &target_key,
        b.max_per_hour,
        b.cooldown_s,
        now,
    )
    .await?
    {
        ("limited", None, why)
    } else {
        let def: RunbookDef = serde_json::from_value(b.definition.clone())?;
        let fixed: BTreeMap<String, Value> = serde_json::from_value(b.params.clone())?;
        let params = fill_params(state, &def, &fixed, Some(&target_name));
        let queued = engine::enqueue(
            state,
            &mut tx,
            NewRun {
                runbook_id: b.runbook_id,
                params,
                reason: format!("binding #{}: {because}", b.id),
                incident: Some(a.incident_id.to_string()),
                requested_by: who.clone(),
                requested_by_user: None,
                schedule_id: None,
                parent: None,
            },
        )
        .await;
        match queued {
            Ok(run) => (
                "started",
                Some(run),
                format!("run #{run} started: {because}"),
            ),
            Err(RunError::Database(e)) => return Err(e.into()),
            Err(e) => ("refused", None, format!("the run engine refused: {e}")),
        }
    };
    store::insert_firing(
        &mut tx,
        b.id,
        a.incident_id,
        &target_key,
        outcome,
        run,
        &detail,
    )
    .await?;
    let message = format!("Runbook {} (binding #{}): {detail}", b.runbook, b.id);
    let data = json!({"binding_id": b.id, "runbook": b.runbook, "run_id": run,
                      "outcome": outcome, "target": target_name});
    timeline::append(
        &mut tx,
        "incident",
        a.incident_id,
        &format!("binding.{outcome}"),
        Some(&who),
        None,
        &message,
        data.clone(),
    )
    .await?;
    crate::incidents::touch(&mut tx, a.incident_id).await?;
    audit::record(
        &mut tx,
        NewEntry {
            actor: who,
            action: "runbook_binding.fire".into(),
            target: Some(format!("incident:{}", a.incident_id)),
            params: data,
            source: None,
            outcome: if outcome == "started" {
                Outcome::Success
            } else {
                Outcome::Denied
            },
            detail: Some(detail),
        },
    )
    .await?;
    tx.commit().await?;
    if let Some(run) = run {
        state.runs().changed(run).await;
    }
    tracing::info!(
        binding = b.id,
        incident = a.incident_id,
        outcome,
        "runbook binding decided"
    );
    Ok(())
}

/// Started runs that ended: a failed or interrupted one goes on the
/// incident's timeline and pages its next level now when unacknowledged.
async fn settle(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut conn = state.pool.acquire().await?;
    let ended = store::ended_runs(&mut conn).await?;
    drop(conn);
    let mut wake = false;
    for e in ended {
        let mut tx = state.pool.begin().await?;
        if !store::settle(&mut tx, e.firing_id).await? {
            continue; // another process settled it
        }
        if matches!(e.status.as_str(), "failed" | "interrupted") {
            let who = actor(e.binding_id);
            let message = format!(
                "Runbook {} (binding #{}) run #{} {}{}; escalating",
                e.runbook,
                e.binding_id,
                e.run_id,
                e.status,
                e.error
                    .as_deref()
                    .map(|x| format!(": {x}"))
                    .unwrap_or_default()
            );
            let data = json!({"binding_id": e.binding_id, "run_id": e.run_id, "status": e.status});
            timeline::append(
                &mut tx,
                "incident",
                e.incident_id,
                "binding.failed",
                Some(&who),
                None,
                &message,
                data.clone(),
            )
            .await?;
            wake |= crate::incidents::escalation::escalate_now(&mut tx, e.incident_id, now).await?;
            crate::incidents::touch(&mut tx, e.incident_id).await?;
            audit::record(
                &mut tx,
                NewEntry {
                    actor: who,
                    action: "runbook_binding.escalate".into(),
                    target: Some(format!("incident:{}", e.incident_id)),
                    params: data,
                    source: None,
                    outcome: Outcome::Success,
                    detail: Some(message),
                },
            )
            .await?;
        }
        tx.commit().await?;
    }
    if wake {
        crate::incidents::escalation::wake();
    }
    Ok(())
}
