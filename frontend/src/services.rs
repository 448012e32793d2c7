//! The services page: the inventory grouped by tier (Critical, Application,
//! Support, as on the handbooks' status dashboard), each service with its
//! run state, containers, image and compose project. Search, the
//! problems-only filter and paging happen on the server
//! (`GET /api/v1/services/page`, [`PAGE`] rows at a time); live through the
//! inventory events. Admins add
//! services by hand here (imports live on the inventory import page).

use leptos::prelude::*;
use opsdeck_wire::{Role, ServiceInput, ServiceOverview, ServicePage, Tier};

use crate::api;
use crate::live::use_inventory_events;
use crate::session::current_role;
use crate::states::{tier_from, tier_label, RunStatePill};
use crate::ui::{EmptyState, ErrorState, Loading};

/// `Some(trimmed)` unless empty.
pub fn non_empty(s: String) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// "2/2 running", or what stands in for it.
pub fn containers_summary(o: &ServiceOverview) -> String {
    let total = o.containers.len();
    let running = o.containers.iter().filter(|c| c.state == "running").count();
    if total == 0 {
        if o.service.compose_service.is_none() && o.service.container_name.is_none() {
            "not mapped".into()
        } else {
            "none found".into()
        }
    } else {
        format!("{running}/{total} running")
    }
}

fn row(o: ServiceOverview) -> impl IntoView {
    let s = &o.service;
    let name = s.name.clone();
    let restarts: i64 = o.containers.iter().map(|c| c.restart_count).sum();
    let image = s
        .image
        .clone()
        .or_else(|| o.containers.first().map(|c| c.image.clone()))
        .unwrap_or_default();
    view! {
        <tr data-testid=format!("service-row-{name}")>
            <td><RunStatePill state=o.run_state testid=format!("service-state-{name}")/></td>
            <td class="cell-main">
                <a href=format!("/services/{}", s.id) class="strong-link">{name.clone()}</a>
                " "{crate::updates::badge(s.id, name.clone())}
                <div class="muted small clamp">{s.description.clone()}</div>
            </td>
            <td class="nowrap">{containers_summary(&o)}</td>
            <td><code class="wrap-anywhere">{image}</code></td>
            <td>{s.compose_project.clone().unwrap_or_default()}</td>
            <td class="num" class:warn-text={restarts > 0}>{restarts}</td>
        </tr>
    }
}

/// Rows per page; the server searches, filters and orders, so the browser
/// never holds a fleet's thousands of rows at once.
const PAGE: usize = 100;

#[component]
pub fn Services() -> impl IntoView {
    let role = current_role();
    let reload = RwSignal::new(0u32);
    use_inventory_events(reload);
    crate::updates::provide_update_statuses();
    // What the box says now, and what was last asked of the server (a
    // quarter second after the last keystroke).
    let typed = RwSignal::new(String::new());
    let query = RwSignal::new(String::new());
    let problems_only = RwSignal::new(false);
    let offset = RwSignal::new(0usize);
    let typing = StoredValue::new(0u32);
    let on_type = move |text: String| {
        typed.set(text);
        let gen = typing.get_value() + 1;
        typing.set_value(gen);
        set_timeout(
            move || {
                if typing.try_get_value() == Some(gen) {
                    offset.set(0);
                    query.set(typed.get_untracked());
                }
            },
            std::time::Duration::from_millis(250),
        );
    };
    let services = LocalResource::new(move || {
        reload.get();
        let (q, only, at) = (query.get(), problems_only.get(), offset.get());
        async move { api::services::page(&q, only, at, PAGE).await }
    });
    let show_all = move || {
        typed.set(String::new());
        query.set(String::new());
        problems_only.set(false);
        offset.set(0);
    };

    let content = move || {
        services.get().map(|r| match r {
            Err(e) => view! {
                <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/>
            }
            .into_any(),
            Ok(p) if p.total == 0 => view! {
                <EmptyState title="No services yet">
                    {if role >= Role::Admin {
                        view! {
                            <p>"Import a docker-compose file or a discovered compose project on the "
                            <a href="/inventory">"Inventory import"</a>" page, or add a service by hand below."</p>
                            <a class="btn btn-primary" href="/inventory">"Import a compose file"</a>
                        }.into_any()
                    } else {
                        view! { <p>"An admin imports them from a docker-compose file or adds them by hand."</p> }.into_any()
                    }}
                </EmptyState>
            }
            .into_any(),
            Ok(p) => {
                let (total, problems) = (p.total, p.problems);
                let summary = view! {
                    <p class="summary muted" data-testid="services-summary">
                        {format!("{total} service{}", if total == 1 { "" } else { "s" })}" · "
                        {if problems == 0 {
                            view! { <span class="ok-text">"✓ no problems"</span> }.into_any()
                        } else {
                            view! { <span class="problem-text">{format!("▲ {problems} need{} attention", if problems == 1 { "s" } else { "" })}</span> }.into_any()
                        }}
                    </p>
                };
                if p.matched == 0 {
                    return view! {
                        {summary}
                        <EmptyState title="No services match">
                            <p>"Change the search, or show all states."</p>
                            <button class="btn" on:click=move |_| show_all()>"Show all"</button>
                        </EmptyState>
                    }
                    .into_any();
                }
                let top = pager(&p, offset);
                let groups = Tier::ALL
                    .iter()
                    .map(|tier| {
                        let rows: Vec<ServiceOverview> =
                            p.items.iter().filter(|o| o.service.tier == *tier).cloned().collect();
                        (!rows.is_empty()).then(|| view! {
                            <section class="tier-group" data-testid=format!("tier-{}", tier.as_str())>
                                <h2>{tier_label(*tier)}" "<span class="count">{rows.len()}</span></h2>
                                <div class="table-wrap"><table class="table services-table">
                                    <thead><tr>
                                        <th class="col-state">"State"</th><th>"Service"</th><th>"Containers"</th>
                                        <th>"Image"</th><th>"Project"</th><th class="num">"Restarts"</th>
                                    </tr></thead>
                                    <tbody>{rows.into_iter().map(row).collect_view()}</tbody>
                                </table></div>
                            </section>
                        })
                    })
                    .collect_view();
                let bottom = pager(&p, offset);
                view! { {summary}{top}{groups}{bottom} }.into_any()
            }
        })
    };

    view! {
        <div class="page-head">
            <h1>"Services"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/graph">"Dependency graph"</a>
            {(role >= Role::Admin).then(|| view! { <a class="btn" href="/inventory">"Import"</a> })}
        </div>
        <div class="toolbar">
            <input class="search" type="search" placeholder="Search name, description, image" aria-label="Search services"
                data-testid="services-search"
                prop:value=move || typed.get() on:input=move |e| on_type(event_target_value(&e))/>
            <select aria-label="State filter" data-testid="services-filter"
                on:change=move |e| { offset.set(0); problems_only.set(event_target_value(&e) == "problems"); }>
                <option value="all" prop:selected=move || !problems_only.get()>"All states"</option>
                <option value="problems" prop:selected=move || problems_only.get()>"Problems only"</option>
            </select>
        </div>
        <Transition fallback=|| view! { <Loading rows=6/> }>{content}</Transition>
        {(role >= Role::Admin).then(|| view! { <AddService reload/> })}
    }
}

/// "101–200 of 6,000" with the previous and next pages; nothing when one
/// page holds every match.
fn pager(p: &ServicePage, offset: RwSignal<usize>) -> AnyView {
    if p.offset == 0 && p.matched <= p.items.len() {
        return ().into_any();
    }
    let (at, limit, matched) = (p.offset, p.limit, p.matched);
    let last = (at + p.items.len()).min(matched);
    let first = if p.items.is_empty() { at } else { at + 1 };
    let of = if matched == p.total {
        format!("{first}–{last} of {matched}")
    } else {
        format!("{first}–{last} of {matched} matching")
    };
    view! {
        <nav class="pager" aria-label="Pages of services" data-testid="services-pager">
            <button class="btn btn-small" data-testid="services-prev" disabled=at == 0
                on:click=move |_| offset.set(at.saturating_sub(limit))>"← Previous"</button>
            <span class="muted small" data-testid="services-range">{of}</span>
            <button class="btn btn-small" data-testid="services-next" disabled=last >= matched
                on:click=move |_| offset.set(at + limit)>"Next →"</button>
        </nav>
    }
    .into_any()
}

#[component]
fn AddService(reload: RwSignal<u32>) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let tier = RwSignal::new("application".to_string());
    let description = RwSignal::new(String::new());
    let project = RwSignal::new(String::new());
    let compose_service = RwSignal::new(String::new());
    let container = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<(i64, String), String>>);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = ServiceInput {
            name: non_empty(name.get_untracked()),
            description: Some(description.get_untracked().trim().to_string()),
            tier: Some(tier_from(&tier.get_untracked())),
            owner_team: None,
            docs_url: None,
            repo_url: None,
            engine: None,
            compose_project: non_empty(project.get_untracked()),
            compose_service: non_empty(compose_service.get_untracked()),
            container_name: non_empty(container.get_untracked()),
            image: None,
            ports: None,
            volumes: None,
            labels: None,
            requires: None,
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::services::create(&input).await {
                Ok(s) => {
                    notice.set(Some(Ok((s.id, s.name))));
                    for f in [name, description, project, compose_service, container] {
                        f.set(String::new());
                    }
                    reload.update(|n| *n += 1);
                }
                Err(e) => notice.set(Some(Err(e.message))),
            }
            busy.set(false);
        });
    };

    let text = |label: &'static str,
                sig: RwSignal<String>,
                placeholder: &'static str,
                testid: &'static str| {
        view! {
            <label>{label}
                <input placeholder=placeholder data-testid=testid
                    prop:value=move || sig.get() on:input=move |e| sig.set(event_target_value(&e))/>
            </label>
        }
    };

    view! {
        <form class="card form-grid" on:submit=submit data-testid="add-service">
            <h2>"Add service"</h2>
            <label>"Name"
                <input required maxlength="100" placeholder="e.g. api" data-testid="new-service-name"
                    prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
            </label>
            <label>"Tier"
                <select data-testid="new-service-tier" on:change=move |e| tier.set(event_target_value(&e))>
                    {Tier::ALL.iter().map(|t| view! { <option value=t.as_str() selected=*t == Tier::Application>{tier_label(*t)}</option> }).collect_view()}
                </select>
            </label>
            {text("Description", description, "what it does", "new-service-description")}
            {text("Compose project", project, "optional", "new-service-project")}
            {text("Compose service", compose_service, "optional", "new-service-compose-service")}
            {text("Container name", container, "or a container name", "new-service-container")}
            <button class="btn btn-primary" type="submit" data-testid="new-service-submit" disabled=move || busy.get()>"Add service"</button>
            <p class="hint span-all">"Map the service to its containers by compose project + service, or by container name; leave both empty for a service kept only for the graph and the docs."</p>
            {move || notice.get().map(|n| match n {
                Ok((id, n)) => view! {
                    <div class="notice notice-ok span-all" role="status">"Added "<a href=format!("/services/{id}")>{n}</a>"."</div>
                }.into_any(),
                Err(m) => view! { <div class="notice notice-error span-all" role="alert">{m}</div> }.into_any(),
            })}
        </form>
    }
}
