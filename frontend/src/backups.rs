//! The backup catalog.
//!
//! `/backups` (everyone reads; operators run plans; admins manage targets
//! and plans): the plans with their last backup and Run now ([`plans`]),
//! the catalog filtered by plan and status ([`catalog`]), and the storage
//! targets ([`targets`]). Polled every 5 s while a backup runs or waits for
//! its verification (and for a while after Run now), else every 30 s: no
//! extra stream (see `live.rs`). `/backups/:id` ([`detail`]): one backup
//! with its artifacts, downloads, Verify again and Delete.
//!
//! Every backup and verification is a run of a built-in runbook: its live
//! progress is on the run page (`/runs/{id}`), linked from here.
//!
//! Sizes are 1000-based (KB, MB, GB), as in the runs' progress lines; times
//! are on the browser's clock (exact UTC on hover).

mod alerts;
mod catalog;
mod detail;
mod plans;
mod scheduling;
mod targets;

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use leptos::prelude::*;
use opsdeck_wire::{
    BackupPlan, BackupSource, BackupStatus, BackupSummary, BackupTarget, Role, Verification,
};

use crate::api::{self, ApiError};
use crate::time::now;

use crate::live::use_interval;
use crate::session::current_role;
use crate::time::use_now;

pub use detail::BackupPage;

// ------------------------------------------------------------------ text

/// Bytes in 1000-based units, as the server's progress lines write them:
/// `999 B`, `1.5 KB`, `2.0 GB`.
pub fn size(n: i64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let n = n.max(0);
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1000.0 && u < UNITS.len() - 1 {
        v /= 1000.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The compression ratio (`4.2×`), when both sizes are known.
pub fn ratio(stored: i64, raw: i64) -> Option<String> {
    (stored > 0 && raw > 0).then(|| format!("{:.1}×", raw as f64 / stored as f64))
}

/// A source as people say it: `Postgres ledger (all databases)`.
pub fn source_text(s: &BackupSource) -> String {
    match s {
        BackupSource::Postgres { service, databases } if databases.is_empty() => {
            format!("Postgres {service} (all databases)")
        }
        BackupSource::Postgres { service, databases } => {
            format!("Postgres {service} ({})", databases.join(", "))
        }
        BackupSource::Mariadb { service, databases } if databases.is_empty() => {
            format!("MariaDB {service} (all databases)")
        }
        BackupSource::Mariadb { service, databases } => {
            format!("MariaDB {service} ({})", databases.join(", "))
        }
        BackupSource::Volume {
            volume,
            engine: Some(e),
        } => format!("Docker volume {volume} on {e}"),
        BackupSource::Volume { volume, .. } => format!("Docker volume {volume}"),
        BackupSource::Files { path } => format!("Host files {path}"),
    }
}

/// How a backup was started.
pub fn trigger_text(t: &str) -> &str {
    match t {
        "manual" => "by hand",
        "schedule" => "scheduled",
        "safety" => "safety backup before a restore",
        other => other,
    }
}

/// Whether a backup may still change by itself (running, or waiting for
/// its verification).
pub fn in_progress(b: &BackupSummary) -> bool {
    b.status == BackupStatus::Running
        || (b.status == BackupStatus::Succeeded && b.verification == Verification::Pending)
}

// ------------------------------------------------------------------ looks

/// Pill kind, icon and meaning of a backup status.
pub fn status_look(s: BackupStatus) -> (&'static str, &'static str, &'static str) {
    match s {
        BackupStatus::Running => ("maintenance", "…", "Dumping and storing now."),
        BackupStatus::Succeeded => ("ok", "✓", "Every artifact is stored with its checksum."),
        BackupStatus::Failed => (
            "outage",
            "✕",
            "Failed: nothing of it is kept as good; see the error.",
        ),
        BackupStatus::Interrupted => (
            "degraded",
            "↯",
            "Its run ended before it finished (crash, kill, cancel); partial files were removed.",
        ),
    }
}

/// Pill kind, icon and meaning of a verification.
pub fn verification_look(v: Verification) -> (&'static str, &'static str, &'static str) {
    match v {
        Verification::Pending => ("unknown", "◷", "Not verified yet."),
        Verification::Verified => (
            "ok",
            "✓",
            "Read back with a matching checksum and test-restored with the same row counts.",
        ),
        Verification::Failed => ("outage", "✕", "Verification failed: see the error."),
        Verification::Skipped => ("unknown", "–", "The plan does not verify its backups."),
    }
}

/// A backup status as a pill; carries `data-status` (the wire word).
#[component]
pub fn BackupStatusPill(
    status: BackupStatus,
    #[prop(optional, into)] testid: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon, help) = status_look(status);
    view! {
        <span class=format!("pill pill-{kind}") data-testid=move || testid.get()
            data-status=status.as_str() title=help>
            <span aria-hidden="true">{icon}</span>" "{status.as_str()}
        </span>
    }
}

/// A verification as a pill; carries `data-verification` (the wire word).
#[component]
pub fn VerificationPill(
    verification: Verification,
    #[prop(optional, into)] testid: MaybeProp<String>,
    /// Shown on hover instead of the meaning (e.g. the verify error).
    #[prop(optional, into)]
    title: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon, help) = verification_look(verification);
    let word = match verification {
        Verification::Failed => "verify failed",
        v => v.as_str(),
    };
    view! {
        <span class=format!("pill pill-{kind} backup-verification") data-testid=move || testid.get()
            data-verification=verification.as_str() title=move || title.get().unwrap_or_else(|| help.to_string())>
            <span aria-hidden="true">{icon}</span>" "{word}
        </span>
    }
}

/// Stored size, with the size before compression and the ratio under it.
#[component]
pub fn Sizes(stored: i64, raw: i64, #[prop(optional)] running: bool) -> impl IntoView {
    if stored <= 0 && raw <= 0 {
        return view! { <span class="muted">{if running { "…" } else { "—" }}</span> }.into_any();
    }
    let under = match ratio(stored, raw) {
        Some(r) => format!("of {} · {r}", size(raw)),
        None => format!("of {}", size(raw)),
    };
    view! {
        <span class="nowrap" title=format!("{stored} bytes stored (compressed), {raw} bytes before compression")>{size(stored)}</span>
        <div class="muted small nowrap">{under}</div>
    }
    .into_any()
}

/// A time on the browser's clock, exact UTC on hover.
#[component]
pub fn When(at: DateTime<Utc>) -> impl IntoView {
    let exact = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    view! { <time class="nowrap" datetime=at.to_rfc3339() title=exact>{crate::time::local_text(at)}</time> }
}

// ------------------------------------------------------------------ page data

type Loaded<T> = Option<Result<T, ApiError>>;

/// The form a section shows: add, or edit one.
use crate::ui::FormMode;

/// What the sections of the page share.
#[derive(Clone, Copy)]
struct PageData {
    operator: bool,
    admin: bool,
    plans: Memo<Loaded<Vec<BackupPlan>>>,
    plans_reload: RwSignal<u32>,
    targets: Memo<Loaded<Vec<BackupTarget>>>,
    targets_reload: RwSignal<u32>,
    /// Bumped to fetch the catalog again.
    catalog_reload: RwSignal<u32>,
    /// The catalog shows a backup still in progress.
    catalog_busy: RwSignal<bool>,
    /// Poll fast until then (a plan was just run).
    fast_until: RwSignal<Option<DateTime<Utc>>>,
    /// The target form (opened from the plans' empty state too).
    target_form: RwSignal<Option<FormMode<BackupTarget>>>,
    now: RwSignal<DateTime<Utc>>,
}

impl PageData {
    fn new() -> PageData {
        let role = current_role();
        let plans_reload = RwSignal::new(0u32);
        let plans_res = LocalResource::new(move || {
            plans_reload.get();
            api::backups::plans()
        });
        let targets_reload = RwSignal::new(0u32);
        let targets_res = LocalResource::new(move || {
            targets_reload.get();
            api::backups::targets()
        });
        PageData {
            operator: role >= Role::Operator,
            admin: role >= Role::Admin,
            plans: Memo::new(move |_| plans_res.get()),
            plans_reload,
            targets: Memo::new(move |_| targets_res.get()),
            targets_reload,
            catalog_reload: RwSignal::new(0),
            catalog_busy: RwSignal::new(false),
            fast_until: RwSignal::new(None),
            target_form: RwSignal::new(None),
            now: use_now(),
        }
    }

    fn bump_plans(self) {
        self.plans_reload.try_update(|n| *n = n.wrapping_add(1));
    }

    fn bump_targets(self) {
        self.targets_reload.try_update(|n| *n = n.wrapping_add(1));
    }

    fn bump_catalog(self) {
        self.catalog_reload.try_update(|n| *n = n.wrapping_add(1));
    }

    /// Plans (their last backup) and the catalog.
    fn bump_backups(self) {
        self.bump_plans();
        self.bump_catalog();
    }

    /// Poll fast for the next two minutes (a backup was just asked for).
    fn hurry(self) {
        self.fast_until.try_set(Some(now() + TimeDelta::minutes(2)));
    }

    /// Whether something may change soon: poll every 5 s.
    fn busy(self) -> bool {
        let plans_busy = self
            .plans
            .try_with_untracked(|p| match p {
                Some(Ok(v)) => v.iter().any(|p| p.last.as_ref().is_some_and(in_progress)),
                _ => false,
            })
            .unwrap_or(false);
        let fast = self
            .fast_until
            .try_get_untracked()
            .flatten()
            .is_some_and(|t| t > now());
        plans_busy || fast || self.catalog_busy.try_get_untracked().unwrap_or(false)
    }

    /// The plans as loaded (empty until then).
    fn plan_list(self) -> Vec<BackupPlan> {
        self.plans.with(|p| match p {
            Some(Ok(v)) => v.clone(),
            _ => Vec::new(),
        })
    }
}

/// A form's error: the message shown above the buttons and the field it
/// is about (`name`, `path`, `target`, `zstd_level`, `sources[0].service`,
/// …), which is marked invalid. From the form's own checks or the API's
/// `field`.
#[derive(Clone, Debug, PartialEq)]
struct FormError {
    field: Option<String>,
    message: String,
}

impl FormError {
    /// About `field`; the message names it first, as the server's do.
    fn at(field: impl Into<String>, message: &str) -> FormError {
        let field = field.into();
        FormError {
            message: format!("{field}: {message}"),
            field: Some(field),
        }
    }
}

impl From<ApiError> for FormError {
    fn from(e: ApiError) -> FormError {
        FormError {
            field: e.field,
            message: e.message,
        }
    }
}

pub use alerts::BackupAlerts;

// ------------------------------------------------------------------ the page

#[component]
pub fn Backups() -> impl IntoView {
    let data = PageData::new();
    // Every 5 s while something runs (or was just started), else every 30 s.
    let ticks = StoredValue::new(0u32);
    use_interval(Duration::from_secs(5), move || {
        let n = ticks.get_value().wrapping_add(1);
        ticks.set_value(n);
        if data.busy() || n.is_multiple_of(6) {
            data.bump_backups();
        }
    });
    view! {
        <div class="page-head">
            <h1>"Backups"</h1>
        </div>
        <p class="lede">"Plans dump their sources through zstd into a storage target, with a SHA-256 per artifact; verification reads each backup back and test-restores it. Every backup and verification is a run: follow it live on its run page."</p>
        <plans::Plans data/>
        <catalog::Catalog data/>
        <targets::Targets data/>
    }
}
