//! Verifying a backup: every object read back and its checksum compared,
//! then test-restored (databases into scratch databases, volume archives
//! into scratch volumes, file archives walked) and the figures compared with
//! those taken at backup time.

use super::*;

/// Reads each object back (checksum), then test-restores each database
/// dump into a scratch database and compares row counts.
pub(in crate::backups) async fn verify(cx: &StepCx<'_>, id: i64) -> StepResult {
    let state = cx.state;
    let r = sqlx::query!(
        "SELECT status, target_id, plan_name FROM backups WHERE id = $1 AND deleted_at IS NULL",
        id
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("backup #{id} does not exist"))?;
    let status = r.status;
    if status != "succeeded" {
        return Err(format!(
            "backup #{id} is {status}; only succeeded backups are verified"
        ));
    }
    let target_id = r
        .target_id
        .ok_or_else(|| format!("backup #{id}: its storage target was removed"))?;
    let plan = r.plan_name;
    let result = verify_all(cx, id, target_id, &plan).await;
    let mut tx = state.pool.begin().await.map_err(|e| e.to_string())?;
    let (verification, err) = match &result {
        Ok(()) => ("verified", None),
        Err(e) => ("failed", Some(e.clone())),
    };
    sqlx::query!(
        "UPDATE backups SET verification = $2, verify_error = $3, verified_at = now() WHERE id = $1",
        id,
        verification,
        err.as_deref()
    )
    .execute(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    audit_in(
        &mut tx,
        cx.actor,
        "backup.verified",
        id,
        if err.is_none() {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        err.clone(),
    )
    .await?;
    if let Some(e) = &err {
        let opened = raise(
            &mut tx,
            &plan,
            format!("Backup of {plan} failed verification"),
            e,
            format!("Verification of backup #{id} ({plan}) failed: {e}"),
            id,
        )
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        if opened {
            incidents::escalation::wake();
        }
        return Err(format!("backup #{id} failed verification: {e}"));
    }
    tx.commit().await.map_err(|e| e.to_string())?;
    cx.out.line(format!("backup #{id} verified"));
    Ok(json!({ "backup": id, "verification": "verified" }))
}

pub(super) async fn verify_all(
    cx: &StepCx<'_>,
    id: i64,
    target_id: i64,
    plan: &str,
) -> Result<(), String> {
    let state = cx.state;
    let store = store_of(state, target_id).await?;
    let rows = sqlx::query!(
        "SELECT idx, source, kind, object_key, sha256, bytes, stats FROM backup_artifacts
         WHERE backup_id = $1 ORDER BY idx",
        id
    )
    .fetch_all(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    if rows.is_empty() {
        return Err("the backup has no artifacts".into());
    }
    let sources: Vec<BackupSource> =
        sqlx::query_scalar!("SELECT sources FROM backup_plans WHERE name = $1", plan)
            .fetch_optional(&state.pool)
            .await
            .map_err(|e| e.to_string())?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
    let checked = AtomicU64::new(0);
    for r in &rows {
        let idx = r.idx;
        let source = &r.source;
        let kind = &r.kind;
        let key = &r.object_key;
        let want = &r.sha256;
        let size = r.bytes;
        // 1. Read back and compare the checksum.
        let file = store
            .read(key)
            .await
            .map_err(|e| format!("{source}: cannot read {key}: {e:#}"))?;
        let (sum, n) = pipeline::checksum(file)
            .await
            .map_err(|e| format!("{source}: reading back: {e:#}"))?;
        if Some(&sum) != want.as_ref() || n as i64 != size {
            return Err(format!(
                "{source}: checksum mismatch (stored {n} bytes, sha256 {}; catalog {size} bytes, sha256 {})",
                &sum[..16.min(sum.len())],
                want.as_deref().map(|w| &w[..16.min(w.len())]).unwrap_or("none")
            ));
        }
        checked.fetch_add(1, Ordering::Relaxed);
        cx.out
            .line(format!("{source}: checksum ok ({})", human_bytes(n)));
        // 2. Per kind: test restores, archive walks, figures compared.
        let expected: BTreeMap<String, i64> =
            serde_json::from_value(r.stats.clone()).unwrap_or_default();
        let open = || store.read(key);
        match kind.as_str() {
            "pg_dump" | "mysqldump" => {
                verify_database(cx, id, idx, kind, source, &sources, &expected, &open).await?
            }
            "volume_tar" => verify_volume(cx, id, idx, source, &expected, &open).await?,
            "files_tar" => {
                let (got, _) = archive::check_object(
                    open().await.map_err(|e| format!("{source}: {e:#}"))?,
                    None,
                )
                .await
                .map_err(|e| format!("{source}: the archive is refused: {e}"))?;
                archive::compare(&expected, &got).map_err(|e| format!("{source}: {e}"))?;
                cx.out.line(format!(
                    "{source}: archive checked, {} files ({}) as at dump time",
                    got.files,
                    human_bytes(got.bytes as u64)
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Test-restores a database dump (`kind` `pg_dump` or `mysqldump`, source
/// `postgres:<service>/<db>` or `mariadb:<service>/<db>`) on the server it
/// came from, if the plan still names that service.
#[allow(clippy::too_many_arguments)]
pub(super) async fn verify_database<F, Fut>(
    cx: &StepCx<'_>,
    id: i64,
    idx: i32,
    kind: &str,
    source: &str,
    sources: &[BackupSource],
    expected: &BTreeMap<String, i64>,
    open: &F,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<crate::backups::storage::ObjectReader>>,
{
    let prefix = if kind == "pg_dump" {
        "postgres:"
    } else {
        "mariadb:"
    };
    let Some((service, db)) = source.strip_prefix(prefix).and_then(|s| s.split_once('/')) else {
        return Ok(());
    };
    let in_plan = sources.iter().any(|s| match s {
        BackupSource::Postgres { service: sv, .. } => kind == "pg_dump" && sv == service,
        BackupSource::Mariadb { service: sv, .. } => kind == "mysqldump" && sv == service,
        _ => false,
    });
    if !in_plan {
        return Err(format!("{source}: its service is no longer in the plan; cannot pick a server to test-restore on"));
    }
    let scratch = Scratch {
        cx,
        // Unique even when several Opsdeck databases back up one server.
        name: format!("opsdeck_verify_{id}_{idx}_{:08x}", rand::random::<u32>()),
        source,
        db,
        expected,
    };
    if kind == "pg_dump" {
        scratch
            .test_restore(&postgres::lookup(cx.state, service).await?, open)
            .await
    } else {
        scratch
            .test_restore(&mariadb::lookup(cx.state, service).await?, open)
            .await
    }
}

/// One test restore of a database dump into a scratch database.
pub(super) struct Scratch<'a> {
    pub(super) cx: &'a StepCx<'a>,
    /// `opsdeck_verify_<backup>_<idx>_<8 hex>`, always dropped.
    pub(super) name: String,
    pub(super) source: &'a str,
    pub(super) db: &'a str,
    pub(super) expected: &'a BTreeMap<String, i64>,
}

impl Scratch<'_> {
    /// Restores into the scratch database, compares the row counts with
    /// those taken at dump time, and drops it again whatever happened.
    pub(super) async fn test_restore<S, F, Fut>(&self, server: &S, open: &F) -> Result<(), String>
    where
        S: ScratchServer,
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = anyhow::Result<crate::backups::storage::ObjectReader>>,
    {
        let scratch = &self.name;
        server.create_scratch(scratch).await?;
        let outcome = async {
            let file = open().await.map_err(|e| format!("{e:#}"))?;
            let scrub = |m: String| server.scrub(m);
            pipeline::restore_into(file, server.restore_cmd(scratch), &scrub)
                .await
                .map_err(|e| format!("test restore: {e:#}"))?;
            let got = server.row_counts(scratch).await?;
            compare_counts(self.expected, &got)
        }
        .await;
        if let Err(e) = server.drop_scratch(scratch).await {
            self.cx.out.line(format!("dropping {scratch}: {e}"));
        }
        outcome.map_err(|e| {
            format!(
                "{} (database {}): {}",
                self.source,
                self.db,
                server.scrub(e)
            )
        })?;
        self.cx.out.line(format!(
            "{}: test restore ok, {} tables with the row counts taken at dump time",
            self.source,
            self.expected.len()
        ));
        Ok(())
    }
}

/// Walks a volume archive (entries checked, figures compared), then
/// test-restores it into a scratch volume on its engine, reads that back
/// and compares again; the scratch volume is always removed.
pub(super) async fn verify_volume<F, Fut>(
    cx: &StepCx<'_>,
    id: i64,
    idx: i32,
    source: &str,
    expected: &BTreeMap<String, i64>,
    open: &F,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<crate::backups::storage::ObjectReader>>,
{
    let (got, _) = archive::check_object(
        open().await.map_err(|e| format!("{source}: {e:#}"))?,
        Some(volumes::TOP),
    )
    .await
    .map_err(|e| format!("{source}: the archive is refused: {e}"))?;
    archive::compare(expected, &got).map_err(|e| format!("{source}: {e}"))?;
    cx.out.line(format!(
        "{source}: archive checked, {} files ({}) as at dump time",
        got.files,
        human_bytes(got.bytes as u64)
    ));
    let Some((engine, _)) = source
        .strip_prefix("volume:")
        .and_then(|s| s.split_once('/'))
    else {
        return Ok(());
    };
    let scratch = volumes::scratch_name(id, idx);
    let outcome = async {
        let written = volumes::restore(cx.state, Some(engine), &scratch, open).await?;
        let back = volumes::measure(cx.state, Some(engine), &scratch).await?;
        if back != written {
            return Err(format!(
                "the scratch volume reads back differently ({back:?}, {written:?} written)"
            ));
        }
        archive::compare(expected, &back)
    }
    .await;
    if let Err(e) = volumes::remove(cx.state, Some(engine), &scratch).await {
        cx.out.line(format!("removing volume {scratch}: {e}"));
    }
    outcome.map_err(|e| format!("{source} (test restore into volume {scratch}): {e}"))?;
    cx.out.line(format!(
        "{source}: test restore into volume {scratch} ok, read back with the same files"
    ));
    Ok(())
}

/// The restored database has the same tables with the same row counts.
pub fn compare_counts(
    expected: &BTreeMap<String, i64>,
    got: &BTreeMap<String, i64>,
) -> Result<(), String> {
    for (table, n) in expected {
        match got.get(table) {
            None => return Err(format!("table {table} is missing after the restore")),
            Some(m) if m != n => {
                return Err(format!(
                    "table {table}: {m} rows after the restore, {n} at dump time"
                ))
            }
            _ => {}
        }
    }
    if let Some(extra) = got.keys().find(|k| !expected.contains_key(*k)) {
        return Err(format!(
            "table {extra} appeared in the restore but was not counted at dump time"
        ));
    }
    Ok(())
}
