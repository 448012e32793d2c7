//! User accounts: the rules behind the admin API (`/api/v1/users`, routes
//! in [`api`]), the `opsdeck user` commands, and the first-start `admin`
//! account. The SQL is in [`store`]; errors are [`UserError`].
//!
//! Rules: usernames are lowercase `[a-z0-9][a-z0-9._-]{1,63}`; passwords set by
//! an admin must be changed by the user at next login; disabling a user or
//! resetting the password ends the user's sessions; the last active admin
//! cannot be demoted or disabled.

pub mod api;
pub mod store;

pub use api::router;

use opsdeck_wire::{CreateUserRequest, Role, UpdateUserRequest, User};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::audit::{self, Actor, NewEntry};
use crate::auth::password::{self, PolicyError};
use crate::auth::{sessions, Principal, RequestCtx};
use crate::config::Secret;

/// What can go wrong with a user account, by the answer it deserves.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// Refused input (400).
    #[error("{0}")]
    Invalid(String),
    #[error("{0} not found")]
    NotFound(String),
    /// The state forbids it (409).
    #[error("{0}")]
    Conflict(String),
    /// A database error (unique names become 409 in `crate::error`).
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<PolicyError> for UserError {
    fn from(e: PolicyError) -> Self {
        UserError::Invalid(e.0)
    }
}

pub type UserResult<T> = Result<T, UserError>;

/// A validated username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(s: &str) -> Result<Username, UserError> {
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
            Err(UserError::Invalid(
                "username must be 2 to 64 characters: lowercase letters, digits, and . _ - (not first)".into(),
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn display_name(s: Option<&str>, fallback: &str) -> UserResult<String> {
    let s = s.map(str::trim).unwrap_or_default();
    if s.chars().count() > 100 || s.chars().any(char::is_control) {
        return Err(UserError::Invalid(
            "display name must be at most 100 printable characters".into(),
        ));
    }
    Ok(if s.is_empty() {
        fallback.to_owned()
    } else {
        s.to_owned()
    })
}

/// Every user, by name.
pub async fn list(pool: &PgPool) -> UserResult<Vec<User>> {
    let mut conn = pool.acquire().await?;
    Ok(store::fetch(&mut conn, None).await?)
}

async fn fetch_one(conn: &mut PgConnection, id: i64) -> UserResult<User> {
    store::fetch(conn, Some(id))
        .await?
        .pop()
        .ok_or_else(|| UserError::NotFound(format!("user {id}")))
}

/// Creates a user who must change the password at first login (audited).
pub async fn create(
    pool: &PgPool,
    ctx: &RequestCtx,
    p: &Principal,
    req: CreateUserRequest,
) -> UserResult<User> {
    let username = Username::parse(&req.username)?;
    let name = display_name(req.display_name.as_deref(), username.as_str())?;
    password::check_policy(&req.password, username.as_str())?;
    let hash = password::hash(req.password).await?;
    let mut tx = pool.begin().await?;
    let id = store::insert(&mut tx, username.as_str(), &name, req.role, &hash, true).await?;
    ctx.audit(
        &mut tx,
        p,
        "user.create",
        Some(format!("user:{}", username.as_str())),
        json!({"id": id, "role": req.role, "display_name": name}),
    )
    .await?;
    let user = fetch_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(user)
}

/// Refuses when `id` is the last active admin (rows locked until commit).
async fn ensure_not_last_admin(conn: &mut PgConnection, id: i64) -> UserResult<()> {
    if store::lock_active_admins(conn).await? == [id] {
        return Err(UserError::Conflict(
            "this is the last active admin; make someone else admin first".into(),
        ));
    }
    Ok(())
}

/// Changes a user's display name, role, or disabled state (audited).
pub async fn update(
    pool: &PgPool,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
    req: UpdateUserRequest,
) -> UserResult<User> {
    let mut tx = pool.begin().await?;
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
    store::update(&mut tx, id, name.as_deref(), req.role, req.disabled).await?;
    let ended = if disable {
        sessions::end_all(&mut tx, id).await?
    } else {
        0
    };
    ctx.audit(&mut tx, p, "user.update", Some(format!("user:{}", before.username)),
        json!({"id": id, "display_name": name, "role": req.role, "disabled": req.disabled, "sessions_ended": ended}))
        .await?;
    let user = fetch_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(user)
}

/// Sets a new password for a user, ends their sessions; they must change
/// it at next login (audited).
pub async fn reset_password(
    pool: &PgPool,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
    new_password: String,
) -> UserResult<()> {
    let mut conn = pool.acquire().await?;
    let user = fetch_one(&mut conn, id).await?;
    drop(conn);
    password::check_policy(&new_password, &user.username)?;
    let hash = password::hash(new_password).await?;
    let mut tx = pool.begin().await?;
    let ended = password::set(&mut tx, id, &hash, true).await?;
    ctx.audit(
        &mut tx,
        p,
        "user.password_reset",
        Some(format!("user:{}", user.username)),
        json!({"id": id, "sessions_ended": ended}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(())
}

/// Ends all sessions of a user (audited); how many ended.
pub async fn end_sessions(
    pool: &PgPool,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
) -> UserResult<u64> {
    let mut tx = pool.begin().await?;
    let user = fetch_one(&mut tx, id).await?;
    let ended = sessions::end_all(&mut tx, id).await?;
    ctx.audit(
        &mut tx,
        p,
        "user.sessions_end",
        Some(format!("user:{}", user.username)),
        json!({"id": id, "sessions_ended": ended}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(ended)
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
    store::lock_bootstrap(&mut tx).await?;
    if store::any_user(&mut tx).await? {
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
    let id = store::insert(
        &mut tx,
        "admin",
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
    let id = store::insert(&mut tx, username.as_str(), &name, role, &hash, false)
        .await
        .map_err(|e| match crate::error::unique_violation_message(&e) {
            Some(m) => UserError::Conflict(m.into()),
            None => UserError::Db(e),
        })?;
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
    store::id_of(conn, username)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no user named {username:?}"))
}

/// `opsdeck user passwd`: sets the password, ends sessions.
pub async fn cli_passwd(pool: &PgPool, username: &str, pw: &str) -> anyhow::Result<()> {
    password::check_policy(pw, username)?;
    let hash = password::hash(pw.to_owned()).await?;
    let mut tx = pool.begin().await?;
    let id = id_of(&mut tx, username).await?;
    let ended = password::set(&mut tx, id, &hash, false).await?;
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
    store::disable(&mut tx, id).await?;
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
    Ok(list(pool).await?)
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
