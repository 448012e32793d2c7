//! Small SVG time charts shared by the check history (latency) and the
//! resource history (CPU, memory, network, disk): the time axis of a range
//! (`day`, `week`, `month`, ending now), round y maxima, and
//! [`line_chart`], one or more lines over the range, broken where buckets
//! are missing.

use leptos::prelude::*;

/// The chart's drawing size (the SVG stretches to its box).
pub const W: f64 = 720.0;
pub const H: f64 = 160.0;

/// Length of a range in milliseconds.
pub fn span_ms(range: &str) -> f64 {
    match range {
        "week" => 7.0 * 86_400_000.0,
        "month" => 30.0 * 86_400_000.0,
        _ => 86_400_000.0,
    }
}

/// "24 hours", "7 days", "30 days".
pub fn range_text(range: &str) -> &'static str {
    match range {
        "week" => "7 days",
        "month" => "30 days",
        _ => "24 hours",
    }
}

/// A round number at or above `v` (1, 2 or 5 times a power of ten).
pub fn nice_ceil(v: f64) -> f64 {
    if v <= 0.0 || !v.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v {
            return m * p;
        }
    }
    10.0 * p
}

/// A time-axis label: the clock for a day, the date otherwise.
pub fn time_label(ms: f64, range: &str) -> String {
    let Some(t) = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms as i64) else {
        return String::new();
    };
    match range {
        "day" => t.format("%H:%M UTC").to_string(),
        _ => t.format("%b %d").to_string(),
    }
}

/// Horizontal grid lines at a quarter, half and three quarters.
pub fn grid() -> AnyView {
    [0.25, 0.5, 0.75]
        .into_iter()
        .map(|g| {
            let gy = H - g * H;
            view! { <line class="chart-grid" x1="0" x2=format!("{W}") y1=format!("{gy:.1}") y2=format!("{gy:.1}")/> }
        })
        .collect_view()
        .into_any()
}

/// The frame around a plot: y labels (max, half, 0), the SVG with
/// `content`, and the time axis of `range`.
pub fn frame(
    testid: &'static str,
    label: String,
    range: &str,
    ymax: String,
    yhalf: String,
    content: AnyView,
) -> AnyView {
    let span = span_ms(range);
    let start = js_sys::Date::now() - span;
    let title = label.clone();
    view! {
        <div class="chart-wrap">
            <div class="chart-y muted small" aria-hidden="true">
                <span>{ymax}</span>
                <span>{yhalf}</span>
                <span>"0"</span>
            </div>
            <div class="chart-plot">
                <svg class="chart" data-testid=testid viewBox=format!("0 0 {W} {H}") preserveAspectRatio="none"
                    role="img" aria-label=label>
                    <title>{title}</title>
                    {grid()}
                    {content}
                </svg>
                <div class="chart-x muted small" aria-hidden="true">
                    <span>{time_label(start, range)}</span>
                    <span>{time_label(start + span / 2.0, range)}</span>
                    <span>"now"</span>
                </div>
            </div>
        </div>
    }
    .into_any()
}

/// One line of a [`line_chart`]: (bucket start in ms, value) points.
pub struct Line {
    pub name: String,
    /// `chart-line`, `chart-line-2`, `chart-line-3`.
    pub class: &'static str,
    pub points: Vec<(f64, Option<f64>)>,
}

/// Lines over `range` (ending now). A bucket of `bucket_ms` without a
/// value, or a gap of more than one and a half buckets, breaks a line.
/// `fmt` writes the y labels; the y axis starts at 0 and ends at a round
/// value above the highest point, or at `floor_max` if that is higher.
pub fn line_chart(
    testid: &'static str,
    title: &str,
    range: &str,
    bucket_ms: f64,
    lines: Vec<Line>,
    floor_max: f64,
    fmt: fn(f64) -> String,
) -> AnyView {
    let end = js_sys::Date::now();
    let span = span_ms(range);
    let start = end - span;
    let highest = lines
        .iter()
        .flat_map(|l| l.points.iter().filter_map(|p| p.1))
        .fold(0.0_f64, f64::max);
    let ymax = nice_ceil((highest * 1.1).max(floor_max));
    let x = |t: f64| ((t - start) / span * W).clamp(0.0, W);
    let y = |v: f64| H - (v / ymax).clamp(0.0, 1.0) * H;
    let mut shapes = Vec::new();
    for l in &lines {
        let mut pts = l.points.clone();
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        let mut last: Option<f64> = None;
        for (t, v) in pts {
            let gap = last.is_some_and(|l| t - l > bucket_ms * 1.5);
            if gap || v.is_none() {
                runs.push(Vec::new());
            }
            if let Some(v) = v {
                if let Some(run) = runs.last_mut() {
                    run.push((x(t + bucket_ms / 2.0), y(v)));
                }
            }
            last = Some(t);
        }
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let class = l.class;
            if run.len() == 1 {
                let (cx, cy) = run[0];
                shapes.push(view! { <circle class=format!("{class} chart-dot") cx=format!("{cx:.2}") cy=format!("{cy:.2}") r="2"/> }.into_any());
            } else {
                let d = run
                    .iter()
                    .enumerate()
                    .map(|(i, (px, py))| {
                        format!("{}{px:.2},{py:.2}", if i == 0 { "M" } else { "L" })
                    })
                    .collect::<Vec<_>>()
                    .join(" ");
                shapes.push(view! { <path class=class d=d/> }.into_any());
            }
        }
    }
    let label = format!(
        "{title} over the last {}: highest {}",
        range_text(range),
        fmt(highest)
    );
    let legend = lines
        .iter()
        .map(|l| {
            let swatch = format!("swatch swatch-line {}", l.class);
            view! { <span class="legend-item"><span class=swatch aria-hidden="true"></span>{l.name.clone()}</span> }
        })
        .collect_view();
    view! {
        {frame(testid, label, range, fmt(ymax), fmt(ymax / 2.0), shapes.collect_view().into_any())}
        <div class="legend small">{legend}</div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ceilings() {
        assert_eq!(nice_ceil(0.0), 1.0);
        assert_eq!(nice_ceil(7.0), 10.0);
        assert_eq!(nice_ceil(120.0), 200.0);
        assert_eq!(nice_ceil(0.3), 0.5);
    }
}
