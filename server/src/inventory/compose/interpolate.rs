//! Variable interpolation as the Compose Specification defines it (and
//! compose-go v2 implements it).
//!
//! * `$$` is a literal `$`.
//! * `$VAR` and `${VAR}`: the value, or the empty string when unset.
//! * `${VAR:-default}` / `${VAR-default}`: the default when unset or empty /
//!   only when unset.
//! * `${VAR:+alt}` / `${VAR+alt}`: `alt` when set and non-empty / when set;
//!   else the empty string.
//! * `${VAR:?err}` / `${VAR?err}`: an error "required variable VAR is missing
//!   a value: err" when unset or empty / only when unset.
//! * Defaults, alternatives and error texts are interpolated themselves, so
//!   `${A:-${B:-x}}` nests.
//! * A `$` not followed by `$`, `{` or a name is kept as written (compose
//!   does the same); `${` without a closing `}` or with anything but a name
//!   and one of the operators above is "invalid interpolation format".
//!
//! Only values are interpolated, never mapping keys (as in compose).

use std::collections::BTreeMap;

use serde_norway::Value;

/// Variables for interpolation (the env files, then the CLI's environment).
pub(crate) type Vars = BTreeMap<String, String>;

/// Why a value could not be interpolated (the message only; the caller adds
/// the field path and the file).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InterpolationError(pub(crate) String);

fn is_name_start(c: u8) -> bool {
    c.is_ascii_alphabetic() || c == b'_'
}

fn is_name_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_'
}

/// Interpolates one string.
pub(crate) fn interpolate(text: &str, vars: &Vars) -> Result<String, InterpolationError> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut lit = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&text[lit..i]);
        match b.get(i + 1) {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(b'{') => {
                let close = matching_brace(b, i + 2).ok_or_else(invalid)?;
                out.push_str(&braced(&text[i + 2..close], vars)?);
                i = close + 1;
            }
            Some(c) if is_name_start(*c) => {
                let mut end = i + 1;
                while end < b.len() && is_name_char(b[end]) {
                    end += 1;
                }
                if let Some(v) = vars.get(&text[i + 1..end]) {
                    out.push_str(v);
                }
                i = end;
            }
            _ => {
                out.push('$');
                i += 1;
            }
        }
        lit = i;
    }
    out.push_str(&text[lit..]);
    Ok(out)
}

fn invalid() -> InterpolationError {
    InterpolationError("invalid interpolation format (escape a literal $ as $$)".to_owned())
}

/// The index of the `}` closing a `${` whose content starts at `from`,
/// skipping nested `${…}`.
fn matching_brace(b: &[u8], from: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut i = from;
    while i < b.len() {
        match b[i] {
            b'$' if b.get(i + 1) == Some(&b'$') => i += 1,
            b'$' if b.get(i + 1) == Some(&b'{') => {
                depth += 1;
                i += 1;
            }
            b'}' if depth == 0 => return Some(i),
            b'}' => depth -= 1,
            _ => {}
        }
        i += 1;
    }
    None
}

/// The content of one `${…}`.
fn braced(inner: &str, vars: &Vars) -> Result<String, InterpolationError> {
    let b = inner.as_bytes();
    if b.is_empty() || !is_name_start(b[0]) {
        return Err(invalid());
    }
    let mut end = 1;
    while end < b.len() && is_name_char(b[end]) {
        end += 1;
    }
    let name = &inner[..end];
    let value = vars.get(name);
    let rest = &inner[end..];
    if rest.is_empty() {
        return Ok(value.cloned().unwrap_or_default());
    }
    let (colon, rest) = match rest.strip_prefix(':') {
        Some(r) => (true, r),
        None => (false, rest),
    };
    let op = rest.as_bytes().first().copied().ok_or_else(invalid)?;
    let arg = &rest[1..];
    // "unset" for the plain forms, "unset or empty" with the colon.
    let missing = match value {
        None => true,
        Some(v) => colon && v.is_empty(),
    };
    match op {
        b'-' if missing => interpolate(arg, vars),
        b'-' => Ok(value.cloned().unwrap_or_default()),
        b'+' if missing => Ok(String::new()),
        b'+' => interpolate(arg, vars),
        b'?' if missing => {
            let why = interpolate(arg, vars)?;
            Err(InterpolationError(if why.is_empty() {
                format!("required variable {name} is missing a value")
            } else {
                format!("required variable {name} is missing a value: {why}")
            }))
        }
        b'?' => Ok(value.cloned().unwrap_or_default()),
        _ => Err(invalid()),
    }
}

/// Interpolates every string scalar under `value` (tagged values included),
/// returning the dotted path of the first failure with its error.
pub(crate) fn interpolate_value(
    value: &mut Value,
    vars: &Vars,
    path: &mut Vec<String>,
) -> Result<(), (String, InterpolationError)> {
    match value {
        Value::String(s) => {
            if s.contains('$') {
                *s = interpolate(s, vars).map_err(|e| (path.join("."), e))?;
            }
        }
        Value::Sequence(seq) => {
            for (i, item) in seq.iter_mut().enumerate() {
                let last = path.pop().unwrap_or_default();
                path.push(format!("{last}[{i}]"));
                let r = interpolate_value(item, vars, path);
                path.pop();
                path.push(last);
                r?;
            }
        }
        Value::Mapping(map) => {
            for (k, v) in map.iter_mut() {
                path.push(key_text(k));
                let r = interpolate_value(v, vars, path);
                path.pop();
                r?;
            }
        }
        Value::Tagged(t) => interpolate_value(&mut t.value, vars, path)?,
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
    Ok(())
}

/// A mapping key as text (strings as written, other scalars rendered).
pub(crate) fn key_text(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => serde_norway::to_string(other)
            .map(|s| s.trim_end().to_owned())
            .unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("A", "1"), ("E", ""), ("NAME", "web")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    fn ok(t: &str) -> String {
        interpolate(t, &vars()).unwrap()
    }

    #[test]
    fn forms_as_the_spec_says() {
        assert_eq!(ok("${A}b$A-c${B:-d${A}e}"), "1b1-cd1e");
        assert_eq!(
            ok("${E:-def} ${E-def} ${E:+alt} ${E+alt} ${B+alt}|"),
            "def   alt |"
        );
        assert_eq!(ok("${B-x} ${B:-y} ${A:+z} ${B:+z}."), "x y z .");
        assert_eq!(ok("$$A $${A} $$$A"), "$A ${A} $1");
        assert_eq!(ok("x $ y x$ $1a"), "x $ y x$ $1a");
        assert_eq!(ok("${A:-a}}"), "1}");
        assert_eq!(ok("${A-${B-${C:-z}}} ${B-${C-${D:-z}}}"), "1 z");
        assert_eq!(ok("${E?oops}|${UNSET}|$UNSET"), "||");
        assert_eq!(ok("$NAME.example ${NAME}_x $NAME_x"), "web.example web_x ");
    }

    #[test]
    fn required_and_invalid_forms_fail() {
        let e = interpolate("${B:?oops bad}", &vars()).unwrap_err();
        assert_eq!(e.0, "required variable B is missing a value: oops bad");
        let e = interpolate("${E:?}", &vars()).unwrap_err();
        assert_eq!(e.0, "required variable E is missing a value");
        assert!(interpolate("${E?fine}", &vars()).is_ok());
        for bad in ["${A:-}x${A", "${ A}", "${}", "${A:}", "${A*x}", "${1}"] {
            let e = interpolate(bad, &vars()).unwrap_err();
            assert!(e.0.starts_with("invalid interpolation format"), "{bad}");
        }
    }
}
