//! The status dashboard in headless Chromium: services grouped by tier with
//! their health; a failure pushed over SSE changes the page without a
//! reload (the row, the banner, the topbar); the service page shows its
//! checks and history; the checks and reports pages; the public status page.
//!
//! Screenshots for the README land in `<workspace>/target/screenshots/`.

use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::server::{Api, TestServer, PASSWORD};
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::util::ok_json;
use opsdeck_wire::{Check, ProbeResult, Role, Service};
use serde_json::json;

async fn run(api: &Api, id: i64) -> ProbeResult {
    ok_json(
        api.post(&format!("/api/v1/checks/{id}/run"), &json!({}))
            .await,
        "run",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_follows_status_changes_live() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let server = TestServer::start().await;
    server.create_user("alice", Role::Admin).await;
    let admin = server.login("alice").await;
    // The handbook's stack, by tier, each with an HTTP check on a target.
    let stack = [
        ("npm", "critical", vec![]),
        ("postgres", "critical", vec![]),
        ("gitea", "application", vec!["postgres", "npm"]),
        ("bookstack", "application", vec!["postgres"]),
        ("woodpecker", "application", vec!["gitea"]),
        ("redis", "support", vec![]),
    ];
    let mut targets = Vec::new();
    let mut checks = std::collections::BTreeMap::new();
    for (name, tier, requires) in &stack {
        let svc: Service = ok_json(
            admin
                .post(
                    "/api/v1/services",
                    &json!({"name": name, "tier": tier, "requires": requires}),
                )
                .await,
            "service",
        )
        .await;
        let t = Target::start(Behaviour::Ok("ok".into()));
        let c: Check = ok_json(
            admin
                .post(
                    "/api/v1/checks",
                    &json!({"service_id": svc.id, "name": "health endpoint", "interval_s": 86400,
                            "timeout_ms": 2000, "fail_after": 1, "recover_after": 1,
                            "spec": {"kind": "http", "url": format!("{}healthz", t.url()),
                                     "warning_ms": 1000, "critical_ms": 3000}}),
                )
                .await,
            "check",
        )
        .await;
        for _ in 0..3 {
            run(&admin, c.id).await;
        }
        checks.insert(name.to_string(), c.id);
        targets.push((name.to_string(), t));
        if *name == "gitea" {
            let res = admin
                .send(
                    reqwest::Method::PUT,
                    &format!("/api/v1/services/{}/public", svc.id),
                    &json!({"public": true, "public_name": "Git hosting"}),
                )
                .await;
            assert_eq!(res.status(), 200);
        }
    }
    // A host check too, and history for the sparklines.
    ok_json::<Check>(
        admin
            .post(
                "/api/v1/checks",
                &json!({"name": "disk /", "interval_s": 60, "timeout_ms": 5000,
                        "spec": {"kind": "host", "resource": "disk", "warning_pct": 80, "critical_pct": 90}}),
            )
            .await,
        "host check",
    )
    .await;
    // Half an hour of history (as if the checks had run since), so the
    // sparklines and uptime have something to show.
    sqlx::query(
        "INSERT INTO check_rollups_minute (check_id, bucket, probes, ok, warning, critical,
                                           latency_min, latency_max, latency_sum, latency_count)
         SELECT c.id, date_trunc('minute', now()) - make_interval(mins => g), 6, 6, 0, 0,
                8, 60, 6 * (20 + 12 * sin(g / 3.0 + c.id)), 6
         FROM checks c, generate_series(1, 30) g",
    )
    .execute(&server.pool)
    .await
    .expect("minute history");
    sqlx::query(
        "INSERT INTO check_rollups_hour (check_id, bucket, probes, ok, warning, critical)
         SELECT c.id, date_trunc('hour', now()) - make_interval(hours => g), 360,
                360 - (c.id % 3), 0, c.id % 3
         FROM checks c, generate_series(1, 23) g",
    )
    .execute(&server.pool)
    .await
    .expect("hour history");
    server
        .state
        .health()
        .reload_history()
        .await
        .expect("history");

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 900).await;
    b.sign_in(&server.url("/login"), "alice", PASSWORD).await;

    // The dashboard: every service operational, the banner says so.
    for (name, _, _) in &stack {
        b.wait_for(&format!(
            "[data-testid=service-row-{name}][data-health=operational]"
        ))
        .await;
    }
    b.wait_for_contains("[data-testid=dashboard-banner]", "operational")
        .await;
    b.wait_for("[data-testid=topbar-status]").await;
    b.screenshot(&screenshots().join("dashboard.png")).await;

    // Postgres fails: pushed over SSE, no reload. Postgres is down, the
    // services on it are impacted, the banner says outage.
    let marker: String = b
        .execute("window.__opsdeck_marker = 'same page'; return window.__opsdeck_marker;")
        .await;
    assert_eq!(marker, "same page");
    let (_, pg) = targets.iter().find(|(n, _)| n == "postgres").unwrap();
    pg.set(Behaviour::Status(503));
    run(&admin, checks["postgres"]).await;
    b.wait_for("[data-testid=service-row-postgres][data-health=down]")
        .await;
    b.wait_for("[data-testid=service-row-gitea][data-health=impacted]")
        .await;
    b.wait_for("[data-testid=service-row-woodpecker][data-health=impacted]")
        .await;
    b.wait_for_contains("[data-testid=service-row-gitea]", "postgres")
        .await;
    b.wait_for_contains("[data-testid=dashboard-banner]", "Outage")
        .await;
    let still: String = b
        .execute("return window.__opsdeck_marker || 'reloaded';")
        .await;
    assert_eq!(still, "same page", "the change arrived without a reload");
    b.screenshot(&screenshots().join("dashboard-outage.png"))
        .await;

    // The service page: its checks and their history.
    let gitea_id: i64 = {
        let list: Vec<opsdeck_wire::ServiceOverview> = admin.json("/api/v1/services").await;
        list.iter()
            .find(|o| o.service.name == "postgres")
            .unwrap()
            .service
            .id
    };
    b.goto(&server.url(&format!("/services/{gitea_id}"))).await;
    b.wait_for("[data-testid='check-row-health endpoint']")
        .await;
    b.screenshot(&screenshots().join("service-health.png"))
        .await;

    // The checks page lists every check; the reports page generates one.
    b.goto(&server.url("/checks")).await;
    b.wait_for("[data-testid='check-row-disk /']").await;
    b.screenshot(&screenshots().join("checks.png")).await;
    b.goto(&server.url("/reports")).await;
    b.wait_for("[data-testid=report-list]").await;
    let res = admin.post("/api/v1/reports", &json!({})).await;
    assert_eq!(res.status(), 201);
    b.goto(&server.url("/reports")).await;
    b.wait_for("[data-testid=report-list]").await;
    b.screenshot(&screenshots().join("reports.png")).await;

    // The public page, as anyone sees it.
    b.goto(&server.url("/status")).await;
    b.wait_for_contains("[data-testid=public-service]", "Git hosting")
        .await;
    b.screenshot(&screenshots().join("public-status.png")).await;
    b.close().await;
}
