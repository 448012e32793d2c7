//! Contacts and on-call: people, teams, rotations (daily/weekly handoffs at
//! a local time, overrides), escalation policies, and who is on call.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// A person an escalation level reaches, with how they were reached.
#[derive(Debug, Clone, PartialEq)]
pub struct Recipient {
    pub person_id: i64,
    pub name: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub chat_handle: Option<String>,
    /// `person`, `rotation <name>` or `team <name>`.
    pub via: String,
}

/// The people level `level` of `policy_id` reaches at `now` (rotations
/// resolved to whoever is on call then, overrides included; teams to their
/// members), deduplicated, in target order. `None` when the policy has no
/// such level.
pub async fn level_recipients(
    conn: &mut PgConnection,
    policy_id: i64,
    level: i32,
    now: DateTime<Utc>,
) -> sqlx::Result<Option<Vec<Recipient>>> {
    let _ = (conn, policy_id, level, now);
    todo!("oncall::level_recipients")
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
}
