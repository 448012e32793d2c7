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

pub mod apply;
pub mod auto;
pub mod heal;
mod policy_store;

/// The registry tasks of the automatic policies: `updates.autoheal`
/// ([`heal`]) and `updates.auto` ([`auto`]).
pub fn tasks(state: crate::state::AppState) -> Vec<crate::jobs::Task> {
    vec![heal::task(state.clone()), auto::task(state)]
}
