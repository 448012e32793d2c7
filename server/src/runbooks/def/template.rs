//! Templates inside step fields: `{{params.NAME}}` and
//! `{{steps.STEP.FIELD}}` references, and rendering a step's action with
//! the run's values (each template becomes a value inside one string field;
//! nothing here builds shell text or SQL).

use super::*;

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
        StepAction::Image {
            op,
            target,
            to,
            gate,
        } => v.extend([op.as_str(), target, to, gate]),
        StepAction::Cleanup { preview } => v.push(preview),
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

pub(super) fn template_re() -> &'static Regex {
    static RE: std::sync::OnceLock<Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| Regex::new(r"\{\{\s*([^{}]*?)\s*\}\}").expect("template regex"))
}

pub(super) fn parse_ref(inner: &str) -> Result<Ref, String> {
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

pub(super) fn as_text(v: &Value) -> String {
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
        StepAction::Image {
            op,
            target,
            to,
            gate,
        } => StepAction::Image {
            op: r(op)?,
            target: r(target)?,
            to: r(to)?,
            gate: r(gate)?,
        },
        StepAction::Cleanup { preview } => StepAction::Cleanup {
            preview: r(preview)?,
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
