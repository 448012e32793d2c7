//! One engine's disk usage and clean-up (on the Engines page): the
//! `docker system df` table, a form choosing what to clean up, the preview
//! of exactly what would be removed (and what is kept, with why), and a
//! destructive confirmation that starts the `docker-cleanup` run and opens
//! its page (its step waits for the `prune` approval policy).

use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;
use opsdeck_wire::{CleanupItem, CleanupPreview, CleanupRequest, Role};

use crate::api;
use crate::session::current_role;
use crate::ui::{bytes, Confirm, ErrorState, Loading};

fn kind_label(kind: &str) -> &'static str {
    match kind {
        "images" => "Images",
        "containers" => "Containers",
        "volumes" => "Volumes",
        "build_cache" => "Build cache",
        _ => "Other",
    }
}

fn items(n: usize) -> String {
    if n == 1 {
        "1 item".into()
    } else {
        format!("{n} items")
    }
}

fn size(n: i64) -> String {
    bytes(n.max(0) as u64)
}

fn item_rows(items: Vec<CleanupItem>, testid: &'static str) -> impl IntoView {
    view! {
        <div class="table-wrap"><table class="table" data-testid=testid>
            <thead><tr><th>"Kind"</th><th>"Name"</th><th class="num">"Size"</th><th>"Why"</th></tr></thead>
            <tbody>{items.into_iter().map(|i| view! {
                <tr data-testid=format!("{testid}-{}", i.name)>
                    <td>{i.kind.clone()}</td>
                    <td><code class="wrap-anywhere" title=i.id.clone()>{i.name.clone()}</code></td>
                    <td class="num">{size(i.size_bytes)}</td>
                    <td>{i.reason.clone()}</td>
                </tr>
            }).collect_view()}</tbody>
        </table></div>
    }
}

/// Disk usage and clean-up of engine `id` (named `name`).
#[component]
pub fn EngineCleanup(id: i64, name: String) -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let reload = RwSignal::new(0u32);
    let disk = LocalResource::new(move || {
        reload.get();
        api::engines::disk(id)
    });
    let dangling = RwSignal::new(true);
    let old = RwSignal::new(true);
    let days = RwSignal::new("30".to_string());
    let stopped = RwSignal::new(true);
    let volumes = RwSignal::new(false);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let preview = RwSignal::new(None::<CleanupPreview>);
    let confirm_open = RwSignal::new(false);
    let started = RwSignal::new(None::<i64>);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(run) = started.get() {
            navigate(&format!("/runs/{run}"), NavigateOptions::default());
        }
    });

    let make_preview = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let days_v = if old.get_untracked() {
            match days.get_untracked().trim().parse::<u32>() {
                Ok(d) => Some(d),
                Err(_) => {
                    error.set(Some("Older than: a number of days (1 to 3650).".into()));
                    return;
                }
            }
        } else {
            None
        };
        let req = CleanupRequest {
            dangling_images: dangling.get_untracked(),
            unused_images_older_than_days: days_v,
            stopped_containers: stopped.get_untracked(),
            volumes: volumes.get_untracked(),
        };
        busy.set(true);
        error.set(None);
        preview.set(None);
        leptos::task::spawn_local(async move {
            match api::engines::cleanup_preview(id, &req).await {
                Ok(p) => {
                    preview.try_set(Some(p));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
            busy.try_set(false);
        });
    };
    let apply = Callback::new(move |_| {
        let Some(p) = preview.get_untracked() else {
            return;
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            match api::engines::cleanup(id, p.id).await {
                Ok(s) => {
                    started.try_set(Some(s.run_id));
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                    busy.try_set(false);
                }
            }
        });
    });
    let title = format!("Disk usage and clean-up: {name}");
    let confirm_title = Signal::derive(move || {
        preview
            .get()
            .map(|p| format!("Remove {} from the engine?", items(p.items.len())))
            .unwrap_or_default()
    });
    let confirm_message = Signal::derive(move || {
        preview
            .get()
            .map(|p| {
                format!(
                    "This removes exactly the {} of preview #{} ({}) and cannot be undone. \
                     Items that came into use since the preview are skipped. \
                     The run waits for the prune approval policy.",
                    items(p.items.len()),
                    p.id,
                    size(p.total_bytes)
                )
            })
            .unwrap_or_default()
    });
    let check = |label: &'static str, sig: RwSignal<bool>, testid: &'static str| {
        view! {
            <label class="check">
                <input type="checkbox" data-testid=testid prop:checked=move || sig.get()
                    on:change=move |e| sig.set(event_target_checked(&e))/>
                {label}
            </label>
        }
    };

    view! {
        <section class="card" data-testid="engine-cleanup">
            <div class="card-head"><h2>{title}</h2>
                <button class="btn btn-small" type="button" data-testid="disk-reload"
                    on:click=move |_| reload.update(|n| *n += 1)>"Refresh"</button>
            </div>
            <Transition fallback=|| view! { <Loading rows=2/> }>
                {move || disk.get().map(|r| match r {
                    Err(e) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                    Ok(d) => view! {
                        <div class="table-wrap"><table class="table" data-testid="disk-table">
                            <thead><tr><th>"Kind"</th><th class="num">"Count"</th><th class="num">"Size"</th><th class="num">"Reclaimable"</th></tr></thead>
                            <tbody>{d.kinds.into_iter().map(|k| view! {
                                <tr data-testid=format!("disk-{}", k.kind)>
                                    <td>{kind_label(&k.kind)}</td>
                                    <td class="num">{k.count}</td>
                                    <td class="num">{size(k.size_bytes)}</td>
                                    <td class="num">{size(k.reclaimable_bytes)}</td>
                                </tr>
                            }).collect_view()}</tbody>
                        </table></div>
                    }.into_any(),
                })}
            </Transition>
            {operator.then(|| view! {
                <form class="form-grid" on:submit=make_preview data-testid="cleanup-form">
                    <div class="span-all">
                        {check("Dangling images (no tag, unused)", dangling, "cleanup-dangling")}
                        <label class="check">
                            <input type="checkbox" data-testid="cleanup-old" prop:checked=move || old.get()
                                on:change=move |e| old.set(event_target_checked(&e))/>
                            "Unused images older than "
                            <input type="number" min="1" max="3650" step="1" class="input-narrow" data-testid="cleanup-days"
                                aria-label="Days" disabled=move || !old.get()
                                prop:value=move || days.get() on:input=move |e| days.set(event_target_value(&e))/>
                            " days"
                        </label>
                        {check("Stopped containers that belong to no service", stopped, "cleanup-stopped")}
                        {check("Unused volumes (never a volume a backup plan names)", volumes, "cleanup-volumes")}
                    </div>
                    {move || error.get().map(|e| view! { <div class="notice notice-error span-all" role="alert" data-testid="cleanup-error">{e}</div> })}
                    <div class="span-all btn-row">
                        <button class="btn btn-primary" type="submit" data-testid="cleanup-preview" disabled=move || busy.get()>"Preview clean-up"</button>
                    </div>
                </form>
            })}
            {move || preview.get().map(|p| {
                let empty = p.items.is_empty();
                let kept = p.kept.clone();
                view! {
                    <div data-testid="cleanup-result">
                        <h3>{format!("Preview #{}: {}, {}", p.id, items(p.items.len()), size(p.total_bytes))}</h3>
                        {if empty {
                            view! { <p class="muted" data-testid="cleanup-nothing">"Nothing to remove."</p> }.into_any()
                        } else {
                            item_rows(p.items.clone(), "cleanup-items").into_any()
                        }}
                        {(!kept.is_empty()).then(|| view! {
                            <h3>"Kept"</h3>
                            {item_rows(kept, "cleanup-kept")}
                        })}
                        <div class="btn-row">
                            <button class="btn btn-danger" type="button" data-testid="cleanup-apply"
                                disabled=move || busy.get() || empty
                                on:click=move |_| confirm_open.set(true)>"Remove these items…"</button>
                        </div>
                    </div>
                }
            })}
            <Confirm open=confirm_open title=confirm_title message=confirm_message
                confirm_label="Remove" on_confirm=apply/>
        </section>
    }
}
