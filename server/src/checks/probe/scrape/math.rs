//! PromQL's arithmetic for counters and histograms, so a scrape check says
//! what Prometheus would: `rate()` with its extrapolation to the window's
//! edges and counter-reset handling, and `histogram_quantile()` with its
//! linear interpolation inside a bucket (Prometheus 2.x `extrapolatedRate`
//! and `bucketQuantile`; the e2e test compares both with a real server).

/// `rate(series[range])` at `end` from `(seconds, value)` points inside
/// `(end - range, end]`, oldest first; `None` with fewer than two points.
pub fn rate(points: &[(f64, f64)], end: f64, range: f64) -> Option<f64> {
    let (first, last) = match points {
        [first, .., last] => (*first, *last),
        _ => return None,
    };
    let mut increase = last.1 - first.1;
    let mut prev = 0.0;
    for &(_, v) in points {
        if v < prev {
            // A counter reset: the counter restarted from zero.
            increase += prev;
        }
        prev = v;
    }
    let start = end - range;
    let mut to_start = first.0 - start;
    let to_end = end - last.0;
    let sampled = last.0 - first.0;
    if sampled <= 0.0 {
        return None;
    }
    let average = sampled / (points.len() - 1) as f64;
    if increase > 0.0 && first.1 >= 0.0 {
        // Never extrapolate a counter below zero.
        let to_zero = sampled * (first.1 / increase);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average / 2.0
    };
    Some(increase * (interval / sampled) / range)
}

/// `histogram_quantile(q, …)` over `(upper bound, cumulative count)`
/// buckets of one histogram (any order). NaN without a `+Inf` bucket or
/// without observations, as in PromQL.
pub fn quantile(q: f64, buckets: &[(f64, f64)]) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    let mut b: Vec<(f64, f64)> = buckets.to_vec();
    b.sort_by(|x, y| x.0.total_cmp(&y.0));
    // Buckets with the same bound (e.g. `1` and `1.0`) add up.
    b.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 += next.1;
            true
        } else {
            false
        }
    });
    match b.last() {
        Some(&(upper, _)) if upper == f64::INFINITY => {}
        _ => return f64::NAN,
    }
    // Rates of cumulative buckets can be off by a little: never decreasing.
    let mut max = f64::NEG_INFINITY;
    for x in b.iter_mut() {
        if x.1 < max {
            x.1 = max;
        }
        max = x.1;
    }
    if b.len() < 2 {
        return f64::NAN;
    }
    let observations = b[b.len() - 1].1;
    if observations == 0.0 || observations.is_nan() {
        return f64::NAN;
    }
    let mut rank = q * observations;
    let i = b[..b.len() - 1]
        .iter()
        .position(|x| x.1 >= rank)
        .unwrap_or(b.len() - 1);
    if i == b.len() - 1 {
        return b[b.len() - 2].0;
    }
    if i == 0 && b[0].0 <= 0.0 {
        return b[0].0;
    }
    let end = b[i].0;
    let mut count = b[i].1;
    let mut start = 0.0;
    if i > 0 {
        start = b[i - 1].0;
        count -= b[i - 1].1;
        rank -= b[i - 1].1;
    }
    start + (end - start) * (rank / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    #[test]
    fn a_steady_counter_rates_exactly() {
        // 2/s, scraped every 10 s, points at 1..=291 in a 300 s window
        // ending at 300: extrapolated to the window's edges.
        let pts: Vec<(f64, f64)> = (0..30)
            .map(|i| (1.0 + 10.0 * i as f64, 1000.0 + 20.0 * i as f64))
            .collect();
        let r = rate(&pts, 300.0, 300.0).unwrap();
        assert!(close(r, 2.0), "{r}");
    }

    #[test]
    fn resets_and_zero_point_and_sparse_edges() {
        // A restart between 20 s and 30 s: 10 → 2 counts 2 more, not -8.
        let pts = [(0.0, 0.0), (10.0, 5.0), (20.0, 10.0), (30.0, 2.0)];
        let r = rate(&pts, 30.0, 30.0).unwrap();
        assert!(close(r, 12.0 / 30.0), "{r}");
        // A young counter is not extrapolated below zero: first value 1
        // at 50 s with 1/s: the zero point (49 s) bounds the start.
        let pts = [(50.0, 1.0), (60.0, 11.0)];
        let r = rate(&pts, 60.0, 60.0).unwrap();
        assert!(close(r, 11.0 / 60.0), "{r}");
        // First point far from the window's start: half an interval only.
        let pts = [(40.0, 100.0), (50.0, 110.0), (60.0, 120.0)];
        let r = rate(&pts, 60.0, 60.0).unwrap();
        assert!(close(r, 20.0 * (25.0 / 20.0) / 60.0), "{r}");
        assert_eq!(rate(&[(1.0, 1.0)], 10.0, 10.0), None);
        assert_eq!(rate(&[], 10.0, 10.0), None);
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let b = [
            (0.1, 10.0),
            (0.25, 60.0),
            (0.5, 90.0),
            (1.0, 100.0),
            (f64::INFINITY, 100.0),
        ];
        // rank 95 → in (0.5, 1.0]: 0.5 + 0.5 * (5 / 10).
        assert!(close(quantile(0.95, &b), 0.75));
        // rank 50 → in (0.1, 0.25]: 0.1 + 0.15 * (40 / 50).
        assert!(close(quantile(0.5, &b), 0.22));
        // rank 5 in the first bucket: from 0.
        assert!(close(quantile(0.05, &b), 0.05));
        // Observations past the last finite bound: that bound.
        let tail = [(0.1, 1.0), (f64::INFINITY, 10.0)];
        assert_eq!(quantile(0.99, &tail), 0.1);
        assert!(quantile(0.9, &[(0.1, 1.0)]).is_nan());
        assert!(quantile(0.9, &[(0.1, 0.0), (f64::INFINITY, 0.0)]).is_nan());
        assert_eq!(quantile(1.5, &b), f64::INFINITY);
        // Order does not matter; a dip from rounding is smoothed.
        let unordered = [
            (f64::INFINITY, 100.0),
            (0.5, 90.0),
            (0.25, 60.0),
            (1.0, 99.9999),
            (0.1, 10.0),
        ];
        assert!((quantile(0.5, &unordered) - 0.22).abs() < 1e-3);
    }
}
