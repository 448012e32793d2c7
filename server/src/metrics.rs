//! `/metrics`: Opsdeck's figures in the OpenMetrics text format (the
//! standardised Prometheus exposition format; Prometheus negotiates it).
//!
//! Two kinds of figures, built with `prometheus-client`:
//! - **events counted by this process**, in a [`Metrics`] registry per
//!   `AppState` (servers in one test process never share counters): HTTP
//!   request latencies per route template and status class, runbook runs
//!   started and finished by outcome, escalation levels fired, SLA breaches
//!   marked, probes per check and result, and per background task its
//!   ticks, failures, last duration and (one-process tasks) whether this
//!   process holds it ([`crate::jobs`]). With several replicas, sum them.
//! - **state read at scrape time** into a fresh registry: each check's
//!   settled state and last latency (from the health engine's memory), and
//!   from the database runs queued/running/waiting, open incidents by
//!   severity and status, and per backup plan the last successful backup's
//!   size and age and the last outcome. Every replica reports the same
//!   values for the database figures (take `max`, not `sum`). A section whose
//!   query fails is left out and counted in `opsdeck_metrics_scrape_errors`.
//!
//! Protection (see `config.rs`): on the main listener `/metrics` needs
//! `Authorization: Bearer <metrics_token>`; `metrics_listen` serves it on
//! its own address without authentication; with neither it answers 404.
//! It is a GET (never audited) outside the OpenAPI document and the role
//! model: a scraper is a machine with its own credential, not a user.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use opsdeck_wire::CheckStatus;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::error_response;
use crate::state::AppState;

/// The answer's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the HTTP latency buckets.
const HTTP_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, std::sync::atomic::AtomicU64>;

fn http_histogram() -> Histogram {
    Histogram::new(HTTP_BUCKETS)
}

/// This process's event counters (one per `AppState`).
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    http: Family<Labels, Histogram, fn() -> Histogram>,
    runs_started: Family<Labels, Counter>,
    runs_finished: Family<Labels, Counter>,
    escalations: Family<Labels, Counter>,
    breaches: Counter,
    tasks: crate::jobs::TaskMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("opsdeck");
        let http = Family::<Labels, Histogram, fn() -> Histogram>::new_with_constructor(
            http_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "http_request_duration",
            "HTTP requests by route template, method and status class: time until the response headers (streams count until they start)",
            Unit::Seconds,
            http.clone(),
        );
        let runs_started = Family::<Labels, Counter>::default();
        registry.register(
            "runbook_runs_started",
            "Runbook runs this process queued (started by a person, a schedule, a parent run or a backup)",
            runs_started.clone(),
        );
        let runs_finished = Family::<Labels, Counter>::default();
        registry.register(
            "runbook_runs_finished",
            "Runbook runs this process ended, by outcome (succeeded, failed, cancelled, interrupted)",
            runs_finished.clone(),
        );
        let escalations = Family::<Labels, Counter>::default();
        registry.register(
            "escalations_fired",
            "Escalation levels this process fired (notifications queued), by level (1 = the first)",
            escalations.clone(),
        );
        let breaches = Counter::default();
        registry.register(
            "incident_sla_breaches",
            "Incident SLA milestones this process marked breached",
            breaches.clone(),
        );
        let tasks = crate::jobs::TaskMetrics::default();
        tasks.register(&mut registry);
        Metrics {
            registry,
            http,
            runs_started,
            runs_finished,
            escalations,
            breaches,
            tasks,
        }
    }

    /// The background tasks' family (the jobs registry records into it).
    pub fn tasks(&self) -> crate::jobs::TaskMetrics {
        self.tasks.clone()
    }

    /// One answered HTTP request.
    pub fn observe_http(
        &self,
        method: &Method,
        route: Option<&str>,
        status: StatusCode,
        took: Duration,
    ) {
        let method = match *method {
            Method::GET => "GET",
            Method::HEAD => "HEAD",
            Method::POST => "POST",
            Method::PUT => "PUT",
            Method::PATCH => "PATCH",
            Method::DELETE => "DELETE",
            Method::OPTIONS => "OPTIONS",
            _ => "other",
        };
        let class = match status.as_u16() / 100 {
            1 => "1xx",
            2 => "2xx",
            3 => "3xx",
            4 => "4xx",
            _ => "5xx",
        };
        let labels = vec![
            ("method", method.to_owned()),
            // Unmatched paths (the SPA, its assets, unknown URLs) share one
            // label: a scanner must not create a series per URL.
            ("route", route.unwrap_or("(fallback)").to_owned()),
            ("status", class.to_owned()),
        ];
        self.http.get_or_create(&labels).observe(took.as_secs_f64());
    }

    /// A run was queued.
    pub fn run_started(&self, runbook: &str) {
        self.runs_started
            .get_or_create(&vec![("runbook", runbook.to_owned())])
            .inc();
    }

    /// A run ended (`outcome`: its final status).
    pub fn run_finished(&self, runbook: &str, outcome: &str) {
        self.runs_finished
            .get_or_create(&vec![
                ("runbook", runbook.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// Runs that ended outside the run engine (approval denied or expired,
    /// cancelled while queued or waiting): looks their runbooks up.
    pub async fn runs_finished_by_id(&self, pool: &PgPool, runs: &[i64], outcome: &str) {
        if runs.is_empty() {
            return;
        }
        let names: Result<Vec<String>, _> = sqlx::query_scalar!(
            "SELECT b.name FROM runs r JOIN runbooks b ON b.id = r.runbook_id
             WHERE r.id = ANY($1)",
            runs
        )
        .fetch_all(pool)
        .await;
        match names {
            Ok(names) => names.iter().for_each(|n| self.run_finished(n, outcome)),
            Err(e) => tracing::warn!(error = %e, "counting finished runs for /metrics"),
        }
    }

    /// An escalation level fired (`level` as stored, 0 = the first; the
    /// label counts from 1 like the policy editor).
    pub fn escalation_fired(&self, level: i32) {
        self.escalations
            .get_or_create(&vec![("level", (level + 1).to_string())])
            .inc();
    }

    /// SLA milestones marked breached.
    pub fn sla_breached(&self, n: usize) {
        self.breaches.inc_by(n as u64);
    }
}

/// The tower layer (as an axum middleware on the router) recording every
/// request's latency under its route template.
pub async fn track_http(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let res = next.run(req).await;
    state
        .metrics
        .observe_http(&method, route.as_deref(), res.status(), started.elapsed());
    res
}

/// `GET /metrics` on the main listener: only with the configured bearer
/// token; 404 when no token is configured.
pub async fn main_listener(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(token) = &state.settings.metrics_token else {
        return error_response(
            StatusCode::NOT_FOUND,
            "not_found",
            "/metrics is off on this address (set OPSDECK_METRICS_TOKEN or OPSDECK_METRICS_LISTEN)",
        );
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    // Digests compared: the comparison's time tells nothing about the token.
    let ok = given
        .is_some_and(|g| Sha256::digest(g.as_bytes()) == Sha256::digest(token.expose().as_bytes()));
    if !ok {
        let mut res = error_response(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "/metrics needs Authorization: Bearer <OPSDECK_METRICS_TOKEN>",
        );
        res.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"opsdeck-metrics\""),
        );
        return res;
    }
    scrape(&state).await
}

/// `GET /metrics` on the separate metrics listener: no authentication.
pub async fn open_listener(State(state): State<AppState>) -> Response {
    scrape(&state).await
}

async fn scrape(state: &AppState) -> Response {
    let body = render(state).await;
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        body,
    )
        .into_response()
}

/// The router of the separate metrics listener: `/metrics` and nothing else.
pub fn listener_app(state: AppState) -> axum::Router {
    axum::Router::new()
        .route("/metrics", axum::routing::get(open_listener))
        .fallback(|| async {
            error_response(
                StatusCode::NOT_FOUND,
                "not_found",
                "this address serves only /metrics",
            )
        })
        .with_state(state)
}

/// The whole exposition: this process's counters, then the scrape-time state.
pub async fn render(state: &AppState) -> String {
    let mut now = Registry::with_prefix("opsdeck");
    let mut errors = 0u32;
    info(state, &mut now);
    checks(state, &mut now, &mut errors).await;
    for (section, result) in [
        ("runs", runs(&state.pool, &mut now).await),
        ("incidents", incidents(&state.pool, &mut now).await),
        ("backups", backups(&state.pool, &mut now).await),
    ] {
        if let Err(e) = result {
            errors += 1;
            tracing::warn!(section, error = %e, "a /metrics section could not be read");
        }
    }
    let scrape_errors = Gauge::<i64>::default();
    scrape_errors.set(i64::from(errors));
    now.register(
        "metrics_scrape_errors",
        "Sections of this scrape left out because their data could not be read (see the log)",
        scrape_errors,
    );
    let mut out = String::with_capacity(16 * 1024);
    // Writing into a String cannot fail.
    let _ = encode_registry(&mut out, &state.metrics.registry);
    let _ = encode_registry(&mut out, &now);
    let _ = encode_eof(&mut out);
    out
}

fn info(state: &AppState, reg: &mut Registry) {
    let build = Family::<Labels, Gauge>::default();
    build
        .get_or_create(&vec![("version", env!("CARGO_PKG_VERSION").to_owned())])
        .set(1);
    reg.register("build_info", "Opsdeck's version (always 1)", build);
    let ro = Gauge::<i64>::default();
    ro.set(i64::from(state.settings.read_only));
    reg.register(
        "read_only",
        "1 when this process runs read-only (OPSDECK_READ_ONLY): it changes no container",
        ro,
    );
    let engines = Family::<Labels, Gauge>::default();
    for e in state.engines.engines() {
        let up = e.status().state == opsdeck_wire::EngineState::Connected;
        engines
            .get_or_create(&vec![("engine", e.name.clone())])
            .set(i64::from(up));
    }
    reg.register(
        "docker_engine_up",
        "1 while the Docker Engine is connected (its container cache is current)",
        engines,
    );
}

const STATUSES: [CheckStatus; 4] = [
    CheckStatus::Ok,
    CheckStatus::Warning,
    CheckStatus::Critical,
    CheckStatus::Unknown,
];

fn status_index(s: CheckStatus) -> usize {
    STATUSES.iter().position(|x| *x == s).unwrap_or(3)
}

/// Checks: settled state, last latency and probe counts, from the health
/// engine (the leader probes; the others follow the checks table).
async fn checks(state: &AppState, reg: &mut Registry, errors: &mut u32) {
    let leader = Gauge::<i64>::default();
    leader.set(i64::from(state.health.is_leader()));
    reg.register(
        "check_engine_leader",
        "1 in the process that holds the health-check lease and probes",
        leader,
    );
    let services: HashMap<i64, String> = match sqlx::query!("SELECT id, name FROM services")
        .fetch_all(&state.pool)
        .await
    {
        Ok(rows) => rows.into_iter().map(|r| (r.id, r.name)).collect(),
        Err(e) => {
            *errors += 1;
            tracing::warn!(error = %e, "reading service names for /metrics");
            HashMap::new()
        }
    };
    let counts = state.health.probe_counts();
    let up = Family::<Labels, Gauge>::default();
    let status = Family::<Labels, Gauge>::default();
    let duration = Family::<Labels, GaugeF>::default();
    let last_at = Family::<Labels, GaugeF>::default();
    let probes = Family::<Labels, Counter>::default();
    let mut latest = state.health.latest_metrics();
    latest.sort_by_key(|(def, _, _)| def.id);
    for (def, settled, last) in latest {
        if !def.enabled {
            continue;
        }
        let labels: Labels = vec![
            ("check_id", def.id.to_string()),
            ("check", def.name.clone()),
            (
                "service",
                def.service_id
                    .and_then(|id| services.get(&id).cloned())
                    .unwrap_or_default(),
            ),
            ("kind", def.spec.kind().to_owned()),
        ];
        let is_up = match settled {
            CheckStatus::Ok | CheckStatus::Warning => Some(1),
            CheckStatus::Critical => Some(0),
            CheckStatus::Unknown => None,
        };
        if let Some(v) = is_up {
            up.get_or_create(&labels).set(v);
        }
        for s in STATUSES {
            let mut l = labels.clone();
            l.push(("status", s.as_str().to_owned()));
            status.get_or_create(&l).set(i64::from(s == settled));
        }
        if let Some(last) = &last {
            if let Some(ms) = last.latency_ms {
                duration.get_or_create(&labels).set(ms / 1000.0);
            }
            last_at
                .get_or_create(&labels)
                .set(last.at.timestamp_millis() as f64 / 1000.0);
        }
        if let Some(c) = counts.get(&def.id) {
            for s in STATUSES {
                let mut l = labels.clone();
                l.push(("result", s.as_str().to_owned()));
                probes.get_or_create(&l).inc_by(c[status_index(s)]);
            }
        }
    }
    reg.register(
        "check_up",
        "1 while the check's settled state is ok or warning, 0 when critical (absent while unknown)",
        up,
    );
    reg.register(
        "check_status",
        "The check's settled state: 1 for the current status, 0 for the others",
        status,
    );
    reg.register_with_unit(
        "check_last_duration",
        "Time the check's latest probe took",
        Unit::Seconds,
        duration,
    );
    reg.register_with_unit(
        "check_last_probe_timestamp",
        "When the check was last probed (Unix time)",
        Unit::Seconds,
        last_at,
    );
    reg.register(
        "check_probes",
        "Probes of the check by result, run by this process since it started",
        probes,
    );
}

/// Runs queued, running and waiting now, per runbook and in total.
async fn runs(pool: &PgPool, reg: &mut Registry) -> sqlx::Result<()> {
    let rows = sqlx::query!(
        r#"SELECT b.name, r.status, count(*) AS "n!" FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         WHERE r.status IN ('queued', 'running', 'waiting') GROUP BY b.name, r.status"#
    )
    .fetch_all(pool)
    .await?;
    let per_runbook = Family::<Labels, Gauge>::default();
    let total = Family::<Labels, Gauge>::default();
    for s in ["queued", "running", "waiting"] {
        total.get_or_create(&vec![("status", s.to_owned())]).set(0);
    }
    for r in rows {
        let (name, status, n): (String, String, i64) = (r.name, r.status, r.n);
        per_runbook
            .get_or_create(&vec![("runbook", name), ("status", status.clone())])
            .set(n);
        total.get_or_create(&vec![("status", status)]).inc_by(n);
    }
    reg.register(
        "runbook_runs_active",
        "Runbook runs queued, running or waiting (approvals, manual steps, child runs) now",
        total,
    );
    reg.register(
        "runbook_runs_active_by_runbook",
        "Runbook runs queued, running or waiting now, per runbook",
        per_runbook,
    );
    Ok(())
}

/// Open incidents by severity and status (every severity, 0 included).
async fn incidents(pool: &PgPool, reg: &mut Registry) -> sqlx::Result<()> {
    let rows = sqlx::query!(
        r#"SELECT severity, status, count(*) AS "n!" FROM incidents
         WHERE status IN ('triggered', 'acknowledged', 'mitigated') GROUP BY severity, status"#
    )
    .fetch_all(pool)
    .await?;
    let open = Family::<Labels, Gauge>::default();
    for sev in opsdeck_wire::Severity::ALL {
        for st in ["triggered", "acknowledged", "mitigated"] {
            open.get_or_create(&vec![
                ("severity", sev.as_str().to_owned()),
                ("status", st.to_owned()),
            ])
            .set(0);
        }
    }
    for r in rows {
        let level: i16 = r.severity;
        let sev = match level {
            1 => "P1",
            2 => "P2",
            3 => "P3",
            _ => "P4",
        };
        open.get_or_create(&vec![("severity", sev.to_owned()), ("status", r.status)])
            .set(r.n);
    }
    reg.register(
        "incidents_open",
        "Incidents not yet resolved, by severity and status",
        open,
    );
    Ok(())
}

/// Per backup plan: the newest successful backup (size, age, time) and the
/// outcome of the newest finished one.
async fn backups(pool: &PgPool, reg: &mut Registry) -> sqlx::Result<()> {
    let rows = sqlx::query!(
        "SELECT p.name, ok.bytes, ok.finished_at, last.status AS last_status
         FROM backup_plans p
         LEFT JOIN LATERAL (
             SELECT b.bytes, b.finished_at FROM backups b
             WHERE b.plan_id = p.id AND b.status = 'succeeded' AND b.deleted_at IS NULL
             ORDER BY b.id DESC LIMIT 1) ok ON true
         LEFT JOIN LATERAL (
             SELECT b.status FROM backups b
             WHERE b.plan_id = p.id AND b.status <> 'running'
             ORDER BY b.id DESC LIMIT 1) last ON true
         ORDER BY p.name"
    )
    .fetch_all(pool)
    .await?;
    let bytes = Family::<Labels, Gauge>::default();
    let age = Family::<Labels, GaugeF>::default();
    let at = Family::<Labels, GaugeF>::default();
    let outcome = Family::<Labels, Gauge>::default();
    let now = Utc::now();
    for r in rows {
        let plan: String = r.name;
        let labels: Labels = vec![("plan", plan.clone())];
        let finished: Option<chrono::DateTime<Utc>> = r.finished_at;
        if let Some(finished) = finished {
            bytes.get_or_create(&labels).set(r.bytes.unwrap_or(0));
            age.get_or_create(&labels)
                .set((now - finished).num_milliseconds().max(0) as f64 / 1000.0);
            at.get_or_create(&labels)
                .set(finished.timestamp_millis() as f64 / 1000.0);
        }
        let last: Option<String> = r.last_status;
        for s in ["succeeded", "failed", "interrupted"] {
            outcome
                .get_or_create(&vec![("plan", plan.clone()), ("outcome", s.to_owned())])
                .set(i64::from(last.as_deref() == Some(s)));
        }
    }
    reg.register_with_unit(
        "backup_last_success_size",
        "Stored (compressed) size of the plan's newest successful backup",
        Unit::Bytes,
        bytes,
    );
    reg.register_with_unit(
        "backup_last_success_age",
        "Time since the plan's newest successful backup finished",
        Unit::Seconds,
        age,
    );
    reg.register_with_unit(
        "backup_last_success_timestamp",
        "When the plan's newest successful backup finished (Unix time)",
        Unit::Seconds,
        at,
    );
    reg.register(
        "backup_last_outcome",
        "Outcome of the plan's newest finished backup: 1 for it, 0 for the others (all 0 before the first)",
        outcome,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_render_with_route_templates_and_status_classes() {
        let m = Metrics::new();
        m.observe_http(
            &Method::GET,
            Some("/api/v1/services/{id}"),
            StatusCode::NOT_FOUND,
            Duration::from_millis(3),
        );
        m.observe_http(
            &Method::from_bytes(b"BREW").unwrap(),
            None,
            StatusCode::OK,
            Duration::ZERO,
        );
        m.run_started("service-down");
        m.run_finished("service-down", "succeeded");
        m.escalation_fired(0);
        let mut out = String::new();
        encode_registry(&mut out, &m.registry).unwrap();
        assert!(
            out.contains("# TYPE opsdeck_http_request_duration_seconds histogram"),
            "{out}"
        );
        assert!(
            out.contains(r#"opsdeck_http_request_duration_seconds_count{method="GET",route="/api/v1/services/{id}",status="4xx"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"method="other",route="(fallback)",status="2xx""#),
            "{out}"
        );
        assert!(
            out.contains(r#"opsdeck_runbook_runs_started_total{runbook="service-down"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"opsdeck_runbook_runs_finished_total{runbook="service-down",outcome="succeeded"} 1"#),
            "{out}"
        );
        assert!(
            out.contains(r#"opsdeck_escalations_fired_total{level="1"} 1"#),
            "{out}"
        );
    }
}
