//! Retention: which backups of a plan pruning keeps, and the pruning.
//!
//! **Selection** ([`select`], pure): the candidates are the plan's
//! succeeded, not deleted backups whose verification did not fail, newest
//! first (by start time). A candidate is kept when any rule keeps it:
//!
//! * `keep_last`: the newest n (at least 1, so the newest good backup is
//!   never pruned);
//! * `keep_daily` / `keep_weekly` / `keep_monthly`: walking from the
//!   newest, the first backup of each new local day / ISO week / month
//!   (in the plan's time zone), until n periods are kept — periods without
//!   a backup do not count (restic's and borg's semantics);
//! * `max_age_days`: a candidate older than that is deleted whatever keeps
//!   it, except the newest.
//!
//! Backups outside the candidates are never pruned: those that failed
//! verification stay for investigation (an admin deletes them), running
//! ones are not finished, failed and interrupted ones hold no objects.
//! Neither is a backup that an active run (a restore or a verification)
//! names in its parameters, nor a safety backup (trigger `safety`, taken
//! before a restore): it holds one artifact, not the plan's set, so it
//! neither counts towards nor is removed by the plan's rules; it stays
//! until an admin deletes it (restores are rare, and it is the way back
//! from one).
//!
//! **Pruning** ([`enforce`]) runs at the end of each `backup-run` whose
//! backup succeeded and did not fail verification — a plan whose new
//! backups fail never loses its old ones. It holds the plan's row lock
//! (two prunes of one plan never interleave), removes each pruned
//! backup's objects from its target, then marks it deleted
//! (`deleted_by = 'retention'`) and writes one `backup.prune` audit entry,
//! all in one transaction. An object that cannot be removed leaves its
//! backup in the catalog (and the run output says so); the next prune
//! tries again.
//!
//! `GET /api/v1/backup-plans/{id}/prune` shows what [`select`] decides now
//! (viewers), so the UI can say what the next prune will delete.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, TimeDelta, Utc};
use chrono_tz::Tz;
use opsdeck_wire::Retention;
use serde_json::json;
use sqlx::PgConnection;

use crate::audit::{self, Actor, NewEntry};
use crate::state::AppState;

/// A backup pruning may remove.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    pub id: i64,
    pub at: DateTime<Utc>,
}

/// What [`select`] decided for one candidate.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub id: i64,
    pub keep: bool,
    /// Kept: the rules keeping it. Deleted: why.
    pub reasons: Vec<String>,
}

/// Names the period (day, ISO week, month) a local time falls in.
type Period = fn(DateTime<Tz>) -> String;

/// Decides, for candidates in any order, which to keep (see the module
/// doc). The result is newest first.
pub fn select(
    candidates: &[Candidate],
    r: &Retention,
    tz: Tz,
    now: DateTime<Utc>,
) -> Vec<Decision> {
    let mut c: Vec<&Candidate> = candidates.iter().collect();
    c.sort_by(|a, b| b.at.cmp(&a.at).then(b.id.cmp(&a.id)));
    let mut out: Vec<Decision> = c
        .iter()
        .map(|c| Decision {
            id: c.id,
            keep: false,
            reasons: Vec::new(),
        })
        .collect();
    let keep_last = r.keep_last.max(1) as usize;
    for d in out.iter_mut().take(keep_last) {
        d.keep = true;
        d.reasons.push(format!("last {keep_last}"));
    }
    // Newest first: the first backup of each period is that period's newest.
    let rules: [(&str, i32, Period); 3] = [
        ("daily", r.keep_daily, |t| t.format("%Y-%m-%d").to_string()),
        ("weekly", r.keep_weekly, |t| {
            let w = t.iso_week();
            format!("{}-W{:02}", w.year(), w.week())
        }),
        ("monthly", r.keep_monthly, |t| t.format("%Y-%m").to_string()),
    ];
    for (name, n, period) in rules {
        let mut seen = BTreeSet::new();
        for (d, c) in out.iter_mut().zip(&c) {
            if seen.len() >= n.max(0) as usize {
                break;
            }
            let p = period(c.at.with_timezone(&tz));
            if seen.insert(p.clone()) {
                d.keep = true;
                d.reasons.push(format!("{name} {p}"));
            }
        }
    }
    if let Some(days) = r.max_age_days {
        let limit = now - TimeDelta::days(days.into());
        for (d, c) in out.iter_mut().zip(&c).skip(1) {
            if c.at < limit {
                d.keep = false;
                d.reasons = vec![format!("older than {days} days")];
            }
        }
    }
    for d in out.iter_mut().filter(|d| !d.keep && d.reasons.is_empty()) {
        d.reasons.push("kept by no rule".into());
    }
    out
}

/// The plan's rules and zone, and its candidates (see the module doc).
pub async fn load(
    conn: &mut PgConnection,
    plan_id: i64,
) -> anyhow::Result<(Retention, Tz, Vec<Candidate>)> {
    let r = sqlx::query!(
        "SELECT keep_last, keep_daily, keep_weekly, keep_monthly, max_age_days, timezone
         FROM backup_plans WHERE id = $1",
        plan_id
    )
    .fetch_one(&mut *conn)
    .await?;
    let rules = Retention {
        keep_last: r.keep_last,
        keep_daily: r.keep_daily,
        keep_weekly: r.keep_weekly,
        keep_monthly: r.keep_monthly,
        max_age_days: r.max_age_days,
    };
    let tz: Tz = r.timezone.parse().unwrap_or(chrono_tz::UTC);
    // Backups an active run names (a restore, a verification) stay.
    let rows = sqlx::query!(
        "SELECT b.id, b.started_at FROM backups b
         WHERE b.plan_id = $1 AND b.status = 'succeeded' AND b.deleted_at IS NULL
           AND b.verification <> 'failed' AND b.trigger <> 'safety'
           AND NOT EXISTS (SELECT 1 FROM runs r
                           WHERE r.status IN ('queued', 'running', 'waiting')
                             AND r.params->>'backup' = b.id::text)",
        plan_id
    )
    .fetch_all(&mut *conn)
    .await?;
    let candidates = rows
        .into_iter()
        .map(|r| Candidate {
            id: r.id,
            at: r.started_at,
        })
        .collect();
    Ok((rules, tz, candidates))
}

/// Prunes a plan now (see the module doc); returns the ids removed and
/// lines for the run output.
pub async fn enforce(state: &AppState, plan_id: i64) -> anyhow::Result<(Vec<i64>, Vec<String>)> {
    let mut tx = state.pool.begin().await?;
    let plan: String = sqlx::query_scalar!(
        "SELECT name FROM backup_plans WHERE id = $1 FOR UPDATE",
        plan_id
    )
    .fetch_one(&mut *tx)
    .await?;
    let (rules, tz, candidates) = load(&mut tx, plan_id).await?;
    let doomed: Vec<Decision> = select(&candidates, &rules, tz, Utc::now())
        .into_iter()
        .filter(|d| !d.keep)
        .collect();
    let mut removed = Vec::new();
    let mut lines = Vec::new();
    for d in &doomed {
        match remove_set(state, &mut tx, d.id, "retention").await {
            Ok(_) => {
                lines.push(format!(
                    "pruned backup #{} ({})",
                    d.id,
                    d.reasons.join(", ")
                ));
                removed.push(d.id);
            }
            Err(e) => lines.push(format!(
                "backup #{} stays for now: removing its objects failed: {e:#}",
                d.id
            )),
        }
    }
    if !removed.is_empty() {
        audit::record(
            &mut tx,
            NewEntry {
                actor: Actor::system("retention"),
                action: "backup.prune".into(),
                target: Some(format!("backup_plan:{plan_id}")),
                params: json!({ "plan": plan, "backups": removed }),
                source: None,
                outcome: opsdeck_wire::Outcome::Success,
                detail: None,
            },
        )
        .await?;
    }
    tx.commit().await?;
    Ok((removed, lines))
}

/// Removes a backup set: its objects from its target (absent ones are
/// fine), then marks it deleted by `by` — on `conn`, whose transaction
/// the caller commits (with its audit entry). If removing an object fails
/// the entry is not marked and the error says which object. Returns the
/// number of objects.
pub async fn remove_set(
    state: &AppState,
    conn: &mut PgConnection,
    id: i64,
    by: &str,
) -> anyhow::Result<usize> {
    let target: Option<i64> =
        sqlx::query_scalar!("SELECT target_id FROM backups WHERE id = $1", id)
            .fetch_one(&mut *conn)
            .await?;
    let keys: Vec<String> = sqlx::query_scalar!(
        "SELECT object_key FROM backup_artifacts WHERE backup_id = $1",
        id
    )
    .fetch_all(&mut *conn)
    .await?;
    if let Some(target) = target {
        let store = super::run::store_of(state, target)
            .await
            .map_err(|e| anyhow::anyhow!("backup target: {e}"))?;
        for k in &keys {
            store
                .delete(k)
                .await
                .map_err(|e| anyhow::anyhow!("removing {k}: {e:#}"))?;
        }
    }
    sqlx::query!(
        "UPDATE backups SET deleted_at = now(), deleted_by = $2 WHERE id = $1",
        id,
        by
    )
    .execute(&mut *conn)
    .await?;
    Ok(keys.len())
}

/// The `delete` op of `backup-delete` (subject = backup id): run once an
/// approval policy on `backup.delete` gates deletion and the vote is in.
pub async fn delete_step(
    cx: &crate::runbooks::steps::StepCx<'_>,
    subject: &str,
) -> Result<serde_json::Value, String> {
    let id: i64 = subject.parse().map_err(|_| {
        format!(
            "backup: \"{}\" is not a backup id",
            subject.escape_default()
        )
    })?;
    let state = cx.state;
    let mut tx = state.pool.begin().await.map_err(|e| e.to_string())?;
    let status = super::catalog::deletable(&mut tx, id)
        .await
        .map_err(|e| e.to_string())?;
    if status == "running" {
        return Err(format!("backup #{id} is running; cancel its run first"));
    }
    let objects = remove_set(state, &mut tx, id, &cx.actor.name)
        .await
        .map_err(|e| format!("{e:#}"))?;
    audit::record(
        &mut tx,
        NewEntry {
            actor: cx.actor.clone(),
            action: "backup.delete".into(),
            target: Some(format!("backup:{id}")),
            params: json!({ "objects": objects, "run": cx.run_id }),
            source: None,
            outcome: opsdeck_wire::Outcome::Success,
            detail: None,
        },
    )
    .await
    .map_err(|e| e.to_string())?;
    tx.commit().await.map_err(|e| e.to_string())?;
    cx.out
        .line(format!("backup #{id} deleted ({objects} objects removed)"));
    Ok(json!({ "backup": id, "deleted": true }))
}

/// What the next prune of a plan would delete, and what it keeps (and
/// why).
pub async fn preview(
    conn: &mut PgConnection,
    id: i64,
) -> Result<opsdeck_wire::PrunePreview, super::catalog::BackupError> {
    if !super::store::plan_exists(conn, id).await? {
        return Err(super::catalog::BackupError::NotFound(format!(
            "backup plan {id}"
        )));
    }
    let (rules, tz, candidates) = load(conn, id).await?;
    let decisions = select(&candidates, &rules, tz, Utc::now());
    let ids: Vec<i64> = decisions.iter().map(|d| d.id).collect();
    let mut by_id: std::collections::BTreeMap<i64, opsdeck_wire::BackupSummary> =
        super::store::summaries(conn, &ids)
            .await?
            .into_iter()
            .map(|r| {
                let s = super::model::summary_of(r);
                (s.id, s)
            })
            .collect();
    let mut out = opsdeck_wire::PrunePreview {
        keep: Vec::new(),
        delete: Vec::new(),
    };
    for d in decisions {
        let Some(backup) = by_id.remove(&d.id) else {
            continue;
        };
        let line = opsdeck_wire::PruneLine {
            backup,
            reasons: d.reasons,
        };
        if d.keep {
            out.keep.push(line);
        } else {
            out.delete.push(line);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
    }

    fn rules(last: i32, daily: i32, weekly: i32, monthly: i32, age: Option<i32>) -> Retention {
        Retention {
            keep_last: last,
            keep_daily: daily,
            keep_weekly: weekly,
            keep_monthly: monthly,
            max_age_days: age,
        }
    }

    fn kept(ds: &[Decision]) -> Vec<i64> {
        ds.iter().filter(|d| d.keep).map(|d| d.id).collect()
    }

    /// A generated catalog: one backup a day at 02:00 UTC from `from` on
    /// for `days` days, plus a second one at 14:00 on every 5th day; ids
    /// in time order.
    fn catalog(from: DateTime<Utc>, days: i64) -> Vec<Candidate> {
        let mut out = Vec::new();
        let mut id = 1;
        for d in 0..days {
            for (h, every) in [(2, 1), (14, 5)] {
                if d % every == 0 {
                    out.push(Candidate {
                        id,
                        at: from + TimeDelta::days(d) + TimeDelta::hours(h - 2),
                    });
                    id += 1;
                }
            }
        }
        out
    }

    #[test]
    fn a_year_of_dailies_keeps_the_handbook_grandfather_father_son_set() {
        let from = at(2025, 11, 1, 2);
        let c = catalog(from, 365);
        let now = c.last().unwrap().at + TimeDelta::hours(1);
        let d = select(&c, &Retention::default(), chrono_tz::UTC, now);
        assert_eq!(d.len(), c.len());
        let kept_at: Vec<DateTime<Utc>> = d
            .iter()
            .filter(|d| d.keep)
            .map(|d| c.iter().find(|c| c.id == d.id).unwrap().at)
            .collect();
        // Newest first; every kept one is the newest of its day.
        let newest = c.iter().map(|c| c.at).max().unwrap();
        assert_eq!(kept_at[0], newest);
        // 3 last + 7 days + 4 weeks + 12 months, overlapping: the 7 days
        // hold the 3 last and the first week; months hold weeks' newest.
        let days: BTreeSet<String> = kept_at
            .iter()
            .map(|t| t.format("%Y-%m-%d").to_string())
            .collect();
        // The last 3 may share a day (two backups on every 5th day).
        assert!(kept_at.len() >= 7 + 3 + 11 - 2, "{kept_at:?}");
        assert!(kept_at.len() <= 3 + 7 + 4 + 12, "{kept_at:?}");
        // Every month of the year has its newest backup kept.
        let months: BTreeSet<String> = kept_at
            .iter()
            .map(|t| t.format("%Y-%m").to_string())
            .collect();
        assert_eq!(months.len(), 12, "{months:?}");
        // The 7 newest days are all there.
        for back in 0..7 {
            let day = (newest - TimeDelta::days(back))
                .format("%Y-%m-%d")
                .to_string();
            assert!(days.contains(&day), "{day} missing from {days:?}");
        }
        // Nothing kept twice, every decision has a reason.
        assert!(d.iter().all(|d| !d.reasons.is_empty()));
        let ids: BTreeSet<i64> = d.iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), d.len());
    }

    #[test]
    fn each_period_keeps_its_newest_and_periods_without_backups_do_not_count() {
        // Mon 2026-11-16 … : backups on the 16th (two), 18th, 23rd, 30th.
        let c = vec![
            Candidate {
                id: 1,
                at: at(2026, 11, 16, 2),
            },
            Candidate {
                id: 2,
                at: at(2026, 11, 16, 14),
            },
            Candidate {
                id: 3,
                at: at(2026, 11, 18, 2),
            },
            Candidate {
                id: 4,
                at: at(2026, 11, 23, 2),
            },
            Candidate {
                id: 5,
                at: at(2026, 11, 30, 2),
            },
        ];
        let now = at(2026, 11, 30, 3);
        // Daily 3: the 30th, 23rd and 18th (gaps skipped), not the 16th.
        let d = select(&c, &rules(1, 3, 0, 0, None), chrono_tz::UTC, now);
        assert_eq!(kept(&d), vec![5, 4, 3]);
        assert_eq!(d[0].reasons, vec!["last 1", "daily 2026-11-30"]);
        assert_eq!(d[4].reasons, vec!["kept by no rule"]);
        // Weekly 3: W49 (30th), W48 (23rd), W47 (18th is the newest of it).
        let d = select(&c, &rules(1, 0, 3, 0, None), chrono_tz::UTC, now);
        assert_eq!(kept(&d), vec![5, 4, 3]);
        assert_eq!(d[2].reasons, vec!["weekly 2026-W47"]);
        // Monthly 2: only November has backups.
        let d = select(&c, &rules(1, 0, 0, 2, None), chrono_tz::UTC, now);
        assert_eq!(kept(&d), vec![5]);
        // Input order does not matter.
        let mut rev = c.clone();
        rev.reverse();
        assert_eq!(
            select(&rev, &rules(2, 1, 1, 1, None), chrono_tz::UTC, now),
            select(&c, &rules(2, 1, 1, 1, None), chrono_tz::UTC, now)
        );
    }

    #[test]
    fn days_are_counted_in_the_plans_time_zone() {
        // 23:30 UTC on the 21st is already the 22nd in Berlin.
        let c = vec![
            Candidate {
                id: 1,
                at: Utc.with_ymd_and_hms(2026, 11, 21, 22, 30, 0).unwrap(),
            },
            Candidate {
                id: 2,
                at: Utc.with_ymd_and_hms(2026, 11, 21, 23, 30, 0).unwrap(),
            },
        ];
        let now = at(2026, 11, 22, 3);
        let utc = select(&c, &rules(1, 2, 0, 0, None), chrono_tz::UTC, now);
        assert_eq!(kept(&utc), vec![2]);
        let berlin = select(&c, &rules(1, 2, 0, 0, None), chrono_tz::Europe::Berlin, now);
        assert_eq!(kept(&berlin), vec![2, 1]);
        assert_eq!(berlin[1].reasons, vec!["daily 2026-11-21"]);
    }

    #[test]
    fn max_age_overrides_the_counts_but_never_takes_the_newest() {
        let c = catalog(at(2026, 1, 1, 2), 60);
        let newest = c.iter().map(|c| c.at).max().unwrap();
        let now = newest + TimeDelta::hours(1);
        let limited = select(&c, &rules(3, 7, 4, 12, Some(7)), chrono_tz::UTC, now);
        let unlimited = select(&c, &rules(3, 7, 4, 12, None), chrono_tz::UTC, now);
        let limit = now - TimeDelta::days(7);
        let mut old = 0;
        for (d, u) in limited.iter().zip(&unlimited) {
            let when = c.iter().find(|c| c.id == d.id).unwrap().at;
            if when < limit {
                old += 1;
                assert!(!d.keep, "{d:?} at {when}");
                assert_eq!(d.reasons, vec!["older than 7 days"]);
            } else {
                assert_eq!(d, u, "within the age the counts decide");
            }
        }
        // The weeklies and monthlies the counts would keep are gone.
        assert!(old > 0);
        assert!(
            unlimited.iter().filter(|d| d.keep).count() > limited.iter().filter(|d| d.keep).count()
        );
        // A plan that stopped a year ago keeps its newest backup.
        let now = newest + TimeDelta::days(365);
        let d = select(&c, &rules(3, 7, 4, 12, Some(7)), chrono_tz::UTC, now);
        assert_eq!(kept(&d).len(), 1);
        assert!(d[0].keep);
    }

    #[test]
    fn keep_last_is_at_least_one_and_an_empty_catalog_is_fine() {
        assert!(select(&[], &Retention::default(), chrono_tz::UTC, Utc::now()).is_empty());
        let c = catalog(at(2026, 1, 1, 2), 3);
        let d = select(&c, &rules(0, 0, 0, 0, None), chrono_tz::UTC, Utc::now());
        assert_eq!(kept(&d).len(), 1);
    }
}
