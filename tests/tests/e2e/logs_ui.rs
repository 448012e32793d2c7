//! The Logs page in headless Chromium: from a service page's "Search…"
//! link, the service is chosen; a search over a whole stack streams its
//! hits with their service, level and the counts per service; context
//! lines come dimmed; a search that finds nothing says so.

use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_e2e::util::{engine, release};
use opsdeck_wire::Role;

use super::logs_search::{loggers, Loggers};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_search_from_the_logs_page() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let Loggers { stack, api, .. } = loggers(&admin, &operator, &engine).await;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.sign_in(&server.url("/login"), "operator-user", PASSWORD)
        .await;

    // The service page's log panel links to a search of that service.
    b.goto(&server.url(&format!("/services/{}", api.id))).await;
    b.wait_for("[data-testid=logs-search]")
        .await
        .click()
        .await
        .expect("clicking Search…");
    b.wait_for_path("/logs").await;
    b.wait_for_contains("[data-testid=log-scope]", "api").await;
    b.wait_for_contains("[data-testid=log-results], .state-empty", "Search the logs")
        .await;

    // A whole stack: choose it, type, search.
    b.goto(&server.url(&format!("/logs?stack={}", stack.project)))
        .await;
    b.wait_for_contains("[data-testid=log-scope]", &stack.project)
        .await;
    b.execute(
        "const q = document.querySelector('[data-testid=log-query]');
         q.value = 'failed'; q.dispatchEvent(new Event('input', {bubbles: true}));
         const c = document.querySelector('[data-testid=log-context]');
         c.value = '2'; c.dispatchEvent(new Event('change', {bubbles: true}));
         return 'ok';",
    )
    .await;
    b.wait_for("[data-testid=log-search]")
        .await
        .click()
        .await
        .expect("clicking Search");
    b.wait_for_contains("[data-testid=log-status]", "11 hits")
        .await;
    let counts = b
        .wait_for("[data-testid=log-counts]")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(
        counts.contains("api") && counts.contains("10") && counts.contains("worker"),
        "{counts}"
    );
    let hits = b
        .execute("return String(document.querySelectorAll('[data-testid=log-hit]').length);")
        .await;
    assert_eq!(hits, "11");
    let context = b
        .execute("return String(document.querySelectorAll('[data-testid=log-context]').length);")
        .await;
    assert!(
        context.parse::<u32>().unwrap_or(0) >= 20,
        "context rows: {context}"
    );
    let first = b
        .wait_for("[data-testid=log-hit]")
        .await
        .text()
        .await
        .unwrap_or_default();
    assert!(first.contains("ERROR request 20 failed"), "{first}");
    assert!(first.contains("api"), "the service: {first}");
    b.screenshot(&screenshots().join("logs-search.png")).await;

    // Nothing found: said, not a blank table.
    b.execute(
        "const q = document.querySelector('[data-testid=log-query]');
         q.value = 'no such words anywhere'; q.dispatchEvent(new Event('input', {bubbles: true}));
         return 'ok';",
    )
    .await;
    b.wait_for("[data-testid=log-search]")
        .await
        .click()
        .await
        .expect("clicking Search");
    b.wait_for_contains(".state-empty", "No lines matched")
        .await;

    b.close().await;
    drop(stack);
    server.stop().await;
    release(engine).await;
}
