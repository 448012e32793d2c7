//! Marking an incident changed when one of its notifications is delivered
//! or fails, without `notify` importing `incidents` (which sits above it
//! and queues its escalation messages here): the incidents capability
//! registers a [`Touch`] at start-up ([`register`], from
//! `incidents::tasks`), the way maintenance registers its hold with
//! incidents. With nothing registered the timeline event is still written;
//! live views then see it on their next refetch.

use std::sync::OnceLock;

use futures::future::BoxFuture;
use sqlx::PgConnection;

/// What notify needs from incidents.
pub trait Touch: Send + Sync + 'static {
    /// Marks the incident changed (live views follow), in the caller's
    /// transaction.
    fn touch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        incident_id: i64,
    ) -> BoxFuture<'a, sqlx::Result<()>>;
}

static TOUCH: OnceLock<&'static dyn Touch> = OnceLock::new();

/// Registers the incidents side (once per process; later calls are
/// ignored).
pub fn register(touch: &'static dyn Touch) {
    let _ = TOUCH.set(touch);
}

/// See [`Touch::touch`]; nothing when none is registered.
pub async fn touch(conn: &mut PgConnection, incident_id: i64) -> sqlx::Result<()> {
    match TOUCH.get() {
        Some(t) => t.touch(conn, incident_id).await,
        None => Ok(()),
    }
}
