//! YAML plumbing shared by the compose parser and the inventory YAML:
//! the name rule, located errors (`YamlProblem`), converting the parser's
//! errors, refusing duplicate keys, and finding the line of a field path
//! by a best-effort scan of the text.

use std::cell::RefCell;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

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
pub(super) fn contains_word(line: &str, word: &str) -> bool {
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
