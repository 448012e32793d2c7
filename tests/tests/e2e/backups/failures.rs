//! Failed backups (a database not there, an unreachable server, missing
//! rights, a full disk, a server killed mid-dump): no file left, one
//! incident per plan.

use super::*;

/// A database that is not on the server, an unreachable server, and a user
/// that may not read the globals: each run fails, the backup is `failed`
/// (never succeeded) with its reason, no file is left (partial or stored),
/// and each plan gets one incident however often it fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_backups_leave_no_files_and_open_one_incident_per_plan() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 2_000).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let db = unique("small");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    src.execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)")
        .await
        .unwrap();
    let role = unique("bk_ro");
    s.pool
        .execute(format!("CREATE ROLE \"{role}\" LOGIN").as_str())
        .await
        .unwrap();
    cluster_service(&admin, "ledger", "opsdeck", &db).await;
    cluster_service(&admin, "ledger-ro", &role, &db).await;
    let secret = "hunter2-backup-secret";
    pg_service(
        &admin,
        "gone",
        "postgres://opsdeck@127.0.0.1:1/x",
        Some(secret),
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let missing = create_plan(
        &admin,
        postgres_plan("missing-db", "ledger", &["nope"], "local"),
    )
    .await;
    let unreachable = create_plan(&admin, postgres_plan("unreachable", "gone", &[], "local")).await;
    let no_globals = create_plan(
        &admin,
        postgres_plan("no-globals", "ledger-ro", &[&db], "local"),
    )
    .await;

    // The same plan failing twice: two failed backups, one incident.
    let mut failed_ids = Vec::new();
    for attempt in 0..2 {
        let run = finished(&operator, run_plan(&operator, missing.id).await).await;
        assert_eq!(run.summary.status, RunStatus::Failed, "{}", run_text(&run));
        let list = backups(&operator, "?plan=missing-db").await;
        assert_eq!(list.len(), attempt + 1);
        let b = &list[0];
        assert_eq!(b.run_id, Some(run.summary.id));
        failed_ids.push(b.id);
        assert_eq!(b.status, BackupStatus::Failed, "{b:?}");
        assert_ne!(b.verification, Verification::Verified);
        assert!(b.finished_at.is_some());
        let e = b.error.clone().unwrap_or_default();
        assert!(e.contains("\"nope\"") && e.contains("not found"), "{e}");
        assert!(run_text(&run).contains("nope"), "{}", run_text(&run));
        assert!(
            files_under(&store.join("missing-db")).is_empty(),
            "{:?}",
            files_under(&store)
        );
        let open: Vec<_> = backup_incidents(&operator)
            .await
            .into_iter()
            .filter(|i| i.title == "Backup of missing-db failed")
            .collect();
        assert_eq!(open.len(), 1, "deduplicated: {open:?}");
        assert!(open[0].services.iter().any(|s| s.name == "ledger"));
    }

    // An unreachable server: the reason, never the password.
    let run = finished(&operator, run_plan(&operator, unreachable.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed);
    let b = &backups(&operator, "?plan=unreachable").await[0];
    assert_eq!(b.status, BackupStatus::Failed);
    let e = b.error.clone().unwrap_or_default();
    assert!(e.contains("connect"), "{e}");
    assert!(
        !e.contains(secret) && !run_text(&run).contains(secret),
        "{e}"
    );
    failed_ids.push(b.id);

    // The tool fails mid-pipeline (pg_dumpall as a non-superuser cannot
    // read pg_authid): the artifact is failed with the tool's message and
    // its partial file is gone.
    let run = finished(&operator, run_plan(&operator, no_globals.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed, "{}", run_text(&run));
    let b = backups(&operator, "?plan=no-globals").await[0].clone();
    assert_eq!(b.status, BackupStatus::Failed);
    failed_ids.push(b.id);
    let d = detail(&operator, b.id).await;
    assert!(!d.artifacts.is_empty());
    assert_eq!(d.artifacts[0].kind, "pg_globals");
    assert_eq!(d.artifacts[0].status, "failed", "{:?}", d.artifacts);
    let e = d.artifacts[0].error.clone().unwrap_or_default();
    assert!(e.contains("permission denied"), "{e}");
    assert!(d.artifacts.iter().all(|a| a.status == "failed"));
    assert!(
        b.error
            .clone()
            .unwrap_or_default()
            .contains("permission denied"),
        "{b:?}"
    );

    assert!(
        files_under(&store).is_empty(),
        "nothing stored by failed backups: {:?}",
        files_under(&store)
    );
    assert!(backups(&operator, "?status=succeeded").await.is_empty());
    let mut titles: Vec<String> = backup_incidents(&operator)
        .await
        .into_iter()
        .map(|i| i.title)
        .collect();
    titles.sort();
    assert_eq!(
        titles,
        [
            "Backup of missing-db failed",
            "Backup of no-globals failed",
            "Backup of unreachable failed"
        ]
    );
    let created = audit(&admin, "backup.created").await;
    assert_eq!(created.len(), 4, "{created:?}");
    assert!(created.iter().all(|e| e.outcome == Outcome::Failure));
    // The daily report: no good backup, the newest failed.
    let line = report_line(&operator, "missing-db").await;
    assert_eq!(line.status, CheckStatus::Critical, "{line:?}");
    assert!(
        line.detail
            .starts_with("no good backup yet; newest backup #")
            && line.detail.contains(" failed: "),
        "{}",
        line.detail
    );
    // A failed backup cannot be verified or downloaded.
    for id in &failed_ids {
        expect_error(
            operator
                .post(&format!("/api/v1/backups/{id}/verify"), &json!({}))
                .await,
            409,
        )
        .await;
    }
    let res = operator
        .get(&format!("/api/v1/backups/{}/artifacts/0", failed_ids[3]))
        .await;
    assert_eq!(res.status(), 409, "a failed artifact is not downloadable");
    src.close().await.ok();
    drop_db(&s.pool, &db).await;
    let _ = s
        .pool
        .execute(format!("DROP ROLE IF EXISTS \"{role}\"").as_str())
        .await;
}

/// A full disk: the local target is a 1 MiB tmpfs and the dump's
/// compressed size is several MiB. The write fails with the system's
/// reason, the backup is `failed` (never succeeded), nothing is left on
/// the target, not even the partial file, and a later backup to a target
/// with room succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_backup_and_leaves_no_partial_file() {
    if opsdeck_e2e::require::part(
        nix::unistd::geteuid().is_root(),
        "root (the test mounts a small tmpfs as the full disk)",
        "run the tests as root, as make test does",
    )
    .is_err()
    {
        return;
    }
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 2_500).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let db = unique("bulky");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    // About 6 MiB of random hex: zstd gets it to ~3 MiB, never under 1.
    src.execute(
        "CREATE TABLE blobs AS SELECT i AS id,
                (SELECT string_agg(md5(random()::text || i || j), '')
                   FROM generate_series(1, 100) j) AS body
           FROM generate_series(1, 1000) i",
    )
    .await
    .unwrap();
    cluster_service(&admin, "bulky", "opsdeck", &db).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("small");
    std::fs::create_dir(&store).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(&store)
        .status()
        .expect("mount");
    assert!(mounted.success(), "mounting the 1 MiB tmpfs");
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = std::process::Command::new("umount").arg(&self.0).status();
        }
    }
    let _unmount = Unmount(store.clone());
    create_target(&admin, "small", &store).await;
    create_target(&admin, "roomy", &tmp.path().join("roomy")).await;
    let plan = create_plan(&admin, postgres_plan("bulky", "bulky", &[&db], "small")).await;

    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    let text = run_text(&run);
    assert_eq!(run.summary.status, RunStatus::Failed, "{text}");
    let b = backups(&operator, "?plan=bulky").await[0].clone();
    assert_eq!(b.status, BackupStatus::Failed, "{b:?}");
    let d = detail(&operator, b.id).await;
    let dump = d
        .artifacts
        .iter()
        .find(|a| a.kind == "pg_dump")
        .expect("the dump artifact");
    assert_eq!(dump.status, "failed", "{:?}", d.artifacts);
    let reason = dump.error.clone().unwrap_or_default();
    assert!(reason.contains("No space left on device"), "{reason}");
    assert!(
        files_under(&store).is_empty(),
        "no object and no partial file on the full disk: {:?}",
        files_under(&store)
    );
    assert!(backups(&operator, "?status=succeeded").await.is_empty());
    let open: Vec<_> = backup_incidents(&operator)
        .await
        .into_iter()
        .filter(|i| i.title == "Backup of bulky failed")
        .collect();
    assert_eq!(open.len(), 1, "{open:?}");

    // The same plan on a target with room: good.
    let mut body = postgres_plan("bulky", "bulky", &[&db], "roomy");
    body["verify"] = json!(false);
    let res = admin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/backup-plans/{}", plan.id),
            &body,
        )
        .await;
    assert_eq!(res.status(), 200, "moving the plan");
    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&run)
    );
    assert_eq!(backups(&operator, "?status=succeeded").await.len(), 1);

    src.close().await.ok();
    drop_db(&s.pool, &db).await;
}

/// A real `opsdeck serve` killed with SIGKILL while a slow dump is being
/// written (its `.partial` file on disk): after a restart the run is
/// interrupted, the backup becomes `interrupted` (never succeeded), the
/// partial file is removed, an incident opens; the audit chain holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_the_backup_interrupted_and_no_partial_file() {
    use opsdeck_e2e::process::OpsdeckProcess;
    let (url, pool) = opsdeck_e2e::util::process_database().await;
    backup_ids_from(&pool, 3_000).await;
    // Slow to dump at zstd level 19 on two cores: ~70 MB of hex text.
    let db = unique("bulk");
    create_db(&pool, &db).await;
    let mut src = cluster_conn(&db).await;
    src.execute(
        "CREATE TABLE big (id int PRIMARY KEY, a text, b text);
         INSERT INTO big SELECT g, md5(g::text), md5((g * 31)::text) FROM generate_series(1, 800000) g",
    )
    .await
    .unwrap();
    src.close().await.ok();

    let env = [("OPSDECK_RUN_LEASE_SECS", "3")];
    let first = OpsdeckProcess::start(&url, &env).await;
    first.wait_ready().await;
    let api = first.login("ops").await;
    cluster_service(&api, "bulk", "opsdeck", &db).await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    create_target(&api, "local", &store).await;
    let mut body = postgres_plan("bulk", "bulk", &[&db], "local");
    body["zstd_level"] = json!(19);
    let plan = create_plan(&api, body).await;
    let run_id = run_plan(&api, plan.id).await;
    let (id, partial) = poll(
        Duration::from_secs(30),
        "the dump being written",
        async || {
            let list = backups(&api, "?status=running").await;
            let partial = files_under(&store)
                .into_iter()
                .find(|f| f.ends_with(".pg_dump.zst.partial"));
            match (list.first(), partial) {
                (Some(b), Some(p)) => Ok((b.id, p)),
                (b, p) => Err(format!("running {b:?}, partial {p:?}")),
            }
        },
    )
    .await;
    assert!(partial.starts_with(&format!("bulk/{id}/1-")), "{partial}");
    first.kill().await;
    // The kill itself settles nothing.
    let status: String = sqlx::query_scalar("SELECT status FROM backups WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "running");
    assert!(
        store.join(&partial).exists(),
        "the partial file is left by the crash"
    );

    let second = OpsdeckProcess::start(&url, &env).await;
    second.wait_ready().await;
    let restarted = Instant::now();
    let api = second.login("ops").await;
    let d = poll(
        Duration::from_secs(20),
        "the backup interrupted",
        async || {
            let d = detail(&api, id).await;
            if d.summary.status == BackupStatus::Running {
                Err(format!("{:?}", d.summary))
            } else {
                Ok(d)
            }
        },
    )
    .await;
    let took = restarted.elapsed();
    assert_eq!(
        d.summary.status,
        BackupStatus::Interrupted,
        "{:?}",
        d.summary
    );
    assert!(took <= Duration::from_secs(15), "settled after {took:?}");
    assert_ne!(d.summary.verification, Verification::Verified);
    assert!(d.summary.finished_at.is_some());
    let e = d.summary.error.clone().unwrap_or_default();
    assert!(e.contains("interrupted"), "{e}");
    assert!(
        d.artifacts.iter().all(|a| a.status != "running"),
        "{:?}",
        d.artifacts
    );
    let run: Run = api.json(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run.summary.status, RunStatus::Interrupted);
    assert!(
        files_under(&store).is_empty(),
        "partial and stored files removed: {:?}",
        files_under(&store)
    );
    let incidents = backup_incidents(&api).await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert_eq!(incidents[0].title, "Backup of bulk failed");
    assert!(backups(&api, "?status=succeeded").await.is_empty());
    let report: AuditVerifyReport = api.json("/api/v1/audit/verify").await;
    assert!(report.ok, "audit chain intact: {report:?}");
    let created = audit(&api, "backup.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].outcome, Outcome::Failure);
    second.stop().await;
    drop_db(&pool, &db).await;
}
