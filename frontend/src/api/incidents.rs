//! Incidents: the list and its stream, one incident (actions, notes, log
//! excerpts, services), post-mortems.

use opsdeck_wire as w;
use serde::Serialize;

use super::{get, non_empty, patch, post, post_unit, put, query, url, ApiError};

/// Up to 200 incidents with `status`, optionally of one `severity` and
/// matching `q` (empty: any).
pub async fn list(status: &str, severity: &str, q: &str) -> Result<w::IncidentList, ApiError> {
    get(&url(&format!(
        "/incidents{}",
        query(&[
            ("limit", Some("200".into())),
            ("status", Some(status.to_string())),
            ("severity", non_empty(severity)),
            ("q", non_empty(q.trim())),
        ])
    )))
    .await
}

/// Every incident's changes (Server-Sent Events).
pub fn events_url() -> String {
    url("/incidents/events")
}

pub async fn create(body: &impl Serialize) -> Result<w::Incident, ApiError> {
    post(&url("/incidents"), body).await
}

pub async fn get_one(id: i64) -> Result<w::IncidentDetail, ApiError> {
    get(&url(&format!("/incidents/{id}"))).await
}

/// The runbooks bound to the incident's alert, with their parameters.
pub async fn runbooks(id: i64) -> Result<Vec<w::SuggestedRunbook>, ApiError> {
    get(&url(&format!("/incidents/{id}/runbooks"))).await
}

/// One incident's changes (Server-Sent Events).
pub fn incident_events_url(id: i64) -> String {
    url(&format!("/incidents/{id}/events"))
}

/// `action`: `acknowledge`, `resolve`, `reopen`, … (the path segment).
pub async fn act(id: i64, action: &str, body: &impl Serialize) -> Result<w::Incident, ApiError> {
    post(&url(&format!("/incidents/{id}/{action}")), body).await
}

pub async fn update(id: i64, body: &impl Serialize) -> Result<w::Incident, ApiError> {
    patch(&url(&format!("/incidents/{id}")), body).await
}

pub async fn add_note(id: i64, body: &impl Serialize) -> Result<(), ApiError> {
    post_unit(&url(&format!("/incidents/{id}/notes")), body).await
}

pub async fn add_log_excerpt(id: i64, body: &impl Serialize) -> Result<(), ApiError> {
    post_unit(&url(&format!("/incidents/{id}/log-excerpt")), body).await
}

pub async fn add_service(id: i64, body: &impl Serialize) -> Result<w::Incident, ApiError> {
    post(&url(&format!("/incidents/{id}/services")), body).await
}

pub async fn postmortem(id: i64) -> Result<w::Postmortem, ApiError> {
    get(&url(&format!("/incidents/{id}/postmortem"))).await
}

pub async fn save_postmortem(id: i64, body: &impl Serialize) -> Result<w::Postmortem, ApiError> {
    put(&url(&format!("/incidents/{id}/postmortem")), body).await
}

/// The post-mortem as Markdown, for a download link.
pub fn postmortem_markdown_url(id: i64) -> String {
    url(&format!("/incidents/{id}/postmortem/markdown"))
}
