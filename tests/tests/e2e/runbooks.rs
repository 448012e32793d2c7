//! Runbooks end to end through the API: definitions and versions, runs
//! through the engine (sleep, notify, manual, http, checks, failure
//! policies, rollback, child runbooks), cancel, resume, re-run, dry runs,
//! approvals (self-approval, roles, binding, expiry, deny) and typed
//! parameters refusing injection attempts.

use std::time::Duration;

use opsdeck_e2e::flows::runbooks::{create, pending_approval, start, wait_run, wait_status};
use opsdeck_e2e::server::TestServer;
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::util::{expect_error, ok_json};
use opsdeck_wire::{Approval, DryRun, Role, Run, RunStatus, Runbook, RunbookSummary, StepStatus};
use serde_json::json;

const BASIC: &str = r#"
name: basic
title: Basic runbook
params:
  - name: who
    type: text
    pattern: "[a-z]+"
steps:
  - name: nap
    kind: sleep
    duration: 200ms
  - name: tell
    kind: notify
    message: "hello {{params.who}}"
  - name: tick
    kind: manual
    instructions: "Review Grafana for overnight anomalies"
  - name: last
    kind: sleep
    duration: 10ms
"#;

#[tokio::test]
async fn a_run_goes_through_its_steps_and_waits_for_a_manual_tick() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let rb = create(&admin, BASIC).await;
    assert_eq!(rb.version, 1);
    let run = start(&admin, rb.id, json!({"who": "team"})).await;
    assert_eq!(run.summary.total_steps, 4);
    let waiting = wait_status(&admin, run.summary.id, RunStatus::Waiting).await;
    assert_eq!(waiting.steps[0].status, StepStatus::Succeeded);
    assert_eq!(waiting.steps[1].status, StepStatus::Succeeded);
    assert!(
        waiting.steps[1].output.contains("hello team"),
        "{}",
        waiting.steps[1].output
    );
    assert_eq!(waiting.steps[2].status, StepStatus::Waiting);
    // Ticking a step that is not waiting is refused.
    expect_error(
        admin
            .post(
                &format!("/api/v1/runs/{}/steps/3/complete", run.summary.id),
                &json!({}),
            )
            .await,
        409,
    )
    .await;
    let _: Run = ok_json(
        admin
            .post(
                &format!("/api/v1/runs/{}/steps/2/complete", run.summary.id),
                &json!({"note": "all quiet"}),
            )
            .await,
        "tick",
    )
    .await;
    let done = wait_status(&admin, run.summary.id, RunStatus::Succeeded).await;
    assert_eq!(done.steps[2].note.as_deref(), Some("all quiet"));
    assert!(done.steps.iter().all(|s| s.status == StepStatus::Succeeded));
    let kinds: Vec<&str> = done.timeline.iter().map(|e| e.kind.as_str()).collect();
    for k in [
        "run.queued",
        "step.started",
        "notification",
        "step.waiting",
        "step.ticked",
        "run.succeeded",
    ] {
        assert!(kinds.contains(&k), "timeline lacks {k}: {kinds:?}");
    }
    // The steps and the outcome are in the audit log, and no request went unaudited.
    let actions: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY seq")
        .fetch_all(&s.pool)
        .await
        .unwrap();
    for a in [
        "runbook.create",
        "run.start",
        "run.step.complete",
        "run.succeeded",
    ] {
        assert!(
            actions.iter().any(|x| x == a),
            "audit lacks {a}: {actions:?}"
        );
    }
    // Steps that only wait or report are on the timeline, not in the audit log.
    assert!(
        !actions.iter().any(|x| x == "run.step.sleep"),
        "{actions:?}"
    );
    assert!(
        !actions.iter().any(|x| x == "request.unaudited"),
        "{actions:?}"
    );
    // The list shows it as the last run.
    let list: Vec<RunbookSummary> = admin.json("/api/v1/runbooks").await;
    let basic = list.iter().find(|r| r.name == "basic").expect("listed");
    assert_eq!(basic.last_run.as_ref().map(|r| r.id), Some(run.summary.id));
    assert!(
        list.iter()
            .any(|r| r.name == "service-down" && r.params.len() == 1),
        "built-ins are seeded"
    );
}

#[tokio::test]
async fn parameters_are_typed_and_injection_attempts_are_invalid() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let rb = create(&admin, BASIC).await;
    for evil in [
        "; rm -rf /",
        "$(id)",
        "'; DROP TABLE users; --",
        "../../etc/passwd",
    ] {
        let msg = expect_error(
            admin
                .post(
                    &format!("/api/v1/runbooks/{}/runs", rb.id),
                    &json!({"params": {"who": evil}}),
                )
                .await,
            400,
        )
        .await;
        assert!(msg.contains("who: must match"), "{evil}: {msg}");
    }
    let msg = expect_error(
        admin
            .post(
                &format!("/api/v1/runbooks/{}/runs", rb.id),
                &json!({"params": {"who": "ok", "extra": 1}}),
            )
            .await,
        400,
    )
    .await;
    assert!(msg.contains("extra: no such parameter"), "{msg}");
    // The built-in service-down runbook takes a service: names not in the
    // inventory are refused, whatever they contain.
    let list: Vec<RunbookSummary> = admin.json("/api/v1/runbooks").await;
    let down = list.iter().find(|r| r.name == "service-down").unwrap();
    for evil in ["api; rm -rf /", "$(id)", "../../etc/passwd"] {
        let msg = expect_error(
            admin
                .post(
                    &format!("/api/v1/runbooks/{}/runs", down.id),
                    &json!({"params": {"service": evil}}),
                )
                .await,
            400,
        )
        .await;
        assert!(msg.contains("service:"), "{evil}: {msg}");
    }
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(runs, 0, "nothing was queued");
}

#[tokio::test]
async fn definitions_are_validated_versioned_and_exported() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let msg = expect_error(
        admin
            .post("/api/v1/runbooks", &json!({"yaml": "name: x\ntitle: X\nsteps:\n  - name: a\n    kind: container\n    service: api\n    action: \"rm -rf\"\n"}))
            .await,
        400,
    )
    .await;
    assert!(
        msg.contains("steps[0] (a)") && msg.contains("action"),
        "{msg}"
    );
    expect_error(
        admin
            .post("/api/v1/runbooks", &json!({"yaml": "name: [unclosed"}))
            .await,
        400,
    )
    .await;
    let rb = create(&admin, BASIC).await;
    expect_error(
        admin
            .post("/api/v1/runbooks", &json!({"yaml": BASIC}))
            .await,
        409,
    )
    .await;
    expect_error(
        operator
            .post("/api/v1/runbooks", &json!({"yaml": BASIC}))
            .await,
        403,
    )
    .await;
    let v2 = BASIC.replace(
        "title: Basic runbook",
        "title: Basic runbook, second edition",
    );
    let updated: Runbook = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/runbooks/{}", rb.id),
                &json!({"yaml": v2}),
            )
            .await,
        "update",
    )
    .await;
    assert_eq!(updated.version, 2);
    let versions: Vec<opsdeck_wire::RunbookVersion> = admin
        .json(&format!("/api/v1/runbooks/{}/versions", rb.id))
        .await;
    assert_eq!(
        versions.iter().map(|v| v.version).collect::<Vec<_>>(),
        vec![2, 1]
    );
    let yaml = admin
        .get(&format!("/api/v1/runbooks/{}/export?version=1", rb.id))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(yaml, BASIC, "export gives the YAML as written");
    // A run records the version it ran.
    let run = start(&operator, rb.id, json!({"who": "x"})).await;
    assert_eq!(run.summary.version, 2);
    // A runbook with runs keeps its history.
    expect_error(
        admin.delete(&format!("/api/v1/runbooks/{}", rb.id)).await,
        409,
    )
    .await;
}

const FAILING: &str = r#"
name: failing
title: Fails in the middle
params:
  - name: url
    type: text
steps:
  - name: first
    kind: sleep
    duration: 10ms
  - name: probe
    kind: http
    url: "{{params.url}}"
    timeout: 5s
    on_failure: rollback
  - name: never
    kind: sleep
    duration: 10ms
rollback:
  - name: undo
    kind: notify
    message: "rolling back after {{params.url}}"
"#;

#[tokio::test]
async fn a_failed_step_rolls_back_and_the_run_resumes_from_it() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let target = Target::start(Behaviour::Status(500));
    let rb = create(&admin, FAILING).await;
    let run = start(&admin, rb.id, json!({"url": target.url()})).await;
    let failed = wait_status(&admin, run.summary.id, RunStatus::Failed).await;
    assert_eq!(failed.steps[1].status, StepStatus::Failed);
    assert!(
        failed.steps[1]
            .error
            .as_deref()
            .unwrap_or("")
            .contains("500"),
        "{:?}",
        failed.steps[1].error
    );
    assert_eq!(
        failed.steps[2].status,
        StepStatus::Skipped,
        "nothing after a failure runs"
    );
    let undo = failed
        .steps
        .iter()
        .find(|s| s.name == "undo")
        .expect("rollback step recorded");
    assert_eq!(
        (undo.phase.as_str(), undo.status),
        ("rollback", StepStatus::Succeeded)
    );
    // Resume once the target is fixed: continues from the failed step.
    target.set(Behaviour::Ok("fine".into()));
    let _: Run = ok_json(
        admin
            .post(
                &format!("/api/v1/runs/{}/resume", run.summary.id),
                &json!({}),
            )
            .await,
        "resume",
    )
    .await;
    let done = wait_status(&admin, run.summary.id, RunStatus::Succeeded).await;
    assert_eq!(done.steps[0].status, StepStatus::Succeeded);
    assert_eq!(done.steps[1].status, StepStatus::Succeeded);
    assert_eq!(done.steps[2].status, StepStatus::Succeeded);
    // Re-run with the same parameters: a new run.
    let again: Run = ok_json(
        admin
            .post(
                &format!("/api/v1/runs/{}/rerun", run.summary.id),
                &json!({}),
            )
            .await,
        "rerun",
    )
    .await;
    assert_ne!(again.summary.id, run.summary.id);
    assert_eq!(again.params, done.params);
    wait_status(&admin, again.summary.id, RunStatus::Succeeded).await;
}

const SLOW: &str = r#"
name: slow
title: One at a time
target_param: who
params:
  - name: who
    type: choice
    options: [a, b]
steps:
  - name: wait
    kind: sleep
    duration: 30s
"#;

#[tokio::test]
async fn one_run_per_target_and_cancel_stops_a_running_step() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let rb = create(&admin, SLOW).await;
    let a = start(&admin, rb.id, json!({"who": "a"})).await;
    let msg = expect_error(
        admin
            .post(
                &format!("/api/v1/runbooks/{}/runs", rb.id),
                &json!({"params": {"who": "a"}}),
            )
            .await,
        409,
    )
    .await;
    assert!(msg.contains(&format!("run #{}", a.summary.id)), "{msg}");
    let b = start(&admin, rb.id, json!({"who": "b"})).await;
    wait_run(&admin, a.summary.id, "a running", |r| {
        r.steps[0].status == StepStatus::Running
    })
    .await;
    let _: Run = ok_json(
        admin
            .post(&format!("/api/v1/runs/{}/cancel", a.summary.id), &json!({}))
            .await,
        "cancel",
    )
    .await;
    let cancelled = wait_status(&admin, a.summary.id, RunStatus::Cancelled).await;
    assert_eq!(cancelled.steps[0].status, StepStatus::Cancelled);
    expect_error(
        admin
            .post(&format!("/api/v1/runs/{}/cancel", a.summary.id), &json!({}))
            .await,
        409,
    )
    .await;
    let _: Run = ok_json(
        admin
            .post(&format!("/api/v1/runs/{}/cancel", b.summary.id), &json!({}))
            .await,
        "cancel b",
    )
    .await;
    wait_status(&admin, b.summary.id, RunStatus::Cancelled).await;
    // The target is free again.
    start(&admin, rb.id, json!({"who": "a"})).await;
}

const GATED: &str = r#"
name: gated
title: Needs two approvals
target_param: n
params:
  - name: n
    type: integer
    min: 1
    max: 9
approval:
  required: 2
  roles: [operator, admin]
  expires: 1h
steps:
  - name: go
    kind: sleep
    duration: 10ms
"#;

#[tokio::test]
async fn approvals_are_four_eyes_bound_to_parameters_and_deny_stops_the_run() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let requester = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    s.create_user("third", Role::Admin).await;
    let third = s.login("third").await;
    let viewer = s.user(Role::Viewer).await;
    let rb = create(&admin, GATED).await;
    let run = start(&requester, rb.id, json!({"n": 1})).await;
    let ap = pending_approval(&requester, run.summary.id).await;
    assert_eq!(ap.required, 2);
    assert!(!ap.can_vote, "the requester cannot vote");
    let vote = |binding: &str| json!({"binding": binding, "reason": "looks right"});
    // Self-approval refused.
    let msg = expect_error(
        requester
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &vote(&ap.binding),
            )
            .await,
        403,
    )
    .await;
    assert!(msg.contains("someone else"), "{msg}");
    // Viewers never approve.
    expect_error(
        viewer
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &vote(&ap.binding),
            )
            .await,
        403,
    )
    .await;
    // A binding for other parameters is refused.
    let other = start(&requester, rb.id, json!({"n": 2})).await;
    let other_ap = pending_approval(&requester, other.summary.id).await;
    assert_ne!(
        other_ap.binding, ap.binding,
        "different parameters, different binding"
    );
    let msg = expect_error(
        second
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &vote(&other_ap.binding),
            )
            .await,
        409,
    )
    .await;
    assert!(msg.contains("not what you reviewed"), "{msg}");
    // One approval of two: still waiting; voting twice is refused.
    let a1: Approval = ok_json(
        second
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &vote(&ap.binding),
            )
            .await,
        "approve 1",
    )
    .await;
    assert_eq!(a1.votes.len(), 1);
    expect_error(
        second
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &vote(&ap.binding),
            )
            .await,
        409,
    )
    .await;
    let count: opsdeck_wire::ApprovalCount = third.json("/api/v1/approvals/count").await;
    assert_eq!(count.pending, 2, "third can vote on both requests");
    let r: Run = requester
        .json(&format!("/api/v1/runs/{}", run.summary.id))
        .await;
    assert_eq!(r.summary.status, RunStatus::Waiting);
    // The second approval lets it run.
    let _: Approval = ok_json(
        third
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &vote(&ap.binding),
            )
            .await,
        "approve 2",
    )
    .await;
    let done = wait_status(&requester, run.summary.id, RunStatus::Succeeded).await;
    assert!(done.timeline.iter().any(|e| e.kind == "approval.approved"));
    // Deny needs a reason, then stops the other run.
    expect_error(
        third
            .post(
                &format!("/api/v1/approvals/{}/deny", other_ap.id),
                &json!({"binding": other_ap.binding}),
            )
            .await,
        400,
    )
    .await;
    let _: Approval = ok_json(
        third
            .post(
                &format!("/api/v1/approvals/{}/deny", other_ap.id),
                &json!({"binding": other_ap.binding, "reason": "not tonight"}),
            )
            .await,
        "deny",
    )
    .await;
    let denied = wait_status(&requester, other.summary.id, RunStatus::Failed).await;
    assert!(
        denied
            .error
            .as_deref()
            .unwrap_or("")
            .contains("not tonight"),
        "{:?}",
        denied.error
    );
    assert_eq!(denied.steps[0].status, StepStatus::Skipped, "no step ran");
    let audit: Vec<String> =
        sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'approval.%'")
            .fetch_all(&s.pool)
            .await
            .unwrap();
    assert_eq!(
        audit.iter().filter(|a| *a == "approval.approve").count(),
        2,
        "{audit:?}"
    );
    assert_eq!(
        audit.iter().filter(|a| *a == "approval.deny").count(),
        1,
        "{audit:?}"
    );
}

#[tokio::test]
async fn an_expired_approval_is_refused_and_fails_the_run() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let requester = s.user(Role::Operator).await;
    let rb = create(&admin, GATED).await;
    let run = start(&requester, rb.id, json!({"n": 3})).await;
    let ap = pending_approval(&requester, run.summary.id).await;
    sqlx::query("UPDATE approvals SET expires_at = now() - interval '1 second' WHERE id = $1")
        .bind(ap.id)
        .execute(&s.pool)
        .await
        .unwrap();
    let msg = expect_error(
        admin
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &json!({"binding": ap.binding}),
            )
            .await,
        409,
    )
    .await;
    assert!(msg.contains("expired"), "{msg}");
    let failed = wait_status(&requester, run.summary.id, RunStatus::Failed).await;
    assert!(
        failed.error.as_deref().unwrap_or("").contains("expired"),
        "{:?}",
        failed.error
    );
}

#[tokio::test]
async fn a_dry_run_shows_each_step_and_changes_nothing() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let rb = create(&admin, FAILING).await;
    let plan: DryRun = ok_json(
        admin
            .post(
                &format!("/api/v1/runbooks/{}/dry-run", rb.id),
                &json!({"params": {"url": "http://127.0.0.1:9/x"}}),
            )
            .await,
        "dry run",
    )
    .await;
    assert_eq!(plan.steps.len(), 3);
    assert!(
        plan.steps[1]
            .description
            .contains("GET http://127.0.0.1:9/x"),
        "{:?}",
        plan.steps[1]
    );
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(runs, 0);
}

const LONG: &str = r#"
name: long
title: A long middle step
steps:
  - name: before
    kind: sleep
    duration: 10ms
  - name: middle
    kind: sleep
    duration: 6s
  - name: after
    kind: sleep
    duration: 10ms
"#;

/// A real `opsdeck serve` process killed with SIGKILL in the middle of a
/// step: after restart the run is `interrupted` (the lease ran out), the
/// finished step stays succeeded, the killed one is interrupted, nothing
/// after it ran; resuming completes it; the audit chain is intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_the_run_interrupted_and_resume_completes_it() {
    use opsdeck_e2e::process::OpsdeckProcess;
    let (url, pool) = opsdeck_e2e::util::process_database().await;
    let env = [("OPSDECK_RUN_LEASE_SECS", "3")];
    let first = OpsdeckProcess::start(&url, &env).await;
    first.wait_ready().await;
    let api = first.login("ops").await;
    let rb = create(&api, LONG).await;
    let run = start(&api, rb.id, json!({})).await;
    let id = run.summary.id;
    wait_run(&api, id, "the middle step running", |r| {
        r.steps[1].status == StepStatus::Running
    })
    .await;
    first.kill().await;
    // Nothing is marked done by the kill itself.
    let status: String = sqlx::query_scalar("SELECT status FROM runs WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        status, "running",
        "the row still says running until the lease runs out"
    );
    let second = OpsdeckProcess::start(&url, &env).await;
    second.wait_ready().await;
    let api = second.login("ops").await;
    let interrupted = wait_status(&api, id, RunStatus::Interrupted).await;
    assert_eq!(interrupted.steps[0].status, StepStatus::Succeeded);
    assert_eq!(interrupted.steps[1].status, StepStatus::Interrupted);
    assert_eq!(
        interrupted.steps[2].status,
        StepStatus::Pending,
        "nothing after the kill ran"
    );
    assert!(interrupted
        .timeline
        .iter()
        .any(|e| e.kind == "run.interrupted"));
    let _: Run = ok_json(
        api.post(&format!("/api/v1/runs/{id}/resume"), &json!({}))
            .await,
        "resume",
    )
    .await;
    let done = wait_status(&api, id, RunStatus::Succeeded).await;
    assert!(
        done.steps.iter().all(|s| s.status == StepStatus::Succeeded),
        "{:?}",
        done.steps
    );
    let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log ORDER BY seq")
        .fetch_all(&pool)
        .await
        .unwrap();
    for a in [
        "run.start",
        "run.interrupted",
        "run.resume",
        "run.succeeded",
    ] {
        assert!(audit.iter().any(|x| x == a), "audit lacks {a}: {audit:?}");
    }
    let report = opsdeck::audit::verify(&pool).await.expect("verify");
    assert!(report.ok, "audit chain intact: {report:?}");
    second.stop().await;
}

/// A lease that runs out (here: forced into the past) turns the run
/// interrupted; the process that held it stops without overwriting that;
/// an operator closes it, after which it cannot be resumed.
#[tokio::test]
async fn a_lost_lease_interrupts_the_run_and_an_operator_closes_it() {
    let s = TestServer::start_with(|c| c.run_lease = Duration::from_secs(3)).await;
    let admin = s.user(Role::Admin).await;
    let rb = create(&admin, LONG).await;
    let run = start(&admin, rb.id, json!({})).await;
    let id = run.summary.id;
    wait_run(&admin, id, "middle running", |r| {
        r.steps[1].status == StepStatus::Running
    })
    .await;
    // As if another process had held it and died: the lease is not ours
    // and has run out.
    sqlx::query(
        "UPDATE runs SET lease_owner = 'a-dead-process', lease_until = now() - interval '1 minute' WHERE id = $1",
    )
        .bind(id)
        .execute(&s.pool)
        .await
        .unwrap();
    let interrupted = wait_status(&admin, id, RunStatus::Interrupted).await;
    assert_eq!(interrupted.steps[1].status, StepStatus::Interrupted);
    // The old holder's sleep ends after 6 s; it must not mark anything done.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let later: Run = admin.json(&format!("/api/v1/runs/{id}")).await;
    assert_eq!(later.summary.status, RunStatus::Interrupted);
    assert_eq!(later.steps[1].status, StepStatus::Interrupted);
    assert_eq!(later.steps[2].status, StepStatus::Pending);
    let closed: Run = ok_json(
        admin
            .post(
                &format!("/api/v1/runs/{id}/close"),
                &json!({"note": "done by hand"}),
            )
            .await,
        "close",
    )
    .await;
    assert!(closed.closed_by.is_some());
    expect_error(
        admin
            .post(&format!("/api/v1/runs/{id}/resume"), &json!({}))
            .await,
        409,
    )
    .await;
    expect_error(
        admin
            .post(&format!("/api/v1/runs/{id}/close"), &json!({}))
            .await,
        409,
    )
    .await;
}

/// Built-ins are seeded once, also by two servers starting at once, and an
/// edited or deleted built-in is never overwritten (only a missing one is
/// added back).
#[tokio::test]
async fn built_in_runbooks_are_seeded_once_and_never_overwritten() {
    use opsdeck::runbooks::builtins;
    let (_database, options) = opsdeck_e2e::pg::fresh_database().await;
    let pool = opsdeck::db::pool(options).await.expect("pool");
    let n = builtins::all().len() as u64;
    assert!(n >= 11, "the handbooks' procedures: {n}");
    let (a, b) = tokio::join!(builtins::seed(&pool), builtins::seed(&pool));
    assert_eq!(a.unwrap() + b.unwrap(), n, "each added exactly once");
    assert_eq!(builtins::seed(&pool).await.unwrap(), 0, "never twice");
    let (versions, builtin): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM runbook_versions), (SELECT count(*) FROM runbooks WHERE builtin)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!((versions as u64, builtin as u64), (n, n));
    sqlx::query("UPDATE runbooks SET current_version = 2 WHERE name = 'service-down'")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("DELETE FROM runbooks WHERE name = 'db-locks-report'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(
        builtins::seed(&pool).await.unwrap(),
        1,
        "only the missing one"
    );
    let v: i32 =
        sqlx::query_scalar("SELECT current_version FROM runbooks WHERE name = 'service-down'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(v, 2, "an edited built-in is left alone");
}
