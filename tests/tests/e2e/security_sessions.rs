//! Sessions belong to their owner and end for good (issue 19, finding 11).
//!
//! Attacks replayed: a session cookie copied before its user was disabled,
//! tried again after the user was enabled again; a cookie from before an
//! admin reset the password; and a live stream (the status board, the
//! incident list) kept open with a session that has since ended — the
//! stream must end with it, while another user of the same role keeps his.
//! No stream or exec output has an id another request could attach to:
//! every stream is opened by a request that authenticates itself (the role
//! matrix checks each one), and exec output is only in the exec answer.

use std::time::Duration;

use opsdeck_e2e::server::{Api, TestServer, PASSWORD};
use opsdeck_e2e::util::{get_with_cookie, session_cookie_value};
use opsdeck_wire::Role;
use serde_json::json;

/// Logs in without a cookie jar; the session token.
async fn session_of(server: &TestServer, username: &str) -> String {
    let res = reqwest::Client::new()
        .post(server.url("/api/v1/auth/login"))
        .json(&json!({"username": username, "password": PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 200, "login as {username}");
    session_cookie_value(&res)
}

/// Opens an event stream with exactly this session cookie.
async fn stream(server: &TestServer, path: &str, session: &str) -> reqwest::Response {
    let res = reqwest::Client::new()
        .get(server.url(path))
        .header(
            reqwest::header::COOKIE,
            format!("opsdeck_session={session}"),
        )
        .send()
        .await
        .expect("opening the stream");
    assert_eq!(res.status(), 200, "GET {path}");
    res
}

/// Reads until the stream ends; panics if it is still open after `limit`.
async fn ends_within(mut res: reqwest::Response, limit: Duration, what: &str) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Err(_) => panic!("{what}: the stream was still open {limit:?} after its session ended"),
            Ok(Ok(None)) | Ok(Err(_)) => return,
            Ok(Ok(Some(_))) => continue,
        }
    }
}

/// Whether the stream is still open after `wait` (keep-alives may arrive).
async fn still_open(res: &mut reqwest::Response, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, res.chunk()).await {
            Err(_) => return true,
            Ok(Ok(Some(_))) => continue,
            Ok(_) => return false,
        }
    }
}

async fn user_id(admin: &Api, username: &str) -> i64 {
    let users: Vec<serde_json::Value> = admin.json("/api/v1/users").await;
    users
        .iter()
        .find(|u| u["username"] == username)
        .and_then(|u| u["id"].as_i64())
        .unwrap_or_else(|| panic!("no user {username}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_then_enabled_user_does_not_get_old_sessions_back() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    server.create_user("mallory-target", Role::Operator).await;
    let id = user_id(&admin, "mallory-target").await;
    let copied = session_of(&server, "mallory-target").await;
    assert_eq!(
        get_with_cookie(&server.base, "/api/v1/me", &copied).await,
        200
    );

    // Disabled and enabled again without the copied cookie being used in between.
    for disabled in [true, false] {
        let res = admin
            .patch(
                &format!("/api/v1/users/{id}"),
                &json!({"disabled": disabled}),
            )
            .await;
        assert_eq!(res.status(), 200, "disabled = {disabled}");
    }
    assert_eq!(
        get_with_cookie(&server.base, "/api/v1/me", &copied).await,
        401,
        "a session from before the user was disabled is dead after re-enabling"
    );
    let fresh = session_of(&server, "mallory-target").await;
    assert_eq!(
        get_with_cookie(&server.base, "/api/v1/me", &fresh).await,
        200,
        "the user can log in again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_password_reset_ends_the_users_sessions() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    server.create_user("reset-me", Role::Operator).await;
    let id = user_id(&admin, "reset-me").await;
    let before = [
        session_of(&server, "reset-me").await,
        session_of(&server, "reset-me").await,
    ];
    let res = admin
        .post(
            &format!("/api/v1/users/{id}/password"),
            &json!({"new_password": "an entirely new passphrase 42"}),
        )
        .await;
    assert!(res.status().is_success(), "reset: {}", res.status());
    for s in &before {
        assert_eq!(
            get_with_cookie(&server.base, "/api/v1/me", s).await,
            401,
            "a session from before the reset is refused"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_streams_end_with_the_session_that_opened_them() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    for name in ["alice-op", "bob-op"] {
        server.create_user(name, Role::Operator).await;
    }
    let alice = session_of(&server, "alice-op").await;
    let bob = session_of(&server, "bob-op").await;
    let alice_status = stream(&server, "/api/v1/status/events", &alice).await;
    let alice_incidents = stream(&server, "/api/v1/incidents/events", &alice).await;
    let mut bob_status = stream(&server, "/api/v1/status/events", &bob).await;

    // Alice is disabled: both her streams end; Bob (same role) keeps his.
    let id = user_id(&admin, "alice-op").await;
    let res = admin
        .patch(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
        .await;
    assert_eq!(res.status(), 200);
    let limit = Duration::from_secs(15);
    tokio::join!(
        ends_within(alice_status, limit, "alice's status stream"),
        ends_within(alice_incidents, limit, "alice's incident stream"),
    );
    assert!(
        still_open(&mut bob_status, Duration::from_secs(2)).await,
        "another user's stream is not affected"
    );

    // Bob's password is reset by an admin: his stream ends too.
    let id = user_id(&admin, "bob-op").await;
    let res = admin
        .post(
            &format!("/api/v1/users/{id}/password"),
            &json!({"new_password": "an entirely new passphrase 43"}),
        )
        .await;
    assert!(res.status().is_success());
    ends_within(bob_status, limit, "bob's status stream").await;

    // A stream opened with an API token ends when the token is revoked.
    let created: serde_json::Value = admin
        .post(
            "/api/v1/tokens",
            &json!({"name": "dashboard", "role": "viewer", "scopes": ["read"]}),
        )
        .await
        .json()
        .await
        .unwrap();
    let token_stream = Api::with_token(&server.base, created["token"].as_str().unwrap())
        .get("/api/v1/status/events")
        .await;
    assert_eq!(token_stream.status(), 200);
    let res = admin
        .delete(&format!("/api/v1/tokens/{}", created["info"]["id"]))
        .await;
    assert_eq!(res.status(), 204);
    ends_within(token_stream, limit, "a revoked token's stream").await;
}
