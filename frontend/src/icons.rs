//! Line icons drawn inline as SVG (no icon font, no extra requests, nothing
//! the CSP has to allow). Stroke and size come from the `.icon` CSS class, so
//! an icon takes the colour of its text. Icons are decorative
//! (`aria-hidden`): the word next to them carries the meaning.

use leptos::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IconName {
    Dashboard,
    Services,
    Runbooks,
    Approvals,
    Incidents,
    Backups,
    OnCall,
    Maintenance,
    Users,
    Token,
    Audit,
    Sun,
    Moon,
    Menu,
    Close,
    Logout,
    CheckCircle,
    Warning,
    XCircle,
    Ban,
    Question,
    Plus,
    Copy,
    Refresh,
    Shield,
    Search,
    ChevronRight,
    ChevronDown,
    Lock,
    Compass,
    Info,
}

impl IconName {
    fn path(self) -> &'static str {
        match self {
            IconName::Dashboard => "M3 3h7v9H3z M14 3h7v5h-7z M14 12h7v9h-7z M3 16h7v5H3z",
            IconName::Services => "M4 4h16v6H4z M4 14h16v6H4z M8 7h.01 M8 17h.01",
            IconName::Runbooks => "M4 17l6-6-6-6 M12 19h8",
            IconName::Approvals => "M9 11l3 3L21 5 M21 12v7a2 2 0 0 1-2 2H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h11",
            IconName::Incidents | IconName::Warning => {
                "M10.3 3.9L1.8 18a2 2 0 0 0 1.7 3h17a2 2 0 0 0 1.7-3L13.7 3.9a2 2 0 0 0-3.4 0z M12 9v4 M12 17h.01"
            }
            IconName::Backups => {
                "M3 5c0-1.7 4-3 9-3s9 1.3 9 3-4 3-9 3-9-1.3-9-3z M3 5v14c0 1.7 4 3 9 3s9-1.3 9-3V5 M3 12c0 1.7 4 3 9 3s9-1.3 9-3"
            }
            IconName::OnCall => "M18 8A6 6 0 0 0 6 8c0 7-3 9-3 9h18s-3-2-3-9 M13.7 21a2 2 0 0 1-3.4 0",
            IconName::Maintenance => "M3 9h18v6H3z M7 9l-3 6 M13 9l-3 6 M19 9l-3 6 M6 15v6 M18 15v6 M6 9V5 M18 9V5",
            IconName::Users => "M12 12a4 4 0 1 0 0-8 4 4 0 0 0 0 8z M4 21a8 8 0 0 1 16 0",
            IconName::Token => "M8 21a5 5 0 1 0 0-10 5 5 0 0 0 0 10z M11.5 12.5L21 3 M17 7l3 3 M14.5 9.5l2 2",
            IconName::Audit => "M5 2h9l5 5v15H5z M14 2v5h5 M8 12h8 M8 16h8",
            IconName::Sun => {
                "M12 17a5 5 0 1 0 0-10 5 5 0 0 0 0 10z M12 1v2 M12 21v2 M4.2 4.2l1.4 1.4 M18.4 18.4l1.4 1.4 M1 12h2 M21 12h2 M4.2 19.8l1.4-1.4 M18.4 5.6l1.4-1.4"
            }
            IconName::Moon => "M21 12.8A9 9 0 1 1 11.2 3a7 7 0 0 0 9.8 9.8z",
            IconName::Menu => "M3 6h18 M3 12h18 M3 18h18",
            IconName::Close => "M18 6L6 18 M6 6l12 12",
            IconName::Logout => "M9 21H5a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2h4 M16 17l5-5-5-5 M21 12H9",
            IconName::CheckCircle => "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z M8 12l3 3 5-6",
            IconName::XCircle => "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z M15 9l-6 6 M9 9l6 6",
            IconName::Ban => "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z M4.9 4.9l14.2 14.2",
            IconName::Question => {
                "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z M9.1 9a3 3 0 0 1 5.8 1c0 2-3 3-3 3 M12 17h.01"
            }
            IconName::Plus => "M12 5v14 M5 12h14",
            IconName::Copy => "M9 9h11v11H9z M5 15H4V4h11v1",
            IconName::Refresh => "M21 12a9 9 0 1 1-2.6-6.4L21 8 M21 3v5h-5",
            IconName::Shield => "M12 22s8-4 8-10V5l-8-3-8 3v7c0 6 8 10 8 10z M9 12l2 2 4-4",
            IconName::Search => "M11 19a8 8 0 1 0 0-16 8 8 0 0 0 0 16z M21 21l-4.3-4.3",
            IconName::ChevronRight => "M9 18l6-6-6-6",
            IconName::ChevronDown => "M6 9l6 6 6-6",
            IconName::Lock => "M5 11h14v10H5z M8 11V7a4 4 0 0 1 8 0v4",
            IconName::Compass => "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z M16 8l-2 6-6 2 2-6z",
            IconName::Info => "M12 22a10 10 0 1 0 0-20 10 10 0 0 0 0 20z M12 16v-5 M12 8h.01",
        }
    }
}

#[component]
pub fn Icon(name: IconName) -> impl IntoView {
    view! {
        <svg class="icon" viewBox="0 0 24 24" aria-hidden="true" focusable="false">
            <path d=name.path()/>
        </svg>
    }
}
