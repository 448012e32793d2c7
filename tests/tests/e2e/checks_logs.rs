//! Log-pattern checks on the private engine: a busybox service writes
//! `ERROR` lines while a flag file exists; the check counts them over its
//! window from the followed log, goes critical, opens the service's
//! incident with the lines attached, keeps counting across a container
//! restart, and recovers once the window holds no more matches.

use std::time::Duration;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use futures::StreamExt;
use opsdeck_e2e::flows::containers::connect_engine;
use opsdeck_e2e::flows::incidents::detail;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::Stack;
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release};
use opsdeck_wire::{Check, CheckStatus, IncidentList, ProbeResult, Role, Service, ServiceOverview};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// Five `ERROR` lines a second while /fail exists, each naming the
/// container's boot (1, then 2 after a restart).
const APP: &str = r#"trap 'exit 0' TERM
n=$(cat /boots 2>/dev/null || echo 0); n=$((n+1)); echo $n > /boots
echo "INFO app started (boot $n)"
while :; do
  if [ -f /fail ]; then echo "ERROR payment failed (boot $n)"; else echo "INFO ok"; fi
  sleep 0.2 & wait $!
done"#;

/// Runs `argv` (busybox applets by absolute path) in the container and
/// waits for it to exit 0.
async fn exec(docker: &bollard::Docker, container: &str, argv: &[&str]) {
    let e = docker
        .create_exec(
            container,
            CreateExecOptions {
                cmd: Some(argv.iter().map(|s| s.to_string()).collect()),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .expect("creating the exec");
    if let StartExecResults::Attached { mut output, .. } = docker
        .start_exec(&e.id, None::<StartExecOptions>)
        .await
        .expect("starting the exec")
    {
        while output.next().await.is_some() {}
    }
    let done = docker
        .inspect_exec(&e.id)
        .await
        .expect("inspecting the exec");
    assert_eq!(done.exit_code, Some(0), "{argv:?} in {container}");
}

async fn run_check(api: &Api, id: i64) -> ProbeResult {
    ok_json(
        api.post(&format!("/api/v1/checks/{id}/run"), &json!({}))
            .await,
        "running the check",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_pattern_check_opens_and_recovers_an_incident_with_the_lines() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    connect_engine(&admin, "main", &engine.host()).await;
    let mut stack = Stack::up(&engine, "logchk", &[]).await.expect("a project");
    let container = stack.add_script("payments", APP).await.expect("the app");
    let svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "payments", "tier": "critical", "engine": "main",
                        "compose_project": stack.project, "compose_service": "payments"}),
            )
            .await,
        "creating the service",
    )
    .await;
    poll(WAIT, "the container in the cache", async || {
        let all: Vec<ServiceOverview> = operator.json("/api/v1/services").await;
        all.iter()
            .any(|o| o.service.id == svc.id && !o.containers.is_empty())
            .then_some(())
            .ok_or("not yet".to_owned())
    })
    .await;

    // Bad definitions are refused with the field named.
    for (spec, field) in [
        (
            json!({"kind": "log_pattern", "pattern": "", "warning_count": 1, "critical_count": 2}),
            "pattern",
        ),
        (
            json!({"kind": "log_pattern", "pattern": "(x", "regex": true}),
            "pattern",
        ),
        (
            json!({"kind": "log_pattern", "pattern": "x", "window_s": 5}),
            "window_s",
        ),
        (
            json!({"kind": "log_pattern", "pattern": "x", "warning_count": 9, "critical_count": 3}),
            "warning_count",
        ),
    ] {
        let res = admin
            .post(
                "/api/v1/checks",
                &json!({"service_id": svc.id, "name": "bad", "spec": spec}),
            )
            .await;
        let m = expect_error(res, 400).await;
        assert!(m.starts_with(field), "{field}: {m}");
    }
    let res = admin
        .post(
            "/api/v1/checks",
            &json!({"name": "no service", "spec": {"kind": "log_pattern", "pattern": "x"}}),
        )
        .await;
    assert!(expect_error(res, 400).await.starts_with("service_id"));

    let check: Check = ok_json(
        admin
            .post(
                "/api/v1/checks",
                &json!({"service_id": svc.id, "name": "payment errors", "interval_s": 3600,
                        "fail_after": 1, "recover_after": 1,
                        "spec": {"kind": "log_pattern", "pattern": "payment failed",
                                 "window_s": 15, "warning_count": 3, "critical_count": 8}}),
            )
            .await,
        "creating the check",
    )
    .await;
    // The first round starts following (once the health engine knows the
    // new service): nothing matches yet.
    let first = poll(WAIT, "a first round", async || {
        let r = run_check(&operator, check.id).await;
        (r.status == CheckStatus::Ok)
            .then(|| r.clone())
            .ok_or(r.message)
    })
    .await;
    assert_eq!(
        first.message,
        "no lines matching \"payment failed\" in the last 15 s"
    );

    // Errors start: critical, with the newest lines.
    let docker = stack.docker().clone();
    exec(&docker, &container, &["/bin/busybox", "touch", "/fail"]).await;
    let c = poll(WAIT, "the check critical", async || {
        let c = run_check(&operator, check.id).await;
        (c.status == CheckStatus::Critical)
            .then(|| c.clone())
            .ok_or(c.message)
    })
    .await;
    let message = c.message;
    assert_eq!(c.metrics[0].name, "matches");
    assert!(c.metrics[0].value >= 8.0, "{:?}", c.metrics);
    assert!(message.contains("(critical from 8)"), "{message}");
    assert!(
        message.contains(&format!("{container}: ERROR payment failed (boot 1)")),
        "{message}"
    );

    // The service is down: its incident names the check and carries the lines.
    let incident = poll(WAIT, "the incident", async || {
        let l: IncidentList = operator.json("/api/v1/incidents").await;
        l.items
            .into_iter()
            .find(|i| i.services.iter().any(|s| s.name == "payments"))
            .ok_or("none yet".to_owned())
    })
    .await;
    let d = detail(&operator, incident.id).await;
    let detected = d
        .timeline
        .iter()
        .find(|e| e.kind == "detected")
        .expect("a detected event");
    assert!(
        detected.message.contains("ERROR payment failed (boot 1)"),
        "{}",
        detected.message
    );

    // A restart: the follower picks the log up again and counts on.
    docker
        .restart_container(
            &container,
            Some(
                bollard::query_parameters::RestartContainerOptionsBuilder::default()
                    .t(1)
                    .build(),
            ),
        )
        .await
        .expect("restarting");
    poll(WAIT, "lines of the second boot counted", async || {
        let c = run_check(&operator, check.id).await;
        (c.status == CheckStatus::Critical && c.message.contains("ERROR payment failed (boot 2)"))
            .then_some(())
            .ok_or(c.message)
    })
    .await;

    // The errors stop; once the window has no match the check and the
    // service recover, and the incident says so.
    exec(&docker, &container, &["/bin/busybox", "rm", "-f", "/fail"]).await;
    poll(WAIT, "the check ok again", async || {
        let c = run_check(&operator, check.id).await;
        (c.status == CheckStatus::Ok).then_some(()).ok_or(c.message)
    })
    .await;
    poll(WAIT, "the incident recovered", async || {
        let d = detail(&operator, incident.id).await;
        d.incident
            .recovered_at
            .map(|_| ())
            .ok_or(format!("{:?}", d.incident.status))
    })
    .await;

    drop(stack);
    server.stop().await;
    release(engine).await;
}
