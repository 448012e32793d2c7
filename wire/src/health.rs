//! Wire types of health checks, the status board, the public status page and
//! the daily check report.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::Tier;

/// Result of one probe, and the settled state of a check.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum CheckStatus {
    /// Not probed yet, or the check is paused.
    #[default]
    Unknown,
    Ok,
    /// A warning threshold is crossed.
    Warning,
    /// A critical threshold is crossed, or the target does not answer.
    Critical,
}

impl CheckStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Unknown => "unknown",
            CheckStatus::Ok => "ok",
            CheckStatus::Warning => "warning",
            CheckStatus::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<CheckStatus> {
        Some(match s {
            "unknown" => CheckStatus::Unknown,
            "ok" => CheckStatus::Ok,
            "warning" => CheckStatus::Warning,
            "critical" => CheckStatus::Critical,
            _ => return None,
        })
    }
}

/// A service's status on the board: the worst of its checks, then
/// dependency-aware (see `ServiceStatus::impacted_by`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ServiceHealth {
    /// All checks pass.
    Operational,
    /// Under maintenance: failures are expected and not alarms.
    Maintenance,
    /// No checks, or none has settled yet.
    Unknown,
    /// A warning threshold is crossed.
    Degraded,
    /// A dependency is down; this service's own failures are symptoms.
    Impacted,
    /// A critical check fails and no dependency explains it: a root cause.
    Down,
}

impl ServiceHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceHealth::Operational => "operational",
            ServiceHealth::Maintenance => "maintenance",
            ServiceHealth::Unknown => "unknown",
            ServiceHealth::Degraded => "degraded",
            ServiceHealth::Impacted => "impacted",
            ServiceHealth::Down => "down",
        }
    }
}

/// Overall state of the board: the banner at the top of the dashboard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Overall {
    /// Every service with checks is operational.
    Operational,
    /// Something is degraded or impacted, nothing critical is down.
    Degraded,
    /// A critical-tier service is down.
    Outage,
    /// Not monitored yet: no service has a check that has settled (no
    /// services, no checks, or every service unknown). The dashboard says
    /// so instead of "All systems operational".
    Unmonitored,
}

/// Which resource a host or container resource check watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Cpu,
    Memory,
    Disk,
    Inodes,
    /// Host checks only: the 1-minute load average per core, in percent
    /// (100 = as many runnable tasks as cores).
    Load,
}

impl Resource {
    /// The handbooks' host-check thresholds (warning, critical) in percent:
    /// CPU 70/90, memory 80/95, disk 80/90, inodes 80/90, load per core
    /// 80/100. The check form and the daily report use these.
    pub fn host_thresholds(self) -> (f64, f64) {
        match self {
            Resource::Cpu => (70.0, 90.0),
            Resource::Memory => (80.0, 95.0),
            Resource::Disk | Resource::Inodes => (80.0, 90.0),
            Resource::Load => (80.0, 100.0),
        }
    }
}

/// HTTP method of an HTTP check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    #[default]
    Get,
    Head,
    Post,
}

fn default_true() -> bool {
    true
}

/// What a check probes, with its kind-specific settings and thresholds.
/// Percent thresholds are 0–100; latencies are milliseconds.
///
/// Passwords of database checks never travel in `url`: they go in the
/// check's write-only `password` field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CheckSpec {
    /// The service's containers: running, HEALTHCHECK status, restart loops
    /// (restarts counted over the last 10 minutes).
    Container(ContainerCheck),
    /// An HTTP(S) request. Only `http` and `https` URLs.
    Http(HttpCheck),
    /// A TCP connect.
    Tcp(TcpCheck),
    /// Connect, `SELECT 1`, connections used vs `max_connections`, cache hit
    /// ratio, replication lag.
    Postgres(PostgresCheck),
    /// Connect; `Threads_connected` vs thresholds.
    Mysql(MysqlCheck),
    /// PING; memory use (vs `maxmemory` when set, else in MiB).
    Redis(RedisCheck),
    /// Days until the endpoint's TLS certificate expires.
    Tls(TlsCheck),
    /// A resource of the Opsdeck host, or of an engine's host.
    Host(HostCheck),
    /// CPU or memory of the service's containers (CPU: percent of one core
    /// summed; memory: percent of the container's limit).
    ContainerResources(ContainerResourcesCheck),
    /// A push check: an external job calls the check's secret URL; no call
    /// within period + grace is critical.
    Heartbeat(HeartbeatCheck),
    /// Lines of the service's containers that match a pattern, counted over
    /// a window ("≥ 5 ERROR lines in 5 min"): the logs are followed live,
    /// never re-read each round.
    LogPattern(LogPatternCheck),
    /// A PromQL instant query against a Prometheus-compatible server: each
    /// returned series graded against the thresholds (the worst decides).
    /// The optional bearer token goes in the check's write-only `password`.
    Prometheus(PrometheusCheck),
    /// A target's `/metrics` scraped every interval, without Prometheus: a
    /// counter's rate, a ratio of two counters (the error rate), a
    /// histogram quantile (p95 latency) or a gauge, over a window.
    Scrape(crate::ScrapeCheck),
    /// Days until a resource is full at the last 14 days' rate (least
    /// squares on the resource history's hourly series): a mount of the
    /// Opsdeck host (`disk`, a host check) or memory (`memory`: the
    /// service's containers, or the host for a host check).
    Forecast(ForecastCheck),
}

/// The service's containers: running, HEALTHCHECK status, restart loops
/// (restarts counted over the last 10 minutes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerCheck {
    #[serde(default = "d_restart_warn")]
    pub restarts_warning: u32,
    #[serde(default = "d_restart_crit")]
    pub restarts_critical: u32,
}

/// An HTTP(S) request. Only `http` and `https` URLs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HttpCheck {
    pub url: String,
    #[serde(default)]
    pub method: HttpMethod,
    /// Accepted status codes; empty means 200–399.
    #[serde(default)]
    pub expect_status: Vec<u16>,
    #[serde(default)]
    pub body_contains: Option<String>,
    #[serde(default)]
    pub body_regex: Option<String>,
    #[serde(default = "d_http_warn")]
    pub warning_ms: u32,
    #[serde(default = "d_http_crit")]
    pub critical_ms: u32,
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// How many redirects to follow; 0: a redirect is the answer.
    #[serde(default)]
    pub max_redirects: u8,
}

/// A TCP connect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TcpCheck {
    pub host: String,
    pub port: u16,
    #[serde(default = "d_http_warn")]
    pub warning_ms: u32,
    #[serde(default = "d_http_crit")]
    pub critical_ms: u32,
}

/// Connect, `SELECT 1`, connections used vs `max_connections`, cache hit
/// ratio, replication lag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostgresCheck {
    /// `postgres://user@host:port/db` (no password here).
    pub url: String,
    #[serde(default = "d_pg_conn_warn")]
    pub connections_warning_pct: f64,
    #[serde(default = "d_pg_conn_crit")]
    pub connections_critical_pct: f64,
    /// Warn when the cache hit ratio (percent) falls below.
    #[serde(default)]
    pub cache_hit_warning_pct: Option<f64>,
    #[serde(default = "d_lag_warn")]
    pub replication_lag_warning_s: f64,
    #[serde(default = "d_lag_crit")]
    pub replication_lag_critical_s: f64,
}

/// Connect; `Threads_connected` vs thresholds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MysqlCheck {
    /// `mysql://user@host:port/db` (no password here).
    pub url: String,
    #[serde(default = "d_my_warn")]
    pub threads_warning: u32,
    #[serde(default = "d_my_crit")]
    pub threads_critical: u32,
}

/// PING; memory use (vs `maxmemory` when set, else in MiB).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RedisCheck {
    /// `redis://host:port/db` (no password here).
    pub url: String,
    #[serde(default = "d_redis_warn")]
    pub memory_warning_pct: f64,
    #[serde(default = "d_redis_crit")]
    pub memory_critical_pct: f64,
    /// Used when the server has no `maxmemory`.
    #[serde(default)]
    pub memory_warning_mb: Option<u64>,
}

/// Days until the endpoint's TLS certificate expires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TlsCheck {
    pub host: String,
    pub port: u16,
    /// SNI name; the host by default.
    #[serde(default)]
    pub server_name: Option<String>,
    #[serde(default = "d_tls_warn")]
    pub warning_days: u32,
    #[serde(default = "d_tls_crit")]
    pub critical_days: u32,
}

/// A resource of a host: the Opsdeck host itself, or with `engine` the host
/// of that Docker engine (read through a short-lived helper container).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HostCheck {
    pub resource: Resource,
    /// Mount point for disk and inodes (an absolute path on that host).
    #[serde(default)]
    pub path: Option<String>,
    /// The engine (by name) whose host is read; `None`: the Opsdeck host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<String>,
    pub warning_pct: f64,
    pub critical_pct: f64,
    /// A threshold counts only once crossed for this long ("CPU > 80 %
    /// for 5 min"); 0: at once.
    #[serde(default)]
    pub sustained_s: u32,
}

/// CPU or memory of the service's containers (CPU: percent of one core
/// summed; memory: percent of the container's limit).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerResourcesCheck {
    pub resource: Resource,
    pub warning_pct: f64,
    pub critical_pct: f64,
    #[serde(default)]
    pub sustained_s: u32,
}

/// A push check: an external job calls the check's secret URL; no call
/// within period + grace is critical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatCheck {
    pub period_s: u32,
    #[serde(default = "d_grace")]
    pub grace_s: u32,
}

/// Lines of the service's containers that match a pattern, counted over a
/// window. At least one of `pattern` and `level` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogPatternCheck {
    /// Text (case-insensitive) or, with `regex`, a regular expression;
    /// empty: every line of `level` or worse.
    #[serde(default)]
    pub pattern: String,
    #[serde(default)]
    pub regex: bool,
    /// Only lines whose guessed level is this or worse.
    #[serde(default)]
    pub level: Option<crate::LogLevel>,
    /// The window matches are counted over (seconds, 10 s to 1 day).
    #[serde(default = "d_log_window")]
    pub window_s: u32,
    /// Matches in the window from which the check is warning / critical.
    #[serde(default = "d_log_warn")]
    pub warning_count: u32,
    #[serde(default = "d_log_crit")]
    pub critical_count: u32,
}

/// A PromQL instant query (`GET {url}/api/v1/query`), thresholds on each
/// returned series' value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PrometheusCheck {
    /// The server's base URL, e.g. `http://prometheus:9090` (http/https).
    pub url: String,
    /// The PromQL expression (checked by the server when saved).
    pub query: String,
    pub warning: f64,
    pub critical: f64,
    /// Lower values are worse (e.g. free disk): warning ≥ critical then.
    #[serde(default)]
    pub below: bool,
    /// How long a bad value must last before it counts (a rule's `for`).
    #[serde(default)]
    pub sustained_s: u32,
    #[serde(default = "default_true")]
    pub tls_verify: bool,
    /// Alerting-rule mode: the query is an alert expression; any returned
    /// series is this level, none is ok ("no series firing"), and the
    /// thresholds are not used. Absent: the thresholds grade each value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firing: Option<FiringLevel>,
}

/// The level an alerting-rule Prometheus check reports while its
/// expression returns series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum FiringLevel {
    Warning,
    Critical,
}

impl FiringLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            FiringLevel::Warning => "warning",
            FiringLevel::Critical => "critical",
        }
    }
    pub fn status(self) -> CheckStatus {
        match self {
            FiringLevel::Warning => CheckStatus::Warning,
            FiringLevel::Critical => CheckStatus::Critical,
        }
    }
}

fn d_forecast_warning() -> f64 {
    14.0
}
fn d_forecast_critical() -> f64 {
    3.0
}

/// Days until full at the last 14 days' rate; fewer than
/// `warning_days` / `critical_days` is a warning / critical.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ForecastCheck {
    /// `disk` or `memory`.
    pub resource: Resource,
    /// The mount point, for disk (default `/`).
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default = "d_forecast_warning")]
    pub warning_days: f64,
    #[serde(default = "d_forecast_critical")]
    pub critical_days: f64,
}

fn d_log_window() -> u32 {
    300
}
fn d_log_warn() -> u32 {
    5
}
fn d_log_crit() -> u32 {
    50
}
fn d_restart_warn() -> u32 {
    1
}
fn d_restart_crit() -> u32 {
    3
}
fn d_http_warn() -> u32 {
    1000
}
fn d_http_crit() -> u32 {
    3000
}
fn d_pg_conn_warn() -> f64 {
    80.0
}
fn d_pg_conn_crit() -> f64 {
    95.0
}
fn d_lag_warn() -> f64 {
    30.0
}
fn d_lag_crit() -> f64 {
    300.0
}
fn d_my_warn() -> u32 {
    140
}
fn d_my_crit() -> u32 {
    180
}
fn d_redis_warn() -> f64 {
    80.0
}
fn d_redis_crit() -> f64 {
    95.0
}
fn d_tls_warn() -> u32 {
    30
}
fn d_tls_crit() -> u32 {
    7
}
fn d_grace() -> u32 {
    60
}

impl CheckSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            CheckSpec::Container(_) => "container",
            CheckSpec::Http(_) => "http",
            CheckSpec::Tcp(_) => "tcp",
            CheckSpec::Postgres(_) => "postgres",
            CheckSpec::Mysql(_) => "mysql",
            CheckSpec::Redis(_) => "redis",
            CheckSpec::Tls(_) => "tls",
            CheckSpec::Host(_) => "host",
            CheckSpec::ContainerResources(_) => "container_resources",
            CheckSpec::Heartbeat(_) => "heartbeat",
            CheckSpec::LogPattern(_) => "log_pattern",
            CheckSpec::Prometheus(_) => "prometheus",
            CheckSpec::Scrape(_) => "scrape",
            CheckSpec::Forecast(_) => "forecast",
        }
    }
}

wire! {
    /// A measured value of a probe, e.g. `latency_ms`, `connections_pct`.
    pub struct Metric {
        pub name: String,
        pub value: f64,
    }

    /// The outcome of one probe.
    pub struct ProbeResult {
        pub status: CheckStatus,
        pub at: DateTime<Utc>,
        /// Time the probe took (ms).
        pub latency_ms: Option<f64>,
        /// Short explanation: "HTTP 500", "connections 96 % of 100".
        pub message: String,
        pub metrics: Vec<Metric>,
    }

    /// A health check and its current state.
    pub struct Check {
        pub id: i64,
        /// `None`: a check of the Opsdeck host itself.
        pub service_id: Option<i64>,
        pub service: Option<String>,
        pub name: String,
        pub spec: CheckSpec,
        pub interval_s: u32,
        pub timeout_ms: u32,
        /// Consecutive failing probes before the state turns bad.
        pub fail_after: u32,
        /// Consecutive passing probes before it turns good again.
        pub recover_after: u32,
        pub enabled: bool,
        /// A password is stored (it is never sent back).
        pub has_password: bool,
        /// For heartbeat checks: the path the job calls,
        /// `/api/v1/heartbeat/{token}` (operators and up only).
        pub heartbeat_path: Option<String>,
        /// Settled state (after flap damping).
        pub status: CheckStatus,
        pub status_since: Option<DateTime<Utc>>,
        pub last: Option<ProbeResult>,
        pub created_at: DateTime<Utc>,
    }

    /// `POST /api/v1/checks` (all of `spec`, `name`) and
    /// `PATCH /api/v1/checks/{id}` (only the fields given change).
    pub struct CheckInput {
        #[serde(default)]
        pub service_id: Option<i64>,
        #[serde(default)]
        pub name: Option<String>,
        #[serde(default)]
        pub spec: Option<CheckSpec>,
        #[serde(default)]
        pub interval_s: Option<u32>,
        #[serde(default)]
        pub timeout_ms: Option<u32>,
        #[serde(default)]
        pub fail_after: Option<u32>,
        #[serde(default)]
        pub recover_after: Option<u32>,
        #[serde(default)]
        pub enabled: Option<bool>,
        /// Write-only; an empty string removes it.
        #[serde(default)]
        pub password: Option<String>,
    }

    /// A settled state change of a check (the history kept forever-ish).
    pub struct CheckEvent {
        pub id: i64,
        pub check_id: i64,
        pub at: DateTime<Utc>,
        pub from: CheckStatus,
        pub to: CheckStatus,
        pub message: String,
    }

    /// One minute (or hour) of a check: probes, failures, latency.
    pub struct Rollup {
        pub at: DateTime<Utc>,
        pub probes: u32,
        pub ok: u32,
        pub warning: u32,
        pub critical: u32,
        pub latency_min_ms: Option<f64>,
        pub latency_avg_ms: Option<f64>,
        pub latency_max_ms: Option<f64>,
    }

    /// `GET /api/v1/checks/{id}/history`.
    pub struct CheckHistory {
        pub check_id: i64,
        /// `minute` or `hour`.
        pub resolution: String,
        pub rollups: Vec<Rollup>,
        pub events: Vec<CheckEvent>,
        pub uptime: Uptime,
    }

    /// Share of passing probes (warnings count as passing), percent.
    pub struct Uptime {
        pub day: Option<f64>,
        pub week: Option<f64>,
        pub month: Option<f64>,
    }

    /// One service on the status board.
    pub struct ServiceStatus {
        pub service_id: i64,
        pub name: String,
        pub tier: Tier,
        pub health: ServiceHealth,
        /// When `health` last changed.
        pub since: Option<DateTime<Utc>>,
        /// The root causes (down dependencies) when `impacted`.
        pub impacted_by: Vec<String>,
        /// Names of failing checks with their messages.
        pub problems: Vec<String>,
        pub checks: u32,
        /// Average latency per minute, last 30 minutes (oldest first; `None`
        /// where no probe measured a latency).
        pub sparkline: Vec<Option<f64>>,
        pub uptime: Uptime,
        /// Shown on the public status page.
        pub public: bool,
        pub public_name: Option<String>,
        /// Set while maintenance covers the service (`health` is then
        /// `maintenance`; `observed` in the mark is what its checks say).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub maintenance: Option<crate::MaintenanceMark>,
    }

    /// `GET /api/v1/status`: the dashboard's data.
    pub struct StatusBoard {
        pub overall: Overall,
        /// Counts per health, e.g. `{"operational": 12, "down": 1}`.
        pub counts: std::collections::BTreeMap<String, u32>,
        pub services: Vec<ServiceStatus>,
        /// Host-level checks (no service).
        pub host_checks: Vec<Check>,
        /// The hosts those checks watch, one entry per host (an engine's
        /// host, or the Opsdeck host), worst first.
        #[serde(default)]
        pub hosts: Vec<HostStatus>,
        pub engines: Vec<crate::Engine>,
        /// Monotonic version; the SSE stream sends it with each change.
        pub version: u64,
        pub generated_at: DateTime<Utc>,
        /// Maintenance periods in effect (the panel's banner).
        #[serde(default)]
        pub maintenance: Vec<crate::MaintenanceBanner>,
        /// Set when the board was asked for its first screen only
        /// (`?first=N`): `services` then holds each tier's first N services
        /// in the dashboard's order (worst health first, then name), and this
        /// says how many services each tier has. `counts` and `overall`
        /// always cover every service.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub tier_totals: Option<std::collections::BTreeMap<crate::Tier, u32>>,
    }

    /// A host on the board: its host checks together. A critical engine's
    /// host opens an incident (`host:<engine>`) listing the services on it.
    pub struct HostStatus {
        /// The engine whose host this is; `None`: the Opsdeck host.
        pub engine: Option<String>,
        /// "host db01", or "Opsdeck host".
        pub name: String,
        /// The worst settled state of its enabled host checks.
        pub status: CheckStatus,
        /// The failing checks' last results, worst first
        /// ("disk /srv 93.0 % used (critical at 90 %)").
        pub problems: Vec<String>,
        /// Services on that host: their containers run on the engine, or
        /// they name it. Sorted.
        pub services: Vec<String>,
        pub checks: u32,
    }

    /// A change pushed on `GET /api/v1/status/events` (event `status`).
    pub struct StatusChange {
        pub version: u64,
        pub overall: Overall,
        pub services: Vec<ServiceStatus>,
    }

    /// Engine figures (`GET /api/v1/checks/engine`, admins).
    pub struct CheckEngineStats {
        /// This instance holds the engine lease and runs the probes.
        pub leader: bool,
        pub checks: u32,
        pub probes_total: u64,
        pub in_flight: u32,
        /// Lag between scheduled and actual probe start, last 10,000 probes.
        pub lag_p50_ms: f64,
        pub lag_p99_ms: f64,
        pub lag_max_ms: f64,
        pub rollup_rows_written: u64,
        pub events_written: u64,
        /// Container checks probed at once because an engine event changed
        /// one of their containers (besides their schedule).
        #[serde(default)]
        pub event_probes_total: u64,
    }

    /// Retention and report settings (`GET/PUT /api/v1/checks/settings`, admins).
    pub struct HealthSettings {
        /// Days of per-minute rollups kept.
        pub minute_retention_days: u32,
        /// Days of hourly rollups kept.
        pub hour_retention_days: u32,
        /// Days of state changes kept.
        pub event_retention_days: u32,
        /// Local time of day (`HH:MM`, server time zone UTC) of the daily report.
        pub report_time: String,
    }

    /// A line of the daily report: one item of the morning checklist.
    pub struct ReportItem {
        /// containers, disk, memory, db_connections, service_health, backups.
        pub section: String,
        pub name: String,
        pub status: CheckStatus,
        pub detail: String,
    }

    /// The daily check report.
    pub struct Report {
        pub id: i64,
        pub day: NaiveDate,
        pub generated_at: DateTime<Utc>,
        /// `schedule` or the username who asked for it.
        pub trigger: String,
        pub overall: CheckStatus,
        pub items: Vec<ReportItem>,
    }

    /// A report in the list (`GET /api/v1/reports`).
    pub struct ReportSummary {
        pub id: i64,
        pub day: NaiveDate,
        pub generated_at: DateTime<Utc>,
        pub trigger: String,
        pub overall: CheckStatus,
        pub problems: u32,
    }

    /// `PATCH /api/v1/services/{id}/public`: opt a service in or out of the
    /// public status page.
    pub struct PublicStatusInput {
        pub public: bool,
        /// The name shown publicly; the service name by default.
        #[serde(default)]
        pub public_name: Option<String>,
    }
}
