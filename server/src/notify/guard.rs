//! The SSRF guard as notifications use it: [`crate::net::guard`] under the
//! notifications' policy (`notify_allow_link_local`), and the
//! notifications' HTTP client (guarded resolver, no redirects, no proxies).
//! The rules themselves are documented in `net::guard`.

use std::net::SocketAddr;
use std::sync::Arc;

use reqwest::Url;

use crate::net::guard::{self as net, GuardedResolver, Policy};
pub use crate::net::guard::{refusal_in, Refused};

/// Checks a channel URL (save and send time): http(s), a host, no
/// userinfo, IP-literal hosts and metadata host names.
pub fn check_url(url: &str, allow_link_local: bool) -> Result<Url, String> {
    net::check_url(url, Policy::notify(allow_link_local))
}

/// Checks an SMTP host as typed.
pub fn check_smtp_host(host: &str, allow_link_local: bool) -> Result<(), String> {
    net::check_smtp_host(host, Policy::notify(allow_link_local))
}

/// Resolves an SMTP host and keeps the allowed addresses.
pub async fn resolve_checked(
    host: &str,
    port: u16,
    allow_link_local: bool,
) -> Result<Vec<SocketAddr>, String> {
    net::resolve_checked(host, port, Policy::notify(allow_link_local)).await
}

/// The host of a URL for messages (never its path or query).
pub fn host_of(url: &str) -> String {
    net::host_of(url)
}

/// The HTTP client of notifications for this setting: the guarded
/// resolver, no redirects, no proxies. Built once per setting and shared
/// (a `Client` is a handle to its connection pool).
pub fn client(allow_link_local: bool) -> reqwest::Client {
    static PLAIN: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    static LINK_LOCAL: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let cell = if allow_link_local {
        &LINK_LOCAL
    } else {
        &PLAIN
    };
    cell.get_or_init(|| {
        reqwest::Client::builder()
            .user_agent(concat!("Opsdeck-Notify/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver::new(Policy::notify(
                allow_link_local,
            ))))
            .connect_timeout(std::time::Duration::from_secs(10))
            .build()
            .expect("the notification HTTP client builds (static configuration)")
    })
    .clone()
}
