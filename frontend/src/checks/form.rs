//! The check form ([`CheckForm`]): adds or edits a check of any kind;
//! validation errors are shown under the field they name.

use super::*;

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
    if has_service && existing.is_none() {
        // A service's forecast is of its memory (disks are the host's).
        f.forecast_resource.set("memory".into());
    }
    if !has_service && existing.is_none() {
        // A new host check starts at the handbooks' CPU thresholds.
        set_host_thresholds(&f, Resource::Cpu);
    }
    let engines = LocalResource::new(api::engines::list);
    let error = RwSignal::new(None::<(Option<&'static str>, String)>);
    let busy = RwSignal::new(false);
    // The stored password never follows the check to another server: when
    // the URL's server part (scheme, user, host, port, parameters) differs
    // from the saved one, the form asks for it again (the API refuses
    // otherwise, with a field error shown below the password).
    let saved_server = server_part(&f.url.get_untracked());
    let moved = Memo::new(move |_| has_password && server_part(&f.url.get()) != saved_server);

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
                <span>{move || if uses_token(&f.kind.get()) { "Bearer token (optional)" } else { "Password" }}</span>
                <input type="password" name="password" autocomplete="new-password" data-testid="check-field-password"
                    placeholder=move || if moved.get() { "required again: the server changed" } else if has_password { "unchanged" } else { "none" }
                    required=moved
                    disabled=move || f.clear_password.get()
                    prop:value=move || f.password.get() on:input=move |e| f.password.set(event_target_value(&e))/>
                {move || err_for("password").map(|m| view! { <span class="field-error" role="alert">{m}</span> })}
                {move || (moved.get() && err_for("password").is_none() && !f.clear_password.get()).then(|| view! {
                    <span class="hint" data-testid="check-password-again">"The server changed: enter the password again (or remove it)."</span>
                })}
            </label>
            {has_password.then(|| checkbox("clear_password", "Remove the stored password", f.clear_password))}
            <p class="hint span-all">{move || if uses_token(&f.kind.get()) {
                "The token is stored encrypted and never shown again."
            } else {
                "The password is stored encrypted and never shown again; leave the URL without it."
            }}</p>
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
                <label class:field-invalid=move || err_for("engine").is_some()>
                    <span>"Host"</span>
                    <select name="engine" data-testid="check-field-engine" on:change=move |e| f.engine.set(event_target_value(&e))>
                        <option value="" prop:selected=move || f.engine.get().is_empty()>"The Opsdeck host"</option>
                        {move || {
                            let current = f.engine.get_untracked();
                            let mut names: Vec<String> = engines.get().and_then(Result::ok).unwrap_or_default().into_iter().map(|e| e.name).collect();
                            if !current.is_empty() && !names.contains(&current) {
                                names.push(current.clone());
                            }
                            names.into_iter().map(|n| {
                                let label = format!("Host of engine {n}");
                                let value = n.clone();
                                view! { <option value=value prop:selected=move || f.engine.get() == n>{label}</option> }
                            }).collect_view()
                        }}
                    </select>
                    {move || err_for("engine").map(|m| view! { <span class="field-error" role="alert">{m}</span> })}
                </label>
                <label class:field-invalid=move || err_for("resource").is_some()>
                    <span>"Resource"</span>
                    <select name="resource" data-testid="check-field-resource" on:change=move |e| {
                        let v = event_target_value(&e);
                        if editing.is_none() {
                            // The handbooks' thresholds of the new resource.
                            set_host_thresholds(&f, resource_from(&v));
                        }
                        f.resource.set(v);
                    }>
                        {[("cpu", "CPU"), ("memory", "Memory"), ("disk", "Disk"), ("inodes", "Inodes"), ("load", "Load average per core")].into_iter().map(|(v, l)| view! { <option value=v prop:selected=move || f.resource.get() == v>{l}</option> }).collect_view()}
                    </select>
                    {move || err_for("resource").map(|m| view! { <span class="field-error" role="alert">{m}</span> })}
                </label>
                <Show when=move || matches!(f.resource.get().as_str(), "disk" | "inodes")>
                    {input("path", "Mount point", f.path, "text", "/")}
                </Show>
                <p class="hint span-all">{move || if f.engine.get().is_empty() {
                    "Read on the machine Opsdeck runs on."
                } else {
                    "Read on the engine's host by a short-lived helper container (busybox, no network, read-only, only the mount point bound); removed after each probe."
                }}</p>
                {number("warning_pct", "Warning (%)", f.warning_pct)}
                {number("critical_pct", "Critical (%)", f.critical_pct)}
                {number("sustained_s", "Sustained for (s)", f.sustained_s)}
            }.into_any(),
            "prometheus" => view! {
                <div class="span-2">{input("url", "Prometheus URL", f.url, "url", "http://prometheus:9090")}</div>
                <div class="span-all">{input("query", "PromQL query", f.query, "text", "sum(rate(http_requests_total{code=~\"5..\"}[5m])) / sum(rate(http_requests_total[5m]))")}</div>
                {select("firing", "Grading", f.firing, &[("", "Thresholds on each value"), ("warning", "Warning while it returns series"), ("critical", "Critical while it returns series")])}
                <Show when=move || f.firing.get().is_empty()>
                    {number("warning", "Warning at", f.warning)}
                    {number("critical", "Critical at", f.critical)}
                    {checkbox("below", "Lower is worse", f.below)}
                </Show>
                {number("sustained_s", "Sustained for (s)", f.sustained_s)}
                {checkbox("tls_verify", "Verify the TLS certificate", f.tls_verify)}
                {password()}
                <p class="hint span-all">{move || if f.firing.get().is_empty() { "Each series the query returns is graded; the worst decides. The server checks the query when you save." } else { "An alert expression: any series it returns fires (with its labels shown), none is OK. The server checks the query when you save." }}</p>
            }.into_any(),
            "scrape" => view! {
                <div class="span-2">{input("url", "Metrics URL", f.url, "url", "http://api:8080/metrics")}</div>
                {select("measure", "Measure", f.measure, &[
                    ("ratio", "Ratio of two counters (%)"),
                    ("quantile", "Histogram quantile"),
                    ("rate", "Counter rate (per second)"),
                    ("gauge", "Gauge value"),
                ])}
                {move || match f.measure.get().as_str() {
                    "ratio" => view! {
                        <div class="span-2">{input("numerator", "Numerator series", f.numerator, "text", "http_requests_total{code=~\"5..\"}")}</div>
                        <div class="span-2">{input("denominator", "Denominator series", f.denominator, "text", "http_requests_total")}</div>
                    }.into_any(),
                    "quantile" => view! {
                        <div class="span-2">{input("histogram", "Histogram (without _bucket)", f.histogram, "text", "http_request_duration_seconds")}</div>
                        {input("quantile", "Quantile", f.quantile, "number", "0.95")}
                    }.into_any(),
                    _ => view! {
                        <div class="span-2">{input("series", "Series", f.series, "text", "queue_length{queue=\"mail\"}")}</div>
                    }.into_any(),
                }}
                {number("window_s", "Window (s)", f.window_s)}
                {number("warning", "Warning at", f.warning)}
                {number("critical", "Critical at", f.critical)}
                {number("sustained_s", "Sustained for (s)", f.sustained_s)}
                {checkbox("below", "Lower is worse", f.below)}
                {checkbox("tls_verify", "Verify the TLS certificate", f.tls_verify)}
                {password()}
                <p class="hint span-all">"Opsdeck scrapes the target itself every interval and computes what PromQL would over the window: a ratio in percent (5xx over all requests), a quantile in ms for a *_seconds histogram. Series are PromQL selectors: name{label=\"value\", code=~\"5..\"}."</p>
            }.into_any(),
            "log_pattern" => view! {
                <div class="span-2">{input("pattern", "Lines containing", f.pattern, "text", "ERROR (empty: every line of the level)")}</div>
                {select("level", "Level", f.level, &[("", "Any level"), ("warn", "Warnings and worse"), ("error", "Errors and worse"), ("fatal", "Fatal only")])}
                {checkbox("regex", "Regular expression", f.pattern_regex)}
                {number("window_s", "Counted over (s)", f.window_s)}
                {number("warning_count", "Warning from (lines)", f.warning_count)}
                {number("critical_count", "Critical from (lines)", f.critical_count)}
                <p class="hint span-all">"The service's containers' logs are followed live; the newest matching lines show with the result and on the incident it opens."</p>
            }.into_any(),
            "forecast" => view! {
                {select("resource", "Resource", f.forecast_resource, if has_service { &[("memory", "Memory of the service")] } else { &[("disk", "Disk (a mount)"), ("memory", "Memory of the host")] })}
                <Show when=move || f.forecast_resource.get() == "disk">
                    {input("path", "Mount point", f.path, "text", "/")}
                </Show>
                {number("warning_days", "Warning when full within (days)", f.forecast_warning_days)}
                {number("critical_days", "Critical when full within (days)", f.forecast_critical_days)}
                <p class="hint span-all">"A least-squares line through the last 14 days of the resource history (hourly): days until full at that rate. Unknown until a day of history exists."</p>
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
        let (interval, timeout, fail_after, recover_after) = match schedule_numbers(&f) {
            Ok(c) => c,
            Err(e) => return fail(e),
        };
        let password = f.password_input(&kind);
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
                    error.try_set(Some(server_error(e, &kind)));
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
            {editing.is_none().then(|| view! { <PresetPicker fields=f has_service=has_service/> })}
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

/// The handbooks' host-check thresholds of `resource` in the form.
fn set_host_thresholds(f: &Fields, resource: Resource) {
    let (warning, critical) = resource.host_thresholds();
    f.warning_pct.set(num_text(warning));
    f.critical_pct.set(num_text(critical));
}

/// A database URL without its path (the database): what a stored password
/// is bound to.
fn server_part(url: &str) -> String {
    let url = url.trim();
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    let query = tail.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut params: Vec<&str> = query.split('&').filter(|p| !p.is_empty()).collect();
    params.sort_unstable();
    format!(
        "{}|{}|{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase(),
        params.join("&")
    )
}

/// "Start from a handbook rule": fills the form from one of
/// [`opsdeck_wire::metric_presets`] (its kind, measure and thresholds),
/// keeping a URL already typed.
#[component]
fn PresetPicker(fields: Fields, has_service: bool) -> impl IntoView {
    let presets: Vec<_> = opsdeck_wire::metric_presets("")
        .into_iter()
        .filter(|p| kind_allowed(p.spec.kind(), has_service))
        .collect();
    let chosen = RwSignal::new(String::new());
    let source = {
        let presets = presets.clone();
        move || {
            let key = chosen.get();
            presets
                .iter()
                .find(|p| p.key == key)
                .map(|p| format!("From the handbooks: {}.", p.source))
        }
    };
    let pick = {
        let presets = presets.clone();
        move |key: String| {
            chosen.set(key.clone());
            let Some(p) = presets.iter().find(|p| p.key == key) else {
                return;
            };
            let url = fields.url.get_untracked();
            fields.set_spec(&p.spec);
            fields.url.set(url);
            if fields.name.get_untracked().trim().is_empty() {
                fields
                    .name
                    .set(p.title.split(':').next().unwrap_or(p.title).to_string());
            }
        }
    };
    view! {
        <label class="span-all">
            <span>"Start from a handbook rule"</span>
            <select name="preset" data-testid="check-preset" on:change=move |e| pick(event_target_value(&e))>
                <option value="">"None: set the check up yourself"</option>
                {presets.iter().map(|p| view! { <option value=p.key>{p.title}</option> }).collect_view()}
            </select>
            {move || source().map(|s| view! { <span class="hint" data-testid="check-preset-source">{s}</span> })}
        </label>
    }
}
