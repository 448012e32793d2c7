//! Queuing and ending runs outside the engine's lease: [`enqueue`] (with
//! its error enum [`RunError`]), [`withdraw`], [`fail_parked`], and what
//! they read.

use std::collections::BTreeMap;

use opsdeck_wire::{ApprovalPolicy, Role, RunbookDef};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool};

use crate::audit::Actor;
use crate::runbooks::def;
use crate::state::AppState;
use crate::timeline;

/// The audit actor of a run's requester.
pub fn actor_from(name: &str, kind: &str, user: Option<i64>) -> Actor {
    Actor {
        id: user,
        name: name.to_owned(),
        kind: match kind {
            "token" => "token",
            "system" => "system",
            _ => "user",
        },
    }
}

/// Fails a parked run whose approval expired or was denied (no lease is
/// held while parked, so this runs in the caller's transaction).
pub async fn fail_parked(
    conn: &mut PgConnection,
    run: i64,
    step: Option<i32>,
    message: &str,
) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "UPDATE runs SET status = 'failed', finished_at = now(), error = $2
         WHERE id = $1 AND status IN ('waiting', 'queued')",
        run,
        message
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if let Some(idx) = step {
        sqlx::query!(
            "UPDATE run_steps SET status = 'failed', finished_at = now(), error = $3
             WHERE run_id = $1 AND idx = $2 AND status IN ('waiting', 'pending')",
            run,
            idx,
            message
        )
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query!(
        "UPDATE run_steps SET status = 'skipped' WHERE run_id = $1 AND status IN ('pending', 'waiting')",
        run
    )
    .execute(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// The approval policy an admin set for an action kind.
pub async fn action_policy(pool: &PgPool, kind: &str) -> sqlx::Result<Option<ApprovalPolicy>> {
    let row = sqlx::query!(
        "SELECT required, roles, expires FROM approval_policies WHERE action_kind = $1",
        kind
    )
    .fetch_optional(pool)
    .await?
    .map(|r| (r.required, r.roles, r.expires));
    Ok(row.map(|(required, roles, expires)| ApprovalPolicy {
        required: required as u32,
        roles: roles
            .iter()
            .filter_map(|r| match r.as_str() {
                "operator" => Some(Role::Operator),
                "admin" => Some(Role::Admin),
                _ => None,
            })
            .collect(),
        expires,
    }))
}

/// Ends a queued or waiting run at once (in the caller's transaction): the
/// run and its pending or waiting steps `cancelled`, its pending approvals
/// withdrawn. Returns false when the run was in no such state. The caller
/// writes the timeline event and audit entry.
pub async fn withdraw(conn: &mut PgConnection, run_id: i64, error: &str) -> sqlx::Result<bool> {
    let n = sqlx::query!(
        "UPDATE runs SET status = 'cancelled', finished_at = now(), error = $2
         WHERE id = $1 AND status IN ('queued', 'waiting')",
        run_id,
        error
    )
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    sqlx::query!(
        "UPDATE run_steps SET status = 'cancelled' WHERE run_id = $1 AND status IN ('pending', 'waiting')",
        run_id
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "UPDATE approvals SET status = 'withdrawn', decided_at = now() WHERE run_id = $1 AND status = 'pending'",
        run_id
    )
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// Why a run was not queued (converted to `ApiError` in `error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The runbook (or what the request names) does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The parameters or the request do not fit the runbook.
    #[error("{0}")]
    Invalid(String),
    /// An exclusive run for the same target is active.
    #[error("{0}")]
    Conflict(String),
    /// The stored definition is broken.
    #[error("internal error")]
    Internal(anyhow::Error),
    /// The database failed (nothing was queued).
    #[error("internal error")]
    Database(#[from] sqlx::Error),
}

/// A run to queue.
pub struct NewRun {
    pub runbook_id: i64,
    pub params: BTreeMap<String, Value>,
    pub reason: String,
    pub incident: Option<String>,
    pub requested_by: Actor,
    /// The requesting user (for tokens: the token's user), never approves.
    pub requested_by_user: Option<i64>,
    pub schedule_id: Option<i64>,
    pub parent: Option<(i64, i32)>,
}

/// What typed parameters are checked against.
pub async fn load_world(state: &AppState, conn: &mut PgConnection) -> sqlx::Result<def::World> {
    let services: Vec<String> = sqlx::query_scalar!("SELECT name FROM services")
        .fetch_all(&mut *conn)
        .await?;
    let databases: Vec<String> = sqlx::query_scalar!(
        "SELECT DISTINCT s.name FROM services s JOIN checks c ON c.service_id = s.id
         WHERE c.kind IN ('postgres', 'mysql')"
    )
    .fetch_all(&mut *conn)
    .await?;
    let containers = state
        .engines
        .engines()
        .iter()
        .flat_map(|e| e.containers().into_iter().map(|c| c.name))
        .collect();
    Ok(def::World {
        services: services.into_iter().collect(),
        containers,
        databases: databases.into_iter().collect(),
    })
}

/// Queues a run of the runbook's current version: parameters checked, steps
/// created, timeline and `run.queued` in one transaction on `conn`. Refuses
/// (409) a second active run for the same target unless the definition
/// allows it. The caller audits the request and calls
/// [`RunEngine::changed`] after commit.
pub async fn enqueue(
    state: &AppState,
    conn: &mut PgConnection,
    new: NewRun,
) -> Result<i64, RunError> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let row = sqlx::query!(
        "SELECT b.current_version, v.definition, b.name FROM runbooks b
         JOIN runbook_versions v ON v.runbook_id = b.id AND v.version = b.current_version
         WHERE b.id = $1",
        new.runbook_id
    )
    .fetch_optional(&mut *tx)
    .await?
    .map(|r| (r.current_version, r.definition, r.name));
    let (version, definition, name) =
        row.ok_or_else(|| RunError::NotFound(format!("runbook {}", new.runbook_id)))?;
    let def: RunbookDef = serde_json::from_value(definition)
        .map_err(|e| RunError::Internal(anyhow::anyhow!("stored definition: {e}")))?;
    let world = load_world(state, &mut tx).await?;
    let params = def::check_params(&def, &new.params, &world).map_err(RunError::Invalid)?;
    if new.reason.len() > 2000 || new.incident.as_deref().is_some_and(|i| i.len() > 200) {
        return Err(RunError::Invalid(
            "reason: at most 2000 characters; incident: at most 200".into(),
        ));
    }
    let target = def::target(&def, &params);
    let binding = def::binding(new.runbook_id, version, &params);
    let id: Option<i64> = sqlx::query_scalar!(
        "INSERT INTO runs (runbook_id, version, params, target, exclusive, binding, reason, incident,
                           requested_by, requested_kind, requested_by_id, schedule_id, parent_run_id, parent_step)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (runbook_id, target) WHERE exclusive AND status IN ('queued', 'running', 'waiting')
         DO NOTHING RETURNING id",
        new.runbook_id,
        version,
        serde_json::to_value(&params).unwrap_or_default(),
        &target,
        !def.allow_parallel,
        &binding,
        new.reason.trim(),
        new.incident.as_deref().map(str::trim).filter(|s| !s.is_empty()),
        &new.requested_by.name,
        new.requested_by.kind,
        new.requested_by_user,
        new.schedule_id,
        new.parent.map(|p| p.0),
        new.parent.map(|p| p.1)
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        let active: Option<i64> = sqlx::query_scalar!(
            "SELECT id FROM runs WHERE runbook_id = $1 AND target = $2 AND exclusive
               AND status IN ('queued', 'running', 'waiting')",
            new.runbook_id,
            &target
        )
        .fetch_optional(&mut *tx)
        .await?;
        return Err(RunError::Conflict(format!(
            "runbook {name} is already running{} (run #{}); one run per target at a time",
            if target == "*" {
                String::new()
            } else {
                format!(" for {target}")
            },
            active.unwrap_or_default()
        )));
    };
    let names: Vec<&str> = def.steps.iter().map(|s| s.name.as_str()).collect();
    let titles: Vec<&str> = def.steps.iter().map(|s| s.title.as_str()).collect();
    let kinds: Vec<&str> = def.steps.iter().map(|s| s.action.kind()).collect();
    sqlx::query!(
        "INSERT INTO run_steps (run_id, idx, name, title, kind)
         SELECT $1, (ord - 1)::int, n, t, k
         FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(n, t, k, ord)",
        id,
        &names as &[&str],
        &titles as &[&str],
        &kinds as &[&str]
    )
    .execute(&mut *tx)
    .await?;
    let why = if new.reason.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", new.reason.trim())
    };
    timeline::append(
        &mut tx,
        "run",
        id,
        "run.queued",
        Some(&new.requested_by),
        None,
        &format!(
            "Queued by {} (version {version}){why}",
            new.requested_by.name
        ),
        json!({"params": params}),
    )
    .await?;
    // Work taken during an incident shows on its timeline (child runs are
    // part of their parent's).
    if new.parent.is_none() {
        crate::incidents::link_run(
            &mut tx,
            id,
            new.incident.as_deref(),
            &target,
            &name,
            &new.requested_by.name,
        )
        .await?;
    }
    tx.commit().await?;
    state.metrics.run_started(&name);
    Ok(id)
}
