//! The daily check report and the incident reports.

use chrono::{DateTime, SecondsFormat, Utc};
use opsdeck_wire as w;

use super::{get, post, query, url, ApiError};

pub async fn list() -> Result<Vec<w::ReportSummary>, ApiError> {
    get(&url("/reports")).await
}

/// Makes a report now.
pub async fn create() -> Result<w::Report, ApiError> {
    post(&url("/reports"), &serde_json::json!({})).await
}

pub async fn get_one(id: i64) -> Result<w::Report, ApiError> {
    get(&url(&format!("/reports/{id}"))).await
}

fn range(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    query(&[
        (
            "from",
            Some(from.to_rfc3339_opts(SecondsFormat::Secs, true)),
        ),
        ("to", Some(to.to_rfc3339_opts(SecondsFormat::Secs, true))),
    ])
}

pub async fn incidents(
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<w::IncidentReport, ApiError> {
    get(&url(&format!("/reports/incidents{}", range(from, to)))).await
}

/// The same report as CSV, for a download link.
pub fn incidents_csv_url(from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    url(&format!("/reports/incidents/csv{}", range(from, to)))
}
