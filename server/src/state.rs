//! The one cloneable application state every handler receives.

use std::sync::Arc;

use sqlx::PgPool;

use crate::checks::HealthHub;
use crate::config::Settings;
use crate::docker::EngineHub;
use crate::incidents::IncidentHub;
use crate::metrics::Metrics;
use crate::runbooks::RunEngine;
use crate::web::WebAssets;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub web: Arc<WebAssets>,
    /// Docker Engines and their container caches (started by `serve`).
    pub engines: Arc<EngineHub>,
    /// Health checks and the status board (started by `serve`).
    pub health: Arc<HealthHub>,
    /// Runbook runs: claim, lease, execute (started by `serve`).
    pub runs: Arc<RunEngine>,
    /// Live incident changes (started by `serve`).
    pub incidents: Arc<IncidentHub>,
    /// This process's event counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

impl AppState {
    pub fn new(pool: PgPool, settings: Settings) -> AppState {
        let web = WebAssets::load(&settings.web_root);
        let engines = Arc::new(EngineHub::default());
        let health = HealthHub::new(pool.clone(), engines.clone());
        let metrics = Arc::new(Metrics::new());
        let runs = RunEngine::new(pool.clone(), settings.run_lease, metrics.clone());
        AppState {
            pool,
            settings: Arc::new(settings),
            web: Arc::new(web),
            engines,
            health,
            runs,
            incidents: Arc::new(IncidentHub::default()),
            metrics,
        }
    }
}
