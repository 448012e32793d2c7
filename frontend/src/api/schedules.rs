//! Runbook schedules.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, get, post, put, query, url, ApiError};

pub async fn list() -> Result<Vec<w::Schedule>, ApiError> {
    get(&url("/schedules")).await
}

/// Creates a schedule (`id` unset) or saves one.
pub async fn save(id: Option<i64>, body: &impl Serialize) -> Result<w::Schedule, ApiError> {
    match id {
        Some(id) => put(&url(&format!("/schedules/{id}")), body).await,
        None => post(&url("/schedules"), body).await,
    }
}

pub async fn remove(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/schedules/{id}"))).await
}

/// The next times `cron` fires in `timezone`.
pub async fn preview(cron: &str, timezone: &str) -> Result<w::CronPreview, ApiError> {
    get(&url(&format!(
        "/schedules/preview{}",
        query(&[
            ("cron", Some(cron.to_string())),
            ("timezone", Some(timezone.to_string())),
        ])
    )))
    .await
}
