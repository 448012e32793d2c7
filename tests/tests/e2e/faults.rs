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
use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::server::Api;
use opsdeck_wire::Role;
use serde_json::{json, Value};

use crate::util::{ok_json, poll};

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
    opsdeck::users::cli_add(
        &pool,
        "ops",
        Role::Admin,
        None,
        opsdeck_e2e::server::PASSWORD,
    )
    .await
    .expect("user");
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
    let res = api
        .post(
            "/api/v1/auth/login",
            &json!({"username": "ops", "password": opsdeck_e2e::server::PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200, "login");

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
