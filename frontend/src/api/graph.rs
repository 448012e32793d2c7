//! The dependency graph and its queries.

use opsdeck_wire as w;

use super::{get, query, url, ApiError};

pub async fn view() -> Result<w::GraphView, ApiError> {
    get(&url("/graph")).await
}

/// What depends on `service`, directly or not.
pub async fn impact(service: &str) -> Result<w::GraphQueryResult, ApiError> {
    get(&url(&format!(
        "/graph/query{}",
        query(&[
            ("kind", Some("impact".into())),
            ("services", Some(service.to_string())),
        ])
    )))
    .await
}
