//! A rules import's preview and apply, modelled on the compose import
//! (`onboard`): the same request previews or applies, and an apply creates
//! every selected check in **one transaction** with one
//! `check.rules_import.apply` audit entry plus one `check.create` per
//! check (a preview writes `check.rules_import.preview`).
//!
//! - **Service**: the attach label's value matched against service names
//!   (exactly, else ignoring case); the request's `services` overrides it
//!   per key (an id, or `null` for a check of no service).
//! - **State**: `exists` when a Prometheus check with the same server (a
//!   trailing `/` aside) and query is stored, so a re-import creates
//!   nothing twice; `name_taken` when the service (or the host) has a
//!   check of that name; else `new`.
//! - **Selection**: the request's keys (each must be `new`), else every
//!   `new` proposal the server accepts.
//! - **The server is asked** every new proposal's query, four at a time,
//!   as saving one check asks it (`probe::prometheus::validate`): a
//!   preview shows its refusal on the proposal (`query_error`) and leaves
//!   it out; an apply refuses the whole import naming the rule. A server
//!   that does not answer is an error on `url`.
//! - The bearer token is stored sealed as each check's password
//!   (`store::insert`), never in the plan or an audit entry.
//!
//! The caller wakes the health engine for the created checks after the
//! commit.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures::StreamExt;
use opsdeck_wire::{CheckSpec, RuleCheck, RuleCheckState, RulesImportPlan, RulesImportRequest};
use serde_json::json;
use sqlx::PgPool;

use super::{map, Options};
use crate::auth::{Principal, RequestCtx};
use crate::checks::defs::{audit_params, validate_def, validate_target, CheckError, Valid};
use crate::checks::probe::{self, http::HttpClients};
use crate::checks::store;
use crate::checks::DEFAULT_TIMEOUT_MS;

/// Queries asked of the server at once.
const PARALLEL: usize = 4;

/// The request checked at the boundary.
struct Checked {
    url: String,
    attach_label: String,
    token: Option<String>,
}

fn invalid(m: impl Into<String>) -> CheckError {
    CheckError::Invalid(m.into())
}

fn check_request(req: &RulesImportRequest, allow_link_local: bool) -> Result<Checked, CheckError> {
    let url = req.url.trim().to_owned();
    probe::http::parse_url(&url).map_err(|e| invalid(format!("url: {e}")))?;
    let spec = CheckSpec::Prometheus(opsdeck_wire::PrometheusCheck {
        url: url.clone(),
        query: "up".into(),
        warning: 0.0,
        critical: 0.0,
        below: false,
        sustained_s: 0,
        tls_verify: req.tls_verify,
        firing: None,
    });
    validate_target(&spec, allow_link_local)?;
    let attach_label = req
        .attach_label
        .as_deref()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .unwrap_or("service")
        .to_owned();
    let label_ok = attach_label.len() <= 100
        && attach_label.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && attach_label
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !label_ok {
        return Err(invalid(
            "attach_label: a Prometheus label name (letters, digits, _)",
        ));
    }
    let token = req.token.clone().filter(|t| !t.is_empty());
    if token
        .as_ref()
        .is_some_and(|t| t.len() > 4096 || t.contains(['\r', '\n']))
    {
        return Err(invalid("token: one line of at most 4096 characters"));
    }
    Ok(Checked {
        url,
        attach_label,
        token,
    })
}

fn same_url(a: &str, b: &str) -> bool {
    a.trim().trim_end_matches('/') == b.trim().trim_end_matches('/')
}

/// The check's definition as it is created.
fn valid(c: &RuleCheck) -> Valid {
    Valid {
        service_id: c.service_id,
        name: c.name.clone(),
        spec: CheckSpec::Prometheus(c.spec.clone()),
        interval_s: c.interval_s,
        timeout_ms: DEFAULT_TIMEOUT_MS.min(c.interval_s * 1000),
        // The rule's `for` is the only hold-back, as in Prometheus.
        fail_after: 1,
        recover_after: 1,
        enabled: true,
    }
}

/// Asks the server every query of `which`; `(index, refusal)` for each it
/// refused. A server that does not answer ends it with an error on `url`.
async fn ask_server(
    http: &HttpClients,
    checks: &[RuleCheck],
    which: &[usize],
    token: Option<&str>,
) -> Result<Vec<(usize, String)>, CheckError> {
    let timeout = Duration::from_millis(u64::from(DEFAULT_TIMEOUT_MS));
    let ask = |i: usize| async move {
        let r = probe::prometheus::validate(http, &checks[i].spec, token, timeout).await;
        (i, r)
    };
    // The first alone: an unreachable server is told once, quickly.
    let mut results = Vec::new();
    if let Some((&first, rest)) = which.split_first() {
        results.push(ask(first).await);
        if let (_, Err(e)) = &results[0] {
            if e.starts_with("url:") {
                return Err(invalid(e.clone()));
            }
        }
        let more: Vec<_> = futures::stream::iter(rest.iter().copied().map(ask))
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        results.extend(more);
    }
    let mut refused = Vec::new();
    for (i, r) in results {
        match r {
            Ok(()) => {}
            Err(e) if e.starts_with("url:") => return Err(invalid(e)),
            Err(e) => refused.push((i, e.trim_start_matches("query: ").to_owned())),
        }
    }
    refused.sort();
    Ok(refused)
}

/// Previews (`apply: false`) or applies a rules import, audited as the
/// request's principal. Returns the plan and the created checks' ids.
pub async fn import(
    pool: &PgPool,
    http: &HttpClients,
    req: &RulesImportRequest,
    apply: bool,
    allow_link_local: bool,
    ctx: &RequestCtx,
    principal: &Principal,
) -> Result<(RulesImportPlan, Vec<i64>), CheckError> {
    let r = check_request(req, allow_link_local)?;
    let mapped = map(
        &req.yaml,
        &Options {
            url: &r.url,
            tls_verify: req.tls_verify,
            attach_label: &r.attach_label,
        },
    )
    .map_err(CheckError::Invalid)?;
    let mut tx = pool.begin().await?;
    let services = store::service_names(&mut tx).await?;
    let stored = store::prometheus_checks(&mut tx).await?;
    let names: Vec<String> = mapped.proposals.iter().map(|p| p.name.clone()).collect();
    let taken: BTreeSet<(i64, String)> = store::names_taken(&mut tx, &names)
        .await?
        .into_iter()
        .collect();
    let keys: BTreeSet<&str> = mapped.proposals.iter().map(|p| p.key.as_str()).collect();
    for (key, id) in &req.services {
        if !keys.contains(key.as_str()) {
            return Err(invalid(format!("services: no proposal {key}")));
        }
        if let Some(id) = id {
            if !services.iter().any(|(s, _)| s == id) {
                return Err(invalid(format!("services: {key}: no service {id}")));
            }
        }
    }
    if let Some(sel) = &req.selected {
        if let Some(k) = sel.iter().find(|k| !keys.contains(k.as_str())) {
            return Err(invalid(format!("selected: no proposal {k}")));
        }
    }

    let mut checks: Vec<RuleCheck> = Vec::new();
    for p in mapped.proposals {
        let mut notes = p.notes;
        let matched = p.label_value.as_deref().and_then(|v| {
            services
                .iter()
                .find(|(_, n)| n == v)
                .or_else(|| services.iter().find(|(_, n)| n.eq_ignore_ascii_case(v)))
        });
        if let (Some(v), None) = (&p.label_value, matched) {
            notes.push(format!(
                "{}={v:?} names no Opsdeck service: choose one, or none",
                r.attach_label
            ));
        }
        let service_id = match req.services.get(&p.key) {
            Some(chosen) => *chosen,
            None => matched.map(|(id, _)| *id),
        };
        let service = service_id
            .and_then(|id| services.iter().find(|(s, _)| *s == id))
            .map(|(_, n)| n.clone());
        let existing = stored
            .iter()
            .find(|s| same_url(&s.url, &p.spec.url) && s.query.trim() == p.spec.query.trim());
        let state = if existing.is_some() {
            RuleCheckState::Exists
        } else if taken.contains(&(service_id.unwrap_or(0), p.name.clone())) {
            RuleCheckState::NameTaken
        } else {
            RuleCheckState::New
        };
        let selected = state == RuleCheckState::New
            && req.selected.as_ref().is_none_or(|s| s.contains(&p.key));
        checks.push(RuleCheck {
            key: p.key,
            group: p.group,
            alerts: p.alerts,
            name: p.name,
            interval_s: p.interval_s,
            spec: p.spec,
            label_value: p.label_value,
            service_id,
            service,
            state,
            existing_check_id: existing.map(|s| s.id),
            selected,
            query_error: None,
            notes,
            check_id: None,
        });
    }
    if apply {
        if let Some(sel) = &req.selected {
            for k in sel {
                if let Some(c) = checks.iter().find(|c| &c.key == k && !c.selected) {
                    let why = match c.state {
                        RuleCheckState::Exists => format!(
                            "a check with this server and query exists (check {})",
                            c.existing_check_id.unwrap_or_default()
                        ),
                        _ => format!(
                            "{} already has a check named \"{}\"",
                            c.service.as_deref().unwrap_or("the host"),
                            c.name
                        ),
                    };
                    return Err(invalid(format!("selected: {k}: {why}")));
                }
            }
        }
    }
    // Each definition as the checks API would judge it.
    for c in &checks {
        let mut v = valid(c);
        validate_def(&mut v).map_err(|e| match e {
            CheckError::Invalid(m) => invalid(format!("rules: {}: {m}", c.key)),
            other => other,
        })?;
    }
    // The server's word on each query to create.
    let ask: Vec<usize> = (0..checks.len())
        .filter(|&i| {
            if apply {
                checks[i].selected
            } else {
                checks[i].state == RuleCheckState::New
            }
        })
        .collect();
    // Nothing is held open while the server is asked.
    tx.rollback().await?;
    let refused = ask_server(http, &checks, &ask, r.token.as_deref()).await?;
    if apply {
        if let Some((i, e)) = refused.first() {
            let c = &checks[*i];
            return Err(invalid(format!(
                "rules: alert {} (group {}): the server refused the query: {e}",
                c.alerts.join(" / "),
                c.group
            )));
        }
    }
    for (i, e) in refused {
        checks[i].query_error = Some(e);
        checks[i].selected = false;
    }

    let mut tx = pool.begin().await?;
    let mut created = Vec::new();
    if apply {
        for c in checks.iter_mut().filter(|c| c.selected) {
            let mut v = valid(c);
            validate_def(&mut v)?;
            if let Some(sid) = v.service_id {
                if !store::service_exists(&mut tx, sid).await? {
                    return Err(invalid(format!("services: {}: no service {sid}", c.key)));
                }
            }
            let id = store::insert(
                &mut tx,
                v.service_id,
                v.spec.kind(),
                v.columns()?,
                r.token.as_deref(),
                None,
            )
            .await
            .map_err(|e| CheckError::on_write(e, &v.name))?;
            let mut params = audit_params(&v);
            params["id"] = json!(id);
            params["password_set"] = json!(r.token.is_some());
            params["import"] = json!({"rules": c.key, "alerts": c.alerts});
            ctx.audit(
                &mut tx,
                principal,
                "check.create",
                Some(format!("check:{id}")),
                params,
            )
            .await?;
            c.check_id = Some(id);
            created.push(id);
        }
    }
    let plan = RulesImportPlan {
        applied: apply,
        groups: mapped.groups,
        alerting_rules: mapped.alerting_rules,
        checks,
        unsupported: mapped.unsupported,
    };
    let by_state = |s: RuleCheckState| plan.checks.iter().filter(|c| c.state == s).count();
    let selected: Vec<&str> = plan
        .checks
        .iter()
        .filter(|c| c.selected)
        .map(|c| c.key.as_str())
        .collect();
    let refused: BTreeMap<&str, &str> = plan
        .checks
        .iter()
        .filter_map(|c| Some((c.key.as_str(), c.query_error.as_deref()?)))
        .collect();
    ctx.audit(
        &mut tx,
        principal,
        if apply {
            "check.rules_import.apply"
        } else {
            "check.rules_import.preview"
        },
        None,
        json!({
            "url": r.url, "attach_label": r.attach_label, "token_set": r.token.is_some(),
            "groups": plan.groups, "alerting_rules": plan.alerting_rules,
            "proposals": plan.checks.len(), "new": by_state(RuleCheckState::New),
            "exists": by_state(RuleCheckState::Exists),
            "name_taken": by_state(RuleCheckState::NameTaken),
            "selected": selected, "refused": refused, "created": created,
            "unsupported": plan.unsupported.len(),
        }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok((plan, created))
}
