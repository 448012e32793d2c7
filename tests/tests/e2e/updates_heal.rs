//! Auto-heal on real parts: a busybox service on the private dockerd (its
//! container stopped behind Opsdeck's back and left stopped), one server
//! and two real `opsdeck serve` processes on one database. The auto update
//! policy's scheduler is in `updates_auto.rs`.
//!
//! Auto-heal's minutes are shortened with the testing-only setting
//! `autoheal_unit` (`OPSDECK_AUTOHEAL_UNIT_SECS`); the hour of its limit is
//! real, so earlier attempts are written as rows with past times. Settings
//! are written as `service_update_settings` rows directly (the settings
//! route belongs to another part of the issue).

use std::time::Duration;

use bollard::query_parameters::{InspectContainerOptions, StopContainerOptions};
use bollard::Docker;
use chrono::{DateTime, Utc};
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::runbooks::{assert_succeeded, wait_run};
use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{ServiceSpec, Stack, MOSAIC};
use opsdeck_e2e::util::{engine, ok_json, poll, process_database, release};
use opsdeck_wire::{
    Check, CheckStatus, MaintenancePeriod, PeriodStatus, ProbeResult, Role, RunState, RunStatus,
    ServiceOverview,
};
use serde_json::{json, Value};

pub(crate) const WAIT: Duration = Duration::from_secs(90);
pub(crate) const DAY: u32 = 86_400;

/// gitea alone (its dependencies dropped): an application-tier service.
const FORGE: &[ServiceSpec] = &[ServiceSpec {
    requires: &[],
    ..MOSAIC[3]
}];

pub(crate) struct Env {
    pub server: TestServer,
    pub admin: Api,
    pub stack: Stack,
    /// gitea's service id.
    pub gitea: i64,
    /// gitea's container.
    pub container: String,
}

/// A server whose auto-heal "minute" lasts `unit`, the private engine as
/// `main`, gitea imported and running.
pub(crate) async fn setup(engine: &PrivateDockerd, prefix: &str, unit: Duration) -> Env {
    let server = TestServer::start_with(|s| s.autoheal_unit = unit).await;
    let admin = server.user(Role::Admin).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    let stack = Stack::up(engine, prefix, FORGE)
        .await
        .expect("bringing up the stack");
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": stack.compose_yaml(), "project": stack.project,
                    "engine": "main", "apply": true, "checks": []}),
        )
        .await;
    ok_json::<Value>(res, "importing the stack").await;
    let o = wait_gitea(&admin, "running", |o| o.run_state == RunState::Running).await;
    let container = stack.container("gitea");
    Env {
        gitea: o.service.id,
        server,
        admin,
        stack,
        container,
    }
}

pub(crate) async fn wait_gitea(
    api: &Api,
    what: &str,
    want: impl Fn(&ServiceOverview) -> bool,
) -> ServiceOverview {
    poll(WAIT, &format!("gitea {what}"), async || {
        let list: Vec<ServiceOverview> = api.json("/api/v1/services").await;
        match list.into_iter().find(|o| o.service.name == "gitea") {
            Some(o) if want(&o) => Ok(o),
            Some(o) => Err(format!("{:?}", o.run_state)),
            None => Err("not in the inventory".into()),
        }
    })
    .await
}

/// Turns auto-heal on for a service (the settings row, as the settings
/// route would write it).
async fn heal_policy(env: &Env, after_minutes: i32, max_per_hour: i32) {
    sqlx::query(
        "INSERT INTO service_update_settings (service_id, heal_after_minutes, heal_max_per_hour)
         VALUES ($1, $2, $3)
         ON CONFLICT (service_id) DO UPDATE SET heal_after_minutes = $2, heal_max_per_hour = $3",
    )
    .bind(env.gitea)
    .bind(after_minutes)
    .bind(max_per_hour)
    .execute(&env.server.pool)
    .await
    .expect("writing the update settings");
}

pub(crate) async fn stop(docker: &Docker, name: &str) {
    docker
        .stop_container(name, None::<StopContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("stopping {name}: {e}"));
}

pub(crate) async fn is_running(docker: &Docker, name: &str) -> bool {
    docker
        .inspect_container(name, None::<InspectContainerOptions>)
        .await
        .unwrap_or_else(|e| panic!("inspecting {name}: {e}"))
        .state
        .and_then(|s| s.running)
        .unwrap_or(false)
}

/// The service-down runs for gitea: (id, requested_by, requested_kind,
/// incident_id, created_at), oldest first.
async fn heal_runs(env: &Env) -> Vec<(i64, String, String, Option<i64>, DateTime<Utc>)> {
    sqlx::query_as(
        "SELECT r.id, r.requested_by, r.requested_kind, r.incident_id, r.created_at
         FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         WHERE b.name = 'service-down' AND r.target = 'gitea' ORDER BY r.id",
    )
    .fetch_all(&env.server.pool)
    .await
    .expect("reading runs")
}

/// gitea's auto-heal attempts: (run_id, incident_id, started_at), oldest first.
async fn attempts(env: &Env) -> Vec<(Option<i64>, Option<i64>, DateTime<Utc>)> {
    sqlx::query_as(
        "SELECT run_id, incident_id, started_at FROM autoheal_attempts
         WHERE service_id = $1 ORDER BY started_at",
    )
    .bind(env.gitea)
    .fetch_all(&env.server.pool)
    .await
    .expect("reading attempts")
}

/// Audit entries of `action`: (actor, actor_kind, target, params).
pub(crate) async fn audit(env: &Env, action: &str) -> Vec<(String, String, Option<String>, Value)> {
    sqlx::query_as(
        "SELECT actor, actor_kind, target, params FROM audit_log WHERE action = $1 ORDER BY seq",
    )
    .bind(action)
    .fetch_all(&env.server.pool)
    .await
    .expect("reading the audit log")
}

/// An incident's timeline: (kind, actor, message).
pub(crate) async fn timeline(env: &Env, incident: i64) -> Vec<(String, Option<String>, String)> {
    sqlx::query_as(
        "SELECT kind, actor, message FROM timeline_events
         WHERE subject_type = 'incident' AND subject_id = $1 ORDER BY id",
    )
    .bind(incident)
    .fetch_all(&env.server.pool)
    .await
    .expect("reading the timeline")
}

async fn wait_finished(env: &Env, run: i64) -> opsdeck_wire::Run {
    wait_run(&env.admin, run, "the auto-heal run finished", |r| {
        !r.summary.status.is_active()
    })
    .await
}

/// Starts maintenance of `services` and waits until it is active.
pub(crate) async fn maintenance(admin: &Api, services: &[&str]) -> i64 {
    let until = (Utc::now() + chrono::Duration::minutes(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let p: MaintenancePeriod = ok_json(
        admin
            .post(
                "/api/v1/maintenance/periods",
                &json!({"scope": {"kind": "services", "services": services},
                        "reason": "updates test", "until": until}),
            )
            .await,
        "starting maintenance",
    )
    .await;
    wait_period(admin, p.id, PeriodStatus::Active).await;
    p.id
}

/// Ends maintenance period `id` and waits until it has ended.
pub(crate) async fn end_maintenance(admin: &Api, id: i64) {
    let res = admin
        .post(
            &format!("/api/v1/maintenance/periods/{id}/end"),
            &json!({"note": "done"}),
        )
        .await;
    assert_eq!(res.status(), 202, "ending maintenance");
    wait_period(admin, id, PeriodStatus::Ended).await;
}

pub(crate) async fn wait_period(admin: &Api, id: i64, want: PeriodStatus) {
    poll(WAIT, &format!("period {id} {want:?}"), async || {
        let p: Value = admin
            .json(&format!("/api/v1/maintenance/periods/{id}"))
            .await;
        let status: PeriodStatus =
            serde_json::from_value(p["period"]["status"].clone()).map_err(|e| e.to_string())?;
        (status == want).then_some(()).ok_or(format!("{p}"))
    })
    .await
}

/// gitea's container check (probed on demand only: a day's interval).
pub(crate) async fn container_check(env: &Env) -> Check {
    ok_json(
        env.admin
            .post(
                "/api/v1/checks",
                &json!({"service_id": env.gitea, "name": "containers", "interval_s": DAY,
                    "timeout_ms": 5000, "fail_after": 1, "recover_after": 1,
                    "spec": {"kind": "container"}}),
            )
            .await,
        "adding a check",
    )
    .await
}

/// Stops gitea behind Opsdeck's back, runs its container check until it is
/// critical and waits for the health incident; returns the incident.
pub(crate) async fn down_with_incident(env: &Env, check: i64) -> i64 {
    stop(env.stack.docker(), &env.container).await;
    poll(WAIT, "the container check critical", async || {
        let r: ProbeResult = ok_json(
            env.admin
                .post(&format!("/api/v1/checks/{}/run", check), &json!({}))
                .await,
            "running the check",
        )
        .await;
        (r.status == CheckStatus::Critical)
            .then_some(())
            .ok_or(format!("{r:?}"))
    })
    .await;
    let incident: i64 = poll(WAIT, "the health incident", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT id FROM incidents WHERE dedup_key = $1 AND status = 'triggered'",
        )
        .bind(format!("health:{}", env.gitea))
        .fetch_optional(&env.server.pool)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "none yet".to_owned())
    })
    .await;
    incident
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_heal_restarts_an_unhealthy_service_as_the_system_on_the_incident() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "heal-ok", Duration::from_secs(2)).await;
    let docker = env.stack.docker();
    // A container check, so the board calls gitea down and health
    // detection opens its incident.
    let check = container_check(&env).await;
    let incident = down_with_incident(&env, check.id).await;
    assert!(heal_runs(&env).await.is_empty(), "auto-heal is off so far");

    heal_policy(&env, 1, 3).await;
    let runs = poll(WAIT, "an auto-heal run", async || {
        let r = heal_runs(&env).await;
        (!r.is_empty()).then_some(r).ok_or("none yet".to_owned())
    })
    .await;
    let (run, by, kind, run_incident, _) = runs[0].clone();
    assert_eq!((by.as_str(), kind.as_str()), ("system:autoheal", "system"));
    assert_eq!(run_incident, Some(incident), "the run is on the incident");
    let done = wait_finished(&env, run).await;
    assert_succeeded(&done);
    assert!(is_running(docker, &env.container).await, "gitea runs again");
    wait_gitea(&env.admin, "running again", |o| {
        o.run_state == RunState::Running
    })
    .await;

    // The attempt, in the run's transaction, with the run and the incident.
    let a = attempts(&env).await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!((a[0].0, a[0].1), (Some(run), Some(incident)));
    // The audit log: done by the system on behalf of the policy.
    let entries = audit(&env, "autoheal.restart").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    let (actor, actor_kind, target, params) = &entries[0];
    assert_eq!(
        (actor.as_str(), actor_kind.as_str(), target.as_deref()),
        (
            "system:autoheal",
            "system",
            Some(format!("run:{run}").as_str())
        )
    );
    assert_eq!(params["policy"], "autoheal");
    assert_eq!(params["service"], "gitea");
    assert_eq!(params["attempt"], 1);
    assert_eq!(params["incident_id"], incident);
    // The incident's timeline: the policy's decision and the run.
    let events = timeline(&env, incident).await;
    let heal = events
        .iter()
        .find(|e| e.0 == "autoheal.restart")
        .unwrap_or_else(|| panic!("no autoheal.restart event: {events:#?}"));
    assert_eq!(heal.1.as_deref(), Some("system:autoheal"));
    assert!(
        heal.2.contains(&format!("run #{run}")) && heal.2.contains("attempt 1 of 3"),
        "{}",
        heal.2
    );
    assert!(
        events
            .iter()
            .any(|e| e.0 == "run" && e.2.contains("started by system:autoheal")),
        "{events:#?}"
    );

    // Healthy again: nothing more happens.
    tokio::time::sleep(Duration::from_secs(8)).await;
    assert_eq!(heal_runs(&env).await.len(), 1);
    assert_eq!(attempts(&env).await.len(), 1);

    drop(env);
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_heal_waits_n_minutes_stops_at_the_hourly_limit_and_escalates() {
    let Some(engine) = engine().await else { return };
    // An 8 s "minute": the restart must wait for it (the task looks every 5 s).
    let unit = Duration::from_secs(8);
    let env = setup(&engine, "heal-limit", unit).await;
    let docker = env.stack.docker();
    heal_policy(&env, 1, 2).await;
    // Two earlier attempts: one 70 minutes ago (outside the hour, not
    // counted) and one 10 minutes ago (counted).
    sqlx::query(
        "INSERT INTO autoheal_attempts (service_id, started_at)
         VALUES ($1, now() - interval '70 minutes'), ($1, now() - interval '10 minutes')",
    )
    .bind(env.gitea)
    .execute(&env.server.pool)
    .await
    .unwrap();

    let stopped = Utc::now();
    stop(docker, &env.container).await;
    let runs = poll(WAIT, "an auto-heal run", async || {
        let r = heal_runs(&env).await;
        (!r.is_empty()).then_some(r).ok_or("none yet".to_owned())
    })
    .await;
    let (run, by, _, _, queued_at) = runs[0].clone();
    assert_eq!(by, "system:autoheal");
    assert!(
        queued_at - stopped >= chrono::Duration::from_std(unit).unwrap(),
        "the restart waited the policy's minute: stopped {stopped}, queued {queued_at}"
    );
    let done = wait_finished(&env, run).await;
    assert_eq!(
        done.summary.status,
        RunStatus::Succeeded,
        "{:?}",
        done.error
    );
    assert!(is_running(docker, &env.container).await);
    let a = attempts(&env).await;
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!(a[2].0, Some(run));
    assert_eq!(a[2].1, None, "no incident was open");
    let params = &audit(&env, "autoheal.restart").await[0].3;
    assert_eq!(
        params["attempt"], 2,
        "the attempt older than an hour does not count"
    );

    // Down again: two attempts in the hour are the limit.
    stop(docker, &env.container).await;
    let incident: i64 = poll(WAIT, "the escalation", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT id FROM incidents WHERE dedup_key = $1 AND status = 'triggered'",
        )
        .bind(format!("health:{}", env.gitea))
        .fetch_optional(&env.server.pool)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "no incident yet".to_owned())
    })
    .await;
    let events = timeline(&env, incident).await;
    let gave_up: Vec<_> = events
        .iter()
        .filter(|e| e.0 == "autoheal.gave_up")
        .collect();
    assert_eq!(gave_up.len(), 1, "{events:#?}");
    assert_eq!(gave_up[0].1.as_deref(), Some("system:autoheal"));
    assert!(
        gave_up[0].2.contains("auto-heal gave up after 2 attempts"),
        "{}",
        gave_up[0].2
    );
    let esc = audit(&env, "autoheal.escalate").await;
    assert_eq!(esc.len(), 1, "{esc:?}");
    assert_eq!(
        (esc[0].0.as_str(), esc[0].1.as_str(), esc[0].2.as_deref()),
        (
            "system:autoheal",
            "system",
            Some(format!("incident:{incident}").as_str())
        )
    );
    assert_eq!(esc[0].3["attempts"], 2);
    let opened = audit(&env, "incident.open").await;
    assert!(
        opened.iter().any(|e| e.0 == "system:autoheal"),
        "{opened:?}"
    );

    // Two more "minutes": no more restarts, no second escalation.
    tokio::time::sleep(unit * 2 + Duration::from_secs(5)).await;
    assert_eq!(heal_runs(&env).await.len(), 1, "no run after the limit");
    assert_eq!(attempts(&env).await.len(), 3);
    assert!(!is_running(docker, &env.container).await);
    assert_eq!(audit(&env, "autoheal.escalate").await.len(), 1);

    drop(env);
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_heal_leaves_a_service_in_maintenance_alone() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "heal-maint", Duration::from_secs(2)).await;
    let docker = env.stack.docker();
    heal_policy(&env, 1, 3).await;
    let period = maintenance(&env.admin, &["gitea"]).await;

    stop(docker, &env.container).await;
    wait_gitea(&env.admin, "stopped", |o| o.run_state == RunState::Stopped).await;
    // Six "minutes" and more than two looks of the task.
    tokio::time::sleep(Duration::from_secs(12)).await;
    assert!(
        heal_runs(&env).await.is_empty(),
        "nothing during maintenance"
    );
    assert!(attempts(&env).await.is_empty());
    assert!(!is_running(docker, &env.container).await);

    // Maintenance over: the policy acts (the same service, still stopped).
    end_maintenance(&env.admin, period).await;
    let runs = poll(WAIT, "an auto-heal run after maintenance", async || {
        let r = heal_runs(&env).await;
        (!r.is_empty()).then_some(r).ok_or("none yet".to_owned())
    })
    .await;
    assert_eq!(runs[0].1, "system:autoheal");
    wait_finished(&env, runs[0].0).await;
    assert!(is_running(docker, &env.container).await);

    drop(env);
    release(engine).await;
}

/// Two real `opsdeck serve` processes on one database, both looking every
/// 5 s: each auto-heal decision (the restart, then giving up) is taken
/// once, under the row lock of the service's settings.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_take_each_auto_heal_decision_once() {
    let Some(engine) = engine().await else { return };
    let (url, pool) = process_database().await;
    let host = engine.host();
    let vars = [
        ("OPSDECK_AUTOHEAL_UNIT_SECS", "2"),
        ("DOCKER_HOST", host.as_str()),
    ];
    // One after the other: the first start registers the `local` engine.
    let a = OpsdeckProcess::start(&url, &vars).await;
    a.wait_ready().await;
    let b = OpsdeckProcess::start(&url, &vars).await;
    b.wait_ready().await;
    let admin = a.login("ops").await;
    let stack = Stack::up(&engine, "heal-two", FORGE)
        .await
        .expect("bringing up the stack");
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": stack.compose_yaml(), "project": stack.project,
                    "engine": "local", "apply": true, "checks": []}),
        )
        .await;
    ok_json::<Value>(res, "importing the stack").await;
    let on_b = Api {
        client: admin.client.clone(),
        base: b.base().to_owned(),
    };
    for api in [&admin, &on_b] {
        wait_gitea(api, "running on both servers", |o| {
            o.run_state == RunState::Running
        })
        .await;
    }
    let gitea: i64 = sqlx::query_scalar("SELECT id FROM services WHERE name = 'gitea'")
        .fetch_one(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO service_update_settings (service_id, heal_after_minutes, heal_max_per_hour)
         VALUES ($1, 1, 1)",
    )
    .bind(gitea)
    .execute(&pool)
    .await
    .unwrap();
    let count = async |sql: &str| -> i64 {
        sqlx::query_scalar(sql)
            .bind(gitea)
            .fetch_one(&pool)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    const RUNS: &str = "SELECT count(*) FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         JOIN services s ON s.name = r.target
         WHERE b.name = 'service-down' AND s.id = $1 AND r.requested_by = 'system:autoheal'";
    const ATTEMPTS: &str = "SELECT count(*) FROM autoheal_attempts WHERE service_id = $1";
    const GAVE_UP: &str = "SELECT count(*) FROM timeline_events
         WHERE kind = 'autoheal.gave_up' AND (data->>'service_id')::bigint = $1";
    const ESCALATED: &str = "SELECT count(*) FROM audit_log
         WHERE action = 'autoheal.escalate' AND (params->>'service_id')::bigint = $1";

    let docker = stack.docker();
    let container = stack.container("gitea");
    stop(docker, &container).await;
    let run: i64 = poll(WAIT, "an auto-heal run", async || {
        sqlx::query_scalar::<_, i64>(
            "SELECT r.id FROM runs r JOIN runbooks b ON b.id = r.runbook_id
             WHERE b.name = 'service-down' AND r.target = 'gitea'",
        )
        .fetch_optional(&pool)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| "none yet".to_owned())
    })
    .await;
    wait_run(&admin, run, "the auto-heal run finished", |r| {
        !r.summary.status.is_active()
    })
    .await;
    assert!(is_running(docker, &container).await, "gitea runs again");
    // Both servers have looked twice more since.
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(count(RUNS).await, 1, "one restart for two servers");
    assert_eq!(count(ATTEMPTS).await, 1);

    // Down again, the limit (1 an hour) reached: one escalation.
    stop(docker, &container).await;
    poll(WAIT, "the escalation", async || {
        let n = count(GAVE_UP).await;
        (n > 0).then_some(()).ok_or(format!("{n} events"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert_eq!(count(GAVE_UP).await, 1, "one escalation for two servers");
    assert_eq!(count(ESCALATED).await, 1);
    assert_eq!(count(RUNS).await, 1, "no restart after the limit");
    assert_eq!(count(ATTEMPTS).await, 1);

    for p in [&a, &b] {
        let status = p.stop().await;
        assert!(status.success(), "{status:?}\n{}", p.log_tail(4000));
    }
    drop(stack);
    release(engine).await;
}
