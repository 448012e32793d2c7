//! The whole inventory kept in memory for the pages that read all of it
//! (the services page, one service, the engines overview): reloaded only
//! when the database's `inventory_version` (moved by triggers on every
//! write to services, dependencies and engines, from any process) differs
//! from the one it was loaded with. A read costs one one-row query; a
//! burst after a change reloads once (the others wait for it).
//!
//! Writers keep reading in their own transaction ([`Snapshot::load`]):
//! the cache is for pages, never for deciding a change.

use std::sync::Arc;

use sqlx::PgPool;

use super::Snapshot;
use crate::state::AppState;

/// The cached inventory and the version it was read at.
#[derive(Default)]
pub struct SnapshotCache(tokio::sync::Mutex<Option<(i64, Arc<Snapshot>)>>);

impl AppState {
    /// The inventory cache (a part, see [`crate::state`]).
    pub fn inventory_cache(&self) -> &Arc<SnapshotCache> {
        self.part()
    }
}

impl SnapshotCache {
    /// The inventory as committed now.
    pub async fn get(&self, pool: &PgPool) -> sqlx::Result<Arc<Snapshot>> {
        let now = sqlx::query_scalar!("SELECT v FROM inventory_version")
            .fetch_one(pool)
            .await?;
        let mut held = self.0.lock().await;
        if let Some((v, s)) = held.as_ref() {
            if *v >= now {
                return Ok(s.clone());
            }
        }
        // The version and the rows from one snapshot, so they agree.
        let mut tx = pool.begin().await?;
        sqlx::query!("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            .execute(&mut *tx)
            .await?;
        let v = sqlx::query_scalar!("SELECT v FROM inventory_version")
            .fetch_one(&mut *tx)
            .await?;
        let snapshot = Arc::new(Snapshot::load(&mut tx).await?);
        tx.commit().await?;
        *held = Some((v, snapshot.clone()));
        Ok(snapshot)
    }
}
