//! A Unix-socket relay in front of the private engine's socket: an engine
//! registered at the relay's path goes away (open connections included)
//! when the relay stops, and comes back when it starts again. A slow relay
//! also limits what the engine sends, so a long read is still going when
//! a test acts in its middle.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};
use tokio::task::JoinHandle;

/// A Unix-socket relay to the engine's socket: stopping it takes the
/// "engine" away (open connections included), starting it again brings it back.
pub struct Relay {
    path: PathBuf,
    target: PathBuf,
    /// Bytes per second from the engine to its client; `None`: no limit.
    rate: Option<usize>,
    task: Option<JoinHandle<()>>,
}

impl Relay {
    pub fn new(path: &Path, target: &Path) -> Relay {
        Relay {
            path: path.to_owned(),
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

    pub fn start(&mut self) {
        self.stop();
        let listener = UnixListener::bind(&self.path).expect("binding the relay socket");
        let target = self.target.clone();
        let rate = self.rate;
        self.task = Some(tokio::spawn(async move {
            // Dropped with the task: every open connection ends with it.
            let mut conns = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((mut inbound, _)) = accepted else { continue };
                        let target = target.clone();
                        conns.spawn(async move {
                            let Ok(mut outbound) = UnixStream::connect(&target).await else {
                                return;
                            };
                            match rate {
                                None => {
                                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                                }
                                Some(rate) => relay_slowly(inbound, outbound, rate).await,
                            }
                        });
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
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Client → engine as fast as it comes; engine → client in 1 KiB pieces
/// paced to `rate` bytes per second.
async fn relay_slowly(inbound: UnixStream, outbound: UnixStream, rate: usize) {
    let (mut in_read, mut in_write) = inbound.into_split();
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
