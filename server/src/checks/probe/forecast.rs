//! The `forecast` check: days until a resource is full at the last 14
//! days' rate, from the resource history's hourly series
//! (`crate::resources::forecast_of`; the fit is `resources::forecast`).
//! Lower is worse: at most `critical_days` is critical, at most
//! `warning_days` a warning. Without enough history the check is
//! "unknown", never "ok".

use opsdeck_wire::{CheckStatus, Forecast, ForecastCheck, Resource};
use sqlx::PgPool;

use super::Probe;
use crate::resources::{forecast, ForecastFilter};

/// Reads the series the check names and grades its forecast.
pub async fn probe(pool: &PgPool, service_id: Option<i64>, c: &ForecastCheck) -> Probe {
    let filter = match (c.resource, service_id) {
        (Resource::Disk, _) => ForecastFilter {
            kind: Some("mount"),
            mount: Some(c.path.clone().unwrap_or_else(|| "/".into())),
            service_id: None,
        },
        (_, Some(id)) => ForecastFilter {
            kind: Some("service"),
            service_id: Some(id),
            mount: None,
        },
        (_, None) => ForecastFilter {
            kind: Some("host"),
            ..ForecastFilter::default()
        },
    };
    match crate::resources::forecast_of(pool, &filter).await {
        Ok(outlook) => grade(outlook, c),
        Err(e) => Probe::critical(format!("reading the resource history failed: {e}")),
    }
}

fn gib(bytes: f64) -> String {
    format!("{:.1} GiB", bytes / (1024.0 * 1024.0 * 1024.0))
}

/// Grades a forecast (pure).
pub fn grade(outlook: Option<Result<Forecast, String>>, c: &ForecastCheck) -> Probe {
    let f = match outlook {
        None => {
            return Probe::new(
                CheckStatus::Unknown,
                "no resource history yet for this resource",
            )
        }
        Some(Err(why)) => return Probe::new(CheckStatus::Unknown, why),
        Some(Ok(f)) => f,
    };
    let rate = format!(
        "{}{}/day, {} of {}",
        if f.slope_per_day >= 0.0 { "+" } else { "−" },
        gib(f.slope_per_day.abs()),
        gib(f.used),
        gib(f.capacity)
    );
    let used_pct = 100.0 * f.used / f.capacity;
    let p = match f.days_to_full {
        None => Probe::ok(format!("{}: not filling up ({rate})", f.label)),
        Some(days) => {
            let text = format!(
                "{} full in {} at the last {} days' rate ({rate})",
                f.label,
                forecast::days_text(days),
                forecast::WINDOW_DAYS
            );
            let status = if days <= c.critical_days {
                CheckStatus::Critical
            } else if days <= c.warning_days {
                CheckStatus::Warning
            } else {
                CheckStatus::Ok
            };
            let text = match status {
                CheckStatus::Critical => {
                    format!("{text} (critical within {} days)", c.critical_days)
                }
                CheckStatus::Warning => format!("{text} (warning within {} days)", c.warning_days),
                _ => text,
            };
            Probe::new(status, text).metric("days_to_full", days)
        }
    };
    p.metric("slope_per_day", f.slope_per_day)
        .metric("used_pct", used_pct)
        .metric("r2", f.r2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

    fn check() -> ForecastCheck {
        ForecastCheck {
            resource: Resource::Disk,
            path: Some("/".into()),
            warning_days: 14.0,
            critical_days: 3.0,
        }
    }

    fn fc(days: Option<f64>) -> Forecast {
        Forecast {
            resource: "disk".into(),
            kind: "mount".into(),
            service_id: None,
            mount: Some("/".into()),
            label: "disk /".into(),
            used: 60.0 * GIB,
            capacity: 100.0 * GIB,
            slope_per_day: 4.0 * GIB,
            days_to_full: days,
            r2: 0.99,
            points: 336,
            span_days: 14.0,
        }
    }

    #[test]
    fn grades_by_days_to_full() {
        let p = grade(Some(Ok(fc(Some(9.4)))), &check());
        assert_eq!(p.status, CheckStatus::Warning);
        assert_eq!(
            p.message,
            "disk / full in about 9 days at the last 14 days' rate (+4.0 GiB/day, 60.0 GiB of 100.0 GiB) (warning within 14 days)"
        );
        assert_eq!(
            grade(Some(Ok(fc(Some(2.0)))), &check()).status,
            CheckStatus::Critical
        );
        assert_eq!(
            grade(Some(Ok(fc(Some(30.0)))), &check()).status,
            CheckStatus::Ok
        );
        let p = grade(Some(Ok(fc(None))), &check());
        assert_eq!(p.status, CheckStatus::Ok);
        assert!(p.message.contains("not filling up"), "{}", p.message);
        assert!(p.metrics.iter().all(|m| m.name != "days_to_full"));
    }

    #[test]
    fn no_history_is_unknown() {
        assert_eq!(grade(None, &check()).status, CheckStatus::Unknown);
        let p = grade(Some(Err("not enough history".into())), &check());
        assert_eq!(
            (p.status, p.message.as_str()),
            (CheckStatus::Unknown, "not enough history")
        );
    }
}
