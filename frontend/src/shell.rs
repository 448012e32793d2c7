//! The layout every page after login shares: left navigation (only what the
//! role may use), top bar with the live overall status (from the status
//! store provided at the app root), theme toggle and user menu; under it
//! the maintenance banner while maintenance is in effect. Pages for a role above the user's show an access-denied state.

use leptos::prelude::*;
use leptos_router::components::{Outlet, A};
use leptos_router::hooks::use_location;
use opsdeck_wire::Role;

use crate::session::{go, use_session};

struct NavItem {
    key: &'static str,
    href: &'static str,
    label: &'static str,
    icon: &'static str,
    min: Role,
}

const MAIN_NAV: &[NavItem] = &[
    NavItem {
        key: "dashboard",
        href: "/",
        label: "Dashboard",
        icon: "◉",
        min: Role::Viewer,
    },
    NavItem {
        key: "checks",
        href: "/checks",
        label: "Checks",
        icon: "♥",
        min: Role::Viewer,
    },
    NavItem {
        key: "reports",
        href: "/reports",
        label: "Reports",
        icon: "▤",
        min: Role::Viewer,
    },
    NavItem {
        key: "services",
        href: "/services",
        label: "Services",
        icon: "▦",
        min: Role::Viewer,
    },
    NavItem {
        key: "logs",
        href: "/logs",
        label: "Logs",
        icon: "≣",
        min: Role::Operator,
    },
    NavItem {
        key: "graph",
        href: "/graph",
        label: "Graph",
        icon: "⋔",
        min: Role::Viewer,
    },
    NavItem {
        key: "host",
        href: "/hosts/local",
        label: "Host",
        icon: "▣",
        min: Role::Viewer,
    },
    NavItem {
        key: "engines",
        href: "/engines",
        label: "Engines",
        icon: "⚙",
        min: Role::Viewer,
    },
    NavItem {
        key: "runbooks",
        href: "/runbooks",
        label: "Runbooks",
        icon: "▶",
        min: Role::Viewer,
    },
    NavItem {
        key: "runs",
        href: "/runs",
        label: "Runs",
        icon: "≡",
        min: Role::Viewer,
    },
    NavItem {
        key: "approvals",
        href: "/approvals",
        label: "Approvals",
        icon: "✓",
        min: Role::Operator,
    },
    NavItem {
        key: "schedules",
        href: "/schedules",
        label: "Schedules",
        icon: "◷",
        min: Role::Viewer,
    },
    NavItem {
        key: "incidents",
        href: "/incidents",
        label: "Incidents",
        icon: "!",
        min: Role::Viewer,
    },
    NavItem {
        key: "backups",
        href: "/backups",
        label: "Backups",
        icon: "⛁",
        min: Role::Viewer,
    },
    NavItem {
        key: "oncall",
        href: "/oncall",
        label: "On-call",
        icon: "☎",
        min: Role::Viewer,
    },
    NavItem {
        key: "maintenance",
        href: "/maintenance",
        label: "Maintenance",
        icon: "⚒",
        min: Role::Viewer,
    },
];

const ADMIN_NAV: &[NavItem] = &[
    NavItem {
        key: "inventory",
        href: "/inventory",
        label: "Inventory import",
        icon: "⇪",
        min: Role::Admin,
    },
    NavItem {
        key: "contacts",
        href: "/admin/contacts",
        label: "Contacts & escalation",
        icon: "☏",
        min: Role::Admin,
    },
    NavItem {
        key: "channels",
        href: "/admin/channels",
        label: "Notification channels",
        icon: "✉",
        min: Role::Admin,
    },
    NavItem {
        key: "users",
        href: "/admin/users",
        label: "Users",
        icon: "☺",
        min: Role::Admin,
    },
    NavItem {
        key: "tokens",
        href: "/admin/tokens",
        label: "API tokens",
        icon: "◇",
        min: Role::Admin,
    },
    NavItem {
        key: "audit",
        href: "/admin/audit",
        label: "Audit log",
        icon: "☰",
        min: Role::Admin,
    },
];

/// The minimum role a path needs (the API refuses the rest anyway).
pub fn required_role(path: &str) -> Role {
    if path.starts_with("/admin")
        || path == "/inventory"
        || path.starts_with("/inventory/")
        || path == "/runbooks/new"
        || (path.starts_with("/runbooks/") && path.ends_with("/edit"))
    {
        Role::Admin
    } else if path.starts_with("/approvals") {
        Role::Operator
    } else {
        Role::Viewer
    }
}

fn nav_links(
    items: &'static [NavItem],
    role: Role,
    close: impl Fn() + Copy + 'static,
) -> impl IntoView {
    items
        .iter()
        .filter(move |i| role >= i.min)
        .map(move |i| {
            view! {
                <A href=i.href attr:class="nav-link" attr:data-testid=format!("nav-{}", i.key) on:click=move |_| close()>
                    <span class="nav-icon" aria-hidden="true">{i.icon}</span>
                    <span>{i.label}</span>
                    {(i.key == "approvals").then(|| view! { <crate::approvals::ApprovalsBadge/> })}
                </A>
            }
        })
        .collect_view()
}

#[component]
pub fn Shell() -> impl IntoView {
    let session = use_session();
    let location = use_location();
    let menu_open = RwSignal::new(false);

    Effect::new(move |_| match session.0.get() {
        Some(None) => {
            let here = location.pathname.get_untracked();
            go(&format!(
                "/login?next={}",
                js_sys::encode_uri_component(&here)
            ));
        }
        Some(Some(me)) if me.must_change_password => go("/change-password"),
        _ => {}
    });

    let logout = move |_| {
        // Every live stream closes now, before the login page shows (and
        // frees its connection for the logout request).
        crate::live::close_all();
        leptos::task::spawn_local(async move {
            let _ = crate::api::auth::logout().await;
            go("/login");
        });
    };

    move || match session.0.get() {
        None | Some(None) => {
            view! { <div class="boot"><crate::ui::Loading rows=4/></div> }.into_any()
        }
        Some(Some(me)) => {
            let role = me.role;
            // The approvals badge in the navigation (those who may vote).
            if role >= Role::Operator {
                crate::approvals::ApprovalBadge::start();
            }
            let close = move || menu_open.set(false);
            let allowed = move || role >= required_role(&location.pathname.get());
            view! {
                <div class="layout" class:menu-open=move || menu_open.get()>
                    <aside class="sidebar">
                        <div class="brand"><crate::ui::Logo/>"Opsdeck"</div>
                        <nav aria-label="Main">
                            {nav_links(MAIN_NAV, role, close)}
                            {(role >= Role::Admin).then(|| view! {
                                <div class="nav-group">"Admin"</div>
                                {nav_links(ADMIN_NAV, role, close)}
                            })}
                        </nav>
                    </aside>
                    <div class="main">
                        <header class="topbar">
                            <button class="btn btn-ghost menu-toggle" aria-label="Menu" on:click=move |_| menu_open.update(|o| *o = !*o)>"☰"</button>
                            <crate::dashboard::TopbarStatus/>
                            <span class="spacer"></span>
                            <button class="btn btn-ghost" aria-label="Toggle dark mode" title="Toggle dark mode" on:click=move |_| crate::ui::toggle_theme()>"◐"</button>
                            <A href="/account" attr:class="btn btn-ghost" attr:title="My account">
                                {me.username.clone()}" "<span class="role-badge">{role.as_str()}</span>
                            </A>
                            <button class="btn" data-testid="logout" on:click=logout>"Log out"</button>
                        </header>
                        <crate::maintenance::Banner/>
                        <main class="content">
                            <Show when=allowed fallback=|| view! {
                                <h1>"No access"</h1>
                                <div class="state state-empty" data-testid="no-access">
                                    <span class="state-icon" aria-hidden="true">"⊘"</span>
                                    <div><strong>"You don't have access to this page"</strong>
                                    <p>"Ask an admin if you need it."</p></div>
                                </div>
                            }>
                                <Outlet/>
                            </Show>
                        </main>
                    </div>
                </div>
            }
            .into_any()
        }
    }
}
