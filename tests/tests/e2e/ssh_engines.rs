//! `ssh://` engines against a real sshd (tests/src/sshd.rs) in front of the
//! private engine: the host key fetched and pinned by its fingerprint,
//! containers listed and acted on, logs followed and exec run through SSH;
//! sshd stopped and started again (unreachable with the reason, then
//! reconnected by itself); a changed host key refused with both
//! fingerprints; a login without access to the Docker socket; the
//! refusals at registration.

use std::time::Duration;

use opsdeck_e2e::flows::containers::wait_engine;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::sshd::{Sshd, NO_DOCKER_USER};
use opsdeck_e2e::stack::Stack;
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release, sse_until};
use opsdeck_wire::{
    ActionOutcome, ActionRecord, AuditPage, Engine, EngineState, ExecResult, Role, Service,
    ServiceOverview, SshHostKey,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

/// Prints a line a second, answers nothing else.
const APP: &str = r#"trap 'exit 0' TERM
i=0
while true; do i=$((i+1)); echo "app tick $i"; sleep 1; done"#;

async fn register(admin: &Api, body: serde_json::Value) -> Engine {
    ok_json(
        admin.post("/api/v1/engines", &body).await,
        "registering an SSH engine",
    )
    .await
}

async fn unreachable_with(api: &Api, name: &str, needle: &str) -> Engine {
    poll(
        WAIT,
        &format!("engine {name} unreachable: {needle}"),
        async || {
            let list: Vec<Engine> = api.json("/api/v1/engines").await;
            let e = list
                .into_iter()
                .find(|e| e.name == name)
                .ok_or("not listed")?;
            let err = e.last_error.clone().unwrap_or_default();
            if e.state == EngineState::Unreachable && err.contains(needle) {
                Ok(e)
            } else {
                Err(format!("{:?}: {err}", e.state))
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ssh_engine_is_pinned_used_and_comes_back_after_sshd_restarts() {
    let Some(engine) = engine().await else { return };
    let mut sshd = match Sshd::start_for(&engine.dir().join("docker.sock")) {
        Ok(s) => s,
        Err(_) => return release(engine).await,
    };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let endpoint = sshd.endpoint("root");

    // The host's keys, by fingerprint, for admins only.
    let scan = json!({"endpoint": endpoint});
    let refused = operator.post("/api/v1/engines/ssh-host-keys", &scan).await;
    assert_eq!(refused.status(), 403);
    let keys: Vec<SshHostKey> = ok_json(
        admin.post("/api/v1/engines/ssh-host-keys", &scan).await,
        "the host's keys",
    )
    .await;
    let ed = keys
        .iter()
        .find(|k| k.key_type == "ssh-ed25519")
        .expect("an ed25519 host key");
    assert_eq!(ed.fingerprint, sshd.host_fingerprint());
    assert_eq!(ed.key, sshd.host_key());

    // Pinned by the fingerprint given up front, with the run's key file.
    let key = sshd.client_key().display().to_string();
    let e = register(
        &admin,
        json!({"name": "ssh", "endpoint": endpoint, "ssh_host_key": ed.fingerprint, "ssh_key": key}),
    )
    .await;
    assert_eq!(
        e.ssh_host_key_fingerprint.as_deref(),
        Some(ed.fingerprint.as_str())
    );
    let e = wait_engine(&admin, "ssh", EngineState::Connected).await;
    assert!(e.version.is_some(), "{e:?}");
    let audit: AuditPage = admin.json("/api/v1/audit?action=engine.create").await;
    let entry = audit
        .entries
        .iter()
        .find(|a| a.target.as_deref() == Some("engine:ssh"))
        .expect("the engine.create entry");
    assert_eq!(entry.params["ssh_host_key"], json!(ed.fingerprint));

    // Containers through SSH: listed, restarted, logs followed, exec.
    let mut stack = Stack::up(&engine, "ssh-app", &[]).await.expect("a project");
    let container = stack.add_script("app", APP).await.expect("the app");
    let service: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "app", "engine": "ssh", "compose_project": stack.project,
                        "compose_service": "app"}),
            )
            .await,
        "a service on the SSH engine",
    )
    .await;
    let id = service.id;
    let before = poll(WAIT, "the app's container over SSH", async || {
        let o: ServiceOverview = operator.json(&format!("/api/v1/services/{id}")).await;
        o.containers
            .first()
            .filter(|c| c.name == container && c.engine == "ssh")
            .and_then(|c| c.started_at)
            .ok_or_else(|| format!("{:?}", o.containers))
    })
    .await;
    let record: ActionRecord = ok_json(
        operator
            .post(
                &format!("/api/v1/services/{id}/actions"),
                &json!({"action": "restart", "timeout_secs": 1}),
            )
            .await,
        "restart over SSH",
    )
    .await;
    assert_eq!(record.outcome, ActionOutcome::Succeeded, "{record:#?}");
    poll(WAIT, "a new start time", async || {
        let o: ServiceOverview = operator.json(&format!("/api/v1/services/{id}")).await;
        let after = o.containers.first().and_then(|c| c.started_at);
        after
            .filter(|a| *a > before)
            .ok_or_else(|| format!("{after:?}"))
    })
    .await;
    let res = operator
        .get(&format!("/api/v1/services/{id}/logs?follow=true&tail=0"))
        .await;
    assert_eq!(res.status(), 200);
    let (_, line) = sse_until(res, WAIT, "a followed line over SSH", |e, d| {
        e == "line" && d.starts_with("app tick ")
    })
    .await;
    assert!(line.starts_with("app tick "), "{line}");
    let r: ExecResult = ok_json(
        operator
            .post(
                &format!("/api/v1/services/{id}/exec"),
                &json!({"argv": ["/bin/busybox", "echo", "through ssh"]}),
            )
            .await,
        "exec over SSH",
    )
    .await;
    assert_eq!(
        (r.stdout.as_str(), r.exit_code),
        ("through ssh\n", Some(0)),
        "{r:?}"
    );

    // The host goes away: unreachable with the reason; back by itself.
    sshd.stop();
    unreachable_with(&admin, "ssh", "connection refused").await;
    let action = operator
        .post(
            &format!("/api/v1/services/{id}/actions"),
            &json!({"action": "restart", "timeout_secs": 1}),
        )
        .await;
    assert!(
        !action.status().is_success(),
        "an action on an unreachable engine fails"
    );
    sshd.start();
    wait_engine(&admin, "ssh", EngineState::Connected).await;

    drop(stack);
    server.stop().await;
    drop(sshd);
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_changed_host_key_a_login_without_docker_and_bad_input_are_refused() {
    let Some(engine) = engine().await else { return };
    let sshd = match Sshd::start_for(&engine.dir().join("docker.sock")) {
        Ok(s) => s,
        Err(_) => return release(engine).await,
    };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let key = sshd.client_key().display().to_string();
    let (other, other_fp) = sshd.other_key();

    // A fingerprint the host does not offer: refused at registration.
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "wrong", "endpoint": sshd.endpoint("root"), "ssh_host_key": other_fp, "ssh_key": key}),
        )
        .await;
    let msg = expect_error(res, 400).await;
    assert!(
        msg.contains(&sshd.host_fingerprint()) && msg.contains(&other_fp),
        "{msg}"
    );

    // A key pinned that the host no longer has (it "changed"): never
    // accepted, both fingerprints said.
    let e = register(
        &admin,
        json!({"name": "changed", "endpoint": sshd.endpoint("root"), "ssh_host_key": other, "ssh_key": key}),
    )
    .await;
    assert_eq!(
        e.ssh_host_key_fingerprint.as_deref(),
        Some(other_fp.as_str())
    );
    let e = unreachable_with(&admin, "changed", "host key mismatch").await;
    let err = e.last_error.unwrap_or_default();
    assert!(
        err.contains(&sshd.host_fingerprint()) && err.contains(&other_fp),
        "both fingerprints: {err}"
    );

    // A login that may not use the Docker socket.
    register(
        &admin,
        json!({"name": "nodocker", "endpoint": sshd.endpoint(NO_DOCKER_USER),
               "ssh_host_key": sshd.host_key(), "ssh_key": key}),
    )
    .await;
    unreachable_with(&admin, "nodocker", "may not use the Docker socket").await;

    // Bad input.
    for (body, field) in [
        (
            json!({"name": "x1", "endpoint": "ssh://-oProxyCommand=touch@h"}),
            "endpoint",
        ),
        (
            json!({"name": "x2", "endpoint": "ssh://root@h;rm"}),
            "endpoint",
        ),
        (
            json!({"name": "x3", "endpoint": sshd.endpoint("root")}),
            "ssh_host_key",
        ),
        (
            json!({"name": "x4", "endpoint": sshd.endpoint("root"), "ssh_host_key": sshd.host_key(), "ssh_key": "id_ed25519"}),
            "ssh_key",
        ),
        (
            json!({"name": "x5", "endpoint": sshd.endpoint("root"), "ssh_host_key": "ssh-ed25519 not-base64!"}),
            "ssh_host_key",
        ),
        (
            json!({"name": "x6", "endpoint": "unix:///var/run/docker.sock", "ssh_host_key": sshd.host_key()}),
            "ssh_host_key",
        ),
    ] {
        let msg = expect_error(admin.post("/api/v1/engines", &body).await, 400).await;
        assert!(msg.starts_with(field), "{body}: {msg}");
    }
    let list: Vec<Engine> = admin.json("/api/v1/engines").await;
    assert!(
        !list.iter().any(|e| e.name.starts_with('x')),
        "nothing half-registered"
    );

    server.stop().await;
    drop(sshd);
    release(engine).await;
}
