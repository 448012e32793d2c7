//! Docker clean-up on a real engine of the test's own (a dedicated private
//! dockerd, so the engine holds exactly what the test made): disk usage,
//! the preview (dangling images, unused images older than N days, stopped
//! containers of no service, unused volumes only when asked; a service's
//! container, a backup plan's volume and an image a service may roll back
//! to kept with their reasons), and applying it behind the default `prune`
//! approval policy: exactly the preview's items are gone and nothing else,
//! while the items that came into use since the preview are skipped and
//! reported.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::backups::{create_plan, create_target};
use opsdeck_e2e::flows::runbooks::{pending_approval, wait_status};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::IMAGE;
use opsdeck_e2e::util::{expect_error, ok_json, poll, release};
use opsdeck_wire::{
    Approval, ApprovalStatus, CleanupPreview, CleanupStarted, DiskUsage, Role, RunStatus,
    StepStatus,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Runs `docker` against the engine; its trimmed standard output.
fn docker(engine: &PrivateDockerd, args: &[&str]) -> String {
    let out = engine
        .cli()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("docker {args:?}: {e}"));
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Builds `tag` from the busybox image with one label (the classic
/// builder, as the harness builds); returns its id.
fn build_labelled(engine: &PrivateDockerd, tag: &str, label: &str) -> String {
    let dir = tempfile::tempdir().expect("a build context");
    std::fs::write(
        dir.path().join("Dockerfile"),
        format!("FROM {IMAGE}\nLABEL cleanup.test=\"{label}\"\n"),
    )
    .unwrap();
    let out = engine
        .cli()
        .env("DOCKER_BUILDKIT", "0")
        .args(["build", "--quiet", "--network=none", "--tag", tag])
        .arg(dir.path())
        .output()
        .expect("docker build");
    assert!(
        out.status.success(),
        "docker build {tag}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    docker(engine, &["image", "inspect", "--format", "{{.Id}}", tag])
}

fn tar(dir: &Path, archive: &str, names: &[&str]) {
    let ok = Command::new("tar")
        .arg("-C")
        .arg(dir)
        .arg("-cf")
        .arg(dir.join(archive))
        .args(names)
        .status()
        .expect("running tar")
        .success();
    assert!(ok, "tar {archive}");
}

/// Loads an image `tag` whose creation time is `created` (RFC 3339): an
/// image archive written by hand (one layer holding `content`), the only
/// way to get an image the engine says is old.
fn load_old(engine: &PrivateDockerd, tag: &str, created: &str, content: &str) -> String {
    let dir = tempfile::tempdir().expect("an image directory");
    let d = dir.path();
    std::fs::write(d.join("content.txt"), content).unwrap();
    tar(d, "layer.tar", &["content.txt"]);
    let layer = std::fs::read(d.join("layer.tar")).unwrap();
    let diff_id = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let config = json!({
        "architecture": "amd64", "os": "linux", "created": created,
        "config": {"Cmd": ["/content.txt"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": "opsdeck cleanup test"}],
    });
    std::fs::write(d.join("config.json"), config.to_string()).unwrap();
    let manifest = json!([{"Config": "config.json", "RepoTags": [tag], "Layers": ["layer.tar"]}]);
    std::fs::write(d.join("manifest.json"), manifest.to_string()).unwrap();
    tar(
        d,
        "image.tar",
        &["manifest.json", "config.json", "layer.tar"],
    );
    let archive = d.join("image.tar");
    docker(
        engine,
        &["load", "--quiet", "--input", archive.to_str().unwrap()],
    );
    docker(engine, &["image", "inspect", "--format", "{{.Id}}", tag])
}

/// Every image id, container name and volume name on the engine.
fn everything(engine: &PrivateDockerd) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for (prefix, args) in [
        (
            "image",
            &["image", "ls", "--all", "--quiet", "--no-trunc"][..],
        ),
        ("container", &["ps", "--all", "--format", "{{.Names}}"][..]),
        ("volume", &["volume", "ls", "--quiet"][..]),
    ] {
        for line in docker(engine, args).lines().filter(|l| !l.is_empty()) {
            all.insert(format!("{prefix} {line}"));
        }
    }
    all
}

fn set(items: &[opsdeck_wire::CleanupItem]) -> BTreeSet<(String, String)> {
    items
        .iter()
        .map(|i| (i.kind.clone(), i.name.clone()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> BTreeSet<(String, String)> {
    v.iter()
        .map(|(k, n)| ((*k).to_owned(), (*n).to_owned()))
        .collect()
}

async fn preview(api: &Api, engine: i64, body: Value) -> CleanupPreview {
    let res = api
        .post(&format!("/api/v1/engines/{engine}/cleanup/preview"), &body)
        .await;
    assert_eq!(res.status(), 201, "preview: status");
    ok_json(res, "preview").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cleanup_removes_exactly_its_preview_and_skips_what_came_into_use() {
    let Ok(engine) = tokio::task::spawn_blocking(PrivateDockerd::dedicated)
        .await
        .expect("starting the engine")
    else {
        return;
    };
    let e = engine.clone();
    tokio::task::spawn_blocking(move || e.build_busybox_image(IMAGE))
        .await
        .expect("build task")
        .expect("the busybox image");

    // What the engine holds: a dangling image (a tag built twice), old
    // unused images, a stopped container of no service, a stopped container
    // of a service, unused volumes (one a backup plan names).
    let dangling = build_labelled(&engine, "cleanup/app:1", "first");
    let young = build_labelled(&engine, "cleanup/app:1", "second");
    assert_ne!(dangling, young);
    let old = load_old(&engine, "cleanup/old:1", "2020-01-02T03:04:05Z", "old");
    let late_image = load_old(&engine, "cleanup/late:1", "2020-01-02T03:04:05Z", "late");
    let rollback = load_old(&engine, "cleanup/rollback:1", "2020-01-02T03:04:05Z", "rb");
    docker(&engine, &["volume", "create", "cleanup-free"]);
    docker(&engine, &["volume", "create", "cleanup-kept"]);
    docker(&engine, &["volume", "create", "cleanup-used"]);
    docker(
        &engine,
        &[
            "create",
            "--name",
            "cleanup-stray",
            "--network",
            "none",
            IMAGE,
            "true",
        ],
    );
    docker(
        &engine,
        &[
            "create",
            "--name",
            "cleanup-late",
            "--network",
            "none",
            IMAGE,
            "sleep",
            "600",
        ],
    );
    docker(
        &engine,
        &[
            "create",
            "--name",
            "cleanup-web-1",
            "--network",
            "none",
            "--label",
            "com.docker.compose.project=cleanup",
            "--label",
            "com.docker.compose.service=web",
            "--volume",
            "cleanup-used:/data",
            IMAGE,
            "true",
        ],
    );

    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    server.create_user("requester", Role::Operator).await;
    let requester = server.login("requester").await;
    server.create_user("second", Role::Operator).await;
    let second = server.login("second").await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    let registered: Value = ok_json(res, "registering the engine").await;
    let eid = registered["id"].as_i64().expect("the engine's id");
    poll(
        Duration::from_secs(30),
        "the engine connected",
        async || {
            let engines: Vec<opsdeck_wire::Engine> = admin.json("/api/v1/engines").await;
            match engines.iter().find(|e| e.name == "main") {
                Some(e) if e.state == opsdeck_wire::EngineState::Connected => Ok(()),
                other => Err(format!("{:?}", other.map(|e| e.state))),
            }
        },
    )
    .await;
    let web: Value = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "web", "engine": "main", "compose_project": "cleanup",
                        "compose_service": "web"}),
            )
            .await,
        "creating the service",
    )
    .await;
    let store = tempfile::tempdir().expect("a backup directory");
    create_target(&admin, "local", store.path()).await;
    create_plan(
        &admin,
        json!({"name": "keep-volume", "target": "local",
               "sources": [{"kind": "volume", "volume": "cleanup-kept", "engine": "main"}]}),
    )
    .await;
    // An update of web to the rollback image the gate has not decided yet.
    sqlx::query(
        "INSERT INTO image_versions (service_id, image_ref, image_id, actor, outcome)
         VALUES ($1, 'cleanup/rollback:1', $2, 'requester', 'running')",
    )
    .bind(web["id"].as_i64().unwrap())
    .bind(&rollback)
    .execute(&server.pool)
    .await
    .unwrap();

    // Disk usage, for viewers.
    let disk: DiskUsage = viewer.json(&format!("/api/v1/engines/{eid}/disk")).await;
    let kinds: Vec<&str> = disk.kinds.iter().map(|k| k.kind.as_str()).collect();
    assert_eq!(kinds, ["images", "containers", "volumes", "build_cache"]);
    let kind = |k: &str| disk.kinds.iter().find(|x| x.kind == k).unwrap();
    assert_eq!(kind("volumes").count, 3);
    assert_eq!(kind("containers").count, 3);
    assert!(kind("images").count >= 6, "{disk:?}");
    assert!(kind("images").reclaimable_bytes > 0, "{disk:?}");
    assert!(kind("images").size_bytes >= kind("images").reclaimable_bytes);

    // Bad requests say which field.
    let msg = expect_error(
        requester
            .post(
                &format!("/api/v1/engines/{eid}/cleanup/preview"),
                &json!({"unused_images_older_than_days": 0}),
            )
            .await,
        400,
    )
    .await;
    assert!(msg.contains("unused_images_older_than_days"), "{msg}");
    expect_error(
        requester
            .post(
                &format!("/api/v1/engines/{eid}/cleanup/preview"),
                &json!({}),
            )
            .await,
        400,
    )
    .await;

    // Without volumes: no volume at all, kept or not.
    let without = preview(
        &requester,
        eid,
        json!({"dangling_images": true, "unused_images_older_than_days": 30,
               "stopped_containers": true}),
    )
    .await;
    let dangling_name = format!("<none> ({})", &dangling["sha256:".len()..][..12]);
    let images_and_containers = [
        ("container", "cleanup-late"),
        ("container", "cleanup-stray"),
        ("image", dangling_name.as_str()),
        ("image", "cleanup/late:1"),
        ("image", "cleanup/old:1"),
    ];
    assert_eq!(set(&without.items), pairs(&images_and_containers));
    assert_eq!(
        set(&without.kept),
        pairs(&[
            ("container", "cleanup-web-1"),
            ("image", "cleanup/rollback:1")
        ])
    );
    assert_eq!(
        without.total_bytes,
        without.items.iter().map(|i| i.size_bytes).sum::<i64>()
    );

    // With volumes: the unused one, never the backup plan's.
    let p = preview(
        &requester,
        eid,
        json!({"dangling_images": true, "unused_images_older_than_days": 30,
               "stopped_containers": true, "volumes": true}),
    )
    .await;
    let mut expected = pairs(&images_and_containers);
    expected.insert(("volume".into(), "cleanup-free".into()));
    assert_eq!(set(&p.items), expected);
    let reason = |name: &str| {
        p.kept
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("{name} is not kept: {:?}", p.kept))
            .reason
            .clone()
    };
    assert_eq!(reason("cleanup-kept"), "named by backup plan keep-volume");
    assert_eq!(reason("cleanup-web-1"), "belongs to service web");
    assert!(reason("cleanup/rollback:1").contains("roll back"));
    assert_eq!(p.kept.len(), 3, "{:?}", p.kept);
    assert!(p.items.iter().any(|i| i.id == old));

    // Between the preview and the clean-up, a previewed container starts
    // and a previewed image gets a container.
    docker(&engine, &["start", "cleanup-late"]);
    docker(
        &engine,
        &[
            "create",
            "--name",
            "cleanup-user",
            "--network",
            "none",
            "cleanup/late:1",
        ],
    );
    let before = everything(&engine);

    let res = requester
        .post(
            &format!("/api/v1/engines/{eid}/cleanup"),
            &json!({"preview_id": p.id}),
        )
        .await;
    assert_eq!(res.status(), 202);
    let started: CleanupStarted = ok_json(res, "applying the preview").await;
    let run = started.run_id;
    // One run per preview.
    expect_error(
        requester
            .post(
                &format!("/api/v1/engines/{eid}/cleanup"),
                &json!({"preview_id": p.id}),
            )
            .await,
        409,
    )
    .await;

    // The default `prune` policy: one vote by someone else.
    let ap = pending_approval(&requester, run).await;
    assert_eq!(ap.required, 1);
    assert_eq!(
        everything(&engine),
        before,
        "nothing removed before the vote"
    );
    let voted: Approval = ok_json(
        second
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &json!({"binding": ap.binding, "reason": "weekly clean-up"}),
            )
            .await,
        "approve",
    )
    .await;
    assert_eq!(voted.status, ApprovalStatus::Approved);
    let done = wait_status(&requester, run, RunStatus::Succeeded).await;
    let s = done
        .steps
        .iter()
        .find(|s| s.name == "cleanup")
        .expect("the cleanup step");
    assert_eq!(s.status, StepStatus::Succeeded, "{}", s.output);
    assert_eq!(s.result["removed"], 4, "{:?}\n{}", s.result, s.output);
    assert_eq!(s.result["skipped"], 2, "{:?}", s.result);
    let skipped: BTreeSet<(String, String)> = s.result["skipped_items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["name"].as_str().unwrap().to_owned(),
                i["reason"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            ("cleanup-late".to_owned(), "in use: running now".to_owned()),
            (
                "cleanup/late:1".to_owned(),
                "in use by container cleanup-user".to_owned()
            ),
        ]
        .into()
    );
    let freed: i64 = p
        .items
        .iter()
        .filter(|i| i.name != "cleanup-late" && i.name != "cleanup/late:1")
        .map(|i| i.size_bytes)
        .sum();
    assert_eq!(s.result["freed_bytes"], freed);

    // Exactly the removed items are gone, and nothing else.
    let mut want = before.clone();
    for gone in [
        "container cleanup-stray".to_owned(),
        format!("image {dangling}"),
        format!("image {old}"),
        "volume cleanup-free".to_owned(),
    ] {
        assert!(want.remove(&gone), "{gone} was there before: {before:?}");
    }
    assert_eq!(everything(&engine), want);
    for kept in [&young, &late_image, &rollback] {
        assert!(want.contains(&format!("image {kept}")));
    }

    // Audited: both previews, the apply, the vote and the step.
    let audit: Vec<(String, String)> = sqlx::query_as(
        "SELECT action, actor FROM audit_log WHERE action LIKE 'cleanup.%'
            OR action IN ('approval.approve', 'run.step.cleanup') ORDER BY seq",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap();
    let who = |a: &str, u: &str| (a.to_owned(), u.to_owned());
    assert_eq!(
        audit,
        vec![
            who("cleanup.preview", "requester"),
            who("cleanup.preview", "requester"),
            who("cleanup.apply", "requester"),
            who("approval.approve", "second"),
            who("run.step.cleanup", "requester"),
        ]
    );

    // A preview of another engine, or one already applied, is refused.
    expect_error(
        requester
            .post(
                &format!("/api/v1/engines/{}/cleanup", eid + 1000),
                &json!({"preview_id": without.id}),
            )
            .await,
        400,
    )
    .await;

    server.stop().await;
    release(engine).await;
}
