//! Series selectors as PromQL writes them: `name{label="v",code=~"5.."}`.
//!
//! Operators `=`, `!=`, `=~`, `!~`; regexes are anchored like PromQL's
//! (`^(?:…)$`); values are double-quoted with `\"`, `\\` and `\n` escapes.
//! A missing label is the empty string, so `code!="500"` matches a series
//! without `code`, as in PromQL.

use regex::Regex;

/// How a label is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Re,
    NotRe,
}

#[derive(Debug, Clone)]
pub struct Matcher {
    pub label: String,
    pub op: Op,
    pub value: String,
    re: Option<Regex>,
}

impl Matcher {
    fn matches(&self, v: &str) -> bool {
        match (self.op, &self.re) {
            (Op::Eq, _) => v == self.value,
            (Op::Ne, _) => v != self.value,
            (Op::Re, Some(re)) => re.is_match(v),
            (Op::NotRe, Some(re)) => !re.is_match(v),
            _ => false,
        }
    }
}

/// A metric name and label matchers.
#[derive(Debug, Clone)]
pub struct Selector {
    pub name: String,
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// Does a sample with these labels (sorted or not) match?
    pub fn matches(&self, labels: &[(String, String)]) -> bool {
        self.matchers.iter().all(|m| {
            let v = labels
                .iter()
                .find(|(k, _)| *k == m.label)
                .map_or("", |(_, v)| v.as_str());
            m.matches(v)
        })
    }

    /// The same selector on another metric name (a histogram's `_bucket`).
    pub fn renamed(&self, name: String) -> Selector {
        Selector {
            name,
            matchers: self.matchers.clone(),
        }
    }
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_' || c == ':'
}
pub(super) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ':'
}

/// The length of the metric name `s` starts with (0: none).
pub(super) fn name_len(s: &str) -> usize {
    s.char_indices()
        .find(|&(i, c)| {
            !(if i == 0 {
                is_name_start(c)
            } else {
                is_name_char(c)
            })
        })
        .map_or(s.len(), |(i, _)| i)
}

/// Reads a double-quoted string at the start of `s` (after the quote is
/// checked); returns the value and the rest after the closing quote.
pub(super) fn quoted(s: &str) -> Result<(String, &str), String> {
    let mut chars = s.char_indices();
    if chars.next().map(|(_, c)| c) != Some('"') {
        return Err("a label value must be in double quotes".into());
    }
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((out, &s[i + 1..])),
            '\\' => match chars.next().map(|(_, c)| c) {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some('"') => out.push('"'),
                Some(other) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("a label value is not closed by a double quote".into())
}

/// Parses `name{…}`; the error says what is wrong where.
pub fn parse(text: &str) -> Result<Selector, String> {
    let s = text.trim();
    let name_len = name_len(s);
    if name_len == 0 {
        return Err(format!(
            "`{s}`: a selector starts with a metric name (letters, digits, `_`, `:`)"
        ));
    }
    let name = s[..name_len].to_string();
    let mut rest = s[name_len..].trim_start();
    let mut matchers = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        rest = r.trim_start();
        loop {
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let label_len = rest
                .char_indices()
                .find(|&(i, c)| {
                    !(if i == 0 {
                        c.is_ascii_alphabetic() || c == '_'
                    } else {
                        c.is_ascii_alphanumeric() || c == '_'
                    })
                })
                .map_or(rest.len(), |(i, _)| i);
            if label_len == 0 {
                return Err(format!("`{s}`: expected a label name or `}}`"));
            }
            let label = rest[..label_len].to_string();
            rest = rest[label_len..].trim_start();
            let (op, r) = if let Some(r) = rest.strip_prefix("=~") {
                (Op::Re, r)
            } else if let Some(r) = rest.strip_prefix("!~") {
                (Op::NotRe, r)
            } else if let Some(r) = rest.strip_prefix("!=") {
                (Op::Ne, r)
            } else if let Some(r) = rest.strip_prefix('=') {
                (Op::Eq, r)
            } else {
                return Err(format!(
                    "`{s}`: expected `=`, `!=`, `=~` or `!~` after `{label}`"
                ));
            };
            let (value, r) = quoted(r.trim_start()).map_err(|e| format!("`{s}`: {e}"))?;
            let re = match op {
                Op::Re | Op::NotRe => Some(
                    Regex::new(&format!("^(?:{value})$"))
                        .map_err(|e| format!("`{s}`: the regex of `{label}`: {e}"))?,
                ),
                _ => None,
            };
            matchers.push(Matcher {
                label,
                op,
                value,
                re,
            });
            rest = r.trim_start();
            if let Some(r) = rest.strip_prefix(',') {
                rest = r.trim_start();
            } else if !rest.starts_with('}') {
                return Err(format!("`{s}`: expected `,` or `}}` after a matcher"));
            }
        }
    }
    if !rest.trim().is_empty() {
        return Err(format!(
            "`{s}`: unexpected `{}` (only a series selector, no functions or ranges)",
            rest.trim()
        ));
    }
    Ok(Selector { name, matchers })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn selectors_match_like_promql() {
        let s = parse(r#"http_requests_total{code=~"5..", method!="GET" ,}"#).unwrap();
        assert_eq!(s.name, "http_requests_total");
        assert!(s.matches(&labels(&[("code", "503"), ("method", "POST")])));
        assert!(!s.matches(&labels(&[("code", "503"), ("method", "GET")])));
        // Anchored: "5.." does not match "1500".
        assert!(!s.matches(&labels(&[("code", "1500")])));
        // A missing label is "": `!=` matches it, `=~"5.."` does not.
        assert!(!s.matches(&labels(&[("method", "POST")])));
        let bare = parse("up").unwrap();
        assert!(bare.matchers.is_empty() && bare.matches(&[]));
        let esc = parse(r#"x{path="/a,\"b\"}"}"#).unwrap();
        assert!(esc.matches(&labels(&[("path", "/a,\"b\"}")])));
        let not = parse(r#"x{code!~"2.."}"#).unwrap();
        assert!(not.matches(&labels(&[("code", "500")])));
        assert!(!not.matches(&labels(&[("code", "200")])));
    }

    #[test]
    fn mistakes_are_named() {
        for (bad, says) in [
            ("", "starts with a metric name"),
            ("rate(x[5m])", "unexpected `(x[5m])`"),
            (r#"x{code="5"#, "not closed"),
            ("x{code=5}", "double quotes"),
            (r#"x{code=~"("}"#, "the regex of `code`"),
            (r#"x{code:"5"}"#, "expected `=`"),
            (r#"x{a="1" b="2"}"#, "expected `,` or `}`"),
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }
}
