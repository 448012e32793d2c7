//! A runbook step waiting for its child run and taking its outcome.

use super::*;

const CHILD_OK: &str = r#"
name: bounce
title: Nap, then restart a service
params:
  - name: service
    type: service
steps:
  - name: nap
    kind: sleep
    duration: 2s
  - name: restart
    kind: container
    service: "{{params.service}}"
    action: restart
"#;

const CHILD_BROKEN: &str = r#"
name: broken
title: Always fails
params:
  - name: service
    type: service
steps:
  - name: fail
    kind: exec
    service: "{{params.service}}"
    argv: ["false"]
"#;

const PARENT_OK: &str = r#"
name: outer
title: Runs bounce
params:
  - name: service
    type: service
steps:
  - name: child
    kind: runbook
    runbook: bounce
    params:
      service: "{{params.service}}"
  - name: after
    kind: notify
    message: "child run {{steps.child.run_id}} {{steps.child.status}}"
"#;

const PARENT_BROKEN: &str = r#"
name: outer-broken
title: Runs broken
params:
  - name: service
    type: service
steps:
  - name: child
    kind: runbook
    runbook: broken
    params:
      service: "{{params.service}}"
  - name: after
    kind: sleep
    duration: 10ms
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runbook_step_waits_for_its_child_run_and_takes_its_outcome() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-child", FORGE).await;
    let name = env.stack.container("gitea");
    let docker = env.stack.docker();
    for y in [CHILD_OK, CHILD_BROKEN, PARENT_OK, PARENT_BROKEN] {
        create(&env.admin, y).await;
    }
    let list: Vec<RunbookSummary> = env.op.json("/api/v1/runbooks").await;
    let id = |n: &str| list.iter().find(|r| r.name == n).expect(n).id;
    let before = started_at(docker, &name).await;

    let run = start(&env.op, id("outer"), json!({"service": "gitea"})).await;
    // The parent parks on the child step while the child runs.
    let parked = wait_run(
        &env.op,
        run.summary.id,
        "parent waiting on its child",
        |r| r.summary.status == RunStatus::Waiting && r.steps[0].status == StepStatus::Waiting,
    )
    .await;
    assert!(parked.timeline.iter().any(|e| e.kind == "step.child"));
    let done = wait_status(&env.op, run.summary.id, RunStatus::Succeeded).await;
    let child_id = step(&done, "child").result["run_id"]
        .as_i64()
        .expect("the child's run id");
    let child: Run = env.op.json(&format!("/api/v1/runs/{child_id}")).await;
    assert_eq!(child.summary.status, RunStatus::Succeeded);
    assert_eq!(child.parent_run_id, Some(run.summary.id));
    assert_eq!(child.summary.requested_by, "operator-user");
    assert_eq!(child.params["service"], "gitea");
    let after = step(&done, "after");
    assert!(
        after
            .output
            .contains(&format!("child run {child_id} succeeded")),
        "{}",
        after.output
    );
    assert!(
        after.started_at.unwrap() >= child.summary.finished_at.unwrap(),
        "the parent went on after its child finished"
    );
    assert!(
        started_at(docker, &name).await > before,
        "the child restarted gitea"
    );

    // A failing child fails the parent's step, and the parent stops there.
    let run = start(&env.op, id("outer-broken"), json!({"service": "gitea"})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Failed).await;
    let s = step(&done, "child");
    assert_eq!(s.status, StepStatus::Failed);
    let child_id = s.result["run_id"].as_i64().expect("the child's run id");
    let err = s.error.as_deref().unwrap_or("");
    assert!(
        err.contains(&format!("run #{child_id} failed")) && err.contains("exit code 1"),
        "{err}"
    );
    assert_eq!(step(&done, "after").status, StepStatus::Skipped);
    let child: Run = env.op.json(&format!("/api/v1/runs/{child_id}")).await;
    assert_eq!(child.summary.status, RunStatus::Failed);
    assert_eq!(child.steps[0].error.as_deref(), Some("exit code 1"));

    drop(env);
    release(engine).await;
}
