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
    BackupDetail, BackupPlan, BackupRunStarted, BackupSummary, BackupTarget, DrillOutcome,
    PlanWrite, Retention, TargetWrite,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::Row;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::model;
use crate::audit::Actor;
use crate::auth::{Admin, Auth, Operator, Principal, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
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
        .routes(routes!(super::retention::prune_preview))
        .routes(routes!(super::attention::attention))
}

// ---------------------------------------------------------------- targets

/// Never the secret: only whether one is stored.
const TARGETS: &str = "SELECT id, name, kind, config, secret IS NOT NULL AS secret_set, created_at
     FROM backup_targets";

/// Storage targets.
#[utoipa::path(get, path = "/api/v1/backup-targets", tag = "backups",
    responses((status = 200, body = Vec<BackupTarget>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_targets(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<BackupTarget>>> {
    let rows = sqlx::query(&format!("{TARGETS} ORDER BY name"))
        .fetch_all(&state.pool)
        .await?;
    Ok(Json(rows.iter().map(model::target_of).collect()))
}

async fn write_target(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: Option<i64>,
    mut t: TargetWrite,
) -> ApiResult<BackupTarget> {
    // On update, the stored secret is kept unless a new one is given.
    let stored: Option<String> = match id {
        None => None,
        Some(id) => sqlx::query_scalar::<_, Option<String>>(
            "SELECT secret FROM backup_targets WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&state.pool)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("backup target {id}")))?,
    };
    let given = t
        .secret_access_key
        .as_deref()
        .is_some_and(|s| !s.is_empty());
    let checked = model::check_target(&mut t, stored)
        .await
        .map_err(ApiError::BadRequest)?;
    let config = checked.config;
    // Audit: where, never the secret (nor the access key id).
    let audited = match checked.kind {
        "s3" => {
            let s3 = t.s3.clone().unwrap_or_else(|| unreachable!("checked"));
            json!({ "name": t.name, "kind": "s3", "endpoint": s3.endpoint, "bucket": s3.bucket,
                    "prefix": s3.prefix, "region": s3.region, "allow_http": s3.allow_http,
                    "credentials": if given { "set" } else { "kept" } })
        }
        _ => json!({ "name": t.name, "path": t.path }),
    };
    let action = if id.is_none() {
        "backup.target.create"
    } else {
        "backup.target.update"
    };
    let mut tx = state.pool.begin().await?;
    let id: Option<i64> = match id {
        None => sqlx::query_scalar(
            "INSERT INTO backup_targets (name, kind, config, secret) VALUES ($1, $2, $3, $4)
             RETURNING id",
        )
        .bind(&t.name)
        .bind(checked.kind)
        .bind(&config)
        .bind(&checked.secret)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| duplicate(e, &t.name))?,
        Some(id) => sqlx::query_scalar(
            "UPDATE backup_targets SET name = $2, kind = $3, config = $4, secret = $5,
                    updated_at = now()
             WHERE id = $1 RETURNING id",
        )
        .bind(id)
        .bind(&t.name)
        .bind(checked.kind)
        .bind(&config)
        .bind(&checked.secret)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| duplicate(e, &t.name))?,
    };
    let id = id.ok_or_else(|| ApiError::NotFound("backup target".into()))?;
    ctx.audit(
        &mut tx,
        p,
        action,
        Some(format!("backup_target:{id}")),
        audited,
    )
    .await?;
    let r = sqlx::query(&format!("{TARGETS} WHERE id = $1"))
        .bind(id)
        .fetch_one(&mut *tx)
        .await?;
    ctx.commit(tx).await?;
    Ok(model::target_of(&r))
}

fn duplicate(e: sqlx::Error, name: &str) -> ApiError {
    if let sqlx::Error::Database(d) = &e {
        if d.is_unique_violation() {
            return ApiError::Conflict(format!("the name \"{name}\" is taken"));
        }
    }
    e.into()
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
    let used: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM backup_plans WHERE target_id = $1)
             OR EXISTS (SELECT 1 FROM backups WHERE target_id = $1 AND deleted_at IS NULL)",
    )
    .bind(id)
    .fetch_one(&mut *tx)
    .await?;
    if used {
        return Err(ApiError::Conflict(format!(
            "backup target {id} holds backups or is used by a plan"
        )));
    }
    let name: Option<String> =
        sqlx::query_scalar("DELETE FROM backup_targets WHERE id = $1 RETURNING name")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let name = name.ok_or_else(|| ApiError::NotFound(format!("backup target {id}")))?;
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

async fn load_plans(conn: &mut sqlx::PgConnection, id: Option<i64>) -> ApiResult<Vec<BackupPlan>> {
    let rows = sqlx::query(
        "SELECT p.id, p.name, p.sources, t.name AS target, p.zstd_level, p.verify, p.enabled,
                p.created_by, p.updated_at, p.keep_last, p.keep_daily, p.keep_weekly,
                p.keep_monthly, p.max_age_days, p.timezone, p.drilled_at, p.drill_backup_id,
                p.drill_error,
                (SELECT b.id FROM backups b WHERE b.plan_id = p.id AND b.deleted_at IS NULL
                  ORDER BY b.id DESC LIMIT 1) AS last_id
         FROM backup_plans p JOIN backup_targets t ON t.id = p.target_id
         WHERE $1::bigint IS NULL OR p.id = $1 ORDER BY p.name",
    )
    .bind(id)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let last = match r.get::<Option<i64>, _>("last_id") {
            Some(b) => sqlx::query(&format!("{} WHERE b.id = $1", model::SUMMARY))
                .bind(b)
                .fetch_optional(&mut *conn)
                .await?
                .map(|r| model::summary_of(&r)),
            None => None,
        };
        let id: i64 = r.get("id");
        let schedules = super::timing::schedules_of(&mut *conn, id).await?;
        let timezone: String = r.get("timezone");
        let enabled: bool = r.get("enabled");
        let next = super::timing::next_runs(&schedules, &timezone, enabled);
        out.push(BackupPlan {
            id,
            def: PlanWrite {
                name: r.get("name"),
                sources: serde_json::from_value(r.get("sources")).unwrap_or_default(),
                target: r.get("target"),
                zstd_level: r.get("zstd_level"),
                verify: r.get("verify"),
                enabled,
                retention: Retention {
                    keep_last: r.get("keep_last"),
                    keep_daily: r.get("keep_daily"),
                    keep_weekly: r.get("keep_weekly"),
                    keep_monthly: r.get("keep_monthly"),
                    max_age_days: r.get("max_age_days"),
                },
                schedules,
                timezone,
            },
            created_by: r.get("created_by"),
            updated_at: r.get("updated_at"),
            last,
            drill: r
                .get::<Option<chrono::DateTime<chrono::Utc>>, _>("drilled_at")
                .map(|at| DrillOutcome {
                    at,
                    backup_id: r.get("drill_backup_id"),
                    error: r.get("drill_error"),
                    ok: r.get::<Option<String>, _>("drill_error").is_none(),
                }),
            next,
        });
    }
    Ok(out)
}

/// Backup plans, each with its newest backup.
#[utoipa::path(get, path = "/api/v1/backup-plans", tag = "backups",
    responses((status = 200, body = Vec<BackupPlan>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_plans(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<BackupPlan>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load_plans(&mut conn, None).await?))
}

async fn write_plan(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: Option<i64>,
    mut w: PlanWrite,
) -> ApiResult<BackupPlan> {
    let action = if id.is_none() {
        "backup.plan.create"
    } else {
        "backup.plan.update"
    };
    super::timing::check(&mut w)?;
    let mut tx = state.pool.begin().await?;
    let target_id = model::check_plan(&mut tx, &mut w).await?;
    let sources = serde_json::to_value(&w.sources).map_err(anyhow::Error::from)?;
    let id: Option<i64> = match id {
        None => sqlx::query_scalar(
            "INSERT INTO backup_plans (name, sources, target_id, zstd_level, verify, enabled, created_by)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&w.name)
        .bind(&sources)
        .bind(target_id)
        .bind(w.zstd_level)
        .bind(w.verify)
        .bind(w.enabled)
        .bind(&p.username)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| duplicate(e, &w.name))?,
        Some(id) => sqlx::query_scalar(
            "UPDATE backup_plans SET name = $2, sources = $3, target_id = $4, zstd_level = $5,
                    verify = $6, enabled = $7, updated_at = now()
             WHERE id = $1 RETURNING id",
        )
        .bind(id)
        .bind(&w.name)
        .bind(&sources)
        .bind(target_id)
        .bind(w.zstd_level)
        .bind(w.verify)
        .bind(w.enabled)
        .fetch_optional(&mut *tx)
        .await
        .map_err(|e| duplicate(e, &w.name))?,
    };
    let id = id.ok_or_else(|| ApiError::NotFound("backup plan".into()))?;
    let r = &w.retention;
    sqlx::query(
        "UPDATE backup_plans SET keep_last = $2, keep_daily = $3, keep_weekly = $4,
                keep_monthly = $5, max_age_days = $6, timezone = $7
         WHERE id = $1",
    )
    .bind(id)
    .bind(r.keep_last)
    .bind(r.keep_daily)
    .bind(r.keep_weekly)
    .bind(r.keep_monthly)
    .bind(r.max_age_days)
    .bind(&w.timezone)
    .execute(&mut *tx)
    .await?;
    super::timing::reconcile(&mut tx, id, &w, &p.username).await?;
    ctx.audit(
        &mut tx,
        p,
        action,
        Some(format!("backup_plan:{id}")),
        json!({ "name": w.name, "sources": sources, "target": w.target,
                "zstd_level": w.zstd_level, "verify": w.verify, "enabled": w.enabled,
                "retention": w.retention, "schedules": w.schedules, "timezone": w.timezone }),
    )
    .await?;
    let plan = load_plans(&mut tx, Some(id))
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("plan not stored")))?;
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
    let name: Option<String> =
        sqlx::query_scalar("DELETE FROM backup_plans WHERE id = $1 RETURNING name")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let name = name.ok_or_else(|| ApiError::NotFound(format!("backup plan {id}")))?;
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
    let runbook_id: i64 = sqlx::query_scalar("SELECT id FROM runbooks WHERE name = $1")
        .bind(runbook)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "the built-in runbook {runbook} is missing (it is seeded at start-up when absent)"
            ))
        })?;
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
    let row: Option<(String, bool)> =
        sqlx::query_as("SELECT name, enabled FROM backup_plans WHERE id = $1")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let (name, enabled) = row.ok_or_else(|| ApiError::NotFound(format!("backup plan {id}")))?;
    if !enabled {
        return Err(ApiError::Conflict(format!(
            "backup plan {name} is disabled; enable it first"
        )));
    }
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
    state.runs.changed(run).await;
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
    if let Some(s) = q.status.as_deref() {
        if opsdeck_wire::BackupStatus::parse(s).is_none() {
            return Err(ApiError::BadRequest(format!(
                "status \"{}\": running, succeeded, failed or interrupted",
                s.escape_default()
            )));
        }
    }
    let rows = sqlx::query(&format!(
        "{} WHERE b.deleted_at IS NULL AND ($1::text IS NULL OR b.plan_name = $1)
           AND ($2::text IS NULL OR b.status = $2)
         ORDER BY b.id DESC LIMIT 200",
        model::SUMMARY
    ))
    .bind(&q.plan)
    .bind(&q.status)
    .fetch_all(&state.pool)
    .await?;
    Ok(Json(rows.iter().map(model::summary_of).collect()))
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
    let r = sqlx::query(&format!(
        "{} WHERE b.id = $1 AND b.deleted_at IS NULL",
        model::SUMMARY
    ))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("backup {id}")))?;
    Ok(Json(BackupDetail {
        summary: model::summary_of(&r),
        verified_at: r.get("verified_at"),
        artifacts: model::artifacts(&mut conn, id).await?,
    }))
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
    let status: Option<String> =
        sqlx::query_scalar("SELECT status FROM backups WHERE id = $1 AND deleted_at IS NULL")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    let status = status.ok_or_else(|| ApiError::NotFound(format!("backup {id}")))?;
    if status != "succeeded" {
        return Err(ApiError::Conflict(format!(
            "backup {id} is {status}; only succeeded backups can be verified"
        )));
    }
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
    state.runs.changed(run).await;
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
    let (run, source) = super::restore::request(&state, &mut tx, id, &req, p).await?;
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
    state.runs.changed(run).await;
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
    let r = sqlx::query(
        "SELECT a.object_key, a.kind, a.status AS astatus, a.bytes, b.status, b.plan_name, t.id AS target_id
         FROM backup_artifacts a JOIN backups b ON b.id = a.backup_id
         JOIN backup_targets t ON t.id = b.target_id
         WHERE a.backup_id = $1 AND a.idx = $2 AND b.deleted_at IS NULL",
    )
    .bind(id)
    .bind(idx)
    .fetch_optional(&state.pool)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("artifact {idx} of backup {id}")))?;
    let status: String = r.get("status");
    let astatus: String = r.get("astatus");
    if status != "succeeded" || astatus != "stored" {
        return Err(ApiError::Conflict(format!(
            "backup {id} is {status}; only stored artifacts of succeeded backups can be downloaded"
        )));
    }
    let store = super::run::store_of(&state, r.get("target_id"))
        .await
        .map_err(|e| ApiError::Unavailable(format!("backup target: {e}")))?;
    let key: String = r.get("object_key");
    let file = store
        .read(&key)
        .await
        .map_err(|e| ApiError::Unavailable(format!("reading the stored object: {e:#}")))?;
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
    let plan: String = r.get("plan_name");
    let kind: String = r.get("kind");
    let bytes: i64 = r.get("bytes");
    let name = format!(
        "{}-{id}-{idx}.{}.zst",
        model::key_part(&plan),
        model::key_part(&kind)
    );
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
    let status = deletable(&mut tx, id).await?;
    if status == "running" {
        return Err(ApiError::Conflict(format!(
            "backup {id} is running; cancel its run first"
        )));
    }
    let gated: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM approval_policies WHERE action_kind = 'backup.delete')",
    )
    .fetch_one(&mut *tx)
    .await?;
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
        state.runs.changed(run).await;
        return Ok((StatusCode::ACCEPTED, Json(BackupRunStarted { run_id: run })).into_response());
    }
    // Objects first: if removing one fails, the entry stays (and says so).
    let objects = super::retention::remove_set(&state, &mut tx, id, &p.username)
        .await
        .map_err(|e| ApiError::Unavailable(format!("{e:#}")))?;
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

/// Locks a backup that is not deleted and returns its status (404 when
/// there is none).
pub(super) async fn deletable(conn: &mut sqlx::PgConnection, id: i64) -> ApiResult<String> {
    let status: Option<String> = sqlx::query_scalar(
        "SELECT status FROM backups WHERE id = $1 AND deleted_at IS NULL FOR UPDATE",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    status.ok_or_else(|| ApiError::NotFound(format!("backup {id}")))
}
