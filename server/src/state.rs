//! The one cloneable application state every handler receives.

use std::sync::Arc;

use sqlx::PgPool;

use crate::config::Settings;
use crate::docker::EngineHub;
use crate::web::WebAssets;

#[derive(Clone)]
pub struct AppState {
    pub pool: PgPool,
    pub settings: Arc<Settings>,
    pub web: Arc<WebAssets>,
    /// Docker Engines and their container caches (started by `serve`).
    pub engines: Arc<EngineHub>,
}

impl AppState {
    pub fn new(pool: PgPool, settings: Settings) -> AppState {
        let web = WebAssets::load(&settings.web_root);
        AppState {
            pool,
            settings: Arc::new(settings),
            web: Arc::new(web),
            engines: Arc::new(EngineHub::default()),
        }
    }
}
