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

    /// The SSRF policy these clients apply.
    pub(crate) fn policy(&self) -> Policy {
        self.policy
    }

    /// The client for this pair, built on first use (a `Client` is a cheap
    /// handle to its shared pool).
    pub(crate) fn client(&self, tls_verify: bool, max_redirects: u8) -> Result<Client, String> {
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
/// A reply read whole up to a cap: status, body, and whether it was cut.
pub(super) struct Capped {
    pub status: u16,
    pub body: Vec<u8>,
    pub cut: bool,
}

/// Sends `req` and reads at most `cap` bytes of the answer, all within
/// `timeout` (plus a little, so reqwest's own timeout speaks first); the
/// error is the probe's message.
pub(super) async fn fetch_capped(
    req: reqwest::RequestBuilder,
    cap: usize,
    timeout: Duration,
) -> Result<Capped, String> {
    let exchange = async {
        let mut resp = req.send().await?;
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let mut cut = false;
        while let Some(chunk) = resp.chunk().await? {
            if body.len() + chunk.len() > cap {
                cut = true;
                break;
            }
            body.extend_from_slice(&chunk);
        }
        Ok::<_, reqwest::Error>(Capped { status, body, cut })
    };
    match tokio::time::timeout(timeout + Duration::from_millis(100), exchange).await {
        Err(_) => Err(timed_out(timeout)),
        Ok(Err(e)) => Err(describe_reqwest(&e, timeout)),
        Ok(Ok(r)) => Ok(r),
    }
}

pub(super) fn describe_reqwest(e: &reqwest::Error, timeout: Duration) -> String {
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
mod tests;
