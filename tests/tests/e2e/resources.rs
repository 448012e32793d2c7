//! Resource history (issue 21): the sampler on the private engine (a
//! busy-looping container shows CPU, an idle one almost none, both show
//! memory; rows land in the minute and hour tables, one per series and
//! minute), the host's series; the forecast check against seeded hourly
//! rows with a known slope (warning, critical, unknown without history);
//! the forecasts list; the capacity report with the grower first.

use std::time::Duration;

use chrono::{DateTime, Datelike, TimeZone, Utc};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::Stack;
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release};
use opsdeck_wire::{
    CapacityReport, Check, CheckStatus, ForecastList, ProbeResult, ResourceHistory, Role, Service,
};
use serde_json::json;
use sqlx::PgPool;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const MIB: f64 = 1024.0 * 1024.0;

/// A series row (`kind` mount: `mount` set; service: `service_id` set).
pub async fn seed_series(
    pool: &PgPool,
    kind: &str,
    service_id: Option<i64>,
    mount: Option<&str>,
) -> i64 {
    sqlx::query_scalar(
        "INSERT INTO resource_series (kind, service_id, mount) VALUES ($1, $2, $3) RETURNING id",
    )
    .bind(kind)
    .bind(service_id)
    .bind(mount)
    .fetch_one(pool)
    .await
    .expect("seeding a series")
}

/// One hour row: `mem` for services and the host, `disk` for mounts.
pub async fn seed_hour(
    pool: &PgPool,
    series: i64,
    at: DateTime<Utc>,
    mem: Option<f64>,
    disk: Option<(f64, f64)>,
) {
    sqlx::query(
        "INSERT INTO resource_rollups_hour (series_id, bucket, samples, cpu_sum, cpu_max, mem_sum, mem_max,
                                            mem_limit, disk_used, disk_total)
         VALUES ($1, date_trunc('hour', $2::timestamptz), 360, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(series)
    .bind(at)
    .bind(mem.map_or(0.0, |_| 360.0 * 25.0))
    .bind(mem.map(|_| 50.0))
    .bind(mem.map_or(0.0, |m| 360.0 * m))
    .bind(mem.map(|m| m as i64))
    .bind(mem.map(|_| (4.0 * GIB) as i64))
    .bind(disk.map(|d| d.0 as i64))
    .bind(disk.map(|d| d.1 as i64))
    .execute(pool)
    .await
    .expect("seeding an hour row");
}

/// 14 days of hourly disk rows ending this hour: `now_gib` used of 100 GiB,
/// growing `gib_per_day`.
async fn seed_disk(pool: &PgPool, mount: &str, now_gib: f64, gib_per_day: f64, hours: i64) {
    let id = seed_series(pool, "mount", None, Some(mount)).await;
    let now = Utc::now();
    let this_hour = now.timestamp() / 3600 * 3600;
    for h in 0..hours {
        let at = now - chrono::Duration::hours(h);
        // Days before this hour's bucket: the latest row is `now_gib`.
        let x = ((at.timestamp() / 3600 * 3600) - this_hour) as f64 / 86_400.0;
        let used = (now_gib + gib_per_day * x) * GIB;
        seed_hour(pool, id, at, None, Some((used, 100.0 * GIB))).await;
    }
}

async fn check(api: &Api, body: serde_json::Value) -> Check {
    ok_json(api.post("/api/v1/checks", &body).await, "creating a check").await
}

async fn run(api: &Api, id: i64) -> ProbeResult {
    ok_json(
        api.post(&format!("/api/v1/checks/{id}/run"), &json!({}))
            .await,
        "run",
    )
    .await
}

fn forecast_check(name: &str, path: &str) -> serde_json::Value {
    json!({"name": name, "interval_s": 3600, "timeout_ms": 5000, "fail_after": 1, "recover_after": 1,
           "spec": {"kind": "forecast", "resource": "disk", "path": path,
                    "warning_days": 14, "critical_days": 3}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecast_checks_and_the_capacity_report() {
    let server = TestServer::start_with(|s| s.resource_sample_interval = None).await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    let pool = &server.pool;
    // 60 GiB of 100 used, +4 GiB a day: full in 10 days (warning).
    seed_disk(pool, "/srv/data", 60.0, 4.0, 14 * 24).await;
    // 90 of 100, +5 a day: 2 days (critical).
    seed_disk(pool, "/srv/fast", 90.0, 5.0, 14 * 24).await;
    // Flat: never.
    seed_disk(pool, "/srv/flat", 50.0, 0.0, 14 * 24).await;
    // Five hours of history: not enough.
    seed_disk(pool, "/srv/new", 10.0, 50.0, 5).await;

    let data = check(&admin, forecast_check("data fills", "/srv/data")).await;
    let r = run(&admin, data.id).await;
    assert_eq!(r.status, CheckStatus::Warning, "{r:?}");
    assert!(
        r.message
            .starts_with("disk /srv/data full in about 10 days at the last 14 days' rate"),
        "{}",
        r.message
    );
    let days = r
        .metrics
        .iter()
        .find(|m| m.name == "days_to_full")
        .expect("days metric")
        .value;
    assert!((days - 10.0).abs() < 0.01, "{days}");
    let slope = r
        .metrics
        .iter()
        .find(|m| m.name == "slope_per_day")
        .expect("slope")
        .value;
    assert!(
        (slope / GIB - 4.0).abs() < 1e-6,
        "the known slope: {}",
        slope / GIB
    );

    let fast = check(&admin, forecast_check("fast fills", "/srv/fast")).await;
    let r = run(&admin, fast.id).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(r.message.contains("full in about 2 days"), "{}", r.message);

    let flat = check(&admin, forecast_check("flat", "/srv/flat")).await;
    let r = run(&admin, flat.id).await;
    assert_eq!(r.status, CheckStatus::Ok, "{r:?}");
    assert!(r.message.contains("not filling up"), "{}", r.message);

    let new = check(&admin, forecast_check("new", "/srv/new")).await;
    let r = run(&admin, new.id).await;
    assert_eq!(r.status, CheckStatus::Unknown, "{r:?}");
    assert!(
        r.message.contains("5 hourly points, 24 needed"),
        "{}",
        r.message
    );
    let none = check(&admin, forecast_check("none", "/srv/none")).await;
    assert_eq!(run(&admin, none.id).await.status, CheckStatus::Unknown);

    // Boundary validation: a service's forecast is of memory; CPU is no
    // capacity; critical below warning.
    let svc: Service = ok_json(
        admin
            .post("/api/v1/services", &json!({"name": "grower"}))
            .await,
        "service",
    )
    .await;
    let mut body = forecast_check("svc disk", "/");
    body["service_id"] = json!(svc.id);
    let e = expect_error(admin.post("/api/v1/checks", &body).await, 400).await;
    assert!(e.contains("a disk forecast is a host check"), "{e}");
    let mut body = forecast_check("cpu", "/");
    body["spec"]["resource"] = json!("cpu");
    let e = expect_error(admin.post("/api/v1/checks", &body).await, 400).await;
    assert!(e.contains("disk or memory"), "{e}");
    let mut body = forecast_check("inverted", "/");
    body["spec"]["critical_days"] = json!(30);
    expect_error(admin.post("/api/v1/checks", &body).await, 400).await;

    // The dashboard's list: soonest first, within the asked days.
    let l: ForecastList = viewer
        .json("/api/v1/resources/forecasts?within_days=14")
        .await;
    let labels: Vec<&str> = l.items.iter().map(|f| f.label.as_str()).collect();
    assert_eq!(labels, ["disk /srv/fast", "disk /srv/data"]);
    let l: ForecastList = viewer
        .json("/api/v1/resources/forecasts?within_days=5")
        .await;
    assert_eq!(l.items.len(), 1);
    expect_error(
        viewer
            .get("/api/v1/resources/forecasts?within_days=0")
            .await,
        400,
    )
    .await;

    // The capacity report of a month two months back: "grower"'s memory
    // tripled from the month before, "steady"'s did not move.
    let steady: Service = ok_json(
        admin
            .post("/api/v1/services", &json!({"name": "steady"}))
            .await,
        "service",
    )
    .await;
    let back = Utc::now() - chrono::Duration::days(62);
    let month = Utc
        .with_ymd_and_hms(back.year(), back.month(), 10, 0, 0, 0)
        .unwrap();
    let prev = month - chrono::Duration::days(20);
    let g = seed_series(pool, "service", Some(svc.id), None).await;
    let s = seed_series(pool, "service", Some(steady.id), None).await;
    for h in 0..6 {
        let dh = chrono::Duration::hours(h);
        seed_hour(pool, g, prev + dh, Some(100.0 * MIB), None).await;
        seed_hour(pool, g, month + dh, Some(300.0 * MIB), None).await;
        seed_hour(pool, s, prev + dh, Some(200.0 * MIB), None).await;
        seed_hour(pool, s, month + dh, Some(200.0 * MIB), None).await;
    }
    let m = format!("{:04}-{:02}", month.year(), month.month());
    let rep: CapacityReport = viewer
        .json(&format!("/api/v1/reports/capacity?month={m}"))
        .await;
    assert_eq!(rep.month, m);
    let labels: Vec<&str> = rep.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(labels, ["grower", "steady"], "{rep:?}");
    assert_eq!(rep.top_growers.len(), 1, "only the grower grew");
    let top = &rep.top_growers[0];
    assert_eq!(top.service_id, Some(svc.id));
    assert!((top.change_pct.unwrap() - 200.0).abs() < 1e-6, "{top:?}");
    assert!((top.mem_avg.unwrap() / MIB - 300.0).abs() < 1e-6, "{top:?}");
    assert_eq!(top.cpu_avg, Some(25.0));
    assert_eq!(top.cpu_peak, Some(50.0));
    assert_eq!(top.hours, 6);
    expect_error(
        viewer.get("/api/v1/reports/capacity?month=2026-13").await,
        400,
    )
    .await;
    // An empty month is an empty report.
    let rep: CapacityReport = viewer.json("/api/v1/reports/capacity?month=2001-01").await;
    assert!(rep.rows.is_empty() && rep.top_growers.is_empty());

    // A service's history: 404 for none, 400 for a bad range.
    expect_error(viewer.get("/api/v1/services/999999/resources").await, 404).await;
    expect_error(
        viewer
            .get(&format!("/api/v1/services/{}/resources?range=year", svc.id))
            .await,
        400,
    )
    .await;
    let h: ResourceHistory = viewer
        .json(&format!(
            "/api/v1/services/{}/resources?range=month",
            svc.id
        ))
        .await;
    assert_eq!((h.resolution.as_str(), h.sample_interval_s), ("hour", None));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sampler_records_containers_and_the_host() {
    let Some(engine) = engine().await else { return };
    let server =
        TestServer::start_with(|s| s.resource_sample_interval = Some(Duration::from_secs(2))).await;
    let admin = server.user(Role::Admin).await;
    let viewer = server.user(Role::Viewer).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let mut stack = Stack::up(&engine, "res", &[]).await.expect("a stack");
    let busy = stack
        .add_script("busy", "while :; do :; done")
        .await
        .expect("busy container");
    let idle = stack
        .add_script("idle", "sleep 3600")
        .await
        .expect("idle container");
    let mut ids = Vec::new();
    for (name, c) in [("busy", &busy), ("idle", &idle)] {
        let s: Service = ok_json(
            admin
                .post(
                    "/api/v1/services",
                    &json!({"name": name, "container_name": c}),
                )
                .await,
            "service",
        )
        .await;
        ids.push(s.id);
    }
    // A written minute (a minute boundary and the next tick): the busy
    // loop shows about one core, the idle container almost nothing.
    let busy_h = poll(Duration::from_secs(150), "busy samples", async || {
        let h: ResourceHistory = viewer
            .json(&format!("/api/v1/services/{}/resources", ids[0]))
            .await;
        let has = h
            .series
            .first()
            .is_some_and(|s| s.points.iter().any(|p| p.samples >= 3));
        has.then(|| h.clone()).ok_or(format!("{h:?}"))
    })
    .await;
    assert_eq!(
        (busy_h.resolution.as_str(), busy_h.sample_interval_s),
        ("minute", Some(2))
    );
    let s = &busy_h.series[0];
    assert_eq!((s.kind.as_str(), s.label.as_str()), ("service", "busy"));
    let p = s
        .points
        .iter()
        .find(|p| p.samples >= 3)
        .expect("a full minute");
    let cpu = p.cpu_avg.expect("cpu");
    assert!(cpu > 40.0, "a busy loop is most of a core: {p:?}");
    assert!(p.cpu_max.unwrap() >= cpu);
    assert!(
        p.mem_avg.unwrap() > 0.0 && p.mem_limit.unwrap() > 0,
        "{p:?}"
    );
    let idle_h = poll(Duration::from_secs(30), "idle samples", async || {
        let h: ResourceHistory = viewer
            .json(&format!("/api/v1/services/{}/resources", ids[1]))
            .await;
        let has = h
            .series
            .first()
            .is_some_and(|s| s.points.iter().any(|p| p.samples >= 3));
        has.then(|| h.clone()).ok_or(format!("{h:?}"))
    })
    .await;
    let p = idle_h.series[0]
        .points
        .iter()
        .find(|p| p.samples >= 3)
        .expect("a full minute");
    assert!(p.cpu_avg.unwrap() < 5.0, "sleep is idle: {p:?}");
    assert!(p.mem_avg.unwrap() > 0.0, "{p:?}");

    // One row per series and minute; the hour table has the same samples.
    let (minute_rows, samples): (i64, i64) = sqlx::query_as(
        "SELECT count(*), sum(samples)::int8 FROM resource_rollups_minute r
         JOIN resource_series s ON s.id = r.series_id WHERE s.service_id = $1",
    )
    .bind(ids[0])
    .fetch_one(&server.pool)
    .await
    .unwrap();
    let hour_samples: i64 = sqlx::query_scalar(
        "SELECT sum(samples)::int8 FROM resource_rollups_hour r
         JOIN resource_series s ON s.id = r.series_id WHERE s.service_id = $1",
    )
    .bind(ids[0])
    .fetch_one(&server.pool)
    .await
    .unwrap();
    let minutes: i64 = sqlx::query_scalar(
        "SELECT count(DISTINCT bucket) FROM resource_rollups_minute r
         JOIN resource_series s ON s.id = r.series_id WHERE s.service_id = $1",
    )
    .bind(ids[0])
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(minute_rows, minutes, "one row per minute");
    assert_eq!(samples, hour_samples, "the hour rollup adds the minutes up");
    assert!(
        samples <= 31 * minute_rows,
        "at most a sample every 2 s: {samples}"
    );

    // The host: its own series, a mount with its disk, the engine's containers.
    let h: ResourceHistory = viewer.json("/api/v1/hosts/local/resources").await;
    let host = h
        .series
        .iter()
        .find(|s| s.kind == "host")
        .expect("host series");
    let p = host
        .points
        .iter()
        .find(|p| p.cpu_avg.is_some())
        .expect("host point");
    assert!(
        p.mem_avg.unwrap() > 0.0 && p.mem_limit.unwrap() > 0,
        "{p:?}"
    );
    let mount = h
        .series
        .iter()
        .find(|s| s.kind == "mount")
        .expect("a mount");
    let p = mount.points.last().expect("mount point");
    assert!(
        p.disk_used.unwrap() > 0 && p.disk_used.unwrap() <= p.disk_total.unwrap(),
        "{p:?}"
    );
    let e = h
        .series
        .iter()
        .find(|s| s.kind == "engine")
        .expect("engine series");
    assert_eq!(e.label, "engine main");
    let p = e
        .points
        .iter()
        .find(|p| p.samples >= 3)
        .expect("engine minute");
    assert!(
        p.cpu_avg.unwrap() > 40.0,
        "the engine's containers include the busy loop: {p:?}"
    );
    drop(stack);
    server.stop().await;
    release(engine).await;
}
