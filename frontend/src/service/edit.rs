//! The service's edit form.

use super::*;

/// The edit form: filled from the service when opened; saves only the
/// fields that changed (a saved field counts as edited by hand).
#[component]
pub(super) fn Edit(
    ov: Memo<Option<ServiceOverview>>,
    all: RwSignal<Vec<ServiceOverview>>,
) -> impl IntoView {
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
    let engines = LocalResource::new(api::engines::list);
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
