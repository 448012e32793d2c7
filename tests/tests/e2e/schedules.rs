//! Cron schedules: the API (validation at the boundary, roles, audit), the
//! preview, the tick driven with a chosen `now` (exactly one run per
//! occurrence, missed ticks skipped or caught up, refused runs settle the
//! tick), and two real `opsdeck serve` processes on one database ticking a
//! per-second schedule: exactly one run per tick.
//!
//! The in-process servers run with the ticker off (`settings.schedules =
//! false`) so only the test's `tick` calls act; the two-process test uses
//! the real ticker and reads the database directly.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use opsdeck::runbooks::schedules::tick;
use opsdeck_e2e::pg;
use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::server::{Api, TestServer, PASSWORD};
use opsdeck_e2e::util::{expect_error, ok_json};
use opsdeck_wire::{AuditPage, CronPreview, Outcome, Role, Runbook, Schedule};
use reqwest::Method;
use serde_json::{json, Value};
use sqlx::PgPool;

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}

async fn quiet_server() -> TestServer {
    TestServer::start_with(|s| s.schedules = false).await
}

async fn runbook(admin: &Api, yaml: &str) -> Runbook {
    ok_json(
        admin
            .post("/api/v1/runbooks", &json!({ "yaml": yaml }))
            .await,
        "create runbook",
    )
    .await
}

/// A parallel-safe runbook with one short step.
const NAP: &str = r#"
name: nap
title: A short nap
allow_parallel: true
steps:
  - name: nap
    kind: sleep
    duration: 100ms
"#;

/// A runbook about one service, one run per service at a time, parked on
/// a manual step (its run stays active).
const PER_SERVICE: &str = r#"
name: per-service
title: Look at a service
params:
  - name: service
    type: service
target_param: service
steps:
  - name: look
    kind: manual
    instructions: "Look at {{params.service}}"
"#;

async fn create_schedule(admin: &Api, body: Value) -> Schedule {
    let res = admin.post("/api/v1/schedules", &body).await;
    assert_eq!(res.status(), 201, "create schedule {body}");
    ok_json(res, "create schedule").await
}

async fn put_schedule(api: &Api, id: i64, body: &Value) -> reqwest::Response {
    api.send(Method::PUT, &format!("/api/v1/schedules/{id}"), body)
        .await
}

async fn set_checked_until(pool: &PgPool, id: i64, t: DateTime<Utc>) {
    sqlx::query("UPDATE schedules SET checked_until = $2 WHERE id = $1")
        .bind(id)
        .bind(t)
        .execute(pool)
        .await
        .unwrap();
}

async fn checked_until(pool: &PgPool, id: i64) -> DateTime<Utc> {
    sqlx::query_scalar("SELECT checked_until FROM schedules WHERE id = $1")
        .bind(id)
        .fetch_one(pool)
        .await
        .unwrap()
}

/// (id, reason, requested_by) of the schedule's runs, oldest first.
async fn runs_of(pool: &PgPool, schedule: i64) -> Vec<(i64, String, String)> {
    sqlx::query_as("SELECT id, reason, requested_by FROM runs WHERE schedule_id = $1 ORDER BY id")
        .bind(schedule)
        .fetch_all(pool)
        .await
        .unwrap()
}

/// (tick_at, run_id, claimed_by, outcome) of the schedule's ticks.
async fn ticks_of(
    pool: &PgPool,
    schedule: i64,
) -> Vec<(DateTime<Utc>, Option<i64>, String, String)> {
    sqlx::query_as(
        "SELECT tick_at, run_id, claimed_by, outcome FROM schedule_ticks
         WHERE schedule_id = $1 ORDER BY tick_at",
    )
    .bind(schedule)
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn audit(admin: &Api, action: &str) -> AuditPage {
    admin
        .json(&format!("/api/v1/audit?action={action}&limit=200"))
        .await
}

#[tokio::test]
async fn crud_is_validated_admin_only_and_audited() {
    let s = quiet_server().await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let _: Value = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "web", "tier": "application", "requires": []}),
            )
            .await,
        "create service",
    )
    .await;
    let rb = runbook(&admin, PER_SERVICE).await;
    let good = json!({
        "runbook_id": rb.id, "name": "Wednesday look at web", "cron": "0 22 * * 3",
        "timezone": "Europe/Berlin", "params": {"service": "web"},
    });
    let before = Utc::now();
    let created = create_schedule(&admin, good.clone()).await;
    assert_eq!(created.runbook, "per-service");
    assert_eq!(created.timezone, "Europe/Berlin");
    assert!(created.enabled, "enabled by default");
    assert_eq!(created.missed, opsdeck_wire::MissedPolicy::Skip);
    assert_eq!(created.params.get("service"), Some(&json!("web")));
    assert_eq!(created.next_runs.len(), 5);
    assert!(created.next_runs.windows(2).all(|w| w[0] < w[1]));
    for n in &created.next_runs {
        // 22:00 in Berlin: 21:00 UTC in winter, 20:00 in summer.
        assert_eq!(n.weekday(), chrono::Weekday::Wed, "{n}");
        assert!(matches!(n.hour(), 20 | 21) && n.minute() == 0, "{n}");
    }
    assert!(created.last_tick_at.is_none() && created.last_run_id.is_none());
    // No catch-up for time before the schedule existed.
    let cu = checked_until(&s.pool, created.id).await;
    assert!(
        cu >= before - chrono::TimeDelta::seconds(1),
        "{cu} vs {before}"
    );

    // The name is unique.
    let msg = expect_error(admin.post("/api/v1/schedules", &good).await, 409).await;
    assert!(msg.contains("name"), "{msg}");

    // Validation at the boundary, naming the field.
    let with = |patch: Value| {
        let mut body = good.clone();
        body["name"] = json!("another");
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    for (patch, field) in [
        (json!({"cron": "61 * * * *"}), "cron:"),
        (json!({"cron": "* * *"}), "cron:"),
        (json!({"cron": "* * * * * * *"}), "cron:"),
        (json!({"cron": "0 0 30 2 *"}), "cron:"),
        (json!({"cron": ""}), "cron:"),
        (json!({"timezone": "Mars/Olympus_Mons"}), "timezone:"),
        (json!({"timezone": "Europe/Berlin; rm -rf /"}), "timezone:"),
        (json!({"runbook_id": 987_654}), "runbook_id:"),
        (json!({"params": {"service": "x; rm -rf /"}}), "service"),
        (json!({"params": {"service": "$(id)"}}), "service"),
        (
            json!({"params": {"service": "'; DROP TABLE users; --"}}),
            "service",
        ),
        (
            json!({"params": {"service": "../../etc/passwd"}}),
            "service",
        ),
        (json!({"params": {}}), "service: required"),
        (json!({"params": {"service": "web", "extra": 1}}), "extra"),
        (json!({"name": ""}), "name:"),
        (json!({"name": "x".repeat(101)}), "name:"),
    ] {
        let body = with(patch.clone());
        let msg = expect_error(admin.post("/api/v1/schedules", &body).await, 400).await;
        assert!(msg.contains(field), "{patch}: {msg}");
        if field == "service" {
            assert!(msg.starts_with("params:"), "{patch}: {msg}");
        }
    }
    let msg = expect_error(
        admin
            .post("/api/v1/schedules", &with(json!({"missed": "sometimes"})))
            .await,
        400,
    )
    .await;
    assert!(msg.contains("missed"), "{msg}");
    // Nothing of that was stored.
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM schedules")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(n, 1);

    // Viewers read; only admins write.
    let list: Vec<Schedule> = viewer.json("/api/v1/schedules").await;
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].name, "Wednesday look at web");
    let one: Schedule = viewer
        .json(&format!("/api/v1/schedules/{}", created.id))
        .await;
    assert_eq!(one.id, created.id);
    for api in [&viewer, &operator] {
        let body = with(json!({}));
        expect_error(api.post("/api/v1/schedules", &body).await, 403).await;
        expect_error(put_schedule(api, created.id, &good).await, 403).await;
        expect_error(
            api.delete(&format!("/api/v1/schedules/{}", created.id))
                .await,
            403,
        )
        .await;
    }
    expect_error(admin.get("/api/v1/schedules/987654").await, 404).await;
    expect_error(put_schedule(&admin, 987_654, &good).await, 404).await;

    // Disable: no next runs. Re-enable: the timetable restarts now.
    let mut body = good.clone();
    body["enabled"] = json!(false);
    body["missed"] = json!("catch_up");
    let off: Schedule = ok_json(put_schedule(&admin, created.id, &body).await, "disable").await;
    assert!(!off.enabled && off.next_runs.is_empty());
    assert_eq!(off.missed, opsdeck_wire::MissedPolicy::CatchUp);
    let long_ago = at("2020-01-01T00:00:00Z");
    set_checked_until(&s.pool, created.id, long_ago).await;
    body["enabled"] = json!(true);
    let before = Utc::now();
    let on: Schedule = ok_json(put_schedule(&admin, created.id, &body).await, "enable").await;
    assert!(on.enabled && on.next_runs.len() == 5);
    let cu = checked_until(&s.pool, created.id).await;
    assert!(cu >= before - chrono::TimeDelta::seconds(1), "{cu}");
    // An update that keeps the timetable keeps checked_until.
    set_checked_until(&s.pool, created.id, long_ago).await;
    body["name"] = json!("Wednesday look");
    let renamed: Schedule = ok_json(put_schedule(&admin, created.id, &body).await, "rename").await;
    assert_eq!(renamed.name, "Wednesday look");
    assert_eq!(checked_until(&s.pool, created.id).await, long_ago);
    // Another schedule cannot take the name.
    let other = create_schedule(&admin, with(json!({"name": "other"}))).await;
    let msg = expect_error(put_schedule(&admin, other.id, &body).await, 409).await;
    assert!(msg.contains("name"), "{msg}");

    // Delete.
    let res = admin
        .delete(&format!("/api/v1/schedules/{}", created.id))
        .await;
    assert_eq!(res.status(), 204);
    expect_error(
        admin
            .get(&format!("/api/v1/schedules/{}", created.id))
            .await,
        404,
    )
    .await;
    expect_error(
        admin
            .delete(&format!("/api/v1/schedules/{}", created.id))
            .await,
        404,
    )
    .await;

    // Every change is audited by the admin; refusals are recorded too.
    for (action, n) in [
        ("schedule.create", 2),
        ("schedule.update", 3),
        ("schedule.delete", 1),
    ] {
        let page = audit(&admin, action).await;
        assert_eq!(page.entries.len(), n, "{action}");
        assert!(page
            .entries
            .iter()
            .all(|e| e.actor == "admin-user" && e.outcome == Outcome::Success));
    }
    let page = audit(&admin, "schedule.create").await;
    assert!(page
        .entries
        .iter()
        .any(|e| e.params["cron"] == "0 22 * * 3" && e.params["timezone"] == "Europe/Berlin"));
    let denied = audit(&admin, "request.denied").await;
    assert!(denied.entries.len() >= 6, "{}", denied.entries.len());
    let unaudited = audit(&admin, "request.unaudited").await;
    assert!(unaudited.entries.is_empty(), "{:?}", unaudited.entries);
    s.stop().await;
}

#[tokio::test]
async fn preview_follows_the_zone() {
    let s = quiet_server().await;
    let viewer = s.user(Role::Viewer).await;
    let preview = |cron: &str, tz: Option<&str>| {
        let mut q = vec![("cron", cron.to_owned())];
        if let Some(tz) = tz {
            q.push(("timezone", tz.to_owned()));
        }
        viewer
            .client
            .get(format!("{}/api/v1/schedules/preview", viewer.base))
            .query(&q)
            .send()
    };
    let p: CronPreview = ok_json(
        preview("0 22 * * 3", Some("Europe/Berlin")).await.unwrap(),
        "preview",
    )
    .await;
    assert_eq!(p.next_runs.len(), 5);
    assert_eq!(p.local.len(), 5);
    assert!(p.next_runs.windows(2).all(|w| w[0] < w[1]));
    for (n, local) in p.next_runs.iter().zip(&p.local) {
        // 22:00 in Berlin is 21:00 UTC in winter (CET), 20:00 in summer.
        assert_eq!(n.weekday(), chrono::Weekday::Wed, "{n}");
        assert!(matches!(n.hour(), 20 | 21) && n.minute() == 0, "{n}");
        let day = n.format("%Y-%m-%d").to_string();
        assert_eq!(local, &format!("Wed {day} 22:00 Europe/Berlin"));
    }
    // Seconds first when there are six fields; every second really is every second.
    let p: CronPreview = ok_json(preview("* * * * * *", None).await.unwrap(), "preview").await;
    let gaps: Vec<i64> = p
        .next_runs
        .windows(2)
        .map(|w| (w[1] - w[0]).num_seconds())
        .collect();
    assert_eq!(gaps, [1, 1, 1, 1], "{:?}", p.next_runs);
    assert!(p.local[0].ends_with(" UTC") && p.local[0].matches(':').count() == 2);
    let p: CronPreview = ok_json(
        preview("*/15 30 4 * * *", Some("UTC")).await.unwrap(),
        "preview",
    )
    .await;
    assert!(p
        .next_runs
        .iter()
        .all(|n| n.hour() == 4 && n.minute() == 30 && n.second() % 15 == 0));
    // Bad input: 400 naming the field.
    for (cron, tz, field) in [
        ("61 * * * *", None, "cron:"),
        ("every day", None, "cron:"),
        ("0 0 30 2 *", None, "cron:"),
        ("0 22 * * 3", Some("Europe/Nowhere"), "timezone:"),
    ] {
        let msg = expect_error(preview(cron, tz).await.unwrap(), 400).await;
        assert!(msg.starts_with(field), "{cron} {tz:?}: {msg}");
    }
    let res = viewer.get("/api/v1/schedules/preview").await;
    assert_eq!(res.status(), 400, "cron is required");
    // Anonymous: 401.
    let res = reqwest::get(s.url("/api/v1/schedules/preview?cron=*+*+*+*+*"))
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    s.stop().await;
}

#[tokio::test]
async fn tick_runs_each_occurrence_once() {
    let s = quiet_server().await;
    let admin = s.user(Role::Admin).await;
    let rb = runbook(&admin, NAP).await;
    let sched = create_schedule(
        &admin,
        json!({"runbook_id": rb.id, "name": "nightly nap", "cron": "0 3 * * *"}),
    )
    .await;
    set_checked_until(&s.pool, sched.id, at("2030-01-01T00:00:00Z")).await;

    // Before the occurrence: nothing.
    assert_eq!(tick(&s.state, at("2030-01-01T02:59:59Z")).await.unwrap(), 0);
    assert!(runs_of(&s.pool, sched.id).await.is_empty());
    // Seven seconds after it: one run.
    let now = at("2030-01-01T03:00:07Z");
    assert_eq!(tick(&s.state, now).await.unwrap(), 1);
    let runs = runs_of(&s.pool, sched.id).await;
    assert_eq!(runs.len(), 1);
    let (run, reason, by) = &runs[0];
    assert_eq!(by, "schedule:nightly nap");
    assert_eq!(
        reason,
        "scheduled: nightly nap (0 3 * * * UTC) tick 2030-01-01 03:00:00Z"
    );
    let ticks = ticks_of(&s.pool, sched.id).await;
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0].0, at("2030-01-01T03:00:00Z"));
    assert_eq!(ticks[0].1, Some(*run));
    assert_eq!(ticks[0].2, s.state.runs().owner());
    assert_eq!(ticks[0].3, "started");
    assert_eq!(checked_until(&s.pool, sched.id).await, now);

    // The same now again: settled, nothing new.
    assert_eq!(tick(&s.state, now).await.unwrap(), 0);
    // Even if the settled mark went back, the claim holds.
    set_checked_until(&s.pool, sched.id, at("2030-01-01T00:00:00Z")).await;
    assert_eq!(tick(&s.state, now).await.unwrap(), 0);
    assert_eq!(runs_of(&s.pool, sched.id).await.len(), 1);

    // Concurrent ticks for the next occurrence: one run between them.
    let next = at("2030-01-02T03:00:01Z");
    let started: Vec<u32> =
        futures::future::join_all((0..6).map(|_| async { tick(&s.state, next).await.unwrap() }))
            .await;
    assert_eq!(started.iter().sum::<u32>(), 1, "{started:?}");
    assert_eq!(runs_of(&s.pool, sched.id).await.len(), 2);

    // The list shows the last tick and run.
    let list: Vec<Schedule> = admin.json("/api/v1/schedules").await;
    let me = list.iter().find(|x| x.id == sched.id).unwrap();
    assert_eq!(me.last_tick_at, Some(at("2030-01-02T03:00:00Z")));
    assert_eq!(me.last_run_id, Some(runs_of(&s.pool, sched.id).await[1].0));
    assert!(me.last_run_status.is_some());

    // Each started run is audited as the schedule's system actor.
    let page = audit(&admin, "schedule.run").await;
    assert_eq!(page.entries.len(), 2);
    assert!(page
        .entries
        .iter()
        .all(|e| e.actor == "schedule:nightly nap" && e.actor_kind == "system"));
    s.stop().await;
}

#[tokio::test]
async fn missed_ticks_are_skipped_or_caught_up_once() {
    let s = quiet_server().await;
    let admin = s.user(Role::Admin).await;
    let rb = runbook(&admin, NAP).await;
    let skip = create_schedule(
        &admin,
        json!({"runbook_id": rb.id, "name": "skipper", "cron": "0 3 * * *", "missed": "skip"}),
    )
    .await;
    let catch = create_schedule(
        &admin,
        json!({"runbook_id": rb.id, "name": "catcher", "cron": "0 3 * * *",
               "timezone": "Europe/Berlin", "missed": "catch_up"}),
    )
    .await;
    // Down from 1 February to 10 February noon: ten 03:00s passed.
    for id in [skip.id, catch.id] {
        set_checked_until(&s.pool, id, at("2030-02-01T00:00:00Z")).await;
    }
    let now = at("2030-02-10T12:00:00Z");
    assert_eq!(tick(&s.state, now).await.unwrap(), 1);
    // skip: the latest occurrence is 9 h old, nothing runs, time moves on.
    assert!(runs_of(&s.pool, skip.id).await.is_empty());
    assert!(ticks_of(&s.pool, skip.id).await.is_empty());
    assert_eq!(checked_until(&s.pool, skip.id).await, now);
    // catch_up: one run for the latest (03:00 Berlin = 02:00 UTC in winter).
    let runs = runs_of(&s.pool, catch.id).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].1,
        "scheduled: catcher (0 3 * * * Europe/Berlin) tick 2030-02-10 02:00:00Z; \
         catch-up for 10 missed ticks"
    );
    let ticks = ticks_of(&s.pool, catch.id).await;
    assert_eq!(ticks.len(), 1);
    assert_eq!(ticks[0].0, at("2030-02-10T02:00:00Z"));
    // Nothing more for the same window.
    assert_eq!(tick(&s.state, now).await.unwrap(), 0);

    // skip after a gap, with the latest occurrence still on time (< 60 s):
    // it runs, once, and the older ones are dropped.
    set_checked_until(&s.pool, skip.id, at("2030-03-01T00:00:00Z")).await;
    set_checked_until(&s.pool, catch.id, at("2030-03-05T12:00:00Z")).await;
    assert_eq!(tick(&s.state, at("2030-03-05T03:00:40Z")).await.unwrap(), 1);
    let runs = runs_of(&s.pool, skip.id).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].1,
        "scheduled: skipper (0 3 * * * UTC) tick 2030-03-05 03:00:00Z"
    );
    s.stop().await;
}

#[tokio::test]
async fn refused_runs_settle_their_tick() {
    let s = quiet_server().await;
    let admin = s.user(Role::Admin).await;
    let svc: Value = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "web", "tier": "application", "requires": []}),
            )
            .await,
        "create service",
    )
    .await;
    let rb = runbook(&admin, PER_SERVICE).await;
    let sched = create_schedule(
        &admin,
        json!({"runbook_id": rb.id, "name": "look", "cron": "*/10 * * * * *",
               "params": {"service": "web"}}),
    )
    .await;
    set_checked_until(&s.pool, sched.id, at("2030-01-01T00:00:00Z")).await;
    // The first run parks on its manual step: it stays active.
    assert_eq!(tick(&s.state, at("2030-01-01T00:00:10Z")).await.unwrap(), 1);
    // The next occurrence: one run per service at a time → skipped.
    assert_eq!(tick(&s.state, at("2030-01-01T00:00:20Z")).await.unwrap(), 0);
    let ticks = ticks_of(&s.pool, sched.id).await;
    assert_eq!(ticks.len(), 2, "{ticks:?}");
    assert_eq!(ticks[0].3, "started");
    assert_eq!(ticks[1].1, None);
    assert!(
        ticks[1].3.starts_with("skipped: ") && ticks[1].3.contains("already running"),
        "{}",
        ticks[1].3
    );
    // The service is gone: the parameters no longer fit → skipped, named.
    let res = admin
        .delete(&format!("/api/v1/services/{}", svc["id"]))
        .await;
    assert!(res.status().is_success(), "{}", res.status());
    assert_eq!(tick(&s.state, at("2030-01-01T00:00:30Z")).await.unwrap(), 0);
    let ticks = ticks_of(&s.pool, sched.id).await;
    assert_eq!(ticks.len(), 3);
    assert!(
        ticks[2].3.starts_with("skipped: ") && ticks[2].3.contains("no service"),
        "{}",
        ticks[2].3
    );
    // Settled: later ticks go on, the refusals are audited as failures.
    assert_eq!(
        checked_until(&s.pool, sched.id).await,
        at("2030-01-01T00:00:30Z")
    );
    assert_eq!(runs_of(&s.pool, sched.id).await.len(), 1);
    let page = audit(&admin, "schedule.run").await;
    let outcomes: Vec<Outcome> = page.entries.iter().map(|e| e.outcome).collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Failure).count(),
        2
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == Outcome::Success).count(),
        1
    );
    s.stop().await;
}

#[tokio::test]
async fn two_processes_start_exactly_one_run_per_tick() {
    let (database, options) = pg::fresh_database().await;
    let pool = opsdeck::db::pool(options).await.expect("pool");
    opsdeck::users::cli_add(&pool, "admin", Role::Admin, None, PASSWORD)
        .await
        .expect("admin");
    let url = pg::url(&database);
    // One after the other: the first start registers the `local` engine,
    // and two first starts at once race on it (engines_name_key).
    let a = OpsdeckProcess::start(&url, &[]).await;
    a.wait_ready().await;
    let b = OpsdeckProcess::start(&url, &[]).await;
    b.wait_ready().await;

    let admin = a.login("admin").await;
    let rb = runbook(&admin, NAP).await;
    let body = json!({"runbook_id": rb.id, "name": "every second", "cron": "* * * * * *"});
    let sched = create_schedule(&admin, body.clone()).await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    // Disabling waits for a tick holding the row; afterwards nothing claims.
    let mut off = body.clone();
    off["enabled"] = json!(false);
    let _: Schedule = ok_json(put_schedule(&admin, sched.id, &off).await, "disable").await;

    let ticks = ticks_of(&pool, sched.id).await;
    let runs = runs_of(&pool, sched.id).await;
    let by: BTreeMap<&str, usize> = ticks.iter().fold(BTreeMap::new(), |mut m, t| {
        *m.entry(t.2.as_str()).or_default() += 1;
        m
    });
    eprintln!(
        "{} ticks, {} runs; claims per process: {by:?}",
        ticks.len(),
        runs.len()
    );
    assert!(
        ticks.len() >= 3,
        "only {} ticks in 6 s\nA:\n{}\nB:\n{}",
        ticks.len(),
        a.log_tail(4000),
        b.log_tail(4000)
    );
    for (tick_at, run, _, outcome) in &ticks {
        assert_eq!(outcome, "started", "{tick_at}");
        assert!(run.is_some(), "{tick_at} has no run");
        assert_eq!(tick_at.nanosecond(), 0, "{tick_at}");
    }
    let tick_runs: BTreeSet<i64> = ticks.iter().filter_map(|t| t.1).collect();
    let run_ids: BTreeSet<i64> = runs.iter().map(|r| r.0).collect();
    assert_eq!(tick_runs.len(), ticks.len(), "a run shared by two ticks");
    assert_eq!(tick_runs, run_ids, "every run belongs to exactly one tick");
    // Each run names its tick; no tick has two runs.
    let reasons: BTreeSet<&str> = runs.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(reasons.len(), runs.len(), "two runs for one tick");
    assert!(by.keys().all(|o| !o.is_empty()));

    // Nothing more once disabled.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(ticks_of(&pool, sched.id).await.len(), ticks.len());
    for p in [&a, &b] {
        let status = p.stop().await;
        assert!(status.success(), "{status}\n{}", p.log_tail(4000));
    }
    pool.close().await;
}
