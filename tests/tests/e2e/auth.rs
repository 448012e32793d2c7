//! Accounts, sessions, throttling, tokens, CSRF: the server refuses what it
//! must, over real HTTP against a real database.

use opsdeck_e2e::server::{Api, TestServer, PASSWORD};
use opsdeck_e2e::util::{error_code, get_with_cookie, session_cookie_value};
use opsdeck_wire::{CreatedApiToken, Me, Role, User};
use serde_json::json;

async fn login_raw(server: &TestServer, username: &str, password: &str) -> reqwest::Response {
    Api::new(&server.base)
        .post(
            "/api/v1/auth/login",
            &json!({"username": username, "password": password}),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_strict_http_only_cookie_with_a_long_token() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Operator).await;
    let res = login_raw(&server, "alice", PASSWORD).await;
    assert_eq!(res.status(), 200);
    let set = res
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(set.contains("HttpOnly"), "{set}");
    assert!(set.contains("SameSite=Strict"), "{set}");
    assert!(set.contains("Path=/"), "{set}");
    assert!(
        !set.contains("Secure"),
        "plain-HTTP default is not Secure: {set}"
    );
    let token = session_cookie_value(&res);
    assert!(
        token.len() >= 22,
        "token must carry at least 128 bits: {token}"
    );
    let me: Me = res.json().await.unwrap();
    assert_eq!((me.username.as_str(), me.role), ("alice", Role::Operator));

    let secure = TestServer::start_with(|s| s.secure_cookies = true).await;
    secure.create_user("bob", Role::Viewer).await;
    let res = login_raw(&secure, "bob", PASSWORD).await;
    let set = res
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .unwrap()
        .to_str()
        .unwrap();
    assert!(set.contains("Secure"), "configured Secure cookie: {set}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_password_and_unknown_user_get_the_same_answer() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Viewer).await;
    let a = login_raw(&server, "alice", "not-the-password-1").await;
    let b = login_raw(&server, "nobody", "not-the-password-1").await;
    assert_eq!(a.status(), 401);
    assert_eq!(b.status(), 401);
    assert_eq!(error_code(a).await, "invalid_credentials");
    assert_eq!(error_code(b).await, "invalid_credentials");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session_on_the_server() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Viewer).await;
    let res = login_raw(&server, "alice", PASSWORD).await;
    let token = session_cookie_value(&res);
    assert_eq!(
        get_with_cookie(&server.base, "/api/v1/me", &token).await,
        200
    );
    let api = Api::new(&server.base);
    let logout = api
        .client
        .post(server.url("/api/v1/auth/logout"))
        .header(reqwest::header::COOKIE, format!("opsdeck_session={token}"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), 204);
    assert_eq!(
        get_with_cookie(&server.base, "/api/v1/me", &token).await,
        401,
        "a copied cookie must not survive logout"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_change_ends_every_other_session() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Viewer).await;
    let first = login_raw(&server, "alice", PASSWORD).await;
    let old_token = session_cookie_value(&first);
    let other = server.login("alice").await;
    let me = server.login("alice").await;
    let new_password = "violet-harbour-sunrise-77";
    let res = me
        .post(
            "/api/v1/me/password",
            &json!({"current_password": PASSWORD, "new_password": new_password}),
        )
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(
        other.get("/api/v1/me").await.status(),
        401,
        "other sessions end"
    );
    assert_eq!(
        get_with_cookie(&server.base, "/api/v1/me", &old_token).await,
        401,
        "old cookies end"
    );
    assert_eq!(
        me.get("/api/v1/me").await.status(),
        200,
        "this browser got a fresh session"
    );
    assert_eq!(login_raw(&server, "alice", PASSWORD).await.status(), 401);
    assert_eq!(
        login_raw(&server, "alice", new_password).await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weak_or_wrong_passwords_are_refused_with_reasons() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Viewer).await;
    let me = server.login("alice").await;
    for (current, new, needle) in [
        (
            "wrong-current-password",
            "violet-harbour-sunrise-77",
            "current password",
        ),
        (PASSWORD, "short", "at least 12"),
        (PASSWORD, "password1234", "too common"),
        (PASSWORD, &"x".repeat(129), "at most 128"),
    ] {
        let res = me
            .post(
                "/api/v1/me/password",
                &json!({"current_password": current, "new_password": new}),
            )
            .await;
        assert_eq!(res.status(), 400);
        let body: serde_json::Value = res.json().await.unwrap();
        let msg = body["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    }
    assert_eq!(
        me.get("/api/v1/me").await.status(),
        200,
        "refusals change nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_a_user_ends_their_sessions_and_blocks_login() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let id = server.create_user("alice", Role::Operator).await;
    let alice = server.login("alice").await;
    let res = admin
        .patch(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
        .await;
    assert_eq!(res.status(), 200);
    let user: User = res.json().await.unwrap();
    assert!(user.disabled);
    assert_eq!(alice.get("/api/v1/me").await.status(), 401);
    assert_eq!(login_raw(&server, "alice", PASSWORD).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_can_end_anyones_sessions() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let id = server.create_user("alice", Role::Viewer).await;
    let a1 = server.login("alice").await;
    let a2 = server.login("alice").await;
    let res = admin.delete(&format!("/api/v1/users/{id}/sessions")).await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["ended"], 2);
    assert_eq!(a1.get("/api/v1/me").await.status(), 401);
    assert_eq!(a2.get("/api/v1/me").await.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_expired_sessions_are_refused() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Viewer).await;
    let idle = server.login("alice").await;
    let expired = server.login("alice").await;
    let fresh = server.login("alice").await;
    // Age the first two sessions in the database (the server's clock is real).
    let rows = sqlx::query("UPDATE sessions SET last_seen_at = now() - interval '9 hours' WHERE token_hash IN (SELECT token_hash FROM sessions ORDER BY created_at LIMIT 1)")
        .execute(&server.pool).await.unwrap().rows_affected();
    assert_eq!(rows, 1);
    let rows = sqlx::query("UPDATE sessions SET expires_at = now() - interval '1 second' WHERE token_hash IN (SELECT token_hash FROM sessions ORDER BY created_at OFFSET 1 LIMIT 1)")
        .execute(&server.pool).await.unwrap().rows_affected();
    assert_eq!(rows, 1);
    assert_eq!(
        idle.get("/api/v1/me").await.status(),
        401,
        "idle beyond 8 h"
    );
    assert_eq!(
        expired.get("/api/v1/me").await.status(),
        401,
        "past the absolute lifetime"
    );
    assert_eq!(fresh.get("/api/v1/me").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_never_accepted_from_the_query_string() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Viewer).await;
    let token = session_cookie_value(&login_raw(&server, "alice", PASSWORD).await);
    for q in ["token", "access_token", "session", "opsdeck_session"] {
        let status = Api::new(&server.base)
            .get(&format!("/api/v1/me?{q}={token}"))
            .await
            .status();
        assert_eq!(status, 401, "?{q}= must not authenticate");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_the_account_down() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Viewer).await;
    for _ in 0..6 {
        assert_eq!(
            login_raw(&server, "alice", "wrong-password-123")
                .await
                .status(),
            401
        );
    }
    let blocked = login_raw(&server, "alice", PASSWORD).await;
    assert_eq!(
        blocked.status(),
        429,
        "the 7th attempt waits, even with the right password"
    );
    let retry: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=300).contains(&retry), "Retry-After {retry}");
    assert_eq!(error_code(blocked).await, "too_many_attempts");
    // The delay is short and grows: it is not a lockout.
    tokio::time::sleep(std::time::Duration::from_secs(retry + 1)).await;
    assert_eq!(
        login_raw(&server, "alice", PASSWORD).await.status(),
        200,
        "after the delay the user gets in"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_cannot_lock_a_user_out_of_their_usual_address() {
    let server = TestServer::start().await;
    server.create_user("bob", Role::Viewer).await;
    // bob has logged in from here before.
    assert_eq!(login_raw(&server, "bob", PASSWORD).await.status(), 200);
    for _ in 0..7 {
        assert_eq!(
            login_raw(&server, "bob", "wrong-password-123")
                .await
                .status(),
            401
        );
    }
    let blocked: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
        "SELECT blocked_until FROM login_throttle WHERE scope = 'account' AND key = 'bob'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert!(
        blocked.is_some_and(|b| b > chrono::Utc::now()),
        "the account is throttled for unknown addresses"
    );
    assert_eq!(
        login_raw(&server, "bob", PASSWORD).await.status(),
        200,
        "but not from bob's usual address"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_slow_the_address_down_across_accounts() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Viewer).await;
    for i in 0..11 {
        let status = login_raw(&server, &format!("guess{i}"), "wrong-password-123")
            .await
            .status();
        assert_eq!(status, 401, "attempt {i}");
    }
    assert_eq!(
        login_raw(&server, "alice", PASSWORD).await.status(),
        429,
        "the address waits after 11 failures"
    );
    let entries: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'auth.login' AND outcome = 'failure'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(entries, 11, "every failed login is recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_tokens_authenticate_with_their_role_until_revoked() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let res = admin
        .post(
            "/api/v1/tokens",
            &json!({"name": "backup cron", "role": "viewer", "expires_in_days": 30}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let created: CreatedApiToken = res.json().await.unwrap();
    assert!(created.token.starts_with(&created.info.prefix));
    let bot = Api::with_token(&server.base, &created.token);
    let me: Me = bot.json("/api/v1/me").await;
    assert_eq!(me.role, Role::Viewer);
    assert_eq!(me.via, opsdeck_wire::AuthVia::Token);
    assert_eq!(
        bot.get("/api/v1/users").await.status(),
        403,
        "a viewer token cannot list users"
    );
    let stored: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT token_hash FROM api_tokens WHERE id = $1")
            .bind(created.info.id)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_ne!(
        stored.as_deref(),
        Some(created.token.as_bytes()),
        "only a hash is stored"
    );
    let used: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT last_used_at FROM api_tokens WHERE id = $1")
            .bind(created.info.id)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert!(used.is_some(), "last-used time recorded");
    let dup = admin
        .post(
            "/api/v1/tokens",
            &json!({"name": "backup cron", "role": "viewer"}),
        )
        .await;
    assert_eq!(dup.status(), 409);
    assert_eq!(
        admin
            .delete(&format!("/api/v1/tokens/{}", created.info.id))
            .await
            .status(),
        204
    );
    assert_eq!(bot.get("/api/v1/me").await.status(), 401, "revoked");
    assert_eq!(
        Api::with_token(&server.base, "odk_forged")
            .get("/api/v1/me")
            .await
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csrf_needs_same_origin_and_json() {
    let server = TestServer::start().await;
    server.create_user("alice", Role::Admin).await;
    let admin = server.login("alice").await;
    let body =
        json!({"username": "mallory", "role": "admin", "password": "violet-harbour-sunrise-77"});
    let evil = admin
        .client
        .post(server.url("/api/v1/users"))
        .header("origin", "https://evil.example")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(evil.status(), 403);
    assert_eq!(error_code(evil).await, "csrf_rejected");
    let form = admin
        .client
        .post(server.url("/api/v1/users"))
        .header("content-type", "text/plain")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        form.status(),
        403,
        "a simple (form-like) request is refused"
    );
    let same = admin
        .client
        .post(server.url("/api/v1/users"))
        .header("origin", server.base.clone())
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(same.status(), 201);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM users WHERE username = 'mallory'")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert_eq!(count, 1, "only the same-origin request created the user");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_the_error_shape() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let res = admin
        .client
        .post(server.url("/api/v1/users"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(error_code(res).await, "invalid_input");
    let res = admin.post("/api/v1/users", &json!({"username": "Bad Name", "role": "viewer", "password": "violet-harbour-sunrise-77"})).await;
    assert_eq!(res.status(), 400);
    let res = admin.post("/api/v1/users", &json!({"username": "carol", "role": "superuser", "password": "violet-harbour-sunrise-77"})).await;
    assert_eq!(res.status(), 400);
    let res = admin.get("/api/v1/nope").await;
    assert_eq!(res.status(), 404);
    assert_eq!(error_code(res).await, "not_found");
    let res = admin.post("/api/v1/users", &json!({"username": "admin-user", "role": "viewer", "password": "violet-harbour-sunrise-77"})).await;
    assert_eq!(res.status(), 409);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("a user with this username exists"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_created_by_an_admin_must_change_their_password_first() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let res = admin
        .post(
            "/api/v1/users",
            &json!({"username": "carol", "role": "admin", "password": "violet-harbour-sunrise-77"}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let carol = Api::new(&server.base);
    let res = carol
        .post(
            "/api/v1/auth/login",
            &json!({"username": "carol", "password": "violet-harbour-sunrise-77"}),
        )
        .await;
    let me: Me = res.json().await.unwrap();
    assert!(me.must_change_password);
    let res = carol.get("/api/v1/users").await;
    assert_eq!(res.status(), 403);
    assert_eq!(error_code(res).await, "password_change_required");
    let res = carol.post("/api/v1/me/password", &json!({"current_password": "violet-harbour-sunrise-77", "new_password": "amber-canyon-river-1984"})).await;
    assert_eq!(res.status(), 204);
    assert_eq!(carol.get("/api/v1/users").await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_admin_cannot_be_demoted_or_disabled() {
    let server = TestServer::start().await;
    let id = server.create_user("root-admin", Role::Admin).await;
    let admin = server.login("root-admin").await;
    let res = admin
        .patch(&format!("/api/v1/users/{id}"), &json!({"role": "viewer"}))
        .await;
    assert_eq!(res.status(), 409);
    let res = admin
        .patch(&format!("/api/v1/users/{id}"), &json!({"disabled": true}))
        .await;
    assert_eq!(res.status(), 409);
    let me: Me = admin.json("/api/v1/me").await;
    assert_eq!(me.role, Role::Admin, "nothing changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_start_creates_one_admin() {
    let server = TestServer::start().await;
    let generated = opsdeck::users::ensure_initial_admin(&server.pool, None)
        .await
        .unwrap()
        .expect("a generated password");
    assert!(
        opsdeck::users::ensure_initial_admin(&server.pool, None)
            .await
            .unwrap()
            .is_none(),
        "only once"
    );
    let res = login_raw(&server, "admin", &generated).await;
    assert_eq!(res.status(), 200);
    let me: Me = res.json().await.unwrap();
    assert!(
        me.must_change_password,
        "a generated password must be changed at first login"
    );
}
