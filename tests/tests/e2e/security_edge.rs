//! Issue 19, the edge: client addresses behind proxies, atomic login
//! throttling, bounded password hashing, per-source rate limits, folded
//! audit entries for anonymous refusals, the Host allow-list, the `__Host-`
//! cookie and capability tokens kept out of request logs. Each test performs
//! the attack.

use std::time::{Duration, Instant};

use futures::future::join_all;
use opsdeck::config::RateLimits;
use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::server::{Api, TestServer, PASSWORD};
use opsdeck_e2e::util::{error_code, process_database};
use opsdeck_wire::Role;
use reqwest::header::{COOKIE, HOST, ORIGIN, RETRY_AFTER, SET_COOKIE};
use serde_json::json;
use sqlx::types::ipnetwork::IpNetwork;

fn nets(list: &[&str]) -> Vec<IpNetwork> {
    list.iter().map(|n| n.parse().expect("network")).collect()
}

/// A login attempt with an optional `X-Forwarded-For`.
async fn login_from(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
    xff: Option<&str>,
) -> reqwest::Response {
    let mut req = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": user, "password": password}));
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.expect("login request")
}

async fn failure_sources(server: &TestServer) -> Vec<Option<String>> {
    sqlx::query_scalar(
        "SELECT source FROM audit_log WHERE action = 'auth.login' AND outcome = 'failure' ORDER BY seq",
    )
    .fetch_all(&server.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    // The panel trusts a proxy network, but this peer (127.0.0.1) is not in it.
    let server = TestServer::start_with(|s| s.trusted_proxies = nets(&["10.0.0.0/8"])).await;
    server.create_user("alice", Role::Viewer).await;
    let http = reqwest::Client::new();
    for i in 0..11 {
        let spoof = format!("198.51.100.{i}");
        let res = login_from(
            &http,
            &server.base,
            &format!("guess{i}"),
            "wrong-password-123",
            Some(&spoof),
        )
        .await;
        assert_eq!(res.status(), 401, "attempt {i}");
    }
    let res = login_from(
        &http,
        &server.base,
        "alice",
        PASSWORD,
        Some("198.51.100.200"),
    )
    .await;
    assert_eq!(
        res.status(),
        429,
        "a fresh X-Forwarded-For does not escape the real peer's delay"
    );
    let sources = failure_sources(&server).await;
    assert_eq!(sources.len(), 11);
    assert!(
        sources.iter().all(|s| s.as_deref() == Some("127.0.0.1")),
        "the audit log names the peer, not the claim: {sources:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_chain_resolves_the_client() {
    // 127.0.0.1 is the edge proxy, 10.0.0.0/8 an inner one.
    let server =
        TestServer::start_with(|s| s.trusted_proxies = nets(&["127.0.0.1/32", "10.0.0.0/8"])).await;
    server.create_user("alice", Role::Viewer).await;
    let http = reqwest::Client::new();
    // The client claims a different address each time (the left part, which
    // the proxies pass on); the proxies append what they saw.
    for i in 0..11 {
        let chain = format!("192.0.2.{i}, 203.0.113.9, 10.1.2.3");
        let res = login_from(
            &http,
            &server.base,
            &format!("guess{i}"),
            "wrong-password-123",
            Some(&chain),
        )
        .await;
        assert_eq!(res.status(), 401, "attempt {i}");
    }
    let res = login_from(
        &http,
        &server.base,
        "alice",
        PASSWORD,
        Some("192.0.2.250, 203.0.113.9, 10.1.2.3"),
    )
    .await;
    assert_eq!(
        res.status(),
        429,
        "the client behind the proxies is throttled"
    );
    let other = login_from(
        &http,
        &server.base,
        "alice",
        PASSWORD,
        Some("198.51.100.7, 10.1.2.3"),
    )
    .await;
    assert_eq!(
        other.status(),
        200,
        "another client behind the same proxy is not"
    );
    let sources = failure_sources(&server).await;
    assert!(
        sources.iter().all(|s| s.as_deref() == Some("203.0.113.9")),
        "the rightmost untrusted entry is the client: {sources:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_wrong_guesses_cannot_slip_past_the_count() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let attempts = (0..50).map(|i| {
        let http = http.clone();
        let base = server.base.clone();
        async move {
            login_from(
                &http,
                &base,
                &format!("guess{i}"),
                "wrong-password-123",
                None,
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = join_all(attempts).await;
    let evaluated = statuses.iter().filter(|s| **s == 401).count();
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(evaluated + throttled, 50, "{statuses:?}");
    // 10 free failures per address, the 11th starts the first delay.
    assert!(
        evaluated <= 11,
        "{evaluated} of 50 concurrent guesses had their password checked"
    );
    let recorded = failure_sources(&server).await.len();
    assert_eq!(
        recorded, evaluated,
        "each checked guess is in the audit log"
    );
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_login_flood_for_unknown_users_does_not_balloon_memory() {
    let (url, _pool) = process_database().await;
    // Every attempt from its own address (through a trusted proxy), so the
    // failure throttle does not stop them: this is about hashing.
    let p = OpsdeckProcess::start(&url, &[("OPSDECK_TRUSTED_PROXIES", "127.0.0.1")]).await;
    p.wait_ready().await;
    let http = reqwest::Client::new();
    // Warm up: one login of each kind (the dummy hash, the pools).
    login_from(
        &http,
        p.base(),
        "nobody",
        "wrong-password-123",
        Some("192.0.2.1"),
    )
    .await;
    p.login("ops").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(p.pid());
    let pid = p.pid();
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let sampling = sampling.clone();
        tokio::spawn(async move {
            let mut peak = 0;
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let attempts = (0..64).map(|i| {
        let http = http.clone();
        let base = p.base().to_owned();
        async move {
            let xff = format!("198.51.{}.{}", i / 200, i % 200 + 1);
            login_from(
                &http,
                &base,
                &format!("ghost{i}"),
                "wrong-password-123",
                Some(&xff),
            )
            .await
            .status()
            .as_u16()
        }
    });
    let statuses = join_all(attempts).await;
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let peak = sampler.await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after = rss_kib(p.pid());
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "unknown users are refused (or told to come back): {statuses:?}"
    );
    assert!(
        statuses.iter().filter(|s| **s == 401).count() >= 16,
        "most attempts were checked: {statuses:?}"
    );
    let grew = peak.saturating_sub(before) / 1024;
    assert!(
        grew < 100,
        "64 concurrent logins raised RSS by {grew} MiB ({before} KiB → peak {peak} KiB)"
    );
    let kept = after.saturating_sub(before) / 1024;
    assert!(
        kept < 100,
        "RSS stays {kept} MiB above the start afterwards"
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_and_known_users_take_as_long_to_refuse() {
    let server = TestServer::start_with(|s| s.trusted_proxies = nets(&["127.0.0.1/32"])).await;
    for i in 0..15 {
        server.create_user(&format!("known{i}"), Role::Viewer).await;
    }
    let http = reqwest::Client::new();
    // Warm up both paths.
    login_from(
        &http,
        &server.base,
        "warm-unknown",
        "wrong-password-123",
        Some("192.0.2.200"),
    )
    .await;
    login_from(
        &http,
        &server.base,
        "known0",
        "wrong-password-123",
        Some("192.0.2.201"),
    )
    .await;
    let (mut known, mut unknown) = (vec![], vec![]);
    for i in 0..15 {
        // Each attempt from its own address: only the password check differs.
        let t = Instant::now();
        let res = login_from(
            &http,
            &server.base,
            &format!("known{i}"),
            "wrong-password-123",
            Some(&format!("10.7.0.{i}")),
        )
        .await;
        known.push(t.elapsed());
        assert_eq!(res.status(), 401);
        let t = Instant::now();
        let res = login_from(
            &http,
            &server.base,
            &format!("unknown{i}"),
            "wrong-password-123",
            Some(&format!("10.8.0.{i}")),
        )
        .await;
        unknown.push(t.elapsed());
        assert_eq!(res.status(), 401);
    }
    let (k, u) = (median(known), median(unknown));
    let ratio = u.as_secs_f64() / k.as_secs_f64();
    assert!(
        (0.5..=2.0).contains(&ratio),
        "median refusal: unknown user {u:?}, known user {k:?} (ratio {ratio:.2})"
    );
}

async fn audit_rows(server: &TestServer) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_log")
        .fetch_one(&server.pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_refused_requests_adds_a_bounded_number_of_audit_rows() {
    // Limits off: every request reaches the audit middleware.
    let server = TestServer::start().await;
    let before = audit_rows(&server).await;
    let anon = Api::new(&server.base);
    let flood = 300;
    let started = chrono::Utc::now() - chrono::Duration::seconds(1);
    for _ in 0..flood {
        let res = anon.post("/api/v1/engines", &json!({"name": "x"})).await;
        assert_eq!(res.status(), 401);
    }
    let grew = audit_rows(&server).await - before;
    assert!(
        (1..=3).contains(&grew),
        "{flood} refused requests added {grew} audit rows"
    );
    // Once the minute is over, one entry records how many were folded.
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let (firsts, repeats): (i64, i64) = sqlx::query_as(
            "SELECT count(*) FILTER (WHERE action = 'request.denied'),
                    coalesce(sum((params->>'count')::bigint) FILTER (WHERE action = 'request.denied_repeats'), 0)::bigint
             FROM audit_log WHERE at >= $1 AND source = '127.0.0.1'",
        )
        .bind(started)
        .fetch_one(&server.pool)
        .await
        .unwrap();
        if firsts + repeats == flood {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the counts add up to {} of {flood} refused requests",
            firsts + repeats
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let grew = audit_rows(&server).await - before;
    assert!(grew <= 5, "{grew} rows in the end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_source_budgets_answer_429_with_retry_after() {
    let server = TestServer::start_with(|s| {
        s.trusted_proxies = nets(&["127.0.0.1/32"]);
        s.rate_limits = RateLimits {
            anonymous: 20,
            login: 5,
            heartbeat: 5,
        };
    })
    .await;
    let http = reqwest::Client::new();
    let post = |xff: &'static str| {
        http.post(server.url("/api/v1/engines"))
            .header("x-forwarded-for", xff)
            .json(&json!({"name": "x"}))
            .send()
    };
    let mut statuses = vec![];
    for _ in 0..30 {
        statuses.push(post("192.0.2.10").await.unwrap().status().as_u16());
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 401).count(),
        20,
        "{statuses:?}"
    );
    let limited = post("192.0.2.10").await.unwrap();
    assert_eq!(limited.status(), 429);
    let retry: u64 = limited.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");
    assert_eq!(error_code(limited).await, "rate_limited");
    assert_eq!(
        post("192.0.2.11").await.unwrap().status(),
        401,
        "another source has its own budget"
    );
    // Logins: 5 per minute, before any password is checked.
    for i in 0..5 {
        let res = login_from(
            &http,
            &server.base,
            &format!("g{i}"),
            "wrong-password-123",
            Some("192.0.2.20"),
        )
        .await;
        assert_eq!(res.status(), 401);
    }
    let res = login_from(
        &http,
        &server.base,
        "g5",
        "wrong-password-123",
        Some("192.0.2.20"),
    )
    .await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key(RETRY_AFTER));
    assert_eq!(error_code(res).await, "rate_limited");
    // Heartbeats: 5 per minute.
    for _ in 0..5 {
        let res = http
            .get(server.url("/api/v1/heartbeat/not-a-token"))
            .header("x-forwarded-for", "192.0.2.30")
            .send()
            .await
            .unwrap();
        assert_ne!(res.status(), 429);
    }
    let res = http
        .get(server.url("/api/v1/heartbeat/not-a-token"))
        .header("x-forwarded-for", "192.0.2.30")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key(RETRY_AFTER));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rebound_host_name_is_refused() {
    let server = TestServer::start_with(|s| {
        s.public_origin = Some("https://panel.test".into());
        s.allowed_hosts = Some(opsdeck::config::allowed_hosts_for(
            "https://panel.test",
            s.listen,
            "",
        ));
        // Plain-HTTP test listener: keep the cookie usable.
        s.secure_cookies = false;
    })
    .await;
    server.create_user("alice", Role::Admin).await;
    let http = reqwest::Client::new();
    // DNS rebinding: the attacker's name now points at the panel, and the
    // browser sends it as Host.
    let port = server.addr.port();
    for path in ["/api/v1/status", "/", "/api/v1/auth/login"] {
        let res = http
            .get(server.url(path))
            .header(HOST, format!("attacker.example:{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 421, "{path}");
        assert_eq!(error_code(res).await, "host_not_allowed");
    }
    let res = http
        .post(server.url("/api/v1/auth/login"))
        .header(HOST, "attacker.example")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 421, "no login under a foreign name");
    // The public name and loopback are answered.
    for host in [
        "panel.test".to_owned(),
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
    ] {
        let res = http
            .post(server.url("/api/v1/auth/login"))
            .header(HOST, &host)
            .json(&json!({"username": "alice", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "Host {host}");
    }
    // Health probes use whatever name reaches the container.
    let res = http
        .get(server.url("/healthz"))
        .header(HOST, "opsdeck-container:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A mutating request from a foreign origin is refused (CSRF).
    let res = http
        .post(server.url("/api/v1/auth/login"))
        .header(HOST, "panel.test")
        .header(ORIGIN, "https://attacker.example")
        .json(&json!({"username": "alice", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secure_session_cookie_carries_the_host_prefix() {
    let server = TestServer::start_with(|s| s.secure_cookies = true).await;
    server.create_user("alice", Role::Viewer).await;
    let http = reqwest::Client::new();
    let res = login_from(&http, &server.base, "alice", PASSWORD, None).await;
    assert_eq!(res.status(), 200);
    let set = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.contains("opsdeck_session="))
        .expect("a session cookie")
        .to_owned();
    assert!(set.starts_with("__Host-opsdeck_session="), "{set}");
    assert!(set.contains("Secure") && set.contains("Path=/"), "{set}");
    assert!(!set.to_ascii_lowercase().contains("domain="), "{set}");
    let token = set["__Host-opsdeck_session=".len()..]
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let me = |cookie: String| {
        http.get(server.url("/api/v1/me"))
            .header(COOKIE, cookie)
            .send()
    };
    assert_eq!(
        me(format!("__Host-opsdeck_session={token}"))
            .await
            .unwrap()
            .status(),
        200
    );
    // A cookie without the prefix (planted by a sibling subdomain or over
    // plain HTTP) is not a session.
    assert_eq!(
        me(format!("opsdeck_session={token}"))
            .await
            .unwrap()
            .status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn capability_tokens_stay_out_of_the_request_log() {
    let (url, _pool) = process_database().await;
    let p = OpsdeckProcess::start(&url, &[("RUST_LOG", "info,tower_http=debug")]).await;
    p.wait_ready().await;
    let heartbeat = "hbTOKENq7Vv2lX9cRk3mN8pZ0sW4yB6dF1gH5jL";
    let ack = "ackTOKENx3Qe8Tn1Ub5Yc7Wd9Af2Gh4Jk6Lm0Pr";
    let http = reqwest::Client::new();
    http.get(p.url(&format!("/api/v1/heartbeat/{heartbeat}")))
        .send()
        .await
        .unwrap();
    http.post(p.url(&format!("/api/v1/heartbeat/{heartbeat}")))
        .send()
        .await
        .unwrap();
    http.get(p.url(&format!("/ack/{ack}")))
        .send()
        .await
        .unwrap();
    http.post(p.url(&format!("/ack/{ack}")))
        .form(&[("confirm", "1")])
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let log = p.log_tail(1 << 20);
    assert!(
        log.contains("/api/v1/heartbeat/<redacted>") && log.contains("/ack/<redacted>"),
        "the requests are logged (else this test proves nothing):\n{}",
        p.log_tail(4000)
    );
    assert!(!log.contains("hbTOKEN"), "heartbeat token in the log");
    assert!(!log.contains("ackTOKEN"), "ack token in the log");
}
