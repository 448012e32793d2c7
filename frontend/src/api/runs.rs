//! Runbook runs: history, one run and its stream, operator actions.

use opsdeck_wire as w;
use serde::Serialize;

use super::{get, non_empty, post, query, url, ApiError};

/// Up to 200 runs, optionally with one `status` (empty: any) and of one
/// runbook.
pub async fn list(status: &str, runbook: Option<i64>) -> Result<Vec<w::RunSummary>, ApiError> {
    get(&url(&format!(
        "/runs{}",
        query(&[
            ("limit", Some("200".into())),
            ("status", non_empty(status)),
            ("runbook", runbook.map(|r| r.to_string())),
        ])
    )))
    .await
}

pub async fn get_one(id: i64) -> Result<w::Run, ApiError> {
    get(&url(&format!("/runs/{id}"))).await
}

/// One run's changes (Server-Sent Events).
pub fn events_url(id: i64) -> String {
    url(&format!("/runs/{id}/events"))
}

/// `action`: `cancel`, `retry`, … (the path segment).
pub async fn act(id: i64, action: &str) -> Result<w::Run, ApiError> {
    post(
        &url(&format!("/runs/{id}/{action}")),
        &serde_json::json!({}),
    )
    .await
}

pub async fn close(id: i64, body: &impl Serialize) -> Result<w::Run, ApiError> {
    post(&url(&format!("/runs/{id}/close")), body).await
}

/// Completes a manual step.
pub async fn complete_step(id: i64, step: i32, body: &impl Serialize) -> Result<w::Run, ApiError> {
    post(&url(&format!("/runs/{id}/steps/{step}/complete")), body).await
}
