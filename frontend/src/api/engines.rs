//! Docker engines.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, get, post, url, ApiError};

pub async fn list() -> Result<Vec<w::Engine>, ApiError> {
    get(&url("/engines")).await
}

pub async fn create(req: &impl Serialize) -> Result<w::Engine, ApiError> {
    post(&url("/engines"), req).await
}

pub async fn remove(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/engines/{id}"))).await
}
