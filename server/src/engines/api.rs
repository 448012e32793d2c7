//! `/api/v1/engines`: extract, authorise, call, map. Changes write their
//! audit entry in the same transaction, then re-sync the hub and tell the
//! other replicas (`fanout`).

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{ContainerInfo, CreateEngineRequest, Engine, SshHostKey, SshHostKeysRequest};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{list_wire, pin_host_key, scan, store, sync_hub, validate, validate_name, EngineError};
use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(ssh_host_keys))
        .routes(routes!(delete))
        .routes(routes!(containers))
}

/// Engines with their version, reachability and last error.
#[utoipa::path(get, path = "/api/v1/engines", tag = "engines",
    responses((status = 200, body = Vec<Engine>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(_auth: Auth<Viewer>, State(state): State<AppState>) -> ApiResult<Json<Vec<Engine>>> {
    Ok(Json(list_wire(&state).await?))
}

/// Register an engine; Opsdeck connects to it in the background.
#[utoipa::path(post, path = "/api/v1/engines", tag = "engines", request_body = CreateEngineRequest,
    responses((status = 201, body = Engine), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<CreateEngineRequest>,
) -> ApiResult<(StatusCode, Json<Engine>)> {
    let name = req.name.trim();
    validate_name(name)?;
    let endpoint = req.endpoint.trim().to_owned();
    let clean = |o: &Option<String>| {
        o.as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let (ca, cert, key) = (
        clean(&req.tls_ca),
        clean(&req.tls_cert),
        clean(&req.tls_key),
    );
    validate(&endpoint, &ca, &cert, &key)?;
    let ssh_key = clean(&req.ssh_key);
    let host_key = if endpoint.starts_with("ssh://") {
        if let Some(k) = &ssh_key {
            if !k.starts_with('/') || !crate::docker::ssh::readable(std::path::Path::new(k)) {
                return Err(EngineError::Invalid(format!(
                    "ssh_key: {k} is not a readable file on the Opsdeck host (give an absolute path)"
                ))
                .into());
            }
        }
        Some(pin_host_key(&endpoint, req.ssh_host_key.as_deref()).await?)
    } else if ssh_key.is_some() || clean(&req.ssh_host_key).is_some() {
        return Err(EngineError::Invalid(
            "ssh_host_key, ssh_key: for ssh:// endpoints only".into(),
        )
        .into());
    } else {
        None
    };
    let mut tx = state.pool.begin().await?;
    let new = store::NewEngine {
        name,
        endpoint: &endpoint,
        tls: (&ca, &cert, &key),
        ssh_host_key: host_key.as_ref().map(|k| k.key.as_str()),
        ssh_key: ssh_key.as_deref(),
    };
    let id = store::insert(&mut tx, new).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "engine.create",
        Some(format!("engine:{name}")),
        json!({"id": id, "endpoint": endpoint, "tls": ca.is_some(),
               "ssh_host_key": host_key.as_ref().map(|k| &k.fingerprint), "ssh_key": ssh_key}),
    )
    .await?;
    ctx.commit(tx).await?;
    sync_hub(&state).await?;
    crate::fanout::publish(&state, crate::fanout::Change::Engines).await;
    let engine = list_wire(&state)
        .await?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| EngineError::NotFound(format!("engine {id}")))?;
    Ok((StatusCode::CREATED, Json(engine)))
}

/// The host keys an SSH engine's host offers, with their fingerprints, to
/// confirm before registering it (nothing is stored).
#[utoipa::path(post, path = "/api/v1/engines/ssh-host-keys", tag = "engines",
    request_body = SshHostKeysRequest,
    responses((status = 200, body = Vec<SshHostKey>), (status = 400), (status = 502)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn ssh_host_keys(
    _auth: Auth<Admin>,
    Json(req): Json<SshHostKeysRequest>,
) -> ApiResult<Json<Vec<SshHostKey>>> {
    let keys = scan(req.endpoint.trim()).await?;
    Ok(Json(
        keys.into_iter()
            .map(|k| SshHostKey {
                key_type: k.key_type,
                key: k.key,
                fingerprint: k.fingerprint,
            })
            .collect(),
    ))
}

/// Remove an engine; services mapped to it fall back to "any engine".
#[utoipa::path(delete, path = "/api/v1/engines/{id}", tag = "engines",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let name = store::delete(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("engine {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "engine.delete",
        Some(format!("engine:{name}")),
        json!({"id": id}),
    )
    .await?;
    ctx.commit(tx).await?;
    sync_hub(&state).await?;
    crate::fanout::publish(&state, crate::fanout::Change::Engines).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Every container the engine's cache holds, by name.
#[utoipa::path(get, path = "/api/v1/engines/{id}/containers", tag = "engines",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ContainerInfo>), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn containers(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ContainerInfo>>> {
    let conn = state
        .engines
        .get(id)
        .ok_or_else(|| ApiError::NotFound(format!("engine {id}")))?;
    let mut list = conn.containers();
    list.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Json(list))
}
