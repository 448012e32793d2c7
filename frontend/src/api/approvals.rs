//! Approval requests and the policies that ask for them.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, enc, get, post, put, url, ApiError};

pub async fn count() -> Result<w::ApprovalCount, ApiError> {
    get(&url("/approvals/count")).await
}

pub async fn pending() -> Result<Vec<w::Approval>, ApiError> {
    get(&url("/approvals?status=pending")).await
}

/// Approves (`approve`) or denies a request.
pub async fn vote(id: i64, approve: bool, body: &impl Serialize) -> Result<w::Approval, ApiError> {
    let what = if approve { "approve" } else { "deny" };
    post(&url(&format!("/approvals/{id}/{what}")), body).await
}

pub async fn policies() -> Result<Vec<w::ActionPolicy>, ApiError> {
    get(&url("/approval-policies")).await
}

/// `key`: the action the policy is for.
pub async fn save_policy(
    key: &str,
    policy: &impl Serialize,
) -> Result<serde_json::Value, ApiError> {
    put(&url(&format!("/approval-policies/{}", enc(key))), policy).await
}

pub async fn remove_policy(key: &str) -> Result<(), ApiError> {
    delete(&url(&format!("/approval-policies/{}", enc(key)))).await
}
