//! A real OpenSSH server (Debian's `openssh-server`) on loopback in front
//! of a private `dockerd`, for the `ssh://` engine tests.
//!
//! Everything is the run's own: a host key and a client key generated with
//! `ssh-keygen`, an `authorized_keys` holding the client key for every
//! user, a `sshd_config` that listens on `127.0.0.1:<free port>` only and
//! sets `DOCKER_HOST` to the private engine's socket for the session (so
//! `docker system dial-stdio` on "the host" reaches that engine). Logins:
//! `root`, and [`NO_DOCKER_USER`] (a system user the test deps create,
//! outside the docker group: the socket refuses it). [`Sshd::stop`] and
//! [`Sshd::start`] take the host away and bring it back on the same port.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::proc::{self, Owned};
use crate::require;

/// A login without access to the Docker socket.
pub const NO_DOCKER_USER: &str = "opsdeck-nodocker";
const SSHD: &str = "/usr/sbin/sshd";
const READY_TIMEOUT: Duration = Duration::from_secs(20);
static NEXT: AtomicU32 = AtomicU32::new(1);

pub struct Sshd {
    dir: PathBuf,
    port: u16,
    child: Option<Owned>,
}

fn keygen(path: &Path) {
    let ok = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "opsdeck-test", "-f"])
        .arg(path)
        .stdin(Stdio::null())
        .status()
        .expect("running ssh-keygen");
    assert!(ok.success(), "ssh-keygen failed for {}", path.display());
}

fn user_exists(name: &str) -> bool {
    std::fs::read_to_string("/etc/passwd")
        .map(|p| p.lines().any(|l| l.split(':').next() == Some(name)))
        .unwrap_or(false)
}

impl Sshd {
    /// Starts sshd for the engine whose socket is `docker_sock`.
    /// `Err(Skipped)` when openssh-server or the test user is missing,
    /// outside CI only (under `CI=true` that panics).
    pub fn start_for(docker_sock: &Path) -> Result<Sshd, require::Skipped> {
        require::part(
            Path::new(SSHD).is_file(),
            "sshd (Debian's openssh-server)",
            "apt-get install openssh-server, or scripts/install-test-deps.sh",
        )?;
        require::part(
            user_exists(NO_DOCKER_USER),
            "the test login opsdeck-nodocker",
            "scripts/install-test-deps.sh (useradd --system opsdeck-nodocker)",
        )?;
        let dir = PathBuf::from(format!(
            "/tmp/odk-sshd-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the sshd directory");
        keygen(&dir.join("host_key"));
        keygen(&dir.join("client_key"));
        std::fs::copy(dir.join("client_key.pub"), dir.join("authorized_keys"))
            .expect("authorized_keys");
        // sshd's privilege separation directory.
        std::fs::create_dir_all("/run/sshd").expect("/run/sshd");
        let port = proc::free_port();
        let config = format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {dir}/host_key\nPidFile {dir}/sshd.pid\n\
             AuthorizedKeysFile {dir}/authorized_keys\nStrictModes no\nUsePAM no\n\
             PasswordAuthentication no\nKbdInteractiveAuthentication no\n\
             PermitRootLogin prohibit-password\nAllowUsers root {NO_DOCKER_USER}\n\
             SetEnv DOCKER_HOST=unix://{sock}\nLogLevel VERBOSE\n",
            dir = dir.display(),
            sock = docker_sock.display(),
        );
        std::fs::write(dir.join("sshd_config"), config).expect("sshd_config");
        let mut s = Sshd {
            dir,
            port,
            child: None,
        };
        s.start();
        Ok(s)
    }

    /// Starts sshd again (after [`Sshd::stop`]) on the same port.
    pub fn start(&mut self) {
        let log = std::fs::File::create(self.dir.join("sshd.log")).expect("the sshd log");
        let mut cmd = Command::new(SSHD);
        cmd.args(["-D", "-e", "-f"])
            .arg(self.dir.join("sshd_config"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = Owned::spawn("test-sshd", cmd, Duration::from_secs(5)).expect("starting sshd");
        let deadline = Instant::now() + READY_TIMEOUT;
        while !self.answers() {
            if child.exited() || Instant::now() > deadline {
                panic!("sshd did not come up; its log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.child = Some(child);
    }

    /// Whether sshd sends its banner.
    fn answers(&self) -> bool {
        use std::io::Read;
        let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        let mut banner = [0u8; 8];
        s.read_exact(&mut banner).is_ok() && banner.starts_with(b"SSH-2.0")
    }

    /// Stops sshd, open sessions included: each connection's process
    /// leads a session of its own, so they are signalled one by one (the
    /// listener's children, found while it still runs), then the listener.
    pub fn stop(&mut self) {
        if let Some(c) = self.child.take() {
            for pid in proc::children_of(c.pid()) {
                proc::signal_pid(pid, nix::sys::signal::Signal::SIGTERM);
            }
            c.stop();
        }
    }

    /// `ssh://user@127.0.0.1:<port>`.
    pub fn endpoint(&self, user: &str) -> String {
        format!("ssh://{user}@127.0.0.1:{}", self.port)
    }

    /// The client's private key file (authorised for every login).
    pub fn client_key(&self) -> PathBuf {
        self.dir.join("client_key")
    }

    /// The host's public key, `ssh-ed25519 AAAA…`.
    pub fn host_key(&self) -> String {
        let pubkey = std::fs::read_to_string(self.dir.join("host_key.pub")).expect("the host key");
        let mut parts = pubkey.split_whitespace();
        format!(
            "{} {}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        )
    }

    /// The host key's fingerprint as `ssh-keygen -lf` prints it.
    pub fn host_fingerprint(&self) -> String {
        fingerprint(&self.dir.join("host_key.pub"))
    }

    /// A key pair that is not the host's (for the mismatch test): its
    /// public key line and fingerprint.
    pub fn other_key(&self) -> (String, String) {
        let path = self.dir.join("other_key");
        if !path.exists() {
            keygen(&path);
        }
        let pubkey = std::fs::read_to_string(path.with_extension("pub")).expect("the other key");
        let mut parts = pubkey.split_whitespace();
        let line = format!(
            "{} {}",
            parts.next().unwrap_or(""),
            parts.next().unwrap_or("")
        );
        (line, fingerprint(&path.with_extension("pub")))
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("sshd.log")).unwrap_or_default()
    }
}

fn fingerprint(pubkey: &Path) -> String {
    let out = Command::new("ssh-keygen")
        .arg("-lf")
        .arg(pubkey)
        .output()
        .expect("running ssh-keygen -l");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .nth(1)
        .expect("a fingerprint")
        .to_owned()
}

impl Drop for Sshd {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
