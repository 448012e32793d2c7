//! The monthly capacity report: per service, for the host and per mount,
//! the month's average and peak CPU and memory, disk growth, and the
//! change from the month before; the top growers first. Built on request
//! from the hourly rollups (a month is at most ~750 rows per series).

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc};
use opsdeck_wire::{CapacityReport, CapacityRow};
use sqlx::PgPool;

use super::store::{self, MonthRow};
use super::ResourceError;

/// How many rows "top growers" lists.
pub const TOP: usize = 5;

/// A calendar month (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i32,
    pub month: u32,
}

impl Month {
    /// `YYYY-MM`, or the month of `now`.
    pub fn parse(text: Option<&str>, now: DateTime<Utc>) -> Result<Month, ResourceError> {
        let Some(t) = text.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Month {
                year: now.year(),
                month: now.month(),
            });
        };
        let bad = || ResourceError::Invalid(format!("month: expected YYYY-MM, not {t:?}"));
        let (y, m) = t.split_once('-').ok_or_else(bad)?;
        let (year, month) = (
            y.parse::<i32>().map_err(|_| bad())?,
            m.parse::<u32>().map_err(|_| bad())?,
        );
        if y.len() != 4
            || m.len() != 2
            || !(1..=12).contains(&month)
            || !(2000..=9999).contains(&year)
        {
            return Err(bad());
        }
        Ok(Month { year, month })
    }

    fn start(self) -> DateTime<Utc> {
        let d = NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or_default();
        Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).unwrap_or_default())
    }

    fn next(self) -> Month {
        if self.month == 12 {
            Month {
                year: self.year + 1,
                month: 1,
            }
        } else {
            Month {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    fn prev(self) -> Month {
        if self.month == 1 {
            Month {
                year: self.year - 1,
                month: 12,
            }
        } else {
            Month {
                year: self.year,
                month: self.month - 1,
            }
        }
    }

    pub fn text(self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

fn pct_change(now: Option<f64>, before: Option<f64>) -> Option<f64> {
    match (now, before) {
        (Some(n), Some(b)) if b > 0.0 => Some(100.0 * (n - b) / b),
        _ => None,
    }
}

/// One report line from a series' month (pure).
pub fn row(m: MonthRow) -> CapacityRow {
    let mount = m.kind == "mount";
    let (change, growth) = if mount {
        let growth = match (m.disk_first, m.disk_last, m.disk_total) {
            (Some(a), Some(b), Some(t)) if t > 0 => Some(100.0 * (b - a) as f64 / t as f64),
            _ => None,
        };
        (
            pct_change(
                m.disk_last.map(|v| v as f64),
                m.prev_disk_last.map(|v| v as f64),
            ),
            growth,
        )
    } else {
        let c = pct_change(m.mem_avg, m.prev_mem_avg);
        (c, c)
    };
    CapacityRow {
        kind: m.kind,
        service_id: m.service_id,
        label: m.label,
        cpu_avg: if mount { None } else { m.cpu_avg },
        cpu_peak: if mount { None } else { m.cpu_peak },
        mem_avg: if mount { None } else { m.mem_avg },
        mem_peak: if mount { None } else { m.mem_peak },
        mem_limit: if mount { None } else { m.mem_limit },
        disk_used: m.disk_last,
        disk_growth: match (m.disk_first, m.disk_last) {
            (Some(a), Some(b)) => Some(b - a),
            _ => None,
        },
        disk_total: m.disk_total,
        prev_cpu_avg: m.prev_cpu_avg,
        prev_mem_avg: m.prev_mem_avg,
        change_pct: change,
        growth_pct: growth,
        hours: m.hours.max(0) as u32,
    }
}

/// Orders rows by growth (largest first, rows without one last), then
/// name; the top growers are the first [`TOP`] with growth > 0.
pub fn rank(mut rows: Vec<CapacityRow>) -> (Vec<CapacityRow>, Vec<CapacityRow>) {
    rows.sort_by(|a, b| {
        let g = |r: &CapacityRow| r.growth_pct.unwrap_or(f64::NEG_INFINITY);
        g(b).partial_cmp(&g(a))
            .unwrap_or(std::cmp::Ordering::Equal)
            .then_with(|| a.label.cmp(&b.label))
    });
    let top = rows
        .iter()
        .filter(|r| r.growth_pct.is_some_and(|g| g > 0.0))
        .take(TOP)
        .cloned()
        .collect();
    (top, rows)
}

/// The report of `month`.
pub async fn build(pool: &PgPool, month: Month) -> Result<CapacityReport, ResourceError> {
    let rows = store::month(
        pool,
        month.prev().start(),
        month.start(),
        month.next().start(),
    )
    .await?;
    let (top_growers, rows) = rank(rows.into_iter().map(row).collect());
    Ok(CapacityReport {
        month: month.text(),
        generated_at: Utc::now(),
        top_growers,
        rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month_row(kind: &str, label: &str) -> MonthRow {
        MonthRow {
            kind: kind.into(),
            service_id: None,
            label: label.into(),
            hours: 10,
            cpu_avg: Some(5.0),
            cpu_peak: Some(50.0),
            mem_avg: Some(200.0),
            mem_peak: Some(300),
            mem_limit: Some(1000),
            disk_first: None,
            disk_last: None,
            disk_total: None,
            prev_cpu_avg: None,
            prev_mem_avg: Some(100.0),
            prev_disk_last: None,
        }
    }

    #[test]
    fn months_parse_and_step() {
        let now = Utc.with_ymd_and_hms(2026, 12, 8, 10, 0, 0).unwrap();
        assert_eq!(Month::parse(None, now).unwrap().text(), "2026-12");
        let m = Month::parse(Some("2026-01"), now).unwrap();
        assert_eq!(m.prev().text(), "2025-12");
        assert_eq!(m.next().text(), "2026-02");
        assert_eq!(
            Month::parse(Some("2026-12"), now).unwrap().next().text(),
            "2027-01"
        );
        for bad in ["2026-13", "2026-1", "26-01", "december", "2026-00"] {
            assert!(Month::parse(Some(bad), now).is_err(), "{bad}");
        }
    }

    #[test]
    fn growers_are_ranked_first() {
        let mut steady = month_row("service", "steady");
        steady.prev_mem_avg = Some(200.0);
        let grower = month_row("service", "grower"); // 100 → 200: +100 %
        let mut disk = month_row("mount", "disk /data");
        disk.disk_first = Some(100);
        disk.disk_last = Some(400);
        disk.disk_total = Some(1000);
        disk.prev_disk_last = Some(100);
        let mut new = month_row("service", "new");
        new.prev_mem_avg = None;
        let (top, rows) = rank(vec![row(steady), row(new), row(disk), row(grower)]);
        let labels: Vec<&str> = rows.iter().map(|r| r.label.as_str()).collect();
        assert_eq!(labels, ["grower", "disk /data", "steady", "new"]);
        assert_eq!(top.len(), 2, "only growth > 0 is a grower");
        assert_eq!(top[0].growth_pct, Some(100.0));
        let d = &rows[1];
        assert_eq!(
            (d.disk_growth, d.growth_pct, d.change_pct),
            (Some(300), Some(30.0), Some(300.0))
        );
        assert_eq!(d.cpu_avg, None, "a mount has no CPU");
    }
}
