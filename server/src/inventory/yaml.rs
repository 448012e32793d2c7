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
use std::fmt::Write as _;

use serde::Deserialize;

use super::compose::{
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

// ---------------------------------------------------------------------------
// Rendering.
// ---------------------------------------------------------------------------

/// Renders the inventory as YAML (see the module documentation for the
/// layout and the round-trip guarantee).
pub fn render(doc: &InventoryDoc) -> String {
    let mut out = String::from("version: 1\n");

    let mut engines: Vec<&EngineDoc> = doc.engines.iter().collect();
    engines.sort_by(|a, b| a.name.cmp(&b.name));
    if !engines.is_empty() {
        out.push_str("engines:\n");
    }
    for e in engines {
        let mut item = Item::new(&mut out);
        item.field("name", Some(&e.name));
        item.field("endpoint", Some(&e.endpoint));
        item.field("tls_ca", e.tls_ca.as_deref());
        item.field("tls_cert", e.tls_cert.as_deref());
        item.field("tls_key", e.tls_key.as_deref());
    }

    let mut services: Vec<&ServiceDoc> = doc.services.iter().collect();
    services.sort_by(|a, b| a.name.cmp(&b.name));
    if !services.is_empty() {
        out.push_str("services:\n");
    }
    for s in services {
        let mut item = Item::new(&mut out);
        item.field("name", Some(&s.name));
        item.field(
            "description",
            Some(s.description.as_str()).filter(|d| !d.is_empty()),
        );
        item.field("tier", Some(&s.tier));
        item.field("owner_team", s.owner_team.as_deref());
        item.field("docs_url", s.docs_url.as_deref());
        item.field("repo_url", s.repo_url.as_deref());
        item.field("engine", s.engine.as_deref());
        item.field("compose_project", s.compose_project.as_deref());
        item.field("compose_service", s.compose_service.as_deref());
        item.field("container_name", s.container_name.as_deref());
        item.field("image", s.image.as_deref());
        item.list("ports", s.ports.iter());
        item.list("volumes", s.volumes.iter());
        item.map("labels", &s.labels);
        let mut requires: Vec<&String> = s.requires.iter().collect();
        requires.sort();
        item.list("requires", requires.into_iter());
    }
    out
}

/// Writes one list item (`  - name: x` then `    key: value` lines).
struct Item<'a> {
    out: &'a mut String,
    first: bool,
}

/// Indentation of the keys of a list item.
const ITEM_INDENT: usize = 4;

impl<'a> Item<'a> {
    fn new(out: &'a mut String) -> Self {
        Item { out, first: true }
    }

    fn key_prefix(&mut self) {
        if self.first {
            self.out.push_str("  - ");
            self.first = false;
        } else {
            push_indent(self.out, ITEM_INDENT);
        }
    }

    fn field(&mut self, key: &str, value: Option<&str>) {
        if let Some(value) = value {
            self.key_prefix();
            self.out.push_str(key);
            self.out.push(':');
            write_value(self.out, value, ITEM_INDENT + 2);
        }
    }

    fn list<'s>(&mut self, key: &str, items: impl ExactSizeIterator<Item = &'s String>) {
        if items.len() == 0 {
            return;
        }
        self.key_prefix();
        self.out.push_str(key);
        self.out.push_str(":\n");
        for item in items {
            push_indent(self.out, ITEM_INDENT + 2);
            self.out.push('-');
            write_value(self.out, item, ITEM_INDENT + 4);
        }
    }

    fn map(&mut self, key: &str, map: &BTreeMap<String, String>) {
        if map.is_empty() {
            return;
        }
        self.key_prefix();
        self.out.push_str(key);
        self.out.push_str(":\n");
        let indent = ITEM_INDENT + 2;
        for (k, v) in map {
            push_indent(self.out, indent);
            let rendered_key = if is_plain_safe(k) {
                k.clone()
            } else {
                double_quoted(k)
            };
            if rendered_key.chars().count() > MAX_IMPLICIT_KEY {
                // YAML limits implicit keys to 1024 characters: use an
                // explicit `? key` / `: value` pair.
                self.out.push_str("? ");
                self.out.push_str(&rendered_key);
                self.out.push('\n');
                push_indent(self.out, indent);
            } else {
                self.out.push_str(&rendered_key);
            }
            self.out.push(':');
            write_value(self.out, v, indent + 2);
        }
    }
}

/// Longest key written in the implicit `key: value` form (YAML allows 1024).
const MAX_IMPLICIT_KEY: usize = 1000;

fn push_indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Writes " value\n" after a `key:` or `-`, choosing the scalar style.
/// `block_indent` is the indentation of a literal block's lines.
fn write_value(out: &mut String, value: &str, block_indent: usize) {
    if is_plain_safe(value) {
        out.push(' ');
        out.push_str(value);
        out.push('\n');
    } else if literal_block_ok(value) {
        let body = value.trim_end_matches('\n');
        let trailing = value.len() - body.len();
        out.push_str(match trailing {
            0 => " |-\n",
            1 => " |\n",
            _ => " |+\n",
        });
        for line in body.split('\n') {
            if !line.is_empty() {
                push_indent(out, block_indent);
                out.push_str(line);
            }
            out.push('\n');
        }
        for _ in 1..trailing {
            out.push('\n');
        }
    } else {
        out.push(' ');
        out.push_str(&double_quoted(value));
        out.push('\n');
    }
}

/// Words that some YAML reader (1.1 or 1.2) takes for a boolean, null or
/// special float when written plain.
const RESERVED: &[&str] = &[
    "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf", "infinity",
];

/// Whether `s` can be written as a plain scalar and read back as the same
/// string by any YAML reader. Deliberately conservative.
fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    let first_ok = first.is_ascii_alphabetic()
        || first == '/'
        || (!first.is_ascii() && first.is_alphanumeric());
    first_ok
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && s.chars().all(|c| {
            c.is_alphanumeric()
                || matches!(
                    c,
                    ' ' | '_' | '.' | '/' | '@' | '+' | '-' | ':' | ',' | '(' | ')' | '\''
                )
        })
        && !RESERVED.iter().any(|w| s.eq_ignore_ascii_case(w))
}

/// Characters that YAML cannot hold literally (outside its printable set) or
/// that readers treat as line breaks or byte-order marks.
fn needs_escape(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{2028}' | '\u{2029}' | '\u{FEFF}' | '\u{FFFE}' | '\u{FFFF}'
        )
}

/// Whether a multi-line string survives as a literal block exactly.
fn literal_block_ok(s: &str) -> bool {
    s.contains('\n')
        && !s.starts_with([' ', '\n'])
        && s.chars()
            .all(|c| c == '\n' || !(needs_escape(c) || c == '\t' || c == '\r'))
}

/// A double-quoted YAML scalar with every special character escaped.
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if needs_escape(c) => {
                let code = u32::from(c);
                // Writing to a String cannot fail.
                let _ = if code <= 0xFFFF {
                    write!(out, "\\u{code:04X}")
                } else {
                    write!(out, "\\U{code:08X}")
                };
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> String {
        v.to_owned()
    }

    fn rich() -> InventoryDoc {
        InventoryDoc {
            engines: vec![
                EngineDoc {
                    name: "local".into(),
                    endpoint: "unix:///var/run/docker.sock".into(),
                    tls_ca: None,
                    tls_cert: None,
                    tls_key: None,
                },
                EngineDoc {
                    name: "edge-1".into(),
                    endpoint: "tcp://10.0.0.2:2376".into(),
                    tls_ca: Some("/etc/opsdeck/ca.pem".into()),
                    tls_cert: Some("/etc/opsdeck/cert.pem".into()),
                    tls_key: Some("-----BEGIN KEY-----\nabc\n-----END KEY-----\n".into()),
                },
            ],
            services: vec![
                ServiceDoc {
                    name: "gitea".into(),
                    description:
                        "Git hosting.\nSecond line: with colon\n\n  indented # not a comment\n"
                            .into(),
                    tier: "application".into(),
                    owner_team: Some("platform".into()),
                    docs_url: Some("https://docs.example.com/gitea?x=1#top".into()),
                    repo_url: Some("https://git.example.com/ops/gitea".into()),
                    engine: Some("local".into()),
                    compose_project: Some("mosaic".into()),
                    compose_service: Some("gitea".into()),
                    container_name: Some("gitea".into()),
                    image: Some("gitea/gitea:1.21".into()),
                    ports: vec![s("3000:3000"), s("2222:22"), s("3000"), s("53:53/udp")],
                    volumes: vec![s("gitea_data:/data"), s("./conf:/etc/x:ro")],
                    labels: [
                        ("com.mosaic.role", "git"),
                        ("enabled", "yes"),
                        ("version", "1.0"),
                        ("nothing", ""),
                        ("weird key: with colon", "# hash"),
                        ("null", "null"),
                    ]
                    .into_iter()
                    .map(|(k, v)| (s(k), s(v)))
                    .collect(),
                    requires: vec![s("mariadb"), s("redis")],
                },
                ServiceDoc {
                    name: "mariadb".into(),
                    tier: "critical".into(),
                    engine: Some("edge-1".into()),
                    ..ServiceDoc::default()
                },
                ServiceDoc {
                    name: "redis".into(),
                    description: "ünïcode — 日本語 🚀".into(),
                    tier: "support".into(),
                    ..ServiceDoc::default()
                },
                ServiceDoc {
                    name: "0day".into(),
                    description: "  leading and trailing spaces  ".into(),
                    tier: "support".into(),
                    owner_team: Some("".into()),
                    ..ServiceDoc::default()
                },
            ],
        }
    }

    fn canonical(mut doc: InventoryDoc) -> InventoryDoc {
        doc.engines.sort_by(|a, b| a.name.cmp(&b.name));
        doc.services.sort_by(|a, b| a.name.cmp(&b.name));
        for s in &mut doc.services {
            s.requires.sort();
        }
        doc
    }

    fn err(text: &str) -> YamlError {
        match parse(text) {
            Ok(doc) => panic!("expected an error, got {doc:?}"),
            Err(e) => e,
        }
    }

    /// Asserts both halves of the round-trip guarantee for `doc`.
    fn assert_round_trip(doc: &InventoryDoc) -> String {
        let text = render(doc);
        let parsed = match parse(&text) {
            Ok(p) => p,
            Err(e) => panic!("rendered text refused: {e}\n{text}"),
        };
        assert_eq!(parsed, canonical(doc.clone()), "\n{text}");
        assert_eq!(render(&parsed), text);
        // Our output is also plain YAML that any reader maps to the same strings.
        let value: serde_norway::Value = serde_norway::from_str(&text).unwrap();
        let json = serde_json::to_value(&value).unwrap();
        assert_eq!(json["version"], serde_json::json!(1));
        text
    }

    #[test]
    fn rich_document_round_trips() {
        let doc = rich();
        let text = assert_round_trip(&doc);
        // Sorted, canonical layout.
        assert!(
            text.starts_with("version: 1\nengines:\n  - name: edge-1\n"),
            "{text}"
        );
        let services: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("  - name: "))
            .collect();
        assert_eq!(
            services,
            ["edge-1", "local", "\"0day\"", "gitea", "mariadb", "redis"]
        );
        // Omitted fields.
        let mariadb = text.split("  - name: mariadb\n").nth(1).unwrap();
        assert!(
            mariadb.starts_with("    tier: critical\n    engine: edge-1\n  - name: redis"),
            "{text}"
        );
    }

    #[test]
    fn expected_rendering() {
        let doc = InventoryDoc {
            engines: vec![EngineDoc {
                name: "local".into(),
                endpoint: "unix:///var/run/docker.sock".into(),
                tls_ca: None,
                tls_cert: None,
                tls_key: None,
            }],
            services: vec![
                ServiceDoc {
                    name: "redis".into(),
                    tier: "support".into(),
                    ..ServiceDoc::default()
                },
                ServiceDoc {
                    name: "gitea".into(),
                    description: "Git hosting\nfor the team\n".into(),
                    tier: "application".into(),
                    engine: Some("local".into()),
                    ports: vec![s("3000:3000")],
                    labels: [(s("a.b"), s("true")), (s("c"), s(""))]
                        .into_iter()
                        .collect(),
                    requires: vec![s("redis")],
                    ..ServiceDoc::default()
                },
            ],
        };
        let expected = r#"version: 1
engines:
  - name: local
    endpoint: unix:///var/run/docker.sock
services:
  - name: gitea
    description: |
      Git hosting
      for the team
    tier: application
    engine: local
    ports:
      - "3000:3000"
    labels:
      a.b: "true"
      c: ""
    requires:
      - redis
  - name: redis
    tier: support
"#;
        assert_eq!(render(&doc), expected);
        assert_round_trip(&doc);
    }

    #[test]
    fn empty_document() {
        let doc = InventoryDoc::default();
        assert_eq!(render(&doc), "version: 1\n");
        assert_eq!(parse("version: 1\n").unwrap(), doc);
        assert_eq!(parse("version: 1\nengines: []\nservices:\n").unwrap(), doc);
    }

    const TRICKY: &[&str] = &[
        "",
        " ",
        "yes",
        "Yes",
        "NO",
        "on",
        "off",
        "y",
        "n",
        "true",
        "False",
        "null",
        "Null",
        "~",
        "1",
        "1.0",
        "-1",
        "+1",
        "0x1F",
        "0o17",
        "012",
        "1e3",
        ".5",
        "1_000",
        "12:30",
        "2024-01-01",
        ".inf",
        "-.inf",
        ".nan",
        "nan",
        "inf",
        "a: b",
        "a:b",
        "a:",
        ":a",
        "# x",
        "a #b",
        "a#b",
        "- x",
        "-",
        "--",
        "---",
        "...",
        "? x",
        "?",
        "[x]",
        "{x: y}",
        "x, y",
        "*alias",
        "&anchor",
        "!tag",
        "!!str",
        "%YAML",
        "@x",
        "`x",
        "|",
        ">",
        "<<",
        "=",
        "'",
        "''",
        "\"",
        "\\",
        "\\n",
        "a\"b",
        "it's",
        "\t",
        "a\tb",
        "\r\n",
        "\n",
        "\n\n",
        "a\n",
        "a\n\n",
        "a\n\n\n",
        "\na",
        " a\nb",
        "a\n b",
        "a\nb",
        "a\n\nb",
        "a \n b ",
        "a\r\nb",
        "line1\nline2\n",
        "ünïcode",
        "日本語",
        "🚀",
        "é: x",
        "\u{0}",
        "\u{7}",
        "\u{1b}[0m",
        "\u{7f}",
        "\u{85}",
        "\u{a0}",
        "\u{2028}",
        "\u{2029}",
        "\u{feff}x",
        "\u{fffe}",
        "a\u{85}b",
        "trailing ",
        " leading",
        "a  b",
        "a\n# c\n",
        "a\n---\nb",
        "a\n...\n",
        "https://x.example/a?b=c&d#e",
        "unix:///var/run/docker.sock",
    ];

    #[test]
    fn tricky_strings_round_trip() {
        for (i, t) in TRICKY.iter().enumerate() {
            let doc = InventoryDoc {
                engines: vec![EngineDoc {
                    name: "e".into(),
                    endpoint: s(t),
                    tls_ca: Some(s(t)),
                    tls_cert: None,
                    tls_key: None,
                }],
                services: vec![ServiceDoc {
                    name: format!("s{i}"),
                    description: s(t),
                    tier: "support".into(),
                    owner_team: Some(s(t)),
                    image: Some(s(t)),
                    ports: vec![s(t), s(t)],
                    volumes: vec![s(t)],
                    labels: [(s(t), s(t)), (format!("k{t}"), s(""))]
                        .into_iter()
                        .collect(),
                    ..ServiceDoc::default()
                }],
            };
            assert_round_trip(&doc);
        }
    }

    #[test]
    fn ambiguous_strings_are_quoted() {
        for t in [
            "yes",
            "No",
            "on",
            "null",
            "~",
            "1.0",
            "0x1F",
            "12:30",
            "a: b",
            "# x",
            "2024-01-01",
        ] {
            let doc = InventoryDoc {
                engines: vec![],
                services: vec![ServiceDoc {
                    name: "a".into(),
                    tier: "support".into(),
                    image: Some(s(t)),
                    ..ServiceDoc::default()
                }],
            };
            let text = render(&doc);
            let line = text.lines().find(|l| l.contains("image:")).unwrap();
            assert_eq!(
                line,
                format!("    image: {}", serde_json::to_string(t).unwrap())
            );
        }
    }

    /// Pseudo-random strings built from YAML-hostile pieces (fixed seed).
    #[test]
    fn generated_strings_round_trip() {
        const PIECES: &[&str] = &[
            "a", "Z", "0", "1", " ", "  ", "\n", ":", ": ", "#", " #", "-", "- ", "\"", "'", "\\",
            "\t", "\r", "{", "}", "[", "]", ",", "&", "*", "!", "|", ">", "%", "@", "`", "?", ".",
            "~", "ü", "🚀", "\u{85}", "\u{2028}", "\u{feff}", "\u{0}", "yes", "null", "true",
            "1.0", "0x1F", "<<", "---", "...", "=", "/",
        ];
        let mut state: u64 = 0x2545_F491_4F6C_DD1D;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let mut strings = Vec::new();
        for _ in 0..3000 {
            let len = next(9);
            let piece_count = PIECES.len();
            let text: String = (0..len).map(|_| PIECES[next(piece_count)]).collect();
            strings.push(text);
        }
        for chunk in strings.chunks(50) {
            let doc = InventoryDoc {
                engines: vec![],
                services: chunk
                    .iter()
                    .enumerate()
                    .map(|(i, t)| ServiceDoc {
                        name: format!("s{i:02}"),
                        description: t.clone(),
                        tier: "application".into(),
                        repo_url: Some(t.clone()),
                        volumes: vec![t.clone()],
                        labels: [(t.clone(), t.clone())].into_iter().collect(),
                        ..ServiceDoc::default()
                    })
                    .collect(),
            };
            assert_round_trip(&doc);
        }
    }

    #[test]
    fn long_label_key_round_trips() {
        let doc = InventoryDoc {
            engines: vec![],
            services: vec![ServiceDoc {
                name: "a".into(),
                tier: "support".into(),
                labels: [
                    ("k".repeat(1500), s("v")),
                    ("é\"".repeat(600), "multi\nline\n".into()),
                ]
                .into_iter()
                .collect(),
                ..ServiceDoc::default()
            }],
        };
        let text = assert_round_trip(&doc);
        assert!(text.contains("      ? "), "{text}");
    }

    #[test]
    fn unknown_key_refused_with_line() {
        let text = "version: 1\nservices:\n  - name: a\n    tier: support\n    owner: me\n";
        let e = err(text);
        assert_eq!(e.line, Some(5));
        assert_eq!(e.field.as_deref(), Some("services[0]"));
        assert!(e.message.contains("unknown field `owner`"), "{e}");
        assert!(
            e.to_string()
                .starts_with("line 5: services[0]: unknown field `owner`"),
            "{e}"
        );

        let e = err("version: 1\nservice: []\n");
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("unknown field `service`"), "{e}");

        let e = err("version: 1\nengines:\n  - name: a\n    endpoint: x\n    tls: true\n");
        assert_eq!(e.line, Some(5));
        assert_eq!(e.field.as_deref(), Some("engines[0]"));
    }

    #[test]
    fn version_checked() {
        let e = err("version: 2\nservices: []\n");
        assert_eq!(e.field.as_deref(), Some("version"));
        assert_eq!(e.line, Some(1));
        assert!(e.message.contains("unsupported version 2"), "{e}");
        let e = err("services: []\n");
        assert_eq!(e.field.as_deref(), Some("version"));
        assert!(e.message.contains("missing `version: 1`"), "{e}");
        let e = err("version: \"1\"\n");
        assert_eq!(e.field.as_deref(), Some("version"));
        assert_eq!(e.line, Some(1));
        let e = err("");
        assert_eq!(e.field.as_deref(), Some("version"));
    }

    #[test]
    fn tier_checked() {
        let e = err("version: 1\nservices:\n  - name: a\n    tier: important\n");
        assert_eq!(e.field.as_deref(), Some("services[0].tier"));
        assert_eq!(e.line, Some(4));
        assert!(e.message.contains("critical"), "{e}");
        let e = err("version: 1\nservices:\n  - name: a\n");
        assert!(e.message.contains("missing field `tier`"), "{e}");
        assert_eq!(e.field.as_deref(), Some("services[0]"));
    }

    #[test]
    fn unknown_requires_refused() {
        let text = "version: 1\nservices:\n  - name: a\n    tier: support\n    requires:\n      - b\n  - name: b\n    tier: support\n    requires:\n      - a\n      - redis\n";
        let e = err(text);
        assert_eq!(e.field.as_deref(), Some("services[1].requires"));
        assert_eq!(e.line, Some(11));
        assert_eq!(
            e.to_string(),
            "line 11: services[1].requires: service \"b\" requires unknown service \"redis\""
        );
        // Cycles (a -> b -> a) are left to the graph module.
        assert!(parse(&text.replace("      - redis\n", "")).is_ok());
    }

    #[test]
    fn self_and_repeated_requires_refused() {
        let e = err("version: 1\nservices:\n  - name: a\n    tier: support\n    requires: [a]\n");
        assert!(e.message.contains("requires itself"), "{e}");
        assert_eq!(e.line, Some(5));
        let e = err("version: 1\nservices:\n  - name: a\n    tier: support\n  - name: b\n    tier: support\n    requires: [a, a]\n");
        assert!(e.message.contains("twice"), "{e}");
        assert_eq!(e.field.as_deref(), Some("services[1].requires"));
    }

    #[test]
    fn unknown_engine_refused() {
        let text = "version: 1\nengines:\n  - name: local\n    endpoint: unix:///var/run/docker.sock\nservices:\n  - name: a\n    tier: support\n    engine: remote\n";
        let e = err(text);
        assert_eq!(e.field.as_deref(), Some("services[0].engine"));
        assert_eq!(e.line, Some(8));
        assert!(e.message.contains("unknown engine \"remote\""), "{e}");
        assert!(parse(&text.replace("engine: remote", "engine: local")).is_ok());
    }

    #[test]
    fn duplicate_names_refused() {
        let text = "version: 1\nservices:\n  - name: a\n    tier: support\n  - name: b\n    tier: support\n  - name: a\n    tier: critical\n";
        let e = err(text);
        assert_eq!(e.field.as_deref(), Some("services[2].name"));
        assert_eq!(e.line, Some(7));
        assert!(e.message.contains("duplicate service name \"a\""), "{e}");

        let text =
            "version: 1\nengines:\n  - name: x\n    endpoint: a\n  - name: x\n    endpoint: b\n";
        let e = err(text);
        assert_eq!(e.field.as_deref(), Some("engines[1].name"));
        assert_eq!(e.line, Some(5));
        assert!(e.message.contains("duplicate engine name \"x\""), "{e}");

        // Same name for an engine and a service is fine.
        assert!(parse("version: 1\nengines:\n  - name: x\n    endpoint: a\nservices:\n  - name: x\n    tier: support\n").is_ok());
    }

    #[test]
    fn invalid_names_refused() {
        let e = err("version: 1\nservices:\n  - name: Gitea\n    tier: support\n");
        assert_eq!(e.field.as_deref(), Some("services[0].name"));
        assert_eq!(e.line, Some(3));
        assert!(e.message.contains("invalid service name \"Gitea\""), "{e}");
        let e = err("version: 1\nengines:\n  - endpoint: x\n    name: \"my engine\"\n");
        assert_eq!(e.field.as_deref(), Some("engines[0].name"));
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn duplicate_keys_and_syntax_errors() {
        let e = err("version: 1\nservices:\n  - name: a\n    tier: support\n    tier: critical\n");
        assert!(e.message.contains("duplicate key \"tier\""), "{e}");
        assert_eq!(e.line, Some(5));
        let e = err("version: 1\nservices:\n  - name: a\n    labels:\n      x: 1\n      x: 2\n");
        assert_eq!(e.line, Some(6), "{e}");
        let e = err("version: 1\nservices:\n  - name: a\n   tier: support\n");
        assert_eq!(e.line, Some(4), "{e}");
        let e = err("version: 1\nservices:\n  - name: [a\n");
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn parse_sorts_into_canonical_order() {
        let text = "version: 1\nservices:\n  - name: b\n    tier: support\n    requires: [c, a]\n  - name: a\n    tier: support\n  - name: c\n    tier: support\n";
        let doc = parse(text).unwrap();
        let names: Vec<&str> = doc.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(doc.services[1].requires, vec![s("a"), s("c")]);
        let rendered = render(&doc);
        assert_eq!(parse(&rendered).unwrap(), doc);
        assert_eq!(render(&parse(&rendered).unwrap()), rendered);
    }

    #[test]
    fn plain_rules() {
        for t in [
            "gitea",
            "Git hosting for the team",
            "unix:///x",
            "/var/run",
            "a.b-c_d",
            "ünï",
            "a:b",
            "don't",
        ] {
            assert!(is_plain_safe(t), "{t:?}");
        }
        for t in [
            "",
            "1",
            "yes",
            "a: b",
            "a:",
            "a #b",
            "-a",
            ".inf",
            " a",
            "a ",
            "a\nb",
            "<<",
            "a=b",
            "1password",
        ] {
            assert!(!is_plain_safe(t), "{t:?}");
        }
    }
}
