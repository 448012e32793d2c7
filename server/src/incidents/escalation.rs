//! The escalation engine: unacknowledged incidents page the next level of
//! their escalation policy when its delay (counted from the trigger time)
//! has passed; SLA milestones that pass their due time unmet are marked
//! breached once.
//!
//! **Durable and exactly once.** The state is two columns of `incidents`:
//! `escalation_level` (the next level) and `next_escalation_at` (when it is
//! due; NULL = nothing due). Every process runs [`task`], a registry task
//! ([`crate::jobs`]) calling [`tick`] every second (at once when this process opens an incident, and
//! after 100 ms when a due incident was skipped because another transaction
//! held its row).
//! A tick locks due incidents with `FOR NO KEY UPDATE SKIP LOCKED` and, in one
//! transaction per incident, resolves the level's people
//! ([`crate::oncall::level_recipients`]), queues their messages in the
//! outbox ([`crate::notify::enqueue_escalation`], itself unique per
//! (incident, level, channel, person)), appends the timeline event and the
//! audit entry, and moves `escalation_level`/`next_escalation_at` on. A
//! process killed in the middle rolls back and the level is still due, so a
//! restart continues where it stopped, and two processes never fire the
//! same level. Acknowledging sets `next_escalation_at` NULL in its own
//! transaction (and cancels unsent messages), so escalation stops.
//!
//! **Time.** [`tick`] takes `now` as a parameter and compares with it, never
//! with the database clock, so tests drive escalation with their own clock
//! (`OPSDECK` settings `escalations = false` turns the ticker off).

use std::sync::OnceLock;
use std::time::Duration;

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use opsdeck_wire::Severity;
use serde_json::json;
use sqlx::{PgConnection, Row};
use tokio::sync::Notify;

use crate::audit::{self, Actor, NewEntry};
use crate::jobs::{Pace, Scope, Task};
use crate::notify::{self, IncidentMessage};
use crate::state::AppState;
use crate::timeline;
use opsdeck_wire::Outcome;

use super::model;
use super::touch;

/// How many due incidents one tick handles per round.
const BATCH: i64 = 20;

fn waker() -> &'static Notify {
    static WAKE: OnceLock<Notify> = OnceLock::new();
    WAKE.get_or_init(Notify::new)
}

/// Asks this process's ticker to run now (an incident was opened here).
pub fn wake() {
    waker().notify_one();
}

/// The ticker for the jobs registry (`escalation`, every process): [`tick`]
/// every second, after 100 ms when a due incident was left for later, at
/// once when this process opens an incident ([`wake`]).
pub fn task(state: AppState) -> Task {
    Task::every(
        "escalation",
        Duration::from_secs(1),
        Scope::EveryProcess,
        state,
        |state| async move {
            let r = tick(&state, Utc::now()).await?;
            Ok(if r.deferred {
                Pace::Soon(Duration::from_millis(100))
            } else {
                Pace::Normal
            })
        },
    )
    .wake(waker())
}

/// What one tick did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TickReport {
    /// (incident id, level) fired.
    pub fired: Vec<(i64, i32)>,
    /// (incident id, milestone) marked breached.
    pub breaches: Vec<(i64, String)>,
    /// Due incidents were left for the next tick (locked by another
    /// transaction, or more than one level due).
    pub deferred: bool,
}

/// Fires every escalation level due at `now` and marks SLA breaches.
pub async fn tick(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<TickReport> {
    let mut report = TickReport::default();
    loop {
        let mut tx = state.pool.begin().await?;
        let due: Vec<i64> = sqlx::query_scalar!(
            "SELECT id FROM incidents
             WHERE next_escalation_at <= $1 AND status = 'triggered'
             ORDER BY next_escalation_at LIMIT $2 FOR NO KEY UPDATE SKIP LOCKED",
            now,
            BATCH
        )
        .fetch_all(&mut *tx)
        .await?;
        if due.is_empty() {
            break;
        }
        let mut fired = Vec::new();
        for id in &due {
            if let Some(level) = fire(&mut tx, *id, now).await? {
                fired.push((*id, level));
            }
        }
        tx.commit().await?;
        for (_, level) in &fired {
            state.metrics.escalation_fired(*level);
        }
        report.fired.extend(fired);
        // Now the queued messages are visible to the sender.
        notify::wake();
        if (due.len() as i64) < BATCH {
            break;
        }
    }
    report.breaches = mark_breaches(state, now).await?;
    state.metrics.sla_breached(report.breaches.len());
    // Due incidents another transaction held (a symptom being attached, a
    // delivery being recorded) were skipped: the ticker comes back soon.
    let left: i64 = sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM incidents WHERE next_escalation_at <= $1 AND status = 'triggered'"#,
        now
    )
    .fetch_one(&state.pool)
    .await?;
    report.deferred = left > 0;
    Ok(report)
}

/// Fires the due level of incident `id` (locked by the caller). Returns the
/// level fired, or `None` when the policy had no such level (exhausted).
async fn fire(conn: &mut PgConnection, id: i64, now: DateTime<Utc>) -> anyhow::Result<Option<i32>> {
    let r = sqlx::query!(
        r#"SELECT title, severity, status, summary, escalation_policy_id, escalation_level,
                triggered_at,
                coalesce((SELECT string_agg(s.name, ', ' ORDER BY s.name)
                          FROM incident_services x JOIN services s ON s.id = x.service_id
                          WHERE x.incident_id = incidents.id), '') AS "services!"
         FROM incidents WHERE id = $1"#,
        id
    )
    .fetch_one(&mut *conn)
    .await?;
    let level: i32 = r.escalation_level;
    let triggered: DateTime<Utc> = r.triggered_at;
    let Some(policy) = r.escalation_policy_id else {
        sqlx::query!(
            "UPDATE incidents SET next_escalation_at = NULL WHERE id = $1",
            id
        )
        .execute(&mut *conn)
        .await?;
        return Ok(None);
    };
    let actor = Actor::system("escalation");
    // Held while maintenance covers the incident's services; due again
    // when it ends (the disable step resets the time), re-checked each
    // minute meanwhile.
    if let Some(period) = super::hold::holding_incident(conn, id).await? {
        sqlx::query!(
            "UPDATE incidents SET next_escalation_at = $2 WHERE id = $1",
            id,
            now + ChronoDuration::seconds(60)
        )
        .execute(&mut *conn)
        .await?;
        let title: String = r.title;
        let new = super::hold::suppress(
            conn,
            period,
            "escalation",
            &format!("incident:{id}:level:{level}"),
            &format!("incident #{id} ({title}): escalation level {level} held"),
        )
        .await?;
        if new {
            timeline::append(
                conn,
                "incident",
                id,
                "escalation_held",
                Some(&actor),
                None,
                &format!(
                    "Escalation level {level} held: maintenance period #{period} covers this incident's services"
                ),
                json!({ "level": level, "period": period }),
            )
            .await?;
            touch(conn, id).await?;
        }
        return Ok(None);
    }
    let Some(people) = crate::oncall::level_recipients(conn, policy, level, now).await? else {
        sqlx::query!(
            "UPDATE incidents SET next_escalation_at = NULL WHERE id = $1",
            id
        )
        .execute(&mut *conn)
        .await?;
        timeline::append(
            conn,
            "incident",
            id,
            "escalation_exhausted",
            Some(&actor),
            None,
            &format!("Escalation policy exhausted after level {level}; nobody else to page"),
            json!({ "level": level }),
        )
        .await?;
        touch(conn, id).await?;
        return Ok(None);
    };
    let severity = Severity::from_level(r.severity).unwrap_or(Severity::P4);
    let title: String = r.title;
    let services: String = r.services;
    let summary: String = r.summary;
    let mut body = format!(
        "{} incident #{id}: {title}\nStatus: triggered, not acknowledged for {}\n",
        severity.as_str(),
        crate::incidents::report::human_secs((now - triggered).num_seconds().max(0) as f64)
    );
    if !services.is_empty() {
        body.push_str(&format!("Services: {services}\n"));
    }
    if !summary.is_empty() {
        body.push_str(&format!("\n{summary}\n"));
    }
    let msg = IncidentMessage {
        incident_id: id,
        severity,
        title: format!("[{}] #{id} {title}", severity.as_str()),
        body,
    };
    let queued = notify::enqueue_escalation(conn, &msg, level, &people).await?;
    // The next level, due `delay` after the trigger (not after this level).
    let next: Option<i32> = sqlx::query_scalar!(
        "SELECT delay_secs FROM escalation_levels WHERE policy_id = $1 AND level = $2",
        policy,
        level + 1
    )
    .fetch_optional(&mut *conn)
    .await?;
    let next_at = next.map(|d| triggered + ChronoDuration::seconds(i64::from(d)));
    sqlx::query!(
        "UPDATE incidents SET escalation_level = $2, next_escalation_at = $3 WHERE id = $1",
        id,
        level + 1,
        next_at
    )
    .execute(&mut *conn)
    .await?;
    let who = if people.is_empty() {
        "nobody (no one reachable on this level)".to_owned()
    } else {
        people
            .iter()
            .map(|p| {
                if p.via == "person" {
                    p.name.clone()
                } else {
                    format!("{} ({})", p.name, p.via)
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let message = format!(
        "Escalated to level {}: {who}; {} message{} queued",
        level + 1,
        queued.len(),
        if queued.len() == 1 { "" } else { "s" }
    );
    timeline::append(
        conn,
        "incident",
        id,
        "escalated",
        Some(&actor),
        None,
        &message,
        json!({ "level": level, "people": people.iter().map(|p| p.person_id).collect::<Vec<_>>(),
                "notifications": queued }),
    )
    .await?;
    audit::record(
        conn,
        NewEntry {
            actor,
            action: "incident.escalate".into(),
            target: Some(format!("incident:{id}")),
            params: json!({ "level": level, "policy_id": policy, "notifications": queued.len() }),
            source: None,
            outcome: Outcome::Success,
            detail: None,
        },
    )
    .await?;
    touch(conn, id).await?;
    Ok(Some(level))
}

/// Marks each SLA milestone of an unfinished incident that is due and unmet
/// as breached, once (`sla_breaches`), with a timeline event.
async fn mark_breaches(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<Vec<(i64, String)>> {
    // Read without locks (this runs every second in every process); each
    // breach is then claimed by a conditional UPDATE, which only one
    // process's transaction can win.
    let mut conn = state.pool.acquire().await?;
    let targets = model::targets(&mut conn).await?;
    // Runtime statement: it extends the incidents store's shared SELECT and
    // reads rows through its `from_row` (plus `sla_breaches`), so one
    // mapping serves the ticker and the store.
    let rows = sqlx::query(&format!(
        "{} WHERE i.status IN ('triggered', 'acknowledged', 'mitigated')
              OR (i.status = 'resolved' AND NOT 'postmortem' = ANY (i.sla_breaches)
                  AND i.severity IN (SELECT severity FROM sla_targets WHERE postmortem_secs IS NOT NULL))",
        model::SELECT
    ))
    .fetch_all(&mut *conn)
    .await?;
    drop(conn);
    let mut out = Vec::new();
    for r in rows {
        let marked: Vec<String> = r.get("sla_breaches");
        let inc = model::with_sla(model::from_row(&r)?, &targets, now);
        for t in &inc.sla {
            if !t.breached || t.met_at.is_some() || marked.contains(&t.milestone) {
                continue;
            }
            let mut tx = state.pool.begin().await?;
            let won: Option<i64> = sqlx::query_scalar!(
                "UPDATE incidents SET sla_breaches = array_append(sla_breaches, $2)
                 WHERE id = $1 AND NOT $2 = ANY (sla_breaches) RETURNING id",
                inc.id,
                &t.milestone
            )
            .fetch_optional(&mut *tx)
            .await?;
            if won.is_none() {
                continue;
            }
            let label = milestone_label(&t.milestone);
            timeline::append(
                &mut tx,
                "incident",
                inc.id,
                "sla_breach",
                Some(&Actor::system("sla")),
                None,
                &format!(
                    "SLA breached: {label} target of {} for {} passed at {}",
                    crate::incidents::report::human_secs(t.target_secs as f64),
                    inc.severity.as_str(),
                    t.due_at.format("%H:%M:%S UTC")
                ),
                json!({ "milestone": t.milestone, "due_at": t.due_at }),
            )
            .await?;
            touch(&mut tx, inc.id).await?;
            tx.commit().await?;
            out.push((inc.id, t.milestone.clone()));
        }
    }
    Ok(out)
}

pub fn milestone_label(m: &str) -> &'static str {
    match m {
        "ack" => "acknowledge",
        "diagnose" => "diagnose",
        "mitigate" => "mitigate",
        "resolve" => "resolve",
        "postmortem" => "post-mortem",
        _ => "milestone",
    }
}

/// Pages the next escalation level of an unacknowledged incident now (the
/// escalation ticker fires it); an acknowledged one has someone on it and
/// is left as it is. Returns whether a level was brought forward.
pub async fn escalate_now(
    conn: &mut PgConnection,
    incident_id: i64,
    now: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let r = sqlx::query!(
        "UPDATE incidents SET next_escalation_at = $2
         WHERE id = $1 AND status = 'triggered' AND next_escalation_at IS NOT NULL",
        incident_id,
        now
    )
    .execute(conn)
    .await?;
    Ok(r.rows_affected() > 0)
}
