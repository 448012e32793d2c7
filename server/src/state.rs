//! The one cloneable application state every handler receives, and the
//! composition root: the jobs registry and the runbook step kinds that
//! lower capabilities plug in are made here.

use std::sync::Arc;

use sqlx::PgPool;

use crate::checks::HealthHub;
use crate::config::Settings;
use crate::docker::EngineHub;
use crate::incidents::IncidentHub;
use crate::jobs;
use crate::metrics::Metrics;
use crate::runbooks::step::StepKinds;
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
    /// Step kinds other capabilities add to the runbook engine.
    pub step_kinds: Arc<StepKinds>,
    /// Live incident changes (started by `serve`).
    pub incidents: Arc<IncidentHub>,
    /// This process's event counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// This process's background tasks (started once by `serve`).
    pub jobs: Arc<jobs::Registry>,
}

impl AppState {
    pub fn new(pool: PgPool, settings: Settings) -> AppState {
        let web = WebAssets::load(&settings.web_root);
        let engines = Arc::new(EngineHub::default());
        let health = HealthHub::new(
            pool.clone(),
            engines.clone(),
            settings.checks_allow_link_local,
        );
        let metrics = Arc::new(Metrics::new());
        let runs = RunEngine::new(pool.clone(), settings.run_lease, metrics.clone());
        let jobs = Arc::new(jobs::Registry::new(metrics.tasks()));
        let mut step_kinds = StepKinds::default();
        step_kinds.add(crate::backups::run::BackupStep);
        step_kinds.add(crate::maintenance::actuate::MaintenanceStep);
        AppState {
            pool,
            settings: Arc::new(settings),
            web: Arc::new(web),
            engines,
            health,
            runs,
            step_kinds: Arc::new(step_kinds),
            incidents: Arc::new(IncidentHub::default()),
            metrics,
            jobs,
        }
    }
}
