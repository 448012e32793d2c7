//! Issue 19, finding 2: exec and container actions cannot escape the audit
//! log. The server runs with a 3 s request timeout; an exec of `sleep 6`
//! and a stop that waits out its 6 s grace period both outlive their
//! request (answered 408). Each must leave an `action.started` entry (who,
//! what, which container, argv) written before the engine was asked, and
//! its completion entry (outcome, exit code, duration) once the engine is
//! done — although nobody is waiting for the answer any more.

use std::time::Duration;

use bollard::query_parameters::KillContainerOptionsBuilder;
use opsdeck_e2e::flows::containers::wait_engine;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{ServiceSpec, Stack, MOSAIC};
use opsdeck_e2e::util::{engine, ok_json, poll, release};
use opsdeck_wire::{
    ActionOutcome, ActionRecord, AuditEntry, AuditPage, EngineState, Outcome, Role, ServiceOverview,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn audit(admin: &Api, prefix: &str) -> Vec<AuditEntry> {
    let page: AuditPage = admin
        .json(&format!("/api/v1/audit?action={prefix}&limit=200"))
        .await;
    page.entries
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn long_exec_and_stop_outlive_the_request_and_stay_audited() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start_with(|s| s.request_timeout = Duration::from_secs(3)).await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    let forge = [ServiceSpec {
        requires: &[],
        ..MOSAIC[3]
    }];
    let stack = Stack::up(&engine, "sec-exec", &forge)
        .await
        .expect("forge stack");
    wait_engine(&operator, "main", EngineState::Connected).await;
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": stack.compose_yaml(), "project": stack.project,
                    "engine": "main", "apply": true, "checks": []}),
        )
        .await;
    ok_json::<serde_json::Value>(res, "importing the stack").await;
    let gitea = poll(WAIT, "gitea running", async || {
        let list: Vec<ServiceOverview> = operator.json("/api/v1/services").await;
        list.into_iter()
            .find(|o| {
                o.service.name == "gitea" && o.containers.iter().any(|c| c.state == "running")
            })
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    let id = gitea.service.id;
    let container = stack.container("gitea");

    // 1. An exec longer than the request timeout.
    let argv = json!(["sh", "-c", "sleep 6; echo finished"]);
    let res = operator
        .post(
            &format!("/api/v1/services/{id}/exec"),
            &json!({"argv": argv, "timeout_secs": 30}),
        )
        .await;
    assert_eq!(
        res.status(),
        408,
        "the exec outlives the 3 s request timeout (else this test proves nothing)"
    );
    // Durable before the engine was asked: who, argv, container.
    let started = audit(&admin, "action.started").await;
    let entry = started
        .iter()
        .find(|e| e.params["kind"] == "container.exec" && e.params["argv"] == argv)
        .unwrap_or_else(|| panic!("no action.started entry for the exec: {started:#?}"));
    assert_eq!(entry.actor, "operator-user");
    assert_eq!(entry.target.as_deref(), Some("service:gitea"));
    assert_eq!(entry.params["container"], json!(container));
    // Completed afterwards, though the request is long gone.
    let done = poll(WAIT, "the exec's completion entry", async || {
        audit(&admin, "container.exec")
            .await
            .into_iter()
            .find(|e| e.params["argv"] == argv)
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    assert_eq!(done.outcome, Outcome::Success, "{done:#?}");
    assert_eq!(done.actor, "operator-user");
    assert_eq!(done.params["exit_code"], 0, "{done:#?}");
    assert_eq!(done.params["timed_out"], false, "{done:#?}");
    assert!(done.params["duration_ms"].as_i64().is_some(), "{done:#?}");
    assert!(done.seq > entry.seq, "started is written before completion");

    // An exec that times out on its own bound is recorded as such.
    let argv = json!(["sleep", "30"]);
    let res = operator
        .post(
            &format!("/api/v1/services/{id}/exec"),
            &json!({"argv": argv, "timeout_secs": 1}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let timed = audit(&admin, "container.exec")
        .await
        .into_iter()
        .find(|e| e.params["argv"] == argv)
        .expect("the timed-out exec is audited");
    assert_eq!(timed.outcome, Outcome::Failure);
    assert_eq!(timed.params["timed_out"], true);
    assert!(
        timed
            .detail
            .as_deref()
            .unwrap_or("")
            .starts_with("timed out"),
        "{timed:#?}"
    );

    // 2. A stop that waits out its grace period: PID 1 is frozen by SIGSTOP
    // (sent by the engine, from outside the container), so SIGTERM does
    // nothing and the engine kills it after `timeout_secs`.
    stack
        .docker()
        .kill_container(
            &container,
            Some(
                KillContainerOptionsBuilder::default()
                    .signal("SIGSTOP")
                    .build(),
            ),
        )
        .await
        .expect("freezing PID 1");
    let res = operator
        .post(
            &format!("/api/v1/services/{id}/actions"),
            &json!({"action": "stop", "timeout_secs": 6}),
        )
        .await;
    assert_eq!(
        res.status(),
        408,
        "the stop outlives the 3 s request timeout (else this test proves nothing)"
    );
    let started = audit(&admin, "action.started").await;
    let entry = started
        .iter()
        .find(|e| e.params["kind"] == "container.stop")
        .unwrap_or_else(|| panic!("no action.started entry for the stop: {started:#?}"));
    assert_eq!(entry.actor, "operator-user");
    assert_eq!(entry.target.as_deref(), Some("service:gitea"));
    assert_eq!(entry.params["params"]["timeout_secs"], 6, "{entry:#?}");
    let done = poll(WAIT, "the stop's completion entry", async || {
        audit(&admin, "container.stop")
            .await
            .into_iter()
            .find(|e| e.target.as_deref() == Some("service:gitea"))
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    assert_eq!(done.outcome, Outcome::Success, "{done:#?}");
    assert!(done.seq > entry.seq);
    let activity: Vec<ActionRecord> = operator
        .json(&format!("/api/v1/services/{id}/activity"))
        .await;
    let stop = activity
        .iter()
        .find(|a| a.kind == "container.stop")
        .expect("the stop's action row");
    assert_eq!(stop.outcome, ActionOutcome::Succeeded, "{stop:#?}");
    // The 408s were audited by the actions themselves, not as failures.
    assert!(audit(&admin, "request.unaudited").await.is_empty());

    drop(stack);
    server.stop().await;
    release(engine).await;
}
