//! The people and teams tabs of `/admin/contacts`, with their forms.

use super::*;

// ------------------------------------------------------------------- people

#[component]
pub(super) fn PeopleTab(ctx: Ctx) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let bump = move || reload.update(|n| *n = n.wrapping_add(1));
    let people = LocalResource::new(move || {
        reload.get();
        api::oncall::people()
    });
    let form = RwSignal::new(None::<Editing<Person>>);

    let row = move |p: Person| {
        let name = p.name.clone();
        let edit = p.clone();
        let (id, del_name) = (p.id, p.name.clone());
        view! {
            <tr data-testid=format!("person-row-{name}")>
                <td class="cell-main"><strong>{name.clone()}</strong>
                    {(!p.title.is_empty()).then(|| view! { <div class="muted small">{p.title.clone()}</div> })}</td>
                <td>{p.email.clone().map(|e| { let href = format!("mailto:{e}"); view! { <a href=href>{e}</a> } })}</td>
                <td class="nowrap">{p.phone.clone().map(|t| { let href = format!("tel:{}", t.replace([' ', '-'], "")); view! { <a href=href>{t}</a> } })}</td>
                <td>{p.chat_handle.clone()}</td>
                <td>{p.teams.join(", ")}</td>
                <td><div class="actions">
                    <button class="btn btn-small" data-testid=format!("person-edit-{name}")
                        on:click=move |_| { ctx.notice.set(None); form.set(Some(Editing::Edit(edit.clone()))); }>"Edit"</button>
                    <button class="btn btn-small btn-danger" data-testid=format!("person-delete-{name}")
                        on:click=move |_| ctx.delete(
                            format!("Delete {del_name}?"),
                            format!("{del_name} leaves every team and rotation and every escalation level that names them. Refused while they are the last person a rotation or an escalation level reaches."),
                            Removal::Record(Collection::People, id),
                            format!("Deleted {del_name}."),
                            bump,
                        )>"Delete"</button>
                </div></td>
            </tr>
        }
    };

    view! {
        <div class="btn-row">
            <button class="btn btn-primary" data-testid="add-person"
                on:click=move |_| { ctx.notice.set(None); form.set(Some(Editing::Add)); }>"Add person"</button>
        </div>
        {move || form.get().map(|mode| {
            let on_saved = Callback::new(move |msg: String| { form.set(None); ctx.notice.set(Some(Ok(msg))); bump(); });
            let on_cancel = Callback::new(move |_| form.set(None));
            view! { <PersonForm mode on_saved on_cancel/> }
        })}
        <CrudList items=Signal::derive(move || people.get()) retry=Callback::new(move |_| bump())
            empty_title="No people yet"
            empty=|| view! { <p>"Add the people incidents should reach: name, role, phone, e-mail, chat handle."</p> }
            show={move |v: Vec<Person>| view! {
                <CrudTable rows=v class="table" testid="people-table" row=row>
                    <th>"Name"</th><th>"E-mail"</th><th>"Phone"</th><th>"Chat"</th><th>"Teams"</th><th><span class="sr-only">"Actions"</span></th>
                </CrudTable>
            }}/>
    }
}

#[component]
pub(super) fn PersonForm(
    mode: Editing<Person>,
    on_saved: Callback<String>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let existing = match &mode {
        Editing::Add => None,
        Editing::Edit(p) => Some(p.clone()),
    };
    let editing = existing.as_ref().map(|p| p.id);
    let user_id = existing.as_ref().and_then(|p| p.user_id);
    let field =
        |f: fn(&Person) -> String| RwSignal::new(existing.as_ref().map(f).unwrap_or_default());
    let name = field(|p| p.name.clone());
    let title = field(|p| p.title.clone());
    let email = field(|p| p.email.clone().unwrap_or_default());
    let phone = field(|p| p.phone.clone().unwrap_or_default());
    let chat = field(|p| p.chat_handle.clone().unwrap_or_default());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let opt = |s: String| Some(s.trim().to_string()).filter(|s| !s.is_empty());
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = PersonInput {
            name: name.get_untracked().trim().to_string(),
            title: title.get_untracked().trim().to_string(),
            email: opt(email.get_untracked()),
            phone: opt(phone.get_untracked()),
            chat_handle: opt(chat.get_untracked()),
            user_id,
        };
        Save {
            collection: Collection::People,
            editing,
            what: "",
            busy,
            error,
            message: plain_message,
            on_saved,
        }
        .send(body, |p: &Person| p.name.clone());
    };
    view! {
        <form class="card form-grid" on:submit=submit data-testid="person-form">
            <h2>{if editing.is_some() { "Edit person" } else { "New person" }}</h2>
            <label>"Name"<input required maxlength="100" data-testid="person-name" placeholder="e.g. Alice Example"
                prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/></label>
            <label>"Role"<input maxlength="100" data-testid="person-title" placeholder="e.g. DBA, DevOps lead"
                prop:value=move || title.get() on:input=move |e| title.set(event_target_value(&e))/></label>
            <label>"E-mail"<input type="email" data-testid="person-email" placeholder="alice@example.org"
                prop:value=move || email.get() on:input=move |e| email.set(event_target_value(&e))/></label>
            <label>"Phone"<input type="tel" data-testid="person-phone" placeholder="+49 30 1234567"
                prop:value=move || phone.get() on:input=move |e| phone.set(event_target_value(&e))/>
                <span class="hint">"+ and the country code, then digits, spaces or dashes"</span></label>
            <label>"Chat handle"<input data-testid="person-chat" placeholder="@alice"
                prop:value=move || chat.get() on:input=move |e| chat.set(event_target_value(&e))/></label>
            {form_error(error, "person-error")}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="save-person" disabled=move || busy.get()>
                    {if editing.is_some() { "Save person" } else { "Add person" }}</button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}

// -------------------------------------------------------------------- teams

#[component]
pub(super) fn TeamsTab(ctx: Ctx) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let bump = move || reload.update(|n| *n = n.wrapping_add(1));
    let teams = LocalResource::new(move || {
        reload.get();
        api::oncall::teams()
    });
    let people = LocalResource::new(api::oncall::people);
    let form = RwSignal::new(None::<Editing<Team>>);

    let row = move |t: Team| {
        let name = t.name.clone();
        let edit = t.clone();
        let (id, del_name) = (t.id, t.name.clone());
        view! {
            <tr data-testid=format!("team-row-{name}")>
                <td class="cell-main"><strong>{name.clone()}</strong>
                    {(!t.description.is_empty()).then(|| view! { <div class="muted small">{t.description.clone()}</div> })}</td>
                <td>{if t.members.is_empty() {
                    view! { <span class="muted">"no members"</span> }.into_any()
                } else {
                    view! { <span>{t.members.iter().map(|m| m.name.clone()).collect::<Vec<_>>().join(", ")}</span> }.into_any()
                }}</td>
                <td><div class="actions">
                    <button class="btn btn-small" data-testid=format!("team-edit-{name}")
                        on:click=move |_| { ctx.notice.set(None); form.set(Some(Editing::Edit(edit.clone()))); }>"Edit"</button>
                    <button class="btn btn-small btn-danger" data-testid=format!("team-delete-{name}")
                        on:click=move |_| ctx.delete(
                            format!("Delete team {del_name}?"),
                            format!("Its people stay; escalation levels naming {del_name} lose it. Refused while a level relies on it alone."),
                            Removal::Record(Collection::Teams, id),
                            format!("Deleted team {del_name}."),
                            bump,
                        )>"Delete"</button>
                </div></td>
            </tr>
        }
    };

    view! {
        <div class="btn-row">
            <button class="btn btn-primary" data-testid="add-team"
                on:click=move |_| { ctx.notice.set(None); form.set(Some(Editing::Add)); }>"Add team"</button>
        </div>
        {move || form.get().map(|mode| {
            let on_saved = Callback::new(move |msg: String| { form.set(None); ctx.notice.set(Some(Ok(msg))); bump(); });
            let on_cancel = Callback::new(move |_| form.set(None));
            match people.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState title="Cannot list the people" message=e.message/> }.into_any(),
                Some(Ok(list)) => view! { <TeamForm mode people=list on_saved on_cancel/> }.into_any(),
            }
        })}
        <CrudList items=Signal::derive(move || teams.get()) retry=Callback::new(move |_| bump())
            empty_title="No teams yet"
            empty=|| view! { <p>"Group people into teams (DBA, platform) to notify them together."</p> }
            show={move |v: Vec<Team>| view! {
                <CrudTable rows=v class="table" testid="teams-table" row=row>
                    <th>"Team"</th><th>"Members"</th><th><span class="sr-only">"Actions"</span></th>
                </CrudTable>
            }}/>
    }
}

#[component]
pub(super) fn TeamForm(
    mode: Editing<Team>,
    people: Vec<Person>,
    on_saved: Callback<String>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let existing = match &mode {
        Editing::Add => None,
        Editing::Edit(t) => Some(t.clone()),
    };
    let editing = existing.as_ref().map(|t| t.id);
    let name = RwSignal::new(
        existing
            .as_ref()
            .map(|t| t.name.clone())
            .unwrap_or_default(),
    );
    let description = RwSignal::new(
        existing
            .as_ref()
            .map(|t| t.description.clone())
            .unwrap_or_default(),
    );
    let members = RwSignal::new(
        existing
            .as_ref()
            .map(|t| t.members.iter().map(|m| m.id).collect::<Vec<_>>())
            .unwrap_or_default(),
    );
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let body = TeamInput {
            name: name.get_untracked().trim().to_string(),
            description: description.get_untracked().trim().to_string(),
            members: members.get_untracked(),
        };
        Save {
            collection: Collection::Teams,
            editing,
            what: "team ",
            busy,
            error,
            message: plain_message,
            on_saved,
        }
        .send(body, |t: &Team| t.name.clone());
    };
    view! {
        <form class="card form-grid" on:submit=submit data-testid="team-form">
            <h2>{if editing.is_some() { "Edit team" } else { "New team" }}</h2>
            <label>"Name"<input required maxlength="100" data-testid="team-name" placeholder="e.g. DBA"
                prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/></label>
            <label class="span-2">"Description"<input maxlength="1000" data-testid="team-description"
                prop:value=move || description.get() on:input=move |e| description.set(event_target_value(&e))/></label>
            <fieldset class="span-all">
                <legend>"Members"</legend>
                {if people.is_empty() {
                    view! { <p class="muted">"Add people first (People tab)."</p> }.into_any()
                } else {
                    view! {
                        <div class="check-grid">
                            {people.into_iter().map(|p| {
                                let id = p.id;
                                view! {
                                    <label class="check">
                                        <input type="checkbox" data-testid=format!("team-member-{}", p.name)
                                            prop:checked=move || members.with(|m| m.contains(&id))
                                            on:change=move |e| {
                                                let on = event_target_checked(&e);
                                                members.update(|m| {
                                                    m.retain(|x| *x != id);
                                                    if on { m.push(id); }
                                                });
                                            }/>
                                        {p.name.clone()}
                                    </label>
                                }
                            }).collect_view()}
                        </div>
                    }.into_any()
                }}
            </fieldset>
            {form_error(error, "team-error")}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="save-team" disabled=move || busy.get()>
                    {if editing.is_some() { "Save team" } else { "Add team" }}</button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}
