//! Backups on an S3-compatible target end to end, against a real S3 server
//! (moto, checking SigV4 signatures: `opsdeck_e2e::s3`): the target API
//! (probe on save, write-only secret, validation), backup → verify →
//! download with the stored objects read back from the bucket and restored
//! with the real `pg_restore`, an unreachable bucket, a cancelled run and a
//! server killed mid-upload (no object, no unfinished multipart upload
//! left), and the storage layer's uploads on their own.
//!
//! Backup ids of these tests start at 6000 (see `backup_ids_from`).

use std::time::{Duration, Instant};

use opsdeck::backups::storage::{S3Store, Upload};
use opsdeck_e2e::browser::screenshots;
use opsdeck_e2e::fixtures::{
    backup_ids_from, cluster_conn, create_db, drop_db, fill_ledger, pg_tool, row_counts,
    sha256_hex, socket_dir, unique, LEDGER_TABLES,
};
use opsdeck_e2e::flows::audit::audit;
use opsdeck_e2e::flows::backups::{
    backup_incidents, backups, cluster_service, create_plan, created, detail, finished,
    postgres_plan, run_plan, run_text, started,
};
use opsdeck_e2e::s3::S3Server;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{expect_error, ok_json, poll};
use opsdeck_wire::{
    AuditVerifyReport, BackupStatus, BackupTarget, Outcome, Role, Run, RunStatus, S3Settings,
    TargetKind, Verification,
};
use serde_json::{json, Value};
use sqlx::{Connection, Executor};

/// A target body for `bucket` on `s3` (plain HTTP on loopback).
fn s3_body(name: &str, s3: &S3Server, bucket: &str, prefix: &str) -> Value {
    json!({"name": name, "kind": "s3",
           "s3": {"endpoint": s3.endpoint(), "bucket": bucket, "prefix": prefix,
                  "access_key_id": s3.access_key_id(), "allow_http": true},
           "secret_access_key": s3.secret_access_key()})
}

async fn create_s3_target(admin: &Api, body: &Value) -> BackupTarget {
    created(
        admin.post("/api/v1/backup-targets", body).await,
        "create S3 target",
    )
    .await
}

/// The body of a GET as text (to look for what must not be there).
async fn raw(api: &Api, path: &str) -> String {
    let res = api.get(path).await;
    assert_eq!(res.status(), 200, "GET {path}");
    res.text().await.unwrap()
}

/// `zstd -d` of bytes (the CLI, argv).
async fn unzstd_bytes(bytes: &[u8]) -> Vec<u8> {
    let tmp = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(tmp.path(), bytes).unwrap();
    opsdeck_e2e::fixtures::unzstd(tmp.path()).await
}

/// Backup on S3 → the objects in the bucket (under the prefix, nothing
/// else: the probe object is gone, no unfinished upload) checked byte for
/// byte, decompressed and restored with `pg_restore`, data compared; one
/// dump is large enough to be a multipart upload; download (operator) of
/// the same bytes; verification on demand; a flipped byte in the bucket
/// fails verification; delete removes the objects. The secret is in no
/// answer, audit entry or run output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_s3_backup_round_trips_and_a_corrupted_object_is_refused() {
    let Ok(s3) = S3Server::shared() else {
        return;
    };
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 6_000).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let bucket = s3.bucket("roundtrip").await;
    let secret = s3.secret_access_key().to_owned();

    let db = unique("s3ledger");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    let mut expected = fill_ledger(&mut src).await;
    // ~20 MB of hex: more than one 8 MiB part once compressed.
    src.execute(
        "CREATE TABLE public.bulk (id int PRIMARY KEY, a text, b text);
         INSERT INTO public.bulk SELECT g, md5(g::text), md5((g * 7)::text)
         FROM generate_series(1, 400000) g",
    )
    .await
    .unwrap();
    expected.insert("public.bulk".into(), 400_000);
    assert_eq!(row_counts(&mut src).await, expected, "the fixture itself");
    cluster_service(&admin, "ledger", "opsdeck", &db).await;

    // The target: created after a probe, the secret never shown.
    let res = admin
        .post(
            "/api/v1/backup-targets",
            &s3_body("offsite", s3, &bucket, "/opsdeck/prod/"),
        )
        .await;
    assert_eq!(res.status(), 201);
    let text = res.text().await.unwrap();
    assert!(!text.contains(&secret), "the secret in the answer: {text}");
    let t: BackupTarget = serde_json::from_str(&text).unwrap();
    assert_eq!(t.def.kind, TargetKind::S3);
    assert!(t.secret_set);
    assert_eq!(t.def.secret_access_key, None);
    assert_eq!(t.def.path, "");
    assert_eq!(
        t.def.s3,
        Some(S3Settings {
            endpoint: s3.endpoint(),
            region: "us-east-1".into(),
            bucket: bucket.clone(),
            prefix: "opsdeck/prod".into(),
            access_key_id: s3.access_key_id().into(),
            allow_http: true,
        }),
        "stored as checked (default region, prefix without slashes)"
    );
    assert!(
        s3.keys(&bucket, "").await.is_empty(),
        "the probe object is removed"
    );
    for api in [&viewer, &admin] {
        let listed = raw(api, "/api/v1/backup-targets").await;
        assert!(!listed.contains(&secret), "{listed}");
        assert!(listed.contains("\"secret_set\":true"), "{listed}");
    }

    let plan = create_plan(
        &admin,
        postgres_plan("ledger-offsite", "ledger", &[&db], "offsite"),
    )
    .await;
    let started_at = Instant::now();
    let run_id = run_plan(&operator, plan.id).await;
    let run = finished(&operator, run_id).await;
    let took = started_at.elapsed();
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "{}",
        run_text(&run)
    );
    let text = run_text(&run);
    assert!(
        text.contains("checksum ok") && text.contains("test restore ok"),
        "{text}"
    );
    assert!(!text.contains(&secret));
    eprintln!("S3 backup + verify of {db}: {took:?}");

    let list = backups(&viewer, "").await;
    assert_eq!(list.len(), 1, "{list:?}");
    let b = &list[0];
    let id = b.id;
    assert!(id >= 6_000);
    assert_eq!(
        (b.status, b.verification, b.target.as_str()),
        (BackupStatus::Succeeded, Verification::Verified, "offsite")
    );
    let d = detail(&viewer, id).await;
    assert_eq!(d.artifacts.len(), 2, "{:?}", d.artifacts);
    let (g, a) = (&d.artifacts[0], &d.artifacts[1]);
    assert_eq!(a.stats, expected, "row counts taken at dump time");

    // The bucket holds exactly the two objects, under the prefix.
    let full = |key: &str| format!("opsdeck/prod/{key}");
    let listed = s3.list(&bucket, "").await;
    assert_eq!(
        listed,
        [
            (full(&g.object_key), g.bytes as u64),
            (full(&a.object_key), a.bytes as u64)
        ],
        "exactly the two objects"
    );
    assert!(
        a.bytes > 8 << 20,
        "the dump is a multipart upload ({} bytes)",
        a.bytes
    );
    assert!(s3.uploads(&bucket).await.is_empty(), "no unfinished upload");
    for art in [g, a] {
        let bytes = s3.get(&bucket, &full(&art.object_key)).await;
        assert_eq!(Some(sha256_hex(&bytes)), art.sha256, "{}", art.object_key);
    }

    // What is in the bucket restores with the real tools: same data.
    let dump = unzstd_bytes(&s3.get(&bucket, &full(&a.object_key)).await).await;
    assert_eq!(dump.len() as i64, a.raw_bytes);
    assert!(dump.starts_with(b"PGDMP"));
    let tmp = tempfile::tempdir().unwrap();
    let dump_file = tmp.path().join("ledger.dump");
    std::fs::write(&dump_file, &dump).unwrap();
    let restored = unique("s3ledger_restored");
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
    for t in LEDGER_TABLES.iter().chain(&["public.bulk"]) {
        assert_eq!(
            opsdeck_e2e::fixtures::content_digest(&mut back, t).await,
            opsdeck_e2e::fixtures::content_digest(&mut src, t).await,
            "content of {t}"
        );
    }
    back.close().await.ok();
    let globals =
        String::from_utf8(unzstd_bytes(&s3.get(&bucket, &full(&g.object_key)).await).await)
            .unwrap();
    assert!(globals.contains("CREATE ROLE opsdeck"), "{globals}");

    // Download (operator): the bytes in the bucket, streamed from it.
    let res = operator
        .get(&format!("/api/v1/backups/{id}/artifacts/1"))
        .await;
    assert_eq!(res.status(), 200);
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len() as i64, a.bytes);
    assert_eq!(Some(sha256_hex(&body)), a.sha256);
    assert_eq!(
        viewer
            .get(&format!("/api/v1/backups/{id}/artifacts/1"))
            .await
            .status(),
        403
    );

    // Verify on demand, then with one byte flipped in the bucket.
    let v = started(
        operator
            .post(&format!("/api/v1/backups/{id}/verify"), &json!({}))
            .await,
        "verify",
    )
    .await;
    let vr = finished(&operator, v).await;
    assert_eq!(vr.summary.status, RunStatus::Succeeded, "{}", run_text(&vr));
    let mut bytes = s3.get(&bucket, &full(&g.object_key)).await;
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    s3.put(&bucket, &full(&g.object_key), bytes).await;
    let v = started(
        operator
            .post(&format!("/api/v1/backups/{id}/verify"), &json!({}))
            .await,
        "verify",
    )
    .await;
    let vr = finished(&operator, v).await;
    assert_eq!(vr.summary.status, RunStatus::Failed);
    let d = detail(&viewer, id).await;
    assert_eq!(d.summary.verification, Verification::Failed);
    let ve = d.summary.verify_error.unwrap_or_default();
    assert!(
        ve.contains("checksum mismatch") && ve.contains(&g.source),
        "{ve}"
    );
    assert_eq!(backup_incidents(&viewer).await.len(), 1);

    // Delete (admin): the objects leave the bucket.
    let res = admin.delete(&format!("/api/v1/backups/{id}")).await;
    assert_eq!(res.status(), 204);
    assert!(
        s3.keys(&bucket, "").await.is_empty(),
        "{:?}",
        s3.list(&bucket, "").await
    );

    // The secret is in no audit entry.
    let trail = raw(&admin, "/api/v1/audit?limit=200").await;
    assert!(!trail.contains(&secret), "the secret in the audit trail");
    let creates = audit(&admin, "backup.target.create").await;
    assert_eq!(creates.len(), 1);
    assert_eq!(creates[0].params["credentials"], "set");
    assert_eq!(creates[0].params["bucket"], json!(bucket));
    src.close().await.ok();
    drop_db(&s.pool, &restored).await;
    drop_db(&s.pool, &db).await;
}

/// Targets that cannot store are refused at the boundary with the reason
/// (field named): a wrong secret (the server checks signatures), a bucket
/// that does not exist, an endpoint nobody listens on, plain HTTP without
/// `allow_http`, missing fields. An update without a secret keeps the
/// stored one (the next backup works); a wrong one is refused and changes
/// nothing. A bucket that goes away after the target was saved: the
/// backup fails with the reason, nothing is marked good, the incident
/// opens. Only admins manage targets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_targets_are_probed_and_an_unreachable_bucket_fails_the_backup() {
    let Ok(s3) = S3Server::shared() else {
        return;
    };
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 6_100).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let bucket = s3.bucket("probed").await;
    let secret = s3.secret_access_key().to_owned();

    let post = |body: Value| {
        let admin = &admin;
        async move { admin.post("/api/v1/backup-targets", &body).await }
    };
    let mut wrong = s3_body("t", s3, &bucket, "");
    wrong["secret_access_key"] = json!("not-the-secret-key");
    let m = expect_error(post(wrong).await, 400).await;
    assert!(
        m.starts_with("secret_access_key:") && m.contains("SignatureDoesNotMatch"),
        "{m}"
    );
    let m = expect_error(post(s3_body("t", s3, "no-such-bucket-here", "")).await, 400).await;
    assert!(
        m.starts_with("s3.bucket:") && m.contains("NoSuchBucket"),
        "{m}"
    );
    let mut nobody = s3_body("t", s3, &bucket, "");
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    nobody["s3"]["endpoint"] = json!(format!("http://127.0.0.1:{closed}"));
    let t0 = Instant::now();
    let m = expect_error(post(nobody).await, 400).await;
    assert!(
        m.starts_with("s3.endpoint:") && m.contains("cannot reach"),
        "{m}"
    );
    assert!(t0.elapsed() < Duration::from_secs(15), "{:?}", t0.elapsed());
    let mut plain = s3_body("t", s3, &bucket, "");
    plain["s3"]["allow_http"] = json!(false);
    let m = expect_error(post(plain).await, 400).await;
    assert!(
        m.starts_with("s3.endpoint:") && m.contains("allow_http"),
        "{m}"
    );
    let mut no_secret = s3_body("t", s3, &bucket, "");
    no_secret
        .as_object_mut()
        .unwrap()
        .remove("secret_access_key");
    let m = expect_error(post(no_secret).await, 400).await;
    assert!(m.starts_with("secret_access_key:"), "{m}");
    let m = expect_error(
        post(json!({"name": "t", "kind": "s3", "secret_access_key": "x"})).await,
        400,
    )
    .await;
    assert!(m.starts_with("s3:"), "{m}");
    let mut bad_bucket = s3_body("t", s3, "Not_A_Bucket", "");
    bad_bucket["name"] = json!("t");
    let m = expect_error(post(bad_bucket).await, 400).await;
    assert!(m.starts_with("s3.bucket:"), "{m}");
    for api in [&viewer, &operator] {
        let res = api
            .post("/api/v1/backup-targets", &s3_body("t", s3, &bucket, ""))
            .await;
        assert_eq!(res.status(), 403);
    }
    assert!(
        s3.keys(&bucket, "").await.is_empty(),
        "refused requests store nothing"
    );
    assert!(admin
        .json::<Vec<BackupTarget>>("/api/v1/backup-targets")
        .await
        .is_empty());

    // A good target; an update without the secret keeps it.
    let t = create_s3_target(&admin, &s3_body("offsite", s3, &bucket, "a")).await;
    let mut keep = s3_body("offsite", s3, &bucket, "b");
    keep.as_object_mut().unwrap().remove("secret_access_key");
    let res = admin
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/backup-targets/{}", t.id),
            &keep,
        )
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.unwrap();
    assert!(!text.contains(&secret));
    let kept: BackupTarget = serde_json::from_str(&text).unwrap();
    assert!(kept.secret_set);
    assert_eq!(kept.def.s3.as_ref().map(|s| s.prefix.as_str()), Some("b"));
    let mut wrong = keep.clone();
    wrong["secret_access_key"] = json!("still-not-the-secret");
    let m = expect_error(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-targets/{}", t.id),
                &wrong,
            )
            .await,
        400,
    )
    .await;
    assert!(m.contains("SignatureDoesNotMatch"), "{m}");

    let db = unique("s3small");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    src.execute("CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 42)")
        .await
        .unwrap();
    src.close().await.ok();
    cluster_service(&admin, "small", "opsdeck", &db).await;
    let plan = create_plan(&admin, postgres_plan("small", "small", &[&db], "offsite")).await;
    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "the kept secret works: {}",
        run_text(&run)
    );
    let good = backups(&viewer, "").await[0].clone();
    assert_eq!(
        s3.keys(&bucket, "b/").await.len(),
        2,
        "stored under the new prefix"
    );

    // A bucket that goes away (its own server, stopped after the probe).
    let own = S3Server::start().expect("moto (the shared one started)");
    let gone_bucket = own.bucket("gone").await;
    create_s3_target(&admin, &s3_body("gone", &own, &gone_bucket, "")).await;
    let doomed = create_plan(&admin, postgres_plan("doomed", "small", &[&db], "gone")).await;
    own.stop();
    let t0 = Instant::now();
    let run = finished(&operator, run_plan(&operator, doomed.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed, "{}", run_text(&run));
    assert!(t0.elapsed() < Duration::from_secs(60), "{:?}", t0.elapsed());
    let b = backups(&viewer, "?plan=doomed").await[0].clone();
    assert_eq!(b.status, BackupStatus::Failed, "{b:?}");
    assert_ne!(b.verification, Verification::Verified);
    let e = b.error.clone().unwrap_or_default();
    assert!(e.contains("cannot reach the endpoint"), "{e}");
    assert!(!e.contains(&secret) && !run_text(&run).contains(&secret));
    let d = detail(&viewer, b.id).await;
    assert!(
        d.artifacts.iter().all(|a| a.status == "failed"),
        "{:?}",
        d.artifacts
    );
    let succeeded = backups(&viewer, "?status=succeeded").await;
    assert_eq!(
        succeeded.iter().map(|b| b.id).collect::<Vec<_>>(),
        [good.id],
        "only the good one"
    );
    let incidents = backup_incidents(&viewer).await;
    assert_eq!(
        incidents
            .iter()
            .map(|i| i.title.as_str())
            .collect::<Vec<_>>(),
        ["Backup of doomed failed"]
    );
    let res = operator
        .get(&format!("/api/v1/backups/{}/artifacts/0", b.id))
        .await;
    assert_eq!(res.status(), 409, "a failed backup is not downloadable");

    // Switching a target to local drops its secret.
    let dir = tempfile::tempdir().unwrap();
    let moved: BackupTarget = ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-targets/{}", t.id),
                &json!({"name": "offsite", "kind": "local", "path": dir.path().join("t")}),
            )
            .await,
        "to local",
    )
    .await;
    assert_eq!(
        (moved.def.kind, moved.secret_set, moved.def.s3.is_none()),
        (TargetKind::Local, false, true)
    );
    let secret_left: Option<String> =
        sqlx::query_scalar("SELECT secret FROM backup_targets WHERE id = $1")
            .bind(t.id)
            .fetch_one(&s.pool)
            .await
            .unwrap();
    assert_eq!(secret_left, None);

    let trail = raw(&admin, "/api/v1/audit?limit=200").await;
    assert!(!trail.contains(&secret) && !trail.contains("still-not-the-secret"));
    let updates = audit(&admin, "backup.target.update").await;
    assert_eq!(updates.len(), 2, "{updates:?}");
    assert_eq!(updates[1].params["credentials"], "kept");
    let created = audit(&admin, "backup.created").await;
    assert_eq!(
        created.iter().map(|e| e.outcome).collect::<Vec<_>>(),
        [Outcome::Failure, Outcome::Success]
    );
    drop_db(&s.pool, &db).await;
}

/// A loopback TCP proxy to `upstream` that forwards at most
/// `bytes_per_sec` towards it (answers pass freely). Returns its port.
async fn throttled_proxy(upstream: u16, bytes_per_sec: u64) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                let up = async move {
                    let mut buf = vec![0u8; 16 << 10];
                    let started = Instant::now();
                    let mut sent = 0u64;
                    while let Ok(n) = cr.read(&mut buf).await {
                        if n == 0 || sw.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                        sent += n as u64;
                        let due = Duration::from_secs_f64(sent as f64 / bytes_per_sec as f64);
                        if let Some(wait) = due.checked_sub(started.elapsed()) {
                            tokio::time::sleep(wait).await;
                        }
                    }
                    let _ = sw.shutdown().await;
                };
                let down = async move {
                    let _ = tokio::io::copy(&mut sr, &mut cw).await;
                    let _ = cw.shutdown().await;
                };
                tokio::join!(up, down);
            });
        }
    });
    port
}

/// Unfinished multipart uploads of `key` in `bucket`.
async fn uploads_of(s3: &S3Server, bucket: &str, key: &str) -> usize {
    s3.uploads(bucket)
        .await
        .into_iter()
        .filter(|(k, _)| k == key)
        .count()
}

/// A dump of ~10 MiB stored to S3 through a slow link, twice, with real `opsdeck serve`
/// processes: cancelled while its multipart upload is under way (the run
/// cancelled, the backup interrupted, no object, the upload aborted); then
/// killed with SIGKILL mid-upload (no object under the key, the unfinished
/// upload left by the crash), and after a restart the backup is
/// `interrupted` and the sweep has aborted the upload: nothing left in the
/// bucket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_or_killed_s3_upload_leaves_no_object_and_no_parts() {
    use opsdeck_e2e::process::OpsdeckProcess;
    let Ok(s3) = S3Server::shared() else {
        return;
    };
    let (url, pool) = opsdeck_e2e::util::process_database().await;
    backup_ids_from(&pool, 6_200).await;
    let bucket = s3.bucket("killed").await;
    let db = unique("s3bulk");
    create_db(&pool, &db).await;
    let mut src = cluster_conn(&db).await;
    src.execute(
        "CREATE TABLE big (id int PRIMARY KEY, a text, b text);
         INSERT INTO big SELECT g, md5(g::text), md5((g * 31)::text) FROM generate_series(1, 300000) g",
    )
    .await
    .unwrap();
    src.close().await.ok();

    let env = [("OPSDECK_RUN_LEASE_SECS", "3")];
    let first = OpsdeckProcess::start(&url, &env).await;
    first.wait_ready().await;
    let api = first.login("ops").await;
    cluster_service(&api, "bulk", "opsdeck", &db).await;
    // Through a proxy that lets 1 MiB/s through towards the bucket: the
    // ~10 MiB dump uploads for several seconds, its multipart upload open
    // all along (compression is not slowed, so this does not depend on
    // how fast the machine is).
    let proxy = throttled_proxy(s3.port(), 1 << 20).await;
    let mut target = s3_body("offsite", s3, &bucket, "k");
    target["s3"]["endpoint"] = json!(format!("http://127.0.0.1:{proxy}"));
    create_s3_target(&api, &target).await;
    let mut body = postgres_plan("bulk", "bulk", &[&db], "offsite");
    body["zstd_level"] = json!(1);
    body["verify"] = json!(false);
    let plan = create_plan(&api, body).await;

    // Waits for the dump's multipart upload; returns backup id and key.
    async fn mid_upload(api: &Api, s3: &S3Server, bucket: &str) -> (i64, String) {
        poll(
            Duration::from_secs(60),
            "the dump's multipart upload under way",
            async || {
                let list = backups(api, "?status=running").await;
                let Some(b) = list.first() else {
                    return Err("no running backup".to_string());
                };
                let d = detail(api, b.id).await;
                let Some(a) = d.artifacts.iter().find(|a| a.kind == "pg_dump") else {
                    return Err(format!("artifacts {:?}", d.artifacts));
                };
                let key = format!("k/{}", a.object_key);
                if uploads_of(s3, bucket, &key).await == 1 {
                    Ok((b.id, key))
                } else {
                    Err(format!("uploads {:?}", s3.uploads(bucket).await))
                }
            },
        )
        .await
    }

    // 1. Cancelled.
    let t0 = Instant::now();
    let run_id = run_plan(&api, plan.id).await;
    let (id, key) = mid_upload(&api, s3, &bucket).await;
    eprintln!("multipart upload under way after {:?}", t0.elapsed());
    assert!(
        s3.keys(&bucket, &key).await.is_empty(),
        "not visible before complete"
    );
    let res = api
        .post(&format!("/api/v1/runs/{run_id}/cancel"), &json!({}))
        .await;
    assert!(res.status().is_success(), "cancel: {}", res.status());
    let d = poll(
        Duration::from_secs(30),
        "the cancelled backup settled",
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
    assert_ne!(d.summary.status, BackupStatus::Succeeded, "{:?}", d.summary);
    poll(
        Duration::from_secs(20),
        "the cancelled upload aborted",
        async || match uploads_of(s3, &bucket, &key).await {
            0 => Ok(()),
            n => Err(format!("{n} unfinished")),
        },
    )
    .await;
    assert!(
        s3.keys(&bucket, "").await.is_empty(),
        "{:?}",
        s3.list(&bucket, "").await
    );

    eprintln!("cancelled and cleaned after {:?}", t0.elapsed());

    // 2. Killed.
    let t0 = Instant::now();
    let run_id = run_plan(&api, plan.id).await;
    let (id, key) = mid_upload(&api, s3, &bucket).await;
    first.kill().await;
    let status: String = sqlx::query_scalar("SELECT status FROM backups WHERE id = $1")
        .bind(id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(status, "running", "the kill itself settles nothing");
    assert_eq!(
        uploads_of(s3, &bucket, &key).await,
        1,
        "the crash leaves its parts"
    );
    assert!(
        s3.keys(&bucket, &key).await.is_empty(),
        "but no object under the dump's key (the globals before it are stored)"
    );

    let second = OpsdeckProcess::start(&url, &env).await;
    second.wait_ready().await;
    let restarted = Instant::now();
    let api = second.login("ops").await;
    let d = poll(
        Duration::from_secs(30),
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
    assert_eq!(
        d.summary.status,
        BackupStatus::Interrupted,
        "{:?}",
        d.summary
    );
    eprintln!("killed, restarted and swept after {:?}", t0.elapsed());
    assert!(
        restarted.elapsed() <= Duration::from_secs(20),
        "{:?}",
        restarted.elapsed()
    );
    let run: Run = api.json(&format!("/api/v1/runs/{run_id}")).await;
    assert_eq!(run.summary.status, RunStatus::Interrupted);
    assert_eq!(
        uploads_of(s3, &bucket, &key).await,
        0,
        "the sweep aborted the unfinished upload"
    );
    assert!(s3.uploads(&bucket).await.is_empty());
    assert!(
        s3.keys(&bucket, "").await.is_empty(),
        "{:?}",
        s3.list(&bucket, "").await
    );
    assert!(backups(&api, "?status=succeeded").await.is_empty());
    let report: AuditVerifyReport = api.json("/api/v1/audit/verify").await;
    assert!(report.ok, "{report:?}");
    second.stop().await;
    drop_db(&pool, &db).await;
}

/// The storage layer on a real S3 server: a small object is one PUT, a
/// large one a multipart upload; nothing is visible before `finish`;
/// `abort` and a drop without `finish` leave no object and no parts;
/// `read` streams the exact bytes; `delete` is idempotent and also aborts
/// what an unfinished upload of the key left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_uploads_appear_only_when_complete_and_aborts_leave_nothing() {
    use tokio::io::AsyncReadExt;
    let Ok(s3) = S3Server::shared() else {
        return;
    };
    let bucket = s3.bucket("storage").await;
    let settings = S3Settings {
        endpoint: s3.endpoint(),
        region: String::new(),
        bucket: bucket.clone(),
        prefix: "p".into(),
        access_key_id: s3.access_key_id().into(),
        allow_http: true,
    };
    let store = S3Store::new(&settings, s3.secret_access_key()).unwrap();
    store.probe().await.unwrap();
    // 21 MiB of varied bytes: three parts (8 + 8 + 5).
    let big: Vec<u8> = (0..21u32 << 20)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();

    let t0 = Instant::now();
    let mut up = store_create(&store, "a/big").await;
    for chunk in big.chunks(1 << 20) {
        up.write(chunk).await.unwrap();
    }
    assert_eq!(uploads_of(s3, &bucket, "p/a/big").await, 1);
    assert!(
        s3.keys(&bucket, "").await.is_empty(),
        "invisible until finished"
    );
    up.finish().await.unwrap();
    eprintln!("21 MiB multipart upload to moto: {:?}", t0.elapsed());
    assert_eq!(
        s3.list(&bucket, "").await,
        [("p/a/big".to_owned(), big.len() as u64)]
    );
    assert!(s3.get(&bucket, "p/a/big").await == big, "the exact bytes");
    let mut r = opsdeck::backups::storage::Store::S3(store.clone())
        .read("a/big")
        .await
        .unwrap();
    let mut back = Vec::new();
    r.read_to_end(&mut back).await.unwrap();
    assert!(back == big, "read streams the exact bytes");

    // Small: one PUT at finish, never a multipart upload.
    let mut up = store_create(&store, "a/small").await;
    up.write(b"tiny").await.unwrap();
    assert!(s3.uploads(&bucket).await.is_empty());
    up.finish().await.unwrap();
    assert_eq!(s3.get(&bucket, "p/a/small").await, b"tiny");

    // Aborted and dropped uploads leave nothing.
    let mut up = store_create(&store, "a/aborted").await;
    up.write(&big[..(17 << 20)]).await.unwrap();
    assert_eq!(uploads_of(s3, &bucket, "p/a/aborted").await, 1);
    up.abort().await;
    assert_eq!(uploads_of(s3, &bucket, "p/a/aborted").await, 0);
    let mut up = store_create(&store, "a/dropped").await;
    up.write(&big[..(9 << 20)]).await.unwrap();
    drop(up);
    poll(
        Duration::from_secs(10),
        "the dropped upload aborted",
        async || match uploads_of(s3, &bucket, "p/a/dropped").await {
            0 => Ok(()),
            n => Err(format!("{n}")),
        },
    )
    .await;
    let s = opsdeck::backups::storage::Store::S3(store.clone());
    let e = s.read("a/aborted").await.err().expect("not found");
    assert!(format!("{e:#}").contains("not found"), "{e:#}");

    // Delete: idempotent; it also aborts an unfinished upload of the key
    // (what a killed server leaves; here one forgotten on purpose).
    let mut up = store_create(&store, "a/crashed").await;
    up.write(&big[..(9 << 20)]).await.unwrap();
    std::mem::forget(up);
    assert_eq!(uploads_of(s3, &bucket, "p/a/crashed").await, 1);
    s.delete("a/crashed").await.unwrap();
    assert_eq!(uploads_of(s3, &bucket, "p/a/crashed").await, 0);
    for k in ["a/big", "a/small", "a/big"] {
        s.delete(k).await.unwrap();
    }
    assert!(s3.keys(&bucket, "").await.is_empty());
    assert!(s3.uploads(&bucket).await.is_empty());
    assert!(s.delete("../x").await.is_err(), "keys are checked");
}

async fn store_create(store: &S3Store, key: &str) -> Upload {
    opsdeck::backups::storage::Store::S3(store.clone())
        .create(key)
        .await
        .unwrap()
}

/// In headless Chromium: an admin adds an S3 target through the form (kind
/// select, the S3 fields, the secret as a password field), sees it listed
/// as `s3://bucket/prefix`, edits it without retyping the secret (kept),
/// and a wrong secret shows the service's refusal in the form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_an_s3_target_in_the_browser() {
    use opsdeck_e2e::browser::Browser;
    use opsdeck_e2e::server::PASSWORD;
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let Ok(s3) = S3Server::shared() else {
        return;
    };
    let s = TestServer::start().await;
    let bucket = s3.bucket("browser").await;
    s.create_user("ada", Role::Admin).await;
    let ada = s.login("ada").await;
    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&s.url("/login"), "ada", PASSWORD).await;
    b.goto(&s.url("/backups")).await;
    b.wait_for("[data-testid=target-new]")
        .await
        .click()
        .await
        .expect("New target");
    b.wait_for("[data-testid=target-form]").await;
    b.execute(
        "const s = document.querySelector('[data-testid=target-kind]'); \
         s.value = 's3'; s.dispatchEvent(new Event('change', {bubbles: true})); return null;",
    )
    .await;
    b.wait_for("[data-testid=target-s3-fields]").await;
    let fill = |testid: &'static str, value: String| {
        let b = &b;
        async move {
            b.wait_for(&format!("[data-testid={testid}]"))
                .await
                .send_keys(&value)
                .await
                .unwrap_or_else(|e| panic!("typing into {testid}: {e}"));
        }
    };
    fill("target-name", "offsite".into()).await;
    fill("target-s3-endpoint", s3.endpoint()).await;
    fill("target-s3-bucket", bucket.clone()).await;
    fill("target-s3-prefix", "ui".into()).await;
    fill("target-s3-key-id", s3.access_key_id().into()).await;
    fill("target-s3-secret", "wrong-secret".into()).await;
    // Plain HTTP is refused in the form until allowed.
    b.wait_for("[data-testid=target-save]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_contains("[data-testid=target-error]", "Allow plain HTTP")
        .await;
    b.wait_for("[data-testid=target-s3-allow-http]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("[data-testid=target-save]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_contains("[data-testid=target-error]", "SignatureDoesNotMatch")
        .await;
    b.screenshot(&screenshots().join("backup-target-s3-form.png"))
        .await;
    let typed = b
        .execute("return document.querySelector('[data-testid=target-s3-secret]').type;")
        .await;
    assert_eq!(typed, "password");
    b.execute(
        "const i = document.querySelector('[data-testid=target-s3-secret]'); \
         i.value = ''; i.dispatchEvent(new Event('input', {bubbles: true})); return null;",
    )
    .await;
    fill("target-s3-secret", s3.secret_access_key().into()).await;
    b.wait_for("[data-testid=target-save]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_contains("[data-testid=target-notice]", "Added target offsite")
        .await;
    b.wait_for_contains(
        "[data-testid=target-path-offsite]",
        &format!("s3://{bucket}/ui"),
    )
    .await;
    b.screenshot(&screenshots().join("backup-target-s3.png"))
        .await;

    // Edit: the secret field is empty ("leave empty to keep"); saving
    // keeps the stored one.
    b.wait_for("[data-testid=target-edit-offsite]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("[data-testid=target-s3-fields]").await;
    let (value, placeholder) = (
        b.execute("return document.querySelector('[data-testid=target-s3-secret]').value;")
            .await,
        b.execute("return document.querySelector('[data-testid=target-s3-secret]').placeholder;")
            .await,
    );
    assert_eq!(value, "");
    assert!(placeholder.contains("leave empty"), "{placeholder}");
    b.wait_for("[data-testid=target-save]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_contains("[data-testid=target-notice]", "Saved target offsite")
        .await;
    b.close().await;
    let listed: Vec<BackupTarget> = ada.json("/api/v1/backup-targets").await;
    assert_eq!(listed.len(), 1);
    assert!(listed[0].secret_set);
    let stored: Option<String> = sqlx::query_scalar("SELECT secret FROM backup_targets")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    // Sealed at rest (opsdeck::secrets): opened with the test key.
    let stored = stored.map(|v| {
        opsdeck::secrets::open(opsdeck::secrets::Field::TargetSecret, listed[0].id, &v).unwrap()
    });
    assert_eq!(stored.as_deref(), Some(s3.secret_access_key()), "kept");
}
