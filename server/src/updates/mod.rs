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
//! Discovery: [`discover`] (the pass and its schedule), [`reference`]
//! (image references), [`registry`] (tag lists and creation times over the
//! Distribution API), [`tags`] (the semver rules of "a newer tag exists"),
//! [`status`] (its SQL and the update settings'); routes in `api`.

pub mod api;
pub mod apply;
pub mod discover;
pub mod reference;
pub mod registry;
pub mod status;
pub mod tags;

use crate::jobs::Task;
use crate::state::AppState;

pub use api::router;

/// The capability's background tasks: the scheduled discovery (when
/// `update_check_interval` is set).
pub fn tasks(state: AppState) -> Vec<Task> {
    discover::task(state).into_iter().collect()
}
