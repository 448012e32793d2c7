//! The reads the domain shares (who an escalation level reaches, rotation
//! specs and overrides, phone numbers) and the write guard (the advisory
//! lock, the "broken" conditions); see [`crate::oncall`].

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use sqlx::PgConnection;

// ------------------------------------------------------------ escalation

/// Whether a policy has this level.
pub async fn level_exists(conn: &mut PgConnection, policy: i64, level: i32) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!(
        "SELECT level FROM escalation_levels WHERE policy_id = $1 AND level = $2",
        policy,
        level
    )
    .fetch_optional(conn)
    .await?;
    Ok(found.is_some())
}

/// One target of a level, with the rotation's or team's name.
pub struct LevelTarget {
    pub person_id: Option<i64>,
    pub rotation_id: Option<i64>,
    pub team_id: Option<i64>,
    pub rotation: Option<String>,
    pub team: Option<String>,
}

/// The targets of a level, in order.
pub async fn level_targets(
    conn: &mut PgConnection,
    policy: i64,
    level: i32,
) -> sqlx::Result<Vec<LevelTarget>> {
    sqlx::query_as!(
        LevelTarget,
        r#"SELECT t.person_id, t.rotation_id, t.team_id, r.name AS "rotation?", tm.name AS "team?"
           FROM escalation_targets t
           LEFT JOIN rotations r ON r.id = t.rotation_id
           LEFT JOIN teams tm ON tm.id = t.team_id
           WHERE t.policy_id = $1 AND t.level = $2 ORDER BY t.id"#,
        policy,
        level
    )
    .fetch_all(conn)
    .await
}

/// A team's member ids by name.
pub async fn team_member_ids(conn: &mut PgConnection, team: i64) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar!(
        "SELECT p.id FROM team_members m JOIN people p ON p.id = m.person_id
         WHERE m.team_id = $1 ORDER BY p.name, p.id",
        team
    )
    .fetch_all(conn)
    .await
}

/// How to reach a person.
pub struct Contact {
    pub id: i64,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub chat_handle: Option<String>,
}

pub async fn contacts(conn: &mut PgConnection, ids: &[i64]) -> sqlx::Result<Vec<Contact>> {
    sqlx::query_as!(
        Contact,
        "SELECT id, name, email, phone, chat_handle FROM people WHERE id = ANY($1)",
        ids
    )
    .fetch_all(conn)
    .await
}

/// `(level, delay_secs)` of a policy, by level.
pub async fn levels(conn: &mut PgConnection, policy: i64) -> sqlx::Result<Vec<(i32, i32)>> {
    let rows = sqlx::query!(
        "SELECT level, delay_secs FROM escalation_levels WHERE policy_id = $1 ORDER BY level",
        policy
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.level, r.delay_secs)).collect())
}

/// A rotation row.
pub struct RotationRow {
    pub id: i64,
    pub name: String,
    pub team_id: Option<i64>,
    pub handoff: String,
    pub handoff_time: NaiveTime,
    pub handoff_weekday: Option<i16>,
    pub time_zone: String,
    pub starts_on: NaiveDate,
}

/// Rotations (all, or these ids) by name.
pub async fn rotations(
    conn: &mut PgConnection,
    ids: Option<&[i64]>,
) -> sqlx::Result<Vec<RotationRow>> {
    sqlx::query_as!(
        RotationRow,
        "SELECT id, name, team_id, handoff, handoff_time, handoff_weekday, time_zone, starts_on
         FROM rotations WHERE $1::bigint[] IS NULL OR id = ANY($1) ORDER BY name",
        ids
    )
    .fetch_all(conn)
    .await
}

/// `(rotation, person id, person name)` in turn order.
pub async fn rotation_members(
    conn: &mut PgConnection,
    rotations: &[i64],
) -> sqlx::Result<Vec<(i64, i64, String)>> {
    let rows = sqlx::query!(
        "SELECT m.rotation_id, p.id, p.name FROM rotation_members m
         JOIN people p ON p.id = m.person_id
         WHERE m.rotation_id = ANY($1) ORDER BY m.rotation_id, m.position",
        rotations
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.rotation_id, r.id, r.name))
        .collect())
}

/// `(rotation, id, person, starts_at, ends_at)` of the overrides ending
/// after `since`, oldest first.
pub async fn override_specs(
    conn: &mut PgConnection,
    rotations: &[i64],
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<(i64, i64, i64, DateTime<Utc>, DateTime<Utc>)>> {
    let rows = sqlx::query!(
        "SELECT rotation_id, id, person_id, starts_at, ends_at FROM rotation_overrides
         WHERE rotation_id = ANY($1) AND ends_at > $2 ORDER BY id",
        rotations,
        since
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.rotation_id, r.id, r.person_id, r.starts_at, r.ends_at))
        .collect())
}

/// An override as listed, with the person's name.
pub struct OverrideRow {
    pub rotation_id: i64,
    pub id: i64,
    pub person_id: i64,
    pub name: String,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub reason: String,
    pub created_by: String,
}

/// Overrides ending after `now`, by start.
pub async fn overrides(
    conn: &mut PgConnection,
    rotations: &[i64],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<OverrideRow>> {
    sqlx::query_as!(
        OverrideRow,
        "SELECT o.rotation_id, o.id, o.person_id, p.name, o.starts_at, o.ends_at, o.reason, o.created_by
         FROM rotation_overrides o JOIN people p ON p.id = o.person_id
         WHERE o.rotation_id = ANY($1) AND o.ends_at > $2
         ORDER BY o.starts_at, o.id",
        rotations,
        now
    )
    .fetch_all(conn)
    .await
}

/// `(id, name, phone, email)` of these people.
pub async fn phones(
    conn: &mut PgConnection,
    ids: &[i64],
) -> sqlx::Result<Vec<(i64, String, Option<String>, Option<String>)>> {
    let rows = sqlx::query!(
        "SELECT id, name, phone, email FROM people WHERE id = ANY($1)",
        ids
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.id, r.name, r.phone, r.email))
        .collect())
}

/// Serialises the writes that can break a rotation or an escalation level.
pub async fn lock(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('opsdeck.oncall'))")
        .fetch_one(conn)
        .await
        .map(drop)
}

/// What is broken now: rotations without members, levels reaching nobody.
pub async fn broken(conn: &mut PgConnection) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar!(
        r#"SELECT format('rotation "%s" would have no members', r.name) AS "what!"
           FROM rotations r
           WHERE NOT EXISTS (SELECT 1 FROM rotation_members m WHERE m.rotation_id = r.id)
           UNION ALL
           SELECT format('L%s of escalation policy "%s" would reach nobody', l.level + 1, p.name)
           FROM escalation_levels l JOIN escalation_policies p ON p.id = l.policy_id
           WHERE NOT EXISTS (
               SELECT 1 FROM escalation_targets t
               WHERE t.policy_id = l.policy_id AND t.level = l.level
                 AND (t.person_id IS NOT NULL
                      OR EXISTS (SELECT 1 FROM rotation_members m WHERE m.rotation_id = t.rotation_id)
                      OR EXISTS (SELECT 1 FROM team_members tm WHERE tm.team_id = t.team_id)))"#
    )
    .fetch_all(conn)
    .await
}
