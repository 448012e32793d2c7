//! One service (`/services/:id`): what it is (tier, owner, links, compose
//! mapping, what it requires and supports), its health (status on the board,
//! health checks with history, the public status page opt-in), its
//! containers and their state,
//! container and stack actions with the confirmations the handbook asks for,
//! logs (tail, filter, follow, download), live stats, exec, inspect, the
//! activity list, and (admins) editing and deletion. Live through the
//! inventory events.

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
            {(role >= Role::Operator).then(|| view! {
                <Section title="Logs" open=true>
                    <Logs id ov/>
                </Section>
            })}
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

#[component]
fn ActionResult(result: Result<ActionRecord, ApiError>) -> impl IntoView {
    match result {
        Err(e) => view! {
            <div class="action-result action-result-error" data-testid="action-result" role="alert">
                <Pill kind="outage" icon="✕" word="refused"/>" "<span>{e.message}</span>
            </div>
        }
        .into_any(),
        Ok(r) => view! {
            <div class="action-result" data-testid="action-result" role="status">
                <div class="action-line">
                    <OutcomePill outcome=r.outcome/>
                    <code>{r.kind.clone()}</code>
                    <span class="muted">{format!("on {} by {}", r.target, r.actor)}</span>
                    {r.duration_ms.map(|d| view! { <span class="muted">{format!("· {}", duration_ms(d))}</span> })}
                </div>
                {r.error.clone().map(|e| view! { <p class="error-text">{e}</p> })}
                <Steps record=r/>
            </div>
        }
        .into_any(),
    }
}

#[component]
fn Steps(record: ActionRecord) -> impl IntoView {
    (!record.steps.is_empty()).then(|| {
        view! {
            <ul class="steps">
                {record.steps.into_iter().map(|s| view! {
                    <li class:step-failed=!s.ok>
                        <span aria-hidden="true">{if s.ok { "✓" } else { "✕" }}</span>
                        <span class="sr-only">{if s.ok { "ok" } else { "failed" }}</span>
                        " "<code>{s.action.clone()}</code>" "<strong>{s.container.clone()}</strong>
                        {s.service.clone().map(|n| view! { <span class="muted">{format!(" ({n})")}</span> })}
                        <span class="muted">{format!(" · {}", duration_ms(s.duration_ms))}</span>
                        {s.error.clone().map(|e| view! { <div class="error-text small">{e}</div> })}
                    </li>
                }).collect_view()}
            </ul>
        }
    })
}

#[component]
fn Actions(id: i64, ov: Memo<Option<ServiceOverview>>, reload: RwSignal<u32>) -> impl IntoView {
    let busy = RwSignal::new(None::<&'static str>);
    let result = RwSignal::new(None::<Result<ActionRecord, ApiError>>);
    let ask = RwSignal::new(None::<Ask>);
    let ask_open = RwSignal::new(false);
    let critical = Memo::new(move |_| {
        ov.with(|o| o.as_ref().is_some_and(|o| o.service.tier == Tier::Critical))
    });
    let project =
        Memo::new(move |_| ov.with(|o| o.as_ref().and_then(|o| o.service.compose_project.clone())));

    let typed_ask = move |kind: ContainerActionKind, run: Callback<()>| {
        let name = name_of(ov);
        let (label, _) = action_labels(kind);
        ask.set(Some(Ask {
            title: format!("{label} {name}?"),
            message: format!(
                "{name} is a critical service: {} takes it away and everything that requires it. Type its name to confirm.",
                if kind == ContainerActionKind::Kill { "killing it" } else { "stopping it" }
            ),
            expected: Some(name),
            label,
            run,
        }));
        ask_open.set(true);
    };

    // Runs a container action; `confirm` is the typed name, if any.
    let run_container = move |kind: ContainerActionKind, confirm: Option<String>| {
        let (_, busy_label) = action_labels(kind);
        busy.set(Some(busy_label));
        result.set(None);
        let typed = confirm.is_some();
        leptos::task::spawn_local(async move {
            let req = ContainerActionRequest {
                action: kind,
                timeout_secs: None,
                signal: None,
                confirm: confirm.clone(),
            };
            let r = api::services::act(id, &req).await;
            busy.set(None);
            match r {
                // The tier changed meanwhile: ask for the name now.
                Err(e) if e.code == "confirmation_required" && !typed => {
                    typed_ask(
                        kind,
                        Callback::new(move |_| {
                            let name = name_of(ov);
                            leptos::task::spawn_local(async move {
                                busy.set(Some(action_labels(kind).1));
                                let req = ContainerActionRequest {
                                    action: kind,
                                    timeout_secs: None,
                                    signal: None,
                                    confirm: Some(name),
                                };
                                let r = api::services::act(id, &req).await;
                                busy.set(None);
                                result.set(Some(r));
                                reload.update(|n| *n += 1);
                            });
                        }),
                    );
                }
                r => result.set(Some(r)),
            }
            reload.update(|n| *n += 1);
        });
    };

    let click = move |kind: ContainerActionKind| {
        if !kind.is_disruptive() {
            run_container(kind, None);
            return;
        }
        let name = name_of(ov);
        if critical.get_untracked() {
            typed_ask(
                kind,
                Callback::new(move |_| run_container(kind, Some(name_of(ov)))),
            );
        } else {
            let (label, _) = action_labels(kind);
            let supports = ov
                .with_untracked(|o| o.as_ref().map(|o| o.service.supports.clone()))
                .unwrap_or_default();
            ask.set(Some(Ask {
                title: format!("{label} {name}?"),
                message: if supports.is_empty() {
                    format!(
                        "The containers of {name} {}.",
                        if kind == ContainerActionKind::Kill {
                            "are killed at once"
                        } else {
                            "stop"
                        }
                    )
                } else {
                    format!(
                        "Services that require {name} may fail: {}.",
                        supports.join(", ")
                    )
                },
                expected: None,
                label,
                run: Callback::new(move |_| run_container(kind, None)),
            }));
            ask_open.set(true);
        }
    };

    let run_stack = move |project: String, kind: StackActionKind, confirm: Option<String>| {
        busy.set(Some(match kind {
            StackActionKind::Start => "Starting stack…",
            StackActionKind::Stop => "Stopping stack…",
            StackActionKind::Restart => "Restarting stack…",
        }));
        result.set(None);
        leptos::task::spawn_local(async move {
            let req = StackActionRequest {
                action: kind,
                timeout_secs: None,
                confirm,
            };
            let r = api::services::act_on_stack(&project, &req).await;
            busy.set(None);
            result.set(Some(r));
            reload.update(|n| *n += 1);
        });
    };
    let stack_click = move |kind: StackActionKind| {
        let Some(p) = project.get_untracked() else {
            return;
        };
        let (label, title, message, expected) = match kind {
            StackActionKind::Start => ("Start stack", format!("Start stack {p}?"),
                format!("Starts every service of compose project {p}, dependencies first."), None),
            StackActionKind::Stop => ("Stop stack", format!("Stop stack {p}?"),
                format!("Stops every service of compose project {p}, dependents first. Type the project's name to confirm."), Some(p.clone())),
            StackActionKind::Restart => ("Restart stack", format!("Restart stack {p}?"),
                format!("Stops every service of compose project {p} (dependents first), then starts them again (dependencies first). Type the project's name to confirm."), Some(p.clone())),
        };
        let confirm = expected.clone();
        let proj = p.clone();
        ask.set(Some(Ask {
            title,
            message,
            expected,
            label,
            run: Callback::new(move |_| run_stack(proj.clone(), kind, confirm.clone())),
        }));
        ask_open.set(true);
    };

    let unmapped = Memo::new(move |_| {
        ov.with(|o| {
            o.as_ref().is_some_and(|o| {
                o.service.compose_service.is_none() && o.service.container_name.is_none()
            })
        })
    });

    view! {
        <section class="card" data-testid="actions">
            <h2>"Actions"</h2>
            {move || ask.get().map(|a| {
                let run = a.run;
                view! {
                    <Confirm open=ask_open title=Signal::stored(a.title) message=Signal::stored(a.message)
                        confirm_label=a.label expected=a.expected on_confirm=run/>
                }
            })}
            <Show when=move || !unmapped.get() fallback=|| view! {
                <p class="muted">"This service is not mapped to containers: set a compose service or a container name under Edit to act on it."</p>
            }>
                <div class="btn-row" role="group" aria-label="Container actions">
                    {ContainerActionKind::ALL.into_iter().map(|kind| {
                        let (label, busy_label) = action_labels(kind);
                        let locked = move || critical.get() && kind.is_disruptive();
                        view! {
                            <button class="btn" class:btn-danger=kind.is_disruptive()
                                data-testid=format!("action-{}", kind.as_str())
                                disabled=move || busy.get().is_some()
                                title=move || if locked() { "Critical service: you will be asked to type its name" } else { "" }
                                on:click=move |_| click(kind)>
                                {move || locked().then(|| view! { <span class="lock" aria-hidden="true">"⚠"</span> })}
                                {move || if busy.get() == Some(busy_label) { busy_label } else { label }}
                                {move || locked().then(|| view! { <span class="sr-only">" (needs typed confirmation)"</span> })}
                            </button>
                        }
                    }).collect_view()}
                </div>
                <Show when=move || critical.get()>
                    <p class="hint"><span aria-hidden="true">"⚠ "</span>"Critical service: Stop and Kill ask you to type its name first."</p>
                </Show>
            </Show>
            {move || project.get().map(|p| view! {
                <div class="btn-row stack-row" role="group" aria-label="Stack actions">
                    <span class="muted">"Compose project "<strong>{p.clone()}</strong>":"</span>
                    <button class="btn" data-testid="stack-start" disabled=move || busy.get().is_some()
                        on:click=move |_| stack_click(StackActionKind::Start)>"Start stack"</button>
                    <button class="btn btn-danger" data-testid="stack-restart" disabled=move || busy.get().is_some()
                        on:click=move |_| stack_click(StackActionKind::Restart)><span class="lock" aria-hidden="true">"⚠"</span>"Restart stack"</button>
                    <button class="btn btn-danger" data-testid="stack-stop" disabled=move || busy.get().is_some()
                        on:click=move |_| stack_click(StackActionKind::Stop)><span class="lock" aria-hidden="true">"⚠"</span>"Stop stack"</button>
                </div>
            })}
            {move || busy.get().map(|b| view! { <p class="muted" role="status" aria-live="polite">{b}</p> })}
            {move || result.get().map(|r| view! { <ActionResult result=r/> })}
        </section>
    }
}

fn container_state_pill(c: &ContainerInfo) -> impl IntoView {
    let (kind, icon) = match c.state.as_str() {
        "running" => ("ok", "✓"),
        "paused" => ("maintenance", "‖"),
        "restarting" => ("degraded", "↻"),
        "exited" | "dead" => ("outage", "■"),
        _ => ("unknown", "○"),
    };
    view! { <Pill kind icon word=c.state.clone() title=c.status.clone()/> }
}

fn health_pill(h: Option<&str>) -> AnyView {
    match h {
        Some("healthy") => view! { <Pill kind="ok" icon="✓" word="healthy"/> }.into_any(),
        Some("unhealthy") => view! { <Pill kind="outage" icon="✕" word="unhealthy"/> }.into_any(),
        Some(other) => view! { <Pill kind="unknown" icon="…" word=other.to_string()/> }.into_any(),
        None => {
            view! { <span class="muted" title="The image has no HEALTHCHECK">"—"</span> }.into_any()
        }
    }
}

#[component]
fn Containers(ov: Memo<Option<ServiceOverview>>) -> impl IntoView {
    move || {
        ov.get().map(|o| {
            let s = o.service;
            let body = if o.containers.is_empty() {
                let hint = if s.compose_service.is_none() && s.container_name.is_none() {
                    "This service is not mapped to containers. An admin can set a compose service or a container name under Edit.".to_string()
                } else {
                    format!(
                        "No container matches {}. Is it deployed on a connected engine? See Engines.",
                        match (&s.compose_project, &s.compose_service, &s.container_name) {
                            (_, _, Some(c)) => format!("the container name {c}"),
                            (Some(p), Some(sv), None) => format!("compose project {p}, service {sv}"),
                            (None, Some(sv), None) => format!("compose service {sv}"),
                            _ => "the mapping".to_string(),
                        }
                    )
                };
                view! { <EmptyState title="No containers"><p>{hint}</p></EmptyState> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table" data-testid="containers">
                        <thead><tr><th>"Container"</th><th>"State"</th><th>"Health"</th><th class="num">"Restarts"</th><th>"Started"</th><th>"Engine"</th></tr></thead>
                        <tbody>{o.containers.into_iter().map(|c| view! {
                            <tr data-testid=format!("container-row-{}", c.name)>
                                <td><strong>{c.name.clone()}</strong><div class="muted small">{c.status.clone()}</div></td>
                                <td>{container_state_pill(&c)}</td>
                                <td>{health_pill(c.health.as_deref())}</td>
                                <td class="num" class:warn-text={c.restart_count > 0}>{c.restart_count}</td>
                                <td><RelTime at=c.started_at/></td>
                                <td>{c.engine.clone()}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any()
            };
            view! {
                <section class="section-plain">
                    <h2>"Containers"</h2>
                    {body}
                </section>
            }
        })
    }
}

#[derive(Clone, PartialEq)]
enum LogStatus {
    Loading,
    Shown,
    Following,
    Ended(String),
    Failed(String),
}

#[component]
fn Logs(id: i64, ov: Memo<Option<ServiceOverview>>) -> impl IntoView {
    let owner = StoredValue::new(Owner::current());
    let tail = RwSignal::new(200u32);
    let timestamps = RwSignal::new(false);
    let filter = RwSignal::new(String::new());
    let container = RwSignal::new(String::new());
    let follow = RwSignal::new(false);
    let lines = RwSignal::new(Vec::<String>::new());
    let status = RwSignal::new(LogStatus::Loading);
    let stream = StoredValue::new(None::<Stream>);
    let pre = NodeRef::<leptos::html::Pre>::new();
    let names = Memo::new(move |_| {
        ov.with(|o| {
            o.as_ref().map(|o| {
                o.containers
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default()
    });

    // Tail, timestamps, filter and container; `mode`: `follow` or
    // `download` (or neither: fetch).
    let query = move |mode: Option<&'static str>| {
        api::query(&[
            ("tail", Some(tail.get_untracked().to_string())),
            ("timestamps", Some(timestamps.get_untracked().to_string())),
            ("filter", api::non_empty(&filter.get_untracked())),
            ("container", api::non_empty(&container.get_untracked())),
            (
                "follow",
                (mode == Some("follow")).then(|| "true".to_string()),
            ),
            (
                "download",
                (mode == Some("download")).then(|| "true".to_string()),
            ),
        ])
    };
    let stop_stream = move || {
        if let Some(s) = stream.get_value() {
            s.close();
        }
        stream.set_value(None);
    };
    let scroll_down = move || {
        request_animation_frame(move || {
            if let Some(el) = pre.get_untracked() {
                el.set_scroll_top(el.scroll_height());
            }
        })
    };
    let fetch = move || {
        stop_stream();
        status.set(LogStatus::Loading);
        let q = query(None);
        leptos::task::spawn_local(async move {
            match api::services::logs(id, &q).await {
                Ok(text) => {
                    lines.set(text.lines().map(str::to_string).collect());
                    status.set(LogStatus::Shown);
                    scroll_down();
                }
                Err(e) => status.set(LogStatus::Failed(e.message)),
            }
        });
    };
    let start_follow = move || {
        stop_stream();
        lines.set(Vec::new());
        status.set(LogStatus::Following);
        let url = api::services::logs_url(id, &query(Some("follow")));
        let buffer = Rc::new(RefCell::new(Vec::<String>::new()));
        let scheduled = Rc::new(Cell::new(false));
        let flush = {
            let buffer = buffer.clone();
            let scheduled = scheduled.clone();
            move || {
                scheduled.set(false);
                let new: Vec<String> = buffer.borrow_mut().drain(..).collect();
                lines.try_update(|l| {
                    l.extend(new);
                    if l.len() > LOG_CAP {
                        let extra = l.len() - LOG_CAP;
                        l.drain(..extra);
                    }
                });
                scroll_down();
            }
        };
        let reopened = Cell::new(false);
        let on = move |e: StreamEvent| match e {
            // Reopened (the page came back from the back/forward cache): the
            // server sends the tail again.
            StreamEvent::Open if reopened.replace(true) => {
                buffer.borrow_mut().clear();
                lines.try_set(Vec::new());
            }
            StreamEvent::Message { event, data } if event == "line" => {
                buffer.borrow_mut().push(data);
                if !scheduled.replace(true) {
                    let flush = flush.clone();
                    set_timeout(flush, Duration::from_millis(150));
                }
            }
            StreamEvent::Message { event, data } if event == "error" => {
                status.set(LogStatus::Ended(if data.is_empty() {
                    "The engine ended the log stream.".into()
                } else {
                    data
                }));
                follow.set(false);
                stop_stream();
            }
            StreamEvent::Broken => {
                status.set(LogStatus::Ended("The log stream ended.".into()));
                follow.set(false);
                stop_stream();
            }
            _ => {}
        };
        let opened = match owner.get_value() {
            Some(o) => o.with(|| Stream::open(&url, &["line"], on)),
            None => Stream::open(&url, &["line"], on),
        };
        match opened {
            Some(s) => stream.set_value(Some(s)),
            None => {
                status.set(LogStatus::Failed(
                    "This browser cannot follow logs (no EventSource).".into(),
                ));
                follow.set(false);
            }
        }
    };
    let refresh = move || {
        if follow.get_untracked() {
            start_follow()
        } else {
            fetch()
        }
    };
    // Fetch on open and whenever an option changes.
    Effect::new(move |_| {
        tail.track();
        timestamps.track();
        container.track();
        refresh();
    });
    on_cleanup(move || {
        if let Some(Some(s)) = stream.try_get_value() {
            s.close();
        }
    });

    let download = move || {
        let _ = (tail.get(), timestamps.get(), container.get(), filter.get());
        api::services::logs_url(id, &query(Some("download")))
    };

    view! {
        <form class="toolbar" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); refresh(); }>
            <label class="inline">"Lines"
                <select data-testid="logs-tail" on:change=move |e| tail.set(event_target_value(&e).parse().unwrap_or(200))>
                    {[100u32, 200, 1000].into_iter().map(|n| view! { <option value=n.to_string() selected=n == 200>{n}</option> }).collect_view()}
                </select>
            </label>
            <label class="inline check"><input type="checkbox" data-testid="logs-timestamps"
                prop:checked=move || timestamps.get() on:change=move |e| timestamps.set(event_target_checked(&e))/>"Timestamps"</label>
            <Show when=move || { names.with(|n| n.len() > 1) }>
                <select aria-label="Container" on:change=move |e| container.set(event_target_value(&e))>
                    <option value="">"All containers"</option>
                    {move || names.get().into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                </select>
            </Show>
            <input type="search" class="search" placeholder="Filter lines (Enter)" aria-label="Filter log lines" data-testid="logs-filter"
                prop:value=move || filter.get() on:input=move |e| filter.set(event_target_value(&e))/>
            <button class="btn" type="submit" data-testid="logs-refresh">"Refresh"</button>
            <button class="btn" type="button" data-testid="logs-follow" aria-pressed=move || follow.get().to_string()
                class:btn-active=move || follow.get()
                on:click=move |_| {
                    let on = !follow.get_untracked();
                    follow.set(on);
                    if on { start_follow() } else { stop_stream(); status.set(LogStatus::Shown); }
                }>
                {move || if follow.get() { "■ Stop following" } else { "▶ Follow" }}
            </button>
            <a class="btn" href=download download="" data-testid="logs-download">"Download"</a>
        </form>
        {move || match status.get() {
            LogStatus::Loading => view! { <p class="muted small" role="status">"Loading logs…"</p> }.into_any(),
            LogStatus::Following => view! { <p class="muted small" role="status"><span class="live-dot" aria-hidden="true"></span>" Following: new lines appear live (the last "{LOG_CAP}" are kept)."</p> }.into_any(),
            LogStatus::Ended(m) => view! { <p class="notice" role="status">{m}</p> }.into_any(),
            LogStatus::Failed(m) => view! { <ErrorState message=m retry=Callback::new(move |_| refresh())/> }.into_any(),
            LogStatus::Shown => view! {
                <p class="muted small">{move || {
                    let n = lines.with(Vec::len);
                    if n == 0 { "No log lines (for this filter).".to_string() } else { format!("{n} lines") }
                }}</p>
            }.into_any(),
        }}
        <pre class="logs" data-testid="logs" node_ref=pre tabindex="0" aria-label="Log lines">{move || lines.with(|l| l.join("\n"))}</pre>
    }
}

#[component]
fn Stats(id: i64) -> impl IntoView {
    let data = RwSignal::new(None::<Result<Vec<ContainerStats>, String>>);
    let load = move || {
        leptos::task::spawn_local(async move {
            let r = api::services::stats(id).await;
            data.set(Some(r.map_err(|e| e.message)));
        });
    };
    load();
    use_interval(Duration::from_secs(5), load);
    move || {
        match data.get() {
        None => view! { <Loading rows=2/> }.into_any(),
        Some(Err(m)) => view! { <ErrorState message=m retry=Callback::new(move |_| load())/> }.into_any(),
        Some(Ok(list)) if list.is_empty() => view! {
            <EmptyState title="No running containers"><p>"Figures appear while a container of this service runs."</p></EmptyState>
        }.into_any(),
        Some(Ok(list)) => view! {
            <p class="muted small">"Refreshed every 5 s while shown."</p>
            <div class="table-wrap"><table class="table" data-testid="stats">
                <thead><tr><th>"Container"</th><th class="num">"CPU"</th><th class="num">"Memory"</th><th class="num">"Net rx / tx"</th><th class="num">"Block read / write"</th><th class="num">"PIDs"</th><th>"Sampled"</th></tr></thead>
                <tbody>{list.into_iter().map(|s| {
                    let mem_pct = (s.memory_limit_bytes > 0).then(|| s.memory_bytes as f64 * 100.0 / s.memory_limit_bytes as f64);
                    view! {
                        <tr>
                            <td><strong>{s.name.clone()}</strong></td>
                            <td class="num">{match s.cpu_percent {
                                Some(c) => format!("{c:.1} %"),
                                None => "sampling…".to_string(),
                            }}</td>
                            <td class="num">{format!("{} / {}", bytes(s.memory_bytes), if s.memory_limit_bytes > 0 { bytes(s.memory_limit_bytes) } else { "no limit".into() })}
                                {mem_pct.map(|p| view! { <div class="muted small">{format!("{p:.0} %")}</div> })}</td>
                            <td class="num">{format!("{} / {}", bytes(s.net_rx_bytes), bytes(s.net_tx_bytes))}</td>
                            <td class="num">{format!("{} / {}", bytes(s.block_read_bytes), bytes(s.block_write_bytes))}</td>
                            <td class="num">{s.pids}</td>
                            <td><RelTime at=Some(s.sampled_at)/></td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table></div>
        }.into_any(),
    }
    }
}

#[component]
fn Exec(id: i64, ov: Memo<Option<ServiceOverview>>) -> impl IntoView {
    let argv = RwSignal::new(String::new());
    let container = RwSignal::new(String::new());
    let timeout = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let result = RwSignal::new(None::<Result<ExecResult, String>>);
    let running = Memo::new(move |_| {
        ov.with(|o| {
            o.as_ref().map(|o| {
                o.containers
                    .iter()
                    .filter(|c| c.state == "running")
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default()
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let args: Vec<String> = argv
            .get_untracked()
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if args.is_empty() {
            result.set(Some(Err(
                "Enter the program and its arguments, one per line.".into(),
            )));
            return;
        }
        let req = ExecRequest {
            argv: args,
            container: non_empty(container.get_untracked()),
            timeout_secs: timeout.get_untracked().trim().parse().ok(),
        };
        busy.set(true);
        result.set(None);
        leptos::task::spawn_local(async move {
            let r = api::services::exec(id, &req).await;
            result.set(Some(r.map_err(|e| e.message)));
            busy.set(false);
        });
    };
    view! {
        <p class="hint">"Runs a program in a container "<strong>"without a shell"</strong>": one argument per line (e.g. "<code>"ls"</code>", "<code>"-l"</code>", "<code>"/data"</code>"). Pipes, globs and variables are not expanded; empty lines are ignored."</p>
        <form class="exec-form" on:submit=submit>
            <label class="span-all">"Command (one argument per line)"
                <textarea rows="4" class="mono" data-testid="exec-argv" spellcheck="false" placeholder="ls\n-l\n/"
                    prop:value=move || argv.get() on:input=move |e| argv.set(event_target_value(&e))></textarea>
            </label>
            <label>"Container"
                <select data-testid="exec-container" on:change=move |e| container.set(event_target_value(&e))>
                    <option value="">"First running container"</option>
                    {move || running.get().into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Timeout (s)"
                <input type="number" min="1" max="300" placeholder="30" prop:value=move || timeout.get() on:input=move |e| timeout.set(event_target_value(&e))/>
            </label>
            <button class="btn btn-primary" type="submit" data-testid="exec-run" disabled=move || busy.get()>
                {move || if busy.get() { "Running…" } else { "Run" }}
            </button>
        </form>
        {move || result.get().map(|r| match r {
            Err(m) => view! { <div class="notice notice-error" role="alert" data-testid="exec-result">{m}</div> }.into_any(),
            Ok(x) => view! {
                <div class="exec-result" data-testid="exec-result">
                    <div class="action-line">
                        {match x.exit_code {
                            Some(0) => view! { <Pill kind="ok" icon="✓" word="exit 0"/> }.into_any(),
                            Some(c) => view! { <Pill kind="outage" icon="✕" word=format!("exit {c}")/> }.into_any(),
                            None => view! { <Pill kind="unknown" icon="?" word="no exit code"/> }.into_any(),
                        }}
                        <span class="muted">{format!("in {} · {}", x.container, duration_ms(x.duration_ms))}</span>
                        {x.timed_out.then(|| view! { <Pill kind="degraded" icon="!" word="timed out"/> })}
                        {x.truncated.then(|| view! { <Pill kind="degraded" icon="…" word="output truncated"/> })}
                    </div>
                    <h3>"stdout"</h3>
                    <pre class="logs logs-short">{if x.stdout.is_empty() { "(empty)".to_string() } else { x.stdout.clone() }}</pre>
                    <h3>"stderr"</h3>
                    <pre class="logs logs-short">{if x.stderr.is_empty() { "(empty)".to_string() } else { x.stderr.clone() }}</pre>
                </div>
            }.into_any(),
        })}
    }
}

#[component]
fn Inspect(id: i64) -> impl IntoView {
    let data = RwSignal::new(None::<Result<Vec<serde_json::Value>, String>>);
    let busy = RwSignal::new(false);
    let load = move || {
        busy.set(true);
        leptos::task::spawn_local(async move {
            let r = api::services::inspect(id).await;
            data.set(Some(r.map_err(|e| e.message)));
            busy.set(false);
        });
    };
    view! {
        <div class="toolbar">
            <button class="btn" data-testid="inspect-load" disabled=move || busy.get() on:click=move |_| load()>
                {move || if data.with(Option::is_some) { "Reload" } else { "Load docker inspect" }}
            </button>
            <span class="muted small">"The engine's full description of each container (environment values included: handle with care)."</span>
        </div>
        {move || data.get().map(|r| match r {
            Err(m) => view! { <ErrorState message=m retry=Callback::new(move |_| load())/> }.into_any(),
            Ok(list) if list.is_empty() => view! { <EmptyState title="No containers"><p>"Nothing to inspect."</p></EmptyState> }.into_any(),
            Ok(list) => list.into_iter().map(|v| {
                let name = v.get("Name").and_then(|n| n.as_str()).map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_else(|| "container".into());
                let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                view! {
                    <details class="inspect" open>
                        <summary><strong>{name}</strong></summary>
                        <pre class="logs" data-testid="inspect-json">{text}</pre>
                    </details>
                }
            }).collect_view().into_any(),
        })}
    }
}

fn activity_table(list: Vec<ActionRecord>, testid: &'static str) -> impl IntoView {
    view! {
        <div class="table-wrap"><table class="table" data-testid=testid>
            <thead><tr><th>"When"</th><th>"Action"</th><th>"Actor"</th><th class="num">"Duration"</th><th>"Outcome"</th><th>"Steps"</th></tr></thead>
            <tbody>{list.into_iter().map(|r| {
                let steps = r.steps.len();
                let failed = r.steps.iter().filter(|s| !s.ok).count();
                view! {
                    <tr>
                        <td><RelTime at=Some(r.started_at)/></td>
                        <td><code>{r.kind.clone()}</code>{r.target.starts_with("stack:").then(|| view! { <div class="muted small">{r.target.clone()}</div> })}</td>
                        <td>{r.actor.clone()}</td>
                        <td class="num">{r.duration_ms.map(duration_ms).unwrap_or_else(|| "—".into())}</td>
                        <td><OutcomePill outcome=r.outcome/>{r.error.clone().map(|e| view! { <div class="error-text small">{e}</div> })}</td>
                        <td>{if steps == 0 {
                            view! { <span class="muted">"—"</span> }.into_any()
                        } else {
                            let plural = if steps == 1 { "" } else { "s" };
                            let summary = if failed > 0 { format!("{steps} step{plural}, {failed} failed") } else { format!("{steps} step{plural}") };
                            view! { <details><summary>{summary}</summary><Steps record=r.clone()/></details> }.into_any()
                        }}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
    }
}

#[component]
fn Activity(id: i64, ov: Memo<Option<ServiceOverview>>, reload: RwSignal<u32>) -> impl IntoView {
    let project =
        Memo::new(move |_| ov.with(|o| o.as_ref().and_then(|o| o.service.compose_project.clone())));
    let mine = LocalResource::new(move || {
        reload.get();
        async move { api::services::activity(id).await }
    });
    let stack = LocalResource::new(move || {
        reload.get();
        let p = project.get();
        async move {
            match p {
                Some(p) => api::services::stack_activity(&p).await.map(Some),
                None => Ok(None),
            }
        }
    });
    // Re-render only when the lists change (keeps opened step details open
    // across live updates).
    let mine = Memo::new(move |_| mine.get());
    let stack = Memo::new(move |_| stack.get());
    view! {
        {move || match mine.get() {
            None => view! { <Loading rows=2/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! {
                <EmptyState title="No actions yet"><p>"Every container and stack action on this service is listed here, with who ran it and how it ended."</p></EmptyState>
            }.into_any(),
            Some(Ok(list)) => activity_table(list, "activity").into_any(),
        }}
        {move || match stack.get() {
            Some(Ok(Some(list))) if !list.is_empty() => view! {
                <h3>"Stack "{project.get_untracked().unwrap_or_default()}</h3>
                {activity_table(list, "stack-activity")}
            }.into_any(),
            _ => ().into_any(),
        }}
    }
}

/// The edit form: filled from the service when opened; saves only the
/// fields that changed (a saved field counts as edited by hand).
#[component]
fn Edit(ov: Memo<Option<ServiceOverview>>, all: RwSignal<Vec<ServiceOverview>>) -> impl IntoView {
    let Some(start) = ov.get_untracked().map(|o| o.service) else {
        return ().into_any();
    };
    let id = start.id;
    let orig = StoredValue::new(start.clone());
    let f = |v: &Option<String>| RwSignal::new(v.clone().unwrap_or_default());
    let name = RwSignal::new(start.name.clone());
    let description = RwSignal::new(start.description.clone());
    let tier = RwSignal::new(start.tier.as_str().to_string());
    let owner_team = f(&start.owner_team);
    let docs_url = f(&start.docs_url);
    let repo_url = f(&start.repo_url);
    let engine = f(&start.engine);
    let compose_project = f(&start.compose_project);
    let compose_service = f(&start.compose_service);
    let container_name = f(&start.container_name);
    let image = f(&start.image);
    let requires = RwSignal::new(start.requires.iter().cloned().collect::<BTreeSet<String>>());
    let req_filter = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let engines = LocalResource::new(|| api::engines::list());
    let delete_open = RwSignal::new(false);
    let navigate = use_navigate();

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let o = orig.get_value();
        let changed = |new: String, old: &Option<String>| {
            let new = new.trim().to_string();
            (new != old.clone().unwrap_or_default()).then_some(new)
        };
        let new_name = name.get_untracked().trim().to_string();
        let new_desc = description.get_untracked().trim().to_string();
        let new_tier = tier_from(&tier.get_untracked());
        let new_requires: Vec<String> = requires.get_untracked().into_iter().collect();
        let mut old_requires = o.requires.clone();
        old_requires.sort();
        let input = ServiceInput {
            name: (new_name != o.name && !new_name.is_empty()).then_some(new_name),
            description: (new_desc != o.description).then_some(new_desc),
            tier: (new_tier != o.tier).then_some(new_tier),
            owner_team: changed(owner_team.get_untracked(), &o.owner_team),
            docs_url: changed(docs_url.get_untracked(), &o.docs_url),
            repo_url: changed(repo_url.get_untracked(), &o.repo_url),
            engine: changed(engine.get_untracked(), &o.engine),
            compose_project: changed(compose_project.get_untracked(), &o.compose_project),
            compose_service: changed(compose_service.get_untracked(), &o.compose_service),
            container_name: changed(container_name.get_untracked(), &o.container_name),
            image: changed(image.get_untracked(), &o.image),
            ports: None,
            volumes: None,
            labels: None,
            requires: (new_requires != old_requires).then_some(new_requires),
        };
        if input
            == (ServiceInput {
                name: None,
                description: None,
                tier: None,
                owner_team: None,
                docs_url: None,
                repo_url: None,
                engine: None,
                compose_project: None,
                compose_service: None,
                container_name: None,
                image: None,
                ports: None,
                volumes: None,
                labels: None,
                requires: None,
            })
        {
            notice.set(Some(Ok("Nothing changed.".into())));
            return;
        }
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::services::update(id, &input).await {
                Ok(s) => {
                    notice.set(Some(Ok(format!("Saved {}.", s.name))));
                    orig.set_value(s);
                }
                Err(e) => notice.set(Some(Err(e.message))),
            }
            busy.set(false);
        });
    };

    let delete = Callback::new(move |_| {
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api::services::remove(id).await {
                Ok(()) => navigate("/services", NavigateOptions::default()),
                Err(e) => notice.set(Some(Err(e.message))),
            }
        });
    });

    let marker = move |field: &'static str| {
        move || {
            orig.with_value(|s| s.edited_fields.iter().any(|f| f == field)).then(|| view! {
            <span class="edited" title="Edited by hand: imports leave this field alone">"✎ edited by hand"</span>
        })
        }
    };
    let text = move |label: &'static str,
                     field: &'static str,
                     sig: RwSignal<String>,
                     placeholder: &'static str| {
        view! {
            <label>
                <span>{label}" "{marker(field)}</span>
                <input placeholder=placeholder data-testid=format!("edit-{field}")
                    prop:value=move || sig.get() on:input=move |e| sig.set(event_target_value(&e))/>
            </label>
        }
    };

    view! {
        <form class="form-grid edit-form" on:submit=submit data-testid="edit-form">
            {text("Name", "name", name, "")}
            <label><span>"Tier "{marker("tier")}</span>
                <select data-testid="edit-tier" on:change=move |e| tier.set(event_target_value(&e))>
                    {Tier::ALL.iter().map(|t| view! { <option value=t.as_str() selected=t.as_str() == tier.get_untracked()>{tier_label(*t)}</option> }).collect_view()}
                </select>
            </label>
            {text("Owner team", "owner_team", owner_team, "e.g. platform")}
            <label class="span-all"><span>"Description "{marker("description")}</span>
                <textarea rows="2" data-testid="edit-description" prop:value=move || description.get() on:input=move |e| description.set(event_target_value(&e))></textarea>
            </label>
            {text("Docs URL", "docs_url", docs_url, "https://…")}
            {text("Repository URL", "repo_url", repo_url, "https://…")}
            <label><span>"Engine "{marker("engine")}</span>
                <select data-testid="edit-engine" on:change=move |e| engine.set(event_target_value(&e))>
                    <option value="" selected=engine.get_untracked().is_empty()>"Any engine"</option>
                    {move || {
                        let current = engine.get_untracked();
                        let mut names: Vec<String> = engines.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|e| e.name).collect();
                        if !current.is_empty() && !names.contains(&current) {
                            names.push(current.clone());
                        }
                        names.into_iter().map(|n| view! { <option value=n.clone() selected=n == current>{n.clone()}</option> }).collect_view()
                    }}
                </select>
            </label>
            {text("Compose project", "compose_project", compose_project, "")}
            {text("Compose service", "compose_service", compose_service, "")}
            {text("Container name", "container_name", container_name, "")}
            {text("Image", "image", image, "")}
            <fieldset class="span-all requires-box">
                <legend>"Requires "{marker("requires")}</legend>
                <input type="search" class="search" placeholder="Filter services" aria-label="Filter services"
                    on:input=move |e| req_filter.set(event_target_value(&e).to_lowercase())/>
                <div class="check-grid">
                    {move || {
                        let q = req_filter.get();
                        let me = orig.with_value(|s| s.name.clone());
                        let list: Vec<String> = all.with(|a| a.iter().map(|o| o.service.name.clone()).filter(|n| *n != me && (q.is_empty() || n.to_lowercase().contains(&q))).collect());
                        if list.is_empty() {
                            view! { <p class="muted">"No other services."</p> }.into_any()
                        } else {
                            list.into_iter().map(|n| {
                                let n2 = n.clone();
                                let n3 = n.clone();
                                view! {
                                    <label class="check">
                                        <input type="checkbox" data-testid=format!("requires-{n}")
                                            prop:checked=move || requires.with(|r| r.contains(&n2))
                                            on:change=move |e| {
                                                let on = event_target_checked(&e);
                                                let n = n3.clone();
                                                requires.update(|r| { if on { r.insert(n); } else { r.remove(&n); } });
                                            }/>
                                        {n}
                                    </label>
                                }
                            }).collect_view().into_any()
                        }
                    }}
                </div>
            </fieldset>
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="edit-save" disabled=move || busy.get()>"Save changes"</button>
                <span class="hint">"Fields you save here are marked edited by hand: later imports leave them alone."</span>
                <span class="spacer"></span>
                <button class="btn btn-danger" type="button" data-testid="service-delete" on:click=move |_| delete_open.set(true)>"Delete service…"</button>
            </div>
            {move || notice.get().map(|n| match n {
                Ok(m) => view! { <div class="notice notice-ok span-all" role="status">{m}</div> }.into_any(),
                Err(m) => view! { <div class="notice notice-error span-all" role="alert">{m}</div> }.into_any(),
            })}
        </form>
        <Confirm open=delete_open
            title=Signal::derive(move || format!("Delete {}?", orig.with_value(|s| s.name.clone())))
            message=Signal::derive(move || orig.with_value(|s| if s.supports.is_empty() {
                format!("{} leaves the inventory and the graph. Its containers keep running.", s.name)
            } else {
                format!("{} leaves the inventory and the graph; {} will no longer list it as a dependency. Its containers keep running.", s.name, s.supports.join(", "))
            }))
            confirm_label="Delete" on_confirm=delete/>
    }
    .into_any()
}

/// The service's health: its status on the board, its checks (with "Run
/// now", edit, delete and "Add check" for operators), the history of the
/// selected check, and the public status page opt-in.
#[component]
fn Health(id: i64) -> impl IntoView {
    let role = current_role();
    let operator = role >= Role::Operator;
    let store = use_status_store();
    let entry = store.entry(id);
    let reload = RwSignal::new(0u32);
    let bump = move || {
        reload.try_update(|n| *n = n.wrapping_add(1));
    };
    let checks = LocalResource::new(move || {
        reload.get();
        async move { api::checks::of_service(id).await }
    });
    // The service's status changed: its checks did.
    Effect::new(move |prev: Option<Option<u64>>| {
        let rev = entry.with(|e| e.as_ref().map(|r| r.rev));
        if prev.is_some_and(|p| p != rev) {
            bump();
        }
        rev
    });
    use_interval(Duration::from_secs(30), bump);
    let data = Memo::new(move |_| checks.get());
    let phase = Memo::new(move |_| {
        data.with(|d| match d {
            None => 0,
            Some(Err(_)) => 1,
            Some(Ok(v)) if v.is_empty() => 2,
            Some(Ok(_)) => 3,
        })
    });
    let list = Memo::new(move |_| {
        data.with(|d| match d {
            Some(Ok(v)) => v.clone(),
            _ => Vec::new(),
        })
    });
    let selected = RwSignal::new(None::<i64>);
    let form = RwSignal::new(None::<FormMode>);
    let saved = RwSignal::new(None::<(bool, Check)>);
    let selected_check = Memo::new(move |_| {
        let id = selected.get()?;
        list.with_untracked(|v| v.iter().find(|c| c.id == id).cloned())
    });
    let on_edit = Callback::new(move |c: Check| {
        saved.set(None);
        form.set(Some(FormMode::Edit(Box::new(c))));
    });
    let on_changed = Callback::new(move |_| bump());

    view! {
        {move || entry.get().map(|r| {
            let s = r.s;
            view! {
                <div class="health-summary" data-testid="service-health-summary">
                    <HealthPill health=s.health testid="service-health"/>
                    {s.since.map(|at| view! { <span class="muted small">"since "<RelTime at=Some(at)/></span> })}
                    {(!s.impacted_by.is_empty()).then(|| view! {
                        <span class="impacted">"impacted by "<strong>{s.impacted_by.join(", ")}</strong></span>
                    })}
                    <span class="spacer"></span>
                    <span class="hr-spark">{sparkline(&s.sparkline)}</span>
                    <dl class="uptime-figures uptime-inline">
                        <div><dt>"24 h"</dt><dd>{uptime_text(s.uptime.day)}</dd></div>
                        <div><dt>"7 d"</dt><dd>{uptime_text(s.uptime.week)}</dd></div>
                        <div><dt>"30 d"</dt><dd>{uptime_text(s.uptime.month)}</dd></div>
                    </dl>
                </div>
                {(!s.problems.is_empty()).then(|| view! {
                    <ul class="problems problems-block" data-testid="service-problems">
                        {s.problems.iter().map(|p| view! { <li>{p.clone()}</li> }).collect_view()}
                    </ul>
                })}
            }
        })}
        <SavedNotice saved/>
        {move || form.get().map(|mode| {
            let on_saved = Callback::new(move |c: Check| {
                let created = form.get_untracked() == Some(FormMode::Add);
                form.set(None);
                saved.set(Some((created, c)));
                bump();
            });
            let on_cancel = Callback::new(move |_| form.set(None));
            match mode {
                FormMode::Add => view! { <CheckForm service_id=Some(id) on_saved on_cancel/> }.into_any(),
                FormMode::Edit(c) => view! { <CheckForm service_id=Some(id) existing=*c on_saved on_cancel/> }.into_any(),
            }
        })}
        {move || match phase.get() {
            0 => view! { <Loading rows=2/> }.into_any(),
            1 => {
                let m = data.with_untracked(|d| match d { Some(Err(e)) => e.message.clone(), _ => String::new() });
                view! { <ErrorState title="Cannot load the checks" message=m retry=Callback::new(move |_| bump())/> }.into_any()
            }
            2 => view! {
                <EmptyState title="No checks yet">
                    <p>{if operator {
                        "Add a check: an HTTP endpoint, a TCP port, the database, the TLS certificate, the containers' state or resources, or a heartbeat from a job."
                    } else {
                        "An operator adds health checks; until then this service's health is unknown."
                    }}</p>
                </EmptyState>
            }.into_any(),
            _ => view! { <CheckTable checks=Signal::derive(move || list.get()) selected on_edit on_changed/> }.into_any(),
        }}
        {operator.then(|| view! {
            <div class="btn-row section-actions">
                <button class="btn btn-primary" data-testid="add-check" disabled=move || form.get() == Some(FormMode::Add)
                    on:click=move |_| { saved.set(None); form.set(Some(FormMode::Add)); }>"Add check"</button>
                <a class="btn" href="/checks">"All checks"</a>
            </div>
        })}
        {move || selected_check.get().map(|c| view! {
            <CheckHistoryView check=c on_close=Callback::new(move |_| selected.set(None))/>
        })}
        <PublicStatus id entry/>
    }
}

/// Opt the service into the public status page (operators), under its own
/// name or a public one.
#[component]
fn PublicStatus(id: i64, entry: Memo<Option<crate::status_store::Row>>) -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let store = use_status_store();
    let public = RwSignal::new(false);
    let name = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<String, String>>);
    // Filled from the board (and again when it changes, unless edited).
    let dirty = RwSignal::new(false);
    Effect::new(move |_| {
        let v = entry.with(|e| e.as_ref().map(|r| (r.s.public, r.s.public_name.clone())));
        if let Some((p, n)) = v {
            if !dirty.get_untracked() {
                public.set(p);
                name.set(n.unwrap_or_default());
            }
        }
    });
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let input = PublicStatusInput {
            public: public.get_untracked(),
            public_name: non_empty(name.get_untracked()),
        };
        busy.set(true);
        notice.set(None);
        leptos::task::spawn_local(async move {
            match api::services::set_public(id, &input).await {
                Ok(s) => {
                    let shown = s.public;
                    if store.replace(vec![s]) {
                        store.fetch();
                    }
                    dirty.try_set(false);
                    notice.try_set(Some(Ok(if shown {
                        "Shown on the public status page.".to_string()
                    } else {
                        "Not shown on the public status page.".to_string()
                    })));
                }
                Err(e) => {
                    notice.try_set(Some(Err(e.message)));
                }
            }
            busy.try_set(false);
        });
    };
    view! {
        <div class="public-status" data-testid="public-status">
            <h3>"Public status page"</h3>
            {if operator {
                view! {
                    <form class="toolbar" on:submit=save>
                        <label class="check">
                            <input type="checkbox" data-testid="public-toggle"
                                prop:checked=move || public.get()
                                on:change=move |e| { dirty.set(true); public.set(event_target_checked(&e)); }/>
                            "Show on the public status page"
                        </label>
                        <input type="text" aria-label="Public name" placeholder="Public name (the service name by default)" data-testid="public-name"
                            maxlength="80" disabled=move || !public.get()
                            prop:value=move || name.get() on:input=move |e| { dirty.set(true); name.set(event_target_value(&e)); }/>
                        <button class="btn" type="submit" data-testid="public-save" disabled=move || busy.get()>"Save"</button>
                        <a href="/status" target="_blank" rel="external noopener">"Open the public page "<span aria-hidden="true">"↗"</span></a>
                    </form>
                }.into_any()
            } else {
                view! {
                    <p class="muted">{move || if public.get() {
                        format!("Shown on the public status page as {}.", non_empty(name.get()).or_else(|| entry.with(|e| e.as_ref().map(|r| r.s.name.clone()))).unwrap_or_default())
                    } else {
                        "Not shown on the public status page.".to_string()
                    }}" "<a href="/status" target="_blank" rel="external noopener">"Open it "<span aria-hidden="true">"↗"</span></a></p>
                }.into_any()
            }}
            {move || notice.get().map(|n| match n {
                Ok(m) => view! { <div class="notice notice-ok" role="status">{m}</div> }.into_any(),
                Err(m) => view! { <div class="notice notice-error" role="alert">{m}</div> }.into_any(),
            })}
        </div>
    }
}
