//! Docker Engines (`/engines`), the fleet's overview: one row per engine
//! with whether it answers, its containers (running of all), its host's
//! CPU, memory and fullest disk (from the host checks naming it), version
//! and pending image updates; filtered and sorted by any column.
//! Admins add engines (Unix socket or TCP with TLS files on the Opsdeck
//! host) and remove them. Live through the inventory events, plus a slow
//! poll for connection state changes. Each engine's disk usage and
//! clean-up open below the table ([`cleanup`]).

mod cleanup;

use std::cmp::Ordering;
use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::{CheckStatus, CreateEngineRequest, EngineOverview, EngineState, Resource, Role};

use crate::api;
use crate::live::{use_interval, use_inventory_events};
use crate::resources::pct;
use crate::services::non_empty;
use crate::session::current_role;
use crate::states::EngineStatePill;
use crate::time::RelTime;
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

/// What the table is ordered by (a click on a column's head; again: the
/// other way round).
#[derive(Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Name,
    State,
    Containers,
    Cpu,
    Memory,
    Disk,
    Updates,
}

/// Order of `a` and `b` by `by`, the worst first for figures (a missing
/// figure last), then by name.
fn compare(a: &EngineOverview, b: &EngineOverview, by: SortBy) -> Ordering {
    let fig = |x: Option<f64>, y: Option<f64>| match (x, y) {
        (Some(x), Some(y)) => y.total_cmp(&x),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    };
    let rank = |e: &EngineOverview| match e.engine.state {
        EngineState::Unreachable => 0,
        EngineState::Connecting => 1,
        EngineState::Connected => {
            2 + usize::from(e.host.status.is_none_or(|s| s < CheckStatus::Warning))
        }
    };
    let first = match by {
        SortBy::Name => Ordering::Equal,
        SortBy::State => rank(a).cmp(&rank(b)),
        SortBy::Containers => b.engine.containers.cmp(&a.engine.containers),
        SortBy::Cpu => fig(a.host.cpu_pct, b.host.cpu_pct),
        SortBy::Memory => fig(a.host.memory_pct, b.host.memory_pct),
        SortBy::Disk => fig(
            a.host.disk.as_ref().map(|d| d.pct),
            b.host.disk.as_ref().map(|d| d.pct),
        ),
        SortBy::Updates => b.updates.cmp(&a.updates),
    };
    first.then_with(|| a.engine.name.cmp(&b.engine.name))
}

/// A host figure with the handbooks' default thresholds for its kind
/// (`Resource::host_thresholds`) marking it, or "—".
fn figure(v: Option<f64>, resource: Resource, testid: String) -> AnyView {
    match v {
        None => view! { <span class="muted" data-testid=testid>"—"</span> }.into_any(),
        Some(v) => {
            let (warn, crit) = resource.host_thresholds();
            let class = if v >= crit {
                "problem-text"
            } else if v >= warn {
                "warn-text"
            } else {
                ""
            };
            view! { <span class=class data-testid=testid>{pct(v)}</span> }.into_any()
        }
    }
}

#[component]
pub fn Engines() -> impl IntoView {
    let role = current_role();
    let admin = role >= Role::Admin;
    let reload = RwSignal::new(0u32);
    use_inventory_events(reload);
    use_interval(Duration::from_secs(15), move || reload.update(|n| *n += 1));
    let engines = LocalResource::new(move || {
        reload.get();
        api::engines::overview()
    });
    let query = RwSignal::new(String::new());
    let show = RwSignal::new("all".to_string());
    let sort = RwSignal::new((SortBy::Name, false));
    let notice = RwSignal::new(None::<Result<String, String>>);
    let remove_target = RwSignal::new(None::<(i64, String)>);
    let confirm_open = RwSignal::new(false);
    let disk_for = RwSignal::new(None::<(i64, String)>);

    let head = move |label: &'static str, by: SortBy, num: bool| {
        let aria = move || match sort.get() {
            (b, false) if b == by => "ascending",
            (b, true) if b == by => "descending",
            _ => "none",
        };
        view! {
            <th class:num=num aria-sort=aria>
                <button class="th-sort" data-testid=format!("engines-sort-{}", label.to_lowercase().replace(' ', "-"))
                    on:click=move |_| sort.update(|(b, rev)| if *b == by { *rev = !*rev } else { *b = by; *rev = false })>
                    {label}{move || match sort.get() { (b, false) if b == by => " ▾", (b, true) if b == by => " ▴", _ => "" }}
                </button>
            </th>
        }
    };

    let row = move |o: EngineOverview| {
        let e = o.engine;
        let n = e.name.clone();
        let target = (e.id, e.name.clone());
        let disk_target = (e.id, e.name.clone());
        let disk = o.host.disk.clone();
        view! {
            <tr data-testid=format!("engine-row-{n}")>
                <td class="cell-main">
                    <strong>{e.name.clone()}</strong>{e.tls.then(|| view! { <span class="muted small" title="TLS client certificates configured">" · TLS"</span> })}
                    <div><code class="wrap-anywhere small">{e.endpoint.clone()}</code></div>
                </td>
                <td>
                    <EngineStatePill state=e.state testid=format!("engine-state-{n}")/>
                    {e.last_error.clone().map(|err| {
                        let full = err.clone();
                        view! { <div class="error-text small clamp" title=full>{err}</div> }
                    })}
                    <div class="muted small">"answered "<RelTime at=e.last_ok_at/></div>
                </td>
                <td class="num nowrap" data-testid=format!("engine-containers-{n}")>{format!("{}/{}", o.running, e.containers)}</td>
                <td class="num">{figure(o.host.cpu_pct, Resource::Cpu, format!("engine-cpu-{n}"))}</td>
                <td class="num">{figure(o.host.memory_pct, Resource::Memory, format!("engine-memory-{n}"))}</td>
                <td class="num">
                    {figure(disk.as_ref().map(|d| d.pct), if disk.as_ref().is_some_and(|d| d.kind == "inodes") { Resource::Inodes } else { Resource::Disk }, format!("engine-worst-disk-{n}"))}
                    {disk.map(|d| view! { <div class="muted small">{d.path}{(d.kind == "inodes").then_some(" inodes")}</div> })}
                    {(o.host.checks == 0).then(|| view! { <div class="muted small" title="Add host checks naming this engine on the Checks page">"no host checks"</div> })}
                </td>
                <td>{match (&e.version, &e.api_version) {
                    (None, None) => view! { <span class="muted">"—"</span> }.into_any(),
                    (v, a) => view! {
                        <span>{v.clone().unwrap_or_default()}</span>
                        {a.clone().map(|a| view! { <div class="muted small">"API "{a}</div> })}
                    }.into_any(),
                }}</td>
                <td class="num" data-testid=format!("engine-updates-{n}")>{match o.updates {
                    0 => view! { <span class="muted">{format!("0 of {}", o.services)}</span> }.into_any(),
                    u => view! { <span class="pill pill-update" title=format!("{u} of the {} services on this engine have a newer image", o.services)><span aria-hidden="true">"⬆"</span>" "{format!("{u} update{}", if u == 1 { "" } else { "s" })}</span> }.into_any(),
                }}</td>
                <td class="nowrap">
                    <button class="btn btn-small" data-testid=format!("engine-disk-{n}")
                        on:click=move |_| disk_for.set(Some(disk_target.clone()))>"Disk & clean-up"</button>
                    {admin.then(|| view! {
                        " "<button class="btn btn-small btn-danger" data-testid=format!("engine-remove-{n}")
                            on:click=move |_| { remove_target.set(Some(target.clone())); confirm_open.set(true); }>"Remove"</button>
                    })}
                </td>
            </tr>
        }
    };

    view! {
        <div class="page-head">
            <h1>"Docker Engines"</h1>
        </div>
        <p class="lede">"Every engine's host at a glance: Opsdeck watches each engine's events for the state of its containers; CPU, memory and disk come from the host checks that name the engine."</p>
        {move || notice.get().map(|n| match n {
            Ok(m) => view! { <div class="notice notice-ok" role="status">{m}</div> }.into_any(),
            Err(m) => view! { <div class="notice notice-error" role="alert">{m}</div> }.into_any(),
        })}
        <Confirm open=confirm_open
            title=Signal::derive(move || remove_target.get().map(|(_, n)| format!("Remove engine {n}?")).unwrap_or_default())
            message=Signal::derive(move || remove_target.get().map(|(_, n)| format!("Opsdeck stops watching {n}: services on it show as unknown or missing. Its containers keep running.")).unwrap_or_default())
            confirm_label="Remove"
            on_confirm=Callback::new(move |_| if let Some((id, n)) = remove_target.get_untracked() {
                leptos::task::spawn_local(async move {
                    notice.set(Some(api::engines::remove(id).await.map(|_| format!("Removed {n}.")).map_err(|e| e.message)));
                    reload.update(|x| *x += 1);
                });
            })/>
        <div class="toolbar">
            <input class="search" type="search" placeholder="Filter by name or endpoint" aria-label="Filter engines" data-testid="engines-search"
                prop:value=move || query.get() on:input=move |e| query.set(event_target_value(&e))/>
            <select aria-label="Show engines" data-testid="engines-show" on:change=move |e| show.set(event_target_value(&e))>
                <option value="all">"All engines"</option>
                <option value="down">"Not connected"</option>
                <option value="problems">"Host problems"</option>
                <option value="updates">"With updates"</option>
            </select>
        </div>
        <Transition fallback=|| view! { <Loading rows=3/> }>
            {move || engines.get().map(|r| match r {
                Err(e) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                Ok(list) if list.is_empty() => view! {
                    <EmptyState title="No Docker Engines yet">
                        {if admin {
                            view! { <p>"Add one below, e.g. "<code>"unix:///var/run/docker.sock"</code>" for the engine on this host."</p> }.into_any()
                        } else {
                            view! { <p>"An admin adds the engines Opsdeck should watch."</p> }.into_any()
                        }}
                    </EmptyState>
                }.into_any(),
                Ok(list) => {
                    let total = list.len();
                    let down = list.iter().filter(|o| o.engine.state != EngineState::Connected).count();
                    let q = query.get().trim().to_lowercase();
                    let which = show.get();
                    let mut shown: Vec<EngineOverview> = list.into_iter()
                        .filter(|o| q.is_empty() || o.engine.name.to_lowercase().contains(&q) || o.engine.endpoint.to_lowercase().contains(&q))
                        .filter(|o| match which.as_str() {
                            "down" => o.engine.state != EngineState::Connected,
                            "problems" => o.host.status.is_some_and(|s| s >= CheckStatus::Warning),
                            "updates" => o.updates > 0,
                            _ => true,
                        })
                        .collect();
                    let (by, rev) = sort.get();
                    shown.sort_by(|a, b| compare(a, b, by));
                    if rev {
                        shown.reverse();
                    }
                    let summary = view! {
                        <p class="summary muted" data-testid="engines-summary">
                            {format!("{total} engine{}", if total == 1 { "" } else { "s" })}" · "
                            {if down == 0 {
                                view! { <span class="ok-text">"✓ all connected"</span> }.into_any()
                            } else {
                                view! { <span class="problem-text">{format!("▲ {down} not connected")}</span> }.into_any()
                            }}
                        </p>
                    };
                    if shown.is_empty() {
                        view! { {summary}<EmptyState title="No engines match"><p>"Change the filter."</p></EmptyState> }.into_any()
                    } else {
                        view! {
                            {summary}
                            <div class="table-wrap"><table class="table" data-testid="engines-table">
                                <thead><tr>
                                    {head("Name", SortBy::Name, false)}{head("State", SortBy::State, false)}
                                    {head("Containers", SortBy::Containers, true)}{head("CPU", SortBy::Cpu, true)}
                                    {head("Memory", SortBy::Memory, true)}{head("Worst disk", SortBy::Disk, true)}
                                    <th>"Version"</th>{head("Updates", SortBy::Updates, true)}<th></th>
                                </tr></thead>
                                <tbody>{shown.into_iter().map(row).collect_view()}</tbody>
                            </table></div>
                        }.into_any()
                    }
                }
            })}
        </Transition>
        {move || disk_for.get().map(|(id, name)| view! { <cleanup::EngineCleanup id name/> })}
        {admin.then(|| view! { <AddEngine reload notice/> })}
    }
}

#[component]
fn AddEngine(
    reload: RwSignal<u32>,
    notice: RwSignal<Option<Result<String, String>>>,
) -> impl IntoView {
    let name = RwSignal::new(String::new());
    let endpoint = RwSignal::new(String::new());
    let ca = RwSignal::new(String::new());
    let cert = RwSignal::new(String::new());
    let key = RwSignal::new(String::new());
    let ssh_key = RwSignal::new(String::new());
    // The host key confirmed from the scan, or a fingerprint typed in.
    let host_key = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    let is_ssh = move || endpoint.get().trim().starts_with("ssh://");
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let ssh = endpoint.get_untracked().trim().starts_with("ssh://");
        let req = CreateEngineRequest {
            name: name.get_untracked().trim().to_string(),
            endpoint: endpoint.get_untracked().trim().to_string(),
            tls_ca: non_empty(ca.get_untracked()),
            tls_cert: non_empty(cert.get_untracked()),
            tls_key: non_empty(key.get_untracked()),
            ssh_host_key: non_empty(host_key.get_untracked()).filter(|_| ssh),
            ssh_key: non_empty(ssh_key.get_untracked()).filter(|_| ssh),
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            match api::engines::create(&req).await {
                Ok(e) => {
                    notice.set(Some(Ok(format!("Added {}: connecting…", e.name))));
                    for s in [name, endpoint, ca, cert, key, ssh_key, host_key] {
                        s.set(String::new());
                    }
                    reload.update(|n| *n += 1);
                }
                Err(e) => notice.set(Some(Err(e.message))),
            }
            busy.set(false);
        });
    };
    let field = |label: &'static str,
                 sig: RwSignal<String>,
                 placeholder: &'static str,
                 testid: &'static str| {
        view! {
            <label>{label}
                <input placeholder=placeholder data-testid=testid
                    prop:value=move || sig.get() on:input=move |e| sig.set(event_target_value(&e))/>
            </label>
        }
    };
    view! {
        <form class="card form-grid" on:submit=submit data-testid="add-engine">
            <h2>"Add engine"</h2>
            <label>"Name"
                <input required maxlength="100" placeholder="e.g. local" data-testid="engine-name"
                    prop:value=move || name.get() on:input=move |e| name.set(event_target_value(&e))/>
            </label>
            <label class="span-2">"Endpoint"
                <input required placeholder="unix:///var/run/docker.sock, tcp://host:2376 or ssh://user@host" data-testid="engine-endpoint"
                    prop:value=move || endpoint.get() on:input=move |e| endpoint.set(event_target_value(&e))/>
            </label>
            <button class="btn btn-primary" type="submit" data-testid="engine-submit"
                disabled=move || busy.get() || (is_ssh() && host_key.get().trim().is_empty())>"Add engine"</button>
            <Show when=is_ssh>
                <SshFields endpoint ssh_key host_key/>
            </Show>
            <details class="span-all">
                <summary>"TLS client certificates (for tcp://)"</summary>
                <p class="hint">"Paths on the Opsdeck host of PEM files: all three or none."</p>
                <div class="form-grid">
                    {field("CA certificate", ca, "/etc/opsdeck/docker/ca.pem", "engine-tls-ca")}
                    {field("Client certificate", cert, "/etc/opsdeck/docker/cert.pem", "engine-tls-cert")}
                    {field("Client key", key, "/etc/opsdeck/docker/key.pem", "engine-tls-key")}
                </div>
            </details>
        </form>
    }
}

/// SSH engines: the private key's path and the host key, fetched and
/// confirmed by its fingerprint (or a fingerprint typed in up front).
#[component]
fn SshFields(
    endpoint: RwSignal<String>,
    ssh_key: RwSignal<String>,
    host_key: RwSignal<String>,
) -> impl IntoView {
    let offered = RwSignal::new(None::<Result<Vec<opsdeck_wire::SshHostKey>, String>>);
    let fetching = RwSignal::new(false);
    let fetch = move |_| {
        let ep = endpoint.get_untracked().trim().to_string();
        fetching.set(true);
        host_key.set(String::new());
        leptos::task::spawn_local(async move {
            let got = api::engines::ssh_host_keys(&ep)
                .await
                .map_err(|e| e.message);
            offered.set(Some(got));
            fetching.set(false);
        });
    };
    view! {
        <fieldset class="span-all form-grid" data-testid="engine-ssh">
            <legend>"SSH"</legend>
            <label class="span-2">"Private key file on the Opsdeck host"
                <input placeholder="/etc/opsdeck/ssh/id_ed25519 (empty: ssh's default keys)" data-testid="engine-ssh-key"
                    prop:value=move || ssh_key.get() on:input=move |e| ssh_key.set(event_target_value(&e))/>
            </label>
            <button class="btn" type="button" data-testid="engine-ssh-fetch" on:click=fetch
                disabled=move || fetching.get()>{move || if fetching.get() { "Fetching…" } else { "Fetch host key" }}</button>
            <div class="span-all">
                {move || match offered.get() {
                    None => view! {
                        <p class="hint">"Fetch the host's key and compare its fingerprint with "
                            <code>"ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub"</code>" on the host, or type the fingerprint below."</p>
                    }.into_any(),
                    Some(Err(e)) => view! { <p class="error" role="alert">{e}</p> }.into_any(),
                    Some(Ok(keys)) => view! {
                        <ul class="plain" data-testid="engine-ssh-keys">
                            {keys.into_iter().map(|k| {
                                let line = k.key.clone();
                                let chosen = line.clone();
                                view! {
                                    <li><label class="check">
                                        <input type="radio" name="ssh-host-key"
                                            prop:checked=move || host_key.get() == chosen
                                            on:change=move |_| host_key.set(line.clone())/>
                                        " I checked this fingerprint on the host: "<code>{k.fingerprint}</code>" ("{k.key_type}")"
                                    </label></li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                }}
            </div>
            <label class="span-2">"Or the host key's fingerprint"
                <input placeholder="SHA256:…" data-testid="engine-ssh-fingerprint"
                    prop:value=move || if host_key.get().starts_with("SHA256:") { host_key.get() } else { String::new() }
                    on:input=move |e| host_key.set(event_target_value(&e).trim().to_string())/>
            </label>
        </fieldset>
    }
}
