//! Misbehaving HTTP/TCP targets for the health-check tests, in process.
//!
//! A [`Target`] listens on `127.0.0.1:0` and serves on the Tokio runtime
//! that starts it. What it does with each request is a [`Behaviour`] that a
//! test can switch at any time ([`Target::set`]), to turn a healthy target
//! into a failing one and back. The HTTP side is deliberately minimal: it
//! reads the request head (the body, if any, is ignored), answers HTTP/1.1
//! with `Connection: close` and closes, so each request is one connection.
//!
//! A request counts as a hit ([`Target::hits`]) once its head has arrived,
//! whatever the behaviour; a bare TCP connect (a port check) counts only as
//! a connection ([`Target::connections`]). Dropping the target stops it and
//! closes every connection it holds (hanging ones too).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// What a [`Target`] does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Behaviour {
    /// `200 OK` with this body (`text/plain`).
    Ok(String),
    /// This status, with the body `status <code>\n`.
    Status(u16),
    /// `200 OK` (body `slow\n`) after this delay.
    Slow(Duration),
    /// Reads the request, then resets the connection (RST: `SO_LINGER` 0).
    Reset,
    /// Reads the request and never answers (until the client goes away or
    /// the target is dropped).
    Hang,
    /// `302 Found` with this `Location`.
    Redirect(String),
}

/// A running target; see the module docs.
pub struct Target {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

struct State {
    behaviour: Mutex<Behaviour>,
    hits: AtomicU64,
    connections: AtomicU64,
}

impl Target {
    /// Listens on a free loopback port and serves on the current Tokio
    /// runtime (panics outside one, or when no port can be bound).
    pub fn start(behaviour: Behaviour) -> Target {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a target");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let addr = listener.local_addr().expect("the target's address");
        let listener = TcpListener::from_std(listener).expect("a Tokio runtime for the target");
        let state = Arc::new(State {
            behaviour: Mutex::new(behaviour),
            hits: AtomicU64::new(0),
            connections: AtomicU64::new(0),
        });
        let task = {
            let state = state.clone();
            tokio::spawn(accept_loop(listener, move |stream| {
                let state = state.clone();
                state.connections.fetch_add(1, Ordering::SeqCst);
                handle(stream, state)
            }))
        };
        Target { addr, state, task }
    }

    /// Switches the behaviour for the requests that arrive from now on.
    pub fn set(&self, behaviour: Behaviour) {
        *self
            .state
            .behaviour
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = behaviour;
    }

    /// The current behaviour.
    pub fn behaviour(&self) -> Behaviour {
        self.state
            .behaviour
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Requests received so far (heads read), whatever the behaviour.
    pub fn hits(&self) -> u64 {
        self.state.hits.load(Ordering::SeqCst)
    }

    /// Connections accepted so far (with or without a request).
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// `127.0.0.1:<port>`
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The loopback port.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `http://127.0.0.1:<port>/`
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        // Drops the accept loop's JoinSet, which aborts every connection.
        self.task.abort();
    }
}

/// Accepts connections and runs `serve` on each, in a [`JoinSet`] owned by
/// this task: aborting the task aborts them all.
pub(crate) async fn accept_loop<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    conns.spawn(serve(stream));
                }
                // E.g. out of file descriptors: try again shortly.
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
}

async fn handle(mut stream: TcpStream, state: Arc<State>) {
    let Some(head) = read_head(&mut stream).await else {
        return;
    };
    state.hits.fetch_add(1, Ordering::SeqCst);
    let behaviour = state
        .behaviour
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .clone();
    let head_only = head.starts_with(b"HEAD ");
    match behaviour {
        Behaviour::Ok(body) => respond(&mut stream, 200, &[], &body, head_only).await,
        Behaviour::Status(code) => {
            let body = format!("status {code}\n");
            respond(&mut stream, code, &[], &body, head_only).await
        }
        Behaviour::Slow(delay) => {
            tokio::time::sleep(delay).await;
            respond(&mut stream, 200, &[], "slow\n", head_only).await
        }
        Behaviour::Reset => {
            // SO_LINGER 0: close() sends RST instead of FIN (and does not block).
            let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
            drop(stream);
        }
        Behaviour::Hang => {
            // Hold the connection until the client gives up.
            let mut buf = [0u8; 1024];
            while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
        }
        Behaviour::Redirect(location) => {
            let body = format!("see {location}\n");
            respond(
                &mut stream,
                302,
                &[("Location", &location)],
                &body,
                head_only,
            )
            .await
        }
    }
}

/// Reads up to the end of an HTTP request head (`\r\n\r\n`, at most 64 KiB);
/// `None` when the peer closes first or sends too much.
pub(crate) async fn read_head<S: AsyncRead + Unpin>(stream: &mut S) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).await.ok()?;
        if n == 0 {
            return None;
        }
        let from = head.len().saturating_sub(3);
        head.extend_from_slice(&buf[..n]);
        if head[from..].windows(4).any(|w| w == b"\r\n\r\n") {
            return Some(head);
        }
        if head.len() > 64 * 1024 {
            return None;
        }
    }
}

/// Writes an HTTP/1.1 response with `Connection: close` and shuts down the
/// write side (no body for `HEAD`).
pub(crate) async fn respond<S: AsyncWrite + Unpin>(
    stream: &mut S,
    status: u16,
    headers: &[(&str, &str)],
    body: &str,
    head_only: bool,
) {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        reason(status),
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    if !head_only {
        out.push_str(body);
    }
    if stream.write_all(out.as_bytes()).await.is_ok() {
        let _ = stream.shutdown().await;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        307 => "Temporary Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}
