//! Importing and exporting the inventory (compose files, discovered
//! projects, YAML) and its change stream.

use opsdeck_wire as w;
use serde::Serialize;

use super::{get, post, url, ApiError};

/// A compose file's import plan (or its import).
pub async fn compose(req: &impl Serialize) -> Result<w::ImportPlan, ApiError> {
    post(&url("/inventory/compose"), req).await
}

pub async fn discovered() -> Result<Vec<w::DiscoveredProject>, ApiError> {
    get(&url("/inventory/discovered")).await
}

pub async fn import_discovered(req: &impl Serialize) -> Result<w::ImportPlan, ApiError> {
    post(&url("/inventory/discovered"), req).await
}

/// Imports inventory YAML.
pub async fn import(req: &impl Serialize) -> Result<w::ImportPlan, ApiError> {
    post(&url("/inventory/import"), req).await
}

/// The inventory as YAML, for a download link.
pub fn export_url() -> String {
    url("/inventory/export")
}

/// Inventory changes (Server-Sent Events).
pub fn events_url() -> String {
    url("/inventory/events")
}
