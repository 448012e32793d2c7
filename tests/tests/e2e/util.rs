//! Small helpers shared by the test modules.

use std::path::PathBuf;

/// The `opsdeck` binary built next to this test binary (`make test` builds it
/// first), or `OPSDECK_BIN`.
pub fn opsdeck_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("OPSDECK_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/e2e-<hash> → target/<profile>/opsdeck
    exe.parent()
        .and_then(|d| d.parent())
        .map(|d| d.join("opsdeck"))
        .expect("target dir")
}

/// The value of the session cookie in a `Set-Cookie` header.
pub fn session_cookie_value(res: &reqwest::Response) -> String {
    let set = res
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("opsdeck_session="))
        .expect("a Set-Cookie for opsdeck_session");
    set["opsdeck_session=".len()..]
        .split(';')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// GET `path` sending exactly this session cookie (no jar).
pub async fn get_with_cookie(base: &str, path: &str, token: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("{base}{path}"))
        .header(reqwest::header::COOKIE, format!("opsdeck_session={token}"))
        .send()
        .await
        .expect("GET")
        .status()
}

/// The error code of an error answer.
pub async fn error_code(res: reqwest::Response) -> String {
    let v: serde_json::Value = res.json().await.expect("JSON error body");
    v["error"]["code"].as_str().unwrap_or_default().to_owned()
}
