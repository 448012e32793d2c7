//! The private Docker Engine: the server's Docker door negotiates the API
//! version with it, and a busybox image built from scratch serves HTTP.

use std::time::{Duration, Instant};

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, RemoveContainerOptionsBuilder,
};
use opsdeck_e2e::dockerd::PrivateDockerd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_engine_builds_runs_and_negotiates() {
    let Ok(engine) = PrivateDockerd::shared() else {
        return;
    };
    let docker = opsdeck::docker::connect(Some(engine.host()))
        .await
        .expect("connect and negotiate");
    let info = opsdeck::docker::engine_info(&docker)
        .await
        .expect("engine info");
    assert!(!info.version.is_empty(), "engine reports a version");
    let api: Vec<u32> = info
        .api_version
        .split('.')
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        api.len() == 2 && api[0] == 1 && api[1] >= 24,
        "engine API version looks wrong: {}",
        info.api_version
    );

    engine
        .build_busybox_image("opsdeck-test/busybox:1")
        .expect("building the busybox image");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let script = format!("mkdir -p /www && echo opsdeck-ok > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www");
    let name = format!("opsdeck-web-{port}");
    let body = ContainerCreateBody {
        image: Some("opsdeck-test/busybox:1".into()),
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
        .start_container(
            &name,
            None::<bollard::query_parameters::StartContainerOptions>,
        )
        .await
        .expect("start");

    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        if let Ok(res) = reqwest::get(format!("http://127.0.0.1:{port}/")).await {
            break res.text().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the container's httpd did not answer in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(body.trim(), "opsdeck-ok");

    docker
        .remove_container(
            &name,
            Some(RemoveContainerOptionsBuilder::default().force(true).build()),
        )
        .await
        .expect("remove");
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default().all(true).build(),
        ))
        .await
        .expect("list");
    assert!(
        !list.iter().any(|c| c
            .names
            .iter()
            .flatten()
            .any(|n| n.trim_start_matches('/') == name)),
        "container removed"
    );
}
