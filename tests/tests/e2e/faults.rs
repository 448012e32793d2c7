//! Faults a production Opsdeck lives through, on real parts.
//!
//! * **Postgres restarted under load**: a real `opsdeck serve` on a private
//!   cluster (restarting the shared test cluster would break the other
//!   tests) with clients reading and writing. While the database is down
//!   every answer is a clear `503` with the code `unavailable` (never a
//!   `500`, never a hang), `/readyz` says not ready and `/healthz` stays
//!   alive; when the database is back the same process serves again — the
//!   same session, writes audited, the audit chain intact — without being
//!   restarted.
//! * **Docker engine killed**: `dockerd` of an engine of the test's own
//!   (the shared test engine serves the other tests) gets SIGKILL under a
//!   panel managing a stack on it. The engine shows *unreachable* with the
//!   reason; container actions, logs and runbook container steps fail at
//!   once with a `503` or a failed step naming the engine, and record
//!   nothing as done; the container check says the engine is unreachable;
//!   the board and the rest of the panel keep serving. When `dockerd` is
//!   started again the same Opsdeck process reconnects by itself, and
//!   actions, checks and runbooks work again.
//!
//! Opsdeck killed with SIGKILL during a runbook, a backup, an escalation
//! and a maintenance actuation is covered where each lives
//! (`runbooks.rs`, `backups.rs`, `backups_s3.rs`, `escalation.rs`,
//! `maintenance.rs`): consistent state after the restart, nothing marked
//! good that was not, the audit chain verified.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsdeck::embedded_pg::EmbeddedPg;
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::auth::log_in;
use opsdeck_e2e::flows::checks::{add_container_check, run_check};
use opsdeck_e2e::flows::containers::wait_engine;
use opsdeck_e2e::flows::runbooks::{create, start, wait_status, RESTART};
use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{Stack, DOCS};
use opsdeck_e2e::util::{add_admin, expect_error, ok_json, poll, release};
use opsdeck_wire::{
    ActionOutcome, ActionRecord, CheckStatus, EngineState, Role, RunState, RunStatus,
    ServiceOverview, StatusBoard,
};
use serde_json::{json, Value};

/// Status codes seen by the load, per route.
type Seen = Arc<Mutex<BTreeMap<(String, u16), u32>>>;

/// Names of the services the load creates: unique across workers.
static NEXT: AtomicU32 = AtomicU32::new(1);

async fn load(api: Api, stop: Arc<AtomicBool>, seen: Seen) {
    while !stop.load(Ordering::SeqCst) {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let (route, res) = if n.is_multiple_of(4) {
            (
                "POST /api/v1/services",
                api.post(
                    "/api/v1/services",
                    &json!({"name": format!("load-{n}"), "tier": "support"}),
                )
                .await,
            )
        } else if n.is_multiple_of(2) {
            ("GET /api/v1/status", api.get("/api/v1/status").await)
        } else {
            ("GET /api/v1/services", api.get("/api/v1/services").await)
        };
        let status = res.status().as_u16();
        if status == 503 {
            let v: Value = res.json().await.unwrap_or_default();
            assert_eq!(v["error"]["code"], "unavailable", "{route}: {v}");
        }
        *seen
            .lock()
            .unwrap()
            .entry((route.to_owned(), status))
            .or_default() += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_gives_clear_503s_and_recovers() {
    let dir = tempfile::Builder::new()
        .prefix("odk-fault")
        .tempdir_in("/tmp")
        .unwrap();
    let mut pg = EmbeddedPg::start(dir.path(), None)
        .await
        .expect("the private cluster");
    let url = pg.url("opsdeck");
    let p = OpsdeckProcess::start(&url, &[]).await;
    p.wait_ready().await;
    let pool = opsdeck::db::pool(pg.connect_options()).await.expect("pool");
    add_admin(&pool, "ops").await;
    pool.close().await;
    // A client with a short timeout: a hang is a failure, not a wait.
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let api = Api {
        client,
        base: p.base().to_owned(),
    };
    log_in(&api, "ops").await;

    let stop = Arc::new(AtomicBool::new(false));
    let seen: Seen = Arc::default();
    let workers: Vec<_> = (0..3)
        .map(|_| tokio::spawn(load(api.clone(), stop.clone(), seen.clone())))
        .collect();
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Down.
    pg.stop().await;
    let down = poll(Duration::from_secs(20), "a 503 while down", async || {
        let res = api.get("/api/v1/services").await;
        match res.status().as_u16() {
            503 => Ok(res.json::<Value>().await.unwrap_or_default()),
            other => Err(format!("{other}")),
        }
    })
    .await;
    assert_eq!(down["error"]["code"], "unavailable", "{down}");
    assert!(
        down["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("database"),
        "{down}"
    );
    assert_eq!(api.get("/readyz").await.status(), 503, "not ready");
    assert_eq!(api.get("/healthz").await.status(), 200, "alive");
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Back, on the same socket: the same process serves again.
    pg = EmbeddedPg::start(dir.path(), None)
        .await
        .expect("the cluster again");
    poll(Duration::from_secs(60), "serving again", async || match api
        .get("/api/v1/services")
        .await
        .status()
        .as_u16()
    {
        200 => Ok(()),
        other => Err(format!("{other}")),
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.await.expect("a load worker panicked");
    }
    assert!(p.exited().is_none(), "the process kept running");
    assert_eq!(api.get("/readyz").await.status(), 200, "ready again");

    let seen = seen.lock().unwrap().clone();
    let bad: Vec<_> = seen
        .iter()
        .filter(|((_, status), _)| !matches!(status, 200 | 201 | 503))
        .collect();
    assert!(bad.is_empty(), "only 2xx and 503: {seen:?}");
    assert!(
        seen.keys().any(|(_, s)| *s == 503),
        "the load saw the outage: {seen:?}"
    );

    // A write after the outage is stored and audited; the chain verifies.
    let made: Value = ok_json(
        api.post(
            "/api/v1/services",
            &json!({"name": "after-outage", "tier": "support"}),
        )
        .await,
        "a write after the outage",
    )
    .await;
    assert_eq!(made["name"], "after-outage");
    let pool = opsdeck::db::pool(pg.connect_options()).await.expect("pool");
    let created: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'service.create' AND outcome = 'success'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let services: i64 = sqlx::query_scalar("SELECT count(*) FROM services")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        created, services,
        "every stored service has its audit entry"
    );
    let unaudited: i64 =
        sqlx::query_scalar("SELECT count(*) FROM audit_log WHERE action = 'request.unaudited'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(unaudited, 0);
    let report = opsdeck::audit::verify(&pool).await.expect("verify");
    assert!(report.ok && report.checked > 0, "audit chain: {report:?}");
    pool.close().await;
    p.stop().await;
    pg.stop().await;
}

/// Polls until every service of the stack runs, returning their ids.
async fn wait_running(api: &Api) -> BTreeMap<String, i64> {
    poll(
        Duration::from_secs(60),
        "docs and search running",
        async || {
            let list: Vec<ServiceOverview> = api.json("/api/v1/services").await;
            let off: Vec<String> = list
                .iter()
                .filter(|o| o.run_state != RunState::Running)
                .map(|o| format!("{}: {:?}", o.service.name, o.run_state))
                .collect();
            if off.is_empty() && list.len() == DOCS.len() {
                Ok(list
                    .into_iter()
                    .map(|o| (o.service.name, o.service.id))
                    .collect())
            } else {
                Err(off.join(", "))
            }
        },
    )
    .await
}

async fn restart(api: &Api, service: i64) -> reqwest::Response {
    api.post(
        &format!("/api/v1/services/{service}/actions"),
        &json!({"action": "restart", "timeout_secs": 1}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_engine_killed_gives_clear_errors_and_recovers() {
    let Some(engine) = tokio::task::spawn_blocking(PrivateDockerd::dedicated)
        .await
        .expect("starting the engine")
        .ok()
    else {
        return;
    };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "crashy", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    let stack = Stack::up(&engine, "crash", DOCS).await.expect("the stack");
    ok_json::<Value>(
        admin
            .post(
                "/api/v1/inventory/compose",
                &json!({"content": stack.compose_yaml(), "project": stack.project,
                        "engine": "crashy", "apply": true, "checks": []}),
            )
            .await,
        "importing the stack",
    )
    .await;
    wait_engine(&admin, "crashy", EngineState::Connected).await;
    let ids = wait_running(&op).await;
    let docs = ids["docs"];
    let check = add_container_check(&op, docs).await;
    let runbook = create(&admin, RESTART).await;

    // The engine crashes.
    let crash = engine.clone();
    tokio::task::spawn_blocking(move || crash.crash())
        .await
        .expect("crash task")
        .expect("SIGKILL to dockerd");
    let down = wait_engine(&admin, "crashy", EngineState::Unreachable).await;
    assert!(
        down.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "the reason is shown: {down:?}"
    );

    // Actions fail at once, naming the engine, and nothing is recorded as done.
    let msg = expect_error(restart(&op, docs).await, 503).await;
    assert!(msg.contains("\"crashy\""), "names the engine: {msg}");
    let msg = expect_error(op.get(&format!("/api/v1/services/{docs}/logs")).await, 503).await;
    assert!(msg.contains("unreachable"), "{msg}");
    let msg = expect_error(
        op.post(
            &format!("/api/v1/stacks/{}/actions", stack.project),
            &json!({"action": "start"}),
        )
        .await,
        503,
    )
    .await;
    assert!(msg.contains("\"crashy\""), "{msg}");
    let activity: Vec<ActionRecord> = op.json(&format!("/api/v1/services/{docs}/activity")).await;
    assert!(activity.is_empty(), "nothing ran: {activity:#?}");

    // A runbook's container step fails with the reason; the run is failed,
    // not left running.
    let run = start(&op, runbook.id, json!({"service": "docs"})).await;
    let failed = wait_status(&op, run.summary.id, RunStatus::Failed).await;
    let step = failed
        .steps
        .iter()
        .find(|s| s.name == "restart")
        .expect("the restart step");
    let why = format!("{:?} {}", step.error, step.output);
    assert!(why.contains("unreachable"), "the step says why: {why}");

    // The container check reports the engine, not a guess about the service.
    let r = run_check(&op, check.id).await;
    assert_ne!(r.status, CheckStatus::Ok, "{r:?}");
    assert!(r.message.contains("unreachable"), "{r:?}");

    // The rest of the panel serves.
    let board: StatusBoard = op.json("/api/v1/status").await;
    let e = board
        .engines
        .iter()
        .find(|e| e.name == "crashy")
        .expect("the engine on the board");
    assert_eq!(e.state, EngineState::Unreachable);
    assert_eq!(op.get("/api/v1/incidents").await.status(), 200);
    assert_eq!(op.get("/readyz").await.status(), 200, "ready");

    // dockerd comes back: the same Opsdeck process reconnects by itself.
    let revive = engine.clone();
    tokio::task::spawn_blocking(move || revive.revive())
        .await
        .expect("revive task")
        .expect("dockerd again");
    let up = wait_engine(&admin, "crashy", EngineState::Connected).await;
    assert!(up.last_error.is_none(), "{up:?}");
    // Whatever the restarted engine made of the containers it found (without
    // live-restore it stops them), starting the stack through the panel
    // brings every service back.
    let record: ActionRecord = ok_json(
        op.post(
            &format!("/api/v1/stacks/{}/actions", stack.project),
            &json!({"action": "start"}),
        )
        .await,
        "starting the stack after the crash",
    )
    .await;
    assert_eq!(record.outcome, ActionOutcome::Succeeded, "{record:#?}");
    wait_running(&op).await;
    let r = poll(Duration::from_secs(30), "the check ok again", async || {
        let r = run_check(&op, check.id).await;
        (r.status == CheckStatus::Ok)
            .then_some(r.clone())
            .ok_or(format!("{r:?}"))
    })
    .await;
    assert!(r.message.contains("running"), "{r:?}");
    let record: ActionRecord = ok_json(restart(&op, docs).await, "restart after recovery").await;
    assert_eq!(record.outcome, ActionOutcome::Succeeded, "{record:#?}");
    let run = start(&op, runbook.id, json!({"service": "docs"})).await;
    wait_status(&op, run.summary.id, RunStatus::Succeeded).await;

    // The refused requests are audited as failed, the rest as done.
    let failed_requests: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'request.failed' \
         AND (params->>'status')::int = 503",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert!(
        failed_requests >= 2,
        "refused actions audited: {failed_requests}"
    );
    let restarts: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'container.restart' AND outcome = 'success'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(restarts, 2, "the two restarts after recovery");

    drop(stack);
    server.stop().await;
    release(engine).await;
}
