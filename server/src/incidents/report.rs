//! Incident reports: incidents per week, MTTA, MTTR and SLA breaches by
//! severity and by service, uptime per service from the health rollups; and
//! the CSV export (one line per incident).
//!
//! An incident belongs to the period when it was triggered in it. MTTA is
//! the mean of `acknowledged_at - triggered_at` over acknowledged incidents,
//! MTTR of `resolved_at - triggered_at` over resolved ones. Breaches are
//! counted from the SLA timers at report time (met late, or due and unmet),
//! so they do not depend on the ticker having run. Uptime is `ok / probes`
//! over the hourly rollups of the service's checks in the period.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration as ChronoDuration, NaiveDate, Utc};
use opsdeck_wire::{Incident, IncidentReport, ReportRow, Severity, WeekCount};
use sqlx::PgConnection;

use super::error::{invalid, Result};
use super::{model, store};

/// The report period: `to` defaults to now, `from` to 30 days before it;
/// `from < to`, at most 3 years.
pub fn period(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
) -> Result<(DateTime<Utc>, DateTime<Utc>)> {
    let to = to.unwrap_or_else(Utc::now);
    let from = from.unwrap_or(to - ChronoDuration::days(30));
    if from >= to {
        return Err(invalid("from must be before to"));
    }
    if to - from > ChronoDuration::days(366 * 3) {
        return Err(invalid("period: at most 3 years"));
    }
    Ok((from, to))
}

/// `90 s` → "1 min 30 s"; `7200` → "2 h".
pub fn human_secs(secs: f64) -> String {
    let s = secs.round() as i64;
    if s < 60 {
        return format!("{s} s");
    }
    let (d, h, m, sec) = (s / 86400, (s % 86400) / 3600, (s % 3600) / 60, s % 60);
    let mut parts = Vec::new();
    if d > 0 {
        parts.push(format!("{d} d"));
    }
    if h > 0 {
        parts.push(format!("{h} h"));
    }
    if m > 0 && d == 0 {
        parts.push(format!("{m} min"));
    }
    if sec > 0 && d == 0 && h == 0 {
        parts.push(format!("{sec} s"));
    }
    parts.join(" ")
}

/// Incidents triggered in `[from, to)`, with timers computed at `now`.
pub async fn incidents_in(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<Incident>> {
    let rows = store::triggered_in(conn, from, to).await?;
    let targets = model::targets(conn).await?;
    Ok(rows
        .into_iter()
        .map(|i| model::with_sla(i, &targets, now))
        .collect())
}

fn mean(v: &[f64]) -> Option<f64> {
    (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
}

#[derive(Default)]
struct Acc {
    incidents: i64,
    tta: Vec<f64>,
    ttr: Vec<f64>,
    breaches: i64,
}

impl Acc {
    fn add(&mut self, i: &Incident) {
        self.incidents += 1;
        if let Some(a) = i.acknowledged_at {
            self.tta
                .push((a - i.triggered_at).num_milliseconds() as f64 / 1000.0);
        }
        if let Some(r) = i.resolved_at {
            self.ttr
                .push((r - i.triggered_at).num_milliseconds() as f64 / 1000.0);
        }
        self.breaches += breaches(i);
    }

    fn row(&self, key: String, uptime: Option<f64>) -> ReportRow {
        ReportRow {
            key,
            incidents: self.incidents,
            mtta_secs: mean(&self.tta),
            mttr_secs: mean(&self.ttr),
            sla_breaches: self.breaches,
            uptime,
        }
    }
}

fn breaches(i: &Incident) -> i64 {
    i.sla.iter().filter(|t| t.breached).count() as i64
}

fn monday(d: NaiveDate) -> NaiveDate {
    d - ChronoDuration::days(i64::from(d.weekday().num_days_from_monday()))
}

/// The report for `[from, to)`.
pub async fn build(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    now: DateTime<Utc>,
) -> sqlx::Result<IncidentReport> {
    let items = incidents_in(conn, from, to, now).await?;
    let mut total = Acc::default();
    let mut sev: BTreeMap<Severity, Acc> = BTreeMap::new();
    let mut svc: BTreeMap<String, Acc> = BTreeMap::new();
    let mut weeks: BTreeMap<NaiveDate, i64> = BTreeMap::new();
    // Every week of the period, empty ones too.
    let mut w = monday(from.date_naive());
    let last = monday((to - ChronoDuration::seconds(1)).date_naive());
    while w <= last {
        weeks.insert(w, 0);
        w += ChronoDuration::days(7);
    }
    for i in &items {
        total.add(i);
        sev.entry(i.severity).or_default().add(i);
        for s in &i.services {
            svc.entry(s.name.clone()).or_default().add(i);
        }
        *weeks
            .entry(monday(i.triggered_at.date_naive()))
            .or_default() += 1;
    }
    let uptime = uptime_by_service(conn, from, to).await?;
    let mut by_service: Vec<ReportRow> = svc
        .iter()
        .map(|(name, a)| a.row(name.clone(), uptime.get(name).copied()))
        .collect();
    // Services without incidents still have an uptime worth showing.
    for (name, u) in &uptime {
        if !svc.contains_key(name) {
            by_service.push(Acc::default().row(name.clone(), Some(*u)));
        }
    }
    by_service.sort_by(|a, b| b.incidents.cmp(&a.incidents).then(a.key.cmp(&b.key)));
    Ok(IncidentReport {
        from,
        to,
        total: total.incidents,
        mtta_secs: mean(&total.tta),
        mttr_secs: mean(&total.ttr),
        breaches: total.breaches,
        weeks: weeks
            .into_iter()
            .map(|(week, count)| WeekCount { week, count })
            .collect(),
        by_severity: Severity::ALL
            .iter()
            .map(|s| {
                sev.get(s)
                    .map(|a| a.row(s.as_str().into(), None))
                    .unwrap_or_else(|| Acc::default().row(s.as_str().into(), None))
            })
            .collect(),
        by_service,
    })
}

async fn uptime_by_service(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> sqlx::Result<HashMap<String, f64>> {
    let rows = store::probes_by_service(conn, from, to).await?;
    Ok(rows
        .into_iter()
        .map(|(n, ok, probes)| (n, ok as f64 / probes as f64))
        .collect())
}

/// One CSV field, quoted when needed (RFC 4180), with formula-leading
/// characters neutralised so a spreadsheet never evaluates a title.
fn field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

/// The CSV export: one line per incident.
pub fn csv(items: &[Incident]) -> String {
    let mut out = String::from(
        "id,title,severity,status,source,services,triggered_at,acknowledged_at,resolved_at,time_to_ack_secs,time_to_resolve_secs,sla_breaches\n",
    );
    let ts = |t: Option<DateTime<Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_default();
    for i in items {
        let secs = |t: Option<DateTime<Utc>>| {
            t.map(|t| (t - i.triggered_at).num_seconds().to_string())
                .unwrap_or_default()
        };
        let breached: Vec<&str> = i
            .sla
            .iter()
            .filter(|t| t.breached)
            .map(|t| t.milestone.as_str())
            .collect();
        let services: Vec<&str> = i.services.iter().map(|s| s.name.as_str()).collect();
        let line = [
            i.id.to_string(),
            field(&i.title),
            i.severity.as_str().into(),
            i.status.as_str().into(),
            i.source.clone(),
            field(&services.join(" ")),
            i.triggered_at.to_rfc3339(),
            ts(i.acknowledged_at),
            ts(i.resolved_at),
            secs(i.acknowledged_at),
            secs(i.resolved_at),
            breached.join(" "),
        ];
        out.push_str(&line.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations() {
        assert_eq!(human_secs(42.0), "42 s");
        assert_eq!(human_secs(90.0), "1 min 30 s");
        assert_eq!(human_secs(7200.0), "2 h");
        assert_eq!(human_secs(86400.0 * 3.0 + 3600.0), "3 d 1 h");
    }

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(field("-1"), "'-1");
    }

    #[test]
    fn weeks_start_on_monday() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 22).unwrap(); // a Sunday
        assert_eq!(monday(d), NaiveDate::from_ymd_opt(2026, 11, 16).unwrap());
    }
}
