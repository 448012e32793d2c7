//! Operations on one container: lifecycle actions, logs, one-shot stats,
//! inspect (secrets masked) and exec of an argv array.
//!
//! Every call has a deadline. Nothing here builds shell text: exec passes the
//! caller's argv to the engine as an array, and the engine runs it without a
//! shell.

use std::time::{Duration, Instant};

use anyhow::Context;
use bollard::container::LogOutput;
use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::{
    InspectContainerOptions, KillContainerOptionsBuilder, LogsOptionsBuilder,
    RestartContainerOptionsBuilder, StartContainerOptions, StatsOptionsBuilder,
    StopContainerOptionsBuilder,
};
use chrono::Utc;
use futures::{Stream, StreamExt};
use opsdeck_wire::{ContainerActionKind, ContainerStats, ExecResult};

use super::stats::cpu_percent;
use super::{Client, EngineConn};

/// Largest captured exec output, per stream.
pub const EXEC_OUTPUT_LIMIT: usize = 256 * 1024;

/// Signals `kill` accepts (names, as Docker takes them).
pub const SIGNALS: &[&str] = &[
    "SIGKILL", "SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2",
];

/// Runs one lifecycle action and waits for the engine's answer.
/// `timeout_secs` is the stop grace period for stop/restart.
pub async fn act(
    client: &Client,
    container: &str,
    action: ContainerActionKind,
    timeout_secs: u32,
    signal: &str,
) -> anyhow::Result<()> {
    let docker = &client.inner;
    // The engine answers a stop only after the grace period: allow for it.
    let deadline = super::REQUEST_TIMEOUT + Duration::from_secs(u64::from(timeout_secs));
    let docker = docker.clone().with_timeout(deadline);
    let t = i32::try_from(timeout_secs).unwrap_or(i32::MAX);
    let fut = async {
        match action {
            ContainerActionKind::Start => {
                docker
                    .start_container(container, None::<StartContainerOptions>)
                    .await
            }
            ContainerActionKind::Stop => {
                docker
                    .stop_container(
                        container,
                        Some(StopContainerOptionsBuilder::default().t(t).build()),
                    )
                    .await
            }
            ContainerActionKind::Restart => {
                docker
                    .restart_container(
                        container,
                        Some(RestartContainerOptionsBuilder::default().t(t).build()),
                    )
                    .await
            }
            ContainerActionKind::Kill => {
                docker
                    .kill_container(
                        container,
                        Some(
                            KillContainerOptionsBuilder::default()
                                .signal(signal)
                                .build(),
                        ),
                    )
                    .await
            }
            ContainerActionKind::Pause => docker.pause_container(container).await,
            ContainerActionKind::Unpause => docker.unpause_container(container).await,
        }
    };
    tokio::time::timeout(deadline + Duration::from_secs(1), fut)
        .await
        .map_err(|_| anyhow::anyhow!("no answer from the engine within {deadline:?}"))?
        .map_err(engine_error)
}

/// A readable message for an engine error (its own text, without the
/// transport's debug noise).
pub fn engine_error(e: bollard::errors::Error) -> anyhow::Error {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => anyhow::anyhow!("the engine refused ({status_code}): {message}"),
        other => anyhow::Error::new(other),
    }
}

/// What to read from a container's log.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Last lines to show (the engine's `tail`); `None`: all of them.
    pub tail: Option<u32>,
    pub timestamps: bool,
    pub follow: bool,
    /// Only lines from this Unix time on (whole seconds, the engine's unit).
    pub since: Option<i64>,
    /// Only lines before this Unix time (whole seconds).
    pub until: Option<i64>,
}

/// Longest line handed on: a log without newlines never grows a buffer
/// past this (the rest of such a line comes as further lines).
pub const MAX_LINE_BYTES: usize = 64 * 1024;

/// A container's log as a stream of lines (stdout and stderr merged, in the
/// engine's order). Each item is one line without its newline.
pub fn log_lines(
    client: &Client,
    container: &str,
    q: &LogQuery,
) -> impl Stream<Item = anyhow::Result<String>> + Send + 'static {
    let docker = &client.inner;
    let mut options = LogsOptionsBuilder::default()
        .stdout(true)
        .stderr(true)
        .timestamps(q.timestamps)
        .follow(q.follow)
        .tail(&q.tail.map_or_else(|| "all".to_owned(), |t| t.to_string()));
    if let Some(since) = q.since {
        options = options.since(clamp_i32(since));
    }
    if let Some(until) = q.until {
        options = options.until(clamp_i32(until));
    }
    let raw = docker.logs(container, Some(options.build()));
    let mut pending: Vec<u8> = Vec::new();
    raw.map(move |chunk| -> Vec<anyhow::Result<String>> {
        match chunk {
            Err(e) => vec![Err(engine_error(e))],
            Ok(out) => {
                let bytes = match out {
                    LogOutput::StdOut { message }
                    | LogOutput::StdErr { message }
                    | LogOutput::Console { message }
                    | LogOutput::StdIn { message } => message,
                };
                split_lines(&mut pending, &bytes)
                    .into_iter()
                    .map(Ok)
                    .collect()
            }
        }
    })
    .flat_map(futures::stream::iter)
}

fn clamp_i32(v: i64) -> i32 {
    i32::try_from(v.max(0)).unwrap_or(i32::MAX)
}

/// Appends `bytes` to `pending` and takes out every complete line (and any
/// run of [`MAX_LINE_BYTES`] without a newline), in one pass: the buffer
/// is shifted once per chunk, never once per line.
fn split_lines(pending: &mut Vec<u8>, bytes: &[u8]) -> Vec<String> {
    let text = |b: &[u8]| {
        let b = b.strip_suffix(b"\n").unwrap_or(b);
        let b = b.strip_suffix(b"\r").unwrap_or(b);
        String::from_utf8_lossy(b).into_owned()
    };
    let mut lines = Vec::new();
    // The common case: the engine sends one whole line per frame.
    if pending.is_empty() && bytes.ends_with(b"\n") && !bytes[..bytes.len() - 1].contains(&b'\n') {
        lines.push(text(bytes));
        return lines;
    }
    pending.extend_from_slice(bytes);
    let mut start = 0;
    while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
        lines.push(text(&pending[start..=start + pos]));
        start += pos + 1;
    }
    while pending.len() - start >= MAX_LINE_BYTES {
        lines.push(text(&pending[start..start + MAX_LINE_BYTES]));
        start += MAX_LINE_BYTES;
    }
    pending.drain(..start);
    lines
}

/// A log line with the engine's timestamp (asked with `timestamps`).
#[derive(Debug, Clone, PartialEq)]
pub struct TimedLine {
    pub ts: chrono::DateTime<Utc>,
    pub text: String,
}

/// Splits the engine's `2026-12-07T07:17:09.123456789Z ` prefix off a line
/// read with `timestamps`; `None` when the line has none.
pub fn split_timestamp(line: &str) -> Option<TimedLine> {
    split_timestamp_ref(line).map(|(ts, text)| TimedLine {
        ts,
        text: text.to_owned(),
    })
}

/// [`split_timestamp`] without copying the text.
pub fn split_timestamp_ref(line: &str) -> Option<(chrono::DateTime<Utc>, &str)> {
    let (ts, text) = line.split_once(' ').unwrap_or((line, ""));
    let ts = chrono::DateTime::parse_from_rfc3339(ts).ok()?;
    Some((ts.with_timezone(&Utc), text))
}

pub(super) async fn one_shot(
    client: &Client,
    container: &str,
) -> anyhow::Result<ContainerStatsResponse> {
    let docker = &client.inner;
    let options = StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(true)
        .build();
    let mut s = docker.stats(container, Some(options));
    tokio::time::timeout(super::REQUEST_TIMEOUT, s.next())
        .await
        .map_err(|_| anyhow::anyhow!("stats of {container}: no answer in time"))?
        .context("the engine sent no stats")?
        .map_err(engine_error)
}

/// Resource figures of one container from the one-shot stats API (no
/// 1–2 s wait per container). CPU % needs two samples: the previous one is
/// kept per container; without one (or when it is older than a minute) a
/// second sample is taken after a short pause.
pub async fn stats(
    conn: &EngineConn,
    client: &Client,
    container: &str,
    name: &str,
) -> anyhow::Result<ContainerStats> {
    let first = super::stats::counters(client, container).await?;
    let prev = conn
        .stats_prev
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(container)
        .copied()
        .filter(|p| p.at.elapsed() < Duration::from_secs(60));
    let (sample, cpu) = match (prev, first.cpu()) {
        (Some(p), Some(now)) => (first, cpu_percent(p, now)),
        (None, Some(a)) => {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let second = super::stats::counters(client, container).await?;
            let cpu = second.cpu().and_then(|b| cpu_percent(a, b));
            (second, cpu)
        }
        (_, None) => (first, None),
    };
    if let Some(s) = sample.cpu() {
        conn.stats_prev
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(container.to_owned(), s);
    }
    Ok(ContainerStats {
        container: container.to_owned(),
        name: name.to_owned(),
        cpu_percent: cpu.map(|c| (c * 100.0).round() / 100.0),
        memory_bytes: sample.mem_bytes,
        memory_limit_bytes: sample.mem_limit,
        net_rx_bytes: sample.net_rx,
        net_tx_bytes: sample.net_tx,
        block_read_bytes: sample.blk_read,
        block_write_bytes: sample.blk_write,
        pids: sample.pids,
        sampled_at: Utc::now(),
    })
}

/// Words in an environment variable's name that mark its value secret.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "PRIVATE",
    "AUTH",
];

/// True when an environment variable's name looks secret.
pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_WORDS.iter().any(|w| upper.contains(w))
}

/// Masks `NAME=value` entries whose name looks secret.
pub fn mask_env(env: &mut [String]) {
    for e in env.iter_mut() {
        if let Some((name, _)) = e.split_once('=') {
            if is_secret_name(name) {
                *e = format!("{name}=***");
            }
        }
    }
}

/// The engine's inspect document of a container, with secret-looking
/// environment values masked.
pub async fn inspect(client: &Client, container: &str) -> anyhow::Result<serde_json::Value> {
    let docker = &client.inner;
    let mut i = tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        docker.inspect_container(container, None::<InspectContainerOptions>),
    )
    .await
    .map_err(|_| anyhow::anyhow!("inspect: no answer in time"))?
    .map_err(engine_error)?;
    if let Some(env) = i.config.as_mut().and_then(|c| c.env.as_mut()) {
        mask_env(env);
    }
    serde_json::to_value(i).context("encoding the inspect document")
}

/// Whether the container exists: `false` when the engine answers 404, an
/// error when the engine cannot tell now.
pub async fn container_exists(client: &Client, container: &str) -> anyhow::Result<bool> {
    let r = tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        client
            .inner
            .inspect_container(container, None::<InspectContainerOptions>),
    )
    .await
    .map_err(|_| anyhow::anyhow!("no answer in time"))?;
    match r {
        Ok(_) => Ok(true),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => Ok(false),
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

/// Runs `argv` in the container (no shell, no TTY), capturing output up to
/// [`EXEC_OUTPUT_LIMIT`] per stream, within `timeout`.
pub async fn exec(
    client: &Client,
    container: &str,
    argv: &[String],
    timeout: Duration,
) -> anyhow::Result<ExecResult> {
    let docker = &client.inner;
    let started = Instant::now();
    let created = tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        docker.create_exec(
            container,
            CreateExecOptions::<String> {
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                attach_stdin: Some(false),
                tty: Some(false),
                cmd: Some(argv.to_vec()),
                ..Default::default()
            },
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("exec: no answer in time"))?
    .map_err(engine_error)?;
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    let mut truncated = false;
    let mut timed_out = false;
    let start = docker
        .start_exec(
            &created.id,
            Some(StartExecOptions {
                detach: false,
                tty: false,
                output_capacity: None,
            }),
        )
        .await
        .map_err(engine_error)?;
    if let StartExecResults::Attached { mut output, .. } = start {
        let collect = async {
            while let Some(chunk) = output.next().await {
                let (buf, bytes) = match chunk.map_err(engine_error)? {
                    LogOutput::StdErr { message } => (&mut stderr, message),
                    LogOutput::StdOut { message } | LogOutput::Console { message } => {
                        (&mut stdout, message)
                    }
                    LogOutput::StdIn { .. } => continue,
                };
                let room = EXEC_OUTPUT_LIMIT.saturating_sub(buf.len());
                if bytes.len() > room {
                    truncated = true;
                }
                buf.extend_from_slice(&bytes[..bytes.len().min(room)]);
            }
            anyhow::Ok(())
        };
        match tokio::time::timeout(timeout, collect).await {
            Ok(r) => r?,
            Err(_) => timed_out = true,
        }
    }
    let exit_code = if timed_out {
        None
    } else {
        tokio::time::timeout(super::REQUEST_TIMEOUT, docker.inspect_exec(&created.id))
            .await
            .ok()
            .and_then(Result::ok)
            .and_then(|i| i.exit_code)
    };
    Ok(ExecResult {
        container: container.to_owned(),
        exit_code,
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
        truncated,
        timed_out,
        duration_ms: started.elapsed().as_millis() as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_across_frames_and_capped() {
        let mut pending = Vec::new();
        assert_eq!(split_lines(&mut pending, b"one\n"), vec!["one"]);
        assert_eq!(split_lines(&mut pending, b"tw"), Vec::<String>::new());
        assert_eq!(
            split_lines(&mut pending, b"o\r\nthree\nfo"),
            vec!["two", "three"]
        );
        assert_eq!(pending, b"fo");
        let long = vec![b'x'; MAX_LINE_BYTES + 10];
        let out = split_lines(&mut pending, &long);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].len(), MAX_LINE_BYTES);
        assert!(out[0].starts_with("fox"));
        assert_eq!(pending.len(), 12);
    }

    #[test]
    fn engine_timestamps_are_split_off() {
        let l = split_timestamp("2026-12-07T07:17:09.123456789Z GET /health 200").unwrap();
        assert_eq!(l.text, "GET /health 200");
        assert_eq!(l.ts.timestamp_subsec_nanos(), 123_456_789);
        assert_eq!(split_timestamp("2026-12-07T07:17:09Z").unwrap().text, "");
        assert_eq!(split_timestamp("no timestamp here"), None);
    }

    #[test]
    fn secret_env_values_are_masked() {
        let mut env = vec![
            "POSTGRES_PASSWORD=hunter2".to_owned(),
            "GITEA__security__SECRET_KEY=abc".to_owned(),
            "API_TOKEN=t".to_owned(),
            "AWS_ACCESS_KEY_ID=AKIA".to_owned(),
            "PATH=/usr/bin".to_owned(),
            "TZ=UTC".to_owned(),
            "EMPTY".to_owned(),
        ];
        mask_env(&mut env);
        assert_eq!(
            env,
            vec![
                "POSTGRES_PASSWORD=***",
                "GITEA__security__SECRET_KEY=***",
                "API_TOKEN=***",
                "AWS_ACCESS_KEY_ID=***",
                "PATH=/usr/bin",
                "TZ=UTC",
                "EMPTY",
            ]
        );
    }
}

/// What a prune removed.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Pruned {
    pub deleted: Vec<String>,
    pub reclaimed_bytes: i64,
}

/// Removes unused `images` (every image no container uses, like
/// `docker image prune -a`), `volumes`, stopped `containers` or unused
/// `networks`.
pub async fn prune(client: &Client, what: &str) -> anyhow::Result<Pruned> {
    let docker = &client.inner;
    use bollard::query_parameters::{
        PruneContainersOptions, PruneImagesOptions, PruneNetworksOptions, PruneVolumesOptions,
    };
    use std::collections::HashMap;
    let deadline = Duration::from_secs(300);
    let late = || anyhow::anyhow!("prune {what}: no answer in time");
    Ok(match what {
        "images" => {
            let mut filters = HashMap::new();
            filters.insert("dangling".to_owned(), vec!["false".to_owned()]);
            let r = tokio::time::timeout(
                deadline,
                docker.prune_images(Some(PruneImagesOptions {
                    filters: Some(filters),
                })),
            )
            .await
            .map_err(|_| late())?
            .map_err(engine_error)?;
            Pruned {
                deleted: r
                    .images_deleted
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|i| i.deleted.or(i.untagged))
                    .collect(),
                reclaimed_bytes: r.space_reclaimed.unwrap_or(0),
            }
        }
        "volumes" => {
            // Since API 1.42 only anonymous volumes are pruned unless asked.
            let mut filters = HashMap::new();
            filters.insert("all".to_owned(), vec!["true".to_owned()]);
            let r = tokio::time::timeout(
                deadline,
                docker.prune_volumes(Some(PruneVolumesOptions {
                    filters: Some(filters),
                })),
            )
            .await
            .map_err(|_| late())?
            .map_err(engine_error)?;
            Pruned {
                deleted: r.volumes_deleted.unwrap_or_default(),
                reclaimed_bytes: r.space_reclaimed.unwrap_or(0),
            }
        }
        "containers" => {
            let r = tokio::time::timeout(
                deadline,
                docker.prune_containers(None::<PruneContainersOptions>),
            )
            .await
            .map_err(|_| late())?
            .map_err(engine_error)?;
            Pruned {
                deleted: r.containers_deleted.unwrap_or_default(),
                reclaimed_bytes: r.space_reclaimed.unwrap_or(0),
            }
        }
        "networks" => {
            let r = tokio::time::timeout(
                deadline,
                docker.prune_networks(None::<PruneNetworksOptions>),
            )
            .await
            .map_err(|_| late())?
            .map_err(engine_error)?;
            Pruned {
                deleted: r.networks_deleted.unwrap_or_default(),
                reclaimed_bytes: 0,
            }
        }
        other => anyhow::bail!("cannot prune \"{other}\": images, volumes, containers or networks"),
    })
}

/// Creates and starts one more replica of a compose service: a copy of
/// `template`'s configuration (image, command, environment, labels, host
/// configuration, networks with their aliases) named `name`, with the
/// compose container number set to `number`. Returns the new container's id.
pub async fn clone_replica(
    client: &Client,
    template: &str,
    name: &str,
    number: u32,
) -> anyhow::Result<String> {
    let docker = &client.inner;
    use bollard::models::{ContainerCreateBody, EndpointSettings, NetworkingConfig};
    use bollard::query_parameters::CreateContainerOptions;
    let i = tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        docker.inspect_container(template, None::<InspectContainerOptions>),
    )
    .await
    .map_err(|_| anyhow::anyhow!("inspect: no answer in time"))?
    .map_err(engine_error)?;
    let c = i.config.unwrap_or_default();
    let mut labels = c.labels.unwrap_or_default();
    labels.insert(
        "com.docker.compose.container-number".into(),
        number.to_string(),
    );
    let endpoints = i
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(net, e)| {
            (
                net,
                EndpointSettings {
                    aliases: e.aliases,
                    ..Default::default()
                },
            )
        })
        .collect();
    let body = ContainerCreateBody {
        image: c.image,
        env: c.env,
        cmd: c.cmd,
        entrypoint: c.entrypoint,
        working_dir: c.working_dir,
        user: c.user,
        labels: Some(labels),
        exposed_ports: c.exposed_ports,
        healthcheck: c.healthcheck,
        stop_signal: c.stop_signal,
        host_config: i.host_config,
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(endpoints),
        }),
        ..Default::default()
    };
    let created = tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        docker.create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..Default::default()
            }),
            body,
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("create: no answer in time"))?
    .map_err(engine_error)?;
    tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        docker.start_container(&created.id, None::<StartContainerOptions>),
    )
    .await
    .map_err(|_| anyhow::anyhow!("start: no answer in time"))?
    .map_err(engine_error)?;
    Ok(created.id)
}

/// Stops (grace `timeout_secs`) and removes a container.
pub async fn stop_and_remove(
    client: &Client,
    container: &str,
    timeout_secs: u32,
) -> anyhow::Result<()> {
    let docker = &client.inner;
    use bollard::query_parameters::RemoveContainerOptions;
    let _ = act(
        client,
        container,
        ContainerActionKind::Stop,
        timeout_secs,
        "SIGKILL",
    )
    .await;
    tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        docker.remove_container(
            container,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("remove: no answer in time"))?
    .map_err(engine_error)?;
    Ok(())
}
