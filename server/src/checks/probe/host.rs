//! Resources of the Opsdeck host: CPU, memory, disk, inodes and load. (A
//! host check that names an engine reads that engine's host instead:
//! [`super::host_engine`], with the same metrics and grading.)
//!
//! One probe reads the one resource its check names and reports one metric:
//! `cpu_pct`, `memory_pct`, `disk_pct`, `inodes_pct` (0–100) or `load_pct`
//! (the 1-minute load average per online CPU, 100 = one per core), graded
//! "higher is worse" with `warning_pct` / `critical_pct`. The engine applies
//! `sustained_s`; a probe is the instantaneous reading.
//!
//! * CPU: all cores' busy share between two samples. The sampler keeps one
//!   `sysinfo::System`; each probe refreshes it, so the reading covers the
//!   time since the previous CPU probe. When there is no previous sample (or
//!   it is younger than `sysinfo::MINIMUM_CPU_UPDATE_INTERVAL`), the probe
//!   waits that interval and samples again. The lock is never held across
//!   the wait.
//! * Memory: used / total RAM (`used` = total − available, as `free` shows).
//! * Disk: like `df`, used / (used + available to unprivileged users) of the
//!   filesystem holding `path` (default `/`), so the root-reserved blocks
//!   count as unavailable. Inodes: used / total; a filesystem without an
//!   inode limit (btrfs, some overlays report 0) is 0 % "no inode limit".
//!   `statvfs` runs on the blocking pool, so a hung mount cannot stall the
//!   runtime (the engine's timeout reports it).

use std::sync::Mutex;
use std::time::Instant;

use opsdeck_wire::{CheckStatus, HostCheck, Resource};
use sysinfo::{System, MINIMUM_CPU_UPDATE_INTERVAL};

use super::{grade_above, Probe};

/// Samples CPU, memory, disk and inodes of the host.
#[derive(Default)]
pub struct HostSampler {
    /// Created on first use (`System::new` can fail on exotic platforms).
    state: Mutex<Option<Sampler>>,
    /// Engines' hosts: their helper images and build gates.
    remote: crate::docker::hostprobe::HostProbe,
}

struct Sampler {
    sys: System,
    /// When the CPU figures were last refreshed.
    cpu_at: Option<Instant>,
}

impl HostSampler {
    pub fn new() -> HostSampler {
        HostSampler::default()
    }

    /// What reads the hosts of engines (host checks with an engine).
    pub fn remote(&self) -> &crate::docker::hostprobe::HostProbe {
        &self.remote
    }

    /// The instantaneous reading and its grade (the engine applies `sustained_s`).
    pub async fn probe(&self, c: &HostCheck) -> Probe {
        let path = c
            .path
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .unwrap_or("/");
        let reading = match c.resource {
            Resource::Cpu => self.cpu().await,
            Resource::Memory => self.memory(),
            Resource::Disk | Resource::Inodes => fs_usage(path).await,
            Resource::Load => load_per_core(),
        };
        let reading = match reading {
            Ok(r) => r,
            Err(why) => return Probe::critical(why),
        };
        let (name, value, text) = match (c.resource, reading) {
            (Resource::Cpu, Reading::Pct(v)) => ("cpu_pct", v, format!("CPU {v:.1} % used")),
            (Resource::Load, Reading::Load { one, cores }) => {
                let pct = 100.0 * one / cores as f64;
                (
                    "load_pct",
                    pct,
                    format!("load {one:.2} on {cores} cores ({pct:.0} % per core)"),
                )
            }
            (Resource::Memory, Reading::Memory { pct, used, total }) => (
                "memory_pct",
                pct,
                format!("memory {pct:.1} % used ({} of {})", gib(used), gib(total)),
            ),
            (Resource::Disk, Reading::Fs(fs)) => (
                "disk_pct",
                fs.disk_pct(),
                format!("disk {path} {:.1} % used", fs.disk_pct()),
            ),
            (Resource::Inodes, Reading::Fs(fs)) => match fs.inodes_pct() {
                Some(v) => ("inodes_pct", v, format!("inodes {path} {v:.1} % used")),
                None => ("inodes_pct", 0.0, format!("inodes {path}: no inode limit")),
            },
            _ => return Probe::critical("internal error: reading of the wrong kind"),
        };
        grade(name, value, text, c.warning_pct, c.critical_pct)
    }

    fn with_sampler<T>(&self, f: impl FnOnce(&mut Sampler) -> T) -> Result<T, String> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let sys = System::new().map_err(|e| format!("host metrics unavailable: {e}"))?;
            *guard = Some(Sampler { sys, cpu_at: None });
        }
        Ok(f(guard.as_mut().expect("just set")))
    }

    async fn cpu(&self) -> Result<Reading, String> {
        let refresh = |s: &mut Sampler| {
            let previous = s.cpu_at;
            s.sys.refresh_cpu_usage();
            let now = Instant::now();
            s.cpu_at = Some(now);
            match previous {
                Some(t) if now.duration_since(t) >= MINIMUM_CPU_UPDATE_INTERVAL => {
                    Some(s.sys.global_cpu_usage())
                }
                _ => None,
            }
        };
        let usage = match self.with_sampler(refresh)? {
            Some(u) => u,
            None => {
                // First sample (or too recent): take a second one.
                tokio::time::sleep(MINIMUM_CPU_UPDATE_INTERVAL).await;
                self.with_sampler(|s| {
                    s.sys.refresh_cpu_usage();
                    s.cpu_at = Some(Instant::now());
                    s.sys.global_cpu_usage()
                })?
            }
        };
        if usage.is_nan() {
            return Err("CPU usage unavailable".into());
        }
        Ok(Reading::Pct(clamp_pct(usage as f64)))
    }

    fn memory(&self) -> Result<Reading, String> {
        let (used, total) = self.with_sampler(|s| {
            s.sys.refresh_memory();
            (s.sys.used_memory(), s.sys.total_memory())
        })?;
        if total == 0 {
            return Err("memory size unavailable".into());
        }
        Ok(Reading::Memory {
            pct: clamp_pct(100.0 * used as f64 / total as f64),
            used,
            total,
        })
    }
}

enum Reading {
    Pct(f64),
    Load { one: f64, cores: usize },
    Memory { pct: f64, used: u64, total: u64 },
    Fs(FsUsage),
}

/// The 1-minute load average and the online CPUs (`cpuN` lines of
/// `/proc/stat`, so a CPU limit of Opsdeck's own container does not count).
fn load_per_core() -> Result<Reading, String> {
    let one = System::load_average()
        .map_err(|e| format!("load average unavailable: {e}"))?
        .one;
    let cores = std::fs::read_to_string("/proc/stat")
        .map(|s| {
            s.lines()
                .filter(|l| {
                    l.strip_prefix("cpu")
                        .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
                })
                .count()
        })
        .ok()
        .filter(|n| *n > 0)
        .or_else(|| std::thread::available_parallelism().ok().map(|n| n.get()))
        .ok_or("the number of CPUs is unknown")?;
    if one.is_nan() || one < 0.0 {
        return Err("load average unavailable".into());
    }
    Ok(Reading::Load { one, cores })
}

/// Raw `statvfs` counts of a filesystem.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct FsUsage {
    pub(super) blocks: u64,
    pub(super) blocks_free: u64,
    pub(super) blocks_available: u64,
    pub(super) files: u64,
    pub(super) files_free: u64,
}

impl FsUsage {
    /// Used share as `df` computes it: used / (used + available).
    pub(super) fn disk_pct(&self) -> f64 {
        let used = self.blocks.saturating_sub(self.blocks_free);
        let denominator = used + self.blocks_available;
        if denominator == 0 {
            return 0.0;
        }
        clamp_pct(100.0 * used as f64 / denominator as f64)
    }

    /// Used share of inodes; `None` when the filesystem has no inode limit.
    pub(super) fn inodes_pct(&self) -> Option<f64> {
        if self.files == 0 {
            return None;
        }
        let used = self.files.saturating_sub(self.files_free);
        Some(clamp_pct(100.0 * used as f64 / self.files as f64))
    }
}

async fn fs_usage(path: &str) -> Result<Reading, String> {
    let owned = path.to_string();
    let stat = tokio::task::spawn_blocking(move || nix::sys::statvfs::statvfs(owned.as_str()))
        .await
        .map_err(|_| "statvfs task failed".to_string())?
        .map_err(|e| format!("cannot read {path}: {}", e.desc()))?;
    #[allow(clippy::unnecessary_cast)] // the field types differ across platforms
    Ok(Reading::Fs(FsUsage {
        blocks: stat.blocks() as u64,
        blocks_free: stat.blocks_free() as u64,
        blocks_available: stat.blocks_available() as u64,
        files: stat.files() as u64,
        files_free: stat.files_free() as u64,
    }))
}

/// A graded probe with one metric.
pub(super) fn grade(name: &str, value: f64, text: String, warning: f64, critical: f64) -> Probe {
    let status = grade_above(value, warning, critical);
    let msg = match status {
        CheckStatus::Critical => format!("{text} (critical at {critical} %)"),
        CheckStatus::Warning => format!("{text} (warning at {warning} %)"),
        _ => text,
    };
    Probe::new(status, msg).metric(name, value)
}

pub(super) fn clamp_pct(v: f64) -> f64 {
    if v.is_nan() {
        0.0
    } else {
        v.clamp(0.0, 100.0)
    }
}

/// "15.6 GiB"
pub(super) fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(resource: Resource, warning_pct: f64, critical_pct: f64) -> HostCheck {
        HostCheck {
            resource,
            path: None,
            engine: None,
            warning_pct,
            critical_pct,
            sustained_s: 0,
        }
    }

    fn only_metric(p: &Probe, name: &str) -> f64 {
        assert_eq!(p.metrics.len(), 1, "{p:?}");
        assert_eq!(p.metrics[0].name, name);
        p.metrics[0].value
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn sampler_is_send_and_sync() {
        assert_send_sync::<HostSampler>();
    }

    #[tokio::test]
    async fn disk_of_root_is_a_percentage() {
        let sampler = HostSampler::new();
        // Thresholds at 0 % / 101 %: any real reading is a warning.
        let p = sampler.probe(&check(Resource::Disk, 0.0, 101.0)).await;
        let v = only_metric(&p, "disk_pct");
        assert!((0.0..=100.0).contains(&v), "{v}");
        assert_eq!(p.status, CheckStatus::Warning, "{p:?}");
        assert!(p.message.starts_with("disk / "), "{}", p.message);
        assert!(p.message.ends_with("(warning at 0 %)"), "{}", p.message);
        // Beyond any reading: ok.
        let p = sampler.probe(&check(Resource::Disk, 100.5, 101.0)).await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");
        assert!(p.message.ends_with("% used"), "{}", p.message);
    }

    #[tokio::test]
    async fn inodes_of_root_are_a_percentage() {
        let p = HostSampler::new()
            .probe(&check(Resource::Inodes, 100.5, 101.0))
            .await;
        let v = only_metric(&p, "inodes_pct");
        assert!((0.0..=100.0).contains(&v), "{v}");
        assert_eq!(p.status, CheckStatus::Ok);
        assert!(p.message.starts_with("inodes / "), "{}", p.message);
    }

    #[tokio::test]
    async fn load_is_per_core() {
        let p = HostSampler::new()
            .probe(&check(Resource::Load, 1e6, 2e6))
            .await;
        assert_eq!(p.status, CheckStatus::Ok, "{}", p.message);
        let v = only_metric(&p, "load_pct");
        assert!(v >= 0.0, "{v}");
        let cores = std::fs::read_to_string("/proc/stat")
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("cpu") && !l.starts_with("cpu "))
            .count();
        assert!(
            p.message.contains(&format!("on {cores} cores")),
            "{}",
            p.message
        );
    }

    #[tokio::test]
    async fn memory_is_a_percentage() {
        let p = HostSampler::new()
            .probe(&check(Resource::Memory, 0.0, 101.0))
            .await;
        let v = only_metric(&p, "memory_pct");
        assert!(v > 0.0 && v <= 100.0, "{v}");
        assert_eq!(p.status, CheckStatus::Warning);
        assert!(p.message.starts_with("memory "), "{}", p.message);
        assert!(p.message.contains(" GiB)"), "{}", p.message);
    }

    #[tokio::test]
    async fn cpu_takes_two_samples_then_reuses_the_previous_one() {
        let sampler = HostSampler::new();
        let c = check(Resource::Cpu, 100.5, 101.0);
        let start = Instant::now();
        let p = sampler.probe(&c).await;
        assert!(
            start.elapsed() >= MINIMUM_CPU_UPDATE_INTERVAL,
            "first probe samples twice"
        );
        let v = only_metric(&p, "cpu_pct");
        assert!((0.0..=100.0).contains(&v), "{v}");
        assert_eq!(p.status, CheckStatus::Ok);
        assert!(p.message.starts_with("CPU "), "{}", p.message);

        // Later probes use the previous sample as the start of the window.
        tokio::time::sleep(MINIMUM_CPU_UPDATE_INTERVAL).await;
        let start = Instant::now();
        let p = sampler.probe(&c).await;
        assert!(
            start.elapsed() < MINIMUM_CPU_UPDATE_INTERVAL,
            "no second wait"
        );
        assert!((0.0..=100.0).contains(&only_metric(&p, "cpu_pct")));
    }

    #[tokio::test]
    async fn missing_path_is_critical() {
        let c = HostCheck {
            path: Some("/no/such/mount/point".into()),
            ..check(Resource::Disk, 80.0, 90.0)
        };
        let p = HostSampler::new().probe(&c).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(
            p.message.starts_with("cannot read /no/such/mount/point: "),
            "{}",
            p.message
        );
        assert!(p.metrics.is_empty());
    }

    #[test]
    fn fs_percentages_match_df() {
        // 1000 blocks, 300 free of which 250 available (50 reserved for root):
        // used 700, df shows 700 / (700 + 250) = 73.68 %.
        let fs = FsUsage {
            blocks: 1000,
            blocks_free: 300,
            blocks_available: 250,
            files: 200,
            files_free: 150,
        };
        assert!((fs.disk_pct() - 73.684).abs() < 0.01, "{}", fs.disk_pct());
        assert_eq!(fs.inodes_pct(), Some(25.0));
        let no_inodes = FsUsage {
            files: 0,
            files_free: 0,
            ..fs
        };
        assert_eq!(no_inodes.inodes_pct(), None);
        let empty = FsUsage {
            blocks: 0,
            blocks_free: 0,
            blocks_available: 0,
            files: 0,
            files_free: 0,
        };
        assert_eq!(empty.disk_pct(), 0.0);
    }

    #[test]
    fn grading_messages() {
        let p = grade("disk_pct", 83.1, "disk / 83.1 % used".into(), 80.0, 90.0);
        assert_eq!(p.status, CheckStatus::Warning);
        assert_eq!(p.message, "disk / 83.1 % used (warning at 80 %)");
        let p = grade("disk_pct", 95.0, "disk / 95.0 % used".into(), 80.0, 90.0);
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "disk / 95.0 % used (critical at 90 %)");
        let p = grade("cpu_pct", 10.0, "CPU 10.0 % used".into(), 80.0, 90.0);
        assert_eq!(
            (p.status, p.message.as_str()),
            (CheckStatus::Ok, "CPU 10.0 % used")
        );
    }
}
