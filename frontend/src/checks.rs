//! Health checks. The checks page (`/checks`): every check with its service,
//! kind, state and last result, filtered by state and kind; host checks (no
//! service) are added here; admins see the check engine's figures and the
//! retention and report settings.
//!
//! The pieces the service page shares live here too: [`CheckTable`] (with
//! "Run now", edit and delete for operators), [`CheckForm`] (add or edit a
//! check of any kind), [`CheckHistoryView`] (latency chart, uptime, state
//! changes) and [`HeartbeatUrl`].

use std::str::FromStr;
use std::time::Duration;

use leptos::prelude::*;
use opsdeck_wire::{
    Check, CheckHistory, CheckInput, CheckSpec, CheckStatus, ContainerCheck,
    ContainerResourcesCheck, HealthSettings, HeartbeatCheck, HostCheck, HttpCheck, HttpMethod,
    MysqlCheck, PostgresCheck, ProbeResult, RedisCheck, Resource, Role, TcpCheck, TlsCheck,
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
pub const ALL_KINDS: [&str; 10] = [
    "http",
    "tcp",
    "container",
    "container_resources",
    "postgres",
    "mysql",
    "redis",
    "tls",
    "host",
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
        _ => "Other",
    }
}

/// Kinds that need a service (its containers), and kinds only the host has.
fn kind_allowed(kind: &str, has_service: bool) -> bool {
    match kind {
        "container" | "container_resources" => has_service,
        "host" => !has_service,
        _ => true,
    }
}

fn uses_password(kind: &str) -> bool {
    matches!(kind, "postgres" | "mysql" | "redis")
}

fn resource_str(r: Resource) -> &'static str {
    match r {
        Resource::Cpu => "cpu",
        Resource::Memory => "memory",
        Resource::Disk => "disk",
        Resource::Inodes => "inodes",
    }
}

fn resource_from(s: &str) -> Resource {
    match s {
        "memory" => Resource::Memory,
        "disk" => Resource::Disk,
        "inodes" => Resource::Inodes,
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
        CheckSpec::Host(h) => match &h.path {
            Some(p) => format!("{} {p}", resource_str(h.resource)),
            None => resource_str(h.resource).into(),
        },
        CheckSpec::ContainerResources(c) => resource_str(c.resource).into(),
        CheckSpec::Heartbeat(h) => format!("every {} s (+{} s grace)", h.period_s, h.grace_s),
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

/// A key that changes when what a check row shows changes.
type CheckKey = (
    i64,
    String,
    Option<String>,
    CheckStatus,
    bool,
    Option<i64>,
    Option<String>,
    String,
    Option<i64>,
);

fn check_key(c: &Check) -> CheckKey {
    (
        c.id,
        c.name.clone(),
        c.service.clone(),
        c.status,
        c.enabled,
        c.last.as_ref().map(|l| l.at.timestamp_millis()),
        c.last.as_ref().map(|l| l.message.clone()),
        target_of(&c.spec),
        c.status_since.map(|t| t.timestamp_millis()),
    )
}

/// The checks as a table. Clicking a name selects the check (its history
/// opens below, shown by the caller); operators get "Run now", edit and
/// delete.
#[component]
pub fn CheckTable(
    #[prop(into)] checks: Signal<Vec<Check>>,
    /// Adds a service column (the checks page).
    #[prop(optional)]
    show_service: bool,
    selected: RwSignal<Option<i64>>,
    on_edit: Callback<Check>,
    /// After a run or a deletion.
    on_changed: Callback<()>,
) -> impl IntoView {
    let operator = current_role() >= Role::Operator;
    let running = RwSignal::new(None::<i64>);
    let run_result = RwSignal::new(None::<(String, Result<ProbeResult, String>)>);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let delete_target = RwSignal::new(None::<(i64, String)>);
    let delete_open = RwSignal::new(false);
    let limit = RwSignal::new(PAGE);

    let run = move |id: i64, name: String| {
        running.set(Some(id));
        run_result.set(None);
        leptos::task::spawn_local(async move {
            let r = api::checks::run(id).await;
            running.try_set(None);
            run_result.try_set(Some((name, r.map_err(|e| e.message))));
            on_changed.run(());
        });
    };
    let delete = Callback::new(move |_| {
        let Some((id, name)) = delete_target.get_untracked() else {
            return;
        };
        leptos::task::spawn_local(async move {
            let r = api::checks::remove(id).await;
            notice.try_set(Some(
                r.map(|_| format!("Deleted check {name}."))
                    .map_err(|e| e.message),
            ));
            if selected.try_get_untracked().flatten() == Some(id) {
                selected.try_set(None);
            }
            on_changed.run(());
        });
    });

    let row = move |c: Check| {
        let id = c.id;
        let name = c.name.clone();
        let for_edit = c.clone();
        let run_name = c.name.clone();
        let del_name = c.name.clone();
        let last_at = c.last.as_ref().map(|l| l.at);
        let message = c
            .last
            .as_ref()
            .map(|l| l.message.clone())
            .unwrap_or_default();
        let latency = latency_text(c.last.as_ref().and_then(|l| l.latency_ms));
        let target = target_of(&c.spec);
        view! {
            <tr data-testid=format!("check-row-{}", c.name) data-status=c.status.as_str()
                class:row-selected=move || selected.get() == Some(id)>
                <td class="cell-main">
                    <button type="button" class="link-button strong-link" data-testid=format!("check-open-{name}")
                        aria-expanded=move || (selected.get() == Some(id)).to_string()
                        title="Show the history"
                        on:click=move |_| selected.update(|s| *s = if *s == Some(id) { None } else { Some(id) })>
                        {name.clone()}
                    </button>
                    {(!c.enabled).then(|| view! { <span class="edited" title="Paused: not probed">"paused"</span> })}
                    <div class="muted small check-target" title=target.clone()>{target.clone()}</div>
                </td>
                {show_service.then(|| match (c.service_id, c.service.clone()) {
                    (Some(sid), name) => view! {
                        <td><a href=format!("/services/{sid}")>{name.unwrap_or_else(|| format!("#{sid}"))}</a></td>
                    }.into_any(),
                    (None, _) => view! { <td><span class="muted">"host"</span></td> }.into_any(),
                })}
                <td class="nowrap">{kind_label(c.spec.kind())}</td>
                <td>
                    <CheckStatusPill status=c.status testid=format!("check-status-{}", c.name)/>
                    {c.status_since.map(|at| view! { <div class="muted small">"since "<RelTime at=Some(at)/></div> })}
                </td>
                <td class="cell-error"><span class="clamp" title=message.clone()>{message.clone()}</span></td>
                <td class="num nowrap">{latency}</td>
                <td class="nowrap"><RelTime at=last_at/></td>
                {operator.then(|| view! {
                    <td><div class="actions">
                        <button class="btn btn-small" data-testid=format!("check-run-{}", run_name)
                            disabled=move || running.get().is_some()
                            on:click=move |_| run(id, run_name.clone())>
                            {move || if running.get() == Some(id) { "Running…" } else { "Run now" }}
                        </button>
                        <button class="btn btn-small" data-testid=format!("check-edit-{}", c.name)
                            on:click=move |_| on_edit.run(for_edit.clone())>"Edit"</button>
                        <button class="btn btn-small btn-danger" data-testid=format!("check-delete-{}", c.name)
                            on:click=move |_| { delete_target.set(Some((id, del_name.clone()))); delete_open.set(true); }>"Delete"</button>
                    </div></td>
                })}
            </tr>
        }
    };

    view! {
        {move || notice.get().map(|n| match n {
            Ok(m) => view! { <div class="notice notice-ok" role="status">{m}</div> }.into_any(),
            Err(m) => view! { <div class="notice notice-error" role="alert">{m}</div> }.into_any(),
        })}
        {move || run_result.get().map(|(name, r)| match r {
            Ok(p) => {
                let (kind, _, _) = check_status(p.status);
                view! {
                    <div class=format!("action-result run-result rr-{kind}") role="status" data-testid="run-result">
                        <div class="action-line">
                            <strong>{name}</strong>
                            <CheckStatusPill status=p.status/>
                            <span>{p.message.clone()}</span>
                            {p.latency_ms.map(|ms| view! { <span class="muted">{format!("· {}", duration_ms(ms.round() as i64))}</span> })}
                            <span class="spacer"></span>
                            <button class="btn btn-ghost btn-small" aria-label="Dismiss" on:click=move |_| run_result.set(None)>"✕"</button>
                        </div>
                        {(!p.metrics.is_empty()).then(|| view! {
                            <ul class="chips small">{p.metrics.iter().map(|m| view! {
                                <li><span class="muted">{m.name.clone()}</span>" "{format!("{}", (m.value * 100.0).round() / 100.0)}</li>
                            }).collect_view()}</ul>
                        })}
                    </div>
                }.into_any()
            }
            Err(m) => view! {
                <div class="action-result action-result-error" role="alert" data-testid="run-result">
                    <Pill kind="outage" icon="✕" word="refused"/>" "<strong>{name}</strong>" "<span>{m}</span>
                </div>
            }.into_any(),
        })}
        <Confirm open=delete_open
            title=Signal::derive(move || delete_target.get().map(|(_, n)| format!("Delete check {n}?")).unwrap_or_default())
            message=Signal::derive(move || delete_target.get().map(|(_, n)| format!("{n} stops being probed; its history goes with it.")).unwrap_or_default())
            confirm_label="Delete" on_confirm=delete/>
        <div class="table-wrap"><table class="table checks-table" data-testid="checks-table">
            <thead><tr>
                <th>"Check"</th>
                {show_service.then(|| view! { <th>"Service"</th> })}
                <th>"Kind"</th><th>"Status"</th><th>"Last result"</th><th class="num">"Latency"</th><th>"Last probe"</th>
                {operator.then(|| view! { <th><span class="sr-only">"Actions"</span></th> })}
            </tr></thead>
            <tbody>
                <For each=move || checks.with(|v| v.iter().take(limit.get()).cloned().collect::<Vec<_>>())
                    key=check_key children=row/>
            </tbody>
        </table></div>
        {move || {
            let n = checks.with(Vec::len);
            let l = limit.get();
            (n > l).then(|| view! {
                <div class="btn-row more-row">
                    <span class="muted small">{format!("{l} of {n} shown.")}</span>
                    <button class="btn" on:click=move |_| limit.set(usize::MAX)>{format!("Show all {n}")}</button>
                </div>
            })
        }}
    }
}

/// The form's fields, as typed (numbers are parsed on submit).
#[derive(Clone, Copy)]
struct Fields {
    kind: RwSignal<String>,
    name: RwSignal<String>,
    interval_s: RwSignal<String>,
    timeout_ms: RwSignal<String>,
    fail_after: RwSignal<String>,
    recover_after: RwSignal<String>,
    enabled: RwSignal<bool>,
    // HTTP
    url: RwSignal<String>,
    method: RwSignal<String>,
    expect_status: RwSignal<String>,
    body_contains: RwSignal<String>,
    body_regex: RwSignal<String>,
    warning_ms: RwSignal<String>,
    critical_ms: RwSignal<String>,
    tls_verify: RwSignal<bool>,
    max_redirects: RwSignal<String>,
    // TCP, TLS
    host: RwSignal<String>,
    port: RwSignal<String>,
    server_name: RwSignal<String>,
    warning_days: RwSignal<String>,
    critical_days: RwSignal<String>,
    // Databases
    password: RwSignal<String>,
    clear_password: RwSignal<bool>,
    connections_warning_pct: RwSignal<String>,
    connections_critical_pct: RwSignal<String>,
    cache_hit_warning_pct: RwSignal<String>,
    replication_lag_warning_s: RwSignal<String>,
    replication_lag_critical_s: RwSignal<String>,
    threads_warning: RwSignal<String>,
    threads_critical: RwSignal<String>,
    memory_warning_pct: RwSignal<String>,
    memory_critical_pct: RwSignal<String>,
    memory_warning_mb: RwSignal<String>,
    // Containers, host
    restarts_warning: RwSignal<String>,
    restarts_critical: RwSignal<String>,
    resource: RwSignal<String>,
    path: RwSignal<String>,
    warning_pct: RwSignal<String>,
    critical_pct: RwSignal<String>,
    sustained_s: RwSignal<String>,
    // Heartbeat
    period_s: RwSignal<String>,
    grace_s: RwSignal<String>,
}

fn s(v: &str) -> RwSignal<String> {
    RwSignal::new(v.to_string())
}

fn num_text(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        v.to_string()
    }
}

impl Fields {
    fn new(kind: &str) -> Fields {
        Fields {
            kind: s(kind),
            name: s(""),
            interval_s: s("60"),
            timeout_ms: s("10000"),
            fail_after: s("2"),
            recover_after: s("2"),
            enabled: RwSignal::new(true),
            url: s(""),
            method: s("GET"),
            expect_status: s(""),
            body_contains: s(""),
            body_regex: s(""),
            warning_ms: s("1000"),
            critical_ms: s("3000"),
            tls_verify: RwSignal::new(true),
            max_redirects: s("0"),
            host: s(""),
            port: s(""),
            server_name: s(""),
            warning_days: s("30"),
            critical_days: s("7"),
            password: s(""),
            clear_password: RwSignal::new(false),
            connections_warning_pct: s("80"),
            connections_critical_pct: s("95"),
            cache_hit_warning_pct: s(""),
            replication_lag_warning_s: s("30"),
            replication_lag_critical_s: s("300"),
            threads_warning: s("140"),
            threads_critical: s("180"),
            memory_warning_pct: s("80"),
            memory_critical_pct: s("95"),
            memory_warning_mb: s(""),
            restarts_warning: s("1"),
            restarts_critical: s("3"),
            resource: s("cpu"),
            path: s(""),
            warning_pct: s("80"),
            critical_pct: s("95"),
            sustained_s: s("300"),
            period_s: s("3600"),
            grace_s: s("60"),
        }
    }

    fn from_check(c: &Check) -> Fields {
        let f = Fields::new(c.spec.kind());
        f.name.set(c.name.clone());
        f.interval_s.set(c.interval_s.to_string());
        f.timeout_ms.set(c.timeout_ms.to_string());
        f.fail_after.set(c.fail_after.to_string());
        f.recover_after.set(c.recover_after.to_string());
        f.enabled.set(c.enabled);
        let set = |sig: RwSignal<String>, v: String| sig.set(v);
        let opt =
            |sig: RwSignal<String>, v: &Option<String>| sig.set(v.clone().unwrap_or_default());
        match &c.spec {
            CheckSpec::Container(x) => {
                set(f.restarts_warning, x.restarts_warning.to_string());
                set(f.restarts_critical, x.restarts_critical.to_string());
            }
            CheckSpec::Http(x) => {
                set(f.url, x.url.clone());
                set(f.method, method_str(x.method).into());
                set(
                    f.expect_status,
                    x.expect_status
                        .iter()
                        .map(u16::to_string)
                        .collect::<Vec<_>>()
                        .join(", "),
                );
                opt(f.body_contains, &x.body_contains);
                opt(f.body_regex, &x.body_regex);
                set(f.warning_ms, x.warning_ms.to_string());
                set(f.critical_ms, x.critical_ms.to_string());
                f.tls_verify.set(x.tls_verify);
                set(f.max_redirects, x.max_redirects.to_string());
            }
            CheckSpec::Tcp(x) => {
                set(f.host, x.host.clone());
                set(f.port, x.port.to_string());
                set(f.warning_ms, x.warning_ms.to_string());
                set(f.critical_ms, x.critical_ms.to_string());
            }
            CheckSpec::Postgres(x) => {
                set(f.url, x.url.clone());
                set(
                    f.connections_warning_pct,
                    num_text(x.connections_warning_pct),
                );
                set(
                    f.connections_critical_pct,
                    num_text(x.connections_critical_pct),
                );
                set(
                    f.cache_hit_warning_pct,
                    x.cache_hit_warning_pct.map(num_text).unwrap_or_default(),
                );
                set(
                    f.replication_lag_warning_s,
                    num_text(x.replication_lag_warning_s),
                );
                set(
                    f.replication_lag_critical_s,
                    num_text(x.replication_lag_critical_s),
                );
            }
            CheckSpec::Mysql(x) => {
                set(f.url, x.url.clone());
                set(f.threads_warning, x.threads_warning.to_string());
                set(f.threads_critical, x.threads_critical.to_string());
            }
            CheckSpec::Redis(x) => {
                set(f.url, x.url.clone());
                set(f.memory_warning_pct, num_text(x.memory_warning_pct));
                set(f.memory_critical_pct, num_text(x.memory_critical_pct));
                set(
                    f.memory_warning_mb,
                    x.memory_warning_mb
                        .map(|v| v.to_string())
                        .unwrap_or_default(),
                );
            }
            CheckSpec::Tls(x) => {
                set(f.host, x.host.clone());
                set(f.port, x.port.to_string());
                opt(f.server_name, &x.server_name);
                set(f.warning_days, x.warning_days.to_string());
                set(f.critical_days, x.critical_days.to_string());
            }
            CheckSpec::Host(x) => {
                set(f.resource, resource_str(x.resource).into());
                opt(f.path, &x.path);
                set(f.warning_pct, num_text(x.warning_pct));
                set(f.critical_pct, num_text(x.critical_pct));
                set(f.sustained_s, x.sustained_s.to_string());
            }
            CheckSpec::ContainerResources(x) => {
                set(f.resource, resource_str(x.resource).into());
                set(f.warning_pct, num_text(x.warning_pct));
                set(f.critical_pct, num_text(x.critical_pct));
                set(f.sustained_s, x.sustained_s.to_string());
            }
            CheckSpec::Heartbeat(x) => {
                set(f.period_s, x.period_s.to_string());
                set(f.grace_s, x.grace_s.to_string());
            }
        }
        f
    }
}

/// A client-side problem with a field: (field key, message).
type FieldError = (&'static str, String);

fn text(sig: RwSignal<String>) -> String {
    sig.get_untracked().trim().to_string()
}

fn opt_text(sig: RwSignal<String>) -> Option<String> {
    let t = text(sig);
    (!t.is_empty()).then_some(t)
}

fn required(sig: RwSignal<String>, key: &'static str) -> Result<String, FieldError> {
    opt_text(sig).ok_or((key, "Required.".into()))
}

fn num<T: FromStr>(sig: RwSignal<String>, key: &'static str) -> Result<T, FieldError> {
    let t = text(sig);
    if t.is_empty() {
        return Err((key, "Required.".into()));
    }
    t.parse()
        .map_err(|_| (key, format!("Not a valid number: {t}")))
}

fn opt_num<T: FromStr>(sig: RwSignal<String>, key: &'static str) -> Result<Option<T>, FieldError> {
    match opt_text(sig) {
        None => Ok(None),
        Some(t) => t
            .parse()
            .map(Some)
            .map_err(|_| (key, format!("Not a valid number: {t}"))),
    }
}

fn port(sig: RwSignal<String>, default: Option<u16>) -> Result<u16, FieldError> {
    match (opt_text(sig), default) {
        (None, Some(d)) => Ok(d),
        (None, None) => Err(("port", "Required.".into())),
        (Some(t), _) => match t.parse::<u16>() {
            Ok(p) if p > 0 => Ok(p),
            _ => Err(("port", "A port from 1 to 65535.".into())),
        },
    }
}

fn build_spec(f: &Fields) -> Result<CheckSpec, FieldError> {
    Ok(match f.kind.get_untracked().as_str() {
        "container" => CheckSpec::Container(ContainerCheck {
            restarts_warning: num(f.restarts_warning, "restarts_warning")?,
            restarts_critical: num(f.restarts_critical, "restarts_critical")?,
        }),
        "http" => {
            let url = required(f.url, "url")?;
            let lower = url.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(("url", "Only http:// and https:// URLs.".into()));
            }
            let mut expect_status = Vec::new();
            for part in text(f.expect_status)
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|p| !p.is_empty())
            {
                match part.parse::<u16>() {
                    Ok(code) if (100..=599).contains(&code) => expect_status.push(code),
                    _ => return Err(("expect_status", format!("Not an HTTP status code: {part}"))),
                }
            }
            CheckSpec::Http(HttpCheck {
                url,
                method: match f.method.get_untracked().as_str() {
                    "HEAD" => HttpMethod::Head,
                    "POST" => HttpMethod::Post,
                    _ => HttpMethod::Get,
                },
                expect_status,
                body_contains: opt_text(f.body_contains),
                body_regex: opt_text(f.body_regex),
                warning_ms: num(f.warning_ms, "warning_ms")?,
                critical_ms: num(f.critical_ms, "critical_ms")?,
                tls_verify: f.tls_verify.get_untracked(),
                max_redirects: num(f.max_redirects, "max_redirects")?,
            })
        }
        "tcp" => CheckSpec::Tcp(TcpCheck {
            host: required(f.host, "host")?,
            port: port(f.port, None)?,
            warning_ms: num(f.warning_ms, "warning_ms")?,
            critical_ms: num(f.critical_ms, "critical_ms")?,
        }),
        "postgres" => CheckSpec::Postgres(PostgresCheck {
            url: required(f.url, "url")?,
            connections_warning_pct: num(f.connections_warning_pct, "connections_warning_pct")?,
            connections_critical_pct: num(f.connections_critical_pct, "connections_critical_pct")?,
            cache_hit_warning_pct: opt_num(f.cache_hit_warning_pct, "cache_hit_warning_pct")?,
            replication_lag_warning_s: num(
                f.replication_lag_warning_s,
                "replication_lag_warning_s",
            )?,
            replication_lag_critical_s: num(
                f.replication_lag_critical_s,
                "replication_lag_critical_s",
            )?,
        }),
        "mysql" => CheckSpec::Mysql(MysqlCheck {
            url: required(f.url, "url")?,
            threads_warning: num(f.threads_warning, "threads_warning")?,
            threads_critical: num(f.threads_critical, "threads_critical")?,
        }),
        "redis" => CheckSpec::Redis(RedisCheck {
            url: required(f.url, "url")?,
            memory_warning_pct: num(f.memory_warning_pct, "memory_warning_pct")?,
            memory_critical_pct: num(f.memory_critical_pct, "memory_critical_pct")?,
            memory_warning_mb: opt_num(f.memory_warning_mb, "memory_warning_mb")?,
        }),
        "tls" => CheckSpec::Tls(TlsCheck {
            host: required(f.host, "host")?,
            port: port(f.port, Some(443))?,
            server_name: opt_text(f.server_name),
            warning_days: num(f.warning_days, "warning_days")?,
            critical_days: num(f.critical_days, "critical_days")?,
        }),
        "host" => {
            let resource = resource_from(&f.resource.get_untracked());
            CheckSpec::Host(HostCheck {
                resource,
                path: matches!(resource, Resource::Disk | Resource::Inodes)
                    .then(|| opt_text(f.path))
                    .flatten(),
                warning_pct: num(f.warning_pct, "warning_pct")?,
                critical_pct: num(f.critical_pct, "critical_pct")?,
                sustained_s: num(f.sustained_s, "sustained_s")?,
            })
        }
        "container_resources" => CheckSpec::ContainerResources(ContainerResourcesCheck {
            resource: match f.resource.get_untracked().as_str() {
                "memory" => Resource::Memory,
                _ => Resource::Cpu,
            },
            warning_pct: num(f.warning_pct, "warning_pct")?,
            critical_pct: num(f.critical_pct, "critical_pct")?,
            sustained_s: num(f.sustained_s, "sustained_s")?,
        }),
        "heartbeat" => CheckSpec::Heartbeat(HeartbeatCheck {
            period_s: num(f.period_s, "period_s")?,
            grace_s: num(f.grace_s, "grace_s")?,
        }),
        other => return Err(("kind", format!("Unknown kind {other}."))),
    })
}

/// Field keys each kind shows (server errors naming one are shown under it).
fn kind_keys(kind: &str) -> &'static [&'static str] {
    match kind {
        "container" => &["restarts_warning", "restarts_critical"],
        "http" => &[
            "url",
            "method",
            "expect_status",
            "body_contains",
            "body_regex",
            "warning_ms",
            "critical_ms",
            "tls_verify",
            "max_redirects",
        ],
        "tcp" => &["host", "port", "warning_ms", "critical_ms"],
        "postgres" => &[
            "url",
            "password",
            "connections_warning_pct",
            "connections_critical_pct",
            "cache_hit_warning_pct",
            "replication_lag_warning_s",
            "replication_lag_critical_s",
        ],
        "mysql" => &["url", "password", "threads_warning", "threads_critical"],
        "redis" => &[
            "url",
            "password",
            "memory_warning_pct",
            "memory_critical_pct",
            "memory_warning_mb",
        ],
        "tls" => &[
            "host",
            "port",
            "server_name",
            "warning_days",
            "critical_days",
        ],
        "host" => &[
            "resource",
            "path",
            "warning_pct",
            "critical_pct",
            "sustained_s",
        ],
        "container_resources" => &["resource", "warning_pct", "critical_pct", "sustained_s"],
        "heartbeat" => &["period_s", "grace_s"],
        _ => &[],
    }
}

const COMMON_KEYS: [&str; 7] = [
    "name",
    "interval_s",
    "timeout_ms",
    "fail_after",
    "recover_after",
    "enabled",
    "kind",
];

/// The form's key for a field the API names (`url`, `interval_s`,
/// `restarts_warning/restarts_critical`), when the form shows it.
fn field_of(field: &str, kind: &str) -> Option<&'static str> {
    let last = field.rsplit(['.', '/']).next()?;
    // Threshold pairs the server names as a whole: under the critical one.
    let last = match (kind, last) {
        ("postgres", "connections") => "connections_critical_pct",
        ("postgres", "replication_lag") => "replication_lag_critical_s",
        ("mysql", "threads") => "threads_critical",
        ("redis", "memory") => "memory_critical_pct",
        ("host", "host") | ("container_resources", "container") => "critical_pct",
        (_, other) => other,
    };
    COMMON_KEYS
        .iter()
        .chain(kind_keys(kind))
        .find(|k| **k == last)
        .copied()
}

/// What the form is for.
#[derive(Clone, Debug, PartialEq)]
pub enum FormMode {
    Add,
    Edit(Box<Check>),
}

/// Adds a check (`existing` unset) or edits one. `service_id` unset: a host
/// check. Validation errors from the server are shown under the field they
/// name, else above the buttons.
#[component]
pub fn CheckForm(
    service_id: Option<i64>,
    #[prop(optional)] existing: Option<Check>,
    on_saved: Callback<Check>,
    on_cancel: Callback<()>,
) -> impl IntoView {
    let editing = existing.as_ref().map(|c| c.id);
    let has_password = existing.as_ref().is_some_and(|c| c.has_password);
    let has_service = existing
        .as_ref()
        .map_or(service_id.is_some(), |c| c.service_id.is_some());
    let heartbeat_path = existing.as_ref().and_then(|c| c.heartbeat_path.clone());
    let f = match &existing {
        Some(c) => Fields::from_check(c),
        None => Fields::new(if has_service { "http" } else { "host" }),
    };
    let error = RwSignal::new(None::<(Option<&'static str>, String)>);
    let busy = RwSignal::new(false);

    let err_for = move |key: &'static str| {
        error.with(|e| match e {
            Some((Some(k), m)) if *k == key => Some(m.clone()),
            _ => None,
        })
    };
    let input = move |key: &'static str,
                      label: &'static str,
                      sig: RwSignal<String>,
                      ty: &'static str,
                      placeholder: &'static str| {
        view! {
            <label class:field-invalid=move || err_for(key).is_some()>
                <span>{label}</span>
                <input type=ty name=key data-testid=format!("check-field-{key}") placeholder=placeholder
                    step=(ty == "number").then_some("any") min=(ty == "number").then_some("0")
                    aria-invalid=move || err_for(key).is_some().to_string()
                    prop:value=move || sig.get() on:input=move |e| sig.set(event_target_value(&e))/>
                {move || err_for(key).map(|m| view! { <span class="field-error" role="alert">{m}</span> })}
            </label>
        }
    };
    let number = move |key: &'static str, label: &'static str, sig: RwSignal<String>| {
        input(key, label, sig, "number", "")
    };
    let select = move |key: &'static str,
                       label: &'static str,
                       sig: RwSignal<String>,
                       options: &'static [(&'static str, &'static str)]| {
        view! {
            <label class:field-invalid=move || err_for(key).is_some()>
                <span>{label}</span>
                <select name=key data-testid=format!("check-field-{key}") on:change=move |e| sig.set(event_target_value(&e))>
                    {options.iter().map(|(v, l)| view! { <option value=*v prop:selected=move || sig.get() == *v>{*l}</option> }).collect_view()}
                </select>
                {move || err_for(key).map(|m| view! { <span class="field-error" role="alert">{m}</span> })}
            </label>
        }
    };
    let checkbox = move |key: &'static str, label: &'static str, sig: RwSignal<bool>| {
        view! {
            <label class="check">
                <input type="checkbox" name=key data-testid=format!("check-field-{key}")
                    prop:checked=move || sig.get() on:change=move |e| sig.set(event_target_checked(&e))/>
                {label}
            </label>
        }
    };
    let password = move || {
        view! {
            <label class:field-invalid=move || err_for("password").is_some()>
                <span>"Password"</span>
                <input type="password" name="password" autocomplete="new-password" data-testid="check-field-password"
                    placeholder=if has_password { "unchanged" } else { "none" }
                    disabled=move || f.clear_password.get()
                    prop:value=move || f.password.get() on:input=move |e| f.password.set(event_target_value(&e))/>
                {move || err_for("password").map(|m| view! { <span class="field-error" role="alert">{m}</span> })}
            </label>
            {has_password.then(|| checkbox("clear_password", "Remove the stored password", f.clear_password))}
            <p class="hint span-all">"The password is stored encrypted and never shown again; leave the URL without it."</p>
        }
    };
    let latency = move || {
        view! {
            {number("warning_ms", "Warning above (ms)", f.warning_ms)}
            {number("critical_ms", "Critical above (ms)", f.critical_ms)}
        }
    };

    let kind_fields = move || -> AnyView {
        match f.kind.get().as_str() {
            "http" => view! {
                <div class="span-2">{input("url", "URL", f.url, "url", "https://example.com/health")}</div>
                {select("method", "Method", f.method, &[("GET", "GET"), ("HEAD", "HEAD"), ("POST", "POST")])}
                {input("expect_status", "Expected status codes", f.expect_status, "text", "200, 204 (empty: 200–399)")}
                {input("body_contains", "Body contains", f.body_contains, "text", "optional")}
                {input("body_regex", "Body matches (regex)", f.body_regex, "text", "optional")}
                {latency()}
                {number("max_redirects", "Max redirects", f.max_redirects)}
                {checkbox("tls_verify", "Verify the TLS certificate", f.tls_verify)}
            }.into_any(),
            "tcp" => view! {
                {input("host", "Host", f.host, "text", "db.internal")}
                {input("port", "Port", f.port, "number", "5432")}
                {latency()}
            }.into_any(),
            "postgres" => view! {
                <div class="span-2">{input("url", "URL (no password)", f.url, "text", "postgres://user@host:5432/db")}</div>
                {password()}
                {number("connections_warning_pct", "Connections warning (%)", f.connections_warning_pct)}
                {number("connections_critical_pct", "Connections critical (%)", f.connections_critical_pct)}
                {input("cache_hit_warning_pct", "Cache hit warning below (%)", f.cache_hit_warning_pct, "number", "optional")}
                {number("replication_lag_warning_s", "Replication lag warning (s)", f.replication_lag_warning_s)}
                {number("replication_lag_critical_s", "Replication lag critical (s)", f.replication_lag_critical_s)}
            }.into_any(),
            "mysql" => view! {
                <div class="span-2">{input("url", "URL (no password)", f.url, "text", "mysql://user@host:3306/db")}</div>
                {password()}
                {number("threads_warning", "Threads connected warning", f.threads_warning)}
                {number("threads_critical", "Threads connected critical", f.threads_critical)}
            }.into_any(),
            "redis" => view! {
                <div class="span-2">{input("url", "URL (no password)", f.url, "text", "redis://host:6379/0")}</div>
                {password()}
                {number("memory_warning_pct", "Memory warning (% of maxmemory)", f.memory_warning_pct)}
                {number("memory_critical_pct", "Memory critical (% of maxmemory)", f.memory_critical_pct)}
                {input("memory_warning_mb", "Memory warning (MiB, without maxmemory)", f.memory_warning_mb, "number", "optional")}
            }.into_any(),
            "tls" => view! {
                {input("host", "Host", f.host, "text", "example.com")}
                {input("port", "Port", f.port, "number", "443")}
                {input("server_name", "Server name (SNI)", f.server_name, "text", "the host")}
                {number("warning_days", "Warning (days left)", f.warning_days)}
                {number("critical_days", "Critical (days left)", f.critical_days)}
            }.into_any(),
            "container" => view! {
                {number("restarts_warning", "Restarts in 10 min: warning", f.restarts_warning)}
                {number("restarts_critical", "Restarts in 10 min: critical", f.restarts_critical)}
                <p class="hint span-all">"Critical when a container is not running or its HEALTHCHECK reports unhealthy."</p>
            }.into_any(),
            "container_resources" => view! {
                {select("resource", "Resource", f.resource, &[("cpu", "CPU (% of one core)"), ("memory", "Memory (% of limit)")])}
                {number("warning_pct", "Warning (%)", f.warning_pct)}
                {number("critical_pct", "Critical (%)", f.critical_pct)}
                {number("sustained_s", "Sustained for (s)", f.sustained_s)}
            }.into_any(),
            "host" => view! {
                {select("resource", "Resource", f.resource, &[("cpu", "CPU"), ("memory", "Memory"), ("disk", "Disk"), ("inodes", "Inodes")])}
                <Show when=move || matches!(f.resource.get().as_str(), "disk" | "inodes")>
                    {input("path", "Mount point", f.path, "text", "/")}
                </Show>
                {number("warning_pct", "Warning (%)", f.warning_pct)}
                {number("critical_pct", "Critical (%)", f.critical_pct)}
                {number("sustained_s", "Sustained for (s)", f.sustained_s)}
            }.into_any(),
            "heartbeat" => view! {
                {number("period_s", "Expected every (s)", f.period_s)}
                {number("grace_s", "Grace (s)", f.grace_s)}
                <p class="hint span-all">"Critical when the job has not called the check's secret URL within period + grace. The URL is shown once the check is saved."</p>
            }.into_any(),
            _ => ().into_any(),
        }
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        error.set(None);
        let kind = f.kind.get_untracked();
        let fail = |(k, m): FieldError| error.set(Some((Some(k), m)));
        let name = match required(f.name, "name") {
            Ok(n) => n,
            Err(e) => return fail(e),
        };
        let spec = match build_spec(&f) {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        let common = (|| -> Result<(u32, u32, u32, u32), FieldError> {
            let interval: u32 = num(f.interval_s, "interval_s")?;
            if interval < 5 {
                return Err(("interval_s", "At least 5 seconds.".into()));
            }
            let timeout: u32 = num(f.timeout_ms, "timeout_ms")?;
            if timeout == 0 {
                return Err(("timeout_ms", "More than 0.".into()));
            }
            let fail_after: u32 = num(f.fail_after, "fail_after")?;
            let recover_after: u32 = num(f.recover_after, "recover_after")?;
            if fail_after == 0 {
                return Err(("fail_after", "At least 1.".into()));
            }
            if recover_after == 0 {
                return Err(("recover_after", "At least 1.".into()));
            }
            Ok((interval, timeout, fail_after, recover_after))
        })();
        let (interval, timeout, fail_after, recover_after) = match common {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let password = if !uses_password(&kind) {
            None
        } else if f.clear_password.get_untracked() {
            Some(String::new())
        } else {
            let p = f.password.get_untracked();
            (!p.is_empty()).then_some(p)
        };
        let input = CheckInput {
            service_id: if editing.is_some() { None } else { service_id },
            name: Some(name),
            spec: Some(spec),
            interval_s: Some(interval),
            timeout_ms: Some(timeout),
            fail_after: Some(fail_after),
            recover_after: Some(recover_after),
            enabled: Some(f.enabled.get_untracked()),
            password,
        };
        busy.set(true);
        leptos::task::spawn_local(async move {
            let r = match editing {
                Some(id) => api::checks::update(id, &input).await,
                None => api::checks::create(&input).await,
            };
            busy.try_set(false);
            match r {
                Ok(c) => {
                    f.password.try_set(String::new());
                    on_saved.run(c);
                }
                Err(e) => {
                    // Under the field it names, without the field's name.
                    let key = e.field.as_deref().and_then(|f| field_of(f, &kind));
                    let rest = e
                        .field
                        .as_deref()
                        .and_then(|f| e.message.strip_prefix(f))
                        .and_then(|r| r.strip_prefix(':'))
                        .map(str::trim)
                        .filter(|r| !r.is_empty());
                    let message = match (key, rest) {
                        (Some(_), Some(rest)) => {
                            let mut c = rest.chars();
                            c.next()
                                .map(|f| f.to_uppercase().chain(c).collect())
                                .unwrap_or_default()
                        }
                        _ => e.message,
                    };
                    error.try_set(Some((key, message)));
                }
            }
        });
    };

    let kinds: Vec<&'static str> = ALL_KINDS
        .into_iter()
        .filter(|k| kind_allowed(k, has_service))
        .collect();

    view! {
        <form class="card form-grid check-form" data-testid="check-form" on:submit=submit novalidate>
            <h2>{match (&existing, has_service) {
                (Some(c), _) => format!("Edit check {}", c.name),
                (None, true) => "Add check".to_string(),
                (None, false) => "Add host check".to_string(),
            }}</h2>
            <label>
                <span>"Kind"</span>
                <select name="kind" data-testid="check-kind" disabled=editing.is_some()
                    title=if editing.is_some() { "The kind of a check cannot change: add a new check instead" } else { "" }
                    on:change=move |e| { f.kind.set(event_target_value(&e)); error.set(None); }>
                    {kinds.into_iter().map(|k| view! { <option value=k prop:selected=move || f.kind.get() == k>{kind_label(k)}</option> }).collect_view()}
                </select>
            </label>
            {input("name", "Name", f.name, "text", "e.g. homepage")}
            {kind_fields}
            <fieldset class="span-all">
                <legend>"Schedule"</legend>
                <div class="form-grid">
                    {number("interval_s", "Every (s, at least 5)", f.interval_s)}
                    {number("timeout_ms", "Timeout (ms)", f.timeout_ms)}
                    {number("fail_after", "Failures before alerting", f.fail_after)}
                    {number("recover_after", "Passes before recovering", f.recover_after)}
                    {checkbox("enabled", "Enabled", f.enabled)}
                </div>
            </fieldset>
            {heartbeat_path.map(|p| view! { <div class="span-all"><HeartbeatUrl path=p/></div> })}
            {move || error.get().and_then(|(k, m)| match k {
                Some(_) => None,
                None => Some(view! { <div class="notice notice-error span-all" role="alert" data-testid="check-form-error">{m}</div> }),
            })}
            {move || error.with(|e| matches!(e, Some((Some(_), _)))).then(|| view! {
                <p class="error-text span-all" data-testid="check-form-error">"Correct the marked field."</p>
            })}
            <div class="span-all btn-row">
                <button class="btn btn-primary" type="submit" data-testid="check-save" disabled=move || busy.get()>
                    {move || match (busy.get(), editing.is_some()) {
                        (true, _) => "Saving…",
                        (false, true) => "Save check",
                        (false, false) => "Add check",
                    }}
                </button>
                <button class="btn" type="button" data-testid="check-cancel" on:click=move |_| on_cancel.run(())>"Cancel"</button>
            </div>
        </form>
    }
}

fn span_ms(range: &str) -> f64 {
    match range {
        "week" => 7.0 * 86_400_000.0,
        "month" => 30.0 * 86_400_000.0,
        _ => 86_400_000.0,
    }
}

/// A round number at or above `v` (1, 2 or 5 times a power of ten).
fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

fn time_label(ms: f64, range: &str) -> String {
    let Some(t) = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64) else {
        return String::new();
    };
    match range {
        "day" => t.format("%H:%M UTC").to_string(),
        _ => t.format("%b %d").to_string(),
    }
}

/// The latency chart: average line over a min–max band, failed buckets in
/// red, warnings in amber. Time runs over the whole range, ending now.
fn history_chart(h: &CheckHistory, range: &str) -> AnyView {
    const W: f64 = 720.0;
    const H: f64 = 160.0;
    let end = now_ms();
    let span = span_ms(range);
    let start = end - span;
    let bucket = if h.resolution == "hour" {
        3_600_000.0
    } else {
        60_000.0
    };
    let mut rollups: Vec<&opsdeck_wire::Rollup> = h.rollups.iter().collect();
    rollups.sort_by_key(|r| r.at);
    let max = rollups
        .iter()
        .filter_map(|r| r.latency_max_ms.or(r.latency_avg_ms))
        .fold(0.0_f64, f64::max);
    let ymax = nice_ceil(max * 1.1);
    let x = |t: f64| ((t - start) / span * W).clamp(0.0, W);
    let y = |v: f64| H - (v / ymax).clamp(0.0, 1.0) * H;

    let mut marks = Vec::new();
    for r in &rollups {
        let t = r.at.timestamp_millis() as f64;
        if r.critical == 0 && r.warning == 0 {
            continue;
        }
        let x0 = x(t);
        let w = (x(t + bucket) - x0).max(1.0);
        let (class, what) = if r.critical > 0 {
            (
                "chart-fail",
                format!("{} failed of {}", r.critical, r.probes),
            )
        } else {
            (
                "chart-warn",
                format!("{} warnings of {}", r.warning, r.probes),
            )
        };
        let title = format!("{}: {what}", r.at.format("%Y-%m-%d %H:%M UTC"));
        marks.push(view! {
            <rect class=class x=format!("{x0:.2}") y="0" width=format!("{w:.2}") height=format!("{H}")><title>{title}</title></rect>
        });
    }

    // Runs of consecutive buckets with a latency.
    let mut runs: Vec<Vec<(f64, f64, f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64, f64, f64)> = Vec::new();
    let mut last_t: Option<f64> = None;
    for r in &rollups {
        let t = r.at.timestamp_millis() as f64;
        let gap = last_t.is_some_and(|l| t - l > bucket * 1.5);
        match r.latency_avg_ms {
            Some(avg) if !gap => {
                let mid = x(t + bucket / 2.0);
                cur.push((
                    mid,
                    y(avg),
                    y(r.latency_min_ms.unwrap_or(avg)),
                    y(r.latency_max_ms.unwrap_or(avg)),
                ));
            }
            Some(avg) => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
                let mid = x(t + bucket / 2.0);
                cur.push((
                    mid,
                    y(avg),
                    y(r.latency_min_ms.unwrap_or(avg)),
                    y(r.latency_max_ms.unwrap_or(avg)),
                ));
            }
            None => {
                if !cur.is_empty() {
                    runs.push(std::mem::take(&mut cur));
                }
            }
        }
        last_t = Some(t);
    }
    if !cur.is_empty() {
        runs.push(cur);
    }
    let shapes = runs
        .into_iter()
        .map(|run| {
            if run.len() == 1 {
                let (cx, cy, lo, hi) = run[0];
                view! {
                    <line class="chart-band-line" x1=format!("{cx:.2}") x2=format!("{cx:.2}") y1=format!("{lo:.2}") y2=format!("{hi:.2}")/>
                    <circle class="chart-dot" cx=format!("{cx:.2}") cy=format!("{cy:.2}") r="2"/>
                }
                .into_any()
            } else {
                let band = run
                    .iter()
                    .map(|(px, _, _, hi)| format!("{px:.2},{hi:.2}"))
                    .chain(run.iter().rev().map(|(px, _, lo, _)| format!("{px:.2},{lo:.2}")))
                    .collect::<Vec<_>>()
                    .join(" ");
                let line = run
                    .iter()
                    .map(|(px, py, _, _)| format!("{px:.2},{py:.2}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                view! {
                    <polygon class="chart-band" points=band/>
                    <polyline class="chart-line" points=line/>
                }
                .into_any()
            }
        })
        .collect_view();
    let grid = [0.25, 0.5, 0.75]
        .into_iter()
        .map(|g| {
            let gy = H - g * H;
            view! { <line class="chart-grid" x1="0" x2=format!("{W}") y1=format!("{gy:.1}") y2=format!("{gy:.1}")/> }
        })
        .collect_view();
    let failed: u32 = rollups.iter().map(|r| r.critical).sum();
    let label = format!(
        "Latency over the last {}: highest {}; {failed} failed probes",
        match range {
            "week" => "7 days",
            "month" => "30 days",
            _ => "24 hours",
        },
        duration_ms(max.round() as i64)
    );
    let title = label.clone();
    view! {
        <div class="chart-wrap">
            <div class="chart-y muted small" aria-hidden="true">
                <span>{duration_ms(ymax as i64)}</span>
                <span>{duration_ms((ymax / 2.0) as i64)}</span>
                <span>"0"</span>
            </div>
            <div class="chart-plot">
                <svg class="chart" data-testid="check-chart" viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none"
                    role="img" aria-label=label>
                    <title>{title}</title>
                    {grid}
                    {marks}
                    {shapes}
                </svg>
                <div class="chart-x muted small" aria-hidden="true">
                    <span>{time_label(start, range)}</span>
                    <span>{time_label(start + span / 2.0, range)}</span>
                    <span>"now"</span>
                </div>
            </div>
        </div>
        <div class="legend small">
            <span class="legend-item"><span class="swatch swatch-line" aria-hidden="true"></span>"average latency"</span>
            <span class="legend-item"><span class="swatch swatch-band" aria-hidden="true"></span>"min–max"</span>
            <span class="legend-item"><span class="swatch swatch-fail" aria-hidden="true"></span>"failed"</span>
            <span class="legend-item"><span class="swatch swatch-warn" aria-hidden="true"></span>"warning"</span>
            <span class="muted">{if h.resolution == "hour" { "per hour" } else { "per minute" }}</span>
        </div>
    }
    .into_any()
}

/// A check's history: latency chart for a day, a week or a month, uptime
/// figures and the state changes.
#[component]
pub fn CheckHistoryView(check: Check, on_close: Callback<()>) -> impl IntoView {
    let id = check.id;
    let range = RwSignal::new("day");
    let reload = RwSignal::new(0u32);
    let history = LocalResource::new(move || {
        reload.get();
        let r = range.get();
        async move { api::checks::history(id, &r).await }
    });
    use_interval(Duration::from_secs(60), move || {
        reload.try_update(|n| *n += 1);
    });
    let heartbeat = check.heartbeat_path.clone();
    view! {
        <section class="history" data-testid="check-history" aria-label=format!("History of {}", check.name)>
            <div class="card-head">
                <h2>"History of "{check.name.clone()}</h2>
                <div class="btn-row" role="group" aria-label="Range">
                    {[("day", "24 hours"), ("week", "7 days"), ("month", "30 days")].into_iter().map(|(r, label)| view! {
                        <button type="button" class="btn btn-small" data-testid=format!("history-range-{r}")
                            class:btn-active=move || range.get() == r aria-pressed=move || (range.get() == r).to_string()
                            on:click=move |_| range.set(r)>{label}</button>
                    }).collect_view()}
                </div>
                <span class="spacer"></span>
                <button type="button" class="btn btn-ghost btn-small" data-testid="history-close" on:click=move |_| on_close.run(())>"Close ✕"</button>
            </div>
            <p class="muted small">{kind_label(check.spec.kind())}" · "{target_of(&check.spec)}" · every "{check.interval_s}" s"</p>
            {heartbeat.map(|p| view! { <HeartbeatUrl path=p/> })}
            <Transition fallback=|| view! { <Loading rows=3/> }>
                {move || history.get().map(|r| match r {
                    Err(e) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                    Ok(h) => {
                        let r = range.get_untracked();
                        let mut events = h.events.clone();
                        events.sort_by_key(|e| std::cmp::Reverse(e.at));
                        view! {
                            <dl class="uptime-figures" data-testid="check-uptime">
                                <div><dt>"Uptime 24 h"</dt><dd data-testid="uptime-day">{uptime_text(h.uptime.day)}</dd></div>
                                <div><dt>"7 days"</dt><dd data-testid="uptime-week">{uptime_text(h.uptime.week)}</dd></div>
                                <div><dt>"30 days"</dt><dd data-testid="uptime-month">{uptime_text(h.uptime.month)}</dd></div>
                            </dl>
                            {if h.rollups.is_empty() {
                                view! { <EmptyState title="No probes in this range yet"><p>"The chart fills as the check runs."</p></EmptyState> }.into_any()
                            } else {
                                history_chart(&h, r)
                            }}
                            <h3>"State changes"</h3>
                            {if events.is_empty() {
                                view! { <p class="muted" data-testid="check-events">"No state changes in this range."</p> }.into_any()
                            } else {
                                view! {
                                    <div class="table-wrap"><table class="table" data-testid="check-events">
                                        <thead><tr><th>"When"</th><th>"Change"</th><th>"Message"</th></tr></thead>
                                        <tbody>{events.into_iter().map(|e| view! {
                                            <tr>
                                                <td class="nowrap"><RelTime at=Some(e.at)/></td>
                                                <td class="nowrap"><CheckStatusPill status=e.from/>" → "<CheckStatusPill status=e.to/></td>
                                                <td class="wrap-anywhere">{e.message.clone()}</td>
                                            </tr>
                                        }).collect_view()}</tbody>
                                    </table></div>
                                }.into_any()
                            }}
                        }.into_any()
                    }
                })}
            </Transition>
        </section>
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

#[component]
fn EngineStatsCard() -> impl IntoView {
    let reload = RwSignal::new(0u32);
    let stats = LocalResource::new(move || {
        reload.get();
        api::checks::engine_stats()
    });
    use_interval(Duration::from_secs(10), move || {
        reload.try_update(|n| *n += 1);
    });
    let stats = Memo::new(move |_| stats.get());
    view! {
        <section class="card" data-testid="engine-stats">
            <div class="card-head"><h2>"Check engine"</h2><span class="muted small">"Refreshed every 10 s."</span></div>
            {move || match stats.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| reload.update(|n| *n += 1))/> }.into_any(),
                Some(Ok(s)) => view! {
                    <dl class="facts facts-2">
                        <dt>"This instance"</dt>
                        <dd>{if s.leader {
                            view! { <Pill kind="ok" icon="✓" word="runs the probes"/> }.into_any()
                        } else {
                            view! { <Pill kind="unknown" icon="‖" word="standby"/> }.into_any()
                        }}</dd>
                        <dt>"Checks"</dt><dd>{s.checks}</dd>
                        <dt>"Probes run"</dt><dd>{s.probes_total}</dd>
                        <dt>"In flight"</dt><dd>{s.in_flight}</dd>
                        <dt>"Start lag p50 / p99"</dt><dd>{format!("{} / {}", duration_ms(s.lag_p50_ms.round() as i64), duration_ms(s.lag_p99_ms.round() as i64))}</dd>
                        <dt>"Start lag max"</dt><dd>{duration_ms(s.lag_max_ms.round() as i64)}</dd>
                        <dt>"Rollup rows written"</dt><dd>{s.rollup_rows_written}</dd>
                        <dt>"State changes written"</dt><dd>{s.events_written}</dd>
                    </dl>
                }.into_any(),
            }}
        </section>
    }
}

#[component]
fn SettingsForm() -> impl IntoView {
    let minute = RwSignal::new(String::new());
    let hour = RwSignal::new(String::new());
    let events = RwSignal::new(String::new());
    let report_time = RwSignal::new(String::new());
    let state = RwSignal::new(None::<Result<(), ApiError>>);
    let busy = RwSignal::new(false);
    let notice = RwSignal::new(None::<Result<String, String>>);
    let fill = move |s: HealthSettings| {
        minute.set(s.minute_retention_days.to_string());
        hour.set(s.hour_retention_days.to_string());
        events.set(s.event_retention_days.to_string());
        report_time.set(s.report_time);
    };
    let load = move || {
        leptos::task::spawn_local(async move {
            match api::checks::settings().await {
                Ok(s) => {
                    fill(s);
                    state.try_set(Some(Ok(())));
                }
                Err(e) => {
                    state.try_set(Some(Err(e)));
                }
            }
        });
    };
    load();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let parse = |sig: RwSignal<String>, what: &str| -> Result<u32, String> {
            match sig.get_untracked().trim().parse::<u32>() {
                Ok(v) if v > 0 => Ok(v),
                _ => Err(format!("{what}: a whole number of days, at least 1.")),
            }
        };
        let input = (|| -> Result<HealthSettings, String> {
            Ok(HealthSettings {
                minute_retention_days: parse(minute, "Minute rollups")?,
                hour_retention_days: parse(hour, "Hourly rollups")?,
                event_retention_days: parse(events, "State changes")?,
                report_time: report_time.get_untracked().trim().to_string(),
            })
        })();
        let input = match input {
            Ok(i) => i,
            Err(m) => return notice.set(Some(Err(m))),
        };
        busy.set(true);
        notice.set(None);
        leptos::task::spawn_local(async move {
            match api::checks::save_settings(&input).await {
                Ok(s) => {
                    fill(s);
                    notice.try_set(Some(Ok("Settings saved.".into())));
                }
                Err(e) => {
                    notice.try_set(Some(Err(e.message)));
                }
            }
            busy.try_set(false);
        });
    };
    let days = move |label: &'static str, testid: &'static str, sig: RwSignal<String>| {
        view! {
            <label>{label}
                <input type="number" min="1" step="1" data-testid=testid
                    prop:value=move || sig.get() on:input=move |e| sig.set(event_target_value(&e))/>
            </label>
        }
    };
    view! {
        <section class="card" data-testid="health-settings">
            <h2>"Retention and daily report"</h2>
            {move || match state.get() {
                None => view! { <Loading rows=2/> }.into_any(),
                Some(Err(e)) => view! { <ErrorState message=e.message retry=Callback::new(move |_| load())/> }.into_any(),
                Some(Ok(())) => view! {
                    <form class="form-grid" on:submit=submit>
                        {days("Minute rollups kept (days)", "settings-minute-days", minute)}
                        {days("Hourly rollups kept (days)", "settings-hour-days", hour)}
                        {days("State changes kept (days)", "settings-event-days", events)}
                        <label>"Daily report at (UTC)"
                            <input type="time" data-testid="settings-report-time"
                                prop:value=move || report_time.get() on:input=move |e| report_time.set(event_target_value(&e))/>
                        </label>
                        <div class="span-all btn-row">
                            <button class="btn btn-primary" type="submit" data-testid="settings-save" disabled=move || busy.get()>"Save settings"</button>
                        </div>
                        {move || notice.get().map(|n| match n {
                            Ok(m) => view! { <div class="notice notice-ok span-all" role="status">{m}</div> }.into_any(),
                            Err(m) => view! { <div class="notice notice-error span-all" role="alert">{m}</div> }.into_any(),
                        })}
                    </form>
                }.into_any(),
            }}
        </section>
    }
}
