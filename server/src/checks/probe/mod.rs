//! Probes: one async function per check kind, each returning a [`Probe`].
//!
//! A probe measures and classifies; it never sleeps, retries or remembers.
//! The engine (`checks::engine`) wraps every call in the check's timeout
//! (a probe that outlives it is reported critical "timed out"), applies flap
//! damping and "sustained for" windows, and records the result.
//!
//! Probes only reach what the check names: no shell, no string-built
//! commands; database probes use bind-free fixed statements.

use std::time::Duration;

use opsdeck_wire::{CheckStatus, Metric};

pub mod forecast;
pub mod host;
pub mod host_engine;
pub mod http;
pub mod logs;
pub mod net;
pub mod prometheus;
pub mod redis;
pub mod scrape;
pub mod sql;

/// What one probe found.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub status: CheckStatus,
    /// How long the probe's main operation took (ms).
    pub latency_ms: Option<f64>,
    /// Short, human explanation ("HTTP 500", "connections 96 % of 100").
    /// Never contains a password.
    pub message: String,
    pub metrics: Vec<Metric>,
}

impl Probe {
    pub fn new(status: CheckStatus, message: impl Into<String>) -> Probe {
        Probe {
            status,
            latency_ms: None,
            message: message.into(),
            metrics: Vec::new(),
        }
    }
    pub fn ok(message: impl Into<String>) -> Probe {
        Probe::new(CheckStatus::Ok, message)
    }
    pub fn critical(message: impl Into<String>) -> Probe {
        Probe::new(CheckStatus::Critical, message)
    }
    pub fn latency(mut self, elapsed: Duration) -> Probe {
        let ms = elapsed.as_secs_f64() * 1000.0;
        self.latency_ms = Some(ms);
        self.metrics.push(Metric {
            name: "latency_ms".into(),
            value: ms,
        });
        self
    }
    pub fn metric(mut self, name: &str, value: f64) -> Probe {
        self.metrics.push(Metric {
            name: name.into(),
            value,
        });
        self
    }
    /// Raises the status to at least `status` (never lowers it).
    pub fn at_least(mut self, status: CheckStatus, why: impl Into<String>) -> Probe {
        if status > self.status {
            self.status = status;
            self.message = why.into();
        }
        self
    }
}

/// Classifies `value` against "higher is worse" thresholds.
pub fn grade_above(value: f64, warning: f64, critical: f64) -> CheckStatus {
    if value >= critical {
        CheckStatus::Critical
    } else if value >= warning {
        CheckStatus::Warning
    } else {
        CheckStatus::Ok
    }
}

/// Classifies `value` against "lower is worse" thresholds.
pub fn grade_below(value: f64, warning: f64, critical: f64) -> CheckStatus {
    if value <= critical {
        CheckStatus::Critical
    } else if value <= warning {
        CheckStatus::Warning
    } else {
        CheckStatus::Ok
    }
}
