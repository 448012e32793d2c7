//! The dashboard, the pages of capabilities still to come, and "not found".
//!
//! A capability that is not built yet gets a designed empty state: what the
//! page will show, and what happens next, so nobody mistakes it for a broken
//! page during an outage.

use leptos::prelude::*;
use leptos_router::hooks::use_location;
use opsdeck_wire::Role;

use crate::icons::{Icon, IconName};
use crate::session::use_session;
use crate::ui::{EmptyState, PageHeader, Pill, Tone};

/// An empty state for a capability that is not available yet.
#[component]
fn Upcoming(
    icon: IconName,
    heading: &'static str,
    will_show: &'static [&'static str],
    next: &'static str,
) -> impl IntoView {
    view! {
        <EmptyState icon title=heading testid="empty-state">
            <p>"This page will show:"</p>
            <ul class="bullets">
                {will_show.iter().map(|w| view! { <li>{*w}</li> }).collect_view()}
            </ul>
            <p class="next"><strong>"What happens next: "</strong>{next}</p>
            <p class="tag-line"><span class="tag">"Not available yet"</span>" This part of Opsdeck arrives in a later release."</p>
        </EmptyState>
    }
}

macro_rules! upcoming_page {
    ($(#[$doc:meta])* $name:ident, $title:literal, $icon:expr, $heading:literal, [$($show:literal),+ $(,)?], $next:literal) => {
        $(#[$doc])*
        #[component]
        pub fn $name() -> impl IntoView {
            view! {
                <PageHeader title=$title/>
                <Upcoming icon=$icon heading=$heading will_show=&[$($show),+] next=$next/>
            }
        }
    };
}

upcoming_page!(
    /// Service inventory, health checks and the dependency graph.
    Services, "Services", IconName::Services, "No services yet",
    [
        "Every container of your Compose stacks, grouped by tier (critical, application, support)",
        "Health checks with warning and critical thresholds: CPU, memory, disk, response time, error rate",
        "The dependency graph: what is affected when a service fails, and in which order to start and stop",
    ],
    "an admin connects Opsdeck to your Docker engines; the services then appear here with their live status."
);

upcoming_page!(
    /// One-click runbooks from the handbook.
    Runbooks, "Runbooks", IconName::Runbooks, "No runbooks yet",
    [
        "The handbook's procedures as one-click runbooks with typed steps (service down, database connections, weekly maintenance)",
        "Live output while a runbook runs, kept so you can leave and find it again",
        "Schedules, and which runbooks need a second person's approval before they run",
    ],
    "an admin turns the handbook's procedures into runbooks; operators then run them from here."
);

upcoming_page!(
    /// Requests waiting for a second person.
    Approvals, "Approvals", IconName::Approvals, "Nothing waits for your approval",
    [
        "Dangerous actions waiting for a second person: restores, stopping a critical service, prunes, failovers",
        "Who asked, what exactly will run, and on which service",
        "Your decision, recorded with your name in the audit log",
    ],
    "when someone requests such an action, it appears here and as a badge in the top bar."
);

upcoming_page!(
    /// Incidents with SLA timers and timelines.
    Incidents, "Incidents", IconName::Incidents, "No incidents",
    [
        "Open incidents by severity (P1 to P4) with live timers for acknowledge, diagnose, mitigate and resolve",
        "A timeline of every automated and human action taken",
        "Post-mortems, MTTA / MTTR and uptime reports",
    ],
    "once health checks run, a failing service opens an incident here; you can also open one by hand."
);

upcoming_page!(
    /// Backup jobs, catalog and verification.
    Backups, "Backups", IconName::Backups, "No backups yet",
    [
        "Backup jobs for PostgreSQL, MariaDB, volumes and configuration, with schedules and retention",
        "The catalog of backups with sizes and checksums",
        "Automatic verification by test restores into a scratch database; restores go through an approval",
    ],
    "an admin sets up backup jobs and where to store them; the first run appears here."
);

upcoming_page!(
    /// Who is on call, contacts and escalation.
    OnCall, "On-call", IconName::OnCall, "No rotations yet",
    [
        "Who is on call now and who is next",
        "Contacts, rotations and escalation policies (L1, L2, L3)",
        "Which channel is used for which severity",
    ],
    "an admin adds contacts and a rotation; this page then answers \"who do I call?\"."
);

upcoming_page!(
    /// Maintenance mode and windows.
    Maintenance, "Maintenance", IconName::Maintenance, "No maintenance planned",
    [
        "The maintenance switch: visitors get the maintenance page and alerts are suppressed",
        "Scheduled maintenance windows",
        "A banner across Opsdeck while maintenance is on",
    ],
    "operators turn maintenance on here before planned work, or schedule a window."
);

/// A shortcut on the dashboard to a page that already works.
#[component]
fn Shortcut(
    href: &'static str,
    icon: IconName,
    title: &'static str,
    text: &'static str,
) -> impl IntoView {
    view! {
        <a class="shortcut" href=href>
            <span class="shortcut-icon"><Icon name=icon/></span>
            <span class="shortcut-text"><strong>{title}</strong><span class="muted">{text}</span></span>
            <Icon name=IconName::ChevronRight/>
        </a>
    }
}

#[component]
pub fn Dashboard() -> impl IntoView {
    let session = use_session();
    let is_admin = move || session.role() == Some(Role::Admin);
    view! {
        <PageHeader title="Dashboard"/>
        <Upcoming icon=IconName::Dashboard heading="Nothing is monitored yet"
            will_show=&[
                "The live status of every service, grouped by tier, updated as it changes",
                "Open incidents, who is on call, and approvals waiting for you",
                "Backups, maintenance windows and the daily check, at a glance",
            ]
            next="services and their health checks are set up; until then the status in the top bar says \"not yet monitored\"."/>
        <section class="shortcuts" aria-label="Things you can do now">
            <h2>"You can already"</h2>
            <div class="shortcut-grid">
                <Show when=is_admin>
                    <Shortcut href="/admin/users" icon=IconName::Users title="Add your team"
                        text="Create accounts for viewers, operators and admins."/>
                    <Shortcut href="/admin/tokens" icon=IconName::Token title="Connect automation"
                        text="Create an API token for scripts and monitoring."/>
                    <Shortcut href="/admin/audit" icon=IconName::Audit title="Review the audit log"
                        text="See every sign-in and change, and verify the chain."/>
                </Show>
                <Shortcut href="/account" icon=IconName::Lock title="Secure your account"
                    text="See your role and change your password."/>
            </div>
        </section>
        <section class="legend" aria-label="How Opsdeck shows status">
            <h2>"How status is shown"</h2>
            <p class="muted">"Every status has a colour, an icon and a word, in both themes."</p>
            <div class="legend-pills" data-testid="status-legend">
                <Pill tone=Tone::Operational word="operational"/>
                <Pill tone=Tone::Degraded word="degraded"/>
                <Pill tone=Tone::Outage word="outage"/>
                <Pill tone=Tone::Maintenance word="maintenance"/>
                <Pill tone=Tone::Unknown word="unknown"/>
            </div>
        </section>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    let location = use_location();
    view! {
        <PageHeader title="Page not found"/>
        <EmptyState icon=IconName::Compass title="There is nothing at this address" testid="not-found">
            <p>"Opsdeck has no page at "<code>{move || location.pathname.get()}</code>". The link may be old or mistyped."</p>
            <p><a href="/">"Go to the dashboard"</a>" or pick a page in the navigation."</p>
        </EmptyState>
    }
}
