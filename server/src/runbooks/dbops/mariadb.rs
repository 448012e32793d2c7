//! The catalogue's MariaDB/MySQL operations (process list, threads
//! connected). Runtime SQL against the service's own database, constant
//! text only (see the parent module).

use super::*;

pub(super) async fn my_run(t: &Target, op: DbOp, out: &Output) -> Result<Value, String> {
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
pub(super) fn text_col(row: &sqlx::mysql::MySqlRow, col: usize) -> Result<Option<String>, String> {
    row.try_get_unchecked::<Option<String>, _>(col)
        .map_err(db_err)
}

/// Column `col` of the first row of a text-protocol statement.
pub(super) async fn my_value(
    conn: &mut MySqlConnection,
    sql: &str,
    col: usize,
) -> Result<String, String> {
    let row = conn
        .fetch_optional(sql)
        .await
        .map_err(db_err)?
        .ok_or_else(|| format!("{sql}: no row returned"))?;
    text_col(&row, col)?.ok_or_else(|| format!("{sql}: NULL returned"))
}

pub(super) async fn process_list(
    conn: &mut MySqlConnection,
    out: &Output,
) -> Result<Value, String> {
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

pub(super) async fn threads_connected(
    conn: &mut MySqlConnection,
    out: &Output,
) -> Result<Value, String> {
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
