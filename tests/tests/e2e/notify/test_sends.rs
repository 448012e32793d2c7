//! Test sends to webhook, Slack, Teams and SMS receivers, and escalation
//! messages naming people and carrying acknowledge links.

use super::*;

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
