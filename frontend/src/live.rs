//! Live updates over Server-Sent Events.
//!
//! # Connection budget
//!
//! Over HTTP/1.1 a browser opens at most **6 connections per host**, and
//! every tab of the panel (and every other page of the same host) shares
//! them. Each `EventSource` holds one for as long as it is open, so streams
//! left open starve everything else: further `fetch`es (loading a page,
//! clicking Approve) queue until a stream closes, and the panel seems to hang.
//! So one tab keeps **at most 3** streams open:
//!
//! 1. the status stream ([`crate::api::status::events_url`]): exactly one
//!    per document while anybody is logged in, shared by the top bar, the
//!    dashboard, the checks and service pages through the
//!    [`crate::status_store::StatusStore`] provided at the app root (a
//!    [`Shared`] connection);
//! 2. the inventory stream ([`crate::api::inventory::events_url`]): at most
//!    one, only while a page that needs it is shown
//!    ([`use_inventory_events`], also [`Shared`]);
//! 3. one page stream: a run's events or a followed log ([`Stream::open`],
//!    closed with the component that opened it).
//!
//! Every stream is registered here: all of them are closed when the page is
//! left (`pagehide`, also when it goes into the back/forward cache; they
//! reopen if it comes back), and for good on logout or when the session
//! ended (a 401, see [`close_all`]), before the login page shows. The next
//! login is a new document with fresh streams.
//!
//! Two tabs of the panel already hold 4 to 6 of the 6 connections. In
//! production, serve Opsdeck over **HTTP/2** (a TLS reverse proxy in front of
//! it): HTTP/2 multiplexes every request and stream of the host over one
//! connection, and the limit no longer applies.
//!
//! [`use_inventory_events`] keeps a page current: it bumps a reload counter on
//! every `changed` event (bursts are coalesced), and again after a reconnect
//! (events may have been missed meanwhile). [`follow_status`] follows the
//! status board. [`Follow`] reopens a stream when the browser gives up on it
//! (after 5 s, 10 s, … up to a minute). [`Stream`] is the general handle
//! (used for runs and following logs).

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{Event, EventSource, MessageEvent};

type Listener = Closure<dyn FnMut(Event)>;

/// How long a [`Shared`] connection stays open after its last consumer went
/// away (the next page of an in-app navigation usually takes it over).
const LINGER: Duration = Duration::from_millis(1000);

/// What a stream reports to its owner.
pub enum StreamEvent {
    /// The connection (re)opened.
    Open,
    /// A named event with its data.
    Message { event: String, data: String },
    /// The connection failed or ended (not a server-sent `error` event).
    Broken,
}

/// One open `EventSource` and its listeners; closed when dropped.
struct Conn {
    source: EventSource,
    _listeners: Vec<Listener>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.source.close();
    }
}

/// A registered stream: what to connect to and whom to tell. `conn` is
/// `None` while the page is hidden away (`pagehide`).
struct Core {
    url: String,
    events: Vec<String>,
    on: Rc<dyn Fn(StreamEvent)>,
    conn: RefCell<Option<Conn>>,
}

impl Core {
    fn connect(&self) -> bool {
        let Ok(source) = EventSource::new(&self.url) else {
            return false;
        };
        let on = &self.on;
        let mut listeners = Vec::new();
        let mut listen = |name: &str, f: Listener| {
            let _ = source.add_event_listener_with_callback(name, f.as_ref().unchecked_ref());
            listeners.push(f);
        };
        {
            let on = on.clone();
            listen("open", Closure::new(move |_: Event| on(StreamEvent::Open)));
        }
        for name in self.events.iter().filter(|n| *n != "error") {
            let on = on.clone();
            let event = name.clone();
            listen(
                name,
                Closure::new(move |e: Event| {
                    let data = e
                        .dyn_ref::<MessageEvent>()
                        .and_then(|m| m.data().as_string())
                        .unwrap_or_default();
                    on(StreamEvent::Message {
                        event: event.clone(),
                        data,
                    })
                }),
            );
        }
        {
            let on = on.clone();
            listen(
                "error",
                Closure::new(move |e: Event| match e.dyn_ref::<MessageEvent>() {
                    Some(m) => on(StreamEvent::Message {
                        event: "error".into(),
                        data: m.data().as_string().unwrap_or_default(),
                    }),
                    None => on(StreamEvent::Broken),
                }),
            );
        }
        *self.conn.borrow_mut() = Some(Conn {
            source,
            _listeners: listeners,
        });
        true
    }

    fn disconnect(&self) {
        let conn = self.conn.borrow_mut().take();
        drop(conn);
    }
}

/// Every stream of this document.
#[derive(Default)]
struct Registry {
    next: u64,
    open: BTreeMap<u64, Rc<Core>>,
    /// Logged out (or the session ended): nothing opens any more.
    ended: bool,
    /// The page lifecycle listeners are installed.
    hooked: bool,
}

thread_local! {
    static REGISTRY: RefCell<Registry> = RefCell::new(Registry::default());
}

/// Closes every stream of the document for good: on logout and when the
/// session ended (401), before the login page shows. Nothing (re)opens
/// afterwards in this document; the next login loads a new one.
pub fn close_all() {
    let cores: Vec<Rc<Core>> = REGISTRY.with(|r| {
        let mut r = r.borrow_mut();
        r.ended = true;
        std::mem::take(&mut r.open).into_values().collect()
    });
    for core in cores {
        core.disconnect();
    }
}

fn ended() -> bool {
    REGISTRY.with(|r| r.borrow().ended)
}

/// `pagehide` closes every connection (the page is unloaded, or frozen in
/// the back/forward cache where it would keep them); `pageshow` from that
/// cache reopens them (or reloads when the session ended meanwhile).
fn hook_page_lifecycle() {
    let first = REGISTRY.with(|r| !std::mem::replace(&mut r.borrow_mut().hooked, true));
    let Some(window) = web_sys::window().filter(|_| first) else {
        return;
    };
    let hide = Closure::<dyn FnMut(Event)>::new(move |_: Event| {
        let cores: Vec<Rc<Core>> = REGISTRY.with(|r| r.borrow().open.values().cloned().collect());
        for core in cores {
            core.disconnect();
        }
    });
    let show = Closure::<dyn FnMut(Event)>::new(move |e: Event| {
        let persisted = js_sys::Reflect::get(&e, &JsValue::from_str("persisted"))
            .ok()
            .and_then(|v| v.as_bool())
            .unwrap_or(false);
        if !persisted {
            return;
        }
        if ended() {
            if let Some(w) = web_sys::window() {
                let _ = w.location().reload();
            }
            return;
        }
        let cores: Vec<Rc<Core>> = REGISTRY.with(|r| r.borrow().open.values().cloned().collect());
        for core in cores {
            let hidden = core.conn.borrow().is_none();
            if hidden && !core.connect() {
                (core.on)(StreamEvent::Broken);
            }
        }
    });
    let _ = window.add_event_listener_with_callback("pagehide", hide.as_ref().unchecked_ref());
    let _ = window.add_event_listener_with_callback("pageshow", show.as_ref().unchecked_ref());
    // They live as long as the document.
    hide.forget();
    show.forget();
}

/// Asks the server who is logged in: when the session ended, the 401 sends
/// the user to the login page (and [`close_all`]); see `api.rs`. Used when
/// the browser gave up on a stream (an `EventSource` does not say why).
fn check_session() {
    leptos::task::spawn_local(async {
        let _ = crate::api::auth::me().await;
    });
}

/// A registered `EventSource`; closed by [`Stream::close`], by [`close_all`],
/// or (when opened with [`Stream::open`]) when the owning component is
/// cleaned up.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Stream(u64);

impl Stream {
    /// Opens `url` and calls `on` for `open`, connection errors and each of
    /// the named `events` (a server-sent event named `error` arrives as a
    /// message, a broken connection as [`StreamEvent::Broken`]). Closed when
    /// the current owner (the component) is cleaned up. `None` when the
    /// browser has no `EventSource`, or after logout.
    pub fn open(url: &str, events: &[&str], on: impl Fn(StreamEvent) + 'static) -> Option<Stream> {
        let stream = Stream::connect(url, events, on)?;
        on_cleanup(move || stream.close());
        Some(stream)
    }

    /// Like [`Stream::open`], without an owner: the caller closes it.
    fn connect(url: &str, events: &[&str], on: impl Fn(StreamEvent) + 'static) -> Option<Stream> {
        if ended() {
            return None;
        }
        hook_page_lifecycle();
        let core = Rc::new(Core {
            url: url.to_string(),
            events: events.iter().map(|e| e.to_string()).collect(),
            on: Rc::new(on),
            conn: RefCell::new(None),
        });
        if !core.connect() {
            return None;
        }
        let id = REGISTRY.with(|r| {
            let mut r = r.borrow_mut();
            r.next += 1;
            let id = r.next;
            r.open.insert(id, core);
            id
        });
        Some(Stream(id))
    }

    pub fn close(&self) {
        let core = REGISTRY.with(|r| r.borrow_mut().open.remove(&self.0));
        if let Some(core) = core {
            core.disconnect();
        }
    }

    /// The browser gave up on the connection (or it was closed): it will not
    /// reconnect by itself.
    pub fn is_closed(&self) -> bool {
        REGISTRY.with(|r| {
            r.borrow().open.get(&self.0).is_none_or(|core| {
                core.conn
                    .borrow()
                    .as_ref()
                    .is_some_and(|c| c.source.ready_state() == EventSource::CLOSED)
            })
        })
    }
}

struct FollowInner {
    url: String,
    events: Vec<&'static str>,
    on: Rc<dyn Fn(StreamEvent)>,
    stream: Cell<Option<Stream>>,
    /// Reopens so far since the last successful open.
    attempt: Cell<u32>,
    /// Bumped by every (re)open and by [`Follow::stop`]: events of an older
    /// connection and pending reopens are ignored.
    generation: Cell<u64>,
}

/// A stream that is reopened after 5 s, 10 s, … up to a minute whenever the
/// browser gives up on it (the server answered with an error, or went away
/// for good), until [`Follow::stop`]. Not tied to a component.
#[derive(Clone)]
pub struct Follow(Rc<FollowInner>);

impl Follow {
    pub fn start(url: &str, events: &[&'static str], on: impl Fn(StreamEvent) + 'static) -> Follow {
        let follow = Follow(Rc::new(FollowInner {
            url: url.to_string(),
            events: events.to_vec(),
            on: Rc::new(on),
            stream: Cell::new(None),
            attempt: Cell::new(0),
            generation: Cell::new(0),
        }));
        Follow::open(&follow.0);
        follow
    }

    fn open(inner: &Rc<FollowInner>) {
        let generation = inner.generation.get() + 1;
        inner.generation.set(generation);
        let weak: Weak<FollowInner> = Rc::downgrade(inner);
        let handler = move |e: StreamEvent| {
            let Some(inner) = weak.upgrade() else {
                return;
            };
            if inner.generation.get() != generation {
                return;
            }
            let gave_up = matches!(e, StreamEvent::Broken)
                && inner.stream.get().is_none_or(|s| s.is_closed());
            if matches!(e, StreamEvent::Open) {
                inner.attempt.set(0);
            }
            (inner.on)(e);
            if gave_up && inner.generation.get() == generation {
                Follow::reopen_later(&inner);
            }
        };
        match Stream::connect(&inner.url, &inner.events, handler) {
            Some(s) => inner.stream.set(Some(s)),
            // After logout: nothing to follow any more.
            None if ended() => inner.stream.set(None),
            None => {
                inner.stream.set(None);
                (inner.on)(StreamEvent::Broken);
                Follow::reopen_later(inner);
            }
        }
    }

    fn reopen_later(inner: &Rc<FollowInner>) {
        if let Some(s) = inner.stream.take() {
            s.close();
        }
        if ended() {
            return;
        }
        let generation = inner.generation.get() + 1;
        inner.generation.set(generation);
        let attempt = inner.attempt.get();
        inner.attempt.set(attempt + 1);
        // Maybe the session ended (the stream's 401 is not visible here).
        check_session();
        let weak = Rc::downgrade(inner);
        set_timeout(
            move || {
                if let Some(inner) = weak.upgrade() {
                    if inner.generation.get() == generation && !ended() {
                        Follow::open(&inner);
                    }
                }
            },
            Duration::from_secs((5u64 << attempt.min(4)).min(60)),
        );
    }

    /// Closes the stream and cancels a pending reopen.
    pub fn stop(&self) {
        self.0.generation.set(self.0.generation.get() + 1);
        if let Some(s) = self.0.stream.take() {
            s.close();
        }
    }
}

/// One connection shared by every consumer in the document: opened by the
/// first [`Shared::acquire`], closed [`LINGER`] after the last consumer
/// went away (unless another one came meanwhile).
pub struct Shared {
    /// Its key in [`SHARED`] (cleanups must be `Send`: they name it by key).
    id: u64,
    users: Cell<usize>,
    follow: RefCell<Option<Follow>>,
    /// Bumped by every acquire: a pending close checks it.
    epoch: Cell<u64>,
    start: Box<dyn Fn() -> Follow>,
    stopped: Box<dyn Fn()>,
}

impl Shared {
    /// `start` opens the connection, `stopped` is told when it was closed for
    /// lack of consumers.
    pub fn new(start: impl Fn() -> Follow + 'static, stopped: impl Fn() + 'static) -> Rc<Shared> {
        let shared = Rc::new(Shared {
            id: SHARED.with(|t| {
                let mut t = t.borrow_mut();
                let id = t.len() as u64;
                t.push(Weak::new());
                id
            }),
            users: Cell::new(0),
            follow: RefCell::new(None),
            epoch: Cell::new(0),
            start: Box::new(start),
            stopped: Box::new(stopped),
        });
        SHARED.with(|t| t.borrow_mut()[shared.id as usize] = Rc::downgrade(&shared));
        shared
    }

    /// Counts the current owner (component) as a consumer until it is
    /// cleaned up, opening the connection if it is not open yet.
    pub fn acquire(self: &Rc<Self>) {
        self.users.set(self.users.get() + 1);
        self.epoch.set(self.epoch.get() + 1);
        if self.follow.borrow().is_none() && !ended() {
            let follow = (self.start)();
            *self.follow.borrow_mut() = Some(follow);
        }
        let id = self.id;
        on_cleanup(move || {
            let this = SHARED.with(|t| t.borrow().get(id as usize).and_then(Weak::upgrade));
            if let Some(this) = this {
                this.release();
            }
        });
    }

    fn release(self: &Rc<Self>) {
        let users = self.users.get().saturating_sub(1);
        self.users.set(users);
        if users > 0 {
            return;
        }
        let epoch = self.epoch.get();
        let this = Rc::downgrade(self);
        set_timeout(
            move || {
                let Some(this) = this.upgrade() else {
                    return;
                };
                if this.users.get() == 0 && this.epoch.get() == epoch {
                    let follow = this.follow.borrow_mut().take();
                    if let Some(f) = follow {
                        f.stop();
                        (this.stopped)();
                    }
                }
            },
            LINGER,
        );
    }
}

thread_local! {
    /// Every [`Shared`] connection of the document, by id.
    static SHARED: RefCell<Vec<Weak<Shared>>> = const { RefCell::new(Vec::new()) };
    static INVENTORY: Inventory = Inventory::new();
}

/// The inventory stream's consumers (their reload counters).
struct Inventory {
    shared: Rc<Shared>,
    subscribers: Rc<RefCell<BTreeMap<u64, RwSignal<u32>>>>,
    next: Cell<u64>,
}

impl Inventory {
    fn new() -> Inventory {
        let subscribers: Rc<RefCell<BTreeMap<u64, RwSignal<u32>>>> = Rc::default();
        let subs = subscribers.clone();
        let shared = Shared::new(
            move || {
                let subs = subs.clone();
                let pending = Rc::new(Cell::new(false));
                let opened_before = Cell::new(false);
                let bump = move || {
                    if pending.replace(true) {
                        return;
                    }
                    let pending = pending.clone();
                    let subs = subs.clone();
                    set_timeout(
                        move || {
                            pending.set(false);
                            let all: Vec<RwSignal<u32>> = subs.borrow().values().copied().collect();
                            for reload in all {
                                reload.try_update(|n| *n = n.wrapping_add(1));
                            }
                        },
                        Duration::from_millis(300),
                    );
                };
                Follow::start(
                    &crate::api::inventory::events_url(),
                    &["changed"],
                    move |e| match e {
                        StreamEvent::Message { .. } => bump(),
                        // A reconnect may have missed events: refetch once.
                        StreamEvent::Open if opened_before.replace(true) => bump(),
                        _ => {}
                    },
                )
            },
            || {},
        );
        Inventory {
            shared,
            subscribers,
            next: Cell::new(0),
        }
    }
}

/// Bumps `reload` whenever the inventory changes (services or container
/// states), at most about three times a second, while the component lives.
/// Every page shares one connection.
pub fn use_inventory_events(reload: RwSignal<u32>) {
    INVENTORY.with(|inv| {
        let id = inv.next.get() + 1;
        inv.next.set(id);
        inv.subscribers.borrow_mut().insert(id, reload);
        on_cleanup(move || {
            let _ = INVENTORY.try_with(|inv| inv.subscribers.borrow_mut().remove(&id));
        });
        inv.shared.acquire();
    });
}

/// Calls `tick` every `every` while the component lives and the browser tab
/// is visible.
pub fn use_interval(every: Duration, tick: impl Fn() + 'static) {
    let visible = || {
        web_sys::window()
            .and_then(|w| w.document())
            .is_none_or(|d| !d.hidden())
    };
    if let Ok(handle) = set_interval_with_handle(
        move || {
            if visible() {
                tick()
            }
        },
        every,
    ) {
        on_cleanup(move || handle.clear());
    }
}

/// What [`follow_status`] reports.
pub enum StatusEvent {
    /// Services whose status changed (event `status`).
    Change(opsdeck_wire::StatusChange),
    /// The stream (re)opened, the server said `resync` (this client fell
    /// behind), or sent something unreadable: changes may have been missed,
    /// fetch the whole board again. Also sent on the first open:
    /// fetching only then misses nothing between the fetch and the
    /// subscription.
    Resync,
    /// The connection broke; the browser retries (or it is reopened after a
    /// pause when the browser gave up).
    Down,
}

/// Follows the status stream ([`crate::api::status::events_url`]) until stopped. Only the status store
/// calls it (one connection per document).
pub fn follow_status(on: impl Fn(StatusEvent) + 'static) -> Follow {
    Follow::start(
        &crate::api::status::events_url(),
        &["status", "resync"],
        move |e| match e {
            StreamEvent::Message { event, data } if event == "status" => {
                match serde_json::from_str::<opsdeck_wire::StatusChange>(&data) {
                    Ok(change) => on(StatusEvent::Change(change)),
                    Err(_) => on(StatusEvent::Resync),
                }
            }
            // The server dropped changes for this client (it fell behind).
            StreamEvent::Message { event, .. } if event == "resync" => on(StatusEvent::Resync),
            StreamEvent::Message { .. } => {}
            StreamEvent::Open => on(StatusEvent::Resync),
            StreamEvent::Broken => on(StatusEvent::Down),
        },
    )
}
