//! Incidents. The list (`/incidents`, [`list`]): open incidents by
//! default, filtered by status, severity and text, live through the
//! incidents stream; operators declare an incident there. The incident page
//! (`/incidents/:id`, [`page`]): header with the actions the status allows,
//! SLA timers and escalation counting live, the timeline (live through its
//! stream), notes and log excerpts, linked runs, notifications. The
//! post-mortem editor (`/incidents/:id/postmortem`, [`postmortem`]) and the
//! incident reports (`/reports/incidents`, [`report`]).
//!
//! Shared here: how severities and statuses look, SLA timers and the page
//! stream helper (durations and the one-second clock are in `time.rs`).

mod list;
mod page;
mod postmortem;
mod report;

use std::rc::Rc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use leptos::prelude::*;
use opsdeck_wire::{Incident, IncidentStatus, Severity, SlaTimer};

use crate::live::{Stream, StreamEvent};
use crate::time::{clock, human_secs};

pub use list::Incidents;
pub use page::IncidentPage;
pub use postmortem::PostmortemPage;
pub use report::IncidentReports;

/// Pill kind and icon of a severity (P1 red … P4 grey).
pub fn severity_look(s: Severity) -> (&'static str, &'static str) {
    match s {
        Severity::P1 => ("outage", "◆"),
        Severity::P2 => ("impacted", "▲"),
        Severity::P3 => ("degraded", "●"),
        Severity::P4 => ("unknown", "○"),
    }
}

/// A severity as a pill (`P1`, or `P1 · Complete outage` when `long`);
/// carries `data-severity`.
#[component]
pub fn SeverityPill(
    severity: Severity,
    #[prop(optional)] long: bool,
    #[prop(optional, into)] testid: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon) = severity_look(severity);
    let word = if long {
        format!("{} · {}", severity.as_str(), severity.meaning())
    } else {
        severity.as_str().to_string()
    };
    view! {
        <span class=format!("pill pill-{kind}") data-testid=move || testid.get()
            data-severity=severity.as_str() title=format!("{}: {}", severity.as_str(), severity.meaning())>
            <span aria-hidden="true">{icon}</span>" "{word}
        </span>
    }
}

/// Pill kind and icon of an incident status.
pub fn status_look(s: IncidentStatus) -> (&'static str, &'static str) {
    match s {
        IncidentStatus::Triggered => ("outage", "⚠"),
        IncidentStatus::Acknowledged => ("degraded", "◉"),
        IncidentStatus::Mitigated => ("maintenance", "◐"),
        IncidentStatus::Resolved => ("ok", "✓"),
        IncidentStatus::PostmortemDone => ("unknown", "▤"),
    }
}

fn status_help(s: IncidentStatus) -> &'static str {
    match s {
        IncidentStatus::Triggered => "Nobody has acknowledged it yet: escalation is running.",
        IncidentStatus::Acknowledged => "Somebody is on it; escalation stopped.",
        IncidentStatus::Mitigated => "The impact is contained; the cause may remain.",
        IncidentStatus::Resolved => "Over; the post-mortem is still to be written.",
        IncidentStatus::PostmortemDone => "Over and written up.",
    }
}

/// An incident status as a pill; carries `data-status` (the wire word).
#[component]
pub fn IncidentStatusPill(
    status: IncidentStatus,
    #[prop(optional, into)] testid: MaybeProp<String>,
) -> impl IntoView {
    let (kind, icon) = status_look(status);
    view! {
        <span class=format!("pill pill-{kind}") data-testid=move || testid.get()
            data-status=status.as_str() title=status_help(status)>
            <span aria-hidden="true">{icon}</span>" "{status.label()}
        </span>
    }
}

/// The SLA milestone's name as people say it.
pub fn milestone_label(m: &str) -> &'static str {
    match m {
        "ack" => "Acknowledge",
        "diagnose" => "Diagnose",
        "mitigate" => "Mitigate",
        "resolve" => "Resolve",
        "postmortem" => "Post-mortem",
        _ => "Milestone",
    }
}

/// Whether a milestone's timer still counts for an incident in `status`
/// (the post-mortem's keeps counting once resolved).
fn timer_running(milestone: &str, status: IncidentStatus) -> bool {
    status.is_open() || (milestone == "postmortem" && status == IncidentStatus::Resolved)
}

/// How an SLA timer reads now.
pub struct SlaLook {
    /// `met`, `late`, `due`, `soon`, `breached` or `skipped`.
    pub state: &'static str,
    /// Pill kind.
    pub kind: &'static str,
    pub icon: &'static str,
    pub text: String,
}

pub fn sla_look(t: &SlaTimer, inc: &Incident, now: DateTime<Utc>) -> SlaLook {
    let secs = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_seconds();
    match t.met_at {
        Some(met) if t.breached || met > t.due_at => SlaLook {
            state: "late",
            kind: "outage",
            icon: "✕",
            text: format!(
                "met in {}, {} late",
                clock(secs(inc.triggered_at, met)),
                human_secs(secs(t.due_at, met))
            ),
        },
        Some(met) => SlaLook {
            state: "met",
            kind: "ok",
            icon: "✓",
            text: format!("met in {}", clock(secs(inc.triggered_at, met))),
        },
        None if !timer_running(&t.milestone, inc.status) => {
            if t.breached {
                SlaLook {
                    state: "breached",
                    kind: "outage",
                    icon: "✕",
                    text: "BREACHED (not reached)".into(),
                }
            } else {
                SlaLook {
                    state: "skipped",
                    kind: "unknown",
                    icon: "–",
                    text: "not reached".into(),
                }
            }
        }
        None if t.breached || now >= t.due_at => SlaLook {
            state: "breached",
            kind: "outage",
            icon: "✕",
            text: if now > t.due_at {
                format!("BREACHED by {}", human_secs(secs(t.due_at, now)))
            } else {
                "BREACHED".into()
            },
        },
        None => {
            let left = secs(now, t.due_at);
            let soon = left <= 300 || left * 4 <= t.target_secs;
            SlaLook {
                state: if soon { "soon" } else { "due" },
                kind: if soon { "degraded" } else { "unknown" },
                icon: "◷",
                text: format!("due in {}", clock(left)),
            }
        }
    }
}

/// The list's SLA badge: breached, else the next timer due, else met.
pub fn sla_badge(inc: &Incident, now: DateTime<Utc>) -> Option<SlaLook> {
    let looks: Vec<(&SlaTimer, SlaLook)> =
        inc.sla.iter().map(|t| (t, sla_look(t, inc, now))).collect();
    let breached: Vec<&str> = looks
        .iter()
        .filter(|(_, l)| matches!(l.state, "breached" | "late"))
        .map(|(t, _)| milestone_label(&t.milestone))
        .collect();
    if !breached.is_empty() {
        return Some(SlaLook {
            state: "breached",
            kind: "outage",
            icon: "✕",
            text: format!("SLA breached: {}", breached.join(", ").to_lowercase()),
        });
    }
    let next = looks
        .into_iter()
        .filter(|(_, l)| matches!(l.state, "due" | "soon"))
        .min_by_key(|(t, _)| t.due_at);
    if let Some((t, l)) = next {
        return Some(SlaLook {
            text: format!(
                "{} {}",
                milestone_label(&t.milestone).to_lowercase(),
                l.text
            ),
            ..l
        });
    }
    (!inc.sla.is_empty()).then(|| SlaLook {
        state: "met",
        kind: "ok",
        icon: "✓",
        text: "SLA met".into(),
    })
}

/// Follows the page stream `url` while the component lives (the tab's one
/// page stream, see `live.rs`): `on_data` gets the data of each `event`;
/// `resync` is called on every (re)open and when the server says `resync`
/// (changes may have been missed: fetch again). When the browser gives up on
/// the connection it is reopened after 5 s, 10 s, … up to a minute, as the
/// run page does. Returns whether the stream is connected.
pub fn follow_page(
    url: String,
    event: &'static str,
    on_data: impl Fn(String) + 'static,
    resync: impl Fn() + 'static,
) -> RwSignal<bool> {
    let connected = RwSignal::new(false);
    let owner = Owner::current();
    let stream = StoredValue::new_local(None::<Stream>);
    let retry = RwSignal::new(0u32);
    let attempts = StoredValue::new(0u32);
    let on_data: Rc<dyn Fn(String)> = Rc::new(on_data);
    let resync: Rc<dyn Fn()> = Rc::new(resync);
    let open = move || {
        let on_data = on_data.clone();
        let resync = resync.clone();
        let handler = move |e: StreamEvent| match e {
            StreamEvent::Message { event: name, data } if name == event => on_data(data),
            StreamEvent::Message { event: name, .. } if name == "resync" => resync(),
            StreamEvent::Message { .. } => {}
            StreamEvent::Open => {
                attempts.try_set_value(0);
                connected.try_set(true);
                resync();
            }
            StreamEvent::Broken => {
                connected.try_set(false);
                let gave_up = stream
                    .try_with_value(|s| s.as_ref().is_none_or(Stream::is_closed))
                    .unwrap_or(false);
                if gave_up {
                    if let Some(Some(s)) = stream.try_update_value(|s| s.take()) {
                        s.close();
                    }
                    resync();
                    let n = attempts.try_get_value().unwrap_or(0);
                    attempts.try_set_value(n + 1);
                    set_timeout(
                        move || {
                            retry.try_update(|r| *r = r.wrapping_add(1));
                        },
                        Duration::from_secs((5u64 << n.min(4)).min(60)),
                    );
                }
            }
        };
        let s = match &owner {
            Some(o) => o.with(|| Stream::open(&url, &[event, "resync"], handler)),
            None => Stream::open(&url, &[event, "resync"], handler),
        };
        stream.set_value(s);
    };
    Effect::new(move |_| {
        retry.track();
        if stream.with_value(|s| s.as_ref().is_none_or(Stream::is_closed)) {
            open();
        }
    });
    connected
}

/// "live" or "reconnecting…" next to a page title.
#[component]
pub fn LiveState(connected: RwSignal<bool>) -> impl IntoView {
    view! {
        <span class="live-state muted" data-testid="live-state" data-connected=move || connected.get().to_string()>
            {move || if connected.get() {
                view! { <span class="live-dot" aria-hidden="true"></span>"live" }.into_any()
            } else {
                view! { <span aria-hidden="true">"○"</span>"connecting…" }.into_any()
            }}
        </span>
    }
}
