//! The SPA in headless Chromium against the real server: an admin logs in
//! through the form, navigates, survives a reload on a deep link and logs
//! out (the session is gone on the server too); a viewer sees no admin or
//! operator navigation, gets a no-access state on an admin page, and the
//! API refuses it anyway.
//!
//! Screenshots for the docs land in `<workspace>/target/screenshots/`.

use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_wire::Role;

/// The SPA must be built (`make frontend`); outside CI a missing build skips.
fn spa_built() -> bool {
    opsdeck_e2e::server::spa().is_ok()
}

/// Fills the login form (already open) and submits it.
async fn submit_login(b: &Browser, username: &str, password: &str) {
    b.submit_login(username, password).await;
}

/// Opens `/login`, logs in as `username` and waits for the dashboard.
async fn log_in(b: &Browser, server: &TestServer, username: &str) {
    b.goto(&server.url("/login")).await;
    b.wait_for_text("h1", "Sign in").await;
    submit_login(b, username, PASSWORD).await;
    b.wait_for_path("/").await;
    b.wait_for_text("h1", "Dashboard").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_navigate_logout() {
    if !spa_built() {
        return;
    }
    let server = TestServer::start().await;
    server.create_user("alice", Role::Admin).await;
    let Ok(b) = Browser::start().await else {
        return;
    };

    b.goto(&server.url("/login")).await;
    b.wait_for_text("h1", "Sign in").await;
    b.screenshot(&screenshots().join("login.png")).await;

    // A wrong password: the server's message on the form, still on /login.
    submit_login(&b, "alice", "not-the-password-9").await;
    b.wait_for_contains("[data-testid=form-error]", "invalid username or password")
        .await;
    b.wait_for_path("/login").await;

    // The right one: the dashboard, with the admin navigation.
    submit_login(&b, "alice", PASSWORD).await;
    b.wait_for_path("/").await;
    b.wait_for_text("h1", "Dashboard").await;
    for nav in [
        "nav-services",
        "nav-runbooks",
        "nav-approvals",
        "nav-incidents",
        "nav-backups",
        "nav-oncall",
        "nav-maintenance",
        "nav-users",
        "nav-tokens",
        "nav-audit",
    ] {
        assert!(
            b.exists(&format!("[data-testid={nav}]")).await,
            "an admin sees {nav}"
        );
    }
    b.screenshot(&screenshots().join("dashboard.png")).await;

    // Navigate in the SPA.
    b.wait_for("[data-testid=nav-users]")
        .await
        .click()
        .await
        .expect("clicking Users");
    b.wait_for_path("/admin/users").await;
    b.wait_for_text("h1", "Users").await;
    b.wait_for_contains("[data-testid=users-table]", "alice")
        .await;

    // The deep link survives a reload, still logged in.
    b.client.refresh().await.expect("reload");
    b.wait_for_path("/admin/users").await;
    b.wait_for_text("h1", "Users").await;
    b.wait_for_contains("[data-testid=users-table]", "alice")
        .await;
    assert_eq!(
        b.fetch_status("/api/v1/me").await,
        200,
        "logged in after the reload"
    );

    // Log out: back on the login form, and the old session is dead on the
    // server (not only forgotten by the browser).
    let old = b
        .client
        .get_named_cookie("opsdeck_session")
        .await
        .expect("the session cookie while logged in");
    b.wait_for("[data-testid=logout]")
        .await
        .click()
        .await
        .expect("clicking Log out");
    b.wait_for_path("/login").await;
    b.wait_for_text("h1", "Sign in").await;
    assert_eq!(
        opsdeck_e2e::util::get_with_cookie(&server.base, "/api/v1/me", old.value()).await,
        401,
        "the logged-out session cookie must no longer authenticate"
    );
    assert_eq!(b.fetch_status("/api/v1/me").await, 401);
    // A deep link now leads to the login form (remembering where to go).
    b.goto(&server.url("/admin/users")).await;
    b.wait_for_path("/login").await;
    b.wait_for_text("h1", "Sign in").await;
    assert!(!b.exists("[data-testid=users-table]").await);
    submit_login(&b, "alice", PASSWORD).await;
    b.wait_for_path("/admin/users").await;
    b.wait_for_contains("[data-testid=users-table]", "alice")
        .await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_does_not_see_admin_pages() {
    if !spa_built() {
        return;
    }
    let server = TestServer::start().await;
    server.create_user("victor", Role::Viewer).await;
    let Ok(b) = Browser::start().await else {
        return;
    };
    log_in(&b, &server, "victor").await;

    for shown in [
        "nav-dashboard",
        "nav-services",
        "nav-runbooks",
        "nav-incidents",
        "nav-backups",
        "nav-oncall",
        "nav-maintenance",
    ] {
        assert!(
            b.exists(&format!("[data-testid={shown}]")).await,
            "a viewer sees {shown}"
        );
    }
    for hidden in ["nav-users", "nav-tokens", "nav-audit", "nav-approvals"] {
        assert!(
            !b.exists(&format!("[data-testid={hidden}]")).await,
            "a viewer must not see {hidden}"
        );
    }

    // Straight to an admin page: a no-access state, no users table.
    b.goto(&server.url("/admin/users")).await;
    b.wait_for("[data-testid=no-access]").await;
    b.wait_for_path("/admin/users").await;
    b.wait_for_text("h1", "No access").await;
    assert!(!b.exists("[data-testid=users-table]").await);

    // And the API refuses, from the browser's own session and from another.
    assert_eq!(b.fetch_status("/api/v1/me").await, 200, "still logged in");
    assert_eq!(b.fetch_status("/api/v1/users").await, 403);
    let api = server.login("victor").await;
    assert_eq!(api.get("/api/v1/users").await.status(), 403);
    b.close().await;
}
