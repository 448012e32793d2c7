//! Log search across services and time (`POST /api/v1/logs/search`): the
//! query, and the events of its answer, one JSON object per line
//! (`application/x-ndjson`), streamed as they are found.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A log line's level as guessed from its text (`ERROR`, `WARN`, …, a JSON
/// `level` field, a Python `Traceback`, a Go/Rust `panic`). Ordered: a
/// search for `warn` keeps `warn`, `error` and `fatal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum LogLevel {
    Debug,
    Info,
    Warn,
    Error,
    /// FATAL, CRITICAL, PANIC, `panic:`, `Traceback`.
    Fatal,
}

impl LogLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }
}

wire! {
    /// One search over the logs of services and whole stacks.
    #[derive(Default)]
    pub struct LogSearch {
        /// Services by id.
        #[serde(default)]
        pub services: Vec<i64>,
        /// Whole stacks (compose projects): every service of each.
        #[serde(default)]
        pub projects: Vec<String>,
        /// Text to find (case-insensitive), or a regular expression when
        /// `regex` is set; empty: every line (with `level`, every line of
        /// that level or worse).
        #[serde(default)]
        pub query: String,
        #[serde(default)]
        pub regex: bool,
        /// Keep lines whose guessed level is this or worse.
        #[serde(default)]
        pub level: Option<LogLevel>,
        /// From: RFC 3339, or an age like `15m`, `2h`, `7d` (default `1h`).
        #[serde(default)]
        pub since: Option<String>,
        /// Until: RFC 3339 or an age (default: now).
        #[serde(default)]
        pub until: Option<String>,
        /// Lines of context before and after each hit (0–20).
        #[serde(default)]
        pub context: u32,
        /// At most this many hits (1–10000, default 1000); then the answer
        /// ends with `truncated`.
        #[serde(default)]
        pub limit: Option<u32>,
    }

    /// One line of the answer.
    pub struct LogHit {
        /// The engine's timestamp of the line.
        pub ts: DateTime<Utc>,
        pub service_id: i64,
        pub service: String,
        pub container: String,
        pub line: String,
        pub level: Option<LogLevel>,
        /// `false` for a context line around a hit.
        pub hit: bool,
    }

    /// Hits of one service in the answer.
    pub struct LogCount {
        pub service_id: i64,
        pub service: String,
        pub hits: u64,
        /// Lines read from its containers.
        pub scanned: u64,
    }

    /// A container whose log could not be read to the end (an engine gone
    /// away, a container removed): the answer holds what came before.
    pub struct LogSourceError {
        pub service: String,
        pub container: String,
        pub message: String,
    }

    /// The last line of the answer.
    pub struct LogSearchEnd {
        pub counts: Vec<LogCount>,
        /// The hit limit was reached: later lines were not read.
        pub truncated: bool,
        pub errors: Vec<LogSourceError>,
        /// The time range searched, as resolved by the server.
        pub since: DateTime<Utc>,
        pub until: DateTime<Utc>,
        pub containers: u32,
    }
}

/// One object of the NDJSON answer of `POST /api/v1/logs/search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogEvent {
    /// A hit or a context line, in timestamp order over all containers.
    Line(LogHit),
    /// A container's log broke off; the search goes on with the others.
    Error(LogSourceError),
    /// Always the last object.
    End(LogSearchEnd),
}
