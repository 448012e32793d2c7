//! Typed configuration.
//!
//! Every setting comes from (highest first) a command-line flag, its
//! environment variable, the optional TOML file (`OPSDECK_CONFIG`), then the
//! built-in default. [`Settings`] is the resolved, validated result; secrets
//! are [`Secret`]s, which never print.
//!
//! One key is read outside [`Settings`], from the environment only (never a
//! flag or the TOML file, which often sit next to the database's
//! credentials): `OPSDECK_AUDIT_KEY`, the HMAC key of the audit chain's
//! signed checkpoints (at least 32 characters; unset or empty: the key file
//! `audit-checkpoint.key` in the data directory, made on first start). See
//! `audit::checkpoint`.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Args;
use serde::Deserialize;
use sqlx::types::ipnetwork::IpNetwork;

/// A string that must never reach a log line or `Debug` output.
#[derive(Clone, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself; call only where it is used, never to print it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

/// Settings as flags/environment variables. All optional here: absent values
/// fall back to the TOML file, then to the defaults in [`Settings::resolve`].
#[derive(Debug, Clone, Default, Args)]
pub struct SettingsArgs {
    /// TOML file with any of the settings below (keys as in the long flag
    /// names, with `_` for `-`). Flags and environment variables win over it.
    #[arg(long, env = "OPSDECK_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Address the panel listens on [default: 127.0.0.1:8080].
    #[arg(long, env = "OPSDECK_LISTEN", global = true)]
    pub listen: Option<SocketAddr>,

    /// Where Opsdeck keeps its own Postgres cluster and state when no
    /// DATABASE_URL is given [default: ./.opsdeck].
    #[arg(long, env = "OPSDECK_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Postgres to use instead of the embedded cluster, e.g.
    /// postgres://opsdeck:…@db:5432/opsdeck (secret: never printed).
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, global = true)]
    pub database_url: Option<Secret>,

    /// Directory with the PostgreSQL server binaries (initdb, postgres) for the
    /// embedded cluster [default: newest /usr/lib/postgresql/*/bin, then PATH].
    #[arg(long, env = "OPSDECK_PG_BIN", global = true)]
    pub pg_bin: Option<PathBuf>,

    /// Docker Engine to talk to [default: unix:///var/run/docker.sock].
    #[arg(long, env = "DOCKER_HOST", global = true)]
    pub docker_host: Option<String>,

    /// Password for the `admin` account created on first start when there are
    /// no users; without it a random one is printed once (secret).
    #[arg(
        long,
        env = "OPSDECK_ADMIN_PASSWORD",
        hide_env_values = true,
        global = true
    )]
    pub admin_password: Option<Secret>,

    /// Directory of the built SPA (trunk's dist) [default: frontend/dist].
    #[arg(long, env = "OPSDECK_WEB_ROOT", global = true)]
    pub web_root: Option<PathBuf>,

    /// Public URL of the panel, e.g. https://ops.example.com. Its origin is
    /// accepted by the CSRF check; an https URL makes cookies Secure.
    #[arg(long, env = "OPSDECK_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// Mark the session cookie Secure even without an https public URL.
    #[arg(long, env = "OPSDECK_SECURE_COOKIES", global = true)]
    pub secure_cookies: Option<bool>,

    /// Deprecated: `true` trusts `X-Forwarded-For` from loopback and private
    /// networks (127.0.0.0/8, ::1, 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16,
    /// fc00::/7), as if those were listed in `trusted_proxies`, and logs a
    /// deprecation warning at start. Use `trusted_proxies` instead.
    #[arg(long, env = "OPSDECK_TRUST_PROXY", global = true)]
    pub trust_proxy: Option<bool>,

    /// Reverse proxies whose `X-Forwarded-For` is believed: comma-separated
    /// addresses or CIDRs, e.g. `127.0.0.1,10.0.0.0/8`. When the TCP peer is
    /// one of them, the client is the rightmost `X-Forwarded-For` entry that
    /// is not; otherwise the header is ignored and the peer is the client.
    /// [default: none]
    #[arg(long, env = "OPSDECK_TRUSTED_PROXIES", global = true)]
    pub trusted_proxies: Option<String>,

    /// Extra host names (comma-separated, optional `:port`) the panel answers
    /// besides the public URL's host, loopback and the listen address. Only
    /// checked when `public_url` is set (DNS-rebinding defence).
    #[arg(long, env = "OPSDECK_ALLOWED_HOSTS", global = true)]
    pub allowed_hosts: Option<String>,

    /// Requests per minute and client address without credentials to
    /// `/api/*` or mutating anything, and refused requests (401/403/429)
    /// [default: 300; 0 = unlimited].
    #[arg(long, env = "OPSDECK_RATE_LIMIT_ANONYMOUS", global = true)]
    pub rate_limit_anonymous: Option<u32>,

    /// Login attempts per minute and client address [default: 30; 0 = unlimited].
    #[arg(long, env = "OPSDECK_RATE_LIMIT_LOGIN", global = true)]
    pub rate_limit_login: Option<u32>,

    /// Heartbeat pings per minute and client address [default: 600; 0 = unlimited].
    #[arg(long, env = "OPSDECK_RATE_LIMIT_HEARTBEAT", global = true)]
    pub rate_limit_heartbeat: Option<u32>,

    /// Minutes without a request after which a session ends [default: 480].
    #[arg(long, env = "OPSDECK_SESSION_IDLE_MINUTES", global = true)]
    pub session_idle_minutes: Option<u64>,

    /// Hours after login after which a session ends regardless [default: 168].
    #[arg(long, env = "OPSDECK_SESSION_MAX_HOURS", global = true)]
    pub session_max_hours: Option<u64>,

    /// Log format: text (default) or json.
    #[arg(long, env = "OPSDECK_LOG_FORMAT", value_enum, global = true)]
    pub log_format: Option<LogFormat>,

    /// Seconds a server holds a runbook run without renewing its lease; a
    /// run whose server stopped turns `interrupted` after this [default: 20].
    #[arg(long, env = "OPSDECK_RUN_LEASE_SECS", global = true)]
    pub run_lease_secs: Option<u64>,

    /// TESTING ONLY: the length in seconds of the "minute" of auto-heal's
    /// `heal_after_minutes` (see `updates::heal`), so tests need not wait
    /// whole minutes [default: 60, range 1–60]. The per-hour limit always
    /// counts real hours. Never set it in production.
    #[arg(long, env = "OPSDECK_AUTOHEAL_UNIT_SECS", global = true, hide = true)]
    pub autoheal_unit_secs: Option<u64>,

    /// Let notification channels reach link-local addresses (169.254.0.0/16,
    /// fe80::/10) and cloud metadata services; refused by default (SSRF).
    /// A server setting only, never changeable through the API.
    #[arg(long, env = "OPSDECK_NOTIFY_ALLOW_LINK_LOCAL", global = true)]
    pub notify_allow_link_local: Option<bool>,

    /// Let HTTP checks and runbook `http` steps reach link-local addresses
    /// (169.254.0.0/16, fe80::/10) and cloud metadata services
    /// (169.254.169.254, fd00:ec2::254, metadata.google.internal); refused
    /// by default (SSRF, see `net::guard`). Loopback and private ranges are
    /// always allowed for checks. A server setting only (flag, environment
    /// or file), never changeable through the API.
    #[arg(long, env = "OPSDECK_CHECKS_ALLOW_LINK_LOCAL", global = true)]
    pub checks_allow_link_local: Option<bool>,

    /// Seconds after which a request is answered 408 (default 30, 1–600).
    /// Container actions and exec are not cut short by it: they finish
    /// within their own limits and audit their outcome (see `actions::run`).
    #[arg(long, env = "OPSDECK_REQUEST_TIMEOUT_SECS", global = true)]
    pub request_timeout_secs: Option<u64>,

    /// Bearer token that opens `/metrics` on the main listener (at least 16
    /// characters; secret). Without it and without `metrics_listen`,
    /// `/metrics` answers 404.
    #[arg(
        long,
        env = "OPSDECK_METRICS_TOKEN",
        hide_env_values = true,
        global = true
    )]
    pub metrics_token: Option<Secret>,

    /// Separate address serving only `/metrics`, without authentication,
    /// e.g. 127.0.0.1:9464 (keep it private: firewall or loopback).
    #[arg(long, env = "OPSDECK_METRICS_LISTEN", global = true)]
    pub metrics_listen: Option<SocketAddr>,

    /// How often each engine's images are checked for updates (see
    /// `updates::discover`): a number of seconds or a number with `s`, `m`,
    /// `h` or `d` (default `24h`, at least `1m`); `0` or `off` turns the
    /// scheduled check off (`POST /api/v1/updates/check` still works).
    /// Engines are spread over the interval by a hash of their id.
    #[arg(long, env = "OPSDECK_UPDATE_CHECK_INTERVAL", global = true)]
    pub update_check_interval: Option<String>,

    /// How often the resource history samples every running container and
    /// the host (see `resources::sample`): seconds, or a number with `s`,
    /// `m` or `h` (default `10s`, 1 s to 1 h); `0` or `off` turns sampling
    /// off (the history stops; charts show what was kept).
    #[arg(long, env = "OPSDECK_RESOURCE_SAMPLE_INTERVAL", global = true)]
    pub resource_sample_interval: Option<String>,

    /// Read-only mode: refuse every change to containers (container and
    /// stack actions, exec, runbook steps of kind container, stack, scale,
    /// exec and prune, maintenance proxy pages) with 403 `read_only`.
    #[arg(long, env = "OPSDECK_READ_ONLY", global = true)]
    pub read_only: Option<bool>,

    /// Key that seals stored third-party secrets (check passwords, channel
    /// secrets, S3 keys, the ack-link key): base64 of 32 random bytes
    /// (`openssl rand -base64 32`; secret: prefer the environment, a flag
    /// shows in the process list). Without it
    /// the key file `<data_dir>/secret.key` is used, created (mode 600) on
    /// the first start. Replicas must share it. `opsdeck secrets rotate`
    /// changes it. See docs/security/secrets.md.
    #[arg(
        long = "secret-key",
        env = "OPSDECK_SECRET_KEY",
        hide_env_values = true,
        global = true
    )]
    pub secret_key: Option<Secret>,
}

/// The TOML file's shape: the same keys as the flags.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database_url: Option<Secret>,
    pg_bin: Option<PathBuf>,
    docker_host: Option<String>,
    admin_password: Option<Secret>,
    web_root: Option<PathBuf>,
    public_url: Option<String>,
    secure_cookies: Option<bool>,
    trust_proxy: Option<bool>,
    trusted_proxies: Option<String>,
    allowed_hosts: Option<String>,
    rate_limit_anonymous: Option<u32>,
    rate_limit_login: Option<u32>,
    rate_limit_heartbeat: Option<u32>,
    session_idle_minutes: Option<u64>,
    session_max_hours: Option<u64>,
    log_format: Option<LogFormat>,
    run_lease_secs: Option<u64>,
    autoheal_unit_secs: Option<u64>,
    notify_allow_link_local: Option<bool>,
    checks_allow_link_local: Option<bool>,
    request_timeout_secs: Option<u64>,
    metrics_token: Option<Secret>,
    metrics_listen: Option<SocketAddr>,
    read_only: Option<bool>,
    update_check_interval: Option<String>,
    resource_sample_interval: Option<String>,
}

/// Per-source request budgets, each in requests per minute (a token bucket
/// holding one minute's worth); 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimits {
    /// Credential-less API and mutating requests, and refused requests.
    pub anonymous: u32,
    pub login: u32,
    pub heartbeat: u32,
}

impl RateLimits {
    /// No limits (the test harness's default; tests about limits set them).
    pub fn off() -> RateLimits {
        RateLimits {
            anonymous: 0,
            login: 0,
            heartbeat: 0,
        }
    }
}

/// Resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database_url: Option<Secret>,
    pub pg_bin: Option<PathBuf>,
    pub docker_host: Option<String>,
    pub admin_password: Option<Secret>,
    pub web_root: PathBuf,
    /// Origin (`scheme://host[:port]`) of the public URL, if configured.
    pub public_origin: Option<String>,
    pub secure_cookies: bool,
    /// The deprecated `trust_proxy` was set (serve logs a warning); its
    /// networks are already part of `trusted_proxies`.
    pub trust_proxy: bool,
    /// Peers whose `X-Forwarded-For` is believed (see `auth::source_of`).
    pub trusted_proxies: Vec<IpNetwork>,
    /// Host names (lowercase, optional `:port`) the panel answers; `None`
    /// (no public URL) answers any (see `http::edge`).
    pub allowed_hosts: Option<Vec<String>>,
    /// Per-source rate limits (see `http::edge`).
    pub rate_limits: RateLimits,
    pub session_idle: Duration,
    pub session_max: Duration,
    pub log_format: LogFormat,
    /// Write the daily check report at its configured time (on by default;
    /// the test harness turns it off unless a test is about it).
    pub daily_report: bool,
    /// Lease of a runbook run (renewed every third of it).
    pub run_lease: Duration,
    /// What one of auto-heal's `heal_after_minutes` lasts: a minute, or
    /// less under `OPSDECK_AUTOHEAL_UNIT_SECS` (testing only).
    pub autoheal_unit: Duration,
    /// Run the schedule ticker (tests of other features may turn it off).
    pub schedules: bool,
    /// Run the escalation ticker (tests drive `incidents::escalation::tick`
    /// with their own clock instead).
    pub escalations: bool,
    /// Notification targets may be link-local / cloud metadata addresses
    /// (see `notify::guard`); off by default.
    pub notify_allow_link_local: bool,
    /// HTTP checks and runbook `http` steps may reach link-local / cloud
    /// metadata addresses (see `net::guard`); off by default.
    pub checks_allow_link_local: bool,
    /// Requests taking longer are answered 408.
    pub request_timeout: Duration,
    /// Opens `/metrics` on the main listener to this bearer token.
    pub metrics_token: Option<Secret>,
    /// Serves `/metrics` (only) on this address, without authentication.
    pub metrics_listen: Option<SocketAddr>,
    /// Refuse every change to containers (see `actions::ensure_writable`).
    pub read_only: bool,
    /// Scheduled update discovery per engine (`None`: off; see
    /// `updates::discover`).
    pub update_check_interval: Option<Duration>,
    /// The resource sampler's period (`None`: off; see `resources`).
    pub resource_sample_interval: Option<Duration>,
    /// `OPSDECK_SECRET_KEY` (see `crate::secrets`); the key file otherwise.
    pub secret_key: Option<Secret>,
}

impl Settings {
    /// Layers flags/env over the TOML file over defaults, and validates.
    pub fn resolve(args: &SettingsArgs) -> anyhow::Result<Settings> {
        let file = match &args.config {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading config file {}", path.display()))?;
                toml::from_str::<FileSettings>(&text)
                    .with_context(|| format!("config file {}", path.display()))?
            }
            None => FileSettings::default(),
        };
        let public_url = args.public_url.clone().or(file.public_url);
        let public_origin = public_url.as_deref().map(origin_of).transpose()?;
        let idle = args
            .session_idle_minutes
            .or(file.session_idle_minutes)
            .unwrap_or(480);
        let max = args
            .session_max_hours
            .or(file.session_max_hours)
            .unwrap_or(168);
        let lease = args.run_lease_secs.or(file.run_lease_secs).unwrap_or(20);
        let autoheal_unit = args
            .autoheal_unit_secs
            .or(file.autoheal_unit_secs)
            .unwrap_or(60);
        if !(1..=60).contains(&autoheal_unit) {
            bail!("OPSDECK_AUTOHEAL_UNIT_SECS must be between 1 and 60 (testing only)");
        }
        if !(3..=600).contains(&lease) {
            bail!("run_lease_secs must be between 3 and 600");
        }
        let request_timeout = args
            .request_timeout_secs
            .or(file.request_timeout_secs)
            .unwrap_or(30);
        if !(1..=600).contains(&request_timeout) {
            bail!("request_timeout_secs must be between 1 and 600");
        }
        let update_check_interval = parse_interval(
            args.update_check_interval
                .as_deref()
                .or(file.update_check_interval.as_deref())
                .unwrap_or("24h"),
        )
        .context("update_check_interval")?;
        let resource_sample_interval = parse_duration(
            args.resource_sample_interval
                .as_deref()
                .or(file.resource_sample_interval.as_deref())
                .unwrap_or("10s"),
            1,
            3600,
        )
        .context("resource_sample_interval")?;
        if idle == 0 || max == 0 {
            bail!("session_idle_minutes and session_max_hours must be at least 1");
        }
        let metrics_token = args
            .metrics_token
            .clone()
            .or(file.metrics_token)
            .filter(|s| !s.expose().is_empty());
        if let Some(t) = &metrics_token {
            let t = t.expose();
            if t.chars().count() < 16 || t.chars().any(|c| c.is_whitespace() || c.is_control()) {
                bail!("metrics_token must be at least 16 characters without spaces");
            }
        }
        let trust_proxy = args.trust_proxy.or(file.trust_proxy).unwrap_or(false);
        let mut trusted_proxies = parse_networks(
            args.trusted_proxies
                .as_deref()
                .or(file.trusted_proxies.as_deref())
                .unwrap_or_default(),
        )?;
        if trust_proxy {
            trusted_proxies.extend(
                LEGACY_TRUSTED
                    .iter()
                    .map(|n| n.parse::<IpNetwork>().expect("constant network")),
            );
        }
        let listen = args
            .listen
            .or(file.listen)
            .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080)));
        let allowed_hosts = public_origin.as_deref().map(|origin| {
            let extra = args
                .allowed_hosts
                .as_deref()
                .or(file.allowed_hosts.as_deref())
                .unwrap_or_default();
            allowed_hosts_for(origin, listen, extra)
        });
        let secure_default = public_origin
            .as_deref()
            .is_some_and(|o| o.starts_with("https://"));
        Ok(Settings {
            listen,
            data_dir: args
                .data_dir
                .clone()
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(".opsdeck")),
            database_url: args
                .database_url
                .clone()
                .or(file.database_url)
                .filter(|s| !s.expose().is_empty()),
            pg_bin: args.pg_bin.clone().or(file.pg_bin),
            docker_host: args
                .docker_host
                .clone()
                .or(file.docker_host)
                .filter(|s| !s.is_empty()),
            admin_password: args
                .admin_password
                .clone()
                .or(file.admin_password)
                .filter(|s| !s.expose().is_empty()),
            web_root: args
                .web_root
                .clone()
                .or(file.web_root)
                .unwrap_or_else(|| PathBuf::from("frontend/dist")),
            public_origin,
            secure_cookies: args
                .secure_cookies
                .or(file.secure_cookies)
                .unwrap_or(secure_default),
            trust_proxy,
            trusted_proxies,
            allowed_hosts,
            rate_limits: RateLimits {
                anonymous: args
                    .rate_limit_anonymous
                    .or(file.rate_limit_anonymous)
                    .unwrap_or(300),
                login: args
                    .rate_limit_login
                    .or(file.rate_limit_login)
                    .unwrap_or(30),
                heartbeat: args
                    .rate_limit_heartbeat
                    .or(file.rate_limit_heartbeat)
                    .unwrap_or(600),
            },
            session_idle: Duration::from_secs(idle * 60),
            session_max: Duration::from_secs(max * 3600),
            log_format: args
                .log_format
                .or(file.log_format)
                .unwrap_or(LogFormat::Text),
            daily_report: true,
            run_lease: Duration::from_secs(lease),
            autoheal_unit: Duration::from_secs(autoheal_unit),
            schedules: true,
            escalations: true,
            notify_allow_link_local: args
                .notify_allow_link_local
                .or(file.notify_allow_link_local)
                .unwrap_or(false),
            checks_allow_link_local: args
                .checks_allow_link_local
                .or(file.checks_allow_link_local)
                .unwrap_or(false),
            request_timeout: Duration::from_secs(request_timeout),
            metrics_token,
            metrics_listen: args.metrics_listen.or(file.metrics_listen),
            read_only: args.read_only.or(file.read_only).unwrap_or(false),
            update_check_interval,
            resource_sample_interval,
            secret_key: args
                .secret_key
                .clone()
                .filter(|s| !s.expose().trim().is_empty()),
        })
    }

    /// Settings for tests and tools: defaults everywhere, this database.
    pub fn for_database(url: &str, web_root: &Path) -> Settings {
        let mut s = Settings::resolve(&SettingsArgs::default()).expect("defaults are valid");
        s.database_url = Some(Secret::new(url));
        s.web_root = web_root.to_owned();
        s
    }
}

/// `90`, `90s`, `30m`, `24h`, `7d` → a duration of at least a minute;
/// `0` or `off` → `None` (off).
pub fn parse_interval(text: &str) -> anyhow::Result<Option<Duration>> {
    parse_duration(text, 60, u64::MAX)
}

/// A period from `min_secs` to `max_secs`: seconds, or a number with `s`,
/// `m`, `h` or `d`; `0` or `off` is `None`.
pub fn parse_duration(
    text: &str,
    min_secs: u64,
    max_secs: u64,
) -> anyhow::Result<Option<Duration>> {
    let t = text.trim().to_ascii_lowercase();
    if t == "off" || t == "0" {
        return Ok(None);
    }
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), "s"),
    };
    let n: u64 = num
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?}: expected e.g. 10, 30s, 30m, 24h, 7d or off"))?;
    let secs = match unit.trim() {
        "s" => n,
        "m" => n.saturating_mul(60),
        "h" => n.saturating_mul(3600),
        "d" => n.saturating_mul(86_400),
        _ => bail!("{text:?}: expected e.g. 10, 30s, 30m, 24h, 7d or off"),
    };
    if secs < min_secs {
        bail!("{text:?}: at least {min_secs} s (or off)");
    }
    if secs > max_secs {
        bail!("{text:?}: at most {max_secs} s");
    }
    Ok(Some(Duration::from_secs(secs)))
}

/// What the deprecated `trust_proxy = true` trusts: loopback and private networks.
const LEGACY_TRUSTED: &[&str] = &[
    "127.0.0.0/8",
    "::1/128",
    "10.0.0.0/8",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "fc00::/7",
];

/// `10.0.0.0/8, 127.0.0.1` → networks (a bare address is a /32 or /128).
fn parse_networks(list: &str) -> anyhow::Result<Vec<IpNetwork>> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNetwork>()
                .with_context(|| format!("trusted_proxies: {s:?} is not an address or CIDR"))
        })
        .collect()
}

/// The Host values the panel answers once a public URL is set: the public
/// URL's host (with and without its port), loopback names, the listen
/// address, and the operator's extra names. Entries without a port match
/// any port.
pub fn allowed_hosts_for(origin: &str, listen: SocketAddr, extra: &str) -> Vec<String> {
    let host = origin.split_once("://").map_or(origin, |(_, h)| h);
    let mut hosts = vec![host.to_owned(), strip_port(host).to_owned()];
    hosts.extend(["localhost", "127.0.0.1", "[::1]"].map(String::from));
    if !listen.ip().is_unspecified() {
        hosts.push(match listen.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        });
    }
    hosts.extend(
        extra
            .split(',')
            .map(|h| h.trim().to_ascii_lowercase())
            .filter(|h| !h.is_empty()),
    );
    hosts.sort();
    hosts.dedup();
    hosts
}

/// `host:8080` → `host`; `[::1]:8080` → `[::1]`; `host` → `host`.
pub fn strip_port(host: &str) -> &str {
    match host.rfind(':') {
        Some(i) if !host[i..].contains(']') => &host[..i],
        _ => host,
    }
}

/// `https://ops.example.com:8443/path` → `https://ops.example.com:8443`.
fn origin_of(url: &str) -> anyhow::Result<String> {
    let (scheme, rest) = url
        .split_once("://")
        .with_context(|| format!("public_url {url:?} is not an absolute URL"))?;
    if scheme != "http" && scheme != "https" {
        bail!("public_url {url:?} must start with http:// or https://");
    }
    let host = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if host.is_empty() {
        bail!("public_url {url:?} has no host");
    }
    Ok(format!("{scheme}://{}", host.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let s = Secret::new("hunter2hunter2");
        assert_eq!(format!("{s:?}"), "Secret(***)");
        let args = SettingsArgs {
            database_url: Some(Secret::new("postgres://u:pw-in-url@h/db")),
            ..Default::default()
        };
        let settings = Settings::resolve(&args).unwrap();
        assert!(!format!("{settings:?}").contains("pw-in-url"));
    }

    /// docs/CONFIGURATION.md names every flag's environment variable and
    /// TOML key: adding a setting without documenting it fails here.
    #[test]
    fn the_configuration_reference_lists_every_setting() {
        use clap::Args as _;
        let doc = include_str!("../../docs/CONFIGURATION.md");
        let cmd = SettingsArgs::augment_args(clap::Command::new("opsdeck"));
        let mut checked = 0;
        for arg in cmd.get_arguments() {
            let Some(long) = arg.get_long() else { continue };
            let env = arg
                .get_env()
                .and_then(|e| e.to_str())
                .unwrap_or_else(|| panic!("--{long} has no environment variable"));
            let row = doc
                .lines()
                .find(|l| l.starts_with(&format!("| `{env}` |")))
                .unwrap_or_else(|| panic!("docs/CONFIGURATION.md has no row for {env}"));
            assert!(row.contains(&format!("`--{long}`")), "{env}: flag --{long}");
            if long != "config" {
                let key = long.replace('-', "_");
                assert!(
                    row.contains(&format!("| `{key}` |")),
                    "{env}: TOML key {key}"
                );
            }
            checked += 1;
        }
        assert!(checked >= 19, "only {checked} settings found");
    }

    #[test]
    fn resource_sample_intervals_are_read() {
        let d = |s: &str| parse_duration(s, 1, 3600).unwrap().map(|d| d.as_secs());
        assert_eq!(d("10s"), Some(10));
        assert_eq!(d("1"), Some(1));
        assert_eq!(d("1h"), Some(3600));
        assert_eq!(d("off"), None);
        for bad in ["2h", "x", "-1"] {
            assert!(parse_duration(bad, 1, 3600).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            Settings::resolve(&SettingsArgs::default())
                .unwrap()
                .resource_sample_interval,
            Some(Duration::from_secs(10))
        );
    }

    #[test]
    fn update_check_intervals_are_read() {
        let d = |s: &str| parse_interval(s).unwrap().map(|d| d.as_secs());
        assert_eq!(d("24h"), Some(86_400));
        assert_eq!(d("3600"), Some(3600));
        assert_eq!(d("30m"), Some(1800));
        assert_eq!(d("7d"), Some(604_800));
        assert_eq!(d("off"), None);
        assert_eq!(d("0"), None);
        for bad in ["10s", "1w", "h", "-1h", ""] {
            assert!(parse_interval(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(
            Settings::resolve(&SettingsArgs::default())
                .unwrap()
                .update_check_interval,
            Some(Duration::from_secs(86_400))
        );
    }

    #[test]
    fn origin_is_scheme_and_host() {
        assert_eq!(
            origin_of("https://Ops.Example.com:8443/x?y").unwrap(),
            "https://ops.example.com:8443"
        );
        assert!(origin_of("ftp://x").is_err());
        assert!(origin_of("ops.example.com").is_err());
    }

    #[test]
    fn file_is_layered_under_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("opsdeck.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9999\"\npublic_url = \"https://ops.example.com\"\nsession_idle_minutes = 30\n").unwrap();
        let mut args = SettingsArgs {
            config: Some(path.clone()),
            ..Default::default()
        };
        let s = Settings::resolve(&args).unwrap();
        assert_eq!(s.listen.port(), 9999);
        assert!(s.secure_cookies, "an https public URL makes cookies Secure");
        assert_eq!(s.session_idle, Duration::from_secs(1800));
        args.listen = Some("127.0.0.1:7000".parse().unwrap());
        assert_eq!(Settings::resolve(&args).unwrap().listen.port(), 7000);
        std::fs::write(
            &path,
            "metrics_listen = \"127.0.0.1:9464\"\nread_only = true\nmetrics_token = \"short\"\n",
        )
        .unwrap();
        let err = format!("{:#}", Settings::resolve(&args).unwrap_err());
        assert!(
            err.contains("metrics_token"),
            "a short token is refused: {err}"
        );
        std::fs::write(
            &path,
            "metrics_listen = \"127.0.0.1:9464\"\nread_only = true\nmetrics_token = \"0123456789abcdef\"\n",
        )
        .unwrap();
        let s = Settings::resolve(&args).unwrap();
        assert!(s.read_only);
        assert_eq!(s.metrics_listen.map(|a| a.port()), Some(9464));
        assert!(!format!("{s:?}").contains("0123456789abcdef"));
        std::fs::write(&path, "listne = \"x\"\n").unwrap();
        let err = format!("{:#}", Settings::resolve(&args).unwrap_err());
        assert!(err.contains("listne"), "unknown keys are named: {err}");
    }
}
