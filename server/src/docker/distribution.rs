//! What a registry says about an image, asked through the engine, and what
//! the engine knows about a container's image: the two facts update
//! discovery (`updates::discover`) compares.
//!
//! - [`registry_digest`]: the Docker API's distribution inspect
//!   (`GET /distribution/{name}/json`). The engine contacts the registry
//!   itself, so its network, proxy, mirrors and insecure-registry settings
//!   apply, as they do to a `docker pull` on that host. Opsdeck sends no
//!   `X-Registry-Auth` of its own: a registry that needs credentials answers
//!   "unauthorized", shown per service.
//! - [`container_image`]: the image a container runs (its id), with the
//!   image's `RepoDigests` (the manifest digests it was pulled or pushed
//!   as) and creation time.

use chrono::{DateTime, Utc};

use super::ops::engine_error;
use super::{Client, REQUEST_TIMEOUT};

/// Time the engine gets to answer a distribution inspect (it talks to the
/// registry, which may be far away or slow).
pub const DISTRIBUTION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Why the registry's digest is not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistributionError {
    /// The registry has no such repository or tag (or no registry answers
    /// for the name at all).
    #[error("not in the registry: {0}")]
    NotFound(String),
    /// The registry refused for now (HTTP 429, Docker Hub's pull limit).
    #[error("rate limited by the registry: {0}")]
    RateLimited(String),
    /// The registry asks for credentials.
    #[error("the registry refused access: {0}")]
    Unauthorized(String),
    /// Anything else: unreachable, timed out, a server error.
    #[error("{0}")]
    Other(String),
}

/// The registry's current manifest digest (`sha256:…`) for `reference`,
/// asked through the engine within [`DISTRIBUTION_TIMEOUT`].
pub async fn registry_digest(
    client: &Client,
    reference: &str,
) -> Result<String, DistributionError> {
    let docker = &client.inner;
    let answer = tokio::time::timeout(
        DISTRIBUTION_TIMEOUT,
        docker.inspect_registry_image(reference, None),
    )
    .await
    .map_err(|_| {
        DistributionError::Other(format!(
            "no answer within {} s",
            DISTRIBUTION_TIMEOUT.as_secs()
        ))
    })?;
    match answer {
        Ok(d) => d
            .descriptor
            .digest
            .filter(|d| !d.is_empty())
            .ok_or_else(|| DistributionError::Other("the registry sent no digest".into())),
        Err(e) => Err(classify(e)),
    }
}

/// Sorts an engine error into the cases discovery shows differently. The
/// engine wraps the registry's answer in its own text, so the registry's
/// error codes (`MANIFEST_UNKNOWN`, `toomanyrequests`) are looked for in it.
fn classify(e: bollard::errors::Error) -> DistributionError {
    let (status, message) = match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => (Some(status_code), message),
        other => (None, engine_error(other).to_string()),
    };
    let lower = message.to_ascii_lowercase();
    if status == Some(429) || lower.contains("toomanyrequests") || lower.contains("429") {
        DistributionError::RateLimited(message)
    } else if lower.contains("unauthorized") || lower.contains("denied") {
        // Docker Hub answers "pull access denied … may require login" for
        // a repository that does not exist as well.
        DistributionError::Unauthorized(message)
    } else if status == Some(404)
        || lower.contains("manifest unknown")
        || lower.contains("not found")
        || lower.contains("name unknown")
    {
        DistributionError::NotFound(message)
    } else {
        DistributionError::Other(message)
    }
}

/// The image a container runs, as the engine has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerImage {
    /// The local image id (`sha256:…`).
    pub image_id: String,
    /// `RepoDigests`: `<repository>@sha256:…`, one per repository the image
    /// was pulled from or pushed to. Empty for an image built here and
    /// never pushed.
    pub repo_digests: Vec<String>,
    pub created: Option<DateTime<Utc>>,
}

/// The image of container `container` (inspect of the container, then of
/// its image), each within [`REQUEST_TIMEOUT`].
pub async fn container_image(client: &Client, container: &str) -> anyhow::Result<ContainerImage> {
    let docker = &client.inner;
    let inspect = tokio::time::timeout(
        REQUEST_TIMEOUT,
        docker.inspect_container(
            container,
            None::<bollard::query_parameters::InspectContainerOptions>,
        ),
    )
    .await
    .map_err(|_| anyhow::anyhow!("inspecting container {container}: no answer in time"))?
    .map_err(|e| engine_error(e).context(format!("inspecting container {container}")))?;
    let image_id = inspect
        .image
        .filter(|i| !i.is_empty())
        .ok_or_else(|| anyhow::anyhow!("container {container} names no image"))?;
    let image = tokio::time::timeout(REQUEST_TIMEOUT, docker.inspect_image(&image_id))
        .await
        .map_err(|_| anyhow::anyhow!("inspecting image {image_id}: no answer in time"))?
        .map_err(|e| engine_error(e).context(format!("inspecting image {image_id}")))?;
    Ok(ContainerImage {
        image_id,
        repo_digests: image.repo_digests.unwrap_or_default(),
        created: image.created.as_deref().and_then(|c| {
            DateTime::parse_from_rfc3339(c)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, message: &str) -> DistributionError {
        classify(bollard::errors::Error::DockerResponseServerError {
            status_code: status,
            message: message.into(),
        })
    }

    #[test]
    fn registry_answers_are_sorted() {
        assert!(matches!(
            server(
                500,
                "toomanyrequests: You have reached your pull rate limit"
            ),
            DistributionError::RateLimited(_)
        ));
        assert!(matches!(
            server(404, "manifest unknown: manifest unknown"),
            DistributionError::NotFound(_)
        ));
        assert!(matches!(
            server(500, "errors:\nmanifest unknown"),
            DistributionError::NotFound(_)
        ));
        assert!(matches!(
            server(401, "unauthorized: authentication required"),
            DistributionError::Unauthorized(_)
        ));
        assert!(matches!(
            server(
                500,
                "Get \"https://r.example/v2/\": dial tcp: connection refused"
            ),
            DistributionError::Other(_)
        ));
    }
}
