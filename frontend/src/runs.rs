//! Runs of runbooks. The history (`/runs`): every run with its state,
//! target, who started it and why, progress; filtered by state and
//! runbook, refreshed every few seconds while a run is active. The run page
//! (`/runs/:id`): header with the actions its state allows (cancel, resume,
//! re-run, close), pending approvals, the steps with their live output
//! (manual steps are ticked off here), and the timeline. Live through
//! the run's stream ([`crate::api::runs::events_url`]) while the run is active.
//!
//! The run and step pills ([`RunStatusPill`], [`StepStatusPill`]) and
//! [`ParamChips`] are shared with the runbook, approval and schedule pages.

mod history;
mod page;
pub use history::*;
pub use page::*;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map, use_query_map};
use leptos_router::NavigateOptions;
use opsdeck_wire::{
    ApprovalStatus, CloseRun, CompleteStep, Role, Run, RunStatus, RunSummary, RunUpdate,
    StepAction, StepStatus,
};
use serde_json::Value;

use crate::api::{self, enc, ApiError};
use crate::approvals::ApprovalPanel;
use crate::live::{use_interval, Stream, StreamEvent};
use crate::session::current_role;
use crate::time::{duration_ms, now_utc, RelTime};
use crate::ui::{Confirm, EmptyState, ErrorState, Loading};

/// Every run state, in the order the filter lists them.
pub const ALL_RUN_STATUSES: [RunStatus; 7] = [
    RunStatus::Queued,
    RunStatus::Running,
    RunStatus::Waiting,
    RunStatus::Succeeded,
    RunStatus::Failed,
    RunStatus::Cancelled,
    RunStatus::Interrupted,
];

/// Pill kind and icon of a run state.
pub fn run_status_look(s: RunStatus) -> (&'static str, &'static str) {
    match s {
        RunStatus::Queued => ("unknown", "…"),
        RunStatus::Running => ("maintenance", "▶"),
        RunStatus::Waiting => ("degraded", "‖"),
        RunStatus::Succeeded => ("ok", "✓"),
        RunStatus::Failed => ("outage", "✕"),
        RunStatus::Cancelled => ("unknown", "■"),
        RunStatus::Interrupted => ("degraded", "!"),
    }
}

fn run_status_help(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Queued => "Waiting for a worker to pick it up.",
        RunStatus::Running => "A step is running.",
        RunStatus::Waiting => "Parked on an approval or a manual step.",
        RunStatus::Succeeded => "Every step finished.",
        RunStatus::Failed => "A step failed.",
        RunStatus::Cancelled => "Cancelled by an operator (or a denied approval).",
        RunStatus::Interrupted => "The server running it stopped: resume it or close it.",
    }
}

/// A run's state as a pill; carries `data-status` (the state's word).
#[component]
pub fn RunStatusPill(
    status: RunStatus,
    #[prop(optional, into)] testid: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon) = run_status_look(status);
    view! {
        <span class=format!("pill pill-{kind}") data-testid=move || testid.get()
            data-status=status.as_str() title=run_status_help(status)>
            <span aria-hidden="true">{icon}</span>" "{status.as_str()}
        </span>
    }
}

/// Pill kind and icon of a step state.
pub fn step_status_look(s: StepStatus) -> (&'static str, &'static str) {
    match s {
        StepStatus::Pending => ("unknown", "○"),
        StepStatus::Running => ("maintenance", "▶"),
        StepStatus::Waiting => ("degraded", "‖"),
        StepStatus::Succeeded => ("ok", "✓"),
        StepStatus::Failed => ("outage", "✕"),
        StepStatus::Skipped => ("unknown", "↷"),
        StepStatus::Cancelled => ("unknown", "■"),
        StepStatus::Interrupted => ("degraded", "!"),
    }
}

#[component]
pub fn StepStatusPill(status: StepStatus) -> impl IntoView {
    let (kind, icon) = step_status_look(status);
    view! {
        <span class=format!("pill pill-{kind}") data-status=status.as_str()>
            <span aria-hidden="true">{icon}</span>" "{status.as_str()}
        </span>
    }
}

/// How long from `start` to `end` (or to `now` while it lasts).
pub fn elapsed(
    start: Option<DateTime<Utc>>,
    end: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<String> {
    let start = start?;
    let end = end.unwrap_or(now);
    Some(duration_ms((end - start).num_milliseconds()))
}

/// A parameter value as people read it (strings without quotes).
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "—".into(),
        other => other.to_string(),
    }
}

/// A run's target; `*` (the whole runbook) reads as a dash.
pub fn target_text(t: &str) -> String {
    if t.is_empty() || t == "*" {
        "—".into()
    } else {
        t.to_string()
    }
}

/// Parameters as `name value` chips.
#[component]
pub fn ParamChips(params: BTreeMap<String, Value>) -> impl IntoView {
    if params.is_empty() {
        return view! { <span class="muted">"none"</span> }.into_any();
    }
    view! {
        <ul class="chips param-chips">
            {params.into_iter().map(|(k, v)| view! {
                <li><span class="muted">{k}</span>" "<code class="wrap-anywhere">{value_text(&v)}</code></li>
            }).collect_view()}
        </ul>
    }
    .into_any()
}

/// `done/total` with a progress bar.
#[component]
pub fn Progress(done: i32, total: i32) -> impl IntoView {
    let total = total.max(0);
    let done = done.clamp(0, total.max(0));
    view! {
        <span class="progress-cell" title=format!("{done} of {total} steps done")>
            <progress max=total.max(1).to_string() value=done.to_string()></progress>
            <span class="small muted">{format!("{done}/{total}")}</span>
        </span>
    }
}
