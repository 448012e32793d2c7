//! A service's containers and their logs (fetched, followed live or
//! downloaded).

use super::*;

pub(super) fn container_state_pill(c: &ContainerInfo) -> impl IntoView {
    let (kind, icon) = match c.state.as_str() {
        "running" => ("ok", "✓"),
        "paused" => ("maintenance", "‖"),
        "restarting" => ("degraded", "↻"),
        "exited" | "dead" => ("outage", "■"),
        _ => ("unknown", "○"),
    };
    view! { <Pill kind icon word=c.state.clone() title=c.status.clone()/> }
}

pub(super) fn health_pill(h: Option<&str>) -> AnyView {
    match h {
        Some("healthy") => view! { <Pill kind="ok" icon="✓" word="healthy"/> }.into_any(),
        Some("unhealthy") => view! { <Pill kind="outage" icon="✕" word="unhealthy"/> }.into_any(),
        Some(other) => view! { <Pill kind="unknown" icon="…" word=other.to_string()/> }.into_any(),
        None => {
            view! { <span class="muted" title="The image has no HEALTHCHECK">"—"</span> }.into_any()
        }
    }
}

#[component]
pub(super) fn Containers(ov: Memo<Option<ServiceOverview>>) -> impl IntoView {
    move || {
        ov.get().map(|o| {
            let s = o.service;
            let body = if o.containers.is_empty() {
                let hint = if s.compose_service.is_none() && s.container_name.is_none() {
                    "This service is not mapped to containers. An admin can set a compose service or a container name under Edit.".to_string()
                } else {
                    format!(
                        "No container matches {}. Is it deployed on a connected engine? See Engines.",
                        match (&s.compose_project, &s.compose_service, &s.container_name) {
                            (_, _, Some(c)) => format!("the container name {c}"),
                            (Some(p), Some(sv), None) => format!("compose project {p}, service {sv}"),
                            (None, Some(sv), None) => format!("compose service {sv}"),
                            _ => "the mapping".to_string(),
                        }
                    )
                };
                view! { <EmptyState title="No containers"><p>{hint}</p></EmptyState> }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table" data-testid="containers">
                        <thead><tr><th>"Container"</th><th>"State"</th><th>"Health"</th><th class="num">"Restarts"</th><th>"Started"</th><th>"Engine"</th></tr></thead>
                        <tbody>{o.containers.into_iter().map(|c| view! {
                            <tr data-testid=format!("container-row-{}", c.name)>
                                <td><strong>{c.name.clone()}</strong><div class="muted small">{c.status.clone()}</div></td>
                                <td>{container_state_pill(&c)}</td>
                                <td>{health_pill(c.health.as_deref())}</td>
                                <td class="num" class:warn-text={c.restart_count > 0}>{c.restart_count}</td>
                                <td><RelTime at=c.started_at/></td>
                                <td>{c.engine.clone()}</td>
                            </tr>
                        }).collect_view()}</tbody>
                    </table></div>
                }.into_any()
            };
            view! {
                <section class="section-plain">
                    <h2>"Containers"</h2>
                    {body}
                </section>
            }
        })
    }
}

#[derive(Clone, PartialEq)]
pub(super) enum LogStatus {
    Loading,
    Shown,
    Following,
    Ended(String),
    Failed(String),
}

#[component]
pub(super) fn Logs(id: i64, ov: Memo<Option<ServiceOverview>>) -> impl IntoView {
    let owner = StoredValue::new(Owner::current());
    let tail = RwSignal::new(200u32);
    let timestamps = RwSignal::new(false);
    let filter = RwSignal::new(String::new());
    let container = RwSignal::new(String::new());
    let follow = RwSignal::new(false);
    let lines = RwSignal::new(Vec::<String>::new());
    let status = RwSignal::new(LogStatus::Loading);
    let stream = StoredValue::new(None::<Stream>);
    let pre = NodeRef::<leptos::html::Pre>::new();
    let names = Memo::new(move |_| {
        ov.with(|o| {
            o.as_ref().map(|o| {
                o.containers
                    .iter()
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default()
    });

    // Tail, timestamps, filter and container; `mode`: `follow` or
    // `download` (or neither: fetch).
    let query = move |mode: Option<&'static str>| {
        api::query(&[
            ("tail", Some(tail.get_untracked().to_string())),
            ("timestamps", Some(timestamps.get_untracked().to_string())),
            ("filter", api::non_empty(&filter.get_untracked())),
            ("container", api::non_empty(&container.get_untracked())),
            (
                "follow",
                (mode == Some("follow")).then(|| "true".to_string()),
            ),
            (
                "download",
                (mode == Some("download")).then(|| "true".to_string()),
            ),
        ])
    };
    let stop_stream = move || {
        if let Some(s) = stream.get_value() {
            s.close();
        }
        stream.set_value(None);
    };
    let scroll_down = move || {
        request_animation_frame(move || {
            if let Some(el) = pre.get_untracked() {
                el.set_scroll_top(el.scroll_height());
            }
        })
    };
    let fetch = move || {
        stop_stream();
        status.set(LogStatus::Loading);
        let q = query(None);
        leptos::task::spawn_local(async move {
            match api::services::logs(id, &q).await {
                Ok(text) => {
                    lines.set(text.lines().map(str::to_string).collect());
                    status.set(LogStatus::Shown);
                    scroll_down();
                }
                Err(e) => status.set(LogStatus::Failed(e.message)),
            }
        });
    };
    let start_follow = move || {
        stop_stream();
        lines.set(Vec::new());
        status.set(LogStatus::Following);
        let url = api::services::logs_url(id, &query(Some("follow")));
        let buffer = Rc::new(RefCell::new(Vec::<String>::new()));
        let scheduled = Rc::new(Cell::new(false));
        let flush = {
            let buffer = buffer.clone();
            let scheduled = scheduled.clone();
            move || {
                scheduled.set(false);
                let new: Vec<String> = buffer.borrow_mut().drain(..).collect();
                lines.try_update(|l| {
                    l.extend(new);
                    if l.len() > LOG_CAP {
                        let extra = l.len() - LOG_CAP;
                        l.drain(..extra);
                    }
                });
                scroll_down();
            }
        };
        let reopened = Cell::new(false);
        let on = move |e: StreamEvent| match e {
            // Reopened (the page came back from the back/forward cache): the
            // server sends the tail again.
            StreamEvent::Open if reopened.replace(true) => {
                buffer.borrow_mut().clear();
                lines.try_set(Vec::new());
            }
            StreamEvent::Message { event, data } if event == "line" => {
                buffer.borrow_mut().push(data);
                if !scheduled.replace(true) {
                    let flush = flush.clone();
                    set_timeout(flush, Duration::from_millis(150));
                }
            }
            StreamEvent::Message { event, data } if event == "error" => {
                status.set(LogStatus::Ended(if data.is_empty() {
                    "The engine ended the log stream.".into()
                } else {
                    data
                }));
                follow.set(false);
                stop_stream();
            }
            StreamEvent::Broken => {
                status.set(LogStatus::Ended("The log stream ended.".into()));
                follow.set(false);
                stop_stream();
            }
            _ => {}
        };
        let opened = match owner.get_value() {
            Some(o) => o.with(|| Stream::open(&url, &["line"], on)),
            None => Stream::open(&url, &["line"], on),
        };
        match opened {
            Some(s) => stream.set_value(Some(s)),
            None => {
                status.set(LogStatus::Failed(
                    "This browser cannot follow logs (no EventSource).".into(),
                ));
                follow.set(false);
            }
        }
    };
    let refresh = move || {
        if follow.get_untracked() {
            start_follow()
        } else {
            fetch()
        }
    };
    // Fetch on open and whenever an option changes.
    Effect::new(move |_| {
        tail.track();
        timestamps.track();
        container.track();
        refresh();
    });
    on_cleanup(move || {
        if let Some(Some(s)) = stream.try_get_value() {
            s.close();
        }
    });

    let download = move || {
        let _ = (tail.get(), timestamps.get(), container.get(), filter.get());
        api::services::logs_url(id, &query(Some("download")))
    };

    view! {
        <form class="toolbar" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); refresh(); }>
            <label class="inline">"Lines"
                <select data-testid="logs-tail" on:change=move |e| tail.set(event_target_value(&e).parse().unwrap_or(200))>
                    {[100u32, 200, 1000].into_iter().map(|n| view! { <option value=n.to_string() selected=n == 200>{n}</option> }).collect_view()}
                </select>
            </label>
            <label class="inline check"><input type="checkbox" data-testid="logs-timestamps"
                prop:checked=move || timestamps.get() on:change=move |e| timestamps.set(event_target_checked(&e))/>"Timestamps"</label>
            <Show when=move || { names.with(|n| n.len() > 1) }>
                <select aria-label="Container" on:change=move |e| container.set(event_target_value(&e))>
                    <option value="">"All containers"</option>
                    {move || names.get().into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                </select>
            </Show>
            <input type="search" class="search" placeholder="Filter lines (Enter)" aria-label="Filter log lines" data-testid="logs-filter"
                prop:value=move || filter.get() on:input=move |e| filter.set(event_target_value(&e))/>
            <button class="btn" type="submit" data-testid="logs-refresh">"Refresh"</button>
            <button class="btn" type="button" data-testid="logs-follow" aria-pressed=move || follow.get().to_string()
                class:btn-active=move || follow.get()
                on:click=move |_| {
                    let on = !follow.get_untracked();
                    follow.set(on);
                    if on { start_follow() } else { stop_stream(); status.set(LogStatus::Shown); }
                }>
                {move || if follow.get() { "■ Stop following" } else { "▶ Follow" }}
            </button>
            <a class="btn" href=download download="" data-testid="logs-download">"Download"</a>
            <a class="btn" href=format!("/logs?service={id}") data-testid="logs-search"
                title="Regex, level and time range over this service's logs">"Search…"</a>
        </form>
        {move || match status.get() {
            LogStatus::Loading => view! { <p class="muted small" role="status">"Loading logs…"</p> }.into_any(),
            LogStatus::Following => view! { <p class="muted small" role="status"><span class="live-dot" aria-hidden="true"></span>" Following: new lines appear live (the last "{LOG_CAP}" are kept)."</p> }.into_any(),
            LogStatus::Ended(m) => view! { <p class="notice" role="status">{m}</p> }.into_any(),
            LogStatus::Failed(m) => view! { <ErrorState message=m retry=Callback::new(move |_| refresh())/> }.into_any(),
            LogStatus::Shown => view! {
                <p class="muted small">{move || {
                    let n = lines.with(Vec::len);
                    if n == 0 { "No log lines (for this filter).".to_string() } else { format!("{n} lines") }
                }}</p>
            }.into_any(),
        }}
        <pre class="logs" data-testid="logs" node_ref=pre tabindex="0" aria-label="Log lines">{move || lines.with(|l| l.join("\n"))}</pre>
    }
}
