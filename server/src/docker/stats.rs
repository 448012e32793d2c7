//! A container's raw resource counters from one one-shot stats call
//! (`stream=false`, `one_shot=true`: the engine answers at once instead of
//! waiting a second for a second sample). The counters are cumulative (CPU
//! time, bytes moved) except memory; callers keep the previous sample and
//! compute rates themselves ([`cpu_percent`]). Used by `ops::stats` and the
//! resource sampler (`crate::resources`).

use std::time::Instant;

use bollard::models::ContainerStatsResponse;

use super::Client;

/// One sample of a container's counters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Counters {
    /// Cumulative CPU time of the container, in nanoseconds.
    pub cpu_total_ns: Option<u64>,
    /// Cumulative CPU time of the host, in nanoseconds (all cores).
    pub system_ns: Option<u64>,
    pub online_cpus: u32,
    /// Memory in use minus the page cache, like `docker stats`.
    pub mem_bytes: u64,
    /// The container's limit (the host's RAM when it has none).
    pub mem_limit: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    pub blk_read: u64,
    pub blk_write: u64,
    pub pids: u64,
}

/// CPU counters of a previous sample.
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    pub total: u64,
    pub system: u64,
    pub online: u32,
    pub at: Instant,
}

impl Counters {
    /// The CPU part, when the engine reported it.
    pub fn cpu(&self) -> Option<CpuSample> {
        Some(CpuSample {
            total: self.cpu_total_ns?,
            system: self.system_ns?,
            online: self.online_cpus,
            at: Instant::now(),
        })
    }
}

/// CPU % between two samples, as `docker stats` computes it (100 = one core).
pub fn cpu_percent(prev: CpuSample, now: CpuSample) -> Option<f64> {
    let cpu = now.total.checked_sub(prev.total)? as f64;
    let sys = now.system.checked_sub(prev.system)? as f64;
    (sys > 0.0).then(|| cpu / sys * f64::from(now.online) * 100.0)
}

/// The counters of one stats answer.
pub(super) fn counters_of(s: &ContainerStatsResponse) -> Counters {
    let cpu = s.cpu_stats.as_ref();
    let mem = s.memory_stats.as_ref();
    // Like `docker stats`: usage minus the page cache.
    let cache = mem
        .and_then(|m| m.stats.as_ref())
        .and_then(|s| s.get("inactive_file").or_else(|| s.get("cache")).copied())
        .unwrap_or(0);
    let (mut rx, mut tx) = (0, 0);
    for n in s.networks.iter().flat_map(|m| m.values()) {
        rx += n.rx_bytes.unwrap_or(0);
        tx += n.tx_bytes.unwrap_or(0);
    }
    let (mut br, mut bw) = (0, 0);
    for e in s
        .blkio_stats
        .iter()
        .flat_map(|b| b.io_service_bytes_recursive.iter().flatten())
    {
        match e.op.as_deref().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => br += e.value.unwrap_or(0),
            Some("write") => bw += e.value.unwrap_or(0),
            _ => {}
        }
    }
    Counters {
        cpu_total_ns: cpu.and_then(|c| c.cpu_usage.as_ref()?.total_usage),
        system_ns: cpu.and_then(|c| c.system_cpu_usage),
        online_cpus: cpu.and_then(|c| c.online_cpus).unwrap_or(1).max(1),
        mem_bytes: mem.and_then(|m| m.usage).unwrap_or(0).saturating_sub(cache),
        mem_limit: mem.and_then(|m| m.limit).unwrap_or(0),
        net_rx: rx,
        net_tx: tx,
        blk_read: br,
        blk_write: bw,
        pids: s.pids_stats.as_ref().and_then(|p| p.current).unwrap_or(0),
    }
}

/// One one-shot stats call: the container's counters now.
pub async fn counters(client: &Client, container: &str) -> anyhow::Result<Counters> {
    Ok(counters_of(&super::ops::one_shot(client, container).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_percent_is_docker_stats_formula() {
        let at = Instant::now();
        let a = CpuSample {
            total: 1_000,
            system: 10_000,
            online: 4,
            at,
        };
        let b = CpuSample {
            total: 3_500,
            system: 20_000,
            online: 4,
            at,
        };
        // 2500 of 10000 host ns on 4 cores: one full core.
        assert_eq!(cpu_percent(a, b), Some(100.0));
        // Counters that went back (a restart): no figure.
        assert_eq!(cpu_percent(b, a), None);
    }
}
