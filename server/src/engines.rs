//! Docker Engines as the panel manages them: the `engines` table, the
//! `/api/v1/engines` routes (viewers see state, admins add and remove), and
//! keeping the [`EngineHub`](crate::docker::EngineHub)'s supervisors in step
//! with the table.
//!
//! On first start with no engine registered, `opsdeck serve` registers
//! `local` from `DOCKER_HOST` (default `unix:///var/run/docker.sock`).

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{ContainerInfo, CreateEngineRequest, Engine};
use serde_json::json;
use sqlx::PgPool;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::docker::{validate_endpoint, Endpoint, TlsPaths};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::inventory::ServiceName;
use crate::state::AppState;

/// Checks an engine's endpoint and TLS paths.
pub fn validate(
    endpoint: &str,
    ca: &Option<String>,
    cert: &Option<String>,
    key: &Option<String>,
) -> ApiResult<()> {
    validate_endpoint(endpoint).map_err(|e| ApiError::BadRequest(format!("endpoint: {e}")))?;
    match (ca, cert, key) {
        (None, None, None) => Ok(()),
        (Some(a), Some(b), Some(c)) => {
            for (f, p) in [("tls_ca", a), ("tls_cert", b), ("tls_key", c)] {
                if !p.starts_with('/') || p.contains('\n') {
                    return Err(ApiError::BadRequest(format!(
                        "{f}: must be an absolute path on the Opsdeck host"
                    )));
                }
            }
            if endpoint.starts_with("unix://") {
                return Err(ApiError::BadRequest(
                    "TLS applies to tcp:// endpoints only".into(),
                ));
            }
            Ok(())
        }
        _ => Err(ApiError::BadRequest(
            "tls_ca, tls_cert and tls_key: give all three or none".into(),
        )),
    }
}

/// The engines table, for the hub.
pub async fn load(pool: &PgPool) -> sqlx::Result<Vec<(i64, String, Endpoint)>> {
    let rows = sqlx::query!(
        "SELECT id, name, endpoint, tls_ca, tls_cert, tls_key FROM engines ORDER BY id"
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let tls = match (r.tls_ca, r.tls_cert, r.tls_key) {
                (Some(ca), Some(cert), Some(key)) => Some(TlsPaths { ca, cert, key }),
                _ => None,
            };
            (
                r.id,
                r.name,
                Endpoint {
                    url: r.endpoint,
                    tls,
                },
            )
        })
        .collect())
}

/// Makes the hub's supervisors match the table.
pub async fn sync_hub(state: &AppState) -> ApiResult<()> {
    let wanted = load(&state.pool).await?;
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
    sqlx::query("SELECT pg_advisory_xact_lock(hashtext('opsdeck.engines.default'))")
        .execute(&mut *tx)
        .await?;
    let added = sqlx::query_scalar!(
        r#"INSERT INTO engines (name, endpoint)
           SELECT 'local', $1 WHERE NOT EXISTS (SELECT 1 FROM engines) RETURNING id"#,
        endpoint
    )
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(id) = added {
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

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(delete))
        .routes(routes!(containers))
}

/// Every engine as the API shows it.
pub async fn list_wire(state: &AppState) -> ApiResult<Vec<Engine>> {
    let rows = rows(&state.pool).await?;
    Ok(to_wire(state, rows))
}

fn to_wire(state: &AppState, rows: Vec<EngineRow>) -> Vec<Engine> {
    rows.into_iter()
        .map(|r| {
            let conn = state.engines.get(r.id);
            let status = conn.as_ref().map(|c| c.status());
            Engine {
                id: r.id,
                name: r.name,
                endpoint: r.endpoint,
                tls: r.tls,
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

struct EngineRow {
    id: i64,
    name: String,
    endpoint: String,
    tls: bool,
    created_at: chrono::DateTime<chrono::Utc>,
}

async fn rows(pool: &PgPool) -> sqlx::Result<Vec<EngineRow>> {
    sqlx::query_as!(
        EngineRow,
        r#"SELECT id, name, endpoint, tls_ca IS NOT NULL AS "tls!", created_at FROM engines ORDER BY name"#
    )
    .fetch_all(pool)
    .await
}

/// Engines with their version, reachability and last error.
#[utoipa::path(get, path = "/api/v1/engines", tag = "engines",
    responses((status = 200, body = Vec<Engine>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(_auth: Auth<Viewer>, State(state): State<AppState>) -> ApiResult<Json<Vec<Engine>>> {
    let rows = rows(&state.pool).await?;
    Ok(Json(to_wire(&state, rows)))
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
    let name = ServiceName::parse(req.name.trim())
        .map_err(|e| ApiError::BadRequest(format!("name: {e}")))?;
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
    let mut tx = state.pool.begin().await?;
    let id = sqlx::query_scalar!(
        "INSERT INTO engines (name, endpoint, tls_ca, tls_cert, tls_key) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        name.as_str(),
        endpoint,
        ca,
        cert,
        key
    )
    .fetch_one(&mut *tx)
    .await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "engine.create",
        Some(format!("engine:{}", name.as_str())),
        json!({"id": id, "endpoint": endpoint, "tls": ca.is_some()}),
    )
    .await?;
    ctx.commit(tx).await?;
    sync_hub(&state).await?;
    crate::fanout::publish(&state, crate::fanout::Change::Engines).await;
    let engine = to_wire(&state, rows(&state.pool).await?)
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("engine {id}")))?;
    Ok((StatusCode::CREATED, Json(engine)))
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
    let name = sqlx::query_scalar!("DELETE FROM engines WHERE id = $1 RETURNING name", id)
        .fetch_optional(&mut *tx)
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
