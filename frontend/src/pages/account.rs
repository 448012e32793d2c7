//! "My account": who you are, your role, and the way to change your password.

use leptos::prelude::*;
use opsdeck_wire::AuthVia;

use crate::icons::{Icon, IconName};
use crate::session::use_session;
use crate::ui::{PageHeader, RoleBadge};

#[component]
pub fn Account() -> impl IntoView {
    let session = use_session();
    view! {
        <PageHeader title="My account"/>
        {move || session.me().map(|me| view! {
            <section class="card account-card" data-testid="account">
                <dl class="facts">
                    <dt>"Username"</dt><dd data-testid="account-username">{me.username.clone()}</dd>
                    <dt>"Name"</dt><dd>{me.display_name.clone()}</dd>
                    <dt>"Role"</dt>
                    <dd><RoleBadge role=me.role/><span class="muted">" "{super::role_help(me.role)}</span></dd>
                    <dt>"Signed in with"</dt>
                    <dd>{match me.via { AuthVia::Session => "a browser session", AuthVia::Token => "an API token" }}</dd>
                </dl>
                <div class="card-actions">
                    <a class="btn btn-secondary" href="/change-password" data-testid="change-password-link">
                        <Icon name=IconName::Lock/>"Change password"
                    </a>
                </div>
                <p class="hint">"Changing your password signs you out everywhere else."</p>
            </section>
        })}
    }
}
