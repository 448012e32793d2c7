//! Engines over SSH (`ssh://user@host[:port]`), the way the docker CLI
//! reaches them: the system's OpenSSH client runs `docker system
//! dial-stdio` on the host, and the Docker API is spoken over that
//! process's stdin and stdout.
//!
//! - **Host key, pinned.** The key is fetched once with `ssh-keyscan`
//!   ([`scan_host_keys`]) and shown by its SHA-256 fingerprint for the
//!   admin to confirm (or the fingerprint is given up front); the engine
//!   stores the key, and every connection checks it strictly through a
//!   known-hosts file of its own (`StrictHostKeyChecking=yes`, a host key
//!   alias, no global or user files). A changed key is refused with both
//!   fingerprints, never accepted.
//! - **Argv only.** `ssh` gets its options, `-l user`, `-p port`, `--`,
//!   the host and the constant remote command; no user input reaches a
//!   shell on either side. `-F /dev/null`: the Opsdeck user's SSH config
//!   does not change what an engine does. The private key is a file path on
//!   the Opsdeck host (the key itself is never stored).
//! - **One TCP connection per engine.** `ControlMaster=auto` with a
//!   control socket per engine and `ControlPersist`: the many HTTP
//!   connections of a busy page are channels of one SSH session (at most
//!   [`MUX_MAX`] at once, within sshd's default `MaxSessions`; more open
//!   their own connection). Each dial-stdio process is one HTTP/1.1
//!   connection, kept alive and reused by the client's pool.
//! - **Errors say what failed** ([`explain`]): the name not resolved, the
//!   connection refused or timed out, the host key changed, authentication
//!   refused, `docker` missing on the host, the socket not allowed to the
//!   user, the daemon not running. [`preflight`] answers `/_ping` through
//!   the same command before the engine counts as connected, so the
//!   supervisor's "unreachable" carries that reason.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _};
use base64::Engine as _;
use bollard::{BollardRequest, Docker};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How long the SSH handshake may take.
const CONNECT_TIMEOUT_S: u32 = 10;
/// How long an idle control master stays up after its last channel.
const PERSIST_S: u32 = 60;
/// The remote command: constant, never built from input.
const DIAL: [&str; 3] = ["docker", "system", "dial-stdio"];
/// Stderr kept per process for the error message.
const STDERR_KEEP: usize = 4096;
/// Connections carried by the shared session at once: sshd's default
/// `MaxSessions` is 10 (one is kept for a second client of the master).
/// Further connections (long log follows, a burst) open their own.
const MUX_MAX: usize = 8;

/// An SSH engine's address and credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshTarget {
    pub user: Option<String>,
    pub host: String,
    pub port: u16,
    /// Private key file on the Opsdeck host; `None`: ssh's defaults.
    pub key: Option<String>,
    /// The pinned host key, `<type> <base64>`.
    pub host_key: String,
}

/// Splits `ssh://[user@]host[:port]`; the error says what is wrong.
pub fn parse_url(url: &str) -> Result<(Option<String>, String, u16), String> {
    let rest = url
        .strip_prefix("ssh://")
        .ok_or("an SSH endpoint starts with ssh://")?;
    let (user, hostport) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    if let Some(u) = user {
        let ok = u.len() <= 32
            && u.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            && u.chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c));
        if !ok {
            return Err(format!("\"{u}\" is not a user name"));
        }
    }
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("an IPv6 address needs its ]")?;
        if h.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("\"{h}\" is not an IPv6 address"));
        }
        (h.to_owned(), after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h.to_owned(), Some(p)),
            None => (hostport.to_owned(), None),
        }
    };
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && !host.starts_with('-')
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-:".contains(c));
    if !host_ok {
        return Err(format!("\"{host}\" is not a host name or address"));
    }
    let port = match port {
        None => 22,
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("\"{p}\" is not a port"))?,
    };
    Ok((user.map(str::to_owned), host, port))
}

/// A host key as `ssh-keyscan` gives it, with its fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostKey {
    /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
    pub key_type: String,
    /// `<type> <base64>`, as stored.
    pub key: String,
    /// `SHA256:…`, as `ssh-keygen -l` and ssh's own messages show it.
    pub fingerprint: String,
}

/// Checks a `<type> <base64>` key line and gives it back with its
/// fingerprint.
pub fn parse_host_key(line: &str) -> Result<HostKey, String> {
    let mut parts = line.split_whitespace();
    let (Some(t), Some(b64)) = (parts.next(), parts.next()) else {
        return Err("a host key is \"<type> <base64>\", e.g. \"ssh-ed25519 AAAA…\"".into());
    };
    let known = t.starts_with("ssh-") || t.starts_with("ecdsa-sha2-") || t.starts_with("sk-");
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| "the host key's second part is not base64".to_owned())?;
    if !known || blob.len() < 16 {
        return Err(format!("\"{t}\" is not an SSH host key type"));
    }
    let digest = Sha256::digest(&blob);
    Ok(HostKey {
        key_type: t.to_owned(),
        key: format!("{t} {b64}"),
        fingerprint: format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        ),
    })
}

/// The host keys `host` offers (ed25519, ECDSA, RSA), fetched with
/// `ssh-keyscan`.
pub async fn scan_host_keys(host: &str, port: u16) -> anyhow::Result<Vec<HostKey>> {
    let out = Command::new("ssh-keyscan")
        .args(["-T", "5", "-t", "ed25519,ecdsa,rsa", "-p"])
        .arg(port.to_string())
        .arg("--")
        .arg(host)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(15), out)
        .await
        .map_err(|_| anyhow!("{host}:{port} did not offer a host key within 15 s"))?
        .context("running ssh-keyscan (is openssh-client installed?)")?;
    let keys: Vec<HostKey> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once(' ').and_then(|(_, k)| parse_host_key(k).ok()))
        .collect();
    if keys.is_empty() {
        let err = String::from_utf8_lossy(&out.stderr);
        let at = Place {
            host,
            port,
            user: None,
            pinned: None,
        };
        let why = explain(&err, &at);
        bail!("no host key from {host}:{port}: {why}");
    }
    Ok(keys)
}

/// Files of one engine: its known-hosts file and control socket, in a
/// directory private to this user, named by a hash of the target (two
/// servers of one machine share the master safely).
struct Files {
    dir: PathBuf,
    alias: String,
}

impl Files {
    fn of(t: &SshTarget) -> anyhow::Result<Files> {
        let id = hex::encode(&Sha256::digest(format!("{t:?}").as_bytes())[..8]);
        let uid = nix::unistd::getuid();
        let dir = std::env::temp_dir()
            .join(format!("opsdeck-ssh-{uid}"))
            .join(&id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        use std::os::unix::fs::PermissionsExt;
        for d in [dir.parent().unwrap_or(&dir), &dir] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o700))?;
        }
        let alias = format!("opsdeck-engine-{id}");
        std::fs::write(dir.join("known_hosts"), format!("{alias} {}\n", t.host_key))
            .context("writing the engine's known-hosts file")?;
        Ok(Files { dir, alias })
    }
}

/// The `ssh` command for `remote` on the target; `mux`: a channel of the
/// engine's shared SSH session (else a connection of its own).
fn command(t: &SshTarget, f: &Files, mux: bool, remote: &[&str]) -> Command {
    let mut c = Command::new("ssh");
    c.arg("-F").arg("/dev/null");
    let mut opt = |o: String| {
        c.arg("-o").arg(o);
    };
    opt("BatchMode=yes".into());
    opt("StrictHostKeyChecking=yes".into());
    opt(format!(
        "UserKnownHostsFile={}",
        f.dir.join("known_hosts").display()
    ));
    opt("GlobalKnownHostsFile=/dev/null".into());
    opt(format!("HostKeyAlias={}", f.alias));
    opt(format!("ConnectTimeout={CONNECT_TIMEOUT_S}"));
    opt("ServerAliveInterval=15".into());
    opt("ServerAliveCountMax=3".into());
    if mux {
        opt("ControlMaster=auto".into());
        opt(format!("ControlPath={}", f.dir.join("cm").display()));
        opt(format!("ControlPersist={PERSIST_S}"));
    } else {
        opt("ControlMaster=no".into());
        opt("ControlPath=none".into());
    }
    opt("LogLevel=ERROR".into());
    if let Some(key) = &t.key {
        opt("IdentitiesOnly=yes".into());
        c.arg("-i").arg(key);
    }
    if let Some(u) = &t.user {
        c.arg("-l").arg(u);
    }
    c.arg("-p").arg(t.port.to_string()).arg("--").arg(&t.host);
    c.args(remote);
    c.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Where an error happened, for [`explain`].
pub struct Place<'a> {
    pub host: &'a str,
    pub port: u16,
    pub user: Option<&'a str>,
    /// The pinned key's fingerprint, when there is one.
    pub pinned: Option<String>,
}

/// What went wrong, from ssh's (and the remote docker CLI's) stderr.
pub fn explain(stderr: &str, at: &Place<'_>) -> String {
    let (host, port) = (at.host, at.port);
    let s = stderr;
    let user = at.user.unwrap_or("(default user)");
    if s.contains("Could not resolve hostname") {
        return format!("DNS: the name {host} does not resolve");
    }
    if s.contains("Connection refused") {
        return format!("connection refused by {host}:{port} (is sshd running?)");
    }
    if s.contains("timed out") {
        return format!("no answer from {host}:{port} (timed out)");
    }
    if s.contains("No route to host") || s.contains("Network is unreachable") {
        return format!("no route to {host}");
    }
    if s.contains("REMOTE HOST IDENTIFICATION HAS CHANGED")
        || s.contains("Host key verification failed")
    {
        let offered = s
            .split_whitespace()
            .find(|w| w.starts_with("SHA256:"))
            .map(|w| w.trim_end_matches('.'))
            .unwrap_or("(not shown)");
        let pinned = at.pinned.as_deref().unwrap_or("(none)");
        return format!(
            "host key mismatch: {host} offered {offered}, the pinned key is {pinned}; \
             refused (check the host, then register the engine again with its new key)"
        );
    }
    if s.contains("Load key") || s.contains("no such identity") {
        return "the private key file cannot be read".into();
    }
    if s.contains("Permission denied (") {
        return format!("authentication refused for user {user} (wrong key or user)");
    }
    if s.contains("docker: command not found")
        || s.contains("docker: not found")
        || s.contains("\"docker\": executable file not found")
    {
        return format!("docker is not installed on {host} (or not in the PATH of {user})");
    }
    // The CLI's own words, or dial-stdio's (`failed to open the raw stream
    // connection: dial unix …: connect: permission denied`).
    let raw = s.contains("raw stream connection") || s.contains("dial unix");
    if s.contains("permission denied while trying to connect to the Docker daemon")
        || (raw && s.contains("permission denied"))
    {
        return format!(
            "user {user} may not use the Docker socket on {host} (add it to the docker group)"
        );
    }
    if s.contains("Cannot connect to the Docker daemon")
        || s.contains("Is the docker daemon running")
        || (raw && (s.contains("no such file or directory") || s.contains("connection refused")))
    {
        return format!("the Docker daemon is not running on {host}");
    }
    let last = s.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    if last.is_empty() {
        "the connection ended without a word".into()
    } else {
        format!("ssh: {}", last.trim())
    }
}

/// One `docker system dial-stdio` process as a byte stream.
struct DialStdio {
    stdin: ChildStdin,
    stdout: ChildStdout,
    /// Killed when the stream is dropped.
    _child: Child,
    _slot: Option<MuxSlot>,
}

/// A place on the shared session, given back when the stream ends.
struct MuxSlot(Arc<AtomicUsize>);

impl MuxSlot {
    fn take(count: &Arc<AtomicUsize>) -> Option<MuxSlot> {
        count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MUX_MAX).then_some(n + 1)
            })
            .ok()
            .map(|_| MuxSlot(count.clone()))
    }
}

impl Drop for MuxSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Starts a dial-stdio process (on the shared session when it has room);
/// its stderr is kept in `stderr`.
fn dial(
    t: &SshTarget,
    f: &Files,
    muxed: &Arc<AtomicUsize>,
    stderr: Arc<Mutex<String>>,
) -> std::io::Result<DialStdio> {
    let slot = MuxSlot::take(muxed);
    let mut child = command(t, f, slot.is_some(), &DIAL).spawn()?;
    let (Some(stdin), Some(stdout), Some(mut err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(std::io::Error::other("ssh started without its pipes"));
    };
    tokio::spawn(async move {
        let mut buf = [0u8; 1024];
        while let Ok(n) = err.read(&mut buf).await {
            if n == 0 {
                break;
            }
            let mut kept = stderr.lock().unwrap_or_else(|p| p.into_inner());
            kept.push_str(&String::from_utf8_lossy(&buf[..n]));
            if kept.len() > STDERR_KEEP {
                let cut = kept.len() - STDERR_KEEP;
                let cut = (cut..kept.len())
                    .find(|i| kept.is_char_boundary(*i))
                    .unwrap_or(0);
                kept.drain(..cut);
            }
        }
    });
    Ok(DialStdio {
        stdin,
        stdout,
        _child: child,
        _slot: slot,
    })
}

impl AsyncRead for DialStdio {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl AsyncWrite for DialStdio {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

/// The stream as hyper takes it.
struct SshIo(TokioIo<DialStdio>);

impl Connection for SshIo {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for SshIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for SshIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Opens a dial-stdio process per HTTP connection the client's pool wants.
#[derive(Clone)]
struct Connector {
    target: Arc<SshTarget>,
    files: Arc<Files>,
    muxed: Arc<AtomicUsize>,
    stderr: Arc<Mutex<String>>,
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = SshIo;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<SshIo>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let s = dial(&self.target, &self.files, &self.muxed, self.stderr.clone());
        Box::pin(async move { s.map(|s| SshIo(TokioIo::new(s))) })
    }
}

/// Answers `GET /_ping` through one dial-stdio process: the SSH session,
/// the host key, the login, the docker CLI and the socket all work, or
/// the error says which did not.
pub async fn preflight(t: &SshTarget) -> anyhow::Result<()> {
    let files = Files::of(t)?;
    let stderr = Arc::new(Mutex::new(String::new()));
    let muxed = Arc::new(AtomicUsize::new(0));
    let mut s = dial(t, &files, &muxed, stderr.clone())
        .context("starting ssh (is openssh-client installed?)")?;
    let exchange = async {
        s.write_all(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n")
            .await?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await?;
        std::io::Result::Ok(answer)
    };
    let timeout = Duration::from_secs(u64::from(CONNECT_TIMEOUT_S) + 10);
    let answer = tokio::time::timeout(timeout, exchange).await;
    let answer = match answer {
        Ok(Ok(a)) => a,
        Ok(Err(_)) | Err(_) => Vec::new(),
    };
    if answer.starts_with(b"HTTP/1.") && answer.windows(2).any(|w| w == b"OK") {
        return Ok(());
    }
    // Let the stderr reader catch the last words.
    drop(s);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let err = stderr.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let at = Place {
        host: &t.host,
        port: t.port,
        user: t.user.as_deref(),
        pinned: parse_host_key(&t.host_key).ok().map(|k| k.fingerprint),
    };
    Err(anyhow!(explain(&err, &at)))
}

/// A Docker client whose connections are dial-stdio processes over the
/// engine's SSH session; `version` negotiation is the caller's.
pub fn client(t: &SshTarget, timeout_s: u64) -> anyhow::Result<Docker> {
    let connector = Connector {
        target: Arc::new(t.clone()),
        files: Arc::new(Files::of(t)?),
        muxed: Arc::new(AtomicUsize::new(0)),
        stderr: Arc::new(Mutex::new(String::new())),
    };
    let http = Arc::new(
        hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector),
    );
    let transport = move |req: BollardRequest| {
        let http = http.clone();
        async move {
            http.request(req)
                .await
                .map_err(bollard::errors::Error::from)
        }
    };
    Docker::connect_with_custom_transport(
        transport,
        Some("http://docker"),
        timeout_s,
        bollard::API_DEFAULT_VERSION,
    )
    .context("building the SSH engine's client")
}

/// Whether `path` names a file this process can read (a key path check
/// at registration).
pub fn readable(path: &Path) -> bool {
    std::fs::File::open(path).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_split_and_checked() {
        assert_eq!(
            parse_url("ssh://deploy@db01.example.com:2222"),
            Ok((Some("deploy".into()), "db01.example.com".into(), 2222))
        );
        assert_eq!(
            parse_url("ssh://10.0.0.5"),
            Ok((None, "10.0.0.5".into(), 22))
        );
        assert_eq!(
            parse_url("ssh://root@[::1]:22"),
            Ok((Some("root".into()), "::1".into(), 22))
        );
        for bad in [
            "tcp://x:1",
            "ssh://",
            "ssh://-oProxyCommand=x",
            "ssh://a b",
            "ssh://u;rm@h",
            "ssh://h:0",
            "ssh://h:99999",
            "ssh://[nope]",
        ] {
            assert!(parse_url(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn fingerprints_match_ssh_keygen() {
        // `ssh-keygen -lf` of this key prints this fingerprint.
        let k = parse_host_key(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAICQsP4dJ+5u6Q/SuFVnYnkby9RjItyru6Qb118b1PBW0",
        )
        .unwrap();
        assert_eq!(k.key_type, "ssh-ed25519");
        assert_eq!(
            k.fingerprint,
            "SHA256:v052OihP9d04DCC22VFTFeTa2Z3HwiWsCr9lgO6/jIA"
        );
        assert!(parse_host_key("ssh-ed25519").is_err());
        assert!(parse_host_key(
            "rot13 AAAAC3NzaC1lZDI1NTE5AAAAICQsP4dJ+5u6Q/SuFVnYnkby9RjItyru6Qb118b1PBW0"
        )
        .is_err());
        assert!(parse_host_key("ssh-ed25519 ***").is_err());
    }

    #[test]
    fn errors_say_what_failed() {
        let at = Place {
            host: "db01",
            port: 2222,
            user: Some("deploy"),
            pinned: Some("SHA256:pinned".into()),
        };
        let e = |s: &str| explain(s, &at);
        assert!(
            e("ssh: Could not resolve hostname db01: Name or service not known").starts_with("DNS")
        );
        assert!(e("ssh: connect to host db01 port 2222: Connection refused").contains("refused"));
        let changed = "@@@ WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! @@@\nThe fingerprint for the ED25519 key sent by the remote host is\nSHA256:abcDEF123.\nHost key verification failed.";
        assert!(
            e(changed).contains("offered SHA256:abcDEF123, the pinned key is SHA256:pinned"),
            "{}",
            e(changed)
        );
        assert!(e("deploy@db01: Permission denied (publickey).")
            .contains("authentication refused for user deploy"));
        assert!(e("bash: line 1: docker: command not found").contains("docker is not installed"));
        assert!(e("permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock").contains("may not use the Docker socket"));
        assert!(e("ssh: failed to open the raw stream connection: dial unix /run/docker.sock: connect: permission denied").contains("may not use the Docker socket"));
        assert!(e("failed to open the raw stream connection: dial unix /run/docker.sock: connect: no such file or directory").contains("not running"));
        assert_eq!(e(""), "the connection ended without a word");
    }
}
