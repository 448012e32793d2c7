//! Maintenance in headless Chromium: an operator turns maintenance on for
//! chosen services through the form on /maintenance; the banner appears
//! (there and on the dashboard) naming them; the board marks the services;
//! ending it through the confirm dialog removes the banner without a reload.
//!
//! Screenshots land in `<workspace>/target/screenshots/`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_e2e::util::{ok_json, poll};
use opsdeck_wire::{MaintenancePeriod, PeriodStatus, Role, StatusBoard};
use serde_json::json;

/// Waits up to 15 s until nothing matches `css`.
async fn wait_gone(b: &Browser, css: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while b.exists(css).await {
        assert!(
            Instant::now() < deadline,
            "{css} still shown after 15 s at {}",
            b.current_url().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_toggles_maintenance_and_sees_the_banner() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    for (name, tier) in [
        ("ledger", "critical"),
        ("search", "support"),
        ("billing", "application"),
    ] {
        let _: serde_json::Value = ok_json(
            admin
                .post("/api/v1/services", &json!({"name": name, "tier": tier}))
                .await,
            "service",
        )
        .await;
    }
    server.create_user("alice", Role::Operator).await;
    let alice = server.login("alice").await;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&server.url("/login"), "alice", PASSWORD).await;
    assert!(
        !b.exists("[data-testid=maintenance-banner]").await,
        "no banner without maintenance"
    );
    b.goto(&server.url("/maintenance")).await;
    b.wait_for("[data-testid=maint-start-form]").await;

    // Chosen services, a reason, an end two hours from now.
    b.wait_for("[data-testid=maint-scope-services]")
        .await
        .click()
        .await
        .expect("choosing services");
    for name in ["ledger", "search"] {
        b.wait_for(&format!("[data-testid=maint-service-{name}]"))
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("ticking {name}: {e}"));
    }
    let reason = "Upgrading the ledger database to 16.4";
    b.wait_for("[data-testid=maint-reason]")
        .await
        .send_keys(reason)
        .await
        .expect("typing the reason");
    // A datetime-local input takes its value as a user's typing would
    // (the input event); the browser's local time, two hours ahead.
    b.wait_for("[data-testid=maint-until]").await;
    let until_iso = b
        .execute(
            "const el = document.querySelector('[data-testid=maint-until]');
             const d = new Date(Date.now() + 2 * 3600 * 1000);
             d.setSeconds(0, 0);
             const p = n => String(n).padStart(2, '0');
             el.value = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
             el.dispatchEvent(new Event('input', {bubbles: true}));
             el.dispatchEvent(new Event('change', {bubbles: true}));
             return d.toISOString();",
        )
        .await;
    let until: DateTime<Utc> = until_iso
        .parse()
        .unwrap_or_else(|e| panic!("the browser's time {until_iso:?}: {e}"));
    let marker: String = b
        .execute("window.__opsdeck_marker = 'same page'; return window.__opsdeck_marker;")
        .await;
    assert_eq!(marker, "same page");
    b.wait_for("[data-testid=maint-submit]")
        .await
        .click()
        .await
        .expect("turning maintenance on");

    // The period exists as asked, and the banner names who started it.
    let p: MaintenancePeriod = poll(Duration::from_secs(15), "the period", async || {
        let l: Vec<MaintenancePeriod> = alice.json("/api/v1/maintenance/periods?status=open").await;
        l.first().cloned().ok_or("none yet".to_string())
    })
    .await;
    let mut services = p.services.clone();
    services.sort();
    assert_eq!(services, vec!["ledger", "search"]);
    assert_eq!(p.reason, reason);
    assert_eq!(p.started_by, "alice");
    assert_eq!(p.ends_at, until, "the end chosen in the form");
    let banner = format!("[data-testid=maintenance-banner-{}]", p.id);
    b.wait_for(&banner).await;
    b.wait_for_contains("[data-testid=maintenance-banner]", "alice")
        .await;
    b.screenshot(&screenshots().join("maintenance.png")).await;

    // The dashboard shows the banner too, and marks the services.
    b.goto(&server.url("/")).await;
    b.wait_for_text("h1", "Dashboard").await;
    b.wait_for(&banner).await;
    b.wait_for_contains("[data-testid=maintenance-banner]", "alice")
        .await;
    b.wait_for("[data-testid=service-maintenance-ledger]").await;
    b.wait_for("[data-testid=service-maintenance-search]").await;
    assert!(
        !b.exists("[data-testid=service-maintenance-billing]").await,
        "billing is not in maintenance"
    );
    b.screenshot(&screenshots().join("maintenance-dashboard.png"))
        .await;

    // The period's page: status, timeline.
    b.goto(&server.url(&format!("/maintenance/{}", p.id))).await;
    b.wait_for_contains("[data-testid=period-status]", "active")
        .await;
    b.wait_for_contains("[data-testid=period-timeline]", "In maintenance until")
        .await;
    b.screenshot(&screenshots().join("maintenance-period.png"))
        .await;

    // A weekly window shows with its summary in words.
    let monday = Utc::now().date_naive() + chrono::Days::new(7);
    let start = monday.and_hms_opt(21, 0, 0).expect("a time").and_utc();
    let w: serde_json::Value = ok_json(
        alice
            .post(
                "/api/v1/maintenance/windows",
                &json!({
                    "title": "Weekly database maintenance", "reason": "VACUUM and minor upgrades",
                    "scope": {"kind": "services", "services": ["ledger"]},
                    "starts_at": start, "ends_at": start + chrono::Duration::hours(1),
                    "repeat": "weekly", "weekdays": ["wed"], "time_zone": "Europe/Berlin"}),
            )
            .await,
        "creating a weekly window",
    )
    .await;
    let wid = w["id"].as_i64().expect("window id");

    // End it through the confirm dialog: the banner goes without a reload.
    b.goto(&server.url("/maintenance")).await;
    b.wait_for(&banner).await;
    b.wait_for_contains(
        &format!("[data-testid=window-summary-{wid}]"),
        "every Wednesday 22:00",
    )
    .await;
    b.set_window_size(1400, 2200).await;
    b.screenshot(&screenshots().join("maintenance-page.png"))
        .await;
    b.set_window_size(1400, 900).await;
    let marker: String = b
        .execute("window.__opsdeck_marker = 'same page'; return window.__opsdeck_marker;")
        .await;
    assert_eq!(marker, "same page");
    b.wait_for(&format!("[data-testid=maint-end-{}]", p.id))
        .await
        .click()
        .await
        .expect("clicking End now");
    b.wait_for("[data-testid=confirm]")
        .await
        .click()
        .await
        .expect("confirming the end");
    poll(Duration::from_secs(30), "the period ended", async || {
        let d: serde_json::Value = alice
            .json(&format!("/api/v1/maintenance/periods/{}", p.id))
            .await;
        let status = d["period"]["status"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        (status == PeriodStatus::Ended.as_str())
            .then_some(())
            .ok_or(status)
    })
    .await;
    wait_gone(&b, "[data-testid=maintenance-banner]").await;
    let still: String = b
        .execute("return window.__opsdeck_marker || 'reloaded';")
        .await;
    assert_eq!(still, "same page", "the banner went without a reload");
    let board: StatusBoard = alice.json("/api/v1/status").await;
    assert!(board.maintenance.is_empty());
    b.close().await;
}
