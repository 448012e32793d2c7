//! Incidents: records with a severity, a status life cycle, SLA timers and an
//! append-only timeline; opened by people, by health checks (root causes,
//! [`detect`]), by Alertmanager and by failed backups or escalated runbooks;
//! escalated by [`escalation`]; reported on by [`report`].
//!
//! **Life cycle.** `triggered → acknowledged → mitigated → resolved →
//! postmortem_done`. Acknowledging stops escalation (queued, unsent messages
//! are cancelled); mitigating or resolving an unacknowledged incident
//! acknowledges it too (someone is clearly on it); `reopen` takes a resolved
//! incident back to `acknowledged` (no new paging: whoever reopens it is on
//! it). `diagnose` marks the root cause known (the handbook's "diagnose <
//! 15 min" milestone) without changing the status.
//!
//! **One open incident per cause.** Automatic sources pass a `dedup_key`
//! (`health:<service id>`, `alertmanager:<fingerprint>`, `runbook:<name>`);
//! a partial unique index allows one open incident per key, so two processes
//! (or a flapping check) never open two.
//!
//! **Every change** appends to the incident's timeline (`timeline_events`,
//! append-only) and writes an audit entry in the same transaction, then
//! [`touch`]es the incident: Postgres delivers the NOTIFY on commit to every
//! process, whose [`IncidentHub`] feeds the live views.

//!
//! **Layers.** [`api`] extracts, authorises, calls and maps (the only part
//! that speaks HTTP); [`model`], [`edit`], [`settings`], [`postmortem`] and
//! [`report`] are the domain, failing with [`IncidentError`]; [`store`]
//! holds the SQL. Incidents never call up into runbooks, maintenance or
//! notify's engines: those call [`open`], [`link_run`], [`touch`] and
//! [`acknowledge_via_link`] here. Where a lower capability needs to reach
//! an incident (`actions` linking an action, `notify` marking a delivery),
//! incidents registers a hook with it ([`hooks`], from [`tasks`]).

pub mod api;
pub mod detect;
pub mod edit;
pub mod error;
pub mod escalation;
pub mod hold;
pub mod hooks;
pub mod model;
pub mod postmortem;
pub mod report;
pub mod settings;
pub mod store;

pub use error::IncidentError;
pub use model::{acknowledge_via_link, link_run, open, open_for_run, Opening};

use sqlx::PgConnection;
use tokio::sync::broadcast;
use utoipa_axum::router::OpenApiRouter;

use crate::state::AppState;

/// Postgres NOTIFY channel of incident changes (payload: the incident id).
pub const CHANNEL: &str = crate::fanout::INCIDENTS;

/// Live incident changes in this process (own writes and other processes'
/// notifications).
pub struct IncidentHub {
    changes: broadcast::Sender<i64>,
}

impl Default for IncidentHub {
    fn default() -> Self {
        IncidentHub {
            changes: broadcast::channel(1024).0,
        }
    }
}

impl IncidentHub {
    /// Incident ids that changed; live views refetch them.
    pub fn subscribe(&self) -> broadcast::Receiver<i64> {
        self.changes.subscribe()
    }

    /// A notification on [`CHANNEL`] (delivered by [`crate::fanout`]):
    /// the payload is the id of the incident that changed.
    pub fn notified(&self, payload: &str) {
        if let Ok(id) = payload.parse::<i64>() {
            let _ = self.changes.send(id);
        }
    }
}

/// Marks an incident changed: bumps `updated_at` and queues a NOTIFY that
/// Postgres delivers to every process (this one included) when the
/// surrounding transaction commits. Call it in the transaction of the change.
pub async fn touch(conn: &mut PgConnection, incident_id: i64) -> sqlx::Result<()> {
    store::touch(conn, incident_id).await
}

/// Registers incidents' hooks with the lower capabilities ([`hooks`]) and
/// returns its registry tasks: detection, and the escalation ticker when
/// `escalations` is on.
pub fn tasks(state: AppState, escalations: bool) -> Vec<crate::jobs::Task> {
    hooks::register();
    let mut tasks = Vec::new();
    if escalations {
        tasks.push(escalation::task(state.clone()));
    }
    tasks.push(detect::task(state));
    tasks
}

pub fn router() -> OpenApiRouter<AppState> {
    api::router()
}

impl crate::state::AppState {
    /// Live incident changes (a part, see [`crate::state`]).
    pub fn incidents(&self) -> &std::sync::Arc<IncidentHub> {
        self.part()
    }
}
