//! Notification channels and the outbox: webhook (HMAC-signed), Slack- and
//! Teams-compatible webhooks, e-mail over SMTP, an SMS/phone gateway; signed
//! single-use acknowledge links; outbound targets checked against SSRF.
//!
//! * [`api`]: `/api/v1/channels…` (admins; validated at the boundary,
//!   audited without URLs or secrets) and `/api/v1/notifications` (viewers).
//! * [`guard`]: what outbound addresses are refused, at save and send time.
//! * [`send`]: one delivery per channel kind (payloads, HMAC signature,
//!   SMTP with askama-rendered bodies).
//! * [`outbox`]: the sender every process runs.
//! * [`acklink`]: `/ack/{token}` pages and the link tokens.
//!
//! **The outbox.** A message is a `notifications` row, written in the
//! transaction of whatever caused it ([`enqueue_escalation`] inside the
//! escalation step, [`enqueue_runbook`] for runbook `notify` steps); the
//! subject and plain-text body are fixed then. Every server process runs
//! the registry task `notifications.claim` ([`tasks`]): every [`outbox::POLL`] (500 ms), or at once when this process
//! queued something ([`wake`]), it claims due rows (`status = 'pending' AND
//! next_attempt_at <= now()` and no live lease) with `FOR UPDATE SKIP
//! LOCKED` in one `UPDATE … RETURNING` that sets `lease_owner` (this
//! outbox's id), `lease_until = now() + 60 s` and counts the attempt. It
//! delivers within [`send::DEADLINE`] (15 s), then, guarded by `lease_owner
//! = me`, writes in one transaction: the `notification_attempts` row, the
//! row's new status (`sent`; or `pending` again after 5 s, 15 s, 45 s,
//! 2 min 15 s; `failed` after the 5th attempt), `last_error` (hosts only,
//! never URLs or secrets), and a timeline event on the incident (with
//! incidents' registered touch for live views, see [`incident`]) or on
//! the run.
//!
//! **Exactly once, at least once.** An escalation step's rows are unique per
//! (incident, level, channel, person) (`notifications_once_per_step`;
//! inserts are `ON CONFLICT DO NOTHING`), so however many processes run the
//! step, one message per person and channel is queued. A row is delivered by
//! the one process holding its lease. A process killed mid-send (after the
//! receiver got the message, before the outcome was written) leaves a lease
//! that runs out after 60 s; the row is then sent again: delivery is
//! at-least-once across crashes, exactly-once otherwise.
//!
//! **What is not sent.** A row whose channel was deleted, disabled, or
//! changed kind since it was queued is `cancelled` with the reason (no
//! attempt). A refusal by the SSRF guard or an unusable configuration (bad
//! sender address) fails the row at once: retrying cannot help. The outbox
//! skips nothing else: a message it has claimed is sent even when its
//! incident was acknowledged or resolved since the step was queued (it was
//! due when the step ran; its acknowledge link then says there is nothing
//! to do). Acknowledging an incident cancels its escalation rows that are
//! still queued and not leased (`incidents::model::stop_escalation`).
//!
//! **Runbook notifications** go to webhook, Slack and Teams channels whose
//! rules take the step's severity; e-mail and SMS channels address people,
//! and a runbook step names none, so they are left out.

pub mod acklink;
pub mod api;
pub mod error;
pub mod guard;
pub mod incident;
pub mod outbox;
pub mod send;
pub mod store;

use std::sync::{Arc, OnceLock};

use opsdeck_wire::Severity;
use sqlx::PgConnection;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use utoipa_axum::router::OpenApiRouter;

use crate::config::Settings;
use crate::oncall::Recipient;
use crate::state::AppState;

/// What an escalation step is about (the incident as it is when queued).
#[derive(Debug, Clone)]
pub struct IncidentMessage {
    pub incident_id: i64,
    pub severity: Severity,
    pub title: String,
    /// Plain text: status, services, summary.
    pub body: String,
}

fn wake_handle() -> &'static Arc<Notify> {
    static WAKE: OnceLock<Arc<Notify>> = OnceLock::new();
    WAKE.get_or_init(|| Arc::new(Notify::new()))
}

/// Wakes this process's outbox (after queuing rows). Waking before the
/// rows are committed is harmless: the next poll finds them.
pub fn wake() {
    wake_handle().notify_one();
}

/// The panel's public base URL for links in messages: the configured
/// public origin, else `http://<listen address>`.
pub fn public_base(settings: &Settings) -> String {
    settings
        .public_origin
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.listen))
}

/// An enabled channel whose rules take a severity.
struct RuleChannel {
    id: i64,
    name: String,
    kind: String,
    url: Option<String>,
}

async fn channels_for(
    conn: &mut PgConnection,
    severity: Severity,
) -> sqlx::Result<Vec<RuleChannel>> {
    let rows = sqlx::query!(
        "SELECT c.id, c.name, c.kind, c.config->>'url' AS url
         FROM channels c JOIN channel_rules r ON r.channel_id = c.id
         WHERE c.enabled AND r.severity = $1
         ORDER BY c.name",
        severity.level()
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| RuleChannel {
            id: r.id,
            name: r.name,
            kind: r.kind,
            url: r.url,
        })
        .collect())
}

/// "Jane Smith @jane, Bob Jones" (chat handles where known, with one `@`).
fn recipients_line(recipients: &[Recipient]) -> String {
    recipients
        .iter()
        .map(|r| match r.chat_handle.as_deref().map(str::trim) {
            Some(h) if !h.is_empty() => format!("{} @{}", r.name, h.trim_start_matches('@')),
            _ => r.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Queues the messages of one escalation step in the outbox, in the
/// caller's transaction: for each enabled channel with a rule for the
/// severity, one message per recipient with an address (e-mail, SMS) or one
/// per step (webhook, Slack, Teams; naming the recipients). Idempotent per
/// (incident, level, channel, person). Returns the queued notification ids.
pub async fn enqueue_escalation(
    conn: &mut PgConnection,
    msg: &IncidentMessage,
    level: i32,
    recipients: &[Recipient],
) -> anyhow::Result<Vec<i64>> {
    let subject = format!(
        "[{}] #{} {}",
        msg.severity.as_str(),
        msg.incident_id,
        msg.title
    );
    let mut ids = Vec::new();
    for ch in channels_for(conn, msg.severity).await? {
        // (person_id, person_name, address, body)
        let mut rows: Vec<(Option<i64>, Option<String>, String, String)> = Vec::new();
        match ch.kind.as_str() {
            "email" | "sms" => {
                for r in recipients {
                    let address = if ch.kind == "email" {
                        r.email.as_deref()
                    } else {
                        r.phone.as_deref()
                    };
                    if let Some(a) = address.map(str::trim).filter(|a| !a.is_empty()) {
                        rows.push((
                            Some(r.person_id),
                            Some(r.name.clone()),
                            a.to_owned(),
                            msg.body.clone(),
                        ));
                    }
                }
            }
            _ => {
                let mut body = msg.body.trim_end().to_owned();
                if !recipients.is_empty() {
                    body.push_str(&format!(
                        "\n\nEscalation level {}: notifying {}",
                        level + 1,
                        recipients_line(recipients)
                    ));
                }
                let host = ch.url.as_deref().map(guard::host_of).unwrap_or_default();
                rows.push((None, None, host, body));
            }
        }
        for (person_id, person_name, address, body) in rows {
            let id: Option<i64> = sqlx::query_scalar!(
                "INSERT INTO notifications (kind, incident_id, level, channel_id, channel_name,
                                            channel_kind, person_id, person_name, address,
                                            severity, subject, body)
                 VALUES ('escalation', $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (incident_id, level, channel_id, coalesce(person_id, 0))
                     WHERE kind = 'escalation' DO NOTHING
                 RETURNING id",
                msg.incident_id,
                level,
                ch.id,
                &ch.name,
                &ch.kind,
                person_id,
                person_name,
                address,
                msg.severity.level(),
                &subject,
                body
            )
            .fetch_optional(&mut *conn)
            .await?;
            ids.extend(id);
        }
    }
    // The caller wakes the sender after committing (a claim before the
    // commit would not see these rows).
    Ok(ids)
}

/// A runbook notification queued on a channel.
#[derive(Debug, Clone)]
pub struct Queued {
    pub id: i64,
    pub channel: String,
    pub kind: String,
}

/// Queues a runbook `notify` message on every enabled webhook, Slack and
/// Teams channel whose rules take `severity`, in the caller's transaction.
pub async fn enqueue_runbook(
    conn: &mut PgConnection,
    run_id: i64,
    severity: Severity,
    subject: &str,
    body: &str,
) -> anyhow::Result<Vec<Queued>> {
    enqueue_notice(conn, Some(run_id), severity, subject, body).await
}

/// Queues a message that belongs to no incident (a runbook's, or one of
/// the panel's own notices such as "an image update is available", with
/// `run_id` `None`) on every enabled webhook, Slack and Teams channel whose
/// rules take `severity`, in the caller's transaction. The caller wakes the
/// sender after committing.
pub async fn enqueue_notice(
    conn: &mut PgConnection,
    run_id: Option<i64>,
    severity: Severity,
    subject: &str,
    body: &str,
) -> anyhow::Result<Vec<Queued>> {
    let mut queued = Vec::new();
    for ch in channels_for(conn, severity).await? {
        if !matches!(ch.kind.as_str(), "webhook" | "slack" | "teams") {
            continue;
        }
        let host = ch.url.as_deref().map(guard::host_of).unwrap_or_default();
        let id: i64 = sqlx::query_scalar!(
            "INSERT INTO notifications (kind, run_id, channel_id, channel_name, channel_kind,
                                        address, severity, subject, body)
             VALUES ('runbook', $1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            run_id,
            ch.id,
            &ch.name,
            &ch.kind,
            host,
            severity.level(),
            subject,
            body
        )
        .fetch_one(&mut *conn)
        .await?;
        queued.push(Queued {
            id,
            channel: ch.name,
            kind: ch.kind,
        });
    }
    // The caller wakes the sender after committing.
    Ok(queued)
}

/// The outbox sender's registry tasks (claims due notifications with a
/// lease, sends, records attempts, retries with backoff).
pub fn tasks(state: AppState, stop: CancellationToken) -> Vec<crate::jobs::Task> {
    outbox::tasks(state, wake_handle().clone(), stop)
}

pub fn router() -> OpenApiRouter<AppState> {
    api::router()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recipients_are_named_with_their_handles() {
        let r = |name: &str, handle: Option<&str>| Recipient {
            person_id: 1,
            name: name.into(),
            email: None,
            phone: None,
            chat_handle: handle.map(str::to_owned),
            via: "person".into(),
        };
        assert_eq!(
            recipients_line(&[
                r("Jane", Some("@jane")),
                r("Bob", Some("bob")),
                r("Al", Some(" "))
            ]),
            "Jane @jane, Bob @bob, Al"
        );
    }
}
