//! Time as people read it: the browser's clock (local wall-clock text,
//! `datetime-local` inputs, the browser's time zone: the server speaks UTC,
//! people read local time), relative times ("3 min ago", live or not) and
//! durations (`2.4 s`, `12 min`, `2:05`).

use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Timelike, Utc};
use leptos::prelude::*;

use crate::live::use_interval;

pub fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
}

/// [`now`], for scopes where `now` names a signal.
pub fn now_utc() -> DateTime<Utc> {
    now()
}

/// The browser's offset from UTC at `at`, in minutes (local − UTC).
fn local_offset_minutes(at: DateTime<Utc>) -> i64 {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        at.timestamp_millis() as f64
    ));
    -(d.get_timezone_offset() as i64)
}

/// `at` on the browser's wall clock.
pub fn local(at: DateTime<Utc>) -> NaiveDateTime {
    at.naive_utc() + TimeDelta::minutes(local_offset_minutes(at))
}

/// `14:30` today, else `Tue 24 Nov 14:30` (the browser's clock).
pub fn local_hm(at: DateTime<Utc>) -> String {
    let t = local(at);
    if t.date() == local(now()).date() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%a %d %b %H:%M").to_string()
    }
}

/// `Tue 24 Nov 14:30` (the browser's clock).
pub fn local_text(at: DateTime<Utc>) -> String {
    local(at).format("%a %d %b %H:%M").to_string()
}

/// A `datetime-local` input's value for `at`.
pub fn local_input(at: DateTime<Utc>) -> String {
    local(at).format("%Y-%m-%dT%H:%M").to_string()
}

/// A `datetime-local` input's value as an instant (the browser's zone).
pub fn parse_local_input(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let t = NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    let d = js_sys::Date::new_with_year_month_day_hr_min(
        u32::try_from(t.year()).ok()?,
        t.month0() as i32,
        t.day() as i32,
        t.hour() as i32,
        t.minute() as i32,
    );
    let ms = d.get_time();
    if ms.is_nan() {
        return None;
    }
    DateTime::from_timestamp_millis(ms as i64)
}

/// The browser's IANA time zone, when it tells.
pub fn browser_timezone() -> Option<String> {
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    js_sys::Reflect::get(&options, &"timeZone".into())
        .ok()?
        .as_string()
        .filter(|s| !s.is_empty())
}

// ------------------------------------------------------------------ relative

/// "3 min ago", with the exact time on hover.
#[component]
pub fn RelTime(at: Option<DateTime<Utc>>) -> impl IntoView {
    match at {
        None => view! { <span class="muted">"never"</span> }.into_any(),
        Some(at) => {
            let exact = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
            view! { <time datetime=at.to_rfc3339() title=exact>{relative(at)}</time> }.into_any()
        }
    }
}

pub fn relative(at: DateTime<Utc>) -> String {
    let now = DateTime::<Utc>::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or(at);
    let secs = (now - at).num_seconds();
    let (n, future) = if secs < 0 {
        (-secs, true)
    } else {
        (secs, false)
    };
    let text = match n {
        0..=44 => {
            return if future {
                "in a moment".into()
            } else {
                "just now".into()
            }
        }
        45..=5399 => format!("{} min", (n + 30) / 60),
        5400..=129_599 => format!("{} h", (n + 1800) / 3600),
        _ => format!("{} days", (n + 43_200) / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// A clock for live durations: ticks every second while the component
/// lives and the tab is visible.
pub fn use_now() -> RwSignal<DateTime<Utc>> {
    let now = RwSignal::new(now_utc());
    use_interval(Duration::from_secs(1), move || now.set(now_utc()));
    now
}

/// "3 min ago" that stays current, with the exact time on hover.
#[component]
pub fn LiveTime(at: DateTime<Utc>, now: RwSignal<DateTime<Utc>>) -> impl IntoView {
    let exact = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    view! {
        <time class="nowrap" datetime=at.to_rfc3339() title=exact>{move || {
            now.track();
            relative(at)
        }}</time>
    }
}

// ------------------------------------------------------------------ durations

/// A duration in milliseconds: `850 ms`, `2.4 s`, `3 min 5 s`.
pub fn duration_ms(ms: i64) -> String {
    match ms {
        i64::MIN..=999 => format!("{} ms", ms.max(0)),
        1000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{} min {} s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// `m:ss` under an hour, `2 h 05 min` under two days, then `3 days 4 h`:
/// for timers that count.
pub fn clock(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=3599 => format!("{}:{:02}", s / 60, s % 60),
        3600..=172_799 => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} days {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// `45 s`, `12 min`, `3 h 20 min`, `2 days 5 h`: for durations people read.
pub fn human_secs(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", (s + 30) / 60),
        3600..=172_799 => {
            let m = (s % 3600 + 30) / 60;
            if m == 0 || m == 60 {
                format!("{} h", (s + 30) / 3600)
            } else {
                format!("{} h {} min", s / 3600, m)
            }
        }
        _ => format!("{} days {} h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// A mean in seconds from a report, or a dash.
pub fn mean_text(secs: Option<f64>) -> String {
    secs.map(|s| human_secs(s.round() as i64))
        .unwrap_or_else(|| "—".into())
}
