//! Opsdeck's own Postgres cluster, for set-ups without `DATABASE_URL`.
//!
//! The cluster lives in `<data dir>/postgres` and listens only on a Unix
//! socket in `<data dir>/run` (no TCP port, so nothing else on the host can
//! reach it; trust authentication is safe because the socket directory is
//! private to the cluster's owner). It is created on first start, reused
//! later, and stopped with a fast shutdown when [`EmbeddedPg::stop`] is called.
//! If the Opsdeck process dies without stopping it, the kernel sends the
//! postmaster SIGINT (`PR_SET_PDEATHSIG`), so no orphan keeps the data
//! directory locked.
//!
//! Postgres refuses to run as root: when Opsdeck runs as root, `initdb` and
//! `postgres` run as the unprivileged `postgres` system user, which then owns
//! the cluster's directories.
//!
//! A second Opsdeck process (e.g. `opsdeck user add` while the server runs)
//! finds the live postmaster and attaches to it instead of starting another.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::{Gid, Pid, Uid, User};
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Name of the database Opsdeck uses inside the embedded cluster.
pub const DATABASE: &str = "opsdeck";
/// Superuser created by `initdb`.
pub const SUPERUSER: &str = "opsdeck";
const PORT: u16 = 5432;
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running (or attached) embedded cluster.
#[derive(Debug)]
pub struct EmbeddedPg {
    data_dir: PathBuf,
    socket_dir: PathBuf,
    /// `Some` when this process started the postmaster and must stop it.
    child: Option<Child>,
}

/// Who runs the cluster's processes.
#[derive(Debug, Clone)]
struct RunAs {
    uid: Uid,
    gid: Gid,
}

impl EmbeddedPg {
    /// Starts the cluster under `root` (creating it on first use), or attaches
    /// to one already running there. `pg_bin` overrides binary discovery.
    pub async fn start(root: &Path, pg_bin: Option<&Path>) -> anyhow::Result<EmbeddedPg> {
        let root = absolute(root)?;
        let bin = find_binaries(pg_bin)?;
        let run_as = run_as()?;
        let data_dir = root.join("postgres");
        let socket_dir = root.join("run");
        prepare_dirs(&root, &data_dir, &socket_dir, run_as.as_ref())?;

        let socket_path = socket_dir.join(format!(".s.PGSQL.{PORT}"));
        if socket_path.as_os_str().len() > 100 {
            bail!(
                "data directory {} is too deep: the Postgres socket path {} would exceed the \
                 Unix socket limit; choose a shorter OPSDECK_DATA_DIR",
                root.display(),
                socket_path.display()
            );
        }

        if let Some(pid) = live_postmaster(&data_dir) {
            tracing::info!(pid, dir = %data_dir.display(), "attaching to the running embedded Postgres");
            let mut pg = EmbeddedPg {
                data_dir,
                socket_dir,
                child: None,
            };
            pg.wait_ready(None).await?;
            pg.ensure_database().await?;
            return Ok(pg);
        }

        if !data_dir.join("PG_VERSION").exists() {
            init_cluster(&bin, &data_dir, run_as.as_ref())?;
        }

        let log_path = root.join("postgres.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("opening {}", log_path.display()))?;
        let mut cmd = Command::new(bin.join("postgres"));
        cmd.arg("-D")
            .arg(&data_dir)
            .arg("-k")
            .arg(&socket_dir)
            .arg("-p")
            .arg(PORT.to_string())
            .args([
                "-c",
                "listen_addresses=",
                "-c",
                "unix_socket_permissions=0700",
            ])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if let Some(r) = &run_as {
            cmd.uid(r.uid.as_raw()).gid(r.gid.as_raw());
        }
        // SAFETY: only async-signal-safe calls (prctl, setsid) between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from)?;
                // Own process group: a Ctrl-C in the terminal reaches Opsdeck,
                // which then shuts Postgres down in order.
                nix::unistd::setsid().map_err(std::io::Error::from)?;
                Ok(())
            });
        }
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}", bin.join("postgres").display()))?;
        tracing::info!(pid = child.id(), dir = %data_dir.display(), "started embedded Postgres");
        let mut pg = EmbeddedPg {
            data_dir,
            socket_dir,
            child: Some(child),
        };
        if let Err(e) = pg.wait_ready(Some(&log_path)).await {
            pg.stop().await;
            return Err(e);
        }
        pg.ensure_database().await?;
        Ok(pg)
    }

    /// Connection options for the Opsdeck database in this cluster.
    pub fn connect_options(&self) -> PgConnectOptions {
        self.options_for(DATABASE)
    }

    /// A `postgres://` URL for tools that want one (percent-encoded socket path).
    pub fn url(&self, database: &str) -> String {
        let host: String = self
            .socket_dir
            .to_string_lossy()
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        format!("postgres://{SUPERUSER}@localhost:{PORT}/{database}?host={host}")
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Whether this process started the postmaster (and so must stop it).
    pub fn owns_process(&self) -> bool {
        self.child.is_some()
    }

    fn options_for(&self, database: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&self.socket_dir)
            .port(PORT)
            .username(SUPERUSER)
            .database(database)
            .log_statements(tracing::log::LevelFilter::Trace)
    }

    async fn wait_ready(&mut self, log: Option<&Path>) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let opts = self.options_for("postgres");
        loop {
            match opts.connect().await {
                Ok(conn) => {
                    let _ = conn.close().await;
                    return Ok(());
                }
                Err(e) => {
                    if let Some(child) = self.child.as_mut() {
                        if let Some(status) = child.try_wait()? {
                            self.child = None;
                            bail!(
                                "embedded Postgres exited during start-up ({status}); last log lines:\n{}",
                                log.map(tail).unwrap_or_default()
                            );
                        }
                    }
                    if Instant::now() > deadline {
                        bail!("embedded Postgres not ready after {START_TIMEOUT:?}: {e}");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    async fn ensure_database(&self) -> anyhow::Result<()> {
        let mut conn = self.options_for("postgres").connect().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
                .bind(DATABASE)
                .fetch_one(&mut conn)
                .await?;
        if !exists {
            // Identifier is a constant, not input.
            sqlx::query(&format!("CREATE DATABASE {DATABASE}"))
                .execute(&mut conn)
                .await?;
        }
        conn.close().await?;
        Ok(())
    }

    /// Fast shutdown (SIGINT) of a postmaster this process started; waits for
    /// it to exit (escalating to SIGQUIT after 30 s). Attached clusters are
    /// left running.
    pub async fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pid = Pid::from_raw(child.id() as i32);
        let _ = kill(pid, Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() > deadline => {
                    tracing::warn!("embedded Postgres did not stop in 30 s; sending SIGQUIT");
                    let _ = kill(pid, Signal::SIGQUIT);
                    let _ = child.wait();
                    break;
                }
                Ok(None) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
        tracing::info!("embedded Postgres stopped");
    }
}

impl Drop for EmbeddedPg {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // Last resort; `stop` is the orderly path.
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGINT);
        }
    }
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_owned())
    } else {
        Ok(std::env::current_dir()?.join(p))
    }
}

/// Finds `initdb` and `postgres`: the given directory, else the newest
/// `/usr/lib/postgresql/*/bin`, else `PATH`.
fn find_binaries(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    let has_both = |d: &Path| d.join("initdb").is_file() && d.join("postgres").is_file();
    if let Some(dir) = explicit {
        if has_both(dir) {
            return Ok(dir.to_owned());
        }
        bail!(
            "PostgreSQL server binaries (initdb, postgres) not found in OPSDECK_PG_BIN={}",
            dir.display()
        );
    }
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let v = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((v, e.path().join("bin")))
        })
        .filter(|(_, d)| has_both(d))
        .collect();
    versions.sort();
    if let Some((_, dir)) = versions.pop() {
        return Ok(dir);
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            if has_both(&dir) {
                return Ok(dir);
            }
        }
    }
    bail!(
        "PostgreSQL server binaries (initdb, postgres) not found in /usr/lib/postgresql/*/bin or PATH. \
         Install them (apt-get install postgresql), point OPSDECK_PG_BIN at them, or set DATABASE_URL \
         to use an existing server"
    )
}

fn run_as() -> anyhow::Result<Option<RunAs>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let user = User::from_name("postgres")?.ok_or_else(|| {
        anyhow!(
            "running as root, and Postgres refuses to run as root, but there is no `postgres` \
             system user to run it as; create one (adduser --system --group postgres), run \
             Opsdeck as an unprivileged user, or set DATABASE_URL"
        )
    })?;
    Ok(Some(RunAs {
        uid: user.uid,
        gid: user.gid,
    }))
}

fn prepare_dirs(
    root: &Path,
    data: &Path,
    run: &Path,
    run_as: Option<&RunAs>,
) -> anyhow::Result<()> {
    if root.exists() && !root.is_dir() {
        bail!(
            "data directory {} exists but is not a directory",
            root.display()
        );
    }
    fs::create_dir_all(root)
        .with_context(|| format!("cannot create data directory {}", root.display()))?;
    let probe = root.join(".write-test");
    fs::write(&probe, b"")
        .with_context(|| format!("data directory {} is not writable", root.display()))?;
    let _ = fs::remove_file(&probe);
    for dir in [data, run] {
        if !dir.exists() {
            fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    }
    if let Some(r) = run_as {
        // The cluster's user must own its directories and reach them.
        let meta = fs::metadata(root)?;
        if meta.mode() & 0o001 == 0 {
            fs::set_permissions(
                root,
                fs::Permissions::from_mode((meta.mode() & 0o7777) | 0o711),
            )?;
        }
        for ancestor in root.ancestors().skip(1) {
            let m = fs::metadata(ancestor)?;
            let reachable = m.mode() & 0o001 != 0 || m.uid() == r.uid.as_raw();
            if !reachable {
                bail!(
                    "the embedded Postgres runs as the `postgres` user, which cannot reach the data \
                     directory {} because {} (mode {:o}) is closed to other users; set \
                     OPSDECK_DATA_DIR to a directory outside it (e.g. /var/lib/opsdeck)",
                    root.display(),
                    ancestor.display(),
                    m.mode() & 0o777
                );
            }
        }
        for dir in [data, run] {
            chown_recursive(dir, r)?;
        }
    }
    Ok(())
}

fn chown_recursive(path: &Path, r: &RunAs) -> anyhow::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.uid() != r.uid.as_raw() || meta.gid() != r.gid.as_raw() {
        nix::unistd::chown(path, Some(r.uid), Some(r.gid))
            .with_context(|| format!("chown {} to postgres", path.display()))?;
    }
    if meta.is_dir() && meta.uid() != r.uid.as_raw() {
        for entry in fs::read_dir(path)? {
            chown_recursive(&entry?.path(), r)?;
        }
    }
    Ok(())
}

fn init_cluster(bin: &Path, data: &Path, run_as: Option<&RunAs>) -> anyhow::Result<()> {
    if fs::read_dir(data)?.next().is_some() {
        bail!(
            "{} is not empty but holds no Postgres cluster (no PG_VERSION); move it away or choose \
             another OPSDECK_DATA_DIR",
            data.display()
        );
    }
    tracing::info!(dir = %data.display(), "creating the embedded Postgres cluster");
    let mut cmd = Command::new(bin.join("initdb"));
    cmd.arg("-D")
        .arg(data)
        .args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ])
        .stdin(Stdio::null());
    if let Some(r) = run_as {
        cmd.uid(r.uid.as_raw()).gid(r.gid.as_raw());
    }
    let out = cmd
        .output()
        .with_context(|| format!("running {}", bin.join("initdb").display()))?;
    if !out.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// The postmaster's pid if `postmaster.pid` names a live process.
fn live_postmaster(data: &Path) -> Option<i32> {
    let text = fs::read_to_string(data.join("postmaster.pid")).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    // Signal 0 checks existence; EPERM also means it exists.
    match kill(Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => {
            let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            String::from_utf8_lossy(&cmdline)
                .contains("postgres")
                .then_some(pid)
        }
        Err(_) => None,
    }
}

fn tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}
