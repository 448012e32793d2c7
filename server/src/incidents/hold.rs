//! Holding pages while maintenance covers a service, without incidents
//! importing maintenance (the higher capability): maintenance registers a
//! [`Hold`] at start-up ([`register`]); detection and the escalation ticker
//! ask through the functions here. With no hold registered nothing is held
//! (incidents then behave as if no maintenance were in effect).

use std::sync::OnceLock;

use futures::future::BoxFuture;
use sqlx::PgConnection;

/// What incidents need to know about maintenance.
pub trait Hold: Send + Sync + 'static {
    /// The period in effect covering every one of `service_ids` (`None`
    /// for an empty list, or when one is not covered).
    fn covering<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        service_ids: &'a [i64],
    ) -> BoxFuture<'a, sqlx::Result<Option<i64>>>;

    /// The period holding an incident's pages (every root service of it,
    /// or without roots every service, is covered).
    fn holding_incident<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        incident_id: i64,
    ) -> BoxFuture<'a, sqlx::Result<Option<i64>>>;

    /// Records an alarm a period held back, once per (period, source,
    /// key). Returns whether it was new.
    fn suppress<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        period_id: i64,
        source: &'a str,
        key: &'a str,
        message: &'a str,
    ) -> BoxFuture<'a, sqlx::Result<bool>>;
}

static HOLD: OnceLock<&'static dyn Hold> = OnceLock::new();

/// Registers the hold (once per process; later calls are ignored).
pub fn register(hold: &'static dyn Hold) {
    let _ = HOLD.set(hold);
}

/// See [`Hold::covering`].
pub async fn covering(conn: &mut PgConnection, service_ids: &[i64]) -> sqlx::Result<Option<i64>> {
    match HOLD.get() {
        Some(h) => h.covering(conn, service_ids).await,
        None => Ok(None),
    }
}

/// See [`Hold::holding_incident`].
pub async fn holding_incident(
    conn: &mut PgConnection,
    incident_id: i64,
) -> sqlx::Result<Option<i64>> {
    match HOLD.get() {
        Some(h) => h.holding_incident(conn, incident_id).await,
        None => Ok(None),
    }
}

/// See [`Hold::suppress`].
pub async fn suppress(
    conn: &mut PgConnection,
    period_id: i64,
    source: &str,
    key: &str,
    message: &str,
) -> sqlx::Result<bool> {
    match HOLD.get() {
        Some(h) => h.suppress(conn, period_id, source, key, message).await,
        None => Ok(false),
    }
}
