//! The one door to Docker Engines (bollard). No other module talks to an
//! engine directly.
//!
//! - [`connect`] opens a client and negotiates the API version: engines of
//!   many ages are in use (Debian 12's 20.10 speaks API 1.41 at most).
//! - [`EngineHub`] holds one [`EngineConn`] per registered engine. Each has a
//!   supervisor task that connects, lists every container once (reconcile),
//!   then follows the engine's events stream and re-inspects only the
//!   container an event names. The panel reads container state from this
//!   cache and never waits on an engine to draw a page: an unreachable or
//!   slow engine is marked `unreachable` (its cache kept, flagged stale)
//!   while the supervisor retries with backoff (jittered, so engines lost
//!   together do not retry in step), and actions on it fail fast with a
//!   clear error. At most 16 engines connect and reconcile at once.
//! - [`ssh`]: `ssh://` engines (OpenSSH's `docker system dial-stdio` as
//!   the transport); [`logfile`]: a local engine's `json-file` logs read
//!   directly (log search).
//! - [`ops`]: actions, logs, stats, inspect and exec on one container;
//!   [`archive`]: files in and out of a container as tar archives;
//!   [`hostfiles`]: a compose project's own files on the engine's host;
//!   [`hostprobe`]: the engine's host figures (CPU, memory, load, disk)
//!   through a short-lived helper container;
//!   [`images`]: pull, image and container inspect, recreate with another
//!   image (image updates);
//!   [`list`]: containers by label or by volume; [`volumes`]: volumes and
//!   the helper container that reads and writes them; [`usage`]: `system
//!   df` and removal of unused images, containers and volumes (clean-up);
//!   [`distribution`]: a registry's digest for an image reference (through
//!   the engine) and a container's image.
//! - [`Client`] is the handle the rest of the server holds for a connected
//!   engine: the Docker library's own types never leave this module (a
//!   check in `make test` fails when another file names it). Only
//!   [`connect`] hands out the library's client, for the test kit.
//!
//! Invariant: the cache is only written by the supervisor (and by actions'
//! follow-up inspect), and every write bumps the hub's change counter, which
//! live views (SSE) watch.

pub mod archive;
pub mod distribution;
mod events;
pub mod hostfiles;
pub mod hostprobe;
pub mod images;
pub mod list;
pub mod logfile;
pub mod ops;
pub mod ssh;
pub mod stats;
pub mod usage;
pub mod volumes;

use events::handle_event;
pub use events::ContainerEvent;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use bollard::models::ContainerInspectResponse;
use bollard::query_parameters::{EventsOptionsBuilder, InspectContainerOptions};
use bollard::Docker;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use opsdeck_wire::{ContainerInfo, EngineState};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Time to wait for an engine's answer to an ordinary request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a connected engine is pinged to notice a hung one.
const PING_EVERY: Duration = Duration::from_secs(15);
/// Backoff between reconnection attempts: doubles up to the maximum.
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(15);
/// Engines connecting and reconciling at once.
const CONNECT_CONCURRENCY: usize = 16;
/// Containers inspected at once while reconciling.
const RECONCILE_CONCURRENCY: usize = 16;

/// A connected engine's client, as the rest of the server holds it. Cheap
/// to clone; every operation on it is a function of this module
/// ([`ops`], [`archive`], [`list`], [`volumes`], [`usage`]).
#[derive(Clone)]
pub struct Client {
    inner: Docker,
}

impl From<Docker> for Client {
    fn from(inner: Docker) -> Self {
        Client { inner }
    }
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("docker::Client")
    }
}

/// Where an engine is and how to authenticate to it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Endpoint {
    /// `unix:///path`, a plain socket path, `tcp://host:port`, `http://…`
    /// or `ssh://[user@]host[:port]`.
    pub url: String,
    /// TLS client authentication: CA, certificate, key (PEM file paths).
    pub tls: Option<TlsPaths>,
    /// For `ssh://`: the pinned host key and the private key's path.
    pub ssh: Option<SshAuth>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshAuth {
    /// `<type> <base64>`.
    pub host_key: String,
    /// Private key file on the Opsdeck host; `None`: ssh's defaults.
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPaths {
    pub ca: String,
    pub cert: String,
    pub key: String,
}

/// Connects to `host` (`unix:///path`, a plain socket path, or
/// `tcp://host:port` / `http://…`), or the local default, and negotiates the
/// API version.
pub async fn connect(host: Option<&str>) -> anyhow::Result<Docker> {
    let endpoint = Endpoint {
        url: host.unwrap_or(DEFAULT_LOCAL).to_owned(),
        ..Endpoint::default()
    };
    connect_endpoint(&endpoint).await
}

/// The local engine's socket.
pub const DEFAULT_LOCAL: &str = "unix:///var/run/docker.sock";

/// Connects to an endpoint (TLS when configured) and negotiates the API
/// version, within [`REQUEST_TIMEOUT`].
pub async fn connect_endpoint(endpoint: &Endpoint) -> anyhow::Result<Docker> {
    let host = endpoint.url.as_str();
    let secs = REQUEST_TIMEOUT.as_secs();
    let v = bollard::API_DEFAULT_VERSION;
    let docker = if host.starts_with("ssh://") {
        let (user, h, port) = ssh::parse_url(host).map_err(|e| anyhow::anyhow!("{host}: {e}"))?;
        let auth = endpoint
            .ssh
            .as_ref()
            .context("an ssh:// engine needs its pinned host key")?;
        let target = ssh::SshTarget {
            user,
            host: h,
            port,
            key: auth.key.clone(),
            host_key: auth.host_key.clone(),
        };
        ssh::preflight(&target).await?;
        ssh::client(&target, secs)?
    } else if let Some(tls) = &endpoint.tls {
        Docker::connect_with_ssl(
            host,
            Path::new(&tls.key),
            Path::new(&tls.cert),
            Path::new(&tls.ca),
            secs,
            v,
        )
        .with_context(|| format!("Docker engine at {host}"))?
    } else if let Some(path) = host.strip_prefix("unix://") {
        Docker::connect_with_unix(path, secs, v)
            .with_context(|| format!("Docker engine at {host}"))?
    } else if host.starts_with('/') {
        Docker::connect_with_unix(host, secs, v)
            .with_context(|| format!("Docker engine at {host}"))?
    } else {
        let url = host.replacen("tcp://", "http://", 1);
        Docker::connect_with_http(&url, secs, v)
            .with_context(|| format!("Docker engine at {host}"))?
    };
    let no_answer = || anyhow::anyhow!("{host}: no answer within {secs} s");
    match tokio::time::timeout(REQUEST_TIMEOUT, docker.negotiate_version()).await {
        Err(_) | Ok(Err(bollard::errors::Error::RequestTimeoutError)) => Err(no_answer()),
        Ok(r) => r.with_context(|| format!("negotiating the API version with {host}")),
    }
}

/// Checks an endpoint's syntax (not its reachability).
pub fn validate_endpoint(url: &str) -> Result<(), String> {
    if url.starts_with("ssh://") {
        return ssh::parse_url(url)
            .map(|_| ())
            .map_err(|e| format!("{e} (ssh://[user@]host[:port])"));
    }
    let ok = if let Some(path) = url.strip_prefix("unix://") {
        path.starts_with('/') && path.len() > 1
    } else if let Some(rest) = url
        .strip_prefix("tcp://")
        .or_else(|| url.strip_prefix("http://"))
        .or_else(|| url.strip_prefix("https://"))
    {
        rest.rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0))
            && !rest.contains('/')
    } else {
        false
    };
    if ok && !url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Ok(())
    } else {
        Err(
            "endpoint must be unix:///path/to/docker.sock, tcp://host:port or ssh://[user@]host[:port]"
                .into(),
        )
    }
}

/// What Opsdeck shows about an engine.
#[derive(Debug, Clone)]
pub struct EngineInfo {
    pub version: String,
    pub api_version: String,
}

pub async fn engine_info(docker: &Docker) -> anyhow::Result<EngineInfo> {
    let v = tokio::time::timeout(REQUEST_TIMEOUT, docker.version())
        .await
        .map_err(|_| anyhow::anyhow!("the engine did not answer within {REQUEST_TIMEOUT:?}"))?
        .context("asking the engine for its version")?;
    Ok(EngineInfo {
        version: v.version.unwrap_or_default(),
        api_version: v.api_version.unwrap_or_default(),
    })
}

/// Runtime status of one engine.
#[derive(Debug, Clone)]
pub struct EngineStatus {
    pub state: EngineState,
    pub version: Option<String>,
    pub api_version: Option<String>,
    pub last_error: Option<String>,
    pub last_ok_at: Option<DateTime<Utc>>,
}

/// One registered engine: its client, status and container cache.
pub struct EngineConn {
    pub id: i64,
    pub name: String,
    pub endpoint: Endpoint,
    status: RwLock<EngineStatus>,
    client: RwLock<Option<Client>>,
    containers: RwLock<HashMap<String, ContainerInfo>>,
    /// Container id → services named by its `com.docker.compose.depends_on` label.
    compose_deps: RwLock<HashMap<String, Vec<String>>>,
    /// Previous stats sample per container, for CPU % between one-shot samples.
    pub(crate) stats_prev: std::sync::Mutex<HashMap<String, stats::CpuSample>>,
    task: std::sync::Mutex<Option<JoinHandle<()>>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

impl EngineConn {
    pub fn status(&self) -> EngineStatus {
        read(&self.status).clone()
    }

    /// Every cached container.
    pub fn containers(&self) -> Vec<ContainerInfo> {
        read(&self.containers).values().cloned().collect()
    }

    /// Dependencies of a compose service, from its containers' labels.
    pub fn compose_depends_on(&self, project: &str, service: &str) -> Vec<String> {
        let ids: Vec<String> = read(&self.containers)
            .values()
            .filter(|c| {
                c.compose_project.as_deref() == Some(project)
                    && c.compose_service.as_deref() == Some(service)
            })
            .map(|c| c.id.clone())
            .collect();
        let deps = read(&self.compose_deps);
        let mut out: Vec<String> = ids
            .iter()
            .filter_map(|id| deps.get(id))
            .flatten()
            .cloned()
            .collect();
        out.sort();
        out.dedup();
        out
    }

    pub fn container_count(&self) -> usize {
        read(&self.containers).len()
    }

    /// Runs `f` over the cache without cloning it.
    pub fn with_containers<R>(&self, f: impl FnOnce(&HashMap<String, ContainerInfo>) -> R) -> R {
        f(&read(&self.containers))
    }

    /// The connected client, or a clear error saying why there is none.
    pub fn client(&self) -> Result<Client, EngineUnavailable> {
        let status = self.status();
        match (&status.state, read(&self.client).clone()) {
            (EngineState::Connected, Some(c)) => Ok(c),
            _ => Err(EngineUnavailable {
                engine: self.name.clone(),
                reason: status
                    .last_error
                    .unwrap_or_else(|| "not connected yet".into()),
            }),
        }
    }

    fn set_status(&self, f: impl FnOnce(&mut EngineStatus)) {
        f(&mut write(&self.status));
    }

    /// Re-reads one container from the engine into the cache (after an
    /// event or an action). A container that no longer exists is removed.
    pub async fn refresh_container(&self, docker: &Client, id: &str) -> anyhow::Result<()> {
        let docker = &docker.inner;
        let res = tokio::time::timeout(
            REQUEST_TIMEOUT,
            docker.inspect_container(id, None::<InspectContainerOptions>),
        )
        .await
        .map_err(|_| anyhow::anyhow!("inspecting {id}: no answer within {REQUEST_TIMEOUT:?}"))?;
        match res {
            Ok(inspect) => {
                if let Some(info) = container_info(self.id, &self.name, &inspect) {
                    write(&self.compose_deps).insert(info.id.clone(), compose_deps(&inspect));
                    write(&self.containers).insert(info.id.clone(), info);
                }
                Ok(())
            }
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {
                write(&self.containers).retain(|k, _| !k.starts_with(id));
                write(&self.compose_deps).retain(|k, _| !k.starts_with(id));
                Ok(())
            }
            Err(e) => Err(e).with_context(|| format!("inspecting container {id}")),
        }
    }
}

/// Why an engine cannot take a request now.
#[derive(Debug, Clone)]
pub struct EngineUnavailable {
    pub engine: String,
    pub reason: String,
}

impl std::fmt::Display for EngineUnavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Docker engine \"{}\" is unreachable: {}",
            self.engine, self.reason
        )
    }
}

/// All engines and their caches.
pub struct EngineHub {
    engines: RwLock<HashMap<i64, Arc<EngineConn>>>,
    changed: watch::Sender<u64>,
    /// State-changing container events of every engine, after the cache
    /// took them (lossy: a lagging receiver is told how many it missed).
    container_events: tokio::sync::broadcast::Sender<ContainerEvent>,
    /// Set when the server shuts down: long-lived responses (SSE, log
    /// follow) end so the graceful shutdown can finish.
    closing: watch::Sender<bool>,
    /// Engines connecting and reconciling at once (a fleet starting, a
    /// network blip over many hosts): bounded, so the first engines are up
    /// quickly and the database and runtime are not flooded.
    connecting: Arc<tokio::sync::Semaphore>,
}

impl Default for EngineHub {
    fn default() -> Self {
        EngineHub {
            engines: RwLock::new(HashMap::new()),
            changed: watch::channel(0).0,
            container_events: tokio::sync::broadcast::channel(1024).0,
            closing: watch::channel(false).0,
            connecting: Arc::new(tokio::sync::Semaphore::new(CONNECT_CONCURRENCY)),
        }
    }
}

impl EngineHub {
    /// Engines sorted by name.
    pub fn engines(&self) -> Vec<Arc<EngineConn>> {
        let mut v: Vec<_> = read(&self.engines).values().cloned().collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    pub fn get(&self, id: i64) -> Option<Arc<EngineConn>> {
        read(&self.engines).get(&id).cloned()
    }

    pub fn by_name(&self, name: &str) -> Option<Arc<EngineConn>> {
        read(&self.engines)
            .values()
            .find(|e| e.name == name)
            .cloned()
    }

    /// A receiver that sees a new value whenever a cache or engine status changes.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Containers whose state an event just changed, on every engine: for
    /// whatever must react at once rather than at its next poll (container
    /// checks).
    pub fn container_events(&self) -> tokio::sync::broadcast::Receiver<ContainerEvent> {
        self.container_events.subscribe()
    }

    /// A number that moves whenever a cache or an engine's status changes
    /// (what [`EngineHub::subscribe`] watches).
    pub fn version(&self) -> u64 {
        *self.changed.borrow()
    }

    pub(crate) fn bump(&self) {
        self.changed.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Makes the running supervisors match `wanted` (the `engines` table):
    /// starts new ones, stops removed or changed ones. Must be called from a
    /// Tokio runtime.
    pub fn sync(self: &Arc<Self>, wanted: Vec<(i64, String, Endpoint)>) {
        let mut map = write(&self.engines);
        let keep: HashMap<i64, (String, Endpoint)> = wanted
            .into_iter()
            .map(|(id, name, ep)| (id, (name, ep)))
            .collect();
        map.retain(|id, conn| {
            let same = keep
                .get(id)
                .is_some_and(|(n, ep)| *n == conn.name && *ep == conn.endpoint);
            if !same {
                conn.stop();
            }
            same
        });
        for (id, (name, endpoint)) in keep {
            if map.contains_key(&id) {
                continue;
            }
            let conn = Arc::new(EngineConn {
                id,
                name,
                endpoint,
                status: RwLock::new(EngineStatus {
                    state: EngineState::Connecting,
                    version: None,
                    api_version: None,
                    last_error: None,
                    last_ok_at: None,
                }),
                client: RwLock::new(None),
                containers: RwLock::new(HashMap::new()),
                compose_deps: RwLock::new(HashMap::new()),
                stats_prev: std::sync::Mutex::new(HashMap::new()),
                task: std::sync::Mutex::new(None),
            });
            let handle = tokio::spawn(supervise(Arc::downgrade(self), conn.clone()));
            *conn.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
            map.insert(id, conn);
        }
        drop(map);
        self.bump();
    }

    /// Shutdown: ends live streams and stops every supervisor.
    pub fn close(&self) {
        self.closing.send_replace(true);
        for conn in read(&self.engines).values() {
            conn.stop();
        }
    }

    /// Completes when the server shuts down.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closing.subscribe();
        async move {
            let _ = rx.wait_for(|c| *c).await;
        }
    }
}

impl EngineConn {
    fn stop(&self) {
        if let Some(h) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }
}

impl Drop for EngineConn {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Connect → reconcile → follow events, forever, with backoff on failure.
async fn supervise(hub: std::sync::Weak<EngineHub>, conn: Arc<EngineConn>) {
    let mut backoff = BACKOFF_MIN;
    loop {
        let result = run_session(&hub, &conn, &mut backoff).await;
        let Some(h) = hub.upgrade() else { return };
        let message = match result {
            Ok(()) => "the events stream ended".to_owned(),
            Err(e) => format!("{e:#}"),
        };
        // Warn once per outage (and when the reason changes), not every retry.
        let previous = conn.status();
        let news = previous.state != EngineState::Unreachable
            || previous.last_error.as_deref() != Some(&message);
        if news {
            tracing::warn!(engine = %conn.name, error = %message, "Docker engine unreachable; retrying");
        } else {
            tracing::debug!(engine = %conn.name, error = %message, "Docker engine still unreachable");
        }
        *write(&conn.client) = None;
        conn.set_status(|s| {
            s.state = EngineState::Unreachable;
            s.last_error = Some(message);
        });
        // A retry that failed the same way changes nothing anybody shows:
        // no bump, so the pages' caches keyed on the hub's version stay
        // valid while engines are down.
        if news {
            h.bump();
        }
        drop(h);
        // Jitter (0.5 to 1.5 times): engines lost together (a network
        // blip, a restart of Opsdeck's host) do not retry in step.
        tokio::time::sleep(backoff.mul_f64(0.5 + rand::random::<f64>())).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// One connected session. Returns when the engine goes away.
async fn run_session(
    hub: &std::sync::Weak<EngineHub>,
    conn: &Arc<EngineConn>,
    backoff: &mut Duration,
) -> anyhow::Result<()> {
    let slots = hub.upgrade().map(|h| h.connecting.clone());
    let permit = match slots {
        Some(s) => Some(s.acquire_owned().await.context("the hub is closing")?),
        None => return Ok(()),
    };
    let docker = connect_endpoint(&conn.endpoint).await?;
    let info = engine_info(&docker).await?;
    // Subscribe from a moment before the listing, so no event between the
    // two is lost (replayed events are harmless: each one re-inspects).
    let since = (Utc::now().timestamp() - 2).to_string();
    let client = Client::from(docker.clone());
    let listed = reconcile(conn, &client).await?;
    drop(permit);
    *write(&conn.compose_deps) = listed
        .iter()
        .map(|(info, deps)| (info.id.clone(), deps.clone()))
        .collect();
    *write(&conn.containers) = listed
        .into_iter()
        .map(|(info, _)| (info.id.clone(), info))
        .collect();
    *write(&conn.client) = Some(client.clone());
    conn.set_status(|s| {
        s.state = EngineState::Connected;
        s.version = Some(info.version.clone());
        s.api_version = Some(info.api_version.clone());
        s.last_error = None;
        s.last_ok_at = Some(Utc::now());
    });
    tracing::info!(engine = %conn.name, version = %info.version, api = %info.api_version,
        containers = conn.container_count(), "Docker engine connected");
    if let Some(h) = hub.upgrade() {
        h.bump();
    }
    *backoff = BACKOFF_MIN;

    let mut filters = HashMap::new();
    filters.insert("type".to_owned(), vec!["container".to_owned()]);
    let options = EventsOptionsBuilder::default()
        .since(&since)
        .filters(&filters)
        .build();
    let mut events = docker.events(Some(options));
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        tokio::select! {
            ev = events.next() => {
                let ev = match ev {
                    None => return Ok(()),
                    Some(Err(e)) => return Err(e).context("reading the events stream"),
                    Some(Ok(ev)) => ev,
                };
                let changed = handle_event(conn, &client, ev).await;
                conn.set_status(|s| s.last_ok_at = Some(Utc::now()));
                let Some(h) = hub.upgrade() else { return Ok(()) };
                h.bump();
                if let Some(e) = changed {
                    // No receiver (no container checks yet) is fine.
                    let _ = h.container_events.send(e);
                }
            }
            _ = ping.tick() => {
                if hub.upgrade().is_none() {
                    return Ok(());
                }
                tokio::time::timeout(Duration::from_secs(5), docker.ping())
                    .await
                    .map_err(|_| anyhow::anyhow!("the engine stopped answering (ping timed out)"))?
                    .context("ping")?;
                conn.set_status(|s| s.last_ok_at = Some(Utc::now()));
            }
        }
    }
}

/// Lists every container (all states) and inspects each, with bounded
/// concurrency.
async fn reconcile(
    conn: &EngineConn,
    client: &Client,
) -> anyhow::Result<Vec<(ContainerInfo, Vec<String>)>> {
    let docker = &client.inner;
    let ids: Vec<String> = list::containers(client, list::ListBy::All)
        .await?
        .into_iter()
        .map(|c| c.id)
        .collect();
    let inspected: Vec<Option<(ContainerInfo, Vec<String>)>> = futures::stream::iter(ids)
        .map(|id| async move {
            let r = tokio::time::timeout(
                REQUEST_TIMEOUT,
                docker.inspect_container(&id, None::<InspectContainerOptions>),
            )
            .await;
            match r {
                Ok(Ok(i)) => container_info(conn.id, &conn.name, &i).map(|c| (c, compose_deps(&i))),
                // Removed between list and inspect, or slow: the events
                // stream brings it back if it still exists.
                _ => None,
            }
        })
        .buffer_unordered(RECONCILE_CONCURRENCY)
        .collect()
        .await;
    Ok(inspected.into_iter().flatten().collect())
}

/// Services named by a container's `com.docker.compose.depends_on` label
/// (`svc:condition:required,…`).
fn compose_deps(i: &ContainerInspectResponse) -> Vec<String> {
    let label = i
        .config
        .as_ref()
        .and_then(|c| c.labels.as_ref())
        .and_then(|l| l.get("com.docker.compose.depends_on"));
    let mut deps: Vec<String> = label
        .map(|l| {
            l.split(',')
                .filter_map(|d| d.split(':').next())
                .map(str::trim)
                .filter(|d| !d.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    deps.sort();
    deps.dedup();
    deps
}

fn parse_time(s: Option<&str>) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s?).ok()?.with_timezone(&Utc);
    // Docker reports "0001-01-01T00:00:00Z" for never.
    (t.timestamp() > 0).then_some(t)
}

/// The cache entry for an inspected container.
pub fn container_info(
    engine_id: i64,
    engine: &str,
    i: &ContainerInspectResponse,
) -> Option<ContainerInfo> {
    let id = i.id.clone()?;
    let state = i.state.as_ref();
    let status_word = state
        .and_then(|s| s.status)
        .map(|s| s.to_string())
        .unwrap_or_else(|| "unknown".into());
    let health = state
        .and_then(|s| s.health.as_ref())
        .and_then(|h| h.status)
        .map(|h| h.to_string())
        .filter(|h| !h.is_empty() && h != "none");
    let labels = i.config.as_ref().and_then(|c| c.labels.as_ref());
    let label = |k: &str| labels.and_then(|l| l.get(k)).cloned();
    let exit = state.and_then(|s| s.exit_code).unwrap_or(0);
    let mut status = match status_word.as_str() {
        "exited" => format!("exited ({exit})"),
        other => other.to_owned(),
    };
    if let Some(h) = &health {
        status.push_str(&format!(" ({h})"));
    }
    Some(ContainerInfo {
        engine_id,
        engine: engine.to_owned(),
        id,
        name: i
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image: i
            .config
            .as_ref()
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        state: status_word,
        status,
        health,
        restart_count: i.restart_count.unwrap_or(0),
        started_at: parse_time(state.and_then(|s| s.started_at.as_deref())),
        compose_project: label("com.docker.compose.project"),
        compose_service: label("com.docker.compose.service"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked() {
        assert!(validate_endpoint("unix:///var/run/docker.sock").is_ok());
        assert!(validate_endpoint("tcp://10.0.0.5:2376").is_ok());
        assert!(validate_endpoint("tcp://docker.example:2375").is_ok());
        for bad in [
            "",
            "unix://",
            "unix://relative.sock",
            "tcp://host",
            "tcp://host:0",
            "tcp://host:99999",
            "tcp://host:2375/path",
            "ftp://host:21",
            "/var/run/docker.sock",
            "tcp://ho st:2375",
        ] {
            assert!(validate_endpoint(bad).is_err(), "{bad:?} accepted");
        }
    }
}
