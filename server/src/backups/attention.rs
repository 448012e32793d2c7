//! What the dashboard shows about backups (`GET /api/v1/backups/attention`,
//! viewers): per plan, the newest backup when it failed or was
//! interrupted, else the newest good backup's failed verification, and a
//! failed restore drill. A later good backup (or drill) clears the line;
//! the incident the failure opened stays until someone resolves it.

use opsdeck_wire::BackupAttention;
use sqlx::PgConnection;

/// Backups that need attention: failed or interrupted, failed
/// verification, failed drills (newest per plan).
pub async fn attention(conn: &mut PgConnection) -> sqlx::Result<Vec<BackupAttention>> {
    // The newest finished backup of each plan, and the drill.
    let rows = sqlx::query!(
        r#"SELECT p.id AS plan_id, p.name AS plan, p.drilled_at, p.drill_backup_id, p.drill_error,
                  b.id AS "id?", b.status AS "status?", b.verification AS "verification?",
                  b.error AS "error?", b.verify_error AS "verify_error?",
                  b.started_at AS "started_at?", b.finished_at AS "finished_at?",
                  b.verified_at AS "verified_at?"
           FROM backup_plans p
           LEFT JOIN LATERAL (
               SELECT * FROM backups b WHERE b.plan_id = p.id AND b.deleted_at IS NULL
                 AND b.status <> 'running'
               ORDER BY b.id DESC LIMIT 1) b ON true
           ORDER BY p.name"#
    )
    .fetch_all(conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let plan = r.plan;
        let plan_id = r.plan_id;
        let id = r.id;
        let at = r.finished_at.or(r.started_at);
        match (r.status.as_deref(), r.verification.as_deref(), at) {
            (Some(s @ ("failed" | "interrupted")), _, Some(at)) => out.push(BackupAttention {
                plan: plan.clone(),
                plan_id,
                problem: format!("backup {s}"),
                backup_id: id,
                error: r.error,
                at,
            }),
            (Some("succeeded"), Some("failed"), Some(at)) => out.push(BackupAttention {
                plan: plan.clone(),
                plan_id,
                problem: "verification failed".into(),
                backup_id: id,
                error: r.verify_error,
                at: r.verified_at.unwrap_or(at),
            }),
            _ => {}
        }
        if let (Some(e), Some(at)) = (r.drill_error, r.drilled_at) {
            out.push(BackupAttention {
                plan,
                plan_id,
                problem: "drill failed".into(),
                backup_id: r.drill_backup_id,
                error: Some(e),
                at,
            });
        }
    }
    Ok(out)
}
