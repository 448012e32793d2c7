//! Image updates: what discovery saw, "check now", the per-service update
//! settings, the version history, and starting the built-in `image-update`
//! runbook.

use std::collections::BTreeMap;

use opsdeck_wire as w;

use super::{get, post, put, url, ApiError};

/// The name of the built-in runbook that updates (or rolls back) one
/// service: params `service` (its name) and `to` (empty: the tag's latest
/// image; else a digest or image id).
pub const IMAGE_UPDATE: &str = "image-update";

pub async fn list() -> Result<Vec<w::ImageStatus>, ApiError> {
    get(&url("/updates")).await
}

/// Asks the registries now (operators); `None` checks every service.
pub async fn check(service_ids: Option<Vec<i64>>) -> Result<Vec<w::ImageStatus>, ApiError> {
    post(&url("/updates/check"), &w::UpdateCheck { service_ids }).await
}

pub async fn settings(id: i64) -> Result<w::UpdateSettings, ApiError> {
    get(&url(&format!("/services/{id}/update-settings"))).await
}

pub async fn save_settings(id: i64, s: &w::UpdateSettings) -> Result<w::UpdateSettings, ApiError> {
    put(&url(&format!("/services/{id}/update-settings")), s).await
}

/// Which image a service ran when, newest first.
pub async fn versions(id: i64) -> Result<Vec<w::ImageVersion>, ApiError> {
    get(&url(&format!("/services/{id}/image-versions"))).await
}

/// Starts `image-update` for `service` (moving to `to`; empty: the latest
/// image of its tag) and returns the run.
pub async fn start_update(service: &str, to: &str, reason: &str) -> Result<w::Run, ApiError> {
    let runbooks = super::runbooks::list().await?;
    let Some(rb) = runbooks.into_iter().find(|r| r.name == IMAGE_UPDATE) else {
        return Err(ApiError {
            status: 404,
            code: "not_found".into(),
            message: format!("The built-in runbook \"{IMAGE_UPDATE}\" is not installed."),
            field: None,
        });
    };
    let mut params = BTreeMap::new();
    params.insert("service".to_string(), serde_json::json!(service));
    params.insert("to".to_string(), serde_json::json!(to));
    super::runbooks::start(
        rb.id,
        &w::StartRun {
            params,
            reason: reason.to_string(),
            incident: None,
        },
    )
    .await
}
