//! The HTTP layer's error type.
//!
//! Which error lives where: domain and database code returns `anyhow::Error`
//! or `sqlx::Error` with context; handlers return [`ApiError`], which is the
//! only type that becomes a response. Every error answer has the shape
//! `{"error":{"code","message"}}`, plus `"field"` when a validation error
//! names the request field at fault ([`ApiError::invalid_field`]). Internal errors are logged with their full
//! chain and answered with a generic message; unique-constraint violations
//! become 409s with a message naming what already exists.

use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use opsdeck_wire::{ErrorBody, ErrorDetail};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    /// A 400 about one request field; the message names it first
    /// (`field: …`), as validation messages always have.
    #[error("{message}")]
    InvalidField { field: String, message: String },
    #[error("authentication required")]
    Unauthenticated,
    #[error("invalid username or password")]
    InvalidCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("you must change your password before doing anything else")]
    PasswordChangeRequired,
    #[error("{0}")]
    CsrfRejected(String),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("too many failed attempts; try again in {} s", retry_after.as_secs().max(1))]
    TooManyAttempts { retry_after: Duration },
    #[error("{0}")]
    Unavailable(String),
    /// The server is saturated (e.g. password hashing): 503 with `Retry-After`.
    #[error("the server is busy; try again in {} s", retry_after.as_secs().max(1))]
    Busy { retry_after: Duration },
    /// A dangerous action must be repeated with an explicit confirmation.
    #[error("{0}")]
    ConfirmationRequired(String),
    /// A Docker Engine refused or failed a request.
    #[error("{0}")]
    EngineError(String),
    /// Read-only mode (`OPSDECK_READ_ONLY`) refuses changes to containers.
    #[error("{0}")]
    ReadOnly(String),
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidField { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::PasswordChangeRequired
            | ApiError::CsrfRejected(_)
            | ApiError::ReadOnly(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ConfirmationRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::EngineError(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) | ApiError::InvalidField { .. } => "invalid_input",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PasswordChangeRequired => "password_change_required",
            ApiError::CsrfRejected(_) => "csrf_rejected",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Busy { .. } => "busy",
            ApiError::ConfirmationRequired(_) => "confirmation_required",
            ApiError::EngineError(_) => "engine_error",
            ApiError::ReadOnly(_) => "read_only",
            ApiError::Internal(_) => "internal",
        }
    }

    /// A 400 about `field` (a path into the request body: `name`,
    /// `spec.url`, `sources[0].service`); the answer carries it as `field`.
    /// The message reads `field: message`.
    pub fn invalid_field(field: impl Into<String>, message: impl std::fmt::Display) -> ApiError {
        let field = field.into();
        ApiError::InvalidField {
            message: format!("{field}: {message}"),
            field,
        }
    }

    /// A 400 from a validator that returns its errors as text in the
    /// validation convention `field: message` (`validate_spec`, the backup
    /// timing and target checks): the field becomes `field`; text without
    /// such a head stays a plain 400.
    pub fn from_validation(message: String) -> ApiError {
        let field = message.split_once(": ").and_then(|(head, _)| {
            let is_path = head.starts_with(|c: char| c.is_ascii_lowercase())
                && head.chars().all(|c| {
                    c.is_ascii_lowercase()
                        || c.is_ascii_digit()
                        || matches!(c, '_' | '.' | '[' | ']' | '/')
                });
            is_path.then(|| head.to_owned())
        });
        match field {
            Some(field) => ApiError::InvalidField { field, message },
            None => ApiError::BadRequest(message),
        }
    }

    pub fn forbidden_role(needed: opsdeck_wire::Role) -> ApiError {
        ApiError::Forbidden(format!("this needs the {} role", needed.as_str()))
    }
}

/// The JSON error body for a status, for answers produced outside handlers.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    field_error_response(status, code, message, None)
}

/// [`error_response`] with the field a validation error is about.
fn field_error_response(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    field: Option<String>,
) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.into(),
            field,
        },
    };
    (status, axum::Json(body)).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        // A database outage, or text the database cannot store, that reached
        // here through `anyhow` is still an outage or bad input, not a bug.
        let this = match self {
            ApiError::Internal(e) if chain_sqlx(&e, database_unavailable) => {
                tracing::warn!(error = format!("{e:#}"), "database unavailable");
                ApiError::Unavailable(DATABASE_UNAVAILABLE.into())
            }
            ApiError::Internal(e) if chain_sqlx(&e, unstorable_text) => {
                ApiError::BadRequest(UNSTORABLE_TEXT.into())
            }
            ApiError::Internal(e) if e.is::<crate::auth::password::Busy>() => ApiError::Busy {
                retry_after: crate::auth::password::BUSY_RETRY,
            },
            other => other,
        };
        let status = this.status();
        let message = match &this {
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                "internal error; the details are in the server log".to_owned()
            }
            other => other.to_string(),
        };
        let field = match &this {
            ApiError::InvalidField { field, .. } => Some(field.clone()),
            _ => None,
        };
        let mut response = field_error_response(status, this.code(), message, field);
        if let ApiError::TooManyAttempts { retry_after } | ApiError::Busy { retry_after } = &this {
            let secs = retry_after.as_secs().max(1).to_string();
            if let Ok(v) = HeaderValue::from_str(&secs) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

/// Unique-constraint names and what to tell the user when one is violated.
const UNIQUE_MESSAGES: &[(&str, &str)] = &[
    ("users_username_key", "a user with this username exists"),
    (
        "api_tokens_active_name_key",
        "an active API token with this name exists",
    ),
    ("services_name_key", "a service with this name exists"),
    ("engines_name_key", "an engine with this name exists"),
];

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &e {
            if let Some(constraint) = db.constraint() {
                if let Some((_, msg)) = UNIQUE_MESSAGES.iter().find(|(c, _)| *c == constraint) {
                    return ApiError::Conflict((*msg).to_owned());
                }
                if db.is_check_violation() {
                    return ApiError::BadRequest(format!("value refused by rule {constraint}"));
                }
            }
        }
        if database_unavailable(&e) {
            tracing::warn!(error = %e, "database unavailable");
            return ApiError::Unavailable(DATABASE_UNAVAILABLE.into());
        }
        if unstorable_text(&e) {
            return ApiError::BadRequest(UNSTORABLE_TEXT.into());
        }
        ApiError::Internal(anyhow::Error::new(e))
    }
}

const DATABASE_UNAVAILABLE: &str = "the database is unavailable; try again shortly";

/// Whether `e` means "the database cannot be reached now" rather than a bug:
/// no connection in time, a broken or refused connection, or the server
/// shutting down or starting up (SQLSTATE classes 08 connection exception
/// and 57 operator intervention). Those answer 503 `unavailable`, however
/// deep in an error chain they are (see [`ApiError::into_response`]).
pub fn database_unavailable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57")),
        _ => false,
    }
}

const UNSTORABLE_TEXT: &str =
    "text contains a character that cannot be stored (a NUL character, \\u0000); remove it";

/// Whether Postgres refused a value's characters: a NUL (`\u0000`) in
/// `text` or `jsonb`, or a character the encoding lacks (SQLSTATE 22P05,
/// 22021). Input the client sent, not a bug: 400.
pub fn unstorable_text(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| c == "22P05" || c == "22021"),
        _ => false,
    }
}

fn chain_sqlx(e: &anyhow::Error, test: fn(&sqlx::Error) -> bool) -> bool {
    e.chain()
        .any(|c| c.downcast_ref::<sqlx::Error>().is_some_and(test))
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}
impl From<PathRejection> for ApiError {
    fn from(r: PathRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}
impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> Self {
        ApiError::BadRequest(r.body_text())
    }
}

/// `axum::Json` whose rejection is an [`ApiError`] (same error shape as
/// everything else). A string with a NUL character (`\u0000`, which
/// Postgres `text` cannot store and C tools would cut short) is refused at
/// the boundary with a field error naming where it is (`name`,
/// `params.host`, `argv[1]`), never a 500 from the database.
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|ct| ct.split(';').next())
            .map(|m| m.trim().to_ascii_lowercase())
            .is_some_and(|m| {
                m == "application/json" || (m.starts_with("application/") && m.ends_with("+json"))
            });
        if !json {
            return Err(ApiError::BadRequest(
                "Expected request with `Content-Type: application/json`".into(),
            ));
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        if let Some(field) = nul_field(&bytes) {
            return Err(ApiError::invalid_field(
                field,
                "must not contain NUL characters (\\u0000)",
            ));
        }
        Ok(Json(axum::Json::<T>::from_bytes(&bytes)?.0))
    }
}

/// Where a JSON body holds a string (or key) with a NUL character, as a
/// field path; `None` when it holds none (or is not JSON: the real parse
/// reports that).
fn nul_field(body: &[u8]) -> Option<String> {
    // JSON carries NUL only escaped; skip the parse when no escape is there.
    if !body.windows(6).any(|w| w.eq_ignore_ascii_case(b"\\u0000")) {
        return None;
    }
    fn walk(v: &serde_json::Value, path: &str) -> Option<String> {
        let at = |p: &str| {
            if p.is_empty() {
                "body".to_owned()
            } else {
                p.to_owned()
            }
        };
        match v {
            serde_json::Value::String(s) if s.contains('\0') => Some(at(path)),
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x, &format!("{path}[{i}]"))),
            serde_json::Value::Object(map) => map.iter().find_map(|(k, x)| {
                let p = if path.is_empty() {
                    k.clone()
                } else {
                    format!("{path}.{k}")
                };
                if k.contains('\0') {
                    Some(at(path))
                } else {
                    walk(x, &p)
                }
            }),
            _ => None,
        }
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    walk(&v, "")
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// `axum::extract::Path` with an [`ApiError`] rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct Path<T>(pub T);

/// `axum::extract::Query` with an [`ApiError`] rejection.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct Query<T>(pub T);

pub type ApiResult<T> = Result<T, ApiError>;

// ---- actions ----
impl From<crate::actions::ActionError> for ApiError {
    fn from(e: crate::actions::ActionError) -> Self {
        use crate::actions::ActionError as E;
        match e {
            E::ReadOnly(m) => ApiError::ReadOnly(m),
            E::NeedsConfirmation(m) => ApiError::ConfirmationRequired(m),
            E::Invalid(m) => ApiError::BadRequest(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::NoContainers(m) => ApiError::Conflict(m),
            E::Unavailable(m) => ApiError::Unavailable(m),
            E::Engine(m) => ApiError::EngineError(m),
            E::Db(e) => ApiError::from(e),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}
// ---- backups ----

impl From<crate::backups::catalog::BackupError> for ApiError {
    fn from(e: crate::backups::catalog::BackupError) -> Self {
        use crate::backups::catalog::BackupError as E;
        match e {
            // Validation messages read `field: message`: the field is kept.
            E::Invalid(m) => ApiError::from_validation(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Unavailable(m) => ApiError::Unavailable(m),
            // backup_targets_name_key, backup_plans_name_key (and any other
            // unique violation while writing a target or plan).
            E::Write { name, source } => match &source {
                sqlx::Error::Database(d) if d.is_unique_violation() => {
                    ApiError::Conflict(format!("the name \"{name}\" is taken"))
                }
                _ => source.into(),
            },
            E::Db(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

// ---- checks ----

impl From<crate::checks::CheckError> for ApiError {
    fn from(e: crate::checks::CheckError) -> Self {
        use crate::checks::CheckError as E;
        match e {
            // Validation messages read `field: message`: the field is kept.
            E::Invalid(m) => ApiError::from_validation(m),
            E::NotFound(what) => ApiError::NotFound(what),
            e @ E::NameTaken(_) => ApiError::Conflict(e.to_string()),
            E::Database(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl crate::checks::CheckError {
    /// A failed write of the check named `name`: the unique constraint
    /// `checks_name_key` (one name per service) is a conflict.
    pub fn on_write(e: sqlx::Error, name: &str) -> Self {
        if let sqlx::Error::Database(d) = &e {
            if d.constraint() == Some("checks_name_key") {
                return Self::NameTaken(name.to_owned());
            }
        }
        Self::Database(e)
    }
}

// ---- engines ----

impl From<crate::engines::EngineError> for ApiError {
    fn from(e: crate::engines::EngineError) -> Self {
        use crate::engines::EngineError as E;
        match e {
            E::Invalid(m) => ApiError::BadRequest(m),
            E::NotFound(what) => ApiError::NotFound(what),
            E::Unreachable(m) => ApiError::EngineError(m),
            E::Database(e) => e.into(),
        }
    }
}

// ---- inventory ----

impl From<crate::inventory::InventoryError> for ApiError {
    fn from(e: crate::inventory::InventoryError) -> Self {
        use crate::inventory::InventoryError as E;
        match e {
            E::Invalid(m) => ApiError::BadRequest(m),
            E::NotFound(what) => ApiError::NotFound(what),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Unavailable(m) => ApiError::Unavailable(m),
            E::Engine(e) => e.into(),
            E::Database(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

// ---- incidents ----

impl From<crate::incidents::IncidentError> for ApiError {
    fn from(e: crate::incidents::IncidentError) -> Self {
        use crate::incidents::IncidentError as E;
        match e {
            E::NotFound(id) => ApiError::NotFound(format!("incident {id}")),
            E::Invalid(m) => ApiError::BadRequest(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Db(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

// ---- notify ----

impl From<crate::notify::error::NotifyError> for ApiError {
    fn from(e: crate::notify::error::NotifyError) -> Self {
        use crate::notify::error::NotifyError as E;
        match e {
            E::Db(e) => conflict_on(
                e,
                &[("channels_name_key", "a channel with this name exists")],
            ),
        }
    }
}

/// A unique-constraint violation named in `table` → 409 with its message;
/// anything else as [`From<sqlx::Error>`].
fn conflict_on(e: sqlx::Error, table: &[(&str, &str)]) -> ApiError {
    if let sqlx::Error::Database(db) = &e {
        if let Some(c) = db.constraint() {
            if let Some((_, msg)) = table.iter().find(|(name, _)| *name == c) {
                return ApiError::Conflict((*msg).to_owned());
            }
        }
    }
    e.into()
}

// ---- oncall ----

/// Unique names of contacts and on-call (and the one-default index).
const ONCALL_UNIQUE: &[(&str, &str)] = &[
    ("people_name_key", "a person with this name exists"),
    (
        "people_user_id_key",
        "user_id: this Opsdeck user is already linked to another person",
    ),
    ("teams_name_key", "a team with this name exists"),
    ("rotations_name_key", "a rotation with this name exists"),
    (
        "escalation_policies_name_key",
        "an escalation policy with this name exists",
    ),
    (
        "escalation_policies_one_default",
        "another policy was made the default at the same time; try again",
    ),
];

impl From<crate::oncall::OncallError> for ApiError {
    fn from(e: crate::oncall::OncallError) -> Self {
        use crate::oncall::OncallError as E;
        match e {
            E::Conflict(m) => ApiError::Conflict(m),
            E::Db(e) => conflict_on(e, ONCALL_UNIQUE),
        }
    }
}

// ---- runbooks ----

impl From<crate::runbooks::error::RunbookError> for ApiError {
    fn from(e: crate::runbooks::error::RunbookError) -> Self {
        use crate::runbooks::error::RunbookError as E;
        match e {
            E::Invalid(m) => ApiError::BadRequest(m),
            E::Forbidden(m) => ApiError::Forbidden(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Db(db)
                if db
                    .as_database_error()
                    .and_then(|d| d.constraint())
                    .is_some_and(|c| c == "runs_one_active_per_target") =>
            {
                ApiError::Conflict(
                    "another run of this runbook for the same target is active; wait for it".into(),
                )
            }
            E::Db(db) => ApiError::from(db),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

// ---- audit ----

impl From<crate::audit::AuditError> for ApiError {
    fn from(e: crate::audit::AuditError) -> Self {
        match e {
            crate::audit::AuditError::Invalid(m) => ApiError::BadRequest(m),
            crate::audit::AuditError::Db(db) => ApiError::from(db),
        }
    }
}

// ---- auth and users ----

impl From<crate::auth::password::PolicyError> for ApiError {
    fn from(e: crate::auth::password::PolicyError) -> Self {
        ApiError::BadRequest(e.0)
    }
}

impl From<crate::users::UserError> for ApiError {
    fn from(e: crate::users::UserError) -> Self {
        use crate::users::UserError as E;
        match e {
            E::Invalid(m) => ApiError::BadRequest(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Db(db) => ApiError::from(db),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

/// The 409 message for a unique-constraint violation, for callers outside
/// HTTP (the CLI) that want the same words as the API.
pub fn unique_violation_message(e: &sqlx::Error) -> Option<&'static str> {
    let constraint = e.as_database_error()?.constraint()?;
    UNIQUE_MESSAGES
        .iter()
        .find(|(c, _)| *c == constraint)
        .map(|(_, m)| *m)
}

// ---- jobs: the run engine ----

impl From<crate::runbooks::engine::RunError> for ApiError {
    fn from(e: crate::runbooks::engine::RunError) -> Self {
        use crate::runbooks::engine::RunError;
        match e {
            RunError::NotFound(what) => ApiError::NotFound(what),
            RunError::Invalid(msg) => ApiError::BadRequest(msg),
            RunError::Conflict(msg) => ApiError::Conflict(msg),
            RunError::Internal(e) => ApiError::Internal(e),
            RunError::Database(e) => ApiError::from(e),
        }
    }
}

// ---- schedules ----

impl From<crate::runbooks::schedules::ScheduleError> for ApiError {
    fn from(e: crate::runbooks::schedules::ScheduleError) -> Self {
        use crate::runbooks::schedules::ScheduleError;
        match e {
            ScheduleError::NotFound(id) => ApiError::NotFound(format!("schedule {id}")),
            ScheduleError::Invalid(m) => ApiError::from_validation(m),
            ScheduleError::Internal(e) => ApiError::Internal(e),
            ScheduleError::Database(e) => {
                if let sqlx::Error::Database(db) = &e {
                    if db.constraint() == Some("schedules_name_key") {
                        return ApiError::Conflict("a schedule with this name exists".into());
                    }
                }
                ApiError::from(e)
            }
        }
    }
}
// ---- maintenance ----

impl From<crate::maintenance::error::MaintenanceError> for ApiError {
    fn from(e: crate::maintenance::error::MaintenanceError) -> Self {
        use crate::maintenance::error::MaintenanceError as E;
        match e {
            E::Invalid(m) => ApiError::from_validation(m),
            E::NotFound(m) => ApiError::NotFound(m),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Run(e) => ApiError::from(e),
            E::Db(e) => ApiError::from(e),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

// ---- onboard ----

impl From<crate::onboard::OnboardError> for ApiError {
    fn from(e: crate::onboard::OnboardError) -> Self {
        use crate::onboard::OnboardError as E;
        match e {
            E::Invalid(m) => ApiError::from_validation(m),
            E::Inventory(e) => e.into(),
            E::Check(e) => e.into(),
            E::Database(e) => e.into(),
        }
    }
}

// ---- logs ----

impl From<crate::logs::LogError> for ApiError {
    fn from(e: crate::logs::LogError) -> Self {
        use crate::logs::LogError as E;
        match e {
            E::Invalid(m) => ApiError::from_validation(m),
            E::NotFound(what) => ApiError::NotFound(what),
            E::Database(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

// ---- cleanup ----

impl From<crate::cleanup::CleanupError> for ApiError {
    fn from(e: crate::cleanup::CleanupError) -> Self {
        use crate::cleanup::CleanupError as E;
        match e {
            E::Invalid(m) => ApiError::from_validation(m),
            E::NotFound(what) => ApiError::NotFound(what),
            E::Conflict(m) => ApiError::Conflict(m),
            E::Unavailable(m) => ApiError::Unavailable(m),
            E::Run(e) => e.into(),
            E::Database(e) => e.into(),
        }
    }
}

// ---- updates: discovery ----

impl From<crate::updates::discover::DiscoverError> for ApiError {
    fn from(e: crate::updates::discover::DiscoverError) -> Self {
        use crate::updates::discover::DiscoverError as E;
        match e {
            E::Database(e) => e.into(),
            E::Internal(e) => ApiError::Internal(e),
        }
    }
}

// ---- resources ----

impl From<crate::resources::ResourceError> for ApiError {
    fn from(e: crate::resources::ResourceError) -> Self {
        use crate::resources::ResourceError as E;
        match e {
            E::Invalid(m) => ApiError::from_validation(m),
            E::NotFound(what) => ApiError::NotFound(what),
            E::Database(e) => e.into(),
        }
    }
}

#[cfg(test)]
mod tests;
