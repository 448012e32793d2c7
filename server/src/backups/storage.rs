//! Storage targets: a local directory ([`LocalStore`]) or a bucket of an
//! S3-compatible object store ([`S3Store`]), behind one [`Store`] with
//! `create` (an [`Upload`]: `write`, `finish`, `abort`), `read` and
//! `delete`.
//!
//! **Local.** Objects are written to `<key>.partial` and renamed into place
//! only when complete and synced, so a crash never leaves a half object
//! under its real name; `delete` removes both.
//!
//! Decisions (local):
//! * Directories Opsdeck creates (the root, the key's parents) get mode
//!   0700, objects 0600. An existing root keeps its mode.
//! * `create` truncates a stale `<key>.partial` (left by a crash) rather
//!   than failing: nothing else writes under the target.
//! * An [`Upload`] dropped without [`Upload::finish`] or [`Upload::abort`]
//!   (a cancelled run) removes its partial file.
//! * Keys are checked before every operation ([`check_key`]); a key ending
//!   in `.partial` is refused, so an object never collides with another's
//!   partial file.
//!
//! **S3.** Through the `object_store` crate (0.12: it shares the tree's
//! reqwest 0.12 and ring; 0.14 would bring reqwest 0.13 and aws-lc-rs),
//! path-style requests (`<endpoint>/<bucket>/<prefix>/<key>`: MinIO, Ceph,
//! Garage and AWS alike), SigV4 with a static access key.
//!
//! Decisions (S3):
//! * **Nothing is visible under a key until it is complete.** An upload
//!   buffers its first part; an object smaller than one part is stored
//!   with one `PUT` at `finish` (atomic). A larger one is a multipart
//!   upload, completed only at `finish`; `abort` (and a drop without
//!   `finish`, from a spawned task) aborts it, so its parts go too.
//! * Parts are 8 MiB, doubling every 1,000 parts up to 256 MiB (S3 allows
//!   10,000 parts: ~1.5 TB per object); two parts upload while the next
//!   fills, so an upload holds at most three parts in memory.
//! * `delete` removes the object and aborts incomplete multipart uploads
//!   of that exact key (`ListMultipartUploads`): a server killed mid-upload
//!   leaves parts that the sweep's `delete` then removes. Listing failures
//!   there are logged, not fatal (the object itself is gone); a bucket
//!   lifecycle rule "abort incomplete multipart uploads after N days" is
//!   the belt to these braces.
//! * HTTP: our own reqwest client (connect timeout 5 s; a read may stall
//!   at most 300 s; no cap on a whole request, so long downloads work),
//!   `https_only` unless the target says `allow_http`; three retries
//!   within 60 s (object_store's, with backoff) for transient errors.
//! * No SSRF guard on the endpoint (unlike notification URLs): targets are
//!   admin-only and a MinIO on the LAN or on loopback is the usual case.
//! * The secret access key lives in `backup_targets.secret` like channel
//!   secrets (a plain column only the server reads; never returned by the
//!   API, never in audit entries or messages).
//! * Errors read as sentences: the S3 error code and message when the
//!   service answered, else why it could not be reached.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use futures::TryStreamExt;
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::client::{
    ClientOptions, HttpClient, HttpConnector, HttpRequest, HttpRequestBody,
};
use object_store::{BackoffConfig, MultipartUpload, ObjectStore, PutPayload, RetryConfig};
use opsdeck_wire::S3Settings;
use serde_json::Value;
use tokio::io::{AsyncWriteExt, BufWriter};
use tokio::task::JoinSet;

/// Suffix of objects being written.
const PARTIAL: &str = ".partial";
/// Longest key.
const MAX_KEY: usize = 512;
/// Write buffer of an upload.
const WRITE_BUF: usize = 1 << 20;
/// The first parts of a multipart upload (S3's minimum is 5 MiB).
const PART: usize = 8 << 20;
/// Parts double in size after every this many.
const PARTS_PER_SIZE: usize = 1000;
/// The largest part.
const PART_MAX: usize = 256 << 20;
/// Parts uploading at once (the next one fills meanwhile).
const PARTS_IN_FLIGHT: usize = 2;
/// S3: connecting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// S3: the longest a read (or an answer) may stall.
const READ_TIMEOUT: Duration = Duration::from_secs(300);

/// A stored object being read (a file, or an object store's byte stream).
pub type ObjectReader = Box<dyn tokio::io::AsyncRead + Send + Unpin>;

/// A local directory target.
#[derive(Debug, Clone)]
pub struct LocalStore {
    pub root: PathBuf,
}

/// Where a target stores.
#[derive(Debug, Clone)]
pub enum Store {
    Local(LocalStore),
    S3(S3Store),
}

/// An object being written; nothing is visible under its key before
/// [`Upload::finish`].
pub enum Upload {
    Local(LocalUpload),
    S3(S3Upload),
}

/// A local object being written (`<key>.partial`, renamed at `finish`).
pub struct LocalUpload {
    file: Option<BufWriter<tokio::fs::File>>,
    partial: PathBuf,
    target: PathBuf,
    key: String,
    /// Renamed into place or removed: nothing for `Drop` to clean.
    done: bool,
}

impl LocalStore {
    /// Checks the path (absolute, no `..`) and creates the directory (0700)
    /// when missing.
    pub async fn open(path: &str) -> Result<LocalStore, String> {
        let raw = path.trim();
        if raw.is_empty() {
            return Err("path: must not be empty".into());
        }
        if raw.contains('\0') {
            return Err("path: must not contain NUL characters".into());
        }
        let p = Path::new(raw);
        if !p.is_absolute() {
            return Err("path: must be absolute".into());
        }
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err("path: must not contain \"..\"".into());
        }
        let root: PathBuf = p.components().collect();
        match tokio::fs::metadata(&root).await {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("path: {} is not a directory", root.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = tokio::fs::DirBuilder::new();
                b.recursive(true).mode(0o700);
                b.create(&root).await.map_err(|e| {
                    format!("path: cannot create {}: {}", root.display(), io_msg(&e))
                })?;
            }
            Err(e) => return Err(format!("path: {}: {}", root.display(), io_msg(&e))),
        }
        Ok(LocalStore { root })
    }

    /// Starts writing `key` (relative, `[A-Za-z0-9._/-]`, no `..`).
    pub async fn create(&self, key: &str) -> anyhow::Result<Upload> {
        let target = self.path_of(key)?;
        let partial = partial_of(&target);
        if let Some(parent) = target.parent() {
            let mut b = tokio::fs::DirBuilder::new();
            b.recursive(true).mode(0o700);
            b.create(parent)
                .await
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .await
            .with_context(|| format!("creating {}", partial.display()))?;
        Ok(Upload::Local(LocalUpload {
            file: Some(BufWriter::with_capacity(WRITE_BUF, file)),
            partial,
            target,
            key: key.to_string(),
            done: false,
        }))
    }

    /// Reads a stored object.
    pub async fn read(&self, key: &str) -> anyhow::Result<ObjectReader> {
        let path = self.path_of(key)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!("object {key} not found in {}", self.root.display())
            } else {
                anyhow!("reading {}: {}", path.display(), io_msg(&e))
            }
        })?;
        Ok(Box::new(file))
    }

    /// Removes an object (and its partial file); absent is fine.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let path = self.path_of(key)?;
        for p in [partial_of(&path), path] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => bail!("removing {}: {}", p.display(), io_msg(&e)),
            }
        }
        Ok(())
    }

    fn path_of(&self, key: &str) -> anyhow::Result<PathBuf> {
        check_key(key).map_err(|e| anyhow!(e))?;
        Ok(self.root.join(key))
    }
}

impl Upload {
    pub async fn write(&mut self, buf: &[u8]) -> anyhow::Result<()> {
        match self {
            Upload::Local(u) => u.write(buf).await,
            Upload::S3(u) => u.write(buf).await,
        }
    }

    /// Makes the object visible under its key (local: sync and rename; S3:
    /// one `PUT` or the multipart upload's completion). An error leaves
    /// nothing under the key.
    pub async fn finish(self) -> anyhow::Result<()> {
        match self {
            Upload::Local(u) => u.finish().await,
            Upload::S3(u) => u.finish().await,
        }
    }

    /// Removes what was written (local: the partial file; S3: aborts the
    /// multipart upload).
    pub async fn abort(self) {
        match self {
            Upload::Local(u) => u.abort().await,
            Upload::S3(u) => u.abort().await,
        }
    }
}

impl LocalUpload {
    async fn write(&mut self, buf: &[u8]) -> anyhow::Result<()> {
        let Some(f) = self.file.as_mut() else {
            bail!("object {}: write after the upload ended", self.key);
        };
        f.write_all(buf)
            .await
            .map_err(|e| anyhow!("writing {}: {}", self.partial.display(), io_msg(&e)))
    }

    /// Syncs and renames into place.
    async fn finish(mut self) -> anyhow::Result<()> {
        // Any error below leaves `done` false: `Drop` removes the partial.
        let Some(mut f) = self.file.take() else {
            bail!("object {}: the upload already ended", self.key);
        };
        let what = || format!("writing {}", self.partial.display());
        f.flush().await.with_context(what)?;
        let file = f.into_inner();
        file.sync_all().await.with_context(what)?;
        drop(file);
        tokio::fs::rename(&self.partial, &self.target)
            .await
            .with_context(|| format!("renaming {} into place", self.partial.display()))?;
        self.done = true;
        if let Some(dir) = self.target.parent() {
            let synced = async { tokio::fs::File::open(dir).await?.sync_all().await }.await;
            if let Err(e) = synced {
                // Not durable: no object rather than one that may vanish.
                let _ = tokio::fs::remove_file(&self.target).await;
                bail!("syncing {}: {}", dir.display(), io_msg(&e));
            }
        }
        Ok(())
    }

    /// Removes the partial file.
    async fn abort(mut self) {
        self.file.take();
        let _ = tokio::fs::remove_file(&self.partial).await;
        self.done = true;
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if !self.done {
            self.file.take();
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

// ---------------------------------------------------------------- any target

impl Store {
    /// Opens a target from its stored row: `kind` `local` (config
    /// `{"path"}`; the directory is created when missing) or `s3` (config
    /// [`S3Settings`], `secret` its secret access key; no request is made).
    pub async fn open(kind: &str, config: &Value, secret: Option<&str>) -> Result<Store, String> {
        match kind {
            "local" => LocalStore::open(
                config
                    .get("path")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            )
            .await
            .map(Store::Local),
            "s3" => {
                let settings: S3Settings = serde_json::from_value(config.clone())
                    .map_err(|e| format!("stored S3 settings: {e}"))?;
                let secret = secret.ok_or("no secret access key is stored for this target")?;
                S3Store::new(&settings, secret).map(Store::S3)
            }
            other => Err(format!(
                "unknown kind of target \"{}\"",
                other.escape_default()
            )),
        }
    }

    /// Starts writing `key` (see [`check_key`]).
    pub async fn create(&self, key: &str) -> anyhow::Result<Upload> {
        match self {
            Store::Local(s) => s.create(key).await,
            Store::S3(s) => s.create(key).await,
        }
    }

    /// Reads a stored object.
    pub async fn read(&self, key: &str) -> anyhow::Result<ObjectReader> {
        match self {
            Store::Local(s) => s.read(key).await,
            Store::S3(s) => s.read(key).await,
        }
    }

    /// Removes an object (and what an unfinished upload of it left);
    /// absent is fine.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        match self {
            Store::Local(s) => s.delete(key).await,
            Store::S3(s) => s.delete(key).await,
        }
    }
}

// ---------------------------------------------------------------- S3

/// A bucket (and prefix) of an S3-compatible object store.
#[derive(Clone)]
pub struct S3Store {
    s3: Arc<AmazonS3>,
    http: reqwest::Client,
    endpoint: String,
    region: String,
    bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    prefix: String,
    allow_http: bool,
    credential: Arc<AwsCredential>,
}

impl std::fmt::Debug for S3Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the secret.
        f.debug_struct("S3Store")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// Hands object_store our reqwest client (timeouts, `https_only`).
#[derive(Debug)]
struct Connector(reqwest::Client);

impl HttpConnector for Connector {
    fn connect(&self, _: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(self.0.clone()))
    }
}

impl S3Store {
    /// Checks the settings and builds the client (no request yet: see
    /// [`S3Store::probe`]). Messages name the field (`s3.endpoint: …`).
    pub fn new(s: &S3Settings, secret: &str) -> Result<S3Store, String> {
        let endpoint = check_endpoint(&s.endpoint, s.allow_http)?;
        let region = if s.region.trim().is_empty() {
            "us-east-1".to_owned()
        } else {
            s.region.trim().to_owned()
        };
        if region.len() > 64
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err("s3.region: letters, digits and - (e.g. us-east-1)".into());
        }
        let bucket = s.bucket.trim().to_owned();
        check_bucket(&bucket)?;
        let prefix = s.prefix.trim().trim_matches('/').to_owned();
        if !prefix.is_empty() {
            check_key(&prefix)
                .map_err(|e| format!("s3.prefix: {}", e.trim_start_matches("object key: ")))?;
            if prefix.len() > 256 {
                return Err("s3.prefix: at most 256 bytes".into());
            }
        }
        let key_id = s.access_key_id.trim().to_owned();
        if key_id.is_empty() || key_id.len() > 128 || !key_id.chars().all(|c| c.is_ascii_graphic())
        {
            return Err("s3.access_key_id: 1 to 128 visible ASCII characters".into());
        }
        if secret.is_empty() || secret.len() > 256 || !secret.chars().all(|c| c.is_ascii_graphic())
        {
            return Err("secret_access_key: 1 to 256 visible ASCII characters".into());
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .https_only(!s.allow_http)
            .build()
            .map_err(|e| format!("s3: cannot build the HTTP client: {e}"))?;
        let s3 = AmazonS3Builder::new()
            .with_endpoint(&endpoint)
            .with_region(&region)
            .with_bucket_name(&bucket)
            .with_access_key_id(&key_id)
            .with_secret_access_key(secret)
            .with_virtual_hosted_style_request(false)
            .with_allow_http(s.allow_http)
            .with_http_connector(Connector(http.clone()))
            .with_retry(RetryConfig {
                backoff: BackoffConfig::default(),
                max_retries: 3,
                retry_timeout: Duration::from_secs(60),
            })
            .build()
            .map_err(|e| format!("s3: {e}"))?;
        Ok(S3Store {
            s3: Arc::new(s3),
            http,
            endpoint,
            region,
            bucket,
            prefix,
            allow_http: s.allow_http,
            credential: Arc::new(AwsCredential {
                key_id,
                secret_key: secret.to_owned(),
                token: None,
            }),
        })
    }

    /// The settings as checked (trimmed, the default region filled in;
    /// never the secret).
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: self.endpoint.clone(),
            region: self.region.clone(),
            bucket: self.bucket.clone(),
            prefix: self.prefix.clone(),
            access_key_id: self.credential.key_id.clone(),
            allow_http: self.allow_http,
        }
    }

    /// `s3://<bucket>/<prefix>` for messages.
    pub fn describe(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The object's name in the bucket.
    fn full_key(&self, key: &str) -> anyhow::Result<String> {
        check_key(key).map_err(|e| anyhow!(e))?;
        Ok(if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        })
    }

    fn location(&self, key: &str) -> anyhow::Result<object_store::path::Path> {
        let full = self.full_key(key)?;
        object_store::path::Path::parse(&full).map_err(|e| anyhow!("object key {key}: {e}"))
    }

    /// Writes, reads back and removes a small object: the target can store
    /// backups. Messages name the likely field.
    pub async fn probe(&self) -> Result<(), String> {
        let key = format!(".opsdeck-probe-{:016x}", rand::random::<u64>());
        let loc = self.location(&key).map_err(|e| format!("s3: {e:#}"))?;
        let body = format!("opsdeck storage probe {key}\n");
        self.s3
            .put(&loc, PutPayload::from(body.clone().into_bytes()))
            .await
            .map_err(|e| self.probe_error("cannot write", &e))?;
        let got = async { self.s3.get(&loc).await?.bytes().await }.await;
        let deleted = self.s3.delete(&loc).await;
        let got =
            got.map_err(|e| self.probe_error("wrote a test object but cannot read it back", &e))?;
        if got.as_ref() != body.as_bytes() {
            return Err(format!(
                "s3: {}: the test object read back differs from what was written",
                self.describe()
            ));
        }
        deleted.map_err(|e| self.probe_error("wrote a test object but cannot remove it", &e))?;
        Ok(())
    }

    fn probe_error(&self, what: &str, e: &object_store::Error) -> String {
        let why = s3_error(e);
        let field = match e {
            object_store::Error::PermissionDenied { .. }
            | object_store::Error::Unauthenticated { .. } => {
                if why.contains("SignatureDoesNotMatch") {
                    "secret_access_key"
                } else {
                    "s3.access_key_id"
                }
            }
            _ if why.contains("NoSuchBucket") => "s3.bucket",
            _ if why.contains("InvalidAccessKeyId") => "s3.access_key_id",
            _ if why.contains("SignatureDoesNotMatch") => "secret_access_key",
            object_store::Error::Generic { .. }
                if !why.contains(':') || why.starts_with("cannot reach") =>
            {
                "s3.endpoint"
            }
            _ => "s3",
        };
        format!(
            "{field}: {what} {} at {}: {why}",
            self.describe(),
            self.endpoint
        )
    }

    async fn create(&self, key: &str) -> anyhow::Result<Upload> {
        let location = self.location(key)?;
        Ok(Upload::S3(S3Upload {
            s3: self.s3.clone(),
            location,
            key: key.to_owned(),
            buf: Vec::with_capacity(PART),
            multipart: None,
            parts: JoinSet::new(),
            parts_sent: 0,
            done: false,
        }))
    }

    async fn read(&self, key: &str) -> anyhow::Result<ObjectReader> {
        let loc = self.location(key)?;
        let got = self.s3.get(&loc).await.map_err(|e| match e {
            object_store::Error::NotFound { .. } => {
                anyhow!("object {key} not found in {}", self.describe())
            }
            e => anyhow!("reading {key} from {}: {}", self.describe(), s3_error(&e)),
        })?;
        let stream = got
            .into_stream()
            .map_err(|e| std::io::Error::other(s3_error(&e)));
        Ok(Box::new(tokio_util::io::StreamReader::new(stream)))
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let loc = self.location(key)?;
        match self.s3.delete(&loc).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => bail!("removing {key} from {}: {}", self.describe(), s3_error(&e)),
        }
        let full = self.full_key(key)?;
        if let Err(e) = self.abort_unfinished(&full).await {
            tracing::warn!(key = %full, bucket = %self.bucket, error = %format!("{e:#}"),
                "aborting unfinished multipart uploads of a removed object");
        }
        Ok(())
    }

    /// Aborts the incomplete multipart uploads of exactly `full` (what a
    /// killed server leaves). Returns how many.
    pub async fn abort_unfinished(&self, full: &str) -> anyhow::Result<usize> {
        let mut url = self.bucket_url()?;
        url.query_pairs_mut()
            .append_pair("uploads", "")
            .append_pair("prefix", full);
        let body = self.signed(reqwest::Method::GET, url).await?;
        let mut n = 0;
        for (k, upload_id) in parse_uploads(&body) {
            if k != full {
                continue;
            }
            let mut url = self.bucket_url()?;
            url.path_segments_mut()
                .map_err(|_| anyhow!("endpoint {} cannot hold a path", self.endpoint))?
                .extend(full.split('/'));
            url.query_pairs_mut().append_pair("uploadId", &upload_id);
            self.signed(reqwest::Method::DELETE, url).await?;
            n += 1;
        }
        Ok(n)
    }

    /// `<endpoint>/<bucket>` (path-style).
    fn bucket_url(&self) -> anyhow::Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&self.endpoint)?;
        url.path_segments_mut()
            .map_err(|_| anyhow!("endpoint {} cannot hold a path", self.endpoint))?
            .pop_if_empty()
            .push(&self.bucket);
        Ok(url)
    }

    /// A SigV4-signed request with an empty body; the answer's body, or
    /// an error with the S3 error code.
    async fn signed(&self, method: reqwest::Method, url: reqwest::Url) -> anyhow::Result<String> {
        // `uploads=` and `uploads` mean the same to S3; some servers want the
        // bare form, and it must be signed exactly as sent.
        let uri = url.as_str().replace("uploads=&", "uploads&");
        let mut req: HttpRequest = axum::http::Request::builder()
            .method(method.clone())
            .uri(&uri)
            .body(HttpRequestBody::empty())
            .context("building the request")?;
        AwsAuthorizer::new(&self.credential, "s3", &self.region).authorize(&mut req, None);
        let mut out = self.http.request(method.clone(), uri.as_str());
        for (name, value) in req.headers() {
            if name != axum::http::header::HOST {
                out = out.header(name, value);
            }
        }
        let res = out
            .send()
            .await
            .map_err(|e| anyhow!("{method} on {}: {}", self.endpoint, reqwest_msg(&e)))?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!(
                "{method} answered {status}: {}",
                s3_code(&text).unwrap_or(text)
            );
        }
        Ok(text)
    }
}

/// `https://host[:port][/path]` (http only with `allow_http`), without a
/// query, fragment or user info; returned without a trailing `/`.
fn check_endpoint(raw: &str, allow_http: bool) -> Result<String, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(
            "s3.endpoint: must not be empty (e.g. https://s3.eu-central-1.amazonaws.com)".into(),
        );
    }
    let url = reqwest::Url::parse(raw).map_err(|e| {
        format!("s3.endpoint: not a URL ({e}); e.g. https://minio.example.net:9000")
    })?;
    match url.scheme() {
        "https" => {}
        "http" if allow_http => {}
        "http" => {
            return Err("s3.endpoint: http:// sends the keys and the backups unencrypted; use https:// or set allow_http".into())
        }
        other => return Err(format!("s3.endpoint: scheme {other}: use https:// (or http:// with allow_http)")),
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("s3.endpoint: needs a host".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "s3.endpoint: no user or password in the URL (use the access key fields)".into(),
        );
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("s3.endpoint: no query or fragment".into());
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// S3 bucket names: 3–63 of `a-z 0-9 . -`, starting and ending with a
/// letter or digit.
fn check_bucket(b: &str) -> Result<(), String> {
    let ok = (3..=63).contains(&b.len())
        && b.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
        && b.starts_with(|c: char| c.is_ascii_alphanumeric())
        && b.ends_with(|c: char| c.is_ascii_alphanumeric())
        && !b.contains("..");
    if ok {
        Ok(())
    } else {
        Err("s3.bucket: 3 to 63 of a-z 0-9 . -, starting and ending with a letter or digit".into())
    }
}

/// Key and upload id of each `<Upload>` of a `ListMultipartUploadsResult`.
fn parse_uploads(xml: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<Upload>") {
        let tail = &rest[start + "<Upload>".len()..];
        let Some(end) = tail.find("</Upload>") else {
            break;
        };
        let block = &tail[..end];
        if let (Some(k), Some(id)) = (xml_text(block, "Key"), xml_text(block, "UploadId")) {
            out.push((k, id));
        }
        rest = &tail[end..];
    }
    out
}

/// The unescaped text of the first `<tag>…</tag>` in `xml`.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(
        xml[start..start + len]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// `Code: Message` of an S3 error document.
fn s3_code(body: &str) -> Option<String> {
    let code = xml_text(body, "Code")?;
    Some(match xml_text(body, "Message") {
        Some(m) if !m.is_empty() => format!("{code}: {m}"),
        _ => code,
    })
}

/// A reqwest error as a short sentence (the innermost cause).
fn reqwest_msg(e: &reqwest::Error) -> String {
    let mut last = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    let last = match last.find(" (os error") {
        Some(i) => last[..i].to_string(),
        None => last,
    };
    if e.is_timeout() {
        format!("timed out ({last})")
    } else if e.is_connect() {
        format!("cannot connect ({})", last.to_lowercase())
    } else {
        last
    }
}

/// An object_store error as a sentence: what the service said (its error
/// code and message), or why it could not be reached.
fn s3_error(e: &object_store::Error) -> String {
    let mut chain = vec![e.to_string()];
    let mut src = std::error::Error::source(e);
    let mut innermost: Option<&(dyn std::error::Error + 'static)> = None;
    while let Some(s) = src {
        chain.push(s.to_string());
        innermost = Some(s);
        src = s.source();
    }
    if let Some(code) = chain.iter().find_map(|m| s3_code(m)) {
        return code;
    }
    let status = chain.iter().find_map(|m| {
        let i = m.find("status code: ")?;
        Some(m[i + "status code: ".len()..].trim().to_owned())
    });
    if let Some(s) = status {
        return format!("the service answered {s}");
    }
    if let Some(r) = chain_reqwest(e) {
        return format!("cannot reach the endpoint: {}", reqwest_msg(r));
    }
    match innermost {
        Some(i) => {
            let m = i.to_string();
            match m.find(" (os error") {
                Some(k) => m[..k].to_string(),
                None => m,
            }
        }
        None => chain.remove(0),
    }
}

/// The reqwest error somewhere in `e`'s chain.
fn chain_reqwest(e: &object_store::Error) -> Option<&reqwest::Error> {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<reqwest::Error>() {
            return Some(r);
        }
        src = s.source();
    }
    None
}

/// An S3 object being written: the first part is buffered; past it, a
/// multipart upload (see the module docs).
pub struct S3Upload {
    s3: Arc<AmazonS3>,
    location: object_store::path::Path,
    key: String,
    buf: Vec<u8>,
    multipart: Option<Box<dyn MultipartUpload>>,
    parts: JoinSet<object_store::Result<()>>,
    parts_sent: usize,
    /// Completed or aborted: nothing for `Drop` to clean.
    done: bool,
}

impl S3Upload {
    fn part_size(&self) -> usize {
        let doublings = (self.parts_sent / PARTS_PER_SIZE).min(16) as u32;
        (PART << doublings).min(PART_MAX)
    }

    async fn write(&mut self, mut data: &[u8]) -> anyhow::Result<()> {
        if self.done {
            bail!("object {}: write after the upload ended", self.key);
        }
        while !data.is_empty() {
            let size = self.part_size();
            let room = size - self.buf.len();
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() == size {
                let next = Vec::with_capacity(self.part_size().max(size));
                let part = std::mem::replace(&mut self.buf, next);
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    /// Starts uploading a part (the multipart upload begins with the first
    /// one); waits while two are uploading.
    async fn send_part(&mut self, part: Vec<u8>) -> anyhow::Result<()> {
        if self.multipart.is_none() {
            let m =
                self.s3.put_multipart(&self.location).await.map_err(|e| {
                    anyhow!("starting the upload of {}: {}", self.key, s3_error(&e))
                })?;
            self.multipart = Some(m);
        }
        while self.parts.len() >= PARTS_IN_FLIGHT {
            self.join_one().await?;
        }
        let Some(m) = self.multipart.as_mut() else {
            bail!("object {}: no multipart upload", self.key);
        };
        let fut = m.put_part(PutPayload::from(part));
        self.parts.spawn(fut);
        self.parts_sent += 1;
        Ok(())
    }

    async fn join_one(&mut self) -> anyhow::Result<()> {
        match self.parts.join_next().await {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => bail!("uploading a part of {}: {}", self.key, s3_error(&e)),
            Some(Err(e)) => bail!("uploading a part of {}: {e}", self.key),
        }
    }

    async fn finish(mut self) -> anyhow::Result<()> {
        if self.done {
            bail!("object {}: the upload already ended", self.key);
        }
        if self.multipart.is_none() {
            let body = std::mem::take(&mut self.buf);
            self.done = true;
            self.s3
                .put(&self.location, PutPayload::from(body))
                .await
                .map_err(|e| anyhow!("storing {}: {}", self.key, s3_error(&e)))?;
            return Ok(());
        }
        // Any error below leaves `done` false: `Drop` aborts the upload.
        if !self.buf.is_empty() {
            let last = std::mem::take(&mut self.buf);
            self.send_part(last).await?;
        }
        while !self.parts.is_empty() {
            self.join_one().await?;
        }
        let Some(m) = self.multipart.as_mut() else {
            bail!("object {}: no multipart upload", self.key);
        };
        m.complete()
            .await
            .map_err(|e| anyhow!("completing the upload of {}: {}", self.key, s3_error(&e)))?;
        self.done = true;
        Ok(())
    }

    async fn abort(mut self) {
        self.done = true;
        self.parts.abort_all();
        while self.parts.join_next().await.is_some() {}
        if let Some(mut m) = self.multipart.take() {
            if let Err(e) = m.abort().await {
                tracing::warn!(key = %self.key, error = %s3_error(&e), "aborting a multipart upload");
            }
        }
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        self.parts.abort_all();
        let (Some(mut m), Ok(rt)) = (self.multipart.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let key = self.key.clone();
        rt.spawn(async move {
            if let Err(e) = m.abort().await {
                tracing::warn!(key = %key, error = %s3_error(&e), "aborting a dropped multipart upload");
            }
        });
    }
}

/// Checks an object key: relative, `[A-Za-z0-9._/-]`, no empty, `.` or `..`
/// component, at most 512 bytes (and not ending in `.partial`).
pub fn check_key(key: &str) -> Result<(), String> {
    if key.is_empty() {
        return Err("object key: must not be empty".into());
    }
    if key.len() > MAX_KEY {
        return Err(format!("object key: longer than {MAX_KEY} bytes"));
    }
    if let Some(c) = key
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')))
    {
        return Err(format!("object key: character {c:?} not allowed"));
    }
    if key.starts_with('/') {
        return Err("object key: must be relative".into());
    }
    for part in key.split('/') {
        match part {
            "" => return Err("object key: empty path component".into()),
            "." | ".." => return Err(format!("object key: \"{part}\" component not allowed")),
            _ => {}
        }
    }
    if key.ends_with(PARTIAL) {
        return Err(format!("object key: must not end in \"{PARTIAL}\""));
    }
    Ok(())
}

fn partial_of(target: &Path) -> PathBuf {
    let mut s = target.as_os_str().to_owned();
    s.push(PARTIAL);
    PathBuf::from(s)
}

/// An I/O error without the "(os error N)" suffix.
fn io_msg(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncReadExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn keys_are_checked() {
        for ok in [
            "a",
            "plan-1/2026-01-01T02-00-00Z/ledger.dump.zst",
            "x_y.Z-9",
            "a/b/c",
        ] {
            assert_eq!(check_key(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(513);
        for bad in [
            "",
            "/abs",
            "a//b",
            "a/",
            "./a",
            "a/./b",
            "../a",
            "a/../b",
            "..",
            "a b",
            "a\\b",
            "é",
            "a\0b",
            "x.partial",
            long.as_str(),
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        assert!(check_key(&"a".repeat(512)).is_ok());
    }

    #[tokio::test]
    async fn open_checks_and_creates_the_directory() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(
            LocalStore::open("relative/dir").await.unwrap_err(),
            "path: must be absolute"
        );
        assert!(LocalStore::open("").await.is_err());
        let dotdot = format!("{}/a/../b", tmp.path().display());
        assert!(LocalStore::open(&dotdot).await.unwrap_err().contains(".."));
        let file = tmp.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        assert!(LocalStore::open(file.to_str().unwrap())
            .await
            .unwrap_err()
            .contains("not a directory"));

        let root = tmp.path().join("new/backups");
        let s = LocalStore::open(root.to_str().unwrap()).await.unwrap();
        assert_eq!(s.root, root);
        assert!(root.is_dir());
        assert_eq!(mode(&root), 0o700);
        // Existing is fine.
        LocalStore::open(root.to_str().unwrap()).await.unwrap();
    }

    #[tokio::test]
    async fn objects_appear_only_when_finished() {
        let tmp = tempfile::tempdir().unwrap();
        let s = LocalStore::open(tmp.path().to_str().unwrap())
            .await
            .unwrap();
        let key = "plan/1/db.dump.zst";
        let mut up = s.create(key).await.unwrap();
        up.write(b"hello ").await.unwrap();
        up.write(b"world").await.unwrap();
        let partial = tmp.path().join("plan/1/db.dump.zst.partial");
        assert!(partial.exists());
        assert!(s.read(key).await.is_err());
        assert_eq!(mode(&tmp.path().join("plan")), 0o700);
        assert_eq!(mode(&tmp.path().join("plan/1")), 0o700);
        up.finish().await.unwrap();
        assert!(!partial.exists());
        let obj = tmp.path().join(key);
        assert_eq!(mode(&obj), 0o600);
        let mut f = s.read(key).await.unwrap();
        let mut got = String::new();
        f.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello world");

        // A stale partial is truncated by a new upload.
        std::fs::write(tmp.path().join("plan/1/other.partial"), b"stale junk").unwrap();
        let mut up = s.create("plan/1/other").await.unwrap();
        up.write(b"new").await.unwrap();
        up.finish().await.unwrap();
        assert_eq!(
            std::fs::read(tmp.path().join("plan/1/other")).unwrap(),
            b"new"
        );

        s.delete(key).await.unwrap();
        assert!(!obj.exists());
        s.delete(key).await.unwrap();
        assert!(s.read("../x").await.is_err());
        assert!(s.create("/etc/passwd").await.is_err());
        assert!(s.delete("a/../../b").await.is_err());
    }

    #[tokio::test]
    async fn aborted_and_dropped_uploads_leave_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let s = LocalStore::open(tmp.path().to_str().unwrap())
            .await
            .unwrap();
        let mut up = s.create("a").await.unwrap();
        up.write(&vec![7u8; 3 << 20]).await.unwrap();
        up.abort().await;
        let mut up = s.create("b").await.unwrap();
        up.write(b"x").await.unwrap();
        drop(up);
        // Delete removes a partial left by a crash.
        std::fs::write(tmp.path().join("c.partial"), b"x").unwrap();
        s.delete("c").await.unwrap();
        let left: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
    fn s3(endpoint: &str, allow_http: bool) -> S3Settings {
        S3Settings {
            endpoint: endpoint.into(),
            region: String::new(),
            bucket: "backups".into(),
            prefix: "/opsdeck/prod/".into(),
            access_key_id: "AKIAEXAMPLE".into(),
            allow_http,
        }
    }

    #[test]
    fn s3_endpoints_are_checked() {
        assert_eq!(
            check_endpoint(" https://s3.example.net:9000/ ", false).unwrap(),
            "https://s3.example.net:9000"
        );
        assert_eq!(
            check_endpoint("http://127.0.0.1:9000", true).unwrap(),
            "http://127.0.0.1:9000"
        );
        // A path (a service behind a reverse proxy) stays.
        assert_eq!(
            check_endpoint("https://gw.example.net/s3/", false).unwrap(),
            "https://gw.example.net/s3"
        );
        for (bad, allow_http, says) in [
            ("", false, "must not be empty"),
            ("http://127.0.0.1:9000", false, "allow_http"),
            ("ftp://x", true, "scheme ftp"),
            ("s3.example.net", false, "not a URL"),
            (
                "https://key:secret@s3.example.net",
                false,
                "no user or password",
            ),
            ("https://s3.example.net/?x=1", false, "no query"),
        ] {
            let e = check_endpoint(bad, allow_http).unwrap_err();
            assert!(
                e.starts_with("s3.endpoint: ") && e.contains(says),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn s3_buckets_follow_the_naming_rules() {
        for ok in ["abc", "opsdeck-backups", "a.b-c.9", &"a".repeat(63)] {
            assert!(check_bucket(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "Backups",
            "-abc",
            "abc-",
            "a..b",
            "a_b",
            "a b",
            &"a".repeat(64),
        ] {
            assert!(
                check_bucket(bad).unwrap_err().starts_with("s3.bucket: "),
                "{bad}"
            );
        }
    }

    #[test]
    fn s3_settings_are_checked_and_normalised() {
        let st = S3Store::new(&s3("https://s3.example.net/", false), "sec/ret+key").unwrap();
        let got = st.settings();
        assert_eq!(got.endpoint, "https://s3.example.net");
        assert_eq!(got.region, "us-east-1", "the default region");
        assert_eq!(got.prefix, "opsdeck/prod");
        assert_eq!(st.describe(), "s3://backups/opsdeck/prod");
        assert_eq!(
            st.full_key("plan/1/0-x.pg_dump.zst").unwrap(),
            "opsdeck/prod/plan/1/0-x.pg_dump.zst"
        );
        assert!(st.full_key("../x").is_err());
        // Never the secret in debug output.
        assert!(!format!("{st:?}").contains("sec/ret"), "{st:?}");

        let mut bad = s3("https://s3.example.net", false);
        bad.region = "eu central".into();
        assert!(S3Store::new(&bad, "x")
            .unwrap_err()
            .starts_with("s3.region"));
        let mut bad = s3("https://s3.example.net", false);
        bad.prefix = "a/../b".into();
        assert!(S3Store::new(&bad, "x")
            .unwrap_err()
            .starts_with("s3.prefix"));
        let mut bad = s3("https://s3.example.net", false);
        bad.access_key_id = " ".into();
        assert!(S3Store::new(&bad, "x")
            .unwrap_err()
            .starts_with("s3.access_key_id"));
        let good = s3("https://s3.example.net", false);
        assert!(S3Store::new(&good, "")
            .unwrap_err()
            .starts_with("secret_access_key"));
        assert!(S3Store::new(&good, "with space")
            .unwrap_err()
            .starts_with("secret_access_key"));
    }

    #[tokio::test]
    async fn stores_open_by_kind() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t");
        let local = Store::open("local", &serde_json::json!({ "path": dir }), None)
            .await
            .unwrap();
        assert!(matches!(&local, Store::Local(l) if l.root == dir));
        let cfg = serde_json::to_value(s3("http://127.0.0.1:9", true)).unwrap();
        let e = Store::open("s3", &cfg, None).await.unwrap_err();
        assert!(e.contains("no secret access key"), "{e}");
        assert!(matches!(
            Store::open("s3", &cfg, Some("k")).await,
            Ok(Store::S3(_))
        ));
        let e = Store::open("ftp", &cfg, None).await.unwrap_err();
        assert!(e.contains("unknown kind"), "{e}");
    }

    #[test]
    fn multipart_listings_and_errors_are_read() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListMultipartUploadsResult><Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>
<Upload><Key>p/1/0-a.pg_dump.zst</Key><UploadId>id&amp;1</UploadId><Initiated>x</Initiated></Upload>
<Upload><Key>p/1/0-a.pg_dump.zst.other</Key><UploadId>id2</UploadId></Upload>
</ListMultipartUploadsResult>"#;
        assert_eq!(
            parse_uploads(xml),
            [
                ("p/1/0-a.pg_dump.zst".to_owned(), "id&1".to_owned()),
                ("p/1/0-a.pg_dump.zst.other".to_owned(), "id2".to_owned())
            ]
        );
        assert!(parse_uploads("<ListMultipartUploadsResult/>").is_empty());
        let err = "<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message></Error>";
        assert_eq!(
            s3_code(err).unwrap(),
            "NoSuchBucket: The specified bucket does not exist"
        );
        assert_eq!(s3_code("<Error><Code>X</Code></Error>").unwrap(), "X");
        assert_eq!(s3_code("plain text"), None);
    }

    #[tokio::test]
    async fn s3_parts_grow_to_stay_within_ten_thousand() {
        let st = S3Store::new(&s3("http://127.0.0.1:9", true), "k").unwrap();
        let Upload::S3(mut up) = st.create("a/b").await.unwrap() else {
            panic!("an S3 upload");
        };
        let mut total = 0u64;
        for n in 0..10_000 {
            up.parts_sent = n;
            let size = up.part_size();
            assert!((5 << 20..=PART_MAX).contains(&size), "{n}: {size}");
            total += size as u64;
        }
        up.parts_sent = 0;
        assert_eq!(up.part_size(), 8 << 20);
        up.parts_sent = 1000;
        assert_eq!(up.part_size(), 16 << 20);
        assert!(total > 1_500_000_000_000, "{total}");
        // Nothing was sent: the abort has nothing to do.
        up.write(b"small").await.unwrap();
        assert!(up.multipart.is_none());
        Upload::S3(up).abort().await;
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_is_refused_quickly_with_the_reason() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let st = S3Store::new(&s3(&format!("http://127.0.0.1:{port}"), true), "k").unwrap();
        let started = std::time::Instant::now();
        let e = st.probe().await.unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{:?}",
            started.elapsed()
        );
        assert!(
            e.starts_with("s3.endpoint: cannot write s3://backups/opsdeck/prod"),
            "{e}"
        );
        assert!(
            e.contains("cannot reach the endpoint") && e.contains("connect"),
            "{e}"
        );
        let e = st.create("x").await.unwrap().finish().await.unwrap_err();
        assert!(format!("{e:#}").contains("cannot reach"), "{e:#}");
        let e = st.read("x").await.err().unwrap();
        assert!(format!("{e:#}").contains("cannot reach"), "{e:#}");
    }
}
