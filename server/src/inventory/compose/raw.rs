//! The raw serde shapes of a compose file (short and long syntax, merge
//! keys) and their resolution into [`ComposeService`].

use super::*;

pub(super) const MERGE_KEY: &str = "<<";

#[derive(Deserialize)]
#[serde(expecting = "a mapping with a `services` key")]
pub(super) struct RawCompose {
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) services: Option<BTreeMap<String, ServiceEntry>>,
}

/// A service definition, which must be a mapping (an empty `web:` is refused,
/// as compose does).
pub(super) struct ServiceEntry(pub(super) RawService);

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
pub(super) struct RawService {
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
    #[serde(default)]
    healthcheck: Option<Healthcheck>,
    #[serde(default)]
    profiles: Option<Vec<String>>,
    #[serde(default)]
    environment: Option<Environment>,
    #[serde(default, rename = "<<")]
    merge: Option<Merge<RawService>>,
}

impl RawService {
    /// Applies `<<` merge keys: own keys win, then merged mappings in order.
    pub(super) fn resolve(mut self) -> RawService {
        if let Some(Merge(bases)) = self.merge.take() {
            for base in bases {
                let base = base.resolve();
                self.image = self.image.or(base.image);
                self.container_name = self.container_name.or(base.container_name);
                self.ports = self.ports.or(base.ports);
                self.volumes = self.volumes.or(base.volumes);
                self.labels = self.labels.or(base.labels);
                self.depends_on = self.depends_on.or(base.depends_on);
                self.healthcheck = self.healthcheck.or(base.healthcheck);
                self.profiles = self.profiles.or(base.profiles);
                self.environment = self.environment.or(base.environment);
            }
        }
        self
    }

    pub(super) fn into_service(self) -> ComposeService {
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
            healthcheck: self.healthcheck.and_then(Healthcheck::argv),
            profiles: self.profiles.unwrap_or_default(),
            db_env: self.environment.map(|e| e.0).unwrap_or_default(),
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
    read_only: Option<LooseBool>,
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
                let ro = if matches!(self.read_only, Some(LooseBool(true))) {
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

/// `healthcheck:`; only `test` and `disable` are read, the timings are
/// accepted and dropped.
#[derive(Deserialize)]
#[serde(expecting = "a healthcheck mapping")]
pub(super) struct Healthcheck {
    #[serde(default)]
    test: Option<HealthTest>,
    #[serde(default)]
    disable: Option<bool>,
}

impl Healthcheck {
    fn argv(self) -> Option<Vec<String>> {
        if self.disable == Some(true) {
            return None;
        }
        let argv = self.test?.0;
        (argv.first().map(String::as_str) != Some("NONE") && !argv.is_empty()).then_some(argv)
    }
}

/// `healthcheck.test`: a list, or a string (run by the shell: `CMD-SHELL`).
struct HealthTest(Vec<String>);

impl<'de> Deserialize<'de> for HealthTest {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = HealthTest;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HealthTest, E> {
                Ok(HealthTest(vec!["CMD-SHELL".to_owned(), v.to_owned()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<HealthTest, A::Error> {
                let mut out = Vec::new();
                while let Some(StrOrInt(item)) = seq.next_element()? {
                    out.push(item);
                }
                Ok(HealthTest(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// The environment keys kept for proposed database checks (never a
/// password).
const DB_ENV_KEYS: [&str; 6] = [
    "POSTGRES_USER",
    "POSTGRES_DB",
    "MYSQL_USER",
    "MYSQL_DATABASE",
    "MARIADB_USER",
    "MARIADB_DATABASE",
];

/// `environment:` (mapping or `KEY=VALUE` list) reduced to [`DB_ENV_KEYS`];
/// every other value is read and dropped.
pub(super) struct Environment(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for Environment {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Environment;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping or a list of \"KEY=VALUE\" strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Environment, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(key) = map.next_key::<String>()? {
                    if DB_ENV_KEYS.contains(&key.as_str()) {
                        let LabelValue(v) = map.next_value()?;
                        out.insert(key, v);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Environment(out))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Environment, A::Error> {
                let mut out = BTreeMap::new();
                while let Some(item) = seq.next_element::<String>()? {
                    if let Some((k, v)) = item.split_once('=') {
                        if DB_ENV_KEYS.contains(&k) {
                            out.insert(k.to_owned(), v.to_owned());
                        }
                    }
                }
                Ok(Environment(out))
            }
        }
        d.deserialize_any(V)
    }
}

/// A boolean, or its text after interpolation (`read_only: ${RO}` gives
/// the string "true"): compose casts such values by the field's type.
struct LooseBool(bool);

impl<'de> Deserialize<'de> for LooseBool {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = LooseBool;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<LooseBool, E> {
                Ok(LooseBool(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<LooseBool, E> {
                match v.to_ascii_lowercase().as_str() {
                    "true" => Ok(LooseBool(true)),
                    "false" => Ok(LooseBool(false)),
                    _ => Err(E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}
