//! A fleet with a hung engine: ten engines, one of them a socket that
//! accepts and never answers. Four of the nine live ones are distinct
//! private dockerds (the process's shared one and three dedicated ones,
//! each with its own socket and data root, bridge none); the other five
//! are socket relays to those four (to Opsdeck, five more hosts: one
//! connection, one events stream and one cache each), because every
//! further dockerd costs seconds and memory and proves nothing more. Two
//! of the dedicated dockerds run one and two containers and the third
//! none, so the per-engine container counts differ: the caches are per
//! engine and the engines really are distinct. The nine connect while the
//! tenth hangs; pages read the caches and answer within a deadline shorter
//! than the engine's request timeout; the hung engine is reported
//! unreachable with its reason, an action on it fails at once, and the
//! others stay connected.

use std::time::{Duration, Instant};

use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::containers::wait_engine;
use opsdeck_e2e::relay::{Hang, Relay};
use opsdeck_e2e::server::TestServer;
use opsdeck_e2e::util::{engine, ok_json, poll, release};
use opsdeck_wire::{Engine, EngineState, Role};
use serde_json::json;

/// Well under the engine's 10 s request timeout: a page that waited on
/// the hung engine could not answer in time.
const PAGE_DEADLINE: Duration = Duration::from_secs(5);
const IMAGE: &str = "opsdeck-test/busybox:1";
/// Containers on each dedicated dockerd: all different, so a count seen
/// on an engine names the dockerd behind it.
const CONTAINERS: [usize; 3] = [1, 2, 0];

/// Starts the dedicated dockerds side by side (seconds each); `None` when
/// the machine cannot run them (the test is skipped).
async fn dedicated_dockerds(n: usize) -> Option<Vec<PrivateDockerd>> {
    let starts: Vec<_> = (0..n)
        .map(|_| tokio::task::spawn_blocking(PrivateDockerd::dedicated))
        .collect();
    let mut started = Vec::new();
    let mut skipped = false;
    for s in starts {
        match s.await.expect("starting a dedicated dockerd") {
            Ok(d) => started.push(d),
            Err(_) => skipped = true,
        }
    }
    if skipped {
        for d in started {
            release(d).await;
        }
        return None;
    }
    Some(started)
}

/// Builds the busybox image on `engine` and runs `n` sleeping containers.
async fn run_sleepers(engine: &PrivateDockerd, n: usize) {
    if n == 0 {
        return;
    }
    let e = engine.clone();
    tokio::task::spawn_blocking(move || {
        e.build_busybox_image(IMAGE)
            .expect("building the busybox image");
        for i in 0..n {
            let out = e
                .cli()
                .args(["run", "-d", "--name", &format!("fleet-{i}"), IMAGE])
                .args(["sleep", "3600"])
                .output()
                .expect("running docker run");
            assert!(
                out.status.success(),
                "docker run: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    })
    .await
    .expect("the containers task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_engine_never_delays_pages_or_the_other_engines() {
    let Some(shared) = engine().await else { return };
    let Some(dedicated) = dedicated_dockerds(CONTAINERS.len()).await else {
        release(shared).await;
        return;
    };
    let ((), (), ()) = tokio::join!(
        run_sleepers(&dedicated[0], CONTAINERS[0]),
        run_sleepers(&dedicated[1], CONTAINERS[1]),
        run_sleepers(&dedicated[2], CONTAINERS[2]),
    );
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    let dir = tempfile::Builder::new()
        .prefix("odk-fleet-")
        .tempdir_in("/tmp")
        .expect("a temporary directory");
    let hang = Hang::start(&dir.path().join("hung.sock"));

    // Index 0 is the shared dockerd (other tests of the process may run
    // containers on it: its count is not asserted), 1..=3 the dedicated.
    let mut dockerds = vec![shared.clone()];
    dockerds.extend(dedicated.iter().cloned());
    // host1..host4: the dockerds themselves; host5..host9: relays to them,
    // round-robin. Each name is kept with its dockerd's index.
    let mut live: Vec<(String, String, usize)> = dockerds
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("host{}", i + 1), d.host(), i))
        .collect();
    let mut relays = Vec::new();
    for n in live.len() + 1..=9 {
        let target = (n - 1) % dockerds.len();
        let mut r = Relay::new(
            &dir.path().join(format!("e{n}.sock")),
            &dockerds[target].dir().join("docker.sock"),
        );
        r.start();
        live.push((format!("host{n}"), r.endpoint(), target));
        relays.push(r);
    }
    // The hung one first: the others must not queue behind it.
    let mut names = vec![("hung".to_owned(), hang.endpoint())];
    names.extend(live.iter().map(|(n, e, _)| (n.clone(), e.clone())));
    for (name, endpoint) in &names {
        let _: Engine = ok_json(
            admin
                .post(
                    "/api/v1/engines",
                    &json!({"name": name, "endpoint": endpoint}),
                )
                .await,
            "registering an engine",
        )
        .await;
    }
    for (name, _, _) in &live {
        wait_engine(&viewer, name, EngineState::Connected).await;
    }

    // Each engine's cache holds its own dockerd's containers: the
    // dedicated ones' counts differ, directly and through a relay.
    poll(
        Duration::from_secs(30),
        "per-engine container counts",
        async || {
            let list: Vec<Engine> = viewer.json("/api/v1/engines").await;
            let mut seen = Vec::new();
            for (name, _, target) in live.iter().filter(|(_, _, t)| *t > 0) {
                let e = list
                    .iter()
                    .find(|e| &e.name == name)
                    .ok_or(format!("{name} not listed"))?;
                seen.push(format!("{name}: {}", e.containers));
                if e.containers != CONTAINERS[target - 1] {
                    return Err(format!("{seen:?}"));
                }
            }
            Ok(())
        },
    )
    .await;

    // Every page answers from the caches while the hung engine is pending.
    for path in [
        "/api/v1/engines",
        "/api/v1/services",
        "/api/v1/status",
        "/api/v1/inventory/discovered",
    ] {
        let started = Instant::now();
        let res = tokio::time::timeout(PAGE_DEADLINE, viewer.get(path))
            .await
            .unwrap_or_else(|_| panic!("{path} waited on the hung engine"));
        assert!(res.status().is_success(), "{path}: {}", res.status());
        assert!(started.elapsed() < PAGE_DEADLINE);
    }
    let hung = poll(
        Duration::from_secs(60),
        "the hung engine reported",
        async || {
            let list: Vec<Engine> = viewer.json("/api/v1/engines").await;
            let e = list
                .into_iter()
                .find(|e| e.name == "hung")
                .ok_or("not listed")?;
            match (&e.state, &e.last_error) {
                (EngineState::Unreachable, Some(err)) if !err.is_empty() => Ok(e),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(
        hung.last_error
            .as_deref()
            .unwrap_or("")
            .contains("no answer"),
        "the reason: {:?}",
        hung.last_error
    );
    let started = Instant::now();
    let res = tokio::time::timeout(
        PAGE_DEADLINE,
        admin.get(&format!("/api/v1/engines/{}/disk", hung.id)),
    )
    .await
    .expect("an action on the hung engine fails at once");
    assert!(!res.status().is_success(), "{}", res.status());
    assert!(started.elapsed() < PAGE_DEADLINE);

    // The others stayed connected throughout.
    let list: Vec<Engine> = viewer.json("/api/v1/engines").await;
    for e in list.iter().filter(|e| e.name.starts_with("host")) {
        assert_eq!(e.state, EngineState::Connected, "{e:?}");
    }
    assert_eq!(
        list.iter().filter(|e| e.name.starts_with("host")).count(),
        9
    );

    drop(relays);
    drop(hang);
    server.stop().await;
    drop(dockerds);
    for d in dedicated {
        release(d).await;
    }
    release(shared).await;
}
