//! The inventory's routes: `/api/v1/services…` (viewer reads, admin
//! writes), `/api/v1/graph…` (viewer), `/api/v1/inventory/events` (SSE), and
//! the import/export routes of [`super::plan`]. Extract, authorise, call,
//! map; each change writes its audit entry in the same transaction.

use std::collections::{BTreeSet, HashMap};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use futures::Stream;
use opsdeck_wire::{
    ComposeImportRequest, DiscoveredProject, GraphEdge, GraphNode, GraphQueryKind,
    GraphQueryResult, GraphView, ImportPlan, InventoryImportRequest, RunState, Service,
    ServiceInput, ServiceOverview, ServicePage,
};
use serde::Deserialize;
use serde_json::json;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::plan::{desired_from_yaml, discover, export, run_import};
use super::{
    apply_input, check_requires, compose, graph, is_failing, lock, overview, page, set_requires,
    store, write_service, yaml, ContainerIndex, Fields, ServiceName, Snapshot,
};
use crate::audit::Actor;
use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_services, create_service))
        .routes(routes!(page_services))
        .routes(routes!(get_service, update_service, delete_service))
        .routes(routes!(graph_view))
        .routes(routes!(graph_query))
        .routes(routes!(events))
        .merge(plan_routes())
}

/// Services with their containers and state (the services page).
#[utoipa::path(get, path = "/api/v1/services", tag = "inventory",
    responses((status = 200, body = Vec<ServiceOverview>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_services(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ServiceOverview>>> {
    let o = state
        .inventory_cache()
        .overviews(&state.pool, &state.engines)
        .await?;
    let list = o
        .snapshot
        .to_wire()
        .into_iter()
        .zip(&o.rows)
        .map(|(service, (run_state, containers))| ServiceOverview {
            service,
            run_state: *run_state,
            containers: containers.clone(),
        })
        .collect();
    Ok(Json(list))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ServicePageParams {
    /// Matched against name, description, image, project and the
    /// containers' images (case-insensitive).
    #[serde(default)]
    pub q: String,
    /// Only services whose run state needs attention.
    #[serde(default)]
    pub problems: bool,
    #[serde(default)]
    pub offset: usize,
    /// Rows per page: 100 unless given, at most 500.
    #[serde(default)]
    pub limit: Option<usize>,
}

/// One page of the services page: searched, filtered and ordered (tier,
/// then name) on the server, with the counts the page shows.
#[utoipa::path(get, path = "/api/v1/services/page", tag = "inventory", params(ServicePageParams),
    responses((status = 200, body = ServicePage), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn page_services(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(p): Query<ServicePageParams>,
) -> ApiResult<Json<ServicePage>> {
    let overviews = state
        .inventory_cache()
        .overviews(&state.pool, &state.engines)
        .await?;
    let query = page::PageQuery {
        query: p.q,
        problems_only: p.problems,
        offset: p.offset,
        limit: p.limit.unwrap_or(page::DEFAULT_LIMIT),
    };
    Ok(Json(page::page(&overviews, &query)))
}

/// One service with its containers and state.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "inventory",
    params(("id" = i64, Path)),
    responses((status = 200, body = ServiceOverview), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_service(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ServiceOverview>> {
    let snapshot = state.inventory_cache().get(&state.pool).await?;
    let service = snapshot
        .wire_where(|r| r.id == id)
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?;
    let row = snapshot.services.iter().find(|r| r.id == id);
    let idx = ContainerIndex::build(&state.engines);
    let containers = row.map_or_else(Vec::new, |r| idx.containers_of(&r.fields));
    let run_state = row.map_or(RunState::Unknown, |r| idx.run_state(&r.fields, &containers));
    Ok(Json(ServiceOverview {
        service,
        run_state,
        containers,
    }))
}

/// Create a service by hand.
#[utoipa::path(post, path = "/api/v1/services", tag = "inventory", request_body = ServiceInput,
    responses((status = 201, body = Service), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create_service(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(input): Json<ServiceInput>,
) -> ApiResult<(StatusCode, Json<Service>)> {
    let name = ServiceName::parse(input.name.as_deref().unwrap_or_default().trim())
        .map_err(|e| ApiError::BadRequest(format!("name: {e}")))?;
    let mut fields = Fields::default();
    apply_input(&mut fields, &input);
    fields.validate().map_err(ApiError::BadRequest)?;
    let requires: BTreeSet<String> = input
        .requires
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let snapshot = Snapshot::load(&mut tx).await?;
    if snapshot.services.iter().any(|s| s.name == name.as_str()) {
        return Err(ApiError::Conflict(format!(
            "a service named \"{}\" exists",
            name.as_str()
        )));
    }
    check_requires(&snapshot, name.as_str(), None, &requires)?;
    let id = write_service(&mut tx, None, name.as_str(), &fields, "manual", &[]).await?;
    set_requires(&mut tx, &snapshot, id, &requires).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "service.create",
        Some(format!("service:{}", name.as_str())),
        json!({"id": id, "input": input}),
    )
    .await?;
    let service = Snapshot::load(&mut tx)
        .await?
        .to_wire()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?;
    ctx.commit(tx).await?;
    crate::fanout::inventory_changed(&state).await;
    Ok((StatusCode::CREATED, Json(service)))
}

/// Edit a service; the fields given are marked as edited by hand.
#[utoipa::path(patch, path = "/api/v1/services/{id}", tag = "inventory", request_body = ServiceInput,
    params(("id" = i64, Path)),
    responses((status = 200, body = Service), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update_service(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(input): Json<ServiceInput>,
) -> ApiResult<Json<Service>> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let snapshot = Snapshot::load(&mut tx).await?;
    let row = snapshot
        .services
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?
        .clone();
    let name = match &input.name {
        Some(n) => ServiceName::parse(n.trim())
            .map_err(|e| ApiError::BadRequest(format!("name: {e}")))?
            .as_str()
            .to_owned(),
        None => row.name.clone(),
    };
    if name != row.name && snapshot.services.iter().any(|s| s.name == name) {
        return Err(ApiError::Conflict(format!(
            "a service named \"{name}\" exists"
        )));
    }
    let mut fields = row.fields.clone();
    let set = apply_input(&mut fields, &input);
    fields.validate().map_err(ApiError::BadRequest)?;
    let mut edited: BTreeSet<String> = row.edited_fields.iter().cloned().collect();
    for f in &set {
        if row.fields.show(f) != fields.show(f) {
            edited.insert((*f).to_owned());
        }
    }
    let current_requires: BTreeSet<String> = snapshot
        .to_wire()
        .into_iter()
        .find(|s| s.id == id)
        .map(|s| s.requires.into_iter().collect())
        .unwrap_or_default();
    let requires = match &input.requires {
        Some(r) => r.iter().cloned().collect(),
        None => current_requires.clone(),
    };
    if requires != current_requires {
        edited.insert("requires".into());
    }
    check_requires(&snapshot, &name, Some(&row.name), &requires)?;
    let edited: Vec<String> = edited.into_iter().collect();
    write_service(&mut tx, Some(id), &name, &fields, &row.source, &edited).await?;
    if input.requires.is_some() {
        set_requires(&mut tx, &snapshot, id, &requires).await?;
    }
    ctx.audit(
        &mut tx,
        &auth.principal,
        "service.update",
        Some(format!("service:{name}")),
        json!({"id": id, "input": input}),
    )
    .await?;
    let service = Snapshot::load(&mut tx)
        .await?
        .to_wire()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?;
    ctx.commit(tx).await?;
    crate::fanout::inventory_changed(&state).await;
    Ok(Json(service))
}

/// Delete a service and its dependency edges.
#[utoipa::path(delete, path = "/api/v1/services/{id}", tag = "inventory",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_service(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let name = store::delete_service(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "service.delete",
        Some(format!("service:{name}")),
        json!({"id": id}),
    )
    .await?;
    ctx.commit(tx).await?;
    crate::fanout::inventory_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The dependency graph with a layered layout, nodes coloured by state.
#[utoipa::path(get, path = "/api/v1/graph", tag = "inventory",
    responses((status = 200, body = GraphView)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn graph_view(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<GraphView>> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    let g = snapshot
        .graph()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored graph is invalid: {e}")))?;
    let layout = g.layout();
    let overview = overview(&snapshot, &state.engines);
    let nodes = overview
        .iter()
        .filter_map(|o| {
            let pos = layout.nodes.get(&o.service.name)?;
            Some(GraphNode {
                id: o.service.id,
                name: o.service.name.clone(),
                tier: o.service.tier,
                run_state: o.run_state,
                layer: pos.layer,
                x: pos.x,
                y: pos.y,
            })
        })
        .collect();
    let by_id = snapshot.by_id();
    let edges = snapshot
        .edges
        .iter()
        .filter_map(|e| {
            Some(GraphEdge {
                from: by_id.get(&e.service_id)?.name.clone(),
                to: by_id.get(&e.requires_id)?.name.clone(),
                source: e.source.clone(),
            })
        })
        .collect();
    Ok(Json(GraphView {
        nodes,
        edges,
        width: layout.width,
        height: layout.height,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct GraphQueryParams {
    /// impact, root_cause, start_order or stop_order.
    pub kind: GraphQueryKind,
    /// Comma-separated service names; empty for start/stop order means all.
    #[serde(default)]
    pub services: String,
}

/// Impact, root cause, start order and stop order queries.
#[utoipa::path(get, path = "/api/v1/graph/query", tag = "inventory", params(GraphQueryParams),
    responses((status = 200, body = GraphQueryResult), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn graph_query(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<GraphQueryParams>,
) -> ApiResult<Json<GraphQueryResult>> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    let g = snapshot
        .graph()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored graph is invalid: {e}")))?;
    let mut names: Vec<String> = q
        .services
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        if matches!(
            q.kind,
            GraphQueryKind::StartOrder | GraphQueryKind::StopOrder
        ) {
            names = snapshot.services.iter().map(|s| s.name.clone()).collect();
        } else {
            return Err(ApiError::BadRequest(
                "services: name at least one service".into(),
            ));
        }
    }
    let bad = |e: graph::UnknownService| ApiError::BadRequest(format!("services: {e}"));
    let services = match q.kind {
        GraphQueryKind::Impact => g.impact(&names).map_err(bad)?,
        GraphQueryKind::StartOrder => g.start_order(&names).map_err(bad)?,
        GraphQueryKind::StopOrder => g.stop_order(&names).map_err(bad)?,
        GraphQueryKind::RootCause => {
            let states: HashMap<String, RunState> = overview(&snapshot, &state.engines)
                .into_iter()
                .map(|o| (o.service.name, o.run_state))
                .collect();
            g.root_cause(&names, |n| states.get(n).is_some_and(|s| is_failing(*s)))
                .map_err(bad)?
        }
    };
    Ok(Json(GraphQueryResult {
        kind: q.kind,
        services,
    }))
}

/// Live updates: an SSE `changed` event (data: a counter) whenever services
/// or container states change, at most every 250 ms. Clients refetch.
#[utoipa::path(get, path = "/api/v1/inventory/events", tag = "inventory",
    responses((status = 200, description = "text/event-stream of `changed` events")),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn events(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.engines.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let n = *rx.borrow_and_update();
        Some((
            Ok(Event::default().event("changed").data(n.to_string())),
            rx,
        ))
    });
    let stream = futures::StreamExt::take_until(stream, state.engines.closed());
    // The stream ends with the session that opened it.
    let stream = futures::StreamExt::take_until(
        stream,
        crate::auth::credential_ended(state.pool.clone(), &auth.principal),
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A YAML or text download.
pub fn text_download(
    body: String,
    content_type: &'static str,
    filename: &str,
) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
}

// ------------------------------------------------------------------ imports

fn plan_routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export_inventory))
        .routes(routes!(import_inventory))
        .routes(routes!(list_discovered))
}

/// The whole inventory as YAML (config as code).
#[utoipa::path(get, path = "/api/v1/inventory/export", tag = "inventory",
    responses((status = 200, content_type = "application/yaml", body = serde_json::Value, description = "the inventory as a YAML document")),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn export_inventory(
    _auth: Auth<Admin>,
    State(state): State<AppState>,
) -> ApiResult<impl IntoResponse> {
    let mut conn = state.pool.acquire().await?;
    let text = export(&mut conn).await?;
    Ok(text_download(
        text,
        "application/yaml",
        "opsdeck-inventory.yaml",
    ))
}

/// Preview or apply an inventory YAML document: the inventory becomes it.
#[utoipa::path(post, path = "/api/v1/inventory/import", tag = "inventory",
    request_body = InventoryImportRequest,
    responses((status = 200, body = ImportPlan), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn import_inventory(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<InventoryImportRequest>,
) -> ApiResult<Json<ImportPlan>> {
    let doc = yaml::parse(&req.content)
        .map_err(|e| ApiError::BadRequest(format!("inventory file: {e}")))?;
    let desired = desired_from_yaml(&doc)?;
    let plan = run_import(
        &state.pool,
        desired,
        req.apply,
        Actor::of(&auth.principal),
        "inventory.yaml",
        ctx.source.clone(),
        Some(&ctx.slots),
    )
    .await?;
    if req.apply {
        crate::engines::sync_hub(&state).await?;
        crate::fanout::publish(&state, crate::fanout::Change::Engines).await;
    }
    crate::fanout::inventory_changed(&state).await;
    Ok(Json(plan))
}

/// Compose projects running on the engines, and whether they are in the inventory.
#[utoipa::path(get, path = "/api/v1/inventory/discovered", tag = "inventory",
    responses((status = 200, body = Vec<DiscoveredProject>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_discovered(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<DiscoveredProject>>> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    Ok(Json(discover(&state, &snapshot)))
}

/// The request's files as [`compose::Sources`], loaded. The server's own
/// environment never takes part in interpolation. The compose import route
/// itself lives in `onboard` (it creates checks too).
pub fn load_compose(req: &ComposeImportRequest) -> Result<compose::Loaded, ApiError> {
    let mut files: Vec<(String, String)> = req
        .files
        .iter()
        .map(|f| (f.path.clone(), f.content.clone()))
        .collect();
    if !req.content.is_empty() {
        files.insert(0, ("compose.yaml".to_owned(), req.content.clone()));
    }
    let sources = compose::Sources {
        files,
        compose_files: req.compose_files.clone(),
        env_files: req.env_files.clone(),
        profiles: req.profiles.clone(),
        directory: req.directory.clone(),
        environment: Default::default(),
    };
    compose::load(&sources).map_err(|e| ApiError::BadRequest(format!("compose file: {e}")))
}
