//! A real S3-compatible server for the backup tests: moto's server mode
//! (`moto_server`, PyPI `moto[server]`), installed by
//! `scripts/install-test-deps.sh` into a venv under
//! `~/.cache/opsdeck/tools/moto/` (or `OPSDECK_MOTO_SERVER`, or on PATH).
//!
//! Why moto: it installs from PyPI with pip in well under a minute (only
//! the package registries are reachable; MinIO ships from GitHub and its
//! own site), and it implements what the backups use — PUT/GET/DELETE,
//! multipart uploads with `ListMultipartUploads` and abort — and **checks
//! SigV4 signatures** once authentication is on, so a wrong secret is
//! refused as by a real service. `s3s-fs` (crates.io) was the other
//! candidate: a `cargo install` of several minutes on two cores, and
//! marked experimental.
//!
//! Each server runs on a free loopback port in its own directory
//! `/tmp/odk-s3-<pid>-<n>` (log `moto.log`) with
//! `INITIAL_NO_AUTH_ACTION_COUNT=3`: the harness's first three requests
//! (IAM `CreateUser`, `CreateAccessKey`, `PutUserPolicy` allowing
//! everything) go unauthenticated; every later request must be signed
//! with that access key. Readiness is a TCP connect (an HTTP probe would
//! count as an action).
//!
//! [`S3Server::shared`] is one server per test process (tests use their
//! own buckets, [`S3Server::bucket`]); [`S3Server::start`] is a test's own
//! server, stopped by [`S3Server::stop`] or on drop (to make a target
//! unreachable). Both die with the test process (`PR_SET_PDEATHSIG`, set
//! from a thread that lives as long as the server: the signal follows the
//! forking thread, not the process).
//!
//! The inspection calls ([`S3Server::list`], [`S3Server::get`],
//! [`S3Server::uploads`], …) use `object_store` and its SigV4 signer
//! directly, not Opsdeck's storage code.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{mpsc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use futures::TryStreamExt;
use nix::sys::signal::Signal;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::client::{HttpRequest, HttpRequestBody};
use object_store::{ObjectStore, PutPayload};

use crate::proc::{self, Session};
use crate::require;

const DIR_PREFIX: &str = "odk-s3-";
const READY_TIMEOUT: Duration = Duration::from_secs(60);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
const REGION: &str = "us-east-1";

static SHARED: OnceLock<Result<S3Server, String>> = OnceLock::new();
static NEXT: AtomicU32 = AtomicU32::new(1);

/// A running `moto_server` with an access key that may do everything.
pub struct S3Server {
    port: u16,
    dir: PathBuf,
    /// Dropping the sender tells the server thread to stop the server.
    stop: Mutex<Option<mpsc::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    key_id: String,
    secret: String,
    http: reqwest::Client,
}

/// Where `moto_server` is: `OPSDECK_MOTO_SERVER`, the venv the install
/// script makes, or PATH.
pub fn moto_server() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("OPSDECK_MOTO_SERVER") {
        return Some(PathBuf::from(p));
    }
    if let Some(home) = std::env::var_os("HOME") {
        let p = PathBuf::from(home).join(".cache/opsdeck/tools/moto/bin/moto_server");
        if p.is_file() {
            return Some(p);
        }
    }
    require::have("moto_server").then(|| PathBuf::from("moto_server"))
}

fn require_moto() -> Result<PathBuf, require::Skipped> {
    let found = moto_server();
    require::part(
        found
            .as_ref()
            .is_some_and(|p| p.is_file() || require::have(&p.to_string_lossy())),
        "moto_server (the test S3 server, PyPI moto[server])",
        "scripts/install-test-deps.sh installs it into ~/.cache/opsdeck/tools/moto",
    )?;
    Ok(found.unwrap_or_default())
}

impl S3Server {
    /// The process's shared server, started on first call (a few seconds:
    /// Python imports). Panics when it does not come up; `Err(Skipped)`
    /// when moto is missing, outside CI only.
    pub fn shared() -> Result<&'static S3Server, require::Skipped> {
        let bin = require_moto()?;
        let r = SHARED.get_or_init(|| {
            remove_stale_dirs();
            S3Server::spawn(&bin).map_err(|e| format!("{e:#}"))
        });
        match r {
            Ok(s) => Ok(s),
            Err(e) => panic!("cannot start the shared test S3 server: {e}"),
        }
    }

    /// A server of the caller's own (stop it with [`S3Server::stop`]).
    pub fn start() -> Result<S3Server, require::Skipped> {
        let bin = require_moto()?;
        match S3Server::spawn(&bin) {
            Ok(s) => Ok(s),
            Err(e) => panic!("cannot start a test S3 server: {e:#}"),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn access_key_id(&self) -> &str {
        &self.key_id
    }

    pub fn secret_access_key(&self) -> &str {
        &self.secret
    }

    pub fn region(&self) -> &str {
        REGION
    }

    /// The server's log.
    pub fn log(&self) -> String {
        tail(&self.dir.join("moto.log"))
    }

    /// Creates a new bucket named `<prefix>-<pid>-<n>` (lower case) and
    /// returns its name.
    pub async fn bucket(&self, prefix: &str) -> String {
        let name = format!(
            "{}-{}-{}",
            prefix.to_ascii_lowercase().replace('_', "-"),
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let url = format!("{}/{name}", self.endpoint());
        let (status, body) = self
            .signed(reqwest::Method::PUT, &url)
            .await
            .unwrap_or_else(|e| panic!("creating bucket {name}: {e:#}"));
        assert!(
            status.is_success(),
            "creating bucket {name}: {status} {body}"
        );
        name
    }

    /// An object_store client on `bucket` (the harness's own reads).
    pub fn client(&self, bucket: &str) -> AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_region(REGION)
            .with_bucket_name(bucket)
            .with_access_key_id(&self.key_id)
            .with_secret_access_key(&self.secret)
            .with_allow_http(true)
            .build()
            .expect("an object_store client")
    }

    /// Keys and sizes of the objects under `prefix`, sorted.
    pub async fn list(&self, bucket: &str, prefix: &str) -> Vec<(String, u64)> {
        let c = self.client(bucket);
        let p = (!prefix.is_empty()).then(|| object_store::path::Path::from(prefix));
        let mut out: Vec<(String, u64)> = c
            .list(p.as_ref())
            .map_ok(|m| (m.location.to_string(), m.size))
            .try_collect()
            .await
            .unwrap_or_else(|e| panic!("listing {bucket}/{prefix}: {e}"));
        out.sort();
        out
    }

    /// Only the keys of [`S3Server::list`].
    pub async fn keys(&self, bucket: &str, prefix: &str) -> Vec<String> {
        self.list(bucket, prefix)
            .await
            .into_iter()
            .map(|(k, _)| k)
            .collect()
    }

    /// An object's bytes.
    pub async fn get(&self, bucket: &str, key: &str) -> Vec<u8> {
        self.client(bucket)
            .get(&object_store::path::Path::from(key))
            .await
            .unwrap_or_else(|e| panic!("getting {bucket}/{key}: {e}"))
            .bytes()
            .await
            .unwrap_or_else(|e| panic!("reading {bucket}/{key}: {e}"))
            .to_vec()
    }

    /// Replaces an object (e.g. to corrupt a stored backup).
    pub async fn put(&self, bucket: &str, key: &str, bytes: Vec<u8>) {
        self.client(bucket)
            .put(
                &object_store::path::Path::from(key),
                PutPayload::from(bytes),
            )
            .await
            .unwrap_or_else(|e| panic!("putting {bucket}/{key}: {e}"));
    }

    /// Unfinished multipart uploads in `bucket`: (key, upload id).
    pub async fn uploads(&self, bucket: &str) -> Vec<(String, String)> {
        let url = format!("{}/{bucket}?uploads", self.endpoint());
        let (status, body) = self
            .signed(reqwest::Method::GET, &url)
            .await
            .unwrap_or_else(|e| panic!("listing the uploads of {bucket}: {e:#}"));
        assert!(
            status.is_success(),
            "listing the uploads of {bucket}: {status} {body}"
        );
        let mut out = Vec::new();
        for block in body.split("<Upload>").skip(1) {
            if let (Some(k), Some(id)) = (text(block, "Key"), text(block, "UploadId")) {
                out.push((k, id));
            }
        }
        out
    }

    /// A SigV4-signed request with an empty body: status and body.
    async fn signed(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> anyhow::Result<(reqwest::StatusCode, String)> {
        let mut req: HttpRequest = http_request(method.clone(), url)?;
        let cred = AwsCredential {
            key_id: self.key_id.clone(),
            secret_key: self.secret.clone(),
            token: None,
        };
        AwsAuthorizer::new(&cred, "s3", REGION).authorize(&mut req, None);
        let mut out = self.http.request(method, url);
        for (n, v) in req.headers() {
            if n.as_str() != "host" {
                out = out.header(n.as_str(), v.as_bytes());
            }
        }
        let res = out.send().await?;
        let status = res.status();
        Ok((status, res.text().await.unwrap_or_default()))
    }

    /// Stops the server (SIGTERM, SIGKILL after 5 s): its port refuses
    /// connections from now on.
    pub fn stop(&self) {
        drop(self.stop.lock().unwrap_or_else(|p| p.into_inner()).take());
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }

    fn spawn(bin: &Path) -> anyhow::Result<S3Server> {
        let dir = PathBuf::from(format!(
            "/tmp/{DIR_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join("moto.log");
        let port = proc::try_free_port().context("picking a free loopback port")?;
        let out = std::fs::File::create(&log)?;
        let mut cmd = Command::new(bin);
        cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", "3")
            .env("MOTO_ALLOW_NONEXISTENT_REGION", "true")
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        // PR_SET_PDEATHSIG fires when the *thread* that forked exits: the
        // server is spawned by a thread that lives as long as it does.
        let (ready_tx, ready_rx) = mpsc::channel::<std::io::Result<u32>>();
        let (stop_tx, stop_rx) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("test-s3".into())
            .spawn(move || server_thread(cmd, ready_tx, stop_rx))
            .context("spawning the S3 server thread")?;
        let pid = match ready_rx.recv() {
            Ok(Ok(pid)) => pid,
            Ok(Err(e)) => {
                let _ = thread.join();
                return Err(e).with_context(|| format!("starting {}", bin.display()));
            }
            Err(_) => {
                let _ = thread.join();
                bail!("the S3 server thread died");
            }
        };
        let mut s = S3Server {
            port,
            dir,
            stop: Mutex::new(Some(stop_tx)),
            thread: Mutex::new(Some(thread)),
            key_id: String::new(),
            secret: String::new(),
            http: reqwest::Client::new(),
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break;
            }
            if proc::has_exited(pid) {
                bail!("moto_server exited; end of its log:\n{}", tail(&log));
            }
            if Instant::now() > deadline {
                bail!(
                    "moto_server did not listen within {} s; end of its log:\n{}",
                    READY_TIMEOUT.as_secs(),
                    tail(&log)
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        // The three unauthenticated actions: a user, its key, a policy.
        let (key_id, secret) = std::thread::scope(|sc| {
            sc.spawn(|| {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime")
                    .block_on(bootstrap(port))
            })
            .join()
            .expect("the bootstrap thread")
        })
        .with_context(|| format!("bootstrapping IAM; end of the log:\n{}", s.log()))?;
        s.key_id = key_id;
        s.secret = secret;
        Ok(s)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// IAM over moto's query API: a user `opsdeck-tests` with an access key
/// and an allow-all inline policy.
async fn bootstrap(port: u16) -> anyhow::Result<(String, String)> {
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/");
    // Unsigned, but the service must be recognisable: moto routes on the
    // credential scope of the Authorization header.
    let auth = "AWS4-HMAC-SHA256 Credential=bootstrap/20260101/us-east-1/iam/aws4_request, \
                SignedHeaders=host, Signature=none";
    let call = |form: Vec<(&'static str, String)>| {
        let http = http.clone();
        let url = url.clone();
        async move {
            let res = http
                .post(&url)
                .header("authorization", auth)
                .form(&form)
                .send()
                .await?;
            let status = res.status();
            let body = res.text().await?;
            if !status.is_success() {
                bail!("{}: {status} {body}", form[0].1);
            }
            anyhow::Ok(body)
        }
    };
    let user = "opsdeck-tests".to_owned();
    let v = ("Version", "2010-05-08".to_owned());
    call(vec![
        ("Action", "CreateUser".into()),
        ("UserName", user.clone()),
        v.clone(),
    ])
    .await?;
    let key = call(vec![
        ("Action", "CreateAccessKey".into()),
        ("UserName", user.clone()),
        v.clone(),
    ])
    .await?;
    call(vec![
        ("Action", "PutUserPolicy".into()),
        ("UserName", user),
        ("PolicyName", "everything".into()),
        (
            "PolicyDocument",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#
                .into(),
        ),
        v,
    ])
    .await?;
    let id = text(&key, "AccessKeyId").context("no AccessKeyId in CreateAccessKey")?;
    let secret = text(&key, "SecretAccessKey").context("no SecretAccessKey")?;
    Ok((id, secret))
}

fn http_request(method: reqwest::Method, url: &str) -> anyhow::Result<HttpRequest> {
    let mut r = HttpRequest::new(HttpRequestBody::empty());
    *r.method_mut() = method;
    *r.uri_mut() = url.parse().context("a request URI")?;
    Ok(r)
}

/// The text of the first `<tag>…</tag>`.
fn text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(xml[start..start + len].replace("&amp;", "&"))
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

fn tail(log: &Path) -> String {
    let s = std::fs::read_to_string(log).unwrap_or_default();
    let start = s.len().saturating_sub(4000);
    let start = (start..s.len())
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(s.len());
    s[start..].to_string()
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
