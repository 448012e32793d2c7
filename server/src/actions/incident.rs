//! Showing a finished action on the open incident of its service, without
//! `actions` importing `incidents` (which sits above it and calls it): the
//! incidents capability registers an [`Incidents`] at start-up
//! ([`register`], from `incidents::tasks`), the way maintenance registers
//! its hold with incidents. Which statuses count as open and how an
//! incident is marked changed stay incidents' own knowledge. With nothing
//! registered an action links to no incident.

use std::sync::OnceLock;

use futures::future::BoxFuture;
use sqlx::PgConnection;

/// What actions need from incidents.
pub trait Incidents: Send + Sync + 'static {
    /// The newest open incident on service `service_id`.
    fn open_on_service<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        service_id: i64,
    ) -> BoxFuture<'a, sqlx::Result<Option<i64>>>;

    /// Marks the incident changed (live views follow), in the caller's
    /// transaction.
    fn touch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        incident_id: i64,
    ) -> BoxFuture<'a, sqlx::Result<()>>;
}

static INCIDENTS: OnceLock<&'static dyn Incidents> = OnceLock::new();

/// Registers the incidents side (once per process; later calls are
/// ignored).
pub fn register(incidents: &'static dyn Incidents) {
    let _ = INCIDENTS.set(incidents);
}

/// The registered incidents side, if any.
pub(crate) fn registered() -> Option<&'static dyn Incidents> {
    INCIDENTS.get().copied()
}
