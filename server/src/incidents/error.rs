//! What the incidents domain refuses, and why. Converted to the HTTP
//! answer in one place (`crate::error`, block "incidents").

/// An incidents domain error.
#[derive(Debug, thiserror::Error)]
pub enum IncidentError {
    /// No incident with this id (404).
    #[error("incident {0}")]
    NotFound(i64),
    /// Input the rules refuse, with the field named first (400).
    #[error("{0}")]
    Invalid(String),
    /// The incident's state does not allow the change (409).
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// Results of the incidents domain.
pub type Result<T, E = IncidentError> = std::result::Result<T, E>;

/// Shorthand for [`IncidentError::Invalid`].
pub(crate) fn invalid(msg: impl Into<String>) -> IncidentError {
    IncidentError::Invalid(msg.into())
}
