//! Docker volume sources: the volume's tar stream from the engine's
//! archive API (a created, never started helper container from the busybox
//! image mounting it read-only) → [`archive::Scan`] (file count, bytes) →
//! the pipeline. Restores go back through the same API.
//!
//! Decisions:
//! * **Which engine.** A source names its engine; without one, the only
//!   registered engine (several: the plan must name one).
//! * **The helper image** is `busybox:latest`, or
//!   `OPSDECK_BACKUP_HELPER_IMAGE`. It is never pulled: an engine without
//!   it fails the backup with a message saying to pull it (Opsdeck does
//!   not reach registries by itself). Helper containers are named
//!   `opsdeck-backup-<backup>-<idx>-<8 hex>`, labelled
//!   `opsdeck.backup-helper`, never on a network, and removed after use
//!   (in the background when the run is cancelled).
//! * **The archive** is the engine's own tar of `/volume`: one top-level
//!   `volume/` (the volume's root with its mode and owner). A stream that
//!   ends before the tar end marker fails the dump.
//! * **Restore empties the volume first** (`rm -rf` of everything in it,
//!   in the started helper), then extracts: a restored volume holds
//!   exactly the backup, not the backup merged with later files (a
//!   database's data directory with stray newer files is broken). It runs
//!   only after the whole archive passed [`archive::check_tree`]; the
//!   second read is re-checked and rewritten entry by entry
//!   ([`archive::rewrite`]), so only checked entries reach the engine. A
//!   missing volume is created (a restore into a new volume).
//! * **Verification** reads the object back (checksum), walks the tar
//!   ([`archive::check_tree`]), compares the figures with the dump's, then
//!   test-restores into a scratch volume `opsdeck-verify-<backup>-<idx>`
//!   on the same engine, reads that back through the engine and compares
//!   again; the scratch volume is always removed.

use std::collections::HashMap;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::archive::{self, Scan, TarStats};
use super::pipeline::Input;
use super::storage::ObjectReader;
use crate::docker::volumes::{self as dv, Helper};
use crate::state::AppState;

/// The helper image when `OPSDECK_BACKUP_HELPER_IMAGE` is not set.
pub const DEFAULT_HELPER_IMAGE: &str = "busybox:latest";
/// The top-level name of a volume archive.
pub const TOP: &str = "volume";

/// The helper image.
pub fn helper_image() -> String {
    std::env::var("OPSDECK_BACKUP_HELPER_IMAGE")
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| DEFAULT_HELPER_IMAGE.to_string())
}

/// A Docker volume name: `[A-Za-z0-9][A-Za-z0-9_.-]*`, at most 255.
pub fn valid_volume_name(name: &str) -> bool {
    let mut c = name.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && name.len() <= 255
        && c.all(|x| x.is_ascii_alphanumeric() || matches!(x, '_' | '.' | '-'))
}

/// An engine's connected client, by name or the only one.
pub async fn engine(
    state: &AppState,
    name: Option<&str>,
) -> Result<(String, crate::docker::Client), String> {
    let conn = match name {
        Some(n) => state
            .engines
            .by_name(n)
            .ok_or_else(|| format!("no Docker engine named \"{n}\""))?,
        None => {
            let all = state.engines.engines();
            match all.len() {
                0 => return Err("no Docker engine is registered".into()),
                1 => all.into_iter().next().expect("one"),
                _ => {
                    return Err(
                        "several Docker engines are registered: the source must name one".into(),
                    )
                }
            }
        }
    };
    let docker = conn.client().map_err(|e| e.to_string())?;
    Ok((conn.name.clone(), docker))
}

/// Checks that a helper container may be made for `volume`: not in
/// read-only mode (the helper is a container Opsdeck creates), the helper
/// image present, a valid volume name. Returns the image.
async fn ready(
    state: &AppState,
    docker: &crate::docker::Client,
    engine: &str,
    volume: &str,
) -> Result<String, String> {
    crate::actions::ensure_writable(state, "a volume helper container")
        .map_err(|e| e.to_string())?;
    let image = helper_image();
    if !dv::image_present(docker, &image)
        .await
        .map_err(|e| format!("{e:#}"))?
    {
        return Err(format!(
            "the helper image {image} is not on engine {engine}: pull it there once \
             (docker pull {image}) or set OPSDECK_BACKUP_HELPER_IMAGE to an image with sh, rm and tar"
        ));
    }
    if !valid_volume_name(volume) {
        return Err(format!(
            "\"{}\" is not a volume name",
            volume.escape_default()
        ));
    }
    Ok(image)
}

fn helper_name(backup: i64, idx: i32) -> String {
    format!(
        "opsdeck-backup-{backup}-{idx}-{:08x}",
        rand::random::<u32>()
    )
}

/// A volume being read: the pipeline's input, the figures it fills in,
/// and the helper to remove afterwards.
pub struct Dump {
    pub input: Input,
    pub stats: Arc<Mutex<TarStats>>,
    pub helper: Helper,
}

/// Starts reading `volume` (it must exist) for backup `backup`, artifact
/// `idx`.
pub async fn dump(
    state: &AppState,
    engine_name: Option<&str>,
    volume: &str,
    backup: i64,
    idx: i32,
) -> Result<Dump, String> {
    let (engine, docker) = engine(state, engine_name).await?;
    let image = ready(state, &docker, &engine, volume).await?;
    if !dv::volume_exists(&docker, volume)
        .await
        .map_err(|e| format!("{e:#}"))?
    {
        return Err(format!("no volume \"{volume}\" on engine {engine}"));
    }
    dv::remove_stale_helpers(&docker).await;
    let helper = Helper::create(
        &docker,
        &image,
        &helper_name(backup, idx),
        volume,
        true,
        vec!["true".into()],
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    let stream = helper.download(dv::MOUNT);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let (scan, stats) = Scan::new(reader);
    Ok(Dump {
        input: Input::reader(format!("volume {volume} on engine {engine}"), scan),
        stats,
        helper,
    })
}

/// Whether `volume` exists on the engine.
pub async fn exists(
    state: &AppState,
    engine_name: Option<&str>,
    volume: &str,
) -> Result<bool, String> {
    let (_, docker) = engine(state, engine_name).await?;
    dv::volume_exists(&docker, volume)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Removes `volume` (absent is fine).
pub async fn remove(
    state: &AppState,
    engine_name: Option<&str>,
    volume: &str,
) -> Result<(), String> {
    let (_, docker) = engine(state, engine_name).await?;
    dv::remove_volume(&docker, volume)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Restores a volume archive into `volume` (created when missing, emptied
/// otherwise), reading the object twice through `open`: check pass, then
/// write pass (see the module doc). Returns the figures written.
pub async fn restore<F, Fut>(
    state: &AppState,
    engine_name: Option<&str>,
    volume: &str,
    open: F,
) -> Result<TarStats, String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<ObjectReader>>,
{
    // 1. The whole archive is checked before anything is touched.
    let first = open().await.map_err(|e| format!("{e:#}"))?;
    let (checked, _) = archive::check_object(first, Some(TOP))
        .await
        .map_err(|e| format!("the archive is refused: {e}"))?;
    let (engine, docker) = engine(state, engine_name).await?;
    let image = ready(state, &docker, &engine, volume).await?;
    if !dv::volume_exists(&docker, volume)
        .await
        .map_err(|e| format!("{e:#}"))?
    {
        dv::create_volume(
            &docker,
            volume,
            HashMap::from([("opsdeck.restored".to_string(), "true".to_string())]),
        )
        .await
        .map_err(|e| format!("{e:#}"))?;
    }
    // 2. Empty it, 3. write the checked entries.
    let helper = Helper::create(
        &docker,
        &image,
        &format!("opsdeck-restore-{:08x}", rand::random::<u32>()),
        volume,
        false,
        vec![
            "sh".into(),
            "-c".into(),
            format!("rm -rf {m}/..?* {m}/.[!.]* {m}/*", m = dv::MOUNT),
        ],
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    let res = async {
        let code = helper.run().await.map_err(|e| format!("{e:#}"))?;
        if code != 0 {
            return Err(format!(
                "emptying volume {volume} failed (rm exited {code})"
            ));
        }
        let second = open().await.map_err(|e| format!("{e:#}"))?;
        upload_checked(&helper, second).await
    }
    .await;
    let _ = helper.remove().await;
    let written = res?;
    if written != checked {
        return Err(format!(
            "the archive changed between the check and the restore ({written:?} written, {checked:?} checked)"
        ));
    }
    Ok(written)
}

/// Decompresses, re-checks and rewrites the archive in a blocking thread
/// and streams it into the helper.
async fn upload_checked(helper: &Helper, object: ObjectReader) -> Result<TarStats, String> {
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    let reader = archive::decoded(object);
    let writer = tokio::task::spawn_blocking(move || {
        let mut out = ChanWriter {
            tx: tx.clone(),
            buf: Vec::with_capacity(CHUNK),
        };
        let res = archive::rewrite(reader, TOP, &mut out).and_then(|s| {
            out.flush().map_err(|e| e.to_string())?;
            Ok(s)
        });
        if let Err(e) = &res {
            // The engine must see a failed request, not a short archive.
            let _ = tx.blocking_send(Err(std::io::Error::other(e.clone())));
        }
        res
    });
    let body = tokio_stream_from(rx);
    let up = helper.upload(body).await;
    let written = writer
        .await
        .map_err(|e| format!("the archive thread failed: {e}"))?;
    let written = written.map_err(|e| format!("the archive is refused: {e}"))?;
    up.map_err(|e| format!("{e:#}"))?;
    Ok(written)
}

fn tokio_stream_from(
    mut rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
    futures::stream::poll_fn(move |cx| rx.poll_recv(cx))
}

const CHUNK: usize = 1 << 20;

/// A blocking writer sending 1 MiB chunks into a channel.
struct ChanWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl Write for ChanWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(Ok(Bytes::from(chunk))).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the engine stopped reading")
        })
    }
}

/// Reads a volume back through the engine and counts it (verification of
/// a test restore).
pub async fn measure(
    state: &AppState,
    engine_name: Option<&str>,
    volume: &str,
) -> Result<TarStats, String> {
    let (engine, docker) = engine(state, engine_name).await?;
    let image = ready(state, &docker, &engine, volume).await?;
    let helper = Helper::create(
        &docker,
        &image,
        &format!("opsdeck-measure-{:08x}", rand::random::<u32>()),
        volume,
        true,
        vec!["true".into()],
    )
    .await
    .map_err(|e| format!("{e:#}"))?;
    let stream = helper.download(dv::MOUNT);
    let reader = tokio_util::io::SyncIoBridge::new(tokio_util::io::StreamReader::new(stream));
    let res = tokio::task::spawn_blocking(move || archive::check_tree(reader, Some(TOP)))
        .await
        .map_err(|e| format!("the archive check failed: {e}"))
        .and_then(|r| r);
    let _ = helper.remove().await;
    res.map(|(s, _)| s)
}

/// The scratch volume of a verification.
pub fn scratch_name(backup: i64, idx: i32) -> String {
    format!("opsdeck-verify-{backup}-{idx}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_names_follow_dockers_rules() {
        assert!(valid_volume_name("pgdata"));
        assert!(valid_volume_name("app_data.v2-x"));
        assert!(!valid_volume_name(""));
        assert!(!valid_volume_name("-x"));
        assert!(!valid_volume_name("a/b"));
        assert!(!valid_volume_name("../x"));
        assert!(!valid_volume_name(&"a".repeat(256)));
        assert_eq!(scratch_name(7, 2), "opsdeck-verify-7-2");
    }
}
