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
mod tests {
    use super::*;
    use crate::backups::storage::LocalStore;
    use std::sync::atomic::AtomicUsize;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("sh");
        c.args(["-c", script]);
        c
    }

    fn no_scrub(s: String) -> String {
        s.replace("hunter2", "***")
    }

    fn leftovers(dir: &std::path::Path) -> Vec<String> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_dir() {
                out.extend(leftovers(&e.path()));
            } else {
                out.push(e.path().display().to_string());
            }
        }
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dump_checksum_restore_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::open(tmp.path().join("store").to_str().unwrap())
            .await
            .unwrap();
        // Random bytes, then compressible text: both paths of the encoder.
        let src = tmp.path().join("src.bin");
        let script = format!(
            "head -c 3000000 /dev/urandom > {p}; yes 'some log line 12345' | head -c 5000000 >> {p}; \
             printf tail >> {p}; cat {p}",
            p = src.display()
        );
        let calls = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(Mutex::new((0u64, 0u64)));
        let (c2, l2) = (calls.clone(), last.clone());
        let progress: Progress = Arc::new(move |raw, stored| {
            c2.fetch_add(1, Ordering::Relaxed);
            *l2.lock().unwrap() = (raw, stored);
        });
        let up = store.create("p/1/db.dump.zst").await.unwrap();
        let got = dump_to(sh(&script), 3, up, progress, &no_scrub)
            .await
            .unwrap();
        let original = std::fs::read(&src).unwrap();
        assert_eq!(got.raw_bytes, original.len() as u64);
        assert!(got.bytes < got.raw_bytes, "{got:?}");
        assert!(calls.load(Ordering::Relaxed) >= 1);
        assert_eq!(*last.lock().unwrap(), (got.raw_bytes, got.bytes));
        assert_eq!(
            leftovers(&store.root),
            vec![store.root.join("p/1/db.dump.zst").display().to_string()]
        );

        let (sum, size) = checksum(store.read("p/1/db.dump.zst").await.unwrap())
            .await
            .unwrap();
        assert_eq!((sum.as_str(), size), (got.sha256.as_str(), got.bytes));
        let disk = std::fs::read(store.root.join("p/1/db.dump.zst")).unwrap();
        assert_eq!(hex::encode(Sha256::digest(&disk)), got.sha256);
        // A plain zstd frame (the CLI can read it too).
        assert_eq!(zstd::decode_all(&disk[..]).unwrap(), original);

        let out = tmp.path().join("restored.bin");
        let f = store.read("p/1/db.dump.zst").await.unwrap();
        restore_into(f, sh(&format!("cat > {}", out.display())), &no_scrub)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), original);
    }

    #[tokio::test]
    async fn empty_output_is_a_valid_object() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::open(tmp.path().to_str().unwrap())
            .await
            .unwrap();
        let up = store.create("empty").await.unwrap();
        let got = dump_to(sh("true"), 1, up, Arc::new(|_, _| {}), &no_scrub)
            .await
            .unwrap();
        assert_eq!(got.raw_bytes, 0);
        assert!(got.bytes > 0);
        let out = tmp.path().join("out");
        restore_into(
            store.read("empty").await.unwrap(),
            sh(&format!("cat > {}", out.display())),
            &no_scrub,
        )
        .await
        .unwrap();
        assert_eq!(std::fs::read(&out).unwrap(), b"");
    }

    #[tokio::test]
    async fn a_failing_tool_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::open(tmp.path().to_str().unwrap())
            .await
            .unwrap();
        let up = store.create("x/fail.zst").await.unwrap();
        let script = "head -c 500000 /dev/urandom; echo 'boom hunter2' >&2; exit 3";
        let err = dump_to(sh(script), 3, up, Arc::new(|_, _| {}), &no_scrub)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "sh exited 3: boom ***");
        assert!(
            leftovers(tmp.path()).is_empty(),
            "{:?}",
            leftovers(tmp.path())
        );

        let up = store.create("y").await.unwrap();
        let err = dump_to(sh("kill -9 $$"), 3, up, Arc::new(|_, _| {}), &no_scrub)
            .await
            .unwrap_err()
            .to_string();
        assert_eq!(err, "sh was killed by signal 9");

        let up = store.create("z").await.unwrap();
        let err = dump_to(
            Command::new("/nonexistent/pg_dump"),
            3,
            up,
            Arc::new(|_, _| {}),
            &no_scrub,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("cannot start pg_dump"), "{err}");
        assert!(
            leftovers(tmp.path()).is_empty(),
            "{:?}",
            leftovers(tmp.path())
        );
    }

    /// A reader that gives `n` bytes, then fails or ends.
    struct Feed {
        left: usize,
        fail: bool,
    }

    impl Read for Feed {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.left == 0 {
                return if self.fail {
                    Err(std::io::Error::other("the engine went away"))
                } else {
                    Ok(0)
                };
            }
            let n = buf.len().min(self.left);
            buf[..n].fill(b'z');
            self.left -= n;
            Ok(n)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_is_an_input_and_its_error_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::open(tmp.path().to_str().unwrap())
            .await
            .unwrap();
        let up = store.create("r/ok").await.unwrap();
        let got = dump_to(
            Input::reader(
                "a volume",
                Feed {
                    left: 3_000_000,
                    fail: false,
                },
            ),
            3,
            up,
            Arc::new(|_, _| {}),
            &no_scrub,
        )
        .await
        .unwrap();
        assert_eq!(got.raw_bytes, 3_000_000);
        let disk = std::fs::read(store.root.join("r/ok")).unwrap();
        assert_eq!(zstd::decode_all(&disk[..]).unwrap(), vec![b'z'; 3_000_000]);
        assert_eq!(hex::encode(Sha256::digest(&disk)), got.sha256);

        let up = store.create("r/bad").await.unwrap();
        let err = dump_to(
            Input::reader(
                "volume data",
                Feed {
                    left: 2_500_000,
                    fail: true,
                },
            ),
            3,
            up,
            Arc::new(|_, _| {}),
            &no_scrub,
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(err, "reading volume data: the engine went away");
        assert_eq!(
            leftovers(tmp.path()),
            vec![store.root.join("r/ok").display().to_string()]
        );
    }

    #[tokio::test]
    async fn long_stderr_keeps_its_end() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::open(tmp.path().to_str().unwrap())
            .await
            .unwrap();
        let up = store.create("x").await.unwrap();
        let script =
            "i=0; while [ $i -lt 2000 ]; do echo \"line $i\" >&2; i=$((i+1)); done; exit 1";
        let err = dump_to(sh(script), 3, up, Arc::new(|_, _| {}), &no_scrub)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("sh exited 1: …line "), "{err}");
        assert!(err.ends_with("line 1999"), "{err}");
        assert!(err.len() < TAIL * 5 / 4, "{}", err.len());
    }

    #[tokio::test]
    async fn restore_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let store = LocalStore::open(tmp.path().to_str().unwrap())
            .await
            .unwrap();
        let up = store.create("ok").await.unwrap();
        dump_to(sh("seq 1 200000"), 3, up, Arc::new(|_, _| {}), &no_scrub)
            .await
            .unwrap();
        // The tool fails.
        let err = restore_into(
            store.read("ok").await.unwrap(),
            sh("cat >/dev/null; echo 'restore failed hunter2' >&2; exit 2"),
            &no_scrub,
        )
        .await
        .unwrap_err()
        .to_string();
        assert_eq!(err, "sh exited 2: restore failed ***");
        // The tool stops reading early but says it succeeded.
        let err = restore_into(store.read("ok").await.unwrap(), sh("exit 0"), &no_scrub)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("before reading all"), "{err}");
        // Corrupted data: the tool is killed before it sees an end.
        let mut bytes = std::fs::read(store.root.join("ok")).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(tmp.path().join("bad"), &bytes).unwrap();
        let marker = tmp.path().join("completed");
        let err = restore_into(
            store.read("bad").await.unwrap(),
            sh(&format!("cat >/dev/null && touch {}", marker.display())),
            &no_scrub,
        )
        .await
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("reading the backup:"), "{err}");
        assert!(!marker.exists());
    }
}
