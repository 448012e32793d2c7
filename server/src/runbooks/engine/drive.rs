//! Driving a claimed run: the step loop, failure policies, rollback,
//! approval gates, parking and child runs (cohesive: one state machine).

use std::collections::BTreeMap;
use std::time::Duration;

use opsdeck_wire::{
    ApprovalPolicy, OnFailure, Role, RunStatus, RunbookDef, StepAction, StepDef, StepStatus,
};
use serde_json::{json, Value};

use super::*;
use crate::audit::{self, Actor};
use crate::jobs::{Held, Stop};
use crate::runbooks::def::{self, Scope};
use crate::runbooks::output::Output;
use crate::runbooks::steps::{self, KindGate, StepCx};
use crate::state::AppState;
use crate::timeline;

impl RunEngine {
    /// Runs a claimed run from `next_step` until it finishes or parks.
    pub(super) async fn drive(&self, state: &AppState, id: i64, h: &Held) -> anyhow::Result<()> {
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
            if h.is_stopped() {
                return self.stopped(&run, h, None).await;
            }
            match statuses.get(&idx).map(|(s, _)| *s) {
                // Ticked manual steps and finished child runs.
                Some(StepStatus::Succeeded | StepStatus::Skipped) => {
                    if let Some((_, r)) = statuses.get(&idx) {
                        outputs.insert(step.name.clone(), r.clone());
                    }
                    i += 1;
                    self.set_next(&self.pool, id, i as i32, &outputs).await?;
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
                            self.set_next(&self.pool, id, i as i32, &outputs).await?;
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
                    self.step_end(&run, idx, step, Err(msg.clone()), &Output::new(), None)
                        .await?;
                    match self
                        .on_failure(state, &run, step, idx, &msg, &mut outputs)
                        .await?
                    {
                        Flow::Next => {
                            i += 1;
                            self.set_next(&self.pool, id, i as i32, &outputs).await?;
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
                (None, a) => match steps::kind_gate(state, a).await {
                    KindGate::Policy(kind) => match action_policy(&self.pool, &kind).await? {
                        // The runbook's own approval, already given for
                        // these parameters, covers it when it was at least
                        // as strict: no second request for the same act.
                        Some(p) if self.covered_by_run_approval(&run, &p).await? => None,
                        other => other,
                    },
                    KindGate::Waived { kind, reason } => {
                        // Only worth saying when a policy would have applied.
                        if action_policy(&self.pool, &kind).await?.is_some() {
                            self.event(id, "approval.waived", Some(idx), None, &reason)
                                .await?;
                        }
                        None
                    }
                    KindGate::Free => None,
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
                    let delivered =
                        super::super::notify::send(state, id, severity, message).await?;
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
            match result {
                Ok(v) => {
                    outputs.insert(step.name.clone(), v.clone());
                    i += 1;
                    let next = Some((i as i32, &outputs));
                    self.step_end(&run, idx, step, Ok(v), &out, next).await?;
                }
                Err(e) => {
                    self.step_end(&run, idx, step, Err(e.clone()), &out, None)
                        .await?;
                    match self
                        .on_failure(state, &run, step, idx, &e, &mut outputs)
                        .await?
                    {
                        Flow::Next => {
                            i += 1;
                            self.set_next(&self.pool, id, i as i32, &outputs).await?;
                        }
                        Flow::End => return Ok(()),
                    }
                }
            }
        }
        self.finish(id, RunStatus::Succeeded, None).await?;
        Ok(())
    }

    /// Executes one step under its timeout, flushing output as it comes.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn run_step(
        &self,
        state: &AppState,
        run: &Claimed,
        idx: i32,
        step: &StepDef,
        action: &StepAction,
        out: &Output,
        h: &Held,
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
                _ = h.stopped() => {
                    return Err(Fail::Stopped);
                }
                _ = tick.tick() => {
                    let (text, truncated, version) = out.snapshot();
                    if version != flushed {
                        flushed = version;
                        let _ = sqlx::query!("UPDATE run_steps SET output = $3, output_truncated = $4
                             WHERE run_id = $1 AND idx = $2", run.id, idx, text, truncated)
                        .execute(&self.pool)
                        .await;
                        let _ = self.changes.send(run.id);
                    }
                }
            }
        }
    }

    /// Applies a failed step's `on_failure`.
    pub(super) async fn on_failure(
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
                let how =
                    super::super::notify::escalate(state, run.id, &run.runbook, &failed).await?;
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
    pub(super) async fn rollback(
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
            sqlx::query!(
                "INSERT INTO run_steps (run_id, idx, name, title, kind, phase)
                 VALUES ($1, $2, $3, $4, $5, 'rollback')
                 ON CONFLICT (run_id, idx) DO UPDATE SET status = 'pending', output = '',
                     output_truncated = false, result = '{}', error = NULL,
                     started_at = NULL, finished_at = NULL",
                run.id,
                idx,
                &step.name,
                &step.title,
                step.action.kind()
            )
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
                    sqlx::query!("UPDATE run_steps SET status = 'skipped', note = 'not run during a rollback'
                         WHERE run_id = $1 AND idx = $2", run.id, idx)
                    .execute(&self.pool)
                    .await?;
                    continue;
                }
                Ok(StepAction::Notify { message, severity }) => {
                    super::super::notify::send(state, run.id, &severity, &message)
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
            self.step_end(run, idx, step, result.clone(), &out, None)
                .await?;
            if let Ok(v) = result {
                outputs.insert(step.name.clone(), v);
            }
        }
        Ok(())
    }

    /// Has this gate enough approvals? Creates the request when there is
    /// none and parks the run; returns `true` when it may proceed.
    pub(super) async fn approved(
        &self,
        run: &Claimed,
        step: Option<i32>,
        policy: &ApprovalPolicy,
        subject: &str,
    ) -> anyhow::Result<bool> {
        let status: Option<String> = sqlx::query_scalar!("SELECT status FROM approvals WHERE run_id = $1 AND coalesce(step, -1) = coalesce($2, -1)
               AND binding = $3 AND status IN ('pending', 'approved')", run.id, step, &run.binding)
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
        let approval: i64 = sqlx::query_scalar!("INSERT INTO approvals (run_id, step, binding, subject, required, roles, requested_by_id, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
             RETURNING id", run.id, step, &run.binding, subject, policy.required as i32, &roles as &[&str], run.requested_by_id, expires.as_secs_f64())
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

    pub(super) async fn park_for_approval(
        &self,
        id: i64,
        step: Option<i32>,
        message: Option<&str>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query!(
            "UPDATE runs SET status = 'waiting', lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
            id,
            self.owner()
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(());
        }
        if let Some(idx) = step {
            sqlx::query!(
                "UPDATE run_steps SET status = 'waiting' WHERE run_id = $1 AND idx = $2",
                id,
                idx
            )
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
    pub(super) async fn covered_by_run_approval(
        &self,
        run: &Claimed,
        p: &ApprovalPolicy,
    ) -> sqlx::Result<bool> {
        let row = sqlx::query!(
            "SELECT required, roles FROM approvals
             WHERE run_id = $1 AND step IS NULL AND binding = $2 AND status = 'approved'",
            run.id,
            &run.binding
        )
        .fetch_optional(&self.pool)
        .await?
        .map(|r| (r.required, r.roles));
        Ok(row.is_some_and(|(required, roles)| {
            required as u32 >= p.required
                && roles
                    .iter()
                    .all(|r| p.roles.iter().any(|q| q.as_str() == r))
        }))
    }

    /// Parks the run on step `idx` (manual step or child run).
    pub(super) async fn park(
        &self,
        id: i64,
        idx: i32,
        kind: &str,
        message: &str,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query!("UPDATE runs SET status = 'waiting', lease_owner = NULL, lease_until = NULL, next_step = $3
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'", id, self.owner(), idx)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(());
        }
        sqlx::query!(
            "UPDATE run_steps SET status = 'waiting', started_at = coalesce(started_at, now())
             WHERE run_id = $1 AND idx = $2",
            id,
            idx
        )
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

    pub(super) async fn start_child(
        &self,
        state: &AppState,
        run: &Claimed,
        idx: i32,
        runbook: &str,
        params: &BTreeMap<String, Value>,
    ) -> anyhow::Result<()> {
        let runbook_id: Option<i64> =
            sqlx::query_scalar!("SELECT id FROM runbooks WHERE name = $1", runbook)
                .fetch_optional(&self.pool)
                .await?;
        let mut conn = self.pool.acquire().await?;
        let child = match runbook_id {
            None => Err(RunError::NotFound(format!("runbook \"{runbook}\""))),
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
                self.step_end(run, idx, step, Err(msg.clone()), &Output::new(), None)
                    .await?;
                let mut outputs = run.outputs.clone();
                if let Flow::Next = self
                    .on_failure(state, run, step, idx, &msg, &mut outputs)
                    .await?
                {
                    // Continue after the failed child: re-queue at the next step.
                    sqlx::query!("UPDATE runs SET status = 'queued', lease_owner = NULL, lease_until = NULL, next_step = $3
                         WHERE id = $1 AND lease_owner = $2", run.id, self.owner(), idx + 1)
                    .execute(&self.pool)
                    .await?;
                    self.leases.wake();
                }
            }
        }
        Ok(())
    }

    /// When a child run ends, its parent's step gets the outcome and the
    /// parent is queued again.
    pub(super) async fn notify_parent(&self, child: i64) {
        let r: Result<(), sqlx::Error> = async {
            type ChildRow = (Option<i64>, Option<i32>, String, Option<String>);
            let row: Option<ChildRow> = sqlx::query!(
                "SELECT parent_run_id, parent_step, status, error FROM runs WHERE id = $1",
                child
            )
            .fetch_optional(&self.pool)
            .await?
            .map(|r| (r.parent_run_id, r.parent_step, r.status, r.error));
            let Some((Some(parent), Some(step), status, error)) = row else {
                return Ok(());
            };
            let ok = status == "succeeded";
            let mut tx = self.pool.begin().await?;
            let failure = if ok {
                None
            } else {
                Some(format!(
                    "run #{child} {status}: {}",
                    error.unwrap_or_default()
                ))
            };
            sqlx::query!(
                "UPDATE run_steps SET status = $3, finished_at = now(), result = $4, error = $5
                 WHERE run_id = $1 AND idx = $2 AND status = 'waiting'",
                parent,
                step,
                if ok { "succeeded" } else { "failed" },
                json!({"run_id": child, "status": status}),
                failure
            )
            .execute(&mut *tx)
            .await?;
            let n = sqlx::query!(
                "UPDATE runs SET status = 'queued' WHERE id = $1 AND status = 'waiting'",
                parent
            )
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
    pub(super) async fn stopped(
        &self,
        run: &Claimed,
        h: &Held,
        step: Option<(i32, Output)>,
    ) -> anyhow::Result<()> {
        if h.why() == Some(Stop::LeaseLost) {
            tracing::warn!(run = run.id, "run lease lost; stopping without writing");
            return Ok(());
        }
        if let Some((idx, out)) = step {
            let (text, truncated, _) = out.snapshot();
            sqlx::query!(
                "UPDATE run_steps SET status = 'cancelled', finished_at = now(), output = $3,
                        output_truncated = $4, error = 'cancelled while running'
                 WHERE run_id = $1 AND idx = $2",
                run.id,
                idx,
                text,
                truncated
            )
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
    pub(super) async fn finish(
        &self,
        id: i64,
        status: RunStatus,
        error: Option<String>,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(String, String, Option<i64>, String)> = sqlx::query!(
            r#"UPDATE runs SET status = $3, finished_at = now(), lease_owner = NULL,
                    lease_until = NULL, error = $4
             WHERE id = $1 AND lease_owner = $2
             RETURNING requested_by, requested_kind, requested_by_id,
                       (SELECT name FROM runbooks WHERE id = runbook_id) AS "runbook!""#,
            id,
            self.owner(),
            status.as_str(),
            error.as_deref()
        )
        .fetch_optional(&mut *tx)
        .await?
        .map(|r| {
            (
                r.requested_by,
                r.requested_kind,
                r.requested_by_id,
                r.runbook,
            )
        });
        let Some((name, kind, user, runbook)) = row else {
            return Ok(()); // not ours any more
        };
        sqlx::query!("UPDATE run_steps SET status = $2 WHERE run_id = $1 AND status IN ('pending', 'waiting')", id, if status == RunStatus::Cancelled {
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
        announce(&mut *tx, id).await?;
        tx.commit().await?;
        self.metrics.run_finished(&runbook, status.as_str());
        self.changed_here(id);
        self.notify_parent(id).await;
        Ok(())
    }
}

pub(super) fn capitalise(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
        None => String::new(),
    }
}

pub(super) enum Flow {
    Next,
    End,
}

/// How a step ended early, with the output it wrote.
pub(super) enum StepErr {
    Failed(String, Output),
    Stopped(Output),
}

/// How `run_step` ended early (the caller owns the output).
pub(super) enum Fail {
    Failed(String),
    Stopped,
}

/// A claimed run, loaded.
pub(super) struct Claimed {
    pub(super) id: i64,
    pub(super) runbook: String,
    pub(super) params: BTreeMap<String, Value>,
    pub(super) next_step: i32,
    pub(super) outputs: serde_json::Map<String, Value>,
    pub(super) actor: Actor,
    pub(super) requested_by_id: Option<i64>,
    pub(super) binding: Vec<u8>,
    pub(super) def: RunbookDef,
}
