//! Resource history: CPU, memory, network, block I/O and disk, kept as
//! minute and hour rollups per service (its containers summed), per engine
//! (all its running containers), for the Opsdeck host and for each of its
//! mounts; least-squares forecasts ("disk / full in about 9 days") and the
//! monthly capacity report.
//!
//! * `sample.rs` the sampler (task `resources.sample`, one process): every
//!   `resource_sample_interval` (10 s, counted from round start to round
//!   start) one one-shot stats call per running
//!   container (`docker::stats`), rates from the previous counters kept in
//!   memory, and the host's figures (`host.rs`); samples add into per-minute
//!   accumulators, written once the minute is over (one row per series,
//!   minute and hour tables, one batched statement each).
//! * `store.rs` the SQL; `forecast.rs` the pure fit; `report.rs` the
//!   capacity report; `api.rs` the routes.
//!
//! Layer: above `inventory` and `docker` (it maps containers to services
//! with `inventory::ContainerIndex`), below `checks` (the `forecast` check
//! kind reads [`forecast_of`]). See docs/metrics/resource-history.md.

pub mod api;
pub mod forecast;
pub mod host;
pub mod report;
pub mod sample;
pub mod store;

use std::time::Duration;

use chrono::Utc;
use opsdeck_wire::Forecast;
use sqlx::PgPool;

pub use api::router;
pub use store::ForecastFilter;

use crate::jobs::{Pace, Scope, Task};
use crate::state::AppState;

/// What a series is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SeriesKey {
    Service(i64),
    Engine(i64),
    Host,
    Mount(String),
}

impl SeriesKey {
    pub fn kind(&self) -> &'static str {
        match self {
            SeriesKey::Service(_) => "service",
            SeriesKey::Engine(_) => "engine",
            SeriesKey::Host => "host",
            SeriesKey::Mount(_) => "mount",
        }
    }

    /// (service_id, engine_id, mount) as stored.
    pub fn columns(&self) -> (Option<i64>, Option<i64>, Option<String>) {
        match self {
            SeriesKey::Service(id) => (Some(*id), None, None),
            SeriesKey::Engine(id) => (None, Some(*id), None),
            SeriesKey::Host => (None, None, None),
            SeriesKey::Mount(m) => (None, None, Some(m.clone())),
        }
    }

    pub fn from_columns(
        kind: &str,
        service: Option<i64>,
        engine: Option<i64>,
        mount: Option<String>,
    ) -> Option<SeriesKey> {
        match kind {
            "service" => service.map(SeriesKey::Service),
            "engine" => engine.map(SeriesKey::Engine),
            "host" => Some(SeriesKey::Host),
            "mount" => mount.map(SeriesKey::Mount),
            _ => None,
        }
    }
}

/// Errors of the resource routes.
#[derive(Debug, thiserror::Error)]
pub enum ResourceError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A forecast of a series, or why there is none yet.
pub fn outlook(row: &store::ForecastRow) -> Result<Forecast, String> {
    let points = row.sums.n as u32;
    if points < forecast::MIN_POINTS {
        return Err(format!(
            "not enough history for a forecast of {} yet ({points} hourly points, {} needed)",
            row.label,
            forecast::MIN_POINTS
        ));
    }
    let Some(fit) = forecast::fit(&row.sums) else {
        return Err(format!("no trend can be fitted to {}", row.label));
    };
    let (Some(used), Some(capacity)) = (row.last, row.capacity.filter(|c| *c > 0.0)) else {
        return Err(format!("{} has no known capacity", row.label));
    };
    Ok(Forecast {
        resource: if row.kind == "mount" {
            "disk"
        } else {
            "memory"
        }
        .into(),
        kind: row.kind.clone(),
        service_id: row.service_id,
        mount: row.mount.clone(),
        label: row.label.clone(),
        used,
        capacity,
        slope_per_day: fit.slope,
        days_to_full: forecast::days_to_full(used, capacity, fit.slope),
        r2: fit.r2,
        points,
        span_days: row.span_days,
    })
}

/// The forecasts of the series `f` selects (those with enough history).
pub async fn forecasts(pool: &PgPool, f: &ForecastFilter) -> sqlx::Result<Vec<Forecast>> {
    let rows = store::forecast_sums(pool, Utc::now(), forecast::WINDOW_DAYS as i32, f).await?;
    Ok(rows.iter().filter_map(|r| outlook(r).ok()).collect())
}

/// The forecast of one series (the `forecast` check): `Ok(None)` before
/// its first hourly row, `Err` with the reason when there is no forecast.
pub async fn forecast_of(
    pool: &PgPool,
    f: &ForecastFilter,
) -> sqlx::Result<Option<Result<Forecast, String>>> {
    let rows = store::forecast_sums(pool, Utc::now(), forecast::WINDOW_DAYS as i32, f).await?;
    Ok(rows.first().map(outlook))
}

/// The sampler's task (`resources.sample`, one process at a time so
/// replicas never sample twice); `None` when `resource_sample_interval` is
/// off.
pub fn task(state: AppState) -> Option<Task> {
    let every = state.settings.resource_sample_interval?;
    let sampler = std::sync::Arc::new(tokio::sync::Mutex::new(sample::Sampler::new(
        state.pool.clone(),
        state.engines.clone(),
        every,
    )));
    let lost = sampler.clone();
    Some(
        Task::every(
            "resources.sample",
            every,
            Scope::OneProcess,
            sampler,
            move |s| async move {
                let mut s = s.lock().await;
                s.tick().await?;
                // A fixed rate: the next round starts `every` after this
                // one started (a round takes a while with many containers).
                Ok(Pace::Soon(every.saturating_sub(s.last_round())))
            },
        )
        .on_lose(move || {
            // Another process samples now: its counters are its own.
            if let Ok(mut s) = lost.try_lock() {
                s.reset();
            }
        }),
    )
}

/// Ranges the charts ask for: (hourly, how far back, resolution name).
pub fn range(range: Option<&str>) -> Result<(bool, Duration, &'static str), ResourceError> {
    match range.unwrap_or("day") {
        "day" => Ok((false, Duration::from_secs(86_400), "minute")),
        "week" => Ok((true, Duration::from_secs(7 * 86_400), "hour")),
        "month" => Ok((true, Duration::from_secs(30 * 86_400), "hour")),
        other => Err(ResourceError::Invalid(format!(
            "range: expected day, week or month, not {other:?}"
        ))),
    }
}
