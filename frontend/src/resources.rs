//! Resource history in the SPA: [`ResourceCharts`] (CPU, memory and
//! network of a service, on its page; of the Opsdeck host with its disks
//! and each engine's containers, on the host page `/hosts/local`,
//! [`HostPage`]), the forecasts that fill up soon ([`ForecastNotice`] on the
//! dashboard, [`ForecastTable`]) and the monthly capacity report
//! (`/reports/capacity`, [`capacity::CapacityPage`]).

pub mod capacity;

use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::{Forecast, ResourceHistory, ResourcePoint, ResourceSeries};

use crate::api;
use crate::live::use_interval;
use crate::ui::chart::{line_chart, Line};
use crate::ui::{bytes, EmptyState, ErrorState, Loading};

/// Whose history a [`ResourceCharts`] shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Source {
    Service(i64),
    Host,
}

/// "12.5 %" of one core.
pub fn pct(v: f64) -> String {
    if v >= 100.0 || v == 0.0 {
        format!("{v:.0} %")
    } else {
        format!("{v:.1} %")
    }
}

/// Bytes, rounded.
pub fn size(v: f64) -> String {
    bytes(v.max(0.0).round() as u64)
}

/// Bytes per second.
pub fn rate(v: f64) -> String {
    format!("{}/s", size(v))
}

/// "about 9 days" / "about 5 hours".
pub fn days_text(days: f64) -> String {
    if days < 1.0 / 24.0 {
        "less than an hour".into()
    } else if days < 1.5 {
        format!("about {} hours", (days * 24.0).round())
    } else {
        format!("about {} days", days.round())
    }
}

fn ms(p: &ResourcePoint) -> f64 {
    p.at.timestamp_millis() as f64
}

fn line(
    name: &'static str,
    class: &'static str,
    s: &ResourceSeries,
    f: impl Fn(&ResourcePoint) -> Option<f64>,
) -> Line {
    Line {
        name: name.to_owned(),
        class,
        points: s.points.iter().map(|p| (ms(p), f(p))).collect(),
    }
}

/// The CPU, memory and network charts of one series.
fn series_charts(s: &ResourceSeries, range: &str, bucket: f64) -> AnyView {
    let limit = s.points.iter().filter_map(|p| p.mem_limit).max();
    let mem_title = match limit {
        Some(l) => format!("Memory (limit {})", bytes(l.max(0) as u64)),
        None => "Memory".to_owned(),
    };
    let who = if s.kind == "host" {
        "CPU (100 % = one core; all cores summed)"
    } else {
        "CPU (100 % = one core; containers summed)"
    };
    view! {
        <div class="resource-charts">
            <div class="resource-chart">
                <h3 class="small">{who}</h3>
                {line_chart("resource-chart-cpu", "CPU", range, bucket, vec![
                    line("average", "chart-line", s, |p| p.cpu_avg),
                    line("peak", "chart-line chart-line-2", s, |p| p.cpu_max),
                ], 1.0, pct)}
            </div>
            <div class="resource-chart">
                <h3 class="small">{mem_title}</h3>
                {line_chart("resource-chart-memory", "Memory", range, bucket, vec![
                    line("average", "chart-line", s, |p| p.mem_avg),
                    line("peak", "chart-line chart-line-2", s, |p| p.mem_max.map(|v| v as f64)),
                ], 1024.0 * 1024.0, size)}
            </div>
            <div class="resource-chart">
                <h3 class="small">"Network"</h3>
                {line_chart("resource-chart-network", "Network", range, bucket, vec![
                    line("received", "chart-line", s, |p| Some(p.net_rx_bps)),
                    line("sent", "chart-line chart-line-3", s, |p| Some(p.net_tx_bps)),
                ], 1024.0, rate)}
            </div>
        </div>
    }
    .into_any()
}

/// A mount's disk use against its size.
fn disk_chart(s: &ResourceSeries, range: &str, bucket: f64) -> AnyView {
    let total = s
        .points
        .iter()
        .filter_map(|p| p.disk_total)
        .max()
        .unwrap_or(0);
    let last = s.points.iter().rev().find_map(|p| p.disk_used);
    let title = match last {
        Some(u) if total > 0 => format!(
            "Disk {}: {} of {} ({:.0} %)",
            s.label,
            bytes(u.max(0) as u64),
            bytes(total as u64),
            100.0 * u as f64 / total as f64
        ),
        _ => format!("Disk {}", s.label),
    };
    view! {
        <div class="resource-chart" data-testid="resource-disk">
            <h3 class="small">{title}</h3>
            {line_chart("resource-chart-disk", "Disk used", range, bucket, vec![
                line("used", "chart-line", s, |p| p.disk_used.map(|v| v as f64)),
                line("size", "chart-line chart-line-3", s, |p| p.disk_total.map(|v| v as f64)),
            ], 1024.0 * 1024.0, size)}
        </div>
    }
    .into_any()
}

/// Each engine's containers' CPU, one line per engine (at most three).
fn engines_chart(engines: &[&ResourceSeries], range: &str, bucket: f64) -> AnyView {
    const CLASSES: [&str; 3] = [
        "chart-line",
        "chart-line chart-line-2",
        "chart-line chart-line-3",
    ];
    let lines = engines
        .iter()
        .take(3)
        .zip(CLASSES)
        .map(|(s, class)| Line {
            name: s.label.clone(),
            class,
            points: s.points.iter().map(|p| (ms(p), p.cpu_avg)).collect(),
        })
        .collect();
    view! {
        <div class="resource-chart">
            <h3 class="small">"Containers' CPU by engine (100 % = one core)"</h3>
            {line_chart("resource-chart-engines", "Containers' CPU", range, bucket, lines, 1.0, pct)}
        </div>
    }
    .into_any()
}

fn history_view(h: &ResourceHistory) -> AnyView {
    let range = h.range.as_str();
    let bucket = if h.resolution == "hour" {
        3_600_000.0
    } else {
        60_000.0
    };
    let has_points = h.series.iter().any(|s| !s.points.is_empty());
    if !has_points {
        let hint = match h.sample_interval_s {
            Some(s) => format!("Opsdeck samples every {s} s and writes a point once a minute; the charts fill from then on."),
            None => "Sampling is off (resource_sample_interval = off): nothing is being recorded.".to_owned(),
        };
        return view! {
            <div data-testid="resource-empty">
                <EmptyState title="No samples yet"><p>{hint}</p></EmptyState>
            </div>
        }
        .into_any();
    }
    let main: Vec<&ResourceSeries> = h
        .series
        .iter()
        .filter(|s| matches!(s.kind.as_str(), "service" | "host"))
        .collect();
    let mounts: Vec<&ResourceSeries> = h.series.iter().filter(|s| s.kind == "mount").collect();
    let engines: Vec<&ResourceSeries> = h
        .series
        .iter()
        .filter(|s| s.kind == "engine" && !s.points.is_empty())
        .collect();
    view! {
        {main.into_iter().map(|s| series_charts(s, range, bucket)).collect_view()}
        {(!mounts.is_empty()).then(|| view! {
            <div class="resource-charts">{mounts.iter().map(|s| disk_chart(s, range, bucket)).collect_view()}</div>
        })}
        {(!engines.is_empty()).then(|| view! { <div class="resource-charts">{engines_chart(&engines, range, bucket)}</div> })}
        {(!h.forecasts.is_empty()).then(|| view! {
            <h3>"Forecasts"</h3>
            <ForecastTable items=h.forecasts.clone()/>
        })}
    }
    .into_any()
}

/// Resource charts for a day, a week or a month, refreshed every minute.
#[component]
pub fn ResourceCharts(source: Source) -> impl IntoView {
    let range = RwSignal::new("day");
    let reload = RwSignal::new(0u32);
    let history = LocalResource::new(move || {
        reload.get();
        let r = range.get();
        async move {
            match source {
                Source::Service(id) => api::resources::service(id, r).await,
                Source::Host => api::resources::host(r).await,
            }
        }
    });
    use_interval(Duration::from_secs(60), move || {
        reload.try_update(|n| *n += 1);
    });
    view! {
        <div class="resources" data-testid="resource-history">
            <div class="btn-row" role="group" aria-label="Range">
                {[("day", "24 hours"), ("week", "7 days"), ("month", "30 days")].into_iter().map(|(r, label)| view! {
                    <button type="button" class="btn btn-small" data-testid=format!("resource-range-{r}")
                        class:btn-active=move || range.get() == r aria-pressed=move || (range.get() == r).to_string()
                        on:click=move |_| range.set(r)>{label}</button>
                }).collect_view()}
            </div>
            <Transition fallback=|| view! { <Loading rows=3/> }>
                {move || history.get().map(|r| match r {
                    Err(e) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                    Ok(h) => history_view(&h),
                })}
            </Transition>
        </div>
    }
}

/// Forecasts: what, used of capacity, rate, when full.
#[component]
pub fn ForecastTable(items: Vec<Forecast>) -> impl IntoView {
    view! {
        <div class="table-wrap"><table class="table" data-testid="forecast-table">
            <thead><tr><th>"Resource"</th><th>"Used"</th><th>"Rate (14 days)"</th><th>"Full in"</th><th>"Fit (R²)"</th></tr></thead>
            <tbody>{items.into_iter().map(|f| {
                let full = f.days_to_full.map(days_text).unwrap_or_else(|| "not filling up".into());
                let sign = if f.slope_per_day >= 0.0 { "+" } else { "−" };
                view! {
                    <tr>
                        <td>{f.label.clone()}</td>
                        <td class="nowrap">{size(f.used)}" of "{size(f.capacity)}</td>
                        <td class="nowrap">{sign}{size(f.slope_per_day.abs())}"/day"</td>
                        <td class="nowrap" data-testid="forecast-days">{full}</td>
                        <td>{format!("{:.2}", f.r2)}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
    }
}

/// The dashboard's notice: disks and memory full within 14 days at the
/// last 14 days' rate. Shows nothing when none is (or on an error: the
/// dashboard has its own states).
#[component]
pub fn ForecastNotice() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let list = LocalResource::new(move || {
        reload.get();
        api::resources::forecasts(14.0)
    });
    use_interval(Duration::from_secs(300), move || {
        reload.try_update(|n| *n += 1);
    });
    move || {
        list.get().and_then(|r| r.ok()).filter(|l| !l.items.is_empty()).map(|l| {
            view! {
                <section class="card forecast-notice" data-testid="forecast-notice" aria-label="Capacity forecasts">
                    <h2>"Filling up"</h2>
                    <ul class="plain-list">{l.items.into_iter().map(|f| {
                        let days = f.days_to_full.map(days_text).unwrap_or_default();
                        let href = match f.service_id { Some(id) => format!("/services/{id}"), None => "/hosts/local".into() };
                        view! { <li><a href=href>{f.label.clone()}</a>" full in "<strong>{days}</strong>" at the last "{l.window_days}" days' rate"</li> }
                    }).collect_view()}</ul>
                </section>
            }
        })
    }
}

/// The host page (`/hosts/local`): the Opsdeck host's CPU, memory,
/// network, disks and each engine's containers, with forecasts.
#[component]
pub fn HostPage() -> impl IntoView {
    view! {
        <h1>"Host"</h1>
        <p class="lede">"The machine Opsdeck runs on: CPU, memory and network, each mounted filesystem, and the containers of each engine summed."</p>
        <section class="card section">
            <ResourceCharts source=Source::Host/>
        </section>
    }
}
