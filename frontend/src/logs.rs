//! Log search across services and time (operators): pick services and
//! whole stacks (none: all), a text or regex, a level and a time range;
//! hits stream in merged by timestamp from every container, with context
//! lines, counts per service, per-container errors, a "truncated" mark,
//! cancel and a text download. `?service=<id>` or `?stack=<name>` start
//! with that choice (the service page links here).

use std::collections::BTreeSet;

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use opsdeck_wire::{
    LogEvent, LogHit, LogLevel, LogSearch, LogSearchEnd, LogSourceError, ServiceOverview,
};
use wasm_bindgen::JsCast;

use crate::api;
use crate::time::{local, parse_local_input};
use crate::ui::{EmptyState, ErrorState};

const RANGES: &[(&str, &str)] = &[
    ("15m", "Last 15 minutes"),
    ("1h", "Last hour"),
    ("6h", "Last 6 hours"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("custom", "Custom range"),
];

#[derive(Clone, PartialEq)]
enum Phase {
    Idle,
    Running,
    Done,
    Cancelled,
    Failed(String),
}

fn level_of(v: &str) -> Option<LogLevel> {
    match v {
        "warn" => Some(LogLevel::Warn),
        "error" => Some(LogLevel::Error),
        "fatal" => Some(LogLevel::Fatal),
        _ => None,
    }
}

#[component]
pub fn Logs() -> impl IntoView {
    let query_map = use_query_map();
    let inventory = LocalResource::new(api::services::list);
    let services = RwSignal::new(BTreeSet::<i64>::new());
    let stacks = RwSignal::new(BTreeSet::<String>::new());
    query_map.with_untracked(|q| {
        if let Some(id) = q.get("service").and_then(|s| s.parse().ok()) {
            services.update(|s| {
                s.insert(id);
            });
        }
        if let Some(p) = q.get("stack") {
            stacks.update(|s| {
                s.insert(p);
            });
        }
    });
    let text = RwSignal::new(String::new());
    let regex = RwSignal::new(false);
    let level = RwSignal::new(String::new());
    let range = RwSignal::new("1h".to_string());
    let since = RwSignal::new(String::new());
    let until = RwSignal::new(String::new());
    let context = RwSignal::new(0u32);
    let lines = RwSignal::new(Vec::<LogHit>::new());
    let errors = RwSignal::new(Vec::<LogSourceError>::new());
    let end = RwSignal::new(None::<LogSearchEnd>);
    let phase = RwSignal::new(Phase::Idle);
    let controller = StoredValue::new(None::<web_sys::AbortController>);

    let request = move || -> Result<LogSearch, String> {
        let (since, until) = if range.get_untracked() == "custom" {
            let s =
                parse_local_input(&since.get_untracked()).ok_or("Choose when the range starts.")?;
            let u = match until.get_untracked().trim() {
                "" => None,
                t => Some(parse_local_input(t).ok_or("The end of the range is not a time.")?),
            };
            (Some(s.to_rfc3339()), u.map(|u| u.to_rfc3339()))
        } else {
            (Some(range.get_untracked()), None)
        };
        Ok(LogSearch {
            services: services.get_untracked().into_iter().collect(),
            projects: stacks.get_untracked().into_iter().collect(),
            query: text.get_untracked().trim().to_string(),
            regex: regex.get_untracked(),
            level: level_of(&level.get_untracked()),
            since,
            until,
            context: context.get_untracked(),
            limit: None,
        })
    };
    let cancel = move || {
        if let Some(c) = controller.get_value() {
            c.abort();
        }
    };
    let run = move || {
        cancel();
        let q = match request() {
            Ok(q) => q,
            Err(m) => return phase.set(Phase::Failed(m.to_string())),
        };
        let Ok(c) = web_sys::AbortController::new() else {
            return phase.set(Phase::Failed("This browser cannot cancel requests.".into()));
        };
        let signal = c.signal();
        controller.set_value(Some(c));
        lines.set(Vec::new());
        errors.set(Vec::new());
        end.set(None);
        phase.set(Phase::Running);
        leptos::task::spawn_local(async move {
            let result = api::logs::search(&q, &signal, |events| {
                let mut new = Vec::new();
                for ev in events {
                    match ev {
                        LogEvent::Line(h) => new.push(h),
                        LogEvent::Error(e) => {
                            errors.try_update(|v| v.push(e));
                        }
                        LogEvent::End(e) => {
                            end.try_set(Some(e));
                        }
                    }
                }
                if !new.is_empty() {
                    lines.try_update(|v| v.extend(new));
                }
            })
            .await;
            phase.try_set(match result {
                Ok(()) if end.get_untracked().is_some() => Phase::Done,
                Ok(()) => Phase::Failed("The answer ended early.".into()),
                Err(e) if e.code == "aborted" => Phase::Cancelled,
                Err(e) => Phase::Failed(e.message),
            });
        });
    };
    on_cleanup(cancel);
    let download = move |_| {
        let Ok(q) = request() else { return };
        leptos::task::spawn_local(async move {
            match api::logs::download_text(&q).await {
                Ok(text) => save_text("opsdeck-logs.log", &text),
                Err(e) => phase.set(Phase::Failed(e.message)),
            }
        });
    };

    let choices = move || {
        inventory
            .get()
            .and_then(|r| r.ok())
            .map(|list: Vec<ServiceOverview>| {
                let stacks: BTreeSet<String> = list
                    .iter()
                    .filter_map(|o| o.service.compose_project.clone())
                    .collect();
                (stacks, list)
            })
    };
    let add = move |v: String| {
        if let Some(p) = v.strip_prefix("stack:") {
            stacks.update(|s| {
                s.insert(p.to_string());
            });
        } else if let Some(id) = v.strip_prefix("service:").and_then(|i| i.parse().ok()) {
            services.update(|s| {
                s.insert(id);
            });
        }
    };
    let service_name = move |id: i64| {
        choices()
            .and_then(|(_, l)| l.into_iter().find(|o| o.service.id == id))
            .map_or_else(|| format!("service {id}"), |o| o.service.name)
    };

    view! {
        <div class="page-head"><h1>"Logs"</h1></div>
        <p class="lede">"Search every service's logs at once: the lines of all their containers, merged by time."</p>
        <form class="card log-search" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); run(); }>
            <div class="log-scope">
                <span class="stat-label">"In"</span>
                <ul class="chips" data-testid="log-scope">
                    {move || (services.with(BTreeSet::is_empty) && stacks.with(BTreeSet::is_empty))
                        .then(|| view! { <li class="muted">"all services"</li> })}
                    {move || stacks.get().into_iter().map(|p| {
                        let remove = p.clone();
                        view! { <li class="chip chip-on">"stack "{p}
                            <button type="button" class="link-button" aria-label="Remove"
                                on:click=move |_| stacks.update(|s| { s.remove(&remove); })>"×"</button></li> }
                    }).collect_view()}
                    {move || services.get().into_iter().map(|id| view! {
                        <li class="chip chip-on">{service_name(id)}
                            <button type="button" class="link-button" aria-label="Remove"
                                on:click=move |_| services.update(|s| { s.remove(&id); })>"×"</button></li>
                    }).collect_view()}
                </ul>
                <select aria-label="Add a service or stack" data-testid="log-add"
                    on:change=move |e| {
                        add(event_target_value(&e));
                        if let Some(t) = e.target().and_then(|t| t.dyn_into::<web_sys::HtmlSelectElement>().ok()) { t.set_value(""); }
                    }>
                    <option value="">"Add a service or stack…"</option>
                    {move || choices().map(|(st, list)| view! {
                        <optgroup label="Stacks">
                            {st.into_iter().map(|p| view! { <option value=format!("stack:{p}")>{p.clone()}</option> }).collect_view()}
                        </optgroup>
                        <optgroup label="Services">
                            {list.into_iter().map(|o| view! { <option value=format!("service:{}", o.service.id)>{o.service.name}</option> }).collect_view()}
                        </optgroup>
                    })}
                </select>
            </div>
            <div class="toolbar">
                <input type="search" class="search mono" placeholder="Text to find (empty: every line)" aria-label="Search text"
                    data-testid="log-query" prop:value=move || text.get() on:input=move |e| text.set(event_target_value(&e))/>
                <label class="inline check"><input type="checkbox" data-testid="log-regex"
                    prop:checked=move || regex.get() on:change=move |e| regex.set(event_target_checked(&e))/>"Regex"</label>
                <select aria-label="Level" data-testid="log-level" on:change=move |e| level.set(event_target_value(&e))>
                    <option value="">"Any level"</option>
                    <option value="warn">"Warnings and worse"</option>
                    <option value="error">"Errors and worse"</option>
                    <option value="fatal">"Fatal only"</option>
                </select>
                <select aria-label="Time range" data-testid="log-range" on:change=move |e| range.set(event_target_value(&e))>
                    {RANGES.iter().map(|(v, l)| view! { <option value=*v selected=*v == "1h">{*l}</option> }).collect_view()}
                </select>
                <Show when=move || range.get() == "custom">
                    <label class="inline">"From"<input type="datetime-local" prop:value=move || since.get() on:input=move |e| since.set(event_target_value(&e))/></label>
                    <label class="inline">"to"<input type="datetime-local" prop:value=move || until.get() on:input=move |e| until.set(event_target_value(&e))/></label>
                </Show>
                <label class="inline">"Context"
                    <select data-testid="log-context" on:change=move |e| context.set(event_target_value(&e).parse().unwrap_or(0))>
                        {[0u32, 2, 5, 10].into_iter().map(|n| view! { <option value=n.to_string()>{n}</option> }).collect_view()}
                    </select>
                </label>
                <span class="spacer"></span>
                {move || if phase.get() == Phase::Running {
                    view! { <button class="btn" type="button" data-testid="log-cancel" on:click=move |_| cancel()>"■ Cancel"</button> }.into_any()
                } else {
                    view! { <button class="btn btn-primary" type="submit" data-testid="log-search">"Search"</button> }.into_any()
                }}
                <button class="btn" type="button" data-testid="log-download" disabled=move || end.with(Option::is_none) on:click=download>"Download"</button>
            </div>
        </form>
        <Summary phase lines errors end/>
        <Results phase lines/>
    }
}

/// What the search found so far: progress, counts per service, errors.
#[component]
fn Summary(
    phase: RwSignal<Phase>,
    lines: RwSignal<Vec<LogHit>>,
    errors: RwSignal<Vec<LogSourceError>>,
    end: RwSignal<Option<LogSearchEnd>>,
) -> impl IntoView {
    let hits = move || lines.with(|l| l.iter().filter(|h| h.hit).count());
    view! {
        {move || match phase.get() {
            Phase::Running => Some(view! { <p class="muted small" role="status" data-testid="log-status"><span class="live-dot" aria-hidden="true"></span>" Searching… "{hits}" hits so far"</p> }.into_any()),
            Phase::Cancelled => Some(view! { <p class="notice" role="status" data-testid="log-status">"Cancelled after "{hits}" hits."</p> }.into_any()),
            Phase::Failed(m) => Some(view! { <ErrorState title="The search failed" message=m/> }.into_any()),
            Phase::Done | Phase::Idle => None,
        }}
        {move || end.get().map(|e| {
            let total: u64 = e.counts.iter().map(|c| c.hits).sum();
            let scanned: u64 = e.counts.iter().map(|c| c.scanned).sum();
            view! {
                <p class="muted small" role="status" data-testid="log-status">
                    {format!("{total} hits in {scanned} lines of {} containers, {} to {}.", e.containers,
                        local(e.since).format("%a %d %b %H:%M:%S"), local(e.until).format("%a %d %b %H:%M:%S"))}
                    {e.truncated.then(|| view! { " "<strong data-testid="log-truncated">"Truncated: only the first hits are shown; narrow the search."</strong> })}
                </p>
                <ul class="chips log-counts" data-testid="log-counts">
                    {e.counts.into_iter().map(|c| view! {
                        <li class="count-chip"><a href=format!("/services/{}", c.service_id)>{c.service}</a>" "<strong class="num-tabular">{c.hits}</strong></li>
                    }).collect_view()}
                </ul>
            }
        })}
        {move || (!errors.with(Vec::is_empty)).then(|| view! {
            <div class="notice notice-warn" role="alert" data-testid="log-errors">
                <strong>"Some logs could not be read to the end; the results hold what came before."</strong>
                <ul class="plain-list">
                    {errors.get().into_iter().map(|e| view! { <li><span class="mono">{e.service}" "{e.container}</span>": "{e.message}</li> }).collect_view()}
                </ul>
            </div>
        })}
    }
}

/// The lines: time, service and container, level, text (context dimmed).
#[component]
fn Results(phase: RwSignal<Phase>, lines: RwSignal<Vec<LogHit>>) -> impl IntoView {
    view! {
        {move || {
            let empty = lines.with(Vec::is_empty);
            match phase.get() {
                Phase::Idle => view! {
                    <EmptyState title="Search the logs">
                        <p>"Type a word (or a regular expression), or leave it empty and pick a level, then Search."</p>
                    </EmptyState>
                }.into_any(),
                Phase::Done if empty => view! {
                    <EmptyState title="No lines matched">
                        <p>"Nothing in this time range matched. Try a longer range or fewer words."</p>
                    </EmptyState>
                }.into_any(),
                _ if empty => ().into_any(),
                _ => view! {
                    <div class="table-wrap">
                        <table class="table log-results" data-testid="log-results">
                            <thead><tr><th>"Time"</th><th>"Service"</th><th>"Level"</th><th>"Line"</th></tr></thead>
                            <tbody>
                                {lines.get().into_iter().map(|h| view! {
                                    <tr class:row-quiet=!h.hit data-testid=if h.hit { "log-hit" } else { "log-context" }>
                                        <td class="mono nowrap">{local(h.ts).format("%H:%M:%S%.3f").to_string()}</td>
                                        <td class="nowrap"><a href=format!("/services/{}", h.service_id)>{h.service}</a>
                                            <div class="muted small mono">{h.container}</div></td>
                                        <td>{h.level.map(|l| view! { <span class=format!("log-level log-{}", l.as_str())>{l.as_str()}</span> })}</td>
                                        <td class="mono wrap-anywhere log-line">{h.line}</td>
                                    </tr>
                                }).collect_view()}
                            </tbody>
                        </table>
                    </div>
                }.into_any(),
            }
        }}
    }
}

/// Offers `text` as a file download.
fn save_text(name: &str, text: &str) {
    let parts = js_sys::Array::of1(&wasm_bindgen::JsValue::from_str(text));
    let opts = web_sys::BlobPropertyBag::new();
    opts.set_type("text/plain");
    let Ok(blob) = web_sys::Blob::new_with_str_sequence_and_options(&parts, &opts) else {
        return;
    };
    let Ok(href) = web_sys::Url::create_object_url_with_blob(&blob) else {
        return;
    };
    let a = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.create_element("a").ok())
        .and_then(|e| e.dyn_into::<web_sys::HtmlAnchorElement>().ok());
    if let Some(a) = a {
        a.set_href(&href);
        a.set_download(name);
        a.click();
    }
    let _ = web_sys::Url::revoke_object_url(&href);
}
