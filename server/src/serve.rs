//! `opsdeck serve`: open the database, migrate, create the first admin if
//! needed, start every background task (the jobs registry, see
//! [`crate::jobs`]), serve HTTP until SIGINT/SIGTERM, then stop the tasks,
//! drain requests and stop the embedded Postgres.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::checks::HealthHub;
use crate::config::Settings;
use crate::db::{self, Database};
use crate::docker::EngineHub;
use crate::incidents::IncidentHub;
use crate::jobs::{Pace, Scope, Task};
use crate::metrics::Metrics;
use crate::runbooks::step::StepKinds;
use crate::runbooks::RunEngine;
use crate::state::{AppState, Parts};
use crate::web::WebAssets;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    crate::auth::password::release_large_blocks();
    let started = Instant::now();
    let database = Database::open(&settings).await?;
    db::migrate(&database.pool).await?;
    if let Some(password) =
        crate::users::ensure_initial_admin(&database.pool, settings.admin_password.as_ref()).await?
    {
        print_initial_password(&password);
    }
    crate::engines::ensure_default(&database.pool, settings.docker_host.as_deref()).await?;
    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {} (set OPSDECK_LISTEN)", settings.listen))?;
    if settings.trust_proxy {
        tracing::warn!(
            "OPSDECK_TRUST_PROXY is deprecated: it now trusts X-Forwarded-For from loopback and \
             private networks only; list your proxies in OPSDECK_TRUSTED_PROXIES instead"
        );
    }
    let state = compose(database.pool.clone(), settings);
    state.jobs.add(upkeep(state.clone()));
    state.jobs.add(crate::audit::checkpoint::task(
        state.pool.clone(),
        &state.settings.data_dir,
    ));
    tracing::info!(
        address = %format!("http://{}", listener.local_addr()?),
        ready_in_ms = started.elapsed().as_millis() as u64,
        "Opsdeck is ready"
    );
    let result = serve(listener, state, shutdown_signal()).await;
    database.close().await;
    result
}

/// The composition root: the shared infrastructure plus every capability's
/// part (see [`crate::state`]), and the step kinds lower capabilities add
/// to the run engine. Tests build their servers through this too.
pub fn compose(pool: PgPool, settings: Settings) -> AppState {
    let engines = Arc::new(EngineHub::default());
    let metrics = Arc::new(Metrics::new());
    let mut step_kinds = StepKinds::default();
    step_kinds.add(crate::backups::run::BackupStep);
    step_kinds.add(crate::maintenance::actuate::MaintenanceStep);
    step_kinds.add(crate::updates::apply::ImageStep);
    step_kinds.add(crate::cleanup::CleanupStep);
    let mut report_sections = crate::checks::report::ReportSections::default();
    report_sections.add(crate::backups::report::BackupSection);
    let mut parts = Parts::default();
    parts.insert(Arc::new(WebAssets::load(&settings.web_root)));
    parts.insert(HealthHub::new(
        pool.clone(),
        engines.clone(),
        settings.checks_allow_link_local,
    ));
    parts.insert(RunEngine::new(
        pool.clone(),
        settings.run_lease,
        metrics.clone(),
    ));
    parts.insert(Arc::new(step_kinds));
    parts.insert(Arc::new(report_sections));
    parts.insert(Arc::new(IncidentHub::default()));
    parts.insert(Arc::new(crate::inventory::SnapshotCache::default()));
    let state = AppState::new(pool, settings, engines, metrics, parts);
    // Every accessor once: a part left out fails here, at start, not in a
    // request.
    let _ = (
        state.web(),
        state.health(),
        state.runs(),
        state.step_kinds(),
        state.report_sections(),
        state.incidents(),
        state.inventory_cache(),
    );
    state
}

/// Starts the engine hub, serves the app on `listener` until `shutdown`
/// completes, then ends live streams and lets in-flight requests finish.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    // The secrets key before anything reads a secret: a missing or wrong
    // key refuses the start (see `crate::secrets::startup`).
    crate::secrets::startup::start(&state.pool, &state.settings)
        .await
        .context("secrets at rest")?;
    // Bound first: a taken metrics address fails the start, not a scrape.
    let metrics_listener = match state.settings.metrics_listen {
        Some(addr) => Some(TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr} for /metrics (set OPSDECK_METRICS_LISTEN)")
        })?),
        None => None,
    };
    crate::engines::start(&state)
        .await
        .map_err(|e| anyhow::anyhow!("loading the Docker engines: {e}"))?;
    state
        .health()
        .start(&state.jobs)
        .await
        .context("starting the health-check engine")?;
    let seeded = crate::runbooks::builtins::seed(&state.pool)
        .await
        .context("adding the built-in runbooks")?;
    if seeded > 0 {
        tracing::info!(runbooks = seeded, "added built-in runbooks");
    }
    add_tasks(&state).context("starting the background tasks")?;
    if let Some(listener) = metrics_listener {
        let app = crate::scrape::listener_app(state.clone());
        tracing::info!(address = %format!("http://{}/metrics", listener.local_addr()?), "serving /metrics");
        state.jobs.add(Task::service(
            "metrics.listener",
            Scope::EveryProcess,
            (listener, app),
            |(listener, app), stop| async move {
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(stop.cancelled_owned())
                    .await
                {
                    tracing::error!(error = %e, "the metrics listener stopped");
                }
            },
        ));
    }
    state.jobs.start(&state.pool);
    let hub = state.engines.clone();
    let jobs = state.jobs.clone();
    let shutdown = async move {
        shutdown.await;
        hub.close();
        jobs.shutdown();
    };
    let app = crate::http::app(state);
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("HTTP server")
}

/// Adds every capability's background tasks to the registry (see the
/// table in [`crate::jobs`]).
fn add_tasks(state: &AppState) -> anyhow::Result<()> {
    let jobs = &state.jobs;
    let stop = jobs.stopping();
    let settings = &state.settings;
    // The LISTEN loop first: the others' wake-ups arrive through it.
    jobs.add(crate::fanout::task(state.clone()));
    state
        .runs()
        .tasks(state.clone(), stop.clone())
        .into_iter()
        .chain(crate::notify::tasks(state.clone(), stop))
        .chain(crate::maintenance::tasks(state.clone()))
        .chain(crate::updates::tasks(state.clone()))
        .for_each(|t| jobs.add(t));
    crate::incidents::tasks(state.clone(), settings.escalations)
        .into_iter()
        .for_each(|t| jobs.add(t));
    jobs.add(crate::backups::task(state.clone()));
    jobs.add(crate::runbooks::bindings::task(state.clone()));
    if settings.schedules {
        jobs.add(crate::runbooks::schedules::task(state.clone())?);
    }
    if let Some(t) = crate::resources::task(state.clone()) {
        jobs.add(t);
    }
    if settings.daily_report {
        jobs.add(crate::checks::report::task(state.clone())?);
    }
    Ok(())
}

/// Periodic housekeeping (`upkeep`, every 10 min, every process): expired
/// sessions, actions a crash left running. Added by `opsdeck serve` only
/// (not by servers tests start in-process).
fn upkeep(state: AppState) -> Task {
    Task::every(
        "upkeep",
        Duration::from_secs(600),
        Scope::EveryProcess,
        state,
        |state| async move {
            match crate::actions::close_interrupted(&state.pool).await {
                Ok(n) if n > 0 => {
                    tracing::warn!(actions = n, "closed actions interrupted by a restart")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "closing interrupted actions failed"),
            }
            match crate::auth::sessions::sweep(&state.pool, state.settings.session_idle).await {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "removed expired sessions"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "session sweep failed"),
            }
            Ok(Pace::Normal)
        },
    )
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

fn print_initial_password(password: &str) {
    // Printed once, to the terminal only: never through the log pipeline.
    eprintln!();
    eprintln!("  ┌──────────────────────────────────────────────────────────┐");
    eprintln!("  │ Opsdeck created the first account.                       │");
    eprintln!("  │   username: admin                                        │");
    eprintln!("  │   password: {password:<44} │");
    eprintln!("  │ It is shown only now; you choose a new one at first login. │");
    eprintln!("  └──────────────────────────────────────────────────────────┘");
    eprintln!();
}
