//! Maintenance's domain error: what opening, ending, extending a period,
//! editing windows and configuring actuators can refuse. Converted to the
//! HTTP error in one place (`crate::error`, block `maintenance`).

use crate::runbooks::engine::RunError;

#[derive(Debug, thiserror::Error)]
pub enum MaintenanceError {
    /// A request field is wrong (`field: message`).
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    /// The period, window or stack is not in a state that allows it.
    #[error("{0}")]
    Conflict(String),
    /// Queueing the enable or disable run failed.
    #[error(transparent)]
    Run(#[from] RunError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = MaintenanceError> = std::result::Result<T, E>;
