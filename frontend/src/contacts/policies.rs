//! The escalation policies tab of `/admin/contacts`: levels with a delay
//! and targets chosen from people, rotations and teams.

use super::*;

// ----------------------------------------------------------------- policies

/// What a target can be, for the pickers: (kind, id, label).
pub(super) type Choice = (&'static str, i64, String);

pub(super) fn target_label(t: &EscalationTarget) -> String {
    format!(
        "{} {}",
        t.kind,
        t.name.clone().unwrap_or_else(|| format!("#{}", t.id))
    )
}

#[component]
pub(super) fn PoliciesTab(ctx: Ctx) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let bump = move || reload.update(|n| *n = n.wrapping_add(1));
    let policies = LocalResource::new(move || {
        reload.get();
        api::oncall::escalation_policies()
    });
    let people = LocalResource::new(api::oncall::people);
    let rotations = LocalResource::new(api::oncall::rotations);
    let teams = LocalResource::new(api::oncall::teams);
    let choices = move || -> Option<Result<Vec<Choice>, ApiError>> {
        let (p, r, t) = (people.get()?, rotations.get()?, teams.get()?);
        Some((|| {
            let mut out: Vec<Choice> = Vec::new();
            out.extend(r?.into_iter().map(|x| ("rotation", x.id, x.name)));
            out.extend(t?.into_iter().map(|x| ("team", x.id, x.name)));
            out.extend(p?.into_iter().map(|x| ("person", x.id, x.name)));
            Ok(out)
        })())
    };
    let form = RwSignal::new(None::<Editing<EscalationPolicy>>);

    let card = move |p: EscalationPolicy| {
        let name = p.name.clone();
        let edit = p.clone();
        let (id, del_name) = (p.id, p.name.clone());
        view! {
            <section class="card policy-card" data-testid=format!("policy-{name}")>
                <div class="card-head">
                    <h2>{name.clone()}</h2>
                    {p.is_default.then(|| view! { <span class="pill pill-ok" data-testid="policy-default-pill"><span aria-hidden="true">"★"</span>" default"</span> })}
                    <span class="spacer"></span>
                    <div class="actions">
                        <button class="btn btn-small" data-testid=format!("policy-edit-{name}")
                            on:click=move |_| { ctx.notice.set(None); form.set(Some(Editing::Edit(edit.clone()))); }>"Edit"</button>
                        <button class="btn btn-small btn-danger" data-testid=format!("policy-delete-{name}")
                            on:click=move |_| ctx.delete(
                                format!("Delete escalation policy {del_name}?"),
                                format!("Incidents stop escalating with {del_name}. Refused while open incidents use it."),
                                Removal::Record(Collection::EscalationPolicies, id),
                                format!("Deleted escalation policy {del_name}."),
                                bump,
                            )>"Delete"</button>
                    </div>
                </div>
                {(!p.description.is_empty()).then(|| view! { <p class="muted">{p.description.clone()}</p> })}
                <ol class="level-list">
                    {p.levels.iter().enumerate().map(|(i, l)| view! {
                        <li data-testid=format!("policy-{name}-level-{i}")>
                            <strong>{format!("L{} ", i + 1)}</strong>
                            <span class="muted">{delay_text(l.delay_secs)}": "</span>
                            {l.targets.iter().map(target_label).collect::<Vec<_>>().join(", ")}
                        </li>
                    }).collect_view()}
                </ol>
            </section>
        }
    };

    view! {
        <p class="muted">"A level is notified its delay after the incident is triggered, if nobody has acknowledged by then. The handbook's default: primary on-call at once, secondary after 15 minutes, the manager after 30."</p>
        <div class="btn-row">
            <button class="btn btn-primary" data-testid="add-policy"
                on:click=move |_| { ctx.notice.set(None); form.set(Some(Editing::Add)); }>"Add escalation policy"</button>
        </div>
        {move || form.get().map(|mode| {
            let on_saved = Callback::new(move |msg: String| { form.set(None); ctx.notice.set(Some(Ok(msg))); bump(); });
            let on_cancel = Callback::new(move |_| form.set(None));
            match choices() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState title="Cannot list people, rotations and teams" message=e.message/> }.into_any(),
                Some(Ok(choices)) => view! { <PolicyForm mode choices on_saved on_cancel/> }.into_any(),
            }
        })}
        {move || match policies.get() {
            None => view! { <Loading rows=3/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| bump())/> }.into_any(),
            Some(Ok(v)) if v.is_empty() => view! {
                <EmptyState title="No escalation policies yet"><p>"Add one to say who is notified, and after how long, when an incident is not acknowledged."</p></EmptyState>
            }.into_any(),
            Some(Ok(v)) => {
                let count = v.len().to_string();
                view! {
                <div class="policy-list" data-testid="policies-list" data-count=count>
                    {v.into_iter().map(card).collect_view()}
                </div>
                }.into_any()
            }
        }}
    }
}

/// A level being edited.
#[derive(Clone)]
pub(super) struct LevelDraft {
    key: u32,
    minutes: RwSignal<String>,
    targets: RwSignal<Vec<(String, i64)>>,
    pick: RwSignal<String>,
}

impl LevelDraft {
    pub(super) fn new(key: u32, delay_secs: i64, targets: Vec<(String, i64)>) -> LevelDraft {
        let minutes = if delay_secs % 60 == 0 {
            (delay_secs / 60).to_string()
        } else {
            format!("{}", delay_secs as f64 / 60.0)
        };
        LevelDraft {
            key,
            minutes: RwSignal::new(minutes),
            targets: RwSignal::new(targets),
            pick: RwSignal::new(String::new()),
        }
    }
}

#[component]
pub(super) fn PolicyForm(
    mode: Editing<EscalationPolicy>,
    choices: Vec<Choice>,
    on_saved: Callback<String>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let existing = match &mode {
        Editing::Add => None,
        Editing::Edit(p) => Some(p.clone()),
    };
    let editing = existing.as_ref().map(|p| p.id);
    let e = existing.as_ref();
    let name = RwSignal::new(e.map(|p| p.name.clone()).unwrap_or_default());
    let description = RwSignal::new(e.map(|p| p.description.clone()).unwrap_or_default());
    let is_default = RwSignal::new(e.is_some_and(|p| p.is_default));
    let next_key = StoredValue::new(0u32);
    let new_key = move || {
        let k = next_key.get_value();
        next_key.set_value(k + 1);
        k
    };
    let initial: Vec<LevelDraft> = match e {
        Some(p) => p
            .levels
            .iter()
            .map(|l| {
                LevelDraft::new(
                    new_key(),
                    l.delay_secs,
                    l.targets.iter().map(|t| (t.kind.clone(), t.id)).collect(),
                )
            })
            .collect(),
        // The handbook's shape: at once, after 15 and after 30 minutes.
        None => [0, 900, 1800]
            .into_iter()
            .map(|d| LevelDraft::new(new_key(), d, Vec::new()))
            .collect(),
    };
    let levels = RwSignal::new(initial);
    let choices = StoredValue::new(choices);
    let label = move |kind: &str, id: i64| {
        choices.with_value(|c| {
            c.iter()
                .find(|(k, i, _)| *k == kind && *i == id)
                .map(|(k, _, n)| format!("{k} {n}"))
                .unwrap_or_else(|| format!("{kind} #{id}"))
        })
    };
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let mut out = Vec::new();
        for (i, l) in levels.get_untracked().iter().enumerate() {
            let text = l.minutes.get_untracked();
            let Ok(m) = text.trim().parse::<f64>() else {
                error.set(Some(format!(
                    "L{}: the delay is a number of minutes",
                    i + 1
                )));
                return;
            };
            out.push(EscalationLevel {
                delay_secs: (m * 60.0).round() as i64,
                targets: l
                    .targets
                    .get_untracked()
                    .into_iter()
                    .map(|(kind, id)| EscalationTarget {
                        kind,
                        id,
                        name: None,
                    })
                    .collect(),
            });
        }
        let body = EscalationPolicyInput {
            name: name.get_untracked().trim().to_string(),
            description: description.get_untracked().trim().to_string(),
            is_default: is_default.get_untracked(),
            levels: out,
        };
        Save {
            collection: Collection::EscalationPolicies,
            editing,
            what: "escalation policy ",
            busy,
            error,
            message: level_message,
            on_saved,
        }
        .send(body, |p: &EscalationPolicy| p.name.clone());
    };
    let options = move || {
        choices.with_value(|c| {
            let group = |kind: &'static str, title: &'static str| {
                let items: Vec<_> = c.iter().filter(|(k, _, _)| *k == kind).cloned().collect();
                (!items.is_empty()).then(|| view! {
                    <optgroup label=title>
                        {items.into_iter().map(|(k, id, n)| view! { <option value=format!("{k}:{id}")>{n}</option> }).collect_view()}
                    </optgroup>
                })
            };
            view! {
                {group("rotation", "Rotations (whoever is on call)")}
                {group("team", "Teams (every member)")}
                {group("person", "People")}
            }
        })
    };
    let level_row = move |l: LevelDraft| {
        let key = l.key;
        let index = move || levels.with(|v| v.iter().position(|x| x.key == key).unwrap_or(0));
        let LevelDraft {
            minutes,
            targets,
            pick,
            ..
        } = l;
        view! {
            <li class="level-edit" data-testid=move || format!("level-{}", index())>
                <div class="level-head">
                    <strong>{move || format!("L{}", index() + 1)}</strong>
                    <label class="inline">"after"
                        <input type="number" min="0" step="1" class="minutes" required
                            data-testid=move || format!("level-{}-delay", index())
                            prop:value=move || minutes.get() on:input=move |e| minutes.set(event_target_value(&e))/>
                        "min"
                    </label>
                    <span class="spacer"></span>
                    <button type="button" class="btn btn-small" data-testid=move || format!("remove-level-{}", index())
                        disabled=move || levels.with(|v| v.len() <= 1)
                        on:click=move |_| levels.update(|v| v.retain(|x| x.key != key))>"Remove level"</button>
                </div>
                <ul class="chips level-targets">
                    {move || {
                        let t = targets.get();
                        if t.is_empty() {
                            view! { <li class="muted small">"No one yet: add a rotation, team or person."</li> }.into_any()
                        } else {
                            t.into_iter().map(|(kind, id)| {
                                let text = label(&kind, id);
                                view! {
                                    <li class="chip">{text.clone()}
                                        <button type="button" class="link-button" aria-label=format!("Remove {text}")
                                            on:click=move |_| targets.update(|v| v.retain(|x| !(x.0 == kind && x.1 == id)))>"✕"</button>
                                    </li>
                                }
                            }).collect_view().into_any()
                        }
                    }}
                </ul>
                <div class="inline-pick">
                    <select aria-label="Target to add" data-testid=move || format!("level-{}-target-pick", index())
                        prop:value=move || pick.get() on:change=move |e| pick.set(event_target_value(&e))>
                        <option value="">"Choose who to notify…"</option>
                        {options()}
                    </select>
                    <button type="button" class="btn btn-small" data-testid=move || format!("level-{}-target-add", index())
                        on:click=move |_| {
                            let v = pick.get_untracked();
                            if let Some((kind, id)) = v.split_once(':') {
                                if let Ok(id) = id.parse::<i64>() {
                                    let kind = kind.to_string();
                                    targets.update(|t| if !t.iter().any(|x| x.0 == kind && x.1 == id) { t.push((kind, id)) });
                                }
                            }
                            pick.set(String::new());
                        }>"Add"</button>
                </div>
            </li>
        }
    };
    view! {
        <form class="card form-grid policy-edit-form" on:submit=submit data-testid="policy-form">
            <h2>{if editing.is_some() { "Edit escalation policy" } else { "New escalation policy" }}</h2>
            <label>"Name"<input required maxlength="100" data-testid="policy-name" placeholder="e.g. Default"
                prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/></label>
            <label class="span-2">"Description"<input maxlength="1000" data-testid="policy-description"
                prop:value=move || description.get() on:input=move |e| description.set(event_target_value(&e))/></label>
            <label class="check">
                <input type="checkbox" data-testid="policy-default" prop:checked=move || is_default.get()
                    on:change=move |e| is_default.set(event_target_checked(&e))/>
                "Default policy for new incidents"
            </label>
            <fieldset class="span-all">
                <legend>"Levels (delay from the trigger, in minutes)"</legend>
                <ol class="plain-list level-editor">
                    <For each=move || levels.get() key=|l| l.key children=level_row/>
                </ol>
                <button type="button" class="btn btn-small" data-testid="add-level"
                    disabled=move || levels.with(|v| v.len() >= 10)
                    on:click=move |_| {
                        let last = levels.with_untracked(|v| v.last().map(|l| l.minutes.get_untracked()));
                        let secs = last.and_then(|m| m.trim().parse::<f64>().ok()).map(|m| (m * 60.0) as i64 + 900).unwrap_or(0);
                        levels.update(|v| v.push(LevelDraft::new(new_key(), secs, Vec::new())));
                    }>"Add level"</button>
            </fieldset>
            {form_error(error, "policy-error")}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="save-policy" disabled=move || busy.get()>
                    {if editing.is_some() { "Save policy" } else { "Add policy" }}</button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}
