//! Runs as operators see and steer them: the run page, the run list, and
//! the operator's acts on a run (cancel, resume from the first step that
//! did not succeed, close an interrupted run, tick off a manual step), plus
//! the dry run's plan.
//!
//! Each act locks the run, checks its state, changes it, and writes its
//! timeline event and audit entry in the same transaction. Starting a run
//! is the engine's `enqueue`; [`audit_start`] records it. Errors are
//! [`RunbookError`]; the SQL is in [`super::store`].

use opsdeck_wire::{
    DryRun, PlannedStep, Role, Run, RunStatus, RunStep, RunSummary, StartRun, StepAction,
    StepStatus,
};
use serde_json::{json, Value};

use super::def::{self, Scope};
use super::error::{RunbookError, RunbookResult};
use super::store::{self, RunDetailRow, RunRow};
use super::{approvals, engine, library, steps};
use crate::audit::Actor;
use crate::auth::{Principal, RequestCtx};
use crate::state::AppState;
use crate::timeline;

fn status(s: &str) -> RunbookResult<RunStatus> {
    RunStatus::parse(s).ok_or_else(|| RunbookError::stored(format_args!("run status {s}")))
}

/// The list's view of a run row.
pub fn summary(r: RunRow) -> RunbookResult<RunSummary> {
    Ok(RunSummary {
        status: status(&r.status)?,
        id: r.id,
        runbook_id: r.runbook_id,
        runbook: r.runbook,
        title: r.title,
        version: r.version,
        target: r.target,
        requested_by: r.requested_by,
        reason: r.reason,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        schedule_id: r.schedule_id,
        done_steps: r.done_steps,
        total_steps: r.total_steps,
    })
}

/// Loads a run for the run page (`me` decides which approvals it may vote on).
pub async fn load(state: &AppState, id: i64, me: Option<&Principal>) -> RunbookResult<Run> {
    let mut conn = state.pool.acquire().await?;
    let r: RunDetailRow = store::run(&mut conn, id)
        .await?
        .ok_or_else(|| RunbookError::NotFound(format!("run {id}")))?;
    let hide = !can_read_output(me);
    let steps = store::steps(&mut conn, id)
        .await?
        .into_iter()
        .map(|s| {
            let hidden = hide && OUTPUT_FOR_OPERATORS.contains(&s.kind.as_str());
            RunStep {
                status: StepStatus::parse(&s.status).unwrap_or(StepStatus::Pending),
                idx: s.idx,
                name: s.name,
                title: s.title,
                kind: s.kind,
                phase: s.phase,
                started_at: s.started_at,
                finished_at: s.finished_at,
                output: if hidden { String::new() } else { s.output },
                output_truncated: s.output_truncated && !hidden,
                output_hidden: hidden,
                result: if hidden { Value::Null } else { s.result },
                error: s.error,
                note: s.note,
            }
        })
        .collect();
    let approvals = approvals::for_run(&mut conn, id, me).await?;
    let timeline = timeline::list(&mut conn, "run", id).await?;
    let summary = summary(RunRow {
        id: r.id,
        runbook_id: r.runbook_id,
        runbook: r.runbook,
        title: r.title,
        version: r.version,
        status: r.status,
        target: r.target,
        requested_by: r.requested_by,
        reason: r.reason,
        created_at: r.created_at,
        started_at: r.started_at,
        finished_at: r.finished_at,
        schedule_id: r.schedule_id,
        done_steps: r.done_steps,
        total_steps: r.total_steps,
    })?;
    Ok(Run {
        summary,
        params: serde_json::from_value(r.params).unwrap_or_default(),
        incident: r.incident,
        parent_run_id: r.parent_run_id,
        error: r.error,
        closed_by: r.closed_by,
        cancel_requested: r.cancel_requested,
        binding: hex::encode(r.binding),
        steps,
        approvals,
        timeline,
    })
}

/// Step kinds whose output and result only operators and above read: they
/// carry container logs, command output, query results and HTTP answers,
/// which are operator-only elsewhere (`GET /services/{id}/logs`, exec).
/// Viewers see these steps' status, timing and error line.
pub const OUTPUT_FOR_OPERATORS: &[&str] = &["logs", "exec", "database", "http"];

/// Whether `me` may read the output of [`OUTPUT_FOR_OPERATORS`] steps
/// (nobody known: no).
pub fn can_read_output(me: Option<&Principal>) -> bool {
    me.is_some_and(|p| p.role >= Role::Operator)
}

/// Runs, newest first (`limit` defaults to 100, clamped to 1–500).
pub async fn list(
    state: &AppState,
    runbook: Option<i64>,
    status_filter: Option<&str>,
    limit: Option<i64>,
) -> RunbookResult<Vec<RunSummary>> {
    if let Some(s) = status_filter {
        if RunStatus::parse(s).is_none() {
            return Err(RunbookError::Invalid(
                "status: queued, running, waiting, succeeded, failed, cancelled or interrupted"
                    .into(),
            ));
        }
    }
    let limit = limit.unwrap_or(100).clamp(1, 500);
    store::runs(&state.pool, runbook, status_filter, limit)
        .await?
        .into_iter()
        .map(summary)
        .collect()
}

/// Audits a run just enqueued on `tx` as `run.start`, commits and tells
/// the live views; the run.
pub async fn audit_start(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    mut tx: sqlx::Transaction<'_, sqlx::Postgres>,
    (id, runbook_id): (i64, i64),
    params: Value,
    rerun_of: Option<i64>,
) -> RunbookResult<Run> {
    ctx.audit(
        &mut tx,
        p,
        "run.start",
        Some(format!("run:{id}")),
        json!({"runbook_id": runbook_id, "params": params, "rerun_of": rerun_of}),
    )
    .await?;
    crate::runbooks::engine::announce(&mut *tx, id).await?;
    ctx.commit(tx).await?;
    state.runs().changed_here(id);
    load(state, id, Some(p)).await
}

/// The start request that re-runs run `id`: same runbook, parameters and
/// incident; its reason says what it repeats. Returns (runbook, request).
pub async fn rerun_request(state: &AppState, id: i64) -> RunbookResult<(i64, StartRun)> {
    let (runbook, params, reason, incident) = store::rerun_source(&state.pool, id)
        .await?
        .ok_or_else(|| RunbookError::NotFound(format!("run {id}")))?;
    Ok((
        runbook,
        StartRun {
            params: serde_json::from_value(params).unwrap_or_default(),
            reason: if reason.is_empty() {
                format!("re-run of #{id}")
            } else {
                format!("re-run of #{id}: {reason}")
            },
            incident,
        },
    ))
}

async fn lock(
    conn: &mut sqlx::PgConnection,
    id: i64,
) -> RunbookResult<(RunStatus, Option<String>)> {
    let (s, closed) = store::lock_run(conn, id)
        .await?
        .ok_or_else(|| RunbookError::NotFound(format!("run {id}")))?;
    Ok((status(&s)?, closed))
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
/// `tx`, commit, the live update; the run.
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
) -> RunbookResult<Run> {
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
    crate::runbooks::engine::announce(&mut *tx, id).await?;
    ctx.commit(tx).await?;
    state.runs().changed_here(id);
    load(state, id, Some(p)).await
}

/// Cancels a run: a queued or waiting run ends at once; a running one
/// stops at its current step.
pub async fn cancel(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
) -> RunbookResult<Run> {
    let mut tx = state.pool.begin().await?;
    let (status, _) = lock(&mut tx, id).await?;
    let mut withdrawn = false;
    let event = match status {
        RunStatus::Queued | RunStatus::Waiting => {
            withdrawn =
                engine::withdraw(&mut tx, id, &format!("cancelled by {}", p.username)).await?;
            ("run.cancelled", format!("Cancelled by {}", p.username))
        }
        RunStatus::Running => {
            store::request_cancel(&mut tx, id).await?;
            (
                "run.cancel_requested",
                format!(
                    "Cancel requested by {}; the current step is stopped",
                    p.username
                ),
            )
        }
        other => {
            return Err(RunbookError::Conflict(format!(
                "run {id} is {}; only queued, waiting or running runs can be cancelled",
                other.as_str()
            )))
        }
    };
    // A run held by this process stops at once; elsewhere at its next
    // heartbeat.
    state.runs().cancel_local(id);
    let answer = record_act(
        state,
        ctx,
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

/// Resumes a failed or interrupted run from the first main step that did
/// not succeed. Another active run on the same target makes it a conflict
/// (`runs_one_active_per_target`, mapped in `crate::error`).
pub async fn resume(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
) -> RunbookResult<Run> {
    let mut tx = state.pool.begin().await?;
    let (status, closed) = lock(&mut tx, id).await?;
    if !matches!(status, RunStatus::Failed | RunStatus::Interrupted) || closed.is_some() {
        return Err(RunbookError::Conflict(format!(
            "run {id} is {}{}; only failed or interrupted runs that were not closed can be resumed",
            status.as_str(),
            if closed.is_some() { " and closed" } else { "" }
        )));
    }
    let Some(from) = store::first_unfinished_step(&mut tx, id).await? else {
        return Err(RunbookError::Conflict(format!(
            "every step of run {id} finished; re-run it instead"
        )));
    };
    // Steps after `from` that were skipped because the run ended run again.
    store::requeue_from(&mut tx, id, from).await?;
    record_act(
        state,
        ctx,
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

/// Closes an interrupted run without resuming it.
pub async fn close(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
    note: &str,
) -> RunbookResult<Run> {
    if note.len() > 2000 {
        return Err(RunbookError::Invalid(
            "note: at most 2000 characters".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let (status, closed) = lock(&mut tx, id).await?;
    if status != RunStatus::Interrupted || closed.is_some() {
        return Err(RunbookError::Conflict(format!(
            "run {id} is {}{}; only an open interrupted run can be closed",
            status.as_str(),
            if closed.is_some() {
                " and already closed"
            } else {
                ""
            }
        )));
    }
    store::close(&mut tx, id, &p.username).await?;
    let note = note.trim();
    record_act(
        state,
        ctx,
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

/// Ticks off the manual step `idx` the run is waiting on.
pub async fn complete_step(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    (id, idx): (i64, i32),
    note: &str,
) -> RunbookResult<Run> {
    let note = note.trim().to_owned();
    if note.len() > 4000 {
        return Err(RunbookError::Invalid(
            "note: at most 4000 characters".into(),
        ));
    }
    let mut tx = state.pool.begin().await?;
    let (status, _) = lock(&mut tx, id).await?;
    let (kind, step_status, name) = store::lock_step(&mut tx, id, idx)
        .await?
        .ok_or_else(|| RunbookError::NotFound(format!("step {idx} of run {id}")))?;
    if kind != "manual" || step_status != "waiting" || status != RunStatus::Waiting {
        return Err(RunbookError::Conflict(format!(
            "step {} ({name}) is not a manual step waiting to be ticked off",
            idx + 1
        )));
    }
    store::tick_step(
        &mut tx,
        id,
        idx,
        if note.is_empty() { None } else { Some(&note) },
        json!({"by": p.username, "note": note}),
        &format!("ticked off by {}{}\n", p.username, with_note(&note)),
    )
    .await?;
    record_act(
        state,
        ctx,
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

/// What each step of runbook `id` would do now, without doing it (audited
/// as `runbook.dry_run`).
pub async fn dry_run(
    state: &AppState,
    ctx: &RequestCtx,
    p: &Principal,
    id: i64,
    req: &StartRun,
) -> RunbookResult<DryRun> {
    let mut conn = state.pool.acquire().await?;
    let rb = library::load(&mut conn, id).await?;
    let world = engine::load_world(state, &mut conn).await?;
    drop(conn);
    let d = &rb.definition;
    let params = def::check_params(d, &req.params, &world).map_err(RunbookError::Invalid)?;
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
                let mut description = steps::describe(state, &a).await;
                let by_kind = match steps::kind_gate(state, &a).await {
                    steps::KindGate::Policy(k) => {
                        engine::action_policy(&state.pool, &k).await?.is_some()
                    }
                    steps::KindGate::Waived { kind, reason } => {
                        if engine::action_policy(&state.pool, &kind).await?.is_some() {
                            description = format!("{description}. {reason}");
                        }
                        false
                    }
                    steps::KindGate::Free => false,
                };
                (
                    description,
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
        p,
        "runbook.dry_run",
        Some(format!("runbook:{}", rb.name)),
        json!({"params": params}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(DryRun {
        runbook: rb.name,
        version: rb.version,
        target: def::target(d, &params),
        needs_approval: d.approval.is_some(),
        steps: planned,
    })
}
