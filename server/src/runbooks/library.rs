//! The runbook library: definitions and their versions.
//!
//! Admins create, edit (each save is a new version; old versions stay
//! readable), import/export YAML and delete runbooks without runs. Every
//! change is audited in its own transaction. Errors are [`RunbookError`];
//! the SQL is in [`super::store`].

use std::collections::BTreeMap;

use opsdeck_wire::{
    RunSummary, Runbook, RunbookDef, RunbookSummary, RunbookVersion, RunbookWrite, StepAction,
};
use serde_json::json;
use sqlx::PgConnection;

use super::def;
use super::error::{RunbookError, RunbookResult};
use super::runs::summary;
use super::store;
use crate::auth::{Principal, RequestCtx};
use crate::state::AppState;

/// The definition a write carries, with its YAML text, validated.
pub fn parse_write(w: RunbookWrite) -> RunbookResult<(RunbookDef, String)> {
    let (def, yaml) = match (w.definition, w.yaml) {
        (Some(d), None) => {
            let y = def::to_yaml(&d);
            (d, y)
        }
        (None, Some(y)) => (def::from_yaml(&y).map_err(RunbookError::Invalid)?, y),
        _ => {
            return Err(RunbookError::Invalid(
                "give either \"definition\" or \"yaml\"".into(),
            ))
        }
    };
    def::validate(&def).map_err(RunbookError::Invalid)?;
    Ok((def, yaml))
}

fn stored_def(v: serde_json::Value) -> RunbookResult<RunbookDef> {
    serde_json::from_value(v).map_err(|e| RunbookError::stored(format_args!("definition: {e}")))
}

/// A runbook's current definition.
pub async fn load(conn: &mut PgConnection, id: i64) -> RunbookResult<Runbook> {
    let r = store::runbook(conn, id)
        .await?
        .ok_or_else(|| RunbookError::NotFound(format!("runbook {id}")))?;
    Ok(Runbook {
        id,
        name: r.name,
        version: r.current_version,
        builtin: r.builtin,
        definition: stored_def(r.definition)?,
        updated_at: r.created_at,
        updated_by: r.created_by,
    })
}

/// Runbooks with their current version and last run, by name.
pub async fn list(state: &AppState) -> RunbookResult<Vec<RunbookSummary>> {
    let mut conn = state.pool.acquire().await?;
    let rows = store::runbooks(&mut conn).await?;
    let mut last_by: BTreeMap<i64, RunSummary> = BTreeMap::new();
    for r in store::last_runs(&mut conn).await? {
        let s = summary(r)?;
        last_by.insert(s.runbook_id, s);
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let d = stored_def(r.definition)?;
        let needs_approval = d.approval.is_some()
            || d.steps
                .iter()
                .any(|s| s.approval.is_some() || matches!(s.action, StepAction::Approval { .. }));
        out.push(RunbookSummary {
            id: r.id,
            name: r.name,
            title: d.title,
            description: d.description,
            version: r.current_version,
            builtin: r.builtin,
            params: d.params,
            steps: d.steps.len(),
            needs_approval,
            last_run: last_by.remove(&r.id),
        });
    }
    Ok(out)
}

/// Stores a new version, audits `action` and commits; the saved runbook.
#[allow(clippy::too_many_arguments)]
async fn save_version(
    ctx: &RequestCtx,
    p: &Principal,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    id: i64,
    version: i32,
    def: &RunbookDef,
    yaml: &str,
    action: &str,
) -> RunbookResult<Runbook> {
    let definition = serde_json::to_value(def).unwrap_or_default();
    store::insert_version(
        &mut tx,
        id,
        version,
        (&def.name, definition, yaml),
        &p.username,
    )
    .await?;
    ctx.audit(
        &mut tx,
        p,
        action,
        Some(format!("runbook:{}", def.name)),
        json!({"version": version, "steps": def.steps.len()}),
    )
    .await?;
    let rb = load(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(rb)
}

/// Creates a runbook from a definition (409 if the name is taken).
pub async fn create(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    w: RunbookWrite,
) -> RunbookResult<Runbook> {
    let (def, yaml) = parse_write(w)?;
    let mut tx = state.pool.begin().await?;
    let id = store::create(&mut tx, &def.name).await?.ok_or_else(|| {
        RunbookError::Conflict(format!(
            "a runbook named \"{}\" exists; edit it or import to add a version",
            def.name
        ))
    })?;
    save_version(ctx, p, tx, id, 1, &def, &yaml, "runbook.create").await
}

/// Imports a definition: creates the runbook, or adds a version to the one
/// with that name.
pub async fn import(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    w: RunbookWrite,
) -> RunbookResult<Runbook> {
    let (def, yaml) = parse_write(w)?;
    let mut tx = state.pool.begin().await?;
    let (id, version) = store::lock_or_create_by_name(&mut tx, &def.name).await?;
    save_version(ctx, p, tx, id, version, &def, &yaml, "runbook.import").await
}

/// Saves a new version of runbook `id`.
pub async fn update(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
    w: RunbookWrite,
) -> RunbookResult<Runbook> {
    let (def, yaml) = parse_write(w)?;
    let mut tx = state.pool.begin().await?;
    let version = store::lock_next_version(&mut tx, id)
        .await?
        .ok_or_else(|| RunbookError::NotFound(format!("runbook {id}")))?;
    if store::name_taken(&mut tx, &def.name, id).await? {
        return Err(RunbookError::Conflict(format!(
            "another runbook is named \"{}\"",
            def.name
        )));
    }
    save_version(ctx, p, tx, id, version, &def, &yaml, "runbook.update").await
}

/// Deletes a runbook that has never run (runs keep their history).
pub async fn delete(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
) -> RunbookResult<()> {
    let mut tx = state.pool.begin().await?;
    let name = store::lock_name(&mut tx, id)
        .await?
        .ok_or_else(|| RunbookError::NotFound(format!("runbook {id}")))?;
    let runs = store::run_count(&mut tx, id).await?;
    if runs > 0 {
        return Err(RunbookError::Conflict(format!(
            "runbook \"{name}\" has {runs} run(s) whose history must stay; it cannot be deleted"
        )));
    }
    store::delete(&mut tx, id).await?;
    ctx.audit(
        &mut tx,
        p,
        "runbook.delete",
        Some(format!("runbook:{name}")),
        json!({}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(())
}

/// Every saved version, newest first.
pub async fn versions(state: &AppState, id: i64) -> RunbookResult<Vec<RunbookVersion>> {
    let rows = store::versions(&state.pool, id).await?;
    if rows.is_empty() {
        return Err(RunbookError::NotFound(format!("runbook {id}")));
    }
    rows.into_iter()
        .map(|r| {
            Ok(RunbookVersion {
                version: r.version,
                created_at: r.created_at,
                created_by: r.created_by,
                definition: stored_def(r.definition)?,
                yaml: r.yaml,
            })
        })
        .collect()
}

/// A version's (runbook name, YAML text); the current one by default.
pub async fn export(
    state: &AppState,
    id: i64,
    version: Option<i32>,
) -> RunbookResult<(String, String)> {
    store::yaml(&state.pool, id, version)
        .await?
        .ok_or_else(|| RunbookError::NotFound(format!("runbook {id}")))
}
