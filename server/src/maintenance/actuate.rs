//! The `maintenance` runbook step: applies (`enable`) or undoes (`disable`) a
//! period, and the per-stack actuators it drives.
//!
//! Both operations are idempotent, so a resumed or repeated run is safe:
//! enabling a period that is already active, or disabling one that has
//! ended, changes nothing. A stack is changed under the advisory lock
//! `(hashtext('opsdeck.maintenance'), hashtext(stack))`, held by a
//! transaction of its own for the whole change (a crash or a step timeout
//! drops the connection and releases it).
//!
//! **Proxy mode.** For every running container of the proxy service: read
//! what is at the page and snippet paths, store it in the actuator's
//! `saved` with state `enabling` (committed before the first write), place
//! the rendered page and the snippet, run the reload argv. Any error
//! restores what was saved in every container, reloads, sets the state back
//! to `off` and fails the step: the period is `failed`, nothing half-done
//! remains. Disabling restores the saved files byte for byte (removing
//! files that were absent) and reloads. A state left at `enabling` or
//! `disabling` by a crash is restored first by the next enable or disable.
//!
//! **Runbook mode.** Runs the stack's enable runbook and waits for it; if
//! it does not succeed, the disable runbook runs as the rollback. Disabling
//! runs the disable runbook.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::Utc;
use opsdeck_wire::{
    ActuationMode, ActuatorWrite, Outcome, PeriodStatus, ProxyActuation, RunbookActuation,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, Row};

use super::proxy::{self, Saved};
use super::{page, touch};
use crate::audit::{self, Actor, NewEntry};
use crate::runbooks::engine::{enqueue, NewRun};
use crate::runbooks::step::{StepCx, StepKind, StepResult};
use crate::state::AppState;
use crate::timeline;

/// The `maintenance` step kind, registered with the runbook engine at
/// start-up.
pub struct MaintenanceStep;

impl StepKind for MaintenanceStep {
    fn kind(&self) -> &'static str {
        "maintenance"
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepCx<'a>,
        action: &'a opsdeck_wire::StepAction,
    ) -> futures::future::BoxFuture<'a, StepResult> {
        Box::pin(async move {
            match action {
                opsdeck_wire::StepAction::Maintenance { op, period } => step(cx, op, period).await,
                other => Err(format!("not a maintenance step: {}", other.kind())),
            }
        })
    }
}

/// The step: `op` is `enable` or `disable`, `period` the rendered id.
pub async fn step(cx: &StepCx<'_>, op: &str, period: &str) -> StepResult {
    let id: i64 = period
        .trim()
        .parse()
        .map_err(|_| format!("period: \"{}\" is not a period id", period.escape_default()))?;
    match op {
        "enable" => enable(cx, id).await,
        "disable" => disable(cx, id).await,
        other => Err(format!(
            "op \"{}\": enable or disable",
            other.escape_default()
        )),
    }
}

struct PeriodRow {
    status: PeriodStatus,
    stack: Option<String>,
    actuate: bool,
    ends_at: chrono::DateTime<Utc>,
    started_by_id: Option<i64>,
}

async fn period_row(state: &AppState, id: i64) -> Result<PeriodRow, String> {
    let r = sqlx::query(
        "SELECT status, stack, actuate, ends_at, started_by_id FROM maintenance_periods WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("maintenance period {id} does not exist"))?;
    Ok(PeriodRow {
        status: PeriodStatus::parse(r.get("status")).unwrap_or(PeriodStatus::Failed),
        stack: r.get("stack"),
        actuate: r.get("actuate"),
        ends_at: r.get("ends_at"),
        started_by_id: r.get("started_by_id"),
    })
}

/// Moves a period from one of `from` to `to` with a timeline line (and
/// optional extra columns), in one transaction. Returns whether it moved.
#[allow(clippy::too_many_arguments)]
async fn transition(
    state: &AppState,
    id: i64,
    from: &[&str],
    to: &str,
    set: &str,
    actor: &Actor,
    kind: &str,
    message: &str,
    audit: Option<(&str, Outcome, Option<String>)>,
) -> Result<bool, String> {
    let go = async {
        let mut tx = state.pool.begin().await?;
        let moved = sqlx::query(&format!(
            "UPDATE maintenance_periods SET status = $2 {set} WHERE id = $1 AND status = ANY($3)"
        ))
        .bind(id)
        .bind(to)
        .bind(from)
        .execute(&mut *tx)
        .await?
        .rows_affected()
            > 0;
        if moved {
            timeline::append(
                &mut tx,
                "maintenance",
                id,
                kind,
                Some(actor),
                None,
                message,
                json!({}),
            )
            .await?;
            if let Some((action, outcome, detail)) = audit {
                audit::record(
                    &mut tx,
                    NewEntry {
                        actor: actor.clone(),
                        action: action.into(),
                        target: Some(format!("maintenance:{id}")),
                        params: json!({}),
                        source: None,
                        outcome,
                        detail,
                    },
                )
                .await?;
            }
            touch(&mut tx, id).await?;
        }
        tx.commit().await?;
        anyhow::Ok(moved)
    };
    go.await.map_err(|e| format!("{e:#}"))
}

async fn note(state: &AppState, id: i64, actor: &Actor, kind: &str, message: &str) {
    let r = async {
        let mut tx = state.pool.begin().await?;
        timeline::append(
            &mut tx,
            "maintenance",
            id,
            kind,
            Some(actor),
            None,
            message,
            json!({}),
        )
        .await?;
        touch(&mut tx, id).await?;
        tx.commit().await?;
        anyhow::Ok(())
    };
    if let Err(e) = r.await {
        tracing::warn!(period = id, error = %e, "maintenance timeline write failed");
    }
}

async fn enable(cx: &StepCx<'_>, id: i64) -> StepResult {
    let p = period_row(cx.state, id).await?;
    if !matches!(p.status, PeriodStatus::Requested | PeriodStatus::Enabling) {
        cx.out.line(format!(
            "maintenance period {id} is {}: nothing to do",
            p.status.as_str()
        ));
        return Ok(json!({ "period": id, "status": p.status.as_str(), "changed": false }));
    }
    if p.ends_at <= Utc::now() {
        transition(
            cx.state,
            id,
            &["requested", "enabling"],
            "cancelled",
            ", ended_at = now()",
            cx.actor,
            "cancelled",
            "Its end passed before it started: cancelled",
            None,
        )
        .await?;
        cx.out
            .line("the period's end passed before it started: cancelled");
        return Ok(json!({ "period": id, "status": "cancelled", "changed": false }));
    }
    transition(
        cx.state,
        id,
        &["requested"],
        "enabling",
        "",
        cx.actor,
        "enabling",
        "Enabling: services show maintenance, alarms are suppressed",
        None,
    )
    .await?;
    cx.out.line(format!(
        "period {id}: services show maintenance; alarms are suppressed"
    ));
    if let (true, Some(stack)) = (p.actuate, p.stack.as_deref()) {
        let lock = lock_stack(cx.state, stack).await?;
        let r = stack_enable(cx, stack, id, p.started_by_id).await;
        drop(lock);
        if let Err(e) = r {
            let msg = format!("Enabling failed and was rolled back: {e}");
            set_error(cx.state, id, &e).await;
            transition(
                cx.state,
                id,
                &["enabling"],
                "failed",
                ", ended_at = now()",
                cx.actor,
                "failed",
                &msg,
                Some(("maintenance.enable", Outcome::Failure, Some(e.clone()))),
            )
            .await?;
            return Err(msg);
        }
    }
    let moved = transition(
        cx.state,
        id,
        &["enabling"],
        "active",
        ", enabled_at = now()",
        cx.actor,
        "active",
        &format!(
            "In maintenance until {}",
            p.ends_at.format("%Y-%m-%d %H:%M UTC")
        ),
        Some(("maintenance.enable", Outcome::Success, None)),
    )
    .await?;
    if !moved {
        cx.out
            .line("the period was ended meanwhile; its disable run undoes the change");
    }
    Ok(json!({ "period": id, "status": "active", "changed": moved }))
}

async fn set_error(state: &AppState, id: i64, e: &str) {
    let _ = sqlx::query("UPDATE maintenance_periods SET error = $2 WHERE id = $1")
        .bind(id)
        .bind(e)
        .execute(&state.pool)
        .await;
}

async fn disable(cx: &StepCx<'_>, id: i64) -> StepResult {
    let p = period_row(cx.state, id).await?;
    match p.status {
        PeriodStatus::Requested => {
            transition(
                cx.state,
                id,
                &["requested"],
                "cancelled",
                ", ended_at = now()",
                cx.actor,
                "cancelled",
                "Ended before it started: cancelled",
                None,
            )
            .await?;
            cx.out.line("the period had not started: cancelled");
            return Ok(json!({ "period": id, "status": "cancelled" }));
        }
        s if !s.is_in_effect() => {
            cx.out.line(format!(
                "maintenance period {id} is {}: nothing to do",
                s.as_str()
            ));
            return Ok(json!({ "period": id, "status": s.as_str(), "changed": false }));
        }
        _ => {}
    }
    transition(
        cx.state,
        id,
        &["enabling", "active"],
        "disabling",
        "",
        cx.actor,
        "disabling",
        "Disabling: restoring the previous state",
        None,
    )
    .await?;
    if let (true, Some(stack)) = (p.actuate, p.stack.as_deref()) {
        let lock = lock_stack(cx.state, stack).await?;
        let r = stack_disable(cx, stack, id, p.started_by_id).await;
        drop(lock);
        if let Err(e) = r {
            set_error(cx.state, id, &e).await;
            note(
                cx.state,
                id,
                cx.actor,
                "disable_failed",
                &format!("Disabling failed (still in maintenance; resume the run to retry): {e}"),
            )
            .await;
            let _ = audit_only(
                cx.state,
                cx.actor,
                id,
                "maintenance.disable",
                Outcome::Failure,
                Some(e.clone()),
            )
            .await;
            return Err(e);
        }
    }
    let mut tx = cx.state.pool.begin().await.map_err(|e| e.to_string())?;
    let ended = sqlx::query(
        "UPDATE maintenance_periods SET status = 'ended', ended_at = now(), error = NULL
         WHERE id = $1 AND status = 'disabling' RETURNING service_ids",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    if let Some(r) = ended {
        let ids: Vec<i64> = r.get("service_ids");
        // Pages held during maintenance are due again now.
        sqlx::query(
            "UPDATE incidents SET next_escalation_at = now()
             WHERE next_escalation_at > now() AND status = 'triggered'
               AND id IN (SELECT incident_id FROM incident_services WHERE service_id = ANY($1))",
        )
        .bind(&ids)
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
        timeline::append(
            &mut tx,
            "maintenance",
            id,
            "ended",
            Some(cx.actor),
            None,
            "Maintenance ended; alarms resume",
            json!({}),
        )
        .await
        .map_err(|e| e.to_string())?;
        audit::record(
            &mut tx,
            NewEntry {
                actor: cx.actor.clone(),
                action: "maintenance.disable".into(),
                target: Some(format!("maintenance:{id}")),
                params: json!({}),
                source: None,
                outcome: Outcome::Success,
                detail: None,
            },
        )
        .await
        .map_err(|e| e.to_string())?;
        touch(&mut tx, id).await.map_err(|e| e.to_string())?;
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    crate::incidents::escalation::wake();
    cx.out.line(format!("period {id} ended; alarms resume"));
    Ok(json!({ "period": id, "status": "ended" }))
}

async fn audit_only(
    state: &AppState,
    actor: &Actor,
    id: i64,
    action: &str,
    outcome: Outcome,
    detail: Option<String>,
) -> anyhow::Result<()> {
    let mut tx = state.pool.begin().await?;
    audit::record(
        &mut tx,
        NewEntry {
            actor: actor.clone(),
            action: action.into(),
            target: Some(format!("maintenance:{id}")),
            params: json!({}),
            source: None,
            outcome,
            detail,
        },
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Holds the stack's advisory lock until dropped.
async fn lock_stack(
    state: &AppState,
    stack: &str,
) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, String> {
    let mut tx = state.pool.begin().await.map_err(|e| e.to_string())?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('opsdeck.maintenance'), hashtext($1))")
        .bind(stack)
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?;
    Ok(tx)
}

/// A stack's actuator as stored.
pub struct Stored {
    pub def: ActuatorWrite,
    pub state: String,
    pub saved: Option<Value>,
}

pub fn def_from(mode: &str, config: &Value) -> ActuatorWrite {
    let mode = match mode {
        "proxy" => ActuationMode::Proxy,
        "runbook" => ActuationMode::Runbook,
        _ => ActuationMode::None,
    };
    ActuatorWrite {
        mode,
        proxy: config
            .get("proxy")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
        runbooks: config
            .get("runbooks")
            .and_then(|v| serde_json::from_value(v.clone()).ok()),
    }
}

async fn stored(state: &AppState, stack: &str) -> Result<Option<Stored>, String> {
    let r = sqlx::query(
        "SELECT mode, config, state, saved FROM maintenance_actuators WHERE stack = $1",
    )
    .bind(stack)
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(r.map(|r| Stored {
        def: def_from(r.get("mode"), &r.get::<Value, _>("config")),
        state: r.get("state"),
        saved: r.get("saved"),
    }))
}

async fn set_state(
    state: &AppState,
    stack: &str,
    to: &str,
    saved: Option<&Value>,
    error: Option<&str>,
) -> Result<(), String> {
    sqlx::query(
        "UPDATE maintenance_actuators SET state = $2, saved = $3, error = $4, changed_at = now()
         WHERE stack = $1",
    )
    .bind(stack)
    .bind(to)
    .bind(saved)
    .bind(error)
    .execute(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

async fn stack_enable(
    cx: &StepCx<'_>,
    stack: &str,
    period: i64,
    user: Option<i64>,
) -> Result<(), String> {
    let Some(a) = stored(cx.state, stack).await? else {
        cx.out
            .line(format!("stack {stack} has no actuator: marking only"));
        return Ok(());
    };
    if a.def.mode == ActuationMode::None {
        cx.out
            .line(format!("stack {stack}: actuation none, marking only"));
        return Ok(());
    }
    match a.state.as_str() {
        "on" => {
            cx.out.line(format!(
                "stack {stack} is already in maintenance (another period): nothing changed"
            ));
            note(
                cx.state,
                period,
                cx.actor,
                "actuation",
                &format!("Stack {stack} already in maintenance: nothing changed"),
            )
            .await;
            return Ok(());
        }
        "enabling" | "disabling" => {
            cx.out.line(format!(
                "stack {stack}: an interrupted change ({}) is undone first",
                a.state
            ));
            undo(cx, stack, &a, period, user).await?;
            set_state(cx.state, stack, "off", None, None).await?;
        }
        _ => {}
    }
    match a.def.mode {
        ActuationMode::Proxy => {
            let cfg = a.def.proxy.as_ref().ok_or_else(|| {
                format!("stack {stack}: proxy mode without a proxy configuration")
            })?;
            proxy_enable(cx, stack, cfg, period).await
        }
        ActuationMode::Runbook => {
            let cfg = a
                .def
                .runbooks
                .as_ref()
                .ok_or_else(|| format!("stack {stack}: runbook mode without runbooks"))?;
            set_state(cx.state, stack, "enabling", None, None).await?;
            match run_and_wait(cx, &cfg.enable, &cfg.enable_params, period, user).await {
                Ok(()) => {
                    set_state(cx.state, stack, "on", None, None).await?;
                    note(
                        cx.state,
                        period,
                        cx.actor,
                        "actuation",
                        &format!("Runbook {} succeeded", cfg.enable),
                    )
                    .await;
                    Ok(())
                }
                Err(e) => {
                    cx.out
                        .line(format!("{e}; rolling back with {}", cfg.disable));
                    let back =
                        run_and_wait(cx, &cfg.disable, &cfg.disable_params, period, user).await;
                    set_state(cx.state, stack, "off", None, Some(&e)).await?;
                    match back {
                        Ok(()) => Err(format!("{e} (rolled back by {})", cfg.disable)),
                        Err(b) => Err(format!("{e}; the rollback failed too: {b}")),
                    }
                }
            }
        }
        ActuationMode::None => Ok(()),
    }
}

async fn stack_disable(
    cx: &StepCx<'_>,
    stack: &str,
    period: i64,
    user: Option<i64>,
) -> Result<(), String> {
    let others: Vec<i64> = sqlx::query_scalar(
        "SELECT id FROM maintenance_periods WHERE stack = $1 AND actuate AND id <> $2
           AND status IN ('enabling', 'active') ORDER BY id",
    )
    .bind(stack)
    .bind(period)
    .fetch_all(&cx.state.pool)
    .await
    .map_err(|e| e.to_string())?;
    if let Some(other) = others.first() {
        let msg = format!("Stack {stack} stays in maintenance: period #{other} is still in effect");
        cx.out.line(&msg);
        note(cx.state, period, cx.actor, "actuation", &msg).await;
        return Ok(());
    }
    let Some(a) = stored(cx.state, stack).await? else {
        return Ok(());
    };
    if a.state == "off" {
        cx.out.line(format!("stack {stack}: nothing to restore"));
        return Ok(());
    }
    undo(cx, stack, &a, period, user).await?;
    set_state(cx.state, stack, "off", None, None).await?;
    note(
        cx.state,
        period,
        cx.actor,
        "restored",
        &format!("Stack {stack}: previous state restored"),
    )
    .await;
    Ok(())
}

/// Undoes the stack's change: restores what proxy mode saved, or runs the
/// disable runbook.
async fn undo(
    cx: &StepCx<'_>,
    stack: &str,
    a: &Stored,
    period: i64,
    user: Option<i64>,
) -> Result<(), String> {
    match a.def.mode {
        ActuationMode::Proxy => {
            let reload = a
                .def
                .proxy
                .as_ref()
                .map(|p| p.reload.clone())
                .unwrap_or_default();
            set_state(cx.state, stack, "disabling", a.saved.as_ref(), None).await?;
            let saved: BTreeMap<String, Saved> = a
                .saved
                .clone()
                .map(serde_json::from_value)
                .transpose()
                .map_err(|e| format!("stack {stack}: stored state unreadable: {e}"))?
                .unwrap_or_default();
            let errors = restore_all(cx, &saved, &reload).await;
            if errors.is_empty() {
                Ok(())
            } else {
                let e = errors.join("; ");
                set_state(cx.state, stack, "disabling", a.saved.as_ref(), Some(&e)).await?;
                Err(e)
            }
        }
        ActuationMode::Runbook => {
            let Some(cfg) = a.def.runbooks.as_ref() else {
                return Ok(());
            };
            set_state(cx.state, stack, "disabling", None, None).await?;
            run_and_wait(cx, &cfg.disable, &cfg.disable_params, period, user).await
        }
        ActuationMode::None => Ok(()),
    }
}

/// Restores every container's saved files and reloads it; returns the
/// errors. A container that no longer exists (or whose engine was removed)
/// is skipped with a line; one that cannot be reached now is an error, so
/// the saved state is kept for the next try.
async fn restore_all(
    cx: &StepCx<'_>,
    saved: &BTreeMap<String, Saved>,
    reload: &[String],
) -> Vec<String> {
    let mut errors = Vec::new();
    for (key, files) in saved {
        let (engine, container) = parse_key(key);
        let docker = match reach(cx.state, engine, container).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                cx.out.line(format!(
                    "container {} is gone: nothing to restore there",
                    short(container)
                ));
                continue;
            }
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let r = async {
            proxy::restore(&docker, container, files).await?;
            proxy::reload(&docker, container, reload).await
        };
        match r.await {
            Ok(()) => cx.out.line(format!(
                "restored {} file(s) in {}",
                files.len(),
                short(container)
            )),
            Err(e) => errors.push(format!("restoring {}: {e:#}", short(container))),
        }
    }
    errors
}

fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// `saved` is keyed by `<engine id>/<container id>`.
fn saved_key(engine_id: i64, container: &str) -> String {
    format!("{engine_id}/{container}")
}

fn parse_key(key: &str) -> (Option<i64>, &str) {
    match key.split_once('/') {
        Some((e, c)) => (e.parse().ok(), c),
        None => (None, key),
    }
}

/// The engine client for a saved container: `None` when the container (or
/// its engine's registration) is gone for good; an error when it cannot be
/// told now (engine disconnected, no answer).
async fn reach(
    state: &AppState,
    engine: Option<i64>,
    container: &str,
) -> Result<Option<crate::docker::Client>, String> {
    let Some(conn) = engine.and_then(|e| state.engines.get(e)) else {
        return Ok(None);
    };
    let docker = conn.client().map_err(|e| {
        format!(
            "engine {} is not reachable ({e}); the saved files are kept for the next try",
            conn.name
        )
    })?;
    match crate::docker::ops::container_exists(&docker, container).await {
        Ok(true) => Ok(Some(docker)),
        Ok(false) => Ok(None),
        Err(e) => Err(format!("engine {}: {e}", conn.name)),
    }
}

/// The snippet with its placeholders filled.
pub fn render_snippet(cfg: &ProxyActuation) -> String {
    let (dir, file) = cfg
        .page_path
        .rsplit_once('/')
        .map(|(d, f)| (if d.is_empty() { "/" } else { d }, f))
        .unwrap_or(("/", cfg.page_path.as_str()));
    cfg.snippet
        .replace("{{page_path}}", &cfg.page_path)
        .replace("{{page_dir}}", dir)
        .replace("{{page_file}}", file)
}

async fn proxy_enable(
    cx: &StepCx<'_>,
    stack: &str,
    cfg: &ProxyActuation,
    period: i64,
) -> Result<(), String> {
    // Placing the page writes into the proxy's containers. Restoring (disable)
    // stays allowed: a panel switched to read-only mid-maintenance must still
    // be able to take its page down.
    crate::actions::ensure_writable(cx.state, "the maintenance page (proxy mode)")
        .map_err(|e| e.to_string())?;
    let target = crate::actions::service_target(cx.state, &cfg.service)
        .await
        .map_err(|e| format!("proxy service {}: {e}", cfg.service))?;
    let running: Vec<_> = target
        .containers
        .into_iter()
        .filter(|c| c.state == "running")
        .collect();
    if running.is_empty() {
        return Err(format!(
            "proxy service {} has no running container",
            cfg.service
        ));
    }
    let until: chrono::DateTime<Utc> =
        sqlx::query_scalar("SELECT ends_at FROM maintenance_periods WHERE id = $1")
            .bind(period)
            .fetch_one(&cx.state.pool)
            .await
            .map_err(|e| e.to_string())?;
    let page = page::render(until);
    let snippet = render_snippet(cfg);
    let mut paths = vec![cfg.page_path.as_str()];
    if let Some(s) = cfg.snippet_path.as_deref() {
        paths.push(s);
    }
    // 1. What is there now, saved before anything changes.
    let mut saved: BTreeMap<String, Saved> = BTreeMap::new();
    let mut dockers = Vec::new();
    for c in &running {
        let (_, docker) = crate::actions::engine_of(cx.state, c).map_err(|e| e.to_string())?;
        let s = proxy::snapshot(&docker, &c.id, &paths)
            .await
            .map_err(|e| format!("reading {} in {}: {e:#}", paths.join(", "), c.name))?;
        saved.insert(saved_key(c.engine_id, &c.id), s);
        dockers.push((c, docker));
    }
    let saved_json = serde_json::to_value(&saved).map_err(|e| e.to_string())?;
    set_state(cx.state, stack, "enabling", Some(&saved_json), None).await?;
    // 2. Place and reload, container by container.
    let mut files: Vec<(&str, &[u8])> = vec![(cfg.page_path.as_str(), page.as_bytes())];
    if let Some(s) = cfg.snippet_path.as_deref() {
        files.push((s, snippet.as_bytes()));
    }
    for (c, docker) in &dockers {
        let r = async {
            proxy::place(docker, &c.id, &files).await?;
            cx.out
                .line(format!("placed the maintenance page in {}", c.name));
            proxy::reload(docker, &c.id, &cfg.reload).await?;
            if !cfg.reload.is_empty() {
                cx.out
                    .line(format!("reloaded {} ({})", c.name, cfg.reload.join(" ")));
            }
            anyhow::Ok(())
        };
        if let Err(e) = r.await {
            let e = format!("{} in {}: {e:#}", "placing the page", c.name);
            cx.out
                .line(format!("failed: {e}; restoring every proxy container"));
            let errors = restore_all(cx, &saved, &cfg.reload).await;
            if errors.is_empty() {
                set_state(cx.state, stack, "off", None, Some(&e)).await?;
                return Err(e);
            }
            let all = format!("{e}; restoring failed too: {}", errors.join("; "));
            set_state(cx.state, stack, "disabling", Some(&saved_json), Some(&all)).await?;
            return Err(all);
        }
    }
    set_state(cx.state, stack, "on", Some(&saved_json), None).await?;
    note(
        cx.state,
        period,
        cx.actor,
        "actuation",
        &format!(
            "Proxy {}: maintenance page placed in {} container(s) and reloaded",
            cfg.service,
            dockers.len()
        ),
    )
    .await;
    Ok(())
}

/// Runs a runbook (as the step's actor) and waits until it ends.
async fn run_and_wait(
    cx: &StepCx<'_>,
    runbook: &str,
    params: &BTreeMap<String, Value>,
    period: i64,
    user: Option<i64>,
) -> Result<(), String> {
    let id: i64 = sqlx::query_scalar("SELECT id FROM runbooks WHERE name = $1")
        .bind(runbook)
        .fetch_optional(&cx.state.pool)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("runbook {runbook} does not exist"))?;
    let mut conn = cx.state.pool.acquire().await.map_err(|e| e.to_string())?;
    let run = enqueue(
        cx.state,
        &mut conn,
        NewRun {
            runbook_id: id,
            params: params.clone(),
            reason: format!("maintenance period {period}"),
            incident: None,
            requested_by: cx.actor.clone(),
            requested_by_user: user,
            schedule_id: None,
            parent: None,
        },
    )
    .await
    .map_err(|e| format!("starting runbook {runbook}: {e}"))?;
    drop(conn);
    cx.state.runs.changed(run).await;
    cx.out
        .line(format!("runbook {runbook}: run #{run} started"));
    note(
        cx.state,
        period,
        cx.actor,
        "actuation",
        &format!("Runbook {runbook}: run #{run} started"),
    )
    .await;
    loop {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (status, error): (String, Option<String>) =
            sqlx::query_as("SELECT status, error FROM runs WHERE id = $1")
                .bind(run)
                .fetch_one(&cx.state.pool)
                .await
                .map_err(|e| e.to_string())?;
        match status.as_str() {
            "succeeded" => {
                cx.out
                    .line(format!("runbook {runbook}: run #{run} succeeded"));
                return Ok(());
            }
            "failed" | "cancelled" | "interrupted" => {
                return Err(format!(
                    "runbook {runbook} (run #{run}) {status}{}",
                    error.map(|e| format!(": {e}")).unwrap_or_default()
                ))
            }
            _ => {}
        }
    }
}

/// Checks an actuator against the inventory and the runbooks.
pub async fn validate(conn: &mut PgConnection, a: &mut ActuatorWrite) -> Result<(), String> {
    match a.mode {
        ActuationMode::None => {
            a.proxy = None;
            a.runbooks = None;
        }
        ActuationMode::Proxy => {
            a.runbooks = None;
            let p = a.proxy.as_mut().ok_or("proxy: required in proxy mode")?;
            p.service = p.service.trim().to_owned();
            let known: bool =
                sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM services WHERE name = $1)")
                    .bind(&p.service)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(|e| e.to_string())?;
            if !known {
                return Err(format!(
                    "proxy.service: no service named \"{}\"",
                    p.service.escape_default()
                ));
            }
            proxy::check_path(&p.page_path).map_err(|e| format!("proxy.page_path: {e}"))?;
            if let Some(s) = p.snippet_path.as_deref() {
                if s.trim().is_empty() {
                    p.snippet_path = None;
                } else {
                    proxy::check_path(s).map_err(|e| format!("proxy.snippet_path: {e}"))?;
                    if s == p.page_path {
                        return Err("proxy.snippet_path: must differ from page_path".into());
                    }
                }
            }
            if p.snippet.len() > 64 * 1024 {
                return Err("proxy.snippet: at most 64 KiB".into());
            }
            if p.reload.len() > 32 || p.reload.iter().any(|a| a.len() > 1024 || a.contains('\0')) {
                return Err("proxy.reload: at most 32 arguments of at most 1024 bytes".into());
            }
            if p.reload.first().is_some_and(|a| a.trim().is_empty()) {
                return Err("proxy.reload: the program (first argument) is empty".into());
            }
        }
        ActuationMode::Runbook => {
            a.proxy = None;
            let r: &RunbookActuation = a
                .runbooks
                .as_ref()
                .ok_or("runbooks: required in runbook mode")?;
            for (field, name) in [
                ("runbooks.enable", &r.enable),
                ("runbooks.disable", &r.disable),
            ] {
                let known: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM runbooks WHERE name = $1)")
                        .bind(name)
                        .fetch_one(&mut *conn)
                        .await
                        .map_err(|e| e.to_string())?;
                if !known {
                    return Err(format!(
                        "{field}: no runbook named \"{}\"",
                        name.escape_default()
                    ));
                }
                if name == super::model::ENABLE_RUNBOOK || name == super::model::DISABLE_RUNBOOK {
                    return Err(format!(
                        "{field}: the maintenance built-ins cannot actuate themselves"
                    ));
                }
            }
        }
    }
    Ok(())
}

pub fn config_json(a: &ActuatorWrite) -> Value {
    json!({ "proxy": a.proxy, "runbooks": a.runbooks })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(page: &str, snippet: &str) -> ProxyActuation {
        ProxyActuation {
            service: "proxy".into(),
            page_path: page.into(),
            snippet_path: Some("/etc/nginx/conf.d/maintenance.conf".into()),
            snippet: snippet.into(),
            reload: vec!["nginx".into(), "-s".into(), "reload".into()],
        }
    }

    #[test]
    fn snippet_placeholders_name_the_page() {
        let c = cfg(
            "/usr/share/nginx/html/maintenance.html",
            "root {{page_dir}}; try {{page_file}}; at {{page_path}}",
        );
        assert_eq!(
            render_snippet(&c),
            "root /usr/share/nginx/html; try maintenance.html; at /usr/share/nginx/html/maintenance.html"
        );
        // A page at the root: the directory is "/".
        assert_eq!(render_snippet(&cfg("/index.html", "{{page_dir}}")), "/");
        // Text without placeholders is left alone (no other template syntax).
        assert_eq!(
            render_snippet(&cfg("/a.html", "{{other}} $x")),
            "{{other}} $x"
        );
    }

    #[test]
    fn saved_keys_name_engine_and_container() {
        let k = saved_key(7, "4f2a9c");
        assert_eq!(parse_key(&k), (Some(7), "4f2a9c"));
        // No engine: treated as unreachable for good (skipped on restore).
        assert_eq!(parse_key("4f2a9c"), (None, "4f2a9c"));
    }

    #[test]
    fn actuator_config_round_trips() {
        let a = ActuatorWrite {
            mode: ActuationMode::Proxy,
            proxy: Some(cfg("/www/index.html", "# m")),
            runbooks: None,
        };
        assert_eq!(def_from("proxy", &config_json(&a)), a);
        assert_eq!(def_from("none", &json!({})).mode, ActuationMode::None);
    }
}
