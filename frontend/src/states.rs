//! How inventory and health states look: every state is a pill with a
//! colour, an icon and a word (never colour alone), the same in tables, on
//! the dashboard and in the graph. Also uptime text and latency sparklines.

use leptos::prelude::*;
use opsdeck_wire::{
    ActionOutcome, ChangeKind, CheckStatus, EngineState, Overall, RunState, ServiceHealth, Tier,
};

use crate::time::duration_ms;
use crate::ui::Pill;

/// Pill kind (`ok`, `degraded`, `outage`, `maintenance`, `unknown`), icon and word.
pub fn run_state(s: RunState) -> (&'static str, &'static str, &'static str) {
    match s {
        RunState::Running => ("ok", "✓", "running"),
        RunState::Degraded => ("degraded", "▲", "degraded"),
        RunState::Restarting => ("degraded", "↻", "restarting"),
        RunState::Paused => ("maintenance", "‖", "paused"),
        RunState::Stopped => ("outage", "■", "stopped"),
        RunState::Missing => ("outage", "✕", "missing"),
        RunState::Unknown => ("unknown", "?", "unknown"),
        RunState::Unmapped => ("unknown", "○", "unmapped"),
    }
}

/// What each state means, for tooltips and the legend.
pub fn run_state_help(s: RunState) -> &'static str {
    match s {
        RunState::Running => "All containers run (and are healthy where they have a health check).",
        RunState::Degraded => {
            "Some containers run, some don't, or a health check reports unhealthy."
        }
        RunState::Restarting => "A container is restarting (a restart loop shows here).",
        RunState::Paused => "The containers are paused.",
        RunState::Stopped => "The containers exist but none runs.",
        RunState::Missing => "No container matches the service's mapping.",
        RunState::Unknown => "The engine is unreachable: the last known state is stale.",
        RunState::Unmapped => "No container mapping: kept for the graph and the docs.",
    }
}

pub const ALL_RUN_STATES: [RunState; 8] = [
    RunState::Running,
    RunState::Degraded,
    RunState::Restarting,
    RunState::Paused,
    RunState::Stopped,
    RunState::Missing,
    RunState::Unknown,
    RunState::Unmapped,
];

#[component]
pub fn RunStatePill(
    state: RunState,
    #[prop(optional, into)] testid: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon, word) = run_state(state);
    view! { <Pill kind icon word testid=testid title=run_state_help(state).to_string()/> }
}

#[component]
pub fn EngineStatePill(
    state: EngineState,
    #[prop(optional, into)] testid: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon, word) = match state {
        EngineState::Connected => ("ok", "✓", "connected"),
        EngineState::Connecting => ("unknown", "…", "connecting"),
        EngineState::Unreachable => ("outage", "✕", "unreachable"),
    };
    view! { <Pill kind icon word testid=testid/> }
}

#[component]
pub fn OutcomePill(outcome: ActionOutcome) -> impl IntoView {
    let (kind, icon, word) = match outcome {
        ActionOutcome::Running => ("maintenance", "…", "running"),
        ActionOutcome::Succeeded => ("ok", "✓", "succeeded"),
        ActionOutcome::Failed => ("outage", "✕", "failed"),
        ActionOutcome::Interrupted => ("degraded", "!", "interrupted"),
    };
    view! { <Pill kind icon word/> }
}

#[component]
pub fn ChangePill(kind: ChangeKind, #[prop(default = false)] applied: bool) -> impl IntoView {
    let (k, icon, word) = match (kind, applied) {
        (ChangeKind::Add, false) => ("ok", "+", "add"),
        (ChangeKind::Add, true) => ("ok", "+", "added"),
        (ChangeKind::Update, false) => ("degraded", "~", "update"),
        (ChangeKind::Update, true) => ("degraded", "~", "updated"),
        (ChangeKind::Remove, false) => ("outage", "−", "remove"),
        (ChangeKind::Remove, true) => ("outage", "−", "removed"),
        (ChangeKind::Unchanged, _) => ("unknown", "=", "unchanged"),
    };
    view! { <Pill kind=k icon word=word/> }
}

pub fn tier_label(t: Tier) -> &'static str {
    match t {
        Tier::Critical => "Critical",
        Tier::Application => "Application",
        Tier::Support => "Support",
    }
}

pub fn tier_from(s: &str) -> Tier {
    match s {
        "critical" => Tier::Critical,
        "support" => Tier::Support,
        _ => Tier::Application,
    }
}

#[component]
pub fn TierBadge(tier: Tier) -> impl IntoView {
    view! {
        <span class=format!("tier-badge tier-{}", tier.as_str()) title="Tier">
            {(tier == Tier::Critical).then_some("◆ ")}{tier.as_str()}
        </span>
    }
}

/// Pill kind, icon and word of a service's health on the status board.
pub fn health_pill(h: ServiceHealth) -> (&'static str, &'static str, &'static str) {
    match h {
        ServiceHealth::Operational => ("ok", "✓", "operational"),
        ServiceHealth::Degraded => ("degraded", "▲", "degraded"),
        ServiceHealth::Down => ("outage", "✕", "down"),
        ServiceHealth::Impacted => ("impacted", "↯", "impacted"),
        ServiceHealth::Maintenance => ("maintenance", "⚒", "maintenance"),
        ServiceHealth::Unknown => ("unknown", "?", "unknown"),
    }
}

pub fn health_help(h: ServiceHealth) -> &'static str {
    match h {
        ServiceHealth::Operational => "All checks pass.",
        ServiceHealth::Degraded => "A warning threshold is crossed.",
        ServiceHealth::Down => "A check fails and no dependency explains it: a root cause.",
        ServiceHealth::Impacted => {
            "A dependency is down: this service's own failures are symptoms of it."
        }
        ServiceHealth::Maintenance => "Under maintenance: failures are expected.",
        ServiceHealth::Unknown => "No checks, or none has settled yet.",
    }
}

/// Worst first: the order problems are listed in.
pub const ALL_HEALTH: [ServiceHealth; 6] = [
    ServiceHealth::Down,
    ServiceHealth::Impacted,
    ServiceHealth::Degraded,
    ServiceHealth::Unknown,
    ServiceHealth::Maintenance,
    ServiceHealth::Operational,
];

/// Position in [`ALL_HEALTH`] (0 = worst).
pub fn health_rank(h: ServiceHealth) -> usize {
    ALL_HEALTH.iter().position(|x| *x == h).unwrap_or(0)
}

/// A health that needs attention.
pub fn is_health_problem(h: ServiceHealth) -> bool {
    matches!(
        h,
        ServiceHealth::Down | ServiceHealth::Impacted | ServiceHealth::Degraded
    )
}

pub fn health_from(s: &str) -> Option<ServiceHealth> {
    ALL_HEALTH.iter().copied().find(|h| h.as_str() == s)
}

#[component]
pub fn HealthPill(
    health: ServiceHealth,
    #[prop(optional, into)] testid: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon, word) = health_pill(health);
    view! { <Pill kind icon word testid=testid title=health_help(health).to_string()/> }
}

/// Pill kind, icon and word of a check's state.
pub fn check_status(s: CheckStatus) -> (&'static str, &'static str, &'static str) {
    match s {
        CheckStatus::Ok => ("ok", "✓", "ok"),
        CheckStatus::Warning => ("degraded", "▲", "warning"),
        CheckStatus::Critical => ("outage", "✕", "critical"),
        CheckStatus::Unknown => ("unknown", "?", "unknown"),
    }
}

pub const ALL_CHECK_STATUSES: [CheckStatus; 4] = [
    CheckStatus::Critical,
    CheckStatus::Warning,
    CheckStatus::Unknown,
    CheckStatus::Ok,
];

#[component]
pub fn CheckStatusPill(
    status: CheckStatus,
    #[prop(optional, into)] testid: MaybeProp<String>,
    #[prop(optional, into)] title: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon, word) = check_status(status);
    view! { <Pill kind icon word testid=testid title=title/> }
}

/// Pill kind, icon and words (short, banner) of the board's overall state.
pub fn overall_state(o: Overall) -> (&'static str, &'static str, &'static str, &'static str) {
    match o {
        Overall::Operational => ("ok", "✓", "Operational", "All systems operational"),
        Overall::Degraded => ("degraded", "▲", "Degraded", "Degraded"),
        Overall::Outage => ("outage", "✕", "Outage", "Outage"),
        // Never "operational" when nothing says so: no settled check at all.
        Overall::Unmonitored => ("unknown", "?", "Not monitored", "Not monitored yet"),
    }
}

pub fn overall_str(o: Overall) -> &'static str {
    match o {
        Overall::Operational => "operational",
        Overall::Degraded => "degraded",
        Overall::Outage => "outage",
        Overall::Unmonitored => "unmonitored",
    }
}

/// "99.95 %", or a dash when nothing was measured.
pub fn uptime_text(v: Option<f64>) -> String {
    match v {
        None => "—".into(),
        Some(p) if p >= 100.0 => "100 %".into(),
        Some(p) if p >= 99.0 => format!("{:.2} %", (p * 100.0).floor() / 100.0),
        Some(p) => format!("{p:.1} %"),
    }
}

/// A latency sparkline (about 100×24 px): one polyline per run of measured
/// points, gaps where nothing was measured.
pub fn sparkline(points: &[Option<f64>]) -> AnyView {
    const W: f64 = 100.0;
    const H: f64 = 24.0;
    const PAD: f64 = 2.0;
    let values: Vec<f64> = points.iter().flatten().copied().collect();
    if values.is_empty() {
        return view! { <span class="spark-empty muted small" title="No latency measured in the last 30 minutes">"no data"</span> }
            .into_any();
    }
    let max = values.iter().copied().fold(0.0_f64, f64::max).max(1.0);
    let avg = values.iter().sum::<f64>() / values.len() as f64;
    let n = points.len();
    let x = |i: usize| {
        if n <= 1 {
            W / 2.0
        } else {
            i as f64 * W / (n - 1) as f64
        }
    };
    let y = |v: f64| H - PAD - (v / max) * (H - 2.0 * PAD);
    // One path for the whole line (one element per row, thousands of rows):
    // a move at each gap; a lone point is a dot (a zero-length segment with
    // round caps).
    let mut d = String::with_capacity(points.len() * 12);
    let mut pen_down = false;
    for (i, p) in points.iter().enumerate() {
        match p {
            Some(v) => {
                let cmd = if pen_down { 'L' } else { 'M' };
                d.push_str(&format!("{cmd}{:.1} {:.1}", x(i), y(*v)));
                let alone = !pen_down && points.get(i + 1).is_none_or(Option::is_none);
                if alone {
                    d.push_str("h0.01");
                }
                pen_down = true;
            }
            None => pen_down = false,
        }
    }
    let label = format!(
        "Latency, last {n} minutes: average {}, highest {}",
        duration_ms(avg.round() as i64),
        duration_ms(max.round() as i64)
    );
    view! {
        <svg class="spark" viewBox="0 0 100 24" width="100" height="24" role="img" aria-label=label>
            <path class="spark-line" d=d/>
        </svg>
    }
    .into_any()
}
