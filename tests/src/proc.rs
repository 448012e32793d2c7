//! The processes the harness starts: free loopback ports, children that die
//! with the test process, and stopping a child by its pid.
//!
//! Every harness part that runs a server (Postgres aside, which the
//! server's own embedded-cluster code runs) uses these: `dockerd`,
//! `mariadb`, `redis`, `s3`, `smtp`, `browser` (chromedriver), `process`
//! (`opsdeck serve`).
//!
//! # The death signal
//!
//! [`die_with_parent`] sets `PR_SET_PDEATHSIG` between fork and exec. The
//! signal fires when the *thread* that spawned the child exits, not the
//! process: a part that must outlive the test's runtime threads spawns its
//! child on a dedicated thread that lives exactly as long as the child.
//!
//! # Stopping
//!
//! A child is only signalled while it is unreaped ([`Child::try_wait`] says
//! it is running, or the part's own lock says so): once reaped, its pid could
//! have been reused by an unrelated process.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, killpg, Signal};
use nix::unistd::Pid;

/// A loopback port nobody listens on right now (the kernel's pick). Another
/// process may take it before the caller binds it: parts that can tell
/// ("Address already in use") retry with a new one.
pub fn try_free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// [`try_free_port`], panicking when the loopback interface cannot bind.
pub fn free_port() -> u16 {
    try_free_port().expect("finding a free loopback port")
}

/// Whether the child leads its own session (and process group), so that
/// [`kill_group`] reaches what it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Session {
    /// Stays in the test process's group.
    Inherit,
    /// `setsid()`: leads a new session and process group.
    Own,
}

/// Makes the child of `cmd` receive `signal` when the spawning thread exits
/// (`PR_SET_PDEATHSIG`), and lead its own session if asked.
pub fn die_with_parent(cmd: &mut Command, signal: Signal, session: Session) {
    // SAFETY: only async-signal-safe calls (prctl, setsid) between fork and
    // exec. std switches uid and gid (`Command::uid`) before running this,
    // so a credential change cannot clear the death signal after it is set.
    unsafe {
        cmd.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(signal).map_err(std::io::Error::from)?;
            if session == Session::Own {
                nix::unistd::setsid().map_err(std::io::Error::from)?;
            }
            Ok(())
        });
    }
}

/// Sends `signal` to `pid`. The caller knows the process is unreaped.
pub fn signal_pid(pid: u32, signal: Signal) {
    let _ = kill(Pid::from_raw(pid as i32), signal);
}

/// Whether `pid` is gone or a zombie (exited, not yet reaped by its
/// parent), read from `/proc/<pid>/stat`.
pub fn has_exited(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(true)
}

/// The processes whose parent is `pid` (from `/proc`).
pub fn children_of(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok())
                    == Some(pid)
            })
        })
        .collect()
}

/// SIGTERM to a running child, then waits up to `grace` (checking every
/// `every`) for it to exit. Returns whether it exited (or cannot be waited
/// for); the child is left running otherwise.
pub fn terminate(child: &mut Child, grace: Duration, every: Duration) -> bool {
    if matches!(child.try_wait(), Ok(None)) {
        signal_pid(child.id(), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    loop {
        match child.try_wait() {
            Ok(Some(_)) | Err(_) => return true,
            Ok(None) if Instant::now() > deadline => return false,
            Ok(None) => std::thread::sleep(every),
        }
    }
}

/// [`terminate`], then SIGKILL and reap if it did not exit within `grace`.
pub fn stop_child(child: &mut Child, grace: Duration, every: Duration) {
    if !terminate(child, grace, every) {
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// SIGKILLs the process group the child leads ([`Session::Own`]) and reaps
/// the child. The group is signalled before the leader is reaped, so its id
/// cannot have been reused.
pub fn kill_group(child: &mut Child) {
    if matches!(child.try_wait(), Ok(None)) {
        let _ = killpg(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether `GET {path}` on `127.0.0.1:{port}` answers 200 (HTTP/1.0, one
/// read, 2 s): the readiness probe of the harness's servers.
pub fn http_ok(port: u16, path: &str) -> bool {
    use std::io::{Read, Write};
    (|| -> std::io::Result<bool> {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port))?;
        s.set_read_timeout(Some(std::time::Duration::from_secs(2)))?;
        write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")?;
        let mut buf = [0u8; 32];
        let n = s.read(&mut buf)?;
        Ok(buf[..n].starts_with(b"HTTP/1.0 200") || buf[..n].starts_with(b"HTTP/1.1 200"))
    })()
    .unwrap_or(false)
}

/// A child spawned on a thread of its own that lives exactly as long as it
/// (so the death signal fires with the test process, not with a runtime
/// thread): stopped with SIGTERM (SIGKILL after `grace`) by [`Owned::stop`]
/// or when dropped. The child leads its own session.
pub struct Owned {
    pid: u32,
    stop: std::sync::Mutex<Option<std::sync::mpsc::Sender<()>>>,
    thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Owned {
    pub fn spawn(name: &str, mut cmd: Command, grace: Duration) -> std::io::Result<Owned> {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<std::io::Result<u32>>();
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                die_with_parent(&mut cmd, Signal::SIGTERM, Session::Own);
                let mut child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(child.id()));
                let _ = stop_rx.recv();
                stop_child(&mut child, grace, Duration::from_millis(20));
            })?;
        let pid = ready_rx
            .recv()
            .map_err(|_| std::io::Error::other("the spawning thread died"))??;
        Ok(Owned {
            pid,
            stop: std::sync::Mutex::new(Some(stop_tx)),
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether the child has exited (it may not be reaped yet).
    pub fn exited(&self) -> bool {
        has_exited(self.pid)
    }

    /// Stops the child and waits for it.
    pub fn stop(&self) {
        drop(self.stop.lock().ok().and_then(|mut s| s.take()));
        if let Some(t) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = t.join();
        }
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        self.stop();
    }
}
