//! The scale-service runbook scaling a compose service up and down.

use super::*;

/// The engine's containers of one compose service: (name, labels, running).
async fn compose_containers(
    docker: &Docker,
    project: &str,
    service: &str,
) -> Vec<(String, HashMap<String, String>, bool)> {
    let filters = HashMap::from([(
        "label",
        vec![
            format!("com.docker.compose.project={project}"),
            format!("com.docker.compose.service={service}"),
        ],
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
    let mut out: Vec<_> = list
        .into_iter()
        .map(|c| {
            let name = c
                .names
                .unwrap_or_default()
                .first()
                .map(|n| n.trim_start_matches('/').to_owned())
                .unwrap_or_default();
            let running = c.state.map(|s| s.to_string()) == Some("running".into());
            (name, c.labels.unwrap_or_default(), running)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_service_runbook_scales_a_compose_service_up_and_down() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-scale", FORGE).await;
    let docker = env.stack.docker();
    let project = env.stack.project.clone();
    let list: Vec<RunbookSummary> = env.op.json("/api/v1/runbooks").await;
    let scale = list
        .iter()
        .find(|r| r.name == "scale-service" && r.builtin)
        .expect("the built-in scale-service runbook")
        .id;

    let run = start(&env.op, scale, json!({"service": "gitea", "replicas": 3})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "scale");
    assert_eq!(s.result["before"], 1);
    assert_eq!(
        s.result["created"],
        json!([format!("{project}-gitea-2"), format!("{project}-gitea-3")])
    );
    let three = compose_containers(docker, &project, "gitea").await;
    let names: Vec<&str> = three.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(
        names,
        (1..=3)
            .map(|n| format!("{project}-gitea-{n}"))
            .collect::<Vec<_>>(),
        "{three:#?}"
    );
    for (n, (name, labels, running)) in three.iter().enumerate() {
        assert!(running, "{name} runs");
        assert_eq!(
            labels.get("com.docker.compose.container-number"),
            Some(&(n + 1).to_string()),
            "{name}"
        );
        assert_eq!(
            labels.get("com.docker.compose.oneoff").map(String::as_str),
            Some("False")
        );
    }
    assert_eq!(step(&done, "wait_healthy").status, StepStatus::Succeeded);
    let o = wait_service(&env.op, "gitea", "with 3 containers", |o| {
        o.containers.len() == 3
    })
    .await;
    assert!(o.containers.iter().all(|c| c.state == "running"), "{o:#?}");

    // Back to one: the highest numbers go, gitea-1 stays.
    let run = start(&env.op, scale, json!({"service": "gitea", "replicas": 1})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "scale");
    assert_eq!(s.result["before"], 3);
    assert_eq!(
        s.result["removed"],
        json!([format!("{project}-gitea-3"), format!("{project}-gitea-2")])
    );
    let one = compose_containers(docker, &project, "gitea").await;
    assert_eq!(one.len(), 1, "{one:#?}");
    assert_eq!(one[0].0, env.stack.container("gitea"));
    assert!(one[0].2, "gitea-1 still runs");
    wait_service(&env.op, "gitea", "with 1 container", |o| {
        o.containers.len() == 1
    })
    .await;

    drop(env);
    release(engine).await;
}
