//! Parsing docker-compose files into Opsdeck's inventory model.
//!
//! [`parse`] reads the text of a `docker-compose.yml` / `compose.yaml` and
//! keeps only what the inventory needs about each service: image, container
//! name, ports, volumes, labels and `depends_on`. Everything else (notably
//! `environment`, which routinely holds secrets) is accepted and dropped.
//!
//! [`load`] loads a whole project as `docker compose` does (several files
//! merged, the override file, `include`, `extends`, profiles, interpolation
//! from env files, the default project name) and runs the merged model
//! through [`parse`]; see `load`, `merge`, `interpolate`, `dotenv`,
//! `include` and `extends`, and docs/import/compose.md. [`sources_from_disk`]
//! collects a project's files for the CLI.
//!
//! # What is checked
//!
//! * The text must be one YAML document whose top level is a mapping with a
//!   non-empty `services` mapping. Other top-level keys (`version`,
//!   `networks`, `volumes`, `secrets`, `configs`, `x-*`, …) are ignored.
//! * Duplicate mapping keys anywhere in the document (e.g. a service defined
//!   twice) are refused, naming the key and the line of the second occurrence.
//! * Service names and the optional project `name:` must match
//!   `^[a-z0-9][a-z0-9._-]{0,62}$` (stricter than compose, which allows
//!   uppercase letters).
//! * `depends_on` (short list or long mapping syntax) must name services of
//!   the same file, and a service may not depend on itself. Cycles are *not*
//!   checked here; the dependency-graph module does that.
//! * Long-syntax ports and volumes refuse keys the compose specification does
//!   not define, so a typo such as `publised:` is reported instead of being
//!   silently dropped.
//!
//! # Anchors, aliases and merge keys
//!
//! Anchors and aliases (`x-common: &common`, `*common`) are resolved by the
//! YAML parser. Merge keys (`<<: *common`, or `<<: [*a, *b]`) are applied by
//! this module inside a service definition (recursively, so a merged mapping
//! may itself merge) and inside a `labels` mapping, with the usual YAML
//! semantics: keys written in the mapping win over merged ones, and earlier
//! mappings in a merge list win over later ones. Merging is per key, not deep:
//! a service that writes its own `labels:` replaces the merged `labels:`
//! entirely (as compose does). A `<<` key anywhere else that this module
//! reads (directly under `services`, inside `depends_on`) is refused with an
//! explicit message; under ignored keys (`environment`, `x-*`, …) it is
//! irrelevant.
//!
//! # Errors
//!
//! [`ComposeError`] carries a message, the 1-based line when it can be found
//! and the field path (e.g. `services.gitea.ports[1]`) when one applies. Syntax
//! and type errors take both from the YAML parser; semantic errors (unknown
//! dependency, bad name) always carry the field path and find the line with a
//! best-effort scan of the text.
//!
//! The YAML plumbing shared with [`super::yaml`] (error conversion, duplicate
//! key detection, line lookup, the name rule) lives in [`super::yamlpos`];
//! the raw serde shapes are in `raw`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::yamlpos::*;

/// A parsed compose file, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposeFile {
    /// The project name (`name:` at the top level), when the file sets one.
    pub name: Option<String>,
    /// The services, by name.
    pub services: BTreeMap<String, ComposeService>,
}

/// The parts of one compose service that the inventory keeps.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ComposeService {
    /// `image:` as written.
    pub image: Option<String>,
    /// `container_name:` as written.
    pub container_name: Option<String>,
    /// Normalised port strings: short syntax kept as written ("8080:80",
    /// "127.0.0.1:5432:5432", "3000", "53:53/udp"; a bare number becomes its
    /// decimal string); long syntax `{target, published, host_ip, protocol}`
    /// rendered in the same short form "[host_ip:]published:target[/protocol]",
    /// or "target" alone when unpublished, protocol only when not tcp. An IPv6
    /// `host_ip` is bracketed ("[::1]:8080:80"); a `host_ip` without
    /// `published` renders as "host_ip::target" (a random host port on that
    /// address, as in compose's own short syntax).
    pub ports: Vec<String>,
    /// Normalised volume strings: short syntax as written ("gitea_data:/data",
    /// "./conf:/etc/x:ro"); long syntax `{type, source, target, read_only}`
    /// rendered as "source:target[:ro]", or "target" alone for an anonymous
    /// volume or a tmpfs.
    pub volumes: Vec<String>,
    /// Labels, from the map form or the list form ("key=value", or "key" alone
    /// for an empty value). Map values that YAML reads as numbers or booleans
    /// are kept as their text (`true`, `8080`); a null value becomes "".
    pub labels: BTreeMap<String, String>,
    /// `depends_on` in short list syntax or long map syntax: the names only,
    /// sorted and deduplicated.
    pub depends_on: Vec<String>,
    /// `healthcheck.test` as an argv: `["CMD", "curl", "-f", "http://…"]`,
    /// `["CMD-SHELL", "wget -q -O- http://…"]` (a plain string becomes
    /// `CMD-SHELL`); `None` when absent, `disable: true` or `["NONE"]`.
    pub healthcheck: Option<Vec<String>>,
    /// `profiles:`; empty: the service is always active.
    pub profiles: Vec<String>,
    /// The non-secret database settings of `environment`, for proposed
    /// checks: only `POSTGRES_USER`, `POSTGRES_DB`, `MYSQL_USER`,
    /// `MYSQL_DATABASE`, `MARIADB_USER`, `MARIADB_DATABASE` are kept;
    /// nothing else of the environment (passwords least of all).
    pub db_env: BTreeMap<String, String>,
}

/// Everything a compose project is loaded from, as `docker compose` would
/// see it on disk: the files by path relative to the project directory.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    /// `(path, text)` of every file: compose files, included or extended
    /// files, env files.
    pub files: Vec<(String, String)>,
    /// The compose files to load, in order (`-f`); empty: compose's
    /// default names plus the override file.
    pub compose_files: Vec<String>,
    /// Env files, in order (`--env-file`); empty: `.env` when present.
    pub env_files: Vec<String>,
    /// Active profiles (`--profile`, `COMPOSE_PROFILES`).
    pub profiles: Vec<String>,
    /// The project directory's name (the default project name).
    pub directory: Option<String>,
    /// Variables that win over the env files (the CLI's own environment;
    /// the API passes none: the server never reads its own environment).
    pub environment: BTreeMap<String, String>,
}

/// A loaded project: the merged model of its active services.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded {
    /// The active services (and `name:` from the files).
    pub file: ComposeFile,
    /// The project name compose would use, and where it came from
    /// (`name`, `COMPOSE_PROJECT_NAME`, `directory`); `None` when nothing
    /// names it.
    pub project: Option<(String, &'static str)>,
    /// The compose files read, in load order.
    pub files: Vec<String>,
    /// Services outside the active profiles, with their profiles.
    pub inactive: Vec<(String, Vec<String>)>,
}

/// Why a compose file was refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ComposeError {
    /// What is wrong, without the line or field prefix.
    pub message: String,
    /// The 1-based line of the problem, when it could be found.
    pub line: Option<usize>,
    /// The path of the offending field (`services.gitea.ports[1]`), when one applies.
    pub field: Option<String>,
    /// The file (relative to the project directory) the line is in, when
    /// the error comes from loading a project ([`load`]).
    pub file: Option<String>,
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(file) = &self.file {
            write!(f, "{file}: ")?;
        }
        write_located(f, self.line, self.field.as_deref(), &self.message)
    }
}

impl std::error::Error for ComposeError {}

impl ComposeError {
    fn new(message: String, line: Option<usize>, field: Option<String>) -> Self {
        ComposeError {
            message,
            line,
            field,
            file: None,
        }
    }
}

impl From<YamlProblem> for ComposeError {
    fn from(p: YamlProblem) -> Self {
        ComposeError::new(p.message, p.line, p.field)
    }
}

/// Parses and validates the text of a compose file.
///
/// See the module documentation for what is accepted, what is kept and what
/// is refused.
pub fn parse(text: &str) -> Result<ComposeFile, ComposeError> {
    check_document(text)?;
    let raw: RawCompose =
        serde_norway::from_str(text).map_err(|e| ComposeError::from(convert_error(&e)))?;

    if let Some(name) = &raw.name {
        if !is_valid_name(name) {
            return Err(ComposeError::new(
                format!("invalid project name {name:?}: {NAME_RULE}"),
                find_line(text, &[Step::Key("name")]),
                Some("name".to_owned()),
            ));
        }
    }

    let raw_services = match raw.services {
        Some(s) if !s.is_empty() => s,
        _ => {
            return Err(ComposeError::new(
                "a compose file needs a non-empty `services` mapping".to_owned(),
                find_line(text, &[Step::Key("services")]),
                Some("services".to_owned()),
            ))
        }
    };

    for name in raw_services.keys() {
        if name == MERGE_KEY {
            return Err(ComposeError::new(
                "merge keys (`<<`) are not supported directly under `services`; \
                 use them inside a service definition"
                    .to_owned(),
                find_line(text, &[Step::Key("services"), Step::Key(MERGE_KEY)]),
                Some("services".to_owned()),
            ));
        }
        if !is_valid_name(name) {
            return Err(ComposeError::new(
                format!("invalid service name {name:?}: {NAME_RULE}"),
                find_line(text, &[Step::Key("services"), Step::Key(name)]),
                Some(format!("services.{name}")),
            ));
        }
    }

    let mut services = BTreeMap::new();
    for (name, ServiceEntry(raw_service)) in raw_services {
        let service = raw_service.resolve().into_service();
        services.insert(name, service);
    }

    for (name, service) in &services {
        for dep in &service.depends_on {
            let message = if dep == name {
                format!("service {name:?} depends on itself")
            } else if !services.contains_key(dep) {
                format!("unknown service {dep:?}")
            } else {
                continue;
            };
            let line = find_line(
                text,
                &[
                    Step::Key("services"),
                    Step::Key(name),
                    Step::Key("depends_on"),
                    Step::Text(dep),
                ],
            );
            return Err(ComposeError::new(
                message,
                line,
                Some(format!("services.{name}.depends_on")),
            ));
        }
    }

    Ok(ComposeFile {
        name: raw.name,
        services,
    })
}

mod disk;
mod dotenv;
mod extends;
mod include;
mod interpolate;
mod load;
mod merge;
mod raw;
pub mod refs;

pub use disk::{sources_from_disk, DiskProject};
pub use load::{load, normalize_project_name};

use raw::*;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod load_tests;

#[cfg(test)]
mod corpus_tests;
