//! Runbook flows through the API: create from YAML, start a run, wait
//! for a run's state or an approval request; and the runbooks several test
//! modules share.

use std::time::Duration;

use opsdeck_wire::{Approval, Run, RunStatus, Runbook};
use serde_json::json;

use crate::server::Api;
use crate::util::{ok_json, poll};

/// Creates a runbook from YAML as `admin`.
pub async fn create(admin: &Api, yaml: &str) -> Runbook {
    ok_json(
        admin
            .post("/api/v1/runbooks", &json!({ "yaml": yaml }))
            .await,
        "create runbook",
    )
    .await
}

pub async fn start(api: &Api, runbook: i64, params: serde_json::Value) -> Run {
    ok_json(
        api.post(
            &format!("/api/v1/runbooks/{runbook}/runs"),
            &json!({"params": params, "reason": "test"}),
        )
        .await,
        "start run",
    )
    .await
}

/// Polls the run until `want` holds, returning it.
pub async fn wait_run(api: &Api, id: i64, what: &str, want: impl Fn(&Run) -> bool) -> Run {
    poll(Duration::from_secs(60), what, async || {
        let r: Run = api.json(&format!("/api/v1/runs/{id}")).await;
        if want(&r) {
            Ok(r)
        } else {
            Err(format!(
                "status {:?}, steps {:?}, error {:?}",
                r.summary.status,
                r.steps
                    .iter()
                    .map(|s| (s.name.clone(), s.status))
                    .collect::<Vec<_>>(),
                r.error
            ))
        }
    })
    .await
}

pub async fn wait_status(api: &Api, id: i64, status: RunStatus) -> Run {
    wait_run(api, id, &format!("run {id} {status:?}"), |r| {
        r.summary.status == status
    })
    .await
}

/// Waits until the run has ended and asserts that it succeeded, showing
/// each step's status and error when it did not.
pub async fn wait_succeeded(api: &Api, id: i64) -> Run {
    let done = wait_run(api, id, &format!("run {id} finished"), |r| {
        !r.summary.status.is_active()
    })
    .await;
    assert_succeeded(&done);
    done
}

/// Asserts that `run` succeeded, showing each step's status and error when
/// it did not.
pub fn assert_succeeded(run: &Run) {
    assert_eq!(
        run.summary.status,
        RunStatus::Succeeded,
        "run {}: {:#?}",
        run.summary.id,
        run.steps
            .iter()
            .map(|s| (&s.name, s.status, &s.error))
            .collect::<Vec<_>>()
    );
}

/// Waits for the run's pending approval request.
pub async fn pending_approval(api: &Api, run: i64) -> Approval {
    poll(Duration::from_secs(60), "an approval request", async || {
        let r: Run = api.json(&format!("/api/v1/runs/{run}")).await;
        r.approvals
            .into_iter()
            .find(|a| a.status == opsdeck_wire::ApprovalStatus::Pending)
            .ok_or_else(|| format!("status {:?}", r.summary.status))
    })
    .await
}

/// A runbook restarting the service it is given.
pub const RESTART: &str = r#"
name: restart-one
title: Restart a service
target_param: service
params:
  - name: service
    type: service
steps:
  - name: restart
    kind: container
    service: "{{params.service}}"
    action: restart
    timeout: 1m
"#;
