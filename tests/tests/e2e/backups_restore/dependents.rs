//! Dependents stop in reverse order around a restore and start again in
//! order.

use super::*;

/// The stand-in stack: `ledgerdb` (whose Postgres check points at the test
/// cluster), `api` and `worker` require it, `web` requires `api`.
const APP: &[ServiceSpec] = &[
    ServiceSpec {
        name: "ledgerdb",
        image: "postgres:16",
        requires: &[],
        tier: Some("critical"),
        description: "The ledger database",
        docs: None,
    },
    ServiceSpec {
        name: "api",
        image: "ghcr.io/example/ledger-api:1",
        requires: &["ledgerdb"],
        tier: Some("application"),
        description: "Ledger API",
        docs: None,
    },
    ServiceSpec {
        name: "web",
        image: "ghcr.io/example/ledger-web:1",
        requires: &["api"],
        tier: Some("application"),
        description: "Ledger web front end",
        docs: None,
    },
    ServiceSpec {
        name: "worker",
        image: "ghcr.io/example/ledger-worker:1",
        requires: &["ledgerdb"],
        tier: Some("support"),
        description: "Ledger background jobs",
        docs: None,
    },
];

async fn overview(api: &Api, name: &str) -> ServiceOverview {
    let list: Vec<ServiceOverview> = api.json("/api/v1/services").await;
    list.into_iter()
        .find(|o| o.service.name == name)
        .unwrap_or_else(|| panic!("no service {name}"))
}

async fn wait_state(api: &Api, name: &str, want: RunState) {
    poll(
        Duration::from_secs(60),
        &format!("{name} {want:?}"),
        async || {
            let o = overview(api, name).await;
            if o.run_state == want {
                Ok(())
            } else {
                Err(format!("{:?}", o.run_state))
            }
        },
    )
    .await
}

/// stop_dependents on the private dockerd: the dependents that run (web,
/// api) stop dependents first, the restore runs, they start again
/// dependencies first; `worker`, stopped before, stays stopped and is not
/// touched. Every stop and start is a container action of the requester.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dependents_stop_in_reverse_order_and_start_again_in_order() {
    let Some(engine) = engine().await else { return };
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_200).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    let stack = Stack::up(&engine, "restore", APP).await.expect("the stack");
    ok_json::<Value>(
        admin
            .post(
                "/api/v1/inventory/compose",
                &json!({"content": stack.compose_yaml(), "project": stack.project,
                        "engine": "main", "apply": true, "checks": []}),
            )
            .await,
        "importing the stack",
    )
    .await;
    for spec in APP {
        wait_state(&operator, spec.name, RunState::Running).await;
    }
    let db = unique("restore_deps");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    fill_ledger(&mut src).await;
    let original = digests(&mut src).await;
    let ledgerdb = overview(&operator, "ledgerdb").await.service;
    let url = format!(
        "postgres://opsdeck@127.0.0.1:{}/{db}",
        tcp_to_cluster().await
    );
    ok_json::<Check>(
        admin
            .post(
                "/api/v1/checks",
                &json!({"name": "ledgerdb-pg", "service_id": ledgerdb.id, "interval_s": 86_400,
                        "timeout_ms": 5000, "spec": {"kind": "postgres", "url": url}}),
            )
            .await,
        "the Postgres check",
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let mut plan = postgres_plan("ledger", "ledgerdb", &[&db], "local");
    plan["verify"] = json!(false);
    let plan = create_plan(&admin, plan).await;
    let r = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let b = backups(&operator, "").await[0].clone();
    change(&mut src).await;

    // worker is down before the restore.
    stack
        .docker()
        .stop_container(
            &stack.container("worker"),
            None::<bollard::query_parameters::StopContainerOptions>,
        )
        .await
        .unwrap();
    wait_state(&operator, "worker", RunState::Stopped).await;
    let activity = format!("/api/v1/stacks/{}/activity", stack.project);
    let before: Vec<ActionRecord> = operator.json(&activity).await;

    let t0 = std::time::Instant::now();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 1, "into": "original", "stop_dependents": true}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{text}");
    eprintln!("restore with dependents: {:?}", t0.elapsed());
    assert!(
        text.contains("in this order: worker, web, api"),
        "stop order: {text}"
    );
    assert!(
        text.contains("3/5 worker: not running, left as it is"),
        "{text}"
    );
    assert!(
        text.contains("5/5 starting again in this order: api, web"),
        "{text}"
    );
    assert_eq!(digests(&mut src).await, original);

    // The actions, oldest first: stops dependents first, starts in order.
    let after: Vec<ActionRecord> = operator.json(&activity).await;
    let mut new: Vec<&ActionRecord> = after
        .iter()
        .filter(|a| !before.iter().any(|b| b.id == a.id))
        .collect();
    new.sort_by_key(|a| a.id);
    assert_eq!(
        new.iter()
            .map(|a| (a.kind.as_str(), a.target.as_str()))
            .collect::<Vec<_>>(),
        [
            ("container.stop", "web"),
            ("container.stop", "api"),
            ("container.start", "api"),
            ("container.start", "web"),
        ]
    );
    assert!(
        new.iter()
            .all(|a| a.actor == "operator-user" && a.error.is_none()),
        "{new:?}"
    );
    // The restore ran while they were stopped.
    let stopped_at = new[1].finished_at.unwrap();
    let started_at = new[2].started_at;
    let restored = r.steps[0].finished_at.unwrap_or(started_at);
    assert!(stopped_at <= started_at && started_at <= restored);
    wait_state(&operator, "web", RunState::Running).await;
    wait_state(&operator, "api", RunState::Running).await;
    assert_eq!(
        overview(&operator, "worker").await.run_state,
        RunState::Stopped
    );
    let done = audit(&admin, "backup.restored").await;
    assert_eq!(done[0].params["stopped"], json!(["web", "api"]));

    src.close().await.ok();
    drop_db(&s.pool, &db).await;
    drop(stack);
    release(engine).await;
}
