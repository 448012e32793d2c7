//! A backup round trip: files checked byte for byte, decompressed and
//! restored with the real tools, data compared; download; verification; a
//! corrupted copy refused.

use super::*;

/// Backup → files checked byte for byte → decompressed, listed and restored
/// with the real tools, data compared; download (operator) of the exact
/// bytes, refused to viewers, audited; a verify on demand; then a flipped
/// byte in the stored dump: verification fails with a checksum mismatch
/// and opens an incident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_round_trips_downloads_and_a_corrupted_copy_is_refused() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 1_000).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let db = unique("ledger");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    let expected = fill_ledger(&mut src).await;
    assert_eq!(row_counts(&mut src).await, expected, "the fixture itself");
    cluster_service(&admin, "ledger", "opsdeck", &db).await;

    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let target = create_target(&admin, "local", &store).await;
    assert_eq!(target.def.path, store.to_string_lossy());
    let mode = std::fs::metadata(&store).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700, "the target directory is created 0700");
    let plan = create_plan(
        &admin,
        postgres_plan("ledger-nightly", "ledger", &[&db], "local"),
    )
    .await;
    assert_eq!(
        (plan.def.zstd_level, plan.def.verify, plan.def.enabled),
        (3, true, true),
        "defaults"
    );
    assert!(plan.last.is_none());

    // Run (operator): 202 and a run of the built-in backup-run runbook.
    let run_id = run_plan(&operator, plan.id).await;
    let run = finished(&operator, run_id).await;
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&run)
    );
    assert_eq!(run.summary.runbook, "backup-run");
    assert_eq!(run.params.get("plan"), Some(&json!("ledger-nightly")));
    let text = run_text(&run);
    assert!(text.contains("checksum ok"), "{text}");
    assert!(text.contains("test restore ok"), "{text}");

    // The catalog.
    let list = backups(&viewer, "").await;
    assert_eq!(list.len(), 1, "{list:?}");
    let b = &list[0];
    let id = b.id;
    assert_eq!(b.status, BackupStatus::Succeeded, "{b:?}");
    assert_eq!(b.verification, Verification::Verified, "{b:?}");
    assert_eq!(
        (b.plan.as_str(), b.target.as_str(), b.trigger.as_str()),
        ("ledger-nightly", "local", "manual")
    );
    assert_eq!(b.requested_by, "operator-user");
    // The daily report reads the catalog.
    let line = report_line(&operator, "ledger-nightly").await;
    assert_eq!(line.status, CheckStatus::Ok, "{line:?}");
    assert!(
        line.detail
            .starts_with(&format!("last good backup #{} ", b.id))
            && line.detail.contains(" ago, verified;")
            && line.detail.contains("no backup schedule (by hand only)"),
        "{}",
        line.detail
    );
    assert_eq!(b.run_id, Some(run_id));
    assert_eq!(
        (b.error.as_deref(), b.verify_error.as_deref()),
        (None, None)
    );
    assert!(b.finished_at.is_some_and(|f| f >= b.started_at));
    let d = detail(&viewer, id).await;
    assert_eq!(&d.summary, b);
    assert!(d.verified_at.is_some());
    assert_eq!(d.artifacts.len(), 2, "{:?}", d.artifacts);
    let (g, a) = (&d.artifacts[0], &d.artifacts[1]);
    assert_eq!(
        (g.idx, g.kind.as_str(), g.source.as_str()),
        (0, "pg_globals", "postgres:ledger/globals")
    );
    assert_eq!(
        g.object_key,
        format!("ledger-nightly/{id}/0-postgres_ledger_globals.pg_globals.zst")
    );
    assert!(g.stats.is_empty(), "{:?}", g.stats);
    assert_eq!(
        (a.idx, a.kind.as_str(), a.source.clone()),
        (1, "pg_dump", format!("postgres:ledger/{db}"))
    );
    assert_eq!(
        a.object_key,
        format!("ledger-nightly/{id}/1-postgres_ledger_{db}.pg_dump.zst")
    );
    assert_eq!(a.stats, expected, "row counts taken at dump time");
    assert!(a.raw_bytes > a.bytes, "compressed: {a:?}");
    for art in [g, a] {
        assert_eq!(art.status, "stored", "{art:?}");
        assert_eq!(art.error, None);
        assert!(art.bytes > 0 && art.raw_bytes > 0, "{art:?}");
        assert!(
            art.tool.starts_with("pg_dump (PostgreSQL) 15"),
            "{}",
            art.tool
        );
        let sum = art.sha256.as_deref().expect("a checksum");
        assert!(
            sum.len() == 64 && sum.bytes().all(|c| c.is_ascii_hexdigit()),
            "{sum}"
        );
        // The stored file: its size and its SHA-256 computed here.
        let file = std::fs::read(store.join(&art.object_key))
            .unwrap_or_else(|e| panic!("{}: {e}", art.object_key));
        assert_eq!(file.len() as i64, art.bytes, "{}", art.object_key);
        assert_eq!(sha256_hex(&file), sum, "{}", art.object_key);
    }
    assert_eq!(b.bytes, g.bytes + a.bytes);
    assert_eq!(b.raw_bytes, g.raw_bytes + a.raw_bytes);
    assert_eq!(
        files_under(&store),
        [g.object_key.clone(), a.object_key.clone()],
        "exactly the two objects, no partial file"
    );
    let scratch: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname LIKE $1")
        .bind(format!("opsdeck_verify_{id}_%"))
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(scratch, 0, "the scratch database is dropped");

    // The stored objects decompress to what the tools wrote.
    let globals = unzstd(&store.join(&g.object_key)).await;
    assert_eq!(globals.len() as i64, g.raw_bytes);
    let globals = String::from_utf8(globals).unwrap();
    assert!(
        globals.contains("PostgreSQL database cluster dump")
            && globals.contains("CREATE ROLE opsdeck"),
        "{globals}"
    );
    let dump = unzstd(&store.join(&a.object_key)).await;
    assert_eq!(dump.len() as i64, a.raw_bytes);
    assert!(dump.starts_with(b"PGDMP"), "custom format");
    let dump_file = tmp.path().join("ledger.dump");
    std::fs::write(&dump_file, &dump).unwrap();
    let list_out = tokio::process::Command::new(pg_tool("pg_restore"))
        .arg("--list")
        .arg(&dump_file)
        .output()
        .await
        .unwrap();
    assert!(
        list_out.status.success(),
        "{}",
        String::from_utf8_lossy(&list_out.stderr)
    );
    let toc = String::from_utf8_lossy(&list_out.stdout);
    assert!(toc.contains("TABLE DATA shop Order Items opsdeck"), "{toc}");

    // Restored with pg_restore into a new database: same tables, same rows.
    let restored = unique("ledger_restored");
    create_db(&s.pool, &restored).await;
    let out = tokio::process::Command::new(pg_tool("pg_restore"))
        .args(["--no-owner", "--exit-on-error", "-h"])
        .arg(socket_dir())
        .args(["-U", "opsdeck", "-d", &restored])
        .arg(&dump_file)
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "pg_restore: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut back = cluster_conn(&restored).await;
    assert_eq!(row_counts(&mut back).await, expected);
    for t in LEDGER_TABLES {
        assert_eq!(
            content_digest(&mut back, t).await,
            content_digest(&mut src, t).await,
            "content of {t}"
        );
    }
    let cell: (String, Value) =
        sqlx::query_as("SELECT \"Line Note\", payload FROM shop.\"Order Items\" WHERE id = 2999")
            .fetch_one(&mut back)
            .await
            .unwrap();
    assert!(cell.0.contains('\t') && cell.0.ends_with("x'y"), "{cell:?}");
    assert_eq!(cell.1["sku"], "SKU-002999");
    back.close().await.ok();

    // Plans show their newest backup; the catalog filters.
    let plans: Vec<BackupPlan> = viewer.json("/api/v1/backup-plans").await;
    assert_eq!(plans.len(), 1);
    assert_eq!(plans[0].last.as_ref().map(|l| l.id), Some(id));
    assert_eq!(backups(&viewer, "?plan=ledger-nightly").await.len(), 1);
    assert_eq!(backups(&viewer, "?plan=other").await.len(), 0);
    assert_eq!(backups(&viewer, "?status=succeeded").await.len(), 1);
    assert_eq!(backups(&viewer, "?status=failed").await.len(), 0);
    expect_error(viewer.get("/api/v1/backups?status=bogus").await, 400).await;
    expect_error(viewer.get("/api/v1/backups/999999").await, 404).await;

    // Download (operator): the stored bytes, as an attachment.
    let res = operator
        .get(&format!("/api/v1/backups/{id}/artifacts/1"))
        .await;
    assert_eq!(res.status(), 200);
    let header = |n: reqwest::header::HeaderName| {
        res.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert_eq!(header(reqwest::header::CONTENT_TYPE), "application/zstd");
    assert_eq!(
        header(reqwest::header::CONTENT_DISPOSITION),
        format!("attachment; filename=\"ledger-nightly-{id}-1.pg_dump.zst\"")
    );
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len() as i64, a.bytes);
    assert_eq!(Some(sha256_hex(&body)), a.sha256);
    let res = viewer
        .get(&format!("/api/v1/backups/{id}/artifacts/1"))
        .await;
    assert_eq!(res.status(), 403, "viewers do not download");
    expect_error(
        operator
            .get(&format!("/api/v1/backups/{id}/artifacts/7"))
            .await,
        404,
    )
    .await;
    let downloads = audit(&admin, "backup.download").await;
    assert_eq!(downloads.len(), 1, "{downloads:?}");
    assert_eq!(downloads[0].actor, "operator-user");
    assert_eq!(
        downloads[0].target.as_deref(),
        Some(&*format!("backup:{id}"))
    );

    // Verify on demand (intact): verified again, later.
    let first_verified = d.verified_at.unwrap();
    let v = started(
        operator
            .post(&format!("/api/v1/backups/{id}/verify"), &json!({}))
            .await,
        "verify",
    )
    .await;
    let vr = finished(&operator, v).await;
    assert_eq!(vr.summary.status, RunStatus::Succeeded, "{}", run_text(&vr));
    assert_eq!(vr.summary.runbook, "backup-verify");
    assert_eq!(vr.params.get("backup"), Some(&json!(id)));
    let d2 = detail(&viewer, id).await;
    assert_eq!(d2.summary.verification, Verification::Verified);
    assert!(d2.verified_at.unwrap() > first_verified);
    assert!(backup_incidents(&viewer).await.is_empty());

    // One byte flipped in the stored dump: refused.
    let path = store.join(&a.object_key);
    let mut bytes = std::fs::read(&path).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(&path, &bytes).unwrap();
    let v = started(
        operator
            .post(&format!("/api/v1/backups/{id}/verify"), &json!({}))
            .await,
        "verify",
    )
    .await;
    let vr = finished(&operator, v).await;
    assert_eq!(vr.summary.status, RunStatus::Failed, "{}", run_text(&vr));
    assert!(
        run_text(&vr).contains("checksum mismatch"),
        "{}",
        run_text(&vr)
    );
    let d3 = detail(&viewer, id).await;
    assert_eq!(d3.summary.verification, Verification::Failed);
    assert_eq!(
        d3.summary.status,
        BackupStatus::Succeeded,
        "the backup was good when made; its verification failed"
    );
    let ve = d3.summary.verify_error.clone().unwrap_or_default();
    assert!(ve.contains("checksum mismatch"), "{ve}");
    let line = report_line(&operator, "ledger-nightly").await;
    assert_eq!(line.status, CheckStatus::Critical, "{line:?}");
    assert!(
        line.detail.contains("its verification FAILED: ")
            && line.detail.contains("checksum mismatch"),
        "{}",
        line.detail
    );
    assert!(ve.contains(&a.source), "names the artifact: {ve}");
    let incidents = backup_incidents(&viewer).await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    assert!(
        incidents[0].title.contains("ledger-nightly"),
        "{}",
        incidents[0].title
    );
    assert!(
        incidents[0].services.iter().any(|s| s.name == "ledger"),
        "{:?}",
        incidents[0].services
    );
    let verified = audit(&admin, "backup.verified").await;
    assert_eq!(
        verified.iter().map(|e| e.outcome).collect::<Vec<_>>(),
        [Outcome::Failure, Outcome::Success, Outcome::Success],
        "newest first"
    );
    assert_eq!(audit(&admin, "backup.verify").await.len(), 2);
    let created = audit(&admin, "backup.created").await;
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].outcome, Outcome::Success);
    src.close().await.ok();
    drop_db(&s.pool, &restored).await;
    drop_db(&s.pool, &db).await;
}
