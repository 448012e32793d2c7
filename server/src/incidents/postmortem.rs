//! Post-mortems: a template prefilled from the incident (summary, impact,
//! the timeline as Markdown), saved as JSON on the incident, exported as
//! Markdown.

use chrono::{DateTime, Utc};
use opsdeck_wire::{Incident, Postmortem, TimelineEvent};
use serde_json::json;
use sqlx::PgConnection;

use crate::audit::Actor;
use crate::timeline;

use super::edit::check_text;
use super::error::{invalid, IncidentError, Result};
use super::report::human_secs;
use super::{model, store, touch};

/// The incident and its post-mortem (the template until one is saved).
pub async fn load(conn: &mut PgConnection, id: i64) -> Result<(Incident, Postmortem)> {
    let incident = model::load(conn, id).await?;
    let saved = store::postmortem(conn, id).await?;
    let pm = match saved.and_then(|v| serde_json::from_value::<Postmortem>(v).ok()) {
        Some(p) => p,
        None => {
            let events = timeline::list(conn, "incident", id).await?;
            template(&incident, &events)
        }
    };
    Ok((incident, pm))
}

/// Checks a post-mortem's fields (before anything is read or written).
pub fn check(p: &Postmortem) -> Result<()> {
    for (field, v) in [
        ("summary", &p.summary),
        ("impact", &p.impact),
        ("timeline", &p.timeline),
        ("root_cause", &p.root_cause),
        ("went_well", &p.went_well),
        ("went_badly", &p.went_badly),
    ] {
        check_text(field, v, 50_000)?;
    }
    if p.action_items.len() > 100 {
        return Err(invalid("action_items: at most 100"));
    }
    for (n, a) in p.action_items.iter().enumerate() {
        if a.what.trim().is_empty() {
            return Err(invalid(format!(
                "action_items[{n}].what: describe the action"
            )));
        }
        check_text("action_items.what", &a.what, 1000)?;
        check_text("action_items.owner", &a.owner, 200)?;
    }
    Ok(())
}

/// Saves a checked post-mortem, stamped with who and when, with its
/// timeline event (the caller audits and commits).
pub async fn save(
    conn: &mut PgConnection,
    id: i64,
    mut p: Postmortem,
    actor: &Actor,
) -> Result<Postmortem> {
    p.updated_at = Some(Utc::now());
    p.updated_by = Some(actor.name.clone());
    model::load(conn, id).await?;
    let doc = serde_json::to_value(&p).map_err(|e| IncidentError::Internal(e.into()))?;
    store::save_postmortem(conn, id, &doc).await?;
    let n = p.action_items.len();
    timeline::append(
        conn,
        "incident",
        id,
        "postmortem",
        Some(actor),
        None,
        &format!(
            "Post-mortem saved ({n} action item{})",
            if n == 1 { "" } else { "s" }
        ),
        json!({}),
    )
    .await?;
    touch(conn, id).await?;
    Ok(p)
}

/// Timeline kinds left out of the prefilled timeline (delivery noise).
const QUIET: &[&str] = &["notification"];

fn hms(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The template for an incident without a saved post-mortem.
pub fn template(i: &Incident, timeline: &[TimelineEvent]) -> Postmortem {
    let services: Vec<&str> = i.services.iter().map(|s| s.name.as_str()).collect();
    let end = i.resolved_at.unwrap_or_else(Utc::now);
    let mut impact = format!(
        "{} ({}) for {}",
        i.severity.as_str(),
        i.severity.meaning(),
        human_secs((end - i.triggered_at).num_seconds().max(0) as f64)
    );
    if i.resolved_at.is_none() {
        impact.push_str(" so far");
    }
    if !services.is_empty() {
        impact.push_str(&format!(". Services affected: {}.", services.join(", ")));
    }
    let mut lines = Vec::new();
    for e in timeline
        .iter()
        .filter(|e| !QUIET.contains(&e.kind.as_str()))
    {
        let first = e.message.lines().next().unwrap_or_default();
        let who = e
            .actor
            .as_deref()
            .map(|a| format!(" ({a})"))
            .unwrap_or_default();
        lines.push(format!("- {} — {}{who}", hms(e.at), first));
    }
    Postmortem {
        summary: i.summary.clone(),
        impact,
        timeline: lines.join("\n"),
        root_cause: String::new(),
        went_well: String::new(),
        went_badly: String::new(),
        action_items: Vec::new(),
        updated_at: None,
        updated_by: None,
    }
}

fn section(out: &mut String, title: &str, body: &str) {
    out.push_str(&format!("## {title}\n\n"));
    if body.trim().is_empty() {
        out.push_str("_(none)_\n\n");
    } else {
        out.push_str(body.trim_end());
        out.push_str("\n\n");
    }
}

/// The post-mortem as a Markdown document.
pub fn markdown(i: &Incident, p: &Postmortem) -> String {
    let mut out = format!("# Post-mortem: incident #{} — {}\n\n", i.id, i.title);
    out.push_str(&format!(
        "- Severity: {} ({})\n- Status: {}\n- Triggered: {}\n",
        i.severity.as_str(),
        i.severity.meaning(),
        i.status.label(),
        hms(i.triggered_at)
    ));
    if let Some(t) = i.acknowledged_at {
        out.push_str(&format!("- Acknowledged: {}\n", hms(t)));
    }
    if let Some(t) = i.resolved_at {
        out.push_str(&format!("- Resolved: {}\n", hms(t)));
    }
    if let Some(c) = &i.commander {
        out.push_str(&format!("- Incident commander: {c}\n"));
    }
    out.push('\n');
    section(&mut out, "Summary", &p.summary);
    section(&mut out, "Impact", &p.impact);
    section(&mut out, "Timeline", &p.timeline);
    section(&mut out, "Root cause", &p.root_cause);
    section(&mut out, "What went well", &p.went_well);
    section(&mut out, "What went badly", &p.went_badly);
    out.push_str("## Action items\n\n");
    if p.action_items.is_empty() {
        out.push_str("_(none)_\n");
    } else {
        out.push_str("| Done | What | Owner | Due |\n|---|---|---|---|\n");
        for a in &p.action_items {
            let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
            out.push_str(&format!(
                "| {} | {} | {} | {} |\n",
                if a.done { "x" } else { " " },
                cell(&a.what),
                cell(&a.owner),
                a.due.map(|d| d.to_string()).unwrap_or_default()
            ));
        }
    }
    out
}
