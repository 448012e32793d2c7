//! A plan's timing: its schedules, its retention rules at the boundary,
//! and restore drills.
//!
//! **Schedules are runbook schedules.** Each of a plan's timetables
//! ([`PlanSchedule`]) is a row of `schedules` for the built-in runbook
//! `backup-run` (a backup) or `backup-drill` (a drill), with the parameter
//! `plan`, owned by the plan (`schedules.backup_plan_id`, removed with
//! it) and named `backup:<plan>:<n>-<kind>`. So the one schedule ticker
//! starts them, once per tick whatever the number of processes, and they
//! show on the Schedules page. Writing a plan rewrites its schedules in
//! the same transaction only when its timetable (expressions, zone, name,
//! enabled) changed, so tick history stays otherwise. Missed ticks are
//! caught up (`catch_up`: a server that was down at 02:00 takes the backup
//! when it is back, once). A disabled plan's schedules are disabled.
//!
//! **The API takes what it is given**: no schedules means backups by hand
//! only. The plan form starts with the handbooks' timetable
//! ([`opsdeck_wire::handbook_schedules`]: daily 02:00, weekly Sunday 03:00,
//! monthly 1st 04:00, drill Sunday 05:00).
//!
//! **A drill** (`op: drill`, subject = plan) takes the plan's newest good
//! backup (succeeded, not deleted, verification not failed) and verifies it
//! again in full — read back, checksum, test restore, row counts — as the
//! scheduled proof that last night's backup restores. The outcome is
//! recorded on the backup (its verification) and on the plan
//! (`drilled_at`, `drill_backup_id`, `drill_error`), audited as
//! `backup.drill`; a failure opens the plan's incident like a failed
//! verification. A plan without a good backup fails its drill (recorded,
//! and it shows on the dashboard).

use chrono::Utc;
use opsdeck_wire::{NextPlanRun, Outcome, PlanSchedule, PlanScheduleKind, PlanWrite};
use serde_json::{json, Value};
use sqlx::{PgConnection, Row};

use crate::audit::{self, Actor, NewEntry};
use crate::error::ApiError;
use crate::runbooks::schedules::{parse_tz, Timetable};
use crate::runbooks::steps::StepCx;

/// Most timetables per plan.
const MAX_SCHEDULES: usize = 20;
/// Upcoming runs shown per kind.
const NEXT: usize = 3;

/// Checks and normalises the timing fields of a plan.
pub fn check(w: &mut PlanWrite) -> Result<(), ApiError> {
    let bad = |m: String| Err(ApiError::from_validation(m));
    let tz = parse_tz(&w.timezone).map_err(ApiError::from_validation)?;
    w.timezone = tz.name().to_owned();
    if w.schedules.len() > MAX_SCHEDULES {
        return bad(format!("schedules: at most {MAX_SCHEDULES}"));
    }
    for (i, s) in w.schedules.iter_mut().enumerate() {
        s.cron = s.cron.trim().to_owned();
        if let Err(e) = Timetable::new(&s.cron, &w.timezone) {
            let e = e.strip_prefix("cron: ").unwrap_or(&e).to_owned();
            return bad(format!("schedules[{i}].cron: {e}"));
        }
    }
    let r = &w.retention;
    for (field, n, min) in [
        ("keep_last", r.keep_last, 1),
        ("keep_daily", r.keep_daily, 0),
        ("keep_weekly", r.keep_weekly, 0),
        ("keep_monthly", r.keep_monthly, 0),
    ] {
        if !(min..=1000).contains(&n) {
            return bad(format!("retention.{field}: {min} to 1000"));
        }
    }
    if r.max_age_days.is_some_and(|d| !(1..=36500).contains(&d)) {
        return bad("retention.max_age_days: 1 to 36500 days, or null for no limit".into());
    }
    Ok(())
}

fn runbook_of(kind: PlanScheduleKind) -> &'static str {
    match kind {
        PlanScheduleKind::Backup => "backup-run",
        PlanScheduleKind::Drill => "backup-drill",
    }
}

fn kind_str(kind: PlanScheduleKind) -> &'static str {
    match kind {
        PlanScheduleKind::Backup => "backup",
        PlanScheduleKind::Drill => "drill",
    }
}

/// The plan's stored timetable: (kind, cron), zone, plan name, enabled.
async fn stored(
    conn: &mut PgConnection,
    plan_id: i64,
) -> sqlx::Result<(Vec<PlanSchedule>, Option<(String, String, bool)>)> {
    let rows = sqlx::query(
        "SELECT r.name AS runbook, s.cron, s.timezone, s.params->>'plan' AS plan, s.enabled
         FROM schedules s JOIN runbooks r ON r.id = s.runbook_id
         WHERE s.backup_plan_id = $1 ORDER BY s.id",
    )
    .bind(plan_id)
    .fetch_all(&mut *conn)
    .await?;
    let mut meta = None;
    let list = rows
        .iter()
        .map(|r| {
            meta.get_or_insert((
                r.get::<String, _>("timezone"),
                r.get::<Option<String>, _>("plan").unwrap_or_default(),
                r.get::<bool, _>("enabled"),
            ));
            PlanSchedule {
                kind: if r.get::<String, _>("runbook") == "backup-drill" {
                    PlanScheduleKind::Drill
                } else {
                    PlanScheduleKind::Backup
                },
                cron: r.get("cron"),
            }
        })
        .collect();
    Ok((list, meta))
}

/// The plan's schedules as written in the plan (for reading plans).
pub async fn schedules_of(
    conn: &mut PgConnection,
    plan_id: i64,
) -> sqlx::Result<Vec<PlanSchedule>> {
    Ok(stored(conn, plan_id).await?.0)
}

/// Makes the plan's schedules match `w` (see the module doc).
pub async fn reconcile(
    conn: &mut PgConnection,
    plan_id: i64,
    w: &PlanWrite,
    by: &str,
) -> Result<(), ApiError> {
    let (now, meta) = stored(conn, plan_id).await?;
    let same_meta = match &meta {
        Some((tz, plan, enabled)) => *tz == w.timezone && *plan == w.name && *enabled == w.enabled,
        None => true,
    };
    if now == w.schedules && same_meta {
        return Ok(());
    }
    sqlx::query("DELETE FROM schedules WHERE backup_plan_id = $1")
        .bind(plan_id)
        .execute(&mut *conn)
        .await?;
    for (i, s) in w.schedules.iter().enumerate() {
        let runbook = runbook_of(s.kind);
        let runbook_id: i64 = sqlx::query_scalar("SELECT id FROM runbooks WHERE name = $1")
            .bind(runbook)
            .fetch_optional(&mut *conn)
            .await?
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "the built-in runbook {runbook} is missing (it is seeded at start-up when absent)"
                ))
            })?;
        sqlx::query(
            "INSERT INTO schedules (runbook_id, name, cron, timezone, params, enabled, missed,
                                    checked_until, created_by, backup_plan_id)
             VALUES ($1, $2, $3, $4, $5, $6, 'catch_up', now(), $7, $8)",
        )
        .bind(runbook_id)
        .bind(format!("backup:{}:{}-{}", w.name, i + 1, kind_str(s.kind)))
        .bind(&s.cron)
        .bind(&w.timezone)
        .bind(json!({ "plan": w.name }))
        .bind(w.enabled)
        .bind(by)
        .bind(plan_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// The next runs of the plan's schedules, in time order.
pub fn next_runs(schedules: &[PlanSchedule], tz: &str, enabled: bool) -> Vec<NextPlanRun> {
    if !enabled {
        return Vec::new();
    }
    let now = Utc::now();
    let mut out = Vec::new();
    for kind in [PlanScheduleKind::Backup, PlanScheduleKind::Drill] {
        let mut times: Vec<_> = schedules
            .iter()
            .filter(|s| s.kind == kind)
            .filter_map(|s| Timetable::new(&s.cron, tz).ok())
            .flat_map(|t| t.next(now, NEXT))
            .collect();
        times.sort();
        times.dedup();
        out.extend(
            times
                .into_iter()
                .take(NEXT)
                .map(|at| NextPlanRun { kind, at }),
        );
    }
    out.sort_by_key(|n| n.at);
    out
}

/// The `drill` op: verify the plan's newest good backup again.
pub async fn drill(cx: &StepCx<'_>, plan: &str) -> Result<Value, String> {
    let state = cx.state;
    let r = sqlx::query("SELECT id FROM backup_plans WHERE name = $1")
        .bind(plan)
        .fetch_optional(&state.pool)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no backup plan named \"{}\"", plan.escape_default()))?;
    let plan_id: i64 = r.get("id");
    let newest: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM backups WHERE plan_id = $1 AND status = 'succeeded'
           AND deleted_at IS NULL AND verification <> 'failed'
         ORDER BY started_at DESC, id DESC LIMIT 1",
    )
    .bind(plan_id)
    .fetch_optional(&state.pool)
    .await
    .map_err(|e| e.to_string())?;
    let result = match newest {
        None => Err(format!("plan {plan} has no good backup to drill")),
        Some(id) => {
            cx.out.line(format!(
                "drill: backup #{id}, the newest good backup of {plan}"
            ));
            super::run::verify(cx, id).await.map(|_| ())
        }
    };
    let err = result.as_ref().err().cloned();
    let mut tx = state.pool.begin().await.map_err(|e| e.to_string())?;
    sqlx::query(
        "UPDATE backup_plans SET drilled_at = now(), drill_backup_id = $2, drill_error = $3
         WHERE id = $1",
    )
    .bind(plan_id)
    .bind(newest)
    .bind(&err)
    .execute(&mut *tx)
    .await
    .map_err(|e| e.to_string())?;
    audit::record(
        &mut tx,
        NewEntry {
            actor: cx.actor.clone(),
            action: "backup.drill".into(),
            target: Some(format!("backup_plan:{plan_id}")),
            params: json!({ "plan": plan, "backup": newest }),
            source: None,
            outcome: if err.is_none() {
                Outcome::Success
            } else {
                Outcome::Failure
            },
            detail: err.clone(),
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    match err {
        None => {
            cx.out.line(format!("drill of {plan} passed"));
            Ok(json!({ "plan": plan, "backup": newest, "drill": "passed" }))
        }
        Some(e) => Err(format!("drill of {plan} failed: {e}")),
    }
}

/// The actor a schedule runs as is `schedule:<name>`.
pub fn scheduled(actor: &Actor) -> bool {
    actor.kind == "system" && actor.name.starts_with("schedule:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsdeck_wire::{handbook_schedules, Retention};

    fn plan() -> PlanWrite {
        PlanWrite {
            name: "ledger".into(),
            sources: vec![],
            target: "local".into(),
            zstd_level: 3,
            verify: true,
            enabled: true,
            retention: Retention::default(),
            schedules: handbook_schedules(),
            timezone: " Europe/Berlin ".into(),
        }
    }

    fn message(e: ApiError) -> String {
        match e {
            ApiError::BadRequest(m) | ApiError::InvalidField { message: m, .. } => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn timing_is_checked_field_by_field() {
        let mut w = plan();
        check(&mut w).unwrap();
        assert_eq!(w.timezone, "Europe/Berlin");
        let mut w = plan();
        w.schedules[1].cron = "0 3 * *".into();
        assert!(message(check(&mut w).unwrap_err()).starts_with("schedules[1].cron: "));
        let mut w = plan();
        w.timezone = "Mars/Olympus".into();
        assert!(message(check(&mut w).unwrap_err()).starts_with("timezone: "));
        let mut w = plan();
        w.retention.keep_last = 0;
        assert_eq!(
            message(check(&mut w).unwrap_err()),
            "retention.keep_last: 1 to 1000"
        );
        let mut w = plan();
        w.retention.max_age_days = Some(0);
        assert!(message(check(&mut w).unwrap_err()).starts_with("retention.max_age_days"));
        let mut w = plan();
        w.schedules = vec![w.schedules[0].clone(); 21];
        assert_eq!(message(check(&mut w).unwrap_err()), "schedules: at most 20");
    }

    #[test]
    fn the_handbook_timetable_runs_daily_weekly_monthly_and_drills_on_sunday() {
        let next = next_runs(&handbook_schedules(), "UTC", true);
        let backups: Vec<_> = next
            .iter()
            .filter(|n| n.kind == PlanScheduleKind::Backup)
            .collect();
        let drills: Vec<_> = next
            .iter()
            .filter(|n| n.kind == PlanScheduleKind::Drill)
            .collect();
        assert_eq!(backups.len(), 3);
        assert_eq!(drills.len(), 3);
        use chrono::{Datelike, Timelike};
        assert!(drills
            .iter()
            .all(|d| d.at.weekday() == chrono::Weekday::Sun && d.at.hour() == 5));
        assert!(backups.iter().all(|b| [2, 3, 4].contains(&b.at.hour())));
        assert!(next.windows(2).all(|w| w[0].at <= w[1].at));
        assert!(next_runs(&handbook_schedules(), "UTC", false).is_empty());
    }
}
