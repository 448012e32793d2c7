//! Resource charts in headless Chromium: the service page's Resources
//! section draws the CPU, memory and network charts (SVG paths) from
//! minute rows, says "No samples yet" for a service without any; the host
//! page shows its disk; the capacity report page lists the rows.

use chrono::Utc;
use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_e2e::util::ok_json;
use opsdeck_wire::{Role, Service};
use serde_json::json;

use super::resources::seed_series;

const MIB: f64 = 1024.0 * 1024.0;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_page_draws_resource_charts() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let server = TestServer::start_with(|s| s.resource_sample_interval = None).await;
    let admin = server.user(Role::Admin).await;
    let web: Service = ok_json(
        admin
            .post("/api/v1/services", &json!({"name": "webapp"}))
            .await,
        "service",
    )
    .await;
    let quiet: Service = ok_json(
        admin
            .post("/api/v1/services", &json!({"name": "quiet"}))
            .await,
        "service",
    )
    .await;
    // Six hours of minutes: a daily wave of CPU, memory creeping up, traffic.
    let series = seed_series(&server.pool, "service", Some(web.id), None).await;
    let now = Utc::now().timestamp() / 60 * 60;
    for m in 0..360i64 {
        let at = chrono::DateTime::from_timestamp(now - (360 - m) * 60, 0).unwrap();
        let phase = m as f64 / 60.0;
        let cpu = 40.0 + 30.0 * phase.sin();
        let mem = (200.0 + m as f64 / 4.0) * MIB;
        sqlx::query(
            "INSERT INTO resource_rollups_minute (series_id, bucket, samples, cpu_sum, cpu_max, mem_sum,
                                                  mem_max, mem_limit, net_rx, net_tx)
             VALUES ($1, $2, 6, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(series)
        .bind(at)
        .bind(6.0 * cpu)
        .bind(cpu + 15.0)
        .bind(6.0 * mem)
        .bind((mem * 1.05) as i64)
        .bind((512.0 * MIB) as i64)
        .bind(((2.0 + phase.cos()) * 60.0 * 300_000.0) as i64)
        .bind((60.0 * 80_000.0) as i64)
        .execute(&server.pool)
        .await
        .expect("seeding minutes");
    }
    let host = seed_series(&server.pool, "mount", None, Some("/var/lib/docker")).await;
    sqlx::query(
        "INSERT INTO resource_rollups_minute (series_id, bucket, samples, disk_used, disk_total)
         SELECT $1, date_trunc('minute', now()) - make_interval(mins => g), 6,
                (40e9 + (360 - g) * 5e6)::int8, 100e9::int8 FROM generate_series(1, 360) g",
    )
    .bind(host)
    .execute(&server.pool)
    .await
    .expect("seeding disk minutes");

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.sign_in(&server.url("/login"), "admin-user", PASSWORD)
        .await;
    b.goto(&server.url(&format!("/services/{}", web.id))).await;
    for chart in ["cpu", "memory", "network"] {
        b.wait_for(&format!(
            "[data-testid=section-resources] svg[data-testid=resource-chart-{chart}] path"
        ))
        .await;
    }
    let label = b
        .execute("return document.querySelector('[data-testid=resource-chart-cpu]').getAttribute('aria-label');")
        .await;
    assert!(
        label.starts_with("CPU over the last 24 hours: highest 85"),
        "{label}"
    );
    let d = b
        .execute("return document.querySelector('[data-testid=resource-chart-memory] path').getAttribute('d');")
        .await;
    assert!(
        d.starts_with('M') && d.matches('L').count() >= 300,
        "one line through the minutes: {}",
        &d[..d.len().min(80)]
    );
    b.execute(
        "document.querySelector('[data-testid=section-resources]').scrollIntoView(); return 'ok';",
    )
    .await;
    b.screenshot(&screenshots().join("resource-chart.png"))
        .await;
    // The week view reads the hour table: nothing seeded there.
    b.wait_for("[data-testid=resource-range-week]")
        .await
        .click()
        .await
        .expect("week");
    b.wait_for_contains("[data-testid=resource-empty]", "No samples yet")
        .await;

    // A service without samples says so.
    b.goto(&server.url(&format!("/services/{}", quiet.id)))
        .await;
    b.wait_for_contains(
        "[data-testid=section-resources] [data-testid=resource-empty]",
        "No samples yet",
    )
    .await;

    // The host page: the mount's disk chart.
    b.goto(&server.url("/hosts/local")).await;
    b.wait_for("[data-testid=resource-disk] h3").await;
    let title = b
        .execute("return document.querySelector('[data-testid=resource-disk] h3').textContent;")
        .await;
    assert_eq!(title, "Disk /var/lib/docker: 39 GiB of 93 GiB (42 %)");
    b.wait_for("[data-testid=resource-disk] svg path").await;

    // The capacity report page answers (nothing this month: an empty state).
    b.goto(&server.url("/reports/capacity?month=2001-01")).await;
    b.wait_for_contains(".state-empty", "No resource history for this month")
        .await;
    b.close().await;
    server.stop().await;
}
