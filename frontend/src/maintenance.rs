//! Maintenance mode and maintenance windows.
//!
//! `/maintenance` (everyone; controls for operators, actuation settings for
//! admins): the periods in effect (polled every 5 s and whenever the status
//! board's maintenance list changes, no extra stream: see `live.rs`) with
//! End now and Extend, the form that turns maintenance on now for a stack or
//! chosen services, the scheduled windows ([`windows`]) with a live preview
//! of their next occurrences, the stacks and their actuators ([`stacks`]),
//! and the recent periods. `/maintenance/:id` ([`period`]): one period with
//! its suppressed alarms and timeline.
//!
//! Also here: the banner every page shows under the top bar while a period
//! is in effect ([`Banner`], from the status store's board, which is fetched
//! again on the board stream's `resync`), and the dashboard's maintenance
//! line of a service ([`service_mark`]).
//!
//! Times are shown and entered on the browser's clock (exact UTC on hover).

mod periods;
mod scope;
pub use periods::*;
pub use scope::*;

mod period;
mod stacks;
mod windows;

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Timelike, Utc};
use leptos::prelude::*;
use opsdeck_wire::{
    ActuationMode, EndMaintenance, ExtendMaintenance, MaintenanceMark, MaintenancePeriod,
    MaintenanceScope, MaintenanceStack, PeriodStatus, Role, StartMaintenance,
};

use crate::api::{self, ApiError};
use crate::status_store::use_status_store;

use crate::live::use_interval;
use crate::session::current_role;
use crate::states::health_pill;
use crate::time::{human_secs, use_now, LiveTime};
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

pub use period::PeriodPage;

// ------------------------------------------------------------------ time

pub use crate::time::{
    browser_timezone, local, local_hm, local_input, local_text, now, parse_local_input,
};

/// A time on the browser's clock, exact UTC on hover.
#[component]
fn When(at: DateTime<Utc>) -> impl IntoView {
    let exact = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    view! { <time class="nowrap" datetime=at.to_rfc3339() title=exact>{local_hm(at)}</time> }
}

/// "ends in 23 min" (or "ending…" once due: the server ends it).
fn ends_in(until: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let left = (until - now).num_seconds();
    if left > 0 {
        format!("ends in {}", human_secs(left))
    } else {
        "ending…".into()
    }
}

// ------------------------------------------------------------------ looks

/// Pill kind, icon and meaning of a period status.
pub fn period_look(s: PeriodStatus) -> (&'static str, &'static str, &'static str) {
    match s {
        PeriodStatus::Requested => (
            "unknown",
            "◷",
            "Asked for: waiting for an approval or a worker.",
        ),
        PeriodStatus::Enabling => (
            "maintenance",
            "…",
            "Being applied; services already show maintenance.",
        ),
        PeriodStatus::Active => ("maintenance", "⚒", "In maintenance."),
        PeriodStatus::Disabling => (
            "maintenance",
            "↺",
            "Being undone; services still show maintenance.",
        ),
        PeriodStatus::Ended => ("ok", "✓", "Over; the previous state is restored."),
        PeriodStatus::Failed => ("outage", "✕", "Enabling failed and was rolled back."),
        PeriodStatus::Cancelled => (
            "unknown",
            "■",
            "Never started: denied, cancelled, or its window was over first.",
        ),
    }
}

/// A period status as a pill; carries `data-status` (the wire word).
#[component]
pub fn PeriodStatusPill(
    status: PeriodStatus,
    #[prop(optional, into)] testid: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon, help) = period_look(status);
    view! {
        <span class=format!("pill pill-{kind}") data-testid=move || testid.get()
            data-status=status.as_str() title=help>
            <span aria-hidden="true">{icon}</span>" "{status.as_str()}
        </span>
    }
}

/// What a scope covers, as a short phrase.
pub fn scope_text(scope: &MaintenanceScope) -> String {
    match scope {
        MaintenanceScope::Stack { stack } => format!("stack {stack}"),
        MaintenanceScope::Services { services } if services.len() == 1 => {
            format!("service {}", services[0])
        }
        MaintenanceScope::Services { services } => {
            format!("{} services: {}", services.len(), services.join(", "))
        }
    }
}

fn mode_text(m: ActuationMode) -> &'static str {
    match m {
        ActuationMode::None => "none",
        ActuationMode::Proxy => "proxy",
        ActuationMode::Runbook => "runbook",
    }
}

/// What a stack's maintenance does besides marking and suppressing.
fn mode_help(m: ActuationMode) -> &'static str {
    match m {
        ActuationMode::None => "marking and suppression only",
        ActuationMode::Proxy => "the proxy serves the maintenance page",
        ActuationMode::Runbook => "runbooks run on enable and on disable",
    }
}

fn stack_mode(s: &MaintenanceStack) -> ActuationMode {
    s.actuator
        .as_ref()
        .map(|a| a.def.mode)
        .unwrap_or(ActuationMode::None)
}

// ------------------------------------------------------------------ API

async fn end_period(id: i64) -> Result<MaintenancePeriod, ApiError> {
    api::maintenance::end_period(
        id,
        &EndMaintenance {
            note: String::new(),
        },
    )
    .await
}

async fn extend_period(id: i64, until: DateTime<Utc>) -> Result<MaintenancePeriod, ApiError> {
    api::maintenance::extend_period(id, &ExtendMaintenance { until }).await
}

/// End now / extend are offered while a period is open and not already
/// being undone.
fn can_act(s: PeriodStatus) -> bool {
    s.is_open() && s != PeriodStatus::Disabling
}

/// The extensions offered: label, minutes, test id suffix.
const EXTENSIONS: [(&str, i64, &str); 2] = [("+30 min", 30, ""), ("+1 h", 60, "-1h")];

// ------------------------------------------------------------------ page data

type Loaded<T> = Option<Result<T, ApiError>>;

/// What the sections of the page share.
#[derive(Clone, Copy)]
pub(crate) struct PageData {
    operator: bool,
    admin: bool,
    stacks: Memo<Loaded<Vec<MaintenanceStack>>>,
    stacks_reload: RwSignal<u32>,
    /// Every service name (the inventory's and the stacks'), sorted.
    service_names: Memo<Vec<String>>,
    /// Bumped to fetch the periods again (open and recent).
    periods_reload: RwSignal<u32>,
    /// Bumped to fetch the windows again.
    windows_reload: RwSignal<u32>,
    now: RwSignal<DateTime<Utc>>,
}

impl PageData {
    fn new() -> PageData {
        let role = current_role();
        let stacks_reload = RwSignal::new(0u32);
        let stacks_res = LocalResource::new(move || {
            stacks_reload.get();
            api::maintenance::stacks()
        });
        let services_res = LocalResource::new(api::services::list);
        let stacks = Memo::new(move |_| stacks_res.get());
        let service_names = Memo::new(move |_| {
            let mut names = BTreeSet::new();
            if let Some(Ok(list)) = services_res.get() {
                names.extend(list.into_iter().map(|o| o.service.name));
            }
            stacks.with(|s| {
                if let Some(Ok(list)) = s {
                    for st in list {
                        names.extend(st.services.iter().cloned());
                    }
                }
            });
            names.into_iter().collect::<Vec<_>>()
        });
        PageData {
            operator: role >= Role::Operator,
            admin: role >= Role::Admin,
            stacks,
            stacks_reload,
            service_names,
            periods_reload: RwSignal::new(0),
            windows_reload: RwSignal::new(0),
            now: use_now(),
        }
    }

    fn bump_periods(self) {
        self.periods_reload.try_update(|n| *n = n.wrapping_add(1));
    }

    fn bump_stacks(self) {
        self.stacks_reload.try_update(|n| *n = n.wrapping_add(1));
    }

    fn bump_windows(self) {
        self.windows_reload.try_update(|n| *n = n.wrapping_add(1));
    }
}

// ------------------------------------------------------------------ banner

/// Under the top bar on every page while maintenance is in effect: one line
/// per period, from the status board (fetched again on `resync`).
#[component]
pub fn Banner() -> impl IntoView {
    let store = use_status_store();
    move || {
        store.maintenance.with(|list| {
            (!list.is_empty()).then(|| {
                view! {
                    <div class="maint-banner" data-testid="maintenance-banner" role="status" aria-live="polite"
                        data-count=list.len().to_string()>
                        {list.iter().map(|b| {
                            let status = (b.status != PeriodStatus::Active).then(|| format!(" · {}", b.status.as_str()));
                            let exact = b.until.format("%Y-%m-%d %H:%M UTC").to_string();
                            view! {
                                <a class="maint-banner-line" href=format!("/maintenance/{}", b.period_id)
                                    data-testid=format!("maintenance-banner-{}", b.period_id) data-status=b.status.as_str()
                                    title=b.services.join(", ")>
                                    <span class="maint-banner-icon" aria-hidden="true">"⚒"</span>
                                    <span class="maint-banner-text">
                                        <strong>"Maintenance: "{b.title.clone()}</strong>
                                        " — started by "{b.started_by.clone()}", until "
                                        <time datetime=b.until.to_rfc3339() title=exact>{local_hm(b.until)}</time>
                                        {(!b.reason.trim().is_empty()).then(|| format!(" ({})", b.reason.trim()))}
                                        {status}
                                    </span>
                                </a>
                            }
                        }).collect_view()}
                    </div>
                }
            })
        })
    }
}

/// The dashboard's line for a service under maintenance.
pub fn service_mark(m: &MaintenanceMark, name: &str) -> impl IntoView {
    let observed = health_pill(m.observed).2;
    let exact = m.until.format("%Y-%m-%d %H:%M UTC").to_string();
    let title = format!("Started by {}: {}", m.started_by, m.reason);
    view! {
        <a class="maint-mark small" href=format!("/maintenance/{}", m.period_id)
            data-testid=format!("service-maintenance-{name}") data-observed=m.observed.as_str() title=title>
            <span aria-hidden="true">"⚒ "</span>"Maintenance until "
            <time datetime=m.until.to_rfc3339() title=exact>{local_hm(m.until)}</time>
            " — checks say "<strong>{observed}</strong>
        </a>
    }
}

// ------------------------------------------------------------------ the page

#[component]
pub fn Maintenance() -> impl IntoView {
    let data = PageData::new();
    // Poll the periods; also fetch them again when the board's maintenance
    // list changes (it follows the status stream's resync).
    use_interval(Duration::from_secs(5), move || data.bump_periods());
    let store = use_status_store();
    Effect::new(
        move |prev: Option<Vec<(i64, PeriodStatus, DateTime<Utc>)>>| {
            let now: Vec<_> = store
                .maintenance
                .with(|v| v.iter().map(|b| (b.period_id, b.status, b.until)).collect());
            if prev.as_ref().is_some_and(|p| *p != now) {
                data.bump_periods();
            }
            now
        },
    );
    let preview_href = move || {
        let until = data.now.get() + TimeDelta::hours(1);
        let until = until.with_nanosecond(0).unwrap_or(until);
        api::maintenance::page_preview_url(until)
    };
    view! {
        <div class="page-head">
            <h1>"Maintenance"</h1>
            <span class="spacer"></span>
            <a class="btn" href=preview_href target="_blank" rel="noopener" data-testid="maint-preview-page">
                "Preview page "<span aria-hidden="true">"↗"</span>
            </a>
        </div>
        <p class="lede">"Planned work without pages: services show maintenance, checks keep running, and what they would raise is recorded as suppressed. Every period ends by itself at its end time."</p>
        <InEffect data/>
        {data.operator.then(|| view! { <StartForm data/> })}
        <windows::Windows data/>
        <stacks::Stacks data/>
        <Recent data/>
    }
}
