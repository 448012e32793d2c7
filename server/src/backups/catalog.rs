//! What the catalog does, without HTTP: storage targets and plans written
//! and removed, backups listed, read, checked before a run is queued,
//! deleted and downloaded. Callers open the transaction, audit and commit;
//! the SQL is in [`super::store`]. Errors are [`BackupError`], which
//! `crate::error` turns into answers.

use opsdeck_wire::{
    BackupDetail, BackupPlan, BackupSummary, BackupTarget, DrillOutcome, PlanWrite, Retention,
    TargetKind, TargetWrite,
};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::model;
use super::storage::ObjectReader;
use super::store::{self, PlanFields};
use crate::secrets::Field;
use crate::state::AppState;

/// Why a backup request was refused.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Input the caller must correct.
    #[error("{0}")]
    Invalid(String),
    /// No such thing (the message names it).
    #[error("{0} not found")]
    NotFound(String),
    /// The request does not fit the current state.
    #[error("{0}")]
    Conflict(String),
    /// Writing a target or plan named `name` failed; a unique violation
    /// means the name is taken.
    #[error("storing \"{name}\": {source}")]
    Write { name: String, source: sqlx::Error },
    /// A storage target cannot be reached or read.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type Result<T, E = BackupError> = std::result::Result<T, E>;

/// The message for a built-in runbook that is not there.
pub fn missing_runbook(runbook: &str) -> BackupError {
    BackupError::Conflict(format!(
        "the built-in runbook {runbook} is missing (it is seeded at start-up when absent)"
    ))
}

/// The id of a built-in runbook.
pub async fn builtin(conn: &mut PgConnection, runbook: &str) -> Result<i64> {
    store::runbook_id(conn, runbook)
        .await?
        .ok_or_else(|| missing_runbook(runbook))
}

// ---------------------------------------------------------------- targets

pub async fn targets(conn: &mut PgConnection) -> Result<Vec<BackupTarget>> {
    Ok(store::targets(conn)
        .await?
        .into_iter()
        .map(model::target_of)
        .collect())
}

/// A target checked and ready to store, with what the audit entry says.
pub struct PreparedTarget {
    pub def: TargetWrite,
    pub checked: model::CheckedTarget,
    /// Where, never the secret (nor the access key id).
    pub audited: Value,
}

/// Checks a target to create (`id` `None`) or change. On change the stored
/// secret is kept unless a new one is given.
pub async fn prepare_target(
    conn: &mut PgConnection,
    id: Option<i64>,
    mut t: TargetWrite,
) -> Result<PreparedTarget> {
    let stored = match id {
        None => None,
        Some(id) => {
            let (config, sealed) = store::target_secret(conn, id)
                .await?
                .ok_or_else(|| BackupError::NotFound(format!("backup target {id}")))?;
            let secret = crate::secrets::open_opt(Field::TargetSecret, id, sealed.as_deref())
                .map_err(|e| BackupError::Internal(anyhow::anyhow!(e)))?;
            secret.filter(|_| same_s3_place(&config, t.s3.as_ref()))
        }
    };
    let given = t
        .secret_access_key
        .as_deref()
        .is_some_and(|s| !s.is_empty());
    if id.is_some() && stored.is_none() && !given && t.kind == TargetKind::S3 {
        // The stored key never follows the target to another endpoint,
        // bucket or access key id (issue 19, finding 1).
        return Err(BackupError::Invalid(
            "secret_access_key: required again because the endpoint, bucket or access key id \
             changed"
                .into(),
        ));
    }
    let checked = model::check_target(&mut t, stored)
        .await
        .map_err(BackupError::Invalid)?;
    let audited = match checked.kind {
        "s3" => {
            let s3 = t.s3.clone().unwrap_or_else(|| unreachable!("checked"));
            json!({ "name": t.name, "kind": "s3", "endpoint": s3.endpoint, "bucket": s3.bucket,
                    "prefix": s3.prefix, "region": s3.region, "allow_http": s3.allow_http,
                    "credentials": if given { "set" } else { "kept" } })
        }
        _ => json!({ "name": t.name, "path": t.path }),
    };
    Ok(PreparedTarget {
        def: t,
        checked,
        audited,
    })
}

/// Whether a change keeps an S3 target's stored key where it was: same
/// endpoint, bucket, access key id and plain-HTTP permission.
fn same_s3_place(stored: &Value, new: Option<&opsdeck_wire::S3Settings>) -> bool {
    let Some(new) = new else { return false };
    let text = |k: &str| stored.get(k).and_then(Value::as_str).unwrap_or_default();
    text("endpoint").trim_end_matches('/') == new.endpoint.trim().trim_end_matches('/')
        && text("bucket") == new.bucket.trim()
        && text("access_key_id") == new.access_key_id.trim()
        && stored
            .get("allow_http")
            .and_then(Value::as_bool)
            .unwrap_or(false)
            == new.allow_http
}

/// Stores a prepared target; returns its id.
pub async fn store_target(
    conn: &mut PgConnection,
    id: Option<i64>,
    p: &PreparedTarget,
) -> Result<i64> {
    let (name, c) = (&p.def.name, &p.checked);
    let taken = |source| BackupError::Write {
        name: name.clone(),
        source,
    };
    let secret = c.secret.as_deref();
    let id = match id {
        None => Some(
            store::insert_target(conn, name, c.kind, &c.config, secret)
                .await
                .map_err(taken)?,
        ),
        Some(id) => store::update_target(conn, id, name, c.kind, &c.config, secret)
            .await
            .map_err(taken)?,
    };
    id.ok_or_else(|| BackupError::NotFound("backup target".into()))
}

pub async fn target(conn: &mut PgConnection, id: i64) -> Result<BackupTarget> {
    Ok(model::target_of(store::target(conn, id).await?))
}

/// Removes a target no plan or backup uses; returns its name.
pub async fn delete_target(conn: &mut PgConnection, id: i64) -> Result<String> {
    if store::target_in_use(conn, id).await? {
        return Err(BackupError::Conflict(format!(
            "backup target {id} holds backups or is used by a plan"
        )));
    }
    store::delete_target(conn, id)
        .await?
        .ok_or_else(|| BackupError::NotFound(format!("backup target {id}")))
}

// ---------------------------------------------------------------- plans

/// All plans (by name), or the one with this id, each with its newest
/// backup, schedules and next runs.
pub async fn plans(conn: &mut PgConnection, id: Option<i64>) -> Result<Vec<BackupPlan>> {
    let rows = store::plans(conn, id).await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let last = match r.last_id {
            Some(b) => store::summary(conn, b).await?.map(model::summary_of),
            None => None,
        };
        let schedules = super::timing::schedules_of(conn, r.id).await?;
        let next = super::timing::next_runs(&schedules, &r.timezone, r.enabled);
        let drill = r.drilled_at.map(|at| DrillOutcome {
            at,
            backup_id: r.drill_backup_id,
            ok: r.drill_error.is_none(),
            error: r.drill_error.clone(),
        });
        out.push(BackupPlan {
            id: r.id,
            def: PlanWrite {
                name: r.name,
                sources: serde_json::from_value(r.sources).unwrap_or_default(),
                target: r.target,
                zstd_level: r.zstd_level,
                verify: r.verify,
                enabled: r.enabled,
                retention: Retention {
                    keep_last: r.keep_last,
                    keep_daily: r.keep_daily,
                    keep_weekly: r.keep_weekly,
                    keep_monthly: r.keep_monthly,
                    max_age_days: r.max_age_days,
                },
                schedules,
                timezone: r.timezone,
            },
            created_by: r.created_by,
            updated_at: r.updated_at,
            last,
            drill,
            next,
        });
    }
    Ok(out)
}

/// Checks and stores a plan (create when `id` is `None`), its retention
/// and schedules. Returns the plan as stored and what the audit entry says.
pub async fn write_plan(
    conn: &mut PgConnection,
    id: Option<i64>,
    mut w: PlanWrite,
    by: &str,
) -> Result<(BackupPlan, Value)> {
    super::timing::check(&mut w)?;
    let target_id = model::check_plan(conn, &mut w).await?;
    let sources = serde_json::to_value(&w.sources).map_err(anyhow::Error::from)?;
    let fields = PlanFields {
        name: &w.name,
        sources: &sources,
        target_id,
        zstd_level: w.zstd_level,
        verify: w.verify,
        enabled: w.enabled,
    };
    let taken = |source| BackupError::Write {
        name: w.name.clone(),
        source,
    };
    let id = match id {
        None => Some(store::insert_plan(conn, &fields, by).await.map_err(taken)?),
        Some(id) => store::update_plan(conn, id, &fields).await.map_err(taken)?,
    };
    let id = id.ok_or_else(|| BackupError::NotFound("backup plan".into()))?;
    store::set_retention(conn, id, &w.retention, &w.timezone).await?;
    super::timing::reconcile(conn, id, &w, by).await?;
    let audited = json!({ "name": w.name, "sources": sources, "target": w.target,
            "zstd_level": w.zstd_level, "verify": w.verify, "enabled": w.enabled,
            "retention": w.retention, "schedules": w.schedules, "timezone": w.timezone });
    let plan = plans(conn, Some(id))
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("plan not stored"))?;
    Ok((plan, audited))
}

/// Removes a plan (its backups stay); returns its name.
pub async fn delete_plan(conn: &mut PgConnection, id: i64) -> Result<String> {
    store::delete_plan(conn, id)
        .await?
        .ok_or_else(|| BackupError::NotFound(format!("backup plan {id}")))
}

/// The name of a plan that may run now (it exists and is enabled).
pub async fn runnable_plan(conn: &mut PgConnection, id: i64) -> Result<String> {
    let (name, enabled) = store::plan_state(conn, id)
        .await?
        .ok_or_else(|| BackupError::NotFound(format!("backup plan {id}")))?;
    if !enabled {
        return Err(BackupError::Conflict(format!(
            "backup plan {name} is disabled; enable it first"
        )));
    }
    Ok(name)
}

// ---------------------------------------------------------------- catalog

/// The catalog, newest first (at most 200; deleted backups left out).
pub async fn list(
    conn: &mut PgConnection,
    plan: Option<&str>,
    status: Option<&str>,
) -> Result<Vec<BackupSummary>> {
    if let Some(s) = status {
        if opsdeck_wire::BackupStatus::parse(s).is_none() {
            return Err(BackupError::Invalid(format!(
                "status \"{}\": running, succeeded, failed or interrupted",
                s.escape_default()
            )));
        }
    }
    Ok(store::list(conn, plan, status)
        .await?
        .into_iter()
        .map(model::summary_of)
        .collect())
}

/// One backup with its artifacts.
pub async fn detail(conn: &mut PgConnection, id: i64) -> Result<BackupDetail> {
    let r = store::summary(conn, id)
        .await?
        .ok_or_else(|| BackupError::NotFound(format!("backup {id}")))?;
    let verified_at = r.verified_at;
    Ok(BackupDetail {
        summary: model::summary_of(r),
        verified_at,
        artifacts: model::artifacts(conn, id).await?,
    })
}

/// Checks that a backup can be verified (it succeeded).
pub async fn verifiable(conn: &mut PgConnection, id: i64) -> Result<()> {
    let status = store::backup_status(conn, id)
        .await?
        .ok_or_else(|| BackupError::NotFound(format!("backup {id}")))?;
    if status != "succeeded" {
        return Err(BackupError::Conflict(format!(
            "backup {id} is {status}; only succeeded backups can be verified"
        )));
    }
    Ok(())
}

/// Locks a backup that is not deleted and returns its status.
pub async fn deletable(conn: &mut PgConnection, id: i64) -> Result<String> {
    store::lock_backup(conn, id)
        .await?
        .ok_or_else(|| BackupError::NotFound(format!("backup {id}")))
}

/// Locks a backup to delete; whether the deletion waits for an approval
/// (a policy on `backup.delete`).
pub async fn delete_gated(conn: &mut PgConnection, id: i64) -> Result<bool> {
    if deletable(conn, id).await? == "running" {
        return Err(BackupError::Conflict(format!(
            "backup {id} is running; cancel its run first"
        )));
    }
    Ok(store::delete_gated(conn).await?)
}

/// Deletes a backup now (locked by [`delete_gated`]): objects first, so
/// that if removing one fails the entry stays. Returns the objects removed.
pub async fn delete_now(
    state: &AppState,
    conn: &mut PgConnection,
    id: i64,
    by: &str,
) -> Result<usize> {
    super::retention::remove_set(state, conn, id, by)
        .await
        .map_err(|e| BackupError::Unavailable(format!("{e:#}")))
}

/// A stored object opened for download.
pub struct Download {
    pub file: ObjectReader,
    /// The file name to offer.
    pub name: String,
    pub bytes: i64,
}

/// Opens a stored artifact of a succeeded backup.
pub async fn download(
    state: &AppState,
    conn: &mut PgConnection,
    id: i64,
    idx: i32,
) -> Result<Download> {
    let r = store::download(conn, id, idx)
        .await?
        .ok_or_else(|| BackupError::NotFound(format!("artifact {idx} of backup {id}")))?;
    if r.status != "succeeded" || r.astatus != "stored" {
        return Err(BackupError::Conflict(format!(
            "backup {id} is {}; only stored artifacts of succeeded backups can be downloaded",
            r.status
        )));
    }
    let store = super::run::store_of(state, r.target_id)
        .await
        .map_err(|e| BackupError::Unavailable(format!("backup target: {e}")))?;
    let file = store
        .read(&r.object_key)
        .await
        .map_err(|e| BackupError::Unavailable(format!("reading the stored object: {e:#}")))?;
    let name = format!(
        "{}-{id}-{idx}.{}.zst",
        model::key_part(&r.plan_name),
        model::key_part(&r.kind)
    );
    Ok(Download {
        file,
        name,
        bytes: r.bytes,
    })
}
