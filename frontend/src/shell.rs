//! The layout every page after login shares: left navigation (only what the
//! role may use; a menu button at phone widths), and the top bar with the
//! global status summary, the theme toggle and the user menu.
//!
//! The shell also guards the pages: nobody logged in → `/login` (keeping the
//! address to come back to); a password to change → `/change-password`; a
//! page above the user's role → a calm "no access" state (the API refuses
//! anyway).

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::{use_location, use_navigate};
use leptos_router::NavigateOptions;
use opsdeck_wire::{Me, Role};

use crate::icons::{Icon, IconName};
use crate::session::{current_path, hard_navigate, login_url, use_session, Auth};
use crate::ui::{NoAccess, Pill, RoleBadge, Tone};

struct NavItem {
    key: &'static str,
    href: &'static str,
    label: &'static str,
    icon: IconName,
    min: Role,
}

const fn item(
    key: &'static str,
    href: &'static str,
    label: &'static str,
    icon: IconName,
    min: Role,
) -> NavItem {
    NavItem {
        key,
        href,
        label,
        icon,
        min,
    }
}

const MAIN_NAV: &[NavItem] = &[
    item(
        "dashboard",
        "/",
        "Dashboard",
        IconName::Dashboard,
        Role::Viewer,
    ),
    item(
        "services",
        "/services",
        "Services",
        IconName::Services,
        Role::Viewer,
    ),
    item(
        "runbooks",
        "/runbooks",
        "Runbooks",
        IconName::Runbooks,
        Role::Viewer,
    ),
    item(
        "approvals",
        "/approvals",
        "Approvals",
        IconName::Approvals,
        Role::Operator,
    ),
    item(
        "incidents",
        "/incidents",
        "Incidents",
        IconName::Incidents,
        Role::Viewer,
    ),
    item(
        "backups",
        "/backups",
        "Backups",
        IconName::Backups,
        Role::Viewer,
    ),
    item(
        "oncall",
        "/oncall",
        "On-call",
        IconName::OnCall,
        Role::Viewer,
    ),
    item(
        "maintenance",
        "/maintenance",
        "Maintenance",
        IconName::Maintenance,
        Role::Viewer,
    ),
];

const ADMIN_NAV: &[NavItem] = &[
    item(
        "users",
        "/admin/users",
        "Users",
        IconName::Users,
        Role::Admin,
    ),
    item(
        "tokens",
        "/admin/tokens",
        "API tokens",
        IconName::Token,
        Role::Admin,
    ),
    item(
        "audit",
        "/admin/audit",
        "Audit log",
        IconName::Audit,
        Role::Admin,
    ),
];

/// The lowest role that may open a path (the API refuses the rest anyway).
pub fn required_role(path: &str) -> Role {
    let under = |prefix: &str| path == prefix || path.starts_with(&format!("{prefix}/"));
    if under("/admin") {
        Role::Admin
    } else if under("/approvals") {
        Role::Operator
    } else {
        Role::Viewer
    }
}

fn nav_links(items: &'static [NavItem], role: Role) -> impl IntoView {
    items
        .iter()
        .filter(move |i| role >= i.min)
        .map(|i| {
            view! {
                <A href=i.href exact=i.href == "/" attr:class="nav-link" attr:data-testid=format!("nav-{}", i.key)>
                    <Icon name=i.icon/>
                    <span>{i.label}</span>
                </A>
            }
        })
        .collect_view()
}

/// The Opsdeck mark (inline SVG: no extra request).
#[component]
pub fn Logo() -> impl IntoView {
    view! {
        <svg class="brand-mark" viewBox="0 0 32 32" aria-hidden="true" focusable="false">
            <rect width="32" height="32" rx="7" class="brand-mark-bg"/>
            <path d="M7 17h4l3-7 4 13 3-6h4" class="brand-mark-line"/>
        </svg>
    }
}

/// A full-page state while the session loads, so the first paint is calm.
#[component]
fn Booting() -> impl IntoView {
    view! {
        <div class="boot-screen" aria-busy="true">
            <span class="boot-mark" aria-hidden="true"></span>
            <span class="boot-text">"Loading Opsdeck…"</span>
        </div>
    }
}

#[component]
fn Unreachable(message: String) -> impl IntoView {
    let session = use_session();
    view! {
        <div class="auth-page">
            <section class="card auth-card state-error" role="alert" data-testid="unreachable">
                <div class="brand brand-lg"><Logo/>"Opsdeck"</div>
                <h1>"Cannot reach the server"</h1>
                <p class="muted">{message}</p>
                <button type="button" class="btn btn-primary btn-block" on:click=move |_| session.reload()>
                    <Icon name=IconName::Refresh/>"Try again"
                </button>
            </section>
        </div>
    }
}

/// The layout of every page after login; the page itself is the `<Outlet/>`.
#[component]
pub fn Shell() -> impl IntoView {
    let session = use_session();
    let navigate = use_navigate();

    // Nobody logged in, or a password to change first: leave the shell.
    Effect::new(move |_| match session.auth() {
        Auth::Anonymous => navigate(
            &login_url(&current_path()),
            NavigateOptions {
                replace: true,
                ..Default::default()
            },
        ),
        Auth::User(me) if me.must_change_password => navigate(
            &crate::pages::auth::change_password_url(&current_path()),
            NavigateOptions {
                replace: true,
                ..Default::default()
            },
        ),
        _ => {}
    });

    move || match session.auth() {
        Auth::User(me) if !me.must_change_password => view! { <Layout me/> }.into_any(),
        Auth::Unreachable(message) => view! { <Unreachable message/> }.into_any(),
        _ => view! { <Booting/> }.into_any(),
    }
}

#[component]
fn Layout(me: Me) -> impl IntoView {
    let location = use_location();
    let toasts = crate::ui::use_toasts();
    let menu_open = RwSignal::new(false);
    let role = me.role;

    // Navigating closes the phone menu.
    Effect::new(move |_| {
        location.pathname.track();
        menu_open.set(false);
    });

    let allowed = move || role >= required_role(&location.pathname.get());
    let logging_out = RwSignal::new(false);
    let logout = move |_| {
        logging_out.set(true);
        leptos::task::spawn_local(async move {
            match crate::api::post_no_content("/api/v1/auth/logout", &crate::api::Empty {}).await {
                Ok(()) => hard_navigate("/login"),
                Err(e) => {
                    logging_out.set(false);
                    toasts.error(format!("Could not log out: {}", e.message));
                }
            }
        });
    };
    let initial = me
        .username
        .chars()
        .next()
        .map(|c| c.to_uppercase().to_string())
        .unwrap_or_default();
    let account_label = format!("My account ({}, {})", me.username, role.as_str());

    view! {
        <div class="layout" class:menu-open=move || menu_open.get()
            on:keydown=move |ev| if ev.key() == "Escape" { menu_open.set(false) }>
            <aside class="sidebar" id="sidebar" aria-label="Navigation">
                <a href="/" class="brand"><Logo/><span>"Opsdeck"</span></a>
                <nav aria-label="Main">
                    {nav_links(MAIN_NAV, role)}
                    {(role >= Role::Admin).then(|| view! {
                        <div class="nav-group" role="presentation">"Admin"</div>
                        {nav_links(ADMIN_NAV, role)}
                    })}
                </nav>
            </aside>
            <div class="scrim" aria-hidden="true" on:click=move |_| menu_open.set(false)></div>
            <div class="main">
                <header class="topbar">
                    <button type="button" class="btn btn-ghost btn-icon menu-toggle" data-testid="menu-toggle"
                        aria-label="Menu" aria-controls="sidebar" aria-expanded=move || menu_open.get().to_string()
                        on:click=move |_| menu_open.update(|o| *o = !*o)>
                        <Icon name=IconName::Menu/>
                    </button>
                    <a href="/" class="topbar-brand" aria-label="Opsdeck dashboard"><Logo/></a>
                    <span data-testid="global-status">
                        <Pill tone=Tone::Unknown word="Status: not yet monitored"
                            title="Health checks are not set up yet, so Opsdeck cannot tell whether services are up."/>
                    </span>
                    <span class="spacer"></span>
                    <crate::theme::ThemeToggle/>
                    <div class="user-menu" role="group" aria-label="User menu">
                        <a href="/account" class="user-chip" title="My account" aria-label=account_label data-testid="account-link">
                            <span class="avatar" aria-hidden="true">{initial}</span>
                            <span class="user-name">{me.username.clone()}</span>
                            <RoleBadge role/>
                        </a>
                        <button type="button" class="btn btn-secondary btn-logout" data-testid="logout"
                            disabled=move || logging_out.get() on:click=logout>
                            <Icon name=IconName::Logout/><span class="btn-label">"Log out"</span>
                        </button>
                    </div>
                </header>
                <main class="content" id="main">
                    <Show when=allowed fallback=|| view! { <NoAccess/> }>
                        <Outlet/>
                    </Show>
                </main>
            </div>
        </div>
    }
}
