//! Container steps restarting a service: through the action path as the
//! requester, and the service-down runbook bringing a stopped service back.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_container_step_restarts_through_the_action_path_as_the_requester() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-restart", FORGE).await;
    let name = env.stack.container("gitea");
    let docker = env.stack.docker();
    let before = started_at(docker, &name).await;
    let rb = create(&env.admin, RESTART).await;
    let run = start(&env.op, rb.id, json!({"service": "gitea"})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;

    // The engine restarted the container.
    let after = started_at(docker, &name).await;
    assert!(after > before, "StartedAt moved: {before} → {after}");
    assert!(is_running(docker, &name).await);
    let s = step(&done, "restart");
    assert_eq!(s.status, StepStatus::Succeeded);
    assert!(
        s.output.contains(&format!("restart {name}: ok")),
        "the output names the container: {:?}",
        s.output
    );
    assert_eq!(s.result["containers"], json!([name]));

    // The panel's one action path: its row and its audit entry, both with
    // the run's requester as actor.
    let action_id = s.result["action_id"].as_i64().expect("action_id");
    let (kind, target, actor, outcome, steps): (String, String, String, String, Value) =
        sqlx::query_as(
            "SELECT kind, target, actor, outcome, steps FROM container_actions WHERE id = $1",
        )
        .bind(action_id)
        .fetch_one(&env.server.pool)
        .await
        .expect("the container_actions row");
    assert_eq!(
        (
            kind.as_str(),
            target.as_str(),
            actor.as_str(),
            outcome.as_str()
        ),
        ("container.restart", "gitea", "operator-user", "succeeded")
    );
    assert_eq!(steps[0]["container"], json!(name), "{steps}");
    let audit: Vec<(String, String, Option<String>, String)> = sqlx::query_as(
        "SELECT actor, actor_kind, target, outcome FROM audit_log WHERE action = 'container.restart'",
    )
    .fetch_all(&env.server.pool)
    .await
    .unwrap();
    assert_eq!(
        audit,
        vec![(
            "operator-user".to_owned(),
            "user".to_owned(),
            Some("service:gitea".to_owned()),
            "success".to_owned()
        )]
    );
    let step_audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'run.step.container' AND actor = 'operator-user'",
    )
    .fetch_one(&env.server.pool)
    .await
    .unwrap();
    assert_eq!(step_audit, 1);
    // It is in the service's activity list like any restart.
    let svc = service(&env.op, "gitea").await.expect("gitea");
    let activity: Vec<ActionRecord> = env
        .op
        .json(&format!("/api/v1/services/{}/activity", svc.service.id))
        .await;
    assert_eq!(activity.first().map(|r| r.id), Some(action_id));

    drop(env);
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_down_runbook_brings_a_stopped_service_back() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-down", MOSAIC).await;
    let op = &env.op;
    let name = env.stack.container("gitea");
    let docker = env.stack.docker();
    let gitea = service(op, "gitea").await.expect("gitea").service.id;
    // Its health checks: the container runs, and its /healthz answers.
    let containers = add_check(op, gitea, "containers", json!({"kind": "container"})).await;
    let healthz = add_check(
        op,
        gitea,
        "healthz",
        json!({"kind": "http", "url": env.stack.health_url("gitea")}),
    )
    .await;
    check_until(op, containers.id, CheckStatus::Ok).await;
    check_until(op, healthz.id, CheckStatus::Ok).await;

    // gitea goes down behind Opsdeck's back; the board sees it.
    stop(docker, &name).await;
    check_until(op, containers.id, CheckStatus::Critical).await;
    check_until(op, healthz.id, CheckStatus::Critical).await;
    poll(WAIT, "gitea down on the board", async || {
        let b: StatusBoard = op.json("/api/v1/status").await;
        let h = b
            .services
            .iter()
            .find(|s| s.name == "gitea")
            .map(|s| s.health);
        (h == Some(ServiceHealth::Down))
            .then_some(())
            .ok_or(format!("{h:?}"))
    })
    .await;

    let list: Vec<RunbookSummary> = op.json("/api/v1/runbooks").await;
    let down = list
        .iter()
        .find(|r| r.name == "service-down" && r.builtin)
        .expect("the built-in service-down runbook");
    let run = start(op, down.id, json!({"service": "gitea"})).await;
    let done = wait_succeeded(op, run.summary.id).await;

    let status = step(&done, "status");
    assert_eq!(status.result["health"], "down", "{:?}", status.result);
    assert!(status.output.contains("gitea: down"), "{}", status.output);
    let logs = step(&done, "logs");
    assert!(
        logs.result["lines"].as_u64().unwrap_or(0) > 0,
        "{:?}",
        logs.result
    );
    assert!(logs.output.contains("gitea starting"), "{}", logs.output);
    assert!(
        logs.output.contains(&format!("── {name} (exited) ──")),
        "{}",
        logs.output
    );
    let restart = step(&done, "restart");
    assert_eq!(restart.result["containers"], json!([name]));
    let waited = step(&done, "wait_healthy");
    assert_eq!(waited.status, StepStatus::Succeeded);
    assert!(
        waited
            .output
            .contains(&format!("{name} running; checks 2 ok")),
        "wait_healthy saw the container running and both checks pass: {}",
        waited.output
    );
    let verify = step(&done, "verify");
    assert_eq!(verify.result["ok"], 2, "{:?}", verify.result);
    assert_eq!(verify.result["critical"], 0);
    assert_eq!(step(&done, "recovered").status, StepStatus::Succeeded);

    // The engine agrees: the container runs and answers again.
    assert!(is_running(docker, &name).await);
    env.stack
        .wait_healthy(Duration::from_secs(10))
        .await
        .expect("gitea answers /healthz again");
    let o = wait_service(op, "gitea", "running", |o| o.run_state == RunState::Running).await;
    assert_eq!(o.containers[0].name, name);

    drop(env);
    release(engine).await;
}
