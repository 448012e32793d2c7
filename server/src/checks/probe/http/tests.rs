//! Tests of the HTTP probe: judging answers, redirects and the SSRF guard.
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
        if head.starts_with("GET /health ") && head.contains("user-agent: Opsdeck-HealthCheck/") {
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
    let base = server(|_| Answer::After(Duration::ZERO, response("500 Oops", "", "boom"))).await;
    let p = HttpClients::new().probe(&check(&base), T).await;
    assert_eq!(p.status, CheckStatus::Critical);
    assert_eq!(p.message, "HTTP 500 (expected 200–399)");
    assert_eq!(metric(&p, "status_code"), Some(500.0));
    assert!(p.latency_ms.is_some());
}

#[tokio::test]
async fn expected_status_list_is_honoured() {
    let base = server(|_| Answer::After(Duration::ZERO, response("404 Not Found", "", ""))).await;
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
        server(|_| Answer::After(Duration::from_millis(300), response("200 OK", "", "ok"))).await;
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
