//! A fleet with a hung engine: ten engines, nine of them relays to the
//! private engine (to Opsdeck, nine hosts: one connection, one events
//! stream and one cache each) and one socket that accepts and never
//! answers. The nine connect while the tenth hangs; pages read the caches
//! and answer within a deadline shorter than the engine's request timeout;
//! the hung engine is reported unreachable with its reason, an action on
//! it fails at once, and the others stay connected.

use std::time::{Duration, Instant};

use opsdeck_e2e::flows::containers::wait_engine;
use opsdeck_e2e::relay::{Hang, Relay};
use opsdeck_e2e::server::TestServer;
use opsdeck_e2e::util::{engine, ok_json, poll, release};
use opsdeck_wire::{Engine, EngineState, Role};
use serde_json::json;

/// Well under the engine's 10 s request timeout: a page that waited on
/// the hung engine could not answer in time.
const PAGE_DEADLINE: Duration = Duration::from_secs(5);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_engine_never_delays_pages_or_the_other_engines() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    let dir = tempfile::Builder::new()
        .prefix("odk-fleet-")
        .tempdir_in("/tmp")
        .expect("a temporary directory");
    let hang = Hang::start(&dir.path().join("hung.sock"));
    let mut relays = Vec::new();
    for i in 1..=9 {
        let mut r = Relay::new(
            &dir.path().join(format!("e{i}.sock")),
            &engine.dir().join("docker.sock"),
        );
        r.start();
        relays.push(r);
    }
    // The hung one first: the others must not queue behind it.
    let mut names = vec![("hung".to_owned(), hang.endpoint())];
    names.extend(
        relays
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("host{}", i + 1), r.endpoint())),
    );
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
    for (name, _) in names.iter().skip(1) {
        wait_engine(&viewer, name, EngineState::Connected).await;
    }

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
    release(engine).await;
}
