//! The service inventory: services, the containers they map to, the
//! dependency graph, and the ways services get in (manual edits, compose
//! import, discovery from container labels, whole-inventory YAML).
//!
//! - [`compose`] parses docker-compose files; [`yaml`] is the inventory's
//!   config-as-code format; [`graph`] the dependency graph's algorithms and
//!   layout; [`plan`] turns a desired state into a diff and applies it.
//! - Routes: `/api/v1/services…` (viewer reads, admin writes),
//!   `/api/v1/graph…` (viewer), `/api/v1/inventory/…` (viewer reads and
//!   previews, admin applies), `/api/v1/inventory/events` (SSE: a `changed`
//!   event whenever services or container states change).
//!
//! Invariants:
//! - Every write to services or dependencies holds the transaction-level
//!   advisory lock [`lock`], so the acyclicity check and the write see the
//!   same graph; the graph is checked ([`graph::DepGraph::new`]) before any
//!   change commits.
//! - Imports never half-apply: the whole plan is computed and validated
//!   first, then applied in one transaction with its audit entry.
//! - Fields a user edited by hand are recorded in `edited_fields`; compose
//!   imports and discovery leave them alone. YAML import is authoritative
//!   (config as code) and clears the marks.

pub mod api;
mod cache;
pub mod compose;
mod containers;
pub mod discovered;
pub mod graph;
mod model;
pub mod page;
pub mod plan;
pub mod store;
pub mod yaml;
pub mod yamlpos;

pub use api::{router, text_download, GraphQueryParams};
pub use cache::{Overviews, SnapshotCache};
pub use containers::{overview, summarise, ContainerIndex};
pub use model::*;
pub use store::{engine_id, lock, set_requires, write_service};

/// What can go wrong in the inventory; `error.rs` turns it into an answer.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    /// Input that breaks a rule (400); the message starts with the field.
    #[error("{0}")]
    Invalid(String),
    /// What was not found, e.g. `service 7` (404).
    #[error("{0} not found")]
    NotFound(String),
    /// A name already taken (409).
    #[error("{0}")]
    Conflict(String),
    /// An engine could not do what was asked now (503), with its reason.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Engine(#[from] crate::engines::EngineError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}
