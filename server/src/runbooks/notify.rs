//! The notification and escalation hook of runbooks.
//!
//! `notify` steps, `on_failure: escalate` and approval requests call these
//! two functions. Notification channels (webhook, chat, e-mail, SMS) and
//! incidents arrive with the incidents issue; until then a notification is
//! recorded on the run's timeline and in the server log (at `warn` for
//! escalations), and the step's result says it was not delivered anywhere
//! else. The signatures stay: the incidents module fills them in.

use serde_json::json;

use crate::state::AppState;
use crate::timeline;

/// Sends `message` at `severity`; returns how it was delivered.
pub async fn send(
    state: &AppState,
    run_id: i64,
    severity: &str,
    message: &str,
) -> anyhow::Result<String> {
    let mut conn = state.pool.acquire().await?;
    timeline::append(
        &mut conn,
        "run",
        run_id,
        "notification",
        None,
        None,
        &format!("[{severity}] {message}"),
        json!({"severity": severity, "channels": []}),
    )
    .await?;
    tracing::info!(run = run_id, severity, message, "runbook notification");
    Ok("recorded on the timeline and in the server log (no notification channels yet)".into())
}

/// Escalates a failed step; returns what was done.
pub async fn escalate(
    state: &AppState,
    run_id: i64,
    runbook: &str,
    failure: &str,
) -> anyhow::Result<String> {
    let _ = state;
    tracing::warn!(run = run_id, runbook, failure, "runbook escalation");
    Ok(format!(
        "Escalated: {failure} (recorded here and in the server log; incidents and paging arrive with the incidents feature)"
    ))
}
