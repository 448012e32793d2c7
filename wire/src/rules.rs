//! Importing a Prometheus rules file as Prometheus-query checks
//! (`POST /api/v1/checks/import-rules/{preview,apply}`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::PrometheusCheck;

fn default_true() -> bool {
    true
}

wire! {
    /// A Prometheus rules file (`groups` → `rules`) to preview or apply as
    /// Prometheus-query checks against one server.
    pub struct RulesImportRequest {
        /// The rules file's text (YAML, as `promtool check rules` reads it).
        pub yaml: String,
        /// The Prometheus-compatible server every check queries, e.g.
        /// `http://prometheus:9090`.
        pub url: String,
        /// Bearer token for the server: write-only, stored sealed as each
        /// created check's password, never returned or audited.
        #[serde(default)]
        pub token: Option<String>,
        #[serde(default = "default_true")]
        pub tls_verify: bool,
        /// The rule label naming the Opsdeck service a check belongs to
        /// (`service` when absent): the rule's `labels`, else an equality
        /// matcher on that label in its `expr` (`job="wiki"`).
        #[serde(default)]
        pub attach_label: Option<String>,
        /// Apply: the keys of the proposals to create; absent: every `new`
        /// one. A key that is not `new` is refused.
        #[serde(default)]
        pub selected: Option<Vec<String>>,
        /// Per key, the service a check belongs to instead of the matched
        /// one: a service id, or `null` for a check of no service.
        #[serde(default)]
        pub services: BTreeMap<String, Option<i64>>,
    }

    /// What an import would create (preview) or created (apply).
    pub struct RulesImportPlan {
        pub applied: bool,
        /// Groups and alerting rules read from the file.
        pub groups: u32,
        pub alerting_rules: u32,
        pub checks: Vec<RuleCheck>,
        /// Everything of the file that no check keeps: recording rules,
        /// rules that cannot be imported, and the parts of imported rules
        /// that have no place in a check (templated annotations,
        /// `keep_firing_for`, extra labels, unknown keys).
        pub unsupported: Vec<RuleNote>,
    }

    /// A check proposed for one alerting rule, or for a warning and a
    /// critical rule on the same expression merged into one check.
    pub struct RuleCheck {
        /// Stable within the file: `<group>/<alert>` (with `/<severity>`
        /// or `#n` when an alert name repeats).
        pub key: String,
        pub group: String,
        /// The alerting rules it stands for.
        pub alerts: Vec<String>,
        /// The check's name (the alert's name).
        pub name: String,
        /// The group's `interval`, else 30 s.
        pub interval_s: u32,
        pub spec: PrometheusCheck,
        /// The attach label's value found in the rule.
        pub label_value: Option<String>,
        /// The service it belongs to (matched, or chosen in the request);
        /// none: a check of no service.
        pub service_id: Option<i64>,
        pub service: Option<String>,
        pub state: RuleCheckState,
        /// `exists`: the check with the same server and query.
        pub existing_check_id: Option<i64>,
        /// It will be created (preview) or was created (apply).
        pub selected: bool,
        /// The server refused the query (its words): not importable.
        pub query_error: Option<String>,
        /// How the rule was mapped ("merged with …", "no severity label:
        /// critical").
        pub notes: Vec<String>,
        /// The created check (apply).
        pub check_id: Option<i64>,
    }

    /// A part of the file no check keeps, and why.
    pub struct RuleNote {
        pub group: String,
        /// The alert or recording rule's name (`#n` when it has none).
        pub rule: String,
        /// The proposal this rule became, if any.
        pub key: Option<String>,
        pub reason: String,
    }
}

/// Whether a proposal is created.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RuleCheckState {
    /// No Prometheus check has this server and query: created.
    New,
    /// A Prometheus check with the same server and query exists: never
    /// created again.
    Exists,
    /// Its service (or the host) already has a check of this name.
    NameTaken,
}
