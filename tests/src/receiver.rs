//! An in-process HTTP receiver for webhook notifications: listens on
//! `127.0.0.1:0`, records every request (method, path, headers, body,
//! arrival time) and answers with a status the test can switch — one fixed
//! status, or a queue of statuses to answer in turn (e.g. 500, 500, then
//! 200) before falling back to the fixed one.
//!
//! It serves on the Tokio runtime that starts it; dropping it stops it.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::Router;

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    /// Path and query.
    pub path: String,
    /// Header names are lowercase.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
    pub time: SystemTime,
    /// The status this request was answered with.
    pub answered: u16,
}

impl Received {
    /// The first value of a header (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON (panics naming the body when it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("request body is not JSON ({e}): {}", self.text()))
    }
}

#[derive(Default)]
struct Inner {
    requests: Vec<Received>,
    status: u16,
    queue: VecDeque<u16>,
}

/// A running receiver; see the module docs.
pub struct Receiver {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

fn lock(m: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

async fn handle(
    State(inner): State<Arc<Mutex<Inner>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let mut g = lock(&inner);
    let status = g.queue.pop_front().unwrap_or(g.status);
    g.requests.push(Received {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_else(|| uri.path().to_owned()),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
        at: Instant::now(),
        time: SystemTime::now(),
        answered: status,
    });
    (
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        "ok\n",
    )
}

impl Receiver {
    /// Starts a receiver answering 200 on a free loopback port.
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let inner = Arc::new(Mutex::new(Inner {
            status: 200,
            ..Default::default()
        }));
        let app = Router::new().fallback(handle).with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver { addr, inner, task }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Answer every later request with `status` (after any queued ones).
    pub fn set_status(&self, status: u16) {
        lock(&self.inner).status = status;
    }

    /// Answer the next requests with these statuses, in order, then with
    /// the fixed status again.
    pub fn answer_next(&self, statuses: &[u16]) {
        lock(&self.inner).queue.extend(statuses.iter().copied());
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        lock(&self.inner).requests.clone()
    }

    /// Requests whose path starts with `prefix`.
    pub fn requests_to(&self, prefix: &str) -> Vec<Received> {
        self.requests()
            .into_iter()
            .filter(|r| r.path.starts_with(prefix))
            .collect()
    }

    /// Waits until at least `n` requests whose path starts with `prefix`
    /// arrived; panics after `timeout` naming what did arrive.
    pub async fn wait_for(&self, prefix: &str, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        loop {
            let got = self.requests_to(prefix);
            if got.len() >= n {
                return got;
            }
            if Instant::now() > deadline {
                let all: Vec<String> = self
                    .requests()
                    .iter()
                    .map(|r| format!("{} {} → {}", r.method, r.path, r.answered))
                    .collect();
                panic!(
                    "receiver: expected {n} requests to {prefix} within {timeout:?}, got {}: {all:#?}",
                    got.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}
