//! One incident (`/incidents/:id`): the header with the actions its status
//! allows, the recovered banner, SLA timers and escalation counting every
//! second, the timeline (live through [`crate::api::incidents::incident_events_url`],
//! which sends the whole incident on every change), notes and log
//! excerpts, linked runs and notifications.

mod parts;
mod timeline;
pub use parts::*;
pub use timeline::*;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use opsdeck_wire::{
    AddIncidentService, BindingMode, Incident, IncidentAct, IncidentDetail, IncidentPatch,
    IncidentStatus, LinkedRun, LogExcerptRequest, NewNote, Notification, Role, Severity,
    SuggestedRunbook, TimelineEvent,
};

use super::list::source_text;
use super::{follow_page, milestone_label, sla_look, IncidentStatusPill, LiveState, SeverityPill};
use crate::api;
use crate::runs::RunStatusPill;
use crate::session::{current_role, use_session};
use crate::time::{clock, human_secs, use_now, LiveTime};
use crate::ui::{Confirm, Detail, DetailLoadError, ErrorState, Loading};

#[component]
pub fn IncidentPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())));
    move || {
        match id.get() {
        Some(id) => view! { <IncidentView id/> }.into_any(),
        None => view! {
            <nav class="crumbs"><a href="/incidents">"Incidents"</a></nav>
            <h1>"Incident"</h1>
            <ErrorState title="No such incident" message="This address names no incident.".to_string()/>
        }
        .into_any(),
    }
    }
}

/// What a status action is called, its path and what it says.
pub(crate) struct Act {
    path: &'static str,
    title: &'static str,
    message: &'static str,
    note_label: &'static str,
    confirm: &'static str,
}

const RESOLVE: Act = Act {
    path: "resolve",
    title: "Resolve this incident?",
    message: "Escalation stops and the SLA timers end, except the post-mortem's. It can be reopened if the problem comes back.",
    note_label: "What fixed it (kept on the timeline)",
    confirm: "Resolve",
};
const REOPEN: Act = Act {
    path: "reopen",
    title: "Reopen this incident?",
    message: "It goes back to acknowledged; the timers keep counting from the first trigger.",
    note_label: "Why (kept on the timeline)",
    confirm: "Reopen",
};
const POSTMORTEM_DONE: Act = Act {
    path: "postmortem/done",
    title: "Mark the post-mortem done?",
    message:
        "The incident is closed for good; the post-mortem stays readable and can still be edited.",
    note_label: "Note (optional)",
    confirm: "Post-mortem done",
};

/// What the parts of the incident page share: the incident, the clock and
/// the actions with their dialogs' state.
#[derive(Clone, Copy)]
pub(crate) struct Ctl {
    id: i64,
    operator: bool,
    /// The user's id.
    me: Option<i64>,
    inc: Memo<Option<Incident>>,
    now: RwSignal<DateTime<Utc>>,
    /// The incident's stream is connected.
    connected: RwSignal<bool>,
    /// The action under way (its path or what it changes).
    busy: RwSignal<Option<&'static str>>,
    /// An action (`acknowledge`, `resolve`, …) with a note.
    act: Callback<(&'static str, String)>,
    /// A change (`severity`, `summary`, `command`, …).
    patch: Callback<(&'static str, IncidentPatch)>,
    /// An action's answer: the incident now.
    set_incident: Callback<Incident>,
    /// The dialog of resolve / reopen / post-mortem done.
    dialog: RwSignal<Option<&'static Act>>,
    dialog_note: RwSignal<String>,
    sev_open: RwSignal<bool>,
    sev_new: RwSignal<Severity>,
    sev_reason: RwSignal<String>,
    stop_open: RwSignal<bool>,
    /// Editing the summary.
    editing: RwSignal<bool>,
    summary_text: RwSignal<String>,
    /// Adding a service (kept open through live updates).
    add_open: RwSignal<bool>,
}

impl Ctl {
    fn open_dialog(self, a: &'static Act) {
        self.dialog_note.set(String::new());
        self.dialog.set(Some(a));
    }
}

/// A change of nothing, to fill in.
fn empty_patch() -> IncidentPatch {
    IncidentPatch {
        title: None,
        severity: None,
        summary: None,
        commander_id: None,
        escalation_policy_id: None,
        reason: String::new(),
    }
}

#[component]
fn IncidentView(id: i64) -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let me = use_session().0.get_untracked().flatten().map(|m| m.id);
    let detail = Detail::<IncidentDetail>::new();
    let Detail { state, stale } = detail;
    let load = move || {
        leptos::task::spawn_local(async move {
            detail.show(api::incidents::get_one(id).await, false);
        });
    };
    load();
    let connected = follow_page(
        api::incidents::incident_events_url(id),
        "incident",
        move |data| match serde_json::from_str::<IncidentDetail>(&data) {
            Ok(d) => {
                stale.try_set(None);
                state.try_set(Some(Ok(d)));
            }
            Err(_) => load(),
        },
        load,
    );
    let now = use_now();

    let inc = Memo::new(move |_| {
        state.with(|s| match s {
            Some(Ok(d)) => Some(d.incident.clone()),
            _ => None,
        })
    });
    let phase = Memo::new(move |_| {
        state.with(|s| match s {
            None => 0,
            Some(Ok(_)) => 1,
            Some(Err(_)) => 2,
        })
    });
    let timeline = Memo::new(move |_| {
        let mut v = state.with(|s| match s {
            Some(Ok(d)) => d.timeline.clone(),
            _ => Vec::new(),
        });
        v.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
        v
    });
    let runs = Memo::new(move |_| {
        state.with(|s| match s {
            Some(Ok(d)) => d.runs.clone(),
            _ => Vec::new(),
        })
    });
    let notifications = Memo::new(move |_| {
        state.with(|s| match s {
            Some(Ok(d)) => d.notifications.clone(),
            _ => Vec::new(),
        })
    });
    // An answer of an action: the incident now (the timeline follows).
    let set_incident = move |i: Incident| {
        state.update(|s| {
            if let Some(Ok(d)) = s {
                d.incident = i;
            }
        });
        stale.set(None);
        load();
    };

    // Actions.
    let busy = RwSignal::new(None::<&'static str>);
    let notice = RwSignal::new(None::<String>);
    let act = move |path: &'static str, note: String| {
        busy.set(Some(path));
        notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::incidents::act(id, path, &IncidentAct { note }).await;
            busy.try_set(None);
            match r {
                Ok(i) => set_incident(i),
                Err(e) => {
                    notice.try_set(Some(e.message));
                }
            }
        });
    };
    let patch = move |what: &'static str, body: IncidentPatch| {
        busy.set(Some(what));
        notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::incidents::update(id, &body).await;
            busy.try_set(None);
            match r {
                Ok(i) => set_incident(i),
                Err(e) => {
                    notice.try_set(Some(e.message));
                }
            }
        });
    };

    // The dialog of resolve / reopen / post-mortem done.
    let dialog = RwSignal::new(None::<&'static Act>);
    let dialog_note = RwSignal::new(String::new());
    // Changing the severity.
    let sev_open = RwSignal::new(false);
    let sev_new = RwSignal::new(Severity::P2);
    let sev_reason = RwSignal::new(String::new());
    // Stopping escalation.
    let stop_open = RwSignal::new(false);
    // Editing the summary.
    let editing = RwSignal::new(false);
    let summary_text = RwSignal::new(String::new());
    // Adding a service (kept open through live updates).
    let add_open = RwSignal::new(false);

    let ctl = Ctl {
        id,
        operator,
        me,
        inc,
        now,
        connected,
        busy,
        act: Callback::new(move |(path, note)| act(path, note)),
        patch: Callback::new(move |(what, body)| patch(what, body)),
        set_incident: Callback::new(set_incident),
        dialog,
        dialog_note,
        sev_open,
        sev_new,
        sev_reason,
        stop_open,
        editing,
        summary_text,
        add_open,
    };

    let services_of = Memo::new(move |_| {
        inc.with(|i| {
            i.as_ref()
                .map(|i| {
                    i.services
                        .iter()
                        .map(|s| (s.service_id, s.name.clone()))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    });

    move || {
        match phase.get() {
        0 => view! { <Loading rows=6/> }.into_any(),
        2 => view! {
            <DetailLoadError list_href="/incidents" list_label="Incidents" heading="Incident"
                title="Cannot show this incident" missing="There is no incident with this id."
                error=state.with_untracked(|s| s.as_ref().and_then(|r| r.as_ref().err()).cloned())
                retry=Callback::new(move |_| load())/>
        }
        .into_any(),
        _ => view! {
            <Header ctl/>
            {move || stale.get().map(|m| view! { <div class="notice notice-error" role="alert">"Showing the last known state: "{m}</div> })}
            {move || notice.get().map(|m| view! {
                <div class="notice notice-error" role="alert" data-testid="incident-action-error">
                    <span>{m}</span><span class="spacer"></span>
                    <button class="btn btn-ghost btn-small" aria-label="Dismiss" on:click=move |_| notice.set(None)>"✕"</button>
                </div>
            })}
            <Recovered ctl/>
            <div class="incident-grid">
                <div class="incident-main">
                    <Summary ctl/>
                    <section class="card incident-timeline-card">
                        <div class="card-head">
                            <h2>"Timeline"</h2>
                            <span class="muted small">"newest last"</span>
                        </div>
                        <IncidentTimeline events=timeline now/>
                        {operator.then(|| view! { <NoteBox id on_done=Callback::new(move |_| load())/> })}
                        {operator.then(|| view! { <LogExcerpt id services=services_of on_done=Callback::new(move |_| load())/> })}
                    </section>
                    <section class="card incident-notifications-card">
                        <h2>"Notifications"</h2>
                        <NotificationTable items=notifications/>
                    </section>
                </div>
                <aside class="incident-side">
                    <Sla ctl/>
                    <Details ctl/>
                    <BoundRunbooks id runs operator/>
                    <LinkedRuns runs now operator/>
                    <PostmortemCard id inc/>
                </aside>
            </div>
            <ActDialog ctl/>
            <SeverityDialog ctl/>
            <StopEscalation ctl/>
        }
        .into_any(),
    }
    }
}
