//! The catalog's SQL: backup rows and their artifacts, storage targets and
//! plans. Every statement is compile-checked; callers get plain rows.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgConnection;

use crate::secrets::{self, Field};

// ---------------------------------------------------------------- backups

/// A backup row with its target's name (`(removed)` once it is gone).
pub struct SummaryRow {
    pub id: i64,
    pub plan_name: String,
    pub target: String,
    pub status: String,
    pub verification: String,
    pub trigger: String,
    pub requested_by: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub bytes: i64,
    pub raw_bytes: i64,
    pub error: Option<String>,
    pub verify_error: Option<String>,
    pub run_id: Option<i64>,
    pub verified_at: Option<DateTime<Utc>>,
}

/// A backup that is not deleted.
pub async fn summary(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<SummaryRow>> {
    sqlx::query_as!(
        SummaryRow,
        r#"SELECT b.id, b.plan_name, coalesce(t.name, '(removed)') AS "target!", b.status,
                  b.verification, b.trigger, b.requested_by, b.started_at, b.finished_at,
                  b.bytes, b.raw_bytes, b.error, b.verify_error, b.run_id, b.verified_at
           FROM backups b LEFT JOIN backup_targets t ON t.id = b.target_id
           WHERE b.id = $1 AND b.deleted_at IS NULL"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// The backups with these ids (deleted or not), in no particular order.
pub async fn summaries(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<Vec<SummaryRow>> {
    sqlx::query_as!(
        SummaryRow,
        r#"SELECT b.id, b.plan_name, coalesce(t.name, '(removed)') AS "target!", b.status,
                  b.verification, b.trigger, b.requested_by, b.started_at, b.finished_at,
                  b.bytes, b.raw_bytes, b.error, b.verify_error, b.run_id, b.verified_at
           FROM backups b LEFT JOIN backup_targets t ON t.id = b.target_id
           WHERE b.id = ANY($1)"#,
        ids
    )
    .fetch_all(conn)
    .await
}

/// The catalog, newest first (at most 200, deleted backups left out),
/// optionally of one plan and in one status.
pub async fn list(
    conn: &mut PgConnection,
    plan: Option<&str>,
    status: Option<&str>,
) -> sqlx::Result<Vec<SummaryRow>> {
    sqlx::query_as!(
        SummaryRow,
        r#"SELECT b.id, b.plan_name, coalesce(t.name, '(removed)') AS "target!", b.status,
                  b.verification, b.trigger, b.requested_by, b.started_at, b.finished_at,
                  b.bytes, b.raw_bytes, b.error, b.verify_error, b.run_id, b.verified_at
           FROM backups b LEFT JOIN backup_targets t ON t.id = b.target_id
           WHERE b.deleted_at IS NULL AND ($1::text IS NULL OR b.plan_name = $1)
             AND ($2::text IS NULL OR b.status = $2)
           ORDER BY b.id DESC LIMIT 200"#,
        plan,
        status
    )
    .fetch_all(conn)
    .await
}

/// One stored object of a backup.
pub struct ArtifactRow {
    pub idx: i32,
    pub source: String,
    pub kind: String,
    pub object_key: String,
    pub bytes: i64,
    pub raw_bytes: i64,
    pub sha256: Option<String>,
    pub tool: String,
    pub duration_ms: i64,
    pub stats: Value,
    pub status: String,
    pub error: Option<String>,
}

pub async fn artifacts(conn: &mut PgConnection, backup: i64) -> sqlx::Result<Vec<ArtifactRow>> {
    sqlx::query_as!(
        ArtifactRow,
        "SELECT idx, source, kind, object_key, bytes, raw_bytes, sha256, tool, duration_ms, stats,
                status, error
         FROM backup_artifacts WHERE backup_id = $1 ORDER BY idx",
        backup
    )
    .fetch_all(conn)
    .await
}

/// The status of a backup that is not deleted.
pub async fn backup_status(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT status FROM backups WHERE id = $1 AND deleted_at IS NULL",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Locks a backup that is not deleted and returns its status.
pub async fn lock_backup(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT status FROM backups WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await
}

/// What a download needs of an artifact and its backup.
pub struct DownloadRow {
    pub object_key: String,
    pub kind: String,
    pub astatus: String,
    pub bytes: i64,
    pub status: String,
    pub plan_name: String,
    pub target_id: i64,
}

pub async fn download(
    conn: &mut PgConnection,
    id: i64,
    idx: i32,
) -> sqlx::Result<Option<DownloadRow>> {
    sqlx::query_as!(
        DownloadRow,
        "SELECT a.object_key, a.kind, a.status AS astatus, a.bytes, b.status, b.plan_name,
                t.id AS target_id
         FROM backup_artifacts a JOIN backups b ON b.id = a.backup_id
         JOIN backup_targets t ON t.id = b.target_id
         WHERE a.backup_id = $1 AND a.idx = $2 AND b.deleted_at IS NULL",
        id,
        idx
    )
    .fetch_optional(conn)
    .await
}

/// Whether deleting a backup needs an approval.
pub async fn delete_gated(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM approval_policies WHERE action_kind = 'backup.delete')
           AS "gated!""#
    )
    .fetch_one(conn)
    .await
}

/// The id of a runbook by name.
pub async fn runbook_id(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT id FROM runbooks WHERE name = $1", name)
        .fetch_optional(conn)
        .await
}

// ---------------------------------------------------------------- targets

/// A target row; never the secret, only whether one is stored.
pub struct TargetRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub config: Value,
    pub secret_set: bool,
    pub created_at: DateTime<Utc>,
}

pub async fn targets(conn: &mut PgConnection) -> sqlx::Result<Vec<TargetRow>> {
    sqlx::query_as!(
        TargetRow,
        r#"SELECT id, name, kind, config, secret IS NOT NULL AS "secret_set!", created_at
           FROM backup_targets ORDER BY name"#
    )
    .fetch_all(conn)
    .await
}

pub async fn target(conn: &mut PgConnection, id: i64) -> sqlx::Result<TargetRow> {
    sqlx::query_as!(
        TargetRow,
        r#"SELECT id, name, kind, config, secret IS NOT NULL AS "secret_set!", created_at
           FROM backup_targets WHERE id = $1"#,
        id
    )
    .fetch_one(conn)
    .await
}

/// The stored config and sealed secret of a target (`None` when there is
/// no such target), locked for the change.
pub async fn target_secret(
    conn: &mut PgConnection,
    id: i64,
) -> sqlx::Result<Option<(Value, Option<String>)>> {
    Ok(sqlx::query!(
        "SELECT config, secret FROM backup_targets WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await?
    .map(|r| (r.config, r.secret)))
}

pub async fn insert_target(
    conn: &mut PgConnection,
    name: &str,
    kind: &str,
    config: &Value,
    secret: Option<&str>,
) -> sqlx::Result<i64> {
    // The id first: the secret is sealed bound to its row.
    let id: i64 = sqlx::query_scalar!(
        r#"SELECT nextval(pg_get_serial_sequence('backup_targets', 'id')) AS "id!""#
    )
    .fetch_one(&mut *conn)
    .await?;
    let sealed = secret
        .map(|s| secrets::seal(Field::TargetSecret, id, s))
        .transpose()
        .map_err(secrets::as_sqlx)?;
    sqlx::query_scalar!(
        "INSERT INTO backup_targets (id, name, kind, config, secret) VALUES ($1, $2, $3, $4, $5)
         RETURNING id",
        id,
        name,
        kind,
        config,
        sealed
    )
    .fetch_one(conn)
    .await
}

/// Changes a target; `None` when there is no such target.
pub async fn update_target(
    conn: &mut PgConnection,
    id: i64,
    name: &str,
    kind: &str,
    config: &Value,
    secret: Option<&str>,
) -> sqlx::Result<Option<i64>> {
    let secret = secret
        .map(|s| secrets::seal(Field::TargetSecret, id, s))
        .transpose()
        .map_err(secrets::as_sqlx)?;
    sqlx::query_scalar!(
        "UPDATE backup_targets SET name = $2, kind = $3, config = $4, secret = $5,
                updated_at = now()
         WHERE id = $1 RETURNING id",
        id,
        name,
        kind,
        config,
        secret
    )
    .fetch_optional(conn)
    .await
}

/// Whether a plan or a backup that is not deleted uses the target.
pub async fn target_in_use(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM backup_plans WHERE target_id = $1)
               OR EXISTS (SELECT 1 FROM backups WHERE target_id = $1 AND deleted_at IS NULL)
           AS "used!""#,
        id
    )
    .fetch_one(conn)
    .await
}

/// Deletes a target; its name, or `None` when there is no such target.
pub async fn delete_target(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "DELETE FROM backup_targets WHERE id = $1 RETURNING name",
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn target_id(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT id FROM backup_targets WHERE name = $1", name)
        .fetch_optional(conn)
        .await
}

// ---------------------------------------------------------------- plans

/// Whether a service has a check of this kind (`postgres`, `mysql`).
pub async fn service_has_check(
    conn: &mut PgConnection,
    service: &str,
    kind: &str,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM checks c JOIN services s ON s.id = c.service_id
                          WHERE s.name = $1 AND c.kind = $2) AS "has!""#,
        service,
        kind
    )
    .fetch_one(conn)
    .await
}

/// The registered engines' names, in order.
pub async fn engine_names(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!("SELECT name FROM engines ORDER BY id")
        .fetch_all(conn)
        .await
}

/// A plan row with its target's name and its newest backup's id.
pub struct PlanRow {
    pub id: i64,
    pub name: String,
    pub sources: Value,
    pub target: String,
    pub zstd_level: i32,
    pub verify: bool,
    pub enabled: bool,
    pub created_by: String,
    pub updated_at: DateTime<Utc>,
    pub keep_last: i32,
    pub keep_daily: i32,
    pub keep_weekly: i32,
    pub keep_monthly: i32,
    pub max_age_days: Option<i32>,
    pub timezone: String,
    pub drilled_at: Option<DateTime<Utc>>,
    pub drill_backup_id: Option<i64>,
    pub drill_error: Option<String>,
    pub last_id: Option<i64>,
}

/// All plans by name, or the one with this id.
pub async fn plans(conn: &mut PgConnection, id: Option<i64>) -> sqlx::Result<Vec<PlanRow>> {
    sqlx::query_as!(
        PlanRow,
        r#"SELECT p.id, p.name, p.sources, t.name AS target, p.zstd_level, p.verify, p.enabled,
                  p.created_by, p.updated_at, p.keep_last, p.keep_daily, p.keep_weekly,
                  p.keep_monthly, p.max_age_days, p.timezone, p.drilled_at, p.drill_backup_id,
                  p.drill_error,
                  (SELECT b.id FROM backups b WHERE b.plan_id = p.id AND b.deleted_at IS NULL
                    ORDER BY b.id DESC LIMIT 1) AS "last_id?"
           FROM backup_plans p JOIN backup_targets t ON t.id = p.target_id
           WHERE $1::bigint IS NULL OR p.id = $1 ORDER BY p.name"#,
        id
    )
    .fetch_all(conn)
    .await
}

/// The fields of a plan row a write sets.
pub struct PlanFields<'a> {
    pub name: &'a str,
    pub sources: &'a Value,
    pub target_id: i64,
    pub zstd_level: i32,
    pub verify: bool,
    pub enabled: bool,
}

pub async fn insert_plan(
    conn: &mut PgConnection,
    f: &PlanFields<'_>,
    created_by: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO backup_plans (name, sources, target_id, zstd_level, verify, enabled, created_by)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        f.name,
        f.sources,
        f.target_id,
        f.zstd_level,
        f.verify,
        f.enabled,
        created_by
    )
    .fetch_one(conn)
    .await
}

/// Changes a plan; `None` when there is no such plan.
pub async fn update_plan(
    conn: &mut PgConnection,
    id: i64,
    f: &PlanFields<'_>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "UPDATE backup_plans SET name = $2, sources = $3, target_id = $4, zstd_level = $5,
                verify = $6, enabled = $7, updated_at = now()
         WHERE id = $1 RETURNING id",
        id,
        f.name,
        f.sources,
        f.target_id,
        f.zstd_level,
        f.verify,
        f.enabled
    )
    .fetch_optional(conn)
    .await
}

pub async fn set_retention(
    conn: &mut PgConnection,
    id: i64,
    r: &opsdeck_wire::Retention,
    timezone: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE backup_plans SET keep_last = $2, keep_daily = $3, keep_weekly = $4,
                keep_monthly = $5, max_age_days = $6, timezone = $7
         WHERE id = $1",
        id,
        r.keep_last,
        r.keep_daily,
        r.keep_weekly,
        r.keep_monthly,
        r.max_age_days,
        timezone
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a plan; its name, or `None` when there is no such plan.
pub async fn delete_plan(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("DELETE FROM backup_plans WHERE id = $1 RETURNING name", id)
        .fetch_optional(conn)
        .await
}

/// A plan's name and whether it is enabled.
pub async fn plan_state(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<(String, bool)>> {
    Ok(
        sqlx::query!("SELECT name, enabled FROM backup_plans WHERE id = $1", id)
            .fetch_optional(conn)
            .await?
            .map(|r| (r.name, r.enabled)),
    )
}

pub async fn plan_exists(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM backup_plans WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(conn)
    .await
}

/// The newest good backup of a plan, for the daily report.
pub struct GoodRow {
    pub plan_id: i64,
    pub id: i64,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub verification: String,
    pub verify_error: Option<String>,
}

/// The newest good (succeeded, not deleted) backup of every plan that has one.
pub async fn newest_good(conn: &mut PgConnection) -> sqlx::Result<Vec<GoodRow>> {
    sqlx::query_as!(
        GoodRow,
        r#"SELECT DISTINCT ON (plan_id) plan_id AS "plan_id!", id, started_at, finished_at,
                  verification, verify_error
           FROM backups
           WHERE status = 'succeeded' AND deleted_at IS NULL AND plan_id IS NOT NULL
           ORDER BY plan_id, id DESC"#
    )
    .fetch_all(conn)
    .await
}
