//! The one timeline model: append-only events about a subject (runs and
//! incidents today; backups and maintenance windows later), in `timeline_events`.
//! A trigger refuses UPDATE and DELETE. Written in the same transaction as
//! the change they describe.

use opsdeck_wire::TimelineEvent;
use serde_json::Value;
use sqlx::PgConnection;

use crate::audit::Actor;

/// Appends one event; returns it as stored.
#[allow(clippy::too_many_arguments)]
pub async fn append(
    conn: &mut PgConnection,
    subject_type: &str,
    subject_id: i64,
    kind: &str,
    actor: Option<&Actor>,
    step: Option<i32>,
    message: &str,
    data: Value,
) -> sqlx::Result<TimelineEvent> {
    let row = sqlx::query!(
        "INSERT INTO timeline_events (subject_type, subject_id, kind, actor, actor_id, step, message, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, at",
        subject_type,
        subject_id,
        kind,
        actor.map(|a| a.name.clone()),
        actor.and_then(|a| a.id),
        step,
        message,
        data,
    )
    .fetch_one(conn)
    .await?;
    Ok(TimelineEvent {
        id: row.id,
        at: row.at,
        kind: kind.to_owned(),
        actor: actor.map(|a| a.name.clone()),
        message: message.to_owned(),
        step,
    })
}

/// A subject's events, oldest first.
pub async fn list(
    conn: &mut PgConnection,
    subject_type: &str,
    subject_id: i64,
) -> sqlx::Result<Vec<TimelineEvent>> {
    sqlx::query_as!(
        TimelineEvent,
        "SELECT id, at, kind, actor, step, message FROM timeline_events
         WHERE subject_type = $1 AND subject_id = $2 ORDER BY id",
        subject_type,
        subject_id,
    )
    .fetch_all(conn)
    .await
}
