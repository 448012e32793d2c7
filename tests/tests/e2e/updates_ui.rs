//! Image updates in headless Chromium: after a real check finds a moved
//! tag, the services page and the dashboard show the "update available"
//! badge on the service's row, and the service page's Image panel shows
//! the digests and saves the update settings.
//!
//! Then "Update…" → confirmation → the run page, live until it succeeds,
//! and the service runs the new digest with a confirmed version in its
//! history.

use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_e2e::util::{engine, release};
use opsdeck_wire::{UpdatePolicy, UpdateSettings};

use super::updates_discover::{check, name, of, push, registry, remove, run, service, setup};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_update_badge_and_the_image_panel() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let Some(engine) = engine().await else { return };
    let Some(registry) = registry().await else {
        return;
    };
    let engine = std::sync::Arc::new(engine);
    let registry = std::sync::Arc::new(registry);
    let server = TestServer::start().await;
    let admin = setup(&server, &engine).await;
    let (reference, d1) = push(&registry, &engine, "ui/app", "v1", "one").await;
    let c = name("ui");
    run(&engine, &c, &reference, &[]).await;
    let id = service(&admin, "webapp", &c).await;
    let (_, d2) = push(&registry, &engine, "ui/app", "v1", "two").await;
    let st = of(&check(&admin, None).await, id);
    assert!(st.update_available, "{st:?}");

    let Ok(b) = Browser::start().await else {
        remove(&engine, &[c]).await;
        return;
    };
    b.sign_in(&server.url("/login"), "admin-user", PASSWORD)
        .await;

    // The services page: the badge on the row, with the short digests.
    b.goto(&server.url("/services")).await;
    let badge = b
        .wait_for_contains("[data-testid=update-badge-webapp]", "update available")
        .await;
    let text = badge.text().await.unwrap_or_default();
    let short = |d: &str| d.trim_start_matches("sha256:")[..7].to_owned();
    assert!(
        text.contains(&short(&d1)) && text.contains(&short(&d2)),
        "old and new digests: {text}"
    );
    assert!(text.contains("v1"), "the tag: {text}");

    // The dashboard's row too.
    b.goto(&server.url("/")).await;
    b.wait_for_contains("[data-testid=update-badge-webapp]", "update available")
        .await;

    // The service page's Image panel.
    b.goto(&server.url(&format!("/services/{id}"))).await;
    b.wait_for_contains("[data-testid=image-state]", "update available")
        .await;
    b.wait_for_contains("[data-testid=image-running]", &short(&d1))
        .await;
    b.wait_for_contains("[data-testid=image-latest]", &short(&d2))
        .await;
    b.wait_for_contains("[data-testid=image-ref]", &reference)
        .await;
    b.wait_for("[data-testid=image-update]:not([disabled])")
        .await;
    b.execute(
        "document.querySelector('[data-testid=section-image]').scrollIntoView(); return 'ok';",
    )
    .await;
    b.screenshot(&screenshots().join("service-image.png")).await;

    // Settings: policy auto, gate 30 s, saved through the form.
    b.wait_for("[data-testid=update-settings]").await;
    b.execute(
        "const p = document.querySelector('[data-testid=update-policy]');
         p.value = 'auto'; p.dispatchEvent(new Event('change', {bubbles: true}));
         const g = document.querySelector('[data-testid=update-gate]');
         g.value = '30'; g.dispatchEvent(new Event('input', {bubbles: true}));
         return 'ok';",
    )
    .await;
    b.wait_for("[data-testid=update-settings-save]")
        .await
        .click()
        .await
        .expect("clicking save");
    b.wait_for_contains("[data-testid=update-settings] .notice", "Saved")
        .await;
    let saved: UpdateSettings = admin
        .json(&format!("/api/v1/services/{id}/update-settings"))
        .await;
    assert_eq!(saved.policy, UpdatePolicy::Auto);
    assert_eq!(saved.gate_seconds, 30);

    // "Check now" answers in place.
    b.wait_for("[data-testid=image-check]")
        .await
        .click()
        .await
        .expect("clicking check now");
    b.wait_for_contains("[data-testid=image-state]", "update available")
        .await;

    // Update → confirmation → the run page, live until it succeeds.
    b.execute(
        "document.querySelector('[data-testid=image-update]').scrollIntoView({block: 'center'}); return 'ok';",
    )
    .await;
    b.wait_for("[data-testid=image-update]:not([disabled])")
        .await
        .click()
        .await
        .expect("clicking update");
    b.wait_for("[data-testid=confirm]")
        .await
        .click()
        .await
        .expect("confirming the update");
    b.wait_for("[data-testid=run-status]").await;
    let url = b.current_url().await;
    assert!(url.contains("/runs/"), "the run page opens: {url}");
    b.wait_for("[data-testid=run-status][data-status=succeeded]")
        .await;
    b.screenshot(&screenshots().join("image-update-run.png"))
        .await;

    // Done: the service runs the new digest, and the history says so.
    let st = of(&check(&admin, Some(&[id])).await, id);
    assert!(!st.update_available, "after the update: {st:?}");
    assert_eq!(st.running_digest.as_deref(), Some(d2.as_str()));
    b.goto(&server.url(&format!("/services/{id}"))).await;
    b.wait_for_contains("[data-testid=image-versions]", "confirmed")
        .await;

    b.close().await;
    remove(&engine, &[c]).await;
    drop(registry);
    if let Ok(e) = std::sync::Arc::try_unwrap(engine) {
        release(e).await;
    }
}
