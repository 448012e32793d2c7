//! The SQL behind logging in, changing one's password and API tokens
//! (compile-checked). Sessions and login throttling keep theirs in
//! [`super::sessions`] and [`super::throttle`].

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgExecutor, PgPool};

use super::DbRole;

/// A user as a login sees it.
pub struct LoginUser {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub role: DbRole,
    pub password_hash: String,
    pub must_change_password: bool,
    pub disabled_at: Option<DateTime<Utc>>,
}

pub async fn login_user(pool: &PgPool, username: &str) -> sqlx::Result<Option<LoginUser>> {
    sqlx::query_as!(
        LoginUser,
        r#"SELECT id, username, display_name, role AS "role: DbRole", password_hash, must_change_password, disabled_at
           FROM users WHERE username = $1"#,
        username
    )
    .fetch_optional(pool)
    .await
}

pub async fn touch_login(conn: &mut PgConnection, user_id: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE users SET last_login_at = now() WHERE id = $1",
        user_id
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn password_hash(pool: &PgPool, user_id: i64) -> sqlx::Result<String> {
    sqlx::query_scalar!("SELECT password_hash FROM users WHERE id = $1", user_id)
        .fetch_one(pool)
        .await
}

/// A token with its owner, as authentication sees it.
pub struct TokenOwner {
    pub id: i64,
    pub name: String,
    pub role: DbRole,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    pub owner_role: DbRole,
    pub disabled_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
}

pub async fn token_by_hash(pool: &PgPool, hash: &[u8]) -> sqlx::Result<Option<TokenOwner>> {
    sqlx::query_as!(
        TokenOwner,
        r#"SELECT t.id, t.name, t.role AS "role: DbRole", t.expires_at, t.revoked_at, t.last_used_at,
                  u.id AS user_id, u.username, u.display_name, u.role AS "owner_role: DbRole", u.disabled_at,
                  t.scopes
           FROM api_tokens t JOIN users u ON u.id = t.created_by
           WHERE t.token_hash = $1"#,
        hash
    )
    .fetch_optional(pool)
    .await
}

pub async fn touch_token(pool: &PgPool, id: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE api_tokens SET last_used_at = now() WHERE id = $1",
        id
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub struct TokenRow {
    pub id: i64,
    pub name: String,
    pub role: DbRole,
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub scopes: Vec<String>,
}

/// Tokens, active first (one token when `id` is given).
pub async fn tokens(db: impl PgExecutor<'_>, id: Option<i64>) -> sqlx::Result<Vec<TokenRow>> {
    sqlx::query_as!(
        TokenRow,
        r#"SELECT t.id, t.name, t.role AS "role: DbRole", t.prefix, u.username AS created_by, t.created_at,
                  t.last_used_at, t.expires_at, t.revoked_at, t.scopes
           FROM api_tokens t JOIN users u ON u.id = t.created_by
           WHERE ($1::bigint IS NULL OR t.id = $1)
           ORDER BY t.revoked_at IS NOT NULL, t.created_at DESC"#,
        id
    )
    .fetch_all(db)
    .await
}

/// What a new token row holds (the secret only as its hash).
pub struct NewToken<'a> {
    pub name: &'a str,
    pub hash: Vec<u8>,
    pub prefix: &'a str,
    pub role: DbRole,
    pub scopes: &'a [String],
    pub created_by: i64,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn insert_token(conn: &mut PgConnection, t: NewToken<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"INSERT INTO api_tokens (name, token_hash, prefix, role, created_by, expires_at, scopes)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"#,
        t.name,
        t.hash,
        t.prefix,
        t.role as DbRole,
        t.created_by,
        t.expires_at,
        t.scopes
    )
    .fetch_one(conn)
    .await
}

/// Revokes a token; its name (`None`: no such token).
pub async fn revoke_token(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1 RETURNING name",
        id
    )
    .fetch_optional(conn)
    .await
}

/// Whether a session still admits requests (exists, not expired, its user
/// not disabled). Idle expiry is left to the next request.
pub async fn session_live(pool: &PgPool, token_hash: &[u8]) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.token_hash = $1 AND s.expires_at > now() AND u.disabled_at IS NULL) AS "live!""#,
        token_hash
    )
    .fetch_one(pool)
    .await
}

/// Whether an API token still admits requests (not revoked or expired, its
/// creator not disabled).
pub async fn token_live(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM api_tokens t JOIN users u ON u.id = t.created_by
           WHERE t.id = $1 AND t.revoked_at IS NULL AND (t.expires_at IS NULL OR t.expires_at > now())
             AND u.disabled_at IS NULL) AS "live!""#,
        id
    )
    .fetch_one(pool)
    .await
}
