//! MariaDB/MySQL sources: which databases, row counts, and the
//! `mariadb-dump` / `mariadb` commands (argv; the password only in the
//! child's environment).
//!
//! Decisions:
//! * The connection comes from the service's MariaDB/MySQL check (URL and
//!   write-only password), checked like the check's own URL.
//! * **The password goes in `MYSQL_PWD`** in the child's environment, as
//!   Postgres's in `PGPASSWORD`: never on argv, no file to create, clean
//!   up or leak on a crash; the environment of a process is readable only
//!   by its user and root, like a 0600 file. The tools run with
//!   `--no-defaults` (no `my.cnf`, no `~/.my.cnf` of the Opsdeck user) and
//!   without any `MYSQL_*` / `MARIADB_*` variable of the Opsdeck process;
//!   `--protocol=TCP` (a `localhost` URL must not turn into a socket).
//! * TLS follows the URL's `ssl-mode`: `disabled` → `--skip-ssl`,
//!   `required` → `--ssl`, `verify_ca`/`verify_identity` → `--ssl
//!   --ssl-verify-server-cert` (with `ssl-ca` when given); otherwise the
//!   tool's default.
//! * One artifact per database: `mariadb-dump --single-transaction
//!   --routines --events --triggers --hex-blob --no-tablespaces` of the
//!   database alone (no `--databases`: the dump has no `CREATE DATABASE` /
//!   `USE`, so it restores into any database — a scratch one for
//!   verification, a new one for a restore). Database names go after
//!   `--`, so a name cannot become an option. `mariadb-dump` and
//!   `mariadb` first, `mysqldump` and `mysql` when only they exist.
//! * Empty `databases`: every database but `information_schema`,
//!   `performance_schema`, `mysql` and `sys`. Users and grants are not
//!   backed up (they live in `mysql`).
//! * Row counts are exact (`COUNT(*)` of every base table), in one
//!   consistent-snapshot read-only transaction, taken just before the
//!   dump's own snapshot (a busy database may differ a little).
//! * [`create_database`] / [`drop_database`] accept only
//!   `opsdeck_verify_…` names unless told otherwise (a restore into a new
//!   database); identifiers are quoted with backticks.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use sqlx::mysql::{MySqlConnectOptions, MySqlConnection};
use sqlx::{Connection, Executor, Row};
use tokio::process::Command;

use crate::checks::probe::sql::{check_url, describe_sqlx, mysql_options, MY_PARAMS};
use crate::runbooks::dbops::{self, Family};
use crate::state::AppState;

/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// `--connect-timeout` of the `mariadb` client (seconds).
const TOOL_CONNECT_TIMEOUT: &str = "10";
/// Databases never dumped when a source names none.
const SYSTEM_DBS: &[&str] = &["information_schema", "performance_schema", "mysql", "sys"];
/// Prefix of the scratch databases of verification.
const VERIFY_PREFIX: &str = "opsdeck_verify_";

/// How to reach a MariaDB/MySQL service (from its check).
#[derive(Clone)]
pub struct MyTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The check's database, if its URL names one.
    pub database: Option<String>,
    pub password: Option<String>,
    /// The URL's `ssl-mode`, lower case.
    pub ssl_mode: Option<String>,
    pub ssl_ca: Option<String>,
    /// The URL as the check has it (for sqlx connections).
    url: String,
}

impl std::fmt::Debug for MyTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MyTarget({}@{}:{})", self.user, self.host, self.port)
    }
}

/// The service's MariaDB/MySQL check, as a target.
pub async fn lookup(state: &AppState, service: &str) -> Result<MyTarget, String> {
    let check = dbops::lookup(state, service).await?;
    if check.family != Family::Mysql {
        return Err(format!(
            "service \"{service}\" has a {} check, not a MariaDB/MySQL one",
            check.family.name()
        ));
    }
    target_from_url(&check.url, check.password)
        .map_err(|e| format!("the MariaDB check of \"{service}\": {e}"))
}

fn target_from_url(raw: &str, password: Option<String>) -> Result<MyTarget, String> {
    let url = check_url(raw, &["mysql", "mariadb"], MY_PARAMS)?;
    let host = url.host_str().unwrap_or_default();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_string();
    let user = percent_decode(url.username());
    if user.is_empty() {
        return Err("the URL names no user".into());
    }
    let database =
        Some(percent_decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty());
    let mut ssl_mode = None;
    let mut ssl_ca = None;
    for (k, v) in url.query_pairs() {
        match &*k {
            "sslmode" | "ssl-mode" => ssl_mode = Some(v.to_ascii_lowercase().replace('-', "_")),
            "sslca" | "ssl-ca" => ssl_ca = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(MyTarget {
        host,
        port: url.port().unwrap_or(3306),
        user,
        database,
        password: password.filter(|p| !p.is_empty()),
        ssl_mode,
        ssl_ca,
        url: raw.trim().to_string(),
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            let hex = std::str::from_utf8(&b[i + 1..i + 3]).ok();
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn options(t: &MyTarget, db: Option<&str>) -> Result<MySqlConnectOptions, String> {
    let mut o = mysql_options(&t.url, Some(t.password.as_deref().unwrap_or("")))?;
    if let Some(db) = db {
        o = o.database(db);
    }
    Ok(o)
}

async fn connect(t: &MyTarget, db: Option<&str>) -> Result<MySqlConnection, String> {
    let opts = options(t, db)?;
    let at = format!(
        "{}:{}{}",
        t.host,
        t.port,
        db.map(|d| format!("/{d}")).unwrap_or_default()
    );
    match tokio::time::timeout(CONNECT_TIMEOUT, MySqlConnection::connect_with(&opts)).await {
        Err(_) => Err(format!(
            "cannot connect to {at}: timed out after {} s",
            CONNECT_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(scrub(
            t,
            format!("cannot connect to {at}: {}", describe_sqlx(&e)),
        )),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Databases to dump: `wanted` (each must exist), else every database but
/// the system ones.
pub async fn databases(t: &MyTarget, wanted: &[String]) -> Result<Vec<String>, String> {
    let mut conn = connect(t, None).await?;
    // Runtime SQL: a MariaDB/MySQL server, which the compile-time checks
    // (against the Postgres catalog) cannot see.
    let rows: Result<Vec<String>, _> = sqlx::query_scalar(
        "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata ORDER BY 1",
    )
    .fetch_all(&mut conn)
    .await;
    let _ = conn.close().await;
    let all = rows.map_err(|e| scrub(t, format!("listing databases: {}", describe_sqlx(&e))))?;
    if wanted.is_empty() {
        return Ok(all
            .into_iter()
            .filter(|d| !SYSTEM_DBS.contains(&d.as_str()))
            .collect());
    }
    let mut out: Vec<String> = Vec::new();
    for w in wanted {
        if !all.contains(w) {
            return Err(format!(
                "database \"{w}\" not found on {}:{} (or the check's user cannot see it)",
                t.host, t.port
            ));
        }
        if !out.contains(w) {
            out.push(w.clone());
        }
    }
    Ok(out)
}

/// Exact row counts of every base table of `db` (by table name).
pub async fn row_counts(t: &MyTarget, db: &str) -> Result<BTreeMap<String, i64>, String> {
    let mut conn = connect(t, None).await?;
    let res = count_rows(&mut conn, db).await;
    let _ = conn.close().await;
    res.map_err(|e| scrub(t, format!("counting rows in {db}: {e}")))
}

async fn count_rows(conn: &mut MySqlConnection, db: &str) -> Result<BTreeMap<String, i64>, String> {
    let err = |e: sqlx::Error| describe_sqlx(&e);
    conn.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(err)?;
    conn.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(err)?;
    // Runtime SQL: a MariaDB/MySQL server (see `databases`).
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT CAST(table_name AS CHAR) FROM information_schema.tables
         WHERE table_schema = ? AND table_type = 'BASE TABLE' ORDER BY 1",
    )
    .bind(db)
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let mut out = BTreeMap::new();
    for table in tables {
        let sql = format!(
            "SELECT COUNT(*) FROM {}.{}",
            quote_ident(db),
            quote_ident(&table)
        );
        let row = conn
            .fetch_one(sql.as_str())
            .await
            .map_err(|e| format!("{table}: {}", describe_sqlx(&e)))?;
        let n: i64 = row
            .try_get::<i64, _>(0)
            .or_else(|_| row.try_get::<u64, _>(0).map(|v| v as i64))
            .map_err(|e| format!("{table}: {}", describe_sqlx(&e)))?;
        out.insert(table, n);
    }
    let _ = conn.execute("COMMIT").await;
    Ok(out)
}

/// `mariadb-dump` of `db` alone to stdout (see the module doc).
pub fn dump_cmd(t: &MyTarget, db: &str) -> Command {
    let mut c = tool_cmd(&["mariadb-dump", "mysqldump"], t);
    c.args([
        "--single-transaction",
        "--routines",
        "--events",
        "--triggers",
        "--hex-blob",
        "--no-tablespaces",
        "--default-character-set=utf8mb4",
    ]);
    c.arg("--").arg(db);
    c
}

/// `mariadb --database=<db>` reading SQL from stdin (a restore).
pub fn restore_cmd(t: &MyTarget, db: &str) -> Command {
    let mut c = tool_cmd(&["mariadb", "mysql"], t);
    // Only the client has it (`mariadb-dump` has no connect timeout).
    c.arg(format!("--connect-timeout={TOOL_CONNECT_TIMEOUT}"));
    c.args(["--batch", "--default-character-set=utf8mb4"]);
    c.arg(format!("--database={db}"));
    c
}

/// `mariadb-dump --version`.
pub async fn tool_version() -> String {
    let mut c = Command::new(tool_path(&["mariadb-dump", "mysqldump"]));
    c.arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(10), c.output()).await {
        Ok(Ok(o)) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if v.is_empty() {
                "mariadb-dump (version unknown)".into()
            } else {
                v
            }
        }
        _ => "mariadb-dump (version unknown)".into(),
    }
}

/// Removes the password from a message.
pub fn scrub(t: &MyTarget, msg: String) -> String {
    crate::checks::probe::sql::scrub(msg, t.password.as_deref())
}

/// Creates the empty database `name`: an `opsdeck_verify_…` scratch name,
/// or any name when `any_name` (a restore into a new database; the name
/// must not exist yet).
pub async fn create_database(t: &MyTarget, name: &str, any_name: bool) -> Result<(), String> {
    check_name(name, any_name)?;
    let mut conn = connect(t, None).await?;
    let res = conn
        .execute(
            format!(
                "CREATE DATABASE {} CHARACTER SET utf8mb4",
                quote_ident(name)
            )
            .as_str(),
        )
        .await;
    let _ = conn.close().await;
    res.map(|_| ()).map_err(|e| {
        scrub(
            t,
            format!("creating database {name}: {}", describe_sqlx(&e)),
        )
    })
}

/// Drops `name` (if it exists); same names as [`create_database`].
pub async fn drop_database(t: &MyTarget, name: &str, any_name: bool) -> Result<(), String> {
    check_name(name, any_name)?;
    let mut conn = connect(t, None).await?;
    let res = conn
        .execute(format!("DROP DATABASE IF EXISTS {}", quote_ident(name)).as_str())
        .await;
    let _ = conn.close().await;
    res.map(|_| ()).map_err(|e| {
        scrub(
            t,
            format!("dropping database {name}: {}", describe_sqlx(&e)),
        )
    })
}

/// Whether database `name` exists.
pub async fn database_exists(t: &MyTarget, name: &str) -> Result<bool, String> {
    let mut conn = connect(t, None).await?;
    // Runtime SQL: a MariaDB/MySQL server (see `databases`).
    let res: Result<Option<String>, _> = sqlx::query_scalar(
        "SELECT CAST(schema_name AS CHAR) FROM information_schema.schemata WHERE schema_name = ?",
    )
    .bind(name)
    .fetch_optional(&mut conn)
    .await;
    let _ = conn.close().await;
    res.map(|r| r.is_some()).map_err(|e| {
        scrub(
            t,
            format!("looking for database {name}: {}", describe_sqlx(&e)),
        )
    })
}

/// Scratch names `opsdeck_verify_[a-z0-9_]{1,40}`; other names (when
/// allowed) 1–64 characters without NUL, `/`, `\`, `.` or a trailing
/// space, and never a system database.
fn check_name(name: &str, any_name: bool) -> Result<(), String> {
    let scratch = name.strip_prefix(VERIFY_PREFIX).is_some_and(|rest| {
        (1..=40).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    });
    if scratch {
        return Ok(());
    }
    if any_name && valid_db_name(name) && !SYSTEM_DBS.contains(&name.to_ascii_lowercase().as_str())
    {
        return Ok(());
    }
    Err(format!(
        "refusing database name \"{}\": {}",
        name.escape_default(),
        if any_name {
            "not a valid database name"
        } else {
            "not an Opsdeck scratch database"
        }
    ))
}

/// A database name MariaDB accepts and Opsdeck can pass safely.
pub fn valid_db_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().count() <= 64
        && !name.ends_with(' ')
        && !name.starts_with('-')
        && !name
            .chars()
            .any(|c| matches!(c, '\0' | '/' | '\\' | '.') || c.is_control())
}

/// A backtick-quoted identifier.
fn quote_ident(s: &str) -> String {
    format!("`{}`", s.replace('`', "``"))
}

/// A tool with the clean environment and connection options (see the
/// module doc). `--no-defaults` must come first.
fn tool_cmd(names: &[&str], t: &MyTarget) -> Command {
    let mut c = Command::new(tool_path(names));
    for (k, _) in std::env::vars_os() {
        let k2 = k.to_string_lossy();
        if k2.starts_with("MYSQL") || k2.starts_with("MARIADB") {
            c.env_remove(&k);
        }
    }
    if let Some(p) = t.password.as_deref().filter(|p| !p.is_empty()) {
        c.env("MYSQL_PWD", p);
    }
    c.arg("--no-defaults");
    c.args([
        "--protocol=TCP".to_string(),
        format!("--host={}", t.host),
        format!("--port={}", t.port),
        format!("--user={}", t.user),
    ]);
    match t.ssl_mode.as_deref() {
        Some("disabled") | Some("disable") => {
            c.arg("--skip-ssl");
        }
        Some("required") | Some("require") => {
            c.arg("--ssl");
        }
        Some("verify_ca") | Some("verify_identity") => {
            c.args(["--ssl", "--ssl-verify-server-cert"]);
        }
        _ => {}
    }
    if let Some(ca) = &t.ssl_ca {
        c.arg(format!("--ssl-ca={ca}"));
    }
    c
}

/// The first of `names` found on PATH (or in /usr/bin), else the first.
fn tool_path(names: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for n in names {
        for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
            let p = dir.join(n);
            if p.is_file() {
                return p;
            }
        }
    }
    PathBuf::from(names[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn target() -> MyTarget {
        target_from_url(
            "mysql://backup%40x@db.internal:3307/app?ssl-mode=REQUIRED",
            Some("s3cr3t-pw".into()),
        )
        .unwrap()
    }

    fn argv(c: &Command) -> Vec<String> {
        c.as_std()
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    fn env(c: &Command, k: &str) -> Option<Option<String>> {
        c.as_std()
            .get_envs()
            .find(|(n, _)| *n == OsStr::new(k))
            .map(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
    }

    #[test]
    fn targets_come_from_check_urls() {
        let t = target();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_str(),
                t.database.as_deref()
            ),
            ("db.internal", 3307, "backup@x", Some("app"))
        );
        assert_eq!(t.ssl_mode.as_deref(), Some("required"));
        let t = target_from_url("mariadb://u@[::1]/", Some(String::new())).unwrap();
        assert_eq!((t.host.as_str(), t.port, t.database), ("::1", 3306, None));
        assert_eq!(t.password, None);
        assert!(target_from_url("mysql://u:pw@h/db", None).is_err());
        assert!(target_from_url("postgres://u@h/db", None).is_err());
    }

    #[test]
    fn commands_keep_the_password_out_of_argv() {
        let t = target();
        for c in [dump_cmd(&t, "app"), restore_cmd(&t, "opsdeck_verify_1")] {
            let args = argv(&c);
            assert!(args.iter().all(|a| !a.contains("s3cr3t")), "{args:?}");
            assert_eq!(args[0], "--no-defaults", "{args:?}");
            assert!(args.contains(&"--protocol=TCP".to_string()));
            assert!(args.contains(&"--host=db.internal".to_string()));
            assert!(args.contains(&"--port=3307".to_string()));
            assert!(args.contains(&"--user=backup@x".to_string()));
            assert!(args.contains(&"--ssl".to_string()));
            assert_eq!(env(&c, "MYSQL_PWD"), Some(Some("s3cr3t-pw".into())));
        }
        let d = argv(&dump_cmd(&t, "--all-databases"));
        assert_eq!(d[d.len() - 2..], ["--", "--all-databases"]);
        assert!(d.contains(&"--single-transaction".to_string()));
        assert!(d.contains(&"--routines".to_string()));
        assert!(d.contains(&"--events".to_string()));
        assert!(d.contains(&"--triggers".to_string()));
        assert!(!d.iter().any(|a| a == "--databases"));
        let r = argv(&restore_cmd(&t, "opsdeck_verify_1"));
        assert_eq!(r.last().unwrap(), "--database=opsdeck_verify_1");
        let mut t = target();
        t.password = None;
        assert!(matches!(
            env(&dump_cmd(&t, "x"), "MYSQL_PWD"),
            None | Some(None)
        ));
    }

    #[test]
    fn names_are_checked_and_quoted() {
        assert!(check_name("opsdeck_verify_3_1_0badcafe", false).is_ok());
        assert!(check_name("shop", false).is_err());
        assert!(check_name("shop_restored", true).is_ok());
        for bad in ["", "a/b", "a.b", "-x", "mysql", "x ", "a\0b"] {
            assert!(check_name(bad, true).is_err(), "{bad:?}");
        }
        assert_eq!(quote_ident("a`b"), "`a``b`");
        assert_eq!(percent_decode("a%20b%zz"), "a b%zz");
    }

    #[test]
    fn scrub_hides_the_password() {
        assert_eq!(scrub(&target(), "x s3cr3t-pw y".into()), "x *** y");
    }
}
