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
