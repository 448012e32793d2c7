//! Server-side sessions.
//!
//! The browser holds an opaque 256-bit token in an HttpOnly, SameSite=Strict
//! cookie; the database holds its SHA-256. A session ends on logout, after
//! `session_idle` without requests, after `session_max` since login, when the
//! user's password changes, when the user is disabled, or when an admin ends
//! it. Every one of those deletes or refuses the row on the server, so a
//! copied cookie is worthless afterwards.

use std::time::Duration;

use axum::http::HeaderValue;
use chrono::{TimeDelta, Utc};
use sqlx::{PgConnection, PgPool};

use super::{random_token, session_cookie_name, token_hash, DbRole, Principal, Via};
use crate::config::Settings;

/// `last_seen_at` is refreshed at most this often, so busy pages cost reads, not writes.
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);

/// Creates a session; returns the token for the cookie.
pub async fn create(
    conn: &mut PgConnection,
    settings: &Settings,
    user_id: i64,
    source: Option<&str>,
    user_agent: Option<&str>,
) -> sqlx::Result<String> {
    let token = random_token();
    let expires_at =
        Utc::now() + TimeDelta::from_std(settings.session_max).unwrap_or(TimeDelta::days(7));
    sqlx::query!(
        "INSERT INTO sessions (token_hash, user_id, expires_at, source, user_agent) VALUES ($1, $2, $3, $4, $5)",
        token_hash(&token),
        user_id,
        expires_at,
        source,
        user_agent,
    )
    .execute(conn)
    .await?;
    Ok(token)
}

/// The principal behind a session token, if the session is valid.
pub async fn lookup(
    pool: &PgPool,
    settings: &Settings,
    token: &str,
) -> sqlx::Result<Option<Principal>> {
    let hash = token_hash(token);
    let row = sqlx::query!(
        r#"SELECT s.last_seen_at, s.expires_at, u.id, u.username, u.display_name,
                  u.role AS "role: DbRole", u.must_change_password, u.disabled_at
           FROM sessions s JOIN users u ON u.id = s.user_id
           WHERE s.token_hash = $1"#,
        &hash
    )
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let now = Utc::now();
    let idle = TimeDelta::from_std(settings.session_idle).unwrap_or(TimeDelta::hours(8));
    if row.expires_at <= now || row.last_seen_at + idle <= now || row.disabled_at.is_some() {
        sqlx::query!("DELETE FROM sessions WHERE token_hash = $1", &hash)
            .execute(pool)
            .await?;
        return Ok(None);
    }
    if now - row.last_seen_at > TOUCH_EVERY {
        sqlx::query!(
            "UPDATE sessions SET last_seen_at = now() WHERE token_hash = $1",
            &hash
        )
        .execute(pool)
        .await?;
    }
    Ok(Some(Principal {
        user_id: row.id,
        username: row.username,
        display_name: row.display_name,
        role: row.role.into(),
        must_change_password: row.must_change_password,
        via: Via::Session { token_hash: hash },
    }))
}

/// Ends one session.
pub async fn end(conn: &mut PgConnection, token_hash: &[u8]) -> sqlx::Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM sessions WHERE token_hash = $1", token_hash)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Ends every session of a user; returns how many there were.
pub async fn end_all(conn: &mut PgConnection, user_id: i64) -> sqlx::Result<u64> {
    Ok(
        sqlx::query!("DELETE FROM sessions WHERE user_id = $1", user_id)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Deletes expired sessions (the periodic sweep; lookups refuse them anyway).
pub async fn sweep(pool: &PgPool, idle: Duration) -> sqlx::Result<u64> {
    let idle_secs = idle.as_secs_f64();
    Ok(sqlx::query!(
        "DELETE FROM sessions WHERE expires_at <= now() OR last_seen_at <= now() - make_interval(secs => $1)",
        idle_secs
    )
    .execute(pool)
    .await?
    .rows_affected())
}

/// The `Set-Cookie` value that stores a session token.
pub fn cookie(settings: &Settings, token: &str) -> HeaderValue {
    let c = cookie::Cookie::build((
        session_cookie_name(settings.secure_cookies),
        token.to_owned(),
    ))
    .http_only(true)
    .same_site(cookie::SameSite::Strict)
    .secure(settings.secure_cookies)
    .path("/")
    .max_age(cookie::time::Duration::seconds(
        settings.session_max.as_secs() as i64,
    ))
    .build();
    HeaderValue::from_str(&c.to_string()).expect("cookie text is a valid header value")
}

/// The `Set-Cookie` value that deletes the session cookie.
pub fn clear_cookie(settings: &Settings) -> HeaderValue {
    let c = cookie::Cookie::build((session_cookie_name(settings.secure_cookies), ""))
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .secure(settings.secure_cookies)
        .path("/")
        .max_age(cookie::time::Duration::ZERO)
        .build();
    HeaderValue::from_str(&c.to_string()).expect("cookie text is a valid header value")
}
