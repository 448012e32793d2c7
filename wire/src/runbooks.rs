//! Wire types of runbooks, runs, approvals and schedules.
//!
//! A runbook definition ([`RunbookDef`]) is plain data: typed parameters and
//! ordered steps. String fields of steps may refer to parameters and to the
//! outputs of earlier steps with `{{params.NAME}}` and
//! `{{steps.STEP.FIELD}}`; the server substitutes them as *values* into
//! argv elements, service names, URLs or typed arguments, never into shell
//! text or SQL. Durations are humane strings (`30s`, `5m`, `1h 30m`).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::DbOp;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Role, ServiceHealth};

wire! {
    /// A runbook as stored: its current definition and bookkeeping.
    pub struct Runbook {
        pub id: i64,
        pub name: String,
        pub version: i32,
        /// Shipped with Opsdeck (still editable; a new version is a new row).
        pub builtin: bool,
        pub definition: RunbookDef,
        pub updated_at: DateTime<Utc>,
        pub updated_by: Option<String>,
    }

    /// A line of the runbook list.
    pub struct RunbookSummary {
        pub id: i64,
        pub name: String,
        pub title: String,
        pub description: String,
        pub version: i32,
        pub builtin: bool,
        pub params: Vec<ParamDef>,
        pub steps: usize,
        pub needs_approval: bool,
        pub last_run: Option<RunSummary>,
    }

    /// One stored version of a runbook.
    pub struct RunbookVersion {
        pub version: i32,
        pub created_at: DateTime<Utc>,
        pub created_by: Option<String>,
        pub definition: RunbookDef,
        /// The definition as YAML (what `export` returns).
        pub yaml: String,
    }

    /// Create or update a runbook: a definition as JSON, or as YAML text.
    /// Exactly one of the two.
    pub struct RunbookWrite {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub definition: Option<RunbookDef>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub yaml: Option<String>,
    }

    /// The definition of a runbook.
    pub struct RunbookDef {
        /// Identifier: lowercase letters, digits, `-`, `_` (unique).
        pub name: String,
        pub title: String,
        #[serde(default)]
        pub description: String,
        #[serde(default)]
        pub params: Vec<ParamDef>,
        pub steps: Vec<StepDef>,
        /// Run when a step with `on_failure: rollback` fails, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub rollback: Vec<StepDef>,
        /// One run per (runbook, target) at a time, where the target is the
        /// value of `target_param` (or the whole runbook without one), unless
        /// `allow_parallel` is set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub target_param: Option<String>,
        #[serde(default, skip_serializing_if = "is_false")]
        pub allow_parallel: bool,
        /// Approvals needed before the first step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub approval: Option<ApprovalPolicy>,
    }

    /// A typed parameter.
    pub struct ParamDef {
        /// Identifier used as `{{params.NAME}}`.
        pub name: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub label: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub help: String,
        #[serde(flatten)]
        pub kind: ParamKind,
        #[serde(default = "yes", skip_serializing_if = "is_true")]
        pub required: bool,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub default: Option<Value>,
    }

    /// N approvals from the given roles, never the requester, within `expires`.
    pub struct ApprovalPolicy {
        #[serde(default = "one")]
        pub required: u32,
        /// Roles allowed to approve (default: operator and admin).
        #[serde(default = "approver_roles")]
        pub roles: Vec<Role>,
        /// How long a request stays open (default `1h`).
        #[serde(default = "one_hour")]
        pub expires: String,
    }

    /// One step of a runbook.
    pub struct StepDef {
        /// Identifier; later steps read its outputs as `{{steps.NAME.FIELD}}`.
        pub name: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        pub title: String,
        #[serde(flatten)]
        pub action: StepAction,
        /// Longest the step may take (default depends on the kind).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<String>,
        #[serde(default, skip_serializing_if = "is_default_failure")]
        pub on_failure: OnFailure,
        /// Approvals needed before this step runs.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub approval: Option<ApprovalPolicy>,
    }
}

fn yes() -> bool {
    true
}
fn is_true(b: &bool) -> bool {
    *b
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn one() -> u32 {
    1
}
fn one_hour() -> String {
    "1h".into()
}
fn approver_roles() -> Vec<Role> {
    vec![Role::Operator, Role::Admin]
}
fn is_default_failure(f: &OnFailure) -> bool {
    *f == OnFailure::Stop
}

/// A parameter's type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ParamKind {
    /// A service of the inventory (by name).
    Service,
    /// A container name on a registered engine.
    Container,
    /// A service with a Postgres or MariaDB/MySQL check; the step connects
    /// with that check's URL and password.
    Database,
    Integer {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<i64>,
    },
    Choice {
        options: Vec<String>,
    },
    /// A humane duration (`90s`, `5m`, `1h`).
    Duration {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        min: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max: Option<String>,
    },
    /// Free text matching `pattern` (a whole-string regular expression).
    Text {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_len: Option<usize>,
    },
}

/// What a failed step does to the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The run fails here.
    #[default]
    Stop,
    /// The failure is recorded and the next step runs.
    Continue,
    /// The runbook's `rollback` steps run, then the run fails.
    Rollback,
    /// The escalation hook fires (an incident once incidents exist), then
    /// the run fails.
    Escalate,
}

/// What a step does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepAction {
    /// start/stop/restart/kill/pause/unpause the containers of a service.
    Container {
        service: String,
        action: String,
    },
    /// start/stop/restart a compose project in dependency order.
    Stack {
        project: String,
        action: String,
    },
    /// Scale a compose service to `replicas` containers (clones or removes
    /// containers of the service's compose project).
    Scale {
        service: String,
        replicas: String,
    },
    /// Run an argv array in a running container of the service (no shell).
    Exec {
        service: String,
        argv: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        container: Option<String>,
    },
    /// The last lines of the service's container logs.
    Logs {
        service: String,
        #[serde(default = "fifty")]
        lines: u32,
    },
    /// The service's health as the status board sees it.
    Status {
        service: String,
    },
    /// A database action from the built-in catalogue.
    Database {
        /// A service with a Postgres or MariaDB/MySQL check.
        database: String,
        op: DbOp,
        /// For `terminate_idle` / `terminate_active`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        older_than: Option<String>,
        /// For `vacuum_analyze` / `reindex` (schema-qualified allowed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        table: Option<String>,
        /// For `top_queries`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<u32>,
    },
    /// An HTTP request; fails unless the status matches (and the body
    /// contains `contains`, when given).
    Http {
        url: String,
        #[serde(default = "get")]
        method: String,
        #[serde(default = "two_hundred")]
        expect_status: u16,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contains: Option<String>,
    },
    /// Runs the service's health checks now (all, or those of `check_kind`)
    /// and fails when one is critical.
    Checks {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        check_kind: Option<String>,
    },
    /// Waits until the service is operational on the board (step timeout).
    WaitHealthy {
        service: String,
    },
    Sleep {
        duration: String,
    },
    /// Removes unused images, volumes, containers or networks on an engine.
    Prune {
        what: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        engine: Option<String>,
    },
    /// An operator ticks it off, with an optional note.
    Manual {
        instructions: String,
    },
    /// Waits for approvals (the step's `approval` policy, or one approval).
    Approval {
        #[serde(default, skip_serializing_if = "String::is_empty")]
        message: String,
    },
    /// Sends a message to people (recorded on the timeline; delivered by
    /// the notification channels once they exist).
    Notify {
        message: String,
        #[serde(default = "info")]
        severity: String,
    },
    /// Runs another runbook with parameters and waits for it.
    Runbook {
        runbook: String,
        #[serde(default)]
        params: BTreeMap<String, Value>,
    },
    /// Applies (`enable`) or undoes (`disable`) a maintenance period: marks
    /// it, runs the stack's actuator, rolls back on failure. Used by the
    /// built-in `maintenance-enable` / `maintenance-disable` runbooks, so an
    /// approval policy on `maintenance.enable` gates maintenance.
    Maintenance {
        op: String,
        /// The period id (a template such as `{{params.period}}`).
        period: String,
    },
    /// Runs a backup plan (`op: run`, `subject` = the plan's name) or
    /// verifies a backup (`op: verify`, `subject` = its id). Used by the
    /// built-in `backup-run` / `backup-verify` runbooks.
    Backup {
        op: String,
        subject: String,
    },
    /// Image updates (`updates`): `op: update` pulls the image and
    /// recreates the containers of the service `target` with the same
    /// configuration, gated on its health within `gate` (default: the
    /// service's gate time), rolling back by itself when the gate fails;
    /// `op: stack` does the same for every service of the compose project
    /// `target`, dependencies first, stopping at the first rollback. `to` is
    /// a tag or `sha256:` digest to move to (default: the newest digest of
    /// the service's own tag). Used by the built-in `image-update` and
    /// `stack-update` runbooks.
    Image {
        op: String,
        target: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        to: String,
        #[serde(default, skip_serializing_if = "String::is_empty")]
        gate: String,
    },
    /// Docker clean-up (`cleanup`): removes exactly the items of the
    /// clean-up preview `preview` (its id), skipping any that came into use
    /// since. Used by the built-in `docker-cleanup` runbook.
    Cleanup {
        preview: String,
    },
}

fn fifty() -> u32 {
    50
}
fn get() -> String {
    "GET".into()
}
fn two_hundred() -> u16 {
    200
}
fn info() -> String {
    "info".into()
}

impl StepAction {
    pub fn kind(&self) -> &'static str {
        match self {
            StepAction::Container { .. } => "container",
            StepAction::Stack { .. } => "stack",
            StepAction::Scale { .. } => "scale",
            StepAction::Exec { .. } => "exec",
            StepAction::Logs { .. } => "logs",
            StepAction::Status { .. } => "status",
            StepAction::Database { .. } => "database",
            StepAction::Http { .. } => "http",
            StepAction::Checks { .. } => "checks",
            StepAction::WaitHealthy { .. } => "wait_healthy",
            StepAction::Sleep { .. } => "sleep",
            StepAction::Prune { .. } => "prune",
            StepAction::Manual { .. } => "manual",
            StepAction::Approval { .. } => "approval",
            StepAction::Notify { .. } => "notify",
            StepAction::Runbook { .. } => "runbook",
            StepAction::Maintenance { .. } => "maintenance",
            StepAction::Backup { .. } => "backup",
            StepAction::Image { .. } => "image",
            StepAction::Cleanup { .. } => "cleanup",
        }
    }
}

/// A run's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    Queued,
    Running,
    /// Parked on an approval or a manual step; no process holds it.
    Waiting,
    Succeeded,
    Failed,
    Cancelled,
    /// The process running it stopped (crash, kill); what was done is
    /// recorded; an operator resumes or closes it.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }
    pub fn parse(s: &str) -> Option<RunStatus> {
        Some(match s {
            "queued" => RunStatus::Queued,
            "running" => RunStatus::Running,
            "waiting" => RunStatus::Waiting,
            "succeeded" => RunStatus::Succeeded,
            "failed" => RunStatus::Failed,
            "cancelled" => RunStatus::Cancelled,
            "interrupted" => RunStatus::Interrupted,
            _ => return None,
        })
    }
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RunStatus::Queued | RunStatus::Running | RunStatus::Waiting
        )
    }
}

/// A step's state within a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum StepStatus {
    Pending,
    Running,
    /// Waiting for approvals or for an operator to tick it off.
    Waiting,
    Succeeded,
    Failed,
    Skipped,
    Cancelled,
    Interrupted,
}

impl StepStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Waiting => "waiting",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Failed => "failed",
            StepStatus::Skipped => "skipped",
            StepStatus::Cancelled => "cancelled",
            StepStatus::Interrupted => "interrupted",
        }
    }
    pub fn parse(s: &str) -> Option<StepStatus> {
        Some(match s {
            "pending" => StepStatus::Pending,
            "running" => StepStatus::Running,
            "waiting" => StepStatus::Waiting,
            "succeeded" => StepStatus::Succeeded,
            "failed" => StepStatus::Failed,
            "skipped" => StepStatus::Skipped,
            "cancelled" => StepStatus::Cancelled,
            "interrupted" => StepStatus::Interrupted,
            _ => return None,
        })
    }
}

wire! {
    /// Start a run.
    pub struct StartRun {
        #[serde(default)]
        pub params: BTreeMap<String, Value>,
        /// Why (shown on the run and in the audit log).
        #[serde(default)]
        pub reason: String,
        /// Optional link to an incident (free text until incidents exist).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub incident: Option<String>,
    }

    /// A line of the run list.
    pub struct RunSummary {
        pub id: i64,
        pub runbook_id: i64,
        pub runbook: String,
        pub title: String,
        pub version: i32,
        pub status: RunStatus,
        pub target: String,
        pub requested_by: String,
        pub reason: String,
        pub created_at: DateTime<Utc>,
        pub started_at: Option<DateTime<Utc>>,
        pub finished_at: Option<DateTime<Utc>>,
        pub schedule_id: Option<i64>,
        /// Step position / total, for progress bars.
        pub done_steps: i32,
        pub total_steps: i32,
    }

    /// A run with everything the run page shows.
    pub struct Run {
        #[serde(flatten)]
        pub summary: RunSummary,
        pub params: BTreeMap<String, Value>,
        pub incident: Option<String>,
        pub parent_run_id: Option<i64>,
        pub error: Option<String>,
        pub closed_by: Option<String>,
        pub cancel_requested: bool,
        /// Hex digest binding approvals to (runbook, version, parameters).
        pub binding: String,
        pub steps: Vec<RunStep>,
        pub approvals: Vec<Approval>,
        pub timeline: Vec<TimelineEvent>,
    }

    /// A step of a run.
    pub struct RunStep {
        pub idx: i32,
        pub name: String,
        pub title: String,
        pub kind: String,
        /// `main` or `rollback`.
        pub phase: String,
        pub status: StepStatus,
        pub started_at: Option<DateTime<Utc>>,
        pub finished_at: Option<DateTime<Utc>>,
        pub output: String,
        /// Output beyond the limit was dropped (marked in `output` too).
        pub output_truncated: bool,
        /// The output and result of this step are hidden from the reader
        /// (viewers do not see the output of `logs`, `exec`, `database`
        /// and `http` steps; `output` is empty and `result` null).
        #[serde(default)]
        pub output_hidden: bool,
        /// Named outputs later steps can use.
        pub result: Value,
        pub error: Option<String>,
        pub note: Option<String>,
    }

    /// One entry of a timeline (append-only).
    pub struct TimelineEvent {
        pub id: i64,
        pub at: DateTime<Utc>,
        pub kind: String,
        pub actor: Option<String>,
        pub message: String,
        pub step: Option<i32>,
    }

    /// The plan a dry run shows: each step as it would run now.
    pub struct DryRun {
        pub runbook: String,
        pub version: i32,
        pub target: String,
        pub needs_approval: bool,
        pub steps: Vec<PlannedStep>,
    }

    pub struct PlannedStep {
        pub name: String,
        pub kind: String,
        /// What the step would do, with parameters substituted.
        pub description: String,
        pub timeout_secs: u64,
        pub on_failure: OnFailure,
        pub needs_approval: bool,
    }

    /// Tick off a manual step.
    pub struct CompleteStep {
        #[serde(default)]
        pub note: String,
    }

    /// Close an interrupted run without resuming it.
    pub struct CloseRun {
        #[serde(default)]
        pub note: String,
    }

    /// An approval request.
    pub struct Approval {
        pub id: i64,
        pub run_id: i64,
        pub runbook: String,
        /// `None`: before the first step.
        pub step: Option<i32>,
        pub step_name: Option<String>,
        /// What is being approved, in words.
        pub subject: String,
        pub params: BTreeMap<String, Value>,
        pub version: i32,
        pub requested_by: String,
        pub required: i32,
        pub roles: Vec<Role>,
        pub status: ApprovalStatus,
        pub created_at: DateTime<Utc>,
        pub expires_at: DateTime<Utc>,
        /// Hex digest the vote must echo.
        pub binding: String,
        pub votes: Vec<ApprovalVote>,
        /// The caller may vote on it now.
        pub can_vote: bool,
    }

    pub struct ApprovalVote {
        pub user: String,
        pub approve: bool,
        pub reason: String,
        pub at: DateTime<Utc>,
    }

    /// Approve or deny. `binding` is the digest the voter saw: if the
    /// request no longer matches it, the vote is refused.
    pub struct Vote {
        pub binding: String,
        #[serde(default)]
        pub reason: String,
    }

    /// Count of approvals the caller could vote on (navigation badge).
    pub struct ApprovalCount {
        pub pending: i64,
    }

    /// Approvals required for an action kind wherever it runs in a runbook
    /// (`container.stop.critical`, `prune`, `database.promote`,
    /// `database.terminate`, `exec`, `scale` …).
    pub struct ActionPolicy {
        pub action_kind: String,
        #[serde(flatten)]
        pub policy: ApprovalPolicy,
    }

    /// A schedule.
    pub struct Schedule {
        pub id: i64,
        pub runbook_id: i64,
        pub runbook: String,
        pub name: String,
        /// Cron expression (5 or 6 fields; seconds first when 6).
        pub cron: String,
        /// IANA time zone, e.g. `Europe/Berlin`.
        pub timezone: String,
        pub params: BTreeMap<String, Value>,
        pub enabled: bool,
        pub missed: MissedPolicy,
        pub next_runs: Vec<DateTime<Utc>>,
        pub last_tick_at: Option<DateTime<Utc>>,
        pub last_run_id: Option<i64>,
        pub last_run_status: Option<RunStatus>,
    }

    pub struct ScheduleWrite {
        pub runbook_id: i64,
        pub name: String,
        pub cron: String,
        #[serde(default = "utc")]
        pub timezone: String,
        #[serde(default)]
        pub params: BTreeMap<String, Value>,
        #[serde(default = "yes")]
        pub enabled: bool,
        #[serde(default)]
        pub missed: MissedPolicy,
    }

    /// Next fire times of a cron expression.
    pub struct CronPreview {
        pub next_runs: Vec<DateTime<Utc>>,
        /// Human description of the local times.
        pub local: Vec<String>,
    }

    /// Live update of a run (SSE `run` event): the whole run.
    pub struct RunUpdate {
        pub run: Run,
    }

    /// A service's health as a `status` step reports it.
    pub struct StepServiceStatus {
        pub service: String,
        pub health: ServiceHealth,
    }
}

fn utc() -> String {
    "UTC".into()
}

/// Ticks missed while no server ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum MissedPolicy {
    /// Forget them; run at the next tick.
    #[default]
    Skip,
    /// Run once for all of them when a server is back.
    CatchUp,
}

/// An approval request's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    Pending,
    Approved,
    Denied,
    Expired,
    /// The run ended (cancelled) before a decision.
    Withdrawn,
}

impl ApprovalStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Withdrawn => "withdrawn",
        }
    }
    pub fn parse(s: &str) -> Option<ApprovalStatus> {
        Some(match s {
            "pending" => ApprovalStatus::Pending,
            "approved" => ApprovalStatus::Approved,
            "denied" => ApprovalStatus::Denied,
            "expired" => ApprovalStatus::Expired,
            "withdrawn" => ApprovalStatus::Withdrawn,
            _ => return None,
        })
    }
}
