//! Opsdeck web app: a Leptos (CSR) single-page app, built with trunk and
//! served by the Opsdeck server at `/` (every non-API path answers
//! `index.html`, so deep links survive a reload).
//!
//! Modules: [`api`] talks JSON to `/api/v1`; [`session`] knows who is logged
//! in; [`shell`] is the layout of every page after login; [`pages`] holds the
//! pages; [`ui`], [`dialog`], [`time`], [`icons`] and [`theme`] are the shared
//! pieces.
//!
//! The server sends a strict Content-Security-Policy: no inline styles, no
//! inline scripts or event-handler attributes. Styling lives in
//! `static/app.css`; dynamic styles, if ever needed, go through `style:` (CSSOM).

mod api;
mod dialog;
mod icons;
mod pages;
mod session;
mod shell;
mod theme;
mod time;
mod ui;

use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

use pages::{account, audit, auth, overview, tokens, users};

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
    // The placeholder in index.html that shows while the WASM loads.
    if let Some(boot) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id("boot"))
    {
        boot.remove();
    }
}

#[component]
fn App() -> impl IntoView {
    theme::provide();
    time::provide();
    ui::provide_toasts();
    session::provide();
    view! {
        <Router>
            <Routes fallback=|| view! { <overview::NotFound/> }>
                <Route path=path!("/login") view=auth::Login/>
                <Route path=path!("/change-password") view=auth::ChangePassword/>
                <ParentRoute path=path!("") view=shell::Shell>
                    <Route path=path!("") view=overview::Dashboard/>
                    <Route path=path!("services") view=overview::Services/>
                    <Route path=path!("runbooks") view=overview::Runbooks/>
                    <Route path=path!("approvals") view=overview::Approvals/>
                    <Route path=path!("incidents") view=overview::Incidents/>
                    <Route path=path!("backups") view=overview::Backups/>
                    <Route path=path!("oncall") view=overview::OnCall/>
                    <Route path=path!("maintenance") view=overview::Maintenance/>
                    <Route path=path!("account") view=account::Account/>
                    <Route path=path!("admin/users") view=users::Users/>
                    <Route path=path!("admin/tokens") view=tokens::Tokens/>
                    <Route path=path!("admin/audit") view=audit::Audit/>
                    <Route path=path!("*any") view=overview::NotFound/>
                </ParentRoute>
            </Routes>
        </Router>
        <ui::ToastRegion/>
    }
}
