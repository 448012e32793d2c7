//! A plan's timing: its schedules (backups and restore drills, cron in a
//! time zone), its retention rules, and what the next prune would delete
//! ([`PrunePreviewLine`]).
//!
//! A new plan starts with the handbooks' timetable
//! ([`opsdeck_wire::handbook_schedules`]); "Use the handbook timetable"
//! puts it back.

use leptos::prelude::*;
use opsdeck_wire::{
    handbook_schedules, BackupPlan, PlanSchedule, PlanScheduleKind, PlanWrite, Retention,
};

use crate::api;

/// One editable schedule line.
#[derive(Clone, Copy)]
struct Row {
    drill: RwSignal<bool>,
    cron: RwSignal<String>,
}

impl Row {
    fn new(s: &PlanSchedule) -> Row {
        Row {
            drill: RwSignal::new(s.kind == PlanScheduleKind::Drill),
            cron: RwSignal::new(s.cron.clone()),
        }
    }
}

/// The form state of a plan's timing.
#[derive(Clone, Copy)]
pub(super) struct Timing {
    rows: RwSignal<Vec<Row>>,
    timezone: RwSignal<String>,
    keep_last: RwSignal<String>,
    keep_daily: RwSignal<String>,
    keep_weekly: RwSignal<String>,
    keep_monthly: RwSignal<String>,
    max_age: RwSignal<String>,
}

impl Timing {
    pub(super) fn new(def: Option<&PlanWrite>) -> Timing {
        let schedules = def
            .map(|d| d.schedules.clone())
            .unwrap_or_else(handbook_schedules);
        let r = def.map(|d| d.retention.clone()).unwrap_or_default();
        let tz = def
            .map(|d| d.timezone.clone())
            .unwrap_or_else(|| crate::time::browser_timezone().unwrap_or_else(|| "UTC".into()));
        Timing {
            rows: RwSignal::new(schedules.iter().map(Row::new).collect()),
            timezone: RwSignal::new(tz),
            keep_last: RwSignal::new(r.keep_last.to_string()),
            keep_daily: RwSignal::new(r.keep_daily.to_string()),
            keep_weekly: RwSignal::new(r.keep_weekly.to_string()),
            keep_monthly: RwSignal::new(r.keep_monthly.to_string()),
            max_age: RwSignal::new(r.max_age_days.map(|d| d.to_string()).unwrap_or_default()),
        }
    }

    pub(super) fn schedules(&self) -> Vec<PlanSchedule> {
        self.rows
            .get_untracked()
            .into_iter()
            .map(|r| PlanSchedule {
                kind: if r.drill.get_untracked() {
                    PlanScheduleKind::Drill
                } else {
                    PlanScheduleKind::Backup
                },
                cron: r.cron.get_untracked().trim().to_string(),
            })
            .collect()
    }

    pub(super) fn timezone(&self) -> String {
        self.timezone.get_untracked().trim().to_string()
    }

    /// The rules, or the first field that is not a count.
    pub(super) fn retention(&self) -> Result<Retention, super::FormError> {
        let count = |s: RwSignal<String>, field: &str, min: i32| match s
            .get_untracked()
            .trim()
            .parse::<i32>()
        {
            Ok(n) if (min..=1000).contains(&n) => Ok(n),
            _ => Err(super::FormError::at(
                format!("retention.{field}"),
                &format!("a whole number from {min} to 1000."),
            )),
        };
        let max_age = self.max_age.get_untracked();
        let max_age_days = match max_age.trim() {
            "" => None,
            t => match t.parse::<i32>() {
                Ok(n) if (1..=36500).contains(&n) => Some(n),
                _ => {
                    return Err(super::FormError::at(
                        "retention.max_age_days",
                        "days from 1 to 36500, or empty for no limit.",
                    ))
                }
            },
        };
        Ok(Retention {
            keep_last: count(self.keep_last, "keep_last", 1)?,
            keep_daily: count(self.keep_daily, "keep_daily", 0)?,
            keep_weekly: count(self.keep_weekly, "keep_weekly", 0)?,
            keep_monthly: count(self.keep_monthly, "keep_monthly", 0)?,
            max_age_days,
        })
    }
}

#[component]
pub(super) fn TimingFields(timing: Timing, invalid: Memo<Option<String>>) -> impl IntoView {
    let bad = move |f: String| {
        move || {
            invalid
                .with(|x| x.as_deref() == Some(f.as_str()))
                .then_some("true")
        }
    };
    let number = move |label: &'static str,
                       field: &'static str,
                       sig: RwSignal<String>,
                       hint: &'static str| {
        view! {
            <label>{label}
                <input type="number" min="0" max="36500" step="1" data-testid=format!("plan-{}", field.replace('_', "-"))
                    aria-invalid=bad(format!("retention.{field}"))
                    prop:value=move || sig.get() on:input=move |e| sig.set(event_target_value(&e))/>
                <span class="hint">{hint}</span>
            </label>
        }
    };
    let rows = move || {
        let rows = timing.rows.get();
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| {
                view! {
                    <li class="backup-schedule-row" data-testid=format!("plan-schedule-{i}")>
                        <select data-testid=format!("plan-schedule-kind-{i}") aria-label="What runs"
                            on:change=move |e| row.drill.set(event_target_value(&e) == "drill")>
                            <option value="backup" prop:selected=move || !row.drill.get()>"Backup"</option>
                            <option value="drill" prop:selected=move || row.drill.get()>"Restore drill"</option>
                        </select>
                        <input data-testid=format!("plan-schedule-cron-{i}") aria-label="Cron expression"
                            spellcheck="false" autocomplete="off" placeholder="0 2 * * *"
                            aria-invalid=bad(format!("schedules[{i}].cron"))
                            prop:value=move || row.cron.get() on:input=move |e| row.cron.set(event_target_value(&e))/>
                        <span class="hint">{move || describe(&row.cron.get(), row.drill.get())}</span>
                        <button type="button" class="btn btn-small btn-ghost" aria-label="Remove this schedule" title="Remove this schedule"
                            data-testid=format!("plan-schedule-remove-{i}")
                            on:click=move |_| timing.rows.update(|v| { v.remove(i); })>"✕"</button>
                    </li>
                }
            })
            .collect_view()
    };
    view! {
        <fieldset class="span-all backup-timing">
            <legend>"Schedules"</legend>
            <p class="hint">"Cron expressions (minute hour day-of-month month day-of-week) in the time zone below. A drill reads the newest good backup back and test-restores it again. No schedules: backups by hand only."</p>
            <ol class="plain-list backup-schedule-list">{rows}</ol>
            <div class="btn-row">
                <button type="button" class="btn btn-small" data-testid="plan-schedule-add"
                    on:click=move |_| timing.rows.update(|v| v.push(Row::new(&PlanSchedule { kind: PlanScheduleKind::Backup, cron: "0 2 * * *".into() })))>"+ Add a schedule"</button>
                <button type="button" class="btn btn-small btn-ghost" data-testid="plan-schedule-handbook"
                    on:click=move |_| timing.rows.set(handbook_schedules().iter().map(Row::new).collect())>"Use the handbook timetable"</button>
            </div>
            <label>"Time zone"
                <input data-testid="plan-timezone" spellcheck="false" autocomplete="off" placeholder="Europe/Berlin"
                    aria-invalid=bad("timezone".into())
                    prop:value=move || timing.timezone.get() on:input=move |e| timing.timezone.set(event_target_value(&e))/>
            </label>
        </fieldset>
        <fieldset class="span-all backup-timing">
            <legend>"Retention"</legend>
            <p class="hint">"After each good backup, older ones are pruned. A backup stays when any rule keeps it; the newest always stays. Backups that failed verification are never pruned (delete them by hand)."</p>
            <div class="form-grid">
                {number("Keep last", "keep_last", timing.keep_last, "the newest n")}
                {number("Daily", "keep_daily", timing.keep_daily, "newest of each of the last n days")}
                {number("Weekly", "keep_weekly", timing.keep_weekly, "newest of each of the last n weeks")}
                {number("Monthly", "keep_monthly", timing.keep_monthly, "newest of each of the last n months")}
                {number("Max age (days)", "max_age_days", timing.max_age, "empty: no limit")}
            </div>
        </fieldset>
    }
}

/// "daily at 02:00"-style words for the common shapes; the expression
/// itself otherwise.
fn describe(cron: &str, drill: bool) -> String {
    let what = if drill { "drill" } else { "backup" };
    let f: Vec<&str> = cron.split_whitespace().collect();
    let [m, h, dom, mon, dow] = f.as_slice() else {
        return String::new();
    };
    let (Ok(m), Ok(h)) = (m.parse::<u32>(), h.parse::<u32>()) else {
        return String::new();
    };
    let at = format!("{h:02}:{m:02}");
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    match (*dom, *mon, *dow) {
        ("*", "*", "*") => format!("{what} daily at {at}"),
        ("*", "*", d) => match d.parse::<usize>() {
            Ok(d) if d <= 7 => format!("{what} every {} at {at}", DAYS[d % 7]),
            _ => String::new(),
        },
        (d, "*", "*") => match d.parse::<u32>() {
            Ok(1) => format!("{what} monthly on the 1st at {at}"),
            Ok(d) => format!("{what} monthly on day {d} at {at}"),
            _ => String::new(),
        },
        _ => String::new(),
    }
}

/// On a plan's card (inside its facts list): schedules with the next
/// runs, retention with what the next prune deletes, the last drill.
#[component]
pub(super) fn PlanTiming(plan: BackupPlan) -> impl IntoView {
    let name = plan.def.name.clone();
    let tz = plan.def.timezone.clone();
    let schedules = plan.def.schedules.clone();
    let r = plan.def.retention.clone();
    let next = plan.next.clone();
    let fmt = move |at: chrono::DateTime<chrono::Utc>| crate::time::local_text(at);
    view! {
        <dt>"Schedules"</dt>
        <dd data-testid=format!("plan-schedules-{name}")>
            {if schedules.is_empty() {
                view! { <span class="muted">"none: by hand only"</span> }.into_any()
            } else {
                view! {
                    <ul class="plain-list">
                        {schedules.iter().map(|s| {
                            let words = describe(&s.cron, s.kind == PlanScheduleKind::Drill);
                            view! { <li><code>{s.cron.clone()}</code>" "<span class="muted">{words}</span></li> }
                        }).collect_view()}
                    </ul>
                    <span class="muted small">{format!("in {tz}")}</span>
                    {next.first().map(|n| view! {
                        <div class="small" data-testid=format!("plan-next-{name}")>
                            {format!("next: {} {}", if n.kind == PlanScheduleKind::Drill { "drill" } else { "backup" }, fmt(n.at))}
                        </div>
                    })}
                }.into_any()
            }}
        </dd>
        <dt>"Retention"</dt>
        <dd>
            <span>{format!(
                "last {}, {} daily, {} weekly, {} monthly{}",
                r.keep_last, r.keep_daily, r.keep_weekly, r.keep_monthly,
                r.max_age_days.map(|d| format!(", at most {d} days old")).unwrap_or_default()
            )}</span>
            <PrunePreviewLine plan=plan.clone()/>
        </dd>
        <dt>"Last drill"</dt>
        <dd data-testid=format!("plan-drill-{name}")>
            {match plan.drill.clone() {
                None => view! { <span class="muted">"none yet"</span> }.into_any(),
                Some(d) if d.ok => view! {
                    <span class="pill pill-ok">"passed"</span>" "
                    {d.backup_id.map(|b| view! { <a href=format!("/backups/{b}")>{format!("#{b}")}</a> })}
                    " "<span class="muted">{fmt(d.at)}</span>
                }.into_any(),
                Some(d) => view! {
                    <span class="pill pill-outage">"failed"</span>" "
                    <span class="muted">{fmt(d.at)}</span>
                    <div class="error-text small wrap-anywhere">{d.error.unwrap_or_default()}</div>
                }.into_any(),
            }}
        </dd>
    }
}

/// What the next prune would delete.
#[component]
fn PrunePreviewLine(plan: BackupPlan) -> impl IntoView {
    let id = plan.id;
    let preview = LocalResource::new(move || async move { api::backups::prune_preview(id).await });
    view! {
        <p class="hint backup-prune" data-testid=format!("plan-prune-{}", plan.def.name)>
            {move || match preview.get() {
                None => "Next prune: …".to_string(),
                Some(Err(e)) => format!("Next prune: unknown ({})", e.message),
                Some(Ok(p)) if p.delete.is_empty() => {
                    format!("Next prune deletes nothing ({} kept).", p.keep.len())
                }
                Some(Ok(p)) => format!(
                    "Next prune deletes {}: {} ({} kept).",
                    if p.delete.len() == 1 { "1 backup".to_string() } else { format!("{} backups", p.delete.len()) },
                    p.delete
                        .iter()
                        .map(|l| format!("#{} ({})", l.backup.id, l.reasons.join(", ")))
                        .collect::<Vec<_>>()
                        .join("; "),
                    p.keep.len()
                ),
            }}
        </p>
    }
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn common_timetables_read_as_words() {
        assert_eq!(describe("0 2 * * *", false), "backup daily at 02:00");
        assert_eq!(describe("0 3 * * 0", false), "backup every Sunday at 03:00");
        assert_eq!(
            describe("0 4 1 * *", false),
            "backup monthly on the 1st at 04:00"
        );
        assert_eq!(describe("0 5 * * 0", true), "drill every Sunday at 05:00");
        assert_eq!(describe("*/5 * * * *", false), "");
    }
}
