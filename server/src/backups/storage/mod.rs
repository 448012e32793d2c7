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

mod local;
mod s3;

pub use local::{LocalStore, LocalUpload};
#[allow(unused_imports)]
use s3::*;
pub use s3::{S3Store, S3Upload};

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
