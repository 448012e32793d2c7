//! Direct-scrape metric checks ([`ScrapeCheck`]) and the handbooks' alert
//! rules as presets ([`metric_presets`]).
//!
//! A scrape check reads a target's `/metrics` (Prometheus text format or
//! OpenMetrics) every interval and computes one figure over a window, the
//! way the PromQL in each [`ScrapeMeasure`]'s doc would:
//! series are written as PromQL selectors (`name{label="v",code=~"5.."}`).

use serde::{Deserialize, Serialize};

use crate::{CheckSpec, HostCheck, PrometheusCheck, Resource};

/// Scrape `url` every interval; grade [`ScrapeMeasure`] over `window_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ScrapeCheck {
    /// The target's metrics URL, e.g. `http://api:8080/metrics` (http/https).
    pub url: String,
    pub measure: ScrapeMeasure,
    /// The window rates are taken over (seconds, 30 s to 1 day; at least
    /// two scrapes must fall in it).
    #[serde(default = "d_window")]
    pub window_s: u32,
    /// In the measure's unit: per second, percent, milliseconds (a
    /// histogram named `*_seconds`) or the gauge's own.
    pub warning: f64,
    pub critical: f64,
    /// Lower values are worse (warning ≥ critical then).
    #[serde(default)]
    pub below: bool,
    /// How long a bad value must last before it counts.
    #[serde(default)]
    pub sustained_s: u32,
    #[serde(default = "d_true")]
    pub tls_verify: bool,
}

/// What a scrape check computes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ScrapeMeasure {
    /// `sum(rate(series[window]))`, per second.
    Rate { series: String },
    /// `100 * sum(rate(numerator[w])) / sum(rate(denominator[w]))`, in
    /// percent: the error rate. No traffic in the window is ok ("no
    /// requests"), where PromQL would return nothing.
    Ratio {
        numerator: String,
        denominator: String,
    },
    /// `histogram_quantile(quantile, sum by (le) (rate(histogram_bucket[w])))`;
    /// `histogram` names the histogram without `_bucket`. A histogram whose
    /// name ends in `_seconds` is shown and graded in milliseconds.
    Quantile { histogram: String, quantile: f64 },
    /// The latest value of each matching series; the worst decides.
    Gauge { series: String },
}

fn d_window() -> u32 {
    300
}
fn d_true() -> bool {
    true
}

/// One of the handbooks' alert rules as a ready check.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricPreset {
    pub key: &'static str,
    pub title: &'static str,
    /// Where the rule comes from ("StackForge: error rate > 1 % …").
    pub source: &'static str,
    pub spec: CheckSpec,
}

/// The handbooks' metric rules (`docs/metrics/presets.md` lists them
/// against the handbooks). `url` is the target (scrape checks) or the
/// Prometheus server (query checks); host presets ignore it.
pub fn metric_presets(url: &str) -> Vec<MetricPreset> {
    let scrape = |measure, warning, critical| {
        CheckSpec::Scrape(ScrapeCheck {
            url: url.to_string(),
            measure,
            window_s: 300,
            warning,
            critical,
            below: false,
            sustained_s: 0,
            tls_verify: true,
        })
    };
    let http_errors = || ScrapeMeasure::Ratio {
        numerator: r#"http_requests_total{code=~"5.."}"#.into(),
        denominator: "http_requests_total".into(),
    };
    vec![
        MetricPreset {
            key: "error-rate",
            title: "Error rate: warning 1 %, critical 5 % of requests (5xx)",
            source: "MosAIc error_rate 1 %/5 %; StackForge > 1 %; Fulsk > 5 %; Wiki app 5.0",
            spec: scrape(http_errors(), 1.0, 5.0),
        },
        MetricPreset {
            key: "p95-latency",
            title: "p95 latency: warning 500 ms, critical 2000 ms",
            source: "StackForge > 500 ms (95th percentile); Fulsk API < 500 ms, HTTP > 2 s",
            spec: scrape(
                ScrapeMeasure::Quantile {
                    histogram: "http_request_duration_seconds".into(),
                    quantile: 0.95,
                },
                500.0,
                2000.0,
            ),
        },
        MetricPreset {
            key: "queue-lag",
            title: "Queue / consumer lag: warning 1,000, critical 10,000 messages",
            source: "StackForge: Kafka lag increasing; Fulsk: queue sizes",
            spec: scrape(
                ScrapeMeasure::Gauge {
                    series: "kafka_consumergroup_lag".into(),
                },
                1000.0,
                10000.0,
            ),
        },
        MetricPreset {
            key: "load-per-core",
            title: "Load average per core (this host): warning 80 %, critical 100 % for 5 min",
            source: "StackForge: load average > number of CPUs; Fulsk, MosAIc: load average",
            spec: CheckSpec::Host(HostCheck {
                resource: Resource::Load,
                path: None,
                engine: None,
                warning_pct: 80.0,
                critical_pct: 100.0,
                sustained_s: 300,
            }),
        },
        MetricPreset {
            key: "prometheus-error-rate",
            title: "Error rate from Prometheus: warning 1 %, critical 5 %",
            source: "the same rule where the team already runs Prometheus",
            spec: CheckSpec::Prometheus(PrometheusCheck {
                url: url.to_string(),
                query: r#"100 * sum(rate(http_requests_total{code=~"5.."}[5m])) / sum(rate(http_requests_total[5m]))"#.into(),
                warning: 1.0,
                critical: 5.0,
                below: false,
                sustained_s: 0,
                tls_verify: true,
                firing: None,
            }),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_unique_keys_and_carry_the_url() {
        let p = metric_presets("http://api:8080/metrics");
        let mut keys: Vec<_> = p.iter().map(|p| p.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), p.len());
        match &p[0].spec {
            CheckSpec::Scrape(s) => {
                assert_eq!(s.url, "http://api:8080/metrics");
                assert_eq!((s.warning, s.critical), (1.0, 5.0));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_measure_reads_as_tagged_json() {
        let m: ScrapeMeasure = serde_json::from_str(
            r#"{"kind":"quantile","histogram":"http_request_duration_seconds","quantile":0.95}"#,
        )
        .unwrap();
        assert_eq!(
            m,
            ScrapeMeasure::Quantile {
                histogram: "http_request_duration_seconds".into(),
                quantile: 0.95
            }
        );
    }
}
