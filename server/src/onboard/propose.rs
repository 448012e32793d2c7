//! The checks a compose import proposes for its services (pure functions;
//! `onboard` feeds them the loaded compose file and what is stored).
//!
//! Rules (also in `docs/import/checks.md`):
//! - **container** for every service (`<service>/container`): running,
//!   HEALTHCHECK status, restart loops, with the handbook's thresholds.
//! - **http** (`<service>/http/<port>`): when the compose healthcheck's test
//!   names an `http(s)://` URL (curl or wget, `CMD` argv or `CMD-SHELL`),
//!   the URL's path on the host port published from the URL's container
//!   port; a healthcheck URL on a port that is not published proposes
//!   nothing (Opsdeck cannot reach it). Without such a URL: every published
//!   TCP port whose container port is a well-known web port
//!   ([`WEB_PORTS`]), path `/`. Never for database images.
//! - **tls** (`<service>/tls/<port>`): every published port whose container
//!   port is 443 or 8443, or that the healthcheck reaches over `https`.
//!   Its HTTP check does not verify the certificate (the check dials an
//!   address the certificate cannot name); the TLS check watches expiry.
//! - **postgres**, **mysql**, **redis** (`<service>/<kind>`): when the
//!   image's repository (the last path part of the image name, without
//!   registry, tag or digest) is a known one ([`POSTGRES`], [`MYSQL`],
//!   [`REDIS`]) and the server's default port (5432, 3306, 6379) is
//!   published (or, failing that, the service publishes exactly one port:
//!   a server moved to another port, as the demo's stand-ins are). User and database come from `db_env` (`POSTGRES_USER`,
//!   `POSTGRES_DB`, `MARIADB_USER`/`MYSQL_USER`,
//!   `MARIADB_DATABASE`/`MYSQL_DATABASE`), else the image's defaults
//!   (`postgres`, `root`). Postgres and MySQL checks need a password
//!   (`needs_password`); it is never read from the compose environment.
//!
//! Where a check dials: the published port's `host_ip` when it is a
//! specific address, else the engine's host (the caller passes it: the host
//! of a `tcp://` engine endpoint, `127.0.0.1` for a local socket).
//!
//! Selection ([`select`]): a check the service already has (same kind) is
//! never selected (re-imports do not duplicate); otherwise the request's
//! list decides, or, without one, every proposal that needs no password
//! plus those given one.

use std::collections::{BTreeMap, BTreeSet};

use opsdeck_wire::{CheckSpec, ProposedCheck};
use serde_json::json;

use crate::inventory::compose::ComposeService;
use crate::inventory::plan::image_repository;

/// Container ports that serve HTTP in most images (`https` for 443/8443).
pub const WEB_PORTS: [u16; 7] = [80, 443, 3000, 8000, 8080, 8443, 9000];
/// Image repositories of PostgreSQL servers.
pub const POSTGRES: [&str; 5] = [
    "postgres",
    "postgresql",
    "postgis",
    "timescaledb",
    "timescaledb-ha",
];
/// Image repositories of MySQL and MariaDB servers.
pub const MYSQL: [&str; 4] = ["mysql", "mariadb", "mysql-server", "percona-server"];
/// Image repositories of Redis (and protocol-compatible) servers.
pub const REDIS: [&str; 3] = ["redis", "valkey", "redis-stack-server"];

/// A published port of a service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The host address when it is a specific one (not `0.0.0.0`/`::`).
    pub host_ip: Option<String>,
    pub published: u16,
    pub target: u16,
}

/// A normalised port string (see `ComposeService::ports`) as a published
/// TCP port; `None` for unpublished ports, UDP/SCTP, ranges and random host
/// ports.
pub fn published(port: &str) -> Option<Published> {
    let (spec, proto) = match port.rsplit_once('/') {
        Some((s, p)) => (s, p),
        None => (port, "tcp"),
    };
    if !proto.eq_ignore_ascii_case("tcp") {
        return None;
    }
    let (ip, rest) = if let Some(r) = spec.strip_prefix('[') {
        let (ip, rest) = r.split_once(']')?;
        (Some(ip.to_owned()), rest.strip_prefix(':')?)
    } else {
        let parts: Vec<&str> = spec.split(':').collect();
        match parts.len() {
            2 => (None, spec),
            3 => (Some(parts[0].to_owned()), &spec[parts[0].len() + 1..]),
            _ => return None,
        }
    };
    let (p, t) = rest.split_once(':')?;
    let published = p.parse().ok().filter(|p| *p != 0)?;
    let target = t.parse().ok().filter(|t| *t != 0)?;
    let host_ip = ip.filter(|ip| !matches!(ip.as_str(), "" | "0.0.0.0" | "::"));
    Some(Published {
        host_ip,
        published,
        target,
    })
}

/// The host of an engine endpoint, where published ports are reached:
/// `tcp://10.0.0.5:2376` → `10.0.0.5`; a Unix socket or nothing →
/// `127.0.0.1`.
pub fn engine_host(endpoint: Option<&str>) -> String {
    let local = || "127.0.0.1".to_owned();
    let Some(e) = endpoint.map(str::trim) else {
        return local();
    };
    let Some((scheme, _)) = e.split_once("://") else {
        return local();
    };
    if !matches!(scheme, "tcp" | "http" | "https") {
        return local();
    }
    let url = format!("http://{}", &e[scheme.len() + 3..]);
    reqwest::Url::parse(&url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.trim_matches(['[', ']']).to_owned()))
        .filter(|h| !h.is_empty())
        .unwrap_or_else(local)
}

/// An `http(s)://` URL named by a healthcheck test: the first token that
/// starts with the scheme, in the argv or in a `CMD-SHELL` string.
pub fn healthcheck_url(test: &[String]) -> Option<reqwest::Url> {
    test.iter()
        .skip(1)
        .flat_map(|arg| arg.split(|c: char| c.is_whitespace() || c == '"' || c == '\''))
        .filter(|t| t.starts_with("http://") || t.starts_with("https://"))
        .find_map(|t| reqwest::Url::parse(t).ok())
}

fn spec(v: serde_json::Value) -> CheckSpec {
    serde_json::from_value(v).expect("a proposed check spec is complete")
}

/// `host` as it goes in a URL (IPv6 bracketed).
fn url_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// Builds a database URL with user and database percent-encoded.
fn db_url(scheme: &str, host: &str, port: u16, user: &str, db: Option<&str>) -> String {
    let base = format!("{scheme}://{}:{port}/", url_host(host));
    match reqwest::Url::parse(&base) {
        Ok(mut u) => {
            let _ = u.set_username(user);
            if let Some(db) = db {
                u.path_segments_mut()
                    .map(|mut p| {
                        p.pop_if_empty().push(db);
                    })
                    .ok();
            }
            u.to_string()
        }
        Err(_) => base,
    }
}

/// The proposed checks of every service, in service order (container
/// first, then HTTP, TLS and database checks). `host`: where published
/// ports are reached (see [`engine_host`]); `existing`: the
/// `(service, kind)` pairs that already have a check.
pub fn propose(
    services: &BTreeMap<String, ComposeService>,
    host: &str,
    existing: &BTreeSet<(String, String)>,
) -> Vec<ProposedCheck> {
    let mut out = Vec::new();
    for (name, svc) in services {
        let mut add = |key: String, check: String, spec: CheckSpec, reason: String, pw: bool| {
            let exists = existing.contains(&(name.clone(), spec.kind().to_owned()));
            out.push(ProposedCheck {
                key,
                service: name.clone(),
                name: check,
                spec,
                reason,
                needs_password: pw,
                selected: false,
                exists,
            });
        };
        add(
            format!("{name}/container"),
            "Container".into(),
            spec(json!({"kind": "container"})),
            "every service: its containers run, pass their HEALTHCHECK and do not restart in a loop"
                .into(),
            false,
        );
        let ports: Vec<Published> = svc.ports.iter().filter_map(|p| published(p)).collect();
        let dial = |p: &Published| p.host_ip.clone().unwrap_or_else(|| host.to_owned());
        let repo = svc
            .image
            .as_deref()
            .map(image_repository)
            .unwrap_or_default();
        let database = POSTGRES.contains(&repo.as_str())
            || MYSQL.contains(&repo.as_str())
            || REDIS.contains(&repo.as_str());

        // HTTP and TLS.
        let mut tls: Vec<(Published, String)> = Vec::new();
        if !database {
            let hc = svc.healthcheck.as_deref().and_then(healthcheck_url);
            let mut web: Vec<(Published, bool, String, String)> = Vec::new();
            if let Some(u) = &hc {
                let https = u.scheme() == "https";
                let port = u.port_or_known_default().unwrap_or(80);
                if let Some(p) = ports.iter().find(|p| p.target == port) {
                    let mut path = u.path().to_owned();
                    if let Some(q) = u.query() {
                        path = format!("{path}?{q}");
                    }
                    let reason = format!(
                        "the compose healthcheck requests {}; container port {port} is published on {}",
                        u.as_str(),
                        p.published
                    );
                    web.push((p.clone(), https, path, reason));
                }
            } else {
                for p in ports.iter().filter(|p| WEB_PORTS.contains(&p.target)) {
                    let https = matches!(p.target, 443 | 8443);
                    let reason = format!(
                        "published port {} maps container port {}, a web port",
                        p.published, p.target
                    );
                    web.push((p.clone(), https, "/".into(), reason));
                }
            }
            for (p, https, path, reason) in web {
                let scheme = if https { "https" } else { "http" };
                let url = format!("{scheme}://{}:{}{path}", url_host(&dial(&p)), p.published);
                let mut s = json!({"kind": "http", "url": url});
                if https {
                    s["tls_verify"] = json!(false);
                }
                add(
                    format!("{name}/http/{}", p.published),
                    format!("HTTP :{}{path}", p.published),
                    spec(s),
                    reason,
                    false,
                );
                if https {
                    let reason = format!("published port {} serves HTTPS", p.published);
                    tls.push((p, reason));
                }
            }
            for p in ports.iter().filter(|p| matches!(p.target, 443 | 8443)) {
                if !tls.iter().any(|(t, _)| t.published == p.published) {
                    tls.push((
                        p.clone(),
                        format!(
                            "published port {} maps container port {}",
                            p.published, p.target
                        ),
                    ));
                }
            }
        }
        for (p, reason) in tls {
            add(
                format!("{name}/tls/{}", p.published),
                format!("TLS certificate :{}", p.published),
                spec(json!({"kind": "tls", "host": dial(&p), "port": p.published})),
                reason,
                false,
            );
        }

        // Databases.
        let env = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| svc.db_env.get(*k).filter(|v| !v.trim().is_empty()).cloned())
        };
        // The port mapping the server's default port, else the only one.
        let db = |default: u16| {
            ports
                .iter()
                .find(|p| p.target == default)
                .or(if ports.len() == 1 {
                    ports.first()
                } else {
                    None
                })
        };
        if POSTGRES.contains(&repo.as_str()) {
            if let Some(p) = db(5432) {
                let user = env(&["POSTGRES_USER"]).unwrap_or_else(|| "postgres".into());
                let dbname = env(&["POSTGRES_DB"]).unwrap_or_else(|| user.clone());
                let url = db_url("postgres", &dial(p), p.published, &user, Some(&dbname));
                add(
                    format!("{name}/postgres"),
                    "PostgreSQL".into(),
                    spec(json!({"kind": "postgres", "url": url})),
                    format!("image {repo}: PostgreSQL published on {}", p.published),
                    true,
                );
            }
        } else if MYSQL.contains(&repo.as_str()) {
            if let Some(p) = db(3306) {
                let user = env(&["MARIADB_USER", "MYSQL_USER"]).unwrap_or_else(|| "root".into());
                let dbname = env(&["MARIADB_DATABASE", "MYSQL_DATABASE"]);
                let url = db_url("mysql", &dial(p), p.published, &user, dbname.as_deref());
                add(
                    format!("{name}/mysql"),
                    "MariaDB/MySQL".into(),
                    spec(json!({"kind": "mysql", "url": url})),
                    format!("image {repo}: MariaDB/MySQL published on {}", p.published),
                    true,
                );
            }
        } else if REDIS.contains(&repo.as_str()) {
            if let Some(p) = db(6379) {
                let url = format!("redis://{}:{}", url_host(&dial(p)), p.published);
                add(
                    format!("{name}/redis"),
                    "Redis".into(),
                    spec(json!({"kind": "redis", "url": url})),
                    format!("image {repo}: Redis published on {}", p.published),
                    false,
                );
            }
        }
    }
    out
}

/// Marks the proposals to create. `wanted`: the request's keys (`None`:
/// the default rule); `passwords`: by key. Unknown keys in either, or a
/// password for a check that takes none, are refused with the field.
pub fn select(
    checks: &mut [ProposedCheck],
    wanted: Option<&[String]>,
    passwords: &BTreeMap<String, String>,
) -> Result<(), String> {
    let keys: BTreeSet<&str> = checks.iter().map(|c| c.key.as_str()).collect();
    if let Some(w) = wanted {
        if let Some(k) = w.iter().find(|k| !keys.contains(k.as_str())) {
            return Err(format!("checks: no proposed check \"{k}\""));
        }
    }
    for k in passwords.keys() {
        match checks.iter().find(|c| &c.key == k) {
            None => return Err(format!("check_passwords.{k}: no proposed check \"{k}\"")),
            Some(c) if !c.needs_password => {
                return Err(format!("check_passwords.{k}: this check takes no password"))
            }
            Some(_) => {}
        }
    }
    for c in checks.iter_mut() {
        let given = passwords.get(&c.key).is_some_and(|p| !p.is_empty());
        c.selected = !c.exists
            && match wanted {
                Some(w) => w.contains(&c.key),
                None => !c.needs_password || given,
            };
    }
    Ok(())
}

/// Unticks the proposals named by `keys` (the CLI's `--skip-check`);
/// an unknown key is refused.
pub fn untick(checks: &mut [ProposedCheck], keys: &[String]) -> Result<(), String> {
    for k in keys {
        let c = checks
            .iter_mut()
            .find(|c| &c.key == k)
            .ok_or_else(|| format!("skip-check: no proposed check \"{k}\""))?;
        c.selected = false;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
