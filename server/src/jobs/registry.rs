//! The registry of background tasks: each has a name, a timetable (a period,
//! or a cron expression in a time zone), a scope (every process, or one
//! process at a time) and a metrics family; all end on one shutdown.
//!
//! A task's body is called once per tick and never overlaps itself. After a
//! tick the driver waits for the next one (a period counts from the end of
//! the previous tick, a cron occurrence is a wall-clock time), for the
//! task's wake signal, or for the pace the body asked for ([`Pace`]).
//!
//! **One process at a time.** The driver takes a session-level Postgres
//! advisory lock (keyed by the task's name, or an explicit key) on a
//! dedicated connection and ticks only while it holds it. The connection is
//! pinged before a tick at most every [`PING`]; when it is lost (and with it
//! the lock) the task's `on_lose` hook runs and the driver goes back to
//! standby: every [`STANDBY`] it runs `on_standby` and tries the lock again.
//! A process that dies releases the lock with its connection.
//!
//! **Services** are long-lived futures (a `LISTEN` loop, the health
//! engine's scheduler) that the registry starts once and drops on shutdown.

use std::future::Future;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use futures::future::BoxFuture;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry as PromRegistry, Unit};
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How often a one-process task checks that it still holds its lock.
pub const PING: Duration = Duration::from_secs(10);
/// How often a one-process task on standby tries to take the lock.
pub const STANDBY: Duration = Duration::from_secs(5);

/// When a task ticks.
pub enum Every {
    /// A pause counted from the end of the previous tick.
    Period(Duration),
    /// The occurrences of a cron expression (seconds first) in a zone.
    Cron(Box<Cron>, Tz),
}

/// Where a task runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// In every server process (the work itself is claimed or idempotent).
    EveryProcess,
    /// In one process at a time (a Postgres advisory lock).
    OneProcess,
}

/// What a tick asks of the next one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// Wait for the timetable (or a wake).
    Normal,
    /// Tick again after this pause (or a wake), whatever the timetable.
    Soon(Duration),
    /// Tick again at once (more work is waiting).
    Again,
}

/// A signal that makes a task tick before its time.
pub trait Wake: Send + 'static {
    /// Completes when the task should tick.
    fn wait(&mut self) -> BoxFuture<'_, ()>;
}

impl Wake for &'static Notify {
    fn wait(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.notified())
    }
}

impl Wake for Arc<Notify> {
    fn wait(&mut self) -> BoxFuture<'_, ()> {
        Box::pin(self.notified())
    }
}

type Body = Box<dyn FnMut() -> BoxFuture<'static, anyhow::Result<Pace>> + Send>;
type Hook = Box<dyn FnMut() -> BoxFuture<'static, anyhow::Result<()>> + Send>;
type Service = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

enum Kind {
    Ticks {
        every: Every,
        body: Body,
    },
    Service(Service),
    /// A service that has run.
    Ended,
}

/// One background task (see the module doc).
pub struct Task {
    name: &'static str,
    scope: Scope,
    kind: Kind,
    wake: Option<Box<dyn Wake>>,
    delay_first: bool,
    lock_key: Option<i64>,
    on_lead: Option<Hook>,
    on_lose: Option<Box<dyn FnMut() + Send>>,
    on_standby: Option<Hook>,
}

fn boxed<C, F, Fut, T>(cx: C, f: F) -> Box<dyn FnMut() -> BoxFuture<'static, T> + Send>
where
    C: Clone + Send + 'static,
    F: Fn(C) -> Fut + Send + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Box::new(move || Box::pin(f(cx.clone())))
}

impl Task {
    fn with(name: &'static str, scope: Scope, kind: Kind) -> Task {
        Task {
            name,
            scope,
            kind,
            wake: None,
            delay_first: false,
            lock_key: None,
            on_lead: None,
            on_lose: None,
            on_standby: None,
        }
    }

    /// A task ticking `period` after the end of its previous tick (the first
    /// tick at start, unless [`Task::delay_first`]). `body` gets a clone of
    /// `cx` each tick.
    pub fn every<C, F, Fut>(
        name: &'static str,
        period: Duration,
        scope: Scope,
        cx: C,
        body: F,
    ) -> Task
    where
        C: Clone + Send + 'static,
        F: Fn(C) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<Pace>> + Send + 'static,
    {
        Task::with(
            name,
            scope,
            Kind::Ticks {
                every: Every::Period(period),
                body: boxed(cx, body),
            },
        )
    }

    /// A task ticking at the occurrences of `expr` (6 fields, seconds
    /// first) on `zone`'s wall clock.
    pub fn cron<C, F, Fut>(
        name: &'static str,
        expr: &str,
        zone: Tz,
        scope: Scope,
        cx: C,
        body: F,
    ) -> anyhow::Result<Task>
    where
        C: Clone + Send + 'static,
        F: Fn(C) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<Pace>> + Send + 'static,
    {
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .year(Year::Disallowed)
            .build()
            .parse(expr)
            .map_err(|e| anyhow::anyhow!("task {name}: cron \"{expr}\": {e}"))?;
        Ok(Task::with(
            name,
            scope,
            Kind::Ticks {
                every: Every::Cron(Box::new(cron), zone),
                body: boxed(cx, body),
            },
        ))
    }

    /// A long-lived future, started once; `stop` is cancelled at shutdown
    /// (the future is dropped then if it has not returned).
    pub fn service<C, F, Fut>(name: &'static str, scope: Scope, cx: C, body: F) -> Task
    where
        C: Send + 'static,
        F: FnOnce(C, CancellationToken) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        Task::with(
            name,
            scope,
            Kind::Service(Box::new(move |stop| Box::pin(body(cx, stop)))),
        )
    }

    /// Ticks early when `wake` fires.
    pub fn wake(mut self, wake: impl Wake) -> Task {
        self.wake = Some(Box::new(wake));
        self
    }

    /// The first tick waits one period (a heartbeat has nothing to renew at
    /// start).
    pub fn delay_first(mut self) -> Task {
        self.delay_first = true;
        self
    }

    /// The advisory lock key of a one-process task (default: a hash of the
    /// name).
    pub fn lock_key(mut self, key: i64) -> Task {
        self.lock_key = Some(key);
        self
    }

    /// Runs when this process takes the lock, before the first tick (an
    /// error releases the lock; it is tried again after [`STANDBY`]).
    pub fn on_lead<C, F, Fut>(mut self, cx: C, f: F) -> Task
    where
        C: Clone + Send + 'static,
        F: Fn(C) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.on_lead = Some(boxed(cx, f));
        self
    }

    /// Runs when this process loses (or gives up) the lock.
    pub fn on_lose(mut self, f: impl FnMut() + Send + 'static) -> Task {
        self.on_lose = Some(Box::new(f));
        self
    }

    /// Runs every [`STANDBY`] while another process holds the lock.
    pub fn on_standby<C, F, Fut>(mut self, cx: C, f: F) -> Task
    where
        C: Clone + Send + 'static,
        F: Fn(C) -> Fut + Send + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.on_standby = Some(boxed(cx, f));
        self
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    pub fn scope(&self) -> Scope {
        self.scope
    }

    fn key(&self) -> i64 {
        self.lock_key.unwrap_or_else(|| lock_key_of(self.name))
    }
}

/// A stable advisory lock key for a task name (FNV-1a, 64 bits).
pub fn lock_key_of(name: &str) -> i64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in "opsdeck.task.".bytes().chain(name.bytes()) {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h as i64
}

type Labels = Vec<(&'static str, String)>;
type GaugeF = Gauge<f64, AtomicU64>;

/// The metrics family of every task: `opsdeck_task_runs_total`,
/// `opsdeck_task_failures_total`, `opsdeck_task_last_duration_seconds` and
/// `opsdeck_task_leader`, labelled `task`.
#[derive(Debug, Clone, Default)]
pub struct TaskMetrics {
    runs: Family<Labels, Counter>,
    failures: Family<Labels, Counter>,
    duration: Family<Labels, GaugeF>,
    leader: Family<Labels, Gauge>,
}

impl TaskMetrics {
    /// Adds the families to a registry (prefixed there with `opsdeck_`).
    pub fn register(&self, registry: &mut PromRegistry) {
        registry.register(
            "task_runs",
            "Ticks of each background task in this process",
            self.runs.clone(),
        );
        registry.register(
            "task_failures",
            "Ticks of each background task that ended in an error",
            self.failures.clone(),
        );
        registry.register_with_unit(
            "task_last_duration",
            "How long each background task's last tick took",
            Unit::Seconds,
            self.duration.clone(),
        );
        registry.register(
            "task_leader",
            "1 while this process holds a one-process task's lock",
            self.leader.clone(),
        );
    }

    fn labels(task: &str) -> Labels {
        vec![("task", task.to_owned())]
    }

    fn ran(&self, task: &str, took: Duration, ok: bool) {
        let l = Self::labels(task);
        self.runs.get_or_create(&l).inc();
        if !ok {
            self.failures.get_or_create(&l).inc();
        }
        self.duration.get_or_create(&l).set(took.as_secs_f64());
    }

    fn lead(&self, task: &str, leads: bool) {
        self.leader
            .get_or_create(&Self::labels(task))
            .set(i64::from(leads));
    }
}

/// The process's tasks: added at start-up, started once by `serve`, stopped
/// together.
pub struct Registry {
    tasks: Mutex<Vec<Task>>,
    names: Mutex<Vec<(&'static str, Scope)>>,
    stop: CancellationToken,
    metrics: TaskMetrics,
}

impl Registry {
    pub fn new(metrics: TaskMetrics) -> Registry {
        Registry {
            tasks: Mutex::new(Vec::new()),
            names: Mutex::new(Vec::new()),
            stop: CancellationToken::new(),
            metrics,
        }
    }

    /// Adds a task (started by the next [`Registry::start`]).
    pub fn add(&self, task: Task) {
        lock(&self.names).push((task.name, task.scope));
        lock(&self.tasks).push(task);
    }

    /// Every task added, in order.
    pub fn names(&self) -> Vec<(&'static str, Scope)> {
        lock(&self.names).clone()
    }

    /// Cancelled at shutdown; for work a task hands to its own short-lived
    /// tasks.
    pub fn stopping(&self) -> CancellationToken {
        self.stop.clone()
    }

    /// Starts every task added so far. One-process tasks take their locks on
    /// connections of `pool`.
    pub fn start(&self, pool: &PgPool) {
        let tasks: Vec<Task> = std::mem::take(&mut *lock(&self.tasks));
        for task in tasks {
            let stop = self.stop.clone();
            let metrics = self.metrics.clone();
            let pool = pool.clone();
            tokio::spawn(drive(task, pool, stop, metrics));
        }
    }

    /// Ends every task (ticks in progress finish; services are dropped).
    pub fn shutdown(&self) {
        self.stop.cancel();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn drive(mut task: Task, pool: PgPool, stop: CancellationToken, metrics: TaskMetrics) {
    match task.scope {
        Scope::EveryProcess => {
            run(&mut task, None, &stop, &metrics).await;
        }
        Scope::OneProcess => loop {
            match take_lock(&pool, task.key()).await {
                Ok(Some(conn)) => {
                    tracing::info!(task = task.name, "task lock taken: this process runs it");
                    metrics.lead(task.name, true);
                    let mut conn = conn;
                    let lead = match task.on_lead.as_mut() {
                        Some(f) => f().await,
                        None => Ok(()),
                    };
                    match lead {
                        Ok(()) => run(&mut task, Some(&mut conn), &stop, &metrics).await,
                        Err(e) => tracing::warn!(
                            task = task.name,
                            error = format!("{e:#}"),
                            "taking over the task failed"
                        ),
                    }
                    metrics.lead(task.name, false);
                    if let Some(f) = task.on_lose.as_mut() {
                        f();
                    }
                    let _ = conn.close().await;
                }
                Ok(None) => {
                    if let Some(f) = task.on_standby.as_mut() {
                        if let Err(e) = f().await {
                            tracing::warn!(
                                task = task.name,
                                error = format!("{e:#}"),
                                "task standby step failed"
                            );
                        }
                    }
                }
                Err(e) => tracing::warn!(task = task.name, error = %e, "cannot take the task lock"),
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(STANDBY) => {}
            }
        },
    }
}

/// A dedicated connection holding the advisory lock `key`, or `None` when
/// another process holds it.
async fn take_lock(pool: &PgPool, key: i64) -> sqlx::Result<Option<PgConnection>> {
    let mut conn = pool.acquire().await?.detach();
    let got: Option<bool> = sqlx::query_scalar!("SELECT pg_try_advisory_lock($1)", key)
        .fetch_one(&mut conn)
        .await?;
    if got == Some(true) {
        Ok(Some(conn))
    } else {
        let _ = conn.close().await;
        Ok(None)
    }
}

/// Ticks until shutdown (or, holding `lock`, until the lock's connection is
/// lost).
async fn run(
    task: &mut Task,
    mut lock: Option<&mut PgConnection>,
    stop: &CancellationToken,
    metrics: &TaskMetrics,
) {
    let name = task.name;
    if matches!(task.kind, Kind::Service(_)) {
        let Kind::Service(service) = std::mem::replace(&mut task.kind, Kind::Ended) else {
            return;
        };
        metrics.ran(name, Duration::ZERO, true);
        tokio::select! {
            _ = stop.cancelled() => {}
            _ = service(stop.clone()) => {
                if !stop.is_cancelled() {
                    tracing::warn!(task = name, "background service ended");
                }
            }
        }
        return;
    }
    let Kind::Ticks { every, body } = &mut task.kind else {
        // A service that ended: a one-process service is not started twice.
        stop.cancelled().await;
        return;
    };
    let mut pause = if task.delay_first {
        Some(until_next(every))
    } else {
        None
    };
    let mut pinged = Instant::now();
    loop {
        if let Some(p) = pause {
            let woken = async {
                match task.wake.as_mut() {
                    Some(w) => w.wait().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = woken => {}
                _ = tokio::time::sleep(p) => {}
            }
        }
        if stop.is_cancelled() {
            return;
        }
        if let Some(conn) = lock.as_deref_mut() {
            if pinged.elapsed() >= PING {
                if let Err(e) = conn.ping().await {
                    tracing::warn!(task = name, error = %e, "task lock lost");
                    return;
                }
                pinged = Instant::now();
            }
        }
        let started = Instant::now();
        let result = body().await;
        metrics.ran(name, started.elapsed(), result.is_ok());
        pause = Some(match result {
            Ok(Pace::Normal) => until_next(every),
            Ok(Pace::Soon(d)) => d,
            Ok(Pace::Again) => Duration::ZERO,
            Err(e) => {
                tracing::warn!(
                    task = name,
                    error = format!("{e:#}"),
                    "background task failed"
                );
                until_next(every)
            }
        });
    }
}

/// The pause until the next tick of a timetable.
fn until_next(every: &Every) -> Duration {
    match every {
        Every::Period(p) => *p,
        Every::Cron(cron, tz) => {
            let now = Utc::now().with_timezone(tz);
            match cron.find_next_occurrence(&now, false) {
                Ok(next) => (next.with_timezone(&Utc) - Utc::now())
                    .to_std()
                    .unwrap_or(Duration::ZERO),
                // A timetable that never fires again: wait a day and look again.
                Err(_) => Duration::from_secs(86_400),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_distinct() {
        assert_eq!(lock_key_of("a"), lock_key_of("a"));
        assert_ne!(lock_key_of("checks.leader"), lock_key_of("report"));
    }

    #[test]
    fn cron_tasks_parse_and_wait_at_most_their_step() {
        let t = Task::cron(
            "t",
            "* * * * * *",
            chrono_tz::UTC,
            Scope::EveryProcess,
            (),
            |_| async { Ok(Pace::Normal) },
        )
        .expect("parses");
        let Kind::Ticks { every, .. } = &t.kind else {
            panic!("ticks")
        };
        assert!(until_next(every) <= Duration::from_secs(1));
        assert!(Task::cron(
            "t",
            "nonsense",
            chrono_tz::UTC,
            Scope::EveryProcess,
            (),
            |_| async { Ok(Pace::Normal) }
        )
        .is_err());
    }

    #[tokio::test]
    async fn a_task_ticks_again_when_asked_and_stops_at_shutdown() {
        let count = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let metrics = TaskMetrics::default();
        let stop = CancellationToken::new();
        let mut task = Task::every(
            "count",
            Duration::from_secs(3600),
            Scope::EveryProcess,
            count.clone(),
            |c| async move {
                let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(if n < 4 { Pace::Again } else { Pace::Normal })
            },
        );
        let s = stop.clone();
        let m = metrics.clone();
        let h = tokio::spawn(async move { run(&mut task, None, &s, &m).await });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 5);
        stop.cancel();
        tokio::time::timeout(Duration::from_secs(2), h)
            .await
            .expect("stops")
            .expect("joins");
        let mut reg = PromRegistry::default();
        metrics.register(&mut reg);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &reg).expect("encodes");
        assert!(out.contains(r#"task_runs_total{task="count"} 5"#), "{out}");
    }
}
