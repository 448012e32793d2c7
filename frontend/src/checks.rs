//! Health checks. The checks page (`/checks`): every check with its service,
//! kind, state and last result, filtered by state and kind; host checks (no
//! service) are added here; admins see the check engine's figures and the
//! retention and report settings. Operators import a Prometheus rules
//! file as checks from here ([`RulesImport`], `/checks/import-rules`).
//!
//! The pieces the service page shares live here too: [`CheckTable`] (with
//! "Run now", edit and delete for operators), [`CheckForm`] (add or edit a
//! check of any kind), [`CheckHistoryView`] (latency chart, uptime, state
//! changes) and [`HeartbeatUrl`].

mod chart;
mod fields;
mod form;
mod rules_import;
mod settings;
mod table;
pub use chart::*;
pub use fields::*;
pub use form::*;
pub use rules_import::RulesImport;
pub use settings::*;
pub use table::*;

use std::str::FromStr;
use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::{
    Check, CheckHistory, CheckInput, CheckSpec, CheckStatus, ContainerCheck,
    ContainerResourcesCheck, FiringLevel, ForecastCheck, HealthSettings, HeartbeatCheck, HostCheck,
    HttpCheck, HttpMethod, LogLevel, LogPatternCheck, MysqlCheck, PostgresCheck, ProbeResult,
    PrometheusCheck, RedisCheck, Resource, Role, ScrapeCheck, ScrapeMeasure, TcpCheck, TlsCheck,
};
use wasm_bindgen::JsCast;

use crate::api::{self, ApiError};
use crate::live::use_interval;
use crate::session::current_role;
use crate::states::uptime_text;
use crate::states::{check_status, CheckStatusPill, ALL_CHECK_STATUSES};
use crate::status_store::use_status_store;
use crate::time::{duration_ms, RelTime};
use crate::ui::{Confirm, EmptyState, ErrorState, Loading, Pill};

/// Rows shown before "Show all".
const PAGE: usize = 500;

/// Every kind, in the order the kind selector lists them.
pub const ALL_KINDS: [&str; 14] = [
    "http",
    "tcp",
    "container",
    "container_resources",
    "log_pattern",
    "scrape",
    "prometheus",
    "postgres",
    "mysql",
    "redis",
    "tls",
    "host",
    "forecast",
    "heartbeat",
];

pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "http" => "HTTP",
        "tcp" => "TCP",
        "container" => "Container",
        "container_resources" => "Container resources",
        "postgres" => "PostgreSQL",
        "mysql" => "MySQL",
        "redis" => "Redis",
        "tls" => "TLS certificate",
        "host" => "Host resource",
        "heartbeat" => "Heartbeat",
        "log_pattern" => "Log pattern",
        "prometheus" => "Prometheus query",
        "scrape" => "Metric scrape",
        "forecast" => "Capacity forecast",
        _ => "Other",
    }
}

/// Kinds that need a service (its containers), and kinds only the host has.
fn kind_allowed(kind: &str, has_service: bool) -> bool {
    match kind {
        "container" | "container_resources" | "log_pattern" => has_service,
        "host" => !has_service,
        _ => true,
    }
}

fn uses_password(kind: &str) -> bool {
    matches!(
        kind,
        "postgres" | "mysql" | "redis" | "prometheus" | "scrape"
    )
}

/// Kinds whose optional secret is a bearer token, not a password.
fn uses_token(kind: &str) -> bool {
    matches!(kind, "prometheus" | "scrape")
}

fn resource_str(r: Resource) -> &'static str {
    match r {
        Resource::Cpu => "cpu",
        Resource::Memory => "memory",
        Resource::Disk => "disk",
        Resource::Inodes => "inodes",
        Resource::Load => "load",
    }
}

fn resource_from(s: &str) -> Resource {
    match s {
        "memory" => Resource::Memory,
        "disk" => Resource::Disk,
        "inodes" => Resource::Inodes,
        "load" => Resource::Load,
        _ => Resource::Cpu,
    }
}

fn method_str(m: HttpMethod) -> &'static str {
    match m {
        HttpMethod::Get => "GET",
        HttpMethod::Head => "HEAD",
        HttpMethod::Post => "POST",
    }
}

/// A scrape check's measure as PromQL would say it, shortened.
pub fn measure_text(m: &ScrapeMeasure) -> String {
    match m {
        ScrapeMeasure::Rate { series } => format!("rate({series})"),
        ScrapeMeasure::Ratio {
            numerator,
            denominator,
        } => format!("{numerator} / {denominator}"),
        ScrapeMeasure::Quantile {
            histogram,
            quantile,
        } => format!("p{} {histogram}", quantile * 100.0),
        ScrapeMeasure::Gauge { series } => series.clone(),
    }
}

/// What the check looks at, in a few words: its URL, host:port, resource.
pub fn target_of(spec: &CheckSpec) -> String {
    match spec {
        CheckSpec::Container(_) => "the service's containers".into(),
        CheckSpec::Http(h) => format!("{} {}", method_str(h.method), h.url),
        CheckSpec::Tcp(t) => format!("{}:{}", t.host, t.port),
        CheckSpec::Postgres(p) => p.url.clone(),
        CheckSpec::Mysql(m) => m.url.clone(),
        CheckSpec::Redis(r) => r.url.clone(),
        CheckSpec::Tls(t) => format!("{}:{}", t.host, t.port),
        CheckSpec::Host(h) => {
            let what = match &h.path {
                Some(p) => format!("{} {p}", resource_str(h.resource)),
                None => resource_str(h.resource).into(),
            };
            match &h.engine {
                Some(e) => format!("{what} on the host of {e}"),
                None => what,
            }
        }
        CheckSpec::ContainerResources(c) => resource_str(c.resource).into(),
        CheckSpec::Heartbeat(h) => format!("every {} s (+{} s grace)", h.period_s, h.grace_s),
        CheckSpec::Prometheus(p) => p.query.clone(),
        CheckSpec::Scrape(c) => format!("{} of {}", measure_text(&c.measure), c.url),
        CheckSpec::Forecast(c) => match &c.path {
            Some(p) => format!(
                "disk {p} full within {} / {} days",
                c.warning_days, c.critical_days
            ),
            None => format!(
                "memory full within {} / {} days",
                c.warning_days, c.critical_days
            ),
        },
        CheckSpec::LogPattern(l) => {
            let level = l
                .level
                .map(|v| format!("{}+ ", v.as_str()))
                .unwrap_or_default();
            let what = if l.pattern.is_empty() {
                "lines".to_string()
            } else {
                format!("\"{}\"", l.pattern)
            };
            format!("{level}{what} in {} s", l.window_s)
        }
    }
}

fn latency_text(ms: Option<f64>) -> String {
    ms.map(|ms| duration_ms(ms.round() as i64))
        .unwrap_or_else(|| "—".into())
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Copies text to the clipboard (asynchronously); false when the browser
/// offers no clipboard here (e.g. plain http).
fn copy_text(text: &str) -> bool {
    use js_sys::{Function, Reflect};
    use wasm_bindgen::JsValue;
    let Some(window) = web_sys::window() else {
        return false;
    };
    let clipboard = Reflect::get(window.as_ref(), &JsValue::from_str("navigator"))
        .and_then(|n| Reflect::get(&n, &JsValue::from_str("clipboard")));
    let Ok(clipboard) = clipboard else {
        return false;
    };
    if clipboard.is_undefined() || clipboard.is_null() {
        return false;
    }
    let Ok(write) = Reflect::get(&clipboard, &JsValue::from_str("writeText")) else {
        return false;
    };
    match write.dyn_into::<Function>() {
        Ok(f) => f.call1(&clipboard, &JsValue::from_str(text)).is_ok(),
        Err(_) => false,
    }
}

/// The full heartbeat URL (this page's origin and the check's secret path)
/// with a copy button.
#[component]
pub fn HeartbeatUrl(path: String) -> impl IntoView {
    let origin = web_sys::window()
        .and_then(|w| w.location().origin().ok())
        .unwrap_or_default();
    let url = format!("{origin}{path}");
    let copied = RwSignal::new(None::<bool>);
    let input = NodeRef::<leptos::html::Input>::new();
    let to_copy = url.clone();
    let copy = move |_| {
        let ok = copy_text(&to_copy);
        if !ok {
            if let Some(el) = input.get_untracked() {
                el.select();
            }
        }
        copied.set(Some(ok));
    };
    view! {
        <div class="heartbeat-url" data-testid="heartbeat-url">
            <label class="span-all">"Heartbeat URL: have the job call it (GET or POST) at the end of each run"
                <span class="copy-row">
                    <input class="mono" readonly node_ref=input data-testid="heartbeat-url-value" prop:value=url.clone()
                        on:focus=move |_| if let Some(el) = input.get_untracked() { el.select() }/>
                    <button type="button" class="btn" data-testid="heartbeat-copy" on:click=copy>"Copy"</button>
                </span>
            </label>
            {move || copied.get().map(|ok| if ok {
                view! { <span class="ok-text small" role="status">"✓ Copied"</span> }.into_any()
            } else {
                view! { <span class="muted small" role="status">"Selected: press Ctrl+C (⌘C) to copy."</span> }.into_any()
            })}
            <p class="hint">"Keep it secret: anyone with this URL can report the job as alive. Example: "
                <code class="wrap-anywhere">{format!("curl -fsS -m 10 {url}")}</code></p>
        </div>
    }
}

/// Refetches (bumps `reload`) a little after the status board changes.
pub fn use_status_refresh(reload: RwSignal<u32>) {
    let store = use_status_store();
    let pending = StoredValue::new(false);
    Effect::new(move |prev: Option<u64>| {
        let v = store.version.get();
        if prev.is_some_and(|p| p != v) && !pending.get_value() {
            pending.set_value(true);
            set_timeout(
                move || {
                    pending.try_set_value(false);
                    reload.try_update(|n| *n = n.wrapping_add(1));
                },
                Duration::from_millis(1500),
            );
        }
        v
    });
}

/// After a save: what to tell (and the heartbeat URL of a new heartbeat
/// check).
#[component]
pub fn SavedNotice(saved: RwSignal<Option<(bool, Check)>>) -> impl IntoView {
    move || {
        saved.get().map(|(created, c)| {
            view! {
                <div class="notice notice-ok notice-block" role="status" data-testid="check-saved">
                    <div class="btn-row">
                        <span>{if created { "Added check " } else { "Saved check " }}<strong>{c.name.clone()}</strong>"."</span>
                        <span class="spacer"></span>
                        <button class="btn btn-ghost btn-small" aria-label="Dismiss" on:click=move |_| saved.set(None)>"✕"</button>
                    </div>
                    {(created && c.heartbeat_path.is_some()).then(|| view! {
                        <HeartbeatUrl path=c.heartbeat_path.clone().unwrap_or_default()/>
                    })}
                </div>
            }
        })
    }
}

#[component]
pub fn Checks() -> impl IntoView {
    let role = current_role();
    let reload = RwSignal::new(0u32);
    let bump = move || reload.try_update(|n| *n = n.wrapping_add(1)).unwrap_or(());
    let list = LocalResource::new(move || {
        reload.get();
        api::checks::list()
    });
    use_status_refresh(reload);
    use_interval(Duration::from_secs(30), bump);

    let data = Memo::new(move |_| list.get());
    let phase = Memo::new(move |_| {
        data.with(|d| match d {
            None => 0,
            Some(Err(_)) => 1,
            Some(Ok(v)) if v.is_empty() => 2,
            Some(Ok(_)) => 3,
        })
    });
    let status = RwSignal::new(String::new());
    let kind = RwSignal::new(String::new());
    let query = RwSignal::new(String::new());
    let filtered = Memo::new(move |_| {
        let st = status.get();
        let k = kind.get();
        let q = query.get().trim().to_lowercase();
        let mut v: Vec<Check> = data.with(|d| match d {
            Some(Ok(v)) => v
                .iter()
                .filter(|c| {
                    (st.is_empty() || c.status.as_str() == st)
                        && (k.is_empty() || c.spec.kind() == k)
                        && (q.is_empty()
                            || c.name.to_lowercase().contains(&q)
                            || c.service
                                .as_deref()
                                .is_some_and(|s| s.to_lowercase().contains(&q)))
                })
                .cloned()
                .collect(),
            _ => Vec::new(),
        });
        // Worst first, then by service and name.
        v.sort_by(|a, b| {
            b.status
                .cmp(&a.status)
                .then_with(|| a.service.cmp(&b.service))
                .then_with(|| a.name.cmp(&b.name))
        });
        v
    });
    let selected = RwSignal::new(None::<i64>);
    let form = RwSignal::new(None::<FormMode>);
    let saved = RwSignal::new(None::<(bool, Check)>);
    let on_edit = Callback::new(move |c: Check| {
        saved.set(None);
        form.set(Some(FormMode::Edit(Box::new(c))));
    });
    let on_changed = Callback::new(move |_| bump());
    let selected_check = Memo::new(move |_| {
        let id = selected.get()?;
        data.with_untracked(|d| match d {
            Some(Ok(v)) => v.iter().find(|c| c.id == id).cloned(),
            _ => None,
        })
    });

    view! {
        <div class="page-head">
            <h1>"Checks"</h1>
            <span class="spacer"></span>
            {(role >= Role::Operator).then(|| view! {
                <a class="btn" href="/checks/import-rules" data-testid="import-rules">"Import Prometheus rules"</a>
            })}
            {(role >= Role::Operator).then(|| view! {
                <button class="btn btn-primary" data-testid="add-check"
                    on:click=move |_| { saved.set(None); form.set(Some(FormMode::Add)); }>"Add host check"</button>
            })}
        </div>
        <p class="lede">"Every health check, of services and of the Opsdeck host. Service checks are added on the service's page."</p>
        <SavedNotice saved/>
        {move || form.get().map(|mode| {
            let on_saved = Callback::new(move |c: Check| {
                let created = form.get_untracked() == Some(FormMode::Add);
                form.set(None);
                saved.set(Some((created, c)));
                bump();
            });
            let on_cancel = Callback::new(move |_| form.set(None));
            match mode {
                FormMode::Add => view! { <CheckForm service_id=None on_saved on_cancel/> }.into_any(),
                FormMode::Edit(c) => view! { <CheckForm service_id=c.service_id existing=*c on_saved on_cancel/> }.into_any(),
            }
        })}
        <div class="toolbar">
            <input class="search" type="search" placeholder="Search check or service" aria-label="Search checks"
                data-testid="checks-search" prop:value=move || query.get() on:input=move |e| query.set(event_target_value(&e))/>
            <select aria-label="Status filter" data-testid="checks-status-filter" on:change=move |e| status.set(event_target_value(&e))>
                <option value="">"All statuses"</option>
                {ALL_CHECK_STATUSES.iter().map(|s| view! { <option value=s.as_str()>{check_status(*s).2}</option> }).collect_view()}
            </select>
            <select aria-label="Kind filter" data-testid="checks-kind-filter" on:change=move |e| kind.set(event_target_value(&e))>
                <option value="">"All kinds"</option>
                {ALL_KINDS.iter().map(|k| view! { <option value=*k>{kind_label(k)}</option> }).collect_view()}
            </select>
            <span class="muted small">{move || {
                let shown = filtered.with(Vec::len);
                let total = data.with(|d| d.as_ref().and_then(|r| r.as_ref().ok()).map_or(0, Vec::len));
                if shown == total { format!("{total} check{}", if total == 1 { "" } else { "s" }) } else { format!("{shown} of {total} checks") }
            }}</span>
        </div>
        {move || match phase.get() {
            0 => view! { <Loading rows=5/> }.into_any(),
            1 => {
                let m = data.with_untracked(|d| match d { Some(Err(e)) => e.message.clone(), _ => String::new() });
                view! { <ErrorState message=m retry=Callback::new(move |_| bump())/> }.into_any()
            }
            2 => view! {
                <EmptyState title="No checks yet">
                    <p>"Open a service to add checks of it (HTTP, TCP, databases, TLS certificates, containers, heartbeats)"
                    {(role >= Role::Operator).then_some(", or add a check of the Opsdeck host here")}"."</p>
                    <a class="btn" href="/services">"Services"</a>
                </EmptyState>
            }.into_any(),
            _ => view! {
                <Show when=move || !filtered.with(Vec::is_empty) fallback=move || view! {
                    <EmptyState title="No checks match">
                        <p>"Change the search or the filters."</p>
                    </EmptyState>
                }>
                    <CheckTable checks=Signal::derive(move || filtered.get()) show_service=true selected on_edit on_changed/>
                </Show>
            }.into_any(),
        }}
        {move || selected_check.get().map(|c| view! {
            <div class="card"><CheckHistoryView check=c on_close=Callback::new(move |_| selected.set(None))/></div>
        })}
        {(role >= Role::Admin).then(|| view! {
            <EngineStatsCard/>
            <SettingsForm/>
        })}
    }
}
