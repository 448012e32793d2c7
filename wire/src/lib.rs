//! Wire types of the Opsdeck JSON API (`/api/v1`).
//!
//! This crate is shared by the server (`opsdeck`) and the SPA (`opsdeck-frontend`).
//! It holds plain data only: no validation, no database rows, no behaviour beyond
//! what serde derives. Validation happens in the server at the boundary, where
//! these types are parsed into domain types. Timestamps are UTC and travel as
//! RFC 3339 strings.
//!
//! With the `openapi` feature each type also derives `utoipa::ToSchema`, from
//! which the server generates `/api/v1/openapi.json`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

macro_rules! wire {
    ($($item:item)*) => {
        $(
            #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
            #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
            $item
        )*
    };
}

mod backups;
mod bindings;
mod cleanup;
mod dbops;
mod fleet;
mod health;
mod incidents;
mod inventory;
mod logs;
mod maintenance;
mod metrics;
mod resources;
mod rules;
mod runbooks;
mod updates;
pub use backups::*;
pub use bindings::*;
pub use cleanup::*;
pub use dbops::*;
pub use fleet::*;
pub use health::*;
pub use incidents::*;
pub use inventory::*;
pub use logs::*;
pub use maintenance::*;
pub use metrics::*;
pub use resources::*;
pub use rules::*;
pub use runbooks::*;
pub use updates::*;

/// A user's role. Roles are ordered: `viewer < operator < admin`; a route that
/// needs a role accepts every role above it too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watches status and reads history (managers).
    Viewer,
    /// Runs runbooks and actions, works incidents, approves others' requests.
    Operator,
    /// Everything, plus users, tokens, contacts and definitions.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// What an API token may do, besides its role. A token holds one or more
/// scopes; a route names the scopes it accepts and the auth layer answers 403
/// to a token without one of them. Sessions (people) are never scoped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TokenScope {
    /// Everything the token's role allows (tokens made before scopes existed).
    #[serde(rename = "full")]
    Full,
    /// Only `GET` routes the token's role allows: dashboards, exports, reports.
    #[serde(rename = "read")]
    Read,
    /// Only the Alertmanager webhook (`POST /api/v1/integrations/alertmanager`).
    #[serde(rename = "alerts:write")]
    AlertsWrite,
    /// Only heartbeat pings by check id (`POST /api/v1/checks/{id}/heartbeat`).
    #[serde(rename = "heartbeat")]
    Heartbeat,
    /// Only `GET /metrics` on the main listener (a Prometheus scraper).
    #[serde(rename = "metrics:read")]
    MetricsRead,
}

impl TokenScope {
    pub const ALL: [TokenScope; 5] = [
        TokenScope::Full,
        TokenScope::Read,
        TokenScope::AlertsWrite,
        TokenScope::Heartbeat,
        TokenScope::MetricsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Full => "full",
            TokenScope::Read => "read",
            TokenScope::AlertsWrite => "alerts:write",
            TokenScope::Heartbeat => "heartbeat",
            TokenScope::MetricsRead => "metrics:read",
        }
    }

    pub fn parse(s: &str) -> Option<TokenScope> {
        TokenScope::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

fn full_scope() -> Vec<TokenScope> {
    vec![TokenScope::Full]
}

/// How the current request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AuthVia {
    Session,
    Token,
}

/// Outcome of an audited action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

wire! {
    /// Every error answer: `{"error":{"code":"...","message":"..."}}`.
    pub struct ErrorBody {
        pub error: ErrorDetail,
    }

    pub struct ErrorDetail {
        /// Stable, machine-readable code, e.g. `invalid_credentials`.
        pub code: String,
        /// Human-readable explanation, safe to show to the user.
        pub message: String,
        /// The request field a validation error (`invalid_input`) is about,
        /// as a path into the request body (`name`, `spec.url`,
        /// `sources[0].service`), when the server knows it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub field: Option<String>,
    }

    /// `POST /api/v1/auth/login`.
    pub struct LoginRequest {
        pub username: String,
        pub password: String,
    }

    /// `GET /api/v1/me`: who is calling.
    pub struct Me {
        pub id: i64,
        pub username: String,
        pub display_name: String,
        pub role: Role,
        /// The user must choose a new password before anything else works.
        pub must_change_password: bool,
        pub via: AuthVia,
    }

    /// `POST /api/v1/me/password`.
    pub struct ChangePasswordRequest {
        pub current_password: String,
        pub new_password: String,
    }

    /// A user account as admins see it.
    pub struct User {
        pub id: i64,
        pub username: String,
        pub display_name: String,
        pub role: Role,
        pub disabled: bool,
        pub must_change_password: bool,
        pub created_at: DateTime<Utc>,
        pub last_login_at: Option<DateTime<Utc>>,
        /// Sessions that are currently valid.
        pub active_sessions: i64,
    }

    /// `POST /api/v1/users`. The user must change the password at first login.
    pub struct CreateUserRequest {
        pub username: String,
        #[serde(default)]
        pub display_name: Option<String>,
        pub role: Role,
        pub password: String,
    }

    /// `PATCH /api/v1/users/{id}`: only the fields given change.
    pub struct UpdateUserRequest {
        #[serde(default)]
        pub display_name: Option<String>,
        #[serde(default)]
        pub role: Option<Role>,
        #[serde(default)]
        pub disabled: Option<bool>,
    }

    /// `POST /api/v1/users/{id}/password`: an admin sets a new password; the
    /// user's sessions end and the user must change it at next login.
    pub struct ResetPasswordRequest {
        pub new_password: String,
    }

    /// How many sessions an action ended.
    pub struct EndedSessions {
        pub ended: u64,
    }

    /// An API token for automation. The secret itself is shown once, at creation.
    pub struct ApiToken {
        pub id: i64,
        pub name: String,
        pub role: Role,
        /// First characters of the token, to recognise it.
        pub prefix: String,
        pub created_by: String,
        pub created_at: DateTime<Utc>,
        pub last_used_at: Option<DateTime<Utc>>,
        pub expires_at: Option<DateTime<Utc>>,
        pub revoked_at: Option<DateTime<Utc>>,
        /// What the token may do within its role (`full`: everything).
        #[serde(default = "full_scope")]
        pub scopes: Vec<TokenScope>,
    }

    /// `POST /api/v1/tokens`.
    pub struct CreateApiTokenRequest {
        pub name: String,
        pub role: Role,
        /// Omit (or `["full"]`) for a token that may do all its role allows.
        #[serde(default = "full_scope")]
        pub scopes: Vec<TokenScope>,
        /// Omit for a token that does not expire.
        #[serde(default)]
        pub expires_in_days: Option<u32>,
    }

    /// Answer to `POST /api/v1/tokens`: the only time the secret is shown.
    pub struct CreatedApiToken {
        /// Send as `Authorization: Bearer <token>`.
        pub token: String,
        pub info: ApiToken,
    }

    /// One entry of the append-only, hash-chained audit log.
    pub struct AuditEntry {
        /// Position in the chain (1, 2, 3, ...).
        pub seq: i64,
        pub at: DateTime<Utc>,
        /// Username, token name, `system` or `anonymous`.
        pub actor: String,
        pub actor_kind: String,
        /// Dotted action name, e.g. `user.create`, `auth.login`.
        pub action: String,
        pub target: Option<String>,
        /// Parameters of the action, secrets masked.
        pub params: serde_json::Value,
        pub source: Option<String>,
        pub outcome: Outcome,
        pub detail: Option<String>,
    }

    /// A page of audit entries, newest first.
    pub struct AuditPage {
        pub entries: Vec<AuditEntry>,
        /// Pass as `before` to get the next (older) page.
        pub next_before: Option<i64>,
    }

    /// Result of checking the audit chain.
    pub struct AuditVerifyReport {
        pub ok: bool,
        pub checked: i64,
        /// First problem found, if any.
        pub problem: Option<String>,
    }

    /// `GET /readyz` body.
    pub struct Readiness {
        pub ready: bool,
        pub reason: Option<String>,
    }
}
