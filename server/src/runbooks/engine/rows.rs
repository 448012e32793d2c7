//! The run engine's writes and reads of a claimed run's rows, each guarded
//! by `lease_owner = me`.

use std::collections::{BTreeMap, HashMap};

use opsdeck_wire::{RunbookDef, StepDef, StepStatus};
use serde_json::{json, Value};

use super::drive::*;
use super::*;
use crate::audit::{self, Actor};
use crate::runbooks::output::Output;
use crate::runbooks::steps;
use crate::timeline;

impl RunEngine {
    pub(super) async fn load_claimed(&self, id: i64) -> anyhow::Result<Option<Claimed>> {
        let row = sqlx::query!(
            "SELECT r.id, r.params, r.next_step, r.outputs, r.requested_by, r.requested_kind,
                    r.requested_by_id, r.binding, b.name, v.definition
             FROM runs r JOIN runbooks b ON b.id = r.runbook_id
             JOIN runbook_versions v ON v.runbook_id = r.runbook_id AND v.version = r.version
             WHERE r.id = $1 AND r.lease_owner = $2 AND r.status = 'running'",
            id,
            self.owner()
        )
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else { return Ok(None) };
        let params: BTreeMap<String, Value> = serde_json::from_value(r.params)?;
        let outputs = match r.outputs {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        };
        let def: RunbookDef = serde_json::from_value(r.definition)?;
        let user: Option<i64> = r.requested_by_id;
        Ok(Some(Claimed {
            id,
            runbook: r.name,
            params,
            next_step: r.next_step,
            outputs,
            actor: actor_from(&r.requested_by, &r.requested_kind, user),
            requested_by_id: user,
            binding: r.binding,
            def,
        }))
    }

    pub(super) async fn step_statuses(
        &self,
        id: i64,
    ) -> sqlx::Result<HashMap<i32, (StepStatus, Value)>> {
        let rows = sqlx::query!(
            "SELECT idx, status, result FROM run_steps WHERE run_id = $1",
            id
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.idx, r.status, r.result))
            .filter_map(|(i, s, r)| StepStatus::parse(&s).map(|s| (i, (s, r))))
            .collect())
    }

    pub(super) async fn step_error(&self, id: i64, idx: i32) -> sqlx::Result<String> {
        let e: Option<String> = sqlx::query_scalar!(
            "SELECT error FROM run_steps WHERE run_id = $1 AND idx = $2",
            id,
            idx
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(e.unwrap_or_else(|| "failed".into()))
    }

    pub(super) async fn approvers(&self, id: i64, step: Option<i32>) -> sqlx::Result<Vec<String>> {
        sqlx::query_scalar!(
            "SELECT v.username FROM approval_votes v JOIN approvals a ON a.id = v.approval_id
             WHERE a.run_id = $1 AND coalesce(a.step, -1) = coalesce($2, -1)
               AND a.status = 'approved' AND v.approve ORDER BY v.at",
            id,
            step
        )
        .fetch_all(&self.pool)
        .await
    }

    /// Marks a step running; `false` when the run is no longer ours.
    pub(super) async fn step_begin(&self, id: i64, idx: i32) -> anyhow::Result<bool> {
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query!(
            "UPDATE run_steps SET status = 'running', started_at = now(), finished_at = NULL,
                    output = '', output_truncated = false, error = NULL
             WHERE run_id = $1 AND idx = $2
               AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_owner = $3 AND status = 'running')",
            id,
            idx,
            self.owner()
        )
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n == 0 {
            return Ok(false);
        }
        let name: String = sqlx::query_scalar!(
            r#"SELECT coalesce(nullif(title, ''), name) AS "name!" FROM run_steps WHERE run_id = $1 AND idx = $2"#,
            id,
            idx
        )
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
        announce(&mut *tx, id).await?;
        tx.commit().await?;
        self.changed_here(id);
        Ok(true)
    }

    /// Records a step's end with its audit entry and timeline event, and
    /// with `next` (the step to run next and the outputs so far) the run's
    /// progress, in one transaction.
    pub(super) async fn step_end(
        &self,
        run: &Claimed,
        idx: i32,
        step: &StepDef,
        result: Result<Value, String>,
        out: &Output,
        next: Option<(i32, &serde_json::Map<String, Value>)>,
    ) -> anyhow::Result<()> {
        let (text, truncated, _) = out.snapshot();
        let mut tx = self.pool.begin().await?;
        let (status, value, error) = match &result {
            Ok(v) => {
                let mut v = v.clone();
                crate::runbooks::output::mask_value(&mut v);
                ("succeeded", v, None)
            }
            // Credentials in URLs never reach the stored error either.
            Err(e) => (
                "failed",
                json!({}),
                Some(crate::runbooks::output::mask_credentials(e).into_owned()),
            ),
        };
        let n = sqlx::query!(
            "UPDATE run_steps SET status = $3, finished_at = now(), output = $4,
                    output_truncated = $5, result = $6, error = $7
             WHERE run_id = $1 AND idx = $2
               AND EXISTS (SELECT 1 FROM runs WHERE id = $1 AND lease_owner = $8 AND status = 'running')",
            run.id,
            idx,
            status,
            text,
            truncated,
            value,
            error.as_deref(),
            self.owner()
        )
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
        if let Some((next, outputs)) = next {
            self.set_next(&mut *tx, run.id, next, outputs).await?;
        }
        announce(&mut *tx, run.id).await?;
        tx.commit().await?;
        self.changed_here(run.id);
        Ok(())
    }

    pub(super) async fn set_next<'c>(
        &self,
        conn: impl sqlx::PgExecutor<'c>,
        id: i64,
        next: i32,
        outputs: &serde_json::Map<String, Value>,
    ) -> sqlx::Result<()> {
        sqlx::query!(
            "UPDATE runs SET next_step = $3, outputs = $4 WHERE id = $1 AND lease_owner = $2",
            id,
            self.owner(),
            next,
            Value::Object(outputs.clone())
        )
        .execute(conn)
        .await?;
        Ok(())
    }

    pub(super) async fn event(
        &self,
        id: i64,
        kind: &str,
        step: Option<i32>,
        actor: Option<&Actor>,
        message: &str,
    ) -> anyhow::Result<()> {
        let mut tx = self.pool.begin().await?;
        timeline::append(&mut tx, "run", id, kind, actor, step, message, json!({})).await?;
        announce(&mut *tx, id).await?;
        tx.commit().await?;
        self.changed_here(id);
        Ok(())
    }
}
