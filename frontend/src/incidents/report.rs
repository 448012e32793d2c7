//! Incident reports (`/reports/incidents`): for the last 7, 30 or 90 days,
//! the number of incidents, mean time to acknowledge and to resolve, SLA
//! breaches, incidents per week, and the same figures by severity and by
//! service (with the service's uptime). CSV download of the same period.

use chrono::{DateTime, Duration, Utc};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use opsdeck_wire::{IncidentReport, ReportRow, Severity};

use super::SeverityPill;
use crate::api;

use crate::time::{mean_text, now_utc};
use crate::ui::{EmptyState, ErrorState, Loading};

const PERIODS: [i64; 3] = [7, 30, 90];

fn uptime_text(u: Option<f64>) -> (String, &'static str) {
    match u {
        None => ("—".into(), "muted"),
        Some(u) => {
            let pct = u * 100.0;
            let text = if pct >= 99.995 {
                "100%".to_string()
            } else {
                format!("{pct:.2}%")
            };
            let class = if pct >= 99.9 {
                "ok-text"
            } else if pct >= 99.0 {
                "warn-text"
            } else {
                "error-text"
            };
            (text, class)
        }
    }
}

#[component]
pub fn IncidentReports() -> impl IntoView {
    let query = use_query_map();
    let days = Memo::new(move |_| {
        query.with(|q| {
            q.get("days")
                .and_then(|d| d.parse::<i64>().ok())
                .filter(|d| PERIODS.contains(d))
                .unwrap_or(30)
        })
    });
    // The period ends now (to the minute) when it is chosen.
    let range = Memo::new(move |_| {
        let minute = (now_utc().timestamp() / 60 + 1) * 60;
        let to = DateTime::<Utc>::from_timestamp(minute, 0).unwrap_or_else(now_utc);
        (to - Duration::days(days.get()), to)
    });
    let report = LocalResource::new(move || {
        let (from, to) = range.get();
        async move { api::reports::incidents(from, to).await }
    });
    let csv = move || {
        let (from, to) = range.get();
        api::reports::incidents_csv_url(from, to)
    };

    view! {
        <nav class="crumbs"><a href="/reports">"Reports"</a>" / "<span>"Incidents"</span></nav>
        <div class="page-head">
            <h1>"Incident reports"</h1>
            <span class="spacer"></span>
            <div class="segmented" role="group" aria-label="Period">
                {PERIODS.into_iter().map(|d| view! {
                    <a class="btn btn-small" class:btn-active=move || days.get() == d
                        aria-current=move || (days.get() == d).then_some("true")
                        data-testid=format!("period-{d}") href=format!("/reports/incidents?days={d}")>{format!("{d} days")}</a>
                }).collect_view()}
            </div>
            <a class="btn" data-testid="report-csv" href=csv download="">"⤓ Download CSV"</a>
        </div>
        <p class="lede">"How often things broke, how fast somebody picked them up and fixed them, and which SLA targets were missed."</p>
        <Transition fallback=|| view! { <Loading rows=6/> }>
            {move || report.get().map(|r| match r {
                Err(e) => view! { <ErrorState title="Cannot show the report" message=e.message retry=Callback::new(move |_| report.refetch())/> }.into_any(),
                Ok(r) => view! { <ReportView r/> }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn ReportView(r: IncidentReport) -> impl IntoView {
    let span = format!(
        "{} – {}",
        r.from.format("%Y-%m-%d"),
        r.to.format("%Y-%m-%d")
    );
    let max = r.weeks.iter().map(|w| w.count).max().unwrap_or(0).max(1);
    view! {
        <div class="report-totals" data-testid="incident-report">
            <div class="card stat"><span class="stat-label">"Incidents"</span><span class="stat-value" data-testid="report-total">{r.total}</span></div>
            <div class="card stat" title="Mean time to acknowledge"><span class="stat-label">"MTTA"</span><span class="stat-value">{mean_text(r.mtta_secs)}</span></div>
            <div class="card stat" title="Mean time to resolve"><span class="stat-label">"MTTR"</span><span class="stat-value">{mean_text(r.mttr_secs)}</span></div>
            <div class="card stat"><span class="stat-label">"SLA breaches"</span>
                <span class="stat-value" class:error-text={r.breaches > 0}>{r.breaches}</span></div>
        </div>
        <p class="muted small">{span}</p>
        {if r.total == 0 {
            view! {
                <EmptyState title="No incidents in this period">
                    <p>"Nothing was declared or detected. Choose a longer period, or see "<a href="/incidents?status=all">"every incident"</a>"."</p>
                </EmptyState>
            }.into_any()
        } else {
            view! {
                <section class="card">
                    <h2>"Incidents per week"</h2>
                    <ul class="week-bars" data-testid="report-weeks">
                        {r.weeks.iter().map(|w| {
                            let pct = (w.count as f64 / max as f64 * 100.0).max(0.0);
                            view! {
                                <li class="week-row">
                                    <span class="muted small nowrap" title=format!("ISO week starting {}", w.week)>{w.week.format("%d %b").to_string()}</span>
                                    <svg class="week-bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">
                                        <rect width=format!("{pct:.2}") height="10" rx="1"></rect>
                                    </svg>
                                    <span class="num week-count">{w.count}</span>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                </section>
                <section class="card">
                    <h2>"By severity"</h2>
                    <RowsTable rows=r.by_severity.clone() first="Severity" uptime=false/>
                </section>
                <section class="card">
                    <h2>"By service"</h2>
                    {if r.by_service.is_empty() {
                        view! { <p class="muted">"No incident named a service."</p> }.into_any()
                    } else {
                        view! { <RowsTable rows=r.by_service.clone() first="Service" uptime=true/> }.into_any()
                    }}
                </section>
            }.into_any()
        }}
    }
}

#[component]
fn RowsTable(rows: Vec<ReportRow>, first: &'static str, uptime: bool) -> impl IntoView {
    view! {
        <div class="table-wrap">
            <table class="table report-table">
                <thead><tr>
                    <th>{first}</th><th class="num">"Incidents"</th><th class="num">"MTTA"</th><th class="num">"MTTR"</th>
                    <th class="num">"SLA breaches"</th>{uptime.then(|| view! { <th class="num">"Uptime"</th> })}
                </tr></thead>
                <tbody>
                    {rows.into_iter().map(|row| {
                        let sev = Severity::ALL.into_iter().find(|s| s.as_str() == row.key);
                        let (up, up_class) = uptime_text(row.uptime);
                        view! {
                            <tr data-testid=format!("report-row-{}", row.key)>
                                <td>{match sev {
                                    Some(s) if !uptime => view! { <SeverityPill severity=s long=true/> }.into_any(),
                                    _ => view! { <strong>{row.key.clone()}</strong> }.into_any(),
                                }}</td>
                                <td class="num">{row.incidents}</td>
                                <td class="num">{mean_text(row.mtta_secs)}</td>
                                <td class="num">{mean_text(row.mttr_secs)}</td>
                                <td class="num" class:error-text={row.sla_breaches > 0}>{row.sla_breaches}</td>
                                {uptime.then(|| view! { <td class=format!("num {up_class}")>{up}</td> })}
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
}
