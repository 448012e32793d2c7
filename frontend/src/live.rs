//! Live updates over Server-Sent Events.
//!
//! [`use_inventory_events`] keeps a page current: it listens to
//! `GET /api/v1/inventory/events` and bumps a reload counter on every
//! `changed` event (bursts are coalesced), and again after a reconnect (events
//! may have been missed meanwhile). [`Stream`] is the general handle (used for
//! following logs). Every stream is closed when the component goes away.

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
