//! Postgres and MariaDB/MySQL probes.
//!
//! Each probe opens one connection (no pool), runs fixed statements without
//! binds (no `query!` macros, no string building from check settings),
//! closes it, and grades what it read. `latency_ms` is connect + `SELECT 1`.
//!
//! Postgres, metrics and grading:
//! * `connections` (client backends in `pg_stat_activity`),
//!   `max_connections`, `connections_pct` graded "higher is worse" with
//!   `connections_warning_pct` / `connections_critical_pct`;
//! * `cache_hit_pct` = Σ`blks_hit` / Σ(`blks_hit` + `blks_read`) over
//!   `pg_stat_database` (absent before any block was read), a warning below
//!   `cache_hit_warning_pct` when set;
//! * `replication_lag_s`: on a standby, the age of the last replayed
//!   transaction — 0 when everything received is replayed, so an idle
//!   primary does not look like lag; on a primary with standbys, the largest
//!   `replay_lag` of `pg_stat_replication` (absent without standbys).
//!   Graded with `replication_lag_warning_s` / `replication_lag_critical_s`.
//! * Connect or `SELECT 1` failing is critical; the statistics queries
//!   failing afterwards (a restricted role) is only a warning.
//!
//! MariaDB/MySQL: `Threads_connected` (`SHOW GLOBAL STATUS`) → metric
//! `threads_connected` graded with `threads_warning` / `threads_critical`;
//! `max_connections` as a metric when readable. These statements go over
//! the text protocol (`SHOW` is not preparable everywhere).
//!
//! Credentials and safety decisions:
//! * A URL carrying a password (userinfo or `?password=`) is refused; the
//!   password comes only from the check's write-only field.
//! * Postgres options never pick up Opsdeck's own `PGPASSWORD` or
//!   `~/.pgpass`: without a password the probe sends an empty one, so a
//!   check aimed at some host cannot leak the server's credentials.
//! * Unix sockets and URL parameters that read local files or redirect the
//!   connection (`host=`, `socket=`, `sslkey=`, `sslcert=`…) are refused;
//!   only a small allow-list of parameters is accepted.
//! * Messages are one line and never contain the password (scrubbed as a
//!   last resort).

use std::str::FromStr;
use std::time::{Duration, Instant};

use opsdeck_wire::{CheckStatus, MysqlCheck, PostgresCheck};
use reqwest::Url;
use sqlx::mysql::{MySqlConnectOptions, MySqlConnection, MySqlDatabaseError};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection, Executor, Row};

use super::net::{describe_error, describe_io, one_line, timed_out};
use super::{grade_above, Probe};

/// `application_name` the probe announces to Postgres.
const APP_NAME: &str = "opsdeck-healthcheck";

/// URL parameters a Postgres check may use.
pub(crate) const PG_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslrootcert",
    "ssl-root-cert",
    "application_name",
    "dbname",
    "user",
];

/// URL parameters a MySQL check may use.
pub(crate) const MY_PARAMS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "sslca",
    "ssl-ca",
    "charset",
    "collation",
    "timezone",
    "time-zone",
];

/// Connects to Postgres, runs `SELECT 1` and reads connection, cache and
/// replication figures.
pub async fn postgres(c: &PostgresCheck, password: Option<&str>, timeout: Duration) -> Probe {
    let opts = match pg_options(&c.url, password) {
        Ok(o) => o,
        Err(why) => return Probe::critical(scrub(why, password)),
    };
    let run = async {
        let start = Instant::now();
        let mut conn = PgConnection::connect_with(&opts)
            .await
            .map_err(|e| describe_sqlx(&e))?;
        let one: i32 = sqlx::query_scalar("SELECT 1")
            .fetch_one(&mut conn)
            .await
            .map_err(|e| describe_sqlx(&e))?;
        let latency = start.elapsed();
        if one != 1 {
            return Err(format!("SELECT 1 answered {one}"));
        }
        let stats = pg_stats(&mut conn).await.map_err(|e| describe_sqlx(&e));
        let _ = conn.close().await;
        Ok((latency, stats))
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Probe::critical(timed_out(timeout)),
        Ok(Err(why)) => Probe::critical(scrub(why, password)),
        Ok(Ok((latency, Ok(stats)))) => grade_pg(c, &stats).latency(latency),
        Ok(Ok((latency, Err(why)))) => Probe::new(
            CheckStatus::Warning,
            scrub(
                format!("connected, but cannot read statistics: {why}"),
                password,
            ),
        )
        .latency(latency),
    }
}

/// Connects to MariaDB/MySQL and grades `Threads_connected`.
pub async fn mysql(c: &MysqlCheck, password: Option<&str>, timeout: Duration) -> Probe {
    let opts = match mysql_options(&c.url, password) {
        Ok(o) => o,
        Err(why) => return Probe::critical(scrub(why, password)),
    };
    let run = async {
        let start = Instant::now();
        let mut conn = MySqlConnection::connect_with(&opts)
            .await
            .map_err(|e| describe_sqlx(&e))?;
        conn.execute("SELECT 1")
            .await
            .map_err(|e| describe_sqlx(&e))?;
        let latency = start.elapsed();
        let threads = text_value(&mut conn, "SHOW GLOBAL STATUS LIKE 'Threads_connected'", 1)
            .await
            .and_then(|v| {
                v.trim()
                    .parse::<u64>()
                    .map_err(|_| format!("unexpected Threads_connected value {v:?}"))
            });
        let max = text_value(&mut conn, "SELECT @@GLOBAL.max_connections", 0)
            .await
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok());
        let _ = conn.close().await;
        Ok::<_, String>((latency, threads, max))
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Probe::critical(timed_out(timeout)),
        Ok(Err(why)) => Probe::critical(scrub(why, password)),
        Ok(Ok((latency, Ok(threads), max))) => grade_mysql(c, threads, max).latency(latency),
        Ok(Ok((latency, Err(why), _))) => Probe::new(
            CheckStatus::Warning,
            scrub(
                format!("connected, but cannot read Threads_connected: {why}"),
                password,
            ),
        )
        .latency(latency),
    }
}

/// What the Postgres statistics queries found.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct PgStats {
    pub connections: i64,
    pub max_connections: i64,
    pub blks_hit: Option<f64>,
    pub blks_read: Option<f64>,
    /// `None`: a primary without standbys.
    pub replication_lag_s: Option<f64>,
    pub in_recovery: bool,
}

async fn pg_stats(conn: &mut PgConnection) -> Result<PgStats, sqlx::Error> {
    let (connections, max_connections, blks_hit, blks_read, in_recovery): (
        i64,
        i64,
        Option<f64>,
        Option<f64>,
        bool,
    ) = sqlx::query_as(
        "SELECT \
           (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
           current_setting('max_connections')::int8, \
           (SELECT sum(blks_hit)::float8 FROM pg_stat_database), \
           (SELECT sum(blks_read)::float8 FROM pg_stat_database), \
           pg_is_in_recovery()",
    )
    .fetch_one(&mut *conn)
    .await?;
    let replication_lag_s = if in_recovery {
        let lag: f64 = sqlx::query_scalar(
            "SELECT (CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0 \
             ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) \
             END)::float8",
        )
        .fetch_one(&mut *conn)
        .await?;
        Some(lag)
    } else {
        let (standbys, lag): (i64, f64) = sqlx::query_as(
            "SELECT count(*), COALESCE(max(EXTRACT(EPOCH FROM replay_lag)), 0)::float8 \
             FROM pg_stat_replication",
        )
        .fetch_one(&mut *conn)
        .await?;
        (standbys > 0).then_some(lag)
    };
    Ok(PgStats {
        connections,
        max_connections,
        blks_hit,
        blks_read,
        replication_lag_s,
        in_recovery,
    })
}

/// Grades Postgres statistics; the worst finding names the message.
pub(super) fn grade_pg(c: &PostgresCheck, s: &PgStats) -> Probe {
    let mut parts = Vec::new();
    let mut p = Probe::ok("");
    p = p.metric("connections", s.connections as f64);
    if s.max_connections > 0 {
        let pct = 100.0 * s.connections as f64 / s.max_connections as f64;
        let text = format!("connections {pct:.0} % of {}", s.max_connections);
        p = p
            .metric("max_connections", s.max_connections as f64)
            .metric("connections_pct", pct);
        let st = grade_above(pct, c.connections_warning_pct, c.connections_critical_pct);
        let limit = match st {
            CheckStatus::Critical => c.connections_critical_pct,
            _ => c.connections_warning_pct,
        };
        p = p.at_least(
            st,
            format!(
                "{text} ({} used, {} at {limit} %)",
                s.connections,
                st.as_str()
            ),
        );
        parts.push(text);
    }
    if let (Some(hit), Some(read)) = (s.blks_hit, s.blks_read) {
        if hit + read > 0.0 {
            let pct = 100.0 * hit / (hit + read);
            let text = format!("cache hit {pct:.1} %");
            p = p.metric("cache_hit_pct", pct);
            if let Some(w) = c.cache_hit_warning_pct {
                if pct < w {
                    p = p.at_least(
                        CheckStatus::Warning,
                        format!("{text} (warning below {w} %)"),
                    );
                }
            }
            parts.push(text);
        }
    }
    if let Some(lag) = s.replication_lag_s {
        let text = format!("replication lag {lag:.0} s");
        p = p.metric("replication_lag_s", lag);
        let st = grade_above(
            lag,
            c.replication_lag_warning_s,
            c.replication_lag_critical_s,
        );
        let limit = match st {
            CheckStatus::Critical => c.replication_lag_critical_s,
            _ => c.replication_lag_warning_s,
        };
        p = p.at_least(st, format!("{text} ({} at {limit} s)", st.as_str()));
        parts.push(text);
    }
    if s.in_recovery {
        parts.push("standby".into());
    }
    if p.status == CheckStatus::Ok {
        p.message = if parts.is_empty() {
            "connected".into()
        } else {
            parts.join(", ")
        };
    }
    p
}

/// Grades `Threads_connected`.
pub(super) fn grade_mysql(c: &MysqlCheck, threads: u64, max_connections: Option<u64>) -> Probe {
    let text = match max_connections {
        Some(m) => format!("threads connected {threads} (max_connections {m})"),
        None => format!("threads connected {threads}"),
    };
    let st = grade_above(
        threads as f64,
        c.threads_warning as f64,
        c.threads_critical as f64,
    );
    let msg = match st {
        CheckStatus::Critical => format!("{text}, critical at {}", c.threads_critical),
        CheckStatus::Warning => format!("{text}, warning at {}", c.threads_warning),
        _ => text,
    };
    let mut p = Probe::new(st, msg).metric("threads_connected", threads as f64);
    if let Some(m) = max_connections {
        p = p.metric("max_connections", m as f64);
    }
    p
}

/// Column `col` of the first row of a text-protocol statement.
async fn text_value(conn: &mut MySqlConnection, sql: &str, col: usize) -> Result<String, String> {
    let row = conn
        .fetch_optional(sql)
        .await
        .map_err(|e| describe_sqlx(&e))?;
    let row = row.ok_or_else(|| "no row returned".to_string())?;
    // Text protocol: every value is text, whatever its declared type.
    let v: Option<String> = row.try_get_unchecked(col).map_err(|e| describe_sqlx(&e))?;
    v.ok_or_else(|| "NULL returned".to_string())
}

/// Checks scheme, host, credentials and parameters of a database URL.
pub(crate) fn check_url(raw: &str, schemes: &[&str], params: &[&str]) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("invalid URL: {e}"))?;
    if !schemes.contains(&url.scheme()) {
        return Err(format!(
            "URL scheme \"{}\" refused: expected {}://",
            url.scheme(),
            schemes[0]
        ));
    }
    if url.password().is_some() {
        return Err("the URL must not contain a password (use the check's password field)".into());
    }
    let host = url.host_str().unwrap_or("");
    if host.is_empty() {
        return Err("invalid URL: no host".into());
    }
    if host.starts_with('/') || host.to_ascii_lowercase().starts_with("%2f") {
        return Err("Unix sockets are not supported: give a host name".into());
    }
    for (k, _) in url.query_pairs() {
        if k == "password" {
            return Err(
                "the URL must not contain a password (use the check's password field)".into(),
            );
        }
        if !params.contains(&&*k) {
            return Err(one_line(&format!("URL parameter \"{k}\" is not allowed")));
        }
    }
    Ok(url)
}

pub(crate) fn pg_options(raw: &str, password: Option<&str>) -> Result<PgConnectOptions, String> {
    let url = check_url(raw, &["postgres", "postgresql"], PG_PARAMS)?;
    let opts = PgConnectOptions::from_str(url.as_str())
        .map_err(|e| one_line(&format!("invalid URL: {}", describe_sqlx(&e))))?;
    // Always set: an absent password must not fall back to PGPASSWORD or
    // ~/.pgpass of the Opsdeck process.
    Ok(opts
        .password(password.unwrap_or(""))
        .application_name(APP_NAME)
        .disable_statement_logging())
}

pub(crate) fn mysql_options(
    raw: &str,
    password: Option<&str>,
) -> Result<MySqlConnectOptions, String> {
    let url = check_url(raw, &["mysql", "mariadb"], MY_PARAMS)?;
    let mut opts = MySqlConnectOptions::from_str(url.as_str())
        .map_err(|e| one_line(&format!("invalid URL: {}", describe_sqlx(&e))))?;
    if let Some(p) = password {
        opts = opts.password(p);
    }
    Ok(opts.disable_statement_logging())
}

/// One line for a database error.
pub(crate) fn describe_sqlx(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => describe_io(io),
        sqlx::Error::Database(db) => {
            let number = db
                .try_downcast_ref::<MySqlDatabaseError>()
                .map(|m| m.number());
            let code = db.code();
            match (code.as_deref(), number) {
                (Some("28P01"), _) | (_, Some(1045)) => "authentication failed".into(),
                (Some("28000"), _) => one_line(&format!("authentication failed: {}", db.message())),
                (Some("3D000"), _) | (_, Some(1049)) => "database does not exist".into(),
                (Some("53300"), _) | (_, Some(1040)) => "too many connections".into(),
                _ => one_line(db.message()),
            }
        }
        sqlx::Error::Tls(inner) => format!("TLS error: {}", describe_error(&**inner)),
        sqlx::Error::Protocol(s) => one_line(&format!("protocol error: {s}")),
        sqlx::Error::Configuration(inner) => one_line(&inner.to_string()),
        other => one_line(&other.to_string()),
    }
}

/// Last resort: a message must never show the password.
pub(crate) fn scrub(msg: String, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() && msg.contains(p) => msg.replace(p, "***"),
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn pg_check() -> PostgresCheck {
        PostgresCheck {
            url: "postgres://opsdeck@db.local:5432/app".into(),
            connections_warning_pct: 80.0,
            connections_critical_pct: 95.0,
            cache_hit_warning_pct: Some(90.0),
            replication_lag_warning_s: 30.0,
            replication_lag_critical_s: 300.0,
        }
    }

    fn stats() -> PgStats {
        PgStats {
            connections: 12,
            max_connections: 100,
            blks_hit: Some(999.0),
            blks_read: Some(1.0),
            replication_lag_s: None,
            in_recovery: false,
        }
    }

    fn metric(p: &Probe, name: &str) -> Option<f64> {
        p.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    #[test]
    fn pg_healthy_stats_are_ok_with_metrics() {
        let p = grade_pg(&pg_check(), &stats());
        assert_eq!(p.status, CheckStatus::Ok);
        assert_eq!(p.message, "connections 12 % of 100, cache hit 99.9 %");
        assert_eq!(metric(&p, "connections_pct"), Some(12.0));
        assert_eq!(metric(&p, "connections"), Some(12.0));
        assert_eq!(metric(&p, "max_connections"), Some(100.0));
        assert!((metric(&p, "cache_hit_pct").unwrap() - 99.9).abs() < 1e-9);
        assert_eq!(
            metric(&p, "replication_lag_s"),
            None,
            "no standbys, no lag metric"
        );
    }

    #[test]
    fn pg_connections_graded() {
        let c = pg_check();
        let p = grade_pg(
            &c,
            &PgStats {
                connections: 85,
                ..stats()
            },
        );
        assert_eq!(p.status, CheckStatus::Warning);
        assert_eq!(
            p.message,
            "connections 85 % of 100 (85 used, warning at 80 %)"
        );
        let p = grade_pg(
            &c,
            &PgStats {
                connections: 96,
                ..stats()
            },
        );
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(
            p.message,
            "connections 96 % of 100 (96 used, critical at 95 %)"
        );
    }

    #[test]
    fn pg_cache_hit_and_lag_graded() {
        let c = pg_check();
        let p = grade_pg(
            &c,
            &PgStats {
                blks_hit: Some(80.0),
                blks_read: Some(20.0),
                ..stats()
            },
        );
        assert_eq!(p.status, CheckStatus::Warning);
        assert_eq!(p.message, "cache hit 80.0 % (warning below 90 %)");
        let no_threshold = PostgresCheck {
            cache_hit_warning_pct: None,
            ..pg_check()
        };
        let p = grade_pg(
            &no_threshold,
            &PgStats {
                blks_hit: Some(80.0),
                blks_read: Some(20.0),
                ..stats()
            },
        );
        assert_eq!(p.status, CheckStatus::Ok);
        // Nothing read yet: no ratio at all.
        let p = grade_pg(
            &c,
            &PgStats {
                blks_hit: Some(0.0),
                blks_read: Some(0.0),
                ..stats()
            },
        );
        assert_eq!(metric(&p, "cache_hit_pct"), None);

        let p = grade_pg(
            &c,
            &PgStats {
                replication_lag_s: Some(0.0),
                ..stats()
            },
        );
        assert_eq!(p.status, CheckStatus::Ok);
        assert_eq!(metric(&p, "replication_lag_s"), Some(0.0));
        let lagging = PgStats {
            replication_lag_s: Some(400.0),
            in_recovery: true,
            ..stats()
        };
        let p = grade_pg(&c, &lagging);
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "replication lag 400 s (critical at 300 s)");
        // The worst finding wins the message.
        let p = grade_pg(
            &c,
            &PgStats {
                connections: 85,
                replication_lag_s: Some(400.0),
                ..stats()
            },
        );
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(p.message.starts_with("replication lag"), "{}", p.message);
    }

    #[test]
    fn mysql_threads_graded() {
        let c = MysqlCheck {
            url: "mysql://u@h/db".into(),
            threads_warning: 140,
            threads_critical: 180,
        };
        let p = grade_mysql(&c, 12, Some(151));
        assert_eq!(p.status, CheckStatus::Ok);
        assert_eq!(p.message, "threads connected 12 (max_connections 151)");
        assert_eq!(metric(&p, "threads_connected"), Some(12.0));
        assert_eq!(metric(&p, "max_connections"), Some(151.0));
        let p = grade_mysql(&c, 140, None);
        assert_eq!(p.status, CheckStatus::Warning);
        assert_eq!(p.message, "threads connected 140, warning at 140");
        assert_eq!(metric(&p, "max_connections"), None);
        assert_eq!(grade_mysql(&c, 200, None).status, CheckStatus::Critical);
    }

    #[test]
    fn urls_are_validated() {
        assert!(pg_options("postgres://opsdeck@db.local:5432/app", Some("s3cret")).is_ok());
        assert!(pg_options("postgresql://opsdeck@db.local/app?sslmode=prefer", None).is_ok());
        let err = pg_options("postgres://opsdeck:s3cret@db.local/app", None).unwrap_err();
        assert!(err.contains("must not contain a password"), "{err}");
        assert!(!err.contains("s3cret"));
        let err = pg_options("postgres://opsdeck@db.local/app?password=s3cret", None).unwrap_err();
        assert!(err.contains("must not contain a password"), "{err}");
        let err = pg_options(
            "postgres://opsdeck@db.local/app?host=/var/run/postgresql",
            None,
        )
        .unwrap_err();
        assert_eq!(err, "URL parameter \"host\" is not allowed");
        let err = pg_options("postgres://opsdeck@%2Fvar%2Frun%2Fpostgresql/app", None).unwrap_err();
        assert!(err.starts_with("Unix sockets are not supported"), "{err}");
        let err = pg_options("mysql://opsdeck@db.local/app", None).unwrap_err();
        assert!(err.starts_with("URL scheme \"mysql\" refused"), "{err}");
        let err = pg_options("postgres:///app", None).unwrap_err();
        assert_eq!(err, "invalid URL: no host");

        assert!(mysql_options("mysql://root@db.local:3306/app", Some("pw")).is_ok());
        assert!(mysql_options("mariadb://root@db.local/app?charset=utf8mb4", None).is_ok());
        assert!(mysql_options("mysql://root:pw@db.local/app", None).is_err());
        let err =
            mysql_options("mysql://root@db.local/app?socket=/tmp/mysql.sock", None).unwrap_err();
        assert_eq!(err, "URL parameter \"socket\" is not allowed");
        let err =
            mysql_options("mysql://root@db.local/app?sslkey=/etc/ssl/key.pem", None).unwrap_err();
        assert_eq!(err, "URL parameter \"sslkey\" is not allowed");
    }

    #[test]
    fn pg_options_carry_the_url_and_the_given_password() {
        let opts = pg_options("postgres://opsdeck@db.local:5433/app", None).unwrap();
        assert_eq!(opts.get_host(), "db.local");
        assert_eq!(opts.get_port(), 5433);
        assert_eq!(opts.get_username(), "opsdeck");
        assert_eq!(opts.get_database(), Some("app"));
        assert_eq!(opts.get_application_name(), Some(APP_NAME));
        let with = pg_options("postgres://opsdeck@db.local/app", Some("pw")).unwrap();
        assert_eq!(with.to_url_lossy().password(), Some("pw"));
    }

    #[test]
    fn messages_never_show_the_password() {
        assert_eq!(
            scrub("bad s3cret here".into(), Some("s3cret")),
            "bad *** here"
        );
        assert_eq!(scrub("fine".into(), Some("")), "fine");
        assert_eq!(scrub("fine".into(), None), "fine");
    }

    #[tokio::test]
    async fn refused_and_silent_servers_are_critical() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let c = PostgresCheck {
            url: format!("postgres://opsdeck@127.0.0.1:{port}/app"),
            ..pg_check()
        };
        let p = postgres(&c, Some("pw"), Duration::from_secs(2)).await;
        assert_eq!(
            (p.status, p.message.as_str()),
            (CheckStatus::Critical, "connection refused")
        );
        let c = MysqlCheck {
            url: format!("mysql://root@127.0.0.1:{port}/app"),
            threads_warning: 1,
            threads_critical: 2,
        };
        let p = mysql(&c, None, Duration::from_secs(2)).await;
        assert_eq!(
            (p.status, p.message.as_str()),
            (CheckStatus::Critical, "connection refused")
        );

        // Accepts, never answers the startup message / handshake.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let c = PostgresCheck {
            url: format!("postgres://opsdeck@127.0.0.1:{port}/app"),
            ..pg_check()
        };
        let p = postgres(&c, None, Duration::from_millis(300)).await;
        assert_eq!(
            (p.status, p.message.as_str()),
            (CheckStatus::Critical, "timed out after 300 ms")
        );
    }

    #[tokio::test]
    async fn pg_bad_url_is_critical_without_io() {
        let c = PostgresCheck {
            url: "postgres://u:topsecret@h/db".into(),
            ..pg_check()
        };
        let p = postgres(&c, Some("topsecret"), Duration::from_secs(1)).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(!p.message.contains("topsecret"));
        assert!(p.latency_ms.is_none());
    }
}
