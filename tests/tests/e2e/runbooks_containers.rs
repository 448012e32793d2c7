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
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{unique_project, ServiceSpec, Stack, IMAGE, MOSAIC};
use opsdeck_wire::{
    ActionRecord, Approval, ApprovalStatus, Check, CheckStatus, ExecResult, ProbeResult, Role, Run,
    RunState, RunStatus, RunbookSummary, ServiceHealth, ServiceOverview, StatusBoard, StepStatus,
};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

use crate::runbooks::{create, pending_approval, start, wait_run, wait_status};
use crate::util::{engine, ok_json, poll, release};

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
                    "engine": "main", "apply": true}),
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

/// A runbook restarting the service it is given (also used by `faults.rs`).
pub(crate) const RESTART: &str = r#"
name: restart-one
title: Restart a service
target_param: service
params:
  - name: service
    type: service
steps:
  - name: restart
    kind: container
    service: "{{params.service}}"
    action: restart
    timeout: 1m
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_step_restarts_through_the_action_path_as_the_requester() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-restart", FORGE).await;
    let name = env.stack.container("gitea");
    let docker = env.stack.docker();
    let before = started_at(docker, &name).await;
    let rb = create(&env.admin, RESTART).await;
    let run = start(&env.op, rb.id, json!({"service": "gitea"})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;

    // The engine restarted the container.
    let after = started_at(docker, &name).await;
    assert!(after > before, "StartedAt moved: {before} → {after}");
    assert!(is_running(docker, &name).await);
    let s = step(&done, "restart");
    assert_eq!(s.status, StepStatus::Succeeded);
    assert!(
        s.output.contains(&format!("restart {name}: ok")),
        "the output names the container: {:?}",
        s.output
    );
    assert_eq!(s.result["containers"], json!([name]));

    // The panel's one action path: its row and its audit entry, both with
    // the run's requester as actor.
    let action_id = s.result["action_id"].as_i64().expect("action_id");
    let (kind, target, actor, outcome, steps): (String, String, String, String, Value) =
        sqlx::query_as(
            "SELECT kind, target, actor, outcome, steps FROM container_actions WHERE id = $1",
        )
        .bind(action_id)
        .fetch_one(&env.server.pool)
        .await
        .expect("the container_actions row");
    assert_eq!(
        (
            kind.as_str(),
            target.as_str(),
            actor.as_str(),
            outcome.as_str()
        ),
        ("container.restart", "gitea", "operator-user", "succeeded")
    );
    assert_eq!(steps[0]["container"], json!(name), "{steps}");
    let audit: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT actor, actor_kind, target, outcome FROM audit_log WHERE action = 'container.restart'",
    )
    .fetch_all(&env.server.pool)
    .await
    .unwrap();
    assert_eq!(
        audit,
        vec![(
            "operator-user".to_owned(),
            "user".to_owned(),
            Some("service:gitea".to_owned()),
            "success".to_owned()
        )]
    );
    let step_audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'run.step.container' AND actor = 'operator-user'",
    )
    .fetch_one(&env.server.pool)
    .await
    .unwrap();
    assert_eq!(step_audit, 1);
    // It is in the service's activity list like any restart.
    let svc = service(&env.op, "gitea").await.expect("gitea");
    let activity: Vec<ActionRecord> = env
        .op
        .json(&format!("/api/v1/services/{}/activity", svc.service.id))
        .await;
    assert_eq!(activity.first().map(|r| r.id), Some(action_id));

    drop(env);
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_down_runbook_brings_a_stopped_service_back() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-down", MOSAIC).await;
    let op = &env.op;
    let name = env.stack.container("gitea");
    let docker = env.stack.docker();
    let gitea = service(op, "gitea").await.expect("gitea").service.id;
    // Its health checks: the container runs, and its /healthz answers.
    let containers = add_check(op, gitea, "containers", json!({"kind": "container"})).await;
    let healthz = add_check(
        op,
        gitea,
        "healthz",
        json!({"kind": "http", "url": env.stack.health_url("gitea")}),
    )
    .await;
    check_until(op, containers.id, CheckStatus::Ok).await;
    check_until(op, healthz.id, CheckStatus::Ok).await;

    // gitea goes down behind Opsdeck's back; the board sees it.
    stop(docker, &name).await;
    check_until(op, containers.id, CheckStatus::Critical).await;
    check_until(op, healthz.id, CheckStatus::Critical).await;
    poll(WAIT, "gitea down on the board", async || {
        let b: StatusBoard = op.json("/api/v1/status").await;
        let h = b
            .services
            .iter()
            .find(|s| s.name == "gitea")
            .map(|s| s.health);
        (h == Some(ServiceHealth::Down))
            .then_some(())
            .ok_or(format!("{h:?}"))
    })
    .await;

    let list: Vec<RunbookSummary> = op.json("/api/v1/runbooks").await;
    let down = list
        .iter()
        .find(|r| r.name == "service-down" && r.builtin)
        .expect("the built-in service-down runbook");
    let run = start(op, down.id, json!({"service": "gitea"})).await;
    let done = wait_run(op, run.summary.id, "service-down finished", |r| {
        !r.summary.status.is_active()
    })
    .await;
    assert_eq!(
        done.summary.status,
        RunStatus::Succeeded,
        "{:#?}",
        done.steps
            .iter()
            .map(|s| (&s.name, s.status, &s.error, &s.output))
            .collect::<Vec<_>>()
    );

    let status = step(&done, "status");
    assert_eq!(status.result["health"], "down", "{:?}", status.result);
    assert!(status.output.contains("gitea: down"), "{}", status.output);
    let logs = step(&done, "logs");
    assert!(
        logs.result["lines"].as_u64().unwrap_or(0) > 0,
        "{:?}",
        logs.result
    );
    assert!(logs.output.contains("gitea starting"), "{}", logs.output);
    assert!(
        logs.output.contains(&format!("── {name} (exited) ──")),
        "{}",
        logs.output
    );
    let restart = step(&done, "restart");
    assert_eq!(restart.result["containers"], json!([name]));
    let waited = step(&done, "wait_healthy");
    assert_eq!(waited.status, StepStatus::Succeeded);
    assert!(
        waited
            .output
            .contains(&format!("{name} running; checks 2 ok")),
        "wait_healthy saw the container running and both checks pass: {}",
        waited.output
    );
    let verify = step(&done, "verify");
    assert_eq!(verify.result["ok"], 2, "{:?}", verify.result);
    assert_eq!(verify.result["critical"], 0);
    assert_eq!(step(&done, "recovered").status, StepStatus::Succeeded);

    // The engine agrees: the container runs and answers again.
    assert!(is_running(docker, &name).await);
    env.stack
        .wait_healthy(Duration::from_secs(10))
        .await
        .expect("gitea answers /healthz again");
    let o = wait_service(op, "gitea", "running", |o| o.run_state == RunState::Running).await;
    assert_eq!(o.containers[0].name, name);

    drop(env);
    release(engine).await;
}

const EXEC: &str = r#"
name: look-and-exec
title: Logs, status and exec
params:
  - name: service
    type: service
  - name: note
    type: text
steps:
  - name: logs
    kind: logs
    service: "{{params.service}}"
    lines: 20
  - name: status
    kind: status
    service: "{{params.service}}"
  - name: literal
    kind: exec
    service: "{{params.service}}"
    argv: ["echo", "$(id); touch /tmp/pwned; rm -rf /"]
  - name: from_params
    kind: exec
    service: "{{params.service}}"
    argv: ["echo", "{{params.note}}", "{{steps.status.health}}"]
  - name: exits
    kind: exec
    service: "{{params.service}}"
    argv: ["sh", "-c", "exit 3"]
  - name: never
    kind: sleep
    duration: 10ms
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_takes_argv_literally_and_fails_on_a_non_zero_exit() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-exec", FORGE).await;
    let name = env.stack.container("gitea");
    let rb = create(&env.admin, EXEC).await;
    let note = "`touch /tmp/pwned`; $(id) && rm -rf / | cat /etc/passwd";
    let run = start(&env.op, rb.id, json!({"service": "gitea", "note": note})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Failed).await;

    // Logs: the container's lines, with the engine's timestamps.
    let logs = step(&done, "logs");
    assert_eq!(logs.status, StepStatus::Succeeded);
    assert!(
        logs.result["lines"].as_u64().unwrap_or(0) >= 1,
        "{:?}",
        logs.result
    );
    assert_eq!(logs.result["containers"], 1);
    let line = logs
        .output
        .lines()
        .find(|l| l.ends_with("gitea starting"))
        .unwrap_or_else(|| panic!("no startup line: {}", logs.output));
    let stamp = line.split_whitespace().next().unwrap_or_default();
    assert!(DateTime::parse_from_rfc3339(stamp).is_ok(), "{line}");
    // Status: the board's health, as a named output.
    let status = step(&done, "status");
    let health = status.result["health"]
        .as_str()
        .unwrap_or_else(|| panic!("no health: {:?}", status.result))
        .to_owned();
    assert!(
        [
            "operational",
            "unknown",
            "degraded",
            "down",
            "impacted",
            "maintenance"
        ]
        .contains(&health.as_str()),
        "{health}"
    );
    assert!(
        status.output.starts_with(&format!("gitea: {health}")),
        "{}",
        status.output
    );

    // The argv element is one word: no shell saw it.
    let literal = step(&done, "literal");
    assert_eq!(literal.status, StepStatus::Succeeded);
    assert_eq!(
        literal.result["stdout"],
        "$(id); touch /tmp/pwned; rm -rf /"
    );
    assert_eq!(literal.result["exit_code"], 0);
    assert_eq!(literal.result["container"], json!(name));
    assert!(
        literal
            .output
            .contains("$(id); touch /tmp/pwned; rm -rf /\n"),
        "{}",
        literal.output
    );
    // A parameter and an earlier step's output are values in argv too.
    let fed = step(&done, "from_params");
    assert_eq!(fed.status, StepStatus::Succeeded);
    assert_eq!(fed.result["stdout"], json!(format!("{note} {health}")));

    // A non-zero exit fails the step and stops the run.
    let exits = step(&done, "exits");
    assert_eq!(exits.status, StepStatus::Failed);
    assert_eq!(exits.error.as_deref(), Some("exit code 3"));
    assert_eq!(step(&done, "never").status, StepStatus::Skipped);
    assert!(
        done.error.as_deref().unwrap_or("").contains("exit code 3"),
        "{:?}",
        done.error
    );

    // Nothing the text asked for happened in the container.
    let id = service(&env.op, "gitea").await.expect("gitea").service.id;
    let r: ExecResult = ok_json(
        env.op
            .post(
                &format!("/api/v1/services/{id}/exec"),
                &json!({"argv": ["ls", "/tmp/pwned", "/www/healthz", "/bin/sh"]}),
            )
            .await,
        "exec ls",
    )
    .await;
    assert_eq!(r.exit_code, Some(1), "only /tmp/pwned is missing: {r:?}");
    assert!(r.stderr.contains("/tmp/pwned"), "{r:?}");
    assert!(
        r.stdout.contains("/www/healthz") && r.stdout.contains("/bin/sh"),
        "{r:?}"
    );
    env.stack
        .wait_healthy(Duration::from_secs(10))
        .await
        .expect("gitea still answers");

    drop(env);
    release(engine).await;
}

/// The engine's containers of one compose service: (name, labels, running).
async fn compose_containers(
    docker: &Docker,
    project: &str,
    service: &str,
) -> Vec<(String, HashMap<String, String>, bool)> {
    let filters = HashMap::from([(
        "label",
        vec![
            format!("com.docker.compose.project={project}"),
            format!("com.docker.compose.service={service}"),
        ],
    )]);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("listing containers");
    let mut out: Vec<_> = list
        .into_iter()
        .map(|c| {
            let name = c
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_owned())
                .unwrap_or_default();
            let running = c.state.map(|s| s.to_string()) == Some("running".into());
            (name, c.labels.unwrap_or_default(), running)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_service_runbook_scales_a_compose_service_up_and_down() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-scale", FORGE).await;
    let docker = env.stack.docker();
    let project = env.stack.project.clone();
    let list: Vec<RunbookSummary> = env.op.json("/api/v1/runbooks").await;
    let scale = list
        .iter()
        .find(|r| r.name == "scale-service" && r.builtin)
        .expect("the built-in scale-service runbook")
        .id;

    let run = start(&env.op, scale, json!({"service": "gitea", "replicas": 3})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "scale");
    assert_eq!(s.result["before"], 1);
    assert_eq!(
        s.result["created"],
        json!([format!("{project}-gitea-2"), format!("{project}-gitea-3")])
    );
    let three = compose_containers(docker, &project, "gitea").await;
    let names: Vec<&str> = three.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        (1..=3)
            .map(|n| format!("{project}-gitea-{n}"))
            .collect::<Vec<_>>(),
        "{three:#?}"
    );
    for (n, (name, labels, running)) in three.iter().enumerate() {
        assert!(running, "{name} runs");
        assert_eq!(
            labels.get("com.docker.compose.container-number"),
            Some(&(n + 1).to_string()),
            "{name}"
        );
        assert_eq!(
            labels.get("com.docker.compose.oneoff").map(String::as_str),
            Some("False")
        );
    }
    assert_eq!(step(&done, "wait_healthy").status, StepStatus::Succeeded);
    let o = wait_service(&env.op, "gitea", "with 3 containers", |o| {
        o.containers.len() == 3
    })
    .await;
    assert!(o.containers.iter().all(|c| c.state == "running"), "{o:#?}");

    // Back to one: the highest numbers go, gitea-1 stays.
    let run = start(&env.op, scale, json!({"service": "gitea", "replicas": 1})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "scale");
    assert_eq!(s.result["before"], 3);
    assert_eq!(
        s.result["removed"],
        json!([format!("{project}-gitea-3"), format!("{project}-gitea-2")])
    );
    let one = compose_containers(docker, &project, "gitea").await;
    assert_eq!(one.len(), 1, "{one:#?}");
    assert_eq!(one[0].0, env.stack.container("gitea"));
    assert!(one[0].2, "gitea-1 still runs");
    wait_service(&env.op, "gitea", "with 1 container", |o| {
        o.containers.len() == 1
    })
    .await;

    drop(env);
    release(engine).await;
}

/// Percent-encodes a query value.
fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A relay to the private engine's socket that confines *container prunes*
/// to containers carrying `label`, and counts them.
///
/// The private engine is shared by every test running at the same time; an
/// unscoped `POST /containers/prune` would remove the stopped containers of
/// other tests (a service stopped on purpose, a killed container). Opsdeck's
/// request goes through unchanged otherwise: the engine itself does the prune.
struct PruneRelay {
    path: PathBuf,
    prunes: Arc<AtomicUsize>,
    task: JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl PruneRelay {
    fn start(target: &Path, label: &str) -> PruneRelay {
        let dir = tempfile::Builder::new()
            .prefix("odk-prune-")
            .tempdir_in("/tmp")
            .expect("relay dir");
        let path = dir.path().join("docker.sock");
        let listener = UnixListener::bind(&path).expect("binding the relay socket");
        let prunes = Arc::new(AtomicUsize::new(0));
        let filter = pct(&json!({ "label": [label] }).to_string());
        let (target, counter) = (target.to_owned(), prunes.clone());
        let task = tokio::spawn(async move {
            // Dropped with the task: every open connection ends with it.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((inbound, _)) = accepted else { continue };
                        conns.spawn(relay(inbound, target.clone(), filter.clone(), counter.clone()));
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        });
        PruneRelay {
            path,
            prunes,
            task,
            _dir: dir,
        }
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.path.display())
    }

    fn prunes(&self) -> usize {
        self.prunes.load(Ordering::SeqCst)
    }
}

impl Drop for PruneRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: requests are read head by head (the body copied by its
/// Content-Length); a chunked or upgraded request ends the parsing and the
/// rest is copied as it is. Answers are copied back unchanged.
async fn relay(
    inbound: UnixStream,
    target: PathBuf,
    filter: String,
    prunes: Arc<AtomicUsize>,
) -> std::io::Result<()> {
    let outbound = UnixStream::connect(&target).await?;
    let (in_r, mut in_w) = inbound.into_split();
    let (mut out_r, mut out_w) = outbound.into_split();
    let back = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut out_r, &mut in_w).await;
        let _ = in_w.shutdown().await;
    });
    let mut r = BufReader::new(in_r);
    loop {
        let mut head = Vec::new();
        loop {
            let mut line = Vec::new();
            if r.read_until(b'\n', &mut line).await? == 0 {
                let _ = out_w.shutdown().await;
                let _ = back.await;
                return Ok(());
            }
            let end = line == b"\r\n" || line == b"\n";
            head.extend_from_slice(&line);
            if end {
                break;
            }
        }
        let text = String::from_utf8_lossy(&head).into_owned();
        let (first, headers) = text.split_once("\r\n").unwrap_or((text.as_str(), ""));
        let mut parts = first.splitn(3, ' ');
        let (method, uri, version) = (
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
            parts.next().unwrap_or_default(),
        );
        let (path, query) = uri.split_once('?').unwrap_or((uri, ""));
        let uri = if method == "POST" && path.ends_with("/containers/prune") {
            prunes.fetch_add(1, Ordering::SeqCst);
            let mut q: Vec<String> = query
                .split('&')
                .filter(|p| !p.is_empty() && !p.starts_with("filters="))
                .map(str::to_owned)
                .collect();
            q.push(format!("filters={filter}"));
            format!("{path}?{}", q.join("&"))
        } else {
            uri.to_owned()
        };
        out_w
            .write_all(format!("{method} {uri} {version}\r\n{headers}").as_bytes())
            .await?;
        let header = |name: &str| {
            headers.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let chunked = header("transfer-encoding").is_some_and(|v| v.contains("chunked"));
        if chunked || header("upgrade").is_some() {
            tokio::io::copy(&mut r, &mut out_w).await?;
            let _ = back.await;
            return Ok(());
        }
        let length: u64 = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        tokio::io::copy(&mut (&mut r).take(length), &mut out_w).await?;
    }
}

/// Containers made for one test, force-removed when dropped.
struct Throwaway {
    engine: PrivateDockerd,
    names: Vec<String>,
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        let _ = self
            .engine
            .cli()
            .args(["rm", "--force"])
            .args(&self.names)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

async fn create_container(
    docker: &Docker,
    keep: &mut Throwaway,
    name: &str,
    cmd: &[&str],
    labels: &HashMap<String, String>,
) -> String {
    keep.names.push(name.to_owned());
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(cmd.iter().map(|s| (*s).to_owned()).collect()),
        labels: Some(labels.clone()),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(name).build()),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"))
        .id;
    docker
        .start_container(name, None::<StartContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    id
}

const PRUNE: &str = r#"
name: prune-stopped
title: Remove stopped containers
steps:
  - name: prune
    kind: prune
    what: containers
    engine: scoped
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_step_waits_for_the_prune_policy_then_removes_stopped_containers() {
    let Some(engine) = engine().await else { return };
    let build = engine.clone();
    tokio::task::spawn_blocking(move || build.build_busybox_image(IMAGE))
        .await
        .expect("build task")
        .expect("the busybox image");
    let docker = opsdeck::docker::connect(Some(&engine.host()))
        .await
        .expect("a client of the private engine");
    let tag = unique_project("prune");
    let label = format!("opsdeck-test.prune={tag}");
    let relay = PruneRelay::start(&engine.dir().join("docker.sock"), &label);
    let mut keep = Throwaway {
        engine: engine.clone(),
        names: Vec::new(),
    };
    let labels = HashMap::from([("opsdeck-test.prune".to_owned(), tag.clone())]);
    let stopped_name = format!("{tag}-stopped");
    let running_name = format!("{tag}-running");
    let stopped = create_container(&docker, &mut keep, &stopped_name, &["true"], &labels).await;
    // Stopped too, but outside the relay's scope: it must survive (the relay
    // really confines the prune, so other tests' containers are safe).
    let outside_name = format!("{tag}-outside");
    create_container(
        &docker,
        &mut keep,
        &outside_name,
        &["true"],
        &HashMap::new(),
    )
    .await;
    create_container(
        &docker,
        &mut keep,
        &running_name,
        &["sleep", "600"],
        &labels,
    )
    .await;
    for name in [&stopped_name, &outside_name] {
        poll(WAIT, "the throwaway container exited", async || {
            let i = inspect(&docker, name).await;
            let s = i.state.and_then(|s| s.status).map(|s| s.to_string());
            (s.as_deref() == Some("exited"))
                .then_some(())
                .ok_or(format!("{name}: {s:?}"))
        })
        .await;
    }

    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    server.create_user("requester", Role::Operator).await;
    let requester = server.login("requester").await;
    server.create_user("second", Role::Operator).await;
    let second = server.login("second").await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "scoped", "endpoint": relay.endpoint()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the relayed engine");
    // The engine's supervisor connects in the background: wait for it, as
    // an operator would see it connected on the Engines page.
    crate::util::poll(
        Duration::from_secs(30),
        "the relayed engine connected",
        async || {
            let engines: Vec<opsdeck_wire::Engine> = admin.json("/api/v1/engines").await;
            match engines.iter().find(|e| e.name == "scoped") {
                Some(e) if e.state == opsdeck_wire::EngineState::Connected => Ok(()),
                other => Err(format!("{:?}", other.map(|e| e.state))),
            }
        },
    )
    .await;
    let rb = create(&admin, PRUNE).await;
    let run = start(&requester, rb.id, json!({})).await;

    // The default `prune` policy parks the run before the step.
    let ap = pending_approval(&requester, run.summary.id).await;
    assert_eq!(ap.step, Some(0));
    assert_eq!(ap.required, 1);
    assert!(
        ap.subject
            .contains("remove unused containers on engine scoped"),
        "{}",
        ap.subject
    );
    let waiting = wait_status(&requester, run.summary.id, RunStatus::Waiting).await;
    assert_eq!(waiting.steps[0].status, StepStatus::Waiting);
    assert_eq!(relay.prunes(), 0, "nothing pruned before the approval");
    inspect(&docker, &stopped_name).await;
    let msg = crate::util::expect_error(
        requester
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &json!({"binding": ap.binding}),
            )
            .await,
        403,
    )
    .await;
    assert!(msg.contains("someone else"), "{msg}");

    let voted: Approval = ok_json(
        second
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &json!({"binding": ap.binding, "reason": "stopped leftovers"}),
            )
            .await,
        "approve",
    )
    .await;
    assert_eq!(voted.status, ApprovalStatus::Approved);
    let done = wait_status(&requester, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "prune");
    assert_eq!(s.status, StepStatus::Succeeded);
    assert_eq!(s.result["deleted"], 1, "{:?} {}", s.result, s.output);
    assert!(
        s.output.contains(&stopped),
        "the output lists it: {}",
        s.output
    );
    assert!(done.timeline.iter().any(|e| e.kind == "approval.approved"));
    assert_eq!(relay.prunes(), 1);

    // The engine removed the stopped container and kept the running one.
    let gone = docker
        .inspect_container(&stopped_name, None::<InspectContainerOptions>)
        .await;
    assert!(
        matches!(
            gone,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                ..
            })
        ),
        "the stopped container is gone: {gone:?}"
    );
    assert!(is_running(&docker, &running_name).await);
    inspect(&docker, &outside_name).await;
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor FROM audit_log WHERE action IN ('approval.approve', 'run.step.prune') ORDER BY seq",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    assert_eq!(
        audit,
        vec![
            ("approval.approve".to_owned(), "second".to_owned()),
            ("run.step.prune".to_owned(), "requester".to_owned()),
        ]
    );

    drop(keep);
    drop(relay);
    server.stop().await;
    release(engine).await;
}

const STACK_RESTART: &str = r#"
name: stack-restart
title: Restart a compose project
params:
  - name: project
    type: text
    pattern: "[a-z0-9-]+"
steps:
  - name: restart
    kind: stack
    project: "{{params.project}}"
    action: restart
    timeout: 2m
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_step_restarts_the_project_in_dependency_order() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-stack", MOSAIC).await;
    let docker = env.stack.docker();
    let project = env.stack.project.clone();
    let rb = create(&env.admin, STACK_RESTART).await;
    let t0 = Utc::now();
    let run = start(&env.op, rb.id, json!({"project": project})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "restart");
    assert_eq!(s.result["steps"], 2 * MOSAIC.len(), "{:?}", s.result);
    let action_id = s.result["action_id"].as_i64().expect("action_id");

    // The action record: every service stopped, then every one started.
    let activity: Vec<ActionRecord> = env
        .op
        .json(&format!("/api/v1/stacks/{project}/activity"))
        .await;
    let record = activity
        .iter()
        .find(|r| r.id == action_id)
        .unwrap_or_else(|| panic!("action {action_id} in {activity:#?}"));
    assert_eq!(record.kind, "stack.restart");
    assert_eq!(record.actor, "operator-user");
    assert!(record.steps.iter().all(|s| s.ok), "{record:#?}");
    let order = |action: &str| -> Vec<String> {
        record
            .steps
            .iter()
            .filter(|s| s.action == action)
            .filter_map(|s| s.service.clone())
            .collect()
    };
    let (stops, starts) = (order("stop"), order("start"));
    assert_eq!(stops.len(), MOSAIC.len(), "{stops:?}");
    assert_eq!(starts.len(), MOSAIC.len(), "{starts:?}");
    let last_stop = record.steps.iter().rposition(|s| s.action == "stop");
    let first_start = record.steps.iter().position(|s| s.action == "start");
    assert!(last_stop < first_start, "all stops come first: {record:#?}");
    let pos = |list: &[String], n: &str| list.iter().position(|s| s == n).unwrap_or(usize::MAX);

    // The engine's StartedAt agrees with the order.
    let mut started = HashMap::new();
    for s in MOSAIC {
        let at = started_at(docker, &env.stack.container(s.name)).await;
        assert!(at > t0, "{} was started again: {at} vs {t0}", s.name);
        started.insert(s.name, at);
    }
    for s in MOSAIC {
        for dep in s.requires {
            assert!(
                pos(&stops, s.name) < pos(&stops, dep),
                "{} stops before its dependency {dep}: {stops:?}",
                s.name
            );
            assert!(
                pos(&starts, dep) < pos(&starts, s.name),
                "{dep} starts before {}: {starts:?}",
                s.name
            );
            assert!(
                started[dep] < started[s.name],
                "engine StartedAt: {dep} {} < {} {}",
                started[dep],
                s.name,
                started[s.name]
            );
        }
    }
    env.stack
        .wait_healthy(WAIT)
        .await
        .expect("the stack answers again");
    let audit: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT actor, target FROM audit_log WHERE action = 'stack.restart'")
            .fetch_all(&env.server.pool)
            .await
            .unwrap();
    assert_eq!(
        audit,
        vec![("operator-user".to_owned(), Some(format!("stack:{project}")))]
    );

    drop(env);
    release(engine).await;
}

const WAIT_HEALTHY: &str = r#"
name: wait-for-it
title: Wait for a stopped service
params:
  - name: service
    type: service
steps:
  - name: first_wait
    kind: wait_healthy
    service: "{{params.service}}"
    timeout: 3s
    on_failure: continue
  - name: carry_on
    kind: notify
    message: "carrying on after {{params.service}}"
  - name: second_wait
    kind: wait_healthy
    service: "{{params.service}}"
    timeout: 2s
  - name: never
    kind: sleep
    duration: 10ms
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_healthy_times_out_on_a_stopped_service() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-wait", FORGE).await;
    let name = env.stack.container("gitea");
    stop(env.stack.docker(), &name).await;
    wait_service(&env.op, "gitea", "stopped", |o| {
        o.run_state == RunState::Stopped
    })
    .await;
    let rb = create(&env.admin, WAIT_HEALTHY).await;
    let run = start(&env.op, rb.id, json!({"service": "gitea"})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Failed).await;

    let first = step(&done, "first_wait");
    assert_eq!(first.status, StepStatus::Failed);
    assert_eq!(first.error.as_deref(), Some("timed out after 3s"));
    assert!(
        first.output.contains(&format!("{name} exited")),
        "{}",
        first.output
    );
    let took = first.finished_at.unwrap() - first.started_at.unwrap();
    assert!(
        (2_900..15_000).contains(&took.num_milliseconds()),
        "the step's own timeout: {took}"
    );
    // on_failure: continue — the next step still ran.
    let carry = step(&done, "carry_on");
    assert_eq!(carry.status, StepStatus::Succeeded);
    assert!(
        carry.output.contains("carrying on after gitea"),
        "{}",
        carry.output
    );
    assert!(done.timeline.iter().any(|e| e.kind == "step.continue"));
    // The default (stop): the run fails there.
    let second = step(&done, "second_wait");
    assert_eq!(second.status, StepStatus::Failed);
    assert_eq!(second.error.as_deref(), Some("timed out after 2s"));
    assert_eq!(step(&done, "never").status, StepStatus::Skipped);
    assert!(
        done.error.as_deref().unwrap_or("").contains("timed out"),
        "{:?}",
        done.error
    );
    assert!(
        !is_running(env.stack.docker(), &name).await,
        "waiting started nothing"
    );

    drop(env);
    release(engine).await;
}

const CHILD_OK: &str = r#"
name: bounce
title: Nap, then restart a service
params:
  - name: service
    type: service
steps:
  - name: nap
    kind: sleep
    duration: 2s
  - name: restart
    kind: container
    service: "{{params.service}}"
    action: restart
"#;

const CHILD_BROKEN: &str = r#"
name: broken
title: Always fails
params:
  - name: service
    type: service
steps:
  - name: fail
    kind: exec
    service: "{{params.service}}"
    argv: ["false"]
"#;

const PARENT_OK: &str = r#"
name: outer
title: Runs bounce
params:
  - name: service
    type: service
steps:
  - name: child
    kind: runbook
    runbook: bounce
    params:
      service: "{{params.service}}"
  - name: after
    kind: notify
    message: "child run {{steps.child.run_id}} {{steps.child.status}}"
"#;

const PARENT_BROKEN: &str = r#"
name: outer-broken
title: Runs broken
params:
  - name: service
    type: service
steps:
  - name: child
    kind: runbook
    runbook: broken
    params:
      service: "{{params.service}}"
  - name: after
    kind: sleep
    duration: 10ms
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_step_waits_for_its_child_run_and_takes_its_outcome() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-child", FORGE).await;
    let name = env.stack.container("gitea");
    let docker = env.stack.docker();
    for y in [CHILD_OK, CHILD_BROKEN, PARENT_OK, PARENT_BROKEN] {
        create(&env.admin, y).await;
    }
    let list: Vec<RunbookSummary> = env.op.json("/api/v1/runbooks").await;
    let id = |n: &str| list.iter().find(|r| r.name == n).expect(n).id;
    let before = started_at(docker, &name).await;

    let run = start(&env.op, id("outer"), json!({"service": "gitea"})).await;
    // The parent parks on the child step while the child runs.
    let parked = wait_run(
        &env.op,
        run.summary.id,
        "parent waiting on its child",
        |r| r.summary.status == RunStatus::Waiting && r.steps[0].status == StepStatus::Waiting,
    )
    .await;
    assert!(parked.timeline.iter().any(|e| e.kind == "step.child"));
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;
    let child_id = step(&done, "child").result["run_id"]
        .as_i64()
        .expect("the child's run id");
    let child: Run = env.op.json(&format!("/api/v1/runs/{child_id}")).await;
    assert_eq!(child.summary.status, RunStatus::Succeeded);
    assert_eq!(child.parent_run_id, Some(run.summary.id));
    assert_eq!(child.summary.requested_by, "operator-user");
    assert_eq!(child.params["service"], "gitea");
    let after = step(&done, "after");
    assert!(
        after
            .output
            .contains(&format!("child run {child_id} succeeded")),
        "{}",
        after.output
    );
    assert!(
        after.started_at.unwrap() >= child.summary.finished_at.unwrap(),
        "the parent went on after its child finished"
    );
    assert!(
        started_at(docker, &name).await > before,
        "the child restarted gitea"
    );

    // A failing child fails the parent's step, and the parent stops there.
    let run = start(&env.op, id("outer-broken"), json!({"service": "gitea"})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Failed).await;
    let s = step(&done, "child");
    assert_eq!(s.status, StepStatus::Failed);
    let child_id = s.result["run_id"].as_i64().expect("the child's run id");
    let err = s.error.as_deref().unwrap_or("");
    assert!(
        err.contains(&format!("run #{child_id} failed")) && err.contains("exit code 1"),
        "{err}"
    );
    assert_eq!(step(&done, "after").status, StepStatus::Skipped);
    let child: Run = env.op.json(&format!("/api/v1/runs/{child_id}")).await;
    assert_eq!(child.summary.status, RunStatus::Failed);
    assert_eq!(child.steps[0].error.as_deref(), Some("exit code 1"));

    drop(env);
    release(engine).await;
}

const STOP: &str = r#"
name: stop-service
title: Stop a service
target_param: service
params:
  - name: service
    type: service
steps:
  - name: stop
    kind: container
    service: "{{params.service}}"
    action: stop
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_critical_service_parks_for_approval_and_cancel_withdraws_it() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-critical", VAULT).await;
    let name = env.stack.container("mariadb");
    let o = service(&env.op, "mariadb").await.expect("mariadb");
    assert_eq!(o.service.tier, opsdeck_wire::Tier::Critical);
    let rb = create(&env.admin, STOP).await;
    let run = start(&env.op, rb.id, json!({"service": "mariadb"})).await;

    let ap = pending_approval(&env.op, run.summary.id).await;
    assert_eq!(ap.step, Some(0));
    assert!(
        ap.subject
            .contains("stop the containers of service mariadb"),
        "{}",
        ap.subject
    );
    assert!(!ap.can_vote, "the requester cannot approve");
    let waiting = wait_status(&env.op, run.summary.id, RunStatus::Waiting).await;
    assert_eq!(waiting.steps[0].status, StepStatus::Waiting);
    assert!(
        waiting
            .timeline
            .iter()
            .any(|e| e.kind == "approval.requested"),
        "{:?}",
        waiting.timeline
    );
    // Parked, the container was not touched.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(is_running(env.stack.docker(), &name).await);

    let _: Run = ok_json(
        env.op
            .post(
                &format!("/api/v1/runs/{}/cancel", run.summary.id),
                &json!({}),
            )
            .await,
        "cancel",
    )
    .await;
    let cancelled = wait_status(&env.op, run.summary.id, RunStatus::Cancelled).await;
    assert_eq!(cancelled.steps[0].status, StepStatus::Cancelled);
    let a = cancelled
        .approvals
        .iter()
        .find(|a| a.id == ap.id)
        .expect("the approval is still listed");
    assert_eq!(a.status, ApprovalStatus::Withdrawn);
    let count: opsdeck_wire::ApprovalCount = env.admin.json("/api/v1/approvals/count").await;
    assert_eq!(count.pending, 0, "nothing left to vote on");
    assert!(is_running(env.stack.docker(), &name).await, "still running");
    let actions: i64 = sqlx::query_scalar("SELECT count(*) FROM container_actions")
        .fetch_one(&env.server.pool)
        .await
        .unwrap();
    assert_eq!(actions, 0, "no action was attempted");

    drop(env);
    release(engine).await;
}
