//! `/api/v1/backup-targets`, `/api/v1/backup-plans`, `/api/v1/backups`.
//!
//! Viewers browse the catalog; operators run plans, verify and download
//! backups; admins manage targets and plans and delete backups.

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opsdeck_wire::{
    BackupAttention, BackupDetail, BackupPlan, BackupRunStarted, BackupSummary, BackupTarget,
    PlanWrite, PrunePreview, TargetWrite,
};
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::catalog;
use crate::audit::Actor;
use crate::auth::{Admin, Auth, Operator, Principal, RequestCtx, Viewer};
use crate::error::{ApiResult, Json, Path, Query};
use crate::runbooks::engine::{enqueue, NewRun};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_targets, create_target))
        .routes(routes!(update_target, delete_target))
        .routes(routes!(list_plans, create_plan))
        .routes(routes!(update_plan, delete_plan))
        .routes(routes!(run_plan))
        .routes(routes!(list_backups))
        .routes(routes!(get_backup, delete_backup))
        .routes(routes!(verify_backup))
        .routes(routes!(restore_backup))
        .routes(routes!(download))
        .routes(routes!(prune_preview))
        .routes(routes!(attention))
}

// ---------------------------------------------------------------- targets

/// Storage targets (never their secrets: only whether one is stored).
#[utoipa::path(get, path = "/api/v1/backup-targets", tag = "backups",
    responses((status = 200, body = Vec<BackupTarget>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_targets(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<BackupTarget>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(catalog::targets(&mut conn).await?))
}

async fn write_target(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: Option<i64>,
    t: TargetWrite,
) -> ApiResult<BackupTarget> {
    let prepared = {
        let mut conn = state.pool.acquire().await?;
        catalog::prepare_target(&mut conn, id, t).await?
    };
    let action = if id.is_none() {
        "backup.target.create"
    } else {
        "backup.target.update"
    };
    let mut tx = state.pool.begin().await?;
    let id = catalog::store_target(&mut tx, id, &prepared).await?;
    ctx.audit(
        &mut tx,
        p,
        action,
        Some(format!("backup_target:{id}")),
        prepared.audited,
    )
    .await?;
    let out = catalog::target(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(out)
}

/// Add a storage target (admins).
#[utoipa::path(post, path = "/api/v1/backup-targets", tag = "backups", request_body = TargetWrite,
    responses((status = 201, body = BackupTarget), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create_target(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(t): Json<TargetWrite>,
) -> ApiResult<(StatusCode, Json<BackupTarget>)> {
    let out = write_target(&state, &ctx, &auth.principal, None, t).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Change a storage target (admins).
#[utoipa::path(put, path = "/api/v1/backup-targets/{id}", tag = "backups",
    params(("id" = i64, Path)), request_body = TargetWrite,
    responses((status = 200, body = BackupTarget), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update_target(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(t): Json<TargetWrite>,
) -> ApiResult<Json<BackupTarget>> {
    Ok(Json(
        write_target(&state, &ctx, &auth.principal, Some(id), t).await?,
    ))
}

/// Remove a storage target (admins); refused while plans or backups use it.
#[utoipa::path(delete, path = "/api/v1/backup-targets/{id}", tag = "backups",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_target(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let name = catalog::delete_target(&mut tx, id).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "backup.target.delete",
        Some(format!("backup_target:{id}")),
        json!({ "name": name }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

// ---------------------------------------------------------------- plans

/// Backup plans, each with its newest backup.
#[utoipa::path(get, path = "/api/v1/backup-plans", tag = "backups",
    responses((status = 200, body = Vec<BackupPlan>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_plans(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<BackupPlan>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(catalog::plans(&mut conn, None).await?))
}

async fn write_plan(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: Option<i64>,
    w: PlanWrite,
) -> ApiResult<BackupPlan> {
    let action = if id.is_none() {
        "backup.plan.create"
    } else {
        "backup.plan.update"
    };
    let mut tx = state.pool.begin().await?;
    let (plan, audited) = catalog::write_plan(&mut tx, id, w, &p.username).await?;
    ctx.audit(
        &mut tx,
        p,
        action,
        Some(format!("backup_plan:{}", plan.id)),
        audited,
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(plan)
}

/// Add a backup plan (admins).
#[utoipa::path(post, path = "/api/v1/backup-plans", tag = "backups", request_body = PlanWrite,
    responses((status = 201, body = BackupPlan), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create_plan(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(w): Json<PlanWrite>,
) -> ApiResult<(StatusCode, Json<BackupPlan>)> {
    let out = write_plan(&state, &ctx, &auth.principal, None, w).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Change a backup plan (admins).
#[utoipa::path(put, path = "/api/v1/backup-plans/{id}", tag = "backups",
    params(("id" = i64, Path)), request_body = PlanWrite,
    responses((status = 200, body = BackupPlan), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update_plan(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(w): Json<PlanWrite>,
) -> ApiResult<Json<BackupPlan>> {
    Ok(Json(
        write_plan(&state, &ctx, &auth.principal, Some(id), w).await?,
    ))
}

/// Remove a backup plan (admins); its backups stay in the catalog.
#[utoipa::path(delete, path = "/api/v1/backup-plans/{id}", tag = "backups",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_plan(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let name = catalog::delete_plan(&mut tx, id).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "backup.plan.delete",
        Some(format!("backup_plan:{id}")),
        json!({ "name": name }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Queues a run of a built-in backup runbook with one parameter.
async fn start_builtin(
    state: &AppState,
    tx: &mut sqlx::PgConnection,
    runbook: &str,
    param: (&str, Value),
    p: &Principal,
    reason: String,
) -> ApiResult<i64> {
    let runbook_id = catalog::builtin(tx, runbook).await?;
    let params: BTreeMap<String, Value> = [(param.0.to_owned(), param.1)].into();
    enqueue(
        state,
        tx,
        NewRun {
            runbook_id,
            params,
            reason,
            incident: None,
            requested_by: Actor::of(p),
            requested_by_user: Some(p.user_id),
            schedule_id: None,
            parent: None,
        },
    )
    .await
    .map_err(Into::into)
}

/// Run a plan now: a `backup-run` run (follow it on the run page).
#[utoipa::path(post, path = "/api/v1/backup-plans/{id}/run", tag = "backups",
    params(("id" = i64, Path)),
    responses((status = 202, body = BackupRunStarted), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn run_plan(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<BackupRunStarted>)> {
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    let name = catalog::runnable_plan(&mut tx, id).await?;
    let run = start_builtin(
        &state,
        &mut tx,
        "backup-run",
        ("plan", json!(name)),
        p,
        format!("backup of {name}"),
    )
    .await?;
    ctx.audit(
        &mut tx,
        p,
        "backup.run",
        Some(format!("backup_plan:{id}")),
        json!({ "plan": name, "run": run }),
    )
    .await?;
    ctx.commit(tx).await?;
    state.runs().changed(run).await;
    Ok((StatusCode::ACCEPTED, Json(BackupRunStarted { run_id: run })))
}

// ---------------------------------------------------------------- catalog

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListParams {
    /// A plan's name.
    pub plan: Option<String>,
    /// running, succeeded, failed or interrupted.
    pub status: Option<String>,
}

/// The catalog, newest first (at most 200; deleted backups left out).
#[utoipa::path(get, path = "/api/v1/backups", tag = "backups", params(ListParams),
    responses((status = 200, body = Vec<BackupSummary>), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_backups(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<ListParams>,
) -> ApiResult<Json<Vec<BackupSummary>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(
        catalog::list(&mut conn, q.plan.as_deref(), q.status.as_deref()).await?,
    ))
}

/// One backup with its artifacts.
#[utoipa::path(get, path = "/api/v1/backups/{id}", tag = "backups", params(("id" = i64, Path)),
    responses((status = 200, body = BackupDetail), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_backup(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<BackupDetail>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(catalog::detail(&mut conn, id).await?))
}

/// Verify a backup again: a `backup-verify` run.
#[utoipa::path(post, path = "/api/v1/backups/{id}/verify", tag = "backups",
    params(("id" = i64, Path)),
    responses((status = 202, body = BackupRunStarted), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn verify_backup(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<(StatusCode, Json<BackupRunStarted>)> {
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    catalog::verifiable(&mut tx, id).await?;
    let run = start_builtin(
        &state,
        &mut tx,
        "backup-verify",
        ("backup", json!(id)),
        p,
        format!("verify backup #{id}"),
    )
    .await?;
    ctx.audit(
        &mut tx,
        p,
        "backup.verify",
        Some(format!("backup:{id}")),
        json!({ "run": run }),
    )
    .await?;
    ctx.commit(tx).await?;
    state.runs().changed(run).await;
    Ok((StatusCode::ACCEPTED, Json(BackupRunStarted { run_id: run })))
}

/// Restore one artifact of a backup: a `backup-restore` run that waits for
/// a second person's approval, then checks the object's checksum, takes a
/// safety backup of the original, optionally stops the dependent services,
/// restores and starts them again (see `backups::restore`).
#[utoipa::path(post, path = "/api/v1/backups/{id}/restore", tag = "backups",
    params(("id" = i64, Path)), request_body = opsdeck_wire::RestoreRequest,
    responses((status = 202, body = BackupRunStarted, description = "the run, waiting for its approval"),
        (status = 400), (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn restore_backup(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<opsdeck_wire::RestoreRequest>,
) -> ApiResult<(StatusCode, Json<BackupRunStarted>)> {
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    let (new, source) = super::restore::request(&mut tx, id, &req, p).await?;
    let run = enqueue(&state, &mut tx, new).await?;
    ctx.audit(
        &mut tx,
        p,
        "backup.restore",
        Some(format!("backup:{id}")),
        json!({ "run": run, "artifact": req.artifact, "source": source, "into": req.into,
                "stop_dependents": req.stop_dependents }),
    )
    .await?;
    ctx.commit(tx).await?;
    state.runs().changed(run).await;
    Ok((StatusCode::ACCEPTED, Json(BackupRunStarted { run_id: run })))
}

/// Download one stored object (zstd-compressed, as stored).
#[utoipa::path(get, path = "/api/v1/backups/{id}/artifacts/{idx}", tag = "backups",
    params(("id" = i64, Path), ("idx" = i32, Path)),
    responses((status = 200, content_type = "application/zstd", description = "the stored object"),
        (status = 404), (status = 409)),
    security(("session" = ["operator"]), ("token" = ["operator"])))]
async fn download(
    auth: Auth<Operator>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path((id, idx)): Path<(i64, i32)>,
) -> ApiResult<Response> {
    let d = {
        let mut conn = state.pool.acquire().await?;
        catalog::download(&state, &mut conn, id, idx).await?
    };
    let mut tx = state.pool.begin().await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "backup.download",
        Some(format!("backup:{id}")),
        json!({ "artifact": idx }),
    )
    .await?;
    ctx.commit(tx).await?;
    let (file, name, bytes) = (d.file, d.name, d.bytes);
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        256 * 1024,
    ));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zstd".to_owned()),
            (header::CONTENT_LENGTH, bytes.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        body,
    )
        .into_response())
}

/// Delete a backup (admins): its objects are removed and the entry is
/// marked deleted (204). When an approval policy is set on the action kind
/// `backup.delete`, the deletion is a run of the built-in `backup-delete`
/// instead (202 with the run), which waits for the vote.
#[utoipa::path(delete, path = "/api/v1/backups/{id}", tag = "backups", params(("id" = i64, Path)),
    responses((status = 204), (status = 202, body = BackupRunStarted), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_backup(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Response> {
    let p = &auth.principal;
    let mut tx = state.pool.begin().await?;
    let gated = catalog::delete_gated(&mut tx, id).await?;
    if gated {
        let run = start_builtin(
            &state,
            &mut tx,
            "backup-delete",
            ("backup", json!(id)),
            p,
            format!("delete backup #{id}"),
        )
        .await?;
        ctx.audit(
            &mut tx,
            p,
            "backup.delete.request",
            Some(format!("backup:{id}")),
            json!({ "run": run }),
        )
        .await?;
        ctx.commit(tx).await?;
        state.runs().changed(run).await;
        return Ok((StatusCode::ACCEPTED, Json(BackupRunStarted { run_id: run })).into_response());
    }
    // Objects first: if removing one fails, the entry stays (and says so).
    let objects = catalog::delete_now(&state, &mut tx, id, &p.username).await?;
    ctx.audit(
        &mut tx,
        p,
        "backup.delete",
        Some(format!("backup:{id}")),
        json!({ "objects": objects }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

// ---------------------------------------------------------------- dashboard

/// What the next prune of a plan would delete, and what it keeps (and
/// why).
#[utoipa::path(get, path = "/api/v1/backup-plans/{id}/prune", tag = "backups",
    params(("id" = i64, Path)),
    responses((status = 200, body = opsdeck_wire::PrunePreview), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn prune_preview(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<PrunePreview>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(super::retention::preview(&mut conn, id).await?))
}

/// Backups that need attention: failed or interrupted, failed
/// verification, failed drills (newest per plan).
#[utoipa::path(get, path = "/api/v1/backups/attention", tag = "backups",
    responses((status = 200, body = Vec<BackupAttention>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn attention(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<BackupAttention>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(super::attention::attention(&mut conn).await?))
}
