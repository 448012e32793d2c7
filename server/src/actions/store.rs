//! The `container_actions` table: the `running` row written before an
//! engine is asked, its finish, the activity lists and the upkeep that
//! closes rows a crash left `running`. Every statement is compile-checked.
//!
//! Linking a finished action to the open incident of its service goes
//! through the hook incidents registers ([`super::incident`]): `actions`
//! never imports `incidents` (which sits above it and calls it), and
//! what counts as open or how a change is announced stays incidents'.

use opsdeck_wire::{ActionOutcome, ActionRecord, ActionStep};
use serde_json::json;
use sqlx::{PgConnection, PgPool};

use crate::audit::Actor;

/// Writes the `running` row; its id.
pub async fn begin(
    pool: &PgPool,
    kind: &str,
    target: &str,
    service_id: Option<i64>,
    project: Option<&str>,
    params: &serde_json::Value,
    actor: &Actor,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        r#"INSERT INTO container_actions (kind, target, service_id, compose_project, params, actor, actor_id)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id"#,
        kind,
        target,
        service_id,
        project,
        params,
        actor.name,
        actor.id
    )
    .fetch_one(pool)
    .await
}

/// Records the outcome of action `id`; the service it was about, if any.
pub async fn finish(
    conn: &mut PgConnection,
    id: i64,
    outcome: &str,
    error: Option<&str>,
    steps: &[ActionStep],
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "UPDATE container_actions SET finished_at = now(), outcome = $2, error = $3, steps = $4
         WHERE id = $1 RETURNING service_id",
        id,
        outcome,
        error,
        json!(steps)
    )
    .fetch_one(conn)
    .await
}

/// Links action `action_id` to the open incident of `service_id`, if there
/// is one: the action shows on the incident's timeline, and the incident
/// counts as changed. In the caller's transaction.
pub async fn link_to_open_incident(
    conn: &mut PgConnection,
    action_id: i64,
    service_id: i64,
    summary: &str,
) -> sqlx::Result<()> {
    let Some(incidents) = super::incident::registered() else {
        return Ok(());
    };
    let incident = incidents.open_on_service(&mut *conn, service_id).await?;
    let Some(incident) = incident else {
        return Ok(());
    };
    sqlx::query!(
        "UPDATE container_actions SET incident_id = $2 WHERE id = $1",
        action_id,
        incident
    )
    .execute(&mut *conn)
    .await?;
    crate::timeline::append(
        conn,
        "incident",
        incident,
        "action",
        None,
        None,
        summary,
        json!({ "container_action_id": action_id }),
    )
    .await?;
    // A link is a change of the incident, which live views follow.
    incidents.touch(conn, incident).await?;
    Ok(())
}

/// Which actions to list.
pub enum Filter {
    Id(i64),
    Service(i64),
    Project(String),
}

/// Actions matching `f`, newest first, at most `limit`.
pub async fn load(pool: &PgPool, f: Filter, limit: i64) -> sqlx::Result<Vec<ActionRecord>> {
    let (id, service, project) = match f {
        Filter::Id(i) => (Some(i), None, None),
        Filter::Service(s) => (None, Some(s), None),
        Filter::Project(p) => (None, None, Some(p)),
    };
    let rows = sqlx::query!(
        r#"SELECT id, kind, target, service_id, params, actor, started_at, finished_at, outcome, error, steps
           FROM container_actions
           WHERE ($1::bigint IS NULL OR id = $1)
             AND ($2::bigint IS NULL OR service_id = $2)
             AND ($3::text IS NULL OR compose_project = $3)
           ORDER BY started_at DESC, id DESC LIMIT $4"#,
        id,
        service,
        project,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ActionRecord {
            id: r.id,
            kind: r.kind,
            target: r.target,
            service_id: r.service_id,
            params: r.params,
            actor: r.actor,
            started_at: r.started_at,
            finished_at: r.finished_at,
            duration_ms: r.finished_at.map(|f| (f - r.started_at).num_milliseconds()),
            outcome: match r.outcome.as_str() {
                "running" => ActionOutcome::Running,
                "succeeded" => ActionOutcome::Succeeded,
                "failed" => ActionOutcome::Failed,
                _ => ActionOutcome::Interrupted,
            },
            error: r.error,
            steps: serde_json::from_value(r.steps).unwrap_or_default(),
        })
        .collect())
}

/// Closes actions left `running` by a crash (called by the upkeep task)
/// once they are older than `max`.
pub async fn close_interrupted(pool: &PgPool, max: std::time::Duration) -> sqlx::Result<u64> {
    let max = max.as_secs_f64();
    let r = sqlx::query!(
        r#"UPDATE container_actions SET outcome = 'interrupted', finished_at = now(),
               error = 'the server stopped before the action finished; check the containers'' state'
           WHERE outcome = 'running' AND started_at < now() - make_interval(secs => $1)"#,
        max
    )
    .execute(pool)
    .await?;
    Ok(r.rows_affected())
}
