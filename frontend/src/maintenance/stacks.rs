//! The stacks Opsdeck knows (compose projects of the inventory), their
//! services and their actuators (mode, state, last error). Admins set the
//! actuation: none, proxy (page, snippet, reload command; presets for nginx
//! and busybox httpd) or runbook (one runbook on enable, one on disable),
//! and remove it.

use std::collections::BTreeMap;

use leptos::prelude::*;
use opsdeck_wire::{
    ActuationMode, Actuator, ActuatorWrite, MaintenanceStack, ProxyActuation, RunbookActuation,
};

use super::{mode_help, mode_text, stack_mode, PageData};
use crate::api;
use crate::time::RelTime;
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

/// Pill kind, icon and meaning of an actuator state.
fn state_look(s: &str) -> (&'static str, &'static str, &'static str) {
    match s {
        "off" => ("unknown", "○", "Not applied."),
        "enabling" => (
            "degraded",
            "…",
            "Being applied (or interrupted while being applied: the next change restores first).",
        ),
        "on" => ("maintenance", "⚒", "Applied: the stack is in maintenance."),
        "disabling" => (
            "degraded",
            "↺",
            "Being undone (or interrupted while being undone: the next change restores first).",
        ),
        _ => ("unknown", "?", "Unknown state."),
    }
}

/// One line of what an actuator does.
fn actuator_text(a: &Actuator) -> String {
    match a.def.mode {
        ActuationMode::None => "Marking and suppression only.".into(),
        ActuationMode::Proxy => match &a.def.proxy {
            Some(p) => {
                let mut t = format!("Proxy {}: page {}", p.service, p.page_path);
                if let Some(s) = p.snippet_path.as_deref().filter(|s| !s.is_empty()) {
                    t.push_str(&format!(", snippet {s}"));
                }
                if !p.reload.is_empty() {
                    t.push_str(&format!(", then `{}`", p.reload.join(" ")));
                }
                t
            }
            None => "Proxy (not configured).".into(),
        },
        ActuationMode::Runbook => match &a.def.runbooks {
            Some(r) => format!("Runbook {} on enable, {} on disable.", r.enable, r.disable),
            None => "Runbooks (not configured).".into(),
        },
    }
}

#[component]
pub(super) fn Stacks(data: PageData) -> impl IntoView {
    let admin = data.admin;
    let editing = RwSignal::new(None::<String>);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let remove_target = RwSignal::new(None::<String>);
    let remove_open = RwSignal::new(false);
    let remove = Callback::new(move |_| {
        let Some(stack) = remove_target.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let r = api::maintenance::remove_actuator(&stack).await;
            notice.try_set(Some(
                r.map(|_| format!("Removed the actuation of {stack}."))
                    .map_err(|e| e.message),
            ));
            data.bump_stacks();
        });
    });

    let card = move |s: MaintenanceStack| {
        let name = s.stack.clone();
        let mode = stack_mode(&s);
        let state = s
            .actuator
            .as_ref()
            .map(|a| a.state.clone())
            .unwrap_or_else(|| "off".into());
        let (kind, icon, help) = state_look(&state);
        let n_edit = name.clone();
        let n_remove = name.clone();
        let n_form = name.clone();
        let n_is = name.clone();
        let has_actuator = s.actuator.is_some();
        let removable = has_actuator && state == "off";
        let existing = s.actuator.clone();
        let services = s.services.clone();
        view! {
            <article class="maint-stack" data-testid=format!("stack-{name}") data-mode=mode_text(mode) data-state=state.clone()>
                <div class="card-head">
                    <h3 class="maint-stack-name">{name.clone()}</h3>
                    <span class=format!("tag maint-mode maint-mode-{}", mode_text(mode)) title=mode_help(mode)>{mode_text(mode)}</span>
                    {has_actuator.then(|| view! {
                        <span class=format!("pill pill-{kind}") data-testid=format!("actuator-state-{name}") data-state=state.clone() title=help>
                            <span aria-hidden="true">{icon}</span>" "{state.clone()}
                        </span>
                    })}
                    <span class="spacer"></span>
                    {admin.then(|| view! {
                        <button class="btn btn-small" data-testid=format!("actuator-edit-{name}")
                            on:click=move |_| { notice.set(None); editing.set(Some(n_edit.clone())); }>
                            {if has_actuator { "Edit actuation" } else { "Set actuation" }}
                        </button>
                        {has_actuator.then(|| view! {
                            <button class="btn btn-small btn-danger" data-testid=format!("actuator-remove-{name}")
                                disabled=!removable
                                title=if removable { "Remove the actuation" } else { "Only while it is off" }
                                on:click=move |_| { remove_target.set(Some(n_remove.clone())); remove_open.set(true); }>"Remove"</button>
                        })}
                    })}
                </div>
                <ul class="chips small maint-stack-services">
                    {if services.is_empty() {
                        view! { <li class="muted">"no services"</li> }.into_any()
                    } else {
                        services.iter().map(|n| view! { <li class="tag">{n.clone()}</li> }).collect_view().into_any()
                    }}
                </ul>
                {s.actuator.as_ref().map(|a| view! {
                    <p class="small maint-actuator-text wrap-anywhere">{actuator_text(a)}
                        {a.changed_at.map(|at| view! { <span class="muted">" · changed "<RelTime at=Some(at)/></span> })}
                    </p>
                    {a.error.clone().map(|e| view! { <p class="error-text small wrap-anywhere" data-testid=format!("actuator-error-{}", a.stack)>{e}</p> })}
                })}
                {move || (admin && editing.get().as_deref() == Some(n_is.as_str())).then(|| {
                    let on_saved = Callback::new(move |a: Actuator| {
                        editing.set(None);
                        notice.set(Some(Ok(format!("Saved the actuation of {}: {}.", a.stack, mode_text(a.def.mode)))));
                        data.bump_stacks();
                    });
                    let on_cancel = Callback::new(move |_| editing.set(None));
                    view! { <ActuatorForm stack=n_form.clone() existing=existing.clone() services=data.service_names.get_untracked() on_saved on_cancel/> }
                })}
            </article>
        }
    };

    view! {
        <section class="card maint-section" data-testid="maint-stacks">
            <div class="card-head">
                <h2>"Stacks"</h2>
            </div>
            <p class="muted small maint-section-lede">"Maintenance of a whole stack can also act: the proxy serves the maintenance page, or runbooks run. Disabling restores exactly what was there before."</p>
            {move || notice.get().map(|n| match n {
                Ok(m) => view! { <div class="notice notice-ok" role="status" data-testid="stack-notice">{m}</div> }.into_any(),
                Err(m) => view! { <div class="notice notice-error" role="alert" data-testid="stack-notice">{m}</div> }.into_any(),
            })}
            {move || match data.stacks.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState title="Cannot list the stacks" message=e.message retry=Callback::new(move |_| data.bump_stacks())/> }.into_any(),
                Some(Ok(v)) if v.is_empty() => view! {
                    <EmptyState title="No stacks">
                        <p>"Stacks are the compose projects of the inventory: import a compose file on the "<a href="/inventory">"Inventory import"</a>" page."</p>
                    </EmptyState>
                }.into_any(),
                Some(Ok(v)) => view! {
                    <div class="maint-stacks">{v.into_iter().map(card).collect_view()}</div>
                }.into_any(),
            }}
            <Confirm open=remove_open
                title=Signal::derive(move || remove_target.get().map(|s| format!("Remove the actuation of {s}?")).unwrap_or_default())
                message=Signal::derive(|| "Maintenance of this stack then only marks its services and suppresses alarms.".to_string())
                confirm_label="Remove" on_confirm=remove/>
        </section>
    }
}

/// A preset of the proxy fields.
struct Preset {
    key: &'static str,
    label: &'static str,
    page_path: &'static str,
    snippet_path: &'static str,
    snippet: &'static str,
    reload: &'static [&'static str],
}

const NGINX_SNIPPET: &str = "# Opsdeck maintenance mode: placed on enable, removed on disable.
# conf.d is read inside http { }: this server answers every request that no
# other server_name claims with 503 and the maintenance page.
server {
    listen 80 default_server;
    listen [::]:80 default_server;
    server_name _;
    root {{page_dir}};
    error_page 503 /{{page_file}};
    location = /{{page_file}} { internal; }
    location / { return 503; }
}
";

const PRESETS: [Preset; 2] = [
    Preset {
        key: "nginx",
        label: "nginx",
        page_path: "/usr/share/nginx/html/maintenance.html",
        snippet_path: "/etc/nginx/conf.d/maintenance.conf",
        snippet: NGINX_SNIPPET,
        reload: &["nginx", "-s", "reload"],
    },
    Preset {
        key: "busybox",
        label: "busybox httpd",
        page_path: "/www/index.html",
        snippet_path: "/etc/httpd.conf",
        snippet: "# Opsdeck maintenance mode: {{page_path}} is served until it ends.\n",
        reload: &["kill", "-HUP", "1"],
    },
];

fn params_text(p: &BTreeMap<String, serde_json::Value>) -> String {
    if p.is_empty() {
        String::new()
    } else {
        serde_json::to_string(p).unwrap_or_default()
    }
}

fn parse_params(s: &str, which: &str) -> Result<BTreeMap<String, serde_json::Value>, String> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(BTreeMap::new());
    }
    serde_json::from_str(s)
        .map_err(|e| format!("The {which} parameters are not a JSON object: {e}"))
}

#[component]
fn ActuatorForm(
    stack: String,
    existing: Option<Actuator>,
    /// Every service name (the proxy may be outside the stack).
    services: Vec<String>,
    on_saved: Callback<Actuator>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let def = existing.map(|a| a.def);
    let proxy = def.as_ref().and_then(|d| d.proxy.clone());
    let rb = def.as_ref().and_then(|d| d.runbooks.clone());
    let mode = RwSignal::new(def.as_ref().map(|d| d.mode).unwrap_or(ActuationMode::Proxy));
    let service = RwSignal::new(
        proxy
            .as_ref()
            .map(|p| p.service.clone())
            .unwrap_or_default(),
    );
    let page_path = RwSignal::new(
        proxy
            .as_ref()
            .map(|p| p.page_path.clone())
            .unwrap_or_default(),
    );
    let snippet_path = RwSignal::new(
        proxy
            .as_ref()
            .and_then(|p| p.snippet_path.clone())
            .unwrap_or_default(),
    );
    let snippet = RwSignal::new(
        proxy
            .as_ref()
            .map(|p| p.snippet.clone())
            .unwrap_or_default(),
    );
    let reload = RwSignal::new(
        proxy
            .as_ref()
            .map(|p| p.reload.join("\n"))
            .unwrap_or_default(),
    );
    let enable = RwSignal::new(rb.as_ref().map(|r| r.enable.clone()).unwrap_or_default());
    let disable = RwSignal::new(rb.as_ref().map(|r| r.disable.clone()).unwrap_or_default());
    let enable_params = RwSignal::new(
        rb.as_ref()
            .map(|r| params_text(&r.enable_params))
            .unwrap_or_default(),
    );
    let disable_params = RwSignal::new(
        rb.as_ref()
            .map(|r| params_text(&r.disable_params))
            .unwrap_or_default(),
    );
    let runbooks = LocalResource::new(api::runbooks::list);
    let runbooks = Memo::new(move |_| {
        runbooks.get().map(|r| {
            r.map(|mut v| {
                v.sort_by(|a, b| a.name.cmp(&b.name));
                v
            })
        })
    });

    let apply = move |p: &Preset| {
        page_path.set(p.page_path.into());
        snippet_path.set(p.snippet_path.into());
        snippet.set(p.snippet.into());
        reload.set(p.reload.join("\n"));
    };

    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let stack_name = stack.clone();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let m = mode.get_untracked();
        let body = match m {
            ActuationMode::None => ActuatorWrite {
                mode: m,
                proxy: None,
                runbooks: None,
            },
            ActuationMode::Proxy => {
                let svc = service.get_untracked().trim().to_string();
                let page = page_path.get_untracked().trim().to_string();
                if svc.is_empty() || page.is_empty() {
                    return error.set(Some("Give the proxy service and the page path.".into()));
                }
                let sp = snippet_path.get_untracked().trim().to_string();
                ActuatorWrite {
                    mode: m,
                    proxy: Some(ProxyActuation {
                        service: svc,
                        page_path: page,
                        snippet_path: (!sp.is_empty()).then_some(sp),
                        snippet: snippet.get_untracked(),
                        reload: reload
                            .get_untracked()
                            .lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty())
                            .map(String::from)
                            .collect(),
                    }),
                    runbooks: None,
                }
            }
            ActuationMode::Runbook => {
                let en = enable.get_untracked();
                let dis = disable.get_untracked();
                if en.is_empty() || dis.is_empty() {
                    return error.set(Some("Choose the enable and the disable runbook.".into()));
                }
                let ep = match parse_params(&enable_params.get_untracked(), "enable") {
                    Ok(p) => p,
                    Err(m) => return error.set(Some(m)),
                };
                let dp = match parse_params(&disable_params.get_untracked(), "disable") {
                    Ok(p) => p,
                    Err(m) => return error.set(Some(m)),
                };
                ActuatorWrite {
                    mode: m,
                    proxy: None,
                    runbooks: Some(RunbookActuation {
                        enable: en,
                        enable_params: ep,
                        disable: dis,
                        disable_params: dp,
                    }),
                }
            }
        };
        busy.set(true);
        error.set(None);
        let path = stack_name.clone();
        leptos::task::spawn_local(async move {
            let r = api::maintenance::save_actuator(&path, &body).await;
            busy.try_set(false);
            match r {
                Ok(a) => on_saved.run(a),
                Err(e) => {
                    error.try_set(Some(e.message));
                }
            }
        });
    };

    let datalist = format!("proxy-services-{stack}");
    let datalist2 = datalist.clone();
    let runbook_select = move |which: RwSignal<String>, testid: &'static str| {
        move || {
            match runbooks.get() {
            None => view! { <select disabled><option>"Loading…"</option></select> }.into_any(),
            Some(Err(e)) => view! { <p class="error-text small">"Cannot list the runbooks: "{e.message}</p> }.into_any(),
            Some(Ok(v)) => view! {
                <select data-testid=testid on:change=move |e| which.set(event_target_value(&e))>
                    <option value="" prop:selected=move || which.with(String::is_empty)>"Choose a runbook…"</option>
                    {v.into_iter().map(|r| {
                        let n = r.name.clone();
                        let n2 = r.name.clone();
                        view! { <option value=n prop:selected=move || which.with(|w| *w == n2)>{format!("{} — {}", r.name, r.title)}</option> }
                    }).collect_view()}
                </select>
            }.into_any(),
        }
        }
    };

    view! {
        <form class="form-grid maint-actuator-form" data-testid="actuator-form" data-stack=stack.clone() on:submit=submit>
            <label>"Actuation"
                <select data-testid="actuator-mode" on:change=move |e| mode.set(match event_target_value(&e).as_str() {
                    "none" => ActuationMode::None,
                    "runbook" => ActuationMode::Runbook,
                    _ => ActuationMode::Proxy,
                })>
                    {[ActuationMode::None, ActuationMode::Proxy, ActuationMode::Runbook].into_iter().map(|m| view! {
                        <option value=mode_text(m) prop:selected=move || mode.get() == m>{format!("{} — {}", mode_text(m), mode_help(m))}</option>
                    }).collect_view()}
                </select>
            </label>
            <Show when=move || mode.get() == ActuationMode::Proxy>
                <div class="span-all btn-row">
                    <span class="muted small">"Presets:"</span>
                    {PRESETS.iter().map(|p| view! {
                        <button type="button" class="btn btn-small" data-testid=format!("actuator-preset-{}", p.key)
                            on:click=move |_| apply(p)>{p.label}</button>
                    }).collect_view()}
                </div>
                <label>"Proxy service"
                    <input required list=datalist.clone() data-testid="actuator-service" placeholder="e.g. proxy" spellcheck="false"
                        prop:value=move || service.get() on:input=move |e| service.set(event_target_value(&e))/>
                    <datalist id=datalist2.clone()>{services.iter().map(|s| view! { <option value=s.clone()></option> }).collect_view()}</datalist>
                    <span class="hint">"Every running container of it gets the page."</span>
                </label>
                <label>"Page path"
                    <input required class="mono" data-testid="actuator-page-path" placeholder="/usr/share/nginx/html/maintenance.html" spellcheck="false"
                        prop:value=move || page_path.get() on:input=move |e| page_path.set(event_target_value(&e))/>
                </label>
                <label>"Snippet path "
                    <input class="mono" data-testid="actuator-snippet-path" placeholder="optional: the page only" spellcheck="false"
                        prop:value=move || snippet_path.get() on:input=move |e| snippet_path.set(event_target_value(&e))/>
                </label>
                <label class="span-all">"Snippet"
                    <textarea rows="8" class="mono" data-testid="actuator-snippet" spellcheck="false"
                        prop:value=move || snippet.get() on:input=move |e| snippet.set(event_target_value(&e))></textarea>
                    <span class="hint">"{{page_path}}, {{page_dir}} and {{page_file}} are replaced."</span>
                </label>
                <label>"Reload command"
                    <textarea rows="3" class="mono" data-testid="actuator-reload" spellcheck="false" placeholder="nginx\n-s\nreload"
                        prop:value=move || reload.get() on:input=move |e| reload.set(event_target_value(&e))></textarea>
                    <span class="hint">"One argument per line, run without a shell after placing and after restoring."</span>
                </label>
            </Show>
            <Show when=move || mode.get() == ActuationMode::Runbook>
                <label>"On enable"
                    {runbook_select(enable, "actuator-enable-runbook")}
                </label>
                <label>"Enable parameters "
                    <input class="mono" data-testid="actuator-enable-params" placeholder="{} (JSON, optional)" spellcheck="false"
                        prop:value=move || enable_params.get() on:input=move |e| enable_params.set(event_target_value(&e))/>
                </label>
                <label>"On disable"
                    {runbook_select(disable, "actuator-disable-runbook")}
                </label>
                <label>"Disable parameters "
                    <input class="mono" data-testid="actuator-disable-params" placeholder="{} (JSON, optional)" spellcheck="false"
                        prop:value=move || disable_params.get() on:input=move |e| disable_params.set(event_target_value(&e))/>
                </label>
                <p class="hint span-all">"The enable runbook runs to its end; if it fails, the disable runbook runs and the period fails."</p>
            </Show>
            {move || error.get().map(|m| view! { <div class="notice notice-error span-all" role="alert" data-testid="actuator-error">{m}</div> })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="actuator-save" disabled=move || busy.get()>"Save actuation"</button>
                <button class="btn" type="button" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}
