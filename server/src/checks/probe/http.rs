//! HTTP(S) probe.
//!
//! One request per probe (GET, HEAD or POST with an empty body), judged in
//! this order, the first failure deciding the message:
//!
//! 1. the URL must be `http` or `https` — anything else (`file:`, `ftp:`,
//!    `gopher:`…) is refused before any I/O (cf. Uptime Kuma
//!    CVE-2024-56331); redirects to other schemes are refused too;
//! 2. the status must be in `expect_status`, or 200–399 when it is empty
//!    ("HTTP 500 (expected 200–399)");
//! 3. the body must contain `body_contains` and match `body_regex`
//!    ("body does not contain \"ok\""); a regex that does not compile is
//!    critical ("invalid body regex: …");
//! 4. the response time is graded against `warning_ms` / `critical_ms`.
//!
//! Decisions:
//! * Clients are shared: one `reqwest::Client` per (`tls_verify`,
//!   `max_redirects`) pair, built on first use and kept, so probes reuse
//!   connection pools. The check's timeout is set per request and covers
//!   connect, headers and body.
//! * Redirects: `max_redirects` = 0 follows none, the 3xx is the answer and
//!   is judged against the expected statuses; N > 0 follows up to N, one
//!   more is critical ("too many redirects (more than N)").
//! * The body is read up to 1 MiB ([`BODY_CAP`]) and only that prefix is
//!   searched; the rest is not downloaded.
//! * Latency (`latency_ms`) is the time from sending the request to the end
//!   of the body read (headers only for HEAD). Metric `status_code` too.
//! * Environment proxies (`HTTP_PROXY`…) are ignored: a health check
//!   measures the target, not a proxy.
//! * Messages never contain the URL (it may carry credentials).
//! * SSRF: the shared guard (`net::guard`) under the checks' policy refuses
//!   link-local addresses and cloud metadata services — the URL's host
//!   before any I/O, every DNS answer (the guarded resolver), and every
//!   redirect hop — unless `OPSDECK_CHECKS_ALLOW_LINK_LOCAL` is on.
//!   Loopback and private ranges stay allowed: monitoring them is the
//!   point. Runbook `http` steps use these clients too.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use opsdeck_wire::{CheckStatus, HttpCheck, HttpMethod};
use reqwest::redirect::{Attempt, Policy as RedirectPolicy};
use reqwest::{Client, Url};

use super::net::{describe_error, fmt_ms, grade_latency, one_line, timed_out};
use super::Probe;
use crate::net::guard::{self, GuardedResolver, Policy};

/// The User-Agent of every probe.
pub const USER_AGENT: &str = concat!("Opsdeck-HealthCheck/", env!("CARGO_PKG_VERSION"));

/// How much of a body is read and searched.
pub const BODY_CAP: usize = 1024 * 1024;

/// Shared HTTP clients, one per (TLS verification, redirect limit) pair, so
/// thousands of checks reuse connection pools instead of building a client
/// per probe.
pub struct HttpClients {
    clients: Mutex<HashMap<(bool, u8), Client>>,
    policy: Policy,
}

impl Default for HttpClients {
    fn default() -> Self {
        HttpClients::with_policy(Policy::checks(false))
    }
}

impl HttpClients {
    /// Clients under the default policy (link-local refused).
    pub fn new() -> HttpClients {
        HttpClients::default()
    }

    /// Clients under `policy` (`Policy::checks(settings.checks_allow_link_local)`).
    pub fn with_policy(policy: Policy) -> HttpClients {
        HttpClients {
            clients: Mutex::new(HashMap::new()),
            policy,
        }
    }

    /// Process-wide clients per SSRF setting (runbook `http` steps).
    pub fn shared(allow_link_local: bool) -> &'static HttpClients {
        static PLAIN: std::sync::OnceLock<HttpClients> = std::sync::OnceLock::new();
        static LINK_LOCAL: std::sync::OnceLock<HttpClients> = std::sync::OnceLock::new();
        let cell = if allow_link_local {
            &LINK_LOCAL
        } else {
            &PLAIN
        };
        cell.get_or_init(|| HttpClients::with_policy(Policy::checks(allow_link_local)))
    }

    /// The client for this pair, built on first use (a `Client` is a cheap
    /// handle to its shared pool).
    fn client(&self, tls_verify: bool, max_redirects: u8) -> Result<Client, String> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&(tls_verify, max_redirects)) {
            return Ok(c.clone());
        }
        let client = Client::builder()
            .user_agent(USER_AGENT)
            .redirect(redirect_policy(max_redirects, self.policy))
            .danger_accept_invalid_certs(!tls_verify)
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(GuardedResolver::new(self.policy)))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {}", describe_error(&e)))?;
        clients.insert((tls_verify, max_redirects), client.clone());
        Ok(client)
    }

    pub async fn probe(&self, c: &HttpCheck, timeout: Duration) -> Probe {
        let url = match parse_url(&c.url) {
            Ok(u) => u,
            Err(why) => return Probe::critical(why),
        };
        if let Err(r) = guard::check_target(&url, self.policy) {
            return Probe::critical(format!("refused: {r}"));
        }
        // Compile before any I/O: a bad regex is a configuration error.
        let regex = match c.body_regex.as_deref().filter(|r| !r.is_empty()) {
            None => None,
            Some(re) => match regex::Regex::new(re) {
                Ok(r) => Some(r),
                Err(e) => return Probe::critical(one_line(&format!("invalid body regex: {e}"))),
            },
        };
        let client = match self.client(c.tls_verify, c.max_redirects) {
            Ok(cl) => cl,
            Err(why) => return Probe::critical(why),
        };
        let request = match c.method {
            HttpMethod::Get => client.get(url),
            HttpMethod::Head => client.head(url),
            // An explicit length: some servers answer 411 without one.
            HttpMethod::Post => client
                .post(url)
                .header(reqwest::header::CONTENT_LENGTH, "0")
                .body(Vec::<u8>::new()),
        }
        .timeout(timeout);

        let start = Instant::now();
        let exchange = async {
            let mut resp = request.send().await?;
            let status = resp.status().as_u16();
            // A redirect reqwest did not follow although we asked it to:
            // its Location is not an http(s) URL (or not a URL at all).
            let unfollowed = if c.max_redirects > 0 && matches!(status, 301..=303 | 307 | 308) {
                resp.headers()
                    .get(reqwest::header::LOCATION)
                    .map(|l| unfollowed_redirect(l.to_str().unwrap_or("")))
            } else {
                None
            };
            let mut body = Vec::new();
            let mut truncated = false;
            while let Some(chunk) = resp.chunk().await? {
                let room = BODY_CAP - body.len();
                if chunk.len() >= room {
                    body.extend_from_slice(&chunk[..room]);
                    truncated =
                        chunk.len() > room || resp.content_length() != Some(BODY_CAP as u64);
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, unfollowed, body, truncated))
        };
        // reqwest enforces the timeout; this is a backstop.
        let (status, unfollowed, body, truncated) =
            match tokio::time::timeout(timeout + Duration::from_millis(100), exchange).await {
                Err(_) => return Probe::critical(timed_out(timeout)),
                Ok(Err(e)) => return Probe::critical(describe_reqwest(&e, timeout)),
                Ok(Ok(r)) => r,
            };
        let elapsed = start.elapsed();
        if let Some(why) = unfollowed {
            return Probe::critical(why)
                .latency(elapsed)
                .metric("status_code", status as f64);
        }
        judge(c, regex.as_ref(), status, &body, truncated, elapsed)
    }
}

/// Why a redirect with this `Location` was not followed.
fn unfollowed_redirect(location: &str) -> String {
    match Url::parse(location) {
        Ok(u) if !matches!(u.scheme(), "http" | "https") => {
            RedirectRefused::Scheme(u.scheme().to_string()).to_string()
        }
        _ => "redirect not followed: invalid Location header".into(),
    }
}

/// Parses the URL and refuses anything but http(s).
pub(crate) fn parse_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("invalid URL: {e}"))?;
    match url.scheme() {
        "http" | "https" => {}
        other => {
            return Err(format!(
                "URL scheme \"{other}\" refused: only http and https"
            ))
        }
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("invalid URL: no host".into());
    }
    Ok(url)
}

/// Grades a response: status, then body, then latency.
fn judge(
    c: &HttpCheck,
    regex: Option<&regex::Regex>,
    status: u16,
    body: &[u8],
    truncated: bool,
    elapsed: Duration,
) -> Probe {
    let base = |st: CheckStatus, msg: String| {
        Probe::new(st, msg)
            .latency(elapsed)
            .metric("status_code", status as f64)
    };
    let status_ok = if c.expect_status.is_empty() {
        (200..=399).contains(&status)
    } else {
        c.expect_status.contains(&status)
    };
    if !status_ok {
        let expected = if c.expect_status.is_empty() {
            "200–399".to_string()
        } else {
            c.expect_status
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        return base(
            CheckStatus::Critical,
            format!("HTTP {status} (expected {expected})"),
        );
    }
    let text = String::from_utf8_lossy(body);
    let scope = if truncated {
        " (first 1 MiB checked)"
    } else {
        ""
    };
    if let Some(needle) = c.body_contains.as_deref().filter(|n| !n.is_empty()) {
        if !text.contains(needle) {
            return base(
                CheckStatus::Critical,
                one_line(&format!("body does not contain {needle:?}{scope}")),
            );
        }
    }
    if let Some(re) = regex {
        if !re.is_match(&text) {
            return base(
                CheckStatus::Critical,
                one_line(&format!("body does not match /{}/{scope}", re.as_str())),
            );
        }
    }
    let ok = Probe::ok(format!("HTTP {status} in {}", fmt_ms(elapsed)))
        .metric("status_code", status as f64);
    grade_latency(ok, elapsed, c.warning_ms, c.critical_ms)
}

/// Follows at most `max` redirects, only to http(s) URLs, and never to a
/// host the SSRF guard refuses (IP literals and metadata names here; host
/// names are judged by the guarded resolver when connecting).
fn redirect_policy(max: u8, ssrf: Policy) -> RedirectPolicy {
    if max == 0 {
        return RedirectPolicy::none();
    }
    RedirectPolicy::custom(move |attempt: Attempt| {
        if !matches!(attempt.url().scheme(), "http" | "https") {
            let scheme = attempt.url().scheme().to_string();
            attempt.error(RedirectRefused::Scheme(scheme))
        } else if let Err(r) = guard::check_redirect(attempt.url(), ssrf) {
            attempt.error(r)
        } else if attempt.previous().len() > max as usize {
            // `previous` starts with the original URL.
            attempt.error(RedirectRefused::TooMany(max))
        } else {
            attempt.follow()
        }
    })
}

#[derive(Debug)]
enum RedirectRefused {
    TooMany(u8),
    Scheme(String),
}

impl fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedirectRefused::TooMany(n) => write!(f, "too many redirects (more than {n})"),
            RedirectRefused::Scheme(s) => {
                write!(f, "redirect to a \"{s}\" URL refused: only http and https")
            }
        }
    }
}

impl std::error::Error for RedirectRefused {}

/// One line for a failed request; never the URL.
fn describe_reqwest(e: &reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return timed_out(timeout);
    }
    if let Some(r) = guard::refusal_in(e) {
        return format!("refused: {r}");
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(r) = s.downcast_ref::<RedirectRefused>() {
            return r.to_string();
        }
        src = s.source();
    }
    match std::error::Error::source(e) {
        Some(inner) => {
            let what = describe_error(inner);
            if e.is_body() || e.is_decode() {
                format!("error reading the body: {what}")
            } else {
                what
            }
        }
        None => one_line(&e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// What the test server does with one request.
    enum Answer {
        /// Sleep, then write this raw response and close.
        After(Duration, String),
        /// Reset the connection (RST) after reading the request.
        Reset,
        /// Never answer.
        Hang,
    }

    fn response(status: &str, headers: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n{headers}\r\n{body}",
            body.len()
        )
    }

    fn ok(body: &str) -> Answer {
        Answer::After(Duration::ZERO, response("200 OK", "", body))
    }

    /// Reads a request head (up to the blank line).
    async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        String::from_utf8_lossy(&head).into_owned()
    }

    async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
        mut s: S,
        handler: &(dyn Fn(&str) -> Answer + Send + Sync),
    ) -> Option<S> {
        let head = read_head(&mut s).await;
        match handler(&head) {
            Answer::After(d, raw) => {
                tokio::time::sleep(d).await;
                let _ = s.write_all(raw.as_bytes()).await;
                let _ = s.shutdown().await;
                None
            }
            Answer::Reset => Some(s),
            Answer::Hang => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                None
            }
        }
    }

    /// A plain HTTP server on 127.0.0.1; `handler` gets the request head.
    async fn server(handler: impl Fn(&str) -> Answer + Send + Sync + 'static) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let handler = Arc::new(handler);
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let handler = handler.clone();
                tokio::spawn(async move {
                    if let Some(s) = answer(s, &*handler).await {
                        // SO_LINGER 0: close sends a RST.
                        s.set_zero_linger().unwrap();
                        drop(s);
                    }
                });
            }
        });
        format!("http://{addr}")
    }

    fn check(url: &str) -> HttpCheck {
        HttpCheck {
            url: url.into(),
            method: HttpMethod::Get,
            expect_status: vec![],
            body_contains: None,
            body_regex: None,
            warning_ms: 1000,
            critical_ms: 3000,
            tls_verify: true,
            max_redirects: 0,
        }
    }

    fn metric(p: &Probe, name: &str) -> Option<f64> {
        p.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn http_200_is_ok_and_sends_user_agent() {
        let base = server(|head| {
            if head.starts_with("GET /health ") && head.contains("user-agent: Opsdeck-HealthCheck/")
            {
                ok("all ok")
            } else {
                Answer::After(Duration::ZERO, response("400 Bad Request", "", head))
            }
        })
        .await;
        let p = HttpClients::new()
            .probe(&check(&format!("{base}/health")), T)
            .await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");
        assert!(p.message.starts_with("HTTP 200 in "), "{}", p.message);
        assert_eq!(metric(&p, "status_code"), Some(200.0));
        assert!(metric(&p, "latency_ms").is_some());
        assert_eq!(p.latency_ms, metric(&p, "latency_ms"));
    }

    #[tokio::test]
    async fn http_500_is_critical() {
        let base =
            server(|_| Answer::After(Duration::ZERO, response("500 Oops", "", "boom"))).await;
        let p = HttpClients::new().probe(&check(&base), T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "HTTP 500 (expected 200–399)");
        assert_eq!(metric(&p, "status_code"), Some(500.0));
        assert!(p.latency_ms.is_some());
    }

    #[tokio::test]
    async fn expected_status_list_is_honoured() {
        let base =
            server(|_| Answer::After(Duration::ZERO, response("404 Not Found", "", ""))).await;
        let clients = HttpClients::new();
        let mut c = check(&base);
        c.expect_status = vec![404];
        assert_eq!(clients.probe(&c, T).await.status, CheckStatus::Ok);
        c.expect_status = vec![200, 204];
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "HTTP 404 (expected 200, 204)");
    }

    #[tokio::test]
    async fn slow_answer_over_warning_threshold_is_warning() {
        let base =
            server(|_| Answer::After(Duration::from_millis(300), response("200 OK", "", "ok")))
                .await;
        let mut c = check(&base);
        c.warning_ms = 100;
        c.critical_ms = 10_000;
        let p = HttpClients::new().probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Warning, "{p:?}");
        assert!(p.message.starts_with("slow: "), "{}", p.message);
        assert!(p.message.ends_with("(warning at 100 ms)"), "{}", p.message);
        assert!(p.latency_ms.unwrap() >= 300.0);
        c.critical_ms = 200;
        let p = HttpClients::new().probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(p.message.ends_with("(critical at 200 ms)"), "{}", p.message);
    }

    #[tokio::test]
    async fn body_contains_and_regex() {
        let base = server(|_| ok("status: healthy\n")).await;
        let clients = HttpClients::new();
        let mut c = check(&base);
        c.body_contains = Some("ok".into());
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "body does not contain \"ok\"");
        assert_eq!(metric(&p, "status_code"), Some(200.0));

        c.body_contains = Some("healthy".into());
        assert_eq!(clients.probe(&c, T).await.status, CheckStatus::Ok);

        c.body_regex = Some(r"^status: (healthy|degraded)$".into());
        let p = clients.probe(&c, T).await;
        assert_eq!(
            p.status,
            CheckStatus::Critical,
            "no (?m): ^…$ spans the whole body"
        );
        assert!(
            p.message.starts_with("body does not match /^status"),
            "{}",
            p.message
        );

        c.body_regex = Some(r"(?m)^status: (healthy|degraded)$".into());
        assert_eq!(clients.probe(&c, T).await.status, CheckStatus::Ok);

        c.body_regex = Some("(unclosed".into());
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(
            p.message.starts_with("invalid body regex: "),
            "{}",
            p.message
        );
        assert!(!p.message.contains('\n'));
        assert!(p.latency_ms.is_none(), "no request is made");
    }

    #[tokio::test]
    async fn body_read_is_capped() {
        // 2 MiB of filler, the needle after the first MiB.
        let body = format!("{}NEEDLE", "x".repeat(2 * BODY_CAP));
        let base = server(move |_| ok(&body)).await;
        let mut c = check(&base);
        c.body_contains = Some("NEEDLE".into());
        let p = HttpClients::new().probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(
            p.message,
            "body does not contain \"NEEDLE\" (first 1 MiB checked)"
        );
    }

    #[tokio::test]
    async fn methods_head_and_post_are_sent() {
        let base = server(|head| {
            let method = head.split(' ').next().unwrap_or("").to_string();
            let code = match method.as_str() {
                "HEAD" => "204 No Content",
                "POST" if head.to_ascii_lowercase().contains("content-length: 0") => "201 Created",
                _ => "405 Method Not Allowed",
            };
            Answer::After(Duration::ZERO, response(code, "", ""))
        })
        .await;
        let clients = HttpClients::new();
        let mut c = check(&base);
        c.method = HttpMethod::Head;
        assert_eq!(
            metric(&clients.probe(&c, T).await, "status_code"),
            Some(204.0)
        );
        c.method = HttpMethod::Post;
        assert_eq!(
            metric(&clients.probe(&c, T).await, "status_code"),
            Some(201.0)
        );
    }

    #[tokio::test]
    async fn redirect_followed_or_not() {
        let base = server(|head| {
            if head.starts_with("GET /final ") {
                ok("arrived")
            } else if head.starts_with("GET /loop ") {
                Answer::After(
                    Duration::ZERO,
                    response("302 Found", "Location: /loop\r\n", ""),
                )
            } else if head.starts_with("GET /file ") {
                Answer::After(
                    Duration::ZERO,
                    response("302 Found", "Location: file:///etc/passwd\r\n", ""),
                )
            } else {
                Answer::After(
                    Duration::ZERO,
                    response("302 Found", "Location: /final\r\n", ""),
                )
            }
        })
        .await;
        let clients = HttpClients::new();

        // max_redirects 0: the 302 is the answer (and 302 is in 200–399).
        let mut c = check(&format!("{base}/start"));
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");
        assert_eq!(metric(&p, "status_code"), Some(302.0));
        // ... but not when only 200 is expected.
        c.expect_status = vec![200];
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "HTTP 302 (expected 200)");

        // Followed: the final answer is judged.
        c.max_redirects = 3;
        c.body_contains = Some("arrived".into());
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");
        assert_eq!(metric(&p, "status_code"), Some(200.0));

        // A redirect loop exceeds the limit.
        let c = HttpCheck {
            max_redirects: 3,
            ..check(&format!("{base}/loop"))
        };
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "too many redirects (more than 3)");

        // Redirects never leave http(s).
        let c = HttpCheck {
            max_redirects: 3,
            ..check(&format!("{base}/file"))
        };
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(
            p.message,
            "redirect to a \"file\" URL refused: only http and https"
        );
    }

    #[tokio::test]
    async fn link_local_targets_and_redirects_are_refused() {
        let base = server(|head| {
            if head.starts_with("GET /meta ") {
                Answer::After(
                    Duration::ZERO,
                    response(
                        "302 Found",
                        "Location: http://169.254.169.254/latest/meta-data/\r\n",
                        "",
                    ),
                )
            } else if head.starts_with("GET /gce ") {
                Answer::After(
                    Duration::ZERO,
                    response(
                        "302 Found",
                        "Location: http://metadata.google.internal/computeMetadata/v1/\r\n",
                        "",
                    ),
                )
            } else {
                ok("fine")
            }
        })
        .await;
        let clients = HttpClients::new();
        // Loopback stays allowed.
        let p = clients.probe(&check(&base), T).await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");
        // The literal, before any I/O.
        let p = clients
            .probe(&check("http://169.254.169.254/latest/meta-data/"), T)
            .await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(
            p.message
                .starts_with("refused: 169.254.169.254 is the cloud metadata address"),
            "{}",
            p.message
        );
        assert!(p.latency_ms.is_none(), "no request is made");
        let p = clients.probe(&check("http://[fe80::1]:8080/"), T).await;
        assert!(p.message.starts_with("refused: fe80::1"), "{}", p.message);
        // Redirects to the metadata service are not followed.
        for path in ["/meta", "/gce"] {
            let c = HttpCheck {
                max_redirects: 3,
                ..check(&format!("{base}{path}"))
            };
            let p = clients.probe(&c, T).await;
            assert_eq!(p.status, CheckStatus::Critical, "{p:?}");
            assert!(
                p.message.starts_with("refused: redirect target ")
                    && p.message.contains("checks_allow_link_local"),
                "{path}: {}",
                p.message
            );
        }
    }

    #[tokio::test]
    async fn connection_reset_is_critical() {
        let base = server(|_| Answer::Reset).await;
        let p = HttpClients::new().probe(&check(&base), T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(
            p.message == "connection reset by peer"
                || p.message == "connection closed before message completed",
            "{}",
            p.message
        );
    }

    #[tokio::test]
    async fn refused_port_is_critical() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let p = HttpClients::new()
            .probe(&check(&format!("http://{addr}/")), T)
            .await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "connection refused");
    }

    #[tokio::test]
    async fn timeout_is_critical() {
        let base = server(|_| Answer::Hang).await;
        let p = HttpClients::new()
            .probe(&check(&base), Duration::from_millis(300))
            .await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "timed out after 300 ms");
    }

    #[tokio::test]
    async fn non_http_schemes_are_refused() {
        let clients = HttpClients::new();
        for url in [
            "file:///etc/passwd",
            "ftp://example.com/",
            "gopher://localhost:70/",
        ] {
            let p = clients.probe(&check(url), T).await;
            assert_eq!(p.status, CheckStatus::Critical, "{url}");
            assert!(p.message.contains("only http and https"), "{}", p.message);
            assert!(p.latency_ms.is_none());
        }
        let p = clients.probe(&check("not a url"), T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(p.message.starts_with("invalid URL"), "{}", p.message);
    }

    #[tokio::test]
    async fn tls_verification_on_and_off() {
        let acceptor = super::super::net::test_tls::acceptor(90);
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(s).await {
                        answer(tls, &|_: &str| ok("secure")).await;
                    }
                });
            }
        });
        let clients = HttpClients::new();
        let mut c = check(&format!("https://localhost:{port}/"));
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "TLS certificate not trusted (unknown issuer)");
        c.tls_verify = false;
        c.body_contains = Some("secure".into());
        let p = clients.probe(&c, T).await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");
    }

    #[test]
    fn clients_are_shared_per_settings() {
        let clients = HttpClients::new();
        clients.client(true, 0).unwrap();
        clients.client(true, 0).unwrap();
        clients.client(false, 0).unwrap();
        clients.client(true, 5).unwrap();
        assert_eq!(clients.clients.lock().unwrap().len(), 3);
    }
}
