//! Restoring one artifact of a backup: `POST /api/v1/backups/{id}/restore`
//! queues a run of the built-in runbook `backup-restore` (one `backup` step
//! with `op: restore`, [`step`]), which waits for a second person's
//! approval before anything happens.
//!
//! The run, each phase a line on its output:
//!
//! 1. **Check**: the stored object is read back in full and its SHA-256 and
//!    size compared with the catalog's; a mismatch refuses the restore with
//!    nothing touched. Archives (`volume_tar`, `files_tar`) are walked in
//!    the same read ([`archive::check_object`]): an entry with `..`, an
//!    absolute path, a link leaving the archive or a device refuses the
//!    restore before anything is written (the restore functions check
//!    again on their own reads).
//! 2. **Safety backup** (only over an original that exists): a backup of
//!    what is there now, with the backup run's own dump (`run::dump_one`),
//!    into the plan and target of the backup being restored, trigger
//!    `safety`, read back and its checksum compared. If it fails, the
//!    restore stops with nothing touched.
//! 3. **Stop dependents** (when asked): for a database, the services that
//!    depend on the source's service, transitively (inventory graph); for a
//!    volume, the services whose containers use it (the engine's
//!    `volume=` filter) and their dependents. Stopped dependents first
//!    ([`DepGraph::stop_order`]); only services with running containers,
//!    and only those containers. A stop that fails ends the restore (those
//!    stopped are started again).
//! 4. **Restore**, per artifact kind:
//!    * `pg_dump`: `pg_restore --clean --if-exists --single-transaction`
//!      over the original database (owners and privileges as backed up;
//!      objects the dump does not know stay), or into a new database
//!      created for it (`--no-owner --no-privileges`; dropped again when
//!      the restore fails). One transaction: a failed restore changes
//!      nothing.
//!    * `mysqldump`: `mariadb --database=<db>` reading the dump (its tables
//!      are dropped and created again; not one transaction — the safety
//!      backup is the way back), or into a new database created for it.
//!    * `volume_tar`: [`volumes::restore`] — the volume emptied, then the
//!      checked entries written through the engine's archive API (a
//!      missing volume is created).
//!    * `files_tar`: [`files::restore`] — extracted next to the path and
//!      swapped into place.
//!    * `pg_globals` and unknown kinds are refused with a reason.
//! 5. **Start again** the services stopped in 3, dependencies first
//!    ([`DepGraph::start_order`]), always — also when 4 failed, and when the
//!    step is dropped (cancelled, timed out, lease lost): a guard starts
//!    them from a detached task then and audits the failure. A service
//!    whose dependency failed to start is not started (as the stack
//!    actions do). A crash of the process between 3 and 5 leaves them
//!    stopped: the run's output names them.
//!
//! Decisions:
//! * **Always behind an approval.** The runbook carries a runbook-level
//!   approval (one, operators or admins, never the requester). Because
//!   built-in runbooks are editable, both the API (before queueing) and the
//!   step (before phase 1) check it: the API refuses a definition without
//!   an approval, the step refuses a run without an approved request voted
//!   by someone other than the requester.
//! * **One restore at a time** (the runbook has no `target_param`): two
//!   restores never write the same database at once; a second request is
//!   refused (409) while one runs or waits for its approval.
//! * The request's details are the run's parameters (`backup`, `artifact`,
//!   `into`, `name`, `stop_dependents`), so the approver reviews exactly
//!   them (the approval binds to the parameters); no table of its own: the
//!   safety backup points at the run (`backups.run_id`, trigger `safety`).
//! * **Audit**: the request is `backup.restore` (API), the result
//!   `backup.restored` with its outcome (the run), like `backup.verify` /
//!   `backup.verified`.
//! * The globals of a Postgres server (`pg_globals`: roles, tablespaces) are
//!   not restored: they apply to the whole server and partly exist already;
//!   the operator downloads the artifact and applies what is needed with
//!   `psql`.
//! * Restoring over the original waits at most 60 s for a lock
//!   (`lock_timeout`): without stopping the dependents, a restore under a
//!   busy application fails clearly instead of queueing its queries.
//! * Row counts after a database restore are compared with those taken at
//!   dump time and reported; a difference is a line on the output, not a
//!   failure (the counts are taken a moment before the dump's snapshot).
//! * The object is read twice or more (check, then restore; the archive
//!   restores read it twice themselves): a check while restoring would come
//!   too late to refuse.
//! * A new destination must not exist (database, volume, path); an
//!   original database must exist (a dropped one is restored "into a new
//!   database" of its name). An original volume or path that is gone is
//!   simply created (no safety backup: there is nothing to keep).
//! * Safety backups are ordinary catalog entries (verification `skipped`,
//!   no incident when they fail: the restore's run shows it); a crash while
//!   one is written leaves it `running` for the sweep, like any backup.
//!
//! [`DepGraph::stop_order`]: crate::inventory::graph::DepGraph::stop_order
//! [`DepGraph::start_order`]: crate::inventory::graph::DepGraph::start_order

use std::collections::{BTreeMap, HashMap, HashSet};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, ReadBuf};

use opsdeck_wire::{
    ContainerActionKind, ContainerActionRequest, Outcome, RestoreInto, RestoreRequest, RunbookDef,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, Row};

use super::archive;
use super::files;
use super::mariadb::{self, MyTarget};
use super::pipeline;
use super::postgres::{self, PgTarget};
use super::run::{dump_one, human_bytes, store_of, Artifact, Work};
use super::storage::{ObjectReader, Store};
use super::volumes;
use crate::actions::{self, Invoker};
use crate::audit::{self, Actor, NewEntry};
use crate::auth::Principal;
use crate::error::{ApiError, ApiResult};
use crate::inventory::Snapshot;
use crate::runbooks::engine::{enqueue, NewRun};
use crate::runbooks::output::Output;
use crate::runbooks::steps::StepCx;
use crate::state::AppState;

/// The built-in runbook a restore is a run of.
pub const RUNBOOK: &str = "backup-restore";

type StepResult = Result<Value, String>;

// ------------------------------------------------------------ what

/// An artifact's source, parsed from its label and kind.
#[derive(Debug, Clone, PartialEq)]
enum Source {
    /// `postgres:<service>/<database>`, kind `pg_dump`.
    Postgres { service: String, database: String },
    /// `mariadb:<service>/<database>`, kind `mysqldump`.
    Mariadb { service: String, database: String },
    /// `volume:<engine>/<volume>`, kind `volume_tar`.
    Volume { engine: String, volume: String },
    /// `files:<path>`, kind `files_tar`.
    Files { path: String },
}

impl Source {
    /// What "original" is, for messages.
    fn original(&self) -> String {
        match self {
            Source::Postgres { service, database } | Source::Mariadb { service, database } => {
                format!("database {database} of {service}")
            }
            Source::Volume { engine, volume } => format!("volume {volume} on {engine}"),
            Source::Files { path } => format!("{path} on the Opsdeck host"),
        }
    }

    /// Whether the dependents of something can be stopped: a database's
    /// service, a volume's users; host files belong to no service.
    fn has_dependents(&self) -> bool {
        !matches!(self, Source::Files { .. })
    }
}

/// Which artifacts can be restored, and from where: an error sentence for
/// the operator otherwise.
fn parse_source(kind: &str, source: &str) -> Result<Source, String> {
    let split = |prefix: &str, what: &str| {
        source
            .strip_prefix(prefix)
            .and_then(|s| s.split_once('/'))
            .filter(|(a, b)| !a.is_empty() && !b.is_empty())
            .map(|(a, b)| (a.to_owned(), b.to_owned()))
            .ok_or_else(|| format!("{source}: not a {prefix}{what} source"))
    };
    match kind {
        "pg_dump" => {
            let (service, database) = split("postgres:", "<service>/<database>")?;
            Ok(Source::Postgres { service, database })
        }
        "mysqldump" => {
            let (service, database) = split("mariadb:", "<service>/<database>")?;
            Ok(Source::Mariadb { service, database })
        }
        "volume_tar" => {
            let (engine, volume) = split("volume:", "<engine>/<volume>")?;
            Ok(Source::Volume { engine, volume })
        }
        "files_tar" => source
            .strip_prefix("files:")
            .filter(|p| p.starts_with('/'))
            .map(|p| Source::Files { path: p.to_owned() })
            .ok_or_else(|| format!("{source}: not a files:<absolute path> source")),
        "pg_globals" => Err(format!(
            "{source}: the globals (roles, tablespaces) are not restored by Opsdeck: they apply to \
             the whole server and partly exist already. Download the artifact and apply the \
             statements you need with psql"
        )),
        other => Err(format!(
            "{source}: artifacts of kind {other} cannot be restored by this version of Opsdeck"
        )),
    }
}

/// Checks the target name of a restore into a new place.
fn check_into(src: &Source, into: &RestoreInto) -> Result<(), String> {
    let RestoreInto::New { name } = into else {
        return Ok(());
    };
    let bad = |e: String| format!("into.new.name: {e}");
    match src {
        Source::Postgres { .. } => postgres::check_new_name(name).map_err(bad),
        Source::Mariadb { .. } => {
            if mariadb::valid_db_name(name)
                && !name.starts_with("opsdeck_verify_")
                && !["information_schema", "performance_schema", "mysql", "sys"]
                    .contains(&name.to_ascii_lowercase().as_str())
            {
                Ok(())
            } else {
                Err(bad(format!(
                    "\"{}\" is not a name for a new MariaDB database (at most 64 characters, no / \\ . or NUL, not a system or scratch database)",
                    name.escape_default()
                )))
            }
        }
        Source::Volume { .. } => {
            if volumes::valid_volume_name(name) && !name.starts_with("opsdeck-verify-") {
                Ok(())
            } else {
                Err(bad(format!(
                    "\"{}\" is not a name for a new volume ([A-Za-z0-9][A-Za-z0-9_.-]*, not opsdeck-verify-…)",
                    name.escape_default()
                )))
            }
        }
        Source::Files { .. } => files::check_path(name)
            .map(|_| ())
            .map_err(|e| bad(format!("{name}: {e}"))),
    }
}

// ------------------------------------------------------------ request

/// Checks a restore request and queues its run (in `tx`; the caller audits
/// and commits). Returns the run id.
pub async fn request(
    state: &AppState,
    tx: &mut PgConnection,
    backup: i64,
    req: &RestoreRequest,
    p: &Principal,
) -> ApiResult<(i64, String)> {
    let r = sqlx::query(
        "SELECT b.status, b.target_id, a.source, a.kind, a.status AS astatus
         FROM backups b LEFT JOIN backup_artifacts a ON a.backup_id = b.id AND a.idx = $2
         WHERE b.id = $1 AND b.deleted_at IS NULL",
    )
    .bind(backup)
    .bind(req.artifact)
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| ApiError::NotFound(format!("backup {backup}")))?;
    let status: String = r.get("status");
    if status != "succeeded" {
        return Err(ApiError::Conflict(format!(
            "backup {backup} is {status}; only succeeded backups can be restored"
        )));
    }
    let Some(source) = r.get::<Option<String>, _>("source") else {
        return Err(ApiError::NotFound(format!(
            "artifact {} of backup {backup}",
            req.artifact
        )));
    };
    if r.get::<Option<i64>, _>("target_id").is_none() {
        return Err(ApiError::Conflict(format!(
            "backup {backup}: its storage target was removed"
        )));
    }
    let astatus: String = r.get("astatus");
    if astatus != "stored" {
        return Err(ApiError::Conflict(format!(
            "artifact {} of backup {backup} is {astatus}; only stored artifacts can be restored",
            req.artifact
        )));
    }
    let kind: String = r.get("kind");
    let src = parse_source(&kind, &source).map_err(ApiError::Conflict)?;
    check_into(&src, &req.into).map_err(ApiError::BadRequest)?;
    if req.stop_dependents && !src.has_dependents() {
        return Err(ApiError::BadRequest(format!(
            "stop_dependents: {source} belongs to no service of the inventory"
        )));
    }
    let row: Option<(i64, Value)> = sqlx::query_as(
        "SELECT b.id, v.definition FROM runbooks b
         JOIN runbook_versions v ON v.runbook_id = b.id AND v.version = b.current_version
         WHERE b.name = $1",
    )
    .bind(RUNBOOK)
    .fetch_optional(&mut *tx)
    .await?;
    let (runbook_id, def) = row.ok_or_else(|| {
        ApiError::Conflict(format!(
            "the built-in runbook {RUNBOOK} is missing (it is seeded at start-up when absent)"
        ))
    })?;
    let def: RunbookDef = serde_json::from_value(def)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored definition: {e}")))?;
    if def.approval.as_ref().is_none_or(|a| a.required < 1) {
        return Err(ApiError::Conflict(format!(
            "the runbook {RUNBOOK} was changed to run without an approval; a restore always \
             needs a second person's approval: give it a runbook-level approval again"
        )));
    }
    let (into, name) = match &req.into {
        RestoreInto::Original => ("original", String::new()),
        RestoreInto::New { name } => ("new", name.clone()),
    };
    let params: BTreeMap<String, Value> = [
        ("backup".to_owned(), json!(backup)),
        ("artifact".to_owned(), json!(req.artifact)),
        ("into".to_owned(), json!(into)),
        ("name".to_owned(), json!(name)),
        (
            "stop_dependents".to_owned(),
            json!(if req.stop_dependents { "yes" } else { "no" }),
        ),
    ]
    .into();
    let what = match &req.into {
        RestoreInto::Original => format!("over the original ({})", src.original()),
        RestoreInto::New { name } => format!("into a new {name}"),
    };
    let run = enqueue(
        state,
        tx,
        NewRun {
            runbook_id,
            params,
            reason: format!(
                "restore of backup #{backup}, {source}, {what}{}",
                if req.stop_dependents {
                    ", stopping its dependents"
                } else {
                    ""
                }
            ),
            incident: None,
            requested_by: Actor::of(p),
            requested_by_user: Some(p.user_id),
            schedule_id: None,
            parent: None,
        },
    )
    .await?;
    Ok((run, source))
}

// ------------------------------------------------------------ the run

/// The run's parameters.
struct Params {
    backup: i64,
    artifact: i32,
    into: RestoreInto,
    stop_dependents: bool,
}

async fn params(cx: &StepCx<'_>, subject: &str) -> Result<Params, String> {
    let p: Value = sqlx::query_scalar("SELECT params FROM runs WHERE id = $1")
        .bind(cx.run_id)
        .fetch_one(&cx.state.pool)
        .await
        .map_err(|e| e.to_string())?;
    let int = |k: &str| p.get(k).and_then(Value::as_i64);
    let text = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default();
    let backup = int("backup").ok_or("the run has no backup parameter")?;
    if subject.parse::<i64>().ok() != Some(backup) {
        return Err(format!(
            "the step's subject \"{}\" is not the backup parameter ({backup})",
            subject.escape_default()
        ));
    }
    let artifact = int("artifact")
        .and_then(|a| i32::try_from(a).ok())
        .ok_or("the run has no artifact parameter")?;
    let into = match text("into") {
        "original" => RestoreInto::Original,
        "new" if !text("name").trim().is_empty() => RestoreInto::New {
            name: text("name").trim().to_owned(),
        },
        "new" => return Err("into new: give the new name (parameter name)".into()),
        other => {
            return Err(format!(
                "into \"{}\": original or new",
                other.escape_default()
            ))
        }
    };
    Ok(Params {
        backup,
        artifact,
        into,
        stop_dependents: text("stop_dependents") == "yes",
    })
}

/// The approvers of the run (someone other than the requester approved a
/// request of it), or an error: a restore never runs unapproved.
async fn approvers(cx: &StepCx<'_>) -> Result<Vec<String>, String> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT v.username FROM approvals a
         JOIN approval_votes v ON v.approval_id = a.id AND v.approve
         WHERE a.run_id = $1 AND a.status = 'approved'
           AND v.user_id IS DISTINCT FROM a.requested_by_id
         ORDER BY 1",
    )
    .bind(cx.run_id)
    .fetch_all(&cx.state.pool)
    .await
    .map_err(|e| e.to_string())?;
    if names.is_empty() {
        return Err(format!(
            "a restore needs a second person's approval and this run has none: the runbook \
             {RUNBOOK} was changed to run without one; give it a runbook-level approval again"
        ));
    }
    Ok(names)
}

/// The artifact and the backup it belongs to.
struct Art {
    plan_id: Option<i64>,
    plan: String,
    target_id: i64,
    source: String,
    kind: String,
    key: String,
    sha256: Option<String>,
    bytes: i64,
    stats: BTreeMap<String, i64>,
}

async fn artifact(state: &AppState, backup: i64, idx: i32) -> Result<Art, String> {
    let r = sqlx::query(
        "SELECT b.status, b.plan_id, b.plan_name, b.target_id, a.source, a.kind, a.object_key,
                a.sha256, a.bytes, a.stats, a.status AS astatus
         FROM backups b JOIN backup_artifacts a ON a.backup_id = b.id
         WHERE b.id = $1 AND a.idx = $2 AND b.deleted_at IS NULL",
    )
    .bind(backup)
    .bind(idx)
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("backup #{backup} has no artifact {idx} (or it was deleted)"))?;
    let status: String = r.get("status");
    let astatus: String = r.get("astatus");
    if status != "succeeded" || astatus != "stored" {
        return Err(format!(
            "backup #{backup} is {status} and its artifact {idx} {astatus}; only stored artifacts of succeeded backups are restored"
        ));
    }
    Ok(Art {
        plan_id: r.get("plan_id"),
        plan: r.get("plan_name"),
        target_id: r
            .get::<Option<i64>, _>("target_id")
            .ok_or_else(|| format!("backup #{backup}: its storage target was removed"))?,
        source: r.get("source"),
        kind: r.get("kind"),
        key: r.get("object_key"),
        sha256: r.get("sha256"),
        bytes: r.get("bytes"),
        stats: serde_json::from_value(r.get("stats")).unwrap_or_default(),
    })
}

/// The `backup` step with `op: restore` (`subject` = the backup id).
pub async fn step(cx: &StepCx<'_>, subject: &str) -> StepResult {
    let p = params(cx, subject).await?;
    let mut guard = Guard::new(cx, &p);
    let res = restore(cx, &p, &mut guard).await;
    // 5. Start again whatever was stopped, whatever happened.
    let started = guard.start_again(cx.out).await;
    let (outcome, detail, result) = match (res, started) {
        (Ok(mut v), Ok(started)) => {
            v["started"] = json!(started);
            (Outcome::Success, None, Ok(v))
        }
        (Ok(_), Err(e)) => {
            let e = format!("restored, but {e}");
            (Outcome::Failure, Some(e.clone()), Err(e))
        }
        (Err(e), Ok(_)) => (Outcome::Failure, Some(e.clone()), Err(e)),
        (Err(e), Err(e2)) => {
            let e = format!("{e}; and {e2}");
            (Outcome::Failure, Some(e.clone()), Err(e))
        }
    };
    guard.audit(cx.state, outcome, detail).await;
    result
}

/// Phases 1–4; the services stopped are in `guard`.
async fn restore(cx: &StepCx<'_>, p: &Params, guard: &mut Guard) -> StepResult {
    let state = cx.state;
    let approved_by = approvers(cx).await?;
    cx.out.line(format!(
        "restore of backup #{} artifact {}, approved by {}",
        p.backup,
        p.artifact,
        approved_by.join(", ")
    ));
    guard.params["approved_by"] = json!(approved_by);
    let a = artifact(state, p.backup, p.artifact).await?;
    guard.params["source"] = json!(a.source);
    let src = parse_source(&a.kind, &a.source)?;
    check_into(&src, &p.into)?;
    let store = store_of(state, a.target_id).await?;
    // Resolve the destination before reading anything: a wrong name fails
    // in a second, not after an hour of reading back.
    let dest = resolve(state, &src, &p.into).await?;

    // 1. Read back: checksum (and, for archives, every entry) first.
    check(cx, &store, &a).await?;

    // 2. Safety backup of what is there now.
    let safety = match dest.safety(state).await? {
        Some((label, kind, work, tool)) => {
            cx.out.line(format!(
                "2/5 safety backup of {} (as it is now)",
                dest.what()
            ));
            let id = safety_backup(cx, &a, &store, label, kind, work, tool)
                .await
                .map_err(|e| format!("the safety backup failed, so nothing was restored: {e}"))?;
            guard.params["safety_backup"] = json!(id);
            Some(id)
        }
        None => {
            cx.out.line(format!(
                "2/5 safety backup: not needed ({} {})",
                dest.what(),
                if dest.is_new() {
                    "is new"
                } else {
                    "does not exist"
                }
            ));
            None
        }
    };

    // 3. Stop the dependents.
    if p.stop_dependents {
        stop_dependents(cx, &src, guard).await?;
    } else {
        cx.out
            .line("3/5 dependents: left running (not asked to stop them)");
    }

    // 4. Restore.
    let started = Instant::now();
    cx.out.line(format!("4/5 restore into {}", dest.what()));
    let out = restore_into(cx, &store, &a, &dest).await?;
    cx.out.line(format!(
        "4/5 restore: done in {:.1} s",
        started.elapsed().as_secs_f64()
    ));
    let mut v = json!({
        "backup": p.backup,
        "artifact": p.artifact,
        "source": a.source,
        "into": dest.what(),
        "safety_backup": safety,
        "stopped": guard.stopped.iter().map(|s| &s.0).collect::<Vec<_>>(),
    });
    if let (Value::Object(m), Value::Object(o)) = (&mut v, out) {
        m.extend(o);
    }
    Ok(v)
}

/// Where a restore writes, resolved.
enum Dest {
    Postgres {
        t: PgTarget,
        service: String,
        db: String,
        new: bool,
    },
    Mariadb {
        t: MyTarget,
        service: String,
        db: String,
        new: bool,
    },
    Volume {
        engine: String,
        volume: String,
        new: bool,
        exists: bool,
    },
    Files {
        path: String,
        new: bool,
        exists: bool,
    },
}

impl Dest {
    fn what(&self) -> String {
        match self {
            Dest::Postgres { db, service, .. } | Dest::Mariadb { db, service, .. } => {
                format!("database {db} of {service}")
            }
            Dest::Volume { volume, engine, .. } => format!("volume {volume} on {engine}"),
            Dest::Files { path, .. } => path.clone(),
        }
    }

    fn is_new(&self) -> bool {
        match self {
            Dest::Postgres { new, .. }
            | Dest::Mariadb { new, .. }
            | Dest::Volume { new, .. }
            | Dest::Files { new, .. } => *new,
        }
    }

    /// What to back up before overwriting: (label, kind, work, tool), or
    /// nothing for a new destination or one that does not exist.
    async fn safety(
        &self,
        state: &AppState,
    ) -> Result<Option<(String, &'static str, Work, String)>, String> {
        Ok(match self {
            Dest::Postgres {
                t,
                service,
                db,
                new: false,
            } => Some((
                format!("postgres:{service}/{db}"),
                "pg_dump",
                Work::PgDump(t.clone(), db.clone()),
                postgres::tool_version().await,
            )),
            Dest::Mariadb {
                t,
                service,
                db,
                new: false,
            } => Some((
                format!("mariadb:{service}/{db}"),
                "mysqldump",
                Work::MyDump(t.clone(), db.clone()),
                mariadb::tool_version().await,
            )),
            Dest::Volume {
                engine,
                volume,
                new: false,
                exists: true,
            } => {
                let version = state
                    .engines
                    .by_name(engine)
                    .and_then(|c| c.status().version)
                    .unwrap_or_else(|| "version unknown".into());
                Some((
                    format!("volume:{engine}/{volume}"),
                    "volume_tar",
                    Work::Volume {
                        volume: volume.clone(),
                        engine: engine.clone(),
                    },
                    format!(
                        "Docker Engine {version} archive API, helper {}",
                        volumes::helper_image()
                    ),
                ))
            }
            Dest::Files {
                path,
                new: false,
                exists: true,
            } => Some((
                format!("files:{path}"),
                "files_tar",
                Work::Files { path: path.clone() },
                format!("tar (Opsdeck {})", env!("CARGO_PKG_VERSION")),
            )),
            _ => None,
        })
    }
}

/// The destination of a restore, checked: a new one must not exist, an
/// original database must (its dump restores into a database).
async fn resolve(state: &AppState, src: &Source, into: &RestoreInto) -> Result<Dest, String> {
    let (name, new) = match into {
        RestoreInto::Original => (None, false),
        RestoreInto::New { name } => (Some(name.clone()), true),
    };
    let gone =
        |what: String| format!("{what} no longer exists: restore into a new database of that name");
    let taken = |what: String| {
        format!("{what} already exists: pick another name, or restore over the original")
    };
    Ok(match src {
        Source::Postgres { service, database } => {
            let t = postgres::lookup(state, service).await?;
            let db = name.unwrap_or_else(|| database.clone());
            let exists = postgres::database_exists(&t, &db).await?;
            let what = format!("database {db} on {}:{}", t.host, t.port);
            match (new, exists) {
                (true, true) => return Err(taken(what)),
                (false, false) => return Err(gone(what)),
                _ => {}
            }
            Dest::Postgres {
                t,
                service: service.clone(),
                db,
                new,
            }
        }
        Source::Mariadb { service, database } => {
            let t = mariadb::lookup(state, service).await?;
            let db = name.unwrap_or_else(|| database.clone());
            let exists = mariadb::database_exists(&t, &db).await?;
            let what = format!("database {db} of {service}");
            match (new, exists) {
                (true, true) => return Err(taken(what)),
                (false, false) => return Err(gone(what)),
                _ => {}
            }
            Dest::Mariadb {
                t,
                service: service.clone(),
                db,
                new,
            }
        }
        Source::Volume { engine, volume } => {
            let volume = name.unwrap_or_else(|| volume.clone());
            let exists = volumes::exists(state, Some(engine), &volume).await?;
            if new && exists {
                return Err(format!(
                    "volume {volume} already exists on {engine}: pick another name, or restore over the original"
                ));
            }
            Dest::Volume {
                engine: engine.clone(),
                volume,
                new,
                exists,
            }
        }
        Source::Files { path } => {
            let path = name.unwrap_or_else(|| path.clone());
            let p = files::check_path(&path).map_err(|e| format!("{path}: {e}"))?;
            let exists = tokio::fs::symlink_metadata(&p).await.is_ok();
            if new && exists {
                return Err(format!(
                    "{} already exists: pick another path, or restore over the original",
                    p.display()
                ));
            }
            Dest::Files {
                path: p.to_string_lossy().into_owned(),
                new,
                exists,
            }
        }
    })
}

/// Counts the bytes and hashes them as they are read.
struct Hashing<R> {
    inner: R,
    hasher: Sha256,
    bytes: u64,
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let fresh = &buf.filled()[before..];
            self.bytes += fresh.len() as u64;
            let me = &mut *self;
            me.hasher.update(fresh);
        }
        r
    }
}

/// Phase 1: the stored object is read in full; its SHA-256 and size must
/// be the catalog's. An archive's entries are checked in the same read
/// (the rest of the object is read to its end for the checksum).
async fn check(cx: &StepCx<'_>, store: &Store, a: &Art) -> Result<(), String> {
    cx.out.line(format!("1/5 check: reading {} back", a.key));
    let file = store
        .read(&a.key)
        .await
        .map_err(|e| format!("{}: cannot read {}: {e:#}", a.source, a.key))?;
    let archive = a.kind.ends_with("_tar");
    let (sum, n, entries) = if archive {
        // The checker reads through a hashing reader; what it leaves
        // (padding after the end marker) is read to the end afterwards.
        let (tx, rx) = tokio::sync::oneshot::channel::<Hashing<ObjectReader>>();
        let reader = TakeBack {
            inner: Some(Hashing {
                inner: file,
                hasher: Sha256::new(),
                bytes: 0,
            }),
            back: Some(tx),
        };
        let top = match a.kind.as_str() {
            "volume_tar" => Some(volumes::TOP),
            _ => None,
        };
        let checked = archive::check_object(Box::new(reader), top).await;
        let mut h = rx
            .await
            .map_err(|_| format!("{}: reading back: the reader was lost", a.source))?;
        tokio::io::copy(&mut h, &mut tokio::io::sink())
            .await
            .map_err(|e| format!("{}: reading back: {e}", a.source))?;
        let sum = hex::encode(h.hasher.finalize());
        (sum, h.bytes, Some(checked))
    } else {
        let (sum, n) = pipeline::checksum(file)
            .await
            .map_err(|e| format!("{}: reading back: {e:#}", a.source))?;
        (sum, n, None)
    };
    if a.sha256.as_deref() != Some(sum.as_str()) || n as i64 != a.bytes {
        return Err(format!(
            "{}: checksum mismatch (stored {n} bytes, sha256 {}; catalog {} bytes, sha256 {}): \
             the stored object is not what was backed up; nothing was touched",
            a.source,
            &sum[..16.min(sum.len())],
            a.bytes,
            a.sha256
                .as_deref()
                .map(|w| &w[..16.min(w.len())])
                .unwrap_or("none")
        ));
    }
    cx.out.line(format!(
        "1/5 check: sha256 and size match the catalog ({})",
        human_bytes(n)
    ));
    if let Some(checked) = entries {
        let (stats, _) = checked.map_err(|e| {
            format!(
                "{}: the archive is refused, nothing was touched: {e}",
                a.source
            )
        })?;
        cx.out.line(format!(
            "1/5 check: every entry of the archive is safe to write ({} files, {} directories, {} links)",
            stats.files,
            stats.dirs,
            stats.symlinks + stats.hardlinks
        ));
    }
    Ok(())
}

/// Hands its reader back when dropped (after the archive check is done
/// with it), so the rest can be read for the checksum.
struct TakeBack<R> {
    inner: Option<R>,
    back: Option<tokio::sync::oneshot::Sender<R>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for TakeBack<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.inner.as_mut() {
            Some(r) => Pin::new(r).poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl<R> Drop for TakeBack<R> {
    fn drop(&mut self) {
        if let (Some(r), Some(tx)) = (self.inner.take(), self.back.take()) {
            let _ = tx.send(r);
        }
    }
}

/// Phase 4, per kind.
async fn restore_into(cx: &StepCx<'_>, store: &Store, a: &Art, dest: &Dest) -> StepResult {
    let open = || store.read(&a.key);
    match dest {
        Dest::Postgres { t, db, new, .. } => {
            let scrub = |m: String| postgres::scrub(t, m);
            if *new {
                postgres::create_new_database(t, db).await?;
                cx.out.line(format!(
                    "4/5 created database {db}; pg_restore into it (one transaction)"
                ));
            } else {
                cx.out.line(format!(
                    "4/5 pg_restore --clean --if-exists over database {db} (one transaction)"
                ));
            }
            let cmd = if *new {
                postgres::restore_new_cmd(t, db)
            } else {
                postgres::restore_over_cmd(t, db)
            };
            let res = feed(open, cmd, &scrub).await;
            if let Err(e) = res {
                let mut msg = format!(
                    "{}: the restore into database {db} failed (one transaction: nothing of it was kept): {e}",
                    a.source
                );
                if *new {
                    if let Err(d) = postgres::drop_new_database(t, db).await {
                        msg.push_str(&format!("; removing the new database {db} failed too: {d}"));
                    }
                }
                return Err(scrub(msg));
            }
            let got = postgres::row_counts(t, db).await;
            Ok(json!({ "database": db, "new": new, "counts": counts(cx, &a.stats, got) }))
        }
        Dest::Mariadb { t, db, new, .. } => {
            let scrub = |m: String| mariadb::scrub(t, m);
            if *new {
                mariadb::create_database(t, db, true).await?;
                cx.out
                    .line(format!("4/5 created database {db}; mariadb < dump"));
            } else {
                cx.out.line(format!(
                    "4/5 mariadb < dump over database {db} (its tables are dropped and created again)"
                ));
            }
            if let Err(e) = feed(open, mariadb::restore_cmd(t, db), &scrub).await {
                let mut msg = format!("{}: the restore into database {db} failed: {e}", a.source);
                if *new {
                    if let Err(d) = mariadb::drop_database(t, db, true).await {
                        msg.push_str(&format!("; removing the new database {db} failed too: {d}"));
                    }
                } else {
                    msg.push_str(" (MariaDB restores are not one transaction: the database may be half restored; the safety backup holds what was there before)");
                }
                return Err(scrub(msg));
            }
            let got = mariadb::row_counts(t, db).await;
            Ok(json!({ "database": db, "new": new, "counts": counts(cx, &a.stats, got) }))
        }
        Dest::Volume {
            engine,
            volume,
            new,
            exists,
        } => {
            cx.out.line(format!(
                "4/5 {} volume {volume}, then writing the checked entries",
                if *exists { "emptying" } else { "creating" }
            ));
            match volumes::restore(cx.state, Some(engine), volume, open).await {
                Ok(stats) => {
                    let got = Ok(stats.to_map());
                    Ok(json!({ "volume": volume, "engine": engine, "new": new,
                               "counts": counts(cx, &a.stats, got) }))
                }
                Err(e) => {
                    let mut msg =
                        format!("{}: the restore into volume {volume} failed: {e}", a.source);
                    if !*exists {
                        if let Err(d) = volumes::remove(cx.state, Some(engine), volume).await {
                            msg.push_str(&format!("; removing the new volume failed too: {d}"));
                        }
                    } else {
                        msg.push_str(" (the volume may be half restored; the safety backup holds what was there before)");
                    }
                    Err(msg)
                }
            }
        }
        Dest::Files { path, new, .. } => {
            cx.out.line(format!(
                "4/5 extracting into a staging copy next to {path}, then swapping it into place"
            ));
            let stats = files::restore(path, open)
                .await
                .map_err(|e| format!("{}: the restore into {path} failed: {e}", a.source))?;
            Ok(json!({ "path": path, "new": new,
                       "counts": counts(cx, &a.stats, Ok(stats.to_map())) }))
        }
    }
}

/// Decompresses the object into a tool's stdin.
async fn feed<F, Fut>(
    open: F,
    cmd: tokio::process::Command,
    scrub: &(dyn Fn(String) -> String + Sync),
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ObjectReader>>,
{
    let file = open()
        .await
        .map_err(|e| format!("reading the backup: {e:#}"))?;
    pipeline::restore_into(file, cmd, scrub)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Compares what was restored with the figures taken at dump time
/// (information only: a line on the output and in the result).
fn counts(
    cx: &StepCx<'_>,
    expected: &BTreeMap<String, i64>,
    got: Result<BTreeMap<String, i64>, String>,
) -> Value {
    match got {
        Ok(got) => {
            let differ: Vec<String> = expected
                .iter()
                .filter(|(k, n)| got.get(*k) != Some(*n))
                .map(|(k, n)| match got.get(k) {
                    Some(m) => format!("{k}: {m} now, {n} at dump time"),
                    None => format!("{k}: missing"),
                })
                .collect();
            if differ.is_empty() {
                cx.out.line(format!(
                    "4/5 restored: the {} figures taken at dump time match",
                    expected.len()
                ));
            } else {
                cx.out.line(format!(
                    "4/5 restored, but figures differ from those taken at dump time (taken a moment before the dump): {}",
                    differ.join("; ")
                ));
            }
            json!({ "checked": expected.len(), "differ": differ })
        }
        Err(e) => {
            cx.out.line(format!("4/5 restored; counting failed: {e}"));
            json!({ "error": e })
        }
    }
}

// ------------------------------------------------------------ safety backup

/// Backs up the destination as it is now into the plan and target of the
/// backup being restored (trigger `safety`; the backup run's own dump,
/// `run::dump_one`), reads it back and compares the checksum. Returns the
/// new backup's id. On failure its object is removed and it is marked
/// failed (no incident: the restore's run shows the failure).
async fn safety_backup(
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
            sqlx::query_scalar::<_, i32>("SELECT zstd_level FROM backup_plans WHERE id = $1")
                .bind(plan)
                .fetch_optional(&state.pool)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or(3)
        }
        None => 3,
    };
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO backups (plan_id, plan_name, target_id, run_id, trigger, requested_by, verification)
         VALUES ($1, $2, $3, $4, 'safety', $5, 'skipped') RETURNING id",
    )
    .bind(a.plan_id)
    .bind(&a.plan)
    .bind(a.target_id)
    .bind(cx.run_id)
    .bind(&cx.actor.name)
    .fetch_one(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    let art = Artifact::new(&a.plan, id, 0, label, kind);
    let key = art.key.clone();
    let res = async {
        let (bytes, raw) = dump_one(cx, id, store, &art, &work, level, &tool).await?;
        // Read back before anything is overwritten: this copy is the way back.
        let want: Option<String> = sqlx::query_scalar(
            "SELECT sha256 FROM backup_artifacts WHERE backup_id = $1 AND idx = 0",
        )
        .bind(id)
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
        let arts = super::model::artifacts(&mut tx, id)
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
        let done = sqlx::query(
            "UPDATE backups SET status = 'succeeded', finished_at = now(), bytes = $2, raw_bytes = $3,
                    manifest = $4
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(bytes as i64)
        .bind(raw as i64)
        .bind(manifest)
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
async fn fail_safety(
    state: &AppState,
    store: &Store,
    id: i64,
    key: &str,
    why: &str,
) -> anyhow::Result<()> {
    let mut tx = state.pool.begin().await?;
    let n = sqlx::query(
        "UPDATE backups SET status = 'failed', error = $2, finished_at = now()
         WHERE id = $1 AND status = 'running'",
    )
    .bind(id)
    .bind(why)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(());
    }
    sqlx::query(
        "UPDATE backup_artifacts SET status = 'failed', error = coalesce(error, $2) WHERE backup_id = $1",
    )
    .bind(id)
    .bind(why)
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

async fn audit_backup(
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

// ------------------------------------------------------------ dependents

/// The services to stop for a restore of `src`: a database's service's
/// transitive dependents; for a volume, the services whose containers use
/// it and their dependents.
async fn to_stop(cx: &StepCx<'_>, src: &Source) -> Result<(Vec<String>, String), String> {
    let state = cx.state;
    let mut conn = state.pool.acquire().await.map_err(|e| e.to_string())?;
    let snapshot = Snapshot::load(&mut conn).await.map_err(|e| e.to_string())?;
    drop(conn);
    let g = snapshot.graph().map_err(|e| e.to_string())?;
    let (set, why) = match src {
        Source::Postgres { service, .. } | Source::Mariadb { service, .. } => {
            let deps = g
                .impact(std::slice::from_ref(service))
                .map_err(|_| format!("service \"{service}\" is not in the inventory"))?;
            (deps, format!("the services that depend on {service}"))
        }
        Source::Volume { engine, volume } => {
            let (_, docker) = volumes::engine(state, Some(engine)).await?;
            let list = crate::docker::list::containers(
                &docker,
                crate::docker::list::ListBy::Volume(volume),
            )
            .await
            .map_err(|e| format!("listing the containers that use volume {volume}: {e:#}"))?;
            let ids: HashSet<String> = list
                .into_iter()
                .filter(|c| !c.labels.contains_key(crate::docker::volumes::HELPER_LABEL))
                .map(|c| c.id)
                .collect();
            let users: Vec<String> = crate::inventory::overview(&snapshot, &state.engines)
                .into_iter()
                .filter(|o| o.containers.iter().any(|c| ids.contains(&c.id)))
                .map(|o| o.service.name)
                .collect();
            let mut all = users.clone();
            all.extend(g.impact(&users).map_err(|e| e.to_string())?);
            (
                all,
                format!("the services that use volume {volume} and their dependents"),
            )
        }
        Source::Files { path } => {
            return Err(format!(
                "{path} belongs to no service: no dependents to stop"
            ))
        }
    };
    let order = g.stop_order(&set).map_err(|e| e.to_string())?;
    Ok((order, why))
}

/// Phase 3: stops the services of [`to_stop`] that run, dependents first;
/// each one stopped goes into the guard before the next is asked.
async fn stop_dependents(cx: &StepCx<'_>, src: &Source, guard: &mut Guard) -> Result<(), String> {
    let state = cx.state;
    let (order, why) = to_stop(cx, src).await?;
    if order.is_empty() {
        cx.out.line(format!("3/5 dependents: none ({why})"));
        return Ok(());
    }
    cx.out.line(format!(
        "3/5 stopping {why}, in this order: {}",
        order.join(", ")
    ));
    for name in order {
        let mut t = actions::service_target(state, &name)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        t.containers.retain(|c| c.state == "running");
        if t.containers.is_empty() {
            cx.out
                .line(format!("3/5 {name}: not running, left as it is"));
            continue;
        }
        let ids: HashSet<String> = t.containers.iter().map(|c| c.id.clone()).collect();
        let by = Invoker {
            actor: cx.actor.clone(),
            ctx: None,
        };
        let record = actions::run_service_action(
            state,
            &by,
            t,
            &ContainerActionRequest {
                action: ContainerActionKind::Stop,
                timeout_secs: None,
                signal: None,
                confirm: None,
            },
        )
        .await
        .map_err(|e| format!("stopping {name}: {e}"))?;
        // Even a partly failed stop may have stopped some: they are started
        // again (those still running are left alone then).
        guard.stopped.push((name.clone(), ids));
        guard.params["stopped"] = json!(guard.stopped.iter().map(|s| &s.0).collect::<Vec<_>>());
        if let Some(e) = record.error {
            return Err(format!(
                "stopping {name} failed, so nothing was restored: {e}"
            ));
        }
        cx.out.line(format!("3/5 {name}: stopped"));
    }
    Ok(())
}

/// Starts the given services again in dependency order, only the containers
/// that were stopped; a service whose dependency failed to start is left
/// stopped. Returns the services started, or what failed.
async fn start_services(
    state: &AppState,
    actor: &Actor,
    stopped: &[(String, HashSet<String>)],
    out: &Output,
) -> Result<Vec<String>, String> {
    let names: Vec<String> = stopped.iter().map(|s| s.0.clone()).collect();
    let mut conn = state.pool.acquire().await.map_err(|e| e.to_string())?;
    let snapshot = Snapshot::load(&mut conn).await.map_err(|e| e.to_string())?;
    drop(conn);
    // A service removed from the inventory meanwhile still gets started, last.
    let order = match snapshot.graph() {
        Ok(g) => {
            let known: Vec<String> = names.iter().filter(|n| g.contains(n)).cloned().collect();
            let mut o = g.start_order(&known).unwrap_or(known);
            o.extend(names.iter().filter(|n| !g.contains(n)).cloned());
            o.into_iter()
                .map(|n| {
                    let req = g.requires(&n);
                    (n, req)
                })
                .collect::<Vec<_>>()
        }
        Err(_) => names.iter().map(|n| (n.clone(), Vec::new())).collect(),
    };
    out.line(format!(
        "5/5 starting again in this order: {}",
        order
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let ids: HashMap<&str, &HashSet<String>> =
        stopped.iter().map(|s| (s.0.as_str(), &s.1)).collect();
    let mut failed: HashSet<String> = HashSet::new();
    let mut problems = Vec::new();
    let mut started = Vec::new();
    for (name, requires) in order {
        if requires.iter().any(|r| failed.contains(r)) {
            out.line(format!(
                "5/5 {name}: not started, a dependency failed to start"
            ));
            problems.push(format!("{name} was not started (a dependency failed)"));
            failed.insert(name);
            continue;
        }
        let res = async {
            let mut t = actions::service_target(state, &name)
                .await
                .map_err(|e| e.to_string())?;
            let want = ids.get(name.as_str()).copied();
            t.containers
                .retain(|c| want.is_some_and(|w| w.contains(&c.id)) && c.state != "running");
            if t.containers.is_empty() {
                return Ok(());
            }
            let by = Invoker {
                actor: actor.clone(),
                ctx: None,
            };
            let record = actions::run_service_action(
                state,
                &by,
                t,
                &ContainerActionRequest {
                    action: ContainerActionKind::Start,
                    timeout_secs: None,
                    signal: None,
                    confirm: None,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            match record.error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        .await;
        match res {
            Ok(()) => {
                out.line(format!("5/5 {name}: started"));
                started.push(name);
            }
            Err(e) => {
                out.line(format!("5/5 {name}: starting failed: {e}"));
                problems.push(format!("starting {name} failed: {e}"));
                failed.insert(name);
            }
        }
    }
    if problems.is_empty() {
        Ok(started)
    } else {
        Err(problems.join("; "))
    }
}

/// What phase 5 and the audit entry need, also when the step is dropped
/// halfway (cancel, timeout, lost lease): then the stopped services are
/// started again and the failure is audited from a detached task.
struct Guard {
    state: AppState,
    actor: Actor,
    out: Output,
    backup: i64,
    params: Value,
    /// (service, the ids of its containers that ran before the stop), in
    /// stop order.
    stopped: Vec<(String, HashSet<String>)>,
    done: bool,
}

impl Guard {
    fn new(cx: &StepCx<'_>, p: &Params) -> Guard {
        Guard {
            state: cx.state.clone(),
            actor: cx.actor.clone(),
            out: cx.out.handle(),
            backup: p.backup,
            params: json!({
                "run": cx.run_id,
                "artifact": p.artifact,
                "into": p.into,
                "stop_dependents": p.stop_dependents,
            }),
            stopped: Vec::new(),
            done: false,
        }
    }

    async fn start_again(&mut self, out: &Output) -> Result<Vec<String>, String> {
        if self.stopped.is_empty() {
            if self.params["stop_dependents"] == json!(true) {
                out.line("5/5 nothing to start again");
            }
            return Ok(Vec::new());
        }
        let stopped = std::mem::take(&mut self.stopped);
        start_services(&self.state, &self.actor, &stopped, out).await
    }

    async fn audit(mut self, state: &AppState, outcome: Outcome, detail: Option<String>) {
        self.done = true;
        record_result(
            state,
            &self.actor,
            self.backup,
            &self.params,
            outcome,
            detail,
        )
        .await;
    }
}

async fn record_result(
    state: &AppState,
    actor: &Actor,
    backup: i64,
    params: &Value,
    outcome: Outcome,
    detail: Option<String>,
) {
    let res = async {
        let mut conn = state.pool.acquire().await?;
        audit::record(
            &mut conn,
            NewEntry {
                actor: actor.clone(),
                action: "backup.restored".into(),
                target: Some(format!("backup:{backup}")),
                params: params.clone(),
                source: None,
                outcome,
                detail,
            },
        )
        .await
    }
    .await;
    if let Err(e) = res {
        tracing::warn!(backup, error = %e, "auditing a restore");
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let state = self.state.clone();
        let actor = self.actor.clone();
        let out = self.out.handle();
        let backup = self.backup;
        let params = self.params.clone();
        let stopped = std::mem::take(&mut self.stopped);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let mut why =
                "the run stopped (cancelled, timed out or its lease lost) before the restore finished"
                    .to_owned();
            if !stopped.is_empty() {
                if let Err(e) = start_services(&state, &actor, &stopped, &out).await {
                    tracing::warn!(backup, error = %e, "starting services again after a stopped restore");
                    why.push_str(&format!("; {e}"));
                }
            }
            record_result(&state, &actor, backup, &params, Outcome::Failure, Some(why)).await;
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_dumps_restore_and_globals_do_not() {
        assert_eq!(
            parse_source("pg_dump", "postgres:ledger/my/db").unwrap(),
            Source::Postgres {
                service: "ledger".into(),
                database: "my/db".into()
            }
        );
        assert!(parse_source("pg_dump", "mariadb:x/y").is_err());
        let e = parse_source("pg_globals", "postgres:ledger/globals").unwrap_err();
        assert!(e.contains("psql"), "{e}");
        let e = parse_source("martian", "x").unwrap_err();
        assert!(e.contains("kind martian"), "{e}");
        assert_eq!(
            parse_source("mysqldump", "mariadb:wiki/bookstack").unwrap(),
            Source::Mariadb {
                service: "wiki".into(),
                database: "bookstack".into()
            }
        );
        assert_eq!(
            parse_source("volume_tar", "volume:main/pgdata").unwrap(),
            Source::Volume {
                engine: "main".into(),
                volume: "pgdata".into()
            }
        );
        assert_eq!(
            parse_source("files_tar", "files:/etc/nginx").unwrap(),
            Source::Files {
                path: "/etc/nginx".into()
            }
        );
        assert!(parse_source("files_tar", "files:etc").is_err());
        assert!(parse_source("volume_tar", "volume:/x").is_err());
        assert!(!parse_source("files_tar", "files:/srv")
            .unwrap()
            .has_dependents());
    }

    #[test]
    fn new_names_follow_each_kind() {
        let new = |n: &str| RestoreInto::New { name: n.into() };
        let my = parse_source("mysqldump", "mariadb:wiki/bookstack").unwrap();
        assert!(check_into(&my, &new("Bookstack_Copy")).is_ok());
        for bad in ["", "a/b", "a.b", "mysql", "opsdeck_verify_x"] {
            assert!(check_into(&my, &new(bad)).is_err(), "{bad}");
        }
        let vol = parse_source("volume_tar", "volume:main/pgdata").unwrap();
        assert!(check_into(&vol, &new("pgdata-restored")).is_ok());
        for bad in ["", "-x", "a/b", "opsdeck-verify-1-2"] {
            assert!(check_into(&vol, &new(bad)).is_err(), "{bad}");
        }
        let f = parse_source("files_tar", "files:/etc/nginx").unwrap();
        assert!(check_into(&f, &new("/srv/nginx-restored")).is_ok());
        for bad in ["relative", "/", "/etc/../root"] {
            assert!(check_into(&f, &new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn new_database_names_are_checked() {
        let src = parse_source("pg_dump", "postgres:ledger/ledger").unwrap();
        assert!(check_into(&src, &RestoreInto::Original).is_ok());
        assert!(check_into(
            &src,
            &RestoreInto::New {
                name: "ledger_copy".into()
            }
        )
        .is_ok());
        for bad in [
            "",
            "Ledger",
            "1abc",
            "a-b",
            "a b",
            "opsdeck_verify_1",
            &"a".repeat(64),
        ] {
            assert!(
                check_into(&src, &RestoreInto::New { name: bad.into() }).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn postgres_restores_run_in_one_transaction_without_the_password_on_argv() {
        let t = PgTarget {
            host: "db.internal".into(),
            port: 5433,
            user: "backup".into(),
            database: "postgres".into(),
            password: Some("s3cr3t-pw".into()),
            ssl_mode: Some("require".into()),
            ssl_root_cert: None,
        };
        let argv = |c: &tokio::process::Command| -> Vec<String> {
            c.as_std()
                .get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect()
        };
        let env = |c: &tokio::process::Command, k: &str| {
            c.as_std()
                .get_envs()
                .find(|(n, _)| *n == std::ffi::OsStr::new(k))
                .and_then(|(_, v)| v.map(|v| v.to_string_lossy().into_owned()))
        };
        let over = postgres::restore_over_cmd(&t, "ledger");
        let a = argv(&over);
        for f in [
            "--clean",
            "--if-exists",
            "--single-transaction",
            "--exit-on-error",
        ] {
            assert!(a.contains(&f.to_string()), "{f}: {a:?}");
        }
        assert!(
            !a.contains(&"--no-owner".to_string()),
            "owners as backed up"
        );
        assert_eq!(a[a.len() - 2..], ["-d", "dbname='ledger'"]);
        let new = postgres::restore_new_cmd(&t, "ledger_copy");
        let n = argv(&new);
        for f in ["--no-owner", "--no-privileges", "--single-transaction"] {
            assert!(n.contains(&f.to_string()), "{f}: {n:?}");
        }
        assert!(!n.contains(&"--clean".to_string()));
        for c in [&over, &new] {
            assert!(argv(c).iter().all(|a| !a.contains("s3cr3t")));
            assert_eq!(env(c, "PGPASSWORD").as_deref(), Some("s3cr3t-pw"));
            assert_eq!(env(c, "PGOPTIONS").as_deref(), Some("-c lock_timeout=60s"));
        }
    }

    #[test]
    fn the_restore_runbook_always_asks_for_an_approval() {
        let d = crate::runbooks::builtins::all()
            .into_iter()
            .find(|d| d.name == RUNBOOK)
            .expect("the built-in restore runbook");
        let a = d.approval.expect("a runbook-level approval");
        assert!(a.required >= 1);
        assert!(
            d.target_param.is_none() && !d.allow_parallel,
            "one at a time"
        );
        let names: Vec<&str> = d.params.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            ["backup", "artifact", "into", "name", "stop_dependents"]
        );
        assert!(matches!(
            &d.steps[0].action,
            opsdeck_wire::StepAction::Backup { op, .. } if op == "restore"
        ));
    }
}
