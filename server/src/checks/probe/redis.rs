//! Redis probe.
//!
//! Connects with the `redis` crate (one multiplexed connection per probe,
//! RESP2 unless the URL says `?protocol=resp3`, no `CLIENT SETINFO`), sends
//! `PING` — anything but `PONG` is critical — then `INFO memory`:
//!
//! * with `maxmemory` set: `memory_pct` = `used_memory` / `maxmemory`,
//!   graded with `memory_warning_pct` / `memory_critical_pct`;
//! * without it: a warning when `used_memory` reaches `memory_warning_mb`
//!   (when set), else only the figure is reported.
//!
//! Metrics: `latency_ms` (connect + PING), `used_memory_mb`, and
//! `memory_pct` / `maxmemory_mb` when `maxmemory` is set.
//!
//! Decisions: only `redis://` TCP URLs with an optional user name and
//! database number; a password in the URL is refused (it comes from the
//! check's password field), as are `rediss://` (TLS support is not built
//! in) and Unix sockets. Messages never contain the password.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use opsdeck_wire::{CheckStatus, RedisCheck};
use redis::{AsyncConnectionConfig, IntoConnectionInfo};
use reqwest::Url;

use super::net::{describe_error, one_line, timed_out};
use super::{grade_above, Probe};

const MIB: f64 = 1024.0 * 1024.0;

/// PINGs a Redis server and grades its memory use.
pub async fn redis(c: &RedisCheck, password: Option<&str>, timeout: Duration) -> Probe {
    let info = match connection_info(&c.url, password) {
        Ok(i) => i,
        Err(why) => return Probe::critical(scrub(why, password)),
    };
    let run = async {
        let client = redis::Client::open(info).map_err(|e| describe_redis(&e))?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let start = Instant::now();
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| describe_redis(&e))?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| describe_redis(&e))?;
        let latency = start.elapsed();
        if pong != "PONG" {
            return Err(one_line(&format!("PING answered {pong:?} instead of PONG")));
        }
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut conn)
            .await
            .map_err(|e| describe_redis(&e))?;
        Ok((latency, info))
    };
    match tokio::time::timeout(timeout, run).await {
        Err(_) => Probe::critical(timed_out(timeout)),
        Ok(Err(why)) => Probe::critical(scrub(why, password)),
        Ok(Ok((latency, info))) => grade_memory(c, &parse_info(&info)).latency(latency),
    }
}

/// Validates the URL and adds the password.
pub(crate) fn connection_info(
    raw: &str,
    password: Option<&str>,
) -> Result<redis::ConnectionInfo, String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("invalid URL: {e}"))?;
    match url.scheme() {
        "redis" | "valkey" => {}
        "rediss" | "valkeys" => return Err("TLS (rediss://) is not supported".into()),
        "unix" | "redis+unix" | "valkey+unix" => {
            return Err("Unix sockets are not supported: give a host name".into())
        }
        other => return Err(format!("URL scheme \"{other}\" refused: expected redis://")),
    }
    if url.password().is_some() {
        return Err("the URL must not contain a password (use the check's password field)".into());
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("invalid URL: no host".into());
    }
    if let Some((k, _)) = url.query_pairs().find(|(k, _)| k != "protocol") {
        return Err(one_line(&format!("URL parameter \"{k}\" is not allowed")));
    }
    if url.fragment().is_some() {
        return Err("invalid URL: no #fragment allowed".into());
    }
    let info = url
        .as_str()
        .into_connection_info()
        .map_err(|e| one_line(&format!("invalid URL: {}", describe_redis(&e))))?;
    let mut settings = info.redis_settings().clone().set_skip_set_lib_name();
    if let Some(p) = password.filter(|p| !p.is_empty()) {
        settings = settings.set_password(p);
    }
    Ok(info.set_redis_settings(settings))
}

/// `key:value` lines of an `INFO` answer (`#` sections and blanks skipped).
pub(super) fn parse_info(text: &str) -> HashMap<&str, &str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .collect()
}

/// Grades memory use from the parsed `INFO memory`.
pub(super) fn grade_memory(c: &RedisCheck, info: &HashMap<&str, &str>) -> Probe {
    let num = |k: &str| info.get(k).and_then(|v| v.trim().parse::<u64>().ok());
    let Some(used) = num("used_memory") else {
        return Probe::new(
            CheckStatus::Warning,
            "PONG, but INFO memory has no used_memory",
        );
    };
    let used_mb = used as f64 / MIB;
    let p = Probe::ok("").metric("used_memory_mb", used_mb);
    match num("maxmemory").filter(|&m| m > 0) {
        Some(max) => {
            let pct = 100.0 * used as f64 / max as f64;
            let max_mb = max as f64 / MIB;
            let st = grade_above(pct, c.memory_warning_pct, c.memory_critical_pct);
            let mut msg =
                format!("memory {pct:.0} % of maxmemory ({used_mb:.1} of {max_mb:.0} MiB)");
            match st {
                CheckStatus::Critical => {
                    msg += &format!(", critical at {} %", c.memory_critical_pct)
                }
                CheckStatus::Warning => msg += &format!(", warning at {} %", c.memory_warning_pct),
                _ => {}
            }
            let mut p = p.metric("memory_pct", pct).metric("maxmemory_mb", max_mb);
            p.status = st;
            p.message = msg;
            p
        }
        None => {
            let mut p = p;
            p.message = format!("memory {used_mb:.1} MiB used (no maxmemory)");
            if let Some(w) = c.memory_warning_mb {
                if used_mb >= w as f64 {
                    p.status = CheckStatus::Warning;
                    p.message =
                        format!("memory {used_mb:.1} MiB used (no maxmemory), warning at {w} MiB");
                }
            }
            p
        }
    }
}

/// One line for a Redis error.
fn describe_redis(e: &redis::RedisError) -> String {
    match e.code() {
        Some("NOAUTH") => return "authentication required (no password set?)".into(),
        Some("WRONGPASS") => return "authentication failed".into(),
        Some("LOADING") => return "Redis is loading its dataset".into(),
        _ => {}
    }
    if e.kind() == redis::ErrorKind::AuthenticationFailed {
        return "authentication failed".into();
    }
    if e.is_connection_refusal() {
        return "connection refused".into();
    }
    if e.is_timeout() {
        return "timed out".into();
    }
    if std::error::Error::source(e).is_some() {
        return describe_error(e);
    }
    one_line(&e.to_string())
}

fn scrub(msg: String, password: Option<&str>) -> String {
    match password {
        Some(p) if !p.is_empty() && msg.contains(p) => msg.replace(p, "***"),
        _ => msg,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const INFO: &str = "# Memory\r\nused_memory:104857600\r\nused_memory_human:100.00M\r\n\
                        maxmemory:1048576000\r\nmaxmemory_human:1000.00M\r\n\
                        maxmemory_policy:noeviction\r\n";

    fn check(url: &str) -> RedisCheck {
        RedisCheck {
            url: url.into(),
            memory_warning_pct: 80.0,
            memory_critical_pct: 95.0,
            memory_warning_mb: None,
        }
    }

    fn metric(p: &Probe, name: &str) -> Option<f64> {
        p.metrics.iter().find(|m| m.name == name).map(|m| m.value)
    }

    /// Parses one RESP array of bulk strings from the front of `buf`.
    fn parse_command(buf: &[u8]) -> Option<(Vec<String>, usize)> {
        fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
            let end = buf[at..].windows(2).position(|w| w == b"\r\n")? + at;
            Some((&buf[at..end], end + 2))
        }
        let (head, mut at) = line(buf, 0)?;
        let n: usize = std::str::from_utf8(head.strip_prefix(b"*")?)
            .ok()?
            .parse()
            .ok()?;
        let mut args = Vec::new();
        for _ in 0..n {
            let (len, next) = line(buf, at)?;
            let len: usize = std::str::from_utf8(len.strip_prefix(b"$")?)
                .ok()?
                .parse()
                .ok()?;
            if buf.len() < next + len + 2 {
                return None;
            }
            args.push(String::from_utf8_lossy(&buf[next..next + len]).into_owned());
            at = next + len + 2;
        }
        Some((args, at))
    }

    /// A fake Redis answering AUTH, PING and INFO; `password` is required
    /// when set. Returns the port.
    async fn fake_redis(password: Option<&'static str>, info: &'static str) -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let password = Arc::new(password);
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let password = password.clone();
                tokio::spawn(async move {
                    let mut authed = password.is_none();
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        while let Some((args, used)) = parse_command(&buf) {
                            buf.drain(..used);
                            let cmd = args
                                .first()
                                .map(|a| a.to_ascii_uppercase())
                                .unwrap_or_default();
                            let reply = match cmd.as_str() {
                                "AUTH" => {
                                    if Some(args.last().unwrap().as_str()) == *password {
                                        authed = true;
                                        "+OK\r\n".to_string()
                                    } else {
                                        "-WRONGPASS invalid username-password pair\r\n".to_string()
                                    }
                                }
                                _ if !authed => "-NOAUTH Authentication required.\r\n".to_string(),
                                "PING" => "+PONG\r\n".to_string(),
                                "INFO" => format!("${}\r\n{info}\r\n", info.len()),
                                _ => "-ERR unknown command\r\n".to_string(),
                            };
                            if s.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                });
            }
        });
        port
    }

    const T: Duration = Duration::from_secs(5);

    #[test]
    fn info_is_parsed() {
        let info = parse_info(INFO);
        assert_eq!(info.get("used_memory"), Some(&"104857600"));
        assert_eq!(info.get("maxmemory"), Some(&"1048576000"));
        assert_eq!(info.get("maxmemory_policy"), Some(&"noeviction"));
        assert!(!info.contains_key("# Memory"));
    }

    #[test]
    fn memory_graded_against_maxmemory() {
        let c = check("redis://h");
        let p = grade_memory(&c, &parse_info(INFO));
        assert_eq!(p.status, CheckStatus::Ok);
        assert_eq!(p.message, "memory 10 % of maxmemory (100.0 of 1000 MiB)");
        assert_eq!(metric(&p, "memory_pct"), Some(10.0));
        assert_eq!(metric(&p, "used_memory_mb"), Some(100.0));
        assert_eq!(metric(&p, "maxmemory_mb"), Some(1000.0));

        let warn = parse_info("used_memory:850\r\nmaxmemory:1000\r\n");
        assert_eq!(grade_memory(&c, &warn).status, CheckStatus::Warning);
        let crit = parse_info("used_memory:960\r\nmaxmemory:1000\r\n");
        let p = grade_memory(&c, &crit);
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(p.message.ends_with(", critical at 95 %"), "{}", p.message);
    }

    #[test]
    fn memory_without_maxmemory_uses_mib_threshold() {
        let info = parse_info("used_memory:734003200\r\nmaxmemory:0\r\n"); // 700 MiB
        let p = grade_memory(&check("redis://h"), &info);
        assert_eq!(p.status, CheckStatus::Ok, "no MiB threshold set");
        assert_eq!(p.message, "memory 700.0 MiB used (no maxmemory)");
        assert_eq!(metric(&p, "memory_pct"), None);
        let c = RedisCheck {
            memory_warning_mb: Some(512),
            ..check("redis://h")
        };
        let p = grade_memory(&c, &info);
        assert_eq!(p.status, CheckStatus::Warning);
        assert_eq!(
            p.message,
            "memory 700.0 MiB used (no maxmemory), warning at 512 MiB"
        );
        let c = RedisCheck {
            memory_warning_mb: Some(1024),
            ..c
        };
        assert_eq!(grade_memory(&c, &info).status, CheckStatus::Ok);
        let p = grade_memory(&c, &parse_info("maxmemory:0\r\n"));
        assert_eq!(p.status, CheckStatus::Warning);
    }

    #[test]
    fn urls_are_validated() {
        assert!(connection_info("redis://127.0.0.1:6379/2", Some("pw")).is_ok());
        assert!(connection_info("redis://app@cache.local", None).is_ok());
        let info = connection_info("redis://app@cache.local:6380/3", Some("pw")).unwrap();
        assert_eq!(info.redis_settings().password(), Some("pw"));
        assert_eq!(info.redis_settings().username(), Some("app"));
        assert_eq!(info.redis_settings().db(), 3);
        let err = connection_info("redis://:s3cret@cache.local", None).unwrap_err();
        assert!(err.contains("must not contain a password"), "{err}");
        assert!(!err.contains("s3cret"));
        assert!(connection_info("rediss://cache.local", None)
            .unwrap_err()
            .contains("TLS"));
        assert!(connection_info("redis+unix:///tmp/r.sock", None)
            .unwrap_err()
            .contains("Unix"));
        assert!(connection_info("http://cache.local", None)
            .unwrap_err()
            .contains("refused"));
        assert_eq!(
            connection_info("redis://cache.local/?pass=x", None).unwrap_err(),
            "URL parameter \"pass\" is not allowed"
        );
    }

    #[tokio::test]
    async fn ping_and_memory_against_a_fake_server() {
        let port = fake_redis(None, INFO).await;
        let p = redis(&check(&format!("redis://127.0.0.1:{port}")), None, T).await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");
        assert_eq!(metric(&p, "memory_pct"), Some(10.0));
        assert!(p.latency_ms.is_some());
    }

    #[tokio::test]
    async fn memory_over_critical_is_critical() {
        let port = fake_redis(None, "used_memory:990\r\nmaxmemory:1000\r\n").await;
        let p = redis(&check(&format!("redis://127.0.0.1:{port}")), None, T).await;
        assert_eq!(p.status, CheckStatus::Critical, "{p:?}");
        assert_eq!(metric(&p, "memory_pct"), Some(99.0));
    }

    #[tokio::test]
    async fn passwords_are_sent_and_failures_summarised() {
        let port = fake_redis(Some("s3cret"), INFO).await;
        let c = check(&format!("redis://127.0.0.1:{port}"));
        let p = redis(&c, Some("s3cret"), T).await;
        assert_eq!(p.status, CheckStatus::Ok, "{p:?}");

        let p = redis(&c, None, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(
            p.message.starts_with("authentication required"),
            "{}",
            p.message
        );

        let p = redis(&c, Some("wrong-pw"), T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(p.message.contains("authentication failed"), "{}", p.message);
        assert!(!p.message.contains("wrong-pw"));
    }

    #[tokio::test]
    async fn refused_port_is_critical() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        let p = redis(&check(&format!("redis://127.0.0.1:{port}")), None, T).await;
        assert_eq!(p.status, CheckStatus::Critical);
        assert_eq!(p.message, "connection refused");
    }
}
