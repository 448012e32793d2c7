//! Host checks that name an engine (issue 22, "host health without an
//! agent"), against the private engine: its host's memory, load and uptime
//! agree with `/proc` read here; a small tmpfs mounted by the test goes ok →
//! warning → critical as it fills, and the engine's reading equals the
//! Opsdeck host's own (`statvfs`) one; no helper container is left after
//! any probe, and the helper image was built on the engine. The engine's
//! host is a board entry; critical, it opens an incident listing the
//! services on it, marked recovered once the mount is emptied. Validation:
//! an unknown engine and unclean paths are refused; an unreachable engine
//! makes the probe unknown with the reason.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::Docker;
use opsdeck_e2e::flows::checks::{metric, run_check};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release};
use opsdeck_wire::{
    Check, CheckStatus, Engine, EngineState, IncidentDetail, IncidentList, ProbeResult, Role,
    StatusBoard,
};
use serde_json::json;

const DAY: u32 = 86_400;
const LABEL: &str = "opsdeck.host-probe";

/// A host check (`spec` fields on top of the kind) probed only when run.
async fn add(op: &Api, name: &str, spec: serde_json::Value) -> Check {
    let mut s = json!({"kind": "host"});
    for (k, v) in spec.as_object().expect("spec fields") {
        s[k] = v.clone();
    }
    ok_json(
        op.post(
            "/api/v1/checks",
            &json!({"name": name, "interval_s": DAY, "timeout_ms": 60_000,
                    "fail_after": 1, "recover_after": 1, "spec": s}),
        )
        .await,
        name,
    )
    .await
}

/// Helper containers of the host probe on the engine (any state).
async fn helpers(docker: &Docker) -> Vec<String> {
    let filters = std::collections::HashMap::from([("label", vec![LABEL])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker
        .list_containers(Some(options))
        .await
        .expect("listing containers")
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

/// Runs check `id` and asserts no helper container is left afterwards.
async fn probe(op: &Api, docker: &Docker, id: i64) -> ProbeResult {
    let r = run_check(op, id).await;
    let left = helpers(docker).await;
    assert!(
        left.is_empty(),
        "helpers left after a probe: {left:?} ({r:?})"
    );
    r
}

fn proc_file(name: &str) -> String {
    std::fs::read_to_string(Path::new("/proc").join(name)).expect("reading /proc")
}

/// Used share of memory as `free` computes it, read here.
fn memory_pct_here() -> f64 {
    let text = proc_file("meminfo");
    let kib = |key: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .expect("meminfo field")
    };
    100.0 * (kib("MemTotal") - kib("MemAvailable")) / kib("MemTotal")
}

fn first_number(text: &str) -> f64 {
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .expect("a number")
}

fn cpus_here() -> usize {
    proc_file("stat")
        .lines()
        .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
        .count()
}

/// `value` lies within the readings taken before and after, widened by `slack`.
fn within(what: &str, value: f64, before: f64, after: f64, slack: f64) {
    let (lo, hi) = (before.min(after) - slack, before.max(after) + slack);
    assert!(
        (lo..=hi).contains(&value),
        "{what}: the engine's host says {value}, read here {before} then {after} (± {slack})"
    );
}

/// A tmpfs mounted for the test (4 MiB, 64 inodes), unmounted when dropped.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path) -> Tmpfs {
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=4m,nr_inodes=64", "tmpfs"])
            .arg(dir)
            .status()
            .expect("running mount")
            .success();
        assert!(ok, "mounting a tmpfs at {}", dir.display());
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.dir).status();
    }
}

async fn connected(admin: &Api, name: &str) {
    poll(Duration::from_secs(30), "engine connected", async || {
        let list: Vec<Engine> = admin.json("/api/v1/engines").await;
        let e = list.iter().find(|e| e.name == name);
        match e.map(|e| e.state) {
            Some(EngineState::Connected) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_checks_read_the_engines_host() {
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
    connected(&admin, "main").await;
    let docker = opsdeck::docker::connect(Some(&engine.host()))
        .await
        .expect("a client of the private engine");

    // Memory: the first probe also builds the helper image on the engine
    // (no registry is reachable: it is made from the static busybox).
    let mem = add(
        &op,
        "memory main",
        json!({"resource": "memory", "engine": "main", "warning_pct": 80, "critical_pct": 95}),
    )
    .await;
    let before = memory_pct_here();
    let r = probe(&op, &docker, mem.id).await;
    let after = memory_pct_here();
    assert_ne!(r.status, CheckStatus::Unknown, "{r:?}");
    within("memory_pct", metric(&r, "memory_pct"), before, after, 2.0);
    assert!(r.message.starts_with("memory "), "{}", r.message);
    assert!(r.message.contains("; host up "), "{}", r.message);
    docker
        .inspect_image("opsdeck/host-probe:1")
        .await
        .expect("the helper image was built on the engine");

    // Uptime: the engine's host is this machine.
    let before = first_number(&proc_file("uptime"));
    let r = probe(&op, &docker, mem.id).await;
    let after = first_number(&proc_file("uptime"));
    within("uptime_s", metric(&r, "uptime_s"), before, after, 1.0);

    // Load per core: the 1-minute average on every online CPU.
    let load = add(
        &op,
        "load main",
        json!({"resource": "load", "engine": "main", "warning_pct": 80, "critical_pct": 100}),
    )
    .await;
    let cpus = cpus_here();
    let before = first_number(&proc_file("loadavg"));
    let r = probe(&op, &docker, load.id).await;
    let after = first_number(&proc_file("loadavg"));
    let one = metric(&r, "load_pct") * cpus as f64 / 100.0;
    within("load average", one, before, after, 0.3);
    assert!(
        r.message.contains(&format!(" on {cpus} cores ")),
        "{}",
        r.message
    );

    // CPU: two samples a second apart, a share of all CPUs.
    let cpu = add(
        &op,
        "cpu main",
        json!({"resource": "cpu", "engine": "main", "warning_pct": 70, "critical_pct": 90}),
    )
    .await;
    let r = probe(&op, &docker, cpu.id).await;
    let v = metric(&r, "cpu_pct");
    assert!((0.0..=100.0).contains(&v), "{r:?}");
    assert!(r.message.starts_with("CPU "), "{}", r.message);
    // CPU and load may well be critical on a busy machine: they go before
    // the host's incident is looked at.
    for c in [&mem, &load, &cpu] {
        let res = op.delete(&format!("/api/v1/checks/{}", c.id)).await;
        assert_eq!(res.status(), 204);
    }
    // A service pinned to the engine is on its host.
    let res = admin
        .post(
            "/api/v1/services",
            &json!({"name": "web", "engine": "main"}),
        )
        .await;
    ok_json::<serde_json::Value>(res, "service web").await;

    // A mount of the host filling up: ok → warning → critical.
    let tmp = tempfile::Builder::new()
        .prefix("od-hostcheck-")
        .tempdir()
        .expect("tempdir");
    let fs = Tmpfs::mount(tmp.path());
    let path = fs.dir.display().to_string();
    let disk = add(
        &op,
        "disk main",
        json!({"resource": "disk", "engine": "main", "path": path,
               "warning_pct": 40, "critical_pct": 75}),
    )
    .await;
    let here = add(
        &op,
        "disk here",
        json!({"resource": "disk", "path": path, "warning_pct": 40, "critical_pct": 75}),
    )
    .await;
    let r = probe(&op, &docker, disk.id).await;
    assert_eq!(r.status, CheckStatus::Ok, "{r:?}");
    assert_eq!(metric(&r, "disk_pct"), 0.0, "{r:?}");
    std::fs::write(fs.dir.join("half"), vec![7u8; 2 << 20]).expect("2 MiB");
    let r = probe(&op, &docker, disk.id).await;
    assert_eq!(r.status, CheckStatus::Warning, "{r:?}");
    assert_eq!(metric(&r, "disk_pct"), 50.0, "{r:?}");
    assert!(
        r.message
            .starts_with(&format!("disk {path} 50.0 % used (warning at 40 %)")),
        "{}",
        r.message
    );
    assert_eq!(metric(&run_check(&op, here.id).await, "disk_pct"), 50.0);
    std::fs::write(fs.dir.join("more"), vec![7u8; 3 << 19]).expect("1.5 MiB");
    let r = probe(&op, &docker, disk.id).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert_eq!(metric(&r, "disk_pct"), 87.5, "{r:?}");
    assert!(r.message.contains("(critical at 75 %)"), "{}", r.message);

    // The host is a board entry, and its critical state opens an incident
    // listing the services on it.
    let b: StatusBoard = op.json("/api/v1/status").await;
    let host = b
        .hosts
        .iter()
        .find(|h| h.engine.as_deref() == Some("main"))
        .unwrap_or_else(|| panic!("{:?}", b.hosts));
    assert_eq!(host.name, "host main");
    assert_eq!(host.status, CheckStatus::Critical, "{host:?}");
    assert_eq!(host.services, vec!["web".to_owned()]);
    assert!(
        host.problems[0].starts_with(&format!("disk main: disk {path} 87.5 % used")),
        "{host:?}"
    );
    let incident = poll(Duration::from_secs(30), "the host's incident", async || {
        let l: IncidentList = op.json("/api/v1/incidents").await;
        l.items
            .iter()
            .find(|i| i.title.starts_with("host main: "))
            .cloned()
            .ok_or(format!("{:#?}", l.items))
    })
    .await;
    assert_eq!(
        incident.title,
        format!("host main: disk main: disk {path} 87.5 % used (critical at 75 %)")
    );
    assert_eq!(incident.source, "health");
    let on_it: Vec<(&str, &str)> = incident
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.role.as_str()))
        .collect();
    assert_eq!(on_it, vec![("web", "symptom")]);
    // Emptied again: the incident is marked recovered.
    std::fs::remove_file(fs.dir.join("half")).expect("rm");
    std::fs::remove_file(fs.dir.join("more")).expect("rm");
    assert_eq!(probe(&op, &docker, disk.id).await.status, CheckStatus::Ok);
    poll(
        Duration::from_secs(30),
        "the incident recovered",
        async || {
            let d: IncidentDetail = op.json(&format!("/api/v1/incidents/{}", incident.id)).await;
            d.incident
                .recovered_at
                .map(drop)
                .ok_or(format!("{:?}", d.incident))
        },
    )
    .await;

    // Inodes of the same mount: the engine's reading is the host's own.
    for i in 0..18 {
        std::fs::write(fs.dir.join(format!("f{i}")), b"").expect("a file");
    }
    let inodes = add(
        &op,
        "inodes main",
        json!({"resource": "inodes", "engine": "main", "path": path,
               "warning_pct": 25, "critical_pct": 90}),
    )
    .await;
    let inodes_here = add(
        &op,
        "inodes here",
        json!({"resource": "inodes", "path": path, "warning_pct": 25, "critical_pct": 90}),
    )
    .await;
    let r = probe(&op, &docker, inodes.id).await;
    let mine = run_check(&op, inodes_here.id).await;
    // 64 inodes: the root and 18 files are used.
    assert!(
        (metric(&r, "inodes_pct") - 100.0 * 19.0 / 64.0).abs() < 1e-6,
        "{r:?}"
    );
    assert_eq!(metric(&r, "inodes_pct"), metric(&mine, "inodes_pct"));
    assert_eq!(r.status, CheckStatus::Warning, "{r:?}");

    // A mount point that does not exist on the host: critical, no helper left.
    let gone = add(
        &op,
        "disk gone",
        json!({"resource": "disk", "engine": "main", "path": "/no/such/mount/point",
               "warning_pct": 80, "critical_pct": 90}),
    )
    .await;
    let r = probe(&op, &docker, gone.id).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(
        r.message.starts_with("host of engine main: "),
        "{}",
        r.message
    );

    drop(fs);
    drop(tmp);
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_check_engines_and_paths_are_checked() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let refused = async |spec: serde_json::Value| -> (String, String) {
        let res = op
            .post("/api/v1/checks", &json!({"name": "refused", "spec": spec}))
            .await;
        assert_eq!(res.status(), 400);
        let v: serde_json::Value = res.json().await.expect("an error body");
        (
            v["error"]["field"].as_str().unwrap_or_default().to_owned(),
            v["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        )
    };
    let (field, msg) = refused(
        json!({"kind": "host", "resource": "memory", "engine": "db01",
                                      "warning_pct": 80, "critical_pct": 95}),
    )
    .await;
    assert_eq!(field, "engine", "{msg}");
    assert_eq!(msg, "engine: no Docker engine named \"db01\"");
    for bad in ["etc", "/srv/../etc", "/srv/./data", "/a\u{0}b"] {
        let (field, msg) = refused(json!({"kind": "host", "resource": "disk", "path": bad,
                                          "warning_pct": 80, "critical_pct": 90}))
        .await;
        // A NUL is refused by the JSON extractor already (`spec.path`).
        assert!(
            field == "path" || field == "spec.path",
            "{bad:?}: {field}: {msg}"
        );
    }

    // A registered engine that cannot be reached: unknown, with the reason.
    let sock = format!("unix:///tmp/od-no-engine-{}.sock", std::process::id());
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "gone", "endpoint": sock}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let c = add(
        &op,
        "disk gone",
        json!({"resource": "disk", "engine": "gone", "path": "/var/lib//docker/",
               "warning_pct": 80, "critical_pct": 90}),
    )
    .await;
    let opsdeck_wire::CheckSpec::Host(h) = &c.spec else {
        panic!("{c:?}")
    };
    assert_eq!(h.path.as_deref(), Some("/var/lib/docker"), "cleaned");
    assert_eq!(h.engine.as_deref(), Some("gone"));
    let r = poll(Duration::from_secs(20), "unreachable", async || {
        let r = run_check(&op, c.id).await;
        (r.status == CheckStatus::Unknown && !r.message.contains("not connected yet"))
            .then_some(r.clone())
            .ok_or(format!("{r:?}"))
    })
    .await;
    assert!(
        r.message.starts_with("engine gone unreachable: "),
        "{}",
        r.message
    );
    // Editing to an unknown engine is refused too.
    let res = op
        .patch(
            &format!("/api/v1/checks/{}", c.id),
            &json!({"spec": {"kind": "host", "resource": "disk", "engine": "elsewhere",
                             "warning_pct": 80, "critical_pct": 90}}),
        )
        .await;
    let msg = expect_error(res, 400).await;
    assert!(msg.contains("\"elsewhere\""), "{msg}");
}
