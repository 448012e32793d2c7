//! Runbooks in headless Chromium: an operator starts a runbook with one
//! click from its card, the run page waits for approval (the requester
//! cannot approve), a second operator sees the badge, approves from the run
//! page, and both watch the output arrive live without a reload.
//!
//! Screenshots land in `<workspace>/target/screenshots/`.

use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::flows::runbooks::create;
use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_wire::Role;

const UI: &str = r#"
name: ui-demo
title: Restart and verify
description: A demo for the browser test.
params:
  - name: who
    type: text
    pattern: "[a-z]+"
approval:
  required: 1
  roles: [operator, admin]
  expires: 1h
steps:
  - name: announce
    kind: notify
    message: "restarting for {{params.who}}"
  - name: settle
    kind: sleep
    duration: 1s
  - name: tell
    kind: notify
    message: "all done for {{params.who}}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_a_runbook_with_one_click_and_approve_it_as_a_second_user() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    create(&admin, UI).await;
    server.create_user("alice", Role::Operator).await;
    server.create_user("bob", Role::Operator).await;
    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&server.url("/login"), "alice", PASSWORD).await;
    b.goto(&server.url("/runbooks")).await;
    b.wait_for("[data-testid=runbook-card-ui-demo]").await;
    b.wait_for("[data-testid=run-button-ui-demo]")
        .await
        .click()
        .await
        .expect("clicking Run");
    b.wait_for("[data-testid=run-dialog]").await;
    b.wait_for("[data-testid=param-who]")
        .await
        .send_keys("team")
        .await
        .expect("typing the parameter");
    b.wait_for("[data-testid=run-reason]")
        .await
        .send_keys("browser test")
        .await
        .expect("typing the reason");
    b.wait_for("[data-testid=start-run]")
        .await
        .click()
        .await
        .expect("clicking Start");
    // The run page: waiting for approval; the requester cannot approve.
    b.wait_for("[data-testid=run-status][data-status=waiting]")
        .await;
    let url = b.current_url().await;
    let path = url
        .split_once("/runs/")
        .map(|(_, id)| format!("/runs/{id}"))
        .unwrap_or_else(|| panic!("not on a run page: {url}"));
    b.wait_for("[data-testid=approval-panel]").await;
    assert!(
        !b.exists("[data-testid=approve]").await,
        "the requester is offered no Approve button"
    );
    b.screenshot(&screenshots().join("run-waiting-approval.png"))
        .await;
    // Bob signs in: the badge counts the request; he approves on the run page.
    b.wait_for("[data-testid=logout]")
        .await
        .click()
        .await
        .expect("logging out");
    b.wait_for_path("/login").await;
    b.submit_login("bob", PASSWORD).await;
    b.wait_for_path("/").await;
    b.wait_for_text("[data-testid=approvals-badge]", "1").await;
    b.goto(&server.url(&path)).await;
    b.wait_for("[data-testid=vote-reason]").await;
    b.wait_for("[data-testid=vote-reason]")
        .await
        .send_keys("checked the parameters")
        .await
        .expect("typing the reason");
    b.wait_for("[data-testid=approve]")
        .await
        .click()
        .await
        .expect("clicking Approve");
    // The output arrives live: no reload from here on.
    b.wait_for_contains("[data-testid=step-output-0]", "restarting for team")
        .await;
    b.wait_for("[data-testid=run-status][data-status=succeeded]")
        .await;
    b.wait_for_contains("[data-testid=step-output-2]", "all done for team")
        .await;
    b.wait_for("[data-testid=run-step-2][data-status=succeeded]")
        .await;
    b.wait_for_contains("[data-testid=run-timeline]", "Approved by bob")
        .await;
    b.screenshot(&screenshots().join("run-succeeded.png")).await;
    b.close().await;
}
