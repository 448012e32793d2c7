//! The daily check report (`/reports`): the morning checklist the server
//! writes every day (containers, disk, memory, database connections,
//! service health, backups). The list of reports, the selected report (the
//! newest by default, `?id=` otherwise) with its items grouped by section,
//! and "Generate now" for operators.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use opsdeck_wire::{CheckStatus, Report, ReportItem, Role};

use crate::api;
use crate::session::current_role;
use crate::states::CheckStatusPill;
use crate::time::RelTime;
use crate::ui::{EmptyState, ErrorState, Loading};

/// Sections in checklist order, with their titles.
const SECTIONS: [(&str, &str); 7] = [
    ("containers", "Containers"),
    ("disk", "Disk"),
    ("memory", "Memory"),
    ("db_connections", "Database connections"),
    ("service_health", "Service health"),
    ("logs", "Errors in the logs (24 h)"),
    ("backups", "Backups"),
];

fn section_title(key: &str) -> String {
    SECTIONS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, t)| t.to_string())
        .unwrap_or_else(|| {
            let mut t = key.replace('_', " ");
            if let Some(c) = t.get_mut(0..1) {
                c.make_ascii_uppercase();
            }
            t
        })
}

fn trigger_text(trigger: &str) -> String {
    if trigger == "schedule" {
        "scheduled".into()
    } else {
        format!("by {trigger}")
    }
}

/// Items grouped by section: known sections in checklist order, then any
/// other, in the order they come.
fn grouped(items: &[ReportItem]) -> Vec<(String, Vec<ReportItem>)> {
    let mut keys: Vec<String> = SECTIONS.iter().map(|(k, _)| k.to_string()).collect();
    for i in items {
        if !keys.contains(&i.section) {
            keys.push(i.section.clone());
        }
    }
    keys.into_iter()
        .filter_map(|k| {
            let list: Vec<ReportItem> = items.iter().filter(|i| i.section == k).cloned().collect();
            (!list.is_empty()).then_some((k, list))
        })
        .collect()
}

#[component]
pub fn Reports() -> impl IntoView {
    let role = current_role();
    let reload = RwSignal::new(0u32);
    let query = use_query_map();
    let navigate = use_navigate();
    let list = LocalResource::new(move || {
        reload.get();
        api::reports::list()
    });
    let list = Memo::new(move |_| {
        list.get().map(|r| {
            r.map(|mut v| {
                v.sort_by(|a, b| b.day.cmp(&a.day).then(b.generated_at.cmp(&a.generated_at)));
                v
            })
        })
    });
    let asked = Memo::new(move |_| query.with(|q| q.get("id").and_then(|s| s.parse::<i64>().ok())));
    let current = Memo::new(move |_| {
        asked.get().or_else(|| {
            list.with(|l| {
                l.as_ref()
                    .and_then(|r| r.as_ref().ok())
                    .and_then(|v| v.first().map(|s| s.id))
            })
        })
    });
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<String, String>>);
    // A report just generated: shown without fetching it again.
    let fresh = RwSignal::new(None::<Report>);

    let generate = move |_| {
        busy.set(true);
        notice.set(None);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::reports::create().await {
                Ok(r) => {
                    let id = r.id;
                    fresh.try_set(Some(r));
                    notice.try_set(Some(Ok("Report generated.".into())));
                    reload.try_update(|n| *n += 1);
                    navigate(&format!("/reports?id={id}"), NavigateOptions::default());
                }
                Err(e) => {
                    notice.try_set(Some(Err(e.message)));
                }
            }
            busy.try_set(false);
        });
    };

    view! {
        <div class="page-head">
            <h1>"Daily reports"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/reports/incidents" data-testid="incident-reports-link">"▤ Incident reports"</a>
            <a class="btn" href="/reports/capacity" data-testid="capacity-report-link">"▤ Capacity"</a>
            {(role >= Role::Operator).then(|| view! {
                <button class="btn btn-primary" data-testid="report-generate" disabled=move || busy.get() on:click=generate>
                    {move || if busy.get() { "Generating…" } else { "Generate now" }}
                </button>
            })}
        </div>
        <p class="lede">"The morning checklist: containers, disk, memory, database connections, service health and backups, written every day."</p>
        {move || notice.get().map(|n| match n {
            Ok(m) => view! { <div class="notice notice-ok" role="status">{m}</div> }.into_any(),
            Err(m) => view! { <div class="notice notice-error" role="alert">{m}</div> }.into_any(),
        })}
        {move || match list.get() {
            None => view! { <Loading rows=4/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
            Some(Ok(v)) if v.is_empty() => view! {
                <div data-testid="report-list" data-count="0">
                    <EmptyState title="No reports yet">
                        <p>"A report is written every day at the time an admin sets on the Checks page"
                        {(role >= Role::Operator).then_some("; or generate one now")}"."</p>
                    </EmptyState>
                </div>
            }.into_any(),
            Some(Ok(v)) => { let count = v.len().to_string(); view! {
                <div class="reports-layout">
                    <div class="table-wrap" data-testid="report-list" data-count=count><table class="table">
                        <thead><tr><th>"Day"</th><th>"Overall"</th><th class="num">"Problems"</th><th>"Trigger"</th><th>"Generated"</th></tr></thead>
                        <tbody>{v.into_iter().map(|s| {
                            let id = s.id;
                            view! {
                                <tr data-testid=format!("report-row-{}", s.day) class:row-selected=move || current.get() == Some(id)>
                                    <td class="nowrap"><a class="strong-link" href=format!("/reports?id={id}")
                                        aria-current=move || (current.get() == Some(id)).then_some("true")>{s.day.format("%a %Y-%m-%d").to_string()}</a></td>
                                    <td><CheckStatusPill status=s.overall/></td>
                                    <td class="num" class:warn-text={s.problems > 0}>{s.problems}</td>
                                    <td>{trigger_text(&s.trigger)}</td>
                                    <td class="nowrap"><RelTime at=Some(s.generated_at)/></td>
                                </tr>
                            }
                        }).collect_view()}</tbody>
                    </table></div>
                    <ReportView id=current fresh/>
                </div>
            }.into_any() }
        }}
    }
}

#[component]
fn ReportView(id: Memo<Option<i64>>, fresh: RwSignal<Option<Report>>) -> impl IntoView {
    let report = LocalResource::new(move || {
        let id = id.get();
        let known = fresh.with_untracked(|f| f.clone().filter(|r| Some(r.id) == id));
        async move {
            match (id, known) {
                (_, Some(r)) => Ok(Some(r)),
                (Some(id), None) => api::reports::get_one(id).await.map(Some),
                (None, None) => Ok(None),
            }
        }
    });
    view! {
        <Transition fallback=|| view! { <Loading rows=4/> }>
            {move || report.get().map(|r| match r {
                Err(e) => view! { <ErrorState title="Cannot show this report" message=e.message/> }.into_any(),
                Ok(None) => ().into_any(),
                Ok(Some(r)) => {
                    let problems = r.items.iter().filter(|i| i.status >= CheckStatus::Warning).count();
                    view! {
                        <section class="card report" data-testid="report-view" data-report-id=r.id.to_string()>
                            <div class="card-head">
                                <h2>"Report of "{r.day.format("%A %Y-%m-%d").to_string()}</h2>
                                <CheckStatusPill status=r.overall testid="report-overall"/>
                                <span class="spacer"></span>
                                <span class="muted small">{trigger_text(&r.trigger)}" · "<RelTime at=Some(r.generated_at)/></span>
                            </div>
                            <p class="summary">{if problems == 0 {
                                view! { <span class="ok-text">"✓ Nothing needs attention."</span> }.into_any()
                            } else {
                                view! { <span class="problem-text">{format!("▲ {problems} item{} need{} attention.", if problems == 1 { "" } else { "s" }, if problems == 1 { "s" } else { "" })}</span> }.into_any()
                            }}</p>
                            {if r.items.is_empty() {
                                view! { <p class="muted">"This report has no items."</p> }.into_any()
                            } else {
                                grouped(&r.items).into_iter().map(|(key, items)| view! {
                                    <div class="report-section" data-testid=format!("report-section-{key}")>
                                        <h3>{section_title(&key)}</h3>
                                        <ul class="report-items">
                                            {items.into_iter().map(|i| view! {
                                                <li class="report-item" data-testid="report-item" data-status=i.status.as_str()>
                                                    <CheckStatusPill status=i.status/>
                                                    <strong>{i.name.clone()}</strong>
                                                    <span class="muted wrap-anywhere">{i.detail.clone()}</span>
                                                </li>
                                            }).collect_view()}
                                        </ul>
                                    </div>
                                }).collect_view().into_any()
                            }}
                        </section>
                    }.into_any()
                }
            })}
        </Transition>
    }
}
