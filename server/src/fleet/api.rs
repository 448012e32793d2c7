//! `/api/v1/engines/overview`: extract, authorise, call, map.

use axum::extract::State;
use opsdeck_wire::EngineOverview;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Auth, Viewer};
use crate::error::{ApiResult, Json};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(overview))
}

/// The engines overview: every engine with its containers (running and
/// all), its host's latest figures from host checks, its services and
/// their pending image updates. Read from caches: a hung engine never
/// delays it.
#[utoipa::path(get, path = "/api/v1/engines/overview", tag = "engines",
    responses((status = 200, body = Vec<EngineOverview>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn overview(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<EngineOverview>>> {
    Ok(Json(super::overview(&state).await?))
}
