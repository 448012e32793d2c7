//! Looking into a service's containers and running a command in one: logs
//! (merged, filtered, followed), one-shot stats, inspect documents (secrets
//! masked) and exec of an argv array (audited).

use std::time::{Duration, Instant};

use futures::stream::BoxStream;
use futures::StreamExt;
use opsdeck_wire::{ContainerInfo, ContainerStats, ExecRequest, ExecResult, Outcome};
use serde_json::json;

use super::run::{detached, engine_of, ensure_writable, no_containers, target, Invoker};
use super::ActionError;
use crate::docker::ops;
use crate::state::AppState;

/// Longest timeout an exec may ask for.
pub const EXEC_MAX_SECS: u32 = 300;

/// What to read from a service's logs.
#[derive(Debug, Clone)]
pub struct LogRequest {
    /// Last lines per container (at most 10000).
    pub tail: u32,
    pub timestamps: bool,
    /// Keep only lines containing this text (case-insensitive).
    pub filter: Option<String>,
    /// Container name or id; default: all of the service's containers.
    pub container: Option<String>,
    pub follow: bool,
}

/// A service's log lines, merged over its containers (each line prefixed
/// with the container's name when there are several).
pub struct Logs {
    /// The service's name.
    pub service: String,
    pub lines: BoxStream<'static, anyhow::Result<String>>,
}

/// Opens the log streams of service `id`'s containers.
pub async fn logs(state: &AppState, id: i64, r: &LogRequest) -> Result<Logs, ActionError> {
    if r.tail > 10_000 {
        return Err(ActionError::Invalid("tail: at most 10000".into()));
    }
    let t = target(state, Some(id), None).await?;
    let containers: Vec<ContainerInfo> = t
        .containers
        .into_iter()
        .filter(|c| {
            r.container
                .as_deref()
                .is_none_or(|n| n == c.name || n == c.id)
        })
        .collect();
    if containers.is_empty() {
        return Err(no_containers(&t.name));
    }
    let filter = r
        .filter
        .as_deref()
        .map(str::to_lowercase)
        .filter(|f| !f.is_empty());
    let query = ops::LogQuery {
        tail: Some(r.tail),
        timestamps: r.timestamps,
        follow: r.follow,
        ..Default::default()
    };
    let many = containers.len() > 1;
    let mut streams = Vec::new();
    for c in &containers {
        let (_, docker) = engine_of(state, c)?;
        let prefix = if many {
            format!("{} | ", c.name)
        } else {
            String::new()
        };
        let filter = filter.clone();
        streams.push(
            ops::log_lines(&docker, &c.id, &query)
                .filter_map(move |line| {
                    let keep = match &line {
                        Ok(l) => filter
                            .as_deref()
                            .is_none_or(|f| l.to_lowercase().contains(f)),
                        Err(_) => true,
                    };
                    let prefix = prefix.clone();
                    async move { keep.then(|| line.map(|l| format!("{prefix}{l}"))) }
                })
                .boxed(),
        );
    }
    Ok(Logs {
        service: t.name,
        lines: futures::stream::select_all(streams).boxed(),
    })
}

/// Reads a finished (not followed) log to the end, within 20 s.
pub async fn collect_lines(
    lines: BoxStream<'static, anyhow::Result<String>>,
) -> Result<Vec<String>, ActionError> {
    tokio::time::timeout(Duration::from_secs(20), lines.collect::<Vec<_>>())
        .await
        .map_err(|_| ActionError::Unavailable("the engine did not send the logs in time".into()))?
        .into_iter()
        .collect::<Result<_, _>>()
        .map_err(|e| ActionError::Engine(format!("{e:#}")))
}

/// CPU, memory, network and block I/O of service `id`'s running containers
/// (one-shot stats, sampled concurrently), sorted by container name.
pub async fn stats(state: &AppState, id: i64) -> Result<Vec<ContainerStats>, ActionError> {
    let t = target(state, Some(id), None).await?;
    let running: Vec<&ContainerInfo> = t
        .containers
        .iter()
        .filter(|c| c.state == "running")
        .collect();
    let mut jobs = Vec::new();
    for c in running {
        let (conn, docker) = engine_of(state, c)?;
        jobs.push(async move { ops::stats(&conn, &docker, &c.id, &c.name).await });
    }
    let results: Vec<_> = futures::stream::iter(jobs)
        .buffer_unordered(16)
        .collect()
        .await;
    let mut out = Vec::new();
    for r in results {
        out.push(r.map_err(|e| ActionError::Engine(format!("{e:#}")))?);
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(out)
}

/// The engine's inspect documents of service `id`'s containers, secret-
/// looking environment values masked.
pub async fn inspect(state: &AppState, id: i64) -> Result<Vec<serde_json::Value>, ActionError> {
    let t = target(state, Some(id), None).await?;
    let mut out = Vec::new();
    for c in &t.containers {
        let (_, docker) = engine_of(state, c)?;
        out.push(
            ops::inspect(&docker, &c.id)
                .await
                .map_err(|e| ActionError::Engine(format!("{e:#}")))?,
        );
    }
    Ok(out)
}

/// Runs `req.argv` in a container of service `id` (no shell), audited
/// before and after: an `action.started` entry (who, container, argv,
/// timeout) is written before the engine is asked, and a `container.exec`
/// entry with the outcome, exit code and duration when it ends. The exec
/// runs in a detached task bounded by its own timeout (at most
/// [`EXEC_MAX_SECS`]), so a request that ends first (request timeout,
/// client gone) still leaves the completion entry.
///
/// On timeout Opsdeck stops waiting and records `timed out`; the Docker
/// Engine API has no way to end an exec'd process, which may keep running
/// in the container (the entry says so).
pub async fn exec(
    state: &AppState,
    by: &Invoker<'_>,
    id: i64,
    req: &ExecRequest,
) -> Result<ExecResult, ActionError> {
    ensure_writable(state, "container.exec")?;
    if req.argv.is_empty() || req.argv[0].trim().is_empty() {
        return Err(ActionError::Invalid(
            "argv: give the program and its arguments".into(),
        ));
    }
    if req.argv.len() > 256 || req.argv.iter().any(|a| a.len() > 8192 || a.contains('\0')) {
        return Err(ActionError::Invalid(
            "argv: at most 256 arguments of at most 8192 bytes, no NUL".into(),
        ));
    }
    let timeout = req.timeout_secs.unwrap_or(30);
    if !(1..=EXEC_MAX_SECS).contains(&timeout) {
        return Err(ActionError::Invalid(format!(
            "timeout_secs: 1 to {EXEC_MAX_SECS}"
        )));
    }
    let t = target(state, Some(id), None).await?;
    let c = match &req.container {
        Some(n) => t.containers.iter().find(|c| &c.name == n || &c.id == n),
        None => t.containers.iter().find(|c| c.state == "running"),
    }
    .ok_or_else(|| no_containers(&t.name))?
    .clone();
    let (_, docker) = engine_of(state, &c)?;
    let target = format!("service:{}", t.name);
    let params = json!({"container": c.name, "argv": req.argv, "timeout_secs": timeout});
    let rec = by
        .started(state, "container.exec", &target, params.clone())
        .await?;
    let pool = state.pool.clone();
    let argv = req.argv.clone();
    detached(async move {
        let started = Instant::now();
        let result = ops::exec(
            &docker,
            &c.id,
            &argv,
            Duration::from_secs(u64::from(timeout)),
        )
        .await;
        let (outcome, detail) = match &result {
            Ok(r) if r.exit_code == Some(0) => (Outcome::Success, None),
            Ok(r) => (
                Outcome::Failure,
                Some(match r.exit_code {
                    Some(code) => format!("exit code {code}"),
                    None => format!(
                        "timed out after {timeout} s (the process may still run in the container)"
                    ),
                }),
            ),
            Err(e) => (Outcome::Failure, Some(format!("{e:#}"))),
        };
        let mut params = params;
        params["exit_code"] = json!(result.as_ref().ok().and_then(|r| r.exit_code));
        params["timed_out"] = json!(result.as_ref().is_ok_and(|r| r.timed_out));
        params["duration_ms"] = json!(started.elapsed().as_millis() as i64);
        let mut conn = pool.acquire().await?;
        rec.record(
            &mut conn,
            "container.exec",
            &target,
            params,
            outcome,
            detail,
        )
        .await?;
        result
            .map(|mut r| {
                // The engine is asked by id; answer with the name people read.
                r.container = c.name.clone();
                r
            })
            .map_err(|e| ActionError::Engine(format!("{e:#}")))
    })
    .await
}
