//! Notification channels and the outbox: webhook (HMAC-signed), Slack- and
//! Teams-compatible webhooks, e-mail over SMTP, an SMS/phone gateway; signed
//! single-use acknowledge links; outbound targets checked against SSRF.

use sqlx::PgConnection;
use utoipa_axum::router::OpenApiRouter;

use crate::oncall::Recipient;
use crate::state::AppState;
use opsdeck_wire::Severity;

/// What an escalation step is about (the incident as it is when queued).
#[derive(Debug, Clone)]
pub struct IncidentMessage {
    pub incident_id: i64,
    pub severity: Severity,
    pub title: String,
    /// Plain text: status, services, summary.
    pub body: String,
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
    let _ = (conn, msg, level, recipients);
    todo!("notify::enqueue_escalation")
}

/// Starts the outbox sender (claims due notifications with a lease, sends,
/// records attempts, retries with backoff). Ends when `closed` completes.
pub fn start(state: AppState, closed: impl std::future::Future<Output = ()> + Send + 'static) {
    let _ = (state, closed);
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
