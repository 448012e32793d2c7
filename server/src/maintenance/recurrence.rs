//! Window occurrences: once, daily or weekly at a local time of day in an
//! IANA zone.
//!
//! * [`Spec`] is a validated window; [`validate`] builds it from the wire.
//! * [`occurrences`] lists the occurrences whose end is after `from`, in
//!   order (so one in progress comes first), at most `n`.
//! * [`current`] is the occurrence in progress at `now`, if any.
//! * [`summary`] says it in words.
//!
//! Occurrences are computed on the local calendar of the window's zone: the
//! start of every occurrence is the local time of day of `starts_at` on its
//! date, so a change of daylight saving time never shifts the hour. A local
//! time that does not exist (in a spring-forward gap) is read with the offset
//! in effect before the gap, which moves it forward by the gap (02:30 becomes
//! 03:30 when clocks jump from 02:00 to 03:00); an ambiguous one (fall-back)
//! is the earlier instant. Every occurrence lasts as long as the first one
//! (`ends_at - starts_at`), except that it never runs into the next one: on
//! a night when the clocks jump forward a window of exactly the gap between
//! occurrences would overlap by the jump, so its end is cut to the next start.

use chrono::{
    DateTime, Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeDelta,
    TimeZone, Timelike, Utc, Weekday,
};
use chrono_tz::Tz;
use opsdeck_wire::{Occurrence, Repeat, WindowWrite};

/// The longest a window's occurrence may last.
pub const MAX_LENGTH: TimeDelta = TimeDelta::days(7);

/// A validated window's timing.
#[derive(Debug, Clone)]
pub struct Spec {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub repeat: Repeat,
    /// Weekly only: the chosen days, Monday first, no repeats (empty for
    /// once and daily).
    pub weekdays: Vec<Weekday>,
    pub tz: Tz,
    /// The last local date an occurrence may start on.
    pub until: Option<NaiveDate>,
}

const DAYS: [(&str, Weekday); 7] = [
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

/// Checks a window's timing (not its title or scope) and builds its
/// [`Spec`]. Errors read "field: what is wrong".
pub fn validate(w: &WindowWrite) -> Result<Spec, String> {
    let tz: Tz = w
        .time_zone
        .parse()
        .map_err(|_| format!("time_zone: unknown zone {:?}", w.time_zone))?;
    if w.ends_at <= w.starts_at {
        return Err("ends_at: must be after starts_at".into());
    }
    let len = w.ends_at - w.starts_at;
    if len > MAX_LENGTH {
        return Err("ends_at: a window lasts at most 7 days".into());
    }
    let weekdays = match w.repeat {
        Repeat::Weekly => parse_weekdays(&w.weekdays)?,
        // Weekdays mean nothing for these: ignored.
        Repeat::Once | Repeat::Daily => Vec::new(),
    };
    match w.repeat {
        Repeat::Once => {}
        Repeat::Daily => {
            if len > TimeDelta::hours(24) {
                return Err(
                    "ends_at: a daily window lasts at most 24 h (its occurrences would overlap)"
                        .into(),
                );
            }
        }
        Repeat::Weekly => {
            let gap = smallest_gap_days(&weekdays);
            if len > TimeDelta::days(gap) {
                return Err(format!(
                    "ends_at: with these weekdays a window lasts at most {} h (its occurrences would overlap)",
                    gap * 24
                ));
            }
        }
    }
    let first_day = w.starts_at.with_timezone(&tz).date_naive();
    if let Some(until) = w.until {
        if until < first_day {
            return Err(format!(
                "until: must not be before the first occurrence's day ({first_day})"
            ));
        }
    }
    Ok(Spec {
        starts_at: w.starts_at,
        ends_at: w.ends_at,
        repeat: w.repeat,
        weekdays,
        tz,
        until: w.until,
    })
}

/// `mon` … `sun` (any case) to weekdays, Monday first, without repeats.
fn parse_weekdays(names: &[String]) -> Result<Vec<Weekday>, String> {
    let mut days = Vec::new();
    for name in names {
        let key = name.trim().to_ascii_lowercase();
        let Some((_, day)) = DAYS.iter().find(|(n, _)| *n == key) else {
            return Err(format!(
                "weekdays: unknown day {name:?} (use mon, tue, wed, thu, fri, sat, sun)"
            ));
        };
        if !days.contains(day) {
            days.push(*day);
        }
    }
    if days.is_empty() {
        return Err("weekdays: choose at least one day for a weekly window".into());
    }
    days.sort_by_key(|d| d.num_days_from_monday());
    Ok(days)
}

/// The fewest days between two consecutive chosen weekdays, round the week
/// (7 for one day). `days` is sorted and not empty.
fn smallest_gap_days(days: &[Weekday]) -> i64 {
    let n: Vec<i64> = days
        .iter()
        .map(|d| i64::from(d.num_days_from_monday()))
        .collect();
    (0..n.len())
        .map(|i| {
            let next = n[(i + 1) % n.len()];
            (next - n[i]).rem_euclid(7)
        })
        .map(|g| if g == 0 { 7 } else { g })
        .min()
        .unwrap_or(7)
}

/// The instant of a local date and time in `tz`: the earlier one when it is
/// ambiguous; in a gap, read with the offset in effect before the gap (so it
/// moves forward by the gap).
fn resolve(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(a, b) => a.min(b).with_timezone(&Utc),
        LocalResult::None => {
            // Step back to the last valid local time before the gap and use
            // its offset. Gaps are at most a day (Samoa, 2011).
            let mut probe = local;
            for _ in 0..(4 * 49) {
                probe -= TimeDelta::minutes(15);
                if let Some(t) = tz.from_local_datetime(&probe).latest() {
                    let offset = t.offset().fix().local_minus_utc();
                    return (local - TimeDelta::seconds(i64::from(offset))).and_utc();
                }
            }
            local.and_utc()
        }
    }
}

/// The occurrences ending after `from`, in order, at most `n`.
pub fn occurrences(spec: &Spec, from: DateTime<Utc>, n: usize) -> Vec<Occurrence> {
    let len = spec.ends_at - spec.starts_at;
    let mut out = Vec::new();
    if n == 0 || len <= TimeDelta::zero() {
        return out;
    }
    if spec.repeat == Repeat::Once {
        if spec.ends_at > from {
            out.push(Occurrence {
                starts_at: spec.starts_at,
                ends_at: spec.ends_at,
            });
        }
        return out;
    }
    let weekly = spec.repeat == Repeat::Weekly;
    if weekly && spec.weekdays.is_empty() {
        return out;
    }
    let local_start = spec.starts_at.with_timezone(&spec.tz);
    let first_day = local_start.date_naive();
    let time_of_day = local_start.time();
    // An occurrence that started up to its length (plus a day for the zone's
    // offset) before `from` may still be in progress: start looking there,
    // not at the first occurrence.
    let back = u64::try_from(len.num_days() + 2).unwrap_or(2);
    let from_day = from.with_timezone(&spec.tz).date_naive();
    let mut day = Some(
        from_day
            .checked_sub_days(Days::new(back))
            .map_or(first_day, |d| d.max(first_day)),
    );
    let mut last: Option<DateTime<Utc>> = None;
    let mut next_start = || -> Option<DateTime<Utc>> {
        loop {
            let d = day?;
            if spec.until.is_some_and(|u| d > u) {
                return None;
            }
            day = d.succ_opt();
            if weekly && !spec.weekdays.contains(&d.weekday()) {
                continue;
            }
            let start = if d == first_day {
                spec.starts_at
            } else {
                resolve(spec.tz, d.and_time(time_of_day))
            };
            // Never before the first occurrence, and strictly increasing
            // (a skipped day in a zone's history could repeat a start).
            if start < spec.starts_at || last.is_some_and(|l| start <= l) {
                continue;
            }
            last = Some(start);
            return Some(start);
        }
    };
    let mut current = next_start();
    while let Some(start) = current {
        if out.len() >= n {
            break;
        }
        let next = next_start();
        let mut end = start + len;
        if let Some(next) = next {
            end = end.min(next);
        }
        if end > from {
            out.push(Occurrence {
                starts_at: start,
                ends_at: end,
            });
        }
        current = next;
    }
    out
}

/// The occurrence in progress at `now`.
pub fn current(spec: &Spec, now: DateTime<Utc>) -> Option<Occurrence> {
    occurrences(spec, now, 1)
        .into_iter()
        .find(|o| o.starts_at <= now && now < o.ends_at)
}

fn day_name(d: Weekday) -> &'static str {
    match d {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// "6 h", "1 h 30 min", "45 min", "2 days".
fn human_length(len: TimeDelta) -> String {
    let minutes = len.num_minutes();
    if minutes < 1 {
        return format!("{} s", len.num_seconds());
    }
    if minutes % (24 * 60) == 0 {
        let d = minutes / (24 * 60);
        return format!("{d} {}", if d == 1 { "day" } else { "days" });
    }
    match (minutes / 60, minutes % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    }
}

/// "every Wednesday 22:00–23:00 (Europe/Berlin)", "every day 02:00–03:30
/// (UTC), until 2027-01-31", "every Saturday 22:00 for 6 h (UTC)",
/// "once, Wed 25 Nov 2026 22:00 – 23:00 (Europe/Berlin)".
pub fn summary(spec: &Spec) -> String {
    let tz = spec.tz;
    let len = spec.ends_at - spec.starts_at;
    let start = spec.starts_at.with_timezone(&tz);
    if spec.repeat == Repeat::Once {
        let end = spec.ends_at.with_timezone(&tz);
        let end = if end.date_naive() == start.date_naive() {
            end.format("%H:%M").to_string()
        } else {
            end.format("%a %-d %b %Y %H:%M").to_string()
        };
        return format!(
            "once, {} – {end} ({})",
            start.format("%a %-d %b %Y %H:%M"),
            tz.name()
        );
    }
    let days = if spec.repeat == Repeat::Daily || spec.weekdays.len() == 7 {
        "every day".to_owned()
    } else {
        let names: Vec<&str> = spec.weekdays.iter().map(|d| day_name(*d)).collect();
        format!("every {}", names.join(", "))
    };
    let time_of_day = start.time();
    let from_midnight = i64::from(time_of_day.num_seconds_from_midnight());
    let end_secs = from_midnight + len.num_seconds();
    let when = if len >= TimeDelta::hours(24) || end_secs > 24 * 3600 {
        format!("{} for {}", time_of_day.format("%H:%M"), human_length(len))
    } else {
        let end = u32::try_from(end_secs)
            .ok()
            .and_then(|s| NaiveTime::from_num_seconds_from_midnight_opt(s, 0))
            .map_or_else(|| "24:00".to_owned(), |t| t.format("%H:%M").to_string());
        format!("{}–{end}", time_of_day.format("%H:%M"))
    };
    let mut s = format!("{days} {when} ({})", tz.name());
    if let Some(until) = spec.until {
        s.push_str(&format!(", until {until}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsdeck_wire::MaintenanceScope;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn write(
        starts: &str,
        ends: &str,
        repeat: Repeat,
        weekdays: &[&str],
        tz: &str,
        until: Option<&str>,
    ) -> WindowWrite {
        WindowWrite {
            title: "t".into(),
            reason: String::new(),
            scope: MaintenanceScope::Services {
                services: vec!["a".into()],
            },
            actuate: false,
            starts_at: utc(starts),
            ends_at: utc(ends),
            repeat,
            weekdays: weekdays.iter().map(|s| s.to_string()).collect(),
            time_zone: tz.into(),
            until: until.map(|u| u.parse().unwrap()),
            enabled: true,
        }
    }

    fn spec(
        starts: &str,
        ends: &str,
        repeat: Repeat,
        weekdays: &[&str],
        tz: &str,
        until: Option<&str>,
    ) -> Spec {
        validate(&write(starts, ends, repeat, weekdays, tz, until)).unwrap()
    }

    fn starts(o: &[Occurrence]) -> Vec<DateTime<Utc>> {
        o.iter().map(|o| o.starts_at).collect()
    }

    /// Wednesday 22:00–23:00 in Berlin (CET = UTC+1 until 29 March 2026).
    fn wednesday_berlin() -> Spec {
        spec(
            "2026-03-18T21:00:00Z",
            "2026-03-18T22:00:00Z",
            Repeat::Weekly,
            &["wed"],
            "Europe/Berlin",
            None,
        )
    }

    #[test]
    fn weekly_keeps_the_local_hour_across_dst() {
        let s = wednesday_berlin();
        let o = occurrences(&s, utc("2026-03-01T00:00:00Z"), 3);
        assert_eq!(
            starts(&o),
            vec![
                utc("2026-03-18T21:00:00Z"),
                utc("2026-03-25T21:00:00Z"),
                utc("2026-04-01T20:00:00Z"), // CEST
            ]
        );
        assert!(o
            .iter()
            .all(|o| o.ends_at - o.starts_at == TimeDelta::hours(1)));
        let o = occurrences(&s, utc("2026-10-20T00:00:00Z"), 2);
        assert_eq!(
            starts(&o),
            vec![utc("2026-10-21T20:00:00Z"), utc("2026-10-28T21:00:00Z")]
        );
        for o in occurrences(&s, utc("2026-03-01T00:00:00Z"), 60) {
            let local = o.starts_at.with_timezone(&s.tz);
            assert_eq!(local.weekday(), Weekday::Wed);
            assert_eq!(local.format("%H:%M").to_string(), "22:00");
        }
    }

    #[test]
    fn daily_in_a_spring_forward_gap_moves_by_the_gap() {
        // 02:30 does not exist in Berlin on 29 March 2026 (02:00 → 03:00).
        let s = spec(
            "2026-03-27T01:30:00Z",
            "2026-03-27T02:30:00Z",
            Repeat::Daily,
            &[],
            "Europe/Berlin",
            None,
        );
        let o = occurrences(&s, s.starts_at, 4);
        assert_eq!(
            starts(&o),
            vec![
                utc("2026-03-27T01:30:00Z"),
                utc("2026-03-28T01:30:00Z"),
                utc("2026-03-29T01:30:00Z"), // 03:30 CEST
                utc("2026-03-30T00:30:00Z"), // 02:30 CEST
            ]
        );
        assert_eq!(
            o[2].starts_at
                .with_timezone(&s.tz)
                .format("%H:%M")
                .to_string(),
            "03:30"
        );
        // Fall back: 02:30 happens twice on 25 October 2026; the first.
        let o = occurrences(&s, utc("2026-10-24T12:00:00Z"), 2);
        assert_eq!(
            starts(&o),
            vec![utc("2026-10-25T00:30:00Z"), utc("2026-10-26T01:30:00Z")]
        );
    }

    #[test]
    fn a_full_day_window_is_cut_where_the_clocks_jump() {
        let s = spec(
            "2026-03-28T01:00:00Z",
            "2026-03-29T01:00:00Z",
            Repeat::Daily,
            &[],
            "Europe/Berlin",
            None,
        );
        let o = occurrences(&s, s.starts_at, 3);
        for w in o.windows(2) {
            assert!(w[0].ends_at <= w[1].starts_at, "{o:?}");
        }
        assert_eq!(o[1].starts_at, utc("2026-03-29T01:00:00Z"));
        assert_eq!(o[1].ends_at, utc("2026-03-30T00:00:00Z"));
    }

    #[test]
    fn until_is_the_last_start_day() {
        let s = spec(
            "2026-01-01T10:00:00Z",
            "2026-01-01T11:00:00Z",
            Repeat::Daily,
            &[],
            "UTC",
            Some("2026-01-03"),
        );
        let o = occurrences(&s, utc("2025-12-01T00:00:00Z"), 10);
        assert_eq!(
            starts(&o),
            vec![
                utc("2026-01-01T10:00:00Z"),
                utc("2026-01-02T10:00:00Z"),
                utc("2026-01-03T10:00:00Z"),
            ]
        );
        assert!(occurrences(&s, utc("2026-01-03T11:00:00Z"), 10).is_empty());
        assert!(occurrences(&s, utc("2030-01-01T00:00:00Z"), 10).is_empty());
    }

    #[test]
    fn one_in_progress_comes_first() {
        let s = spec(
            "2026-01-01T10:00:00Z",
            "2026-01-01T12:00:00Z",
            Repeat::Daily,
            &[],
            "UTC",
            None,
        );
        let now = utc("2026-01-05T11:00:00Z");
        let o = occurrences(&s, now, 2);
        assert_eq!(
            starts(&o),
            vec![utc("2026-01-05T10:00:00Z"), utc("2026-01-06T10:00:00Z")]
        );
        assert_eq!(
            current(&s, now).unwrap().starts_at,
            utc("2026-01-05T10:00:00Z")
        );
        assert!(current(&s, utc("2026-01-05T12:00:00Z")).is_none());
        // Not before the first one.
        assert!(current(&s, utc("2026-01-01T09:59:59Z")).is_none());
        // A long weekly occurrence that started days before `from`.
        let s = spec(
            "2026-01-05T00:00:00Z",
            "2026-01-12T00:00:00Z",
            Repeat::Weekly,
            &["mon"],
            "UTC",
            None,
        );
        let c = current(&s, utc("2026-03-14T12:00:00Z")).unwrap();
        assert_eq!(c.starts_at, utc("2026-03-09T00:00:00Z"));
    }

    #[test]
    fn once() {
        let s = spec(
            "2026-11-25T21:00:00Z",
            "2026-11-25T22:00:00Z",
            Repeat::Once,
            &["mon"],
            "Europe/Berlin",
            None,
        );
        assert!(s.weekdays.is_empty());
        assert_eq!(occurrences(&s, utc("2026-01-01T00:00:00Z"), 5).len(), 1);
        assert_eq!(occurrences(&s, utc("2026-11-25T21:30:00Z"), 5).len(), 1);
        assert!(occurrences(&s, utc("2026-11-25T22:00:00Z"), 5).is_empty());
        assert!(occurrences(&s, utc("2026-01-01T00:00:00Z"), 0).is_empty());
        assert_eq!(
            summary(&s),
            "once, Wed 25 Nov 2026 22:00 – 23:00 (Europe/Berlin)"
        );
    }

    fn err(w: WindowWrite) -> String {
        validate(&w).unwrap_err()
    }

    #[test]
    fn overlapping_and_bad_windows_are_refused() {
        let e = err(write(
            "2026-01-01T10:00:00Z",
            "2026-01-02T10:00:01Z",
            Repeat::Daily,
            &[],
            "UTC",
            None,
        ));
        assert!(e.starts_with("ends_at:") && e.contains("24 h"), "{e}");
        validate(&write(
            "2026-01-01T10:00:00Z",
            "2026-01-02T10:00:00Z",
            Repeat::Daily,
            &[],
            "UTC",
            None,
        ))
        .unwrap();
        // Sunday and Monday are one day apart (round the week).
        let e = err(write(
            "2026-01-04T10:00:00Z",
            "2026-01-05T11:00:00Z",
            Repeat::Weekly,
            &["mon", "sun"],
            "UTC",
            None,
        ));
        assert!(e.starts_with("ends_at:") && e.contains("24 h"), "{e}");
        let e = err(write(
            "2026-01-05T10:00:00Z",
            "2026-01-08T11:00:00Z",
            Repeat::Weekly,
            &["mon", "thu"],
            "UTC",
            None,
        ));
        assert!(e.contains("72 h"), "{e}");
        validate(&write(
            "2026-01-05T10:00:00Z",
            "2026-01-08T10:00:00Z",
            Repeat::Weekly,
            &["mon", "thu"],
            "UTC",
            None,
        ))
        .unwrap();
        validate(&write(
            "2026-01-05T10:00:00Z",
            "2026-01-12T10:00:00Z",
            Repeat::Weekly,
            &["mon"],
            "UTC",
            None,
        ))
        .unwrap();
        let e = err(write(
            "2026-01-05T10:00:00Z",
            "2026-01-12T10:00:01Z",
            Repeat::Once,
            &[],
            "UTC",
            None,
        ));
        assert_eq!(e, "ends_at: a window lasts at most 7 days");
        let e = err(write(
            "2026-01-05T10:00:00Z",
            "2026-01-05T10:00:00Z",
            Repeat::Once,
            &[],
            "UTC",
            None,
        ));
        assert_eq!(e, "ends_at: must be after starts_at");
        let e = err(write(
            "2026-01-05T10:00:00Z",
            "2026-01-05T11:00:00Z",
            Repeat::Weekly,
            &[],
            "UTC",
            None,
        ));
        assert!(e.starts_with("weekdays:"), "{e}");
        // 00:30 on 1 January in Berlin is still 31 December in UTC.
        let e = err(write(
            "2025-12-31T23:30:00Z",
            "2026-01-01T00:30:00Z",
            Repeat::Daily,
            &[],
            "Europe/Berlin",
            Some("2025-12-31"),
        ));
        assert!(e.starts_with("until:") && e.contains("2026-01-01"), "{e}");
    }

    #[test]
    fn bad_zone_and_weekdays() {
        let e = err(write(
            "2026-01-05T10:00:00Z",
            "2026-01-05T11:00:00Z",
            Repeat::Once,
            &[],
            "Mars/Olympus",
            None,
        ));
        assert_eq!(e, "time_zone: unknown zone \"Mars/Olympus\"");
        let e = err(write(
            "2026-01-05T10:00:00Z",
            "2026-01-05T11:00:00Z",
            Repeat::Weekly,
            &["mon", "funday"],
            "UTC",
            None,
        ));
        assert!(
            e.starts_with("weekdays:") && e.contains("\"funday\""),
            "{e}"
        );
        let s = spec(
            "2026-01-05T10:00:00Z",
            "2026-01-05T11:00:00Z",
            Repeat::Weekly,
            &["Thu", "mon", "MON", " sat "],
            "UTC",
            None,
        );
        assert_eq!(s.weekdays, vec![Weekday::Mon, Weekday::Thu, Weekday::Sat]);
    }

    #[test]
    fn far_future_is_jumped_to_and_correct() {
        let s = spec(
            "2026-03-18T21:00:00Z",
            "2026-03-18T22:00:00Z",
            Repeat::Weekly,
            &["wed", "sat"],
            "Europe/Berlin",
            None,
        );
        let from = utc("2036-07-02T20:30:00Z"); // Wednesday, during one
        let o = occurrences(&s, from, 4);
        // The same as walking from the beginning.
        let all = occurrences(&s, s.starts_at, 2000);
        let walked: Vec<_> = all
            .into_iter()
            .filter(|o| o.ends_at > from)
            .take(4)
            .collect();
        assert_eq!(o, walked);
        assert_eq!(o[0].starts_at, utc("2036-07-02T20:00:00Z"));
        assert_eq!(o.len(), 4);
        for o in &o {
            let local = o.starts_at.with_timezone(&s.tz);
            assert!(matches!(local.weekday(), Weekday::Wed | Weekday::Sat));
            assert_eq!(local.format("%H:%M").to_string(), "22:00");
        }
        // Winter, ten years on.
        let o = occurrences(&s, utc("2036-12-01T00:00:00Z"), 1);
        assert_eq!(o[0].starts_at, utc("2036-12-03T21:00:00Z"));
    }

    #[test]
    fn summaries() {
        assert_eq!(
            summary(&wednesday_berlin()),
            "every Wednesday 22:00–23:00 (Europe/Berlin)"
        );
        let s = spec(
            "2026-01-01T02:00:00Z",
            "2026-01-01T03:30:00Z",
            Repeat::Daily,
            &[],
            "UTC",
            Some("2027-01-31"),
        );
        assert_eq!(summary(&s), "every day 02:00–03:30 (UTC), until 2027-01-31");
        let s = spec(
            "2026-01-05T21:00:00Z",
            "2026-01-05T22:00:00Z",
            Repeat::Weekly,
            &["thu", "mon"],
            "Europe/Berlin",
            None,
        );
        assert_eq!(
            summary(&s),
            "every Monday, Thursday 22:00–23:00 (Europe/Berlin)"
        );
        let s = spec(
            "2026-01-03T22:00:00Z",
            "2026-01-04T04:00:00Z",
            Repeat::Weekly,
            &["sat"],
            "UTC",
            None,
        );
        assert_eq!(summary(&s), "every Saturday 22:00 for 6 h (UTC)");
        let s = spec(
            "2026-01-03T22:00:00Z",
            "2026-01-04T00:00:00Z",
            Repeat::Daily,
            &[],
            "UTC",
            None,
        );
        assert_eq!(summary(&s), "every day 22:00–24:00 (UTC)");
        let s = spec(
            "2026-01-03T22:00:00Z",
            "2026-01-05T22:00:00Z",
            Repeat::Weekly,
            &["sat"],
            "UTC",
            None,
        );
        assert_eq!(summary(&s), "every Saturday 22:00 for 2 days (UTC)");
        let s = spec(
            "2026-11-28T21:00:00Z",
            "2026-11-29T03:30:00Z",
            Repeat::Once,
            &[],
            "Europe/Berlin",
            None,
        );
        assert_eq!(
            summary(&s),
            "once, Sat 28 Nov 2026 22:00 – Sun 29 Nov 2026 04:30 (Europe/Berlin)"
        );
    }
}
