//! Health-check flows through the API: run a check now, wait for a state,
//! read a metric of a result.

use std::time::Duration;

use opsdeck_wire::{Check, CheckStatus, ProbeResult};
use serde_json::json;

use crate::server::Api;
use crate::util::{ok_json, poll};

/// `POST /api/v1/checks/{id}/run`: probes the check now and returns the
/// result (the check's state follows its damping as usual).
pub async fn run_check(api: &Api, id: i64) -> ProbeResult {
    ok_json(
        api.post(&format!("/api/v1/checks/{id}/run"), &json!({}))
            .await,
        "running the check",
    )
    .await
}

/// Runs the check until its result is `status` with a message containing
/// `needle` (within `wait`).
pub async fn run_until(
    api: &Api,
    id: i64,
    wait: Duration,
    status: CheckStatus,
    needle: &str,
) -> ProbeResult {
    poll(wait, &format!("{status:?} with {needle:?}"), async || {
        let r = run_check(api, id).await;
        (r.status == status && r.message.contains(needle))
            .then(|| r.clone())
            .ok_or(format!("{:?}: {}", r.status, r.message))
    })
    .await
}

/// Adds a `container` check to service `service_id`, probed once a day by
/// its schedule (so only a run or an engine event probes it during a test),
/// and runs it until it is ok: once the health engine has the service's
/// containers. Returns the check.
pub async fn add_container_check(api: &Api, service_id: i64) -> Check {
    let check: Check = ok_json(
        api.post(
            "/api/v1/checks",
            &json!({"service_id": service_id, "name": "containers", "interval_s": 86_400,
                    "timeout_ms": 5000, "fail_after": 1, "recover_after": 1,
                    "spec": {"kind": "container"}}),
        )
        .await,
        "a container check",
    )
    .await;
    run_until(api, check.id, Duration::from_secs(30), CheckStatus::Ok, "").await;
    check
}

/// The value of metric `name` in `r`; panics naming it when absent.
pub fn metric(r: &ProbeResult, name: &str) -> f64 {
    r.metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("no metric {name}: {r:?}"))
        .value
}
