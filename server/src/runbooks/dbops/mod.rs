//! The database catalogue: fixed operations a runbook step runs on the
//! database of a service (Postgres, MariaDB/MySQL).
//!
//! The `database` parameter of a step names a *service*; the service's
//! Postgres or MariaDB/MySQL health check (the enabled one first, then the
//! oldest) gives the URL and the write-only password. Each operation opens
//! one connection (no pool, `application_name` `opsdeck-runbook` on
//! Postgres), runs its statements and closes it.
//!
//! Safety decisions:
//! * Every statement is constant text; values go in as bind parameters.
//!   The only text spliced into SQL is a table name that passed
//!   [`check_table`] (identifier parts, each quoted) *and* exists
//!   (`to_regclass` answers it), and the current database's name read from
//!   `current_database()`, quoted the same way.
//! * The terminate operations never terminate their own session, and
//!   re-check each candidate's state when terminating it, so a session that
//!   woke up between listing and terminating is left alone. They act on every
//!   database of the server (the permissions of the check's user limit them).
//! * Connection options come from the health-check code (no local sockets,
//!   no password from the Opsdeck process's environment); messages are one
//!   line and never show the password.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use opsdeck_wire::{CheckSpec, DbOp};
use serde_json::{json, Value};
use sqlx::mysql::MySqlConnection;
use sqlx::postgres::PgConnection;
use sqlx::{Connection, Executor, Row};

use crate::checks::probe::sql::{describe_sqlx, mysql_options, pg_options, scrub};
use crate::runbooks::output::Output;
use crate::state::AppState;

/// `application_name` of runbook connections to Postgres.
const APP_NAME: &str = "opsdeck-runbook";
/// Longest wait for a connection (the step's timeout still applies).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// `top_queries` rows without a `limit`, and the largest `limit`.
const DEFAULT_LIMIT: u32 = 10;
const MAX_LIMIT: u32 = 100;
/// Longest identifier part Postgres keeps (NAMEDATALEN - 1).
const MAX_IDENT: usize = 63;
/// Query text kept in results.
const LOCK_QUERY_CHARS: i32 = 200;
const TOP_QUERY_CHARS: i32 = 300;
const PROCESS_INFO_CHARS: usize = 200;
/// Most rows of `process_list` and of `blocking_locks`.
const MAX_ROWS: usize = 200;
/// Widest cell of the output tables.
const CELL_CHARS: usize = 60;

/// Which server an operation is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Family {
    Postgres,
    Mysql,
}

impl Family {
    fn of(op: DbOp) -> Family {
        match op {
            DbOp::ProcessList | DbOp::ThreadsConnected => Family::Mysql,
            _ => Family::Postgres,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Family::Postgres => "Postgres",
            Family::Mysql => "MariaDB/MySQL",
        }
    }
}

/// The service's database check: how to connect.
pub(crate) struct Target {
    pub(crate) family: Family,
    pub(crate) url: String,
    pub(crate) password: Option<String>,
}

/// Runs one catalogue operation on the database a `database` parameter
/// names (a service with a Postgres or MariaDB/MySQL check).
///
/// Returns the result's named fields, or a one-line message that never
/// contains the password. Human-readable lines (a small table) go to `out`.
pub async fn run(
    state: &AppState,
    database: &str,
    op: DbOp,
    older_than: Option<Duration>,
    table: Option<&str>,
    limit: Option<u32>,
    out: &Output,
) -> Result<Value, String> {
    // Arguments first: nothing is looked up or connected for a bad step.
    let args = Args::check(op, older_than, table, limit)?;
    let target = lookup(state, database).await?;
    let want = Family::of(op);
    if target.family != want {
        return Err(format!(
            "{} is a {} operation, but database \"{database}\" is {}",
            op.as_str(),
            want.name(),
            target.family.name()
        ));
    }
    let password = target.password.clone();
    let res = match target.family {
        Family::Postgres => pg_run(&target, op, &args, out).await,
        Family::Mysql => my_run(&target, op, out).await,
    };
    res.map_err(|e| scrub(e, password.as_deref()))
}

/// One line saying what [`run`] would do, for dry runs (no connection).
pub fn describe(
    database: &str,
    op: DbOp,
    older_than: Option<Duration>,
    table: Option<&str>,
    limit: Option<u32>,
) -> String {
    let age = |what: &str| match older_than {
        Some(d) => format!(
            "{what} for more than {}",
            humantime::format_duration(Duration::from_secs(d.as_secs()))
        ),
        None => format!("{what} (older_than missing)"),
    };
    let table_or = |whole: &str| match table {
        Some(t) => match check_table(t) {
            Ok(q) => format!("table {q}"),
            Err(_) => format!("table {t:?} (invalid name)"),
        },
        None => whole.to_string(),
    };
    let what = match op {
        DbOp::ConnectionCounts => "count client connections by state".to_string(),
        DbOp::TerminateIdle => format!(
            "terminate client connections {} (every database of the server)",
            age("idle")
        ),
        DbOp::TerminateActive => format!(
            "terminate queries {} (every database of the server)",
            age("running")
        ),
        DbOp::BlockingLocks => "list blocked sessions and the sessions blocking them".into(),
        DbOp::VacuumAnalyze => format!("VACUUM (ANALYZE) {}", table_or("the whole database")),
        DbOp::Reindex => format!("REINDEX {}", table_or("the whole database")),
        DbOp::CacheHitRatio => "read the buffer cache hit ratio".into(),
        DbOp::TopQueries => format!(
            "list the top {} queries by total time (pg_stat_statements)",
            limit.unwrap_or(DEFAULT_LIMIT)
        ),
        DbOp::Promote => "promote the standby to primary (pg_promote)".into(),
        DbOp::ProcessList => "list sessions (SHOW FULL PROCESSLIST)".into(),
        DbOp::ThreadsConnected => "read Threads_connected and max_connections".into(),
    };
    format!(
        "{} on {} database \"{database}\": {what}",
        op.as_str(),
        Family::of(op).name()
    )
}

/// Validates a table name, `table` or `schema.table`, each part
/// `[A-Za-z_][A-Za-z0-9_]{0,62}`, and returns it quoted part by part
/// (`"public"."users"`). Quoting keeps the case as written.
pub fn check_table(name: &str) -> Result<String, String> {
    let refuse = || {
        let shown: String = name.chars().take(80).collect();
        format!(
            "invalid table name {shown:?}: expected table or schema.table \
             (letters, digits and _, not starting with a digit)"
        )
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() > 2 {
        return Err(refuse());
    }
    let mut quoted = Vec::with_capacity(parts.len());
    for p in parts {
        let mut chars = p.chars();
        let ok = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && p.len() <= MAX_IDENT
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !ok {
            return Err(refuse());
        }
        quoted.push(quote_ident(p));
    }
    Ok(quoted.join("."))
}

/// `"name"` with inner double quotes doubled.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// The operation's arguments, checked.
struct Args {
    older_than: Option<Duration>,
    /// Quoted (checked, existence not yet known).
    table: Option<String>,
    limit: u32,
}

impl Args {
    fn check(
        op: DbOp,
        older_than: Option<Duration>,
        table: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Args, String> {
        if matches!(op, DbOp::TerminateIdle | DbOp::TerminateActive) && older_than.is_none() {
            return Err(format!("{} needs older_than (e.g. 5m)", op.as_str()));
        }
        let table = match (op, table) {
            (DbOp::VacuumAnalyze | DbOp::Reindex, Some(t)) => Some(check_table(t)?),
            _ => None,
        };
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if op == DbOp::TopQueries && !(1..=MAX_LIMIT).contains(&limit) {
            return Err(format!(
                "limit must be between 1 and {MAX_LIMIT}, not {limit}"
            ));
        }
        Ok(Args {
            older_than,
            table,
            limit,
        })
    }
}

/// The service's database check.
pub(crate) async fn lookup(state: &AppState, database: &str) -> Result<Target, String> {
    let row: Option<(String, Value, Option<String>)> = sqlx::query_as(
        "SELECT c.kind, c.spec, c.secret FROM checks c JOIN services s ON s.id = c.service_id \
         WHERE s.name = $1 AND c.kind IN ('postgres', 'mysql') \
         ORDER BY c.enabled DESC, c.id LIMIT 1",
    )
    .bind(database)
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| format!("reading the database check: {}", describe_sqlx(&e)))?;
    let Some((kind, spec, secret)) = row else {
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM services WHERE name = $1)")
                .bind(database)
                .fetch_one(&state.pool)
                .await
                .map_err(|e| format!("reading services: {}", describe_sqlx(&e)))?;
        return Err(if exists {
            format!("service \"{database}\" has no Postgres or MariaDB/MySQL check")
        } else {
            format!("no service \"{database}\"")
        });
    };
    let spec: CheckSpec = serde_json::from_value(spec)
        .map_err(|e| format!("the {kind} check of \"{database}\" is unreadable: {e}"))?;
    let (family, url) = match spec {
        CheckSpec::Postgres(c) => (Family::Postgres, c.url),
        CheckSpec::Mysql(c) => (Family::Mysql, c.url),
        _ => {
            return Err(format!(
                "the check of \"{database}\" is not a database check"
            ))
        }
    };
    Ok(Target {
        family,
        url,
        password: secret,
    })
}

// ------------------------------------------------------------------ Postgres

async fn pg_run(t: &Target, op: DbOp, args: &Args, out: &Output) -> Result<Value, String> {
    let opts = pg_options(&t.url, t.password.as_deref())?.application_name(APP_NAME);
    let mut conn =
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&opts)).await {
            Err(_) => {
                return Err(format!(
                    "cannot connect: timed out after {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            }
            Ok(Err(e)) => return Err(format!("cannot connect: {}", describe_sqlx(&e))),
            Ok(Ok(c)) => c,
        };
    let res = pg_op(&mut conn, op, args, out).await;
    let _ = conn.close().await;
    res
}

fn db_err(e: sqlx::Error) -> String {
    describe_sqlx(&e)
}

async fn pg_op(
    conn: &mut PgConnection,
    op: DbOp,
    args: &Args,
    out: &Output,
) -> Result<Value, String> {
    match op {
        DbOp::ConnectionCounts => connection_counts(conn, out).await,
        DbOp::TerminateIdle => {
            terminate(conn, false, args.older_than.unwrap_or_default(), out).await
        }
        DbOp::TerminateActive => {
            terminate(conn, true, args.older_than.unwrap_or_default(), out).await
        }
        DbOp::BlockingLocks => blocking_locks(conn, out).await,
        DbOp::VacuumAnalyze => vacuum_analyze(conn, args.table.as_deref(), out).await,
        DbOp::Reindex => reindex(conn, args.table.as_deref(), out).await,
        DbOp::CacheHitRatio => cache_hit_ratio(conn, out).await,
        DbOp::TopQueries => top_queries(conn, args.limit, out).await,
        DbOp::Promote => promote(conn, out).await,
        DbOp::ProcessList | DbOp::ThreadsConnected => {
            Err(format!("{} is not a Postgres operation", op.as_str()))
        }
    }
}

async fn connection_counts(conn: &mut PgConnection, out: &Output) -> Result<Value, String> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT COALESCE(state, 'unknown'), COALESCE(datname::text, ''), count(*)::int8 \
         FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let max: i64 = sqlx::query_scalar("SELECT current_setting('max_connections')::int8")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut by_state: BTreeMap<String, i64> = BTreeMap::new();
    let mut by_database: BTreeMap<String, i64> = BTreeMap::new();
    for (state, db, n) in &rows {
        *by_state.entry(state.clone()).or_default() += n;
        *by_database.entry(db.clone()).or_default() += n;
    }
    let total: i64 = by_state.values().sum();
    let table_rows: Vec<Vec<String>> = by_state
        .iter()
        .map(|(s, n)| vec![s.clone(), n.to_string()])
        .collect();
    write_table(out, &["state", "connections"], &table_rows);
    let pct = if max > 0 {
        Some(100.0 * total as f64 / max as f64)
    } else {
        None
    };
    out.line(format!(
        "{total} client connections of max_connections {max}{} (this session not counted)",
        pct.map(|p| format!(" ({p:.0} %)")).unwrap_or_default()
    ));
    Ok(json!({
        "total": total,
        "by_state": by_state,
        "by_database": by_database,
        "max_connections": max,
        "used_pct": pct,
    }))
}

/// A session found by the terminate operations.
struct Candidate {
    pid: i32,
    user: Option<String>,
    database: Option<String>,
    application: String,
    age_s: f64,
    query: String,
}

/// Terminates idle (`active == false`) or active client sessions older than
/// `older_than`, never this session. Each candidate is terminated by its own
/// statement that re-checks the condition.
async fn terminate(
    conn: &mut PgConnection,
    active: bool,
    older_than: Duration,
    out: &Output,
) -> Result<Value, String> {
    let secs = older_than.as_secs_f64();
    let list = if active {
        "SELECT pid, usename::text, datname::text, COALESCE(application_name, ''), \
           EXTRACT(EPOCH FROM now() - query_start)::float8, left(COALESCE(query, ''), 200) \
         FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
           AND state = 'active' AND query_start < now() - make_interval(secs => $1) \
         ORDER BY query_start, pid"
    } else {
        "SELECT pid, usename::text, datname::text, COALESCE(application_name, ''), \
           EXTRACT(EPOCH FROM now() - state_change)::float8, left(COALESCE(query, ''), 200) \
         FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
           AND state = 'idle' AND state_change < now() - make_interval(secs => $1) \
         ORDER BY state_change, pid"
    };
    let kill = if active {
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pid = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
           AND state = 'active' AND query_start < now() - make_interval(secs => $2)"
    } else {
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE pid = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend' \
           AND state = 'idle' AND state_change < now() - make_interval(secs => $2)"
    };
    let rows = sqlx::query(list)
        .bind(secs)
        .fetch_all(&mut *conn)
        .await
        .map_err(db_err)?;
    let mut candidates = Vec::with_capacity(rows.len());
    for r in rows {
        candidates.push(Candidate {
            pid: r.try_get(0).map_err(db_err)?,
            user: r.try_get(1).map_err(db_err)?,
            database: r.try_get(2).map_err(db_err)?,
            application: r.try_get(3).map_err(db_err)?,
            age_s: r
                .try_get::<Option<f64>, _>(4)
                .map_err(db_err)?
                .unwrap_or(0.0),
            query: r
                .try_get::<Option<String>, _>(5)
                .map_err(db_err)?
                .unwrap_or_default(),
        });
    }
    let what = if active { "active" } else { "idle" };
    let age = humantime::format_duration(Duration::from_secs(older_than.as_secs()));
    if candidates.is_empty() {
        out.line(format!("no {what} client connections older than {age}"));
        return Ok(json!({"terminated": 0, "pids": [], "sessions": [], "failed": 0}));
    }
    let mut sessions = Vec::new();
    let mut pids = Vec::new();
    let mut table = Vec::new();
    let (mut terminated, mut failed) = (0u32, 0u32);
    for c in candidates {
        let res: Result<Option<bool>, sqlx::Error> = sqlx::query_scalar(kill)
            .bind(c.pid)
            .bind(secs)
            .fetch_optional(&mut *conn)
            .await;
        let outcome = match res {
            Ok(Some(true)) => {
                terminated += 1;
                pids.push(c.pid);
                "terminated".to_string()
            }
            // Exited between the two statements.
            Ok(Some(false)) => "skipped (gone)".to_string(),
            // Gone, or no longer matching: left alone.
            Ok(None) => "skipped (changed)".to_string(),
            Err(e) => {
                failed += 1;
                format!("failed: {}", describe_sqlx(&e))
            }
        };
        table.push(vec![
            c.pid.to_string(),
            c.user.clone().unwrap_or_default(),
            c.database.clone().unwrap_or_default(),
            c.application.clone(),
            format!("{:.0}", c.age_s),
            if active {
                c.query.clone()
            } else {
                String::new()
            },
            outcome.clone(),
        ]);
        let mut s = json!({
            "pid": c.pid,
            "user": c.user,
            "database": c.database,
            "application": c.application,
            "age_s": c.age_s,
            "outcome": outcome,
        });
        if active {
            s["query"] = json!(c.query);
        }
        sessions.push(s);
    }
    let head: &[&str] = if active {
        &[
            "pid",
            "user",
            "database",
            "application",
            "running s",
            "query",
            "outcome",
        ]
    } else {
        &[
            "pid",
            "user",
            "database",
            "application",
            "idle s",
            "",
            "outcome",
        ]
    };
    write_table(out, head, &table);
    out.line(format!(
        "terminated {terminated} {what} connection(s) older than {age}{}",
        if failed > 0 {
            format!(", {failed} could not be terminated")
        } else {
            String::new()
        }
    ));
    Ok(json!({
        "terminated": terminated,
        "pids": pids,
        "failed": failed,
        "sessions": sessions,
    }))
}

async fn blocking_locks(conn: &mut PgConnection, out: &Output) -> Result<Value, String> {
    let rows = sqlx::query(
        "SELECT w.pid, w.usename::text, w.datname::text, left(COALESCE(w.query, ''), $1), \
           EXTRACT(EPOCH FROM now() - w.query_start)::float8, \
           bp.pid, b.usename::text, b.state, left(COALESCE(b.query, ''), $1), \
           EXTRACT(EPOCH FROM now() - b.xact_start)::float8 \
         FROM pg_stat_activity w \
         CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid) \
         LEFT JOIN pg_stat_activity b ON b.pid = bp.pid \
         WHERE w.pid <> pg_backend_pid() \
         ORDER BY w.query_start, w.pid, bp.pid \
         LIMIT $2",
    )
    .bind(LOCK_QUERY_CHARS)
    .bind(MAX_ROWS as i64)
    .fetch_all(&mut *conn)
    .await
    .map_err(db_err)?;
    let mut pairs = Vec::new();
    let mut blocked = std::collections::BTreeSet::new();
    let mut table = Vec::new();
    for r in rows {
        let g = |i: usize| -> Result<Option<String>, String> { r.try_get(i).map_err(db_err) };
        let f = |i: usize| -> Result<Option<f64>, String> { r.try_get(i).map_err(db_err) };
        let blocked_pid: i32 = r.try_get(0).map_err(db_err)?;
        let blocking_pid: i32 = r.try_get(5).map_err(db_err)?;
        let (bq, wait) = (g(3)?.unwrap_or_default(), f(4)?);
        let (bstate, bquery, bxact) = (g(7)?, g(8)?.unwrap_or_default(), f(9)?);
        blocked.insert(blocked_pid);
        table.push(vec![
            blocked_pid.to_string(),
            wait.map(|w| format!("{w:.0}")).unwrap_or_default(),
            bq.clone(),
            blocking_pid.to_string(),
            bstate.clone().unwrap_or_default(),
            bquery.clone(),
        ]);
        pairs.push(json!({
            "blocked_pid": blocked_pid,
            "blocked_user": g(1)?,
            "blocked_database": g(2)?,
            "blocked_query": bq,
            "waiting_s": wait,
            "blocking_pid": blocking_pid,
            "blocking_user": g(6)?,
            "blocking_state": bstate,
            "blocking_query": bquery,
            "blocking_xact_s": bxact,
        }));
    }
    if pairs.is_empty() {
        out.line("no blocked sessions");
    } else {
        write_table(
            out,
            &[
                "blocked",
                "waiting s",
                "query",
                "blocked by",
                "its state",
                "its query",
            ],
            &table,
        );
        out.line(format!(
            "{} blocked session(s), {} blocking pair(s)",
            blocked.len(),
            pairs.len()
        ));
    }
    Ok(json!({"blocked": blocked.len(), "pairs": pairs}))
}

/// Fails unless the (checked, quoted) table exists.
async fn ensure_table(conn: &mut PgConnection, quoted: &str) -> Result<(), String> {
    let found: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
        .bind(quoted)
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    match found {
        Some(_) => Ok(()),
        None => Err(format!("no table {quoted}")),
    }
}

async fn vacuum_analyze(
    conn: &mut PgConnection,
    table: Option<&str>,
    out: &Output,
) -> Result<Value, String> {
    let sql = match table {
        Some(q) => {
            ensure_table(conn, q).await?;
            format!("VACUUM (ANALYZE) {q}")
        }
        None => "VACUUM (ANALYZE)".to_string(),
    };
    let what = table.unwrap_or("the whole database");
    out.line(format!("VACUUM (ANALYZE) {what} …"));
    let start = Instant::now();
    // Simple protocol, outside any transaction block (VACUUM needs that).
    conn.execute(sql.as_str()).await.map_err(db_err)?;
    let ms = start.elapsed().as_millis() as u64;
    out.line(format!("done in {ms} ms"));
    Ok(json!({"table": table, "duration_ms": ms}))
}

async fn reindex(
    conn: &mut PgConnection,
    table: Option<&str>,
    out: &Output,
) -> Result<Value, String> {
    let (kind, target) = match table {
        Some(q) => {
            ensure_table(conn, q).await?;
            ("table", q.to_string())
        }
        None => {
            let db: String = sqlx::query_scalar("SELECT current_database()::text")
                .fetch_one(&mut *conn)
                .await
                .map_err(db_err)?;
            ("database", quote_ident(&db))
        }
    };
    let sql = match kind {
        "table" => format!("REINDEX TABLE {target}"),
        _ => format!("REINDEX DATABASE {target}"),
    };
    out.line(format!("REINDEX {} {target} …", kind.to_uppercase()));
    let start = Instant::now();
    conn.execute(sql.as_str()).await.map_err(db_err)?;
    let ms = start.elapsed().as_millis() as u64;
    out.line(format!("done in {ms} ms"));
    Ok(json!({"kind": kind, "target": target, "duration_ms": ms}))
}

async fn cache_hit_ratio(conn: &mut PgConnection, out: &Output) -> Result<Value, String> {
    let (hit, read): (Option<f64>, Option<f64>) = sqlx::query_as(
        "SELECT sum(blks_hit)::float8, sum(blks_read)::float8 FROM pg_stat_database",
    )
    .fetch_one(&mut *conn)
    .await
    .map_err(db_err)?;
    let (hit, read) = (hit.unwrap_or(0.0), read.unwrap_or(0.0));
    let pct = (hit + read > 0.0).then(|| 100.0 * hit / (hit + read));
    write_table(
        out,
        &["blocks hit", "blocks read", "cache hit %"],
        &[vec![
            format!("{hit:.0}"),
            format!("{read:.0}"),
            pct.map(|p| format!("{p:.2}")).unwrap_or_else(|| "-".into()),
        ]],
    );
    if pct.is_none() {
        out.line("no blocks read yet: no ratio");
    }
    Ok(json!({"cache_hit_pct": pct, "blks_hit": hit, "blks_read": read}))
}

/// calls, total ms, mean ms, rows, query.
type TopRow = (i64, f64, f64, i64, Option<String>);

async fn top_queries(conn: &mut PgConnection, limit: u32, out: &Output) -> Result<Value, String> {
    let installed: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements'")
            .fetch_optional(&mut *conn)
            .await
            .map_err(db_err)?;
    if installed.is_none() {
        out.line("pg_stat_statements is not installed in this database: no query statistics");
        return Ok(json!({"available": false, "reason": "pg_stat_statements is not installed"}));
    }
    let version: i32 = sqlx::query_scalar("SELECT current_setting('server_version_num')::int4")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    // The columns were renamed in Postgres 13.
    let sql = if version >= 130000 {
        "SELECT calls::int8, total_exec_time::float8, mean_exec_time::float8, rows::int8, \
           left(query, $2) \
         FROM pg_stat_statements ORDER BY total_exec_time DESC LIMIT $1"
    } else {
        "SELECT calls::int8, total_time::float8, mean_time::float8, rows::int8, \
           left(query, $2) \
         FROM pg_stat_statements ORDER BY total_time DESC LIMIT $1"
    };
    let rows: Result<Vec<TopRow>, sqlx::Error> = sqlx::query_as(sql)
        .bind(i64::from(limit))
        .bind(TOP_QUERY_CHARS)
        .fetch_all(&mut *conn)
        .await;
    let rows = match rows {
        Ok(r) => r,
        // Installed but not in shared_preload_libraries.
        Err(sqlx::Error::Database(e)) if e.code().as_deref() == Some("55000") => {
            let why = one_line(e.message());
            out.line(format!("pg_stat_statements is not usable: {why}"));
            return Ok(json!({"available": false, "reason": why}));
        }
        Err(e) => return Err(db_err(e)),
    };
    let queries: Vec<Value> = rows
        .iter()
        .map(|(calls, total, mean, n, q)| {
            json!({
                "calls": calls,
                "total_ms": total,
                "mean_ms": mean,
                "rows": n,
                "query": q.clone().unwrap_or_default(),
            })
        })
        .collect();
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(calls, total, mean, _, q)| {
            vec![
                format!("{total:.1}"),
                calls.to_string(),
                format!("{mean:.2}"),
                q.clone().unwrap_or_default(),
            ]
        })
        .collect();
    if table.is_empty() {
        out.line("pg_stat_statements has no statements yet");
    } else {
        write_table(out, &["total ms", "calls", "mean ms", "query"], &table);
    }
    Ok(json!({"available": true, "queries": queries}))
}

async fn promote(conn: &mut PgConnection, out: &Output) -> Result<Value, String> {
    let standby: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    if !standby {
        return Err("not a standby: pg_is_in_recovery() is false, nothing to promote".into());
    }
    out.line("standby: calling pg_promote(wait => true, wait_seconds => 60) …");
    let promoted: bool = sqlx::query_scalar("SELECT pg_promote(true, 60)")
        .fetch_one(&mut *conn)
        .await
        .map_err(db_err)?;
    if promoted {
        out.line("promoted: the server is now a primary");
    } else {
        out.line("pg_promote() returned false: not promoted within 60 s");
    }
    Ok(json!({"promoted": promoted}))
}

// ------------------------------------------------------------ MariaDB/MySQL

async fn my_run(t: &Target, op: DbOp, out: &Output) -> Result<Value, String> {
    let opts = mysql_options(&t.url, t.password.as_deref())?;
    let mut conn =
        match tokio::time::timeout(CONNECT_TIMEOUT, MySqlConnection::connect_with(&opts)).await {
            Err(_) => {
                return Err(format!(
                    "cannot connect: timed out after {} s",
                    CONNECT_TIMEOUT.as_secs()
                ))
            }
            Ok(Err(e)) => return Err(format!("cannot connect: {}", describe_sqlx(&e))),
            Ok(Ok(c)) => c,
        };
    let res = match op {
        DbOp::ProcessList => process_list(&mut conn, out).await,
        DbOp::ThreadsConnected => threads_connected(&mut conn, out).await,
        other => Err(format!(
            "{} is not a MariaDB/MySQL operation",
            other.as_str()
        )),
    };
    let _ = conn.close().await;
    res
}

/// Column `col` of a text-protocol row as text (every value is text there,
/// whatever its declared type).
fn text_col(row: &sqlx::mysql::MySqlRow, col: usize) -> Result<Option<String>, String> {
    row.try_get_unchecked::<Option<String>, _>(col)
        .map_err(db_err)
}

/// Column `col` of the first row of a text-protocol statement.
async fn my_value(conn: &mut MySqlConnection, sql: &str, col: usize) -> Result<String, String> {
    let row = conn
        .fetch_optional(sql)
        .await
        .map_err(db_err)?
        .ok_or_else(|| format!("{sql}: no row returned"))?;
    text_col(&row, col)?.ok_or_else(|| format!("{sql}: NULL returned"))
}

async fn process_list(conn: &mut MySqlConnection, out: &Output) -> Result<Value, String> {
    let own = my_value(conn, "SELECT CONNECTION_ID()", 0).await?;
    let rows = conn
        .fetch_all("SHOW FULL PROCESSLIST")
        .await
        .map_err(db_err)?;
    let mut processes = Vec::new();
    let mut table = Vec::new();
    let mut count = 0usize;
    for r in &rows {
        let id = text_col(r, 0)?.unwrap_or_default();
        if id == own {
            continue;
        }
        count += 1;
        if processes.len() >= MAX_ROWS {
            continue;
        }
        let user = text_col(r, 1)?;
        let host = text_col(r, 2)?;
        let db = text_col(r, 3)?;
        let command = text_col(r, 4)?;
        let time = text_col(r, 5)?.and_then(|t| t.trim().parse::<i64>().ok());
        let state = text_col(r, 6)?;
        let info = text_col(r, 7)?.map(|i| cut(&i, PROCESS_INFO_CHARS));
        table.push(vec![
            id.clone(),
            user.clone().unwrap_or_default(),
            host.clone().unwrap_or_default(),
            db.clone().unwrap_or_default(),
            command.clone().unwrap_or_default(),
            time.map(|t| t.to_string()).unwrap_or_default(),
            state.clone().unwrap_or_default(),
            info.clone().unwrap_or_default(),
        ]);
        processes.push(json!({
            "id": id.parse::<i64>().ok(),
            "user": user,
            "host": host,
            "db": db,
            "command": command,
            "time": time,
            "state": state,
            "info": info,
        }));
    }
    if table.is_empty() {
        out.line("no other sessions");
    } else {
        write_table(
            out,
            &[
                "id", "user", "host", "db", "command", "time s", "state", "info",
            ],
            &table,
        );
    }
    let truncated = count > processes.len();
    out.line(format!(
        "{count} session(s) (this one not listed){}",
        if truncated {
            format!(", first {MAX_ROWS} shown")
        } else {
            String::new()
        }
    ));
    Ok(json!({"count": count, "processes": processes, "truncated": truncated}))
}

async fn threads_connected(conn: &mut MySqlConnection, out: &Output) -> Result<Value, String> {
    let threads = my_value(conn, "SHOW GLOBAL STATUS LIKE 'Threads_connected'", 1).await?;
    let threads: u64 = threads
        .trim()
        .parse()
        .map_err(|_| format!("unexpected Threads_connected value {threads:?}"))?;
    let max = my_value(conn, "SELECT @@GLOBAL.max_connections", 0).await?;
    let max: u64 = max
        .trim()
        .parse()
        .map_err(|_| format!("unexpected max_connections value {max:?}"))?;
    let pct = (max > 0).then(|| 100.0 * threads as f64 / max as f64);
    write_table(
        out,
        &["Threads_connected", "max_connections", "used %"],
        &[vec![
            threads.to_string(),
            max.to_string(),
            pct.map(|p| format!("{p:.0}")).unwrap_or_else(|| "-".into()),
        ]],
    );
    Ok(json!({"threads_connected": threads, "max_connections": max, "used_pct": pct}))
}

// ------------------------------------------------------------------ output

/// At most `n` characters of `s`, `…` marking a cut.
fn cut(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(n.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}

/// `s` on one line: control characters and runs of white space become one
/// space.
fn one_line(s: &str) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    flat.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A table cell: one line, at most [`CELL_CHARS`] characters.
fn cell(s: &str) -> String {
    cut(&one_line(s), CELL_CHARS)
}

/// Writes a header and rows as aligned columns (empty columns dropped).
fn write_table(out: &Output, head: &[&str], rows: &[Vec<String>]) {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    let keep: Vec<usize> = (0..head.len())
        .filter(|&i| !head[i].is_empty() || rows.iter().any(|r| !r[i].is_empty()))
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([head[i].chars().count()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = keep.iter().map(|&i| width(i)).collect();
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    out.line(line(keep.iter().map(|&i| head[i]).collect()));
    for r in &rows {
        out.line(line(keep.iter().map(|&i| r[i].as_str()).collect()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        assert_eq!(check_table("users").unwrap(), "\"users\"");
        assert_eq!(check_table("public.users").unwrap(), "\"public\".\"users\"");
        assert_eq!(check_table("_t1").unwrap(), "\"_t1\"");
        assert_eq!(check_table("Mixed_Case").unwrap(), "\"Mixed_Case\"");
        let longest = "a".repeat(63);
        assert_eq!(check_table(&longest).unwrap(), format!("\"{longest}\""));
        for bad in [
            "",
            ".",
            "users; DROP TABLE x",
            "x; DROP TABLE users",
            "../x",
            "\"a\"",
            "a.b.c",
            "public.",
            ".users",
            "1users",
            "us ers",
            "users--",
            "üsers",
            "a-b",
            "users\0",
            "users\n",
            &"a".repeat(64),
        ] {
            let err = check_table(bad).unwrap_err();
            assert!(err.starts_with("invalid table name"), "{bad:?}: {err}");
            assert!(!err.contains('\n'), "one line: {err:?}");
        }
    }

    #[test]
    fn quoting_doubles_quotes() {
        assert_eq!(quote_ident("app"), "\"app\"");
        assert_eq!(quote_ident("we\"ird"), "\"we\"\"ird\"");
    }

    #[test]
    fn describe_says_what_would_run() {
        let d = describe(
            "billing",
            DbOp::TerminateIdle,
            Some(Duration::from_secs(300)),
            None,
            None,
        );
        assert_eq!(
            d,
            "terminate_idle on Postgres database \"billing\": terminate client connections \
             idle for more than 5m (every database of the server)"
        );
        let d = describe("billing", DbOp::TerminateActive, None, None, None);
        assert!(d.contains("(older_than missing)"), "{d}");
        assert_eq!(
            describe("app", DbOp::VacuumAnalyze, None, Some("public.users"), None),
            "vacuum_analyze on Postgres database \"app\": VACUUM (ANALYZE) table \"public\".\"users\""
        );
        assert_eq!(
            describe("app", DbOp::Reindex, None, None, None),
            "reindex on Postgres database \"app\": REINDEX the whole database"
        );
        let d = describe(
            "app",
            DbOp::Reindex,
            None,
            Some("x; DROP TABLE users"),
            None,
        );
        assert!(d.contains("(invalid name)"), "{d}");
        assert!(describe("app", DbOp::TopQueries, None, None, None).contains("top 10 queries"));
        assert!(describe("app", DbOp::TopQueries, None, None, Some(25)).contains("top 25 queries"));
        assert_eq!(
            describe("shop", DbOp::ProcessList, None, None, None),
            "process_list on MariaDB/MySQL database \"shop\": list sessions (SHOW FULL PROCESSLIST)"
        );
        assert!(describe("shop", DbOp::ThreadsConnected, None, None, None)
            .starts_with("threads_connected on MariaDB/MySQL"));
        assert!(describe("db", DbOp::Promote, None, None, None).contains("pg_promote"));
    }

    #[test]
    fn arguments_are_checked_before_connecting() {
        let e = Args::check(DbOp::TerminateIdle, None, None, None)
            .err()
            .unwrap();
        assert_eq!(e, "terminate_idle needs older_than (e.g. 5m)");
        assert!(Args::check(DbOp::TerminateActive, Some(Duration::ZERO), None, None).is_ok());
        let e = Args::check(DbOp::VacuumAnalyze, None, Some("a;b"), None)
            .err()
            .unwrap();
        assert!(e.starts_with("invalid table name"), "{e}");
        let a = Args::check(DbOp::Reindex, None, Some("s.t"), None).unwrap();
        assert_eq!(a.table.as_deref(), Some("\"s\".\"t\""));
        assert_eq!(
            Args::check(DbOp::TopQueries, None, None, None)
                .unwrap()
                .limit,
            10
        );
        assert!(Args::check(DbOp::TopQueries, None, None, Some(100)).is_ok());
        assert!(Args::check(DbOp::TopQueries, None, None, Some(0)).is_err());
        assert!(Args::check(DbOp::TopQueries, None, None, Some(101)).is_err());
    }

    #[test]
    fn tables_are_aligned_one_line_cells() {
        let out = Output::new();
        write_table(
            &out,
            &["pid", "", "query"],
            &[
                vec!["1".into(), "".into(), "SELECT\n  1".into()],
                vec!["12345".into(), "".into(), "x".repeat(100)],
            ],
        );
        let (text, _, _) = out.snapshot();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "pid    query");
        assert_eq!(lines[1], "1      SELECT 1");
        assert_eq!(lines[2].chars().count(), 7 + CELL_CHARS);
        assert!(lines[2].ends_with('…'));
    }
}
