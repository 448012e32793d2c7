//! Durable jobs: rows of a table claimed under a lease.
//!
//! A table of jobs ([`JobTable`]) gives the statements; this module gives
//! the mechanism every such table shares:
//!
//! * **Claim**: due rows are taken with `FOR UPDATE SKIP LOCKED`, each with
//!   `lease_owner` = this process ([`Lease::owner`]) and `lease_until` =
//!   now + the lease; two processes never take the same row. At most as
//!   many rows as free slots are claimed; each is executed in its own
//!   short-lived task.
//! * **Heartbeat** (tables that have one): every third of the lease the
//!   owner renews all its rows in one statement. A row the renewal no longer
//!   returns was taken away (its lease ran out): its task is told to stop
//!   without writing ([`Stop::LeaseLost`]); a row whose renewal carries a
//!   cancel request is told [`Stop::Cancel`].
//! * **Reap**: every half lease, rows whose lease ran out are marked
//!   `interrupted` (runs) or handed back, which for the outbox is the claim
//!   itself (it also takes rows whose lease ran out).
//! * **Guarded writes**: every write of a claimed row says `WHERE
//!   lease_owner = <owner>`, so a process that lost its lease cannot
//!   overwrite what another one recorded. These statements belong to the
//!   table's owner; [`Lease::owner`] is what they bind.
//!
//! [`tasks`] turns a table into the registry's tasks (`<name>.claim`,
//! `<name>.heartbeat`, `<name>.reap`).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;

use super::registry::{Pace, Scope, Task};

/// This process's identity as a lease owner, and the lease's length.
#[derive(Debug, Clone)]
pub struct Lease {
    owner: String,
    ttl: Duration,
}

impl Lease {
    /// A new owner id (`<prefix><uuid>`).
    pub fn new(prefix: &str, ttl: Duration) -> Lease {
        Lease {
            owner: format!("{prefix}{}", uuid::Uuid::new_v4()),
            ttl,
        }
    }

    /// What guarded writes bind as `lease_owner`.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The lease in seconds, as statements bind it
    /// (`make_interval(secs => $n)`).
    pub fn secs(&self) -> f64 {
        self.ttl.as_secs_f64()
    }
}

/// Why a job's task is asked to stop early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// Someone asked to cancel it.
    Cancel,
    /// Its lease ran out and another process may own it: stop, write nothing.
    LeaseLost,
}

/// A job this process holds: the stop signal its task watches.
#[derive(Debug, Default)]
pub struct Held {
    token: CancellationToken,
    why: Mutex<Option<Stop>>,
}

impl Held {
    /// Asks the task to stop; the first reason given wins.
    pub fn stop(&self, why: Stop) {
        lock(&self.why).get_or_insert(why);
        self.token.cancel();
    }

    /// Why it was asked to stop, if it was.
    pub fn why(&self) -> Option<Stop> {
        *lock(&self.why)
    }

    pub fn is_stopped(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes when the task is asked to stop.
    pub async fn stopped(&self) {
        self.token.cancelled().await
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The jobs of one table this process holds: the lease, the slots, the
/// held rows and the claimer's wake signal.
#[derive(Debug)]
pub struct Leases {
    lease: Lease,
    slots: Arc<Semaphore>,
    held: Mutex<HashMap<i64, Arc<Held>>>,
    wake: Arc<Notify>,
}

impl Leases {
    /// `parallel` jobs at most at once.
    pub fn new(lease: Lease, parallel: usize) -> Arc<Leases> {
        Self::with_wake(lease, parallel, Arc::new(Notify::new()))
    }

    /// As [`Leases::new`], with a wake signal shared with code that queues
    /// rows.
    pub fn with_wake(lease: Lease, parallel: usize, wake: Arc<Notify>) -> Arc<Leases> {
        Arc::new(Leases {
            lease,
            slots: Arc::new(Semaphore::new(parallel)),
            held: Mutex::new(HashMap::new()),
            wake,
        })
    }

    pub fn lease(&self) -> &Lease {
        &self.lease
    }

    /// Makes the claimer look for rows now.
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Asks the task of a held job to stop.
    pub fn stop(&self, id: i64, why: Stop) {
        if let Some(h) = lock(&self.held).get(&id) {
            h.stop(why);
        }
    }

    /// The ids this process holds.
    pub fn held(&self) -> Vec<i64> {
        lock(&self.held).keys().copied().collect()
    }

    /// Applies a renewal's answer: held rows it did not return lost their
    /// lease, those it returned with a cancel request are cancelled.
    pub fn renewed(&self, mine: &[i64], answer: &[Renewed]) {
        let got: HashMap<i64, bool> = answer.iter().map(|r| (r.id, r.cancel)).collect();
        let held = lock(&self.held);
        for id in mine {
            match (got.get(id), held.get(id)) {
                (Some(true), Some(h)) => h.stop(Stop::Cancel),
                (None, Some(h)) => h.stop(Stop::LeaseLost),
                _ => {}
            }
        }
    }
}

/// A row the heartbeat renewed.
#[derive(Debug, Clone, Copy)]
pub struct Renewed {
    pub id: i64,
    /// Someone asked to cancel it.
    pub cancel: bool,
}

/// A table of leased jobs: its statements and what executing a row means.
pub trait JobTable: Send + Sync + 'static {
    /// What executing needs (the app state).
    type Cx: Clone + Send + Sync + 'static;
    /// A claimed row.
    type Job: Send + 'static;
    /// The names of its claim, heartbeat and reap tasks.
    const TASKS: [&'static str; 3];
    /// How often the claimer looks for rows without being woken.
    const POLL: Duration;
    /// Whether held rows are renewed (else a lease simply runs out).
    const HEARTBEAT: bool;
    /// Whether rows whose lease ran out need reaping (else the claim takes
    /// them back).
    const REAP: bool;

    fn id(job: &Self::Job) -> i64;

    /// Claims up to `limit` due rows for `lease` (`FOR UPDATE SKIP LOCKED`).
    fn claim(
        cx: &Self::Cx,
        lease: &Lease,
        limit: i64,
    ) -> impl Future<Output = sqlx::Result<Vec<Self::Job>>> + Send;

    /// Renews every row `lease` holds (only called with [`Self::HEARTBEAT`]).
    fn renew(
        cx: &Self::Cx,
        lease: &Lease,
    ) -> impl Future<Output = sqlx::Result<Vec<Renewed>>> + Send;

    /// Marks or hands back rows whose lease ran out (only called with
    /// [`Self::REAP`]).
    fn reap(cx: &Self::Cx) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Executes one claimed row; `held` says when to stop early, `stop` is
    /// the process's shutdown.
    fn execute(
        cx: Self::Cx,
        lease: Lease,
        job: Self::Job,
        held: Arc<Held>,
        stop: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static;
}

/// The registry tasks of a table: claim (and heartbeat, reap when the table
/// has them), in every process.
pub fn tasks<T: JobTable>(leases: Arc<Leases>, cx: T::Cx, stop: CancellationToken) -> Vec<Task> {
    let mut tasks = Vec::new();
    let [claim_name, heartbeat_name, reap_name] = T::TASKS;
    let wake = leases.wake.clone();
    tasks.push(
        Task::every(
            claim_name,
            T::POLL,
            Scope::EveryProcess,
            (leases.clone(), cx.clone(), stop),
            |(leases, cx, stop)| async move { claim::<T>(&leases, &cx, &stop).await },
        )
        .wake(wake),
    );
    if T::HEARTBEAT {
        let every = leases.lease.ttl / 3;
        tasks.push(
            Task::every(
                heartbeat_name,
                every,
                Scope::EveryProcess,
                (leases.clone(), cx.clone()),
                |(leases, cx)| async move {
                    let mine = leases.held();
                    if mine.is_empty() {
                        return Ok(Pace::Normal);
                    }
                    // The database is away: leases may run out; the reaper of
                    // whichever process sees it first acts.
                    let answer = T::renew(&cx, &leases.lease).await?;
                    leases.renewed(&mine, &answer);
                    Ok(Pace::Normal)
                },
            )
            .delay_first(),
        );
    }
    if T::REAP {
        tasks.push(Task::every(
            reap_name,
            leases.lease.ttl / 2,
            Scope::EveryProcess,
            cx,
            |cx| async move {
                T::reap(&cx).await?;
                Ok(Pace::Normal)
            },
        ));
    }
    tasks
}

async fn claim<T: JobTable>(
    leases: &Arc<Leases>,
    cx: &T::Cx,
    stop: &CancellationToken,
) -> anyhow::Result<Pace> {
    let free = leases.slots.available_permits();
    if free == 0 {
        return Ok(Pace::Normal);
    }
    let jobs = T::claim(cx, &leases.lease, free as i64).await?;
    let full = jobs.len() == free;
    for job in jobs {
        let Ok(permit) = leases.slots.clone().try_acquire_owned() else {
            break;
        };
        let id = T::id(&job);
        let held = Arc::new(Held::default());
        lock(&leases.held).insert(id, held.clone());
        let (leases, cx, stop) = (leases.clone(), cx.clone(), stop.clone());
        tokio::spawn(async move {
            T::execute(cx, leases.lease.clone(), job, held, stop).await;
            lock(&leases.held).remove(&id);
            drop(permit);
            leases.wake();
        });
    }
    Ok(if full { Pace::Again } else { Pace::Normal })
}
