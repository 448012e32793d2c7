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
//!
//! Sections: [`template`] (references and rendering), [`validate`] (the
//! definition, its parameters and a run's values), [`yaml`]; here the
//! durations, the run's target and the approval binding.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use opsdeck_wire::{ParamDef, ParamKind, RunbookDef, StepAction, StepDef};
use regex::Regex;
use serde_json::Value;
use sha2::{Digest, Sha256};

mod template;
mod validate;
mod yaml;

pub use template::*;
pub use validate::*;
pub use yaml::*;

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
        StepAction::Image { .. } => Duration::from_secs(3600),
        StepAction::Cleanup { .. } => Duration::from_secs(900),
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
