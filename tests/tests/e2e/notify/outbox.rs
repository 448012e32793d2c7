//! The outbox: retries with backoff, giving up after five attempts,
//! cancelled messages of disabled and deleted channels, SSRF targets
//! refused at send time.

use super::*;

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
