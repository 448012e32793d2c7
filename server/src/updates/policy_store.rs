//! The SQL of the two automatic update policies ([`super::heal`] and
//! [`super::auto`]): the per-service settings they read, the row lock
//! under which each decision is taken, auto-heal's attempts, and the
//! auto-update candidates.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

/// A service with auto-heal on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealPolicy {
    pub service_id: i64,
    pub after_minutes: i32,
    pub max_per_hour: i32,
}

/// Every service with auto-heal on (`heal_after_minutes` set).
pub async fn heal_policies(conn: &mut PgConnection) -> sqlx::Result<Vec<HealPolicy>> {
    sqlx::query_as!(
        HealPolicy,
        r#"SELECT service_id, heal_after_minutes AS "after_minutes!", heal_max_per_hour AS max_per_hour
           FROM service_update_settings WHERE heal_after_minutes IS NOT NULL"#
    )
    .fetch_all(conn)
    .await
}

/// Locks a service's settings row for the decision (`SKIP LOCKED`: a
/// process that finds it locked leaves the decision to the holder) and
/// re-reads the policy. `None`: locked elsewhere, or auto-heal is off now.
pub async fn lock_heal_policy(
    conn: &mut PgConnection,
    service_id: i64,
) -> sqlx::Result<Option<HealPolicy>> {
    sqlx::query_as!(
        HealPolicy,
        r#"SELECT service_id, heal_after_minutes AS "after_minutes!", heal_max_per_hour AS max_per_hour
           FROM service_update_settings
           WHERE service_id = $1 AND heal_after_minutes IS NOT NULL
           FOR UPDATE SKIP LOCKED"#,
        service_id
    )
    .fetch_optional(conn)
    .await
}

/// The id of a runbook by name.
pub async fn runbook_id(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT id FROM runbooks WHERE name = $1", name)
        .fetch_optional(conn)
        .await
}

/// An active (queued, running or waiting) run of `runbook_id` for `target`.
pub async fn active_run(
    conn: &mut PgConnection,
    runbook_id: i64,
    target: &str,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT id FROM runs WHERE runbook_id = $1 AND target = $2
           AND status IN ('queued', 'running', 'waiting') LIMIT 1",
        runbook_id,
        target
    )
    .fetch_optional(conn)
    .await
}

/// A service's auto-heal attempts: the latest one, and how many started
/// after `since` (the per-hour limit counts these).
pub async fn attempts(
    conn: &mut PgConnection,
    service_id: i64,
    since: DateTime<Utc>,
) -> sqlx::Result<(Option<DateTime<Utc>>, i64)> {
    let r = sqlx::query!(
        r#"SELECT max(started_at) AS last, count(*) FILTER (WHERE started_at > $2) AS "recent!"
           FROM autoheal_attempts WHERE service_id = $1"#,
        service_id,
        since
    )
    .fetch_one(conn)
    .await?;
    Ok((r.last, r.recent))
}

/// Records an attempt (in the transaction that queued its run).
pub async fn insert_attempt(
    conn: &mut PgConnection,
    service_id: i64,
    run_id: i64,
    incident_id: Option<i64>,
    at: DateTime<Utc>,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO autoheal_attempts (service_id, run_id, incident_id, started_at)
         VALUES ($1, $2, $3, $4) RETURNING id",
        service_id,
        run_id,
        incident_id,
        at
    )
    .fetch_one(conn)
    .await
}

/// Whether auto-heal already gave up on this service on incident
/// `incident_id` at or after `since` (one escalation per unhealthy streak).
pub async fn gave_up_since(
    conn: &mut PgConnection,
    incident_id: i64,
    service_id: i64,
    since: DateTime<Utc>,
) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (
             SELECT 1 FROM timeline_events
             WHERE subject_type = 'incident' AND subject_id = $1 AND kind = 'autoheal.gave_up'
               AND at >= $3 AND data @> jsonb_build_object('service_id', $2::bigint)
           ) AS "exists!""#,
        incident_id,
        service_id,
        since
    )
    .fetch_one(conn)
    .await
}

/// A service the auto update policy may update now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoCandidate {
    pub service_id: i64,
    pub service: String,
    pub image_ref: String,
    pub running_digest: Option<String>,
    pub latest_digest: Option<String>,
    /// The maintenance period covering it.
    pub period_id: i64,
}

/// Services with `policy = 'auto'`, an update available (the registry's
/// digest differs from the running one, no error), covered by an *active*
/// maintenance period, and not tried by the policy since discovery last
/// looked (`image_status.checked_at`; every try, queued or refused, is an
/// audit entry [`super::auto::AUDIT_ACTION`] written with it): a failed,
/// refused or rolled-back update is tried again only after discovery has
/// looked again. Oldest news first.
pub async fn auto_candidates(conn: &mut PgConnection) -> sqlx::Result<Vec<AutoCandidate>> {
    sqlx::query_as!(
        AutoCandidate,
        r#"SELECT s.id AS service_id, s.name AS service, st.image_ref, st.running_digest,
                  st.latest_digest, p.id AS "period_id!"
           FROM service_update_settings u
           JOIN services s ON s.id = u.service_id
           JOIN image_status st ON st.service_id = u.service_id
           JOIN LATERAL (SELECT mp.id FROM maintenance_periods mp
                         WHERE mp.status = 'active' AND u.service_id = ANY(mp.service_ids)
                         ORDER BY mp.ends_at DESC, mp.id DESC LIMIT 1) p ON true
           WHERE u.policy = 'auto'
             AND st.error IS NULL AND NOT st.local_only
             AND st.latest_digest IS NOT NULL
             AND st.latest_digest IS DISTINCT FROM st.running_digest
             AND NOT EXISTS (
               SELECT 1 FROM audit_log a
               WHERE a.action = $1 AND a.params->>'service_id' = s.id::text
                 AND a.at >= st.checked_at)
           ORDER BY st.checked_at, s.name"#,
        super::auto::AUDIT_ACTION
    )
    .fetch_all(conn)
    .await
}

/// An active (queued, running or waiting) `image-update` or `stack-update`
/// run a system policy asked for: the one stack updating at a time.
pub async fn active_system_update(conn: &mut PgConnection) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "SELECT r.id FROM runs r JOIN runbooks b ON b.id = r.runbook_id
         WHERE b.name IN ('image-update', 'stack-update') AND r.requested_kind = 'system'
           AND r.status IN ('queued', 'running', 'waiting')
         ORDER BY r.id LIMIT 1"
    )
    .fetch_optional(conn)
    .await
}

/// Serialises the auto-update decision across processes for the rest of
/// the transaction (`pg_try_advisory_xact_lock`); `false`: another process
/// is deciding.
pub async fn try_auto_lock(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT pg_try_advisory_xact_lock(hashtext('updates.auto')::bigint) AS "locked!""#
    )
    .fetch_one(conn)
    .await
}
