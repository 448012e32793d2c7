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
use sqlx::PgConnection;

use super::archive;
use super::catalog::BackupError;
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
use crate::inventory::Snapshot;
use crate::runbooks::engine::NewRun;
use crate::runbooks::output::Output;
use crate::runbooks::steps::StepCx;
use crate::state::AppState;

mod dependents;
mod safety;
mod write;

use dependents::*;
use safety::*;
use write::*;

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

/// Checks a restore request (in `tx`) and returns the run to queue and
/// the artifact's source; the caller queues the run, audits and commits.
pub async fn request(
    tx: &mut PgConnection,
    backup: i64,
    req: &RestoreRequest,
    p: &Principal,
) -> Result<(NewRun, String), BackupError> {
    let r = sqlx::query!(
        r#"SELECT b.status, b.target_id, a.source AS "source?", a.kind AS "kind?",
                  a.status AS "astatus?"
           FROM backups b LEFT JOIN backup_artifacts a ON a.backup_id = b.id AND a.idx = $2
           WHERE b.id = $1 AND b.deleted_at IS NULL"#,
        backup,
        req.artifact
    )
    .fetch_optional(&mut *tx)
    .await?
    .ok_or_else(|| BackupError::NotFound(format!("backup {backup}")))?;
    let status = r.status;
    if status != "succeeded" {
        return Err(BackupError::Conflict(format!(
            "backup {backup} is {status}; only succeeded backups can be restored"
        )));
    }
    let Some(source) = r.source else {
        return Err(BackupError::NotFound(format!(
            "artifact {} of backup {backup}",
            req.artifact
        )));
    };
    if r.target_id.is_none() {
        return Err(BackupError::Conflict(format!(
            "backup {backup}: its storage target was removed"
        )));
    }
    let astatus = r.astatus.unwrap_or_default();
    if astatus != "stored" {
        return Err(BackupError::Conflict(format!(
            "artifact {} of backup {backup} is {astatus}; only stored artifacts can be restored",
            req.artifact
        )));
    }
    let kind = r.kind.unwrap_or_default();
    let src = parse_source(&kind, &source).map_err(BackupError::Conflict)?;
    check_into(&src, &req.into).map_err(BackupError::Invalid)?;
    if req.stop_dependents && !src.has_dependents() {
        return Err(BackupError::Invalid(format!(
            "stop_dependents: {source} belongs to no service of the inventory"
        )));
    }
    let row = sqlx::query!(
        "SELECT b.id, v.definition FROM runbooks b
         JOIN runbook_versions v ON v.runbook_id = b.id AND v.version = b.current_version
         WHERE b.name = $1",
        RUNBOOK
    )
    .fetch_optional(&mut *tx)
    .await?;
    let (runbook_id, def) = row
        .map(|r| (r.id, r.definition))
        .ok_or_else(|| super::catalog::missing_runbook(RUNBOOK))?;
    let def: RunbookDef =
        serde_json::from_value(def).map_err(|e| anyhow::anyhow!("stored definition: {e}"))?;
    if def.approval.as_ref().is_none_or(|a| a.required < 1) {
        return Err(BackupError::Conflict(format!(
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
    let run = NewRun {
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
    };
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
    let p: Value = sqlx::query_scalar!("SELECT params FROM runs WHERE id = $1", cx.run_id)
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
    let names: Vec<String> = sqlx::query_scalar!(
        "SELECT DISTINCT v.username FROM approvals a
         JOIN approval_votes v ON v.approval_id = a.id AND v.approve
         WHERE a.run_id = $1 AND a.status = 'approved'
           AND v.user_id IS DISTINCT FROM a.requested_by_id
         ORDER BY 1",
        cx.run_id
    )
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
    let r = sqlx::query!(
        "SELECT b.status, b.plan_id, b.plan_name, b.target_id, a.source, a.kind, a.object_key,
                a.sha256, a.bytes, a.stats, a.status AS astatus
         FROM backups b JOIN backup_artifacts a ON a.backup_id = b.id
         WHERE b.id = $1 AND a.idx = $2 AND b.deleted_at IS NULL",
        backup,
        idx
    )
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?
    .ok_or_else(|| format!("backup #{backup} has no artifact {idx} (or it was deleted)"))?;
    let (status, astatus) = (r.status, r.astatus);
    if status != "succeeded" || astatus != "stored" {
        return Err(format!(
            "backup #{backup} is {status} and its artifact {idx} {astatus}; only stored artifacts of succeeded backups are restored"
        ));
    }
    Ok(Art {
        plan_id: r.plan_id,
        plan: r.plan_name,
        target_id: r
            .target_id
            .ok_or_else(|| format!("backup #{backup}: its storage target was removed"))?,
        source: r.source,
        kind: r.kind,
        key: r.object_key,
        sha256: r.sha256,
        bytes: r.bytes,
        stats: serde_json::from_value(r.stats).unwrap_or_default(),
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
