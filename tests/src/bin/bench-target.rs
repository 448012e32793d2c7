//! Load tools for the benches (`make bench`), one binary, three modes.
//!
//! `bench-target serve [--ports N] [--delay-ms D]`
//!   A minimal HTTP/1.1 server answering `200 ok` to every request, on N
//!   loopback ports (default 1) chosen by the kernel. It prints each port on
//!   a line of its own, then `ready`, and serves until killed. Connections
//!   are kept alive (as a real service's would be), requests are answered in
//!   order; a body announced by `Content-Length` is skipped. A query
//!   parameter `delay_ms=D` (or `--delay-ms`, the default for every request)
//!   delays the answer by D ms without holding anything else up.
//!   `GET /__hits` answers the number of requests served so far.
//!   `GET /metrics/<n>` answers a Prometheus exposition like a small web
//!   service's (requests by code and method, a latency histogram, a few
//!   gauges; about 60 series, 5 KB) whose counters grow with time: the
//!   target of the metric-scrape bench (`BENCH_CHECK_KIND=scrape`).
//!   One single-threaded Tokio runtime: the target's CPU cost stays small
//!   next to the server under test on the same machine.
//!
//! `bench-target sse --addr HOST:PORT --path P --token T --clients N
//!                   [--trigger PATH --match TEXT]... [--timeout-s S]`
//!   Opens N `text/event-stream` connections to P (`Authorization: Bearer T`)
//!   and waits until every one has its `200` head. Then, for each
//!   trigger/match pair in turn: notes the time, sends `GET PATH` on a new
//!   connection, and waits until every client has received stream data
//!   containing TEXT (after what it matched before). Prints one JSON object
//!   per trial: the trigger's own answer time and the delays from the
//!   trigger until each client had the event (p50, p90, p99, max), in ms.
//!
//! `bench-target relay --listen DIR --count N --to SOCK[,SOCK…] [--hang M]`
//!   Simulated Docker Engines for `bench/fleet.sh`: Unix sockets DIR/e1.sock
//!   … DIR/eN.sock, socket i relaying every connection it accepts, both
//!   ways, to target socket (i-1) mod T (`unix://` prefixes allowed), so N
//!   registered engines share T real `dockerd`s while each has its own
//!   connections, events stream and cache in the server. The last M
//!   sockets hang instead: they accept, read and discard, and never answer
//!   (a wedged engine), holding each connection open. Prints `ready` once
//!   every socket listens, and relays until killed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use tokio::sync::mpsc;

/// When the target started: its counters grow from there.
static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

fn usage() -> ! {
    eprintln!(
        "usage: bench-target serve [--ports N] [--delay-ms D]\n       \
         bench-target sse --addr HOST:PORT --path P --token T --clients N \
         [--trigger PATH --match TEXT]... [--timeout-s S]\n       \
         bench-target relay --listen DIR --count N --to SOCK[,SOCK...] [--hang M]"
    );
    std::process::exit(2)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a Tokio runtime");
    match args.first().map(String::as_str) {
        Some("serve") => rt.block_on(serve(&args[1..])),
        Some("sse") => rt.block_on(sse(&args[1..])),
        Some("relay") => rt.block_on(relay(&args[1..])),
        _ => usage(),
    }
}

/// `--name value` pairs; repeated names keep every value in order.
fn opts(args: &[String]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = args.iter();
    while let Some(k) = it.next() {
        let Some(name) = k.strip_prefix("--") else {
            usage()
        };
        let Some(v) = it.next() else { usage() };
        out.push((name.to_owned(), v.clone()));
    }
    out
}

fn one<'a>(o: &'a [(String, String)], name: &str) -> Option<&'a str> {
    o.iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn num<T: std::str::FromStr>(o: &[(String, String)], name: &str, default: T) -> T {
    match one(o, name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| usage()),
    }
}

// ------------------------------------------------------------------ serve

async fn serve(args: &[String]) {
    let o = opts(args);
    let ports: usize = num(&o, "ports", 1);
    let delay_ms: u64 = num(&o, "delay-ms", 0);
    let hits = Arc::new(AtomicU64::new(0));
    let mut listeners = Vec::with_capacity(ports);
    for _ in 0..ports {
        let l = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("binding a loopback port");
        println!("{}", l.local_addr().expect("the port").port());
        listeners.push(l);
    }
    println!("ready");
    let mut tasks = tokio::task::JoinSet::new();
    for l in listeners {
        let hits = hits.clone();
        tasks.spawn(async move {
            loop {
                match l.accept().await {
                    Ok((s, _)) => {
                        let _ = s.set_nodelay(true);
                        tokio::spawn(connection(s, hits.clone(), delay_ms));
                    }
                    // Out of descriptors, say: try again shortly.
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A small web service's metrics after `t` seconds at 100 requests/s
/// (1.5 % of them 5xx), their latencies spread over the buckets.
fn exposition(t: f64) -> String {
    use std::fmt::Write;
    const LE: [&str; 11] = [
        "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
    ];
    const SHARE: [f64; 11] = [
        0.05, 0.15, 0.35, 0.55, 0.75, 0.9, 0.96, 0.985, 0.995, 0.999, 1.0,
    ];
    let n = 100.0 * t;
    let mut s = String::with_capacity(6 * 1024);
    s += "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\n";
    for (method, m) in [("GET", 0.8), ("POST", 0.2)] {
        for (code, c) in [
            ("200", 0.9),
            ("201", 0.05),
            ("404", 0.035),
            ("500", 0.01),
            ("503", 0.005),
        ] {
            let _ = writeln!(
                s,
                "http_requests_total{{method=\"{method}\",code=\"{code}\",handler=\"/api/v1/items\"}} {:.0}",
                n * m * c
            );
        }
    }
    s += "# HELP http_request_duration_seconds Latency.\n# TYPE http_request_duration_seconds histogram\n";
    for method in ["GET", "POST"] {
        for (le, share) in LE.iter().zip(SHARE) {
            let _ = writeln!(
                s,
                "http_request_duration_seconds_bucket{{method=\"{method}\",le=\"{le}\"}} {:.0}",
                n * share / 2.0
            );
        }
        let _ = writeln!(
            s,
            "http_request_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {:.0}",
            n / 2.0
        );
        let _ = writeln!(
            s,
            "http_request_duration_seconds_sum{{method=\"{method}\"}} {:.3}",
            n * 0.06
        );
        let _ = writeln!(
            s,
            "http_request_duration_seconds_count{{method=\"{method}\"}} {:.0}",
            n / 2.0
        );
    }
    s += "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 5.1e+07\n";
    s += "# TYPE app_queue_length gauge\n";
    for q in ["mail", "thumbnails", "webhooks", "exports"] {
        let _ = writeln!(s, "app_queue_length{{queue=\"{q}\"}} {}", (t as u64) % 17);
    }
    s += "# TYPE go_goroutines gauge\ngo_goroutines 42\n";
    s
}

async fn connection(mut s: TcpStream, hits: Arc<AtomicU64>, default_delay: u64) {
    let started = *STARTED.get_or_init(Instant::now);
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        // One request head.
        let end = loop {
            if let Some(i) = find(&buf, b"\r\n\r\n") {
                break i + 4;
            }
            if buf.len() > 64 * 1024 {
                return;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let request_line = lines.next().unwrap_or_default();
        let mut parts = request_line.split(' ');
        let _method = parts.next().unwrap_or_default();
        let target = parts.next().unwrap_or("/").to_owned();
        let version = parts.next().unwrap_or("HTTP/1.1");
        let mut body_len = 0usize;
        let mut close = version == "HTTP/1.0";
        for h in lines {
            let Some((k, v)) = h.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_ascii_lowercase());
            if k == "content-length" {
                body_len = v.parse().unwrap_or(0);
            } else if k == "connection" {
                close = v == "close" || (version == "HTTP/1.0" && v != "keep-alive");
            }
        }
        // Skip the body, if any.
        while buf.len() < end + body_len {
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + body_len);

        let n = hits.fetch_add(1, Ordering::Relaxed) + 1;
        let (path, query) = target.split_once('?').unwrap_or((target.as_str(), ""));
        let delay = query
            .split('&')
            .find_map(|kv| kv.strip_prefix("delay_ms="))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default_delay);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        let body = if path == "/__hits" {
            format!("{n}\n")
        } else if path.starts_with("/metrics") {
            exposition(started.elapsed().as_secs_f64())
        } else {
            "ok\n".to_owned()
        };
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if s.write_all(resp.as_bytes()).await.is_err() || close {
            return;
        }
    }
}

// ------------------------------------------------------------------ sse

async fn sse(args: &[String]) {
    let o = opts(args);
    let addr: SocketAddr = one(&o, "addr")
        .unwrap_or_else(|| usage())
        .parse()
        .unwrap_or_else(|_| usage());
    let path = one(&o, "path")
        .unwrap_or("/api/v1/status/events")
        .to_owned();
    let token = one(&o, "token").unwrap_or_else(|| usage()).to_owned();
    let clients: usize = num(&o, "clients", 1000);
    let timeout = Duration::from_secs(num(&o, "timeout-s", 30));
    let triggers: Vec<String> = o
        .iter()
        .filter(|(k, _)| k == "trigger")
        .map(|(_, v)| v.clone())
        .collect();
    let matches: Vec<String> = o
        .iter()
        .filter(|(k, _)| k == "match")
        .map(|(_, v)| v.clone())
        .collect();
    if triggers.is_empty() || triggers.len() != matches.len() {
        usage();
    }
    let matches = Arc::new(matches);

    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel::<Result<(), String>>();
    let (got_tx, mut got_rx) = mpsc::unbounded_channel::<(usize, Instant)>();
    // At most 100 connects at once (the listen backlog is finite).
    let connects = Arc::new(tokio::sync::Semaphore::new(100));
    for _ in 0..clients {
        let (ready_tx, got_tx, matches, connects) = (
            ready_tx.clone(),
            got_tx.clone(),
            matches.clone(),
            connects.clone(),
        );
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
        );
        tokio::spawn(async move {
            let permit = connects.acquire_owned().await;
            let mut s = match TcpStream::connect(addr).await {
                Ok(s) => s,
                Err(e) => return drop(ready_tx.send(Err(format!("connect: {e}")))),
            };
            if let Err(e) = s.write_all(request.as_bytes()).await {
                return drop(ready_tx.send(Err(format!("send: {e}"))));
            }
            let mut buf = Vec::with_capacity(16 * 1024);
            let mut chunk = vec![0u8; 64 * 1024];
            let body_start = loop {
                if let Some(i) = find(&buf, b"\r\n\r\n") {
                    break i + 4;
                }
                match s.read(&mut chunk).await {
                    Ok(0) => return drop(ready_tx.send(Err("closed before the head".into()))),
                    Err(e) => return drop(ready_tx.send(Err(format!("read: {e}")))),
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            };
            if !buf.starts_with(b"HTTP/1.1 200") {
                let line = String::from_utf8_lossy(&buf[..buf.len().min(80)]).into_owned();
                return drop(ready_tx.send(Err(format!("answer: {line}"))));
            }
            drop(permit);
            let _ = ready_tx.send(Ok(()));
            // Scan from here on for each trial's text in turn.
            let mut scanned = body_start;
            for (trial, m) in matches.iter().enumerate() {
                let m = m.as_bytes();
                loop {
                    if let Some(i) = find(&buf[scanned..], m) {
                        scanned += i + m.len();
                        let _ = got_tx.send((trial, Instant::now()));
                        break;
                    }
                    scanned = scanned.max(buf.len().saturating_sub(m.len()));
                    match s.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                // Keep memory flat: drop what was scanned.
                buf.drain(..scanned);
                scanned = 0;
            }
        });
    }
    drop(ready_tx);
    drop(got_tx);

    let t = Instant::now();
    let mut ready = 0;
    let mut errors: Vec<String> = Vec::new();
    while ready + errors.len() < clients {
        match tokio::time::timeout(timeout, ready_rx.recv()).await {
            Ok(Some(Ok(()))) => ready += 1,
            Ok(Some(Err(e))) => errors.push(e),
            Ok(None) | Err(_) => break,
        }
    }
    let connect_ms = t.elapsed().as_secs_f64() * 1000.0;
    if !errors.is_empty() {
        eprintln!(
            "bench-target sse: {} of {clients} clients failed, first: {}",
            errors.len(),
            errors[0]
        );
    }
    if ready < clients {
        eprintln!("bench-target sse: only {ready} of {clients} clients connected");
        std::process::exit(1);
    }
    // Let the server settle after the connection burst.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for (trial, trigger) in triggers.iter().enumerate() {
        let t0 = Instant::now();
        let trigger_ms = match get(addr, trigger).await {
            Ok(200) => t0.elapsed().as_secs_f64() * 1000.0,
            Ok(status) => {
                eprintln!("bench-target sse: GET {trigger} answered {status}");
                std::process::exit(1);
            }
            Err(e) => {
                eprintln!("bench-target sse: GET {trigger}: {e}");
                std::process::exit(1);
            }
        };
        let mut delays = Vec::with_capacity(clients);
        let deadline = tokio::time::Instant::now() + timeout;
        while delays.len() < clients {
            match tokio::time::timeout_at(deadline, got_rx.recv()).await {
                Ok(Some((i, at))) if i == trial => {
                    delays.push(at.saturating_duration_since(t0).as_secs_f64() * 1000.0)
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        delays.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| -> f64 {
            if delays.is_empty() {
                return f64::NAN;
            }
            let rank = ((p / 100.0) * delays.len() as f64).ceil().max(1.0) as usize;
            delays[rank.min(delays.len()) - 1]
        };
        let out = serde_json::json!({
            "trial": trial, "clients": clients, "received": delays.len(),
            "connect_all_ms": connect_ms, "trigger_answer_ms": trigger_ms,
            "p50_ms": pct(50.0), "p90_ms": pct(90.0), "p99_ms": pct(99.0),
            "max_ms": delays.last().copied().unwrap_or(f64::NAN),
            "min_ms": delays.first().copied().unwrap_or(f64::NAN),
        });
        println!("{out}");
        if delays.len() < clients {
            eprintln!(
                "bench-target sse: only {} of {clients} clients got the event within {timeout:?}",
                delays.len()
            );
            std::process::exit(1);
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// `GET path` on a new connection; the answer's status code.
async fn get(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while find(&buf, b"\r\n").is_none() {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let line = String::from_utf8_lossy(&buf);
    Ok(line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0))
}

// ------------------------------------------------------------------ relay

async fn relay(args: &[String]) {
    let o = opts(args);
    let dir = PathBuf::from(one(&o, "listen").unwrap_or_else(|| usage()));
    let count: usize = num(&o, "count", 0);
    let hang: usize = num(&o, "hang", 0);
    let targets: Vec<Arc<PathBuf>> = one(&o, "to")
        .unwrap_or_else(|| usage())
        .split(',')
        .filter(|s| !s.is_empty())
        .map(|s| Arc::new(PathBuf::from(s.strip_prefix("unix://").unwrap_or(s))))
        .collect();
    if count == 0 || targets.is_empty() || hang > count {
        usage();
    }
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 1..=count {
        let path = dir.join(format!("e{i}.sock"));
        // A socket file left by an earlier relay would make bind fail.
        let _ = std::fs::remove_file(&path);
        let listener =
            UnixListener::bind(&path).unwrap_or_else(|e| panic!("binding {}: {e}", path.display()));
        let target = (i <= count - hang).then(|| targets[(i - 1) % targets.len()].clone());
        tasks.spawn(relay_listen(listener, target));
    }
    println!("ready");
    while tasks.join_next().await.is_some() {}
}

/// Accepts on one simulated engine's socket; `None`: the engine hangs.
async fn relay_listen(listener: UnixListener, target: Option<Arc<PathBuf>>) {
    loop {
        match listener.accept().await {
            Ok((s, _)) => {
                tokio::spawn(relay_connection(s, target.clone()));
            }
            // Out of descriptors, say: try again shortly.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn relay_connection(mut inbound: UnixStream, target: Option<Arc<PathBuf>>) {
    let Some(target) = target else {
        // Hung: take whatever is sent, answer nothing, keep the connection
        // until the client gives up on it.
        let mut buf = [0u8; 4096];
        while matches!(inbound.read(&mut buf).await, Ok(n) if n > 0) {}
        return;
    };
    // The real engine refusing (stopped) closes the client's connection,
    // as the engine itself would.
    let Ok(mut outbound) = UnixStream::connect(&*target).await else {
        return;
    };
    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
}
