//! The audit log's routes (admins only): browse it and check its hash
//! chain. They live with `auth` rather than in `audit` because they need
//! the role extractors, and `audit` stays below `auth` (no cycle).

use axum::extract::State;
use opsdeck_wire::{AuditPage, AuditVerifyReport};
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{Admin, Auth};
use crate::audit::{self, AuditFilter};
use crate::error::{ApiResult, Json, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(verify_chain))
}

/// Browse the audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditFilter),
    responses((status = 200, body = AuditPage)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn list(
    _auth: Auth<Admin>,
    State(state): State<AppState>,
    Query(f): Query<AuditFilter>,
) -> ApiResult<Json<AuditPage>> {
    Ok(Json(audit::list(&state.pool, &f).await?))
}

/// Check the hash chain of the whole audit log, and the signed checkpoint
/// in this server's data directory when there is one.
#[utoipa::path(get, path = "/api/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerifyReport)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn verify_chain(
    _auth: Auth<Admin>,
    State(state): State<AppState>,
) -> ApiResult<Json<AuditVerifyReport>> {
    let place = audit::checkpoint::Place::new(&state.settings.data_dir);
    let (report, _) = audit::checkpoint::verify(&state.pool, &place, false).await?;
    Ok(Json(report))
}
