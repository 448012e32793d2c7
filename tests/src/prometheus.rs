//! A real Prometheus on loopback (Debian's `prometheus`) scraping a test
//! target whose traffic the test controls, for the metric-check tests.
//!
//! [`MetricsTarget::start`] serves `/metrics` (Prometheus text format) from
//! the test process: a counter `http_requests_total{code}` that grows by
//! the rates the test sets ([`MetricsTarget::set_rates`], ten ticks a
//! second), a latency histogram `http_request_duration_seconds` fed with
//! the latencies the test sets (one, or a mix), and a gauge
//! `app_queue_length`.
//!
//! [`Prometheus::start`] runs `prometheus` with a configuration of its own
//! (TSDB in `/tmp/odk-prometheus-<pid>-<n>`, `127.0.0.1:<free port>`)
//! scraping the given targets every second; stopped and removed when the
//! handle is dropped, and with the test process however it exits
//! (`PR_SET_PDEATHSIG`).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::proc::{self, Owned};
use crate::require;

const DIR_PREFIX: &str = "odk-prometheus-";
const READY_TIMEOUT: Duration = Duration::from_secs(30);
const STOP_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bounds of the latency histogram (seconds).
pub const BUCKETS: [f64; 8] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];

static NEXT: AtomicU32 = AtomicU32::new(1);

#[derive(Debug, Default)]
struct Traffic {
    ok_per_s: f64,
    err_per_s: f64,
    /// (share of requests, latency in seconds); shares add up to 1.
    latency: Vec<(f64, f64)>,
    queue: f64,
    ok: f64,
    err: f64,
    /// Cumulative count per bucket (the last is +Inf), and the sum.
    buckets: [f64; BUCKETS.len() + 1],
    sum: f64,
}

impl Traffic {
    fn tick(&mut self, secs: f64) {
        let ok = self.ok_per_s * secs;
        let err = self.err_per_s * secs;
        self.ok += ok;
        self.err += err;
        let n = ok + err;
        for &(share, secs) in &self.latency {
            let part = n * share;
            self.sum += part * secs;
            for (i, le) in BUCKETS.iter().enumerate() {
                if secs <= *le {
                    self.buckets[i] += part;
                }
            }
        }
        self.buckets[BUCKETS.len()] += n;
    }

    fn exposition(&self) -> String {
        let mut s = String::from(
            "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n",
        );
        s += &format!("http_requests_total{{code=\"200\"}} {}\n", self.ok);
        s += &format!("http_requests_total{{code=\"500\"}} {}\n", self.err);
        s += "# HELP http_request_duration_seconds Request latency.\n# TYPE http_request_duration_seconds histogram\n";
        for (i, le) in BUCKETS.iter().enumerate() {
            s += &format!(
                "http_request_duration_seconds_bucket{{le=\"{le}\"}} {}\n",
                self.buckets[i]
            );
        }
        s += &format!(
            "http_request_duration_seconds_bucket{{le=\"+Inf\"}} {}\n",
            self.buckets[BUCKETS.len()]
        );
        s += &format!("http_request_duration_seconds_sum {}\n", self.sum);
        s += &format!(
            "http_request_duration_seconds_count {}\n",
            self.buckets[BUCKETS.len()]
        );
        s += "# HELP app_queue_length Jobs waiting.\n# TYPE app_queue_length gauge\n";
        s += &format!("app_queue_length {}\n", self.queue);
        s
    }
}

/// The scrape target (see the module docs); stops with its handle.
pub struct MetricsTarget {
    addr: std::net::SocketAddr,
    traffic: Arc<Mutex<Traffic>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

fn lock(t: &Mutex<Traffic>) -> std::sync::MutexGuard<'_, Traffic> {
    t.lock().unwrap_or_else(|p| p.into_inner())
}

impl MetricsTarget {
    pub async fn start() -> MetricsTarget {
        let traffic = Arc::new(Mutex::new(Traffic {
            latency: vec![(1.0, 0.0)],
            ..Traffic::default()
        }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding the metrics target");
        let addr = listener.local_addr().expect("its address");
        let t = traffic.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let t = t.clone();
                async move {
                    (
                        [("content-type", "text/plain; version=0.0.4")],
                        lock(&t).exposition(),
                    )
                }
            }),
        );
        let serve = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let t = traffic.clone();
        let ticker = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_millis(100));
            let mut last = Instant::now();
            loop {
                every.tick().await;
                let now = Instant::now();
                lock(&t).tick(now.duration_since(last).as_secs_f64());
                last = now;
            }
        });
        MetricsTarget {
            addr,
            traffic,
            tasks: vec![serve, ticker],
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:<port>/metrics`.
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Requests per second from now on: served fine, failed (code 500).
    pub fn set_rates(&self, ok_per_s: f64, err_per_s: f64) {
        let mut t = lock(&self.traffic);
        t.ok_per_s = ok_per_s;
        t.err_per_s = err_per_s;
    }

    /// The latency every request takes from now on (seconds).
    pub fn set_latency(&self, secs: f64) {
        self.set_latency_mix(&[(1.0, secs)]);
    }

    /// Latencies from now on: `(share, seconds)` pairs, shares adding up
    /// to 1 (`[(0.8, 0.03), (0.2, 0.2)]`: 80 % take 30 ms, 20 % 200 ms).
    pub fn set_latency_mix(&self, mix: &[(f64, f64)]) {
        lock(&self.traffic).latency = mix.to_vec();
    }

    pub fn set_queue(&self, v: f64) {
        lock(&self.traffic).queue = v;
    }
}

impl Drop for MetricsTarget {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// A running Prometheus; see the module docs ([`Owned`]: its process dies
/// with the test process).
pub struct Prometheus {
    port: u16,
    dir: PathBuf,
    child: Owned,
}

/// Where Debian installs it.
fn binary() -> Option<PathBuf> {
    ["/usr/bin/prometheus", "/usr/local/bin/prometheus"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

impl Prometheus {
    /// Scrapes `targets` (`host:port`, path `/metrics`) every second.
    /// `Err(Skipped)` when prometheus is missing, outside CI only (under
    /// `CI=true` that panics); panics when it does not come up.
    pub fn start(targets: &[String]) -> Result<Prometheus, require::Skipped> {
        require::part(
            binary().is_some(),
            "prometheus (Debian's package)",
            "apt-get install prometheus, or scripts/install-test-deps.sh",
        )?;
        match Prometheus::spawn(targets) {
            Ok(p) => Ok(p),
            Err(e) => panic!("cannot start a test Prometheus: {e:#}"),
        }
    }

    /// The value of an instant query whose answer is one series (or a
    /// scalar); panics otherwise: it is the test's reference figure.
    pub async fn value(&self, query: &str) -> f64 {
        self.value_with(query, None).await
    }

    async fn value_with(&self, query: &str, at: Option<f64>) -> f64 {
        let mut params = vec![("query", query.to_string())];
        if let Some(t) = at {
            params.push(("time", t.to_string()));
        }
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url()))
            .query(&params)
            .send()
            .await
            .expect("asking prometheus")
            .json()
            .await
            .expect("its answer");
        let v = match body["data"]["resultType"].as_str() {
            Some("scalar") => &body["data"]["result"][1],
            Some("vector") if body["data"]["result"].as_array().map(Vec::len) == Some(1) => {
                &body["data"]["result"][0]["value"][1]
            }
            _ => panic!("{query}: not one value: {body}"),
        };
        v.as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("{query}: not a number: {body}"))
    }

    /// The raw samples of a one-series range selector (`x[30s]`) at
    /// `at` (Unix seconds): `(seconds, value)`, oldest first.
    pub async fn samples(&self, selector: &str, at: f64) -> Vec<(f64, f64)> {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url()))
            .query(&[("query", selector), ("time", &at.to_string())])
            .send()
            .await
            .expect("asking prometheus")
            .json()
            .await
            .expect("its answer");
        let series = &body["data"]["result"];
        assert_eq!(
            series.as_array().map(Vec::len),
            Some(1),
            "{selector}: {body}"
        );
        series[0]["values"]
            .as_array()
            .expect("values")
            .iter()
            .map(|p| {
                let t = p[0].as_f64().expect("a time");
                let v: f64 = p[1].as_str().and_then(|v| v.parse().ok()).expect("a value");
                (t, v)
            })
            .collect()
    }

    /// An instant query's one value at `at` (Unix seconds).
    pub async fn value_at(&self, query: &str, at: f64) -> f64 {
        self.value_with(query, Some(at)).await
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(targets: &[String]) -> anyhow::Result<Prometheus> {
        let dir = PathBuf::from(format!(
            "/tmp/{DIR_PREFIX}{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("data"))?;
        let list = targets
            .iter()
            .map(|t| format!("'{t}'"))
            .collect::<Vec<_>>()
            .join(", ");
        std::fs::write(
            dir.join("prometheus.yml"),
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
                 scrape_configs:\n  - job_name: app\n    static_configs:\n      - targets: [{list}]\n"
            ),
        )?;
        let port = proc::try_free_port().context("picking a free loopback port")?;
        let log = dir.join("prometheus.log");
        let mut cmd = Command::new(binary().context("no prometheus binary")?);
        cmd.arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
        let child =
            Owned::spawn("test-prometheus", cmd, STOP_TIMEOUT).context("starting prometheus")?;
        let pid = child.pid();
        let p = Prometheus { port, dir, child };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if proc::http_ok(port, "/-/ready") {
                return Ok(p);
            }
            if proc::has_exited(pid) || Instant::now() > deadline {
                bail!(
                    "prometheus did not become ready; its log:\n{}",
                    std::fs::read_to_string(&log).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.child.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
