//! One incident (`/incidents/:id`): the header with the actions its status
//! allows, the recovered banner, SLA timers and escalation counting every
//! second, the timeline (live through [`crate::api::incidents::incident_events_url`],
//! which sends the whole incident on every change), notes and log
//! excerpts, linked runs and notifications.

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use opsdeck_wire::{
    AddIncidentService, Incident, IncidentAct, IncidentDetail, IncidentPatch, IncidentStatus,
    LinkedRun, LogExcerptRequest, NewNote, Notification, Role, Severity, TimelineEvent,
};

use super::list::source_text;
use super::{follow_page, milestone_label, sla_look, IncidentStatusPill, LiveState, SeverityPill};
use crate::api::{self, ApiError};
use crate::runs::RunStatusPill;
use crate::session::{current_role, use_session};
use crate::time::{clock, human_secs, use_now, LiveTime};
use crate::ui::{Confirm, DetailLoadError, ErrorState, Loading};

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
struct Act {
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
struct Ctl {
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
    let state = RwSignal::new(None::<Result<IncidentDetail, ApiError>>);
    let stale = RwSignal::new(None::<String>);
    let load = move || {
        leptos::task::spawn_local(async move {
            let r = api::incidents::get_one(id).await;
            let had = state
                .try_with_untracked(|s| matches!(s, Some(Ok(_))))
                .unwrap_or(false);
            match r {
                Ok(d) => {
                    stale.try_set(None);
                    state.try_set(Some(Ok(d)));
                }
                // Keep what is shown through a passing network error.
                Err(e) if had && e.status != 404 => {
                    stale.try_set(Some(e.message));
                }
                Err(e) => {
                    state.try_set(Some(Err(e)));
                }
            }
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

/// The incident's severity, state, title and the actions its state allows.
#[component]
fn Header(ctl: Ctl) -> impl IntoView {
    let Ctl {
        operator,
        inc,
        connected,
        busy,
        sev_open,
        sev_new,
        sev_reason,
        ..
    } = ctl;
    let act = move |path: &'static str, note: String| ctl.act.run((path, note));
    let open_dialog = move |a: &'static Act| ctl.open_dialog(a);
    move || {
        inc.get().map(|i| {
            let status = i.status;
            let open = status.is_open();
            let can_ack = status == IncidentStatus::Triggered;
            let can_diagnose = open && i.diagnosed_at.is_none();
            let can_mitigate = matches!(status, IncidentStatus::Triggered | IncidentStatus::Acknowledged);
            let can_reopen = status == IncidentStatus::Resolved;
            let severity = i.severity;
            view! {
                <nav class="crumbs"><a href="/incidents">"Incidents"</a>" / "<span>"#"{i.id}</span></nav>
                <div class="page-head incident-head">
                    <SeverityPill severity=i.severity long=true testid="incident-severity"/>
                    <IncidentStatusPill status testid="incident-status"/>
                    <h1 data-testid="incident-title" class="wrap-anywhere">{i.title.clone()}</h1>
                    <LiveState connected/>
                    <span class="spacer"></span>
                    {operator.then(|| view! {
                        <div class="actions incident-actions">
                            {can_ack.then(|| view! {
                                <button class="btn btn-primary" data-testid="ack-incident" disabled=move || busy.get().is_some()
                                    title="I am on it: stops escalation" on:click=move |_| act("acknowledge", String::new())>
                                    {move || if busy.get() == Some("acknowledge") { "Acknowledging…" } else { "◉ Acknowledge" }}
                                </button>
                            })}
                            {can_diagnose.then(|| view! {
                                <button class="btn" data-testid="diagnose-incident" disabled=move || busy.get().is_some()
                                    title="The root cause is known" on:click=move |_| act("diagnose", String::new())>"◈ Mark diagnosed"</button>
                            })}
                            {can_mitigate.then(|| view! {
                                <button class="btn" data-testid="mitigate-incident" disabled=move || busy.get().is_some()
                                    title="The impact is contained" on:click=move |_| act("mitigate", String::new())>"◐ Mitigated"</button>
                            })}
                            {open.then(|| view! {
                                <button class="btn" data-testid="resolve-incident" disabled=move || busy.get().is_some()
                                    on:click=move |_| open_dialog(&RESOLVE)>"✓ Resolve…"</button>
                            })}
                            {can_reopen.then(|| view! {
                                <button class="btn" data-testid="reopen-incident" disabled=move || busy.get().is_some()
                                    on:click=move |_| open_dialog(&REOPEN)>"↺ Reopen…"</button>
                                <button class="btn btn-primary" data-testid="postmortem-done" disabled=move || busy.get().is_some()
                                    on:click=move |_| open_dialog(&POSTMORTEM_DONE)>"▤ Post-mortem done…"</button>
                            })}
                            {(status != IncidentStatus::PostmortemDone).then(|| view! {
                                <button class="btn" data-testid="change-severity" disabled=move || busy.get().is_some()
                                    on:click=move |_| { sev_new.set(severity); sev_reason.set(String::new()); sev_open.set(true); }>"Severity…"</button>
                            })}
                        </div>
                    })}
                </div>
            }
        })
    }
}

/// "Health checks recovered — resolve?" while the incident is open.
#[component]
fn Recovered(ctl: Ctl) -> impl IntoView {
    let Ctl {
        operator, inc, now, ..
    } = ctl;
    let open_dialog = move |a: &'static Act| ctl.open_dialog(a);
    move || {
        inc.get().and_then(|i| {
            let at = i.recovered_at.filter(|_| i.status.is_open())?;
            Some(view! {
                <div class="notice notice-ok incident-recovered" role="status" data-testid="recovered-banner">
                    <span aria-hidden="true">"♥"</span>
                    <span>"Health checks recovered "<LiveTime at now/>" — resolve?"</span>
                    <span class="spacer"></span>
                    {operator.then(|| view! {
                        <button class="btn btn-primary btn-small" data-testid="recovered-resolve" on:click=move |_| open_dialog(&RESOLVE)>"Resolve…"</button>
                    })}
                </div>
            })
        })
    }
}

/// Commander, times, escalation and the services involved.
#[component]
fn Details(ctl: Ctl) -> impl IntoView {
    let Ctl {
        id,
        operator,
        me,
        inc,
        now,
        busy,
        set_incident,
        stop_open,
        add_open,
        ..
    } = ctl;
    let patch = move |what: &'static str, body: IncidentPatch| ctl.patch.run((what, body));
    move || {
        inc.get().map(|i| {
            let triggered = i.triggered_at;
            let ended = i.resolved_at;
            let mine = me.is_some() && i.commander_id == me;
            let has_commander = i.commander_id.is_some();
            let escalation_live = i.status == IncidentStatus::Triggered && i.next_escalation_at.is_some();
            let esc = i.clone();
            view! {
                <section class="card incident-facts">
                    <h2>"Details"</h2>
                    <dl class="facts">
                        <dt>"Commander"</dt>
                        <dd data-testid="incident-commander">
                            {match i.commander.clone() {
                                Some(c) => view! { <strong>{c}</strong> }.into_any(),
                                None => view! { <span class="warn-text">"nobody yet"</span> }.into_any(),
                            }}
                            {(operator && me.is_some() && !mine).then(|| view! {
                                " "<button class="btn btn-small" data-testid="take-command" disabled=move || busy.get().is_some()
                                    on:click=move |_| patch("command", IncidentPatch { commander_id: me, ..empty_patch() })>"I'll command"</button>
                            })}
                            {(operator && has_commander && mine).then(|| view! {
                                " "<button class="btn btn-small btn-ghost" data-testid="drop-command" disabled=move || busy.get().is_some()
                                    on:click=move |_| patch("command", IncidentPatch { commander_id: Some(0), ..empty_patch() })>"Step down"</button>
                            })}
                        </dd>
                        <dt>"Opened"</dt>
                        <dd><LiveTime at=triggered now/>" · "{source_text(&i.source)}
                            {(i.source == "manual").then(|| format!(" ({})", i.created_by))}</dd>
                        <dt>"Duration"</dt>
                        <dd class="num-tabular" data-testid="incident-duration">{move || {
                            let end = ended.unwrap_or_else(|| now.get());
                            let d = human_secs((end - triggered).num_seconds());
                            if ended.is_some() { format!("{d} (resolved)") } else { format!("{d} and counting") }
                        }}</dd>
                        {i.acknowledged_at.map(|at| view! {
                            <dt>"Acknowledged"</dt>
                            <dd><LiveTime at now/>{i.acknowledged_by.clone().map(|b| format!(" by {b}"))}</dd>
                        })}
                        <dt>"Escalation"</dt>
                        <dd data-testid="incident-escalation">
                            <EscalationText inc=esc now/>
                            {(operator && escalation_live).then(|| view! {
                                " "<button class="btn btn-small btn-ghost btn-danger" data-testid="stop-escalation"
                                    on:click=move |_| stop_open.set(true)>"Stop…"</button>
                            })}
                        </dd>
                    </dl>
                    <h3>"Services"</h3>
                    {if i.services.is_empty() {
                        view! { <p class="muted small">"No service named yet."</p> }.into_any()
                    } else {
                        view! {
                            <ul class="plain-list incident-services" data-testid="incident-services">
                                {i.services.iter().map(|s| view! {
                                    <li>
                                        <a href=format!("/services/{}", s.service_id)>{s.name.clone()}</a>" "
                                        <span class=format!("tag role-{}", s.role) title=role_help(&s.role)>{s.role.clone()}</span>
                                    </li>
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                    {operator.then(|| view! { <AddService id open=add_open known=i.services.iter().map(|s| s.service_id).collect() on_done=set_incident/> })}
                </section>
            }
        })
    }
}

/// The SLA timers, counting live.
#[component]
fn Sla(ctl: Ctl) -> impl IntoView {
    let Ctl { inc, now, .. } = ctl;
    move || {
        inc.get().map(|i| {
            let timers = i.sla.clone();
            view! {
                <section class="card incident-sla">
                    <h2>"SLA"</h2>
                    {if timers.is_empty() {
                        view! { <p class="muted small">"No SLA targets for "{i.severity.as_str()}"."</p> }.into_any()
                    } else {
                        view! {
                            <ul class="sla-list">
                                {timers.into_iter().map(|t| {
                                    let inc = i.clone();
                                    let m = t.milestone.clone();
                                    let look = move || sla_look(&t, &inc, now.get());
                                    let l2 = look.clone();
                                    let l3 = look.clone();
                                    let l4 = look.clone();
                                    view! {
                                        <li class="sla-row" data-testid=format!("sla-{m}") data-state=move || look().state>
                                            <span class="sla-name">{milestone_label(&m)}</span>
                                            <span class=move || format!("pill pill-{}", l2().kind)>
                                                <span aria-hidden="true">{move || l3().icon}</span>" "{move || l4().text}
                                            </span>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }}
                </section>
            }
        })
    }
}

/// The summary, editable by operators.
#[component]
fn Summary(ctl: Ctl) -> impl IntoView {
    let Ctl {
        operator,
        inc,
        busy,
        editing,
        summary_text,
        ..
    } = ctl;
    let patch = move |what: &'static str, body: IncidentPatch| ctl.patch.run((what, body));
    move || {
        inc.get().map(|i| {
            let text = i.summary.clone();
            let t2 = text.clone();
            view! {
                <section class="card incident-summary">
                    <div class="card-head">
                        <h2>"Summary"</h2>
                        <span class="spacer"></span>
                        {(operator && !editing.get()).then(|| view! {
                            <button class="btn btn-small btn-ghost" data-testid="edit-summary"
                                on:click=move |_| { summary_text.set(t2.clone()); editing.set(true); }>"Edit"</button>
                        })}
                    </div>
                    {move || if editing.get() {
                        view! {
                            <textarea rows="4" data-testid="summary-input" prop:value=move || summary_text.get()
                                on:input=move |e| summary_text.set(event_target_value(&e))></textarea>
                            <div class="btn-row section-actions">
                                <button class="btn btn-primary btn-small" data-testid="save-summary" disabled=move || busy.get().is_some()
                                    on:click=move |_| { editing.set(false); patch("summary", IncidentPatch { summary: Some(summary_text.get_untracked().trim().to_string()), ..empty_patch() }); }>"Save"</button>
                                <button class="btn btn-small" on:click=move |_| editing.set(false)>"Cancel"</button>
                            </div>
                        }.into_any()
                    } else if text.trim().is_empty() {
                        view! { <p class="muted">"No summary yet: what users see, since when, what is known."</p> }.into_any()
                    } else {
                        view! { <p class="pre-line wrap-anywhere summary-text">{text.clone()}</p> }.into_any()
                    }}
                </section>
            }
        })
    }
}

/// The dialog of resolve, reopen and post-mortem done, with a note.
#[component]
fn ActDialog(ctl: Ctl) -> impl IntoView {
    let Ctl {
        busy,
        dialog,
        dialog_note,
        ..
    } = ctl;
    let act = move |path: &'static str, note: String| ctl.act.run((path, note));
    view! {
    <Show when=move || dialog.get().is_some()>
        {move || dialog.get().map(|a| view! {
            <div class="modal-backdrop">
                <div class="modal incident-dialog" role="dialog" aria-modal="true" data-testid="act-dialog"
                    on:keydown=move |e| if e.key() == "Escape" { dialog.set(None) }>
                    <h2>{a.title}</h2>
                    <p>{a.message}</p>
                    <label>{a.note_label}
                        <textarea rows="3" data-testid="act-note" prop:value=move || dialog_note.get()
                            on:input=move |e| dialog_note.set(event_target_value(&e))></textarea>
                    </label>
                    <div class="modal-actions">
                        <button class="btn" on:click=move |_| dialog.set(None)>"Cancel"</button>
                        <button class="btn btn-primary" data-testid="act-confirm" disabled=move || busy.get().is_some()
                            on:click=move |_| {
                                dialog.set(None);
                                act(a.path, dialog_note.get_untracked().trim().to_string());
                            }>{a.confirm}</button>
                    </div>
                </div>
            </div>
        })}
    </Show>
    }
}

/// Changing the severity, with a reason.
#[component]
fn SeverityDialog(ctl: Ctl) -> impl IntoView {
    let Ctl {
        inc,
        sev_open,
        sev_new,
        sev_reason,
        ..
    } = ctl;
    let patch = move |what: &'static str, body: IncidentPatch| ctl.patch.run((what, body));
    view! {
    <Show when=move || sev_open.get()>
        <div class="modal-backdrop">
            <div class="modal incident-dialog" role="dialog" aria-modal="true" data-testid="severity-dialog"
                on:keydown=move |e| if e.key() == "Escape" { sev_open.set(false) }>
                <h2>"Change severity"</h2>
                <p class="muted">"The new severity's SLA targets and notification channels apply from now on."</p>
                <div class="form-stack">
                    <label>"Severity"
                        <select data-testid="severity-select"
                            on:change=move |e| if let Some(s) = Severity::ALL.into_iter().find(|s| s.as_str() == event_target_value(&e)) { sev_new.set(s) }>
                            {Severity::ALL.into_iter().map(|s| view! {
                                <option value=s.as_str() prop:selected=move || sev_new.get() == s>{format!("{} · {}", s.as_str(), s.meaning())}</option>
                            }).collect_view()}
                        </select>
                    </label>
                    <label>"Reason"
                        <input data-testid="severity-reason" placeholder="Why (kept on the timeline)" maxlength="500"
                            prop:value=move || sev_reason.get() on:input=move |e| sev_reason.set(event_target_value(&e))/>
                    </label>
                </div>
                <div class="modal-actions">
                    <button class="btn" on:click=move |_| sev_open.set(false)>"Cancel"</button>
                    <button class="btn btn-primary" data-testid="severity-confirm"
                        disabled=move || sev_reason.with(|r| r.trim().is_empty()) || inc.with(|i| i.as_ref().map(|i| i.severity)) == Some(sev_new.get())
                        on:click=move |_| {
                            sev_open.set(false);
                            patch("severity", IncidentPatch { severity: Some(sev_new.get_untracked()), reason: sev_reason.get_untracked().trim().to_string(), ..empty_patch() });
                        }>"Change severity"</button>
                </div>
            </div>
        </div>
    </Show>
    }
}

/// Stopping escalation, after asking.
#[component]
fn StopEscalation(ctl: Ctl) -> impl IntoView {
    let Ctl { stop_open, .. } = ctl;
    let patch = move |what: &'static str, body: IncidentPatch| ctl.patch.run((what, body));
    view! {
    <Confirm open=stop_open
        title=Signal::derive(|| "Stop escalation?".to_string())
        message=Signal::derive(|| "Nobody further will be notified about this incident. Acknowledging it stops escalation too, and says somebody is on it.".to_string())
        confirm_label="Stop escalation"
        on_confirm=Callback::new(move |_| patch("escalation", IncidentPatch { escalation_policy_id: Some(0), ..empty_patch() }))/>
    }
}

/// The runs started for the incident.
#[component]
fn LinkedRuns(
    runs: Memo<Vec<LinkedRun>>,
    now: RwSignal<DateTime<Utc>>,
    operator: bool,
) -> impl IntoView {
    view! {
    <section class="card incident-runs-card">
        <div class="card-head">
            <h2>"Runs"</h2>
            <span class="spacer"></span>
            {operator.then(|| view! { <a class="btn btn-small" href="/runbooks" data-testid="run-runbook">"▶ Run a runbook"</a> })}
        </div>
        {move || {
            let v = runs.get();
            if v.is_empty() {
                view! { <p class="muted small">"No runbook has run for this incident."</p> }.into_any()
            } else {
                view! {
                    <ul class="plain-list linked-runs" data-testid="incident-runs">
                        {v.into_iter().map(|r| view! {
                            <li>
                                <RunStatusPill status=r.status/>" "
                                <a href=format!("/runs/{}", r.id)>{r.runbook.clone()}</a>
                                <div class="muted small">"#"{r.id}" · "{r.requested_by.clone()}" · "<LiveTime at=r.created_at now/></div>
                            </li>
                        }).collect_view()}
                    </ul>
                }.into_any()
            }
        }}
    </section>
    }
}

/// Where the post-mortem stands, with links to it.
#[component]
fn PostmortemCard(id: i64, inc: Memo<Option<Incident>>) -> impl IntoView {
    view! {
    <section class="card incident-pm-card">
        <h2>"Post-mortem"</h2>
        <p class="muted small">{move || inc.with(|i| match i.as_ref().map(|i| i.status) {
            Some(IncidentStatus::PostmortemDone) => "Written and done.",
            Some(IncidentStatus::Resolved) => "Resolved: time to write down what happened and what to change.",
            _ => "Written once the incident is over; notes can start any time.",
        })}</p>
        <div class="btn-row">
            <a class="btn btn-small" data-testid="postmortem-link" href=format!("/incidents/{id}/postmortem")>"▤ Open the post-mortem"</a>
            <a class="btn btn-small btn-ghost" href=api::incidents::postmortem_markdown_url(id) download="">"Markdown"</a>
        </div>
    </section>
    }
}

fn role_help(role: &str) -> &'static str {
    match role {
        "root" => "The detected root cause",
        "symptom" => "Impacted by the root cause",
        _ => "Affected",
    }
}

#[component]
fn EscalationText(inc: Incident, now: RwSignal<DateTime<Utc>>) -> impl IntoView {
    let policy = inc.escalation_policy.clone();
    let Some(policy) = policy else {
        return view! { <span class="muted">"none (no escalation policy)"</span> }.into_any();
    };
    let stopped = if inc.acknowledged_at.is_some() {
        Some("acknowledged".to_string())
    } else if !inc.status.is_open() {
        Some(inc.status.label().to_lowercase())
    } else {
        None
    };
    let level = inc.escalation_level + 1;
    let next = inc.next_escalation_at;
    view! {
        <span class="muted">{policy}" · "</span>
        {match (stopped, next) {
            (Some(why), _) => view! { <span data-state="stopped">"stopped: "{why}</span> }.into_any(),
            (None, Some(at)) => view! {
                <span class="warn-text" data-state="next">{move || {
                    let left = (at - now.get()).num_seconds();
                    if left > 0 {
                        format!("next: level {level} in {}", clock(left))
                    } else {
                        format!("level {level} due now")
                    }
                }}</span>
            }.into_any(),
            (None, None) => view! { <span class="problem-text" data-state="exhausted">"every level notified, nobody acknowledged"</span> }.into_any(),
        }}
    }
    .into_any()
}

/// Icon of a timeline event kind.
fn kind_icon(kind: &str) -> &'static str {
    match kind {
        "detected" => "◎",
        "created" => "✚",
        "notification" => "✉",
        "acknowledged" => "◉",
        "diagnosed" => "◈",
        "mitigated" => "◐",
        "resolved" => "✓",
        "reopened" => "↺",
        "postmortem" => "▤",
        "note" => "✎",
        "log" => "≡",
        "severity" => "⇅",
        "status" => "→",
        "commander" => "★",
        "service" => "▦",
        "escalated" => "⇡",
        "escalation_exhausted" => "⊘",
        "sla_breach" => "⚠",
        "recovered" => "♥",
        "alert" => "⚑",
        "run" => "▶",
        "action" => "⚙",
        _ => "•",
    }
}

/// Colour family of a kind (the dot and icon).
fn kind_tone(kind: &str) -> &'static str {
    match kind {
        "detected" | "sla_breach" | "escalation_exhausted" | "alert" => "bad",
        "escalated" | "severity" | "reopened" => "warn",
        "resolved" | "recovered" | "mitigated" | "postmortem" => "good",
        "acknowledged" | "diagnosed" | "commander" | "run" | "action" => "info",
        _ => "plain",
    }
}

#[component]
fn IncidentTimeline(
    events: Memo<Vec<TimelineEvent>>,
    now: RwSignal<DateTime<Utc>>,
) -> impl IntoView {
    view! {
        <Show when=move || events.with(|e| !e.is_empty())
            fallback=|| view! { <p class="muted" data-testid="incident-timeline">"Nothing recorded yet."</p> }>
            <ol class="itl" data-testid="incident-timeline">
                <For each=move || events.get() key=|e| e.id children=move |e| {
                    let kind = e.kind.clone();
                    let is_log = kind == "log";
                    view! {
                        <li class=format!("itl-event itl-{}", kind_tone(&kind)) data-testid="timeline-event" data-kind=kind.clone()>
                            <span class="itl-icon" aria-hidden="true">{kind_icon(&kind)}</span>
                            <div class="itl-body">
                                <div class="itl-head">
                                    <span class="itl-kind">{kind.replace('_', " ")}</span>
                                    {e.actor.clone().map(|a| view! { <strong class="itl-actor">{a}</strong> })}
                                    <span class="spacer"></span>
                                    <span class="muted small"><LiveTime at=e.at now/></span>
                                </div>
                                {if is_log {
                                    view! { <pre class="logs logs-short itl-log" tabindex="0">{e.message.clone()}</pre> }.into_any()
                                } else {
                                    view! { <p class="itl-message pre-line wrap-anywhere">{e.message.clone()}</p> }.into_any()
                                }}
                            </div>
                        </li>
                    }
                }/>
            </ol>
        </Show>
    }
}

#[component]
fn NoteBox(id: i64, on_done: Callback<()>) -> impl IntoView {
    let text = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let send = move || {
        let t = text.get_untracked().trim().to_string();
        if t.is_empty() || busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        leptos::task::spawn_local(async move {
            let r = api::incidents::add_note(id, &NewNote { text: t }).await;
            busy.try_set(false);
            match r {
                Ok(()) => {
                    text.try_set(String::new());
                    on_done.run(());
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <div class="note-box">
            <textarea rows="2" aria-label="Add a note" data-testid="note-input" placeholder="Add a note: what you see, what you try (Ctrl+Enter adds it)"
                prop:value=move || text.get() on:input=move |e| text.set(event_target_value(&e))
                on:keydown=move |e| if e.key() == "Enter" && (e.ctrl_key() || e.meta_key()) { e.prevent_default(); send() }></textarea>
            <button class="btn btn-primary" data-testid="add-note" disabled=move || busy.get() || text.with(|t| t.trim().is_empty())
                on:click=move |_| send()>{move || if busy.get() { "Adding…" } else { "Add note" }}</button>
        </div>
        {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
    }
}

#[component]
fn LogExcerpt(id: i64, services: Memo<Vec<(i64, String)>>, on_done: Callback<()>) -> impl IntoView {
    let chosen = RwSignal::new(None::<i64>);
    let lines = RwSignal::new(50u32);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let picked = move || {
        chosen
            .get()
            .filter(|c| services.with(|s| s.iter().any(|(id, _)| id == c)))
            .or_else(|| services.with(|s| s.first().map(|(id, _)| *id)))
    };
    let send = move || {
        let Some(service_id) = picked() else { return };
        busy.set(true);
        error.set(None);
        let body = LogExcerptRequest {
            service_id,
            lines: lines.get_untracked().clamp(1, 1000),
        };
        leptos::task::spawn_local(async move {
            let r = api::incidents::add_log_excerpt(id, &body).await;
            busy.try_set(false);
            match r {
                Ok(()) => on_done.run(()),
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <details class="log-excerpt">
            <summary>"Add log excerpt"</summary>
            {move || if services.with(Vec::is_empty) {
                view! { <p class="muted small">"Name a service of this incident first (Details → Add service): its containers' last log lines go onto the timeline."</p> }.into_any()
            } else {
                view! {
                    <div class="log-excerpt-form">
                        <label>"Service"
                            <select data-testid="excerpt-service" on:change=move |e| chosen.set(event_target_value(&e).parse().ok())>
                                {services.get().into_iter().map(|(sid, name)| view! {
                                    <option value=sid.to_string() prop:selected=move || picked() == Some(sid)>{name}</option>
                                }).collect_view()}
                            </select>
                        </label>
                        <label>"Last lines"
                            <input type="number" min="1" max="1000" data-testid="excerpt-lines" prop:value=move || lines.get().to_string()
                                on:input=move |e| { if let Ok(n) = event_target_value(&e).parse::<u32>() { lines.set(n) } }/>
                        </label>
                        <button class="btn" data-testid="add-log-excerpt" disabled=move || busy.get() on:click=move |_| send()>
                            {move || if busy.get() { "Fetching…" } else { "≡ Add to timeline" }}
                        </button>
                    </div>
                }.into_any()
            }}
            {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
        </details>
    }
}

#[component]
fn AddService(
    id: i64,
    open: RwSignal<bool>,
    known: Vec<i64>,
    on_done: Callback<Incident>,
) -> impl IntoView {
    view! {
        <div class="add-service">
            <Show when=move || open.get() fallback=move || view! {
                <button class="link-button small" data-testid="add-service" on:click=move |_| open.set(true)>"+ Add service"</button>
            }>
                <AddServiceForm id known=known.clone() open on_done/>
            </Show>
        </div>
    }
}

#[component]
fn AddServiceForm(
    id: i64,
    known: Vec<i64>,
    open: RwSignal<bool>,
    on_done: Callback<Incident>,
) -> impl IntoView {
    let services = LocalResource::new(|| api::services::list());
    let chosen = RwSignal::new(None::<i64>);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let add = move || {
        let Some(service_id) = chosen.get_untracked() else {
            return;
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            let r = api::incidents::add_service(id, &AddIncidentService { service_id }).await;
            busy.try_set(false);
            match r {
                Ok(i) => {
                    open.try_set(false);
                    on_done.run(i);
                }
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    view! {
        <div class="inline-add">
            <select aria-label="Service to add" data-testid="add-service-select"
                on:change=move |e| chosen.set(event_target_value(&e).parse().ok())>
                <option value="">"Choose a service…"</option>
                {move || services.get().and_then(Result::ok).map(|v| {
                    let mut v: Vec<(i64, String)> = v.into_iter().map(|o| (o.service.id, o.service.name)).filter(|(sid, _)| !known.contains(sid)).collect();
                    v.sort_by(|a, b| a.1.cmp(&b.1));
                    v.into_iter().map(|(sid, name)| view! { <option value=sid.to_string()>{name}</option> }).collect_view()
                })}
            </select>
            <button class="btn btn-small btn-primary" data-testid="add-service-confirm"
                disabled=move || busy.get() || chosen.get().is_none() on:click=move |_| add()>"Add"</button>
            <button class="btn btn-small btn-ghost" on:click=move |_| open.set(false)>"Cancel"</button>
        </div>
        {move || error.get().map(|m| view! { <p class="error-text small">{m}</p> })}
    }
}

fn notification_look(status: &str) -> (&'static str, &'static str) {
    match status {
        "sent" => ("ok", "✓"),
        "pending" => ("degraded", "◷"),
        "failed" => ("outage", "✕"),
        "cancelled" => ("unknown", "■"),
        _ => ("unknown", "?"),
    }
}

#[component]
fn NotificationTable(items: Memo<Vec<Notification>>) -> impl IntoView {
    move || {
        let mut v = items.get();
        if v.is_empty() {
            return view! { <p class="muted small" data-testid="incident-notifications">"Nobody has been notified about this incident (no escalation policy, or no channel for its severity)."</p> }.into_any();
        }
        v.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        view! {
            <div class="table-wrap">
                <table class="table notifications-table" data-testid="incident-notifications">
                    <thead><tr>
                        <th>"Channel"</th><th>"Person"</th><th class="num">"Level"</th><th>"Status"</th>
                        <th class="num">"Attempts"</th><th>"Error"</th><th>"When"</th>
                    </tr></thead>
                    <tbody>
                        {v.into_iter().map(|n| {
                            let (kind, icon) = notification_look(&n.status);
                            view! {
                                <tr data-status=n.status.clone()>
                                    <td class="nowrap">{n.channel.clone()}<div class="muted small">{n.channel_kind.clone()}</div></td>
                                    <td>{n.person.clone().unwrap_or_else(|| "—".into())}<div class="muted small wrap-anywhere">{n.address.clone()}</div></td>
                                    <td class="num">{n.level.map(|l| (l + 1).to_string()).unwrap_or_else(|| "—".into())}</td>
                                    <td><span class=format!("pill pill-{kind}")><span aria-hidden="true">{icon}</span>" "{n.status.clone()}</span></td>
                                    <td class="num">{n.attempts}</td>
                                    <td class="cell-error"><span class="clamp wrap-anywhere" title=n.last_error.clone().unwrap_or_default()>{n.last_error.clone().unwrap_or_default()}</span></td>
                                    <td class="nowrap"><crate::time::RelTime at=Some(n.sent_at.unwrap_or(n.created_at))/></td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        }
        .into_any()
    }
}
