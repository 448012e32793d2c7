//! A real `opsdeck serve` process against a given database: for tests about
//! several server processes on one database (schedules, leases) or about
//! killing a server mid-work.
//!
//! The binary is the `opsdeck` built next to the test binary
//! (`cargo build -p opsdeck --bin opsdeck`; `make test` does it first) or
//! `OPSDECK_BIN`. The process gets a free loopback port, the SPA build of
//! [`crate::server::web_root`], `RUST_LOG` (default `info`), and writes its
//! stdout and stderr to a log file whose tail failure messages include.
//!
//! The child is spawned by, and waited for on, a dedicated thread that lives
//! exactly as long as the child: `PR_SET_PDEATHSIG` (SIGKILL) fires when the
//! spawning *thread* exits, so the child cannot outlive the test process,
//! yet is not killed early by a runtime thread ending. The child is only
//! signalled while it has not been reaped (no signal to a reused pid).
//! Dropping an [`OpsdeckProcess`] kills it.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::proc::{self, free_port, Session};

/// The `opsdeck` binary next to the test binary, or `OPSDECK_BIN`.
pub fn opsdeck_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("OPSDECK_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/opsdeck
    exe.parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("opsdeck"))
        .expect("target dir")
}

struct Shared {
    child: Child,
    exited: Option<ExitStatus>,
}

/// A running `opsdeck serve`.
pub struct OpsdeckProcess {
    base: String,
    pid: u32,
    shared: Arc<Mutex<Shared>>,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl OpsdeckProcess {
    /// Starts `opsdeck serve` on `database_url` with extra environment
    /// variables (they override the defaults set here). Does not wait for
    /// readiness: see [`OpsdeckProcess::wait_ready`].
    pub async fn start(database_url: &str, extra_env: &[(&str, &str)]) -> OpsdeckProcess {
        let bin = opsdeck_bin();
        assert!(
            bin.is_file(),
            "{} is missing: build it first (cargo build -p opsdeck --bin opsdeck; make test does)",
            bin.display()
        );
        let dir = tempfile::Builder::new()
            .prefix("opsdeck-process-")
            .tempdir()
            .expect("temporary directory");
        let log = dir.path().join("opsdeck.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let port = free_port();
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .env("DATABASE_URL", database_url)
            .env("OPSDECK_LISTEN", format!("127.0.0.1:{port}"))
            .env("OPSDECK_WEB_ROOT", crate::server::web_root())
            .env("OPSDECK_DATA_DIR", dir.path().join("data"))
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            // Rate limits off unless a test sets them (see `TestServer`).
            .env("OPSDECK_RATE_LIMIT_ANONYMOUS", "0")
            .env("OPSDECK_RATE_LIMIT_LOGIN", "0")
            .env("OPSDECK_RATE_LIMIT_HEARTBEAT", "0")
            // Replicas of one database share its secrets key (an empty
            // value in `extra_env` falls back to the data directory's file).
            .env("OPSDECK_SECRET_KEY", crate::server::SECRET_KEY)
            .env_remove("OPSDECK_CONFIG")
            .env_remove("OPSDECK_ADMIN_PASSWORD")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        for (k, v) in extra_env {
            cmd.env(k, v);
        }
        proc::die_with_parent(&mut cmd, Signal::SIGKILL, Session::Inherit);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("opsdeck-{port}"))
            .spawn(move || {
                let child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let pid = child.id();
                let shared = Arc::new(Mutex::new(Shared {
                    child,
                    exited: None,
                }));
                let _ = tx.send(Ok((pid, shared.clone())));
                // Reap under the lock, so a signal never reaches a reused pid.
                loop {
                    {
                        let mut s = lock(&shared);
                        match s.child.try_wait() {
                            Ok(Some(status)) => {
                                s.exited = Some(status);
                                return;
                            }
                            Ok(None) => {}
                            Err(_) => return,
                        }
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
            })
            .expect("spawning the process thread");
        let (pid, shared) = rx
            .recv()
            .expect("the process thread died")
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        OpsdeckProcess {
            base: format!("http://127.0.0.1:{port}"),
            pid,
            shared,
            log,
            _dir: dir,
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A client logged in as `username` (a user with the harness password,
    /// e.g. the `ops` admin of [`crate::util::process_database`]).
    pub async fn login(&self, username: &str) -> crate::server::Api {
        crate::flows::auth::login(&self.base, username).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The exit status once the process ended.
    pub fn exited(&self) -> Option<ExitStatus> {
        lock(&self.shared).exited
    }

    /// The last `max` bytes of the process's output.
    pub fn log_tail(&self, max: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        if text.len() > max {
            let mut cut = text.len() - max;
            while !text.is_char_boundary(cut) {
                cut += 1;
            }
            text = format!("…{}", &text[cut..]);
        }
        text
    }

    /// Polls `/readyz` until it answers 200; panics with the log tail when
    /// the process exits first or is not ready within 90 s.
    pub async fn wait_ready(&self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .expect("client");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(res) = http.get(self.url("/readyz")).send().await {
                if res.status() == 200 {
                    return;
                }
            }
            if let Some(status) = self.exited() {
                panic!(
                    "opsdeck exited before it was ready ({status}):\n{}",
                    self.log_tail(8000)
                );
            }
            assert!(
                Instant::now() < deadline,
                "opsdeck not ready in 90 s:\n{}",
                self.log_tail(8000)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn signal(&self, sig: Signal) {
        let s = lock(&self.shared);
        if s.exited.is_none() {
            proc::signal_pid(self.pid, sig);
        }
    }

    async fn wait_exit(&self, within: Duration, what: &str) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.exited() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "opsdeck did not exit within {within:?} of {what}:\n{}",
                self.log_tail(8000)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// SIGKILL (a crash), then wait until it is gone.
    pub async fn kill(&self) -> ExitStatus {
        self.signal(Signal::SIGKILL);
        self.wait_exit(Duration::from_secs(30), "SIGKILL").await
    }

    /// SIGTERM (graceful shutdown), then wait until it exited.
    pub async fn stop(&self) -> ExitStatus {
        self.signal(Signal::SIGTERM);
        self.wait_exit(Duration::from_secs(60), "SIGTERM").await
    }
}

impl Drop for OpsdeckProcess {
    fn drop(&mut self) {
        self.signal(Signal::SIGKILL);
        // The process thread reaps it within a few milliseconds.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.exited().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
