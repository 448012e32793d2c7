//! Forecasts: an ordinary least-squares line through a resource's hourly
//! series, and the days until it reaches the capacity at that rate.
//!
//! Pure math. Points go in as running sums ([`Sums`]) so the database can
//! add them up for many series in one query (`store::forecast_sums`) and
//! the fit here stays the only implementation. `x` is in days (relative to
//! now, so negative), `y` in bytes:
//!
//! * slope  b = Sxy / Sxx, intercept a = ȳ − b·x̄, where
//!   Sxx = Σx² − (Σx)²/n, Sxy = Σxy − Σx·Σy/n, Syy = Σy² − (Σy)²/n;
//! * fit quality R² = Sxy² / (Sxx·Syy) (1 for a perfect line; a flat series,
//!   Syy ≈ 0 up to rounding, is a perfect fit of slope 0);
//! * days to full = (capacity − latest value) / b, only when b > 0 and the
//!   answer is within [`HORIZON_DAYS`]; "never" otherwise.
//!
//! A forecast needs at least [`MIN_POINTS`] hourly points (a day).

/// The window a forecast looks back over.
pub const WINDOW_DAYS: u32 = 14;
/// Fewer hourly points than this: no forecast ("not enough history").
pub const MIN_POINTS: u32 = 24;
/// Beyond this, "never" (a noisy flat series has a tiny positive slope).
pub const HORIZON_DAYS: f64 = 3650.0;

/// Running sums of (x, y) points.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sums {
    pub n: f64,
    pub sx: f64,
    pub sy: f64,
    pub sxx: f64,
    pub sxy: f64,
    pub syy: f64,
}

impl Sums {
    pub fn add(&mut self, x: f64, y: f64) {
        self.n += 1.0;
        self.sx += x;
        self.sy += y;
        self.sxx += x * x;
        self.sxy += x * y;
        self.syy += y * y;
    }

    pub fn of(points: impl IntoIterator<Item = (f64, f64)>) -> Sums {
        let mut s = Sums::default();
        for (x, y) in points {
            s.add(x, y);
        }
        s
    }
}

/// A fitted line y = intercept + slope·x.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fit {
    pub slope: f64,
    pub intercept: f64,
    pub r2: f64,
}

/// The least-squares line; `None` with fewer than two distinct x.
pub fn fit(s: &Sums) -> Option<Fit> {
    if s.n < 2.0 {
        return None;
    }
    let sxx = s.sxx - s.sx * s.sx / s.n;
    let sxy = s.sxy - s.sx * s.sy / s.n;
    let syy = (s.syy - s.sy * s.sy / s.n).max(0.0);
    if sxx <= f64::EPSILON * s.sxx.abs().max(1.0) {
        return None;
    }
    // A flat series: what is left of Syy is rounding in the sums.
    if syy <= 1e-12 * s.syy {
        return Some(Fit {
            slope: 0.0,
            intercept: s.sy / s.n,
            r2: 1.0,
        });
    }
    let slope = sxy / sxx;
    let r2 = (sxy * sxy / (sxx * syy)).clamp(0.0, 1.0);
    let intercept = s.sy / s.n - slope * s.sx / s.n;
    Some(Fit {
        slope,
        intercept,
        r2,
    })
}

/// Days until `used` reaches `capacity` growing `slope_per_day`; `None`
/// when it never does (flat, shrinking, or beyond [`HORIZON_DAYS`]).
pub fn days_to_full(used: f64, capacity: f64, slope_per_day: f64) -> Option<f64> {
    if slope_per_day.is_nan() || slope_per_day <= 0.0 || capacity.is_nan() || capacity <= 0.0 {
        return None;
    }
    if used >= capacity {
        return Some(0.0);
    }
    let days = (capacity - used) / slope_per_day;
    (days <= HORIZON_DAYS).then_some(days)
}

/// "about 9 days", "about 5 hours", "less than an hour".
pub fn days_text(days: f64) -> String {
    if days < 1.0 / 24.0 {
        "less than an hour".into()
    } else if days < 1.5 {
        let h = (days * 24.0).round() as i64;
        format!("about {h} hour{}", if h == 1 { "" } else { "s" })
    } else {
        format!("about {} days", days.round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

    /// 14 days of hourly points ending now (x = 0), y = y0 + slope·x.
    fn hourly(slope_per_day: f64, y_now: f64, noise: impl Fn(usize) -> f64) -> Sums {
        Sums::of((0..14 * 24).map(|i| {
            let x = -(i as f64) / 24.0;
            (x, y_now + slope_per_day * x + noise(i))
        }))
    }

    #[test]
    fn recovers_a_known_slope_exactly() {
        // 2 GiB a day, 60 GiB used now of 100 GiB: full in 20 days.
        let s = hourly(2.0 * GIB, 60.0 * GIB, |_| 0.0);
        let f = fit(&s).unwrap();
        assert!((f.slope - 2.0 * GIB).abs() < 1e-3 * GIB / 1e3, "{f:?}");
        assert!((f.intercept - 60.0 * GIB).abs() < 1.0, "{f:?}");
        assert!((f.r2 - 1.0).abs() < 1e-9, "{f:?}");
        let days = days_to_full(60.0 * GIB, 100.0 * GIB, f.slope).unwrap();
        assert!((days - 20.0).abs() < 1e-6, "{days}");
        assert_eq!(days_text(days), "about 20 days");
    }

    #[test]
    fn small_slopes_on_large_values_are_exact_too() {
        // 1 MiB a day on 900 GiB.
        let s = hourly(1024.0 * 1024.0, 900.0 * GIB, |_| 0.0);
        let f = fit(&s).unwrap();
        assert!((f.slope / (1024.0 * 1024.0) - 1.0).abs() < 1e-3, "{f:?}");
    }

    #[test]
    fn a_flat_series_never_fills() {
        let f = fit(&hourly(0.0, 50.0 * GIB, |_| 0.0)).unwrap();
        assert_eq!(f.slope, 0.0);
        assert_eq!(f.r2, 1.0);
        assert_eq!(days_to_full(50.0 * GIB, 100.0 * GIB, f.slope), None);
    }

    #[test]
    fn a_shrinking_series_never_fills() {
        let f = fit(&hourly(-3.0 * GIB, 50.0 * GIB, |_| 0.0)).unwrap();
        assert!((f.slope + 3.0 * GIB).abs() < 1.0, "{f:?}");
        assert_eq!(days_to_full(50.0 * GIB, 100.0 * GIB, f.slope), None);
    }

    #[test]
    fn noise_keeps_the_slope_close_and_lowers_r2() {
        // ±0.5 GiB of deterministic pseudo-noise around 1 GiB a day.
        let noise = |i: usize| {
            let v = ((i as u64).wrapping_mul(2_654_435_761) % 1000) as f64 / 1000.0;
            (v - 0.5) * GIB
        };
        let f = fit(&hourly(GIB, 10.0 * GIB, noise)).unwrap();
        assert!((f.slope / GIB - 1.0).abs() < 0.05, "{}", f.slope / GIB);
        assert!(f.r2 > 0.9 && f.r2 < 1.0, "{f:?}");
        // Noise alone (no trend): the slope is small, the fit poor.
        let f = fit(&hourly(0.0, 10.0 * GIB, noise)).unwrap();
        assert!(f.slope.abs() < 0.05 * GIB, "{}", f.slope / GIB);
        assert!(f.r2 < 0.1, "{f:?}");
    }

    #[test]
    fn too_few_or_degenerate_points() {
        assert_eq!(fit(&Sums::default()), None);
        assert_eq!(fit(&Sums::of([(0.0, 1.0)])), None);
        // One x only: no line.
        assert_eq!(fit(&Sums::of([(1.0, 1.0), (1.0, 5.0)])), None);
    }

    #[test]
    fn full_already_and_horizon() {
        assert_eq!(days_to_full(101.0, 100.0, 1.0), Some(0.0));
        assert_eq!(days_to_full(0.0, 100.0, 0.01), None);
        assert_eq!(days_to_full(0.0, 0.0, 1.0), None);
        assert_eq!(days_text(0.5), "about 12 hours");
        assert_eq!(days_text(0.01), "less than an hour");
        assert_eq!(days_text(9.4), "about 9 days");
    }
}
