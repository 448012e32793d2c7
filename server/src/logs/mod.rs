//! Log search across services and time: one query (text or regex, a level,
//! a time range) over the containers of any set of services or whole
//! stacks, read in parallel through the engines' logs API and streamed
//! back merged by timestamp, with context lines, counts per service, a cap
//! and a clear `truncated` mark.
//!
//! - [`matcher`]: what is a hit (pure): text or regex, the guessed level,
//!   the time bounds as written (`15m`, RFC 3339).
//! - [`merge`]: the k-way merge of the readers by timestamp, handing a line
//!   on as soon as no reader can still send an earlier one.
//! - [`search`]: the plan (validation, which containers) and the readers.
//! - [`api`]: `POST /api/v1/logs/search` (operators, audited with its
//!   query), NDJSON or a text download.
//!
//! Invariants:
//! - Nothing is collected: each reader is at most its channel ahead of the
//!   answer, so memory is bounded by the number of containers (at most
//!   [`search::MAX_CONTAINERS`]) whatever the size of the logs.
//! - A container that cannot be read (engine gone, container removed)
//!   never fails the search: its error is an event and is listed at the
//!   end, next to the other containers' results.
//! - Dropping the answer (cancel, client gone, shutdown, session ended)
//!   aborts every reader.

pub mod api;
pub mod matcher;
pub mod merge;
pub mod search;

pub use api::router;

/// What can go wrong with a search; `error.rs` turns it into an answer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Input that breaks a rule (400); the message starts with the field.
    #[error("{0}")]
    Invalid(String),
    /// A service or stack that does not exist (404).
    #[error("{0} not found")]
    NotFound(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}
