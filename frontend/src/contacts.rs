//! Contacts and on-call.
//!
//! `/oncall` (everyone): a card per rotation saying who is on call now (with
//! phone and e-mail links) and until when, and who is next from when;
//! overrides are marked. Refreshed every minute while the tab is visible.
//!
//! `/admin/contacts` (admins): tabs for people, teams, rotations (with
//! holiday overrides) and escalation policies (levels with a delay in
//! minutes and targets chosen from people, rotations and teams). Every
//! delete asks first; the API's validation messages are shown in the form
//! that caused them. Times are shown in the browser's time zone (exact UTC
//! on hover); rotations hand off in their own zone, which the server
//! applies.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use leptos::prelude::*;
use opsdeck_wire::{
    EscalationLevel, EscalationPolicy, EscalationPolicyInput, EscalationTarget, OnCall,
    OnCallShift, OverrideInput, Person, PersonInput, Role, Rotation, RotationInput, Team,
    TeamInput,
};

use crate::api::oncall::{Collection, Removal};
use crate::api::{self, ApiError};
use crate::live::use_interval;
use crate::session::current_role;
use crate::time::relative;
use crate::time::{local, local_input, local_text, now, parse_local_input};
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

// ------------------------------------------------------------------ helpers

/// The browser's IANA time zone, when it tells.
fn browser_timezone() -> Option<String> {
    let options = js_sys::Intl::DateTimeFormat::new(&js_sys::Array::new(), &js_sys::Object::new())
        .resolved_options();
    js_sys::Reflect::get(&options, &"timeZone".into())
        .ok()?
        .as_string()
        .filter(|s| !s.is_empty())
}

/// A time on the browser's clock with how far away it is; exact UTC on hover.
#[component]
fn When(at: DateTime<Utc>) -> impl IntoView {
    let exact = at.format("%Y-%m-%d %H:%M UTC").to_string();
    view! {
        <time datetime=at.to_rfc3339() title=exact>
            {local_text(at)}<span class="muted">" ("{relative(at)}")"</span>
        </time>
    }
}

const WEEKDAYS: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];

fn weekday_name(d: i16) -> &'static str {
    usize::try_from(d)
        .ok()
        .and_then(|d| d.checked_sub(1))
        .and_then(|i| WEEKDAYS.get(i))
        .copied()
        .unwrap_or("?")
}

/// "daily at 09:30 (UTC)", "weekly on Monday at 09:00 (Europe/Berlin)".
fn handoff_text(r: &Rotation) -> String {
    match r.handoff_weekday {
        Some(d) if r.handoff == "weekly" => format!(
            "weekly on {} at {} ({})",
            weekday_name(d),
            r.handoff_time,
            r.time_zone
        ),
        _ => format!("daily at {} ({})", r.handoff_time, r.time_zone),
    }
}

/// "at once", "after 15 min", "after 1 h 30 min".
fn delay_text(secs: i64) -> String {
    if secs <= 0 {
        return "at once".into();
    }
    let m = secs / 60;
    let s = secs % 60;
    let text = match (m / 60, m % 60) {
        (0, m) => format!("{m} min"),
        (h, 0) => format!("{h} h"),
        (h, m) => format!("{h} h {m} min"),
    };
    if s == 0 {
        format!("after {text}")
    } else {
        format!("after {text} {s} s")
    }
}

/// The API's message as it is.
fn plain_message(e: &ApiError) -> String {
    e.message.clone()
}

/// The API names a level by its index (`field` `levels[1].targets[0]`); the
/// form shows levels as L1, L2 …: `L2, target 1: …`.
fn level_message(e: &ApiError) -> String {
    let msg = e.message.as_str();
    let parse = || -> Option<String> {
        let field = e.field.as_deref()?;
        let after = msg.strip_prefix(field)?;
        let rest = field.strip_prefix("levels[")?;
        let (n, rest) = rest.split_once(']')?;
        let n: usize = n.parse().ok()?;
        let mut out = format!("L{}", n + 1);
        let rest = if let Some(r) = rest.strip_prefix(".targets[") {
            let (m, r) = r.split_once(']')?;
            let m: usize = m.parse().ok()?;
            out.push_str(&format!(", target {}", m + 1));
            r
        } else if let Some(r) = rest.strip_prefix(".targets") {
            out.push_str(" targets");
            r
        } else if let Some(r) = rest.strip_prefix(".delay_secs") {
            out.push_str(" delay (seconds)");
            r
        } else {
            rest
        };
        Some(out + rest + after)
    };
    parse().unwrap_or_else(|| msg.to_string())
}

fn notice_view(n: Option<Result<String, String>>, testid: &'static str) -> impl IntoView {
    n.map(|n| match n {
        Ok(m) => view! { <div class="notice notice-ok" role="status" data-testid=testid>{m}</div> }
            .into_any(),
        Err(m) => {
            view! { <div class="notice notice-error" role="alert" data-testid=testid>{m}</div> }
                .into_any()
        }
    })
}

// ------------------------------------------------------------------ on call

#[component]
pub fn OnCallPage() -> impl IntoView {
    let admin = current_role() >= Role::Admin;
    let reload = RwSignal::new(0u32);
    let bump = move || {
        reload.try_update(|n| *n = n.wrapping_add(1));
    };
    let list = LocalResource::new(move || {
        reload.get();
        api::oncall::on_call()
    });
    // Shifts end and relative times move on.
    use_interval(Duration::from_secs(60), bump);
    let data = Memo::new(move |_| list.get());
    view! {
        <div class="page-head">
            <h1>"On-call"</h1>
            <span class="spacer"></span>
            {admin.then(|| view! { <a class="btn" href="/admin/contacts">"Contacts & escalation"</a> })}
        </div>
        <p class="lede">"Who is on call now and who is next, per rotation. Holiday overrides are marked."</p>
        {move || match data.get() {
            None => view! { <Loading rows=3/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| bump())/> }.into_any(),
            Some(Ok(v)) if v.is_empty() => view! {
                <div data-testid="oncall-empty">
                    <EmptyState title="No rotations yet">
                        <p>"An admin can set up rotations at "
                            {if admin {
                                view! { <a href="/admin/contacts">"Contacts & escalation"</a> }.into_any()
                            } else {
                                view! { <strong>"Contacts & escalation"</strong> }.into_any()
                            }}
                            "."</p>
                    </EmptyState>
                </div>
            }.into_any(),
            Some(Ok(v)) => {
                let count = v.len().to_string();
                view! {
                <div class="oncall-grid" data-testid="oncall-cards" data-count=count>
                    {v.into_iter().map(|o| view! { <OnCallCard oncall=o/> }).collect_view()}
                </div>
                }.into_any()
            }
        }}
    }
}

#[component]
fn OnCallCard(oncall: OnCall) -> impl IntoView {
    let name = oncall.rotation.clone();
    let now_view = match oncall.current.clone() {
        Some(s) => view! {
            <div class="oncall-now" data-testid=format!("oncall-now-{name}")
                data-person=s.person.name.clone() data-override=s.is_override.to_string()>
                <span class="oncall-label">"On call now"</span>
                <div class="oncall-person">
                    <strong>{s.person.name.clone()}</strong>
                    {s.is_override.then(|| view! { <span class="pill pill-maintenance" title="Covered by an override"><span aria-hidden="true">"⇄"</span>" override"</span> })}
                </div>
                <Contact shift=s.clone()/>
                <div class="small">"until "<When at=s.until/></div>
            </div>
        }
        .into_any(),
        None => view! {
            <div class="oncall-now oncall-nobody" data-testid=format!("oncall-now-{name}") data-person="">
                <span class="oncall-label">"On call now"</span>
                <div class="warn-text"><span aria-hidden="true">"⚠ "</span>"Nobody"</div>
            </div>
        }
        .into_any(),
    };
    let next_view = match oncall.next.clone() {
        Some(s) => view! {
            <div class="oncall-next small" data-testid=format!("oncall-next-{name}")
                data-person=s.person.name.clone() data-override=s.is_override.to_string()>
                "Next: "<strong>{s.person.name.clone()}</strong>
                {s.is_override.then(|| view! { " "<span class="pill pill-maintenance"><span aria-hidden="true">"⇄"</span>" override"</span> })}
                " from "<When at=s.from/>
            </div>
        }
        .into_any(),
        None => view! {
            <div class="oncall-next small muted" data-testid=format!("oncall-next-{name}") data-person="">"Next: nobody scheduled"</div>
        }
        .into_any(),
    };
    view! {
        <section class="card oncall-card" data-testid=format!("oncall-card-{name}")>
            <h2>{name.clone()}</h2>
            {now_view}
            {next_view}
        </section>
    }
}

#[component]
fn Contact(shift: OnCallShift) -> impl IntoView {
    let phone = shift.phone.map(|p| {
        let href = format!("tel:{}", p.replace([' ', '-'], ""));
        view! { <a href=href data-testid="oncall-phone"><span aria-hidden="true">"☎ "</span>{p}</a> }
    });
    let email = shift.email.map(|e| {
        let href = format!("mailto:{e}");
        view! { <a href=href data-testid="oncall-email"><span aria-hidden="true">"✉ "</span>{e}</a> }
    });
    view! { <div class="oncall-contact">{phone}{email}</div> }
}

// -------------------------------------------------------------------- admin

/// A pending destructive action, confirmed by the dialog.
#[derive(Clone)]
struct Pending {
    title: String,
    message: String,
    run: Arc<dyn Fn() + Send + Sync>,
}

/// What the tabs share: the page notice and the confirmation dialog.
#[derive(Clone, Copy)]
struct Ctx {
    notice: RwSignal<Option<Result<String, String>>>,
    pending: RwSignal<Option<Pending>>,
    confirm_open: RwSignal<bool>,
}

impl Ctx {
    fn ask(&self, title: String, message: String, run: impl Fn() + Send + Sync + 'static) {
        self.pending.set(Some(Pending {
            title,
            message,
            run: Arc::new(run),
        }));
        self.confirm_open.set(true);
    }

    fn report(&self, r: Result<String, ApiError>) {
        self.notice.try_set(Some(r.map_err(|e| e.message)));
    }

    /// Asks, then deletes `what` and reports `done` (or the refusal).
    fn delete(
        &self,
        title: String,
        message: String,
        what: Removal,
        done: String,
        after: impl Fn() + Send + Sync + 'static,
    ) {
        let ctx = *self;
        let after = Arc::new(after);
        self.ask(title, message, move || {
            let done = done.clone();
            let after = after.clone();
            leptos::task::spawn_local(async move {
                let r = api::oncall::remove(what).await;
                ctx.report(r.map(|_| done));
                after();
            });
        });
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Tab {
    People,
    Teams,
    Rotations,
    Policies,
}

#[component]
pub fn ContactsAdmin() -> impl IntoView {
    let tab = RwSignal::new(Tab::People);
    let ctx = Ctx {
        notice: RwSignal::new(None),
        pending: RwSignal::new(None),
        confirm_open: RwSignal::new(false),
    };
    let tab_button = move |t: Tab, label: &'static str, testid: &'static str| {
        view! {
            <button type="button" role="tab" class="tab" data-testid=testid
                aria-selected=move || (tab.get() == t).to_string()
                on:click=move |_| { ctx.notice.set(None); tab.set(t); }>{label}</button>
        }
    };
    view! {
        <div class="page-head">
            <h1>"Contacts & escalation"</h1>
            <span class="spacer"></span>
            <a class="btn" href="/oncall">"Who is on call"</a>
        </div>
        <p class="lede">"People to notify, teams, on-call rotations with holiday overrides, and escalation policies: who is notified how long after an incident is triggered if nobody acknowledges it."</p>
        {move || notice_view(ctx.notice.get(), "contacts-notice")}
        <div class="tabs" role="tablist" aria-label="Contacts">
            {tab_button(Tab::People, "People", "tab-people")}
            {tab_button(Tab::Teams, "Teams", "tab-teams")}
            {tab_button(Tab::Rotations, "Rotations", "tab-rotations")}
            {tab_button(Tab::Policies, "Escalation policies", "tab-policies")}
        </div>
        <div class="tab-panel" role="tabpanel">
            {move || match tab.get() {
                Tab::People => view! { <PeopleTab ctx/> }.into_any(),
                Tab::Teams => view! { <TeamsTab ctx/> }.into_any(),
                Tab::Rotations => view! { <RotationsTab ctx/> }.into_any(),
                Tab::Policies => view! { <PoliciesTab ctx/> }.into_any(),
            }}
        </div>
        <Confirm open=ctx.confirm_open
            title=Signal::derive(move || ctx.pending.get().map(|p| p.title).unwrap_or_default())
            message=Signal::derive(move || ctx.pending.get().map(|p| p.message).unwrap_or_default())
            confirm_label="Delete"
            on_confirm=Callback::new(move |_| if let Some(p) = ctx.pending.get_untracked() { (p.run)() })/>
    }
}

/// A form being shown: add, or edit this item.
#[derive(Clone)]
enum Editing<T> {
    Add,
    Edit(T),
}

/// What a create-or-save form needs to send its record.
struct Save {
    /// Where the record goes: added there, or saved as `editing`.
    collection: Collection,
    editing: Option<i64>,
    /// Before the name in the notice: "" (people), "team ", "rotation ", ….
    what: &'static str,
    busy: RwSignal<bool>,
    error: RwSignal<Option<String>>,
    /// How the API's error is shown in the form.
    message: fn(&ApiError) -> String,
    on_saved: Callback<String>,
}

impl Save {
    /// Adds or saves `body`; reports "Added/Saved <what><name>." through
    /// `on_saved`, or the API's error in the form.
    fn send<B, T>(self, body: B, name_of: fn(&T) -> String)
    where
        B: serde::Serialize + 'static,
        T: serde::de::DeserializeOwned + 'static,
    {
        self.busy.set(true);
        self.error.set(None);
        leptos::task::spawn_local(async move {
            let r = api::oncall::save::<T>(self.collection, self.editing, &body).await;
            self.busy.try_set(false);
            match r {
                Ok(saved) => self.on_saved.run(format!(
                    "{} {}{}.",
                    if self.editing.is_some() {
                        "Saved"
                    } else {
                        "Added"
                    },
                    self.what,
                    name_of(&saved)
                )),
                Err(e) => {
                    self.error.try_set(Some((self.message)(&e)));
                }
            }
        });
    }
}

fn form_error(error: RwSignal<Option<String>>, testid: &'static str) -> impl IntoView {
    move || {
        error.get().map(
            |m| view! { <div class="notice notice-error span-all" role="alert" data-testid=testid>{m}</div> },
        )
    }
}

// ------------------------------------------------------------------- people

#[component]
fn PeopleTab(ctx: Ctx) -> impl IntoView {
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
        {move || match people.get() {
            None => view! { <Loading rows=3/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| bump())/> }.into_any(),
            Some(Ok(v)) if v.is_empty() => view! {
                <EmptyState title="No people yet"><p>"Add the people incidents should reach: name, role, phone, e-mail, chat handle."</p></EmptyState>
            }.into_any(),
            Some(Ok(v)) => {
                let count = v.len().to_string();
                view! {
                <div class="table-wrap"><table class="table" data-testid="people-table" data-count=count>
                    <thead><tr><th>"Name"</th><th>"E-mail"</th><th>"Phone"</th><th>"Chat"</th><th>"Teams"</th><th><span class="sr-only">"Actions"</span></th></tr></thead>
                    <tbody>{v.into_iter().map(row).collect_view()}</tbody>
                </table></div>
                }.into_any()
            }
        }}
    }
}

#[component]
fn PersonForm(
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
fn TeamsTab(ctx: Ctx) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let bump = move || reload.update(|n| *n = n.wrapping_add(1));
    let teams = LocalResource::new(move || {
        reload.get();
        api::oncall::teams()
    });
    let people = LocalResource::new(|| api::oncall::people());
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
        {move || match teams.get() {
            None => view! { <Loading rows=3/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| bump())/> }.into_any(),
            Some(Ok(v)) if v.is_empty() => view! {
                <EmptyState title="No teams yet"><p>"Group people into teams (DBA, platform) to notify them together."</p></EmptyState>
            }.into_any(),
            Some(Ok(v)) => {
                let count = v.len().to_string();
                view! {
                <div class="table-wrap"><table class="table" data-testid="teams-table" data-count=count>
                    <thead><tr><th>"Team"</th><th>"Members"</th><th><span class="sr-only">"Actions"</span></th></tr></thead>
                    <tbody>{v.into_iter().map(row).collect_view()}</tbody>
                </table></div>
                }.into_any()
            }
        }}
    }
}

#[component]
fn TeamForm(
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

// ---------------------------------------------------------------- rotations

#[component]
fn RotationsTab(ctx: Ctx) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let bump = move || reload.update(|n| *n = n.wrapping_add(1));
    let rotations = LocalResource::new(move || {
        reload.get();
        api::oncall::rotations()
    });
    let people = LocalResource::new(|| api::oncall::people());
    let teams = LocalResource::new(|| api::oncall::teams());
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
fn RotationCard(
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
fn OverrideForm(
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
fn RotationForm(
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

// ----------------------------------------------------------------- policies

/// What a target can be, for the pickers: (kind, id, label).
type Choice = (&'static str, i64, String);

fn target_label(t: &EscalationTarget) -> String {
    format!(
        "{} {}",
        t.kind,
        t.name.clone().unwrap_or_else(|| format!("#{}", t.id))
    )
}

#[component]
fn PoliciesTab(ctx: Ctx) -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let bump = move || reload.update(|n| *n = n.wrapping_add(1));
    let policies = LocalResource::new(move || {
        reload.get();
        api::oncall::escalation_policies()
    });
    let people = LocalResource::new(|| api::oncall::people());
    let rotations = LocalResource::new(|| api::oncall::rotations());
    let teams = LocalResource::new(|| api::oncall::teams());
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
struct LevelDraft {
    key: u32,
    minutes: RwSignal<String>,
    targets: RwSignal<Vec<(String, i64)>>,
    pick: RwSignal<String>,
}

impl LevelDraft {
    fn new(key: u32, delay_secs: i64, targets: Vec<(String, i64)>) -> LevelDraft {
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
fn PolicyForm(
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
