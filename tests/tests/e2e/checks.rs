//! Health checks against real targets: in-process HTTP/TCP servers that
//! answer, fail, stall, reset and hang; a TLS endpoint with a short-lived
//! certificate; the test Postgres cluster, MariaDB and Redis; containers on
//! the private engine. Flap damping, dependency-aware status, heartbeats,
//! rollups and retention, live status events, the public status page, the
//! daily report.
//!
//! Most checks here get a one-day interval and are driven with "Run now"
//! (the same recording path as scheduled probes), so each step is
//! deterministic; `the_scheduler_probes_on_its_own` covers the scheduler.

use std::time::Duration;

use opsdeck_e2e::flows::services::board;
use opsdeck_e2e::flows::services::create_service;
use opsdeck_e2e::mariadb::MariaDb;
use opsdeck_e2e::redis::Redis;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::tlscert::TlsTarget;
use opsdeck_e2e::util::{expect_error, ok_json, poll, sse_until};
use opsdeck_wire::{
    AuditPage, Check, CheckEngineStats, CheckHistory, CheckStatus, Overall, ProbeResult, Report,
    ReportSummary, Role, ServiceHealth, ServiceStatus, StatusBoard,
};
use serde_json::{json, Value};

const DAY: u32 = 86_400;

async fn add(api: &Api, body: Value) -> Check {
    ok_json(api.post("/api/v1/checks", &body).await, "create check").await
}

async fn run(api: &Api, id: i64) -> ProbeResult {
    ok_json(
        api.post(&format!("/api/v1/checks/{id}/run"), &json!({}))
            .await,
        "run check",
    )
    .await
}

async fn check(api: &Api, id: i64) -> Check {
    api.json(&format!("/api/v1/checks/{id}")).await
}

/// A service's health on the board (`Unknown` until the board knows it).
fn health(b: &StatusBoard, name: &str) -> ServiceHealth {
    b.services
        .iter()
        .find(|s| s.name == name)
        .map_or(ServiceHealth::Unknown, |s| s.health)
}

fn status_of<'a>(b: &'a StatusBoard, name: &str) -> &'a ServiceStatus {
    b.services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} on the board: {:#?}", b.services))
}

/// An HTTP check body with a one-day interval (driven by "Run now").
fn http(name: &str, url: &str, extra: Value) -> Value {
    let mut spec = json!({"kind": "http", "url": url});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    json!({"name": name, "spec": spec, "interval_s": DAY, "timeout_ms": 2000,
           "fail_after": 1, "recover_after": 1})
}

/// `PUT /api/v1/checks/settings` with these retention days and report time.
async fn put_settings(
    api: &Api,
    minute_days: u32,
    hour_days: u32,
    report_time: &str,
) -> reqwest::Response {
    let body = json!({"minute_retention_days": minute_days, "hour_retention_days": hour_days,
                      "event_retention_days": 400, "report_time": report_time});
    api.send(reqwest::Method::PUT, "/api/v1/checks/settings", &body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_checks_grade_answers_latency_and_failures() {
    let server = TestServer::start().await;
    let op = server.user(Role::Operator).await;
    let ok = Target::start(Behaviour::Ok("all good".into()));
    let err = Target::start(Behaviour::Status(500));
    let slow = Target::start(Behaviour::Slow(Duration::from_millis(700)));
    let reset = Target::start(Behaviour::Reset);
    let hang = Target::start(Behaviour::Hang);
    let redirect = Target::start(Behaviour::Redirect(format!("{}/", ok.url())));

    let cases: Vec<(Value, CheckStatus, &str)> = vec![
        (
            http("ok", &ok.url(), json!({"body_contains": "good"})),
            CheckStatus::Ok,
            "",
        ),
        (
            http("regex", &ok.url(), json!({"body_regex": "^all\\s+go+d$"})),
            CheckStatus::Ok,
            "",
        ),
        (
            http("body", &ok.url(), json!({"body_contains": "nope"})),
            CheckStatus::Critical,
            "nope",
        ),
        (
            http("500", &err.url(), json!({})),
            CheckStatus::Critical,
            "500",
        ),
        (
            http("500-expected", &err.url(), json!({"expect_status": [500]})),
            CheckStatus::Ok,
            "",
        ),
        (
            http(
                "slow",
                &slow.url(),
                json!({"warning_ms": 300, "critical_ms": 1500}),
            ),
            CheckStatus::Warning,
            "",
        ),
        (
            http(
                "slower",
                &slow.url(),
                json!({"warning_ms": 100, "critical_ms": 400}),
            ),
            CheckStatus::Critical,
            "",
        ),
        (
            http("reset", &reset.url(), json!({})),
            CheckStatus::Critical,
            "",
        ),
        (
            http("hang", &hang.url(), json!({})),
            CheckStatus::Critical,
            "timed out",
        ),
        (
            http(
                "redirect-kept",
                &redirect.url(),
                json!({"expect_status": [200]}),
            ),
            CheckStatus::Critical,
            "302",
        ),
        (
            http(
                "redirect-followed",
                &redirect.url(),
                json!({"max_redirects": 2}),
            ),
            CheckStatus::Ok,
            "",
        ),
    ];
    for (body, want, needle) in cases {
        let name = body["name"].as_str().unwrap().to_owned();
        let c = add(&op, body).await;
        let r = run(&op, c.id).await;
        assert_eq!(r.status, want, "{name}: {r:?}");
        assert!(
            r.message.contains(needle),
            "{name}: message {:?} names {needle:?}",
            r.message
        );
        let after = check(&op, c.id).await;
        assert_eq!(after.status, want, "{name}: settled from unknown at once");
        assert!(after.last.is_some());
    }
    assert!(
        hang.hits() >= 1 && reset.hits() >= 1,
        "the targets were really asked"
    );

    // Validation at the boundary: only http(s), sane thresholds, valid regex.
    for (body, needle) in [
        (http("f", "file:///etc/passwd", json!({})), "only http"),
        (http("g", "gopher://127.0.0.1/", json!({})), "only http"),
        (
            http("r", &ok.url(), json!({"body_regex": "("})),
            "body_regex",
        ),
        (
            http(
                "t",
                &ok.url(),
                json!({"warning_ms": 3000, "critical_ms": 1000}),
            ),
            "warning",
        ),
        (http("s", &ok.url(), json!({"expect_status": [999]})), "999"),
    ] {
        let msg = expect_error(op.post("/api/v1/checks", &body).await, 400).await;
        assert!(msg.contains(needle), "{msg}");
    }
    let mut fast = http("fast", &ok.url(), json!({}));
    fast["interval_s"] = json!(2);
    let msg = expect_error(op.post("/api/v1/checks", &fast).await, 400).await;
    assert!(msg.starts_with("interval_s"), "{msg}");
    let mut long = http("long", &ok.url(), json!({}));
    long["interval_s"] = json!(5);
    long["timeout_ms"] = json!(6000);
    let msg = expect_error(op.post("/api/v1/checks", &long).await, 400).await;
    assert!(msg.starts_with("timeout_ms"), "{msg}");
    let res = op
        .post("/api/v1/checks", &http("ok", &ok.url(), json!({})))
        .await;
    assert_eq!(res.status(), 409, "names are unique per service");

    // Every change is audited.
    let admin = server.user(Role::Admin).await;
    let audit: AuditPage = admin.json("/api/v1/audit?action=check.create").await;
    assert!(audit.entries.len() >= 11, "{}", audit.entries.len());
    let audit: AuditPage = admin.json("/api/v1/audit?action=check.run").await;
    assert!(!audit.entries.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flap_damping_and_dependency_aware_status() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let db = create_service(&admin, "postgres", "critical", &[]).await;
    let app = create_service(&admin, "gitea", "application", &["postgres"]).await;
    create_service(&admin, "woodpecker", "application", &["gitea"]).await;
    let db_t = Target::start(Behaviour::Ok("ok".into()));
    let app_t = Target::start(Behaviour::Ok("ok".into()));
    let mk = |sid: i64, port: u16| {
        json!({"service_id": sid, "name": "port", "interval_s": DAY, "timeout_ms": 2000,
               "fail_after": 3, "recover_after": 2,
               "spec": {"kind": "tcp", "host": "127.0.0.1", "port": port}})
    };
    let db_c = add(&op, mk(db.id, db_t.port())).await;
    let mut body = http("health", &app_t.url(), json!({}));
    body["service_id"] = json!(app.id);
    body["fail_after"] = json!(3);
    body["recover_after"] = json!(2);
    let app_c = add(&op, body).await;
    assert_eq!(run(&op, db_c.id).await.status, CheckStatus::Ok);
    assert_eq!(run(&op, app_c.id).await.status, CheckStatus::Ok);
    let b = poll(Duration::from_secs(10), "both operational", async || {
        let b = board(&viewer).await;
        (health(&b, "gitea") == ServiceHealth::Operational
            && health(&b, "postgres") == ServiceHealth::Operational
            && b.services.len() == 3)
            .then_some(b.clone())
            .ok_or(format!("{:?}", b.services))
    })
    .await;
    assert_eq!(b.overall, Overall::Operational);
    assert_eq!(
        status_of(&b, "woodpecker").health,
        ServiceHealth::Unknown,
        "no checks"
    );

    // The app fails: two failures are not enough (fail_after 3), a success resets.
    app_t.set(Behaviour::Status(503));
    for _ in 0..2 {
        assert_eq!(run(&op, app_c.id).await.status, CheckStatus::Critical);
    }
    assert_eq!(check(&op, app_c.id).await.status, CheckStatus::Ok, "damped");
    app_t.set(Behaviour::Ok("ok".into()));
    run(&op, app_c.id).await;
    app_t.set(Behaviour::Status(503));
    for _ in 0..2 {
        run(&op, app_c.id).await;
    }
    assert_eq!(
        check(&op, app_c.id).await.status,
        CheckStatus::Ok,
        "streak restarted"
    );
    run(&op, app_c.id).await;
    assert_eq!(
        check(&op, app_c.id).await.status,
        CheckStatus::Critical,
        "third in a row"
    );
    let b = poll(Duration::from_secs(10), "gitea down", async || {
        let b = board(&viewer).await;
        (health(&b, "gitea") == ServiceHealth::Down)
            .then_some(b.clone())
            .ok_or(format!("{:?}", b.services))
    })
    .await;
    assert_eq!(status_of(&b, "woodpecker").health, ServiceHealth::Impacted);
    assert_eq!(status_of(&b, "woodpecker").impacted_by, ["gitea"]);
    assert_eq!(
        b.overall,
        Overall::Degraded,
        "an application-tier root cause"
    );

    // Now the database goes down too: it is the root cause; gitea's own
    // failure becomes a symptom.
    drop(db_t);
    for _ in 0..3 {
        assert_eq!(run(&op, db_c.id).await.status, CheckStatus::Critical);
    }
    let b = poll(Duration::from_secs(10), "postgres root cause", async || {
        let b = board(&viewer).await;
        (health(&b, "postgres") == ServiceHealth::Down)
            .then_some(b.clone())
            .ok_or(format!("{:?}", b.services))
    })
    .await;
    let gitea = status_of(&b, "gitea");
    assert_eq!(gitea.health, ServiceHealth::Impacted, "{gitea:?}");
    assert_eq!(gitea.impacted_by, ["postgres"]);
    assert_eq!(status_of(&b, "woodpecker").impacted_by, ["postgres"]);
    assert_eq!(
        b.overall,
        Overall::Outage,
        "a critical-tier service is down"
    );
    assert!(
        b.counts.get("down") == Some(&1) && b.counts.get("impacted") == Some(&2),
        "{:?}",
        b.counts
    );

    // Recovery needs recover_after (2) successes.
    app_t.set(Behaviour::Ok("ok".into()));
    run(&op, app_c.id).await;
    assert_eq!(check(&op, app_c.id).await.status, CheckStatus::Critical);
    run(&op, app_c.id).await;
    assert_eq!(check(&op, app_c.id).await.status, CheckStatus::Ok);

    // The state changes are the history: ok → critical → ok.
    let want = [
        (CheckStatus::Unknown, CheckStatus::Ok),
        (CheckStatus::Ok, CheckStatus::Critical),
        (CheckStatus::Critical, CheckStatus::Ok),
    ];
    let events = poll(Duration::from_secs(10), "events written", async || {
        let h: CheckHistory = viewer
            .json(&format!("/api/v1/checks/{}/history", app_c.id))
            .await;
        let got: Vec<(CheckStatus, CheckStatus)> =
            h.events.iter().rev().map(|e| (e.from, e.to)).collect();
        (got == want)
            .then_some(h.events.clone())
            .ok_or(format!("{got:?}"))
    })
    .await;
    // Newest first: [recovered, failed, first result].
    assert!(events[1].message.contains("503"), "{:?}", events[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_received_and_missed() {
    let server = TestServer::start().await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let c = add(
        &op,
        json!({"name": "nightly backup", "interval_s": DAY, "timeout_ms": 1000,
               "spec": {"kind": "heartbeat", "period_s": 5, "grace_s": 0}}),
    )
    .await;
    let path = c.heartbeat_path.clone().expect("operators see the URL");
    assert!(
        path.starts_with("/api/v1/heartbeat/") && path.len() > 40,
        "{path}"
    );
    assert_eq!(
        (c.fail_after, c.recover_after),
        (1, 1),
        "heartbeat defaults"
    );
    let seen_by_viewer = check(&viewer, c.id).await;
    assert!(
        seen_by_viewer.heartbeat_path.is_none(),
        "viewers do not get the secret URL"
    );
    assert_eq!(
        run(&op, c.id).await.status,
        CheckStatus::Unknown,
        "waiting for the first ping"
    );

    // A plain GET from a cron job, no session, no JSON: accepted.
    let http = reqwest::Client::new();
    let res = http.get(server.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        check(&op, c.id).await.status,
        CheckStatus::Ok,
        "the ping settles it"
    );

    tokio::time::sleep(Duration::from_millis(5500)).await;
    let r = run(&op, c.id).await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(r.message.contains("no ping"), "{}", r.message);

    let res = http
        .post(server.url(&path))
        .body("done")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(check(&op, c.id).await.status, CheckStatus::Ok);

    let res = http
        .get(server.url("/api/v1/heartbeat/not-a-token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = http
        .get(server.url("/api/v1/heartbeat/bad%20token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_uptime_and_retention() {
    let server = TestServer::start().await;
    let op = server.user(Role::Operator).await;
    let admin = server.user(Role::Admin).await;
    let t = Target::start(Behaviour::Ok("ok".into()));
    let c = add(&op, http("web", &t.url(), json!({}))).await;
    for _ in 0..3 {
        run(&op, c.id).await;
    }
    t.set(Behaviour::Status(500));
    run(&op, c.id).await;
    server
        .state
        .health()
        .flush_rollups(true)
        .await
        .expect("flush");

    let row: (i64, i64, i64, i64) = sqlx::query_as(
        "SELECT sum(probes)::int8, sum(ok)::int8, sum(critical)::int8, sum(latency_count)::int8
         FROM check_rollups_minute WHERE check_id = $1",
    )
    .bind(c.id)
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(row.0, 4, "one rollup probe per run");
    assert_eq!((row.1, row.2), (3, 1));
    let hour: (i64, i64) = sqlx::query_as(
        "SELECT sum(probes)::int8, sum(ok)::int8 FROM check_rollups_hour WHERE check_id = $1",
    )
    .bind(c.id)
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(hour, (4, 3), "the hour holds the same probes");
    // A second flush of the same minute adds up instead of overwriting.
    run(&op, c.id).await;
    server
        .state
        .health()
        .flush_rollups(true)
        .await
        .expect("flush");
    let hour: (i64,) =
        sqlx::query_as("SELECT sum(probes)::int8 FROM check_rollups_hour WHERE check_id = $1")
            .bind(c.id)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(hour.0, 5);

    let h: CheckHistory = op
        .json(&format!("/api/v1/checks/{}/history?range=day", c.id))
        .await;
    assert_eq!(h.resolution, "minute");
    assert_eq!(h.rollups.iter().map(|r| r.probes).sum::<u32>(), 5);
    assert!(h.rollups.iter().any(|r| r.latency_avg_ms.is_some()));
    let day = h.uptime.day.expect("uptime over 24 h");
    assert!((day - 60.0).abs() < 0.01, "3 good of 5: {day}");
    let week: CheckHistory = op
        .json(&format!("/api/v1/checks/{}/history?range=week", c.id))
        .await;
    assert_eq!(week.resolution, "hour");
    let res = op
        .get(&format!("/api/v1/checks/{}/history?range=year", c.id))
        .await;
    expect_error(res, 400).await;

    // Retention: rows older than the settings go, recent ones stay.
    let old = chrono::Utc::now() - chrono::TimeDelta::days(10);
    sqlx::query("INSERT INTO check_rollups_minute (check_id, bucket, probes, ok, warning, critical) VALUES ($1, $2, 1, 1, 0, 0)")
        .bind(c.id)
        .bind(old)
        .execute(&server.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO check_rollups_hour (check_id, bucket, probes, ok, warning, critical) VALUES ($1, $2, 1, 1, 0, 0)")
        .bind(c.id)
        .bind(old - chrono::TimeDelta::days(30))
        .execute(&server.pool)
        .await
        .unwrap();
    ok_json::<Value>(put_settings(&admin, 2, 30, "06:30").await, "settings").await;
    let pruned = opsdeck::checks::prune(&server.pool).await.unwrap();
    assert_eq!(pruned, 2);
    let left: (i64,) =
        sqlx::query_as("SELECT count(*) FROM check_rollups_minute WHERE check_id = $1")
            .bind(c.id)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert!(left.0 >= 1, "recent minutes kept");
    expect_error(put_settings(&admin, 0, 30, "06:30").await, 400).await;
    expect_error(put_settings(&admin, 2, 30, "25:00").await, 400).await;
}

/// The test cluster listens on a Unix socket only, and Postgres checks
/// refuse sockets (a local socket could mean trust authentication as the
/// panel's own user): a loopback TCP port that forwards to the socket.
async fn pg_over_tcp() -> u16 {
    let socket = opsdeck_e2e::pg::cluster_dir().join("run/.s.PGSQL.5432");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = listener.accept().await {
            let socket = socket.clone();
            tokio::spawn(async move {
                if let Ok(mut unix) = tokio::net::UnixStream::connect(&socket).await {
                    let _ = tokio::io::copy_bidirectional(&mut tcp, &mut unix).await;
                }
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_checks_against_real_servers() {
    let Ok(maria) = tokio::task::spawn_blocking(MariaDb::shared).await.unwrap() else {
        return;
    };
    let Ok(redis) = tokio::task::spawn_blocking(Redis::shared).await.unwrap() else {
        return;
    };
    let server = TestServer::start().await;
    let op = server.user(Role::Operator).await;
    let db = |name: &str, spec: Value, password: Option<&str>| json!({"name": name, "interval_s": DAY, "timeout_ms": 5000, "spec": spec, "password": password});

    // Postgres: the test cluster itself.
    let pg_url = format!(
        "postgres://opsdeck@127.0.0.1:{}/{}",
        pg_over_tcp().await,
        server.database
    );
    let pg = add(
        &op,
        db("pg", json!({"kind": "postgres", "url": pg_url}), None),
    )
    .await;
    let r = run(&op, pg.id).await;
    assert_eq!(r.status, CheckStatus::Ok, "{r:?}");
    let m = |r: &ProbeResult, n: &str| r.metrics.iter().find(|m| m.name == n).map(|m| m.value);
    let pct = m(&r, "connections_pct").expect("connections_pct");
    assert!(pct > 0.0 && pct < 100.0, "{pct}");
    assert!(m(&r, "cache_hit_pct").is_some(), "{r:?}");
    let low = add(
        &op,
        db(
            "pg-low",
            json!({"kind": "postgres", "url": pg_url,
                             "connections_warning_pct": 0.01, "connections_critical_pct": 99.0}),
            None,
        ),
    )
    .await;
    assert_eq!(run(&op, low.id).await.status, CheckStatus::Warning);
    let gone = add(
        &op,
        db(
            "pg-gone",
            json!({"kind": "postgres", "url": "postgres://x@127.0.0.1:1/db"}),
            None,
        ),
    )
    .await;
    assert_eq!(run(&op, gone.id).await.status, CheckStatus::Critical);
    let msg = expect_error(
        op.post(
            "/api/v1/checks",
            &db(
                "pw",
                json!({"kind": "postgres", "url": "postgres://u:secret@h/db"}),
                None,
            ),
        )
        .await,
        400,
    )
    .await;
    assert!(
        msg.contains("password field") && !msg.contains("secret"),
        "{msg}"
    );

    // MariaDB: Threads_connected against thresholds, with the password.
    let my = add(
        &op,
        db(
            "maria",
            json!({"kind": "mysql", "url": maria.url()}),
            Some(maria.password()),
        ),
    )
    .await;
    assert!(my.has_password);
    let r = run(&op, my.id).await;
    assert_eq!(r.status, CheckStatus::Ok, "{r:?}");
    let threads = m(&r, "threads_connected").expect("threads_connected");
    assert!(threads >= 1.0);
    let busy = add(
        &op,
        db("maria-busy", json!({"kind": "mysql", "url": maria.url(), "threads_warning": 1, "threads_critical": 500}),
           Some(maria.password())),
    )
    .await;
    assert_eq!(run(&op, busy.id).await.status, CheckStatus::Warning);
    let wrong = add(
        &op,
        db(
            "maria-wrong",
            json!({"kind": "mysql", "url": maria.url()}),
            Some("nope"),
        ),
    )
    .await;
    let r = run(&op, wrong.id).await;
    assert_eq!(r.status, CheckStatus::Critical);
    assert!(
        !r.message.contains("nope"),
        "no password in messages: {}",
        r.message
    );
    // The password never comes back.
    let listed: Value = op.json("/api/v1/checks").await;
    assert!(
        !listed.to_string().contains(maria.password()),
        "password leaked in the list"
    );

    // Redis: PING and memory, with and without the password.
    let rd = add(
        &op,
        db(
            "redis",
            json!({"kind": "redis", "url": redis.url()}),
            redis.password(),
        ),
    )
    .await;
    let r = run(&op, rd.id).await;
    assert_eq!(r.status, CheckStatus::Ok, "{r:?}");
    assert!(m(&r, "used_memory_mb").is_some(), "{r:?}");
    let noauth = add(
        &op,
        db(
            "redis-noauth",
            json!({"kind": "redis", "url": redis.url()}),
            None,
        ),
    )
    .await;
    assert_eq!(run(&op, noauth.id).await.status, CheckStatus::Critical);
    // Removing the password (empty string) is an explicit change.
    let res = op
        .patch(
            &format!("/api/v1/checks/{}", rd.id),
            &json!({"password": ""}),
        )
        .await;
    let c: Check = ok_json(res, "remove password").await;
    assert!(!c.has_password);
    assert_eq!(run(&op, rd.id).await.status, CheckStatus::Critical);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificate_expiry() {
    let server = TestServer::start().await;
    let op = server.user(Role::Operator).await;
    for (days, want) in [
        (3, CheckStatus::Critical),
        (20, CheckStatus::Warning),
        (90, CheckStatus::Ok),
        (-2, CheckStatus::Critical),
    ] {
        let t = TlsTarget::start(days);
        let c = add(
            &op,
            json!({"name": format!("cert {days}"), "interval_s": DAY, "timeout_ms": 3000,
                   "spec": {"kind": "tls", "host": "127.0.0.1", "port": t.port(), "server_name": "localhost"}}),
        )
        .await;
        let r = run(&op, c.id).await;
        assert_eq!(r.status, want, "{days} days: {r:?}");
        let left = r
            .metrics
            .iter()
            .find(|m| m.name == "days_left")
            .map(|m| m.value)
            .expect("days_left");
        assert!((left - days as f64).abs() <= 1.0, "{days}: {left}");
        // An HTTPS check of the same endpoint: verification on refuses the
        // self-signed certificate, off accepts it.
        let on = add(&op, http(&format!("https on {days}"), &t.url(), json!({}))).await;
        assert_eq!(run(&op, on.id).await.status, CheckStatus::Critical);
        if days > 0 {
            let off = add(
                &op,
                http(
                    &format!("https off {days}"),
                    &t.url(),
                    json!({"tls_verify": false}),
                ),
            )
            .await;
            assert_eq!(run(&op, off.id).await.status, CheckStatus::Ok);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduler_probes_on_its_own_and_pushes_changes() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let svc = create_service(&admin, "bookstack", "application", &[]).await;
    let t = Target::start(Behaviour::Ok("ok".into()));
    let c = add(
        &op,
        json!({"service_id": svc.id, "name": "http", "interval_s": 5, "timeout_ms": 1000,
               "fail_after": 1, "recover_after": 1, "spec": {"kind": "http", "url": t.url()}}),
    )
    .await;
    poll(Duration::from_secs(20), "scheduled probes", async || {
        let c = check(&viewer, c.id).await;
        (c.status == CheckStatus::Ok && t.hits() >= 1)
            .then_some(())
            .ok_or(format!("{:?} hits {}", c.status, t.hits()))
    })
    .await;

    // A viewer's event stream sees the service go down without asking.
    let events = viewer.get("/api/v1/status/events").await;
    assert_eq!(events.status(), 200);
    t.set(Behaviour::Status(500));
    let (_, data) = sse_until(
        events,
        Duration::from_secs(20),
        "bookstack down",
        |ev, data| ev == "status" && data.contains("\"bookstack\"") && data.contains("\"down\""),
    )
    .await;
    let change: opsdeck_wire::StatusChange = serde_json::from_str(&data).unwrap();
    assert_eq!(change.services[0].health, ServiceHealth::Down);
    assert!(
        change.services[0].problems[0].contains("500"),
        "{:?}",
        change.services[0].problems
    );

    let stats: CheckEngineStats = admin.json("/api/v1/checks/engine").await;
    assert!(stats.leader, "the only instance holds the lease");
    assert!(stats.probes_total >= 2, "{stats:?}");
    assert!(
        stats.lag_max_ms >= 0.0 && stats.lag_p99_ms <= stats.lag_max_ms,
        "{stats:?}"
    );
    assert!(stats.events_written >= 2, "{stats:?}");

    // Disabled: no more probes.
    let res = op
        .patch(
            &format!("/api/v1/checks/{}", c.id),
            &json!({"enabled": false}),
        )
        .await;
    ok_json::<Check>(res, "disable").await;
    let hits = t.hits();
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(
        t.hits() <= hits + 1,
        "a disabled check is not probed ({} → {})",
        hits,
        t.hits()
    );
    let b = board(&viewer).await;
    assert_eq!(
        status_of(&b, "bookstack").health,
        ServiceHealth::Unknown,
        "no enabled check"
    );

    // Deleting the service deletes its checks.
    let res = admin.delete(&format!("/api/v1/services/{}", svc.id)).await;
    assert!(res.status().is_success(), "{}", res.status());
    let res = viewer.get(&format!("/api/v1/checks/{}", c.id)).await;
    assert_eq!(res.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_status_page_shows_opted_in_services_only() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let public = create_service(&admin, "gitea-internal", "application", &[]).await;
    let private = create_service(&admin, "secret-admin-tool", "support", &[]).await;
    let failing = Target::start(Behaviour::Status(500));
    for (svc, name) in [(&public, "probe-gitea"), (&private, "probe-private")] {
        let mut body = http(
            name,
            &format!("{}/internal/path?token=abc", failing.url()),
            json!({}),
        );
        body["service_id"] = json!(svc.id);
        let c = add(&op, body).await;
        run(&op, c.id).await;
    }
    let res = op
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/services/{}/public", public.id),
            &json!({"public": true, "public_name": "Git <script>alert(1)</script>"}),
        )
        .await;
    let st: ServiceStatus = ok_json(res, "publish").await;
    assert!(st.public);
    let anon = reqwest::Client::new();
    let html = poll(
        Duration::from_secs(10),
        "public page shows the outage",
        async || {
            let res = anon
                .get(server.url("/status"))
                .send()
                .await
                .map_err(|e| e.to_string())?;
            let ct = res
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap_or("").to_owned());
            let html = res.text().await.map_err(|e| e.to_string())?;
            (ct.as_deref() == Some("text/html; charset=utf-8") && html.contains("Outage"))
                .then_some(html.clone())
                .ok_or(html)
        },
    )
    .await;
    assert!(
        html.contains("Git &#60;script&#62;alert(1)&#60;/script&#62;")
            || html.contains("Git &lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped public name: {html}"
    );
    assert!(!html.contains("<script>"), "no markup from names");
    assert!(html.contains("Some systems are down"));
    for leak in [
        "gitea-internal",
        "secret-admin-tool",
        "probe-gitea",
        "probe-private",
        "127.0.0.1",
        "/internal/path",
        "token=abc",
        "500",
        "HTTP",
    ] {
        assert!(
            !html.contains(leak),
            "the public page leaks {leak:?}: {html}"
        );
    }
    let audit: AuditPage = admin.json("/api/v1/audit?action=service.public").await;
    assert_eq!(audit.entries.len(), 1);
    // Unpublished: gone from the page.
    let res = op
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/services/{}/public", public.id),
            &json!({"public": false}),
        )
        .await;
    ok_json::<ServiceStatus>(res, "unpublish").await;
    let html = anon
        .get(server.url("/status"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("No services are published"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daily_report_on_schedule_and_on_demand() {
    let server = TestServer::start_with(|s| s.daily_report = true).await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let svc = create_service(&admin, "wiki", "application", &[]).await;
    let t = Target::start(Behaviour::Status(502));
    let mut body = http("health", &t.url(), json!({}));
    body["service_id"] = json!(svc.id);
    let c = add(&op, body).await;
    run(&op, c.id).await;
    add(
        &op,
        json!({"name": "pg", "interval_s": DAY, "timeout_ms": 5000,
                    "spec": {"kind": "postgres", "url": format!("postgres://opsdeck@127.0.0.1:{}/{}", pg_over_tcp().await, server.database)}}),
    )
    .await;

    let res = op.post("/api/v1/reports", &json!({})).await;
    let report: Report = ok_json(res, "generate").await;
    assert_eq!(report.trigger, "operator-user");
    let sections: std::collections::BTreeSet<&str> =
        report.items.iter().map(|i| i.section.as_str()).collect();
    for s in [
        "containers",
        "disk",
        "memory",
        "db_connections",
        "service_health",
        "backups",
    ] {
        assert!(sections.contains(s), "section {s}: {sections:?}");
    }
    let wiki = report
        .items
        .iter()
        .find(|i| i.name == "wiki")
        .expect("wiki in the report");
    assert_eq!(wiki.status, CheckStatus::Critical);
    assert_eq!(report.overall, CheckStatus::Critical);
    let disk = report.items.iter().find(|i| i.section == "disk").unwrap();
    assert!(disk.detail.contains('%'), "{disk:?}");

    // The schedule: a report time already passed today writes today's
    // report at the next minute tick, once.
    ok_json::<Value>(put_settings(&admin, 2, 400, "00:00").await, "settings").await;
    let list = poll(Duration::from_secs(75), "scheduled report", async || {
        let list: Vec<ReportSummary> = viewer.json("/api/v1/reports").await;
        list.iter()
            .any(|r| r.trigger == "schedule")
            .then_some(list.clone())
            .ok_or(format!("{list:?}"))
    })
    .await;
    assert_eq!(list.iter().filter(|r| r.trigger == "schedule").count(), 1);
    let one: Report = viewer
        .json(&format!("/api/v1/reports/{}", list[0].id))
        .await;
    assert!(!one.items.is_empty());
    assert!(
        opsdeck::checks::report::scheduled_tick(&server.state)
            .await
            .is_ok_and(|wrote| !wrote),
        "once a day"
    );
    let audit: AuditPage = admin.json("/api/v1/audit?action=report.generate").await;
    assert_eq!(audit.entries.len(), 2, "manual and scheduled");
}
