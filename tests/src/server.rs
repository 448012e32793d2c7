//! The real Opsdeck router on a loopback port, backed by a fresh database.

use std::net::SocketAddr;
use std::path::PathBuf;

use opsdeck::config::Settings;
use opsdeck::state::AppState;
use opsdeck_wire::Role;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use sqlx::PgPool;
use tokio::sync::oneshot;

/// The secrets key of every in-process server (`OPSDECK_SECRET_KEY`): one
/// key per test binary, as `opsdeck::secrets` keeps one key per process.
pub const SECRET_KEY: &str = "b3BzZGVjay1lMmUtdGVzdC1zZWNyZXRzLWtleS0zMmI=";

/// Password every test user gets.
pub const PASSWORD: &str = "tangerine-orbit-lamp-42";

pub struct TestServer {
    pub addr: SocketAddr,
    pub base: String,
    pub pool: PgPool,
    pub database: String,
    /// The server's state (its engines and health hub), for tests that
    /// drive background work directly.
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

/// The SPA build the server serves: `OPSDECK_WEB_ROOT`, else `frontend/dist`.
pub fn web_root() -> PathBuf {
    std::env::var_os("OPSDECK_WEB_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../frontend/dist")))
}

/// Whether the built SPA is there for a browser test: `Ok` when it is;
/// missing, a failure under `CI=true` and a skip elsewhere
/// ([`crate::require::part`]).
pub fn spa() -> Result<(), crate::require::Skipped> {
    crate::require::part(
        web_root().join("index.html").is_file(),
        "the built SPA (frontend/dist/index.html, or OPSDECK_WEB_ROOT)",
        "make frontend",
    )
}

impl TestServer {
    /// Starts a server on a fresh database with default settings.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Starts a server, letting the test adjust the settings first.
    pub async fn start_with(adjust: impl FnOnce(&mut Settings)) -> TestServer {
        let (database, options) = crate::pg::fresh_database().await;
        let mut settings = Settings::for_database(&crate::pg::url(&database), &web_root());
        // Background writers that add audit entries at arbitrary times stay
        // off unless a test is about them.
        settings.daily_report = false;
        // Scheduled update discovery would ask registries for every
        // container at start; tests about it call it or turn it on.
        settings.update_check_interval = None;
        // Many tests log in and get refused from 127.0.0.1 in quick
        // succession; tests about rate limits turn them on.
        settings.rate_limits = opsdeck::config::RateLimits::off();
        settings.secret_key = Some(opsdeck::config::Secret::new(SECRET_KEY));
        adjust(&mut settings);
        let pool = opsdeck::db::pool(options).await.expect("pool");
        // Before the first request or direct call (serve does it again).
        opsdeck::secrets::startup::start(&pool, &settings)
            .await
            .expect("secrets key");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = opsdeck::serve::compose(pool.clone(), settings);
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(opsdeck::serve::serve(listener, state.clone(), async {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            base: format!("http://{addr}"),
            pool,
            database,
            state,
            shutdown: Some(tx),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Creates an active user with [`PASSWORD`] (no forced password change).
    pub async fn create_user(&self, username: &str, role: Role) -> i64 {
        opsdeck::users::cli_add(&self.pool, username, role, None, PASSWORD)
            .await
            .expect("creating a test user")
    }

    /// A client with a cookie jar, logged in as `username`.
    pub async fn login(&self, username: &str) -> Api {
        crate::flows::auth::login(&self.base, username).await
    }

    /// Creates a user of `role` named after it and returns a logged-in client.
    pub async fn user(&self, role: Role) -> Api {
        let name = format!("{}-user", role.as_str());
        self.create_user(&name, role).await;
        self.login(&name).await
    }

    /// Stops serving and waits for the server task.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }
}

/// An HTTP client for the API: cookie jar, JSON bodies, no redirects.
#[derive(Clone)]
pub struct Api {
    pub client: reqwest::Client,
    pub base: String,
}

impl Api {
    pub fn new(base: &str) -> Api {
        Self::with_headers(base, HeaderMap::new())
    }

    pub fn with_headers(base: &str, headers: HeaderMap) -> Api {
        let client = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .expect("client");
        Api {
            client,
            base: base.to_owned(),
        }
    }

    /// A client authenticating with `Authorization: Bearer <token>`, no cookies.
    pub fn with_token(base: &str, token: &str) -> Api {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).expect("token"),
        );
        Self::with_headers(base, h)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .expect("GET")
    }

    pub async fn post(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("POST")
    }

    pub async fn patch(&self, path: &str, body: &serde_json::Value) -> reqwest::Response {
        self.client
            .patch(format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("PATCH")
    }

    pub async fn delete(&self, path: &str) -> reqwest::Response {
        self.client
            .delete(format!("{}{path}", self.base))
            .header(CONTENT_TYPE, "application/json")
            .send()
            .await
            .expect("DELETE")
    }

    /// Any method, JSON body.
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: &serde_json::Value,
    ) -> reqwest::Response {
        self.client
            .request(method, format!("{}{path}", self.base))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> T {
        let res = self.get(path).await;
        assert!(res.status().is_success(), "GET {path}: {}", res.status());
        res.json().await.expect("JSON body")
    }
}
