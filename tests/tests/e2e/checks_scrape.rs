//! Direct-scrape metric checks (no Prometheus in between) against a target
//! whose traffic the test controls, with a real Prometheus scraping the
//! same target as the reference: the error rate and the p95 latency
//! computed by Opsdeck equal Prometheus' own `rate()` and
//! `histogram_quantile()` over the same window within 1 %, and Opsdeck's
//! `rate()` arithmetic on Prometheus' own samples equals its answer; the error rate
//! going 2.7 % → 8 % → 0 % takes the check warning → critical → ok; a bad
//! selector and a target that is no exposition are refused on save; a
//! gauge check reads Prometheus' own, real-world `/metrics`.

use std::time::Duration;

use opsdeck_e2e::flows::checks::{metric, run_check};
use opsdeck_e2e::prometheus::{MetricsTarget, Prometheus};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{expect_error, ok_json, poll};
use opsdeck_wire::{Check, CheckStatus, Role};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(120);
/// The window both sides compute over (s).
const WINDOW: u32 = 30;

async fn create(api: &Api, name: &str, url: &str, measure: Value, w: f64, c: f64) -> Check {
    ok_json(
        api.post(
            "/api/v1/checks",
            &json!({"name": name, "interval_s": 15, "fail_after": 1, "recover_after": 1,
                    "spec": {"kind": "scrape", "url": url, "measure": measure,
                             "window_s": WINDOW, "warning": w, "critical": c}}),
        )
        .await,
        &format!("creating {name}"),
    )
    .await
}

/// Runs the checks once a second for a whole window, so each holds a
/// window's worth of scrapes, as Prometheus does (it scrapes every second).
async fn fill_window(api: &Api, ids: &[i64]) {
    for _ in 0..=WINDOW {
        for id in ids {
            run_check(api, *id).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn within_1pct(ours: f64, theirs: f64, what: &str) {
    let rel = (ours - theirs).abs() / theirs.abs();
    eprintln!(
        "{what}: Opsdeck {ours}, reference {theirs} ({:.4} % apart)",
        rel * 100.0
    );
    assert!(
        rel < 0.01,
        "{what}: Opsdeck {ours} vs Prometheus {theirs} ({:.3} % apart)",
        rel * 100.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrape_checks_agree_with_prometheus_and_follow_the_traffic() {
    let target = MetricsTarget::start().await;
    target.set_rates(97.3, 2.7);
    // 80 % in the 50 ms bucket, 17 % in (0.1, 0.25], 3 % in (0.5, 1]:
    // the p95 falls inside (0.1, 0.25] and is interpolated there.
    target.set_latency_mix(&[(0.8, 0.03), (0.17, 0.2), (0.03, 0.7)]);
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
    let url = target.url();

    // Refused on save: a selector that is PromQL, not a series; a target
    // that answers HTML; a window that cannot hold two scrapes.
    let bad = json!({"name": "bad", "interval_s": 60,
        "spec": {"kind": "scrape", "url": url, "window_s": 300, "warning": 1, "critical": 5,
                 "measure": {"kind": "rate", "series": "rate(http_requests_total[5m])"}}});
    let m = expect_error(admin.post("/api/v1/checks", &bad).await, 400).await;
    assert!(
        m.starts_with("measure: `rate(http_requests_total[5m])`"),
        "{m}"
    );
    let mut html = bad.clone();
    html["spec"]["url"] = json!(server.url("/"));
    html["spec"]["measure"] = json!({"kind": "gauge", "series": "up"});
    let m = expect_error(admin.post("/api/v1/checks", &html).await, 400).await;
    assert!(m.starts_with("url: not a metrics exposition"), "{m}");
    let mut short = bad.clone();
    short["spec"]["measure"] = json!({"kind": "rate", "series": "http_requests_total"});
    short["spec"]["window_s"] = json!(60);
    short["interval_s"] = json!(60);
    let m = expect_error(admin.post("/api/v1/checks", &short).await, 400).await;
    assert!(
        m.starts_with("window_s: the window must hold at least two scrapes"),
        "{m}"
    );

    let ratio = create(
        &admin,
        "error rate",
        &url,
        json!({"kind": "ratio", "numerator": "http_requests_total{code=~\"5..\"}",
               "denominator": "http_requests_total"}),
        1.0,
        5.0,
    )
    .await;
    let p95 = create(
        &admin,
        "p95",
        &url,
        json!({"kind": "quantile", "histogram": "http_request_duration_seconds", "quantile": 0.95}),
        500.0,
        2000.0,
    )
    .await;
    let rate = create(
        &admin,
        "requests/s",
        &url,
        json!({"kind": "rate", "series": "http_requests_total"}),
        1000.0,
        2000.0,
    )
    .await;
    // The first scrape alone cannot make a rate.
    let first = run_check(&operator, rate.id).await;
    assert_eq!(first.status, CheckStatus::Unknown, "{first:?}");
    assert!(first.message.starts_with("collecting"), "{first:?}");

    fill_window(&operator, &[ratio.id, p95.id, rate.id]).await;
    let r = run_check(&operator, ratio.id).await;
    let reference = prom
        .value(&format!(
            "100 * sum(rate(http_requests_total{{code=~\"5..\"}}[{WINDOW}s])) / sum(rate(http_requests_total[{WINDOW}s]))"
        ))
        .await;
    assert_eq!(r.status, CheckStatus::Warning, "{r:?}");
    within_1pct(metric(&r, "ratio_pct"), reference, "error rate");
    within_1pct(
        metric(&r, "ratio_pct"),
        2.7,
        "error rate vs the traffic set",
    );

    let q = run_check(&operator, p95.id).await;
    let reference = prom
        .value(&format!(
            "1000 * histogram_quantile(0.95, sum by (le) (rate(http_request_duration_seconds_bucket[{WINDOW}s])))"
        ))
        .await;
    assert_eq!(q.status, CheckStatus::Ok, "{q:?}");
    within_1pct(metric(&q, "quantile"), reference, "p95");
    assert!(q.message.starts_with("p95 232.3"), "{}", q.message);

    // A counter's rate is extrapolated to the window's edges from the
    // scrape times, which differ between two scrapers on a busy machine:
    // Opsdeck's figure is held to the traffic within 5 %, and its
    // arithmetic to Prometheus' exactly, on Prometheus' own samples.
    let n = run_check(&operator, rate.id).await;
    let ours = metric(&n, "rate_per_s");
    assert!(
        (ours - 100.0).abs() < 5.0,
        "request rate {ours}/s, the traffic is 100/s"
    );
    let at = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as f64
        / 1000.0)
        .floor();
    let selector = format!("http_requests_total{{code=\"500\"}}[{WINDOW}s]");
    let points = prom.samples(&selector, at).await;
    let math = opsdeck::checks::probe::scrape::math::rate(&points, at, f64::from(WINDOW))
        .expect("two points");
    let reference = prom.value_at(&format!("rate({selector})"), at).await;
    within_1pct(math, reference, "rate() over Prometheus' samples");

    // 8 % errors: critical once the window has seen enough of it; none: ok.
    target.set_rates(92.0, 8.0);
    poll(WAIT, "the error rate critical", async || {
        let r = run_check(&operator, ratio.id).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        (r.status == CheckStatus::Critical && r.message.ends_with("(critical ≥ 5)"))
            .then_some(())
            .ok_or(format!("{:?}: {}", r.status, r.message))
    })
    .await;
    target.set_rates(100.0, 0.0);
    poll(WAIT, "the error rate back to ok", async || {
        let r = run_check(&operator, ratio.id).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        (r.status == CheckStatus::Ok && metric(&r, "ratio_pct") < 1.0)
            .then_some(())
            .ok_or(format!("{:?}: {}", r.status, r.message))
    })
    .await;

    // Real-world exposition: Prometheus' own /metrics, a gauge per series.
    let own = create(
        &admin,
        "prometheus build",
        &format!("{}/metrics", prom.url()),
        json!({"kind": "gauge", "series": "prometheus_build_info{version=~\".+\"}"}),
        2.0,
        3.0,
    )
    .await;
    let g = run_check(&operator, own.id).await;
    assert_eq!(g.status, CheckStatus::Ok, "{g:?}");
    assert!(g.message.contains("version=\""), "{}", g.message);
    assert_eq!(
        g.metrics.iter().filter(|m| m.name.starts_with('{')).count(),
        1
    );

    // A target gone away is critical with the reason.
    drop(target);
    let gone = run_check(&operator, ratio.id).await;
    assert_eq!(gone.status, CheckStatus::Critical, "{gone:?}");
}

/// The check form in headless Chromium: "Start from a handbook rule" fills
/// a metric scrape check with the error-rate rule (ratio, 1 % / 5 %, the
/// handbooks named); with the target's URL typed it saves and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_check_from_a_handbook_preset_in_the_browser() {
    use opsdeck_e2e::browser::{screenshots, Browser};
    use opsdeck_e2e::server::PASSWORD;
    use opsdeck_wire::Service;

    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let target = MetricsTarget::start().await;
    target.set_rates(99.0, 1.0);
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    server.user(Role::Operator).await;
    let svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "shop-api", "tier": "critical"}),
            )
            .await,
        "creating the service",
    )
    .await;
    let Ok(b) = Browser::start().await else {
        return;
    };
    b.sign_in(&server.url("/login"), "operator-user", PASSWORD)
        .await;
    b.goto(&server.url(&format!("/services/{}", svc.id))).await;
    b.wait_for("[data-testid=add-check]")
        .await
        .click()
        .await
        .expect("clicking Add check");
    b.wait_for("[data-testid=check-preset]").await;
    // Host-only presets (load per core) are not offered on a service.
    let offered = b
        .execute(
            "return [...document.querySelectorAll('[data-testid=check-preset] option')].map(o => o.value).join(',');",
        )
        .await;
    assert!(
        offered.contains("error-rate") && offered.contains("p95-latency"),
        "{offered}"
    );
    assert!(!offered.contains("load-per-core"), "{offered}");
    b.execute(
        "const p = document.querySelector('[data-testid=check-preset]');
         p.value = 'error-rate'; p.dispatchEvent(new Event('change', {bubbles: true}));
         return 'ok';",
    )
    .await;
    b.wait_for_contains("[data-testid=check-preset-source]", "StackForge")
        .await;
    let filled = b
        .execute(
            "const v = k => document.querySelector(`[data-testid=check-field-${k}]`).value;
             return [document.querySelector('[data-testid=check-kind]').value, v('numerator'),
                     v('denominator'), v('warning'), v('critical'), v('name')].join('|');",
        )
        .await;
    assert_eq!(
        filled,
        r#"scrape|http_requests_total{code=~"5.."}|http_requests_total|1|5|Error rate"#
    );
    b.execute(&format!(
        "const u = document.querySelector('[data-testid=check-field-url]');
         u.value = '{}'; u.dispatchEvent(new Event('input', {{bubbles: true}}));
         const i = document.querySelector('[data-testid=check-field-interval_s]');
         i.value = '10'; i.dispatchEvent(new Event('input', {{bubbles: true}}));
         return 'ok';",
        target.url()
    ))
    .await;
    b.screenshot(&screenshots().join("check-scrape-preset.png"))
        .await;
    b.wait_for("[data-testid=check-save]")
        .await
        .click()
        .await
        .expect("saving");
    // "Error rate" is on the page before the save too (the preset): wait
    // for the saved check itself.
    let c = poll(Duration::from_secs(30), "the check saved", async || {
        let checks: Vec<Check> = ok_json(
            admin
                .get(&format!("/api/v1/checks?service_id={}", svc.id))
                .await,
            "listing the checks",
        )
        .await;
        checks
            .into_iter()
            .find(|c| c.name == "Error rate")
            .ok_or_else(|| "not yet".to_owned())
    })
    .await;
    match &c.spec {
        opsdeck_wire::CheckSpec::Scrape(s) => {
            assert_eq!(s.url, target.url());
            assert_eq!((s.warning, s.critical, s.window_s), (1.0, 5.0, 300));
        }
        other => panic!("not a scrape check: {other:?}"),
    }
    b.close().await;
}
