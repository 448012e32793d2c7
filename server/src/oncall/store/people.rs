//! People and teams: reads, inserts, updates, deletes, team members.

use opsdeck_wire::Person;
use sqlx::PgConnection;

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
