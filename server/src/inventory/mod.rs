//! The service inventory: services, the containers they map to, the
//! dependency graph, and the ways services get in (manual edits, compose
//! import, discovery from container labels, whole-inventory YAML).
//!
//! - [`compose`] parses docker-compose files; [`yaml`] is the inventory's
//!   config-as-code format; [`graph`] the dependency graph's algorithms and
//!   layout; [`plan`] turns a desired state into a diff and applies it.
//! - Routes: `/api/v1/services…` (viewer reads, admin writes),
//!   `/api/v1/graph…` (viewer), `/api/v1/inventory/…` (viewer reads and
//!   previews, admin applies), `/api/v1/inventory/events` (SSE: a `changed`
//!   event whenever services or container states change).
//!
//! Invariants:
//! - Every write to services or dependencies holds the transaction-level
//!   advisory lock [`lock`], so the acyclicity check and the write see the
//!   same graph; the graph is checked ([`graph::DepGraph::new`]) before any
//!   change commits.
//! - Imports never half-apply: the whole plan is computed and validated
//!   first, then applied in one transaction with its audit entry.
//! - Fields a user edited by hand are recorded in `edited_fields`; compose
//!   imports and discovery leave them alone. YAML import is authoritative
//!   (config as code) and clears the marks.

pub mod compose;
pub mod graph;
pub mod plan;
pub mod yaml;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use futures::Stream;
use opsdeck_wire::{
    ContainerInfo, EngineState, GraphEdge, GraphNode, GraphQueryKind, GraphQueryResult, GraphView,
    RunState, Service, ServiceInput, ServiceOverview, Tier,
};
use serde::Deserialize;
use serde_json::json;
use sqlx::PgConnection;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::docker::EngineHub;
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

/// The `service_tier` Postgres enum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::Type)]
#[sqlx(type_name = "service_tier", rename_all = "lowercase")]
pub enum DbTier {
    Critical,
    Application,
    Support,
}

impl From<DbTier> for Tier {
    fn from(t: DbTier) -> Tier {
        match t {
            DbTier::Critical => Tier::Critical,
            DbTier::Application => Tier::Application,
            DbTier::Support => Tier::Support,
        }
    }
}
impl From<Tier> for DbTier {
    fn from(t: Tier) -> DbTier {
        match t {
            Tier::Critical => DbTier::Critical,
            Tier::Application => DbTier::Application,
            Tier::Support => DbTier::Support,
        }
    }
}

/// Parses a tier name.
pub fn parse_tier(s: &str) -> Result<Tier, String> {
    Tier::ALL
        .into_iter()
        .find(|t| t.as_str() == s)
        .ok_or_else(|| format!("tier must be critical, application or support, not \"{s}\""))
}

/// A validated service (or engine) name: `[a-z0-9][a-z0-9._-]{0,62}`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceName(String);

impl ServiceName {
    pub fn parse(s: &str) -> Result<ServiceName, String> {
        if compose::is_valid_name(s) {
            Ok(ServiceName(s.to_owned()))
        } else {
            Err(format!(
                "\"{s}\" is not a valid name: {}",
                compose::NAME_RULE
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Takes the inventory's write lock for the rest of the transaction.
pub async fn lock(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('opsdeck.inventory'))")
        .execute(tx)
        .await?;
    Ok(())
}

/// The editable state of a service, apart from its name and dependencies.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Fields {
    pub description: String,
    pub tier: Tier,
    pub owner_team: Option<String>,
    pub docs_url: Option<String>,
    pub repo_url: Option<String>,
    pub engine: Option<String>,
    pub compose_project: Option<String>,
    pub compose_service: Option<String>,
    pub container_name: Option<String>,
    pub image: Option<String>,
    pub ports: Vec<String>,
    pub volumes: Vec<String>,
    pub labels: BTreeMap<String, String>,
}

/// Names of the fields of [`Fields`], as the API and `edited_fields` spell them.
pub const FIELD_NAMES: &[&str] = &[
    "description",
    "tier",
    "owner_team",
    "docs_url",
    "repo_url",
    "engine",
    "compose_project",
    "compose_service",
    "container_name",
    "image",
    "ports",
    "volumes",
    "labels",
];

fn opt(s: &Option<String>) -> String {
    s.clone().unwrap_or_default()
}

impl Fields {
    /// A field's value as text, for diffs.
    pub fn show(&self, field: &str) -> String {
        match field {
            "description" => self.description.clone(),
            "tier" => self.tier.as_str().to_owned(),
            "owner_team" => opt(&self.owner_team),
            "docs_url" => opt(&self.docs_url),
            "repo_url" => opt(&self.repo_url),
            "engine" => opt(&self.engine),
            "compose_project" => opt(&self.compose_project),
            "compose_service" => opt(&self.compose_service),
            "container_name" => opt(&self.container_name),
            "image" => opt(&self.image),
            "ports" => self.ports.join(", "),
            "volumes" => self.volumes.join(", "),
            "labels" => self
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => String::new(),
        }
    }

    /// Copies one field from `other`.
    pub fn take(&mut self, other: &Fields, field: &str) {
        match field {
            "description" => self.description = other.description.clone(),
            "tier" => self.tier = other.tier,
            "owner_team" => self.owner_team = other.owner_team.clone(),
            "docs_url" => self.docs_url = other.docs_url.clone(),
            "repo_url" => self.repo_url = other.repo_url.clone(),
            "engine" => self.engine = other.engine.clone(),
            "compose_project" => self.compose_project = other.compose_project.clone(),
            "compose_service" => self.compose_service = other.compose_service.clone(),
            "container_name" => self.container_name = other.container_name.clone(),
            "image" => self.image = other.image.clone(),
            "ports" => self.ports = other.ports.clone(),
            "volumes" => self.volumes = other.volumes.clone(),
            "labels" => self.labels = other.labels.clone(),
            _ => {}
        }
    }

    /// Checks lengths, URLs and list entries (the boundary's rules).
    pub fn validate(&self) -> Result<(), String> {
        fn text(field: &str, v: &str, max: usize) -> Result<(), String> {
            if v.chars().count() > max {
                return Err(format!("{field}: at most {max} characters"));
            }
            if v.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
                return Err(format!("{field}: control characters are not allowed"));
            }
            Ok(())
        }
        fn url(field: &str, v: &Option<String>) -> Result<(), String> {
            if let Some(u) = v {
                text(field, u, 500)?;
                let lower = u.to_ascii_lowercase();
                if !(lower.starts_with("https://") || lower.starts_with("http://"))
                    || u.contains(char::is_whitespace)
                {
                    return Err(format!("{field}: must be an http:// or https:// URL"));
                }
            }
            Ok(())
        }
        text("description", &self.description, 2000)?;
        for (f, v) in [
            ("owner_team", &self.owner_team),
            ("compose_project", &self.compose_project),
            ("compose_service", &self.compose_service),
            ("container_name", &self.container_name),
            ("image", &self.image),
            ("engine", &self.engine),
        ] {
            if let Some(v) = v {
                text(f, v, 200)?;
                if v.trim().is_empty() || v.contains('\n') {
                    return Err(format!("{f}: must not be blank or span lines"));
                }
            }
        }
        url("docs_url", &self.docs_url)?;
        url("repo_url", &self.repo_url)?;
        for (f, list) in [("ports", &self.ports), ("volumes", &self.volumes)] {
            if list.len() > 100 {
                return Err(format!("{f}: at most 100 entries"));
            }
            for v in list {
                if v.trim().is_empty() || v.contains('\n') {
                    return Err(format!("{f}: entries must not be blank or span lines"));
                }
                text(f, v, 300)?;
            }
        }
        if self.labels.len() > 200 {
            return Err("labels: at most 200 entries".into());
        }
        for (k, v) in &self.labels {
            if k.trim().is_empty() || k.contains(['=', '\n']) {
                return Err(format!("labels: invalid key \"{k}\""));
            }
            text("labels", k, 200)?;
            text("labels", v, 1000)?;
        }
        if self.compose_service.is_some() && self.compose_project.is_none() {
            return Err("compose_service needs compose_project".into());
        }
        Ok(())
    }
}

/// A service as stored.
#[derive(Debug, Clone)]
pub struct ServiceRow {
    pub id: i64,
    pub name: String,
    pub fields: Fields,
    pub source: String,
    pub edited_fields: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A dependency edge as stored (by id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeRow {
    pub service_id: i64,
    pub requires_id: i64,
    pub source: String,
}

/// The whole inventory, read in one go.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub services: Vec<ServiceRow>,
    pub edges: Vec<EdgeRow>,
}

impl Snapshot {
    pub async fn load(conn: &mut PgConnection) -> sqlx::Result<Snapshot> {
        let rows = sqlx::query!(
            r#"SELECT s.id, s.name, s.description, s.tier AS "tier: DbTier", s.owner_team, s.docs_url,
                      s.repo_url, e.name AS "engine?", s.compose_project, s.compose_service,
                      s.container_name, s.image, s.ports, s.volumes, s.labels, s.source,
                      s.edited_fields, s.created_at, s.updated_at
               FROM services s LEFT JOIN engines e ON e.id = s.engine_id
               ORDER BY s.name"#
        )
        .fetch_all(&mut *conn)
        .await?;
        let services = rows
            .into_iter()
            .map(|r| ServiceRow {
                id: r.id,
                name: r.name,
                fields: Fields {
                    description: r.description,
                    tier: r.tier.into(),
                    owner_team: r.owner_team,
                    docs_url: r.docs_url,
                    repo_url: r.repo_url,
                    engine: r.engine,
                    compose_project: r.compose_project,
                    compose_service: r.compose_service,
                    container_name: r.container_name,
                    image: r.image,
                    ports: serde_json::from_value(r.ports).unwrap_or_default(),
                    volumes: serde_json::from_value(r.volumes).unwrap_or_default(),
                    labels: serde_json::from_value(r.labels).unwrap_or_default(),
                },
                source: r.source,
                edited_fields: r.edited_fields,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect();
        let edges = sqlx::query_as!(
            EdgeRow,
            "SELECT service_id, requires_id, source FROM service_dependencies ORDER BY service_id, requires_id"
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(Snapshot { services, edges })
    }

    pub fn by_id(&self) -> HashMap<i64, &ServiceRow> {
        self.services.iter().map(|s| (s.id, s)).collect()
    }

    /// The dependency graph (the stored graph is acyclic by invariant).
    pub fn graph(&self) -> Result<graph::DepGraph, graph::GraphError> {
        let names = self.by_id();
        graph::DepGraph::new(
            self.services.iter().map(|s| s.name.clone()),
            self.edges.iter().filter_map(|e| {
                Some((
                    names.get(&e.service_id)?.name.clone(),
                    names.get(&e.requires_id)?.name.clone(),
                ))
            }),
        )
    }

    /// Wire form of every service, with requires/supports names.
    pub fn to_wire(&self) -> Vec<Service> {
        let names = self.by_id();
        let mut requires: HashMap<i64, Vec<String>> = HashMap::new();
        let mut supports: HashMap<i64, Vec<String>> = HashMap::new();
        for e in &self.edges {
            if let (Some(a), Some(b)) = (names.get(&e.service_id), names.get(&e.requires_id)) {
                requires.entry(a.id).or_default().push(b.name.clone());
                supports.entry(b.id).or_default().push(a.name.clone());
            }
        }
        self.services
            .iter()
            .map(|s| {
                let mut req = requires.remove(&s.id).unwrap_or_default();
                let mut sup = supports.remove(&s.id).unwrap_or_default();
                req.sort();
                sup.sort();
                let f = &s.fields;
                Service {
                    id: s.id,
                    name: s.name.clone(),
                    description: f.description.clone(),
                    tier: f.tier,
                    owner_team: f.owner_team.clone(),
                    docs_url: f.docs_url.clone(),
                    repo_url: f.repo_url.clone(),
                    engine: f.engine.clone(),
                    compose_project: f.compose_project.clone(),
                    compose_service: f.compose_service.clone(),
                    container_name: f.container_name.clone(),
                    image: f.image.clone(),
                    ports: f.ports.clone(),
                    volumes: f.volumes.clone(),
                    labels: f.labels.clone(),
                    requires: req,
                    supports: sup,
                    source: s.source.clone(),
                    edited_fields: s.edited_fields.clone(),
                    created_at: s.created_at,
                    updated_at: s.updated_at,
                }
            })
            .collect()
    }
}

/// Index of the hub's containers for mapping services to containers.
pub struct ContainerIndex {
    /// Every cached container, copied once.
    all: Vec<ContainerInfo>,
    /// Positions in `all` by compose (project, service) and by name.
    by_compose: HashMap<(String, String), Vec<usize>>,
    by_name: HashMap<String, Vec<usize>>,
    engine_state: HashMap<String, EngineState>,
}

impl ContainerIndex {
    pub fn build(hub: &EngineHub) -> ContainerIndex {
        let mut idx = ContainerIndex {
            all: Vec::new(),
            by_compose: HashMap::new(),
            by_name: HashMap::new(),
            engine_state: HashMap::new(),
        };
        for e in hub.engines() {
            idx.engine_state.insert(e.name.clone(), e.status().state);
            e.with_containers(|cs| {
                for c in cs.values() {
                    let at = idx.all.len();
                    if let (Some(p), Some(s)) = (&c.compose_project, &c.compose_service) {
                        idx.by_compose
                            .entry((p.clone(), s.clone()))
                            .or_default()
                            .push(at);
                    }
                    idx.by_name.entry(c.name.clone()).or_default().push(at);
                    idx.all.push(c.clone());
                }
            });
        }
        idx
    }

    /// The containers a service maps to, sorted by name.
    pub fn containers_of(&self, f: &Fields) -> Vec<ContainerInfo> {
        let mut at: Vec<usize> = Vec::new();
        if let (Some(p), Some(s)) = (&f.compose_project, &f.compose_service) {
            if let Some(v) = self.by_compose.get(&(p.clone(), s.clone())) {
                at.extend(v);
            }
        }
        if let Some(n) = &f.container_name {
            at.extend(self.by_name.get(n).into_iter().flatten());
        }
        // A container matched both ways is one container.
        at.sort_unstable();
        at.dedup();
        let mut out: Vec<ContainerInfo> = at
            .into_iter()
            .map(|i| &self.all[i])
            .filter(|c| f.engine.as_ref().is_none_or(|e| &c.engine == e))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Summarised state of a service's containers.
    pub fn run_state(&self, f: &Fields, containers: &[ContainerInfo]) -> RunState {
        if f.compose_service.is_none() && f.container_name.is_none() {
            return RunState::Unmapped;
        }
        let engines_ok = match &f.engine {
            Some(e) => self.engine_state.get(e) == Some(&EngineState::Connected),
            None => {
                !self.engine_state.is_empty()
                    && self
                        .engine_state
                        .values()
                        .all(|s| *s == EngineState::Connected)
            }
        };
        let stale = containers
            .iter()
            .any(|c| self.engine_state.get(&c.engine) != Some(&EngineState::Connected));
        if stale || (containers.is_empty() && !engines_ok) {
            return RunState::Unknown;
        }
        summarise(containers)
    }
}

/// The state of a set of containers, from the engine's states and health.
pub fn summarise(containers: &[ContainerInfo]) -> RunState {
    if containers.is_empty() {
        return RunState::Missing;
    }
    let count = |s: &str| containers.iter().filter(|c| c.state == s).count();
    let running = count("running");
    if containers.iter().any(|c| c.state == "restarting") {
        RunState::Restarting
    } else if running == containers.len() {
        if containers
            .iter()
            .any(|c| c.health.as_deref() == Some("unhealthy"))
        {
            RunState::Degraded
        } else {
            RunState::Running
        }
    } else if count("paused") == containers.len() {
        RunState::Paused
    } else if running > 0 || count("paused") > 0 {
        RunState::Degraded
    } else {
        RunState::Stopped
    }
}

/// Every service with its containers and state.
pub fn overview(snapshot: &Snapshot, hub: &EngineHub) -> Vec<ServiceOverview> {
    let idx = ContainerIndex::build(hub);
    snapshot
        .to_wire()
        .into_iter()
        .zip(&snapshot.services)
        .map(|(service, row)| {
            let containers = idx.containers_of(&row.fields);
            let run_state = idx.run_state(&row.fields, &containers);
            ServiceOverview {
                service,
                run_state,
                containers,
            }
        })
        .collect()
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_services, create_service))
        .routes(routes!(get_service, update_service, delete_service))
        .routes(routes!(graph_view))
        .routes(routes!(graph_query))
        .routes(routes!(events))
        .merge(plan::router())
}

/// Services with their containers and state (the services page).
#[utoipa::path(get, path = "/api/v1/services", tag = "inventory",
    responses((status = 200, body = Vec<ServiceOverview>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_services(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<ServiceOverview>>> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    Ok(Json(overview(&snapshot, &state.engines)))
}

/// One service with its containers and state.
#[utoipa::path(get, path = "/api/v1/services/{id}", tag = "inventory",
    params(("id" = i64, Path)),
    responses((status = 200, body = ServiceOverview), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_service(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ServiceOverview>> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    overview(&snapshot, &state.engines)
        .into_iter()
        .find(|o| o.service.id == id)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))
}

/// Applies an input over `fields`, returning the names of the fields it set.
fn apply_input(fields: &mut Fields, input: &ServiceInput) -> Vec<&'static str> {
    fn clean(s: &str) -> Option<String> {
        let t = s.trim();
        (!t.is_empty()).then(|| t.to_owned())
    }
    let mut set = Vec::new();
    macro_rules! text_opt {
        ($name:ident) => {
            if let Some(v) = &input.$name {
                fields.$name = clean(v);
                set.push(stringify!($name));
            }
        };
    }
    if let Some(d) = &input.description {
        fields.description = d.trim().to_owned();
        set.push("description");
    }
    if let Some(t) = input.tier {
        fields.tier = t;
        set.push("tier");
    }
    text_opt!(owner_team);
    text_opt!(docs_url);
    text_opt!(repo_url);
    text_opt!(engine);
    text_opt!(compose_project);
    text_opt!(compose_service);
    text_opt!(container_name);
    text_opt!(image);
    if let Some(p) = &input.ports {
        fields.ports = p.iter().map(|s| s.trim().to_owned()).collect();
        set.push("ports");
    }
    if let Some(v) = &input.volumes {
        fields.volumes = v.iter().map(|s| s.trim().to_owned()).collect();
        set.push("volumes");
    }
    if let Some(l) = &input.labels {
        fields.labels = l.clone();
        set.push("labels");
    }
    set
}

/// Resolves an engine name to its id (or `None` for any engine).
pub async fn engine_id(conn: &mut PgConnection, name: Option<&str>) -> ApiResult<Option<i64>> {
    let Some(name) = name else { return Ok(None) };
    sqlx::query_scalar!("SELECT id FROM engines WHERE name = $1", name)
        .fetch_optional(conn)
        .await?
        .map(Some)
        .ok_or_else(|| ApiError::BadRequest(format!("engine: no engine named \"{name}\"")))
}

/// Inserts or updates a service's row; returns its id.
pub async fn write_service(
    conn: &mut PgConnection,
    id: Option<i64>,
    name: &str,
    f: &Fields,
    source: &str,
    edited: &[String],
) -> ApiResult<i64> {
    let engine = engine_id(conn, f.engine.as_deref()).await?;
    let tier: DbTier = f.tier.into();
    let ports = json!(f.ports);
    let volumes = json!(f.volumes);
    let labels = json!(f.labels);
    let id = match id {
        None => sqlx::query_scalar!(
            r#"INSERT INTO services (name, description, tier, owner_team, docs_url, repo_url, engine_id,
                   compose_project, compose_service, container_name, image, ports, volumes, labels,
                   source, edited_fields)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
               RETURNING id"#,
            name,
            f.description,
            tier as DbTier,
            f.owner_team,
            f.docs_url,
            f.repo_url,
            engine,
            f.compose_project,
            f.compose_service,
            f.container_name,
            f.image,
            ports,
            volumes,
            labels,
            source,
            edited,
        )
        .fetch_one(&mut *conn)
        .await?,
        Some(id) => sqlx::query_scalar!(
            r#"UPDATE services SET name = $2, description = $3, tier = $4, owner_team = $5, docs_url = $6,
                   repo_url = $7, engine_id = $8, compose_project = $9, compose_service = $10,
                   container_name = $11, image = $12, ports = $13, volumes = $14, labels = $15,
                   source = $16, edited_fields = $17, updated_at = now()
               WHERE id = $1 RETURNING id"#,
            id,
            name,
            f.description,
            tier as DbTier,
            f.owner_team,
            f.docs_url,
            f.repo_url,
            engine,
            f.compose_project,
            f.compose_service,
            f.container_name,
            f.image,
            ports,
            volumes,
            labels,
            source,
            edited,
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?,
    };
    Ok(id)
}

/// Checks that `edges` (by name) over `names` form an acyclic graph.
pub fn check_graph(
    names: impl IntoIterator<Item = String>,
    edges: impl IntoIterator<Item = (String, String)>,
) -> ApiResult<graph::DepGraph> {
    graph::DepGraph::new(names, edges).map_err(|e| ApiError::BadRequest(e.to_string()))
}

/// Sets a service's dependencies to exactly `requires` (names of services
/// in `snapshot`, read before the write: a service never requires itself):
/// edges no longer wanted go whatever their source, existing ones keep
/// theirs, new ones are manual.
async fn set_requires(
    tx: &mut PgConnection,
    snapshot: &Snapshot,
    id: i64,
    requires: &BTreeSet<String>,
) -> ApiResult<()> {
    let ids: HashMap<&str, i64> = snapshot
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.id))
        .collect();
    let mut wanted = Vec::new();
    for r in requires {
        let rid = *ids
            .get(r.as_str())
            .ok_or_else(|| ApiError::BadRequest(format!("requires: unknown service \"{r}\"")))?;
        wanted.push(rid);
    }
    sqlx::query!(
        "DELETE FROM service_dependencies WHERE service_id = $1 AND NOT (requires_id = ANY($2))",
        id,
        &wanted
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"INSERT INTO service_dependencies (service_id, requires_id, source)
           SELECT $1, unnest($2::bigint[]), 'manual' ON CONFLICT DO NOTHING"#,
        id,
        &wanted
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Validates a manual create/update against the current snapshot: no
/// self-dependency, dependencies exist, the graph stays acyclic.
fn check_requires(
    snapshot: &Snapshot,
    name: &str,
    old_name: Option<&str>,
    requires: &BTreeSet<String>,
) -> ApiResult<()> {
    if requires.contains(name) {
        return Err(ApiError::BadRequest(format!(
            "requires: a service cannot require itself (\"{name}\")"
        )));
    }
    let by_id = snapshot.by_id();
    let rename = |n: &str| -> String {
        if Some(n) == old_name {
            name.to_owned()
        } else {
            n.to_owned()
        }
    };
    let mut names: Vec<String> = snapshot.services.iter().map(|s| rename(&s.name)).collect();
    if old_name.is_none() {
        names.push(name.to_owned());
    }
    for r in requires {
        if !names.contains(r) {
            return Err(ApiError::BadRequest(format!(
                "requires: unknown service \"{r}\""
            )));
        }
    }
    let mut edges: Vec<(String, String)> = snapshot
        .edges
        .iter()
        .filter_map(|e| {
            let a = rename(&by_id.get(&e.service_id)?.name);
            let b = rename(&by_id.get(&e.requires_id)?.name);
            (a != name).then_some((a, b))
        })
        .collect();
    edges.extend(requires.iter().map(|r| (name.to_owned(), r.clone())));
    check_graph(names, edges).map(|_| ())
}

/// Create a service by hand.
#[utoipa::path(post, path = "/api/v1/services", tag = "inventory", request_body = ServiceInput,
    responses((status = 201, body = Service), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create_service(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(input): Json<ServiceInput>,
) -> ApiResult<(StatusCode, Json<Service>)> {
    let name = ServiceName::parse(input.name.as_deref().unwrap_or_default().trim())
        .map_err(|e| ApiError::BadRequest(format!("name: {e}")))?;
    let mut fields = Fields::default();
    apply_input(&mut fields, &input);
    fields.validate().map_err(ApiError::BadRequest)?;
    let requires: BTreeSet<String> = input
        .requires
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let snapshot = Snapshot::load(&mut tx).await?;
    if snapshot.services.iter().any(|s| s.name == name.as_str()) {
        return Err(ApiError::Conflict(format!(
            "a service named \"{}\" exists",
            name.as_str()
        )));
    }
    check_requires(&snapshot, name.as_str(), None, &requires)?;
    let id = write_service(&mut tx, None, name.as_str(), &fields, "manual", &[]).await?;
    set_requires(&mut tx, &snapshot, id, &requires).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "service.create",
        Some(format!("service:{}", name.as_str())),
        json!({"id": id, "input": input}),
    )
    .await?;
    let service = Snapshot::load(&mut tx)
        .await?
        .to_wire()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?;
    ctx.commit(tx).await?;
    crate::fanout::inventory_changed(&state).await;
    Ok((StatusCode::CREATED, Json(service)))
}

/// Edit a service; the fields given are marked as edited by hand.
#[utoipa::path(patch, path = "/api/v1/services/{id}", tag = "inventory", request_body = ServiceInput,
    params(("id" = i64, Path)),
    responses((status = 200, body = Service), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update_service(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(input): Json<ServiceInput>,
) -> ApiResult<Json<Service>> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let snapshot = Snapshot::load(&mut tx).await?;
    let row = snapshot
        .services
        .iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?
        .clone();
    let name = match &input.name {
        Some(n) => ServiceName::parse(n.trim())
            .map_err(|e| ApiError::BadRequest(format!("name: {e}")))?
            .as_str()
            .to_owned(),
        None => row.name.clone(),
    };
    if name != row.name && snapshot.services.iter().any(|s| s.name == name) {
        return Err(ApiError::Conflict(format!(
            "a service named \"{name}\" exists"
        )));
    }
    let mut fields = row.fields.clone();
    let set = apply_input(&mut fields, &input);
    fields.validate().map_err(ApiError::BadRequest)?;
    let mut edited: BTreeSet<String> = row.edited_fields.iter().cloned().collect();
    for f in &set {
        if row.fields.show(f) != fields.show(f) {
            edited.insert((*f).to_owned());
        }
    }
    let current_requires: BTreeSet<String> = snapshot
        .to_wire()
        .into_iter()
        .find(|s| s.id == id)
        .map(|s| s.requires.into_iter().collect())
        .unwrap_or_default();
    let requires = match &input.requires {
        Some(r) => r.iter().cloned().collect(),
        None => current_requires.clone(),
    };
    if requires != current_requires {
        edited.insert("requires".into());
    }
    check_requires(&snapshot, &name, Some(&row.name), &requires)?;
    let edited: Vec<String> = edited.into_iter().collect();
    write_service(&mut tx, Some(id), &name, &fields, &row.source, &edited).await?;
    if input.requires.is_some() {
        set_requires(&mut tx, &snapshot, id, &requires).await?;
    }
    ctx.audit(
        &mut tx,
        &auth.principal,
        "service.update",
        Some(format!("service:{name}")),
        json!({"id": id, "input": input}),
    )
    .await?;
    let service = Snapshot::load(&mut tx)
        .await?
        .to_wire()
        .into_iter()
        .find(|s| s.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?;
    ctx.commit(tx).await?;
    crate::fanout::inventory_changed(&state).await;
    Ok(Json(service))
}

/// Delete a service and its dependency edges.
#[utoipa::path(delete, path = "/api/v1/services/{id}", tag = "inventory",
    params(("id" = i64, Path)),
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_service(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let name = sqlx::query_scalar!("DELETE FROM services WHERE id = $1 RETURNING name", id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("service {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "service.delete",
        Some(format!("service:{name}")),
        json!({"id": id}),
    )
    .await?;
    ctx.commit(tx).await?;
    crate::fanout::inventory_changed(&state).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The dependency graph with a layered layout, nodes coloured by state.
#[utoipa::path(get, path = "/api/v1/graph", tag = "inventory",
    responses((status = 200, body = GraphView)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn graph_view(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<GraphView>> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    let g = snapshot
        .graph()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored graph is invalid: {e}")))?;
    let layout = g.layout();
    let overview = overview(&snapshot, &state.engines);
    let nodes = overview
        .iter()
        .filter_map(|o| {
            let pos = layout.nodes.get(&o.service.name)?;
            Some(GraphNode {
                id: o.service.id,
                name: o.service.name.clone(),
                tier: o.service.tier,
                run_state: o.run_state,
                layer: pos.layer,
                x: pos.x,
                y: pos.y,
            })
        })
        .collect();
    let by_id = snapshot.by_id();
    let edges = snapshot
        .edges
        .iter()
        .filter_map(|e| {
            Some(GraphEdge {
                from: by_id.get(&e.service_id)?.name.clone(),
                to: by_id.get(&e.requires_id)?.name.clone(),
                source: e.source.clone(),
            })
        })
        .collect();
    Ok(Json(GraphView {
        nodes,
        edges,
        width: layout.width,
        height: layout.height,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct GraphQueryParams {
    /// impact, root_cause, start_order or stop_order.
    pub kind: GraphQueryKind,
    /// Comma-separated service names; empty for start/stop order means all.
    #[serde(default)]
    pub services: String,
}

/// Impact, root cause, start order and stop order queries.
#[utoipa::path(get, path = "/api/v1/graph/query", tag = "inventory", params(GraphQueryParams),
    responses((status = 200, body = GraphQueryResult), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn graph_query(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<GraphQueryParams>,
) -> ApiResult<Json<GraphQueryResult>> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    let g = snapshot
        .graph()
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("stored graph is invalid: {e}")))?;
    let mut names: Vec<String> = q
        .services
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        if matches!(
            q.kind,
            GraphQueryKind::StartOrder | GraphQueryKind::StopOrder
        ) {
            names = snapshot.services.iter().map(|s| s.name.clone()).collect();
        } else {
            return Err(ApiError::BadRequest(
                "services: name at least one service".into(),
            ));
        }
    }
    let bad = |e: graph::UnknownService| ApiError::BadRequest(format!("services: {e}"));
    let services = match q.kind {
        GraphQueryKind::Impact => g.impact(&names).map_err(bad)?,
        GraphQueryKind::StartOrder => g.start_order(&names).map_err(bad)?,
        GraphQueryKind::StopOrder => g.stop_order(&names).map_err(bad)?,
        GraphQueryKind::RootCause => {
            let states: HashMap<String, RunState> = overview(&snapshot, &state.engines)
                .into_iter()
                .map(|o| (o.service.name, o.run_state))
                .collect();
            g.root_cause(&names, |n| states.get(n).is_some_and(|s| is_failing(*s)))
                .map_err(bad)?
        }
    };
    Ok(Json(GraphQueryResult {
        kind: q.kind,
        services,
    }))
}

/// A state that makes dependents impacted.
pub fn is_failing(s: RunState) -> bool {
    matches!(
        s,
        RunState::Stopped | RunState::Missing | RunState::Restarting | RunState::Paused
    )
}

/// Live updates: an SSE `changed` event (data: a counter) whenever services
/// or container states change, at most every 250 ms. Clients refetch.
#[utoipa::path(get, path = "/api/v1/inventory/events", tag = "inventory",
    responses((status = 200, description = "text/event-stream of `changed` events")),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn events(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = state.engines.subscribe();
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.changed().await.ok()?;
        tokio::time::sleep(Duration::from_millis(250)).await;
        let n = *rx.borrow_and_update();
        Some((
            Ok(Event::default().event("changed").data(n.to_string())),
            rx,
        ))
    });
    let stream = futures::StreamExt::take_until(stream, state.engines.closed());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// A YAML or text download.
pub fn text_download(
    body: String,
    content_type: &'static str,
    filename: &str,
) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        body,
    )
}
