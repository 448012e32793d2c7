//! Health checks and the live status board.
//!
//! - [`engine`]: the [`HealthHub`] that schedules probes, damps flapping,
//!   records state changes and rollups, and keeps the status board.
//! - [`probe`]: one function per check kind.
//! - [`damping`]: the flap-damping and "sustained for" state machines.
//! - [`status`]: the dependency-aware status model.
//! - [`report`]: the daily check report; [`public`]: the public status page.
//! - This module: validation of check definitions at the boundary and the
//!   `/api/v1/checks`, `/api/v1/status` and heartbeat routes.
//!
//! Roles: viewers read checks, history and the board; operators create,
//! change, delete and run checks and choose what the public page shows;
//! admins read engine figures and change retention and report settings.
//! Database passwords are write-only (`checks.secret`), never returned,
//! never logged, never in an audit entry. Heartbeat tokens are capability
//! URLs shown to operators only; a heartbeat ping is recorded as a probe
//! result (rollups, state changes), not as an audit entry.

pub mod damping;
pub mod engine;
pub mod probe;
pub mod public;
pub mod report;
pub mod status;

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures::Stream;
use opsdeck_wire::{
    Check, CheckEngineStats, CheckEvent, CheckHistory, CheckInput, CheckSpec, CheckStatus,
    HealthSettings, HttpCheck, ProbeResult, PublicStatusInput, Resource, Rollup, ServiceStatus,
    StatusBoard, Uptime,
};
use serde::Deserialize;
use serde_json::json;
use sqlx::{PgPool, Row};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use engine::HealthHub;

use crate::auth::{Admin, Auth, Operator, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

/// Default settings of a new check.
pub const DEFAULT_INTERVAL_S: u32 = 60;
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
pub const DEFAULT_FAIL_AFTER: u32 = 2;
pub const DEFAULT_RECOVER_AFTER: u32 = 2;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(run))
        .routes(routes!(history))
        .routes(routes!(engine_stats))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(board))
        .routes(routes!(events))
        .routes(routes!(set_public))
        .merge(report::router())
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
            check_pct("host", c.warning_pct, c.critical_pct, 100.0)?;
            match c.resource {
                Resource::Disk | Resource::Inodes => {
                    let p = c.path.get_or_insert_with(|| "/".into());
                    if !p.starts_with('/') || p.contains('\0') {
                        return Err(bad("path", "an absolute path on the Opsdeck host"));
                    }
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

/// A complete, valid definition (after merging an update).
struct Valid {
    service_id: Option<i64>,
    name: String,
    spec: CheckSpec,
    interval_s: u32,
    timeout_ms: u32,
    fail_after: u32,
    recover_after: u32,
    enabled: bool,
}

fn validate_def(v: &mut Valid) -> ApiResult<()> {
    v.name = v.name.trim().to_owned();
    if v.name.is_empty() || v.name.chars().count() > 100 || v.name.chars().any(char::is_control) {
        return Err(ApiError::invalid_field(
            "name",
            "1–100 characters, no control characters",
        ));
    }
    validate_spec(&mut v.spec).map_err(ApiError::from_validation)?;
    if !(5..=86_400).contains(&v.interval_s) {
        return Err(ApiError::invalid_field("interval_s", "5 s to 1 day"));
    }
    if !(100..=120_000).contains(&v.timeout_ms) {
        return Err(ApiError::invalid_field("timeout_ms", "100 ms to 120 s"));
    }
    if v.timeout_ms as u64 > v.interval_s as u64 * 1000 {
        return Err(ApiError::invalid_field(
            "timeout_ms",
            "must not exceed the interval (probes of one check never overlap)",
        ));
    }
    for (f, n) in [
        ("fail_after", v.fail_after),
        ("recover_after", v.recover_after),
    ] {
        if !(1..=20).contains(&n) {
            return Err(ApiError::invalid_field(f, "1–20"));
        }
    }
    let needs_service = matches!(
        v.spec,
        CheckSpec::Container(_) | CheckSpec::ContainerResources(_)
    );
    if needs_service && v.service_id.is_none() {
        return Err(ApiError::BadRequest(format!(
            "service_id: a {} check belongs to a service",
            v.spec.kind()
        )));
    }
    Ok(())
}

// ------------------------------------------------------------------ reading

struct Row_ {
    id: i64,
    service_id: Option<i64>,
    service: Option<String>,
    name: String,
    spec: serde_json::Value,
    has_secret: bool,
    token: Option<String>,
    interval_s: i32,
    timeout_ms: i32,
    fail_after: i32,
    recover_after: i32,
    enabled: bool,
    status: String,
    status_since: Option<DateTime<Utc>>,
    last_result: Option<serde_json::Value>,
    created_at: DateTime<Utc>,
}

const SELECT: &str = r#"SELECT c.id, c.service_id, s.name AS service, c.name, c.spec,
    c.secret IS NOT NULL AS has_secret, c.heartbeat_token, c.interval_s, c.timeout_ms,
    c.fail_after, c.recover_after, c.enabled, c.status, c.status_since, c.last_result, c.created_at
    FROM checks c LEFT JOIN services s ON s.id = c.service_id"#;

fn row_of(r: sqlx::postgres::PgRow) -> Row_ {
    Row_ {
        id: r.get("id"),
        service_id: r.get("service_id"),
        service: r.get("service"),
        name: r.get("name"),
        spec: r.get("spec"),
        has_secret: r.get("has_secret"),
        token: r.get("heartbeat_token"),
        interval_s: r.get("interval_s"),
        timeout_ms: r.get("timeout_ms"),
        fail_after: r.get("fail_after"),
        recover_after: r.get("recover_after"),
        enabled: r.get("enabled"),
        status: r.get("status"),
        status_since: r.get("status_since"),
        last_result: r.get("last_result"),
        created_at: r.get("created_at"),
    }
}

fn to_wire(hub: &HealthHub, r: Row_, show_token: bool) -> Option<Check> {
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
        heartbeat_path: r
            .token
            .filter(|_| show_token)
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
    let sql = format!(
        "{SELECT} WHERE $1::bigint IS NULL OR COALESCE(c.service_id, 0) = $1 ORDER BY s.name NULLS FIRST, c.name"
    );
    let rows = sqlx::query(&sql).bind(service_id).fetch_all(pool).await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| to_wire(hub, row_of(r), show_token))
        .collect())
}

async fn load_one(state: &AppState, id: i64, show_token: bool) -> ApiResult<Check> {
    let sql = format!("{SELECT} WHERE c.id = $1");
    let row = sqlx::query(&sql)
        .bind(id)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("check {id}")))?;
    to_wire(&state.health, row_of(row), show_token)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("stored check {id} does not parse")))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// Only the checks of this service; `0`: host checks only.
    pub service_id: Option<i64>,
}

/// Checks with their settled state and latest result.
#[utoipa::path(get, path = "/api/v1/checks", tag = "checks", params(ListParams),
    responses((status = 200, body = Vec<Check>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<Vec<Check>>> {
    let show = auth.principal.role >= opsdeck_wire::Role::Operator;
    Ok(Json(
        load(&state.pool, &state.health, q.service_id, show).await?,
    ))
}

/// One check.
#[utoipa::path(get, path = "/api/v1/checks/{id}", tag = "checks",
    responses((status = 200, body = Check), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_one(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Check>> {
    let show = auth.principal.role >= opsdeck_wire::Role::Operator;
    Ok(Json(load_one(&state, id, show).await?))
}

// ------------------------------------------------------------------ writing

fn audit_params(v: &Valid) -> serde_json::Value {
    json!({
        "service_id": v.service_id, "name": v.name, "kind": v.spec.kind(), "spec": v.spec,
        "interval_s": v.interval_s, "timeout_ms": v.timeout_ms,
        "fail_after": v.fail_after, "recover_after": v.recover_after, "enabled": v.enabled,
    })
}

fn clean_password(p: Option<String>) -> Option<Option<String>> {
    p.map(|p| if p.is_empty() { None } else { Some(p) })
}

/// Add a check.
#[utoipa::path(post, path = "/api/v1/checks", tag = "checks", request_body = CheckInput,
    responses((status = 201, body = Check), (status = 400), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn create(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(input): Json<CheckInput>,
) -> ApiResult<(StatusCode, Json<Check>)> {
    let spec = input
        .spec
        .ok_or_else(|| ApiError::BadRequest("spec: required".into()))?;
    let heartbeat = matches!(spec, CheckSpec::Heartbeat(_));
    let one = if heartbeat { 1 } else { DEFAULT_FAIL_AFTER };
    let mut v = Valid {
        service_id: input.service_id,
        name: input.name.unwrap_or_default(),
        interval_s: input.interval_s.unwrap_or(DEFAULT_INTERVAL_S),
        timeout_ms: input.timeout_ms.unwrap_or(
            DEFAULT_TIMEOUT_MS.min(input.interval_s.unwrap_or(DEFAULT_INTERVAL_S) * 1000),
        ),
        fail_after: input.fail_after.unwrap_or(one),
        recover_after: input.recover_after.unwrap_or(if heartbeat {
            1
        } else {
            DEFAULT_RECOVER_AFTER
        }),
        enabled: input.enabled.unwrap_or(true),
        spec,
    };
    validate_def(&mut v)?;
    let password = clean_password(input.password).flatten();
    let token = heartbeat.then(crate::auth::random_token);
    let mut tx = state.pool.begin().await?;
    if let Some(sid) = v.service_id {
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM services WHERE id = $1")
            .bind(sid)
            .fetch_optional(&mut *tx)
            .await?;
        exists.ok_or_else(|| ApiError::BadRequest(format!("service_id: no service {sid}")))?;
    }
    let id: i64 = sqlx::query_scalar(
        r#"INSERT INTO checks (service_id, name, kind, spec, secret, heartbeat_token, interval_s,
                               timeout_ms, fail_after, recover_after, enabled)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) RETURNING id"#,
    )
    .bind(v.service_id)
    .bind(&v.name)
    .bind(v.spec.kind())
    .bind(serde_json::to_value(&v.spec).map_err(anyhow::Error::from)?)
    .bind(&password)
    .bind(&token)
    .bind(v.interval_s as i32)
    .bind(v.timeout_ms as i32)
    .bind(v.fail_after as i32)
    .bind(v.recover_after as i32)
    .bind(v.enabled)
    .fetch_one(&mut *tx)
    .await
    .map_err(|e| unique_name(e, &v.name))?;
    let mut params = audit_params(&v);
    params["id"] = json!(id);
    params["password_set"] = json!(password.is_some());
    ctx.audit(
        &mut tx,
        &auth.principal,
        "check.create",
        Some(format!("check:{id}")),
        params,
    )
    .await?;
    ctx.commit(tx).await?;
    state.health.reload_check(id).await?;
    crate::fanout::publish(&state, crate::fanout::Change::Check(id)).await;
    Ok((StatusCode::CREATED, Json(load_one(&state, id, true).await?)))
}

fn unique_name(e: sqlx::Error, name: &str) -> ApiError {
    if let sqlx::Error::Database(d) = &e {
        if d.constraint() == Some("checks_name_key") {
            return ApiError::Conflict(format!("a check named \"{name}\" already exists here"));
        }
    }
    e.into()
}

/// Change a check (only the fields given). `password: ""` removes it.
#[utoipa::path(patch, path = "/api/v1/checks/{id}", tag = "checks", request_body = CheckInput,
    responses((status = 200, body = Check), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn update(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(input): Json<CheckInput>,
) -> ApiResult<Json<Check>> {
    let cur = load_one(&state, id, true).await?;
    if let Some(spec) = &input.spec {
        if spec.kind() != cur.spec.kind() {
            return Err(ApiError::BadRequest(
                "spec: the kind of a check cannot change; add a new check".into(),
            ));
        }
    }
    if input.service_id.is_some() && input.service_id != cur.service_id {
        return Err(ApiError::BadRequest(
            "service_id: a check cannot move to another service".into(),
        ));
    }
    let mut v = Valid {
        service_id: cur.service_id,
        name: input.name.unwrap_or(cur.name),
        spec: input.spec.unwrap_or(cur.spec),
        interval_s: input.interval_s.unwrap_or(cur.interval_s),
        timeout_ms: input.timeout_ms.unwrap_or(cur.timeout_ms),
        fail_after: input.fail_after.unwrap_or(cur.fail_after),
        recover_after: input.recover_after.unwrap_or(cur.recover_after),
        enabled: input.enabled.unwrap_or(cur.enabled),
    };
    validate_def(&mut v)?;
    let password = clean_password(input.password);
    let mut tx = state.pool.begin().await?;
    sqlx::query(
        r#"UPDATE checks SET name = $2, spec = $3, interval_s = $4, timeout_ms = $5, fail_after = $6,
                  recover_after = $7, enabled = $8,
                  secret = CASE WHEN $9 THEN $10 ELSE secret END, updated_at = now()
           WHERE id = $1"#,
    )
    .bind(id)
    .bind(&v.name)
    .bind(serde_json::to_value(&v.spec).map_err(anyhow::Error::from)?)
    .bind(v.interval_s as i32)
    .bind(v.timeout_ms as i32)
    .bind(v.fail_after as i32)
    .bind(v.recover_after as i32)
    .bind(v.enabled)
    .bind(password.is_some())
    .bind(password.clone().flatten())
    .execute(&mut *tx)
    .await
    .map_err(|e| unique_name(e, &v.name))?;
    let mut params = audit_params(&v);
    if let Some(p) = &password {
        params["password_set"] = json!(p.is_some());
    }
    ctx.audit(
        &mut tx,
        &auth.principal,
        "check.update",
        Some(format!("check:{id}")),
        params,
    )
    .await?;
    ctx.commit(tx).await?;
    state.health.reload_check(id).await?;
    crate::fanout::publish(&state, crate::fanout::Change::Check(id)).await;
    Ok(Json(load_one(&state, id, true).await?))
}

/// Delete a check with its history.
#[utoipa::path(delete, path = "/api/v1/checks/{id}", tag = "checks",
    responses((status = 204), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn delete(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let name: Option<String> =
        sqlx::query_scalar("DELETE FROM checks WHERE id = $1 RETURNING name")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let name = name.ok_or_else(|| ApiError::NotFound(format!("check {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "check.delete",
        Some(format!("check:{id}")),
        json!({"name": name}),
    )
    .await?;
    ctx.commit(tx).await?;
    state.health.reload_check(id).await?;
    crate::fanout::publish(&state, crate::fanout::Change::Check(id)).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Probe now and record the result.
#[utoipa::path(post, path = "/api/v1/checks/{id}/run", tag = "checks",
    responses((status = 200, body = ProbeResult), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ProbeResult>> {
    let result = state
        .health
        .run_now(id)
        .await
        .ok_or_else(|| ApiError::NotFound(format!("check {id}")))?;
    let mut tx = state.pool.begin().await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "check.run",
        Some(format!("check:{id}")),
        json!({"status": result.status, "message": result.message}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(result))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HistoryParams {
    /// `day` (per-minute rollups, default), `week` or `month` (hourly).
    pub range: Option<String>,
}

/// Rollups, state changes and uptime of a check.
#[utoipa::path(get, path = "/api/v1/checks/{id}/history", tag = "checks", params(HistoryParams),
    responses((status = 200, body = CheckHistory), (status = 400), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn history(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<HistoryParams>,
) -> ApiResult<Json<CheckHistory>> {
    let (table, days, resolution) = match q.range.as_deref().unwrap_or("day") {
        "day" => ("check_rollups_minute", 1, "minute"),
        "week" => ("check_rollups_hour", 7, "hour"),
        "month" => ("check_rollups_hour", 30, "hour"),
        other => {
            return Err(ApiError::BadRequest(format!(
                "range: day, week or month, not {other:?}"
            )))
        }
    };
    let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM checks WHERE id = $1")
        .bind(id)
        .fetch_optional(&state.pool)
        .await?;
    exists.ok_or_else(|| ApiError::NotFound(format!("check {id}")))?;
    // Include what is still in memory (the current minute) by flushing first? No:
    // history shows finished minutes; the live value is on the check itself.
    let sql = format!(
        r#"SELECT bucket, probes, ok, warning, critical, latency_min, latency_max, latency_sum, latency_count
           FROM {table} WHERE check_id = $1 AND bucket > now() - make_interval(days => $2)
           ORDER BY bucket"#
    );
    let rollups = sqlx::query(&sql)
        .bind(id)
        .bind(days)
        .fetch_all(&state.pool)
        .await?
        .into_iter()
        .map(|r| {
            let count: i32 = r.get("latency_count");
            let sum: f64 = r.get("latency_sum");
            Rollup {
                at: r.get("bucket"),
                probes: r.get::<i32, _>("probes") as u32,
                ok: r.get::<i32, _>("ok") as u32,
                warning: r.get::<i32, _>("warning") as u32,
                critical: r.get::<i32, _>("critical") as u32,
                latency_min_ms: r.get("latency_min"),
                latency_avg_ms: (count > 0).then(|| sum / count as f64),
                latency_max_ms: r.get("latency_max"),
            }
        })
        .collect();
    let events = sqlx::query(
        r#"SELECT id, check_id, at, from_status, to_status, message FROM check_events
           WHERE check_id = $1 AND at > now() - make_interval(days => $2)
           ORDER BY at DESC, id DESC LIMIT 500"#,
    )
    .bind(id)
    .bind(days)
    .fetch_all(&state.pool)
    .await?
    .into_iter()
    .map(|r| CheckEvent {
        id: r.get("id"),
        check_id: r.get("check_id"),
        at: r.get("at"),
        from: CheckStatus::parse(r.get("from_status")).unwrap_or_default(),
        to: CheckStatus::parse(r.get("to_status")).unwrap_or_default(),
        message: r.get("message"),
    })
    .collect();
    let uptime = uptime_of(&state.pool, id).await?;
    Ok(Json(CheckHistory {
        check_id: id,
        resolution: resolution.into(),
        rollups,
        events,
        uptime,
    }))
}

/// Uptime over 24 h / 7 d / 30 d from the hourly rollups.
pub async fn uptime_of(pool: &PgPool, id: i64) -> sqlx::Result<Uptime> {
    let r = sqlx::query(
        r#"SELECT
             sum(ok + warning) FILTER (WHERE bucket > now() - interval '24 hours')::float8 AS g1,
             sum(probes) FILTER (WHERE bucket > now() - interval '24 hours')::float8 AS t1,
             sum(ok + warning) FILTER (WHERE bucket > now() - interval '7 days')::float8 AS g7,
             sum(probes) FILTER (WHERE bucket > now() - interval '7 days')::float8 AS t7,
             sum(ok + warning)::float8 AS g30, sum(probes)::float8 AS t30
           FROM check_rollups_hour WHERE check_id = $1 AND bucket > now() - interval '30 days'"#,
    )
    .bind(id)
    .fetch_one(pool)
    .await?;
    let pct = |g: &str, t: &str| -> Option<f64> {
        let total: Option<f64> = r.get(t);
        let good: Option<f64> = r.get(g);
        total
            .filter(|t| *t > 0.0)
            .map(|t| 100.0 * good.unwrap_or(0.0) / t)
    };
    Ok(Uptime {
        day: pct("g1", "t1"),
        week: pct("g7", "t7"),
        month: pct("g30", "t30"),
    })
}

/// Figures of the check engine.
#[utoipa::path(get, path = "/api/v1/checks/engine", tag = "checks",
    responses((status = 200, body = CheckEngineStats)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn engine_stats(_auth: Auth<Admin>, State(state): State<AppState>) -> Json<CheckEngineStats> {
    Json(state.health.stats())
}

pub async fn settings(pool: &PgPool) -> sqlx::Result<HealthSettings> {
    let r = sqlx::query(
        "SELECT minute_retention_days, hour_retention_days, event_retention_days, report_time FROM health_settings",
    )
    .fetch_one(pool)
    .await?;
    Ok(HealthSettings {
        minute_retention_days: r.get::<i32, _>("minute_retention_days") as u32,
        hour_retention_days: r.get::<i32, _>("hour_retention_days") as u32,
        event_retention_days: r.get::<i32, _>("event_retention_days") as u32,
        report_time: r.get("report_time"),
    })
}

/// Retention of rollups and events; time of the daily report.
#[utoipa::path(get, path = "/api/v1/checks/settings", tag = "checks",
    responses((status = 200, body = HealthSettings)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn get_settings(
    _auth: Auth<Admin>,
    State(state): State<AppState>,
) -> ApiResult<Json<HealthSettings>> {
    Ok(Json(settings(&state.pool).await?))
}

/// Change retention and the report time.
#[utoipa::path(put, path = "/api/v1/checks/settings", tag = "checks", request_body = HealthSettings,
    responses((status = 200, body = HealthSettings), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn put_settings(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(s): Json<HealthSettings>,
) -> ApiResult<Json<HealthSettings>> {
    if !(1..=31).contains(&s.minute_retention_days) {
        return Err(ApiError::BadRequest("minute_retention_days: 1–31".into()));
    }
    for (f, v) in [
        ("hour_retention_days", s.hour_retention_days),
        ("event_retention_days", s.event_retention_days),
    ] {
        if !(7..=3660).contains(&v) {
            return Err(ApiError::BadRequest(format!("{f}: 7–3660")));
        }
    }
    if chrono::NaiveTime::parse_from_str(&s.report_time, "%H:%M").is_err()
        || s.report_time.len() != 5
    {
        return Err(ApiError::BadRequest(
            "report_time: HH:MM (24 h, UTC)".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    sqlx::query(
        r#"UPDATE health_settings SET minute_retention_days = $1, hour_retention_days = $2,
                  event_retention_days = $3, report_time = $4"#,
    )
    .bind(s.minute_retention_days as i32)
    .bind(s.hour_retention_days as i32)
    .bind(s.event_retention_days as i32)
    .bind(&s.report_time)
    .execute(&mut *tx)
    .await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "health.settings",
        None,
        serde_json::to_value(&s).map_err(anyhow::Error::from)?,
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(settings(&state.pool).await?))
}

/// Deletes rollups and events older than the retention settings.
pub async fn prune(pool: &PgPool) -> sqlx::Result<u64> {
    let s = settings(pool).await?;
    let mut n = 0;
    for (table, col, days) in [
        ("check_rollups_minute", "bucket", s.minute_retention_days),
        ("check_rollups_hour", "bucket", s.hour_retention_days),
        ("check_events", "at", s.event_retention_days),
    ] {
        let sql = format!("DELETE FROM {table} WHERE {col} < now() - make_interval(days => $1)");
        n += sqlx::query(&sql)
            .bind(days as i32)
            .execute(pool)
            .await?
            .rows_affected();
    }
    Ok(n)
}

// ------------------------------------------------------------------ board

/// The dashboard's data: every service's status, host checks, engines.
#[utoipa::path(get, path = "/api/v1/status", tag = "status",
    responses((status = 200, body = StatusBoard)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn board(_auth: Auth<Viewer>, State(state): State<AppState>) -> ApiResult<Response> {
    let json =
        |b: axum::body::Bytes| ([(header::CONTENT_TYPE, "application/json")], b).into_response();
    if let Some(b) = state.health.cached_board() {
        return Ok(json(b));
    }
    let (version, services) = state.health.statuses();
    let engines = crate::engines::list_wire(&state).await?;
    let overall = status::overall(services.iter().map(|s| (s.tier, s.health)));
    let mut counts = std::collections::BTreeMap::new();
    for s in &services {
        *counts.entry(s.health.as_str().to_owned()).or_insert(0) += 1;
    }
    let board = StatusBoard {
        overall,
        counts,
        services,
        host_checks: state.health.host_checks(),
        engines,
        version,
        generated_at: Utc::now(),
        maintenance: state.health.maintenance_banners(),
    };
    let body = axum::body::Bytes::from(serde_json::to_vec(&board).map_err(anyhow::Error::from)?);
    state.health.store_board(version, body.clone());
    Ok(json(body))
}

/// Live status changes: SSE `status` events (data: StatusChange JSON) as
/// services change; `resync` when this client fell behind, and once a
/// minute when sparklines and uptime moved on (refetch the board).
#[utoipa::path(get, path = "/api/v1/status/events", tag = "status",
    responses((status = 200, description = "text/event-stream of `status` events")),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn events(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.health.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        use tokio::sync::broadcast::error::RecvError;
        let ev = match rx.recv().await {
            Ok(engine::Push::Change(bytes)) => Event::default()
                .event("status")
                .data(String::from_utf8_lossy(&bytes)),
            Ok(engine::Push::Refresh) => Event::default().event("resync").data("minute"),
            Err(RecvError::Lagged(_)) => Event::default().event("resync").data("lagged"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(ev), rx))
    });
    let stream = futures::StreamExt::take_until(stream, state.engines.closed());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// Show a service on the public status page, or hide it.
#[utoipa::path(put, path = "/api/v1/services/{id}/public", tag = "status", request_body = PublicStatusInput,
    responses((status = 200, body = ServiceStatus), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn set_public(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(input): Json<PublicStatusInput>,
) -> ApiResult<Json<ServiceStatus>> {
    let name = input
        .public_name
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if name
        .as_ref()
        .is_some_and(|n| n.chars().count() > 80 || n.chars().any(char::is_control))
    {
        return Err(ApiError::BadRequest(
            "public_name: at most 80 characters".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let found: Option<String> = sqlx::query_scalar(
        "UPDATE services SET public_status = $2, public_name = $3 WHERE id = $1 RETURNING name",
    )
    .bind(id)
    .bind(input.public)
    .bind(&name)
    .fetch_optional(&mut *tx)
    .await?;
    let service = found.ok_or_else(|| ApiError::NotFound(format!("service {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "service.public",
        Some(format!("service:{service}")),
        json!({"public": input.public, "public_name": name}),
    )
    .await?;
    ctx.commit(tx).await?;
    state.health.refresh_inventory().await?;
    state
        .health
        .status_of(id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))
}

/// `GET|POST /api/v1/heartbeat/{token}`: a job reports in. No session: the
/// token is the credential. Mounted outside the audit and CSRF layers (see
/// the module docs).
pub async fn heartbeat(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    if token.len() > 128
        || !token
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return (StatusCode::NOT_FOUND, "unknown heartbeat\n").into_response();
    }
    match state.health.heartbeat(&token).await {
        Ok(true) => (StatusCode::OK, "OK\n").into_response(),
        Ok(false) => (StatusCode::NOT_FOUND, "unknown heartbeat\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "recording a heartbeat failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again\n").into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsdeck_wire::{HostCheck, MysqlCheck, PostgresCheck, RedisCheck};

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
