//! The contacts and on-call HTTP layer: [`validate`] checks input at the
//! boundary (messages start with the field), [`people`] (people and
//! teams), [`rotations`] (rotations, overrides, `GET /api/v1/oncall`) and
//! [`policies`] (escalation policies) are the handlers. The domain rules
//! they call (the advisory lock, "escalation never silently loses a
//! level") live in [`crate::oncall`]; the SQL in [`crate::oncall::store`].

pub mod people;
pub mod policies;
pub mod rotations;
pub mod validate;

use utoipa_axum::router::OpenApiRouter;

use super::OncallError;
use crate::error::ApiError;
use crate::state::AppState;

/// A write's database error as an answer: unique names (and the
/// one-default index) → 409, mapped in `crate::error`.
pub(crate) fn unique(e: sqlx::Error) -> ApiError {
    OncallError::Db(e).into()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(people::router())
        .merge(rotations::router())
        .merge(policies::router())
}
