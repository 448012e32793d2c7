//! Targets and plans checked at the boundary, disabled plans, verify and
//! delete, roles, audit.

use super::*;

/// Targets and plans are checked at the boundary; disabled plans do not
/// run; only succeeded backups are verified; delete (admins) removes the
/// files and the entry; targets in use stay; viewers and operators are
/// refused what is not theirs; every change is audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn targets_and_plans_are_validated_and_changes_are_audited() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 4_000).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let db = unique("tiny");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    src.execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 42)")
        .await
        .unwrap();
    src.close().await.ok();
    cluster_service(&admin, "ledger", "opsdeck", &db).await;
    let _: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "web", "tier": "application", "requires": []}),
            )
            .await,
        "create service",
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let path = store.to_string_lossy().into_owned();

    // Targets.
    let target = |name: &str, path: &str| json!({"name": name, "kind": "local", "path": path});
    let m = expect_error(
        admin
            .post("/api/v1/backup-targets", &target("local", "backups/here"))
            .await,
        400,
    )
    .await;
    assert!(m.contains("absolute"), "{m}");
    let dotdot = format!("{path}/../escape");
    let m = expect_error(
        admin
            .post("/api/v1/backup-targets", &target("local", &dotdot))
            .await,
        400,
    )
    .await;
    assert!(m.contains(".."), "{m}");
    assert!(!tmp.path().join("escape").exists());
    expect_error(
        admin
            .post("/api/v1/backup-targets", &target("Local Disk", &path))
            .await,
        400,
    )
    .await;
    for api in [&viewer, &operator] {
        let res = api
            .post("/api/v1/backup-targets", &target("local", &path))
            .await;
        assert_eq!(res.status(), 403);
    }
    assert!(!store.exists(), "nothing created by refused requests");
    let t = create_target(&admin, "local", &store).await;
    let other = tmp.path().join("other");
    expect_error(
        admin
            .post(
                "/api/v1/backup-targets",
                &target("local", &other.to_string_lossy()),
            )
            .await,
        409,
    )
    .await;
    let spare = create_target(&admin, "spare", &other).await;
    let moved = tmp.path().join("spare-moved");
    let updated: BackupTarget = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-targets/{}", spare.id),
                &target("spare", &moved.to_string_lossy()),
            )
            .await,
        "update target",
    )
    .await;
    assert_eq!(updated.def.path, moved.to_string_lossy());
    expect_error(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-targets/{}", spare.id),
                &target("local", &moved.to_string_lossy()),
            )
            .await,
        409,
    )
    .await;
    let listed: Vec<BackupTarget> = viewer.json("/api/v1/backup-targets").await;
    assert_eq!(
        listed
            .iter()
            .map(|t| t.def.name.as_str())
            .collect::<Vec<_>>(),
        ["local", "spare"]
    );

    // Plans.
    let admin_ref = &admin;
    let plan = |v: Value| async move { admin_ref.post("/api/v1/backup-plans", &v).await };
    let m = expect_error(
        plan(postgres_plan("p", "ledger", &[], "nowhere")).await,
        400,
    )
    .await;
    assert!(m.contains("target"), "{m}");
    let m = expect_error(plan(postgres_plan("p", "web", &[], "local")).await, 400).await;
    assert!(m.contains("Postgres check"), "{m}");
    expect_error(plan(postgres_plan("p", "ghost", &[], "local")).await, 400).await;
    for level in [0, 20] {
        let mut v = postgres_plan("p", "ledger", &[], "local");
        v["zstd_level"] = json!(level);
        let m = expect_error(plan(v).await, 400).await;
        assert!(m.contains("zstd_level"), "{m}");
    }
    let m = expect_error(
        plan(json!({"name": "p", "target": "local", "sources": []})).await,
        400,
    )
    .await;
    assert!(m.contains("sources"), "{m}");
    expect_error(
        plan(postgres_plan("Bad Name", "ledger", &[], "local")).await,
        400,
    )
    .await;
    for api in [&viewer, &operator] {
        let res = api
            .post(
                "/api/v1/backup-plans",
                &postgres_plan("p", "ledger", &[&db], "local"),
            )
            .await;
        assert_eq!(res.status(), 403);
    }
    let mut body = postgres_plan("small", "ledger", &[&db], "local");
    body["verify"] = json!(false);
    body["zstd_level"] = json!(1);
    let small = create_plan(&admin, body.clone()).await;
    expect_error(admin.post("/api/v1/backup-plans", &body).await, 409).await;
    let broken = create_plan(
        &admin,
        postgres_plan("broken", "ledger", &["nope"], "local"),
    )
    .await;

    // Runs: viewers may not; an operator may.
    let res = viewer
        .post(
            &format!("/api/v1/backup-plans/{}/run", small.id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 403);
    expect_error(
        operator
            .post("/api/v1/backup-plans/999999/run", &json!({}))
            .await,
        404,
    )
    .await;
    let run = finished(&operator, run_plan(&operator, small.id).await).await;
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&run)
    );
    let good = backups(&viewer, "?plan=small").await[0].clone();
    assert_eq!(good.status, BackupStatus::Succeeded);
    assert_eq!(
        good.verification,
        Verification::Skipped,
        "the plan does not verify"
    );
    let good_files = files_under(&store);
    assert_eq!(good_files.len(), 2, "{good_files:?}");
    assert!(good_files
        .iter()
        .all(|f| f.starts_with(&format!("small/{}/", good.id))));
    let run = finished(&operator, run_plan(&operator, broken.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed);
    let bad = backups(&viewer, "?plan=broken").await[0].clone();
    assert_eq!(bad.status, BackupStatus::Failed);
    let m = expect_error(
        operator
            .post(&format!("/api/v1/backups/{}/verify", bad.id), &json!({}))
            .await,
        409,
    )
    .await;
    assert!(m.contains("failed"), "{m}");
    expect_error(
        operator
            .post("/api/v1/backups/999999/verify", &json!({}))
            .await,
        404,
    )
    .await;
    let res = viewer
        .post(&format!("/api/v1/backups/{}/verify", good.id), &json!({}))
        .await;
    assert_eq!(res.status(), 403);

    // A disabled plan does not run.
    let mut off = body.clone();
    off["enabled"] = json!(false);
    let p: BackupPlan = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-plans/{}", small.id),
                &off,
            )
            .await,
        "disable plan",
    )
    .await;
    assert!(!p.def.enabled);
    assert_eq!(p.last.as_ref().map(|l| l.id), Some(good.id));
    let res = operator
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/backup-plans/{}", small.id),
            &body,
        )
        .await;
    assert_eq!(res.status(), 403, "operators do not edit plans");
    let m = expect_error(
        operator
            .post(
                &format!("/api/v1/backup-plans/{}/run", small.id),
                &json!({}),
            )
            .await,
        409,
    )
    .await;
    assert!(m.contains("disabled"), "{m}");
    assert_eq!(
        backups(&viewer, "?plan=small").await.len(),
        1,
        "no new backup"
    );

    // Targets in use stay.
    let m = expect_error(
        admin
            .delete(&format!("/api/v1/backup-targets/{}", t.id))
            .await,
        409,
    )
    .await;
    assert!(!m.is_empty());

    // Delete a backup: admins only; the files and the entry go.
    for api in [&viewer, &operator] {
        let res = api.delete(&format!("/api/v1/backups/{}", good.id)).await;
        assert_eq!(res.status(), 403);
    }
    assert_eq!(
        files_under(&store),
        good_files,
        "refused deletes keep the files"
    );
    let res = admin.delete(&format!("/api/v1/backups/{}", good.id)).await;
    assert_eq!(res.status(), 204);
    assert!(files_under(&store).is_empty(), "{:?}", files_under(&store));
    expect_error(
        viewer.get(&format!("/api/v1/backups/{}", good.id)).await,
        404,
    )
    .await;
    assert!(backups(&viewer, "").await.iter().all(|b| b.id != good.id));
    expect_error(
        operator
            .get(&format!("/api/v1/backups/{}/artifacts/1", good.id))
            .await,
        404,
    )
    .await;
    expect_error(
        admin.delete(&format!("/api/v1/backups/{}", good.id)).await,
        404,
    )
    .await;

    // Deleting plans keeps their backups; a target holding backups stays.
    for api in [&viewer, &operator] {
        let res = api
            .delete(&format!("/api/v1/backup-plans/{}", broken.id))
            .await;
        assert_eq!(res.status(), 403);
    }
    for id in [small.id, broken.id] {
        let res = admin.delete(&format!("/api/v1/backup-plans/{id}")).await;
        assert_eq!(res.status(), 204);
    }
    assert!(admin
        .json::<Vec<BackupPlan>>("/api/v1/backup-plans")
        .await
        .is_empty());
    let kept = backups(&viewer, "?plan=broken").await;
    assert_eq!(kept.len(), 1, "the plan's backups stay in the catalog");
    expect_error(
        admin
            .delete(&format!("/api/v1/backup-targets/{}", t.id))
            .await,
        409,
    )
    .await;
    let res = admin.delete(&format!("/api/v1/backups/{}", bad.id)).await;
    assert_eq!(res.status(), 204);
    let res = viewer
        .delete(&format!("/api/v1/backup-targets/{}", t.id))
        .await;
    assert_eq!(res.status(), 403);
    for id in [spare.id, t.id] {
        let res = admin.delete(&format!("/api/v1/backup-targets/{id}")).await;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        assert_eq!(
            status, 204,
            "DELETE target {id} once its backups are deleted: {text}"
        );
    }
    assert!(viewer
        .json::<Vec<BackupTarget>>("/api/v1/backup-targets")
        .await
        .is_empty());

    // Audited, every change; no mutating request without its entry.
    for (action, n) in [
        ("backup.target.create", 2),
        ("backup.target.update", 1),
        ("backup.target.delete", 2),
        ("backup.plan.create", 2),
        ("backup.plan.update", 1),
        ("backup.plan.delete", 2),
        ("backup.run", 2),
        ("backup.delete", 2),
    ] {
        let entries = audit(&admin, action).await;
        assert_eq!(entries.len(), n, "{action}: {entries:?}");
        assert!(entries.iter().all(|e| e.actor != "viewer-user"));
    }
    let run_by = &audit(&admin, "backup.run").await[0];
    assert_eq!(run_by.actor, "operator-user");
    let unaudited: AuditPage = admin
        .json("/api/v1/audit?action=request.unaudited&limit=200")
        .await;
    assert!(unaudited.entries.is_empty(), "{:?}", unaudited.entries);
    let report: AuditVerifyReport = admin.json("/api/v1/audit/verify").await;
    assert!(report.ok, "{report:?}");
    drop_db(&s.pool, &db).await;
}
