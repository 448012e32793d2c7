//! Stopping a critical service parks for approval; cancel withdraws it.

use super::*;

const STOP: &str = r#"
name: stop-service
title: Stop a service
target_param: service
params:
  - name: service
    type: service
steps:
  - name: stop
    kind: container
    service: "{{params.service}}"
    action: stop
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_a_critical_service_parks_for_approval_and_cancel_withdraws_it() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-critical", VAULT).await;
    let name = env.stack.container("mariadb");
    let o = service(&env.op, "mariadb").await.expect("mariadb");
    assert_eq!(o.service.tier, opsdeck_wire::Tier::Critical);
    let rb = create(&env.admin, STOP).await;
    let run = start(&env.op, rb.id, json!({"service": "mariadb"})).await;

    let ap = pending_approval(&env.op, run.summary.id).await;
    assert_eq!(ap.step, Some(0));
    assert!(
        ap.subject
            .contains("stop the containers of service mariadb"),
        "{}",
        ap.subject
    );
    assert!(!ap.can_vote, "the requester cannot approve");
    let waiting = wait_status(&env.op, run.summary.id, RunStatus::Waiting).await;
    assert_eq!(waiting.steps[0].status, StepStatus::Waiting);
    assert!(
        waiting
            .timeline
            .iter()
            .any(|e| e.kind == "approval.requested"),
        "{:?}",
        waiting.timeline
    );
    // Parked, the container was not touched.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(is_running(env.stack.docker(), &name).await);

    let _: Run = ok_json(
        env.op
            .post(
                &format!("/api/v1/runs/{}/cancel", run.summary.id),
                &json!({}),
            )
            .await,
        "cancel",
    )
    .await;
    let cancelled = wait_status(&env.op, run.summary.id, RunStatus::Cancelled).await;
    assert_eq!(cancelled.steps[0].status, StepStatus::Cancelled);
    let a = cancelled
        .approvals
        .iter()
        .find(|a| a.id == ap.id)
        .expect("the approval is still listed");
    assert_eq!(a.status, ApprovalStatus::Withdrawn);
    let count: opsdeck_wire::ApprovalCount = env.admin.json("/api/v1/approvals/count").await;
    assert_eq!(count.pending, 0, "nothing left to vote on");
    assert!(is_running(env.stack.docker(), &name).await, "still running");
    let actions: i64 = sqlx::query_scalar("SELECT count(*) FROM container_actions")
        .fetch_one(&env.server.pool)
        .await
        .unwrap();
    assert_eq!(actions, 0, "no action was attempted");

    drop(env);
    release(engine).await;
}

/// Issue 25's "gates that look at state": the built-in service-down runbook
/// on a critical service parks at its restart while the service runs, and
/// brings it back alone, without a second person, once it is down; the run's
/// timeline says why no approval was asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_down_critical_service_is_brought_back_without_approval_a_running_one_stays_gated() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-gate", VAULT).await;
    let op = &env.op;
    let docker = env.stack.docker();
    let name = env.stack.container("mariadb");
    let o = service(op, "mariadb").await.expect("mariadb");
    assert_eq!(o.service.tier, opsdeck_wire::Tier::Critical);
    let containers = add_check(op, o.service.id, "containers", json!({"kind": "container"})).await;
    check_until(op, containers.id, CheckStatus::Ok).await;
    let list: Vec<RunbookSummary> = op.json("/api/v1/runbooks").await;
    let down = list
        .iter()
        .find(|r| r.name == "service-down" && r.builtin)
        .expect("the built-in service-down runbook");
    let restart_idx = 2;

    // Running: the restart step waits for a second person.
    let before = started_at(docker, &name).await;
    let run = start(op, down.id, json!({"service": "mariadb"})).await;
    let ap = pending_approval(op, run.summary.id).await;
    assert_eq!(ap.step, Some(restart_idx));
    assert!(ap.subject.contains("restart"), "{}", ap.subject);
    let _: Run = ok_json(
        op.post(
            &format!("/api/v1/runs/{}/cancel", run.summary.id),
            &json!({}),
        )
        .await,
        "cancel",
    )
    .await;
    let cancelled = wait_status(op, run.summary.id, RunStatus::Cancelled).await;
    assert!(
        !cancelled
            .timeline
            .iter()
            .any(|e| e.kind == "approval.waived"),
        "{:?}",
        cancelled.timeline
    );
    assert_eq!(started_at(docker, &name).await, before, "not restarted");

    // Down behind Opsdeck's back: the dry run and the run skip the gate.
    stop(docker, &name).await;
    wait_service(op, "mariadb", "stopped", |o| {
        o.run_state == RunState::Stopped
    })
    .await;
    let plan: opsdeck_wire::DryRun = ok_json(
        op.post(
            &format!("/api/v1/runbooks/{}/dry-run", down.id),
            &json!({"params": {"service": "mariadb"}}),
        )
        .await,
        "dry run",
    )
    .await;
    let planned = &plan.steps[restart_idx as usize];
    assert!(!planned.needs_approval, "{planned:?}");
    assert!(
        planned.description.contains("service mariadb is down"),
        "{}",
        planned.description
    );

    let run = start(op, down.id, json!({"service": "mariadb"})).await;
    let done = wait_succeeded(op, run.summary.id).await;
    assert!(done.approvals.is_empty(), "{:?}", done.approvals);
    let waived: Vec<_> = done
        .timeline
        .iter()
        .filter(|e| e.kind == "approval.waived")
        .collect();
    assert_eq!(waived.len(), 1, "{:?}", done.timeline);
    assert_eq!(waived[0].step, Some(restart_idx));
    assert!(
        waived[0]
            .message
            .contains(&format!("service mariadb is down ({name} exited)")),
        "{}",
        waived[0].message
    );
    assert!(is_running(docker, &name).await, "brought back");
    // The restart went through the action path as the operator.
    let restarts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM container_actions WHERE kind = 'container.restart'
           AND target = 'mariadb' AND actor = 'operator-user' AND outcome = 'succeeded'",
    )
    .fetch_one(&env.server.pool)
    .await
    .unwrap();
    assert_eq!(restarts, 1);

    drop(env);
    release(engine).await;
}
