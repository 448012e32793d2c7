//! The daily report's routes (`/api/v1/reports…`): list, read, generate
//! now (operator, audited `report.generate`). The report itself is built
//! and stored by [`crate::checks::report`].

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{Report, ReportSummary};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Auth, Operator, RequestCtx, Viewer};
use crate::checks::report;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one))
}

/// The latest 100 reports, newest first.
#[utoipa::path(get, path = "/api/v1/reports", tag = "reports",
    responses((status = 200, body = Vec<ReportSummary>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ReportSummary>>> {
    Ok(Json(report::summaries(&state.pool).await?))
}

/// One report.
#[utoipa::path(get, path = "/api/v1/reports/{id}", tag = "reports",
    responses((status = 200, body = Report), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_one(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Report>> {
    let r = report::load(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("report {id}")))?;
    Ok(Json(r))
}

/// Generate a report now.
#[utoipa::path(post, path = "/api/v1/reports", tag = "reports",
    responses((status = 201, body = Report)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn create(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
) -> ApiResult<(StatusCode, Json<Report>)> {
    let mut tx = state.pool.begin().await?;
    let report = report::generate(&state, &auth.principal.username, &mut tx)
        .await?
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("report not stored")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "report.generate",
        Some(format!("report:{}", report.id)),
        json!({"day": report.day, "overall": report.overall}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(report)))
}
