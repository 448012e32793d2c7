//! The run engine: Opsdeck's one job/lease model.
//!
//! A run is a row in `runs`. Every server process runs a [`RunEngine`]:
//!
//! * **Claim**: `queued` rows are claimed with `FOR UPDATE SKIP LOCKED`,
//!   turning them `running` with `lease_owner` = this process and
//!   `lease_until` = now + lease. Two processes never claim the same run.
//! * **Heartbeat**: every third of the lease the owner renews all its runs in
//!   one statement; the answer also carries cancel requests. A run the
//!   renewal no longer returns was taken away (its lease ran out): its task
//!   stops without writing.
//! * **Reap**: every process turns `running` rows whose lease ran out into
//!   `interrupted` (their running step too), with a timeline event and an
//!   audit entry. Nothing is marked succeeded that did not finish; an
//!   operator resumes or closes the run.
//! * **Park**: a run waiting for approvals, a manual tick or a child run is
//!   `waiting` and holds no lease; the API (vote, tick) or the child's end
//!   re-queues it, and the next claim continues at `next_step`.
//!
//! Every write of a claimed run is guarded by `lease_owner = me`, so a
//! process that lost its lease cannot overwrite what another recorded.
//! Each executed step writes its result, its audit entry and its timeline
//! event in one transaction.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opsdeck_wire::{
    ApprovalPolicy, OnFailure, Role, RunStatus, RunbookDef, StepAction, StepDef, StepStatus,
};
use serde_json::{json, Value};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::{broadcast, Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use super::def::{self, Scope};
use super::output::Output;
use super::steps::{self, StepCx};
use crate::audit::{self, Actor};
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use crate::timeline;

/// Runs one process executes at once.
pub const MAX_CONCURRENT_RUNS: usize = 64;
/// How often live output is written while a step runs.
const FLUSH_EVERY: Duration = Duration::from_millis(300);
/// The `LISTEN` channel: run ids that were queued or changed.
pub const CHANNEL: &str = "opsdeck_runs";

/// Why a run's task stops early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Cancel,
    LeaseLost,
}

struct Handle {
    token: CancellationToken,
    why: Mutex<Option<Stop>>,
}

impl Handle {
    fn stop(&self, why: Stop) {
        let mut w = self.why.lock().unwrap_or_else(|e| e.into_inner());
        w.get_or_insert(why);
        self.token.cancel();
    }
    fn why(&self) -> Option<Stop> {
        *self.why.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The per-process engine.
pub struct RunEngine {
    pool: PgPool,
    owner: String,
    lease: Duration,
    wake: Notify,
    handles: Mutex<HashMap<i64, Arc<Handle>>>,
    changes: broadcast::Sender<i64>,
    slots: Arc<Semaphore>,
    metrics: Arc<crate::metrics::Metrics>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl RunEngine {
    pub fn new(
        pool: PgPool,
        lease: Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<RunEngine> {
        Arc::new(RunEngine {
            pool,
            owner: Uuid::new_v4().to_string(),
            lease,
            wake: Notify::new(),
            handles: Mutex::new(HashMap::new()),
            changes: broadcast::channel(1024).0,
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_RUNS)),
            metrics,
        })
    }

    /// This process's lease owner id.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Run ids that changed (this process's writes and other processes'
    /// notifications); live views refetch on them.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.changes.subscribe()
    }

    /// Announces a change of a run to live views here and in other
    /// processes, and wakes claimers.
    pub async fn changed(&self, run_id: i64) {
        let _ = self.changes.send(run_id);
        self.wake.notify_one();
        let _ = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(run_id.to_string())
            .execute(&self.pool)
            .await;
    }

    /// Asks the task running `run_id` in this process to stop (cancel).
    pub fn cancel_local(&self, run_id: i64) {
        if let Some(h) = lock(&self.handles).get(&run_id) {
            h.stop(Stop::Cancel);
        }
    }

    /// Starts the claim loop, the heartbeat and the reaper; other processes'
    /// notifications arrive through [`crate::fanout`] ([`Self::notified`]).
    /// They end when `closed` completes.
    pub fn start(
        self: &Arc<Self>,
        state: AppState,
        closed: impl std::future::Future<Output = ()> + Send + 'static,
    ) {
        let stop = CancellationToken::new();
        {
            let stop = stop.clone();
            tokio::spawn(async move {
                closed.await;
                stop.cancel();
            });
        }
        tokio::spawn(self.clone().claim_loop(state.clone(), stop.clone()));
        tokio::spawn(self.clone().heartbeat_loop(stop.clone()));
        tokio::spawn(self.clone().reap_loop(stop));
    }

    /// A notification on [`CHANNEL`] (delivered by [`crate::fanout`]): the
    /// payload is the id of the run that changed (live views refetch it);
    /// any notification wakes the claimers, since it may be a new run.
    pub fn notified(&self, payload: &str) {
        if let Ok(id) = payload.parse::<i64>() {
            let _ = self.changes.send(id);
        }
        self.wake.notify_one();
    }

    async fn claim_loop(self: Arc<Self>, state: AppState, stop: CancellationToken) {
        loop {
            if stop.is_cancelled() {
                return;
            }
            let free = self.slots.available_permits();
            if free > 0 {
                match self.claim(free as i64).await {
                    Ok(ids) => {
                        let full = ids.len() == free;
                        for id in ids {
                            self.spawn_run(state.clone(), id);
                        }
                        if full {
                            continue;
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "runs: claim failed"),
                }
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    async fn claim(&self, limit: i64) -> sqlx::Result<Vec<i64>> {
        sqlx::query_scalar(
            "UPDATE runs SET status = 'running', lease_owner = $1,
                    lease_until = now() + make_interval(secs => $2),
                    started_at = coalesce(started_at, now())
             WHERE id IN (SELECT id FROM runs WHERE status = 'queued'
                          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING id",
        )
        .bind(&self.owner)
        .bind(self.lease.as_secs_f64())
        .bind(limit)
        .fetch_all(&self.pool)
        .await
    }

    fn spawn_run(self: &Arc<Self>, state: AppState, id: i64) {
        let Ok(permit) = self.slots.clone().try_acquire_owned() else {
            return;
        };
        let handle = Arc::new(Handle {
            token: CancellationToken::new(),
            why: Mutex::new(None),
        });
        lock(&self.handles).insert(id, handle.clone());
        let engine = self.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(e) = engine.drive(&state, id, &handle).await {
                tracing::error!(run = id, error = %e, "run failed inside the engine");
                let _ = engine
                    .finish(id, RunStatus::Failed, Some(format!("engine error: {e}")))
                    .await;
            }
            lock(&engine.handles).remove(&id);
            engine.changed(id).await;
        });
    }

    async fn heartbeat_loop(self: Arc<Self>, stop: CancellationToken) {
        let every = self.lease / 3;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(every) => {}
            }
            let mine: Vec<i64> = lock(&self.handles).keys().copied().collect();
            if mine.is_empty() {
                continue;
            }
            let renewed = sqlx::query(
                "UPDATE runs SET lease_until = now() + make_interval(secs => $2)
                 WHERE lease_owner = $1 AND status = 'running'
                 RETURNING id, cancel_requested",
            )
            .bind(&self.owner)
            .bind(self.lease.as_secs_f64())
            .fetch_all(&self.pool)
            .await;
            let Ok(rows) = renewed else {
                // The database is away: leases may run out; the reaper of
                // whichever process sees it first marks the runs interrupted.
                continue;
            };
            let held: HashMap<i64, bool> = rows
                .iter()
                .map(|r| (r.get::<i64, _>("id"), r.get::<bool, _>("cancel_requested")))
                .collect();
            let handles = lock(&self.handles);
            for id in mine {
                match (held.get(&id), handles.get(&id)) {
                    (Some(true), Some(h)) => h.stop(Stop::Cancel),
                    (None, Some(h)) => h.stop(Stop::LeaseLost),
                    _ => {}
                }
            }
        }
    }

    async fn reap_loop(self: Arc<Self>, stop: CancellationToken) {
        loop {
            if let Err(e) = self.reap().await {
                tracing::warn!(error = %e, "runs: reaping failed");
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.lease / 2) => {}
            }
        }
    }

    /// Turns runs whose lease ran out into `interrupted`, and expires
    /// approvals past their deadline (their runs fail).
    pub async fn reap(&self) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        let dead: Vec<(i64, String, String)> = sqlx::query_as(
            "UPDATE runs SET status = 'interrupted', lease_owner = NULL, lease_until = NULL,
                    finished_at = now(),
                    error = 'the server running it stopped before it finished (its lease ran out)'
             WHERE status = 'running' AND lease_until < now()
             RETURNING id, requested_by, (SELECT name FROM runbooks WHERE id = runbook_id)",
        )
        .fetch_all(&mut *tx)
        .await?;
        for (id, requested_by, _) in &dead {
            sqlx::query(
                "UPDATE run_steps SET status = 'interrupted', finished_at = now(),
                        error = 'interrupted: the server running it stopped'
                 WHERE run_id = $1 AND status = 'running'",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
            timeline::append(
                &mut tx,
                "run",
                *id,
                "run.interrupted",
                None,
                None,
                "Interrupted: the server running it stopped. Resume it or close it.",
                json!({}),
            )
            .await?;
            audit::record(
                &mut tx,
                audit::NewEntry {
                    actor: Actor::system("runbook-engine"),
                    action: "run.interrupted".into(),
                    target: Some(format!("run:{id}")),
                    params: json!({"requested_by": requested_by}),
                    source: None,
                    outcome: opsdeck_wire::Outcome::Failure,
                    detail: Some("lease ran out".into()),
                },
            )
            .await?;
        }
        let expired: Vec<(i64, i64, Option<i32>)> = sqlx::query_as(
            "UPDATE approvals SET status = 'expired', decided_at = now()
             WHERE status = 'pending' AND expires_at < now()
             RETURNING id, run_id, step",
        )
        .fetch_all(&mut *tx)
        .await?;
        let mut failed = Vec::new();
        let mut ended = Vec::new();
        for (approval, run, step) in &expired {
            let msg = format!("approval #{approval} expired before enough approvals");
            if fail_parked(&mut tx, *run, *step, &msg).await? {
                ended.push(*run);
            }
            timeline::append(
                &mut tx,
                "run",
                *run,
                "approval.expired",
                None,
                *step,
                &msg,
                json!({"approval": approval}),
            )
            .await?;
            failed.push(*run);
        }
        tx.commit().await?;
        self.metrics
            .runs_finished_by_id(&self.pool, &ended, "failed")
            .await;
        for (id, _, runbook) in dead {
            self.metrics.run_finished(&runbook, "interrupted");
            self.changed(id).await;
            self.notify_parent(id).await;
        }
        for id in failed {
            self.changed(id).await;
            self.notify_parent(id).await;
        }
        Ok(())
    }

    // ------------------------------------------------------------- driving

    /// Runs a claimed run from `next_step` until it finishes or parks.
    async fn drive(&self, state: &AppState, id: i64, h: &Handle) -> anyhow::Result<()> {
        let Some(run) = self.load_claimed(id).await? else {
            return Ok(());
        };
        let def = &run.def;
        self.event(
            id,
            "run.started",
            None,
            None,
            &format!(
                "Started{} at step {} of {}",
                if run.next_step > 0 { " again" } else { "" },
                run.next_step + 1,
                def.steps.len()
            ),
        )
        .await?;
        if run.next_step == 0 {
            if let Some(policy) = &def.approval {
                if !self.approved(&run, None, policy, "the runbook").await? {
                    return Ok(());
                }
            }
        }
        let mut outputs = run.outputs.clone();
        let statuses = self.step_statuses(id).await?;
        let mut i = run.next_step as usize;
        while i < def.steps.len() {
            let step = &def.steps[i];
            let idx = i as i32;
            if h.token.is_cancelled() {
                return self.stopped(&run, h, None).await;
            }
            match statuses.get(&idx).map(|(s, _)| *s) {
                // Ticked manual steps and finished child runs.
                Some(StepStatus::Succeeded | StepStatus::Skipped) => {
                    if let Some((_, r)) = statuses.get(&idx) {
                        outputs.insert(step.name.clone(), r.clone());
                    }
                    i += 1;
                    self.set_next(id, i as i32, &outputs).await?;
                    continue;
                }
                Some(StepStatus::Failed) => {
                    // A child run failed while this run was parked.
                    let err = self.step_error(id, idx).await?;
                    match self
                        .on_failure(state, &run, step, idx, &err, &mut outputs)
                        .await?
                    {
                        Flow::Next => {
                            i += 1;
                            self.set_next(id, i as i32, &outputs).await?;
                            continue;
                        }
                        Flow::End => return Ok(()),
                    }
                }
                _ => {}
            }
            let scope = Scope {
                params: &run.params,
                steps: &outputs,
                lenient: false,
            };
            let action = match def::render_action(&step.action, &scope) {
                Ok(a) => a,
                Err(e) => {
                    self.step_begin(id, idx).await?;
                    let msg = format!("cannot fill in the step: {e}");
                    self.step_end(&run, idx, step, Err(msg.clone()), &Output::new())
                        .await?;
                    match self
                        .on_failure(state, &run, step, idx, &msg, &mut outputs)
                        .await?
                    {
                        Flow::Next => {
                            i += 1;
                            self.set_next(id, i as i32, &outputs).await?;
                            continue;
                        }
                        Flow::End => return Ok(()),
                    }
                }
            };
            // Approvals: the step's own policy, an `approval` step's default,
            // or the policy of the action kind.
            let policy = match (&step.approval, &action) {
                (Some(p), _) => Some(p.clone()),
                (None, StepAction::Approval { .. }) => Some(ApprovalPolicy {
                    required: 1,
                    roles: vec![Role::Operator, Role::Admin],
                    expires: "1h".into(),
                }),
                (None, a) => match steps::policy_kind(state, a).await {
                    Some(kind) => match action_policy(&self.pool, &kind).await? {
                        // The runbook's own approval, already given for
                        // these parameters, covers it when it was at least
                        // as strict: no second request for the same act.
                        Some(p) if self.covered_by_run_approval(&run, &p).await? => None,
                        other => other,
                    },
                    None => None,
                },
            };
            if let Some(p) = &policy {
                let subject = format!(
                    "step {} ({}): {}",
                    idx + 1,
                    step.name,
                    steps::describe(state, &action).await
                );
                if !self.approved(&run, Some(idx), p, &subject).await? {
                    return Ok(());
                }
            }
            let result = match &action {
                StepAction::Approval { .. } => {
                    self.step_begin(id, idx).await?;
                    let by = self.approvers(id, Some(idx)).await?;
                    let out = Output::new();
                    out.line(format!("approved by {}", by.join(", ")));
                    Ok(json!({"approved_by": by})).map(|v| (v, out))
                }
                StepAction::Manual { instructions } => {
                    self.park(
                        id,
                        idx,
                        "step.waiting",
                        &format!("Waiting for an operator to tick off: {instructions}"),
                    )
                    .await?;
                    return Ok(());
                }
                StepAction::Runbook { runbook, params } => {
                    self.start_child(state, &run, idx, runbook, params).await?;
                    return Ok(());
                }
                StepAction::Notify { message, severity } => {
                    self.step_begin(id, idx).await?;
                    let out = Output::new();
                    let delivered = super::notify::send(state, id, severity, message).await?;
                    out.line(format!("[{severity}] {message}"));
                    out.line(&delivered);
                    Ok((
                        json!({"severity": severity, "message": message, "delivery": delivered}),
                        out,
                    ))
                }
                a => {
                    if !self.step_begin(id, idx).await? {
                        return Ok(()); // lease lost
                    }
                    let out = Output::new();
                    match self.run_step(state, &run, idx, step, a, &out, h).await {
                        Ok(v) => Ok((v, out)),
                        Err(Fail::Failed(m)) => Err(StepErr::Failed(m, out)),
                        Err(Fail::Stopped) => Err(StepErr::Stopped(out)),
                    }
                }
            };
            let (result, out) = match result {
                Ok((v, out)) => (Ok(v), out),
                Err(StepErr::Failed(msg, out)) => (Err(msg), out),
                Err(StepErr::Stopped(out)) => {
                    return self.stopped(&run, h, Some((idx, out))).await;
                }
            };
            self.step_end(&run, idx, step, result.clone(), &out).await?;
            match result {
                Ok(v) => {
                    outputs.insert(step.name.clone(), v);
                    i += 1;
                    self.set_next(id, i as i32, &outputs).await?;
                }
                Err(e) => match self
                    .on_failure(state, &run, step, idx, &e, &mut outputs)
                    .await?
                {
                    Flow::Next => {
                        i += 1;
                        self.set_next(id, i as i32, &outputs).await?;
                    }
                    Flow::End => return Ok(()),
                },
            }
        }
        self.finish(id, RunStatus::Succeeded, None).await?;
        Ok(())
    }

    /// Executes one step under its timeout, flushing output as it comes.
    #[allow(clippy::too_many_arguments)]
    async fn run_step(
        &self,
        state: &AppState,
        run: &Claimed,
        idx: i32,
        step: &StepDef,
        action: &StepAction,
        out: &Output,
        h: &Handle,
    ) -> Result<Value, Fail> {
        let timeout = def::step_timeout(step);
        let cx = StepCx {
            state,
            run_id: run.id,
            actor: &run.actor,
            out,
            timeout,
        };
        let fut = steps::execute(&cx, action);
        tokio::pin!(fut);
        let deadline = tokio::time::sleep(timeout);
        tokio::pin!(deadline);
        let mut tick = tokio::time::interval(FLUSH_EVERY);
        let mut flushed = 0u64;
        loop {
            tokio::select! {
                r = &mut fut => {
                    return r.map_err(Fail::Failed);
                }
                _ = &mut deadline => {
                    return Err(Fail::Failed(format!(
                        "timed out after {}",
                        humantime::format_duration(timeout)
                    )));
                }
                _ = h.token.cancelled() => {
                    return Err(Fail::Stopped);
                }
                _ = tick.tick() => {
                    let (text, truncated, version) = out.snapshot();
                    if version != flushed {
                        flushed = version;
                        let _ = sqlx::query(
                            "UPDATE run_steps SET output = $3, output_truncated = $4
                             WHERE run_id = $1 AND idx = $2",
                        )
                        .bind(run.id)
                        .bind(idx)
                        .bind(text)
                        .bind(truncated)
                        .execute(&self.pool)
                        .await;
                        let _ = self.changes.send(run.id);
                    }
                }
            }
        }
    }

    /// Applies a failed step's `on_failure`.
    async fn on_failure(
        &self,
        state: &AppState,
        run: &Claimed,
        step: &StepDef,
        idx: i32,
        error: &str,
        outputs: &mut serde_json::Map<String, Value>,
    ) -> anyhow::Result<Flow> {
        let failed = format!("step {} ({}) failed: {error}", idx + 1, step.name);
        match step.on_failure {
            OnFailure::Continue => {
                self.event(
                    run.id,
                    "step.continue",
                    Some(idx),
                    None,
                    &format!("{failed}; continuing (on_failure: continue)"),
                )
                .await?;
                Ok(Flow::Next)
            }
            OnFailure::Stop => {
                self.finish(run.id, RunStatus::Failed, Some(failed)).await?;
                Ok(Flow::End)
            }
            OnFailure::Escalate => {
                let how = super::notify::escalate(state, run.id, &run.runbook, &failed).await?;
                self.event(run.id, "escalation", Some(idx), None, &how)
                    .await?;
                self.finish(run.id, RunStatus::Failed, Some(failed)).await?;
                Ok(Flow::End)
            }
            OnFailure::Rollback => {
                self.rollback(state, run, outputs).await?;
                self.finish(
                    run.id,
                    RunStatus::Failed,
                    Some(format!("{failed}; rolled back")),
                )
                .await?;
                Ok(Flow::End)
            }
        }
    }

    /// Runs the definition's rollback steps in order (no approval gates:
    /// they put things back). Parking kinds are skipped.
    async fn rollback(
        &self,
        state: &AppState,
        run: &Claimed,
        outputs: &mut serde_json::Map<String, Value>,
    ) -> anyhow::Result<()> {
        let base = run.def.steps.len() as i32;
        self.event(
            run.id,
            "rollback.started",
            None,
            None,
            &format!("Rolling back: {} step(s)", run.def.rollback.len()),
        )
        .await?;
        for (j, step) in run.def.rollback.iter().enumerate() {
            let idx = base + j as i32;
            sqlx::query(
                "INSERT INTO run_steps (run_id, idx, name, title, kind, phase)
                 VALUES ($1, $2, $3, $4, $5, 'rollback')
                 ON CONFLICT (run_id, idx) DO UPDATE SET status = 'pending', output = '',
                     output_truncated = false, result = '{}', error = NULL,
                     started_at = NULL, finished_at = NULL",
            )
            .bind(run.id)
            .bind(idx)
            .bind(&step.name)
            .bind(&step.title)
            .bind(step.action.kind())
            .execute(&self.pool)
            .await?;
            let scope = Scope {
                params: &run.params,
                steps: outputs,
                lenient: false,
            };
            let out = Output::new();
            let result = match def::render_action(&step.action, &scope) {
                Err(e) => Err(format!("cannot fill in the step: {e}")),
                Ok(
                    StepAction::Manual { .. }
                    | StepAction::Approval { .. }
                    | StepAction::Runbook { .. },
                ) => {
                    sqlx::query(
                        "UPDATE run_steps SET status = 'skipped', note = 'not run during a rollback'
                         WHERE run_id = $1 AND idx = $2",
                    )
                    .bind(run.id)
                    .bind(idx)
                    .execute(&self.pool)
                    .await?;
                    continue;
                }
                Ok(StepAction::Notify { message, severity }) => {
                    super::notify::send(state, run.id, &severity, &message)
                        .await
                        .map(|d| json!({"delivery": d}))
                        .map_err(|e| e.to_string())
                }
                Ok(a) => {
                    if !self.step_begin(run.id, idx).await? {
                        return Ok(());
                    }
                    let cx = StepCx {
                        state,
                        run_id: run.id,
                        actor: &run.actor,
                        out: &out,
                        timeout: def::step_timeout(step),
                    };
                    match tokio::time::timeout(cx.timeout, steps::execute(&cx, &a)).await {
                        Ok(r) => r,
                        Err(_) => Err("timed out".into()),
                    }
                }
            };
            self.step_end(run, idx, step, result.clone(), &out).await?;
            if let Ok(v) = result {
                outputs.insert(step.name.clone(), v);
            }
        }
        Ok(())
    }

    /// Has this gate enough approvals? Creates the request when there is
    /// none and parks the run; returns `true` when it may proceed.
    async fn approved(
        &self,
        run: &Claimed,
        step: Option<i32>,
        policy: &ApprovalPolicy,
        subject: &str,
    ) -> anyhow::Result<bool> {
        let status: Option<String> = sqlx::query_scalar(
            "SELECT status FROM approvals WHERE run_id = $1 AND coalesce(step, -1) = coalesce($2, -1)
               AND binding = $3 AND status IN ('pending', 'approved')",
        )
        .bind(run.id)
        .bind(step)
        .bind(&run.binding)
        .fetch_optional(&self.pool)
        .await?;
        match status.as_deref() {
            Some("approved") => return Ok(true),
            Some(_) => {
                // Still pending (re-queued by something else): park again.
                self.park_for_approval(run.id, step, None).await?;
                return Ok(false);
            }
            None => {}
        }
        let expires = def::parse_duration(&policy.expires).unwrap_or(Duration::from_secs(3600));
        let roles: Vec<&str> = policy.roles.iter().map(|r| r.as_str()).collect();
        let mut tx = self.pool.begin().await?;
        let approval: i64 = sqlx::query_scalar(
            "INSERT INTO approvals (run_id, step, binding, subject, required, roles, requested_by_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
             RETURNING id",
        )
        .bind(run.id)
        .bind(step)
        .bind(&run.binding)
        .bind(subject)
        .bind(policy.required as i32)
        .bind(&roles)
        .bind(run.requested_by_id)
        .bind(expires.as_secs_f64())
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        self.park_for_approval(
            run.id,
            step,
            Some(&format!(
                "Approval #{approval} requested: {} approval(s) from {} within {} — {subject}",
                policy.required,
                roles.join("/"),
                policy.expires
            )),
        )
        .await?;
        Ok(false)
    }

    async fn park_for_approval(
        &self,
        id: i64,
        step: Option<i32>,
        message: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE runs SET status = 'waiting', lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(&self.owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(());
        }
        if let Some(idx) = step {
            sqlx::query("UPDATE run_steps SET status = 'waiting' WHERE run_id = $1 AND idx = $2")
                .bind(id)
                .bind(idx)
                .execute(&mut *tx)
                .await?;
        }
        if let Some(m) = message {
            timeline::append(
                &mut tx,
                "run",
                id,
                "approval.requested",
                None,
                step,
                m,
                json!({}),
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether the run's granted runbook-level approval is at least as strict
    /// as `p` (as many approvals or more, from roles `p` accepts).
    async fn covered_by_run_approval(
        &self,
        run: &Claimed,
        p: &ApprovalPolicy,
    ) -> sqlx::Result<bool> {
        let row: Option<(i32, Vec<String>)> = sqlx::query_as(
            "SELECT required, roles FROM approvals
             WHERE run_id = $1 AND step IS NULL AND binding = $2 AND status = 'approved'",
        )
        .bind(run.id)
        .bind(&run.binding)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some_and(|(required, roles)| {
            required as u32 >= p.required
                && roles
                    .iter()
                    .all(|r| p.roles.iter().any(|q| q.as_str() == r))
        }))
    }

    /// Parks the run on step `idx` (manual step or child run).
    async fn park(&self, id: i64, idx: i32, kind: &str, message: &str) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE runs SET status = 'waiting', lease_owner = NULL, lease_until = NULL, next_step = $3
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(&self.owner)
        .bind(idx)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(());
        }
        sqlx::query(
            "UPDATE run_steps SET status = 'waiting', started_at = coalesce(started_at, now())
             WHERE run_id = $1 AND idx = $2",
        )
        .bind(id)
        .bind(idx)
        .execute(&mut *tx)
        .await?;
        timeline::append(
            &mut tx,
            "run",
            id,
            kind,
            None,
            Some(idx),
            message,
            json!({}),
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn start_child(
        &self,
        state: &AppState,
        run: &Claimed,
        idx: i32,
        runbook: &str,
        params: &BTreeMap<String, Value>,
    ) -> anyhow::Result<()> {
        let runbook_id: Option<i64> = sqlx::query_scalar("SELECT id FROM runbooks WHERE name = $1")
            .bind(runbook)
            .fetch_optional(&self.pool)
            .await?;
        let mut conn = self.pool.acquire().await?;
        let child = match runbook_id {
            None => Err(ApiError::NotFound(format!("runbook \"{runbook}\""))),
            Some(rb) => {
                enqueue(
                    state,
                    &mut conn,
                    NewRun {
                        runbook_id: rb,
                        params: params.clone(),
                        reason: format!("step {} of run #{}", idx + 1, run.id),
                        incident: None,
                        requested_by: run.actor.clone(),
                        requested_by_user: run.requested_by_id,
                        schedule_id: None,
                        parent: Some((run.id, idx)),
                    },
                )
                .await
            }
        };
        drop(conn);
        match child {
            Ok(child) => {
                self.park(
                    run.id,
                    idx,
                    "step.child",
                    &format!("Started runbook {runbook} as run #{child}; waiting for it"),
                )
                .await?;
                self.changed(child).await;
            }
            Err(e) => {
                self.step_begin(run.id, idx).await?;
                let msg = format!("cannot start runbook {runbook}: {e}");
                let step = &run.def.steps[idx as usize];
                self.step_end(run, idx, step, Err(msg.clone()), &Output::new())
                    .await?;
                let mut outputs = run.outputs.clone();
                if let Flow::Next = self
                    .on_failure(state, run, step, idx, &msg, &mut outputs)
                    .await?
                {
                    // Continue after the failed child: re-queue at the next step.
                    sqlx::query(
                        "UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until = NULL, next_step = $3
                         WHERE id = $1 AND lease_owner = $2",
                    )
                    .bind(run.id)
                    .bind(&self.owner)
                    .bind(idx + 1)
                    .execute(&self.pool)
                    .await?;
                    self.wake.notify_one();
                }
            }
        }
        Ok(())
    }

    /// When a child run ends, its parent's step gets the outcome and the
    /// parent is queued again.
    async fn notify_parent(&self, child: i64) {
        let r: Result<(), sqlx::Error> = async {
            type ChildRow = (Option<i64>, Option<i32>, String, Option<String>);
            let row: Option<ChildRow> = sqlx::query_as(
                "SELECT parent_run_id, parent_step, status, error FROM runs WHERE id = $1",
            )
            .bind(child)
            .fetch_optional(&self.pool)
            .await?;
            let Some((Some(parent), Some(step), status, error)) = row else {
                return Ok(());
            };
            let ok = status == "succeeded";
            let mut tx = self.pool.begin().await?;
            sqlx::query(
                "UPDATE run_steps SET status = $3, finished_at = now(), result = $4, error = $5
                 WHERE run_id = $1 AND idx = $2 AND status = 'waiting'",
            )
            .bind(parent)
            .bind(step)
            .bind(if ok { "succeeded" } else { "failed" })
            .bind(json!({"run_id": child, "status": status}))
            .bind(if ok {
                None
            } else {
                Some(format!(
                    "run #{child} {status}: {}",
                    error.unwrap_or_default()
                ))
            })
            .execute(&mut *tx)
            .await?;
            let n = sqlx::query(
                "UPDATE runs SET status = 'queued' WHERE id = $1 AND status = 'waiting'",
            )
            .bind(parent)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if n > 0 {
                timeline::append(
                    &mut tx,
                    "run",
                    parent,
                    "step.child_finished",
                    None,
                    Some(step),
                    &format!("Run #{child} {status}"),
                    json!({"run_id": child}),
                )
                .await?;
            }
            tx.commit().await?;
            if n > 0 {
                self.changed(parent).await;
            }
            Ok(())
        }
        .await;
        if let Err(e) = r {
            tracing::warn!(run = child, error = %e, "runs: updating the parent run failed");
        }
    }

    /// A cancel or a lost lease stopped the task.
    async fn stopped(
        &self,
        run: &Claimed,
        h: &Handle,
        step: Option<(i32, Output)>,
    ) -> anyhow::Result<()> {
        if h.why() == Some(Stop::LeaseLost) {
            tracing::warn!(run = run.id, "run lease lost; stopping without writing");
            return Ok(());
        }
        if let Some((idx, out)) = step {
            let (text, truncated, _) = out.snapshot();
            sqlx::query(
                "UPDATE run_steps SET status = 'cancelled', finished_at = now(), output = $3,
                        output_truncated = $4, error = 'cancelled while running'
                 WHERE run_id = $1 AND idx = $2",
            )
            .bind(run.id)
            .bind(idx)
            .bind(text)
            .bind(truncated)
            .execute(&self.pool)
            .await?;
        }
        self.finish(
            run.id,
            RunStatus::Cancelled,
            Some("cancelled by an operator".into()),
        )
        .await
    }

    /// Ends a claimed run: status, pending steps skipped, audit, timeline.
    async fn finish(
        &self,
        id: i64,
        status: RunStatus,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, String, Option<i64>, String)> = sqlx::query_as(
            "UPDATE runs SET status = $3, finished_at = now(), lease_owner = NULL,
                    lease_until = NULL, error = $4
             WHERE id = $1 AND lease_owner = $2
             RETURNING requested_by, requested_kind, requested_by_id,
                       (SELECT name FROM runbooks WHERE id = runbook_id)",
        )
        .bind(id)
        .bind(&self.owner)
        .bind(status.as_str())
        .bind(&error)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((name, kind, user, runbook)) = row else {
            return Ok(()); // not ours any more
        };
        sqlx::query(
            "UPDATE run_steps SET status = $2 WHERE run_id = $1 AND status IN ('pending', 'waiting')",
        )
        .bind(id)
        .bind(if status == RunStatus::Cancelled {
            "cancelled"
        } else {
            "skipped"
        })
        .execute(&mut *tx)
        .await?;
        let message = match (&status, &error) {
            (RunStatus::Succeeded, _) => "Succeeded".to_owned(),
            (s, Some(e)) => format!("{}: {e}", capitalise(s.as_str())),
            (s, None) => capitalise(s.as_str()),
        };
        timeline::append(
            &mut tx,
            "run",
            id,
            &format!("run.{}", status.as_str()),
            None,
            None,
            &message,
            json!({}),
        )
        .await?;
        audit::record(
            &mut tx,
            audit::NewEntry {
                actor: actor_from(&name, &kind, user),
                action: format!("run.{}", status.as_str()),
                target: Some(format!("run:{id}")),
                params: json!({"runbook": runbook}),
                source: None,
                outcome: if status == RunStatus::Succeeded {
                    opsdeck_wire::Outcome::Success
                } else {
                    opsdeck_wire::Outcome::Failure
                },
                detail: error,
            },
        )
        .await?;
        tx.commit().await?;
        self.metrics.run_finished(&runbook, status.as_str());
        self.changed(id).await;
        self.notify_parent(id).await;
        Ok(())
    }

    // ------------------------------------------------------------- rows

    async fn load_claimed(&self, id: i64) -> anyhow::Result<Option<Claimed>> {
        let row = sqlx::query(
            "SELECT r.id, r.params, r.next_step, r.outputs, r.requested_by, r.requested_kind,
                    r.requested_by_id, r.binding, b.name, v.definition
             FROM runs r JOIN runbooks b ON b.id = r.runbook_id
             JOIN runbook_versions v ON v.runbook_id = r.runbook_id AND v.version = r.version
             WHERE r.id = $1 AND r.lease_owner = $2 AND r.status = 'running'",
        )
        .bind(id)
        .bind(&self.owner)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let params: BTreeMap<String, Value> = serde_json::from_value(r.get("params"))?;
        let outputs = match r.get::<Value, _>("outputs") {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let def: RunbookDef = serde_json::from_value(r.get("definition"))?;
        let name: String = r.get("requested_by");
        let kind: String = r.get("requested_kind");
        let user: Option<i64> = r.get("requested_by_id");
        Ok(Some(Claimed {
            id,
            runbook: r.get("name"),
            params,
            next_step: r.get("next_step"),
            outputs,
            actor: actor_from(&name, &kind, user),
            requested_by_id: user,
            binding: r.get("binding"),
            def,
        }))
    }

    async fn step_statuses(&self, id: i64) -> sqlx::Result<HashMap<i32, (StepStatus, Value)>> {
        let rows: Vec<(i32, String, Value)> =
            sqlx::query_as("SELECT idx, status, result FROM run_steps WHERE run_id = $1")
                .bind(id)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .filter_map(|(i, s, r)| StepStatus::parse(&s).map(|s| (i, (s, r))))
            .collect())
    }

    async fn step_error(&self, id: i64, idx: i32) -> sqlx::Result<String> {
        let e: Option<String> =
            sqlx::query_scalar("SELECT error FROM run_steps WHERE run_id = $1 AND idx = $2")
                .bind(id)
                .bind(idx)
                .fetch_one(&self.pool)
                .await?;
        Ok(e.unwrap_or_else(|| "failed".into()))
    }

    async fn approvers(&self, id: i64, step: Option<i32>) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar(
            "SELECT v.username FROM approval_votes v JOIN approvals a ON a.id = v.approval_id
             WHERE a.run_id = $1 AND coalesce(a.step, -1) = coalesce($2, -1)
               AND a.status = 'approved' AND v.approve ORDER BY v.at",
        )
        .bind(id)
        .bind(step)
        .fetch_all(&self.pool)
        .await
    }

    /// Marks a step running; `false` when the run is no longer ours.
    async fn step_begin(&self, id: i64, idx: i32) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE run_steps SET status = 'running', started_at = now(), finished_at = NULL,
                    output = '', output_truncated = false, error = NULL
             WHERE run_id = $1 AND idx = $2
               AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_owner = $3 AND status = 'running')",
        )
        .bind(id)
        .bind(idx)
        .bind(&self.owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let name: String = sqlx::query_scalar("SELECT coalesce(nullif(title, ''), name) FROM run_steps WHERE run_id = $1 AND idx = $2")
            .bind(id)
            .bind(idx)
            .fetch_one(&mut *tx)
            .await?;
        timeline::append(
            &mut tx,
            "run",
            id,
            "step.started",
            None,
            Some(idx),
            &format!("Step {}: {name}", idx + 1),
            json!({}),
        )
        .await?;
        tx.commit().await?;
        self.changed(id).await;
        Ok(true)
    }

    /// Records a step's end with its audit entry and timeline event.
    async fn step_end(
        &self,
        run: &Claimed,
        idx: i32,
        step: &StepDef,
        result: Result<Value, String>,
        out: &Output,
    ) -> anyhow::Result<()> {
        let (text, truncated, _) = out.snapshot();
        let mut tx = self.pool.begin().await?;
        let (status, value, error) = match &result {
            Ok(v) => ("succeeded", v.clone(), None),
            Err(e) => ("failed", json!({}), Some(e.clone())),
        };
        let n = sqlx::query(
            "UPDATE run_steps SET status = $3, finished_at = now(), output = $4,
                    output_truncated = $5, result = $6, error = $7
             WHERE run_id = $1 AND idx = $2
               AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_owner = $8 AND status = 'running')",
        )
        .bind(run.id)
        .bind(idx)
        .bind(status)
        .bind(text)
        .bind(truncated)
        .bind(value)
        .bind(&error)
        .bind(&self.owner)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(());
        }
        // Steps that change something are audited; every step is on the
        // run's timeline either way.
        if steps::changes_something(&step.action) {
            audit::record(
                &mut tx,
                audit::NewEntry {
                    actor: run.actor.clone(),
                    action: format!("run.step.{}", step.action.kind()),
                    target: Some(format!("run:{}", run.id)),
                    params: json!({"runbook": run.runbook, "step": step.name, "idx": idx}),
                    source: None,
                    outcome: if error.is_none() {
                        opsdeck_wire::Outcome::Success
                    } else {
                        opsdeck_wire::Outcome::Failure
                    },
                    detail: error.clone(),
                },
            )
            .await?;
        }
        let message = match &error {
            None => format!("Step {} ({}) succeeded", idx + 1, step.name),
            Some(e) => format!("Step {} ({}) failed: {e}", idx + 1, step.name),
        };
        timeline::append(
            &mut tx,
            "run",
            run.id,
            &format!("step.{status}"),
            None,
            Some(idx),
            &message,
            json!({}),
        )
        .await?;
        tx.commit().await?;
        self.changed(run.id).await;
        Ok(())
    }

    async fn set_next(
        &self,
        id: i64,
        next: i32,
        outputs: &serde_json::Map<String, Value>,
    ) -> sqlx::Result<()> {
        sqlx::query(
            "UPDATE runs SET next_step = $3, outputs = $4 WHERE id = $1 AND lease_owner = $2",
        )
        .bind(id)
        .bind(&self.owner)
        .bind(next)
        .bind(Value::Object(outputs.clone()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn event(
        &self,
        id: i64,
        kind: &str,
        step: Option<i32>,
        actor: Option<&Actor>,
        message: &str,
    ) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        timeline::append(&mut conn, "run", id, kind, actor, step, message, json!({})).await?;
        drop(conn);
        self.changed(id).await;
        Ok(())
    }
}

fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

/// The audit actor of a run's requester.
pub fn actor_from(name: &str, kind: &str, user: Option<i64>) -> Actor {
    Actor {
        id: user,
        name: name.to_owned(),
        kind: match kind {
            "token" => "token",
            "system" => "system",
            _ => "user",
        },
    }
}

/// Fails a parked run whose approval expired or was denied (no lease is
/// held while parked, so this runs in the caller's transaction).
pub async fn fail_parked(
    conn: &mut PgConnection,
    run: i64,
    step: Option<i32>,
    message: &str,
) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE runs SET status = 'failed', finished_at = now(), error = $2
         WHERE id = $1 AND status IN ('waiting', 'queued')",
    )
    .bind(run)
    .bind(message)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if let Some(idx) = step {
        sqlx::query(
            "UPDATE run_steps SET status = 'failed', finished_at = now(), error = $3
             WHERE run_id = $1 AND idx = $2 AND status IN ('waiting', 'pending')",
        )
        .bind(run)
        .bind(idx)
        .bind(message)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "UPDATE run_steps SET status = 'skipped' WHERE run_id = $1 AND status IN ('pending', 'waiting')",
    )
    .bind(run)
    .execute(&mut *conn)
    .await?;
    Ok(n > 0)
}

/// The approval policy an admin set for an action kind.
pub async fn action_policy(pool: &PgPool, kind: &str) -> sqlx::Result<Option<ApprovalPolicy>> {
    let row: Option<(i32, Vec<String>, String)> = sqlx::query_as(
        "SELECT required, roles, expires FROM approval_policies WHERE action_kind = $1",
    )
    .bind(kind)
    .fetch_optional(pool)
    .await?;
    Ok(row.map(|(required, roles, expires)| ApprovalPolicy {
        required: required as u32,
        roles: roles
            .iter()
            .filter_map(|r| match r.as_str() {
                "operator" => Some(Role::Operator),
                "admin" => Some(Role::Admin),
                _ => None,
            })
            .collect(),
        expires,
    }))
}

enum Flow {
    Next,
    End,
}

/// How a step ended early, with the output it wrote.
enum StepErr {
    Failed(String, Output),
    Stopped(Output),
}

/// How `run_step` ended early (the caller owns the output).
enum Fail {
    Failed(String),
    Stopped,
}

/// A claimed run, loaded.
struct Claimed {
    id: i64,
    runbook: String,
    params: BTreeMap<String, Value>,
    next_step: i32,
    outputs: serde_json::Map<String, Value>,
    actor: Actor,
    requested_by_id: Option<i64>,
    binding: Vec<u8>,
    def: RunbookDef,
}

/// Ends a queued or waiting run at once (in the caller's transaction): the
/// run and its pending or waiting steps `cancelled`, its pending approvals
/// withdrawn. Returns false when the run was in no such state. The caller
/// writes the timeline event and audit entry.
pub async fn withdraw(conn: &mut PgConnection, run_id: i64, error: &str) -> sqlx::Result<bool> {
    let n = sqlx::query(
        "UPDATE runs SET status = 'cancelled', finished_at = now(), error = $2
         WHERE id = $1 AND status IN ('queued', 'waiting')",
    )
    .bind(run_id)
    .bind(error)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if n == 0 {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE run_steps SET status = 'cancelled' WHERE run_id = $1 AND status IN ('pending', 'waiting')",
    )
    .bind(run_id)
    .execute(&mut *conn)
    .await?;
    sqlx::query(
        "UPDATE approvals SET status = 'withdrawn', decided_at = now() WHERE run_id = $1 AND status = 'pending'",
    )
    .bind(run_id)
    .execute(&mut *conn)
    .await?;
    Ok(true)
}

/// A run to queue.
pub struct NewRun {
    pub runbook_id: i64,
    pub params: BTreeMap<String, Value>,
    pub reason: String,
    pub incident: Option<String>,
    pub requested_by: Actor,
    /// The requesting user (for tokens: the token's user), never approves.
    pub requested_by_user: Option<i64>,
    pub schedule_id: Option<i64>,
    pub parent: Option<(i64, i32)>,
}

/// What typed parameters are checked against.
pub async fn load_world(state: &AppState, conn: &mut PgConnection) -> sqlx::Result<def::World> {
    let services: Vec<String> = sqlx::query_scalar("SELECT name FROM services")
        .fetch_all(&mut *conn)
        .await?;
    let databases: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT s.name FROM services s JOIN checks c ON c.service_id = s.id
         WHERE c.kind IN ('postgres', 'mysql')",
    )
    .fetch_all(&mut *conn)
    .await?;
    let containers = state
        .engines
        .engines()
        .iter()
        .flat_map(|e| e.containers().into_iter().map(|c| c.name))
        .collect();
    Ok(def::World {
        services: services.into_iter().collect(),
        containers,
        databases: databases.into_iter().collect(),
    })
}

/// Queues a run of the runbook's current version: parameters checked, steps
/// created, timeline and `run.queued` in one transaction on `conn`. Refuses
/// (409) a second active run for the same target unless the definition
/// allows it. The caller audits the request and calls
/// [`RunEngine::changed`] after commit.
pub async fn enqueue(state: &AppState, conn: &mut PgConnection, new: NewRun) -> ApiResult<i64> {
    let mut tx = sqlx::Connection::begin(&mut *conn).await?;
    let row: Option<(i32, Value, String)> = sqlx::query_as(
        "SELECT b.current_version, v.definition, b.name FROM runbooks b
         JOIN runbook_versions v ON v.runbook_id = b.id AND v.version = b.current_version
         WHERE b.id = $1",
    )
    .bind(new.runbook_id)
    .fetch_optional(&mut *tx)
    .await?;
    let (version, definition, name) =
        row.ok_or_else(|| ApiError::NotFound(format!("runbook {}", new.runbook_id)))?;
    let def: RunbookDef = serde_json::from_value(definition)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored definition: {e}")))?;
    let world = load_world(state, &mut tx).await?;
    let params = def::check_params(&def, &new.params, &world).map_err(ApiError::BadRequest)?;
    if new.reason.len() > 2000 || new.incident.as_deref().is_some_and(|i| i.len() > 200) {
        return Err(ApiError::BadRequest(
            "reason: at most 2000 characters; incident: at most 200".into(),
        ));
    }
    let target = def::target(&def, &params);
    let binding = def::binding(new.runbook_id, version, &params);
    let id: Option<i64> = sqlx::query_scalar(
        "INSERT INTO runs (runbook_id, version, params, target, exclusive, binding, reason, incident,
                           requested_by, requested_kind, requested_by_id, schedule_id, parent_run_id, parent_step)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (runbook_id, target) WHERE exclusive AND status IN ('queued', 'running', 'waiting')
         DO NOTHING RETURNING id",
    )
    .bind(new.runbook_id)
    .bind(version)
    .bind(serde_json::to_value(&params).unwrap_or_default())
    .bind(&target)
    .bind(!def.allow_parallel)
    .bind(&binding)
    .bind(new.reason.trim())
    .bind(new.incident.as_deref().map(str::trim).filter(|s| !s.is_empty()))
    .bind(&new.requested_by.name)
    .bind(new.requested_by.kind)
    .bind(new.requested_by_user)
    .bind(new.schedule_id)
    .bind(new.parent.map(|p| p.0))
    .bind(new.parent.map(|p| p.1))
    .fetch_optional(&mut *tx)
    .await?;
    let Some(id) = id else {
        let active: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM runs WHERE runbook_id = $1 AND target = $2 AND exclusive
               AND status IN ('queued', 'running', 'waiting')",
        )
        .bind(new.runbook_id)
        .bind(&target)
        .fetch_optional(&mut *tx)
        .await?;
        return Err(ApiError::Conflict(format!(
            "runbook {name} is already running{} (run #{}); one run per target at a time",
            if target == "*" {
                String::new()
            } else {
                format!(" for {target}")
            },
            active.unwrap_or_default()
        )));
    };
    let names: Vec<&str> = def.steps.iter().map(|s| s.name.as_str()).collect();
    let titles: Vec<&str> = def.steps.iter().map(|s| s.title.as_str()).collect();
    let kinds: Vec<&str> = def.steps.iter().map(|s| s.action.kind()).collect();
    sqlx::query(
        "INSERT INTO run_steps (run_id, idx, name, title, kind)
         SELECT $1, (ord - 1)::int, n, t, k
         FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS u(n, t, k, ord)",
    )
    .bind(id)
    .bind(&names)
    .bind(&titles)
    .bind(&kinds)
    .execute(&mut *tx)
    .await?;
    let why = if new.reason.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", new.reason.trim())
    };
    timeline::append(
        &mut tx,
        "run",
        id,
        "run.queued",
        Some(&new.requested_by),
        None,
        &format!(
            "Queued by {} (version {version}){why}",
            new.requested_by.name
        ),
        json!({"params": params}),
    )
    .await?;
    // Work taken during an incident shows on its timeline (child runs are
    // part of their parent's).
    if new.parent.is_none() {
        crate::incidents::link_run(
            &mut tx,
            id,
            new.incident.as_deref(),
            &target,
            &name,
            &new.requested_by.name,
        )
        .await?;
    }
    tx.commit().await?;
    state.metrics.run_started(&name);
    Ok(id)
}
