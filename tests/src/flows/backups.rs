//! Backup flows through the API: Postgres sources (a service with a
//! Postgres check), local targets, plans, running a plan and waiting for
//! its run, the catalog's backups and the incidents it opens.

use std::path::Path;

use opsdeck_wire::{
    BackupDetail, BackupPlan, BackupRunStarted, BackupSummary, BackupTarget, Check, IncidentList,
    Run, RunStatus, Service,
};
use serde_json::{json, Value};

use crate::fixtures::tcp_to_cluster;
use crate::flows::runbooks::wait_run;
use crate::server::Api;
use crate::util::ok_json;

/// A service `name` with a Postgres check on `url`.
pub async fn pg_service(admin: &Api, name: &str, url: &str, password: Option<&str>) -> Service {
    db_service(admin, name, "postgres", url, password).await
}

/// A critical service `name` with a database check of `kind` (`postgres`,
/// `mysql`) on `url`, probed once a day (backups use its connection).
pub async fn db_service(
    admin: &Api,
    name: &str,
    kind: &str,
    url: &str,
    password: Option<&str>,
) -> Service {
    let svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": name, "tier": "critical", "requires": []}),
            )
            .await,
        "create service",
    )
    .await;
    let _: Check = ok_json(
        admin
            .post(
                "/api/v1/checks",
                &json!({"name": format!("{name}-db"), "service_id": svc.id,
                        "interval_s": 86_400, "timeout_ms": 5000,
                        "spec": {"kind": kind, "url": url}, "password": password}),
            )
            .await,
        "create check",
    )
    .await;
    svc
}

/// A service `name` whose Postgres check is database `db` of the test
/// cluster, as user `user`.
pub async fn cluster_service(admin: &Api, name: &str, user: &str, db: &str) -> Service {
    let url = format!(
        "postgres://{user}@127.0.0.1:{}/{db}",
        tcp_to_cluster().await
    );
    pg_service(admin, name, &url, None).await
}

pub async fn created<T: serde::de::DeserializeOwned>(res: reqwest::Response, what: &str) -> T {
    assert_eq!(res.status(), 201, "{what}: status");
    ok_json(res, what).await
}

pub async fn create_target(admin: &Api, name: &str, path: &Path) -> BackupTarget {
    created(
        admin
            .post(
                "/api/v1/backup-targets",
                &json!({"name": name, "kind": "local", "path": path}),
            )
            .await,
        "create target",
    )
    .await
}

pub async fn create_plan(admin: &Api, body: Value) -> BackupPlan {
    created(
        admin.post("/api/v1/backup-plans", &body).await,
        "create plan",
    )
    .await
}

pub fn postgres_plan(name: &str, service: &str, dbs: &[&str], target: &str) -> Value {
    json!({"name": name, "target": target,
           "sources": [{"kind": "postgres", "service": service, "databases": dbs}]})
}

/// POST …/run (or …/verify): 202 with the run id.
pub async fn started(res: reqwest::Response, what: &str) -> i64 {
    assert_eq!(res.status(), 202, "{what}: status");
    let s: BackupRunStarted = ok_json(res, what).await;
    s.run_id
}

pub async fn run_plan(api: &Api, plan: i64) -> i64 {
    started(
        api.post(&format!("/api/v1/backup-plans/{plan}/run"), &json!({}))
            .await,
        "run plan",
    )
    .await
}

/// Waits until the run has ended (whatever the outcome).
pub async fn finished(api: &Api, run: i64) -> Run {
    wait_run(api, run, &format!("run {run} ends"), |r| {
        !matches!(
            r.summary.status,
            RunStatus::Queued | RunStatus::Running | RunStatus::Waiting
        )
    })
    .await
}

/// Every message of a run: its error and its steps' errors and output.
pub fn run_text(r: &Run) -> String {
    let mut s = r.error.clone().unwrap_or_default();
    for st in &r.steps {
        s.push('\n');
        s.push_str(st.error.as_deref().unwrap_or(""));
        s.push('\n');
        s.push_str(&st.output);
    }
    s
}

pub async fn backups(api: &Api, query: &str) -> Vec<BackupSummary> {
    api.json(&format!("/api/v1/backups{query}")).await
}

pub async fn detail(api: &Api, id: i64) -> BackupDetail {
    api.json(&format!("/api/v1/backups/{id}")).await
}

/// Incidents (any status) opened by the backup catalog.
pub async fn backup_incidents(api: &Api) -> Vec<opsdeck_wire::Incident> {
    let list: IncidentList = api.json("/api/v1/incidents?status=all").await;
    list.items
        .into_iter()
        .filter(|i| i.source == "backup")
        .collect()
}

/// The daily report's line for backup plan `plan`, from a report generated
/// now (operator).
pub async fn report_line(operator: &Api, plan: &str) -> opsdeck_wire::ReportItem {
    let r: opsdeck_wire::Report = ok_json(
        operator.post("/api/v1/reports", &json!({})).await,
        "generating a report",
    )
    .await;
    r.items
        .into_iter()
        .find(|i| i.section == "backups" && i.name == plan)
        .unwrap_or_else(|| panic!("no backups line for plan {plan} in report {}", r.id))
}
