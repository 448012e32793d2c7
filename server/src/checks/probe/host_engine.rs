//! Host checks that name an engine: the resources of that engine's host,
//! read through a short-lived helper container ([`crate::docker::hostprobe`]
//! runs it; this file turns the kernel's texts into figures).
//!
//! The metrics and grading are those of the Opsdeck host's checks
//! ([`super::host`]): `cpu_pct` (busy share of all CPUs between two
//! `/proc/stat` samples 1 s apart), `memory_pct` (total − available, as
//! `free` shows), `disk_pct` / `inodes_pct` (`statfs` counts, as `df`),
//! `load_pct` (1-minute load per online CPU); each result also carries
//! `uptime_s` and says the host's uptime ("host up 12 d 3 h").
//!
//! An engine that is not connected gives `unknown` "engine X unreachable:
//! <reason>" (as container-resource checks do); a failed reading on a
//! connected engine is `critical`.

use opsdeck_wire::{CheckStatus, HostCheck, Resource};

use super::host::{clamp_pct, gib, grade, FsUsage};
use super::Probe;
use crate::docker::hostprobe::{HostProbe, Read, Texts};
use crate::docker::EngineHub;

/// Reads and grades `c` (whose `engine` is set) on that engine's host.
pub async fn probe(remote: &HostProbe, engines: &EngineHub, c: &HostCheck) -> Probe {
    let Some(name) = c.engine.as_deref() else {
        return Probe::new(CheckStatus::Unknown, "no engine named");
    };
    let Some(conn) = engines.by_name(name) else {
        return Probe::new(
            CheckStatus::Unknown,
            format!("engine {name} is not registered"),
        );
    };
    let unreachable = |reason: &str| {
        Probe::new(
            CheckStatus::Unknown,
            format!("engine {name} unreachable: {reason}"),
        )
    };
    let client = match conn.client() {
        Ok(c) => c,
        Err(e) => return unreachable(&e.reason),
    };
    let path = c.path.as_deref().unwrap_or("/");
    let what = match c.resource {
        Resource::Cpu => Read::Cpu,
        Resource::Memory => Read::Memory,
        Resource::Load => Read::Load,
        Resource::Disk | Resource::Inodes => Read::Fs(path.to_owned()),
    };
    let texts = match remote.read(conn.id, &client, &what).await {
        Ok(t) => t,
        // The engine went away meanwhile: unreachable, not a host problem.
        Err(e) => match conn.client() {
            Err(u) => return unreachable(&u.reason),
            Ok(_) => return Probe::critical(format!("host of engine {name}: {e:#}")),
        },
    };
    match grade_texts(c, path, &texts) {
        Ok(p) => p,
        Err(why) => Probe::critical(format!("host of engine {name}: {why}")),
    }
}

/// Grades what the helper printed.
fn grade_texts(c: &HostCheck, path: &str, t: &Texts) -> Result<Probe, String> {
    let uptime = parse_uptime(&t.uptime).ok_or("/proc/uptime unreadable")?;
    let missing = |what: &str| format!("{what} was not read");
    let (name, value, text) = match c.resource {
        Resource::Cpu => {
            let a = t.stat.as_deref().ok_or_else(|| missing("/proc/stat"))?;
            let b = t
                .stat_after
                .as_deref()
                .ok_or_else(|| missing("/proc/stat"))?;
            let (a, b) = (cpu_times(a), cpu_times(b));
            let pct = a
                .zip(b)
                .and_then(|(a, b)| cpu_pct(a, b))
                .ok_or("/proc/stat has no usable cpu line")?;
            ("cpu_pct", pct, format!("CPU {pct:.1} % used"))
        }
        Resource::Memory => {
            let m = t
                .meminfo
                .as_deref()
                .ok_or_else(|| missing("/proc/meminfo"))?;
            let m = parse_meminfo(m).ok_or("/proc/meminfo has no MemTotal")?;
            let used = m.total.saturating_sub(m.available);
            let pct = clamp_pct(100.0 * used as f64 / m.total as f64);
            let mut text = format!("memory {pct:.1} % used ({} of {})", gib(used), gib(m.total));
            if m.swap_total > 0 {
                let swap_used = m.swap_total.saturating_sub(m.swap_free);
                text.push_str(&format!(
                    ", swap {} of {}",
                    gib(swap_used),
                    gib(m.swap_total)
                ));
            }
            ("memory_pct", pct, text)
        }
        Resource::Load => {
            let l = t
                .loadavg
                .as_deref()
                .ok_or_else(|| missing("/proc/loadavg"))?;
            let one = parse_loadavg(l).ok_or("/proc/loadavg unreadable")?;
            let cores = t.stat.as_deref().map(count_cpus).unwrap_or(0);
            if cores == 0 {
                return Err("/proc/stat lists no CPU".into());
            }
            let pct = 100.0 * one / cores as f64;
            (
                "load_pct",
                pct,
                format!("load {one:.2} on {cores} cores ({pct:.0} % per core)"),
            )
        }
        Resource::Disk | Resource::Inodes => {
            let s = t.statfs.as_deref().ok_or_else(|| missing("stat -f"))?;
            let fs = parse_statfs(s).ok_or_else(|| format!("stat -f of {path}: {}", s.trim()))?;
            if c.resource == Resource::Disk {
                let v = fs.disk_pct();
                ("disk_pct", v, format!("disk {path} {v:.1} % used"))
            } else {
                match fs.inodes_pct() {
                    Some(v) => ("inodes_pct", v, format!("inodes {path} {v:.1} % used")),
                    None => ("inodes_pct", 0.0, format!("inodes {path}: no inode limit")),
                }
            }
        }
    };
    let mut p = grade(name, value, text, c.warning_pct, c.critical_pct);
    p.message = format!("{}; host up {}", p.message, uptime_text(uptime));
    Ok(p.metric("uptime_s", uptime))
}

/// Busy and total jiffies of all CPUs (the `cpu ` line of `/proc/stat`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

/// The aggregate `cpu` line: user nice system idle iowait irq softirq
/// steal (guest time is already in user and nice, so it is not added).
/// Idle is idle + iowait.
pub fn cpu_times(stat: &str) -> Option<CpuTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if v.len() < 4 {
        return None;
    }
    let total: u64 = v.iter().sum();
    let idle = v[3] + v.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        busy: total.saturating_sub(idle),
        total,
    })
}

/// Busy share between two samples; `None` when no time passed.
pub fn cpu_pct(a: CpuTimes, b: CpuTimes) -> Option<f64> {
    let total = b.total.checked_sub(a.total).filter(|t| *t > 0)?;
    let busy = b.busy.saturating_sub(a.busy);
    Some(clamp_pct(100.0 * busy as f64 / total as f64))
}

/// The online CPUs: the `cpuN` lines of `/proc/stat`.
pub fn count_cpus(stat: &str) -> usize {
    stat.lines()
        .filter(|l| {
            l.strip_prefix("cpu")
                .is_some_and(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        })
        .count()
}

/// Figures of `/proc/meminfo`, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemInfo {
    pub total: u64,
    /// `MemAvailable`, or free + buffers + cached on kernels before 3.14.
    pub available: u64,
    pub swap_total: u64,
    pub swap_free: u64,
}

pub fn parse_meminfo(text: &str) -> Option<MemInfo> {
    let kib = |key: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let (k, rest) = l.split_once(':')?;
            (k.trim() == key)
                .then(|| rest.split_whitespace().next()?.parse::<u64>().ok())
                .flatten()
                .map(|v| v * 1024)
        })
    };
    let total = kib("MemTotal").filter(|t| *t > 0)?;
    let available = kib("MemAvailable").unwrap_or_else(|| {
        kib("MemFree").unwrap_or(0) + kib("Buffers").unwrap_or(0) + kib("Cached").unwrap_or(0)
    });
    Some(MemInfo {
        total,
        available: available.min(total),
        swap_total: kib("SwapTotal").unwrap_or(0),
        swap_free: kib("SwapFree").unwrap_or(0),
    })
}

/// The 1-minute load average (first field of `/proc/loadavg`).
pub fn parse_loadavg(text: &str) -> Option<f64> {
    text.split_whitespace()
        .next()?
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite() && *v >= 0.0)
}

/// Seconds since boot (first field of `/proc/uptime`).
pub fn parse_uptime(text: &str) -> Option<f64> {
    parse_loadavg(text)
}

/// `stat -f -c '%b %f %a %c %d %S'`: blocks, free, available, inodes,
/// free inodes, block size.
pub(super) fn parse_statfs(text: &str) -> Option<FsUsage> {
    let v: Vec<u64> = text
        .split_whitespace()
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    let &[blocks, blocks_free, blocks_available, files, files_free, _size] = &v[..] else {
        return None;
    };
    Some(FsUsage {
        blocks,
        blocks_free,
        blocks_available,
        files,
        files_free,
    })
}

/// "12 d 3 h", "3 h 12 min", "5 min".
pub fn uptime_text(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    match (d, h) {
        (0, 0) => format!("{m} min"),
        (0, _) => format!("{h} h {m} min"),
        _ => format!("{d} d {h} h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Real text from a 2-CPU Debian 12 host (the intr/softirq lines cut).
    const STAT_A: &str = "cpu  2863626 188381 643143 1201871 23358 0 8942 5179 0 0
cpu0 1247005 91510 310774 804303 8546 0 1031 2561 0 0
cpu1 1616621 96871 332368 397567 14812 0 7911 2617 0 0
intr 79526423 0 0 0 0
ctxt 356482583
btime 1796627672
processes 1789309
procs_running 10
procs_blocked 0
";
    const STAT_B: &str = "cpu  2863630 188381 643145 1201871 23358 0 8942 5179 0 0
cpu0 1247006 91510 310776 804303 8546 0 1031 2561 0 0
cpu1 1616624 96871 332369 397567 14812 0 7911 2617 0 0
ctxt 356487879
";
    const MEMINFO: &str = "MemTotal:       24683772 kB
MemFree:         6139680 kB
MemAvailable:   23840236 kB
Buffers:           61888 kB
Cached:         17339592 kB
SwapCached:            0 kB
Active:         10391900 kB
SwapTotal:             0 kB
SwapFree:              0 kB
Dirty:               408 kB
";

    fn check(resource: Resource, warning_pct: f64, critical_pct: f64) -> HostCheck {
        HostCheck {
            resource,
            path: None,
            engine: Some("main".into()),
            warning_pct,
            critical_pct,
            sustained_s: 0,
        }
    }

    fn texts() -> Texts {
        Texts {
            uptime: "24790.57 12018.72\n".into(),
            ..Default::default()
        }
    }

    #[test]
    fn cpu_is_the_busy_share_between_two_samples() {
        let a = cpu_times(STAT_A).unwrap();
        let b = cpu_times(STAT_B).unwrap();
        // 4 user + 2 system jiffies passed, none idle: all busy.
        assert_eq!(b.total - a.total, 6);
        assert_eq!(cpu_pct(a, b), Some(100.0));
        assert_eq!(cpu_pct(a, a), None, "no time passed");
        let idle = "cpu  10 0 10 70 10 0 0 0 0 0\n";
        let later = "cpu  20 0 20 130 30 0 0 0 0 0\n";
        // Δ: busy 20, idle 60 + iowait 20, total 100.
        let pct = cpu_pct(cpu_times(idle).unwrap(), cpu_times(later).unwrap()).unwrap();
        assert!((pct - 20.0).abs() < 1e-9, "{pct}");
        assert_eq!(count_cpus(STAT_A), 2);
        assert_eq!(cpu_times("intr 1 2 3\n"), None);
    }

    #[test]
    fn memory_used_is_total_minus_available() {
        let m = parse_meminfo(MEMINFO).unwrap();
        assert_eq!(m.total, 24_683_772 * 1024);
        assert_eq!(m.available, 23_840_236 * 1024);
        assert_eq!(m.swap_total, 0);
        // An old kernel without MemAvailable: free + buffers + cached.
        let old = "MemTotal: 1000 kB\nMemFree: 100 kB\nBuffers: 50 kB\nCached: 250 kB\n";
        assert_eq!(parse_meminfo(old).unwrap().available, 400 * 1024);
        assert_eq!(parse_meminfo("MemFree: 1 kB\n"), None);
    }

    #[test]
    fn load_uptime_and_statfs_parse() {
        assert_eq!(parse_loadavg("4.00 7.12 8.70 4/292 13117\n"), Some(4.0));
        assert_eq!(parse_uptime("24790.57 12018.72\n"), Some(24790.57));
        assert_eq!(parse_loadavg(""), None);
        // `stat -f -c '%b %f %a %c %d %S' /` on the same host.
        let fs = parse_statfs("66053021 49209669 6978120 16777216 16247665 4096\n").unwrap();
        assert_eq!(fs.blocks, 66_053_021);
        assert!((fs.disk_pct() - 70.71).abs() < 0.01, "{}", fs.disk_pct());
        assert!((fs.inodes_pct().unwrap() - 3.156).abs() < 0.01);
        assert_eq!(
            parse_statfs("stat: can't read file system information"),
            None
        );
        assert_eq!(uptime_text(24790.57), "6 h 53 min");
        assert_eq!(uptime_text(59.0), "0 min");
        assert_eq!(uptime_text(3.0 * 86_400.0 + 7200.0), "3 d 2 h");
    }

    #[test]
    fn readings_are_graded_like_the_opsdeck_hosts() {
        let t = Texts {
            meminfo: Some(MEMINFO.into()),
            ..texts()
        };
        let p = grade_texts(&check(Resource::Memory, 3.0, 95.0), "/", &t).unwrap();
        assert_eq!(p.status, CheckStatus::Warning, "{p:?}");
        assert_eq!(p.metrics[0].name, "memory_pct");
        assert!((p.metrics[0].value - 3.417).abs() < 0.01, "{p:?}");
        assert_eq!(p.metrics[1].name, "uptime_s");
        assert_eq!(
            p.message,
            "memory 3.4 % used (0.8 GiB of 23.5 GiB) (warning at 3 %); host up 6 h 53 min"
        );

        let t = Texts {
            loadavg: Some("4.00 7.12 8.70 4/292 13117\n".into()),
            stat: Some(STAT_A.into()),
            ..texts()
        };
        let p = grade_texts(&check(Resource::Load, 80.0, 100.0), "/", &t).unwrap();
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.metrics[0].value, 200.0);
        assert!(p
            .message
            .starts_with("load 4.00 on 2 cores (200 % per core)"));

        let t = Texts {
            stat: Some(STAT_A.into()),
            stat_after: Some(STAT_B.into()),
            ..texts()
        };
        let p = grade_texts(&check(Resource::Cpu, 70.0, 90.0), "/", &t).unwrap();
        assert_eq!(
            (p.status, p.metrics[0].value),
            (CheckStatus::Critical, 100.0)
        );

        let t = Texts {
            statfs: Some("1024 512 512 100 100 4096\n".into()),
            ..texts()
        };
        let p = grade_texts(&check(Resource::Disk, 40.0, 75.0), "/srv", &t).unwrap();
        assert_eq!(p.status, CheckStatus::Warning);
        assert!(p
            .message
            .starts_with("disk /srv 50.0 % used (warning at 40 %)"));
        let p = grade_texts(&check(Resource::Inodes, 40.0, 75.0), "/srv", &t).unwrap();
        assert_eq!((p.status, p.metrics[0].value), (CheckStatus::Ok, 0.0));

        // What was not read is an error, never a zero.
        let e = grade_texts(&check(Resource::Memory, 80.0, 95.0), "/", &texts()).unwrap_err();
        assert!(e.contains("/proc/meminfo"), "{e}");
    }
}
