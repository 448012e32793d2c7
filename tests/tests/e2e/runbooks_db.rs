//! The runbooks' database catalogue (`opsdeck::runbooks::dbops`) against
//! real servers: the test Postgres cluster for the read-only and
//! maintenance operations, private clusters (started here) for the
//! operations that terminate sessions of every database or promote a
//! standby, and the shared MariaDB server.
//!
//! Each database is a service with a Postgres or MySQL check made through
//! the API, as an operator would; the operations are then called directly.

use std::path::{Path, PathBuf};
use std::time::Duration;

use opsdeck::embedded_pg::EmbeddedPg;
use opsdeck::runbooks::dbops;
use opsdeck::runbooks::output::Output;
use opsdeck_e2e::flows::runbooks::{create, pending_approval, start, wait_status};
use opsdeck_e2e::mariadb::MariaDb;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::ok_json;
use opsdeck_wire::{Check, DbOp, Role, Service};
use serde_json::{json, Value};
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};

/// A service named `name` with a database check of `spec`.
async fn database_service(admin: &Api, name: &str, spec: Value, password: Option<&str>) {
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
                        "spec": spec, "password": password}),
            )
            .await,
        "create check",
    )
    .await;
}

/// The service `appdb` with a Postgres check on this test's database of
/// the shared test cluster (over a loopback TCP relay).
async fn appdb_on_test_cluster(s: &TestServer, admin: &Api) {
    let socket = opsdeck_e2e::pg::cluster_dir().join("run/.s.PGSQL.5432");
    let url = format!(
        "postgres://opsdeck@127.0.0.1:{}/{}",
        tcp_to(socket).await,
        s.database
    );
    database_service(
        admin,
        "appdb",
        json!({"kind": "postgres", "url": url}),
        None,
    )
    .await;
}

/// Postgres checks refuse Unix sockets and the clusters listen on sockets
/// only: a loopback TCP port forwarding to `socket`.
async fn tcp_to(socket: PathBuf) -> u16 {
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

async fn run(
    s: &TestServer,
    db: &str,
    op: DbOp,
    older_than: Option<Duration>,
    table: Option<&str>,
    limit: Option<u32>,
) -> (Result<Value, String>, String) {
    let out = Output::new();
    let res = dbops::run(&s.state, db, op, older_than, table, limit, &out).await;
    (res, out.snapshot().0)
}

async fn ok(s: &TestServer, db: &str, op: DbOp, table: Option<&str>) -> (Value, String) {
    let (res, text) = run(s, db, op, None, table, None).await;
    match res {
        Ok(v) => (v, text),
        Err(e) => panic!("{} failed: {e}\noutput:\n{text}", op.as_str()),
    }
}

async fn err(s: &TestServer, db: &str, op: DbOp, table: Option<&str>) -> String {
    let (res, _) = run(s, db, op, None, table, None).await;
    let e = res.expect_err("must fail");
    assert!(!e.contains('\n'), "one line: {e:?}");
    e
}

async fn pid(conn: &mut PgConnection) -> i32 {
    sqlx::query_scalar("SELECT pg_backend_pid()")
        .fetch_one(conn)
        .await
        .unwrap()
}

fn pids(v: &Value) -> Vec<i64> {
    v["pids"]
        .as_array()
        .expect("pids")
        .iter()
        .map(|p| p.as_i64().unwrap())
        .collect()
}

/// Evaluates `cond` (which may `.await`) every 100 ms until it is true, or
/// panics naming `what` after `secs` seconds.
macro_rules! wait_for {
    ($what:expr, $secs:expr, $cond:expr) => {{
        let deadline = tokio::time::Instant::now() + Duration::from_secs($secs);
        loop {
            if $cond {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out: {}",
                $what
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }};
}

async fn index_file(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT pg_relation_filenode('rb_locks_pkey')::int8")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_catalogue_on_the_test_cluster() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    appdb_on_test_cluster(&s, &admin).await;

    // Lookup and family errors, before any connection.
    assert_eq!(
        err(&s, "nope", DbOp::ConnectionCounts, None).await,
        "no service \"nope\""
    );
    let _: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "plain", "tier": "application", "requires": []}),
            )
            .await,
        "create service",
    )
    .await;
    assert_eq!(
        err(&s, "plain", DbOp::ConnectionCounts, None).await,
        "service \"plain\" has no Postgres or MariaDB/MySQL check"
    );
    assert_eq!(
        err(&s, "appdb", DbOp::ProcessList, None).await,
        "process_list is a MariaDB/MySQL operation, but database \"appdb\" is Postgres"
    );
    assert_eq!(
        err(&s, "appdb", DbOp::TerminateIdle, None).await,
        "terminate_idle needs older_than (e.g. 5m)"
    );

    // connection_counts: a session of ours shows up as idle; the operation's
    // own session is not counted.
    let mut mine = PgConnection::connect(&opsdeck_e2e::pg::url(&s.database))
        .await
        .unwrap();
    let (v, text) = ok(&s, "appdb", DbOp::ConnectionCounts, None).await;
    let total = v["total"].as_i64().unwrap();
    let by_state = v["by_state"].as_object().unwrap();
    assert!(by_state["idle"].as_i64().unwrap() >= 1, "{v}");
    assert_eq!(
        by_state.values().map(|n| n.as_i64().unwrap()).sum::<i64>(),
        total
    );
    assert!(v["by_database"][&s.database].as_i64().unwrap() >= 1, "{v}");
    assert!(v["max_connections"].as_i64().unwrap() > 0);
    assert!(text.contains("state") && text.contains("idle"), "{text}");
    // Its session goes away (the backend exits just after the close).
    wait_for!("the operation's session ends", 5, {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'opsdeck-runbook'",
        )
        .fetch_one(&mut mine)
        .await
        .unwrap();
        n == 0
    });

    // blocking_locks: one session holds a row lock in an open transaction,
    // another waits to update the same row.
    sqlx::query("CREATE TABLE rb_locks (id int PRIMARY KEY, v int NOT NULL)")
        .execute(&s.pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO rb_locks SELECT g, 0 FROM generate_series(1, 1000) g")
        .execute(&s.pool)
        .await
        .unwrap();
    let mut holder = s.pool.begin().await.unwrap();
    let holder_pid = pid(&mut holder).await;
    sqlx::query("UPDATE rb_locks SET v = 1 WHERE id = 1")
        .execute(&mut *holder)
        .await
        .unwrap();
    let pool = s.pool.clone();
    let waiter = tokio::spawn(async move {
        sqlx::query("UPDATE rb_locks SET v = 2 WHERE id = 1")
            .execute(&pool)
            .await
            .map(|r| r.rows_affected())
    });
    let mut waiter_pid: i32;
    wait_for!("the UPDATE waits on the lock", 10, {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
             AND query LIKE 'UPDATE rb_locks SET v = 2%'",
        )
        .fetch_optional(&mut mine)
        .await
        .unwrap();
        waiter_pid = found.unwrap_or(0);
        found.is_some()
    });
    let (v, text) = ok(&s, "appdb", DbOp::BlockingLocks, None).await;
    assert!(v["blocked"].as_u64().unwrap() >= 1, "{v}");
    let pair = v["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["blocked_pid"] == json!(waiter_pid))
        .unwrap_or_else(|| panic!("no pair for the waiting UPDATE: {v}"));
    assert_eq!(pair["blocking_pid"], json!(holder_pid), "{pair}");
    assert_eq!(pair["blocking_state"], "idle in transaction", "{pair}");
    assert!(
        pair["blocked_query"]
            .as_str()
            .unwrap()
            .starts_with("UPDATE rb_locks SET v = 2"),
        "{pair}"
    );
    assert!(pair["waiting_s"].as_f64().unwrap() >= 0.0);
    assert!(text.contains(&waiter_pid.to_string()), "{text}");
    holder.rollback().await.unwrap();
    let updated = tokio::time::timeout(Duration::from_secs(10), waiter)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(updated, 1, "the waiter went on once the lock was released");
    let (v, text) = ok(&s, "appdb", DbOp::BlockingLocks, None).await;
    assert!(
        !v["pairs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["blocked_pid"] == json!(waiter_pid)),
        "{v} {text}"
    );

    // vacuum_analyze: a table, schema-qualified too; the statistics show it.
    let (v, _) = ok(&s, "appdb", DbOp::VacuumAnalyze, Some("rb_locks")).await;
    assert_eq!(v["table"], "\"rb_locks\"");
    assert!(v["duration_ms"].is_u64());
    wait_for!("pg_stat_user_tables shows the vacuum", 10, {
        let seen: (bool, bool) = sqlx::query_as(
            "SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL \
             FROM pg_stat_user_tables WHERE relname = 'rb_locks'",
        )
        .fetch_one(&mut mine)
        .await
        .unwrap();
        seen == (true, true)
    });
    let (v, _) = ok(&s, "appdb", DbOp::VacuumAnalyze, Some("public.rb_locks")).await;
    assert_eq!(v["table"], "\"public\".\"rb_locks\"");
    let (v, text) = ok(&s, "appdb", DbOp::VacuumAnalyze, None).await;
    assert_eq!(v["table"], Value::Null);
    assert!(text.contains("the whole database"), "{text}");
    // Refused: not an identifier (nothing runs), and a table that is not there.
    let e = err(
        &s,
        "appdb",
        DbOp::VacuumAnalyze,
        Some("x; DROP TABLE users"),
    )
    .await;
    assert!(e.starts_with("invalid table name"), "{e}");
    let users: Option<String> = sqlx::query_scalar("SELECT to_regclass('users')::text")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert_eq!(users.as_deref(), Some("users"), "users is still there");
    assert_eq!(
        err(&s, "appdb", DbOp::VacuumAnalyze, Some("no_such_table")).await,
        "no table \"no_such_table\""
    );
    assert_eq!(
        err(&s, "appdb", DbOp::Reindex, Some("public.RB_LOCKS")).await,
        "no table \"public\".\"RB_LOCKS\"",
        "quoted: the case is kept"
    );

    // reindex: the index is rebuilt (new file). The whole database is
    // reindexed on the private cluster (Postgres 15 includes the shared
    // catalogs, which other tests use).
    let before = index_file(&s.pool).await;
    let (v, _) = ok(&s, "appdb", DbOp::Reindex, Some("rb_locks")).await;
    assert_eq!(
        (v["kind"].as_str(), v["target"].as_str()),
        (Some("table"), Some("\"rb_locks\""))
    );
    let after_table = index_file(&s.pool).await;
    assert_ne!(before, after_table, "REINDEX TABLE rebuilt the index");

    // cache_hit_ratio over the cluster.
    let (v, text) = ok(&s, "appdb", DbOp::CacheHitRatio, None).await;
    let pct = v["cache_hit_pct"].as_f64().expect("blocks were read");
    assert!((0.0..=100.0).contains(&pct), "{v}");
    assert!(v["blks_hit"].as_f64().unwrap() > 0.0);
    assert!(text.contains("cache hit %"), "{text}");

    // top_queries: the extension is not installed here; not an error.
    let (v, text) = ok(&s, "appdb", DbOp::TopQueries, None).await;
    assert_eq!(v["available"], false);
    assert!(text.contains("not installed"), "{text}");
    let (res, _) = run(&s, "appdb", DbOp::TopQueries, None, None, Some(101)).await;
    assert_eq!(res.unwrap_err(), "limit must be between 1 and 100, not 101");

    // promote: the test cluster is a primary.
    assert_eq!(
        err(&s, "appdb", DbOp::Promote, None).await,
        "not a standby: pg_is_in_recovery() is false, nothing to promote"
    );
    let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut mine)
        .await
        .unwrap();
    assert!(!standby);

    // Connection errors are one line, without the password.
    database_service(
        &admin,
        "gone",
        json!({"kind": "postgres", "url": "postgres://opsdeck@127.0.0.1:1/x"}),
        Some("hunter2-secret"),
    )
    .await;
    let e = err(&s, "gone", DbOp::CacheHitRatio, None).await;
    assert_eq!(e, "cannot connect: connection refused");
    mine.close().await.unwrap();
}

/// A private cluster (sessions of every database get terminated here, so
/// not on the shared test cluster), with pg_stat_statements preloaded.
struct Private {
    pg: EmbeddedPg,
    dir: tempfile::TempDir,
}

impl Private {
    async fn start(preload: bool) -> Private {
        let dir = tempfile::Builder::new()
            .prefix("odk-rb")
            .tempdir_in("/tmp")
            .unwrap();
        let mut pg = EmbeddedPg::start(dir.path(), None).await.unwrap();
        if preload {
            let mut c = pg.connect_options().connect().await.unwrap();
            sqlx::query("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'")
                .execute(&mut c)
                .await
                .unwrap();
            c.close().await.unwrap();
            pg.stop().await;
            pg = EmbeddedPg::start(dir.path(), None).await.unwrap();
        }
        Private { pg, dir }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/.s.PGSQL.5432")
    }

    fn options(&self, app: &str) -> PgConnectOptions {
        self.pg.connect_options().application_name(app)
    }

    async fn stop(mut self) {
        self.pg.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_and_top_queries_on_a_private_cluster() {
    let private = Private::start(true).await;
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let url = format!(
        "postgres://opsdeck@127.0.0.1:{}/opsdeck",
        tcp_to(private.socket()).await
    );
    database_service(
        &admin,
        "scratch",
        json!({"kind": "postgres", "url": url}),
        None,
    )
    .await;

    // terminate_idle: a session idle for longer than older_than goes, a
    // fresh one stays.
    let mut old = private.options("rb-old").connect().await.unwrap();
    let old_pid = pid(&mut old).await;
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let mut fresh = private.options("rb-fresh").connect().await.unwrap();
    let fresh_pid = pid(&mut fresh).await;
    let (res, text) = run(
        &s,
        "scratch",
        DbOp::TerminateIdle,
        Some(Duration::from_secs(2)),
        None,
        None,
    )
    .await;
    let v = res.unwrap();
    assert!(v["terminated"].as_u64().unwrap() >= 1, "{v}");
    let killed = pids(&v);
    assert!(killed.contains(&(old_pid as i64)), "{v}");
    assert!(!killed.contains(&(fresh_pid as i64)), "{v}");
    assert!(
        text.contains("rb-old") && text.contains("terminated"),
        "{text}"
    );
    assert!(
        sqlx::query("SELECT 1").execute(&mut old).await.is_err(),
        "the idle session is dead"
    );
    // Opened only now: it would have been idle long enough too.
    let mut watch = private.options("rb-watch").connect().await.unwrap();
    sqlx::query("SELECT 1")
        .execute(&mut fresh)
        .await
        .expect("the fresh session lives");
    let gone: bool =
        sqlx::query_scalar("SELECT NOT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1)")
            .bind(old_pid)
            .fetch_one(&mut watch)
            .await
            .unwrap();
    assert!(gone, "no backend {old_pid} any more");

    // terminate_active with older_than 0: the operation's own (active)
    // session is never a candidate (terminating it would fail the call).
    let (res, text) = run(
        &s,
        "scratch",
        DbOp::TerminateActive,
        Some(Duration::ZERO),
        None,
        None,
    )
    .await;
    let v = res.unwrap_or_else(|e| panic!("{e}\n{text}"));
    // Nothing of ours runs (a health probe of the check might, hence no
    // count), and the operation's own session is not among the sessions.
    assert!(
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["application"] != "opsdeck-runbook"),
        "{v}"
    );

    // terminate_active: a long pg_sleep in another task is cut short.
    let mut sleeper = private.options("rb-sleeper").connect().await.unwrap();
    let sleeper_pid = pid(&mut sleeper).await;
    let started = tokio::time::Instant::now();
    let sleeping = tokio::spawn(async move {
        sqlx::query("SELECT pg_sleep(60)")
            .execute(&mut sleeper)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    wait_for!("pg_sleep is running", 10, {
        sqlx::query_scalar::<_, bool>(
            "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE pid = $1 \
             AND state = 'active' AND query = 'SELECT pg_sleep(60)')",
        )
        .bind(sleeper_pid)
        .fetch_one(&mut watch)
        .await
        .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let (res, text) = run(
        &s,
        "scratch",
        DbOp::TerminateActive,
        Some(Duration::from_secs(1)),
        None,
        None,
    )
    .await;
    let v = res.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert!(pids(&v).contains(&(sleeper_pid as i64)), "{v}");
    let sleeper_session = v["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["pid"] == json!(sleeper_pid))
        .unwrap();
    assert_eq!(sleeper_session["query"], "SELECT pg_sleep(60)", "{v}");
    assert_eq!(sleeper_session["application"], "rb-sleeper", "{v}");
    assert!(sleeper_session["age_s"].as_f64().unwrap() >= 1.0, "{v}");
    let ended = tokio::time::timeout(Duration::from_secs(10), sleeping)
        .await
        .expect("the query ended soon after")
        .unwrap();
    let e = ended.expect_err("the query was terminated");
    assert!(e.contains("terminating connection"), "{e}");
    assert!(started.elapsed() < Duration::from_secs(30));
    sqlx::query("SELECT 1")
        .execute(&mut watch)
        .await
        .expect("idle sessions are left alone by terminate_active");

    // reindex of the whole database.
    sqlx::query("CREATE TABLE rb_idx (id int PRIMARY KEY)")
        .execute(&mut watch)
        .await
        .unwrap();
    let filenode = "SELECT pg_relation_filenode('rb_idx_pkey')::int8";
    let before: i64 = sqlx::query_scalar(filenode)
        .fetch_one(&mut watch)
        .await
        .unwrap();
    let (v, text) = ok(&s, "scratch", DbOp::Reindex, None).await;
    assert_eq!(v["kind"], "database");
    assert_eq!(v["target"], "\"opsdeck\"");
    assert!(text.contains("REINDEX DATABASE \"opsdeck\""), "{text}");
    let after: i64 = sqlx::query_scalar(filenode)
        .fetch_one(&mut watch)
        .await
        .unwrap();
    assert_ne!(before, after, "REINDEX DATABASE rebuilt the index");

    // top_queries with pg_stat_statements installed and preloaded.
    sqlx::query("CREATE EXTENSION pg_stat_statements")
        .execute(&mut watch)
        .await
        .unwrap();
    for _ in 0..5 {
        sqlx::query("SELECT count(*) AS rb_marker FROM generate_series(1, 20000)")
            .execute(&mut watch)
            .await
            .unwrap();
    }
    let (res, text) = run(&s, "scratch", DbOp::TopQueries, None, None, Some(100)).await;
    let v = res.unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(v["available"], true, "{v}");
    let queries = v["queries"].as_array().unwrap();
    let marker = queries
        .iter()
        .find(|q| q["query"].as_str().unwrap().contains("rb_marker"))
        .unwrap_or_else(|| panic!("the marker query is listed: {v}"));
    assert!(marker["calls"].as_i64().unwrap() >= 5, "{marker}");
    assert!(marker["mean_ms"].as_f64().unwrap() > 0.0, "{marker}");
    assert!(
        text.contains("total ms") && text.contains("rb_marker"),
        "{text}"
    );
    let (res, _) = run(&s, "scratch", DbOp::TopQueries, None, None, Some(2)).await;
    let v = res.unwrap();
    assert!(v["queries"].as_array().unwrap().len() <= 2, "{v}");

    fresh.close().await.ok();
    watch.close().await.ok();
    private.stop().await;
}

/// `pg_basebackup -R` of `primary` into `<root>/postgres`, as the user the
/// cluster runs as.
fn base_backup(primary_socket_dir: &Path, root: &Path) {
    let bin = std::fs::read_dir("/usr/lib/postgresql")
        .ok()
        .and_then(|d| {
            d.flatten()
                .map(|e| e.path().join("bin/pg_basebackup"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| PathBuf::from("pg_basebackup"));
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("-D")
        .arg(root.join("postgres"))
        .arg("-h")
        .arg(primary_socket_dir)
        .args([
            "-p", "5432", "-U", "opsdeck", "-R", "-X", "stream", "-c", "fast",
        ]);
    if nix::unistd::geteuid().is_root() {
        use std::os::unix::process::CommandExt;
        let pg = nix::unistd::User::from_name("postgres").unwrap().unwrap();
        nix::unistd::chown(root, Some(pg.uid), Some(pg.gid)).unwrap();
        cmd.uid(pg.uid.as_raw()).gid(pg.gid.as_raw());
    }
    let out = cmd.output().expect("running pg_basebackup");
    assert!(
        out.status.success(),
        "pg_basebackup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_turns_a_standby_into_a_primary() {
    let primary = Private::start(false).await;
    let standby_dir = tempfile::Builder::new()
        .prefix("odk-rbs")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(
        standby_dir.path(),
        <std::fs::Permissions as std::os::unix::fs::PermissionsExt>::from_mode(0o711),
    )
    .unwrap();
    base_backup(&primary.dir.path().join("run"), standby_dir.path());
    let mut standby = EmbeddedPg::start(standby_dir.path(), None).await.unwrap();

    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let p_url = format!(
        "postgres://opsdeck@127.0.0.1:{}/opsdeck",
        tcp_to(primary.socket()).await
    );
    let s_url = format!(
        "postgres://opsdeck@127.0.0.1:{}/opsdeck",
        tcp_to(standby_dir.path().join("run/.s.PGSQL.5432")).await
    );
    database_service(
        &admin,
        "primary",
        json!({"kind": "postgres", "url": p_url}),
        None,
    )
    .await;
    database_service(
        &admin,
        "standby",
        json!({"kind": "postgres", "url": s_url}),
        None,
    )
    .await;

    let mut on_standby = standby.connect_options().connect().await.unwrap();
    let in_recovery = || sqlx::query_scalar::<_, bool>("SELECT pg_is_in_recovery()");
    assert!(in_recovery().fetch_one(&mut on_standby).await.unwrap());
    assert_eq!(
        err(&s, "primary", DbOp::Promote, None).await,
        "not a standby: pg_is_in_recovery() is false, nothing to promote"
    );
    let (v, text) = ok(&s, "standby", DbOp::Promote, None).await;
    assert_eq!(v["promoted"], true, "{v}");
    assert!(text.contains("promoted"), "{text}");
    assert!(
        !in_recovery().fetch_one(&mut on_standby).await.unwrap(),
        "the former standby is a primary now"
    );
    // It accepts writes.
    sqlx::query("CREATE TABLE promoted_ok (id int)")
        .execute(&mut on_standby)
        .await
        .unwrap();
    // A second promote is refused.
    assert_eq!(
        err(&s, "standby", DbOp::Promote, None).await,
        "not a standby: pg_is_in_recovery() is false, nothing to promote"
    );
    on_standby.close().await.ok();
    standby.stop().await;
    primary.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_process_list_and_threads() {
    let Ok(maria) = tokio::task::spawn_blocking(MariaDb::shared).await.unwrap() else {
        return;
    };
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    database_service(
        &admin,
        "shop",
        json!({"kind": "mysql", "url": maria.url()}),
        Some(maria.password()),
    )
    .await;
    let opts = MySqlConnectOptions::new()
        .host("127.0.0.1")
        .port(maria.port())
        .username(maria.user())
        .password(maria.password());
    let mut mine = opts.connect().await.unwrap();
    let my_id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut mine)
        .await
        .unwrap();

    // process_list: our idle session, and a running query with its text.
    let mut busy = opts.connect().await.unwrap();
    let busy_id: i64 = sqlx::query_scalar("SELECT CAST(CONNECTION_ID() AS SIGNED)")
        .fetch_one(&mut busy)
        .await
        .unwrap();
    let running = tokio::spawn(async move {
        sqlx::query("SELECT SLEEP(6), 'rb_marker'")
            .execute(&mut busy)
            .await
            .unwrap();
    });
    let mut seen: Value;
    wait_for!("the running query is listed", 5, {
        let (res, _) = run(&s, "shop", DbOp::ProcessList, None, None, None).await;
        seen = res.unwrap();
        // sqlx prepares the statement: "Execute" rather than "Query".
        seen["processes"].as_array().unwrap().iter().any(|p| {
            p["id"] == json!(busy_id)
                && p["command"] == "Execute"
                && p["state"] == "User sleep"
                && p["time"].is_i64()
                && p["info"] == "SELECT SLEEP(6), 'rb_marker'"
        })
    });
    let v = seen;
    let me = v["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == json!(my_id))
        .unwrap_or_else(|| panic!("our session is listed: {v}"));
    assert_eq!(me["user"], maria.user());
    assert_eq!(me["command"], "Sleep");
    assert!(
        me["host"].as_str().unwrap().starts_with("127.0.0.1"),
        "{me}"
    );
    assert!(v["count"].as_u64().unwrap() >= 2, "{v}");
    assert_eq!(v["truncated"], false);
    running.await.unwrap();

    // threads_connected: at least ours and the operation's.
    let (v, text) = ok(&s, "shop", DbOp::ThreadsConnected, None).await;
    assert!(v["threads_connected"].as_u64().unwrap() >= 2, "{v}");
    assert!(v["max_connections"].as_u64().unwrap() > 0, "{v}");
    assert!(text.contains("Threads_connected"), "{text}");

    // Postgres operations are refused on MariaDB.
    assert_eq!(
        err(&s, "shop", DbOp::VacuumAnalyze, None).await,
        "vacuum_analyze is a Postgres operation, but database \"shop\" is MariaDB/MySQL"
    );
    // A wrong password: one line, the password nowhere.
    database_service(
        &admin,
        "shop-bad",
        json!({"kind": "mysql", "url": maria.url()}),
        Some("wrong-pass-q7"),
    )
    .await;
    let e = err(&s, "shop-bad", DbOp::ThreadsConnected, None).await;
    assert_eq!(e, "cannot connect: authentication failed");
    mine.close().await.ok();
}

/// Database steps through the engine: the built-in "Database connection
/// issues" runbook on the test cluster, and a table name given as a
/// parameter that tries SQL injection: the step refuses it and nothing is
/// dropped, after an `approval` step approved by a second operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_steps_run_through_the_engine() {
    use opsdeck_wire::{Approval, RunStatus, RunbookSummary, StepStatus};
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    appdb_on_test_cluster(&s, &admin).await;
    let list: Vec<RunbookSummary> = admin.json("/api/v1/runbooks").await;
    let issues = list
        .iter()
        .find(|r| r.name == "db-connection-issues")
        .unwrap();
    let run = start(&admin, issues.id, json!({"database": "appdb"})).await;
    let done = wait_status(&admin, run.summary.id, RunStatus::Succeeded).await;
    let counts = done.steps.iter().find(|s| s.kind == "database").unwrap();
    assert!(
        counts.result["total"].as_i64().unwrap_or(0) >= 1,
        "{:?}",
        counts.result
    );
    assert!(
        done.steps
            .iter()
            .any(|s| s.result.get("terminated").is_some()),
        "{:?}",
        done.steps
    );

    sqlx::query("CREATE TABLE orders (id int)")
        .execute(&s.pool)
        .await
        .unwrap();
    let rb = create(
        &admin,
        r#"
name: vacuum-one
title: Vacuum one table
params:
  - name: database
    type: database
  - name: table
    type: text
steps:
  - name: ok
    kind: approval
    message: "vacuum {{params.table}}"
  - name: vacuum
    kind: database
    database: "{{params.database}}"
    op: vacuum_analyze
    table: "{{params.table}}"
"#,
    )
    .await;
    let requester = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    for (table, ok) in [("orders; DROP TABLE orders", false), ("orders", true)] {
        let run = start(
            &requester,
            rb.id,
            json!({"database": "appdb", "table": table}),
        )
        .await;
        let id = run.summary.id;
        let ap = pending_approval(&requester, id).await;
        assert_eq!(ap.step, Some(0), "an approval step gates step 1");
        let _: Approval = ok_json(
            second
                .post(
                    &format!("/api/v1/approvals/{}/approve", ap.id),
                    &json!({"binding": ap.binding}),
                )
                .await,
            "approve",
        )
        .await;
        let want = if ok {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        };
        let r = wait_status(&requester, id, want).await;
        assert_eq!(r.steps[0].status, StepStatus::Succeeded);
        assert!(
            r.steps[0].output.contains("second"),
            "{}",
            r.steps[0].output
        );
        if !ok {
            let e = r.steps[1].error.clone().unwrap_or_default();
            assert!(e.contains("table"), "{e}");
        }
    }
    let still: bool = sqlx::query_scalar("SELECT to_regclass('orders') IS NOT NULL")
        .fetch_one(&s.pool)
        .await
        .unwrap();
    assert!(still, "the injection attempt dropped nothing");
}

/// A valid value for a parameter of a built-in, on this test's inventory.
fn sample(p: &opsdeck_wire::ParamDef) -> Value {
    use opsdeck_wire::ParamKind;
    if let Some(d) = &p.default {
        return d.clone();
    }
    match &p.kind {
        ParamKind::Service | ParamKind::Database => json!("appdb"),
        ParamKind::Container => json!("none"),
        ParamKind::Integer { min, .. } => json!(min.unwrap_or(1)),
        ParamKind::Choice { options } => json!(options[0]),
        ParamKind::Duration { min, .. } => json!(min.clone().unwrap_or_else(|| "5m".into())),
        // backup-run: a plan's name (the pattern refuses paths); the dry
        // run does not look the plan up.
        ParamKind::Text { .. } if p.name == "plan" => json!("nightly"),
        ParamKind::Text { .. } => json!("/var/log"),
    }
}

/// Every built-in runbook dry-runs with every step filled in; the
/// read-only ones and the failover (approved by an admin, refused by a
/// primary, escalated) run for real against the test cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_built_in_plans_and_the_read_only_ones_run() {
    use opsdeck_wire::{Approval, DryRun, RunStatus, RunbookSummary, StepStatus};
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    appdb_on_test_cluster(&s, &admin).await;
    let list: Vec<RunbookSummary> = admin.json("/api/v1/runbooks").await;
    assert!(list.iter().filter(|r| r.builtin).count() >= 11);
    let params_of = |r: &RunbookSummary| -> Value {
        Value::Object(
            r.params
                .iter()
                .map(|p| (p.name.clone(), sample(p)))
                .collect(),
        )
    };
    for r in list.iter().filter(|r| r.builtin) {
        let plan: DryRun = ok_json(
            admin
                .post(
                    &format!("/api/v1/runbooks/{}/dry-run", r.id),
                    &json!({"params": params_of(r)}),
                )
                .await,
            &format!("dry run of {}", r.name),
        )
        .await;
        assert_eq!(plan.steps.len(), r.steps, "{}", r.name);
        // The backup built-ins name what they work on.
        let want = match r.name.as_str() {
            "backup-run" => Some("run backup plan nightly"),
            "backup-verify" => Some("verify backup 1"),
            _ => None,
        };
        if let Some(want) = want {
            assert!(
                plan.steps.iter().any(|st| st.description.contains(want)),
                "{}: {:?}",
                r.name,
                plan.steps
            );
        }
        for st in &plan.steps {
            assert!(
                !st.description.contains("cannot fill in"),
                "{}: {st:?}",
                r.name
            );
        }
    }
    let by = |name: &str| list.iter().find(|r| r.name == name).unwrap();
    // Read-only and report runbooks run to the end.
    for name in [
        "db-locks-report",
        "daily-health-check",
        "certificate-expiry-check",
        "db-pool-exhaustion",
    ] {
        let r = by(name);
        let run = start(&admin, r.id, params_of(r)).await;
        let done = wait_status(&admin, run.summary.id, RunStatus::Succeeded).await;
        assert!(
            done.steps
                .iter()
                .all(|s| matches!(s.status, StepStatus::Succeeded | StepStatus::Failed)),
            "{name}: every step ran: {:?}",
            done.steps
                .iter()
                .map(|s| (&s.name, s.status))
                .collect::<Vec<_>>()
        );
    }
    // Failover: an admin other than the requester approves; the test
    // cluster is a primary, so promote refuses and the run escalates.
    s.create_user("boss", Role::Admin).await;
    let boss = s.login("boss").await;
    let operator = s.user(Role::Operator).await;
    let f = by("database-failover");
    let run = start(&operator, f.id, params_of(f)).await;
    let id = run.summary.id;
    let ap = pending_approval(&operator, id).await;
    // Operators cannot approve a failover: the policy names admins.
    let other_op = {
        s.create_user("op2", Role::Operator).await;
        s.login("op2").await
    };
    let msg = opsdeck_e2e::util::expect_error(
        other_op
            .post(
                &format!("/api/v1/approvals/{}/approve", ap.id),
                &json!({"binding": ap.binding}),
            )
            .await,
        403,
    )
    .await;
    assert!(msg.contains("admin"), "{msg}");
    let _: Approval = ok_json(
        boss.post(
            &format!("/api/v1/approvals/{}/approve", ap.id),
            &json!({"binding": ap.binding}),
        )
        .await,
        "approve failover",
    )
    .await;
    let failed = wait_status(&operator, id, RunStatus::Failed).await;
    let promote = failed
        .steps
        .iter()
        .find(|s| s.name.contains("promote"))
        .expect("a promote step");
    assert!(
        promote
            .error
            .as_deref()
            .unwrap_or("")
            .contains("not a standby"),
        "{:?}",
        promote.error
    );
    let escalation = failed
        .timeline
        .iter()
        .find(|e| e.kind == "escalation")
        .expect("escalated");
    // Escalation opens an incident linked to the run.
    assert!(
        escalation.message.contains("opened incident #"),
        "{}",
        escalation.message
    );
    let (source, linked): (String, Option<i64>) = sqlx::query_as(
        "SELECT i.source, r.incident_id FROM runs r JOIN incidents i ON i.id = r.incident_id
         WHERE r.id = $1",
    )
    .bind(id)
    .fetch_one(&s.pool)
    .await
    .expect("an incident linked to the run");
    assert_eq!(source, "runbook");
    assert!(linked.is_some());
}
