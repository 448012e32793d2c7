//! Parsing docker-compose files into Opsdeck's inventory model.
//!
//! [`parse`] reads the text of a `docker-compose.yml` / `compose.yaml` and
//! keeps only what the inventory needs about each service: image, container
//! name, ports, volumes, labels and `depends_on`. Everything else (notably
//! `environment`, which routinely holds secrets) is accepted and dropped.
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
//! key detection, line lookup, the name rule) lives at the bottom of this file
//! as `pub(crate)` items.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

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
}

impl fmt::Display for ComposeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
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

// ---------------------------------------------------------------------------
// Raw serde model of a compose file.
// ---------------------------------------------------------------------------

const MERGE_KEY: &str = "<<";

#[derive(Deserialize)]
#[serde(expecting = "a mapping with a `services` key")]
struct RawCompose {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    services: Option<BTreeMap<String, ServiceEntry>>,
}

/// A service definition, which must be a mapping (an empty `web:` is refused,
/// as compose does).
struct ServiceEntry(RawService);

impl<'de> Deserialize<'de> for ServiceEntry {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ServiceEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a service definition (a mapping)")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ServiceEntry, A::Error> {
                let raw = RawService::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ServiceEntry(raw))
            }
        }
        d.deserialize_any(V)
    }
}

/// One service as written, before merge keys are applied.
#[derive(Deserialize, Default)]
#[serde(expecting = "a service definition (a mapping)")]
struct RawService {
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    container_name: Option<String>,
    #[serde(default)]
    ports: Option<Vec<Port>>,
    #[serde(default)]
    volumes: Option<Vec<Volume>>,
    #[serde(default)]
    labels: Option<Labels>,
    #[serde(default)]
    depends_on: Option<DependsOn>,
    #[serde(default, rename = "<<")]
    merge: Option<Merge<RawService>>,
}

impl RawService {
    /// Applies `<<` merge keys: own keys win, then merged mappings in order.
    fn resolve(mut self) -> RawService {
        if let Some(Merge(bases)) = self.merge.take() {
            for base in bases {
                let base = base.resolve();
                self.image = self.image.or(base.image);
                self.container_name = self.container_name.or(base.container_name);
                self.ports = self.ports.or(base.ports);
                self.volumes = self.volumes.or(base.volumes);
                self.labels = self.labels.or(base.labels);
                self.depends_on = self.depends_on.or(base.depends_on);
            }
        }
        self
    }

    fn into_service(self) -> ComposeService {
        let depends_on: BTreeSet<String> = self.depends_on.map(|d| d.0).unwrap_or_default();
        ComposeService {
            image: self.image,
            container_name: self.container_name,
            ports: self
                .ports
                .unwrap_or_default()
                .into_iter()
                .map(|p| p.0)
                .collect(),
            volumes: self
                .volumes
                .unwrap_or_default()
                .into_iter()
                .map(|v| v.0)
                .collect(),
            labels: self.labels.map(|l| l.0).unwrap_or_default(),
            depends_on: depends_on.into_iter().collect(),
        }
    }
}

/// The value of a `<<` key: one mapping or a list of mappings.
struct Merge<T>(Vec<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Merge<T> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(std::marker::PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Merge<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping or a list of mappings to merge")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                let one = T::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Merge(vec![one]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::new();
                while let Some(one) = seq.next_element()? {
                    all.push(one);
                }
                Ok(Merge(all))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A string, or an integer kept as its decimal text.
struct StrOrInt(String);

impl<'de> Deserialize<'de> for StrOrInt {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = StrOrInt;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StrOrInt, E> {
                Ok(StrOrInt(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StrOrInt, E> {
                Ok(StrOrInt(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<StrOrInt, E> {
                Ok(StrOrInt(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A port entry, normalised to the short syntax.
struct Port(String);

/// The long port syntax of the compose specification.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a long-syntax port mapping")]
struct LongPort {
    target: StrOrInt,
    #[serde(default)]
    published: Option<StrOrInt>,
    #[serde(default)]
    host_ip: Option<String>,
    #[serde(default)]
    protocol: Option<String>,
    #[serde(default, rename = "mode")]
    _mode: Option<IgnoredAny>,
    #[serde(default, rename = "name")]
    _name: Option<IgnoredAny>,
    #[serde(default, rename = "app_protocol")]
    _app_protocol: Option<IgnoredAny>,
}

impl LongPort {
    fn render(self) -> String {
        let mut out = String::new();
        if let Some(ip) = self.host_ip.filter(|ip| !ip.is_empty()) {
            if ip.contains(':') && !ip.starts_with('[') {
                out.push('[');
                out.push_str(&ip);
                out.push(']');
            } else {
                out.push_str(&ip);
            }
            out.push(':');
            // "ip::target" when unpublished: a random port on that address.
            if self.published.is_none() {
                out.push(':');
            }
        }
        if let Some(published) = self.published.filter(|p| !p.0.is_empty()) {
            out.push_str(&published.0);
            out.push(':');
        }
        out.push_str(&self.target.0);
        if let Some(protocol) = self.protocol {
            if !protocol.eq_ignore_ascii_case("tcp") && !protocol.is_empty() {
                out.push('/');
                out.push_str(&protocol);
            }
        }
        out
    }
}

impl<'de> Deserialize<'de> for Port {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Port;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Port, E> {
                Ok(Port(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Port, E> {
                Ok(Port(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Port, E> {
                Ok(Port(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Port, A::Error> {
                let long = LongPort::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Port(long.render()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A volume entry, normalised to the short syntax.
struct Volume(String);

/// The long volume syntax of the compose specification.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, expecting = "a long-syntax volume mapping")]
struct LongVolume {
    target: String,
    #[serde(default)]
    source: Option<String>,
    #[serde(default)]
    read_only: Option<bool>,
    #[serde(default, rename = "type")]
    _kind: Option<String>,
    #[serde(default, rename = "bind")]
    _bind: Option<IgnoredAny>,
    #[serde(default, rename = "volume")]
    _volume: Option<IgnoredAny>,
    #[serde(default, rename = "tmpfs")]
    _tmpfs: Option<IgnoredAny>,
    #[serde(default, rename = "image")]
    _image: Option<IgnoredAny>,
    #[serde(default, rename = "consistency")]
    _consistency: Option<IgnoredAny>,
}

impl LongVolume {
    fn render(self) -> String {
        match self.source.filter(|s| !s.is_empty()) {
            None => self.target,
            Some(source) => {
                let ro = if self.read_only == Some(true) {
                    ":ro"
                } else {
                    ""
                };
                format!("{source}:{}{ro}", self.target)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Volume;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Volume, E> {
                Ok(Volume(v.to_owned()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Volume, A::Error> {
                let long = LongVolume::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(Volume(long.render()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A scalar label value kept as text: strings as written, numbers and
/// booleans as their text, null as "".
struct LabelValue(String);

impl<'de> Deserialize<'de> for LabelValue {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LabelValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number, boolean or null")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LabelValue, E> {
                Ok(LabelValue(v.to_owned()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LabelValue, E> {
                Ok(LabelValue(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<LabelValue, E> {
                Ok(LabelValue(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<LabelValue, E> {
                Ok(LabelValue(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<LabelValue, E> {
                Ok(LabelValue(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<LabelValue, E> {
                Ok(LabelValue(String::new()))
            }
            fn visit_none<E: de::Error>(self) -> Result<LabelValue, E> {
                Ok(LabelValue(String::new()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Labels in map form (with `<<` merges) or list form.
struct Labels(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Labels {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Labels;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping or a list of \"key=value\" strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Labels, A::Error> {
                let mut own = BTreeMap::new();
                let mut merged: Vec<Labels> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == MERGE_KEY {
                        let Merge(bases) = map.next_value::<Merge<Labels>>()?;
                        merged.extend(bases);
                    } else {
                        let LabelValue(value) = map.next_value()?;
                        own.insert(key, value);
                    }
                }
                for Labels(base) in merged {
                    for (k, v) in base {
                        own.entry(k).or_insert(v);
                    }
                }
                Ok(Labels(own))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Labels, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(item) = seq.next_element::<String>()? {
                    let (k, v) = item.split_once('=').unwrap_or((item.as_str(), ""));
                    if k.is_empty() {
                        return Err(de::Error::custom(format!(
                            "label {item:?} has an empty key"
                        )));
                    }
                    if out.insert(k.to_owned(), v.to_owned()).is_some() {
                        return Err(de::Error::custom(format!("duplicate label {k:?}")));
                    }
                }
                Ok(Labels(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The long `depends_on` entry; only validated, the inventory keeps the name.
#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    expecting = "a mapping with `condition`, `restart` or `required`"
)]
struct LongDependency {
    #[serde(default, rename = "condition")]
    _condition: Option<Condition>,
    #[serde(default, rename = "restart")]
    _restart: Option<bool>,
    #[serde(default, rename = "required")]
    _required: Option<bool>,
}

#[derive(Deserialize)]
enum Condition {
    #[serde(rename = "service_started")]
    Started,
    #[serde(rename = "service_healthy")]
    Healthy,
    #[serde(rename = "service_completed_successfully")]
    CompletedSuccessfully,
}

/// `depends_on` names, from the list or the map syntax.
struct DependsOn(BTreeSet<String>);

impl<'de> Deserialize<'de> for DependsOn {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DependsOn;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of service names or a mapping of service names")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeSet::new();
                while let Some(name) = seq.next_element::<String>()? {
                    out.insert(name);
                }
                Ok(DependsOn(out))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<DependsOn, A::Error> {
                let mut out = BTreeSet::new();
                while let Some(name) = map.next_key::<String>()? {
                    if name == MERGE_KEY {
                        return Err(de::Error::custom(
                            "merge keys (`<<`) are not supported in depends_on",
                        ));
                    }
                    map.next_value::<Option<LongDependency>>()?;
                    out.insert(name);
                }
                Ok(DependsOn(out))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------
// YAML plumbing shared with `super::yaml`.
// ---------------------------------------------------------------------------

/// The rule for service, engine and project names, as shown in messages.
pub(crate) const NAME_RULE: &str =
    "names must be 1 to 63 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit";

/// Whether `name` matches `^[a-z0-9][a-z0-9._-]{0,62}$`.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(first) if first.is_ascii_lowercase() || first.is_ascii_digit() => {}
        _ => return false,
    }
    bytes.len() <= 63
        && bytes.iter().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// An error located in a YAML text: the common shape of `ComposeError` and
/// `YamlError`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct YamlProblem {
    pub(crate) message: String,
    pub(crate) line: Option<usize>,
    pub(crate) field: Option<String>,
}

/// Writes "line N: field: message", leaving out what is unknown.
pub(crate) fn write_located(
    f: &mut fmt::Formatter<'_>,
    line: Option<usize>,
    field: Option<&str>,
    message: &str,
) -> fmt::Result {
    if let Some(line) = line {
        write!(f, "line {line}: ")?;
    }
    if let Some(field) = field {
        write!(f, "{field}: ")?;
    }
    f.write_str(message)
}

/// Splits a serde_norway error into message, line and field path.
///
/// serde_norway renders errors as "path: message at line L column C"; the
/// location is public but the path and message are not, so they are taken
/// apart from the text.
pub(crate) fn convert_error(err: &serde_norway::Error) -> YamlProblem {
    let mut text = err.to_string();
    let line = err.location().map(|loc| loc.line()).filter(|l| *l > 0);
    if let Some(loc) = err.location() {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(pos) = text.find(&suffix) {
            text.replace_range(pos..pos + suffix.len(), "");
        }
    }
    let mut field = None;
    if let Some((head, rest)) = text.split_once(": ") {
        let looks_like_path = !head.is_empty()
            && head != "."
            && !head.contains(char::is_whitespace)
            && !head.contains('`');
        if looks_like_path {
            field = Some(head.to_owned());
            text = rest.to_owned();
        }
    }
    YamlProblem {
        message: text,
        line,
        field,
    }
}

/// Checks that `text` is one well-formed YAML document without duplicate
/// mapping keys. Syntax errors come back with their line; a duplicate key
/// comes back naming the key, with the path of its mapping and the line of
/// the second occurrence when it can be found.
pub(crate) fn check_document(text: &str) -> Result<(), YamlProblem> {
    let duplicate: RefCell<Option<String>> = RefCell::new(None);
    let de = serde_norway::Deserializer::from_str(text);
    match (DupCheck {
        duplicate: &duplicate,
    })
    .deserialize(de)
    {
        Ok(()) => Ok(()),
        Err(err) => {
            let mut problem = convert_error(&err);
            if let (Some(key), Some(loc)) = (duplicate.borrow().as_ref(), err.location()) {
                if let Some(line) = find_duplicate_line(text, loc.line(), loc.column(), key) {
                    problem.line = Some(line);
                }
            }
            Err(problem)
        }
    }
}

/// A walk over any YAML value that refuses duplicate mapping keys, recording
/// the offending key (as text) in `duplicate`.
struct DupCheck<'a> {
    duplicate: &'a RefCell<Option<String>>,
}

impl<'de> DeserializeSeed<'de> for DupCheck<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for DupCheck<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_i128<E: de::Error>(self, _: i128) -> Result<(), E> {
        Ok(())
    }
    fn visit_u128<E: de::Error>(self, _: u128) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(DupCheck {
                duplicate: self.duplicate,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen: Vec<serde_norway::Value> = Vec::new();
        while let Some(key) = map.next_key::<serde_norway::Value>()? {
            if seen.contains(&key) {
                let shown = match &key {
                    serde_norway::Value::String(s) => s.clone(),
                    other => serde_norway::to_string(other)
                        .map(|s| s.trim_end().to_owned())
                        .unwrap_or_default(),
                };
                let message = format!("duplicate key {shown:?}");
                *self.duplicate.borrow_mut() = Some(shown);
                return Err(de::Error::custom(message));
            }
            seen.push(key);
            map.next_value_seed(DupCheck {
                duplicate: self.duplicate,
            })?;
        }
        Ok(())
    }
    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!reset x`): check the value under the tag.
        use de::VariantAccess;
        let (_, variant) = data.variant::<IgnoredAny>()?;
        variant.newtype_variant_seed(self)
    }
}

/// Finds the line of the second `key` in the block mapping that starts at
/// `line`/`column` (both 1-based, as serde_norway reports them).
fn find_duplicate_line(text: &str, line: usize, column: usize, key: &str) -> Option<usize> {
    let indent = column.checked_sub(1)?;
    let mut count = 0;
    for (idx, raw) in text.lines().enumerate().skip(line.checked_sub(1)?) {
        let number = idx + 1;
        let content_indent = raw.len() - raw.trim_start_matches(' ').len();
        let body = raw.trim_start_matches(' ');
        if body.is_empty() || body.starts_with('#') {
            continue;
        }
        let candidate = if number == line {
            // The mapping starts on this line, possibly after "- ".
            raw.get(indent..).map(strip_item_dashes)
        } else if content_indent < indent {
            return None;
        } else if content_indent == indent {
            Some(body)
        } else {
            None
        };
        if candidate.and_then(line_key) == Some(key) {
            count += 1;
            if count == 2 {
                return Some(number);
            }
        }
    }
    None
}

/// Removes leading "- " sequence indicators (and the spaces after them).
fn strip_item_dashes(mut s: &str) -> &str {
    while let Some(rest) = s.strip_prefix("- ").or_else(|| s.strip_prefix("-\t")) {
        s = rest.trim_start_matches([' ', '\t']);
    }
    s
}

/// The key of a `key: value` line (already stripped of indentation and "- "),
/// unquoted without unescaping; `None` when the line has no simple key.
fn line_key(body: &str) -> Option<&str> {
    for quote in ['"', '\''] {
        if let Some(rest) = body.strip_prefix(quote) {
            let end = rest.find(quote)?;
            let after = rest[end + 1..].trim_start_matches(' ');
            return after.starts_with(':').then_some(&rest[..end]);
        }
    }
    let mut search_from = 0;
    while let Some(pos) = body[search_from..].find(':') {
        let colon = search_from + pos;
        let next = body[colon + 1..].chars().next();
        if next.is_none() || next == Some(' ') || next == Some('\t') {
            return Some(body[..colon].trim_end());
        }
        search_from = colon + 1;
    }
    None
}

/// One step of a best-effort line search (see [`find_line`]).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'a> {
    /// A line whose key is this (inside the current block).
    Key(&'a str),
    /// A line with this key and this scalar value, e.g. `- name: gitea`.
    Entry(&'a str, &'a str),
    /// The n-th (1-based) such line in the current block (to find the second
    /// of two duplicates).
    NthEntry(&'a str, &'a str, usize),
    /// A line containing this name as a whole word (not as part of a longer
    /// name such as `redis-cache` for `redis`), from the current line on.
    Text(&'a str),
}

/// Best-effort search for the line of a field: follows `steps` through the
/// text, each step searching inside the block opened by the previous `Key`
/// or `Entry` match. `Key` and `Entry` steps only match keys that are direct
/// children of that block (so `gitea:` under another service's `depends_on`
/// is not taken for the `gitea:` service); `Text` matches at any depth.
/// Returns the 1-based line of the last step's match.
pub(crate) fn find_line(text: &str, steps: &[Step<'_>]) -> Option<usize> {
    let lines: Vec<&str> = text.lines().collect();
    // The current position, and the block it opened: lines after a Key/Entry
    // match belong to it while indented more (or, for a key, while they are
    // "- " items at the same indentation). `child_col` is the column of the
    // block's own keys, learnt from its first line when not known.
    let mut pos: Option<usize> = None;
    let mut block: Option<(usize, bool)> = None;
    let mut child_col: Option<usize> = None;
    for step in steps {
        let start = match (step, pos) {
            (Step::Text(_), Some(p)) => p,
            (_, Some(p)) => p + 1,
            (_, None) => 0,
        };
        let mut found = None;
        let mut seen = 0;
        for (idx, raw) in lines.iter().enumerate().skip(start) {
            let indent = raw.len() - raw.trim_start_matches(' ').len();
            let body = raw.trim_start_matches(' ');
            let is_content = !body.is_empty() && !body.starts_with('#');
            if Some(idx) != pos && is_content {
                if let Some((block_indent, is_item)) = block {
                    let inside = indent > block_indent
                        || (indent == block_indent && !is_item && body.starts_with("- "));
                    if !inside {
                        break;
                    }
                }
            }
            let keyed = strip_item_dashes(body);
            let col = indent + (body.len() - keyed.len());
            if is_content && !matches!(step, Step::Text(_)) && child_col.is_none() {
                child_col = Some(col);
            }
            let direct = child_col == Some(col);
            let matched = match step {
                Step::Key(k) => direct && line_key(keyed) == Some(*k),
                Step::Entry(k, v) => {
                    direct && line_key(keyed) == Some(*k) && entry_value(keyed) == Some(*v)
                }
                Step::NthEntry(k, v, n) => {
                    if direct && line_key(keyed) == Some(*k) && entry_value(keyed) == Some(*v) {
                        seen += 1;
                    }
                    seen == *n
                }
                Step::Text(t) => contains_word(raw, t),
            };
            if matched {
                found = Some((idx, indent, body.starts_with("- "), col));
                break;
            }
        }
        let (idx, indent, is_item, col) = found?;
        pos = Some(idx);
        if !matches!(step, Step::Text(_)) {
            block = Some((indent, is_item));
            // An item's own keys line up with its first key; a key's children
            // are found from the next content line.
            child_col = is_item.then_some(col);
        }
    }
    pos.map(|p| p + 1)
}

/// Whether `word` occurs in `line` with no name character (`[A-Za-z0-9._-]`)
/// right before or after it.
fn contains_word(line: &str, word: &str) -> bool {
    if word.is_empty() {
        return false;
    }
    let is_name_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-');
    line.match_indices(word).any(|(pos, _)| {
        let before = line[..pos].chars().next_back();
        let after = line[pos + word.len()..].chars().next();
        !before.is_some_and(is_name_char) && !after.is_some_and(is_name_char)
    })
}

/// The scalar value after `key:` on a line, with simple quotes removed.
fn entry_value(body: &str) -> Option<&str> {
    let key = line_key(body)?;
    let after_key = if body.starts_with(['"', '\'']) {
        &body[key.len() + 2..]
    } else {
        &body[key.len()..]
    };
    let value = after_key.trim_start().strip_prefix(':')?.trim();
    let value = value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
        .unwrap_or(value);
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A compose file modelled on the MosAIc stack.
    const MOSAIC: &str = r#"version: "3.8"
name: mosaic

x-common: &common
  restart: unless-stopped
  labels: &common-labels
    com.mosaic.stack: core
    com.mosaic.managed: "true"

services:
  npm:
    image: jc21/nginx-proxy-manager:latest
    container_name: npm
    ports:
      - "80:80"
      - "443:443"
      - target: 81
        published: 8181
        host_ip: 127.0.0.1
    volumes:
      - npm_data:/data
      - ./letsencrypt:/etc/letsencrypt
      - ./conf:/etc/x:ro
    labels:
      - "com.mosaic.role=proxy"
      - "com.mosaic.public"
    environment:
      DB_PASSWORD: hunter2

  postgres:
    image: postgres:16
    ports:
      - "127.0.0.1:5432:5432"
    volumes:
      - type: volume
        source: pg_data
        target: /var/lib/postgresql/data
    environment:
      POSTGRES_PASSWORD: s3cret

  mariadb:
    image: mariadb:11
    volumes:
      - type: bind
        source: ./mariadb/conf
        target: /etc/mysql/conf.d
        read_only: true
      - type: volume
        target: /var/lib/mysql

  gitea:
    <<: *common
    image: gitea/gitea:1.21
    container_name: gitea
    depends_on:
      - mariadb
      - redis
    ports:
      - "3000:3000"
      - 2222:22
    volumes:
      - gitea_data:/data

  bookstack:
    image: lscr.io/linuxserver/bookstack
    depends_on:
      mariadb:
        condition: service_healthy
        restart: true
    labels:
      <<: *common-labels
      com.mosaic.role: wiki
      com.mosaic.port: 6875

  woodpecker-server:
    image: woodpeckerci/woodpecker-server:v2
    depends_on:
      - postgres
      - gitea
    ports:
      - target: 8000
        published: "8000"
      - target: 9000
    healthcheck:
      test: ["CMD", "/bin/woodpecker-server", "ping"]

  redis:
    image: redis:7-alpine
    ports:
      - target: 6379
        published: 6379
        protocol: tcp
      - target: 6380
        protocol: udp
    command: ["redis-server", "--appendonly", "yes"]

  mcp:
    build: ./mcp
    depends_on: [redis, redis]
    labels:
      com.mosaic.role: mcp
      empty:

  portainer:
    image: portainer/portainer-ce
    ports:
      - "9443:9443"
      - "53:53/udp"
    volumes:
      - /var/run/docker.sock:/var/run/docker.sock
      - portainer_data:/data

volumes:
  npm_data:
  pg_data:
  gitea_data:
  portainer_data:
networks:
  default:
    name: mosaic
"#;

    fn err(text: &str) -> ComposeError {
        match parse(text) {
            Ok(file) => panic!("expected an error, got {file:?}"),
            Err(e) => e,
        }
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn strings(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mosaic_stack_field_by_field() {
        let file = parse(MOSAIC).unwrap();
        assert_eq!(file.name.as_deref(), Some("mosaic"));
        assert_eq!(
            file.services.keys().collect::<Vec<_>>(),
            vec![
                "bookstack",
                "gitea",
                "mariadb",
                "mcp",
                "npm",
                "portainer",
                "postgres",
                "redis",
                "woodpecker-server"
            ]
        );

        let npm = &file.services["npm"];
        assert_eq!(
            npm.image.as_deref(),
            Some("jc21/nginx-proxy-manager:latest")
        );
        assert_eq!(npm.container_name.as_deref(), Some("npm"));
        assert_eq!(
            npm.ports,
            strings(&["80:80", "443:443", "127.0.0.1:8181:81"])
        );
        assert_eq!(
            npm.volumes,
            strings(&[
                "npm_data:/data",
                "./letsencrypt:/etc/letsencrypt",
                "./conf:/etc/x:ro"
            ])
        );
        assert_eq!(
            npm.labels,
            labels(&[("com.mosaic.public", ""), ("com.mosaic.role", "proxy")])
        );
        assert!(npm.depends_on.is_empty());

        let postgres = &file.services["postgres"];
        assert_eq!(postgres.image.as_deref(), Some("postgres:16"));
        assert_eq!(postgres.container_name, None);
        assert_eq!(postgres.ports, strings(&["127.0.0.1:5432:5432"]));
        assert_eq!(
            postgres.volumes,
            strings(&["pg_data:/var/lib/postgresql/data"])
        );
        assert!(postgres.labels.is_empty());

        let mariadb = &file.services["mariadb"];
        assert_eq!(
            mariadb.volumes,
            strings(&["./mariadb/conf:/etc/mysql/conf.d:ro", "/var/lib/mysql"])
        );
        assert!(mariadb.ports.is_empty());

        let gitea = &file.services["gitea"];
        assert_eq!(gitea.image.as_deref(), Some("gitea/gitea:1.21"));
        assert_eq!(gitea.container_name.as_deref(), Some("gitea"));
        assert_eq!(gitea.depends_on, strings(&["mariadb", "redis"]));
        assert_eq!(gitea.ports, strings(&["3000:3000", "2222:22"]));
        assert_eq!(gitea.volumes, strings(&["gitea_data:/data"]));
        // Labels come from the `<<: *common` merge.
        assert_eq!(
            gitea.labels,
            labels(&[("com.mosaic.managed", "true"), ("com.mosaic.stack", "core")])
        );

        let bookstack = &file.services["bookstack"];
        assert_eq!(bookstack.depends_on, strings(&["mariadb"]));
        assert_eq!(
            bookstack.labels,
            labels(&[
                ("com.mosaic.managed", "true"),
                ("com.mosaic.port", "6875"),
                ("com.mosaic.role", "wiki"),
                ("com.mosaic.stack", "core"),
            ])
        );

        let woodpecker = &file.services["woodpecker-server"];
        assert_eq!(woodpecker.depends_on, strings(&["gitea", "postgres"]));
        assert_eq!(woodpecker.ports, strings(&["8000:8000", "9000"]));

        let redis = &file.services["redis"];
        assert_eq!(redis.ports, strings(&["6379:6379", "6380/udp"]));
        assert!(redis.depends_on.is_empty());

        let mcp = &file.services["mcp"];
        assert_eq!(mcp.image, None);
        assert_eq!(mcp.depends_on, strings(&["redis"]));
        assert_eq!(
            mcp.labels,
            labels(&[("com.mosaic.role", "mcp"), ("empty", "")])
        );

        let portainer = &file.services["portainer"];
        assert_eq!(portainer.ports, strings(&["9443:9443", "53:53/udp"]));
        assert_eq!(
            portainer.volumes,
            strings(&[
                "/var/run/docker.sock:/var/run/docker.sock",
                "portainer_data:/data"
            ])
        );
    }

    #[test]
    fn environment_is_not_kept() {
        let file = parse(MOSAIC).unwrap();
        let debug = format!("{file:?}");
        assert!(!debug.contains("hunter2"));
        assert!(!debug.contains("s3cret"));
    }

    #[test]
    fn malformed_yaml_reports_its_line() {
        let text = "services:\n  web:\n    image: nginx\n   ports: [\n";
        let e = err(text);
        assert_eq!(e.line, Some(4), "{e}");
        assert!(e.to_string().starts_with("line 4: "), "{e}");

        let text = "services:\n  web:\n    image: \"nginx\n    ports: []\n";
        let e = err(text);
        assert!(e.line.is_some(), "{e}");
    }

    #[test]
    fn wrong_type_names_field_and_line() {
        let text = "services:\n  gitea:\n    ports:\n      - \"3000:3000\"\n      - [1, 2]\n";
        let e = err(text);
        assert_eq!(e.line, Some(5));
        assert_eq!(e.field.as_deref(), Some("services.gitea.ports[1]"));
        assert!(e.message.contains("expected a string or a mapping"), "{e}");
        assert!(
            e.to_string()
                .starts_with("line 5: services.gitea.ports[1]: invalid type: sequence"),
            "{e}"
        );
    }

    #[test]
    fn unknown_dependency_names_field_and_line() {
        let text = "services:\n  gitea:\n    image: gitea/gitea\n  woodpecker:\n    image: w\n    depends_on:\n      - gitae\n";
        let e = err(text);
        assert_eq!(e.field.as_deref(), Some("services.woodpecker.depends_on"));
        assert_eq!(e.message, "unknown service \"gitae\"");
        assert_eq!(e.line, Some(7));
        assert_eq!(
            e.to_string(),
            "line 7: services.woodpecker.depends_on: unknown service \"gitae\""
        );

        // Long syntax and a flow list.
        let text = "services:\n  a:\n    depends_on:\n      b:\n        condition: service_started\n  c:\n    depends_on: [a, zz]\n";
        let e = err(text);
        assert_eq!(e.field.as_deref(), Some("services.a.depends_on"));
        assert_eq!(e.line, Some(4));
        let text = "services:\n  a:\n    image: x\n  c:\n    depends_on: [a, zz]\n";
        let e = err(text);
        assert_eq!(e.field.as_deref(), Some("services.c.depends_on"));
        assert_eq!(e.line, Some(5));
    }

    #[test]
    fn self_dependency_refused() {
        let e = err("services:\n  a:\n    image: x\n    depends_on: [a]\n");
        assert_eq!(e.field.as_deref(), Some("services.a.depends_on"));
        assert!(e.message.contains("depends on itself"), "{e}");
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn bad_condition_refused() {
        let e = err("services:\n  a:\n    image: x\n  b:\n    depends_on:\n      a:\n        condition: healthy\n");
        assert_eq!(
            e.field.as_deref(),
            Some("services.b.depends_on.a.condition")
        );
        assert_eq!(e.line, Some(7));
    }

    #[test]
    fn duplicate_service_refused() {
        let text =
            "services:\n  gitea:\n    image: a\n  redis:\n    image: r\n  gitea:\n    image: b\n";
        let e = err(text);
        assert!(e.message.contains("duplicate key \"gitea\""), "{e}");
        assert_eq!(e.field.as_deref(), Some("services"));
        assert_eq!(e.line, Some(6));
    }

    #[test]
    fn duplicate_keys_refused_everywhere() {
        // Inside a service, under an ignored key, and in a flow mapping.
        let e = err("services:\n  a:\n    image: x\n    ports: []\n    image: y\n");
        assert_eq!(e.line, Some(5), "{e}");
        assert_eq!(e.field.as_deref(), Some("services.a"));
        let e = err("services:\n  a:\n    environment:\n      A: 1\n      A: 2\n");
        assert_eq!(e.line, Some(5), "{e}");
        assert!(e.message.contains("\"A\""));
        let e = err("services:\n  a: {image: x, image: y}\n");
        assert!(e.message.contains("duplicate key \"image\""), "{e}");
        assert_eq!(e.line, Some(2));
        // Top level, with a sequence item mapping.
        let e = err("services:\n  a:\n    image: x\nservices:\n  b: {}\n");
        assert_eq!(e.line, Some(4), "{e}");
        let e = err("services:\n  a:\n    volumes:\n      - type: bind\n        target: /x\n        target: /y\n");
        assert_eq!(e.line, Some(6), "{e}");
    }

    #[test]
    fn uppercase_service_name_refused() {
        let e = err("services:\n  web:\n    image: x\n  Gitea:\n    image: gitea/gitea\n");
        assert_eq!(e.field.as_deref(), Some("services.Gitea"));
        assert!(e.message.contains("invalid service name \"Gitea\""), "{e}");
        assert_eq!(e.line, Some(4));
    }

    #[test]
    fn project_name_checked() {
        let e = err("name: My_Stack\nservices:\n  a:\n    image: x\n");
        assert_eq!(e.field.as_deref(), Some("name"));
        assert_eq!(e.line, Some(1));
        assert!(parse("name: my_stack-2\nservices:\n  a:\n    image: x\n").is_ok());
    }

    #[test]
    fn name_rule() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("0"));
        assert!(is_valid_name("woodpecker-server.v2_x"));
        assert!(is_valid_name(&"a".repeat(63)));
        assert!(!is_valid_name(&"a".repeat(64)));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("-a"));
        assert!(!is_valid_name(".a"));
        assert!(!is_valid_name("a b"));
        assert!(!is_valid_name("aé"));
        assert!(!is_valid_name("A"));
    }

    #[test]
    fn services_missing_or_empty_refused() {
        for text in [
            "version: '3'\n",
            "services: {}\n",
            "services:\n",
            "",
            "# only a comment\n",
        ] {
            let e = err(text);
            assert_eq!(e.field.as_deref(), Some("services"), "{text:?}: {e}");
            assert!(e.message.contains("non-empty `services`"), "{e}");
        }
        assert_eq!(err("version: '3'\nservices: {}\n").line, Some(2));
    }

    #[test]
    fn top_level_must_be_a_mapping() {
        let e = err("- a\n- b\n");
        assert!(e.message.contains("expected a mapping"), "{e}");
        let e = err("just a string\n");
        assert!(e.message.contains("expected a mapping"), "{e}");
        let e = err("services:\n  a:\n    image: x\n---\nservices: {}\n");
        assert!(e.message.contains("more than one document"), "{e}");
    }

    #[test]
    fn service_must_be_a_mapping() {
        let e = err("services:\n  a: nginx\n");
        assert_eq!(e.field.as_deref(), Some("services.a"));
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("expected a service definition"), "{e}");
        let e = err("services:\n  a:\n  b:\n    image: x\n");
        assert_eq!(e.field.as_deref(), Some("services.a"));
        assert!(e.message.contains("expected a service definition"), "{e}");
    }

    #[test]
    fn long_port_with_host_ip() {
        let text = "services:\n  a:\n    ports:\n      - target: 80\n        published: 8080\n        host_ip: 127.0.0.1\n      - target: 53\n        published: 5353\n        host_ip: 0.0.0.0\n        protocol: udp\n      - target: 80\n        published: 8081\n        host_ip: \"::1\"\n      - target: 80\n        host_ip: 10.0.0.1\n      - target: 443\n        published: 8443-8444\n        mode: host\n        name: https\n        app_protocol: https\n      - 3000\n      - target: \"8080\"\n        protocol: TCP\n";
        let file = parse(text).unwrap();
        assert_eq!(
            file.services["a"].ports,
            strings(&[
                "127.0.0.1:8080:80",
                "0.0.0.0:5353:53/udp",
                "[::1]:8081:80",
                "10.0.0.1::80",
                "8443-8444:443",
                "3000",
                "8080",
            ])
        );
    }

    #[test]
    fn long_syntax_typos_refused() {
        let e = err("services:\n  a:\n    ports:\n      - target: 80\n        publised: 8080\n");
        assert_eq!(e.field.as_deref(), Some("services.a.ports[0]"));
        assert!(e.message.contains("unknown field `publised`"), "{e}");
        assert_eq!(e.line, Some(5));
        let e = err("services:\n  a:\n    ports:\n      - published: 8080\n");
        assert!(e.message.contains("missing field `target`"), "{e}");
        let e = err("services:\n  a:\n    volumes:\n      - source: x\n        target: /y\n        readonly: true\n");
        assert!(e.message.contains("unknown field `readonly`"), "{e}");
    }

    #[test]
    fn label_forms() {
        let text = "services:\n  a:\n    labels:\n      traefik.enable: true\n      weight: 1.5\n      n: 3\n      s: \"x=y\"\n  b:\n    labels:\n      - a=b=c\n      - flag\n      - empty=\n";
        let file = parse(text).unwrap();
        assert_eq!(
            file.services["a"].labels,
            labels(&[
                ("n", "3"),
                ("s", "x=y"),
                ("traefik.enable", "true"),
                ("weight", "1.5")
            ])
        );
        assert_eq!(
            file.services["b"].labels,
            labels(&[("a", "b=c"), ("empty", ""), ("flag", "")])
        );
        let e = err("services:\n  a:\n    labels:\n      - x=1\n      - x=2\n");
        assert!(e.message.contains("duplicate label \"x\""), "{e}");
        assert_eq!(e.field.as_deref(), Some("services.a.labels"));
    }

    #[test]
    fn merge_keys_applied_with_yaml_precedence() {
        let text = r#"x-labels:
  a: &a-labels {one: a}
  b: &b-labels {one: b, two: b}
x-a: &a
  image: from-a
  container_name: ca
  labels: {one: a}
x-b: &b
  image: from-b
  ports: ["1:1"]
  labels: {one: b, two: b}
x-nested: &nested
  <<: *b
  volumes: [v:/v]
services:
  own-wins:
    <<: *a
    image: own
  list-order:
    <<: [*a, *b]
  nested:
    <<: *nested
  label-merge:
    labels:
      <<: [*a-labels, *b-labels]
      three: own
"#;
        let file = parse(text).unwrap();
        let own = &file.services["own-wins"];
        assert_eq!(own.image.as_deref(), Some("own"));
        assert_eq!(own.container_name.as_deref(), Some("ca"));
        let list = &file.services["list-order"];
        assert_eq!(list.image.as_deref(), Some("from-a"));
        assert_eq!(list.ports, strings(&["1:1"]));
        // Per-key merge: labels come whole from the first mapping that has them.
        assert_eq!(list.labels, labels(&[("one", "a")]));
        let nested = &file.services["nested"];
        assert_eq!(nested.image.as_deref(), Some("from-b"));
        assert_eq!(nested.volumes, strings(&["v:/v"]));
        let lm = &file.services["label-merge"];
        assert_eq!(
            lm.labels,
            labels(&[("one", "a"), ("three", "own"), ("two", "b")])
        );
    }

    #[test]
    fn merge_keys_elsewhere_refused_clearly() {
        let e = err("x: &x\n  a: {image: x}\nservices:\n  <<: *x\n");
        assert!(e.message.contains("merge keys"), "{e}");
        assert_eq!(e.line, Some(4));
        let e = err(
            "x: &x\n  a: {}\nservices:\n  a:\n    image: x\n  b:\n    depends_on:\n      <<: *x\n",
        );
        assert!(e.message.contains("merge keys"), "{e}");
        assert_eq!(e.field.as_deref(), Some("services.b.depends_on"));
    }

    #[test]
    fn unknown_keys_ignored() {
        let text = "version: '3'\nsecrets:\n  s:\n    file: ./s\nconfigs: {}\nx-foo: 1\nservices:\n  a:\n    image: x\n    restart: always\n    networks: [n]\n    build:\n      context: .\n    command: run\n";
        let file = parse(text).unwrap();
        assert_eq!(
            file.services["a"],
            ComposeService {
                image: Some("x".into()),
                ..ComposeService::default()
            }
        );
        assert_eq!(file.name, None);
    }

    #[test]
    fn error_display_forms() {
        let e = ComposeError::new("m".into(), None, None);
        assert_eq!(e.to_string(), "m");
        let e = ComposeError::new("m".into(), Some(3), None);
        assert_eq!(e.to_string(), "line 3: m");
        let e = ComposeError::new("m".into(), None, Some("f".into()));
        assert_eq!(e.to_string(), "f: m");
    }

    #[test]
    fn find_line_stays_in_block() {
        let text = "services:\n  a:\n    image: x\n  b:\n    depends_on: [zz]\n";
        assert_eq!(
            find_line(
                text,
                &[Step::Key("services"), Step::Key("a"), Step::Text("zz")]
            ),
            None
        );
        assert_eq!(
            find_line(
                text,
                &[Step::Key("services"), Step::Key("b"), Step::Text("zz")]
            ),
            Some(5)
        );
        let list = "services:\n- name: a\n  requires: [b]\n- name: b\n  requires:\n  - c\n";
        assert_eq!(
            find_line(
                list,
                &[
                    Step::Key("services"),
                    Step::Entry("name", "b"),
                    Step::Key("requires"),
                    Step::Text("c")
                ]
            ),
            Some(6)
        );
        assert_eq!(
            find_line(
                list,
                &[
                    Step::Key("services"),
                    Step::Entry("name", "a"),
                    Step::Text("c")
                ]
            ),
            None
        );
        let nested = "services:\n  woodpecker:\n    depends_on:\n      gitea:\n        condition: service_started\n  gitea:\n    depends_on: [nope]\n";
        assert_eq!(
            find_line(
                nested,
                &[
                    Step::Key("services"),
                    Step::Key("gitea"),
                    Step::Text("nope")
                ]
            ),
            Some(7)
        );
        let dup = "x:\n  - name: a\n  - name: \"b\"\n  - name: 'b'\n";
        assert_eq!(
            find_line(dup, &[Step::Key("x"), Step::NthEntry("name", "b", 2)]),
            Some(4)
        );
        assert!(contains_word("  - [redis-cache, redis]", "redis"));
        assert!(!contains_word("  - redis-cache", "redis"));
        assert!(!contains_word("  - my.redis", "redis"));
    }
}
