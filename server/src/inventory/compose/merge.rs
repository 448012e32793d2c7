//! Merging compose files (and `extends`) by the Compose Specification's
//! rules, as compose-go v2 applies them:
//!
//! * Mappings merge key by key, recursively; scalars are replaced; an
//!   `x-*` key is replaced whole.
//! * `command`, `entrypoint` and `healthcheck.test` are replaced whole.
//! * `labels`, `environment`, `annotations`, `sysctls` and `extra_hosts`
//!   merge as mappings whichever syntax (list or mapping) each side uses;
//!   `depends_on` and `networks` likewise (a list entry is a default entry).
//! * Other sequences are appended, then entries with the same unique key
//!   keep one place and the later value: `ports` by
//!   `host_ip:published:target/protocol` (short syntax: the text), `volumes`
//!   and `devices` by target, `secrets`/`configs` by target, `env_file` by
//!   path, `expose`, `dns`, `cap_add`, `profiles`… by value.
//! * A value tagged `!reset` removes the key from what it merges onto (and
//!   from its own file); `!override` replaces the value whole instead of
//!   merging.

use serde_norway::value::{Tag, TaggedValue};
use serde_norway::{Mapping, Value};

use super::interpolate::key_text;

/// `over` merged onto `base` at `path` (`services.web.ports`, …).
pub(crate) fn merge(base: Value, over: Value, path: &[String]) -> Result<Value, String> {
    if let Value::Tagged(t) = &over {
        if t.tag == Tag::new("override") {
            let TaggedValue { value, .. } = *match over {
                Value::Tagged(t) => t,
                _ => unreachable!(),
            };
            return Ok(strip_tags(value));
        }
    }
    let over = strip_tags_top(over);
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["services", _, "command" | "entrypoint"] | ["services", _, "healthcheck", "test"] => {
            return Ok(strip_tags(over))
        }
        ["services", _, "labels" | "environment" | "annotations" | "sysctls" | "extra_hosts"]
        | ["services", _, "build", "args" | "labels"] => {
            return merge_mappings(to_mapping(base, false), to_mapping(over, false), path)
        }
        ["services", _, "depends_on" | "networks"] => {
            return merge_mappings(to_mapping(base, true), to_mapping(over, true), path)
        }
        _ => {}
    }
    match (base, over) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            merge_mappings(Value::Mapping(b), Value::Mapping(o), path)
        }
        (Value::Sequence(mut b), Value::Sequence(o)) => {
            b.extend(o.into_iter().map(strip_tags));
            Ok(Value::Sequence(unique(b, path)))
        }
        (Value::Mapping(_), _) | (Value::Sequence(_), _) if !is_x(path) => {
            Err(format!("cannot override {}", path.join(".")))
        }
        (_, over) => Ok(strip_tags(over)),
    }
}

fn is_x(path: &[String]) -> bool {
    path.last().is_some_and(|k| k.starts_with("x-"))
}

fn merge_mappings(base: Value, over: Value, path: &[String]) -> Result<Value, String> {
    let (Value::Mapping(mut b), Value::Mapping(o)) = (base, over) else {
        return Err(format!("cannot override {}", path.join(".")));
    };
    for (k, v) in o {
        let key = key_text(&k);
        if is_reset(&v) {
            b.remove(&k);
            continue;
        }
        match b.get_mut(&k) {
            Some(slot) if !key.starts_with("x-") => {
                let mut next = path.to_vec();
                next.push(key);
                let old = std::mem::take(slot);
                *slot = merge(old, v, &next)?;
            }
            _ => {
                b.insert(k, strip_tags(v));
            }
        }
    }
    Ok(Value::Mapping(b))
}

/// Whether a value is tagged `!reset`.
pub(crate) fn is_reset(v: &Value) -> bool {
    matches!(v, Value::Tagged(t) if t.tag == Tag::new("reset"))
}

fn strip_tags_top(v: Value) -> Value {
    match v {
        Value::Tagged(t) => strip_tags_top(t.value),
        other => other,
    }
}

/// Removes `!override` tags (keeping the value) and `!reset` values
/// (dropping them) everywhere under `v`: what a file means on its own.
pub(crate) fn strip_tags(v: Value) -> Value {
    match v {
        Value::Tagged(t) => strip_tags(t.value),
        Value::Mapping(m) => Value::Mapping(
            m.into_iter()
                .filter(|(_, v)| !is_reset(v))
                .map(|(k, v)| (k, strip_tags(v)))
                .collect(),
        ),
        Value::Sequence(s) => Value::Sequence(
            s.into_iter()
                .filter(|v| !is_reset(v))
                .map(strip_tags)
                .collect(),
        ),
        other => other,
    }
}

/// A list (`["a=b", "c"]`, or service names when `entries`) or a mapping,
/// as a mapping. For `entries` (depends_on, networks) a list item becomes a
/// key with a null value: compose's defaults.
fn to_mapping(v: Value, entries: bool) -> Value {
    match strip_tags_top(v) {
        Value::Sequence(s) => {
            let mut m = Mapping::new();
            for item in s {
                let text = match &item {
                    Value::String(t) => t.clone(),
                    other => key_text(other),
                };
                if entries {
                    m.insert(Value::String(text), Value::Null);
                } else {
                    match text.split_once('=') {
                        Some((k, val)) => m.insert(k.into(), val.into()),
                        None => m.insert(text.into(), Value::Null),
                    };
                }
            }
            Value::Mapping(m)
        }
        Value::Null => Value::Mapping(Mapping::new()),
        other => other,
    }
}

/// The unique key of a sequence entry at `path`, when that sequence has one.
fn entry_key(entry: &Value, path: &[String]) -> Option<String> {
    let p: Vec<&str> = path.iter().map(String::as_str).collect();
    let field = match p.as_slice() {
        ["services", _, f] => *f,
        _ => return None,
    };
    let text = |v: Option<&Value>| v.map(key_text).unwrap_or_default();
    match (field, entry) {
        ("ports", Value::Mapping(m)) => {
            let host = m
                .get("host_ip")
                .map(key_text)
                .unwrap_or_else(|| "0.0.0.0".into());
            let proto = m
                .get("protocol")
                .map(key_text)
                .unwrap_or_else(|| "tcp".into());
            Some(format!(
                "{host}:{}:{}/{proto}",
                text(m.get("published")),
                text(m.get("target"))
            ))
        }
        ("ports", other) => Some(key_text(other)),
        ("volumes" | "devices", Value::Mapping(m)) => Some(text(m.get("target"))),
        ("secrets" | "configs", Value::Mapping(m)) => {
            Some(text(m.get("target").or_else(|| m.get("source"))))
        }
        ("volumes" | "devices", Value::String(s)) => Some(volume_target(s)),
        ("secrets" | "configs", Value::String(s)) => Some(s.clone()),
        ("env_file", Value::Mapping(m)) => Some(text(m.get("path"))),
        (
            "env_file" | "expose" | "dns" | "dns_opt" | "dns_search" | "cap_add" | "cap_drop"
            | "profiles" | "links" | "tmpfs" | "security_opt" | "group_add",
            other,
        ) => Some(key_text(other)),
        _ => None,
    }
}

/// The container path of a short-syntax volume or device
/// (`src:target[:mode]`, or `target` alone).
fn volume_target(s: &str) -> String {
    let parts: Vec<&str> = split_volume(s);
    match parts.len() {
        1 => parts[0].to_owned(),
        _ => parts[1].to_owned(),
    }
}

/// Splits a short volume on `:`, keeping a Windows drive letter (`C:\x`)
/// with its path.
pub(crate) fn split_volume(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = s.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b':' {
            let drive = i == start + 1
                && b[start].is_ascii_alphabetic()
                && matches!(b.get(i + 1), Some(b'\\' | b'/'));
            if !drive {
                out.push(&s[start..i]);
                start = i + 1;
            }
        }
    }
    out.push(&s[start..]);
    out
}

/// Entries with the same unique key keep the first one's place and the
/// last one's value.
fn unique(seq: Vec<Value>, path: &[String]) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    let mut keys: Vec<Option<String>> = Vec::new();
    for entry in seq {
        let key = entry_key(&entry, path);
        if let Some(k) = &key {
            if let Some(pos) = keys.iter().position(|x| x.as_deref() == Some(k)) {
                out[pos] = entry;
                continue;
            }
        }
        keys.push(key);
        out.push(entry);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn y(t: &str) -> Value {
        serde_norway::from_str(t).unwrap()
    }

    fn m(a: &str, b: &str) -> Value {
        merge(y(a), y(b), &[]).unwrap()
    }

    #[test]
    fn mappings_sequences_and_replaced_fields() {
        let got = m(
            "services:\n  web:\n    image: a\n    command: [x, y]\n    ports: ['80:80', {target: 443, published: '8443'}]\n    labels: [a=1, b=2]\n    depends_on: [db]\n    healthcheck: {test: [CMD, a], interval: 5s}\n    volumes: ['dv:/data', './c:/etc/c']\n",
            "services:\n  web:\n    image: b\n    command: [z]\n    ports: ['80:80', '9090:90', {target: 443, published: '8443', host_ip: 0.0.0.0}]\n    labels: {b: '3', c: '4'}\n    depends_on: {cache: {condition: service_healthy}}\n    healthcheck: {test: [CMD, b]}\n    volumes: ['ev:/data:ro']\n",
        );
        let want = y("services:\n  web:\n    image: b\n    command: [z]\n    ports: ['80:80', {target: 443, published: '8443', host_ip: 0.0.0.0}, '9090:90']\n    labels: {a: '1', b: '3', c: '4'}\n    depends_on: {db: null, cache: {condition: service_healthy}}\n    healthcheck: {test: [CMD, b], interval: 5s}\n    volumes: ['ev:/data:ro', './c:/etc/c']\n");
        assert_eq!(got, want);
    }

    #[test]
    fn reset_and_override_tags() {
        let got = m(
            "services:\n  web:\n    image: a\n    ports: ['80:80']\n    labels: {a: '1'}\n    environment: {A: '1'}\n",
            "services:\n  web:\n    ports: !reset []\n    labels: !override {b: '2'}\n    environment: !reset null\n",
        );
        assert_eq!(
            got,
            y("services:\n  web:\n    image: a\n    labels: {b: '2'}\n")
        );
        // On its own a file drops its !reset values and keeps !override ones.
        let alone = strip_tags(y("a: !reset [1]\nb: !override [2]\nc: [!reset 3, 4]\n"));
        assert_eq!(alone, y("b: [2]\nc: [4]\n"));
    }

    #[test]
    fn type_conflicts_refused() {
        let e = merge(
            y("services: {web: {ports: ['1:1']}}"),
            y("services: {web: {ports: x}}"),
            &[],
        )
        .unwrap_err();
        assert_eq!(e, "cannot override services.web.ports");
    }
}
