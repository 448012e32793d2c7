//! Maintenance: periods, windows, stacks and their actuators, the page
//! shown meanwhile.

use chrono::{DateTime, SecondsFormat, Utc};
use opsdeck_wire as w;
use serde::Serialize;

use super::{delete, enc, get, post, post_status, put, query, url, ApiError};

/// `status`: `open` or `all`.
pub async fn periods(status: &str) -> Result<Vec<w::MaintenancePeriod>, ApiError> {
    get(&url(&format!(
        "/maintenance/periods{}",
        query(&[("status", Some(status.to_string()))])
    )))
    .await
}

/// Starts (or requests) a period: the status says which.
pub async fn start_period(body: &impl Serialize) -> Result<(u16, w::MaintenancePeriod), ApiError> {
    post_status(&url("/maintenance/periods"), body).await
}

pub async fn period(id: i64) -> Result<w::MaintenancePeriodDetail, ApiError> {
    get(&url(&format!("/maintenance/periods/{id}"))).await
}

pub async fn end_period(
    id: i64,
    body: &w::EndMaintenance,
) -> Result<w::MaintenancePeriod, ApiError> {
    post(&url(&format!("/maintenance/periods/{id}/end")), body).await
}

pub async fn extend_period(
    id: i64,
    body: &w::ExtendMaintenance,
) -> Result<w::MaintenancePeriod, ApiError> {
    post(&url(&format!("/maintenance/periods/{id}/extend")), body).await
}

pub async fn stacks() -> Result<Vec<w::MaintenanceStack>, ApiError> {
    get(&url("/maintenance/stacks")).await
}

fn actuator_path(stack: &str) -> String {
    url(&format!("/maintenance/actuators/{}", enc(stack)))
}

pub async fn save_actuator(stack: &str, body: &impl Serialize) -> Result<w::Actuator, ApiError> {
    put(&actuator_path(stack), body).await
}

pub async fn remove_actuator(stack: &str) -> Result<(), ApiError> {
    delete(&actuator_path(stack)).await
}

/// The maintenance page as visitors would see it until `until`.
pub fn page_preview_url(until: DateTime<Utc>) -> String {
    url(&format!(
        "/maintenance/page{}",
        query(&[(
            "until",
            Some(until.to_rfc3339_opts(SecondsFormat::Secs, true))
        )])
    ))
}

pub async fn windows() -> Result<Vec<w::MaintenanceWindow>, ApiError> {
    get(&url("/maintenance/windows")).await
}

/// Creates a window (`id` unset) or saves one.
pub async fn save_window(
    id: Option<i64>,
    body: &impl Serialize,
) -> Result<w::MaintenanceWindow, ApiError> {
    match id {
        Some(id) => put(&url(&format!("/maintenance/windows/{id}")), body).await,
        None => post(&url("/maintenance/windows"), body).await,
    }
}

pub async fn remove_window(id: i64) -> Result<(), ApiError> {
    delete(&url(&format!("/maintenance/windows/{id}"))).await
}

pub async fn preview_window(body: &impl Serialize) -> Result<w::WindowPreview, ApiError> {
    post(&url("/maintenance/windows/preview"), body).await
}
