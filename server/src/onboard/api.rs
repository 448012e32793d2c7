//! `POST /api/v1/inventory/compose`: preview or apply a compose project
//! with the checks it proposes (admins). The path and its OpenAPI entry are
//! the inventory's; the handler lives here because it writes checks too.

use opsdeck_wire::{ComposeImportRequest, ImportPlan};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{import_compose as run, ComposeImport};
use crate::audit::Actor;
use crate::auth::{Admin, Auth, RequestCtx};
use crate::error::{ApiResult, Json};
use crate::inventory::api::load_compose;
use crate::inventory::plan::compose_project;
use crate::state::AppState;
use axum::extract::State;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(import_compose))
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
    if req.apply {
        crate::fanout::inventory_changed(&state).await;
        for id in &done.check_ids {
            // As POST /api/v1/checks: this process schedules the check at
            // once, the other replicas when the notification arrives.
            state.health().reload_check(*id).await?;
            crate::fanout::publish(&state, crate::fanout::Change::Check(*id)).await;
        }
    }
    Ok(Json(done.plan))
}
