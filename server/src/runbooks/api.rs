//! Runbook and run routes.
//!
//! Definitions: admins create, edit (each save is a new version; old
//! versions stay readable), import/export YAML and delete runbooks without
//! runs. Runs: operators start (parameters checked by type), dry-run, cancel,
//! resume (from the first step that did not succeed), re-run (same
//! parameters, current version), close an interrupted run, and tick off
//! manual steps. Viewers read everything, live over SSE.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use opsdeck_wire::{
    CloseRun, CompleteStep, DryRun, PlannedStep, Run, RunStatus, RunStep, RunSummary, Runbook,
    RunbookDef, RunbookSummary, RunbookVersion, RunbookWrite, StartRun, StepAction, StepStatus,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::{PgConnection, Row};
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::def::{self, Scope};
use super::engine::{self, enqueue, NewRun};
use super::steps;
use crate::audit::Actor;
use crate::auth::{Admin, Auth, Operator, Principal, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;
use crate::timeline;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_runbooks, create_runbook))
        .routes(routes!(import_runbook))
        .routes(routes!(get_runbook, update_runbook, delete_runbook))
        .routes(routes!(versions))
        .routes(routes!(export))
        .routes(routes!(start_run))
        .routes(routes!(dry_run))
        .routes(routes!(list_runs))
        .routes(routes!(get_run))
        .routes(routes!(run_events))
        .routes(routes!(cancel_run))
        .routes(routes!(resume_run))
        .routes(routes!(rerun))
        .routes(routes!(close_run))
        .routes(routes!(complete_step))
}

// ------------------------------------------------------------ definitions

/// The definition a write carries, with its YAML text.
fn parse_write(w: RunbookWrite) -> ApiResult<(RunbookDef, String)> {
    let (def, yaml) = match (w.definition, w.yaml) {
        (Some(d), None) => {
            let y = def::to_yaml(&d);
            (d, y)
        }
        (None, Some(y)) => (def::from_yaml(&y).map_err(ApiError::BadRequest)?, y),
        _ => {
            return Err(ApiError::BadRequest(
                "give either \"definition\" or \"yaml\"".into(),
            ))
        }
    };
    def::validate(&def).map_err(ApiError::BadRequest)?;
    Ok((def, yaml))
}

async fn load_runbook(conn: &mut PgConnection, id: i64) -> ApiResult<Runbook> {
    let r = sqlx::query(
        "SELECT b.id, b.name, b.builtin, b.current_version, v.definition, v.created_at, v.created_by
         FROM runbooks b JOIN runbook_versions v ON v.runbook_id = b.id AND v.version = b.current_version
         WHERE b.id = $1",
    )
    .bind(id)
    .fetch_optional(conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("runbook {id}")))?;
    Ok(Runbook {
        id,
        name: r.get("name"),
        version: r.get("current_version"),
        builtin: r.get("builtin"),
        definition: serde_json::from_value(r.get("definition"))
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored definition: {e}")))?,
        updated_at: r.get("created_at"),
        updated_by: r.get("created_by"),
    })
}

async fn insert_version(
    conn: &mut PgConnection,
    id: i64,
    version: i32,
    def: &RunbookDef,
    yaml: &str,
    by: &str,
) -> sqlx::Result<()> {
    sqlx::query(
        "INSERT INTO runbook_versions (runbook_id, version, definition, yaml, created_by)
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id)
    .bind(version)
    .bind(serde_json::to_value(def).unwrap_or_default())
    .bind(yaml)
    .bind(by)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE runbooks SET name = $2, current_version = $3, updated_at = now() WHERE id = $1",
    )
    .bind(id)
    .bind(&def.name)
    .bind(version)
    .execute(conn)
    .await?;
    Ok(())
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
) -> ApiResult<Runbook> {
    insert_version(&mut tx, id, version, def, yaml, &p.username).await?;
    ctx.audit(
        &mut tx,
        p,
        action,
        Some(format!("runbook:{}", def.name)),
        json!({"version": version, "steps": def.steps.len()}),
    )
    .await?;
    let rb = load_runbook(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(rb)
}

fn run_summary(r: &sqlx::postgres::PgRow) -> ApiResult<RunSummary> {
    let status: String = r.get("status");
    Ok(RunSummary {
        id: r.get("id"),
        runbook_id: r.get("runbook_id"),
        runbook: r.get("runbook"),
        title: r.get("title"),
        version: r.get("version"),
        status: RunStatus::parse(&status)
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("run status {status}")))?,
        target: r.get("target"),
        requested_by: r.get("requested_by"),
        reason: r.get("reason"),
        created_at: r.get("created_at"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
        schedule_id: r.get("schedule_id"),
        done_steps: r.get("done_steps"),
        total_steps: r.get("total_steps"),
    })
}

/// The run list's columns plus `extra` (a leading comma included).
fn run_select(extra: &str) -> String {
    format!("SELECT r.id, r.runbook_id, b.name AS runbook,
        coalesce(v.definition->>'title', b.name) AS title, r.version, r.status, r.target,
        r.requested_by, r.reason, r.created_at, r.started_at, r.finished_at, r.schedule_id,
        (SELECT count(*) FILTER (WHERE s.status IN ('succeeded', 'skipped', 'failed')) FROM run_steps s
          WHERE s.run_id = r.id AND s.phase = 'main')::int AS done_steps,
        (SELECT count(*) FROM run_steps s WHERE s.run_id = r.id AND s.phase = 'main')::int AS total_steps
        {extra}
     FROM runs r JOIN runbooks b ON b.id = r.runbook_id
     JOIN runbook_versions v ON v.runbook_id = r.runbook_id AND v.version = r.version")
}

/// Runbooks with their current version and last run.
#[utoipa::path(get, path = "/api/v1/runbooks", tag = "runbooks",
    responses((status = 200, body = Vec<RunbookSummary>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_runbooks(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<RunbookSummary>>> {
    let mut conn = state.pool.acquire().await?;
    let rows = sqlx::query(
        "SELECT b.id, b.name, b.builtin, b.current_version, v.definition
         FROM runbooks b JOIN runbook_versions v ON v.runbook_id = b.id AND v.version = b.current_version
         ORDER BY b.name",
    )
    .fetch_all(&mut *conn)
    .await?;
    let last = sqlx::query(&format!(
        "{} WHERE r.id IN (SELECT max(id) FROM runs GROUP BY runbook_id)",
        run_select("")
    ))
    .fetch_all(&mut *conn)
    .await?;
    let mut last_by: BTreeMap<i64, RunSummary> = BTreeMap::new();
    for r in &last {
        let s = run_summary(r)?;
        last_by.insert(s.runbook_id, s);
    }
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let id: i64 = r.get("id");
        let d: RunbookDef = serde_json::from_value(r.get("definition"))
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored definition: {e}")))?;
        let needs_approval = d.approval.is_some()
            || d.steps
                .iter()
                .any(|s| s.approval.is_some() || matches!(s.action, StepAction::Approval { .. }));
        out.push(RunbookSummary {
            id,
            name: r.get("name"),
            title: d.title,
            description: d.description,
            version: r.get("current_version"),
            builtin: r.get("builtin"),
            params: d.params,
            steps: d.steps.len(),
            needs_approval,
            last_run: last_by.remove(&id),
        });
    }
    Ok(Json(out))
}

/// Create a runbook from a definition (JSON or YAML).
#[utoipa::path(post, path = "/api/v1/runbooks", tag = "runbooks", request_body = RunbookWrite,
    responses((status = 201, body = Runbook), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create_runbook(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(w): Json<RunbookWrite>,
) -> ApiResult<(StatusCode, Json<Runbook>)> {
    let (def, yaml) = parse_write(w)?;
    let mut tx = state.pool.begin().await?;
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO runbooks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id",
    )
    .bind(&def.name)
    .fetch_optional(&mut *tx)
    .await?;
    let id = id.ok_or_else(|| {
        ApiError::Conflict(format!(
            "a runbook named \"{}\" exists; edit it or import to add a version",
            def.name
        ))
    })?;
    let rb = save_version(
        &ctx,
        &auth.principal,
        tx,
        id,
        1,
        &def,
        &yaml,
        "runbook.create",
    )
    .await?;
    Ok((StatusCode::CREATED, Json(rb)))
}

/// Import a YAML definition: creates the runbook, or adds a version to the
/// one with that name.
#[utoipa::path(post, path = "/api/v1/runbooks/import", tag = "runbooks", request_body = RunbookWrite,
    responses((status = 200, body = Runbook), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn import_runbook(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(w): Json<RunbookWrite>,
) -> ApiResult<Json<Runbook>> {
    let (def, yaml) = parse_write(w)?;
    let mut tx = state.pool.begin().await?;
    sqlx::query("INSERT INTO runbooks (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
        .bind(&def.name)
        .execute(&mut *tx)
        .await?;
    let (id, versions): (i64, i64) = sqlx::query_as(
        "SELECT b.id, (SELECT count(*) FROM runbook_versions v WHERE v.runbook_id = b.id)
         FROM runbooks b WHERE b.name = $1 FOR UPDATE",
    )
    .bind(&def.name)
    .fetch_one(&mut *tx)
    .await?;
    let version: i32 = if versions == 0 {
        1
    } else {
        sqlx::query_scalar("SELECT max(version) + 1 FROM runbook_versions WHERE runbook_id = $1")
            .bind(id)
            .fetch_one(&mut *tx)
            .await?
    };
    save_version(
        &ctx,
        &auth.principal,
        tx,
        id,
        version,
        &def,
        &yaml,
        "runbook.import",
    )
    .await
    .map(Json)
}

/// A runbook's current definition.
#[utoipa::path(get, path = "/api/v1/runbooks/{id}", tag = "runbooks", params(("id" = i64, Path)),
    responses((status = 200, body = Runbook), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_runbook(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Runbook>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load_runbook(&mut conn, id).await?))
}

/// Save a new version of a runbook.
#[utoipa::path(put, path = "/api/v1/runbooks/{id}", tag = "runbooks", params(("id" = i64, Path)),
    request_body = RunbookWrite,
    responses((status = 200, body = Runbook), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update_runbook(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(w): Json<RunbookWrite>,
) -> ApiResult<Json<Runbook>> {
    let (def, yaml) = parse_write(w)?;
    let mut tx = state.pool.begin().await?;
    let version: Option<i32> = sqlx::query_scalar(
        "SELECT (SELECT max(version) FROM runbook_versions WHERE runbook_id = b.id) + 1
         FROM runbooks b WHERE b.id = $1 FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *tx)
    .await?;
    let version = version.ok_or_else(|| ApiError::NotFound(format!("runbook {id}")))?;
    let taken: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM runbooks WHERE name = $1 AND id <> $2)")
            .bind(&def.name)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
    if taken {
        return Err(ApiError::Conflict(format!(
            "another runbook is named \"{}\"",
            def.name
        )));
    }
    save_version(
        &ctx,
        &auth.principal,
        tx,
        id,
        version,
        &def,
        &yaml,
        "runbook.update",
    )
    .await
    .map(Json)
}

/// Delete a runbook that has never run (runs keep their history).
#[utoipa::path(delete, path = "/api/v1/runbooks/{id}", tag = "runbooks", params(("id" = i64, Path)),
    responses((status = 204), (status = 404), (status = 409, description = "it has runs")),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_runbook(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let name: Option<String> =
        sqlx::query_scalar("SELECT name FROM runbooks WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let name = name.ok_or_else(|| ApiError::NotFound(format!("runbook {id}")))?;
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM runs WHERE runbook_id = $1")
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    if runs > 0 {
        return Err(ApiError::Conflict(format!(
            "runbook \"{name}\" has {runs} run(s) whose history must stay; it cannot be deleted"
        )));
    }
    sqlx::query("DELETE FROM runbooks WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "runbook.delete",
        Some(format!("runbook:{name}")),
        json!({}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Every saved version, newest first.
#[utoipa::path(get, path = "/api/v1/runbooks/{id}/versions", tag = "runbooks", params(("id" = i64, Path)),
    responses((status = 200, body = Vec<RunbookVersion>), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn versions(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Vec<RunbookVersion>>> {
    let rows = sqlx::query(
        "SELECT version, created_at, created_by, definition, yaml FROM runbook_versions
         WHERE runbook_id = $1 ORDER BY version DESC",
    )
    .bind(id)
    .fetch_all(&state.pool)
    .await?;
    if rows.is_empty() {
        return Err(ApiError::NotFound(format!("runbook {id}")));
    }
    rows.iter()
        .map(|r| {
            Ok(RunbookVersion {
                version: r.get("version"),
                created_at: r.get("created_at"),
                created_by: r.get("created_by"),
                definition: serde_json::from_value(r.get("definition"))
                    .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored definition: {e}")))?,
                yaml: r.get("yaml"),
            })
        })
        .collect::<ApiResult<Vec<_>>>()
        .map(Json)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// A version (default: the current one).
    pub version: Option<i32>,
}

/// The definition as a YAML file.
#[utoipa::path(get, path = "/api/v1/runbooks/{id}/export", tag = "runbooks",
    params(("id" = i64, Path), ExportQuery),
    responses((status = 200, content_type = "application/yaml", body = serde_json::Value, description = "the definition as a YAML document"), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn export(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<ExportQuery>,
) -> ApiResult<Response> {
    let row: Option<(String, String)> = sqlx::query_as(
        "SELECT b.name, v.yaml FROM runbooks b JOIN runbook_versions v ON v.runbook_id = b.id
         WHERE b.id = $1 AND v.version = coalesce($2, b.current_version)",
    )
    .bind(id)
    .bind(q.version)
    .fetch_optional(&state.pool)
    .await?;
    let (name, yaml) = row.ok_or_else(|| ApiError::NotFound(format!("runbook {id}")))?;
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "application/yaml; charset=utf-8".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.yaml\""),
            ),
        ],
        yaml,
    )
        .into_response())
}

// ------------------------------------------------------------------ runs

/// Loads a run for the run page.
pub async fn load_run(state: &AppState, id: i64, me: Option<&Principal>) -> ApiResult<Run> {
    let mut conn = state.pool.acquire().await?;
    let r = sqlx::query(&format!(
        "{} WHERE r.id = $1",
        run_select(
            ", r.params, r.incident, r.parent_run_id, r.error, r.closed_by, r.cancel_requested, r.binding"
        )
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
    let summary = run_summary(&r)?;
    let steps = sqlx::query(
        "SELECT idx, name, title, kind, phase, status, started_at, finished_at, output,
                output_truncated, result, error, note
         FROM run_steps WHERE run_id = $1 ORDER BY idx",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|s| RunStep {
        idx: s.get("idx"),
        name: s.get("name"),
        title: s.get("title"),
        kind: s.get("kind"),
        phase: s.get("phase"),
        status: StepStatus::parse(s.get::<&str, _>("status")).unwrap_or(StepStatus::Pending),
        started_at: s.get("started_at"),
        finished_at: s.get("finished_at"),
        output: s.get("output"),
        output_truncated: s.get("output_truncated"),
        result: s.get("result"),
        error: s.get("error"),
        note: s.get("note"),
    })
    .collect();
    let approvals = super::approvals::for_run(&mut conn, id, me).await?;
    let timeline = timeline::list(&mut conn, "run", id).await?;
    Ok(Run {
        summary,
        params: serde_json::from_value(r.get("params")).unwrap_or_default(),
        incident: r.get("incident"),
        parent_run_id: r.get("parent_run_id"),
        error: r.get("error"),
        closed_by: r.get("closed_by"),
        cancel_requested: r.get("cancel_requested"),
        binding: hex::encode(r.get::<Vec<u8>, _>("binding")),
        steps,
        approvals,
        timeline,
    })
}

/// Start a run of the runbook's current version.
#[utoipa::path(post, path = "/api/v1/runbooks/{id}/runs", tag = "runs", params(("id" = i64, Path)),
    request_body = StartRun,
    responses((status = 201, body = Run), (status = 400, description = "invalid parameters"),
        (status = 404), (status = 409, description = "a run for this target is active")),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn start_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<StartRun>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let run = start(&state, &auth.principal, &ctx, id, req, None).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

async fn start(
    state: &AppState,
    p: &Principal,
    ctx: &RequestCtx,
    runbook_id: i64,
    req: StartRun,
    rerun_of: Option<i64>,
) -> ApiResult<Run> {
    let mut tx = state.pool.begin().await?;
    let params_for_audit = json!(req.params);
    let id = enqueue(
        state,
        &mut tx,
        NewRun {
            runbook_id,
            params: req.params,
            reason: req.reason,
            incident: req.incident,
            requested_by: Actor::of(p),
            requested_by_user: Some(p.user_id),
            schedule_id: None,
            parent: None,
        },
    )
    .await?;
    ctx.audit(
        &mut tx,
        p,
        "run.start",
        Some(format!("run:{id}")),
        json!({"runbook_id": runbook_id, "params": params_for_audit, "rerun_of": rerun_of}),
    )
    .await?;
    ctx.commit(tx).await?;
    state.runs.changed(id).await;
    load_run(state, id, Some(p)).await
}

/// What each step would do now, without doing it.
#[utoipa::path(post, path = "/api/v1/runbooks/{id}/dry-run", tag = "runs", params(("id" = i64, Path)),
    request_body = StartRun,
    responses((status = 200, body = DryRun), (status = 400), (status = 404)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn dry_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<StartRun>,
) -> ApiResult<Json<DryRun>> {
    let mut conn = state.pool.acquire().await?;
    let rb = load_runbook(&mut conn, id).await?;
    let world = engine::load_world(&state, &mut conn).await?;
    drop(conn);
    let d = &rb.definition;
    let params = def::check_params(d, &req.params, &world).map_err(ApiError::BadRequest)?;
    let empty = serde_json::Map::new();
    let scope = Scope {
        params: &params,
        steps: &empty,
        lenient: true,
    };
    let mut planned = Vec::with_capacity(d.steps.len());
    for s in &d.steps {
        let (description, needs) = match def::render_action(&s.action, &scope) {
            Ok(a) => {
                let by_kind = match steps::policy_kind(&state, &a).await {
                    Some(k) => engine::action_policy(&state.pool, &k).await?.is_some(),
                    None => false,
                };
                (
                    steps::describe(&state, &a).await,
                    s.approval.is_some() || by_kind || matches!(a, StepAction::Approval { .. }),
                )
            }
            Err(e) => (format!("cannot fill in: {e}"), s.approval.is_some()),
        };
        planned.push(PlannedStep {
            name: s.name.clone(),
            kind: s.action.kind().to_owned(),
            description,
            timeout_secs: def::step_timeout(s).as_secs(),
            on_failure: s.on_failure,
            needs_approval: needs,
        });
    }
    let mut tx = state.pool.begin().await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "runbook.dry_run",
        Some(format!("runbook:{}", rb.name)),
        json!({"params": params}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(DryRun {
        runbook: rb.name,
        version: rb.version,
        target: def::target(d, &params),
        needs_approval: d.approval.is_some(),
        steps: planned,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunFilter {
    pub runbook: Option<i64>,
    pub status: Option<String>,
    /// At most this many, newest first (default 100, at most 500).
    pub limit: Option<i64>,
}

/// Runs, newest first.
#[utoipa::path(get, path = "/api/v1/runs", tag = "runs", params(RunFilter),
    responses((status = 200, body = Vec<RunSummary>), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_runs(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(f): Query<RunFilter>,
) -> ApiResult<Json<Vec<RunSummary>>> {
    if let Some(s) = &f.status {
        if RunStatus::parse(s).is_none() {
            return Err(ApiError::BadRequest(
                "status: queued, running, waiting, succeeded, failed, cancelled or interrupted"
                    .into(),
            ));
        }
    }
    let limit = f.limit.unwrap_or(100).clamp(1, 500);
    let rows = sqlx::query(&format!(
        "{} WHERE ($1::bigint IS NULL OR r.runbook_id = $1) AND ($2::text IS NULL OR r.status = $2)
         ORDER BY r.id DESC LIMIT $3",
        run_select("")
    ))
    .bind(f.runbook)
    .bind(&f.status)
    .bind(limit)
    .fetch_all(&state.pool)
    .await?;
    rows.iter()
        .map(run_summary)
        .collect::<ApiResult<Vec<_>>>()
        .map(Json)
}

/// A run with its steps, approvals and timeline.
#[utoipa::path(get, path = "/api/v1/runs/{id}", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = Run), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_run(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Run>> {
    Ok(Json(load_run(&state, id, Some(&auth.principal)).await?))
}

/// Live run: a `run` event with the whole run whenever it changes; the
/// stream ends after the run has finished.
#[utoipa::path(get, path = "/api/v1/runs/{id}/events", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, content_type = "text/event-stream", description = "`run` events (Run JSON)"), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn run_events(
    auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Sse<impl futures::Stream<Item = Result<Event, Infallible>>>> {
    let first = load_run(&state, id, Some(&auth.principal)).await?;
    let mut changes = state.runs.subscribe();
    let closed = state.engines.closed();
    let principal = auth.principal.clone();
    let stream = async_stream(move |tx| async move {
        tokio::pin!(closed);
        let mut last = serde_json::to_string(&first).unwrap_or_default();
        let mut active = first.summary.status.is_active();
        if tx
            .send(Event::default().event("run").data(last.clone()))
            .await
            .is_err()
        {
            return;
        }
        while active {
            tokio::select! {
                _ = &mut closed => return,
                c = changes.recv() => match c {
                    Ok(changed) if changed != id => continue,
                    _ => {}
                },
                // Other processes' writes arrive by NOTIFY; this is the
                // backstop if a notification was missed.
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
            let Ok(run) = load_run(&state, id, Some(&principal)).await else {
                continue;
            };
            active = run.summary.status.is_active();
            let json = serde_json::to_string(&run).unwrap_or_default();
            if json != last {
                last = json;
                if tx
                    .send(Event::default().event("run").data(last.clone()))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream fed by a task through a bounded channel.
pub(crate) fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(f(tx));
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}

async fn run_row(conn: &mut PgConnection, id: i64) -> ApiResult<(RunStatus, Option<String>)> {
    let row: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT status, closed_by FROM runs WHERE id = $1 FOR UPDATE")
            .bind(id)
            .fetch_optional(conn)
            .await?;
    let (s, closed) = row.ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
    Ok((
        RunStatus::parse(&s).ok_or_else(|| ApiError::Internal(anyhow::anyhow!("status {s}")))?,
        closed,
    ))
}

/// `": note"`, or nothing for an empty note.
fn with_note(note: &str) -> String {
    if note.is_empty() {
        String::new()
    } else {
        format!(": {note}")
    }
}

/// Ends an operator's act on a run: its timeline event and audit entry on
/// `tx`, commit, the live update; answers with the run.
#[allow(clippy::too_many_arguments)]
async fn record_act(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    id: i64,
    step: Option<i32>,
    (event, message): (&str, String),
    (action, params): (&str, Value),
) -> ApiResult<Json<Run>> {
    timeline::append(
        &mut tx,
        "run",
        id,
        event,
        Some(&Actor::of(p)),
        step,
        &message,
        json!({}),
    )
    .await?;
    ctx.audit(&mut tx, p, action, Some(format!("run:{id}")), params)
        .await?;
    ctx.commit(tx).await?;
    state.runs.changed(id).await;
    Ok(Json(load_run(state, id, Some(p)).await?))
}

/// Cancel a run: a queued or waiting run ends at once; a running one stops
/// at its current step.
#[utoipa::path(post, path = "/api/v1/runs/{id}/cancel", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = Run), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn cancel_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Run>> {
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    let (status, _) = run_row(&mut tx, id).await?;
    let mut withdrawn = false;
    let event = match status {
        RunStatus::Queued | RunStatus::Waiting => {
            withdrawn =
                super::engine::withdraw(&mut tx, id, &format!("cancelled by {}", p.username))
                    .await?;
            ("run.cancelled", format!("Cancelled by {}", p.username))
        }
        RunStatus::Running => {
            sqlx::query("UPDATE runs SET cancel_requested = true WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            (
                "run.cancel_requested",
                format!(
                    "Cancel requested by {}; the current step is stopped",
                    p.username
                ),
            )
        }
        other => {
            return Err(ApiError::Conflict(format!(
                "run {id} is {}; only queued, waiting or running runs can be cancelled",
                other.as_str()
            )))
        }
    };
    // A run held by this process stops at once; elsewhere at its next
    // heartbeat.
    state.runs.cancel_local(id);
    let answer = record_act(
        &state,
        &ctx,
        p,
        tx,
        id,
        None,
        event,
        ("run.cancel", json!({"was": status.as_str()})),
    )
    .await?;
    if withdrawn {
        state
            .metrics
            .runs_finished_by_id(&state.pool, &[id], "cancelled")
            .await;
    }
    Ok(answer)
}

/// Resume a failed or interrupted run from the first main step that did not
/// succeed.
#[utoipa::path(post, path = "/api/v1/runs/{id}/resume", tag = "runs", params(("id" = i64, Path)),
    responses((status = 200, body = Run), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn resume_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Run>> {
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    let (status, closed) = run_row(&mut tx, id).await?;
    if !matches!(status, RunStatus::Failed | RunStatus::Interrupted) || closed.is_some() {
        return Err(ApiError::Conflict(format!(
            "run {id} is {}{}; only failed or interrupted runs that were not closed can be resumed",
            status.as_str(),
            if closed.is_some() { " and closed" } else { "" }
        )));
    }
    let from: Option<i32> = sqlx::query_scalar(
        "SELECT min(idx) FROM run_steps WHERE run_id = $1 AND phase = 'main'
           AND status NOT IN ('succeeded', 'skipped')",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    let Some(from) = from else {
        return Err(ApiError::Conflict(format!(
            "every step of run {id} finished; re-run it instead"
        )));
    };
    // Steps after `from` that were skipped because the run ended run again.
    sqlx::query(
        "UPDATE run_steps SET status = 'pending', started_at = NULL, finished_at = NULL, error = NULL
         WHERE run_id = $1 AND phase = 'main' AND idx >= $2 AND status <> 'succeeded'",
    )
    .bind(id)
    .bind(from)
    .execute(&mut *tx)
    .await?;
    let updated = sqlx::query(
        "UPDATE runs SET status = 'queued', next_step = $2, error = NULL, finished_at = NULL,
                cancel_requested = false
         WHERE id = $1",
    )
    .bind(id)
    .bind(from)
    .execute(&mut *tx)
    .await;
    if let Err(e) = updated {
        if let Some(db) = e.as_database_error() {
            if db.constraint() == Some("runs_one_active_per_target") {
                return Err(ApiError::Conflict(
                    "another run of this runbook for the same target is active; wait for it".into(),
                ));
            }
        }
        return Err(e.into());
    }
    record_act(
        &state,
        &ctx,
        p,
        tx,
        id,
        Some(from),
        (
            "run.resumed",
            format!("Resumed by {} from step {}", p.username, from + 1),
        ),
        ("run.resume", json!({"from_step": from})),
    )
    .await
}

/// Start the same runbook again with the same parameters (current version).
#[utoipa::path(post, path = "/api/v1/runs/{id}/rerun", tag = "runs", params(("id" = i64, Path)),
    responses((status = 201, body = Run), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn rerun(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<Run>)> {
    let row: Option<(i64, Value, String, Option<String>)> =
        sqlx::query_as("SELECT runbook_id, params, reason, incident FROM runs WHERE id = $1")
            .bind(id)
            .fetch_optional(&state.pool)
            .await?;
    let (runbook, params, reason, incident) =
        row.ok_or_else(|| ApiError::NotFound(format!("run {id}")))?;
    let req = StartRun {
        params: serde_json::from_value(params).unwrap_or_default(),
        reason: if reason.is_empty() {
            format!("re-run of #{id}")
        } else {
            format!("re-run of #{id}: {reason}")
        },
        incident,
    };
    let run = start(&state, &auth.principal, &ctx, runbook, req, Some(id)).await?;
    Ok((StatusCode::CREATED, Json(run)))
}

/// Close an interrupted run without resuming it.
#[utoipa::path(post, path = "/api/v1/runs/{id}/close", tag = "runs", params(("id" = i64, Path)),
    request_body = CloseRun,
    responses((status = 200, body = Run), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn close_run(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<CloseRun>,
) -> ApiResult<Json<Run>> {
    let p = &auth.principal;
    if req.note.len() > 2000 {
        return Err(ApiError::BadRequest("note: at most 2000 characters".into()));
    }
    let mut tx = state.pool.begin().await?;
    let (status, closed) = run_row(&mut tx, id).await?;
    if status != RunStatus::Interrupted || closed.is_some() {
        return Err(ApiError::Conflict(format!(
            "run {id} is {}{}; only an open interrupted run can be closed",
            status.as_str(),
            if closed.is_some() {
                " and already closed"
            } else {
                ""
            }
        )));
    }
    sqlx::query("UPDATE runs SET closed_by = $2 WHERE id = $1")
        .bind(id)
        .bind(&p.username)
        .execute(&mut *tx)
        .await?;
    let note = req.note.trim();
    record_act(
        &state,
        &ctx,
        p,
        tx,
        id,
        None,
        (
            "run.closed",
            format!(
                "Closed by {} without resuming{}",
                p.username,
                with_note(note)
            ),
        ),
        ("run.close", json!({"note": note})),
    )
    .await
}

/// Tick off a manual step the run is waiting on.
#[utoipa::path(post, path = "/api/v1/runs/{id}/steps/{idx}/complete", tag = "runs",
    params(("id" = i64, Path), ("idx" = i32, Path)), request_body = CompleteStep,
    responses((status = 200, body = Run), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn complete_step(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path((id, idx)): Path<(i64, i32)>,
    Json(req): Json<CompleteStep>,
) -> ApiResult<Json<Run>> {
    let p = &auth.principal;
    let note = req.note.trim().to_owned();
    if note.len() > 4000 {
        return Err(ApiError::BadRequest("note: at most 4000 characters".into()));
    }
    let mut tx = state.pool.begin().await?;
    let (status, _) = run_row(&mut tx, id).await?;
    let step: Option<(String, String, String)> = sqlx::query_as(
        "SELECT kind, status, name FROM run_steps WHERE run_id = $1 AND idx = $2 FOR UPDATE",
    )
    .bind(id)
    .bind(idx)
    .fetch_optional(&mut *tx)
    .await?;
    let (kind, step_status, name) =
        step.ok_or_else(|| ApiError::NotFound(format!("step {idx} of run {id}")))?;
    if kind != "manual" || step_status != "waiting" || status != RunStatus::Waiting {
        return Err(ApiError::Conflict(format!(
            "step {} ({name}) is not a manual step waiting to be ticked off",
            idx + 1
        )));
    }
    sqlx::query(
        "UPDATE run_steps SET status = 'succeeded', finished_at = now(), note = $3,
                result = $4, output = $5
         WHERE run_id = $1 AND idx = $2",
    )
    .bind(id)
    .bind(idx)
    .bind(if note.is_empty() { None } else { Some(&note) })
    .bind(json!({"by": p.username, "note": note}))
    .bind(format!(
        "ticked off by {}{}\n",
        p.username,
        with_note(&note)
    ))
    .execute(&mut *tx)
    .await?;
    sqlx::query("UPDATE runs SET status = 'queued' WHERE id = $1")
        .bind(id)
        .execute(&mut *tx)
        .await?;
    record_act(
        &state,
        &ctx,
        p,
        tx,
        id,
        Some(idx),
        (
            "step.ticked",
            format!(
                "Step {} ({name}) ticked off by {}{}",
                idx + 1,
                p.username,
                with_note(&note)
            ),
        ),
        ("run.step.complete", json!({"step": idx, "note": note})),
    )
    .await
}
