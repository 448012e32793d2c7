//! Times as people read them during an outage: relative ("3 min ago"),
//! kept current by a shared clock that ticks every 15 seconds, with the
//! exact time (local and UTC) on hover.
//!
//! `chrono`'s clock does not work in the browser without extra features, so
//! "now" comes from `Date.now()`.

use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use leptos::prelude::*;

/// Milliseconds since the epoch, refreshed by a timer; read it to re-render
/// as time passes.
#[derive(Clone, Copy)]
pub struct Clock(RwSignal<i64>);

fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// Starts the shared clock.
pub fn provide() {
    let now = RwSignal::new(now_ms());
    set_interval(move || now.set(now_ms()), Duration::from_secs(15));
    provide_context(Clock(now));
}

impl Clock {
    /// The current time in milliseconds (tracked: re-runs on each tick).
    pub fn now(self) -> i64 {
        self.0.get()
    }
}

/// The shared clock (call in a component body).
pub fn use_clock() -> Clock {
    use_context::<Clock>().unwrap_or_else(|| Clock(RwSignal::new(now_ms())))
}

/// "just now", "3 min ago", "in 2 h", "5 days ago".
pub fn relative(at: DateTime<Utc>, now_ms: i64) -> String {
    let secs = (now_ms - at.timestamp_millis()) / 1000;
    // The server's clock and the browser's differ a little: a moment is a moment.
    if (-60..45).contains(&secs) {
        return "just now".into();
    }
    let future = secs < 0;
    let n = secs.abs();
    let text = match n {
        0..=3_569 => format!("{} min", ((n + 30) / 60).max(1)),
        3_570..=129_599 => format!("{} h", ((n + 1_800) / 3_600).max(1)),
        129_600..=3_887_999 => format!("{} days", (n + 43_200) / 86_400),
        3_888_000..=47_303_999 => format!("{} months", (n + 1_296_000) / 2_592_000),
        _ => format!("{} years", (n + 15_768_000) / 31_536_000),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// The exact time for the `title` attribute, e.g.
/// `2026-11-22 14:05:07 local (13:05:07 UTC)`.
pub fn exact(at: DateTime<Utc>) -> String {
    let local = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        at.timestamp_millis() as f64
    ));
    let offset_min = -(local.get_timezone_offset() as i64);
    let local_text = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
        local.get_full_year(),
        local.get_month() + 1,
        local.get_date(),
        local.get_hours(),
        local.get_minutes(),
        local.get_seconds()
    );
    if offset_min == 0 {
        format!("{local_text} UTC")
    } else {
        format!(
            "{local_text} local ({:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC)",
            at.year(),
            at.month(),
            at.day(),
            at.hour(),
            at.minute(),
            at.second()
        )
    }
}

/// A relative time with the exact time on hover; `empty` when there is none.
#[component]
pub fn RelTime(
    at: Option<DateTime<Utc>>,
    #[prop(default = "never")] empty: &'static str,
) -> impl IntoView {
    match at {
        None => view! { <span class="muted">{empty}</span> }.into_any(),
        Some(at) => {
            let clock = use_clock();
            let title = exact(at);
            view! {
                <time class="reltime" datetime=at.to_rfc3339() title=title>{move || relative(at, clock.now())}</time>
            }
            .into_any()
        }
    }
}
