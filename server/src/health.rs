//! Liveness and readiness probes for load balancers, systemd and scripts.
//! Both are public and never change state.

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::Readiness;

use crate::error::Json;
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: the database answers and its schema is current; 503 with
/// the reason otherwise.
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    match crate::db::schema_problem(&state.pool).await {
        None => (
            StatusCode::OK,
            Json(Readiness {
                ready: true,
                reason: None,
            }),
        ),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(Readiness {
                ready: false,
                reason: Some(reason),
            }),
        ),
    }
}
