//! Escalation policies: levels, targets, the one default, deletes.

use sqlx::PgConnection;

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
