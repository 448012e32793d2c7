//! Check definitions as the domain sees them: validated at the boundary
//! (`Valid`, `validate_spec`), the checks capability's error enum, and
//! reading checks for the API (stored row + the engine's live state).

use opsdeck_wire::{Check, CheckSpec, CheckStatus, HealthSettings, HostCheck, HttpCheck, Resource};
use serde_json::json;
use sqlx::PgPool;

use super::engine::HealthHub;
use super::probe;
use super::store::{self, CheckRow};

/// Default settings of a new check.
pub const DEFAULT_INTERVAL_S: u32 = 60;
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
pub const DEFAULT_FAIL_AFTER: u32 = 2;
pub const DEFAULT_RECOVER_AFTER: u32 = 2;

/// What can go wrong with checks; `error.rs` turns it into an answer.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// Input that breaks a rule (400); the message starts with the field.
    #[error("{0}")]
    Invalid(String),
    /// What was not found, e.g. `check 7` (404).
    #[error("{0} not found")]
    NotFound(String),
    /// Another check of the same service has this name (409).
    #[error("a check named \"{0}\" already exists here")]
    NameTaken(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

// ------------------------------------------------------------------ validation
fn bad(field: &str, msg: impl std::fmt::Display) -> String {
    format!("{field}: {msg}")
}

fn check_pct(field: &str, warning: f64, critical: f64, max: f64) -> Result<(), String> {
    if !(warning.is_finite() && critical.is_finite()) || warning <= 0.0 || critical > max {
        return Err(bad(field, format!("thresholds must be within 0–{max}")));
    }
    if warning >= critical {
        return Err(bad(
            field,
            "the warning threshold must be below the critical one",
        ));
    }
    Ok(())
}

/// Thresholds of a metric check: numbers, in the order `below` says.
fn check_limits(warning: f64, critical: f64, below: bool) -> Result<(), String> {
    if !(warning.is_finite() && critical.is_finite()) {
        return Err(bad("warning", "thresholds must be numbers"));
    }
    if below && warning <= critical {
        return Err("warning/critical: with below, need warning > critical".into());
    }
    if !below && warning >= critical {
        return Err("warning/critical: need warning < critical".into());
    }
    Ok(())
}

fn check_ms(warning: u32, critical: u32) -> Result<(), String> {
    if warning == 0 || warning >= critical || critical > 120_000 {
        return Err("warning_ms/critical_ms: need 0 < warning < critical ≤ 120000".into());
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty()
        || host.len() > 253
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '_' | '[' | ']'))
    {
        return Err(bad("host", "a host name or IP address"));
    }
    Ok(())
}

/// The same URL rules the probes apply (scheme, host, no password, no Unix
/// socket, known parameters only), so a bad URL is refused when saved.
fn check_db_url(url: &str, kind: &str) -> Result<(), String> {
    use probe::sql;
    let r = match kind {
        "postgres" => sql::check_url(url, &["postgres", "postgresql"], sql::PG_PARAMS).map(drop),
        "mysql" => sql::check_url(url, &["mysql", "mariadb"], sql::MY_PARAMS).map(drop),
        _ => probe::redis::connection_info(url, None).map(drop),
    };
    r.map_err(|e| bad("url", e))
}

/// Checks a spec and normalises it (trims text).
pub fn validate_spec(spec: &mut CheckSpec) -> Result<(), String> {
    match spec {
        CheckSpec::Container(c) => {
            if c.restarts_warning == 0 || c.restarts_warning >= c.restarts_critical {
                return Err(
                    "restarts_warning/restarts_critical: need 0 < warning < critical".into(),
                );
            }
        }
        CheckSpec::Http(c) => validate_http(c)?,
        CheckSpec::Tcp(c) => {
            c.host = c.host.trim().to_owned();
            check_host(&c.host)?;
            if c.port == 0 {
                return Err(bad("port", "1–65535"));
            }
            check_ms(c.warning_ms, c.critical_ms)?;
        }
        CheckSpec::Postgres(c) => {
            c.url = c.url.trim().to_owned();
            check_db_url(&c.url, "postgres")?;
            check_pct(
                "connections",
                c.connections_warning_pct,
                c.connections_critical_pct,
                100.0,
            )?;
            if let Some(h) = c.cache_hit_warning_pct {
                if !(0.0..=100.0).contains(&h) {
                    return Err(bad("cache_hit_warning_pct", "0–100"));
                }
            }
            if !(c.replication_lag_warning_s > 0.0
                && c.replication_lag_warning_s < c.replication_lag_critical_s)
            {
                return Err("replication_lag: need 0 < warning < critical".into());
            }
        }
        CheckSpec::Mysql(c) => {
            c.url = c.url.trim().to_owned();
            check_db_url(&c.url, "mysql")?;
            if c.threads_warning == 0 || c.threads_warning >= c.threads_critical {
                return Err("threads: need 0 < warning < critical".into());
            }
        }
        CheckSpec::Redis(c) => {
            c.url = c.url.trim().to_owned();
            check_db_url(&c.url, "redis")?;
            check_pct("memory", c.memory_warning_pct, c.memory_critical_pct, 100.0)?;
        }
        CheckSpec::Tls(c) => {
            c.host = c.host.trim().to_owned();
            check_host(&c.host)?;
            if c.port == 0 {
                return Err(bad("port", "1–65535"));
            }
            if c.critical_days >= c.warning_days {
                return Err("warning_days/critical_days: need critical < warning".into());
            }
        }
        CheckSpec::Host(c) => {
            // Load per core passes 100 % on a busy host.
            let max = if c.resource == Resource::Load {
                10_000.0
            } else {
                100.0
            };
            check_pct("host", c.warning_pct, c.critical_pct, max)?;
            c.engine = c
                .engine
                .as_deref()
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .map(str::to_owned);
            if c.engine.as_ref().is_some_and(|e| e.chars().count() > 100) {
                return Err(bad("engine", "an engine name of at most 100 characters"));
            }
            match c.resource {
                Resource::Disk | Resource::Inodes => {
                    let p = c.path.get_or_insert_with(|| "/".into());
                    *p = clean_path(p).map_err(|e| {
                        let host = match &c.engine {
                            Some(_) => "the engine's host",
                            None => "the Opsdeck host",
                        };
                        bad("path", format!("{e}: an absolute path on {host}"))
                    })?;
                }
                _ => c.path = None,
            }
            if c.sustained_s > 86_400 {
                return Err(bad("sustained_s", "at most 86400"));
            }
        }
        CheckSpec::ContainerResources(c) => {
            if !matches!(c.resource, Resource::Cpu | Resource::Memory) {
                return Err(bad("resource", "cpu or memory"));
            }
            // CPU is a percent of one core: several cores exceed 100.
            let max = if c.resource == Resource::Cpu {
                10_000.0
            } else {
                100.0
            };
            check_pct("container", c.warning_pct, c.critical_pct, max)?;
            if c.sustained_s > 86_400 {
                return Err(bad("sustained_s", "at most 86400"));
            }
        }
        CheckSpec::LogPattern(c) => {
            c.pattern = c.pattern.trim().to_owned();
            if c.pattern.is_empty() && c.level.is_none() {
                return Err(bad("pattern", "give a pattern, a level, or both"));
            }
            crate::logs::matcher::Matcher::new(&c.pattern, c.regex, c.level)
                .map_err(|e| e.replacen("query:", "pattern:", 1))?;
            if !(10..=86_400).contains(&c.window_s) {
                return Err(bad("window_s", "10 s to 1 day"));
            }
            if c.warning_count == 0 || c.warning_count >= c.critical_count {
                return Err("warning_count/critical_count: need 0 < warning < critical".into());
            }
        }
        CheckSpec::Prometheus(c) => {
            c.url = c.url.trim().to_owned();
            probe::http::parse_url(&c.url).map_err(|e| bad("url", e))?;
            c.query = c.query.trim().to_owned();
            if c.query.is_empty() || c.query.chars().count() > 4000 {
                return Err(bad("query", "a PromQL expression of 1 to 4000 characters"));
            }
            if c.firing.is_some() {
                // Alerting-rule mode: the thresholds are not used.
                c.warning = 0.0;
                c.critical = 0.0;
                c.below = false;
            } else {
                check_limits(c.warning, c.critical, c.below)?;
            }
            if c.sustained_s > 86_400 {
                return Err(bad("sustained_s", "at most 86400"));
            }
        }
        CheckSpec::Scrape(c) => {
            c.url = c.url.trim().to_owned();
            probe::http::parse_url(&c.url).map_err(|e| bad("url", e))?;
            check_limits(c.warning, c.critical, c.below)?;
            if c.sustained_s > 86_400 {
                return Err(bad("sustained_s", "at most 86400"));
            }
        }
        CheckSpec::Forecast(c) => {
            match c.resource {
                Resource::Disk => {
                    let p = c.path.get_or_insert_with(|| "/".into());
                    *p = p.trim().to_owned();
                    if !p.starts_with('/') || p.contains('\0') {
                        return Err(bad("path", "a mount point of the Opsdeck host"));
                    }
                }
                Resource::Memory => c.path = None,
                _ => return Err(bad("resource", "disk or memory")),
            }
            let ok = |d: f64| d.is_finite() && (0.0..=3650.0).contains(&d);
            if !(ok(c.warning_days) && ok(c.critical_days)) {
                return Err(bad("warning_days", "days from 0 to 3650"));
            }
            if c.critical_days >= c.warning_days {
                return Err("warning_days/critical_days: need critical < warning".into());
            }
        }
        CheckSpec::Heartbeat(c) => {
            if !(5..=31 * 86_400).contains(&c.period_s) {
                return Err(bad("period_s", "5 s to 31 days"));
            }
            if c.grace_s > 7 * 86_400 {
                return Err(bad("grace_s", "at most 7 days"));
            }
        }
    }
    Ok(())
}

/// A host path as a check may name it: absolute, without `.` or `..`
/// components, NUL or control characters, at most 4096 bytes; repeated and
/// trailing slashes are dropped (`/srv//data/` is `/srv/data`).
pub fn clean_path(p: &str) -> Result<String, &'static str> {
    let p = p.trim();
    if !p.starts_with('/') {
        return Err("not absolute");
    }
    if p.len() > 4096 || p.chars().any(char::is_control) {
        return Err("too long or with control characters");
    }
    let parts: Vec<&str> = p.split('/').filter(|c| !c.is_empty()).collect();
    if parts.iter().any(|c| matches!(*c, "." | "..")) {
        return Err("with . or .. in it");
    }
    Ok(format!("/{}", parts.join("/")))
}

fn validate_http(c: &mut HttpCheck) -> Result<(), String> {
    c.url = c.url.trim().to_owned();
    let u = reqwest::Url::parse(&c.url).map_err(|e| bad("url", e))?;
    // Only http and https: never file://, data:, gopher:… (CVE-2024-56331).
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("url", "only http:// and https:// URLs can be checked"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("url", "a host is required"));
    }
    if let Some(s) = c.expect_status.iter().find(|s| !(100..=599).contains(*s)) {
        return Err(bad("expect_status", format!("{s} is not an HTTP status")));
    }
    if let Some(r) = &c.body_regex {
        if r.is_empty() {
            c.body_regex = None;
        } else {
            regex::RegexBuilder::new(r)
                .size_limit(1 << 20)
                .build()
                .map_err(|e| bad("body_regex", e))?;
        }
    }
    if c.body_contains.as_deref() == Some("") {
        c.body_contains = None;
    }
    if c.body_contains.as_ref().is_some_and(|s| s.len() > 1000) {
        return Err(bad("body_contains", "at most 1000 characters"));
    }
    if c.max_redirects > 10 {
        return Err(bad("max_redirects", "at most 10"));
    }
    check_ms(c.warning_ms, c.critical_ms)
}

/// The SSRF guard at save time (`net::guard`, the checks' policy): an HTTP
/// check's host may not be a link-local or cloud metadata address or name
/// unless `allow_link_local` (`OPSDECK_CHECKS_ALLOW_LINK_LOCAL`). Host names
/// are judged by their DNS answers when probed; loopback and private
/// ranges are allowed.
pub(crate) fn validate_target(spec: &CheckSpec, allow_link_local: bool) -> Result<(), CheckError> {
    let raw = match spec {
        CheckSpec::Http(c) => &c.url,
        CheckSpec::Prometheus(c) => &c.url,
        CheckSpec::Scrape(c) => &c.url,
        _ => return Ok(()),
    };
    let Ok(url) = reqwest::Url::parse(raw) else {
        return Ok(());
    };
    crate::net::guard::check_target(&url, crate::net::guard::Policy::checks(allow_link_local))
        .map_err(|r| CheckError::Invalid(format!("url: {r}")))
}

/// A host check's engine must be registered (`engine: no Docker engine
/// named "x"`, a 400 naming the field).
pub(crate) async fn validate_engine(
    conn: &mut sqlx::PgConnection,
    spec: &CheckSpec,
) -> Result<(), CheckError> {
    let CheckSpec::Host(HostCheck {
        engine: Some(name), ..
    }) = spec
    else {
        return Ok(());
    };
    match crate::inventory::store::engine_id(conn, Some(name.as_str())).await {
        Ok(_) => Ok(()),
        Err(crate::inventory::InventoryError::Invalid(_)) => Err(CheckError::Invalid(format!(
            "engine: no Docker engine named \"{}\"",
            name.escape_default()
        ))),
        Err(crate::inventory::InventoryError::Database(e)) => Err(e.into()),
        Err(e) => Err(CheckError::Internal(e.into())),
    }
}

/// A complete, valid definition (after merging an update).
pub(crate) struct Valid {
    pub(crate) service_id: Option<i64>,
    pub(crate) name: String,
    pub(crate) spec: CheckSpec,
    pub(crate) interval_s: u32,
    pub(crate) timeout_ms: u32,
    pub(crate) fail_after: u32,
    pub(crate) recover_after: u32,
    pub(crate) enabled: bool,
}

pub(crate) fn validate_def(v: &mut Valid) -> Result<(), CheckError> {
    let invalid = |m: &str| Err(CheckError::Invalid(m.to_owned()));
    v.name = v.name.trim().to_owned();
    if v.name.is_empty() || v.name.chars().count() > 100 || v.name.chars().any(char::is_control) {
        return invalid("name: 1–100 characters, no control characters");
    }
    validate_spec(&mut v.spec).map_err(CheckError::Invalid)?;
    if !(5..=86_400).contains(&v.interval_s) {
        return invalid("interval_s: 5 s to 1 day");
    }
    if !(100..=120_000).contains(&v.timeout_ms) {
        return invalid("timeout_ms: 100 ms to 120 s");
    }
    if v.timeout_ms as u64 > v.interval_s as u64 * 1000 {
        return invalid(
            "timeout_ms: must not exceed the interval (probes of one check never overlap)",
        );
    }
    for (f, n) in [
        ("fail_after", v.fail_after),
        ("recover_after", v.recover_after),
    ] {
        if !(1..=20).contains(&n) {
            return Err(CheckError::Invalid(format!("{f}: 1–20")));
        }
    }
    if let CheckSpec::Scrape(c) = &v.spec {
        probe::scrape::check_fields(c, v.interval_s)
            .map_err(|(f, e)| CheckError::Invalid(format!("{f}: {e}")))?;
    }
    let needs_service = matches!(
        v.spec,
        CheckSpec::Container(_) | CheckSpec::ContainerResources(_) | CheckSpec::LogPattern(_)
    );
    if needs_service && v.service_id.is_none() {
        return Err(CheckError::Invalid(format!(
            "service_id: a {} check belongs to a service",
            v.spec.kind()
        )));
    }
    if let CheckSpec::Forecast(f) = &v.spec {
        if f.resource == Resource::Disk && v.service_id.is_some() {
            return Err(CheckError::Invalid(
                "resource: a disk forecast is a host check (the mounts of the Opsdeck host); a service's forecast is of memory".into(),
            ));
        }
    }
    Ok(())
}

/// Retention within bounds and the report time as `HH:MM`.
pub(crate) fn validate_settings(s: &HealthSettings) -> Result<(), CheckError> {
    if !(1..=31).contains(&s.minute_retention_days) {
        return Err(CheckError::Invalid("minute_retention_days: 1–31".into()));
    }
    for (f, v) in [
        ("hour_retention_days", s.hour_retention_days),
        ("event_retention_days", s.event_retention_days),
    ] {
        if !(7..=3660).contains(&v) {
            return Err(CheckError::Invalid(format!("{f}: 7–3660")));
        }
    }
    if chrono::NaiveTime::parse_from_str(&s.report_time, "%H:%M").is_err()
        || s.report_time.len() != 5
    {
        return Err(CheckError::Invalid("report_time: HH:MM (24 h, UTC)".into()));
    }
    Ok(())
}

/// A service's public name: trimmed, empty → none, at most 80 characters.
pub(crate) fn public_name(name: Option<String>) -> Result<Option<String>, CheckError> {
    let name = name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 80 || n.chars().any(char::is_control))
    {
        return Err(CheckError::Invalid(
            "public_name: at most 80 characters".into(),
        ));
    }
    Ok(name)
}

/// A history range: (hourly rollups?, days, resolution).
pub(crate) fn history_range(range: Option<&str>) -> Result<(bool, i32, &'static str), CheckError> {
    match range.unwrap_or("day") {
        "day" => Ok((false, 1, "minute")),
        "week" => Ok((true, 7, "hour")),
        "month" => Ok((true, 30, "hour")),
        other => Err(CheckError::Invalid(format!(
            "range: day, week or month, not {other:?}"
        ))),
    }
}

pub(crate) fn audit_params(v: &Valid) -> serde_json::Value {
    json!({
        "service_id": v.service_id, "name": v.name, "kind": v.spec.kind(), "spec": v.spec,
        "interval_s": v.interval_s, "timeout_ms": v.timeout_ms,
        "fail_after": v.fail_after, "recover_after": v.recover_after, "enabled": v.enabled,
    })
}

/// Where a database check's stored password goes: scheme (TLS for Redis),
/// user, host, port and every URL parameter (`sslmode`, CA files, …).
/// Only the path (the database) is left out: changing it keeps the same
/// server. `None` for kinds without a password.
///
/// A change of this identity drops the stored password unless the same
/// request gives it again (issue 19, finding 1): a stored credential never
/// follows a check to another host.
pub(crate) fn credential_target(spec: &CheckSpec) -> Option<String> {
    let url = match spec {
        CheckSpec::Postgres(c) => &c.url,
        CheckSpec::Mysql(c) => &c.url,
        CheckSpec::Redis(c) => &c.url,
        CheckSpec::Prometheus(c) => &c.url,
        CheckSpec::Scrape(c) => &c.url,
        _ => return None,
    };
    let Ok(u) = reqwest::Url::parse(url.trim()) else {
        return Some(url.trim().to_owned());
    };
    let mut params: Vec<(String, String)> = u
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    Some(format!(
        "{}|{}|{}|{:?}|{:?}",
        u.scheme(),
        u.username(),
        u.host_str().unwrap_or_default().to_ascii_lowercase(),
        u.port(),
        params
    ))
}

pub(crate) fn clean_password(p: Option<String>) -> Option<Option<String>> {
    p.map(|p| if p.is_empty() { None } else { Some(p) })
}

impl Valid {
    /// The columns the store writes.
    pub(crate) fn columns(&self) -> Result<store::CheckWrite<'_>, CheckError> {
        Ok(store::CheckWrite {
            name: &self.name,
            spec: serde_json::to_value(&self.spec).map_err(anyhow::Error::from)?,
            interval_s: self.interval_s as i32,
            timeout_ms: self.timeout_ms as i32,
            fail_after: self.fail_after as i32,
            recover_after: self.recover_after as i32,
            enabled: self.enabled,
        })
    }
}

// ------------------------------------------------------------------ reading

fn to_wire(hub: &HealthHub, r: CheckRow, show_token: bool) -> Option<Check> {
    let spec: CheckSpec = serde_json::from_value(r.spec).ok()?;
    let mut c = Check {
        id: r.id,
        service_id: r.service_id,
        service: r.service,
        name: r.name,
        spec,
        interval_s: r.interval_s as u32,
        timeout_ms: r.timeout_ms as u32,
        fail_after: r.fail_after as u32,
        recover_after: r.recover_after as u32,
        enabled: r.enabled,
        has_password: r.has_secret,
        // The token is stored sealed; opened only for those who may see it.
        heartbeat_path: r
            .token
            .filter(|_| show_token)
            .and_then(|t| {
                crate::secrets::open(crate::secrets::Field::HeartbeatToken, r.id, &t).ok()
            })
            .map(|t| format!("/api/v1/heartbeat/{t}")),
        status: CheckStatus::parse(&r.status).unwrap_or_default(),
        status_since: r.status_since,
        last: r.last_result.and_then(|v| serde_json::from_value(v).ok()),
        created_at: r.created_at,
    };
    hub.fill(&mut c);
    Some(c)
}

/// Every check (of one service, or host checks with `service_id=0`).
pub async fn load(
    pool: &PgPool,
    hub: &HealthHub,
    service_id: Option<i64>,
    show_token: bool,
) -> sqlx::Result<Vec<Check>> {
    Ok(store::list(pool, service_id)
        .await?
        .into_iter()
        .filter_map(|r| to_wire(hub, r, show_token))
        .collect())
}

/// One check, with the engine's live state.
pub async fn load_one(
    pool: &PgPool,
    hub: &HealthHub,
    id: i64,
    show_token: bool,
) -> Result<Check, CheckError> {
    let row = store::get(pool, id)
        .await?
        .ok_or_else(|| CheckError::NotFound(format!("check {id}")))?;
    to_wire(hub, row, show_token)
        .ok_or_else(|| CheckError::Internal(anyhow::anyhow!("stored check {id} does not parse")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsdeck_wire::{MysqlCheck, PostgresCheck, RedisCheck};

    fn http(url: &str) -> CheckSpec {
        serde_json::from_value(json!({"kind": "http", "url": url})).unwrap()
    }

    #[test]
    fn http_defaults_come_from_the_handbook() {
        let CheckSpec::Http(h) = http("https://git.example.com/api/healthz") else {
            unreachable!()
        };
        assert_eq!((h.warning_ms, h.critical_ms), (1000, 3000));
        assert!(h.tls_verify);
        assert_eq!(h.max_redirects, 0);
    }

    #[test]
    fn only_http_and_https_urls() {
        for ok in ["http://127.0.0.1:8080/health", " https://example.com "] {
            let mut s = http(ok);
            assert!(validate_spec(&mut s).is_ok(), "{ok}");
        }
        for bad_url in [
            "file:///etc/passwd",
            "ftp://x/",
            "data:text/plain,hi",
            "gopher://h/",
            "http://",
        ] {
            let mut s = http(bad_url);
            let e = validate_spec(&mut s).unwrap_err();
            assert!(e.starts_with("url:"), "{bad_url}: {e}");
        }
    }

    #[test]
    fn database_urls_follow_the_probes_rules() {
        let pg = |url: &str| {
            CheckSpec::Postgres(PostgresCheck {
                url: url.into(),
                connections_warning_pct: 80.0,
                connections_critical_pct: 95.0,
                cache_hit_warning_pct: None,
                replication_lag_warning_s: 30.0,
                replication_lag_critical_s: 300.0,
            })
        };
        assert!(validate_spec(&mut pg("postgres://app@db:5432/app")).is_ok());
        for bad_url in [
            "postgres://app:pw@db/app",
            "postgres://app@db/app?password=pw",
            "postgres://app@db/app?host=/run/postgresql",
            "mysql://app@db/app",
        ] {
            assert!(validate_spec(&mut pg(bad_url)).is_err(), "{bad_url}");
        }
        let mut my = CheckSpec::Mysql(MysqlCheck {
            url: "mysql://root@127.0.0.1:3306/".into(),
            threads_warning: 180,
            threads_critical: 140,
        });
        assert!(validate_spec(&mut my).unwrap_err().starts_with("threads"));
        let mut rd = CheckSpec::Redis(RedisCheck {
            url: "rediss://cache:6379/0".into(),
            memory_warning_pct: 80.0,
            memory_critical_pct: 95.0,
            memory_warning_mb: None,
        });
        assert!(
            validate_spec(&mut rd).is_err(),
            "TLS Redis is not supported"
        );
    }

    #[test]
    fn thresholds_must_be_ordered_and_in_range() {
        let host = |w: f64, c: f64| {
            CheckSpec::Host(HostCheck {
                resource: Resource::Disk,
                path: None,
                engine: None,
                warning_pct: w,
                critical_pct: c,
                sustained_s: 0,
            })
        };
        let mut ok = host(80.0, 90.0);
        assert!(validate_spec(&mut ok).is_ok());
        let CheckSpec::Host(h) = ok else {
            unreachable!()
        };
        assert_eq!(h.path.as_deref(), Some("/"), "disk defaults to /");
        assert!(validate_spec(&mut host(90.0, 80.0)).is_err());
        assert!(validate_spec(&mut host(80.0, 101.0)).is_err());
        assert!(validate_spec(&mut host(f64::NAN, 90.0)).is_err());
    }

    #[test]
    fn host_paths_are_absolute_and_clean() {
        assert_eq!(clean_path("/").unwrap(), "/");
        assert_eq!(clean_path(" /srv//data/ ").unwrap(), "/srv/data");
        for bad_path in ["etc", "", "/srv/../etc", "/srv/./x", "/a\0b", "/a\nb"] {
            assert!(clean_path(bad_path).is_err(), "{bad_path:?}");
        }
        let mut spec = CheckSpec::Host(HostCheck {
            resource: Resource::Inodes,
            path: Some("/var/lib/docker/".into()),
            engine: Some(" db01 ".into()),
            warning_pct: 80.0,
            critical_pct: 90.0,
            sustained_s: 0,
        });
        validate_spec(&mut spec).unwrap();
        let CheckSpec::Host(h) = &spec else {
            unreachable!()
        };
        assert_eq!(h.path.as_deref(), Some("/var/lib/docker"));
        assert_eq!(h.engine.as_deref(), Some("db01"));
        let mut spec = CheckSpec::Host(HostCheck {
            path: Some("/srv/../etc".into()),
            ..h.clone()
        });
        let e = validate_spec(&mut spec).unwrap_err();
        assert!(e.starts_with("path: with . or .."), "{e}");
        assert!(e.ends_with("the engine's host"), "{e}");
        let mut spec = CheckSpec::Host(HostCheck {
            resource: Resource::Load,
            path: Some("/x".into()),
            engine: Some("".into()),
            ..h.clone()
        });
        validate_spec(&mut spec).unwrap();
        assert_eq!(
            spec,
            CheckSpec::Host(HostCheck {
                resource: Resource::Load,
                path: None,
                engine: None,
                ..h.clone()
            })
        );
    }

    #[test]
    fn timeouts_never_exceed_the_interval() {
        let mut v = Valid {
            service_id: None,
            name: "web".into(),
            spec: http("http://127.0.0.1/"),
            interval_s: 5,
            timeout_ms: 5001,
            fail_after: 2,
            recover_after: 2,
            enabled: true,
        };
        assert!(validate_def(&mut v).is_err());
        v.timeout_ms = 5000;
        assert!(validate_def(&mut v).is_ok());
        v.interval_s = 4;
        assert!(validate_def(&mut v).is_err());
        v.interval_s = 5;
        v.spec = serde_json::from_value(json!({"kind": "container"})).unwrap();
        assert!(
            validate_def(&mut v).is_err(),
            "container checks need a service"
        );
    }
}
