//! Update discovery against real parts: the test registry
//! (`opsdeck_e2e::registry`, Distribution v2 on loopback), the private
//! dockerd running the services' containers, a webhook receiver.
//!
//! - a tag pushed again (new digest) is found and notified once;
//! - pinned semver tags get the newer tags their `moves` policy allows;
//! - the settings routes validate and audit;
//! - a registry that is down is an error of its services only, a locally
//!   built image is `local_only`, and two services on one reference make
//!   one set of registry requests (counted in the registry's own log).
//!
//! The scheduled check is off in the harness; these tests call
//! `POST /api/v1/updates/check`.

use std::time::Duration;

use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::receiver::Receiver;
use opsdeck_e2e::registry::{AppImage, Registry};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{engine, expect_error, ok_json, release};
use opsdeck_wire::{ImageStatus, Notification, Role, Service, UpdateSettings};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(30);

/// A registry of the test's own; `None` (test returns) when
/// `docker-registry` is not installed outside CI.
pub(crate) async fn registry() -> Option<Registry> {
    tokio::task::spawn_blocking(Registry::start)
        .await
        .expect("starting the registry")
        .ok()
}

/// Builds and pushes one app version (blocking work off the runtime).
pub(crate) async fn push(
    registry: &std::sync::Arc<Registry>,
    engine: &std::sync::Arc<PrivateDockerd>,
    repo: &str,
    tag: &str,
    version: &str,
) -> (String, String) {
    let (r, e) = (registry.clone(), engine.clone());
    let repo_tag = format!("{repo}:{tag}");
    let (repo, tag, version) = (repo.to_owned(), tag.to_owned(), version.to_owned());
    tokio::task::spawn_blocking(move || {
        r.push_app(
            &e,
            &AppImage {
                repo: &repo,
                tag: &tag,
                version: &version,
                broken: false,
            },
        )
    })
    .await
    .expect("push task")
    .unwrap_or_else(|e| panic!("pushing {repo_tag}: {e:#}"))
}

/// `docker <args>` on the engine, asserting success; returns stdout.
pub(crate) async fn docker(engine: &std::sync::Arc<PrivateDockerd>, args: &[&str]) -> String {
    let e = engine.clone();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let out = e.cli().args(&args).output().expect("running docker");
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    })
    .await
    .expect("docker task")
}

/// A unique container name for this test process.
pub(crate) fn name(what: &str) -> String {
    format!("upd-{what}-{}", std::process::id())
}

/// Runs `image` as container `name` (removing an older one of that name).
pub(crate) async fn run(
    engine: &std::sync::Arc<PrivateDockerd>,
    name: &str,
    image: &str,
    cmd: &[&str],
) {
    let e = engine.clone();
    let n = name.to_owned();
    tokio::task::spawn_blocking(move || {
        let _ = e.cli().args(["rm", "-f", &n]).output();
    })
    .await
    .expect("rm task");
    let mut args = vec!["run", "-d", "--name", name, image];
    args.extend(cmd);
    docker(engine, &args).await;
}

pub(crate) async fn remove(engine: &std::sync::Arc<PrivateDockerd>, names: &[String]) {
    let e = engine.clone();
    let names = names.to_vec();
    tokio::task::spawn_blocking(move || {
        for n in names {
            let _ = e.cli().args(["rm", "-f", &n]).output();
        }
    })
    .await
    .expect("rm task");
}

pub(crate) async fn setup(server: &TestServer, engine: &PrivateDockerd) -> Api {
    let admin = server.user(Role::Admin).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "{}",
        res.text().await.unwrap_or_default()
    );
    admin
}

/// Adds a service mapped to `container` and waits until the hub's cache
/// shows the container.
pub(crate) async fn service(admin: &Api, name: &str, container: &str) -> i64 {
    let s: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": name, "container_name": container, "engine": "main"}),
            )
            .await,
        "create service",
    )
    .await;
    opsdeck_e2e::util::poll(WAIT, "the container in the cache", async || {
        let o: opsdeck_wire::ServiceOverview =
            admin.json(&format!("/api/v1/services/{}", s.id)).await;
        (!o.containers.is_empty())
            .then_some(())
            .ok_or_else(|| format!("{o:?}"))
    })
    .await;
    s.id
}

pub(crate) async fn check(api: &Api, ids: Option<&[i64]>) -> Vec<ImageStatus> {
    let body = match ids {
        Some(ids) => json!({ "service_ids": ids }),
        None => json!({}),
    };
    ok_json(api.post("/api/v1/updates/check", &body).await, "check").await
}

pub(crate) fn of(list: &[ImageStatus], id: i64) -> ImageStatus {
    list.iter()
        .find(|s| s.service_id == id)
        .cloned()
        .unwrap_or_else(|| panic!("no status for service {id}: {list:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_tag_is_found_and_notified_once() {
    let Some(engine) = engine().await else { return };
    let Some(registry) = registry().await else {
        return;
    };
    let engine = std::sync::Arc::new(engine);
    let registry = std::sync::Arc::new(registry);
    let server = TestServer::start().await;
    let admin = setup(&server, &engine).await;
    let op = server.user(Role::Operator).await;
    let rx = Receiver::start().await;
    ok_json::<serde_json::Value>(
        admin
            .post(
                "/api/v1/channels",
                &json!({"name": "updates", "kind": "webhook",
                        "config": {"url": rx.url("/hook")}, "severities": ["P4"]}),
            )
            .await,
        "channel",
    )
    .await;

    let (reference, d1) = push(&registry, &engine, "moved/app", "v1", "one").await;
    let web = name("moved");
    run(&engine, &web, &reference, &[]).await;
    let id = service(&admin, "web", &web).await;

    let first = of(&check(&op, None).await, id);
    assert_eq!(first.image_ref, reference);
    assert_eq!(
        first.running_digest.as_deref(),
        Some(d1.as_str()),
        "{first:?}"
    );
    assert_eq!(
        first.latest_digest.as_deref(),
        Some(d1.as_str()),
        "{first:?}"
    );
    assert!(!first.update_available && !first.local_only, "{first:?}");
    assert_eq!(first.error, None);
    assert!(
        first.latest_created.is_some(),
        "created from the running image"
    );

    // The same tag pushed again with other content: a new digest.
    let (_, d2) = push(&registry, &engine, "moved/app", "v1", "two").await;
    assert_ne!(d1, d2);
    let second = of(&check(&op, Some(&[id])).await, id);
    assert_eq!(second.running_digest.as_deref(), Some(d1.as_str()));
    assert_eq!(second.latest_digest.as_deref(), Some(d2.as_str()));
    assert!(second.update_available, "{second:?}");
    assert!(
        second.latest_created.is_some(),
        "the registry's config blob says when the new image was made: {second:?}"
    );
    let msgs = rx.wait_for("/hook", 1, WAIT).await;
    let text = msgs[0].json()["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(text.contains(&reference), "{text}");
    assert!(text.contains(&d2[..19]), "names the new digest: {text}");

    // Checked again: the same digest is not notified twice (the outbox
    // rows are written in the check's transaction).
    let third = of(&check(&op, None).await, id);
    assert!(third.update_available);
    let rows: Vec<Notification> = admin.json("/api/v1/notifications").await;
    assert_eq!(rows.len(), 1, "one message per digest: {rows:?}");

    // The list reads the stored statuses.
    let listed: Vec<ImageStatus> = op.json("/api/v1/updates").await;
    assert!(of(&listed, id).update_available);
    let entries = opsdeck_e2e::flows::audit::audit(&admin, "updates.check").await;
    assert_eq!(entries.len(), 3, "every check is audited");

    // Policy none: never offered, never notified; its status goes.
    let res = op
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/services/{id}/update-settings"),
            &json!({"policy": "none", "moves": "patch", "gate_seconds": 120,
                    "heal_after_minutes": null, "heal_max_per_hour": 3}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(check(&op, None).await.is_empty());
    let listed: Vec<ImageStatus> = op.json("/api/v1/updates").await;
    assert!(listed.is_empty(), "{listed:?}");

    remove(&engine, &[web]).await;
    drop(registry);
    if let Ok(e) = std::sync::Arc::try_unwrap(engine) {
        release(e).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_tags_get_the_newer_tags_their_policy_allows() {
    let Some(engine) = engine().await else { return };
    let Some(registry) = registry().await else {
        return;
    };
    let engine = std::sync::Arc::new(engine);
    let registry = std::sync::Arc::new(registry);
    let server = TestServer::start().await;
    let admin = setup(&server, &engine).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let mut reference = String::new();
    for tag in ["1.2.3", "1.2.4", "1.3.0", "2.0.0", "1.3.0-alpine"] {
        let (r, _) = push(&registry, &engine, "pinned/app", tag, tag).await;
        if tag == "1.2.3" {
            reference = r;
        }
    }
    let c = name("pinned");
    run(&engine, &c, &reference, &[]).await;
    let id = service(&admin, "pinned", &c).await;
    let path = format!("/api/v1/services/{id}/update-settings");

    // The defaults: notify, patch moves.
    let s: UpdateSettings = viewer.json(&path).await;
    assert_eq!(s.moves, opsdeck_wire::SemverMoves::Patch);
    assert_eq!(s.policy, opsdeck_wire::UpdatePolicy::Notify);
    assert_eq!(of(&check(&op, None).await, id).newer_tags, ["1.2.4"]);

    let put = |moves: &str| {
        json!({"policy": "notify", "moves": moves, "gate_seconds": 60,
               "heal_after_minutes": 5, "heal_max_per_hour": 2})
    };
    for (moves, want) in [
        ("minor", vec!["1.3.0", "1.2.4"]),
        ("any", vec!["2.0.0", "1.3.0", "1.2.4"]),
        ("none", vec![]),
    ] {
        let saved: UpdateSettings = ok_json(
            op.send(reqwest::Method::PUT, &path, &put(moves)).await,
            "settings",
        )
        .await;
        assert_eq!(saved.gate_seconds, 60);
        assert_eq!(saved.heal_after_minutes, Some(5));
        let st = of(&check(&op, Some(&[id])).await, id);
        assert_eq!(st.newer_tags, want, "moves {moves}: {st:?}");
        assert!(!st.update_available, "the tag itself did not move");
    }

    // Validation, with the field named.
    for (field, value) in [
        ("gate_seconds", json!(4)),
        ("gate_seconds", json!(3601)),
        ("heal_after_minutes", json!(0)),
        ("heal_after_minutes", json!(1441)),
        ("heal_max_per_hour", json!(0)),
        ("heal_max_per_hour", json!(61)),
    ] {
        let mut body = put("patch");
        body[field] = value;
        let res = op.send(reqwest::Method::PUT, &path, &body).await;
        let msg = expect_error(res, 400).await;
        assert!(msg.contains(field), "{field}: {msg}");
    }
    let res = op
        .send(reqwest::Method::PUT, &path, &json!({"policy": "sometimes"}))
        .await;
    assert_eq!(res.status(), 400);
    let res = op
        .send(
            reqwest::Method::PUT,
            "/api/v1/services/999999/update-settings",
            &put("patch"),
        )
        .await;
    assert_eq!(res.status(), 404);
    let res = op
        .post("/api/v1/updates/check", &json!({"service_ids": [999999]}))
        .await;
    assert_eq!(res.status(), 404);
    let entries = opsdeck_e2e::flows::audit::audit(&admin, "service.update_settings").await;
    assert_eq!(entries.len(), 3, "each saved change is audited");

    remove(&engine, &[c]).await;
    drop(registry);
    if let Ok(e) = std::sync::Arc::try_unwrap(engine) {
        release(e).await;
    }
}

/// Lines of the registry's log about manifests of `repo` (the engine's
/// distribution inspect reads the manifest).
fn manifest_requests(registry: &Registry, repo: &str) -> usize {
    let log = std::fs::read_to_string(registry.dir().join("registry.log")).unwrap_or_default();
    let needle = format!("/v2/{repo}/manifests/");
    log.lines()
        .filter(|l| l.contains(&needle) && l.contains("response completed"))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registry_errors_stay_per_service_and_references_are_asked_once() {
    let Some(engine) = engine().await else { return };
    let (Some(registry), Some(gone)) = (registry().await, registry().await) else {
        return;
    };
    let engine = std::sync::Arc::new(engine);
    let registry = std::sync::Arc::new(registry);
    let gone = std::sync::Arc::new(gone);
    let server = TestServer::start().await;
    let admin = setup(&server, &engine).await;
    let op = server.user(Role::Operator).await;

    let (shared, digest) = push(&registry, &engine, "shared/app", "v1", "one").await;
    let (elsewhere, _) = push(&gone, &engine, "gone/app", "v1", "one").await;
    // Built here, never pushed: no RepoDigests, unknown to the registry.
    let local = registry.reference("local/only", "v1");
    {
        let e = engine.clone();
        let l = local.clone();
        tokio::task::spawn_blocking(move || e.build_busybox_image(&l))
            .await
            .expect("build task")
            .expect("building the local image");
    }
    let names = [name("a"), name("b"), name("gone"), name("local")];
    run(&engine, &names[0], &shared, &[]).await;
    run(&engine, &names[1], &shared, &[]).await;
    run(&engine, &names[2], &elsewhere, &[]).await;
    run(&engine, &names[3], &local, &["sleep", "3600"]).await;
    let a = service(&admin, "a", &names[0]).await;
    let b = service(&admin, "b", &names[1]).await;
    let g = service(&admin, "gone", &names[2]).await;
    let l = service(&admin, "local", &names[3]).await;

    // Dedupe: one service on the reference, then two on it: the registry
    // sees the same requests (per reference, not per service).
    let before = manifest_requests(&registry, "shared/app");
    let one = check(&op, Some(&[a])).await;
    assert_eq!(of(&one, a).latest_digest.as_deref(), Some(digest.as_str()));
    let per_reference = manifest_requests(&registry, "shared/app") - before;
    assert!(
        per_reference >= 1,
        "the registry's log shows the manifest request:\n{}",
        std::fs::read_to_string(registry.dir().join("registry.log")).unwrap_or_default()
    );
    let before = manifest_requests(&registry, "shared/app");
    let two = check(&op, Some(&[a, b])).await;
    assert_eq!(of(&two, b).latest_digest.as_deref(), Some(digest.as_str()));
    assert_eq!(
        manifest_requests(&registry, "shared/app") - before,
        per_reference,
        "two services on one reference: one set of registry requests"
    );

    // One registry down: its service has an error, the others are answered.
    drop(std::sync::Arc::try_unwrap(gone).ok().expect("one handle"));
    let all = check(&op, None).await;
    let down = of(&all, g);
    assert!(down.error.is_some(), "{down:?}");
    assert!(!down.update_available && down.latest_digest.is_none());
    for id in [a, b] {
        let s = of(&all, id);
        assert_eq!(s.error, None, "{s:?}");
        assert_eq!(s.latest_digest.as_deref(), Some(digest.as_str()));
    }
    let loc = of(&all, l);
    assert!(loc.local_only, "{loc:?}");
    assert_eq!(loc.error, None);
    assert_eq!(loc.running_digest, None);

    // The list answers from the table, errors included, whatever the
    // registries do.
    let listed: Vec<ImageStatus> = op.json("/api/v1/updates").await;
    assert_eq!(listed.len(), 4);
    assert_eq!(of(&listed, g).error, down.error);
    assert!(of(&listed, l).local_only);

    remove(&engine, &names).await;
    drop(registry);
    if let Ok(e) = std::sync::Arc::try_unwrap(engine) {
        release(e).await;
    }
}
