//! Incident flows through the API: declare one, read its detail.

use opsdeck_wire::{Incident, IncidentDetail};
use serde_json::Value;

use crate::server::Api;
use crate::util::ok_json;

pub async fn declare(api: &Api, body: Value) -> Incident {
    ok_json(
        api.post("/api/v1/incidents", &body).await,
        "declare incident",
    )
    .await
}

pub async fn detail(api: &Api, id: i64) -> IncidentDetail {
    api.json(&format!("/api/v1/incidents/{id}")).await
}
