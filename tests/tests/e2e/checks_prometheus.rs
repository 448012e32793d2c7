//! Prometheus-query checks against a real Prometheus scraping a target
//! whose traffic the test controls: a bad query is refused on save in the
//! server's words; the error rate going 0 % → 3 % → 10 % → 0 % takes the
//! check ok → warning → critical → ok; every returned series is shown with
//! its labels; a server gone away is a clear critical.

use std::time::Duration;

use opsdeck_e2e::flows::checks::{run_check, run_until};
use opsdeck_e2e::prometheus::{MetricsTarget, Prometheus};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{expect_error, ok_json, poll};
use opsdeck_wire::{Check, CheckStatus, ProbeResult, Role, Service};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(90);
const ERROR_RATE: &str =
    r#"sum(rate(http_requests_total{code="500"}[5s])) / sum(rate(http_requests_total[5s]))"#;

async fn until(api: &Api, id: i64, status: CheckStatus, needle: &str) -> ProbeResult {
    run_until(api, id, WAIT, status, needle).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prometheus_query_check_follows_the_error_rate() {
    let target = MetricsTarget::start().await;
    target.set_rates(100.0, 0.0);
    let host = target.host();
    let Ok(prom) = tokio::task::spawn_blocking(move || Prometheus::start(&[host]))
        .await
        .expect("starting prometheus")
    else {
        return;
    };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "api", "tier": "critical"}),
            )
            .await,
        "creating the service",
    )
    .await;
    let body = |query: &str, warning: f64, critical: f64| {
        json!({"service_id": svc.id, "name": format!("q {query}"), "interval_s": 3600,
               "fail_after": 1, "recover_after": 1,
               "spec": {"kind": "prometheus", "url": prom.url(), "query": query,
                        "warning": warning, "critical": critical}})
    };

    // A query the server cannot parse is refused on save, in its words.
    let res = admin
        .post(
            "/api/v1/checks",
            &body("sum(rate(http_requests_total[5s])", 0.01, 0.05),
        )
        .await;
    let m = expect_error(res, 400).await;
    assert!(m.starts_with("query: bad_data:"), "{m}");
    assert!(m.contains("parse error"), "{m}");
    // So are thresholds the wrong way round, and a non-http URL.
    let res = admin.post("/api/v1/checks", &body("up", 0.05, 0.01)).await;
    assert!(expect_error(res, 400).await.starts_with("warning/critical"));
    let mut bad = body("up", 1.0, 2.0);
    bad["spec"]["url"] = json!("file:///etc/passwd");
    assert!(expect_error(admin.post("/api/v1/checks", &bad).await, 400)
        .await
        .starts_with("url:"));

    let check: Check = ok_json(
        admin
            .post("/api/v1/checks", &body(ERROR_RATE, 0.01, 0.05))
            .await,
        "creating the check",
    )
    .await;
    // Healthy traffic: ok once Prometheus has two scrapes in the window.
    until(&operator, check.id, CheckStatus::Ok, "{} 0").await;
    // 3 % errors: warning; 10 %: critical; none again: ok.
    target.set_rates(97.0, 3.0);
    let w = until(
        &operator,
        check.id,
        CheckStatus::Warning,
        "(warning ≥ 0.01)",
    )
    .await;
    assert!(
        w.metrics[0].value > 0.01 && w.metrics[0].value < 0.05,
        "{w:?}"
    );
    target.set_rates(90.0, 10.0);
    until(
        &operator,
        check.id,
        CheckStatus::Critical,
        "(critical ≥ 0.05)",
    )
    .await;
    // Once the 5 s window holds only the new traffic, the value is 10 %.
    poll(WAIT, "the error rate at 10 %", async || {
        let r = run_check(&operator, check.id).await;
        let v = r.metrics.first().map_or(0.0, |m| m.value);
        (r.status == CheckStatus::Critical && (v - 0.1).abs() < 0.01)
            .then_some(())
            .ok_or(format!("{:?}: {}", r.status, r.message))
    })
    .await;
    target.set_rates(100.0, 0.0);
    until(&operator, check.id, CheckStatus::Ok, "{} 0").await;

    // One state per series: each with its labels, the worst first.
    let per: Check = ok_json(
        admin
            .post(
                "/api/v1/checks",
                &body("rate(http_requests_total[5s])", 50.0, 500.0),
            )
            .await,
        "creating a per-series check",
    )
    .await;
    let r = until(&operator, per.id, CheckStatus::Warning, "code=\"500\"").await;
    assert!(
        r.message.starts_with(r#"{code="200",instance=""#),
        "the worst series first: {}",
        r.message
    );
    let series = r.metrics.iter().filter(|m| m.name.starts_with('{')).count();
    assert_eq!(series, 2, "one metric per series: {:?}", r.metrics);

    // The server goes away: critical, saying why, never the URL.
    drop(prom);
    let r = run_check(&operator, check.id).await;
    assert_eq!(r.status, CheckStatus::Critical, "{}", r.message);
    assert!(
        !r.message.is_empty() && !r.message.contains("127.0.0.1"),
        "{}",
        r.message
    );

    server.stop().await;
}
