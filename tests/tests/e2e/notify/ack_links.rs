//! Acknowledge links: confirm on GET, acknowledge once on POST; tampered
//! and expired links refused.

use super::*;

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
