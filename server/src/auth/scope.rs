//! Token scopes: what an API token may do within its role.
//!
//! A token holds one or more [`TokenScope`]s, chosen when it is made; tokens
//! made before scopes existed hold `full` (the migration's default). A route
//! names the scope it accepts with the second parameter of
//! [`super::Auth`]: `Auth<Operator>` is `Auth<Operator, Standard>`, and the
//! Alertmanager webhook is `Auth<Operator, AlertsWrite>`. Sessions (people
//! in the browser) are never scoped; only tokens are checked.
//!
//! The rules (decided here, the issue named only the scopes):
//! - `full` passes every route its role allows (today's behaviour);
//! - `read` passes only `GET`/`HEAD` routes (`Standard` routes; never a
//!   write, whatever the role);
//! - `alerts:write`, `heartbeat` and `metrics:read` pass only the one route
//!   that declares them (the Alertmanager webhook, heartbeats by check id,
//!   `/metrics` on the main listener), and nothing else — not even reads.
//!
//! A token refused for its scope gets 403 `forbidden` naming the scope it
//! would need; the role check comes first.

use axum::http::Method;
use opsdeck_wire::TokenScope;

/// The scopes a route accepts (see the module docs).
pub trait ScopeRule: Send + Sync + 'static {
    /// Whether a token holding `scopes` may make this request.
    fn admits(scopes: &[TokenScope], method: &Method) -> bool;
    /// The scope to name in the refusal.
    fn needed(method: &Method) -> &'static str;
}

/// An ordinary route: `full` tokens, and `read` tokens on `GET`/`HEAD`.
pub struct Standard;
/// The Alertmanager webhook: `full` or `alerts:write`.
pub struct AlertsWrite;
/// Heartbeat pings: `full` or `heartbeat`.
pub struct Heartbeat;

fn is_read(method: &Method) -> bool {
    method == Method::GET || method == Method::HEAD
}

impl ScopeRule for Standard {
    fn admits(scopes: &[TokenScope], method: &Method) -> bool {
        scopes.contains(&TokenScope::Full)
            || (is_read(method) && scopes.contains(&TokenScope::Read))
    }
    fn needed(method: &Method) -> &'static str {
        if is_read(method) {
            "read"
        } else {
            "full"
        }
    }
}

impl ScopeRule for AlertsWrite {
    fn admits(scopes: &[TokenScope], _: &Method) -> bool {
        scopes.contains(&TokenScope::Full) || scopes.contains(&TokenScope::AlertsWrite)
    }
    fn needed(_: &Method) -> &'static str {
        "alerts:write"
    }
}

impl ScopeRule for Heartbeat {
    fn admits(scopes: &[TokenScope], _: &Method) -> bool {
        scopes.contains(&TokenScope::Full) || scopes.contains(&TokenScope::Heartbeat)
    }
    fn needed(_: &Method) -> &'static str {
        "heartbeat"
    }
}

/// Whether a token may read `/metrics` on the main listener.
pub fn admits_metrics(scopes: &[TokenScope]) -> bool {
    scopes.contains(&TokenScope::Full) || scopes.contains(&TokenScope::MetricsRead)
}

/// Stored scope names → scopes (unknown names are dropped: the table's
/// CHECK constraint allows none).
pub fn parse_stored(names: &[String]) -> Vec<TokenScope> {
    names.iter().filter_map(|n| TokenScope::parse(n)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use TokenScope as T;

    #[test]
    fn read_tokens_only_read() {
        assert!(Standard::admits(&[T::Read], &Method::GET));
        assert!(!Standard::admits(&[T::Read], &Method::POST));
        assert!(!Standard::admits(&[T::Read], &Method::DELETE));
        assert!(Standard::admits(&[T::Full], &Method::DELETE));
    }

    #[test]
    fn narrow_scopes_pass_only_their_route() {
        for s in [T::AlertsWrite, T::Heartbeat, T::MetricsRead] {
            assert!(!Standard::admits(&[s], &Method::GET), "{s:?}");
            assert!(!Standard::admits(&[s], &Method::POST), "{s:?}");
        }
        assert!(AlertsWrite::admits(&[T::AlertsWrite], &Method::POST));
        assert!(!AlertsWrite::admits(
            &[T::Read, T::Heartbeat],
            &Method::POST
        ));
        assert!(Heartbeat::admits(&[T::Heartbeat], &Method::POST));
        assert!(!Heartbeat::admits(&[T::AlertsWrite], &Method::POST));
        assert!(admits_metrics(&[T::MetricsRead]));
        assert!(!admits_metrics(&[T::Read]));
    }
}
