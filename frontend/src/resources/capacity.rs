//! The monthly capacity report (`/reports/capacity?month=YYYY-MM`):
//! average and peak CPU and memory per service and for the host, disk
//! growth per mount, the change from the month before; top growers first.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use opsdeck_wire::CapacityRow;

use super::{pct, size};
use crate::api;
use crate::ui::{EmptyState, ErrorState, Loading};

fn opt<T>(v: Option<T>, f: impl Fn(T) -> String) -> String {
    v.map(f).unwrap_or_else(|| "—".into())
}

fn change(v: Option<f64>) -> String {
    opt(v, |c| format!("{}{c:.0} %", if c > 0.0 { "+" } else { "" }))
}

fn what(r: &CapacityRow) -> AnyView {
    match r.service_id {
        Some(id) => view! { <a href=format!("/services/{id}")>{r.label.clone()}</a> }.into_any(),
        None => view! { <a href="/hosts/local">{r.label.clone()}</a> }.into_any(),
    }
}

fn rows_table(rows: Vec<CapacityRow>, testid: &'static str) -> AnyView {
    view! {
        <div class="table-wrap"><table class="table" data-testid=testid>
            <thead><tr>
                <th>"Service / resource"</th><th>"CPU avg"</th><th>"CPU peak"</th>
                <th>"Memory avg"</th><th>"Memory peak"</th><th>"Disk used"</th><th>"Disk growth"</th>
                <th>"Change vs last month"</th>
            </tr></thead>
            <tbody>{rows.into_iter().map(|r| view! {
                <tr data-testid="capacity-row">
                    <td>{what(&r)}</td>
                    <td class="nowrap">{opt(r.cpu_avg, pct)}</td>
                    <td class="nowrap">{opt(r.cpu_peak, pct)}</td>
                    <td class="nowrap">{opt(r.mem_avg, size)}</td>
                    <td class="nowrap">{opt(r.mem_peak, |v| size(v as f64))}</td>
                    <td class="nowrap">{match (r.disk_used, r.disk_total) {
                        (Some(u), Some(t)) => format!("{} of {}", size(u as f64), size(t as f64)),
                        _ => "—".into(),
                    }}</td>
                    <td class="nowrap">{opt(r.disk_growth, |g| format!("{}{}", if g >= 0 { "+" } else { "−" }, size(g.abs() as f64)))}</td>
                    <td class="nowrap" data-testid="capacity-change">{change(r.change_pct)}</td>
                </tr>
            }).collect_view()}</tbody>
        </table></div>
    }
    .into_any()
}

/// The report page: a month picker, the top growers, every row.
#[component]
pub fn CapacityPage() -> impl IntoView {
    let query = use_query_map();
    let navigate = use_navigate();
    let month = Memo::new(move |_| query.with(|q| q.get("month").unwrap_or_default()));
    let reload = RwSignal::new(0u32);
    let report = LocalResource::new(move || {
        reload.get();
        let m = month.get();
        async move { api::resources::capacity(&m).await }
    });
    let pick = move |ev: leptos::ev::Event| {
        let v = event_target_value(&ev);
        navigate(
            &format!("/reports/capacity?month={v}"),
            NavigateOptions::default(),
        );
    };
    view! {
        <nav class="crumbs"><a href="/reports">"Reports"</a></nav>
        <h1>"Capacity"</h1>
        <p class="lede">"Each month's average and peak CPU and memory per service and for the host, disk growth per mount, and the change from the month before, from the hourly resource history. Growth ranks the rows: memory's change for services and the host, the month's growth as a share of the disk for mounts."</p>
        <label class="inline-field">
            <span>"Month"</span>
            <input type="month" data-testid="capacity-month" prop:value=move || month.get() on:change=pick/>
        </label>
        <Transition fallback=|| view! { <Loading rows=4/> }>
            {move || report.get().map(|r| match r {
                Err(e) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                Ok(rep) if rep.rows.is_empty() => view! {
                    <h2>{rep.month.clone()}</h2>
                    <EmptyState title="No resource history for this month"><p>"The report fills as Opsdeck samples the services and the host."</p></EmptyState>
                }.into_any(),
                Ok(rep) => view! {
                    <h2>{rep.month.clone()}</h2>
                    <section class="card section">
                        <h3>"Top growers"</h3>
                        {if rep.top_growers.is_empty() {
                            view! { <p class="muted">"Nothing grew compared with the month before."</p> }.into_any()
                        } else {
                            rows_table(rep.top_growers.clone(), "capacity-top")
                        }}
                    </section>
                    <section class="card section">
                        <h3>"Everything"</h3>
                        {rows_table(rep.rows.clone(), "capacity-all")}
                    </section>
                }.into_any(),
            })}
        </Transition>
    }
}
