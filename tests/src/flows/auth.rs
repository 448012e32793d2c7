//! Logging in through the API with the harness's password
//! ([`crate::server::PASSWORD`]), as every test user has.

use serde_json::json;

use crate::server::{Api, PASSWORD};

/// Logs `api` (its cookie jar) in as `username`, asserting a 200.
pub async fn log_in(api: &Api, username: &str) {
    let res = api
        .post(
            "/api/v1/auth/login",
            &json!({"username": username, "password": PASSWORD}),
        )
        .await;
    let status = res.status();
    assert_eq!(
        status,
        200,
        "login as {username} at {} failed: {}",
        api.base,
        res.text().await.unwrap_or_default()
    );
}

/// A new client with a cookie jar for `base`, logged in as `username`.
pub async fn login(base: &str, username: &str) -> Api {
    let api = Api::new(base);
    log_in(&api, username).await;
    api
}
