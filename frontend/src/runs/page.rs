//! One run (`/runs/:id`): its header and actions, approvals, steps (with
//! manual steps' instructions) and timeline, live while it runs.

use super::*;
use crate::ui::Detail;

// ---------------------------------------------------------------- one run

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())));
    move || match id.get() {
        Some(id) => view! { <RunView id/> }.into_any(),
        None => view! {
            <nav class="crumbs"><a href="/runs">"Runs"</a></nav>
            <h1>"Run"</h1>
            <ErrorState title="No such run" message="This address names no run.".to_string()/>
        }
        .into_any(),
    }
}

/// The run in an SSE `run` event: the run itself (or wrapped in `run`).
pub(super) fn parse_run(data: &str) -> Option<Run> {
    serde_json::from_str::<Run>(data)
        .ok()
        .or_else(|| serde_json::from_str::<RunUpdate>(data).ok().map(|u| u.run))
}

/// Replaces `{{params.NAME}}` with the run's values (for showing
/// instructions; the server substitutes for real).
pub(super) fn fill_params(text: &str, params: &BTreeMap<String, Value>) -> String {
    let mut out = text.to_string();
    for (k, v) in params {
        let value = value_text(v);
        for pat in [
            format!("{{{{params.{k}}}}}"),
            format!("{{{{ params.{k} }}}}"),
        ] {
            out = out.replace(&pat, &value);
        }
    }
    out
}

#[component]
pub(super) fn RunView(id: i64) -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let detail = Detail::<Run>::new();
    let Detail { state, stale } = detail;
    let load = move || {
        leptos::task::spawn_local(async move {
            detail.show(api::runs::get_one(id).await, false);
        });
    };
    load();
    let run = Memo::new(move |_| state.with(|s| s.as_ref().and_then(|r| r.as_ref().ok()).cloned()));
    let phase = Memo::new(move |_| {
        state.with(|s| match s {
            None => 0,
            Some(Ok(_)) => 1,
            Some(Err(_)) => 2,
        })
    });
    let active =
        Memo::new(move |_| run.with(|r| r.as_ref().is_some_and(|r| r.summary.status.is_active())));
    let set_run = Callback::new(move |r: Run| {
        stale.set(None);
        state.set(Some(Ok(r)));
    });

    // Live: follow the run's events while it is active.
    follow_run(id, active, state, stale, load);

    // A clock for the durations of what is still running.
    let now = RwSignal::new(now_utc());
    use_interval(Duration::from_secs(1), move || {
        if active.get_untracked() {
            now.set(now_utc());
        }
    });

    // Manual steps' instructions live in the definition of the version run.
    let instructions = manual_instructions(run);

    // Actions.
    let busy = RwSignal::new(None::<&'static str>);
    let notice = RwSignal::new(None::<String>);
    let goto = RwSignal::new(None::<i64>);
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(new_id) = goto.get() {
            navigate(&format!("/runs/{new_id}"), NavigateOptions::default());
        }
    });
    let act = move |what: &'static str| {
        busy.set(Some(what));
        notice.set(None);
        leptos::task::spawn_local(async move {
            let r = api::runs::act(id, what).await;
            busy.try_set(None);
            match r {
                Ok(r) if what == "rerun" => {
                    goto.try_set(Some(r.summary.id));
                }
                Ok(r) => {
                    stale.try_set(None);
                    state.try_set(Some(Ok(r)));
                }
                Err(e) => {
                    notice.try_set(Some(e.message));
                }
            }
        });
    };
    let cancel_open = RwSignal::new(false);
    let close_open = RwSignal::new(false);
    let close_note = RwSignal::new(String::new());
    let close_run = move || {
        busy.set(Some("close"));
        notice.set(None);
        let body = CloseRun {
            note: close_note.get_untracked().trim().to_string(),
        };
        leptos::task::spawn_local(async move {
            let r = api::runs::close(id, &body).await;
            busy.try_set(None);
            match r {
                Ok(r) => {
                    close_open.try_set(false);
                    state.try_set(Some(Ok(r)));
                }
                Err(e) => {
                    notice.try_set(Some(e.message));
                }
            }
        });
    };

    let pending = move || {
        run.with(|r| {
            r.as_ref()
                .map(|r| {
                    r.approvals
                        .iter()
                        .filter(|a| a.status == ApprovalStatus::Pending)
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    let step_ids = move || {
        run.with(|r| {
            r.as_ref()
                .map(|r| r.steps.iter().map(|s| s.idx).collect::<Vec<_>>())
                .unwrap_or_default()
        })
    };
    let on_voted = Callback::new(move |_| load());

    move || {
        match phase.get() {
        0 => view! { <Loading rows=6/> }.into_any(),
        2 => {
            let e = state
                .with_untracked(|s| s.as_ref().and_then(|r| r.as_ref().err()).cloned())
                .map(|e| if e.status == 404 { "There is no run with this id.".to_string() } else { e.message })
                .unwrap_or_default();
            view! {
                <nav class="crumbs"><a href="/runs">"Runs"</a></nav>
                <h1>"Run"</h1>
                <ErrorState title="Cannot show this run" message=e retry=Callback::new(move |_| load())/>
            }
            .into_any()
        }
        _ => view! {
            <RunHeader run operator busy now act=Callback::new(act) cancel_open close_open close_note/>
            {move || stale.get().map(|m| view! { <div class="notice notice-error" role="alert">"Showing the last known state: "{m}</div> })}
            {move || notice.get().map(|m| view! {
                <div class="notice notice-error" role="alert" data-testid="run-action-error">
                    <span>{m}</span><span class="spacer"></span>
                    <button class="btn btn-ghost btn-small" aria-label="Dismiss" on:click=move |_| notice.set(None)>"✕"</button>
                </div>
            })}
            <For each=pending key=|a| (a.id, a.votes.len(), a.can_vote, a.binding.clone())
                children=move |a| view! { <ApprovalPanel approval=a testid="approval-panel" on_voted/> }/>
            <section class="card">
                <div class="card-head">
                    <h2>"Steps"</h2>
                    {move || active.get().then(|| view! {
                        <span class="live-state muted"><span class="live-dot" aria-hidden="true"></span>"live"</span>
                    })}
                </div>
                <ol class="run-steps" data-testid="run-steps">
                    <For each=step_ids key=|idx| *idx
                        children=move |idx| view! { <StepRow idx run now operator instructions run_id=id on_run=set_run/> }/>
                </ol>
            </section>
            <DecidedApprovals run/>
            <section class="card">
                <h2>"Timeline"</h2>
                <Timeline run/>
            </section>
            <Confirm open=cancel_open
                title=Signal::derive(move || run.with(|r| r.as_ref().map(|r| format!("Cancel run #{} of {}?", r.summary.id, r.summary.title)).unwrap_or_default()))
                message=Signal::derive(|| "The running step is stopped where it can be; the steps after it do not run. What was done stays done.".to_string())
                confirm_label="Cancel run" on_confirm=Callback::new(move |_| act("cancel"))/>
            <CloseDialog open=close_open note=close_note busy on_close=Callback::new(move |_| close_run())/>
        }
        .into_any(),
    }
    }
}

/// The run's title, state and actions, and its facts.
#[component]
pub(super) fn RunHeader(
    run: Memo<Option<Run>>,
    operator: bool,
    busy: RwSignal<Option<&'static str>>,
    now: RwSignal<DateTime<Utc>>,
    /// `resume`, `rerun`, … (the action's path segment).
    act: Callback<&'static str>,
    cancel_open: RwSignal<bool>,
    close_open: RwSignal<bool>,
    close_note: RwSignal<String>,
) -> impl IntoView {
    move || {
        run.get().map(|r| {
            let s = &r.summary;
            let status = s.status;
            let finished = !status.is_active();
            let closed = r.closed_by.is_some();
            let can_resume = matches!(status, RunStatus::Failed | RunStatus::Interrupted) && !closed;
            let can_close = status == RunStatus::Interrupted && !closed;
            let started = s.started_at;
            let finished_at = s.finished_at;
            view! {
                <nav class="crumbs"><a href="/runs">"Runs"</a>" / "<span>"#"{s.id}</span></nav>
                <div class="page-head">
                    <h1 data-testid="run-title">{s.title.clone()}</h1>
                    <span class="version-badge" title="Runbook version this run uses">"v"{s.version}</span>
                    <RunStatusPill status testid="run-status"/>
                    {r.cancel_requested.then(|| view! { <span class="tag">"cancel requested"</span> })}
                    <Progress done=s.done_steps total=s.total_steps/>
                    <span class="spacer"></span>
                    {operator.then(|| view! {
                        <div class="actions">
                            {status.is_active().then(|| view! {
                                <button class="btn btn-danger" data-testid="cancel-run"
                                    disabled=move || busy.get().is_some() || r.cancel_requested
                                    on:click=move |_| cancel_open.set(true)>"Cancel run…"</button>
                            })}
                            {can_resume.then(|| view! {
                                <button class="btn btn-primary" data-testid="resume-run" disabled=move || busy.get().is_some()
                                    title="Run again from the step that did not finish"
                                    on:click=move |_| act.run("resume")>
                                    {move || if busy.get() == Some("resume") { "Resuming…" } else { "Resume" }}
                                </button>
                            })}
                            {can_close.then(|| view! {
                                <button class="btn" data-testid="close-run" disabled=move || busy.get().is_some()
                                    title="Record it as handled without resuming"
                                    on:click=move |_| { close_note.set(String::new()); close_open.set(true); }>"Close…"</button>
                            })}
                            {finished.then(|| view! {
                                <button class="btn" data-testid="rerun" disabled=move || busy.get().is_some()
                                    title="A new run with the same parameters"
                                    on:click=move |_| act.run("rerun")>
                                    {move || if busy.get() == Some("rerun") { "Starting…" } else { "Re-run" }}
                                </button>
                            })}
                        </div>
                    })}
                </div>
                <div class="card facts-card">
                    <dl class="facts facts-2">
                        <dt>"Runbook"</dt>
                        <dd><a href=format!("/runs?runbook={}", s.runbook_id) title="Runs of this runbook"><code>{s.runbook.clone()}</code></a>" v"{s.version}</dd>
                        <dt>"Target"</dt><dd>{target_text(&s.target)}</dd>
                        <dt>"Requested by"</dt>
                        <dd data-testid="run-requested-by">{s.requested_by.clone()}
                            {s.schedule_id.map(|sid| view! { " "<a class="small" href="/schedules" title=format!("Schedule #{sid}")>"◷ schedule"</a> })}</dd>
                        <dt>"Reason"</dt><dd data-testid="run-reason-text">{if s.reason.is_empty() { "—".to_string() } else { s.reason.clone() }}</dd>
                        <dt>"Created"</dt><dd><RelTime at=Some(s.created_at)/></dd>
                        <dt>"Started"</dt><dd><RelTime at=started/></dd>
                        <dt>"Finished"</dt><dd>{match finished_at {
                            Some(_) => view! { <RelTime at=finished_at/> }.into_any(),
                            None => view! { <span class="muted">"—"</span> }.into_any(),
                        }}</dd>
                        <dt>"Duration"</dt><dd>{move || elapsed(started, finished_at, now.get()).unwrap_or_else(|| "—".into())}</dd>
                        {r.incident.clone().map(|i| view! { <dt>"Incident"</dt><dd>{i}</dd> })}
                        {r.parent_run_id.map(|p| view! { <dt>"Started by run"</dt><dd><a href=format!("/runs/{p}")>"#"{p}</a></dd> })}
                        {r.closed_by.clone().map(|c| view! { <dt>"Closed by"</dt><dd>{c}</dd> })}
                        <dt class="row-start">"Parameters"</dt><dd class="span-3"><ParamChips params=r.params.clone()/></dd>
                    </dl>
                </div>
                {r.error.clone().map(|e| view! {
                    <div class="notice notice-error notice-block" role="alert" data-testid="run-error">
                        <strong>"The run failed"</strong><span class="wrap-anywhere pre-line">{e}</span>
                    </div>
                })}
            }
        })
    }
}

/// The run's decided approvals (none: nothing).
#[component]
pub(super) fn DecidedApprovals(run: Memo<Option<Run>>) -> impl IntoView {
    let decided = move || {
        run.with(|r| {
            r.as_ref()
                .map(|r| {
                    r.approvals
                        .iter()
                        .filter(|a| a.status != ApprovalStatus::Pending)
                        .cloned()
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default()
        })
    };
    move || {
        let d = decided();
        (!d.is_empty()).then(|| view! {
            <section class="card">
                <h2>"Approvals"</h2>
                <ul class="decided-list">{d.into_iter().map(|a| view! {
                    <li data-testid=format!("approval-decided-{}", a.id) data-status=a.status.as_str()>
                        <crate::approvals::ApprovalStatusPill status=a.status/>" "
                        <span>{a.subject.clone()}</span>
                        <span class="muted small">{a.votes.iter().map(|v| format!("{} {}{}", if v.approve { "✓" } else { "✕" }, v.user, if v.reason.is_empty() { String::new() } else { format!(": {}", v.reason) })).collect::<Vec<_>>().join(" · ")}</span>
                    </li>
                }).collect_view()}</ul>
            </section>
        })
    }
}

/// Closing an interrupted run without resuming it, with a note.
#[component]
pub(super) fn CloseDialog(
    open: RwSignal<bool>,
    note: RwSignal<String>,
    busy: RwSignal<Option<&'static str>>,
    on_close: Callback<()>,
) -> impl IntoView {
    view! {
    <Show when=move || open.get()>
        <div class="modal-backdrop">
            <div class="modal" role="dialog" aria-modal="true" data-testid="close-dialog"
                on:keydown=move |e| if e.key() == "Escape" { open.set(false) }>
                <h2>"Close this run?"</h2>
                <p>"The run stays interrupted in the record, marked as handled; it cannot be resumed afterwards."</p>
                <label>"Note"
                    <textarea rows="3" data-testid="close-note" placeholder="What was done by hand, or why it is not resumed"
                        prop:value=move || note.get() on:input=move |e| note.set(event_target_value(&e))></textarea>
                </label>
                <div class="modal-actions">
                    <button class="btn" on:click=move |_| open.set(false)>"Back"</button>
                    <button class="btn btn-primary" data-testid="close-run-confirm" disabled=move || busy.get().is_some()
                        on:click=move |_| on_close.run(())>"Close run"</button>
                </div>
            </div>
        </div>
    </Show>
    }
}

/// Follows the run's events while it is `active` (updating `state`); when
/// the browser gives up on the stream it is reopened after 5 s, 10 s, … up
/// to a minute. `load` fetches the run (after a reconnect: changes may have
/// been missed).
pub(super) fn follow_run(
    id: i64,
    active: Memo<bool>,
    state: RwSignal<Option<Result<Run, ApiError>>>,
    stale: RwSignal<Option<String>>,
    load: impl Fn() + Copy + Send + Sync + 'static,
) {
    let owner = Owner::current();
    let stream = StoredValue::new_local(None::<Stream>);
    let retry = RwSignal::new(0u32);
    let attempts = StoredValue::new(0u32);
    let open_stream = move || {
        let first = Cell::new(true);
        let handler = move |e: StreamEvent| match e {
            StreamEvent::Message { event, data } if event == "run" => {
                if let Some(r) = parse_run(&data) {
                    stale.try_set(None);
                    state.try_set(Some(Ok(r)));
                }
            }
            StreamEvent::Open => {
                attempts.try_set_value(0);
                // A reconnect may have missed changes.
                if !first.replace(false) {
                    load();
                }
            }
            StreamEvent::Broken => {
                let gave_up = stream
                    .try_with_value(|s| s.as_ref().is_none_or(Stream::is_closed))
                    .unwrap_or(false);
                if gave_up {
                    if let Some(Some(s)) = stream.try_update_value(|s| s.take()) {
                        s.close();
                    }
                    load();
                    let n = attempts.try_get_value().unwrap_or(0);
                    attempts.try_set_value(n + 1);
                    set_timeout(
                        move || {
                            retry.try_update(|r| *r = r.wrapping_add(1));
                        },
                        Duration::from_secs((5u64 << n.min(4)).min(60)),
                    );
                }
            }
            StreamEvent::Message { .. } => {}
        };
        let url = api::runs::events_url(id);
        let s = match &owner {
            Some(o) => o.with(|| Stream::open(&url, &["run"], handler)),
            None => Stream::open(&url, &["run"], handler),
        };
        stream.set_value(s);
    };
    Effect::new(move |_| {
        retry.track();
        if active.get() {
            if stream.with_value(|s| s.as_ref().is_none_or(Stream::is_closed)) {
                open_stream();
            }
        } else if let Some(Some(s)) = stream.try_update_value(|s| s.take()) {
            s.close();
        }
    });
}

/// The instructions of the run's manual steps (by step name, parameters
/// filled in), from the definition of the version run.
pub(super) fn manual_instructions(run: Memo<Option<Run>>) -> Memo<BTreeMap<String, String>> {
    let runbook_key = Memo::new(move |_| {
        run.with(|r| {
            r.as_ref()
                .filter(|r| r.steps.iter().any(|s| s.kind == "manual"))
                .map(|r| (r.summary.runbook_id, r.summary.version))
        })
    });
    let definition = LocalResource::new(move || {
        let key = runbook_key.get();
        async move {
            let (rb, version) = key?;
            let versions = api::runbooks::versions(rb).await.ok()?;
            versions.into_iter().find(|v| v.version == version)
        }
    });
    Memo::new(move |_| {
        let mut out = BTreeMap::<String, String>::new();
        let params = run.with(|r| r.as_ref().map(|r| r.params.clone()).unwrap_or_default());
        if let Some(Some(v)) = definition.get() {
            let def = &v.definition;
            for s in def.steps.iter().chain(def.rollback.iter()) {
                if let StepAction::Manual { instructions } = &s.action {
                    out.insert(s.name.clone(), fill_params(instructions, &params));
                }
            }
        }
        out
    })
}

#[component]
pub(super) fn StepRow(
    idx: i32,
    run: Memo<Option<Run>>,
    now: RwSignal<DateTime<Utc>>,
    operator: bool,
    instructions: Memo<BTreeMap<String, String>>,
    run_id: i64,
    on_run: Callback<Run>,
) -> impl IntoView {
    let step = Memo::new(move |_| {
        run.with(|r| {
            r.as_ref()
                .and_then(|r| r.steps.iter().find(|s| s.idx == idx).cloned())
        })
    });
    let first = step.get_untracked();
    let name = first.as_ref().map(|s| s.name.clone()).unwrap_or_default();
    let title = first
        .as_ref()
        .map(|s| {
            if s.title.is_empty() {
                s.name.clone()
            } else {
                s.title.clone()
            }
        })
        .unwrap_or_default();
    let kind = first.as_ref().map(|s| s.kind.clone()).unwrap_or_default();
    let rollback = first.as_ref().is_some_and(|s| s.phase == "rollback");
    let is_manual = kind == "manual";
    let is_approval = kind == "approval";

    let status = Memo::new(move |_| {
        step.with(|s| s.as_ref().map(|s| s.status))
            .unwrap_or(StepStatus::Pending)
    });
    let output =
        Memo::new(move |_| step.with(|s| s.as_ref().map(|s| s.output.clone()).unwrap_or_default()));
    let truncated =
        Memo::new(move |_| step.with(|s| s.as_ref().is_some_and(|s| s.output_truncated)));
    // Viewers do not read the output of logs, exec, database and http steps.
    let hidden = Memo::new(move |_| step.with(|s| s.as_ref().is_some_and(|s| s.output_hidden)));
    let error = Memo::new(move |_| step.with(|s| s.as_ref().and_then(|s| s.error.clone())));
    let note = Memo::new(move |_| step.with(|s| s.as_ref().and_then(|s| s.note.clone())));
    let times = Memo::new(move |_| {
        step.with(|s| {
            s.as_ref()
                .map(|s| (s.started_at, s.finished_at))
                .unwrap_or_default()
        })
    });
    let result = Memo::new(move |_| {
        step.with(|s| {
            s.as_ref().and_then(|s| match &s.result {
                Value::Null => None,
                Value::Object(m) if m.is_empty() => None,
                Value::Array(a) if a.is_empty() => None,
                v => serde_json::to_string_pretty(v).ok(),
            })
        })
    });

    // Follow the output while the reader stays at the bottom.
    let pre = NodeRef::<leptos::html::Pre>::new();
    let stick = StoredValue::new(true);
    Effect::new(move |_| {
        output.track();
        if stick.get_value() {
            request_animation_frame(move || {
                if let Some(el) = pre.get_untracked() {
                    el.set_scroll_top(el.scroll_height());
                }
            });
        }
    });
    let on_scroll = move |_| {
        if let Some(el) = pre.get_untracked() {
            stick.set_value(el.scroll_top() + el.client_height() >= el.scroll_height() - 8);
        }
    };

    let manual_note = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let complete_error = RwSignal::new(None::<String>);
    let complete = move || {
        busy.set(true);
        complete_error.set(None);
        let body = CompleteStep {
            note: manual_note.get_untracked().trim().to_string(),
        };
        leptos::task::spawn_local(async move {
            let r = api::runs::complete_step(run_id, idx, &body).await;
            busy.try_set(false);
            match r {
                Ok(r) => on_run.run(r),
                Err(e) => {
                    complete_error.try_set(Some(e.message));
                }
            }
        });
    };
    let instr_name = name.clone();
    let manual_text = Memo::new(move |_| instructions.with(|m| m.get(&instr_name).cloned()));

    view! {
        <li class="run-step" class:run-step-rollback=rollback data-testid=format!("run-step-{idx}")
            data-status=move || status.get().as_str() data-name=name.clone()>
            <div class="run-step-head">
                <span class="step-num" aria-hidden="true">{idx + 1}"."</span>
                {move || view! { <StepStatusPill status=status.get()/> }}
                <strong class="run-step-title">{title}</strong>
                <code class="muted small">{kind.clone()}</code>
                {rollback.then(|| view! { <span class="tag" title="Runs when a step with on_failure: rollback fails">"rollback"</span> })}
                <span class="spacer"></span>
                <span class="muted small nowrap">{move || {
                    let (start, end) = times.get();
                    match (start, elapsed(start, end, now.get())) {
                        (Some(_), Some(d)) => d,
                        _ => String::new(),
                    }
                }}</span>
            </div>
            {move || error.get().map(|e| view! { <p class="error-text wrap-anywhere pre-line" data-testid=format!("step-error-{idx}")>{e}</p> })}
            {move || note.get().map(|n| view! { <p class="muted small">"Note: "{n}</p> })}
            {move || (is_approval && status.get() == StepStatus::Waiting).then(|| view! {
                <p class="muted small">"Waiting for approval: see the approval request above."</p>
            })}
            {move || (is_manual && status.get() == StepStatus::Waiting).then(|| view! {
                <div class="manual-box" data-testid=format!("manual-step-{idx}")>
                    {move || manual_text.get().map(|t| view! { <p class="instructions">{t}</p> })}
                    {operator.then(|| view! {
                        <div class="vote-form">
                            <label>"Note (optional)"
                                <input data-testid=format!("step-note-{idx}") placeholder="What you saw or did"
                                    prop:value=move || manual_note.get() on:input=move |e| manual_note.set(event_target_value(&e))
                                    on:keydown=move |e| if e.key() == "Enter" { complete() }/>
                            </label>
                            <button class="btn btn-primary" data-testid=format!("complete-step-{idx}") disabled=move || busy.get()
                                on:click=move |_| complete()>{move || if busy.get() { "Saving…" } else { "✓ Mark done" }}</button>
                        </div>
                    })}
                    {(!operator).then(|| view! { <p class="muted small">"An operator ticks this step off."</p> })}
                    {move || complete_error.get().map(|m| view! { <div class="notice notice-error" role="alert">{m}</div> })}
                </div>
            })}
            <pre class="logs logs-short step-output" class:hidden=move || output.with(String::is_empty)
                data-testid=format!("step-output-{idx}") node_ref=pre tabindex="0"
                aria-label="Step output" on:scroll=on_scroll>{move || output.get()}</pre>
            {move || truncated.get().then(|| view! { <p class="muted small">"Output beyond the limit was dropped."</p> })}
            {move || hidden.get().then(|| view! {
                <p class="muted small" data-testid=format!("step-output-hidden-{idx}")>"Output hidden for viewers."</p>
            })}
            {move || result.get().map(|json| view! {
                <details class="step-result">
                    <summary>"Result"</summary>
                    <pre class="logs logs-short">{json}</pre>
                </details>
            })}
        </li>
    }
}

#[component]
pub(super) fn Timeline(run: Memo<Option<Run>>) -> impl IntoView {
    let events = move || {
        let mut v = run.with(|r| r.as_ref().map(|r| r.timeline.clone()).unwrap_or_default());
        v.sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
        v
    };
    view! {
        <Show when=move || run.with(|r| r.as_ref().is_some_and(|r| !r.timeline.is_empty()))
            fallback=|| view! { <p class="muted">"Nothing recorded yet."</p> }>
            <ol class="timeline" data-testid="run-timeline">
                <For each=events key=|e| e.id children=|e| view! {
                    <li data-kind=e.kind.clone()>
                        <time class="muted small nowrap" datetime=e.at.to_rfc3339() title=e.at.format("%Y-%m-%d %H:%M:%S UTC").to_string()>
                            {e.at.format("%H:%M:%S").to_string()}
                        </time>
                        <div class="timeline-body">
                            <span class="tag">{e.kind.clone()}</span>" "
                            {e.actor.clone().map(|a| view! { <strong>{a}</strong>" " })}
                            <span class="wrap-anywhere">{e.message.clone()}</span>
                            {e.step.map(|s| view! { " "<span class="muted small">"(step "{s + 1}")"</span> })}
                        </div>
                    </li>
                }/>
            </ol>
        </Show>
    }
}
