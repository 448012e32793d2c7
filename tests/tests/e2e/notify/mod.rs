//! Notification channels and the outbox, against real parts only: webhook
//! receivers in process (`opsdeck_e2e::receiver`), a real SMTP server
//! (aiosmtpd, `opsdeck_e2e::smtp`), real `opsdeck serve` processes for the
//! exactly-once test.
//!
//! Incidents are rows written with SQL (the incidents API is not what is
//! tested here); escalation steps are queued with
//! `opsdeck::notify::enqueue_escalation`, as the escalation engine does.
//! The servers run with the escalation and schedule tickers off, so only
//! the outbox acts.
//!
//! Backoff is real (5 s, 15 s, …): tests that go through retries skip the
//! waits by moving `next_attempt_at` to `now()` in SQL once a failed attempt
//! is recorded, instead of waiting minutes.

use std::collections::BTreeMap;
use std::time::Duration;

use hmac::{Hmac, Mac};
use opsdeck::notify::{enqueue_escalation, IncidentMessage};
use opsdeck::oncall::Recipient;
use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::receiver::Receiver;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::smtp::SmtpSink;
use opsdeck_e2e::util::{expect_error, ok_json, poll};
use opsdeck_wire::{
    AuditPage, Channel, ChannelTestResult, Notification, Outcome, Role, RunStatus, Severity,
};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::{PgPool, Row};

mod ack_links;
mod api;
mod email;
mod exactly_once;
mod outbox;
mod runbooks;
mod test_sends;

const WAIT: Duration = Duration::from_secs(30);

async fn quiet() -> TestServer {
    TestServer::start_with(|s| {
        s.schedules = false;
        s.escalations = false;
    })
    .await
}

async fn add_channel(admin: &Api, body: Value) -> Channel {
    ok_json(
        admin.post("/api/v1/channels", &body).await,
        "create channel",
    )
    .await
}

async fn test_send(admin: &Api, id: i64, to: Option<&str>) -> ChannelTestResult {
    ok_json(
        admin
            .post(&format!("/api/v1/channels/{id}/test"), &json!({ "to": to }))
            .await,
        "test send",
    )
    .await
}

/// A triggered incident, written directly.
async fn incident(pool: &PgPool, title: &str, severity: Severity) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO incidents (title, severity, summary, created_by) VALUES ($1, $2, $3, 'test')
         RETURNING id",
    )
    .bind(title)
    .bind(severity.level())
    .bind(format!("{title}: summary"))
    .fetch_one(pool)
    .await
    .expect("incident")
}

async fn person(
    pool: &PgPool,
    name: &str,
    email: Option<&str>,
    phone: Option<&str>,
    handle: Option<&str>,
) -> Recipient {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO people (name, email, phone, chat_handle) VALUES ($1, $2, $3, $4) RETURNING id",
    )
    .bind(name)
    .bind(email)
    .bind(phone)
    .bind(handle)
    .fetch_one(pool)
    .await
    .expect("person");
    Recipient {
        person_id: id,
        name: name.into(),
        email: email.map(str::to_owned),
        phone: phone.map(str::to_owned),
        chat_handle: handle.map(str::to_owned),
        via: "person".into(),
    }
}

/// Queues an escalation step in its own transaction (as the escalation
/// engine does) and returns the queued ids.
async fn escalate(
    pool: &PgPool,
    incident_id: i64,
    severity: Severity,
    title: &str,
    level: i32,
    recipients: &[Recipient],
) -> Vec<i64> {
    let mut tx = pool.begin().await.expect("tx");
    let ids = enqueue_escalation(
        &mut tx,
        &IncidentMessage {
            incident_id,
            severity,
            title: title.into(),
            body: format!("Status: triggered\nSummary: {title}"),
        },
        level,
        recipients,
    )
    .await
    .expect("enqueue_escalation");
    tx.commit().await.expect("commit");
    ids
}

/// (status, attempts, last_error) of a notification.
async fn state_of(pool: &PgPool, id: i64) -> (String, i32, Option<String>) {
    let r = sqlx::query("SELECT status, attempts, last_error FROM notifications WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .expect("notification");
    (r.get("status"), r.get("attempts"), r.get("last_error"))
}

async fn wait_status(pool: &PgPool, id: i64, want: &str) -> (String, i32, Option<String>) {
    poll(WAIT, &format!("notification {id} {want}"), async || {
        let s = state_of(pool, id).await;
        if s.0 == want {
            Ok(s)
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await
}

/// (attempt, outcome, detail) rows of a notification.
async fn attempts(pool: &PgPool, id: i64) -> Vec<(i32, String, String)> {
    sqlx::query(
        "SELECT attempt, outcome, detail FROM notification_attempts
         WHERE notification_id = $1 ORDER BY attempt",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("attempts")
    .iter()
    .map(|r| (r.get("attempt"), r.get("outcome"), r.get("detail")))
    .collect()
}

/// Messages of a subject's timeline events of one kind.
async fn timeline(pool: &PgPool, subject: &str, id: i64, kind: &str) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT message FROM timeline_events WHERE subject_type = $1 AND subject_id = $2
         AND kind LIKE $3 ORDER BY id",
    )
    .bind(subject)
    .bind(id)
    .bind(kind)
    .fetch_all(pool)
    .await
    .expect("timeline")
}

/// The token of an acknowledge URL.
fn token_of(url: &str) -> String {
    url.split("/ack/")
        .nth(1)
        .unwrap_or_else(|| panic!("not an acknowledge URL: {url}"))
        .to_owned()
}

fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&sig).is_ok()
}

async fn audit(admin: &Api, action: &str) -> AuditPage {
    admin
        .json(&format!("/api/v1/audit?action={action}&limit=200"))
        .await
}
