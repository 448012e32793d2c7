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
