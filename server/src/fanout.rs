//! The process's one `LISTEN` connection, and the changes one replica makes
//! that every replica's memory must follow.
//!
//! [`task`] (the `fanout` service of the jobs registry) follows four
//! channels on one connection, with one reconnect loop, and hands each
//! notification to its owner:
//!
//! | channel | published by | applied by |
//! |---|---|---|
//! | `opsdeck_changes` | [`publish`] after a commit | [`apply`]: engines, board, checks |
//! | `opsdeck_incidents` | [`crate::incidents::touch`] in the change's transaction | [`crate::incidents::IncidentHub::notified`] (live views) |
//! | `opsdeck_runs` | [`crate::runbooks::engine::RunEngine::changed`] | [`crate::runbooks::engine::RunEngine::notified`] (live views, claimers) |
//! | `opsdeck_maintenance` | [`crate::maintenance`]'s writes | the follower maintenance registers ([`follow`]): `maintenance::refresh_marks` (board marks, banner) |
//!
//! The channel names live here ([`INCIDENTS`], [`RUNS`], [`MAINTENANCE`])
//! and the capabilities publish on them: fanout sits below every
//! capability and imports none. Incident and run notifications go to the
//! hubs the state holds; a capability with its own reaction registers a
//! follower at start-up ([`follow`], as maintenance does), and the engines
//! change is applied through the resync `engines` registers
//! ([`on_engines`]).
//!
//! Several `opsdeck serve` processes may share one database. Most state is
//! read from Postgres per request, but three things live in each process's
//! memory: the Docker engine supervisors (from the `engines` table), the
//! inventory catalog behind the status board (services, dependencies), and
//! the health engine's check definitions (the replica holding the checks
//! lease probes them; the others show their states). A change made through
//! one replica is published here with `NOTIFY opsdeck_changes` and every
//! replica, the sender included, applies it ([`task`]).
//!
//! Payloads: `engines`, `inventory`, `check:<id>`.
//!
//! Decisions:
//! * Published after the change's commit, not inside its transaction: the
//!   sender has applied the change to its own memory already (the API's
//!   answer reflects it), and a NOTIFY lost to a crash between commit and
//!   publish is repaired by the followers' periodic re-read of the checks
//!   table and by any later change.
//! * Applying is idempotent (re-read from the table), so the sender's own
//!   notification and duplicates do no harm.
//! * A lost LISTEN connection is re-opened after 2 s; on reconnect every
//!   kind is applied once, since notifications sent in between are lost
//!   (memory re-read, maintenance marks reloaded, claimers woken; live views
//!   of incidents and runs refetch on their own next event).

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;

use crate::jobs::{Scope, Task};
use crate::state::AppState;

const CHANNEL: &str = "opsdeck_changes";
/// Incident changes (payload: the incident id), published by incidents in
/// the change's transaction.
pub const INCIDENTS: &str = "opsdeck_incidents";
/// Runs queued or changed (payload: the run id), published by the run
/// engine.
pub const RUNS: &str = "opsdeck_runs";
/// Maintenance changes (payload: the period id), published by maintenance
/// in the change's transaction.
pub const MAINTENANCE: &str = "opsdeck_maintenance";

/// A capability's reaction to its own channel: called with the payload of
/// each notification, and with `None` after every (re)connect to catch up
/// on what was missed while not listening.
pub type Follower = for<'a> fn(&'a AppState, Option<&'a str>) -> BoxFuture<'a, ()>;

static FOLLOWERS: Mutex<Vec<(&'static str, Follower)>> = Mutex::new(Vec::new());

/// Follows `channel` with `follower`. Called at start-up, before the
/// registry starts [`task`]; a channel registered twice keeps its first
/// follower (servers started in one process share the registration).
pub fn follow(channel: &'static str, follower: Follower) {
    let mut all = FOLLOWERS.lock().unwrap_or_else(|e| e.into_inner());
    if !all.iter().any(|(c, _)| *c == channel) {
        all.push((channel, follower));
    }
}

fn followers() -> Vec<(&'static str, Follower)> {
    FOLLOWERS.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

/// Every channel [`task`] follows: its own, the hubs', the followers'.
fn channels() -> Vec<&'static str> {
    let mut all = vec![CHANNEL, INCIDENTS, RUNS];
    all.extend(followers().into_iter().map(|(c, _)| c));
    all
}

/// What changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// The `engines` table.
    Engines,
    /// Services or dependencies.
    Inventory,
    /// One check (created, changed or deleted).
    Check(i64),
}

impl Change {
    fn payload(self) -> String {
        match self {
            Change::Engines => "engines".into(),
            Change::Inventory => "inventory".into(),
            Change::Check(id) => format!("check:{id}"),
        }
    }

    fn parse(s: &str) -> Option<Change> {
        match s {
            "engines" => Some(Change::Engines),
            "inventory" => Some(Change::Inventory),
            _ => s
                .strip_prefix("check:")
                .and_then(|id| id.parse().ok())
                .map(Change::Check),
        }
    }
}

/// Tells every replica (this one included) about a committed change. A
/// failure is logged, not returned: the change itself is committed.
pub async fn publish(state: &AppState, change: Change) {
    notify(&state.pool, change).await
}

/// [`publish`] from a process without an [`AppState`] (the CLI): every
/// serving replica follows the change.
pub async fn notify(pool: &sqlx::PgPool, change: Change) {
    if let Err(e) = sqlx::query!("SELECT pg_notify($1, $2)", CHANNEL, change.payload())
        .execute(pool)
        .await
    {
        tracing::warn!(error = %e, ?change, "cannot tell the other replicas about a change");
    }
}

/// The inventory changed: this process's board follows at once, the other
/// replicas when the notification arrives.
pub async fn inventory_changed(state: &AppState) {
    state.engines.bump();
    publish(state, Change::Inventory).await;
}

/// How this process follows a change of the `engines` table: re-reads it
/// into the hub. Registered by `engines` when the server starts
/// (`engines::start`), so fanout, the lower module, does not import
/// engines (which publishes through it).
pub type EnginesSync = for<'a> fn(&'a AppState) -> BoxFuture<'a, sqlx::Result<()>>;

static ENGINES_SYNC: OnceLock<EnginesSync> = OnceLock::new();

/// Registers how [`Change::Engines`] is applied (once per process; later
/// calls are ignored). Unregistered, an engines change is only logged.
pub fn on_engines(sync: EnginesSync) {
    let _ = ENGINES_SYNC.set(sync);
}

async fn apply(state: &AppState, change: Change) {
    let result = match change {
        Change::Engines => match ENGINES_SYNC.get() {
            Some(sync) => sync(state).await.map_err(|e| e.to_string()),
            None => {
                tracing::debug!("an engines change arrived before engines registered");
                Ok(())
            }
        },
        Change::Inventory => {
            state.engines.bump();
            Ok(())
        }
        Change::Check(id) => state
            .health()
            .reload_check(id)
            .await
            .map_err(|e| format!("{e:#}")),
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, ?change, "applying another replica's change failed");
    }
}

/// Hands one notification to its owner.
async fn dispatch(state: &AppState, channel: &str, payload: &str) {
    match channel {
        CHANNEL => {
            if let Some(change) = Change::parse(payload) {
                apply(state, change).await;
            }
        }
        INCIDENTS => state.incidents().notified(payload),
        RUNS => state.runs().notified(payload),
        other => match followers().into_iter().find(|(c, _)| *c == other) {
            Some((_, follower)) => follower(state, Some(payload)).await,
            None => tracing::debug!(channel = other, "notification on an unknown channel"),
        },
    }
}

/// Catches up on what was published while not listening (after the first
/// connection, only what memory holds; the followers every time).
async fn resync(state: &AppState, first: bool) {
    if !first {
        apply(state, Change::Engines).await;
        apply(state, Change::Inventory).await;
        state.health().reload_checks().await;
        state.runs().notified("");
    }
    for (_, follower) in followers() {
        follower(state, None).await;
    }
}

/// The `fanout` service (every process): follows every channel of the
/// process on one `LISTEN` connection until shutdown, re-connecting after
/// 2 s when it is lost.
pub fn task(state: AppState) -> Task {
    Task::service("fanout", Scope::EveryProcess, state, listen)
}

async fn listen(state: AppState, stop: CancellationToken) {
    let closed = stop.cancelled_owned();
    tokio::pin!(closed);
    let mut first = true;
    loop {
        let listening = match sqlx::postgres::PgListener::connect_with(&state.pool).await {
            Ok(mut l) => l.listen_all(channels()).await.map(|()| l),
            Err(e) => Err(e),
        };
        let mut listener = match listening {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "cannot LISTEN for other processes' changes; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = &mut closed => return,
                }
            }
        };
        resync(&state, first).await;
        first = false;
        loop {
            tokio::select! {
                _ = &mut closed => return,
                n = listener.recv() => match n {
                    Ok(n) => dispatch(&state, n.channel(), n.payload()).await,
                    Err(_) => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_round_trip() {
        for c in [Change::Engines, Change::Inventory, Change::Check(42)] {
            assert_eq!(Change::parse(&c.payload()), Some(c));
        }
        assert_eq!(Change::parse("check:x"), None);
        assert_eq!(Change::parse("other"), None);
    }
}
