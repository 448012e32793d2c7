//! One service (`/services/:id`): what it is (tier, owner, links, compose
//! mapping, what it requires and supports), its health (status on the board,
//! health checks with history, the public status page opt-in), its
//! containers and their state, its image (updates, version history),
//! container and stack actions with the confirmations the handbook asks for,
//! logs (tail, filter, follow, download), live stats, exec, inspect, the
//! activity list, and (admins) editing and deletion. Live through the
//! inventory events.

mod actions;
mod containers;
mod edit;
mod health;
mod image;
mod tools;
pub use actions::*;
pub use containers::*;
pub use edit::*;
pub use health::*;
use image::ImagePanel;
pub use tools::*;

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;
use std::time::Duration;

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};
use leptos_router::NavigateOptions;
use opsdeck_wire::{
    ActionRecord, Check, ContainerActionKind, ContainerActionRequest, ContainerInfo,
    ContainerStats, ExecRequest, ExecResult, PublicStatusInput, Role, Service, ServiceInput,
    ServiceOverview, StackActionKind, StackActionRequest, Tier,
};

use crate::api::{self, ApiError};
use crate::checks::{CheckForm, CheckHistoryView, CheckTable, FormMode, SavedNotice};
use crate::live::{use_interval, use_inventory_events, Stream, StreamEvent};
use crate::services::{containers_summary, non_empty};
use crate::session::current_role;
use crate::states::{sparkline, uptime_text};
use crate::states::{tier_from, tier_label, HealthPill, OutcomePill, RunStatePill, TierBadge};
use crate::status_store::use_status_store;
use crate::time::{duration_ms, RelTime};
use crate::ui::{bytes, Confirm, EmptyState, ErrorState, Loading, Pill};

/// Lines kept in the log view while following.
const LOG_CAP: usize = 2000;

#[component]
pub fn ServicePage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())));
    move || {
        match id.get() {
        Some(id) => view! { <ServiceView id/> }.into_any(),
        None => view! {
            <h1>"Service"</h1>
            <ErrorState title="No such service" message="This address names no service.".to_string()/>
        }
        .into_any(),
    }
    }
}

/// Only http(s) links are rendered as links (no `javascript:`).
fn safe_link(url: &str) -> bool {
    let u = url.trim_start().to_ascii_lowercase();
    u.starts_with("https://") || u.starts_with("http://")
}

fn action_labels(k: ContainerActionKind) -> (&'static str, &'static str) {
    match k {
        ContainerActionKind::Start => ("Start", "Starting…"),
        ContainerActionKind::Stop => ("Stop", "Stopping…"),
        ContainerActionKind::Restart => ("Restart", "Restarting…"),
        ContainerActionKind::Kill => ("Kill", "Killing…"),
        ContainerActionKind::Pause => ("Pause", "Pausing…"),
        ContainerActionKind::Unpause => ("Unpause", "Unpausing…"),
    }
}

/// A question before an action runs.
#[derive(Clone)]
struct Ask {
    title: String,
    message: String,
    /// The name to type, for actions that take a critical service away.
    expected: Option<String>,
    label: &'static str,
    run: Callback<()>,
}

#[component]
fn ServiceView(id: i64) -> impl IntoView {
    let role = current_role();
    let reload = RwSignal::new(0u32);
    use_inventory_events(reload);
    let state = RwSignal::new(None::<Result<ServiceOverview, ApiError>>);
    let all = RwSignal::new(Vec::<ServiceOverview>::new());
    let stale = RwSignal::new(None::<String>);

    Effect::new(move |_| {
        reload.get();
        leptos::task::spawn_local(async move {
            let had_data = state
                .try_with_untracked(|s| matches!(s, Some(Ok(_))))
                .unwrap_or(false);
            match api::services::get_one(id).await {
                Ok(o) => {
                    stale.set(None);
                    state.set(Some(Ok(o)));
                }
                // Keep what is shown through a passing network error.
                Err(e) if had_data && e.status != 404 => stale.set(Some(e.message)),
                Err(e) => state.set(Some(Err(e))),
            }
            if let Ok(list) = api::services::list().await {
                all.set(list);
            }
        });
    });

    let phase = Memo::new(move |_| {
        state.with(|s| match s {
            None => 0,
            Some(Ok(_)) => 1,
            Some(Err(_)) => 2,
        })
    });
    let ov = Memo::new(move |_| state.with(|s| s.as_ref().and_then(|r| r.as_ref().ok()).cloned()));

    move || {
        match phase.get() {
        0 => view! { <Loading rows=6/> }.into_any(),
        2 => {
            let e = state
                .with_untracked(|s| s.as_ref().and_then(|r| r.as_ref().err()).cloned())
                .map(|e| if e.status == 404 { "There is no service with this id: it may have been deleted.".to_string() } else { e.message })
                .unwrap_or_default();
            view! {
                <nav class="crumbs"><a href="/services">"Services"</a></nav>
                <h1>"Service"</h1>
                <ErrorState title="Cannot show this service" message=e retry=Callback::new(move |_| reload.update(|n| *n += 1))/>
            }
            .into_any()
        }
        _ => view! {
            <Header ov/>
            {move || stale.get().map(|m| view! { <div class="notice notice-error" role="alert">"Showing the last known state: "{m}</div> })}
            <Facts ov all/>
            <Section title="Health" open=true testid="section-health">
                <Health id/>
            </Section>
            {(role >= Role::Operator).then(|| view! { <Actions id ov reload/> })}
            <Containers ov/>
            <Section title="Image" open=true testid="section-image">
                <ImagePanel id ov/>
            </Section>
            {(role >= Role::Operator).then(|| view! {
                <Section title="Logs" open=true>
                    <Logs id ov/>
                </Section>
            })}
            <Section title="Resources" open=true testid="section-resources">
                <crate::resources::ResourceCharts source=crate::resources::Source::Service(id)/>
            </Section>
            <Section title="Stats" open=true>
                <Stats id/>
            </Section>
            {(role >= Role::Operator).then(|| view! {
                <Section title="Exec">
                    <Exec id ov/>
                </Section>
                <Section title="Inspect">
                    <Inspect id/>
                </Section>
            })}
            <Section title="Activity" open=true>
                <Activity id ov reload/>
            </Section>
            {(role >= Role::Admin).then(|| view! {
                <Section title="Edit" testid="section-edit">
                    <Edit ov all/>
                </Section>
            })}
        }
        .into_any(),
    }
    }
}

/// A collapsible card; its body is built when opened and dropped when
/// closed (streams and timers inside stop).
#[component]
fn Section(
    title: &'static str,
    #[prop(optional)] open: bool,
    #[prop(optional)] testid: Option<&'static str>,
    children: ChildrenFn,
) -> impl IntoView {
    let is_open = RwSignal::new(open);
    let testid = testid
        .map(str::to_string)
        .unwrap_or_else(|| format!("section-{}", title.to_lowercase()));
    view! {
        <section class="card section" data-testid=testid>
            <h2 class="section-head">
                <button type="button" class="section-toggle" aria-expanded=move || is_open.get().to_string()
                    on:click=move |_| is_open.update(|o| *o = !*o)>
                    <span class="chev" aria-hidden="true">"▸"</span>{title}
                </button>
            </h2>
            <Show when=move || is_open.get()>
                <div class="section-body">{children()}</div>
            </Show>
        </section>
    }
}

fn name_of(ov: Memo<Option<ServiceOverview>>) -> String {
    ov.with_untracked(|o| o.as_ref().map(|o| o.service.name.clone()))
        .unwrap_or_default()
}

#[component]
fn Header(ov: Memo<Option<ServiceOverview>>) -> impl IntoView {
    move || {
        ov.get().map(|o| {
            let s = o.service;
            view! {
                <nav class="crumbs"><a href="/services">"Services"</a>" / "<span>{s.name.clone()}</span></nav>
                <div class="page-head">
                    <h1 data-testid="service-name">{s.name.clone()}</h1>
                    <TierBadge tier=s.tier/>{edited(&s, "tier")}
                    <RunStatePill state=o.run_state testid="service-state"/>
                    <span class="muted small">{containers_summary_of(&o.containers, &s)}</span>
                    <span class="spacer"></span>
                    <a class="btn" href="/graph">"Graph"</a>
                </div>
                {(!s.description.is_empty()).then(|| view! { <p class="lede">{s.description.clone()}{edited(&s, "description")}</p> })}
            }
        })
    }
}

fn containers_summary_of(containers: &[ContainerInfo], s: &Service) -> String {
    containers_summary(&ServiceOverview {
        service: s.clone(),
        run_state: opsdeck_wire::RunState::Unknown,
        containers: containers.to_vec(),
    })
}

/// "✎ edited by hand" after a field imports leave alone.
fn edited(s: &Service, field: &str) -> impl IntoView {
    s.edited_fields.iter().any(|f| f == field).then(|| {
        view! { <span class="edited" title="Edited by hand: imports leave this field alone">"✎ edited by hand"</span> }
    })
}

/// Links to other services, with their state.
fn service_links(names: &[String], all: &[ServiceOverview], testid: &'static str) -> AnyView {
    if names.is_empty() {
        return view! { <span class="muted">"none"</span> }.into_any();
    }
    view! {
        <ul class="chips" data-testid=testid>
            {names.iter().map(|n| match all.iter().find(|o| &o.service.name == n) {
                Some(o) => view! {
                    <li><a href=format!("/services/{}", o.service.id)>{n.clone()}</a>" "<RunStatePill state=o.run_state/></li>
                }.into_any(),
                None => view! { <li>{n.clone()}</li> }.into_any(),
            }).collect_view()}
        </ul>
    }
    .into_any()
}

#[component]
fn Facts(ov: Memo<Option<ServiceOverview>>, all: RwSignal<Vec<ServiceOverview>>) -> impl IntoView {
    let link = |url: Option<String>| match url {
        Some(u) if safe_link(&u) => {
            view! { <a href=u.clone() target="_blank" rel="noopener noreferrer">{u.clone()}</a> }
                .into_any()
        }
        Some(u) => view! { <span>{u}</span> }.into_any(),
        None => view! { <span class="muted">"—"</span> }.into_any(),
    };
    let list = |items: Vec<String>| {
        if items.is_empty() {
            view! { <span class="muted">"—"</span> }.into_any()
        } else {
            view! { <ul class="plain-list">{items.into_iter().map(|i| view! { <li><code>{i}</code></li> }).collect_view()}</ul> }.into_any()
        }
    };
    move || {
        ov.get().map(|o| {
            let s = o.service;
            let others = all.get();
            let compose = match (&s.compose_project, &s.compose_service) {
                (None, None) => None,
                (p, sv) => Some(format!(
                    "{} / {}",
                    p.as_deref().unwrap_or("any project"),
                    sv.as_deref().unwrap_or("—")
                )),
            };
            view! {
                <div class="card facts-card">
                    <dl class="facts facts-2">
                        <dt>"Owner team"</dt><dd>{s.owner_team.clone().unwrap_or_else(|| "—".into())}{edited(&s, "owner_team")}</dd>
                        <dt>"Docs"</dt><dd>{link(s.docs_url.clone())}{edited(&s, "docs_url")}</dd>
                        <dt>"Repository"</dt><dd>{link(s.repo_url.clone())}{edited(&s, "repo_url")}</dd>
                        <dt>"Engine"</dt><dd>{s.engine.clone().unwrap_or_else(|| "any engine".into())}{edited(&s, "engine")}</dd>
                        <dt>"Compose"</dt><dd>{compose.unwrap_or_else(|| "—".into())}{edited(&s, "compose_project")}{edited(&s, "compose_service")}</dd>
                        <dt>"Container name"</dt><dd>{s.container_name.clone().unwrap_or_else(|| "—".into())}{edited(&s, "container_name")}</dd>
                        <dt>"Image"</dt><dd><code class="wrap-anywhere">{s.image.clone().unwrap_or_else(|| "—".into())}</code>{edited(&s, "image")}</dd>
                        <dt>"Ports"</dt><dd>{list(s.ports.clone())}</dd>
                        <dt>"Volumes"</dt><dd>{list(s.volumes.clone())}</dd>
                        <dt>"Requires"</dt><dd>{service_links(&s.requires, &others, "requires")}{edited(&s, "requires")}</dd>
                        <dt>"Supports"</dt><dd>{service_links(&s.supports, &others, "supports")}</dd>
                        <dt>"Source"</dt><dd><span class="muted">{s.source.clone()}</span></dd>
                    </dl>
                </div>
            }
        })
    }
}
