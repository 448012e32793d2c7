//! The rotations tab of `/admin/contacts`: rotations with their hand-off
//! times and holiday overrides.

use super::*;

// ---------------------------------------------------------------- rotations

#[component]
pub(super) fn RotationsTab(ctx: Ctx) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let bump = move || reload.update(|n| *n = n.wrapping_add(1));
    let rotations = LocalResource::new(move || {
        reload.get();
        api::oncall::rotations()
    });
    let people = LocalResource::new(api::oncall::people);
    let teams = LocalResource::new(api::oncall::teams);
    let form = RwSignal::new(None::<Editing<Rotation>>);
    let lists = move || match (people.get(), teams.get()) {
        (Some(Ok(p)), Some(Ok(t))) => Some(Ok((p, t))),
        (Some(Err(e)), _) | (_, Some(Err(e))) => Some(Err(e)),
        _ => None,
    };

    view! {
        <div class="btn-row">
            <button class="btn btn-primary" data-testid="add-rotation"
                on:click=move |_| { ctx.notice.set(None); form.set(Some(Editing::Add)); }>"Add rotation"</button>
        </div>
        {move || form.get().map(|mode| {
            let on_saved = Callback::new(move |msg: String| { form.set(None); ctx.notice.set(Some(Ok(msg))); bump(); });
            let on_cancel = Callback::new(move |_| form.set(None));
            match lists() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState title="Cannot list people and teams" message=e.message/> }.into_any(),
                Some(Ok((people, teams))) => view! { <RotationForm mode people teams on_saved on_cancel/> }.into_any(),
            }
        })}
        {move || match (rotations.get(), people.get()) {
            (None, _) | (_, None) => view! { <Loading rows=3/> }.into_any(),
            (Some(Err(e)), _) | (_, Some(Err(e))) => view! { <ErrorState message=e.message retry=Callback::new(move |_| bump())/> }.into_any(),
            (Some(Ok(v)), _) if v.is_empty() => view! {
                <EmptyState title="No rotations yet"><p>"A rotation hands on-call duty from person to person, daily or weekly, at a time in a time zone."</p></EmptyState>
            }.into_any(),
            (Some(Ok(v)), Some(Ok(people))) => {
                let count = v.len().to_string();
                view! {
                <div class="rotation-list" data-testid="rotations-list" data-count=count>
                    {v.into_iter().map(|r| {
                        let on_edit = Callback::new(move |r: Rotation| { ctx.notice.set(None); form.set(Some(Editing::Edit(r))); });
                        view! { <RotationCard rotation=r people=people.clone() ctx on_edit on_changed=Callback::new(move |_| bump())/> }
                    }).collect_view()}
                </div>
                }.into_any()
            }
        }}
    }
}

#[component]
pub(super) fn RotationCard(
    rotation: Rotation,
    people: Vec<Person>,
    ctx: Ctx,
    on_edit: Callback<Rotation>,
    on_changed: Callback<()>,
) -> impl IntoView {
    let name = rotation.name.clone();
    let id = rotation.id;
    let edit = rotation.clone();
    let del_name = name.clone();
    let adding = RwSignal::new(false);
    let add_testid = format!("override-add-{name}");
    let overrides = rotation.overrides.clone();
    view! {
        <section class="card rotation-card" data-testid=format!("rotation-{name}")>
            <div class="card-head">
                <h2>{name.clone()}</h2>
                <span class="muted">{handoff_text(&rotation)}</span>
                <span class="spacer"></span>
                <div class="actions">
                    <button class="btn btn-small" data-testid=format!("rotation-edit-{name}")
                        on:click=move |_| on_edit.run(edit.clone())>"Edit"</button>
                    <button class="btn btn-small btn-danger" data-testid=format!("rotation-delete-{name}")
                        on:click=move |_| ctx.delete(
                            format!("Delete rotation {del_name}?"),
                            format!("{del_name} and its overrides go; escalation levels naming it lose it. Refused while a level relies on it alone."),
                            Removal::Record(Collection::Rotations, id),
                            format!("Deleted rotation {del_name}."),
                            move || on_changed.run(()),
                        )>"Delete"</button>
                </div>
            </div>
            <dl class="facts">
                <dt>"Starts"</dt><dd>{rotation.starts_on.format("%Y-%m-%d").to_string()}</dd>
                <dt>"Turn order"</dt>
                <dd><ol class="turn-order">{rotation.members.iter().map(|m| view! { <li>{m.name.clone()}</li> }).collect_view()}</ol></dd>
            </dl>
            <h3 class="small">"Overrides"</h3>
            {if overrides.is_empty() {
                view! { <p class="muted small">"None planned."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain-list override-list">
                        {overrides.into_iter().map(|o| {
                            let oid = o.id;
                            let who = o.person.name.clone();
                            let rot = name.clone();
                            view! {
                                <li data-testid=format!("override-row-{oid}")>
                                    <strong>{o.person.name.clone()}</strong>" "
                                    <When at=o.starts_at/>" → "<When at=o.ends_at/>
                                    {(!o.reason.is_empty()).then(|| view! { <span class="muted">" · "{o.reason.clone()}</span> })}
                                    " "
                                    <button class="btn btn-small btn-danger" data-testid=format!("override-delete-{oid}")
                                        on:click=move |_| ctx.delete(
                                            format!("Remove the override for {who}?"),
                                            format!("{rot}'s normal turn order applies again for that time."),
                                            Removal::Override { rotation: id, id: oid },
                                            format!("Removed the override for {who}."),
                                            move || on_changed.run(()),
                                        )>"Remove"</button>
                                </li>
                            }
                        }).collect_view()}
                    </ul>
                }.into_any()
            }}
            {move || if adding.get() {
                let on_saved = Callback::new(move |msg: String| { adding.set(false); ctx.notice.set(Some(Ok(msg))); on_changed.run(()); });
                let on_cancel = Callback::new(move |_| adding.set(false));
                view! { <OverrideForm rotation_id=id people=people.clone() on_saved on_cancel/> }.into_any()
            } else {
                view! {
                    <button class="btn btn-small" data-testid=add_testid.clone()
                        on:click=move |_| { ctx.notice.set(None); adding.set(true); }>"Add holiday override"</button>
                }.into_any()
            }}
        </section>
    }
}

#[component]
pub(super) fn OverrideForm(
    rotation_id: i64,
    people: Vec<Person>,
    on_saved: Callback<String>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let person = RwSignal::new(people.first().map(|p| p.id));
    let start = RwSignal::new(local_input(now()));
    let end = RwSignal::new(local_input(now() + TimeDelta::days(7)));
    let reason = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(person_id) = person.get_untracked() else {
            error.set(Some("person_id: choose who covers".into()));
            return;
        };
        let (Some(starts_at), Some(ends_at)) = (
            parse_local_input(&start.get_untracked()),
            parse_local_input(&end.get_untracked()),
        ) else {
            error.set(Some("Enter a start and an end.".into()));
            return;
        };
        let body = OverrideInput {
            person_id,
            starts_at,
            ends_at,
            reason: reason.get_untracked().trim().to_string(),
        };
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = api::oncall::add_override(rotation_id, &body).await;
            busy.try_set(false);
            match r {
                Ok(o) => on_saved.run(format!(
                    "{} covers from {}.",
                    o.person.name,
                    local_text(o.starts_at)
                )),
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <form class="form-grid override-form" on:submit=submit data-testid="override-form">
            <label>"Who covers"
                <select data-testid="override-person" on:change=move |e| person.set(event_target_value(&e).parse().ok())>
                    {people.into_iter().map(|p| {
                        let id = p.id;
                        view! { <option value=id.to_string() prop:selected=move || person.get() == Some(id)>{p.name.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"From (your time)"<input type="datetime-local" required data-testid="override-start"
                prop:value=move || start.get() on:input=move |e| start.set(event_target_value(&e))/></label>
            <label>"Until (your time)"<input type="datetime-local" required data-testid="override-end"
                prop:value=move || end.get() on:input=move |e| end.set(event_target_value(&e))/></label>
            <label>"Reason"<input maxlength="500" data-testid="override-reason" placeholder="e.g. holiday"
                prop:value=move || reason.get() on:input=move |e| reason.set(event_target_value(&e))/></label>
            {form_error(error, "override-error")}
            <div class="span-all btn-row">
                <button class="btn btn-primary btn-small" type="submit" data-testid="save-override" disabled=move || busy.get()>"Add override"</button>
                <button class="btn btn-small" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}

#[component]
pub(super) fn RotationForm(
    mode: Editing<Rotation>,
    people: Vec<Person>,
    teams: Vec<Team>,
    on_saved: Callback<String>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let existing = match &mode {
        Editing::Add => None,
        Editing::Edit(r) => Some(r.clone()),
    };
    let editing = existing.as_ref().map(|r| r.id);
    let e = existing.as_ref();
    let name = RwSignal::new(e.map(|r| r.name.clone()).unwrap_or_default());
    let team_id = RwSignal::new(e.and_then(|r| r.team_id));
    let handoff = RwSignal::new(
        e.map(|r| r.handoff.clone())
            .unwrap_or_else(|| "weekly".into()),
    );
    let weekday = RwSignal::new(e.and_then(|r| r.handoff_weekday).unwrap_or(1));
    let time = RwSignal::new(
        e.map(|r| r.handoff_time.clone())
            .unwrap_or_else(|| "09:00".into()),
    );
    let zone = RwSignal::new(
        e.map(|r| r.time_zone.clone())
            .or_else(browser_timezone)
            .unwrap_or_else(|| "UTC".into()),
    );
    let starts_on = RwSignal::new(
        e.map(|r| r.starts_on)
            .unwrap_or_else(|| local(now()).date())
            .format("%Y-%m-%d")
            .to_string(),
    );
    let members = RwSignal::new(
        e.map(|r| r.members.iter().map(|m| m.id).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let pick = RwSignal::new(String::new());
    let people = StoredValue::new(people);
    let person_name = move |id: i64| {
        people.with_value(|v| {
            v.iter()
                .find(|p| p.id == id)
                .map(|p| p.name.clone())
                .unwrap_or_else(|| format!("#{id}"))
        })
    };
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Ok(starts) = NaiveDate::parse_from_str(&starts_on.get_untracked(), "%Y-%m-%d") else {
            error.set(Some("starts_on: choose the first day".into()));
            return;
        };
        let weekly = handoff.get_untracked() == "weekly";
        let body = RotationInput {
            name: name.get_untracked().trim().to_string(),
            team_id: team_id.get_untracked(),
            handoff: handoff.get_untracked(),
            handoff_time: time.get_untracked().chars().take(5).collect(),
            handoff_weekday: weekly.then(|| weekday.get_untracked()),
            time_zone: zone.get_untracked().trim().to_string(),
            starts_on: starts,
            members: members.get_untracked(),
        };
        Save {
            collection: Collection::Rotations,
            editing,
            what: "rotation ",
            busy,
            error,
            message: plain_message,
            on_saved,
        }
        .send(body, |r: &Rotation| r.name.clone());
    };
    let browser_tz = browser_timezone().filter(|t| t != "UTC");
    let move_member = move |i: usize, up: bool| {
        members.update(|m| {
            let j = if up { i.checked_sub(1) } else { Some(i + 1) };
            if let Some(j) = j.filter(|j| *j < m.len()) {
                m.swap(i, j);
            }
        })
    };
    view! {
        <form class="card form-grid rotation-form" on:submit=submit data-testid="rotation-form">
            <h2>{if editing.is_some() { "Edit rotation" } else { "New rotation" }}</h2>
            <label>"Name"<input required maxlength="100" data-testid="rotation-name" placeholder="e.g. Primary"
                prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/></label>
            <label>"Team"
                <select data-testid="rotation-team" on:change=move |e| team_id.set(event_target_value(&e).parse().ok())>
                    <option value="" prop:selected=move || team_id.get().is_none()>"—"</option>
                    {teams.into_iter().map(|t| {
                        let id = t.id;
                        view! { <option value=id.to_string() prop:selected=move || team_id.get() == Some(id)>{t.name.clone()}</option> }
                    }).collect_view()}
                </select>
            </label>
            <label>"Hands off"
                <select data-testid="rotation-handoff" on:change=move |e| handoff.set(event_target_value(&e))>
                    <option value="daily" prop:selected=move || handoff.get() == "daily">"daily"</option>
                    <option value="weekly" prop:selected=move || handoff.get() == "weekly">"weekly"</option>
                </select>
            </label>
            <Show when=move || handoff.get() == "weekly">
                <label>"On"
                    <select data-testid="rotation-weekday" on:change=move |e| weekday.set(event_target_value(&e).parse().unwrap_or(1))>
                        {(1..=7i16).map(|d| view! {
                            <option value=d.to_string() prop:selected=move || weekday.get() == d>{weekday_name(d)}</option>
                        }).collect_view()}
                    </select>
                </label>
            </Show>
            <label>"At (local time)"<input type="time" required data-testid="rotation-time"
                prop:value=move || time.get() on:input=move |e| time.set(event_target_value(&e))/></label>
            <label>"Time zone"
                <input required data-testid="rotation-zone" spellcheck="false" autocomplete="off" placeholder="Europe/Berlin"
                    prop:value=move || zone.get() on:input=move |e| zone.set(event_target_value(&e))/>
                {browser_tz.map(|tz| {
                    let label = format!("Use {tz}");
                    view! { <button type="button" class="link-button small" on:click=move |_| zone.set(tz.clone())>{label}</button> }
                })}
            </label>
            <label>"First day"<input type="date" required data-testid="rotation-starts"
                prop:value=move || starts_on.get() on:input=move |e| starts_on.set(event_target_value(&e))/></label>
            <fieldset class="span-all">
                <legend>"Turn order"</legend>
                {move || {
                    let list = members.get();
                    if list.is_empty() {
                        view! { <p class="muted small">"Add at least one person; they take turns in this order."</p> }.into_any()
                    } else {
                        let n = list.len();
                        view! {
                            <ol class="member-order" data-testid="rotation-members">
                                {list.into_iter().enumerate().map(|(i, id)| view! {
                                    <li>
                                        <span>{person_name(id)}</span>
                                        <button type="button" class="btn btn-small" aria-label="Earlier" disabled=i == 0
                                            on:click=move |_| move_member(i, true)>"↑"</button>
                                        <button type="button" class="btn btn-small" aria-label="Later" disabled=i + 1 == n
                                            on:click=move |_| move_member(i, false)>"↓"</button>
                                        <button type="button" class="btn btn-small" aria-label="Remove"
                                            on:click=move |_| members.update(|m| { m.remove(i); })>"✕"</button>
                                    </li>
                                }).collect_view()}
                            </ol>
                        }.into_any()
                    }
                }}
                <div class="inline-pick">
                    <select data-testid="rotation-member-pick" aria-label="Person to add"
                        prop:value=move || pick.get() on:change=move |e| pick.set(event_target_value(&e))>
                        <option value="">"Choose a person…"</option>
                        {people.with_value(|v| v.iter().map(|p| view! { <option value=p.id.to_string()>{p.name.clone()}</option> }).collect_view())}
                    </select>
                    <button type="button" class="btn btn-small" data-testid="rotation-member-add"
                        on:click=move |_| {
                            if let Ok(id) = pick.get_untracked().parse::<i64>() {
                                members.update(|m| if !m.contains(&id) { m.push(id) });
                            }
                            pick.set(String::new());
                        }>"Add to the turn order"</button>
                </div>
            </fieldset>
            {form_error(error, "rotation-error")}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="save-rotation" disabled=move || busy.get()>
                    {if editing.is_some() { "Save rotation" } else { "Add rotation" }}</button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}
