//! The health gate: a new container passes when, before its deadline, it
//! runs, its own HEALTHCHECK passes (the engine says `healthy`, or, while
//! the engine has not yet run it since the app came up, the gate runs the
//! same test itself and it exits 0) (when the image has one) and
//! every enabled check of its service is ok (run now through the health
//! engine, as the `checks` step does; a warning counts as ok, unknown does
//! not). It is asked again four times a second until then (a container
//! inspect and the service's checks: cheap, and the gate ends as soon as
//! the service is good, not up to a second later).
//!
//! Decision where the issue is silent: a container that exited with no
//! restart policy fails the gate at once (nothing will bring it back); an
//! `unhealthy` HEALTHCHECK does not, since the engine keeps probing and it
//! may still turn healthy within the gate.

use std::time::{Duration, Instant};

use opsdeck_wire::CheckStatus;

use super::store;
use crate::docker::{images, Client};
use crate::state::AppState;

/// How often the gate looks again.
const EVERY: Duration = Duration::from_millis(250);

/// How long the gate's own run of a HEALTHCHECK test may take.
const TEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the container's HEALTHCHECK test now (as the engine would: the
/// image's own argv, no shell text of Opsdeck's): whether it exits 0.
async fn healthcheck_passes_now(client: &Client, container: &str, argv: Option<&[String]>) -> bool {
    let Some(argv) = argv else {
        return false;
    };
    matches!(
        crate::docker::ops::exec(client, container, argv, TEST_TIMEOUT).await,
        Ok(r) if r.exit_code == Some(0) && !r.timed_out
    )
}

/// One look at a container and its service: `Ok(())` when good, else what
/// is wrong, and whether it can still change (`false`: give up now).
pub async fn look(
    state: &AppState,
    client: &Client,
    container: &str,
    service_id: i64,
) -> Result<(), (String, bool)> {
    let f = match images::container(client, container).await {
        Ok(Some(f)) => f,
        Ok(None) => return Err(("the container no longer exists".into(), false)),
        Err(e) => return Err((format!("{e:#}"), true)),
    };
    if f.state != "running" {
        let hopeless = matches!(f.state.as_str(), "exited" | "dead") && f.restart_policy == "no";
        return Err((format!("the container is {}", f.state), !hopeless));
    }
    if let Some(h) = f.health.as_deref().filter(|h| *h != "healthy") {
        // The engine runs the test once per interval; run it now instead of
        // waiting up to an interval for the engine's next verdict.
        if !healthcheck_passes_now(client, container, f.healthcheck.as_deref()).await {
            return Err((format!("its HEALTHCHECK is {h}"), true));
        }
    }
    let checks = store::service_checks(&state.pool, service_id)
        .await
        .map_err(|e| (format!("reading checks: {e}"), true))?;
    let mut bad = Vec::new();
    for (id, name) in checks {
        match state.health().run_now(id).await {
            Some(r) if matches!(r.status, CheckStatus::Ok | CheckStatus::Warning) => {}
            Some(r) => bad.push(format!("check {name} {}: {}", r.status.as_str(), r.message)),
            None => bad.push(format!("check {name} is not loaded by the health engine")),
        }
    }
    if bad.is_empty() {
        Ok(())
    } else {
        Err((bad.join("; "), true))
    }
}

/// Waits until [`look`] is good or `deadline` passes; `progress` gets each
/// changed state. `Err` is the last reason.
pub async fn wait(
    state: &AppState,
    client: &Client,
    container: &str,
    service_id: i64,
    deadline: Instant,
    mut progress: impl FnMut(&str),
) -> Result<(), String> {
    let mut last = String::new();
    loop {
        match look(state, client, container, service_id).await {
            Ok(()) => return Ok(()),
            Err((why, hopeful)) => {
                if why != last {
                    progress(&why);
                    last = why;
                }
                if !hopeful || Instant::now() >= deadline {
                    return Err(last);
                }
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        tokio::time::sleep(EVERY.min(left)).await;
    }
}
