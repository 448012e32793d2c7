//! The one timeline model: append-only events about a subject (runs and
//! incidents today; backups and maintenance windows later), in `timeline_events`.
//! A trigger refuses UPDATE and DELETE. Written in the same transaction as
//! the change they describe.

use opsdeck_wire::TimelineEvent;
use serde_json::Value;
use sqlx::{PgConnection, Row};

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
    let (id, at): (i64, chrono::DateTime<chrono::Utc>) = sqlx::query_as(
        "INSERT INTO timeline_events (subject_type, subject_id, kind, actor, actor_id, step, message, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id, at",
    )
    .bind(subject_type)
    .bind(subject_id)
    .bind(kind)
    .bind(actor.map(|a| a.name.clone()))
    .bind(actor.and_then(|a| a.id))
    .bind(step)
    .bind(message)
    .bind(data)
    .fetch_one(conn)
    .await?;
    Ok(TimelineEvent {
        id,
        at,
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
    let rows = sqlx::query(
        "SELECT id, at, kind, actor, step, message FROM timeline_events
         WHERE subject_type = $1 AND subject_id = $2 ORDER BY id",
    )
    .bind(subject_type)
    .bind(subject_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(TimelineEvent {
                id: r.try_get("id")?,
                at: r.try_get("at")?,
                kind: r.try_get("kind")?,
                actor: r.try_get("actor")?,
                message: r.try_get("message")?,
                step: r.try_get("step")?,
            })
        })
        .collect()
}
