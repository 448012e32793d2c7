//! Resource history: a service's and the host's charts, the forecasts
//! that fill up soon, and the monthly capacity report.

use opsdeck_wire as w;

use super::{get, query, url, ApiError};

/// A service's CPU, memory and network for `range` (`day`, `week`, `month`).
pub async fn service(id: i64, range: &str) -> Result<w::ResourceHistory, ApiError> {
    get(&url(&format!(
        "/services/{id}/resources{}",
        query(&[("range", Some(range.to_owned()))])
    )))
    .await
}

/// The Opsdeck host: CPU, memory, network, disks, each engine's containers.
pub async fn host(range: &str) -> Result<w::ResourceHistory, ApiError> {
    get(&url(&format!(
        "/hosts/local/resources{}",
        query(&[("range", Some(range.to_owned()))])
    )))
    .await
}

/// Disks and memory that fill up within `within_days`.
pub async fn forecasts(within_days: f64) -> Result<w::ForecastList, ApiError> {
    get(&url(&format!(
        "/resources/forecasts{}",
        query(&[("within_days", Some(within_days.to_string()))])
    )))
    .await
}

/// The capacity report of `month` (`YYYY-MM`; the current month when empty).
pub async fn capacity(month: &str) -> Result<w::CapacityReport, ApiError> {
    let m = (!month.is_empty()).then(|| month.to_owned());
    get(&url(&format!(
        "/reports/capacity{}",
        query(&[("month", m)])
    )))
    .await
}
