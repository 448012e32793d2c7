//! Wire types of runbooks bound to alerts: bindings (suggested or
//! automatic), what they match, and what an incident suggests.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a runbook binding acts when its alert fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BindingMode {
    /// Shown on the incident with its parameters filled in; a person starts it.
    Suggested,
    /// Started by the system when the incident opens (within its limits,
    /// never under maintenance).
    Automatic,
}

impl BindingMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BindingMode::Suggested => "suggested",
            BindingMode::Automatic => "automatic",
        }
    }

    pub fn parse(s: &str) -> Option<BindingMode> {
        Some(match s {
            "suggested" => BindingMode::Suggested,
            "automatic" => BindingMode::Automatic,
            _ => return None,
        })
    }
}

wire! {
    /// What a binding matches: every field given must match, and at least
    /// one is given.
    #[derive(Default)]
    pub struct BindingTrigger {
        /// This check is critical.
        #[serde(default)]
        pub check_id: Option<i64>,
        /// A check of this kind (`container`, `http`, `postgres`, …) on the
        /// incident's service is critical.
        #[serde(default)]
        pub check_kind: Option<String>,
        /// The incident is on this service.
        #[serde(default)]
        pub service: Option<String>,
        /// An Alertmanager alert with this `alertname`.
        #[serde(default)]
        pub alert_name: Option<String>,
        /// … and these label values.
        #[serde(default)]
        pub alert_labels: BTreeMap<String, String>,
        /// The incident is at least this severe (1 = P1).
        #[serde(default)]
        pub severity: Option<u8>,
    }

    /// `POST /api/v1/runbook-bindings` (admin).
    pub struct BindingWrite {
        /// The runbook's name.
        pub runbook: String,
        pub mode: BindingMode,
        pub trigger: BindingTrigger,
        /// Fixed parameters; `service`, `container` and `database`
        /// parameters left out are filled from the incident.
        #[serde(default)]
        pub params: BTreeMap<String, Value>,
        /// Automatic: at most this many runs an hour (1–60, default 3).
        #[serde(default = "three_u32")]
        pub max_per_hour: u32,
        /// Automatic: not again for the same target within this many
        /// seconds (0–86400, default 600).
        #[serde(default = "six_hundred")]
        pub cooldown_s: u32,
        #[serde(default = "yes")]
        pub enabled: bool,
    }

    /// A stored binding.
    pub struct RunbookBinding {
        pub id: i64,
        pub runbook_id: i64,
        #[serde(flatten)]
        pub def: BindingWrite,
        pub created_by: String,
        pub created_at: DateTime<Utc>,
    }

    /// `GET /api/v1/incidents/{id}/runbooks`: a binding that matches the
    /// incident, with the parameters it would start with.
    pub struct SuggestedRunbook {
        pub binding_id: i64,
        pub mode: BindingMode,
        pub runbook_id: i64,
        pub runbook: String,
        pub title: String,
        pub params: BTreeMap<String, Value>,
        /// Why it matches, in words.
        pub because: String,
        /// Automatic bindings: the run the system started for this
        /// incident, or why it did not.
        pub fired: Option<BindingFiring>,
    }

    /// What an automatic binding did for an incident.
    pub struct BindingFiring {
        /// started, suppressed, limited or refused.
        pub outcome: String,
        pub run_id: Option<i64>,
        pub detail: String,
        pub at: DateTime<Utc>,
    }
}

fn three_u32() -> u32 {
    3
}
fn six_hundred() -> u32 {
    600
}
fn yes() -> bool {
    true
}
