//! Definitions as YAML (import/export).

use super::*;

/// Parses a definition from YAML (one document).
pub fn from_yaml(text: &str) -> Result<RunbookDef, String> {
    if text.len() > 512 * 1024 {
        return Err("yaml: at most 512 KiB".into());
    }
    serde_norway::from_str(text).map_err(|e| format!("yaml: {e}"))
}

/// Renders a definition as YAML.
pub fn to_yaml(def: &RunbookDef) -> String {
    serde_norway::to_string(def).unwrap_or_default()
}
