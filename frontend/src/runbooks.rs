//! Runbooks. The list (`/runbooks`): every runbook as a card with its
//! version, badges (built-in, needs approval) and last run; operators start
//! one from a dialog whose form comes from the runbook's typed parameters,
//! with a dry run that shows what each step would do. Admins write
//! runbooks as YAML (`/runbooks/new`, `/runbooks/:id/edit`): save makes a
//! new version, old versions stay readable, export and delete are there too.
//!
//! [`ParamFields`], [`initial_values`] and [`collect_params`] (the form of
//! a runbook's parameters) are shared with the schedules page.

use std::collections::BTreeMap;

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use leptos_router::NavigateOptions;
use opsdeck_wire::{
    DryRun, OnFailure, ParamDef, ParamKind, Role, Runbook, RunbookSummary, RunbookVersion,
    RunbookWrite, StartRun,
};
use serde_json::Value;
use wasm_bindgen::JsCast;

use crate::api::{self, ApiError};
use crate::runs::RunStatusPill;
use crate::session::current_role;
use crate::time::RelTime;
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

// ---------------------------------------------------------------- parameters

/// The form's text for each parameter: `existing` values, else defaults.
pub fn initial_values(
    defs: &[ParamDef],
    existing: Option<&BTreeMap<String, Value>>,
) -> BTreeMap<String, String> {
    defs.iter()
        .map(|d| {
            let v = existing
                .and_then(|e| e.get(&d.name))
                .or(d.default.as_ref())
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (d.name.clone(), v)
        })
        .collect()
}

fn label_of(d: &ParamDef) -> String {
    if d.label.is_empty() {
        d.name.clone()
    } else {
        d.label.clone()
    }
}

/// Typed values from the form's text; the server validates them again
/// (patterns, durations, whether a service exists).
pub fn collect_params(
    defs: &[ParamDef],
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for d in defs {
        let text = values.get(&d.name).map(|s| s.trim()).unwrap_or_default();
        if text.is_empty() {
            if d.required {
                return Err(format!("{}: required.", label_of(d)));
            }
            continue;
        }
        let value = match &d.kind {
            ParamKind::Integer { min, max } => {
                let n: i64 = text
                    .parse()
                    .map_err(|_| format!("{}: a whole number, not {text}.", label_of(d)))?;
                if let Some(min) = min.filter(|m| n < *m) {
                    return Err(format!("{}: at least {min}.", label_of(d)));
                }
                if let Some(max) = max.filter(|m| n > *m) {
                    return Err(format!("{}: at most {max}.", label_of(d)));
                }
                Value::from(n)
            }
            ParamKind::Text {
                max_len: Some(max), ..
            } if text.chars().count() > *max => {
                return Err(format!("{}: at most {max} characters.", label_of(d)));
            }
            _ => Value::String(text.to_string()),
        };
        out.insert(d.name.clone(), value);
    }
    Ok(out)
}

fn sorted_unique(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// One input per parameter (`data-testid="param-NAME"`), typed by the
/// parameter's kind: services and databases are chosen from the inventory.
#[component]
pub fn ParamFields(
    params: Vec<ParamDef>,
    values: RwSignal<BTreeMap<String, String>>,
) -> impl IntoView {
    let needs_services = params
        .iter()
        .any(|p| matches!(p.kind, ParamKind::Service | ParamKind::Database));
    let needs_databases = params.iter().any(|p| matches!(p.kind, ParamKind::Database));
    let services = LocalResource::new(move || async move {
        if !needs_services {
            return Ok(Vec::new());
        }
        api::services::list()
            .await
            .map(|v| sorted_unique(v.into_iter().map(|o| o.service.name).collect()))
    });
    // Databases: services with a PostgreSQL or MySQL check.
    let databases = LocalResource::new(move || async move {
        if !needs_databases {
            return Ok(Vec::new());
        }
        api::checks::list().await.map(|v| {
            sorted_unique(
                v.into_iter()
                    .filter(|c| matches!(c.spec.kind(), "postgres" | "mysql"))
                    .filter_map(|c| c.service)
                    .collect(),
            )
        })
    });
    if params.is_empty() {
        return view! { <p class="muted">"This runbook takes no parameters."</p> }.into_any();
    }
    view! {
        <div class="param-grid">
            {params.into_iter().map(|p| param_field(p, values, services, databases)).collect_view()}
        </div>
    }
    .into_any()
}

type Names = LocalResource<Result<Vec<String>, ApiError>>;

fn param_field(
    p: ParamDef,
    values: RwSignal<BTreeMap<String, String>>,
    services: Names,
    databases: Names,
) -> impl IntoView {
    let name = StoredValue::new(p.name.clone());
    let testid = format!("param-{}", p.name);
    let value = move || values.with(|m| name.with_value(|n| m.get(n).cloned()).unwrap_or_default());
    let set = move |v: String| {
        values.update(|m| {
            m.insert(name.get_value(), v);
        })
    };
    let label = label_of(&p);
    let required = p.required;
    let text_input = move |testid: String, placeholder: String, maxlength: Option<usize>| {
        view! {
            <input data-testid=testid placeholder=placeholder maxlength=maxlength.map(|m| m.to_string())
                required=required autocomplete="off" spellcheck="false"
                prop:value=value on:input=move |e| set(event_target_value(&e))/>
        }
    };
    let select = move |testid: String, options: Vec<String>| {
        let current =
            values.with_untracked(|m| name.with_value(|n| m.get(n).cloned()).unwrap_or_default());
        let mut options = options;
        if !current.is_empty() && !options.contains(&current) {
            options.insert(0, current);
        }
        view! {
            <select data-testid=testid required=required on:change=move |e| set(event_target_value(&e))>
                <option value="" prop:selected=move || value().is_empty()>{if required { "— choose —" } else { "— none —" }}</option>
                {options.into_iter().map(|o| {
                    let sel = o.clone();
                    let val = o.clone();
                    view! { <option value=val prop:selected=move || value() == sel>{o}</option> }
                }).collect_view()}
            </select>
        }
    };
    // Choose from a list once it is known; type the name without one.
    let from_list = move |testid: String,
                          list: Names,
                          fallback: Option<Names>,
                          placeholder: &'static str| {
        move || {
            let names = match (list.get(), fallback.and_then(|f| f.get())) {
                (Some(Ok(v)), _) if !v.is_empty() => Some(v),
                (Some(_), Some(Ok(v))) if !v.is_empty() => Some(v),
                (None, _) => None,
                _ => Some(Vec::new()),
            };
            match names {
                None => view! { <select disabled=true data-testid=testid.clone()><option>"Loading…"</option></select> }.into_any(),
                Some(v) if v.is_empty() => text_input(testid.clone(), placeholder.to_string(), None).into_any(),
                Some(v) => select(testid.clone(), v).into_any(),
            }
        }
    };
    let (input, hint): (AnyView, Option<String>) = match &p.kind {
        ParamKind::Service => (
            from_list(testid, services, None, "service name").into_any(),
            None,
        ),
        ParamKind::Database => (
            from_list(testid, databases, Some(services), "database service").into_any(),
            Some("A service with a PostgreSQL or MySQL check.".into()),
        ),
        ParamKind::Container => (
            text_input(testid, "container name".into(), None).into_any(),
            None,
        ),
        ParamKind::Integer { min, max } => {
            let hint = match (min, max) {
                (Some(a), Some(b)) => Some(format!("From {a} to {b}.")),
                (Some(a), None) => Some(format!("At least {a}.")),
                (None, Some(b)) => Some(format!("At most {b}.")),
                (None, None) => None,
            };
            let (min, max) = (min.map(|m| m.to_string()), max.map(|m| m.to_string()));
            (
                view! {
                    <input type="number" step="1" min=min max=max data-testid=testid required=required
                        prop:value=value on:input=move |e| set(event_target_value(&e))/>
                }
                .into_any(),
                hint,
            )
        }
        ParamKind::Choice { options } => (select(testid, options.clone()).into_any(), None),
        ParamKind::Duration { min, max } => {
            let hint = match (min, max) {
                (Some(a), Some(b)) => format!("A duration such as 90s, 5m, 1h; from {a} to {b}."),
                (Some(a), None) => format!("A duration such as 90s, 5m, 1h; at least {a}."),
                (None, Some(b)) => format!("A duration such as 90s, 5m, 1h; at most {b}."),
                (None, None) => "A duration such as 90s, 5m, 1h.".to_string(),
            };
            (text_input(testid, "5m".into(), None).into_any(), Some(hint))
        }
        ParamKind::Text { max_len, .. } => {
            (text_input(testid, String::new(), *max_len).into_any(), None)
        }
    };
    let pattern = match &p.kind {
        ParamKind::Text {
            pattern: Some(pat), ..
        } => Some(pat.clone()),
        _ => None,
    };
    let help = (!p.help.is_empty()).then(|| p.help.clone());
    view! {
        <label class="param-field">
            <span>{label}{(!required).then(|| view! { <span class="muted optional">" (optional)"</span> })}</span>
            {input}
            {help.map(|h| view! { <span class="hint">{h}</span> })}
            {hint.map(|h| view! { <span class="hint">{h}</span> })}
            {pattern.map(|pat| view! { <span class="hint">"Must match "<code class="wrap-anywhere">{pat}</code></span> })}
        </label>
    }
}

// ---------------------------------------------------------------- the list

/// The first paragraph of a description (the rest is for the dialog).
fn first_paragraph(text: &str) -> String {
    text.trim()
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

fn matches(rb: &RunbookSummary, q: &str) -> bool {
    q.is_empty()
        || rb.name.to_lowercase().contains(q)
        || rb.title.to_lowercase().contains(q)
        || rb.description.to_lowercase().contains(q)
}

#[component]
pub fn Runbooks() -> impl IntoView {
    let role = current_role();
    let reload = RwSignal::new(0u32);
    let list = LocalResource::new(move || {
        reload.get();
        api::runbooks::list()
    });
    let query = RwSignal::new(String::new());
    let running = RwSignal::new(None::<RunbookSummary>);
    let on_run = Callback::new(move |rb: RunbookSummary| running.set(Some(rb)));

    let content = move || {
        list.get().map(|r| match r {
            Err(e) => view! {
                <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/>
            }
            .into_any(),
            Ok(v) if v.is_empty() => view! {
                <EmptyState title="No runbooks yet">
                    {if role >= Role::Admin {
                        view! {
                            <p>"Write one in YAML, or import a file exported from another Opsdeck."</p>
                            <a class="btn btn-primary" href="/runbooks/new">"New runbook"</a>
                        }.into_any()
                    } else {
                        view! { <p>"An admin writes them; the built-in ones appear after the first start."</p> }.into_any()
                    }}
                </EmptyState>
            }
            .into_any(),
            Ok(mut v) => {
                let q = query.get().trim().to_lowercase();
                v.retain(|rb| matches(rb, &q));
                // Built-ins after the team's own, each by title.
                v.sort_by(|a, b| a.builtin.cmp(&b.builtin).then_with(|| a.title.cmp(&b.title)));
                if v.is_empty() {
                    return view! {
                        <EmptyState title="No runbooks match">
                            <p>"Change the search."</p>
                        </EmptyState>
                    }
                    .into_any();
                }
                view! {
                    <div class="runbook-grid" data-testid="runbook-list">
                        {v.into_iter().map(|rb| card(rb, role, on_run)).collect_view()}
                    </div>
                }
                .into_any()
            }
        })
    };

    view! {
        <div class="page-head">
            <h1>"Runbooks"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/runs">"Run history"</a>
            <a class="btn" href="/schedules">"Schedules"</a>
            {(role >= Role::Admin).then(|| view! {
                <a class="btn btn-primary" href="/runbooks/new" data-testid="new-runbook">"New runbook"</a>
            })}
        </div>
        <p class="lede">"The handbook's procedures, one click each: typed parameters, a dry run first if you like, live output, and a record of who ran what and why."</p>
        <div class="toolbar">
            <input class="search" type="search" placeholder="Search name, title, description" aria-label="Search runbooks"
                data-testid="runbooks-search" prop:value=move || query.get() on:input=move |e| query.set(event_target_value(&e))/>
        </div>
        <Transition fallback=|| view! { <Loading rows=4/> }>{content}</Transition>
        {move || running.get().map(|rb| view! {
            <RunDialog runbook=rb on_close=Callback::new(move |_| running.set(None))/>
        })}
    }
}

fn card(rb: RunbookSummary, role: Role, on_run: Callback<RunbookSummary>) -> impl IntoView {
    let name = rb.name.clone();
    let id = rb.id;
    let for_run = rb.clone();
    let params = rb.params.len();
    view! {
        <article class="card runbook-card" data-testid=format!("runbook-card-{name}")>
            <div class="runbook-card-head">
                <h2>{rb.title.clone()}</h2>
                <span class="version-badge" title="Current version">"v"{rb.version}</span>
                {rb.builtin.then(|| view! { <span class="tag tag-builtin" title="Shipped with Opsdeck (editable)">"built-in"</span> })}
                {rb.needs_approval.then(|| view! {
                    <span class="tag tag-approval" data-testid="needs-approval" title="A run waits for a second person's approval">"✓ needs approval"</span>
                })}
            </div>
            <code class="muted small">{name.clone()}</code>
            <p class="clamp runbook-desc">{first_paragraph(&rb.description)}</p>
            <div class="muted small">
                {format!("{} step{}", rb.steps, if rb.steps == 1 { "" } else { "s" })}" · "
                {if params == 0 { "no parameters".to_string() } else {
                    rb.params.iter().map(label_of).collect::<Vec<_>>().join(", ")
                }}
            </div>
            <div class="runbook-last small">
                {match rb.last_run.clone() {
                    Some(last) => view! {
                        <span class="muted">"Last run "</span>
                        <RunStatusPill status=last.status/>" "
                        <a href=format!("/runs/{}", last.id)>"#"{last.id}</a>" "
                        <span class="muted"><RelTime at=Some(last.started_at.unwrap_or(last.created_at))/>" by "{last.requested_by.clone()}</span>
                    }.into_any(),
                    None => view! { <span class="muted">"Never run"</span> }.into_any(),
                }}
            </div>
            <div class="btn-row">
                {(role >= Role::Operator).then(|| view! {
                    <button class="btn btn-primary" data-testid=format!("run-button-{name}")
                        on:click=move |_| on_run.run(for_run.clone())>"▶ Run…"</button>
                })}
                <a class="btn" href=format!("/runs?runbook={id}")>"History"</a>
                {(role >= Role::Admin).then(|| view! {
                    <a class="btn" href=format!("/runbooks/{id}/edit") data-testid=format!("edit-runbook-{name}")>"Edit"</a>
                })}
            </div>
        </article>
    }
}

// ---------------------------------------------------------------- run dialog

fn on_failure_text(f: OnFailure) -> &'static str {
    match f {
        OnFailure::Stop => "stop",
        OnFailure::Continue => "continue",
        OnFailure::Rollback => "rollback",
        OnFailure::Escalate => "escalate",
    }
}

fn secs_text(s: u64) -> String {
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

#[component]
fn RunDialog(runbook: RunbookSummary, on_close: Callback<()>) -> impl IntoView {
    let id = runbook.id;
    let defs = StoredValue::new(runbook.params.clone());
    let values = RwSignal::new(initial_values(&runbook.params, None));
    let reason = RwSignal::new(String::new());
    let incident = RwSignal::new(String::new());
    let plan = RwSignal::new(None::<DryRun>);
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(None::<&'static str>);
    let goto = RwSignal::new(None::<i64>);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(run) = goto.get() {
            navigate(&format!("/runs/{run}"), NavigateOptions::default());
        }
    });
    // Focus the first field when the dialog opens.
    let dialog = NodeRef::<leptos::html::Div>::new();
    Effect::new(move |_| {
        if let Some(el) = dialog.get() {
            if let Ok(Some(first)) = el.query_selector("input, select") {
                if let Ok(first) = first.dyn_into::<web_sys::HtmlElement>() {
                    let _ = first.focus();
                }
            }
        }
    });
    // A plan is only good for the parameters it was made with.
    Effect::new(move |prev: Option<()>| {
        values.track();
        if prev.is_some() {
            plan.set(None);
        }
    });

    let build = move || -> Result<StartRun, String> {
        let params = defs.with_value(|d| collect_params(d, &values.get_untracked()))?;
        let incident = incident.get_untracked().trim().to_string();
        Ok(StartRun {
            params,
            reason: reason.get_untracked().trim().to_string(),
            incident: (!incident.is_empty()).then_some(incident),
        })
    };
    let dry_run = move || {
        let body = match build() {
            Ok(b) => b,
            Err(m) => return error.set(Some(m)),
        };
        busy.set(Some("dry"));
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = api::runbooks::dry_run(id, &body).await;
            busy.try_set(None);
            match r {
                Ok(p) => {
                    plan.try_set(Some(p));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let start = move || {
        let body = match build() {
            Ok(b) => b,
            Err(m) => return error.set(Some(m)),
        };
        busy.set(Some("start"));
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::runbooks::start(id, &body).await {
                Ok(run) => {
                    goto.try_set(Some(run.summary.id));
                }
                Err(e) => {
                    busy.try_set(None);
                    error.try_set(Some(e.message));
                }
            }
        });
    };

    view! {
        <div class="modal-backdrop">
            <div class="modal modal-wide" role="dialog" aria-modal="true" aria-labelledby="run-dialog-title"
                data-testid="run-dialog" node_ref=dialog on:keydown=move |e| if e.key() == "Escape" { on_close.run(()) }>
                <h2 id="run-dialog-title">"Run "{runbook.title.clone()}</h2>
                {(!runbook.description.is_empty()).then(|| {
                    let first = first_paragraph(&runbook.description);
                    let full = runbook.description.trim().to_string();
                    let more = full.contains("\n\n");
                    view! {
                        <p class="muted">{first}</p>
                        {more.then(|| view! {
                            <details class="runbook-more">
                                <summary>"More"</summary>
                                <p class="pre-line small">{full}</p>
                            </details>
                        })}
                    }
                })}
                {runbook.needs_approval.then(|| view! {
                    <div class="notice notice-warn" role="note">"This runbook waits for an approval from someone else before its guarded steps run."</div>
                })}
                <form on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); start(); }>
                    <ParamFields params=runbook.params.clone() values/>
                    <div class="param-grid">
                        <label class="span-2">"Reason"
                            <input data-testid="run-reason" maxlength="500" placeholder="Why (shown on the run and in the audit log)"
                                prop:value=move || reason.get() on:input=move |e| reason.set(event_target_value(&e))/>
                        </label>
                        <label>"Incident"<span class="sr-only">" (optional)"</span>
                            <input data-testid="run-incident" maxlength="200" placeholder="optional link or id"
                                prop:value=move || incident.get() on:input=move |e| incident.set(event_target_value(&e))/>
                        </label>
                    </div>
                    {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert" data-testid="run-error">{m}</div> })}
                    {move || plan.get().map(|p| view! {
                        <div class="dry-run-plan" data-testid="dry-run-plan">
                            <div class="card-head">
                                <h3>"Dry run: what would happen now"</h3>
                                <span class="muted small">{p.runbook.clone()}" v"{p.version}
                                    {(!p.target.is_empty() && p.target != "*").then(|| format!(" · target {}", p.target))}</span>
                            </div>
                            {p.needs_approval.then(|| view! { <p class="warn-text small">"✓ Waits for an approval before the first step."</p> })}
                            <ol class="plan-steps">
                                {p.steps.into_iter().map(|s| view! {
                                    <li data-testid=format!("plan-step-{}", s.name)>
                                        <div class="action-line">
                                            <strong>{s.name.clone()}</strong>
                                            <code class="muted small">{s.kind.clone()}</code>
                                            {s.needs_approval.then(|| view! { <span class="tag tag-approval">"✓ approval"</span> })}
                                            <span class="spacer"></span>
                                            <span class="muted small nowrap">"timeout "{secs_text(s.timeout_secs)}" · on failure "{on_failure_text(s.on_failure)}</span>
                                        </div>
                                        <div class="plan-desc wrap-anywhere">{s.description.clone()}</div>
                                    </li>
                                }).collect_view()}
                            </ol>
                        </div>
                    })}
                    <div class="modal-actions">
                        <button type="button" class="btn" on:click=move |_| on_close.run(())>"Cancel"</button>
                        <span class="spacer"></span>
                        <button type="button" class="btn" data-testid="dry-run" disabled=move || busy.get().is_some()
                            on:click=move |_| dry_run()>{move || if busy.get() == Some("dry") { "Planning…" } else { "Dry run" }}</button>
                        <button type="submit" class="btn btn-primary" data-testid="start-run" disabled=move || busy.get().is_some()>
                            {move || if busy.get() == Some("start") { "Starting…" } else { "▶ Start" }}
                        </button>
                    </div>
                </form>
            </div>
        </div>
    }
}

// ---------------------------------------------------------------- editor

const TEMPLATE: &str = r#"name: my-runbook
title: My runbook
description: What it does, and when to use it.
params:
  - name: service
    label: Service
    type: service
steps:
  - name: status
    title: Check the status
    kind: status
    service: "{{params.service}}"
  - name: restart
    title: Restart the service
    kind: container
    service: "{{params.service}}"
    action: restart
  - name: healthy
    title: Wait until it is healthy
    kind: wait_healthy
    service: "{{params.service}}"
    timeout: 2m
    on_failure: escalate
"#;

/// "Load a file" into the editor.
#[component]
fn YamlFileLoad(target: RwSignal<String>, error: RwSignal<Option<String>>) -> impl IntoView {
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
            <span>"Load a file"</span>
            <input type="file" accept=".yml,.yaml,text/yaml,application/yaml,text/plain" data-testid="runbook-file" on:change=on_change/>
        </label>
    }
}

/// The YAML text area.
#[component]
fn YamlEditor(yaml: RwSignal<String>) -> impl IntoView {
    view! {
        <label class="span-all">"Definition (YAML)"
            <textarea class="mono yaml-editor" data-testid="yaml-editor" rows="28" spellcheck="false"
                autocomplete="off" wrap="off"
                prop:value=move || yaml.get() on:input=move |e| yaml.set(event_target_value(&e))
                on:keydown=move |e: leptos::ev::KeyboardEvent| {
                    // Tab indents (two spaces) instead of leaving the editor.
                    if e.key() == "Tab" && !e.shift_key() && !e.ctrl_key() && !e.alt_key() && !e.meta_key() {
                        let el: web_sys::HtmlTextAreaElement = event_target(&e);
                        if let (Ok(Some(start)), Ok(Some(end))) = (el.selection_start(), el.selection_end()) {
                            e.prevent_default();
                            let text = el.value();
                            let chars: Vec<char> = text.chars().collect();
                            let (s, t) = (start as usize, end as usize);
                            if s <= t && t <= chars.len() {
                                let mut out: String = chars[..s].iter().collect();
                                out.push_str("  ");
                                out.extend(chars[t..].iter());
                                el.set_value(&out);
                                let _ = el.set_selection_range(start + 2, start + 2);
                                yaml.set(out);
                            }
                        }
                    }
                }></textarea>
        </label>
    }
}

fn editor_error(error: RwSignal<Option<String>>) -> impl IntoView {
    move || {
        error.get().map(|m| {
            view! {
                <div class="notice notice-error notice-block span-all" role="alert" data-testid="runbook-error">
                    <strong>"Not saved"</strong>
                    <span class="pre-line wrap-anywhere">{m}</span>
                </div>
            }
        })
    }
}

#[component]
pub fn RunbookNew() -> impl IntoView {
    let yaml = RwSignal::new(TEMPLATE.to_string());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let goto = RwSignal::new(None::<i64>);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(id) = goto.get() {
            navigate(
                &format!("/runbooks/{id}/edit?saved=1"),
                NavigateOptions::default(),
            );
        }
    });
    let save = move |import: bool| {
        let body = RunbookWrite {
            definition: None,
            yaml: Some(yaml.get_untracked()),
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::runbooks::create(import, &body).await {
                Ok(rb) => {
                    goto.try_set(Some(rb.id));
                }
                Err(e) => {
                    busy.try_set(false);
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <nav class="crumbs"><a href="/runbooks">"Runbooks"</a>" / "<span>"New"</span></nav>
        <div class="page-head"><h1>"New runbook"</h1></div>
        <p class="lede">"Parameters are typed; steps refer to them as {{params.NAME}} and to earlier steps' outputs as {{steps.STEP.FIELD}}. The server checks the definition when you save."</p>
        <form class="card form-grid" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); save(false); }>
            <YamlEditor yaml/>
            {editor_error(error)}
            <div class="span-all btn-row">
                <button type="submit" class="btn btn-primary" data-testid="save-runbook" disabled=move || busy.get()>"Create runbook"</button>
                <button type="button" class="btn" data-testid="import-runbook" disabled=move || busy.get()
                    title="Creates it, or adds a new version to the runbook of the same name"
                    on:click=move |_| save(true)>"Import (create or update by name)"</button>
                <YamlFileLoad target=yaml error/>
                <span class="spacer"></span>
                <a class="btn" href="/runbooks">"Cancel"</a>
            </div>
        </form>
    }
}

#[component]
pub fn RunbookEditPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())));
    move || {
        match id.get() {
        Some(id) => view! { <RunbookEditor id/> }.into_any(),
        None => view! {
            <nav class="crumbs"><a href="/runbooks">"Runbooks"</a></nav>
            <h1>"Runbook"</h1>
            <ErrorState title="No such runbook" message="This address names no runbook.".to_string()/>
        }
        .into_any(),
    }
    }
}

type Loaded = (Runbook, Vec<RunbookVersion>);

#[component]
fn RunbookEditor(id: i64) -> impl IntoView {
    let query = use_query_map();
    let state = RwSignal::new(None::<Result<Loaded, ApiError>>);
    let yaml = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let notice = RwSignal::new(
        query
            .with_untracked(|q| q.get("saved").is_some())
            .then(|| "Runbook created.".to_string()),
    );
    let busy = RwSignal::new(false);
    let viewing = RwSignal::new(None::<i32>);
    let delete_open = RwSignal::new(false);

    // Loads the runbook and its versions; `fill` puts the current version's
    // YAML in the editor.
    let load = move |fill: bool| {
        leptos::task::spawn_local(async move {
            let r = async {
                let rb = api::runbooks::get_one(id).await?;
                let versions = api::runbooks::versions(id).await?;
                Ok::<_, ApiError>((rb, versions))
            }
            .await;
            if let (true, Ok((rb, versions))) = (fill, &r) {
                let text = versions
                    .iter()
                    .find(|v| v.version == rb.version)
                    .or_else(|| versions.iter().max_by_key(|v| v.version))
                    .map(|v| v.yaml.clone())
                    .unwrap_or_default();
                yaml.try_set(text);
            }
            state.try_set(Some(r));
        });
    };
    load(true);
    let current = Memo::new(move |_| {
        state.with(|s| {
            s.as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|(rb, _)| rb.clone())
        })
    });
    let versions = Memo::new(move |_| {
        state.with(|s| {
            let mut v = s
                .as_ref()
                .and_then(|r| r.as_ref().ok())
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            v.sort_by_key(|b| std::cmp::Reverse(b.version));
            v
        })
    });
    let name = move || current.with(|c| c.as_ref().map(|r| r.name.clone()).unwrap_or_default());

    let save = move || {
        let body = RunbookWrite {
            definition: None,
            yaml: Some(yaml.get_untracked()),
        };
        busy.set(true);
        error.set(None);
        notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::runbooks::update(id, &body).await;
            busy.try_set(false);
            match r {
                Ok(rb) => {
                    notice.try_set(Some(format!("Saved as version {}.", rb.version)));
                    load(true);
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let goto_list = RwSignal::new(false);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if goto_list.get() {
            navigate("/runbooks", NavigateOptions::default());
        }
    });
    let delete = Callback::new(move |_| {
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::runbooks::remove(id).await {
                Ok(()) => {
                    goto_list.try_set(true);
                }
                Err(e) => {
                    let m = if e.status == 409 {
                        format!("{} Runs keep the runbook they ran; it cannot be deleted while it has runs.", e.message)
                    } else {
                        e.message
                    };
                    notice.try_set(None);
                    error.try_set(Some(m));
                }
            }
        });
    });

    let phase = Memo::new(move |_| state.with(|s| s.as_ref().map(|r| r.is_ok())));
    move || {
        match phase.get() {
        None => view! { <Loading rows=8/> }.into_any(),
        Some(false) => {
            let e = state
                .with_untracked(|s| s.as_ref().and_then(|r| r.as_ref().err()).cloned())
                .map(|e| if e.status == 404 { "There is no runbook with this id: it may have been deleted.".to_string() } else { e.message })
                .unwrap_or_default();
            view! {
                <nav class="crumbs"><a href="/runbooks">"Runbooks"</a></nav>
                <h1>"Runbook"</h1>
                <ErrorState title="Cannot show this runbook" message=e retry=Callback::new(move |_| load(true))/>
            }
            .into_any()
        }
        Some(true) => view! {
            {move || current.get().map(|rb| view! {
                <nav class="crumbs"><a href="/runbooks">"Runbooks"</a>" / "<span>{rb.definition.title.clone()}</span></nav>
                <div class="page-head">
                    <h1>"Edit "{rb.definition.title.clone()}</h1>
                    <span class="version-badge">"v"{rb.version}</span>
                    {rb.builtin.then(|| view! { <span class="tag tag-builtin" title="Shipped with Opsdeck; your edits become new versions">"built-in"</span> })}
                    <span class="spacer"></span>
                    <a class="btn" href=format!("/runs?runbook={id}")>"Runs"</a>
                    <a class="btn" href=api::runbooks::export_url(id) download=format!("{}.yaml", rb.name) data-testid="export-runbook">"Export YAML"</a>
                </div>
                <p class="muted small">
                    <code>{rb.name.clone()}</code>" · updated "<RelTime at=Some(rb.updated_at)/>
                    {rb.updated_by.clone().map(|u| format!(" by {u}"))}
                </p>
            })}
            {move || notice.get().map(|m| view! {
                <div class="notice notice-ok" role="status" data-testid="runbook-saved">{m}</div>
            })}
            <form class="card form-grid" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); save(); }>
                <YamlEditor yaml/>
                {editor_error(error)}
                <div class="span-all btn-row">
                    <button type="submit" class="btn btn-primary" data-testid="save-runbook" disabled=move || busy.get()>
                        {move || if busy.get() { "Saving…" } else { "Save as new version" }}
                    </button>
                    <button type="button" class="btn" data-testid="revert-runbook" on:click=move |_| { error.set(None); load(true); }>"Revert"</button>
                    <YamlFileLoad target=yaml error/>
                    <span class="hint">"Runs keep the version they started with."</span>
                </div>
            </form>
            <section class="card" data-testid="runbook-versions">
                <h2>"Versions"</h2>
                <div class="table-wrap"><table class="table">
                    <thead><tr><th>"Version"</th><th>"Saved"</th><th>"By"</th><th><span class="sr-only">"Actions"</span></th></tr></thead>
                    <tbody>
                        <For each=move || versions.get() key=|v| v.version children=move |v| {
                            let n = v.version;
                            let text = v.yaml.clone();
                            view! {
                                <tr data-testid=format!("version-row-{n}")>
                                    <td>"v"{n}{move || (current.with(|c| c.as_ref().map(|r| r.version)) == Some(n)).then(|| view! { " "<span class="tag">"current"</span> })}</td>
                                    <td><RelTime at=Some(v.created_at)/></td>
                                    <td>{v.created_by.clone().unwrap_or_else(|| "—".into())}</td>
                                    <td><div class="actions">
                                        <button class="btn btn-small" aria-expanded=move || (viewing.get() == Some(n)).to_string()
                                            on:click=move |_| viewing.update(|x| *x = if *x == Some(n) { None } else { Some(n) })>
                                            {move || if viewing.get() == Some(n) { "Hide" } else { "View" }}
                                        </button>
                                        <button class="btn btn-small" title="Put this version's YAML in the editor (save to make it current)"
                                            on:click=move |_| { yaml.set(text.clone()); notice.set(Some(format!("Loaded version {n} into the editor: save to make it the current version."))); }>"Load into editor"</button>
                                    </div></td>
                                </tr>
                            }
                        }/>
                    </tbody>
                </table></div>
                {move || viewing.get().and_then(|n| versions.with(|v| v.iter().find(|x| x.version == n).map(|x| x.yaml.clone())).map(|text| view! {
                    <h3>"Version "{n}</h3>
                    <pre class="logs" data-testid="version-yaml">{text}</pre>
                }))}
            </section>
            <section class="card danger-zone">
                <h2>"Delete"</h2>
                <p class="muted">"Deleting removes the runbook and its versions. A runbook with runs cannot be deleted: its runs keep the record."</p>
                <button class="btn btn-danger" data-testid="delete-runbook" on:click=move |_| delete_open.set(true)>"Delete runbook…"</button>
            </section>
            <Confirm open=delete_open
                title=Signal::derive(move || format!("Delete runbook {}?", name()))
                message=Signal::derive(move || format!("{} and all its versions are deleted; schedules of it stop. This cannot be undone.", name()))
                expected=Signal::derive(move || Some(name()))
                confirm_label="Delete" on_confirm=delete/>
        }
        .into_any(),
    }
    }
}
