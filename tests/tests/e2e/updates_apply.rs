//! The gated image update on a real engine and a real registry: the private
//! dockerd runs versions of the test web app (`registry::push_app`: busybox
//! httpd on `PORT`, a HEALTHCHECK on `/health`; the broken `v3` has no
//! `/health`) pushed to a loopback `docker-registry`. Each service is one
//! container created as compose would (compose labels, host network, its
//! own `PORT`), with an HTTP check on the app's `/health`.
//!
//! - a manual update v1 → v2 passes the gate: the container runs v2 with the
//!   same environment, labels and restart policy, the old container is
//!   gone, the version is confirmed; "go back" to v1 by its local image id;
//! - the broken v3 rolls back by itself: back on v2, healthy, an incident
//!   open, a notification on the run, the step failed with the message;
//! - a stack update runs dependencies first;
//! - a registry that is down fails with a clear error, nothing touched;
//! - kill -9 of `opsdeck serve` mid-update: after a restart the run is
//!   `interrupted`, the service has exactly one container under its name,
//!   running, healthy, and the journal is finished.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig, RestartPolicy, RestartPolicyNameEnum};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptions, StartContainerOptions,
};
use bollard::Docker;
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::runbooks::{start, wait_run, wait_status};
use opsdeck_e2e::proc::free_port;
use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::registry::{AppImage, Registry};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::unique_project;
use opsdeck_e2e::util::{engine, ok_json, poll, process_database, release};
use opsdeck_wire::{ImageVersion, Role, Run, RunStatus, RunbookSummary, Service, StepStatus};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);

/// The registry with v1, v2 and the broken v3 of one repository, and the
/// local image id of each.
struct Images {
    registry: Registry,
    repo: String,
    ids: HashMap<&'static str, String>,
}

impl Images {
    fn reference(&self, tag: &str) -> String {
        self.registry.reference(&self.repo, tag)
    }
}

async fn images(engine: PrivateDockerd, docker: &Docker) -> (PrivateDockerd, Option<Images>) {
    let Ok(registry) = tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("starting the registry")
    else {
        return (engine, None);
    };
    let repo = unique_project("upd");
    let (registry, engine, repo) = tokio::task::spawn_blocking(move || {
        for (tag, broken) in [("v1", false), ("v2", false), ("v3", true)] {
            registry
                .push_app(
                    &engine,
                    &AppImage {
                        repo: &repo,
                        tag,
                        version: tag,
                        broken,
                    },
                )
                .unwrap_or_else(|e| panic!("pushing {tag}: {e:#}"));
        }
        (registry, engine, repo)
    })
    .await
    .expect("pushing");
    let mut ids = HashMap::new();
    for tag in ["v1", "v2", "v3"] {
        let r = registry.reference(&repo, tag);
        let i = docker.inspect_image(&r).await.expect("inspect image");
        ids.insert(tag, i.id.expect("image id"));
    }
    (
        engine,
        Some(Images {
            registry,
            repo,
            ids,
        }),
    )
}

/// Creates and starts the container of compose service `service` of
/// `project` from `image`, serving on `port`.
async fn app_container(docker: &Docker, project: &str, service: &str, image: &str, port: u16) {
    let name = format!("{project}-{service}-1");
    let labels = HashMap::from([
        ("com.docker.compose.project".to_owned(), project.to_owned()),
        ("com.docker.compose.service".to_owned(), service.to_owned()),
        (
            "com.docker.compose.container-number".to_owned(),
            "1".to_owned(),
        ),
        ("com.docker.compose.oneoff".to_owned(), "False".to_owned()),
        ("team".to_owned(), "payments".to_owned()),
    ]);
    let body = ContainerCreateBody {
        image: Some(image.to_owned()),
        env: Some(vec![format!("PORT={port}"), "APP_MODE=production".into()]),
        labels: Some(labels),
        host_config: Some(HostConfig {
            network_mode: Some("host".into()),
            binds: Some(vec![format!("{project}-{service}-data:/data")]),
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::UNLESS_STOPPED),
                maximum_retry_count: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    docker
        .create_container(
            Some(CreateContainerOptionsBuilder::default().name(&name).build()),
            body,
        )
        .await
        .unwrap_or_else(|e| panic!("creating {name}: {e}"));
    docker
        .start_container(&name, None::<StartContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
}

/// The containers of a compose project: (name, id, image id, state, health).
async fn project_containers(
    docker: &Docker,
    project: &str,
) -> Vec<(String, String, String, String, Option<String>)> {
    let filters = HashMap::from([(
        "label",
        vec![format!("com.docker.compose.project={project}")],
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
    let mut out = Vec::new();
    for c in list {
        let id = c.id.unwrap_or_default();
        let i = docker
            .inspect_container(&id, None::<InspectContainerOptions>)
            .await
            .expect("inspect");
        let state = i.state.unwrap_or_default();
        out.push((
            i.name
                .unwrap_or_default()
                .trim_start_matches('/')
                .to_owned(),
            id,
            i.image.unwrap_or_default(),
            state.status.map(|s| s.to_string()).unwrap_or_default(),
            state.health.and_then(|h| h.status).map(|s| s.to_string()),
        ));
    }
    out.sort();
    out
}

async fn remove_project(docker: &Docker, project: &str) {
    for (_, id, ..) in project_containers(docker, project).await {
        let _ = docker
            .remove_container(
                &id,
                Some(RemoveContainerOptions {
                    force: true,
                    ..Default::default()
                }),
            )
            .await;
    }
    for service in ["app", "zdb", "web"] {
        let _ = docker
            .remove_volume(
                &format!("{project}-{service}-data"),
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await;
    }
}

/// Registers the engine, adds the service (with `requires`) and its HTTP
/// check on `/health`; returns the service.
async fn add_service(
    admin: &Api,
    project: &str,
    name: &str,
    port: u16,
    requires: &[&str],
) -> Service {
    let svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": name, "tier": "application", "engine": "main",
                        "compose_project": project, "compose_service": name,
                        "requires": requires}),
            )
            .await,
        "adding the service",
    )
    .await;
    let _: Value = ok_json(
        admin
            .post(
                "/api/v1/checks",
                &json!({"service_id": svc.id, "name": "health", "interval_s": 30,
                        "timeout_ms": 2000, "fail_after": 1, "recover_after": 1,
                        "spec": {"kind": "http", "url": format!("http://127.0.0.1:{port}/health")}}),
            )
            .await,
        "adding the check",
    )
    .await;
    svc
}

async fn register_engine(admin: &Api, engine: &PrivateDockerd) {
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
}

async fn builtin(api: &Api, name: &str) -> i64 {
    let list: Vec<RunbookSummary> = api.json("/api/v1/runbooks").await;
    list.iter()
        .find(|r| r.name == name && r.builtin)
        .unwrap_or_else(|| panic!("the built-in {name} runbook"))
        .id
}

/// Waits until the service's container runs and is healthy, and the panel
/// sees it.
async fn wait_healthy(api: &Api, docker: &Docker, project: &str, service: &str) {
    poll(
        WAIT,
        &format!("{service} running and healthy"),
        async || {
            let cs = project_containers(docker, project).await;
            let mine: Vec<_> = cs
                .iter()
                .filter(|c| c.0 == format!("{project}-{service}-1"))
                .collect();
            match mine.as_slice() {
                [c] if c.3 == "running" && c.4.as_deref() == Some("healthy") => Ok(()),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    poll(WAIT, &format!("{service} in the panel"), async || {
        let list: Vec<opsdeck_wire::ServiceOverview> = api.json("/api/v1/services").await;
        match list.iter().find(|o| o.service.name == service) {
            Some(o) if o.containers.len() == 1 => Ok(()),
            other => Err(format!("{:?}", other.map(|o| &o.containers))),
        }
    })
    .await;
}

async fn versions(api: &Api, id: i64) -> Vec<ImageVersion> {
    api.json(&format!("/api/v1/services/{id}/image-versions"))
        .await
}

fn step<'a>(run: &'a Run, name: &str) -> &'a opsdeck_wire::RunStep {
    run.steps
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("step {name}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_update_passes_its_gate_and_a_broken_one_rolls_back_by_itself() {
    let Some(engine) = engine().await else { return };
    let docker = opsdeck::docker::connect(Some(&engine.host()))
        .await
        .expect("docker");
    let (engine, img) = images(engine, &docker).await;
    let Some(img) = img else {
        release(engine).await;
        return;
    };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    register_engine(&admin, &engine).await;
    let project = unique_project("upd-one");
    let port = free_port();
    app_container(&docker, &project, "app", &img.reference("v1"), port).await;
    let svc = add_service(&admin, &project, "app", port, &[]).await;
    wait_healthy(&op, &docker, &project, "app").await;
    let before = project_containers(&docker, &project).await;
    let update = builtin(&op, "image-update").await;

    // v1 → v2: the gate passes.
    let run = start(&op, update, json!({"service": "app", "to": "v2"})).await;
    let done = wait_status(&op, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "update");
    assert_eq!(s.result["outcome"], "confirmed", "{}", s.output);
    assert!(s.output.contains("pulling"), "{}", s.output);
    assert!(s.output.contains("passed the health gate"), "{}", s.output);
    let after = project_containers(&docker, &project).await;
    assert_eq!(after.len(), 1, "the old container is gone: {after:?}");
    let (name, id, image, state, _) = &after[0];
    assert_eq!(name, &format!("{project}-app-1"));
    assert_ne!(id, &before[0].1, "a new container");
    assert_eq!(image, &img.ids["v2"]);
    assert_eq!(state, "running");
    let i = docker
        .inspect_container(id, None::<InspectContainerOptions>)
        .await
        .expect("inspect");
    let config = i.config.expect("config");
    let env = config.env.unwrap_or_default();
    assert!(env.contains(&format!("PORT={port}")), "{env:?}");
    assert!(env.contains(&"APP_MODE=production".to_owned()), "{env:?}");
    let labels = config.labels.unwrap_or_default();
    assert_eq!(labels.get("team").map(String::as_str), Some("payments"));
    assert_eq!(
        labels.get("com.docker.compose.service").map(String::as_str),
        Some("app")
    );
    assert_eq!(
        labels.get("version").map(String::as_str),
        Some("v2"),
        "the new image's own label, not the old one's"
    );
    assert_eq!(config.image.as_deref(), Some(img.reference("v2").as_str()));
    let host = i.host_config.expect("host config");
    assert_eq!(host.network_mode.as_deref(), Some("host"));
    assert_eq!(
        host.binds.unwrap_or_default(),
        [format!("{project}-app-data:/data")],
        "the same volume"
    );
    assert_eq!(
        host.restart_policy.and_then(|r| r.name),
        Some(RestartPolicyNameEnum::UNLESS_STOPPED)
    );
    let body = reqwest::get(format!("http://127.0.0.1:{port}/version.txt"))
        .await
        .expect("the app answers")
        .text()
        .await
        .expect("body");
    assert_eq!(body, "v2");
    let v = versions(&op, svc.id).await;
    assert_eq!(v[0].outcome, "confirmed", "{v:#?}");
    assert_eq!(v[0].image_id, img.ids["v2"]);
    assert!(v[0]
        .digest
        .as_deref()
        .is_some_and(|d| d.starts_with("sha256:")));
    assert_eq!(v[0].run_id, Some(run.summary.id));
    assert!(v[0].ended_at.is_none());
    assert_eq!(v[1].outcome, "observed");
    assert_eq!(v[1].image_id, img.ids["v1"]);
    assert!(v[1].ended_at.is_some(), "v1 ended when v2 was confirmed");
    // The previous image is kept.
    assert!(docker.inspect_image(&img.ids["v1"]).await.is_ok());

    // The same again: already up to date, nothing recreated.
    let run = start(&op, update, json!({"service": "app", "to": "v2"})).await;
    let done = wait_status(&op, run.summary.id, RunStatus::Succeeded).await;
    assert_eq!(step(&done, "update").result["outcome"], "up_to_date");
    assert_eq!(project_containers(&docker, &project).await[0].1, *id);

    // The broken v3 rolls back by itself within a short gate.
    sqlx::query("INSERT INTO service_update_settings (service_id, gate_seconds) VALUES ($1, 8)")
        .bind(svc.id)
        .execute(&server.pool)
        .await
        .expect("gate setting");
    let run = start(&op, update, json!({"service": "app", "to": "v3"})).await;
    let failed = wait_status(&op, run.summary.id, RunStatus::Failed).await;
    let s = step(&failed, "update");
    assert_eq!(s.status, StepStatus::Failed);
    let err = s.error.clone().unwrap_or_default();
    assert!(err.starts_with("v3 failed its health gate: "), "{err}");
    assert!(err.contains("; rolled back to sha256:"), "{err}");
    assert_ne!(
        step(&failed, "verify").status,
        StepStatus::Succeeded,
        "the run stops at the failed update"
    );
    wait_healthy(&op, &docker, &project, "app").await;
    let back = project_containers(&docker, &project).await;
    assert_eq!(back.len(), 1, "{back:?}");
    assert_eq!(back[0].1, *id, "the v2 container itself came back");
    assert_eq!(back[0].2, img.ids["v2"]);
    let open: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM incidents i JOIN incident_services s ON s.incident_id = i.id
         WHERE s.service_id = $1 AND i.status = 'triggered' AND i.title LIKE '%rolled back%'",
    )
    .bind(svc.id)
    .fetch_one(&server.pool)
    .await
    .expect("incidents");
    assert_eq!(open, 1, "an incident is open on the service");
    assert!(
        failed
            .timeline
            .iter()
            .any(|e| e.kind == "notification" && e.message.contains("rolled back")),
        "{:#?}",
        failed.timeline
    );
    let v = versions(&op, svc.id).await;
    assert_eq!(v[0].outcome, "rolled_back", "{v:#?}");
    assert_eq!(v[0].image_id, img.ids["v3"]);
    assert!(v[0].ended_at.is_some());
    assert_eq!(v[1].outcome, "confirmed");
    assert!(v[1].ended_at.is_none(), "v2 is still the current version");
    let journal: i64 =
        sqlx::query_scalar("SELECT count(*) FROM image_update_journal WHERE NOT finished")
            .fetch_one(&server.pool)
            .await
            .expect("journal");
    assert_eq!(journal, 0);

    // "Go back to this version": v1 by its local image id.
    let run = start(
        &op,
        update,
        json!({"service": "app", "to": img.ids["v1"].clone()}),
    )
    .await;
    let done = wait_status(&op, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "update");
    assert_eq!(s.result["outcome"], "confirmed", "{}", s.output);
    assert!(!s.output.contains("pulling"), "a local image: no pull");
    let now = project_containers(&docker, &project).await;
    assert_eq!(now.len(), 1);
    assert_eq!(now[0].2, img.ids["v1"]);

    remove_project(&docker, &project).await;
    server.stop().await;
    tokio::task::spawn_blocking(move || drop(img))
        .await
        .expect("stopping the registry");
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_updates_dependencies_first_and_a_down_registry_touches_nothing() {
    let Some(engine) = engine().await else { return };
    let docker = opsdeck::docker::connect(Some(&engine.host()))
        .await
        .expect("docker");
    let (engine, img) = images(engine, &docker).await;
    let Some(img) = img else {
        release(engine).await;
        return;
    };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    register_engine(&admin, &engine).await;
    let project = unique_project("upd-stack");
    let (p_db, p_web) = (free_port(), free_port());
    // The dependency's name sorts after its dependent's, so the order is
    // the graph's, not the alphabet's.
    app_container(&docker, &project, "zdb", &img.reference("v1"), p_db).await;
    app_container(&docker, &project, "web", &img.reference("v1"), p_web).await;
    let db = add_service(&admin, &project, "zdb", p_db, &[]).await;
    let web = add_service(&admin, &project, "web", p_web, &["zdb"]).await;
    wait_healthy(&op, &docker, &project, "zdb").await;
    wait_healthy(&op, &docker, &project, "web").await;

    // The stack-update runbook moves both to the newest image of their own
    // tag: retag v2 as v1 in the registry first.
    let v1 = img.reference("v1");
    let out = engine
        .cli()
        .args(["tag", &img.reference("v2"), &v1])
        .output()
        .expect("docker tag");
    assert!(out.status.success());
    let out = engine
        .cli()
        .args(["push", &v1])
        .output()
        .expect("docker push");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stack = builtin(&op, "stack-update").await;
    let run = start(&op, stack, json!({"project": project})).await;
    let done = wait_status(&op, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "update");
    assert_eq!(s.result["order"], json!(["zdb", "web"]), "{}", s.output);
    let outcomes: Vec<(&str, &str)> = s.result["services"]
        .as_array()
        .expect("services")
        .iter()
        .map(|r| {
            (
                r["service"].as_str().unwrap_or_default(),
                r["outcome"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(outcomes, [("zdb", "confirmed"), ("web", "confirmed")]);
    let zdb_at = s.output.find("── zdb").expect("zdb in the output");
    let web_at = s.output.find("── web").expect("web in the output");
    assert!(zdb_at < web_at, "{}", s.output);
    let (vd, vw) = (versions(&op, db.id).await, versions(&op, web.id).await);
    assert!(vd[0].started_at < vw[0].started_at, "{vd:#?} {vw:#?}");
    for c in project_containers(&docker, &project).await {
        assert_eq!(c.2, img.ids["v2"], "{c:?}");
    }

    // The registry goes down: a clear error, the service untouched.
    let before = project_containers(&docker, &project).await;
    tokio::task::spawn_blocking(move || drop(img.registry))
        .await
        .expect("stopping the registry");
    let update = builtin(&op, "image-update").await;
    let run = start(&op, update, json!({"service": "web", "to": "v3"})).await;
    let failed = wait_status(&op, run.summary.id, RunStatus::Failed).await;
    let err = step(&failed, "update").error.clone().unwrap_or_default();
    assert!(err.contains("pulling"), "{err}");
    assert!(err.contains("the service was not changed"), "{err}");
    assert_eq!(project_containers(&docker, &project).await, before);

    remove_project(&docker, &project).await;
    server.stop().await;
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_mid_update_leaves_one_healthy_container_after_restart() {
    let Some(engine) = engine().await else { return };
    let docker = opsdeck::docker::connect(Some(&engine.host()))
        .await
        .expect("docker");
    let (engine, img) = images(engine, &docker).await;
    let Some(img) = img else {
        release(engine).await;
        return;
    };
    let (url, pool) = process_database().await;
    let env = [("OPSDECK_RUN_LEASE_SECS", "5")];
    let first = OpsdeckProcess::start(&url, &env).await;
    first.wait_ready().await;
    let api = first.login("ops").await;
    register_engine(&api, &engine).await;
    let project = unique_project("upd-kill");
    let port = free_port();
    app_container(&docker, &project, "app", &img.reference("v1"), port).await;
    let svc = add_service(&api, &project, "app", port, &[]).await;
    wait_healthy(&api, &docker, &project, "app").await;
    let name = format!("{project}-app-1");

    // A long gate, so the kill lands inside it.
    sqlx::query("INSERT INTO service_update_settings (service_id, gate_seconds) VALUES ($1, 300)")
        .bind(svc.id)
        .execute(&pool)
        .await
        .expect("gate setting");
    let update = builtin(&api, "image-update").await;
    let run = start(&api, update, json!({"service": "app", "to": "v3"})).await;
    poll(WAIT, "the update in its gate", async || {
        let phase: Option<String> = sqlx::query_scalar(
            "SELECT phase FROM image_update_journal WHERE run_id = $1 AND NOT finished",
        )
        .bind(run.summary.id)
        .fetch_optional(&pool)
        .await
        .expect("journal");
        match phase.as_deref() {
            Some("gating") => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let mid = project_containers(&docker, &project).await;
    assert_eq!(mid.len(), 2, "old (stopped) and new: {mid:?}");
    first.kill().await;

    let second = OpsdeckProcess::start(&url, &env).await;
    second.wait_ready().await;
    let api = second.login("ops").await;
    wait_run(&api, run.summary.id, "the run interrupted", |r| {
        r.summary.status == RunStatus::Interrupted
    })
    .await;
    poll(WAIT, "the journal finished", async || {
        let open: i64 =
            sqlx::query_scalar("SELECT count(*) FROM image_update_journal WHERE NOT finished")
                .fetch_one(&pool)
                .await
                .expect("journal");
        if open == 0 {
            Ok(())
        } else {
            Err(format!("{open} unfinished"))
        }
    })
    .await;
    wait_healthy(&api, &docker, &project, "app").await;
    let after = project_containers(&docker, &project).await;
    assert_eq!(after.len(), 1, "exactly one container: {after:?}");
    assert_eq!(after[0].0, name);
    assert_eq!(after[0].3, "running");
    assert_eq!(after[0].4.as_deref(), Some("healthy"));
    assert_eq!(after[0].2, img.ids["v1"], "the broken v3 was not kept");
    let v = versions(&api, svc.id).await;
    assert_eq!(v[0].outcome, "interrupted", "{v:#?}");
    assert!(v[0].ended_at.is_some());

    second.stop().await;
    remove_project(&docker, &project).await;
    tokio::task::spawn_blocking(move || drop(img))
        .await
        .expect("stopping the registry");
    release(engine).await;
}
