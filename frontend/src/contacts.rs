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

mod oncall;
mod people;
mod policies;
mod rotations;
pub use oncall::*;
pub use people::*;
pub use policies::*;
pub use rotations::*;

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
use crate::time::{browser_timezone, local, local_input, local_text, now, parse_local_input};
use crate::ui::{Confirm, CrudList, CrudTable, EmptyState, ErrorState, Loading};

// ------------------------------------------------------------------ helpers

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
pub(crate) struct Ctx {
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
pub(crate) enum Editing<T> {
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
