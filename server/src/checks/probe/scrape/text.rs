//! The exposition formats' sample lines: Prometheus text 0.0.4 and
//! OpenMetrics 1.0 (`name{labels} value [timestamp] [# exemplar]`).
//!
//! Written here rather than taken from a crate: `prometheus-parse` splits
//! label values on `,` and `=` (so `path="/a,b"` becomes two labels) and
//! `openmetrics-parser` refuses valid Prometheus output whose series of one
//! family have different label sets; both were tried on real exposition
//! (docs/decisions/metrics-parser.md). Only sample lines matter for the
//! checks: `# HELP`/`# TYPE`/`# EOF` and other comments are skipped, and
//! only samples whose name the check asks for have their labels read.

use super::select::{is_name_char, name_len, quoted};

/// A sample's labels, in the order written.
pub type Labels = Vec<(String, String)>;

/// One sample: its labels (in the order written) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample<'a> {
    pub name: &'a str,
    pub labels: Labels,
    pub value: f64,
}

/// What a body held.
#[derive(Debug, Default)]
pub struct Parsed<'a> {
    pub samples: Vec<Sample<'a>>,
    /// Sample lines seen (wanted or not) and lines that could not be read.
    pub lines: usize,
    pub bad: usize,
    pub first_bad: Option<String>,
}

/// Go's float spellings as well as Rust's.
fn number(s: &str) -> Option<f64> {
    match s {
        "NaN" | "nan" => Some(f64::NAN),
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

fn labels(s: &str) -> Result<(Labels, &str), String> {
    let mut rest = s.trim_start();
    let mut out = Vec::new();
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((out, r));
        }
        let n = rest
            .char_indices()
            .find(|&(_, c)| !is_name_char(c))
            .map_or(rest.len(), |(i, _)| i);
        if n == 0 {
            return Err("expected a label name".into());
        }
        let name = rest[..n].to_string();
        rest = rest[n..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| format!("expected `=` after label `{name}`"))?;
        let (value, r) = quoted(rest.trim_start())?;
        out.push((name, value));
        rest = r.trim_start();
        if let Some(r) = rest.strip_prefix(',') {
            rest = r.trim_start();
        } else if !rest.starts_with('}') {
            return Err("expected `,` or `}` after a label".into());
        }
    }
}

fn line<'a>(l: &'a str, wanted: &dyn Fn(&str) -> bool) -> Result<Option<Sample<'a>>, String> {
    let n = name_len(l);
    if n == 0 {
        return Err("expected a metric name".into());
    }
    let name = &l[..n];
    if !wanted(name) {
        return Ok(None);
    }
    let mut rest = &l[n..];
    let mut ls = Vec::new();
    if let Some(r) = rest.strip_prefix('{') {
        let (parsed, r) = labels(r)?;
        ls = parsed;
        rest = r;
    }
    let token = rest
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("`{name}` has no value"))?;
    let value = number(token).ok_or_else(|| format!("`{name}`: `{token}` is not a number"))?;
    Ok(Some(Sample {
        name,
        labels: ls,
        value,
    }))
}

/// Reads `body`, keeping the samples `wanted` names. Timestamps and
/// exemplars are ignored: a sample counts at the time of the scrape.
pub fn parse<'a>(body: &'a str, wanted: &dyn Fn(&str) -> bool) -> Parsed<'a> {
    let mut p = Parsed::default();
    for l in body.lines() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        p.lines += 1;
        match line(l, wanted) {
            Ok(Some(s)) => p.samples.push(s),
            Ok(None) => {}
            Err(e) => {
                p.bad += 1;
                if p.first_bad.is_none() {
                    let shown: String = l.chars().take(120).collect();
                    p.first_bad = Some(format!("{e} in `{shown}`"));
                }
            }
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROM: &str = r#"# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code="500",path="/a,b=c"} 3 1700000000000
http_requests_total{code="200",path="/q\"x\\y"} 1.5e3
untyped_thing 4
# TYPE lat histogram
lat_bucket{le="0.1"} 1
lat_bucket{le="+Inf"} 2
lat_sum 0.3
"#;

    #[test]
    fn prometheus_text_with_awkward_label_values() {
        let p = parse(PROM, &|n| n == "http_requests_total");
        assert_eq!(p.lines, 6);
        assert_eq!(p.bad, 0);
        assert_eq!(p.samples.len(), 2);
        assert_eq!(
            p.samples[0].labels,
            vec![
                ("code".to_string(), "500".to_string()),
                ("path".to_string(), "/a,b=c".to_string())
            ]
        );
        assert_eq!(p.samples[1].labels[1].1, "/q\"x\\y");
        assert_eq!(p.samples[1].value, 1500.0);
        let all = parse(PROM, &|_| true);
        assert_eq!(all.samples.len(), 6);
        assert_eq!(all.samples[4].labels[0].1, "+Inf");
    }

    #[test]
    fn openmetrics_with_exemplars_and_eof() {
        let om = "# TYPE http_requests counter\nhttp_requests_total{code=\"500\"} 3 # {trace_id=\"x\"} 1.0\nhttp_requests_created{code=\"500\"} 1.7e9\nq NaN\nr +Inf 17.5\n# EOF\n";
        let p = parse(om, &|_| true);
        assert_eq!(p.bad, 0);
        assert_eq!(p.samples[0].value, 3.0);
        assert!(p.samples[2].value.is_nan());
        assert_eq!(p.samples[3].value, f64::INFINITY);
    }

    #[test]
    fn bad_lines_are_counted_and_the_first_shown() {
        let p = parse("ok 1\nbroken{a=\"x} 2\nnovalue\n<html>\n", &|_| true);
        assert_eq!((p.lines, p.bad, p.samples.len()), (4, 3, 1));
        assert!(p.first_bad.unwrap().contains("not closed"));
        // An unwanted name is not even read.
        let p = parse("x{garbage 1\n", &|n| n == "y");
        assert_eq!(p.bad, 0);
    }
}
