//! Authentication and authorisation.
//!
//! A request is authenticated by exactly one of: the `opsdeck_session` cookie
//! (server-side session, [`sessions`]) or an `Authorization: Bearer` API token
//! ([`tokens`]). Tokens are never read from a query string. The result is a
//! [`Principal`], resolved at most once per request and cached in the
//! request's [`RequestSlots`].
//!
//! Handlers state the role they need with an extractor, which runs before any
//! body is parsed: [`Auth<Viewer>`], [`Auth<Operator>`], [`Auth<Admin>`]
//! (roles are ordered, so `Auth<Operator>` admits admins too), or
//! [`Authenticated`] for the few routes a user who must still change the
//! password may use (`/me`, `/me/password`, logout).
//!
//! `auth` sits above `audit`: the request context ([`RequestCtx`]) records
//! audit entries (`RequestCtx::audit`) and `Actor::of` names a principal in
//! the log; `audit` imports nothing from here. The log's own routes are in
//! [`audit_log`].

pub mod audit_log;
pub mod password;
pub mod routes;
pub mod scope;
pub mod sessions;
pub mod store;
pub mod throttle;
pub mod tokens;

use std::marker::PhantomData;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, Extensions, HeaderMap};
use base64::Engine;
use opsdeck_wire::{AuthVia, Role, TokenScope};
use rand::RngCore;
pub use scope::{AlertsWrite, Heartbeat, ScopeRule, Standard};
use sha2::{Digest, Sha256};

use opsdeck_wire::Outcome;
use serde_json::Value;
use sqlx::types::ipnetwork::IpNetwork;
use sqlx::{PgConnection, Postgres, Transaction};

use crate::audit::{self, Actor, NewEntry};
use crate::error::ApiError;
use crate::state::AppState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "opsdeck_session";
/// Its name when the cookie is `Secure`: browsers accept a `__Host-` cookie
/// only from a secure origin, with `Path=/` and no `Domain`, so a sibling
/// subdomain or a plain-HTTP man in the middle cannot plant or shadow it.
pub const SECURE_SESSION_COOKIE: &str = "__Host-opsdeck_session";

/// The session cookie's name under these settings.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        SECURE_SESSION_COOKIE
    } else {
        SESSION_COOKIE
    }
}

/// The `user_role` Postgres enum. (The wire `Role` cannot implement sqlx's
/// traits: both are foreign to this crate.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "user_role", rename_all = "lowercase")]
pub enum DbRole {
    Viewer,
    Operator,
    Admin,
}

impl From<DbRole> for Role {
    fn from(r: DbRole) -> Role {
        match r {
            DbRole::Viewer => Role::Viewer,
            DbRole::Operator => Role::Operator,
            DbRole::Admin => Role::Admin,
        }
    }
}

impl From<Role> for DbRole {
    fn from(r: Role) -> DbRole {
        match r {
            Role::Viewer => DbRole::Viewer,
            Role::Operator => DbRole::Operator,
            Role::Admin => DbRole::Admin,
        }
    }
}

/// Who is making a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user_id: i64,
    pub username: String,
    pub display_name: String,
    /// Effective role (for a token: the lower of the token's and its owner's).
    pub role: Role,
    pub must_change_password: bool,
    pub via: Via,
}

#[derive(Debug, Clone)]
pub enum Via {
    Session {
        token_hash: Vec<u8>,
    },
    Token {
        id: i64,
        name: String,
        /// What the token may do within its role ([`scope`]).
        scopes: Vec<TokenScope>,
    },
}

impl Principal {
    pub fn via(&self) -> AuthVia {
        match self.via {
            Via::Session { .. } => AuthVia::Session,
            Via::Token { .. } => AuthVia::Token,
        }
    }

    /// Whether this caller may make a request to a route with scope rule
    /// `S` (sessions always; tokens by their scopes).
    pub fn scope_admits<S: ScopeRule>(&self, method: &axum::http::Method) -> Result<(), ApiError> {
        match &self.via {
            Via::Session { .. } => Ok(()),
            Via::Token { scopes, .. } if S::admits(scopes, method) => Ok(()),
            Via::Token { .. } => Err(ApiError::Forbidden(format!(
                "this API token's scopes do not include `{}`, which this route needs",
                S::needed(method)
            ))),
        }
    }
}

/// Per-request slots, inserted by the request-context middleware before any
/// handler runs and read again after it answered (see `http::audit_requests`).
#[derive(Debug, Clone, Default)]
pub struct RequestSlots {
    pub principal: Arc<OnceLock<Principal>>,
    /// Set once an audit entry for this request has been committed.
    pub audited: Arc<AtomicBool>,
}

impl RequestSlots {
    pub fn mark_audited(&self) {
        self.audited.store(true, Ordering::SeqCst);
    }
    pub fn is_audited(&self) -> bool {
        self.audited.load(Ordering::SeqCst)
    }
}

/// A role requirement, as a type (see [`Auth`]).
pub trait MinRole: Send + Sync + 'static {
    const ROLE: Role;
}
pub struct Viewer;
pub struct Operator;
pub struct Admin;
impl MinRole for Viewer {
    const ROLE: Role = Role::Viewer;
}
impl MinRole for Operator {
    const ROLE: Role = Role::Operator;
}
impl MinRole for Admin {
    const ROLE: Role = Role::Admin;
}

/// An authenticated caller holding at least role `R`, who has no pending
/// password change, and (for an API token) a scope that rule `S` accepts
/// ([`scope`]; `Standard` unless the route says otherwise). Rejects with 401
/// (no or invalid credentials), 403 `password_change_required`, or 403
/// `forbidden` (role or scope).
pub struct Auth<R: MinRole, S: ScopeRule = Standard> {
    pub principal: Principal,
    _role: PhantomData<(R, S)>,
}

impl<R: MinRole, S: ScopeRule> FromRequestParts<AppState> for Auth<R, S> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        if principal.must_change_password {
            return Err(ApiError::PasswordChangeRequired);
        }
        if principal.role < R::ROLE {
            return Err(ApiError::forbidden_role(R::ROLE));
        }
        principal.scope_admits::<S>(&parts.method)?;
        Ok(Auth {
            principal,
            _role: PhantomData,
        })
    }
}

/// Any authenticated caller, even one who must change the password first
/// (a token still needs a scope the `Standard` rule accepts).
pub struct Authenticated(pub Principal);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let principal = authenticate(parts, state).await?;
        principal.scope_admits::<Standard>(&parts.method)?;
        Ok(Authenticated(principal))
    }
}

/// Resolves the caller once per request (cached in the request's slots).
async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, ApiError> {
    let slots = parts.extensions.get::<RequestSlots>().cloned();
    if let Some(p) = slots.as_ref().and_then(|s| s.principal.get()) {
        return Ok(p.clone());
    }
    let principal = if let Some(token) = bearer_token(&parts.headers)? {
        tokens::lookup(&state.pool, token).await?
    } else if let Some(token) = session_cookie(&parts.headers, state.settings.secure_cookies) {
        sessions::lookup(&state.pool, &state.settings, &token).await?
    } else {
        None
    };
    let principal = principal.ok_or(ApiError::Unauthenticated)?;
    if let Some(s) = slots {
        let _ = s.principal.set(principal.clone());
    }
    Ok(principal)
}

/// `/metrics` on the main listener with an API token: `None` when the
/// request carries no API token (the caller then checks the metrics bearer
/// token), `Some(Ok)` for a token with scope `metrics:read` (or `full`),
/// `Some(Err)` for any other token.
pub async fn metrics_token(
    pool: &sqlx::PgPool,
    headers: &HeaderMap,
) -> Option<Result<(), ApiError>> {
    let Ok(Some(token)) = bearer_token(headers) else {
        return None;
    };
    let Ok(Some(p)) = tokens::lookup(pool, token).await else {
        return None;
    };
    let Via::Token { scopes, .. } = &p.via else {
        return None;
    };
    Some(if scope::admits_metrics(scopes) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "this API token's scopes do not include `metrics:read`".into(),
        ))
    })
}

fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::Unauthenticated)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthenticated),
    }
}

/// How often a long-lived response looks whether its opener's credential
/// still holds ([`credential_ended`]).
pub const STREAM_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Resolves once the credential that opened a stream (log follow, run or
/// incident events, the status board) no longer holds: the session was
/// ended (logout, password change or reset, disable, an admin ending it) or
/// expired, or the token was revoked or expired, or the user was disabled.
/// Streams end with it (`take_until`), so a stream is never read past the
/// end of the session that opened it, and never by anyone else: every
/// stream is opened by a request that authenticates itself, and no stream
/// has an id that another request could attach to. A database error does
/// not end the stream (the next look decides).
pub fn credential_ended(
    pool: sqlx::PgPool,
    principal: &Principal,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    let via = principal.via.clone();
    async move {
        loop {
            tokio::time::sleep(STREAM_RECHECK).await;
            let live = match &via {
                Via::Session { token_hash } => store::session_live(&pool, token_hash).await,
                Via::Token { id, .. } => store::token_live(&pool, *id).await,
            };
            if let Ok(false) = live {
                return;
            }
        }
    }
}

/// The session token from the `Cookie` header(s), if any. With Secure
/// cookies only the `__Host-` name counts.
pub fn session_cookie(headers: &HeaderMap, secure: bool) -> Option<String> {
    let name = session_cookie_name(secure);
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

/// Facts about the request that audit entries and login throttling need.
/// Never fails.
#[derive(Debug, Clone)]
pub struct RequestCtx {
    /// Client address ([`source_of`]: X-Forwarded-For only from trusted proxies).
    pub source: Option<String>,
    pub user_agent: Option<String>,
    pub slots: RequestSlots,
}

impl FromRequestParts<AppState> for RequestCtx {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(request_ctx(parts, &state.settings.trusted_proxies))
    }
}

/// The audit log's actor for a principal (a user, or a token of a user).
impl Actor {
    pub fn of(p: &Principal) -> Actor {
        match &p.via {
            Via::Session { .. } => Actor {
                id: Some(p.user_id),
                name: p.username.clone(),
                kind: "user",
            },
            Via::Token { id, name, .. } => Actor {
                id: Some(*id),
                name: format!("token:{name} ({})", p.username),
                kind: "token",
            },
        }
    }
}

impl RequestCtx {
    /// Records a successful action by `principal` on `tx`.
    pub async fn audit(
        &self,
        tx: &mut PgConnection,
        principal: &Principal,
        action: &str,
        target: Option<String>,
        params: Value,
    ) -> sqlx::Result<()> {
        self.audit_as(
            tx,
            Actor::of(principal),
            action,
            target,
            params,
            Outcome::Success,
            None,
        )
        .await
    }

    /// Records an entry with an explicit actor and outcome.
    #[allow(clippy::too_many_arguments)]
    pub async fn audit_as(
        &self,
        tx: &mut PgConnection,
        actor: Actor,
        action: &str,
        target: Option<String>,
        params: Value,
        outcome: Outcome,
        detail: Option<String>,
    ) -> sqlx::Result<()> {
        audit::record(
            tx,
            NewEntry {
                actor,
                action: action.into(),
                target,
                params,
                source: self.source.clone(),
                outcome,
                detail,
            },
        )
        .await
    }

    /// Commits the change together with its audit entry, and marks the
    /// request as audited for the middleware.
    pub async fn commit(&self, tx: Transaction<'_, Postgres>) -> sqlx::Result<()> {
        tx.commit().await?;
        self.slots.mark_audited();
        Ok(())
    }
}

/// The client's address. From a peer in `trusted` (your reverse proxies),
/// it is the rightmost `X-Forwarded-For` entry that is not itself trusted:
/// each proxy appends the address it received from, so entries to the left
/// of the first untrusted one are the client's own claims and never used.
/// From any other peer the header is ignored and the peer is the client.
/// An unreadable entry ends the walk at the nearest trusted hop; a chain of
/// trusted hops only yields its leftmost entry.
pub fn source_of(
    headers: &HeaderMap,
    extensions: &Extensions,
    trusted: &[IpNetwork],
) -> Option<String> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| canonical(c.0.ip()))?;
    Some(client_address(peer, headers, trusted).to_string())
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNetwork]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let chain: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for entry in chain.iter().rev() {
        let Ok(ip) = entry.parse::<IpAddr>().map(canonical) else {
            break;
        };
        client = ip;
        if !is_trusted(ip) {
            break;
        }
    }
    client
}

pub fn request_ctx(parts: &Parts, trusted: &[IpNetwork]) -> RequestCtx {
    RequestCtx {
        source: source_of(&parts.headers, &parts.extensions, trusted),
        user_agent: parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(300).collect()),
        slots: parts
            .extensions
            .get::<RequestSlots>()
            .cloned()
            .unwrap_or_default(),
    }
}

/// A fresh random token: 256 bits, URL-safe base64.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database stores instead of a token.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}
