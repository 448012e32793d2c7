//! A check's history ([`CheckHistoryView`]): the latency chart for a day, a
//! week or a month, uptime figures and the state changes.

use super::*;
use crate::ui::chart::{frame, nice_ceil, span_ms};

/// The latency chart: average line over a min–max band, failed buckets in
/// red, warnings in amber. Time runs over the whole range, ending now.
pub(super) fn history_chart(h: &CheckHistory, range: &str) -> AnyView {
    use crate::ui::chart::{H, W};
    let end = now_ms();
    let span = span_ms(range);
    let start = end - span;
    let bucket = if h.resolution == "hour" {
        3_600_000.0
    } else {
        60_000.0
    };
    let mut rollups: Vec<&opsdeck_wire::Rollup> = h.rollups.iter().collect();
    rollups.sort_by_key(|r| r.at);
    let max = rollups
        .iter()
        .filter_map(|r| r.latency_max_ms.or(r.latency_avg_ms))
        .fold(0.0_f64, f64::max);
    let ymax = nice_ceil(max * 1.1);
    let x = |t: f64| ((t - start) / span * W).clamp(0.0, W);
    let y = |v: f64| H - (v / ymax).clamp(0.0, 1.0) * H;

    let mut marks = Vec::new();
    for r in &rollups {
        let t = r.at.timestamp_millis() as f64;
        if r.critical == 0 && r.warning == 0 {
            continue;
        }
        let x0 = x(t);
        let w = (x(t + bucket) - x0).max(1.0);
        let (class, what) = if r.critical > 0 {
            (
                "chart-fail",
                format!("{} failed of {}", r.critical, r.probes),
            )
        } else {
            (
                "chart-warn",
                format!("{} warnings of {}", r.warning, r.probes),
            )
        };
        let title = format!("{}: {what}", r.at.format("%Y-%m-%d %H:%M UTC"));
        marks.push(view! {
            <rect class=class x=format!("{x0:.2}") y="0" width=format!("{w:.2}") height=format!("{H}")><title>{title}</title></rect>
        });
    }

    // Runs of consecutive buckets with a latency.
    let mut runs: Vec<Vec<(f64, f64, f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64, f64, f64)> = Vec::new();
    let mut last_t: Option<f64> = None;
    for r in &rollups {
        let t = r.at.timestamp_millis() as f64;
        let gap = last_t.is_some_and(|l| t - l > bucket * 1.5);
        match r.latency_avg_ms {
            Some(avg) if !gap => {
                let mid = x(t + bucket / 2.0);
                cur.push((
                    mid,
                    y(avg),
                    y(r.latency_min_ms.unwrap_or(avg)),
                    y(r.latency_max_ms.unwrap_or(avg)),
                ));
            }
            Some(avg) => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
                let mid = x(t + bucket / 2.0);
                cur.push((
                    mid,
                    y(avg),
                    y(r.latency_min_ms.unwrap_or(avg)),
                    y(r.latency_max_ms.unwrap_or(avg)),
                ));
            }
            None => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
        last_t = Some(t);
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    let shapes = runs
        .into_iter()
        .map(|run| {
            if run.len() == 1 {
                let (cx, cy, lo, hi) = run[0];
                view! {
                    <line class="chart-band-line" x1=format!("{cx:.2}") x2=format!("{cx:.2}") y1=format!("{lo:.2}") y2=format!("{hi:.2}")/>
                    <circle class="chart-dot" cx=format!("{cx:.2}") cy=format!("{cy:.2}") r="2"/>
                }
                .into_any()
            } else {
                let band = run
                    .iter()
                    .map(|(px, _, _, hi)| format!("{px:.2},{hi:.2}"))
                    .chain(run.iter().rev().map(|(px, _, lo, _)| format!("{px:.2},{lo:.2}")))
                    .collect::<Vec<_>>()
                    .join(" ");
                let line = run
                    .iter()
                    .map(|(px, py, _, _)| format!("{px:.2},{py:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                view! {
                    <polygon class="chart-band" points=band/>
                    <polyline class="chart-line" points=line/>
                }
                .into_any()
            }
        })
        .collect_view();
    let failed: u32 = rollups.iter().map(|r| r.critical).sum();
    let label = format!(
        "Latency over the last {}: highest {}; {failed} failed probes",
        crate::ui::chart::range_text(range),
        duration_ms(max.round() as i64)
    );
    let content = view! { {marks} {shapes} }.into_any();
    view! {
        {frame("check-chart", label, range, duration_ms(ymax as i64), duration_ms((ymax / 2.0) as i64), content)}
        <div class="legend small">
            <span class="legend-item"><span class="swatch swatch-line" aria-hidden="true"></span>"average latency"</span>
            <span class="legend-item"><span class="swatch swatch-band" aria-hidden="true"></span>"min–max"</span>
            <span class="legend-item"><span class="swatch swatch-fail" aria-hidden="true"></span>"failed"</span>
            <span class="legend-item"><span class="swatch swatch-warn" aria-hidden="true"></span>"warning"</span>
            <span class="muted">{if h.resolution == "hour" { "per hour" } else { "per minute" }}</span>
        </div>
    }
    .into_any()
}

/// A check's history: latency chart for a day, a week or a month, uptime
/// figures and the state changes.
#[component]
pub fn CheckHistoryView(check: Check, on_close: Callback<()>) -> impl IntoView {
    let id = check.id;
    let range = RwSignal::new("day");
    let reload = RwSignal::new(0u32);
    let history = LocalResource::new(move || {
        reload.get();
        let r = range.get();
        async move { api::checks::history(id, r).await }
    });
    use_interval(Duration::from_secs(60), move || {
        reload.try_update(|n| *n += 1);
    });
    let heartbeat = check.heartbeat_path.clone();
    view! {
        <section class="history" data-testid="check-history" aria-label=format!("History of {}", check.name)>
            <div class="card-head">
                <h2>"History of "{check.name.clone()}</h2>
                <div class="btn-row" role="group" aria-label="Range">
                    {[("day", "24 hours"), ("week", "7 days"), ("month", "30 days")].into_iter().map(|(r, label)| view! {
                        <button type="button" class="btn btn-small" data-testid=format!("history-range-{r}")
                            class:btn-active=move || range.get() == r aria-pressed=move || (range.get() == r).to_string()
                            on:click=move |_| range.set(r)>{label}</button>
                    }).collect_view()}
                </div>
                <span class="spacer"></span>
                <button type="button" class="btn btn-ghost btn-small" data-testid="history-close" on:click=move |_| on_close.run(())>"Close ✕"</button>
            </div>
            <p class="muted small">{kind_label(check.spec.kind())}" · "{target_of(&check.spec)}" · every "{check.interval_s}" s"</p>
            {heartbeat.map(|p| view! { <HeartbeatUrl path=p/> })}
            <Transition fallback=|| view! { <Loading rows=3/> }>
                {move || history.get().map(|r| match r {
                    Err(e) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                    Ok(h) => {
                        let r = range.get_untracked();
                        let mut events = h.events.clone();
                        events.sort_by_key(|e| std::cmp::Reverse(e.at));
                        view! {
                            <dl class="uptime-figures" data-testid="check-uptime">
                                <div><dt>"Uptime 24 h"</dt><dd data-testid="uptime-day">{uptime_text(h.uptime.day)}</dd></div>
                                <div><dt>"7 days"</dt><dd data-testid="uptime-week">{uptime_text(h.uptime.week)}</dd></div>
                                <div><dt>"30 days"</dt><dd data-testid="uptime-month">{uptime_text(h.uptime.month)}</dd></div>
                            </dl>
                            {if h.rollups.is_empty() {
                                view! { <EmptyState title="No probes in this range yet"><p>"The chart fills as the check runs."</p></EmptyState> }.into_any()
                            } else {
                                history_chart(&h, r)
                            }}
                            <h3>"State changes"</h3>
                            {if events.is_empty() {
                                view! { <p class="muted" data-testid="check-events">"No state changes in this range."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="table" data-testid="check-events">
                                        <thead><tr><th>"When"</th><th>"Change"</th><th>"Message"</th></tr></thead>
                                        <tbody>{events.into_iter().map(|e| view! {
                                            <tr>
                                                <td class="nowrap"><RelTime at=Some(e.at)/></td>
                                                <td class="nowrap"><CheckStatusPill status=e.from/>" → "<CheckStatusPill status=e.to/></td>
                                                <td class="wrap-anywhere">{e.message.clone()}</td>
                                            </tr>
                                        }).collect_view()}</tbody>
                                    </table></div>
                                }.into_any()
                            }}
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
    }
}
