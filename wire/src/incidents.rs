//! Incidents, contacts, on-call rotations, escalation policies, notification
//! channels and incident reports.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::{RunStatus, TimelineEvent};

/// Incident severity: P1 complete outage, P2 key service degraded, P3 minor,
/// P4 cosmetic. Stored as 1–4.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Severity {
    P1,
    P2,
    P3,
    P4,
}

impl Severity {
    pub const ALL: [Severity; 4] = [Severity::P1, Severity::P2, Severity::P3, Severity::P4];

    pub fn as_str(self) -> &'static str {
        match self {
            Severity::P1 => "P1",
            Severity::P2 => "P2",
            Severity::P3 => "P3",
            Severity::P4 => "P4",
        }
    }

    /// The severity of a problem on a service of `tier`, as the detector,
    /// auto-heal and runbook escalations grade it: critical → P1,
    /// application → P2, support → P3.
    pub fn of_tier(tier: crate::Tier) -> Severity {
        match tier {
            crate::Tier::Critical => Severity::P1,
            crate::Tier::Application => Severity::P2,
            crate::Tier::Support => Severity::P3,
        }
    }

    /// 1 (P1) … 4 (P4), as stored.
    pub fn level(self) -> i16 {
        self as i16 + 1
    }

    pub fn from_level(n: i16) -> Option<Severity> {
        Severity::ALL
            .get(usize::try_from(n).ok()?.checked_sub(1)?)
            .copied()
    }

    /// What the level means, as the handbooks say it.
    pub fn meaning(self) -> &'static str {
        match self {
            Severity::P1 => "Complete outage",
            Severity::P2 => "Key service degraded",
            Severity::P3 => "Minor issue",
            Severity::P4 => "Cosmetic",
        }
    }
}

/// Where an incident is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    Triggered,
    Acknowledged,
    Mitigated,
    Resolved,
    PostmortemDone,
}

impl IncidentStatus {
    pub const ALL: [IncidentStatus; 5] = [
        IncidentStatus::Triggered,
        IncidentStatus::Acknowledged,
        IncidentStatus::Mitigated,
        IncidentStatus::Resolved,
        IncidentStatus::PostmortemDone,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Triggered => "triggered",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Mitigated => "mitigated",
            IncidentStatus::Resolved => "resolved",
            IncidentStatus::PostmortemDone => "postmortem_done",
        }
    }

    pub fn parse(s: &str) -> Option<IncidentStatus> {
        IncidentStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Triggered, acknowledged or mitigated.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            IncidentStatus::Triggered | IncidentStatus::Acknowledged | IncidentStatus::Mitigated
        )
    }

    pub fn label(self) -> &'static str {
        match self {
            IncidentStatus::Triggered => "Triggered",
            IncidentStatus::Acknowledged => "Acknowledged",
            IncidentStatus::Mitigated => "Mitigated",
            IncidentStatus::Resolved => "Resolved",
            IncidentStatus::PostmortemDone => "Post-mortem done",
        }
    }
}

wire! {
    /// An incident as lists and pages show it.
    pub struct Incident {
        pub id: i64,
        pub title: String,
        pub severity: Severity,
        pub status: IncidentStatus,
        /// manual, health, alertmanager, backup or runbook.
        pub source: String,
        pub summary: String,
        pub commander_id: Option<i64>,
        pub commander: Option<String>,
        pub services: Vec<IncidentService>,
        pub escalation_policy_id: Option<i64>,
        pub escalation_policy: Option<String>,
        /// The next escalation level to notify (0-based).
        pub escalation_level: i32,
        /// When that level is due; `None` when nothing more will be sent.
        pub next_escalation_at: Option<DateTime<Utc>>,
        pub triggered_at: DateTime<Utc>,
        pub acknowledged_at: Option<DateTime<Utc>>,
        pub acknowledged_by: Option<String>,
        pub diagnosed_at: Option<DateTime<Utc>>,
        pub mitigated_at: Option<DateTime<Utc>>,
        pub resolved_at: Option<DateTime<Utc>>,
        pub postmortem_done_at: Option<DateTime<Utc>>,
        /// Health recovered while open (resolution proposed).
        pub recovered_at: Option<DateTime<Utc>>,
        /// One timer per milestone with a target for this severity.
        pub sla: Vec<SlaTimer>,
        pub created_by: String,
        pub updated_at: DateTime<Utc>,
    }

    /// A service an incident concerns.
    pub struct IncidentService {
        pub service_id: i64,
        pub name: String,
        /// `root` (detected cause), `symptom` (impacted by it) or `affected`.
        pub role: String,
    }

    /// An SLA milestone's timer.
    pub struct SlaTimer {
        /// ack, diagnose, mitigate, resolve or postmortem.
        pub milestone: String,
        pub target_secs: i64,
        pub due_at: DateTime<Utc>,
        /// When the milestone was reached.
        pub met_at: Option<DateTime<Utc>>,
        /// Reached late, or due and not reached.
        pub breached: bool,
    }

    /// `GET /api/v1/incidents/{id}`: the incident with its timeline and work.
    pub struct IncidentDetail {
        pub incident: Incident,
        pub timeline: Vec<TimelineEvent>,
        pub runs: Vec<LinkedRun>,
        pub notifications: Vec<Notification>,
    }

    /// A runbook run linked to an incident.
    pub struct LinkedRun {
        pub id: i64,
        pub runbook: String,
        pub status: RunStatus,
        pub requested_by: String,
        pub created_at: DateTime<Utc>,
    }

    /// `GET /api/v1/incidents`.
    pub struct IncidentList {
        pub items: Vec<Incident>,
        pub total: i64,
    }

    /// `POST /api/v1/incidents`.
    pub struct NewIncident {
        pub title: String,
        pub severity: Severity,
        #[serde(default)]
        pub summary: String,
        /// Affected service ids.
        #[serde(default)]
        pub services: Vec<i64>,
        #[serde(default)]
        pub commander_id: Option<i64>,
        /// Defaults to the default escalation policy.
        #[serde(default)]
        pub escalation_policy_id: Option<i64>,
    }

    /// `PATCH /api/v1/incidents/{id}`: fields left out stay as they are.
    pub struct IncidentPatch {
        #[serde(default)]
        pub title: Option<String>,
        #[serde(default)]
        pub severity: Option<Severity>,
        #[serde(default)]
        pub summary: Option<String>,
        /// 0 clears the commander.
        #[serde(default)]
        pub commander_id: Option<i64>,
        /// 0 stops escalation.
        #[serde(default)]
        pub escalation_policy_id: Option<i64>,
        /// Why (kept on the timeline with severity changes).
        #[serde(default)]
        pub reason: String,
    }

    /// Body of the status actions (acknowledge, diagnose, mitigate, resolve,
    /// reopen, post-mortem done): an optional note for the timeline.
    pub struct IncidentAct {
        #[serde(default)]
        pub note: String,
    }

    /// `POST /api/v1/incidents/{id}/notes`.
    pub struct NewNote {
        pub text: String,
    }

    /// `POST /api/v1/incidents/{id}/log-excerpt`: the last lines of a
    /// service's container logs, kept on the timeline.
    pub struct LogExcerptRequest {
        pub service_id: i64,
        #[serde(default = "default_excerpt_lines")]
        pub lines: u32,
    }

    /// `POST /api/v1/incidents/{id}/services`.
    pub struct AddIncidentService {
        pub service_id: i64,
    }

    /// The post-mortem of an incident (a template until saved).
    pub struct Postmortem {
        pub summary: String,
        pub impact: String,
        /// Markdown, prefilled from the incident's timeline.
        pub timeline: String,
        pub root_cause: String,
        pub went_well: String,
        pub went_badly: String,
        pub action_items: Vec<ActionItem>,
        /// `None` while it is the unsaved template.
        #[serde(default)]
        pub updated_at: Option<DateTime<Utc>>,
        #[serde(default)]
        pub updated_by: Option<String>,
    }

    pub struct ActionItem {
        pub what: String,
        pub owner: String,
        #[serde(default)]
        pub due: Option<NaiveDate>,
        #[serde(default)]
        pub done: bool,
    }

    /// SLA targets of one severity, in seconds from the trigger (`None`: no
    /// target).
    pub struct SlaTarget {
        pub severity: Severity,
        pub ack_secs: Option<i64>,
        pub diagnose_secs: Option<i64>,
        pub mitigate_secs: Option<i64>,
        pub resolve_secs: Option<i64>,
        pub postmortem_secs: Option<i64>,
    }

    /// `GET/PUT /api/v1/incident-settings`.
    pub struct IncidentSettings {
        /// Health checks open incidents for root-cause services.
        pub auto_open: bool,
        /// On recovery: `propose` or `resolve`.
        pub on_recovery: String,
        pub default_policy_id: Option<i64>,
        pub ack_link_ttl_secs: i64,
        pub sla: Vec<SlaTarget>,
    }

    /// Prometheus Alertmanager webhook payload (version 4).
    pub struct AlertmanagerPayload {
        #[serde(default)]
        pub version: String,
        #[serde(default, rename = "groupKey")]
        pub group_key: String,
        #[serde(default)]
        pub status: String,
        #[serde(default, rename = "commonLabels")]
        pub common_labels: BTreeMap<String, String>,
        #[serde(default, rename = "externalURL")]
        pub external_url: String,
        pub alerts: Vec<AlertmanagerAlert>,
    }

    pub struct AlertmanagerAlert {
        /// firing or resolved.
        pub status: String,
        #[serde(default)]
        pub labels: BTreeMap<String, String>,
        #[serde(default)]
        pub annotations: BTreeMap<String, String>,
        #[serde(default, rename = "startsAt")]
        pub starts_at: Option<DateTime<Utc>>,
        #[serde(default, rename = "endsAt")]
        pub ends_at: Option<DateTime<Utc>>,
        #[serde(default, rename = "generatorURL")]
        pub generator_url: String,
        pub fingerprint: String,
    }

    /// What the Alertmanager webhook did.
    pub struct AlertmanagerResult {
        /// Incident ids opened.
        pub opened: Vec<i64>,
        /// Incident ids updated (still firing, or resolved).
        pub updated: Vec<i64>,
    }

    // ------------------------------------------------------------ contacts

    /// A person who can be notified.
    pub struct Person {
        pub id: i64,
        pub name: String,
        /// Role in the organisation ("DBA", "DevOps lead").
        pub title: String,
        pub email: Option<String>,
        pub phone: Option<String>,
        pub chat_handle: Option<String>,
        /// The Opsdeck user this person is, if any.
        pub user_id: Option<i64>,
        pub teams: Vec<String>,
    }

    pub struct PersonInput {
        pub name: String,
        #[serde(default)]
        pub title: String,
        #[serde(default)]
        pub email: Option<String>,
        #[serde(default)]
        pub phone: Option<String>,
        #[serde(default)]
        pub chat_handle: Option<String>,
        #[serde(default)]
        pub user_id: Option<i64>,
    }

    pub struct PersonRef {
        pub id: i64,
        pub name: String,
    }

    pub struct Team {
        pub id: i64,
        pub name: String,
        pub description: String,
        pub members: Vec<PersonRef>,
    }

    pub struct TeamInput {
        pub name: String,
        #[serde(default)]
        pub description: String,
        #[serde(default)]
        pub members: Vec<i64>,
    }

    pub struct Rotation {
        pub id: i64,
        pub name: String,
        pub team_id: Option<i64>,
        /// daily or weekly.
        pub handoff: String,
        /// Local time of the handoff, `HH:MM`.
        pub handoff_time: String,
        /// ISO weekday (1 = Monday) of a weekly handoff.
        pub handoff_weekday: Option<i16>,
        /// IANA time zone.
        pub time_zone: String,
        pub starts_on: NaiveDate,
        /// In turn order.
        pub members: Vec<PersonRef>,
        /// Current and future overrides.
        pub overrides: Vec<RotationOverride>,
    }

    pub struct RotationInput {
        pub name: String,
        #[serde(default)]
        pub team_id: Option<i64>,
        pub handoff: String,
        pub handoff_time: String,
        #[serde(default)]
        pub handoff_weekday: Option<i16>,
        pub time_zone: String,
        pub starts_on: NaiveDate,
        pub members: Vec<i64>,
    }

    pub struct RotationOverride {
        pub id: i64,
        pub person: PersonRef,
        pub starts_at: DateTime<Utc>,
        pub ends_at: DateTime<Utc>,
        pub reason: String,
        pub created_by: String,
    }

    pub struct OverrideInput {
        pub person_id: i64,
        pub starts_at: DateTime<Utc>,
        pub ends_at: DateTime<Utc>,
        #[serde(default)]
        pub reason: String,
    }

    /// `GET /api/v1/oncall`: who is on call now and next, per rotation.
    pub struct OnCall {
        pub rotation_id: i64,
        pub rotation: String,
        pub current: Option<OnCallShift>,
        pub next: Option<OnCallShift>,
    }

    pub struct OnCallShift {
        pub person: PersonRef,
        pub phone: Option<String>,
        pub email: Option<String>,
        pub from: DateTime<Utc>,
        pub until: DateTime<Utc>,
        /// Covered by an override rather than the rotation.
        pub is_override: bool,
    }

    pub struct EscalationPolicy {
        pub id: i64,
        pub name: String,
        pub description: String,
        pub is_default: bool,
        pub levels: Vec<EscalationLevel>,
    }

    /// A level: who is notified how long after the trigger if nobody has
    /// acknowledged.
    pub struct EscalationLevel {
        pub delay_secs: i64,
        pub targets: Vec<EscalationTarget>,
    }

    pub struct EscalationTarget {
        /// person, rotation or team.
        pub kind: String,
        pub id: i64,
        /// Filled in on reads.
        #[serde(default)]
        pub name: Option<String>,
    }

    pub struct EscalationPolicyInput {
        pub name: String,
        #[serde(default)]
        pub description: String,
        #[serde(default)]
        pub is_default: bool,
        pub levels: Vec<EscalationLevel>,
    }

    // ------------------------------------------------------------ channels

    /// A notification channel (admins only: URLs of chat webhooks are
    /// credentials too).
    pub struct Channel {
        pub id: i64,
        pub name: String,
        /// webhook, slack, teams, email or sms.
        pub kind: String,
        pub config: ChannelConfig,
        /// A secret is set (it is never returned).
        pub has_secret: bool,
        pub enabled: bool,
        /// Severities whose notifications go through this channel.
        pub severities: Vec<Severity>,
    }

    /// Per kind: webhook/slack/teams/sms use `url`; email uses the SMTP
    /// fields and `from`.
    #[derive(Default)]
    pub struct ChannelConfig {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub url: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub smtp_host: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub smtp_port: Option<u16>,
        /// none, starttls or tls.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub smtp_tls: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub smtp_username: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub from: Option<String>,
    }

    pub struct ChannelInput {
        pub name: String,
        pub kind: String,
        #[serde(default)]
        pub config: ChannelConfig,
        /// `None` keeps the stored secret; `Some("")` clears it.
        #[serde(default)]
        pub secret: Option<String>,
        #[serde(default = "default_true")]
        pub enabled: bool,
        #[serde(default)]
        pub severities: Vec<Severity>,
    }

    /// `POST /api/v1/channels/{id}/test`.
    pub struct ChannelTestRequest {
        /// For e-mail and SMS: where the test goes.
        #[serde(default)]
        pub to: Option<String>,
    }

    pub struct ChannelTestResult {
        pub ok: bool,
        pub detail: String,
    }

    /// One message in the outbox.
    pub struct Notification {
        pub id: i64,
        /// escalation, update, runbook or test.
        pub kind: String,
        pub incident_id: Option<i64>,
        pub level: Option<i32>,
        pub channel: String,
        pub channel_kind: String,
        pub person: Option<String>,
        pub address: String,
        /// pending, sent, failed or cancelled.
        pub status: String,
        pub attempts: i32,
        pub last_error: Option<String>,
        pub sent_at: Option<DateTime<Utc>>,
        pub created_at: DateTime<Utc>,
    }

    // ------------------------------------------------------------- reports

    /// `GET /api/v1/reports/incidents`.
    pub struct IncidentReport {
        pub from: DateTime<Utc>,
        pub to: DateTime<Utc>,
        pub total: i64,
        /// Mean time to acknowledge / resolve, seconds.
        pub mtta_secs: Option<f64>,
        pub mttr_secs: Option<f64>,
        pub breaches: i64,
        pub weeks: Vec<WeekCount>,
        pub by_severity: Vec<ReportRow>,
        pub by_service: Vec<ReportRow>,
    }

    pub struct WeekCount {
        /// Monday of the ISO week.
        pub week: NaiveDate,
        pub count: i64,
    }

    /// Figures for one severity or one service.
    pub struct ReportRow {
        /// `P1`… or the service name.
        pub key: String,
        pub incidents: i64,
        pub mtta_secs: Option<f64>,
        pub mttr_secs: Option<f64>,
        pub sla_breaches: i64,
        /// Services only: uptime over the period (0–1) from health checks.
        pub uptime: Option<f64>,
    }
}

fn default_excerpt_lines() -> u32 {
    50
}

fn default_true() -> bool {
    true
}
