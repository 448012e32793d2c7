//! Postgres sources: which databases, row counts, and the `pg_dump` /
//! `pg_dumpall` / `pg_restore` commands (argv; the password only in the
//! child's environment).
//!
//! Decisions:
//! * The connection comes from the service's Postgres check (URL and
//!   write-only password), parsed by the health-check code, so the same
//!   URLs are accepted and refused. The effective `sslmode` and the URL's
//!   `sslrootcert` are kept in the [`PgTarget`] and used both by the sqlx
//!   connections here and by the tools (`PGSSLMODE`, `PGSSLROOTCERT`).
//! * The tools get a clean libpq environment: every `PG*` variable of the
//!   Opsdeck process is removed (no `PGSERVICE`, `PGHOST`… redirecting the
//!   connection), then `PGPASSWORD` (only when there is a password),
//!   `PGPASSFILE` pointing nowhere (no `~/.pgpass` of the Opsdeck user),
//!   `PGCONNECT_TIMEOUT=10`, `PGAPPNAME=opsdeck-backup`. `--no-password`:
//!   never a prompt.
//! * Database names are passed as a quoted conninfo (`-d "dbname='…'"`):
//!   libpq expands a `-d` value that contains `=` into connection options,
//!   and a database named `host=elsewhere` must not send the password there.
//! * The tools are the newest `/usr/lib/postgresql/<major>/bin/` ones when
//!   present (`pg_dump` must not be older than the server), else from PATH.
//! * `pg_restore` runs without `--single-transaction` (`--exit-on-error`
//!   stops at the first error; the scratch database is dropped anyway).
//! * Row counts are exact (`count(*)`), in one read-only repeatable-read
//!   transaction, of every ordinary and partitioned table outside
//!   `pg_catalog`, `information_schema`, `pg_toast` and temporary schemas;
//!   identifiers are quoted by the server (`format('%I.%I')`).
//! * `create_database` / `drop_database` only accept `opsdeck_verify_…`
//!   names; the database is created from `template0` (a clean one, whatever
//!   was added to `template1`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgSslMode};
use sqlx::{Connection, Executor};
use tokio::process::Command;

use crate::checks::probe::sql::{describe_sqlx, pg_options};
use crate::runbooks::dbops::{self, Family};
use crate::state::AppState;

/// `application_name` of backup connections and tools.
const APP_NAME: &str = "opsdeck-backup";
/// Longest wait for a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// `PGCONNECT_TIMEOUT` of the tools (seconds).
const TOOL_CONNECT_TIMEOUT: &str = "10";
/// Where the Postgres packages install their versioned tools.
const PG_LIB: &str = "/usr/lib/postgresql";
/// A password file that cannot exist (a path below a device).
const NO_PASSFILE: &str = "/dev/null/opsdeck-no-pgpass";
/// Prefix of the scratch databases [`create_database`] accepts.
const VERIFY_PREFIX: &str = "opsdeck_verify_";

/// How to reach a Postgres service (from its Postgres check).
#[derive(Clone)]
pub struct PgTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// The check's database (used to list the others).
    pub database: String,
    pub password: Option<String>,
    /// libpq `sslmode` (`disable` … `verify-full`); `None`: `prefer`.
    pub ssl_mode: Option<String>,
    /// `sslrootcert` of the check's URL.
    pub ssl_root_cert: Option<String>,
}

impl std::fmt::Debug for PgTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "PgTarget({}@{}:{}/{})",
            self.user, self.host, self.port, self.database
        )
    }
}

/// The service's Postgres check, as a target.
pub async fn lookup(state: &AppState, service: &str) -> Result<PgTarget, String> {
    let check = dbops::lookup(state, service).await?;
    if check.family != Family::Postgres {
        return Err(format!(
            "service \"{service}\" has a {} check, not a Postgres one",
            check.family.name()
        ));
    }
    target_from_url(&check.url, check.password)
        .map_err(|e| format!("the Postgres check of \"{service}\": {e}"))
}

/// A target from a check's URL (validated like the check's) and password.
fn target_from_url(url: &str, password: Option<String>) -> Result<PgTarget, String> {
    let opts = pg_options(url, password.as_deref())?;
    let host = opts.get_host();
    // sqlx keeps the brackets of an IPv6 literal; libpq wants none.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
        .to_string();
    let user = opts.get_username().to_string();
    let database = opts
        .get_database()
        .map(str::to_string)
        .unwrap_or_else(|| user.clone());
    // The URL was validated above; the last occurrence wins, as in sqlx.
    let ssl_root_cert = reqwest::Url::parse(url.trim()).ok().and_then(|u| {
        u.query_pairs()
            .filter(|(k, _)| k == "sslrootcert" || k == "ssl-root-cert")
            .map(|(_, v)| v.into_owned())
            .last()
    });
    Ok(PgTarget {
        host,
        port: opts.get_port(),
        user,
        database,
        password: password.filter(|p| !p.is_empty()),
        ssl_mode: Some(ssl_mode_name(opts.get_ssl_mode()).to_string()),
        ssl_root_cert,
    })
}

fn ssl_mode_name(m: PgSslMode) -> &'static str {
    match m {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// Connection options for `db` of the target (never a password from the
/// Opsdeck process's environment or `~/.pgpass`).
fn options(t: &PgTarget, db: &str) -> Result<PgConnectOptions, String> {
    let mode = match t.ssl_mode.as_deref() {
        None => PgSslMode::Prefer,
        Some(m) => m
            .parse::<PgSslMode>()
            .map_err(|_| format!("unknown sslmode \"{m}\""))?,
    };
    let mut o = PgConnectOptions::new_without_pgpass()
        .host(&t.host)
        .port(t.port)
        .username(&t.user)
        .password(t.password.as_deref().unwrap_or(""))
        .database(db)
        .ssl_mode(mode)
        .application_name(APP_NAME);
    if let Some(c) = &t.ssl_root_cert {
        o = o.ssl_root_cert(c.as_str());
    }
    Ok(sqlx::ConnectOptions::disable_statement_logging(o))
}

async fn connect(t: &PgTarget, db: &str) -> Result<PgConnection, String> {
    let opts = options(t, db)?;
    match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&opts)).await {
        Err(_) => Err(format!(
            "cannot connect to {}:{}/{db}: timed out after {} s",
            t.host,
            t.port,
            CONNECT_TIMEOUT.as_secs()
        )),
        Ok(Err(e)) => Err(scrub(
            t,
            format!(
                "cannot connect to {}:{}/{db}: {}",
                t.host,
                t.port,
                describe_sqlx(&e)
            ),
        )),
        Ok(Ok(c)) => Ok(c),
    }
}

/// Databases to dump: `wanted`, else every database that is not a template
/// and allows connections.
///
/// Never the panel's own database `own` (see [`super::own::own_database`]):
/// named, an error; with "every database", left out.
pub async fn databases(
    t: &PgTarget,
    wanted: &[String],
    own: Option<&(i64, String)>,
) -> Result<Vec<String>, String> {
    let mut conn = connect(t, &t.database).await?;
    let cluster: Option<i64> =
        sqlx::query_scalar!(r#"SELECT system_identifier AS "id!" FROM pg_control_system()"#)
            .fetch_one(&mut conn)
            .await
            .ok();
    let own = own.filter(|(id, _)| cluster == Some(*id)).map(|(_, db)| db);
    if let Some(db) = own.filter(|db| wanted.contains(db)) {
        let _ = conn.close().await;
        return Err(format!(
            "database \"{db}\" is Opsdeck's own database: it is not backed up through the panel \
             (administrators use pg_dump)"
        ));
    }
    // Checked against the catalog database's pg_catalog, which every
    // supported server shares.
    let rows: Result<Vec<String>, _> = sqlx::query_scalar!(
        r#"SELECT datname::text AS "datname!" FROM pg_database
           WHERE NOT datistemplate AND datallowconn ORDER BY 1"#
    )
    .fetch_all(&mut conn)
    .await;
    let _ = conn.close().await;
    let mut all =
        rows.map_err(|e| scrub(t, format!("listing databases: {}", describe_sqlx(&e))))?;
    all.retain(|d| Some(d) != own);
    pick(all, wanted, t)
}

/// `wanted` (each must be listed; duplicates dropped) or everything.
fn pick(all: Vec<String>, wanted: &[String], t: &PgTarget) -> Result<Vec<String>, String> {
    if wanted.is_empty() {
        return Ok(all);
    }
    let mut out: Vec<String> = Vec::with_capacity(wanted.len());
    for w in wanted {
        if !all.contains(w) {
            return Err(format!(
                "database \"{w}\" not found on {}:{} (or it is a template or does not allow connections)",
                t.host, t.port
            ));
        }
        if !out.contains(w) {
            out.push(w.clone());
        }
    }
    Ok(out)
}

/// Exact row counts of every user table (`schema.table`) of `db`.
pub async fn row_counts(t: &PgTarget, db: &str) -> Result<BTreeMap<String, i64>, String> {
    let mut conn = connect(t, db).await?;
    let res = count_rows(&mut conn).await;
    let _ = conn.close().await;
    res.map_err(|e| scrub(t, format!("counting rows in {db}: {e}")))
}

async fn count_rows(conn: &mut PgConnection) -> Result<BTreeMap<String, i64>, String> {
    let err = |e: sqlx::Error| describe_sqlx(&e);
    conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(err)?;
    let tables = sqlx::query!(
        r#"SELECT n.nspname::text AS "schema!", c.relname::text AS "table!",
                  format('%I.%I', n.nspname, c.relname) AS "quoted!"
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relkind IN ('r', 'p')
             AND n.nspname NOT IN ('pg_catalog', 'information_schema')
             AND n.nspname NOT LIKE 'pg\_toast%'
             AND n.nspname NOT LIKE 'pg\_temp\_%'
           ORDER BY 1, 2"#
    )
    .fetch_all(&mut *conn)
    .await
    .map_err(err)?;
    let mut out = BTreeMap::new();
    for row in tables {
        let (schema, table, quoted) = (row.schema, row.table, row.quoted);
        // Dynamic: the table is an identifier. `quoted` is the server's own
        // quoting (`format('%I.%I')`) of a table that exists.
        let mut count = sqlx::QueryBuilder::<sqlx::Postgres>::new("SELECT count(*) FROM ");
        count.push(&quoted);
        let n: i64 = count
            .build_query_scalar()
            .fetch_one(&mut *conn)
            .await
            .map_err(|e| format!("{schema}.{table}: {}", describe_sqlx(&e)))?;
        out.insert(format!("{schema}.{table}"), n);
    }
    let _ = conn.execute("COMMIT").await;
    Ok(out)
}

/// `pg_dump --format=custom --compress=0` of `db` to stdout.
pub fn dump_cmd(t: &PgTarget, db: &str) -> Command {
    let mut c = tool_cmd("pg_dump", t);
    c.args(["--format=custom", "--compress=0", "--no-password"]);
    c.args(conn_args(t));
    c.arg("-d").arg(conninfo_dbname(db));
    c
}

/// `pg_dumpall --globals-only` to stdout.
pub fn globals_cmd(t: &PgTarget) -> Command {
    let mut c = tool_cmd("pg_dumpall", t);
    c.args(["--globals-only", "--no-password"]);
    c.args(conn_args(t));
    c.arg("-l").arg(conninfo_dbname(&t.database));
    c
}

/// `pg_restore --no-owner --no-privileges --exit-on-error -d <db>` reading stdin.
pub fn restore_cmd(t: &PgTarget, db: &str) -> Command {
    let mut c = tool_cmd("pg_restore", t);
    c.args([
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--no-password",
    ]);
    c.args(conn_args(t));
    c.arg("-d").arg(conninfo_dbname(db));
    c
}

/// `pg_dump --version`, e.g. `pg_dump (PostgreSQL) 15.8`.
pub async fn tool_version() -> String {
    let mut c = Command::new(tool_path("pg_dump"));
    c.arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    match tokio::time::timeout(Duration::from_secs(10), c.output()).await {
        Ok(Ok(o)) if o.status.success() => {
            let v = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if v.is_empty() {
                "pg_dump (version unknown)".into()
            } else {
                v
            }
        }
        _ => "pg_dump (version unknown)".into(),
    }
}

/// Removes the password from a message.
pub fn scrub(t: &PgTarget, msg: String) -> String {
    crate::checks::probe::sql::scrub(msg, t.password.as_deref())
}

/// Creates the empty database `name` (an identifier Opsdeck made) and drops
/// it again with [`drop_database`].
pub async fn create_database(t: &PgTarget, name: &str) -> Result<(), String> {
    check_scratch_name(name)?;
    let sql = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(name));
    let mut conn = connect(t, &t.database).await?;
    let res = conn.execute(sql.as_str()).await;
    let _ = conn.close().await;
    res.map(|_| ()).map_err(|e| {
        scrub(
            t,
            format!("creating database {name}: {}", describe_sqlx(&e)),
        )
    })
}

pub async fn drop_database(t: &PgTarget, name: &str) -> Result<(), String> {
    check_scratch_name(name)?;
    let q = quote_ident(name);
    let mut conn = connect(t, &t.database).await?;
    let mut res = conn
        .execute(format!("DROP DATABASE IF EXISTS {q} WITH (FORCE)").as_str())
        .await;
    if let Err(sqlx::Error::Database(db)) = &res {
        // Before Postgres 13: no WITH (FORCE).
        if db.code().as_deref() == Some("42601") {
            res = conn
                .execute(format!("DROP DATABASE IF EXISTS {q}").as_str())
                .await;
        }
    }
    let _ = conn.close().await;
    res.map(|_| ()).map_err(|e| {
        scrub(
            t,
            format!("dropping database {name}: {}", describe_sqlx(&e)),
        )
    })
}

/// `opsdeck_verify_[a-z0-9_]{1,40}` only.
fn check_scratch_name(name: &str) -> Result<(), String> {
    let ok = name.strip_prefix(VERIFY_PREFIX).is_some_and(|rest| {
        (1..=40).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "refusing database name \"{name}\": not an Opsdeck scratch database"
        ))
    }
}

/// An SQL identifier, always quoted.
fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A conninfo string naming only the database: libpq expands a database
/// argument containing `=` (or a URI), so the name is always quoted.
fn conninfo_dbname(db: &str) -> String {
    format!("dbname='{}'", db.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn conn_args(t: &PgTarget) -> [String; 6] {
    [
        "-h".into(),
        t.host.clone(),
        "-p".into(),
        t.port.to_string(),
        "-U".into(),
        t.user.clone(),
    ]
}

/// A tool with the clean libpq environment (see the module doc).
fn tool_cmd(name: &str, t: &PgTarget) -> Command {
    let mut c = Command::new(tool_path(name));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("PG") {
            c.env_remove(&k);
        }
    }
    c.env("PGCONNECT_TIMEOUT", TOOL_CONNECT_TIMEOUT)
        .env("PGAPPNAME", APP_NAME)
        .env("PGPASSFILE", NO_PASSFILE);
    if let Some(p) = t.password.as_deref().filter(|p| !p.is_empty()) {
        c.env("PGPASSWORD", p);
    }
    if let Some(m) = &t.ssl_mode {
        c.env("PGSSLMODE", m);
    }
    if let Some(r) = &t.ssl_root_cert {
        c.env("PGSSLROOTCERT", r);
    }
    c
}

/// The newest packaged `<tool>`, else the name (looked up in PATH).
fn tool_path(name: &str) -> PathBuf {
    newest_tool(Path::new(PG_LIB), name).unwrap_or_else(|| PathBuf::from(name))
}

fn newest_tool(lib: &Path, name: &str) -> Option<PathBuf> {
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for e in std::fs::read_dir(lib).ok()?.flatten() {
        let dir = e.file_name().to_string_lossy().into_owned();
        let Ok(ver) = dir
            .split('.')
            .map(str::parse::<u32>)
            .collect::<Result<Vec<u32>, _>>()
        else {
            continue;
        };
        let p = e.path().join("bin").join(name);
        if p.is_file() && best.as_ref().is_none_or(|(v, _)| ver > *v) {
            best = Some((ver, p));
        }
    }
    best.map(|(_, p)| p)
}

// ------------------------------------------------------------ restore
// (used by restore.rs)

/// `lock_timeout` of restores (`PGOPTIONS`): a restore that waits for a
/// lock an application holds fails after a minute instead of queueing
/// every query of that application behind it.
const RESTORE_LOCK_TIMEOUT: &str = "-c lock_timeout=60s";

/// `pg_restore --clean --if-exists --single-transaction` of a dump over the
/// existing `db` (a restore into the original): every object of the dump is
/// dropped and created again with its owner and privileges as backed up;
/// objects the dump does not know stay. One transaction: a failure leaves
/// `db` as it was.
pub fn restore_over_cmd(t: &PgTarget, db: &str) -> Command {
    let mut c = tool_cmd("pg_restore", t);
    c.args([
        "--format=custom",
        "--clean",
        "--if-exists",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
    ]);
    c.args(conn_args(t));
    c.env("PGOPTIONS", RESTORE_LOCK_TIMEOUT);
    c.arg("-d").arg(conninfo_dbname(db));
    c
}

/// `pg_restore --no-owner --no-privileges --single-transaction` into a new,
/// empty database (a copy owned by the check's user).
pub fn restore_new_cmd(t: &PgTarget, db: &str) -> Command {
    let mut c = tool_cmd("pg_restore", t);
    c.args([
        "--format=custom",
        "--no-owner",
        "--no-privileges",
        "--single-transaction",
        "--exit-on-error",
        "--no-password",
    ]);
    c.args(conn_args(t));
    c.env("PGOPTIONS", RESTORE_LOCK_TIMEOUT);
    c.arg("-d").arg(conninfo_dbname(db));
    c
}

/// A name for a database a restore creates: `[a-z_][a-z0-9_]{0,62}`, not
/// an Opsdeck scratch name.
pub fn check_new_name(name: &str) -> Result<(), String> {
    let ok = name.len() <= 63
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !ok {
        return Err(format!(
            "\"{}\": a new database's name is lower-case letters, digits and _, starting with a letter or _ (at most 63)",
            name.escape_default()
        ));
    }
    if name.starts_with(VERIFY_PREFIX) {
        return Err(format!(
            "\"{name}\": names starting with {VERIFY_PREFIX} are Opsdeck's scratch databases"
        ));
    }
    Ok(())
}

/// Whether database `name` exists on the server.
pub async fn database_exists(t: &PgTarget, name: &str) -> Result<bool, String> {
    let mut conn = connect(t, &t.database).await?;
    let res: Result<bool, _> = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1) AS "exists!""#,
        name
    )
    .fetch_one(&mut conn)
    .await;
    let _ = conn.close().await;
    res.map_err(|e| {
        scrub(
            t,
            format!("looking for database {name}: {}", describe_sqlx(&e)),
        )
    })
}

/// Creates the empty database `name` (checked by [`check_new_name`]) from
/// `template0` for a restore into a new database; fails when it exists.
pub async fn create_new_database(t: &PgTarget, name: &str) -> Result<(), String> {
    check_new_name(name)?;
    let sql = format!("CREATE DATABASE {} TEMPLATE template0", quote_ident(name));
    let mut conn = connect(t, &t.database).await?;
    let res = conn.execute(sql.as_str()).await;
    let _ = conn.close().await;
    res.map(|_| ()).map_err(|e| {
        scrub(
            t,
            format!("creating database {name}: {}", describe_sqlx(&e)),
        )
    })
}

/// Drops the database a restore created when its restore failed (empty:
/// the restore ran in one transaction), so the name is free for a retry.
pub async fn drop_new_database(t: &PgTarget, name: &str) -> Result<(), String> {
    check_new_name(name)?;
    let sql = format!("DROP DATABASE IF EXISTS {}", quote_ident(name));
    let mut conn = connect(t, &t.database).await?;
    let res = conn.execute(sql.as_str()).await;
    let _ = conn.close().await;
    res.map(|_| ()).map_err(|e| {
        scrub(
            t,
            format!("dropping database {name}: {}", describe_sqlx(&e)),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    fn target() -> PgTarget {
        PgTarget {
            host: "db.internal".into(),
            port: 5433,
            user: "backup".into(),
            database: "postgres".into(),
            password: Some("s3cr3t-pw".into()),
            ssl_mode: Some("require".into()),
            ssl_root_cert: None,
        }
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
    fn commands_keep_the_password_out_of_argv() {
        let t = target();
        for c in [
            dump_cmd(&t, "ledger"),
            globals_cmd(&t),
            restore_cmd(&t, "opsdeck_verify_1"),
        ] {
            let args = argv(&c);
            assert!(args.iter().all(|a| !a.contains("s3cr3t")), "{args:?}");
            assert!(args.contains(&"--no-password".to_string()));
            assert_eq!(env(&c, "PGPASSWORD"), Some(Some("s3cr3t-pw".into())));
            assert_eq!(env(&c, "PGCONNECT_TIMEOUT"), Some(Some("10".into())));
            assert_eq!(env(&c, "PGAPPNAME"), Some(Some("opsdeck-backup".into())));
            assert_eq!(env(&c, "PGSSLMODE"), Some(Some("require".into())));
            assert_eq!(env(&c, "PGPASSFILE"), Some(Some(NO_PASSFILE.into())));
            let prog = c.as_std().get_program().to_string_lossy().into_owned();
            assert!(prog.starts_with('/') || !prog.contains('/'), "{prog}");
        }
        assert_eq!(
            argv(&dump_cmd(&t, "ledger")),
            [
                "--format=custom",
                "--compress=0",
                "--no-password",
                "-h",
                "db.internal",
                "-p",
                "5433",
                "-U",
                "backup",
                "-d",
                "dbname='ledger'"
            ]
        );
        assert_eq!(
            argv(&globals_cmd(&t))[..3],
            ["--globals-only", "--no-password", "-h"]
        );
        assert_eq!(argv(&globals_cmd(&t))[8..], ["-l", "dbname='postgres'"]);
        let r = argv(&restore_cmd(&t, "opsdeck_verify_1"));
        assert!(r.contains(&"--exit-on-error".to_string()));
        assert!(r.contains(&"--no-owner".to_string()));
        assert_eq!(r[r.len() - 2..], ["-d", "dbname='opsdeck_verify_1'"]);

        // No password: no PGPASSWORD at all.
        let mut t = target();
        t.password = None;
        let c = dump_cmd(&t, "x");
        assert!(matches!(env(&c, "PGPASSWORD"), None | Some(None)));
    }

    #[test]
    fn database_names_cannot_become_connection_options() {
        assert_eq!(conninfo_dbname("plain"), "dbname='plain'");
        assert_eq!(
            conninfo_dbname("host=evil password=x"),
            "dbname='host=evil password=x'"
        );
        assert_eq!(conninfo_dbname(r"it's\"), r"dbname='it\'s\\'");
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("opsdeck_verify_1"), "\"opsdeck_verify_1\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }

    #[test]
    fn only_scratch_names_are_created_or_dropped() {
        assert!(check_scratch_name("opsdeck_verify_42_ledger").is_ok());
        assert!(check_scratch_name(&format!("opsdeck_verify_{}", "a".repeat(40))).is_ok());
        for bad in [
            "ledger",
            "opsdeck_verify_",
            "opsdeck_verify_A",
            "opsdeck_verify_a-b",
            "opsdeck_verify_a\"; DROP DATABASE x; --",
            "Opsdeck_verify_a",
            &format!("opsdeck_verify_{}", "a".repeat(41)),
        ] {
            assert!(check_scratch_name(bad).is_err(), "{bad}");
        }
    }

    #[tokio::test]
    async fn scratch_names_are_checked_before_connecting() {
        let t = target();
        let e = create_database(&t, "postgres").await.unwrap_err();
        assert!(e.starts_with("refusing database name"), "{e}");
        let e = drop_database(&t, "ledger").await.unwrap_err();
        assert!(e.starts_with("refusing database name"), "{e}");
    }

    #[test]
    fn scrub_hides_the_password() {
        let t = target();
        assert_eq!(
            scrub(&t, "failed for s3cr3t-pw here".into()),
            "failed for *** here"
        );
        let mut t = target();
        t.password = Some(String::new());
        assert_eq!(scrub(&t, "abc".into()), "abc");
        t.password = None;
        assert_eq!(scrub(&t, "abc".into()), "abc");
    }

    #[test]
    fn targets_come_from_check_urls() {
        let t = target_from_url(
            "postgres://backup@db.internal:5433/ledger?sslmode=verify-full&sslrootcert=/etc/ca.pem",
            Some("pw".into()),
        )
        .unwrap();
        assert_eq!(
            (
                t.host.as_str(),
                t.port,
                t.user.as_str(),
                t.database.as_str()
            ),
            ("db.internal", 5433, "backup", "ledger")
        );
        assert_eq!(t.password.as_deref(), Some("pw"));
        assert_eq!(t.ssl_mode.as_deref(), Some("verify-full"));
        assert_eq!(t.ssl_root_cert.as_deref(), Some("/etc/ca.pem"));

        let t = target_from_url("postgresql://u@[::1]/", Some(String::new())).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 5432));
        assert_eq!(t.password, None);

        assert!(target_from_url("postgres://u:pw@h/db", None).is_err());
        assert!(target_from_url("mysql://u@h/db", None).is_err());
    }

    #[test]
    fn wanted_databases_must_exist() {
        let t = target();
        let all = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(pick(all.clone(), &[], &t).unwrap(), all);
        assert_eq!(
            pick(all.clone(), &["c".into(), "a".into(), "c".into()], &t).unwrap(),
            ["c", "a"]
        );
        let e = pick(all, &["a".into(), "zz".into()], &t).unwrap_err();
        assert!(e.contains("\"zz\""), "{e}");
    }

    #[test]
    fn the_newest_packaged_tool_wins() {
        let tmp = tempfile::tempdir().unwrap();
        for v in ["9.6", "15", "16", "notaversion"] {
            let bin = tmp.path().join(v).join("bin");
            std::fs::create_dir_all(&bin).unwrap();
            std::fs::write(bin.join("pg_dump"), b"").unwrap();
        }
        std::fs::create_dir_all(tmp.path().join("17/bin")).unwrap();
        assert_eq!(
            newest_tool(tmp.path(), "pg_dump").unwrap(),
            tmp.path().join("16/bin/pg_dump")
        );
        assert_eq!(newest_tool(tmp.path(), "pg_restore"), None);
        assert_eq!(newest_tool(Path::new("/nonexistent"), "pg_dump"), None);
    }
}
