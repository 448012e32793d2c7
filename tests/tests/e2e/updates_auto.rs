//! The auto update policy's scheduler: a service with `policy = 'auto'`
//! and an update in `image_status` gets an `image-update` run queued by
//! `system:auto-update` only inside an active maintenance period, one at a
//! time, once per discovery result. The run is a stand-in's (the test
//! asserts what the policy queued, not what the image step does); settings
//! and discovery results are written as rows directly (their routes and
//! discovery belong to other parts of the issue).

use opsdeck::updates::auto::Tick;
use opsdeck_e2e::flows::runbooks::wait_run;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{ok_json, poll};
use opsdeck_wire::Role;
use serde_json::{json, Value};

use crate::updates_heal::{maintenance, WAIT};

/// A stand-in `image-update` (the same parameters) whose one step waits
/// for an operator: its run stays active, and the test asserts what the
/// policy queued, not what the update step does.
const IMAGE_UPDATE: &str = r#"
name: image-update
title: Image update (stand-in)
target_param: service
params:
  - name: service
    type: service
  - name: to
    type: text
    required: false
    default: ""
steps:
  - name: hold
    kind: manual
    instructions: "The test's stand-in for the image step."
"#;

/// Makes `image-update` the stand-in: a new version of the built-in when it
/// exists, else a new runbook.
async fn stand_in_image_update(admin: &Api) {
    let list: Vec<opsdeck_wire::RunbookSummary> = admin.json("/api/v1/runbooks").await;
    let res = match list.iter().find(|r| r.name == "image-update") {
        Some(r) => {
            admin
                .send(
                    reqwest::Method::PUT,
                    &format!("/api/v1/runbooks/{}", r.id),
                    &json!({ "yaml": IMAGE_UPDATE }),
                )
                .await
        }
        None => {
            admin
                .post("/api/v1/runbooks", &json!({ "yaml": IMAGE_UPDATE }))
                .await
        }
    };
    ok_json::<Value>(res, "the image-update stand-in").await;
}

/// Writes a service's auto update inputs: its policy and what discovery saw.
async fn update_available(pool: &sqlx::PgPool, service: i64, policy: &str, error: Option<&str>) {
    sqlx::query(
        "INSERT INTO service_update_settings (service_id, policy) VALUES ($1, $2)
         ON CONFLICT (service_id) DO UPDATE SET policy = $2",
    )
    .bind(service)
    .bind(policy)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO image_status (service_id, image_ref, running_digest, latest_digest, error)
         VALUES ($1, 'registry.test/app:1', 'sha256:aaaa', 'sha256:bbbb', $2)",
    )
    .bind(service)
    .bind(error)
    .execute(pool)
    .await
    .unwrap();
}

/// image-update runs: (params, requested_by, requested_kind, status).
async fn update_runs(pool: &sqlx::PgPool) -> Vec<(Value, String, String, String)> {
    sqlx::query_as(
        "SELECT r.params, r.requested_by, r.requested_kind, r.status
         FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         WHERE b.name = 'image-update' ORDER BY r.id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_update_queues_image_update_only_inside_maintenance_one_at_a_time() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    // Both policies' tasks are registered by `serve` (which runs on).
    poll(WAIT, "the policies' tasks registered", async || {
        let names: Vec<&str> = server.state.jobs.names().iter().map(|(n, _)| *n).collect();
        ["updates.autoheal", "updates.auto"]
            .iter()
            .all(|t| names.contains(t))
            .then_some(())
            .ok_or(format!("{names:?}"))
    })
    .await;
    stand_in_image_update(&admin).await;
    let mut ids = Vec::new();
    for name in ["ledger", "search", "billing", "mailer"] {
        let s: opsdeck_wire::Service = ok_json(
            admin
                .post(
                    "/api/v1/services",
                    &json!({"name": name, "tier": "application"}),
                )
                .await,
            "creating a service",
        )
        .await;
        ids.push(s.id);
    }
    let pool = &server.pool;
    update_available(pool, ids[0], "auto", None).await;
    update_available(pool, ids[1], "auto", None).await;
    // Only notify; and auto but the registry failed: never updated.
    update_available(pool, ids[2], "notify", None).await;
    update_available(pool, ids[3], "auto", Some("registry unreachable")).await;

    // Outside a window: nothing.
    let t = opsdeck::updates::auto::tick(&server.state).await.unwrap();
    assert!(matches!(t, Tick::Idle | Tick::Busy), "{t:?}");
    assert!(update_runs(pool).await.is_empty());

    // Maintenance of all four: one of the two auto services is updated.
    let period = maintenance(&admin, &["ledger", "search", "billing", "mailer"]).await;
    poll(WAIT, "an auto update run", async || {
        let t = opsdeck::updates::auto::tick(&server.state)
            .await
            .map_err(|e| e.to_string())?;
        let runs = update_runs(pool).await;
        (!runs.is_empty()).then_some(()).ok_or(format!("{t:?}"))
    })
    .await;
    let runs = update_runs(pool).await;
    assert_eq!(runs.len(), 1, "{runs:?}");
    let (params, by, kind, _) = &runs[0];
    assert!(
        *params == json!({"service": "ledger", "to": ""})
            || *params == json!({"service": "search", "to": ""}),
        "{params}"
    );
    assert_eq!(
        (by.as_str(), kind.as_str()),
        ("system:auto-update", "system")
    );
    let entries: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT actor, actor_kind, params FROM audit_log WHERE action = 'update.auto.start'",
    )
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(
        (entries[0].0.as_str(), entries[0].1.as_str()),
        ("system:auto-update", "system")
    );
    assert_eq!(entries[0].2["policy"], "auto");
    assert_eq!(entries[0].2["service"], params["service"]);
    assert_eq!(entries[0].2["period_id"], period);
    // The period's timeline shows the update it held.
    let events: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT kind, actor FROM timeline_events
         WHERE subject_type = 'maintenance' AND subject_id = $1 AND kind = 'update.auto'",
    )
    .bind(period)
    .fetch_all(pool)
    .await
    .unwrap();
    assert_eq!(
        events,
        vec![(
            "update.auto".to_owned(),
            Some("system:auto-update".to_owned())
        )]
    );

    // While it is active, the other auto service waits its turn.
    let t = opsdeck::updates::auto::tick(&server.state).await.unwrap();
    assert!(matches!(t, Tick::Updating(_) | Tick::Busy), "{t:?}");
    assert_eq!(update_runs(pool).await.len(), 1);

    // Its run over, the next one goes; never the notify or failed ones.
    let first: i64 = sqlx::query_scalar(
        "SELECT r.id FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         WHERE b.name = 'image-update'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let res = admin
        .post(&format!("/api/v1/runs/{first}/cancel"), &json!({}))
        .await;
    assert!(res.status().is_success(), "cancelling: {}", res.status());
    wait_run(&admin, first, "the first update cancelled", |r| {
        !r.summary.status.is_active()
    })
    .await;
    poll(WAIT, "the second auto update run", async || {
        let t = opsdeck::updates::auto::tick(&server.state)
            .await
            .map_err(|e| e.to_string())?;
        let runs = update_runs(pool).await;
        (runs.len() == 2).then_some(()).ok_or(format!("{t:?}"))
    })
    .await;
    let services: Vec<Value> = update_runs(pool)
        .await
        .into_iter()
        .map(|r| r.0["service"].clone())
        .collect();
    assert!(
        services.contains(&json!("ledger")) && services.contains(&json!("search")),
        "{services:?}"
    );
    // Each was tried once for what discovery saw: no third run.
    let t = opsdeck::updates::auto::tick(&server.state).await.unwrap();
    assert!(!matches!(t, Tick::Queued { .. }), "{t:?}");
    assert_eq!(update_runs(pool).await.len(), 2);
}
