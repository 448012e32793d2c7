//! Service flows through the API: create a service, read the status board.

use opsdeck_wire::{Service, StatusBoard};
use serde_json::json;

use crate::server::Api;
use crate::util::ok_json;

/// Creates the service `name` of `tier` requiring the services named.
pub async fn create_service(admin: &Api, name: &str, tier: &str, requires: &[&str]) -> Service {
    ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": name, "tier": tier, "requires": requires}),
            )
            .await,
        "create service",
    )
    .await
}

/// The status board (GET /api/v1/status).
pub async fn board(api: &Api) -> StatusBoard {
    api.json("/api/v1/status").await
}
