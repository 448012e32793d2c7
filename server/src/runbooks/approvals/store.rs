//! The SQL of approval requests, votes and policies (compile-checked).
//! The engine creates and expires requests with its own statements.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::{PgConnection, PgExecutor};

/// A request with the run and step it gates.
pub struct ApprovalRow {
    pub id: i64,
    pub run_id: i64,
    pub step: Option<i32>,
    pub binding: Vec<u8>,
    pub subject: String,
    pub required: i32,
    pub roles: Vec<String>,
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub requested_by_id: Option<i64>,
    pub params: Value,
    pub version: i32,
    pub requested_by: String,
    pub runbook: String,
    pub step_name: Option<String>,
}

/// A run's requests, oldest first.
pub async fn for_run(conn: &mut PgConnection, run: i64) -> sqlx::Result<Vec<ApprovalRow>> {
    sqlx::query_as!(
        ApprovalRow,
        r#"SELECT a.id, a.run_id, a.step, a.binding, a.subject, a.required, a.roles, a.status,
            a.created_at, a.expires_at, a.requested_by_id, r.params, r.version, r.requested_by,
            b.name AS runbook, s.name AS "step_name?"
         FROM approvals a JOIN runs r ON r.id = a.run_id JOIN runbooks b ON b.id = r.runbook_id
         LEFT JOIN run_steps s ON s.run_id = a.run_id AND s.idx = a.step
         WHERE a.run_id = $1 ORDER BY a.id"#,
        run,
    )
    .fetch_all(conn)
    .await
}

/// Pending requests (all when `all`), newest first, at most 200.
pub async fn list(conn: &mut PgConnection, all: bool) -> sqlx::Result<Vec<ApprovalRow>> {
    sqlx::query_as!(
        ApprovalRow,
        r#"SELECT a.id, a.run_id, a.step, a.binding, a.subject, a.required, a.roles, a.status,
            a.created_at, a.expires_at, a.requested_by_id, r.params, r.version, r.requested_by,
            b.name AS runbook, s.name AS "step_name?"
         FROM approvals a JOIN runs r ON r.id = a.run_id JOIN runbooks b ON b.id = r.runbook_id
         LEFT JOIN run_steps s ON s.run_id = a.run_id AND s.idx = a.step
         WHERE ($1 OR (a.status = 'pending' AND a.expires_at > now())) ORDER BY a.id DESC LIMIT 200"#,
        all,
    )
    .fetch_all(conn)
    .await
}

pub async fn get(conn: &mut PgConnection, id: i64) -> sqlx::Result<ApprovalRow> {
    sqlx::query_as!(
        ApprovalRow,
        r#"SELECT a.id, a.run_id, a.step, a.binding, a.subject, a.required, a.roles, a.status,
            a.created_at, a.expires_at, a.requested_by_id, r.params, r.version, r.requested_by,
            b.name AS runbook, s.name AS "step_name?"
         FROM approvals a JOIN runs r ON r.id = a.run_id JOIN runbooks b ON b.id = r.runbook_id
         LEFT JOIN run_steps s ON s.run_id = a.run_id AND s.idx = a.step
         WHERE a.id = $1"#,
        id,
    )
    .fetch_one(conn)
    .await
}

pub struct VoteRow {
    pub user_id: i64,
    pub username: String,
    pub approve: bool,
    pub reason: String,
    pub at: DateTime<Utc>,
}

/// A request's votes in order.
pub async fn votes(conn: &mut PgConnection, id: i64) -> sqlx::Result<Vec<VoteRow>> {
    sqlx::query_as!(
        VoteRow,
        "SELECT user_id, username, approve, reason, at FROM approval_votes WHERE approval_id = $1 ORDER BY at",
        id,
    )
    .fetch_all(conn)
    .await
}

/// How many pending requests user `user_id` with role `role` could vote on.
pub async fn votable(db: impl PgExecutor<'_>, user_id: i64, role: &str) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM approvals a
         WHERE a.status = 'pending' AND a.expires_at > now()
           AND a.requested_by_id IS DISTINCT FROM $1 AND $2 = ANY(a.roles)
           AND NOT EXISTS (SELECT 1 FROM approval_votes v WHERE v.approval_id = a.id AND v.user_id = $1)"#,
        user_id,
        role,
    )
    .fetch_one(db)
    .await
}

/// A request as a vote sees it, locked.
pub struct Locked {
    pub run_id: i64,
    pub step: Option<i32>,
    pub binding: Vec<u8>,
    pub required: i32,
    pub roles: Vec<String>,
    pub status: String,
    pub requested_by_id: Option<i64>,
    pub expired: bool,
}

pub async fn lock(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<Locked>> {
    sqlx::query_as!(
        Locked,
        r#"SELECT a.run_id, a.step, a.binding, a.required, a.roles, a.status, a.requested_by_id,
                a.expires_at < now() AS "expired!"
         FROM approvals a WHERE a.id = $1 FOR UPDATE"#,
        id,
    )
    .fetch_optional(conn)
    .await
}

/// Decides a request: `expired`, `approved` or `denied`.
pub async fn decide(conn: &mut PgConnection, id: i64, status: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE approvals SET status = $2, decided_at = now() WHERE id = $1",
        id,
        status,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Records a vote; false when this user has voted already.
pub async fn insert_vote(
    conn: &mut PgConnection,
    id: i64,
    (user_id, username): (i64, &str),
    approve: bool,
    reason: &str,
) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "INSERT INTO approval_votes (approval_id, user_id, username, approve, reason)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        id,
        user_id,
        username,
        approve,
        reason,
    )
    .execute(conn)
    .await?
    .rows_affected();
    Ok(n > 0)
}

pub async fn approvals_so_far(conn: &mut PgConnection, id: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM approval_votes WHERE approval_id = $1 AND approve"#,
        id
    )
    .fetch_one(conn)
    .await
}

/// Queues a waiting run again (its gate passed).
pub async fn release_run(conn: &mut PgConnection, run: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE runs SET status = 'queued' WHERE id = $1 AND status = 'waiting'",
        run
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub struct PolicyRow {
    pub action_kind: String,
    pub required: i32,
    pub roles: Vec<String>,
    pub expires: String,
}

pub async fn policies(db: impl PgExecutor<'_>) -> sqlx::Result<Vec<PolicyRow>> {
    sqlx::query_as!(
        PolicyRow,
        "SELECT action_kind, required, roles, expires FROM approval_policies ORDER BY action_kind",
    )
    .fetch_all(db)
    .await
}

pub async fn put_policy(
    conn: &mut PgConnection,
    kind: &str,
    required: i32,
    roles: &[String],
    expires: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO approval_policies (action_kind, required, roles, expires) VALUES ($1, $2, $3, $4)
         ON CONFLICT (action_kind) DO UPDATE SET required = $2, roles = $3, expires = $4, updated_at = now()",
        kind,
        required,
        roles,
        expires,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes a policy; false when there was none.
pub async fn delete_policy(conn: &mut PgConnection, kind: &str) -> sqlx::Result<bool> {
    let n = sqlx::query!("DELETE FROM approval_policies WHERE action_kind = $1", kind)
        .execute(conn)
        .await?
        .rows_affected();
    Ok(n > 0)
}
