//! The notification and escalation hook of runbooks.
//!
//! `notify` steps, `on_failure: escalate` and approval requests call these
//! two functions. [`send`] records the message on the run's timeline and
//! queues it in the notification outbox (`crate::notify`) on the webhook
//! and chat channels whose rules take its severity; e-mail and SMS address
//! people, and a step names none. [`escalate`] belongs to the incidents
//! work.

use opsdeck_wire::Severity;
use serde_json::json;

use crate::state::AppState;
use crate::timeline;

/// The incident severity of a `notify` step's severity word: critical → P1,
/// high/error → P2, warning → P3, info and anything else → P4.
pub fn severity_of(word: &str) -> Severity {
    match word.trim().to_ascii_lowercase().as_str() {
        "critical" => Severity::P1,
        "high" | "error" => Severity::P2,
        "warning" | "warn" => Severity::P3,
        _ => Severity::P4,
    }
}

/// Sends `message` at `severity`: recorded on the run's timeline and queued
/// in the outbox on every enabled webhook, Slack and Teams channel whose
/// rules take the mapped severity (one transaction); returns where.
pub async fn send(
    state: &AppState,
    run_id: i64,
    severity: &str,
    message: &str,
) -> anyhow::Result<String> {
    let level = severity_of(severity);
    let mut tx = state.pool.begin().await?;
    let runbook: Option<String> = sqlx::query_scalar!(
        "SELECT b.name FROM runs r JOIN runbooks b ON b.id = r.runbook_id WHERE r.id = $1",
        run_id,
    )
    .fetch_optional(&mut *tx)
    .await?;
    let first_line = message.lines().next().unwrap_or_default();
    let subject = format!(
        "[{}] Run #{run_id}{}: {}",
        level.as_str(),
        runbook.map(|b| format!(" of {b}")).unwrap_or_default(),
        first_line.chars().take(150).collect::<String>()
    );
    let queued = crate::notify::enqueue_runbook(&mut tx, run_id, level, &subject, message).await?;
    let channels: Vec<String> = queued
        .iter()
        .map(|q| {
            format!(
                "{} ({})",
                q.channel,
                crate::notify::send::kind_label(&q.kind)
            )
        })
        .collect();
    timeline::append(
        &mut tx,
        "run",
        run_id,
        "notification",
        None,
        None,
        &format!("[{severity}] {message}"),
        json!({
            "severity": severity,
            "level": level.as_str(),
            "channels": queued.iter().map(|q| &q.channel).collect::<Vec<_>>(),
            "notifications": queued.iter().map(|q| q.id).collect::<Vec<_>>(),
        }),
    )
    .await?;
    tx.commit().await?;
    crate::notify::wake();
    tracing::info!(
        run = run_id,
        severity,
        message,
        channels = channels.len(),
        "runbook notification"
    );
    Ok(if channels.is_empty() {
        format!(
            "recorded on the timeline; no enabled webhook, Slack or Teams channel takes {} notifications",
            level.as_str()
        )
    } else {
        format!(
            "queued as {} on {} (delivery on the run's timeline)",
            level.as_str(),
            channels.join(", ")
        )
    })
}

/// Escalates a failed step: opens an incident (or joins the open one for
/// this runbook and target), which pages through the default escalation
/// policy, and links the run to it. Returns what was done.
pub async fn escalate(
    state: &AppState,
    run_id: i64,
    runbook: &str,
    failure: &str,
) -> anyhow::Result<String> {
    use crate::incidents::model::{Opening, PolicyChoice};
    use opsdeck_wire::{Severity, Tier};

    let mut tx = state.pool.begin().await?;
    let target: String = sqlx::query_scalar!("SELECT target FROM runs WHERE id = $1", run_id)
        .fetch_one(&mut *tx)
        .await?;
    let service: Option<(i64, String)> = sqlx::query!(
        r#"SELECT id, tier::text AS "tier!" FROM services WHERE name = $1"#,
        target,
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.id, r.tier));
    let tier = service
        .as_ref()
        .and_then(|s| Tier::ALL.into_iter().find(|t| t.as_str() == s.1));
    let severity = tier.map_or(Severity::P2, Severity::of_tier);
    let on = if target == "*" {
        String::new()
    } else {
        format!(" on {target}")
    };
    let (id, created) = crate::incidents::open_for_run(
        tx,
        run_id,
        Opening {
            title: format!("Runbook {runbook} failed{on}")
                .chars()
                .take(200)
                .collect(),
            severity,
            source: "runbook",
            dedup_key: Some(format!("runbook:{runbook}:{target}")),
            summary: failure.chars().take(2000).collect(),
            services: service.iter().map(|s| (s.0, "affected")).collect(),
            commander_id: None,
            policy: PolicyChoice::Default,
            actor: crate::audit::Actor::system(&format!("runbook:{runbook}")),
            first_event: (
                "escalated".into(),
                format!("Escalated by run #{run_id} of {runbook}: {failure}"),
                json!({ "run_id": run_id }),
            ),
            now: chrono::Utc::now(),
        },
        &format!("Run #{run_id} of {runbook} failed again: {failure}"),
    )
    .await?;
    tracing::warn!(run = run_id, runbook, incident = id, "runbook escalation");
    Ok(if created {
        format!(
            "Escalated: opened incident #{id} ({}); the escalation policy pages on-call",
            severity.as_str()
        )
    } else {
        format!("Escalated: added to open incident #{id}")
    })
}
