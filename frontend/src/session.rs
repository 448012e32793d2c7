//! Who is logged in, shared through context, loaded from [`crate::api::auth::me`].

use leptos::prelude::*;
use opsdeck_wire::Me;

/// `None` while loading; `Some(None)` when nobody is logged in.
#[derive(Clone, Copy)]
pub struct Session(pub RwSignal<Option<Option<Me>>>);

/// Provides the session and, at the app root with it, the status store (one
/// status stream for the whole document; see `live.rs`).
pub fn provide() {
    let me = RwSignal::new(None);
    provide_context(Session(me));
    crate::status_store::StatusStore::provide();
    leptos::task::spawn_local(async move {
        let result = crate::api::auth::me().await.ok();
        me.set(Some(result));
    });
}

pub fn use_session() -> Session {
    expect_context::<Session>()
}

/// Full navigation (leaves the reactive tree's state behind). Every live
/// stream is closed first: the browser may keep a page it leaves (and its
/// connections) for a while.
pub fn go(path: &str) {
    if let Some(w) = web_sys::window() {
        let current = w.location().pathname().unwrap_or_default();
        if current != path {
            crate::live::close_all();
            let _ = w.location().set_href(path);
        }
    }
}

/// The session ended on the server: every live stream closed, back to the
/// login page, keeping the place to return to.
pub fn expired() {
    crate::live::close_all();
    if let Some(w) = web_sys::window() {
        let here = w.location().pathname().unwrap_or_default();
        if here != "/login" {
            let next = js_sys::encode_uri_component(&here);
            let _ = w.location().set_href(&format!("/login?next={next}"));
        }
    }
}

/// The logged-in user's role (pages render only once it is known; viewer
/// until then).
pub fn current_role() -> opsdeck_wire::Role {
    use_session()
        .0
        .get_untracked()
        .flatten()
        .map(|m| m.role)
        .unwrap_or(opsdeck_wire::Role::Viewer)
}
