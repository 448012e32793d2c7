//! `/metrics`: Opsdeck's figures in the OpenMetrics text format (the
//! standardised Prometheus exposition format; Prometheus negotiates it).
//!
//! Two kinds of figures, built with `prometheus-client`:
//! - **events counted by this process**, in a [`Metrics`] registry per
//!   `AppState` (servers in one test process never share counters): HTTP
//!   request latencies per route template and status class, runbook runs
//!   started and finished by outcome, escalation levels fired, SLA breaches
//!   marked, probes per check and result, containers read by log searches
//!   (from the log file or through the API), and per background task its
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

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};
use sqlx::PgPool;

/// The answer's content type.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds (seconds) of the HTTP latency buckets.
const HTTP_BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

type Labels = Vec<(&'static str, String)>;

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
    log_sources: Family<Labels, Counter>,
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
        let log_sources = Family::<Labels, Counter>::default();
        registry.register(
            "log_search_sources",
            "Containers read by log searches, by how: file (the engine's json-file log read on this machine) or api (the engine's logs API)",
            log_sources.clone(),
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
            log_sources,
            tasks,
        }
    }

    /// The counters' registry, for the exposition (`scrape.rs`).
    pub fn registry(&self) -> &Registry {
        &self.registry
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

    /// A log search read one container (`via`: `file` or `api`).
    pub fn log_source_read(&self, via: &'static str) {
        self.log_sources
            .get_or_create(&vec![("via", via.to_owned())])
            .inc();
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
pub async fn track_http(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned());
    let res = next.run(req).await;
    metrics.observe_http(&method, route.as_deref(), res.status(), started.elapsed());
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use prometheus_client::encoding::text::encode_registry;

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
