//! Health checks, their history, the check engine and its settings.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, get, patch, post, put, query, url, ApiError};

pub async fn list() -> Result<Vec<w::Check>, ApiError> {
    get(&url("/checks")).await
}

pub async fn of_service(service_id: i64) -> Result<Vec<w::Check>, ApiError> {
    get(&url(&format!(
        "/checks{}",
        query(&[("service_id", Some(service_id.to_string()))])
    )))
    .await
}

pub async fn create(input: &impl Serialize) -> Result<w::Check, ApiError> {
    post(&url("/checks"), input).await
}

pub async fn update(id: i64, input: &impl Serialize) -> Result<w::Check, ApiError> {
    patch(&url(&format!("/checks/{id}")), input).await
}

pub async fn remove(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/checks/{id}"))).await
}

/// Probes once now.
pub async fn run(id: i64) -> Result<w::ProbeResult, ApiError> {
    post(&url(&format!("/checks/{id}/run")), &serde_json::json!({})).await
}

/// `range`: `24h`, `7d`, ….
pub async fn history(id: i64, range: &str) -> Result<w::CheckHistory, ApiError> {
    get(&url(&format!(
        "/checks/{id}/history{}",
        query(&[("range", Some(range.to_string()))])
    )))
    .await
}

pub async fn engine_stats() -> Result<w::CheckEngineStats, ApiError> {
    get(&url("/checks/engine")).await
}

pub async fn settings() -> Result<w::HealthSettings, ApiError> {
    get(&url("/checks/settings")).await
}

pub async fn save_settings(input: &impl Serialize) -> Result<w::HealthSettings, ApiError> {
    put(&url("/checks/settings"), input).await
}

/// Previews a Prometheus rules file as checks.
pub async fn rules_preview(req: &w::RulesImportRequest) -> Result<w::RulesImportPlan, ApiError> {
    post(&url("/checks/import-rules/preview"), req).await
}

/// Creates the selected checks of a rules file (one transaction).
pub async fn rules_apply(req: &w::RulesImportRequest) -> Result<w::RulesImportPlan, ApiError> {
    post(&url("/checks/import-rules/apply"), req).await
}
