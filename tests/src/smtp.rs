//! A real SMTP sink: Python's aiosmtpd (Debian `python3-aiosmtpd`) with its
//! `Mailbox` handler, which stores every message it accepts in a maildir.
//!
//! Started as `python3 -m aiosmtpd -n -l 127.0.0.1:<port> -c
//! aiosmtpd.handlers.Mailbox <maildir>` (an argv array; `-n`: no setuid).
//! It speaks plain SMTP (no STARTTLS, no AUTH). The handler adds
//! `X-MailFrom` and `X-RcptTo` headers with the envelope. [`SmtpSink::messages`]
//! reads the maildir and parses each message: headers (unfolded), and the
//! leaf MIME parts with their transfer encoding (base64, quoted-printable)
//! undone.
//!
//! The interpreter is the first of `/usr/bin/python3` (where Debian's
//! package installs) and `python3` on PATH that can import `aiosmtpd`;
//! with none, starting the sink fails the test with a message saying how
//! to install it (`scripts/install-test-deps.sh` does). The child dies with
//! the test process (`PR_SET_PDEATHSIG`, spawned from a thread that lives as
//! long as the child) and is killed when the sink is dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use nix::sys::signal::Signal;

use crate::proc::{self, free_port, Session};

/// A parsed message from the sink.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Header names lowercase, values unfolded, in order.
    pub headers: Vec<(String, String)>,
    /// The raw message.
    pub raw: String,
    /// Leaf parts (a non-multipart message is one part).
    pub parts: Vec<Part>,
}

#[derive(Debug, Clone)]
pub struct Part {
    /// `text/plain`, `text/html`… (lowercase, without parameters).
    pub content_type: String,
    /// Decoded body.
    pub body: String,
}

impl Mail {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The envelope recipient(s) as the handler recorded them.
    pub fn rcpt_to(&self) -> &str {
        self.header("x-rcptto").unwrap_or_default()
    }

    pub fn subject(&self) -> &str {
        self.header("subject").unwrap_or_default()
    }

    /// The decoded body of the first part of this content type.
    pub fn part(&self, content_type: &str) -> Option<&str> {
        self.parts
            .iter()
            .find(|p| p.content_type == content_type)
            .map(|p| p.body.as_str())
    }
}

struct Shared {
    child: Child,
    exited: bool,
}

/// A running aiosmtpd; see the module docs.
pub struct SmtpSink {
    port: u16,
    maildir: PathBuf,
    shared: Arc<Mutex<Shared>>,
    _dir: tempfile::TempDir,
}

fn lock(m: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The Python interpreter that has aiosmtpd, if any.
pub fn python_with_aiosmtpd() -> Option<String> {
    ["/usr/bin/python3", "python3"].into_iter().find_map(|py| {
        Command::new(py)
            .args(["-c", "import aiosmtpd"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .ok()
            .filter(|s| s.success())
            .map(|_| py.to_owned())
    })
}

impl SmtpSink {
    /// Starts the sink on a free loopback port and waits until it accepts
    /// connections (panics with its output after 20 s).
    pub async fn start() -> SmtpSink {
        let python = python_with_aiosmtpd().unwrap_or_else(|| {
            panic!(
                "the SMTP sink needs Python's aiosmtpd module, which is missing \
                 (Debian: apt-get install python3-aiosmtpd; scripts/install-test-deps.sh installs it)"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("opsdeck-smtp-")
            .tempdir()
            .expect("temporary directory");
        let maildir = dir.path().join("maildir");
        let log = dir.path().join("aiosmtpd.log");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let port = free_port();
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        proc::die_with_parent(&mut cmd, Signal::SIGKILL, Session::Inherit);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name(format!("aiosmtpd-{port}"))
            .spawn(move || {
                let child = match cmd.spawn() {
                    Ok(c) => c,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let shared = Arc::new(Mutex::new(Shared {
                    child,
                    exited: false,
                }));
                let _ = tx.send(Ok(shared.clone()));
                // Reap under the lock, so a kill never reaches a reused pid.
                loop {
                    {
                        let mut s = lock(&shared);
                        match s.child.try_wait() {
                            Ok(Some(_)) | Err(_) => {
                                s.exited = true;
                                return;
                            }
                            Ok(None) => {}
                        }
                    }
                    std::thread::sleep(Duration::from_millis(25));
                }
            })
            .expect("spawning the sink thread");
        let shared = rx
            .recv()
            .expect("the sink thread died")
            .unwrap_or_else(|e| panic!("starting {python} -m aiosmtpd: {e}"));
        let sink = SmtpSink {
            port,
            maildir,
            shared,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            let exited = lock(&sink.shared).exited;
            if exited || Instant::now() > deadline {
                panic!(
                    "aiosmtpd did not start listening on 127.0.0.1:{port}{}:\n{}",
                    if exited {
                        " (it exited)"
                    } else {
                        " within 20 s"
                    },
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sink
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every delivered message, oldest first (by file modification time).
    pub fn messages(&self) -> Vec<Mail> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = Vec::new();
        for sub in ["new", "cur"] {
            if let Ok(entries) = std::fs::read_dir(self.maildir.join(sub)) {
                for e in entries.flatten() {
                    let modified = e
                        .metadata()
                        .and_then(|m| m.modified())
                        .unwrap_or(std::time::UNIX_EPOCH);
                    files.push((modified, e.path()));
                }
            }
        }
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, p)| std::fs::read(p).ok())
            .map(|b| parse(&String::from_utf8_lossy(&b)))
            .collect()
    }

    /// Waits until at least `n` messages arrived; panics after `timeout`.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Mail> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.messages();
            if got.len() >= n {
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "SMTP sink: expected {n} messages within {timeout:?}, got {}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        {
            let mut s = lock(&self.shared);
            if !s.exited {
                let _ = s.child.kill();
            }
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while !lock(&self.shared).exited && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

// ------------------------------------------------------------------ parsing

/// Splits a message or part into unfolded headers and the body.
fn split(raw: &str) -> (Vec<(String, String)>, String) {
    let text = raw.replace("\r\n", "\n");
    let (head, body) = match text.find("\n\n") {
        Some(i) => (&text[..i], text[i + 2..].to_owned()),
        None => (text.as_str(), String::new()),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some(last) = headers.last_mut() {
                last.1.push(' ');
                last.1.push_str(line.trim());
            }
        } else if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
    }
    (headers, body)
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A parameter of a header value (`boundary="x"`).
fn param(value: &str, name: &str) -> Option<String> {
    value.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        (k.trim().eq_ignore_ascii_case(name)).then(|| v.trim().trim_matches('"').to_owned())
    })
}

/// Undoes quoted-printable (soft line breaks, `=XX`).
pub fn decode_qp(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            if bytes.get(i + 1) == Some(&b'\n') {
                i += 2;
                continue;
            }
            if bytes.get(i + 1) == Some(&b'\r') && bytes.get(i + 2) == Some(&b'\n') {
                i += 3;
                continue;
            }
            if let Some(h) = s.get(i + 1..i + 3) {
                if let Ok(b) = u8::from_str_radix(h, 16) {
                    out.push(b);
                    i += 3;
                    continue;
                }
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn decode_body(headers: &[(String, String)], body: &str) -> String {
    match header(headers, "content-transfer-encoding")
        .map(|v| v.trim().to_ascii_lowercase())
        .as_deref()
    {
        Some("base64") => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            base64::engine::general_purpose::STANDARD
                .decode(compact)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_else(|_| body.to_owned())
        }
        Some("quoted-printable") => decode_qp(body),
        _ => body.to_owned(),
    }
}

fn leaf_parts(headers: &[(String, String)], body: &str, out: &mut Vec<Part>) {
    let ct = header(headers, "content-type").unwrap_or("text/plain");
    let mime = ct
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if mime.starts_with("multipart/") {
        if let Some(boundary) = param(ct, "boundary") {
            let delim = format!("--{boundary}");
            for chunk in body.split(&delim).skip(1) {
                if chunk.starts_with("--") {
                    break; // the closing delimiter
                }
                let chunk = chunk.strip_prefix('\n').unwrap_or(chunk);
                let (h, b) = split(chunk);
                leaf_parts(&h, b.strip_suffix('\n').unwrap_or(&b), out);
            }
            return;
        }
    }
    out.push(Part {
        content_type: mime,
        body: decode_body(headers, body),
    });
}

/// Parses one stored message.
pub fn parse(raw: &str) -> Mail {
    let (headers, body) = split(raw);
    let mut parts = Vec::new();
    leaf_parts(&headers, &body, &mut parts);
    Mail {
        headers,
        raw: raw.to_owned(),
        parts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multipart_messages_are_split_and_decoded() {
        let raw = "From: a@x\r\nSubject: hi\r\n there\r\nContent-Type: multipart/alternative;\r\n boundary=\"XyZ\"\r\n\r\n--XyZ\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nline =C3=A9 soft=\r\nbreak\r\n--XyZ\r\nContent-Type: text/html\r\nContent-Transfer-Encoding: base64\r\n\r\nPGI+aGk8L2I+\r\n--XyZ--\r\n";
        let m = parse(raw);
        assert_eq!(m.subject(), "hi there");
        assert_eq!(m.part("text/plain"), Some("line é softbreak"));
        assert_eq!(m.part("text/html"), Some("<b>hi</b>"));
    }
}
