//! Container checks on the private engine: the service's containers
//! running, stopped, in a restart loop; container resources; the status
//! board following the engine; and the dashboard in a real browser picking
//! up a change pushed over SSE.

use std::time::Duration;

use opsdeck_e2e::flows::checks::{add_container_check, run_check};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::Stack;
use opsdeck_e2e::util::{engine, ok_json, poll, release};
use opsdeck_wire::{Check, CheckStatus, Role, Service, ServiceHealth, StatusBoard};
use serde_json::json;

const DAY: u32 = 86_400;

async fn service_id(api: &Api, name: &str) -> i64 {
    let list: Vec<opsdeck_wire::ServiceOverview> = api.json("/api/v1/services").await;
    list.into_iter()
        .find(|o| o.service.name == name)
        .unwrap_or_else(|| panic!("service {name}"))
        .service
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_checks_follow_the_engine() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let mut stack = Stack::mosaic(&engine).await.expect("bringing up MosAIc");
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": stack.compose_yaml(), "project": stack.project,
                    "engine": "main", "apply": true}),
        )
        .await;
    ok_json::<serde_json::Value>(res, "import").await;
    let gitea = service_id(&op, "gitea").await;
    let c: Check = ok_json(
        op.post(
            "/api/v1/checks",
            &json!({"service_id": gitea, "name": "containers", "interval_s": DAY,
                    "timeout_ms": 5000, "fail_after": 1, "recover_after": 1,
                    "spec": {"kind": "container"}}),
        )
        .await,
        "container check",
    )
    .await;
    let r = poll(Duration::from_secs(60), "gitea running", async || {
        let r = run_check(&op, c.id).await;
        (r.status == CheckStatus::Ok)
            .then_some(r.clone())
            .ok_or(format!("{r:?}"))
    })
    .await;
    assert!(r.message.contains("1/1 running"), "{}", r.message);

    // Stopped behind Opsdeck's back: the events stream tells the cache.
    stack
        .docker()
        .stop_container(
            &stack.container("gitea"),
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .expect("stop");
    let r = poll(Duration::from_secs(30), "gitea stopped", async || {
        let r = run_check(&op, c.id).await;
        (r.status == CheckStatus::Critical)
            .then_some(r.clone())
            .ok_or(format!("{r:?}"))
    })
    .await;
    assert!(r.message.contains("stopped"), "{}", r.message);
    // The board says gitea is down, and what depends on it is impacted.
    let b = poll(Duration::from_secs(10), "board", async || {
        let b: StatusBoard = op.json("/api/v1/status").await;
        let g = b
            .services
            .iter()
            .find(|s| s.name == "gitea")
            .map(|s| s.health);
        (g == Some(ServiceHealth::Down))
            .then_some(b.clone())
            .ok_or(format!("{g:?}"))
    })
    .await;
    assert!(!b.engines.is_empty() && b.engines[0].name == "main");

    // A restart loop: the container keeps crashing and the engine restarts it.
    let crashing = stack
        .add_crashing("crashy")
        .await
        .expect("crashing container");
    let svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "crashy", "container_name": crashing}),
            )
            .await,
        "crashy service",
    )
    .await;
    let loop_check: Check = ok_json(
        op.post(
            "/api/v1/checks",
            &json!({"service_id": svc.id, "name": "containers", "interval_s": DAY,
                    "timeout_ms": 5000, "fail_after": 1, "recover_after": 1,
                    "spec": {"kind": "container", "restarts_warning": 1, "restarts_critical": 2}}),
        )
        .await,
        "loop check",
    )
    .await;
    let r = poll(Duration::from_secs(60), "restart loop seen", async || {
        let r = run_check(&op, loop_check.id).await;
        let restarts = r
            .metrics
            .iter()
            .find(|m| m.name == "restarts_10m")
            .map(|m| m.value)
            .unwrap_or(0.0);
        (r.status == CheckStatus::Critical && restarts >= 2.0)
            .then_some(r.clone())
            .ok_or(format!("{r:?}"))
    })
    .await;
    assert!(r.message.contains("restart"), "{}", r.message);

    // Container resources: the running mariadb stand-in uses far less than
    // 90 % of a core; a 0.0001 % threshold is crossed at once.
    let maria = service_id(&op, "mariadb").await;
    let res_check = |warn: f64, crit: f64| {
        json!({"service_id": maria, "name": format!("cpu {warn}"), "interval_s": DAY,
               "timeout_ms": 10000, "fail_after": 1, "recover_after": 1,
               "spec": {"kind": "container_resources", "resource": "memory",
                        "warning_pct": warn, "critical_pct": crit}})
    };
    let low: Check = ok_json(
        op.post("/api/v1/checks", &res_check(70.0, 90.0)).await,
        "mem",
    )
    .await;
    let r = run_check(&op, low.id).await;
    assert_eq!(r.status, CheckStatus::Ok, "{r:?}");
    assert!(r.metrics.iter().any(|m| m.name == "memory_pct"), "{r:?}");
    // A host check needs no service; a container check does.
    let res = op
        .post(
            "/api/v1/checks",
            &json!({"name": "no service", "spec": {"kind": "container"}}),
        )
        .await;
    opsdeck_e2e::util::expect_error(res, 400).await;
    drop(stack);
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_checks_and_sustained_thresholds() {
    let server = TestServer::start().await;
    let op = server.user(Role::Operator).await;
    let add = async |body: serde_json::Value| -> Check {
        ok_json(op.post("/api/v1/checks", &body).await, "host check").await
    };
    let disk = add(json!({"name": "disk /", "interval_s": DAY, "timeout_ms": 5000, "fail_after": 1,
                          "spec": {"kind": "host", "resource": "disk", "warning_pct": 80, "critical_pct": 90}}))
    .await;
    let r = run_check(&op, disk.id).await;
    let pct = r
        .metrics
        .iter()
        .find(|m| m.name == "disk_pct")
        .expect("disk_pct")
        .value;
    assert!((0.0..=100.0).contains(&pct), "{pct}");
    assert!(r.message.contains('%'), "{}", r.message);
    // Crossed at once (warning 0.001 %), but it must last 60 s: held back.
    let mem = add(
        json!({"name": "memory", "interval_s": DAY, "timeout_ms": 5000, "fail_after": 1,
                         "spec": {"kind": "host", "resource": "memory", "warning_pct": 0.001,
                                  "critical_pct": 0.002, "sustained_s": 60}}),
    )
    .await;
    let r = run_check(&op, mem.id).await;
    assert_eq!(r.status, CheckStatus::Ok, "{r:?}");
    assert!(r.message.contains("must last"), "{}", r.message);
    let now = add(
        json!({"name": "memory now", "interval_s": DAY, "timeout_ms": 5000, "fail_after": 1,
                         "spec": {"kind": "host", "resource": "memory", "warning_pct": 0.001,
                                  "critical_pct": 0.002}}),
    )
    .await;
    assert_eq!(run_check(&op, now.id).await.status, CheckStatus::Critical);
    let res = op
        .post(
            "/api/v1/checks",
            &json!({"name": "rel", "spec": {"kind": "host", "resource": "disk", "path": "etc",
                                            "warning_pct": 80, "critical_pct": 90}}),
        )
        .await;
    let msg = opsdeck_e2e::util::expect_error(res, 400).await;
    assert!(msg.contains("path"), "{msg}");
    // Host checks are on the board.
    let b: StatusBoard = op.json("/api/v1/status").await;
    assert_eq!(b.host_checks.len(), 3, "{:?}", b.host_checks);
}

/// A check's current state and latest result (`GET /api/v1/checks/{id}`).
async fn check(api: &Api, id: i64) -> Check {
    api.json(&format!("/api/v1/checks/{id}")).await
}

async fn event_probes(admin: &Api) -> u64 {
    let s: opsdeck_wire::CheckEngineStats = admin.json("/api/v1/checks/engine").await;
    s.event_probes_total
}

/// Container checks follow the engine's events: with a day between
/// scheduled probes, a container killed and started again is seen at once,
/// and only the checks of the services it belongs to are probed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_checks_are_probed_when_the_engine_reports_a_change() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let specs = [
        opsdeck_e2e::stack::ServiceSpec {
            name: "victim",
            image: "odk/victim:1",
            requires: &[],
            tier: None,
            description: "",
            docs: None,
        },
        opsdeck_e2e::stack::ServiceSpec {
            name: "bystander",
            image: "odk/bystander:1",
            requires: &[],
            tier: None,
            description: "",
            docs: None,
        },
    ];
    let stack = Stack::up(&engine, "evt", &specs).await.expect("the stack");
    opsdeck_e2e::flows::containers::connect_engine(&admin, "main", &engine.host()).await;
    let mut checks = Vec::new();
    for s in &specs {
        let svc: Service = ok_json(
            admin
                .post(
                    "/api/v1/services",
                    &json!({"name": format!("evt-{}", s.name), "compose_project": stack.project,
                            "compose_service": s.name}),
                )
                .await,
            "a service",
        )
        .await;
        checks.push(add_container_check(&op, svc.id).await.id);
    }
    let (victim, bystander) = (checks[0], checks[1]);
    let before = check(&op, bystander).await.last.expect("a result").at;
    let probes = event_probes(&admin).await;

    // Killed behind Opsdeck's back; nobody runs the check.
    stack
        .docker()
        .kill_container(
            &stack.container("victim"),
            None::<bollard::query_parameters::KillContainerOptions>,
        )
        .await
        .expect("kill");
    let c = poll(Duration::from_secs(10), "the kill seen", async || {
        let c = check(&op, victim).await;
        (c.status == CheckStatus::Critical)
            .then_some(c.clone())
            .ok_or(format!("{:?} {:?}", c.status, c.last))
    })
    .await;
    assert!(
        c.last
            .as_ref()
            .is_some_and(|l| l.message.contains("stopped")),
        "{:?}",
        c.last
    );
    assert!(event_probes(&admin).await > probes);

    stack
        .docker()
        .start_container(
            &stack.container("victim"),
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .expect("start");
    poll(Duration::from_secs(10), "the start seen", async || {
        let c = check(&op, victim).await;
        (c.status == CheckStatus::Ok)
            .then_some(())
            .ok_or(format!("{:?} {:?}", c.status, c.last))
    })
    .await;
    // The other service's check was not probed by these events.
    let after = check(&op, bystander).await.last.expect("a result").at;
    assert_eq!(before, after, "the bystander's check was probed");
    drop(stack);
    release(engine).await;
}
