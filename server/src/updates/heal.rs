//! Auto-heal (Komodo #864): "restart when unhealthy for N minutes, at most
//! M times an hour, then escalate", per service
//! (`service_update_settings.heal_after_minutes` = N, `heal_max_per_hour` =
//! M; N unset = off).
//!
//! **Unhealthy** means the status board calls the service `down` (a root
//! cause: its own critical check fails), or its containers are stopped,
//! partly stopped, restarting or report HEALTHCHECK `unhealthy` (the
//! inventory's run state `stopped`, `degraded` or `restarting`). A service
//! whose containers are missing, paused, or on an unreachable engine is not
//! restarted: a restart cannot help there (decision where the issue was
//! silent).
//!
//! **Continuously for N minutes.** Every process runs the task
//! `updates.autoheal` ([`task`], every 5 s) and remembers, per service, since
//! when it has seen it unhealthy without a break (for a service the board
//! has down, the board's own `since` when that is earlier). A process that
//! starts afresh starts counting afresh, which can only delay a restart.
//! After an attempt the N minutes count again from the attempt, so a
//! restart that did not help is followed by the next one N minutes later.
//! While a `service-down` run for the service is queued, running or waiting
//! (whoever asked for it) nothing else happens: that run is at work.
//!
//! **The decision is taken once across processes**, in one transaction per
//! due service, under the row lock of its settings row (`FOR UPDATE SKIP
//! LOCKED`: a process finding it locked leaves it to the holder), after
//! re-reading the policy, the attempts and the active runs:
//! * under maintenance ([`crate::incidents::hold::covering`]) nothing is
//!   done at all;
//! * fewer than M attempts in the last hour: the built-in `service-down`
//!   runbook is queued for the service as the system actor
//!   `system:autoheal` (the run engine links it to the service's open
//!   incident, whose timeline then shows it), and in the same transaction
//!   an `autoheal_attempts` row (with the run and that incident), an
//!   `autoheal.restart` timeline event on the incident and an audit entry
//!   `autoheal.restart` are written;
//! * M attempts in the last hour: auto-heal **gives up** once per unhealthy
//!   streak: the service's open incident gets the timeline event
//!   `autoheal.gave_up` ("auto-heal gave up after M attempts …") and, when
//!   it is unacknowledged, its next escalation level is paged now (the
//!   escalation ticker fires it, as for any level that is due); without an
//!   open incident one is opened for the service (source `health`, key
//!   `health:<service id>` so health detection joins it rather than opening
//!   a second), which pages its escalation policy's first level. An audit
//!   entry `autoheal.escalate` records it.
//!
//! Every automatic action is on the incident's timeline and in the audit
//! log as done by `system:autoheal` (kind `system`) on behalf of the
//! service's policy (the entry's parameters name it).
//!
//! **Testing.** `OPSDECK_AUTOHEAL_UNIT_SECS` (testing only) shortens the
//! "minute" of N; the hour of the limit is always an hour.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use opsdeck_wire::{Outcome, RunState, ServiceHealth, Severity, Tier};
use serde_json::json;
use sqlx::PgConnection;

use super::policy_store::{self as store, HealPolicy};
use crate::audit::{self, Actor, NewEntry};
use crate::incidents::model::{Opening, PolicyChoice};
use crate::inventory::{ContainerIndex, Snapshot};
use crate::jobs::{Pace, Scope, Task};
use crate::runbooks::engine::{self, NewRun, RunError};
use crate::state::AppState;
use crate::timeline;

/// Who auto-heal acts as (audit actor kind `system`).
pub const ACTOR: &str = "system:autoheal";
/// The runbook auto-heal runs.
pub const RUNBOOK: &str = "service-down";
/// How often the task looks.
pub const PERIOD: Duration = Duration::from_secs(5);

/// Since when this process has seen each service unhealthy without a break.
type Seen = Arc<Mutex<HashMap<i64, DateTime<Utc>>>>;

/// The registry task `updates.autoheal` (every process, every 5 s; the
/// decisions are exactly-once through row locks, see the module doc).
pub fn task(state: AppState) -> Task {
    let seen: Seen = Arc::default();
    Task::every(
        "updates.autoheal",
        PERIOD,
        Scope::EveryProcess,
        (state, seen),
        |(state, seen)| async move {
            tick(&state, &seen, Utc::now()).await?;
            Ok(Pace::Normal)
        },
    )
}

/// What the policy says for one due service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not unhealthy long enough (since the streak began or the last attempt).
    Wait,
    /// Restart: this is attempt `n` of the hour.
    Heal { attempt: i64 },
    /// The limit is reached: escalate (once per streak).
    GiveUp,
    /// The limit is reached and auto-heal already gave up on this streak.
    GaveUp,
}

/// The policy's rule, without the database (see the module doc).
/// `unhealthy_since`: start of the unhealthy streak; `last_attempt`: the
/// latest attempt ever; `recent`: attempts in the last hour; `gave_up`:
/// auto-heal already escalated at or after [`streak_start`].
pub fn decide(
    p: &HealPolicy,
    unit: Duration,
    unhealthy_since: DateTime<Utc>,
    now: DateTime<Utc>,
    last_attempt: Option<DateTime<Utc>>,
    recent: i64,
    gave_up: bool,
) -> Decision {
    let start = streak_start(unhealthy_since, last_attempt);
    let after = TimeDelta::from_std(unit * p.after_minutes.max(1) as u32).unwrap_or(TimeDelta::MAX);
    if now - start < after {
        return Decision::Wait;
    }
    if recent >= i64::from(p.max_per_hour) {
        return if gave_up {
            Decision::GaveUp
        } else {
            Decision::GiveUp
        };
    }
    Decision::Heal {
        attempt: recent + 1,
    }
}

/// Where the N minutes count from: the streak's start, or the last attempt
/// when that came later.
pub fn streak_start(
    unhealthy_since: DateTime<Utc>,
    last_attempt: Option<DateTime<Utc>>,
) -> DateTime<Utc> {
    match last_attempt {
        Some(a) if a > unhealthy_since => a,
        _ => unhealthy_since,
    }
}

/// Why a service counts as unhealthy, or `None` when it does not.
pub fn unhealthy(
    board: Option<(ServiceHealth, Option<DateTime<Utc>>)>,
    run_state: RunState,
) -> Option<(String, Option<DateTime<Utc>>)> {
    if let Some((ServiceHealth::Down, since)) = board {
        return Some(("the status board has it down".into(), since));
    }
    match run_state {
        RunState::Stopped => Some(("its containers are stopped".into(), None)),
        RunState::Degraded => Some((
            "its containers are partly stopped or unhealthy".into(),
            None,
        )),
        RunState::Restarting => Some(("its containers keep restarting".into(), None)),
        _ => None,
    }
}

/// A service the tick found unhealthy.
struct Sick {
    id: i64,
    name: String,
    tier: Tier,
    why: String,
    since: DateTime<Utc>,
}

/// One look: observe, remember the streaks, decide for the due services.
pub async fn tick(state: &AppState, seen: &Seen, now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut conn = state.pool.acquire().await?;
    let policies = store::heal_policies(&mut conn).await?;
    if policies.is_empty() {
        lock(seen).clear();
        return Ok(());
    }
    let snapshot = Snapshot::load(&mut conn).await?;
    drop(conn);
    let rows = snapshot.by_id();
    let idx = ContainerIndex::build(&state.engines);
    let (_, statuses) = state.health().statuses();
    let board: HashMap<i64, (ServiceHealth, Option<DateTime<Utc>>)> = statuses
        .iter()
        .map(|s| (s.service_id, (s.health, s.since)))
        .collect();
    let mut sick = Vec::new();
    {
        let mut seen = lock(seen);
        let mut keep = HashMap::new();
        for p in &policies {
            let Some(row) = rows.get(&p.service_id) else {
                continue;
            };
            let containers = idx.containers_of(&row.fields);
            let run_state = idx.run_state(&row.fields, &containers);
            let Some((why, board_since)) = unhealthy(board.get(&p.service_id).copied(), run_state)
            else {
                continue;
            };
            let mut since = seen.get(&p.service_id).copied().unwrap_or(now);
            if let Some(b) = board_since.filter(|b| *b < since) {
                since = b;
            }
            keep.insert(p.service_id, since);
            sick.push((
                *p,
                Sick {
                    id: p.service_id,
                    name: row.name.clone(),
                    tier: row.fields.tier,
                    why,
                    since,
                },
            ));
        }
        *seen = keep;
    }
    let unit = state.settings.autoheal_unit;
    for (p, s) in sick {
        // Cheap pre-check before taking any lock: not due yet.
        if decide(&p, unit, s.since, now, None, 0, false) == Decision::Wait {
            continue;
        }
        if let Err(e) = act(state, &s, unit, now).await {
            tracing::warn!(service = %s.name, error = %format!("{e:#}"), "auto-heal failed");
        }
    }
    Ok(())
}

fn lock(seen: &Seen) -> std::sync::MutexGuard<'_, HashMap<i64, DateTime<Utc>>> {
    seen.lock().unwrap_or_else(|e| e.into_inner())
}

/// Decides for one due service under its row lock and acts in the same
/// transaction.
async fn act(state: &AppState, s: &Sick, unit: Duration, now: DateTime<Utc>) -> anyhow::Result<()> {
    let mut tx = state.pool.begin().await?;
    let Some(p) = store::lock_heal_policy(&mut tx, s.id).await? else {
        return Ok(());
    };
    if let Some(period) = crate::incidents::hold::covering(&mut tx, &[s.id]).await? {
        tracing::debug!(service = %s.name, period, "auto-heal holds off: maintenance");
        return Ok(());
    }
    let Some(runbook_id) = store::runbook_id(&mut tx, RUNBOOK).await? else {
        tracing::warn!(service = %s.name, "auto-heal: there is no {RUNBOOK} runbook");
        return Ok(());
    };
    if store::active_run(&mut tx, runbook_id, &s.name)
        .await?
        .is_some()
    {
        return Ok(());
    }
    let (last, recent) = store::attempts(&mut tx, s.id, now - TimeDelta::hours(1)).await?;
    let incident = crate::incidents::store::open_on_service(&mut tx, s.id).await?;
    let gave_up = match incident {
        Some(i) => store::gave_up_since(&mut tx, i, s.id, streak_start(s.since, last)).await?,
        None => false,
    };
    let mut wake_escalation = false;
    let mut queued = None;
    match decide(&p, unit, s.since, now, last, recent, gave_up) {
        Decision::Wait | Decision::GaveUp => return Ok(()),
        Decision::Heal { attempt } => {
            match heal(state, &mut tx, s, &p, runbook_id, attempt, now).await? {
                Some(run) => queued = Some(run),
                None => return Ok(()),
            }
        }
        Decision::GiveUp => {
            wake_escalation = give_up(&mut tx, s, &p, incident, recent, now).await?;
        }
    }
    tx.commit().await?;
    if let Some(run) = queued {
        state.runs().changed(run).await;
    }
    if wake_escalation {
        crate::incidents::escalation::wake();
    }
    Ok(())
}

/// Queues the service-down run with its attempt row, timeline event and
/// audit entry. `None` when the run engine refused (logged; the next tick
/// tries again).
async fn heal(
    state: &AppState,
    tx: &mut PgConnection,
    s: &Sick,
    p: &HealPolicy,
    runbook_id: i64,
    attempt: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let actor = Actor::system(ACTOR);
    let minutes = p.after_minutes;
    let reason = format!(
        "auto-heal: {} unhealthy for {minutes} min ({}); attempt {attempt} of {} this hour",
        s.name, s.why, p.max_per_hour
    );
    let queued = engine::enqueue(
        state,
        &mut *tx,
        NewRun {
            runbook_id,
            params: [("service".to_owned(), json!(s.name))].into(),
            reason: reason.clone(),
            incident: None,
            requested_by: actor.clone(),
            requested_by_user: None,
            schedule_id: None,
            parent: None,
        },
    )
    .await;
    let run = match queued {
        Ok(run) => run,
        Err(RunError::Database(e)) => return Err(e.into()),
        Err(e) => {
            tracing::warn!(service = %s.name, error = %e, "auto-heal: the run was refused");
            return Ok(None);
        }
    };
    // The run engine linked the run to the open incident on the service.
    let incident = crate::incidents::store::open_on_service(&mut *tx, s.id).await?;
    let attempt_id = store::insert_attempt(&mut *tx, s.id, run, incident, now).await?;
    let data = json!({
        "service_id": s.id, "service": s.name, "run_id": run, "attempt": attempt,
        "max_per_hour": p.max_per_hour, "heal_after_minutes": minutes,
    });
    if let Some(i) = incident {
        timeline::append(
            &mut *tx,
            "incident",
            i,
            "autoheal.restart",
            Some(&actor),
            None,
            &format!(
                "Auto-heal: {} has been unhealthy for {minutes} min ({}); restarting it \
                 through the {RUNBOOK} runbook (run #{run}, attempt {attempt} of {} this hour)",
                s.name, s.why, p.max_per_hour
            ),
            data.clone(),
        )
        .await?;
        crate::incidents::touch(&mut *tx, i).await?;
    }
    audit::record(
        &mut *tx,
        NewEntry {
            actor,
            action: "autoheal.restart".into(),
            target: Some(format!("run:{run}")),
            params: json!({
                "policy": "autoheal", "service": s.name, "service_id": s.id,
                "runbook": RUNBOOK, "run_id": run, "attempt": attempt,
                "attempt_id": attempt_id, "incident_id": incident,
                "heal_after_minutes": minutes, "heal_max_per_hour": p.max_per_hour,
                "reason": reason,
            }),
            source: None,
            outcome: Outcome::Success,
            detail: None,
        },
    )
    .await?;
    tracing::info!(service = %s.name, run, attempt, "auto-heal queued a restart");
    Ok(Some(run))
}

/// Escalates: the event on the open incident and its next level now, or a
/// new incident. Returns whether the escalation ticker should be woken.
async fn give_up(
    tx: &mut PgConnection,
    s: &Sick,
    p: &HealPolicy,
    incident: Option<i64>,
    recent: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<bool> {
    let actor = Actor::system(ACTOR);
    let message = format!(
        "auto-heal gave up after {recent} attempts: {} is still unhealthy ({}) and the \
         policy allows {} restarts an hour; escalating",
        s.name, s.why, p.max_per_hour
    );
    let data = json!({
        "service_id": s.id, "service": s.name, "attempts": recent,
        "max_per_hour": p.max_per_hour, "heal_after_minutes": p.after_minutes,
    });
    let (id, paged) = match incident {
        Some(id) => {
            timeline::append(
                &mut *tx,
                "incident",
                id,
                "autoheal.gave_up",
                Some(&actor),
                None,
                &message,
                data.clone(),
            )
            .await?;
            let paged = crate::incidents::escalation::escalate_now(&mut *tx, id, now).await?;
            crate::incidents::touch(&mut *tx, id).await?;
            (id, paged)
        }
        None => {
            let (id, created) = crate::incidents::open(
                &mut *tx,
                Opening {
                    title: format!("{} is unhealthy: auto-heal gave up", s.name)
                        .chars()
                        .take(200)
                        .collect(),
                    severity: Severity::of_tier(s.tier),
                    source: "health",
                    dedup_key: Some(format!("health:{}", s.id)),
                    summary: message.clone(),
                    services: vec![(s.id, "root")],
                    commander_id: None,
                    policy: PolicyChoice::Default,
                    actor: actor.clone(),
                    first_event: ("autoheal.gave_up".into(), message.clone(), data.clone()),
                    now,
                },
            )
            .await?;
            if !created {
                // Opened meanwhile under the same key: the event goes there.
                timeline::append(
                    &mut *tx,
                    "incident",
                    id,
                    "autoheal.gave_up",
                    Some(&actor),
                    None,
                    &message,
                    data.clone(),
                )
                .await?;
                crate::incidents::touch(&mut *tx, id).await?;
            }
            (id, created)
        }
    };
    audit::record(
        &mut *tx,
        NewEntry {
            actor,
            action: "autoheal.escalate".into(),
            target: Some(format!("incident:{id}")),
            params: json!({
                "policy": "autoheal", "service": s.name, "service_id": s.id,
                "attempts": recent, "heal_max_per_hour": p.max_per_hour,
                "heal_after_minutes": p.after_minutes, "incident_id": id,
                "paged_now": paged,
            }),
            source: None,
            outcome: Outcome::Success,
            detail: None,
        },
    )
    .await?;
    tracing::warn!(service = %s.name, incident = id, attempts = recent, "auto-heal gave up");
    Ok(paged)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn t(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + s, 0).unwrap()
    }

    fn policy(after: i32, max: i32) -> HealPolicy {
        HealPolicy {
            service_id: 1,
            after_minutes: after,
            max_per_hour: max,
        }
    }

    #[test]
    fn waits_n_minutes_of_unbroken_unhealth() {
        let p = policy(3, 2);
        assert_eq!(
            decide(&p, MIN, t(0), t(179), None, 0, false),
            Decision::Wait
        );
        assert_eq!(
            decide(&p, MIN, t(0), t(180), None, 0, false),
            Decision::Heal { attempt: 1 }
        );
        // The unit is a minute unless the testing override shortens it.
        let unit = Duration::from_secs(2);
        assert_eq!(decide(&p, unit, t(0), t(5), None, 0, false), Decision::Wait);
        assert_eq!(
            decide(&p, unit, t(0), t(6), None, 0, false),
            Decision::Heal { attempt: 1 }
        );
    }

    #[test]
    fn after_an_attempt_the_minutes_count_again() {
        let p = policy(3, 5);
        // Unhealthy since 0, attempt at 200: the next is due at 380.
        assert_eq!(
            decide(&p, MIN, t(0), t(379), Some(t(200)), 1, false),
            Decision::Wait
        );
        assert_eq!(
            decide(&p, MIN, t(0), t(380), Some(t(200)), 1, false),
            Decision::Heal { attempt: 2 }
        );
        // An attempt from before the streak does not delay it.
        assert_eq!(streak_start(t(100), Some(t(50))), t(100));
    }

    #[test]
    fn gives_up_once_at_the_limit() {
        let p = policy(1, 2);
        assert_eq!(
            decide(&p, MIN, t(0), t(600), Some(t(300)), 2, false),
            Decision::GiveUp
        );
        assert_eq!(
            decide(&p, MIN, t(0), t(600), Some(t(300)), 2, true),
            Decision::GaveUp
        );
        // Attempts older than an hour are not counted by the caller.
        assert_eq!(
            decide(&p, MIN, t(0), t(600), Some(t(300)), 1, false),
            Decision::Heal { attempt: 2 }
        );
    }

    #[test]
    fn what_counts_as_unhealthy() {
        assert!(unhealthy(None, RunState::Stopped).is_some());
        assert!(unhealthy(None, RunState::Degraded).is_some());
        assert!(unhealthy(None, RunState::Restarting).is_some());
        for fine in [
            RunState::Running,
            RunState::Paused,
            RunState::Missing,
            RunState::Unknown,
            RunState::Unmapped,
        ] {
            assert!(unhealthy(None, fine).is_none(), "{fine:?}");
        }
        let since = Some(t(0));
        assert_eq!(
            unhealthy(Some((ServiceHealth::Down, since)), RunState::Running).map(|u| u.1),
            Some(since)
        );
        assert!(unhealthy(Some((ServiceHealth::Degraded, since)), RunState::Running).is_none());
    }
}
