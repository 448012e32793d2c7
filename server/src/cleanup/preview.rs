//! Disk usage, making a preview and queuing the run that applies one (the
//! domain behind [`super::api`]; the routes audit and commit).

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Utc;
use opsdeck_wire::{CleanupPreview, CleanupRequest, DiskUsage, DiskUsageKind};
use serde_json::json;
use sqlx::PgConnection;

use super::{plan, store, CleanupError, PREVIEW_TTL_HOURS, RUNBOOK};
use crate::audit::Actor;
use crate::auth::Principal;
use crate::docker::{usage, Client, EngineConn};
use crate::inventory::Snapshot;
use crate::runbooks::engine::{enqueue, NewRun};
use crate::state::AppState;

type Result<T> = std::result::Result<T, CleanupError>;

/// The most days "older than" may say (ten years).
const MAX_DAYS: u32 = 3650;

/// The engine's connection and client, or why there is none.
pub fn engine(state: &AppState, id: i64) -> Result<(Arc<EngineConn>, Client)> {
    let conn = state
        .engines
        .get(id)
        .ok_or_else(|| CleanupError::NotFound(format!("engine {id}")))?;
    let client = conn
        .client()
        .map_err(|e| CleanupError::Unavailable(e.to_string()))?;
    Ok((conn, client))
}

/// An engine's `system df`, per kind.
pub async fn disk(state: &AppState, id: i64) -> Result<DiskUsage> {
    let (conn, client) = engine(state, id)?;
    let u = usage::usage(&client)
        .await
        .map_err(|e| CleanupError::Unavailable(format!("{e:#}")))?;
    Ok(DiskUsage {
        engine_id: id,
        engine: conn.name.clone(),
        kinds: usage::totals(&u)
            .into_iter()
            .map(|t| DiskUsageKind {
                kind: t.kind.into(),
                count: t.count,
                size_bytes: t.size,
                reclaimable_bytes: t.reclaimable,
            })
            .collect(),
    })
}

/// Checks a request: at least one kind, and a sane age.
pub fn check(req: &CleanupRequest) -> Result<()> {
    if let Some(d) = req.unused_images_older_than_days {
        if !(1..=MAX_DAYS).contains(&d) {
            return Err(CleanupError::Invalid(format!(
                "unused_images_older_than_days: 1 to {MAX_DAYS}"
            )));
        }
    }
    if !req.dangling_images
        && req.unused_images_older_than_days.is_none()
        && !req.stopped_containers
        && !req.volumes
    {
        return Err(CleanupError::Invalid(
            "dangling_images: choose at least one kind to clean up".into(),
        ));
    }
    Ok(())
}

/// What the engine holds now (its `system df`), read before the preview's
/// transaction begins so no database connection waits on the engine.
pub struct Survey {
    engine_id: i64,
    engine: String,
    usage: usage::Usage,
}

/// Reads engine `id`'s objects for a preview of `req` (checked first).
pub async fn survey(state: &AppState, id: i64, req: &CleanupRequest) -> Result<Survey> {
    check(req)?;
    let (engine, client) = engine(state, id)?;
    let u = usage::usage(&client)
        .await
        .map_err(|e| CleanupError::Unavailable(format!("{e:#}")))?;
    Ok(Survey {
        engine_id: id,
        engine: engine.name.clone(),
        usage: u,
    })
}

/// Computes what a clean-up of the surveyed engine would remove and stores
/// it as a preview (in `conn`'s transaction).
pub async fn make(
    conn: &mut PgConnection,
    survey: Survey,
    req: CleanupRequest,
    p: &Principal,
) -> Result<CleanupPreview> {
    let Survey {
        engine_id: id,
        engine,
        usage: u,
    } = survey;
    let snapshot = Snapshot::load(&mut *conn).await?;
    let backups = store::backup_volumes(&mut *conn, &engine).await?;
    let protected = store::protected_images(&mut *conn, id).await?;
    let (items, kept) = plan::plan(
        &req,
        &plan::Inputs {
            engine: &engine,
            usage: &u,
            services: &snapshot.services,
            backup_volumes: &backups,
            protected: &protected,
            now: Utc::now().timestamp(),
        },
    );
    let (pid, created_at) =
        store::insert_preview(&mut *conn, id, &req, &items, &p.username).await?;
    Ok(CleanupPreview {
        id: pid,
        engine_id: id,
        request: req,
        total_bytes: items.iter().map(|i| i.size_bytes).sum(),
        items,
        kept,
        created_by: p.username.clone(),
        created_at,
        run_id: None,
    })
}

/// Queues the `docker-cleanup` run applying preview `preview_id` of engine
/// `engine_id` (in `conn`'s transaction) and ties the preview to it.
/// Returns the run and how many items it removes.
pub async fn start(
    state: &AppState,
    conn: &mut PgConnection,
    engine_id: i64,
    preview_id: i64,
    p: &Principal,
) -> Result<(i64, usize)> {
    let row = store::preview(&mut *conn, preview_id, true)
        .await?
        .filter(|r| r.engine_id == engine_id)
        .ok_or_else(|| {
            CleanupError::Invalid(format!(
                "preview_id: no clean-up preview {preview_id} of engine {engine_id}"
            ))
        })?;
    if let Some(run) = row.run_id {
        return Err(CleanupError::Conflict(format!(
            "clean-up preview {preview_id} was applied by run {run}; make a new preview"
        )));
    }
    if Utc::now() - row.created_at > chrono::Duration::hours(PREVIEW_TTL_HOURS) {
        return Err(CleanupError::Conflict(format!(
            "clean-up preview {preview_id} is older than {PREVIEW_TTL_HOURS} hours; make a new preview"
        )));
    }
    if row.items.is_empty() {
        return Err(CleanupError::Conflict(format!(
            "clean-up preview {preview_id} removes nothing"
        )));
    }
    let runbook_id = store::runbook_id(&mut *conn, RUNBOOK)
        .await?
        .ok_or_else(|| {
            CleanupError::Conflict(format!(
                "the built-in runbook {RUNBOOK} is missing (it is seeded at start-up when absent)"
            ))
        })?;
    let engine = store::engine_name(&mut *conn, engine_id)
        .await?
        .unwrap_or_else(|| format!("#{engine_id}"));
    let params: BTreeMap<String, serde_json::Value> =
        [("preview".to_owned(), json!(preview_id))].into();
    let run = enqueue(
        state,
        &mut *conn,
        NewRun {
            runbook_id,
            params,
            reason: format!(
                "clean-up of engine {engine}: {} items (preview {preview_id})",
                row.items.len()
            ),
            incident: None,
            requested_by: Actor::of(p),
            requested_by_user: Some(p.user_id),
            schedule_id: None,
            parent: None,
        },
    )
    .await?;
    let holder = store::claim_for_run(&mut *conn, preview_id, run).await?;
    if holder != run {
        return Err(CleanupError::Conflict(format!(
            "clean-up preview {preview_id} was applied by run {holder}; make a new preview"
        )));
    }
    Ok((run, row.items.len()))
}
