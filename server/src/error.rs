//! The HTTP layer's error type.
//!
//! Which error lives where: domain and database code returns `anyhow::Error`
//! or `sqlx::Error` with context; handlers return [`ApiError`], which is the
//! only type that becomes a response. Every error answer has the shape
//! `{"error":{"code","message"}}`. Internal errors are logged with their full
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
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthenticated | ApiError::InvalidCredentials => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_)
            | ApiError::PasswordChangeRequired
            | ApiError::CsrfRejected(_)
            | ApiError::ReadOnly(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::ConfirmationRequired(_) => StatusCode::PRECONDITION_REQUIRED,
            ApiError::EngineError(_) => StatusCode::BAD_GATEWAY,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "invalid_input",
            ApiError::Unauthenticated => "unauthenticated",
            ApiError::InvalidCredentials => "invalid_credentials",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::PasswordChangeRequired => "password_change_required",
            ApiError::CsrfRejected(_) => "csrf_rejected",
            ApiError::NotFound(_) => "not_found",
            ApiError::Conflict(_) => "conflict",
            ApiError::TooManyAttempts { .. } => "too_many_attempts",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::ConfirmationRequired(_) => "confirmation_required",
            ApiError::EngineError(_) => "engine_error",
            ApiError::ReadOnly(_) => "read_only",
            ApiError::Internal(_) => "internal",
        }
    }

    pub fn forbidden_role(needed: opsdeck_wire::Role) -> ApiError {
        ApiError::Forbidden(format!("this needs the {} role", needed.as_str()))
    }
}

/// The JSON error body for a status, for answers produced outside handlers.
pub fn error_response(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = ErrorBody {
        error: ErrorDetail {
            code: code.to_owned(),
            message: message.into(),
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
        let mut response = error_response(status, this.code(), message);
        if let ApiError::TooManyAttempts { retry_after } = &this {
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
/// everything else).
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct Json<T>(pub T);

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_outage_deep_in_a_chain_answers_503() {
        let e = anyhow::Error::new(sqlx::Error::PoolTimedOut).context("loading the incident");
        let r = ApiError::Internal(e).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        let r = ApiError::from(sqlx::Error::PoolClosed).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        // A bug stays a 500.
        let e = anyhow::anyhow!("something else broke");
        let r = ApiError::Internal(e).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let r = ApiError::from(sqlx::Error::RowNotFound).into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
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
