//! Restores over the original: a second person approves, a safety backup
//! is kept; a corrupted copy or a missing approval refuses the restore.

use super::*;

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
