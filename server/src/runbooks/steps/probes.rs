//! The health-side step kinds: a service's status, an HTTP probe, running
//! checks, waiting until healthy.

use std::time::Duration;

use futures::StreamExt;
use opsdeck_wire::{CheckStatus, HttpCheck, HttpMethod, ServiceHealth};
use serde_json::{json, Value};

use crate::checks::probe::http::HttpClients;
use crate::runbooks::output::Output;

use super::containers::target;
use super::{StepCx, StepResult};

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

pub(super) async fn status(cx: &StepCx<'_>, service: &str) -> StepResult {
    let (_, statuses) = cx.state.health().statuses();
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

pub(super) async fn http(
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
pub(super) struct Tally {
    ok: u32,
    warning: u32,
    pub(super) critical: u32,
    unknown: u32,
}

impl Tally {
    pub(super) fn total(&self) -> u32 {
        self.ok + self.warning + self.critical + self.unknown
    }
    pub(super) fn json(&self) -> Value {
        json!({"ok": self.ok, "warning": self.warning, "critical": self.critical,
               "unknown": self.unknown, "total": self.total()})
    }
}

/// Runs the enabled checks of a service (or all services, or host checks
/// with `check_kind: host`) now.
pub(super) async fn run_checks(
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
    let results =
        futures::stream::iter(checks.into_iter().map(|(id, name, svc)| async move {
            (name, svc, cx.state.health().run_now(id).await)
        }))
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

pub(super) async fn wait_healthy(cx: &StepCx<'_>, service: &str) -> StepResult {
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
