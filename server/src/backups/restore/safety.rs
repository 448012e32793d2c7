//! Phase 2 of a restore: the safety backup of what is there now, read back
//! before anything is overwritten (see the parent module).

use super::*;

/// Backs up the destination as it is now into the plan and target of the
/// backup being restored (trigger `safety`; the backup run's own dump,
/// `run::dump_one`), reads it back and compares the checksum. Returns the
/// new backup's id. On failure its object is removed and it is marked
/// failed (no incident: the restore's run shows the failure).
pub(super) async fn safety_backup(
    cx: &StepCx<'_>,
    a: &Art,
    store: &Store,
    label: String,
    kind: &'static str,
    work: Work,
    tool: String,
) -> Result<i64, String> {
    let state = cx.state;
    let level: i32 = match a.plan_id {
        Some(plan) => {
            sqlx::query_scalar!("SELECT zstd_level FROM backup_plans WHERE id = $1", plan)
                .fetch_optional(&state.pool)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or(3)
        }
        None => 3,
    };
    let id: i64 = sqlx::query_scalar!(
        "INSERT INTO backups (plan_id, plan_name, target_id, run_id, trigger, requested_by, verification)
         VALUES ($1, $2, $3, $4, 'safety', $5, 'skipped') RETURNING id",
        a.plan_id,
        &a.plan,
        a.target_id,
        cx.run_id,
        &cx.actor.name
    )
    .fetch_one(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    let art = Artifact::new(&a.plan, id, 0, label, kind);
    let key = art.key.clone();
    let res = async {
        let (bytes, raw) = dump_one(cx, id, store, &art, &work, level, &tool).await?;
        // Read back before anything is overwritten: this copy is the way back.
        let want: Option<String> = sqlx::query_scalar!(
            "SELECT sha256 FROM backup_artifacts WHERE backup_id = $1 AND idx = 0",
            id
        )
        .fetch_one(&state.pool)
        .await
        .map_err(|e| e.to_string())?;
        let (sum, n) = pipeline::checksum(store.read(&key).await.map_err(|e| format!("{e:#}"))?)
            .await
            .map_err(|e| format!("reading the safety backup back: {e:#}"))?;
        if want.as_deref() != Some(sum.as_str()) || n != bytes {
            return Err(format!(
                "the safety backup reads back differently from what was written ({n} bytes, sha256 {})",
                &sum[..16]
            ));
        }
        let mut tx = state.pool.begin().await.map_err(|e| e.to_string())?;
        let arts = crate::backups::model::artifacts(&mut tx, id)
            .await
            .map_err(|e| e.to_string())?;
        let manifest = json!({
            "backup": id,
            "format": "opsdeck-backup/1",
            "compression": "zstd",
            "checksum": "sha256 of the stored bytes",
            "safety_for": { "run": cx.run_id, "source": a.source },
            "artifacts": arts,
        });
        let done = sqlx::query!(
            "UPDATE backups SET status = 'succeeded', finished_at = now(), bytes = $2, raw_bytes = $3,
                    manifest = $4
             WHERE id = $1 AND status = 'running'",
            id,
            bytes as i64,
            raw as i64,
            manifest
        )
        .execute(&mut *tx)
        .await
        .map_err(|e| e.to_string())?
        .rows_affected();
        if done == 0 {
            return Err(format!("backup #{id} was settled meanwhile (interrupted)"));
        }
        audit_backup(&mut tx, cx.actor, "backup.created", id, Outcome::Success, None)
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        cx.out.line(format!(
            "2/5 safety backup #{id} stored and read back: {} ({} raw), sha256 {}",
            human_bytes(bytes),
            human_bytes(raw),
            &sum[..16]
        ));
        Ok(())
    }
    .await;
    match res {
        Ok(()) => Ok(id),
        Err(e) => {
            if let Err(x) = fail_safety(state, store, id, &key, &e).await {
                tracing::warn!(backup = id, error = %format!("{x:#}"), "settling a failed safety backup");
            }
            Err(format!("safety backup #{id}: {e}"))
        }
    }
}

/// Marks a safety backup failed and removes its object (while the row is
/// locked, as `run::fail` does; a crash before the commit leaves it
/// `running` for the sweep).
pub(super) async fn fail_safety(
    state: &AppState,
    store: &Store,
    id: i64,
    key: &str,
    why: &str,
) -> anyhow::Result<()> {
    let mut tx = state.pool.begin().await?;
    let n = sqlx::query!(
        "UPDATE backups SET status = 'failed', error = $2, finished_at = now()
         WHERE id = $1 AND status = 'running'",
        id,
        why
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE backup_artifacts SET status = 'failed', error = coalesce(error, $2) WHERE backup_id = $1",
        id,
        why
    )
    .execute(&mut *tx)
    .await?;
    audit_backup(
        &mut tx,
        &Actor::system("backup"),
        "backup.created",
        id,
        Outcome::Failure,
        Some(why.to_owned()),
    )
    .await?;
    store.delete(key).await?;
    tx.commit().await?;
    Ok(())
}

pub(super) async fn audit_backup(
    conn: &mut PgConnection,
    actor: &Actor,
    action: &str,
    id: i64,
    outcome: Outcome,
    detail: Option<String>,
) -> sqlx::Result<()> {
    audit::record(
        conn,
        NewEntry {
            actor: actor.clone(),
            action: action.into(),
            target: Some(format!("backup:{id}")),
            params: json!({ "trigger": "safety" }),
            source: None,
            outcome,
            detail,
        },
    )
    .await
}
