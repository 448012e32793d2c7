//! The contacts and on-call SQL, compile-checked against the schema. One
//! statement per function, no rules: the handlers in [`super::api`] and
//! the shared loaders in [`super`] decide. Split by topic: [`reads`] (what
//! the domain shares: escalation targets, rotation specs, the write
//! guard), [`people`] (people and teams), [`rotations`] (rotations,
//! members, overrides), [`policies`] (escalation policies, levels,
//! targets). Everything is re-exported here, so callers say `store::x`.

mod people;
mod policies;
mod reads;
mod rotations;

pub use people::*;
pub use policies::*;
pub use reads::*;
pub use rotations::*;
