//! One maintenance period (`/maintenance/:id`): status, scope, services,
//! reason, who and when, the error of a failed enable, the enable and
//! disable runs, End now / Extend while open, the suppressed alarms and the
//! timeline. Polled every 3 s while the period is open.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;
use opsdeck_wire::{MaintenancePeriod, MaintenancePeriodDetail, Role, TimelineEvent};

use super::{
    can_act, ends_in, local_text, scope_text, EndDialog, PeriodActions, PeriodControls,
    PeriodStatusPill, When,
};
use crate::api::{self, ApiError};

use crate::live::use_interval;
use crate::session::current_role;
use crate::time::{use_now, LiveTime, RelTime};
use crate::ui::{Detail, DetailLoadError, ErrorState, Loading};

#[component]
pub fn PeriodPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())));
    move || {
        match id.get() {
        Some(id) => view! { <PeriodView id/> }.into_any(),
        None => view! {
            <nav class="crumbs"><a href="/maintenance">"Maintenance"</a></nav>
            <h1>"Maintenance"</h1>
            <ErrorState title="No such maintenance period" message="This address names no period.".to_string()/>
        }
        .into_any(),
    }
    }
}

/// Icon and tone (the incident timeline's classes) of a timeline kind.
fn kind_look(kind: &str) -> (&'static str, &'static str) {
    match kind {
        "requested" => ("◷", "plain"),
        "enabling" => ("…", "info"),
        "actuation" | "action" => ("⚙", "info"),
        "active" => ("⚒", "info"),
        "suppressed" => ("⊘", "warn"),
        "extended" => ("⇥", "info"),
        "disabling" => ("↺", "info"),
        "restored" => ("✓", "good"),
        "ended" => ("■", "good"),
        "failed" | "error" => ("✕", "bad"),
        "rollback" | "rolled_back" => ("↶", "warn"),
        "cancelled" => ("■", "plain"),
        "note" => ("✎", "plain"),
        "run" => ("▶", "info"),
        _ => ("•", "plain"),
    }
}

fn source_text(source: &str) -> &str {
    match source {
        "health" => "health check",
        "alertmanager" => "Alertmanager",
        "escalation" => "escalation",
        other => other,
    }
}

#[component]
fn PeriodView(id: i64) -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let detail = Detail::<MaintenancePeriodDetail>::new();
    let Detail { state, stale } = detail;
    let load = move || {
        leptos::task::spawn_local(async move {
            detail.show(api::maintenance::period(id).await, true);
        });
    };
    load();
    // Follow it while it is open.
    use_interval(Duration::from_secs(3), move || {
        let open = state
            .try_with_untracked(|s| match s {
                Some(Ok(d)) => d.period.status.is_open(),
                _ => false,
            })
            .unwrap_or(false);
        if open {
            load();
        }
    });
    let now = use_now();

    let period = Memo::new(move |_| {
        state.with(|s| match s {
            Some(Ok(d)) => Some(d.period.clone()),
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
        let mut v: Vec<TimelineEvent> = state.with(|s| match s {
            Some(Ok(d)) => d.timeline.clone(),
            _ => Vec::new(),
        });
        v.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
        v
    });
    let suppressions = Memo::new(move |_| {
        state.with(|s| match s {
            Some(Ok(d)) => d.suppressions.clone(),
            _ => Vec::new(),
        })
    });
    let notice = RwSignal::new(None::<String>);
    let on_done = Callback::new(move |r: Result<MaintenancePeriod, ApiError>| {
        match r {
            Ok(p) => {
                notice.set(None);
                state.update(|s| {
                    if let Some(Ok(d)) = s {
                        d.period = p;
                    }
                });
            }
            Err(e) => notice.set(Some(e.message)),
        }
        load();
    });
    let ctl = PeriodControls::new(on_done);

    let header = move || {
        period.get().map(|p| {
            let act = operator && can_act(p.status);
            let actions = p.clone();
            view! {
                <nav class="crumbs"><a href="/maintenance">"Maintenance"</a>" / "<span>"#"{p.id}</span></nav>
                <div class="page-head maint-head">
                    <PeriodStatusPill status=p.status testid="period-status"/>
                    <h1 class="wrap-anywhere" data-testid="period-title">{p.title.clone()}</h1>
                    <span class="spacer"></span>
                    {act.then(|| view! { <PeriodActions period=actions ctl/> })}
                </div>
            }
        })
    };

    let details = move || {
        period.get().map(|p| {
            let until = p.ends_at;
            let open = p.status.is_open();
            view! {
                <section class="card maint-facts">
                    <h2>"Details"</h2>
                    <dl class="facts">
                        <dt>"Scope"</dt><dd data-testid="period-scope">{scope_text(&p.scope)}</dd>
                        <dt>"Services"</dt>
                        <dd>{if p.services.is_empty() {
                            view! { <span class="muted">"none resolved yet"</span> }.into_any()
                        } else {
                            view! { <ul class="chips" data-testid="period-services">{p.services.iter().map(|s| view! { <li class="tag">{s.clone()}</li> }).collect_view()}</ul> }.into_any()
                        }}</dd>
                        <dt>"Reason"</dt><dd class="pre-line wrap-anywhere" data-testid="period-reason">{p.reason.clone()}</dd>
                        <dt>"Started by"</dt>
                        <dd><strong>{p.started_by.clone()}</strong>
                            {p.window_id.map(|w| view! { " "<span class="tag" title=format!("Window #{w}")>"window"</span> })}
                        </dd>
                        <dt>"From"</dt><dd title=p.starts_at.format("%Y-%m-%d %H:%M:%S UTC").to_string()>{local_text(p.starts_at)}" "<span class="muted">"("<LiveTime at=p.starts_at now/>")"</span></dd>
                        {p.enabled_at.map(|at| view! { <dt>"In effect"</dt><dd><RelTime at=Some(at)/></dd> })}
                        <dt>"Until"</dt>
                        <dd data-testid="period-until"><When at=until/>
                            {open.then(|| view! { " "<span class="maint-countdown">{move || format!("({})", ends_in(until, now.get()))}</span> })}
                        </dd>
                        {p.ended_at.map(|at| view! {
                            <dt>"Ended"</dt>
                            <dd><RelTime at=Some(at)/>{p.ended_by.clone().map(|b| format!(" by {b}"))}</dd>
                        })}
                        <dt>"Actuation"</dt>
                        <dd>{if p.actuate { "the stack's actuator" } else { "none (marking and suppression only)" }}</dd>
                        <dt>"Runs"</dt>
                        <dd>
                            {match (p.enable_run_id, p.disable_run_id) {
                                (None, None) => view! { <span class="muted">"none"</span> }.into_any(),
                                (en, dis) => view! {
                                    <ul class="plain-list" data-testid="period-runs">
                                        {en.map(|r| view! { <li>"enable: "<a href=format!("/runs/{r}") data-testid="period-enable-run">"#"{r}</a></li> })}
                                        {dis.map(|r| view! { <li>"disable: "<a href=format!("/runs/{r}") data-testid="period-disable-run">"#"{r}</a></li> })}
                                    </ul>
                                }.into_any(),
                            }}
                        </dd>
                    </dl>
                </section>
            }
        })
    };

    let error = move || {
        period.get().and_then(|p| {
            let e = p.error.clone()?;
            Some(view! {
                <div class="state state-error maint-error" role="alert" data-testid="period-error">
                    <span class="state-icon" aria-hidden="true">"⚠"</span>
                    <div>
                        <strong>{if p.status == opsdeck_wire::PeriodStatus::Failed { "Enabling failed and was rolled back" } else { "Something went wrong" }}</strong>
                        <p class="pre-line wrap-anywhere">{e}</p>
                    </div>
                </div>
            })
        })
    };

    move || {
        match phase.get() {
        0 => view! { <Loading rows=6/> }.into_any(),
        2 => view! {
            <DetailLoadError list_href="/maintenance" list_label="Maintenance" heading="Maintenance"
                title="Cannot show this maintenance period" missing="There is no maintenance period with this id."
                error=state.with_untracked(|s| s.as_ref().and_then(|r| r.as_ref().err()).cloned())
                retry=Callback::new(move |_| load())/>
        }
        .into_any(),
        _ => view! {
            {header}
            {move || stale.get().map(|m| view! { <div class="notice notice-error" role="alert">"Showing the last known state: "{m}</div> })}
            {move || notice.get().map(|m| view! {
                <div class="notice notice-error" role="alert" data-testid="period-action-error">
                    <span>{m}</span><span class="spacer"></span>
                    <button class="btn btn-ghost btn-small" aria-label="Dismiss" on:click=move |_| notice.set(None)>"✕"</button>
                </div>
            })}
            {error}
            <div class="incident-grid">
                <div class="incident-main">
                    <section class="card">
                        <div class="card-head">
                            <h2>"Timeline"</h2>
                            <span class="muted small">"newest last"</span>
                        </div>
                        <Show when=move || timeline.with(|e| !e.is_empty())
                            fallback=|| view! { <p class="muted" data-testid="period-timeline">"Nothing recorded yet."</p> }>
                            <ol class="itl" data-testid="period-timeline">
                                <For each=move || timeline.get() key=|e| e.id children=move |e| {
                                    let (icon, tone) = kind_look(&e.kind);
                                    view! {
                                        <li class=format!("itl-event itl-{tone}") data-testid="timeline-event" data-kind=e.kind.clone()>
                                            <span class="itl-icon" aria-hidden="true">{icon}</span>
                                            <div class="itl-body">
                                                <div class="itl-head">
                                                    <span class="itl-kind">{e.kind.replace('_', " ")}</span>
                                                    {e.actor.clone().map(|a| view! { <strong class="itl-actor">{a}</strong> })}
                                                    <span class="spacer"></span>
                                                    <span class="muted small" title=local_text(e.at)><LiveTime at=e.at now/></span>
                                                </div>
                                                <p class="itl-message pre-line wrap-anywhere">{e.message.clone()}</p>
                                            </div>
                                        </li>
                                    }
                                }/>
                            </ol>
                        </Show>
                    </section>
                    <section class="card">
                        <div class="card-head">
                            <h2>"Suppressed alarms"</h2>
                            <span class="count">{move || suppressions.with(Vec::len)}</span>
                        </div>
                        {move || {
                            let v = suppressions.get();
                            if v.is_empty() {
                                return view! {
                                    <p class="muted small" data-testid="period-suppressions" data-count="0">
                                        "Nothing held back: no check failure, alert or escalation came up for these services."
                                    </p>
                                }.into_any();
                            }
                            let count = v.len().to_string();
                            view! {
                                <div class="table-wrap">
                                    <table class="table maint-suppressions" data-testid="period-suppressions" data-count=count>
                                        <thead><tr><th>"Source"</th><th>"Key"</th><th>"Message"</th><th>"At"</th></tr></thead>
                                        <tbody>{v.into_iter().map(|s| view! {
                                            <tr data-source=s.source.clone()>
                                                <td class="nowrap">{source_text(&s.source).to_string()}</td>
                                                <td><code class="wrap-anywhere">{s.key.clone()}</code></td>
                                                <td class="wrap-anywhere">{s.message.clone()}</td>
                                                <td class="nowrap" title=s.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()>{local_text(s.at)}</td>
                                            </tr>
                                        }).collect_view()}</tbody>
                                    </table>
                                </div>
                            }.into_any()
                        }}
                    </section>
                </div>
                <aside class="incident-side">
                    {details}
                </aside>
            </div>
            <EndDialog ctl/>
        }
        .into_any(),
    }
    }
}
