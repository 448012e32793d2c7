//! On-call: who is on call now, people, teams, rotations (and their
//! overrides), escalation policies.

use opsdeck_wire as w;
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{delete, get, post, put, url, ApiError};

/// The contact lists the admin pages edit the same way.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    People,
    Teams,
    Rotations,
    EscalationPolicies,
}

impl Collection {
    fn path(self) -> &'static str {
        match self {
            Collection::People => "/people",
            Collection::Teams => "/teams",
            Collection::Rotations => "/rotations",
            Collection::EscalationPolicies => "/escalation-policies",
        }
    }
}

/// Adds a record (`id` unset) to a collection or saves one.
pub async fn save<T: DeserializeOwned>(
    collection: Collection,
    id: Option<i64>,
    body: &impl Serialize,
) -> Result<T, ApiError> {
    match id {
        Some(id) => put(&url(&format!("{}/{id}", collection.path())), body).await,
        None => post(&url(collection.path()), body).await,
    }
}

/// Something to remove: a record of a collection or a rotation's override.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    Record(Collection, i64),
    Override { rotation: i64, id: i64 },
}

pub async fn remove(what: Removal) -> Result<(), ApiError> {
    let path = match what {
        Removal::Record(c, id) => format!("{}/{id}", c.path()),
        Removal::Override { rotation, id } => format!("/rotations/{rotation}/overrides/{id}"),
    };
    delete(&url(&path)).await
}

pub async fn on_call() -> Result<Vec<w::OnCall>, ApiError> {
    get(&url("/oncall")).await
}

pub async fn people() -> Result<Vec<w::Person>, ApiError> {
    get(&url("/people")).await
}

pub async fn teams() -> Result<Vec<w::Team>, ApiError> {
    get(&url("/teams")).await
}

pub async fn rotations() -> Result<Vec<w::Rotation>, ApiError> {
    get(&url("/rotations")).await
}

pub async fn escalation_policies() -> Result<Vec<w::EscalationPolicy>, ApiError> {
    get(&url("/escalation-policies")).await
}

pub async fn add_override(
    rotation: i64,
    body: &impl Serialize,
) -> Result<w::RotationOverride, ApiError> {
    post(&url(&format!("/rotations/{rotation}/overrides")), body).await
}
