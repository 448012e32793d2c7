//! Cron schedules: a runbook with parameters, started by the clock.
//!
//! **Expressions.** A schedule's `cron` has 5 fields (`minute hour
//! day-of-month month day-of-week`) or 6 with **seconds first** (`second
//! minute hour …`), or a nickname (`@hourly`, `@daily`, `@weekly`,
//! `@monthly`, `@yearly`); no year field. Parsing and the time arithmetic
//! are croner's (POSIX day-of-month/day-of-week OR, `L`, `#`, `W`, names of
//! days and months). An expression that never fires (`0 0 30 2 *`) is
//! refused. The time zone is an IANA name (`Europe/Berlin`), stored in its
//! canonical spelling; occurrences are computed on that zone's wall clock,
//! so `0 22 * * 3` in `Europe/Berlin` is 21:00 UTC in winter and 20:00 UTC
//! in summer. Across a DST change croner's rules apply: a fixed time in the
//! skipped hour runs right after the gap, one in the repeated hour runs once.
//!
//! **Ticking.** Every server process runs the registry task [`task`]
//! (`schedules`, [`crate::jobs`]): [`tick`] at every whole second, never
//! overlapping itself.
//! `schedules.checked_until` means "every occurrence up to here is settled".
//! For each enabled schedule, [`due`] computes the occurrences in
//! `(checked_until, now]` (whole seconds). None: nothing is written. Else the
//! schedule row is locked (`FOR UPDATE SKIP LOCKED`: a process that finds it
//! locked leaves it to the one holding it), re-read, and in one transaction:
//!
//! * the latest occurrence is claimed by inserting `(schedule_id, tick_at)`
//!   into `schedule_ticks` (`ON CONFLICT DO NOTHING`); only the process
//!   whose insert returned a row goes on, so each tick has at most one run
//!   whatever the number of processes;
//! * the run is queued with [`engine::enqueue`] (a savepoint) as the system
//!   actor `schedule:<name>`, with `schedule_id` set and the reason
//!   `scheduled: <name> (<cron> <tz>) tick <time>`; the tick row gets its
//!   `run_id`, an audit entry `schedule.run` is written;
//! * `checked_until` moves to `now` (never backwards: `greatest`).
//!
//! Only the latest occurrence of a window is ever run: a window normally
//! holds one occurrence (the ticker runs every second); several means ticks
//! were missed (no server ran, or a process stalled).
//!
//! **Missed ticks.** An occurrence is on time while it is at most
//! [`GRACE`] (60 s) old. `skip`: the latest occurrence runs only when it is on
//! time; older ones are forgotten (`checked_until` just advances, no tick
//! rows). `catch_up`: the latest occurrence runs even when late — one run for
//! all missed ticks — and the run's reason says `catch-up for N missed
//! ticks`. A new schedule, a schedule being enabled again, or a changed
//! timetable (cron or zone) starts with `checked_until = now()`: no catch-up
//! for time before it existed or while it was off.
//!
//! **Refused runs.** When `enqueue` refuses (409: the runbook is already
//! running for that target; 400: the parameters no longer fit the runbook's
//! current definition or the inventory; 404) the tick is still settled: its
//! row says `skipped: <reason>`, an audit entry `schedule.run` with outcome
//! failure names it, and the next tick tries again. Database errors roll the
//! transaction back (nothing claimed) and the tick is retried a second
//! later. One schedule's failure never stops the others (logged, next).
//!
//! **API.** `GET /api/v1/schedules` (viewer) lists schedules with their next
//! five runs, last tick and last run; `GET /api/v1/schedules/preview`
//! (viewer) previews an expression; `POST` (201), `PUT /{id}`, `DELETE /{id}`
//! (204) are admin-only, validated at the boundary (name 1–100 characters
//! and unique, cron, zone, runbook, parameters against the runbook's current
//! definition and the inventory) and audited as
//! `schedule.create|update|delete`. Parameters are stored as written (the
//! runbook's defaults apply when a run is queued).
//!
//! Layers: this module is the domain (timetable, the tick and its claims,
//! the missed-tick policy, checked writes with [`ScheduleError`]); `api`
//! holds the routes, `store` the SQL.

mod api;
mod store;

pub use api::router;

use std::collections::BTreeMap;

use chrono::{DateTime, SubsecRound, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use opsdeck_wire::{MissedPolicy, Outcome, RunStatus, RunbookDef, Schedule, ScheduleWrite};
use serde_json::{json, Value};
use sqlx::PgConnection;

use super::def;
use super::engine::{self, NewRun, RunError};
use crate::audit::{self, Actor, NewEntry};
use crate::jobs::{Pace, Scope, Task};
use crate::state::AppState;

/// How late an occurrence may be and still count as on time.
pub const GRACE: TimeDelta = TimeDelta::seconds(60);
/// Occurrences counted in one window at most (for the catch-up note).
const COUNT_LIMIT: u64 = 10_000;
/// Upcoming runs shown per schedule and in previews.
const NEXT_RUNS: usize = 5;

// ------------------------------------------------------------------ timetable

/// A parsed cron expression with its field count.
#[derive(Debug, Clone)]
pub struct Timetable {
    pub cron: Cron,
    pub tz: Tz,
    /// The expression has a seconds field.
    pub seconds: bool,
}

/// Parses a cron expression: 5 fields, 6 with seconds first, or a nickname.
/// The message names the field (`cron: …`).
pub fn parse_cron(expr: &str) -> Result<(Cron, bool), String> {
    let expr = expr.trim();
    if expr.is_empty() {
        return Err("cron: required".into());
    }
    if expr.len() > 200 {
        return Err("cron: at most 200 characters".into());
    }
    let fields = expr.split_whitespace().count();
    let nickname = expr.starts_with('@');
    if nickname {
        let known = [
            "@yearly",
            "@annually",
            "@monthly",
            "@weekly",
            "@daily",
            "@midnight",
            "@hourly",
        ];
        if fields != 1 || !known.contains(&expr.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "cron: unknown nickname \"{expr}\" (use @hourly, @daily, @weekly, @monthly or @yearly)"
            ));
        }
    } else if fields != 5 && fields != 6 {
        return Err(format!(
            "cron: expected 5 fields (minute hour day-of-month month day-of-week) \
             or 6 with seconds first, got {fields}"
        ));
    }
    let parser = CronParser::builder()
        .seconds(if fields == 6 {
            Seconds::Required
        } else {
            Seconds::Disallowed
        })
        .year(Year::Disallowed)
        .build();
    let cron = parser
        .parse(expr)
        .map_err(|e| format!("cron: \"{expr}\" does not parse: {e}"))?;
    // An expression that can never match (31 February) is a mistake.
    if cron.find_next_occurrence(&Utc::now(), false).is_err() {
        return Err(format!("cron: \"{expr}\" never fires"));
    }
    Ok((cron, fields == 6))
}

/// Parses an IANA time zone name; the message names the field.
pub fn parse_tz(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err("timezone: required (an IANA name such as Europe/Berlin, or UTC)".into());
    }
    name.parse::<Tz>().map_err(|_| {
        format!("timezone: unknown time zone \"{name}\" (use an IANA name such as Europe/Berlin)")
    })
}

impl Timetable {
    pub fn new(cron: &str, tz: &str) -> Result<Timetable, String> {
        let (cron, seconds) = parse_cron(cron)?;
        let tz = parse_tz(tz)?;
        Ok(Timetable { cron, tz, seconds })
    }

    /// The first occurrence strictly after `after` (whole seconds).
    ///
    /// Not croner's iterator: it steps one second too far after each match
    /// and so skips every other second of `* * * * * *`. In a repeated DST
    /// hour croner answers the first pass of a wall-clock time; occurrences
    /// earlier than `after` are stepped over, so each wall-clock time of the
    /// repeated hour runs once.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let after = after.trunc_subsecs(0);
        let mut cur = after.with_timezone(&self.tz);
        // At most an hour of seconds to step over in a repeated hour.
        for _ in 0..4000 {
            let n = self.cron.find_next_occurrence(&cur, false).ok()?;
            let u = n.with_timezone(&Utc);
            if u > after {
                return Some(u);
            }
            cur = n;
        }
        None
    }

    /// The next `n` occurrences strictly after `after`, in UTC.
    pub fn next(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        let mut out = Vec::with_capacity(n);
        let mut cur = after;
        while out.len() < n {
            match self.next_after(cur) {
                Some(at) => {
                    out.push(at);
                    cur = at;
                }
                None => break,
            }
        }
        out
    }

    /// `Wed 2026-11-25 22:00 Europe/Berlin` (seconds when the expression
    /// has them).
    pub fn local(&self, at: DateTime<Utc>) -> String {
        let fmt = if self.seconds {
            "%a %Y-%m-%d %H:%M:%S"
        } else {
            "%a %Y-%m-%d %H:%M"
        };
        format!(
            "{} {}",
            at.with_timezone(&self.tz).format(fmt),
            self.tz.name()
        )
    }
}

/// The occurrences of a window `(checked_until, now]`, whole seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// The latest occurrence.
    pub latest: DateTime<Utc>,
    /// Occurrences in the window (at most [`COUNT_LIMIT`]).
    pub count: u64,
}

/// The occurrences of `t` in `(checked_until, now]`, or `None`.
pub fn due(t: &Timetable, checked_until: DateTime<Utc>, now: DateTime<Utc>) -> Option<Window> {
    let from = checked_until.trunc_subsecs(0);
    let to = now.trunc_subsecs(0);
    if to <= from {
        return None;
    }
    let latest = t
        .cron
        .find_previous_occurrence(&to.with_timezone(&t.tz), true)
        .ok()?
        .with_timezone(&Utc);
    if latest <= from || latest > to {
        return None;
    }
    let mut count = 0;
    let mut cur = from;
    while count < COUNT_LIMIT {
        match t.next_after(cur) {
            Some(at) if at <= to => {
                count += 1;
                cur = at;
            }
            _ => break,
        }
    }
    Some(Window {
        latest,
        count: count.max(1),
    })
}

/// What a due window leads to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Run for `tick`; `missed` occurrences before it (or it) were late.
    Run { tick: DateTime<Utc>, missed: u64 },
    /// Nothing runs (policy `skip`, nothing on time); `missed` are dropped.
    Skip { missed: u64 },
}

/// Applies the missed-ticks policy to a window.
pub fn decide(policy: MissedPolicy, w: Window, now: DateTime<Utc>) -> Decision {
    let on_time = now.trunc_subsecs(0) - w.latest <= GRACE;
    let missed = w.count - u64::from(on_time);
    if on_time || policy == MissedPolicy::CatchUp {
        Decision::Run {
            tick: w.latest,
            missed,
        }
    } else {
        Decision::Skip { missed }
    }
}

fn missed_str(m: MissedPolicy) -> &'static str {
    match m {
        MissedPolicy::Skip => "skip",
        MissedPolicy::CatchUp => "catch_up",
    }
}

fn parse_missed(s: &str) -> MissedPolicy {
    if s == "catch_up" {
        MissedPolicy::CatchUp
    } else {
        MissedPolicy::Skip
    }
}

// --------------------------------------------------------------------- ticker

/// The ticker for the jobs registry: [`tick`] at every whole second, in
/// every process (the tick claims keep each occurrence to one run).
pub fn task(state: AppState) -> anyhow::Result<Task> {
    Task::cron(
        "schedules",
        "* * * * * *",
        chrono_tz::UTC,
        Scope::EveryProcess,
        state,
        |state| async move {
            tick(&state, Utc::now()).await?;
            Ok(Pace::Normal)
        },
    )
}

/// A schedule as the ticker reads it.
struct Due {
    id: i64,
    name: String,
    cron: String,
    timezone: String,
    missed: MissedPolicy,
    checked_until: DateTime<Utc>,
    runbook_id: i64,
    params: BTreeMap<String, Value>,
}

fn due_row(r: store::DueRow) -> Due {
    Due {
        id: r.id,
        name: r.name,
        cron: r.cron,
        timezone: r.timezone,
        missed: parse_missed(&r.missed),
        checked_until: r.checked_until,
        runbook_id: r.runbook_id,
        params: serde_json::from_value(r.params).unwrap_or_default(),
    }
}

/// Settles every enabled schedule's occurrences up to `now`; returns the
/// number of runs this call queued. Safe to call from any number of
/// processes at once (see the module documentation).
pub async fn tick(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<u32> {
    let rows = store::unsettled(&state.pool, now).await?;
    let mut started = 0;
    for row in rows {
        let s = due_row(row);
        // Cheap check without locks: most schedules are not due.
        let t = match Timetable::new(&s.cron, &s.timezone) {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(schedule = %s.name, error = %e, "schedule cannot be evaluated");
                continue;
            }
        };
        if due(&t, s.checked_until, now).is_none() {
            continue;
        }
        match settle(state, s.id, now).await {
            Ok(Some(run)) => {
                started += 1;
                state.runs().changed(run).await;
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(schedule = %s.name, error = format!("{e:#}"), "schedule tick failed")
            }
        }
    }
    Ok(started)
}

/// Settles one schedule under its row lock; returns the queued run.
async fn settle(state: &AppState, id: i64, now: DateTime<Utc>) -> anyhow::Result<Option<i64>> {
    let mut tx = state.pool.begin().await?;
    let row = store::lock_due(&mut tx, id).await?;
    // Gone, disabled, or another process holds it right now.
    let Some(row) = row else {
        return Ok(None);
    };
    let s = due_row(row);
    let t = Timetable::new(&s.cron, &s.timezone).map_err(anyhow::Error::msg)?;
    let Some(window) = due(&t, s.checked_until, now) else {
        return Ok(None);
    };
    let decision = decide(s.missed, window, now);
    let mut run = None;
    if let Decision::Run { tick, missed } = decision {
        run = claim(state, &mut tx, &s, &t, tick, missed).await?;
    } else if let Decision::Skip { missed } = decision {
        tracing::info!(
            schedule = %s.name,
            missed,
            latest = %window.latest,
            "missed schedule ticks skipped (policy skip)"
        );
    }
    store::settled_until(&mut tx, s.id, now).await?;
    tx.commit().await?;
    Ok(run)
}

/// Claims `tick` and queues its run on `tx`. `None` when another process
/// claimed it or the run was refused (the tick then says why).
async fn claim(
    state: &AppState,
    tx: &mut PgConnection,
    s: &Due,
    t: &Timetable,
    tick: DateTime<Utc>,
    missed: u64,
) -> anyhow::Result<Option<i64>> {
    if !store::claim_tick(&mut *tx, s.id, tick, state.runs().owner()).await? {
        return Ok(None);
    }
    let mut reason = format!(
        "scheduled: {} ({} {}) tick {}",
        s.name,
        s.cron.trim(),
        t.tz.name(),
        tick.format("%Y-%m-%d %H:%M:%SZ")
    );
    if s.missed == MissedPolicy::CatchUp && missed > 0 {
        let n = if missed >= COUNT_LIMIT {
            format!("{missed}+")
        } else {
            missed.to_string()
        };
        reason.push_str(&format!(
            "; catch-up for {n} missed tick{}",
            if missed == 1 { "" } else { "s" }
        ));
    }
    let actor = Actor::system(&format!("schedule:{}", s.name));
    let queued = engine::enqueue(
        state,
        &mut *tx,
        NewRun {
            runbook_id: s.runbook_id,
            params: s.params.clone(),
            reason: reason.clone(),
            incident: None,
            requested_by: actor.clone(),
            requested_by_user: None,
            schedule_id: Some(s.id),
            parent: None,
        },
    )
    .await;
    let (run, outcome, detail) = match queued {
        Ok(run) => (Some(run), "started".to_owned(), None),
        Err(e) => match refusal(&e) {
            Some(why) => (None, format!("skipped: {why}"), Some(why)),
            // The database failed: nothing is claimed, the next tick retries.
            None => return Err(anyhow::anyhow!("queuing the run: {e}")),
        },
    };
    store::tick_outcome(&mut *tx, s.id, tick, run, &outcome).await?;
    audit::record(
        tx,
        NewEntry {
            actor,
            action: "schedule.run".into(),
            target: Some(match run {
                Some(r) => format!("run:{r}"),
                None => format!("schedule:{}", s.id),
            }),
            params: json!({
                "schedule": s.name,
                "schedule_id": s.id,
                "runbook_id": s.runbook_id,
                "tick": tick,
                "missed": missed,
                "reason": reason,
            }),
            source: None,
            outcome: if run.is_some() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            detail: detail.clone(),
        },
    )
    .await?;
    match (&run, &detail) {
        (Some(r), _) => tracing::info!(schedule = %s.name, run = r, %tick, "scheduled run queued"),
        (None, Some(why)) => {
            tracing::warn!(schedule = %s.name, %tick, reason = %why, "scheduled run refused")
        }
        _ => {}
    }
    Ok(run)
}

/// A refusal that settles the tick (as opposed to a database failure that
/// should be retried).
fn refusal(e: &RunError) -> Option<String> {
    match e {
        RunError::Database(_) => None,
        RunError::Internal(inner) => Some(format!("{inner:#}")),
        other => Some(other.to_string()),
    }
}

// --------------------------------------------------------------- the domain

/// Why a schedule was not read or written (converted to `ApiError` in
/// `error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// No schedule with this id.
    #[error("schedule {0} not found")]
    NotFound(i64),
    /// The write does not fit (the message starts with the field).
    #[error("{0}")]
    Invalid(String),
    /// The stored runbook definition is broken.
    #[error("internal error")]
    Internal(anyhow::Error),
    /// The database failed or refused (a taken name: `schedules_name_key`).
    #[error("internal error")]
    Database(#[from] sqlx::Error),
}

fn to_wire(r: store::ScheduleRow, now: DateTime<Utc>) -> Schedule {
    let cron = r.cron;
    let timezone = r.timezone;
    let enabled = r.enabled;
    let next_runs = match (enabled, Timetable::new(&cron, &timezone)) {
        (true, Ok(t)) => t.next(now, NEXT_RUNS),
        _ => Vec::new(),
    };
    Schedule {
        id: r.id,
        runbook_id: r.runbook_id,
        runbook: r.runbook,
        name: r.name,
        cron,
        timezone,
        params: serde_json::from_value(r.params).unwrap_or_default(),
        enabled,
        missed: parse_missed(&r.missed),
        next_runs,
        last_tick_at: r.tick_at,
        last_run_id: r.run_id,
        last_run_status: r.run_status.as_deref().and_then(RunStatus::parse),
    }
}

/// One schedule with its next runs, last tick and last run.
pub async fn get(conn: &mut PgConnection, id: i64) -> Result<Schedule, ScheduleError> {
    let row = store::one(conn, id)
        .await?
        .ok_or(ScheduleError::NotFound(id))?;
    Ok(to_wire(row, Utc::now()))
}

/// Every schedule, by name.
pub async fn list(conn: &mut PgConnection) -> Result<Vec<Schedule>, ScheduleError> {
    let rows = store::all(conn).await?;
    let now = Utc::now();
    Ok(rows.into_iter().map(|r| to_wire(r, now)).collect())
}

/// A write, checked: trimmed name, canonical zone.
pub struct Checked {
    pub name: String,
    pub cron: String,
    pub timezone: String,
}

/// Validates a write; messages name the field.
async fn check(
    state: &AppState,
    conn: &mut PgConnection,
    w: &ScheduleWrite,
) -> Result<Checked, ScheduleError> {
    let name = w.name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > 100 {
        return Err(ScheduleError::Invalid("name: 1–100 characters".into()));
    }
    if name.chars().any(char::is_control) {
        return Err(ScheduleError::Invalid("name: no control characters".into()));
    }
    let t = Timetable::new(&w.cron, &w.timezone).map_err(ScheduleError::Invalid)?;
    let definition = store::current_definition(conn, w.runbook_id)
        .await?
        .ok_or_else(|| {
            ScheduleError::Invalid(format!("runbook_id: no runbook with id {}", w.runbook_id))
        })?;
    let def: RunbookDef = serde_json::from_value(definition)
        .map_err(|e| ScheduleError::Internal(anyhow::anyhow!("stored runbook definition: {e}")))?;
    let world = engine::load_world(state, conn).await?;
    def::check_params(&def, &w.params, &world)
        .map_err(|e| ScheduleError::Invalid(format!("params: {e}")))?;
    Ok(Checked {
        name: name.to_owned(),
        cron: w.cron.split_whitespace().collect::<Vec<_>>().join(" "),
        timezone: t.tz.name().to_owned(),
    })
}

/// Creates a schedule on `tx` (the caller audits and commits); its first
/// tick is the first occurrence after now.
pub async fn create(
    state: &AppState,
    tx: &mut PgConnection,
    w: &ScheduleWrite,
    by: &str,
) -> Result<(i64, Checked), ScheduleError> {
    let c = check(state, tx, w).await?;
    let params = serde_json::to_value(&w.params).unwrap_or_default();
    let id = store::insert(tx, w, &c, &params, missed_str(w.missed), by).await?;
    Ok((id, c))
}

/// Replaces schedule `id` on `tx` (the caller audits and commits).
/// Enabling it, or changing its cron or zone, starts its timetable now.
pub async fn update(
    state: &AppState,
    tx: &mut PgConnection,
    id: i64,
    w: &ScheduleWrite,
) -> Result<Checked, ScheduleError> {
    let cur = store::lock_current(tx, id)
        .await?
        .ok_or(ScheduleError::NotFound(id))?;
    let c = check(state, tx, w).await?;
    let restart = !cur.enabled || cur.cron != c.cron || cur.timezone != c.timezone;
    let params = serde_json::to_value(&w.params).unwrap_or_default();
    store::update(tx, id, w, &c, &params, missed_str(w.missed), restart).await?;
    Ok(c)
}

/// Deletes schedule `id` on `tx` (its runs stay, without the link);
/// returns its name.
pub async fn delete(tx: &mut PgConnection, id: i64) -> Result<String, ScheduleError> {
    store::delete(tx, id)
        .await?
        .ok_or(ScheduleError::NotFound(id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_and_six_fields() {
        assert!(!parse_cron("0 22 * * 3").unwrap().1);
        assert!(parse_cron("*/10 * * * * *").unwrap().1);
        assert!(parse_cron("@daily").is_ok());
        for bad in [
            "",
            "* * * *",
            "* * * * * * *",
            "61 * * * *",
            "@often",
            "0 0 30 2 *",
        ] {
            let e = parse_cron(bad).unwrap_err();
            assert!(e.starts_with("cron:"), "{bad}: {e}");
        }
        assert!(parse_tz("Europe/Berlin").is_ok());
        assert!(parse_tz("Mars/Olympus")
            .unwrap_err()
            .starts_with("timezone:"));
    }

    #[test]
    fn berlin_wednesdays() {
        let t = Timetable::new("0 22 * * 3", "Europe/Berlin").unwrap();
        let next = t.next(utc("2026-11-20T00:00:00Z"), 3);
        assert_eq!(next[0], utc("2026-11-25T21:00:00Z"));
        assert_eq!(next[1], utc("2026-12-02T21:00:00Z"));
        assert_eq!(t.local(next[0]), "Wed 2026-11-25 22:00 Europe/Berlin");
        // Summer time: 20:00 UTC.
        let summer = t.next(utc("2026-07-01T00:00:00Z"), 1);
        assert_eq!(summer[0], utc("2026-07-01T20:00:00Z"));
    }

    #[test]
    fn windows() {
        let t = Timetable::new("*/5 * * * *", "UTC").unwrap();
        let cu = utc("2026-01-01T00:00:30Z");
        assert_eq!(due(&t, cu, utc("2026-01-01T00:04:59.9Z")), None);
        let w = due(&t, cu, utc("2026-01-01T00:05:00.2Z")).unwrap();
        assert_eq!(w.latest, utc("2026-01-01T00:05:00Z"));
        assert_eq!(w.count, 1);
        // Exclusive at the start.
        assert_eq!(
            due(
                &t,
                utc("2026-01-01T00:05:00.5Z"),
                utc("2026-01-01T00:06:00Z")
            ),
            None
        );
        // An hour down: 12 occurrences, the latest 00:35 + 25 s late.
        let now = utc("2026-01-01T01:00:25Z");
        let w = due(&t, utc("2026-01-01T00:01:00Z"), now).unwrap();
        assert_eq!(w.latest, utc("2026-01-01T01:00:00Z"));
        assert_eq!(w.count, 12);
        assert_eq!(
            decide(MissedPolicy::Skip, w, now),
            Decision::Run {
                tick: w.latest,
                missed: 11
            }
        );
        let late = utc("2026-01-01T01:03:00Z");
        assert_eq!(
            decide(MissedPolicy::Skip, w, late),
            Decision::Skip { missed: 12 }
        );
        assert_eq!(
            decide(MissedPolicy::CatchUp, w, late),
            Decision::Run {
                tick: w.latest,
                missed: 12
            }
        );
        // Seconds, sub-second now.
        let s = Timetable::new("* * * * * *", "UTC").unwrap();
        let w = due(
            &s,
            utc("2026-01-01T00:00:00.5Z"),
            utc("2026-01-01T00:00:03.7Z"),
        )
        .unwrap();
        assert_eq!(w.latest, utc("2026-01-01T00:00:03Z"));
        assert_eq!(w.count, 3);
        assert_eq!(
            s.next(utc("2026-01-01T00:00:00.5Z"), 3),
            [1, 2, 3].map(|x| Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, x).unwrap())
        );
    }

    #[test]
    fn dst_changes() {
        // Spring forward in Berlin (2026-03-29, 02:00 → 03:00): 02:30 is
        // skipped wall-clock time; the job runs right after the gap.
        let t = Timetable::new("30 2 * * *", "Europe/Berlin").unwrap();
        let next = t.next(utc("2026-03-28T12:00:00Z"), 2);
        assert_eq!(next[0], utc("2026-03-29T01:00:00Z"));
        assert_eq!(next[1], utc("2026-03-30T00:30:00Z"));
        // Fall back (2026-10-25, 03:00 → 02:00): 02:30 happens twice, runs once.
        let next = t.next(utc("2026-10-24T12:00:00Z"), 2);
        assert_eq!(next[0], utc("2026-10-25T00:30:00Z"));
        assert_eq!(next[1], utc("2026-10-26T01:30:00Z"));
        // Every 20 minutes through the repeated hour: increasing, no loop.
        let t = Timetable::new("*/20 * * * *", "Europe/Berlin").unwrap();
        let next = t.next(utc("2026-10-24T23:50:00Z"), 8);
        assert!(next.windows(2).all(|w| w[0] < w[1]), "{next:?}");
        let w = due(&t, utc("2026-10-24T23:50:00Z"), utc("2026-10-25T03:00:00Z")).unwrap();
        assert_eq!(w.latest, utc("2026-10-25T03:00:00Z"));
    }
}
