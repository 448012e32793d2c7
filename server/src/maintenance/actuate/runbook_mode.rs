//! Runbook mode: the stack's enable runbook runs and the step waits for
//! it; if it does not succeed, the disable runbook runs as the rollback.
//! Disabling runs the disable runbook.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use super::note;
use crate::runbooks::engine::{enqueue, NewRun};
use crate::runbooks::step::StepCx;

/// Runs a runbook (as the step's actor) and waits until it ends.
pub(super) async fn run_and_wait(
    cx: &StepCx<'_>,
    runbook: &str,
    params: &BTreeMap<String, Value>,
    period: i64,
    user: Option<i64>,
) -> Result<(), String> {
    let id: i64 = crate::maintenance::store::runbook_id(&cx.state.pool, runbook)
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
    cx.state.runs().changed(run).await;
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
        let r = sqlx::query!("SELECT status, error FROM runs WHERE id = $1", run)
            .fetch_one(&cx.state.pool)
            .await
            .map_err(|e| e.to_string())?;
        let (status, error) = (r.status, r.error);
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
