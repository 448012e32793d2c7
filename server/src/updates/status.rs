//! The SQL of discovery and of the update settings: `image_status` (what
//! discovery last saw, one row per service) and `service_update_settings`
//! (one row per service that changed a default). Every statement is
//! compile-checked.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use opsdeck_wire::{ImageStatus, SemverMoves, UpdatePolicy, UpdateSettings};
use sqlx::PgConnection;

/// The defaults of a service without a settings row (as in the migration).
pub fn default_settings() -> UpdateSettings {
    UpdateSettings {
        policy: UpdatePolicy::Notify,
        moves: SemverMoves::Patch,
        gate_seconds: 120,
        heal_after_minutes: None,
        heal_max_per_hour: 3,
    }
}

pub fn policy_of(s: &str) -> UpdatePolicy {
    match s {
        "none" => UpdatePolicy::None,
        "auto" => UpdatePolicy::Auto,
        _ => UpdatePolicy::Notify,
    }
}

pub fn policy_str(p: UpdatePolicy) -> &'static str {
    match p {
        UpdatePolicy::None => "none",
        UpdatePolicy::Notify => "notify",
        UpdatePolicy::Auto => "auto",
    }
}

pub fn moves_of(s: &str) -> SemverMoves {
    match s {
        "none" => SemverMoves::None,
        "minor" => SemverMoves::Minor,
        "any" => SemverMoves::Any,
        _ => SemverMoves::Patch,
    }
}

pub fn moves_str(m: SemverMoves) -> &'static str {
    match m {
        SemverMoves::None => "none",
        SemverMoves::Patch => "patch",
        SemverMoves::Minor => "minor",
        SemverMoves::Any => "any",
    }
}

/// Whether service `id` exists.
pub async fn service_exists(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    Ok(
        sqlx::query_scalar!("SELECT id FROM services WHERE id = $1", id)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

/// A service's settings (the defaults when it has no row).
pub async fn settings(conn: &mut PgConnection, id: i64) -> sqlx::Result<UpdateSettings> {
    let row = sqlx::query!(
        "SELECT policy, moves, gate_seconds, heal_after_minutes, heal_max_per_hour
         FROM service_update_settings WHERE service_id = $1",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(match row {
        None => default_settings(),
        Some(r) => UpdateSettings {
            policy: policy_of(&r.policy),
            moves: moves_of(&r.moves),
            gate_seconds: r.gate_seconds.max(0) as u32,
            heal_after_minutes: r.heal_after_minutes.map(|m| m.max(0) as u32),
            heal_max_per_hour: r.heal_max_per_hour.max(0) as u32,
        },
    })
}

/// Writes a service's settings (validated by the caller).
pub async fn put_settings(
    conn: &mut PgConnection,
    id: i64,
    s: &UpdateSettings,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO service_update_settings
             (service_id, policy, moves, gate_seconds, heal_after_minutes, heal_max_per_hour, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, now())
         ON CONFLICT (service_id) DO UPDATE SET
             policy = EXCLUDED.policy, moves = EXCLUDED.moves,
             gate_seconds = EXCLUDED.gate_seconds,
             heal_after_minutes = EXCLUDED.heal_after_minutes,
             heal_max_per_hour = EXCLUDED.heal_max_per_hour, updated_at = now()",
        id,
        policy_str(s.policy),
        moves_str(s.moves),
        s.gate_seconds as i32,
        s.heal_after_minutes.map(|m| m as i32),
        s.heal_max_per_hour as i32
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Policy and moves of every service with a settings row.
pub async fn all_policies(
    conn: &mut PgConnection,
) -> sqlx::Result<HashMap<i64, (UpdatePolicy, SemverMoves)>> {
    let rows = sqlx::query!("SELECT service_id, policy, moves FROM service_update_settings")
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.service_id, (policy_of(&r.policy), moves_of(&r.moves))))
        .collect())
}

/// When each service was last checked.
pub async fn checked_at(conn: &mut PgConnection) -> sqlx::Result<HashMap<i64, DateTime<Utc>>> {
    let rows = sqlx::query!("SELECT service_id, checked_at FROM image_status")
        .fetch_all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.service_id, r.checked_at))
        .collect())
}

/// Every service's status, by service name; `only` limits it to some ids.
pub async fn list(conn: &mut PgConnection, only: Option<&[i64]>) -> sqlx::Result<Vec<ImageStatus>> {
    let rows = sqlx::query!(
        r#"SELECT st.service_id, s.name AS service, st.image_ref, st.running_digest,
                  st.latest_digest, st.latest_created, st.newer_tags, st.local_only, st.error,
                  st.checked_at
           FROM image_status st JOIN services s ON s.id = st.service_id
           WHERE $1::bigint[] IS NULL OR st.service_id = ANY($1)
           ORDER BY s.name"#,
        only as Option<&[i64]>
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ImageStatus {
            update_available: update_available(
                r.running_digest.as_deref(),
                r.latest_digest.as_deref(),
            ),
            service_id: r.service_id,
            service: r.service,
            image_ref: r.image_ref,
            running_digest: r.running_digest,
            latest_digest: r.latest_digest,
            latest_created: r.latest_created,
            newer_tags: r.newer_tags,
            local_only: r.local_only,
            error: r.error,
            checked_at: r.checked_at,
        })
        .collect())
}

/// The services with an update: a moved tag, or newer tags their policy
/// allows (what [`list`]'s `update_available` and `newer_tags` say).
pub async fn with_updates(conn: &mut PgConnection) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar!(
        "SELECT service_id FROM image_status
         WHERE (running_digest IS NOT NULL AND latest_digest IS NOT NULL
                AND running_digest <> latest_digest)
            OR cardinality(newer_tags) > 0"
    )
    .fetch_all(conn)
    .await
}

/// The tag moved: both digests known and different.
pub fn update_available(running: Option<&str>, latest: Option<&str>) -> bool {
    matches!((running, latest), (Some(r), Some(l)) if r != l)
}

/// Writes what discovery saw for one service (keeps `notified_digest`).
pub async fn upsert(conn: &mut PgConnection, s: &ImageStatus) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO image_status (service_id, image_ref, running_digest, latest_digest,
                                   latest_created, newer_tags, local_only, error, checked_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (service_id) DO UPDATE SET
             image_ref = EXCLUDED.image_ref, running_digest = EXCLUDED.running_digest,
             latest_digest = EXCLUDED.latest_digest, latest_created = EXCLUDED.latest_created,
             newer_tags = EXCLUDED.newer_tags, local_only = EXCLUDED.local_only,
             error = EXCLUDED.error, checked_at = EXCLUDED.checked_at",
        s.service_id,
        &s.image_ref,
        s.running_digest.as_deref(),
        s.latest_digest.as_deref(),
        s.latest_created,
        &s.newer_tags,
        s.local_only,
        s.error.as_deref(),
        s.checked_at
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Removes the statuses of services discovery no longer looks at (policy
/// `none`).
pub async fn remove(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM image_status WHERE service_id = ANY($1)", ids)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks `digest` notified for a service; `true` when it was not yet (the
/// caller then sends the one message). The row lock makes this once per
/// digest across processes.
pub async fn claim_notification(
    conn: &mut PgConnection,
    id: i64,
    digest: &str,
) -> sqlx::Result<bool> {
    Ok(sqlx::query_scalar!(
        "UPDATE image_status SET notified_digest = $2
         WHERE service_id = $1 AND notified_digest IS DISTINCT FROM $2
         RETURNING service_id",
        id,
        digest
    )
    .fetch_optional(conn)
    .await?
    .is_some())
}
