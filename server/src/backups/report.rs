//! The daily report's backup lines (section `backups`), registered into
//! `checks::report` in `serve::compose`: one line per plan, from the
//! catalog.
//!
//! A plan's line says when its newest good backup finished and whether it
//! was verified, and what its last and next restore drill are. Its status
//! is the worst of:
//! * **critical**: the newest backup failed or was interrupted (after the
//!   last good one), the last good backup's verification failed, or the
//!   last drill failed;
//! * **warning**: no good backup yet, or the plan's schedule was due since
//!   the last good backup started and nothing good came of it — the first
//!   scheduled time after that start, plus an hour and the last good
//!   backup's own duration (a backup still at work is not late), has
//!   passed;
//! * **ok** otherwise. A plan without a backup schedule (by hand only) is
//!   never late; a disabled plan says so and is not late either.
//!
//! No plan at all is one `unknown` line pointing to the Backups page.

use chrono::{DateTime, TimeDelta, Utc};
use opsdeck_wire::{
    BackupPlan, BackupStatus, CheckStatus, PlanScheduleKind, ReportItem, Verification,
};

use crate::checks::report::{item, ReportSection};
use crate::runbooks::schedules::Timetable;
use crate::state::AppState;

use super::store::{self, GoodRow};

/// The backup catalog's part of the daily report.
pub struct BackupSection;

impl ReportSection for BackupSection {
    fn items<'a>(&'a self, state: &'a AppState) -> futures::future::BoxFuture<'a, Vec<ReportItem>> {
        Box::pin(async move {
            match lines(state, Utc::now()).await {
                Ok(items) => items,
                Err(e) => vec![item(
                    SECTION,
                    "backups",
                    CheckStatus::Unknown,
                    format!("reading the backup catalog failed: {e}"),
                )],
            }
        })
    }
}

const SECTION: &str = "backups";

async fn lines(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<Vec<ReportItem>> {
    let mut conn = state.pool.acquire().await?;
    let plans = super::catalog::plans(&mut conn, None).await?;
    if plans.is_empty() {
        return Ok(vec![item(
            SECTION,
            "backup plans",
            CheckStatus::Unknown,
            "no backup plan: add one on the Backups page",
        )]);
    }
    let good = store::newest_good(&mut conn).await?;
    Ok(plans
        .iter()
        .map(|p| plan_line(p, good.iter().find(|g| g.plan_id == p.id), now))
        .collect())
}

/// One plan's line (see the module doc).
fn plan_line(plan: &BackupPlan, good: Option<&GoodRow>, now: DateTime<Utc>) -> ReportItem {
    let mut status = CheckStatus::Ok;
    let mut parts: Vec<String> = Vec::new();
    let worse = |s: CheckStatus, status: &mut CheckStatus| *status = (*status).max(s);
    if !plan.def.enabled {
        parts.push("plan disabled".into());
    }
    match good {
        None => {
            worse(CheckStatus::Warning, &mut status);
            parts.push("no good backup yet".into());
        }
        Some(g) => {
            let at = g.finished_at.unwrap_or(g.started_at);
            parts.push(format!(
                "last good backup #{} {} ago, {}",
                g.id,
                age(now - at),
                match Verification::parse(&g.verification) {
                    Some(Verification::Verified) => "verified".to_owned(),
                    Some(Verification::Pending) => "not verified yet".to_owned(),
                    Some(Verification::Skipped) => {
                        "not verified (the plan does not verify)".to_owned()
                    }
                    Some(Verification::Failed) | None => {
                        worse(CheckStatus::Critical, &mut status);
                        format!(
                            "its verification FAILED: {}",
                            short(g.verify_error.as_deref().unwrap_or("no reason recorded"))
                        )
                    }
                }
            ));
            if let Some(due) = overdue(plan, g, now) {
                worse(CheckStatus::Warning, &mut status);
                parts.push(format!(
                    "a scheduled backup was due {due} and none has succeeded since"
                ));
            }
        }
    }
    if let Some(last) = &plan.last {
        let newer = good.is_none_or(|g| last.id > g.id);
        if newer
            && matches!(
                last.status,
                BackupStatus::Failed | BackupStatus::Interrupted
            )
        {
            worse(CheckStatus::Critical, &mut status);
            parts.push(format!(
                "newest backup #{} {}: {}",
                last.id,
                last.status.as_str(),
                short(last.error.as_deref().unwrap_or("no reason recorded"))
            ));
        }
    }
    let has_backup_schedule = plan
        .def
        .schedules
        .iter()
        .any(|s| s.kind == PlanScheduleKind::Backup);
    if !has_backup_schedule {
        parts.push("no backup schedule (by hand only)".into());
    }
    match &plan.drill {
        Some(d) if d.ok => parts.push(format!("last drill ok {}", d.at.format("%Y-%m-%d"))),
        Some(d) => {
            worse(CheckStatus::Critical, &mut status);
            parts.push(format!(
                "last drill FAILED {}: {}",
                d.at.format("%Y-%m-%d"),
                short(d.error.as_deref().unwrap_or("no reason recorded"))
            ));
        }
        None => parts.push("never drilled".into()),
    }
    match plan.next.iter().find(|n| n.kind == PlanScheduleKind::Drill) {
        Some(n) => parts.push(format!("next drill {}", n.at.format("%Y-%m-%d %H:%M UTC"))),
        None => parts.push("no drill schedule".into()),
    }
    item(SECTION, plan.def.name.clone(), status, parts.join("; "))
}

/// When a scheduled backup came due after the last good one started
/// without a good one since (`None` when none is late): the first
/// scheduled time after `g.started_at`, late once an hour and `g`'s own
/// duration have passed. Disabled plans and plans without a backup
/// schedule are never late.
fn overdue(plan: &BackupPlan, g: &GoodRow, now: DateTime<Utc>) -> Option<String> {
    if !plan.def.enabled {
        return None;
    }
    let took = g.finished_at.unwrap_or(g.started_at) - g.started_at;
    let grace = TimeDelta::hours(1) + took.max(TimeDelta::zero());
    plan.def
        .schedules
        .iter()
        .filter(|s| s.kind == PlanScheduleKind::Backup)
        .filter_map(|s| {
            let t = Timetable::new(&s.cron, &plan.def.timezone).ok()?;
            let due = t.next_after(g.started_at)?;
            Some((due, t))
        })
        .min_by_key(|(due, _)| *due)
        .filter(|(due, _)| *due + grace < now)
        .map(|(due, t)| t.local(due))
}

/// `3 d 4 h`, `5 h 12 min`, `40 min`, `12 s`.
fn age(d: TimeDelta) -> String {
    let s = d.num_seconds().max(0);
    let (days, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    match (days, h, m) {
        (0, 0, 0) => format!("{s} s"),
        (0, 0, m) => format!("{m} min"),
        (0, h, m) => format!("{h} h {m} min"),
        (d, h, _) => format!("{d} d {h} h"),
    }
}

/// An error cut to a readable length for a report line.
fn short(e: &str) -> String {
    const MAX: usize = 160;
    let line = e.lines().next().unwrap_or_default();
    if line.chars().count() <= MAX {
        line.to_owned()
    } else {
        format!("{}…", line.chars().take(MAX).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    /// A plan backing up daily at 02:00 UTC and drilling on Sundays at 05:00.
    fn plan(extra: serde_json::Value) -> BackupPlan {
        let mut v = json!({
            "id": 7, "name": "ledger", "target": "local", "created_by": "admin",
            "updated_at": "2026-12-01T00:00:00Z", "timezone": "UTC",
            "sources": [{"kind": "postgres", "service": "ledger", "databases": []}],
            "schedules": [{"kind": "backup", "cron": "0 2 * * *"},
                          {"kind": "drill", "cron": "0 5 * * 0"}],
            "next": [{"kind": "drill", "at": "2026-12-13T05:00:00Z"}],
        });
        for (k, x) in extra.as_object().unwrap() {
            v[k] = x.clone();
        }
        serde_json::from_value(v).unwrap()
    }

    fn good(id: i64, started: &str, verification: &str) -> GoodRow {
        GoodRow {
            plan_id: 7,
            id,
            started_at: t(started),
            finished_at: Some(t(started) + TimeDelta::minutes(10)),
            verification: verification.into(),
            verify_error: (verification == "failed").then(|| "row counts differ".into()),
        }
    }

    #[test]
    fn a_fresh_verified_backup_is_ok_and_names_its_age_and_drills() {
        let now = t("2026-12-07T08:00:00Z");
        let g = good(41, "2026-12-07T02:00:00Z", "verified");
        let l = plan_line(&plan(json!({})), Some(&g), now);
        assert_eq!((l.section.as_str(), l.name.as_str()), ("backups", "ledger"));
        assert_eq!(l.status, CheckStatus::Ok, "{}", l.detail);
        assert_eq!(
            l.detail,
            "last good backup #41 5 h 50 min ago, verified; never drilled; next drill 2026-12-13 05:00 UTC"
        );
    }

    #[test]
    fn a_missed_schedule_warns_and_failures_are_critical() {
        // The 02:00 backup of the 7th did not happen: late at 03:10 + 1 h.
        let g = good(41, "2026-12-06T02:00:00Z", "verified");
        let p = plan(json!({}));
        let l = plan_line(&p, Some(&g), t("2026-12-07T03:05:00Z"));
        assert_eq!(
            l.status,
            CheckStatus::Ok,
            "still within the grace: {}",
            l.detail
        );
        let l = plan_line(&p, Some(&g), t("2026-12-07T08:00:00Z"));
        assert_eq!(l.status, CheckStatus::Warning);
        assert!(
            l.detail.contains(
                "a scheduled backup was due Mon 2026-12-07 02:00 UTC and none has succeeded since"
            ),
            "{}",
            l.detail
        );
        // By hand only, or disabled: never late.
        let by_hand = plan(json!({"schedules": [], "next": []}));
        let l = plan_line(&by_hand, Some(&g), t("2026-12-20T08:00:00Z"));
        assert_eq!(l.status, CheckStatus::Ok, "{}", l.detail);
        assert!(
            l.detail.contains("no backup schedule (by hand only)"),
            "{}",
            l.detail
        );
        assert!(l.detail.contains("no drill schedule"), "{}", l.detail);
        let off = plan(json!({"enabled": false}));
        let l = plan_line(&off, Some(&g), t("2026-12-20T08:00:00Z"));
        assert_eq!(l.status, CheckStatus::Ok, "{}", l.detail);
        assert!(l.detail.starts_with("plan disabled; "), "{}", l.detail);

        // A newer failed backup, a failed verification, a failed drill.
        let failed = plan(json!({"last": {
            "id": 42, "plan": "ledger", "target": "local", "status": "failed",
            "verification": "pending", "trigger": "schedule", "requested_by": "system",
            "started_at": "2026-12-07T02:00:00Z", "finished_at": "2026-12-07T02:00:03Z",
            "bytes": 0, "raw_bytes": 0, "error": "pg_dump: connection refused\nmore",
            "verify_error": null, "run_id": 9}}));
        let now = t("2026-12-07T02:30:00Z");
        let l = plan_line(&failed, Some(&g), now);
        assert_eq!(l.status, CheckStatus::Critical);
        assert!(
            l.detail
                .contains("newest backup #42 failed: pg_dump: connection refused;"),
            "{}",
            l.detail
        );
        // The same failure older than the good backup is history.
        let l = plan_line(
            &failed,
            Some(&good(43, "2026-12-07T02:10:00Z", "verified")),
            now,
        );
        assert_eq!(l.status, CheckStatus::Ok, "{}", l.detail);
        let l = plan_line(&p, Some(&good(43, "2026-12-07T02:10:00Z", "failed")), now);
        assert_eq!(l.status, CheckStatus::Critical);
        assert!(
            l.detail
                .contains("#43 10 min ago, its verification FAILED: row counts differ"),
            "{}",
            l.detail
        );
        let drilled = plan(
            json!({"drill": {"at": "2026-12-06T05:00:00Z", "backup_id": 40,
                                            "ok": false, "error": "restore: exit 1"}}),
        );
        let l = plan_line(&drilled, Some(&g), t("2026-12-06T08:00:00Z"));
        assert_eq!(l.status, CheckStatus::Critical);
        assert!(
            l.detail
                .contains("last drill FAILED 2026-12-06: restore: exit 1"),
            "{}",
            l.detail
        );

        // Never a good backup: a warning.
        let l = plan_line(&p, None, now);
        assert_eq!(l.status, CheckStatus::Warning);
        assert!(l.detail.starts_with("no good backup yet"), "{}", l.detail);
    }
}
