//! The streaming pipeline: a tool's stdout → zstd → SHA-256 → storage, and
//! back (storage → zstd decode → a tool's stdin). Never a whole dump in
//! memory or in a temporary file.
//!
//! How a dump flows:
//! * one blocking thread reads the tool's stdout (a plain blocking pipe,
//!   enlarged to 1 MiB when the kernel allows) in 256 KiB reads and feeds a
//!   zstd encoder with one worker per available core (`zstdmt`, frame
//!   checksum on); the encoder's output is hashed and gathered into 1 MiB
//!   chunks that go through a bounded channel (4 chunks) to
//! * the async side, which writes them to the [`Upload`] and reports
//!   progress at most every 250 ms (and once at the end);
//! * stderr is read by a task that keeps its last 4 KiB for the error
//!   message.
//!
//! Any failure kills the tool (also when the future is dropped:
//! `kill_on_drop`) and removes the partial object.
//!
//! The input is a tool ([`Input::Command`]: argv, its stdout) or a blocking
//! reader ([`Input::Reader`]: a tar archive being built in a thread, an
//! engine's archive download) read in the same compression thread. A
//! reader's error fails the dump like a tool's non-zero exit; a reader
//! must report a truncated source as an error, never as a short end (the
//! archive readers check the tar end marker). When the upload fails or the
//! future is dropped, the compression thread stops at its next chunk and
//! drops the reader, which stops whatever feeds it.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

use tokio_util::io::SyncIoBridge;

use super::storage::{ObjectReader, Upload};

/// What a stored object measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// Bytes stored (compressed).
    pub bytes: u64,
    /// Bytes the tool wrote.
    pub raw_bytes: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
}

/// Called as data flows: (raw bytes so far, stored bytes so far).
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// One read from the tool's stdout or from storage.
const READ_BUF: usize = 256 << 10;
/// Compressed chunk handed to the upload.
const CHUNK: usize = 1 << 20;
/// Chunks in flight between the encoder and the upload.
const CHANNEL: usize = 4;
/// Pipe buffer asked of the kernel (best effort).
const PIPE_SIZE: i32 = 1 << 20;
/// The end of stderr kept for messages.
const TAIL: usize = 4 << 10;
/// Shortest interval between progress calls.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);
/// How long stderr may stay open after the tool exited.
const STDERR_GRACE: Duration = Duration::from_secs(2);

/// What a dump reads.
pub enum Input {
    /// A tool (argv): its stdout. A non-zero exit fails the dump.
    Command(Command),
    /// A blocking reader, read to its end in the compression thread. A read
    /// error fails the dump; `name` names it in messages.
    Reader {
        name: String,
        reader: Box<dyn Read + Send>,
    },
}

impl Input {
    pub fn reader(name: impl Into<String>, reader: impl Read + Send + 'static) -> Input {
        Input::Reader {
            name: name.into(),
            reader: Box::new(reader),
        }
    }
}

impl From<Command> for Input {
    fn from(c: Command) -> Input {
        Input::Command(c)
    }
}

/// Runs `input` — a tool (argv; stdin null, stdout piped, stderr captured)
/// or a blocking reader — compresses its bytes with zstd at `level`
/// (multi-threaded), hashes the compressed bytes and writes them to
/// `upload`. A non-zero exit, a read or write error aborts the upload (the
/// partial object is removed) and returns an error with the end of the
/// tool's stderr (`scrub` removes the password).
pub async fn dump_to(
    input: impl Into<Input>,
    level: i32,
    mut upload: Upload,
    progress: Progress,
    scrub: &(dyn Fn(String) -> String + Sync),
) -> anyhow::Result<Stored> {
    let mut cmd = match input.into() {
        Input::Command(c) => c,
        Input::Reader { name, reader } => {
            return match pump(reader, &name, level, &mut upload, &progress).await {
                Ok((raw, stored)) => {
                    upload.finish().await?;
                    progress(raw, stored.bytes);
                    Ok(Stored {
                        bytes: stored.bytes,
                        raw_bytes: raw,
                        sha256: stored.sha256,
                    })
                }
                Err(e) => {
                    upload.abort().await;
                    Err(anyhow!(scrub(format!("{e:#}"))))
                }
            };
        }
    };
    let prog = program(&cmd);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            upload.abort().await;
            bail!("cannot start {prog}: {e}");
        }
    };
    let tail = StderrTail::start(&mut child);
    let pumped = match stdout_of(&mut child) {
        Ok(src) => {
            let what = format!("the output of {prog}");
            pump(Box::new(src), &what, level, &mut upload, &progress).await
        }
        Err(e) => Err(e),
    };
    let (raw, stored) = match pumped {
        Ok(v) => v,
        Err(e) => {
            let _ = child.start_kill();
            let _ = child.wait().await;
            upload.abort().await;
            return Err(anyhow!(scrub(format!("{e:#}"))));
        }
    };
    let status = match child.wait().await {
        Ok(s) => s,
        Err(e) => {
            upload.abort().await;
            bail!("waiting for {prog}: {e}");
        }
    };
    if !status.success() {
        let tail = tail.finish().await;
        upload.abort().await;
        bail!(exit_error(&prog, status, tail, scrub));
    }
    upload.finish().await?;
    progress(raw, stored.bytes);
    Ok(Stored {
        bytes: stored.bytes,
        raw_bytes: raw,
        sha256: stored.sha256,
    })
}

/// What the encoder thread produced.
struct Encoded {
    sha256: String,
    bytes: u64,
}

/// The tool's stdout as a plain blocking pipe (enlarged when possible).
fn stdout_of(child: &mut Child) -> anyhow::Result<std::fs::File> {
    let stdout = child.stdout.take().context("no stdout pipe")?;
    let src = std::fs::File::from(stdout.into_owned_fd().context("stdout pipe")?);
    grow_pipe(&src);
    Ok(src)
}

/// Moves the input (`what`, for messages) through the encoder into the
/// upload. Returns the raw byte count and the encoder's result.
async fn pump(
    src: Box<dyn Read + Send>,
    what: &str,
    level: i32,
    upload: &mut Upload,
    progress: &Progress,
) -> anyhow::Result<(u64, Encoded)> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(64) as u32;
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(CHANNEL);
    let raw = Arc::new(AtomicU64::new(0));
    let raw_t = raw.clone();
    let prog_t = what.to_string();
    let encoder = tokio::task::spawn_blocking(move || {
        compress(src, level, threads, tx, &raw_t).map_err(|e| match e {
            Failure::Read(e) => anyhow!("reading {prog_t}: {e}"),
            Failure::Compress(e) => anyhow!("compressing: {e}"),
            Failure::Stopped => anyhow!("the upload stopped"),
        })
    });
    let mut stored = 0u64;
    let mut tick = tokio::time::interval(PROGRESS_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Some(c) => {
                    upload.write(&c).await?;
                    stored += c.len() as u64;
                }
                None => break,
            },
            _ = tick.tick() => progress(raw.load(Ordering::Relaxed), stored),
        }
    }
    let enc = encoder.await.context("the compression thread failed")??;
    debug_assert_eq!(enc.bytes, stored);
    Ok((raw.load(Ordering::Relaxed), enc))
}

enum Failure {
    Read(std::io::Error),
    Compress(std::io::Error),
    /// The receiving side went away (the upload failed).
    Stopped,
}

/// The blocking half of a dump: stdout → zstd → (hash, chunks).
fn compress(
    mut src: Box<dyn Read + Send>,
    level: i32,
    threads: u32,
    tx: mpsc::Sender<Vec<u8>>,
    raw: &AtomicU64,
) -> Result<Encoded, Failure> {
    let sink = Sink {
        buf: Vec::with_capacity(CHUNK),
        hasher: Sha256::new(),
        bytes: 0,
        tx,
        stopped: false,
    };
    let mut enc = zstd::stream::write::Encoder::new(sink, level).map_err(Failure::Compress)?;
    enc.multithread(threads).map_err(Failure::Compress)?;
    enc.include_checksum(true).map_err(Failure::Compress)?;
    let mut buf = vec![0u8; READ_BUF];
    let fail = |enc: &zstd::stream::write::Encoder<'_, Sink>, e: std::io::Error| {
        if enc.get_ref().stopped {
            Failure::Stopped
        } else {
            Failure::Compress(e)
        }
    };
    loop {
        let n = match src.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Failure::Read(e)),
        };
        raw.fetch_add(n as u64, Ordering::Relaxed);
        if let Err(e) = enc.write_all(&buf[..n]) {
            return Err(fail(&enc, e));
        }
    }
    drop(src);
    let mut sink = match enc.try_finish() {
        Ok(sink) => sink,
        Err((enc, e)) => return Err(fail(&enc, e)),
    };
    if sink.send().is_err() {
        return Err(Failure::Stopped);
    }
    Ok(Encoded {
        sha256: hex::encode(sink.hasher.finalize()),
        bytes: sink.bytes,
    })
}

/// The encoder's output: hashed, gathered into chunks, sent to the upload.
struct Sink {
    buf: Vec<u8>,
    hasher: Sha256,
    bytes: u64,
    tx: mpsc::Sender<Vec<u8>>,
    stopped: bool,
}

impl Sink {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let full = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(full).map_err(|_| {
            self.stopped = true;
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped")
        })
    }
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        // Chunks go out when full or at the end; a flush of the encoder
        // must not make small writes.
        Ok(())
    }
}

/// SHA-256 (hex) and size of a stored object, read back in full.
pub async fn checksum(object: ObjectReader) -> anyhow::Result<(String, u64)> {
    let mut file = SyncIoBridge::new(object);
    tokio::task::spawn_blocking(move || {
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; CHUNK];
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => bail!("reading the stored object: {e}"),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok((hex::encode(hasher.finalize()), size))
    })
    .await
    .context("the checksum thread failed")?
}

/// Decompresses a stored object into `cmd`'s stdin; errors when the tool
/// exits non-zero (with the end of its stderr, scrubbed).
pub async fn restore_into(
    object: ObjectReader,
    mut cmd: Command,
    scrub: &(dyn Fn(String) -> String + Sync),
) -> anyhow::Result<()> {
    let prog = program(&cmd);
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| anyhow!("cannot start {prog}: {e}"))?;
    let tail = StderrTail::start(&mut child);
    let stdin = child.stdin.take().context("no stdin pipe")?;
    let dst = std::fs::File::from(stdin.into_owned_fd().context("stdin pipe")?);
    grow_pipe(&dst);
    let src = SyncIoBridge::new(object);
    let (fed, stdin_back) = tokio::task::spawn_blocking(move || decompress(src, dst))
        .await
        .context("the decompression thread failed")?;
    if let Err(Feed::Read(_)) = &fed {
        // Bad data: the tool must not take the truncated input as complete.
        let _ = child.start_kill();
    }
    drop(stdin_back);
    let status = child
        .wait()
        .await
        .map_err(|e| anyhow!("waiting for {prog}: {e}"))?;
    match fed {
        Err(Feed::Read(e)) => bail!(scrub(format!("reading the backup: {e}"))),
        _ if !status.success() => {
            let tail = tail.finish().await;
            bail!(exit_error(&prog, status, tail, scrub));
        }
        Err(Feed::Write(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            bail!("{prog} exited before reading all of the backup")
        }
        Err(Feed::Write(e)) => bail!("writing to {prog}: {e}"),
        Ok(()) => Ok(()),
    }
}

enum Feed {
    Read(std::io::Error),
    Write(std::io::Error),
}

/// The blocking half of a restore. On a read error the tool's stdin is
/// handed back open, so the tool can be killed before it sees the end.
fn decompress(src: impl Read, mut dst: std::fs::File) -> (Result<(), Feed>, Option<std::fs::File>) {
    let reader = std::io::BufReader::with_capacity(READ_BUF, src);
    let mut dec = match zstd::stream::read::Decoder::with_buffer(reader) {
        Ok(d) => d,
        Err(e) => return (Err(Feed::Read(e)), Some(dst)),
    };
    let mut buf = vec![0u8; READ_BUF];
    loop {
        let n = match dec.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return (Err(Feed::Read(e)), Some(dst)),
        };
        if let Err(e) = dst.write_all(&buf[..n]) {
            return (Err(Feed::Write(e)), None);
        }
    }
    (Ok(()), None)
}

/// The last [`TAIL`] bytes a tool wrote to stderr.
struct StderrTail {
    buf: Arc<Mutex<Vec<u8>>>,
    /// Whether the start was cut off.
    cut: Arc<Mutex<bool>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl StderrTail {
    fn start(child: &mut Child) -> StderrTail {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let cut = Arc::new(Mutex::new(false));
        let task = child.stderr.take().map(|mut err| {
            let (buf, cut) = (buf.clone(), cut.clone());
            tokio::spawn(async move {
                let mut chunk = vec![0u8; 8 << 10];
                while let Ok(n) = err.read(&mut chunk).await {
                    if n == 0 {
                        break;
                    }
                    let mut b = buf.lock().unwrap_or_else(|p| p.into_inner());
                    b.extend_from_slice(&chunk[..n]);
                    if b.len() > 2 * TAIL {
                        let drop_n = b.len() - TAIL;
                        b.drain(..drop_n);
                        *cut.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    }
                }
            })
        });
        StderrTail { buf, cut, task }
    }

    /// Waits (briefly) for stderr to close and returns its end as text.
    async fn finish(mut self) -> String {
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(STDERR_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
        let b = self.buf.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let mut cut = *self.cut.lock().unwrap_or_else(|p| p.into_inner());
        let mut bytes = &b[..];
        if bytes.len() > TAIL {
            bytes = &bytes[bytes.len() - TAIL..];
            cut = true;
        }
        if cut {
            // Start at a line: no half word (or half password) first.
            if let Some(i) = bytes.iter().position(|&c| c == b'\n') {
                bytes = &bytes[i + 1..];
            }
        }
        let text = String::from_utf8_lossy(bytes);
        let lines: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        let joined = lines.join("; ");
        if cut && !joined.is_empty() {
            format!("…{joined}")
        } else {
            joined
        }
    }
}

impl Drop for StderrTail {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// "pg_dump exited 1: <stderr>" or "… was killed by signal 9: …".
fn exit_error(
    prog: &str,
    status: ExitStatus,
    tail: String,
    scrub: &(dyn Fn(String) -> String + Sync),
) -> String {
    let how = match (status.code(), status.signal()) {
        (Some(c), _) => format!("{prog} exited {c}"),
        (None, Some(s)) => format!("{prog} was killed by signal {s}"),
        (None, None) => format!("{prog} failed ({status})"),
    };
    if tail.is_empty() {
        how
    } else {
        scrub(format!("{how}: {tail}"))
    }
}

/// The program's file name, for messages.
fn program(cmd: &Command) -> String {
    let p = std::path::Path::new(cmd.as_std().get_program());
    p.file_name()
        .unwrap_or(p.as_os_str())
        .to_string_lossy()
        .into_owned()
}

/// Asks for a larger pipe buffer: fewer wake-ups between tool and pipeline.
fn grow_pipe(f: &std::fs::File) {
    let _ = nix::fcntl::fcntl(f.as_raw_fd(), nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE));
}

#[cfg(test)]
mod tests;
