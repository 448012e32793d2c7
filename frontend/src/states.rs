//! How inventory states look: every state is a pill with a colour, an icon
//! and a word (never colour alone), the same in tables and in the graph.

use leptos::prelude::*;
use opsdeck_wire::{ActionOutcome, ChangeKind, EngineState, RunState, Tier};

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

/// A state that needs attention (not running, and mapped to containers).
pub fn is_problem(s: RunState) -> bool {
    !matches!(s, RunState::Running | RunState::Unmapped)
}

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
