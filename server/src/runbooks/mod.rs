//! Runbooks: definitions, runs, approvals and schedules.
//!
//! - [`def`]: definitions validated at the boundary, typed parameters,
//!   templating, YAML, the approval binding.
//! - [`engine`]: runs as leased jobs of [`crate::jobs`] (claim, heartbeat,
//!   reap, park), the
//!   step loop, failure policies, rollback, approvals gates.
//! - [`step`]: the step API ([`step::StepCx`], [`step::StepKind`]) through
//!   which lower capabilities (backups, maintenance) register step kinds.
//! - [`steps`]: executing and describing each step kind.
//! - [`output`]: bounded step output.
//! - [`dbops`]: the database catalogue (Postgres, MariaDB/MySQL).
//! - [`notify`]: the notification/escalation hook.
//! - [`api`]: runbooks and runs routes; [`approvals`]: votes and policies;
//!   [`schedules`]: cron schedules claimed per tick.
//! - [`builtins`]: the handbooks' procedures shipped as editable runbooks.
//! - [`bindings`]: runbooks bound to alerts (suggested on the incident, or
//!   started by the system within limits).

pub mod api;
pub mod approvals;
pub mod bindings;
pub mod builtins;
pub mod dbops;
pub mod def;
pub mod engine;
pub mod error;
pub mod library;
pub mod notify;
pub mod output;
pub mod runs;
pub mod schedules;
pub mod step;
pub mod steps;
pub mod store;

pub use engine::RunEngine;

impl crate::state::AppState {
    /// The run engine: claim, lease, execute (a part, see [`crate::state`]).
    pub fn runs(&self) -> &std::sync::Arc<RunEngine> {
        self.part()
    }

    /// The step kinds other capabilities add to the run engine.
    pub fn step_kinds(&self) -> &std::sync::Arc<step::StepKinds> {
        self.part()
    }
}
