//! E-mail: a test send and an escalation through a real SMTP server.

use super::*;

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
