//! Incidents: the list (live), the incident page (SLA timers, timeline,
//! actions), the post-mortem editor and the incident reports.

use leptos::prelude::*;

#[component]
pub fn Incidents() -> impl IntoView {
    view! { <div class="page"><h1>"Incidents"</h1></div> }
}

#[component]
pub fn IncidentPage() -> impl IntoView {
    view! { <div class="page"><h1>"Incident"</h1></div> }
}

#[component]
pub fn PostmortemPage() -> impl IntoView {
    view! { <div class="page"><h1>"Post-mortem"</h1></div> }
}

#[component]
pub fn IncidentReports() -> impl IntoView {
    view! { <div class="page"><h1>"Incident reports"</h1></div> }
}
