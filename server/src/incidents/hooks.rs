//! What incidents lend the lower capabilities so they never import
//! incidents: `actions` links a finished action to the open incident of
//! its service, `notify` marks an incident changed when one of its
//! messages is delivered. [`register`] is called once at start-up (from
//! [`super::tasks`]).

use futures::future::BoxFuture;
use sqlx::PgConnection;

struct Hooks;

static HOOKS: Hooks = Hooks;

/// Registers incidents with `actions` and `notify`.
pub fn register() {
    crate::actions::incident::register(&HOOKS);
    crate::notify::incident::register(&HOOKS);
}

impl crate::actions::incident::Incidents for Hooks {
    fn open_on_service<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        service_id: i64,
    ) -> BoxFuture<'a, sqlx::Result<Option<i64>>> {
        Box::pin(super::store::open_on_service(conn, service_id))
    }

    fn touch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        incident_id: i64,
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(super::touch(conn, incident_id))
    }
}

impl crate::notify::incident::Touch for Hooks {
    fn touch<'a>(
        &'a self,
        conn: &'a mut PgConnection,
        incident_id: i64,
    ) -> BoxFuture<'a, sqlx::Result<()>> {
        Box::pin(super::touch(conn, incident_id))
    }
}
