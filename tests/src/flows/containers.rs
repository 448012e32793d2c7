//! Container-engine flows through the API: register an engine, wait for
//! an engine's state.

use std::time::Duration;

use opsdeck_wire::{Engine, EngineState};

use crate::server::Api;
use crate::util::{ok_json, poll};

/// Polls GET /api/v1/engines until `name` is in `state`.
pub async fn wait_engine(api: &Api, name: &str, state: EngineState) -> Engine {
    poll(
        Duration::from_secs(60),
        &format!("engine {name} {state:?}"),
        async || {
            let list: Vec<Engine> = api.json("/api/v1/engines").await;
            let e = list
                .into_iter()
                .find(|e| e.name == name)
                .ok_or_else(|| format!("engine {name} is not listed"))?;
            if e.state == state {
                Ok(e)
            } else {
                Err(format!("{:?}, last_error: {:?}", e.state, e.last_error))
            }
        },
    )
    .await
}

/// Registers engine `name` at `endpoint` (admin) and waits until it is
/// connected.
pub async fn connect_engine(admin: &Api, name: &str, endpoint: &str) -> Engine {
    ok_json::<serde_json::Value>(
        admin
            .post(
                "/api/v1/engines",
                &serde_json::json!({"name": name, "endpoint": endpoint}),
            )
            .await,
        "registering the engine",
    )
    .await;
    wait_engine(admin, name, EngineState::Connected).await
}
