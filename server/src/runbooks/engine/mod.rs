//! The run engine: runs are durable jobs of [`crate::jobs`].
//!
//! A run is a row in `runs`, a [`JobTable`] ([`Runs`]): the claim, heartbeat
//! and reaper are the shared mechanism of [`crate::jobs::lease`] with the
//! statements below, as the registry tasks `runs.claim`, `runs.heartbeat`
//! and `runs.reap` in every server process:
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
//!
//! Files: [`drive`] (the step loop of a claimed run), [`rows`] (its guarded
//! reads and writes), [`queue`] ([`enqueue`] and ending runs without a
//! lease).

use std::sync::Arc;
use std::time::Duration;

use opsdeck_wire::RunStatus;
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::audit::{self, Actor};
use crate::jobs::{Held, JobTable, Lease, Leases, Renewed, Stop, Task};
use crate::state::AppState;
use crate::timeline;

mod drive;
mod queue;
mod rows;

pub use queue::{
    action_policy, actor_from, enqueue, fail_parked, load_world, withdraw, NewRun, RunError,
};

/// Runs one process executes at once.
pub const MAX_CONCURRENT_RUNS: usize = 64;
/// How often live output is written while a step runs.
const FLUSH_EVERY: Duration = Duration::from_millis(300);
/// The `LISTEN` channel: run ids that were queued or changed.
pub const CHANNEL: &str = crate::fanout::RUNS;

/// The per-process engine.
pub struct RunEngine {
    pool: PgPool,
    /// This process's run leases (the one lease mechanism of [`crate::jobs`]).
    leases: Arc<Leases>,
    changes: broadcast::Sender<i64>,
    metrics: Arc<crate::metrics::Metrics>,
}

/// The `runs` table as a [`JobTable`]: claimed `queued` rows, renewed
/// `running` rows (with their cancel requests), reaped into `interrupted`.
pub struct Runs;

impl JobTable for Runs {
    type Cx = AppState;
    type Job = i64;
    const TASKS: [&'static str; 3] = ["runs.claim", "runs.heartbeat", "runs.reap"];
    const POLL: Duration = Duration::from_secs(1);
    const HEARTBEAT: bool = true;
    const REAP: bool = true;

    fn id(job: &i64) -> i64 {
        *job
    }

    async fn claim(state: &AppState, lease: &Lease, limit: i64) -> sqlx::Result<Vec<i64>> {
        sqlx::query_scalar!(
            r#"UPDATE runs SET status = 'running', lease_owner = $1,
                    lease_until = now() + make_interval(secs => $2),
                    started_at = coalesce(started_at, now())
             WHERE id IN (SELECT id FROM runs WHERE status = 'queued'
                          ORDER BY id LIMIT $3 FOR UPDATE SKIP LOCKED)
             RETURNING id"#,
            lease.owner(),
            lease.secs(),
            limit
        )
        .fetch_all(&state.pool)
        .await
    }

    async fn renew(state: &AppState, lease: &Lease) -> sqlx::Result<Vec<Renewed>> {
        let rows = sqlx::query!(
            r#"UPDATE runs SET lease_until = now() + make_interval(secs => $2)
             WHERE lease_owner = $1 AND status = 'running'
             RETURNING id, cancel_requested"#,
            lease.owner(),
            lease.secs()
        )
        .fetch_all(&state.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| Renewed {
                id: r.id,
                cancel: r.cancel_requested,
            })
            .collect())
    }

    async fn reap(state: &AppState) -> anyhow::Result<()> {
        Ok(state.runs().reap().await?)
    }

    async fn execute(
        state: AppState,
        _lease: Lease,
        id: i64,
        held: Arc<Held>,
        _stop: CancellationToken,
    ) {
        // A run outlives the shutdown of this process's tasks: it ends, or
        // its lease runs out with the process and the reaper marks it.
        let engine = state.runs().clone();
        if let Err(e) = engine.drive(&state, id, &held).await {
            tracing::error!(run = id, error = %e, "run failed inside the engine");
            let _ = engine
                .finish(id, RunStatus::Failed, Some(format!("engine error: {e}")))
                .await;
        }
        engine.changed(id).await;
    }
}

impl RunEngine {
    pub fn new(
        pool: PgPool,
        lease: Duration,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Arc<RunEngine> {
        Arc::new(RunEngine {
            pool,
            leases: Leases::new(Lease::new("", lease), MAX_CONCURRENT_RUNS),
            changes: broadcast::channel(1024).0,
            metrics,
        })
    }

    /// This process's lease owner id.
    pub fn owner(&self) -> &str {
        self.leases.lease().owner()
    }

    /// Run ids that changed (this process's writes and other processes'
    /// notifications); live views refetch on them.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.changes.subscribe()
    }

    /// Announces a change of a run to live views here and in other
    /// processes, and wakes claimers. Writers that hold the change's
    /// transaction use [`announce`] in it and [`Self::changed_here`] after
    /// its commit instead: one commit, not two.
    pub async fn changed(&self, run_id: i64) {
        self.changed_here(run_id);
        let _ = announce(&self.pool, run_id).await;
    }

    /// After the commit that [`announce`]d `run_id`: this process's live
    /// views and claimers (the notification reaches the other processes).
    pub fn changed_here(&self, run_id: i64) {
        let _ = self.changes.send(run_id);
        self.leases.wake();
    }

    /// Asks the task running `run_id` in this process to stop (cancel).
    pub fn cancel_local(&self, run_id: i64) {
        self.leases.stop(run_id, Stop::Cancel);
    }

    /// The claim, heartbeat and reap tasks for the registry (other
    /// processes' notifications arrive through [`crate::fanout`]
    /// ([`Self::notified`]).
    pub fn tasks(&self, state: AppState, stop: CancellationToken) -> Vec<Task> {
        crate::jobs::lease::tasks::<Runs>(self.leases.clone(), state, stop)
    }

    /// A notification on [`CHANNEL`] (delivered by [`crate::fanout`]): the
    /// payload is the id of the run that changed (live views refetch it);
    /// any notification wakes the claimers, since it may be a new run.
    pub fn notified(&self, payload: &str) {
        if let Ok(id) = payload.parse::<i64>() {
            let _ = self.changes.send(id);
        }
        self.leases.wake();
    }

    /// Turns runs whose lease ran out into `interrupted`, and expires
    /// approvals past their deadline (their runs fail).
    pub async fn reap(&self) -> sqlx::Result<()> {
        let mut tx = self.pool.begin().await?;
        let dead: Vec<(i64, String, String)> = sqlx::query!(
            r#"UPDATE runs SET status = 'interrupted', lease_owner = NULL, lease_until = NULL,
                    finished_at = now(),
                    error = 'the server running it stopped before it finished (its lease ran out)'
             WHERE status = 'running' AND lease_until < now()
             RETURNING id, requested_by, (SELECT name FROM runbooks WHERE id = runbook_id) AS "runbook!""#
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.requested_by, r.runbook))
        .collect();
        for (id, requested_by, _) in &dead {
            sqlx::query!(
                "UPDATE run_steps SET status = 'interrupted', finished_at = now(),
                        error = 'interrupted: the server running it stopped'
                 WHERE run_id = $1 AND status = 'running'",
                id
            )
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
        let expired: Vec<(i64, i64, Option<i32>)> = sqlx::query!(
            "UPDATE approvals SET status = 'expired', decided_at = now()
             WHERE status = 'pending' AND expires_at < now()
             RETURNING id, run_id, step"
        )
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.id, r.run_id, r.step))
        .collect();
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
}

/// Tells every process that run `run_id` changed, as part of `conn`'s
/// transaction: Postgres delivers the notification at its commit, and not
/// at all if it rolls back.
pub async fn announce<'c>(conn: impl sqlx::PgExecutor<'c>, run_id: i64) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_notify($1, $2)", CHANNEL, run_id.to_string())
        .execute(conn)
        .await
        .map(drop)
}
