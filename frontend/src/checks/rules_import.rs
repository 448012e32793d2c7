//! "Import Prometheus rules" (`/checks/import-rules`, operators): a rules
//! file pasted or uploaded, the server's URL, an optional bearer token and
//! the label naming services; Preview shows one row per proposed check
//! (alert, query, thresholds or firing level, sustain, service, state,
//! notes) and every part of the file no check keeps; Apply (confirmed)
//! creates the ticked rows in one transaction.
//!
//! The token is typed here and sent with each request, never shown back.
//! Ticks and service choices are kept by key across previews.

use std::collections::BTreeMap;

use leptos::prelude::*;
use opsdeck_wire::{
    Role, RuleCheck, RuleCheckState, RulesImportPlan, RulesImportRequest, ServiceOverview,
};
use wasm_bindgen::JsCast;

use super::num_text;
use crate::api::{self, ApiError};
use crate::session::current_role;
use crate::ui::{Confirm, EmptyState, ErrorState, Pill};

/// What the rule becomes: both thresholds, or the level it fires at.
fn grading(c: &RuleCheck) -> String {
    let s = &c.spec;
    match s.firing {
        Some(l) => format!("{} on any series", l.as_str()),
        None => {
            let op = if s.below { "≤" } else { "≥" };
            format!(
                "warning {op} {}, critical {op} {}",
                num_text(s.warning),
                num_text(s.critical)
            )
        }
    }
}

fn sustain_text(s: u32) -> String {
    match s {
        0 => "—".into(),
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

fn state_pill(c: &RuleCheck, applied: bool) -> AnyView {
    if c.query_error.is_some() {
        return view! { <Pill kind="outage" icon="✕" word="query refused"/> }.into_any();
    }
    match (c.state, applied, c.check_id) {
        (_, true, Some(_)) => view! { <Pill kind="ok" icon="✓" word="created"/> }.into_any(),
        (RuleCheckState::Exists, ..) => {
            view! { <Pill kind="ok" icon="✓" word="exists" testid="state-exists"/> }.into_any()
        }
        (RuleCheckState::NameTaken, ..) => {
            view! { <Pill kind="degraded" icon="!" word="name taken"/> }.into_any()
        }
        (RuleCheckState::New, true, None) => {
            view! { <Pill kind="unknown" icon="–" word="not created"/> }.into_any()
        }
        (RuleCheckState::New, ..) => {
            view! { <Pill kind="unknown" icon="+" word="new" testid="state-new"/> }.into_any()
        }
    }
}

/// The user's choices, by key.
#[derive(Clone, Copy)]
struct Choices {
    ticked: RwSignal<BTreeMap<String, bool>>,
    services: RwSignal<BTreeMap<String, Option<i64>>>,
}

impl Choices {
    fn is_ticked(&self, c: &RuleCheck) -> bool {
        c.state == RuleCheckState::New
            && c.query_error.is_none()
            && self
                .ticked
                .with(|t| t.get(&c.key).copied())
                .unwrap_or(c.selected)
    }
}

fn row(
    c: RuleCheck,
    choices: Choices,
    applied: bool,
    services: Signal<Vec<(i64, String)>>,
) -> impl IntoView {
    let key = c.key.clone();
    let (k_tick, k_svc) = (key.clone(), key.clone());
    let c2 = c.clone();
    let can_tick = !applied && c.state == RuleCheckState::New && c.query_error.is_none();
    let ticked = Signal::derive(move || {
        if applied {
            c2.check_id.is_some()
        } else {
            choices.is_ticked(&c2)
        }
    });
    let current = c.service_id;
    let matched = c.label_value.clone();
    view! {
        <tr data-testid=format!("rule-{key}") data-selected=move || ticked.get().to_string()
            class:row-quiet=!can_tick && !applied>
            <td><input type="checkbox" aria-label=format!("Create {}", c.name)
                data-testid=format!("rule-tick-{key}") disabled=!can_tick prop:checked=ticked
                on:change=move |e| {
                    let on = event_target_checked(&e);
                    choices.ticked.update(|t| { t.insert(k_tick.clone(), on); });
                }/></td>
            <td>
                <strong>{c.name.clone()}</strong>
                <div class="muted small">{c.group.clone()}
                    {(c.alerts.len() > 1).then(|| format!(" · {} rules merged", c.alerts.len()))}</div>
            </td>
            <td><code class="wrap-anywhere small">{c.spec.query.clone()}</code>
                {c.query_error.clone().map(|e| view! {
                    <div class="error-text small" data-testid=format!("rule-error-{key}")>{e}</div>
                })}
            </td>
            <td class="nowrap small" data-testid=format!("rule-grading-{key}")>{grading(&c)}</td>
            <td class="nowrap small">{sustain_text(c.spec.sustained_s)}</td>
            <td>
                <select aria-label=format!("Service of {}", c.name) data-testid=format!("rule-service-{key}")
                    disabled=applied
                    on:change=move |e| {
                        let v = event_target_value(&e);
                        choices.services.update(|m| { m.insert(k_svc.clone(), v.parse::<i64>().ok()); });
                    }>
                    <option value="" selected=current.is_none()>"No service"</option>
                    {move || services.get().into_iter().map(|(id, name)| view! {
                        <option value=id.to_string() selected=current == Some(id)>{name}</option>
                    }).collect_view()}
                </select>
                {matched.map(|v| view! { <div class="muted small">"label: "{v}</div> })}
            </td>
            <td>{state_pill(&c, applied)}</td>
            <td><ul class="rule-notes small muted">
                {c.notes.iter().map(|n| view! { <li>{n.clone()}</li> }).collect_view()}
            </ul></td>
        </tr>
    }
}

#[component]
fn Plan(
    plan: RulesImportPlan,
    choices: Choices,
    services: Signal<Vec<(i64, String)>>,
) -> impl IntoView {
    let applied = plan.applied;
    let count = |s: RuleCheckState| plan.checks.iter().filter(|c| c.state == s).count();
    let created = plan.checks.iter().filter(|c| c.check_id.is_some()).count();
    let summary = format!(
        "{} group{}, {} alerting rule{} → {} check{}: {} new, {} exist{}",
        plan.groups,
        if plan.groups == 1 { "" } else { "s" },
        plan.alerting_rules,
        if plan.alerting_rules == 1 { "" } else { "s" },
        plan.checks.len(),
        if plan.checks.len() == 1 { "" } else { "s" },
        count(RuleCheckState::New),
        count(RuleCheckState::Exists),
        match count(RuleCheckState::NameTaken) {
            0 => String::new(),
            n => format!(", {n} with a taken name"),
        }
    );
    let unsupported = plan.unsupported.clone();
    view! {
        <section class="card" data-testid="rules-plan">
            {applied.then(|| view! {
                <div class="notice notice-ok" role="status" data-testid="rules-applied">
                    {format!("Created {created} check{}.", if created == 1 { "" } else { "s" })}
                    " "<a href="/checks">"See them on the checks page"</a>
                </div>
            })}
            <h2>{if applied { "Imported" } else { "Preview" }}</h2>
            <p class="muted" data-testid="rules-summary">{summary}</p>
            {if plan.checks.is_empty() {
                view! {
                    <EmptyState title="No alerting rules to import">
                        <p>"The file has no alerting rules (alert:). What it has is listed below."</p>
                    </EmptyState>
                }.into_any()
            } else {
                view! {
                    <div class="table-wrap"><table class="table rules-table" data-testid="rules-table">
                        <thead><tr>
                            <th><span class="sr-only">"Create"</span></th><th>"Alert"</th><th>"Query"</th>
                            <th>"Grading"</th><th>"For"</th><th>"Service"</th><th>"State"</th><th>"Notes"</th>
                        </tr></thead>
                        <tbody>
                            {plan.checks.into_iter().map(|c| row(c, choices, applied, services)).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
            <h3>"Not imported"</h3>
            {if unsupported.is_empty() {
                view! { <p class="muted" data-testid="rules-unsupported-none">"Nothing: every part of the file is in a check."</p> }.into_any()
            } else {
                view! {
                    <p class="hint">"Parts of the file no check keeps. Nothing is dropped without a line here."</p>
                    <div class="table-wrap"><table class="table" data-testid="rules-unsupported">
                        <thead><tr><th>"Group"</th><th>"Rule"</th><th>"Why"</th></tr></thead>
                        <tbody>
                            {unsupported.into_iter().map(|n| view! {
                                <tr><td>{n.group}</td><td><code>{n.rule}</code></td><td class="small">{n.reason}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table></div>
                }.into_any()
            }}
        </section>
    }
}

/// The page.
#[component]
pub fn RulesImport() -> impl IntoView {
    let role = current_role();
    let yaml = RwSignal::new(String::new());
    let url = RwSignal::new(String::new());
    let token = RwSignal::new(String::new());
    let label = RwSignal::new("service".to_string());
    let tls_verify = RwSignal::new(true);
    let busy = RwSignal::new(false);
    let error = RwSignal::new(None::<ApiError>);
    let plan = RwSignal::new(None::<RulesImportPlan>);
    let confirm = RwSignal::new(false);
    let choices = Choices {
        ticked: RwSignal::new(BTreeMap::new()),
        services: RwSignal::new(BTreeMap::new()),
    };
    let services_res = LocalResource::new(api::services::list);
    let services = Signal::derive(move || {
        let list: Vec<ServiceOverview> =
            services_res.get().and_then(Result::ok).unwrap_or_default();
        list.into_iter()
            .map(|s| (s.service.id, s.service.name))
            .collect::<Vec<_>>()
    });

    let request = move |apply: bool| RulesImportRequest {
        yaml: yaml.get_untracked(),
        url: url.get_untracked().trim().to_string(),
        token: Some(token.get_untracked()).filter(|t| !t.is_empty()),
        tls_verify: tls_verify.get_untracked(),
        attach_label: Some(label.get_untracked().trim().to_string()).filter(|l| !l.is_empty()),
        selected: apply.then(|| {
            plan.with_untracked(|p| {
                p.as_ref()
                    .map(|p| {
                        p.checks
                            .iter()
                            .filter(|c| choices.is_ticked(c))
                            .map(|c| c.key.clone())
                            .collect()
                    })
                    .unwrap_or_default()
            })
        }),
        services: choices.services.get_untracked(),
    };
    let send = move |apply: bool| {
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let req = request(apply);
        leptos::task::spawn_local(async move {
            let r = if apply {
                api::checks::rules_apply(&req).await
            } else {
                api::checks::rules_preview(&req).await
            };
            match r {
                Ok(p) => plan.set(Some(p)),
                Err(e) => error.set(Some(e)),
            }
            busy.set(false);
        });
    };
    let ticked_count = move || {
        plan.with(|p| {
            p.as_ref().map_or(0, |p| {
                if p.applied {
                    0
                } else {
                    p.checks.iter().filter(|c| choices.is_ticked(c)).count()
                }
            })
        })
    };
    let on_file = move |e: leptos::ev::Event| {
        let Some(input) = e
            .target()
            .and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok())
        else {
            return;
        };
        let Some(file) = input.files().and_then(|f| f.get(0)) else {
            return;
        };
        leptos::task::spawn_local(async move {
            match wasm_bindgen_futures::JsFuture::from(file.text()).await {
                Ok(v) => yaml.set(v.as_string().unwrap_or_default()),
                Err(_) => error.set(Some(ApiError {
                    status: 0,
                    code: "file".into(),
                    message: format!("The browser could not read {}.", file.name()),
                    field: None,
                })),
            }
        });
    };

    view! {
        <div class="crumbs"><a href="/checks">"Checks"</a>" / Import Prometheus rules"</div>
        <div class="page-head"><h1>"Import Prometheus rules"</h1></div>
        <p class="lede">"Your alerting rules as Prometheus-query checks: each rule's for becomes the check's sustain time and its severity the check's level; a warning and a critical rule on the same expression become one check with two thresholds."</p>
        {if role < Role::Operator {
            view! { <ErrorState title="Operators only" message="Importing rules creates checks: ask an operator.".to_string()/> }.into_any()
        } else {
            view! {
                <form class="card form-grid rules-form" on:submit=move |ev: leptos::ev::SubmitEvent| { ev.prevent_default(); send(false); }>
                    <label class="span-all">"Rules file (YAML)"
                        <input type="file" accept=".yml,.yaml,text/yaml" data-testid="rules-file" on:change=on_file/>
                    </label>
                    <label class="span-all">"…or paste it"
                        <textarea rows="8" class="mono" spellcheck="false" data-testid="rules-yaml"
                            placeholder="groups:\n  - name: api\n    rules:\n      - alert: HighErrorRate\n        expr: sum(rate(http_requests_total{code=~\"5..\"}[5m])) / sum(rate(http_requests_total[5m])) > 0.05\n        for: 5m\n        labels: {severity: critical, service: api}"
                            prop:value=move || yaml.get() on:input=move |e| yaml.set(event_target_value(&e))></textarea>
                    </label>
                    <label class="span-2">"Prometheus URL"
                        <input type="url" data-testid="rules-url" placeholder="http://prometheus:9090" autocomplete="off"
                            prop:value=move || url.get() on:input=move |e| url.set(event_target_value(&e))/>
                    </label>
                    <label>"Bearer token (optional)"
                        <input type="password" data-testid="rules-token" autocomplete="off"
                            prop:value=move || token.get() on:input=move |e| token.set(event_target_value(&e))/>
                    </label>
                    <label>"Service label"
                        <input data-testid="rules-label" spellcheck="false" autocomplete="off"
                            prop:value=move || label.get() on:input=move |e| label.set(event_target_value(&e))/>
                        <span class="hint">"Names the service: service, job…"</span>
                    </label>
                    <label class="check">
                        <input type="checkbox" prop:checked=move || tls_verify.get() on:change=move |e| tls_verify.set(event_target_checked(&e))/>
                        "Verify the TLS certificate"
                    </label>
                    <div class="span-all btn-row">
                        <button class="btn" type="submit" data-testid="rules-preview" disabled=move || busy.get()>"Preview"</button>
                        <button class="btn btn-primary" type="button" data-testid="rules-apply"
                            disabled=move || busy.get() || ticked_count() == 0
                            on:click=move |_| confirm.set(true)>{move || format!("Import {} check{}", ticked_count(), if ticked_count() == 1 { "" } else { "s" })}</button>
                        <span class="hint" role="status" aria-busy=move || busy.get().to_string()>{move || if busy.get() {
                            "Asking the server about each query…"
                        } else if plan.with(Option::is_none) {
                            "Preview first: the server checks every query."
                        } else {
                            ""
                        }}</span>
                    </div>
                    <p class="hint span-all">"The token is stored encrypted with each check and never shown again."</p>
                </form>
                {move || error.get().map(|e| view! {
                    <div class="notice notice-error notice-block" role="alert" data-testid="rules-error">{e.message}</div>
                })}
                {move || plan.get().map(|p| view! { <Plan plan=p choices services/> })}
                <Confirm open=confirm
                    title=Signal::derive(move || "Import checks".to_string())
                    message=Signal::derive(move || format!("Create {} Prometheus-query check{} querying {}?",
                        ticked_count(), if ticked_count() == 1 { "" } else { "s" }, url.get()))
                    confirm_label="Import" danger=false
                    on_confirm=Callback::new(move |_| send(true))/>
            }.into_any()
        }}
    }
}
