//! What the dashboard shows about backups (`GET /api/v1/backups/attention`,
//! viewers): per plan, the newest backup when it failed or was
//! interrupted, else the newest good backup's failed verification, and a
//! failed restore drill. A later good backup (or drill) clears the line;
//! the incident the failure opened stays until someone resolves it.

use axum::extract::State;
use opsdeck_wire::BackupAttention;
use sqlx::Row;

use crate::auth::{Auth, Viewer};
use crate::error::{ApiResult, Json};
use crate::state::AppState;

/// Backups that need attention: failed or interrupted, failed
/// verification, failed drills (newest per plan).
#[utoipa::path(get, path = "/api/v1/backups/attention", tag = "backups",
    responses((status = 200, body = Vec<BackupAttention>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
pub async fn attention(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<BackupAttention>>> {
    // The newest finished backup of each plan, and the drill.
    let rows = sqlx::query(
        "SELECT p.id AS plan_id, p.name AS plan, p.drilled_at, p.drill_backup_id, p.drill_error,
                b.id, b.status, b.verification, b.error, b.verify_error, b.started_at,
                b.finished_at, b.verified_at
         FROM backup_plans p
         LEFT JOIN LATERAL (
             SELECT * FROM backups b WHERE b.plan_id = p.id AND b.deleted_at IS NULL
               AND b.status <> 'running'
             ORDER BY b.id DESC LIMIT 1) b ON true
         ORDER BY p.name",
    )
    .fetch_all(&state.pool)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let plan: String = r.get("plan");
        let plan_id: i64 = r.get("plan_id");
        let id: Option<i64> = r.get("id");
        let status: Option<String> = r.get("status");
        let verification: Option<String> = r.get("verification");
        let at = r
            .get::<Option<chrono::DateTime<chrono::Utc>>, _>("finished_at")
            .or(r.get("started_at"));
        match (status.as_deref(), verification.as_deref(), at) {
            (Some(s @ ("failed" | "interrupted")), _, Some(at)) => out.push(BackupAttention {
                plan: plan.clone(),
                plan_id,
                problem: format!("backup {s}"),
                backup_id: id,
                error: r.get("error"),
                at,
            }),
            (Some("succeeded"), Some("failed"), Some(at)) => out.push(BackupAttention {
                plan: plan.clone(),
                plan_id,
                problem: "verification failed".into(),
                backup_id: id,
                error: r.get("verify_error"),
                at: r.get::<Option<_>, _>("verified_at").unwrap_or(at),
            }),
            _ => {}
        }
        let drill_error: Option<String> = r.get("drill_error");
        if let (Some(e), Some(at)) = (drill_error, r.get("drilled_at")) {
            out.push(BackupAttention {
                plan,
                plan_id,
                problem: "drill failed".into(),
                backup_id: r.get("drill_backup_id"),
                error: Some(e),
                at,
            });
        }
    }
    Ok(Json(out))
}
