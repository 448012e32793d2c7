//! Prometheus-query probe: one PromQL instant query (`GET
//! {url}/api/v1/query?query=…`) against a Prometheus-compatible server,
//! each returned series graded against the check's thresholds.
//!
//! - The worst series decides the status; the message lists the series
//!   (labels and value), worst first, at most [`SHOWN`] of them; each
//!   value is a metric named by its labels.
//! - No series is `ok` ("no series"): like an alerting rule that does not
//!   fire. In alerting-rule mode (`firing`, what a rules import makes of
//!   an expression it cannot split into query and threshold) every
//!   returned series is the check's level and none is "no series firing".
//!   A scalar result is one series without labels; a string or a NaN is
//!   critical with what came back.
//! - The server's own error (`bad_data: parse error at char 5: …`) is the
//!   message, critical. The same query is asked once when the check is
//!   saved ([`validate`]), so a typo is refused with the server's words.
//! - The optional bearer token is the check's sealed `password`. The URL
//!   goes through the same SSRF guard and shared clients as HTTP checks.

use std::time::{Duration, Instant};

use opsdeck_wire::{CheckStatus, FiringLevel, PrometheusCheck};
use reqwest::Url;
use serde::Deserialize;

use super::http::{fetch_capped, parse_url, Capped, HttpClients};
use super::net::one_line;
use super::{grade_above, grade_below, Probe};
use crate::net::guard;

/// Series listed in the message.
const SHOWN: usize = 5;
/// Largest answer read.
const BODY_CAP: usize = 4 * 1024 * 1024;

#[derive(Deserialize)]
struct Answer {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default, rename = "errorType")]
    error_type: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
#[serde(tag = "resultType", content = "result", rename_all = "lowercase")]
enum Data {
    Vector(Vec<VectorSample>),
    Scalar((f64, String)),
    Matrix(serde::de::IgnoredAny),
    String((f64, String)),
}

#[derive(Deserialize)]
struct VectorSample {
    metric: std::collections::BTreeMap<String, String>,
    value: (f64, String),
}

/// One returned series: its labels (`{job="api"}`) and value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: String,
    pub value: f64,
}

/// What the server answered, as series or its own error.
fn parse(body: &[u8]) -> Result<Vec<Series>, String> {
    let a: Answer = serde_json::from_slice(body)
        .map_err(|e| format!("not a Prometheus API answer: {}", one_line(&e.to_string())))?;
    if a.status != "success" {
        return Err(format!(
            "{}: {}",
            a.error_type.as_deref().unwrap_or("error"),
            one_line(a.error.as_deref().unwrap_or("the server gave no reason"))
        ));
    }
    let value = |s: &str| -> Result<f64, String> {
        s.parse::<f64>()
            .map_err(|_| format!("not a number: {}", one_line(s)))
    };
    match a.data {
        Some(Data::Vector(v)) => v
            .into_iter()
            .map(|s| {
                let labels = s
                    .metric
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(",");
                Ok(Series {
                    labels: format!("{{{labels}}}"),
                    value: value(&s.value.1)?,
                })
            })
            .collect(),
        Some(Data::Scalar((_, v))) => Ok(vec![Series {
            labels: "{}".into(),
            value: value(&v)?,
        }]),
        Some(Data::Matrix(..)) => {
            Err("a range vector: the query must give an instant vector or a scalar".into())
        }
        Some(Data::String((_, s))) => Err(format!("a string ({})", one_line(&s))),
        None => Err("the answer has no data".into()),
    }
}

/// Thresholds on a value: higher is worse, or lower with `below`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    pub warning: f64,
    pub critical: f64,
    pub below: bool,
}

impl Limits {
    pub fn of(c: &PrometheusCheck) -> Limits {
        Limits {
            warning: c.warning,
            critical: c.critical,
            below: c.below,
        }
    }

    /// NaN is critical: nothing sensible came back.
    pub fn grade(&self, v: f64) -> CheckStatus {
        if v.is_nan() {
            CheckStatus::Critical
        } else if self.below {
            grade_below(v, self.warning, self.critical)
        } else {
            grade_above(v, self.warning, self.critical)
        }
    }

    /// " (critical ≥ 5)" for a bad status, "" for ok.
    pub fn crossed(&self, status: CheckStatus) -> String {
        let (what, at) = match status {
            CheckStatus::Critical => ("critical", self.critical),
            CheckStatus::Warning => ("warning", self.warning),
            _ => return String::new(),
        };
        let op = if self.below { "≤" } else { "≥" };
        format!(" ({what} {op} {})", number(at))
    }
}

/// A value as people read it: integers without decimals, else at most 4.
pub fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string()
    }
}

/// Alerting-rule mode (`firing`): every returned series fires at the
/// check's level, shown with its labels and value; none is ok.
fn judge_firing(level: FiringLevel, mut series: Vec<Series>) -> Probe {
    if series.is_empty() {
        return Probe::ok("no series firing");
    }
    series.sort_by(|a, b| a.labels.cmp(&b.labels));
    let (shown, more) = listing(&series);
    let n = series.len();
    let message = format!("{n} series firing ({}): {shown}{more}", level.as_str());
    let p = Probe::new(level.status(), message).metric("series_firing", n as f64);
    with_series(p, &series)
}

/// The first [`SHOWN`] series as `labels value; …`, and `; and N more
/// series` when there are more.
fn listing(series: &[Series]) -> (String, String) {
    let shown: Vec<String> = series
        .iter()
        .take(SHOWN)
        .map(|s| format!("{} {}", s.labels, number(s.value)))
        .collect();
    let more = match series.len().saturating_sub(SHOWN) {
        0 => String::new(),
        n => format!("; and {n} more series"),
    };
    (shown.join("; "), more)
}

/// Each of the first 20 series as a metric named by its labels.
fn with_series(mut p: Probe, series: &[Series]) -> Probe {
    for s in series.iter().take(20) {
        p = p.metric(&s.labels, s.value);
    }
    p
}

/// Grades every series; the worst decides.
pub fn judge(c: &PrometheusCheck, series: Vec<Series>) -> Probe {
    if let Some(level) = c.firing {
        return judge_firing(level, series);
    }
    if series.is_empty() {
        return Probe::ok("no series (the query returned nothing)");
    }
    judge_limits(&Limits::of(c), series)
}

/// Grades every series against `limits` (at least one); the worst decides
/// and is listed first.
pub fn judge_limits(limits: &Limits, mut series: Vec<Series>) -> Probe {
    series.sort_by(|a, b| {
        limits
            .grade(b.value)
            .cmp(&limits.grade(a.value))
            .then(a.labels.cmp(&b.labels))
    });
    let worst = series
        .first()
        .map_or(CheckStatus::Ok, |s| limits.grade(s.value));
    let (shown, more) = listing(&series);
    let message = format!("{shown}{}{more}", limits.crossed(worst));
    with_series(Probe::new(worst, message), &series)
}

fn query_url(base: &str, query: &str) -> Result<Url, String> {
    let mut url = parse_url(base)?;
    let path = format!("{}/api/v1/query", url.path().trim_end_matches('/'));
    url.set_path(&path);
    url.set_query(None);
    url.query_pairs_mut().append_pair("query", query);
    Ok(url)
}

/// Asks the query once: its series, or why not (the server's own error).
async fn ask(
    http: &HttpClients,
    c: &PrometheusCheck,
    token: Option<&str>,
    timeout: Duration,
) -> Result<Vec<Series>, Failure> {
    let url = query_url(&c.url, &c.query).map_err(Failure::Url)?;
    guard::check_target(&url, http.policy()).map_err(|r| Failure::Url(format!("refused: {r}")))?;
    let client = http.client(c.tls_verify, 0).map_err(Failure::Reach)?;
    let mut req = client.get(url).timeout(timeout);
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        req = req.bearer_auth(t);
    }
    let Capped { status, body, .. } = fetch_capped(req, BODY_CAP, timeout)
        .await
        .map_err(Failure::Reach)?;
    // Prometheus answers 400/422 with its error document for a bad query.
    match parse(&body) {
        Ok(series) if status == 200 => Ok(series),
        Err(e) if body.starts_with(b"{") => Err(Failure::Query(e)),
        _ => Err(Failure::Reach(match status {
            401 | 403 => format!("HTTP {status}: the server refused the token"),
            s => format!("HTTP {s} from the server"),
        })),
    }
}

enum Failure {
    Url(String),
    Reach(String),
    Query(String),
}

/// One round.
pub async fn probe(
    http: &HttpClients,
    c: &PrometheusCheck,
    token: Option<&str>,
    timeout: Duration,
) -> Probe {
    let started = Instant::now();
    match ask(http, c, token, timeout).await {
        Ok(series) => judge(c, series).latency(started.elapsed()),
        Err(Failure::Query(e)) => Probe::critical(format!("the query failed: {e}")),
        Err(Failure::Url(e) | Failure::Reach(e)) => Probe::critical(e),
    }
}

/// Asks the server once when the check is saved: a query it refuses is an
/// error on `query` (its words), an unreachable server one on `url`.
pub async fn validate(
    http: &HttpClients,
    c: &PrometheusCheck,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(), String> {
    match ask(http, c, token, timeout).await {
        Ok(_) => Ok(()),
        Err(Failure::Query(e)) => Err(format!("query: {e}")),
        Err(Failure::Url(e)) => Err(format!("url: {e}")),
        Err(Failure::Reach(e)) => Err(format!("url: the server did not answer the query: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(warning: f64, critical: f64, below: bool) -> PrometheusCheck {
        PrometheusCheck {
            url: "http://127.0.0.1:9090".into(),
            query: "up".into(),
            warning,
            critical,
            below,
            sustained_s: 0,
            tls_verify: true,
            firing: None,
        }
    }

    #[test]
    fn vectors_scalars_and_errors_are_read() {
        let v = br#"{"status":"success","data":{"resultType":"vector","result":[
            {"metric":{"job":"api","instance":"a:1"},"value":[1.7e9,"0.07"]},
            {"metric":{},"value":[1.7e9,"2"]}]}}"#;
        let s = parse(v).unwrap();
        assert_eq!(s[0].labels, r#"{instance="a:1",job="api"}"#);
        assert_eq!(s[0].value, 0.07);
        assert_eq!(s[1].labels, "{}");
        let sc = br#"{"status":"success","data":{"resultType":"scalar","result":[1.7e9,"NaN"]}}"#;
        assert!(parse(sc).unwrap()[0].value.is_nan());
        let e = br#"{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected <op:*>"}"#;
        assert_eq!(
            parse(e).unwrap_err(),
            "bad_data: 1:5: parse error: unexpected <op:*>"
        );
        let m = br#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;
        assert!(parse(m).unwrap_err().contains("range vector"));
    }

    #[test]
    fn the_worst_series_decides_and_is_shown_first() {
        let c = check(0.01, 0.05, false);
        let p = judge(
            &c,
            vec![
                Series {
                    labels: r#"{job="a"}"#.into(),
                    value: 0.001,
                },
                Series {
                    labels: r#"{job="b"}"#.into(),
                    value: 0.08,
                },
                Series {
                    labels: r#"{job="c"}"#.into(),
                    value: 0.02,
                },
            ],
        );
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(
            p.message,
            r#"{job="b"} 0.08; {job="c"} 0.02; {job="a"} 0.001 (critical ≥ 0.05)"#
        );
        assert_eq!(p.metrics.len(), 3);
        assert_eq!(judge(&c, vec![]).status, CheckStatus::Ok);
        let below = check(20.0, 10.0, true);
        let p = judge(
            &below,
            vec![Series {
                labels: "{}".into(),
                value: 15.0,
            }],
        );
        assert_eq!(p.status, CheckStatus::Warning);
        assert!(p.message.ends_with("(warning ≤ 20)"), "{}", p.message);
    }

    #[test]
    fn alerting_rule_mode_fires_on_any_series() {
        let mut c = check(0.0, 0.0, false);
        c.firing = Some(FiringLevel::Warning);
        let p = judge(&c, vec![]);
        assert_eq!(
            (p.status, p.message.as_str()),
            (CheckStatus::Ok, "no series firing")
        );
        let p = judge(
            &c,
            vec![
                Series {
                    labels: r#"{job="b"}"#.into(),
                    value: 0.2,
                },
                Series {
                    labels: r#"{job="a"}"#.into(),
                    value: 1.0,
                },
            ],
        );
        assert_eq!(p.status, CheckStatus::Warning);
        assert_eq!(
            p.message,
            r#"2 series firing (warning): {job="a"} 1; {job="b"} 0.2"#
        );
        assert_eq!(p.metrics[0].name, "series_firing");
        c.firing = Some(FiringLevel::Critical);
        let one = vec![Series {
            labels: "{}".into(),
            value: 1.0,
        }];
        assert_eq!(judge(&c, one).status, CheckStatus::Critical);
    }

    #[test]
    fn the_query_url_keeps_a_path_prefix() {
        let u = query_url("http://prom:9090/prometheus/", "rate(x[5m]) > 0").unwrap();
        assert_eq!(
            u.as_str(),
            "http://prom:9090/prometheus/api/v1/query?query=rate%28x%5B5m%5D%29+%3E+0"
        );
        assert!(query_url("file:///etc/passwd", "up").is_err());
    }
}
