//! Notification channels.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, get, post, put, url, ApiError};

pub async fn list() -> Result<Vec<w::Channel>, ApiError> {
    get(&url("/channels")).await
}

/// Creates a channel (`id` unset) or saves one.
pub async fn save(id: Option<i64>, body: &impl Serialize) -> Result<w::Channel, ApiError> {
    match id {
        Some(id) => put(&url(&format!("/channels/{id}")), body).await,
        None => post(&url("/channels"), body).await,
    }
}

pub async fn remove(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/channels/{id}"))).await
}

/// Sends a test notification.
pub async fn test(id: i64, body: &impl Serialize) -> Result<w::ChannelTestResult, ApiError> {
    post(&url(&format!("/channels/{id}/test")), body).await
}
