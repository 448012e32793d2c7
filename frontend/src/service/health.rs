//! The service's health checks and its public status page opt-in.

use super::*;

/// The service's health: its status on the board, its checks (with "Run
/// now", edit, delete and "Add check" for operators), the history of the
/// selected check, and the public status page opt-in.
#[component]
pub(super) fn Health(id: i64) -> impl IntoView {
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
pub(super) fn PublicStatus(
    id: i64,
    entry: Memo<Option<crate::status_store::Row>>,
) -> impl IntoView {
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
