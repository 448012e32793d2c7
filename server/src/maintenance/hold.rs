//! Maintenance's answer to incidents' [`crate::incidents::hold::Hold`]:
//! registered at start-up so detection and escalation hold pages for
//! covered services without incidents importing maintenance.

use futures::future::BoxFuture;
use sqlx::PgConnection;

use crate::incidents::hold::Hold;

/// The hold backed by the maintenance periods.
pub struct MaintenanceHold;

/// The registered instance.
pub static MAINTENANCE: MaintenanceHold = MaintenanceHold;

impl Hold for MaintenanceHold {
    fn covering<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        service_ids: &'a [i64],
    ) -> BoxFuture<'a, sqlx::Result<Option<i64>>> {
        Box::pin(super::covering(conn, service_ids))
    }

    fn holding_incident<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        incident_id: i64,
    ) -> BoxFuture<'a, sqlx::Result<Option<i64>>> {
        Box::pin(super::holding_incident(conn, incident_id))
    }

    fn suppress<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        period_id: i64,
        source: &'a str,
        key: &'a str,
        message: &'a str,
    ) -> BoxFuture<'a, sqlx::Result<bool>> {
        Box::pin(super::suppress(conn, period_id, source, key, message))
    }
}
