//! The catalog: backups newest first, filtered by plan and status (kept in
//! the address: `?plan=…&status=…`), each row linking to its page.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use opsdeck_wire::{BackupStatus, BackupSummary};

use super::{in_progress, trigger_text, BackupStatusPill, PageData, Sizes, VerificationPill, When};
use crate::api::{self, enc, ApiError};

use crate::time::{human_secs, LiveTime};
use crate::ui::{EmptyState, ErrorState, Loading};

const STATUSES: [BackupStatus; 4] = [
    BackupStatus::Running,
    BackupStatus::Succeeded,
    BackupStatus::Failed,
    BackupStatus::Interrupted,
];

#[component]
pub(super) fn Catalog(data: PageData) -> impl IntoView {
    let query = use_query_map();
    let navigate = use_navigate();
    let plan = Memo::new(move |_| query.with(|q| q.get("plan").unwrap_or_default()));
    let status = Memo::new(move |_| {
        query.with(|q| {
            q.get("status")
                .filter(|s| BackupStatus::parse(s).is_some())
                .unwrap_or_default()
        })
    });

    let state = RwSignal::new(None::<Result<Vec<BackupSummary>, ApiError>>);
    let stale = RwSignal::new(None::<String>);
    let seq = StoredValue::new(0u64);
    let load = move || {
        let p = plan.get_untracked();
        let s = status.get_untracked();
        let mine = seq.get_value() + 1;
        seq.set_value(mine);
        leptos::task::spawn_local(async move {
            let r = api::backups::list(&p, &s).await;
            if seq.try_get_value() != Some(mine) {
                return;
            }
            let had = state
                .try_with_untracked(|s| matches!(s, Some(Ok(_))))
                .unwrap_or(false);
            match r {
                // Keep what is shown through a passing network error.
                Err(e) if had && e.status == 0 => {
                    stale.try_set(Some(e.message));
                }
                Ok(v) => {
                    stale.try_set(None);
                    data.catalog_busy.try_set(v.iter().any(in_progress));
                    if state.try_with_untracked(|s| s.as_ref() != Some(&Ok(v.clone())))
                        == Some(true)
                    {
                        state.try_set(Some(Ok(v)));
                    }
                }
                Err(e) => {
                    state.try_set(Some(Err(e)));
                }
            }
        });
    };
    // A new filter or a reload: fetch (the skeleton only on the first load).
    Effect::new(move |_| {
        plan.track();
        status.track();
        data.catalog_reload.track();
        load();
    });

    let set_query = move |plan: String, status: String| {
        let mut parts = Vec::new();
        if !plan.is_empty() {
            parts.push(format!("plan={}", enc(&plan)));
        }
        if !status.is_empty() {
            parts.push(format!("status={}", enc(&status)));
        }
        let url = if parts.is_empty() {
            "/backups".to_string()
        } else {
            format!("/backups?{}", parts.join("&"))
        };
        navigate(
            &url,
            NavigateOptions {
                replace: true,
                scroll: false,
                ..Default::default()
            },
        );
    };
    let on_plan = {
        let set_query = set_query.clone();
        move |e: leptos::ev::Event| set_query(event_target_value(&e), status.get_untracked())
    };
    let on_status = {
        let set_query = set_query.clone();
        move |e: leptos::ev::Event| set_query(plan.get_untracked(), event_target_value(&e))
    };
    let clear = move |_| set_query(String::new(), String::new());
    let filtered = move || !plan.get().is_empty() || !status.get().is_empty();
    // The plans to filter by: the plans, and plans of backups shown (a
    // deleted plan's backups stay).
    let plan_names = Memo::new(move |_| {
        let mut names: Vec<String> = data.plan_list().into_iter().map(|p| p.def.name).collect();
        state.with(|s| {
            if let Some(Ok(v)) = s {
                names.extend(v.iter().map(|b| b.plan.clone()));
            }
        });
        let current = plan.get();
        if !current.is_empty() {
            names.push(current);
        }
        names.sort();
        names.dedup();
        names
    });
    let now = data.now;
    // What the section shows: loading, error, empty, the table.
    let phase = Memo::new(move |_| {
        state.with(|s| match s {
            None => 0,
            Some(Err(_)) => 1,
            Some(Ok(v)) if v.is_empty() => 2,
            Some(Ok(_)) => 3,
        })
    });

    view! {
        <section class="card backup-section" data-testid="backups-catalog">
            <div class="card-head">
                <h2>"Catalog"</h2>
                {move || state.with(|s| match s {
                    Some(Ok(v)) if !v.is_empty() => Some(view! { <span class="count" title="Backups matching the filters (newest 200)">{v.len()}</span> }),
                    _ => None,
                })}
                <span class="spacer"></span>
                <div class="toolbar backup-filters">
                    <select aria-label="Plan filter" data-testid="backups-filter-plan" on:change=on_plan>
                        <option value="" prop:selected=move || plan.with(String::is_empty)>"All plans"</option>
                        {move || plan_names.get().into_iter().map(|n| {
                            let n2 = n.clone();
                            let label = n.clone();
                            view! { <option value=n prop:selected=move || plan.with(|p| *p == n2)>{label}</option> }
                        }).collect_view()}
                    </select>
                    <select aria-label="Status filter" data-testid="backups-filter-status" on:change=on_status>
                        <option value="" prop:selected=move || status.with(String::is_empty)>"All statuses"</option>
                        {STATUSES.into_iter().map(|s| view! {
                            <option value=s.as_str() prop:selected=move || status.with(|c| c == s.as_str())>{s.as_str()}</option>
                        }).collect_view()}
                    </select>
                </div>
            </div>
            {move || stale.get().map(|m| view! { <div class="notice notice-error" role="alert">"Showing the last known catalog: "{m}</div> })}
            {move || match phase.get() {
                0 => view! { <Loading rows=4/> }.into_any(),
                1 => {
                    let message = state
                        .with_untracked(|s| s.as_ref().and_then(|r| r.as_ref().err()).map(|e| e.message.clone()))
                        .unwrap_or_default();
                    view! { <ErrorState title="Cannot list the backups" message retry=Callback::new(move |_| load())/> }.into_any()
                }
                2 => {
                    let clear = clear.clone();
                    (move || if filtered() {
                        let clear = clear.clone();
                        view! {
                            <div data-testid="backups-table" data-count="0">
                                <EmptyState title="No backups match">
                                    <p>"Nothing with these filters (deleted backups are left out)."</p>
                                    <button class="btn" on:click=clear>"Show all backups"</button>
                                </EmptyState>
                            </div>
                        }.into_any()
                    } else {
                        view! {
                            <div data-testid="backups-table" data-count="0">
                                <EmptyState title="No backups yet">
                                    <p>{if data.operator {
                                        "Start one with Run now on a plan; it appears here at once and its run page shows its progress."
                                    } else {
                                        "Backups appear here once an operator runs a plan."
                                    }}</p>
                                </EmptyState>
                            </div>
                        }.into_any()
                    }).into_any()
                }
                _ => view! { <CatalogTable state now/> }.into_any(),
            }}
        </section>
    }
}

#[component]
fn CatalogTable(
    state: RwSignal<Option<Result<Vec<BackupSummary>, ApiError>>>,
    now: RwSignal<DateTime<Utc>>,
) -> impl IntoView {
    let items = move || {
        state.with(|s| match s {
            Some(Ok(v)) => v.clone(),
            _ => Vec::new(),
        })
    };
    let count = move || {
        state.with(|s| match s {
            Some(Ok(v)) => v.len().to_string(),
            _ => "0".into(),
        })
    };
    view! {
        <div class="table-wrap">
            <table class="table backups-table" data-testid="backups-table" data-count=count>
                <thead><tr>
                    <th>"Backup"</th><th>"Status"</th><th class="num">"Size"</th>
                    <th>"Started"</th><th>"Duration"</th><th>"Requested by"</th><th>"Error"</th>
                </tr></thead>
                <tbody>
                    <For each=items key=|b| (b.id, b.status.as_str(), b.verification.as_str(), b.bytes, b.raw_bytes, b.finished_at, b.error.clone(), b.verify_error.clone()) children=move |b| view! { <BackupRow b now/> }/>
                </tbody>
            </table>
        </div>
    }
}

#[component]
fn BackupRow(b: BackupSummary, now: RwSignal<DateTime<Utc>>) -> impl IntoView {
    let id = b.id;
    let started = b.started_at;
    let running = b.status == BackupStatus::Running;
    let duration = match b.finished_at {
        Some(end) => view! { <span class="nowrap">{human_secs((end - started).num_seconds())}</span> }.into_any(),
        None if running => view! {
            <span class="nowrap backup-elapsed">{move || human_secs((now.get() - started).num_seconds())}</span>
        }.into_any(),
        None => view! { <span class="muted">"—"</span> }.into_any(),
    };
    let error = b
        .error
        .clone()
        .or_else(|| b.verify_error.clone().map(|e| format!("verification: {e}")));
    view! {
        <tr data-testid=format!("backup-row-{id}") data-status=b.status.as_str() data-verification=b.verification.as_str()
            class=format!("backup-row backup-row-{}", b.status.as_str())>
            <td class="cell-main">
                <a class="strong-link" href=format!("/backups/{id}") data-testid=format!("backup-link-{id}")>"#"{id}" "{b.plan.clone()}</a>
                <div class="muted small wrap-anywhere">"→ "{b.target.clone()}</div>
            </td>
            <td><div class="backup-pills">
                <BackupStatusPill status=b.status testid=format!("backup-status-{id}")/>
                <VerificationPill verification=b.verification testid=format!("backup-verification-{id}") title=b.verify_error.clone()/>
            </div></td>
            <td class="num"><Sizes stored=b.bytes raw=b.raw_bytes running/></td>
            <td class="nowrap">
                <When at=started/>
                <div class="muted small"><LiveTime at=started now/></div>
            </td>
            <td>{duration}</td>
            <td data-testid=format!("backup-requested-{id}")>
                <span class="wrap-anywhere">{b.requested_by.clone()}</span>
                <div class="muted small nowrap" data-trigger=b.trigger.clone()>{trigger_text(&b.trigger).to_string()}</div>
            </td>
            <td class="backup-error-cell">{match error {
                None => view! { <span class="muted">"—"</span> }.into_any(),
                Some(e) => view! { <span class="error-text small clamp wrap-anywhere backup-error" title=e.clone()>{e.clone()}</span> }.into_any(),
            }}</td>
        </tr>
    }
}
