//! An operator runs a plan in headless Chromium and sees it verified.

use super::*;
use opsdeck_e2e::browser::screenshots;

/// In headless Chromium: an operator runs a plan from its card, follows it
/// to "verified" in the catalog without reloading, and opens the backup's
/// page with its artifacts; a viewer sees no Run button. Screenshots land
/// in `<workspace>/target/screenshots/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_a_plan_in_the_browser_and_sees_it_verified() {
    use opsdeck_e2e::browser::Browser;
    use opsdeck_e2e::server::PASSWORD;
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 5_000).await;
    let admin = s.user(Role::Admin).await;
    let db = unique("shop");
    create_db(&s.pool, &db).await;
    let mut src = cluster_conn(&db).await;
    src.execute(
        "CREATE TABLE orders (id bigint PRIMARY KEY, note text);
         INSERT INTO orders SELECT g, md5(g::text) FROM generate_series(1, 2500) g;",
    )
    .await
    .unwrap();
    cluster_service(&admin, "shop-db", "opsdeck", &db).await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    create_plan(
        &admin,
        postgres_plan("shop-nightly", "shop-db", &[&db], "local"),
    )
    .await;
    s.create_user("carol", Role::Operator).await;
    s.create_user("victor", Role::Viewer).await;
    let carol = s.login("carol").await;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&s.url("/login"), "carol", PASSWORD).await;
    b.goto(&s.url("/backups")).await;
    b.wait_for("[data-testid=plan-shop-nightly]").await;
    b.wait_for("[data-testid=plan-run-shop-nightly]")
        .await
        .click()
        .await
        .expect("clicking Run now");
    b.wait_for("[data-testid=plan-run-link]").await;
    // The run finishes and verifies; the page follows without a reload.
    let marker: String = b
        .execute("window.__opsdeck_marker = 'same page'; return window.__opsdeck_marker;")
        .await;
    assert_eq!(marker, "same page");
    let done = poll(Duration::from_secs(90), "the backup verified", async || {
        let l = backups(&carol, "").await;
        match l.first() {
            Some(b) if b.verification == opsdeck_wire::Verification::Verified => Ok(b.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert_eq!(done.requested_by, "carol");
    let row = format!("[data-testid=backup-verification-{}]", done.id);
    b.wait_for_contains(&row, "verified").await;
    b.wait_for_contains(
        &format!("[data-testid=backup-status-{}]", done.id),
        "succeeded",
    )
    .await;
    let still: String = b
        .execute("return window.__opsdeck_marker || 'reloaded';")
        .await;
    assert_eq!(still, "same page", "the catalog updated without a reload");
    b.screenshot(&screenshots().join("backups.png")).await;

    // The backup's page: artifacts (globals + the database) with row counts.
    b.goto(&s.url(&format!("/backups/{}", done.id))).await;
    b.wait_for("[data-testid=backup-detail]").await;
    b.wait_for("[data-testid=artifact-0]").await;
    b.wait_for_contains("[data-testid=artifact-1]", &db).await;
    b.wait_for("[data-testid=artifact-download-1]").await;
    b.screenshot(&screenshots().join("backup-detail.png")).await;
    // An unknown id: the page says so and leads back to the list.
    b.goto(&s.url("/backups/999999")).await;
    b.wait_for_contains(".state-error", "There is no backup with this id")
        .await;
    b.wait_for("nav.crumbs a[href='/backups']").await;
    b.close().await;

    // A viewer reads the catalog but gets no Run button.
    let Ok(v) = Browser::start().await else {
        return;
    };
    v.sign_in(&s.url("/login"), "victor", PASSWORD).await;
    v.goto(&s.url("/backups")).await;
    v.wait_for("[data-testid=plan-shop-nightly]").await;
    v.wait_for(&format!("[data-testid=backup-row-{}]", done.id))
        .await;
    assert!(
        !v.exists("[data-testid=plan-run-shop-nightly]").await,
        "viewers cannot run plans"
    );
    v.close().await;
    drop_db(&s.pool, &db).await;
}
