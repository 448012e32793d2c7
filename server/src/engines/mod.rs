//! Docker Engines as the panel manages them: the `engines` table, the
//! `/api/v1/engines` routes (viewers see state, admins add and remove), and
//! keeping the [`EngineHub`](crate::docker::EngineHub)'s supervisors in step
//! with the table.
//!
//! Layers: `api` (routes), this module (rules: names, endpoints, TLS paths;
//! [`EngineError`]; hub sync; the default engine), [`store`] (SQL). Engines
//! sit below the inventory: the inventory imports this module, never the
//! other way round.
//!
//! On first start with no engine registered, `opsdeck serve` registers
//! `local` from `DOCKER_HOST` (default `unix:///var/run/docker.sock`).

mod api;
pub mod store;

use futures::future::BoxFuture;
use opsdeck_wire::Engine;
use serde_json::json;
use sqlx::PgPool;

pub use api::router;

use crate::docker::{ssh, validate_endpoint};
use crate::state::AppState;

/// What can go wrong with engines; `error.rs` turns it into an answer.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Input that breaks a rule (400); the message starts with the field.
    #[error("{0}")]
    Invalid(String),
    /// What was not found, e.g. `engine 3` (404).
    #[error("{0} not found")]
    NotFound(String),
    /// The engine's host could not be asked (502), e.g. no host key.
    #[error("{0}")]
    Unreachable(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// The rule for engine names (the same as for service names).
const NAME_RULE: &str =
    "names must be 1 to 63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit";

/// Checks an engine's name: `^[a-z0-9][a-z0-9._-]{0,62}$`. Kept here (not
/// borrowed from the inventory's service names) so engines do not depend
/// on the inventory.
pub fn validate_name(name: &str) -> Result<(), EngineError> {
    let bytes = name.as_bytes();
    let ok = bytes
        .first()
        .is_some_and(|f| f.is_ascii_lowercase() || f.is_ascii_digit())
        && bytes.len() <= 63
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        });
    if ok {
        Ok(())
    } else {
        Err(EngineError::Invalid(format!(
            "name: \"{name}\" is not a valid name: {NAME_RULE}"
        )))
    }
}

/// The host key to pin for an SSH engine: `given` is a key line (taken
/// as is) or a fingerprint, which one of the keys the host offers now must
/// match.
pub async fn pin_host_key(
    endpoint: &str,
    given: Option<&str>,
) -> Result<ssh::HostKey, EngineError> {
    let given = given
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .ok_or_else(|| {
            EngineError::Invalid(
                "ssh_host_key: an SSH engine needs its host key pinned: fetch the host's keys, \
             confirm the fingerprint, and send the key (or the fingerprint)"
                    .into(),
            )
        })?;
    if !given.starts_with("SHA256:") {
        return ssh::parse_host_key(given)
            .map_err(|e| EngineError::Invalid(format!("ssh_host_key: {e}")));
    }
    let offered = scan(endpoint).await?;
    let found = offered.iter().find(|k| k.fingerprint == given).cloned();
    found.ok_or_else(|| {
        let list: Vec<&str> = offered.iter().map(|k| k.fingerprint.as_str()).collect();
        EngineError::Invalid(format!(
            "ssh_host_key: the host offers {}, not {given}: refused",
            list.join(", ")
        ))
    })
}

/// The host keys an SSH endpoint's host offers now.
pub async fn scan(endpoint: &str) -> Result<Vec<ssh::HostKey>, EngineError> {
    let (_, host, port) =
        ssh::parse_url(endpoint).map_err(|e| EngineError::Invalid(format!("endpoint: {e}")))?;
    ssh::scan_host_keys(&host, port)
        .await
        .map_err(|e| EngineError::Unreachable(format!("{e:#}")))
}

/// Checks an engine's endpoint and TLS paths.
pub fn validate(
    endpoint: &str,
    ca: &Option<String>,
    cert: &Option<String>,
    key: &Option<String>,
) -> Result<(), EngineError> {
    validate_endpoint(endpoint).map_err(|e| EngineError::Invalid(format!("endpoint: {e}")))?;
    match (ca, cert, key) {
        (None, None, None) => Ok(()),
        (Some(a), Some(b), Some(c)) => {
            for (f, p) in [("tls_ca", a), ("tls_cert", b), ("tls_key", c)] {
                if !p.starts_with('/') || p.contains('\n') {
                    return Err(EngineError::Invalid(format!(
                        "{f}: must be an absolute path on the Opsdeck host"
                    )));
                }
            }
            if !endpoint.starts_with("tcp://") && !endpoint.starts_with("https://") {
                return Err(EngineError::Invalid(
                    "TLS applies to tcp:// endpoints only".into(),
                ));
            }
            Ok(())
        }
        _ => Err(EngineError::Invalid(
            "tls_ca, tls_cert and tls_key: give all three or none".into(),
        )),
    }
}

/// The engines table, for the hub.
pub use store::load;

/// Registers with `fanout` (another replica's engine change re-syncs this
/// process's hub) and loads the engines into the hub. Called once when the
/// server starts.
pub async fn start(state: &AppState) -> sqlx::Result<()> {
    crate::fanout::on_engines(resync);
    sync_hub(state).await
}

fn resync(state: &AppState) -> BoxFuture<'_, sqlx::Result<()>> {
    Box::pin(sync_hub(state))
}

/// Makes the hub's supervisors match the table.
pub async fn sync_hub(state: &AppState) -> sqlx::Result<()> {
    let wanted = store::load(&state.pool).await?;
    state.engines.sync(wanted);
    Ok(())
}

/// Registers the local engine when none is registered (first start).
pub async fn ensure_default(pool: &PgPool, docker_host: Option<&str>) -> anyhow::Result<()> {
    let endpoint = docker_host.unwrap_or(crate::docker::DEFAULT_LOCAL);
    if validate_endpoint(endpoint).is_err() {
        tracing::warn!(%endpoint, "DOCKER_HOST is not an endpoint Opsdeck understands; no default engine registered");
        return Ok(());
    }
    let mut tx = pool.begin().await?;
    // Two servers starting on a fresh database at once: the second waits
    // here and then sees the first one's row.
    store::lock_default(&mut tx).await?;
    if let Some(id) = store::insert_default(&mut tx, endpoint).await? {
        crate::audit::record(
            &mut tx,
            crate::audit::NewEntry {
                actor: crate::audit::Actor::system("opsdeck"),
                action: "engine.create".into(),
                target: Some("engine:local".into()),
                params: json!({"id": id, "endpoint": endpoint, "reason": "first start"}),
                source: None,
                outcome: opsdeck_wire::Outcome::Success,
                detail: None,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Every engine as the API shows it.
pub async fn list_wire(state: &AppState) -> sqlx::Result<Vec<Engine>> {
    let rows = store::rows(&state.pool).await?;
    Ok(to_wire(state, rows))
}

fn to_wire(state: &AppState, rows: Vec<store::EngineRow>) -> Vec<Engine> {
    rows.into_iter()
        .map(|r| {
            let conn = state.engines.get(r.id);
            let status = conn.as_ref().map(|c| c.status());
            Engine {
                id: r.id,
                name: r.name,
                endpoint: r.endpoint,
                tls: r.tls,
                ssh_host_key_fingerprint: r
                    .ssh_host_key
                    .as_deref()
                    .and_then(|k| ssh::parse_host_key(k).ok())
                    .map(|k| k.fingerprint),
                state: status
                    .as_ref()
                    .map(|s| s.state)
                    .unwrap_or(opsdeck_wire::EngineState::Connecting),
                version: status.as_ref().and_then(|s| s.version.clone()),
                api_version: status.as_ref().and_then(|s| s.api_version.clone()),
                last_error: status.as_ref().and_then(|s| s.last_error.clone()),
                last_ok_at: status.as_ref().and_then(|s| s.last_ok_at),
                containers: conn.map(|c| c.container_count()).unwrap_or(0),
                created_at: r.created_at,
            }
        })
        .collect()
}
