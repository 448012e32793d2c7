//! The status store: the status board shared by the top bar, the
//! dashboard, the checks and the service pages. Provided once at the app
//! root (with the session); the only status stream connection of the
//! document, open while a component uses the store (the top bar does as long
//! as somebody is logged in; see `live.rs` for the connection budget). It
//! fetches the board ([`crate::api::status::board`]) once the status stream
//! is open (and again after a reconnect), then applies the `status` events
//! in place, by service. Each service row is keyed by a revision that changes
//! only when that service's status does, so a change re-renders only the rows
//! it touches, even with thousands of services.
//!
//! The very first fetch asks for the dashboard's first screen only
//! ([`FIRST_SCREEN`] services per tier, worst first) and shows it, then
//! fetches the whole board: with thousands of services the first rows are
//! painted without waiting for (and parsing) all of them.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::{
    Check, Engine, MaintenanceBanner, Overall, ServiceStatus, StatusBoard, StatusChange, Tier,
};

use crate::api::{self, ApiError};
use crate::live::{follow_status, Shared, StatusEvent};
use crate::states::health_rank;

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

/// Services per tier the first fetch asks for: the dashboard's first page
/// of each tier.
pub const FIRST_SCREEN: usize = 100;

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
    /// Set while `services` is the first screen only (the whole board is
    /// on its way): how many services each tier has.
    pub tier_totals: RwSignal<Option<BTreeMap<Tier, u32>>>,
    pub host_checks: RwSignal<Vec<Check>>,
    /// The hosts those checks watch (an engine's host, the Opsdeck host).
    pub hosts: RwSignal<Vec<opsdeck_wire::HostStatus>>,
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
            tier_totals: RwSignal::new(None),
            host_checks: RwSignal::new(Vec::new()),
            hosts: RwSignal::new(Vec::new()),
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
            if self.phase.try_with_untracked(|p| *p == Phase::Loading) == Some(true) {
                // A failure here is not shown: the whole board follows.
                if let Ok(b) = api::status::first_screen(FIRST_SCREEN).await {
                    self.load(b);
                }
            }
            let r = api::status::board().await;
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
        set_if_changed(self.tier_totals, b.tier_totals);
        set_if_changed(self.host_checks, b.host_checks);
        set_if_changed(self.hosts, b.hosts);
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
        // On the first screen, a service not shown is expected (the whole
        // board is being fetched, and the change is kept for after it).
        let partial = self.tier_totals.with_untracked(Option::is_some);
        if self.replace(c.services) && !partial {
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
