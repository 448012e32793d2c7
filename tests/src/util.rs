//! Small helpers every test module uses: checking an answer (status, JSON
//! body, error code and message), session cookies, reading Server-Sent
//! Events until one matches, polling until a condition holds, the shared
//! private engine, and a database for real `opsdeck serve` processes.

pub use crate::process::opsdeck_bin;

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

/// Status and error message of an answer that must be an error.
pub async fn expect_error(res: reqwest::Response, status: u16) -> String {
    let got = res.status().as_u16();
    let text = res.text().await.unwrap_or_default();
    assert_eq!(got, status, "expected {status}, got {got}: {text}");
    let v: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {text}"));
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The JSON body of an answer that must succeed.
pub async fn ok_json<T: serde::de::DeserializeOwned>(res: reqwest::Response, what: &str) -> T {
    let status = res.status();
    let text = res.text().await.unwrap_or_default();
    assert!(status.is_success(), "{what}: {status}: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: bad JSON ({e}): {text}"))
}

/// Reads a Server-Sent Events response until an event satisfies `want`
/// (called with the event name and its data), or panics after `timeout`
/// naming what was received.
pub async fn sse_until(
    mut res: reqwest::Response,
    timeout: std::time::Duration,
    what: &str,
    mut want: impl FnMut(&str, &str) -> bool,
) -> (String, String) {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut buf = String::new();
    let mut seen: Vec<String> = Vec::new();
    loop {
        // Complete events end with a blank line.
        while let Some(end) = buf.find("\n\n") {
            let block: String = buf.drain(..end + 2).collect();
            let mut event = "message".to_owned();
            let mut data: Vec<&str> = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v));
                }
            }
            if data.is_empty() {
                continue; // a keep-alive comment
            }
            let data = data.join("\n");
            if want(&event, &data) {
                return (event, data);
            }
            if seen.len() < 50 {
                seen.push(format!("{event}: {data}"));
            }
        }
        let chunk = tokio::time::timeout_at(deadline, res.chunk())
            .await
            .unwrap_or_else(|_| {
                panic!("{what}: no matching event within {timeout:?}; received: {seen:#?}")
            })
            .expect("reading the event stream");
        match chunk {
            Some(bytes) => buf.push_str(&String::from_utf8_lossy(&bytes).replace("\r\n", "\n")),
            None => panic!("{what}: the event stream ended; received: {seen:#?}"),
        }
    }
}

/// Polls `probe` every 250 ms until it returns `Ok`, or panics after
/// `timeout` naming `what` and the probe's last `Err` (what it saw).
pub async fn poll<T>(
    timeout: std::time::Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let last = match probe().await {
            Ok(v) => return v,
            Err(last) => last,
        };
        if tokio::time::Instant::now() > deadline {
            panic!("{what}: not within {timeout:?}; last seen: {last}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The shared private engine, or `None` when the test is skipped.
pub async fn engine() -> Option<crate::dockerd::PrivateDockerd> {
    tokio::task::spawn_blocking(crate::dockerd::PrivateDockerd::start)
        .await
        .expect("starting the engine")
        .ok()
}

/// Stopping the engine blocks (up to 20 s): not on a runtime worker.
pub async fn release(engine: crate::dockerd::PrivateDockerd) {
    tokio::task::spawn_blocking(move || drop(engine))
        .await
        .expect("releasing the engine");
}

/// Adds the admin `name` with the harness's password
/// ([`crate::server::PASSWORD`]), as `opsdeck users add` would.
pub async fn add_admin(pool: &sqlx::PgPool, name: &str) {
    opsdeck::users::cli_add(
        pool,
        name,
        opsdeck_wire::Role::Admin,
        None,
        crate::server::PASSWORD,
    )
    .await
    .expect("adding the admin");
}

/// A fresh database of the shared test cluster for real `opsdeck serve`
/// processes: its URL, a pool on it, and the admin `ops`.
pub async fn process_database() -> (String, sqlx::PgPool) {
    let (database, options) = crate::pg::fresh_database().await;
    let url = crate::pg::url(&database);
    let pool = opsdeck::db::pool(options).await.expect("pool");
    add_admin(&pool, "ops").await;
    (url, pool)
}
