//! The sampler: each tick reads every running container's counters (one
//! one-shot stats call each, [`CONCURRENCY`] at a time) and the host's
//! figures, turns counters into rates with the previous sample kept here,
//! adds the readings into per-minute accumulators per series and writes
//! the minutes that are over.
//!
//! * A container counts from its second sample (CPU % needs two); a
//!   previous sample older than three intervals (or two rounds, when a
//!   round takes longer than the interval) is a new start (the lock moved,
//!   or the engine was away), so no long gap is put into one bucket.
//! * A service's reading is the sum over its containers (CPU in percent of
//!   one core; memory in bytes; bytes moved since the previous sample); an
//!   engine's is the sum over all its running containers.
//! * Counters that went back (a restart) count nothing for that sample.
//! * Nothing is stored per sample: one row per series and minute, in the
//!   minute and hour tables ([`store::write_rollups`]), once a minute.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use sqlx::PgPool;

use super::host::{HostReader, HostReading};
use super::store::{self, RollupCols};
use super::SeriesKey;
use crate::docker::stats::{cpu_percent, Counters};
use crate::docker::EngineHub;
use crate::inventory::{ContainerIndex, Fields};

/// Stats calls in flight at once. The engine answers a one-shot call at
/// its stats collector's next tick (about a second, whatever the load), so
/// calls wait rather than work: 500 containers at 16 at a time took 31 s
/// a round on Docker 20.10; at 128, four waves of about a second.
pub const CONCURRENCY: usize = 128;
/// How often the service list is read again.
const SERVICES_EVERY: Duration = Duration::from_secs(30);
/// How often old rows are purged.
const PURGE_EVERY: Duration = Duration::from_secs(3600);

/// One complete reading (a container from its second sample, or a sum).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    pub cpu: f64,
    pub mem: u64,
    pub limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
}

impl Reading {
    fn add(&mut self, o: &Reading) {
        self.cpu += o.cpu;
        self.mem = self.mem.saturating_add(o.mem);
        self.limit = self.limit.saturating_add(o.limit);
        self.net_rx = self.net_rx.saturating_add(o.net_rx);
        self.net_tx = self.net_tx.saturating_add(o.net_tx);
        self.blk_read = self.blk_read.saturating_add(o.blk_read);
        self.blk_write = self.blk_write.saturating_add(o.blk_write);
    }
}

/// One series' minute in progress.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Acc {
    pub samples: i32,
    pub cpu_sum: f64,
    pub cpu_max: Option<f64>,
    pub mem_sum: f64,
    pub mem_max: Option<i64>,
    pub mem_limit: Option<i64>,
    pub net_rx: i64,
    pub net_tx: i64,
    pub blk_read: i64,
    pub blk_write: i64,
    pub disk_used: Option<i64>,
    pub disk_total: Option<i64>,
}

fn big(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Acc {
    pub fn add(&mut self, r: &Reading) {
        self.samples += 1;
        self.cpu_sum += r.cpu;
        self.cpu_max = Some(self.cpu_max.map_or(r.cpu, |m| m.max(r.cpu)));
        self.mem_sum += r.mem as f64;
        self.mem_max = Some(self.mem_max.map_or(big(r.mem), |m| m.max(big(r.mem))));
        if r.limit > 0 {
            self.mem_limit = Some(self.mem_limit.map_or(big(r.limit), |m| m.max(big(r.limit))));
        }
        self.net_rx = self.net_rx.saturating_add(big(r.net_rx));
        self.net_tx = self.net_tx.saturating_add(big(r.net_tx));
        self.blk_read = self.blk_read.saturating_add(big(r.blk_read));
        self.blk_write = self.blk_write.saturating_add(big(r.blk_write));
    }

    pub fn disk(&mut self, used: u64, total: u64) {
        self.samples += 1;
        self.disk_used = Some(self.disk_used.map_or(big(used), |m| m.max(big(used))));
        self.disk_total = Some(self.disk_total.map_or(big(total), |m| m.max(big(total))));
    }
}

/// The rates between two samples of one container; `None` when they do
/// not make a reading (no CPU figures, or the counters went back).
pub fn between(prev: &Counters, now: &Counters) -> Option<Reading> {
    let (Some(a), Some(b)) = (prev.cpu(), now.cpu()) else {
        return None;
    };
    let cpu = cpu_percent(a, b)?;
    Some(Reading {
        cpu,
        mem: now.mem_bytes,
        limit: now.mem_limit,
        net_rx: now.net_rx.checked_sub(prev.net_rx)?,
        net_tx: now.net_tx.checked_sub(prev.net_tx)?,
        blk_read: now.blk_read.checked_sub(prev.blk_read)?,
        blk_write: now.blk_write.checked_sub(prev.blk_write)?,
    })
}

struct Prev {
    counters: Counters,
    at: Instant,
}

/// Figures of the last tick (logged at debug, read by tests).
#[derive(Debug, Clone, Default)]
pub struct TickStats {
    pub containers: usize,
    pub failed: usize,
    pub rows: u64,
}

/// The sampler's state (one per process; only the lock holder ticks).
pub struct Sampler {
    pool: PgPool,
    engines: Arc<EngineHub>,
    interval: Duration,
    prev: HashMap<(i64, String), Prev>,
    host: HostReader,
    host_prev: Option<(HostReading, Instant)>,
    acc: HashMap<(SeriesKey, i64), Acc>,
    ids: HashMap<SeriesKey, i64>,
    services: Vec<(i64, Fields)>,
    services_at: Option<Instant>,
    purged_at: Option<Instant>,
    /// How long the previous round took.
    last_round: Duration,
}

impl Sampler {
    pub fn new(pool: PgPool, engines: Arc<EngineHub>, interval: Duration) -> Sampler {
        Sampler {
            pool,
            engines,
            interval,
            prev: HashMap::new(),
            host: HostReader::new(),
            host_prev: None,
            acc: HashMap::new(),
            ids: HashMap::new(),
            services: Vec::new(),
            services_at: None,
            purged_at: None,
            last_round: Duration::ZERO,
        }
    }

    /// Forgets counters and unwritten minutes (the lock was lost).
    /// How long the last round took.
    pub fn last_round(&self) -> Duration {
        self.last_round
    }

    pub fn reset(&mut self) {
        self.prev.clear();
        self.host_prev = None;
        self.acc.clear();
    }

    fn max_age(&self) -> Duration {
        (self.interval * 3).max(self.last_round * 2) + Duration::from_secs(5)
    }

    /// One round: sample, add, write the finished minutes, purge hourly.
    pub async fn tick(&mut self) -> anyhow::Result<TickStats> {
        let started = Instant::now();
        let now = Utc::now();
        let minute = now.timestamp().div_euclid(60);
        if self
            .services_at
            .is_none_or(|t| t.elapsed() >= SERVICES_EVERY)
        {
            let mut conn = self.pool.acquire().await?;
            let snap = crate::inventory::Snapshot::load(&mut conn).await?;
            self.services = snap
                .services
                .into_iter()
                .map(|s| (s.id, s.fields))
                .collect();
            self.services_at = Some(Instant::now());
        }
        let mut stats = self.sample_containers(minute).await;
        self.sample_host(minute).await;
        stats.rows = self.flush(minute, false).await?;
        if self.purged_at.is_none_or(|t| t.elapsed() >= PURGE_EVERY) {
            self.purged_at = Some(Instant::now());
            match store::purge(&self.pool).await {
                Ok(n) if n > 0 => tracing::info!(rows = n, "purged old resource rollups"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging resource rollups failed"),
            }
        }
        self.last_round = started.elapsed();
        if self.last_round > self.interval {
            tracing::warn!(
                containers = stats.containers,
                round_ms = self.last_round.as_millis() as u64,
                "a resource sampling round took longer than resource_sample_interval"
            );
        }
        tracing::debug!(
            containers = stats.containers,
            failed = stats.failed,
            rows = stats.rows,
            round_ms = self.last_round.as_millis() as u64,
            "resources sampled"
        );
        Ok(stats)
    }

    async fn sample_containers(&mut self, minute: i64) -> TickStats {
        let idx = ContainerIndex::build(&self.engines);
        let mut owners: HashMap<(i64, String), Vec<i64>> = HashMap::new();
        for (sid, f) in &self.services {
            for c in idx.containers_of(f) {
                owners.entry((c.engine_id, c.id)).or_default().push(*sid);
            }
        }
        let mut targets = Vec::new();
        for e in self.engines.engines() {
            let Ok(client) = e.client() else { continue };
            e.with_containers(|cs| {
                for c in cs.values().filter(|c| c.state == "running") {
                    targets.push((e.id, c.id.clone(), client.clone()));
                }
            });
        }
        let mut stats = TickStats {
            containers: targets.len(),
            ..TickStats::default()
        };
        let results: Vec<_> = futures::stream::iter(targets)
            .map(|(engine, id, client)| async move {
                let r = crate::docker::stats::counters(&client, &id).await;
                (engine, id, r, Instant::now())
            })
            .buffer_unordered(CONCURRENCY)
            .collect()
            .await;
        let max_age = self.max_age();
        let mut seen = HashSet::new();
        let mut per_service: HashMap<i64, Reading> = HashMap::new();
        let mut per_engine: HashMap<i64, Reading> = HashMap::new();
        for (engine, id, r, at) in results {
            let key = (engine, id);
            let counters = match r {
                Ok(c) => c,
                Err(e) => {
                    stats.failed += 1;
                    tracing::debug!(container = %key.1, error = %e, "stats failed");
                    continue;
                }
            };
            seen.insert(key.clone());
            let reading = self
                .prev
                .get(&key)
                .filter(|p| at.duration_since(p.at) <= max_age)
                .and_then(|p| between(&p.counters, &counters));
            if let Some(r) = reading {
                per_engine.entry(engine).or_default().add(&r);
                for sid in owners.get(&key).into_iter().flatten() {
                    per_service.entry(*sid).or_default().add(&r);
                }
            }
            self.prev.insert(key, Prev { counters, at });
        }
        self.prev.retain(|k, _| seen.contains(k));
        for (sid, r) in per_service {
            self.acc
                .entry((SeriesKey::Service(sid), minute))
                .or_default()
                .add(&r);
        }
        for (eid, r) in per_engine {
            self.acc
                .entry((SeriesKey::Engine(eid), minute))
                .or_default()
                .add(&r);
        }
        stats
    }

    async fn sample_host(&mut self, minute: i64) {
        let h = self.host.read().await;
        let at = Instant::now();
        let prev = self
            .host_prev
            .take()
            .filter(|(_, t)| at.duration_since(*t) <= self.max_age());
        if let (Some(cpu), Some((p, _))) = (h.cpu, prev) {
            let r = Reading {
                cpu,
                mem: h.mem_used,
                limit: h.mem_total,
                net_rx: h.net_rx.saturating_sub(p.net_rx),
                net_tx: h.net_tx.saturating_sub(p.net_tx),
                blk_read: 0,
                blk_write: 0,
            };
            self.acc
                .entry((SeriesKey::Host, minute))
                .or_default()
                .add(&r);
        }
        for m in &h.mounts {
            self.acc
                .entry((SeriesKey::Mount(m.mount.clone()), minute))
                .or_default()
                .disk(m.used, m.total);
        }
        self.host_prev = Some((h, at));
    }

    /// Writes the minutes before `current` (every minute when `all`);
    /// returns the minute rows written. A failed write drops those minutes
    /// (logged), like the check rollups.
    pub async fn flush(&mut self, current: i64, all: bool) -> anyhow::Result<u64> {
        let done: Vec<(SeriesKey, i64)> = self
            .acc
            .keys()
            .filter(|(_, m)| all || *m < current)
            .cloned()
            .collect();
        if done.is_empty() {
            return Ok(0);
        }
        let rows: Vec<((SeriesKey, i64), Acc)> = done
            .into_iter()
            .filter_map(|k| self.acc.remove(&k).map(|a| (k, a)))
            .collect();
        let missing: Vec<SeriesKey> = rows
            .iter()
            .map(|((k, _), _)| k)
            .filter(|k| !self.ids.contains_key(*k))
            .cloned()
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if !missing.is_empty() {
            self.ids.extend(store::resolve(&self.pool, &missing).await?);
        }
        let mut cols = RollupCols::default();
        for ((key, minute), a) in rows {
            let Some(id) = self.ids.get(&key) else {
                continue;
            };
            cols.push(
                *id,
                DateTime::from_timestamp(minute * 60, 0).unwrap_or_default(),
                a,
            );
        }
        Ok(store::write_rollups(&self.pool, &cols).await?)
    }
}

impl RollupCols {
    fn push(&mut self, id: i64, bucket: DateTime<Utc>, a: Acc) {
        self.series.push(id);
        self.bucket.push(bucket);
        self.samples.push(a.samples);
        self.cpu_sum.push(a.cpu_sum);
        self.cpu_max.push(a.cpu_max);
        self.mem_sum.push(a.mem_sum);
        self.mem_max.push(a.mem_max);
        self.mem_limit.push(a.mem_limit);
        self.net_rx.push(a.net_rx);
        self.net_tx.push(a.net_tx);
        self.blk_read.push(a.blk_read);
        self.blk_write.push(a.blk_write);
        self.disk_used.push(a.disk_used);
        self.disk_total.push(a.disk_total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counters(cpu: u64, system: u64, rx: u64) -> Counters {
        Counters {
            cpu_total_ns: Some(cpu),
            system_ns: Some(system),
            online_cpus: 2,
            mem_bytes: 1000,
            mem_limit: 4000,
            net_rx: rx,
            net_tx: rx / 2,
            blk_read: 0,
            blk_write: 10,
            pids: 1,
        }
    }

    #[test]
    fn readings_are_rates_between_samples() {
        let r = between(&counters(0, 0, 100), &counters(500, 1000, 400)).unwrap();
        // 500 of 1000 host ns on 2 cores: one core.
        assert_eq!(r.cpu, 100.0);
        assert_eq!((r.net_rx, r.net_tx, r.mem, r.limit), (300, 150, 1000, 4000));
        // A restart (counters back): no reading.
        assert_eq!(
            between(&counters(500, 1000, 400), &counters(10, 2000, 5)),
            None
        );
        // No CPU figures: no reading.
        let mut none = counters(0, 0, 0);
        none.cpu_total_ns = None;
        assert_eq!(between(&none, &counters(1, 1, 1)), None);
    }

    #[test]
    fn accumulators_keep_sums_and_peaks() {
        let mut a = Acc::default();
        let r = |cpu, mem| Reading {
            cpu,
            mem,
            limit: 100,
            net_rx: 10,
            ..Reading::default()
        };
        a.add(&r(20.0, 50));
        a.add(&r(60.0, 30));
        assert_eq!(a.samples, 2);
        assert_eq!(a.cpu_sum, 80.0);
        assert_eq!(a.cpu_max, Some(60.0));
        assert_eq!(a.mem_sum, 80.0);
        assert_eq!(a.mem_max, Some(50));
        assert_eq!(a.mem_limit, Some(100));
        assert_eq!(a.net_rx, 20);
        let mut d = Acc::default();
        d.disk(10, 100);
        d.disk(12, 100);
        assert_eq!(
            (d.disk_used, d.disk_total, d.cpu_max),
            (Some(12), Some(100), None)
        );
    }
}
