//! Writing runbooks as YAML (`/runbooks/new`, `/runbooks/:id/edit`): save
//! makes a new version, old versions stay readable, export and delete.

use super::*;

// ---------------------------------------------------------------- editor

pub(super) const TEMPLATE: &str = r#"name: my-runbook
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
pub(super) fn YamlFileLoad(
    target: RwSignal<String>,
    error: RwSignal<Option<String>>,
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
            <span>"Load a file"</span>
            <input type="file" accept=".yml,.yaml,text/yaml,application/yaml,text/plain" data-testid="runbook-file" on:change=on_change/>
        </label>
    }
}

/// The YAML text area.
#[component]
pub(super) fn YamlEditor(yaml: RwSignal<String>) -> impl IntoView {
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

pub(super) fn editor_error(error: RwSignal<Option<String>>) -> impl IntoView {
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

pub(super) type Loaded = (Runbook, Vec<RunbookVersion>);

#[component]
pub(super) fn RunbookEditor(id: i64) -> impl IntoView {
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
