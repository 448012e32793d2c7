//! A bucket of an S3-compatible object store (see the parent module for
//! the decisions): single `PUT` or multipart uploads, reads, deletes with
//! incomplete uploads aborted.

use super::*;

/// A bucket (and prefix) of an S3-compatible object store.
#[derive(Clone)]
pub struct S3Store {
    pub(super) s3: Arc<AmazonS3>,
    pub(super) http: reqwest::Client,
    pub(super) endpoint: String,
    pub(super) region: String,
    pub(super) bucket: String,
    /// Without leading or trailing `/`; empty for the bucket's root.
    pub(super) prefix: String,
    pub(super) allow_http: bool,
    pub(super) credential: Arc<AwsCredential>,
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
pub(super) struct Connector(reqwest::Client);

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
    pub(super) fn full_key(&self, key: &str) -> anyhow::Result<String> {
        check_key(key).map_err(|e| anyhow!(e))?;
        Ok(if self.prefix.is_empty() {
            key.to_owned()
        } else {
            format!("{}/{key}", self.prefix)
        })
    }

    pub(super) fn location(&self, key: &str) -> anyhow::Result<object_store::path::Path> {
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

    pub(super) fn probe_error(&self, what: &str, e: &object_store::Error) -> String {
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

    pub(super) async fn create(&self, key: &str) -> anyhow::Result<Upload> {
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

    pub(super) async fn read(&self, key: &str) -> anyhow::Result<ObjectReader> {
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

    pub(super) async fn delete(&self, key: &str) -> anyhow::Result<()> {
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
    pub(super) fn bucket_url(&self) -> anyhow::Result<reqwest::Url> {
        let mut url = reqwest::Url::parse(&self.endpoint)?;
        url.path_segments_mut()
            .map_err(|_| anyhow!("endpoint {} cannot hold a path", self.endpoint))?
            .pop_if_empty()
            .push(&self.bucket);
        Ok(url)
    }

    /// A SigV4-signed request with an empty body; the answer's body, or
    /// an error with the S3 error code.
    pub(super) async fn signed(
        &self,
        method: reqwest::Method,
        url: reqwest::Url,
    ) -> anyhow::Result<String> {
        // `uploads=` and `uploads` mean the same to S3; some servers want the
        // bare form, and it must be signed exactly as sent.
        let uri = url.as_str().replace("uploads=&", "uploads&");
        let mut req = HttpRequest::new(HttpRequestBody::empty());
        *req.method_mut() = method.clone();
        *req.uri_mut() = uri.parse().context("building the request")?;
        AwsAuthorizer::new(&self.credential, "s3", &self.region).authorize(&mut req, None);
        let mut out = self.http.request(method.clone(), uri.as_str());
        for (name, value) in req.headers() {
            if name != reqwest::header::HOST {
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
pub(super) fn check_endpoint(raw: &str, allow_http: bool) -> Result<String, String> {
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
pub(super) fn check_bucket(b: &str) -> Result<(), String> {
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
pub(super) fn parse_uploads(xml: &str) -> Vec<(String, String)> {
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
pub(super) fn xml_text(xml: &str, tag: &str) -> Option<String> {
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
pub(super) fn s3_code(body: &str) -> Option<String> {
    let code = xml_text(body, "Code")?;
    Some(match xml_text(body, "Message") {
        Some(m) if !m.is_empty() => format!("{code}: {m}"),
        _ => code,
    })
}

/// A reqwest error as a short sentence (the innermost cause).
pub(super) fn reqwest_msg(e: &reqwest::Error) -> String {
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
pub(super) fn s3_error(e: &object_store::Error) -> String {
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
pub(super) fn chain_reqwest(e: &object_store::Error) -> Option<&reqwest::Error> {
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
    pub(super) s3: Arc<AmazonS3>,
    pub(super) location: object_store::path::Path,
    pub(super) key: String,
    pub(super) buf: Vec<u8>,
    pub(super) multipart: Option<Box<dyn MultipartUpload>>,
    pub(super) parts: JoinSet<object_store::Result<()>>,
    pub(super) parts_sent: usize,
    /// Completed or aborted: nothing for `Drop` to clean.
    pub(super) done: bool,
}

impl S3Upload {
    pub(super) fn part_size(&self) -> usize {
        let doublings = (self.parts_sent / PARTS_PER_SIZE).min(16) as u32;
        (PART << doublings).min(PART_MAX)
    }

    pub(super) async fn write(&mut self, mut data: &[u8]) -> anyhow::Result<()> {
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
    pub(super) async fn send_part(&mut self, part: Vec<u8>) -> anyhow::Result<()> {
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

    pub(super) async fn join_one(&mut self) -> anyhow::Result<()> {
        match self.parts.join_next().await {
            None | Some(Ok(Ok(()))) => Ok(()),
            Some(Ok(Err(e))) => bail!("uploading a part of {}: {}", self.key, s3_error(&e)),
            Some(Err(e)) => bail!("uploading a part of {}: {e}", self.key),
        }
    }

    pub(super) async fn finish(mut self) -> anyhow::Result<()> {
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

    pub(super) async fn abort(mut self) {
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
