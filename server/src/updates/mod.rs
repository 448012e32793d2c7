//! Image updates: what is outdated (discovery through the engines'
//! distribution API and the registries' tag lists), the gated update with
//! its automatic rollback (the `image` step kind of the built-in
//! `image-update` and `stack-update` runbooks), update policies, the
//! version history per service, and auto-heal.
//!
//! Sits on the upper floor beside `backups` and `maintenance`: it plugs its
//! step kind into the runbook engine (registered in `serve::compose`), reads
//! the inventory and the health engine, and opens incidents through
//! `incidents`.
//!
//! - [`apply`]: the `image` step (update), and how "never without a
//!   container" is guaranteed; [`stack`]: `op: stack`;
//! - [`gate`]: the health gate; [`recover`]: rollback of one container and
//!   crash recovery from the journal; [`store`]: journal and version rows;
//! - discovery: [`discover`] (the pass and its schedule), [`reference`]
//!   (image references), [`registry`] (tag lists and creation times over
//!   the Distribution API), [`tags`] (the semver rules of "a newer tag
//!   exists"), [`status`] (its SQL and the update settings');
//! - the automatic policies: [`heal`] (auto-heal), [`auto`] (updates inside
//!   maintenance);
//! - [`api`]: the routes (status, check, settings, version history).

use std::time::Duration;

use opsdeck_wire::{Severity, Tier};
use serde_json::json;

use crate::audit::Actor;
use crate::incidents::model::{Opening, PolicyChoice};
use crate::jobs::{Pace, Scope, Task};
use crate::state::AppState;

pub mod api;
pub mod apply;
pub mod auto;
pub mod discover;
pub mod gate;
pub mod heal;
mod policy_store;
pub mod recover;
pub mod reference;
pub mod registry;
pub mod stack;
pub mod status;
pub mod store;
pub mod tags;

pub use api::router;

/// How often crash recovery looks for unfinished updates.
pub const RECOVER_EVERY: Duration = Duration::from_secs(10);

/// The background tasks of updates: `updates.recover` (at start-up, then
/// every [`RECOVER_EVERY`], one process at a time) puts back a good state
/// for every update an ended run left unfinished (see [`recover`]); the
/// automatic policies `updates.autoheal` ([`heal`]) and `updates.auto`
/// ([`auto`]); the scheduled discovery `updates.discover` (when
/// `update_check_interval` is set; [`discover`]).
pub fn tasks(state: AppState) -> Vec<Task> {
    let recover = Task::every(
        "updates.recover",
        RECOVER_EVERY,
        Scope::OneProcess,
        state.clone(),
        |state| async move {
            recover::recover(&state, None, None).await;
            Ok(Pace::Normal)
        },
    );
    let mut tasks = vec![
        recover,
        heal::task(state.clone()),
        auto::task(state.clone()),
    ];
    tasks.extend(discover::task(state));
    tasks
}

/// Opens (or joins) the incident of a rolled-back update on the service
/// (dedup `image-update:<service>`; severity by tier as runbook
/// escalations do) and links the run to it. Returns a line for the run.
pub async fn raise(
    state: &AppState,
    run_id: i64,
    service_id: i64,
    service: &str,
    tier: Tier,
    message: &str,
) -> anyhow::Result<String> {
    let severity = Severity::of_tier(tier);
    let tx = state.pool.begin().await?;
    let (id, created) = crate::incidents::open_for_run(
        tx,
        run_id,
        Opening {
            title: format!("Image update of {service} rolled back")
                .chars()
                .take(200)
                .collect(),
            severity,
            source: "runbook",
            dedup_key: Some(format!("image-update:{service}")),
            summary: message.chars().take(2000).collect(),
            services: vec![(service_id, "affected")],
            commander_id: None,
            policy: PolicyChoice::Default,
            actor: Actor::system("updates"),
            first_event: (
                "detected".into(),
                format!("Run #{run_id}: {message}"),
                json!({ "run_id": run_id }),
            ),
            now: chrono::Utc::now(),
        },
        &format!("Run #{run_id} rolled back again: {message}"),
    )
    .await?;
    Ok(if created {
        format!("opened incident #{id} ({})", severity.as_str())
    } else {
        format!("added to open incident #{id}")
    })
}
