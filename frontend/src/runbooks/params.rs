//! The form of a runbook's typed parameters ([`ParamFields`],
//! [`initial_values`], [`collect_params`]), shared with the schedules page.

use super::*;

// ---------------------------------------------------------------- parameters

/// The form's text for each parameter: `existing` values, else defaults.
pub fn initial_values(
    defs: &[ParamDef],
    existing: Option<&BTreeMap<String, Value>>,
) -> BTreeMap<String, String> {
    defs.iter()
        .map(|d| {
            let v = existing
                .and_then(|e| e.get(&d.name))
                .or(d.default.as_ref())
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                })
                .unwrap_or_default();
            (d.name.clone(), v)
        })
        .collect()
}

pub(super) fn label_of(d: &ParamDef) -> String {
    if d.label.is_empty() {
        d.name.clone()
    } else {
        d.label.clone()
    }
}

/// Typed values from the form's text; the server validates them again
/// (patterns, durations, whether a service exists).
pub fn collect_params(
    defs: &[ParamDef],
    values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, Value>, String> {
    let mut out = BTreeMap::new();
    for d in defs {
        let text = values.get(&d.name).map(|s| s.trim()).unwrap_or_default();
        if text.is_empty() {
            if d.required {
                return Err(format!("{}: required.", label_of(d)));
            }
            continue;
        }
        let value = match &d.kind {
            ParamKind::Integer { min, max } => {
                let n: i64 = text
                    .parse()
                    .map_err(|_| format!("{}: a whole number, not {text}.", label_of(d)))?;
                if let Some(min) = min.filter(|m| n < *m) {
                    return Err(format!("{}: at least {min}.", label_of(d)));
                }
                if let Some(max) = max.filter(|m| n > *m) {
                    return Err(format!("{}: at most {max}.", label_of(d)));
                }
                Value::from(n)
            }
            ParamKind::Text {
                max_len: Some(max), ..
            } if text.chars().count() > *max => {
                return Err(format!("{}: at most {max} characters.", label_of(d)));
            }
            _ => Value::String(text.to_string()),
        };
        out.insert(d.name.clone(), value);
    }
    Ok(out)
}

pub(super) fn sorted_unique(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

/// One input per parameter (`data-testid="param-NAME"`), typed by the
/// parameter's kind: services and databases are chosen from the inventory.
#[component]
pub fn ParamFields(
    params: Vec<ParamDef>,
    values: RwSignal<BTreeMap<String, String>>,
) -> impl IntoView {
    let needs_services = params
        .iter()
        .any(|p| matches!(p.kind, ParamKind::Service | ParamKind::Database));
    let needs_databases = params.iter().any(|p| matches!(p.kind, ParamKind::Database));
    let services = LocalResource::new(move || async move {
        if !needs_services {
            return Ok(Vec::new());
        }
        api::services::list()
            .await
            .map(|v| sorted_unique(v.into_iter().map(|o| o.service.name).collect()))
    });
    // Databases: services with a PostgreSQL or MySQL check.
    let databases = LocalResource::new(move || async move {
        if !needs_databases {
            return Ok(Vec::new());
        }
        api::checks::list().await.map(|v| {
            sorted_unique(
                v.into_iter()
                    .filter(|c| matches!(c.spec.kind(), "postgres" | "mysql"))
                    .filter_map(|c| c.service)
                    .collect(),
            )
        })
    });
    if params.is_empty() {
        return view! { <p class="muted">"This runbook takes no parameters."</p> }.into_any();
    }
    view! {
        <div class="param-grid">
            {params.into_iter().map(|p| param_field(p, values, services, databases)).collect_view()}
        </div>
    }
    .into_any()
}

pub(super) type Names = LocalResource<Result<Vec<String>, ApiError>>;

pub(super) fn param_field(
    p: ParamDef,
    values: RwSignal<BTreeMap<String, String>>,
    services: Names,
    databases: Names,
) -> impl IntoView {
    let name = StoredValue::new(p.name.clone());
    let testid = format!("param-{}", p.name);
    let value = move || values.with(|m| name.with_value(|n| m.get(n).cloned()).unwrap_or_default());
    let set = move |v: String| {
        values.update(|m| {
            m.insert(name.get_value(), v);
        })
    };
    let label = label_of(&p);
    let required = p.required;
    let text_input = move |testid: String, placeholder: String, maxlength: Option<usize>| {
        view! {
            <input data-testid=testid placeholder=placeholder maxlength=maxlength.map(|m| m.to_string())
                required=required autocomplete="off" spellcheck="false"
                prop:value=value on:input=move |e| set(event_target_value(&e))/>
        }
    };
    let select = move |testid: String, options: Vec<String>| {
        let current =
            values.with_untracked(|m| name.with_value(|n| m.get(n).cloned()).unwrap_or_default());
        let mut options = options;
        if !current.is_empty() && !options.contains(&current) {
            options.insert(0, current);
        }
        view! {
            <select data-testid=testid required=required on:change=move |e| set(event_target_value(&e))>
                <option value="" prop:selected=move || value().is_empty()>{if required { "— choose —" } else { "— none —" }}</option>
                {options.into_iter().map(|o| {
                    let sel = o.clone();
                    let val = o.clone();
                    view! { <option value=val prop:selected=move || value() == sel>{o}</option> }
                }).collect_view()}
            </select>
        }
    };
    // Choose from a list once it is known; type the name without one.
    let from_list = move |testid: String,
                          list: Names,
                          fallback: Option<Names>,
                          placeholder: &'static str| {
        move || {
            let names = match (list.get(), fallback.and_then(|f| f.get())) {
                (Some(Ok(v)), _) if !v.is_empty() => Some(v),
                (Some(_), Some(Ok(v))) if !v.is_empty() => Some(v),
                (None, _) => None,
                _ => Some(Vec::new()),
            };
            match names {
                None => view! { <select disabled=true data-testid=testid.clone()><option>"Loading…"</option></select> }.into_any(),
                Some(v) if v.is_empty() => text_input(testid.clone(), placeholder.to_string(), None).into_any(),
                Some(v) => select(testid.clone(), v).into_any(),
            }
        }
    };
    let (input, hint): (AnyView, Option<String>) = match &p.kind {
        ParamKind::Service => (
            from_list(testid, services, None, "service name").into_any(),
            None,
        ),
        ParamKind::Database => (
            from_list(testid, databases, Some(services), "database service").into_any(),
            Some("A service with a PostgreSQL or MySQL check.".into()),
        ),
        ParamKind::Container => (
            text_input(testid, "container name".into(), None).into_any(),
            None,
        ),
        ParamKind::Integer { min, max } => {
            let hint = match (min, max) {
                (Some(a), Some(b)) => Some(format!("From {a} to {b}.")),
                (Some(a), None) => Some(format!("At least {a}.")),
                (None, Some(b)) => Some(format!("At most {b}.")),
                (None, None) => None,
            };
            let (min, max) = (min.map(|m| m.to_string()), max.map(|m| m.to_string()));
            (
                view! {
                    <input type="number" step="1" min=min max=max data-testid=testid required=required
                        prop:value=value on:input=move |e| set(event_target_value(&e))/>
                }
                .into_any(),
                hint,
            )
        }
        ParamKind::Choice { options } => (select(testid, options.clone()).into_any(), None),
        ParamKind::Duration { min, max } => {
            let hint = match (min, max) {
                (Some(a), Some(b)) => format!("A duration such as 90s, 5m, 1h; from {a} to {b}."),
                (Some(a), None) => format!("A duration such as 90s, 5m, 1h; at least {a}."),
                (None, Some(b)) => format!("A duration such as 90s, 5m, 1h; at most {b}."),
                (None, None) => "A duration such as 90s, 5m, 1h.".to_string(),
            };
            (text_input(testid, "5m".into(), None).into_any(), Some(hint))
        }
        ParamKind::Text { max_len, .. } => {
            (text_input(testid, String::new(), *max_len).into_any(), None)
        }
    };
    let pattern = match &p.kind {
        ParamKind::Text {
            pattern: Some(pat), ..
        } => Some(pat.clone()),
        _ => None,
    };
    let help = (!p.help.is_empty()).then(|| p.help.clone());
    view! {
        <label class="param-field">
            <span>{label}{(!required).then(|| view! { <span class="muted optional">" (optional)"</span> })}</span>
            {input}
            {help.map(|h| view! { <span class="hint">{h}</span> })}
            {hint.map(|h| view! { <span class="hint">{h}</span> })}
            {pattern.map(|pat| view! { <span class="hint">"Must match "<code class="wrap-anywhere">{pat}</code></span> })}
        </label>
    }
}
