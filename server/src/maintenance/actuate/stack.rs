//! Per-stack actuators: the stored configuration, its state (`off →
//! enabling → on → disabling → off`) and what it replaced, enabling and
//! disabling a stack (dispatching to proxy or runbook mode), undoing an
//! interrupted change, and checking a configuration before it is stored.

use std::collections::BTreeMap;

use opsdeck_wire::{ActuationMode, ActuatorWrite, RunbookActuation};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::note;
use super::proxy_mode::{proxy_enable, restore_all};
use super::runbook_mode::run_and_wait;
use crate::maintenance::proxy::{self, Saved};
use crate::runbooks::step::StepCx;
use crate::state::AppState;

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

pub(super) async fn stored(state: &AppState, stack: &str) -> Result<Option<Stored>, String> {
    let r = sqlx::query!(
        "SELECT mode, config, state, saved FROM maintenance_actuators WHERE stack = $1",
        stack
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(r.map(|r| Stored {
        def: def_from(&r.mode, &r.config),
        state: r.state,
        saved: r.saved,
    }))
}

pub(super) async fn set_state(
    state: &AppState,
    stack: &str,
    to: &str,
    saved: Option<&Value>,
    error: Option<&str>,
) -> Result<(), String> {
    sqlx::query!(
        "UPDATE maintenance_actuators SET state = $2, saved = $3, error = $4, changed_at = now()
         WHERE stack = $1",
        stack,
        to,
        saved,
        error
    )
    .execute(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    Ok(())
}

pub(super) async fn stack_enable(
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

pub(super) async fn stack_disable(
    cx: &StepCx<'_>,
    stack: &str,
    period: i64,
    user: Option<i64>,
) -> Result<(), String> {
    let others: Vec<i64> = sqlx::query_scalar!(
        "SELECT id FROM maintenance_periods WHERE stack = $1 AND actuate AND id <> $2
           AND status IN ('enabling', 'active') ORDER BY id",
        stack,
        period
    )
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
pub(super) async fn undo(
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
            let known = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM services WHERE name = $1) AS "known!""#,
                p.service
            )
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
                let known = sqlx::query_scalar!(
                    r#"SELECT EXISTS (SELECT 1 FROM runbooks WHERE name = $1) AS "known!""#,
                    name
                )
                .fetch_one(&mut *conn)
                .await
                .map_err(|e| e.to_string())?;
                if !known {
                    return Err(format!(
                        "{field}: no runbook named \"{}\"",
                        name.escape_default()
                    ));
                }
                if name == crate::maintenance::model::ENABLE_RUNBOOK
                    || name == crate::maintenance::model::DISABLE_RUNBOOK
                {
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
    use opsdeck_wire::ProxyActuation;

    #[test]
    fn actuator_config_round_trips() {
        let a = ActuatorWrite {
            mode: ActuationMode::Proxy,
            proxy: Some(ProxyActuation {
                service: "proxy".into(),
                page_path: "/www/index.html".into(),
                snippet_path: Some("/etc/nginx/conf.d/maintenance.conf".into()),
                snippet: "# m".into(),
                reload: vec!["nginx".into(), "-s".into(), "reload".into()],
            }),
            runbooks: None,
        };
        assert_eq!(def_from("proxy", &config_json(&a)), a);
        assert_eq!(def_from("none", &json!({})).mode, ActuationMode::None);
    }
}
