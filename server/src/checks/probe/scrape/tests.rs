use super::*;

fn check(measure: ScrapeMeasure, warning: f64, critical: f64) -> ScrapeCheck {
    ScrapeCheck {
        url: "http://127.0.0.1:9/metrics".into(),
        measure,
        window_s: 60,
        warning,
        critical,
        below: false,
        sustained_s: 0,
        tls_verify: true,
    }
}

fn ratio() -> ScrapeMeasure {
    ScrapeMeasure::Ratio {
        numerator: r#"http_requests_total{code=~"5.."}"#.into(),
        denominator: "http_requests_total".into(),
    }
}

/// Feeds `n` scrapes 10 s apart of a target serving `ok`/s and `err`/s.
fn feed(c: &ScrapeCheck, w: &mut Window, n: usize, ok: f64, err: f64) -> f64 {
    let mut t = 0.0;
    for i in 0..n {
        t = 1000.0 + 10.0 * i as f64;
        let secs = 10.0 * i as f64;
        let mut body = format!("http_requests_total{{code=\"200\"}} {}\n", ok * secs);
        if err > 0.0 {
            body += &format!("http_requests_total{{code=\"500\"}} {}\n", err * secs);
        }
        take(c, w, &body, t).unwrap();
    }
    t
}

#[test]
fn the_error_rate_goes_through_warning_and_critical() {
    let c = check(ratio(), 1.0, 5.0);
    let mut w = Window::default();
    let t = feed(&c, &mut w, 1, 100.0, 0.0);
    let p = judge(&c, &w, t);
    assert_eq!(p.status, CheckStatus::Unknown, "{}", p.message);
    assert!(p.message.starts_with("collecting"), "{}", p.message);
    // No 5xx series at all: 0 %.
    let t = feed(&c, &mut w, 7, 100.0, 0.0);
    let p = judge(&c, &w, t);
    assert_eq!(p.status, CheckStatus::Ok, "{}", p.message);
    assert_eq!(p.message, "error rate 0 % over 60 s");
    for (err, status, pct) in [
        (2.0, CheckStatus::Warning, 2.0 / 102.0 * 100.0),
        (10.0, CheckStatus::Critical, 10.0 / 110.0 * 100.0),
    ] {
        let mut w = Window::default();
        let t = feed(&c, &mut w, 7, 100.0, err);
        let p = judge(&c, &w, t);
        assert_eq!(p.status, status, "{}", p.message);
        let v = p
            .metrics
            .iter()
            .find(|m| m.name == "ratio_pct")
            .unwrap()
            .value;
        assert!((v - pct).abs() < 1e-9, "{v} vs {pct}");
    }
}

#[test]
fn no_traffic_is_ok_and_a_missing_denominator_is_critical() {
    let c = check(ratio(), 1.0, 5.0);
    let mut w = Window::default();
    let t = feed(&c, &mut w, 4, 0.0, 0.0);
    let p = judge(&c, &w, t);
    assert_eq!(
        (p.status, p.message.as_str()),
        (CheckStatus::Ok, "no requests in the window")
    );
    let mut w = Window::default();
    take(&c, &mut w, "other_metric 1\n", 1.0).unwrap();
    let p = judge(&c, &w, 1.0);
    assert_eq!(p.status, CheckStatus::Critical);
    assert!(
        p.message.contains("no series `http_requests_total`"),
        "{}",
        p.message
    );
}

#[test]
fn old_points_leave_the_window_and_a_new_measure_starts_afresh() {
    let c = check(ratio(), 1.0, 5.0);
    let mut w = Window::default();
    feed(&c, &mut w, 20, 100.0, 1.0);
    let longest = w.series.values().map(|p| p.len()).max().unwrap();
    // 60 s window, 10 s apart: points in (t - 60, t] are 6.
    assert_eq!(longest, 6);
    let other = check(
        ScrapeMeasure::Rate {
            series: "http_requests_total".into(),
        },
        1.0,
        5.0,
    );
    take(
        &other,
        &mut w,
        "http_requests_total{code=\"200\"} 5\n",
        5000.0,
    )
    .unwrap();
    assert_eq!(w.series.values().map(|p| p.len()).sum::<usize>(), 1);
}

#[test]
fn a_seconds_histogram_is_graded_in_milliseconds() {
    let c = check(
        ScrapeMeasure::Quantile {
            histogram: "lat_seconds".into(),
            quantile: 0.95,
        },
        500.0,
        2000.0,
    );
    let mut w = Window::default();
    let mut t = 0.0;
    for i in 0..7 {
        t = 10.0 * i as f64;
        // 10/s: 90 % under 0.25 s, all under 1 s.
        let n = 10.0 * t;
        let body = format!(
            "lat_seconds_bucket{{le=\"0.25\"}} {}\nlat_seconds_bucket{{le=\"1\"}} {n}\nlat_seconds_bucket{{le=\"+Inf\"}} {n}\nlat_seconds_count {n}\n",
            0.9 * n
        );
        take(&c, &mut w, &body, t).unwrap();
    }
    let p = judge(&c, &w, t);
    // rank 95 of 100 → 0.25 + 0.75 * (5 / 10) = 0.625 s.
    assert_eq!(p.status, CheckStatus::Warning, "{}", p.message);
    assert_eq!(p.message, "p95 625 ms over 60 s (warning ≥ 500)");
}

#[test]
fn gauges_are_graded_per_series() {
    let c = check(
        ScrapeMeasure::Gauge {
            series: r#"lag{group=~"a|b"}"#.into(),
        },
        1000.0,
        10000.0,
    );
    let mut w = Window::default();
    take(
        &c,
        &mut w,
        "lag{group=\"a\"} 20\nlag{group=\"b\"} 12000\nlag{group=\"c\"} 99999\n",
        1.0,
    )
    .unwrap();
    let p = judge(&c, &w, 1.0);
    assert_eq!(p.status, CheckStatus::Critical);
    assert_eq!(
        p.message,
        r#"{group="b"} 12000; {group="a"} 20 (critical ≥ 10000)"#
    );
    // A series gone from the last scrape is not graded on its old value.
    take(&c, &mut w, "lag{group=\"a\"} 30\n", 2.0).unwrap();
    assert_eq!(judge(&c, &w, 2.0).status, CheckStatus::Ok);
}

#[test]
fn fields_and_bodies_are_checked() {
    let mut c = check(ratio(), 1.0, 5.0);
    assert!(check_fields(&c, 10).is_ok());
    assert_eq!(check_fields(&c, 60).unwrap_err().0, "window_s");
    c.window_s = 10;
    assert_eq!(check_fields(&c, 1).unwrap_err().0, "window_s");
    c.window_s = 60;
    c.measure = ScrapeMeasure::Quantile {
        histogram: "lat_seconds_bucket".into(),
        quantile: 0.95,
    };
    assert!(check_fields(&c, 10)
        .unwrap_err()
        .1
        .contains("without `_bucket`"));
    c.measure = ScrapeMeasure::Quantile {
        histogram: "lat_seconds".into(),
        quantile: 95.0,
    };
    assert!(check_fields(&c, 10)
        .unwrap_err()
        .1
        .contains("between 0 and 1"));
    let c = check(ratio(), 1.0, 5.0);
    let mut w = Window::default();
    let e = take(&c, &mut w, "<html><body>login</body></html>\n", 1.0).unwrap_err();
    assert!(e.starts_with("not a metrics exposition"), "{e}");
    assert!(take(&c, &mut w, "", 1.0).is_err());
}
