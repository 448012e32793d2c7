//! A runbook notify step sent to the matching chat channels.

use super::*;

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
    let rb = opsdeck_e2e::flows::runbooks::create(&admin, TELL).await;
    let run = opsdeck_e2e::flows::runbooks::start(&admin, rb.id, json!({})).await;
    let done =
        opsdeck_e2e::flows::runbooks::wait_status(&admin, run.summary.id, RunStatus::Succeeded)
            .await;
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
