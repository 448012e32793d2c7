//! A service's actions (start, stop, restart, … and the compose stack's),
//! with the questions asked before the dangerous ones and their results.

use super::*;

#[component]
pub(super) fn ActionResult(result: Result<ActionRecord, ApiError>) -> impl IntoView {
    match result {
        Err(e) => view! {
            <div class="action-result action-result-error" data-testid="action-result" role="alert">
                <Pill kind="outage" icon="✕" word="refused"/>" "<span>{e.message}</span>
            </div>
        }
        .into_any(),
        Ok(r) => view! {
            <div class="action-result" data-testid="action-result" role="status">
                <div class="action-line">
                    <OutcomePill outcome=r.outcome/>
                    <code>{r.kind.clone()}</code>
                    <span class="muted">{format!("on {} by {}", r.target, r.actor)}</span>
                    {r.duration_ms.map(|d| view! { <span class="muted">{format!("· {}", duration_ms(d))}</span> })}
                </div>
                {r.error.clone().map(|e| view! { <p class="error-text">{e}</p> })}
                <Steps record=r/>
            </div>
        }
        .into_any(),
    }
}

#[component]
pub(super) fn Steps(record: ActionRecord) -> impl IntoView {
    (!record.steps.is_empty()).then(|| {
        view! {
            <ul class="steps">
                {record.steps.into_iter().map(|s| view! {
                    <li class:step-failed=!s.ok>
                        <span aria-hidden="true">{if s.ok { "✓" } else { "✕" }}</span>
                        <span class="sr-only">{if s.ok { "ok" } else { "failed" }}</span>
                        " "<code>{s.action.clone()}</code>" "<strong>{s.container.clone()}</strong>
                        {s.service.clone().map(|n| view! { <span class="muted">{format!(" ({n})")}</span> })}
                        <span class="muted">{format!(" · {}", duration_ms(s.duration_ms))}</span>
                        {s.error.clone().map(|e| view! { <div class="error-text small">{e}</div> })}
                    </li>
                }).collect_view()}
            </ul>
        }
    })
}

#[component]
pub(super) fn Actions(
    id: i64,
    ov: Memo<Option<ServiceOverview>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let busy = RwSignal::new(None::<&'static str>);
    let result = RwSignal::new(None::<Result<ActionRecord, ApiError>>);
    let ask = RwSignal::new(None::<Ask>);
    let ask_open = RwSignal::new(false);
    let critical = Memo::new(move |_| {
        ov.with(|o| o.as_ref().is_some_and(|o| o.service.tier == Tier::Critical))
    });
    let project =
        Memo::new(move |_| ov.with(|o| o.as_ref().and_then(|o| o.service.compose_project.clone())));

    let typed_ask = move |kind: ContainerActionKind, run: Callback<()>| {
        let name = name_of(ov);
        let (label, _) = action_labels(kind);
        ask.set(Some(Ask {
            title: format!("{label} {name}?"),
            message: format!(
                "{name} is a critical service: {} takes it away and everything that requires it. Type its name to confirm.",
                if kind == ContainerActionKind::Kill { "killing it" } else { "stopping it" }
            ),
            expected: Some(name),
            label,
            run,
        }));
        ask_open.set(true);
    };

    // Runs a container action; `confirm` is the typed name, if any.
    let run_container = move |kind: ContainerActionKind, confirm: Option<String>| {
        let (_, busy_label) = action_labels(kind);
        busy.set(Some(busy_label));
        result.set(None);
        let typed = confirm.is_some();
        leptos::task::spawn_local(async move {
            let req = ContainerActionRequest {
                action: kind,
                timeout_secs: None,
                signal: None,
                confirm: confirm.clone(),
            };
            let r = api::services::act(id, &req).await;
            busy.set(None);
            match r {
                // The tier changed meanwhile: ask for the name now.
                Err(e) if e.code == "confirmation_required" && !typed => {
                    typed_ask(
                        kind,
                        Callback::new(move |_| {
                            let name = name_of(ov);
                            leptos::task::spawn_local(async move {
                                busy.set(Some(action_labels(kind).1));
                                let req = ContainerActionRequest {
                                    action: kind,
                                    timeout_secs: None,
                                    signal: None,
                                    confirm: Some(name),
                                };
                                let r = api::services::act(id, &req).await;
                                busy.set(None);
                                result.set(Some(r));
                                reload.update(|n| *n += 1);
                            });
                        }),
                    );
                }
                r => result.set(Some(r)),
            }
            reload.update(|n| *n += 1);
        });
    };

    let click = move |kind: ContainerActionKind| {
        if !kind.is_disruptive() {
            run_container(kind, None);
            return;
        }
        let name = name_of(ov);
        if critical.get_untracked() {
            typed_ask(
                kind,
                Callback::new(move |_| run_container(kind, Some(name_of(ov)))),
            );
        } else {
            let (label, _) = action_labels(kind);
            let supports = ov
                .with_untracked(|o| o.as_ref().map(|o| o.service.supports.clone()))
                .unwrap_or_default();
            ask.set(Some(Ask {
                title: format!("{label} {name}?"),
                message: if supports.is_empty() {
                    format!(
                        "The containers of {name} {}.",
                        if kind == ContainerActionKind::Kill {
                            "are killed at once"
                        } else {
                            "stop"
                        }
                    )
                } else {
                    format!(
                        "Services that require {name} may fail: {}.",
                        supports.join(", ")
                    )
                },
                expected: None,
                label,
                run: Callback::new(move |_| run_container(kind, None)),
            }));
            ask_open.set(true);
        }
    };

    let run_stack = move |project: String, kind: StackActionKind, confirm: Option<String>| {
        busy.set(Some(match kind {
            StackActionKind::Start => "Starting stack…",
            StackActionKind::Stop => "Stopping stack…",
            StackActionKind::Restart => "Restarting stack…",
        }));
        result.set(None);
        leptos::task::spawn_local(async move {
            let req = StackActionRequest {
                action: kind,
                timeout_secs: None,
                confirm,
            };
            let r = api::services::act_on_stack(&project, &req).await;
            busy.set(None);
            result.set(Some(r));
            reload.update(|n| *n += 1);
        });
    };
    let stack_click = move |kind: StackActionKind| {
        let Some(p) = project.get_untracked() else {
            return;
        };
        let (label, title, message, expected) = match kind {
            StackActionKind::Start => ("Start stack", format!("Start stack {p}?"),
                format!("Starts every service of compose project {p}, dependencies first."), None),
            StackActionKind::Stop => ("Stop stack", format!("Stop stack {p}?"),
                format!("Stops every service of compose project {p}, dependents first. Type the project's name to confirm."), Some(p.clone())),
            StackActionKind::Restart => ("Restart stack", format!("Restart stack {p}?"),
                format!("Stops every service of compose project {p} (dependents first), then starts them again (dependencies first). Type the project's name to confirm."), Some(p.clone())),
        };
        let confirm = expected.clone();
        let proj = p.clone();
        ask.set(Some(Ask {
            title,
            message,
            expected,
            label,
            run: Callback::new(move |_| run_stack(proj.clone(), kind, confirm.clone())),
        }));
        ask_open.set(true);
    };

    let unmapped = Memo::new(move |_| {
        ov.with(|o| {
            o.as_ref().is_some_and(|o| {
                o.service.compose_service.is_none() && o.service.container_name.is_none()
            })
        })
    });

    view! {
        <section class="card" data-testid="actions">
            <h2>"Actions"</h2>
            {move || ask.get().map(|a| {
                let run = a.run;
                view! {
                    <Confirm open=ask_open title=Signal::stored(a.title) message=Signal::stored(a.message)
                        confirm_label=a.label expected=a.expected on_confirm=run/>
                }
            })}
            <Show when=move || !unmapped.get() fallback=|| view! {
                <p class="muted">"This service is not mapped to containers: set a compose service or a container name under Edit to act on it."</p>
            }>
                <div class="btn-row" role="group" aria-label="Container actions">
                    {ContainerActionKind::ALL.into_iter().map(|kind| {
                        let (label, busy_label) = action_labels(kind);
                        let locked = move || critical.get() && kind.is_disruptive();
                        view! {
                            <button class="btn" class:btn-danger=kind.is_disruptive()
                                data-testid=format!("action-{}", kind.as_str())
                                disabled=move || busy.get().is_some()
                                title=move || if locked() { "Critical service: you will be asked to type its name" } else { "" }
                                on:click=move |_| click(kind)>
                                {move || locked().then(|| view! { <span class="lock" aria-hidden="true">"⚠"</span> })}
                                {move || if busy.get() == Some(busy_label) { busy_label } else { label }}
                                {move || locked().then(|| view! { <span class="sr-only">" (needs typed confirmation)"</span> })}
                            </button>
                        }
                    }).collect_view()}
                </div>
                <Show when=move || critical.get()>
                    <p class="hint"><span aria-hidden="true">"⚠ "</span>"Critical service: Stop and Kill ask you to type its name first."</p>
                </Show>
            </Show>
            {move || project.get().map(|p| view! {
                <div class="btn-row stack-row" role="group" aria-label="Stack actions">
                    <span class="muted">"Compose project "<strong>{p.clone()}</strong>":"</span>
                    <button class="btn" data-testid="stack-start" disabled=move || busy.get().is_some()
                        on:click=move |_| stack_click(StackActionKind::Start)>"Start stack"</button>
                    <button class="btn btn-danger" data-testid="stack-restart" disabled=move || busy.get().is_some()
                        on:click=move |_| stack_click(StackActionKind::Restart)><span class="lock" aria-hidden="true">"⚠"</span>"Restart stack"</button>
                    <button class="btn btn-danger" data-testid="stack-stop" disabled=move || busy.get().is_some()
                        on:click=move |_| stack_click(StackActionKind::Stop)><span class="lock" aria-hidden="true">"⚠"</span>"Stop stack"</button>
                </div>
            })}
            {move || busy.get().map(|b| view! { <p class="muted" role="status" aria-live="polite">{b}</p> })}
            {move || result.get().map(|r| view! { <ActionResult result=r/> })}
        </section>
    }
}
