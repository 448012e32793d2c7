//! The check form's fields as typed, and the spec they parse into: what
//! each kind shows, client-side problems by field key, and the form key of a
//! field the API names.

use super::*;

/// The form's fields, as typed (numbers are parsed on submit).
#[derive(Clone, Copy)]
pub(super) struct Fields {
    pub(super) kind: RwSignal<String>,
    pub(super) name: RwSignal<String>,
    pub(super) interval_s: RwSignal<String>,
    pub(super) timeout_ms: RwSignal<String>,
    pub(super) fail_after: RwSignal<String>,
    pub(super) recover_after: RwSignal<String>,
    pub(super) enabled: RwSignal<bool>,
    // HTTP
    pub(super) url: RwSignal<String>,
    pub(super) method: RwSignal<String>,
    pub(super) expect_status: RwSignal<String>,
    pub(super) body_contains: RwSignal<String>,
    pub(super) body_regex: RwSignal<String>,
    pub(super) warning_ms: RwSignal<String>,
    pub(super) critical_ms: RwSignal<String>,
    pub(super) tls_verify: RwSignal<bool>,
    pub(super) max_redirects: RwSignal<String>,
    // TCP, TLS
    pub(super) host: RwSignal<String>,
    pub(super) port: RwSignal<String>,
    pub(super) server_name: RwSignal<String>,
    pub(super) warning_days: RwSignal<String>,
    pub(super) critical_days: RwSignal<String>,
    // Databases
    pub(super) password: RwSignal<String>,
    pub(super) clear_password: RwSignal<bool>,
    pub(super) connections_warning_pct: RwSignal<String>,
    pub(super) connections_critical_pct: RwSignal<String>,
    pub(super) cache_hit_warning_pct: RwSignal<String>,
    pub(super) replication_lag_warning_s: RwSignal<String>,
    pub(super) replication_lag_critical_s: RwSignal<String>,
    pub(super) threads_warning: RwSignal<String>,
    pub(super) threads_critical: RwSignal<String>,
    pub(super) memory_warning_pct: RwSignal<String>,
    pub(super) memory_critical_pct: RwSignal<String>,
    pub(super) memory_warning_mb: RwSignal<String>,
    // Containers, host
    pub(super) restarts_warning: RwSignal<String>,
    pub(super) restarts_critical: RwSignal<String>,
    pub(super) resource: RwSignal<String>,
    pub(super) path: RwSignal<String>,
    /// A host check's engine (empty: the Opsdeck host).
    pub(super) engine: RwSignal<String>,
    pub(super) warning_pct: RwSignal<String>,
    pub(super) critical_pct: RwSignal<String>,
    pub(super) sustained_s: RwSignal<String>,
    // Heartbeat
    pub(super) period_s: RwSignal<String>,
    pub(super) grace_s: RwSignal<String>,
    // Log pattern
    pub(super) pattern: RwSignal<String>,
    pub(super) pattern_regex: RwSignal<bool>,
    pub(super) level: RwSignal<String>,
    pub(super) window_s: RwSignal<String>,
    pub(super) warning_count: RwSignal<String>,
    pub(super) critical_count: RwSignal<String>,
    // Prometheus query
    pub(super) query: RwSignal<String>,
    pub(super) warning: RwSignal<String>,
    pub(super) critical: RwSignal<String>,
    pub(super) below: RwSignal<bool>,
    // Metric scrape (also url, window_s, warning, critical, below)
    pub(super) measure: RwSignal<String>,
    pub(super) series: RwSignal<String>,
    pub(super) numerator: RwSignal<String>,
    pub(super) denominator: RwSignal<String>,
    pub(super) histogram: RwSignal<String>,
    pub(super) quantile: RwSignal<String>,
    /// `""`: thresholds; `warning`/`critical`: alerting-rule mode.
    pub(super) firing: RwSignal<String>,
    // Capacity forecast
    pub(super) forecast_resource: RwSignal<String>,
    pub(super) forecast_warning_days: RwSignal<String>,
    pub(super) forecast_critical_days: RwSignal<String>,
}

pub(super) fn s(v: &str) -> RwSignal<String> {
    RwSignal::new(v.to_string())
}

pub(super) fn num_text(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        v.to_string()
    }
}

impl Fields {
    /// The password to send: none (kept, or the kind has none), empty
    /// (cleared) or the new one.
    pub(super) fn password_input(&self, kind: &str) -> Option<String> {
        if !uses_password(kind) {
            None
        } else if self.clear_password.get_untracked() {
            Some(String::new())
        } else {
            let p = self.password.get_untracked();
            (!p.is_empty()).then_some(p)
        }
    }

    pub(super) fn new(kind: &str) -> Fields {
        Fields {
            kind: s(kind),
            name: s(""),
            interval_s: s("60"),
            timeout_ms: s("10000"),
            fail_after: s("2"),
            recover_after: s("2"),
            enabled: RwSignal::new(true),
            url: s(""),
            method: s("GET"),
            expect_status: s(""),
            body_contains: s(""),
            body_regex: s(""),
            warning_ms: s("1000"),
            critical_ms: s("3000"),
            tls_verify: RwSignal::new(true),
            max_redirects: s("0"),
            host: s(""),
            port: s(""),
            server_name: s(""),
            warning_days: s("30"),
            critical_days: s("7"),
            password: s(""),
            clear_password: RwSignal::new(false),
            connections_warning_pct: s("80"),
            connections_critical_pct: s("95"),
            cache_hit_warning_pct: s(""),
            replication_lag_warning_s: s("30"),
            replication_lag_critical_s: s("300"),
            threads_warning: s("140"),
            threads_critical: s("180"),
            memory_warning_pct: s("80"),
            memory_critical_pct: s("95"),
            memory_warning_mb: s(""),
            restarts_warning: s("1"),
            restarts_critical: s("3"),
            resource: s("cpu"),
            path: s(""),
            engine: s(""),
            warning_pct: s("80"),
            critical_pct: s("95"),
            sustained_s: s("300"),
            period_s: s("3600"),
            grace_s: s("60"),
            pattern: s(""),
            pattern_regex: RwSignal::new(false),
            level: s(""),
            window_s: s("300"),
            warning_count: s("5"),
            critical_count: s("50"),
            query: s(""),
            warning: s(""),
            critical: s(""),
            below: RwSignal::new(false),
            measure: s("ratio"),
            series: s(""),
            numerator: s(r#"http_requests_total{code=~"5.."}"#),
            denominator: s("http_requests_total"),
            histogram: s("http_request_duration_seconds"),
            quantile: s("0.95"),
            firing: s(""),
            forecast_resource: s("disk"),
            forecast_warning_days: s("14"),
            forecast_critical_days: s("3"),
        }
    }

    pub(super) fn from_check(c: &Check) -> Fields {
        let f = Fields::new(c.spec.kind());
        f.name.set(c.name.clone());
        f.interval_s.set(c.interval_s.to_string());
        f.timeout_ms.set(c.timeout_ms.to_string());
        f.fail_after.set(c.fail_after.to_string());
        f.recover_after.set(c.recover_after.to_string());
        f.enabled.set(c.enabled);
        f.set_spec(&c.spec);
        f
    }

    /// Fills the kind and its fields from `spec` (an edited check or a
    /// preset); fields of other kinds keep what was typed.
    pub(super) fn set_spec(&self, spec: &CheckSpec) {
        let f = *self;
        f.kind.set(spec.kind().to_string());
        let set = |sig: RwSignal<String>, v: String| sig.set(v);
        let opt =
            |sig: RwSignal<String>, v: &Option<String>| sig.set(v.clone().unwrap_or_default());
        match spec {
            CheckSpec::Container(x) => {
                set(f.restarts_warning, x.restarts_warning.to_string());
                set(f.restarts_critical, x.restarts_critical.to_string());
            }
            CheckSpec::Http(x) => {
                set(f.url, x.url.clone());
                set(f.method, method_str(x.method).into());
                set(
                    f.expect_status,
                    x.expect_status
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                opt(f.body_contains, &x.body_contains);
                opt(f.body_regex, &x.body_regex);
                set(f.warning_ms, x.warning_ms.to_string());
                set(f.critical_ms, x.critical_ms.to_string());
                f.tls_verify.set(x.tls_verify);
                set(f.max_redirects, x.max_redirects.to_string());
            }
            CheckSpec::Tcp(x) => {
                set(f.host, x.host.clone());
                set(f.port, x.port.to_string());
                set(f.warning_ms, x.warning_ms.to_string());
                set(f.critical_ms, x.critical_ms.to_string());
            }
            CheckSpec::Postgres(x) => {
                set(f.url, x.url.clone());
                set(
                    f.connections_warning_pct,
                    num_text(x.connections_warning_pct),
                );
                set(
                    f.connections_critical_pct,
                    num_text(x.connections_critical_pct),
                );
                set(
                    f.cache_hit_warning_pct,
                    x.cache_hit_warning_pct.map(num_text).unwrap_or_default(),
                );
                set(
                    f.replication_lag_warning_s,
                    num_text(x.replication_lag_warning_s),
                );
                set(
                    f.replication_lag_critical_s,
                    num_text(x.replication_lag_critical_s),
                );
            }
            CheckSpec::Mysql(x) => {
                set(f.url, x.url.clone());
                set(f.threads_warning, x.threads_warning.to_string());
                set(f.threads_critical, x.threads_critical.to_string());
            }
            CheckSpec::Redis(x) => {
                set(f.url, x.url.clone());
                set(f.memory_warning_pct, num_text(x.memory_warning_pct));
                set(f.memory_critical_pct, num_text(x.memory_critical_pct));
                set(
                    f.memory_warning_mb,
                    x.memory_warning_mb
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                );
            }
            CheckSpec::Tls(x) => {
                set(f.host, x.host.clone());
                set(f.port, x.port.to_string());
                opt(f.server_name, &x.server_name);
                set(f.warning_days, x.warning_days.to_string());
                set(f.critical_days, x.critical_days.to_string());
            }
            CheckSpec::Host(x) => {
                set(f.resource, resource_str(x.resource).into());
                opt(f.path, &x.path);
                opt(f.engine, &x.engine);
                set(f.warning_pct, num_text(x.warning_pct));
                set(f.critical_pct, num_text(x.critical_pct));
                set(f.sustained_s, x.sustained_s.to_string());
            }
            CheckSpec::ContainerResources(x) => {
                set(f.resource, resource_str(x.resource).into());
                set(f.warning_pct, num_text(x.warning_pct));
                set(f.critical_pct, num_text(x.critical_pct));
                set(f.sustained_s, x.sustained_s.to_string());
            }
            CheckSpec::Heartbeat(x) => {
                set(f.period_s, x.period_s.to_string());
                set(f.grace_s, x.grace_s.to_string());
            }
            CheckSpec::Prometheus(x) => {
                set(f.url, x.url.clone());
                set(f.query, x.query.clone());
                set(f.warning, num_text(x.warning));
                set(f.critical, num_text(x.critical));
                f.below.set(x.below);
                set(
                    f.firing,
                    x.firing.map(|l| l.as_str().to_string()).unwrap_or_default(),
                );
                set(f.sustained_s, x.sustained_s.to_string());
                f.tls_verify.set(x.tls_verify);
            }
            CheckSpec::Forecast(x) => {
                set(f.forecast_resource, resource_str(x.resource).into());
                opt(f.path, &x.path);
                set(f.forecast_warning_days, num_text(x.warning_days));
                set(f.forecast_critical_days, num_text(x.critical_days));
            }
            CheckSpec::LogPattern(x) => {
                set(f.pattern, x.pattern.clone());
                f.pattern_regex.set(x.regex);
                set(
                    f.level,
                    x.level.map(|l| l.as_str().to_string()).unwrap_or_default(),
                );
                set(f.window_s, x.window_s.to_string());
                set(f.warning_count, x.warning_count.to_string());
                set(f.critical_count, x.critical_count.to_string());
            }
            CheckSpec::Scrape(x) => {
                set(f.url, x.url.clone());
                match &x.measure {
                    ScrapeMeasure::Rate { series } => {
                        set(f.measure, "rate".into());
                        set(f.series, series.clone());
                    }
                    ScrapeMeasure::Gauge { series } => {
                        set(f.measure, "gauge".into());
                        set(f.series, series.clone());
                    }
                    ScrapeMeasure::Ratio {
                        numerator,
                        denominator,
                    } => {
                        set(f.measure, "ratio".into());
                        set(f.numerator, numerator.clone());
                        set(f.denominator, denominator.clone());
                    }
                    ScrapeMeasure::Quantile {
                        histogram,
                        quantile,
                    } => {
                        set(f.measure, "quantile".into());
                        set(f.histogram, histogram.clone());
                        set(f.quantile, num_text(*quantile));
                    }
                }
                set(f.window_s, x.window_s.to_string());
                set(f.warning, num_text(x.warning));
                set(f.critical, num_text(x.critical));
                f.below.set(x.below);
                set(f.sustained_s, x.sustained_s.to_string());
                f.tls_verify.set(x.tls_verify);
            }
        }
    }
}

/// A client-side problem with a field: (field key, message).
pub(super) type FieldError = (&'static str, String);

pub(super) fn text(sig: RwSignal<String>) -> String {
    sig.get_untracked().trim().to_string()
}

pub(super) fn opt_text(sig: RwSignal<String>) -> Option<String> {
    let t = text(sig);
    (!t.is_empty()).then_some(t)
}

pub(super) fn required(sig: RwSignal<String>, key: &'static str) -> Result<String, FieldError> {
    opt_text(sig).ok_or((key, "Required.".into()))
}

pub(super) fn num<T: FromStr>(sig: RwSignal<String>, key: &'static str) -> Result<T, FieldError> {
    let t = text(sig);
    if t.is_empty() {
        return Err((key, "Required.".into()));
    }
    t.parse()
        .map_err(|_| (key, format!("Not a valid number: {t}")))
}

pub(super) fn opt_num<T: FromStr>(
    sig: RwSignal<String>,
    key: &'static str,
) -> Result<Option<T>, FieldError> {
    match opt_text(sig) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| (key, format!("Not a valid number: {t}"))),
    }
}

pub(super) fn port(sig: RwSignal<String>, default: Option<u16>) -> Result<u16, FieldError> {
    match (opt_text(sig), default) {
        (None, Some(d)) => Ok(d),
        (None, None) => Err(("port", "Required.".into())),
        (Some(t), _) => match t.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(("port", "A port from 1 to 65535.".into())),
        },
    }
}

pub(super) fn build_spec(f: &Fields) -> Result<CheckSpec, FieldError> {
    Ok(match f.kind.get_untracked().as_str() {
        "container" => CheckSpec::Container(ContainerCheck {
            restarts_warning: num(f.restarts_warning, "restarts_warning")?,
            restarts_critical: num(f.restarts_critical, "restarts_critical")?,
        }),
        "http" => {
            let url = required(f.url, "url")?;
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(("url", "Only http:// and https:// URLs.".into()));
            }
            let mut expect_status = Vec::new();
            for part in text(f.expect_status)
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|p| !p.is_empty())
            {
                match part.parse::<u16>() {
                    Ok(code) if (100..=599).contains(&code) => expect_status.push(code),
                    _ => return Err(("expect_status", format!("Not an HTTP status code: {part}"))),
                }
            }
            CheckSpec::Http(HttpCheck {
                url,
                method: match f.method.get_untracked().as_str() {
                    "HEAD" => HttpMethod::Head,
                    "POST" => HttpMethod::Post,
                    _ => HttpMethod::Get,
                },
                expect_status,
                body_contains: opt_text(f.body_contains),
                body_regex: opt_text(f.body_regex),
                warning_ms: num(f.warning_ms, "warning_ms")?,
                critical_ms: num(f.critical_ms, "critical_ms")?,
                tls_verify: f.tls_verify.get_untracked(),
                max_redirects: num(f.max_redirects, "max_redirects")?,
            })
        }
        "tcp" => CheckSpec::Tcp(TcpCheck {
            host: required(f.host, "host")?,
            port: port(f.port, None)?,
            warning_ms: num(f.warning_ms, "warning_ms")?,
            critical_ms: num(f.critical_ms, "critical_ms")?,
        }),
        "postgres" => CheckSpec::Postgres(PostgresCheck {
            url: required(f.url, "url")?,
            connections_warning_pct: num(f.connections_warning_pct, "connections_warning_pct")?,
            connections_critical_pct: num(f.connections_critical_pct, "connections_critical_pct")?,
            cache_hit_warning_pct: opt_num(f.cache_hit_warning_pct, "cache_hit_warning_pct")?,
            replication_lag_warning_s: num(
                f.replication_lag_warning_s,
                "replication_lag_warning_s",
            )?,
            replication_lag_critical_s: num(
                f.replication_lag_critical_s,
                "replication_lag_critical_s",
            )?,
        }),
        "mysql" => CheckSpec::Mysql(MysqlCheck {
            url: required(f.url, "url")?,
            threads_warning: num(f.threads_warning, "threads_warning")?,
            threads_critical: num(f.threads_critical, "threads_critical")?,
        }),
        "redis" => CheckSpec::Redis(RedisCheck {
            url: required(f.url, "url")?,
            memory_warning_pct: num(f.memory_warning_pct, "memory_warning_pct")?,
            memory_critical_pct: num(f.memory_critical_pct, "memory_critical_pct")?,
            memory_warning_mb: opt_num(f.memory_warning_mb, "memory_warning_mb")?,
        }),
        "tls" => CheckSpec::Tls(TlsCheck {
            host: required(f.host, "host")?,
            port: port(f.port, Some(443))?,
            server_name: opt_text(f.server_name),
            warning_days: num(f.warning_days, "warning_days")?,
            critical_days: num(f.critical_days, "critical_days")?,
        }),
        "host" => {
            let resource = resource_from(&f.resource.get_untracked());
            CheckSpec::Host(HostCheck {
                resource,
                path: matches!(resource, Resource::Disk | Resource::Inodes)
                    .then(|| opt_text(f.path))
                    .flatten(),
                engine: opt_text(f.engine),
                warning_pct: num(f.warning_pct, "warning_pct")?,
                critical_pct: num(f.critical_pct, "critical_pct")?,
                sustained_s: num(f.sustained_s, "sustained_s")?,
            })
        }
        "container_resources" => CheckSpec::ContainerResources(ContainerResourcesCheck {
            resource: match f.resource.get_untracked().as_str() {
                "memory" => Resource::Memory,
                _ => Resource::Cpu,
            },
            warning_pct: num(f.warning_pct, "warning_pct")?,
            critical_pct: num(f.critical_pct, "critical_pct")?,
            sustained_s: num(f.sustained_s, "sustained_s")?,
        }),
        "heartbeat" => CheckSpec::Heartbeat(HeartbeatCheck {
            period_s: num(f.period_s, "period_s")?,
            grace_s: num(f.grace_s, "grace_s")?,
        }),
        "prometheus" => {
            let firing = match f.firing.get_untracked().as_str() {
                "warning" => Some(FiringLevel::Warning),
                "critical" => Some(FiringLevel::Critical),
                _ => None,
            };
            // Alerting-rule mode does not use the thresholds.
            let (warning, critical) = match firing {
                Some(_) => (0.0, 0.0),
                None => (num(f.warning, "warning")?, num(f.critical, "critical")?),
            };
            CheckSpec::Prometheus(PrometheusCheck {
                url: required(f.url, "url")?,
                query: required(f.query, "query")?,
                warning,
                critical,
                below: firing.is_none() && f.below.get_untracked(),
                sustained_s: num(f.sustained_s, "sustained_s")?,
                tls_verify: f.tls_verify.get_untracked(),
                firing,
            })
        }
        "scrape" => CheckSpec::Scrape(ScrapeCheck {
            url: required(f.url, "url")?,
            measure: match f.measure.get_untracked().as_str() {
                "rate" => ScrapeMeasure::Rate {
                    series: required(f.series, "series")?,
                },
                "gauge" => ScrapeMeasure::Gauge {
                    series: required(f.series, "series")?,
                },
                "quantile" => ScrapeMeasure::Quantile {
                    histogram: required(f.histogram, "histogram")?,
                    quantile: num(f.quantile, "quantile")?,
                },
                _ => ScrapeMeasure::Ratio {
                    numerator: required(f.numerator, "numerator")?,
                    denominator: required(f.denominator, "denominator")?,
                },
            },
            window_s: num(f.window_s, "window_s")?,
            warning: num(f.warning, "warning")?,
            critical: num(f.critical, "critical")?,
            below: f.below.get_untracked(),
            sustained_s: num(f.sustained_s, "sustained_s")?,
            tls_verify: f.tls_verify.get_untracked(),
        }),
        "forecast" => {
            let resource = match f.forecast_resource.get_untracked().as_str() {
                "memory" => Resource::Memory,
                _ => Resource::Disk,
            };
            CheckSpec::Forecast(ForecastCheck {
                resource,
                path: (resource == Resource::Disk)
                    .then(|| opt_text(f.path))
                    .flatten(),
                warning_days: num(f.forecast_warning_days, "warning_days")?,
                critical_days: num(f.forecast_critical_days, "critical_days")?,
            })
        }
        "log_pattern" => CheckSpec::LogPattern(LogPatternCheck {
            pattern: text(f.pattern),
            regex: f.pattern_regex.get_untracked(),
            level: match f.level.get_untracked().as_str() {
                "warn" => Some(LogLevel::Warn),
                "error" => Some(LogLevel::Error),
                "fatal" => Some(LogLevel::Fatal),
                _ => None,
            },
            window_s: num(f.window_s, "window_s")?,
            warning_count: num(f.warning_count, "warning_count")?,
            critical_count: num(f.critical_count, "critical_count")?,
        }),
        other => return Err(("kind", format!("Unknown kind {other}."))),
    })
}

/// Field keys each kind shows (server errors naming one are shown under it).
pub(super) fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "container" => &["restarts_warning", "restarts_critical"],
        "http" => &[
            "url",
            "method",
            "expect_status",
            "body_contains",
            "body_regex",
            "warning_ms",
            "critical_ms",
            "tls_verify",
            "max_redirects",
        ],
        "tcp" => &["host", "port", "warning_ms", "critical_ms"],
        "postgres" => &[
            "url",
            "password",
            "connections_warning_pct",
            "connections_critical_pct",
            "cache_hit_warning_pct",
            "replication_lag_warning_s",
            "replication_lag_critical_s",
        ],
        "mysql" => &["url", "password", "threads_warning", "threads_critical"],
        "redis" => &[
            "url",
            "password",
            "memory_warning_pct",
            "memory_critical_pct",
            "memory_warning_mb",
        ],
        "tls" => &[
            "host",
            "port",
            "server_name",
            "warning_days",
            "critical_days",
        ],
        "host" => &[
            "resource",
            "engine",
            "path",
            "warning_pct",
            "critical_pct",
            "sustained_s",
        ],
        "container_resources" => &["resource", "warning_pct", "critical_pct", "sustained_s"],
        "heartbeat" => &["period_s", "grace_s"],
        "forecast" => &["resource", "path", "warning_days", "critical_days"],
        "prometheus" => &[
            "url",
            "query",
            "password",
            "warning",
            "critical",
            "below",
            "firing",
            "sustained_s",
            "tls_verify",
        ],
        "scrape" => &[
            "url",
            "measure",
            "series",
            "numerator",
            "denominator",
            "histogram",
            "quantile",
            "window_s",
            "password",
            "warning",
            "critical",
            "below",
            "sustained_s",
            "tls_verify",
        ],
        "log_pattern" => &[
            "pattern",
            "regex",
            "level",
            "window_s",
            "warning_count",
            "critical_count",
        ],
        _ => &[],
    }
}

pub(super) const COMMON_KEYS: [&str; 7] = [
    "name",
    "interval_s",
    "timeout_ms",
    "fail_after",
    "recover_after",
    "enabled",
    "kind",
];

/// The form's key for a field the API names (`url`, `interval_s`,
/// `restarts_warning/restarts_critical`), when the form shows it.
pub(super) fn field_of(field: &str, kind: &str) -> Option<&'static str> {
    let last = field.rsplit(['.', '/']).next()?;
    // Threshold pairs the server names as a whole: under the critical one.
    let last = match (kind, last) {
        ("postgres", "connections") => "connections_critical_pct",
        ("postgres", "replication_lag") => "replication_lag_critical_s",
        ("mysql", "threads") => "threads_critical",
        ("redis", "memory") => "memory_critical_pct",
        ("host", "host") | ("container_resources", "container") => "critical_pct",
        ("log_pattern", "critical_count") => "critical_count",
        ("prometheus" | "scrape", "critical") => "critical",
        (_, other) => other,
    };
    COMMON_KEYS
        .iter()
        .chain(kind_keys(kind))
        .find(|k| **k == last)
        .copied()
}

/// What the form is for.
#[derive(Clone, Debug, PartialEq)]
pub enum FormMode {
    Add,
    Edit(Box<Check>),
}

/// Interval, timeout, failures before alerting and passes before
/// recovering, or the first of them that is wrong.
pub(super) fn schedule_numbers(f: &Fields) -> Result<(u32, u32, u32, u32), FieldError> {
    let interval: u32 = num(f.interval_s, "interval_s")?;
    if interval < 5 {
        return Err(("interval_s", "At least 5 seconds.".into()));
    }
    let timeout: u32 = num(f.timeout_ms, "timeout_ms")?;
    if timeout == 0 {
        return Err(("timeout_ms", "More than 0.".into()));
    }
    let fail_after: u32 = num(f.fail_after, "fail_after")?;
    let recover_after: u32 = num(f.recover_after, "recover_after")?;
    if fail_after == 0 {
        return Err(("fail_after", "At least 1.".into()));
    }
    if recover_after == 0 {
        return Err(("recover_after", "At least 1.".into()));
    }
    Ok((interval, timeout, fail_after, recover_after))
}

/// How the form shows an API error: under the field the API names (the
/// form's key for it, the message without the field's name), else above
/// the buttons.
pub(super) fn server_error(e: ApiError, kind: &str) -> (Option<&'static str>, String) {
    let key = e.field.as_deref().and_then(|f| field_of(f, kind));
    let rest = e
        .field
        .as_deref()
        .and_then(|f| e.message.strip_prefix(f))
        .and_then(|r| r.strip_prefix(':'))
        .map(str::trim)
        .filter(|r| !r.is_empty());
    let message = match (key, rest) {
        (Some(_), Some(rest)) => {
            let mut c = rest.chars();
            c.next()
                .map(|f| f.to_uppercase().chain(c).collect())
                .unwrap_or_default()
        }
        _ => e.message,
    };
    (key, message)
}
