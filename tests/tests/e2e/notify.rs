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
use opsdeck_wire::{
    AuditPage, Channel, ChannelTestResult, Notification, Outcome, Role, RunStatus, Severity,
};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use sqlx::{PgPool, Row};

use crate::util::{expect_error, ok_json, poll};

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

// ---------------------------------------------------------------------- API

#[tokio::test]
async fn channels_are_validated_audited_and_admin_only() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    let hook = rx.url("/hooks/T000/B000/credential-path");

    // Validation at the boundary, one field named per message.
    for (body, field) in [
        (
            json!({"name": "x", "kind": "pager", "config": {"url": hook}}),
            "kind",
        ),
        (
            json!({"name": "", "kind": "webhook", "config": {"url": hook}}),
            "name",
        ),
        (json!({"name": "x", "kind": "webhook", "config": {}}), "url"),
        (
            json!({"name": "x", "kind": "slack", "config": {"url": "file:///etc/passwd"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "ftp://example.com/x"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "http://user:pw@127.0.0.1/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "http://169.254.169.254/latest/meta-data/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "teams", "config": {"url": "http://[fe80::1]/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "sms", "config": {"url": "http://[::ffff:169.254.169.254]/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "webhook", "config": {"url": "http://metadata.google.internal/computeMetadata/v1/"}}),
            "url",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"from": "ops@example.com"}}),
            "smtp_host",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"smtp_host": "169.254.169.254", "from": "ops@example.com"}}),
            "smtp_host",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"smtp_host": "127.0.0.1", "smtp_tls": "ssl", "from": "ops@example.com"}}),
            "smtp_tls",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"smtp_host": "127.0.0.1", "from": "not an address"}}),
            "from",
        ),
        (
            json!({"name": "x", "kind": "email", "config": {"smtp_host": "127.0.0.1"}}),
            "from",
        ),
    ] {
        let msg = expect_error(admin.post("/api/v1/channels", &body).await, 400).await;
        assert!(
            msg.starts_with(field),
            "{body}: expected a message about {field}, got {msg}"
        );
        assert!(
            !msg.contains("credential-path"),
            "messages never echo the URL path: {msg}"
        );
    }
    let msg = expect_error(
        admin
            .post(
                "/api/v1/channels",
                &json!({"name": "x", "kind": "webhook", "config": {"url": "http://169.254.169.254/"}}),
            )
            .await,
        400,
    )
    .await;
    assert!(msg.contains("metadata"), "{msg}");

    // Loopback is accepted (self-hosted receivers live there).
    let c = add_channel(
        &admin,
        json!({"name": "ops-hook", "kind": "webhook", "config": {"url": hook},
               "secret": "s3cret-hmac-key", "severities": ["P2", "P1", "P2"]}),
    )
    .await;
    assert_eq!(c.kind, "webhook");
    assert!(c.has_secret && c.enabled);
    assert_eq!(c.severities, vec![Severity::P1, Severity::P2]);
    let text = admin
        .get(&format!("/api/v1/channels/{}", c.id))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        !text.contains("s3cret"),
        "the secret is never returned: {text}"
    );
    assert!(text.contains("\"has_secret\":true"), "{text}");
    let mail = add_channel(
        &admin,
        json!({"name": "ops-mail", "kind": "email",
               "config": {"smtp_host": "127.0.0.1", "smtp_tls": "none", "from": "Opsdeck <opsdeck@example.com>"},
               "severities": ["P1"]}),
    )
    .await;
    assert_eq!(
        mail.config.smtp_port,
        Some(25),
        "the port defaults by TLS mode"
    );
    assert_eq!(mail.config.url, None);

    // Unique names.
    expect_error(
        admin
            .post(
                "/api/v1/channels",
                &json!({"name": "ops-hook", "kind": "slack", "config": {"url": hook}}),
            )
            .await,
        409,
    )
    .await;

    // Update: the secret is kept unless given, "" clears it.
    let cid = c.id;
    let put = |body: Value| {
        let admin = admin.clone();
        async move {
            ok_json::<Channel>(
                admin
                    .send(Method::PUT, &format!("/api/v1/channels/{cid}"), &body)
                    .await,
                "update channel",
            )
            .await
        }
    };
    let kept = put(
        json!({"name": "ops-hook", "kind": "webhook", "config": {"url": hook},
                          "enabled": false, "severities": ["P3"]}),
    )
    .await;
    assert!(kept.has_secret && !kept.enabled);
    assert_eq!(kept.severities, vec![Severity::P3]);
    let rules: Vec<i16> =
        sqlx::query_scalar("SELECT severity FROM channel_rules WHERE channel_id = $1")
            .bind(c.id)
            .fetch_all(&s.pool)
            .await
            .unwrap();
    assert_eq!(rules, vec![3], "severities are channel_rules rows");
    let cleared = put(
        json!({"name": "ops-hook", "kind": "webhook", "config": {"url": hook},
                             "secret": "", "severities": ["P3"]}),
    )
    .await;
    assert!(!cleared.has_secret);
    expect_error(
        admin
            .send(
                Method::PUT,
                &format!("/api/v1/channels/{}", c.id),
                &json!({"name": "ops-hook", "kind": "webhook", "config": {"url": "gopher://x"}}),
            )
            .await,
        400,
    )
    .await;
    expect_error(
        admin
            .send(
                Method::PUT,
                "/api/v1/channels/999999",
                &json!({"name": "nope", "kind": "webhook", "config": {"url": hook}}),
            )
            .await,
        404,
    )
    .await;

    // Roles: channels are admin-only; the outbox list is for viewers too.
    for role in [Role::Operator, Role::Viewer] {
        let api = s.user(role).await;
        expect_error(api.get("/api/v1/channels").await, 403).await;
        expect_error(api.get(&format!("/api/v1/channels/{}", c.id)).await, 403).await;
        expect_error(
            api.post(
                "/api/v1/channels",
                &json!({"name": "sneaky", "kind": "webhook", "config": {"url": hook}}),
            )
            .await,
            403,
        )
        .await;
        expect_error(
            api.send(
                Method::PUT,
                &format!("/api/v1/channels/{}", c.id),
                &json!({"name": "x", "kind": "webhook", "config": {"url": hook}}),
            )
            .await,
            403,
        )
        .await;
        expect_error(api.delete(&format!("/api/v1/channels/{}", c.id)).await, 403).await;
        expect_error(
            api.post(&format!("/api/v1/channels/{}/test", c.id), &json!({}))
                .await,
            403,
        )
        .await;
        let _: Vec<Notification> = api.json("/api/v1/notifications").await;
    }
    assert!(
        rx.requests().is_empty(),
        "nothing was sent by refused requests"
    );

    // Delete.
    let res = admin.delete(&format!("/api/v1/channels/{}", mail.id)).await;
    assert_eq!(res.status(), 204);
    expect_error(
        admin.get(&format!("/api/v1/channels/{}", mail.id)).await,
        404,
    )
    .await;
    expect_error(
        admin.delete(&format!("/api/v1/channels/{}", mail.id)).await,
        404,
    )
    .await;
    let list: Vec<Channel> = admin.json("/api/v1/channels").await;
    assert_eq!(list.len(), 1);

    // Audit: every change, never the URL or the secret.
    let page = audit(&admin, "channel.").await;
    let actions: Vec<&str> = page.entries.iter().map(|e| e.action.as_str()).collect();
    for want in ["channel.create", "channel.update", "channel.delete"] {
        assert!(actions.contains(&want), "{want} in {actions:?}");
    }
    let all = serde_json::to_string(&page.entries).unwrap();
    assert!(
        !all.contains("credential-path") && !all.contains("s3cret"),
        "{all}"
    );
    assert!(page
        .entries
        .iter()
        .filter(|e| e.action == "channel.create")
        .all(|e| e.params["severities"].is_array() && e.params["kind"].is_string()));
    let unaudited = audit(&admin, "request.unaudited").await;
    assert!(unaudited.entries.is_empty(), "{:?}", unaudited.entries);
}

#[tokio::test]
async fn the_link_local_setting_lifts_the_refusal_at_save_time() {
    let s = TestServer::start_with(|s| {
        s.schedules = false;
        s.escalations = false;
        s.notify_allow_link_local = true;
    })
    .await;
    let admin = s.user(Role::Admin).await;
    add_channel(
        &admin,
        json!({"name": "metadata-proxy", "kind": "webhook",
               "config": {"url": "http://169.254.169.254/hook"}}),
    )
    .await;
    // Never the unspecified address or other schemes.
    expect_error(
        admin
            .post(
                "/api/v1/channels",
                &json!({"name": "x", "kind": "webhook", "config": {"url": "http://0.0.0.0/"}}),
            )
            .await,
        400,
    )
    .await;
}

// ------------------------------------------------------------- test sends

#[tokio::test]
async fn test_sends_reach_webhook_slack_teams_and_sms_receivers() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    let secret = "whsec-3f8a9b";

    let hook = add_channel(
        &admin,
        json!({"name": "hook", "kind": "webhook", "config": {"url": rx.url("/hook")}, "secret": secret}),
    )
    .await;
    let r = test_send(&admin, hook.id, None).await;
    assert!(r.ok, "{r:?}");
    let req = &rx.wait_for("/hook", 1, WAIT).await[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.header("content-type"), Some("application/json"));
    let ts = req.header("x-opsdeck-timestamp").expect("timestamp header");
    let sig = req.header("x-opsdeck-signature").expect("signature header");
    assert!(
        verify_signature(secret, ts, &req.body, sig),
        "the signature verifies with the secret"
    );
    assert!(!verify_signature("wrong", ts, &req.body, sig));
    let age = chrono::Utc::now().timestamp() - ts.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "timestamp is now: {age}");
    let body = req.json();
    assert_eq!(body["event"], "test");
    assert!(body["incident"].is_null() && body["ack_url"].is_null());
    assert!(body["subject"].as_str().unwrap().contains("hook"));
    assert!(body["notification_id"].as_i64().is_some());

    // Without a secret: no signature header.
    let plain = add_channel(
        &admin,
        json!({"name": "plain", "kind": "webhook", "config": {"url": rx.url("/plain")}}),
    )
    .await;
    assert!(test_send(&admin, plain.id, None).await.ok);
    let req = &rx.wait_for("/plain", 1, WAIT).await[0];
    assert!(req.header("x-opsdeck-signature").is_none());

    let slack = add_channel(
        &admin,
        json!({"name": "chat", "kind": "slack", "config": {"url": rx.url("/slack")}}),
    )
    .await;
    assert!(test_send(&admin, slack.id, None).await.ok);
    let v = rx.wait_for("/slack", 1, WAIT).await[0].json();
    assert!(v["text"].as_str().unwrap().contains("chat"), "{v}");
    assert_eq!(v["blocks"][0]["type"], "section");
    assert_eq!(v["blocks"][0]["text"]["type"], "mrkdwn");

    let teams = add_channel(
        &admin,
        json!({"name": "msteams", "kind": "teams", "config": {"url": rx.url("/teams")}}),
    )
    .await;
    assert!(test_send(&admin, teams.id, None).await.ok);
    let v = rx.wait_for("/teams", 1, WAIT).await[0].json();
    assert_eq!(v["@type"], "MessageCard");
    assert!(v["themeColor"].as_str().is_some_and(|c| c.len() == 6));
    assert!(v["title"].as_str().unwrap().contains("msteams"));

    let sms = add_channel(
        &admin,
        json!({"name": "pager", "kind": "sms", "config": {"url": rx.url("/sms")}, "secret": "gw-token-77"}),
    )
    .await;
    let msg = expect_error(
        admin
            .post(&format!("/api/v1/channels/{}/test", sms.id), &json!({}))
            .await,
        400,
    )
    .await;
    assert!(msg.starts_with("to"), "{msg}");
    assert!(test_send(&admin, sms.id, Some("+49 151 2345678")).await.ok);
    let req = &rx.wait_for("/sms", 1, WAIT).await[0];
    assert_eq!(req.header("authorization"), Some("Bearer gw-token-77"));
    let v = req.json();
    assert_eq!(v["to"], "+49 151 2345678");
    assert!(v["message"].as_str().unwrap().contains("test"), "{v}");

    // A failing receiver: the result says so (host, status), no URL path.
    rx.set_status(503);
    let r = test_send(&admin, hook.id, None).await;
    assert!(!r.ok);
    assert!(
        r.detail.contains("HTTP 503") && r.detail.contains("127.0.0.1"),
        "{r:?}"
    );
    assert!(!r.detail.contains("/hook"), "{r:?}");

    // Each test is a recorded notification with its attempt, and audited.
    let rows: Vec<Notification> = admin.json("/api/v1/notifications").await;
    let tests: Vec<_> = rows.iter().filter(|n| n.kind == "test").collect();
    assert_eq!(tests.len(), 6, "{rows:?}");
    assert_eq!(tests[0].status, "failed");
    assert!(tests[1..]
        .iter()
        .all(|n| n.status == "sent" && n.attempts == 1));
    for n in &tests {
        assert_eq!(attempts(&s.pool, n.id).await.len(), 1);
    }
    let page = audit(&admin, "channel.test").await;
    assert_eq!(page.entries.len(), 6);
    assert_eq!(page.entries[0].outcome, Outcome::Failure);
    let all = serde_json::to_string(&page.entries).unwrap();
    assert!(!all.contains("gw-token-77") && !all.contains(secret));
}

#[tokio::test]
async fn escalation_messages_name_people_and_carry_acknowledge_links() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    for (name, kind, path) in [
        ("hook", "webhook", "/hook"),
        ("chat", "slack", "/slack"),
        ("msteams", "teams", "/teams"),
        ("pager", "sms", "/sms"),
    ] {
        add_channel(
            &admin,
            json!({"name": name, "kind": kind, "config": {"url": rx.url(path)}, "severities": ["P1"]}),
        )
        .await;
    }
    // A P2-only channel gets nothing for a P1.
    add_channel(
        &admin,
        json!({"name": "p2-only", "kind": "webhook", "config": {"url": rx.url("/p2")}, "severities": ["P2"]}),
    )
    .await;
    let jane = person(
        &s.pool,
        "Jane Smith",
        None,
        Some("+15550001"),
        Some("@jane"),
    )
    .await;
    let bob = person(&s.pool, "Bob Jones", None, None, None).await;
    let id = incident(&s.pool, "Database down", Severity::P1).await;
    let ids = escalate(&s.pool, id, Severity::P1, "Database down", 0, &[jane, bob]).await;
    // webhook, slack, teams: one each; sms: one for Jane (Bob has no phone).
    assert_eq!(ids.len(), 4, "{ids:?}");
    for n in &ids {
        wait_status(&s.pool, *n, "sent").await;
    }

    let v = rx.wait_for("/hook", 1, WAIT).await[0].json();
    assert_eq!(v["event"], "incident.escalation");
    assert_eq!(v["incident"]["id"], id);
    assert_eq!(v["incident"]["title"], "Database down");
    assert_eq!(v["incident"]["severity"], "P1");
    assert_eq!(v["incident"]["status"], "triggered");
    assert!(v["incident"]["url"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/incidents/{id}")));
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("Jane Smith @jane, Bob Jones"),
        "{v}"
    );
    assert!(v["ack_url"].as_str().unwrap().contains("/ack/"));

    let v = rx.wait_for("/slack", 1, WAIT).await[0].json();
    assert!(v["text"].as_str().unwrap().contains("@jane"), "{v}");
    let button = &v["blocks"][1]["elements"][0];
    assert_eq!(button["text"]["text"], "Acknowledge");
    assert!(button["url"].as_str().unwrap().contains("/ack/"));

    let v = rx.wait_for("/teams", 1, WAIT).await[0].json();
    assert_eq!(v["@type"], "MessageCard");
    assert_eq!(v["themeColor"], "991b1b", "P1 colour");
    assert_eq!(v["potentialAction"][0]["@type"], "OpenUri");
    assert_eq!(v["potentialAction"][0]["name"], "Acknowledge");
    assert!(v["potentialAction"][0]["targets"][0]["uri"]
        .as_str()
        .unwrap()
        .contains("/ack/"));

    let v = rx.wait_for("/sms", 1, WAIT).await[0].json();
    assert_eq!(v["to"], "+15550001");
    assert!(v["message"].as_str().unwrap().contains("Database down"));
    assert!(v["message"].as_str().unwrap().contains("/ack/"));
    assert!(rx.requests_to("/p2").is_empty());

    // Each message minted its own link; the timeline says who got what.
    let links: i64 = sqlx::query_scalar("SELECT count(*) FROM ack_links WHERE incident_id = $1")
        .bind(id)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(links, 4);
    let events = timeline(&s.pool, "incident", id, "notification").await;
    assert_eq!(events.len(), 4, "{events:?}");
    assert!(
        events.contains(&"Sent to Jane Smith by SMS (pager)".to_owned()),
        "{events:?}"
    );
    assert!(
        events.contains(&"Sent by Slack (chat)".to_owned()),
        "{events:?}"
    );
    let listed: Vec<Notification> = admin
        .json(&format!("/api/v1/notifications?incident_id={id}"))
        .await;
    assert_eq!(listed.len(), 4);
    assert!(listed
        .iter()
        .all(|n| n.status == "sent" && n.level == Some(0)));
    assert!(
        listed.iter().all(|n| !n.address.contains('/')),
        "addresses are hosts, never URLs: {listed:?}"
    );
}

// ------------------------------------------------------------------- e-mail

#[tokio::test]
async fn email_test_and_escalation_through_a_real_smtp_server() {
    let sink = SmtpSink::start().await;
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let mail = add_channel(
        &admin,
        json!({"name": "ops-mail", "kind": "email",
               "config": {"smtp_host": "127.0.0.1", "smtp_port": sink.port(), "smtp_tls": "none",
                          "from": "Opsdeck <opsdeck@example.com>"},
               "severities": ["P1", "P2"]}),
    )
    .await;
    let msg = expect_error(
        admin
            .post(&format!("/api/v1/channels/{}/test", mail.id), &json!({}))
            .await,
        400,
    )
    .await;
    assert!(msg.starts_with("to"), "{msg}");
    let r = test_send(&admin, mail.id, Some("oncall@example.com")).await;
    assert!(r.ok, "{r:?}");
    let got = sink.wait_for(1, WAIT).await;
    let m = &got[0];
    assert!(
        m.rcpt_to().contains("oncall@example.com"),
        "{:?}",
        m.headers
    );
    assert!(m.subject().contains("Opsdeck test notification (ops-mail)"));
    assert!(m.header("from").unwrap().contains("opsdeck@example.com"));
    assert!(m
        .part("text/plain")
        .unwrap()
        .contains("No action is needed"));

    // An escalation e-mail: multipart, HTML with the acknowledge button.
    let jane = person(&s.pool, "Jane Smith", Some("jane@example.com"), None, None).await;
    let nomail = person(&s.pool, "No Mail", None, Some("+1555"), None).await;
    let id = incident(&s.pool, "Checkout is down", Severity::P2).await;
    let ids = escalate(
        &s.pool,
        id,
        Severity::P2,
        "Checkout is down",
        0,
        &[jane, nomail],
    )
    .await;
    assert_eq!(ids.len(), 1, "one e-mail, for the person with an address");
    wait_status(&s.pool, ids[0], "sent").await;
    let got = sink.wait_for(2, WAIT).await;
    let m = &got[1];
    assert!(m.rcpt_to().contains("jane@example.com"));
    assert!(m.header("to").unwrap().contains("jane@example.com"));
    assert_eq!(m.subject(), format!("[P2] #{id} Checkout is down"));
    assert!(
        m.header("content-type")
            .unwrap()
            .starts_with("multipart/alternative"),
        "{:?}",
        m.header("content-type")
    );
    let html = m.part("text/html").expect("an HTML part");
    let text = m.part("text/plain").expect("a plain-text part");
    assert!(html.contains("Checkout is down") && html.contains("Key service degraded"));
    let ack = html
        .split("href=\"")
        .map(|h| h.split('"').next().unwrap_or_default())
        .find(|h| h.contains("/ack/"))
        .unwrap_or_else(|| panic!("no acknowledge link in {html}"))
        .to_owned();
    assert!(html.contains(&format!("/incidents/{id}")));
    assert!(text.contains(&format!("Acknowledge: {ack}")), "{text}");
    // The link works: the page shows the incident.
    let page = reqwest::get(s.url(&format!("/ack/{}", token_of(&ack))))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Checkout is down"));
    let events = timeline(&s.pool, "incident", id, "notification").await;
    assert_eq!(
        events,
        vec!["Sent to Jane Smith by e-mail (ops-mail)".to_owned()]
    );

    // A server that is not there: the test send says so.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let dead = add_channel(
        &admin,
        json!({"name": "dead-mail", "kind": "email",
               "config": {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_tls": "none",
                          "from": "opsdeck@example.com"}}),
    )
    .await;
    let r = test_send(&admin, dead.id, Some("x@example.com")).await;
    assert!(!r.ok && r.detail.contains("127.0.0.1"), "{r:?}");
}

// ------------------------------------------------------------------- outbox

#[tokio::test]
async fn failed_sends_are_retried_with_backoff_then_recorded_as_sent() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    rx.answer_next(&[500, 500]);
    add_channel(
        &admin,
        json!({"name": "chat", "kind": "slack", "config": {"url": rx.url("/slack")}, "severities": ["P2"]}),
    )
    .await;
    let id = incident(&s.pool, "Queue backlog", Severity::P2).await;
    let ids = escalate(&s.pool, id, Severity::P2, "Queue backlog", 0, &[]).await;
    let n = ids[0];

    // The first attempt fails and the next one is 5 s later.
    let first = poll(WAIT, "first attempt recorded", async || {
        let a = attempts(&s.pool, n).await;
        if a.len() == 1 {
            Ok(a)
        } else {
            Err(format!("{a:?}"))
        }
    })
    .await;
    assert_eq!(first[0].1, "failed");
    assert!(first[0].2.contains("HTTP 500"), "{first:?}");
    let gap: f64 = sqlx::query_scalar(
        "SELECT extract(epoch FROM n.next_attempt_at - a.at)::float8
         FROM notifications n JOIN notification_attempts a ON a.notification_id = n.id
         WHERE n.id = $1 AND a.attempt = 1",
    )
    .bind(n)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    assert!((4.0..6.5).contains(&gap), "first backoff is 5 s, got {gap}");
    assert_eq!(state_of(&s.pool, n).await.0, "pending");

    // Skip the waits (see the module docs) until it is sent.
    poll(WAIT, "sent after retries", async || {
        sqlx::query(
            "UPDATE notifications SET next_attempt_at = now()
             WHERE id = $1 AND status = 'pending' AND lease_owner IS NULL",
        )
        .bind(n)
        .execute(&s.pool)
        .await
        .unwrap();
        let st = state_of(&s.pool, n).await;
        if st.0 == "sent" {
            Ok(st)
        } else {
            Err(format!("{st:?}"))
        }
    })
    .await;
    let a = attempts(&s.pool, n).await;
    let outcomes: Vec<&str> = a.iter().map(|x| x.1.as_str()).collect();
    assert_eq!(outcomes, vec!["failed", "failed", "sent"]);
    assert_eq!(state_of(&s.pool, n).await.1, 3);
    assert_eq!(rx.requests_to("/slack").len(), 3);
    let events = timeline(&s.pool, "incident", id, "notification").await;
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events[0].starts_with("Failed to send by Slack (chat): HTTP 500"),
        "{events:?}"
    );
    assert!(
        events[0].ends_with("retrying in 5 s (attempt 1 of 5)"),
        "{events:?}"
    );
    assert!(
        events[1].ends_with("retrying in 15 s (attempt 2 of 5)"),
        "{events:?}"
    );
    assert_eq!(events[2], "Sent by Slack (chat)");
    let last_error: Option<String> =
        sqlx::query_scalar("SELECT last_error FROM notifications WHERE id = $1")
            .bind(n)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert_eq!(last_error, None);
}

#[tokio::test]
async fn a_permanently_failing_channel_is_given_up_after_five_attempts() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    rx.set_status(500);
    add_channel(
        &admin,
        json!({"name": "broken", "kind": "webhook", "config": {"url": rx.url("/broken")}, "severities": ["P3"]}),
    )
    .await;
    let id = incident(&s.pool, "Slow dashboard", Severity::P3).await;
    let n = escalate(&s.pool, id, Severity::P3, "Slow dashboard", 0, &[]).await[0];
    let (_, tries, err) = poll(WAIT * 2, "given up", async || {
        sqlx::query(
            "UPDATE notifications SET next_attempt_at = now()
             WHERE id = $1 AND status = 'pending' AND lease_owner IS NULL",
        )
        .bind(n)
        .execute(&s.pool)
        .await
        .unwrap();
        let st = state_of(&s.pool, n).await;
        if st.0 == "failed" {
            Ok(st)
        } else {
            Err(format!("{st:?}"))
        }
    })
    .await;
    assert_eq!(tries, 5);
    assert!(err.unwrap().contains("HTTP 500"));
    assert_eq!(attempts(&s.pool, n).await.len(), 5);
    assert_eq!(rx.requests_to("/broken").len(), 5);
    let events = timeline(&s.pool, "incident", id, "notification").await;
    assert_eq!(events.len(), 5);
    assert!(
        events[3].ends_with("retrying in 2 min 15 s (attempt 4 of 5)"),
        "{events:?}"
    );
    assert_eq!(
        events[4],
        "Gave up sending by webhook (broken) after 5 attempts: HTTP 500 from 127.0.0.1"
    );
    // Nothing more happens.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rx.requests_to("/broken").len(), 5);
}

#[tokio::test]
async fn disabled_and_deleted_channels_cancel_their_queued_messages() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    let a = add_channel(
        &admin,
        json!({"name": "a", "kind": "webhook", "config": {"url": rx.url("/a")}, "severities": ["P1"]}),
    )
    .await;
    let b = add_channel(
        &admin,
        json!({"name": "b", "kind": "webhook", "config": {"url": rx.url("/b")}, "severities": ["P1"]}),
    )
    .await;
    let id = incident(&s.pool, "Disk full", Severity::P1).await;
    // Queue in the future, change the channels, then make them due.
    let mut tx = s.pool.begin().await.unwrap();
    let ids = enqueue_escalation(
        &mut tx,
        &IncidentMessage {
            incident_id: id,
            severity: Severity::P1,
            title: "Disk full".into(),
            body: String::new(),
        },
        0,
        &[],
    )
    .await
    .unwrap();
    sqlx::query(
        "UPDATE notifications SET next_attempt_at = now() + interval '1 hour' WHERE id = ANY($1)",
    )
    .bind(&ids)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    let _: Channel = ok_json(
        admin
            .send(
                Method::PUT,
                &format!("/api/v1/channels/{}", a.id),
                &json!({"name": "a", "kind": "webhook", "config": {"url": rx.url("/a")},
                        "enabled": false, "severities": ["P1"]}),
            )
            .await,
        "disable",
    )
    .await;
    assert_eq!(
        admin
            .delete(&format!("/api/v1/channels/{}", b.id))
            .await
            .status(),
        204
    );
    sqlx::query("UPDATE notifications SET next_attempt_at = now() WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&s.pool)
        .await
        .unwrap();
    let mut reasons = Vec::new();
    for n in &ids {
        let (_, tries, reason) = wait_status(&s.pool, *n, "cancelled").await;
        assert_eq!(tries, 0, "no attempt was made");
        assert!(attempts(&s.pool, *n).await.is_empty());
        reasons.push(reason.unwrap());
    }
    reasons.sort();
    assert_eq!(
        reasons,
        vec!["the channel a is disabled", "the channel b was deleted"]
    );
    assert!(rx.requests().is_empty());
}

#[tokio::test]
async fn ssrf_targets_stored_behind_the_api_are_refused_at_send_time() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    // Stored directly: the API would refuse them.
    let mut ids = BTreeMap::new();
    for (name, kind, config) in [
        (
            "meta4",
            "webhook",
            json!({"url": "http://169.254.169.254/latest/meta-data/iam/"}),
        ),
        (
            "meta6",
            "slack",
            json!({"url": "http://[fe80::1]:8080/hook"}),
        ),
        (
            "mapped",
            "teams",
            json!({"url": "http://[::ffff:169.254.169.254]/"}),
        ),
        (
            "gce",
            "webhook",
            json!({"url": "http://metadata.google.internal/computeMetadata/v1/"}),
        ),
        ("files", "sms", json!({"url": "file:///etc/passwd"})),
        (
            "smtp-meta",
            "email",
            json!({"smtp_host": "169.254.169.254", "smtp_port": 25,
                                      "smtp_tls": "none", "from": "opsdeck@example.com"}),
        ),
    ] {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO channels (name, kind, config) VALUES ($1, $2, $3) RETURNING id",
        )
        .bind(name)
        .bind(kind)
        .bind(config)
        .fetch_one(&s.pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO channel_rules (severity, channel_id) VALUES (1, $1)")
            .bind(id)
            .execute(&s.pool)
            .await
            .unwrap();
        ids.insert(name, id);
    }
    // The test button refuses before any connection.
    let r = test_send(&admin, ids["meta4"], None).await;
    assert!(!r.ok);
    assert!(
        r.detail.starts_with("refused:") && r.detail.contains("169.254.169.254"),
        "{r:?}"
    );
    let r = test_send(&admin, ids["smtp-meta"], Some("x@example.com")).await;
    assert!(!r.ok && r.detail.starts_with("refused:"), "{r:?}");

    // The outbox refuses each (failed at once: retrying cannot help).
    let jane = person(
        &s.pool,
        "Jane",
        Some("jane@example.com"),
        Some("+1555"),
        None,
    )
    .await;
    let inc = incident(&s.pool, "Metadata", Severity::P1).await;
    let queued = escalate(&s.pool, inc, Severity::P1, "Metadata", 0, &[jane]).await;
    assert_eq!(queued.len(), 6);
    for n in queued {
        let (_, tries, err) = wait_status(&s.pool, n, "failed").await;
        let err = err.unwrap();
        assert_eq!(tries, 1, "not retried: {err}");
        assert!(err.starts_with("refused:"), "{err}");
        let a = attempts(&s.pool, n).await;
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].1, "failed");
        assert!(
            !err.contains("/latest/meta-data") && !err.contains("computeMetadata"),
            "{err}"
        );
    }
    let duration: i32 = sqlx::query_scalar(
        "SELECT max(a.duration_ms) FROM notification_attempts a
         JOIN notifications n ON n.id = a.notification_id WHERE n.incident_id = $1",
    )
    .bind(inc)
    .fetch_one(&s.pool)
    .await
    .unwrap();
    assert!(duration < 1000, "refused before connecting ({duration} ms)");
    let events = timeline(&s.pool, "incident", inc, "notification").await;
    assert_eq!(events.len(), 6);
    assert!(
        events
            .iter()
            .all(|e| e.contains("refused") && e.ends_with("(not retried)")),
        "{events:?}"
    );
}

// -------------------------------------------------------------- ack links

/// Queues a P1 escalation to the SMS gateway on `rx` (a personal message:
/// the link acknowledges as that person) and returns its acknowledge token.
async fn ack_token(
    s: &TestServer,
    rx: &Receiver,
    incident: i64,
    person: &Recipient,
    level: i32,
) -> String {
    let before = rx.requests_to("/sms").len();
    let ids = escalate(
        &s.pool,
        incident,
        Severity::P1,
        "Payments down",
        level,
        std::slice::from_ref(person),
    )
    .await;
    assert_eq!(ids.len(), 1);
    let got = rx.wait_for("/sms", before + 1, WAIT).await;
    let text = got[before].json()["message"]
        .as_str()
        .expect("message")
        .to_owned();
    let url = text
        .split("Ack: ")
        .nth(1)
        .unwrap_or_else(|| panic!("no acknowledge URL in {text}"));
    token_of(url.trim())
}

async fn ack_get(s: &TestServer, token: &str) -> (u16, String) {
    let res = reqwest::get(s.url(&format!("/ack/{token}"))).await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The confirmation form's POST: urlencoded, no cookie, no JSON.
async fn ack_post(s: &TestServer, token: &str) -> (u16, String) {
    let res = reqwest::Client::new()
        .post(s.url(&format!("/ack/{token}")))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", s.base.clone())
        .body("confirm=yes")
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

async fn incident_status(pool: &PgPool, id: i64) -> (String, Option<String>) {
    let r = sqlx::query("SELECT status, acknowledged_by FROM incidents WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap();
    (r.get("status"), r.get("acknowledged_by"))
}

#[tokio::test]
async fn an_acknowledge_link_confirms_on_get_and_acknowledges_once_on_post() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    add_channel(
        &admin,
        json!({"name": "pager", "kind": "sms", "config": {"url": rx.url("/sms")}, "severities": ["P1"]}),
    )
    .await;
    let jane = person(&s.pool, "Jane Smith", None, Some("+15550001"), None).await;
    let id = incident(&s.pool, "Payments down", Severity::P1).await;
    let token = ack_token(&s, &rx, id, &jane, 0).await;

    // GET shows the confirmation and changes nothing (scanners fetch links).
    for _ in 0..2 {
        let (status, html) = ack_get(&s, &token).await;
        assert_eq!(status, 200, "{html}");
        assert!(
            html.contains("Payments down") && html.contains("P1"),
            "{html}"
        );
        assert!(html.contains("data-state=\"confirm\""), "{html}");
        assert!(html.contains(&format!("action=\"/ack/{token}\"")), "{html}");
        assert!(html.contains("method=\"post\""));
    }
    assert_eq!(incident_status(&s.pool, id).await.0, "triggered");

    // POST acknowledges (without a session or JSON).
    let (status, html) = ack_post(&s, &token).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-state=\"acknowledged\""), "{html}");
    assert!(html.contains("Jane Smith"));
    assert_eq!(
        incident_status(&s.pool, id).await,
        (
            "acknowledged".to_owned(),
            Some("Jane Smith (ack link)".to_owned())
        )
    );
    let events = timeline(&s.pool, "incident", id, "%acknowledged%").await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0].contains("Jane Smith"), "{events:?}");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE target = $1 AND action LIKE 'incident.ack%'",
    )
    .bind(format!("incident:{id}"))
    .fetch_one(&s.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1);

    // Single use.
    let (status, html) = ack_post(&s, &token).await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("data-state=\"used\""));
    let (status, _) = ack_get(&s, &token).await;
    assert_eq!(status, 410);

    // A second link for the same, now acknowledged, incident: the page
    // says so and POST changes nothing.
    let second = ack_token(&s, &rx, id, &jane, 1).await;
    let (status, html) = ack_get(&s, &second).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("data-state=\"not_triggered\"") && !html.contains("<form"),
        "{html}"
    );
    let (status, html) = ack_post(&s, &second).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("Already acknowledged by Jane Smith"),
        "{html}"
    );
    assert_eq!(
        timeline(&s.pool, "incident", id, "%acknowledged%")
            .await
            .len(),
        1
    );
}

#[tokio::test]
async fn tampered_and_expired_acknowledge_links_are_refused() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    add_channel(
        &admin,
        json!({"name": "pager", "kind": "sms", "config": {"url": rx.url("/sms")}, "severities": ["P1"]}),
    )
    .await;
    sqlx::query("UPDATE incident_settings SET ack_link_ttl_secs = 60")
        .execute(&s.pool)
        .await
        .unwrap();
    let jane = person(&s.pool, "Jane Smith", None, Some("+15550001"), None).await;
    let id = incident(&s.pool, "Payments down", Severity::P1).await;
    let token = ack_token(&s, &rx, id, &jane, 0).await;
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 4, "{token}");
    let expires: i64 = parts[1].parse().unwrap();
    let ttl = expires - chrono::Utc::now().timestamp();
    assert!((50..=61).contains(&ttl), "the TTL setting applies: {ttl}");

    let flip = |s: &str| -> String {
        let mut c: Vec<char> = s.chars().collect();
        c[0] = if c[0] == 'A' { 'B' } else { 'A' };
        c.into_iter().collect()
    };
    let id_part: i64 = parts[0].parse().unwrap();
    let tampered = [
        // One character of the signature.
        format!("{}.{}.{}.{}", parts[0], parts[1], parts[2], flip(parts[3])),
        // The link id.
        format!("{}.{}.{}.{}", id_part + 1, parts[1], parts[2], parts[3]),
        // The nonce.
        format!("{}.{}.{}.{}", parts[0], parts[1], flip(parts[2]), parts[3]),
        // The embedded expiry, pushed later.
        format!(
            "{}.{}.{}.{}",
            parts[0],
            expires + 86_400,
            parts[2],
            parts[3]
        ),
        // Cut off, and garbage.
        token[..token.len() - 5].to_owned(),
        "not-a-token".to_owned(),
    ];
    for t in &tampered {
        let (status, html) = ack_get(&s, t).await;
        assert_eq!(status, 400, "{t}: {html}");
        assert!(html.contains("data-state=\"invalid\""), "{html}");
        let (status, _) = ack_post(&s, t).await;
        assert_eq!(status, 400, "{t}");
    }
    assert_eq!(incident_status(&s.pool, id).await.0, "triggered");

    // The genuine token still works until it expires…
    let (status, _) = ack_get(&s, &token).await;
    assert_eq!(status, 200);
    // …and is refused once its stored expiry has passed.
    sqlx::query("UPDATE ack_links SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(id_part)
        .execute(&s.pool)
        .await
        .unwrap();
    let (status, html) = ack_get(&s, &token).await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("data-state=\"expired\""), "{html}");
    let (status, _) = ack_post(&s, &token).await;
    assert_eq!(status, 410);
    assert_eq!(incident_status(&s.pool, id).await.0, "triggered");
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT used_at FROM ack_links WHERE id = $1")
            .bind(id_part)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert_eq!(used, None, "a refused link is not consumed");
}

// ------------------------------------------------------------ exactly once

#[tokio::test]
async fn an_escalation_step_is_queued_once_however_often_it_runs() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    for (name, kind, path) in [("hook", "webhook", "/hook"), ("pager", "sms", "/sms")] {
        add_channel(
            &admin,
            json!({"name": name, "kind": kind, "config": {"url": rx.url(path)}, "severities": ["P1"]}),
        )
        .await;
    }
    let a = person(&s.pool, "A", None, Some("+1001"), None).await;
    let b = person(&s.pool, "B", None, Some("+1002"), None).await;
    let id = incident(&s.pool, "Twice", Severity::P1).await;
    let first = escalate(
        &s.pool,
        id,
        Severity::P1,
        "Twice",
        0,
        &[a.clone(), b.clone()],
    )
    .await;
    assert_eq!(first.len(), 3);
    let again = escalate(
        &s.pool,
        id,
        Severity::P1,
        "Twice",
        0,
        &[a.clone(), b.clone()],
    )
    .await;
    assert!(
        again.is_empty(),
        "the same step queues nothing twice: {again:?}"
    );
    // The next level is a new step.
    let next = escalate(&s.pool, id, Severity::P1, "Twice", 1, &[a]).await;
    assert_eq!(next.len(), 2);
    let count: i64 =
        sqlx::query_scalar("SELECT count(*) FROM notifications WHERE incident_id = $1")
            .bind(id)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert_eq!(count, 5);
    for n in first.iter().chain(&next) {
        wait_status(&s.pool, *n, "sent").await;
    }
    assert_eq!(rx.requests().len(), 5);
}

#[tokio::test]
async fn two_server_processes_send_each_notification_exactly_once() {
    let (database, options) = opsdeck_e2e::pg::fresh_database().await;
    let url = opsdeck_e2e::pg::url(&database);
    let pool = opsdeck::db::pool(options).await.expect("pool");
    let rx = Receiver::start().await;
    let channel: i64 = sqlx::query_scalar(
        "INSERT INTO channels (name, kind, config) VALUES ('hook', 'webhook', $1) RETURNING id",
    )
    .bind(json!({"url": rx.url("/hook")}))
    .fetch_one(&pool)
    .await
    .unwrap();
    sqlx::query("INSERT INTO channel_rules (severity, channel_id) VALUES (1, $1)")
        .bind(channel)
        .execute(&pool)
        .await
        .unwrap();
    let env = [("OPSDECK_RUN_LEASE_SECS", "5")];
    let first = OpsdeckProcess::start(&url, &env).await;
    let second = OpsdeckProcess::start(&url, &env).await;
    first.wait_ready().await;
    second.wait_ready().await;

    // 20 escalation steps (one message each), committed at once.
    let id = incident(&pool, "Everything", Severity::P1).await;
    let mut tx = pool.begin().await.unwrap();
    let mut ids = Vec::new();
    for level in 0..20 {
        ids.extend(
            enqueue_escalation(
                &mut tx,
                &IncidentMessage {
                    incident_id: id,
                    severity: Severity::P1,
                    title: "Everything".into(),
                    body: format!("level {level}"),
                },
                level,
                &[],
            )
            .await
            .unwrap(),
        );
    }
    tx.commit().await.unwrap();
    assert_eq!(ids.len(), 20);
    poll(WAIT * 2, "all 20 sent", async || {
        let sent: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM notifications WHERE incident_id = $1 AND status = 'sent'",
        )
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
        if sent == 20 {
            Ok(())
        } else {
            Err(format!("{sent} sent"))
        }
    })
    .await;
    // Give a duplicate time to show up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = rx.requests_to("/hook");
    let mut per_id: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &got {
        *per_id
            .entry(r.json()["notification_id"].as_i64().unwrap())
            .or_default() += 1;
    }
    assert_eq!(got.len(), 20, "{per_id:?}");
    assert_eq!(per_id.len(), 20);
    assert!(per_id.values().all(|&n| n == 1), "{per_id:?}");
    let tries: Vec<i32> =
        sqlx::query_scalar("SELECT attempts FROM notifications WHERE incident_id = $1")
            .bind(id)
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(tries.iter().all(|&t| t == 1), "{tries:?}");
    assert!(first.exited().is_none() && second.exited().is_none());
}

// ------------------------------------------------------------------ runbooks

const TELL: &str = r#"
name: tell-chat
title: Tell the chat
steps:
  - name: tell
    kind: notify
    message: "Disk on db-1 is 91% full"
    severity: warning
"#;

#[tokio::test]
async fn a_runbook_notify_step_is_sent_to_matching_chat_channels() {
    let s = quiet().await;
    let admin = s.user(Role::Admin).await;
    let rx = Receiver::start().await;
    add_channel(
        &admin,
        json!({"name": "chat", "kind": "slack", "config": {"url": rx.url("/slack")}, "severities": ["P3"]}),
    )
    .await;
    add_channel(
        &admin,
        json!({"name": "p1-hook", "kind": "webhook", "config": {"url": rx.url("/p1")}, "severities": ["P1"]}),
    )
    .await;
    add_channel(
        &admin,
        json!({"name": "mail", "kind": "email",
               "config": {"smtp_host": "127.0.0.1", "smtp_tls": "none", "from": "o@example.com"},
               "severities": ["P3"]}),
    )
    .await;
    let rb = crate::runbooks::create(&admin, TELL).await;
    let run = crate::runbooks::start(&admin, rb.id, json!({})).await;
    let done = crate::runbooks::wait_status(&admin, run.summary.id, RunStatus::Succeeded).await;
    assert!(
        done.steps[0]
            .output
            .contains("queued as P3 on chat (Slack)"),
        "{}",
        done.steps[0].output
    );
    let v = rx.wait_for("/slack", 1, WAIT).await[0].json();
    assert!(
        v["text"]
            .as_str()
            .unwrap()
            .contains("Disk on db-1 is 91% full"),
        "{v}"
    );
    assert!(v["text"].as_str().unwrap().contains("tell-chat"), "{v}");
    assert!(rx.requests_to("/p1").is_empty());
    let rows: Vec<Notification> = admin.json("/api/v1/notifications").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].kind, "runbook");
    let sent = poll(WAIT, "delivery on the run's timeline", async || {
        let e = timeline(&s.pool, "run", run.summary.id, "notification").await;
        if e.iter().any(|m| m == "Sent by Slack (chat)") {
            Ok(e)
        } else {
            Err(format!("{e:?}"))
        }
    })
    .await;
    assert!(sent.iter().any(|m| m.contains("Disk on db-1")), "{sent:?}");
}
