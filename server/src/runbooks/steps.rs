//! Executing one step of a run, and describing it for dry runs.
//!
//! Each kind reuses the panel's one path for that kind of work: container
//! and stack actions go through `actions` (their own `container_actions`
//! rows and audit entries), exec and logs through `docker::ops`, health
//! through the `HealthHub`, database actions through [`super::dbops`].
//! Values arrive already rendered from templates; they are data (names,
//! argv elements, URLs), checked here before use. Parking kinds (manual,
//! approval, runbook) and notify are handled by the engine; `backup` and
//! `maintenance` by their capabilities, registered as [`super::step::StepKind`]s.

use std::collections::HashMap;
use std::time::Duration;

use futures::StreamExt;
use opsdeck_wire::{
    CheckStatus, ContainerActionKind, ContainerActionRequest, ContainerInfo, HttpCheck, HttpMethod,
    ServiceHealth, StackActionKind, StackActionRequest, StepAction,
};
use serde_json::{json, Value};

use super::def::parse_duration;
use super::output::Output;
use crate::actions::{self, Invoker};
use crate::checks::probe::http::HttpClients;
use crate::docker::ops;
use crate::state::AppState;

pub use super::step::{StepCx, StepResult};

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

async fn target(cx: &StepCx<'_>, service: &str) -> Result<actions::Target, String> {
    actions::service_target(cx.state, service)
        .await
        .map_err(|e| e.to_string())
}

/// Runs a non-parking step and returns its named outputs.
pub async fn execute(cx: &StepCx<'_>, action: &StepAction) -> StepResult {
    // Kinds other capabilities registered (backup, maintenance).
    if let Some(kind) = cx.state.step_kinds.get(action.kind()) {
        return kind.execute(cx, action).await;
    }
    // Read-only mode refuses the kinds that change containers before they
    // look anything up (container and stack steps pass `actions` too).
    if matches!(
        action,
        StepAction::Container { .. }
            | StepAction::Stack { .. }
            | StepAction::Scale { .. }
            | StepAction::Exec { .. }
            | StepAction::Prune { .. }
    ) {
        actions::ensure_writable(cx.state, &format!("a {} step", action.kind()))
            .map_err(|e| e.to_string())?;
    }
    match action {
        StepAction::Container { service, action } => container(cx, service, action).await,
        StepAction::Stack { project, action } => stack(cx, project, action).await,
        StepAction::Scale { service, replicas } => scale(cx, service, replicas).await,
        StepAction::Exec {
            service,
            argv,
            container,
        } => exec(cx, service, argv, container.as_deref()).await,
        StepAction::Logs { service, lines } => logs(cx, service, *lines).await,
        StepAction::Status { service } => status(cx, service).await,
        StepAction::Database {
            database,
            op,
            older_than,
            table,
            limit,
        } => {
            let older = older_than
                .as_deref()
                .map(parse_duration)
                .transpose()
                .map_err(|e| format!("older_than: {e}"))?;
            super::dbops::run(
                cx.state,
                database,
                *op,
                older,
                table.as_deref(),
                *limit,
                cx.out,
            )
            .await
        }
        StepAction::Http {
            url,
            method,
            expect_status,
            contains,
        } => http(cx, url, method, *expect_status, contains.as_deref()).await,
        StepAction::Checks {
            service,
            check_kind,
        } => {
            let tally = run_checks(cx, service.as_deref(), check_kind.as_deref()).await?;
            if tally.critical > 0 {
                Err(format!(
                    "{} of {} checks critical",
                    tally.critical,
                    tally.total()
                ))
            } else {
                Ok(tally.json())
            }
        }
        StepAction::WaitHealthy { service } => wait_healthy(cx, service).await,
        StepAction::Sleep { duration } => {
            let d = parse_duration(duration)?;
            cx.out
                .line(format!("sleeping {}", humantime::format_duration(d)));
            tokio::time::sleep(d).await;
            Ok(json!({"slept_secs": d.as_secs_f64()}))
        }
        StepAction::Prune { what, engine } => prune(cx, what, engine.as_deref()).await,
        StepAction::Maintenance { .. } | StepAction::Backup { .. } => Err(format!(
            "{} steps are not available: no capability registered them",
            action.kind()
        )),
        StepAction::Manual { .. }
        | StepAction::Approval { .. }
        | StepAction::Notify { .. }
        | StepAction::Runbook { .. } => Err(format!(
            "{} steps are run by the engine, not executed",
            action.kind()
        )),
    }
}

async fn container(cx: &StepCx<'_>, service: &str, action: &str) -> StepResult {
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

async fn stack(cx: &StepCx<'_>, project: &str, action: &str) -> StepResult {
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

async fn scale(cx: &StepCx<'_>, service: &str, replicas: &str) -> StepResult {
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

async fn exec(
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

async fn logs(cx: &StepCx<'_>, service: &str, lines: u32) -> StepResult {
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
                tail: lines,
                timestamps: true,
                follow: false,
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

fn health_str(h: ServiceHealth) -> &'static str {
    match h {
        ServiceHealth::Operational => "operational",
        ServiceHealth::Maintenance => "maintenance",
        ServiceHealth::Unknown => "unknown",
        ServiceHealth::Degraded => "degraded",
        ServiceHealth::Impacted => "impacted",
        ServiceHealth::Down => "down",
    }
}

async fn status(cx: &StepCx<'_>, service: &str) -> StepResult {
    let (_, statuses) = cx.state.health.statuses();
    let Some(s) = statuses.into_iter().find(|s| s.name == service) else {
        // A service added a moment ago is in the inventory before the board
        // has been recomputed: report it as not yet known.
        let exists: bool = sqlx::query_scalar!(
            r#"SELECT EXISTS (SELECT 1 FROM services WHERE name = $1) AS "exists!""#,
            service
        )
        .fetch_one(&cx.state.pool)
        .await
        .map_err(|e| format!("reading services: {e}"))?;
        if !exists {
            return Err(format!("no service \"{service}\" in the inventory"));
        }
        cx.out
            .line(format!("{service}: unknown (not on the status board yet)"));
        return Ok(json!({"health": "unknown", "impacted_by": [], "problems": [], "since": null}));
    };
    cx.out.line(format!(
        "{}: {}{}",
        s.name,
        health_str(s.health),
        if s.impacted_by.is_empty() {
            String::new()
        } else {
            format!(" (impacted by {})", s.impacted_by.join(", "))
        }
    ));
    for p in &s.problems {
        cx.out.line(format!("  - {p}"));
    }
    Ok(json!({
        "health": health_str(s.health),
        "impacted_by": s.impacted_by,
        "problems": s.problems,
        "since": s.since,
    }))
}

async fn http(
    cx: &StepCx<'_>,
    url: &str,
    method: &str,
    expect: u16,
    contains: Option<&str>,
) -> StepResult {
    let method = match method {
        "GET" => HttpMethod::Get,
        "HEAD" => HttpMethod::Head,
        "POST" => HttpMethod::Post,
        other => return Err(format!("method \"{other}\": GET, HEAD or POST")),
    };
    let check = HttpCheck {
        url: url.to_owned(),
        method,
        expect_status: vec![expect],
        body_contains: contains.map(str::to_owned),
        body_regex: None,
        warning_ms: u32::MAX / 2,
        critical_ms: u32::MAX / 2 + 1,
        tls_verify: true,
        max_redirects: 0,
    };
    let p = HttpClients::shared(cx.state.settings.checks_allow_link_local)
        .probe(&check, cx.timeout.min(Duration::from_secs(300)))
        .await;
    cx.out.line(format!("{} → {}", url, p.message));
    match p.status {
        CheckStatus::Critical | CheckStatus::Unknown => Err(p.message),
        _ => Ok(json!({"message": p.message, "latency_ms": p.latency_ms})),
    }
}

/// Results of running checks now.
#[derive(Debug, Default)]
struct Tally {
    ok: u32,
    warning: u32,
    critical: u32,
    unknown: u32,
}

impl Tally {
    fn total(&self) -> u32 {
        self.ok + self.warning + self.critical + self.unknown
    }
    fn json(&self) -> Value {
        json!({"ok": self.ok, "warning": self.warning, "critical": self.critical,
               "unknown": self.unknown, "total": self.total()})
    }
}

/// Runs the enabled checks of a service (or all services, or host checks
/// with `check_kind: host`) now.
async fn run_checks(
    cx: &StepCx<'_>,
    service: Option<&str>,
    kind: Option<&str>,
) -> Result<Tally, String> {
    let rows = sqlx::query!(
        r#"SELECT c.id, c.name, coalesce(s.name, 'host') AS "service!" FROM checks c
         LEFT JOIN services s ON s.id = c.service_id
         WHERE c.enabled AND ($1::text IS NULL OR s.name = $1) AND ($2::text IS NULL OR c.kind = $2)
         ORDER BY s.name NULLS FIRST, c.name"#,
        service,
        kind
    )
    .fetch_all(&cx.state.pool)
    .await
    .map_err(|e| format!("reading checks: {e}"))?;
    if let Some(s) = service {
        if rows.is_empty() {
            let exists: bool = sqlx::query_scalar!(
                r#"SELECT EXISTS (SELECT 1 FROM services WHERE name = $1) AS "exists!""#,
                s
            )
            .fetch_one(&cx.state.pool)
            .await
            .map_err(|e| format!("reading services: {e}"))?;
            if !exists {
                return Err(format!("no service \"{s}\" in the inventory"));
            }
        }
    }
    let mut tally = Tally::default();
    let checks: Vec<(i64, String, String)> = rows
        .into_iter()
        .map(|r| (r.id, r.name, r.service))
        .collect();
    let results = futures::stream::iter(
        checks
            .into_iter()
            .map(|(id, name, svc)| async move { (name, svc, cx.state.health.run_now(id).await) }),
    )
    .buffered(16)
    .collect::<Vec<_>>()
    .await;
    for (name, svc, r) in results {
        let (status, msg) = match r {
            Some(r) => (r.status, r.message),
            None => (
                CheckStatus::Unknown,
                "not loaded by the health engine".into(),
            ),
        };
        match status {
            CheckStatus::Ok => tally.ok += 1,
            CheckStatus::Warning => tally.warning += 1,
            CheckStatus::Critical => tally.critical += 1,
            CheckStatus::Unknown => tally.unknown += 1,
        }
        cx.out
            .line(format!("{svc}/{name}: {} — {msg}", status.as_str()));
    }
    if tally.total() == 0 {
        cx.out.line("no checks matched");
    }
    Ok(tally)
}

async fn wait_healthy(cx: &StepCx<'_>, service: &str) -> StepResult {
    let started = std::time::Instant::now();
    let mut last = String::new();
    loop {
        let t = target(cx, service).await?;
        let running = !t.containers.is_empty()
            && t.containers.iter().all(|c| {
                c.state == "running" && c.health.as_deref().is_none_or(|h| h == "healthy")
            });
        let containers = if t.containers.is_empty() {
            "no containers".to_owned()
        } else {
            t.containers
                .iter()
                .map(|c| {
                    format!(
                        "{} {}{}",
                        c.name,
                        c.state,
                        c.health
                            .as_deref()
                            .map(|h| format!("/{h}"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut checks_ok = true;
        let mut checks_line = String::new();
        if running {
            let quiet = Output::new();
            let tally = run_checks(&StepCx { out: &quiet, ..*cx }, Some(service), None).await?;
            checks_ok = tally.critical == 0 && tally.unknown == 0;
            if tally.total() > 0 {
                checks_line = format!(
                    "; checks {} ok, {} warning, {} critical",
                    tally.ok, tally.warning, tally.critical
                );
            }
        }
        let line = format!("{containers}{checks_line}");
        if line != last {
            cx.out
                .line(format!("[{:>4}s] {line}", started.elapsed().as_secs()));
            last = line;
        }
        if running && checks_ok {
            return Ok(json!({"waited_secs": started.elapsed().as_secs_f64()}));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

async fn prune(cx: &StepCx<'_>, what: &str, engine: Option<&str>) -> StepResult {
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

/// What a step would do, in words, for a dry run. Reads the inventory and
/// the engines' caches; changes nothing.
pub async fn describe(state: &AppState, action: &StepAction) -> String {
    let containers_of = |service: &str| {
        let service = service.to_owned();
        let state = state.clone();
        async move {
            match actions::service_target(&state, &service).await {
                Ok(t) if t.containers.is_empty() => "no containers (the step would fail)".into(),
                Ok(t) => t
                    .containers
                    .iter()
                    .map(|c| format!("{} on {}", c.name, c.engine))
                    .collect::<Vec<_>>()
                    .join(", "),
                Err(e) => format!("{e} (the step would fail)"),
            }
        }
    };
    match action {
        StepAction::Container { service, action } => format!(
            "{action} the containers of service {service}: {}",
            containers_of(service).await
        ),
        StepAction::Stack { project, action } => {
            format!("{action} compose project {project} in dependency order")
        }
        StepAction::Scale { service, replicas } => format!(
            "scale service {service} to {replicas} replicas (now: {})",
            containers_of(service).await
        ),
        StepAction::Exec { service, argv, .. } => format!(
            "run [{}] (argv, no shell) in a running container of {service}: {}",
            argv.iter()
                .map(|a| format!("{a:?}"))
                .collect::<Vec<_>>()
                .join(", "),
            containers_of(service).await
        ),
        StepAction::Logs { service, lines } => {
            format!("show the last {lines} log lines of {service}")
        }
        StepAction::Status { service } => format!("report the health of {service}"),
        StepAction::Database {
            database,
            op,
            older_than,
            table,
            limit,
        } => super::dbops::describe(
            database,
            *op,
            older_than.as_deref().and_then(|d| parse_duration(d).ok()),
            table.as_deref(),
            *limit,
        ),
        StepAction::Http {
            url,
            method,
            expect_status,
            contains,
        } => format!(
            "{method} {url}, expect HTTP {expect_status}{}",
            contains
                .as_deref()
                .map(|c| format!(" and a body containing {c:?}"))
                .unwrap_or_default()
        ),
        StepAction::Checks {
            service,
            check_kind,
        } => format!(
            "run the {}checks of {} now; fail if one is critical",
            check_kind
                .as_deref()
                .map(|k| format!("{k} "))
                .unwrap_or_default(),
            service.as_deref().unwrap_or("every service")
        ),
        StepAction::WaitHealthy { service } => {
            format!("wait until {service}'s containers run and its checks pass")
        }
        StepAction::Sleep { duration } => format!("wait {duration}"),
        StepAction::Prune { what, engine } => format!(
            "remove unused {what} on {}",
            engine
                .as_deref()
                .map(|e| format!("engine {e}"))
                .unwrap_or_else(|| "every engine".into())
        ),
        StepAction::Manual { instructions } => {
            format!("an operator ticks off: {instructions}")
        }
        StepAction::Approval { message } => format!(
            "wait for approval{}",
            if message.is_empty() {
                String::new()
            } else {
                format!(": {message}")
            }
        ),
        StepAction::Notify { message, severity } => {
            format!("notify ({severity}): {message}")
        }
        StepAction::Runbook { runbook, params } => format!(
            "run runbook {runbook} with {} and wait for it",
            serde_json::to_string(params).unwrap_or_default()
        ),
        StepAction::Backup { op, subject } => match op.as_str() {
            "delete" => format!(
                "delete backup {subject}: remove its objects from the target and mark it deleted"
            ),
            "drill" => format!(
                "restore drill of plan {subject}: verify its newest good backup again (read back, checksum, test restore, row counts)"
            ),
            "verify" => format!(
                "verify backup {subject}: read it back, check its checksum, test-restore it into a scratch database and compare row counts"
            ),
            "restore" => format!(
                "restore from backup {subject} (artifact and destination as in the parameters): check its checksum, back up the original first, stop its dependents when asked, restore, start them again"
            ),
            _ => format!(
                "run backup plan {subject}: dump each source, compress (zstd), checksum and store; then verify when the plan says so"
            ),
        },
        StepAction::Maintenance { op, period } => format!(
            "{op} maintenance period {period} (mark its services, run its stack's actuation{})",
            if op == "enable" {
                "; rolled back on failure"
            } else {
                "; restore the previous state"
            }
        ),
    }
}

/// Whether a step changes something (and so gets its own audit entry):
/// container and stack actions, scale, exec, prune, HTTP requests other than
/// GET/HEAD, and the database operations that terminate, vacuum, reindex or
/// promote. Reading steps (status, logs, checks, waits, reports) are on the
/// run's timeline only; manual ticks and approvals are audited by their API.
pub fn changes_something(action: &StepAction) -> bool {
    use opsdeck_wire::DbOp;
    match action {
        StepAction::Container { .. }
        | StepAction::Stack { .. }
        | StepAction::Scale { .. }
        | StepAction::Exec { .. }
        | StepAction::Prune { .. } => true,
        StepAction::Http { method, .. } => !matches!(method.as_str(), "GET" | "HEAD"),
        StepAction::Database { op, .. } => matches!(
            op,
            DbOp::TerminateIdle
                | DbOp::TerminateActive
                | DbOp::VacuumAnalyze
                | DbOp::Reindex
                | DbOp::Promote
        ),
        _ => false,
    }
}

/// The action kind an approval policy can name for this (rendered) step:
/// `container.stop.critical` (stop, kill or restart of a critical-tier
/// service), `stack.stop`, `prune`, `exec`, `scale`, `database.promote`,
/// `database.terminate`, `database.maintenance` (vacuum, reindex).
pub async fn policy_kind(state: &AppState, action: &StepAction) -> Option<String> {
    use opsdeck_wire::DbOp;
    Some(match action {
        StepAction::Container { service, action }
            if matches!(action.as_str(), "stop" | "kill" | "restart") =>
        {
            let tier: Option<String> = sqlx::query_scalar!(
                r#"SELECT tier::text AS "tier!" FROM services WHERE name = $1"#,
                service
            )
            .fetch_optional(&state.pool)
            .await
            .ok()
            .flatten();
            if tier.as_deref() == Some("critical") {
                "container.stop.critical".into()
            } else {
                return None;
            }
        }
        StepAction::Stack { action, .. } if action != "start" => "stack.stop".into(),
        StepAction::Prune { .. } => "prune".into(),
        StepAction::Maintenance { op, .. } if op == "enable" => "maintenance.enable".into(),
        StepAction::Backup { op, .. } if op == "delete" => "backup.delete".into(),
        StepAction::Exec { .. } => "exec".into(),
        StepAction::Scale { .. } => "scale".into(),
        StepAction::Database { op, .. } => match op {
            DbOp::Promote => "database.promote".into(),
            DbOp::TerminateIdle | DbOp::TerminateActive => "database.terminate".into(),
            DbOp::VacuumAnalyze | DbOp::Reindex => "database.maintenance".into(),
            _ => return None,
        },
        _ => return None,
    })
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
