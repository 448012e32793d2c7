//! What the contacts and on-call domain refuses. Converted to the HTTP
//! answer in one place (`crate::error`, block "oncall"), which also maps
//! the unique names (people, teams, rotations, policies, the one default
//! policy) to 409.

/// A contacts and on-call domain error.
#[derive(Debug, thiserror::Error)]
pub enum OncallError {
    /// The change would break a rotation or an escalation level (409).
    #[error("{0}")]
    Conflict(String),
    /// A database error; unique-name violations become 409s.
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}
