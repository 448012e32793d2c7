//! Stats, exec and inspect for a service's containers, and the activity of
//! the service and its stack.

use super::*;

#[component]
pub(super) fn Stats(id: i64) -> impl IntoView {
    let data = RwSignal::new(None::<Result<Vec<ContainerStats>, String>>);
    let load = move || {
        leptos::task::spawn_local(async move {
            let r = api::services::stats(id).await;
            data.set(Some(r.map_err(|e| e.message)));
        });
    };
    load();
    use_interval(Duration::from_secs(5), load);
    move || {
        match data.get() {
        None => view! { <Loading rows=2/> }.into_any(),
        Some(Err(m)) => view! { <ErrorState message=m retry=Callback::new(move |_| load())/> }.into_any(),
        Some(Ok(list)) if list.is_empty() => view! {
            <EmptyState title="No running containers"><p>"Figures appear while a container of this service runs."</p></EmptyState>
        }.into_any(),
        Some(Ok(list)) => view! {
            <p class="muted small">"Refreshed every 5 s while shown."</p>
            <div class="table-wrap"><table class="table" data-testid="stats">
                <thead><tr><th>"Container"</th><th class="num">"CPU"</th><th class="num">"Memory"</th><th class="num">"Net rx / tx"</th><th class="num">"Block read / write"</th><th class="num">"PIDs"</th><th>"Sampled"</th></tr></thead>
                <tbody>{list.into_iter().map(|s| {
                    let mem_pct = (s.memory_limit_bytes > 0).then(|| s.memory_bytes as f64 * 100.0 / s.memory_limit_bytes as f64);
                    view! {
                        <tr>
                            <td><strong>{s.name.clone()}</strong></td>
                            <td class="num">{match s.cpu_percent {
                                Some(c) => format!("{c:.1} %"),
                                None => "sampling…".to_string(),
                            }}</td>
                            <td class="num">{format!("{} / {}", bytes(s.memory_bytes), if s.memory_limit_bytes > 0 { bytes(s.memory_limit_bytes) } else { "no limit".into() })}
                                {mem_pct.map(|p| view! { <div class="muted small">{format!("{p:.0} %")}</div> })}</td>
                            <td class="num">{format!("{} / {}", bytes(s.net_rx_bytes), bytes(s.net_tx_bytes))}</td>
                            <td class="num">{format!("{} / {}", bytes(s.block_read_bytes), bytes(s.block_write_bytes))}</td>
                            <td class="num">{s.pids}</td>
                            <td><RelTime at=Some(s.sampled_at)/></td>
                        </tr>
                    }
                }).collect_view()}</tbody>
            </table></div>
        }.into_any(),
    }
    }
}

#[component]
pub(super) fn Exec(id: i64, ov: Memo<Option<ServiceOverview>>) -> impl IntoView {
    let argv = RwSignal::new(String::new());
    let container = RwSignal::new(String::new());
    let timeout = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let result = RwSignal::new(None::<Result<ExecResult, String>>);
    let running = Memo::new(move |_| {
        ov.with(|o| {
            o.as_ref().map(|o| {
                o.containers
                    .iter()
                    .filter(|c| c.state == "running")
                    .map(|c| c.name.clone())
                    .collect::<Vec<_>>()
            })
        })
        .unwrap_or_default()
    });
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let args: Vec<String> = argv
            .get_untracked()
            .lines()
            .map(|l| l.trim_end_matches('\r').to_string())
            .filter(|l| !l.is_empty())
            .collect();
        if args.is_empty() {
            result.set(Some(Err(
                "Enter the program and its arguments, one per line.".into(),
            )));
            return;
        }
        let req = ExecRequest {
            argv: args,
            container: non_empty(container.get_untracked()),
            timeout_secs: timeout.get_untracked().trim().parse().ok(),
        };
        busy.set(true);
        result.set(None);
        leptos::task::spawn_local(async move {
            let r = api::services::exec(id, &req).await;
            result.set(Some(r.map_err(|e| e.message)));
            busy.set(false);
        });
    };
    view! {
        <p class="hint">"Runs a program in a container "<strong>"without a shell"</strong>": one argument per line (e.g. "<code>"ls"</code>", "<code>"-l"</code>", "<code>"/data"</code>"). Pipes, globs and variables are not expanded; empty lines are ignored."</p>
        <form class="exec-form" on:submit=submit>
            <label class="span-all">"Command (one argument per line)"
                <textarea rows="4" class="mono" data-testid="exec-argv" spellcheck="false" placeholder="ls\n-l\n/"
                    prop:value=move || argv.get() on:input=move |e| argv.set(event_target_value(&e))></textarea>
            </label>
            <label>"Container"
                <select data-testid="exec-container" on:change=move |e| container.set(event_target_value(&e))>
                    <option value="">"First running container"</option>
                    {move || running.get().into_iter().map(|n| view! { <option value=n.clone()>{n.clone()}</option> }).collect_view()}
                </select>
            </label>
            <label>"Timeout (s)"
                <input type="number" min="1" max="300" placeholder="30" prop:value=move || timeout.get() on:input=move |e| timeout.set(event_target_value(&e))/>
            </label>
            <button class="btn btn-primary" type="submit" data-testid="exec-run" disabled=move || busy.get()>
                {move || if busy.get() { "Running…" } else { "Run" }}
            </button>
        </form>
        {move || result.get().map(|r| match r {
            Err(m) => view! { <div class="notice notice-error" role="alert" data-testid="exec-result">{m}</div> }.into_any(),
            Ok(x) => view! {
                <div class="exec-result" data-testid="exec-result">
                    <div class="action-line">
                        {match x.exit_code {
                            Some(0) => view! { <Pill kind="ok" icon="✓" word="exit 0"/> }.into_any(),
                            Some(c) => view! { <Pill kind="outage" icon="✕" word=format!("exit {c}")/> }.into_any(),
                            None => view! { <Pill kind="unknown" icon="?" word="no exit code"/> }.into_any(),
                        }}
                        <span class="muted">{format!("in {} · {}", x.container, duration_ms(x.duration_ms))}</span>
                        {x.timed_out.then(|| view! { <Pill kind="degraded" icon="!" word="timed out"/> })}
                        {x.truncated.then(|| view! { <Pill kind="degraded" icon="…" word="output truncated"/> })}
                    </div>
                    <h3>"stdout"</h3>
                    <pre class="logs logs-short">{if x.stdout.is_empty() { "(empty)".to_string() } else { x.stdout.clone() }}</pre>
                    <h3>"stderr"</h3>
                    <pre class="logs logs-short">{if x.stderr.is_empty() { "(empty)".to_string() } else { x.stderr.clone() }}</pre>
                </div>
            }.into_any(),
        })}
    }
}

#[component]
pub(super) fn Inspect(id: i64) -> impl IntoView {
    let data = RwSignal::new(None::<Result<Vec<serde_json::Value>, String>>);
    let busy = RwSignal::new(false);
    let load = move || {
        busy.set(true);
        leptos::task::spawn_local(async move {
            let r = api::services::inspect(id).await;
            data.set(Some(r.map_err(|e| e.message)));
            busy.set(false);
        });
    };
    view! {
        <div class="toolbar">
            <button class="btn" data-testid="inspect-load" disabled=move || busy.get() on:click=move |_| load()>
                {move || if data.with(Option::is_some) { "Reload" } else { "Load docker inspect" }}
            </button>
            <span class="muted small">"The engine's full description of each container (environment values included: handle with care)."</span>
        </div>
        {move || data.get().map(|r| match r {
            Err(m) => view! { <ErrorState message=m retry=Callback::new(move |_| load())/> }.into_any(),
            Ok(list) if list.is_empty() => view! { <EmptyState title="No containers"><p>"Nothing to inspect."</p></EmptyState> }.into_any(),
            Ok(list) => list.into_iter().map(|v| {
                let name = v.get("Name").and_then(|n| n.as_str()).map(|n| n.trim_start_matches('/').to_string())
                    .unwrap_or_else(|| "container".into());
                let text = serde_json::to_string_pretty(&v).unwrap_or_default();
                view! {
                    <details class="inspect" open>
                        <summary><strong>{name}</strong></summary>
                        <pre class="logs" data-testid="inspect-json">{text}</pre>
                    </details>
                }
            }).collect_view().into_any(),
        })}
    }
}

pub(super) fn activity_table(list: Vec<ActionRecord>, testid: &'static str) -> impl IntoView {
    view! {
        <div class="table-wrap"><table class="table" data-testid=testid>
            <thead><tr><th>"When"</th><th>"Action"</th><th>"Actor"</th><th class="num">"Duration"</th><th>"Outcome"</th><th>"Steps"</th></tr></thead>
            <tbody>{list.into_iter().map(|r| {
                let steps = r.steps.len();
                let failed = r.steps.iter().filter(|s| !s.ok).count();
                view! {
                    <tr>
                        <td><RelTime at=Some(r.started_at)/></td>
                        <td><code>{r.kind.clone()}</code>{r.target.starts_with("stack:").then(|| view! { <div class="muted small">{r.target.clone()}</div> })}</td>
                        <td>{r.actor.clone()}</td>
                        <td class="num">{r.duration_ms.map(duration_ms).unwrap_or_else(|| "—".into())}</td>
                        <td><OutcomePill outcome=r.outcome/>{r.error.clone().map(|e| view! { <div class="error-text small">{e}</div> })}</td>
                        <td>{if steps == 0 {
                            view! { <span class="muted">"—"</span> }.into_any()
                        } else {
                            let plural = if steps == 1 { "" } else { "s" };
                            let summary = if failed > 0 { format!("{steps} step{plural}, {failed} failed") } else { format!("{steps} step{plural}") };
                            view! { <details><summary>{summary}</summary><Steps record=r.clone()/></details> }.into_any()
                        }}</td>
                    </tr>
                }
            }).collect_view()}</tbody>
        </table></div>
    }
}

#[component]
pub(super) fn Activity(
    id: i64,
    ov: Memo<Option<ServiceOverview>>,
    reload: RwSignal<u32>,
) -> impl IntoView {
    let project =
        Memo::new(move |_| ov.with(|o| o.as_ref().and_then(|o| o.service.compose_project.clone())));
    let mine = LocalResource::new(move || {
        reload.get();
        async move { api::services::activity(id).await }
    });
    let stack = LocalResource::new(move || {
        reload.get();
        let p = project.get();
        async move {
            match p {
                Some(p) => api::services::stack_activity(&p).await.map(Some),
                None => Ok(None),
            }
        }
    });
    // Re-render only when the lists change (keeps opened step details open
    // across live updates).
    let mine = Memo::new(move |_| mine.get());
    let stack = Memo::new(move |_| stack.get());
    view! {
        {move || match mine.get() {
            None => view! { <Loading rows=2/> }.into_any(),
            Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
            Some(Ok(list)) if list.is_empty() => view! {
                <EmptyState title="No actions yet"><p>"Every container and stack action on this service is listed here, with who ran it and how it ended."</p></EmptyState>
            }.into_any(),
            Some(Ok(list)) => activity_table(list, "activity").into_any(),
        }}
        {move || match stack.get() {
            Some(Ok(Some(list))) if !list.is_empty() => view! {
                <h3>"Stack "{project.get_untracked().unwrap_or_default()}</h3>
                {activity_table(list, "stack-activity")}
            }.into_any(),
            _ => ().into_any(),
        }}
    }
}
