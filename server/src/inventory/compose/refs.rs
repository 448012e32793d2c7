//! The other files a compose file names: `include` entries (their paths
//! and env files) and `extends.file`, as written (relative to the file's
//! directory). Used to collect a running project's files from its host
//! ([`crate::inventory::discovered`]); the loader resolves them for real.

use serde_norway::Value;

/// Paths named by `include` and `services.*.extends.file`, in order of
/// appearance, as written; an unparsable text names none (the loader
/// reports it properly).
pub fn references(text: &str) -> Vec<String> {
    let Ok(doc) = serde_norway::from_str::<Value>(text) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut push = |v: Option<&Value>| match v.map(untag) {
        Some(Value::String(s)) => out.push(s.clone()),
        Some(Value::Sequence(items)) => {
            for i in items {
                if let Value::String(s) = untag(i) {
                    out.push(s.clone());
                }
            }
        }
        _ => {}
    };
    if let Some(Value::Sequence(items)) = doc.get("include").map(untag) {
        for item in items {
            match untag(item) {
                s @ Value::String(_) => push(Some(s)),
                m @ Value::Mapping(_) => {
                    push(m.get("path"));
                    push(m.get("env_file"));
                }
                _ => {}
            }
        }
    }
    if let Some(Value::Mapping(services)) = doc.get("services").map(untag) {
        for (_, svc) in services {
            if let Some(Value::Mapping(ext)) = untag(svc).get("extends").map(untag) {
                push(ext.get("file"));
            }
        }
    }
    out
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_and_extends_name_their_files() {
        let text = "include:\n  - common/compose.yaml\n  - path: [mon/a.yaml, mon/b.yaml]\n    env_file: mon/.env\nservices:\n  web:\n    extends:\n      file: base.yaml\n      service: app\n  db:\n    extends: other\n";
        assert_eq!(
            references(text),
            [
                "common/compose.yaml",
                "mon/a.yaml",
                "mon/b.yaml",
                "mon/.env",
                "base.yaml"
            ]
        );
        assert!(references("services: [").is_empty());
        assert!(references("services:\n  a:\n    image: x\n").is_empty());
    }
}
