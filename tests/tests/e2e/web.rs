//! Serving: security headers, the SPA's caching, deep links, probes, limits.

use opsdeck_e2e::server::{web_root, Api, TestServer};
use opsdeck_wire::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_and_csp_on_every_answer() {
    let server = TestServer::start().await;
    for path in ["/", "/api/v1/me", "/healthz"] {
        let res = Api::new(&server.base).get(path).await;
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(
            csp.contains("'wasm-unsafe-eval'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
        assert!(h.contains_key("x-request-id"), "{path}: request id");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spa_assets_are_cached_and_deep_links_get_the_index() {
    if opsdeck_e2e::server::spa().is_err() {
        return;
    }
    let server = TestServer::start().await;
    let api = Api::new(&server.base);
    let index = api.get("/admin/users").await;
    assert_eq!(index.status(), 200);
    assert_eq!(index.headers()["cache-control"], "no-cache");
    let csp = index.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let html = index.text().await.unwrap();
    assert!(
        html.contains("<script type=\"module\">"),
        "trunk's bootstrap"
    );
    assert!(
        csp.contains("'sha256-"),
        "the CSP allows the bootstrap script by hash: {csp}"
    );
    let wasm = std::fs::read_dir(web_root())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|n| n.ends_with(".wasm"))
        .expect("a .wasm in dist");
    let res = api.get(&format!("/{wasm}")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.headers()["content-type"], "application/wasm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_and_unknown_routes() {
    let server = TestServer::start().await;
    let api = Api::new(&server.base);
    assert_eq!(api.get("/healthz").await.status(), 200);
    let ready: opsdeck_wire::Readiness = api.json("/readyz").await;
    assert!(ready.ready);
    let res = api.get("/api/v1/does-not-exist").await;
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "not_found");
    let res = api
        .send(reqwest::Method::PUT, "/api/v1/me", &serde_json::json!({}))
        .await;
    assert_eq!(res.status(), 405);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_fails_clearly_when_migrations_are_missing() {
    let server = TestServer::start().await;
    // Pretend the newest migration was never applied.
    sqlx::query(
        "DELETE FROM _sqlx_migrations WHERE version = (SELECT max(version) FROM _sqlx_migrations)",
    )
    .execute(&server.pool)
    .await
    .unwrap();
    let res = Api::new(&server.base).get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: opsdeck_wire::Readiness = res.json().await.unwrap();
    assert!(!body.ready);
    assert!(body.reason.unwrap().contains("migrations not applied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let huge = "x".repeat(2 * 1024 * 1024);
    let res = admin
        .post(
            "/api/v1/tokens",
            &serde_json::json!({"name": huge, "role": "viewer"}),
        )
        .await;
    assert_eq!(res.status(), 413);
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM api_tokens")
        .fetch_one(&server.pool)
        .await
        .unwrap();
    assert_eq!(count, 0);
}
