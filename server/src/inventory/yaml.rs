//! The whole inventory as one YAML document ("config as code").
//!
//! # Format
//!
//! ```yaml
//! version: 1
//! engines:
//!   - name: local
//!     endpoint: unix:///var/run/docker.sock
//! services:
//!   - name: gitea
//!     description: Git hosting for the team
//!     tier: application
//!     owner_team: platform
//!     engine: local
//!     compose_project: mosaic
//!     compose_service: gitea
//!     image: gitea/gitea:1.21
//!     ports:
//!       - "3000:3000"
//!     labels:
//!       com.mosaic.role: git
//!     requires:
//!       - mariadb
//!       - redis
//! ```
//!
//! * `version: 1` comes first and is required; other versions are refused.
//! * `engines` and `services` are lists of mappings, each with a `name`;
//!   either list may be left out when empty.
//! * Engine fields: `name`, `endpoint` (required), `tls_ca`, `tls_cert`,
//!   `tls_key`.
//! * Service fields: `name` and `tier` (`critical`, `application` or
//!   `support`) are required; `description`, `owner_team`, `docs_url`,
//!   `repo_url`, `engine`, `compose_project`, `compose_service`,
//!   `container_name`, `image`, `ports`, `volumes`, `labels` and `requires`
//!   are optional. All values are strings (lists of strings for `ports`,
//!   `volumes`, `requires`; a string-to-string mapping for `labels`).
//!
//! [`parse`] refuses unknown keys, duplicate keys, duplicate engine or service
//! names, names not matching `^[a-z0-9][a-z0-9._-]{0,62}$`, a `requires` entry
//! that names no service of the document (or the service itself, or repeats),
//! and an `engine` that names no engine of the document. Dependency cycles are
//! not checked here (the graph module does that). Errors carry the field path
//! and, whenever it can be found, the line.
//!
//! # Rendering and the round-trip guarantee
//!
//! [`render`] is deterministic: the `version: 1` line, then engines, then
//! services, each list sorted by name, fields in a fixed order, `requires`
//! sorted; `None` and empty fields are left out, except `tier`, which is
//! always written (`description` is left out when empty). Strings are written
//! plain only when that is unambiguous to any YAML 1.1 or 1.2 reader (so
//! `yes`, `null`, `1.0`, `0x1F`, `a: b`, `# x` and the like are quoted);
//! multi-line strings become literal blocks (`|`, `|-`, `|+`) when that
//! preserves them exactly, and double-quoted escaped strings otherwise.
//!
//! For any document whose names are valid and that names only existing
//! engines and services — that is, any document [`parse`] accepts the
//! rendering of — `parse(&render(&doc))` equals `doc` once `doc` is in
//! canonical order (engines and services sorted by name, `requires` sorted;
//! [`parse`] always returns that order), and for any text that [`render`]
//! produced, `render(&parse(text)?) == text`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::Deserialize;

use super::yamlpos::{
    check_document, convert_error, find_line, is_valid_name, write_located, Step, YamlProblem,
    NAME_RULE,
};

/// The inventory: container engines and services.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InventoryDoc {
    /// Container engines (Docker endpoints), sorted by name when rendered.
    pub engines: Vec<EngineDoc>,
    /// Services, sorted by name when rendered.
    pub services: Vec<ServiceDoc>,
}

/// A container engine the inventory talks to.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineDoc {
    /// Unique name, matching the name rule.
    pub name: String,
    /// Where to reach it (`unix:///var/run/docker.sock`, `tcp://host:2376`).
    pub endpoint: String,
    /// CA certificate for TLS.
    pub tls_ca: Option<String>,
    /// Client certificate for TLS.
    pub tls_cert: Option<String>,
    /// Client key for TLS.
    pub tls_key: Option<String>,
}

/// A service of the inventory.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceDoc {
    /// Unique name, matching the name rule.
    pub name: String,
    /// Free text; may span lines. Empty when not set.
    pub description: String,
    /// `critical`, `application` or `support`.
    pub tier: String,
    /// The team that owns it.
    pub owner_team: Option<String>,
    /// Where its documentation lives.
    pub docs_url: Option<String>,
    /// Where its source lives.
    pub repo_url: Option<String>,
    /// The engine it runs on: the name of an engine of the document.
    pub engine: Option<String>,
    /// The compose project it comes from.
    pub compose_project: Option<String>,
    /// Its service name in that compose project.
    pub compose_service: Option<String>,
    /// Its container name.
    pub container_name: Option<String>,
    /// Its image.
    pub image: Option<String>,
    /// Port strings, in order (see `compose::ComposeService::ports`).
    pub ports: Vec<String>,
    /// Volume strings, in order.
    pub volumes: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Names of the services it requires, sorted.
    pub requires: Vec<String>,
}

/// Why an inventory document was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct YamlError {
    /// What is wrong, without the line or field prefix.
    pub message: String,
    /// The 1-based line of the problem, when it could be found.
    pub line: Option<usize>,
    /// The path of the offending field (`services[2].requires`), when one applies.
    pub field: Option<String>,
}

impl fmt::Display for YamlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_located(f, self.line, self.field.as_deref(), &self.message)
    }
}

impl std::error::Error for YamlError {}

impl From<YamlProblem> for YamlError {
    fn from(p: YamlProblem) -> Self {
        YamlError {
            message: p.message,
            line: p.line,
            field: p.field,
        }
    }
}

fn error(message: String, line: Option<usize>, field: String) -> YamlError {
    YamlError {
        message,
        line,
        field: Some(field),
    }
}

// ---------------------------------------------------------------------------
// Parsing.
// ---------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping starting with `version: 1`"
)]
struct RawDoc {
    #[serde(default)]
    version: Option<u64>,
    #[serde(default)]
    engines: Option<Vec<RawEngine>>,
    #[serde(default)]
    services: Option<Vec<RawService>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "an engine (a mapping with `name` and `endpoint`)"
)]
struct RawEngine {
    name: String,
    endpoint: String,
    #[serde(default)]
    tls_ca: Option<String>,
    #[serde(default)]
    tls_cert: Option<String>,
    #[serde(default)]
    tls_key: Option<String>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a service (a mapping with `name` and `tier`)"
)]
struct RawService {
    name: String,
    #[serde(default)]
    description: String,
    tier: Tier,
    #[serde(default)]
    owner_team: Option<String>,
    #[serde(default)]
    docs_url: Option<String>,
    #[serde(default)]
    repo_url: Option<String>,
    #[serde(default)]
    engine: Option<String>,
    #[serde(default)]
    compose_project: Option<String>,
    #[serde(default)]
    compose_service: Option<String>,
    #[serde(default)]
    container_name: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    ports: Vec<String>,
    #[serde(default)]
    volumes: Vec<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    requires: Vec<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Tier {
    Critical,
    Application,
    Support,
}

impl Tier {
    fn as_str(self) -> &'static str {
        match self {
            Tier::Critical => "critical",
            Tier::Application => "application",
            Tier::Support => "support",
        }
    }
}

/// Parses and validates an inventory document.
///
/// Engines and services come back sorted by name and `requires` sorted, so
/// the result is in the canonical order [`render`] writes.
pub fn parse(text: &str) -> Result<InventoryDoc, YamlError> {
    check_document(text)?;
    let raw: RawDoc =
        serde_norway::from_str(text).map_err(|e| YamlError::from(convert_error(&e)))?;

    match raw.version {
        Some(1) => {}
        Some(other) => {
            return Err(error(
                format!("unsupported version {other}; this Opsdeck reads version 1"),
                find_line(text, &[Step::Key("version")]),
                "version".to_owned(),
            ))
        }
        None => {
            return Err(error(
                "missing `version: 1`".to_owned(),
                None,
                "version".to_owned(),
            ))
        }
    }

    let raw_engines = raw.engines.unwrap_or_default();
    let raw_services = raw.services.unwrap_or_default();

    let engine_names = check_names(
        text,
        "engines",
        "engine",
        raw_engines.iter().map(|e| e.name.as_str()),
    )?;
    let service_names = check_names(
        text,
        "services",
        "service",
        raw_services.iter().map(|s| s.name.as_str()),
    )?;

    for (i, s) in raw_services.iter().enumerate() {
        let item = [Step::Key("services"), Step::Entry("name", &s.name)];
        if let Some(engine) = &s.engine {
            if !engine_names.contains(engine.as_str()) {
                let steps = [item[0], item[1], Step::Entry("engine", engine)];
                return Err(error(
                    format!("service {:?} names unknown engine {engine:?}", s.name),
                    find_line(text, &steps),
                    format!("services[{i}].engine"),
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for dep in &s.requires {
            let message = if *dep == s.name {
                format!("service {:?} requires itself", s.name)
            } else if !service_names.contains(dep.as_str()) {
                format!("service {:?} requires unknown service {dep:?}", s.name)
            } else if !seen.insert(dep.as_str()) {
                format!("service {:?} lists {dep:?} twice in requires", s.name)
            } else {
                continue;
            };
            let steps = [item[0], item[1], Step::Key("requires"), Step::Text(dep)];
            return Err(error(
                message,
                find_line(text, &steps),
                format!("services[{i}].requires"),
            ));
        }
    }

    let mut engines: Vec<EngineDoc> = raw_engines
        .into_iter()
        .map(|e| EngineDoc {
            name: e.name,
            endpoint: e.endpoint,
            tls_ca: e.tls_ca,
            tls_cert: e.tls_cert,
            tls_key: e.tls_key,
        })
        .collect();
    engines.sort_by(|a, b| a.name.cmp(&b.name));

    let mut services: Vec<ServiceDoc> = raw_services
        .into_iter()
        .map(|s| {
            let mut requires = s.requires;
            requires.sort();
            ServiceDoc {
                name: s.name,
                description: s.description,
                tier: s.tier.as_str().to_owned(),
                owner_team: s.owner_team,
                docs_url: s.docs_url,
                repo_url: s.repo_url,
                engine: s.engine,
                compose_project: s.compose_project,
                compose_service: s.compose_service,
                container_name: s.container_name,
                image: s.image,
                ports: s.ports,
                volumes: s.volumes,
                labels: s.labels,
                requires,
            }
        })
        .collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));

    Ok(InventoryDoc { engines, services })
}

/// Checks the names of one list (`engines` or `services`): each valid, none
/// repeated. Returns the set of names.
fn check_names<'a>(
    text: &str,
    section: &str,
    kind: &str,
    names: impl Iterator<Item = &'a str>,
) -> Result<BTreeSet<&'a str>, YamlError> {
    let mut seen = BTreeSet::new();
    for (i, name) in names.enumerate() {
        let field = format!("{section}[{i}].name");
        if !is_valid_name(name) {
            let steps = [Step::Key(section), Step::Entry("name", name)];
            return Err(error(
                format!("invalid {kind} name {name:?}: {NAME_RULE}"),
                find_line(text, &steps),
                field,
            ));
        }
        if !seen.insert(name) {
            let steps = [Step::Key(section), Step::NthEntry("name", name, 2)];
            return Err(error(
                format!("duplicate {kind} name {name:?}"),
                find_line(text, &steps),
                field,
            ));
        }
    }
    Ok(seen)
}

mod render;

pub use render::render;

#[cfg(test)]
mod tests;
