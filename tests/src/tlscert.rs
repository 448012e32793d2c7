//! A TLS endpoint with a short-lived certificate, for certificate-expiry
//! checks.
//!
//! [`TlsTarget::start`] makes a self-signed certificate with `rcgen` (ECDSA
//! P-256 via ring; subject alternative names `localhost` and `127.0.0.1`)
//! that expires `valid_for_days` days from now (negative: expired already),
//! and serves it with `tokio-rustls` (ring provider, TLS 1.2 and 1.3) on
//! `127.0.0.1:0`, on the Tokio runtime that starts it. After the handshake
//! it answers any HTTP request with `200 OK` and the body `ok\n`, and closes.
//!
//! The certificate is valid from one day ago (or, for a certificate expired
//! more than a day ago, from a day before its expiry, so that `notBefore`
//! stays before `notAfter`). Both instants are whole seconds, as X.509 keeps
//! them. Dropping the target stops it and closes its connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use crate::targets::{accept_loop, read_head, respond};

const DAY: i64 = 24 * 60 * 60;

/// A running TLS endpoint; see the module docs.
pub struct TlsTarget {
    addr: SocketAddr,
    not_before: DateTime<Utc>,
    not_after: DateTime<Utc>,
    cert_der: Vec<u8>,
    cert_pem: String,
    handshakes: Arc<AtomicU64>,
    hits: Arc<AtomicU64>,
    task: JoinHandle<()>,
}

impl TlsTarget {
    /// Makes the certificate and serves it on a free loopback port, on the
    /// current Tokio runtime (panics outside one, or when the certificate
    /// or the listener cannot be made).
    pub fn start(valid_for_days: i64) -> TlsTarget {
        let now = Utc::now().timestamp();
        let not_after = now + valid_for_days * DAY;
        let not_before = (now - DAY).min(not_after - DAY);

        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("certificate parameters");
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "opsdeck test target");
        params.not_before =
            time::OffsetDateTime::from_unix_timestamp(not_before).expect("notBefore in range");
        params.not_after =
            time::OffsetDateTime::from_unix_timestamp(not_after).expect("notAfter in range");
        let key = rcgen::KeyPair::generate().expect("generating a key pair");
        let cert = params
            .self_signed(&key)
            .expect("self-signing the certificate");
        let cert_der = cert.der().to_vec();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![CertificateDer::from(cert_der.clone())],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .expect("the TLS server configuration");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a TLS target");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the target's address");
        let listener = TcpListener::from_std(listener).expect("a Tokio runtime for the target");
        let handshakes = Arc::new(AtomicU64::new(0));
        let hits = Arc::new(AtomicU64::new(0));
        let task = {
            let (handshakes, hits) = (handshakes.clone(), hits.clone());
            tokio::spawn(accept_loop(listener, move |stream| {
                serve(stream, acceptor.clone(), handshakes.clone(), hits.clone())
            }))
        };
        TlsTarget {
            addr,
            not_before: DateTime::from_timestamp(not_before, 0).expect("notBefore"),
            not_after: DateTime::from_timestamp(not_after, 0).expect("notAfter"),
            cert_der,
            cert_pem: cert.pem(),
            handshakes,
            hits,
            task,
        }
    }

    /// The certificate's `notAfter`.
    pub fn not_after(&self) -> DateTime<Utc> {
        self.not_after
    }

    /// The certificate's `notBefore`.
    pub fn not_before(&self) -> DateTime<Utc> {
        self.not_before
    }

    /// The certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The certificate, PEM (to trust it as a CA in a client).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `127.0.0.1:<port>`
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }

    /// Completed TLS handshakes so far.
    pub fn handshakes(&self) -> u64 {
        self.handshakes.load(Ordering::SeqCst)
    }

    /// HTTP requests answered so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
}

impl Drop for TlsTarget {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    stream: TcpStream,
    acceptor: TlsAcceptor,
    handshakes: Arc<AtomicU64>,
    hits: Arc<AtomicU64>,
) {
    // A client that rejects the certificate aborts the handshake: nothing
    // more to do.
    let Ok(mut tls) = acceptor.accept(stream).await else {
        return;
    };
    handshakes.fetch_add(1, Ordering::SeqCst);
    let Some(head) = read_head(&mut tls).await else {
        return;
    };
    hits.fetch_add(1, Ordering::SeqCst);
    respond(&mut tls, 200, &[], "ok\n", head.starts_with(b"HEAD ")).await;
}
