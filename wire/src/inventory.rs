//! Wire types of the inventory: Docker engines, services, the dependency
//! graph, container and stack actions, logs, stats, exec, imports.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Tier of a service, as in the handbooks' status dashboard.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// Proxy, databases: everything else stands on them.
    Critical,
    /// The applications users see.
    #[default]
    Application,
    /// Caches, helpers, admin tools.
    Support,
}

impl Tier {
    pub const ALL: [Tier; 3] = [Tier::Critical, Tier::Application, Tier::Support];
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Critical => "critical",
            Tier::Application => "application",
            Tier::Support => "support",
        }
    }
}

/// Connection state of a Docker Engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum EngineState {
    /// Not yet connected (first attempt under way).
    Connecting,
    /// Events stream open; the container cache is current.
    Connected,
    /// Last attempt failed; retrying with backoff. The cache shows the last
    /// known state and is marked stale.
    Unreachable,
}

/// What the containers of a service are doing, summarised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// All mapped containers run (and are healthy where they have a HEALTHCHECK).
    Running,
    /// Some run, some don't, or a HEALTHCHECK reports unhealthy.
    Degraded,
    /// Restarting (a restart loop shows here).
    Restarting,
    Paused,
    /// Containers exist but none runs.
    Stopped,
    /// The mapping matches no container.
    Missing,
    /// The engine is unreachable: the last known state is stale.
    Unknown,
    /// No container mapping (a service kept only for the graph and docs).
    Unmapped,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Running => "running",
            RunState::Degraded => "degraded",
            RunState::Restarting => "restarting",
            RunState::Paused => "paused",
            RunState::Stopped => "stopped",
            RunState::Missing => "missing",
            RunState::Unknown => "unknown",
            RunState::Unmapped => "unmapped",
        }
    }
}

/// A container action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ContainerActionKind {
    Start,
    Stop,
    Restart,
    Kill,
    Pause,
    Unpause,
}

impl ContainerActionKind {
    pub const ALL: [ContainerActionKind; 6] = [
        ContainerActionKind::Start,
        ContainerActionKind::Stop,
        ContainerActionKind::Restart,
        ContainerActionKind::Kill,
        ContainerActionKind::Pause,
        ContainerActionKind::Unpause,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            ContainerActionKind::Start => "start",
            ContainerActionKind::Stop => "stop",
            ContainerActionKind::Restart => "restart",
            ContainerActionKind::Kill => "kill",
            ContainerActionKind::Pause => "pause",
            ContainerActionKind::Unpause => "unpause",
        }
    }
    /// Stopping or killing takes a service away: on a critical-tier service
    /// it needs the service's name typed as confirmation.
    pub fn is_disruptive(self) -> bool {
        matches!(self, ContainerActionKind::Stop | ContainerActionKind::Kill)
    }
}

/// A stack action on a compose project, run in dependency order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StackActionKind {
    /// Start all, dependencies first.
    Start,
    /// Stop all, dependents first.
    Stop,
    /// Stop all in reverse order, then start all in order.
    Restart,
}

impl StackActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StackActionKind::Start => "start",
            StackActionKind::Stop => "stop",
            StackActionKind::Restart => "restart",
        }
    }
}

/// How an action ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ActionOutcome {
    Running,
    Succeeded,
    Failed,
    /// The server stopped while the action ran; what was done is in `steps`.
    Interrupted,
}

/// Kind of a change in an import plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ChangeKind {
    Add,
    Update,
    Remove,
    Unchanged,
}

/// A graph query (`GET /api/v1/graph/query`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum GraphQueryKind {
    /// Services affected if these are down: transitive dependents.
    Impact,
    /// Why these are impacted: failing transitive dependencies whose own
    /// dependencies are fine (the deepest failures).
    RootCause,
    /// The services in an order where every dependency comes first.
    StartOrder,
    /// The reverse: dependents first.
    StopOrder,
}

wire! {
    /// A Docker Engine and what Opsdeck currently knows about it.
    pub struct Engine {
        pub id: i64,
        pub name: String,
        /// `unix:///var/run/docker.sock`, `tcp://host:2376` or
        /// `ssh://user@host[:port]`.
        pub endpoint: String,
        /// TLS client certificates are configured.
        pub tls: bool,
        /// SSH engines: the pinned host key's fingerprint (`SHA256:…`).
        #[serde(default)]
        pub ssh_host_key_fingerprint: Option<String>,
        pub state: EngineState,
        /// Engine version, e.g. `20.10.24`, once connected.
        pub version: Option<String>,
        /// API version negotiated with the engine, e.g. `1.41`.
        pub api_version: Option<String>,
        pub last_error: Option<String>,
        /// Last time the engine answered.
        pub last_ok_at: Option<DateTime<Utc>>,
        /// Containers in the cache (all states).
        pub containers: usize,
        pub created_at: DateTime<Utc>,
    }

    /// `POST /api/v1/engines`.
    pub struct CreateEngineRequest {
        pub name: String,
        /// `unix:///path/docker.sock`, `tcp://host:port` or
        /// `ssh://[user@]host[:port]`.
        pub endpoint: String,
        /// For TLS: paths on the Opsdeck host of the CA, client certificate
        /// and client key (PEM). All three or none.
        #[serde(default)]
        pub tls_ca: Option<String>,
        #[serde(default)]
        pub tls_cert: Option<String>,
        #[serde(default)]
        pub tls_key: Option<String>,
        /// For SSH (required): the host key to pin, either the key as
        /// `POST /api/v1/engines/ssh-host-keys` showed it (`ssh-ed25519
        /// AAAA…`) or its fingerprint (`SHA256:…`), which the host's key
        /// must match.
        #[serde(default)]
        pub ssh_host_key: Option<String>,
        /// For SSH: path of the private key file on the Opsdeck host (the
        /// key itself is never stored); none: ssh's default keys.
        #[serde(default)]
        pub ssh_key: Option<String>,
    }

    /// `POST /api/v1/engines/ssh-host-keys`: the host keys an SSH engine's
    /// host offers, to be confirmed before the engine is registered.
    pub struct SshHostKeysRequest {
        /// `ssh://[user@]host[:port]`.
        pub endpoint: String,
    }

    /// One host key offered by an SSH host.
    pub struct SshHostKey {
        /// `ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`, …
        pub key_type: String,
        /// `<type> <base64>`: what `ssh_host_key` takes.
        pub key: String,
        /// `SHA256:…`, as `ssh-keygen -lf` shows it on the host.
        pub fingerprint: String,
    }

    /// A container as the engine hub's cache knows it.
    pub struct ContainerInfo {
        pub engine_id: i64,
        pub engine: String,
        pub id: String,
        /// Without the leading `/`.
        pub name: String,
        pub image: String,
        /// Docker's state: created, running, paused, restarting, exited, dead.
        pub state: String,
        /// Docker's status text, e.g. `Up 3 minutes (healthy)`.
        pub status: String,
        /// HEALTHCHECK status when the image has one: starting, healthy, unhealthy.
        pub health: Option<String>,
        /// Restarts by the engine's restart policy (a restart loop shows here).
        pub restart_count: i64,
        pub started_at: Option<DateTime<Utc>>,
        pub compose_project: Option<String>,
        pub compose_service: Option<String>,
    }

    /// A service of the inventory.
    pub struct Service {
        pub id: i64,
        pub name: String,
        pub description: String,
        pub tier: Tier,
        pub owner_team: Option<String>,
        pub docs_url: Option<String>,
        pub repo_url: Option<String>,
        /// Engine name; `None`: containers are looked up on every engine.
        pub engine: Option<String>,
        pub compose_project: Option<String>,
        pub compose_service: Option<String>,
        pub container_name: Option<String>,
        pub image: Option<String>,
        pub ports: Vec<String>,
        pub volumes: Vec<String>,
        pub labels: BTreeMap<String, String>,
        /// Names of the services this one requires, sorted.
        pub requires: Vec<String>,
        /// Names of the services that require this one, sorted.
        pub supports: Vec<String>,
        /// manual, compose, discovered or yaml.
        pub source: String,
        /// Fields edited by hand; imports leave them alone.
        pub edited_fields: Vec<String>,
        pub created_at: DateTime<Utc>,
        pub updated_at: DateTime<Utc>,
    }

    /// A service with its containers and their summarised state: one row of
    /// the services page (`GET /api/v1/services`).
    pub struct ServiceOverview {
        pub service: Service,
        pub run_state: RunState,
        pub containers: Vec<ContainerInfo>,
    }

    /// `POST /api/v1/services` (all fields) and `PATCH /api/v1/services/{id}`
    /// (only the fields given change; an empty string clears an optional text).
    pub struct ServiceInput {
        #[serde(default)]
        pub name: Option<String>,
        #[serde(default)]
        pub description: Option<String>,
        #[serde(default)]
        pub tier: Option<Tier>,
        #[serde(default)]
        pub owner_team: Option<String>,
        #[serde(default)]
        pub docs_url: Option<String>,
        #[serde(default)]
        pub repo_url: Option<String>,
        #[serde(default)]
        pub engine: Option<String>,
        #[serde(default)]
        pub compose_project: Option<String>,
        #[serde(default)]
        pub compose_service: Option<String>,
        #[serde(default)]
        pub container_name: Option<String>,
        #[serde(default)]
        pub image: Option<String>,
        #[serde(default)]
        pub ports: Option<Vec<String>>,
        #[serde(default)]
        pub volumes: Option<Vec<String>>,
        #[serde(default)]
        pub labels: Option<BTreeMap<String, String>>,
        /// The complete list of services this one requires.
        #[serde(default)]
        pub requires: Option<Vec<String>>,
    }

    /// One field's change in an import plan.
    pub struct FieldChange {
        pub field: String,
        pub old: String,
        pub new: String,
    }

    /// One service's change in an import plan.
    pub struct PlanChange {
        pub kind: ChangeKind,
        pub service: String,
        pub fields: Vec<FieldChange>,
        /// Fields the import would change but leaves alone: edited by hand.
        pub kept_manual: Vec<String>,
        /// Fields whose new value is a guess (`tier`, from the image).
        #[serde(default)]
        pub guessed: Vec<String>,
    }

    /// What an import changes (preview) or changed (applied).
    pub struct ImportPlan {
        /// Compose project, for compose imports and discovery.
        pub project: Option<String>,
        /// Where the project name came from: `given`, `name` (the files'
        /// top-level `name:`), `COMPOSE_PROJECT_NAME` or `directory`.
        #[serde(default)]
        pub project_source: Option<String>,
        pub changes: Vec<PlanChange>,
        pub applied: bool,
        /// Compose files read, in load order (includes and extends too).
        #[serde(default)]
        pub files: Vec<String>,
        /// Services outside the active profiles: listed, not imported.
        #[serde(default)]
        pub inactive: Vec<InactiveService>,
        /// Checks proposed for the stack; the `selected` ones are created
        /// with the inventory in the same transaction when applied.
        #[serde(default)]
        pub checks: Vec<ProposedCheck>,
    }

    /// A compose service not imported because none of its profiles is active.
    pub struct InactiveService {
        pub name: String,
        pub profiles: Vec<String>,
    }

    /// A check an import proposes for a service.
    pub struct ProposedCheck {
        /// Stable within the import: `<service>/<kind>` or
        /// `<service>/<kind>/<port>`; names the check in
        /// [`ComposeImportRequest::checks`] and `check_passwords`.
        pub key: String,
        pub service: String,
        pub name: String,
        pub spec: crate::CheckSpec,
        /// Why it is proposed ("published port 8080 answers /healthz").
        pub reason: String,
        /// A database check that needs a password: it is created only when
        /// one is given in `check_passwords` (or it is ticked explicitly,
        /// for a server without a password).
        pub needs_password: bool,
        /// It will be created (preview) or was created (applied).
        pub selected: bool,
        /// The service already has a check of this kind: not created again.
        pub exists: bool,
    }

    /// One file of a compose project: its path relative to the project
    /// directory (`compose.yaml`, `monitoring/compose.yaml`, `.env`) and
    /// its text.
    pub struct ComposeSource {
        pub path: String,
        pub content: String,
    }

    /// `POST /api/v1/inventory/compose`: a compose project, loaded as
    /// `docker compose` loads it (several files merged in order, `include`,
    /// `extends`, profiles, interpolation from `.env` files).
    pub struct ComposeImportRequest {
        /// One file's text (YAML): shorthand for
        /// `files: [{path: "compose.yaml", content}]`.
        #[serde(default)]
        pub content: String,
        /// Every file the project needs: the compose files, the files they
        /// include or extend, and `.env` files. The server reads nothing
        /// from its own disk or environment.
        #[serde(default)]
        pub files: Vec<ComposeSource>,
        /// The compose files to load, in order (`docker compose -f`);
        /// default: the first of `compose.yaml`, `compose.yml`,
        /// `docker-compose.yaml`, `docker-compose.yml` among `files`, then
        /// its override file (`compose.override.yaml`, …) when given.
        #[serde(default)]
        pub compose_files: Vec<String>,
        /// Env files for interpolation, in order (`--env-file`); default:
        /// `.env` when it is among `files`.
        #[serde(default)]
        pub env_files: Vec<String>,
        /// Active profiles (`--profile`).
        #[serde(default)]
        pub profiles: Vec<String>,
        /// The project directory's name: the default project name when the
        /// files have no `name:` and the env files no `COMPOSE_PROJECT_NAME`.
        #[serde(default)]
        pub directory: Option<String>,
        /// Compose project name; default as `docker compose` chooses it.
        #[serde(default)]
        pub project: Option<String>,
        /// Engine the containers run on; default: any engine.
        #[serde(default)]
        pub engine: Option<String>,
        /// false: only show the plan.
        #[serde(default)]
        pub apply: bool,
        /// Keys of the proposed checks to create; absent: every proposed
        /// check that needs no password, plus those given a password.
        #[serde(default)]
        pub checks: Option<Vec<String>>,
        /// Passwords of proposed database checks, by key (write-only,
        /// stored sealed like every check password).
        #[serde(default)]
        pub check_passwords: BTreeMap<String, String>,
    }

    /// `POST /api/v1/inventory/import`: the whole inventory as YAML (the
    /// format of `GET /api/v1/inventory/export`). Replaces the inventory.
    pub struct InventoryImportRequest {
        pub content: String,
        #[serde(default)]
        pub apply: bool,
    }

    /// A compose project found from running containers' labels.
    pub struct DiscoveredProject {
        pub engine: String,
        pub project: String,
        pub services: Vec<DiscoveredService>,
    }

    pub struct DiscoveredService {
        pub name: String,
        pub image: String,
        pub containers: usize,
        pub running: usize,
        /// Dependencies from the `com.docker.compose.depends_on` label.
        pub depends_on: Vec<String>,
        /// A service of the inventory maps to it already.
        pub in_inventory: bool,
    }

    /// `POST /api/v1/inventory/discovered`: add a discovered project.
    pub struct DiscoveredImportRequest {
        pub engine: String,
        pub project: String,
        #[serde(default)]
        pub apply: bool,
        /// Read the project's own compose files (and `.env`) from the
        /// engine's host, as its containers' labels name them, and import
        /// those like `POST /api/v1/inventory/compose`; false: only what
        /// the running containers' labels say (images, dependencies).
        #[serde(default)]
        pub from_files: bool,
        /// With `from_files`: the active profiles; default: the profiles of
        /// the services that have containers.
        #[serde(default)]
        pub profiles: Option<Vec<String>>,
        /// With `from_files`: keys of the proposed checks to create, as in
        /// [`ComposeImportRequest::checks`].
        #[serde(default)]
        pub checks: Option<Vec<String>>,
        /// With `from_files`: passwords of proposed database checks, by key.
        #[serde(default)]
        pub check_passwords: BTreeMap<String, String>,
    }

    /// The dependency graph with a layered layout (`GET /api/v1/graph`).
    pub struct GraphView {
        pub nodes: Vec<GraphNode>,
        pub edges: Vec<GraphEdge>,
        pub width: f64,
        pub height: f64,
    }

    pub struct GraphNode {
        pub id: i64,
        pub name: String,
        pub tier: Tier,
        pub run_state: RunState,
        /// 0 = services that require nothing.
        pub layer: u32,
        /// Centre of the node.
        pub x: f64,
        pub y: f64,
    }

    /// `from` requires `to`.
    pub struct GraphEdge {
        pub from: String,
        pub to: String,
        /// compose or manual.
        pub source: String,
    }

    /// Answer to `GET /api/v1/graph/query`.
    pub struct GraphQueryResult {
        pub kind: GraphQueryKind,
        pub services: Vec<String>,
    }

    /// `POST /api/v1/services/{id}/actions`.
    pub struct ContainerActionRequest {
        pub action: ContainerActionKind,
        /// Stop/restart: seconds to wait before killing (default 10, at most 600).
        #[serde(default)]
        pub timeout_secs: Option<u32>,
        /// Kill: signal name, e.g. `SIGTERM` (default `SIGKILL`).
        #[serde(default)]
        pub signal: Option<String>,
        /// Stop or kill of a critical-tier service: the service's name.
        #[serde(default)]
        pub confirm: Option<String>,
    }

    /// `POST /api/v1/stacks/{project}/actions`.
    pub struct StackActionRequest {
        pub action: StackActionKind,
        #[serde(default)]
        pub timeout_secs: Option<u32>,
        /// Stop or restart of a stack with a critical-tier service: the project's name.
        #[serde(default)]
        pub confirm: Option<String>,
    }

    /// One container step of an action.
    pub struct ActionStep {
        pub service: Option<String>,
        pub container: String,
        pub action: String,
        pub ok: bool,
        pub error: Option<String>,
        pub duration_ms: i64,
    }

    /// A container or stack action as kept in the activity list.
    pub struct ActionRecord {
        pub id: i64,
        /// e.g. `container.restart`, `stack.restart`.
        pub kind: String,
        /// Service name or `stack:<project>`.
        pub target: String,
        pub service_id: Option<i64>,
        pub params: serde_json::Value,
        pub actor: String,
        pub started_at: DateTime<Utc>,
        pub finished_at: Option<DateTime<Utc>>,
        pub duration_ms: Option<i64>,
        pub outcome: ActionOutcome,
        pub error: Option<String>,
        pub steps: Vec<ActionStep>,
    }

    /// One-shot resource figures of a container.
    pub struct ContainerStats {
        pub container: String,
        pub name: String,
        /// Percent of one CPU (100 = one core busy); `None` until two samples exist.
        pub cpu_percent: Option<f64>,
        pub memory_bytes: u64,
        pub memory_limit_bytes: u64,
        pub net_rx_bytes: u64,
        pub net_tx_bytes: u64,
        pub block_read_bytes: u64,
        pub block_write_bytes: u64,
        pub pids: u64,
        pub sampled_at: DateTime<Utc>,
    }

    /// `POST /api/v1/services/{id}/exec`: an argv array, never shell text.
    pub struct ExecRequest {
        pub argv: Vec<String>,
        /// Container name or id; default: the service's first running container.
        #[serde(default)]
        pub container: Option<String>,
        /// Seconds (default 30, at most 300).
        #[serde(default)]
        pub timeout_secs: Option<u32>,
    }

    pub struct ExecResult {
        pub container: String,
        pub exit_code: Option<i64>,
        pub stdout: String,
        pub stderr: String,
        /// Output was longer than the limit and was cut.
        pub truncated: bool,
        pub timed_out: bool,
        pub duration_ms: i64,
    }
}

impl Default for ComposeImportRequest {
    /// An empty preview request: no files, defaults everywhere.
    fn default() -> Self {
        ComposeImportRequest {
            content: String::new(),
            files: Vec::new(),
            compose_files: Vec::new(),
            env_files: Vec::new(),
            profiles: Vec::new(),
            directory: None,
            project: None,
            engine: None,
            apply: false,
            checks: None,
            check_passwords: BTreeMap::new(),
        }
    }
}
