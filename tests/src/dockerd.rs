//! A private Docker Engine for the tests, one per test process.
//!
//! `dockerd` runs with no bridge network and no iptables changes, on its own
//! socket, data root and exec root in a temporary directory, so it touches
//! nothing else on the machine. It is started on a dedicated thread that
//! lives as long as the test process and gets SIGTERM when the process exits
//! (`PR_SET_PDEATHSIG` fires when the spawning thread exits). Test images are
//! built `FROM scratch` with the static busybox (no registry is reachable).

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::require;

pub struct PrivateDockerd {
    dir: PathBuf,
    host: String,
}

static ENGINE: OnceLock<Result<PrivateDockerd, String>> = OnceLock::new();

const BUSYBOX: &str = "/bin/busybox";

impl PrivateDockerd {
    /// The engine shared by this test process, started on first use.
    /// `Err(Skipped)` only outside CI when a part is missing (in CI that panics).
    pub fn shared() -> Result<&'static PrivateDockerd, require::Skipped> {
        require::part(
            require::have("dockerd") && require::have("docker") && Path::new(BUSYBOX).is_file(),
            "Docker Engine (dockerd, docker CLI) and the static busybox",
            "apt-get install docker.io busybox-static",
        )?;
        match ENGINE.get_or_init(start) {
            Ok(e) => Ok(e),
            Err(e) => panic!("cannot start the private dockerd: {e}"),
        }
    }

    /// `unix:///…/docker.sock`
    pub fn host(&self) -> &str {
        &self.host
    }

    fn cli(&self) -> Command {
        let mut c = Command::new("docker");
        c.arg("-H").arg(&self.host).stdin(Stdio::null());
        c
    }

    /// Builds `tag` from scratch with busybox installed (`sh`, `httpd`, `nc`,
    /// `sleep`, …); a no-op when the image exists.
    pub fn build_busybox_image(&self, tag: &str) -> anyhow::Result<()> {
        if self
            .cli()
            .args(["image", "inspect", tag])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success()
        {
            return Ok(());
        }
        let ctx = tempfile::tempdir_in(&self.dir)?;
        std::fs::copy(BUSYBOX, ctx.path().join("busybox")).context("copying busybox")?;
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )?;
        let out = self
            .cli()
            .args(["build", "-q", "-t", tag])
            .arg(ctx.path())
            .output()?;
        if !out.status.success() {
            bail!(
                "docker build {tag} failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

fn start() -> Result<PrivateDockerd, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("test-dockerd".into())
        .spawn(move || {
            let result = spawn_engine();
            let ok = result.is_ok();
            let _ = tx.send(result.map_err(|e| format!("{e:#}")));
            if ok {
                // Keep this thread (the dockerd's PDEATHSIG parent) alive.
                loop {
                    std::thread::park();
                }
            }
        })
        .map_err(|e| e.to_string())?;
    rx.recv()
        .map_err(|_| "the dockerd thread died".to_string())?
}

fn spawn_engine() -> anyhow::Result<PrivateDockerd> {
    // Short path: Unix socket paths are limited to 108 bytes.
    let dir = PathBuf::from(format!("/tmp/odk-dockerd-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let sock = dir.join("docker.sock");
    let host = format!("unix://{}", sock.display());
    let log = std::fs::File::create(dir.join("dockerd.log"))?;
    let mut cmd = Command::new("dockerd");
    cmd.args([
        "--bridge=none",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
    ])
    .arg("-H")
    .arg(&host)
    .arg("--data-root")
    .arg(dir.join("data"))
    .arg("--exec-root")
    .arg(dir.join("exec"))
    .arg("--pidfile")
    .arg(dir.join("docker.pid"))
    .stdin(Stdio::null())
    .stdout(log.try_clone()?)
    .stderr(log);
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
                .map_err(std::io::Error::from)?;
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting dockerd")?;
    let engine = PrivateDockerd {
        dir: dir.clone(),
        host,
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let ok = engine
            .cli()
            .args(["version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()?
            .success();
        if ok {
            return Ok(engine);
        }
        if let Some(status) = child.try_wait()? {
            bail!(
                "dockerd exited ({status}): {}",
                tail(&dir.join("dockerd.log"))
            );
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            bail!(
                "dockerd not ready in 60 s: {}",
                tail(&dir.join("dockerd.log"))
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(10)..].join("\n")
}
