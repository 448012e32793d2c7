//! A private Docker Engine for the tests.
//!
//! `dockerd` runs with no bridge network and no iptables or forwarding
//! changes, on its own socket, data root and exec root in a short temporary
//! directory (`/tmp/odk-dockerd-<pid>-<n>`: Unix socket paths are limited to
//! 108 bytes), so it touches nothing else on the machine and several test
//! processes can each run one. Test images are built `FROM scratch` with
//! Debian's static busybox, since no registry is reachable.
//!
//! # Sharing and lifetime
//!
//! [`PrivateDockerd::start`] hands out a handle to one engine shared by every
//! test of the process that holds a handle at the same time (starting an
//! engine takes a few seconds); the engine stops when the last handle is
//! dropped, also when a test panics: its containers are force-removed,
//! `dockerd` gets SIGTERM (SIGKILL after 20 s, with its `containerd` and
//! shims), the mounts it leaves under its directory are detached and the
//! directory is removed. A test that starts after that gets a fresh engine.
//!
//! [`PrivateDockerd::dedicated`] starts an engine of the caller's own,
//! never shared, which a fault test may [`crash`](PrivateDockerd::crash)
//! (SIGKILL to `dockerd` alone, as an engine crash leaves `containerd` and
//! the shims behind) and [`revive`](PrivateDockerd::revive) on the same
//! socket, data root and exec root.
//!
//! `dockerd` is spawned on a dedicated thread that lives as long as the
//! engine, because `PR_SET_PDEATHSIG` fires when the *spawning thread* exits:
//! if the test process dies without unwinding, `dockerd` still gets SIGTERM
//! and shuts down. Such a death cannot remove the directory; the next
//! [`PrivateDockerd::start`] removes directories left by test processes that
//! no longer exist.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::proc::{self, Session};
use crate::require;

const BUSYBOX: &str = "/bin/busybox";
const DIR_PREFIX: &str = "odk-dockerd-";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(20);

/// A handle to the private engine; see the module docs for its lifetime.
#[derive(Clone)]
pub struct PrivateDockerd {
    engine: Arc<Engine>,
}

struct Engine {
    dir: PathBuf,
    host: String,
    tls: TlsEndpoint,
    /// Whether this engine belongs to one caller ([`PrivateDockerd::dedicated`]).
    dedicated: bool,
    /// Serialises image builds (two tests building the same tag).
    build: Mutex<()>,
    /// Requests to the engine thread; dropping the sender tells it to stop
    /// `dockerd`.
    control: Mutex<Option<mpsc::Sender<Control>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the engine thread is asked to do, with where to answer.
enum Control {
    /// SIGKILL `dockerd` alone and reap it.
    Crash(mpsc::Sender<anyhow::Result<()>>),
    /// Start `dockerd` again on the same directory and wait until it answers.
    Revive(mpsc::Sender<anyhow::Result<()>>),
}

/// A TLS listener of the private engine and a client certificate for it,
/// all PEM files made for this engine by `openssl` (a test CA, a server
/// certificate for IP 127.0.0.1, a client certificate).
#[derive(Debug, Clone)]
pub struct TlsEndpoint {
    /// `tcp://127.0.0.1:<port>`
    pub url: String,
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// The engine currently shared by this process, if any handle is alive.
static SHARED: Mutex<Weak<Engine>> = Mutex::new(Weak::new());
static NEXT: AtomicU32 = AtomicU32::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl PrivateDockerd {
    /// A handle to this process's private engine, started if none runs
    /// (blocking, up to 60 s: call it from a multi-thread runtime or a plain
    /// thread).
    ///
    /// `Err(Skipped)` when `dockerd`, the `docker` CLI, the static busybox or
    /// root privileges are missing, outside CI only (under `CI=true` that
    /// panics). Panics when the engine does not come up, with the end of its
    /// log.
    pub fn start() -> Result<PrivateDockerd, require::Skipped> {
        require_parts()?;
        let mut shared = lock(&SHARED);
        if let Some(engine) = shared.upgrade() {
            return Ok(PrivateDockerd { engine });
        }
        remove_stale_dirs();
        let engine = match Engine::start(false) {
            Ok(e) => Arc::new(e),
            Err(e) => panic!("cannot start the private dockerd: {e:#}"),
        };
        *shared = Arc::downgrade(&engine);
        Ok(PrivateDockerd { engine })
    }

    /// An engine of the caller's own, never handed to another test, which
    /// may be crashed and revived; otherwise as [`PrivateDockerd::start`].
    pub fn dedicated() -> Result<PrivateDockerd, require::Skipped> {
        require_parts()?;
        remove_stale_dirs();
        match Engine::start(true) {
            Ok(e) => Ok(PrivateDockerd {
                engine: Arc::new(e),
            }),
            Err(e) => panic!("cannot start the private dockerd: {e:#}"),
        }
    }

    /// Kills `dockerd` with SIGKILL, alone: its `containerd` and the
    /// container shims keep running, as after a real engine crash. Blocks
    /// until it is reaped. Panics on a shared engine.
    pub fn crash(&self) -> anyhow::Result<()> {
        self.control(Control::Crash)
    }

    /// Starts `dockerd` again after [`crash`](Self::crash), on the same
    /// socket, data root and exec root, and waits (up to 60 s) until it
    /// answers. Panics on a shared engine.
    pub fn revive(&self) -> anyhow::Result<()> {
        self.control(Control::Revive)
    }

    fn control(
        &self,
        request: fn(mpsc::Sender<anyhow::Result<()>>) -> Control,
    ) -> anyhow::Result<()> {
        assert!(
            self.engine.dedicated,
            "only a dedicated engine may be crashed or revived"
        );
        let (tx, rx) = mpsc::channel();
        lock(&self.engine.control)
            .as_ref()
            .context("the engine is stopping")?
            .send(request(tx))
            .map_err(|_| anyhow::anyhow!("the dockerd thread has ended"))?;
        rx.recv()
            .map_err(|_| anyhow::anyhow!("the dockerd thread has ended"))?
    }

    /// `unix:///tmp/odk-dockerd-…/docker.sock`
    pub fn host(&self) -> String {
        self.engine.host.clone()
    }

    /// The engine's second listener: TCP on loopback with mutual TLS
    /// (`--tlsverify`), and the client certificate that may use it.
    pub fn tls(&self) -> &TlsEndpoint {
        &self.engine.tls
    }

    /// The engine's directory (socket, data root, exec root, `dockerd.log`).
    pub fn dir(&self) -> &Path {
        &self.engine.dir
    }

    /// A `docker` CLI command talking to this engine (`-H` set, the caller's
    /// Docker context and config ignored), for tests that need the CLI.
    pub fn cli(&self) -> Command {
        cli(&self.engine.dir, &self.engine.host)
    }

    /// Builds `tag` `FROM scratch` with busybox installed as `/bin/busybox`
    /// and its applets linked into `/bin` (`sh`, `httpd`, `nc`, `sleep`,
    /// `tar`, …); a no-op when the image already exists.
    pub fn build_busybox_image(&self, tag: &str) -> anyhow::Result<()> {
        let _one_at_a_time = lock(&self.engine.build);
        let exists = self
            .cli()
            .args(["image", "inspect", tag])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running docker image inspect")?
            .success();
        if exists {
            return Ok(());
        }
        let ctx = tempfile::Builder::new()
            .prefix("build-")
            .tempdir_in(&self.engine.dir)
            .context("creating the build context")?;
        std::fs::copy(BUSYBOX, ctx.path().join("busybox")).context("copying busybox")?;
        std::fs::write(
            ctx.path().join("Dockerfile"),
            "FROM scratch\n\
             COPY busybox /bin/busybox\n\
             RUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n",
        )
        .context("writing the Dockerfile")?;
        let out = self
            .cli()
            // The classic builder: engine 20.10 has it, and it needs no
            // buildx plugin in whichever docker CLI is installed.
            .env("DOCKER_BUILDKIT", "0")
            .args(["build", "--quiet", "--network=none", "--tag", tag])
            .arg(ctx.path())
            .output()
            .context("running docker build")?;
        if !out.status.success() {
            bail!(
                "docker build {tag} failed ({}): {}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(())
    }
}

/// What a private engine needs on the machine (see [`PrivateDockerd::start`]).
fn require_parts() -> Result<(), require::Skipped> {
    require::part(
        require::have("dockerd")
            && require::have("docker")
            && require::have("openssl")
            && Path::new(BUSYBOX).is_file(),
        "Docker Engine (dockerd, docker CLI), openssl and the static busybox (/bin/busybox)",
        "apt-get install docker.io openssl busybox-static",
    )?;
    require::part(
        nix::unistd::geteuid().is_root(),
        "root privileges for the private dockerd",
        "run the tests as root",
    )
}

/// `docker -H <host>`, isolated from the caller's Docker configuration.
fn cli(dir: &Path, host: &str) -> Command {
    let mut c = Command::new("docker");
    c.env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .env_remove("DOCKER_TLS_VERIFY")
        .env("DOCKER_CONFIG", dir.join("cli-config"))
        .arg("-H")
        .arg(host)
        .stdin(Stdio::null());
    c
}

impl Engine {
    /// Starts `dockerd` on a new thread that stays alive (PDEATHSIG) until
    /// the engine is dropped, and waits until it answers.
    fn start(dedicated: bool) -> anyhow::Result<Engine> {
        let dir = PathBuf::from(format!(
            "/tmp/{DIR_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let host = format!("unix://{}", dir.join("docker.sock").display());
        let port =
            crate::proc::try_free_port().context("picking a loopback port for the TLS listener")?;
        let tls_dir = dir.join("tls");
        let tls = TlsEndpoint {
            url: format!("tcp://127.0.0.1:{port}"),
            ca: tls_dir.join("ca.pem"),
            cert: tls_dir.join("cert.pem"),
            key: tls_dir.join("key.pem"),
        };
        let (ready_tx, ready_rx) = mpsc::channel::<anyhow::Result<()>>();
        let (control_tx, control_rx) = mpsc::channel::<Control>();
        let thread = {
            let (dir, host, tls) = (dir.clone(), host.clone(), tls.clone());
            std::thread::Builder::new()
                .name("test-dockerd".into())
                .spawn(move || engine_thread(&dir, &host, &tls, ready_tx, control_rx))
                .context("spawning the dockerd thread")?
        };
        let ready = ready_rx
            .recv()
            .unwrap_or_else(|_| Err(anyhow::anyhow!("the dockerd thread died")));
        if let Err(e) = ready {
            // The thread has stopped dockerd and cleaned up already.
            let _ = thread.join();
            return Err(e);
        }
        Ok(Engine {
            dir,
            host,
            tls,
            dedicated,
            build: Mutex::new(()),
            control: Mutex::new(Some(control_tx)),
            thread: Mutex::new(Some(thread)),
        })
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        drop(lock(&self.control).take());
        if let Some(thread) = lock(&self.thread).take() {
            if thread.join().is_err() {
                eprintln!("the dockerd thread for {} panicked", self.dir.display());
            }
        }
    }
}

/// The body of the engine thread: start, report readiness, carry out
/// crash and revive requests until the engine is dropped (the sender goes
/// away), then stop and clean up.
fn engine_thread(
    dir: &Path,
    host: &str,
    tls: &TlsEndpoint,
    ready: mpsc::Sender<anyhow::Result<()>>,
    control: mpsc::Receiver<Control>,
) {
    let mut child = match prepare_dir(dir, tls).and_then(|()| spawn_dockerd(dir, host, tls)) {
        Ok(c) => c,
        Err(e) => {
            remove_dir(dir);
            let _ = ready.send(Err(e));
            return;
        }
    };
    if let Err(e) = wait_ready(dir, host, &mut child) {
        stop_dockerd(dir, host, &mut child);
        remove_dir(dir);
        let _ = ready.send(Err(e));
        return;
    }
    if ready.send(Ok(())).is_err() {
        stop_dockerd(dir, host, &mut child);
        remove_dir(dir);
        return;
    }
    while let Ok(request) = control.recv() {
        match request {
            Control::Crash(reply) => {
                let pid = Pid::from_raw(child.id() as i32);
                let done = kill(pid, Signal::SIGKILL)
                    .context("SIGKILL to dockerd")
                    .and_then(|()| child.wait().context("reaping dockerd"))
                    .map(|_| wait_containerd_reaped(dir));
                let _ = reply.send(done);
            }
            Control::Revive(reply) => {
                let done = match spawn_dockerd(dir, host, tls) {
                    Ok(mut c) => {
                        let up = wait_ready(dir, host, &mut c);
                        child = c;
                        up
                    }
                    Err(e) => Err(e),
                };
                let _ = reply.send(done);
            }
        }
    }
    stop_dockerd(dir, host, &mut child);
    remove_dir(dir);
}

/// Makes a test CA, a server certificate for 127.0.0.1 and a client
/// certificate in `dir` with `openssl` (argv arrays; short-lived certs).
fn make_tls_material(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )?;
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n")?;
    let steps: &[&[&str]] = &[
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=opsdeck-test-ca",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            "server-key.pem",
            "-out",
            "server.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.pem",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=opsdeck",
            "-keyout",
            "key.pem",
            "-out",
            "client.csr",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "client.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "client.ext",
            "-out",
            "cert.pem",
        ],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(*args)
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .context("running openssl (apt-get install openssl)")?;
        if !out.status.success() {
            bail!(
                "openssl {} failed: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(())
}

/// Waits (up to 30 s) until the `containerd` of a killed `dockerd` has
/// left the process table. It dies with `dockerd` (moby starts it with a
/// parent-death signal) and is reaped by PID 1; until then the zombie
/// looks alive through its pidfile, and a `dockerd` started meanwhile
/// waits for it forever ("containerd is still running"). Systemd reaps at
/// once; some sandboxes' PID 1 takes a second or two.
fn wait_containerd_reaped(dir: &Path) {
    let Some(pid) = std::fs::read_to_string(dir.join("exec/containerd/containerd.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while Path::new(&format!("/proc/{pid}")).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A fresh engine directory with its TLS material.
fn prepare_dir(dir: &Path, tls: &TlsEndpoint) -> anyhow::Result<()> {
    remove_dir(dir);
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    make_tls_material(tls.ca.parent().context("TLS directory")?)
}

/// Starts `dockerd` on `dir` (prepared by [`prepare_dir`]); its log is
/// appended to `dockerd.log`, so a revived engine keeps the earlier lines.
fn spawn_dockerd(dir: &Path, host: &str, tls: &TlsEndpoint) -> anyhow::Result<Child> {
    let tls_dir = tls.ca.parent().context("TLS directory")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("dockerd.log"))
        .context("opening dockerd.log")?;
    let mut cmd = Command::new("dockerd");
    cmd.args([
        "--bridge=none",
        "--iptables=false",
        "--ip-forward=false",
        "--ip-masq=false",
    ])
    .arg("-H")
    .arg(host)
    // A second listener, TCP on loopback with mutual TLS: TLS applies to
    // TCP listeners only, the Unix socket stays plain.
    .arg("-H")
    .arg(&tls.url)
    .arg("--tlsverify")
    .arg("--tlscacert")
    .arg(&tls.ca)
    .arg("--tlscert")
    .arg(tls_dir.join("server.pem"))
    .arg("--tlskey")
    .arg(tls_dir.join("server-key.pem"))
    .arg("--data-root")
    .arg(dir.join("data"))
    .arg("--exec-root")
    .arg(dir.join("exec"))
    .arg("--pidfile")
    .arg(dir.join("docker.pid"))
    .env_remove("DOCKER_HOST")
    .stdin(Stdio::null())
    .stdout(log.try_clone().context("dockerd.log")?)
    .stderr(log);
    proc::die_with_parent(&mut cmd, Signal::SIGTERM, Session::Own);
    cmd.spawn().context("starting dockerd")
}

fn wait_ready(dir: &Path, host: &str, child: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let answered = cli(dir, host)
            .args(["version", "--format", "{{.Server.Version}}"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running docker version")?
            .success();
        if answered {
            return Ok(());
        }
        if let Some(status) = child.try_wait().context("waiting for dockerd")? {
            bail!(
                "dockerd exited ({status}); end of {}:\n{}",
                dir.join("dockerd.log").display(),
                tail(&dir.join("dockerd.log"))
            );
        }
        if Instant::now() > deadline {
            bail!(
                "dockerd did not answer on {host} within {} s; end of its log:\n{}",
                READY_TIMEOUT.as_secs(),
                tail(&dir.join("dockerd.log"))
            );
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Force-removes the engine's containers (dockerd would otherwise give each
/// 10 s to stop), then SIGTERM, and SIGKILL for dockerd and the processes
/// it started if it has not exited within 20 s. A crashed engine that was
/// not revived has left its `containerd` and shims: they are killed.
fn stop_dockerd(dir: &Path, host: &str, child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        remove_containers(dir, host);
    } else {
        kill_processes_naming(dir);
        return;
    }
    if proc::terminate(child, STOP_TIMEOUT, Duration::from_millis(100)) {
        return;
    }
    eprintln!(
        "dockerd in {} did not stop within {} s; killing it",
        dir.display(),
        STOP_TIMEOUT.as_secs()
    );
    // dockerd leads its own process group (setsid); containerd and the
    // shims have their own, but all name the engine's directory.
    proc::kill_group(child);
    kill_processes_naming(dir);
}

fn remove_containers(dir: &Path, host: &str) {
    let Ok(out) = cli(dir, host).args(["ps", "--all", "--quiet"]).output() else {
        return;
    };
    let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    if ids.is_empty() {
        return;
    }
    let _ = cli(dir, host)
        .args(["rm", "--force", "--volumes"])
        .args(&ids)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// SIGKILLs the processes whose command line names `dir` (the engine's
/// containerd and shims): only this engine's, since the directory is ours.
fn kill_processes_naming(dir: &Path) {
    let needle = dir.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline).contains(&needle) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Detaches the mounts dockerd leaves under `dir` (e.g. `exec/netns/default`,
/// overlays after a crash), deepest first, then removes the directory.
/// Failures are reported, never fatal.
fn remove_dir(dir: &Path) {
    if !dir.exists() {
        return;
    }
    let mut mounts = mounts_under(dir);
    mounts.sort_by_key(|m| std::cmp::Reverse(m.components().count()));
    for m in mounts {
        let ok = Command::new("umount")
            .arg("--lazy")
            .arg(&m)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("could not unmount {}", m.display());
        }
    }
    if let Err(e) = std::fs::remove_dir_all(dir) {
        eprintln!("could not remove {}: {e}", dir.display());
    }
}

/// Mount points at or below `dir`, from `/proc/self/mountinfo`.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(unescape_mountinfo)
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect()
}

/// Mount points in mountinfo escape space, tab, newline and `\` as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = &bytes[i + 1..i + 4];
            if digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                let v = digits
                    .iter()
                    .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
                if let Ok(v) = u8::try_from(v) {
                    out.push(v);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Removes engine directories left by test processes that no longer exist
/// (killed without unwinding), unless their dockerd is still shutting down.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
            continue;
        };
        let Some(owner) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let dir = entry.path();
        if dockerd_running(&dir) {
            continue;
        }
        remove_dir(&dir);
    }
}

/// Whether the dockerd of the pidfile in `dir` still runs.
fn dockerd_running(dir: &Path) -> bool {
    let Some(pid) = std::fs::read_to_string(dir.join("docker.pid"))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
    else {
        return false;
    };
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::unescape_mountinfo;

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo("/tmp/a\\040b"), "/tmp/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
        assert_eq!(unescape_mountinfo("/end\\"), "/end\\");
    }
}
