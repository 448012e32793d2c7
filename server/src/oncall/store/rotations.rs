//! Rotations: inserts, updates, deletes, members, overrides.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::PgConnection;

// -------------------------------------------------------------- rotations

/// A rotation's stored fields.
pub struct RotationFields<'a> {
    pub name: &'a str,
    pub team_id: Option<i64>,
    pub handoff: &'a str,
    pub handoff_time: NaiveTime,
    pub handoff_weekday: Option<i16>,
    pub time_zone: &'a str,
    pub starts_on: NaiveDate,
}

pub async fn insert_rotation(conn: &mut PgConnection, r: &RotationFields<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO rotations (name, team_id, handoff, handoff_time, handoff_weekday, time_zone, starts_on)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        r.name,
        r.team_id,
        r.handoff,
        r.handoff_time,
        r.handoff_weekday,
        r.time_zone,
        r.starts_on
    )
    .fetch_one(conn)
    .await
}

/// False when there is no such rotation.
pub async fn update_rotation(
    conn: &mut PgConnection,
    id: i64,
    r: &RotationFields<'_>,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE rotations SET name = $2, team_id = $3, handoff = $4, handoff_time = $5,
                handoff_weekday = $6, time_zone = $7, starts_on = $8
         WHERE id = $1",
        id,
        r.name,
        r.team_id,
        r.handoff,
        r.handoff_time,
        r.handoff_weekday,
        r.time_zone,
        r.starts_on
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete_rotation(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("DELETE FROM rotations WHERE id = $1 RETURNING name", id)
        .fetch_optional(conn)
        .await
}

pub async fn rotation_name(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT name FROM rotations WHERE id = $1", id)
        .fetch_optional(conn)
        .await
}

/// Replaces a rotation's members (turn order = slice order).
pub async fn set_rotation_members(
    conn: &mut PgConnection,
    rotation: i64,
    people: &[i64],
) -> sqlx::Result<()> {
    sqlx::query!(
        "DELETE FROM rotation_members WHERE rotation_id = $1",
        rotation
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO rotation_members (rotation_id, position, person_id)
         SELECT $1, (ord - 1)::int, person FROM unnest($2::bigint[]) WITH ORDINALITY AS m(person, ord)",
        rotation,
        people
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A new override's fields.
pub struct NewOverride<'a> {
    pub rotation: i64,
    pub person: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: &'a str,
    pub created_by: &'a str,
}

pub async fn insert_override(conn: &mut PgConnection, o: &NewOverride<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO rotation_overrides (rotation_id, person_id, starts_at, ends_at, reason, created_by)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        o.rotation,
        o.person,
        o.starts_at,
        o.ends_at,
        o.reason,
        o.created_by
    )
    .fetch_one(conn)
    .await
}

/// What a deleted override was: rotation, person, start, end.
pub struct DeletedOverride {
    pub rotation: String,
    pub person: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

pub async fn delete_override(
    conn: &mut PgConnection,
    rotation: i64,
    id: i64,
) -> sqlx::Result<Option<DeletedOverride>> {
    sqlx::query_as!(
        DeletedOverride,
        "DELETE FROM rotation_overrides o USING rotations r, people p
         WHERE o.id = $2 AND o.rotation_id = $1 AND r.id = o.rotation_id AND p.id = o.person_id
         RETURNING r.name AS rotation, p.name AS person, o.starts_at, o.ends_at",
        rotation,
        id
    )
    .fetch_optional(conn)
    .await
}
