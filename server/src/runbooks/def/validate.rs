//! Validation at the boundary: a definition's steps, parameters and
//! approval policies, and the values a run is started with (typed
//! parameters checked against their type and the inventory).

use super::*;

pub(super) const CONTAINER_ACTIONS: &[&str] =
    &["start", "stop", "restart", "kill", "pause", "unpause"];
pub(super) const STACK_ACTIONS: &[&str] = &["start", "stop", "restart"];
pub(super) const PRUNE_WHAT: &[&str] = &["images", "volumes", "containers", "networks"];
pub(super) const HTTP_METHODS: &[&str] = &["GET", "HEAD", "POST"];

/// A literal (template-free) field must be one of `allowed`.
pub(super) fn literal_in(field: &str, value: &str, allowed: &[&str]) -> Result<(), String> {
    if value.contains("{{") || allowed.contains(&value) {
        Ok(())
    } else {
        Err(format!("{field}: one of {}", allowed.join(", ")))
    }
}

pub(super) fn check_step(
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
        StepAction::Image { op, gate, .. } => {
            literal_in("op", op, &["update", "stack"])?;
            if !gate.is_empty() && !gate.contains("{{") {
                parse_duration(gate).map_err(|e| format!("gate: {e}"))?;
            }
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

pub(super) fn check_param(p: &ParamDef) -> Result<(), String> {
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

pub(super) fn check_value_shape(p: &ParamDef, v: &Value) -> Result<Value, String> {
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
