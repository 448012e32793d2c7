//! Signing in and changing the password. Both live outside the shell, as a
//! centred card. After login the user goes to the page first asked for
//! (`?next=`), or to `/change-password` when the account still has a
//! temporary password.

use std::time::Duration;

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;
use opsdeck_wire::{ChangePasswordRequest, LoginRequest, Me};

use crate::icons::{Icon, IconName};
use crate::session::{hard_navigate, safe_next, use_session, Auth};
use crate::shell::Logo;

fn replace() -> NavigateOptions {
    NavigateOptions {
        replace: true,
        ..Default::default()
    }
}

/// `/change-password`, remembering where to go afterwards.
pub fn change_password_url(next: &str) -> String {
    if next == "/" {
        "/change-password".into()
    } else {
        format!("/change-password?next={}", crate::api::enc(next))
    }
}

fn set_title(title: &str) {
    if let Some(doc) = web_sys::window().and_then(|w| w.document()) {
        doc.set_title(&format!("{title} · Opsdeck"));
    }
}

#[component]
pub fn Login() -> impl IntoView {
    set_title("Sign in");
    let session = use_session();
    let navigate = use_navigate();
    let query = use_query_map();
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);
    // After too many attempts the server asks to wait (Retry-After).
    let blocked = RwSignal::new(false);

    // Logged in (just now, or already when the page opened): go on.
    Effect::new(move |_| {
        if let Auth::User(me) = session.auth() {
            let next = safe_next(query.with_untracked(|q| q.get("next")));
            let to = if me.must_change_password {
                change_password_url(&next)
            } else {
                next
            };
            navigate(&to, replace());
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() || blocked.get_untracked() {
            return;
        }
        let req = LoginRequest {
            username: username.get_untracked().trim().to_owned(),
            password: password.get_untracked(),
        };
        if req.username.is_empty() || req.password.is_empty() {
            error.set("Enter your username and password.".into());
            return;
        }
        busy.set(true);
        error.set(String::new());
        leptos::task::spawn_local(async move {
            match crate::api::post::<_, Me>("/api/v1/auth/login", &req).await {
                Ok(me) => session.set_user(me),
                Err(e) => {
                    busy.set(false);
                    password.set(String::new());
                    if let Some(secs) = e.retry_after.filter(|_| e.status == 429) {
                        blocked.set(true);
                        set_timeout(
                            move || blocked.set(false),
                            Duration::from_secs(u64::from(secs)),
                        );
                    }
                    error.set(e.message);
                }
            }
        });
    };

    view! {
        <main class="auth-page">
            <form class="card auth-card" on:submit=submit novalidate>
                <div class="brand brand-lg"><Logo/><span>"Opsdeck"</span></div>
                <h1>"Sign in"</h1>
                <div class="field">
                    <label for="username">"Username"</label>
                    <input id="username" name="username" autocomplete="username" autocapitalize="none"
                        spellcheck="false" autofocus
                        prop:value=move || username.get() on:input=move |e| username.set(event_target_value(&e))/>
                </div>
                <div class="field">
                    <label for="password">"Password"</label>
                    <input id="password" name="password" type="password" autocomplete="current-password"
                        prop:value=move || password.get() on:input=move |e| password.set(event_target_value(&e))/>
                </div>
                <p class="form-error" data-testid="form-error" role="alert" aria-live="assertive">{move || error.get()}</p>
                <button type="submit" class="btn btn-primary btn-block" data-testid="login-submit"
                    disabled=move || busy.get() || blocked.get()>
                    {move || if busy.get() { "Signing in…" } else { "Sign in" }}
                </button>
            </form>
        </main>
    }
}

/// Live hints for a new password; the server has the last word.
#[component]
fn Check(ok: Signal<bool>, text: &'static str) -> impl IntoView {
    view! {
        <li class="check" class:check-ok=move || ok.get()>
            {move || if ok.get() { view! { <Icon name=IconName::CheckCircle/> } } else { view! { <Icon name=IconName::ChevronRight/> } }}
            <span>{text}</span>
            <span class="sr-only">{move || if ok.get() { " (done)" } else { " (not yet)" }}</span>
        </li>
    }
}

#[component]
pub fn ChangePassword() -> impl IntoView {
    set_title("Change password");
    let session = use_session();
    let navigate = use_navigate();
    let query = use_query_map();
    let toasts = crate::ui::use_toasts();
    let current = RwSignal::new(String::new());
    let new = RwSignal::new(String::new());
    let confirm = RwSignal::new(String::new());
    let error = RwSignal::new(String::new());
    let busy = RwSignal::new(false);

    let forced = move || session.me().is_some_and(|m| m.must_change_password);

    // Nobody logged in: sign in first (the login page brings the user back
    // here when the password must change).
    {
        let navigate = navigate.clone();
        Effect::new(move |_| {
            if session.auth() == Auth::Anonymous {
                navigate("/login", replace());
            }
        });
    }

    let long_enough = Signal::derive(move || (12..=128).contains(&new.with(|n| n.chars().count())));
    let matches = Signal::derive(move || !new.with(String::is_empty) && new.get() == confirm.get());
    let differs = Signal::derive(move || !new.with(String::is_empty) && new.get() != current.get());

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        if current.get_untracked().is_empty() {
            error.set("Enter your current password.".into());
            return;
        }
        if new.get_untracked() != confirm.get_untracked() {
            error.set("The two new passwords differ. Type the same password twice.".into());
            return;
        }
        let was_forced = forced();
        let next = safe_next(query.with_untracked(|q| q.get("next")));
        let req = ChangePasswordRequest {
            current_password: current.get_untracked(),
            new_password: new.get_untracked(),
        };
        busy.set(true);
        error.set(String::new());
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match crate::api::post_no_content("/api/v1/me/password", &req).await {
                Ok(()) => {
                    // The server ended every session and gave this browser a new one.
                    session.refresh().await;
                    toasts.success("Password changed. Every other session was signed out.");
                    navigate(if was_forced { &next } else { "/account" }, replace());
                }
                Err(e) => {
                    busy.set(false);
                    error.set(e.message);
                }
            }
        });
    };

    let logout = move |_| {
        leptos::task::spawn_local(async move {
            let _ = crate::api::post_no_content("/api/v1/auth/logout", &crate::api::Empty {}).await;
            hard_navigate("/login");
        });
    };

    view! {
        <main class="auth-page">
            <form class="card auth-card" on:submit=submit novalidate>
                <div class="brand brand-lg"><Logo/><span>"Opsdeck"</span></div>
                <h1>"Change password"</h1>
                <Show when=forced>
                    <p class="notice notice-info" data-testid="forced-notice">
                        <Icon name=IconName::Info/>
                        <span>"Your account has a temporary password. Choose your own before you continue."</span>
                    </p>
                </Show>
                <div class="field">
                    <label for="current-password">"Current password"</label>
                    <input id="current-password" type="password" autocomplete="current-password" autofocus
                        on:input=move |e| current.set(event_target_value(&e))/>
                </div>
                <div class="field">
                    <label for="new-password">"New password"</label>
                    <input id="new-password" type="password" autocomplete="new-password" maxlength="128"
                        aria-describedby="password-rules"
                        on:input=move |e| new.set(event_target_value(&e))/>
                </div>
                <div class="field">
                    <label for="confirm-password">"Repeat the new password"</label>
                    <input id="confirm-password" type="password" autocomplete="new-password" maxlength="128"
                        on:input=move |e| confirm.set(event_target_value(&e))/>
                </div>
                <ul class="checks" id="password-rules" aria-label="Password rules">
                    <Check ok=long_enough text="12 to 128 characters"/>
                    <Check ok=matches text="Both new passwords match"/>
                    <Check ok=differs text="Differs from the current password"/>
                </ul>
                <p class="hint">"Common passwords are refused. A long phrase of unrelated words is easy to type and hard to guess."</p>
                <p class="form-error" data-testid="form-error" role="alert" aria-live="assertive">{move || error.get()}</p>
                <button type="submit" class="btn btn-primary btn-block" data-testid="change-password-submit"
                    disabled=move || busy.get()>
                    {move || if busy.get() { "Changing…" } else { "Change password" }}
                </button>
                {move || if forced() {
                    view! { <button type="button" class="btn btn-ghost btn-block" on:click=logout>"Log out instead"</button> }.into_any()
                } else {
                    view! { <a href="/account" class="btn btn-ghost btn-block">"Cancel"</a> }.into_any()
                }}
            </form>
        </main>
    }
}
