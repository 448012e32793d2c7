//! The routes of image updates; each part's handlers live in `api/`.

use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

mod status;
mod versions;

/// Every route of the capability.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(status::router())
        .merge(versions::router())
}
