//! User accounts: the admin API (`/api/v1/users`), the `opsdeck user`
//! commands, and the first-start `admin` account.
//!
//! Rules: usernames are lowercase `[a-z0-9][a-z0-9._-]{1,63}`; passwords set by
//! an admin must be changed by the user at next login; disabling a user or
//! resetting the password ends the user's sessions; the last active admin
//! cannot be demoted or disabled.

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{
    CreateUserRequest, EndedSessions, ResetPasswordRequest, Role, UpdateUserRequest, User,
};
use serde_json::json;
use sqlx::{PgConnection, PgPool};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::audit::{self, Actor, NewEntry};
use crate::auth::{password, sessions, Admin, Auth, DbRole, RequestCtx};
use crate::config::Secret;
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::state::AppState;

/// A validated username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Username, ApiError> {
        let s = s.trim();
        let ok = (2..=64).contains(&s.len())
            && s.bytes().enumerate().all(|(i, b)| {
                b.is_ascii_lowercase()
                    || b.is_ascii_digit()
                    || (i > 0 && matches!(b, b'.' | b'_' | b'-'))
            });
        if ok {
            Ok(Username(s.to_owned()))
        } else {
            Err(ApiError::BadRequest(
                "username must be 2 to 64 characters: lowercase letters, digits, and . _ - (not first)".into(),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn display_name(s: Option<&str>, fallback: &str) -> Result<String, ApiError> {
    let s = s.map(str::trim).unwrap_or_default();
    if s.chars().count() > 100 || s.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "display name must be at most 100 printable characters".into(),
        ));
    }
    Ok(if s.is_empty() {
        fallback.to_owned()
    } else {
        s.to_owned()
    })
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(update))
        .routes(routes!(reset_password))
        .routes(routes!(end_sessions))
}

async fn fetch(conn: &mut PgConnection, id: Option<i64>) -> sqlx::Result<Vec<User>> {
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

async fn fetch_one(conn: &mut PgConnection, id: i64) -> ApiResult<User> {
    fetch(conn, Some(id))
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("user {id}")))
}

/// List users.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", responses((status = 200, body = Vec<User>)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn list(_auth: Auth<Admin>, State(state): State<AppState>) -> ApiResult<Json<Vec<User>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(fetch(&mut conn, None).await?))
}

/// Create a user; they must change the password at first login.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = CreateUserRequest,
    responses((status = 201, body = User), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<CreateUserRequest>,
) -> ApiResult<(StatusCode, Json<User>)> {
    let username = Username::parse(&req.username)?;
    let name = display_name(req.display_name.as_deref(), username.as_str())?;
    password::check_policy(&req.password, username.as_str())?;
    let hash = password::hash(req.password).await?;
    let mut tx = state.pool.begin().await?;
    let id = insert(&mut tx, &username, &name, req.role, &hash, true).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "user.create",
        Some(format!("user:{}", username.as_str())),
        json!({"id": id, "role": req.role, "display_name": name}),
    )
    .await?;
    let user = fetch_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

async fn insert(
    conn: &mut PgConnection,
    username: &Username,
    display_name: &str,
    role: Role,
    hash: &str,
    must_change: bool,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"INSERT INTO users (username, display_name, role, password_hash, must_change_password)
           VALUES ($1, $2, $3, $4, $5) RETURNING id"#,
        username.as_str(),
        display_name,
        DbRole::from(role) as DbRole,
        hash,
        must_change
    )
    .fetch_one(conn)
    .await
}

/// Refuses when `id` is the last active admin (rows locked until commit).
async fn ensure_not_last_admin(conn: &mut PgConnection, id: i64) -> ApiResult<()> {
    let admins: Vec<i64> = sqlx::query_scalar!(
        "SELECT id FROM users WHERE role = 'admin' AND disabled_at IS NULL ORDER BY id FOR UPDATE"
    )
    .fetch_all(conn)
    .await?;
    if admins == [id] {
        return Err(ApiError::Conflict(
            "this is the last active admin; make someone else admin first".into(),
        ));
    }
    Ok(())
}

/// Change a user's display name, role, or disabled state.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UpdateUserRequest,
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = User), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<UpdateUserRequest>,
) -> ApiResult<Json<User>> {
    let mut tx = state.pool.begin().await?;
    let before = fetch_one(&mut tx, id).await?;
    let demote = req.role.is_some_and(|r| r != Role::Admin) && before.role == Role::Admin;
    let disable = req.disabled == Some(true) && !before.disabled;
    if (demote || disable) && before.role == Role::Admin {
        ensure_not_last_admin(&mut tx, id).await?;
    }
    let name = match &req.display_name {
        Some(n) => Some(display_name(Some(n), &before.username)?),
        None => None,
    };
    sqlx::query!(
        r#"UPDATE users SET
             display_name = coalesce($2, display_name),
             role = coalesce($3, role),
             disabled_at = CASE WHEN $4::boolean IS NULL THEN disabled_at
                                WHEN $4 THEN coalesce(disabled_at, now()) ELSE NULL END
           WHERE id = $1"#,
        id,
        name,
        req.role.map(DbRole::from) as Option<DbRole>,
        req.disabled
    )
    .execute(&mut *tx)
    .await?;
    let ended = if disable {
        sessions::end_all(&mut tx, id).await?
    } else {
        0
    };
    ctx.audit(&mut tx, &auth.principal, "user.update", Some(format!("user:{}", before.username)),
        json!({"id": id, "display_name": name, "role": req.role, "disabled": req.disabled, "sessions_ended": ended}))
        .await?;
    let user = fetch_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(user))
}

/// Set a new password for a user; ends their sessions; they must change it at next login.
#[utoipa::path(post, path = "/api/v1/users/{id}/password", tag = "users", request_body = ResetPasswordRequest,
    params(("id" = i64, Path, description = "user id")),
    responses((status = 204), (status = 400), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn reset_password(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<ResetPasswordRequest>,
) -> ApiResult<StatusCode> {
    let mut conn = state.pool.acquire().await?;
    let user = fetch_one(&mut conn, id).await?;
    drop(conn);
    password::check_policy(&req.new_password, &user.username)?;
    let hash = password::hash(req.new_password).await?;
    let mut tx = state.pool.begin().await?;
    let ended = set_password(&mut tx, id, &hash, true).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "user.password_reset",
        Some(format!("user:{}", user.username)),
        json!({"id": id, "sessions_ended": ended}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Stores a new hash and ends all of the user's sessions; returns how many ended.
pub(crate) async fn set_password(
    conn: &mut PgConnection,
    id: i64,
    hash: &str,
    must_change: bool,
) -> sqlx::Result<u64> {
    sqlx::query!(
        "UPDATE users SET password_hash = $2, must_change_password = $3, password_changed_at = now() WHERE id = $1",
        id,
        hash,
        must_change
    )
    .execute(&mut *conn)
    .await?;
    sessions::end_all(conn, id).await
}

/// End all sessions of a user.
#[utoipa::path(delete, path = "/api/v1/users/{id}/sessions", tag = "users",
    params(("id" = i64, Path, description = "user id")),
    responses((status = 200, body = EndedSessions), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn end_sessions(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<EndedSessions>> {
    let mut tx = state.pool.begin().await?;
    let user = fetch_one(&mut tx, id).await?;
    let ended = sessions::end_all(&mut tx, id).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "user.sessions_end",
        Some(format!("user:{}", user.username)),
        json!({"id": id, "sessions_ended": ended}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(EndedSessions { ended }))
}

// ---- used by the CLI and at start-up -------------------------------------

/// Creates `admin` when there are no users at all. Returns the generated
/// password when none was configured (to be printed once).
pub async fn ensure_initial_admin(
    pool: &PgPool,
    configured: Option<&Secret>,
) -> anyhow::Result<Option<String>> {
    let mut tx = pool.begin().await?;
    // Several replicas may start at once: one creates the admin.
    sqlx::query!("SELECT pg_advisory_xact_lock(7262383316112252)")
        .execute(&mut *tx)
        .await?;
    let any: bool = sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM users) AS "any!""#)
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(None);
    }
    let (password, generated) = match configured {
        Some(p) => {
            password::check_policy(p.expose(), "admin")
                .map_err(|e| anyhow::anyhow!("OPSDECK_ADMIN_PASSWORD is not acceptable: {e}"))?;
            (p.expose().to_owned(), false)
        }
        None => (generate_password(), true),
    };
    let hash = password::hash(password.clone()).await?;
    let username = Username("admin".into());
    let id = insert(
        &mut tx,
        &username,
        "Administrator",
        Role::Admin,
        &hash,
        generated,
    )
    .await?;
    audit::record(&mut tx, NewEntry {
        actor: Actor::system("opsdeck"),
        action: "user.bootstrap".into(),
        target: Some("user:admin".into()),
        params: json!({"id": id, "password_source": if generated { "generated" } else { "OPSDECK_ADMIN_PASSWORD" }}),
        source: None,
        outcome: opsdeck_wire::Outcome::Success,
        detail: None,
    })
    .await?;
    tx.commit().await?;
    Ok(generated.then_some(password))
}

/// 20 characters from an unambiguous alphabet (~114 bits).
pub fn generate_password() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rngs::OsRng;
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

fn cli_actor() -> Actor {
    let who = std::env::var("SUDO_USER")
        .or_else(|_| std::env::var("USER"))
        .unwrap_or_else(|_| "unknown".into());
    Actor::system(&format!("cli:{who}"))
}

async fn cli_audit(
    conn: &mut PgConnection,
    action: &str,
    target: &str,
    params: serde_json::Value,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewEntry {
            actor: cli_actor(),
            action: action.into(),
            target: Some(format!("user:{target}")),
            params,
            source: Some("cli".into()),
            outcome: opsdeck_wire::Outcome::Success,
            detail: None,
        },
    )
    .await
}

/// `opsdeck user add`.
pub async fn cli_add(
    pool: &PgPool,
    username: &str,
    role: Role,
    name: Option<&str>,
    pw: &str,
) -> anyhow::Result<i64> {
    let username = Username::parse(username)?;
    let name = display_name(name, username.as_str())?;
    password::check_policy(pw, username.as_str())?;
    let hash = password::hash(pw.to_owned()).await?;
    let mut tx = pool.begin().await?;
    let id = insert(&mut tx, &username, &name, role, &hash, false)
        .await
        .map_err(ApiError::from)?;
    cli_audit(
        &mut tx,
        "user.create",
        username.as_str(),
        json!({"id": id, "role": role}),
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn id_of(conn: &mut PgConnection, username: &str) -> anyhow::Result<i64> {
    sqlx::query_scalar!("SELECT id FROM users WHERE username = $1", username)
        .fetch_optional(conn)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {username:?}"))
}

/// `opsdeck user passwd`: sets the password, ends sessions.
pub async fn cli_passwd(pool: &PgPool, username: &str, pw: &str) -> anyhow::Result<()> {
    password::check_policy(pw, username)?;
    let hash = password::hash(pw.to_owned()).await?;
    let mut tx = pool.begin().await?;
    let id = id_of(&mut tx, username).await?;
    let ended = set_password(&mut tx, id, &hash, false).await?;
    cli_audit(
        &mut tx,
        "user.password_reset",
        username,
        json!({"id": id, "sessions_ended": ended}),
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

/// `opsdeck user disable`: disables and ends sessions.
pub async fn cli_disable(pool: &PgPool, username: &str) -> anyhow::Result<u64> {
    let mut tx = pool.begin().await?;
    let id = id_of(&mut tx, username).await?;
    ensure_not_last_admin(&mut tx, id).await?;
    sqlx::query!(
        "UPDATE users SET disabled_at = coalesce(disabled_at, now()) WHERE id = $1",
        id
    )
    .execute(&mut *tx)
    .await?;
    let ended = sessions::end_all(&mut tx, id).await?;
    cli_audit(
        &mut tx,
        "user.update",
        username,
        json!({"id": id, "disabled": true, "sessions_ended": ended}),
    )
    .await?;
    tx.commit().await?;
    Ok(ended)
}

/// `opsdeck user list`.
pub async fn cli_list(pool: &PgPool) -> anyhow::Result<Vec<User>> {
    let mut conn = pool.acquire().await?;
    Ok(fetch(&mut conn, None).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert!(Username::parse("alice").is_ok());
        assert!(Username::parse("ops.bot-2").is_ok());
        assert!(Username::parse("Alice").is_err());
        assert!(Username::parse("-alice").is_err());
        assert!(Username::parse("a").is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse(&"a".repeat(65)).is_err());
    }

    #[test]
    fn generated_passwords_pass_the_policy() {
        for _ in 0..20 {
            let p = generate_password();
            assert_eq!(p.len(), 20);
            password::check_policy(&p, "admin").unwrap();
        }
    }
}
