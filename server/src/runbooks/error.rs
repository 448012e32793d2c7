//! The runbooks capability's domain error.
//!
//! Domain code of `runbooks` (definitions, runs, approvals) returns
//! [`RunbookError`]; `crate::error` turns it into the HTTP answer in one
//! place, together with the constraint names that mean 409.

/// What can go wrong in a runbooks operation, by the answer it deserves.
#[derive(Debug, thiserror::Error)]
pub enum RunbookError {
    /// The request's data is refused (400).
    #[error("{0}")]
    Invalid(String),
    /// The caller may not do this (403).
    #[error("{0}")]
    Forbidden(String),
    /// Nothing by that id (404); the text names what, e.g. `run 7`.
    #[error("{0} not found")]
    NotFound(String),
    /// The state forbids it now (409).
    #[error("{0}")]
    Conflict(String),
    /// A database error (constraint names are mapped in `crate::error`).
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    /// A bug or stored data that cannot be read.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl RunbookError {
    /// A stored definition or status that no longer parses.
    pub fn stored(what: impl std::fmt::Display) -> RunbookError {
        RunbookError::Internal(anyhow::anyhow!("stored {what}"))
    }
}

pub type RunbookResult<T> = Result<T, RunbookError>;
