//! Docker Engines (`/engines`): which engines Opsdeck watches, whether they
//! answer, their version and negotiated API, how many containers each has.
//! Admins add engines (Unix socket or TCP with TLS files on the Opsdeck
//! host) and remove them. Live through the inventory events, plus a slow
//! poll for connection state changes. Each engine's disk usage and
//! clean-up open below the table ([`cleanup`]).

mod cleanup;

use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::{CreateEngineRequest, Engine, Role};

use crate::api;
use crate::live::{use_interval, use_inventory_events};
use crate::services::non_empty;
use crate::session::current_role;
use crate::states::EngineStatePill;
use crate::time::RelTime;
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

#[component]
pub fn Engines() -> impl IntoView {
    let role = current_role();
    let admin = role >= Role::Admin;
    let reload = RwSignal::new(0u32);
    use_inventory_events(reload);
    use_interval(Duration::from_secs(15), move || reload.update(|n| *n += 1));
    let engines = LocalResource::new(move || {
        reload.get();
        api::engines::list()
    });
    let query = RwSignal::new(String::new());
    let notice = RwSignal::new(None::<Result<String, String>>);
    let remove_target = RwSignal::new(None::<(i64, String)>);
    let confirm_open = RwSignal::new(false);
    let disk_for = RwSignal::new(None::<(i64, String)>);

    let row = move |e: Engine| {
        let target = (e.id, e.name.clone());
        let disk_target = (e.id, e.name.clone());
        view! {
            <tr data-testid=format!("engine-row-{}", e.name)>
                <td class="nowrap"><strong>{e.name.clone()}</strong>{e.tls.then(|| view! { <div class="muted small" title="TLS client certificates configured">"TLS"</div> })}</td>
                <td><code class="wrap-anywhere">{e.endpoint.clone()}</code></td>
                <td><EngineStatePill state=e.state testid=format!("engine-state-{}", e.name)/></td>
                <td>{match (&e.version, &e.api_version) {
                    (None, None) => view! { <span class="muted">"—"</span> }.into_any(),
                    (v, a) => view! {
                        <span>{v.clone().unwrap_or_default()}</span>
                        {a.clone().map(|a| view! { <div class="muted small">"API "{a}</div> })}
                    }.into_any(),
                }}</td>
                <td class="num">{e.containers}</td>
                <td class="cell-error">{match e.last_error.clone() {
                    Some(err) => {
                        let full = err.clone();
                        view! { <span class="error-text small clamp" title=full>{err}</span> }.into_any()
                    }
                    None => view! { <span class="muted">"—"</span> }.into_any(),
                }}</td>
                <td><RelTime at=e.last_ok_at/></td>
                <td><button class="btn btn-small" data-testid=format!("engine-disk-{}", e.name)
                    on:click=move |_| disk_for.set(Some(disk_target.clone()))>"Disk & clean-up"</button></td>
                {admin.then(|| view! {
                    <td><button class="btn btn-small btn-danger" data-testid=format!("engine-remove-{}", e.name)
                        on:click=move |_| { remove_target.set(Some(target.clone())); confirm_open.set(true); }>"Remove"</button></td>
                })}
            </tr>
        }
    };

    view! {
        <div class="page-head">
            <h1>"Docker Engines"</h1>
        </div>
        <p class="lede">"Opsdeck watches these engines' events to know the state of every container."</p>
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
                    let q = query.get().trim().to_lowercase();
                    let shown: Vec<Engine> = list.into_iter()
                        .filter(|e| q.is_empty() || e.name.to_lowercase().contains(&q) || e.endpoint.to_lowercase().contains(&q))
                        .collect();
                    if shown.is_empty() {
                        view! { <EmptyState title="No engines match"><p>"Change the filter."</p></EmptyState> }.into_any()
                    } else {
                        view! {
                            <div class="table-wrap"><table class="table" data-testid="engines-table">
                                <thead><tr>
                                    <th>"Name"</th><th>"Endpoint"</th><th>"State"</th><th>"Version"</th><th class="num">"Containers"</th>
                                    <th>"Last error"</th><th>"Last answered"</th><th></th>{admin.then(|| view! { <th></th> })}
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
