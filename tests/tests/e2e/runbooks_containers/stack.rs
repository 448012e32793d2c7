//! Stack steps restarting a project in dependency order, and wait-healthy
//! timing out on a stopped service.

use super::*;

const STACK_RESTART: &str = r#"
name: stack-restart
title: Restart a compose project
params:
  - name: project
    type: text
    pattern: "[a-z0-9-]+"
steps:
  - name: restart
    kind: stack
    project: "{{params.project}}"
    action: restart
    timeout: 2m
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_step_restarts_the_project_in_dependency_order() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-stack", MOSAIC).await;
    let docker = env.stack.docker();
    let project = env.stack.project.clone();
    let rb = create(&env.admin, STACK_RESTART).await;
    let t0 = Utc::now();
    let run = start(&env.op, rb.id, json!({"project": project})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;
    let s = step(&done, "restart");
    assert_eq!(s.result["steps"], 2 * MOSAIC.len(), "{:?}", s.result);
    let action_id = s.result["action_id"].as_i64().expect("action_id");

    // The action record: every service stopped, then every one started.
    let activity: Vec<ActionRecord> = env
        .op
        .json(&format!("/api/v1/stacks/{project}/activity"))
        .await;
    let record = activity
        .iter()
        .find(|r| r.id == action_id)
        .unwrap_or_else(|| panic!("action {action_id} in {activity:#?}"));
    assert_eq!(record.kind, "stack.restart");
    assert_eq!(record.actor, "operator-user");
    assert!(record.steps.iter().all(|s| s.ok), "{record:#?}");
    let order = |action: &str| -> Vec<String> {
        record
            .steps
            .iter()
            .filter(|s| s.action == action)
            .filter_map(|s| s.service.clone())
            .collect()
    };
    let (stops, starts) = (order("stop"), order("start"));
    assert_eq!(stops.len(), MOSAIC.len(), "{stops:?}");
    assert_eq!(starts.len(), MOSAIC.len(), "{starts:?}");
    let last_stop = record.steps.iter().rposition(|s| s.action == "stop");
    let first_start = record.steps.iter().position(|s| s.action == "start");
    assert!(last_stop < first_start, "all stops come first: {record:#?}");
    let pos = |list: &[String], n: &str| list.iter().position(|s| s == n).unwrap_or(usize::MAX);

    // The engine's StartedAt agrees with the order.
    let mut started = HashMap::new();
    for s in MOSAIC {
        let at = started_at(docker, &env.stack.container(s.name)).await;
        assert!(at > t0, "{} was started again: {at} vs {t0}", s.name);
        started.insert(s.name, at);
    }
    for s in MOSAIC {
        for dep in s.requires {
            assert!(
                pos(&stops, s.name) < pos(&stops, dep),
                "{} stops before its dependency {dep}: {stops:?}",
                s.name
            );
            assert!(
                pos(&starts, dep) < pos(&starts, s.name),
                "{dep} starts before {}: {starts:?}",
                s.name
            );
            assert!(
                started[dep] < started[s.name],
                "engine StartedAt: {dep} {} < {} {}",
                started[dep],
                s.name,
                started[s.name]
            );
        }
    }
    env.stack
        .wait_healthy(WAIT)
        .await
        .expect("the stack answers again");
    let audit: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT actor, target FROM audit_log WHERE action = 'stack.restart'")
            .fetch_all(&env.server.pool)
            .await
            .unwrap();
    assert_eq!(
        audit,
        vec![("operator-user".to_owned(), Some(format!("stack:{project}")))]
    );

    drop(env);
    release(engine).await;
}

const WAIT_HEALTHY: &str = r#"
name: wait-for-it
title: Wait for a stopped service
params:
  - name: service
    type: service
steps:
  - name: first_wait
    kind: wait_healthy
    service: "{{params.service}}"
    timeout: 3s
    on_failure: continue
  - name: carry_on
    kind: notify
    message: "carrying on after {{params.service}}"
  - name: second_wait
    kind: wait_healthy
    service: "{{params.service}}"
    timeout: 2s
  - name: never
    kind: sleep
    duration: 10ms
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_healthy_times_out_on_a_stopped_service() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-wait", FORGE).await;
    let name = env.stack.container("gitea");
    stop(env.stack.docker(), &name).await;
    wait_service(&env.op, "gitea", "stopped", |o| {
        o.run_state == RunState::Stopped
    })
    .await;
    let rb = create(&env.admin, WAIT_HEALTHY).await;
    let run = start(&env.op, rb.id, json!({"service": "gitea"})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Failed).await;

    let first = step(&done, "first_wait");
    assert_eq!(first.status, StepStatus::Failed);
    assert_eq!(first.error.as_deref(), Some("timed out after 3s"));
    assert!(
        first.output.contains(&format!("{name} exited")),
        "{}",
        first.output
    );
    let took = first.finished_at.unwrap() - first.started_at.unwrap();
    assert!(
        (2_900..15_000).contains(&took.num_milliseconds()),
        "the step's own timeout: {took}"
    );
    // on_failure: continue — the next step still ran.
    let carry = step(&done, "carry_on");
    assert_eq!(carry.status, StepStatus::Succeeded);
    assert!(
        carry.output.contains("carrying on after gitea"),
        "{}",
        carry.output
    );
    assert!(done.timeline.iter().any(|e| e.kind == "step.continue"));
    // The default (stop): the run fails there.
    let second = step(&done, "second_wait");
    assert_eq!(second.status, StepStatus::Failed);
    assert_eq!(second.error.as_deref(), Some("timed out after 2s"));
    assert_eq!(step(&done, "never").status, StepStatus::Skipped);
    assert!(
        done.error.as_deref().unwrap_or("").contains("timed out"),
        "{:?}",
        done.error
    );
    assert!(
        !is_running(env.stack.docker(), &name).await,
        "waiting started nothing"
    );

    drop(env);
    release(engine).await;
}
