//! A real image registry on loopback (Debian's `docker-registry`,
//! Distribution v2) for the image-update tests, and the versioned test
//! images they push to it.
//!
//! [`Registry::start`] runs `docker-registry serve` with a configuration of
//! its own (filesystem storage in `/tmp/odk-registry-<pid>-<n>`, deletes
//! enabled, `127.0.0.1:<free port>`), stopped and removed when the handle
//! is dropped. Engines treat `127.0.0.0/8` registries as insecure (plain
//! HTTP) by default, so the private `dockerd` pushes and pulls without TLS.
//!
//! [`Registry::push_app`] builds one version of the test web app `FROM
//! scratch` with the static busybox and pushes it as `<registry>/<repo>:<tag>`:
//! `busybox httpd` on `127.0.0.1:$PORT` (default 8080) serving
//! `/version.txt` (the version) and `/health` (`ok`), with a Docker
//! `HEALTHCHECK` on `/health`. A broken version ([`AppImage::broken`]) has
//! no `/health` page, so both its HTTP check and its container health fail.
//!
//! # Lifetime
//!
//! The server is spawned on a dedicated thread that lives as long as it,
//! with `PR_SET_PDEATHSIG` = SIGTERM, so it stops when the test process
//! exits, however it exits.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::Signal;

use crate::dockerd::PrivateDockerd;
use crate::proc::{self, Session};
use crate::require;

const DIR_PREFIX: &str = "odk-registry-";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: u32 = 3;
const BUSYBOX: &str = "/bin/busybox";

static NEXT: AtomicU32 = AtomicU32::new(1);

/// A running `docker-registry`; see the module docs for its lifetime.
pub struct Registry {
    port: u16,
    dir: PathBuf,
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// One version of the test web app (see the module docs).
#[derive(Debug, Clone)]
pub struct AppImage<'a> {
    /// Repository inside the registry, e.g. `app`.
    pub repo: &'a str,
    /// Tag, e.g. `v1` or `7.2.4`.
    pub tag: &'a str,
    /// What `/version.txt` answers (and the image's `version` label).
    pub version: &'a str,
    /// No `/health` page: its health check and HTTP check fail.
    pub broken: bool,
}

fn require_registry() -> Result<(), require::Skipped> {
    require::part(
        require::have("docker-registry"),
        "docker-registry (Distribution v2)",
        "apt-get install docker-registry, or scripts/install-test-deps.sh",
    )
}

impl Registry {
    /// A registry of the caller's own, stopped when dropped (blocking,
    /// about a second). `Err(Skipped)` when `docker-registry` is missing,
    /// outside CI only (under `CI=true` that panics). Panics when it does
    /// not come up, with the end of its log.
    pub fn start() -> Result<Registry, require::Skipped> {
        require_registry()?;
        match Registry::spawn() {
            Ok(r) => Ok(r),
            Err(e) => panic!("cannot start a test registry: {e:#}"),
        }
    }

    /// `127.0.0.1:<port>`, the prefix of every image reference in it.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The registry's directory (`registry.log`, `config.yml`, storage).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `<host>/<repo>:<tag>`.
    pub fn reference(&self, repo: &str, tag: &str) -> String {
        format!("{}/{repo}:{tag}", self.host())
    }

    /// Builds `image` on `engine` and pushes it; returns its reference and
    /// the manifest digest the registry stored (`sha256:…`). The local tag
    /// stays on the engine (remove it with `docker rmi` to force a pull).
    pub fn push_app(
        &self,
        engine: &PrivateDockerd,
        image: &AppImage<'_>,
    ) -> anyhow::Result<(String, String)> {
        let reference = self.reference(image.repo, image.tag);
        let ctx = tempfile::Builder::new()
            .prefix("app-build-")
            .tempdir_in(&self.dir)
            .context("creating the build context")?;
        std::fs::copy(BUSYBOX, ctx.path().join("busybox")).context("copying busybox")?;
        std::fs::create_dir_all(ctx.path().join("www"))?;
        std::fs::write(ctx.path().join("www/version.txt"), image.version)?;
        if !image.broken {
            std::fs::write(ctx.path().join("www/health"), "ok\n")?;
        }
        std::fs::write(
            ctx.path().join("Dockerfile"),
            format!(
                "FROM scratch\n\
                 COPY busybox /bin/busybox\n\
                 RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n\
                 COPY www /www\n\
                 ENV PORT=8080\n\
                 LABEL version=\"{v}\"\n\
                 HEALTHCHECK --interval=1s --timeout=2s --retries=2 CMD wget -q -O /dev/null http://127.0.0.1:$PORT/health || exit 1\n\
                 CMD [\"sh\", \"-c\", \"exec httpd -f -p 127.0.0.1:$PORT -h /www\"]\n",
                v = image.version
            ),
        )?;
        let out = engine
            .cli()
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--quiet", "--network=none", "--tag", &reference])
            .arg(ctx.path())
            .output()
            .context("running docker build")?;
        if !out.status.success() {
            bail!(
                "docker build {reference} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let out = engine
            .cli()
            .args(["push", &reference])
            .output()
            .context("running docker push")?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            bail!(
                "docker push {reference} failed ({}): {stdout}{}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // "<tag>: digest: sha256:… size: N"
        let digest = stdout
            .split_whitespace()
            .skip_while(|w| *w != "digest:")
            .nth(1)
            .with_context(|| format!("no digest in docker push's output: {stdout}"))?
            .to_owned();
        Ok((reference, digest))
    }

    fn spawn() -> anyhow::Result<Registry> {
        remove_stale_dirs();
        let dir = PathBuf::from(format!(
            "/tmp/{DIR_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let log = dir.join("registry.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(dir.join("storage"))
                .with_context(|| format!("creating {}", dir.display()))?;
            let port = proc::try_free_port().context("picking a free loopback port")?;
            let config = dir.join("config.yml");
            std::fs::write(
                &config,
                format!(
                    "version: 0.1\n\
                     log:\n  level: info\n\
                     storage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\n\
                     http:\n  addr: 127.0.0.1:{port}\n",
                    dir.join("storage").display()
                ),
            )?;
            let mut cmd = Command::new("docker-registry");
            cmd.arg("serve")
                .arg(&config)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log)?);
            let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<u32>>();
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            let thread = std::thread::Builder::new()
                .name("test-registry".into())
                .spawn(move || server_thread(cmd, ready_tx, stop_rx))
                .context("spawning the registry thread")?;
            let pid = match ready_rx.recv() {
                Ok(Ok(pid)) => pid,
                Ok(Err(e)) => {
                    let _ = thread.join();
                    return Err(e).context("starting docker-registry");
                }
                Err(_) => {
                    let _ = thread.join();
                    bail!("the registry thread died");
                }
            };
            let registry = Registry {
                port,
                dir: dir.clone(),
                stop: Mutex::new(Some(stop_tx)),
                thread: Mutex::new(Some(thread)),
            };
            match wait_ready(port, pid, &log) {
                Ok(()) => return Ok(registry),
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        drop(self.stop.lock().ok().and_then(|mut s| s.take()));
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn server_thread(
    mut cmd: Command,
    ready: mpsc::Sender<std::io::Result<u32>>,
    stop: mpsc::Receiver<()>,
) {
    proc::die_with_parent(&mut cmd, Signal::SIGTERM, Session::Own);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let _ = ready.send(Ok(child.id()));
    let _ = stop.recv();
    proc::stop_child(&mut child, STOP_TIMEOUT, Duration::from_millis(20));
}

/// Polls until `GET /v2/` answers 200.
fn wait_ready(port: u16, pid: u32, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let answered = proc::http_ok(port, "/v2/");
        if answered {
            return Ok(());
        }
        let tail = || std::fs::read_to_string(log).unwrap_or_default();
        if proc::has_exited(pid) {
            bail!("docker-registry exited; its log:\n{}", tail());
        }
        if Instant::now() > deadline {
            bail!(
                "docker-registry did not answer within {} s; its log:\n{}",
                READY_TIMEOUT.as_secs(),
                tail()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Directories of test processes that no longer run.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(DIR_PREFIX) else {
            continue;
        };
        let pid: Option<u32> = rest.split('-').next().and_then(|p| p.parse().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}
