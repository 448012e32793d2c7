//! A plan's timing end to end: its schedules as runbook schedules that
//! fire, retention pruning after each good backup (objects removed from
//! the target, audited, previewed), restore drills, and what the dashboard
//! shows about failed backups, verifications and drills.

use std::path::Path;
use std::time::Duration;

use opsdeck_e2e::fixtures::{backup_ids_from, cluster_conn, create_db, files_under, unique};
use opsdeck_e2e::flows::audit::audit;
use opsdeck_e2e::flows::backups::{
    backup_incidents, backups, cluster_service, create_plan, create_target, detail, finished,
    run_plan, run_text,
};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{expect_error, ok_json, poll};
use opsdeck_wire::{
    handbook_schedules, BackupAttention, BackupPlan, PlanScheduleKind, PrunePreview, Role,
    RunStatus,
};
use serde_json::{json, Value};
use sqlx::{Executor, PgPool, Row};

/// A service `svc` on a fresh database holding one small table.
async fn small_source(s: &TestServer, admin: &Api, svc: &str) -> String {
    let db = unique("timing");
    create_db(&s.pool, &db).await;
    let mut c = cluster_conn(&db).await;
    c.execute("CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 200) g")
        .await
        .unwrap();
    cluster_service(admin, svc, "opsdeck", &db).await;
    db
}

fn plan_body(name: &str, svc: &str, db: &str, extra: Value) -> Value {
    let mut v = json!({"name": name, "target": "local", "verify": false, "schedules": [],
                       "sources": [{"kind": "postgres", "service": svc, "databases": [db]}]});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    v
}

/// (schedule name, runbook, cron, zone, plan parameter, missed policy)
async fn plan_schedules(
    pool: &PgPool,
    plan: i64,
) -> Vec<(String, String, String, String, String, String)> {
    sqlx::query(
        "SELECT s.name, r.name AS runbook, s.cron, s.timezone, s.params->>'plan' AS plan, s.missed
         FROM schedules s JOIN runbooks r ON r.id = s.runbook_id
         WHERE s.backup_plan_id = $1 ORDER BY s.id",
    )
    .bind(plan)
    .fetch_all(pool)
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (
            r.get("name"),
            r.get("runbook"),
            r.get("cron"),
            r.get("timezone"),
            r.get("plan"),
            r.get("missed"),
        )
    })
    .collect()
}

async fn schedule_ids(pool: &PgPool, plan: i64) -> Vec<i64> {
    sqlx::query_scalar("SELECT id FROM schedules WHERE backup_plan_id = $1 ORDER BY id")
        .bind(plan)
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_schedules_are_runbook_schedules_that_fire() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 9_000).await;
    let admin = s.user(Role::Admin).await;
    let viewer = s.user(Role::Viewer).await;
    let db = small_source(&s, &admin, "shop").await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;

    // The handbook timetable in Berlin.
    let plan = create_plan(
        &admin,
        plan_body(
            "shop-nightly",
            "shop",
            &db,
            json!({"schedules": handbook_schedules(), "timezone": "Europe/Berlin"}),
        ),
    )
    .await;
    assert_eq!(plan.def.schedules, handbook_schedules());
    assert_eq!(plan.def.timezone, "Europe/Berlin");
    let rows = plan_schedules(&s.pool, plan.id).await;
    let want: Vec<(String, String, String)> = [
        ("backup:shop-nightly:1-backup", "backup-run", "0 2 * * *"),
        ("backup:shop-nightly:2-backup", "backup-run", "0 3 * * 0"),
        ("backup:shop-nightly:3-backup", "backup-run", "0 4 1 * *"),
        ("backup:shop-nightly:4-drill", "backup-drill", "0 5 * * 0"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(
        rows.iter()
            .map(|r| (r.0.clone(), r.1.clone(), r.2.clone()))
            .collect::<Vec<_>>(),
        want
    );
    assert!(rows
        .iter()
        .all(|r| r.3 == "Europe/Berlin" && r.4 == "shop-nightly" && r.5 == "catch_up"));
    // They are ordinary schedules: listed for viewers on the Schedules page.
    let listed: Value = viewer.json("/api/v1/schedules").await;
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert!(names.contains(&"backup:shop-nightly:4-drill"), "{names:?}");
    // Next runs: three backups and three drills, in time order, at the
    // Berlin wall-clock hours.
    let drills: Vec<_> = plan
        .next
        .iter()
        .filter(|n| n.kind == PlanScheduleKind::Drill)
        .collect();
    assert_eq!((plan.next.len(), drills.len()), (6, 3), "{:?}", plan.next);
    assert!(plan.next.windows(2).all(|w| w[0].at <= w[1].at));
    for d in drills {
        let local = d.at.with_timezone(&chrono_tz::Europe::Berlin);
        assert_eq!(local.format("%a %H:%M").to_string(), "Sun 05:00");
    }

    // Saving the same timing keeps the schedules (and their tick history).
    let before = schedule_ids(&s.pool, plan.id).await;
    let mut same = serde_json::to_value(&plan.def).unwrap();
    same["target"] = json!("local");
    let again: BackupPlan = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-plans/{}", plan.id),
                &same,
            )
            .await,
        "same plan",
    )
    .await;
    assert_eq!(again.def.schedules, handbook_schedules());
    assert_eq!(schedule_ids(&s.pool, plan.id).await, before);

    // Validation names the field; nothing changes.
    for (patch, field) in [
        (
            json!({"schedules": [{"kind": "backup", "cron": "0 2 * *"}]}),
            "schedules[0].cron",
        ),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (
            json!({"retention": {"keep_last": 0}}),
            "retention.keep_last",
        ),
        (
            json!({"retention": {"max_age_days": 0}}),
            "retention.max_age_days",
        ),
    ] {
        let mut body = same.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let res = admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-plans/{}", plan.id),
                &body,
            )
            .await;
        let msg = expect_error(res, 400).await;
        assert!(msg.starts_with(&format!("{field}:")), "{field}: {msg}");
    }
    assert_eq!(schedule_ids(&s.pool, plan.id).await, before);

    // Every five seconds: the schedule ticker starts a backup, as the
    // schedule's system actor.
    let mut every = same.clone();
    every["schedules"] = json!([{"kind": "backup", "cron": "*/5 * * * * *"}]);
    let _: BackupPlan = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-plans/{}", plan.id),
                &every,
            )
            .await,
        "every 5 s",
    )
    .await;
    let rows = plan_schedules(&s.pool, plan.id).await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0].0, "backup:shop-nightly:1-backup");
    let scheduled = poll(Duration::from_secs(40), "a scheduled backup", async || {
        let list = backups(&viewer, "?plan=shop-nightly").await;
        list.into_iter()
            .find(|b| b.trigger == "schedule" && b.finished_at.is_some())
            .ok_or_else(|| "none yet".to_string())
    })
    .await;
    assert_eq!(
        scheduled.requested_by, "schedule:backup:shop-nightly:1-backup",
        "{scheduled:?}"
    );
    assert_eq!(
        scheduled.status,
        opsdeck_wire::BackupStatus::Succeeded,
        "{scheduled:?}"
    );

    // No schedules: by hand only; the audit entry carries the timing.
    let mut none = same.clone();
    none["schedules"] = json!([]);
    let p: BackupPlan = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-plans/{}", plan.id),
                &none,
            )
            .await,
        "no schedules",
    )
    .await;
    assert!(p.def.schedules.is_empty() && p.next.is_empty());
    assert!(plan_schedules(&s.pool, plan.id).await.is_empty());
    let updates = audit(&admin, "backup.plan.update").await;
    assert!(
        updates
            .iter()
            .any(|e| e.params["schedules"] == json!([{"kind": "backup", "cron": "*/5 * * * * *"}])),
        "{updates:?}"
    );

    // A disabled plan's schedules are disabled; removing the plan removes them.
    let mut off = same.clone();
    off["enabled"] = json!(false);
    let _: BackupPlan = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-plans/{}", plan.id),
                &off,
            )
            .await,
        "disabled",
    )
    .await;
    let enabled: Vec<bool> =
        sqlx::query_scalar("SELECT enabled FROM schedules WHERE backup_plan_id = $1")
            .bind(plan.id)
            .fetch_all(&s.pool)
            .await
            .unwrap();
    assert_eq!(enabled, vec![false; 4]);
    let res = admin
        .delete(&format!("/api/v1/backup-plans/{}", plan.id))
        .await;
    assert_eq!(res.status(), 204);
    let left: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM schedules WHERE name LIKE 'backup:shop-nightly:%'",
    )
    .fetch_one(&s.pool)
    .await
    .unwrap();
    assert_eq!(left, 0);
}

/// A catalog entry made by hand: a succeeded backup `days` ago with one
/// stored object (a real file in the target).
async fn old_backup(
    pool: &PgPool,
    plan: &BackupPlan,
    store: &Path,
    days: i64,
    verification: &str,
) -> (i64, String) {
    let r = sqlx::query(
        "INSERT INTO backups (plan_id, plan_name, target_id, trigger, requested_by, status,
                              verification, started_at, finished_at, bytes, raw_bytes)
         SELECT $1, $2, t.id, 'schedule', 'test', 'succeeded', $3,
                now() - make_interval(days => $4), now() - make_interval(days => $4), 5, 5
         FROM backup_targets t WHERE t.name = 'local' RETURNING id",
    )
    .bind(plan.id)
    .bind(&plan.def.name)
    .bind(verification)
    .bind(days as i32)
    .fetch_one(pool)
    .await
    .unwrap();
    let id: i64 = r.get("id");
    let key = format!("{}/{id}/1-old.pg_dump.zst", plan.def.name);
    let path = store.join(&key);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, b"stale").unwrap();
    sqlx::query(
        "INSERT INTO backup_artifacts (backup_id, idx, source, kind, object_key, bytes, sha256, status)
         VALUES ($1, 1, 'postgres:x/y', 'pg_dump', $2, 5, 'x', 'stored')",
    )
    .bind(id)
    .bind(&key)
    .execute(pool)
    .await
    .unwrap();
    (id, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_prunes_after_each_good_backup_and_says_so_beforehand() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 9_100).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let db = small_source(&s, &admin, "shop").await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let plan = create_plan(
        &admin,
        plan_body(
            "shop-nightly",
            "shop",
            &db,
            json!({"retention": {"keep_last": 2, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}}),
        ),
    )
    .await;
    let (a, ka) = old_backup(&s.pool, &plan, &store, 10, "skipped").await;
    let (b, kb) = old_backup(&s.pool, &plan, &store, 9, "verified").await;
    let (c, kc) = old_backup(&s.pool, &plan, &store, 8, "skipped").await;
    // Failed verification: never pruned (kept for investigation).
    let (bad, kbad) = old_backup(&s.pool, &plan, &store, 20, "failed").await;

    // Before the next run, viewers see what the next prune deletes.
    let preview: PrunePreview = viewer
        .json(&format!("/api/v1/backup-plans/{}/prune", plan.id))
        .await;
    let ids = |v: &[opsdeck_wire::PruneLine]| v.iter().map(|l| l.backup.id).collect::<Vec<_>>();
    assert_eq!(ids(&preview.keep), vec![c, b]);
    assert_eq!(ids(&preview.delete), vec![a]);
    assert_eq!(preview.delete[0].reasons, vec!["kept by no rule"]);
    assert_eq!(preview.keep[0].reasons, vec!["last 2"]);
    let missing = viewer.get("/api/v1/backup-plans/999999/prune").await;
    assert_eq!(missing.status(), 404);

    // A good backup: then the two oldest candidates go, objects first.
    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&run)
    );
    let text = run_text(&run);
    assert!(text.contains(&format!("pruned backup #{a}")), "{text}");
    assert!(text.contains(&format!("pruned backup #{b}")), "{text}");
    let files = files_under(&store);
    for k in [&ka, &kb] {
        assert!(!files.contains(k), "{k} still in {files:?}");
    }
    for k in [&kc, &kbad] {
        assert!(files.contains(k), "{k} missing from {files:?}");
    }
    let listed: Vec<i64> = backups(&viewer, "?plan=shop-nightly")
        .await
        .into_iter()
        .map(|b| b.id)
        .collect();
    assert_eq!(listed.len(), 3, "{listed:?}");
    assert!(listed.contains(&c) && listed.contains(&bad) && !listed.contains(&a));
    let by: Vec<Option<String>> =
        sqlx::query_scalar("SELECT deleted_by FROM backups WHERE id = ANY($1) ORDER BY id")
            .bind([a, b])
            .fetch_all(&s.pool)
            .await
            .unwrap();
    assert_eq!(by, vec![Some("retention".to_string()); 2]);
    let pruned = audit(&admin, "backup.prune").await;
    assert_eq!(pruned.len(), 1, "{pruned:?}");
    assert_eq!(pruned[0].actor, "retention");
    assert_eq!(pruned[0].params["backups"], json!([b, a]));
    // Unaffected by the deletion: the failed one is still readable.
    assert_eq!(detail(&viewer, bad).await.summary.id, bad);

    // A failing backup prunes nothing: the old ones stay.
    let mut broken = plan_body(
        "shop-nightly",
        "shop",
        "no-such-db",
        json!({"retention": {"keep_last": 1, "keep_daily": 0, "keep_weekly": 0, "keep_monthly": 0}}),
    );
    broken["schedules"] = json!([]);
    let _: BackupPlan = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-plans/{}", plan.id),
                &broken,
            )
            .await,
        "broken plan",
    )
    .await;
    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed, "{}", run_text(&run));
    assert!(!run_text(&run).contains("pruned"), "{}", run_text(&run));
    assert!(files_under(&store).contains(&kc));
    assert_eq!(audit(&admin, "backup.prune").await.len(), 1);
    // The preview now says the keep-last-1 rule would take c.
    let preview: PrunePreview = viewer
        .json(&format!("/api/v1/backup-plans/{}/prune", plan.id))
        .await;
    assert_eq!(ids(&preview.delete), vec![c]);
}

async fn start_drill(pool: &PgPool, api: &Api, plan: &str) -> i64 {
    let runbook: i64 = sqlx::query_scalar("SELECT id FROM runbooks WHERE name = 'backup-drill'")
        .fetch_one(pool)
        .await
        .unwrap();
    let res = api
        .post(
            &format!("/api/v1/runbooks/{runbook}/runs"),
            &json!({"params": {"plan": plan}, "reason": "drill"}),
        )
        .await;
    let v: Value = ok_json(res, "start drill").await;
    v["id"]
        .as_i64()
        .or_else(|| v["run_id"].as_i64())
        .or_else(|| v["summary"]["id"].as_i64())
        .unwrap_or_else(|| panic!("no run id in {v}"))
}

async fn attention(api: &Api) -> Vec<BackupAttention> {
    api.json("/api/v1/backups/attention").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drills_prove_the_newest_backup_and_failures_reach_the_dashboard() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 9_200).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let db = small_source(&s, &admin, "shop").await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let plan = create_plan(
        &admin,
        plan_body("shop-nightly", "shop", &db, json!({"verify": true})),
    )
    .await;
    let empty = create_plan(&admin, plan_body("empty", "shop", &db, json!({}))).await;
    assert!(attention(&viewer).await.is_empty());

    // A good backup, then a drill of it.
    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&run)
    );
    let good = backups(&viewer, "?plan=shop-nightly").await[0].id;
    let drill = finished(
        &operator,
        start_drill(&s.pool, &operator, "shop-nightly").await,
    )
    .await;
    assert_eq!(
        drill.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&drill)
    );
    assert_eq!(drill.summary.runbook, "backup-drill");
    assert!(
        run_text(&drill).contains("test restore ok"),
        "{}",
        run_text(&drill)
    );
    let p: BackupPlan = viewer
        .json::<Vec<BackupPlan>>("/api/v1/backup-plans")
        .await
        .into_iter()
        .find(|p| p.id == plan.id)
        .unwrap();
    let d = p.drill.expect("drill recorded");
    assert!(d.ok && d.error.is_none(), "{d:?}");
    assert_eq!(d.backup_id, Some(good));
    assert!(attention(&viewer).await.is_empty());

    // The stored object rots: the next drill fails on the checksum, the
    // backup's verification fails, the dashboard and an incident say so.
    let obj = detail(&viewer, good).await.artifacts[1].object_key.clone();
    let path = store.join(&obj);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let drill = finished(
        &operator,
        start_drill(&s.pool, &operator, "shop-nightly").await,
    )
    .await;
    assert_eq!(
        drill.summary.status,
        RunStatus::Failed,
        "{}",
        run_text(&drill)
    );
    assert!(
        run_text(&drill).contains("checksum mismatch"),
        "{}",
        run_text(&drill)
    );
    let a = attention(&viewer).await;
    let problems: Vec<(&str, &str, Option<i64>)> = a
        .iter()
        .map(|x| (x.plan.as_str(), x.problem.as_str(), x.backup_id))
        .collect();
    assert_eq!(
        problems,
        vec![
            ("shop-nightly", "verification failed", Some(good)),
            ("shop-nightly", "drill failed", Some(good)),
        ]
    );
    assert!(
        a[1].error
            .as_deref()
            .unwrap_or("")
            .contains("checksum mismatch"),
        "{a:?}"
    );
    let inc = backup_incidents(&viewer).await;
    assert_eq!(inc.len(), 1, "{inc:?}");
    assert!(inc[0].title.contains("shop-nightly"), "{inc:?}");
    let drills = audit(&admin, "backup.drill").await;
    assert_eq!(drills.len(), 2);
    assert_eq!(drills[0].outcome, opsdeck_wire::Outcome::Failure);

    // A plan with no good backup fails its drill; a failed backup shows.
    let drill = finished(&operator, start_drill(&s.pool, &operator, "empty").await).await;
    assert_eq!(drill.summary.status, RunStatus::Failed);
    assert!(
        run_text(&drill).contains("no good backup"),
        "{}",
        run_text(&drill)
    );
    let mut broken = plan_body("empty", "shop", "no-such-db", json!({}));
    broken["schedules"] = json!([]);
    let _: BackupPlan = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-plans/{}", empty.id),
                &broken,
            )
            .await,
        "broken",
    )
    .await;
    let run = finished(&operator, run_plan(&operator, empty.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed);
    let a = attention(&viewer).await;
    let empty_problems: Vec<&str> = a
        .iter()
        .filter(|x| x.plan == "empty")
        .map(|x| x.problem.as_str())
        .collect();
    assert_eq!(empty_problems, vec!["backup failed", "drill failed"]);

    // A new good backup clears the plan's backup lines (its drill line
    // stays until the next drill passes).
    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&run)
    );
    let drill = finished(
        &operator,
        start_drill(&s.pool, &operator, "shop-nightly").await,
    )
    .await;
    assert_eq!(
        drill.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&drill)
    );
    assert!(attention(&viewer)
        .await
        .iter()
        .all(|x| x.plan != "shop-nightly"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_a_failed_backup_and_the_plan_form_starts_with_the_handbook() {
    use opsdeck_e2e::browser::Browser;
    use opsdeck_e2e::server::PASSWORD;
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 9_300).await;
    let admin = s.user(Role::Admin).await;
    let _shop = small_source(&s, &admin, "shop").await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let broken = create_plan(&admin, plan_body("orders", "shop", "no-such-db", json!({}))).await;
    s.create_user("ada", Role::Admin).await;
    let ada = s.login("ada").await;
    let run = finished(&ada, run_plan(&ada, broken.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed);

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&s.url("/login"), "ada", PASSWORD).await;
    b.goto(&s.url("/")).await;
    let alert = b
        .wait_for_contains("[data-testid=backup-alert-orders]", "backup failed")
        .await;
    drop(alert);
    b.wait_for_contains("[data-testid=backup-alerts]", "no-such-db")
        .await;
    b.screenshot(&shots().join("dashboard-backup-alert.png"))
        .await;

    // A new plan starts with the handbook's timetable and retention.
    b.goto(&s.url("/backups")).await;
    b.wait_for("[data-testid=plan-orders]").await;
    b.wait_for_contains(
        "[data-testid=plan-prune-orders]",
        "Next prune deletes nothing",
    )
    .await;
    b.wait_for("[data-testid=plan-new]")
        .await
        .click()
        .await
        .expect("New plan");
    b.wait_for("[data-testid=plan-form]").await;
    for (i, cron) in ["0 2 * * *", "0 3 * * 0", "0 4 1 * *", "0 5 * * 0"]
        .iter()
        .enumerate()
    {
        let v: String = b
            .execute(&format!(
                "return document.querySelector('[data-testid=plan-schedule-cron-{i}]').value;"
            ))
            .await;
        assert_eq!(&v, cron);
    }
    b.wait_for_contains(
        "[data-testid=plan-schedule-3]",
        "drill every Sunday at 05:00",
    )
    .await;
    let keep: String = b
        .execute("return document.querySelector('[data-testid=plan-keep-daily]').value;")
        .await;
    assert_eq!(keep, "7");
    b.screenshot(&shots().join("backup-plan-form.png")).await;
    b.close().await;
}

fn shots() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/screenshots"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_backup_waits_for_a_vote_when_a_policy_says_so() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 9_400).await;
    let admin = s.user(Role::Admin).await;
    s.create_user("second-admin", Role::Admin).await;
    let second = s.login("second-admin").await;
    let operator = s.user(Role::Operator).await;
    let db = small_source(&s, &admin, "shop").await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let plan = create_plan(&admin, plan_body("shop-nightly", "shop", &db, json!({}))).await;
    for _ in 0..2 {
        let run = finished(&operator, run_plan(&operator, plan.id).await).await;
        assert_eq!(
            run.summary.status,
            RunStatus::Succeeded,
            "{}",
            run_text(&run)
        );
    }
    let list = backups(&admin, "?plan=shop-nightly").await;
    let (newer, older) = (list[0].id, list[1].id);

    // Without a policy: deleted at once (204), objects gone.
    let res = admin.delete(&format!("/api/v1/backups/{older}")).await;
    assert_eq!(res.status(), 204);
    assert!(files_under(&store)
        .iter()
        .all(|f| !f.contains(&format!("/{older}/"))));

    // With a policy on backup.delete: 202 and a run that waits.
    let res = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/approval-policies/backup.delete",
            &json!({"required": 1, "roles": ["admin"], "expires": "1h"}),
        )
        .await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let res = admin.delete(&format!("/api/v1/backups/{newer}")).await;
    assert_eq!(res.status(), 202);
    let started: opsdeck_wire::BackupRunStarted = ok_json(res, "delete started").await;
    let ap = opsdeck_e2e::flows::runbooks::pending_approval(&admin, started.run_id).await;
    // Still there while it waits.
    assert_eq!(detail(&admin, newer).await.summary.id, newer);
    assert!(files_under(&store)
        .iter()
        .any(|f| f.contains(&format!("/{newer}/"))));
    let vote = json!({"binding": ap.binding, "reason": "old"});
    let msg = expect_error(
        admin
            .post(&format!("/api/v1/approvals/{}/approve", ap.id), &vote)
            .await,
        403,
    )
    .await;
    assert!(msg.contains("someone else"), "{msg}");
    let res = second
        .post(&format!("/api/v1/approvals/{}/approve", ap.id), &vote)
        .await;
    assert_eq!(
        res.status(),
        200,
        "{}",
        res.text().await.unwrap_or_default()
    );
    let run = finished(&admin, started.run_id).await;
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&run)
    );
    assert_eq!(run.summary.runbook, "backup-delete");
    assert_eq!(
        admin
            .get(&format!("/api/v1/backups/{newer}"))
            .await
            .status(),
        404
    );
    assert!(files_under(&store)
        .iter()
        .all(|f| !f.contains(&format!("/{newer}/"))));
    let by: Option<String> = sqlx::query_scalar("SELECT deleted_by FROM backups WHERE id = $1")
        .bind(newer)
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(by.as_deref(), Some("admin-user"));
    assert_eq!(audit(&admin, "backup.delete.request").await.len(), 1);
    assert_eq!(audit(&admin, "backup.delete").await.len(), 2);
}
