//! `POST /api/v1/inventory/compose` and `POST /api/v1/inventory/discovered`:
//! preview or apply a compose project (given, or a running one) with the
//! checks it proposes (admins). The paths and their OpenAPI entries are the
//! inventory's; the handlers live here because they write checks too.

use opsdeck_wire::{ComposeImportRequest, DiscoveredImportRequest, ImportPlan};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{import_compose as run, ComposeImport};
use crate::audit::Actor;
use crate::auth::{Admin, Auth, RequestCtx};
use crate::error::{ApiResult, Json};
use crate::inventory::api::load_compose;
use crate::inventory::discovered;
use crate::inventory::plan::compose_project;
use crate::state::AppState;
use axum::extract::State;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_compose))
        .routes(routes!(import_discovered))
}

/// Preview (`apply: false`) or apply a docker-compose file.
///
/// With the checks it proposes (`checks` in the plan): the `selected` ones
/// are created with the inventory in the same transaction.
#[utoipa::path(post, path = "/api/v1/inventory/compose", tag = "inventory",
    request_body = ComposeImportRequest,
    responses((status = 200, body = ImportPlan), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn import_compose(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<ComposeImportRequest>,
) -> ApiResult<Json<ImportPlan>> {
    let loaded = load_compose(&req)?;
    let (project, project_source) = compose_project(req.project.as_deref(), &loaded)?;
    let engine = req
        .engine
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    let done = run(
        &state.pool,
        ComposeImport {
            loaded: &loaded,
            via: "compose",
            project,
            project_source: Some(project_source.to_owned()),
            engine,
            apply: req.apply,
            checks: req.checks.clone(),
            passwords: req.check_passwords.clone(),
            unticked: Vec::new(),
            allow_link_local: state.settings.checks_allow_link_local,
        },
        Actor::of(&auth.principal),
        ctx.source.clone(),
        Some(&ctx.slots),
    )
    .await?;
    applied(&state, req.apply, &done.check_ids).await?;
    Ok(Json(done.plan))
}

/// After a commit: the inventory's followers learn of the change; as
/// POST /api/v1/checks, this process schedules the new checks at once,
/// the other replicas when the notification arrives.
async fn applied(state: &AppState, apply: bool, check_ids: &[i64]) -> ApiResult<()> {
    if apply {
        crate::fanout::inventory_changed(state).await;
        for id in check_ids {
            state.health().reload_check(*id).await?;
            crate::fanout::publish(state, crate::fanout::Change::Check(*id)).await;
        }
    }
    Ok(())
}

/// Preview or apply adding a discovered compose project to the inventory.
///
/// With `from_files`, its own compose files are read from the engine's
/// host (as its containers' labels name them) and imported like
/// `POST /api/v1/inventory/compose`, with the checks they propose;
/// otherwise only what the labels say (images, dependencies).
#[utoipa::path(post, path = "/api/v1/inventory/discovered", tag = "inventory",
    request_body = DiscoveredImportRequest,
    responses((status = 200, body = ImportPlan), (status = 400), (status = 404), (status = 503)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn import_discovered(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<DiscoveredImportRequest>,
) -> ApiResult<Json<ImportPlan>> {
    let project = discovered::find(&state, &req.engine, &req.project).await?;
    if !req.from_files {
        let plan = discovered::import_from_labels(
            &state,
            &project,
            req.apply,
            Actor::of(&auth.principal),
            ctx.source.clone(),
            Some(&ctx.slots),
        )
        .await?;
        applied(&state, req.apply, &[]).await?;
        return Ok(Json(plan));
    }
    let loaded = discovered::load(&state, &project, req.profiles.as_deref()).await?;
    let done = run(
        &state.pool,
        ComposeImport {
            loaded: &loaded,
            via: "discovered",
            project: req.project.clone(),
            project_source: Some("discovered".to_owned()),
            engine: Some(req.engine.clone()),
            apply: req.apply,
            checks: req.checks.clone(),
            passwords: req.check_passwords.clone(),
            unticked: Vec::new(),
            allow_link_local: state.settings.checks_allow_link_local,
        },
        Actor::of(&auth.principal),
        ctx.source.clone(),
        Some(&ctx.slots),
    )
    .await?;
    applied(&state, req.apply, &done.check_ids).await?;
    Ok(Json(done.plan))
}
