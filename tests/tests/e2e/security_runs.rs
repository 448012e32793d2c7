//! Issue 19, finding 6: viewers read container logs through runs. The
//! output (and result) of `logs`, `exec`, `database` and `http` steps is
//! hidden from viewers in `GET /runs/{id}` and the run's event stream (they
//! see status and timing); operators read it. Credentials in URLs are
//! masked when output is written, so the stored output never holds them.

use std::time::Duration;

use opsdeck_e2e::flows::runbooks::{create, start, wait_status};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{ServiceSpec, Stack, MOSAIC};
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::util::{engine, ok_json, poll, release, sse_until};
use opsdeck_wire::{Role, Run, RunStatus, RunStep, ServiceOverview};
use serde_json::json;

fn step<'a>(run: &'a Run, name: &str) -> &'a RunStep {
    run.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no step {name}"))
}

/// Every stored output, result and error of run `id`, as one text.
async fn stored(server: &TestServer, id: i64) -> String {
    let rows: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT output, result::text, error FROM run_steps WHERE run_id = $1")
            .bind(id)
            .fetch_all(&server.pool)
            .await
            .expect("run steps");
    format!("{rows:?}")
}

/// The viewer's view of run `id` through the event stream's first event.
async fn streamed(viewer: &Api, id: i64) -> Run {
    let res = viewer.get(&format!("/api/v1/runs/{id}/events")).await;
    assert_eq!(res.status(), 200);
    let (_, data) = sse_until(res, Duration::from_secs(30), "run event", |e, _| e == "run").await;
    serde_json::from_str(&data).expect("run JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_step_output_is_hidden_from_viewers_and_credentials_masked() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let target = Target::start(Behaviour::Ok("internal answer".into()));
    let url = format!("http://svc:s3cr3t-pw@127.0.0.1:{}/", target.port());
    let rb = create(
        &admin,
        r#"
name: peek-http
title: Peek over HTTP
params:
  - name: url
    type: text
steps:
  - name: probe
    kind: http
    url: "{{params.url}}"
    contains: internal
  - name: nap
    kind: sleep
    duration: 10ms
"#,
    )
    .await;
    let run = start(&op, rb.id, json!({"url": url})).await;
    let id = run.summary.id;
    let done = wait_status(&op, id, RunStatus::Succeeded).await;

    // The operator reads the output, with the password masked.
    let probe = step(&done, "probe");
    assert!(!probe.output_hidden);
    let masked = format!("http://svc:***@127.0.0.1:{}/", target.port());
    assert!(probe.output.contains(&masked), "{}", probe.output);
    assert!(
        !stored(&server, id).await.contains("s3cr3t-pw"),
        "stored output holds the password"
    );

    // The viewer sees status and timing only.
    for run in [
        viewer.json::<Run>(&format!("/api/v1/runs/{id}")).await,
        streamed(&viewer, id).await,
    ] {
        let probe = step(&run, "probe");
        assert!(probe.output_hidden, "{probe:?}");
        assert!(
            probe.output.is_empty() && probe.result.is_null(),
            "{probe:?}"
        );
        assert!(probe.started_at.is_some() && probe.finished_at.is_some());
        assert_eq!(probe.status, opsdeck_wire::StepStatus::Succeeded);
        // Steps that carry nothing sensitive stay readable.
        let nap = step(&run, "nap");
        assert!(
            !nap.output_hidden && nap.output.contains("sleeping"),
            "{nap:?}"
        );
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_and_exec_output_is_hidden_from_viewers() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let forge = [ServiceSpec {
        requires: &[],
        ..MOSAIC[3]
    }];
    let stack = Stack::up(&engine, "sec-runs", &forge)
        .await
        .expect("forge stack");
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": stack.compose_yaml(), "project": stack.project,
                    "engine": "main", "apply": true, "checks": []}),
        )
        .await;
    ok_json::<serde_json::Value>(res, "importing the stack").await;
    poll(Duration::from_secs(60), "gitea running", async || {
        let list: Vec<ServiceOverview> = op.json("/api/v1/services").await;
        list.iter()
            .any(|o| o.service.name == "gitea" && o.containers.iter().any(|c| c.state == "running"))
            .then_some(())
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    let rb = create(
        &admin,
        r#"
name: peek
title: Logs and a DSN
params:
  - name: service
    type: service
steps:
  - name: logs
    kind: logs
    service: "{{params.service}}"
    lines: 20
  - name: dsn
    kind: exec
    service: "{{params.service}}"
    argv: ["echo", "connect to postgres://u:secret@h/db please"]
"#,
    )
    .await;
    let run = start(&op, rb.id, json!({"service": "gitea"})).await;
    let id = run.summary.id;
    let done = wait_status(&op, id, RunStatus::Succeeded).await;
    assert!(
        step(&done, "logs").output.contains("gitea starting"),
        "the operator reads the logs"
    );
    let dsn = step(&done, "dsn");
    assert!(
        dsn.output.contains("postgres://u:***@h/db"),
        "{}",
        dsn.output
    );
    assert!(
        !format!("{:?}", dsn.result).contains("secret"),
        "{:?}",
        dsn.result
    );
    assert!(
        !stored(&server, id).await.contains("u:secret@"),
        "stored output holds the password"
    );

    for run in [
        viewer.json::<Run>(&format!("/api/v1/runs/{id}")).await,
        streamed(&viewer, id).await,
    ] {
        for name in ["logs", "dsn"] {
            let s = step(&run, name);
            assert!(
                s.output_hidden && s.output.is_empty() && s.result.is_null(),
                "{s:?}"
            );
        }
    }
    drop(stack);
    server.stop().await;
    release(engine).await;
}
