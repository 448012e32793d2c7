//! `op: stack` of the `image` step: every service of a compose project,
//! dependencies first ([`crate::inventory::graph::DepGraph::start_order`]),
//! each updated and gated as `op: update` does ([`super::apply`]); the first
//! service that fails or rolls back stops the rollout, and the services
//! after it keep their version.

use std::time::Duration;

use serde_json::{json, Value};

use super::apply::update_service;
use crate::inventory::Snapshot;
use crate::runbooks::step::{StepCx, StepResult};

/// `op: stack`: every service of the compose project, dependencies first.
pub(super) async fn stack(
    cx: &StepCx<'_>,
    project: &str,
    to: &str,
    gate: Option<Duration>,
) -> StepResult {
    let snapshot = {
        let mut conn = cx
            .state
            .pool
            .acquire()
            .await
            .map_err(|e| format!("reading the inventory: {e}"))?;
        Snapshot::load(&mut conn)
            .await
            .map_err(|e| format!("reading the inventory: {e}"))?
    };
    let names: Vec<String> = snapshot
        .services
        .iter()
        .filter(|s| s.fields.compose_project.as_deref() == Some(project))
        .map(|s| s.name.clone())
        .collect();
    if names.is_empty() {
        return Err(format!(
            "no service of compose project \"{project}\" in the inventory"
        ));
    }
    let order = snapshot
        .graph()
        .map_err(|e| format!("the dependency graph: {e}"))?
        .start_order(&names)
        .map_err(|e| e.to_string())?;
    cx.out.line(format!(
        "{project}: updating in order {}",
        order.join(" → ")
    ));
    let mut reports: Vec<Value> = Vec::new();
    for name in &order {
        cx.out.line(format!("── {name}"));
        match update_service(cx, name, to, gate).await {
            Ok(r) if r.outcome == "rolled_back" => {
                reports.push(r.json());
                return Err(stopped(project, name, &r.message, &reports, &order));
            }
            Ok(r) => reports.push(r.json()),
            Err(e) => {
                reports.push(json!({"service": name, "outcome": "failed", "message": e}));
                return Err(stopped(project, name, &e, &reports, &order));
            }
        }
    }
    Ok(json!({"project": project, "order": order, "services": reports}))
}

fn stopped(project: &str, at: &str, why: &str, reports: &[Value], order: &[String]) -> String {
    let done: Vec<String> = reports
        .iter()
        .map(|r| {
            format!(
                "{} {}",
                r["service"].as_str().unwrap_or_default(),
                r["outcome"].as_str().unwrap_or_default()
            )
        })
        .collect();
    let left: Vec<&str> = order
        .iter()
        .skip(reports.len())
        .map(String::as_str)
        .collect();
    format!(
        "{project}: stopped at {at}: {why} (done: {}{})",
        done.join(", "),
        if left.is_empty() {
            String::new()
        } else {
            format!("; not updated: {}", left.join(", "))
        }
    )
}
