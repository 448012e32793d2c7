//! Figures of the Opsdeck host: CPU (sysinfo, between two samples), memory
//! (used = total − available), network bytes of its own interfaces
//! (`/proc/net/dev`, without loopback and Docker's bridges and veths, so
//! container traffic is not counted twice) and disk per mount (`statvfs` of
//! each mounted block-device filesystem in `/proc/self/mounts`, one mount
//! per filesystem, sized like `df`).

use std::collections::HashSet;

use sysinfo::System;

/// At most this many mounts are followed.
const MAX_MOUNTS: usize = 16;

/// One reading of the host.
#[derive(Debug, Clone, Default)]
pub struct HostReading {
    /// Percent of one core (the cores summed); `None` on the first reading.
    pub cpu: Option<f64>,
    pub cores: u32,
    pub mem_used: u64,
    pub mem_total: u64,
    /// Cumulative bytes of the host's interfaces.
    pub net_rx: u64,
    pub net_tx: u64,
    pub mounts: Vec<MountReading>,
}

/// A mounted filesystem's use, as `df` counts it.
#[derive(Debug, Clone, PartialEq)]
pub struct MountReading {
    pub mount: String,
    pub used: u64,
    /// Used + available to unprivileged users.
    pub total: u64,
}

/// Keeps the CPU counters between readings.
pub struct HostReader {
    sys: Option<System>,
    primed: bool,
}

impl HostReader {
    pub fn new() -> HostReader {
        HostReader {
            sys: System::new().ok(),
            primed: false,
        }
    }

    /// Reads everything (statvfs runs on the blocking pool: a hung mount
    /// cannot stall the runtime).
    pub async fn read(&mut self) -> HostReading {
        let mut r = HostReading::default();
        if let Some(sys) = self.sys.as_mut() {
            sys.refresh_cpu_usage();
            sys.refresh_memory();
            r.cores = sys.cpus().len() as u32;
            let usage = sys.global_cpu_usage() as f64;
            if self.primed && usage.is_finite() {
                r.cpu = Some(usage.clamp(0.0, 100.0) * f64::from(r.cores.max(1)));
            }
            self.primed = true;
            r.mem_used = sys.used_memory();
            r.mem_total = sys.total_memory();
        }
        if let Ok(text) = tokio::fs::read_to_string("/proc/net/dev").await {
            (r.net_rx, r.net_tx) = net_dev(&text);
        }
        if let Ok(text) = tokio::fs::read_to_string("/proc/self/mounts").await {
            let candidates = mount_points(&text);
            r.mounts = tokio::task::spawn_blocking(move || stat_mounts(candidates))
                .await
                .unwrap_or_default();
        }
        r
    }
}

impl Default for HostReader {
    fn default() -> Self {
        HostReader::new()
    }
}

/// Received and sent bytes over the host's own interfaces.
fn net_dev(text: &str) -> (u64, u64) {
    let (mut rx, mut tx) = (0u64, 0u64);
    for line in text.lines().skip(2) {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let name = name.trim();
        if name == "lo"
            || name.starts_with("veth")
            || name.starts_with("docker")
            || name.starts_with("br-")
        {
            continue;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if f.len() >= 9 {
            rx = rx.saturating_add(f[0]);
            tx = tx.saturating_add(f[8]);
        }
    }
    (rx, tx)
}

/// Mount points of block-device filesystems (and an overlay root, when
/// Opsdeck runs in a container), shortest first.
fn mount_points(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .lines()
        .filter_map(|l| {
            let mut f = l.split_whitespace();
            let (spec, file, vfs) = (f.next()?, f.next()?, f.next()?);
            let file = unescape(file);
            let real = spec.starts_with("/dev/")
                || matches!(vfs, "zfs" | "btrfs" | "nfs" | "nfs4" | "cifs")
                || (vfs == "overlay" && file == "/");
            (real && !file.starts_with("/proc") && !file.starts_with("/sys")).then_some(file)
        })
        .collect();
    out.sort_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    out.dedup();
    out
}

/// `/proc/self/mounts` escapes space, tab, newline and backslash as octal.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let code: String = chars.by_ref().take(3).collect();
            match u8::from_str_radix(&code, 8) {
                Ok(b) => out.push(b as char),
                Err(_) => {
                    out.push('\\');
                    out.push_str(&code);
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `statvfs` of each candidate; one mount per filesystem (the shortest
/// path), directories only (Docker bind-mounts files like /etc/hosts).
fn stat_mounts(candidates: Vec<String>) -> Vec<MountReading> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for m in candidates {
        if out.len() >= MAX_MOUNTS {
            break;
        }
        if !std::path::Path::new(&m).is_dir() {
            continue;
        }
        let Ok(st) = nix::sys::statvfs::statvfs(m.as_str()) else {
            continue;
        };
        #[allow(clippy::unnecessary_cast)] // the field types differ across platforms
        let (blocks, free, avail, frsize) = (
            st.blocks() as u64,
            st.blocks_free() as u64,
            st.blocks_available() as u64,
            st.fragment_size() as u64,
        );
        if blocks == 0 || !seen.insert((st.filesystem_id(), blocks)) {
            continue;
        }
        let used = blocks.saturating_sub(free).saturating_mul(frsize);
        out.push(MountReading {
            mount: m,
            used,
            total: used.saturating_add(avail.saturating_mul(frsize)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net_dev_skips_loopback_and_docker_interfaces() {
        let text = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes\n\
            lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n\
            eth0: 5000 10 0 0 0 0 0 0 7000 12 0 0 0 0 0 0\n\
            docker0: 900 1 0 0 0 0 0 0 900 1 0 0 0 0 0 0\n\
            veth12ab: 900 1 0 0 0 0 0 0 900 1 0 0 0 0 0 0\n\
            ens3: 1 1 0 0 0 0 0 0 2 1 0 0 0 0 0 0\n";
        assert_eq!(net_dev(text), (5001, 7002));
    }

    #[test]
    fn mounts_are_block_devices_shortest_first() {
        let text = "proc /proc proc rw 0 0\n\
            /dev/vda1 /var/lib/docker ext4 rw 0 0\n\
            /dev/vda1 / ext4 rw 0 0\n\
            tmpfs /run tmpfs rw 0 0\n\
            overlay /var/lib/docker/overlay2/x/merged overlay rw 0 0\n\
            /dev/sdb1 /mnt/my\\040data xfs rw 0 0\n";
        assert_eq!(
            mount_points(text),
            vec!["/", "/mnt/my data", "/var/lib/docker"]
        );
    }

    #[tokio::test]
    async fn reads_the_host() {
        let mut r = HostReader::new();
        let first = r.read().await;
        assert_eq!(first.cpu, None, "CPU needs two readings");
        assert!(first.mem_total > 0 && first.mem_used <= first.mem_total);
        tokio::time::sleep(sysinfo::MINIMUM_CPU_UPDATE_INTERVAL).await;
        let second = r.read().await;
        let cpu = second.cpu.expect("second reading has CPU");
        assert!((0.0..=100.0 * second.cores as f64).contains(&cpu), "{cpu}");
        for m in &second.mounts {
            assert!(m.used <= m.total && m.mount.starts_with('/'), "{m:?}");
        }
    }
}
