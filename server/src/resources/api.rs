//! Resource routes (all Viewer): a service's and the host's history for
//! the charts, the forecasts that fill up soon (the dashboard), and the
//! monthly capacity report.

use std::collections::HashMap;

use axum::extract::State;
use chrono::Utc;
use opsdeck_wire::{CapacityReport, ForecastList, ResourceHistory, ResourceSeries};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::store::{self, SeriesRow};
use super::{ForecastFilter, ResourceError};
use crate::auth::{Auth, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(service_history))
        .routes(routes!(host_history))
        .routes(routes!(forecasts))
        .routes(routes!(capacity))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct RangeParams {
    /// `day` (per-minute rollups, default), `week` or `month` (hourly).
    pub range: Option<String>,
}

async fn history(
    state: &AppState,
    series: Vec<SeriesRow>,
    range: Option<&str>,
    forecast: ForecastFilter,
) -> Result<ResourceHistory, ResourceError> {
    let (hourly, back, resolution) = super::range(range)?;
    let since = Utc::now() - chrono::Duration::from_std(back).unwrap_or_default();
    let ids: Vec<i64> = series.iter().map(|s| s.id).collect();
    let mut by_series: HashMap<i64, Vec<_>> = HashMap::new();
    for (id, p) in store::points(&state.pool, &ids, hourly, since).await? {
        by_series.entry(id).or_default().push(p);
    }
    let forecasts = super::forecasts(&state.pool, &forecast).await?;
    Ok(ResourceHistory {
        range: range.unwrap_or("day").to_owned(),
        resolution: resolution.into(),
        sample_interval_s: state
            .settings
            .resource_sample_interval
            .map(|d| d.as_secs() as u32),
        series: series
            .into_iter()
            .map(|s| ResourceSeries {
                points: by_series.remove(&s.id).unwrap_or_default(),
                kind: s.kind,
                label: s.label,
            })
            .collect(),
        forecasts,
    })
}

/// CPU, memory, network and block I/O of a service's containers (summed),
/// per minute (day) or per hour (week, month), with its memory forecast.
#[utoipa::path(get, path = "/api/v1/services/{id}/resources", tag = "resources", params(RangeParams),
    responses((status = 200, body = ResourceHistory), (status = 400), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn service_history(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Query(q): Query<RangeParams>,
) -> ApiResult<Json<ResourceHistory>> {
    super::range(q.range.as_deref())?;
    if !store::service_exists(&state.pool, id).await? {
        return Err(ApiError::NotFound(format!("service {id}")));
    }
    let series = store::service_series(&state.pool, id).await?;
    let f = ForecastFilter {
        service_id: Some(id),
        kind: Some("service"),
        mount: None,
    };
    Ok(Json(history(&state, series, q.range.as_deref(), f).await?))
}

/// The Opsdeck host: CPU, memory and network, disk per mount, and each
/// engine's containers summed; with the host's forecasts (memory, disks).
#[utoipa::path(get, path = "/api/v1/hosts/local/resources", tag = "resources", params(RangeParams),
    responses((status = 200, body = ResourceHistory), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn host_history(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<RangeParams>,
) -> ApiResult<Json<ResourceHistory>> {
    super::range(q.range.as_deref())?;
    let series = store::host_series(&state.pool).await?;
    let mut h = history(
        &state,
        series,
        q.range.as_deref(),
        ForecastFilter::default(),
    )
    .await?;
    h.forecasts.retain(|f| f.kind != "service");
    Ok(Json(h))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct ForecastParams {
    /// Only what fills up within this many days (default 14, 0.1–3650).
    pub within_days: Option<f64>,
}

/// Disks and memory that fill up within `within_days` at the last 14
/// days' rate (least squares on the hourly series), soonest first.
#[utoipa::path(get, path = "/api/v1/resources/forecasts", tag = "resources", params(ForecastParams),
    responses((status = 200, body = ForecastList), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn forecasts(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<ForecastParams>,
) -> ApiResult<Json<ForecastList>> {
    let within = q.within_days.unwrap_or(14.0);
    if !(0.1..=3650.0).contains(&within) {
        return Err(ApiError::from_validation(
            "within_days: a number of days from 0.1 to 3650".into(),
        ));
    }
    let mut items: Vec<_> = super::forecasts(&state.pool, &ForecastFilter::default())
        .await?
        .into_iter()
        .filter(|f| f.days_to_full.is_some_and(|d| d <= within))
        .collect();
    items.sort_by(|a, b| {
        a.days_to_full
            .partial_cmp(&b.days_to_full)
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    Ok(Json(ForecastList {
        within_days: within,
        window_days: super::forecast::WINDOW_DAYS,
        items,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct CapacityParams {
    /// `YYYY-MM` (UTC); the current month when absent.
    pub month: Option<String>,
}

/// The monthly capacity report: average and peak CPU and memory per
/// service and for the host, disk growth per mount, the change from the
/// month before; top growers first.
#[utoipa::path(get, path = "/api/v1/reports/capacity", tag = "reports", params(CapacityParams),
    responses((status = 200, body = CapacityReport), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn capacity(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(q): Query<CapacityParams>,
) -> ApiResult<Json<CapacityReport>> {
    let month = super::report::Month::parse(q.month.as_deref(), Utc::now())?;
    Ok(Json(super::report::build(&state.pool, month).await?))
}
