//! Redis servers for the cache health checks, and a raw RESP client.
//!
//! [`Redis::shared`] is one server per test process, started on first use,
//! with the password `redispw` and `maxmemory 64mb`; [`Redis::start`] is a
//! server of the test's own (for tests that fill its memory, or want no
//! password), stopped when the handle is dropped. Each runs `redis-server`
//! on a free loopback port with no persistence (`--save ""`,
//! `--appendonly no`) in `/tmp/odk-redis-<pid>-<n>` (its log is `redis.log`
//! there), ignoring any `redis.conf`.
//!
//! The client side is raw RESP over a [`tokio::net::TcpStream`] ([`Conn`]),
//! so tests see exactly what the server answers (`-NOAUTH …`, `-OOM …`).
//!
//! # Lifetime
//!
//! Each server is spawned on a dedicated thread that lives as long as the
//! server, with `PR_SET_PDEATHSIG` = SIGTERM, so it stops when the test
//! process exits, however it exits. Dropping a [`Redis::start`] handle stops
//! it (SIGTERM, SIGKILL after 5 s) and removes its directory; the shared
//! server's directory is removed by the next test process that starts a
//! server (directories of processes that no longer exist).

use std::future::Future;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::Signal;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::proc::{self, Session};
use crate::require;

/// The shared server's password (and [`RedisOptions::default`]'s).
pub const PASSWORD: &str = "redispw";

const DIR_PREFIX: &str = "odk-redis-";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const PORT_ATTEMPTS: u32 = 3;
const MIB: usize = 1024 * 1024;

/// How to configure a server of [`Redis::start`].
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `--requirepass`; `None` for a server without authentication.
    pub password: Option<String>,
    /// `--maxmemory <n>mb` (`--maxmemory-policy noeviction`: writes past
    /// it fail with `-OOM`); 0 for no limit.
    pub maxmemory_mb: u64,
}

impl Default for RedisOptions {
    /// Password `redispw`, `maxmemory 64mb`.
    fn default() -> Self {
        RedisOptions {
            password: Some(PASSWORD.to_owned()),
            maxmemory_mb: 64,
        }
    }
}

/// A running `redis-server`; see the module docs for its lifetime.
pub struct Redis {
    port: u16,
    dir: PathBuf,
    options: RedisOptions,
    /// Key counter for [`Redis::fill`].
    next_key: AtomicU64,
    /// Dropping the sender tells the server thread to stop the server.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

static SHARED: OnceLock<Result<Redis, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(1);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn require_redis() -> Result<(), require::Skipped> {
    require::part(
        require::have("redis-server"),
        "redis-server",
        "apt-get install redis-server, or scripts/install-test-deps.sh",
    )
}

impl Redis {
    /// The process's shared server (password `redispw`, `maxmemory 64mb`),
    /// started on first call (blocking, well under a second).
    ///
    /// `Err(Skipped)` when `redis-server` is missing, outside CI only (under
    /// `CI=true` that panics). Panics when the server does not come up,
    /// with the end of its log; every later call panics too. Do not fill
    /// its memory: use a server of [`Redis::start`] for that.
    pub fn shared() -> Result<&'static Redis, require::Skipped> {
        require_redis()?;
        let result = SHARED.get_or_init(|| {
            remove_stale_dirs();
            Redis::spawn(RedisOptions::default()).map_err(|e| format!("{e:#}"))
        });
        match result {
            Ok(r) => Ok(r),
            Err(e) => panic!("cannot start the shared test Redis: {e}"),
        }
    }

    /// A server of the caller's own, stopped when dropped (blocking, well
    /// under a second). Missing `redis-server` and failures as
    /// [`Redis::shared`].
    pub fn start(options: RedisOptions) -> Result<Redis, require::Skipped> {
        require_redis()?;
        match Redis::spawn(options) {
            Ok(r) => Ok(r),
            Err(e) => panic!("cannot start a test Redis: {e:#}"),
        }
    }

    /// The loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/0`, without the password.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The password, `redispw` for the shared server.
    pub fn password(&self) -> Option<&str> {
        self.options.password.as_deref()
    }

    /// `maxmemory` in bytes (0: no limit).
    pub fn maxmemory_bytes(&self) -> u64 {
        self.options.maxmemory_mb * MIB as u64
    }

    /// The server's directory (`redis.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A new connection, authenticated when the server has a password.
    pub async fn conn(&self) -> anyhow::Result<Conn> {
        let mut conn = Conn::connect(self.port).await?;
        if let Some(pw) = self.password() {
            match conn.call(&[b"AUTH", pw.as_bytes()]).await? {
                Reply::Simple(s) if s == "OK" => {}
                other => bail!("AUTH answered {other:?}"),
            }
        }
        Ok(conn)
    }

    /// Runs one command on a new authenticated connection.
    pub async fn command(&self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        self.conn().await?.call(args).await
    }

    /// `used_memory` from `INFO memory`, in bytes.
    pub async fn used_memory(&self) -> anyhow::Result<u64> {
        let info = match self.command(&[b"INFO", b"memory"]).await? {
            Reply::Bulk(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
            other => bail!("INFO memory answered {other:?}"),
        };
        info.lines()
            .find_map(|l| l.strip_prefix("used_memory:"))
            .context("no used_memory in INFO memory")?
            .trim()
            .parse()
            .context("used_memory is not a number")
    }

    /// Writes `megabytes` new keys of 1 MiB each (`odk:fill:<n>`), so
    /// `used_memory` rises by about that much. Fails with the server's
    /// `-OOM` error once `maxmemory` is reached.
    pub async fn fill(&self, megabytes: u64) -> anyhow::Result<()> {
        let value = vec![b'x'; MIB];
        let mut conn = self.conn().await?;
        for _ in 0..megabytes {
            let key = format!("odk:fill:{}", self.next_key.fetch_add(1, Ordering::SeqCst));
            match conn.call(&[b"SET", key.as_bytes(), &value]).await? {
                Reply::Simple(s) if s == "OK" => {}
                other => bail!("SET {key} answered {other:?}"),
            }
        }
        Ok(())
    }

    /// `FLUSHALL SYNC`: frees what [`Redis::fill`] wrote.
    pub async fn flush_all(&self) -> anyhow::Result<()> {
        match self.command(&[b"FLUSHALL", b"SYNC"]).await? {
            Reply::Simple(s) if s == "OK" => Ok(()),
            other => bail!("FLUSHALL answered {other:?}"),
        }
    }

    /// Starts a server on a new thread (retrying when the free port picked
    /// was taken meanwhile) and waits until it answers PING.
    fn spawn(options: RedisOptions) -> anyhow::Result<Redis> {
        let dir = PathBuf::from(format!(
            "/tmp/{DIR_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let log = dir.join("redis.log");
        let mut last_error = None;
        for _ in 0..PORT_ATTEMPTS {
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let port = proc::try_free_port().context("picking a free loopback port")?;
            let mut cmd = Command::new("redis-server");
            cmd.arg("--port")
                .arg(port.to_string())
                .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
                .args(["--daemonize", "no", "--maxmemory-policy", "noeviction"])
                .arg("--maxmemory")
                .arg(format!("{}mb", options.maxmemory_mb))
                .arg("--dir")
                .arg(&dir)
                .arg("--logfile")
                .arg(&log);
            if let Some(pw) = &options.password {
                cmd.arg("--requirepass").arg(pw);
            }
            cmd.current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<u32>>();
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            let thread = std::thread::Builder::new()
                .name("test-redis".into())
                .spawn(move || server_thread(cmd, ready_tx, stop_rx))
                .context("spawning the Redis thread")?;
            let pid = match ready_rx.recv() {
                Ok(Ok(pid)) => pid,
                Ok(Err(e)) => {
                    let _ = thread.join();
                    return Err(e).context("starting redis-server");
                }
                Err(_) => {
                    let _ = thread.join();
                    bail!("the Redis thread died");
                }
            };
            let redis = Redis {
                port,
                dir: dir.clone(),
                options: options.clone(),
                next_key: AtomicU64::new(0),
                stop: Mutex::new(Some(stop_tx)),
                thread: Mutex::new(Some(thread)),
            };
            match wait_ready(port, options.password.as_deref(), pid, &log) {
                Ok(()) => return Ok(redis),
                Err(e) => {
                    redis.stop_server();
                    let port_taken = tail(&log).contains("Address already in use");
                    // Removes the directory.
                    drop(redis);
                    if !port_taken {
                        return Err(e);
                    }
                    last_error = Some(e);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no free port")))
    }

    /// Stops the server and waits for its thread.
    fn stop_server(&self) {
        drop(lock(&self.stop).take());
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop_server();
        if self.dir.exists() {
            if let Err(e) = std::fs::remove_dir_all(&self.dir) {
                eprintln!("could not remove {}: {e}", self.dir.display());
            }
        }
    }
}

/// Spawns the server (PDEATHSIG, own session), reports its pid, waits for
/// the stop request (the sender being dropped), then stops it.
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

/// Polls (plain blocking I/O) until the server answers `+PONG`.
fn wait_ready(port: u16, password: Option<&str>, pid: u32, log: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if ping_blocking(port, password).unwrap_or(false) {
            return Ok(());
        }
        if proc::has_exited(pid) {
            bail!(
                "redis-server exited; end of {}:\n{}",
                log.display(),
                tail(log)
            );
        }
        if Instant::now() > deadline {
            bail!(
                "redis-server did not answer within {} s; end of its log:\n{}",
                READY_TIMEOUT.as_secs(),
                tail(log)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn ping_blocking(port: u16, password: Option<&str>) -> std::io::Result<bool> {
    let stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut w = stream.try_clone()?;
    let mut r = std::io::BufReader::new(stream);
    let mut line = String::new();
    if let Some(pw) = password {
        w.write_all(&encode(&[b"AUTH", pw.as_bytes()]))?;
        r.read_line(&mut line)?;
        if line != "+OK\r\n" {
            return Ok(false);
        }
        line.clear();
    }
    w.write_all(&encode(&[b"PING"]))?;
    r.read_line(&mut line)?;
    Ok(line == "+PONG\r\n")
}

/// Removes server directories left by test processes that no longer exist.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{owner}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// A RESP reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// `+OK`
    Simple(String),
    /// `-ERR …`, `-NOAUTH …`, `-OOM …`
    Error(String),
    /// `:1`
    Integer(i64),
    /// `$n` (`None`: `$-1`)
    Bulk(Option<Vec<u8>>),
    /// `*n` (`None`: `*-1`)
    Array(Option<Vec<Reply>>),
}

/// A RESP command as an array of bulk strings.
pub fn encode(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// A raw RESP connection (no authentication of its own: send `AUTH`, or use
/// [`Redis::conn`]).
pub struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    /// Connects to `127.0.0.1:<port>`.
    pub async fn connect(port: u16) -> anyhow::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .with_context(|| format!("connecting to Redis on 127.0.0.1:{port}"))?;
        Ok(Conn {
            io: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply (an error reply is `Ok`).
    pub async fn call(&mut self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        self.io
            .get_mut()
            .write_all(&encode(args))
            .await
            .context("writing to Redis")?;
        self.read_reply().await
    }

    fn read_reply(&mut self) -> Pin<Box<dyn Future<Output = anyhow::Result<Reply>> + Send + '_>> {
        Box::pin(async move {
            let mut line = Vec::new();
            self.io
                .read_until(b'\n', &mut line)
                .await
                .context("reading from Redis")?;
            let Some(line) = line.strip_suffix(b"\r\n") else {
                bail!("Redis closed the connection or sent no CRLF: {line:?}");
            };
            let (kind, rest) = line.split_first().context("an empty RESP line")?;
            let rest = String::from_utf8_lossy(rest).into_owned();
            let len = || rest.parse::<i64>().context("a RESP length");
            Ok(match kind {
                b'+' => Reply::Simple(rest),
                b'-' => Reply::Error(rest),
                b':' => Reply::Integer(len()?),
                b'$' => match len()? {
                    n if n < 0 => Reply::Bulk(None),
                    n => {
                        let mut buf = vec![0; n as usize + 2];
                        self.io
                            .read_exact(&mut buf)
                            .await
                            .context("reading a bulk string")?;
                        buf.truncate(n as usize);
                        Reply::Bulk(Some(buf))
                    }
                },
                b'*' => match len()? {
                    n if n < 0 => Reply::Array(None),
                    n => {
                        let mut items = Vec::with_capacity(n as usize);
                        for _ in 0..n {
                            items.push(self.read_reply().await?);
                        }
                        Reply::Array(Some(items))
                    }
                },
                other => bail!("unknown RESP type {:?}", *other as char),
            })
        })
    }
}
