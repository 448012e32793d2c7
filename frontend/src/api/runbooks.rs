//! Runbooks: the list, one runbook and its versions, dry runs and runs.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, get, post, put, url, ApiError};

pub async fn list() -> Result<Vec<w::RunbookSummary>, ApiError> {
    get(&url("/runbooks")).await
}

pub async fn get_one(id: i64) -> Result<w::Runbook, ApiError> {
    get(&url(&format!("/runbooks/{id}"))).await
}

pub async fn versions(id: i64) -> Result<Vec<w::RunbookVersion>, ApiError> {
    get(&url(&format!("/runbooks/{id}/versions"))).await
}

/// Creates a runbook from fields, or (`import`) from its YAML.
pub async fn create(import: bool, body: &impl Serialize) -> Result<w::Runbook, ApiError> {
    let path = if import {
        "/runbooks/import"
    } else {
        "/runbooks"
    };
    post(&url(path), body).await
}

pub async fn update(id: i64, body: &impl Serialize) -> Result<w::Runbook, ApiError> {
    put(&url(&format!("/runbooks/{id}")), body).await
}

pub async fn remove(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/runbooks/{id}"))).await
}

pub async fn dry_run(id: i64, body: &impl Serialize) -> Result<w::DryRun, ApiError> {
    post(&url(&format!("/runbooks/{id}/dry-run")), body).await
}

pub async fn start(id: i64, body: &impl Serialize) -> Result<w::Run, ApiError> {
    post(&url(&format!("/runbooks/{id}/runs")), body).await
}

/// The runbook as YAML, for a download link.
pub fn export_url(id: i64) -> String {
    url(&format!("/runbooks/{id}/export"))
}
