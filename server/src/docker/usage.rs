//! Disk usage and removal of unused objects (the clean-up's Docker side):
//! the engine's `system df` (images, containers, volumes, build cache, with
//! sizes and what is reclaimable), the listings a clean-up preview needs,
//! and removal of one image, container or volume by id that never forces.
//!
//! Decisions:
//! * Removal never forces: the engine itself refuses a running container, a
//!   volume a container mounts and an image a container was created from
//!   (or that has child images); such a refusal is [`Removal::InUse`], not
//!   an error, so a clean-up reports it as skipped.
//! * An image is removed by untagging each tag it has *now* (read from the
//!   engine by id, so a tag moved to another image since is never touched),
//!   then by id; without `force` the engine refuses every step while a
//!   container uses it.
//! * Images' reclaimable size follows the `docker system df` CLI: the
//!   layers' total minus what in-use images hold on their own
//!   (`size - shared_size`); containers' is the writable layers of the
//!   stopped ones; volumes' the size of those no container mounts; build
//!   cache's the records neither in use nor shared.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{ContainerSummary, ContainerSummaryStateEnum};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, RemoveContainerOptions, RemoveImageOptions, RemoveVolumeOptions,
};

use super::ops::engine_error;
use super::{Client, REQUEST_TIMEOUT};

/// `system df` computes every container's and volume's size: it may take a
/// while on a big engine.
const DF_TIMEOUT: Duration = Duration::from_secs(120);
/// Removing an image deletes its layers from disk.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(120);

/// One image of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// `sha256:…`
    pub id: String,
    /// `repo:tag` names (none for a dangling image).
    pub tags: Vec<String>,
    /// Creation time, Unix seconds.
    pub created: i64,
    pub size: i64,
    /// Bytes shared with other images (0 when the engine does not say).
    pub shared_size: i64,
    /// No tag: what `docker image prune` removes.
    pub dangling: bool,
    /// How many containers (running or not) were created from it.
    pub containers: usize,
}

/// One container of the engine, running or not.
#[derive(Debug, Clone, PartialEq)]
pub struct Container {
    pub id: String,
    pub name: String,
    /// The engine's state word (`running`, `exited`, `created`, …).
    pub state: String,
    pub image_id: String,
    pub labels: HashMap<String, String>,
    /// Its writable layer (0 when the listing did not compute sizes).
    pub size_rw: i64,
    /// Names of the volumes it mounts.
    pub volumes: Vec<String>,
}

impl Container {
    /// Stopped: created, exited or dead (not running, paused, restarting or
    /// being removed).
    pub fn stopped(&self) -> bool {
        matches!(self.state.as_str(), "created" | "exited" | "dead")
    }
}

/// One volume of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    pub name: String,
    /// Bytes (0 when the driver does not say).
    pub size: i64,
    /// How many containers (running or not) mount it.
    pub containers: usize,
    pub labels: HashMap<String, String>,
}

/// One build-cache record.
#[derive(Debug, Clone, PartialEq)]
pub struct CacheRecord {
    pub size: i64,
    pub in_use: bool,
    pub shared: bool,
}

/// Everything `system df` says.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Usage {
    /// The images' layers on disk, shared layers once.
    pub layers_size: i64,
    pub images: Vec<Image>,
    pub containers: Vec<Container>,
    pub volumes: Vec<Volume>,
    pub build_cache: Vec<CacheRecord>,
}

/// One kind's totals, as `docker system df` prints them.
#[derive(Debug, Clone, PartialEq)]
pub struct KindTotal {
    /// `images`, `containers`, `volumes` or `build_cache`.
    pub kind: &'static str,
    pub count: u64,
    pub size: i64,
    pub reclaimable: i64,
}

fn container_of(c: ContainerSummary) -> Option<Container> {
    let state = match c.state {
        Some(ContainerSummaryStateEnum::EMPTY) | None => String::new(),
        Some(s) => s.to_string(),
    };
    Some(Container {
        id: c.id?,
        name: c
            .names
            .unwrap_or_default()
            .first()
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default(),
        state,
        image_id: c.image_id.unwrap_or_default(),
        labels: c.labels.unwrap_or_default(),
        size_rw: c.size_rw.unwrap_or(0).max(0),
        volumes: c
            .mounts
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.name)
            .filter(|n| !n.is_empty())
            .collect(),
    })
}

/// The engine's `system df`. Images' and volumes' container counts are also
/// taken from the containers it lists, so an engine that leaves a count
/// out (-1) still says which are in use.
pub async fn usage(client: &Client) -> anyhow::Result<Usage> {
    let df = tokio::time::timeout(DF_TIMEOUT, client.inner.df(None))
        .await
        .map_err(|_| anyhow::anyhow!("disk usage: no answer from the engine in time"))?
        .map_err(|e| engine_error(e).context("disk usage"))?;
    let containers: Vec<Container> = df
        .containers
        .unwrap_or_default()
        .into_iter()
        .filter_map(container_of)
        .collect();
    let mut by_image: HashMap<&str, usize> = HashMap::new();
    let mut by_volume: HashMap<&str, usize> = HashMap::new();
    for c in &containers {
        *by_image.entry(c.image_id.as_str()).or_default() += 1;
        for v in &c.volumes {
            *by_volume.entry(v.as_str()).or_default() += 1;
        }
    }
    let images = df
        .images
        .unwrap_or_default()
        .into_iter()
        .map(|i| {
            let tags: Vec<String> = i
                .repo_tags
                .into_iter()
                .filter(|t| t != "<none>:<none>")
                .collect();
            let listed = by_image.get(i.id.as_str()).copied().unwrap_or(0);
            Image {
                dangling: tags.is_empty(),
                containers: listed.max(i.containers.max(0) as usize),
                tags,
                created: i.created,
                size: i.size.max(0),
                shared_size: i.shared_size.max(0),
                id: i.id,
            }
        })
        .collect();
    let volumes = df
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| {
            let (size, refs) = v
                .usage_data
                .map(|u| (u.size.max(0), u.ref_count.max(0) as usize))
                .unwrap_or((0, 0));
            let listed = by_volume.get(v.name.as_str()).copied().unwrap_or(0);
            Volume {
                size,
                containers: listed.max(refs),
                labels: v.labels,
                name: v.name,
            }
        })
        .collect();
    let build_cache = df
        .build_cache
        .unwrap_or_default()
        .into_iter()
        .map(|b| CacheRecord {
            size: b.size.unwrap_or(0).max(0),
            in_use: b.in_use.unwrap_or(false),
            shared: b.shared.unwrap_or(false),
        })
        .collect();
    Ok(Usage {
        layers_size: df.layers_size.unwrap_or(0).max(0),
        images,
        containers,
        volumes,
        build_cache,
    })
}

/// The totals per kind (see the module docs for what is reclaimable).
pub fn totals(u: &Usage) -> Vec<KindTotal> {
    let image_sum: i64 = u.images.iter().map(|i| i.size).sum();
    let image_size = if u.layers_size > 0 {
        u.layers_size
    } else {
        image_sum
    };
    let used: i64 = u
        .images
        .iter()
        .filter(|i| i.containers > 0)
        .map(|i| (i.size - i.shared_size).max(0))
        .sum();
    let cache_size: i64 = u.build_cache.iter().map(|b| b.size).sum();
    vec![
        KindTotal {
            kind: "images",
            count: u.images.len() as u64,
            size: image_size,
            reclaimable: (image_size - used).max(0),
        },
        KindTotal {
            kind: "containers",
            count: u.containers.len() as u64,
            size: u.containers.iter().map(|c| c.size_rw).sum(),
            reclaimable: u
                .containers
                .iter()
                .filter(|c| c.stopped())
                .map(|c| c.size_rw)
                .sum(),
        },
        KindTotal {
            kind: "volumes",
            count: u.volumes.len() as u64,
            size: u.volumes.iter().map(|v| v.size).sum(),
            reclaimable: u
                .volumes
                .iter()
                .filter(|v| v.containers == 0)
                .map(|v| v.size)
                .sum(),
        },
        KindTotal {
            kind: "build_cache",
            count: u.build_cache.len() as u64,
            size: cache_size,
            reclaimable: u
                .build_cache
                .iter()
                .filter(|b| !b.in_use && !b.shared)
                .map(|b| b.size)
                .sum(),
        },
    ]
}

/// Every container, running or not, without sizes (quick): what a
/// clean-up checks again right before removing.
pub async fn containers(client: &Client) -> anyhow::Result<Vec<Container>> {
    let options = ListContainersOptionsBuilder::default().all(true).build();
    let list = tokio::time::timeout(
        REQUEST_TIMEOUT * 3,
        client.inner.list_containers(Some(options)),
    )
    .await
    .map_err(|_| anyhow::anyhow!("listing containers: no answer in time"))?
    .map_err(|e| engine_error(e).context("listing containers"))?;
    Ok(list.into_iter().filter_map(container_of).collect())
}

/// What a removal did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// It no longer exists.
    Gone,
    /// The engine refused: in use (the engine's words).
    InUse(String),
}

fn refusal(e: bollard::errors::Error) -> Result<Removal, anyhow::Error> {
    match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        } => Ok(Removal::Gone),
        bollard::errors::Error::DockerResponseServerError {
            status_code: 409,
            message,
        } => Ok(Removal::InUse(message)),
        other => Err(engine_error(other)),
    }
}

async fn timed<T>(
    what: &str,
    limit: Duration,
    f: impl std::future::Future<Output = Result<T, bollard::errors::Error>>,
) -> anyhow::Result<Result<T, bollard::errors::Error>> {
    tokio::time::timeout(limit, f)
        .await
        .map_err(|_| anyhow::anyhow!("{what}: no answer from the engine in time"))
}

/// Removes a stopped container (never forced: a running one is refused)
/// with its anonymous volumes kept.
pub async fn remove_container(client: &Client, id: &str) -> anyhow::Result<Removal> {
    let options = RemoveContainerOptions {
        force: false,
        v: false,
        link: false,
    };
    match timed(
        &format!("removing container {id}"),
        REQUEST_TIMEOUT * 3,
        client.inner.remove_container(id, Some(options)),
    )
    .await?
    {
        Ok(()) => Ok(Removal::Removed),
        Err(e) => refusal(e),
    }
}

/// Removes a volume (never forced: one a container mounts is refused).
pub async fn remove_volume(client: &Client, name: &str) -> anyhow::Result<Removal> {
    match timed(
        &format!("removing volume {name}"),
        REQUEST_TIMEOUT * 3,
        client
            .inner
            .remove_volume(name, Some(RemoveVolumeOptions { force: false })),
    )
    .await?
    {
        Ok(()) => Ok(Removal::Removed),
        Err(e) => refusal(e),
    }
}

/// Removes an image by id: untags each tag it has now, then removes it by
/// id; never forced (see the module docs).
pub async fn remove_image(client: &Client, id: &str) -> anyhow::Result<Removal> {
    let docker = &client.inner;
    let tags = match timed(
        &format!("inspecting image {id}"),
        REQUEST_TIMEOUT,
        docker.inspect_image(id),
    )
    .await?
    {
        Ok(i) => i.repo_tags.unwrap_or_default(),
        Err(e) => return refusal(e),
    };
    let options = || RemoveImageOptions {
        force: false,
        noprune: false,
    };
    let mut removed = false;
    for tag in tags.iter().filter(|t| t.as_str() != "<none>:<none>") {
        match timed(
            &format!("removing image {tag}"),
            REMOVE_TIMEOUT,
            docker.remove_image(tag, Some(options()), None),
        )
        .await?
        {
            Ok(_) => removed = true,
            Err(e) => match refusal(e)? {
                Removal::InUse(m) => return Ok(Removal::InUse(m)),
                // Another clean-up untagged it meanwhile.
                Removal::Gone | Removal::Removed => {}
            },
        }
    }
    // Removing its last tag removed the image, unless nothing had a tag.
    match timed(
        &format!("removing image {id}"),
        REMOVE_TIMEOUT,
        docker.remove_image(id, Some(options()), None),
    )
    .await?
    {
        Ok(_) => Ok(Removal::Removed),
        Err(e) => match refusal(e)? {
            Removal::Gone if removed => Ok(Removal::Removed),
            other => Ok(other),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(id: &str, size: i64, shared: i64, containers: usize) -> Image {
        Image {
            id: id.into(),
            tags: vec![],
            created: 0,
            size,
            shared_size: shared,
            dangling: true,
            containers,
        }
    }

    #[test]
    fn totals_count_only_unused_objects_as_reclaimable() {
        let stopped = Container {
            id: "a".into(),
            name: "a".into(),
            state: "exited".into(),
            image_id: "i1".into(),
            labels: HashMap::new(),
            size_rw: 10,
            volumes: vec![],
        };
        let running = Container {
            state: "running".into(),
            size_rw: 5,
            id: "b".into(),
            ..stopped.clone()
        };
        let u = Usage {
            layers_size: 1000,
            images: vec![image("i1", 600, 100, 2), image("i2", 500, 100, 0)],
            containers: vec![stopped, running],
            volumes: vec![
                Volume {
                    name: "v1".into(),
                    size: 7,
                    containers: 0,
                    labels: HashMap::new(),
                },
                Volume {
                    name: "v2".into(),
                    size: 3,
                    containers: 1,
                    labels: HashMap::new(),
                },
            ],
            build_cache: vec![
                CacheRecord {
                    size: 4,
                    in_use: false,
                    shared: false,
                },
                CacheRecord {
                    size: 8,
                    in_use: true,
                    shared: false,
                },
            ],
        };
        let t = totals(&u);
        let get = |k: &str| t.iter().find(|x| x.kind == k).unwrap().clone();
        // 1000 on disk, 500 held by the in-use image alone.
        assert_eq!((get("images").size, get("images").reclaimable), (1000, 500));
        assert_eq!(get("images").count, 2);
        assert_eq!(
            (get("containers").size, get("containers").reclaimable),
            (15, 10)
        );
        assert_eq!((get("volumes").size, get("volumes").reclaimable), (10, 7));
        assert_eq!(
            (get("build_cache").size, get("build_cache").reclaimable),
            (12, 4)
        );
    }
}
