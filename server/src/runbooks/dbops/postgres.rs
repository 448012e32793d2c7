//! The catalogue's Postgres operations (connections, terminate, locks,
//! vacuum/analyze, reindex, cache hit ratio, top queries, promote).
//! Runtime SQL against the service's own database, constant text only
//! (see the parent module).

use super::*;

pub(super) async fn pg_run(
    t: &Target,
    op: DbOp,
    args: &Args,
    out: &Output,
) -> Result<Value, String> {
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

pub(super) fn db_err(e: sqlx::Error) -> String {
    describe_sqlx(&e)
}

pub(super) async fn pg_op(
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

pub(super) async fn connection_counts(
    conn: &mut PgConnection,
    out: &Output,
) -> Result<Value, String> {
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
pub(super) struct Candidate {
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
pub(super) async fn terminate(
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

pub(super) async fn blocking_locks(conn: &mut PgConnection, out: &Output) -> Result<Value, String> {
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
pub(super) async fn ensure_table(conn: &mut PgConnection, quoted: &str) -> Result<(), String> {
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

pub(super) async fn vacuum_analyze(
    conn: &mut PgConnection,
    table: Option<&str>,
    out: &Output,
) -> Result<Value, String> {
    let sql = match table {
        Some(q) => {
            ensure_table(conn, q).await?;
            // Dynamic: an identifier checked by `check_table` and quoted.
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

pub(super) async fn reindex(
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
    // Dynamic: an identifier, checked and quoted (REINDEX takes no binds).
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

pub(super) async fn cache_hit_ratio(
    conn: &mut PgConnection,
    out: &Output,
) -> Result<Value, String> {
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
pub(super) type TopRow = (i64, f64, f64, i64, Option<String>);

pub(super) async fn top_queries(
    conn: &mut PgConnection,
    limit: u32,
    out: &Output,
) -> Result<Value, String> {
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

pub(super) async fn promote(conn: &mut PgConnection, out: &Output) -> Result<Value, String> {
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
