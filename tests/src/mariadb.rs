//! One MariaDB server per test process, for the database health checks.
//!
//! The server is started on first use by [`MariaDb::shared`] and shared by
//! every test of the process (starting one takes a second or two). Its data
//! directory is made by `mariadb-install-db` (or `mysql_install_db`) in
//! `/tmp/odk-mariadb-<pid>` (a short path: the Unix socket lives there too),
//! with small InnoDB files, and `mariadbd` (or `mysqld`) listens on a free
//! loopback port and on that socket, ignoring every `my.cnf`
//! (`--no-defaults`). A user `opsdeck_check` (password `checkpw`, from
//! `127.0.0.1` and `localhost`, with the `PROCESS` privilege) is made for the
//! checks; `root` has no password and is reached over the socket only, by
//! [`MariaDb::sql_as_root`].
//!
//! # Lifetime
//!
//! As root the server runs as the `mysql` user (which owns the directory):
//! it is started with that uid and gid directly rather than switching itself
//! (`--user=mysql` is passed too, a no-op then), because changing its
//! credentials would clear its parent-death signal. It is spawned on a
//! dedicated thread that lives as long as the server, with
//! `PR_SET_PDEATHSIG` = SIGTERM, so it shuts down when the test process
//! exits, however it exits. Nothing removes the directory at exit; the next
//! test process that starts a server removes directories left by processes
//! that no longer exist.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::Signal;
use nix::unistd::User;

use crate::proc::{self, Session};
use crate::require;

/// The user made for the health checks.
pub const CHECK_USER: &str = "opsdeck_check";
/// Its password.
pub const CHECK_PASSWORD: &str = "checkpw";

const DIR_PREFIX: &str = "odk-mariadb-";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts at a free port (another process may take the one picked).
const PORT_ATTEMPTS: u32 = 3;

/// The process's MariaDB server; see the module docs.
#[derive(Debug)]
pub struct MariaDb {
    port: u16,
    dir: PathBuf,
    socket: PathBuf,
    client: PathBuf,
}

/// The binaries a server needs, found on PATH or in `/usr/sbin`, `/usr/bin`.
struct Binaries {
    server: PathBuf,
    install_db: PathBuf,
    client: PathBuf,
}

static SHARED: OnceLock<Result<MariaDb, String>> = OnceLock::new();

impl MariaDb {
    /// The process's server, started on first call (blocking, a few
    /// seconds: call it from a multi-thread runtime or a plain thread).
    ///
    /// `Err(Skipped)` when the MariaDB server, `mariadb-install-db` or the
    /// client are missing (or, as root, the `mysql` user), outside CI only
    /// (under `CI=true` that panics). Panics when the server does not come
    /// up, with the end of its error log; every later call panics too.
    pub fn shared() -> Result<&'static MariaDb, require::Skipped> {
        let bins = find_binaries();
        require::part(
            bins.is_some(),
            "the MariaDB server, mariadb-install-db and the mariadb client",
            "apt-get install mariadb-server, or scripts/install-test-deps.sh",
        )?;
        let root = nix::unistd::geteuid().is_root();
        let mysql = if root {
            let user = User::from_name("mysql").ok().flatten();
            require::part(
                user.is_some(),
                "the mysql system user (MariaDB will not run as root)",
                "apt-get install mariadb-server creates it",
            )?;
            user
        } else {
            None
        };
        let result = SHARED.get_or_init(|| {
            let bins = bins.expect("checked above");
            remove_stale_dirs();
            start(bins, mysql.as_ref()).map_err(|e| format!("{e:#}"))
        });
        match result {
            Ok(db) => Ok(db),
            Err(e) => panic!("cannot start the test MariaDB server: {e}"),
        }
    }

    /// The loopback TCP port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://opsdeck_check@127.0.0.1:<port>/`, without the password.
    pub fn url(&self) -> String {
        format!("mysql://{CHECK_USER}@127.0.0.1:{}/", self.port)
    }

    /// The check user's name, `opsdeck_check`.
    pub fn user(&self) -> &'static str {
        CHECK_USER
    }

    /// The check user's password, `checkpw`.
    pub fn password(&self) -> &'static str {
        CHECK_PASSWORD
    }

    /// The server's Unix socket.
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// The server's directory (`data/`, the socket, `error.log`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `sql` as `root` over the socket with the `mariadb` client
    /// (`--batch --skip-column-names`) and returns its output.
    pub fn sql_as_root(&self, sql: &str) -> anyhow::Result<String> {
        root_sql(&self.client, &self.socket, sql)
    }
}

fn find_binaries() -> Option<Binaries> {
    Some(Binaries {
        server: find(&["mariadbd", "mysqld"])?,
        install_db: find(&["mariadb-install-db", "mysql_install_db"])?,
        client: find(&["mariadb", "mysql"])?,
    })
}

/// The first of `names` found on PATH or in `/usr/sbin`, `/usr/bin` (not on
/// every user's PATH).
fn find(names: &[&str]) -> Option<PathBuf> {
    let path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    names.iter().find_map(|name| {
        path.iter()
            .cloned()
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// Makes the directory and the data directory, starts the server on a
/// thread that keeps it (and its parent-death signal) alive, waits until it
/// answers and makes the check user.
fn start(bins: Binaries, mysql: Option<&User>) -> anyhow::Result<MariaDb> {
    let dir = PathBuf::from(format!("/tmp/{DIR_PREFIX}{}", std::process::id()));
    let socket = dir.join("mysqld.sock");
    remove_dir(&dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if let Some(u) = mysql {
        nix::unistd::chown(&dir, Some(u.uid), Some(u.gid))
            .with_context(|| format!("chown mysql {}", dir.display()))?;
    }
    install_db(&bins, &dir, mysql)?;

    let mut last_error = None;
    for _ in 0..PORT_ATTEMPTS {
        let port = proc::try_free_port().context("picking a free loopback port")?;
        match run_server(&bins, &dir, &socket, port, mysql) {
            Ok(()) => {
                create_check_user(&bins.client, &socket)?;
                return Ok(MariaDb {
                    port,
                    dir,
                    socket,
                    client: bins.client,
                });
            }
            Err(e) if tail(&dir.join("error.log")).contains("Address already in use") => {
                last_error = Some(e);
            }
            Err(e) => return Err(e),
        }
    }
    Err(last_error.unwrap_or_else(|| anyhow::anyhow!("no free port")))
}

/// `mariadb-install-db` into `<dir>/data`, with `root` authenticated by
/// (an empty) password rather than by the Unix user.
fn install_db(bins: &Binaries, dir: &Path, mysql: Option<&User>) -> anyhow::Result<()> {
    let mut cmd = Command::new(&bins.install_db);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .args([
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            // Passed on to the bootstrap server: small redo log (the
            // default is 96 MiB) for a small directory.
            "--innodb-log-file-size=8M",
        ]);
    if mysql.is_some() {
        cmd.arg("--user=mysql");
    }
    let out = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", bins.install_db.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}{}",
            bins.install_db.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Starts the server on a new thread that waits for it for as long as it
/// runs, and waits until it answers on the socket.
fn run_server(
    bins: &Binaries,
    dir: &Path,
    socket: &Path,
    port: u16,
    mysql: Option<&User>,
) -> anyhow::Result<()> {
    let mut cmd = Command::new(&bins.server);
    // --no-defaults must come first.
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", dir.join("data").display()))
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--port={port}"))
        .arg(format!("--pid-file={}", dir.join("mysqld.pid").display()))
        .arg(format!("--log-error={}", dir.join("error.log").display()))
        .args([
            "--bind-address=127.0.0.1",
            "--skip-networking=0",
            // Host names are never looked up: `127.0.0.1` accounts match TCP,
            // `localhost` ones the socket.
            "--skip-name-resolve",
            "--innodb-buffer-pool-size=32M",
            "--innodb-log-file-size=8M",
            // Some container file systems refuse Linux native AIO.
            "--innodb-use-native-aio=0",
        ])
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(u) = mysql {
        cmd.arg("--user=mysql")
            .uid(u.uid.as_raw())
            .gid(u.gid.as_raw());
    }
    let (tx, rx) = std::sync::mpsc::channel::<std::io::Result<u32>>();
    std::thread::Builder::new()
        .name("test-mariadb".into())
        .spawn(move || {
            // std switches uid and gid before the death signal is set, so
            // no credential change clears it afterwards.
            proc::die_with_parent(&mut cmd, Signal::SIGTERM, Session::Own);
            match cmd.spawn() {
                Ok(mut child) => {
                    let _ = tx.send(Ok(child.id()));
                    // This thread must outlive the server (PDEATHSIG).
                    let _ = child.wait();
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        })
        .context("spawning the MariaDB thread")?;
    let pid = rx
        .recv()
        .context("the MariaDB thread died")?
        .with_context(|| format!("starting {}", bins.server.display()))?;
    wait_ready(&bins.client, dir, socket, port, pid)
}

fn wait_ready(client: &Path, dir: &Path, socket: &Path, port: u16, pid: u32) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        // Ready when both the socket and the TCP port answer.
        if root_sql(client, socket, "SELECT 1").is_ok()
            && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
        {
            return Ok(());
        }
        if proc::has_exited(pid) {
            bail!(
                "the MariaDB server exited; end of {}:\n{}",
                dir.join("error.log").display(),
                tail(&dir.join("error.log"))
            );
        }
        if Instant::now() > deadline {
            proc::signal_pid(pid, Signal::SIGKILL);
            bail!(
                "the MariaDB server did not answer within {} s; end of its log:\n{}",
                READY_TIMEOUT.as_secs(),
                tail(&dir.join("error.log"))
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn create_check_user(client: &Path, socket: &Path) -> anyhow::Result<()> {
    let mut sql = String::new();
    for host in ["127.0.0.1", "localhost"] {
        sql.push_str(&format!(
            "CREATE USER IF NOT EXISTS '{CHECK_USER}'@'{host}' IDENTIFIED BY '{CHECK_PASSWORD}';\n\
             GRANT PROCESS ON *.* TO '{CHECK_USER}'@'{host}';\n"
        ));
    }
    root_sql(client, socket, &sql)
        .map(|_| ())
        .context("creating the check user")
}

/// `mariadb --no-defaults --socket=<socket> --user=root --batch
/// --skip-column-names --execute=<sql>`.
fn root_sql(client: &Path, socket: &Path, sql: &str) -> anyhow::Result<String> {
    let out = Command::new(client)
        .arg("--no-defaults")
        .arg(format!("--socket={}", socket.display()))
        .args(["--user=root", "--batch", "--skip-column-names"])
        .arg(format!("--execute={sql}"))
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", client.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            client.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn remove_dir(dir: &Path) {
    if dir.exists() {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            eprintln!("could not remove {}: {e}", dir.display());
        }
    }
}

/// Removes server directories left by test processes that no longer exist,
/// unless their server is still shutting down.
fn remove_stale_dirs() {
    let Ok(entries) = std::fs::read_dir("/tmp") else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(owner) = name
            .to_str()
            .and_then(|n| n.strip_prefix(DIR_PREFIX))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{owner}")).exists() {
            continue;
        }
        let dir = entry.path();
        let running = std::fs::read_to_string(dir.join("mysqld.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
            .is_some_and(|pid| {
                std::fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&*dir.to_string_lossy()))
            });
        if !running {
            remove_dir(&dir);
        }
    }
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}
