//! The backup catalog end to end: Postgres sources on the test cluster
//! (real `pg_dump`, `pg_dumpall`, `pg_restore`), a local directory target,
//! runs of the built-in `backup-run` / `backup-verify` runbooks, the files
//! they leave (checked byte for byte, decompressed and restored here with
//! the real tools, data compared), download, delete, failures and a
//! kill -9 mid-backup with real `opsdeck serve` processes.
//!
//! Each source database is a service with a Postgres check made through the
//! API, as an operator would, pointing at a database created on the test
//! cluster for the test.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_wire::{
    AuditPage, AuditVerifyReport, BackupDetail, BackupPlan, BackupRunStarted, BackupStatus,
    BackupSummary, BackupTarget, Check, IncidentList, Outcome, Role, Run, RunStatus, Service,
    Verification,
};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection, PgPool};

use crate::runbooks::wait_run;
use crate::util::{expect_error, ok_json, poll};

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A name unique in this test process (databases and roles are shared by
/// every test on the cluster).
pub(crate) fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

/// The verification's scratch database is named after the backup id
/// (`opsdeck_verify_<id>_<idx>`) on the source's server; every test has
/// its own Opsdeck database whose ids start at 1, and the source databases
/// share one cluster, so each test's backup ids start elsewhere.
pub(crate) async fn backup_ids_from(pool: &PgPool, first: i64) {
    sqlx::query("SELECT setval('backups_id_seq', $1, false)")
        .bind(first)
        .execute(pool)
        .await
        .unwrap();
}

pub(crate) fn socket_dir() -> PathBuf {
    opsdeck_e2e::pg::cluster_dir().join("run")
}

pub(crate) async fn cluster_conn(db: &str) -> PgConnection {
    PgConnection::connect(&opsdeck_e2e::pg::url(db))
        .await
        .unwrap_or_else(|e| panic!("connecting to {db}: {e}"))
}

pub(crate) async fn create_db(pool: &PgPool, name: &str) {
    pool.execute(format!("CREATE DATABASE \"{name}\" TEMPLATE template0").as_str())
        .await
        .unwrap_or_else(|e| panic!("CREATE DATABASE {name}: {e}"));
}

pub(crate) async fn drop_db(pool: &PgPool, name: &str) {
    let _ = pool
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await;
}

/// Postgres checks refuse Unix sockets and the cluster listens on a socket
/// only: a loopback TCP port forwarding to it.
pub(crate) async fn tcp_to_cluster() -> u16 {
    let socket = socket_dir().join(".s.PGSQL.5432");
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

/// A service `name` with a Postgres check on `url`.
pub(crate) async fn pg_service(
    admin: &Api,
    name: &str,
    url: &str,
    password: Option<&str>,
) -> Service {
    let svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": name, "tier": "critical", "requires": []}),
            )
            .await,
        "create service",
    )
    .await;
    let _: Check = ok_json(
        admin
            .post(
                "/api/v1/checks",
                &json!({"name": format!("{name}-db"), "service_id": svc.id,
                        "interval_s": 86_400, "timeout_ms": 5000,
                        "spec": {"kind": "postgres", "url": url}, "password": password}),
            )
            .await,
        "create check",
    )
    .await;
    svc
}

/// A service `name` whose Postgres check is database `db` of the test
/// cluster, as user `user`.
pub(crate) async fn cluster_service(admin: &Api, name: &str, user: &str, db: &str) -> Service {
    let url = format!(
        "postgres://{user}@127.0.0.1:{}/{db}",
        tcp_to_cluster().await
    );
    pg_service(admin, name, &url, None).await
}

pub(crate) async fn created<T: serde::de::DeserializeOwned>(
    res: reqwest::Response,
    what: &str,
) -> T {
    assert_eq!(res.status(), 201, "{what}: status");
    ok_json(res, what).await
}

pub(crate) async fn create_target(admin: &Api, name: &str, path: &Path) -> BackupTarget {
    created(
        admin
            .post(
                "/api/v1/backup-targets",
                &json!({"name": name, "kind": "local", "path": path}),
            )
            .await,
        "create target",
    )
    .await
}

pub(crate) async fn create_plan(admin: &Api, body: Value) -> BackupPlan {
    created(
        admin.post("/api/v1/backup-plans", &body).await,
        "create plan",
    )
    .await
}

pub(crate) fn postgres_plan(name: &str, service: &str, dbs: &[&str], target: &str) -> Value {
    json!({"name": name, "target": target,
           "sources": [{"kind": "postgres", "service": service, "databases": dbs}]})
}

/// POST …/run (or …/verify): 202 with the run id.
pub(crate) async fn started(res: reqwest::Response, what: &str) -> i64 {
    assert_eq!(res.status(), 202, "{what}: status");
    let s: BackupRunStarted = ok_json(res, what).await;
    s.run_id
}

pub(crate) async fn run_plan(api: &Api, plan: i64) -> i64 {
    started(
        api.post(&format!("/api/v1/backup-plans/{plan}/run"), &json!({}))
            .await,
        "run plan",
    )
    .await
}

/// Waits until the run has ended (whatever the outcome).
pub(crate) async fn finished(api: &Api, run: i64) -> Run {
    wait_run(api, run, &format!("run {run} ends"), |r| {
        !matches!(
            r.summary.status,
            RunStatus::Queued | RunStatus::Running | RunStatus::Waiting
        )
    })
    .await
}

/// Every message of a run: its error and its steps' errors and output.
pub(crate) fn run_text(r: &Run) -> String {
    let mut s = r.error.clone().unwrap_or_default();
    for st in &r.steps {
        s.push('\n');
        s.push_str(st.error.as_deref().unwrap_or(""));
        s.push('\n');
        s.push_str(&st.output);
    }
    s
}

pub(crate) async fn backups(api: &Api, query: &str) -> Vec<BackupSummary> {
    api.json(&format!("/api/v1/backups{query}")).await
}

pub(crate) async fn detail(api: &Api, id: i64) -> BackupDetail {
    api.json(&format!("/api/v1/backups/{id}")).await
}

/// Files below `root`, relative, sorted.
pub(crate) fn files_under(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, root, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().to_string_lossy().into_owned());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Incidents (any status) opened by the backup catalog.
pub(crate) async fn backup_incidents(api: &Api) -> Vec<opsdeck_wire::Incident> {
    let list: IncidentList = api.json("/api/v1/incidents?status=all").await;
    list.items
        .into_iter()
        .filter(|i| i.source == "backup")
        .collect()
}

pub(crate) async fn audit(admin: &Api, action: &str) -> Vec<opsdeck_wire::AuditEntry> {
    let page: AuditPage = admin
        .json(&format!("/api/v1/audit?action={action}&limit=200"))
        .await;
    page.entries
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

/// The packaged Postgres tool (the cluster's version), else from PATH.
pub(crate) fn pg_tool(name: &str) -> PathBuf {
    let p = PathBuf::from(format!("/usr/lib/postgresql/15/bin/{name}"));
    if p.is_file() {
        p
    } else {
        PathBuf::from(name)
    }
}

/// `zstd -d` of a stored object (the CLI, argv).
pub(crate) async fn unzstd(path: &Path) -> Vec<u8> {
    let out = tokio::process::Command::new("zstd")
        .args(["-d", "-q", "-c"])
        .arg(path)
        .output()
        .await
        .expect("running zstd");
    assert!(
        out.status.success(),
        "zstd -d {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// Row counts of every user table (`schema.table`), like the catalog's.
pub(crate) async fn row_counts(conn: &mut PgConnection) -> BTreeMap<String, i64> {
    let tables: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT n.nspname::text, c.relname::text, format('%I.%I', n.nspname, c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
           AND n.nspname NOT LIKE 'pg\\_%'",
    )
    .fetch_all(&mut *conn)
    .await
    .unwrap();
    let mut out = BTreeMap::new();
    for (schema, table, quoted) in tables {
        let n: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM {quoted}"))
            .fetch_one(&mut *conn)
            .await
            .unwrap();
        out.insert(format!("{schema}.{table}"), n);
    }
    out
}

/// A digest of a table's whole content (every row as text, in order).
pub(crate) async fn content_digest(conn: &mut PgConnection, quoted: &str) -> String {
    sqlx::query_scalar(&format!(
        "SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {quoted} t"
    ))
    .fetch_one(&mut *conn)
    .await
    .unwrap()
}

/// The tables of the ledger database, quoted.
pub(crate) const LEDGER_TABLES: &[&str] = &[
    "public.customers",
    "shop.\"Order Items\"",
    "shop.events",
    "public.\"Weird \"\"Quoted\"\" Name\"",
    "public.empty_one",
];

/// A database with awkward names and a few thousand rows of varied text
/// and JSON; returns the row counts it must have.
pub(crate) async fn fill_ledger(conn: &mut PgConnection) -> BTreeMap<String, i64> {
    conn.execute(
        r#"
CREATE SCHEMA shop;
CREATE TABLE public.customers (
    id int PRIMARY KEY, name text NOT NULL, email text, since timestamptz NOT NULL);
INSERT INTO public.customers
SELECT g, 'Customer ' || g || ' «Ünïcødé» "q" \ ' || chr(10) || 'second line',
       CASE WHEN g % 7 = 0 THEN NULL ELSE 'c' || g || '@example.com' END,
       timestamptz '2024-01-01 00:00:00+00' + g * interval '1 hour 7 seconds'
FROM generate_series(1, 250) g;
CREATE TABLE shop."Order Items" (
    id bigint PRIMARY KEY,
    customer int NOT NULL REFERENCES public.customers (id),
    "Line Note" text,
    payload jsonb NOT NULL,
    amount numeric(12, 2) NOT NULL);
INSERT INTO shop."Order Items"
SELECT g, 1 + g % 250,
       CASE WHEN g % 11 = 0 THEN NULL
            ELSE repeat(md5(g::text), 1 + g % 4) || E'\t' || chr(9731 + g % 50) || E'\n' || 'x''y' END,
       jsonb_build_object('sku', 'SKU-' || lpad(g::text, 6, '0'), 'qty', g % 9,
                          'tags', jsonb_build_array('t' || g % 5, g % 3 = 0),
                          'meta', jsonb_build_object('note', md5((g * 7)::text), 'ratio', g / 7.0)),
       round(g * 3.17, 2)
FROM generate_series(1, 3000) g;
CREATE TABLE shop.events (id bigserial PRIMARY KEY, at timestamptz NOT NULL, kind text NOT NULL, body jsonb);
INSERT INTO shop.events (at, kind, body)
SELECT timestamptz '2024-06-01 00:00:00+00' + g * interval '13 seconds',
       (ARRAY['login', 'logout', 'payment', 'refund'])[1 + g % 4],
       CASE WHEN g % 5 = 0 THEN NULL
            ELSE jsonb_build_object('ip', '10.0.' || g % 256 || '.' || g % 199, 'ua', md5(g::text) || ' Mozilla/5.0') END
FROM generate_series(1, 1234) g;
CREATE TABLE public."Weird ""Quoted"" Name" (k text PRIMARY KEY);
INSERT INTO public."Weird ""Quoted"" Name" SELECT 'key ' || g || ' ''' FROM generate_series(1, 7) g;
CREATE TABLE public.empty_one (x int);
"#,
    )
    .await
    .expect("filling the ledger database");
    [
        ("public.customers", 250),
        ("shop.Order Items", 3000),
        ("shop.events", 1234),
        ("public.Weird \"Quoted\" Name", 7),
        ("public.empty_one", 0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

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

pub(crate) async fn login(base: &str, user: &str) -> Api {
    let api = Api::new(base);
    let res = api
        .post(
            "/api/v1/auth/login",
            &json!({"username": user, "password": opsdeck_e2e::server::PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), 200, "login");
    api
}

/// A real `opsdeck serve` killed with SIGKILL while a slow dump is being
/// written (its `.partial` file on disk): after a restart the run is
/// interrupted, the backup becomes `interrupted` (never succeeded), the
/// partial file is removed, an incident opens; the audit chain holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_server_leaves_the_backup_interrupted_and_no_partial_file() {
    use opsdeck_e2e::process::OpsdeckProcess;
    let (url, pool) = crate::util::process_database().await;
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
    let api = login(first.base(), "ops").await;
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
    let api = login(second.base(), "ops").await;
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

/// In headless Chromium: an operator runs a plan from its card, follows it
/// to "verified" in the catalog without reloading, and opens the backup's
/// page with its artifacts; a viewer sees no Run button. Screenshots land
/// in `<workspace>/target/screenshots/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_plan_in_the_browser_and_sees_it_verified() {
    use opsdeck_e2e::browser::Browser;
    use opsdeck_e2e::server::{web_root, PASSWORD};
    let spa = opsdeck_e2e::require::part(
        web_root().join("index.html").is_file(),
        "the built SPA (frontend/dist/index.html, or OPSDECK_WEB_ROOT)",
        "make frontend",
    );
    if spa.is_err() {
        return;
    }
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 5_000).await;
    let admin = s.user(Role::Admin).await;
    let db = unique("shop");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    src.execute(
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text);
         INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 2500) g;",
    )
    .await
    .unwrap();
    cluster_service(&admin, "shop-db", "opsdeck", &db).await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    create_plan(
        &admin,
        postgres_plan("shop-nightly", "shop-db", &[&db], "local"),
    )
    .await;
    s.create_user("carol", Role::Operator).await;
    s.create_user("victor", Role::Viewer).await;
    let carol = s.login("carol").await;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&s.url("/login"), "carol", PASSWORD).await;
    b.goto(&s.url("/backups")).await;
    b.wait_for("[data-testid=plan-shop-nightly]").await;
    b.wait_for("[data-testid=plan-run-shop-nightly]")
        .await
        .click()
        .await
        .expect("clicking Run now");
    b.wait_for("[data-testid=plan-run-link]").await;
    // The run finishes and verifies; the page follows without a reload.
    let marker: String = b
        .execute("window.__opsdeck_marker = 'same page'; return window.__opsdeck_marker;")
        .await;
    assert_eq!(marker, "same page");
    let done = poll(Duration::from_secs(90), "the backup verified", async || {
        let l = backups(&carol, "").await;
        match l.first() {
            Some(b) if b.verification == opsdeck_wire::Verification::Verified => Ok(b.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(done.requested_by, "carol");
    let row = format!("[data-testid=backup-verification-{}]", done.id);
    b.wait_for_contains(&row, "verified").await;
    b.wait_for_contains(
        &format!("[data-testid=backup-status-{}]", done.id),
        "succeeded",
    )
    .await;
    let still: String = b
        .execute("return window.__opsdeck_marker || 'reloaded';")
        .await;
    assert_eq!(still, "same page", "the catalog updated without a reload");
    b.screenshot(&screenshots().join("backups.png")).await;

    // The backup's page: artifacts (globals + the database) with row counts.
    b.goto(&s.url(&format!("/backups/{}", done.id))).await;
    b.wait_for("[data-testid=backup-detail]").await;
    b.wait_for("[data-testid=artifact-0]").await;
    b.wait_for_contains("[data-testid=artifact-1]", &db).await;
    b.wait_for("[data-testid=artifact-download-1]").await;
    b.screenshot(&screenshots().join("backup-detail.png")).await;
    // An unknown id: the page says so and leads back to the list.
    b.goto(&s.url("/backups/999999")).await;
    b.wait_for_contains(".state-error", "There is no backup with this id")
        .await;
    b.wait_for("nav.crumbs a[href='/backups']").await;
    b.close().await;

    // A viewer reads the catalog but gets no Run button.
    let Ok(v) = Browser::start().await else {
        return;
    };
    v.sign_in(&s.url("/login"), "victor", PASSWORD).await;
    v.goto(&s.url("/backups")).await;
    v.wait_for("[data-testid=plan-shop-nightly]").await;
    v.wait_for(&format!("[data-testid=backup-row-{}]", done.id))
        .await;
    assert!(
        !v.exists("[data-testid=plan-run-shop-nightly]").await,
        "viewers cannot run plans"
    );
    v.close().await;
    drop_db(&s.pool, &db).await;
}

fn screenshots() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/screenshots"
    ))
}
