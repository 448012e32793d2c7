//! The daily check report: the handbooks' morning checklist (containers,
//! disk, memory, database connections, service health, age of the last
//! backup), generated from what the engine already knows, stored in
//! `reports`, viewable in the UI.
//!
//! A registry task ([`task`], `report`) wakes every minute and writes today's
//! scheduled report once the configured time (`health_settings.report_time`,
//! UTC) has passed and none exists yet: a server that was down at report
//! time catches up when it starts, and the partial unique index on
//! `reports (day) WHERE trigger = 'schedule'` keeps it to one per day across
//! instances. Operators can generate one at any time ("Generate now").
//! The HTTP handlers are in `checks::api::report`.
//!
//! Capabilities above `checks` add their own lines through a
//! [`ReportSection`] registered in `serve::compose` (`backups` adds the
//! catalog's: the last good backup per plan, failures, drills).

use chrono::{NaiveTime, Utc};
use opsdeck_wire::{
    CheckSpec, CheckStatus, HostCheck, Report, ReportItem, ReportSummary, Resource, ServiceHealth,
};
use serde_json::json;
use sqlx::PgPool;

use crate::audit::{Actor, NewEntry};
use crate::jobs::{Pace, Scope, Task};
use crate::state::AppState;

use super::engine::metric;

/// Lines of the daily report that a capability above `checks` contributes
/// (registered in `serve::compose`, see [`ReportSections`]).
pub trait ReportSection: Send + Sync + 'static {
    /// This section's items as of now; a failure to read is an item with
    /// status `unknown` saying so, never a missing section.
    fn items<'a>(&'a self, state: &'a AppState) -> futures::future::BoxFuture<'a, Vec<ReportItem>>;
}

/// The registered report sections, in report order (a part of the state).
#[derive(Default)]
pub struct ReportSections(Vec<Box<dyn ReportSection>>);

impl ReportSections {
    pub fn add(&mut self, section: impl ReportSection) {
        self.0.push(Box::new(section));
    }
}

impl AppState {
    /// The report sections `serve::compose` registered.
    pub fn report_sections(&self) -> &std::sync::Arc<ReportSections> {
        self.part()
    }
}

/// One line of the report.
pub fn item(
    section: &str,
    name: impl Into<String>,
    status: CheckStatus,
    detail: impl Into<String>,
) -> ReportItem {
    ReportItem {
        section: section.into(),
        name: name.into(),
        status,
        detail: detail.into(),
    }
}

/// Builds the checklist from the engines' caches, the host and the board.
pub async fn build(state: &AppState) -> Vec<ReportItem> {
    let mut items = Vec::new();
    // The board as of now, not as of the last debounced recomputation.
    if let Err(e) = state.health().refresh_inventory().await {
        tracing::warn!(error = %e, "refreshing the board for the report failed");
    }
    // 1. Containers, per engine.
    let engines = state.engines.engines();
    if engines.is_empty() {
        items.push(item(
            "containers",
            "engines",
            CheckStatus::Unknown,
            "no Docker engine registered",
        ));
    }
    for e in engines {
        let st = e.status();
        let (running, total) = e.with_containers(|cs| {
            (
                cs.values().filter(|c| c.state == "running").count(),
                cs.len(),
            )
        });
        let (status, detail) = match st.state {
            opsdeck_wire::EngineState::Connected => {
                let restarting = e.with_containers(|cs| {
                    cs.values()
                        .filter(|c| {
                            c.state == "restarting" || c.health.as_deref() == Some("unhealthy")
                        })
                        .map(|c| c.name.clone())
                        .collect::<Vec<_>>()
                });
                if restarting.is_empty() {
                    (
                        CheckStatus::Ok,
                        format!("{running} of {total} containers running"),
                    )
                } else {
                    (
                        CheckStatus::Warning,
                        format!(
                            "{running} of {total} running; unhealthy or restarting: {}",
                            restarting.join(", ")
                        ),
                    )
                }
            }
            _ => (
                CheckStatus::Critical,
                format!("engine unreachable: {}", st.last_error.unwrap_or_default()),
            ),
        };
        items.push(item("containers", &e.name, status, detail));
    }
    // 2–3. Disk and memory of the Opsdeck host, at the handbook's thresholds.
    for (section, resource) in [
        ("disk", Resource::Disk),
        ("disk", Resource::Inodes),
        ("memory", Resource::Memory),
    ] {
        let (warn, crit) = resource.host_thresholds();
        let c = HostCheck {
            resource,
            path: matches!(resource, Resource::Disk | Resource::Inodes).then(|| "/".into()),
            engine: None,
            warning_pct: warn,
            critical_pct: crit,
            sustained_s: 0,
        };
        let p = state.health().host().probe(&c).await;
        let name = match resource {
            Resource::Disk => "/ (space)",
            Resource::Inodes => "/ (inodes)",
            _ => "host memory",
        };
        items.push(item(section, name, p.status, p.message));
    }
    // 4. Database connections: the latest result of each database check.
    let mut dbs = 0;
    for (def, status, last) in state.health().latest_metrics() {
        let detail = match (&def.spec, &last) {
            (CheckSpec::Postgres(_), Some(r)) => match metric(r, "connections_pct") {
                Some(p) => format!("connections {p:.0} % of max_connections — {}", r.message),
                None => r.message.clone(),
            },
            (CheckSpec::Mysql(_), Some(r)) => match metric(r, "threads_connected") {
                Some(t) => format!("Threads_connected {t:.0} — {}", r.message),
                None => r.message.clone(),
            },
            (CheckSpec::Postgres(_) | CheckSpec::Mysql(_), None) => "not probed yet".into(),
            _ => continue,
        };
        dbs += 1;
        items.push(item("db_connections", def.name.clone(), status, detail));
    }
    if dbs == 0 {
        items.push(item(
            "db_connections",
            "databases",
            CheckStatus::Unknown,
            "no Postgres or MariaDB check configured",
        ));
    }
    // 5. Service health, from the board.
    let (_, services) = state.health().statuses();
    if services.is_empty() {
        items.push(item(
            "service_health",
            "services",
            CheckStatus::Unknown,
            "no services in the inventory",
        ));
    }
    for s in services {
        let status = match s.health {
            ServiceHealth::Operational => CheckStatus::Ok,
            ServiceHealth::Degraded => CheckStatus::Warning,
            ServiceHealth::Down | ServiceHealth::Impacted => CheckStatus::Critical,
            ServiceHealth::Maintenance | ServiceHealth::Unknown => CheckStatus::Unknown,
        };
        let mut detail = s.health.as_str().to_owned();
        if !s.impacted_by.is_empty() {
            detail = format!("impacted by {}", s.impacted_by.join(", "));
        } else if !s.problems.is_empty() {
            detail = format!("{detail}: {}", s.problems.join("; "));
        } else if s.checks == 0 {
            detail = "no checks".into();
        }
        items.push(item("service_health", s.name, status, detail));
    }
    // 6. The daily log summary: error lines per service over the last day.
    items.extend(log_summary(state).await);
    // 7. The registered sections: the backup catalog.
    for section in &state.report_sections().0 {
        items.extend(section.items(state).await);
    }
    items
}

/// How long the log summary may read.
const LOG_SUMMARY_TIME: std::time::Duration = std::time::Duration::from_secs(120);

/// "Generate daily log summary": lines of level error or worse in every
/// service's containers over the last 24 h, counted per service with the
/// newest as a sample (a log search; counts stop at its cap). A service
/// with errors is a warning; the others are summed up in one line.
async fn log_summary(state: &AppState) -> Vec<ReportItem> {
    use crate::logs::search;
    use futures::StreamExt;
    use opsdeck_wire::{LogEvent, LogLevel, LogSearch};

    let q = LogSearch {
        level: Some(LogLevel::Error),
        since: Some("24h".into()),
        limit: Some(search::MAX_LIMIT),
        ..Default::default()
    };
    let plan = match search::plan(state, &q).await {
        Ok(p) if p.sources.is_empty() => return Vec::new(),
        Ok(p) => p,
        Err(e) => {
            return vec![item(
                "logs",
                "log summary",
                CheckStatus::Unknown,
                e.to_string(),
            )];
        }
    };
    let mut newest: std::collections::HashMap<i64, String> = std::collections::HashMap::new();
    let mut end = None;
    let mut stream = std::pin::pin!(search::run(state, plan));
    let read = tokio::time::timeout(LOG_SUMMARY_TIME, async {
        while let Some(ev) = stream.next().await {
            match ev {
                LogEvent::Line(h) if h.hit => {
                    let line: String = h.line.chars().take(160).collect();
                    newest.insert(h.service_id, format!("{}: {line}", h.container));
                }
                LogEvent::End(e) => end = Some(e),
                _ => {}
            }
        }
    })
    .await;
    let Some(end) = end else {
        let why = if read.is_err() {
            format!("not finished within {} s", LOG_SUMMARY_TIME.as_secs())
        } else {
            "the search ended early".into()
        };
        return vec![item("logs", "log summary", CheckStatus::Unknown, why)];
    };
    let mut items = Vec::new();
    let mut clean = 0;
    for c in &end.counts {
        if c.hits == 0 {
            clean += 1;
            continue;
        }
        let at_least = if end.truncated { "at least " } else { "" };
        let sample = newest.get(&c.service_id).cloned().unwrap_or_default();
        items.push(item(
            "logs",
            c.service.clone(),
            CheckStatus::Warning,
            format!(
                "{at_least}{} error line{} in 24 h; newest: {sample}",
                c.hits,
                if c.hits == 1 { "" } else { "s" }
            ),
        ));
    }
    if clean > 0 {
        items.push(item(
            "logs",
            "no errors",
            CheckStatus::Ok,
            format!(
                "{clean} service{} logged no error lines in 24 h",
                if clean == 1 { "" } else { "s" }
            ),
        ));
    }
    for e in end.errors.iter().filter(|e| !e.container.is_empty()) {
        items.push(item(
            "logs",
            format!("{} {}", e.service, e.container),
            CheckStatus::Unknown,
            format!("its log could not be read: {}", e.message),
        ));
    }
    items
}

fn overall(items: &[ReportItem]) -> CheckStatus {
    items
        .iter()
        .map(|i| i.status)
        .max()
        .unwrap_or(CheckStatus::Unknown)
}

/// Generates and stores a report. `None` when a scheduled one for today
/// already exists.
pub async fn generate(
    state: &AppState,
    trigger: &str,
    conn: &mut sqlx::PgConnection,
) -> anyhow::Result<Option<Report>> {
    let items = build(state).await;
    let overall = overall(&items);
    let day = Utc::now().date_naive();
    let row = sqlx::query!(
        r#"INSERT INTO reports (day, trigger, overall, items) VALUES ($1, $2, $3, $4)
           ON CONFLICT (day) WHERE trigger = 'schedule' DO NOTHING
           RETURNING id, generated_at"#,
        day,
        trigger,
        overall.as_str(),
        serde_json::to_value(&items)?
    )
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(|r| Report {
        id: r.id,
        day,
        generated_at: r.generated_at,
        trigger: trigger.into(),
        overall,
        items,
    }))
}

/// Writes today's scheduled report if its time has passed and it is missing.
pub async fn scheduled_tick(state: &AppState) -> anyhow::Result<bool> {
    let settings = super::settings(&state.pool).await?;
    let at = NaiveTime::parse_from_str(&settings.report_time, "%H:%M")?;
    let now = Utc::now();
    if now.time() < at {
        return Ok(false);
    }
    let exists: bool = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM reports WHERE day = $1 AND trigger = 'schedule') AS "exists!""#,
        now.date_naive()
    )
    .fetch_one(&state.pool)
    .await?;
    if exists {
        return Ok(false);
    }
    let mut tx = state.pool.begin().await?;
    let Some(report) = generate(state, "schedule", &mut tx).await? else {
        return Ok(false);
    };
    crate::audit::record(
        &mut tx,
        NewEntry {
            actor: Actor::system("scheduler"),
            action: "report.generate".into(),
            target: Some(format!("report:{}", report.id)),
            params: json!({"day": report.day, "trigger": "schedule", "overall": report.overall}),
            source: None,
            outcome: opsdeck_wire::Outcome::Success,
            detail: None,
        },
    )
    .await?;
    tx.commit().await?;
    tracing::info!(
        report = report.id,
        overall = report.overall.as_str(),
        "daily check report written"
    );
    Ok(true)
}

/// The report's registry task (`report`, at second 0 of every minute,
/// UTC, every process: the unique index keeps one scheduled report a day).
pub fn task(state: AppState) -> anyhow::Result<Task> {
    Task::cron(
        "report",
        "0 * * * * *",
        chrono_tz::UTC,
        Scope::EveryProcess,
        state,
        |state| async move {
            scheduled_tick(&state).await?;
            Ok(Pace::Normal)
        },
    )
}

/// The latest 100 reports, newest first.
pub async fn summaries(pool: &PgPool) -> sqlx::Result<Vec<ReportSummary>> {
    let rows = sqlx::query!(
        r#"SELECT id, day, generated_at, trigger, overall,
                  (SELECT count(*) FROM jsonb_array_elements(items) i
                   WHERE i->>'status' IN ('warning', 'critical'))::int AS "problems!"
           FROM reports ORDER BY day DESC, id DESC LIMIT 100"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| ReportSummary {
            id: r.id,
            day: r.day,
            generated_at: r.generated_at,
            trigger: r.trigger,
            overall: CheckStatus::parse(&r.overall).unwrap_or_default(),
            problems: r.problems as u32,
        })
        .collect())
}

/// One stored report, `None` when there is no such id.
pub async fn load(pool: &PgPool, id: i64) -> anyhow::Result<Option<Report>> {
    let Some(r) = sqlx::query!(
        "SELECT id, day, generated_at, trigger, overall, items FROM reports WHERE id = $1",
        id
    )
    .fetch_optional(pool)
    .await?
    else {
        return Ok(None);
    };
    Ok(Some(Report {
        id: r.id,
        day: r.day,
        generated_at: r.generated_at,
        trigger: r.trigger,
        overall: CheckStatus::parse(&r.overall).unwrap_or_default(),
        items: serde_json::from_value(r.items)?,
    }))
}
