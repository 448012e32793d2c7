//! Runbook mode: the chosen runbooks run, and the disable one on failure.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runbook_mode_runs_the_chosen_runbooks_and_the_disable_one_on_failure() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let receiver = Receiver::start().await;
    let stack = unique_project("maint-rb");
    for name in ["shop", "shopdb"] {
        service(
            &admin,
            json!({"name": name, "tier": "application",
                   "compose_project": stack, "compose_service": name}),
        )
        .await;
    }
    for (name, step) in [
        ("shop-maint-on", "announce"),
        ("shop-maint-off", "unannounce"),
    ] {
        opsdeck_e2e::flows::runbooks::create(
            &admin,
            &format!(
                "name: {name}\ntitle: {name}\nparams:\n  - name: url\n    type: text\n\
                 steps:\n  - name: {step}\n    kind: http\n    url: \"{{{{params.url}}}}\"\n    timeout: 5s\n"
            ),
        )
        .await;
    }
    put_actuator(
        &admin,
        &stack,
        &json!({"mode": "runbook", "runbooks": {
            "enable": "shop-maint-on", "enable_params": {"url": receiver.url("/on")},
            "disable": "shop-maint-off", "disable_params": {"url": receiver.url("/off")}}}),
    )
    .await;

    let (_, p) = start(&op, stack_scope(&stack), "Shop release", in_minutes(30)).await;
    wait_period(&op, p.id, PeriodStatus::Active).await;
    assert_eq!(
        receiver.requests_to("/on").len(),
        1,
        "the enable runbook ran"
    );
    assert!(receiver.requests_to("/off").is_empty());
    end(&op, p.id, "").await;
    wait_period(&op, p.id, PeriodStatus::Ended).await;
    assert_eq!(
        receiver.requests_to("/off").len(),
        1,
        "the disable runbook ran"
    );
    assert_eq!(receiver.requests_to("/on").len(), 1);

    // The enable runbook fails: the disable one runs, the period fails.
    receiver.answer_next(&[500]);
    let (_, q) = start(
        &op,
        stack_scope(&stack),
        "Shop release, take two",
        in_minutes(30),
    )
    .await;
    let failed = wait_period(&op, q.id, PeriodStatus::Failed).await;
    assert!(failed.period.error.is_some(), "{}", describe(&failed));
    assert_eq!(receiver.requests_to("/on").len(), 2);
    receiver.wait_for("/off", 2, Duration::from_secs(30)).await;
    let b = board(&op).await;
    assert!(on_board(&b, "shop").maintenance.is_none());
}
