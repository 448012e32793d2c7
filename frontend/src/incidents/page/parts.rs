//! The parts of the incident page around its timeline: the header with the
//! actions, details, SLA timers, summary, the actions' dialogs, linked runs and
//! the post-mortem card. They share the page's [`Ctl`].

use super::*;

/// The incident's severity, state, title and the actions its state allows.
#[component]
pub(super) fn Header(ctl: Ctl) -> impl IntoView {
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
pub(super) fn Recovered(ctl: Ctl) -> impl IntoView {
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
pub(super) fn Details(ctl: Ctl) -> impl IntoView {
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
pub(super) fn Sla(ctl: Ctl) -> impl IntoView {
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
pub(super) fn Summary(ctl: Ctl) -> impl IntoView {
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
pub(super) fn ActDialog(ctl: Ctl) -> impl IntoView {
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
pub(super) fn SeverityDialog(ctl: Ctl) -> impl IntoView {
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
pub(super) fn StopEscalation(ctl: Ctl) -> impl IntoView {
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
pub(super) fn LinkedRuns(
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

/// The runbooks bound to this incident's alert (`runbooks::bindings` on
/// the server): suggested ones start with one click, parameters filled in
/// from the alert; automatic ones say what the system did. Reloaded with
/// the incident's runs (a started run changes them).
#[component]
pub(super) fn BoundRunbooks(id: i64, runs: Memo<Vec<LinkedRun>>, operator: bool) -> impl IntoView {
    let list = RwSignal::new(None::<Result<Vec<SuggestedRunbook>, String>>);
    Effect::new(move |_| {
        runs.track();
        leptos::task::spawn_local(async move {
            let r = api::incidents::runbooks(id).await.map_err(|e| e.message);
            list.try_set(Some(r));
        });
    });
    let busy = RwSignal::new(None::<i64>);
    let error = RwSignal::new(None::<String>);
    let navigate = leptos_router::hooks::use_navigate();
    let start = move |s: SuggestedRunbook| {
        busy.set(Some(s.binding_id));
        error.set(None);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let body = serde_json::json!({
                "params": s.params,
                "reason": format!("suggested by binding #{} for incident #{id}", s.binding_id),
                "incident": format!("#{id}"),
            });
            match api::runbooks::start(s.runbook_id, &body).await {
                Ok(run) => navigate(&format!("/runs/{}", run.summary.id), Default::default()),
                Err(e) => {
                    busy.try_set(None);
                    error.try_set(Some(e.message));
                }
            }
        });
    };
    let params_text = |p: &std::collections::BTreeMap<String, serde_json::Value>| {
        p.iter()
            .map(|(k, v)| match v {
                serde_json::Value::String(s) => format!("{k}={s}"),
                other => format!("{k}={other}"),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    view! {
    <section class="card incident-bound-card" data-testid="bound-runbooks">
        <h2>"Runbooks for this alert"</h2>
        {move || error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
        {move || { let start = start.clone(); match list.get() {
            None => view! { <p class="muted small">"Loading…"</p> }.into_any(),
            Some(Err(m)) => view! { <p class="muted small" role="alert">"Cannot list them: "{m}</p> }.into_any(),
            Some(Ok(v)) if v.is_empty() => view! {
                <p class="muted small">"No runbook is bound to this alert."</p>
            }.into_any(),
            Some(Ok(v)) => view! {
                <ul class="plain-list bound-runbooks">
                    {v.into_iter().map(|s| {
                        let automatic = s.mode == BindingMode::Automatic;
                        let params = params_text(&s.params);
                        let fired = s.fired.clone();
                        let binding = s.binding_id;
                        let item = s.clone();
                        let start = start.clone();
                        view! {
                        <li data-testid=format!("bound-{}", s.binding_id)>
                            <div class="row-line">
                                <span class=if automatic { "pill pill-maintenance" } else { "pill pill-unknown" }>
                                    {if automatic { "automatic" } else { "suggested" }}
                                </span>" "
                                <strong>{s.title.clone()}</strong>
                            </div>
                            <div class="muted small">{s.because.clone()}{(!params.is_empty()).then(|| format!(" · {params}"))}</div>
                            {fired.map(|f| view! {
                                <div class="small">
                                    {match f.run_id {
                                        Some(r) => view! { <a href=format!("/runs/{r}")>{format!("run #{r}")}</a>" " }.into_any(),
                                        None => view! { <span class="muted">{f.outcome.clone()}": "</span> }.into_any(),
                                    }}
                                    <span class="muted">{f.detail.clone()}</span>
                                </div>
                            })}
                            {(operator && !automatic).then(|| view! {
                                <button class="btn btn-small" data-testid=format!("start-bound-{binding}")
                                    disabled=move || busy.get().is_some()
                                    on:click=move |_| start(item.clone())>
                                    {move || if busy.get() == Some(binding) { "Starting…" } else { "▶ Start" }}
                                </button>
                            })}
                        </li>
                        }
                    }).collect_view()}
                </ul>
            }.into_any(),
        }}}
    </section>
    }
}

/// Where the post-mortem stands, with links to it.
#[component]
pub(super) fn PostmortemCard(id: i64, inc: Memo<Option<Incident>>) -> impl IntoView {
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

pub(super) fn role_help(role: &str) -> &'static str {
    match role {
        "root" => "The detected root cause",
        "symptom" => "Impacted by the root cause",
        _ => "Affected",
    }
}

#[component]
pub(super) fn EscalationText(inc: Incident, now: RwSignal<DateTime<Utc>>) -> impl IntoView {
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
