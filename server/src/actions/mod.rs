//! Container and stack actions, logs, stats, inspect and exec on the
//! containers of a service (operator and above; the activity list and stats
//! are open to viewers, who see status but not logs or configuration).
//!
//! Every action goes through one path: [`gate`] decides whether it may run
//! now (a stop or kill of a critical-tier service needs the service's name
//! typed as confirmation; the approvals of the runbooks issue will add a
//! `NeedsApproval` outcome here, so every action kind can be gated in one
//! place), then a `container_actions` row is written as `running` *before*
//! the engine is asked, and finished with the outcome, steps and duration in
//! the same transaction as the action's audit entry. A crash in between
//! leaves the row `running`; the upkeep task closes such rows as
//! `interrupted` after [`MAX_ACTION`].
//!
//! Read-only mode (`OPSDECK_READ_ONLY`) is checked by [`ensure_writable`]
//! before anything else: here for container and stack actions and exec
//! (whoever calls them: a request or a runbook step), in the step executor
//! for scale and prune, and before maintenance proxy pages are placed.
//!
//! Layers: [`api`] (routes) → [`run`] (the gate and running actions) and
//! [`container`] (logs, stats, inspect, exec) → [`store`] (the SQL). Errors
//! are [`ActionError`]; `crate::error` turns them into answers.

pub mod api;
pub mod container;
pub mod incident;
pub mod run;
pub mod store;

use std::time::Duration;

use sqlx::PgPool;

pub use api::{no_containers, router, LogParams};
pub use run::{
    engine_of, ensure_writable, gate, run_service_action, run_stack_action, service_target,
    ActionSubject, Gate, Invoker, Target,
};

/// Longest an action may take before a `running` row counts as interrupted.
pub const MAX_ACTION: Duration = Duration::from_secs(15 * 60);

/// Why an action (or a look into a container) was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Read-only mode refuses changes to containers.
    #[error("{0}")]
    ReadOnly(String),
    /// A critical-tier service: repeat with the name typed as confirmation.
    #[error("{0}")]
    NeedsConfirmation(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The service maps to no container on a reachable engine.
    #[error("{0}")]
    NoContainers(String),
    /// An engine is not registered or not connected.
    #[error("{0}")]
    Unavailable(String),
    /// An engine refused or failed a request.
    #[error("{0}")]
    Engine(String),
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("{0:#}")]
    Internal(#[from] anyhow::Error),
}

/// Closes actions left `running` by a crash (called by the upkeep task).
pub async fn close_interrupted(pool: &PgPool) -> sqlx::Result<u64> {
    store::close_interrupted(pool, MAX_ACTION).await
}
