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

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap, VecDeque};
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use opsdeck_wire::{
    Check, CheckEngineStats, CheckSpec, CheckStatus, MaintenanceBanner, MaintenanceMark, Metric,
    ProbeResult, ServiceHealth, ServiceStatus, StatusChange, Tier, Uptime,
};
use sqlx::{PgPool, Row};
use tokio::sync::{broadcast, mpsc, Notify, Semaphore};

use super::damping::{Damper, Sustain};
use super::probe::{self, host::HostSampler, http::HttpClients, Probe};
use super::status::{self, CheckView, SvcInfo};
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
    pub fn new(pool: PgPool, engines: Arc<EngineHub>) -> Arc<HealthHub> {
        let (schedule_tx, schedule_rx) = mpsc::unbounded_channel();
        let (changes_tx, changes_rx) = mpsc::unbounded_channel();
        Arc::new(HealthHub {
            pool,
            engines,
            http: HttpClients::new(),
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
        Ok(())
    }

    // ---------------------------------------------------------------- loading

    async fn load_defs(
        &self,
        id: Option<i64>,
    ) -> sqlx::Result<Vec<(CheckDef, Damper, Option<ProbeResult>, Option<DateTime<Utc>>)>> {
        let rows = sqlx::query(
            r#"SELECT id, service_id, name, spec, secret, heartbeat_token, interval_s, timeout_ms,
                      fail_after, recover_after, enabled, status, status_since, last_result,
                      last_heartbeat_at, created_at
               FROM checks WHERE $1::bigint IS NULL OR id = $1"#,
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let spec: serde_json::Value = r.get("spec");
            let id: i64 = r.get("id");
            let spec: CheckSpec = match serde_json::from_value(spec) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(check = id, error = %e, "stored check spec does not parse; skipped");
                    continue;
                }
            };
            let def = CheckDef {
                id,
                service_id: r.get("service_id"),
                name: r.get("name"),
                spec,
                secret: r.get("secret"),
                heartbeat_token: r.get("heartbeat_token"),
                interval: Duration::from_secs(r.get::<i32, _>("interval_s") as u64),
                timeout: Duration::from_millis(r.get::<i32, _>("timeout_ms") as u64),
                fail_after: r.get::<i32, _>("fail_after") as u32,
                recover_after: r.get::<i32, _>("recover_after") as u32,
                enabled: r.get("enabled"),
                created_at: r.get("created_at"),
            };
            let status = CheckStatus::parse(r.get("status")).unwrap_or_default();
            let damper = Damper::new(status, r.get("status_since"));
            let last: Option<serde_json::Value> = r.get("last_result");
            let last = last.and_then(|v| serde_json::from_value(v).ok());
            out.push((def, damper, last, r.get("last_heartbeat_at")));
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
                }),
            );
            let _ = self.schedule_tx.send((id, generation));
        }
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
            }
            Some((def, damper, last, hb)) => {
                let old = read(&self.checks).get(&id).cloned();
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
        let public = sqlx::query("SELECT id, public_status, public_name FROM services")
            .fetch_all(&mut *conn)
            .await?;
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
            .map(|r| {
                (
                    r.get::<i64, _>("id"),
                    (r.get("public_status"), r.get("public_name")),
                )
            })
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
        .on_lose(move || hub.leader.store(false, Ordering::SeqCst))
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

    pub fn is_leader(&self) -> bool {
        self.leader.load(Ordering::SeqCst)
    }

    // ---------------------------------------------------------------- scheduler

    async fn scheduler(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<(i64, u64)>) {
        let mut heap: BinaryHeap<Reverse<(tokio::time::Instant, i64, u64)>> = BinaryHeap::new();
        let start = tokio::time::Instant::now();
        loop {
            let next = heap.peek().map(|Reverse((t, _, _))| *t);
            tokio::select! {
                msg = rx.recv() => {
                    let Some((id, generation)) = msg else { return };
                    let interval = read(&self.checks).get(&id).map(|c| c.def.interval);
                    if let Some(interval) = interval {
                        let first = start.max(tokio::time::Instant::now()) + first_offset(id, interval).min(interval);
                        heap.push(Reverse((first, id, generation)));
                    }
                }
                _ = async { tokio::time::sleep_until(next.unwrap()).await }, if next.is_some() => {
                    let now = tokio::time::Instant::now();
                    while let Some(Reverse((due, id, generation))) = heap.peek().copied() {
                        if due > now { break; }
                        heap.pop();
                        let Some(check) = read(&self.checks).get(&id).cloned() else { continue };
                        if check.generation != generation { continue; }
                        // Next due time: keep the phase; skip missed rounds.
                        let mut next_due = due + check.def.interval;
                        while next_due <= now { next_due += check.def.interval; }
                        heap.push(Reverse((next_due, id, generation)));
                        if check.def.enabled && self.is_leader() {
                            let hub = self.clone();
                            tokio::spawn(async move { hub.run_scheduled(check, due).await });
                        }
                    }
                }
            }
        }
    }

    async fn run_scheduled(self: Arc<Self>, check: Arc<CheckRt>, due: tokio::time::Instant) {
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        let lag = tokio::time::Instant::now().saturating_duration_since(due);
        {
            let mut lags = lock(&self.stats.lags);
            if lags.len() >= 10_000 {
                lags.pop_front();
            }
            lags.push_back(lag.as_secs_f64() * 1000.0);
        }
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self.probe(&check).await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.record(&check, result);
    }

    /// Runs a check now (the "Run now" button) and records the result when
    /// this instance holds the lease.
    pub async fn run_now(self: &Arc<Self>, id: i64) -> Option<ProbeResult> {
        let check = read(&self.checks).get(&id).cloned()?;
        let result = self.probe(&check).await;
        if self.is_leader() {
            Some(self.record(&check, result))
        } else {
            Some(result)
        }
    }

    // ---------------------------------------------------------------- probing

    async fn probe(&self, check: &CheckRt) -> ProbeResult {
        let def = &check.def;
        let started = Instant::now();
        let fut = self.dispatch(check);
        let p = match tokio::time::timeout(def.timeout, fut).await {
            Ok(p) => p,
            Err(_) => Probe::critical(format!("timed out after {} ms", def.timeout.as_millis())),
        };
        self.stats.probes.fetch_add(1, Ordering::Relaxed);
        let mut p = p;
        // Sustained windows (resource checks).
        let window = match &def.spec {
            CheckSpec::Host(h) => h.sustained_s,
            CheckSpec::ContainerResources(c) => c.sustained_s,
            _ => 0,
        };
        if window > 0 {
            let (status, held) = lock(&check.rt).sustain.apply(
                p.status,
                Duration::from_secs(window as u64),
                started,
            );
            if status < p.status {
                p.message = format!(
                    "{} (for {} s of the {} s it must last)",
                    p.message,
                    held.unwrap_or_default().as_secs(),
                    window
                );
                p.status = status;
            }
        }
        ProbeResult {
            status: p.status,
            at: Utc::now(),
            latency_ms: p.latency_ms,
            message: p.message,
            metrics: p.metrics,
        }
    }

    async fn dispatch(&self, check: &CheckRt) -> Probe {
        let def = &check.def;
        let secret = def.secret.as_deref();
        match &def.spec {
            CheckSpec::Http(c) => self.http.probe(c, def.timeout).await,
            CheckSpec::Tcp(c) => probe::net::tcp(c, def.timeout).await,
            CheckSpec::Tls(c) => probe::net::tls(c, def.timeout).await,
            CheckSpec::Postgres(c) => probe::sql::postgres(c, secret, def.timeout).await,
            CheckSpec::Mysql(c) => probe::sql::mysql(c, secret, def.timeout).await,
            CheckSpec::Redis(c) => probe::redis::redis(c, secret, def.timeout).await,
            CheckSpec::Host(c) => self.host.probe(c).await,
            CheckSpec::Container(c) => self.container_probe(check, c),
            CheckSpec::ContainerResources(c) => self.container_resources(def, c).await,
            CheckSpec::Heartbeat(c) => {
                let last = lock(&check.rt).last_heartbeat;
                heartbeat_probe(c, last, def.created_at, Utc::now())
            }
        }
    }

    fn service_fields(&self, def: &CheckDef) -> Option<crate::inventory::Fields> {
        read(&self.catalog).fields.get(&def.service_id?).cloned()
    }

    fn container_probe(&self, check: &CheckRt, c: &opsdeck_wire::ContainerCheck) -> Probe {
        let Some(fields) = self.service_fields(&check.def) else {
            return Probe::new(CheckStatus::Unknown, "not a service check");
        };
        let idx = crate::inventory::ContainerIndex::build(&self.engines);
        let containers = idx.containers_of(&fields);
        let state = idx.run_state(&fields, &containers);
        let now = Instant::now();
        let restarts: i64 = {
            let mut rt = lock(&check.rt);
            rt.restarts
                .retain(|id, _| containers.iter().any(|c| &c.id == id));
            containers
                .iter()
                .map(|c| {
                    let samples = rt.restarts.entry(c.id.clone()).or_default();
                    while samples
                        .front()
                        .is_some_and(|(t, _)| now.duration_since(*t) > RESTART_WINDOW)
                    {
                        samples.pop_front();
                    }
                    samples.push_back((now, c.restart_count));
                    c.restart_count - samples.front().map_or(c.restart_count, |s| s.1)
                })
                .sum()
        };
        container_grade(state, &containers, restarts, c)
    }

    async fn container_resources(
        &self,
        def: &CheckDef,
        c: &opsdeck_wire::ContainerResourcesCheck,
    ) -> Probe {
        let Some(fields) = self.service_fields(def) else {
            return Probe::new(CheckStatus::Unknown, "not a service check");
        };
        let idx = crate::inventory::ContainerIndex::build(&self.engines);
        let containers: Vec<_> = idx
            .containers_of(&fields)
            .into_iter()
            .filter(|c| c.state == "running")
            .collect();
        if containers.is_empty() {
            return Probe::new(CheckStatus::Unknown, "no running container");
        }
        let mut worst: Option<(f64, String)> = None;
        for ci in &containers {
            let Some(conn) = self.engines.get(ci.engine_id) else {
                continue;
            };
            let Ok(docker) = conn.client() else {
                return Probe::new(
                    CheckStatus::Unknown,
                    format!("engine {} unreachable", ci.engine),
                );
            };
            let stats = match crate::docker::ops::stats(&conn, &docker, &ci.id, &ci.name).await {
                Ok(s) => s,
                Err(e) => return Probe::critical(format!("stats of {}: {e}", ci.name)),
            };
            let value = match c.resource {
                opsdeck_wire::Resource::Cpu => stats.cpu_percent,
                _ if stats.memory_limit_bytes > 0 => {
                    Some(100.0 * stats.memory_bytes as f64 / stats.memory_limit_bytes as f64)
                }
                _ => None,
            };
            if let Some(v) = value {
                if worst.as_ref().is_none_or(|(w, _)| v > *w) {
                    worst = Some((v, ci.name.clone()));
                }
            }
        }
        let Some((v, name)) = worst else {
            return Probe::new(CheckStatus::Unknown, "no reading yet");
        };
        let what = if c.resource == opsdeck_wire::Resource::Cpu {
            "cpu"
        } else {
            "memory"
        };
        let status = probe::grade_above(v, c.warning_pct, c.critical_pct);
        Probe::new(status, format!("{name}: {what} {v:.1} %")).metric(&format!("{what}_pct"), v)
    }

    /// A heartbeat arrived for `token`; returns false when no check has it.
    pub async fn heartbeat(self: &Arc<Self>, token: &str) -> anyhow::Result<bool> {
        let now = Utc::now();
        let id: Option<i64> = sqlx::query_scalar(
            "UPDATE checks SET last_heartbeat_at = $2 WHERE heartbeat_token = $1 RETURNING id",
        )
        .bind(token)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        let Some(id) = id else { return Ok(false) };
        let check = read(&self.checks).get(&id).cloned();
        if let Some(check) = check {
            lock(&check.rt).last_heartbeat = Some(now);
            if check.def.enabled && self.is_leader() {
                let result = self.probe(&check).await;
                self.record(&check, result);
            }
        }
        Ok(true)
    }

    // ---------------------------------------------------------------- recording

    fn record(&self, check: &CheckRt, result: ProbeResult) -> ProbeResult {
        let def = &check.def;
        let changed = {
            let mut rt = lock(&check.rt);
            rt.last = Some(result.clone());
            rt.damper
                .observe(result.status, def.fail_after, def.recover_after, result.at)
        };
        let slot = match result.status {
            CheckStatus::Ok => 0,
            CheckStatus::Warning => 1,
            CheckStatus::Critical => 2,
            CheckStatus::Unknown => 3,
        };
        lock(&self.stats.per_check).entry(def.id).or_default()[slot] += 1;
        if result.status != CheckStatus::Unknown {
            lock(&self.rollups)
                .entry((def.id, minute_of(result.at)))
                .or_default()
                .add(result.status, result.latency_ms);
        }
        if let Some(from) = changed {
            let _ = self.changes_tx.send(Change {
                check_id: def.id,
                from,
                result: result.clone(),
            });
        }
        result
    }

    async fn writer(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Change>) {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 1000).await > 0 {
            if let Err(e) = self.write_changes(&batch).await {
                tracing::error!(error = %e, changes = batch.len(), "writing check state changes failed");
            }
            batch.clear();
            self.mark_dirty();
        }
    }

    async fn write_changes(&self, batch: &[Change]) -> anyhow::Result<()> {
        let mut ids = Vec::with_capacity(batch.len());
        let mut ats = Vec::with_capacity(batch.len());
        let mut froms = Vec::with_capacity(batch.len());
        let mut tos = Vec::with_capacity(batch.len());
        let mut messages = Vec::with_capacity(batch.len());
        let mut results = Vec::with_capacity(batch.len());
        for c in batch {
            ids.push(c.check_id);
            ats.push(c.result.at);
            froms.push(c.from.as_str());
            tos.push(c.result.status.as_str());
            messages.push(c.result.message.clone());
            results.push(serde_json::to_value(&c.result)?);
        }
        let mut tx = self.pool.begin().await?;
        // Checks deleted meanwhile drop out through the join.
        let n = sqlx::query(
            r#"INSERT INTO check_events (check_id, at, from_status, to_status, message)
               SELECT u.id, u.at, u.f, u.t, u.m
               FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[])
                    AS u(id, at, f, t, m)
               JOIN checks c ON c.id = u.id"#,
        )
        .bind(&ids)
        .bind(&ats)
        .bind(&froms)
        .bind(&tos)
        .bind(&messages)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query(
            r#"UPDATE checks c SET status = u.t, status_since = u.at, last_result = u.r
               FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::jsonb[]) AS u(id, at, t, r)
               WHERE c.id = u.id"#,
        )
        .bind(&ids)
        .bind(&ats)
        .bind(&tos)
        .bind(&results)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        self.stats.events.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the rollups of finished minutes (all minutes when `all`).
    pub async fn flush_rollups(&self, all: bool) -> anyhow::Result<u64> {
        let current = minute_of(Utc::now());
        let done: Vec<((i64, i64), Acc)> = {
            let mut map = lock(&self.rollups);
            let keys: Vec<_> = map
                .keys()
                .filter(|(_, m)| all || *m < current)
                .copied()
                .collect();
            keys.into_iter()
                .filter_map(|k| map.remove(&k).map(|a| (k, a)))
                .collect()
        };
        if done.is_empty() {
            return Ok(0);
        }
        // Sparklines: the finished minutes' average latency.
        {
            let checks = read(&self.checks);
            for ((id, minute), acc) in &done {
                if let Some(c) = checks.get(id) {
                    let avg = (acc.lat_count > 0).then(|| acc.lat_sum / acc.lat_count as f64);
                    let mut rt = lock(&c.rt);
                    push_spark(&mut rt.spark, *minute, avg);
                }
            }
        }
        let mut cols = RollupCols::default();
        for ((id, minute), a) in &done {
            cols.push(
                *id,
                DateTime::from_timestamp(minute * 60, 0).unwrap_or_default(),
                a,
            );
        }
        let mut tx = self.pool.begin().await?;
        for table in ["check_rollups_minute", "check_rollups_hour"] {
            let bucket = if table == "check_rollups_hour" {
                "date_trunc('hour', u.bucket)"
            } else {
                "u.bucket"
            };
            let sql = format!(
                r#"INSERT INTO {table} AS r (check_id, bucket, probes, ok, warning, critical,
                                        latency_min, latency_max, latency_sum, latency_count)
                   SELECT u.id, {bucket}, sum(u.p), sum(u.o), sum(u.w), sum(u.c),
                          min(u.lmin), max(u.lmax), sum(u.ls), sum(u.lc)
                   FROM UNNEST($1::bigint[], $2::timestamptz[], $3::int[], $4::int[], $5::int[], $6::int[],
                               $7::float8[], $8::float8[], $9::float8[], $10::int[])
                        AS u(id, bucket, p, o, w, c, lmin, lmax, ls, lc)
                   JOIN checks ch ON ch.id = u.id
                   GROUP BY u.id, {bucket}
                   ON CONFLICT (check_id, bucket) DO UPDATE SET
                     probes = r.probes + excluded.probes,
                     ok = r.ok + excluded.ok,
                     warning = r.warning + excluded.warning,
                     critical = r.critical + excluded.critical,
                     latency_min = LEAST(r.latency_min, excluded.latency_min),
                     latency_max = GREATEST(r.latency_max, excluded.latency_max),
                     latency_sum = r.latency_sum + excluded.latency_sum,
                     latency_count = r.latency_count + excluded.latency_count"#
            );
            sqlx::query(&sql)
                .bind(&cols.id)
                .bind(&cols.bucket)
                .bind(&cols.p)
                .bind(&cols.o)
                .bind(&cols.w)
                .bind(&cols.c)
                .bind(&cols.lmin)
                .bind(&cols.lmax)
                .bind(&cols.ls)
                .bind(&cols.lc)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        let n = done.len() as u64;
        self.stats.rollup_rows.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    async fn load_sparklines(&self) -> anyhow::Result<()> {
        let rows = sqlx::query(
            r#"SELECT check_id, bucket, latency_sum, latency_count
               FROM check_rollups_minute WHERE bucket > now() - make_interval(mins => $1)
               ORDER BY bucket"#,
        )
        .bind(SPARK_MINUTES as i32)
        .fetch_all(&self.pool)
        .await?;
        let checks = read(&self.checks);
        for r in rows {
            let id: i64 = r.get("check_id");
            let Some(c) = checks.get(&id) else { continue };
            let at: DateTime<Utc> = r.get("bucket");
            let count: i32 = r.get("latency_count");
            let sum: f64 = r.get("latency_sum");
            let avg = (count > 0).then(|| sum / count as f64);
            push_spark(&mut lock(&c.rt).spark, minute_of(at), avg);
        }
        Ok(())
    }

    /// 24-hour uptime of every check, from the hourly rollups.
    async fn refresh_uptime(&self) -> anyhow::Result<()> {
        let rows = sqlx::query(
            r#"SELECT check_id, sum(ok + warning)::float8 AS good, sum(probes)::float8 AS total
               FROM check_rollups_hour WHERE bucket > now() - interval '24 hours'
               GROUP BY check_id"#,
        )
        .fetch_all(&self.pool)
        .await?;
        let mut up: HashMap<i64, f64> = HashMap::new();
        for r in rows {
            let total: f64 = r.get("total");
            if total > 0.0 {
                up.insert(r.get("check_id"), 100.0 * r.get::<f64, _>("good") / total);
            }
        }
        for (id, c) in read(&self.checks).iter() {
            lock(&c.rt).uptime_day = up.get(id).copied();
        }
        Ok(())
    }

    async fn minutely(self: Arc<Self>) {
        let mut last_retention: Option<Instant> = None;
        loop {
            // A few seconds past each minute, so the minute is complete.
            let now = Utc::now();
            let next = (now + TimeDelta::minutes(1))
                .duration_trunc(TimeDelta::minutes(1))
                .unwrap_or(now)
                + TimeDelta::seconds(2);
            tokio::time::sleep((next - now).to_std().unwrap_or(Duration::from_secs(60))).await;
            if !self.is_leader() {
                self.follow().await;
                continue;
            }
            if let Err(e) = self.flush_rollups(false).await {
                tracing::error!(error = %e, "writing check rollups failed");
            }
            if let Err(e) = self.refresh_uptime().await {
                tracing::warn!(error = %e, "refreshing uptime failed");
            }
            self.mark_dirty();
            let _ = self.events.send(Push::Refresh);
            if last_retention.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                match super::prune(&self.pool).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(rows = n, "pruned old check rollups and events")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning check history failed"),
                }
                last_retention = Some(Instant::now());
            }
        }
    }

    // ---------------------------------------------------------------- board

    async fn board_task(self: Arc<Self>) {
        let mut inventory = self.engines.subscribe();
        loop {
            tokio::select! {
                _ = self.board_dirty.notified() => {}
                r = inventory.changed() => {
                    if r.is_err() { return; }
                    self.inventory_dirty.store(true, Ordering::SeqCst);
                }
            }
            tokio::time::sleep(BOARD_DEBOUNCE).await;
            if self.inventory_dirty.swap(false, Ordering::SeqCst) {
                if let Err(e) = self.reload_catalog().await {
                    tracing::warn!(error = %e, "reloading the inventory for the status board failed");
                    self.inventory_dirty.store(true, Ordering::SeqCst);
                }
            }
            self.recompute_board();
        }
    }

    /// Recomputes every service's status; broadcasts the ones that changed.
    pub fn recompute_board(&self) {
        let catalog = read(&self.catalog);
        let checks = read(&self.checks);
        let mut views = Vec::with_capacity(checks.len());
        let mut per_service: HashMap<i64, Vec<Arc<CheckRt>>> = HashMap::new();
        for c in checks.values() {
            let Some(sid) = c.def.service_id else {
                continue;
            };
            per_service.entry(sid).or_default().push(c.clone());
            if !c.def.enabled {
                continue;
            }
            let rt = lock(&c.rt);
            views.push(CheckView {
                service_id: sid,
                name: c.def.name.clone(),
                status: rt.damper.status,
                since: rt.damper.since,
                message: rt
                    .last
                    .as_ref()
                    .map(|l| l.message.clone())
                    .unwrap_or_default(),
            });
        }
        drop(checks);
        let health = status::compute(&catalog.services, &views);
        let maintenance = read(&self.maintenance);
        let current_minute = minute_of(Utc::now());
        let mut statuses = HashMap::with_capacity(catalog.services.len());
        for s in &catalog.services {
            let Some(h) = health.get(&s.id) else { continue };
            let checks = per_service.get(&s.id).map(Vec::as_slice).unwrap_or(&[]);
            let (spark, uptime) = service_series(checks, current_minute);
            let (public, public_name) = catalog.public.get(&s.id).cloned().unwrap_or((false, None));
            // Maintenance shows over what the checks say (kept in the mark).
            let mark = maintenance.marks.get(&s.id).map(|m| MaintenanceMark {
                observed: h.health,
                ..m.clone()
            });
            statuses.insert(
                s.id,
                ServiceStatus {
                    service_id: s.id,
                    name: s.name.clone(),
                    tier: s.tier,
                    health: if mark.is_some() {
                        ServiceHealth::Maintenance
                    } else {
                        h.health
                    },
                    since: h.since,
                    impacted_by: h.impacted_by.clone(),
                    problems: h.problems.clone(),
                    checks: h.checks,
                    sparkline: spark,
                    uptime: Uptime {
                        day: uptime,
                        week: None,
                        month: None,
                    },
                    public,
                    public_name,
                    maintenance: mark,
                },
            );
        }
        drop(maintenance);
        drop(catalog);
        let mut board = write(&self.board);
        let changed: Vec<ServiceStatus> = statuses
            .values()
            .filter(|s| {
                board.statuses.get(&s.service_id).is_none_or(|old| {
                    old.health != s.health
                        || old.impacted_by != s.impacted_by
                        || old.problems != s.problems
                        || old.public != s.public
                        || old.public_name != s.public_name
                        || old.maintenance != s.maintenance
                })
            })
            .cloned()
            .collect();
        let removed = board.statuses.keys().any(|id| !statuses.contains_key(id));
        board.statuses = statuses;
        // Host checks and engines are part of the JSON too: rebuild it.
        board.json = None;
        if changed.is_empty() && !removed {
            return;
        }
        board.version += 1;
        let overall = status::overall(board.statuses.values().map(|s| (s.tier, s.health)));
        let event = StatusChange {
            version: board.version,
            overall,
            services: changed,
        };
        drop(board);
        if let Ok(json) = serde_json::to_vec(&event) {
            let _ = self.events.send(Push::Change(Bytes::from(json)));
        }
    }

    /// Re-reads sparklines and 24-hour uptime from the rollups (start-up
    /// does the same) and rebuilds the board.
    pub async fn reload_history(&self) -> anyhow::Result<()> {
        self.load_sparklines().await?;
        self.refresh_uptime().await?;
        self.recompute_board();
        let _ = self.events.send(Push::Refresh);
        Ok(())
    }

    /// Takes the maintenance in effect (from `crate::maintenance`): marks the
    /// covered services and tells every client to refetch the board (its
    /// banner list changed too). Nothing happens when nothing changed.
    pub fn set_maintenance(
        &self,
        marks: HashMap<i64, MaintenanceMark>,
        banners: Vec<MaintenanceBanner>,
    ) {
        let next = Maintenance { marks, banners };
        {
            let mut m = write(&self.maintenance);
            if *m == next {
                return;
            }
            *m = next;
        }
        self.recompute_board();
        {
            // A board JSON built meanwhile has the old banners.
            let mut board = write(&self.board);
            board.version += 1;
            board.json = None;
        }
        let _ = self.events.send(Push::Refresh);
    }

    /// The banner lines of the maintenance in effect.
    pub fn maintenance_banners(&self) -> Vec<MaintenanceBanner> {
        read(&self.maintenance).banners.clone()
    }

    /// Receives every status change, pre-serialised (`StatusChange`).
    pub fn subscribe(&self) -> broadcast::Receiver<Push> {
        self.events.subscribe()
    }

    /// The services' statuses, sorted by tier then name.
    pub fn statuses(&self) -> (u64, Vec<ServiceStatus>) {
        let board = read(&self.board);
        let mut v: Vec<ServiceStatus> = board.statuses.values().cloned().collect();
        v.sort_by(|a, b| {
            tier_rank(a.tier)
                .cmp(&tier_rank(b.tier))
                .then_with(|| a.name.cmp(&b.name))
        });
        (board.version, v)
    }

    pub fn status_of(&self, service_id: i64) -> Option<ServiceStatus> {
        read(&self.board).statuses.get(&service_id).cloned()
    }

    /// The dashboard's JSON when it is still current.
    pub fn cached_board(&self) -> Option<Bytes> {
        read(&self.board).json.clone()
    }

    /// Keeps the dashboard's JSON built for `version` until the next change.
    pub fn store_board(&self, version: u64, json: Bytes) {
        let mut board = write(&self.board);
        if board.version == version {
            board.json = Some(json);
        }
    }

    /// Re-reads the inventory and recomputes the board now.
    pub async fn refresh_inventory(&self) -> anyhow::Result<()> {
        self.reload_catalog().await?;
        self.recompute_board();
        Ok(())
    }

    /// Host-level checks (no service), from memory.
    pub fn host_checks(&self) -> Vec<Check> {
        let mut v: Vec<Check> = read(&self.checks)
            .values()
            .filter(|c| c.def.service_id.is_none())
            .map(|c| {
                let rt = lock(&c.rt);
                let d = &c.def;
                Check {
                    id: d.id,
                    service_id: None,
                    service: None,
                    name: d.name.clone(),
                    spec: d.spec.clone(),
                    interval_s: d.interval.as_secs() as u32,
                    timeout_ms: d.timeout.as_millis() as u32,
                    fail_after: d.fail_after,
                    recover_after: d.recover_after,
                    enabled: d.enabled,
                    has_password: d.secret.is_some(),
                    heartbeat_path: None,
                    status: rt.damper.status,
                    status_since: rt.damper.since,
                    last: rt.last.clone(),
                    created_at: d.created_at,
                }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    // ---------------------------------------------------------------- views

    pub fn fill(&self, check: &mut Check) {
        if let Some(c) = read(&self.checks).get(&check.id).cloned() {
            let rt = lock(&c.rt);
            check.status = rt.damper.status;
            check.status_since = rt.damper.since;
            check.last = rt.last.clone();
        }
    }

    /// Host-level checks' latest results by id.
    pub fn latest_metrics(&self) -> Vec<(CheckDef, CheckStatus, Option<ProbeResult>)> {
        read(&self.checks)
            .values()
            .map(|c| {
                let rt = lock(&c.rt);
                (c.def.clone(), rt.damper.status, rt.last.clone())
            })
            .collect()
    }

    pub fn stats(&self) -> CheckEngineStats {
        let mut lags: Vec<f64> = lock(&self.stats.lags).iter().copied().collect();
        lags.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| -> f64 {
            if lags.is_empty() {
                0.0
            } else {
                lags[((lags.len() as f64 - 1.0) * p).round() as usize]
            }
        };
        CheckEngineStats {
            leader: self.is_leader(),
            checks: read(&self.checks).len() as u32,
            probes_total: self.stats.probes.load(Ordering::Relaxed),
            in_flight: self.stats.in_flight.load(Ordering::Relaxed),
            lag_p50_ms: pct(0.5),
            lag_p99_ms: pct(0.99),
            lag_max_ms: lags.last().copied().unwrap_or(0.0),
            rollup_rows_written: self.stats.rollup_rows.load(Ordering::Relaxed),
            events_written: self.stats.events.load(Ordering::Relaxed),
        }
    }

    /// Probes recorded by this process per check since it started: ok,
    /// warning, critical, unknown (for `/metrics`).
    pub fn probe_counts(&self) -> HashMap<i64, [u64; 4]> {
        lock(&self.stats.per_check).clone()
    }

    /// Host check sampler (the daily report reads disk and memory).
    pub fn host(&self) -> &HostSampler {
        &self.host
    }
}

fn tier_rank(t: Tier) -> u8 {
    match t {
        Tier::Critical => 0,
        Tier::Application => 1,
        Tier::Support => 2,
    }
}

fn push_spark(spark: &mut VecDeque<(i64, Option<f64>)>, minute: i64, avg: Option<f64>) {
    match spark.iter_mut().find(|(m, _)| *m == minute) {
        Some(e) => {
            if avg.is_some() {
                e.1 = avg;
            }
        }
        None => {
            spark.push_back((minute, avg));
            spark.make_contiguous().sort_by_key(|(m, _)| *m);
        }
    }
    while spark.len() > SPARK_MINUTES {
        spark.pop_front();
    }
}

/// A service's sparkline (average over its checks per minute, last
/// [`SPARK_MINUTES`] finished minutes) and 24-hour uptime (mean of its checks').
fn service_series(checks: &[Arc<CheckRt>], current_minute: i64) -> (Vec<Option<f64>>, Option<f64>) {
    let mut sums = vec![(0.0f64, 0u32); SPARK_MINUTES];
    let mut up = (0.0, 0u32);
    for c in checks {
        if !c.def.enabled {
            continue;
        }
        let rt = lock(&c.rt);
        for (m, avg) in &rt.spark {
            let age = current_minute - 1 - m;
            if (0..SPARK_MINUTES as i64).contains(&age) {
                if let Some(a) = avg {
                    let slot = &mut sums[SPARK_MINUTES - 1 - age as usize];
                    slot.0 += a;
                    slot.1 += 1;
                }
            }
        }
        if let Some(u) = rt.uptime_day {
            up.0 += u;
            up.1 += 1;
        }
    }
    let spark = sums
        .into_iter()
        .map(|(s, n)| (n > 0).then(|| (s / n as f64 * 10.0).round() / 10.0))
        .collect();
    (spark, (up.1 > 0).then(|| up.0 / up.1 as f64))
}

#[derive(Default)]
struct RollupCols {
    id: Vec<i64>,
    bucket: Vec<DateTime<Utc>>,
    p: Vec<i32>,
    o: Vec<i32>,
    w: Vec<i32>,
    c: Vec<i32>,
    lmin: Vec<Option<f64>>,
    lmax: Vec<Option<f64>>,
    ls: Vec<f64>,
    lc: Vec<i32>,
}

impl RollupCols {
    fn push(&mut self, id: i64, bucket: DateTime<Utc>, a: &Acc) {
        self.id.push(id);
        self.bucket.push(bucket);
        self.p.push(a.probes);
        self.o.push(a.ok);
        self.w.push(a.warning);
        self.c.push(a.critical);
        self.lmin.push(a.lat_min);
        self.lmax.push(a.lat_max);
        self.ls.push(a.lat_sum);
        self.lc.push(a.lat_count);
    }
}

/// Grades a service's containers: not running → critical, unhealthy or a
/// restart loop → by the restart thresholds.
pub fn container_grade(
    state: opsdeck_wire::RunState,
    containers: &[opsdeck_wire::ContainerInfo],
    restarts: i64,
    c: &opsdeck_wire::ContainerCheck,
) -> Probe {
    use opsdeck_wire::RunState as R;
    let running = containers.iter().filter(|c| c.state == "running").count();
    let mut p = match state {
        R::Running => Probe::ok(format!("{running}/{} running", containers.len())),
        R::Degraded => {
            let unhealthy: Vec<&str> = containers
                .iter()
                .filter(|c| c.health.as_deref() == Some("unhealthy") || c.state != "running")
                .map(|c| c.name.as_str())
                .collect();
            Probe::critical(format!("not healthy: {}", unhealthy.join(", ")))
        }
        R::Restarting => Probe::critical("restarting"),
        R::Paused => Probe::critical("paused"),
        R::Stopped => Probe::critical("stopped"),
        R::Missing => Probe::critical("no container"),
        R::Unknown => Probe::new(CheckStatus::Unknown, "engine unreachable: state unknown"),
        R::Unmapped => Probe::new(CheckStatus::Unknown, "the service maps to no container"),
    };
    if restarts > 0 {
        let grade = probe::grade_above(
            restarts as f64,
            c.restarts_warning as f64,
            c.restarts_critical as f64,
        );
        p = p.at_least(
            grade,
            format!("{restarts} restarts in 10 min (restart loop)"),
        );
    }
    p.metric("running", running as f64)
        .metric("restarts_10m", restarts as f64)
}

/// Grades a heartbeat check: no ping within period + grace (since the last
/// ping, or since the check was created) is critical.
pub fn heartbeat_probe(
    c: &opsdeck_wire::HeartbeatCheck,
    last: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Probe {
    let allowed = TimeDelta::seconds(c.period_s as i64 + c.grace_s as i64);
    match last {
        Some(t) => {
            let age = (now - t).num_seconds().max(0);
            let p = if now - t > allowed {
                Probe::critical(format!(
                    "no ping for {age} s (expected every {} s + {} s grace)",
                    c.period_s, c.grace_s
                ))
            } else {
                Probe::ok(format!("last ping {age} s ago"))
            };
            p.metric("since_last_s", age as f64)
        }
        None if now - created > allowed => Probe::critical("never pinged"),
        None => Probe::new(CheckStatus::Unknown, "waiting for the first ping"),
    }
}

/// A metric's value in a probe result.
pub fn metric(result: &ProbeResult, name: &str) -> Option<f64> {
    result
        .metrics
        .iter()
        .find(|m: &&Metric| m.name == name)
        .map(|m| m.value)
}

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
