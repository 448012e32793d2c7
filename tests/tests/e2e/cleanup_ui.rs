//! The clean-up in headless Chromium: on the Engines page an operator opens
//! an engine's disk usage, previews a clean-up (the stopped container of no
//! service listed with its size and reason, the service's container listed
//! as kept), confirms the destructive dialog and lands on the run page of
//! the `docker-cleanup` run, which waits for the `prune` approval.
//!
//! Screenshots land in `<workspace>/target/screenshots/`.

use std::time::Duration;

use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::runbooks::wait_status;
use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_e2e::stack::IMAGE;
use opsdeck_e2e::util::{ok_json, poll, release};
use opsdeck_wire::{Role, RunStatus};
use serde_json::{json, Value};

fn docker(engine: &PrivateDockerd, args: &[&str]) {
    let out = engine.cli().args(args).output().expect("running docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_previews_and_confirms_a_cleanup_on_the_engines_page() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    // An engine of the test's own: the clean-up removes what it finds.
    let Ok(engine) = tokio::task::spawn_blocking(PrivateDockerd::dedicated)
        .await
        .expect("starting the engine")
    else {
        return;
    };
    let e = engine.clone();
    tokio::task::spawn_blocking(move || e.build_busybox_image(IMAGE))
        .await
        .expect("build task")
        .expect("the busybox image");
    docker(
        &engine,
        &[
            "create",
            "--name",
            "ui-stray",
            "--network",
            "none",
            IMAGE,
            "true",
        ],
    );
    docker(
        &engine,
        &[
            "create",
            "--name",
            "ui-web",
            "--network",
            "none",
            IMAGE,
            "true",
        ],
    );

    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    ok_json::<Value>(
        admin
            .post(
                "/api/v1/engines",
                &json!({"name": "main", "endpoint": engine.host()}),
            )
            .await,
        "registering the engine",
    )
    .await;
    ok_json::<Value>(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "web", "engine": "main", "container_name": "ui-web"}),
            )
            .await,
        "creating the service",
    )
    .await;
    poll(
        Duration::from_secs(30),
        "the engine connected",
        async || {
            let engines: Vec<opsdeck_wire::Engine> = admin.json("/api/v1/engines").await;
            match engines.iter().find(|e| e.name == "main") {
                Some(e) if e.state == opsdeck_wire::EngineState::Connected => Ok(()),
                other => Err(format!("{:?}", other.map(|e| e.state))),
            }
        },
    )
    .await;
    server.create_user("alice", Role::Operator).await;
    let alice = server.login("alice").await;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1100).await;
    b.sign_in(&server.url("/login"), "alice", PASSWORD).await;
    b.goto(&server.url("/engines")).await;
    b.wait_for("[data-testid=engine-disk-main]")
        .await
        .click()
        .await
        .expect("opening the disk usage");
    b.wait_for_contains("[data-testid=disk-containers]", "Containers")
        .await;
    b.wait_for("[data-testid=disk-images]").await;
    b.wait_for("[data-testid=disk-build_cache]").await;

    // The default form: dangling images, unused images older than 30 days,
    // stopped containers of no service; no volumes.
    b.wait_for("[data-testid=cleanup-preview]")
        .await
        .click()
        .await
        .expect("previewing");
    b.wait_for_contains(
        "[data-testid=cleanup-items-ui-stray]",
        "belongs to no service",
    )
    .await;
    b.wait_for_contains(
        "[data-testid=cleanup-kept-ui-web]",
        "belongs to service web",
    )
    .await;
    b.screenshot(&screenshots().join("engines-cleanup-preview.png"))
        .await;
    b.wait_for("[data-testid=cleanup-apply]")
        .await
        .click()
        .await
        .expect("removing");
    b.wait_for_contains("[role=dialog]", "cannot be undone")
        .await;
    b.wait_for("[data-testid=confirm]")
        .await
        .click()
        .await
        .expect("confirming");

    let run: i64 = poll(Duration::from_secs(15), "the preview's run", async || {
        let r: Option<i64> = sqlx::query_scalar("SELECT run_id FROM cleanup_previews")
            .fetch_one(&server.pool)
            .await
            .map_err(|e| e.to_string())?;
        r.ok_or_else(|| "no run yet".to_owned())
    })
    .await;
    b.wait_for_path(&format!("/runs/{run}")).await;
    // The run waits for the prune policy's vote; nothing was removed yet.
    wait_status(&alice, run, RunStatus::Waiting).await;
    let out = engine
        .cli()
        .args(["ps", "--all", "--format", "{{.Names}}"])
        .output()
        .expect("docker ps");
    let names = String::from_utf8_lossy(&out.stdout);
    assert!(names.contains("ui-stray"), "{names}");

    b.close().await;
    server.stop().await;
    release(engine).await;
}
