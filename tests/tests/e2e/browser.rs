//! The SPA in headless Chromium against the real server: log in, see the
//! shell, navigate, survive a reload, log out; a viewer sees no admin pages.

use opsdeck_e2e::browser::Browser;
use opsdeck_e2e::server::{web_root, TestServer, PASSWORD};
use opsdeck_wire::Role;

/// The SPA must be built (`make test` builds it); outside CI a missing build skips.
fn spa_built() -> bool {
    opsdeck_e2e::require::part(
        web_root().join("index.html").is_file(),
        "the built SPA (frontend/dist/index.html)",
        "make frontend",
    )
    .is_ok()
}

async fn log_in(b: &Browser, server: &TestServer, username: &str) {
    b.goto(&server.url("/login")).await;
    b.wait_for("#username")
        .await
        .send_keys(username)
        .await
        .unwrap();
    b.wait_for("#password")
        .await
        .send_keys(PASSWORD)
        .await
        .unwrap();
    b.wait_for("button[data-testid=login-submit]")
        .await
        .click()
        .await
        .unwrap();
}

fn shots() -> std::path::PathBuf {
    std::env::temp_dir().join("opsdeck-screenshots")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_navigate_reload_logout() {
    if !spa_built() {
        return;
    }
    let server = TestServer::start().await;
    server.create_user("alice", Role::Admin).await;
    let Ok(b) = Browser::start().await else {
        return;
    };

    b.goto(&server.url("/admin/users")).await;
    b.wait_for_path("/login").await;
    b.screenshot(&shots().join("login.png")).await;

    // Wrong password: an error on the form, still on /login.
    b.wait_for("#username")
        .await
        .send_keys("alice")
        .await
        .unwrap();
    b.wait_for("#password")
        .await
        .send_keys("not-the-password-9")
        .await
        .unwrap();
    b.wait_for("button[data-testid=login-submit]")
        .await
        .click()
        .await
        .unwrap();
    let err = b.wait_for("[data-testid=form-error]").await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while err.text().await.unwrap().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no error shown for a wrong password"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(err
        .text()
        .await
        .unwrap()
        .contains("invalid username or password"));

    log_in(&b, &server, "alice").await;
    b.wait_for("[data-testid=nav-dashboard]").await;
    assert_eq!(b.wait_for("h1").await.text().await.unwrap(), "Dashboard");
    b.screenshot(&shots().join("dashboard.png")).await;

    b.wait_for("[data-testid=nav-users]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_path("/admin/users").await;
    let table = b.wait_for("[data-testid=users-table]").await;
    assert!(table.text().await.unwrap().contains("alice"));
    b.screenshot(&shots().join("users.png")).await;

    // A deep link survives a reload.
    b.client.refresh().await.unwrap();
    b.wait_for("[data-testid=users-table]").await;
    b.wait_for_path("/admin/users").await;

    b.wait_for("[data-testid=nav-audit]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_path("/admin/audit").await;
    let audit = b.wait_for("[data-testid=audit-table]").await;
    assert!(audit.text().await.unwrap().contains("auth.login"));

    b.wait_for("[data-testid=logout]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_path("/login").await;
    b.goto(&server.url("/admin/users")).await;
    b.wait_for_path("/login").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_sees_no_admin_pages() {
    if !spa_built() {
        return;
    }
    let server = TestServer::start().await;
    server.create_user("victor", Role::Viewer).await;
    let Ok(b) = Browser::start().await else {
        return;
    };
    log_in(&b, &server, "victor").await;
    b.wait_for("[data-testid=nav-dashboard]").await;
    for hidden in ["nav-users", "nav-tokens", "nav-audit", "nav-approvals"] {
        assert!(
            !b.exists(&format!("[data-testid={hidden}]")).await,
            "a viewer must not see {hidden}"
        );
    }
    assert!(b.exists("[data-testid=nav-incidents]").await);
    b.goto(&server.url("/admin/users")).await;
    b.wait_for("[data-testid=no-access]").await;
    assert!(!b.exists("[data-testid=users-table]").await);
    // The API refuses anyway.
    let api = server.login("victor").await;
    assert_eq!(api.get("/api/v1/users").await.status(), 403);
    b.close().await;
}
