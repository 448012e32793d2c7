//! The SSRF guard of every outbound request a user can point somewhere:
//! notification channels (cf. Grafana OnCall CVE-2024-5526: a webhook URL
//! pointing at the cloud metadata service), HTTP checks and runbook `http`
//! steps (a check with `body_regex` and "Run now" reads the metadata
//! service a bit per request). One mechanism, one [`Policy`] per user of it:
//! whether link-local addresses are allowed, and which server setting lifts
//! the refusal (`notify_allow_link_local`, `checks_allow_link_local`).
//!
//! **What is refused.** Addresses:
//!
//! * always: the unspecified address (`0.0.0.0/8`, `::` — Linux connects
//!   them to the local host), multicast (`224.0.0.0/4`, `ff00::/8`) and the
//!   broadcast address `255.255.255.255`;
//! * unless the policy allows link-local: link-local `169.254.0.0/16` and
//!   `fe80::/10` (the cloud metadata services `169.254.169.254` and
//!   `fd00:ec2::254` included), Alibaba's metadata `100.100.100.200`, and
//!   the host names `metadata.google.internal` and `metadata`.
//!
//! IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`) and NAT64
//! (`64:ff9b::a.b.c.d`) IPv6 forms are judged as the IPv4 address they
//! carry. Loopback and private ranges are allowed on purpose: self-hosted
//! receivers (a chat server, an SMS gateway) live there, and monitoring
//! them is the point of a check; Opsdeck is an internal tool run by the
//! people who configure it.
//!
//! **When.** [`check_url`] (notifications: http(s) only, no userinfo) and
//! [`check_target`] (checks: the host only) judge IP-literal hosts and
//! metadata host names at save time and again before each request. Host
//! names are resolved by [`GuardedResolver`], the reqwest DNS resolver of
//! every guarded client: it drops refused addresses from the answer and
//! fails when none is left, so a name that resolves to the metadata address
//! (or is rebound to it between save and send) never gets a connection.
//! reqwest does not call the resolver for IP literals, which is why
//! literals are checked first — also on every redirect hop
//! ([`check_redirect`], for clients that follow redirects). Proxies from the
//! environment are ignored (a proxy would resolve the name itself). SMTP
//! hosts are resolved once with [`resolve_checked`] and lettre connects to
//! the checked address.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::Url;

/// Whether link-local addresses may be contacted, and the server setting
/// that allows them (named in refusals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Policy {
    pub allow_link_local: bool,
    /// e.g. `notify_allow_link_local`.
    pub setting: &'static str,
}

impl Policy {
    /// Notification channels (`OPSDECK_NOTIFY_ALLOW_LINK_LOCAL`).
    pub const fn notify(allow_link_local: bool) -> Policy {
        Policy {
            allow_link_local,
            setting: "notify_allow_link_local",
        }
    }
    /// HTTP checks and runbook `http` steps (`OPSDECK_CHECKS_ALLOW_LINK_LOCAL`).
    pub const fn checks(allow_link_local: bool) -> Policy {
        Policy {
            allow_link_local,
            setting: "checks_allow_link_local",
        }
    }
}

/// Why an address or host name is refused; `link_local` refusals are lifted
/// by the policy's server setting (named in `setting`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub what: String,
    pub reason: &'static str,
    pub link_local: bool,
    pub setting: &'static str,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is {}", self.what, self.reason)?;
        if self.link_local && !self.setting.is_empty() {
            write!(
                f,
                " (refused unless the server setting {} is on)",
                self.setting
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for Refused {}

/// The IPv4 address an IPv6 address carries (mapped, compatible, NAT64).
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let [a, b, c, d] = ip.octets()[12..16] else {
        return None;
    };
    // ::a.b.c.d (deprecated IPv4-compatible), but not :: and ::1.
    if s[..6] == [0, 0, 0, 0, 0, 0] && !(s[6] == 0 && s[7] <= 1) {
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    // 64:ff9b::/96 (NAT64 well-known prefix).
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(Ipv4Addr::new(a, b, c, d));
    }
    None
}

/// Judges one address: `Some` when it is refused (whatever the setting for
/// `link_local` refusals; see [`allowed`]).
pub fn classify(ip: IpAddr) -> Option<Refused> {
    let refuse = |reason, link_local| {
        Some(Refused {
            what: ip.to_string(),
            reason,
            link_local,
            setting: "",
        })
    };
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => embedded_v4(v6),
    };
    if let Some(v4) = v4 {
        let o = v4.octets();
        return if o[0] == 0 {
            refuse("an unspecified (\"this network\") address", false)
        } else if v4.is_broadcast() {
            refuse("the broadcast address", false)
        } else if v4.is_multicast() {
            refuse("a multicast address", false)
        } else if v4 == Ipv4Addr::new(169, 254, 169, 254) {
            refuse("the cloud metadata address", true)
        } else if v4.is_link_local() {
            refuse(
                "a link-local address (cloud metadata services live there)",
                true,
            )
        } else if v4 == Ipv4Addr::new(100, 100, 100, 200) {
            refuse("a cloud metadata address", true)
        } else {
            None
        };
    }
    let IpAddr::V6(v6) = ip else { return None };
    let s = v6.segments();
    if v6.is_unspecified() {
        refuse("the unspecified address", false)
    } else if v6.is_multicast() {
        refuse("a multicast address", false)
    } else if (s[0] & 0xffc0) == 0xfe80 {
        refuse(
            "a link-local address (cloud metadata services live there)",
            true,
        )
    } else if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
        refuse("the cloud metadata address", true)
    } else {
        None
    }
}

/// `Err` when `ip` may not be contacted under this policy.
pub fn allowed(ip: IpAddr, policy: Policy) -> Result<(), Refused> {
    match classify(ip) {
        Some(r) if r.link_local && policy.allow_link_local => Ok(()),
        Some(r) => Err(Refused {
            setting: policy.setting,
            ..r
        }),
        None => Ok(()),
    }
}

/// Host names of metadata services (judged like link-local addresses).
pub fn check_host_name(host: &str, policy: Policy) -> Result<(), Refused> {
    let h = host.trim_end_matches('.').to_ascii_lowercase();
    if !policy.allow_link_local && (h == "metadata.google.internal" || h == "metadata") {
        return Err(Refused {
            what: h,
            reason: "a cloud metadata host name",
            link_local: true,
            setting: policy.setting,
        });
    }
    Ok(())
}

/// Judges the host of `url` (an IP literal or a metadata host name); host
/// names are judged again, by their DNS answers, in [`GuardedResolver`].
pub fn check_target(url: &Url, policy: Policy) -> Result<(), Refused> {
    // `host_str` is normalised (numeric IPv4 forms become dotted quads).
    let host = url.host_str().unwrap_or_default();
    match parse_ip_literal(host) {
        Some(ip) => allowed(ip, policy),
        None => check_host_name(host, policy),
    }
}

/// For redirect policies: `Err` when a redirect leads to a refused host
/// (an IP literal — reqwest does not resolve those — or a metadata name).
pub fn check_redirect(url: &Url, policy: Policy) -> Result<(), Refused> {
    check_target(url, policy).map_err(|mut r| {
        r.what = format!("redirect target {}", r.what);
        r
    })
}

/// Keeps the allowed addresses of a resolver answer; `Err` (naming the
/// first refusal) when none is left.
pub fn filter_addrs(
    addrs: impl IntoIterator<Item = SocketAddr>,
    policy: Policy,
) -> Result<Vec<SocketAddr>, Refused> {
    let mut kept = Vec::new();
    let mut first = None;
    for a in addrs {
        match allowed(a.ip(), policy) {
            Ok(()) => kept.push(a),
            Err(r) => {
                first.get_or_insert(r);
            }
        }
    }
    match (kept.is_empty(), first) {
        (true, Some(r)) => Err(r),
        _ => Ok(kept),
    }
}

/// Checks an outbound URL (save and send time): scheme, host, no
/// userinfo, IP-literal hosts and metadata host names. Messages never
/// contain the URL itself (chat webhook URLs are credentials), only its host.
pub fn check_url(url: &str, policy: Policy) -> Result<Url, String> {
    let url = url.trim();
    if url.is_empty() {
        return Err("required".into());
    }
    if url.len() > 2048 {
        return Err("at most 2048 characters".into());
    }
    let parsed = Url::parse(url).map_err(|e| format!("not a valid URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "only http:// and https:// URLs are allowed, not {}:",
            parsed.scheme()
        ));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "no user name or password in the URL (put a token in the channel's secret)".into(),
        );
    }
    // `host_str` is normalised (numeric IPv4 forms become dotted quads,
    // IPv6 literals keep their brackets).
    let host = parsed.host_str().unwrap_or_default();
    if host.is_empty() {
        return Err("the URL has no host".into());
    }
    match parse_ip_literal(host) {
        Some(ip) => allowed(ip, policy).map_err(|r| r.to_string())?,
        None => check_host_name(host, policy).map_err(|r| r.to_string())?,
    }
    Ok(parsed)
}

/// The host of a URL for messages and `notifications.address` (never the
/// path or query: a chat webhook's path is its credential).
pub fn host_of(url: &str) -> String {
    Url::parse(url.trim())
        .ok()
        .and_then(|u| u.host_str().map(str::to_owned))
        .unwrap_or_else(|| "(invalid URL)".into())
}

/// Checks an SMTP host as typed (a host name or an IP literal, no scheme,
/// no port, no spaces).
pub fn check_smtp_host(host: &str, policy: Policy) -> Result<(), String> {
    let h = host.trim();
    if h.is_empty() {
        return Err("required".into());
    }
    if h.len() > 253 || h.contains(['/', ' ', '@', '?', '#']) || h.chars().any(char::is_control) {
        return Err("a host name or an IP address (no scheme, port or path)".into());
    }
    if let Some(ip) = parse_ip_literal(h) {
        return allowed(ip, policy).map_err(|r| r.to_string());
    }
    if h.contains(':') {
        return Err("a host name or an IP address (put the port in smtp_port)".into());
    }
    check_host_name(h, policy).map_err(|r| r.to_string())
}

fn parse_ip_literal(h: &str) -> Option<IpAddr> {
    h.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok()
}

/// Resolves `host:port` (host name or IP literal) and keeps the allowed
/// addresses; `Err` with a message when nothing may be contacted.
pub async fn resolve_checked(
    host: &str,
    port: u16,
    policy: Policy,
) -> Result<Vec<SocketAddr>, String> {
    let h = host.trim();
    if let Some(ip) = parse_ip_literal(h) {
        allowed(ip, policy).map_err(|r| format!("refused: {r}"))?;
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    check_host_name(h, policy).map_err(|r| format!("refused: {r}"))?;
    let addrs = tokio::net::lookup_host((h, port))
        .await
        .map_err(|e| format!("cannot resolve {h}: {e}"))?;
    filter_addrs(addrs, policy).map_err(|r| format!("refused: {h} resolves to {r}"))
}

/// How a [`GuardedResolver`] looks names up: the system resolver, or (in
/// tests) a fixed answer, so the DNS path is exercised without a network.
pub type Lookup = Arc<
    dyn Fn(String) -> futures::future::BoxFuture<'static, std::io::Result<Vec<SocketAddr>>>
        + Send
        + Sync,
>;

/// reqwest's DNS resolver for guarded clients: tokio's resolver (or an
/// injected [`Lookup`]), minus refused addresses (see the module
/// documentation).
#[derive(Clone)]
pub struct GuardedResolver {
    pub policy: Policy,
    pub lookup: Option<Lookup>,
}

impl GuardedResolver {
    pub fn new(policy: Policy) -> GuardedResolver {
        GuardedResolver {
            policy,
            lookup: None,
        }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let policy = self.policy;
        let lookup = self.lookup.clone();
        Box::pin(async move {
            check_host_name(&host, policy)?;
            let addrs: Vec<SocketAddr> = match lookup {
                Some(l) => l(host.clone()).await?,
                None => tokio::net::lookup_host((host.as_str(), 0)).await?.collect(),
            };
            let kept = filter_addrs(addrs, policy).map_err(|mut r| {
                r.what = format!("{host} ({})", r.what);
                r
            })?;
            let addrs: Addrs = Box::new(kept.into_iter());
            Ok(addrs)
        })
    }
}

/// A refusal anywhere in an error's source chain (the resolver's error
/// arrives wrapped by hyper and reqwest).
pub fn refusal_in(e: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r.clone());
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn classifier_refuses_link_local_metadata_and_friends() {
        for (a, link_local) in [
            ("169.254.169.254", true),
            ("169.254.0.1", true),
            ("169.254.255.255", true),
            ("100.100.100.200", true),
            ("fe80::1", true),
            ("febf::1", true),
            ("fd00:ec2::254", true),
            ("::ffff:169.254.169.254", true),
            ("::169.254.169.254", true),
            ("64:ff9b::169.254.169.254", true),
            ("0.0.0.0", false),
            ("0.1.2.3", false),
            ("::", false),
            ("::ffff:0.0.0.0", false),
            ("224.0.0.1", false),
            ("239.255.255.250", false),
            ("ff02::1", false),
            ("255.255.255.255", false),
        ] {
            let r = classify(ip(a)).unwrap_or_else(|| panic!("{a} must be refused"));
            assert_eq!(r.link_local, link_local, "{a}: {r}");
            assert_eq!(
                allowed(ip(a), Policy::notify(true)).is_ok(),
                link_local,
                "{a}: the setting lifts only link-local refusals"
            );
            assert!(allowed(ip(a), Policy::notify(false)).is_err());
        }
    }

    #[test]
    fn classifier_allows_loopback_private_and_public() {
        for a in [
            "127.0.0.1",
            "::1",
            "::ffff:127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.10",
            "100.64.0.1",
            "100.100.100.201",
            "169.253.255.255",
            "169.255.0.1",
            "fc00::1",
            "fd00:ec2::253",
            "fec0::1",
            "8.8.8.8",
            "2001:4860:4860::8888",
        ] {
            assert_eq!(classify(ip(a)), None, "{a} must be allowed");
        }
    }

    #[test]
    fn urls_are_checked_at_the_boundary() {
        for bad in [
            "",
            "file:///etc/passwd",
            "ftp://example.com/x",
            "gopher://example.com",
            "javascript:alert(1)",
            "http://user:pw@example.com/hook",
            "https://token@example.com/hook",
            "http://169.254.169.254/latest/meta-data/",
            "http://[fe80::1]/",
            "http://[::ffff:169.254.169.254]/",
            "http://[fd00:ec2::254]/",
            "http://0.0.0.0:8080/",
            "http://metadata.google.internal/computeMetadata/v1/",
            "http://METADATA/",
            "http://metadata./",
            "http://100.100.100.200/",
            // WHATWG parsing normalises numeric hosts: still the metadata address.
            "http://2852039166/",
            "http://0xa9.0xfe.0xa9.0xfe/",
            "not a url",
        ] {
            assert!(
                check_url(bad, Policy::notify(false)).is_err(),
                "{bad:?} must be refused"
            );
        }
        for good in [
            "http://127.0.0.1:9000/hook",
            "http://localhost/hook",
            "https://hooks.slack.com/services/T0/B0/xyz",
            "http://[::1]:8080/",
            "http://192.168.1.20/sms",
        ] {
            assert!(
                check_url(good, Policy::notify(false)).is_ok(),
                "{good:?} must be accepted"
            );
        }
        assert!(check_url("http://169.254.169.254/", Policy::notify(true)).is_ok());
        assert!(check_url("http://metadata.google.internal/", Policy::notify(true)).is_ok());
        assert!(check_url("http://0.0.0.0/", Policy::notify(true)).is_err());
        let msg = check_url("http://169.254.169.254/latest", Policy::notify(false)).unwrap_err();
        assert!(
            msg.contains("169.254.169.254") && msg.contains("metadata"),
            "{msg}"
        );
        assert!(!check_url("file:///x", Policy::notify(false))
            .unwrap_err()
            .contains("/x"));
    }

    #[test]
    fn resolver_filter_drops_refused_addresses() {
        let sa = |s: &str| SocketAddr::new(ip(s), 443);
        // A name answering with the metadata address and a good one: only
        // the good one is used.
        let kept = filter_addrs(
            [sa("169.254.169.254"), sa("10.0.0.5")],
            Policy::notify(false),
        )
        .unwrap();
        assert_eq!(kept, vec![sa("10.0.0.5")]);
        // Only refused addresses: an error naming the first.
        let err = filter_addrs(
            [sa("fe80::1"), sa("169.254.169.254")],
            Policy::notify(false),
        )
        .unwrap_err();
        assert_eq!(err.what, "fe80::1");
        assert!(filter_addrs([sa("::ffff:169.254.169.254")], Policy::notify(false)).is_err());
        // The setting lets link-local through, never the unspecified address.
        assert_eq!(
            filter_addrs([sa("169.254.169.254")], Policy::notify(true)).unwrap(),
            vec![sa("169.254.169.254")]
        );
        assert!(filter_addrs([sa("0.0.0.0")], Policy::notify(true)).is_err());
        // Loopback (self-hosted receivers) passes.
        assert_eq!(
            filter_addrs([sa("127.0.0.1"), sa("::1")], Policy::notify(false))
                .unwrap()
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn resolver_refuses_metadata_names_and_answers_localhost() {
        let r = GuardedResolver::new(Policy::notify(false));
        let err = match r.resolve("metadata.google.internal".parse().unwrap()).await {
            Ok(_) => panic!("must be refused"),
            Err(e) => e,
        };
        assert!(refusal_in(err.as_ref()).is_some(), "{err}");
        let addrs: Vec<_> = r
            .resolve("localhost".parse().unwrap())
            .await
            .map_err(|e| e.to_string())
            .unwrap()
            .collect();
        assert!(addrs.iter().all(|a| a.ip().is_loopback()) && !addrs.is_empty());
    }

    #[tokio::test]
    async fn resolver_drops_link_local_answers_of_an_injected_lookup() {
        // A name whose DNS answer is the metadata address (no network: the
        // lookup is injected), under the checks' policy.
        let lookup: Lookup = Arc::new(|host: String| {
            Box::pin(async move {
                Ok(match host.as_str() {
                    "evil.example" => vec![SocketAddr::new(ip("169.254.169.254"), 0)],
                    "v6.example" => vec![SocketAddr::new(ip("fe80::1"), 0)],
                    "mixed.example" => vec![
                        SocketAddr::new(ip("169.254.169.254"), 0),
                        SocketAddr::new(ip("10.0.0.7"), 0),
                    ],
                    _ => vec![SocketAddr::new(ip("127.0.0.1"), 0)],
                })
            }) as futures::future::BoxFuture<'static, _>
        });
        let r = GuardedResolver {
            policy: Policy::checks(false),
            lookup: Some(lookup.clone()),
        };
        for name in ["evil.example", "v6.example"] {
            let err = match r.resolve(name.parse().unwrap()).await {
                Ok(_) => panic!("{name} must be refused"),
                Err(e) => e,
            };
            let refusal = refusal_in(err.as_ref()).expect("a refusal");
            assert!(refusal.to_string().contains(name), "{refusal}");
            assert!(
                refusal.to_string().contains("checks_allow_link_local"),
                "{refusal}"
            );
        }
        let kept: Vec<_> = r
            .resolve("mixed.example".parse().unwrap())
            .await
            .map_err(|e| e.to_string())
            .unwrap()
            .collect();
        assert_eq!(kept, vec![SocketAddr::new(ip("10.0.0.7"), 0)]);
        // The setting lifts it.
        let r = GuardedResolver {
            policy: Policy::checks(true),
            lookup: Some(lookup),
        };
        assert!(r.resolve("evil.example".parse().unwrap()).await.is_ok());
    }

    #[test]
    fn targets_and_redirects_are_judged_by_host() {
        let p = Policy::checks(false);
        for bad in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[fd00:ec2::254]/",
            "http://[fe80::1]:8080/",
            "http://metadata.google.internal/",
            "http://2852039166/",
            "https://user:pw@169.254.169.254/",
        ] {
            let u = Url::parse(bad).unwrap();
            assert!(check_target(&u, p).is_err(), "{bad}");
            let msg = check_redirect(&u, p).unwrap_err().to_string();
            assert!(msg.starts_with("redirect target "), "{msg}");
        }
        for good in [
            "http://127.0.0.1:8080/",
            "http://10.0.0.1/",
            "http://[::1]/",
            "http://localhost/",
            "https://user:pw@db.internal/",
        ] {
            assert!(
                check_target(&Url::parse(good).unwrap(), p).is_ok(),
                "{good}"
            );
        }
        let u = Url::parse("http://169.254.169.254/").unwrap();
        assert!(check_target(&u, Policy::checks(true)).is_ok());
    }

    #[tokio::test]
    async fn smtp_hosts_are_resolved_and_checked() {
        assert!(
            resolve_checked("169.254.169.254", 25, Policy::notify(false))
                .await
                .is_err()
        );
        assert!(resolve_checked("[fe80::1]", 25, Policy::notify(false))
            .await
            .is_err());
        assert!(resolve_checked("metadata", 25, Policy::notify(false))
            .await
            .is_err());
        let ok = resolve_checked("127.0.0.1", 2525, Policy::notify(false))
            .await
            .unwrap();
        assert_eq!(ok, vec![SocketAddr::new(ip("127.0.0.1"), 2525)]);
        assert!(check_smtp_host("smtp.example.com", Policy::notify(false)).is_ok());
        assert!(check_smtp_host("smtp://x", Policy::notify(false)).is_err());
        assert!(check_smtp_host("smtp.example.com:25", Policy::notify(false)).is_err());
        assert!(check_smtp_host("169.254.169.254", Policy::notify(false)).is_err());
        assert!(check_smtp_host("::1", Policy::notify(false)).is_ok());
    }
}
