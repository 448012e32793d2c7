//! Runbook steps on a real engine: the private dockerd runs small busybox
//! stand-ins of the MosAIc stack (each test its own compose project). Container
//! and stack actions through the panel's one action path (their
//! `container_actions` rows and audit entries, with the run's requester as
//! actor), the built-in `service-down` and `scale-service` runbooks against the
//! stack, exec of argv arrays without a shell, logs and status, prune behind
//! the default `prune` approval policy, wait_healthy timing out, child runbooks,
//! and the `container.stop.critical` policy parking a run until it is
//! cancelled.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, ContainerInspectResponse, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    StartContainerOptions, StopContainerOptions,
};
use bollard::Docker;
use chrono::{DateTime, Utc};
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::runbooks::{
    create, pending_approval, start, wait_run, wait_status, wait_succeeded, RESTART,
};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{unique_project, ServiceSpec, Stack, IMAGE, MOSAIC};
use opsdeck_e2e::util::{engine, ok_json, poll, release};
use opsdeck_wire::{
    ActionRecord, Approval, ApprovalStatus, Check, CheckStatus, ExecResult, ProbeResult, Role, Run,
    RunState, RunStatus, RunbookSummary, ServiceHealth, ServiceOverview, StatusBoard, StepStatus,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

mod approval;
mod children;
mod exec;
mod prune;
mod restart;
mod scale;
mod stack;

const WAIT: Duration = Duration::from_secs(60);
const DAY: u32 = 86_400;

/// gitea alone (its dependencies dropped): the smallest stack with an
/// application-tier service.
const FORGE: &[ServiceSpec] = &[ServiceSpec {
    requires: &[],
    ..MOSAIC[3]
}];

/// mariadb alone: a critical-tier service (`opsdeck.tier: critical`).
const VAULT: &[ServiceSpec] = &[MOSAIC[2]];

/// A server with the private engine registered as `main`, a stack on it
/// imported into the inventory, an admin and an operator.
struct Env {
    server: TestServer,
    admin: Api,
    op: Api,
    stack: Stack,
}

async fn setup(engine: &PrivateDockerd, prefix: &str, specs: &[ServiceSpec]) -> Env {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    let stack = Stack::up(engine, prefix, specs)
        .await
        .expect("bringing up the stack");
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": stack.compose_yaml(), "project": stack.project,
                    "engine": "main", "apply": true, "checks": []}),
        )
        .await;
    ok_json::<Value>(res, "importing the stack").await;
    for s in specs {
        wait_service(&op, s.name, "running with one container", |o| {
            o.run_state == RunState::Running && o.containers.len() == 1
        })
        .await;
    }
    Env {
        server,
        admin,
        op,
        stack,
    }
}

async fn service(api: &Api, name: &str) -> Option<ServiceOverview> {
    let list: Vec<ServiceOverview> = api.json("/api/v1/services").await;
    list.into_iter().find(|o| o.service.name == name)
}

async fn wait_service(
    api: &Api,
    name: &str,
    what: &str,
    want: impl Fn(&ServiceOverview) -> bool,
) -> ServiceOverview {
    poll(WAIT, &format!("{name} {what}"), async || {
        match service(api, name).await {
            Some(o) if want(&o) => Ok(o),
            Some(o) => Err(format!(
                "{:?}: {:?}",
                o.run_state,
                o.containers
                    .iter()
                    .map(|c| (&c.name, &c.state))
                    .collect::<Vec<_>>()
            )),
            None => Err("not in the inventory".into()),
        }
    })
    .await
}

async fn inspect(docker: &Docker, name: &str) -> ContainerInspectResponse {
    docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("inspecting {name}: {e}"))
}

/// `State.StartedAt` of a container, as the engine reports it.
async fn started_at(docker: &Docker, name: &str) -> DateTime<Utc> {
    let i = inspect(docker, name).await;
    let s = i
        .state
        .and_then(|s| s.started_at)
        .unwrap_or_else(|| panic!("{name} has no StartedAt"));
    DateTime::parse_from_rfc3339(&s)
        .unwrap_or_else(|e| panic!("StartedAt {s:?}: {e}"))
        .with_timezone(&Utc)
}

async fn is_running(docker: &Docker, name: &str) -> bool {
    inspect(docker, name)
        .await
        .state
        .and_then(|s| s.running)
        .unwrap_or(false)
}

async fn stop(docker: &Docker, name: &str) {
    docker
        .stop_container(name, None::<StopContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("stopping {name}: {e}"));
}

fn step<'a>(run: &'a Run, name: &str) -> &'a opsdeck_wire::RunStep {
    run.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("run {} has no step {name}", run.summary.id))
}

async fn add_check(api: &Api, service_id: i64, name: &str, spec: Value) -> Check {
    ok_json(
        api.post(
            "/api/v1/checks",
            &json!({"service_id": service_id, "name": name, "interval_s": DAY,
                    "timeout_ms": 5000, "fail_after": 1, "recover_after": 1, "spec": spec}),
        )
        .await,
        "adding a check",
    )
    .await
}

/// Runs a check now until it reports `want`.
async fn check_until(api: &Api, id: i64, want: CheckStatus) -> ProbeResult {
    poll(WAIT, &format!("check {id} {want:?}"), async || {
        let r: ProbeResult = ok_json(
            api.post(&format!("/api/v1/checks/{id}/run"), &json!({}))
                .await,
            "running a check",
        )
        .await;
        (r.status == want)
            .then_some(r.clone())
            .ok_or(format!("{r:?}"))
    })
    .await
}
