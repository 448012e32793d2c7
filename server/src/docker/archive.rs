//! Files in and out of a container through the engine's archive API
//! (`GET`/`PUT /containers/{id}/archive`): the container needs no tools
//! for it. What goes in and comes out is a tar archive; building and
//! reading the archive is the caller's business.
//!
//! Deadlines are the caller's too: a small file and a whole volume need
//! very different ones (volume transfers go through
//! [`volumes::Helper`](super::volumes::Helper)).

use futures::{Stream, StreamExt};
use tokio_util::bytes::Bytes;

use bollard::query_parameters::{DownloadFromContainerOptions, UploadToContainerOptions};

use super::ops::engine_error;
use super::Client;

/// Why reading an archive failed.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The path does not exist in the container (the container does).
    #[error("no such file or directory")]
    NoSuchPath,
    /// The engine refused or failed (a missing container included).
    #[error("{0}")]
    Engine(anyhow::Error),
}

/// The tar archive of `path` in `container`, as the engine sends it, in
/// chunks.
pub fn download(
    client: &Client,
    container: &str,
    path: &str,
) -> impl Stream<Item = Result<Bytes, DownloadError>> + Send + 'static {
    client
        .inner
        .download_from_container(
            container,
            Some(DownloadFromContainerOptions {
                path: path.to_owned(),
            }),
        )
        .map(|chunk| match chunk {
            Ok(bytes) => Ok(bytes),
            // 404 is also the answer for a missing container: only a
            // missing path means "nothing there".
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404,
                message,
            }) if !message.to_ascii_lowercase().contains("no such container") => {
                Err(DownloadError::NoSuchPath)
            }
            Err(e) => Err(DownloadError::Engine(engine_error(e))),
        })
}

/// Extracts the tar `archive` into directory `dir` of `container`.
pub async fn upload(
    client: &Client,
    container: &str,
    dir: &str,
    archive: Vec<u8>,
) -> anyhow::Result<()> {
    client
        .inner
        .upload_to_container(
            container,
            Some(UploadToContainerOptions {
                path: dir.to_owned(),
                ..Default::default()
            }),
            bollard::body_full(archive.into()),
        )
        .await
        .map_err(engine_error)
}
