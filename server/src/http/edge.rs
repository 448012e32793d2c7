//! The edge of the router: which `Host` the panel answers, per-source rate
//! limits, and what request logs may show of a path.
//!
//! **Host allow-list** (DNS rebinding): once `OPSDECK_PUBLIC_URL` is set,
//! a request whose `Host` is not the public URL's host, a loopback name, the
//! listen address or one of `OPSDECK_ALLOWED_HOSTS` is answered 421
//! `host_not_allowed` before anything else runs. A rebound name points the
//! victim's browser at the panel under the attacker's host name; the browser
//! then sends that name as `Host`, which is refused. `/healthz`, `/readyz`
//! and `/metrics` are exempt: container health checks and scrapers use
//! whatever name reaches the container, and none of them carries a session
//! (`/metrics` needs its token). Without a public URL nothing is checked (a
//! panel opened by IP address would refuse itself).
//!
//! **Rate limits**, per client address (see `auth::source_of`), each a token
//! bucket holding one minute's budget (`OPSDECK_RATE_LIMIT_*`, 0 = off):
//! - `login`: `POST /api/v1/auth/login` (on top of the failure throttle);
//! - `heartbeat`: `/api/v1/heartbeat/*`;
//! - `anonymous`: requests without a session cookie or bearer token to
//!   `/api/*`, `/ack/*` or with a mutating method each take a token; every
//!   refused answer (401, 403, 429) takes one too, and while the bucket is
//!   empty a request *with* credentials from that address is refused as
//!   well (a flood of forged cookies or tokens is a flood all the same).
//!   The SPA's files, `/status`, `/healthz` and `/readyz` are not limited.
//!
//! An exhausted budget answers 429 `rate_limited` with `Retry-After`,
//! without touching the database; refused mutating requests are counted in
//! the audit log through [`super::refusals`] (one entry per source and
//! minute). The buckets live in memory, per process: replicas each keep
//! their own.
//!
//! **Log redaction**: heartbeat and acknowledge-link URLs carry capability
//! tokens in their path; [`loggable_path`] is what the request span records.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use opsdeck_wire::Outcome;
use serde_json::json;

use super::refusals::Refusals;
use crate::audit::{Actor, NewEntry};
use crate::auth;
use crate::config::RateLimits;
use crate::error::error_response;
use crate::state::AppState;

/// Path prefixes whose next segment is a capability token.
const TOKEN_PREFIXES: &[&str] = &["/api/v1/heartbeat/", "/ack/"];

/// The path as request logs may show it: capability tokens replaced.
pub fn loggable_path(path: &str) -> std::borrow::Cow<'_, str> {
    for prefix in TOKEN_PREFIXES {
        if let Some(rest) = path.strip_prefix(prefix) {
            let tail = rest.find('/').map_or("", |i| &rest[i..]);
            return format!("{prefix}<redacted>{tail}").into();
        }
    }
    path.into()
}

/// What the edge layers share: the app state, the buckets and the refusal
/// counter.
#[derive(Clone)]
pub struct Edge {
    pub state: AppState,
    pub limiter: Arc<Limiter>,
    pub refusals: Arc<Refusals>,
}

impl Edge {
    pub fn new(state: AppState) -> Edge {
        let limiter = Arc::new(Limiter::new(state.settings.rate_limits));
        let refusals = Refusals::start(state.pool.clone());
        Edge {
            state,
            limiter,
            refusals,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Anonymous,
    Login,
    Heartbeat,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Keyed token buckets (kind, client address).
pub struct Limiter {
    limits: RateLimits,
    buckets: Mutex<HashMap<(Kind, String), Bucket>>,
}

/// Buckets kept before full (idle) ones are dropped.
const MAX_BUCKETS: usize = 50_000;

impl Limiter {
    fn new(limits: RateLimits) -> Limiter {
        Limiter {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn per_minute(&self, kind: Kind) -> u32 {
        match kind {
            Kind::Anonymous => self.limits.anonymous,
            Kind::Login => self.limits.login,
            Kind::Heartbeat => self.limits.heartbeat,
        }
    }

    /// Takes `cost` tokens (0 only looks); `Err(wait)` when the bucket
    /// holds less than one token.
    fn take(&self, kind: Kind, source: &str, cost: f64) -> Result<(), Duration> {
        let per_minute = self.per_minute(kind);
        if per_minute == 0 {
            return Ok(());
        }
        let capacity = f64::from(per_minute);
        let rate = capacity / 60.0;
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        if buckets.len() >= MAX_BUCKETS {
            buckets.retain(|(k, _), b| {
                let cap = f64::from(self.per_minute(*k));
                b.tokens + now.duration_since(b.at).as_secs_f64() * cap / 60.0 < cap
            });
        }
        let bucket = buckets.entry((kind, source.to_owned())).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        bucket.tokens =
            (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(capacity);
        bucket.at = now;
        if bucket.tokens < 1.0 {
            return Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate));
        }
        bucket.tokens -= cost;
        Ok(())
    }
}

fn is_mutating(m: &Method) -> bool {
    !matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

fn is_refusal(status: StatusCode) -> bool {
    matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    )
}

/// Refuses a `Host` outside the allow-list (see the module doc).
pub async fn check_host(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let Some(allowed) = &edge.state.settings.allowed_hosts else {
        return next.run(req).await;
    };
    let path = req.uri().path();
    if matches!(path, "/healthz" | "/readyz" | "/metrics") {
        return next.run(req).await;
    }
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.uri().authority().map(|a| a.to_string()))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let bare = crate::config::strip_port(&host);
    if allowed.iter().any(|a| *a == host || *a == bare) {
        return next.run(req).await;
    }
    error_response(
        StatusCode::MISDIRECTED_REQUEST,
        "host_not_allowed",
        "this host name is not one this panel answers (OPSDECK_PUBLIC_URL, OPSDECK_ALLOWED_HOSTS)",
    )
}

/// Applies the per-source budgets (see the module doc).
pub async fn limit(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let source = auth::source_of(
        req.headers(),
        req.extensions(),
        &edge.state.settings.trusted_proxies,
    )
    .unwrap_or_else(|| "unknown".into());
    let path = req.uri().path();
    let credentials = req.headers().contains_key(header::AUTHORIZATION)
        || req.headers().contains_key(header::COOKIE);
    let mutating = is_mutating(req.method());
    let (kind, cost) = if path.starts_with("/api/v1/heartbeat/") {
        (Some(Kind::Heartbeat), 1.0)
    } else if path == "/api/v1/auth/login" {
        (Some(Kind::Login), 1.0)
    } else if !credentials && (path.starts_with("/api/") || path.starts_with("/ack/") || mutating) {
        (Some(Kind::Anonymous), 1.0)
    } else if credentials {
        // Only looks: refused while the source's refusal budget is spent.
        (Some(Kind::Anonymous), 0.0)
    } else {
        (None, 0.0)
    };
    let mut checks = vec![];
    if let Some(k) = kind {
        checks.push((k, cost));
        if k != Kind::Anonymous {
            // Logins and heartbeats still stop once refusals used the budget up.
            checks.push((Kind::Anonymous, 0.0));
        }
    }
    for (k, cost) in checks {
        if let Err(wait) = edge.limiter.take(k, &source, cost) {
            if mutating {
                let entry = NewEntry {
                    actor: Actor::anonymous(),
                    action: "request.denied".into(),
                    target: Some(format!(
                        "{} {}",
                        req.method(),
                        loggable_path(req.uri().path())
                    )),
                    params: json!({"status": 429}),
                    source: Some(source.clone()),
                    outcome: Outcome::Denied,
                    detail: Some("rate limited".into()),
                };
                edge.refusals.record(entry).await;
            }
            return rate_limited(wait);
        }
    }
    let charged = kind == Some(Kind::Anonymous) && cost > 0.0;
    let res = next.run(req).await;
    if is_refusal(res.status()) && !charged {
        let _ = edge.limiter.take(Kind::Anonymous, &source, 1.0);
    }
    res
}

fn rate_limited(wait: Duration) -> Response {
    let mut res = error_response(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        "too many requests from this address; see Retry-After",
    );
    let secs = wait.as_secs().max(1).to_string();
    if let Ok(v) = HeaderValue::from_str(&secs) {
        res.headers_mut().insert(header::RETRY_AFTER, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_in_paths_are_redacted() {
        assert_eq!(
            loggable_path("/api/v1/heartbeat/abc123"),
            "/api/v1/heartbeat/<redacted>"
        );
        assert_eq!(loggable_path("/ack/tok/x"), "/ack/<redacted>/x");
        assert_eq!(loggable_path("/api/v1/checks/3"), "/api/v1/checks/3");
    }

    #[test]
    fn a_bucket_holds_a_minute_and_refills() {
        let l = Limiter::new(RateLimits {
            anonymous: 3,
            login: 0,
            heartbeat: 0,
        });
        for _ in 0..3 {
            assert!(l.take(Kind::Anonymous, "a", 1.0).is_ok());
        }
        let wait = l.take(Kind::Anonymous, "a", 1.0).unwrap_err();
        assert!(wait > Duration::from_secs(1) && wait <= Duration::from_secs(20));
        assert!(l.take(Kind::Anonymous, "b", 1.0).is_ok(), "per source");
        assert!(l.take(Kind::Login, "a", 1.0).is_ok(), "0 is unlimited");
    }
}
