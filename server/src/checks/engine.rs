//! The health-check engine: schedules probes, damps flapping, records state
//! changes and rollups, keeps the status board and pushes its changes.
//!
//! ## Shape
//! - **Lease.** Only the instance holding the Postgres advisory lock
//!   [`LEASE_KEY`] (on a dedicated connection; the one-process task
//!   `checks.leader` of [`crate::jobs`]) probes; others follow the
//!   `checks` table every few seconds. A lost connection loses the lease and
//!   probing stops until it is taken again.
//! - **Scheduler.** One task, one binary heap of `(due, check, generation)`.
//!   A check's first probe is spread over its interval by a hash of its id
//!   (jitter: checks never align), later ones are due `interval` after the
//!   previous *due time* (no drift). A due check is handed to its own task,
//!   which waits for one of [`MAX_IN_FLIGHT`] permits and runs the probe
//!   under the check's timeout: a hanging target delays nothing else.
//!   Container checks are also probed at once when an engine event changes
//!   one of their containers (`events.rs`).
//! - **Results.** Each result goes through the check's "sustained for"
//!   window and its [`Damper`]; a settled change is queued for the writer
//!   (one transaction per batch: `checks` row + `check_events` row), and
//!   every result is added to the in-memory rollup of its minute.
//! - **Rollups.** Once a minute the finished minutes are written in one
//!   statement to `check_rollups_minute` and added to `check_rollups_hour`
//!   (sum + count, so partial flushes add up). A crash loses at most the
//!   unflushed minute of rollups; state changes are written at once.
//! - **Board.** Any state change, inventory change or engine event marks
//!   the board dirty; it is recomputed at most every [`BOARD_DEBOUNCE`],
//!   serialised once, and the services whose status changed are broadcast
//!   to every SSE client as one pre-serialised message.
//!
//! ## Files
//! This file holds the types, loading, the lease and `start`; the sections
//! are in `engine/`: `scheduler.rs`, `events.rs`, `probe_run.rs` (probing, heartbeats,
//! container grading), `recorder.rs` (damping, state-change writer,
//! rollups, sparklines, uptime), `board.rs` (the board and read views). The
//! SQL is in [`super::store`], except the lease's own statements.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use opsdeck_wire::{
    Check, CheckEngineStats, CheckSpec, CheckStatus, HostStatus, MaintenanceBanner,
    MaintenanceMark, Metric, ProbeResult, ServiceHealth, ServiceStatus, StatusChange, Tier, Uptime,
};
use sqlx::PgPool;
use tokio::sync::{broadcast, mpsc, Notify, Semaphore};

use super::damping::{Damper, Sustain};
use super::probe::{self, host::HostSampler, http::HttpClients, Probe};
use super::status::{self, CheckView, SvcInfo};
use super::store;
use crate::docker::EngineHub;
use crate::jobs::{Pace, Registry, Scope, Task};

/// Advisory lock key of the engine lease ("opsdeck.checks").
pub const LEASE_KEY: i64 = 0x6f70_7364_6b63_686b;
/// Probes running at once, at most.
pub const MAX_IN_FLIGHT: usize = 512;
/// The board is recomputed at most this often.
pub const BOARD_DEBOUNCE: Duration = Duration::from_millis(250);
/// Minutes of latency kept in memory for sparklines.
pub const SPARK_MINUTES: usize = 30;
/// Window over which container restarts count as a restart loop.
const RESTART_WINDOW: Duration = Duration::from_secs(600);

/// A check's definition, as stored.
#[derive(Debug, Clone)]
pub struct CheckDef {
    pub id: i64,
    pub service_id: Option<i64>,
    pub name: String,
    pub spec: CheckSpec,
    pub secret: Option<String>,
    pub heartbeat_token: Option<String>,
    pub interval: Duration,
    pub timeout: Duration,
    pub fail_after: u32,
    pub recover_after: u32,
    pub enabled: bool,
    pub created_at: DateTime<Utc>,
}

/// Runtime state of one check.
struct Runtime {
    damper: Damper,
    last: Option<ProbeResult>,
    sustain: Sustain,
    /// Container id → (when seen, restart count) samples within the window.
    restarts: HashMap<String, VecDeque<(Instant, i64)>>,
    last_heartbeat: Option<DateTime<Utc>>,
    /// Average latency per minute, newest last (sparkline).
    spark: VecDeque<(i64, Option<f64>)>,
    uptime_day: Option<f64>,
}

impl Runtime {
    fn new(
        damper: Damper,
        last: Option<ProbeResult>,
        last_heartbeat: Option<DateTime<Utc>>,
    ) -> Runtime {
        Runtime {
            damper,
            last,
            sustain: Sustain::default(),
            restarts: HashMap::new(),
            last_heartbeat,
            spark: VecDeque::new(),
            uptime_day: None,
        }
    }
}

struct CheckRt {
    def: CheckDef,
    generation: u64,
    rt: Mutex<Runtime>,
    /// A scrape check's recent samples (carried over an edit).
    scrape: Mutex<probe::scrape::Window>,
}

/// One minute of one check, accumulating.
#[derive(Debug, Clone, Copy, Default)]
struct Acc {
    probes: i32,
    ok: i32,
    warning: i32,
    critical: i32,
    lat_min: Option<f64>,
    lat_max: Option<f64>,
    lat_sum: f64,
    lat_count: i32,
}

impl Acc {
    fn add(&mut self, status: CheckStatus, latency: Option<f64>) {
        self.probes += 1;
        match status {
            CheckStatus::Ok => self.ok += 1,
            CheckStatus::Warning => self.warning += 1,
            _ => self.critical += 1,
        }
        if let Some(l) = latency {
            self.lat_min = Some(self.lat_min.map_or(l, |m| m.min(l)));
            self.lat_max = Some(self.lat_max.map_or(l, |m| m.max(l)));
            self.lat_sum += l;
            self.lat_count += 1;
        }
    }
}

struct Change {
    check_id: i64,
    from: CheckStatus,
    result: ProbeResult,
}

/// What the status stream pushes to every client.
#[derive(Debug, Clone)]
pub enum Push {
    /// A `StatusChange`, serialised once for all clients.
    Change(Bytes),
    /// Sparklines and uptime moved on (once a minute): refetch the board.
    Refresh,
}

/// The service side of the board: inventory facts the status model needs.
#[derive(Default)]
struct Catalog {
    services: Vec<SvcInfo>,
    public: HashMap<i64, (bool, Option<String>)>,
    fields: HashMap<i64, crate::inventory::Fields>,
}

/// Maintenance in effect, as `crate::maintenance` last loaded it.
#[derive(Default, PartialEq)]
struct Maintenance {
    marks: HashMap<i64, MaintenanceMark>,
    banners: Vec<MaintenanceBanner>,
}

#[derive(Default)]
struct BoardCache {
    version: u64,
    statuses: HashMap<i64, ServiceStatus>,
    json: Option<Bytes>,
}

#[derive(Default)]
struct Stats {
    probes: AtomicU64,
    in_flight: AtomicU32,
    rollup_rows: AtomicU64,
    events: AtomicU64,
    /// Container checks probed on an engine event (`engine/events.rs`).
    event_probes: AtomicU64,
    lags: Mutex<VecDeque<f64>>,
    /// Probes recorded per check: ok, warning, critical, unknown (`/metrics`).
    per_check: Mutex<HashMap<i64, [u64; 4]>>,
}

/// The engine. One per process, shared by the router and background tasks.
pub struct HealthHub {
    pool: PgPool,
    engines: Arc<EngineHub>,
    http: HttpClients,
    host: HostSampler,
    checks: RwLock<HashMap<i64, Arc<CheckRt>>>,
    generation: AtomicU64,
    schedule_tx: mpsc::UnboundedSender<(i64, u64)>,
    schedule_rx: Mutex<Option<mpsc::UnboundedReceiver<(i64, u64)>>>,
    changes_tx: mpsc::UnboundedSender<Change>,
    changes_rx: Mutex<Option<mpsc::UnboundedReceiver<Change>>>,
    rollups: Mutex<HashMap<(i64, i64), Acc>>,
    catalog: RwLock<Catalog>,
    maintenance: RwLock<Maintenance>,
    board: RwLock<BoardCache>,
    board_dirty: Notify,
    inventory_dirty: AtomicBool,
    events: broadcast::Sender<Push>,
    leader: AtomicBool,
    permits: Arc<Semaphore>,
    stats: Stats,
    /// The log-pattern checks' followers, by check id (probing process only).
    log_watches: Mutex<HashMap<i64, probe::logs::LogWatch>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|p| p.into_inner())
}

fn minute_of(at: DateTime<Utc>) -> i64 {
    at.timestamp().div_euclid(60)
}

/// Jitter: where in its interval a check's first probe falls.
fn first_offset(id: i64, interval: Duration) -> Duration {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h.finish() % ms)
}

impl HealthHub {
    /// `allow_link_local`: the SSRF policy of HTTP probes
    /// (`Settings::checks_allow_link_local`).
    pub fn new(pool: PgPool, engines: Arc<EngineHub>, allow_link_local: bool) -> Arc<HealthHub> {
        let (schedule_tx, schedule_rx) = mpsc::unbounded_channel();
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        Arc::new(HealthHub {
            pool,
            engines,
            http: HttpClients::with_policy(crate::net::guard::Policy::checks(allow_link_local)),
            host: HostSampler::new(),
            checks: RwLock::new(HashMap::new()),
            generation: AtomicU64::new(1),
            schedule_tx,
            schedule_rx: Mutex::new(Some(schedule_rx)),
            changes_tx,
            changes_rx: Mutex::new(Some(changes_rx)),
            rollups: Mutex::new(HashMap::new()),
            catalog: RwLock::new(Catalog::default()),
            maintenance: RwLock::new(Maintenance::default()),
            board: RwLock::new(BoardCache::default()),
            board_dirty: Notify::new(),
            inventory_dirty: AtomicBool::new(true),
            events: broadcast::channel(256).0,
            leader: AtomicBool::new(false),
            permits: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
            stats: Stats::default(),
            log_watches: Mutex::new(HashMap::new()),
        })
    }

    /// Loads checks and inventory and adds the engine's tasks to the jobs
    /// registry: the lease (`checks.leader`) and its loops (services).
    pub async fn start(self: &Arc<Self>, jobs: &Registry) -> anyhow::Result<()> {
        self.reload_all().await?;
        self.reload_catalog().await?;
        self.load_sparklines().await?;
        self.refresh_uptime().await?;
        self.recompute_board();
        let sched_rx = lock(&self.schedule_rx).take().expect("started once");
        let changes_rx = lock(&self.changes_rx).take().expect("started once");
        let every = Scope::EveryProcess;
        jobs.add(self.leader_task());
        jobs.add(Task::service(
            "checks.scheduler",
            every,
            self.clone(),
            move |hub, _| hub.scheduler(sched_rx),
        ));
        jobs.add(Task::service(
            "checks.writer",
            every,
            self.clone(),
            move |hub, _| hub.writer(changes_rx),
        ));
        jobs.add(Task::service(
            "checks.rollups",
            every,
            self.clone(),
            |hub, _| hub.minutely(),
        ));
        jobs.add(Task::service(
            "checks.board",
            every,
            self.clone(),
            |hub, _| hub.board_task(),
        ));
        jobs.add(Task::service(
            "checks.events",
            every,
            self.clone(),
            |hub, _| hub.events_task(),
        ));
        Ok(())
    }

    // ---------------------------------------------------------------- loading

    async fn load_defs(
        &self,
        id: Option<i64>,
    ) -> sqlx::Result<Vec<(CheckDef, Damper, Option<ProbeResult>, Option<DateTime<Utc>>)>> {
        let rows = store::defs(&self.pool, id).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id = r.id;
            let spec: CheckSpec = match serde_json::from_value(r.spec) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(check = id, error = %e, "stored check spec does not parse; skipped");
                    continue;
                }
            };
            let def = CheckDef {
                id,
                service_id: r.service_id,
                name: r.name,
                spec,
                secret: r.secret,
                heartbeat_token: r.heartbeat_token,
                interval: Duration::from_secs(r.interval_s as u64),
                timeout: Duration::from_millis(r.timeout_ms as u64),
                fail_after: r.fail_after as u32,
                recover_after: r.recover_after as u32,
                enabled: r.enabled,
                created_at: r.created_at,
            };
            let status = CheckStatus::parse(&r.status).unwrap_or_default();
            let damper = Damper::new(status, r.status_since);
            let last = r.last_result.and_then(|v| serde_json::from_value(v).ok());
            out.push((def, damper, last, r.last_heartbeat_at));
        }
        Ok(out)
    }

    async fn reload_all(&self) -> anyhow::Result<()> {
        let defs = self.load_defs(None).await?;
        let mut map = HashMap::with_capacity(defs.len());
        for (def, damper, last, hb) in defs {
            let generation = self.generation.fetch_add(1, Ordering::Relaxed);
            let id = def.id;
            map.insert(
                id,
                Arc::new(CheckRt {
                    def,
                    generation,
                    rt: Mutex::new(Runtime::new(damper, last, hb)),
                    scrape: Mutex::default(),
                }),
            );
            let _ = self.schedule_tx.send((id, generation));
        }
        lock(&self.log_watches).retain(|id, _| map.contains_key(id));
        *write(&self.checks) = map;
        Ok(())
    }

    /// Re-reads one check after a change through the API (or notices it is
    /// gone). Runtime state (settled status, streaks) carries over.
    pub async fn reload_check(&self, id: i64) -> anyhow::Result<()> {
        let mut defs = self.load_defs(Some(id)).await?;
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        match defs.pop() {
            None => {
                write(&self.checks).remove(&id);
                lock(&self.log_watches).remove(&id);
            }
            Some((def, damper, last, hb)) => {
                let old = read(&self.checks).get(&id).cloned();
                let scrape = old
                    .as_ref()
                    .map(|o| std::mem::take(&mut *lock(&o.scrape)))
                    .unwrap_or_default();
                let rt = match old {
                    Some(o) => {
                        let r = lock(&o.rt);
                        Runtime {
                            damper: r.damper.clone(),
                            last: r.last.clone(),
                            sustain: Sustain::default(),
                            restarts: r.restarts.clone(),
                            last_heartbeat: hb.or(r.last_heartbeat),
                            spark: r.spark.clone(),
                            uptime_day: r.uptime_day,
                        }
                    }
                    None => Runtime::new(damper, last, hb),
                };
                write(&self.checks).insert(
                    id,
                    Arc::new(CheckRt {
                        def,
                        generation,
                        rt: Mutex::new(rt),
                        scrape: Mutex::new(scrape),
                    }),
                );
                let _ = self.schedule_tx.send((id, generation));
            }
        }
        self.mark_dirty();
        Ok(())
    }

    async fn reload_catalog(&self) -> anyhow::Result<()> {
        let mut conn = self.pool.acquire().await?;
        let snap = crate::inventory::Snapshot::load(&mut conn).await?;
        let public = store::public_settings(&mut conn).await?;
        let mut requires: HashMap<i64, Vec<i64>> = HashMap::new();
        for e in &snap.edges {
            requires
                .entry(e.service_id)
                .or_default()
                .push(e.requires_id);
        }
        let services = snap
            .services
            .iter()
            .map(|s| SvcInfo {
                id: s.id,
                name: s.name.clone(),
                tier: s.fields.tier,
                requires: requires.remove(&s.id).unwrap_or_default(),
            })
            .collect();
        let fields = snap
            .services
            .into_iter()
            .map(|s| (s.id, s.fields))
            .collect();
        let public = public
            .into_iter()
            .map(|(id, public, name)| (id, (public, name)))
            .collect();
        *write(&self.catalog) = Catalog {
            services,
            public,
            fields,
        };
        // Checks of deleted services went with them (ON DELETE CASCADE).
        let known: std::collections::HashSet<i64> =
            read(&self.catalog).services.iter().map(|s| s.id).collect();
        write(&self.checks).retain(|_, c| c.def.service_id.is_none_or(|s| known.contains(&s)));
        let checks = read(&self.checks);
        lock(&self.log_watches).retain(|id, _| checks.contains_key(id));
        Ok(())
    }

    /// Marks the board for recomputation (after inventory writes too).
    pub fn mark_dirty(&self) {
        self.board_dirty.notify_one();
    }

    /// The inventory changed: services, edges or public settings.
    pub fn inventory_changed(&self) {
        self.inventory_dirty.store(true, Ordering::SeqCst);
        self.board_dirty.notify_one();
    }

    // ---------------------------------------------------------------- lease

    /// The lease as a one-process registry task: the process holding the
    /// advisory lock [`LEASE_KEY`] probes (it re-reads the checks when it
    /// takes the lock); the others follow the table every 5 s.
    fn leader_task(self: &Arc<Self>) -> Task {
        let hub = self.clone();
        Task::every(
            "checks.leader",
            Duration::from_secs(10),
            Scope::OneProcess,
            (),
            |()| async { Ok(Pace::Normal) },
        )
        .lock_key(LEASE_KEY)
        .on_lead(self.clone(), |hub| async move {
            tracing::info!("health engine lease taken: this instance runs the checks");
            hub.reload_all().await?;
            hub.leader.store(true, Ordering::SeqCst);
            Ok(())
        })
        .on_lose(move || {
            hub.leader.store(false, Ordering::SeqCst);
            // Only the leader probes: nobody reads what these would count.
            lock(&hub.log_watches).clear();
        })
        .on_standby(self.clone(), |hub| async move {
            hub.follow().await;
            Ok(())
        })
    }

    /// Without the lease: take settled states from the table.
    /// Also picks up checks another replica added or removed whose change
    /// notification this one missed (`fanout`).
    async fn follow(&self) {
        match self.load_defs(None).await {
            Ok(defs) => {
                let differ: Vec<i64> = {
                    let checks = read(&self.checks);
                    let mut differ = Vec::new();
                    let mut seen = std::collections::HashSet::with_capacity(defs.len());
                    for (def, damper, last, _) in defs {
                        seen.insert(def.id);
                        if let Some(c) = checks.get(&def.id) {
                            let mut r = lock(&c.rt);
                            r.damper = damper;
                            r.last = last;
                        } else {
                            differ.push(def.id);
                        }
                    }
                    differ.extend(checks.keys().filter(|id| !seen.contains(id)));
                    differ
                };
                for id in differ {
                    if let Err(e) = self.reload_check(id).await {
                        tracing::warn!(error = %e, check = id, "following a check failed");
                    }
                }
                self.mark_dirty();
            }
            Err(e) => tracing::warn!(error = %e, "following check states failed"),
        }
    }

    /// Re-reads every check definition after change notifications may have
    /// been missed (`fanout`): each check in the table is reloaded (runtime
    /// state carries over), each one gone is dropped.
    pub async fn reload_checks(&self) {
        let ids: Vec<i64> = match sqlx::query_scalar("SELECT id FROM checks")
            .fetch_all(&self.pool)
            .await
        {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!(error = %e, "re-reading the checks failed");
                return;
            }
        };
        let gone: Vec<i64> = {
            let checks = read(&self.checks);
            checks
                .keys()
                .filter(|id| !ids.contains(id))
                .copied()
                .collect()
        };
        for id in ids.into_iter().chain(gone) {
            if let Err(e) = self.reload_check(id).await {
                tracing::warn!(error = %e, check = id, "re-reading a check failed");
            }
        }
    }

    /// The shared HTTP clients (HTTP and Prometheus checks).
    pub fn http(&self) -> &HttpClients {
        &self.http
    }

    /// A check's stored password (a Prometheus check's token), opened: to
    /// ask the server when the check changes without a new one.
    pub fn stored_password(&self, id: i64) -> Option<String> {
        let sealed = read(&self.checks).get(&id)?.def.secret.clone();
        crate::secrets::open_opt(crate::secrets::Field::CheckPassword, id, sealed.as_deref())
            .ok()
            .flatten()
    }

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    // ---------------------------------------------------------------- scheduler
}

mod board;
mod events;
mod probe_run;
mod recorder;
mod scheduler;

pub use probe_run::{container_grade, heartbeat_probe, metric};

#[cfg(test)]
mod tests {
    use super::*;
    use opsdeck_wire::HeartbeatCheck;

    #[test]
    fn heartbeat_grades_by_period_and_grace() {
        let c = HeartbeatCheck {
            period_s: 60,
            grace_s: 30,
        };
        let created = Utc::now() - TimeDelta::seconds(200);
        let now = Utc::now();
        assert_eq!(
            heartbeat_probe(&c, None, now, now).status,
            CheckStatus::Unknown
        );
        assert_eq!(
            heartbeat_probe(&c, None, created, now).status,
            CheckStatus::Critical
        );
        let recent = now - TimeDelta::seconds(80);
        assert_eq!(
            heartbeat_probe(&c, Some(recent), created, now).status,
            CheckStatus::Ok
        );
        let late = now - TimeDelta::seconds(91);
        assert_eq!(
            heartbeat_probe(&c, Some(late), created, now).status,
            CheckStatus::Critical
        );
    }

    #[test]
    fn jitter_spreads_first_probes_over_the_interval() {
        let interval = Duration::from_secs(10);
        let mut buckets = [0u32; 10];
        for id in 0..10_000 {
            let off = first_offset(id, interval);
            assert!(off < interval);
            buckets[off.as_secs() as usize] += 1;
        }
        assert!(
            buckets.iter().all(|b| (800..1200).contains(b)),
            "{buckets:?}"
        );
    }

    #[test]
    fn acc_adds_up() {
        let mut a = Acc::default();
        a.add(CheckStatus::Ok, Some(10.0));
        a.add(CheckStatus::Critical, None);
        a.add(CheckStatus::Warning, Some(30.0));
        assert_eq!((a.probes, a.ok, a.warning, a.critical), (3, 1, 1, 1));
        assert_eq!(
            (a.lat_min, a.lat_max, a.lat_sum, a.lat_count),
            (Some(10.0), Some(30.0), 40.0, 2)
        );
    }
}
