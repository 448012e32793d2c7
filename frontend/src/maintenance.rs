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
struct PageData {
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
        let services_res = LocalResource::new(|| api::services::list());
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

// ------------------------------------------------------------------ scope fields

/// The scope part of the start and window forms.
#[derive(Clone, Copy)]
struct ScopeState {
    by_stack: RwSignal<bool>,
    stack: RwSignal<String>,
    services: RwSignal<Vec<String>>,
    /// Apply the stack's actuation (stack scope only).
    actuate: RwSignal<bool>,
}

impl ScopeState {
    fn new(scope: Option<&MaintenanceScope>, actuate: bool) -> ScopeState {
        let (by_stack, stack, services) = match scope {
            None => (true, String::new(), Vec::new()),
            Some(MaintenanceScope::Stack { stack }) => (true, stack.clone(), Vec::new()),
            Some(MaintenanceScope::Services { services }) => {
                (false, String::new(), services.clone())
            }
        };
        ScopeState {
            by_stack: RwSignal::new(by_stack),
            stack: RwSignal::new(stack),
            services: RwSignal::new(services),
            actuate: RwSignal::new(actuate),
        }
    }

    /// The scope chosen (tracked: the window preview follows it).
    fn scope(self) -> Result<MaintenanceScope, String> {
        if self.by_stack.get() {
            let stack = self.stack.get();
            if stack.is_empty() {
                return Err("Choose a stack.".into());
            }
            Ok(MaintenanceScope::Stack { stack })
        } else {
            let services = self.services.get();
            if services.is_empty() {
                return Err("Choose at least one service.".into());
            }
            Ok(MaintenanceScope::Services { services })
        }
    }

    fn actuate_value(self) -> bool {
        self.by_stack.get() && self.actuate.get()
    }
}

/// Scope radio (whole stack or chosen services), the stack select with its
/// actuation, or the service checkboxes. Test ids start with `prefix`:
/// `{prefix}-scope-stack`, `{prefix}-scope-services`, `{prefix}-stack-select`,
/// `{prefix}-actuate`, `{prefix}-service-<name>`.
#[component]
fn ScopeFields(state: ScopeState, data: PageData, prefix: &'static str) -> impl IntoView {
    let filter = RwSignal::new(String::new());
    // A new form picks the first stack once they are known; without any
    // stack it starts on "chosen services".
    Effect::new(move |_| {
        let first = data.stacks.with(|s| match s {
            Some(Ok(v)) => Some(v.first().map(|s| s.stack.clone())),
            _ => None,
        });
        match first {
            Some(Some(first)) if state.stack.with_untracked(String::is_empty) => {
                state.stack.set(first)
            }
            Some(None) => state.by_stack.set(false),
            _ => {}
        }
    });
    let radio = format!("{prefix}-scope");
    let radio2 = radio.clone();
    let chosen_stack = Memo::new(move |_| {
        let name = state.stack.get();
        data.stacks.with(|s| match s {
            Some(Ok(v)) => v.iter().find(|s| s.stack == name).cloned(),
            _ => None,
        })
    });
    let stack_part = move || {
        let stacks = data.stacks.get();
        match stacks {
            None => view! { <Loading rows=1/> }.into_any(),
            Some(Err(e)) => view! { <p class="error-text">"Cannot list the stacks: "{e.message}</p> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! {
                <p class="muted small" data-testid=format!("{prefix}-no-stacks")>"No stacks: the inventory has no compose project. Choose services instead."</p>
            }.into_any(),
            Some(Ok(list)) => view! {
                <div class="maint-stack-pick">
                    <label>"Stack"
                        <select data-testid=format!("{prefix}-stack-select")
                            on:change=move |e| state.stack.set(event_target_value(&e))>
                            {list.into_iter().map(|s| {
                                let name = s.stack.clone();
                                let n2 = name.clone();
                                let count = s.services.len();
                                view! {
                                    <option value=name.clone() prop:selected=move || state.stack.with(|c| *c == n2)>
                                        {format!("{name} ({count} service{})", if count == 1 { "" } else { "s" })}
                                    </option>
                                }
                            }).collect_view()}
                        </select>
                    </label>
                    {move || chosen_stack.get().map(|s| {
                        let mode = stack_mode(&s);
                        let none = mode == ActuationMode::None;
                        view! {
                            <div class="maint-actuation">
                                <p class="muted small maint-stack-services">{s.services.join(", ")}</p>
                                <label class="check" title=if none { "This stack has no actuation yet: an admin sets one under Stacks." } else { "" }>
                                    <input type="checkbox" data-testid=format!("{prefix}-actuate")
                                        prop:checked=move || state.actuate.get()
                                        on:change=move |e| state.actuate.set(event_target_checked(&e))/>
                                    "Apply the stack's actuation "
                                    <span class=format!("tag maint-mode maint-mode-{}", mode_text(mode)) data-testid=format!("{prefix}-mode")>{mode_text(mode)}</span>
                                </label>
                                <span class="hint">{mode_help(mode)}</span>
                            </div>
                        }
                    })}
                </div>
            }.into_any(),
        }
    };
    let services_part = move || {
        let q = filter.get().to_lowercase();
        let names: Vec<String> = data
            .service_names
            .get()
            .into_iter()
            .filter(|n| q.is_empty() || n.to_lowercase().contains(&q))
            .collect();
        view! {
            <div class="maint-services-pick">
                <input type="search" class="search" placeholder="Filter services" aria-label="Filter services"
                    prop:value=move || filter.get() on:input=move |e| filter.set(event_target_value(&e))/>
                <span class="muted small">{move || {
                    let n = state.services.with(Vec::len);
                    if n == 0 { "none chosen".to_string() } else { format!("{n} chosen") }
                }}</span>
                <div class="check-grid">
                    {if names.is_empty() {
                        view! { <p class="muted">"No services match."</p> }.into_any()
                    } else {
                        names.into_iter().map(|name| {
                            let n1 = name.clone();
                            let n2 = name.clone();
                            view! {
                                <label class="check">
                                    <input type="checkbox" data-testid=format!("{prefix}-service-{name}")
                                        prop:checked=move || state.services.with(|c| c.contains(&n1))
                                        on:change=move |e| {
                                            let on = event_target_checked(&e);
                                            let n = n2.clone();
                                            state.services.update(|c| {
                                                c.retain(|x| *x != n);
                                                if on { c.push(n); c.sort(); }
                                            });
                                        }/>
                                    {name}
                                </label>
                            }
                        }).collect_view().into_any()
                    }}
                </div>
            </div>
        }
    };
    view! {
        <fieldset class="span-all maint-scope">
            <legend>"Scope"</legend>
            <div class="maint-scope-choice" role="radiogroup" aria-label="Scope">
                <label class="check">
                    <input type="radio" name=radio value="stack" data-testid=format!("{prefix}-scope-stack")
                        prop:checked=move || state.by_stack.get() on:change=move |_| state.by_stack.set(true)/>
                    "Whole stack"
                </label>
                <label class="check">
                    <input type="radio" name=radio2 value="services" data-testid=format!("{prefix}-scope-services")
                        prop:checked=move || !state.by_stack.get() on:change=move |_| state.by_stack.set(false)/>
                    "Chosen services"
                </label>
            </div>
            {move || if state.by_stack.get() { stack_part().into_any() } else { services_part().into_any() }}
        </fieldset>
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

/// End now / Extend for the periods of a page: created once by the page
/// (the confirm dialog lives outside the rows, which polling re-renders).
#[derive(Clone, Copy)]
struct PeriodControls {
    /// The period an action is under way for.
    busy: RwSignal<Option<i64>>,
    end_target: RwSignal<Option<MaintenancePeriod>>,
    end_open: RwSignal<bool>,
    /// Gets the answer of an action.
    on_done: Callback<Result<MaintenancePeriod, ApiError>>,
}

impl PeriodControls {
    fn new(on_done: Callback<Result<MaintenancePeriod, ApiError>>) -> PeriodControls {
        PeriodControls {
            busy: RwSignal::new(None),
            end_target: RwSignal::new(None),
            end_open: RwSignal::new(false),
            on_done,
        }
    }

    fn extend(self, id: i64, until: DateTime<Utc>) {
        self.busy.set(Some(id));
        leptos::task::spawn_local(async move {
            let r = extend_period(id, until).await;
            self.busy.try_set(None);
            self.on_done.run(r);
        });
    }

    fn end(self) {
        let Some(p) = self.end_target.get_untracked() else {
            return;
        };
        let id = p.id;
        self.busy.set(Some(id));
        leptos::task::spawn_local(async move {
            let r = end_period(id).await;
            self.busy.try_set(None);
            self.on_done.run(r);
        });
    }
}

/// The End now confirmation of a page (the shared dialog: `confirm`).
#[component]
fn EndDialog(ctl: PeriodControls) -> impl IntoView {
    let title = Signal::derive(move || {
        ctl.end_target
            .with(|p| {
                p.as_ref()
                    .map(|p| format!("End maintenance “{}” now?", p.title))
            })
            .unwrap_or_default()
    });
    let message = Signal::derive(move || {
        ctl.end_target.with(|p| match p {
            None => String::new(),
            Some(p) if p.status == PeriodStatus::Requested => {
                "It has not started yet: it is cancelled.".to_string()
            }
            Some(p) => format!(
                "The actuation is undone and {} maintenance; alarms are raised again from now on.",
                if p.services.len() == 1 {
                    format!("{} leaves", p.services[0])
                } else {
                    format!("its {} services leave", p.services.len())
                }
            ),
        })
    });
    view! {
        <Confirm open=ctl.end_open title message confirm_label="End now"
            on_confirm=Callback::new(move |_| ctl.end())/>
    }
}

/// The End now / Extend buttons of an open period.
#[component]
fn PeriodActions(
    period: MaintenancePeriod,
    ctl: PeriodControls,
    #[prop(optional)] small: bool,
) -> impl IntoView {
    let id = period.id;
    let until = period.ends_at;
    let busy = move || ctl.busy.get() == Some(id);
    let class = if small { "btn btn-small" } else { "btn" };
    view! {
        <div class="actions maint-actions">
            {EXTENSIONS.into_iter().map(|(label, minutes, suffix)| view! {
                <button class=class data-testid=format!("maint-extend-{id}{suffix}") disabled=busy
                    title=format!("Extend to {}", local_hm(until + TimeDelta::minutes(minutes)))
                    on:click=move |_| ctl.extend(id, until + TimeDelta::minutes(minutes))>{label}</button>
            }).collect_view()}
            <button class=format!("{class} btn-danger") data-testid=format!("maint-end-{id}") disabled=busy
                on:click={
                    let p = period.clone();
                    move |_| { ctl.end_target.set(Some(p.clone())); ctl.end_open.set(true); }
                }>"End now…"</button>
        </div>
    }
}

/// The periods in effect (and requested), polled.
#[component]
fn InEffect(data: PageData) -> impl IntoView {
    let list = LocalResource::new(move || {
        data.periods_reload.get();
        api::maintenance::periods("open")
    });
    let list = Memo::new(move |_| list.get());
    let notice = RwSignal::new(None::<Result<String, String>>);
    let on_done = Callback::new(move |r: Result<MaintenancePeriod, ApiError>| {
        notice.set(Some(match r {
            Ok(p) if p.status.is_open() && p.status != PeriodStatus::Disabling => Ok(format!(
                "“{}” now ends at {}.",
                p.title,
                local_hm(p.ends_at)
            )),
            Ok(p) => Ok(format!("“{}” is ending.", p.title)),
            Err(e) => Err(e.message),
        }));
        data.bump_periods();
    });
    let ctl = PeriodControls::new(on_done);
    let now = data.now;
    let row = move |p: MaintenancePeriod| {
        let id = p.id;
        let until = p.ends_at;
        let act = data.operator && can_act(p.status);
        let actions = p.clone();
        view! {
            <li class=format!("maint-period mp-{}", p.status.as_str()) data-testid=format!("maint-period-{id}")
                data-status=p.status.as_str()>
                <div class="maint-period-head">
                    <PeriodStatusPill status=p.status/>
                    <a class="strong-link wrap-anywhere" href=format!("/maintenance/{id}")>{p.title.clone()}</a>
                    <span class="muted small">{scope_text(&p.scope)}</span>
                    <span class="spacer"></span>
                    {act.then(|| view! { <PeriodActions period=actions ctl small=true/> })}
                </div>
                {(!p.reason.trim().is_empty()).then(|| view! { <p class="maint-reason pre-line wrap-anywhere">{p.reason.clone()}</p> })}
                <div class="maint-period-meta small">
                    <span>"started by "<strong>{p.started_by.clone()}</strong>" "<LiveTime at=p.starts_at now/></span>
                    <span>"until "<When at=until/>" "
                        <span class="maint-countdown" data-testid=format!("maint-countdown-{id}")>{move || format!("({})", ends_in(until, now.get()))}</span>
                    </span>
                    {p.window_id.map(|_| view! { <span class="tag">"window"</span> })}
                    {(p.suppressed > 0).then(|| view! { <span class="muted">{format!("{} suppressed", p.suppressed)}</span> })}
                    {p.error.clone().map(|e| view! { <span class="error-text">{e}</span> })}
                </div>
            </li>
        }
    };
    view! {
        <section class="card maint-section" data-testid="maint-in-effect">
            <div class="card-head">
                <h2>"In effect"</h2>
                {move || list.with(|l| match l {
                    Some(Ok(v)) if !v.is_empty() => Some(view! { <span class="count">{v.len()}</span> }),
                    _ => None,
                })}
            </div>
            {move || notice.get().map(|n| match n {
                Ok(m) => view! { <div class="notice notice-ok" role="status" data-testid="maint-notice">{m}</div> }.into_any(),
                Err(m) => view! { <div class="notice notice-error" role="alert" data-testid="maint-notice">{m}</div> }.into_any(),
            })}
            {move || match list.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState title="Cannot list the maintenance periods" message=e.message retry=Callback::new(move |_| data.bump_periods())/> }.into_any(),
                Some(Ok(v)) if v.is_empty() => view! {
                    <div data-testid="maint-active" data-count="0">
                        <EmptyState title="No maintenance in effect">
                            <p>"Services are monitored and alarms raised as usual."</p>
                        </EmptyState>
                    </div>
                }.into_any(),
                Some(Ok(v)) => {
                    let count = v.len().to_string();
                    view! {
                        <ul class="plain-list maint-list" data-testid="maint-active" data-count=count>
                            {v.into_iter().map(row).collect_view()}
                        </ul>
                    }.into_any()
                }
            }}
            <EndDialog ctl/>
        </section>
    }
}

/// "Turn on maintenance" (operators).
#[component]
fn StartForm(data: PageData) -> impl IntoView {
    let scope = ScopeState::new(None, true);
    let reason = RwSignal::new(String::new());
    let until = RwSignal::new(local_input(now() + TimeDelta::hours(1)));
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    // (already open before, the period)
    let done = RwSignal::new(None::<(bool, MaintenancePeriod)>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        done.set(None);
        let sc = match untrack(|| scope.scope()) {
            Ok(s) => s,
            Err(m) => return error.set(Some(m)),
        };
        let why = reason.get_untracked().trim().to_string();
        if why.is_empty() {
            return error.set(Some("Say why (the banner shows it).".into()));
        }
        let Some(until) = parse_local_input(&until.get_untracked()) else {
            return error.set(Some("Give the expected end.".into()));
        };
        if until <= now() {
            return error.set(Some("The expected end is in the past.".into()));
        }
        let body = StartMaintenance {
            scope: sc,
            reason: why,
            until,
            actuate: untrack(|| scope.actuate_value()),
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = api::maintenance::start_period(&body).await;
            busy.try_set(false);
            match r {
                Ok((status, p)) => {
                    let already = status == 200;
                    if !already {
                        reason.try_set(String::new());
                    }
                    done.try_set(Some((already, p)));
                    data.bump_periods();
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let set_in = move |minutes: i64| {
        until.set(local_input(now() + TimeDelta::minutes(minutes)));
    };
    view! {
        <form class="card form-grid maint-form" data-testid="maint-start-form" on:submit=submit>
            <h2>"Turn on maintenance"</h2>
            <ScopeFields state=scope data prefix="maint"/>
            <label class="span-all">"Reason"
                <textarea rows="2" required maxlength="2000" data-testid="maint-reason"
                    placeholder="e.g. Upgrading Postgres to 16 (shown in the panel's banner, never on the public page)"
                    prop:value=move || reason.get() on:input=move |e| reason.set(event_target_value(&e))></textarea>
            </label>
            <div class="maint-until">
                <label>"Until"
                    <input type="datetime-local" required data-testid="maint-until"
                        prop:value=move || until.get() on:input=move |e| until.set(event_target_value(&e))/>
                </label>
                <div class="btn-row maint-quick" role="group" aria-label="Until, from now">
                    <span class="muted small">"from now:"</span>
                    {[("30 min", 30), ("1 h", 60), ("2 h", 120), ("4 h", 240)].into_iter().map(|(label, m)| view! {
                        <button type="button" class="btn btn-small btn-ghost" on:click=move |_| set_in(m)>{label}</button>
                    }).collect_view()}
                </div>
                <span class="hint">"Ends by itself then (extend it if needed); at most 7 days ahead."</span>
            </div>
            {move || error.get().map(|m| view! { <div class="notice notice-error span-all" role="alert" data-testid="maint-start-error">{m}</div> })}
            {move || done.get().map(|(already, p)| {
                let link = format!("/maintenance/{}", p.id);
                if already {
                    view! {
                        <div class="notice span-all" role="status" data-testid="maint-start-notice" data-already="true">
                            <span>"Already in maintenance — nothing changed: "</span>
                            <a href=link>{p.title.clone()}</a>
                            <span>" until "{local_hm(p.ends_at)}"."</span>
                        </div>
                    }.into_any()
                } else {
                    view! {
                        <div class="notice notice-ok span-all" role="status" data-testid="maint-start-notice" data-already="false">
                            <span>"Maintenance requested: "</span>
                            <a href=link>{p.title.clone()}</a>
                            <span>" until "{local_hm(p.ends_at)}"."</span>
                        </div>
                    }.into_any()
                }
            })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="maint-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Turning on…" } else { "⚒ Turn on maintenance" }}
                </button>
                <span class="hint">"Checks keep running; incidents and pages for these services are recorded as suppressed instead."</span>
            </div>
        </form>
    }
}

/// The last periods, newest first.
#[component]
fn Recent(data: PageData) -> impl IntoView {
    let list = LocalResource::new(move || {
        data.periods_reload.get();
        api::maintenance::periods("all")
    });
    let list = Memo::new(move |_| list.get());
    view! {
        <section class="card maint-section" data-testid="maint-recent-section">
            <h2>"Recent"</h2>
            {move || match list.get() {
                None => view! { <Loading rows=3/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| data.bump_periods())/> }.into_any(),
                Some(Ok(v)) if v.is_empty() => view! {
                    <div data-testid="maint-recent" data-count="0">
                        <EmptyState title="No maintenance yet">
                            <p>"Periods turned on by hand and occurrences of windows are listed here."</p>
                        </EmptyState>
                    </div>
                }.into_any(),
                Some(Ok(v)) => {
                    let count = v.len().to_string();
                    view! {
                        <div class="table-wrap"><table class="table maint-recent-table" data-testid="maint-recent" data-count=count>
                            <thead><tr>
                                <th>"Status"</th><th>"Maintenance"</th><th>"Scope"</th><th>"Started by"</th>
                                <th>"From"</th><th>"To"</th><th class="num">"Suppressed"</th>
                            </tr></thead>
                            <tbody>{v.into_iter().map(|p| {
                                let end = p.ended_at.unwrap_or(p.ends_at);
                                view! {
                                    <tr data-testid=format!("maint-recent-{}", p.id) data-status=p.status.as_str()>
                                        <td><PeriodStatusPill status=p.status/></td>
                                        <td class="cell-main"><a class="strong-link" href=format!("/maintenance/{}", p.id)>{p.title.clone()}</a>
                                            {p.window_id.map(|_| view! { " "<span class="tag">"window"</span> })}</td>
                                        <td class="wrap-anywhere">{scope_text(&p.scope)}</td>
                                        <td>{p.started_by.clone()}</td>
                                        <td class="nowrap" title=p.starts_at.format("%Y-%m-%d %H:%M UTC").to_string()>{local_text(p.starts_at)}</td>
                                        <td class="nowrap" title=end.format("%Y-%m-%d %H:%M UTC").to_string()>
                                            {local_text(end)}
                                            {p.ended_by.clone().map(|b| view! { <div class="muted small">"ended by "{b}</div> })}
                                        </td>
                                        <td class="num">{p.suppressed}</td>
                                    </tr>
                                }
                            }).collect_view()}</tbody>
                        </table></div>
                    }.into_any()
                }
            }}
        </section>
    }
}
