//! The incident list (`/incidents`): filters in the address (`status`,
//! `severity`, `q`), live through the incidents stream ([`crate::api::incidents::events_url`]) (each event
//! is a changed incident: it is updated in place, added when it matches the
//! filters, dropped when it no longer does). Operators declare incidents
//! here.

use std::time::Duration;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use opsdeck_wire::{Incident, IncidentList, IncidentStatus, NewIncident, Role, Severity};

use super::{follow_page, sla_badge, IncidentStatusPill, LiveState, SeverityPill};
use crate::api::{self, enc, ApiError};
use crate::session::current_role;
use crate::time::{human_secs, use_now, LiveTime};
use crate::ui::{EmptyState, ErrorState, Loading};

/// Whether an incident belongs in a list with these filters (`q` matches
/// the title or the summary, as the server's search does; a live update
/// keeps a row already shown whatever its text).
fn matches(inc: &Incident, status: &str, severity: &str, q: &str, shown: bool) -> bool {
    let status_ok = match status {
        "open" | "" => inc.status.is_open(),
        "closed" => !inc.status.is_open(),
        "all" => true,
        s => inc.status.as_str() == s,
    };
    let severity_ok = severity.is_empty() || inc.severity.as_str() == severity;
    let q = q.trim().to_lowercase();
    let q_ok = shown
        || q.is_empty()
        || inc.title.to_lowercase().contains(&q)
        || inc.summary.to_lowercase().contains(&q);
    status_ok && severity_ok && q_ok
}

#[component]
pub fn Incidents() -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let query = use_query_map();
    let navigate = use_navigate();
    let status = Memo::new(move |_| {
        query.with(|q| {
            q.get("status")
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| "open".into())
        })
    });
    let severity = Memo::new(move |_| query.with(|q| q.get("severity").unwrap_or_default()));
    let q_text = Memo::new(move |_| query.with(|q| q.get("q").unwrap_or_default()));
    let search = RwSignal::new(q_text.get_untracked());

    let state = RwSignal::new(None::<Result<IncidentList, ApiError>>);
    let seq = StoredValue::new(0u64);
    let load = move || {
        let st = status.get_untracked();
        let sev = severity.get_untracked();
        let q = q_text.get_untracked();
        let mine = seq.get_value() + 1;
        seq.set_value(mine);
        leptos::task::spawn_local(async move {
            let r = api::incidents::list(&st, &sev, &q).await;
            if seq.try_get_value() != Some(mine) {
                return;
            }
            let had = state
                .try_with_untracked(|s| matches!(s, Some(Ok(_))))
                .unwrap_or(false);
            match r {
                Err(e) if had && e.status == 0 => {}
                r => {
                    state.try_set(Some(r));
                }
            }
        });
    };
    // A new filter: start over (the skeleton only on the first load).
    Effect::new(move |_| {
        status.track();
        severity.track();
        q_text.track();
        load();
    });

    let apply = move |inc: Incident| {
        let (st, sev, q) = (
            status.get_untracked(),
            severity.get_untracked(),
            q_text.get_untracked(),
        );
        state.update(|s| {
            let Some(Ok(list)) = s else { return };
            match list.items.iter().position(|i| i.id == inc.id) {
                Some(pos) => {
                    if matches(&inc, &st, &sev, &q, true) {
                        list.items[pos] = inc;
                    } else {
                        list.items.remove(pos);
                        list.total = (list.total - 1).max(0);
                    }
                }
                None if matches(&inc, &st, &sev, &q, false) => {
                    list.items.push(inc);
                    list.total += 1;
                }
                None => {}
            }
            list.items
                .sort_by(|a, b| b.triggered_at.cmp(&a.triggered_at).then(b.id.cmp(&a.id)));
        });
    };
    let connected = follow_page(
        api::incidents::events_url(),
        "incident",
        move |data| match serde_json::from_str::<Incident>(&data) {
            Ok(inc) => apply(inc),
            Err(_) => load(),
        },
        load,
    );
    let now = use_now();

    let set_query = move |status: String, severity: String, q: String| {
        let mut parts = Vec::new();
        if status != "open" {
            parts.push(format!("status={}", enc(&status)));
        }
        if !severity.is_empty() {
            parts.push(format!("severity={}", enc(&severity)));
        }
        if !q.trim().is_empty() {
            parts.push(format!("q={}", enc(q.trim())));
        }
        let url = if parts.is_empty() {
            "/incidents".to_string()
        } else {
            format!("/incidents?{}", parts.join("&"))
        };
        navigate(
            &url,
            NavigateOptions {
                replace: true,
                ..Default::default()
            },
        );
    };
    let on_status = {
        let set_query = set_query.clone();
        move |e: leptos::ev::Event| {
            set_query(
                event_target_value(&e),
                severity.get_untracked(),
                q_text.get_untracked(),
            )
        }
    };
    let on_severity = {
        let set_query = set_query.clone();
        move |e: leptos::ev::Event| {
            set_query(
                status.get_untracked(),
                event_target_value(&e),
                q_text.get_untracked(),
            )
        }
    };
    // Typing searches after a pause.
    let typed = StoredValue::new(0u64);
    let on_search = {
        let set_query = set_query.clone();
        move |e: leptos::ev::Event| {
            search.set(event_target_value(&e));
            let mine = typed.get_value() + 1;
            typed.set_value(mine);
            let set_query = set_query.clone();
            set_timeout(
                move || {
                    if typed.try_get_value() == Some(mine) {
                        set_query(
                            status.get_untracked(),
                            severity.get_untracked(),
                            search.get_untracked(),
                        );
                    }
                },
                Duration::from_millis(300),
            );
        }
    };
    let clear_filters = {
        let set_query = set_query.clone();
        move |_| {
            search.set(String::new());
            set_query("open".into(), String::new(), String::new());
        }
    };
    let filtered = move || {
        status.get() != "open" || !severity.get().is_empty() || !q_text.get().trim().is_empty()
    };
    let declare_open = RwSignal::new(false);

    let statuses: Vec<(String, String)> = [("open", "Open"), ("closed", "Closed"), ("all", "All")]
        .into_iter()
        .map(|(v, l)| (v.to_string(), l.to_string()))
        .chain(IncidentStatus::ALL.into_iter().map(|s| {
            (
                s.as_str().to_string(),
                format!("Only {}", s.label().to_lowercase()),
            )
        }))
        .collect();

    view! {
        <div class="page-head">
            <h1>"Incidents"</h1>
            {move || state.with(|s| match s {
                Some(Ok(l)) => Some(view! { <span class="count" title="Incidents matching the filters">{l.total}</span> }),
                _ => None,
            })}
            <LiveState connected/>
            <span class="spacer"></span>
            <a class="btn" href="/reports/incidents">"Reports"</a>
            {operator.then(|| view! {
                <button class="btn btn-primary" data-testid="declare-incident" on:click=move |_| declare_open.set(true)>
                    "+ Declare incident"
                </button>
            })}
        </div>
        <p class="lede">"Everything that went wrong and who is on it. Open incidents first; the list follows changes live."</p>
        <div class="toolbar">
            <select aria-label="Status filter" data-testid="incidents-status-filter" on:change=on_status>
                {statuses.into_iter().map(|(v, l)| {
                    let v2 = v.clone();
                    view! { <option value=v prop:selected=move || status.get() == v2>{l}</option> }
                }).collect_view()}
            </select>
            <select aria-label="Severity filter" data-testid="incidents-severity-filter" on:change=on_severity>
                <option value="" prop:selected=move || severity.get().is_empty()>"All severities"</option>
                {Severity::ALL.into_iter().map(|s| view! {
                    <option value=s.as_str() prop:selected=move || severity.get() == s.as_str()>
                        {format!("{} · {}", s.as_str(), s.meaning())}
                    </option>
                }).collect_view()}
            </select>
            <input type="search" class="search incidents-search" placeholder="Search title or summary" aria-label="Search incidents"
                data-testid="incidents-search" prop:value=move || search.get() on:input=on_search/>
        </div>
        {move || match state.get() {
            None => view! { <Loading rows=5/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| load())/> }.into_any(),
            Some(Ok(l)) if l.items.is_empty() => {
                if filtered() {
                    let clear = clear_filters.clone();
                    view! {
                        <div data-testid="incidents-table" data-count="0">
                            <EmptyState title="No incidents match">
                                <p>"Nothing with these filters. Open incidents are shown by default."</p>
                                <button class="btn" on:click=clear>"Show open incidents"</button>
                            </EmptyState>
                        </div>
                    }.into_any()
                } else {
                    view! {
                        <div data-testid="incidents-table" data-count="0">
                            <EmptyState title="No open incidents">
                                <p>"Incidents open by themselves when a health check finds a root cause down or Alertmanager sends a firing alert; anyone on call can declare one by hand."</p>
                                <div class="btn-row">
                                    {operator.then(|| view! {
                                        <button class="btn btn-primary" on:click=move |_| declare_open.set(true)>"Declare incident"</button>
                                    })}
                                    <a class="btn" href="/incidents?status=closed">"Past incidents"</a>
                                </div>
                            </EmptyState>
                        </div>
                    }.into_any()
                }
            }
            Some(Ok(_)) => view! { <IncidentTable state now/> }.into_any(),
        }}
        <Show when=move || declare_open.get()>
            <DeclareDialog open=declare_open/>
        </Show>
    }
}

#[component]
fn IncidentTable(
    state: RwSignal<Option<Result<IncidentList, ApiError>>>,
    now: RwSignal<DateTime<Utc>>,
) -> impl IntoView {
    let items = move || {
        state.with(|s| match s {
            Some(Ok(l)) => l.items.clone(),
            _ => Vec::new(),
        })
    };
    let count = move || {
        state.with(|s| match s {
            Some(Ok(l)) => l.items.len().to_string(),
            _ => "0".into(),
        })
    };
    view! {
        <div class="table-wrap">
            <table class="table incidents-table" data-testid="incidents-table" data-count=count>
                <thead><tr>
                    <th>"Severity"</th><th>"Status"</th><th>"Incident"</th><th>"Services"</th>
                    <th>"Commander"</th><th>"Age"</th><th>"SLA"</th>
                </tr></thead>
                <tbody>
                    <For each=items key=|i| (i.id, i.updated_at, i.status) children=move |i| view! { <IncidentRow inc=i now/> }/>
                </tbody>
            </table>
        </div>
        {move || state.with(|s| match s {
            Some(Ok(l)) if l.total > l.items.len() as i64 => Some(view! {
                <p class="muted small more-row">{format!("Showing the newest {} of {}; narrow the filters to find older ones.", l.items.len(), l.total)}</p>
            }),
            _ => None,
        })}
    }
}

#[component]
fn IncidentRow(inc: Incident, now: RwSignal<DateTime<Utc>>) -> impl IntoView {
    let id = inc.id;
    let shown = 3;
    let more = inc.services.len().saturating_sub(shown);
    let ended = inc.resolved_at;
    let triggered = inc.triggered_at;
    let sla = {
        let inc = inc.clone();
        move || {
            sla_badge(&inc, now.get()).map(|l| view! {
                <span class=format!("pill pill-{}", l.kind) data-testid=format!("incident-sla-{id}") data-state=l.state>
                    <span aria-hidden="true">{l.icon}</span>" "{l.text}
                </span>
            })
        }
    };
    view! {
        <tr data-testid=format!("incident-row-{id}") data-status=inc.status.as_str() data-severity=inc.severity.as_str()
            class=format!("incident-row sev-row-{}", inc.severity.as_str().to_lowercase())>
            <td><SeverityPill severity=inc.severity/></td>
            <td><IncidentStatusPill status=inc.status/></td>
            <td class="cell-main">
                <a class="strong-link" href=format!("/incidents/{id}")>{inc.title.clone()}</a>
                <div class="muted small">"#"{id}" · "{source_text(&inc.source)}
                    {inc.recovered_at.filter(|_| inc.status.is_open()).map(|_| view! { " · "<span class="ok-text">"♥ recovered"</span> })}
                </div>
            </td>
            <td>
                {if inc.services.is_empty() {
                    view! { <span class="muted">"—"</span> }.into_any()
                } else {
                    view! {
                        <ul class="chips">
                            {inc.services.iter().take(shown).map(|s| view! {
                                <li><a href=format!("/services/{}", s.service_id) title=format!("{} ({})", s.name, s.role)>{s.name.clone()}</a></li>
                            }).collect_view()}
                            {(more > 0).then(|| view! { <li class="muted small">"+"{more}</li> })}
                        </ul>
                    }.into_any()
                }}
            </td>
            <td class="nowrap">{inc.commander.clone().unwrap_or_else(|| "—".into())}</td>
            <td class="nowrap">
                <LiveTime at=triggered now/>
                {ended.map(|end| view! { <div class="muted small">"lasted "{human_secs((end - triggered).num_seconds())}</div> })}
            </td>
            <td class="nowrap">{sla}</td>
        </tr>
    }
}

/// Who or what opened an incident.
pub fn source_text(source: &str) -> &'static str {
    match source {
        "manual" => "declared by hand",
        "health" => "health checks",
        "alertmanager" => "Alertmanager",
        "backup" => "failed backup",
        "runbook" => "runbook",
        _ => "other",
    }
}

#[component]
fn DeclareDialog(open: RwSignal<bool>) -> impl IntoView {
    let navigate = use_navigate();
    let title = RwSignal::new(String::new());
    let severity = RwSignal::new(Severity::P2);
    let summary = RwSignal::new(String::new());
    let chosen = RwSignal::new(Vec::<i64>::new());
    let filter = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let services = LocalResource::new(api::services::list);
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    let goto = RwSignal::new(None::<i64>);
    Effect::new(move |_| {
        if let Some(id) = goto.get() {
            open.set(false);
            navigate(&format!("/incidents/{id}"), NavigateOptions::default());
        }
    });
    let create = move || {
        let t = title.get_untracked().trim().to_string();
        if t.is_empty() {
            error.set(Some(
                "Give the incident a title: what is broken, as people see it.".into(),
            ));
            return;
        }
        busy.set(true);
        error.set(None);
        let body = NewIncident {
            title: t,
            severity: severity.get_untracked(),
            summary: summary.get_untracked().trim().to_string(),
            services: chosen.get_untracked(),
            commander_id: None,
            escalation_policy_id: None,
        };
        leptos::task::spawn_local(async move {
            let r = api::incidents::create(&body).await;
            busy.try_set(false);
            match r {
                Ok(inc) => {
                    goto.try_set(Some(inc.id));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <div class="modal-backdrop">
            <div class="modal modal-wide" role="dialog" aria-modal="true" aria-labelledby="declare-title"
                data-testid="declare-dialog" on:keydown=move |e| if e.key() == "Escape" { open.set(false) }>
                <h2 id="declare-title">"Declare an incident"</h2>
                <p class="muted">"The escalation policy starts notifying people at once; whoever acknowledges stops it."</p>
                <form class="declare-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); create(); }>
                    <label>"Title"
                        <input data-testid="incident-title-input" maxlength="200" required node_ref=input
                            placeholder="e.g. Git hosting answers 502"
                            prop:value=move || title.get() on:input=move |e| title.set(event_target_value(&e))/>
                    </label>
                    <label>"Severity"
                        <select data-testid="incident-severity-input"
                            on:change=move |e| if let Some(s) = Severity::ALL.into_iter().find(|s| s.as_str() == event_target_value(&e)) { severity.set(s) }>
                            {Severity::ALL.into_iter().map(|s| view! {
                                <option value=s.as_str() prop:selected=move || severity.get() == s>{format!("{} · {}", s.as_str(), s.meaning())}</option>
                            }).collect_view()}
                        </select>
                        <span class="hint">"P1 complete outage · P2 key service degraded · P3 minor issue · P4 cosmetic"</span>
                    </label>
                    <fieldset>
                        <legend>"Affected services "<span class="muted small">{move || {
                            let n = chosen.with(Vec::len);
                            if n == 0 { "(none chosen)".to_string() } else { format!("({n} chosen)") }
                        }}</span></legend>
                        <input type="search" class="search declare-filter" placeholder="Filter services" aria-label="Filter services"
                            on:input=move |e| filter.set(event_target_value(&e).to_lowercase())/>
                        <div class="check-grid">
                            {move || match services.get() {
                                None => view! { <p class="muted">"Loading services…"</p> }.into_any(),
                                Some(Err(e)) => view! { <p class="error-text">{e.message}</p> }.into_any(),
                                Some(Ok(list)) => {
                                    let q = filter.get();
                                    let mut list: Vec<(i64, String)> = list.into_iter()
                                        .map(|o| (o.service.id, o.service.name))
                                        .filter(|(_, n)| q.is_empty() || n.to_lowercase().contains(&q))
                                        .collect();
                                    list.sort_by(|a, b| a.1.cmp(&b.1));
                                    if list.is_empty() {
                                        view! { <p class="muted">"No services match."</p> }.into_any()
                                    } else {
                                        list.into_iter().map(|(sid, name)| view! {
                                            <label class="check">
                                                <input type="checkbox" data-testid=format!("incident-service-{name}")
                                                    prop:checked=move || chosen.with(|c| c.contains(&sid))
                                                    on:change=move |e| {
                                                        let on = event_target_checked(&e);
                                                        chosen.update(|c| {
                                                            c.retain(|x| *x != sid);
                                                            if on { c.push(sid) }
                                                        });
                                                    }/>
                                                {name}
                                            </label>
                                        }).collect_view().into_any()
                                    }
                                }
                            }}
                        </div>
                    </fieldset>
                    <label><span>"Summary "<span class="muted small">"(optional)"</span></span>
                        <textarea rows="3" data-testid="incident-summary-input" placeholder="What users see, since when, what you know"
                            prop:value=move || summary.get() on:input=move |e| summary.set(event_target_value(&e))></textarea>
                    </label>
                    {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
                    <div class="modal-actions">
                        <button type="button" class="btn" on:click=move |_| open.set(false)>"Cancel"</button>
                        <button type="submit" class="btn btn-primary" data-testid="create-incident" disabled=move || busy.get()>
                            {move || if busy.get() { "Declaring…" } else { "Declare incident" }}
                        </button>
                    </div>
                </form>
            </div>
        </div>
    }
}
