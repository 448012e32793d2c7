//! Opsdeck SPA: a Leptos (CSR) app served by the Opsdeck server at `/`.
//!
//! Modules: [`api`] talks JSON to the API (same origin, session cookie):
//! one typed function per call, grouped by resource, the only place that
//! spells a path; [`session`] holds who is logged in; [`shell`] is the
//! layout every page after login shares (navigation by role, top bar,
//! theme); [`pages`] the login, password and placeholder pages;
//! [`status_store`] the status board every page shares (one stream);
//! [`dashboard`] the board's page and the top bar's pill; [`checks`] health
//! checks; [`reports`] the daily check report; [`admin`] users, API tokens
//! and the audit log; [`contacts`] on-call and the contacts admin; [`ui`]
//! small shared components (dialogs, loading/empty/error states); [`time`]
//! the browser's clock, relative times and durations.
//! The inventory: [`services`] (the list), [`service`] (one service:
//! actions, logs, stats, exec), [`graph`], [`engines`], [`import`] (compose
//! files, discovered projects, YAML); [`states`] how their states look and
//! [`live`] the Server-Sent Events that keep them current.
//! Runbooks: [`runbooks`] (the list, the run dialog, the YAML editor),
//! [`runs`] (history and the live run page), [`approvals`] (the inbox, the
//! navigation badge, policies) and [`schedules`].
//! [`incidents`]: the list, one incident, post-mortems and reports.
//! [`maintenance`]: maintenance mode, windows, stacks' actuation, the
//! period page and the banner every page shows while maintenance is on.
//! [`backups`]: plans, storage targets, the catalog and one backup's page.
//! Big pages are folders of their sections (`checks/`, `service/`, …).
//!
//! The server enforces a strict CSP: no inline styles or scripts here.

mod admin;
mod api;
mod approvals;
mod backups;
mod channels;
mod checks;
mod contacts;
mod dashboard;
mod engines;
mod graph;
mod import;
mod incidents;
mod live;
mod logs;
mod maintenance;
mod pages;
mod reports;
mod resources;
mod runbooks;
mod runs;
mod schedules;
mod service;
mod services;
mod session;
mod shell;
mod states;
mod status_store;
mod time;
mod ui;
mod updates;

use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;

fn main() {
    console_error_panic_hook::set_once();
    ui::apply_saved_theme();
    leptos::mount::mount_to_body(App);
}

#[component]
fn App() -> impl IntoView {
    session::provide();
    view! {
        <Router>
            <Routes fallback=|| view! { <pages::NotFound/> }>
                <Route path=path!("/login") view=pages::Login/>
                <Route path=path!("/change-password") view=pages::ChangePassword/>
                <ParentRoute path=path!("") view=shell::Shell>
                    <Route path=path!("") view=dashboard::Dashboard/>
                    <Route path=path!("checks") view=checks::Checks/>
                    <Route path=path!("checks/import-rules") view=checks::RulesImport/>
                    <Route path=path!("reports") view=reports::Reports/>
                    <Route path=path!("services") view=services::Services/>
                    <Route path=path!("services/:id") view=service::ServicePage/>
                    <Route path=path!("graph") view=graph::Graph/>
                    <Route path=path!("logs") view=logs::Logs/>
                    <Route path=path!("engines") view=engines::Engines/>
                    <Route path=path!("inventory") view=import::Import/>
                    <Route path=path!("runbooks") view=runbooks::Runbooks/>
                    <Route path=path!("runbooks/new") view=runbooks::RunbookNew/>
                    <Route path=path!("runbooks/:id/edit") view=runbooks::RunbookEditPage/>
                    <Route path=path!("runs") view=runs::Runs/>
                    <Route path=path!("runs/:id") view=runs::RunPage/>
                    <Route path=path!("approvals") view=approvals::Approvals/>
                    <Route path=path!("schedules") view=schedules::Schedules/>
                    <Route path=path!("incidents") view=incidents::Incidents/>
                    <Route path=path!("incidents/:id") view=incidents::IncidentPage/>
                    <Route path=path!("incidents/:id/postmortem") view=incidents::PostmortemPage/>
                    <Route path=path!("reports/incidents") view=incidents::IncidentReports/>
                    <Route path=path!("reports/capacity") view=resources::capacity::CapacityPage/>
                    <Route path=path!("hosts/local") view=resources::HostPage/>
                    <Route path=path!("backups") view=backups::Backups/>
                    <Route path=path!("backups/:id") view=backups::BackupPage/>
                    <Route path=path!("oncall") view=contacts::OnCallPage/>
                    <Route path=path!("maintenance") view=maintenance::Maintenance/>
                    <Route path=path!("maintenance/:id") view=maintenance::PeriodPage/>
                    <Route path=path!("account") view=pages::Account/>
                    <Route path=path!("admin/contacts") view=contacts::ContactsAdmin/>
                    <Route path=path!("admin/channels") view=channels::Channels/>
                    <Route path=path!("admin/users") view=admin::Users/>
                    <Route path=path!("admin/tokens") view=admin::Tokens/>
                    <Route path=path!("admin/audit") view=admin::Audit/>
                    <Route path=path!("*any") view=pages::NotFound/>
                </ParentRoute>
            </Routes>
        </Router>
    }
}
