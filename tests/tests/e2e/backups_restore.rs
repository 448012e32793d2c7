//! Restores end to end: `POST /api/v1/backups/{id}/restore` queues a run
//! of the built-in `backup-restore` runbook that waits for a second
//! person's approval; then the stored object is checked, a safety backup of
//! the original is taken, dependents are stopped (when asked) and the
//! backup restored with the real `pg_restore` on the test cluster; the data
//! is compared table by table. A corrupted object refuses the restore with
//! nothing touched; a runbook changed to run without an approval is
//! refused both by the API and by the step. Dependents are real containers
//! on the private dockerd, stopped and started again in dependency order.

use std::collections::BTreeMap;
use std::time::Duration;

use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{ServiceSpec, Stack};
use opsdeck_wire::{
    ActionRecord, Approval, BackupStatus, Check, Outcome, PrunePreview, Role, Run, RunState,
    RunStatus, RunbookSummary, ServiceOverview, Verification,
};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

use crate::backups::{
    audit, backup_ids_from, backups, cluster_conn, cluster_service, content_digest, create_db,
    create_plan, create_target, detail, drop_db, fill_ledger, finished, postgres_plan, row_counts,
    run_plan, run_text, started, tcp_to_cluster, unique, LEDGER_TABLES,
};
use crate::runbooks::{pending_approval, wait_status};
use crate::util::{engine, expect_error, ok_json, poll, release};

/// Every ledger table's content digest.
async fn digests(conn: &mut PgConnection) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    for t in LEDGER_TABLES {
        out.insert(*t, content_digest(conn, t).await);
    }
    out
}

/// Changes made after the backup: rows changed, deleted and added, and a
/// table the backup does not know.
async fn change(conn: &mut PgConnection) {
    conn.execute(
        r#"
UPDATE public.customers SET name = 'changed ' || id WHERE id <= 10;
DELETE FROM shop.events WHERE id % 2 = 0;
INSERT INTO public.empty_one SELECT generate_series(1, 5);
CREATE TABLE public.after_backup (x int);
INSERT INTO public.after_backup VALUES (42);
"#,
    )
    .await
    .expect("changing the ledger");
}

async fn request(api: &Api, backup: i64, body: Value) -> reqwest::Response {
    api.post(&format!("/api/v1/backups/{backup}/restore"), &body)
        .await
}

/// Approves the run's pending request as `who`.
async fn approve(who: &Api, ap: &Approval) -> reqwest::Response {
    who.post(
        &format!("/api/v1/approvals/{}/approve", ap.id),
        &json!({"binding": ap.binding, "reason": "checked the backup"}),
    )
    .await
}

/// Requests a restore as `requester`, lets `approver` approve it and waits
/// for the run's end.
async fn restore_approved(requester: &Api, approver: &Api, backup: i64, body: Value) -> Run {
    let run = started(request(requester, backup, body).await, "restore").await;
    let ap = pending_approval(requester, run).await;
    ok_json::<Approval>(approve(approver, &ap).await, "approve").await;
    finished(requester, run).await
}

/// Over the original: nothing happens before a second person approved (the
/// requester's own vote is refused); then the backup's content is back in
/// every table, a safety backup (trigger `safety`, same plan and target)
/// holds the state before — restored through Opsdeck into a new database
/// and compared — and both restores are audited. Viewers may not restore;
/// bad requests are refused with reasons; a second restore waits its turn;
/// a new database that exists already is refused with nothing changed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_waits_for_a_second_person_and_keeps_a_safety_backup() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_000).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    let viewer = s.user(Role::Viewer).await;
    let db = unique("restore_ledger");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    let expected = fill_ledger(&mut src).await;
    let original = digests(&mut src).await;
    cluster_service(&admin, "ledger", "opsdeck", &db).await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let mut plan = postgres_plan("ledger-nightly", "ledger", &[&db], "local");
    plan["verify"] = json!(false);
    let plan = create_plan(&admin, plan).await;
    let r = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let b = backups(&viewer, "").await[0].clone();
    assert_eq!(b.id, 8_000);
    let d = detail(&viewer, b.id).await;
    assert_eq!(d.artifacts[1].kind, "pg_dump");

    change(&mut src).await;
    let changed = digests(&mut src).await;
    let changed_counts = row_counts(&mut src).await;
    assert_ne!(changed, original);

    // Who may ask, and what is refused.
    let original_body = json!({"artifact": 1, "into": "original"});
    expect_error(request(&viewer, b.id, original_body.clone()).await, 403).await;
    let msg = expect_error(
        request(&operator, b.id, json!({"artifact": 0, "into": "original"})).await,
        409,
    )
    .await;
    assert!(msg.contains("globals") && msg.contains("psql"), "{msg}");
    expect_error(
        request(&operator, b.id, json!({"artifact": 7, "into": "original"})).await,
        404,
    )
    .await;
    expect_error(
        request(&operator, 999_999, original_body.clone()).await,
        404,
    )
    .await;
    let msg = expect_error(
        request(
            &operator,
            b.id,
            json!({"artifact": 1, "into": {"new": {"name": "Bad-Name"}}}),
        )
        .await,
        400,
    )
    .await;
    assert!(msg.contains("into.new.name"), "{msg}");

    // The request: a run that waits for an approval, with nothing done.
    let t0 = std::time::Instant::now();
    let run = started(
        request(
            &operator,
            b.id,
            json!({"artifact": 1, "into": "original", "stop_dependents": false}),
        )
        .await,
        "restore",
    )
    .await;
    let ap = pending_approval(&operator, run).await;
    assert!(!ap.can_vote, "the requester cannot vote");
    assert_eq!(ap.runbook, "backup-restore");
    assert_eq!(ap.params.get("backup"), Some(&json!(b.id)));
    assert_eq!(ap.params.get("artifact"), Some(&json!(1)));
    assert_eq!(ap.params.get("into"), Some(&json!("original")));
    let w = wait_status(&operator, run, RunStatus::Waiting).await;
    assert!(
        w.summary.reason.contains(&format!("backup #{}", b.id)),
        "{}",
        w.summary.reason
    );
    // One restore at a time.
    let msg = expect_error(request(&operator, b.id, original_body.clone()).await, 409).await;
    assert!(msg.contains("already running"), "{msg}");
    let msg = expect_error(approve(&operator, &ap).await, 403).await;
    assert!(msg.contains("someone else"), "{msg}");
    assert_eq!(
        digests(&mut src).await,
        changed,
        "nothing before the approval"
    );
    assert_eq!(backups(&viewer, "").await.len(), 1, "no safety backup yet");

    ok_json::<Approval>(approve(&second, &ap).await, "second approves").await;
    let r = finished(&operator, run).await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{text}");
    eprintln!("restore over the original: {:?}", t0.elapsed());
    for phase in [
        "approved by second",
        "1/5 check: sha256 and size match",
        "2/5 safety backup #",
        "3/5 dependents: left running",
        "pg_restore --clean --if-exists",
        "4/5 restored: the 5 figures taken at dump time match",
    ] {
        assert!(text.contains(phase), "{phase}: {text}");
    }

    // The backup's content is back; a table it does not know stays.
    assert_eq!(digests(&mut src).await, original);
    let mut want = expected.clone();
    want.insert("public.after_backup".into(), 1);
    assert_eq!(row_counts(&mut src).await, want);

    // The safety backup: the state before the restore.
    let list = backups(&viewer, "").await;
    assert_eq!(list.len(), 2, "{list:?}");
    let safety = list
        .iter()
        .find(|x| x.trigger == "safety")
        .expect("a safety backup");
    assert_eq!(safety.status, BackupStatus::Succeeded, "{safety:?}");
    assert_eq!(safety.run_id, Some(run));
    assert_eq!(
        (safety.plan.as_str(), safety.target.as_str()),
        ("ledger-nightly", "local")
    );
    assert_eq!(safety.requested_by, "operator-user");
    assert_eq!(safety.verification, Verification::Skipped);
    let sd = detail(&viewer, safety.id).await;
    assert_eq!(sd.artifacts.len(), 1);
    let sa = &sd.artifacts[0];
    assert_eq!(
        (sa.kind.as_str(), sa.source.clone(), sa.status.as_str()),
        ("pg_dump", format!("postgres:ledger/{db}"), "stored")
    );
    assert_eq!(sa.stats, changed_counts, "counted before the restore");
    assert_eq!(r.steps[0].result["safety_backup"], json!(safety.id));

    // ... restored through Opsdeck into a new database: the changed data.
    let copy = unique("restore_copy");
    let r2 = restore_approved(
        &operator,
        &second,
        safety.id,
        json!({"artifact": 0, "into": {"new": {"name": copy}}}),
    )
    .await;
    let text2 = run_text(&r2);
    assert_eq!(r2.summary.status, RunStatus::Succeeded, "{text2}");
    assert!(text2.contains("2/5 safety backup: not needed"), "{text2}");
    assert!(
        text2.contains(&format!("created database {copy}")),
        "{text2}"
    );
    let mut c = cluster_conn(&copy).await;
    assert_eq!(
        digests(&mut c).await,
        changed,
        "the safety backup holds the state before"
    );
    assert_eq!(row_counts(&mut c).await, changed_counts);
    c.close().await.ok();
    assert_eq!(
        backups(&viewer, "").await.len(),
        2,
        "no safety backup for a new database"
    );

    // A new database that exists already: refused at run time, nothing changed.
    let r3 = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 1, "into": {"new": {"name": copy}}}),
    )
    .await;
    assert_eq!(r3.summary.status, RunStatus::Failed);
    assert!(
        run_text(&r3).contains("already exists"),
        "{}",
        run_text(&r3)
    );
    let mut c = cluster_conn(&copy).await;
    assert_eq!(digests(&mut c).await, changed);
    c.close().await.ok();

    // Audited: the requests and their outcomes.
    let asked = audit(&admin, "backup.restore").await;
    assert_eq!(asked.len(), 3, "{asked:?}");
    assert!(asked
        .iter()
        .all(|e| e.actor == "operator-user" && e.outcome == Outcome::Success));
    assert_eq!(
        asked[2].target.as_deref(),
        Some(&*format!("backup:{}", b.id))
    );
    assert_eq!(asked[2].params["run"], json!(run));
    let done = audit(&admin, "backup.restored").await;
    assert_eq!(
        done.iter().map(|e| e.outcome).collect::<Vec<_>>(),
        [Outcome::Failure, Outcome::Success, Outcome::Success],
        "newest first"
    );
    assert_eq!(done[2].params["approved_by"], json!(["second"]));
    assert_eq!(done[2].params["safety_backup"], json!(safety.id));
    let created = audit(&admin, "backup.created").await;
    assert!(created
        .iter()
        .any(|e| e.target.as_deref() == Some(&*format!("backup:{}", safety.id))));

    // Retention neither counts nor prunes the safety backup.
    let preview: PrunePreview = viewer
        .json(&format!("/api/v1/backup-plans/{}/prune", plan.id))
        .await;
    let listed: Vec<i64> = preview
        .keep
        .iter()
        .chain(&preview.delete)
        .map(|l| l.backup.id)
        .collect();
    assert_eq!(listed, [b.id], "only the plan's own backup: {preview:?}");

    src.close().await.ok();
    drop_db(&s.pool, &copy).await;
    drop_db(&s.pool, &db).await;
}

/// A flipped byte in the stored dump: the approved restore fails on the
/// checksum, before any safety backup or write; the data is untouched.
/// A `backup-restore` runbook edited to run without an approval: the API
/// refuses to queue it, and a run started from the runbooks page stops at
/// the step.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_copy_or_a_missing_approval_refuses_the_restore() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_100).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    let db = unique("restore_corrupt");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    fill_ledger(&mut src).await;
    cluster_service(&admin, "ledger", "opsdeck", &db).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let mut plan = postgres_plan("ledger-nightly", "ledger", &[&db], "local");
    plan["verify"] = json!(false);
    let plan = create_plan(&admin, plan).await;
    let r = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let b = backups(&operator, "").await[0].clone();
    let a = detail(&operator, b.id).await.artifacts[1].clone();
    change(&mut src).await;
    let changed = digests(&mut src).await;

    let path = store.join(&a.object_key);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 1, "into": "original"}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Failed, "{text}");
    assert!(text.contains("checksum mismatch"), "{text}");
    assert!(text.contains("nothing was touched"), "{text}");
    assert!(!text.contains("2/5"), "no safety backup: {text}");
    assert_eq!(digests(&mut src).await, changed, "untouched");
    assert_eq!(backups(&operator, "").await.len(), 1, "no safety backup");
    let done = audit(&admin, "backup.restored").await;
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome, Outcome::Failure);
    assert!(done[0]
        .detail
        .as_deref()
        .unwrap_or_default()
        .contains("checksum mismatch"));
    std::fs::write(&path, {
        bytes[mid] ^= 0x5a;
        &bytes
    })
    .unwrap();

    // The runbook edited to run without an approval.
    let books: Vec<RunbookSummary> = admin.json("/api/v1/runbooks").await;
    let book = books
        .iter()
        .find(|b| b.name == "backup-restore")
        .expect("the built-in");
    assert!(book.needs_approval && book.builtin);
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../server/runbooks/backup-restore.yaml"),
    )
    .unwrap()
    .replace("approval:\n  required: 1\n", "");
    assert!(!yaml.contains("approval:"));
    ok_json::<Value>(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/runbooks/{}", book.id),
                &json!({"yaml": yaml}),
            )
            .await,
        "edit the runbook",
    )
    .await;
    let msg = expect_error(
        request(&operator, b.id, json!({"artifact": 1, "into": "original"})).await,
        409,
    )
    .await;
    assert!(msg.contains("without an approval"), "{msg}");
    let run: Run = ok_json(
        operator
            .post(
                &format!("/api/v1/runbooks/{}/runs", book.id),
                &json!({"params": {"backup": b.id, "artifact": 1, "into": "original",
                                   "stop_dependents": "no"}, "reason": "bypass"}),
            )
            .await,
        "start the edited runbook",
    )
    .await;
    let r = finished(&operator, run.summary.id).await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Failed, "{text}");
    assert!(text.contains("needs a second person's approval"), "{text}");
    assert_eq!(digests(&mut src).await, changed, "untouched");
    assert_eq!(backups(&operator, "").await.len(), 1, "no safety backup");

    src.close().await.ok();
    drop_db(&s.pool, &db).await;
}

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
                        "engine": "main", "apply": true}),
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

/// In headless Chromium: an operator opens a backup, Restore… on the
/// database dump (none on the globals), restores into a new database: the
/// page links to the run, which waits for a colleague's approval. Over the
/// original, the request button stays disabled until the database's name
/// is typed; a second request while the first waits shows the server's
/// refusal in the dialog. The colleague approves: the new database holds
/// the backup. Screenshot: `target/screenshots/backup-restore.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_asks_for_a_restore_in_the_browser() {
    use opsdeck_e2e::browser::Browser;
    use opsdeck_e2e::server::{web_root, PASSWORD};
    if opsdeck_e2e::require::part(
        web_root().join("index.html").is_file(),
        "the built SPA (frontend/dist/index.html, or OPSDECK_WEB_ROOT)",
        "make frontend",
    )
    .is_err()
    {
        return;
    }
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_300).await;
    let admin = s.user(Role::Admin).await;
    s.create_user("carol", Role::Operator).await;
    s.create_user("dave", Role::Operator).await;
    let carol = s.login("carol").await;
    let dave = s.login("dave").await;
    let db = unique("restore_ui");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    fill_ledger(&mut src).await;
    let original = digests(&mut src).await;
    cluster_service(&admin, "ledger", "opsdeck", &db).await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let mut plan = postgres_plan("ledger-nightly", "ledger", &[&db], "local");
    plan["verify"] = json!(false);
    let plan = create_plan(&admin, plan).await;
    let r = finished(&carol, run_plan(&carol, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let id = backups(&carol, "").await[0].id;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&s.url("/login"), "carol", PASSWORD).await;
    b.goto(&s.url(&format!("/backups/{id}"))).await;
    b.wait_for("[data-testid=artifact-1]").await;
    assert!(
        !b.exists("[data-testid=artifact-restore-0]").await,
        "the globals are not restored"
    );
    b.wait_for("[data-testid=artifact-restore-1]")
        .await
        .click()
        .await
        .expect("clicking Restore…");
    b.wait_for_contains("[data-testid=restore-dialog]", &db)
        .await;
    b.wait_for("[data-testid=restore-warning]").await;
    b.wait_for("[data-testid=restore-unverified]").await;
    b.wait_for("[data-testid=restore-into-new]")
        .await
        .click()
        .await
        .expect("choosing a new database");
    let copy = unique("restore_ui_copy");
    let name = b.wait_for("[data-testid=restore-new-name]").await;
    name.clear().await.expect("clearing the name");
    name.send_keys(&copy).await.expect("typing the name");
    b.wait_for("[data-testid=restore-stop-dependents]").await;
    b.screenshot(&screenshots().join("backup-restore.png"))
        .await;
    b.wait_for("[data-testid=restore-next]")
        .await
        .click()
        .await
        .expect("Continue");
    b.wait_for_contains("[data-testid=restore-summary]", &copy)
        .await;
    b.wait_for("[data-testid=restore-submit]")
        .await
        .click()
        .await
        .expect("requesting the restore");
    let link = b.wait_for("[data-testid=backup-restore-run]").await;
    let href = link.attr("href").await.unwrap().unwrap_or_default();
    let run: i64 = href
        .strip_prefix("/runs/")
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("a run link: {href}"));
    let ap = pending_approval(&carol, run).await;
    assert_eq!(ap.params.get("name"), Some(&json!(copy)));
    assert_eq!(ap.params.get("into"), Some(&json!("new")));
    assert_eq!(ap.params.get("stop_dependents"), Some(&json!("no")));

    // Over the original: the name must be typed; one restore at a time.
    b.wait_for("[data-testid=artifact-restore-1]")
        .await
        .click()
        .await
        .expect("clicking Restore… again");
    b.wait_for("[data-testid=restore-next]")
        .await
        .click()
        .await
        .expect("Continue");
    let submit = b.wait_for("[data-testid=restore-submit]").await;
    assert!(
        !submit.is_enabled().await.unwrap(),
        "disabled until the name is typed"
    );
    b.wait_for("[data-testid=restore-confirm-name]")
        .await
        .send_keys(&db)
        .await
        .expect("typing the database's name");
    poll(Duration::from_secs(10), "submit enabled", async || {
        if submit.is_enabled().await.map_err(|e| e.to_string())? {
            Ok(())
        } else {
            Err("still disabled".into())
        }
    })
    .await;
    submit.click().await.expect("requesting");
    b.wait_for_contains("[data-testid=restore-error]", "already running")
        .await;
    b.wait_for("[data-testid=restore-cancel]")
        .await
        .click()
        .await
        .expect("Cancel");
    b.close().await;

    // The colleague approves: the new database holds the backup.
    ok_json::<Approval>(approve(&dave, &ap).await, "dave approves").await;
    let r = finished(&carol, run).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let mut c = cluster_conn(&copy).await;
    assert_eq!(digests(&mut c).await, original);
    c.close().await.ok();
    src.close().await.ok();
    drop_db(&s.pool, &copy).await;
    drop_db(&s.pool, &db).await;
}

fn screenshots() -> std::path::PathBuf {
    std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/screenshots"
    ))
}

// ------------------------------------------------------------ archives

/// Paths below `root` with type, mode, size and content digest, or link
/// target.
fn tree(root: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if m.is_dir() {
                out.push(format!("{rel}/ {:o}", m.permissions().mode() & 0o7777));
                walk(&p, root, out);
            } else {
                let data = std::fs::read(&p).unwrap();
                out.push(format!(
                    "{rel} {:o} {} {}",
                    m.permissions().mode() & 0o7777,
                    data.len(),
                    &crate::backups::sha256_hex(&data)[..16]
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// A ustar archive written by hand (names as given, even `..`), zstd'd by
/// the CLI.
async fn raw_tar_zst(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = if name.ends_with('/') { b'5' } else { b'0' };
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        tar.extend_from_slice(&h);
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut c = tokio::process::Command::new("zstd");
    c.args(["-q", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().expect("zstd");
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &tar)
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A host directory: restored over the original (its changed state kept
/// in a `files_tar` safety backup, itself restored into a new path and
/// compared); an archive with a `..` entry whose checksum matches the
/// catalog is refused before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_restores_over_the_original_and_an_unsafe_archive_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_400).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app-config");
    std::fs::create_dir_all(dir.join("sites")).unwrap();
    std::fs::write(dir.join("main.conf"), b"workers 4;\n").unwrap();
    std::fs::set_permissions(
        dir.join("main.conf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(dir.join("sites/a.conf"), vec![b'a'; 100_000]).unwrap();
    std::os::unix::fs::symlink("../main.conf", dir.join("sites/main-link")).unwrap();
    let before = tree(&dir);
    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let plan = create_plan(
        &admin,
        json!({"name": "config", "target": "local", "verify": false,
               "sources": [{"kind": "files", "path": dir.display().to_string()}]}),
    )
    .await;
    let r = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let b = backups(&operator, "").await[0].clone();
    let a = detail(&operator, b.id).await.artifacts[0].clone();
    assert_eq!(a.kind, "files_tar");

    std::fs::write(dir.join("main.conf"), b"workers 99;\n").unwrap();
    std::fs::remove_file(dir.join("sites/a.conf")).unwrap();
    std::fs::write(dir.join("new.conf"), b"later").unwrap();
    let changed = tree(&dir);

    let t0 = std::time::Instant::now();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 0, "into": "original"}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{text}");
    eprintln!("directory restore: {:?}", t0.elapsed());
    assert!(
        text.contains("every entry of the archive is safe to write"),
        "{text}"
    );
    assert!(text.contains("2/5 safety backup #"), "{text}");
    assert_eq!(tree(&dir), before, "the backup's tree, nothing more");
    let safety = backups(&operator, "")
        .await
        .into_iter()
        .find(|x| x.trigger == "safety")
        .expect("a safety backup");
    let copy = tmp.path().join("app-config-before");
    let r = restore_approved(
        &operator,
        &second,
        safety.id,
        json!({"artifact": 0, "into": {"new": {"name": copy.display().to_string()}}}),
    )
    .await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    assert_eq!(
        tree(&copy),
        changed,
        "the safety backup holds the state before"
    );

    // An unsafe archive with the catalog's checksum: refused, nothing written.
    let evil = raw_tar_zst(&[
        ("app-config/", b""),
        ("app-config/ok.conf", b"fine"),
        ("app-config/../../escaped.conf", b"owned"),
    ])
    .await;
    std::fs::write(store.join(&a.object_key), &evil).unwrap();
    sqlx::query(
        "UPDATE backup_artifacts SET sha256 = $1, bytes = $2 WHERE backup_id = $3 AND idx = 0",
    )
    .bind(crate::backups::sha256_hex(&evil))
    .bind(evil.len() as i64)
    .bind(b.id)
    .execute(&s.pool)
    .await
    .unwrap();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 0, "into": "original"}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Failed, "{text}");
    assert!(text.contains("1/5 check: sha256 and size match"), "{text}");
    assert!(
        text.contains("the archive is refused, nothing was touched"),
        "{text}"
    );
    assert_eq!(tree(&dir), before, "untouched");
    assert!(!tmp.path().join("escaped.conf").exists());
    assert!(!tmp.path().parent().unwrap().join("escaped.conf").exists());
    assert_eq!(
        backups(&operator, "").await.len(),
        2,
        "no second safety backup"
    );
}

/// A Docker volume on the private engine: restored over the original
/// (emptied, then the backup's entries), its changed state kept in a
/// `volume_tar` safety backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_restores_over_the_original_with_a_safety_backup() {
    let Some(engine) = engine().await else { return };
    let build = engine.clone();
    tokio::task::spawn_blocking(move || build.build_busybox_image("busybox:latest"))
        .await
        .unwrap()
        .expect("building busybox:latest");
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_500).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "local", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    poll(Duration::from_secs(60), "engine connected", async || {
        let list: Vec<opsdeck_wire::Engine> = admin.json("/api/v1/engines").await;
        match list.iter().find(|e| e.name == "local") {
            Some(e) if e.state == opsdeck_wire::EngineState::Connected => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let docker = |args: Vec<String>| {
        let mut c = engine.cli();
        c.args(&args);
        async move {
            let out = tokio::task::spawn_blocking(move || c.output())
                .await
                .unwrap()
                .expect("docker");
            assert!(
                out.status.success(),
                "docker {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let in_volume = |vol: String, script: &str| {
        docker(
            [
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &format!("{vol}:/d"),
                "busybox:latest",
                "sh",
                "-c",
                script,
            ]
            .map(String::from)
            .to_vec(),
        )
    };
    let manifest = "cd /d && find . | sort | while IFS= read -r f; do \
        if [ -L \"$f\" ]; then echo \"$f link $(readlink \"$f\")\"; \
        elif [ -d \"$f\" ]; then echo \"$f dir $(stat -c '%a %u:%g' \"$f\")\"; \
        else echo \"$f file $(stat -c '%a %u:%g %s' \"$f\") $(md5sum < \"$f\" | cut -c1-32)\"; fi; done";
    let vol = unique("restore_vol");
    docker(vec!["volume".into(), "create".into(), vol.clone()]).await;
    in_volume(
        vol.clone(),
        "set -e; cd /d; mkdir -p data/sub; printf 'v1\\n' > data/a.txt; chmod 640 data/a.txt; \
         chown 1234:5678 data/a.txt; head -c 300000 /dev/urandom > data/sub/blob; ln -s a.txt data/alias",
    )
    .await;
    let before = in_volume(vol.clone(), manifest).await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let plan = create_plan(
        &admin,
        json!({"name": "vol", "target": "local", "verify": false,
               "sources": [{"kind": "volume", "volume": vol}]}),
    )
    .await;
    let r = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let b = backups(&operator, "").await[0].clone();

    in_volume(
        vol.clone(),
        "set -e; cd /d; printf 'v2\\n' > data/a.txt; rm data/sub/blob; echo later > data/new.txt",
    )
    .await;
    let changed = in_volume(vol.clone(), manifest).await;
    assert_ne!(changed, before);
    let t0 = std::time::Instant::now();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 0, "into": "original"}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{text}");
    eprintln!("volume restore: {:?}", t0.elapsed());
    assert!(
        text.contains("every entry of the archive is safe to write"),
        "{text}"
    );
    assert!(text.contains(&format!("emptying volume {vol}")), "{text}");
    assert_eq!(in_volume(vol.clone(), manifest).await, before);
    let safety = backups(&operator, "")
        .await
        .into_iter()
        .find(|x| x.trigger == "safety")
        .expect("a safety backup");
    let sd = detail(&operator, safety.id).await;
    assert_eq!(sd.artifacts[0].kind, "volume_tar");
    assert_eq!(
        sd.artifacts[0].stats.get("files"),
        Some(&2),
        "{:?}",
        sd.artifacts[0].stats
    );

    docker(vec!["volume".into(), "rm".into(), vol.clone()]).await;
    drop(s);
    release(engine).await;
}

/// A MariaDB database on the harness's server: restored over the original
/// (a `mysqldump` safety backup first), and the safety backup restored
/// into a new database holds the changed rows; the password appears
/// nowhere in the runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_database_restores_over_the_original_with_a_safety_backup() {
    use opsdeck_e2e::mariadb::MariaDb;
    let Ok(maria) = tokio::task::spawn_blocking(MariaDb::shared).await.unwrap() else {
        return;
    };
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_600).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    let db = unique("rs_shop");
    let copy = format!("{db}_before");
    let (user, password) = ("opsdeck_rs", "rs-pass-8c1d-secret");
    let sql = move |q: String| tokio::task::spawn_blocking(move || maria.sql_as_root(&q));
    sql(format!(
        "CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
         GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1';
         CREATE DATABASE `{db}` CHARACTER SET utf8mb4;
         CREATE TABLE `{db}`.orders (id INT PRIMARY KEY, note VARCHAR(100) NOT NULL);
         USE `{db}`;
         INSERT INTO orders SELECT seq, CONCAT('order ', seq, ' «ü»') FROM seq_1_to_500;"
    ))
    .await
    .unwrap()
    .unwrap();
    let digest = |d: String| {
        sql(format!(
            "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id, ':', note))), 0) FROM `{d}`.orders"
        ))
    };
    let before = digest(db.clone()).await.unwrap().unwrap();
    let svc: opsdeck_wire::Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "shop", "tier": "critical", "requires": []}),
            )
            .await,
        "service",
    )
    .await;
    ok_json::<Check>(
        admin
            .post(
                "/api/v1/checks",
                &json!({"name": "shop-db", "service_id": svc.id, "interval_s": 86_400,
                        "timeout_ms": 5000, "password": password,
                        "spec": {"kind": "mysql",
                                 "url": format!("mysql://{user}@127.0.0.1:{}/", maria.port())}}),
            )
            .await,
        "check",
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let plan = create_plan(
        &admin,
        json!({"name": "shop", "target": "local", "verify": false,
               "sources": [{"kind": "mariadb", "service": "shop", "databases": [db]}]}),
    )
    .await;
    let r = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let b = backups(&operator, "").await[0].clone();
    assert_eq!(detail(&operator, b.id).await.artifacts[0].kind, "mysqldump");

    sql(format!(
        "UPDATE `{db}`.orders SET note = 'changed' WHERE id <= 50;
         DELETE FROM `{db}`.orders WHERE id > 450;
         CREATE TABLE `{db}`.after_backup (x INT); INSERT INTO `{db}`.after_backup VALUES (1);"
    ))
    .await
    .unwrap()
    .unwrap();
    let changed = digest(db.clone()).await.unwrap().unwrap();
    assert_ne!(changed, before);

    let t0 = std::time::Instant::now();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 0, "into": "original"}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{text}");
    eprintln!("mariadb restore: {:?}", t0.elapsed());
    assert!(!text.contains(password), "{text}");
    assert!(
        text.contains("4/5 restored: the 1 figures taken at dump time match"),
        "{text}"
    );
    assert_eq!(digest(db.clone()).await.unwrap().unwrap(), before);
    let kept = sql(format!("SELECT COUNT(*) FROM `{db}`.after_backup"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.trim(), "1", "a table the dump does not know stays");

    let safety = backups(&operator, "")
        .await
        .into_iter()
        .find(|x| x.trigger == "safety")
        .expect("a safety backup");
    let r = restore_approved(
        &operator,
        &second,
        safety.id,
        json!({"artifact": 0, "into": {"new": {"name": copy}}}),
    )
    .await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    assert_eq!(digest(copy.clone()).await.unwrap().unwrap(), changed);
    let audit_text = serde_json::to_string(&audit(&admin, "backup.restored").await).unwrap();
    assert!(!audit_text.contains(password));

    sql(format!("DROP DATABASE `{db}`; DROP DATABASE `{copy}`;"))
        .await
        .unwrap()
        .unwrap();
}
