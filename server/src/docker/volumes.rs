//! Volumes through the engine's API: inspect, create, remove, and a helper
//! container (the busybox image, never on a network) that mounts one volume
//! at `/volume`, whose archive API reads the volume as a tar stream and
//! writes one back. Used by backups (`crate::backups::volumes`).
//!
//! Decisions:
//! * Reading needs no started container: the engine's archive API reads
//!   the mounts of a created one. Writing back first empties the volume
//!   with `rm -rf` in the started helper (so the image needs `sh` and
//!   `rm`), then extracts through the archive API once it has exited.
//! * The mount is `nocopy` (the image's content never lands in the
//!   volume) and read-only when only reading.
//! * Helpers left by a process killed mid-backup are removed by the next
//!   volume backup on that engine once they are older than the longest
//!   transfer (24 h): nothing can still be using them.
//! * Requests that stream a whole volume get a client without the
//!   10-second request timeout (an upload's answer comes only once the
//!   engine has extracted everything); the ordinary ones keep it.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, HostConfig, Mount, MountTypeEnum, MountVolumeOptions, VolumeCreateOptions,
};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, RemoveContainerOptions,
    RemoveVolumeOptions, StartContainerOptions, UploadToContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use futures::{Stream, StreamExt};
use tokio_util::bytes::Bytes;

use super::ops::engine_error;
use super::{list, Client, REQUEST_TIMEOUT};

/// Where the helper mounts the volume (the archive's top-level name).
pub const MOUNT: &str = "/volume";
/// Label on every helper container.
pub const HELPER_LABEL: &str = "opsdeck.backup-helper";
/// How long a whole-volume transfer may take.
const TRANSFER_TIMEOUT: Duration = Duration::from_secs(24 * 3600);
/// How long emptying a volume may take.
const EMPTY_TIMEOUT: Duration = Duration::from_secs(3600);

async fn timed<T>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(REQUEST_TIMEOUT, f)
        .await
        .map_err(|_| anyhow::anyhow!("{what}: no answer from the engine in time"))?
        .map_err(|e| engine_error(e).context(what.to_string()))
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

/// Whether volume `name` exists.
pub async fn volume_exists(client: &Client, name: &str) -> anyhow::Result<bool> {
    let docker = &client.inner;
    match tokio::time::timeout(REQUEST_TIMEOUT, docker.inspect_volume(name)).await {
        Err(_) => anyhow::bail!("inspecting volume {name}: no answer from the engine in time"),
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) if is_404(&e) => Ok(false),
        Ok(Err(e)) => Err(engine_error(e).context(format!("inspecting volume {name}"))),
    }
}

/// Creates volume `name` (local driver) with `labels`.
pub async fn create_volume(
    client: &Client,
    name: &str,
    labels: HashMap<String, String>,
) -> anyhow::Result<()> {
    timed(
        &format!("creating volume {name}"),
        client.inner.create_volume(VolumeCreateOptions {
            name: Some(name.to_owned()),
            labels: Some(labels),
            ..Default::default()
        }),
    )
    .await
    .map(|_| ())
}

/// Removes volume `name`; absent is fine.
pub async fn remove_volume(client: &Client, name: &str) -> anyhow::Result<()> {
    let docker = &client.inner;
    match tokio::time::timeout(
        REQUEST_TIMEOUT,
        docker.remove_volume(name, None::<RemoveVolumeOptions>),
    )
    .await
    {
        Err(_) => anyhow::bail!("removing volume {name}: no answer from the engine in time"),
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if is_404(&e) => Ok(()),
        Ok(Err(e)) => Err(engine_error(e).context(format!("removing volume {name}"))),
    }
}

/// Whether `image` is on the engine.
pub async fn image_present(client: &Client, image: &str) -> anyhow::Result<bool> {
    let docker = &client.inner;
    match tokio::time::timeout(REQUEST_TIMEOUT, docker.inspect_image(image)).await {
        Err(_) => anyhow::bail!("inspecting image {image}: no answer from the engine in time"),
        Ok(Ok(_)) => Ok(true),
        Ok(Err(e)) if is_404(&e) => Ok(false),
        Ok(Err(e)) => Err(engine_error(e).context(format!("inspecting image {image}"))),
    }
}

/// Removes helper containers created more than [`TRANSFER_TIMEOUT`] ago
/// (left by a process killed mid-backup: nothing can still be using them).
/// Best effort; returns how many were removed.
pub async fn remove_stale_helpers(client: &Client) -> usize {
    let Ok(list) = list::containers(client, list::ListBy::Label(HELPER_LABEL)).await else {
        return 0;
    };
    let cutoff = chrono::Utc::now().timestamp() - TRANSFER_TIMEOUT.as_secs() as i64;
    let mut n = 0;
    for c in list {
        if let Some(created) = c.created {
            if created < cutoff && remove_container(&client.inner, &c.id).await.is_ok() {
                n += 1;
            }
        }
    }
    n
}

/// A helper container mounting one volume at [`MOUNT`]. Remove it with
/// [`Helper::remove`]; dropped without, it is removed in the background.
pub struct Helper {
    docker: Docker,
    pub id: String,
    removed: bool,
}

impl Helper {
    /// Creates (does not start) the helper. `cmd` is what it runs when
    /// started.
    pub async fn create(
        client: &Client,
        image: &str,
        name: &str,
        volume: &str,
        read_only: bool,
        cmd: Vec<String>,
    ) -> anyhow::Result<Helper> {
        let docker = &client.inner;
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            cmd: Some(cmd),
            network_disabled: Some(true),
            labels: Some(HashMap::from([(
                HELPER_LABEL.to_string(),
                volume.to_string(),
            )])),
            host_config: Some(HostConfig {
                mounts: Some(vec![Mount {
                    target: Some(MOUNT.to_owned()),
                    source: Some(volume.to_owned()),
                    typ: Some(MountTypeEnum::VOLUME),
                    read_only: Some(read_only),
                    volume_options: Some(MountVolumeOptions {
                        no_copy: Some(true),
                        ..Default::default()
                    }),
                    ..Default::default()
                }]),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = timed(
            "creating the helper container",
            docker.create_container(
                Some(CreateContainerOptions {
                    name: Some(name.to_owned()),
                    ..Default::default()
                }),
                body,
            ),
        )
        .await?;
        Ok(Helper {
            docker: docker.clone(),
            id: created.id,
            removed: false,
        })
    }

    /// Starts the helper and waits for it to exit; its exit code.
    pub async fn run(&self) -> anyhow::Result<i64> {
        timed(
            "starting the helper container",
            self.docker
                .start_container(&self.id, None::<StartContainerOptions>),
        )
        .await?;
        let mut wait = self
            .docker
            .clone()
            .with_timeout(EMPTY_TIMEOUT)
            .wait_container(&self.id, None::<WaitContainerOptions>)
            .boxed();
        match tokio::time::timeout(EMPTY_TIMEOUT, wait.next()).await {
            Err(_) => anyhow::bail!("the helper container did not finish in time"),
            Ok(None) => anyhow::bail!("the engine ended the wait without an exit code"),
            Ok(Some(Ok(r))) => Ok(r.status_code),
            // A non-zero exit comes as an error carrying the code.
            Ok(Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. }))) => {
                Ok(code)
            }
            Ok(Some(Err(e))) => Err(engine_error(e).context("waiting for the helper container")),
        }
    }

    /// The tar stream of `path` in the helper (the volume: [`MOUNT`]); an
    /// engine error ends it as an I/O error with the engine's message.
    pub fn download(
        &self,
        path: &str,
    ) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static {
        self.docker
            .clone()
            .with_timeout(TRANSFER_TIMEOUT)
            .download_from_container(
                &self.id,
                Some(DownloadFromContainerOptions {
                    path: path.to_owned(),
                }),
            )
            .map(|r| r.map_err(|e| std::io::Error::other(format!("{:#}", engine_error(e)))))
            .boxed()
    }

    /// Extracts a tar stream at `/` of the helper (entries `volume/…`
    /// land in the volume). An error item aborts the request.
    pub async fn upload(
        &self,
        tar: impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static,
    ) -> anyhow::Result<()> {
        let docker = self.docker.clone().with_timeout(TRANSFER_TIMEOUT);
        docker
            .upload_to_container(
                &self.id,
                Some(UploadToContainerOptions {
                    path: "/".into(),
                    ..Default::default()
                }),
                bollard::body_try_stream(tar),
            )
            .await
            .map_err(|e| engine_error(e).context("extracting the archive in the helper container"))
    }

    /// Removes the helper (forced).
    pub async fn remove(mut self) -> anyhow::Result<()> {
        self.removed = true;
        remove_container(&self.docker, &self.id).await
    }
}

/// Removes a helper container (forced); absent is fine.
pub(super) async fn remove_container(docker: &Docker, id: &str) -> anyhow::Result<()> {
    match tokio::time::timeout(
        REQUEST_TIMEOUT,
        docker.remove_container(
            id,
            Some(RemoveContainerOptions {
                force: true,
                ..Default::default()
            }),
        ),
    )
    .await
    {
        Err(_) => anyhow::bail!("removing the helper container: no answer from the engine in time"),
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) if is_404(&e) => Ok(()),
        Ok(Err(e)) => Err(engine_error(e).context("removing the helper container")),
    }
}

/// Removes a helper container in the background (a helper dropped before
/// its owner removed it); `what` names it in the warning if that fails.
pub(super) fn remove_in_background(docker: &Docker, id: &str, what: &'static str) {
    let (docker, id) = (docker.clone(), id.to_owned());
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            if let Err(e) = remove_container(&docker, &id).await {
                tracing::warn!(container = %id, error = %format!("{e:#}"), "removing {what}");
            }
        });
    }
}

impl Drop for Helper {
    fn drop(&mut self) {
        if !self.removed {
            remove_in_background(&self.docker, &self.id, "a backup helper container");
        }
    }
}
