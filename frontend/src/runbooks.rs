//! Runbooks. The list (`/runbooks`): every runbook as a card with its
//! version, badges (built-in, needs approval) and last run; operators start
//! one from a dialog whose form comes from the runbook's typed parameters,
//! with a dry run that shows what each step would do. Admins write
//! runbooks as YAML (`/runbooks/new`, `/runbooks/:id/edit`): save makes a
//! new version, old versions stay readable, export and delete are there too.
//!
//! [`ParamFields`], [`initial_values`] and [`collect_params`] (the form of
//! a runbook's parameters) are shared with the schedules page.

mod editor;
mod params;
pub use editor::*;
pub use params::*;

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
