//! Runbooks: definitions, runs, approvals and schedules.
//!
//! - [`def`]: definitions validated at the boundary, typed parameters,
//!   templating, YAML, the approval binding.
//! - [`output`]: bounded step output.
//! - [`dbops`]: the database catalogue (Postgres, MariaDB/MySQL).
//! - [`builtins`]: the handbooks' procedures shipped as editable runbooks.

pub mod builtins;
pub mod dbops;
pub mod def;
pub mod output;
