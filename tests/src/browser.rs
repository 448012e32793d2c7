//! Headless Chromium driven over WebDriver (chromedriver + fantoccini).
//!
//! Each [`Browser`] starts its own chromedriver on a free loopback port with
//! a fresh Chromium profile, and talks to it over plain HTTP (loopback only,
//! no TLS stack needed). chromedriver leads its own process group, so the
//! Chromium it starts goes with it: the group is killed when the `Browser`
//! is dropped, also when a test panics and [`Browser::close`] was never
//! called; if the test process dies without unwinding, chromedriver gets
//! SIGKILL (`PR_SET_PDEATHSIG`).
//!
//! The helpers panic with a message naming what was awaited and where the
//! browser was: in a test harness a failed wait is the test failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::{Client, ClientBuilder, Locator};
use nix::sys::signal::Signal;
use serde_json::json;

use crate::proc::{self, free_port, kill_group, Session};
use crate::require;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long [`Browser::wait_for`] and friends wait.
pub const WAIT: Duration = Duration::from_secs(15);
const DRIVER_READY: Duration = Duration::from_secs(20);

/// Where UI tests put their screenshots: `<workspace>/target/screenshots`.
pub fn screenshots() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../target/screenshots"
    ))
}

pub struct Browser {
    pub client: Client,
    driver: Option<Child>,
    /// Holds the Chromium profile and chromedriver's log; removed after the
    /// processes are gone (fields drop after `Drop::drop`).
    work: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver and a headless Chromium session (1280×900).
    ///
    /// `Err(Skipped)` when Chromium or chromedriver is missing, outside CI
    /// only (under `CI=true` that panics). Panics when chromedriver does not
    /// come up or refuses the session, with the end of its log.
    pub async fn start() -> Result<Browser, require::Skipped> {
        require::part(
            require::have(CHROMIUM) && require::have(CHROMEDRIVER),
            "Chromium and ChromeDriver (/usr/bin/chromium, /usr/bin/chromedriver)",
            "apt-get install chromium chromium-driver",
        )?;
        let work = tempfile::Builder::new()
            .prefix("opsdeck-browser-")
            .tempdir()
            .expect("creating the browser's temp dir");
        let profile = work.path().join("profile");
        let log = work.path().join("chromedriver.log");

        // The port is free when we look; another process may take it before
        // chromedriver binds it, so try a few.
        let mut attempt = 0;
        let (driver, port) = loop {
            attempt += 1;
            let port = free_port();
            let mut driver = spawn_driver(port, &log);
            match wait_driver_ready(port, &mut driver).await {
                Ok(()) => break (driver, port),
                Err(e) => {
                    kill_group(&mut driver);
                    assert!(
                        attempt < 3,
                        "chromedriver did not come up on 127.0.0.1:{port}: {e}\n{}",
                        tail(&log)
                    );
                }
            }
        };
        let client = match connect(port, &profile).await {
            Ok(c) => c,
            Err(e) => {
                let mut driver = driver;
                kill_group(&mut driver);
                panic!("cannot start a Chromium session: {e}\n{}", tail(&log));
            }
        };
        Ok(Browser {
            client,
            driver: Some(driver),
            work,
        })
    }

    /// The current URL, or `"(unknown)"` when the browser cannot tell.
    pub async fn current_url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|u| u.to_string())
            .unwrap_or_else(|e| format!("(unknown: {e})"))
    }

    /// Opens `url` and waits for the page load (not for the SPA to render).
    pub async fn goto(&self, url: &str) {
        if let Err(e) = self.client.goto(url).await {
            panic!("cannot open {url}: {e}");
        }
    }

    /// Waits up to 15 s for an element matching `css`.
    pub async fn wait_for(&self, css: &str) -> Element {
        match self
            .client
            .wait()
            .at_most(WAIT)
            .every(Duration::from_millis(100))
            .for_element(Locator::Css(css))
            .await
        {
            Ok(e) => e,
            Err(e) => panic!(
                "no element matches {css:?} within {} s at {}: {e}",
                WAIT.as_secs(),
                self.current_url().await
            ),
        }
    }

    /// Waits up to 15 s until an element matching `css` has exactly `text`
    /// (trimmed) as its visible text; returns it.
    pub async fn wait_for_text(&self, css: &str, text: &str) -> Element {
        self.wait_for_text_where(css, &format!("text {text:?}"), |t| t.trim() == text)
            .await
    }

    /// Waits up to 15 s until an element matching `css` has visible text
    /// containing `needle` (e.g. a table once its rows have loaded).
    pub async fn wait_for_contains(&self, css: &str, needle: &str) -> Element {
        self.wait_for_text_where(css, &format!("text containing {needle:?}"), |t| {
            t.contains(needle)
        })
        .await
    }

    async fn wait_for_text_where(
        &self,
        css: &str,
        what: &str,
        matches: impl Fn(&str) -> bool,
    ) -> Element {
        let deadline = Instant::now() + WAIT;
        loop {
            let mut seen = Vec::new();
            for el in self
                .client
                .find_all(Locator::Css(css))
                .await
                .unwrap_or_default()
            {
                // An element replaced while we look is simply not it.
                if let Ok(t) = el.text().await {
                    if matches(&t) {
                        return el;
                    }
                    seen.push(t);
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "no {css:?} with {what} within {} s at {} (seen: {seen:?})",
                    WAIT.as_secs(),
                    self.current_url().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Fills the login form (already open) and submits it.
    pub async fn submit_login(&self, username: &str, password: &str) {
        let user = self.wait_for("#username").await;
        user.clear().await.expect("clearing #username");
        user.send_keys(username).await.expect("typing the username");
        let pass = self.wait_for("#password").await;
        pass.clear().await.expect("clearing #password");
        pass.send_keys(password).await.expect("typing the password");
        self.wait_for("button[data-testid=login-submit]")
            .await
            .click()
            .await
            .expect("clicking Sign in");
    }

    /// Opens `login_url`, signs in and waits for the dashboard's path.
    pub async fn sign_in(&self, login_url: &str, username: &str, password: &str) {
        self.goto(login_url).await;
        self.submit_login(username, password).await;
        self.wait_for_path("/").await;
    }

    /// Runs a script in the page and returns its string result (`return …;`).
    pub async fn execute(&self, script: &str) -> String {
        match self.client.execute(script, vec![]).await {
            Ok(serde_json::Value::String(s)) => s,
            Ok(other) => other.to_string(),
            Err(e) => panic!("script in the browser: {e}"),
        }
    }

    /// Runs `fetch(path)` in the page (same origin, the page's cookies) and
    /// returns the HTTP status.
    pub async fn fetch_status(&self, path: &str) -> u16 {
        let script = "const [path, done] = arguments;
            fetch(path, {credentials: 'same-origin', headers: {'Accept': 'application/json'}})
                .then(r => done(r.status), e => done('error: ' + e));";
        match self.client.execute_async(script, vec![json!(path)]).await {
            Ok(serde_json::Value::Number(n)) => n
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .unwrap_or_else(|| panic!("fetch {path}: odd status {n}")),
            Ok(other) => panic!("fetch {path} in the browser failed: {other}"),
            Err(e) => panic!("fetch {path} in the browser: {e}"),
        }
    }

    /// Waits up to 15 s until the path of the current URL is `path`.
    pub async fn wait_for_path(&self, path: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            let url = self.client.current_url().await;
            if let Ok(u) = &url {
                if u.path() == path {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "expected to arrive at {path} within {} s, still at {}",
                    WAIT.as_secs(),
                    url.map(|u| u.to_string())
                        .unwrap_or_else(|e| format!("(unknown: {e})"))
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether any element matches `css` right now.
    pub async fn exists(&self, css: &str) -> bool {
        match self.client.find_all(Locator::Css(css)).await {
            Ok(found) => !found.is_empty(),
            Err(e) => panic!("looking for {css:?}: {e}"),
        }
    }

    /// Saves a PNG of the viewport to `path`, creating its directory.
    pub async fn screenshot(&self, path: &Path) {
        let png = match self.client.screenshot().await {
            Ok(png) => png,
            Err(e) => panic!("taking a screenshot for {}: {e}", path.display()),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
        }
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
    }

    /// Resizes the browser window (CSS pixels of the outer window).
    pub async fn set_window_size(&self, width: u32, height: u32) {
        if let Err(e) = self.client.set_window_size(width, height).await {
            panic!("resizing the window to {width}×{height}: {e}");
        }
    }

    /// Ends the WebDriver session (Chromium quits), then stops chromedriver.
    pub async fn close(mut self) {
        let _ = self.client.clone().close().await;
        if let Some(mut d) = self.driver.take() {
            kill_group(&mut d);
        }
    }

    /// The directory holding the profile and `chromedriver.log`.
    pub fn work_dir(&self) -> PathBuf {
        self.work.path().to_path_buf()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if let Some(mut d) = self.driver.take() {
            kill_group(&mut d);
        }
    }
}

fn spawn_driver(port: u16, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("creating chromedriver.log");
    let err = out.try_clone().expect("chromedriver.log");
    let mut cmd = Command::new(CHROMEDRIVER);
    cmd.arg(format!("--port={port}"))
        // Only local clients (the default, stated): nothing else may drive it.
        .arg("--allowed-ips=127.0.0.1")
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    proc::die_with_parent(&mut cmd, Signal::SIGKILL, Session::Own);
    cmd.spawn().expect("starting chromedriver")
}

/// Polls chromedriver's `/status` until it is ready.
async fn wait_driver_ready(port: u16, driver: &mut Child) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| e.to_string())?;
    let url = format!("http://127.0.0.1:{port}/status");
    let deadline = Instant::now() + DRIVER_READY;
    loop {
        if let Ok(Some(status)) = driver.try_wait() {
            return Err(format!("chromedriver exited ({status})"));
        }
        if let Ok(res) = http.get(&url).send().await {
            if let Ok(v) = res.json::<serde_json::Value>().await {
                if v["value"]["ready"] == json!(true) {
                    return Ok(());
                }
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "{url} not ready within {} s",
                DRIVER_READY.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn connect(port: u16, profile: &Path) -> Result<Client, fantoccini::error::NewSessionError> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
                "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let mut builder = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new());
    builder.capabilities(caps);
    builder.connect(&format!("http://127.0.0.1:{port}")).await
}

fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    format!(
        "end of {}:\n{}",
        path.display(),
        lines[lines.len().saturating_sub(20)..].join("\n")
    )
}
