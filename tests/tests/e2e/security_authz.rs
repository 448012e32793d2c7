//! Token scopes and the acknowledge page's escaping (issue 19, findings 9
//! and 12). The role matrix walks every route by scope; this file replays
//! the concrete attacks: Alertmanager's token used to exec, a dashboard's
//! read token used to write, an old token keeping its powers, and an alert
//! title carrying markup into the acknowledge page.

use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{expect_error, ok_json};
use opsdeck_wire::{ApiToken, CreatedApiToken, Role, TokenScope};
use serde_json::{json, Value};

/// A token of `role` with `scopes` (`null`: the field left out).
async fn token(admin: &Api, name: &str, role: &str, scopes: Value) -> Api {
    let mut body = json!({"name": name, "role": role, "scopes": scopes});
    if scopes_missing(&body) {
        body.as_object_mut().unwrap().remove("scopes");
    }
    let created: CreatedApiToken =
        ok_json(admin.post("/api/v1/tokens", &body).await, "token").await;
    Api::with_token(&admin.base, &created.token)
}

fn scopes_missing(body: &Value) -> bool {
    body["scopes"].is_null()
}

fn alert(fingerprint: &str, summary: &str) -> Value {
    json!({
        "version": "4", "groupKey": "{}:{alertname=\"X\"}", "status": "firing",
        "receiver": "opsdeck", "commonLabels": {"alertname": "X"},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": "firing",
            "labels": {"alertname": "X", "severity": "critical"},
            "annotations": {"summary": summary},
            "startsAt": "2026-11-23T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph", "fingerprint": fingerprint
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alertmanager_token_can_post_alerts_and_nothing_else() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    // Operator role (today's requirement for the webhook), narrowed to alerts.
    let am = token(&admin, "alertmanager", "operator", json!(["alerts:write"])).await;
    let r: Value = ok_json(
        am.post(
            "/api/v1/integrations/alertmanager",
            &alert("fp1", "Disk full"),
        )
        .await,
        "alerts",
    )
    .await;
    assert_eq!(r["opened"].as_array().map(Vec::len), Some(1), "{r}");

    // What an operator token could do, this one cannot: exec, actions, reads.
    for (method, path, body) in [
        ("POST", "/api/v1/services/1/exec", json!({"argv": ["id"]})),
        (
            "POST",
            "/api/v1/services/1/actions",
            json!({"action": "restart"}),
        ),
        (
            "POST",
            "/api/v1/incidents",
            json!({"title": "x", "severity": "P4"}),
        ),
        ("GET", "/api/v1/incidents", json!({})),
        ("GET", "/api/v1/services/1/logs", json!({})),
    ] {
        let res = am
            .send(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                path,
                &body,
            )
            .await;
        let msg = expect_error(res, 403).await;
        assert!(msg.contains("scope"), "{method} {path}: {msg}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_token_reads_and_cannot_write() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let read = token(&admin, "dashboard", "admin", json!(["read"])).await;
    let _: Value = ok_json(read.get("/api/v1/incidents").await, "incidents").await;
    let _: Vec<Value> = ok_json(read.get("/api/v1/users").await, "users").await;
    for (method, path, body) in [
        (
            "POST",
            "/api/v1/incidents",
            json!({"title": "x", "severity": "P4"}),
        ),
        (
            "POST",
            "/api/v1/users",
            json!({"username": "eve", "role": "admin", "password": "a long enough passphrase 1"}),
        ),
        (
            "POST",
            "/api/v1/tokens",
            json!({"name": "escalate", "role": "admin"}),
        ),
        (
            "POST",
            "/api/v1/me/password",
            json!({"current_password": "x", "new_password": "y"}),
        ),
        ("POST", "/api/v1/auth/logout", json!({})),
    ] {
        let res = read
            .send(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                path,
                &body,
            )
            .await;
        expect_error(res, 403).await;
    }
    let users: Vec<Value> = admin.json("/api/v1/users").await;
    assert!(
        users.iter().all(|u| u["username"] != "eve"),
        "nothing written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scopes_are_stored_listed_and_old_tokens_stay_full() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    token(
        &admin,
        "two scopes",
        "operator",
        json!(["heartbeat", "alerts:write", "heartbeat"]),
    )
    .await;
    let plain = token(&admin, "no scopes given", "viewer", Value::Null).await;
    let _: Value = ok_json(plain.get("/api/v1/incidents").await, "full by default").await;
    expect_error(
        admin
            .post(
                "/api/v1/tokens",
                &json!({"name": "mixed", "role": "viewer", "scopes": ["full", "read"]}),
            )
            .await,
        400,
    )
    .await;
    expect_error(
        admin
            .post(
                "/api/v1/tokens",
                &json!({"name": "bogus", "role": "viewer", "scopes": ["exec"]}),
            )
            .await,
        400,
    )
    .await;
    // A token as it was stored before scopes existed (the migration's default).
    sqlx::query(
        "INSERT INTO api_tokens (name, token_hash, prefix, role, created_by)
         SELECT 'legacy', sha256('odk_legacy-token-value'::bytea), 'odk_legacy', 'operator', id
         FROM users WHERE username = 'admin-user'",
    )
    .execute(&server.pool)
    .await
    .unwrap();
    let legacy = Api::with_token(&server.base, "odk_legacy-token-value");
    let r: Value = ok_json(
        legacy
            .post(
                "/api/v1/integrations/alertmanager",
                &alert("fp-legacy", "Legacy"),
            )
            .await,
        "a legacy token keeps its full role",
    )
    .await;
    assert_eq!(r["opened"].as_array().map(Vec::len), Some(1));

    let list: Vec<ApiToken> = admin.json("/api/v1/tokens").await;
    let scopes = |name: &str| {
        list.iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("{name} listed"))
            .scopes
            .clone()
    };
    assert_eq!(
        scopes("two scopes"),
        vec![TokenScope::AlertsWrite, TokenScope::Heartbeat]
    );
    assert_eq!(scopes("no scopes given"), vec![TokenScope::Full]);
    assert_eq!(scopes("legacy"), vec![TokenScope::Full]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_heartbeat_token_pings_checks_and_nothing_else() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let check: Value = ok_json(
        admin
            .post(
                "/api/v1/checks",
                &json!({"name": "nightly", "interval_s": 86400, "timeout_ms": 1000,
                        "spec": {"kind": "heartbeat", "period_s": 3600, "grace_s": 0}}),
            )
            .await,
        "check",
    )
    .await;
    let id = check["id"].as_i64().unwrap();
    let cron = token(&admin, "cron", "operator", json!(["heartbeat"])).await;
    let res = cron
        .post(&format!("/api/v1/checks/{id}/heartbeat"), &json!({}))
        .await;
    assert_eq!(res.status(), 204);
    let after: Value = admin.json(&format!("/api/v1/checks/{id}")).await;
    assert_eq!(after["status"], "ok", "the ping settled the check: {after}");
    let res = cron
        .post(&format!("/api/v1/checks/{id}/heartbeat"), &json!({}))
        .await;
    assert_eq!(res.status(), 204, "again");
    expect_error(
        cron.post("/api/v1/checks/999999/heartbeat", &json!({}))
            .await,
        404,
    )
    .await;
    expect_error(cron.get(&format!("/api/v1/checks/{id}")).await, 403).await;
    expect_error(
        cron.send(
            reqwest::Method::DELETE,
            &format!("/api/v1/checks/{id}"),
            &json!({}),
        )
        .await,
        403,
    )
    .await;
}

/// Alertmanager names the incident (`annotations.summary`); the acknowledge
/// page, opened without a session from an e-mail or chat message, shows it.
/// Markup in it must arrive as text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_acknowledge_page_escapes_alertmanager_titles() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let am = token(&admin, "alertmanager", "operator", json!(["alerts:write"])).await;
    let title = r#"<script>alert(1)</script><img src=x onerror="alert(2)">"#;
    let r: Value = ok_json(
        am.post("/api/v1/integrations/alertmanager", &alert("xss", title))
            .await,
        "alert",
    )
    .await;
    let incident = r["opened"][0].as_i64().expect("opened");
    let mut conn = server.pool.acquire().await.unwrap();
    let link = opsdeck::notify::acklink::mint(&mut conn, &server.base, incident, None, None, None)
        .await
        .unwrap();
    let res = reqwest::get(&link.url).await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(
        !html.contains("<script>alert(1)") && !html.contains("<img src=x"),
        "the title reached the page as markup:\n{html}"
    );
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;")
            || html.contains("&#60;script&#62;alert(1)&#60;/script&#62;"),
        "the title is shown, escaped:\n{html}"
    );
    assert!(!html.contains("onerror=\"alert"), "{html}");
}
