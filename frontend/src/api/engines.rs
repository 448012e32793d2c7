//! Docker engines.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, get, post, url, ApiError};

pub async fn list() -> Result<Vec<w::Engine>, ApiError> {
    get(&url("/engines")).await
}

/// The engines overview: each engine with its containers, host figures,
/// services and pending updates.
pub async fn overview() -> Result<Vec<w::EngineOverview>, ApiError> {
    get(&url("/engines/overview")).await
}

pub async fn create(req: &impl Serialize) -> Result<w::Engine, ApiError> {
    post(&url("/engines"), req).await
}

/// The host keys an SSH engine's host offers (to confirm before adding it).
pub async fn ssh_host_keys(endpoint: &str) -> Result<Vec<w::SshHostKey>, ApiError> {
    let req = w::SshHostKeysRequest {
        endpoint: endpoint.to_owned(),
    };
    post(&url("/engines/ssh-host-keys"), &req).await
}

pub async fn remove(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/engines/{id}"))).await
}

/// An engine's disk usage (`docker system df`).
pub async fn disk(id: i64) -> Result<w::DiskUsage, ApiError> {
    get(&url(&format!("/engines/{id}/disk"))).await
}

/// What a clean-up would remove (stored as a preview to apply).
pub async fn cleanup_preview(
    id: i64,
    req: &w::CleanupRequest,
) -> Result<w::CleanupPreview, ApiError> {
    post(&url(&format!("/engines/{id}/cleanup/preview")), req).await
}

/// Applies a preview: the `docker-cleanup` run.
pub async fn cleanup(id: i64, preview_id: i64) -> Result<w::CleanupStarted, ApiError> {
    post(
        &url(&format!("/engines/{id}/cleanup")),
        &w::CleanupApply { preview_id },
    )
    .await
}
