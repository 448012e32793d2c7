//! Maintenance mode and maintenance windows on a real server and Postgres:
//! toggling maintenance for chosen services (the board's mark and banner,
//! idempotent start, extend, end, validation, audit, timeline); proxy mode
//! against a real busybox httpd "proxy" on the private dockerd, whose served
//! content the actuation swaps and restores byte for byte (checked over HTTP
//! and with `docker exec cat`), a failure midway rolled back, overlapping
//! periods placing the page once; runbook mode; windows (weekly occurrences
//! in a time zone across a DST change, an occurrence in progress becoming a
//! period that ends by itself); alarms suppressed during maintenance (health,
//! Alertmanager, escalation on a controllable clock) and resumed after; and
//! the `maintenance.enable` approval policy.

use std::collections::HashMap;
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, StartContainerOptions};
use bollard::Docker;
use chrono::{
    DateTime, Datelike, Duration as ChronoDuration, NaiveDate, NaiveDateTime, SecondsFormat,
    TimeZone, Timelike, Utc, Weekday,
};
use futures::StreamExt;
use opsdeck::incidents::escalation;
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::runbooks::{pending_approval, wait_run, wait_status};
use opsdeck_e2e::flows::services::board;
use opsdeck_e2e::proc::free_port;
use opsdeck_e2e::receiver::Receiver;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{unique_project, IMAGE};
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release};
use opsdeck_wire::{
    Actuator, Approval, AuditEntry, AuditPage, Check, IncidentList, MaintenancePeriod,
    MaintenancePeriodDetail, MaintenanceScope, MaintenanceStack, MaintenanceWindow, Outcome,
    PeriodStatus, Role, Service, ServiceHealth, ServiceOverview, ServiceStatus, StatusBoard,
    WindowPreview,
};
use serde_json::{json, Value};
use sqlx::PgPool;

mod alarms;
mod approval;
mod proxy;
mod runbook_mode;
mod toggle;
mod windows;

const WAIT: Duration = Duration::from_secs(60);
const DAY: u64 = 86_400;
const APP_PAGE: &str = "<h1>MosAIc app</h1>\n";
const APP_CONF: &str = "# app config\n";

// ------------------------------------------------------------------ helpers

/// `t` without its fraction of a second (what Postgres and JSON keep exactly).
fn whole(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).expect("a valid time")
}

fn in_minutes(m: i64) -> DateTime<Utc> {
    whole(Utc::now() + ChronoDuration::minutes(m))
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn services_scope(names: &[&str]) -> Value {
    json!({"kind": "services", "services": names})
}

fn stack_scope(stack: &str) -> Value {
    json!({"kind": "stack", "stack": stack})
}

async fn start_raw(
    api: &Api,
    scope: Value,
    reason: &str,
    until: DateTime<Utc>,
) -> reqwest::Response {
    api.post(
        "/api/v1/maintenance/periods",
        &json!({"scope": scope, "reason": reason, "until": rfc3339(until)}),
    )
    .await
}

/// Starts maintenance and returns the answer's status and period.
async fn start(
    api: &Api,
    scope: Value,
    reason: &str,
    until: DateTime<Utc>,
) -> (u16, MaintenancePeriod) {
    let res = start_raw(api, scope, reason, until).await;
    let status = res.status().as_u16();
    let p = ok_json(res, "starting maintenance").await;
    (status, p)
}

async fn detail(api: &Api, id: i64) -> MaintenancePeriodDetail {
    api.json(&format!("/api/v1/maintenance/periods/{id}")).await
}

fn describe(d: &MaintenancePeriodDetail) -> String {
    format!(
        "status {:?}, error {:?}, timeline {:?}",
        d.period.status,
        d.period.error,
        d.timeline
            .iter()
            .map(|e| format!("{}: {}", e.kind, e.message))
            .collect::<Vec<_>>()
    )
}

/// Polls the period until it has `want`.
async fn wait_period(api: &Api, id: i64, want: PeriodStatus) -> MaintenancePeriodDetail {
    poll(WAIT, &format!("period {id} {want:?}"), async || {
        let d = detail(api, id).await;
        if d.period.status == want {
            Ok(d)
        } else {
            Err(describe(&d))
        }
    })
    .await
}

async fn end(api: &Api, id: i64, note: &str) -> MaintenancePeriod {
    let res = api
        .post(
            &format!("/api/v1/maintenance/periods/{id}/end"),
            &json!({ "note": note }),
        )
        .await;
    assert_eq!(res.status(), 202, "ending period {id}");
    ok_json(res, "ending maintenance").await
}

async fn periods(api: &Api, status: &str) -> Vec<MaintenancePeriod> {
    api.json(&format!("/api/v1/maintenance/periods?status={status}"))
        .await
}

fn on_board<'a>(b: &'a StatusBoard, name: &str) -> &'a ServiceStatus {
    b.services
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("{name} is not on the board"))
}

/// Whether every one of `names` is on the board (a new service shows up
/// with the board's next refresh).
fn listed(b: &StatusBoard, names: &[&str]) -> bool {
    names
        .iter()
        .all(|n| b.services.iter().any(|s| s.name == *n))
}

/// Polls the board until `want` holds.
async fn wait_board(api: &Api, what: &str, want: impl Fn(&StatusBoard) -> bool) -> StatusBoard {
    poll(WAIT, what, async || {
        let b = board(api).await;
        if want(&b) {
            Ok(b)
        } else {
            Err(format!(
                "{:?}; banners {:?}",
                b.services
                    .iter()
                    .map(|s| (s.name.clone(), s.health, s.maintenance.clone()))
                    .collect::<Vec<_>>(),
                b.maintenance
            ))
        }
    })
    .await
}

async fn service(admin: &Api, body: Value) -> Service {
    ok_json(
        admin.post("/api/v1/services", &body).await,
        "creating a service",
    )
    .await
}

async fn http_check(api: &Api, service_id: i64, url: &str) -> Check {
    ok_json(
        api.post(
            "/api/v1/checks",
            &json!({"service_id": service_id, "name": "http", "interval_s": DAY,
                    "timeout_ms": 2000, "fail_after": 1, "recover_after": 1,
                    "spec": {"kind": "http", "url": url}}),
        )
        .await,
        "adding a check",
    )
    .await
}

async fn run_check(api: &Api, id: i64) {
    let res = api
        .post(&format!("/api/v1/checks/{id}/run"), &json!({}))
        .await;
    assert_eq!(res.status(), 200, "running check {id}");
}

/// The audit entries whose action starts with `maintenance.` (as an admin).
async fn maintenance_audit(admin: &Api) -> Vec<AuditEntry> {
    let page: AuditPage = admin
        .json("/api/v1/audit?action=maintenance.&limit=200")
        .await;
    page.entries
}

/// Successful entries of `action`.
fn count(entries: &[AuditEntry], action: &str) -> usize {
    entries
        .iter()
        .filter(|e| e.action == action && e.outcome == Outcome::Success)
        .count()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

async fn put_actuator(admin: &Api, stack: &str, body: &Value) -> Actuator {
    ok_json(
        admin
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/maintenance/actuators/{stack}"),
                body,
            )
            .await,
        "setting the actuator",
    )
    .await
}

/// A `once` window over `scope` from `starts_at` to `ends_at`.
fn once_window(
    title: &str,
    scope: Value,
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
) -> Value {
    json!({"title": title, "reason": "planned work", "scope": scope,
           "starts_at": rfc3339(starts_at), "ends_at": rfc3339(ends_at),
           "repeat": "once", "time_zone": "UTC"})
}

async fn create_window(api: &Api, body: &Value) -> MaintenanceWindow {
    let res = api.post("/api/v1/maintenance/windows", body).await;
    assert_eq!(res.status(), 201, "creating a window");
    ok_json(res, "creating a window").await
}

/// Polls until the window has a period, and returns it.
async fn window_period(api: &Api, window: i64) -> MaintenancePeriod {
    poll(Duration::from_secs(20), "the window's period", async || {
        let all = periods(api, "all").await;
        all.iter()
            .find(|p| p.window_id == Some(window))
            .cloned()
            .ok_or(format!(
                "{:?}",
                all.iter().map(|p| (p.id, p.window_id)).collect::<Vec<_>>()
            ))
    })
    .await
}

/// No mutating request succeeded without its own audit entry.
async fn assert_every_request_audited(admin: &Api) {
    let page: AuditPage = admin.json("/api/v1/audit?action=request.unaudited").await;
    assert!(page.entries.is_empty(), "{:#?}", page.entries);
}
