//! The inventory pages in headless Chromium against the real server and the
//! private engine running the MosAIc stand-in: the services page groups the
//! stack by tier and follows a container stopped behind its back without a
//! reload (SSE); a restart from the service page succeeds; stopping a
//! critical-tier service asks for its name before anything is sent; the
//! graph draws every service and a click opens one; the engines page shows
//! the engine connected.
//!
//! Screenshots for the README land in `<workspace>/target/screenshots/`.

use std::time::Duration;

use bollard::query_parameters::StopContainerOptionsBuilder;
use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_e2e::stack::Stack;
use opsdeck_e2e::util::{ok_json, poll};
use opsdeck_wire::{Engine, EngineState, Role, RunState, ServiceOverview};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn services(api: &opsdeck_e2e::server::Api) -> Vec<ServiceOverview> {
    api.json("/api/v1/services").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inventory_pages_live_actions_graph_engines() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let Ok(engine) = tokio::task::spawn_blocking(PrivateDockerd::start)
        .await
        .expect("starting the engine")
    else {
        return;
    };
    let stack = Stack::mosaic(&engine).await.expect("the MosAIc stand-in");
    let server = TestServer::start().await;
    server.create_user("alice", Role::Admin).await;
    let admin = server.login("alice").await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "demo", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    poll(WAIT, "engine connected", async || {
        let list: Vec<Engine> = admin.json("/api/v1/engines").await;
        match list.first() {
            Some(e) if e.state == EngineState::Connected => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let _: opsdeck_wire::ImportPlan = ok_json(
        admin
            .post(
                "/api/v1/inventory/compose",
                &json!({"content": stack.compose_yaml(), "project": stack.project,
                        "engine": "demo", "apply": true, "checks": []}),
            )
            .await,
        "importing the stack",
    )
    .await;
    poll(WAIT, "every service running", async || {
        let off: Vec<String> = services(&admin)
            .await
            .into_iter()
            .filter(|o| o.run_state != RunState::Running)
            .map(|o| format!("{}: {:?}", o.service.name, o.run_state))
            .collect();
        if off.is_empty() {
            Ok(())
        } else {
            Err(off.join(", "))
        }
    })
    .await;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 900).await;
    b.sign_in(&server.url("/login"), "alice", PASSWORD).await;

    // Services, grouped by tier, all running.
    b.wait_for("[data-testid=nav-services]")
        .await
        .click()
        .await
        .expect("nav to services");
    b.wait_for_path("/services").await;
    for tier in ["critical", "application", "support"] {
        b.wait_for(&format!("[data-testid=tier-{tier}]")).await;
    }
    for name in ["npm", "postgres", "gitea", "woodpecker", "redis"] {
        b.wait_for_contains(&format!("[data-testid=service-state-{name}]"), "running")
            .await;
    }
    b.screenshot(&screenshots().join("services.png")).await;

    // Live: a container stopped behind Opsdeck's back shows as stopped
    // without a reload (engine events → cache → SSE → refetch).
    stack
        .docker()
        .stop_container(
            &stack.container("bookstack"),
            Some(StopContainerOptionsBuilder::default().t(1).build()),
        )
        .await
        .expect("stopping bookstack with the engine's API");
    b.wait_for_contains("[data-testid=service-state-bookstack]", "stopped")
        .await;
    b.wait_for_path("/services").await;

    // Restart gitea from its page.
    b.wait_for("[data-testid=service-row-gitea] a")
        .await
        .click()
        .await
        .expect("opening gitea");
    b.wait_for_contains("h1", "gitea").await;
    b.wait_for(&format!(
        "[data-testid=container-row-{}]",
        stack.container("gitea")
    ))
    .await;
    b.wait_for("[data-testid=action-restart]")
        .await
        .click()
        .await
        .expect("clicking Restart");
    b.wait_for_contains("[data-testid=action-result]", "succeeded")
        .await;
    b.screenshot(&screenshots().join("service.png")).await;

    // Stopping a critical service: the name must be typed first.
    let postgres = services(&admin)
        .await
        .into_iter()
        .find(|o| o.service.name == "postgres")
        .expect("postgres in the inventory");
    b.goto(&server.url(&format!("/services/{}", postgres.service.id)))
        .await;
    b.wait_for_contains("h1", "postgres").await;
    b.wait_for("[data-testid=action-stop]")
        .await
        .click()
        .await
        .expect("clicking Stop");
    let input = b.wait_for("[data-testid=confirm-name]").await;
    let confirm = b.wait_for("[data-testid=confirm]").await;
    assert!(
        !confirm.is_enabled().await.expect("confirm enabled?"),
        "the confirm button is disabled until the name is typed"
    );
    input.send_keys("postgres").await.expect("typing the name");
    poll(Duration::from_secs(10), "confirm enabled", async || {
        if confirm.is_enabled().await.map_err(|e| e.to_string())? {
            Ok(())
        } else {
            Err("still disabled".into())
        }
    })
    .await;
    confirm.click().await.expect("confirming");
    b.wait_for_contains("[data-testid=action-result]", "succeeded")
        .await;
    poll(WAIT, "postgres stopped", async || {
        let s = services(&admin)
            .await
            .into_iter()
            .find(|o| o.service.name == "postgres")
            .map(|o| o.run_state);
        if s == Some(RunState::Stopped) {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;

    // The graph: every service drawn; a click opens the service.
    b.wait_for("[data-testid=nav-graph]")
        .await
        .click()
        .await
        .expect("nav to graph");
    b.wait_for_path("/graph").await;
    for o in services(&admin).await {
        b.wait_for(&format!("[data-testid=graph-node-{}]", o.service.name))
            .await;
    }
    b.screenshot(&screenshots().join("graph.png")).await;
    let woodpecker = services(&admin)
        .await
        .into_iter()
        .find(|o| o.service.name == "woodpecker")
        .expect("woodpecker");
    b.wait_for("[data-testid=graph-node-woodpecker]")
        .await
        .click()
        .await
        .expect("clicking the woodpecker node");
    b.wait_for_path(&format!("/services/{}", woodpecker.service.id))
        .await;

    // Engines: connected, with its version.
    b.wait_for("[data-testid=nav-engines]")
        .await
        .click()
        .await
        .expect("nav to engines");
    b.wait_for_contains("[data-testid=engine-state-demo]", "connected")
        .await;
    b.screenshot(&screenshots().join("engines.png")).await;

    b.close().await;
    server.stop().await;
    drop(stack);
    tokio::task::spawn_blocking(move || drop(engine))
        .await
        .expect("releasing the engine");
}
