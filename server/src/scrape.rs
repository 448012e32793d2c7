//! `/metrics` exposition: this process's counters ([`crate::metrics`]) plus
//! the state read at scrape time (checks from the health engine; runs,
//! incidents and backups from the database). It reads every capability, so
//! it sits on the top floor beside `http.rs`; the counters themselves live
//! low in `metrics.rs`, where any capability may count an event.
//! Protection and formats: see `metrics.rs`.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use opsdeck_wire::CheckStatus;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::error::error_response;
use crate::metrics::CONTENT_TYPE;
use crate::state::AppState;

type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, std::sync::atomic::AtomicU64>;

/// `GET /metrics` on the main listener: with an API token of scope
/// `metrics:read` (or `full`), or with the configured metrics bearer token;
/// 404 when neither kind can apply (no metrics token configured and no API
/// token given).
pub async fn main_listener(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match crate::auth::metrics_token(&state.pool, &headers).await {
        Some(Ok(())) => return scrape(&state).await,
        Some(Err(e)) => return e.into_response(),
        None => {}
    }
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
    let _ = encode_registry(&mut out, state.metrics.registry());
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
    leader.set(i64::from(state.health().is_leader()));
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
    let counts = state.health().probe_counts();
    let up = Family::<Labels, Gauge>::default();
    let status = Family::<Labels, Gauge>::default();
    let duration = Family::<Labels, GaugeF>::default();
    let last_at = Family::<Labels, GaugeF>::default();
    let probes = Family::<Labels, Counter>::default();
    let mut latest = state.health().latest_metrics();
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
