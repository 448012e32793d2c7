//! Notification channels (admins): webhook, Slack, Teams, e-mail, SMS
//! gateway; severity rules; "send test".

use leptos::prelude::*;

#[component]
pub fn Channels() -> impl IntoView {
    view! { <div class="page"><h1>"Notification channels"</h1></div> }
}
