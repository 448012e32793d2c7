//! Services (the inventory), their actions, logs, stats and exec; compose
//! stacks' actions.

use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, enc, get, get_text, patch, post, put, url, ApiError};

pub async fn list() -> Result<Vec<w::ServiceOverview>, ApiError> {
    get(&url("/services")).await
}

/// One page of the services page: searched, filtered and ordered by the
/// server.
pub async fn page(
    q: &str,
    problems: bool,
    offset: usize,
    limit: usize,
) -> Result<w::ServicePage, ApiError> {
    get(&url(&format!(
        "/services/page?q={}&problems={problems}&offset={offset}&limit={limit}",
        enc(q)
    )))
    .await
}

pub async fn get_one(id: i64) -> Result<w::ServiceOverview, ApiError> {
    get(&url(&format!("/services/{id}"))).await
}

pub async fn create(input: &impl Serialize) -> Result<w::Service, ApiError> {
    post(&url("/services"), input).await
}

pub async fn update(id: i64, input: &impl Serialize) -> Result<w::Service, ApiError> {
    patch(&url(&format!("/services/{id}")), input).await
}

pub async fn remove(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/services/{id}"))).await
}

/// Start, stop, restart, … a service's containers.
pub async fn act(id: i64, req: &impl Serialize) -> Result<w::ActionRecord, ApiError> {
    post(&url(&format!("/services/{id}/actions")), req).await
}

/// An action on every service of a compose project.
pub async fn act_on_stack(
    project: &str,
    req: &impl Serialize,
) -> Result<w::ActionRecord, ApiError> {
    post(&url(&format!("/stacks/{}/actions", enc(project))), req).await
}

pub async fn activity(id: i64) -> Result<Vec<w::ActionRecord>, ApiError> {
    get(&url(&format!("/services/{id}/activity"))).await
}

pub async fn stack_activity(project: &str) -> Result<Vec<w::ActionRecord>, ApiError> {
    get(&url(&format!("/stacks/{}/activity", enc(project)))).await
}

/// The logs' URL for a query string from [`super::query`] (`?tail=…`):
/// fetched, followed (SSE) or downloaded.
pub fn logs_url(id: i64, query: &str) -> String {
    url(&format!("/services/{id}/logs{query}"))
}

pub async fn logs(id: i64, query: &str) -> Result<String, ApiError> {
    get_text(&logs_url(id, query)).await
}

pub async fn stats(id: i64) -> Result<Vec<w::ContainerStats>, ApiError> {
    get(&url(&format!("/services/{id}/stats"))).await
}

pub async fn exec(id: i64, req: &impl Serialize) -> Result<w::ExecResult, ApiError> {
    post(&url(&format!("/services/{id}/exec")), req).await
}

pub async fn inspect(id: i64) -> Result<Vec<serde_json::Value>, ApiError> {
    get(&url(&format!("/services/{id}/inspect"))).await
}

/// Shown on the public status page or not, and under which name.
pub async fn set_public(id: i64, input: &impl Serialize) -> Result<w::ServiceStatus, ApiError> {
    put(&url(&format!("/services/{id}/public")), input).await
}
