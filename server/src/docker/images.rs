//! The engine side of an image update: pull a reference (streaming the
//! engine's progress lines), inspect a container or an image, create a
//! container from another's configuration with a different image, and the
//! small lifecycle calls the update sequence is made of (rename, stop,
//! start, remove).
//!
//! [`recreate`] copies the container's own inspect, as `docker compose`
//! would have created it: the whole `HostConfig` (binds, mounts, restart
//! policy, network mode, port bindings, resources…), the `Config` (env,
//! cmd, entrypoint, labels, healthcheck, user, working dir, exposed ports,
//! stop signal and timeout, tty…), the networks with their aliases and
//! static addresses, and the anonymous volumes the old container had (bound
//! by name to the same paths, so their data stays). Values the *old image*
//! supplied (its env, labels, cmd, entrypoint, healthcheck, working dir,
//! user, exposed ports) are left out, so the new image's own defaults apply
//! — the way Watchtower and `docker compose up` behave; values the operator
//! set on the container are kept.
//!
//! API versions: only calls of API 1.41 (Engine 20.10) are used. A container
//! is created with one network (older engines refuse several at create) and
//! connected to the others afterwards.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use anyhow::Context;
use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, HostConfig, ImageConfig,
    MountPointTypeEnum, NetworkConnectRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, InspectContainerOptions, RemoveContainerOptions,
    RenameContainerOptions, StartContainerOptions, StopContainerOptionsBuilder,
};
use futures::StreamExt;

use super::ops::engine_error;
use super::{Client, REQUEST_TIMEOUT};

/// The longest a pull may take (a large image over a slow link).
pub const PULL_TIMEOUT: Duration = Duration::from_secs(1800);

/// What the update needs to know about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerFacts {
    pub id: String,
    /// Without the leading `/`.
    pub name: String,
    /// The reference it was created from (`Config.Image`).
    pub image_ref: String,
    /// The local image id (`sha256:…`) it runs.
    pub image_id: String,
    /// created, running, paused, restarting, exited, dead.
    pub state: String,
    /// Its HEALTHCHECK state (starting, healthy, unhealthy), when it has one.
    pub health: Option<String>,
    /// The stop grace in seconds (`Config.StopTimeout`, default 10).
    pub stop_grace: u32,
    /// Its restart policy's name (`no`, `always`, `on-failure`,
    /// `unless-stopped`).
    pub restart_policy: String,
    /// Its HEALTHCHECK's test as an exec argv (`CMD` as given, `CMD-SHELL`
    /// under `/bin/sh -c`, as the engine runs it); `None` without one.
    pub healthcheck: Option<Vec<String>>,
}

/// What the update needs to know about a local image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageFacts {
    /// `sha256:…`
    pub id: String,
    pub repo_tags: Vec<String>,
    /// `repo@sha256:…`: the manifest digests it was pulled by.
    pub repo_digests: Vec<String>,
}

fn is_404(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

async fn timed<T>(
    what: &str,
    fut: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
) -> anyhow::Result<Result<T, bollard::errors::Error>> {
    tokio::time::timeout(REQUEST_TIMEOUT, fut)
        .await
        .map_err(|_| {
            anyhow::anyhow!("{what}: no answer from the engine within {REQUEST_TIMEOUT:?}")
        })
}

async fn inspect_raw(
    client: &Client,
    container: &str,
) -> anyhow::Result<Option<ContainerInspectResponse>> {
    match timed(
        &format!("inspecting {container}"),
        client
            .inner
            .inspect_container(container, None::<InspectContainerOptions>),
    )
    .await?
    {
        Ok(i) => Ok(Some(i)),
        Err(e) if is_404(&e) => Ok(None),
        Err(e) => Err(engine_error(e).context(format!("inspecting {container}"))),
    }
}

/// A container's facts, or `None` when it does not exist.
pub async fn container(client: &Client, container: &str) -> anyhow::Result<Option<ContainerFacts>> {
    Ok(inspect_raw(client, container).await?.map(|i| facts(&i)))
}

fn facts(i: &ContainerInspectResponse) -> ContainerFacts {
    let state = i.state.as_ref();
    ContainerFacts {
        id: i.id.clone().unwrap_or_default(),
        name: i
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
            .to_owned(),
        image_ref: i
            .config
            .as_ref()
            .and_then(|c| c.image.clone())
            .unwrap_or_default(),
        image_id: i.image.clone().unwrap_or_default(),
        state: state
            .and_then(|s| s.status)
            .map(|s| s.to_string())
            .unwrap_or_default(),
        health: state
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty() && s != "none"),
        stop_grace: i
            .config
            .as_ref()
            .and_then(|c| c.stop_timeout)
            .and_then(|t| u32::try_from(t).ok())
            .unwrap_or(10),
        restart_policy: i
            .host_config
            .as_ref()
            .and_then(|h| h.restart_policy.as_ref())
            .and_then(|r| r.name)
            .map(|n| n.to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| "no".into()),
        healthcheck: i
            .config
            .as_ref()
            .and_then(|c| c.healthcheck.as_ref())
            .and_then(|h| h.test.as_deref())
            .and_then(healthcheck_argv),
    }
}

/// A HEALTHCHECK test (`["CMD", …]`, `["CMD-SHELL", "…"]`, `["NONE"]`) as
/// the argv the engine itself would run.
fn healthcheck_argv(test: &[String]) -> Option<Vec<String>> {
    match test.split_first()? {
        (kind, rest) if kind == "CMD" && !rest.is_empty() => Some(rest.to_vec()),
        (kind, [cmd]) if kind == "CMD-SHELL" => {
            Some(vec!["/bin/sh".into(), "-c".into(), cmd.clone()])
        }
        _ => None,
    }
}

/// A local image's facts, or `None` when the engine does not have it.
pub async fn image(client: &Client, reference: &str) -> anyhow::Result<Option<ImageFacts>> {
    match timed(
        &format!("inspecting image {reference}"),
        client.inner.inspect_image(reference),
    )
    .await?
    {
        Ok(i) => Ok(Some(ImageFacts {
            id: i.id.unwrap_or_default(),
            repo_tags: i.repo_tags.unwrap_or_default(),
            repo_digests: i.repo_digests.unwrap_or_default(),
        })),
        Err(e) if is_404(&e) => Ok(None),
        Err(e) => Err(engine_error(e).context(format!("inspecting image {reference}"))),
    }
}

/// Pulls `reference` (`repo:tag` or `repo@sha256:…`; never a bare name,
/// which would pull every tag), handing each progress line to `on_line`
/// (layer lines once per status change, not per byte). The engine's own
/// registry credentials apply.
pub async fn pull(
    client: &Client,
    reference: &str,
    mut on_line: impl FnMut(String) + Send,
) -> anyhow::Result<()> {
    let options = CreateImageOptions {
        from_image: Some(reference.to_owned()),
        ..Default::default()
    };
    let docker = client.inner.clone().with_timeout(PULL_TIMEOUT);
    let mut stream = docker.create_image(Some(options), None, None);
    let mut last: HashMap<String, String> = HashMap::new();
    let go = async {
        while let Some(item) = stream.next().await {
            let info = item.map_err(engine_error)?;
            if let Some(e) = info.error_detail.and_then(|d| d.message).or(info.error) {
                anyhow::bail!("{e}");
            }
            let Some(status) = info.status else { continue };
            let key = info.id.clone().unwrap_or_default();
            if last.get(&key) == Some(&status) {
                continue;
            }
            last.insert(key, status.clone());
            on_line(match info.id {
                Some(id) if !id.is_empty() => format!("{id}: {status}"),
                _ => status,
            });
        }
        Ok(())
    };
    tokio::time::timeout(PULL_TIMEOUT, go)
        .await
        .map_err(|_| anyhow::anyhow!("no end of the pull within {PULL_TIMEOUT:?}"))?
        .with_context(|| format!("pulling {reference}"))
}

/// Drops from `values` what the old image supplied (so the new image's own
/// defaults apply).
fn without_image_defaults(
    mut config: bollard::models::ContainerConfig,
    old: Option<&ImageConfig>,
) -> bollard::models::ContainerConfig {
    let Some(img) = old else { return config };
    if let (Some(env), Some(defaults)) = (config.env.as_mut(), img.env.as_ref()) {
        let d: HashSet<&String> = defaults.iter().collect();
        env.retain(|e| !d.contains(e));
    }
    if let (Some(labels), Some(defaults)) = (config.labels.as_mut(), img.labels.as_ref()) {
        labels.retain(|k, v| defaults.get(k) != Some(v));
    }
    if let (Some(ports), Some(defaults)) =
        (config.exposed_ports.as_mut(), img.exposed_ports.as_ref())
    {
        ports.retain(|k, _| !defaults.contains_key(k));
    }
    if config.cmd == img.cmd {
        config.cmd = None;
    }
    if config.entrypoint == img.entrypoint {
        config.entrypoint = None;
    }
    if config.healthcheck == img.healthcheck {
        config.healthcheck = None;
    }
    if config.working_dir == img.working_dir {
        config.working_dir = None;
    }
    if config.user == img.user {
        config.user = None;
    }
    if config.stop_signal == img.stop_signal {
        config.stop_signal = None;
    }
    if config.volumes == img.volumes {
        config.volumes = None;
    }
    config
}

/// Creates (does not start) a container named `name` with the
/// configuration of container `from` and the image `image` (a reference or
/// an image id); see the module docs for what is copied. `labels` are set
/// on top (e.g. compose's `com.docker.compose.image`). Returns its id.
pub async fn recreate(
    client: &Client,
    from: &str,
    name: &str,
    image: &str,
    labels: &[(String, String)],
) -> anyhow::Result<String> {
    let docker = &client.inner;
    let i = inspect_raw(client, from)
        .await?
        .ok_or_else(|| anyhow::anyhow!("container {from} no longer exists"))?;
    let old_id = i.id.clone().unwrap_or_default();
    let old_image = match i.image.as_deref() {
        Some(img) => match timed("inspecting the old image", docker.inspect_image(img)).await? {
            Ok(x) => x.config,
            Err(_) => None,
        },
        None => None,
    };
    let mut c = without_image_defaults(i.config.clone().unwrap_or_default(), old_image.as_ref());
    let mut host: HostConfig = i.host_config.clone().unwrap_or_default();
    let mode = host.network_mode.clone().unwrap_or_default();
    // The default hostname is the container's short id: a new container
    // gets its own. A host-network container has the host's.
    let short = old_id.get(..12).unwrap_or_default();
    let hostname = c
        .hostname
        .take()
        .filter(|h| h != short && !h.is_empty() && mode != "host");
    // Anonymous volumes: bound by name to the same paths, so their data
    // stays with the service.
    let covered: HashSet<String> = host
        .binds
        .iter()
        .flatten()
        .filter_map(|b| b.split(':').nth(1).map(str::to_owned))
        .chain(
            host.mounts
                .iter()
                .flatten()
                .filter_map(|m| m.target.clone()),
        )
        .collect();
    for m in i.mounts.iter().flatten() {
        if m.typ != Some(MountPointTypeEnum::VOLUME) {
            continue;
        }
        let (Some(vol), Some(dest)) = (&m.name, &m.destination) else {
            continue;
        };
        if covered.contains(dest) {
            continue;
        }
        let ro = if m.rw == Some(false) { ":ro" } else { "" };
        host.binds
            .get_or_insert_with(Vec::new)
            .push(format!("{vol}:{dest}{ro}"));
    }
    let mut labels_map = c.labels.take().unwrap_or_default();
    for (k, v) in labels {
        if labels_map.contains_key(k) {
            labels_map.insert(k.clone(), v.clone());
        }
    }
    // Networks: the one of the network mode at create, the others after.
    let networks: Vec<(String, EndpointSettings)> = i
        .network_settings
        .and_then(|n| n.networks)
        .unwrap_or_default()
        .into_iter()
        .map(|(net, e)| {
            let aliases = e.aliases.map(|a| {
                a.into_iter()
                    .filter(|x| !(x.len() >= 12 && old_id.starts_with(x.as_str())))
                    .collect::<Vec<_>>()
            });
            (
                net,
                EndpointSettings {
                    aliases: aliases.filter(|a| !a.is_empty()),
                    ipam_config: e.ipam_config,
                    links: e.links,
                    driver_opts: e.driver_opts,
                    ..Default::default()
                },
            )
        })
        .collect();
    let first = networks
        .iter()
        .position(|(n, _)| *n == mode)
        .or(if networks.is_empty() { None } else { Some(0) });
    let mut at_create = HashMap::new();
    let mut later = Vec::new();
    for (idx, (n, e)) in networks.into_iter().enumerate() {
        if Some(idx) == first {
            at_create.insert(n, e);
        } else {
            later.push((n, e));
        }
    }
    let body = ContainerCreateBody {
        hostname,
        domainname: c.domainname,
        user: c.user,
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: c.exposed_ports.filter(|p| !p.is_empty()),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: c.env,
        cmd: c.cmd,
        healthcheck: c.healthcheck,
        args_escaped: c.args_escaped,
        image: Some(image.to_owned()),
        volumes: c.volumes,
        working_dir: c.working_dir,
        entrypoint: c.entrypoint,
        network_disabled: c.network_disabled,
        mac_address: None,
        on_build: None,
        labels: Some(labels_map),
        stop_signal: c.stop_signal,
        stop_timeout: c.stop_timeout,
        shell: c.shell,
        host_config: Some(host),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(at_create),
        }),
    };
    let created = match timed(
        &format!("creating {name}"),
        docker.create_container(
            Some(CreateContainerOptions {
                name: Some(name.to_owned()),
                ..Default::default()
            }),
            body,
        ),
    )
    .await?
    {
        Ok(c) => c,
        Err(e) => return Err(engine_error(e).context(format!("creating {name}"))),
    };
    for (net, endpoint) in later {
        let r = timed(
            &format!("connecting {name} to {net}"),
            docker.connect_network(
                &net,
                NetworkConnectRequest {
                    container: Some(created.id.clone()),
                    endpoint_config: Some(endpoint),
                },
            ),
        )
        .await?;
        if let Err(e) = r {
            let _ = remove(client, &created.id).await;
            return Err(engine_error(e).context(format!("connecting {name} to network {net}")));
        }
    }
    Ok(created.id)
}

/// Renames a container.
pub async fn rename(client: &Client, container: &str, to: &str) -> anyhow::Result<()> {
    timed(
        &format!("renaming {container}"),
        client.inner.rename_container(
            container,
            RenameContainerOptions {
                name: to.to_owned(),
            },
        ),
    )
    .await?
    .map_err(|e| engine_error(e).context(format!("renaming {container} to {to}")))
}

/// Starts a container (one already running is fine).
pub async fn start(client: &Client, container: &str) -> anyhow::Result<()> {
    match timed(
        &format!("starting {container}"),
        client
            .inner
            .start_container(container, None::<StartContainerOptions>),
    )
    .await?
    {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(engine_error(e).context(format!("starting {container}"))),
    }
}

/// Stops a container within `grace` seconds (then the engine kills it); a
/// stopped one is fine.
pub async fn stop(client: &Client, container: &str, grace: u32) -> anyhow::Result<()> {
    let deadline = REQUEST_TIMEOUT + Duration::from_secs(u64::from(grace));
    let docker = client.inner.clone().with_timeout(deadline);
    let t = i32::try_from(grace).unwrap_or(i32::MAX);
    let r = tokio::time::timeout(
        deadline + Duration::from_secs(1),
        docker.stop_container(
            container,
            Some(StopContainerOptionsBuilder::default().t(t).build()),
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("stopping {container}: no answer within {deadline:?}"))?;
    match r {
        Ok(()) => Ok(()),
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 304, ..
        }) => Ok(()),
        Err(e) => Err(engine_error(e).context(format!("stopping {container}"))),
    }
}

/// Removes a container (forced: a running one is killed); one that does not
/// exist is fine. Its volumes stay.
pub async fn remove(client: &Client, container: &str) -> anyhow::Result<()> {
    match timed(
        &format!("removing {container}"),
        client.inner.remove_container(
            container,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        ),
    )
    .await?
    {
        Ok(()) => Ok(()),
        Err(e) if is_404(&e) => Ok(()),
        Err(e) => Err(engine_error(e).context(format!("removing {container}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_healthcheck_test_becomes_the_engines_argv() {
        let v = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            healthcheck_argv(&v(&["CMD", "wget", "-q", "http://127.0.0.1/health"])),
            Some(v(&["wget", "-q", "http://127.0.0.1/health"]))
        );
        assert_eq!(
            healthcheck_argv(&v(&["CMD-SHELL", "curl -f localhost || exit 1"])),
            Some(v(&["/bin/sh", "-c", "curl -f localhost || exit 1"]))
        );
        assert_eq!(healthcheck_argv(&v(&["NONE"])), None);
        assert_eq!(healthcheck_argv(&v(&["CMD"])), None);
        assert_eq!(healthcheck_argv(&[]), None);
    }

    #[test]
    fn what_the_old_image_supplied_is_left_to_the_new_image() {
        let old = ImageConfig {
            env: Some(vec!["PATH=/bin".into(), "PORT=8080".into()]),
            labels: Some(HashMap::from([("version".into(), "v1".into())])),
            cmd: Some(vec!["httpd".into()]),
            user: Some("app".into()),
            ..Default::default()
        };
        let container = bollard::models::ContainerConfig {
            env: Some(vec![
                "PATH=/bin".into(),
                "PORT=9000".into(),
                "MODE=prod".into(),
            ]),
            labels: Some(HashMap::from([
                ("version".into(), "v1".into()),
                ("team".into(), "ops".into()),
            ])),
            cmd: Some(vec!["httpd".into()]),
            user: Some("root".into()),
            ..Default::default()
        };
        let c = without_image_defaults(container, Some(&old));
        assert_eq!(
            c.env,
            Some(vec!["PORT=9000".to_owned(), "MODE=prod".to_owned()]),
            "the operator's values stay, the image's go"
        );
        assert_eq!(
            c.labels,
            Some(HashMap::from([("team".to_owned(), "ops".to_owned())]))
        );
        assert_eq!(c.cmd, None);
        assert_eq!(c.user.as_deref(), Some("root"));
    }
}
