//! The SQL of user accounts (compile-checked). Passwords are stored by
//! `auth::password::set`; sessions are `auth::sessions`.

use opsdeck_wire::{Role, User};
use sqlx::PgConnection;

use crate::auth::DbRole;

/// Users by name (one user when `id` is given).
pub async fn fetch(conn: &mut PgConnection, id: Option<i64>) -> sqlx::Result<Vec<User>> {
    let rows = sqlx::query!(
        r#"SELECT u.id, u.username, u.display_name, u.role AS "role: DbRole", u.disabled_at,
                  u.must_change_password, u.created_at, u.last_login_at,
                  (SELECT count(*) FROM sessions s WHERE s.user_id = u.id AND s.expires_at > now()) AS "active_sessions!"
           FROM users u WHERE ($1::bigint IS NULL OR u.id = $1) ORDER BY u.username"#,
        id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| User {
            id: r.id,
            username: r.username,
            display_name: r.display_name,
            role: r.role.into(),
            disabled: r.disabled_at.is_some(),
            must_change_password: r.must_change_password,
            created_at: r.created_at,
            last_login_at: r.last_login_at,
            active_sessions: r.active_sessions,
        })
        .collect())
}

pub async fn insert(
    conn: &mut PgConnection,
    username: &str,
    display_name: &str,
    role: Role,
    hash: &str,
    must_change: bool,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"INSERT INTO users (username, display_name, role, password_hash, must_change_password)
           VALUES ($1, $2, $3, $4, $5) RETURNING id"#,
        username,
        display_name,
        DbRole::from(role) as DbRole,
        hash,
        must_change
    )
    .fetch_one(conn)
    .await
}

/// The active admins' ids, locked until commit.
pub async fn lock_active_admins(conn: &mut PgConnection) -> sqlx::Result<Vec<i64>> {
    sqlx::query_scalar!(
        "SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id FOR UPDATE"
    )
    .fetch_all(conn)
    .await
}

/// Changes what is given; `disabled` sets or clears `disabled_at`.
pub async fn update(
    conn: &mut PgConnection,
    id: i64,
    display_name: Option<&str>,
    role: Option<Role>,
    disabled: Option<bool>,
) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE users SET
             display_name = coalesce($2, display_name),
             role = coalesce($3, role),
             disabled_at = CASE WHEN $4::boolean IS NULL THEN disabled_at
                                WHEN $4 THEN coalesce(disabled_at, now()) ELSE NULL END
           WHERE id = $1"#,
        id,
        display_name,
        role.map(DbRole::from) as Option<DbRole>,
        disabled
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn disable(conn: &mut PgConnection, id: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1",
        id
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Serialises the first-start bootstrap between replicas (until commit).
pub async fn lock_bootstrap(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(7262383316112252)")
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn any_user(conn: &mut PgConnection) -> sqlx::Result<bool> {
    sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM users) AS "any!""#)
        .fetch_one(conn)
        .await
}

pub async fn id_of(conn: &mut PgConnection, username: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT id FROM users WHERE username = $1", username)
        .fetch_optional(conn)
        .await
}
