//! The Docker-side step kinds: container and stack actions (through
//! `actions`), scale, exec (argv, no shell), logs, prune.

use std::collections::HashMap;

use futures::StreamExt;
use opsdeck_wire::{
    ContainerActionKind, ContainerActionRequest, ContainerInfo, StackActionKind, StackActionRequest,
};
use serde_json::json;

use crate::actions::{self, Invoker};
use crate::docker::ops;

use super::{StepCx, StepResult};

fn container_kind(s: &str) -> Result<ContainerActionKind, String> {
    Ok(match s {
        "start" => ContainerActionKind::Start,
        "stop" => ContainerActionKind::Stop,
        "restart" => ContainerActionKind::Restart,
        "kill" => ContainerActionKind::Kill,
        "pause" => ContainerActionKind::Pause,
        "unpause" => ContainerActionKind::Unpause,
        other => {
            return Err(format!(
                "action \"{}\": start, stop, restart, kill, pause or unpause",
                other.escape_default()
            ))
        }
    })
}

fn stack_kind(s: &str) -> Result<StackActionKind, String> {
    Ok(match s {
        "start" => StackActionKind::Start,
        "stop" => StackActionKind::Stop,
        "restart" => StackActionKind::Restart,
        other => {
            return Err(format!(
                "action \"{}\": start, stop or restart",
                other.escape_default()
            ))
        }
    })
}

pub(super) async fn target(cx: &StepCx<'_>, service: &str) -> Result<actions::Target, String> {
    actions::service_target(cx.state, service)
        .await
        .map_err(|e| e.to_string())
}

pub(super) async fn container(cx: &StepCx<'_>, service: &str, action: &str) -> StepResult {
    let kind = container_kind(action)?;
    let t = target(cx, service).await?;
    let by = Invoker {
        actor: cx.actor.clone(),
        ctx: None,
    };
    let record = actions::run_service_action(
        cx.state,
        &by,
        t,
        &ContainerActionRequest {
            action: kind,
            timeout_secs: None,
            signal: None,
            confirm: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    for s in &record.steps {
        cx.out.line(format!(
            "{} {}: {} ({} ms){}",
            s.action,
            s.container,
            if s.ok { "ok" } else { "failed" },
            s.duration_ms,
            s.error
                .as_deref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        ));
    }
    let containers: Vec<&str> = record.steps.iter().map(|s| s.container.as_str()).collect();
    match record.error {
        Some(e) => Err(e),
        None => Ok(json!({"action_id": record.id, "containers": containers})),
    }
}

pub(super) async fn stack(cx: &StepCx<'_>, project: &str, action: &str) -> StepResult {
    let kind = stack_kind(action)?;
    let by = Invoker {
        actor: cx.actor.clone(),
        ctx: None,
    };
    let record = actions::run_stack_action(
        cx.state,
        &by,
        project,
        &StackActionRequest {
            action: kind,
            timeout_secs: None,
            confirm: None,
        },
        false,
    )
    .await
    .map_err(|e| e.to_string())?;
    for s in &record.steps {
        cx.out.line(format!(
            "{} {} {}: {}{}",
            s.action,
            s.service.as_deref().unwrap_or("-"),
            s.container,
            if s.ok { "ok" } else { "failed" },
            s.error
                .as_deref()
                .map(|e| format!(" — {e}"))
                .unwrap_or_default()
        ));
    }
    match record.error {
        Some(e) => Err(e),
        None => Ok(json!({"action_id": record.id, "steps": record.steps.len()})),
    }
}

/// The trailing replica number of a compose container name (`app-web-3`).
fn replica_number(name: &str) -> Option<u32> {
    name.rsplit_once('-').and_then(|(_, n)| n.parse().ok())
}

pub(super) async fn scale(cx: &StepCx<'_>, service: &str, replicas: &str) -> StepResult {
    let want: usize = replicas
        .trim()
        .parse()
        .ok()
        .filter(|n| (1..=50).contains(n))
        .ok_or_else(|| format!("replicas \"{replicas}\": a number from 1 to 50"))?;
    let t = target(cx, service).await?;
    let mut cs: Vec<ContainerInfo> = t.containers;
    let Some(template) = cs.first().cloned() else {
        return Err(format!(
            "service \"{service}\" has no container to copy: start it first"
        ));
    };
    let (Some(project), Some(svc)) = (
        template.compose_project.clone(),
        template.compose_service.clone(),
    ) else {
        return Err(format!(
            "service \"{service}\" is not a compose service: only compose services scale"
        ));
    };
    cs.sort_by_key(|c| replica_number(&c.name).unwrap_or(0));
    let (conn, docker) = actions::engine_of(cx.state, &template).map_err(|e| e.to_string())?;
    let have = cs.len();
    cx.out.line(format!("{service}: {have} → {want} replicas"));
    let mut created = Vec::new();
    let mut removed = Vec::new();
    if want > have {
        let mut next = cs
            .iter()
            .filter_map(|c| replica_number(&c.name))
            .max()
            .unwrap_or(have as u32);
        for _ in have..want {
            next += 1;
            let name = format!("{project}-{svc}-{next}");
            let id = ops::clone_replica(&docker, &template.id, &name, next)
                .await
                .map_err(|e| format!("creating {name}: {e:#}"))?;
            let _ = conn.refresh_container(&docker, &id).await;
            cx.out.line(format!("created and started {name}"));
            created.push(name);
        }
    } else {
        for c in cs.iter().rev().take(have - want) {
            ops::stop_and_remove(&docker, &c.id, 10)
                .await
                .map_err(|e| format!("removing {}: {e:#}", c.name))?;
            cx.out.line(format!("stopped and removed {}", c.name));
            removed.push(c.name.clone());
        }
    }
    cx.state.engines.bump();
    Ok(json!({"replicas": want, "before": have, "created": created, "removed": removed}))
}

pub(super) async fn exec(
    cx: &StepCx<'_>,
    service: &str,
    argv: &[String],
    container: Option<&str>,
) -> StepResult {
    if argv.is_empty() || argv[0].trim().is_empty() {
        return Err("argv: give the program and its arguments".into());
    }
    let t = target(cx, service).await?;
    let c = match container {
        Some(n) => t.containers.iter().find(|c| c.name == n),
        None => t.containers.iter().find(|c| c.state == "running"),
    }
    .ok_or_else(|| format!("service \"{service}\" has no running container"))?;
    let (_, docker) = actions::engine_of(cx.state, c).map_err(|e| e.to_string())?;
    cx.out
        .line(format!("$ {} (in {})", shell_quote(argv), c.name));
    let r = ops::exec(&docker, &c.id, argv, cx.timeout)
        .await
        .map_err(|e| format!("{e:#}"))?;
    cx.out.text(&r.stdout);
    if !r.stderr.is_empty() {
        for l in r.stderr.lines() {
            cx.out.line(format!("stderr: {l}"));
        }
    }
    let head = |s: &str| s.chars().take(4096).collect::<String>();
    let result = json!({
        "container": c.name,
        "exit_code": r.exit_code,
        "stdout": head(r.stdout.trim_end()),
        "stderr": head(r.stderr.trim_end()),
    });
    match r.exit_code {
        Some(0) => Ok(result),
        Some(code) => Err(format!("exit code {code}")),
        None => Err("timed out".into()),
    }
}

/// For display only: how the argv would read in a shell (never executed).
fn shell_quote(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:+,@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) async fn logs(cx: &StepCx<'_>, service: &str, lines: u32) -> StepResult {
    let lines = lines.clamp(1, 2000);
    let t = target(cx, service).await?;
    if t.containers.is_empty() {
        return Err(actions::no_containers(&t.name).to_string());
    }
    let mut total = 0;
    for c in &t.containers {
        let (_, docker) = actions::engine_of(cx.state, c).map_err(|e| e.to_string())?;
        cx.out.line(format!("── {} ({}) ──", c.name, c.state));
        let mut stream = Box::pin(ops::log_lines(
            &docker,
            &c.id,
            &ops::LogQuery {
                tail: Some(lines),
                timestamps: true,
                ..Default::default()
            },
        ));
        while let Some(line) = stream.next().await {
            match line {
                Ok(l) => {
                    total += 1;
                    cx.out.line(l);
                }
                Err(e) => {
                    cx.out.line(format!("(log read failed: {e:#})"));
                    break;
                }
            }
        }
    }
    Ok(json!({"lines": total, "containers": t.containers.len()}))
}

pub(super) async fn prune(cx: &StepCx<'_>, what: &str, engine: Option<&str>) -> StepResult {
    let engines = match engine {
        Some(name) => vec![cx
            .state
            .engines
            .by_name(name)
            .ok_or_else(|| format!("no engine \"{name}\""))?],
        None => cx.state.engines.engines(),
    };
    if engines.is_empty() {
        return Err("no engine registered".into());
    }
    let mut per_engine = HashMap::new();
    let mut reclaimed = 0i64;
    let mut deleted = 0usize;
    for e in engines {
        let docker = e.client().map_err(|e| e.to_string())?;
        let name = e.name.clone();
        let p = ops::prune(&docker, what)
            .await
            .map_err(|err| format!("engine {name}: {err:#}"))?;
        cx.out.line(format!(
            "engine {name}: removed {} {what}, reclaimed {:.1} MB",
            p.deleted.len(),
            p.reclaimed_bytes as f64 / 1e6
        ));
        for d in p.deleted.iter().take(50) {
            cx.out.line(format!("  {d}"));
        }
        reclaimed += p.reclaimed_bytes;
        deleted += p.deleted.len();
        per_engine.insert(name, p.deleted.len());
    }
    cx.state.engines.bump();
    Ok(json!({"deleted": deleted, "reclaimed_bytes": reclaimed, "per_engine": per_engine}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replica_numbers_come_from_compose_names() {
        assert_eq!(replica_number("mosaic-api-3"), Some(3));
        assert_eq!(replica_number("api"), None);
        assert_eq!(replica_number("my-app-x"), None);
    }

    #[test]
    fn argv_display_quotes_what_a_shell_would_split() {
        let argv: Vec<String> = ["echo", "a b", "$(id)", "it's"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        assert_eq!(shell_quote(&argv), r"echo 'a b' '$(id)' 'it'\''s'");
    }

    #[test]
    fn unknown_actions_are_refused() {
        assert!(container_kind("rm").is_err());
        assert!(stack_kind("down").is_err());
        assert!(container_kind("restart").is_ok());
    }
}
