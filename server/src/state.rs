//! The one cloneable application state every handler receives.
//!
//! It sits on a low floor: it names only the shared infrastructure (the
//! pool, settings, the Docker engine hub, this process's counters and the
//! jobs registry). The handles of capabilities above it (the health engine,
//! the run engine, incident changes, step kinds, the SPA's assets) are
//! *parts*: each capability stores its own handle here when the app is
//! composed ([`crate::serve::compose`], the composition root) and reads it
//! back through an accessor it defines next to the handle's type (e.g.
//! `state.health()` in `checks`). So capabilities import `AppState`, and
//! `AppState` imports no capability: no import cycle runs through it.
//!
//! Invariant: `compose` inserts every part before the state is shared, and
//! checks that it did; an accessor for a part that was never inserted is a
//! programming error and panics with the part's type name.

use std::any::{type_name, Any, TypeId};
use std::collections::HashMap;
use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Settings;
use crate::docker::EngineHub;
use crate::jobs;
use crate::metrics::Metrics;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    /// Docker Engines and their container caches (started by `serve`).
    pub engines: Arc<EngineHub>,
    /// This process's event counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// This process's background tasks (started once by `serve`).
    pub jobs: Arc<jobs::Registry>,
    parts: Arc<Parts>,
}

/// Capability handles keyed by their type (one of each).
#[derive(Default)]
pub struct Parts(HashMap<TypeId, Box<dyn Any + Send + Sync>>);

impl Parts {
    /// Stores `part`; a second part of the same type replaces the first.
    pub fn insert<T: Any + Send + Sync>(&mut self, part: T) {
        self.0.insert(TypeId::of::<T>(), Box::new(part));
    }

    fn get<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.0.get(&TypeId::of::<T>())?.downcast_ref()
    }
}

impl AppState {
    /// The infrastructure every capability shares; `parts` holds the
    /// capabilities' own handles (see the module doc).
    pub fn new(
        pool: PgPool,
        settings: Settings,
        engines: Arc<EngineHub>,
        metrics: Arc<Metrics>,
        parts: Parts,
    ) -> AppState {
        let jobs = Arc::new(jobs::Registry::new(metrics.tasks()));
        AppState {
            pool,
            settings: Arc::new(settings),
            engines,
            metrics,
            jobs,
            parts: Arc::new(parts),
        }
    }

    /// The capability handle of type `T`, stored at composition.
    ///
    /// # Panics
    /// When no part of type `T` was inserted: `compose` inserts them all.
    pub fn part<T: Any + Send + Sync>(&self) -> &T {
        self.parts.get::<T>().unwrap_or_else(|| {
            panic!(
                "{} is not composed into AppState (see serve::compose)",
                type_name::<T>()
            )
        })
    }
}
