//! The "Compose file" tab: a compose project as `docker compose` loads it.
//!
//! Files are uploaded together (see [`super::files`]) or one file is
//! pasted; the project directory and project name, the engine and the
//! active profiles complete the request. Preview shows the service changes,
//! the files the server read, the services left out by their profiles and
//! the proposed checks; Apply sends exactly the previewed request plus the
//! ticked checks and their passwords.
//!
//! Decisions:
//! - The pasted text is the one-file path: it is used only while no file
//!   is uploaded (then it is `compose.yaml`).
//! - Compose and env files are sent explicitly in list order
//!   (`compose_files`, `env_files`), so what the list shows is what loads.
//! - The profiles offered are those the server reported on inactive
//!   services, plus those ticked (recomputed with every plan); ticking one
//!   previews again at once.
//! - Ticks and passwords of proposed checks are not part of "the form
//!   changed since the preview": they do not change the inventory plan.

use std::collections::BTreeSet;

use leptos::prelude::*;
use opsdeck_wire::{ComposeImportRequest, ComposeSource, ImportPlan};

use super::files::{duplicate_path, FileList, Role, Upload};
use super::proposed::{Choices, ProposedChecks};
use super::PlanView;
use crate::api;
use crate::services::non_empty;
use crate::ui::{ErrorState, Loading};

/// An error from the server as it gave it (file and line included), and
/// the request field it names.
#[derive(Clone, PartialEq)]
struct Refusal {
    message: String,
    field: Option<String>,
}

/// Where the default project name came from, in words.
fn source_words(source: &str) -> &'static str {
    match source {
        "name" => "the files' top-level name:",
        "COMPOSE_PROJECT_NAME" => "COMPOSE_PROJECT_NAME",
        "directory" => "the project directory's name",
        "given" => "the name typed here",
        _ => "the server's default",
    }
}

/// "profile gpu", "profiles gpu or debug".
fn profiles_words(p: &[String]) -> String {
    match p {
        [one] => format!("profile {one}"),
        many => format!("profiles {}", many.join(" or ")),
    }
}

#[component]
pub fn ComposePanel() -> impl IntoView {
    let content = RwSignal::new(String::new());
    let files = RwSignal::new(Vec::<Upload>::new());
    let next_id = RwSignal::new(0u32);
    let directory = RwSignal::new(String::new());
    let project = RwSignal::new(String::new());
    let engine = RwSignal::new(String::new());
    let profiles = RwSignal::new(BTreeSet::<String>::new());
    let known_profiles = RwSignal::new(BTreeSet::<String>::new());
    let previewed = RwSignal::new(None::<ComposeImportRequest>);
    let plan = RwSignal::new(None::<ImportPlan>);
    let error = RwSignal::new(None::<Refusal>);
    let file_error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let choices = Choices::new();
    let engines = LocalResource::new(api::engines::list);

    Effect::new(move |_| {
        if let Some(m) = file_error.get() {
            error.set(Some(Refusal {
                message: m,
                field: None,
            }));
        }
    });

    let request = move |apply: bool| {
        let list = files.get();
        let by_role = |r: Role| -> Vec<String> {
            list.iter()
                .filter(|u| u.role.get() == r)
                .map(|u| u.path.get().trim().to_owned())
                .collect()
        };
        ComposeImportRequest {
            content: if list.is_empty() {
                content.get()
            } else {
                String::new()
            },
            files: list
                .iter()
                .map(|u| ComposeSource {
                    path: u.path.get().trim().to_owned(),
                    content: u.content.to_string(),
                })
                .collect(),
            compose_files: by_role(Role::Compose),
            env_files: by_role(Role::Env),
            profiles: profiles.get().into_iter().collect(),
            directory: non_empty(directory.get()),
            project: non_empty(project.get()),
            engine: non_empty(engine.get()),
            apply,
            ..ComposeImportRequest::default()
        }
    };
    let can_apply = move || {
        !busy.get()
            && previewed.get().is_some_and(|p| p == request(false))
            && plan.with(|p| p.as_ref().is_some_and(|p| !p.applied))
    };
    let refuse = move |m: &str| {
        error.set(Some(Refusal {
            message: m.to_owned(),
            field: None,
        }))
    };
    let send = move |apply: bool| {
        let mut req = untrack(|| request(apply));
        let uploaded = !req.files.is_empty();
        if !uploaded && req.content.trim().is_empty() {
            refuse("Add the project's files (or paste a compose file) first.");
            return;
        }
        if uploaded && req.compose_files.is_empty() {
            refuse("No file is marked as a compose file: choose the role of the file(s) to load.");
            return;
        }
        if req.files.iter().any(|f| f.path.is_empty()) {
            refuse("Every file needs a path.");
            return;
        }
        if let Some(p) = files.with_untracked(|l| duplicate_path(l)) {
            refuse(&format!(
                "Two files have the path {p}: give each its own path."
            ));
            return;
        }
        if apply {
            let (keys, passwords) = plan
                .with_untracked(|p| p.as_ref().map(|p| choices.for_apply(p)))
                .unwrap_or_default();
            req.checks = Some(keys);
            req.check_passwords = passwords;
        }
        busy.set(true);
        error.set(None);
        file_error.set(None);
        leptos::task::spawn_local(async move {
            match api::inventory::compose(&req).await {
                Ok(p) => {
                    if apply {
                        previewed.set(None);
                        choices.clear_passwords();
                        choices.ticked.set(Default::default());
                    } else {
                        previewed.set(Some(ComposeImportRequest {
                            checks: None,
                            check_passwords: Default::default(),
                            ..req
                        }));
                    }
                    // The ticked ones, and those that would start more
                    // services: a profile of files since removed goes.
                    let mut known = profiles.get_untracked();
                    known.extend(p.inactive.iter().flat_map(|i| i.profiles.iter().cloned()));
                    known_profiles.set(known);
                    plan.set(Some(p));
                }
                Err(e) => {
                    error.set(Some(Refusal {
                        message: e.message,
                        field: e.field,
                    }));
                    plan.set(None);
                    previewed.set(None);
                }
            }
            busy.set(false);
        });
    };
    let toggle_profile = move |name: String, on: bool| {
        profiles.update(|p| {
            if on {
                p.insert(name.clone());
            } else {
                p.remove(&name);
            }
        });
        known_profiles.update(|k| {
            k.insert(name);
        });
        // A plan on screen follows the profiles at once.
        if plan.with_untracked(Option::is_some) && !busy.get_untracked() {
            send(false);
        }
    };
    let project_default = move || {
        plan.with(|p| {
            p.as_ref().and_then(|p| {
                let src = p.project_source.as_deref()?;
                let name = p.project.as_deref()?;
                (src != "given").then(|| format!("{name} — from {}", source_words(src)))
            })
        })
    };

    view! {
        <form class="import-form compose-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); send(false); }>
            <FileList list=files next_id error=file_error/>
            {move || if files.with(Vec::is_empty) {
                view! {
                    <label class="span-all">"…or paste one compose file"
                        <textarea rows="12" class="mono" spellcheck="false" data-testid="compose-text"
                            placeholder="services:\n  web:\n    image: nginx\n    depends_on: [api]\n  api:\n    image: example/api"
                            prop:value=move || content.get() on:input=move |e| content.set(event_target_value(&e))></textarea>
                    </label>
                }.into_any()
            } else {
                view! {
                    <p class="hint span-all" data-testid="paste-hidden">"The uploaded files are the project; remove them to paste a single file instead."</p>
                }.into_any()
            }}
            <label>"Project directory"
                <input data-testid="compose-directory" spellcheck="false" autocomplete="off"
                    placeholder="e.g. shop"
                    prop:value=move || directory.get() on:input=move |e| directory.set(event_target_value(&e))/>
                <span class="hint">"The folder the files are in: its name is the default project name."</span>
            </label>
            <label>"Project name"
                <input data-testid="compose-project" spellcheck="false" autocomplete="off"
                    placeholder=move || plan.with(|p| p.as_ref().and_then(|p| p.project.clone()))
                        .unwrap_or_else(|| "default".into())
                    prop:value=move || project.get() on:input=move |e| project.set(event_target_value(&e))/>
                <span class="hint" data-testid="project-default">{move || project_default().map(|d| format!("Default: {d}"))
                    .unwrap_or_else(|| "Default: the files' name:, then COMPOSE_PROJECT_NAME, then the directory.".into())}</span>
            </label>
            <label>"Engine"
                <select data-testid="compose-engine" on:change=move |e| engine.set(event_target_value(&e))>
                    <option value="">"Any engine"</option>
                    {move || engines.get().and_then(Result::ok).unwrap_or_default().into_iter()
                        .map(|e| view! { <option value=e.name.clone() selected=engine.get_untracked() == e.name>{e.name.clone()}</option> })
                        .collect_view()}
                </select>
            </label>
            <fieldset class="span-all profiles" data-testid="profiles">
                <legend>"Profiles"</legend>
                {move || {
                    let known = known_profiles.get();
                    if known.is_empty() {
                        view! { <span class="hint">"Services with "<code>"profiles:"</code>" show theirs here after a preview; tick one to start them too."</span> }.into_any()
                    } else {
                        view! {
                            <ul class="chips profile-chips">
                                {known.into_iter().map(|p| {
                                    let name = p.clone();
                                    let on = profiles.with(|s| s.contains(&p));
                                    view! {
                                        <li><label class="chip" class:chip-on=on>
                                            <input type="checkbox" data-testid=format!("profile-{p}") prop:checked=on
                                                disabled=move || busy.get()
                                                on:change=move |e| toggle_profile(name.clone(), event_target_checked(&e))/>
                                            {p.clone()}
                                        </label></li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                }}
            </fieldset>
            <div class="span-all btn-row">
                <button class="btn" type="submit" data-testid="import-preview" disabled=move || busy.get()>"Preview"</button>
                <button class="btn btn-primary" type="button" data-testid="import-apply" disabled=move || !can_apply()
                    on:click=move |_| send(true)>"Apply"</button>
                <span class="hint" role="status">{move || if busy.get() {
                    "Working…"
                } else if plan.with(|p| p.as_ref().is_some_and(|p| p.applied)) {
                    "Applied. Preview again to import more."
                } else if previewed.get().is_some() && !can_apply() {
                    "The form changed since the preview: preview again."
                } else if previewed.get().is_none() {
                    "Preview first: Apply imports exactly what the preview shows."
                } else {
                    ""
                }}</span>
            </div>
        </form>
        {move || error.get().map(|r| view! {
            <div class="import-error" data-testid="import-error">
                <ErrorState title="The import was refused" message=match r.field {
                    Some(f) if !r.message.contains(&f) => format!("{} (field {f})", r.message),
                    _ => r.message,
                }/>
            </div>
        })}
        {move || (busy.get() && plan.with(Option::is_none)).then(|| view! { <Loading rows=3/> })}
        {move || plan.get().map(|p| view! {
            <div class="compose-plan" class:plan-stale=move || busy.get() aria-busy=move || busy.get().to_string()>
                <ComposeExtras plan=p.clone()/>
                <PlanView plan=p.clone()/>
                <InactiveServices plan=p.clone()/>
                <ProposedChecks plan=p choices/>
            </div>
        })}
    }
}

/// Above the plan: after Apply, what was done and where to look; before,
/// the files the server read.
#[component]
fn ComposeExtras(plan: ImportPlan) -> impl IntoView {
    let services = plan
        .changes
        .iter()
        .filter(|c| c.kind != opsdeck_wire::ChangeKind::Unchanged)
        .count();
    let created = plan
        .checks
        .iter()
        .filter(|c| c.selected && !c.exists)
        .count();
    view! {
        {plan.applied.then(|| view! {
            <div class="notice notice-ok notice-block" role="status" data-testid="import-done">
                <strong>{format!("✓ Imported: {services} service change{}, {created} check{} created.",
                    if services == 1 { "" } else { "s" }, if created == 1 { "" } else { "s" })}</strong>
                " "<a href="/" data-testid="to-dashboard">"Open the dashboard"</a>
            </div>
        })}
        {(!plan.files.is_empty()).then(|| view! {
            <p class="small muted plan-files" data-testid="plan-files">
                "Files read, in order: "
                {plan.files.iter().enumerate().map(|(i, f)| view! {
                    {(i > 0).then_some(" → ")}<code>{f.clone()}</code>
                }).collect_view()}
            </p>
        })}
    }
}

/// Services left out because none of their profiles is active.
#[component]
fn InactiveServices(plan: ImportPlan) -> impl IntoView {
    (!plan.inactive.is_empty()).then(|| {
        view! {
            <section class="plan-section" data-testid="plan-inactive">
                <h2 class="plan-section-head">"Not started"<span class="muted small">" · outside the active profiles: not imported"</span></h2>
                <ul class="inactive-list">
                    {plan.inactive.into_iter().map(|s| view! {
                        <li data-testid=format!("inactive-{}", s.name)>
                            <strong>{s.name.clone()}</strong>
                            <span class="muted">" not started: "{profiles_words(&s.profiles)}</span>
                        </li>
                    }).collect_view()}
                </ul>
            </section>
        }
    })
}
