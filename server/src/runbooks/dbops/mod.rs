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
//!
//! Why this SQL is not compile-checked: it runs against the *users'*
//! databases (any Postgres or MariaDB/MySQL a service exposes), not against
//! Opsdeck's schema, so `query!` has nothing to check it against. It stays
//! runtime `sqlx::query` with constant text (plus the quoted identifiers
//! above, spliced with `format!` because VACUUM and REINDEX take no bind
//! parameters and VACUUM needs the simple protocol, which `QueryBuilder`
//! does not use). The lookup of the target in Opsdeck's own tables is
//! compile-checked. Sections: [`postgres`], [`mariadb`]; here the lookup of the
//! target, the arguments and the output table.

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

mod mariadb;
mod postgres;

use mariadb::*;
use postgres::*;

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
    // Opsdeck's own tables: compile-checked.
    let row: Option<(i64, String, Value, Option<String>)> = sqlx::query!(
        "SELECT c.id, c.kind, c.spec, c.secret FROM checks c JOIN services s ON s.id = c.service_id \
         WHERE s.name = $1 AND c.kind IN ('postgres', 'mysql') \
         ORDER BY c.enabled DESC, c.id LIMIT 1",
        database,
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| format!("reading the database check: {}", describe_sqlx(&e)))?
    .map(|r| (r.id, r.kind, r.spec, r.secret));
    let Some((check_id, kind, spec, secret)) = row else {
        let exists: bool = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM services WHERE name = $1) AS "exists!""#,
            database,
        )
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
    // Sealed at rest (see `crate::secrets`): opened for the step that uses it.
    let password = crate::secrets::open_opt(
        crate::secrets::Field::CheckPassword,
        check_id,
        secret.as_deref(),
    )
    .map_err(|e| format!("the password of the {kind} check of \"{database}\": {e}"))?;
    Ok(Target {
        family,
        url,
        password,
    })
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
