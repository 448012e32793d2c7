//! The inventory's domain model: tiers, validated names, a service's
//! editable [`Fields`], the stored rows, the whole-inventory [`Snapshot`]
//! and the rules a manual edit must keep (dependencies exist, no cycle).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use opsdeck_wire::{RunState, Service, ServiceInput, Tier};

use super::{graph, yamlpos, InventoryError};

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
        if yamlpos::is_valid_name(s) {
            Ok(ServiceName(s.to_owned()))
        } else {
            Err(format!(
                "\"{s}\" is not a valid name: {}",
                yamlpos::NAME_RULE
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
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
        self.wire_where(|_| true)
    }

    /// Wire form of the services `keep` accepts, in the snapshot's order.
    pub fn wire_where(&self, keep: impl Fn(&ServiceRow) -> bool) -> Vec<Service> {
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
            .filter(|s| keep(s))
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

/// Applies an input over `fields`, returning the names of the fields it set.
pub(crate) fn apply_input(fields: &mut Fields, input: &ServiceInput) -> Vec<&'static str> {
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

/// Checks that `edges` (by name) over `names` form an acyclic graph.
pub fn check_graph(
    names: impl IntoIterator<Item = String>,
    edges: impl IntoIterator<Item = (String, String)>,
) -> Result<graph::DepGraph, InventoryError> {
    graph::DepGraph::new(names, edges).map_err(|e| InventoryError::Invalid(e.to_string()))
}

/// Validates a manual create/update against the current snapshot: no
/// self-dependency, dependencies exist, the graph stays acyclic.
pub(crate) fn check_requires(
    snapshot: &Snapshot,
    name: &str,
    old_name: Option<&str>,
    requires: &BTreeSet<String>,
) -> Result<(), InventoryError> {
    if requires.contains(name) {
        return Err(InventoryError::Invalid(format!(
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
            return Err(InventoryError::Invalid(format!(
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

/// A state that makes dependents impacted.
pub fn is_failing(s: RunState) -> bool {
    matches!(
        s,
        RunState::Stopped | RunState::Missing | RunState::Restarting | RunState::Paused
    )
}
