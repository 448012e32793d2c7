//! `POST /api/v1/checks/import-rules/preview` and `/apply`: a Prometheus
//! rules file as Prometheus-query checks (operators, as creating a check).
//! The rules live in `checks::rules`; this extracts, authorises, calls and
//! wakes the health engine for the checks created.

use axum::extract::State;
use opsdeck_wire::{RulesImportPlan, RulesImportRequest};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Auth, Operator, RequestCtx};
use crate::checks::rules::import::import;
use crate::error::{ApiResult, Json};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(preview))
        .routes(routes!(apply))
}

/// Preview a Prometheus rules file as checks: the proposals (merged
/// warning/critical pairs, service, `new`/`exists`, the server's verdict on
/// each query) and everything of the file no check keeps.
#[utoipa::path(post, path = "/api/v1/checks/import-rules/preview", tag = "checks",
    request_body = RulesImportRequest,
    responses((status = 200, body = RulesImportPlan), (status = 400)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn preview(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<RulesImportRequest>,
) -> ApiResult<Json<RulesImportPlan>> {
    let (plan, _) = import(
        &state.pool,
        state.health().http(),
        &req,
        false,
        state.settings.checks_allow_link_local,
        &ctx,
        &auth.principal,
    )
    .await?;
    Ok(Json(plan))
}

/// Create the selected proposals of a rules file in one transaction (every
/// `new` one when `selected` is absent); a query the server refuses
/// refuses the import, naming the rule.
#[utoipa::path(post, path = "/api/v1/checks/import-rules/apply", tag = "checks",
    request_body = RulesImportRequest,
    responses((status = 200, body = RulesImportPlan), (status = 400), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn apply(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<RulesImportRequest>,
) -> ApiResult<Json<RulesImportPlan>> {
    let (plan, created) = import(
        &state.pool,
        state.health().http(),
        &req,
        true,
        state.settings.checks_allow_link_local,
        &ctx,
        &auth.principal,
    )
    .await?;
    for id in created {
        state.health().reload_check(id).await?;
        crate::fanout::publish(&state, crate::fanout::Change::Check(id)).await;
    }
    Ok(Json(plan))
}
