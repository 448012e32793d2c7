//! Logging in and out, who is calling, one's own password.

use opsdeck_wire as w;

use super::{get, post, post_unit, url, ApiError};

pub async fn login(req: &w::LoginRequest) -> Result<w::Me, ApiError> {
    post(&url("/auth/login"), req).await
}

pub async fn logout() -> Result<(), ApiError> {
    post_unit(&url("/auth/logout"), &serde_json::json!({})).await
}

pub async fn me() -> Result<w::Me, ApiError> {
    get(&url("/me")).await
}

pub async fn change_password(req: &impl serde::Serialize) -> Result<(), ApiError> {
    post_unit(&url("/me/password"), req).await
}
