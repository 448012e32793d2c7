//! Live updates over Server-Sent Events.
//!
//! [`use_inventory_events`] keeps a page current: it listens to
//! `GET /api/v1/inventory/events` and bumps a reload counter on every
//! `changed` event (bursts are coalesced), and again after a reconnect (events
//! may have been missed meanwhile). [`use_status_events`] follows the status
//! board (`GET /api/v1/status/events`) and reopens the stream when the server
//! closes it for good. [`Stream`] is the general handle (used for following
//! logs). Every stream is closed when the component goes away.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::JsCast;
use web_sys::{Event, EventSource, MessageEvent};

type Listener = Closure<dyn FnMut(Event)>;

/// What a stream reports to its owner.
pub enum StreamEvent {
    /// The connection (re)opened.
    Open,
    /// A named event with its data.
    Message { event: String, data: String },
    /// The connection failed or ended (not a server-sent `error` event).
    Broken,
}

struct Inner {
    source: EventSource,
    _listeners: Vec<Listener>,
}

/// An open `EventSource`; closed by [`Stream::close`] or when the owning
/// component is cleaned up.
#[derive(Clone, Copy)]
pub struct Stream(StoredValue<Option<Inner>, LocalStorage>);

impl Stream {
    /// Opens `url` and calls `on` for `open`, connection errors and each of
    /// the named `events` (a server-sent event named `error` arrives as a
    /// message, a broken connection as [`StreamEvent::Broken`]).
    pub fn open(url: &str, events: &[&str], on: impl Fn(StreamEvent) + 'static) -> Option<Stream> {
        let source = EventSource::new(url).ok()?;
        let on = Rc::new(on);
        let mut listeners = Vec::new();
        let mut listen = |name: &str, f: Listener| {
            let _ = source.add_event_listener_with_callback(name, f.as_ref().unchecked_ref());
            listeners.push(f);
        };
        {
            let on = on.clone();
            listen("open", Closure::new(move |_: Event| on(StreamEvent::Open)));
        }
        for name in events.iter().copied().filter(|n| *n != "error") {
            let on = on.clone();
            let event = name.to_string();
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
        let stream = Stream(StoredValue::new_local(Some(Inner {
            source,
            _listeners: listeners,
        })));
        on_cleanup(move || stream.close());
        Some(stream)
    }

    pub fn close(&self) {
        if let Some(Some(inner)) = self.0.try_update_value(|v| v.take()) {
            inner.source.close();
        }
    }

    /// The browser gave up on the connection (or it was closed): it will not
    /// reconnect by itself.
    pub fn is_closed(&self) -> bool {
        self.0
            .try_with_value(|v| {
                v.as_ref()
                    .is_none_or(|i| i.source.ready_state() == EventSource::CLOSED)
            })
            .unwrap_or(true)
    }
}

/// Bumps `reload` whenever the inventory changes (services or container
/// states), at most about three times a second.
pub fn use_inventory_events(reload: RwSignal<u32>) {
    let pending = Rc::new(Cell::new(false));
    let opened_before = Cell::new(false);
    let bump = move || {
        if pending.replace(true) {
            return;
        }
        let pending = pending.clone();
        set_timeout(
            move || {
                pending.set(false);
                reload.try_update(|n| *n = n.wrapping_add(1));
            },
            Duration::from_millis(300),
        );
    };
    let _ = Stream::open("/api/v1/inventory/events", &["changed"], move |e| match e {
        StreamEvent::Message { .. } => bump(),
        // A reconnect may have missed events: refetch once.
        StreamEvent::Open if opened_before.replace(true) => bump(),
        _ => {}
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

/// What [`use_status_events`] reports.
pub enum StatusEvent {
    /// Services whose status changed (event `status`).
    Change(opsdeck_wire::StatusChange),
    /// The stream (re)opened, the server said `resync` (this client fell
    /// behind), or sent something unreadable: changes may have been missed,
    /// fetch the whole board again. Also sent on the first open:
    /// fetching only then misses nothing between the fetch and the
    /// subscription.
    Resync,
    /// The connection broke; the browser retries (or this hook reopens it
    /// after a pause when the browser gave up).
    Down,
}

/// Follows `GET /api/v1/status/events` while the component lives. When the
/// browser gives up on the stream (the server answered with an error, or
/// went away for good), it is reopened after 5 s, 10 s, … up to a minute.
pub fn use_status_events(on: impl Fn(StatusEvent) + 'static) {
    let on: Rc<dyn Fn(StatusEvent)> = Rc::new(on);
    let owner = Owner::current();
    let current = StoredValue::new_local(None::<Stream>);
    open_status(owner, on, current, 0);
}

fn open_status(
    owner: Option<Owner>,
    on: Rc<dyn Fn(StatusEvent)>,
    current: StoredValue<Option<Stream>, LocalStorage>,
    attempt: u32,
) {
    let reopen = {
        let owner = owner.clone();
        let on = on.clone();
        move || {
            let delay = Duration::from_secs((5u64 << attempt.min(4)).min(60));
            let owner = owner.clone();
            let on = on.clone();
            set_timeout(
                move || {
                    // The component went away meanwhile.
                    if current.try_with_value(|_| ()).is_none() {
                        return;
                    }
                    open_status(owner, on, current, attempt + 1);
                },
                delay,
            );
        }
    };
    let handler = {
        let on = on.clone();
        let gave_up = Cell::new(false);
        move |e: StreamEvent| match e {
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
            StreamEvent::Broken => {
                on(StatusEvent::Down);
                let closed = current
                    .try_with_value(|s| s.as_ref().is_none_or(Stream::is_closed))
                    .unwrap_or(false);
                if closed && !gave_up.replace(true) {
                    if let Some(Some(s)) = current.try_update_value(|s| s.take()) {
                        s.close();
                    }
                    reopen();
                }
            }
        }
    };
    let url = "/api/v1/status/events";
    let stream = match &owner {
        Some(o) => o.with(|| Stream::open(url, &["status", "resync"], handler)),
        None => Stream::open(url, &["status", "resync"], handler),
    };
    match stream {
        Some(s) => {
            current.try_set_value(Some(s));
        }
        None => on(StatusEvent::Down),
    }
}
