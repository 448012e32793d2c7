//! Docker clean-up per engine (the handbooks' weekly `docker system
//! prune`): disk usage (`system df`), a preview of exactly what would be
//! removed, and the `cleanup` step kind that removes exactly the previewed
//! items behind the `prune` approval policy (built-in `docker-cleanup`).
//!
//! - [`plan`] decides, from the engine's listings alone, what a clean-up
//!   removes and what it keeps (with why); [`preview`] disk usage, making
//!   a preview and queuing its run; [`store`] its SQL; [`api`] the
//!   routes: `GET /api/v1/engines/{id}/disk` (viewer),
//!   `POST /api/v1/engines/{id}/cleanup/preview` and
//!   `POST /api/v1/engines/{id}/cleanup` (operator, audited); [`step`] the
//!   `cleanup` step.
//!
//! Invariants:
//! - A clean-up removes only items of its preview, and each only if it is
//!   still unused right before its removal (checked against the engine,
//!   and the engine itself refuses in-use objects since nothing is
//!   forced); the rest is reported as skipped.
//! - One run per preview: `cleanup_previews.run_id` is set when the run is
//!   queued (and claimed by the step for a run started by hand), under the
//!   row's lock and a unique index.
//! - A preview older than [`PREVIEW_TTL_HOURS`] is refused: what it said
//!   may no longer be what the operator would approve.

pub mod api;
pub mod plan;
pub mod preview;
pub mod step;
pub mod store;

use futures::future::BoxFuture;
use opsdeck_wire::StepAction;

pub use api::router;

use crate::runbooks::step::{StepCx, StepKind, StepResult};

/// How long a preview may be applied after it was made.
pub const PREVIEW_TTL_HOURS: i64 = 24;
/// The built-in runbook that applies a preview.
pub const RUNBOOK: &str = "docker-cleanup";

/// What can go wrong in a clean-up; `error.rs` turns it into an answer.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    /// Input that breaks a rule (400); the message starts with the field.
    #[error("{0}")]
    Invalid(String),
    /// What was not found, e.g. `engine 7` (404).
    #[error("{0} not found")]
    NotFound(String),
    /// A preview already applied or too old, a missing runbook (409).
    #[error("{0}")]
    Conflict(String),
    /// The engine cannot answer now (503), with its reason.
    #[error("{0}")]
    Unavailable(String),
    /// Queuing the run failed (the run engine's own answer).
    #[error(transparent)]
    Run(#[from] crate::runbooks::engine::RunError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The `cleanup` step kind, registered with the runbook engine at start-up.
pub struct CleanupStep;

impl StepKind for CleanupStep {
    fn kind(&self) -> &'static str {
        "cleanup"
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepCx<'a>,
        action: &'a StepAction,
    ) -> BoxFuture<'a, StepResult> {
        Box::pin(async move {
            match action {
                StepAction::Cleanup { preview } => step::run(cx, preview).await,
                other => Err(format!("not a cleanup step: {}", other.kind())),
            }
        })
    }
}
