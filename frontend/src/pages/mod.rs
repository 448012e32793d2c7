//! The pages. [`auth`]: login and password change (outside the shell);
//! [`account`]: the user's own account; [`overview`]: the dashboard, the
//! capabilities still to come and the not-found page; [`users`], [`tokens`]
//! and [`audit`]: the admin pages.

pub mod account;
pub mod audit;
pub mod auth;
pub mod overview;
pub mod tokens;
pub mod users;

use opsdeck_wire::Role;

/// Parses a role from a `<select>` value.
pub fn role_from(s: &str) -> Role {
    match s {
        "admin" => Role::Admin,
        "operator" => Role::Operator,
        _ => Role::Viewer,
    }
}

/// What each role may do, for the role pickers.
pub fn role_help(role: Role) -> &'static str {
    match role {
        Role::Viewer => "watches status, reads incidents and reports",
        Role::Operator => "runs runbooks and actions, works incidents, approves",
        Role::Admin => "everything, plus users, tokens and definitions",
    }
}
