//! A relay in front of the private engine's socket: an engine registered
//! at the relay's address goes away (open connections included) when the
//! relay stops, and comes back when it starts again. It listens on a Unix
//! socket, or on a loopback TCP port (the engine then counts as remote:
//! no local log files). A slow relay also limits what the engine sends, so
//! a long read is still going when a test acts in its middle.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, UnixListener, UnixStream};
use tokio::task::JoinHandle;

enum Listen {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

/// A relay to the engine's socket: stopping it takes the "engine" away
/// (open connections included), starting it again brings it back.
pub struct Relay {
    listen: Listen,
    target: PathBuf,
    /// Bytes per second from the engine to its client; `None`: no limit.
    rate: Option<usize>,
    task: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn new(path: &Path, target: &Path) -> Relay {
        Relay {
            listen: Listen::Unix(path.to_owned()),
            target: target.to_owned(),
            rate: None,
            task: None,
        }
    }

    /// A relay that sends the engine's answers at about `bytes_per_sec`.
    pub fn slow(path: &Path, target: &Path, bytes_per_sec: usize) -> Relay {
        let mut relay = Relay::new(path, target);
        relay.rate = Some(bytes_per_sec.max(1024));
        relay
    }

    /// [`Relay::slow`] on a free loopback TCP port (see [`Relay::endpoint`]).
    pub fn slow_tcp(target: &Path, bytes_per_sec: usize) -> Relay {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port");
        let mut relay = Relay::slow(Path::new(""), target, bytes_per_sec);
        relay.listen = Listen::Tcp(port);
        relay
    }

    /// The engine endpoint to register: `unix://…` or `tcp://127.0.0.1:…`.
    pub fn endpoint(&self) -> String {
        match &self.listen {
            Listen::Unix(p) => format!("unix://{}", p.display()),
            Listen::Tcp(a) => format!("tcp://{a}"),
        }
    }

    pub fn start(&mut self) {
        self.stop();
        let target = self.target.clone();
        let rate = self.rate;
        let listener = match &self.listen {
            Listen::Unix(p) => {
                Either::Unix(UnixListener::bind(p).expect("binding the relay socket"))
            }
            Listen::Tcp(a) => {
                let l = std::net::TcpListener::bind(a).expect("binding the relay port");
                l.set_nonblocking(true).expect("a non-blocking listener");
                Either::Tcp(TcpListener::from_std(l).expect("a tokio listener"))
            }
        };
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task: every open connection ends with it.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Some(inbound) = accepted else { continue };
                        conns.spawn(serve(inbound, target.clone(), rate));
                    }
                    Some(_) = conns.join_next(), if !conns.is_empty() => {}
                }
            }
        }));
    }

    pub fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if let Listen::Unix(p) = &self.listen {
            let _ = std::fs::remove_file(p);
        }
    }
}

enum Either {
    Unix(UnixListener),
    Tcp(TcpListener),
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

impl Either {
    async fn accept(&self) -> Option<Box<dyn Stream>> {
        match self {
            Either::Unix(l) => l
                .accept()
                .await
                .ok()
                .map(|(s, _)| Box::new(s) as Box<dyn Stream>),
            Either::Tcp(l) => l
                .accept()
                .await
                .ok()
                .map(|(s, _)| Box::new(s) as Box<dyn Stream>),
        }
    }
}

async fn serve(mut inbound: Box<dyn Stream>, target: PathBuf, rate: Option<usize>) {
    let Ok(mut outbound) = UnixStream::connect(&target).await else {
        return;
    };
    match rate {
        None => {
            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
        }
        Some(rate) => relay_slowly(inbound, outbound, rate).await,
    }
}

/// Client → engine as fast as it comes; engine → client in 1 KiB pieces
/// paced to `rate` bytes per second.
async fn relay_slowly(inbound: Box<dyn Stream>, outbound: UnixStream, rate: usize) {
    let (mut in_read, mut in_write) = tokio::io::split(inbound);
    let (mut out_read, mut out_write) = outbound.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut in_read, &mut out_write).await;
    };
    let down = async {
        let mut buf = [0u8; 1024];
        let pause = Duration::from_secs_f64(buf.len() as f64 / rate as f64);
        loop {
            let n = match out_read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if in_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            tokio::time::sleep(pause).await;
        }
        let _ = in_write.shutdown().await;
    };
    tokio::join!(up, down);
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A Unix socket that accepts connections and never answers: an engine
/// that hangs (a wedged dockerd, a half-dead network path). Connections
/// are held until it is dropped.
pub struct Hang {
    path: PathBuf,
    task: JoinHandle<()>,
}

impl Hang {
    pub fn start(path: &Path) -> Hang {
        let listener = UnixListener::bind(path).expect("binding the hanging socket");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        Hang {
            path: path.to_owned(),
            task,
        }
    }

    /// `unix://…`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.path.display())
    }
}

impl Drop for Hang {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}
