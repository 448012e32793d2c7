//! The backup catalog (`/api/v1/backup-targets`, `/api/v1/backup-plans`,
//! `/api/v1/backups`).
//!
//! A **plan** names its sources, a storage **target**, the zstd level and
//! whether to verify. Running a plan makes one **backup** (a set) with one
//! **artifact** per stored object (a database dump, the globals). A backup
//! is `succeeded` only when every artifact is stored with its checksum;
//! verification (read back, checksum, test restore, row counts) is recorded
//! separately.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What a plan backs up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BackupSource {
    /// A service with a Postgres check: `pg_dump` (custom format) of each
    /// database (all but templates when `databases` is empty) plus the
    /// globals (`pg_dumpall --globals-only`), over the check's connection.
    Postgres {
        service: String,
        #[serde(default)]
        databases: Vec<String>,
    },
    /// A service with a MariaDB/MySQL check: `mariadb-dump
    /// --single-transaction --routines --events --triggers` of each
    /// database (all but the system ones when `databases` is empty), over
    /// the check's connection. Artifact kind `mysqldump`.
    Mariadb {
        service: String,
        #[serde(default)]
        databases: Vec<String>,
    },
    /// A Docker volume on a registered engine (the only one when `engine`
    /// is empty), archived through the engine's archive API. Artifact kind
    /// `volume_tar` (top-level `volume/`).
    Volume {
        volume: String,
        #[serde(default)]
        engine: Option<String>,
    },
    /// A file or directory on the Opsdeck host (absolute, no `..`);
    /// symbolic links below it are archived as links. Artifact kind
    /// `files_tar` (top-level: the path's last name).
    Files { path: String },
}

/// Where a target stores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum TargetKind {
    /// A directory on the Opsdeck host.
    Local,
    /// A bucket of an S3-compatible object store (AWS S3, MinIO, Ceph RGW,
    /// Garage, …), reached with path-style requests.
    S3,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BackupStatus {
    Running,
    Succeeded,
    Failed,
    /// Its run ended (crash, kill, cancel) before it finished; partial
    /// files were removed.
    Interrupted,
}

impl BackupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Running => "running",
            BackupStatus::Succeeded => "succeeded",
            BackupStatus::Failed => "failed",
            BackupStatus::Interrupted => "interrupted",
        }
    }
    pub fn parse(s: &str) -> Option<BackupStatus> {
        Some(match s {
            "running" => BackupStatus::Running,
            "succeeded" => BackupStatus::Succeeded,
            "failed" => BackupStatus::Failed,
            "interrupted" => BackupStatus::Interrupted,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verification {
    Pending,
    Verified,
    Failed,
    /// The plan does not verify.
    Skipped,
}

impl Verification {
    pub fn as_str(self) -> &'static str {
        match self {
            Verification::Pending => "pending",
            Verification::Verified => "verified",
            Verification::Failed => "failed",
            Verification::Skipped => "skipped",
        }
    }
    pub fn parse(s: &str) -> Option<Verification> {
        Some(match s {
            "pending" => Verification::Pending,
            "verified" => Verification::Verified,
            "failed" => Verification::Failed,
            "skipped" => Verification::Skipped,
            _ => return None,
        })
    }
}

wire! {
    /// `POST|PUT /api/v1/backup-targets[/{id}]` (admins). Creating or
    /// changing an S3 target writes, reads back and removes a probe object
    /// first: 400 with the reason when that fails.
    pub struct TargetWrite {
        pub name: String,
        pub kind: TargetKind,
        /// Local: an absolute directory on the Opsdeck host (created if
        /// missing, mode 0700). Empty for S3.
        #[serde(default)]
        pub path: String,
        /// S3: the bucket and how to reach it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub s3: Option<S3Settings>,
        /// S3: the secret access key. Write-only: never returned (see
        /// `secret_set`); on update, absent, null or empty keeps the stored
        /// one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub secret_access_key: Option<String>,
    }

    /// Where an S3 target stores: `<endpoint>/<bucket>/<prefix>/<key>`.
    pub struct S3Settings {
        /// `https://host[:port]` (`http://` only with `allow_http`), without
        /// the bucket.
        pub endpoint: String,
        /// Signing region; empty means `us-east-1`.
        #[serde(default)]
        pub region: String,
        pub bucket: String,
        /// Objects are stored under `<prefix>/`; empty for the bucket's
        /// root.
        #[serde(default)]
        pub prefix: String,
        pub access_key_id: String,
        /// Allow a plain-HTTP endpoint (keys and backups cross the network
        /// unencrypted): must be said explicitly.
        #[serde(default)]
        pub allow_http: bool,
    }

    pub struct BackupTarget {
        pub id: i64,
        #[serde(flatten)]
        pub def: TargetWrite,
        /// S3: a secret access key is stored (it is never returned).
        #[serde(default)]
        pub secret_set: bool,
        pub created_at: DateTime<Utc>,
    }

    /// `POST|PUT /api/v1/backup-plans[/{id}]` (admins).
    pub struct PlanWrite {
        pub name: String,
        pub sources: Vec<BackupSource>,
        /// The target's name.
        pub target: String,
        /// 1 (fast) … 19 (small); default 3.
        #[serde(default = "three")]
        pub zstd_level: i32,
        #[serde(default = "yes")]
        pub verify: bool,
        #[serde(default = "yes")]
        pub enabled: bool,
        /// What pruning keeps; it runs after each good backup of the plan.
        #[serde(default)]
        pub retention: Retention,
        /// When the plan runs and when its newest backup is drilled (cron,
        /// in `timezone`). Empty: by hand only. The plan form starts with
        /// the handbooks' [`handbook_schedules`].
        #[serde(default)]
        pub schedules: Vec<PlanSchedule>,
        /// IANA zone of the schedules and of retention's days, weeks and
        /// months.
        #[serde(default = "utc")]
        pub timezone: String,
    }

    /// One timetable of a plan: a backup (`backup-run`) or a restore drill
    /// (`backup-drill`) on a cron expression.
    pub struct PlanSchedule {
        pub kind: PlanScheduleKind,
        pub cron: String,
    }

    /// The outcome of the newest restore drill of a plan.
    pub struct DrillOutcome {
        pub at: DateTime<Utc>,
        pub backup_id: Option<i64>,
        pub ok: bool,
        pub error: Option<String>,
    }

    /// `GET /api/v1/backup-plans/{id}/prune`: what pruning would keep and
    /// delete now, and why.
    pub struct PrunePreview {
        pub keep: Vec<PruneLine>,
        pub delete: Vec<PruneLine>,
    }

    pub struct PruneLine {
        pub backup: BackupSummary,
        /// Kept: the rules that keep it (`last 3`, `daily 2026-11-22`,
        /// `weekly 2026-W47`, `monthly 2026-11`, …). Deleted: why.
        pub reasons: Vec<String>,
    }

    /// `GET /api/v1/backups/attention`: what the dashboard shows about
    /// backups: plans whose newest backup failed, whose newest verification
    /// or drill failed, or that have no good backup within two days of a
    /// schedule.
    pub struct BackupAttention {
        pub plan: String,
        pub plan_id: i64,
        /// `backup failed`, `verification failed`, `drill failed`.
        pub problem: String,
        pub backup_id: Option<i64>,
        pub error: Option<String>,
        pub at: DateTime<Utc>,
    }

    pub struct BackupPlan {
        pub id: i64,
        #[serde(flatten)]
        pub def: PlanWrite,
        pub created_by: String,
        pub updated_at: DateTime<Utc>,
        /// The newest backup of the plan, if any.
        pub last: Option<BackupSummary>,
        /// The newest restore drill, if any.
        #[serde(default)]
        pub drill: Option<DrillOutcome>,
        /// The next scheduled backups and drills (at most 3 each), in time
        /// order.
        #[serde(default)]
        pub next: Vec<NextPlanRun>,
    }

    pub struct NextPlanRun {
        pub kind: PlanScheduleKind,
        pub at: DateTime<Utc>,
    }

    /// `POST /api/v1/backup-plans/{id}/run` and `/api/v1/backups/{id}/verify`:
    /// the run that does it (follow it at `/runs/{id}`).
    pub struct BackupRunStarted {
        pub run_id: i64,
    }

    /// A line of the catalog.
    pub struct BackupSummary {
        pub id: i64,
        pub plan: String,
        pub target: String,
        pub status: BackupStatus,
        pub verification: Verification,
        pub trigger: String,
        pub requested_by: String,
        pub started_at: DateTime<Utc>,
        pub finished_at: Option<DateTime<Utc>>,
        /// Stored (compressed) bytes.
        pub bytes: i64,
        /// Bytes the tools produced (before compression).
        pub raw_bytes: i64,
        pub error: Option<String>,
        pub verify_error: Option<String>,
        pub run_id: Option<i64>,
    }

    /// One stored object.
    pub struct BackupArtifact {
        pub idx: i32,
        /// e.g. `postgres:ledger/ledger`.
        pub source: String,
        /// `pg_dump` (custom format), `pg_globals` (SQL), `mysqldump`
        /// (SQL), `volume_tar` or `files_tar` (tar).
        pub kind: String,
        pub object_key: String,
        pub bytes: i64,
        pub raw_bytes: i64,
        /// Hex SHA-256 of the stored (compressed) bytes.
        pub sha256: Option<String>,
        /// The tool and its version, e.g. `pg_dump (PostgreSQL) 15.8`.
        pub tool: String,
        pub duration_ms: i64,
        /// Row counts per table taken at dump time (`schema.table`; a
        /// MariaDB table's bare name); for tar artifacts `files`, `bytes`,
        /// `dirs`, `symlinks`, `hardlinks` (and `others`).
        pub stats: BTreeMap<String, i64>,
        /// `running`, `stored` or `failed`.
        pub status: String,
        pub error: Option<String>,
    }

    /// `GET /api/v1/backups/{id}`.
    pub struct BackupDetail {
        #[serde(flatten)]
        pub summary: BackupSummary,
        pub artifacts: Vec<BackupArtifact>,
        pub verified_at: Option<DateTime<Utc>>,
    }
}

/// Where a restore writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RestoreInto {
    /// Over what was backed up (the same database, volume or directory);
    /// a safety backup of it is taken first.
    Original,
    /// A new database, volume or directory of this name (created; it must
    /// not exist yet). For a database: a name of lower-case letters,
    /// digits and `_` starting with a letter (at most 63).
    New { name: String },
}

wire! {
    /// `POST /api/v1/backups/{id}/restore` (operators): restore one
    /// artifact. Always a run of the built-in `backup-restore` runbook that
    /// waits for a second person's approval; the answer is that run
    /// ([`BackupRunStarted`]).
    pub struct RestoreRequest {
        /// The artifact's `idx`.
        pub artifact: i32,
        /// `"original"` or `{"new": {"name": "…"}}`.
        pub into: RestoreInto,
        /// Stop the services that depend on the source's service (reverse
        /// dependency order) for the restore and start them again
        /// afterwards (dependency order), also when the restore fails.
        #[serde(default)]
        pub stop_dependents: bool,
    }
}

/// Artifact kinds Opsdeck restores (the restore dialog offers these).
pub const RESTORABLE_KINDS: &[&str] = &["pg_dump", "mysqldump", "volume_tar", "files_tar"];

fn yes() -> bool {
    true
}

fn three() -> i32 {
    3
}

fn utc() -> String {
    "UTC".into()
}

/// What a plan's schedule starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum PlanScheduleKind {
    /// A backup of the plan.
    Backup,
    /// A restore drill: the newest good backup is read back and
    /// test-restored again.
    Drill,
}

/// Keep rules, applied together (a backup is kept when any rule keeps
/// it): the newest `keep_last`; the newest of each of the last
/// `keep_daily` days, `keep_weekly` ISO weeks and `keep_monthly` months
/// that have a backup (days in the plan's time zone). `max_age_days`
/// removes anything older whatever keeps it, except the newest backup.
///
/// The defaults carry the handbooks' ages over to counts: a week of
/// dailies, a month of weeklies, a year of monthlies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Retention {
    #[serde(default = "three")]
    pub keep_last: i32,
    #[serde(default = "seven")]
    pub keep_daily: i32,
    #[serde(default = "four")]
    pub keep_weekly: i32,
    #[serde(default = "twelve")]
    pub keep_monthly: i32,
    #[serde(default)]
    pub max_age_days: Option<i32>,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            keep_last: 3,
            keep_daily: 7,
            keep_weekly: 4,
            keep_monthly: 12,
            max_age_days: None,
        }
    }
}

fn seven() -> i32 {
    7
}

fn four() -> i32 {
    4
}

fn twelve() -> i32 {
    12
}

/// The handbooks' timetable: daily at 02:00, the weekly full backup on
/// Sunday at 03:00, the monthly archive on the 1st at 04:00, and a weekly
/// restore drill on Sunday at 05:00.
pub fn handbook_schedules() -> Vec<PlanSchedule> {
    [
        (PlanScheduleKind::Backup, "0 2 * * *"),
        (PlanScheduleKind::Backup, "0 3 * * 0"),
        (PlanScheduleKind::Backup, "0 4 1 * *"),
        (PlanScheduleKind::Drill, "0 5 * * 0"),
    ]
    .into_iter()
    .map(|(kind, cron)| PlanSchedule {
        kind,
        cron: cron.into(),
    })
    .collect()
}
