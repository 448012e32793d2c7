//! The version history route. "Go back to this version" is not a route of
//! its own: it is a run of the built-in `image-update` runbook with `to` =
//! the version's digest or local image id (`sha256:…`), so approvals, dry
//! runs and the run page apply as to any update.

use axum::extract::State;
use opsdeck_wire::ImageVersion;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Auth, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::state::AppState;
use crate::updates::store;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(image_versions))
}

/// Which image a service ran when, who moved it there and with what
/// outcome, newest first.
#[utoipa::path(get, path = "/api/v1/services/{id}/image-versions", tag = "updates",
    params(("id" = i64, Path)),
    responses((status = 200, body = Vec<ImageVersion>), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn image_versions(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<ImageVersion>>> {
    if !store::service_exists(&state.pool, id).await? {
        return Err(ApiError::NotFound(format!("service {id}")));
    }
    Ok(Json(store::versions(&state.pool, id).await?))
}
