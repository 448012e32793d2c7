//! Maintenance mode and maintenance windows (`/api/v1/maintenance/...`).
//!
//! A **period** is one stretch of maintenance: turned on now by hand, or one
//! occurrence of a scheduled **window**. While a period is open its services
//! show `maintenance`, checks keep running, and what they would have raised
//! (incidents, pages) is recorded as a **suppression** instead. A stack's
//! **actuator** says what else happens on enable and disable: nothing, the
//! proxy serves the maintenance page (proxy mode), or runbooks run (runbook
//! mode).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{ServiceHealth, TimelineEvent};

/// What a period or window covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MaintenanceScope {
    /// Every service of a compose project (the stack's actuator applies).
    Stack { stack: String },
    /// Chosen services, by name (marking and suppression only; no actuation).
    Services { services: Vec<String> },
}

/// Where a period is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PeriodStatus {
    /// Asked for; its enable run has not acted yet (waiting for an approval
    /// or a worker).
    Requested,
    /// The actuation is being applied. Services already show maintenance.
    Enabling,
    /// In maintenance.
    Active,
    /// The actuation is being undone. Services still show maintenance.
    Disabling,
    /// Over; the previous state is restored.
    Ended,
    /// Enabling failed and was rolled back (see `error`).
    Failed,
    /// Never started: denied, cancelled, or its window was over first.
    Cancelled,
}

impl PeriodStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PeriodStatus::Requested => "requested",
            PeriodStatus::Enabling => "enabling",
            PeriodStatus::Active => "active",
            PeriodStatus::Disabling => "disabling",
            PeriodStatus::Ended => "ended",
            PeriodStatus::Failed => "failed",
            PeriodStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<PeriodStatus> {
        Some(match s {
            "requested" => PeriodStatus::Requested,
            "enabling" => PeriodStatus::Enabling,
            "active" => PeriodStatus::Active,
            "disabling" => PeriodStatus::Disabling,
            "ended" => PeriodStatus::Ended,
            "failed" => PeriodStatus::Failed,
            "cancelled" => PeriodStatus::Cancelled,
            _ => return None,
        })
    }

    /// Services show maintenance and alarms are suppressed.
    pub fn is_in_effect(self) -> bool {
        matches!(
            self,
            PeriodStatus::Enabling | PeriodStatus::Active | PeriodStatus::Disabling
        )
    }

    /// Not over yet (requested or in effect).
    pub fn is_open(self) -> bool {
        self == PeriodStatus::Requested || self.is_in_effect()
    }
}

/// How a window repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Repeat {
    /// Once, from `starts_at` to `ends_at`.
    Once,
    /// Every day at the local time of `starts_at`.
    Daily,
    /// On the `weekdays` at the local time of `starts_at`.
    Weekly,
}

/// What a stack's maintenance does besides marking and suppressing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActuationMode {
    /// Nothing: mark and suppress only.
    None,
    /// Place the maintenance page and a configuration snippet into the proxy
    /// container, then reload it; restore both on disable.
    Proxy,
    /// Run one runbook on enable and another on disable.
    Runbook,
}

wire! {
    /// `POST /api/v1/maintenance/periods`: maintenance now.
    pub struct StartMaintenance {
        pub scope: MaintenanceScope,
        /// Why (shown in the panel's banner; never on the public page).
        pub reason: String,
        /// Expected end: the period ends by itself then (extend it if needed).
        pub until: DateTime<Utc>,
        /// Apply the stack's actuator (stack scope only). Default true.
        #[serde(default = "yes")]
        pub actuate: bool,
    }

    /// `POST /api/v1/maintenance/periods/{id}/extend`.
    pub struct ExtendMaintenance {
        pub until: DateTime<Utc>,
    }

    /// `POST /api/v1/maintenance/periods/{id}/end`.
    pub struct EndMaintenance {
        #[serde(default)]
        pub note: String,
    }

    /// One stretch of maintenance.
    pub struct MaintenancePeriod {
        pub id: i64,
        /// The window it is an occurrence of (none: turned on by hand).
        pub window_id: Option<i64>,
        pub title: String,
        pub reason: String,
        pub scope: MaintenanceScope,
        /// The services it covers (a stack's, resolved when it started).
        pub services: Vec<String>,
        pub actuate: bool,
        pub status: PeriodStatus,
        pub started_by: String,
        pub starts_at: DateTime<Utc>,
        /// Expected end; the period ends by itself then.
        pub ends_at: DateTime<Utc>,
        pub enabled_at: Option<DateTime<Utc>>,
        pub ended_at: Option<DateTime<Utc>>,
        pub ended_by: Option<String>,
        /// Why enabling or disabling failed.
        pub error: Option<String>,
        pub enable_run_id: Option<i64>,
        pub disable_run_id: Option<i64>,
        /// Alarms recorded instead of raised.
        pub suppressed: i64,
    }

    /// An alarm maintenance held back.
    pub struct Suppression {
        pub at: DateTime<Utc>,
        /// `health`, `alertmanager` or `escalation`.
        pub source: String,
        pub key: String,
        pub message: String,
    }

    /// `GET /api/v1/maintenance/periods/{id}`.
    pub struct MaintenancePeriodDetail {
        pub period: MaintenancePeriod,
        pub suppressions: Vec<Suppression>,
        pub timeline: Vec<TimelineEvent>,
    }

    /// `POST|PUT /api/v1/maintenance/windows[/{id}]`.
    pub struct WindowWrite {
        pub title: String,
        #[serde(default)]
        pub reason: String,
        pub scope: MaintenanceScope,
        #[serde(default = "yes")]
        pub actuate: bool,
        /// The first occurrence's start; its local time of day (in
        /// `time_zone`) is every occurrence's start.
        pub starts_at: DateTime<Utc>,
        /// The first occurrence's end (its length is every occurrence's).
        pub ends_at: DateTime<Utc>,
        pub repeat: Repeat,
        /// For `weekly`: `mon` … `sun`.
        #[serde(default)]
        pub weekdays: Vec<String>,
        /// IANA time zone, e.g. `Europe/Berlin`.
        pub time_zone: String,
        /// Last day (local) an occurrence may start; none: forever.
        #[serde(default)]
        pub until: Option<NaiveDate>,
        #[serde(default = "yes")]
        pub enabled: bool,
    }

    /// One occurrence of a window.
    pub struct Occurrence {
        pub starts_at: DateTime<Utc>,
        pub ends_at: DateTime<Utc>,
    }

    /// A scheduled window.
    pub struct MaintenanceWindow {
        pub id: i64,
        #[serde(flatten)]
        pub def: WindowWrite,
        pub created_by: String,
        pub created_at: DateTime<Utc>,
        /// The next occurrences (up to 5), including one in progress.
        pub next: Vec<Occurrence>,
        /// "every Wednesday 22:00–23:00 (Europe/Berlin)".
        pub summary: String,
    }

    /// `POST /api/v1/maintenance/windows/preview`: a window's occurrences.
    pub struct WindowPreview {
        pub summary: String,
        pub next: Vec<Occurrence>,
    }

    /// Proxy mode: where the page and the snippet go, and how the proxy
    /// reloads. Paths are absolute paths inside the proxy's containers.
    pub struct ProxyActuation {
        /// The inventory service of the proxy (every running container of it).
        pub service: String,
        /// Where the rendered maintenance page is placed.
        pub page_path: String,
        /// Where the snippet is placed (none: the page only).
        #[serde(default)]
        pub snippet_path: Option<String>,
        /// The configuration snippet; `{{page_path}}`, `{{page_dir}}` and
        /// `{{page_file}}` are replaced.
        #[serde(default)]
        pub snippet: String,
        /// argv run in each proxy container after placing and after
        /// restoring (no shell), e.g. `["nginx", "-s", "reload"]`.
        #[serde(default)]
        pub reload: Vec<String>,
    }

    /// Runbook mode: the runbooks run on enable and on disable.
    pub struct RunbookActuation {
        pub enable: String,
        #[serde(default)]
        pub enable_params: BTreeMap<String, serde_json::Value>,
        pub disable: String,
        #[serde(default)]
        pub disable_params: BTreeMap<String, serde_json::Value>,
    }

    /// `PUT /api/v1/maintenance/actuators/{stack}` (admins).
    pub struct ActuatorWrite {
        pub mode: ActuationMode,
        #[serde(default)]
        pub proxy: Option<ProxyActuation>,
        #[serde(default)]
        pub runbooks: Option<RunbookActuation>,
    }

    /// A stack's actuator and its state.
    pub struct Actuator {
        pub stack: String,
        #[serde(flatten)]
        pub def: ActuatorWrite,
        /// `off`, `enabling`, `on` or `disabling` (the last two words of an
        /// interrupted change: the next enable or disable restores first).
        pub state: String,
        pub changed_at: Option<DateTime<Utc>>,
        pub error: Option<String>,
    }

    /// A stack Opsdeck knows (a compose project of the inventory).
    pub struct MaintenanceStack {
        pub stack: String,
        pub services: Vec<String>,
        pub actuator: Option<Actuator>,
    }

    /// What marks a service on the board while maintenance covers it.
    pub struct MaintenanceMark {
        pub period_id: i64,
        pub reason: String,
        pub started_by: String,
        pub until: DateTime<Utc>,
        /// The health its checks give (what maintenance hides).
        pub observed: ServiceHealth,
    }

    /// The panel banner's line for one period in effect (in `StatusBoard`).
    pub struct MaintenanceBanner {
        pub period_id: i64,
        pub title: String,
        pub reason: String,
        pub status: PeriodStatus,
        pub started_by: String,
        pub until: DateTime<Utc>,
        pub services: Vec<String>,
    }
}

fn yes() -> bool {
    true
}
