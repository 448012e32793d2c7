//! Runbook definitions: validation at the boundary, typed parameters,
//! templating, YAML, and the approval binding.
//!
//! Parameters are data, never code. A template (`{{params.NAME}}`,
//! `{{steps.STEP.FIELD}}`) is replaced by a *value* inside one string field
//! of a step (an argv element, a service name, a URL); nothing here builds
//! shell text or SQL. Typed parameters are checked against their type before
//! a run exists: an integer out of bounds, a service that is not in the
//! inventory or text that does not match its pattern is refused with the
//! parameter's name.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use opsdeck_wire::{ParamDef, ParamKind, RunbookDef, StepAction, StepDef};
use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Most steps a definition may have (main + rollback).
pub const MAX_STEPS: usize = 100;
/// Longest timeout a step may declare.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

fn ident_ok(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Runbook names: `[a-z0-9][a-z0-9_-]{0,63}` (also enforced by the table).
pub fn name_ok(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.len() <= 64
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Parses a humane duration (`90s`, `5m`, `1h 30m`, `2d`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s.trim())
        .map_err(|_| format!("\"{s}\" is not a duration (e.g. 30s, 5m, 1h 30m)"))
}

/// Default timeout of a step kind when the definition gives none.
pub fn default_timeout(action: &StepAction) -> Duration {
    match action {
        StepAction::Manual { .. } | StepAction::Approval { .. } => Duration::from_secs(24 * 3600),
        StepAction::Runbook { .. } | StepAction::Maintenance { .. } => Duration::from_secs(3600),
        StepAction::Backup { .. } => Duration::from_secs(6 * 3600),
        StepAction::Database { .. } => Duration::from_secs(600),
        StepAction::WaitHealthy { .. } | StepAction::Stack { .. } | StepAction::Prune { .. } => {
            Duration::from_secs(300)
        }
        StepAction::Sleep { .. } => Duration::from_secs(3600),
        _ => Duration::from_secs(120),
    }
}

/// The step's timeout (validated already).
pub fn step_timeout(step: &StepDef) -> Duration {
    step.timeout
        .as_deref()
        .and_then(|t| parse_duration(t).ok())
        .unwrap_or_else(|| default_timeout(&step.action))
}

/// Every string field of a step that may hold templates.
pub fn template_fields(action: &StepAction) -> Vec<&str> {
    let mut v: Vec<&str> = Vec::new();
    match action {
        StepAction::Container { service, action } => v.extend([service.as_str(), action]),
        StepAction::Stack { project, action } => v.extend([project.as_str(), action]),
        StepAction::Scale { service, replicas } => v.extend([service.as_str(), replicas]),
        StepAction::Exec {
            service,
            argv,
            container,
        } => {
            v.push(service);
            v.extend(argv.iter().map(String::as_str));
            v.extend(container.as_deref());
        }
        StepAction::Logs { service, .. }
        | StepAction::Status { service }
        | StepAction::WaitHealthy { service } => v.push(service),
        StepAction::Database {
            database,
            older_than,
            table,
            ..
        } => {
            v.push(database);
            v.extend(older_than.as_deref());
            v.extend(table.as_deref());
        }
        StepAction::Http { url, contains, .. } => {
            v.push(url);
            v.extend(contains.as_deref());
        }
        StepAction::Checks {
            service,
            check_kind,
        } => {
            v.extend(service.as_deref());
            v.extend(check_kind.as_deref());
        }
        StepAction::Sleep { duration } => v.push(duration),
        StepAction::Prune { what, engine } => {
            v.push(what);
            v.extend(engine.as_deref());
        }
        StepAction::Manual { instructions } => v.push(instructions),
        StepAction::Approval { message } => v.push(message),
        StepAction::Notify { message, .. } => v.push(message),
        StepAction::Runbook { params, .. } => {
            v.extend(params.values().filter_map(Value::as_str));
        }
        StepAction::Maintenance { op, period } => v.extend([op.as_str(), period]),
        StepAction::Backup { op, subject } => v.extend([op.as_str(), subject]),
    }
    v
}

/// A reference inside `{{ … }}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ref {
    Param(String),
    /// Step name and a dotted path into its result.
    Step(String, Vec<String>),
}

fn template_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\{\{\s*([^{}]*?)\s*\}\}").expect("template regex"))
}

fn parse_ref(inner: &str) -> Result<Ref, String> {
    let parts: Vec<&str> = inner.split('.').collect();
    match parts.as_slice() {
        ["params", name] if ident_ok(name) => Ok(Ref::Param((*name).to_owned())),
        ["steps", step, path @ ..]
            if ident_ok(step)
                && !path.is_empty()
                && path
                    .iter()
                    .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')) =>
        {
            Ok(Ref::Step(
                (*step).to_owned(),
                path.iter().map(|p| (*p).to_owned()).collect(),
            ))
        }
        _ => Err(format!(
            "\"{{{{{inner}}}}}\" is not a reference: use {{{{params.NAME}}}} or {{{{steps.STEP.FIELD}}}}"
        )),
    }
}

/// The references a string holds.
pub fn refs(s: &str) -> Result<Vec<Ref>, String> {
    template_re()
        .captures_iter(s)
        .map(|c| parse_ref(&c[1]))
        .collect()
}

/// Values templates resolve against.
pub struct Scope<'a> {
    pub params: &'a BTreeMap<String, Value>,
    /// Results of finished steps by name.
    pub steps: &'a serde_json::Map<String, Value>,
    /// Dry runs: leave references to step outputs visible as
    /// `⟨steps.X.Y⟩` instead of failing.
    pub lenient: bool,
}

fn as_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Replaces every reference in `s` by its value. The result is one value
/// for one field: it is never interpreted by a shell or as SQL.
pub fn render(s: &str, scope: &Scope<'_>) -> Result<String, String> {
    let mut err = None;
    let out = template_re().replace_all(s, |c: &regex::Captures<'_>| {
        let resolved = parse_ref(&c[1]).and_then(|r| match r {
            Ref::Param(name) => scope
                .params
                .get(&name)
                .map(as_text)
                .ok_or_else(|| format!("parameter \"{name}\" has no value")),
            Ref::Step(step, path) if scope.lenient && !scope.steps.contains_key(&step) => {
                Ok(format!("⟨steps.{step}.{}⟩", path.join(".")))
            }
            Ref::Step(step, path) => {
                let mut v = scope
                    .steps
                    .get(&step)
                    .ok_or_else(|| format!("step \"{step}\" has not produced a result"))?;
                for p in &path {
                    v = v.get(p.as_str()).ok_or_else(|| {
                        format!("step \"{step}\" has no output \"{}\"", path.join("."))
                    })?;
                }
                Ok(as_text(v))
            }
        });
        match resolved {
            Ok(v) => v,
            Err(e) => {
                err.get_or_insert(e);
                String::new()
            }
        }
    });
    match err {
        Some(e) => Err(e),
        None => Ok(out.into_owned()),
    }
}

/// Renders every template field of a step's action.
pub fn render_action(action: &StepAction, scope: &Scope<'_>) -> Result<StepAction, String> {
    let r = |s: &String| render(s, scope);
    let ro = |s: &Option<String>| s.as_ref().map(|s| render(s, scope)).transpose();
    Ok(match action {
        StepAction::Container { service, action } => StepAction::Container {
            service: r(service)?,
            action: r(action)?,
        },
        StepAction::Stack { project, action } => StepAction::Stack {
            project: r(project)?,
            action: r(action)?,
        },
        StepAction::Scale { service, replicas } => StepAction::Scale {
            service: r(service)?,
            replicas: r(replicas)?,
        },
        StepAction::Exec {
            service,
            argv,
            container,
        } => StepAction::Exec {
            service: r(service)?,
            argv: argv.iter().map(r).collect::<Result<_, _>>()?,
            container: ro(container)?,
        },
        StepAction::Logs { service, lines } => StepAction::Logs {
            service: r(service)?,
            lines: *lines,
        },
        StepAction::Status { service } => StepAction::Status {
            service: r(service)?,
        },
        StepAction::Database {
            database,
            op,
            older_than,
            table,
            limit,
        } => StepAction::Database {
            database: r(database)?,
            op: *op,
            older_than: ro(older_than)?,
            table: ro(table)?,
            limit: *limit,
        },
        StepAction::Http {
            url,
            method,
            expect_status,
            contains,
        } => StepAction::Http {
            url: r(url)?,
            method: method.clone(),
            expect_status: *expect_status,
            contains: ro(contains)?,
        },
        StepAction::Checks {
            service,
            check_kind,
        } => StepAction::Checks {
            service: ro(service)?,
            check_kind: ro(check_kind)?,
        },
        StepAction::WaitHealthy { service } => StepAction::WaitHealthy {
            service: r(service)?,
        },
        StepAction::Sleep { duration } => StepAction::Sleep {
            duration: r(duration)?,
        },
        StepAction::Prune { what, engine } => StepAction::Prune {
            what: r(what)?,
            engine: ro(engine)?,
        },
        StepAction::Manual { instructions } => StepAction::Manual {
            instructions: r(instructions)?,
        },
        StepAction::Approval { message } => StepAction::Approval {
            message: r(message)?,
        },
        StepAction::Notify { message, severity } => StepAction::Notify {
            message: r(message)?,
            severity: severity.clone(),
        },
        StepAction::Maintenance { op, period } => StepAction::Maintenance {
            op: r(op)?,
            period: r(period)?,
        },
        StepAction::Backup { op, subject } => StepAction::Backup {
            op: r(op)?,
            subject: r(subject)?,
        },
        StepAction::Runbook { runbook, params } => StepAction::Runbook {
            runbook: runbook.clone(),
            params: params
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        match v {
                            Value::String(s) => Value::String(render(s, scope)?),
                            other => other.clone(),
                        },
                    ))
                })
                .collect::<Result<_, String>>()?,
        },
    })
}

const CONTAINER_ACTIONS: &[&str] = &["start", "stop", "restart", "kill", "pause", "unpause"];
const STACK_ACTIONS: &[&str] = &["start", "stop", "restart"];
const PRUNE_WHAT: &[&str] = &["images", "volumes", "containers", "networks"];
const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST"];

/// A literal (template-free) field must be one of `allowed`.
fn literal_in(field: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if value.contains("{{") || allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!("{field}: one of {}", allowed.join(", ")))
    }
}

fn check_step(
    step: &StepDef,
    earlier: &HashSet<&str>,
    params: &HashSet<&str>,
) -> Result<(), String> {
    if !ident_ok(&step.name) {
        return Err("name: lowercase letters, digits and _ (start with a letter)".into());
    }
    if let Some(t) = &step.timeout {
        let d = parse_duration(t).map_err(|e| format!("timeout: {e}"))?;
        if d.is_zero() || d > MAX_TIMEOUT {
            return Err("timeout: between 1s and 24h".into());
        }
    }
    if let Some(p) = &step.approval {
        check_policy(p).map_err(|e| format!("approval: {e}"))?;
    }
    for field in template_fields(&step.action) {
        for r in refs(field)? {
            match r {
                Ref::Param(p) if !params.contains(p.as_str()) => {
                    return Err(format!("{{{{params.{p}}}}}: no such parameter"));
                }
                Ref::Step(s, _) if !earlier.contains(s.as_str()) => {
                    return Err(format!(
                        "{{{{steps.{s}…}}}}: only earlier steps can be referenced"
                    ));
                }
                _ => {}
            }
        }
    }
    match &step.action {
        StepAction::Container { action, .. } => literal_in("action", action, CONTAINER_ACTIONS)?,
        StepAction::Stack { action, .. } => literal_in("action", action, STACK_ACTIONS)?,
        StepAction::Prune { what, .. } => literal_in("what", what, PRUNE_WHAT)?,
        StepAction::Exec { argv, .. } => {
            if argv.is_empty() || argv[0].trim().is_empty() {
                return Err("argv: give the program and its arguments".into());
            }
            if argv.len() > 256 || argv.iter().any(|a| a.len() > 8192 || a.contains('\0')) {
                return Err("argv: at most 256 arguments of at most 8192 bytes, no NUL".into());
            }
        }
        StepAction::Http { method, url, .. } => {
            literal_in("method", method, HTTP_METHODS)?;
            if !url.contains("{{") {
                crate::checks::probe::http::parse_url(url).map_err(|e| format!("url: {e}"))?;
            }
        }
        StepAction::Sleep { duration } if !duration.contains("{{") => {
            parse_duration(duration).map_err(|e| format!("duration: {e}"))?;
        }
        StepAction::Database {
            older_than: Some(d),
            ..
        } if !d.contains("{{") => {
            parse_duration(d).map_err(|e| format!("older_than: {e}"))?;
        }
        StepAction::Runbook { runbook, .. } if !name_ok(runbook) => {
            return Err("runbook: a runbook name".into());
        }
        StepAction::Maintenance { op, .. } => {
            literal_in("op", op, &["enable", "disable"])?;
        }
        StepAction::Backup { op, .. } => {
            literal_in("op", op, &["run", "verify", "drill", "restore", "delete"])?;
        }
        _ => {}
    }
    Ok(())
}

/// Checks an approval policy.
pub fn check_policy(p: &opsdeck_wire::ApprovalPolicy) -> Result<(), String> {
    if !(1..=10).contains(&p.required) {
        return Err("required: 1 to 10".into());
    }
    if p.roles.is_empty() || p.roles.contains(&opsdeck_wire::Role::Viewer) {
        return Err("roles: operator and/or admin".into());
    }
    let d = parse_duration(&p.expires).map_err(|e| format!("expires: {e}"))?;
    if d < Duration::from_secs(60) || d > Duration::from_secs(7 * 24 * 3600) {
        return Err("expires: between 1m and 7d".into());
    }
    Ok(())
}

fn check_param(p: &ParamDef) -> Result<(), String> {
    if !ident_ok(&p.name) {
        return Err("name: lowercase letters, digits and _ (start with a letter)".into());
    }
    match &p.kind {
        ParamKind::Integer {
            min: Some(a),
            max: Some(b),
        } if a > b => return Err("min is above max".into()),
        ParamKind::Choice { options } if options.is_empty() => {
            return Err("options: at least one".into())
        }
        ParamKind::Duration { min, max } => {
            for d in [min, max].into_iter().flatten() {
                parse_duration(d)?;
            }
        }
        ParamKind::Text {
            pattern: Some(pat), ..
        } => {
            Regex::new(&format!("^(?:{pat})$")).map_err(|e| format!("pattern: {e}"))?;
        }
        _ => {}
    }
    if let Some(d) = &p.default {
        // A default must be a valid value itself (inventory-typed parameters
        // are checked when a run starts).
        check_value_shape(p, d).map_err(|e| format!("default: {e}"))?;
    }
    Ok(())
}

/// Validates a whole definition; the error names the step or parameter.
pub fn validate(def: &RunbookDef) -> Result<(), String> {
    if !name_ok(&def.name) {
        return Err("name: lowercase letters, digits, - and _ (at most 64)".into());
    }
    if def.title.trim().is_empty() || def.title.len() > 200 {
        return Err("title: 1 to 200 characters".into());
    }
    if def.description.len() > 20_000 {
        return Err("description: at most 20000 characters".into());
    }
    if def.steps.is_empty() {
        return Err("steps: at least one".into());
    }
    if def.steps.len() + def.rollback.len() > MAX_STEPS {
        return Err(format!(
            "steps: at most {MAX_STEPS} with the rollback steps"
        ));
    }
    if let Some(p) = &def.approval {
        check_policy(p).map_err(|e| format!("approval: {e}"))?;
    }
    let mut params = HashSet::new();
    for p in &def.params {
        check_param(p).map_err(|e| format!("params.{}: {e}", p.name))?;
        if !params.insert(p.name.as_str()) {
            return Err(format!("params.{}: declared twice", p.name));
        }
    }
    if let Some(t) = &def.target_param {
        if !params.contains(t.as_str()) {
            return Err(format!("target_param: no parameter \"{t}\""));
        }
    }
    let mut earlier: HashSet<&str> = HashSet::new();
    for (i, s) in def.steps.iter().enumerate() {
        check_step(s, &earlier, &params).map_err(|e| format!("steps[{i}] ({}): {e}", s.name))?;
        if !earlier.insert(s.name.as_str()) {
            return Err(format!("steps[{i}] ({}): name used twice", s.name));
        }
    }
    for (i, s) in def.rollback.iter().enumerate() {
        check_step(s, &earlier, &params).map_err(|e| format!("rollback[{i}] ({}): {e}", s.name))?;
        if !earlier.insert(s.name.as_str()) {
            return Err(format!("rollback[{i}] ({}): name used twice", s.name));
        }
        if matches!(s.on_failure, opsdeck_wire::OnFailure::Rollback) {
            return Err(format!(
                "rollback[{i}] ({}): a rollback step cannot roll back",
                s.name
            ));
        }
    }
    Ok(())
}

/// What the inventory knows, for inventory-typed parameters.
#[derive(Debug, Default)]
pub struct World {
    pub services: HashSet<String>,
    pub containers: HashSet<String>,
    /// Services with a Postgres or MariaDB/MySQL check.
    pub databases: HashSet<String>,
}

fn check_value_shape(p: &ParamDef, v: &Value) -> Result<Value, String> {
    match &p.kind {
        ParamKind::Integer { min, max } => {
            let n = match v {
                Value::Number(n) => n.as_i64(),
                Value::String(s) => s.trim().parse::<i64>().ok(),
                _ => None,
            }
            .ok_or("a whole number")?;
            if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) {
                return Err(format!(
                    "between {} and {}",
                    min.map_or("-∞".into(), |m| m.to_string()),
                    max.map_or("∞".into(), |m| m.to_string())
                ));
            }
            Ok(Value::from(n))
        }
        ParamKind::Choice { options } => {
            let s = v.as_str().ok_or("text")?;
            if options.iter().any(|o| o == s) {
                Ok(Value::from(s))
            } else {
                Err(format!("one of {}", options.join(", ")))
            }
        }
        ParamKind::Duration { min, max } => {
            let s = v.as_str().ok_or("a duration such as 5m")?;
            let d = parse_duration(s)?;
            if let Some(m) = min.as_deref().map(parse_duration).transpose()? {
                if d < m {
                    return Err(format!("at least {}", min.as_deref().unwrap_or_default()));
                }
            }
            if let Some(m) = max.as_deref().map(parse_duration).transpose()? {
                if d > m {
                    return Err(format!("at most {}", max.as_deref().unwrap_or_default()));
                }
            }
            Ok(Value::from(s.trim()))
        }
        ParamKind::Text { pattern, max_len } => {
            let s = v.as_str().ok_or("text")?;
            let limit = max_len.unwrap_or(1000);
            if s.chars().count() > limit {
                return Err(format!("at most {limit} characters"));
            }
            if s.chars().any(char::is_control) {
                return Err("no control characters".into());
            }
            if let Some(pat) = pattern {
                let re = Regex::new(&format!("^(?:{pat})$")).map_err(|e| e.to_string())?;
                if !re.is_match(s) {
                    return Err(format!("must match {pat}"));
                }
            }
            Ok(Value::from(s))
        }
        ParamKind::Service | ParamKind::Container | ParamKind::Database => {
            let s = v.as_str().ok_or("a name")?;
            let ok = !s.is_empty()
                && s.len() <= 128
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !ok {
                return Err(format!("\"{}\" is not a valid name", s.escape_default()));
            }
            Ok(Value::from(s))
        }
    }
}

/// Checks the given parameters against the definition and the inventory:
/// unknown names refused, defaults filled in, values normalised. Every
/// problem is listed, by parameter.
pub fn check_params(
    def: &RunbookDef,
    given: &BTreeMap<String, Value>,
    world: &World,
) -> Result<BTreeMap<String, Value>, String> {
    let mut problems = Vec::new();
    for k in given.keys() {
        if !def.params.iter().any(|p| &p.name == k) {
            problems.push(format!("{k}: no such parameter"));
        }
    }
    let mut out = BTreeMap::new();
    for p in &def.params {
        let v = match given.get(&p.name).filter(|v| !v.is_null() && *v != "") {
            Some(v) => v,
            None => match &p.default {
                Some(d) => d,
                None if p.required => {
                    problems.push(format!("{}: required", p.name));
                    continue;
                }
                None => continue,
            },
        };
        let checked = check_value_shape(p, v).and_then(|v| {
            let s = v.as_str().unwrap_or_default();
            match &p.kind {
                ParamKind::Service if !world.services.contains(s) => {
                    Err(format!("no service \"{s}\" in the inventory"))
                }
                ParamKind::Container if !world.containers.contains(s) => {
                    Err(format!("no container \"{s}\" on a connected engine"))
                }
                ParamKind::Database if !world.databases.contains(s) => Err(format!(
                    "\"{s}\" is not a service with a Postgres or MariaDB check"
                )),
                _ => Ok(v),
            }
        });
        match checked {
            Ok(v) => {
                out.insert(p.name.clone(), v);
            }
            Err(e) => problems.push(format!("{}: {e}", p.name)),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(format!("invalid parameters: {}", problems.join("; ")))
    }
}

/// The run's concurrency key: the target parameter's value, else `*`.
pub fn target(def: &RunbookDef, params: &BTreeMap<String, Value>) -> String {
    def.target_param
        .as_ref()
        .and_then(|t| params.get(t))
        .map(as_text)
        .unwrap_or_else(|| "*".into())
}

/// The digest approvals bind to: runbook, version and the parameters in
/// canonical form (sorted keys, as `BTreeMap` serialises them).
pub fn binding(runbook_id: i64, version: i32, params: &BTreeMap<String, Value>) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(runbook_id.to_be_bytes());
    h.update(version.to_be_bytes());
    h.update(serde_json::to_vec(params).unwrap_or_default());
    h.finalize().to_vec()
}

/// Parses a definition from YAML (one document).
pub fn from_yaml(text: &str) -> Result<RunbookDef, String> {
    if text.len() > 512 * 1024 {
        return Err("yaml: at most 512 KiB".into());
    }
    serde_norway::from_str(text).map_err(|e| format!("yaml: {e}"))
}

/// Renders a definition as YAML.
pub fn to_yaml(def: &RunbookDef) -> String {
    serde_norway::to_string(def).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsdeck_wire::OnFailure;

    fn def(yaml: &str) -> RunbookDef {
        from_yaml(yaml).expect("yaml")
    }

    const BASIC: &str = r#"
name: restart-service
title: Restart a service
target_param: service
params:
  - name: service
    type: service
  - name: replicas
    type: integer
    min: 1
    max: 5
    default: 2
  - name: note
    type: text
    pattern: "[a-z ]+"
    required: false
steps:
  - name: status
    kind: status
    service: "{{params.service}}"
  - name: restart
    kind: container
    service: "{{params.service}}"
    action: restart
    timeout: 2m
    on_failure: rollback
  - name: echo
    kind: exec
    service: "{{params.service}}"
    argv: ["echo", "{{steps.status.health}}"]
rollback:
  - name: start
    kind: container
    service: "{{params.service}}"
    action: start
"#;

    #[test]
    fn a_valid_definition_round_trips_through_yaml() {
        let d = def(BASIC);
        validate(&d).expect("valid");
        assert_eq!(d.steps[1].on_failure, OnFailure::Rollback);
        assert_eq!(step_timeout(&d.steps[1]), Duration::from_secs(120));
        let again = from_yaml(&to_yaml(&d)).expect("round trip");
        assert_eq!(again, d);
    }

    #[test]
    fn references_must_name_parameters_and_earlier_steps() {
        let mut d = def(BASIC);
        d.steps[0].action = StepAction::Status {
            service: "{{params.nope}}".into(),
        };
        assert!(validate(&d).unwrap_err().contains("no such parameter"));
        let mut d = def(BASIC);
        d.steps[0].action = StepAction::Status {
            service: "{{steps.echo.stdout}}".into(),
        };
        assert!(validate(&d).unwrap_err().contains("earlier steps"));
        let mut d = def(BASIC);
        d.steps[0].action = StepAction::Status {
            service: "{{ env.HOME }}".into(),
        };
        assert!(validate(&d).unwrap_err().contains("not a reference"));
    }

    #[test]
    fn literal_actions_and_durations_are_checked() {
        let mut d = def(BASIC);
        d.steps[1].action = StepAction::Container {
            service: "x".into(),
            action: "rm -rf".into(),
        };
        assert!(validate(&d).unwrap_err().contains("action: one of"));
        let mut d = def(BASIC);
        d.steps[1].timeout = Some("soon".into());
        assert!(validate(&d).unwrap_err().contains("timeout"));
        let mut d = def(BASIC);
        d.name = "Bad Name".into();
        assert!(validate(&d).is_err());
    }

    fn world() -> World {
        World {
            services: ["api".to_owned()].into(),
            ..Default::default()
        }
    }

    #[test]
    fn parameters_are_typed_and_injection_is_refused() {
        let d = def(BASIC);
        let ok = check_params(
            &d,
            &[("service".to_owned(), Value::from("api"))].into(),
            &world(),
        )
        .expect("valid");
        assert_eq!(ok["replicas"], Value::from(2), "default filled in");
        for evil in [
            "api; rm -rf /",
            "$(id)",
            "'; DROP TABLE users; --",
            "../../etc/passwd",
        ] {
            let e = check_params(
                &d,
                &[("service".to_owned(), Value::from(evil))].into(),
                &world(),
            )
            .unwrap_err();
            assert!(e.contains("service:"), "{evil}: {e}");
        }
        let e = check_params(
            &d,
            &[
                ("service".to_owned(), Value::from("api")),
                ("replicas".to_owned(), Value::from(9)),
                ("note".to_owned(), Value::from("$(id)")),
                ("extra".to_owned(), Value::from(1)),
            ]
            .into(),
            &world(),
        )
        .unwrap_err();
        assert!(e.contains("replicas: between 1 and 5"), "{e}");
        assert!(e.contains("note: must match"), "{e}");
        assert!(e.contains("extra: no such parameter"), "{e}");
    }

    #[test]
    fn templates_substitute_values_only() {
        let params: BTreeMap<String, Value> = [("service".to_owned(), Value::from("api"))].into();
        let mut steps = serde_json::Map::new();
        steps.insert(
            "status".into(),
            serde_json::json!({"health": "down", "n": 3}),
        );
        let scope = Scope {
            params: &params,
            steps: &steps,
            lenient: false,
        };
        assert_eq!(
            render("{{params.service}}-{{ steps.status.n }}", &scope).unwrap(),
            "api-3"
        );
        assert!(render("{{steps.status.missing}}", &scope).is_err());
        assert!(render("{{steps.other.x}}", &scope).is_err());
        // A value that looks like a template is not expanded again.
        let params: BTreeMap<String, Value> =
            [("service".to_owned(), Value::from("{{params.x}}"))].into();
        let scope = Scope {
            params: &params,
            steps: &steps,
            lenient: false,
        };
        assert_eq!(
            render("{{params.service}}", &scope).unwrap(),
            "{{params.x}}"
        );
    }

    #[test]
    fn bindings_change_with_version_and_parameters() {
        let p1: BTreeMap<String, Value> = [("a".to_owned(), Value::from(1))].into();
        let p2: BTreeMap<String, Value> = [("a".to_owned(), Value::from(2))].into();
        assert_eq!(binding(1, 1, &p1), binding(1, 1, &p1.clone()));
        assert_ne!(binding(1, 1, &p1), binding(1, 2, &p1));
        assert_ne!(binding(1, 1, &p1), binding(1, 1, &p2));
        assert_ne!(binding(1, 1, &p1), binding(2, 1, &p1));
    }
}
