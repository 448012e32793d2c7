//! Inventory import (`/inventory`, admins): a compose project (its files
//! uploaded together, or one file pasted; see [`compose`]), compose projects discovered on the engines, and the
//! whole inventory as YAML (config as code: export, edit, import). Every
//! import is previewed first as a plan (add / update / remove / unchanged,
//! field by field, and what is kept because it was edited by hand); Apply
//! sends the same request with `apply: true`.

use std::collections::{BTreeMap, BTreeSet};

use leptos::prelude::*;
use opsdeck_wire::{
    ChangeKind, DiscoveredImportRequest, DiscoveredProject, ImportPlan, InventoryImportRequest,
};

use crate::api;
use crate::live::use_inventory_events;
use crate::states::ChangePill;
use crate::ui::{Confirm, EmptyState, ErrorState, Loading, Pill};

mod compose;
mod files;
mod proposed;

use compose::ComposePanel;

#[derive(Clone, Copy, PartialEq)]
enum Tab {
    Compose,
    Discovered,
    Yaml,
}

#[component]
pub fn Import() -> impl IntoView {
    let tab = RwSignal::new(Tab::Compose);
    let tab_button = move |t: Tab, label: &'static str, testid: &'static str| {
        view! {
            <button type="button" role="tab" class="tab" data-testid=testid
                aria-selected=move || (tab.get() == t).to_string()
                on:click=move |_| tab.set(t)>{label}</button>
        }
    };
    view! {
        <h1>"Inventory import"</h1>
        <p class="lede">"Bring services into the inventory. Every import shows what it would change before you apply it; fields edited by hand are kept."</p>
        <div class="tabs" role="tablist" aria-label="Import source">
            {tab_button(Tab::Compose, "Compose file", "tab-compose")}
            {tab_button(Tab::Discovered, "Discovered", "tab-discovered")}
            {tab_button(Tab::Yaml, "YAML (config as code)", "tab-yaml")}
        </div>
        <div class="tab-panel" role="tabpanel">
            {move || match tab.get() {
                Tab::Compose => view! { <ComposePanel/> }.into_any(),
                Tab::Discovered => view! { <DiscoveredPanel/> }.into_any(),
                Tab::Yaml => view! { <YamlPanel/> }.into_any(),
            }}
        </div>
    }
}

/// Counts of a plan by kind: (add, update, remove, unchanged).
fn counts(plan: &ImportPlan) -> (usize, usize, usize, usize) {
    let n = |k: ChangeKind| plan.changes.iter().filter(|c| c.kind == k).count();
    (
        n(ChangeKind::Add),
        n(ChangeKind::Update),
        n(ChangeKind::Remove),
        n(ChangeKind::Unchanged),
    )
}

fn summary(plan: &ImportPlan) -> String {
    let (a, u, r, same) = counts(plan);
    let verb =
        |preview: &'static str, done: &'static str| if plan.applied { done } else { preview };
    let mut parts = vec![
        format!("{a} {}", verb("to add", "added")),
        format!("{u} {}", verb("to update", "updated")),
    ];
    if r > 0 {
        parts.push(format!("{r} {}", verb("to remove", "removed")));
    }
    parts.push(format!("{same} unchanged"));
    parts.join(", ")
}

/// An import plan as a table of changes.
#[component]
pub fn PlanView(plan: ImportPlan) -> impl IntoView {
    let head = format!(
        "{}{}: {}",
        if plan.applied { "Applied" } else { "Preview" },
        plan.project
            .as_ref()
            .map(|p| format!(" of project {p}"))
            .unwrap_or_default(),
        summary(&plan)
    );
    let applied = plan.applied;
    view! {
        <div class="plan" data-testid="plan">
            <p class="plan-head" class:notice-ok=applied role="status">
                {if applied { "✓ " } else { "" }}<strong data-testid="plan-head">{head}</strong>
                {applied.then(|| view! { " · "<a href="/services">"Services"</a>" · "<a href="/graph">"Graph"</a> })}
            </p>
            {if plan.changes.is_empty() {
                view! { <EmptyState title="Nothing to import"><p>"The source names no services."</p></EmptyState> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table plan-table">
                        <thead><tr><th>"Change"</th><th>"Service"</th><th>"Fields"</th></tr></thead>
                        <tbody>{plan.changes.into_iter().map(|c| {
                            let service = c.service.clone();
                            let guessed = c.guessed.clone();
                            view! {
                            <tr data-testid=format!("plan-row-{}", c.service) class:row-quiet=c.kind == ChangeKind::Unchanged>
                                <td><ChangePill kind=c.kind applied/></td>
                                <td><strong>{c.service.clone()}</strong></td>
                                <td>
                                    {(!c.fields.is_empty()).then(|| view! {
                                        <ul class="field-changes">
                                            {c.fields.into_iter().map(|f| {
                                                let is_guess = guessed.contains(&f.field);
                                                view! {
                                                <li><code>{f.field.clone()}</code>": "
                                                    <span class="old">{if f.old.is_empty() { "∅".to_string() } else { f.old.clone() }}</span>
                                                    <span aria-label="becomes">" → "</span>
                                                    <span class="new">{if f.new.is_empty() { "∅".to_string() } else { f.new.clone() }}</span>
                                                    {is_guess.then(|| view! {
                                                        " "<span class="guessed" data-testid=format!("guessed-{service}-{}", f.field)
                                                            title="A guess from the image's name: change it on the service's page if it is wrong">"guessed"</span>
                                                    })}
                                                </li>
                                            }}).collect_view()}
                                        </ul>
                                    })}
                                    {(!c.kept_manual.is_empty()).then(|| view! {
                                        <div class="kept small"><span aria-hidden="true">"✎ "</span>"kept (edited by hand): "{c.kept_manual.join(", ")}</div>
                                    })}
                                </td>
                            </tr>
                        }}).collect_view()}</tbody>
                    </table></div>
                }.into_any()
            }}
        </div>
    }
}

/// "Load a file" for a text area.
#[component]
fn FileLoad(
    target: RwSignal<String>,
    error: RwSignal<Option<String>>,
    testid: &'static str,
) -> impl IntoView {
    let on_change = move |e: leptos::ev::Event| {
        let input: web_sys::HtmlInputElement = event_target(&e);
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        let promise = file.text();
        leptos::task::spawn_local(async move {
            match wasm_bindgen_futures::JsFuture::from(promise).await {
                Ok(v) => match v.as_string() {
                    Some(s) => target.set(s),
                    None => error.set(Some("The file is not text.".into())),
                },
                Err(_) => error.set(Some("The browser could not read the file.".into())),
            }
        });
    };
    view! {
        <label class="file-load">
            <span>"…or load a file"</span>
            <input type="file" accept=".yml,.yaml,text/yaml,application/yaml,text/plain" data-testid=testid on:change=on_change/>
        </label>
    }
}

fn import_error(e: RwSignal<Option<String>>) -> impl IntoView {
    move || {
        e.get().map(|m| {
            view! { <div data-testid="import-error"><ErrorState title="The import was refused" message=m/></div> }
        })
    }
}

#[component]
fn DiscoveredPanel() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    use_inventory_events(reload);
    let projects = LocalResource::new(move || {
        reload.get();
        api::inventory::discovered()
    });
    let query = RwSignal::new(String::new());
    // Plans by (engine, project), kept across live reloads.
    let plans = RwSignal::new(BTreeMap::<(String, String), Result<ImportPlan, String>>::new());
    let busy = RwSignal::new(None::<(String, String)>);
    // Projects to import from their own compose files (read on the host).
    let from_files = RwSignal::new(BTreeSet::<(String, String)>::new());

    let send = move |engine: String, project: String, apply: bool| {
        let key = (engine.clone(), project.clone());
        busy.set(Some(key.clone()));
        let files = from_files.with_untracked(|s| s.contains(&key));
        leptos::task::spawn_local(async move {
            let req = DiscoveredImportRequest {
                engine,
                project,
                apply,
                from_files: files,
                profiles: None,
                checks: None,
                check_passwords: Default::default(),
            };
            let r = api::inventory::import_discovered(&req).await;
            plans.update(|m| {
                m.insert(key, r.map_err(|e| e.message));
            });
            busy.set(None);
            reload.update(|n| *n += 1);
        });
    };

    let card = move |p: DiscoveredProject| {
        let key = (p.engine.clone(), p.project.clone());
        let (k1, k2, k3, k4, k5) = (
            key.clone(),
            key.clone(),
            key.clone(),
            key.clone(),
            key.clone(),
        );
        let total = p.services.len();
        let known = p.services.iter().filter(|s| s.in_inventory).count();
        let (e1, p1, e2, p2) = (
            p.engine.clone(),
            p.project.clone(),
            p.engine.clone(),
            p.project.clone(),
        );
        view! {
            <section class="card discovered" data-testid=format!("discovered-{}", p.project)>
                <div class="card-head">
                    <h2>{p.project.clone()}</h2>
                    <span class="muted">"on "{p.engine.clone()}</span>
                    <span class="muted small">{format!("{total} service{} · {known} in inventory", if total == 1 { "" } else { "s" })}</span>
                    <span class="spacer"></span>
                    <label class="check small" title="Read the project's compose files, override files, includes and .env from the engine's host, as its containers' labels name them, and import what they say (profiles, labels, interpolation)">
                        <input type="checkbox" data-testid=format!("discovered-files-{}", p.project)
                            prop:checked=move || from_files.with(|s| s.contains(&k4))
                            on:change=move |e| {
                                let on = event_target_checked(&e);
                                from_files.update(|s| { if on { s.insert(k5.clone()); } else { s.remove(&k5); } });
                            }/>
                        " From its compose files"
                    </label>
                    <button class="btn" data-testid=format!("discovered-preview-{}", p.project)
                        disabled=move || busy.get().is_some()
                        on:click=move |_| send(e1.clone(), p1.clone(), false)>"Preview"</button>
                    <button class="btn btn-primary" data-testid=format!("discovered-apply-{}", p.project)
                        disabled=move || busy.get().is_some()
                        on:click=move |_| send(e2.clone(), p2.clone(), true)>
                        {move || if busy.get().as_ref() == Some(&k1) { "Working…" } else { "Add to inventory" }}
                    </button>
                </div>
                <div class="table-wrap"><table class="table">
                    <thead><tr><th>"Service"</th><th>"Image"</th><th>"Containers"</th><th>"Depends on"</th><th>"Inventory"</th></tr></thead>
                    <tbody>{p.services.into_iter().map(|s| {
                        let running = match (s.running, s.containers) {
                            (r, c) if c > 0 && r == c => view! { <Pill kind="ok" icon="✓" word=format!("{r}/{c} running")/> }.into_any(),
                            (0, c) => view! { <Pill kind="outage" icon="■" word=format!("0/{c} running")/> }.into_any(),
                            (r, c) => view! { <Pill kind="degraded" icon="▲" word=format!("{r}/{c} running")/> }.into_any(),
                        };
                        view! {
                            <tr>
                                <td><strong>{s.name.clone()}</strong></td>
                                <td><code class="wrap-anywhere">{s.image.clone()}</code></td>
                                <td>{running}</td>
                                <td>{if s.depends_on.is_empty() { "—".to_string() } else { s.depends_on.join(", ") }}</td>
                                <td>{if s.in_inventory {
                                    view! { <Pill kind="ok" icon="✓" word="in inventory"/> }.into_any()
                                } else {
                                    view! { <Pill kind="unknown" icon="+" word="not yet"/> }.into_any()
                                }}</td>
                            </tr>
                        }
                    }).collect_view()}</tbody>
                </table></div>
                {move || plans.with(|m| m.get(&k2).cloned()).map(|r| match r {
                    Ok(plan) => view! { <PlanView plan/> }.into_any(),
                    Err(m) => view! { <div data-testid="import-error"><ErrorState title="The import was refused" message=m/></div> }.into_any(),
                })}
                {move || (busy.get().as_ref() == Some(&k3)).then(|| view! { <p class="muted" role="status">"Working…"</p> })}
            </section>
        }
    };

    view! {
        <p class="hint">"Compose projects found from the labels of containers on the connected engines."</p>
        <div class="toolbar">
            <input class="search" type="search" placeholder="Filter projects and services" aria-label="Filter discovered projects"
                data-testid="discovered-search"
                prop:value=move || query.get() on:input=move |e| query.set(event_target_value(&e))/>
        </div>
        <Transition fallback=|| view! { <Loading rows=3/> }>
            {move || projects.get().map(|r| match r {
                Err(e) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                Ok(list) if list.is_empty() => view! {
                    <EmptyState title="No compose projects found">
                        <p>"Opsdeck reads the compose labels of containers on connected engines. Add an engine on the "
                        <a href="/engines">"Engines"</a>" page, or paste a compose file in the Compose file tab."</p>
                    </EmptyState>
                }.into_any(),
                Ok(list) => {
                    let q = query.get().trim().to_lowercase();
                    let shown: Vec<DiscoveredProject> = list.into_iter().filter(|p| {
                        q.is_empty() || p.project.to_lowercase().contains(&q)
                            || p.services.iter().any(|s| s.name.to_lowercase().contains(&q) || s.image.to_lowercase().contains(&q))
                    }).collect();
                    if shown.is_empty() {
                        view! { <EmptyState title="No projects match"><p>"Change the filter."</p></EmptyState> }.into_any()
                    } else {
                        shown.into_iter().map(card).collect_view().into_any()
                    }
                }
            })}
        </Transition>
    }
}

#[component]
fn YamlPanel() -> impl IntoView {
    let content = RwSignal::new(String::new());
    let previewed = RwSignal::new(None::<String>);
    let plan = RwSignal::new(None::<ImportPlan>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let confirm_open = RwSignal::new(false);

    let can_apply = move || {
        !busy.get()
            && previewed.get().is_some_and(|p| p == content.get())
            && plan.with(|p| p.as_ref().is_some_and(|p| !p.applied))
    };
    let send = move |apply: bool| {
        let req = InventoryImportRequest {
            content: content.get_untracked(),
            apply,
        };
        if req.content.trim().is_empty() {
            error.set(Some(
                "Paste the inventory YAML (see Export) or load a file first.".into(),
            ));
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::inventory::import(&req).await {
                Ok(p) => {
                    previewed.set((!apply).then_some(req.content));
                    plan.set(Some(p));
                }
                Err(e) => {
                    error.set(Some(e.message));
                    plan.set(None);
                    previewed.set(None);
                }
            }
            busy.set(false);
        });
    };
    let confirm_message = Signal::derive(move || {
        plan.with(|p| {
            p.as_ref()
                .map(|p| {
                    let removed: Vec<&str> = p
                        .changes
                        .iter()
                        .filter(|c| c.kind == ChangeKind::Remove)
                        .map(|c| c.service.as_str())
                        .collect();
                    let mut m = format!("The inventory becomes exactly the file: {}.", summary(p));
                    if !removed.is_empty() {
                        m.push_str(&format!(" Removed: {}.", removed.join(", ")));
                    }
                    m
                })
                .unwrap_or_default()
        })
    });

    view! {
        <div class="notice notice-warn" role="note">
            <strong>"⚠ Applying replaces the whole inventory."</strong>
            <span>"Services missing from the file are removed, with their dependencies. Export first to keep a copy."</span>
        </div>
        <div class="btn-row">
            <a class="btn" href=api::inventory::export_url() download="opsdeck-inventory.yaml" data-testid="export-yaml">"⇩ Export current inventory (YAML)"</a>
        </div>
        <Confirm open=confirm_open title=Signal::derive(|| "Replace the inventory?".to_string()) message=confirm_message
            confirm_label="Replace inventory" on_confirm=Callback::new(move |_| send(true))/>
        <form class="import-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); send(false); }>
            <label class="span-all">"Inventory YAML"
                <textarea rows="16" class="mono" spellcheck="false" data-testid="yaml-text"
                    placeholder="services:\n  - name: db\n    tier: critical\n  - name: api\n    requires: [db]"
                    prop:value=move || content.get() on:input=move |e| content.set(event_target_value(&e))></textarea>
            </label>
            <FileLoad target=content error testid="yaml-file"/>
            <div class="span-all btn-row">
                <button class="btn" type="submit" data-testid="yaml-preview" disabled=move || busy.get()>"Preview"</button>
                <button class="btn btn-danger" type="button" data-testid="yaml-apply" disabled=move || !can_apply()
                    on:click=move |_| confirm_open.set(true)>"Apply…"</button>
                <span class="hint">{move || if previewed.get().is_none() && !plan.with(|p| p.as_ref().is_some_and(|p| p.applied)) { "Preview first: Apply imports exactly what the preview shows." } else { "" }}</span>
            </div>
        </form>
        {import_error(error)}
        {move || plan.get().map(|p| view! { <PlanView plan=p/> })}
    }
}
