//! Users, API tokens and the audit log.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, get, patch, post, post_unit, url, ApiError};

pub async fn users() -> Result<Vec<w::User>, ApiError> {
    get(&url("/users")).await
}

pub async fn create_user(req: &impl Serialize) -> Result<w::User, ApiError> {
    post(&url("/users"), req).await
}

pub async fn update_user(id: i64, req: &impl Serialize) -> Result<w::User, ApiError> {
    patch(&url(&format!("/users/{id}")), req).await
}

/// Ends every session of a user.
pub async fn end_sessions(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/users/{id}/sessions"))).await
}

pub async fn reset_password(id: i64, req: &w::ResetPasswordRequest) -> Result<(), ApiError> {
    post_unit(&url(&format!("/users/{id}/password")), req).await
}

pub async fn tokens() -> Result<Vec<w::ApiToken>, ApiError> {
    get(&url("/tokens")).await
}

pub async fn create_token(req: &impl Serialize) -> Result<w::CreatedApiToken, ApiError> {
    post(&url("/tokens"), req).await
}

pub async fn revoke_token(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/tokens/{id}"))).await
}

/// A page of the audit log; `query` from [`super::query`].
pub async fn audit(query: &str) -> Result<w::AuditPage, ApiError> {
    get(&url(&format!("/audit{query}"))).await
}

pub async fn verify_audit() -> Result<w::AuditVerifyReport, ApiError> {
    get(&url("/audit/verify")).await
}
