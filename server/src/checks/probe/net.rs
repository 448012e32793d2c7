//! TCP connect and TLS certificate expiry probes, and the error summaries
//! the other probes share.
//!
//! * [`tcp`] resolves the host, connects to its addresses in turn (the first
//!   that accepts wins) and grades the time taken, DNS included, against
//!   `warning_ms` / `critical_ms`. Nothing is sent; the socket is closed at
//!   once.
//! * [`tls`] connects, completes a TLS handshake (rustls, ring provider,
//!   TLS 1.2 and 1.3) and reads the leaf certificate's `notAfter`. The
//!   metric `days_left` (fractional days) is graded "lower is worse" against
//!   `warning_days` / `critical_days`; a certificate already expired is
//!   critical ("certificate expired 3 days ago (2026-11-19)").
//!
//! Decision: the TLS probe accepts **any** certificate
//! ([`AcceptAnyCert`]). It answers one question, "when does the certificate
//! this endpoint serves expire?", and must answer it for self-signed,
//! private-CA or wrongly named certificates too, which a verifying
//! handshake would refuse before we could read a date. Chain and name
//! validity are what an HTTP check with `tls_verify` judges. The
//! handshake signatures are still checked against the presented
//! certificate, so the date we report belongs to a key the server holds.
//! Nothing but the handshake and a `close_notify` is exchanged.
//!
//! SNI is `server_name`, else `host`; an IP address is sent as
//! `ServerName::IpAddress` (no SNI extension, as rustls does for IPs).

use std::error::Error as StdError;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use opsdeck_wire::{CheckStatus, TcpCheck, TlsCheck};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{grade_above, grade_below, Probe};

/// Connects to `host:port` and grades the connect time.
pub async fn tcp(c: &TcpCheck, timeout: Duration) -> Probe {
    let start = Instant::now();
    match tokio::time::timeout(timeout, connect(&c.host, c.port)).await {
        Err(_) => Probe::critical(timed_out(timeout)),
        Ok(Err(why)) => Probe::critical(why),
        Ok(Ok(stream)) => {
            let elapsed = start.elapsed();
            drop(stream);
            grade_latency(
                Probe::ok(format!("connected in {}", fmt_ms(elapsed))),
                elapsed,
                c.warning_ms,
                c.critical_ms,
            )
        }
    }
}

/// Connects, performs a TLS handshake and grades the days left before the
/// leaf certificate expires.
pub async fn tls(c: &TlsCheck, timeout: Duration) -> Probe {
    let sni = c
        .server_name
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .unwrap_or(c.host.as_str());
    // `try_from` parses IP literals into `ServerName::IpAddress`.
    let server_name = match ServerName::try_from(sni.trim_matches(['[', ']']).to_string()) {
        Ok(n) => n,
        Err(_) => return Probe::critical(format!("invalid TLS server name \"{sni}\"")),
    };
    let start = Instant::now();
    let handshake = async {
        let stream = connect(&c.host, c.port).await?;
        let connector = TlsConnector::from(any_cert_config());
        let mut tls = connector
            .connect(server_name, stream)
            .await
            .map_err(|e| format!("TLS handshake failed: {}", describe_error(&e)))?;
        let leaf = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|c| c.as_ref().to_vec());
        // Best effort: say goodbye properly so the server logs no error.
        let _ = tls.shutdown().await;
        leaf.ok_or_else(|| "the server sent no certificate".to_string())
    };
    let der = match tokio::time::timeout(timeout, handshake).await {
        Err(_) => return Probe::critical(timed_out(timeout)),
        Ok(Err(why)) => return Probe::critical(why),
        Ok(Ok(der)) => der,
    };
    let elapsed = start.elapsed();
    let not_after = match not_after(&der) {
        Ok(t) => t,
        Err(why) => return Probe::critical(why).latency(elapsed),
    };
    grade_expiry(c, not_after, Utc::now().timestamp()).latency(elapsed)
}

/// Grades a certificate expiring at `not_after` (Unix seconds) seen at `now`.
pub(super) fn grade_expiry(c: &TlsCheck, not_after: i64, now: i64) -> Probe {
    let secs_left = not_after - now;
    let days_left = secs_left as f64 / 86_400.0;
    let date = DateTime::<Utc>::from_timestamp(not_after, 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| not_after.to_string());
    if secs_left <= 0 {
        let ago = (-secs_left) / 86_400;
        let msg = match ago {
            0 => format!("certificate expired less than a day ago ({date})"),
            1 => format!("certificate expired 1 day ago ({date})"),
            n => format!("certificate expired {n} days ago ({date})"),
        };
        return Probe::critical(msg).metric("days_left", days_left);
    }
    let whole = secs_left / 86_400;
    let msg = match whole {
        0 => format!("certificate expires in less than a day ({date})"),
        1 => format!("certificate expires in 1 day ({date})"),
        n => format!("certificate expires in {n} days ({date})"),
    };
    let status = grade_below(days_left, c.warning_days as f64, c.critical_days as f64);
    Probe::new(status, msg).metric("days_left", days_left)
}

/// `notAfter` of a DER certificate, Unix seconds.
fn not_after(der: &[u8]) -> Result<i64, String> {
    use x509_parser::prelude::{FromDer, X509Certificate};
    let (_, cert) = X509Certificate::from_der(der)
        .map_err(|e| format!("cannot parse the server's certificate: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

/// A rustls client configuration that accepts any server certificate (see
/// the module docs for why), shared by all TLS probes.
fn any_cert_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let config = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .expect("the ring provider supports the default TLS versions")
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
                .with_no_client_auth();
            Arc::new(config)
        })
        .clone()
}

/// Accepts every certificate chain and name, but still verifies the
/// handshake signatures with the presented certificate's key.
///
/// Only for the expiry probe: it reads dates, it does not trust the peer.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Resolves `host` and connects to its addresses in turn; the error is a
/// one-line summary ("connection refused", "cannot resolve db.local").
async fn connect(host: &str, port: u16) -> Result<TcpStream, String> {
    let host = host.trim();
    if host.is_empty() {
        return Err("no host given".into());
    }
    // Accept "[::1]" as well as "::1".
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match tokio::net::lookup_host((bare, port)).await {
        Ok(a) => a.collect(),
        Err(_) => return Err(format!("cannot resolve {bare}")),
    };
    if addrs.is_empty() {
        return Err(format!("cannot resolve {bare}"));
    }
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    Err(last
        .map(|e| describe_io(&e))
        .unwrap_or_else(|| "cannot connect".into()))
}

/// Adds the latency to `probe` and grades it against the thresholds (ms).
pub(super) fn grade_latency(
    probe: Probe,
    elapsed: Duration,
    warning_ms: u32,
    critical_ms: u32,
) -> Probe {
    let ms = elapsed.as_secs_f64() * 1000.0;
    let status = grade_above(ms, warning_ms as f64, critical_ms as f64);
    let why = match status {
        CheckStatus::Critical => {
            format!("slow: {} (critical at {critical_ms} ms)", fmt_ms(elapsed))
        }
        _ => format!("slow: {} (warning at {warning_ms} ms)", fmt_ms(elapsed)),
    };
    probe.latency(elapsed).at_least(status, why)
}

/// "12 ms", or "0.4 ms" under one millisecond.
pub(super) fn fmt_ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{} ms", ms.round() as u64)
    }
}

/// The message of a probe cut short by its timeout.
pub(super) fn timed_out(timeout: Duration) -> String {
    format!("timed out after {} ms", timeout.as_millis())
}

/// A one-line summary of an error and its causes: the first cause we
/// recognise (an I/O error kind, a TLS error), else the innermost message.
pub(super) fn describe_error(err: &(dyn StdError + 'static)) -> String {
    let mut cur: Option<&(dyn StdError + 'static)> = Some(err);
    let mut innermost = err;
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            // A custom io::Error hides its payload from `source()`.
            if let Some(inner) = io.get_ref() {
                if known_kind(io.kind()).is_none() {
                    return describe_error(inner);
                }
            }
            return describe_io(io);
        }
        if let Some(tls) = e.downcast_ref::<rustls::Error>() {
            return describe_tls(tls);
        }
        innermost = e;
        cur = e.source();
    }
    one_line(&innermost.to_string())
}

/// A one-line summary of an I/O error.
pub(super) fn describe_io(e: &io::Error) -> String {
    if let Some(s) = known_kind(e.kind()) {
        return s.to_string();
    }
    if let Some(inner) = e.get_ref() {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return describe_tls(tls);
        }
    }
    let s = e.to_string();
    if s.contains("failed to lookup address") {
        return "cannot resolve host".into();
    }
    // "Connection refused (os error 111)" -> "Connection refused"
    let s = match s.find(" (os error") {
        Some(i) => s[..i].to_string(),
        None => s,
    };
    one_line(&s)
}

fn known_kind(kind: io::ErrorKind) -> Option<&'static str> {
    use io::ErrorKind::*;
    Some(match kind {
        ConnectionRefused => "connection refused",
        ConnectionReset => "connection reset by peer",
        ConnectionAborted => "connection aborted",
        TimedOut => "timed out",
        UnexpectedEof => "connection closed unexpectedly",
        BrokenPipe => "connection closed (broken pipe)",
        NotConnected => "not connected",
        HostUnreachable => "host unreachable",
        NetworkUnreachable => "network unreachable",
        AddrNotAvailable => "address not available",
        _ => return None,
    })
}

fn describe_tls(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(ce) => match ce {
            CertificateError::UnknownIssuer => {
                "TLS certificate not trusted (unknown issuer)".into()
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "TLS certificate expired".into()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "TLS certificate not valid yet".into()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                "TLS certificate not valid for this host name".into()
            }
            other => one_line(&format!("invalid TLS certificate: {other:?}")),
        },
        rustls::Error::AlertReceived(alert) => {
            format!("TLS handshake refused by the server ({alert:?})")
        }
        other => one_line(&format!("TLS error: {other}")),
    }
}

/// The first line of `s`, at most 200 characters.
pub(super) fn one_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or("").trim();
    if line.chars().count() > 200 {
        let cut: String = line.chars().take(199).collect();
        format!("{cut}…")
    } else {
        line.to_string()
    }
}

/// In-process TLS servers for the tests of this module and of `http`.
#[cfg(test)]
pub(super) mod test_tls {
    use std::sync::Arc;

    use chrono::{Datelike, Utc};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::TlsAcceptor;

    /// An acceptor serving a fresh self-signed certificate for `localhost`
    /// and 127.0.0.1 that expires at midnight UTC `days` days from today
    /// (negative: in the past).
    pub fn acceptor(days: i64) -> TlsAcceptor {
        let end = Utc::now() + chrono::Duration::days(days);
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
                .unwrap();
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(end.year(), end.month() as u8, end.day() as u8);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let cert_der: CertificateDer<'static> = cert.der().clone();
        let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![cert_der], key_der)
            .unwrap();
        TlsAcceptor::from(Arc::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    fn tcp_check(port: u16) -> TcpCheck {
        TcpCheck {
            host: "127.0.0.1".into(),
            port,
            warning_ms: 1000,
            critical_ms: 3000,
        }
    }

    fn tls_check(port: u16) -> TlsCheck {
        TlsCheck {
            host: "127.0.0.1".into(),
            port,
            server_name: Some("localhost".into()),
            warning_days: 30,
            critical_days: 7,
        }
    }

    fn metric(p: &Probe, name: &str) -> Option<f64> {
        p.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    /// A port nothing listens on (bound, then released).
    async fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        port
    }

    /// Serves TLS with a certificate expiring in `days` days; returns the port.
    async fn tls_server(days: i64) -> u16 {
        let acceptor = test_tls::acceptor(days);
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    if let Ok(mut tls) = acceptor.accept(s).await {
                        let mut buf = [0u8; 64];
                        let _ = tokio::io::AsyncReadExt::read(&mut tls, &mut buf).await;
                    }
                });
            }
        });
        port
    }

    #[tokio::test]
    async fn tcp_open_port_is_ok_with_latency() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { while l.accept().await.is_ok() {} });
        let p = tcp(&tcp_check(port), Duration::from_secs(2)).await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");
        assert!(p.message.starts_with("connected in "), "{}", p.message);
        assert!(p.latency_ms.is_some());
        assert!(metric(&p, "latency_ms").is_some());
    }

    #[tokio::test]
    async fn tcp_refused_port_is_critical() {
        let port = closed_port().await;
        let p = tcp(&tcp_check(port), Duration::from_secs(2)).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "connection refused");
        assert!(p.latency_ms.is_none());
    }

    #[tokio::test]
    async fn tcp_latency_over_thresholds_is_graded() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move { while l.accept().await.is_ok() {} });
        // Any connect takes >= 0 ms: thresholds at 0 make it critical.
        let c = TcpCheck {
            warning_ms: 0,
            critical_ms: 0,
            ..tcp_check(port)
        };
        let p = tcp(&c, Duration::from_secs(2)).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(p.message.contains("critical at 0 ms"), "{}", p.message);
    }

    #[tokio::test]
    async fn tcp_unresolvable_host_is_critical() {
        let c = TcpCheck {
            host: "no-such-host.invalid".into(),
            ..tcp_check(80)
        };
        let p = tcp(&c, Duration::from_secs(5)).await;
        assert_eq!(p.status, CheckStatus::Critical);
        // Either resolution fails or (sandboxed DNS) it times out.
        assert!(
            p.message.starts_with("cannot resolve") || p.message.starts_with("timed out"),
            "{}",
            p.message
        );
    }

    #[tokio::test]
    async fn tls_cert_expiring_in_3_days_is_critical() {
        let port = tls_server(3).await;
        let p = tls(&tls_check(port), Duration::from_secs(5)).await;
        assert_eq!(p.status, CheckStatus::Critical, "{p:?}");
        let days = metric(&p, "days_left").unwrap();
        assert!((1.9..=3.0).contains(&days), "{days}");
        assert!(
            p.message.starts_with("certificate expires in 2 days ("),
            "{}",
            p.message
        );
        assert!(p.latency_ms.is_some());
    }

    #[tokio::test]
    async fn tls_cert_expiring_in_20_days_is_warning() {
        let port = tls_server(20).await;
        let p = tls(&tls_check(port), Duration::from_secs(5)).await;
        assert_eq!(p.status, CheckStatus::Warning, "{p:?}");
        let days = metric(&p, "days_left").unwrap();
        assert!((18.9..=20.0).contains(&days), "{days}");
        assert!(
            p.message.contains("certificate expires in 19 days"),
            "{}",
            p.message
        );
    }

    #[tokio::test]
    async fn tls_cert_far_from_expiry_is_ok_and_sni_may_be_an_ip() {
        let port = tls_server(200).await;
        let c = TlsCheck {
            server_name: None,
            ..tls_check(port)
        };
        let p = tls(&c, Duration::from_secs(5)).await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");
        assert!(metric(&p, "days_left").unwrap() > 198.0);
    }

    #[tokio::test]
    async fn tls_expired_cert_is_critical() {
        let port = tls_server(-3).await;
        let p = tls(&tls_check(port), Duration::from_secs(5)).await;
        assert_eq!(p.status, CheckStatus::Critical, "{p:?}");
        assert!(
            p.message.starts_with("certificate expired 3 days ago ("),
            "{}",
            p.message
        );
        assert!(metric(&p, "days_left").unwrap() < 0.0);
    }

    #[tokio::test]
    async fn tls_against_plain_tcp_is_critical() {
        // A server that answers garbage instead of a ServerHello.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
            }
        });
        let p = tls(&tls_check(port), Duration::from_secs(5)).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(
            p.message.starts_with("TLS handshake failed"),
            "{}",
            p.message
        );
    }

    #[tokio::test]
    async fn tls_refused_and_silent_servers_are_critical() {
        let port = closed_port().await;
        let p = tls(&tls_check(port), Duration::from_secs(2)).await;
        assert_eq!(
            (p.status, p.message.as_str()),
            (CheckStatus::Critical, "connection refused")
        );

        // Accepts but never answers the ClientHello.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let p = tls(&tls_check(port), Duration::from_millis(300)).await;
        assert_eq!(
            (p.status, p.message.as_str()),
            (CheckStatus::Critical, "timed out after 300 ms")
        );
    }

    #[test]
    fn expiry_grading_boundaries() {
        let c = tls_check(443);
        let now = 1_800_000_000;
        let day = 86_400;
        let g = |secs: i64| grade_expiry(&c, now + secs, now);
        assert_eq!(g(31 * day).status, CheckStatus::Ok);
        assert_eq!(g(30 * day).status, CheckStatus::Warning);
        assert_eq!(g(8 * day).status, CheckStatus::Warning);
        assert_eq!(g(7 * day).status, CheckStatus::Critical);
        assert_eq!(
            g(3600).message.split(" (").next(),
            Some("certificate expires in less than a day")
        );
        assert_eq!(
            g(day + 5).message.split(" (").next(),
            Some("certificate expires in 1 day")
        );
        let expired = g(-2 * day - 10);
        assert_eq!(expired.status, CheckStatus::Critical);
        assert_eq!(
            expired.message,
            "certificate expired 2 days ago (2027-01-13)"
        );
        assert_eq!(g(0).status, CheckStatus::Critical);
    }

    #[test]
    fn io_errors_are_summarised_in_one_line() {
        let e = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(describe_io(&e), "connection refused");
        let e = io::Error::from_raw_os_error(104); // ECONNRESET on Linux
        assert_eq!(describe_io(&e), "connection reset by peer");
        let e = io::Error::other("first line\nsecond line");
        assert_eq!(describe_error(&e), "first line");
        let tls = io::Error::new(
            io::ErrorKind::InvalidData,
            rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer),
        );
        assert_eq!(
            describe_error(&tls),
            "TLS certificate not trusted (unknown issuer)"
        );
        assert_eq!(one_line(&"x".repeat(500)).chars().count(), 200);
    }
}
