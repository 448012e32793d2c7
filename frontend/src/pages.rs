//! Login, password change, account, and the pages of capabilities still to
//! come (each with an empty state that says what it will show).

use leptos::prelude::*;
use leptos_router::hooks::use_query_map;
use opsdeck_wire::{ChangePasswordRequest, LoginRequest};

use crate::session::{go, use_session};
use crate::ui::EmptyState;

#[component]
pub fn Login() -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let query = use_query_map();
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        busy.set(true);
        error.set(None);
        let req = LoginRequest {
            username: username.get_untracked(),
            password: password.get_untracked(),
        };
        let next = query
            .get_untracked()
            .get("next")
            .filter(|n| n.starts_with('/') && !n.starts_with("//"));
        leptos::task::spawn_local(async move {
            match crate::api::auth::login(&req).await {
                Ok(me) if me.must_change_password => go("/change-password"),
                Ok(_) => go(next.as_deref().unwrap_or("/")),
                Err(e) => {
                    error.set(Some(e.message));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <div class="auth-page">
            <form class="card auth-card" on:submit=submit>
                <div class="brand brand-lg"><crate::ui::Logo/>"Opsdeck"</div>
                <h1>"Sign in"</h1>
                <label for="username">"Username"</label>
                <input id="username" name="username" autocomplete="username" required
                    prop:value=move || username.get() on:input=move |e| username.set(event_target_value(&e))/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" autocomplete="current-password" required
                    prop:value=move || password.get() on:input=move |e| password.set(event_target_value(&e))/>
                <p class="form-error" data-testid="form-error" role="alert">{move || error.get()}</p>
                <button type="submit" class="btn btn-primary btn-block" data-testid="login-submit" disabled=move || busy.get()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </div>
    }
}

#[component]
pub fn ChangePassword() -> impl IntoView {
    let session = use_session();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let forced = move || {
        session
            .0
            .get()
            .flatten()
            .is_some_and(|m| m.must_change_password)
    };
    let hint = move || {
        let n = new.get();
        if n.is_empty() {
            None
        } else if n.chars().count() < 12 {
            Some("At least 12 characters.")
        } else if !confirm.get().is_empty() && confirm.get() != n {
            Some("The two new passwords differ.")
        } else {
            None
        }
    };
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if new.get_untracked() != confirm.get_untracked() {
            error.set(Some("The two new passwords differ.".into()));
            return;
        }
        busy.set(true);
        error.set(None);
        let req = ChangePasswordRequest {
            current_password: current.get_untracked(),
            new_password: new.get_untracked(),
        };
        leptos::task::spawn_local(async move {
            match crate::api::auth::change_password(&req).await {
                Ok(()) => go("/"),
                Err(e) => {
                    error.set(Some(e.message));
                    busy.set(false);
                }
            }
        });
    };
    view! {
        <div class="auth-page">
            <form class="card auth-card" on:submit=submit>
                <h1>"Change password"</h1>
                <Show when=forced>
                    <p class="notice">"Choose your own password before you continue."</p>
                </Show>
                <label for="current-password">"Current password"</label>
                <input id="current-password" type="password" autocomplete="current-password" required
                    on:input=move |e| current.set(event_target_value(&e))/>
                <label for="new-password">"New password"</label>
                <input id="new-password" type="password" autocomplete="new-password" required minlength="12" maxlength="128"
                    on:input=move |e| new.set(event_target_value(&e))/>
                <label for="confirm-password">"Repeat the new password"</label>
                <input id="confirm-password" type="password" autocomplete="new-password" required
                    on:input=move |e| confirm.set(event_target_value(&e))/>
                <p class="hint">{move || hint().unwrap_or("12 to 128 characters; common passwords are refused.")}</p>
                <p class="form-error" data-testid="form-error" role="alert">{move || error.get()}</p>
                <button type="submit" class="btn btn-primary btn-block" data-testid="change-password-submit" disabled=move || busy.get()>
                    "Change password"
                </button>
                <Show when=move || !forced()>
                    <a href="/account" class="link">"Cancel"</a>
                </Show>
            </form>
        </div>
    }
}

#[component]
pub fn Account() -> impl IntoView {
    let session = use_session();
    view! {
        <h1>"My account"</h1>
        {move || session.0.get().flatten().map(|me| view! {
            <div class="card">
                <dl class="facts">
                    <dt>"Username"</dt><dd>{me.username.clone()}</dd>
                    <dt>"Name"</dt><dd>{me.display_name.clone()}</dd>
                    <dt>"Role"</dt><dd><span class="role-badge">{me.role.as_str()}</span></dd>
                </dl>
                <a class="btn" href="/change-password">"Change password"</a>
            </div>
        })}
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <h1>"Page not found"</h1>
        <EmptyState title="There is nothing at this address">
            <p><a href="/">"Go to the dashboard"</a></p>
        </EmptyState>
    }
}
