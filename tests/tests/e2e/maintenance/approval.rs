//! The `maintenance.enable` approval policy gating maintenance.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approval_policy_gates_maintenance() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let requester = server.user(Role::Operator).await;
    server.create_user("second", Role::Operator).await;
    let second = server.login("second").await;
    for name in ["ledger", "search"] {
        service(&admin, json!({"name": name, "tier": "critical"})).await;
    }
    wait_board(&requester, "ledger and search on the board", |b| {
        listed(b, &["ledger", "search"])
    })
    .await;
    let policy = json!({"required": 1, "roles": ["operator", "admin"], "expires": "1h"});
    expect_error(
        requester
            .send(
                reqwest::Method::PUT,
                "/api/v1/approval-policies/maintenance.enable",
                &policy,
            )
            .await,
        403,
    )
    .await;
    let res = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/approval-policies/maintenance.enable",
            &policy,
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );

    // Requested, waiting for a vote: not in effect yet.
    let (status, p) = start(
        &requester,
        services_scope(&["ledger"]),
        "Reindexing",
        in_minutes(60),
    )
    .await;
    assert_eq!(status, 202);
    let run = p.enable_run_id.expect("the enable run");
    let ap = pending_approval(&requester, run).await;
    let d = detail(&requester, p.id).await;
    assert_eq!(d.period.status, PeriodStatus::Requested, "{}", describe(&d));
    let b = board(&requester).await;
    assert!(on_board(&b, "ledger").maintenance.is_none());
    assert!(b.maintenance.is_empty(), "requested is not in effect");
    // Not by the requester; by a second operator.
    let vote = json!({"binding": ap.binding, "reason": "planned"});
    let msg = expect_error(
        requester
            .post(&format!("/api/v1/approvals/{}/approve", ap.id), &vote)
            .await,
        403,
    )
    .await;
    assert!(msg.contains("someone else"), "{msg}");
    let _: Approval = ok_json(
        second
            .post(&format!("/api/v1/approvals/{}/approve", ap.id), &vote)
            .await,
        "approve",
    )
    .await;
    wait_period(&requester, p.id, PeriodStatus::Active).await;
    wait_board(&requester, "ledger in maintenance", |b| {
        listed(b, &["ledger"]) && on_board(b, "ledger").health == ServiceHealth::Maintenance
    })
    .await;
    // The policy is on enable only: ending needs no vote.
    end(&requester, p.id, "").await;
    wait_period(&requester, p.id, PeriodStatus::Ended).await;

    // Denied: the period never starts.
    let (_, q) = start(
        &requester,
        services_scope(&["search"]),
        "Reindexing search",
        in_minutes(60),
    )
    .await;
    let ap = pending_approval(&requester, q.enable_run_id.expect("the enable run")).await;
    let _: Approval = ok_json(
        second
            .post(
                &format!("/api/v1/approvals/{}/deny", ap.id),
                &json!({"binding": ap.binding, "reason": "not during the sale"}),
            )
            .await,
        "deny",
    )
    .await;
    let cancelled = wait_period(&requester, q.id, PeriodStatus::Cancelled).await;
    assert!(cancelled.period.enabled_at.is_none());
    let b = board(&requester).await;
    assert!(on_board(&b, "search").maintenance.is_none());
    assert!(b.maintenance.is_empty());

    // A requested period ended by hand is cancelled too.
    let (_, r) = start(
        &requester,
        services_scope(&["search"]),
        "Try again",
        in_minutes(60),
    )
    .await;
    pending_approval(&requester, r.enable_run_id.expect("the enable run")).await;
    end(&requester, r.id, "not needed").await;
    wait_period(&requester, r.id, PeriodStatus::Cancelled).await;
}
