//! Fake servers for the secrets tests: each records every byte a client
//! sends, so a test can prove a stored secret never arrived.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

pub type Seen = Arc<Mutex<Vec<u8>>>;

pub fn seen_text(seen: &Seen) -> String {
    String::from_utf8_lossy(&seen.lock().unwrap()).into_owned()
}

/// Whether `secret` is in `text`, as is or inside a base64 word (SMTP AUTH).
pub fn carries(text: &str, secret: &str) -> bool {
    text.contains(secret)
        || text
            .split(|c: char| c.is_whitespace())
            .filter_map(|w| base64::engine::general_purpose::STANDARD.decode(w).ok())
            .any(|raw| String::from_utf8_lossy(&raw).contains(secret))
}

/// A fake Postgres server: refuses TLS, then answers every startup with
/// AuthenticationCleartextPassword ('R', length 8, code 3) and records
/// everything the client sends.
pub async fn fake_postgres() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                loop {
                    let mut len = [0u8; 4];
                    if sock.read_exact(&mut len).await.is_err() {
                        return;
                    }
                    let n = u32::from_be_bytes(len) as usize;
                    let mut body = vec![0u8; n.saturating_sub(4).min(1 << 16)];
                    if sock.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    record.lock().unwrap().extend_from_slice(&body);
                    let code = body
                        .get(..4)
                        .map(|c| u32::from_be_bytes(c.try_into().unwrap()));
                    if matches!(code, Some(80877103) | Some(80877104)) {
                        // SSLRequest / GSSENCRequest: "N", then the startup.
                        let _ = sock.write_all(b"N").await;
                        continue;
                    }
                    break;
                }
                let mut ask = vec![b'R'];
                ask.extend_from_slice(&8u32.to_be_bytes());
                ask.extend_from_slice(&3u32.to_be_bytes());
                let _ = sock.write_all(&ask).await;
                let mut buf = [0u8; 4096];
                while let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(3), sock.read(&mut buf)).await
                {
                    if n == 0 {
                        break;
                    }
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                }
            });
        }
    });
    (port, seen)
}

/// A fake SMTP server offering AUTH PLAIN and LOGIN without TLS; records
/// every line.
pub async fn fake_smtp() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((sock, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 fake ESMTP\r\n").await;
                let mut in_data = false;
                while let Ok(Ok(Some(line))) =
                    tokio::time::timeout(Duration::from_secs(10), lines.next_line()).await
                {
                    record
                        .lock()
                        .unwrap()
                        .extend_from_slice(format!("{line}\n").as_bytes());
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if in_data {
                        if line == "." {
                            in_data = false;
                            b"250 queued\r\n"
                        } else {
                            continue;
                        }
                    } else if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-fake\r\n250-AUTH PLAIN LOGIN\r\n250 OK\r\n"
                    } else if upper == "AUTH LOGIN" {
                        b"334 VXNlcm5hbWU6\r\n"
                    } else if upper.starts_with("AUTH PLAIN ") {
                        b"235 ok\r\n"
                    } else if upper == "AUTH PLAIN" {
                        b"334 \r\n"
                    } else if upper.starts_with("DATA") {
                        in_data = true;
                        b"354 go\r\n"
                    } else if upper.starts_with("QUIT") {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else if upper.starts_with("MAIL") || upper.starts_with("RCPT") {
                        b"250 ok\r\n"
                    } else {
                        // A base64 answer to 334 (user name, then password).
                        b"235 ok\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, seen)
}

/// A fake HTTP endpoint: records each request and answers 500.
pub async fn fake_http() -> (u16, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Seen = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 8192];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(5), sock.read(&mut buf)).await
                {
                    record.lock().unwrap().extend_from_slice(&buf[..n]);
                }
                let _ = sock
                    .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    (port, seen)
}
