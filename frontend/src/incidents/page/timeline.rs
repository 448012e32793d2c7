//! The incident's timeline and what operators add to it (notes, log
//! excerpts, services), and the notifications sent.

use super::*;

/// Icon of a timeline event kind.
pub(super) fn kind_icon(kind: &str) -> &'static str {
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
pub(super) fn kind_tone(kind: &str) -> &'static str {
    match kind {
        "detected" | "sla_breach" | "escalation_exhausted" | "alert" => "bad",
        "escalated" | "severity" | "reopened" => "warn",
        "resolved" | "recovered" | "mitigated" | "postmortem" => "good",
        "acknowledged" | "diagnosed" | "commander" | "run" | "action" => "info",
        _ => "plain",
    }
}

#[component]
pub(super) fn IncidentTimeline(
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
pub(super) fn NoteBox(id: i64, on_done: Callback<()>) -> impl IntoView {
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
pub(super) fn LogExcerpt(
    id: i64,
    services: Memo<Vec<(i64, String)>>,
    on_done: Callback<()>,
) -> impl IntoView {
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
pub(super) fn AddService(
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
pub(super) fn AddServiceForm(
    id: i64,
    known: Vec<i64>,
    open: RwSignal<bool>,
    on_done: Callback<Incident>,
) -> impl IntoView {
    let services = LocalResource::new(api::services::list);
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

pub(super) fn notification_look(status: &str) -> (&'static str, &'static str) {
    match status {
        "sent" => ("ok", "✓"),
        "pending" => ("degraded", "◷"),
        "failed" => ("outage", "✕"),
        "cancelled" => ("unknown", "■"),
        _ => ("unknown", "?"),
    }
}

#[component]
pub(super) fn NotificationTable(items: Memo<Vec<Notification>>) -> impl IntoView {
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
