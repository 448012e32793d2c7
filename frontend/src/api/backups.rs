//! Backups: plans, storage targets, the catalog, one backup (verify,
//! restore, artifacts), what needs attention.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, delete_or_started, get, non_empty, post, put, query, url, ApiError};

pub async fn plans() -> Result<Vec<w::BackupPlan>, ApiError> {
    get(&url("/backup-plans")).await
}

/// Creates a plan (`id` unset) or saves one.
pub async fn save_plan(id: Option<i64>, body: &impl Serialize) -> Result<w::BackupPlan, ApiError> {
    match id {
        Some(id) => put(&url(&format!("/backup-plans/{id}")), body).await,
        None => post(&url("/backup-plans"), body).await,
    }
}

pub async fn remove_plan(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/backup-plans/{id}"))).await
}

/// Backs up now.
pub async fn run_plan(id: i64) -> Result<w::BackupRunStarted, ApiError> {
    post(
        &url(&format!("/backup-plans/{id}/run")),
        &serde_json::json!({}),
    )
    .await
}

pub async fn prune_preview(id: i64) -> Result<w::PrunePreview, ApiError> {
    get(&url(&format!("/backup-plans/{id}/prune"))).await
}

pub async fn targets() -> Result<Vec<w::BackupTarget>, ApiError> {
    get(&url("/backup-targets")).await
}

/// Creates a target (`id` unset) or saves one.
pub async fn save_target(
    id: Option<i64>,
    body: &impl Serialize,
) -> Result<w::BackupTarget, ApiError> {
    match id {
        Some(id) => put(&url(&format!("/backup-targets/{id}")), body).await,
        None => post(&url("/backup-targets"), body).await,
    }
}

pub async fn remove_target(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/backup-targets/{id}"))).await
}

/// The catalog, optionally of one plan and with one status (empty: any).
pub async fn list(plan: &str, status: &str) -> Result<Vec<w::BackupSummary>, ApiError> {
    get(&url(&format!(
        "/backups{}",
        query(&[("plan", non_empty(plan)), ("status", non_empty(status))])
    )))
    .await
}

pub async fn get_one(id: i64) -> Result<w::BackupDetail, ApiError> {
    get(&url(&format!("/backups/{id}"))).await
}

pub async fn verify(id: i64) -> Result<w::BackupRunStarted, ApiError> {
    post(
        &url(&format!("/backups/{id}/verify")),
        &serde_json::json!({}),
    )
    .await
}

/// Deletes a backup: at once (`None`) or through a run (`Some`).
pub async fn remove(id: i64) -> Result<Option<w::BackupRunStarted>, ApiError> {
    delete_or_started(&url(&format!("/backups/{id}"))).await
}

pub async fn restore(id: i64, req: &impl Serialize) -> Result<w::BackupRunStarted, ApiError> {
    post(&url(&format!("/backups/{id}/restore")), req).await
}

/// One artifact of a backup, for a download link.
pub fn artifact_url(id: i64, index: i32) -> String {
    url(&format!("/backups/{id}/artifacts/{index}"))
}

pub async fn attention() -> Result<Vec<w::BackupAttention>, ApiError> {
    get(&url("/backups/attention")).await
}
