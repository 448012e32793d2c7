//! The dashboard (`/`): the status board of every service, grouped by tier
//! (Critical, Application, Support), with the overall banner, the engines'
//! state, host checks, search and a health filter; and the status pill of the
//! top bar.
//!
//! Both read one [`StatusStore`], provided at the app root (with the
//! session): the only `GET /api/v1/status/events` connection of the
//! document, open while a component uses the store (the top bar does as long
//! as somebody is logged in; see `live.rs` for the connection budget). It
//! fetches `GET /api/v1/status` once the status stream is open (and again
//! after a reconnect), then applies the `status` events in place, by
//! service. Each service row is
//! keyed by a revision that changes only when that service's status does, so
//! a change re-renders only the rows it touches, even with thousands of
//! services.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::{
    Check, Engine, MaintenanceBanner, Overall, Role, ServiceStatus, StatusBoard, StatusChange, Tier,
};

use crate::api::{self, ApiError};
use crate::live::{follow_status, use_inventory_events, Shared, StatusEvent};
use crate::session::current_role;
use crate::states::{
    health_from, health_help, health_pill, health_rank, is_health_problem, overall_state,
    overall_str, tier_label, CheckStatusPill, EngineStatePill, ALL_HEALTH,
};
use crate::ui::{duration_ms, EmptyState, ErrorState, Loading, Pill, RelTime};

/// Rows rendered per tier at once; the rest follow in steps of as many,
/// one step per frame, so the first rows (problems first) show at once even
/// with thousands of services.
const STEP: usize = 200;

/// One service on the board. `rev` is unique and changes whenever the
/// service's status is replaced: rows are keyed and compared by it.
#[derive(Clone, Debug)]
pub struct Row {
    pub rev: u64,
    pub s: Arc<ServiceStatus>,
}

impl PartialEq for Row {
    fn eq(&self, other: &Self) -> bool {
        self.rev == other.rev
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    Loading,
    Failed(ApiError),
    Ready,
}

#[derive(Default)]
struct Inner {
    /// Position of each service in `services`.
    index: HashMap<i64, usize>,
    next_rev: u64,
    fetching: bool,
    /// Fetch again when the current fetch ends.
    again: bool,
    /// Changes received while a fetch is under way (applied after it when
    /// newer than the board).
    pending: Vec<StatusChange>,
}

/// The status board, shared by the top bar, the dashboard, the checks and
/// the service pages.
#[derive(Clone, Copy)]
pub struct StatusStore {
    pub phase: RwSignal<Phase>,
    /// A refetch failed while the last board is shown.
    pub stale: RwSignal<Option<String>>,
    pub overall: RwSignal<Option<Overall>>,
    /// Sorted by tier, then name.
    pub services: RwSignal<Vec<Row>>,
    pub host_checks: RwSignal<Vec<Check>>,
    pub engines: RwSignal<Vec<Engine>>,
    /// Maintenance periods in effect (the panel's banner; the board is
    /// fetched again on `resync`, which the server sends when they change).
    pub maintenance: RwSignal<Vec<MaintenanceBanner>>,
    /// The board's version (bumps with every change applied).
    pub version: RwSignal<u64>,
    /// The status stream is open.
    pub live: RwSignal<bool>,
    inner: StoredValue<Inner, LocalStorage>,
    /// The status stream, open while the store has users.
    feed: StoredValue<Option<Rc<Shared>>, LocalStorage>,
}

fn set_if_changed<T: PartialEq + Send + Sync + 'static>(sig: RwSignal<T>, value: T) {
    if sig.try_with_untracked(|v| *v != value).unwrap_or(false) {
        sig.set(value);
    }
}

fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| {
        a.s.tier
            .cmp(&b.s.tier)
            .then_with(|| a.s.name.to_lowercase().cmp(&b.s.name.to_lowercase()))
            .then_with(|| a.s.service_id.cmp(&b.s.service_id))
    });
}

fn index_of(rows: &[Row]) -> HashMap<i64, usize> {
    rows.iter()
        .enumerate()
        .map(|(i, r)| (r.s.service_id, i))
        .collect()
}

/// The status store, counting the calling component as a user (the status
/// stream is open while it has users).
pub fn use_status_store() -> StatusStore {
    let store = expect_context::<StatusStore>();
    if let Some(feed) = store.feed.get_value() {
        feed.acquire();
    }
    store
}

impl StatusStore {
    /// Creates the store and provides it as context. Called once, at the app
    /// root; the stream opens with the first user ([`use_status_store`]).
    pub fn provide() -> StatusStore {
        let store = StatusStore {
            phase: RwSignal::new(Phase::Loading),
            stale: RwSignal::new(None),
            overall: RwSignal::new(None),
            services: RwSignal::new(Vec::new()),
            host_checks: RwSignal::new(Vec::new()),
            engines: RwSignal::new(Vec::new()),
            maintenance: RwSignal::new(Vec::new()),
            version: RwSignal::new(0),
            live: RwSignal::new(false),
            inner: StoredValue::new_local(Inner::default()),
            feed: StoredValue::new_local(None),
        };
        let feed = Shared::new(
            move || {
                // The stream may be slow to open (or never open): do not
                // wait for it to show something.
                set_timeout(
                    move || {
                        if store.never_fetched() {
                            store.fetch();
                        }
                    },
                    Duration::from_millis(1500),
                );
                follow_status(move |e| match e {
                    StatusEvent::Change(c) => store.apply(c),
                    StatusEvent::Resync => {
                        set_if_changed(store.live, true);
                        store.fetch();
                    }
                    StatusEvent::Down => {
                        set_if_changed(store.live, false);
                        if store.never_fetched() {
                            store.fetch();
                        }
                    }
                })
            },
            move || set_if_changed(store.live, false),
        );
        store.feed.set_value(Some(feed));
        provide_context(store);
        store
    }

    fn never_fetched(self) -> bool {
        self.phase
            .try_with_untracked(|p| *p == Phase::Loading)
            .unwrap_or(false)
            && !self.inner.try_with_value(|i| i.fetching).unwrap_or(true)
    }

    /// Fetches the whole board (one fetch at a time; a request during a
    /// fetch fetches once more after it).
    pub fn fetch(self) {
        let go = self
            .inner
            .try_update_value(|i| {
                if i.fetching {
                    i.again = true;
                    false
                } else {
                    i.fetching = true;
                    true
                }
            })
            .unwrap_or(false);
        if !go {
            return;
        }
        leptos::task::spawn_local(async move {
            let r = api::get::<StatusBoard>("/api/v1/status").await;
            match r {
                Ok(b) => self.load(b),
                Err(e) => {
                    if self.phase.try_with_untracked(|p| *p == Phase::Ready) == Some(true) {
                        self.stale.set(Some(e.message));
                    } else {
                        self.phase.set(Phase::Failed(e));
                    }
                }
            }
            let again = self
                .inner
                .try_update_value(|i| {
                    i.fetching = false;
                    i.pending.clear();
                    std::mem::take(&mut i.again)
                })
                .unwrap_or(false);
            if again {
                self.fetch();
            }
        });
    }

    /// Fetches again after an error was shown.
    pub fn retry(self) {
        self.phase.set(Phase::Loading);
        self.fetch();
    }

    fn load(self, b: StatusBoard) {
        let old: HashMap<i64, Row> = self
            .services
            .try_with_untracked(|v| v.iter().map(|r| (r.s.service_id, r.clone())).collect())
            .unwrap_or_default();
        let Some((rows, pending)) = self.inner.try_update_value(|i| {
            let mut rows = Vec::with_capacity(b.services.len());
            for s in b.services {
                match old.get(&s.service_id) {
                    // Unchanged: same revision, the row is not re-rendered.
                    Some(r) if *r.s == s => rows.push(r.clone()),
                    _ => {
                        i.next_rev += 1;
                        rows.push(Row {
                            rev: i.next_rev,
                            s: Arc::new(s),
                        });
                    }
                }
            }
            sort_rows(&mut rows);
            i.index = index_of(&rows);
            (rows, std::mem::take(&mut i.pending))
        }) else {
            return;
        };
        let unchanged = self
            .services
            .try_with_untracked(|v| {
                v.len() == rows.len() && v.iter().zip(&rows).all(|(a, b)| a == b)
            })
            .unwrap_or(false);
        if !unchanged {
            self.services.set(rows);
        }
        set_if_changed(self.host_checks, b.host_checks);
        set_if_changed(self.engines, b.engines);
        set_if_changed(self.maintenance, b.maintenance);
        set_if_changed(self.overall, Some(b.overall));
        set_if_changed(self.version, b.version);
        set_if_changed(self.stale, None);
        set_if_changed(self.phase, Phase::Ready);
        for c in pending {
            if c.version > b.version {
                self.apply(c);
            }
        }
    }

    /// Applies a pushed change: the services named are replaced in place; a
    /// service not on the board yet makes the board fetched again.
    pub fn apply(self, c: StatusChange) {
        let Some(fetching) = self.inner.try_update_value(|i| {
            if i.fetching {
                i.pending.push(c.clone());
            }
            i.fetching
        }) else {
            return;
        };
        let ready = self
            .phase
            .try_with_untracked(|p| *p == Phase::Ready)
            .unwrap_or(false);
        if !ready {
            // The fetch under way (or the next) includes it.
            if !fetching {
                self.fetch();
            }
            return;
        }
        if c.version <= self.version.get_untracked() {
            return;
        }
        set_if_changed(self.overall, Some(c.overall));
        self.version.set(c.version);
        if self.replace(c.services) {
            self.fetch();
        }
    }

    /// Replaces services by id; true when one is not on the board.
    pub fn replace(self, list: Vec<ServiceStatus>) -> bool {
        let mut unknown = false;
        let services = self.services;
        let _ = self.inner.try_update_value(|i| {
            let mut changed = Vec::new();
            for s in list {
                match i.index.get(&s.service_id) {
                    Some(&at) => changed.push((at, s)),
                    None => unknown = true,
                }
            }
            let differs = services
                .try_with_untracked(|v| {
                    changed
                        .iter()
                        .any(|(at, s)| v.get(*at).is_none_or(|r| *r.s != *s))
                })
                .unwrap_or(false);
            if !differs {
                return;
            }
            services.update(|v| {
                let mut resort = false;
                for (at, s) in changed {
                    let Some(row) = v.get_mut(at) else {
                        unknown = true;
                        continue;
                    };
                    if *row.s == s {
                        continue;
                    }
                    if row.s.tier != s.tier || row.s.name != s.name {
                        resort = true;
                    }
                    i.next_rev += 1;
                    *row = Row {
                        rev: i.next_rev,
                        s: Arc::new(s),
                    };
                }
                if resort {
                    sort_rows(v);
                    i.index = index_of(v);
                }
            });
        });
        unknown
    }

    /// One service's entry on the board.
    pub fn entry(self, id: i64) -> Memo<Option<Row>> {
        Memo::new(move |_| {
            let at = self
                .inner
                .try_with_value(|i| i.index.get(&id).copied())
                .flatten();
            self.services.with(|v| {
                at.and_then(|a| v.get(a))
                    .filter(|r| r.s.service_id == id)
                    .cloned()
            })
        })
    }

    /// Something is checked at all.
    pub fn monitored(self) -> Memo<bool> {
        Memo::new(move |_| {
            self.services.with(|v| v.iter().any(|r| r.s.checks > 0))
                || self.host_checks.with(|h| !h.is_empty())
        })
    }

    /// Services per health, in [`ALL_HEALTH`] order.
    pub fn counts(self) -> Memo<[u32; 6]> {
        Memo::new(move |_| {
            let mut n = [0u32; 6];
            self.services.with(|v| {
                for r in v {
                    n[health_rank(r.s.health)] += 1;
                }
            });
            n
        })
    }
}

/// "99.95 %", or a dash when nothing was measured.
pub fn uptime_text(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(p) if p >= 100.0 => "100 %".into(),
        Some(p) if p >= 99.0 => format!("{:.2} %", (p * 100.0).floor() / 100.0),
        Some(p) => format!("{p:.1} %"),
    }
}

/// A latency sparkline (about 100×24 px): one polyline per run of measured
/// points, gaps where nothing was measured.
pub fn sparkline(points: &[Option<f64>]) -> AnyView {
    const W: f64 = 100.0;
    const H: f64 = 24.0;
    const PAD: f64 = 2.0;
    let values: Vec<f64> = points.iter().flatten().copied().collect();
    if values.is_empty() {
        return view! { <span class="spark-empty muted small" title="No latency measured in the last 30 minutes">"no data"</span> }
            .into_any();
    }
    let max = values.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let avg = values.iter().sum::<f64>() / values.len() as f64;
    let n = points.len();
    let x = |i: usize| {
        if n <= 1 {
            W / 2.0
        } else {
            i as f64 * W / (n - 1) as f64
        }
    };
    let y = |v: f64| H - PAD - (v / max) * (H - 2.0 * PAD);
    // One path for the whole line (one element per row, thousands of rows):
    // a move at each gap; a lone point is a dot (a zero-length segment with
    // round caps).
    let mut d = String::with_capacity(points.len() * 12);
    let mut pen_down = false;
    for (i, p) in points.iter().enumerate() {
        match p {
            Some(v) => {
                let cmd = if pen_down { 'L' } else { 'M' };
                d.push_str(&format!("{cmd}{:.1} {:.1}", x(i), y(*v)));
                let alone = !pen_down && points.get(i + 1).is_none_or(Option::is_none);
                if alone {
                    d.push_str("h0.01");
                }
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let label = format!(
        "Latency, last {n} minutes: average {}, highest {}",
        duration_ms(avg.round() as i64),
        duration_ms(max.round() as i64)
    );
    view! {
        <svg class="spark" viewBox="0 0 100 24" width="100" height="24" role="img" aria-label=label>
            <path class="spark-line" d=d/>
        </svg>
    }
    .into_any()
}

/// The top bar's status pill, linking to the dashboard.
#[component]
pub fn TopbarStatus() -> impl IntoView {
    let store = use_status_store();
    let monitored = store.monitored();
    let counts = store.counts();
    let state = Memo::new(move |_| {
        let ready = store.phase.with(|p| match p {
            Phase::Loading => Some(false),
            Phase::Failed(_) => None,
            Phase::Ready => Some(true),
        });
        match (ready, store.overall.get()) {
            (Some(false), _) => ("unknown", "…", "Status", "loading"),
            (None, _) | (Some(true), None) => ("unknown", "?", "Status unavailable", "unavailable"),
            (Some(true), Some(o)) => {
                let (kind, icon, word, _) = overall_state(o);
                (kind, icon, word, overall_str(o))
            }
        }
    });
    let title = move || {
        if store.phase.with(|p| matches!(p, Phase::Failed(_))) {
            return "The status board cannot be loaded".to_string();
        }
        if !monitored.get() {
            return "No health checks yet".to_string();
        }
        let n = counts.get();
        let parts: Vec<String> = ALL_HEALTH
            .iter()
            .enumerate()
            .filter(|(i, _)| n[*i] > 0)
            .map(|(i, h)| format!("{} {}", n[i], h.as_str()))
            .collect();
        format!("Services: {}", parts.join(", "))
    };
    view! {
        <a href="/" class="topbar-status" data-testid="topbar-status"
            data-overall=move || state.get().3 title=title>
            {move || {
                let (kind, icon, word, _) = state.get();
                view! { <Pill kind icon word/> }
            }}
            {move || (!store.live.get() && store.phase.with(|p| *p == Phase::Ready)).then(|| view! {
                <span class="sr-only">" (not live)"</span>
            })}
        </a>
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let store = use_status_store();
    let role = current_role();
    // Services added or removed, engines: fetch the board again.
    let inventory = RwSignal::new(0u32);
    use_inventory_events(inventory);
    Effect::new(move |prev: Option<u32>| {
        let n = inventory.get();
        if prev.is_some() {
            store.fetch();
        }
        n
    });
    // Coming back to the dashboard after the stream broke: catch up.
    if store
        .phase
        .with_untracked(|p| matches!(p, Phase::Failed(_)))
    {
        store.retry();
    } else if store.phase.with_untracked(|p| *p == Phase::Ready) && !store.live.get_untracked() {
        store.fetch();
    }

    let phase = Memo::new(move |_| {
        store.phase.with(|p| match p {
            Phase::Loading => 0,
            Phase::Ready => 1,
            Phase::Failed(_) => 2,
        })
    });

    view! {
        <div class="page-head">
            <h1>"Dashboard"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/checks">"Checks"</a>
            <a class="btn" href="/status" target="_blank" rel="external noopener" data-testid="public-status-link">
                "Public status page "<span aria-hidden="true">"↗"</span>
            </a>
        </div>
        <crate::backups::BackupAlerts/>
        {move || match phase.get() {
            0 => view! { <Loading rows=6/> }.into_any(),
            2 => {
                let message = store.phase.with_untracked(|p| match p {
                    Phase::Failed(e) => e.message.clone(),
                    _ => String::new(),
                });
                view! {
                    <ErrorState title="Cannot load the status board" message
                        retry=Callback::new(move |_| store.retry())/>
                }
                .into_any()
            }
            _ => view! { <Board store role/> }.into_any(),
        }}
    }
}

#[component]
fn Board(store: StatusStore, role: Role) -> impl IntoView {
    let query = RwSignal::new(String::new());
    let filter = RwSignal::new("all".to_string());
    // Bumped when the search or the filter changes: the tier groups render
    // their rows in steps again.
    let epoch = RwSignal::new(0u64);
    let bump = move || epoch.update(|e| *e += 1);
    let monitored = store.monitored();
    let has_services = Memo::new(move |_| store.services.with(|v| !v.is_empty()));

    let filtered = Memo::new(move |_| {
        let q = query.get().trim().to_lowercase();
        let f = filter.get();
        let only = health_from(&f);
        let problems = f == "problems";
        let mut rows: Vec<Row> = store.services.with(|v| {
            v.iter()
                .filter(|r| {
                    (!problems || is_health_problem(r.s.health))
                        && only.is_none_or(|h| r.s.health == h)
                        && (q.is_empty()
                            || r.s.name.to_lowercase().contains(&q)
                            || r.s
                                .public_name
                                .as_deref()
                                .is_some_and(|p| p.to_lowercase().contains(&q)))
                })
                .cloned()
                .collect()
        });
        // Stable: names stay in order within the same tier and health.
        rows.sort_by_key(|r| (r.s.tier, health_rank(r.s.health)));
        rows
    });

    view! {
        <Banner store monitored/>
        {move || store.stale.get().map(|m| view! {
            <div class="notice notice-error" role="alert">"Showing the last known status: "{m}</div>
        })}
        <EngineStrip store/>
        <Show when=move || has_services.get() fallback=move || view! {
            <EmptyState title="No services yet">
                {if role >= Role::Admin {
                    view! {
                        <p>"Import a compose file on the "<a href="/inventory">"Inventory import"</a>" page: its services appear here with their health."</p>
                        <a class="btn btn-primary" href="/inventory">"Import a compose file"</a>
                    }.into_any()
                } else {
                    view! { <p>"An admin imports them from a docker-compose file ("<a href="/inventory">"Inventory import"</a>")."</p> }.into_any()
                }}
            </EmptyState>
        }>
            <Show when=move || !monitored.get()>
                <div class="notice" role="status" data-testid="no-checks">
                    <span aria-hidden="true">"ℹ"</span>
                    <span><strong>"No checks yet. "</strong>"Services show as unknown until they have health checks: open a service to add some, or add host checks on the "<a href="/checks">"Checks"</a>" page."</span>
                </div>
            </Show>
            <div class="toolbar">
                <input class="search" type="search" placeholder="Search services" aria-label="Search services"
                    data-testid="dashboard-search"
                    prop:value=move || query.get() on:input=move |e| { bump(); query.set(event_target_value(&e)); }/>
                <select aria-label="Health filter" data-testid="dashboard-filter"
                    on:change=move |e| { bump(); filter.set(event_target_value(&e)); }>
                    <option value="all" prop:selected=move || filter.get() == "all">"All services"</option>
                    <option value="problems" prop:selected=move || filter.get() == "problems">"Problems only"</option>
                    {ALL_HEALTH.iter().map(|h| {
                        let v = h.as_str();
                        view! { <option value=v prop:selected=move || filter.get() == v>{health_pill(*h).2}</option> }
                    }).collect_view()}
                </select>
                <span class="muted small" data-testid="dashboard-shown">{move || {
                    let shown = filtered.with(Vec::len);
                    let total = store.services.with(Vec::len);
                    if shown == total { format!("{total} service{}", if total == 1 { "" } else { "s" }) } else { format!("{shown} of {total} services") }
                }}</span>
            </div>
            <Show when=move || filtered.with(Vec::is_empty)>
                <EmptyState title="No services match">
                    <p>"Change the search, or show all services."</p>
                    <button class="btn" on:click=move |_| { bump(); query.set(String::new()); filter.set("all".into()); }>"Show all"</button>
                </EmptyState>
            </Show>
            {Tier::ALL.into_iter().map(|tier| {
                let rows = Memo::new(move |_| {
                    filtered.with(|v| v.iter().filter(|r| r.s.tier == tier).cloned().collect::<Vec<_>>())
                });
                view! { <TierGroup tier rows epoch/> }
            }).collect_view()}
        </Show>
        <HostChecks store/>
    }
}

#[component]
fn Banner(store: StatusStore, monitored: Memo<bool>) -> impl IntoView {
    let counts = store.counts();
    let overall = Memo::new(move |_| store.overall.get().unwrap_or(Overall::Operational));
    view! {
        <section class=move || format!("banner banner-{}", overall_state(overall.get()).0)
            data-testid="dashboard-banner" data-overall=move || overall_str(overall.get()) role="status" aria-live="polite">
            <span class="banner-icon" aria-hidden="true">{move || overall_state(overall.get()).1}</span>
            <div class="banner-text">
                <strong class="banner-title">{move || overall_state(overall.get()).3}</strong>
                <div class="banner-counts">
                    {move || {
                        let n = counts.get();
                        if n.iter().all(|c| *c == 0) {
                            return view! { <span class="muted">"No services yet"</span> }.into_any();
                        }
                        ALL_HEALTH.iter().enumerate().filter(|(i, _)| n[*i] > 0).map(|(i, h)| {
                            let (kind, icon, word) = health_pill(*h);
                            view! {
                                <span class=format!("count-chip ck-{kind}") data-testid=format!("count-{}", h.as_str())>
                                    <span aria-hidden="true">{icon}</span>" "<strong>{n[i]}</strong>" "{word}
                                </span>
                            }
                        }).collect_view().into_any()
                    }}
                    {move || (!monitored.get()).then(|| view! { <span class="muted">"· no checks yet"</span> })}
                </div>
            </div>
            <span class="spacer"></span>
            {move || if store.live.get() {
                view! { <span class="live-state" title="Updates arrive live"><span class="live-dot" aria-hidden="true"></span>" Live"</span> }.into_any()
            } else {
                view! { <span class="live-state muted" title="The live connection is down: reconnecting">"○ Reconnecting…"</span> }.into_any()
            }}
        </section>
    }
}

#[component]
fn EngineStrip(store: StatusStore) -> impl IntoView {
    move || {
        store.engines.with(|engines| {
            (!engines.is_empty()).then(|| {
                view! {
                    <div class="engine-strip" data-testid="engine-strip">
                        <a href="/engines" class="muted small">"Engines"</a>
                        {engines.iter().map(|e| view! {
                            <span class="engine-chip" title=e.last_error.clone().unwrap_or_else(|| e.endpoint.clone())>
                                <strong>{e.name.clone()}</strong>" "
                                <EngineStatePill state=e.state testid=format!("dashboard-engine-{}", e.name)/>
                            </span>
                        }).collect_view()}
                    </div>
                }
            })
        })
    }
}

#[component]
fn TierGroup(tier: Tier, rows: Memo<Vec<Row>>, epoch: RwSignal<u64>) -> impl IntoView {
    // (epoch, rows to render): a new search or filter starts from one step.
    let steps = RwSignal::new((0u64, STEP));
    let limit = move || {
        let e = epoch.get();
        steps.with(|(se, n)| if *se == e { *n } else { STEP })
    };
    // Render the rest in steps, letting the browser paint in between.
    Effect::new(move |_| {
        if rows.with(Vec::len) > limit() {
            request_animation_frame(move || {
                set_timeout(
                    move || {
                        let Some(e) = epoch.try_get_untracked() else {
                            return;
                        };
                        steps.try_update(|(se, n)| {
                            if *se != e {
                                *se = e;
                                *n = STEP;
                            }
                            *n += STEP;
                        });
                    },
                    Duration::ZERO,
                )
            });
        }
    });
    let problems = Memo::new(move |_| {
        rows.with(|v| v.iter().filter(|r| is_health_problem(r.s.health)).count())
    });
    view! {
        <Show when=move || rows.with(|v| !v.is_empty())>
            <section class="tier-group" data-testid=format!("status-tier-{}", tier.as_str())>
                <h2>
                    {tier_label(tier)}" "<span class="count">{move || rows.with(Vec::len)}</span>
                    {move || match problems.get() {
                        0 => ().into_any(),
                        n => view! { <span class="problem-text small">{format!("▲ {n} need{} attention", if n == 1 { "s" } else { "" })}</span> }.into_any(),
                    }}
                </h2>
                <ul class="health-list">
                    <For each=move || { let l = limit(); rows.with(|v| v.iter().take(l).cloned().collect::<Vec<_>>()) }
                        key=|r: &Row| r.rev
                        children=service_row/>
                </ul>
                {move || (rows.with(Vec::len) > limit()).then(|| view! {
                    <p class="muted small more-row" role="status">"Showing more…"</p>
                })}
            </section>
        </Show>
    }
}

fn service_row(r: Row) -> impl IntoView {
    let s = r.s;
    let (kind, icon, word) = health_pill(s.health);
    let problems = s.problems.len();
    let shown: Vec<String> = s.problems.iter().take(2).cloned().collect();
    let all_problems = s.problems.join("\n");
    view! {
        <li class=format!("health-row hr-{kind}") data-testid=format!("service-row-{}", s.name) data-health=s.health.as_str()>
            <div class="hr-main">
                <a class="strong-link" href=format!("/services/{}", s.service_id)>{s.name.clone()}</a>
                <div class="hr-state">
                    // The pill without a component (no reactive props): rows are many.
                    <span class=format!("pill pill-{kind}") title=health_help(s.health)>
                        <span aria-hidden="true">{icon}</span>" "{word}
                    </span>
                    {s.since.map(|at| view! { <span class="muted small">"since "<RelTime at=Some(at)/></span> })}
                </div>
            </div>
            <div class="hr-detail">
                {(!s.impacted_by.is_empty()).then(|| view! {
                    <div class="impacted small">"impacted by "<strong>{s.impacted_by.join(", ")}</strong></div>
                })}
                {(problems > 0).then(|| view! {
                    <ul class="problems small" title=all_problems>
                        {shown.into_iter().map(|p| view! { <li class="clamp-1">{p}</li> }).collect_view()}
                        {(problems > 2).then(|| view! { <li class="muted">{format!("+{} more", problems - 2)}</li> })}
                    </ul>
                })}
                {(s.checks == 0).then(|| view! { <span class="muted small">"no checks"</span> })}
                {s.maintenance.as_ref().map(|m| crate::maintenance::service_mark(m, &s.name))}
            </div>
            <div class="hr-spark" title="Latency, last 30 minutes">{sparkline(&s.sparkline)}</div>
            <div class="hr-uptime" title="Uptime, last 24 hours">
                <strong>{uptime_text(s.uptime.day)}</strong>
                <span class="muted small">"24 h"</span>
            </div>
        </li>
    }
}

#[component]
fn HostChecks(store: StatusStore) -> impl IntoView {
    move || {
        store.host_checks.with(|list| {
            (!list.is_empty()).then(|| {
                view! {
                    <section class="tier-group" data-testid="host-checks">
                        <h2>"Host checks "<span class="count">{list.len()}</span></h2>
                        <div class="table-wrap"><table class="table">
                            <thead><tr><th class="col-state">"Status"</th><th>"Check"</th><th>"Last result"</th><th class="num">"Latency"</th><th>"Last probe"</th></tr></thead>
                            <tbody>{list.iter().map(|c| view! {
                                <tr data-testid=format!("host-check-{}", c.name) data-status=c.status.as_str()>
                                    <td><CheckStatusPill status=c.status/></td>
                                    <td class="cell-main"><a class="strong-link" href="/checks">{c.name.clone()}</a>
                                        <div class="muted small">{crate::checks::kind_label(c.spec.kind())}</div></td>
                                    <td class="cell-error">{c.last.as_ref().map(|l| l.message.clone()).unwrap_or_default()}</td>
                                    <td class="num">{c.last.as_ref().and_then(|l| l.latency_ms).map(|ms| duration_ms(ms.round() as i64)).unwrap_or_else(|| "—".into())}</td>
                                    <td><RelTime at=c.last.as_ref().map(|l| l.at)/></td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table></div>
                    </section>
                }
            })
        })
    }
}
