//! The outbox sender: every server process runs one (see [`super`] for the
//! guarantees). It claims due rows with a lease (the one lease mechanism of
//! [`crate::jobs::lease`]), sends them (at most [`PARALLEL`] at once), and
//! records each attempt.

use std::sync::Arc;
use std::time::{Duration, Instant};

use opsdeck_wire::{ChannelConfig, Severity};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::send::{self, ChannelRow, IncidentInfo, Outgoing, SendError};
use super::{acklink, public_base};
use crate::jobs::{lease, Held, JobTable, Lease, Leases, Renewed, Task};
use crate::state::AppState;

/// How often the outbox looks for due rows (other processes' inserts, retries).
pub const POLL: Duration = Duration::from_millis(500);
/// A claimed row's lease; a process that dies mid-send loses it after this.
pub const LEASE_SECS: f64 = 60.0;
/// Attempts before a notification is `failed`.
pub const MAX_ATTEMPTS: i32 = 5;
/// Deliveries in flight per process.
pub const PARALLEL: usize = 16;

/// The wait after failed attempt `attempt` (1-based): 5 s, 15 s, 45 s,
/// 2 min 15 s; `None` after the last one.
pub fn backoff(attempt: i32) -> Option<Duration> {
    if !(1..MAX_ATTEMPTS).contains(&attempt) {
        return None;
    }
    Some(Duration::from_secs(5 * 3u64.pow(attempt as u32 - 1)))
}

fn secs_text(d: Duration) -> String {
    let s = d.as_secs();
    let (min, sec) = (s / 60, s % 60);
    match (min, sec) {
        (0, _) => format!("{s} s"),
        (_, 0) => format!("{min} min"),
        _ => format!("{min} min {sec} s"),
    }
}

/// A claimed row.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub kind: String,
    pub incident_id: Option<i64>,
    pub run_id: Option<i64>,
    pub channel_id: Option<i64>,
    pub channel_name: String,
    pub channel_kind: String,
    pub person_id: Option<i64>,
    pub person_name: Option<String>,
    pub address: String,
    pub severity: Severity,
    pub subject: String,
    pub body: String,
    /// This attempt's number (1-based).
    pub attempt: i32,
}

/// The `notifications` table as a [`JobTable`]: due rows are claimed
/// under a lease; there is no heartbeat (a delivery ends within
/// [`send::DEADLINE`], well inside the lease) and no reaper (a row whose
/// lease ran out is due again and the claim takes it back).
pub struct Outbox;

impl JobTable for Outbox {
    type Cx = AppState;
    type Job = Claimed;
    const TASKS: [&'static str; 3] = [
        "notifications.claim",
        "notifications.heartbeat",
        "notifications.reap",
    ];
    const POLL: Duration = POLL;
    const HEARTBEAT: bool = false;
    const REAP: bool = false;

    fn id(job: &Claimed) -> i64 {
        job.id
    }

    async fn claim(state: &AppState, lease: &Lease, limit: i64) -> sqlx::Result<Vec<Claimed>> {
        claim(&state.pool, lease, limit).await
    }

    async fn renew(_: &AppState, _: &Lease) -> sqlx::Result<Vec<Renewed>> {
        Ok(Vec::new())
    }

    async fn reap(_: &AppState) -> anyhow::Result<()> {
        Ok(())
    }

    async fn execute(
        state: AppState,
        lease: Lease,
        row: Claimed,
        _held: Arc<Held>,
        stop: CancellationToken,
    ) {
        let id = row.id;
        // At shutdown a delivery in flight is dropped: its lease runs out
        // and another process retries it (at least once).
        tokio::select! {
            _ = stop.cancelled() => {}
            r = process(&state, lease.owner(), row) => if let Err(e) = r {
                // The lease runs out and the row is retried.
                tracing::warn!(
                    notification = id,
                    error = format!("{e:#}"),
                    "notification not recorded"
                );
            }
        }
    }
}

/// The sender's registry tasks; `wake` is this process's outbox signal.
pub fn tasks(state: AppState, wake: Arc<Notify>, stop: CancellationToken) -> Vec<Task> {
    let leases = Leases::with_wake(
        Lease::new("notify:", Duration::from_secs_f64(LEASE_SECS)),
        PARALLEL,
        wake,
    );
    lease::tasks::<Outbox>(leases, state, stop)
}

/// Claims up to `limit` due rows for `lease` (one statement: `FOR UPDATE
/// SKIP LOCKED` lets concurrent processes take disjoint rows).
pub async fn claim(pool: &PgPool, lease: &Lease, limit: i64) -> sqlx::Result<Vec<Claimed>> {
    let rows = sqlx::query!(
        "UPDATE notifications n
         SET lease_owner = $1, lease_until = now() + make_interval(secs => $3),
             attempts = n.attempts + 1
         FROM (SELECT id FROM notifications
               WHERE status = 'pending' AND next_attempt_at <= now()
                 AND (lease_until IS NULL OR lease_until < now())
               ORDER BY next_attempt_at, id
               LIMIT $2
               FOR UPDATE SKIP LOCKED) due
         WHERE n.id = due.id
         RETURNING n.id, n.kind, n.incident_id, n.run_id, n.channel_id, n.channel_name,
                   n.channel_kind, n.person_id, n.person_name, n.address, n.severity,
                   n.subject, n.body, n.attempts",
        lease.owner(),
        limit,
        lease.secs()
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Claimed {
            id: r.id,
            kind: r.kind,
            incident_id: r.incident_id,
            run_id: r.run_id,
            channel_id: r.channel_id,
            channel_name: r.channel_name,
            channel_kind: r.channel_kind,
            person_id: r.person_id,
            person_name: r.person_name,
            address: r.address,
            severity: Severity::from_level(r.severity).unwrap_or(Severity::P1),
            subject: r.subject,
            body: r.body,
            attempt: r.attempts,
        })
        .collect())
}

/// A channel row by id.
pub async fn load_channel(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<ChannelRow>> {
    let row = sqlx::query!(
        "SELECT id, name, kind, config, secret, enabled FROM channels WHERE id = $1",
        id
    )
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    // Sealed at rest; opened for the sender that uses it (an error, not an
    // unsigned message, when it does not open).
    let secret = r
        .secret
        .map(|s| crate::secrets::open(crate::secrets::Field::ChannelSecret, r.id, &s))
        .transpose()
        .map_err(|e| sqlx::Error::Decode(Box::new(e)))?;
    Ok(Some(ChannelRow {
        id: r.id,
        name: r.name,
        kind: r.kind,
        config: serde_json::from_value::<ChannelConfig>(r.config).unwrap_or_default(),
        secret,
        enabled: r.enabled,
    }))
}

/// The incident as messages show it now.
pub async fn load_incident(
    conn: &mut PgConnection,
    id: i64,
    base: &str,
) -> sqlx::Result<Option<IncidentInfo>> {
    let Some(r) = sqlx::query!(
        "SELECT id, title, severity, status, summary FROM incidents WHERE id = $1",
        id
    )
    .fetch_optional(&mut *conn)
    .await?
    else {
        return Ok(None);
    };
    let services: Vec<String> = sqlx::query_scalar!(
        "SELECT s.name FROM incident_services x JOIN services s ON s.id = x.service_id
         WHERE x.incident_id = $1 ORDER BY s.name",
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(IncidentInfo {
        id,
        title: r.title,
        severity: Severity::from_level(r.severity).unwrap_or(Severity::P1),
        status: r.status,
        summary: r.summary,
        services,
        url: format!("{base}/incidents/{id}"),
    }))
}

/// What happened to one claimed row.
enum Handled {
    Attempted {
        outcome: Result<String, SendError>,
        duration_ms: i32,
    },
    Cancelled(String),
}

/// Sends one claimed row and records the outcome.
async fn process(state: &AppState, owner: &str, row: Claimed) -> anyhow::Result<()> {
    let base = public_base(&state.settings);
    let mut conn = state.pool.acquire().await?;
    let channel = match row.channel_id {
        Some(id) => load_channel(&mut conn, id).await?,
        None => None,
    };
    let result = match channel {
        None => Handled::Cancelled(format!("the channel {} was deleted", row.channel_name)),
        Some(c) if !c.enabled => Handled::Cancelled(format!("the channel {} is disabled", c.name)),
        Some(c) if c.kind != row.channel_kind => Handled::Cancelled(format!(
            "the channel {} is now a {} channel",
            c.name,
            send::kind_label(&c.kind)
        )),
        Some(c) => {
            let incident = match row.incident_id {
                Some(id) => load_incident(&mut conn, id, &base).await?,
                None => None,
            };
            // Escalation messages carry an acknowledge link. An incident
            // acknowledged since the step was queued still gets its
            // message (it was due); the link then says so.
            let ack_url = match (&incident, row.kind.as_str()) {
                (Some(i), "escalation") => Some(
                    acklink::mint(
                        &mut conn,
                        &base,
                        i.id,
                        Some(row.id),
                        row.person_id,
                        row.person_name.as_deref(),
                    )
                    .await?
                    .url,
                ),
                _ => None,
            };
            drop(conn);
            let out = Outgoing {
                notification_id: row.id,
                kind: row.kind.clone(),
                incident,
                run_id: row.run_id,
                person_name: row.person_name.clone(),
                address: row.address.clone(),
                severity: row.severity,
                subject: row.subject.clone(),
                body: row.body.clone(),
                ack_url,
                base: base.clone(),
            };
            let started = Instant::now();
            let outcome = send::deliver(&c, &out, state.settings.notify_allow_link_local).await;
            Handled::Attempted {
                outcome,
                duration_ms: started.elapsed().as_millis().min(i32::MAX as u128) as i32,
            }
        }
    };
    record(&state.pool, owner, &row, result).await
}

fn who(row: &Claimed) -> String {
    let how = format!(
        "by {} ({})",
        send::kind_label(&row.channel_kind),
        row.channel_name
    );
    match &row.person_name {
        Some(p) => format!("to {p} {how}"),
        None => how,
    }
}

/// Writes the outcome under the lease: the row, the attempt, the timeline
/// event of the incident or run, in one transaction.
async fn record(pool: &PgPool, owner: &str, row: &Claimed, result: Handled) -> anyhow::Result<()> {
    let attempt = row.attempt;
    // (status, seconds until the next attempt, last_error, attempt row, timeline message)
    let (status, next_in, last_error, attempt_row, message) = match &result {
        Handled::Cancelled(reason) => (
            "cancelled",
            0.0,
            Some(reason.clone()),
            None,
            format!("Not sending {}: {reason}", who(row)),
        ),
        Handled::Attempted {
            outcome: Ok(detail),
            duration_ms,
        } => (
            "sent",
            0.0,
            None,
            Some(("sent", detail.clone(), *duration_ms)),
            format!("Sent {}", who(row)),
        ),
        Handled::Attempted {
            outcome: Err(SendError::Refused(e)),
            duration_ms,
        } => (
            "failed",
            0.0,
            Some(e.clone()),
            Some(("failed", e.clone(), *duration_ms)),
            format!("Could not send {}: {e} (not retried)", who(row)),
        ),
        Handled::Attempted {
            outcome: Err(SendError::Failed(e)),
            duration_ms,
        } => match backoff(attempt) {
            Some(wait) => (
                "pending",
                wait.as_secs_f64(),
                Some(e.clone()),
                Some(("failed", e.clone(), *duration_ms)),
                format!(
                    "Failed to send {}: {e}; retrying in {} (attempt {attempt} of {MAX_ATTEMPTS})",
                    who(row),
                    secs_text(wait)
                ),
            ),
            None => (
                "failed",
                0.0,
                Some(e.clone()),
                Some(("failed", e.clone(), *duration_ms)),
                format!("Gave up sending {} after {attempt} attempts: {e}", who(row)),
            ),
        },
    };
    let mut tx = pool.begin().await?;
    let updated = sqlx::query!(
        "UPDATE notifications
         SET status = $3,
             attempts = CASE WHEN $3 = 'cancelled' THEN attempts - 1 ELSE attempts END,
             sent_at = CASE WHEN $3 = 'sent' THEN now() ELSE sent_at END,
             next_attempt_at = now() + make_interval(secs => $4),
             last_error = $5, lease_owner = NULL, lease_until = NULL
         WHERE id = $1 AND lease_owner = $2
         RETURNING id",
        row.id,
        owner,
        status,
        next_in,
        last_error.as_deref()
    )
    .fetch_optional(&mut *tx)
    .await?;
    if updated.is_none() {
        // The lease ran out and another process took the row: it records.
        tracing::warn!(
            notification = row.id,
            "notification lease lost; outcome not recorded"
        );
        return Ok(());
    }
    if let Some((outcome, detail, ms)) = &attempt_row {
        sqlx::query!(
"INSERT INTO notification_attempts (notification_id, attempt, outcome, detail, duration_ms)
             VALUES ($1, $2, $3, $4, $5)",
row.id,
attempt,
outcome,
detail,
ms
)
        .execute(&mut *tx)
        .await?;
    }
    let data = json!({
        "notification_id": row.id,
        "channel": row.channel_name,
        "channel_kind": row.channel_kind,
        "person": row.person_name,
        "status": status,
        "attempt": attempt,
        "detail": attempt_row.as_ref().map(|a| a.1.clone()).or(last_error.clone()),
    });
    if let Some(incident) = row.incident_id {
        crate::timeline::append(
            &mut tx,
            "incident",
            incident,
            "notification",
            None,
            None,
            &message,
            data,
        )
        .await?;
        super::incident::touch(&mut tx, incident).await?;
    } else if let Some(run) = row.run_id {
        crate::timeline::append(
            &mut tx,
            "run",
            run,
            "notification",
            None,
            None,
            &message,
            data,
        )
        .await?;
    }
    tx.commit().await?;
    match status {
        "sent" => {
            tracing::info!(notification = row.id, channel = %row.channel_name, attempt, "notification sent")
        }
        "pending" => {
            tracing::warn!(notification = row.id, channel = %row.channel_name, attempt, error = ?last_error, "notification failed; will retry")
        }
        _ => {
            tracing::warn!(notification = row.id, channel = %row.channel_name, attempt, status, error = ?last_error, "notification not delivered")
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_5_15_45_135_then_give_up() {
        let waits: Vec<_> = (1..=5).map(backoff).collect();
        assert_eq!(
            waits,
            vec![
                Some(Duration::from_secs(5)),
                Some(Duration::from_secs(15)),
                Some(Duration::from_secs(45)),
                Some(Duration::from_secs(135)),
                None
            ]
        );
        assert_eq!(secs_text(Duration::from_secs(135)), "2 min 15 s");
        assert_eq!(secs_text(Duration::from_secs(15)), "15 s");
    }
}
