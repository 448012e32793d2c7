//! Rotation math: who is on call at an instant. Pure (no database, no
//! clock), unit-tested below; the API and [`super::level_recipients`] both
//! call [`shift_at`] / [`on_call`].
//!
//! **Handoffs.** A rotation hands off at `handoff_time` (local wall clock in
//! `time_zone`), every day (`daily`) or on one ISO weekday (`weekly`).
//! The rotation starts at `starts_on` 00:00 local; handoffs are the
//! handoff-time instants strictly after that start (so a 00:00 handoff on
//! `starts_on` itself is the start, not a handoff: member 0 takes the first
//! full period). Before the first handoff member 0 is on call; after `k`
//! handoffs member `k mod n` (members in turn order).
//!
//! **Local dates, not 24-hour steps.** Handoff `k` is computed from its local
//! date (`first + k` days, or `+ 7k`), then mapped to an instant, so a DST
//! change never shifts the handoff hour: 09:00 Europe/Berlin is 08:00 UTC in
//! winter and 07:00 UTC in summer. A local time that does not exist (the
//! skipped hour) happens at the first valid instant after the gap (02:30 on
//! the spring-forward day in Berlin → 03:00 CEST); an ambiguous one (the
//! repeated hour) takes the earlier instant.
//!
//! **Before the start.** Until `starts_on` 00:00 local the rotation puts
//! nobody on call (an override may); "next" is then member 0 from the start.
//!
//! **Overrides.** An override covers `[starts_at, ends_at)`. Among those
//! covering an instant the latest created (highest id) wins. A shift's
//! `until` is the first instant the answer changes: the next handoff, the
//! start of an override (or of a later-created one hiding the current
//! override), or the end of the current override, whichever comes first.
//! Its `from` is when the same source took over (the handoff, or the end of
//! an override that had hidden it). "Next" is the shift starting at
//! `until`. A single-member rotation still has shifts (next = the same
//! person from the next handoff).

use chrono::{
    DateTime, Datelike, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Utc,
    Weekday,
};
use chrono_tz::Tz;

/// How often a rotation hands off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    Daily,
    /// On this weekday.
    Weekly(Weekday),
}

/// A rotation as the math needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct RotationSpec {
    pub handoff: Handoff,
    pub handoff_time: NaiveTime,
    pub tz: Tz,
    pub starts_on: NaiveDate,
    /// Person ids in turn order.
    pub members: Vec<i64>,
}

/// An override as the math needs it; a higher `id` was created later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverrideSpec {
    pub id: i64,
    pub person_id: i64,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// Who is on call for a stretch of time, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shift {
    pub person_id: i64,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// The override that puts them there (`None`: the rotation does).
    pub override_id: Option<i64>,
}

/// Where the answer at an instant comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Source {
    /// The override with this id (index into the slice).
    Override(usize),
    /// The rotation after `k` handoffs (`k = 0`: before the first).
    Rotation(i64),
}

/// The instant a local date and time in `tz` means: the earlier one when
/// ambiguous, the first valid instant after the gap when it does not exist.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(earlier, _) => earlier.with_timezone(&Utc),
        LocalResult::None => {
            // Step to the end of the gap (gaps are whole minutes; at most a
            // few hours in any zone's history).
            let mut t = local;
            for _ in 0..(26 * 60) {
                t += TimeDelta::minutes(1);
                let found = match tz.from_local_datetime(&t) {
                    LocalResult::Single(x) => Some(x),
                    LocalResult::Ambiguous(x, _) => Some(x),
                    LocalResult::None => None,
                };
                if let Some(x) = found {
                    // The first valid minute; its instant is the transition
                    // when the gap ends on a whole minute.
                    return x.with_timezone(&Utc);
                }
            }
            local.and_utc()
        }
    }
}

impl RotationSpec {
    fn step_days(&self) -> i64 {
        match self.handoff {
            Handoff::Daily => 1,
            Handoff::Weekly(_) => 7,
        }
    }

    /// The rotation's start: `starts_on` 00:00 local.
    pub fn start(&self) -> DateTime<Utc> {
        resolve_local(self.tz, self.starts_on.and_time(NaiveTime::MIN))
    }

    /// The local date of the first handoff (strictly after the start).
    fn first_date(&self) -> Option<NaiveDate> {
        let mut d = self.starts_on;
        if let Handoff::Weekly(w) = self.handoff {
            let ahead = (7 + w.num_days_from_monday() as i64
                - d.weekday().num_days_from_monday() as i64)
                % 7;
            d = d.checked_add_signed(TimeDelta::days(ahead))?;
        }
        if resolve_local(self.tz, d.and_time(self.handoff_time)) <= self.start() {
            d = d.checked_add_signed(TimeDelta::days(self.step_days()))?;
        }
        Some(d)
    }

    /// Handoff `k` (1-based: the first handoff is 1). `None` out of range.
    pub fn handoff(&self, k: i64) -> Option<DateTime<Utc>> {
        if k < 1 {
            return None;
        }
        let first = self.first_date()?;
        let days = (k - 1).checked_mul(self.step_days())?;
        let date = first.checked_add_signed(TimeDelta::try_days(days)?)?;
        Some(resolve_local(self.tz, date.and_time(self.handoff_time)))
    }

    /// The number of handoffs in `(start, at]`; `None` before the start.
    pub fn handoffs_by(&self, at: DateTime<Utc>) -> Option<i64> {
        if at < self.start() {
            return None;
        }
        let first = self.first_date()?;
        let local = at.with_timezone(&self.tz).date_naive();
        // An estimate from the local date, corrected by a step or two.
        let mut k = ((local - first).num_days().div_euclid(self.step_days()) + 1).max(0);
        while k >= 1 && self.handoff(k).is_none_or(|h| h > at) {
            k -= 1;
        }
        while self.handoff(k + 1).is_some_and(|h| h <= at) {
            k += 1;
        }
        Some(k)
    }

    /// The member on call after `k` handoffs.
    fn member(&self, k: i64) -> Option<i64> {
        if self.members.is_empty() {
            return None;
        }
        let n = self.members.len() as i64;
        self.members.get(k.rem_euclid(n) as usize).copied()
    }

    /// The rotation's own period after `k` handoffs: `[from, until)`.
    fn period(&self, k: i64) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        let from = if k == 0 {
            self.start()
        } else {
            self.handoff(k)?
        };
        Some((from, self.handoff(k + 1)?))
    }
}

fn covers(o: &OverrideSpec, at: DateTime<Utc>) -> bool {
    o.starts_at <= at && at < o.ends_at
}

/// The answer at `at`: the latest-created covering override, else the
/// rotation (if it has started and has members).
fn source_at(rot: &RotationSpec, overrides: &[OverrideSpec], at: DateTime<Utc>) -> Option<Source> {
    let o = overrides
        .iter()
        .enumerate()
        .filter(|(_, o)| covers(o, at))
        .max_by_key(|(_, o)| o.id);
    if let Some((i, _)) = o {
        return Some(Source::Override(i));
    }
    if rot.members.is_empty() {
        return None;
    }
    rot.handoffs_by(at).map(Source::Rotation)
}

/// When the answer at `at` (coming from `src`) stops holding.
fn until_of(
    rot: &RotationSpec,
    overrides: &[OverrideSpec],
    src: Option<Source>,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    match src {
        Some(Source::Override(i)) => {
            let o = &overrides[i];
            // Its end, or a later-created override starting inside it.
            overrides
                .iter()
                .filter(|p| p.id > o.id && p.starts_at > at && p.starts_at < o.ends_at)
                .map(|p| p.starts_at)
                .chain([o.ends_at])
                .min()
        }
        Some(Source::Rotation(k)) => {
            // The next handoff, or the start of any override.
            let handoff = rot.handoff(k + 1);
            overrides
                .iter()
                .filter(|p| p.starts_at > at)
                .map(|p| p.starts_at)
                .chain(handoff)
                .min()
        }
        None => {
            // Nobody: the rotation's start (if in the future) or an override.
            let start = (!rot.members.is_empty() && rot.start() > at).then(|| rot.start());
            overrides
                .iter()
                .filter(|p| p.starts_at > at)
                .map(|p| p.starts_at)
                .chain(start)
                .min()
        }
    }
}

/// When the answer at `at` (coming from `src`) took over.
fn from_of(
    rot: &RotationSpec,
    overrides: &[OverrideSpec],
    src: Source,
    at: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let (begin, id_floor) = match src {
        Source::Override(i) => (overrides[i].starts_at, Some(overrides[i].id)),
        Source::Rotation(k) => (rot.period(k).map(|p| p.0)?, None),
    };
    // The end of the last override that hid it since it began.
    let hidden_until = overrides
        .iter()
        .filter(|p| id_floor.is_none_or(|id| p.id > id))
        .filter(|p| p.ends_at > begin && p.ends_at <= at)
        .map(|p| p.ends_at)
        .max();
    Some(hidden_until.map_or(begin, |h| h.max(begin)))
}

fn person_of(rot: &RotationSpec, overrides: &[OverrideSpec], src: Source) -> Option<i64> {
    match src {
        Source::Override(i) => Some(overrides[i].person_id),
        Source::Rotation(k) => rot.member(k),
    }
}

fn override_id(overrides: &[OverrideSpec], src: Source) -> Option<i64> {
    match src {
        Source::Override(i) => Some(overrides[i].id),
        Source::Rotation(_) => None,
    }
}

/// Who is on call at `now` (override first), with the stretch `[from,
/// until)` they cover. `None`: nobody (before the rotation starts, or no
/// members, and no override).
pub fn shift_at(
    rot: &RotationSpec,
    overrides: &[OverrideSpec],
    now: DateTime<Utc>,
) -> Option<Shift> {
    let src = source_at(rot, overrides, now)?;
    Some(Shift {
        person_id: person_of(rot, overrides, src)?,
        from: from_of(rot, overrides, src, now)?,
        until: until_of(rot, overrides, Some(src), now)?,
        override_id: override_id(overrides, src),
    })
}

/// Who is on call now and who is next: the shift starting when the current
/// one ends, or, when nobody is on call then (or now), the first shift
/// someone is on call after that.
pub fn on_call(
    rot: &RotationSpec,
    overrides: &[OverrideSpec],
    now: DateTime<Utc>,
) -> (Option<Shift>, Option<Shift>) {
    let current = shift_at(rot, overrides, now);
    let change = match current {
        Some(s) => Some(s.until),
        None => until_of(rot, overrides, None, now),
    };
    let mut next = None;
    let mut at = change;
    // Skip stretches with nobody on call (an override ending before the
    // rotation starts): "next" is the next person.
    for _ in 0..1000 {
        let Some(t) = at else { break };
        match source_at(rot, overrides, t) {
            Some(src) => {
                next = person_of(rot, overrides, src).and_then(|person_id| {
                    Some(Shift {
                        person_id,
                        from: t,
                        until: until_of(rot, overrides, Some(src), t)?,
                        override_id: override_id(overrides, src),
                    })
                });
                break;
            }
            None => at = until_of(rot, overrides, None, t),
        }
    }
    (current, next)
}

/// ISO weekday number (1 = Monday … 7 = Sunday) to a weekday.
pub fn iso_weekday(d: i16) -> Option<Weekday> {
    const DAYS: [Weekday; 7] = [
        Weekday::Mon,
        Weekday::Tue,
        Weekday::Wed,
        Weekday::Thu,
        Weekday::Fri,
        Weekday::Sat,
        Weekday::Sun,
    ];
    usize::try_from(d)
        .ok()
        .and_then(|d| d.checked_sub(1))
        .and_then(|i| DAYS.get(i).copied())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn time(s: &str) -> NaiveTime {
        NaiveTime::parse_from_str(s, "%H:%M").unwrap()
    }

    fn rot(handoff: Handoff, at: &str, tz: &str, starts_on: &str, members: &[i64]) -> RotationSpec {
        RotationSpec {
            handoff,
            handoff_time: time(at),
            tz: tz.parse().unwrap(),
            starts_on: date(starts_on),
            members: members.to_vec(),
        }
    }

    fn ov(id: i64, person_id: i64, from: &str, until: &str) -> OverrideSpec {
        OverrideSpec {
            id,
            person_id,
            starts_at: utc(from),
            ends_at: utc(until),
        }
    }

    fn who(r: &RotationSpec, o: &[OverrideSpec], at: &str) -> Option<i64> {
        shift_at(r, o, utc(at)).map(|s| s.person_id)
    }

    #[test]
    fn daily_sequence_in_utc() {
        let r = rot(Handoff::Daily, "09:00", "UTC", "2026-03-02", &[10, 20, 30]);
        assert_eq!(r.start(), utc("2026-03-02T00:00:00Z"));
        assert_eq!(r.handoff(1), Some(utc("2026-03-02T09:00:00Z")));
        assert_eq!(r.handoff(2), Some(utc("2026-03-03T09:00:00Z")));
        // Before the first handoff: member 0 since the start.
        let s = shift_at(&r, &[], utc("2026-03-02T08:59:59Z")).unwrap();
        assert_eq!(
            s,
            Shift {
                person_id: 10,
                from: utc("2026-03-02T00:00:00Z"),
                until: utc("2026-03-02T09:00:00Z"),
                override_id: None
            }
        );
        // Each handoff moves one member on, wrapping around.
        for (at, p) in [
            ("2026-03-02T09:00:00Z", 20),
            ("2026-03-03T08:59:00Z", 20),
            ("2026-03-03T09:00:00Z", 30),
            ("2026-03-04T09:00:00Z", 10),
            ("2026-03-05T12:00:00Z", 20),
            // 31 handoffs by 1 April: 31 mod 3 = 1.
            ("2026-04-01T10:00:00Z", 20),
        ] {
            assert_eq!(who(&r, &[], at), Some(p), "{at}");
        }
        let (now, next) = on_call(&r, &[], utc("2026-03-03T12:00:00Z"));
        let now = now.unwrap();
        let next = next.unwrap();
        assert_eq!(
            (now.person_id, now.from, now.until),
            (30, utc("2026-03-03T09:00:00Z"), utc("2026-03-04T09:00:00Z"))
        );
        assert_eq!(
            (next.person_id, next.from, next.until),
            (10, utc("2026-03-04T09:00:00Z"), utc("2026-03-05T09:00:00Z"))
        );
    }

    #[test]
    fn weekly_sequence() {
        // Starts on a Wednesday; hands off Mondays at 09:00 Berlin (winter).
        let r = rot(
            Handoff::Weekly(Weekday::Mon),
            "09:00",
            "Europe/Berlin",
            "2026-01-07",
            &[1, 2],
        );
        assert_eq!(r.start(), utc("2026-01-06T23:00:00Z"));
        assert_eq!(r.handoff(1), Some(utc("2026-01-12T08:00:00Z")));
        assert_eq!(r.handoff(2), Some(utc("2026-01-19T08:00:00Z")));
        assert_eq!(who(&r, &[], "2026-01-06T22:59:59Z"), None);
        assert_eq!(who(&r, &[], "2026-01-06T23:00:00Z"), Some(1));
        assert_eq!(who(&r, &[], "2026-01-12T07:59:59Z"), Some(1));
        assert_eq!(who(&r, &[], "2026-01-12T08:00:00Z"), Some(2));
        assert_eq!(who(&r, &[], "2026-01-19T08:00:00Z"), Some(1));
        assert_eq!(who(&r, &[], "2026-01-28T00:00:00Z"), Some(2));
        // A weekly rotation whose start day is the handoff day hands off that day.
        let r = rot(
            Handoff::Weekly(Weekday::Mon),
            "09:00",
            "UTC",
            "2026-01-05",
            &[1, 2],
        );
        assert_eq!(r.handoff(1), Some(utc("2026-01-05T09:00:00Z")));
        assert_eq!(who(&r, &[], "2026-01-05T10:00:00Z"), Some(2));
    }

    #[test]
    fn midnight_handoff_on_the_start_day_is_the_start() {
        let r = rot(Handoff::Daily, "00:00", "UTC", "2026-05-01", &[1, 2]);
        assert_eq!(r.handoff(1), Some(utc("2026-05-02T00:00:00Z")));
        assert_eq!(who(&r, &[], "2026-05-01T00:00:00Z"), Some(1));
        assert_eq!(who(&r, &[], "2026-05-02T00:00:00Z"), Some(2));
    }

    #[test]
    fn dst_berlin_keeps_the_local_hour() {
        // 09:00 Berlin: 08:00 UTC in winter, 07:00 UTC in summer (the clocks
        // go forward on 2026-03-29 and back on 2026-10-25).
        let r = rot(
            Handoff::Daily,
            "09:00",
            "Europe/Berlin",
            "2026-03-27",
            &[1, 2],
        );
        assert_eq!(r.handoff(1), Some(utc("2026-03-27T08:00:00Z")));
        assert_eq!(r.handoff(2), Some(utc("2026-03-28T08:00:00Z")));
        assert_eq!(r.handoff(3), Some(utc("2026-03-29T07:00:00Z")));
        assert_eq!(r.handoff(4), Some(utc("2026-03-30T07:00:00Z")));
        // The shift across the change is 23 hours long.
        let s = shift_at(&r, &[], utc("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(
            (s.from, s.until),
            (utc("2026-03-28T08:00:00Z"), utc("2026-03-29T07:00:00Z"))
        );
        // Fall back: 25 hours.
        let r = rot(
            Handoff::Daily,
            "09:00",
            "Europe/Berlin",
            "2026-10-24",
            &[1, 2],
        );
        assert_eq!(r.handoff(1), Some(utc("2026-10-24T07:00:00Z")));
        assert_eq!(r.handoff(2), Some(utc("2026-10-25T08:00:00Z")));
        let s = shift_at(&r, &[], utc("2026-10-24T12:00:00Z")).unwrap();
        assert_eq!((s.person_id, s.until), (2, utc("2026-10-25T08:00:00Z")));
        // Weekly in the same zone, over months: always 09:00 local.
        let r = rot(
            Handoff::Weekly(Weekday::Mon),
            "09:00",
            "Europe/Berlin",
            "2026-01-01",
            &[1, 2, 3],
        );
        for k in 1..60 {
            let h = r.handoff(k).unwrap().with_timezone(&r.tz);
            assert_eq!(h.time(), time("09:00"), "handoff {k}: {h}");
            assert_eq!(h.weekday(), Weekday::Mon);
            assert_eq!(r.handoffs_by(r.handoff(k).unwrap()), Some(k));
            assert_eq!(
                r.handoffs_by(r.handoff(k).unwrap() - TimeDelta::seconds(1)),
                Some(k - 1)
            );
        }
    }

    #[test]
    fn dst_gap_and_fold() {
        // 02:30 does not exist in Berlin on 2026-03-29: the first valid
        // instant after the gap is 03:00 CEST = 01:00 UTC.
        let r = rot(
            Handoff::Daily,
            "02:30",
            "Europe/Berlin",
            "2026-03-28",
            &[1, 2],
        );
        assert_eq!(r.handoff(1), Some(utc("2026-03-28T01:30:00Z")));
        assert_eq!(r.handoff(2), Some(utc("2026-03-29T01:00:00Z")));
        assert_eq!(r.handoff(3), Some(utc("2026-03-30T00:30:00Z")));
        // 02:30 happens twice on 2026-10-25: the earlier (CEST, 00:30 UTC).
        let r = rot(
            Handoff::Daily,
            "02:30",
            "Europe/Berlin",
            "2026-10-24",
            &[1, 2],
        );
        assert_eq!(r.handoff(2), Some(utc("2026-10-25T00:30:00Z")));
        assert_eq!(who(&r, &[], "2026-10-25T01:15:00Z"), Some(1));
        // New York: 02:00 → 03:00 on 2026-03-08, 02:00 → 01:00 on 2026-11-01.
        let r = rot(
            Handoff::Daily,
            "02:15",
            "America/New_York",
            "2026-03-07",
            &[1, 2, 3],
        );
        assert_eq!(r.handoff(1), Some(utc("2026-03-07T07:15:00Z")));
        assert_eq!(r.handoff(2), Some(utc("2026-03-08T07:00:00Z")));
        assert_eq!(r.handoff(3), Some(utc("2026-03-09T06:15:00Z")));
        let r = rot(
            Handoff::Daily,
            "01:30",
            "America/New_York",
            "2026-10-31",
            &[1, 2, 3],
        );
        assert_eq!(r.handoff(1), Some(utc("2026-10-31T05:30:00Z")));
        // 01:30 EDT (05:30 UTC), not 01:30 EST (06:30 UTC).
        assert_eq!(r.handoff(2), Some(utc("2026-11-01T05:30:00Z")));
        assert_eq!(r.handoff(3), Some(utc("2026-11-02T06:30:00Z")));
        assert_eq!(who(&r, &[], "2026-11-01T06:00:00Z"), Some(3));
        // 09:00 New York: 14:00 UTC in winter, 13:00 in summer.
        let r = rot(
            Handoff::Daily,
            "09:00",
            "America/New_York",
            "2026-03-06",
            &[1],
        );
        assert_eq!(r.handoff(1), Some(utc("2026-03-06T14:00:00Z")));
        assert_eq!(r.handoff(3), Some(utc("2026-03-08T13:00:00Z")));
    }

    #[test]
    fn before_starts_on() {
        let r = rot(Handoff::Daily, "09:00", "UTC", "2026-06-10", &[7, 8]);
        let at = utc("2026-06-08T12:00:00Z");
        let (now, next) = on_call(&r, &[], at);
        assert_eq!(now, None);
        let next = next.unwrap();
        assert_eq!(
            next,
            Shift {
                person_id: 7,
                from: utc("2026-06-10T00:00:00Z"),
                until: utc("2026-06-10T09:00:00Z"),
                override_id: None
            }
        );
        // An override may cover the time before the start.
        let o = [ov(1, 9, "2026-06-08T00:00:00Z", "2026-06-09T00:00:00Z")];
        let (now, next) = on_call(&r, &o, at);
        assert_eq!(now.unwrap().person_id, 9);
        assert_eq!(now.unwrap().until, utc("2026-06-09T00:00:00Z"));
        // Then nobody until the start: "next" is member 0 from the start.
        let next = next.unwrap();
        assert_eq!(
            (next.person_id, next.from),
            (7, utc("2026-06-10T00:00:00Z"))
        );
        let (gap, after) = on_call(&r, &o, utc("2026-06-09T12:00:00Z"));
        assert_eq!(gap, None);
        assert_eq!(after.unwrap().person_id, 7);
    }

    #[test]
    fn override_in_the_middle_of_a_shift() {
        // Weekly UTC, Monday 09:00; member 1 on call 2026-01-05 → 01-12.
        let r = rot(
            Handoff::Weekly(Weekday::Mon),
            "09:00",
            "UTC",
            "2025-12-29",
            &[1, 2],
        );
        assert_eq!(who(&r, &[], "2026-01-07T12:00:00Z"), Some(1));
        let o = [ov(5, 3, "2026-01-07T00:00:00Z", "2026-01-08T00:00:00Z")];
        // Before the override: the rotation, until the override starts.
        let (now, next) = on_call(&r, &o, utc("2026-01-06T12:00:00Z"));
        let (now, next) = (now.unwrap(), next.unwrap());
        assert_eq!(
            (now.person_id, now.from, now.until),
            (1, utc("2026-01-05T09:00:00Z"), utc("2026-01-07T00:00:00Z"))
        );
        assert_eq!(
            (next.person_id, next.until, next.override_id),
            (3, utc("2026-01-08T00:00:00Z"), Some(5))
        );
        // During: the override, next is the rotation's member again.
        let (now, next) = on_call(&r, &o, utc("2026-01-07T12:00:00Z"));
        let (now, next) = (now.unwrap(), next.unwrap());
        assert_eq!(
            (now.person_id, now.from, now.until, now.override_id),
            (
                3,
                utc("2026-01-07T00:00:00Z"),
                utc("2026-01-08T00:00:00Z"),
                Some(5)
            )
        );
        assert_eq!(
            (next.person_id, next.from, next.until, next.override_id),
            (
                1,
                utc("2026-01-08T00:00:00Z"),
                utc("2026-01-12T09:00:00Z"),
                None
            )
        );
        // After: the rotation's member, since the override ended.
        let now = shift_at(&r, &o, utc("2026-01-09T12:00:00Z")).unwrap();
        assert_eq!(
            (now.person_id, now.from, now.until),
            (1, utc("2026-01-08T00:00:00Z"), utc("2026-01-12T09:00:00Z"))
        );
        // An override across a handoff ends before the next handoff's member.
        let o = [ov(6, 3, "2026-01-11T00:00:00Z", "2026-01-14T00:00:00Z")];
        let (now, next) = on_call(&r, &o, utc("2026-01-12T12:00:00Z"));
        assert_eq!(now.unwrap().person_id, 3);
        let next = next.unwrap();
        assert_eq!(
            (next.person_id, next.from, next.until),
            (2, utc("2026-01-14T00:00:00Z"), utc("2026-01-19T09:00:00Z"))
        );
    }

    #[test]
    fn latest_created_override_wins() {
        let r = rot(Handoff::Daily, "09:00", "UTC", "2026-01-01", &[1]);
        let o = [
            ov(10, 4, "2026-02-01T00:00:00Z", "2026-02-10T00:00:00Z"),
            ov(11, 5, "2026-02-03T00:00:00Z", "2026-02-04T00:00:00Z"),
            // Created earlier than 10: hidden by it.
            ov(3, 6, "2026-02-05T00:00:00Z", "2026-02-06T00:00:00Z"),
        ];
        assert_eq!(who(&r, &o, "2026-02-02T00:00:00Z"), Some(4));
        assert_eq!(who(&r, &o, "2026-02-03T12:00:00Z"), Some(5));
        assert_eq!(who(&r, &o, "2026-02-05T12:00:00Z"), Some(4));
        // 10 until 11 starts; after 11, 10 again from 11's end.
        let (now, next) = on_call(&r, &o, utc("2026-02-02T00:00:00Z"));
        assert_eq!(now.unwrap().until, utc("2026-02-03T00:00:00Z"));
        assert_eq!(next.unwrap().person_id, 5);
        let s = shift_at(&r, &o, utc("2026-02-05T12:00:00Z")).unwrap();
        assert_eq!(
            (s.from, s.until, s.override_id),
            (
                utc("2026-02-04T00:00:00Z"),
                utc("2026-02-10T00:00:00Z"),
                Some(10)
            )
        );
        // Ends at `ends_at` exactly (half-open).
        assert_eq!(who(&r, &o, "2026-02-10T00:00:00Z"), Some(1));
    }

    #[test]
    fn single_member_rotation() {
        let r = rot(
            Handoff::Daily,
            "08:00",
            "Europe/Berlin",
            "2026-01-01",
            &[42],
        );
        let (now, next) = on_call(&r, &[], utc("2026-07-15T12:00:00Z"));
        let (now, next) = (now.unwrap(), next.unwrap());
        assert_eq!(now.person_id, 42);
        assert_eq!(
            (now.from, now.until),
            (utc("2026-07-15T06:00:00Z"), utc("2026-07-16T06:00:00Z"))
        );
        assert_eq!(
            (next.person_id, next.from),
            (42, utc("2026-07-16T06:00:00Z"))
        );
        // No members: nobody, unless an override.
        let empty = rot(Handoff::Daily, "08:00", "UTC", "2026-01-01", &[]);
        assert_eq!(
            on_call(&empty, &[], utc("2026-07-15T12:00:00Z")),
            (None, None)
        );
    }

    #[test]
    fn resolve_local_rules() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let l = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").unwrap();
        assert_eq!(
            resolve_local(berlin, l("2026-03-29 02:00")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            resolve_local(berlin, l("2026-03-29 02:59")),
            utc("2026-03-29T01:00:00Z")
        );
        assert_eq!(
            resolve_local(berlin, l("2026-10-25 02:00")),
            utc("2026-10-25T00:00:00Z")
        );
    }
}
