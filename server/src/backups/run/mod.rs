//! The `backup` runbook step: run a plan (`op: run`, subject = plan name)
//! or verify a backup (`op: verify`, subject = backup id).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opsdeck_wire::{BackupSource, Outcome, Severity};
use serde_json::{json, Value};

use super::mariadb::{self, MyTarget};
use super::pipeline::{self, Progress};
use super::postgres::{self, PgTarget};
use super::scratch::ScratchServer;
use super::storage::Store;
use super::{archive, files, volumes};
use crate::audit::{self, Actor, NewEntry};
use crate::incidents::{self, Opening};
use crate::runbooks::output::Output;
use crate::runbooks::step::{StepCx, StepKind, StepResult};
use crate::state::AppState;

mod verify;

pub use verify::compare_counts;
pub(super) use verify::verify;

/// The `backup` step kind, registered with the runbook engine at start-up.
pub struct BackupStep;

impl StepKind for BackupStep {
    fn kind(&self) -> &'static str {
        "backup"
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepCx<'a>,
        action: &'a opsdeck_wire::StepAction,
    ) -> futures::future::BoxFuture<'a, StepResult> {
        Box::pin(async move {
            match action {
                opsdeck_wire::StepAction::Backup { op, subject } => step(cx, op, subject).await,
                other => Err(format!("not a backup step: {}", other.kind())),
            }
        })
    }
}

pub async fn step(cx: &StepCx<'_>, op: &str, subject: &str) -> StepResult {
    match op {
        "run" => run_plan(cx, subject.trim()).await,
        "drill" => super::timing::drill(cx, subject.trim()).await,
        "delete" => super::retention::delete_step(cx, subject.trim()).await,
        "restore" => super::restore::step(cx, subject.trim()).await,
        "verify" => {
            let id: i64 = subject.trim().parse().map_err(|_| {
                format!(
                    "backup: \"{}\" is not a backup id",
                    subject.escape_default()
                )
            })?;
            verify(cx, id).await
        }
        other => Err(format!(
            "op \"{}\": run, verify or restore",
            other.escape_default()
        )),
    }
}

/// Opens a target (local directory or S3 bucket) from its row.
pub(super) async fn store_of(state: &AppState, target_id: i64) -> Result<Store, String> {
    let t = sqlx::query!(
        "SELECT kind, config, secret FROM backup_targets WHERE id = $1",
        target_id
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("backup target {target_id} does not exist"))?;
    // Sealed at rest: opened here, where the store is made.
    let secret = crate::secrets::open_opt(
        crate::secrets::Field::TargetSecret,
        target_id,
        t.secret.as_deref(),
    )
    .map_err(|e| e.to_string())?;
    Store::open(&t.kind, &t.config, secret.as_deref()).await
}

pub(super) fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Progress lines on the run page: read, stored, rate, elapsed (at most
/// one every 2 s).
pub(super) fn progress_for(out: &Output, label: String) -> Progress {
    let started = Instant::now();
    let last = Mutex::new(Instant::now() - Duration::from_secs(10));
    let out = out.handle();
    Arc::new(move |raw: u64, stored: u64| {
        let mut l = last.lock().unwrap_or_else(|p| p.into_inner());
        if l.elapsed() < Duration::from_secs(2) {
            return;
        }
        *l = Instant::now();
        let secs = started.elapsed().as_secs_f64().max(0.001);
        out.line(format!(
            "{label}: {} read, {} stored, {}/s, {:.0} s",
            human_bytes(raw),
            human_bytes(stored),
            human_bytes((raw as f64 / secs) as u64),
            secs
        ));
    })
}

pub(super) struct Artifact {
    pub(super) idx: i32,
    pub(super) source: String,
    pub(super) kind: &'static str,
    pub(super) key: String,
}

async fn run_plan(cx: &StepCx<'_>, plan: &str) -> StepResult {
    let state = cx.state;
    let r = sqlx::query!(
        "SELECT id, sources, target_id, zstd_level, verify FROM backup_plans WHERE name = $1",
        plan
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("no backup plan named \"{}\"", plan.escape_default()))?;
    let plan_id = r.id;
    let sources: Vec<BackupSource> =
        serde_json::from_value(r.sources).map_err(|e| format!("stored sources: {e}"))?;
    let target_id = r.target_id;
    let level = r.zstd_level;
    let do_verify = r.verify;
    let trigger = if cx.actor.kind == "system" && cx.actor.name.starts_with("schedule:") {
        "schedule"
    } else {
        "manual"
    };
    let id = sqlx::query_scalar!(
        "INSERT INTO backups (plan_id, plan_name, target_id, run_id, trigger, requested_by, verification)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        plan_id,
        plan,
        target_id,
        cx.run_id,
        trigger,
        &cx.actor.name,
        if do_verify { "pending" } else { "skipped" }
    )
    .fetch_one(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    cx.out.line(format!("backup #{id} of plan {plan}"));
    match dump_all(cx, id, plan, &sources, target_id, level).await {
        Ok((bytes, raw)) => {
            let mut tx = state.pool.begin().await.map_err(|e| e.to_string())?;
            let manifest = manifest(state, id).await?;
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
            audit_in(
                &mut tx,
                cx.actor,
                "backup.created",
                id,
                Outcome::Success,
                None,
            )
            .await?;
            tx.commit().await.map_err(|e| e.to_string())?;
            cx.out.line(format!(
                "backup #{id} stored: {} ({} before compression)",
                human_bytes(bytes),
                human_bytes(raw)
            ));
        }
        Err(e) => {
            fail(state, id, "failed", &e)
                .await
                .map_err(|x| x.to_string())?;
            return Err(format!("backup #{id} failed: {e}"));
        }
    }
    if do_verify {
        verify(cx, id).await?;
    }
    // Only after a good backup (a failed verification returned above).
    match super::retention::enforce(state, plan_id).await {
        Ok((_, lines)) => lines.into_iter().for_each(|l| cx.out.line(l)),
        Err(e) => cx
            .out
            .line(format!("pruning: {e:#} (the next run tries again)")),
    }
    Ok(json!({ "backup": id }))
}

/// What one artifact dumps.
pub(super) enum Work {
    PgGlobals(PgTarget),
    PgDump(PgTarget, String),
    MyDump(MyTarget, String),
    Volume { volume: String, engine: String },
    Files { path: String },
}

impl Artifact {
    pub(super) fn new(
        plan: &str,
        id: i64,
        idx: i32,
        source: String,
        kind: &'static str,
    ) -> Artifact {
        Artifact {
            idx,
            key: format!(
                "{}/{id}/{idx}-{}.{kind}.zst",
                super::model::key_part(plan),
                super::model::key_part(&source)
            ),
            source,
            kind,
        }
    }
}

/// Tool versions, asked once per backup and only when needed.
#[derive(Default)]
struct Tools {
    pg: Option<String>,
    my: Option<String>,
}

async fn dump_all(
    cx: &StepCx<'_>,
    id: i64,
    plan: &str,
    sources: &[BackupSource],
    target_id: i64,
    level: i32,
) -> Result<(u64, u64), String> {
    let state = cx.state;
    let store = store_of(state, target_id).await?;
    let mut tools = Tools::default();
    let (mut bytes, mut raw) = (0u64, 0u64);
    let mut idx = 0i32;
    for s in sources {
        // Each source is looked up when its turn comes.
        let mut work: Vec<(Artifact, Work, String)> = Vec::new();
        match s {
            BackupSource::Postgres { service, databases } => {
                let t = postgres::lookup(state, service).await?;
                let own = crate::backups::own::own_database(&state.pool).await;
                let dbs = postgres::databases(&t, databases, own.as_ref())
                    .await
                    .map_err(|e| postgres::scrub(&t, e))?;
                if tools.pg.is_none() {
                    tools.pg = Some(postgres::tool_version().await);
                }
                let tool = tools.pg.clone().unwrap_or_default();
                // Globals first (roles, tablespaces), then each database.
                let label = format!("postgres:{service}/globals");
                work.push((
                    Artifact::new(plan, id, idx, label, "pg_globals"),
                    Work::PgGlobals(t.clone()),
                    tool.clone(),
                ));
                idx += 1;
                for db in dbs {
                    let label = format!("postgres:{service}/{db}");
                    work.push((
                        Artifact::new(plan, id, idx, label, "pg_dump"),
                        Work::PgDump(t.clone(), db),
                        tool.clone(),
                    ));
                    idx += 1;
                }
            }
            BackupSource::Mariadb { service, databases } => {
                let t = mariadb::lookup(state, service).await?;
                let dbs = mariadb::databases(&t, databases)
                    .await
                    .map_err(|e| mariadb::scrub(&t, e))?;
                if dbs.is_empty() {
                    return Err(format!(
                        "mariadb:{service}: the server has no database to back up"
                    ));
                }
                if tools.my.is_none() {
                    tools.my = Some(mariadb::tool_version().await);
                }
                let tool = tools.my.clone().unwrap_or_default();
                for db in dbs {
                    let label = format!("mariadb:{service}/{db}");
                    work.push((
                        Artifact::new(plan, id, idx, label, "mysqldump"),
                        Work::MyDump(t.clone(), db),
                        tool.clone(),
                    ));
                    idx += 1;
                }
            }
            BackupSource::Volume { volume, engine } => {
                // The engine as resolved now: the label says where it was.
                let (name, _) = volumes::engine(state, engine.as_deref()).await?;
                let version = state
                    .engines
                    .by_name(&name)
                    .and_then(|c| c.status().version)
                    .unwrap_or_else(|| "version unknown".into());
                let tool = format!(
                    "Docker Engine {version} archive API, helper {}",
                    volumes::helper_image()
                );
                let label = format!("volume:{name}/{volume}");
                work.push((
                    Artifact::new(plan, id, idx, label, "volume_tar"),
                    Work::Volume {
                        volume: volume.clone(),
                        engine: name,
                    },
                    tool,
                ));
                idx += 1;
            }
            BackupSource::Files { path } => {
                let label = format!("files:{path}");
                work.push((
                    Artifact::new(plan, id, idx, label, "files_tar"),
                    Work::Files { path: path.clone() },
                    format!("tar (Opsdeck {})", env!("CARGO_PKG_VERSION")),
                ));
                idx += 1;
            }
        }
        for (a, w, tool) in work {
            let (b, r) = dump_one(cx, id, &store, &a, &w, level, &tool).await?;
            bytes += b;
            raw += r;
        }
    }
    Ok((bytes, raw))
}

#[allow(clippy::too_many_arguments)]
pub(super) async fn dump_one(
    cx: &StepCx<'_>,
    id: i64,
    store: &Store,
    a: &Artifact,
    work: &Work,
    level: i32,
    tool: &str,
) -> Result<(u64, u64), String> {
    let state = cx.state;
    sqlx::query!(
        "INSERT INTO backup_artifacts (backup_id, idx, source, kind, object_key, tool)
         VALUES ($1, $2, $3, $4, $5, $6)",
        id,
        a.idx,
        &a.source,
        a.kind,
        &a.key,
        tool
    )
    .execute(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    let started = Instant::now();
    let res = dump_work(cx, id, store, a, work, level).await;
    let ms = started.elapsed().as_millis() as i64;
    match res {
        Ok((s, stats, notes)) => {
            sqlx::query!(
                "UPDATE backup_artifacts SET status = 'stored', bytes = $3, raw_bytes = $4, sha256 = $5,
                        duration_ms = $6, stats = $7
                 WHERE backup_id = $1 AND idx = $2",
                id,
                a.idx,
                s.bytes as i64,
                s.raw_bytes as i64,
                &s.sha256,
                ms,
                json!(stats)
            )
            .execute(&state.pool)
            .await
            .map_err(|e| e.to_string())?;
            for n in notes {
                cx.out.line(format!("{}: {n}", a.source));
            }
            cx.out.line(format!(
                "{}: {} stored ({} raw) in {:.1} s, sha256 {}",
                a.source,
                human_bytes(s.bytes),
                human_bytes(s.raw_bytes),
                ms as f64 / 1000.0,
                &s.sha256[..s.sha256.len().min(16)]
            ));
            Ok((s.bytes, s.raw_bytes))
        }
        Err(e) => {
            let e = format!("{}: {e}", a.source);
            let _ = sqlx::query!(
                "UPDATE backup_artifacts SET status = 'failed', error = $3, duration_ms = $4
                 WHERE backup_id = $1 AND idx = $2",
                id,
                a.idx,
                &e,
                ms
            )
            .execute(&state.pool)
            .await;
            Err(e)
        }
    }
}

/// What a dump gave: the stored object, the figures taken (row counts or
/// archive contents), and lines for the run page.
type Dumped = (pipeline::Stored, BTreeMap<String, i64>, Vec<String>);

/// Dumps one artifact; errors are scrubbed of passwords.
async fn dump_work(
    cx: &StepCx<'_>,
    id: i64,
    store: &Store,
    a: &Artifact,
    work: &Work,
    level: i32,
) -> Result<Dumped, String> {
    let progress = progress_for(cx.out, a.source.clone());
    let upload = || async { store.create(&a.key).await.map_err(|e| format!("{e:#}")) };
    match work {
        Work::PgGlobals(t) | Work::PgDump(t, _) => {
            let db = match work {
                Work::PgDump(_, db) => Some(db.as_str()),
                _ => None,
            };
            // Row counts first: the dump's snapshot is taken a moment
            // later, so a busy database may differ a little; verification
            // compares with them.
            let stats = match db {
                Some(db) => postgres::row_counts(t, db)
                    .await
                    .map_err(|e| postgres::scrub(t, e))?,
                None => BTreeMap::new(),
            };
            let cmd = match db {
                Some(db) => postgres::dump_cmd(t, db),
                None => postgres::globals_cmd(t),
            };
            let scrub = |m: String| postgres::scrub(t, m);
            let s = pipeline::dump_to(cmd, level, upload().await?, progress, &scrub)
                .await
                .map_err(|e| scrub(format!("{e:#}")))?;
            Ok((s, stats, Vec::new()))
        }
        Work::MyDump(t, db) => {
            let stats = mariadb::row_counts(t, db)
                .await
                .map_err(|e| mariadb::scrub(t, e))?;
            let scrub = |m: String| mariadb::scrub(t, m);
            let s = pipeline::dump_to(
                mariadb::dump_cmd(t, db),
                level,
                upload().await?,
                progress,
                &scrub,
            )
            .await
            .map_err(|e| scrub(format!("{e:#}")))?;
            Ok((s, stats, Vec::new()))
        }
        Work::Volume { volume, engine } => {
            let d = volumes::dump(cx.state, Some(engine), volume, id, a.idx).await?;
            let res = pipeline::dump_to(d.input, level, upload().await?, progress, &|m| m).await;
            if let Err(e) = d.helper.remove().await {
                cx.out.line(format!("{}: {e:#}", a.source));
            }
            let s = res.map_err(|e| format!("{e:#}"))?;
            let stats = d.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
            Ok((
                s,
                stats.to_map(),
                vec![format!(
                    "{} files, {} in them, {} directories, {} links",
                    stats.files,
                    human_bytes(stats.bytes as u64),
                    stats.dirs,
                    stats.symlinks + stats.hardlinks
                )],
            ))
        }
        Work::Files { path } => {
            let d = files::dump(path)?;
            let s = pipeline::dump_to(d.input, level, upload().await?, progress, &|m| m)
                .await
                .map_err(|e| format!("{e:#}"))?;
            let stats = d.stats.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let mut notes = vec![format!(
                "{} files, {} in them, {} directories, {} links",
                stats.files,
                human_bytes(stats.bytes as u64),
                stats.dirs,
                stats.symlinks
            )];
            let n = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
            if n(&d.notes.skipped) > 0 {
                notes.push(format!(
                    "skipped {} sockets, FIFOs or devices (not archived)",
                    n(&d.notes.skipped)
                ));
            }
            if n(&d.notes.vanished) > 0 {
                notes.push(format!(
                    "{} files vanished while the archive was built",
                    n(&d.notes.vanished)
                ));
            }
            if n(&d.notes.changed) > 0 {
                notes.push(format!(
                    "{} files changed size while they were read (archived at their listed size)",
                    n(&d.notes.changed)
                ));
            }
            if n(&d.notes.relativised) > 0 {
                notes.push(format!(
                    "{} absolute symbolic links into {path} stored as relative links",
                    n(&d.notes.relativised)
                ));
            }
            if n(&d.notes.outside) > 0 {
                let l = d
                    .notes
                    .outside_links
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                notes.push(format!(
                    "left out {} symbolic links pointing outside {path} (a restore refuses them; \
                     recreate them by hand): {}{}",
                    n(&d.notes.outside),
                    l.join(", "),
                    if n(&d.notes.outside) > l.len() as u64 {
                        ", …"
                    } else {
                        ""
                    }
                ));
            }
            Ok((s, stats.to_map(), notes))
        }
    }
}

async fn manifest(state: &AppState, id: i64) -> Result<Value, String> {
    let mut conn = state.pool.acquire().await.map_err(|e| e.to_string())?;
    let arts = super::model::artifacts(&mut conn, id)
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({
        "backup": id,
        "format": "opsdeck-backup/1",
        "compression": "zstd",
        "checksum": "sha256 of the stored bytes",
        "artifacts": arts,
    }))
}

async fn audit_in(
    conn: &mut sqlx::PgConnection,
    actor: &Actor,
    action: &str,
    id: i64,
    outcome: Outcome,
    detail: Option<String>,
) -> Result<(), String> {
    audit::record(
        conn,
        NewEntry {
            actor: actor.clone(),
            action: action.into(),
            target: Some(format!("backup:{id}")),
            params: json!({}),
            source: None,
            outcome,
            detail,
        },
    )
    .await
    .map_err(|e| e.to_string())
}

/// Marks a running backup `failed` or `interrupted` (once), removes its
/// objects and raises the incident `backup:<plan>`. Returns whether it
/// settled it (false: it was not running any more).
pub async fn fail(state: &AppState, id: i64, status: &str, why: &str) -> anyhow::Result<bool> {
    let mut tx = state.pool.begin().await?;
    let row = sqlx::query!(
        "UPDATE backups SET status = $2, error = $3, finished_at = now(),
                verification = CASE WHEN verification = 'pending' THEN 'skipped' ELSE verification END
         WHERE id = $1 AND status = 'running' RETURNING plan_name, target_id",
        id,
        status,
        why
    )
    .fetch_optional(&mut *tx)
    .await?;
    let Some(row) = row else {
        return Ok(false);
    };
    let plan = row.plan_name;
    let target_id = row.target_id;
    sqlx::query!(
        "UPDATE backup_artifacts SET status = 'failed', error = coalesce(error, $2)
         WHERE backup_id = $1 AND status <> 'failed'",
        id,
        why
    )
    .execute(&mut *tx)
    .await?;
    let keys = sqlx::query_scalar!(
        "SELECT object_key FROM backup_artifacts WHERE backup_id = $1",
        id
    )
    .fetch_all(&mut *tx)
    .await?;
    let actor = Actor::system("backup");
    audit_in(
        &mut tx,
        &actor,
        "backup.created",
        id,
        Outcome::Failure,
        Some(why.to_owned()),
    )
    .await
    .map_err(anyhow::Error::msg)?;
    let opened = raise(
        &mut tx,
        &plan,
        format!("Backup of {plan} failed"),
        why,
        format!("Backup #{id} of plan {plan} {status}: {why}"),
        id,
    )
    .await?;
    // Objects of a failed set are removed (partial and stored alike) while
    // the row is still locked: once the failure is visible the files are
    // gone, and a crash before the commit leaves the set `running` for the
    // next sweep to remove again.
    if let Some(Ok(store)) = match target_id {
        Some(t) => Some(store_of(state, t).await),
        None => None,
    } {
        for k in keys {
            if let Err(e) = store.delete(&k).await {
                tracing::warn!(backup = id, key = %k, error = %format!("{e:#}"), "removing a failed backup's object");
            }
        }
    }
    tx.commit().await?;
    if opened {
        incidents::escalation::wake();
    }
    Ok(true)
}

/// Opens (or finds) the incident `backup:<plan>` in the caller's
/// transaction, on the plan's services; returns whether it is new (the
/// caller wakes the escalation ticker after commit).
async fn raise(
    conn: &mut sqlx::PgConnection,
    plan: &str,
    title: String,
    summary: &str,
    event: String,
    backup: i64,
) -> anyhow::Result<bool> {
    let services = sqlx::query_scalar!(
        "SELECT s.id FROM backup_plans p, jsonb_array_elements(p.sources) src
         JOIN services s ON s.name = src->>'service' WHERE p.name = $1",
        plan
    )
    .fetch_all(&mut *conn)
    .await?;
    let (_, opened) = incidents::open(
        conn,
        Opening {
            title,
            severity: Severity::P2,
            source: "backup",
            dedup_key: Some(format!("backup:{plan}")),
            summary: summary.to_owned(),
            services: services.into_iter().map(|s| (s, "affected")).collect(),
            commander_id: None,
            policy: incidents::model::PolicyChoice::Default,
            actor: Actor::system("backup"),
            first_event: ("detected".into(), event, json!({ "backup": backup })),
            now: chrono::Utc::now(),
        },
    )
    .await?;
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_match_table_for_table() {
        let a: BTreeMap<String, i64> =
            [("public.t".to_owned(), 3), ("public.u".to_owned(), 0)].into();
        assert!(compare_counts(&a, &a.clone()).is_ok());
        let mut fewer = a.clone();
        fewer.insert("public.t".into(), 2);
        assert!(compare_counts(&a, &fewer)
            .unwrap_err()
            .contains("2 rows after the restore, 3"));
        let mut missing = a.clone();
        missing.remove("public.u");
        assert!(compare_counts(&a, &missing)
            .unwrap_err()
            .contains("missing"));
        let mut extra = a.clone();
        extra.insert("public.v".into(), 1);
        assert!(compare_counts(&a, &extra).unwrap_err().contains("appeared"));
    }

    #[test]
    fn sizes_read_like_people_write_them() {
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1_500), "1.5 KB");
        assert_eq!(human_bytes(2_000_000_000), "2.0 GB");
    }
}
