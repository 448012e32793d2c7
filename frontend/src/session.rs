//! Who is logged in, shared through context and loaded from `GET /api/v1/me`,
//! plus the address helpers the login flow needs (where to go back to after
//! signing in, full page loads when the session ends).

use leptos::prelude::*;
use opsdeck_wire::{Me, Role};

/// What the app knows about the current session.
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    /// `GET /api/v1/me` has not answered yet.
    Loading,
    /// Nobody is logged in (401).
    Anonymous,
    /// Logged in.
    User(Me),
    /// The server could not be asked (network error, 5xx): shown with a retry.
    Unreachable(String),
}

/// The session, in context. `Copy`: pass it into closures freely.
#[derive(Clone, Copy)]
pub struct Session(RwSignal<Auth>);

impl Session {
    /// The current state (tracked).
    pub fn auth(self) -> Auth {
        self.0.get()
    }

    /// The logged-in user, if any (tracked).
    pub fn me(self) -> Option<Me> {
        self.0.with(|a| match a {
            Auth::User(me) => Some(me.clone()),
            _ => None,
        })
    }

    /// The logged-in user's role, if any (tracked).
    pub fn role(self) -> Option<Role> {
        self.0.with(|a| match a {
            Auth::User(me) => Some(me.role),
            _ => None,
        })
    }

    /// Records who logged in (after `POST /auth/login`).
    pub fn set_user(self, me: Me) {
        self.0.set(Auth::User(me));
    }

    /// Asks the server again who is logged in. Resolves when the answer is in.
    pub async fn refresh(self) {
        let auth = match crate::api::get_quiet::<Me>("/api/v1/me").await {
            Ok(me) => Auth::User(me),
            Err(e) if e.status == 401 => Auth::Anonymous,
            Err(e) => Auth::Unreachable(e.message),
        };
        self.0.set(auth);
    }

    /// Starts [`Session::refresh`] in the background.
    pub fn reload(self) {
        self.0.set(Auth::Loading);
        leptos::task::spawn_local(self.refresh());
    }
}

/// Creates the session and starts loading it.
pub fn provide() {
    let session = Session(RwSignal::new(Auth::Loading));
    provide_context(session);
    leptos::task::spawn_local(session.refresh());
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

/// The browser's current path and query, e.g. `/admin/audit?x=1`.
pub fn current_path() -> String {
    web_sys::window()
        .map(|w| {
            let l = w.location();
            format!(
                "{}{}",
                l.pathname().unwrap_or_default(),
                l.search().unwrap_or_default()
            )
        })
        .unwrap_or_else(|| "/".into())
}

/// `/login`, remembering where to come back to.
pub fn login_url(next: &str) -> String {
    if next.is_empty() || next == "/" || next.starts_with("/login") {
        "/login".into()
    } else {
        format!("/login?next={}", crate::api::enc(next))
    }
}

/// The `next` address after login, if it is one of ours (a path on this
/// origin, not `//evil.example` and not a loop back to the login page).
pub fn safe_next(next: Option<String>) -> String {
    next.filter(|n| {
        n.starts_with('/')
            && !n.starts_with("//")
            && !n.starts_with("/\\")
            && !n.starts_with("/login")
            && !n.starts_with("/change-password")
    })
    .unwrap_or_else(|| "/".into())
}

/// A full page load: used when a session ends or changes, so that nothing
/// the previous session loaded stays in memory.
pub fn hard_navigate(to: &str) {
    if let Some(w) = web_sys::window() {
        if current_path() != to {
            let _ = w.location().assign(to);
        }
    }
}
