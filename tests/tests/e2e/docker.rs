//! The private Docker Engine: the server's Docker door negotiates the API
//! version with it, and a busybox image built `FROM scratch` runs a container
//! that serves HTTP on a loopback port (host network), until it is stopped
//! and removed.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, InspectContainerOptions, ListContainersOptionsBuilder,
    RemoveContainerOptionsBuilder, StartContainerOptions, StopContainerOptionsBuilder,
};
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::proc::free_port;

const IMAGE: &str = "opsdeck-test/busybox:1";

fn parse_api(v: &str) -> (usize, usize) {
    let mut parts = v.split('.').map(|p| p.parse::<usize>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(major)), Some(Ok(minor)), None) => (major, minor),
        _ => panic!("the engine reports an API version that is not MAJOR.MINOR: {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_engine_builds_runs_and_negotiates() {
    let Ok(engine) = tokio::task::spawn_blocking(PrivateDockerd::start)
        .await
        .expect("starting the engine")
    else {
        return;
    };
    let host = engine.host();

    // The server's door negotiates: the client settles on the engine's API
    // version (or bollard's newest, if the engine is newer still); without
    // negotiation it would stay at bollard's newest. (bollard 0.19 does not
    // put the version in request paths, so the engine answers at its own
    // version either way; this checks that `connect` asked.)
    let docker = opsdeck::docker::connect(Some(&host))
        .await
        .expect("opsdeck::docker::connect negotiates with the private engine");
    let info = opsdeck::docker::engine_info(&docker)
        .await
        .expect("engine info");
    let engine_api = parse_api(&info.api_version);
    assert!(
        engine_api >= (1, 24),
        "engine API {} is older than anything Opsdeck supports",
        info.api_version
    );
    let newest = bollard::API_DEFAULT_VERSION;
    let expected = engine_api.min((newest.major_version, newest.minor_version));
    let negotiated = docker.client_version();
    assert_eq!(
        (negotiated.major_version, negotiated.minor_version),
        expected,
        "negotiated API {negotiated} for an engine speaking {} (bollard's newest: {newest})",
        info.api_version
    );
    // It is the engine we started: `dockerd --version` names the same version.
    let dockerd_version = std::process::Command::new("dockerd")
        .arg("--version")
        .output()
        .expect("dockerd --version");
    let dockerd_version = String::from_utf8_lossy(&dockerd_version.stdout).into_owned();
    assert!(
        !info.version.is_empty() && dockerd_version.contains(&format!(" {},", info.version)),
        "engine version {:?} is not the installed dockerd's: {dockerd_version:?}",
        info.version
    );
    let build = engine.clone();
    tokio::task::spawn_blocking(move || build.build_busybox_image(IMAGE))
        .await
        .expect("build task")
        .expect("building the busybox image");
    // Cached: a second build is a no-op (and succeeds).
    let build = engine.clone();
    tokio::task::spawn_blocking(move || build.build_busybox_image(IMAGE))
        .await
        .expect("build task")
        .expect("building the busybox image again");

    let port = free_port();
    let name = format!("opsdeck-web-{port}");
    // The container's own constant command, not user input.
    let script = format!(
        "mkdir -p /www && echo opsdeck-ok > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www"
    );
    let body = ContainerCreateBody {
        image: Some(IMAGE.into()),
        cmd: Some(vec!["sh".into(), "-c".into(), script]),
        host_config: Some(HostConfig {
            network_mode: Some("host".into()),
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
        .expect("create container");
    docker
        .start_container(&name, None::<StartContainerOptions>)
        .await
        .expect("start container");

    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("HTTP client");
    let url = format!("http://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(20);
    let text = loop {
        match http.get(&url).send().await {
            Ok(res) if res.status().is_success() => {
                break res.text().await.expect("response body");
            }
            other => {
                assert!(
                    Instant::now() < deadline,
                    "the container's httpd did not answer {url} within 20 s: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    assert_eq!(text.trim(), "opsdeck-ok");

    docker
        .stop_container(&name, Some(StopContainerOptionsBuilder::new().t(2).build()))
        .await
        .expect("stop container");
    let state = docker
        .inspect_container(&name, None::<InspectContainerOptions>)
        .await
        .expect("inspect the stopped container")
        .state
        .expect("container state");
    assert_eq!(state.running, Some(false), "stopped: {state:?}");
    assert!(
        http.get(&url).send().await.is_err(),
        "nothing listens on {url} after the container stopped"
    );

    docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::default().build()),
        )
        .await
        .expect("remove container");
    let filters = HashMap::from([("name", vec![name.as_str()])]);
    let left = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .expect("list containers");
    assert!(
        left.is_empty(),
        "container {name} is still listed after removal: {left:?}"
    );

    // Stopping the engine blocks (up to 20 s): not on a runtime worker.
    tokio::task::spawn_blocking(move || drop(engine))
        .await
        .expect("stopping the engine");
}
