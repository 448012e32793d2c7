//! The two small readers a rules import needs, never a PromQL parser:
//! [`split_comparison`] finds a top-level `<lhs> <op> <number>` in an alert
//! expression, and [`duration`] reads a Prometheus duration (`1h30m`).
//!
//! The scanner walks the expression once, tracking nesting of `()`, `[]`
//! and `{}`, string literals (`"…"`, `'…'` with `\` escapes, raw
//! `` `…` ``) and `#` comments, so an operator inside a function call, a
//! label matcher or a string never counts. At nesting depth 0 it notes
//! every comparison operator and the set operators `and`, `or`, `unless`
//! (whole words). Comparison operators share one precedence level above
//! the set operators, so an expression with exactly one top-level
//! comparison and no set operator is exactly `lhs op rhs`.

/// A top-level comparison of an expression with a number.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// The expression compared (trimmed), the check's query.
    pub lhs: String,
    /// `>` / `>=` (false) or `<` / `<=` (true): lower values are worse.
    pub below: bool,
    /// `>=` or `<=`.
    pub inclusive: bool,
    pub threshold: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Gt,
    Ge,
    Lt,
    Le,
    /// `==` or `!=`: a comparison, but not a threshold.
    Other,
}

impl Op {
    fn flip(self) -> Op {
        match self {
            Op::Gt => Op::Lt,
            Op::Ge => Op::Le,
            Op::Lt => Op::Gt,
            Op::Le => Op::Ge,
            Op::Other => Op::Other,
        }
    }
}

/// What the scan of one expression found at depth 0.
struct Scan {
    /// Byte range and kind of each top-level comparison operator.
    comparisons: Vec<(usize, usize, Op)>,
    set_ops: bool,
    balanced: bool,
}

fn scan(expr: &str) -> Scan {
    let b = expr.as_bytes();
    let mut depth: i32 = 0;
    let mut out = Scan {
        comparisons: Vec::new(),
        set_ops: false,
        balanced: true,
    };
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                // A string: skip to its closing quote (escapes outside raw).
                i += 1;
                while i < b.len() && b[i] != c {
                    if b[i] == b'\\' && c != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
                if i >= b.len() {
                    out.balanced = false;
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth < 0 {
                    out.balanced = false;
                }
            }
            b'>' | b'<' | b'=' | b'!' if depth == 0 => {
                let next = b.get(i + 1).copied();
                let op = match (c, next) {
                    (b'>', Some(b'=')) => Some((2, Op::Ge)),
                    (b'<', Some(b'=')) => Some((2, Op::Le)),
                    (b'>', _) => Some((1, Op::Gt)),
                    (b'<', _) => Some((1, Op::Lt)),
                    (b'=', Some(b'=')) | (b'!', Some(b'=')) => Some((2, Op::Other)),
                    _ => None,
                };
                if let Some((len, op)) = op {
                    out.comparisons.push((i, i + len, op));
                    i += len;
                    continue;
                }
            }
            c if depth == 0 && (c.is_ascii_alphabetic() || c == b'_' || c == b':') => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':')
                {
                    i += 1;
                }
                let word = &expr[start..i];
                if ["and", "or", "unless"]
                    .iter()
                    .any(|w| w.eq_ignore_ascii_case(word))
                {
                    out.set_ops = true;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    if depth != 0 {
        out.balanced = false;
    }
    out
}

/// A PromQL number literal as a threshold (`0.05`, `-1`, `1e3`, `5`);
/// not `Inf`, `NaN` or hexadecimal.
fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    let body = s.strip_prefix(['+', '-']).unwrap_or(s);
    if body.is_empty() || !body.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return None;
    }
    if body.starts_with("0x") || body.starts_with("0X") {
        return None;
    }
    s.parse::<f64>().ok().filter(|v| v.is_finite())
}

/// `lhs op number` (or `number op rhs`, turned round) at the top level of
/// `expr`, with `op` one of `>`, `>=`, `<`, `<=` and no `bool` modifier;
/// `None` for anything else (the import then fires on any series).
pub fn split_comparison(expr: &str) -> Option<Comparison> {
    let stripped = strip_comments(expr);
    let expr = stripped.as_str();
    let s = scan(expr);
    if !s.balanced || s.set_ops || s.comparisons.len() != 1 {
        return None;
    }
    let (start, end, op) = s.comparisons[0];
    let left = expr[..start].trim();
    let right = expr[end..].trim();
    // `x > bool 1` gives 0/1 for every series: it always returns series.
    let bool_modifier = right
        .strip_prefix("bool")
        .is_some_and(|r| r.starts_with(|c: char| c.is_whitespace() || c == '('));
    if bool_modifier || left.is_empty() || right.is_empty() {
        return None;
    }
    let (lhs, op, threshold) = match (number(left), number(right)) {
        (None, Some(t)) => (left, op, t),
        (Some(t), None) => (right, op.flip(), t),
        _ => return None,
    };
    let (below, inclusive) = match op {
        Op::Gt => (false, false),
        Op::Ge => (false, true),
        Op::Lt => (true, false),
        Op::Le => (true, true),
        Op::Other => return None,
    };
    Some(Comparison {
        lhs: lhs.to_owned(),
        below,
        inclusive,
        threshold,
    })
}

/// Walks `expr` outside string literals and comments: `keep(c)` decides
/// for each such character; strings are kept whole, comments dropped.
fn outside_strings(expr: &str, mut keep: impl FnMut(char, &mut String)) -> String {
    let mut out = String::with_capacity(expr.len());
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    for c in expr.chars() {
        if comment {
            if c == '\n' {
                comment = false;
                keep(c, &mut out);
            }
            continue;
        }
        if let Some(q) = quote {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' && q != '`' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '#' => comment = true,
            '"' | '\'' | '`' => {
                quote = Some(c);
                out.push(c);
            }
            c => keep(c, &mut out),
        }
    }
    out
}

/// The expression without `#` comments.
pub fn strip_comments(expr: &str) -> String {
    outside_strings(expr, |c, out| out.push(c))
}

/// The expression without white space or comments outside strings: rules
/// that differ only in layout compare equal.
pub fn normalise(expr: &str) -> String {
    outside_strings(expr, |c, out| {
        if !c.is_whitespace() {
            out.push(c)
        }
    })
}

/// A Prometheus duration in milliseconds: units `ms`, `s`, `m`, `h`, `d`,
/// `w`, `y` (365 d), largest first, each at most once (`1h30m`, `5m`,
/// `90s`, `500ms`); `0` alone is zero.
pub fn duration(s: &str) -> Option<u64> {
    const UNITS: [(&str, u64); 7] = [
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let s = s.trim();
    if s == "0" {
        return Some(0);
    }
    let b = s.as_bytes();
    let mut i = 0;
    let mut total: u64 = 0;
    let mut last_unit = None::<usize>;
    if b.is_empty() {
        return None;
    }
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let n: u64 = s[start..i].parse().ok()?;
        let ustart = i;
        while i < b.len() && b[i].is_ascii_alphabetic() {
            i += 1;
        }
        let unit = &s[ustart..i];
        let idx = UNITS.iter().position(|(u, _)| *u == unit)?;
        if last_unit.is_some_and(|l| idx <= l) {
            return None;
        }
        last_unit = Some(idx);
        total = total.checked_add(n.checked_mul(UNITS[idx].1)?)?;
    }
    Some(total)
}

/// The value of an equality matcher on `label` in `expr` (`job="wiki"`,
/// `job='wiki'`): the one value when every such matcher agrees.
pub fn matcher_value(expr: &str, label: &str) -> Option<String> {
    let re = regex::Regex::new(&format!(
        r#"(?:^|[{{,\s]){}\s*=\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)')"#,
        regex::escape(label)
    ))
    .ok()?;
    let mut found: Option<String> = None;
    for c in re.captures_iter(expr) {
        let v = c.get(1).or_else(|| c.get(2))?.as_str().to_owned();
        match &found {
            Some(f) if *f != v => return None,
            _ => found = Some(v),
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(expr: &str) -> Option<(String, bool, f64)> {
        split_comparison(expr).map(|c| (c.lhs, c.below, c.threshold))
    }

    #[test]
    fn a_top_level_comparison_with_a_number_splits() {
        let err = r#"sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m])) > 0.01"#;
        assert_eq!(
            cmp(err),
            Some((
                r#"sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))"#
                    .into(),
                false,
                0.01
            ))
        );
        assert_eq!(
            cmp("node_filesystem_avail_bytes / node_filesystem_size_bytes <= 0.1"),
            Some((
                "node_filesystem_avail_bytes / node_filesystem_size_bytes".into(),
                true,
                0.1
            ))
        );
        // The number on the left is turned round.
        assert_eq!(
            cmp("5 < node_load1"),
            Some(("node_load1".into(), false, 5.0))
        );
        assert_eq!(cmp("x >= 1e3").map(|c| c.2), Some(1000.0));
        assert_eq!(cmp("x > -1").map(|c| c.2), Some(-1.0));
        let c = split_comparison("a >= 2").unwrap();
        assert!(c.inclusive && !c.below);
    }

    #[test]
    fn operators_inside_calls_matchers_and_strings_do_not_count() {
        // Only the outer `>` counts; `>` in the string and `<` in the
        // matcher's regex are inside braces.
        assert_eq!(
            cmp(r#"max(x{path=">", le!~"<1"}) > 3"#).map(|c| c.0),
            Some(r#"max(x{path=">", le!~"<1"})"#.into())
        );
        assert_eq!(
            cmp("clamp_max(x > 1, 5) > 2").map(|c| c.0),
            Some("clamp_max(x > 1, 5)".into())
        );
        assert_eq!(cmp("x > 1 # note: y > 2\n").map(|c| c.2), Some(1.0));
    }

    #[test]
    fn everything_else_is_complex() {
        for e in [
            "up == 0",
            "absent(up{job=\"api\"})",
            "x > y",
            "x > bool 1",
            "x > 1 and y < 2",
            "x > 1 unless on(job) z",
            "x > 1 or vector(0)",
            "a > 1 < 5",
            "x > Inf",
            "x > 0x10",
            "sum(x",
            "x > \"1",
            "increase(x[5m])",
        ] {
            assert_eq!(split_comparison(e), None, "{e}");
        }
        // Words that merely contain `and`/`or` are metric names.
        assert!(split_comparison("random_errors_total > 1").is_some());
        assert!(split_comparison("order_total{job=\"a\"} > 1").is_some());
    }

    #[test]
    fn durations_as_prometheus_reads_them() {
        assert_eq!(duration("5m"), Some(300_000));
        assert_eq!(duration("1h30m"), Some(5_400_000));
        assert_eq!(duration("30s"), Some(30_000));
        assert_eq!(duration("1d"), Some(86_400_000));
        assert_eq!(duration("1w"), Some(604_800_000));
        assert_eq!(duration("1s500ms"), Some(1500));
        assert_eq!(duration("0"), Some(0));
        assert_eq!(duration("0s"), Some(0));
        for bad in [
            "",
            "5",
            "5 m",
            "m",
            "30m1h",
            "5mm",
            "1.5h",
            "5 minutes",
            "-5m",
        ] {
            assert_eq!(duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn matchers_name_the_service() {
        assert_eq!(
            matcher_value(r#"rate(x{job="wiki", code=~"5.."}[5m]) > 1"#, "job"),
            Some("wiki".into())
        );
        assert_eq!(matcher_value("up{job='a'} == 0", "job"), Some("a".into()));
        assert_eq!(matcher_value(r#"x{job="a"} / y{job="b"}"#, "job"), None);
        assert_eq!(matcher_value(r#"x{job=~"a"}"#, "job"), None);
        assert_eq!(matcher_value(r#"x{other_job="a"}"#, "job"), None);
        assert_eq!(
            normalise("sum(x)\n   /  sum(y{a=\"b  c\"}) # why"),
            "sum(x)/sum(y{a=\"b  c\"})"
        );
    }
}
