//! The browser's clock: local wall-clock text, `datetime-local` inputs and
//! the browser's time zone (the server speaks UTC; people read local time).

use chrono::{DateTime, Datelike, NaiveDateTime, TimeDelta, Timelike, Utc};

pub fn now() -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp_millis(js_sys::Date::now() as i64).unwrap_or_default()
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
