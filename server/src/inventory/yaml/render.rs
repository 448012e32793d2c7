//! Rendering an [`InventoryDoc`] as canonical YAML (the exact inverse of
//! [`super::parse`] on its own output).

use std::fmt::Write as _;

use super::*;

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
pub(super) fn is_plain_safe(s: &str) -> bool {
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
