//! The whole inventory kept in memory for the pages that read all of it
//! (the services page and list, one service, the engines overview), with
//! each service's containers and run state:
//! - the services are reloaded only when the database's
//!   `inventory_version` (moved by triggers on every write to services,
//!   dependencies and engines, from any process) differs from the one they
//!   were loaded with: a read costs one one-row query;
//! - the containers and run states are computed again only when that
//!   version or the engine hub's ([`EngineHub::version`], moved by every
//!   cache or engine state change) moved.
//!
//! A burst of requests after a change computes once (the others wait for
//! it). Writers keep reading in their own transaction ([`Snapshot::load`]):
//! the cache is for pages, never for deciding a change.

use std::sync::Arc;

use opsdeck_wire::{ContainerInfo, RunState};
use sqlx::PgPool;

use super::{ContainerIndex, Snapshot};
use crate::docker::EngineHub;
use crate::state::AppState;

/// The inventory with every service's containers and run state.
pub struct Overviews {
    pub snapshot: Arc<Snapshot>,
    /// Each service's run state and containers, in `snapshot.services`'
    /// order.
    pub rows: Vec<(RunState, Vec<ContainerInfo>)>,
    /// Positions in `snapshot.services` ordered by tier (critical first),
    /// then name: the services page's order, sorted once per change.
    pub order: Vec<usize>,
}

impl Overviews {
    /// Each service's containers and run state from `idx`.
    pub fn compute(snapshot: Arc<Snapshot>, idx: &ContainerIndex) -> Overviews {
        let rows = snapshot
            .services
            .iter()
            .map(|s| {
                let containers = idx.containers_of(&s.fields);
                (idx.run_state(&s.fields, &containers), containers)
            })
            .collect();
        let mut order: Vec<usize> = (0..snapshot.services.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&snapshot.services[a], &snapshot.services[b]);
            (a.fields.tier, &a.name).cmp(&(b.fields.tier, &b.name))
        });
        Overviews {
            snapshot,
            rows,
            order,
        }
    }
}

#[derive(Default)]
struct Held {
    /// (inventory version, snapshot)
    snapshot: Option<(i64, Arc<Snapshot>)>,
    /// (inventory version, hub version, overviews)
    overviews: Option<(i64, u64, Arc<Overviews>)>,
}

/// The cached inventory and the versions it was read at.
#[derive(Default)]
pub struct SnapshotCache(tokio::sync::Mutex<Held>);

impl AppState {
    /// The inventory cache (a part, see [`crate::state`]).
    pub fn inventory_cache(&self) -> &Arc<SnapshotCache> {
        self.part()
    }
}

impl SnapshotCache {
    /// The inventory as committed now.
    pub async fn get(&self, pool: &PgPool) -> sqlx::Result<Arc<Snapshot>> {
        let now = version(pool).await?;
        let mut held = self.0.lock().await;
        Ok(Self::snapshot(&mut held, pool, now).await?.1)
    }

    /// The inventory as committed now, with the containers and run states
    /// the hub's caches give now.
    pub async fn overviews(&self, pool: &PgPool, hub: &EngineHub) -> sqlx::Result<Arc<Overviews>> {
        let now = version(pool).await?;
        let mut held = self.0.lock().await;
        // Read before the index is built: a change meanwhile makes the next
        // request compute again.
        let hub_now = hub.version();
        if let Some((v, h, o)) = held.overviews.as_ref() {
            if *v >= now && *h == hub_now {
                return Ok(o.clone());
            }
        }
        let (v, snapshot) = Self::snapshot(&mut held, pool, now).await?;
        let o = Arc::new(Overviews::compute(snapshot, &ContainerIndex::build(hub)));
        held.overviews = Some((v, hub_now, o.clone()));
        Ok(o)
    }

    /// The held snapshot if it is at least version `now`, else a fresh one.
    async fn snapshot(
        held: &mut Held,
        pool: &PgPool,
        now: i64,
    ) -> sqlx::Result<(i64, Arc<Snapshot>)> {
        if let Some((v, s)) = held.snapshot.as_ref() {
            if *v >= now {
                return Ok((*v, s.clone()));
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
        held.snapshot = Some((v, snapshot.clone()));
        Ok((v, snapshot))
    }
}

async fn version(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!("SELECT v FROM inventory_version")
        .fetch_one(pool)
        .await
}
