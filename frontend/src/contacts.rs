//! Contacts and on-call: who is on call now and next (everyone), people,
//! teams, rotations with overrides and escalation policies (admins).

use leptos::prelude::*;

#[component]
pub fn OnCallPage() -> impl IntoView {
    view! { <div class="page"><h1>"On-call"</h1></div> }
}

#[component]
pub fn ContactsAdmin() -> impl IntoView {
    view! { <div class="page"><h1>"Contacts & escalation"</h1></div> }
}
