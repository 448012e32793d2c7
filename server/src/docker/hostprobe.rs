//! An engine's host read without an agent: a short-lived helper container
//! on that engine runs busybox applets (argv arrays, never a shell) that
//! print the kernel's figures, and is removed after each reading. Used by
//! host checks that name an engine (`checks::probe::host_engine` parses
//! the texts).
//!
//! ## What the helper sees, and why that is safe
//! * `/proc/stat` (twice, [`CPU_GAP`] apart, for CPU), `/proc/meminfo`,
//!   `/proc/loadavg` and `/proc/uptime` are **the container's own** `/proc`:
//!   these four files are not namespaced by the kernel, so they show the
//!   whole host. The host's `/proc` is never mounted. (An engine whose
//!   containers get a virtualised `/proc`, e.g. with LXCFS, shows that
//!   view instead.) The number of CPUs is the `cpuN` lines of `/proc/stat`
//!   (the online CPUs), not `nproc`, which would count the helper's own
//!   CPU set.
//! * For disk and inodes, only the mount point the check names (`P`) is
//!   bind-mounted, read-only and non-recursively (no sub-mounts), at
//!   `/host<P>`; `stat -f` reads the filesystem's counts (`statfs`), as
//!   `df` does. Nothing else of the host is visible.
//! * The container has no network (`network_mode: none`), a read-only
//!   root, every capability dropped, `no-new-privileges`, runs as
//!   `65534:65534` (nobody), with [`MEMORY_BYTES`] of memory (no swap) and
//!   [`PIDS`] processes at most. Its main process is `sleep`
//!   ([`LIFETIME_S`]): a helper Opsdeck could not remove (a crash) ends by
//!   itself and is removed by a later probe on that engine once older than
//!   [`STALE_AFTER_S`]. Helpers carry the label [`LABEL`].
//! * The helper is removed (forced) after every reading, also when a
//!   reading fails; when the probe is abandoned midway (its timeout), the
//!   drop of [`Helper`] removes it in the background.
//!
//! ## The helper image, decided in this order
//! 1. [`IMAGE`] (`opsdeck/host-probe:1`) already on the engine: used as is
//!    (an air-gapped site can build or load it itself).
//! 2. Else it is **built once on the engine** through the build API from a
//!    two-file context: a `Dockerfile` (`FROM scratch`, `COPY busybox
//!    /bin/busybox`) and the Opsdeck host's `/bin/busybox`, when that is a
//!    static ELF for the engine's architecture (checked here: no `PT_INTERP`
//!    program header, matching `e_machine`). No registry is reached.
//! 3. Else the engine pulls [`PULLED_IMAGE`] (`busybox:1.36-musl`, whose
//!    `/bin/busybox` has the same applets).
//!
//! The choice runs in a detached task under a per-engine async mutex, so
//! two probes never build at once and a probe's timeout never cancels a
//! build halfway; the image chosen is remembered per engine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountBindOptions, MountTypeEnum};
use bollard::query_parameters::{BuildImageOptions, CreateContainerOptions, StartContainerOptions};
use bollard::Docker;
use futures::StreamExt;

use super::ops::{engine_error, exec};
use super::volumes::{image_present, remove_container, remove_in_background};
use super::{list, Client, REQUEST_TIMEOUT};

/// The helper image Opsdeck builds (or finds) on an engine.
pub const IMAGE: &str = "opsdeck/host-probe:1";
/// The image pulled when [`IMAGE`] can be neither found nor built.
pub const PULLED_IMAGE: &str = "busybox:1.36-musl";
/// Label on every helper container.
pub const LABEL: &str = "opsdeck.host-probe";
/// Where a host path `P` is mounted in the helper: `/host<P>`.
pub const HOST_MOUNT: &str = "/host";
/// The Opsdeck host's static busybox, copied into a built image.
pub const LOCAL_BUSYBOX: &str = "/bin/busybox";
/// Busybox inside the helper (both images have it here).
const BUSYBOX: &str = "/bin/busybox";
/// Pause between the two CPU samples.
pub const CPU_GAP: Duration = Duration::from_secs(1);
/// How long the helper's `sleep` lasts (longer than any check timeout).
pub const LIFETIME_S: u32 = 150;
/// Helpers older than this are left-overs (removed by the next probe).
pub const STALE_AFTER_S: i64 = 300;
/// Memory limit of the helper (no swap on top).
pub const MEMORY_BYTES: i64 = 32 * 1024 * 1024;
/// Process limit of the helper.
pub const PIDS: i64 = 16;
/// Largest busybox copied into a build context.
const MAX_BUSYBOX_BYTES: u64 = 16 * 1024 * 1024;
/// How long one applet may run.
const EXEC_TIMEOUT: Duration = Duration::from_secs(5);
/// How long building the image may take.
const BUILD_TIMEOUT: Duration = Duration::from_secs(120);

/// What one reading needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// `/proc/stat` twice, [`CPU_GAP`] apart.
    Cpu,
    /// `/proc/meminfo`.
    Memory,
    /// `/proc/loadavg` and `/proc/stat` (the number of CPUs).
    Load,
    /// `stat -f` of this absolute host path (bound at `/host<path>`).
    Fs(String),
}

/// The texts the applets printed (`/proc/uptime` always).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Texts {
    pub uptime: String,
    /// `/proc/stat` (the first sample, for CPU).
    pub stat: Option<String>,
    /// `/proc/stat`, [`CPU_GAP`] after the first (CPU only).
    pub stat_after: Option<String>,
    pub meminfo: Option<String>,
    pub loadavg: Option<String>,
    /// `stat -f -c '%b %f %a %c %d %S'` of the mount point.
    pub statfs: Option<String>,
    /// The helper image used.
    pub image: String,
}

/// The helper images chosen per engine, and the gate that builds them one
/// at a time. One per process (the health engine holds it).
#[derive(Default)]
pub struct HostProbe {
    /// Engine id → the image chosen last (under its build gate).
    gates: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<Option<String>>>>>,
}

impl HostProbe {
    pub fn new() -> HostProbe {
        HostProbe::default()
    }

    /// Reads `what` of the host of engine `engine_id` through a helper
    /// container that is removed before this returns (or, if this future
    /// is dropped, in the background).
    pub async fn read(
        &self,
        engine_id: i64,
        client: &Client,
        what: &Read,
    ) -> anyhow::Result<Texts> {
        let image = self.image(engine_id, client).await?;
        sweep_stale(client).await;
        let mounts = match what {
            Read::Fs(path) => vec![bind(path)?],
            _ => Vec::new(),
        };
        let helper = Helper::create(client, &image, mounts).await?;
        let result = helper.run(client, what).await;
        let removed = helper.remove().await;
        let mut texts = result?;
        if let Err(e) = removed {
            // The reading stands; the sweep of a later probe removes it.
            tracing::warn!(error = %format!("{e:#}"), "removing a host-probe helper");
        }
        texts.image = image;
        Ok(texts)
    }

    fn gate(&self, engine_id: i64) -> Arc<tokio::sync::Mutex<Option<String>>> {
        let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
        gates.entry(engine_id).or_default().clone()
    }

    /// The helper image on this engine: found, built or pulled (see the
    /// module docs).
    async fn image(&self, engine_id: i64, client: &Client) -> anyhow::Result<String> {
        if image_present(client, IMAGE).await? {
            return Ok(IMAGE.to_owned());
        }
        let gate = self.gate(engine_id);
        let client = client.clone();
        // Detached: a probe that times out leaves the build to finish.
        tokio::spawn(async move {
            let mut chosen = gate.lock().await;
            if let Some(image) = chosen.as_deref() {
                if image_present(&client, image).await? {
                    return anyhow::Ok(image.to_owned());
                }
            }
            let image = prepare(&client).await?;
            *chosen = Some(image.clone());
            anyhow::Ok(image)
        })
        .await
        .context("preparing the helper image")?
    }
}

/// Builds [`IMAGE`], or pulls [`PULLED_IMAGE`] when that is not possible.
async fn prepare(client: &Client) -> anyhow::Result<String> {
    if image_present(client, IMAGE).await? {
        return Ok(IMAGE.to_owned());
    }
    let built = match build(client).await {
        Ok(()) => return Ok(IMAGE.to_owned()),
        Err(e) => format!("{e:#}"),
    };
    tracing::info!(reason = %built, image = PULLED_IMAGE, "host probe: pulling the helper image");
    super::images::pull(client, PULLED_IMAGE, |_| {})
        .await
        .map_err(|e| {
            anyhow::anyhow!(
                "no helper image: building {IMAGE} failed ({built}) and pulling {PULLED_IMAGE} failed ({e:#})"
            )
        })?;
    Ok(PULLED_IMAGE.to_owned())
}

/// Builds [`IMAGE`] on the engine from the Opsdeck host's static busybox.
async fn build(client: &Client) -> anyhow::Result<()> {
    let docker = &client.inner;
    let version = tokio::time::timeout(REQUEST_TIMEOUT, docker.version())
        .await
        .map_err(|_| anyhow::anyhow!("asking the engine's version: no answer in time"))?
        .map_err(engine_error)?;
    let (os, arch) = (
        version.os.unwrap_or_default(),
        version.arch.unwrap_or_default(),
    );
    anyhow::ensure!(os == "linux", "the engine runs {os}, not linux");
    let want = elf_machine(&arch)
        .ok_or_else(|| anyhow::anyhow!("no known ELF machine for architecture {arch}"))?;
    let busybox = tokio::task::spawn_blocking(read_busybox)
        .await
        .context("reading busybox")??;
    let machine =
        static_elf_machine(&busybox).map_err(|e| anyhow::anyhow!("{LOCAL_BUSYBOX}: {e}"))?;
    anyhow::ensure!(
        machine == want,
        "{LOCAL_BUSYBOX} is for ELF machine {machine}, the engine is {arch} ({want})"
    );
    let context = build_context(&busybox)?;
    let options = BuildImageOptions {
        t: Some(IMAGE.to_owned()),
        q: true,
        rm: true,
        forcerm: true,
        networkmode: Some("none".to_owned()),
        ..Default::default()
    };
    let docker = docker.clone().with_timeout(BUILD_TIMEOUT);
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context.into())));
    let run = async {
        while let Some(item) = stream.next().await {
            let info = item.map_err(engine_error)?;
            if let Some(e) = info.error_detail.and_then(|d| d.message).or(info.error) {
                anyhow::bail!("{e}");
            }
        }
        anyhow::Ok(())
    };
    tokio::time::timeout(BUILD_TIMEOUT, run)
        .await
        .map_err(|_| anyhow::anyhow!("no end of the build within {BUILD_TIMEOUT:?}"))?
        .with_context(|| format!("building {IMAGE}"))?;
    anyhow::ensure!(
        image_present(client, IMAGE).await?,
        "the build of {IMAGE} ended without the image"
    );
    tracing::info!(
        image = IMAGE,
        "host probe: built the helper image on an engine"
    );
    Ok(())
}

fn read_busybox() -> anyhow::Result<Vec<u8>> {
    let meta = std::fs::metadata(LOCAL_BUSYBOX)
        .with_context(|| format!("{LOCAL_BUSYBOX} on the Opsdeck host"))?;
    anyhow::ensure!(
        meta.is_file() && meta.len() <= MAX_BUSYBOX_BYTES,
        "{LOCAL_BUSYBOX} is not a file of at most 16 MiB"
    );
    std::fs::read(LOCAL_BUSYBOX).with_context(|| format!("reading {LOCAL_BUSYBOX}"))
}

/// The build context: `Dockerfile` and `busybox` (mode 0755).
pub fn build_context(busybox: &[u8]) -> anyhow::Result<Vec<u8>> {
    let dockerfile = b"FROM scratch\nCOPY busybox /bin/busybox\n";
    let mut b = tar::Builder::new(Vec::new());
    for (name, data, mode) in [
        ("Dockerfile", &dockerfile[..], 0o644),
        ("busybox", busybox, 0o755),
    ] {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, name, data)?;
    }
    Ok(b.into_inner()?)
}

/// The ELF machine (`e_machine`) of Docker's architecture names (Go's).
pub fn elf_machine(arch: &str) -> Option<u16> {
    Some(match arch {
        "amd64" | "x86_64" => 62,
        "arm64" | "aarch64" => 183,
        "arm" => 40,
        "386" => 3,
        "ppc64le" => 21,
        "s390x" => 22,
        "riscv64" => 243,
        _ => return None,
    })
}

/// The `e_machine` of a statically linked ELF executable: an ELF file with
/// no `PT_INTERP` program header (no dynamic loader needed). Anything else
/// is an error saying what it is.
pub fn static_elf_machine(bytes: &[u8]) -> Result<u16, String> {
    if bytes.len() < 64 || &bytes[..4] != b"\x7fELF" {
        return Err("not an ELF file".into());
    }
    let wide = match bytes[4] {
        1 => false,
        2 => true,
        _ => return Err("unknown ELF class".into()),
    };
    let little = match bytes[5] {
        1 => true,
        2 => false,
        _ => return Err("unknown ELF byte order".into()),
    };
    let u16_at = |o: usize| -> Option<u64> {
        let b: [u8; 2] = bytes.get(o..o + 2)?.try_into().ok()?;
        Some(if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        } as u64)
    };
    let u32_at = |o: usize| -> Option<u64> {
        let b: [u8; 4] = bytes.get(o..o + 4)?.try_into().ok()?;
        Some(if little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        } as u64)
    };
    let u64_at = |o: usize| -> Option<u64> {
        let b: [u8; 8] = bytes.get(o..o + 8)?.try_into().ok()?;
        Some(if little {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    };
    let bad = || "truncated ELF header".to_string();
    let e_type = u16_at(16).ok_or_else(bad)?;
    if !matches!(e_type, 2 | 3) {
        return Err("not an ELF executable".into());
    }
    let machine = u16_at(18).ok_or_else(bad)? as u16;
    let (phoff, phentsize, phnum) = if wide {
        (u64_at(32), u16_at(54), u16_at(56))
    } else {
        (u32_at(28), u16_at(42), u16_at(44))
    };
    let (phoff, phentsize, phnum) = (
        phoff.ok_or_else(bad)?,
        phentsize.ok_or_else(bad)?,
        phnum.ok_or_else(bad)?,
    );
    if phnum == 0 {
        return Err("an ELF file without program headers".into());
    }
    for i in 0..phnum {
        let at = phoff
            .checked_add(i * phentsize)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or_else(bad)?;
        let p_type = u32_at(at).ok_or_else(|| "truncated program headers".to_string())?;
        if p_type == 3 {
            return Err("dynamically linked (it names a loader)".into());
        }
    }
    Ok(machine)
}

/// The read-only, non-recursive bind of host path `path` at `/host<path>`.
fn bind(path: &str) -> anyhow::Result<Mount> {
    anyhow::ensure!(
        path.starts_with('/') && !path.contains('\0'),
        "{path}: not an absolute path"
    );
    Ok(Mount {
        target: Some(inside(path)),
        source: Some(path.to_owned()),
        typ: Some(MountTypeEnum::BIND),
        read_only: Some(true),
        bind_options: Some(MountBindOptions {
            non_recursive: Some(true),
            ..Default::default()
        }),
        ..Default::default()
    })
}

/// Where host path `path` is in the helper.
pub fn inside(path: &str) -> String {
    if path == "/" {
        HOST_MOUNT.to_owned()
    } else {
        format!("{HOST_MOUNT}{path}")
    }
}

/// The argv of one applet.
fn argv(args: &[&str]) -> Vec<String> {
    std::iter::once(BUSYBOX)
        .chain(args.iter().copied())
        .map(str::to_owned)
        .collect()
}

/// Removes this engine's helpers older than [`STALE_AFTER_S`] (best effort).
async fn sweep_stale(client: &Client) {
    let Ok(listed) = list::containers(client, list::ListBy::Label(LABEL)).await else {
        return;
    };
    let cutoff = chrono::Utc::now().timestamp() - STALE_AFTER_S;
    for c in listed {
        if c.created.is_some_and(|t| t < cutoff) {
            if let Err(e) = remove_container(&client.inner, &c.id).await {
                tracing::warn!(container = %c.id, error = %format!("{e:#}"), "removing a stale host-probe helper");
            }
        }
    }
}

/// The helper's configuration (see the module docs).
fn helper_body(image: &str, mounts: Vec<Mount>) -> ContainerCreateBody {
    let lifetime = LIFETIME_S.to_string();
    ContainerCreateBody {
        image: Some(image.to_owned()),
        entrypoint: Some(argv(&["sleep", &lifetime])),
        cmd: Some(Vec::new()),
        user: Some("65534:65534".into()),
        network_disabled: Some(true),
        labels: Some(HashMap::from([(LABEL.to_owned(), "1".to_owned())])),
        host_config: Some(HostConfig {
            mounts: Some(mounts),
            network_mode: Some("none".into()),
            readonly_rootfs: Some(true),
            cap_drop: Some(vec!["ALL".into()]),
            security_opt: Some(vec!["no-new-privileges".into()]),
            memory: Some(MEMORY_BYTES),
            memory_swap: Some(MEMORY_BYTES),
            pids_limit: Some(PIDS),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A started helper container; removed by [`Helper::remove`] or, when
/// dropped without, in the background.
struct Helper {
    docker: Docker,
    id: String,
    removed: bool,
}

impl Helper {
    async fn create(client: &Client, image: &str, mounts: Vec<Mount>) -> anyhow::Result<Helper> {
        let docker = &client.inner;
        let body = helper_body(image, mounts);
        let created = tokio::time::timeout(
            REQUEST_TIMEOUT,
            docker.create_container(None::<CreateContainerOptions>, body),
        )
        .await
        .map_err(|_| anyhow::anyhow!("creating the host-probe helper: no answer in time"))?
        .map_err(|e| engine_error(e).context("creating the host-probe helper"))?;
        let helper = Helper {
            docker: docker.clone(),
            id: created.id,
            removed: false,
        };
        tokio::time::timeout(
            REQUEST_TIMEOUT,
            docker.start_container(&helper.id, None::<StartContainerOptions>),
        )
        .await
        .map_err(|_| anyhow::anyhow!("starting the host-probe helper: no answer in time"))?
        .map_err(|e| engine_error(e).context("starting the host-probe helper"))?;
        Ok(helper)
    }

    /// Runs the applets `what` needs, in order.
    async fn run(&self, client: &Client, what: &Read) -> anyhow::Result<Texts> {
        let mut t = Texts {
            uptime: self.output(client, &["cat", "/proc/uptime"]).await?,
            ..Default::default()
        };
        match what {
            Read::Cpu => {
                t.stat = Some(self.output(client, &["cat", "/proc/stat"]).await?);
                tokio::time::sleep(CPU_GAP).await;
                t.stat_after = Some(self.output(client, &["cat", "/proc/stat"]).await?);
            }
            Read::Memory => t.meminfo = Some(self.output(client, &["cat", "/proc/meminfo"]).await?),
            Read::Load => {
                t.loadavg = Some(self.output(client, &["cat", "/proc/loadavg"]).await?);
                t.stat = Some(self.output(client, &["cat", "/proc/stat"]).await?);
            }
            Read::Fs(path) => {
                let at = inside(path);
                t.statfs = Some(
                    self.output(client, &["stat", "-f", "-c", "%b %f %a %c %d %S", &at])
                        .await?,
                );
            }
        }
        Ok(t)
    }

    /// The standard output of one applet, which must exit 0.
    async fn output(&self, client: &Client, args: &[&str]) -> anyhow::Result<String> {
        let what = args.join(" ");
        let r = exec(client, &self.id, &argv(args), EXEC_TIMEOUT)
            .await
            .with_context(|| format!("running {what} in the helper"))?;
        if r.timed_out {
            anyhow::bail!("{what}: no answer within {EXEC_TIMEOUT:?}");
        }
        match r.exit_code {
            Some(0) => Ok(r.stdout),
            code => anyhow::bail!(
                "{what}: exit {}: {}",
                code.map_or_else(|| "unknown".to_owned(), |c| c.to_string()),
                r.stderr.trim()
            ),
        }
    }

    async fn remove(mut self) -> anyhow::Result<()> {
        self.removed = true;
        remove_container(&self.docker, &self.id).await
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if !self.removed {
            remove_in_background(&self.docker, &self.id, "a host-probe helper");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal 64-bit little-endian ELF header with `phdrs` program
    /// header types.
    fn elf64(machine: u16, phdrs: &[u32]) -> Vec<u8> {
        let mut b = vec![0u8; 64 + 56 * phdrs.len()];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        b[16..18].copy_from_slice(&2u16.to_le_bytes());
        b[18..20].copy_from_slice(&machine.to_le_bytes());
        b[32..40].copy_from_slice(&64u64.to_le_bytes());
        b[54..56].copy_from_slice(&56u16.to_le_bytes());
        b[56..58].copy_from_slice(&(phdrs.len() as u16).to_le_bytes());
        for (i, t) in phdrs.iter().enumerate() {
            let at = 64 + 56 * i;
            b[at..at + 4].copy_from_slice(&t.to_le_bytes());
        }
        b
    }

    #[test]
    fn static_elf_is_told_from_dynamic_and_other_files() {
        // PT_LOAD, PT_NOTE: static.
        assert_eq!(static_elf_machine(&elf64(62, &[1, 4])), Ok(62));
        // PT_PHDR, PT_INTERP, PT_LOAD: needs a loader.
        assert!(static_elf_machine(&elf64(62, &[6, 3, 1]))
            .unwrap_err()
            .contains("dynamically linked"));
        assert_eq!(
            static_elf_machine(b"#!/bin/sh\necho hi\n"),
            Err("not an ELF file".into())
        );
        let mut truncated = elf64(183, &[1, 1]);
        truncated.truncate(80);
        assert!(static_elf_machine(&truncated).is_err());
        let mut object = elf64(62, &[1]);
        object[16] = 1; // ET_REL
        assert!(static_elf_machine(&object).is_err());
    }

    #[test]
    fn the_hosts_busybox_when_installed_is_static() {
        // Debian's busybox-static, as the tests install it.
        let Ok(bytes) = std::fs::read(LOCAL_BUSYBOX) else {
            return;
        };
        let machine = static_elf_machine(&bytes).expect("a static busybox");
        if cfg!(target_arch = "x86_64") {
            assert_eq!(Some(machine), elf_machine("amd64"));
        }
        // A dynamically linked program of the same machine is refused.
        if let Ok(ls) = std::fs::read("/bin/ls") {
            assert!(static_elf_machine(&ls).is_err());
        }
    }

    #[test]
    fn the_build_context_holds_the_dockerfile_and_an_executable_busybox() {
        let tar_bytes = build_context(b"\x7fELF...").unwrap();
        let mut archive = tar::Archive::new(&tar_bytes[..]);
        let mut seen = Vec::new();
        for e in archive.entries().unwrap() {
            let mut e = e.unwrap();
            let name = e.path().unwrap().display().to_string();
            let mode = e.header().mode().unwrap();
            let mut text = String::new();
            std::io::Read::read_to_string(&mut e, &mut text).ok();
            seen.push((name, mode, text));
        }
        assert_eq!(seen[0].0, "Dockerfile");
        assert_eq!(seen[0].2, "FROM scratch\nCOPY busybox /bin/busybox\n");
        assert_eq!((seen[1].0.as_str(), seen[1].1), ("busybox", 0o755));
    }

    #[test]
    fn host_paths_are_mounted_under_host_read_only() {
        assert_eq!(inside("/"), "/host");
        assert_eq!(inside("/var/lib/docker"), "/host/var/lib/docker");
        let m = bind("/srv").unwrap();
        assert_eq!(m.target.as_deref(), Some("/host/srv"));
        assert_eq!(m.read_only, Some(true));
        assert_eq!(m.bind_options.as_ref().unwrap().non_recursive, Some(true));
        assert!(bind("srv").is_err());
        let body = helper_body(IMAGE, vec![m]);
        assert_eq!(
            body.entrypoint.as_deref(),
            Some(&["/bin/busybox".to_owned(), "sleep".into(), "150".into()][..])
        );
        assert_eq!(body.user.as_deref(), Some("65534:65534"));
        let hc = body.host_config.unwrap();
        assert_eq!(hc.network_mode.as_deref(), Some("none"));
        assert_eq!(hc.readonly_rootfs, Some(true));
        assert_eq!(hc.cap_drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(hc.security_opt, Some(vec!["no-new-privileges".to_owned()]));
        assert_eq!((hc.memory, hc.pids_limit), (Some(MEMORY_BYTES), Some(PIDS)));
        // Only the one mount point: never the host's /proc.
        assert_eq!(hc.mounts.as_ref().map(Vec::len), Some(1));
        assert_eq!(
            argv(&["cat", "/proc/stat"]),
            vec!["/bin/busybox", "cat", "/proc/stat"]
        );
    }
}
