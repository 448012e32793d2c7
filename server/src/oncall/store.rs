//! The contacts and on-call SQL: people, teams, rotations (members,
//! overrides), escalation policies (levels, targets), compile-checked
//! against the schema. One statement per function, no rules: the API
//! files ([`super::people`], [`super::rotations`], [`super::policies`])
//! and the shared loaders in [`super`] decide. About 800 lines on purpose:
//! one short function per statement; split by table, the joins would scatter.

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use opsdeck_wire::Person;
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

// ----------------------------------------------------------------- people

/// One person with their teams.
pub async fn person(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<Person>> {
    sqlx::query_as!(
        Person,
        r#"SELECT p.id, p.name, p.title, p.email, p.phone, p.chat_handle, p.user_id,
                  array(SELECT t.name FROM team_members tm JOIN teams t ON t.id = tm.team_id
                        WHERE tm.person_id = p.id ORDER BY t.name) AS "teams!"
           FROM people p WHERE p.id = $1"#,
        id
    )
    .fetch_optional(conn)
    .await
}

/// Everyone with their teams, by name.
pub async fn people(conn: &mut PgConnection) -> sqlx::Result<Vec<Person>> {
    sqlx::query_as!(
        Person,
        r#"SELECT p.id, p.name, p.title, p.email, p.phone, p.chat_handle, p.user_id,
                  array(SELECT t.name FROM team_members tm JOIN teams t ON t.id = tm.team_id
                        WHERE tm.person_id = p.id ORDER BY t.name) AS "teams!"
           FROM people p ORDER BY p.name"#
    )
    .fetch_all(conn)
    .await
}

pub async fn user_exists(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!("SELECT id FROM users WHERE id = $1", id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

/// A person's stored fields.
pub struct PersonRow<'a> {
    pub name: &'a str,
    pub title: &'a str,
    pub email: Option<&'a str>,
    pub phone: Option<&'a str>,
    pub chat_handle: Option<&'a str>,
    pub user_id: Option<i64>,
}

pub async fn insert_person(conn: &mut PgConnection, p: &PersonRow<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO people (name, title, email, phone, chat_handle, user_id)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        p.name,
        p.title,
        p.email,
        p.phone,
        p.chat_handle,
        p.user_id
    )
    .fetch_one(conn)
    .await
}

/// False when there is no such person.
pub async fn update_person(
    conn: &mut PgConnection,
    id: i64,
    p: &PersonRow<'_>,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE people SET name = $2, title = $3, email = $4, phone = $5, chat_handle = $6,
                user_id = $7, updated_at = now()
         WHERE id = $1",
        id,
        p.name,
        p.title,
        p.email,
        p.phone,
        p.chat_handle,
        p.user_id
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Deletes a person; their name, if there was one.
pub async fn delete_person(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("DELETE FROM people WHERE id = $1 RETURNING name", id)
        .fetch_optional(conn)
        .await
}

// ------------------------------------------------------------------ teams

/// A team row.
pub struct TeamRow {
    pub id: i64,
    pub name: String,
    pub description: String,
}

/// Teams (all, or this one) by name.
pub async fn teams(conn: &mut PgConnection, id: Option<i64>) -> sqlx::Result<Vec<TeamRow>> {
    sqlx::query_as!(
        TeamRow,
        "SELECT id, name, description FROM teams WHERE $1::bigint IS NULL OR id = $1 ORDER BY name",
        id
    )
    .fetch_all(conn)
    .await
}

/// `(team, person id, person name)` by name.
pub async fn team_members(
    conn: &mut PgConnection,
    teams: &[i64],
) -> sqlx::Result<Vec<(i64, i64, String)>> {
    let rows = sqlx::query!(
        "SELECT m.team_id, p.id, p.name FROM team_members m JOIN people p ON p.id = m.person_id
         WHERE m.team_id = ANY($1) ORDER BY p.name, p.id",
        teams
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.team_id, r.id, r.name))
        .collect())
}

/// Replaces a team's members.
pub async fn set_team_members(
    conn: &mut PgConnection,
    team: i64,
    people: &[i64],
) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM team_members WHERE team_id = $1", team)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO team_members (team_id, person_id) SELECT $1, unnest($2::bigint[])",
        team,
        people
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn team_exists(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!("SELECT id FROM teams WHERE id = $1", id)
        .fetch_optional(conn)
        .await?;
    Ok(found.is_some())
}

pub async fn insert_team(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO teams (name, description) VALUES ($1, $2) RETURNING id",
        name,
        description
    )
    .fetch_one(conn)
    .await
}

/// False when there is no such team.
pub async fn update_team(
    conn: &mut PgConnection,
    id: i64,
    name: &str,
    description: &str,
) -> sqlx::Result<bool> {
    let done = sqlx::query!(
        "UPDATE teams SET name = $2, description = $3 WHERE id = $1",
        id,
        name,
        description
    )
    .execute(conn)
    .await?;
    Ok(done.rows_affected() > 0)
}

pub async fn delete_team(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("DELETE FROM teams WHERE id = $1 RETURNING name", id)
        .fetch_optional(conn)
        .await
}

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

// ------------------------------------------------------------- policies

/// A policy row.
pub struct PolicyRow {
    pub id: i64,
    pub name: String,
    pub description: String,
    pub is_default: bool,
}

/// Policies (all, or this one) by name.
pub async fn policies(conn: &mut PgConnection, id: Option<i64>) -> sqlx::Result<Vec<PolicyRow>> {
    sqlx::query_as!(
        PolicyRow,
        "SELECT id, name, description, is_default FROM escalation_policies
         WHERE $1::bigint IS NULL OR id = $1 ORDER BY name",
        id
    )
    .fetch_all(conn)
    .await
}

/// `(policy, level, delay_secs)` by policy and level.
pub async fn policy_levels(
    conn: &mut PgConnection,
    policies: &[i64],
) -> sqlx::Result<Vec<(i64, i32, i32)>> {
    let rows = sqlx::query!(
        "SELECT policy_id, level, delay_secs FROM escalation_levels
         WHERE policy_id = ANY($1) ORDER BY policy_id, level",
        policies
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.policy_id, r.level, r.delay_secs))
        .collect())
}

/// A target of a policy's level, with its name.
pub struct PolicyTarget {
    pub policy_id: i64,
    pub level: i32,
    pub person_id: Option<i64>,
    pub rotation_id: Option<i64>,
    pub team_id: Option<i64>,
    pub name: Option<String>,
}

pub async fn policy_targets(
    conn: &mut PgConnection,
    policies: &[i64],
) -> sqlx::Result<Vec<PolicyTarget>> {
    sqlx::query_as!(
        PolicyTarget,
        r#"SELECT t.policy_id, t.level, t.person_id, t.rotation_id, t.team_id,
                  coalesce(p.name, r.name, tm.name) AS "name?"
           FROM escalation_targets t
           LEFT JOIN people p ON p.id = t.person_id
           LEFT JOIN rotations r ON r.id = t.rotation_id
           LEFT JOIN teams tm ON tm.id = t.team_id
           WHERE t.policy_id = ANY($1) ORDER BY t.id"#,
        policies
    )
    .fetch_all(conn)
    .await
}

/// `(id, name, reaches someone)` of these people, rotations (with members)
/// or teams (with members), by `kind`.
pub async fn known(
    conn: &mut PgConnection,
    kind: &str,
    ids: &[i64],
) -> sqlx::Result<Vec<(i64, String, bool)>> {
    let rows: Vec<(i64, String, Option<bool>)> = match kind {
        "person" => sqlx::query!(
            "SELECT id, name, true AS reaches FROM people WHERE id = ANY($1)",
            ids
        )
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name, r.reaches))
        .collect(),
        "rotation" => sqlx::query!(
            "SELECT r.id, r.name,
                    EXISTS (SELECT 1 FROM rotation_members m WHERE m.rotation_id = r.id) AS reaches
             FROM rotations r WHERE r.id = ANY($1)",
            ids
        )
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name, r.reaches))
        .collect(),
        _ => sqlx::query!(
            "SELECT t.id, t.name,
                    EXISTS (SELECT 1 FROM team_members m WHERE m.team_id = t.id) AS reaches
             FROM teams t WHERE t.id = ANY($1)",
            ids
        )
        .fetch_all(conn)
        .await?
        .into_iter()
        .map(|r| (r.id, r.name, r.reaches))
        .collect(),
    };
    Ok(rows
        .into_iter()
        .map(|(id, n, r)| (id, n, r.unwrap_or(false)))
        .collect())
}

/// Removes a policy's levels (and their targets).
pub async fn clear_levels(conn: &mut PgConnection, policy: i64) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM escalation_levels WHERE policy_id = $1", policy)
        .execute(conn)
        .await
        .map(drop)
}

pub async fn insert_level(
    conn: &mut PgConnection,
    policy: i64,
    level: i32,
    delay_secs: i32,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO escalation_levels (policy_id, level, delay_secs) VALUES ($1, $2, $3)",
        policy,
        level,
        delay_secs
    )
    .execute(conn)
    .await
    .map(drop)
}

/// A target: exactly one of person, rotation, team.
pub async fn insert_target(
    conn: &mut PgConnection,
    policy: i64,
    level: i32,
    (person, rotation, team): (Option<i64>, Option<i64>, Option<i64>),
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO escalation_targets (policy_id, level, person_id, rotation_id, team_id)
         VALUES ($1, $2, $3, $4, $5)",
        policy,
        level,
        person,
        rotation,
        team
    )
    .execute(conn)
    .await
    .map(drop)
}

/// Unsets the default flag on every policy but `keep`.
pub async fn unset_default(conn: &mut PgConnection, keep: Option<i64>) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE escalation_policies SET is_default = false
         WHERE is_default AND ($1::bigint IS NULL OR id <> $1)",
        keep
    )
    .execute(conn)
    .await
    .map(drop)
}

pub async fn insert_policy(
    conn: &mut PgConnection,
    name: &str,
    description: &str,
    is_default: bool,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO escalation_policies (name, description, is_default) VALUES ($1, $2, $3) RETURNING id",
        name,
        description,
        is_default
    )
    .fetch_one(conn)
    .await
}

/// A policy's name, its row locked.
pub async fn policy_for_update(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "SELECT name FROM escalation_policies WHERE id = $1 FOR UPDATE",
        id
    )
    .fetch_optional(conn)
    .await
}

pub async fn update_policy(
    conn: &mut PgConnection,
    id: i64,
    name: &str,
    description: &str,
    is_default: bool,
) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE escalation_policies SET name = $2, description = $3, is_default = $4 WHERE id = $1",
        id,
        name,
        description,
        is_default
    )
    .execute(conn)
    .await
    .map(drop)
}

/// Open incidents escalating with a policy.
pub async fn open_incidents_with(conn: &mut PgConnection, policy: i64) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"SELECT count(*) AS "n!" FROM incidents WHERE escalation_policy_id = $1
           AND status IN ('triggered', 'acknowledged', 'mitigated')"#,
        policy
    )
    .fetch_one(conn)
    .await
}

pub async fn delete_policy(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM escalation_policies WHERE id = $1", id)
        .execute(conn)
        .await
        .map(drop)
}
