//! Read-only mode (`OPSDECK_READ_ONLY`) on the private engine: container
//! and stack actions, exec and the runbook steps that change containers
//! (container, exec, scale) are refused with 403 `read_only` and a message
//! naming the setting; reading (logs, inspect, the inventory) and compose
//! imports still work; a volume backup (its helper container) fails with
//! the same reason; nothing changed on the engine, and the refusals are in
//! the audit log as denied.

use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, ListContainersOptionsBuilder};
use opsdeck_e2e::flows::backups::{create_plan, create_target, finished, run_plan, run_text};
use opsdeck_e2e::flows::runbooks::{create, start, wait_run};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{Stack, DOCS};
use opsdeck_e2e::util::{engine, ok_json, poll, release};
use opsdeck_wire::{Role, RunState, RunStatus, ServiceOverview, StepStatus};
use serde_json::{json, Value};

/// Status, code and message of a refused request.
async fn refusal(res: reqwest::Response) -> (u16, String, String) {
    let status = res.status().as_u16();
    let v: Value = res.json().await.expect("JSON error body");
    (
        status,
        v["error"]["code"].as_str().unwrap_or_default().to_owned(),
        v["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

fn assert_read_only(what: &str, (status, code, message): (u16, String, String)) {
    assert_eq!(
        (status, code.as_str()),
        (403, "read_only"),
        "{what}: {message}"
    );
    assert!(
        message.contains("OPSDECK_READ_ONLY") && message.contains("refused"),
        "{what}: {message}"
    );
}

async fn docs_service(api: &Api) -> Option<ServiceOverview> {
    let list: Vec<ServiceOverview> = api.json("/api/v1/services").await;
    list.into_iter().find(|o| o.service.name == "docs")
}

const CHANGES: &str = r#"
name: read-only-changes
title: Tries every kind that changes containers
steps:
  - name: restart
    kind: container
    service: docs
    action: restart
    on_failure: continue
  - name: touch
    kind: exec
    service: docs
    argv: ["touch", "/tmp/changed"]
    on_failure: continue
  - name: more
    kind: scale
    service: docs
    replicas: "2"
    on_failure: continue
  - name: look
    kind: status
    service: docs
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_mode_refuses_every_change_to_containers() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start_with(|s| s.read_only = true).await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    let stack = Stack::up(&engine, "ro", DOCS).await.expect("the stack");
    // Importing changes the inventory, not containers: allowed.
    let _: Value = ok_json(
        admin
            .post(
                "/api/v1/inventory/compose",
                &json!({"content": stack.compose_yaml(), "project": stack.project,
                        "engine": "main", "apply": true, "checks": []}),
            )
            .await,
        "importing the stack",
    )
    .await;
    let docs = poll(
        Duration::from_secs(60),
        "docs running",
        async || match docs_service(&op).await {
            Some(o) if o.run_state == RunState::Running && o.containers.len() == 1 => Ok(o),
            other => Err(format!("{:?}", other.map(|o| o.run_state))),
        },
    )
    .await;
    let id = docs.service.id;
    let name = stack.container("docs");
    let started = |c: bollard::models::ContainerInspectResponse| {
        c.state.and_then(|s| s.started_at).unwrap_or_default()
    };
    let before = started(
        stack
            .docker()
            .inspect_container(&name, None::<InspectContainerOptions>)
            .await
            .expect("inspect"),
    );

    // The API: actions, stack actions, exec.
    for action in ["restart", "stop", "kill", "pause"] {
        let res = op
            .post(
                &format!("/api/v1/services/{id}/actions"),
                &json!({"action": action, "confirm": "docs"}),
            )
            .await;
        assert_read_only(action, refusal(res).await);
    }
    let res = op
        .post(
            &format!("/api/v1/stacks/{}/actions", stack.project),
            &json!({"action": "restart", "confirm": stack.project}),
        )
        .await;
    assert_read_only("stack restart", refusal(res).await);
    let res = op
        .post(
            &format!("/api/v1/services/{id}/exec"),
            &json!({"argv": ["touch", "/tmp/changed"]}),
        )
        .await;
    assert_read_only("exec", refusal(res).await);

    // Reading stays open.
    let res = op.get(&format!("/api/v1/services/{id}/logs?tail=5")).await;
    assert_eq!(res.status(), 200, "logs");
    let res = op.get(&format!("/api/v1/services/{id}/inspect")).await;
    assert_eq!(res.status(), 200, "inspect");

    // Runbook steps that change containers fail with the same message.
    let rb = create(&admin, CHANGES).await;
    let run = start(&op, rb.id, json!({})).await;
    let done = wait_run(&op, run.summary.id, "the run ends", |r| {
        !matches!(
            r.summary.status,
            RunStatus::Queued | RunStatus::Running | RunStatus::Waiting
        )
    })
    .await;
    for step in ["restart", "touch", "more"] {
        let s = done
            .steps
            .iter()
            .find(|s| s.name == step)
            .expect("the step");
        assert_eq!(s.status, StepStatus::Failed, "{step}: {s:#?}");
        let error = s.error.as_deref().unwrap_or_default();
        assert!(
            error.contains("read-only") && error.contains("OPSDECK_READ_ONLY"),
            "{step}: {error}"
        );
    }
    let look = done.steps.iter().find(|s| s.name == "look").expect("look");
    assert_eq!(look.status, StepStatus::Succeeded, "reading steps run");

    // A volume backup needs a helper container: refused the same way.
    let tmp = tempfile::tempdir().expect("tempdir");
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let plan = create_plan(
        &admin,
        json!({"name": "vol", "target": "local",
               "sources": [{"kind": "volume", "volume": "ro-data"}]}),
    )
    .await;
    let backup = finished(&op, run_plan(&op, plan.id).await).await;
    let text = run_text(&backup);
    assert_eq!(backup.summary.status, RunStatus::Failed, "{text}");
    assert!(
        text.contains("read-only") && text.contains("OPSDECK_READ_ONLY"),
        "{text}"
    );

    // Nothing changed on the engine.
    let after = stack
        .docker()
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    assert_eq!(after.state.as_ref().and_then(|s| s.running), Some(true));
    assert_eq!(started(after), before, "the container was not restarted");
    let changed = stack
        .docker()
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    assert!(changed.state.and_then(|s| s.paused) != Some(true));
    let mut filters = std::collections::HashMap::new();
    filters.insert(
        "label".to_owned(),
        vec![format!("com.docker.compose.project={}", stack.project)],
    );
    let all = stack
        .docker()
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list");
    assert_eq!(all.len(), DOCS.len(), "scale created no replica");
    let actions: i64 = sqlx::query_scalar("SELECT count(*) FROM container_actions")
        .fetch_one(&server.pool)
        .await
        .expect("actions");
    assert_eq!(actions, 0, "no action was even begun");

    // The refusals are audited as denied; nothing went unaudited.
    let denied: Vec<(String, i32)> = sqlx::query_as(
        "SELECT target, (params->>'status')::int FROM audit_log
         WHERE action = 'request.denied' ORDER BY seq",
    )
    .fetch_all(&server.pool)
    .await
    .expect("audit");
    assert_eq!(denied.len(), 6, "{denied:?}");
    assert!(
        denied.iter().all(|(_, status)| *status == 403),
        "{denied:?}"
    );
    let unaudited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'request.unaudited'")
            .fetch_one(&server.pool)
            .await
            .expect("audit");
    assert_eq!(unaudited, 0);

    drop(stack);
    drop(server);
    release(engine).await;
}
