//! Health checks and the live status board.
//!
//! - [`engine`]: the [`HealthHub`] that schedules probes, damps flapping,
//!   records state changes and rollups, and keeps the status board.
//! - [`probe`]: one function per check kind.
//! - [`damping`]: the flap-damping and "sustained for" state machines.
//! - [`status`]: the dependency-aware status model.
//! - [`report`]: the daily check report (built and stored).
//! - [`rules`]: a Prometheus rules file as Prometheus-query checks
//!   (mapping, preview, one-transaction apply).
//! - [`defs`]: check definitions validated at the boundary, the
//!   [`CheckError`] enum, reading checks for the API; [`store`]: the SQL;
//!   `api`: the HTTP layer: the `/api/v1/checks`, `/api/v1/status` and
//!   heartbeat routes, `api::report` (the report routes), `api::rules`
//!   (the rules import) and `api::public`
//!   (the public status page, [`page`] and [`css`]).
//!
//! Roles: viewers read checks, history and the board; operators create,
//! change, delete and run checks and choose what the public page shows;
//! admins read engine figures and change retention and report settings.
//! Database passwords are write-only (`checks.secret`), never returned,
//! never logged, never in an audit entry. Heartbeat tokens are capability
//! URLs shown to operators only; a heartbeat ping is recorded as a probe
//! result (rollups, state changes), not as an audit entry.

mod api;
pub mod damping;
pub mod defs;
pub mod engine;
pub mod probe;
pub mod report;
pub mod rules;
pub mod status;
pub mod store;

pub use api::{css, heartbeat, page, router, HistoryParams, ListParams};
pub use defs::{
    load, validate_spec, CheckError, DEFAULT_FAIL_AFTER, DEFAULT_INTERVAL_S, DEFAULT_RECOVER_AFTER,
    DEFAULT_TIMEOUT_MS,
};
pub use engine::HealthHub;
pub use store::{prune, settings, uptime_of};

impl crate::state::AppState {
    /// The health-check engine and status board (a part, see [`crate::state`]).
    pub fn health(&self) -> &std::sync::Arc<HealthHub> {
        self.part()
    }
}
