//! Direct-scrape metric checks: read a target's `/metrics` every interval
//! and compute what PromQL would over a window, without a Prometheus.
//!
//! - Each round scrapes once ([`scrape`]), keeps the samples the measure
//!   names in the check's [`Window`] (in the probing process's memory:
//!   points older than the window are dropped, at most [`MAX_SERIES`]
//!   series), and computes the figure ([`Window::measure`]): the rate, the
//!   error-rate ratio in percent, the histogram quantile (milliseconds for
//!   a `*_seconds` histogram) or each gauge series' value.
//! - Until two scrapes fall in the window a rate is unknown ("collecting");
//!   a new checks leader starts collecting afresh.
//! - A ratio with no traffic in the window is ok ("no requests"); a
//!   numerator series that does not exist yet (no 5xx so far) counts 0.
//! - The target's answer must be an exposition: an HTTP error, a body
//!   whose lines cannot be read, or a measure whose series are all absent
//!   is critical with the reason. The optional bearer token is the check's
//!   sealed password; the URL passes the SSRF guard like HTTP checks.

pub mod math;
pub mod select;
pub mod text;

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use opsdeck_wire::{CheckStatus, ScrapeCheck, ScrapeMeasure};

use super::http::{fetch_capped, parse_url, Capped, HttpClients};
use super::prometheus::{judge_limits, number, Limits, Series};
use super::Probe;
use crate::net::guard;
use select::Selector;

/// Series kept per check; more are ignored (and said so).
pub const MAX_SERIES: usize = 2000;
/// Largest body read.
const BODY_CAP: usize = 16 * 1024 * 1024;

/// The selectors a measure reads, parsed; index 0 (and 1 for a ratio).
fn selectors(m: &ScrapeMeasure) -> Result<Vec<Selector>, String> {
    Ok(match m {
        ScrapeMeasure::Rate { series } | ScrapeMeasure::Gauge { series } => {
            vec![select::parse(series)?]
        }
        ScrapeMeasure::Ratio {
            numerator,
            denominator,
        } => vec![
            select::parse(numerator).map_err(|e| format!("numerator: {e}"))?,
            select::parse(denominator).map_err(|e| format!("denominator: {e}"))?,
        ],
        ScrapeMeasure::Quantile { histogram, .. } => {
            let s = select::parse(histogram)?;
            if s.name.ends_with("_bucket") {
                return Err(format!(
                    "name the histogram without `_bucket` (`{}`)",
                    s.name.trim_end_matches("_bucket")
                ));
            }
            if s.matchers.iter().any(|m| m.label == "le") {
                return Err("a histogram selector cannot match `le`".into());
            }
            vec![s.renamed(format!("{}_bucket", s.name))]
        }
    })
}

/// Checks a scrape check's own fields (not the target).
pub fn check_fields(c: &ScrapeCheck, interval_s: u32) -> Result<(), (&'static str, String)> {
    selectors(&c.measure).map_err(|e| ("measure", e))?;
    if let ScrapeMeasure::Quantile { quantile, .. } = c.measure {
        if !(0.0..=1.0).contains(&quantile) || quantile == 0.0 {
            return Err(("measure", "the quantile is between 0 and 1 (0.95)".into()));
        }
    }
    if !(30..=86_400).contains(&c.window_s) {
        return Err(("window_s", "the window is 30 s to 1 day".into()));
    }
    if !matches!(c.measure, ScrapeMeasure::Gauge { .. }) && c.window_s < 2 * interval_s {
        return Err((
            "window_s",
            format!(
                "the window must hold at least two scrapes: at least {} s at an interval of {interval_s} s",
                2 * interval_s
            ),
        ));
    }
    if c.window_s / interval_s.max(1) > 1440 {
        return Err((
            "window_s",
            "at most 1,440 scrapes per window: lengthen the interval or shorten the window".into(),
        ));
    }
    Ok(())
}

/// A measure's recent samples in the probing process.
#[derive(Debug, Default)]
pub struct Window {
    /// What the points were taken for: a changed measure starts afresh.
    for_measure: Option<(String, ScrapeMeasure)>,
    /// (selector index, labels) → (seconds, value), oldest first.
    series: HashMap<(usize, text::Labels), VecDeque<(f64, f64)>>,
    /// Samples of new series the last scrape could not keep.
    pub dropped: usize,
}

impl Window {
    fn reset_for(&mut self, c: &ScrapeCheck) {
        let key = (c.url.clone(), c.measure.clone());
        if self.for_measure.as_ref() != Some(&key) {
            *self = Window {
                for_measure: Some(key),
                ..Window::default()
            };
        }
    }

    /// Adds one scrape's samples at `t` (seconds) and forgets points older
    /// than `window` seconds.
    pub fn add(&mut self, sels: &[Selector], samples: &[text::Sample<'_>], t: f64, window: f64) {
        self.dropped = 0;
        for s in samples {
            for (i, sel) in sels.iter().enumerate() {
                if s.name != sel.name || !sel.matches(&s.labels) {
                    continue;
                }
                let mut labels = s.labels.clone();
                labels.sort();
                let key = (i, labels);
                if !self.series.contains_key(&key) && self.series.len() >= MAX_SERIES {
                    self.dropped += 1;
                    continue;
                }
                self.series.entry(key).or_default().push_back((t, s.value));
            }
        }
        self.series.retain(|_, pts| {
            while pts.front().is_some_and(|p| p.0 <= t - window) {
                pts.pop_front();
            }
            !pts.is_empty()
        });
    }

    /// `sum(rate(selector i))` over the window ending at `t`, and whether
    /// any series had two points.
    fn rate_sum(&self, i: usize, t: f64, window: f64) -> (f64, bool) {
        let mut sum = 0.0;
        let mut any = false;
        for ((si, _), pts) in &self.series {
            if *si != i {
                continue;
            }
            let pts: Vec<(f64, f64)> = pts.iter().copied().collect();
            if let Some(r) = math::rate(&pts, t, window) {
                sum += r;
                any = true;
            }
        }
        (sum, any)
    }

    fn present(&self, i: usize) -> bool {
        self.series.keys().any(|(si, _)| *si == i)
    }

    /// The figure at `t`: one series (or one per gauge series), or why not.
    pub fn measure(&self, m: &ScrapeMeasure, t: f64, window: f64) -> Result<Vec<Series>, String> {
        let collecting =
            || format!("collecting: a rate needs two scrapes within the {window:.0} s window");
        match m {
            ScrapeMeasure::Gauge { series } => {
                let mut out: Vec<Series> = self
                    .series
                    .iter()
                    .filter(|(_, pts)| pts.back().is_some_and(|p| p.0 == t))
                    .map(|((_, labels), pts)| Series {
                        labels: label_text(labels),
                        value: pts.back().map_or(f64::NAN, |p| p.1),
                    })
                    .collect();
                if out.is_empty() {
                    return Err(format!("no series `{series}` in the last scrape"));
                }
                out.sort_by(|a, b| a.labels.cmp(&b.labels));
                Ok(out)
            }
            ScrapeMeasure::Rate { series } => {
                if !self.present(0) {
                    return Err(format!("no series `{series}` on the target"));
                }
                match self.rate_sum(0, t, window) {
                    (v, true) => Ok(vec![one("rate/s", v)]),
                    _ => Err(collecting()),
                }
            }
            ScrapeMeasure::Ratio { denominator, .. } => {
                if !self.present(1) {
                    return Err(format!("no series `{denominator}` on the target"));
                }
                let (den, ok) = self.rate_sum(1, t, window);
                if !ok {
                    return Err(collecting());
                }
                let (num, _) = self.rate_sum(0, t, window);
                if den == 0.0 {
                    return Ok(Vec::new());
                }
                Ok(vec![one("percent", 100.0 * num / den)])
            }
            ScrapeMeasure::Quantile {
                histogram,
                quantile,
            } => {
                if !self.present(0) {
                    return Err(format!(
                        "no histogram `{histogram}` (its `_bucket` series) on the target"
                    ));
                }
                // sum by (le) (rate(…_bucket[w])).
                let mut by_le: Vec<(f64, f64)> = Vec::new();
                let mut any = false;
                for ((_, labels), pts) in &self.series {
                    let Some(le) = labels
                        .iter()
                        .find(|(k, _)| k == "le")
                        .and_then(|(_, v)| text_number(v))
                    else {
                        continue;
                    };
                    let pts: Vec<(f64, f64)> = pts.iter().copied().collect();
                    if let Some(r) = math::rate(&pts, t, window) {
                        any = true;
                        match by_le.iter_mut().find(|(b, _)| *b == le) {
                            Some(x) => x.1 += r,
                            None => by_le.push((le, r)),
                        }
                    }
                }
                if !any {
                    return Err(collecting());
                }
                let q = math::quantile(*quantile, &by_le);
                if q.is_nan() {
                    return Ok(Vec::new());
                }
                let ms = histogram_in_ms(histogram);
                Ok(vec![one(
                    if ms { "ms" } else { "value" },
                    if ms { q * 1000.0 } else { q },
                )])
            }
        }
    }
}

fn text_number(v: &str) -> Option<f64> {
    match v {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        v => v.parse().ok(),
    }
}

fn histogram_in_ms(histogram: &str) -> bool {
    histogram
        .split('{')
        .next()
        .is_some_and(|n| n.trim().ends_with("_seconds"))
}

fn one(unit: &str, value: f64) -> Series {
    Series {
        labels: unit.to_string(),
        value,
    }
}

fn label_text(labels: &[(String, String)]) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{{{}}}", inner.join(","))
}

/// What the window says, graded: gauges per series (the worst decides),
/// the other measures as one figure with its unit.
pub fn judge(c: &ScrapeCheck, w: &Window, t: f64) -> Probe {
    let limits = Limits {
        warning: c.warning,
        critical: c.critical,
        below: c.below,
    };
    let p = match w.measure(&c.measure, t, c.window_s as f64) {
        Ok(series) if series.is_empty() => match c.measure {
            ScrapeMeasure::Ratio { .. } => Probe::ok("no requests in the window"),
            _ => Probe::ok("no observations in the window"),
        },
        Ok(series) if matches!(c.measure, ScrapeMeasure::Gauge { .. }) => {
            judge_limits(&limits, series)
        }
        Ok(series) => {
            let s = &series[0];
            let status = limits.grade(s.value);
            let (what, metric) = match &c.measure {
                ScrapeMeasure::Rate { .. } => ("rate", "rate_per_s"),
                ScrapeMeasure::Ratio { .. } => ("error rate", "ratio_pct"),
                ScrapeMeasure::Quantile { quantile, .. } => {
                    let p = format!("p{}", number(quantile * 100.0));
                    let unit = if s.labels == "ms" { "ms" } else { "" };
                    let text = format!(
                        "{p} {}{}{} over {} s",
                        number(s.value),
                        if unit.is_empty() { "" } else { " " },
                        unit,
                        c.window_s
                    );
                    return with_dropped(
                        Probe::new(status, format!("{text}{}", limits.crossed(status)))
                            .metric("quantile", s.value),
                        w,
                    );
                }
                ScrapeMeasure::Gauge { .. } => ("value", "value"),
            };
            let unit = match s.labels.as_str() {
                "percent" => " %",
                "rate/s" => "/s",
                _ => "",
            };
            let text = format!(
                "{what} {}{unit} over {} s{}",
                number(s.value),
                c.window_s,
                limits.crossed(status)
            );
            Probe::new(status, text).metric(metric, s.value)
        }
        Err(e) if e.starts_with("collecting") => Probe::new(CheckStatus::Unknown, e),
        Err(e) => Probe::critical(e),
    };
    with_dropped(p, w)
}

fn with_dropped(p: Probe, w: &Window) -> Probe {
    if w.dropped == 0 {
        return p;
    }
    Probe {
        message: format!(
            "{} ({} series over {MAX_SERIES} ignored)",
            p.message, w.dropped
        ),
        ..p
    }
}

/// Reads the target once: its body, or why not.
pub async fn scrape(
    http: &HttpClients,
    c: &ScrapeCheck,
    token: Option<&str>,
    timeout: Duration,
) -> Result<String, String> {
    let url = parse_url(&c.url)?;
    guard::check_target(&url, http.policy()).map_err(|r| format!("refused: {r}"))?;
    let client = http.client(c.tls_verify, 0)?;
    let mut req = client.get(url).timeout(timeout).header(
        reqwest::header::ACCEPT,
        "text/plain;version=0.0.4;q=1, application/openmetrics-text;version=1.0.0;q=0.5, */*;q=0.1",
    );
    if let Some(t) = token.filter(|t| !t.is_empty()) {
        req = req.bearer_auth(t);
    }
    let Capped { status, body, cut } = fetch_capped(req, BODY_CAP, timeout).await?;
    match status {
        200 => {}
        401 | 403 => {
            return Err(format!(
                "HTTP {status}: the target refused the request (token?)"
            ))
        }
        s => return Err(format!("HTTP {s} from the target")),
    }
    if cut {
        return Err(format!("the answer is over {} MiB", BODY_CAP >> 20));
    }
    String::from_utf8(body).map_err(|_| "the answer is not UTF-8 text".to_string())
}

/// Parses `body` for the measure and adds it to `w` at `t`.
pub fn take(c: &ScrapeCheck, w: &mut Window, body: &str, t: f64) -> Result<(), String> {
    let sels = selectors(&c.measure)?;
    let parsed = text::parse(body, &|n| sels.iter().any(|s| s.name == n));
    if parsed.lines == 0 || (parsed.bad > 0 && parsed.bad * 2 >= parsed.lines) {
        return Err(match parsed.first_bad {
            Some(e) => format!("not a metrics exposition: {e}"),
            None => "not a metrics exposition: no samples".into(),
        });
    }
    w.reset_for(c);
    w.add(&sels, &parsed.samples, t, c.window_s as f64);
    Ok(())
}

/// One round: scrape, remember, compute, grade.
pub async fn probe(
    http: &HttpClients,
    c: &ScrapeCheck,
    window: &std::sync::Mutex<Window>,
    token: Option<&str>,
    timeout: Duration,
) -> Probe {
    let started = Instant::now();
    let body = match scrape(http, c, token, timeout).await {
        Ok(b) => b,
        Err(e) => return Probe::critical(e),
    };
    let elapsed = started.elapsed();
    let t = now_s();
    let mut w = window.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = take(c, &mut w, &body, t) {
        return Probe::critical(e);
    }
    judge(c, &w, t).latency(elapsed)
}

fn now_s() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

/// On save: the fields, then one scrape that must answer with an
/// exposition (the measure's series may appear later: a 5xx counter often
/// exists only after the first error).
pub async fn validate(
    http: &HttpClients,
    c: &ScrapeCheck,
    interval_s: u32,
    token: Option<&str>,
    timeout: Duration,
) -> Result<(), (&'static str, String)> {
    check_fields(c, interval_s)?;
    let body = scrape(http, c, token, timeout)
        .await
        .map_err(|e| ("url", format!("the target did not answer: {e}")))?;
    let mut w = Window::default();
    take(c, &mut w, &body, now_s()).map_err(|e| ("url", e))
}

#[cfg(test)]
mod tests;
