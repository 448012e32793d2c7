//! An engine's events applied to its cache, and the state-changing ones
//! passed on ([`ContainerEvent`], [`super::EngineHub::container_events`]).

use bollard::models::EventMessage;
use opsdeck_wire::ContainerInfo;

use super::{read, write, Client, EngineConn};

/// A container whose state an engine event changed, sent once the cache
/// holds the change ([`super::EngineHub::container_events`]). Only the actions
/// that change whether a service runs: `start`, `die`, `oom`, `kill`,
/// `stop`, `restart`, `pause`, `unpause`, `destroy` and `health_status…`.
#[derive(Debug, Clone)]
pub struct ContainerEvent {
    /// The container as cached after the event (before removal, for
    /// `destroy`).
    pub container: ContainerInfo,
    pub action: String,
}

/// Whether an event's action can change a service's run state or health.
fn changes_state(action: &str) -> bool {
    matches!(
        action,
        "start" | "die" | "oom" | "kill" | "stop" | "restart" | "pause" | "unpause" | "destroy"
    ) || action.starts_with("health_status")
}

/// Applies one event to the cache; the container it changed, when its
/// action can change a service's state.
pub(super) async fn handle_event(
    conn: &EngineConn,
    docker: &Client,
    ev: EventMessage,
) -> Option<ContainerEvent> {
    let action = ev.action.unwrap_or_default();
    let id = ev.actor.and_then(|a| a.id)?;
    if action.starts_with("exec_") || action == "attach" || action == "top" || action == "resize" {
        return None;
    }
    let cached = |id: &str| read(&conn.containers).get(id).cloned();
    if action == "destroy" {
        let gone = write(&conn.containers).remove(&id);
        write(&conn.compose_deps).remove(&id);
        return gone.map(|container| ContainerEvent { container, action });
    }
    if let Err(e) = conn.refresh_container(docker, &id).await {
        tracing::warn!(engine = %conn.name, container = %id, error = %format!("{e:#}"), "could not refresh a container after an event");
    }
    if !changes_state(&action) {
        return None;
    }
    cached(&id).map(|container| ContainerEvent { container, action })
}
