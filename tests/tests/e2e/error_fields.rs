//! Validation errors name the request field at fault (`"field"` in the
//! error body, next to an unchanged message): the SPA's forms mark that
//! input from it. One request per validator the forms rely on.

use opsdeck_e2e::server::TestServer;
use opsdeck_wire::Role;
use serde_json::{json, Value};

/// A 400's message and field.
async fn invalid(res: reqwest::Response) -> (String, Option<String>) {
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.expect("a JSON error body");
    let e = &body["error"];
    assert_eq!(e["code"], "invalid_input", "{body}");
    let message = e["message"].as_str().unwrap_or_default().to_string();
    let field = e.get("field").and_then(Value::as_str).map(str::to_string);
    (message, field)
}

#[tokio::test]
async fn validation_errors_name_their_field() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;

    // A check: one of its own fields, one of its spec.
    let check = |url: &str, interval_s: u32| {
        json!({"name": "c", "spec": {"kind": "http", "url": url}, "interval_s": interval_s,
               "timeout_ms": 2000, "fail_after": 1, "recover_after": 1})
    };
    let (msg, field) = invalid(
        admin
            .post("/api/v1/checks", &check("http://127.0.0.1:9/", 2))
            .await,
    )
    .await;
    assert_eq!(
        (field.as_deref(), msg.as_str()),
        (Some("interval_s"), "interval_s: 5 s to 1 day")
    );
    let (msg, field) = invalid(
        admin
            .post("/api/v1/checks", &check("file:///etc/passwd", 86_400))
            .await,
    )
    .await;
    assert_eq!(field.as_deref(), Some("url"), "{msg}");
    assert!(msg.starts_with("url: "), "{msg}");

    // A backup plan and a storage target.
    let (msg, field) = invalid(
        admin
            .post(
                "/api/v1/backup-plans",
                &json!({"name": "Not A Name", "target": "nowhere", "timezone": "UTC",
                        "sources": [{"kind": "files", "path": "/etc"}]}),
            )
            .await,
    )
    .await;
    assert_eq!(field.as_deref(), Some("name"), "{msg}");
    let (msg, field) = invalid(
        admin
            .post(
                "/api/v1/backup-targets",
                &json!({"name": "local", "kind": "local", "path": "relative/path"}),
            )
            .await,
    )
    .await;
    assert_eq!(field.as_deref(), Some("path"), "{msg}");

    // An escalation policy: a level's targets.
    let (msg, field) = invalid(
        admin
            .post(
                "/api/v1/escalation-policies",
                &json!({"name": "p", "levels": [{"delay_secs": 0, "targets": []}]}),
            )
            .await,
    )
    .await;
    assert_eq!(field.as_deref(), Some("levels[0].targets"), "{msg}");

    // Not about one field: no `field`.
    let res = admin.get("/api/v1/backups?status=nonsense").await;
    let (msg, field) = invalid(res).await;
    assert_eq!(field, None, "{msg}");
}
