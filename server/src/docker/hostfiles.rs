//! Small text files of an engine's host, read through the engine: a compose
//! project's own files (its `compose.yaml`, override, included files and
//! `.env`), named by the labels `docker compose` puts on its containers.
//!
//! How: a helper container is *created, never started* from an image the
//! engine already has (the project's own image: nothing is pulled), with
//! every directory that holds a wanted file bind-mounted read-only under
//! [`MOUNT`] and no network; the engine's archive API reads the files
//! through those mounts; the helper is removed (forced) afterwards, and in
//! the background when the caller is dropped midway.
//!
//! Decisions:
//! * Only regular files up to [`MAX_FILE_BYTES`] each are read, as UTF-8
//!   text; anything else is a per-file error, never a partial file.
//! * The caller decides which paths to read; this module reads exactly
//!   those (absolute host paths) and nothing else.
//! * A directory that does not exist on the host fails the whole read with
//!   the engine's message (the engine refuses to create the helper).

use std::collections::{BTreeMap, HashMap};
use std::io::Read;

use bollard::models::{ContainerCreateBody, HostConfig, Mount, MountTypeEnum};
use bollard::query_parameters::{
    CreateContainerOptions, DownloadFromContainerOptions, InspectContainerOptions,
};
use bollard::Docker;
use futures::StreamExt;

use super::ops::engine_error;
use super::volumes::{remove_container, remove_in_background};
use super::{Client, REQUEST_TIMEOUT};

/// Where the helper mounts the host's directories: `/opsdeck-host/0`, `/1`, …
pub const MOUNT: &str = "/opsdeck-host";
/// Label on every helper container (its value: what it reads for).
pub const HELPER_LABEL: &str = "opsdeck.hostfiles-helper";
/// The largest file read.
pub const MAX_FILE_BYTES: usize = 1024 * 1024;

/// What a compose container's labels say about the project's files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ComposeOrigin {
    /// `com.docker.compose.project.working_dir`: the project directory.
    pub working_dir: Option<String>,
    /// `com.docker.compose.project.config_files`: the `-f` files, in order.
    pub config_files: Vec<String>,
    /// `com.docker.compose.project.environment_file`: the env files used.
    pub env_files: Vec<String>,
}

/// The compose labels of `container`.
pub async fn compose_origin(client: &Client, container: &str) -> anyhow::Result<ComposeOrigin> {
    let i = tokio::time::timeout(
        REQUEST_TIMEOUT,
        client
            .inner
            .inspect_container(container, None::<InspectContainerOptions>),
    )
    .await
    .map_err(|_| anyhow::anyhow!("inspecting {container}: no answer from the engine in time"))?
    .map_err(|e| engine_error(e).context(format!("inspecting {container}")))?;
    let labels = i.config.and_then(|c| c.labels).unwrap_or_default();
    let list = |k: &str| -> Vec<String> {
        labels
            .get(k)
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    };
    Ok(ComposeOrigin {
        working_dir: labels
            .get("com.docker.compose.project.working_dir")
            .filter(|s| !s.is_empty())
            .cloned(),
        config_files: list("com.docker.compose.project.config_files"),
        env_files: list("com.docker.compose.project.environment_file"),
    })
}

/// Reads `paths` (absolute paths on the engine's host) through a helper
/// created from `image`. One result per path, in order: the text, or why
/// it could not be read ("no such file", "larger than 1 MiB", "not UTF-8").
pub async fn read(
    client: &Client,
    image: &str,
    paths: &[String],
) -> anyhow::Result<Vec<(String, Result<String, String>)>> {
    let mut dirs: BTreeMap<String, usize> = BTreeMap::new();
    for p in paths {
        anyhow::ensure!(p.starts_with('/'), "{p}: not an absolute path");
        anyhow::ensure!(
            !p.split('/').any(|c| c == ".." || c == "."),
            "{p}: not a normalised path"
        );
        let dir = parent(p);
        let n = dirs.len();
        dirs.entry(dir.to_owned()).or_insert(n);
    }
    if paths.is_empty() {
        return Ok(Vec::new());
    }
    let helper = Helper::create(client, image, &dirs).await?;
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let inside = format!("{MOUNT}/{}/{}", dirs[parent(p)], basename(p));
        let text = helper.read_one(&inside).await;
        out.push((p.clone(), text));
    }
    helper.remove().await?;
    Ok(out)
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => ".",
    }
}

fn basename(p: &str) -> &str {
    p.rsplit('/').next().unwrap_or(p)
}

struct Helper {
    docker: Docker,
    id: String,
    removed: bool,
}

impl Helper {
    async fn create(
        client: &Client,
        image: &str,
        dirs: &BTreeMap<String, usize>,
    ) -> anyhow::Result<Helper> {
        let docker = &client.inner;
        let mounts = dirs
            .iter()
            .map(|(dir, n)| Mount {
                target: Some(format!("{MOUNT}/{n}")),
                source: Some(dir.clone()),
                typ: Some(MountTypeEnum::BIND),
                read_only: Some(true),
                ..Default::default()
            })
            .collect();
        let body = ContainerCreateBody {
            image: Some(image.to_owned()),
            // Never started: the entrypoint only satisfies the engine.
            entrypoint: Some(vec!["/opsdeck-never-started".to_owned()]),
            cmd: Some(Vec::new()),
            network_disabled: Some(true),
            labels: Some(HashMap::from([(
                HELPER_LABEL.to_owned(),
                "compose-files".to_owned(),
            )])),
            host_config: Some(HostConfig {
                mounts: Some(mounts),
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = tokio::time::timeout(
            REQUEST_TIMEOUT,
            docker.create_container(None::<CreateContainerOptions>, body),
        )
        .await
        .map_err(|_| anyhow::anyhow!("creating the file-reading helper: no answer in time"))?
        .map_err(|e| engine_error(e).context("creating the file-reading helper container"))?;
        Ok(Helper {
            docker: docker.clone(),
            id: created.id,
            removed: false,
        })
    }

    async fn read_one(&self, path: &str) -> Result<String, String> {
        let mut stream = self.docker.download_from_container(
            &self.id,
            Some(DownloadFromContainerOptions {
                path: path.to_owned(),
            }),
        );
        let mut tar_bytes = Vec::new();
        // The tar header and padding add a few KiB to the file itself.
        let cap = MAX_FILE_BYTES + 64 * 1024;
        let read = async {
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(b) => {
                        tar_bytes.extend_from_slice(&b);
                        if tar_bytes.len() > cap {
                            return Err("larger than 1 MiB".to_owned());
                        }
                    }
                    Err(bollard::errors::Error::DockerResponseServerError {
                        status_code: 404,
                        ..
                    }) => return Err("no such file".to_owned()),
                    Err(e) => return Err(format!("{:#}", engine_error(e))),
                }
            }
            Ok(())
        };
        tokio::time::timeout(REQUEST_TIMEOUT, read)
            .await
            .map_err(|_| "no answer from the engine in time".to_owned())??;
        one_file(&tar_bytes)
    }

    async fn remove(mut self) -> anyhow::Result<()> {
        self.removed = true;
        remove_container(&self.docker, &self.id).await
    }
}

/// The single regular file of a tar archive, as UTF-8 text.
fn one_file(tar_bytes: &[u8]) -> Result<String, String> {
    let mut archive = tar::Archive::new(tar_bytes);
    let mut entries = archive
        .entries()
        .map_err(|e| format!("reading the archive: {e}"))?;
    let mut entry = match entries.next() {
        Some(Ok(e)) => e,
        Some(Err(e)) => return Err(format!("reading the archive: {e}")),
        None => return Err("no such file".to_owned()),
    };
    if entry.header().entry_type() != tar::EntryType::Regular {
        return Err("not a regular file".to_owned());
    }
    if entry.size() > MAX_FILE_BYTES as u64 {
        return Err("larger than 1 MiB".to_owned());
    }
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| format!("reading the archive: {e}"))?;
    String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())
}

impl Drop for Helper {
    fn drop(&mut self) {
        if !self.removed {
            remove_in_background(&self.docker, &self.id, "a file-reading helper");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_into_directory_and_name() {
        assert_eq!(parent("/srv/app/compose.yaml"), "/srv/app");
        assert_eq!(parent("/compose.yaml"), "/");
        assert_eq!(basename("/srv/app/.env"), ".env");
    }

    #[test]
    fn the_archive_must_hold_one_small_text_file() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(5);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, "compose.yaml", &b"a: 1\n"[..])
            .unwrap();
        let tar_bytes = b.into_inner().unwrap();
        assert_eq!(one_file(&tar_bytes).unwrap(), "a: 1\n");

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(0);
        h.set_entry_type(tar::EntryType::Directory);
        h.set_cksum();
        b.append_data(&mut h, "dir", &b""[..]).unwrap();
        let tar_bytes = b.into_inner().unwrap();
        assert_eq!(one_file(&tar_bytes).unwrap_err(), "not a regular file");

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_entry_type(tar::EntryType::Regular);
        h.set_cksum();
        b.append_data(&mut h, "bin", &[0xff, 0xfe][..]).unwrap();
        let tar_bytes = b.into_inner().unwrap();
        assert_eq!(one_file(&tar_bytes).unwrap_err(), "not UTF-8 text");
    }
}
