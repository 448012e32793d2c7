//! The post-mortem of an incident (`/incidents/:id/postmortem`): summary,
//! impact, timeline (prefilled from the incident's timeline until saved),
//! root cause, what went well and badly, action items with owner, due date
//! and done. Operators save it; viewers read it. The Markdown download is
//! the server's rendering of the saved text.

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use opsdeck_wire::{ActionItem, Postmortem, Role};

use super::{IncidentStatusPill, SeverityPill};
use crate::api::{self, ApiError};
use crate::session::current_role;
use crate::time::RelTime;
use crate::ui::{ErrorState, Loading};

#[component]
pub fn PostmortemPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())));
    move || {
        match id.get() {
        Some(id) => view! { <PostmortemView id/> }.into_any(),
        None => view! {
            <nav class="crumbs"><a href="/incidents">"Incidents"</a></nav>
            <h1>"Post-mortem"</h1>
            <ErrorState title="No such incident" message="This address names no incident.".to_string()/>
        }
        .into_any(),
    }
    }
}

/// One action item being edited (a signal per field: typing re-renders
/// nothing else).
#[derive(Clone, Copy)]
struct ItemRow {
    key: u64,
    what: RwSignal<String>,
    owner: RwSignal<String>,
    due: RwSignal<String>,
    done: RwSignal<bool>,
}

impl ItemRow {
    fn new(key: u64, item: &ActionItem) -> ItemRow {
        ItemRow {
            key,
            what: RwSignal::new(item.what.clone()),
            owner: RwSignal::new(item.owner.clone()),
            due: RwSignal::new(item.due.map(|d| d.to_string()).unwrap_or_default()),
            done: RwSignal::new(item.done),
        }
    }

    fn item(&self) -> ActionItem {
        ActionItem {
            what: self.what.get_untracked().trim().to_string(),
            owner: self.owner.get_untracked().trim().to_string(),
            due: self.due.get_untracked().parse().ok(),
            done: self.done.get_untracked(),
        }
    }
}

/// The text fields, in the order the page shows them.
#[derive(Clone, Copy)]
struct Fields {
    summary: RwSignal<String>,
    impact: RwSignal<String>,
    timeline: RwSignal<String>,
    root_cause: RwSignal<String>,
    went_well: RwSignal<String>,
    went_badly: RwSignal<String>,
}

#[component]
fn PostmortemView(id: i64) -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let incident =
        LocalResource::new(
            move || async move { api::incidents::get_one(id).await.map(|d| d.incident) },
        );
    let state = RwSignal::new(None::<Result<Postmortem, ApiError>>);
    let f = Fields {
        summary: RwSignal::new(String::new()),
        impact: RwSignal::new(String::new()),
        timeline: RwSignal::new(String::new()),
        root_cause: RwSignal::new(String::new()),
        went_well: RwSignal::new(String::new()),
        went_badly: RwSignal::new(String::new()),
    };
    let items = RwSignal::new(Vec::<ItemRow>::new());
    let next_key = StoredValue::new(0u64);
    let dirty = RwSignal::new(false);
    let fill = move |pm: &Postmortem| {
        f.summary.set(pm.summary.clone());
        f.impact.set(pm.impact.clone());
        f.timeline.set(pm.timeline.clone());
        f.root_cause.set(pm.root_cause.clone());
        f.went_well.set(pm.went_well.clone());
        f.went_badly.set(pm.went_badly.clone());
        let rows = pm
            .action_items
            .iter()
            .map(|i| {
                let k = next_key.get_value() + 1;
                next_key.set_value(k);
                ItemRow::new(k, i)
            })
            .collect();
        items.set(rows);
        dirty.set(false);
    };
    let load = move || {
        leptos::task::spawn_local(async move {
            let r = api::incidents::postmortem(id).await;
            if let Ok(pm) = &r {
                fill(pm);
            }
            state.try_set(Some(r));
        });
    };
    load();

    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let save = move || {
        busy.set(true);
        notice.set(None);
        let body = Postmortem {
            summary: f.summary.get_untracked(),
            impact: f.impact.get_untracked(),
            timeline: f.timeline.get_untracked(),
            root_cause: f.root_cause.get_untracked(),
            went_well: f.went_well.get_untracked(),
            went_badly: f.went_badly.get_untracked(),
            action_items: items
                .get_untracked()
                .iter()
                .map(ItemRow::item)
                .filter(|i| !i.what.is_empty())
                .collect(),
            updated_at: None,
            updated_by: None,
        };
        leptos::task::spawn_local(async move {
            let r = api::incidents::save_postmortem(id, &body).await;
            busy.try_set(false);
            match r {
                Ok(pm) => {
                    fill(&pm);
                    state.try_set(Some(Ok(pm)));
                    notice.try_set(Some(Ok("Post-mortem saved.".into())));
                }
                Err(e) => {
                    notice.try_set(Some(Err(e.message)));
                }
            }
        });
    };
    let add_item = move |_| {
        let k = next_key.get_value() + 1;
        next_key.set_value(k);
        items.update(|v| {
            v.push(ItemRow::new(
                k,
                &ActionItem {
                    what: String::new(),
                    owner: String::new(),
                    due: None,
                    done: false,
                },
            ))
        });
        dirty.set(true);
    };

    let head = move || {
        let i = incident.get().and_then(Result::ok);
        let title = i.as_ref().map(|i| i.title.clone()).unwrap_or_default();
        view! {
            <nav class="crumbs"><a href="/incidents">"Incidents"</a>" / "<a href=format!("/incidents/{id}")>"#"{id}</a>" / "<span>"Post-mortem"</span></nav>
            <div class="page-head">
                <h1 class="wrap-anywhere">"Post-mortem"{(!title.is_empty()).then(|| format!(": {title}"))}</h1>
                {i.as_ref().map(|i| view! { <SeverityPill severity=i.severity/><IncidentStatusPill status=i.status/> })}
                <span class="spacer"></span>
                <a class="btn" data-testid="pm-markdown" href=api::incidents::postmortem_markdown_url(id) download="">"⤓ Download Markdown"</a>
                {operator.then(|| view! {
                    <button class="btn btn-primary" data-testid="pm-save" disabled=move || busy.get() on:click=move |_| save()>
                        {move || if busy.get() { "Saving…" } else { "Save" }}
                    </button>
                })}
            </div>
        }
    };

    let text = move |label: &'static str,
                     hint: &'static str,
                     sig: RwSignal<String>,
                     rows: u32,
                     testid: &'static str,
                     mono: bool| {
        view! {
            <label class="pm-field">
                <span>{label}" "<span class="hint">{hint}</span></span>
                <textarea rows=rows.to_string() data-testid=testid class:mono=mono prop:readOnly=!operator
                    prop:value=move || sig.get() on:input=move |e| { sig.set(event_target_value(&e)); dirty.set(true); }></textarea>
            </label>
        }
    };

    view! {
        {head}
        {move || match state.get() {
            None => view! { <Loading rows=6/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState title="Cannot show this post-mortem" message=e.message retry=Callback::new(move |_| load())/> }.into_any(),
            Some(Ok(pm)) => view! {
                {match (pm.updated_at, pm.updated_by.clone()) {
                    (None, _) => view! {
                        <div class="notice notice-warn" role="note" data-testid="pm-template">
                            "A template prefilled from the incident's timeline: nothing is saved yet."
                            {(!operator).then_some(" An operator writes it.")}
                        </div>
                    }.into_any(),
                    (Some(at), by) => view! {
                        <p class="muted small" data-testid="pm-saved">"Last saved "<RelTime at=Some(at)/>{by.map(|b| format!(" by {b}"))}"."</p>
                    }.into_any(),
                }}
            }.into_any(),
        }}
        {move || notice.get().map(|n| match n {
            Ok(m) => view! { <div class="notice notice-ok" role="status">{m}</div> }.into_any(),
            Err(m) => view! { <div class="notice notice-error" role="alert">{m}</div> }.into_any(),
        })}
        <Show when=move || matches!(state.get(), Some(Ok(_)))>
            <form class="card pm-form" data-testid="postmortem-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); if operator { save() } }>
                {text("Summary", "What happened, in two or three sentences.", f.summary, 3, "pm-summary", false)}
                {text("Impact", "Who was affected, for how long, how badly.", f.impact, 3, "pm-impact", false)}
                {text("Timeline", "Markdown; prefilled from the incident's timeline.", f.timeline, 10, "pm-timeline", true)}
                {text("Root cause", "Why it happened (keep asking why).", f.root_cause, 3, "pm-root-cause", false)}
                <div class="pm-pair">
                    {text("What went well", "", f.went_well, 4, "pm-went-well", false)}
                    {text("What went badly", "", f.went_badly, 4, "pm-went-badly", false)}
                </div>
                <fieldset class="pm-items">
                    <legend>"Action items"</legend>
                    <Show when=move || items.with(|v| !v.is_empty())
                        fallback=move || view! { <p class="muted small">{if operator { "No action items yet: what will change so this does not happen again?" } else { "No action items." }}</p> }>
                        <div class="table-wrap">
                            <table class="table pm-items-table" data-testid="pm-items">
                                <thead><tr><th>"What"</th><th>"Owner"</th><th>"Due"</th><th>"Done"</th>{operator.then(|| view! { <th><span class="sr-only">"Remove"</span></th> })}</tr></thead>
                                <tbody>
                                    <For each=move || items.get() key=|r| r.key children=move |r| view! {
                                        <tr data-testid="pm-item">
                                            <td class="pm-what"><input aria-label="What" prop:readOnly=!operator placeholder="What will change" prop:value=move || r.what.get()
                                                on:input=move |e| { r.what.set(event_target_value(&e)); dirty.set(true); }/></td>
                                            <td><input aria-label="Owner" prop:readOnly=!operator placeholder="Who" prop:value=move || r.owner.get()
                                                on:input=move |e| { r.owner.set(event_target_value(&e)); dirty.set(true); }/></td>
                                            <td><input type="date" aria-label="Due" prop:readOnly=!operator prop:value=move || r.due.get()
                                                on:input=move |e| { r.due.set(event_target_value(&e)); dirty.set(true); }/></td>
                                            <td class="pm-done"><input type="checkbox" aria-label="Done" prop:disabled=!operator prop:checked=move || r.done.get()
                                                on:change=move |e| { r.done.set(event_target_checked(&e)); dirty.set(true); }/></td>
                                            {operator.then(|| view! {
                                                <td><button type="button" class="btn btn-small btn-ghost" aria-label="Remove this action item" title="Remove"
                                                    on:click=move |_| { items.update(|v| v.retain(|x| x.key != r.key)); dirty.set(true); }>"✕"</button></td>
                                            })}
                                        </tr>
                                    }/>
                                </tbody>
                            </table>
                        </div>
                    </Show>
                    {operator.then(|| view! {
                        <button type="button" class="btn btn-small section-actions" data-testid="pm-add-item" on:click=add_item>"+ Add action item"</button>
                    })}
                </fieldset>
                {operator.then(|| view! {
                    <div class="btn-row pm-actions">
                        <button type="submit" class="btn btn-primary" disabled=move || busy.get()>{move || if busy.get() { "Saving…" } else { "Save post-mortem" }}</button>
                        {move || dirty.get().then(|| view! { <span class="warn-text small" data-testid="pm-dirty">"● unsaved changes"</span> })}
                    </div>
                })}
            </form>
        </Show>
    }
}
