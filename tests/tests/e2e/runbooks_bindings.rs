//! Runbooks bound to alerts on real parts: gitea on the private dockerd,
//! its container stopped behind Opsdeck's back so health detection opens
//! an incident. An automatic binding of the built-in service-down runbook
//! brings it back as its system actor, once; a suggested binding is listed
//! on the incident with its parameters filled in; the hourly limit, a
//! maintenance period and a failing run are each seen on the incident's
//! timeline. Lower roles are refused and bad input is named.

use std::time::Duration;

use opsdeck_e2e::flows::runbooks::{assert_succeeded, create, wait_run};
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release};
use opsdeck_wire::{BindingMode, Role, RunbookBinding, SuggestedRunbook};
use serde_json::{json, Value};

use crate::updates_heal::{
    audit, container_check, down_with_incident, end_maintenance, is_running, maintenance, setup,
    timeline, Env, WAIT,
};

/// A runbook that fails while the service's checks are critical.
const VERIFY: &str = r#"
name: verify-checks
title: Verify the service's checks
target_param: service
params:
  - name: service
    type: service
steps:
  - name: verify
    kind: checks
    service: "{{params.service}}"
    timeout: 30s
"#;

async fn bind(env: &Env, body: Value) -> RunbookBinding {
    let res = env.admin.post("/api/v1/runbook-bindings", &body).await;
    assert_eq!(res.status(), 201, "creating a binding");
    ok_json(res, "binding").await
}

/// The incident's bound runbooks, once `want` holds.
async fn suggested(
    env: &Env,
    incident: i64,
    what: &str,
    want: impl Fn(&[SuggestedRunbook]) -> bool,
) -> Vec<SuggestedRunbook> {
    poll(WAIT, what, async || {
        let list: Vec<SuggestedRunbook> = env
            .admin
            .json(&format!("/api/v1/incidents/{incident}/runbooks"))
            .await;
        if want(&list) {
            Ok(list)
        } else {
            Err(format!("{list:#?}"))
        }
    })
    .await
}

fn firing(list: &[SuggestedRunbook], binding: i64) -> Option<&opsdeck_wire::BindingFiring> {
    list.iter()
        .find(|s| s.binding_id == binding)
        .and_then(|s| s.fired.as_ref())
}

async fn resolve(env: &Env, incident: i64) {
    let res = env
        .admin
        .post(
            &format!("/api/v1/incidents/{incident}/resolve"),
            &json!({"note": "test"}),
        )
        .await;
    assert_eq!(res.status(), 200, "resolving incident {incident}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_start_their_bound_runbooks_once_within_limits_and_never_in_maintenance() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "bind", Duration::from_secs(60)).await;
    let docker = env.stack.docker();
    let check = container_check(&env).await;

    // Admins bind; operators and viewers are refused; bad input is named.
    let body = json!({"runbook": "service-down", "mode": "automatic",
                      "trigger": {"check_kind": "container"},
                      "max_per_hour": 1, "cooldown_s": 0});
    let op = env.server.user(Role::Operator).await;
    let viewer = env.server.user(Role::Viewer).await;
    for (role, api) in [("operator", &op), ("viewer", &viewer)] {
        let res = api.post("/api/v1/runbook-bindings", &body).await;
        assert_eq!(res.status(), 403, "{role} may not bind");
        let list: Vec<RunbookBinding> = api.json("/api/v1/runbook-bindings").await;
        assert!(list.is_empty(), "{role} reads the (empty) list");
    }
    for (patch, field) in [
        (json!({"trigger": {}}), "trigger:"),
        (json!({"runbook": "nope"}), "runbook:"),
        (json!({"params": {"nope": 1}}), "params.nope:"),
        (json!({"trigger": {"severity": 9}}), "trigger.severity:"),
        (json!({"trigger": {"service": "ghost"}}), "trigger.service:"),
        (json!({"max_per_hour": 0}), "max_per_hour:"),
    ] {
        let mut bad = body.clone();
        for (k, v) in patch.as_object().unwrap() {
            bad[k] = v.clone();
        }
        let msg = expect_error(env.admin.post("/api/v1/runbook-bindings", &bad).await, 400).await;
        assert!(msg.starts_with(field), "{field}: {msg}");
    }
    let auto = bind(&env, body.clone()).await;
    let suggest = bind(
        &env,
        json!({"runbook": "service-down", "mode": "suggested",
               "trigger": {"service": "gitea", "severity": 2}}),
    )
    .await;
    assert_eq!(suggest.def.mode, BindingMode::Suggested);

    // 1. gitea goes down: the automatic binding starts service-down as its
    // system actor, on the incident, once.
    let incident = down_with_incident(&env, check.id).await;
    let list = suggested(&env, incident, "the automatic run", |l| {
        firing(l, auto.id).is_some_and(|f| f.run_id.is_some())
    })
    .await;
    let fired = firing(&list, auto.id).unwrap();
    assert_eq!(fired.outcome, "started");
    let run = fired.run_id.unwrap();
    let s = list
        .iter()
        .find(|s| s.binding_id == suggest.id)
        .expect("the suggestion");
    assert_eq!(s.mode, BindingMode::Suggested);
    assert_eq!(s.params.get("service"), Some(&json!("gitea")));
    assert!(s.because.contains("on service gitea"), "{}", s.because);
    assert!(s.fired.is_none(), "a suggestion never runs by itself");
    let done = wait_run(&env.admin, run, "the bound run finished", |r| {
        !r.summary.status.is_active()
    })
    .await;
    assert_succeeded(&done);
    assert_eq!(
        done.summary.requested_by,
        format!("system:binding:{}", auto.id)
    );
    assert!(is_running(docker, &env.container).await, "gitea runs again");
    let (incident_of_run,): (Option<i64>,) =
        sqlx::query_as("SELECT incident_id FROM runs WHERE id = $1")
            .bind(run)
            .fetch_one(&env.server.pool)
            .await
            .unwrap();
    assert_eq!(incident_of_run, Some(incident));
    let events = timeline(&env, incident).await;
    let started: Vec<_> = events.iter().filter(|e| e.0 == "binding.started").collect();
    assert_eq!(started.len(), 1, "{events:#?}");
    assert_eq!(
        started[0].1.as_deref(),
        Some(format!("system:binding:{}", auto.id).as_str())
    );
    let fire = audit(&env, "runbook_binding.fire").await;
    assert_eq!(fire.len(), 1, "{fire:?}");
    assert_eq!(
        (fire[0].0.as_str(), fire[0].1.as_str()),
        (format!("system:binding:{}", auto.id).as_str(), "system")
    );
    assert_eq!(
        fire[0].2.as_deref(),
        Some(format!("incident:{incident}").as_str())
    );
    assert_eq!(fire[0].3["run_id"], run);
    let created = audit(&env, "runbook_binding.create").await;
    assert_eq!(created.len(), 2, "{created:?}");

    // 2. Down again, a new incident: the hourly limit (1) holds the
    // automatic binding back; the timeline says so.
    resolve(&env, incident).await;
    let second = down_with_incident(&env, check.id).await;
    let list = suggested(&env, second, "the limited decision", |l| {
        firing(l, auto.id).is_some()
    })
    .await;
    let f = firing(&list, auto.id).unwrap();
    assert_eq!(f.outcome, "limited", "{f:?}");
    assert!(
        f.detail.contains("1 runs in the last hour (at most 1)"),
        "{}",
        f.detail
    );
    assert!(f.run_id.is_none());
    assert!(timeline(&env, second)
        .await
        .iter()
        .any(|e| e.0 == "binding.limited"));

    // 3. Under maintenance: a binding added now is suppressed.
    let period = maintenance(&env.admin, &["gitea"]).await;
    let held = bind(
        &env,
        json!({"runbook": "service-down", "mode": "automatic", "trigger": {"service": "gitea"}}),
    )
    .await;
    let list = suggested(&env, second, "the suppressed decision", |l| {
        firing(l, held.id).is_some()
    })
    .await;
    let f = firing(&list, held.id).unwrap();
    assert_eq!(f.outcome, "suppressed", "{f:?}");
    assert!(
        f.detail.contains(&format!("period #{period}")),
        "{}",
        f.detail
    );
    end_maintenance(&env.admin, period).await;

    // 4. A bound run that fails escalates on the incident.
    create(&env.admin, VERIFY).await;
    let failing = bind(
        &env,
        json!({"runbook": "verify-checks", "mode": "automatic",
               "trigger": {"check_kind": "container", "service": "gitea"}}),
    )
    .await;
    let list = suggested(&env, second, "the failing run", |l| {
        firing(l, failing.id).is_some()
    })
    .await;
    let f = firing(&list, failing.id).unwrap();
    assert_eq!(f.outcome, "started", "{f:?}");
    poll(WAIT, "binding.failed on the incident", async || {
        let t = timeline(&env, second).await;
        t.iter()
            .find(|e| e.0 == "binding.failed")
            .map(|e| e.2.clone())
            .ok_or(format!("{t:#?}"))
    })
    .await;
    let esc = audit(&env, "runbook_binding.escalate").await;
    assert_eq!(esc.len(), 1, "{esc:?}");
    assert_eq!(esc[0].3["run_id"], f.run_id.unwrap());

    // Exactly once: a few more looks of the task change nothing.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let (firings,): (i64,) = sqlx::query_as("SELECT count(*) FROM runbook_binding_firings")
        .fetch_one(&env.server.pool)
        .await
        .unwrap();
    assert_eq!(firings, 4, "one decision per binding and incident");
    assert_eq!(audit(&env, "runbook_binding.escalate").await.len(), 1);

    // Deleting a binding is admin-only and audited.
    let path = format!("/api/v1/runbook-bindings/{}", suggest.id);
    let res = op.send(reqwest::Method::DELETE, &path, &json!({})).await;
    assert_eq!(res.status(), 403);
    let res = env
        .admin
        .send(reqwest::Method::DELETE, &path, &json!({}))
        .await;
    assert_eq!(res.status(), 204);
    assert_eq!(audit(&env, "runbook_binding.delete").await.len(), 1);

    drop(env);
    release(engine).await;
}
