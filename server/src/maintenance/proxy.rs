//! Proxy mode's Docker side: read, place and restore files in a container
//! through the archive API, and reload the proxy with an argv exec.
//!
//! Files go in and out as one-entry tar archives (`GET`/`PUT
//! /containers/{id}/archive`), so the container needs no tools for that;
//! only removing a file that was absent before maintenance runs `rm -f` (as
//! an argv, no shell). Paths are checked with [`check_path`] first.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use anyhow::{anyhow, bail};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::docker::archive::{self, DownloadError};
use crate::docker::ops::exec;
use crate::docker::Client;
use crate::docker::REQUEST_TIMEOUT;

/// Largest file [`snapshot`] saves.
pub const MAX_FILE: u64 = 1024 * 1024;
/// Longest a path may be.
pub const MAX_PATH: usize = 4096;
/// How long a reload (or an `rm`) may run.
pub const EXEC_TIMEOUT: Duration = Duration::from_secs(30);
/// The archive of one file of [`MAX_FILE`] bytes, with room for its headers.
const MAX_ARCHIVE: usize = MAX_FILE as usize + 64 * 1024;

/// A file as it was before maintenance replaced it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedFile {
    pub mode: u32,
    /// Base64 in JSON.
    #[serde(with = "b64")]
    pub content: Vec<u8>,
}

/// What was at each path: a file, or nothing (`None`: remove on restore).
pub type Saved = BTreeMap<String, Option<SavedFile>>;

mod b64 {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// A path proxy mode may read or write: absolute, not ending in `/`, no `.`
/// or `..` (or empty) components, no NUL, at most 4096 bytes. The message
/// reads after a field name ("page_path: must be absolute").
pub fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("is empty".into());
    }
    if p.len() > MAX_PATH {
        return Err(format!("is longer than {MAX_PATH} bytes"));
    }
    if p.contains('\0') {
        return Err("must not contain a NUL byte".into());
    }
    if !p.starts_with('/') {
        return Err(format!("must be absolute (start with /): {p:?}"));
    }
    if p.ends_with('/') {
        return Err(format!("must name a file, not end in /: {p:?}"));
    }
    for part in p[1..].split('/') {
        match part {
            "" => return Err(format!("must not contain // : {p:?}")),
            "." | ".." => return Err(format!("must not contain . or .. components: {p:?}")),
            _ => {}
        }
    }
    Ok(())
}

/// `/a/b/c.html` → (`/a/b`, `c.html`); `/c` → (`/`, `c`). `path` passed
/// [`check_path`].
fn split_path(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("/", path),
    }
}

/// A tar archive of one regular file `name` (owned by root).
pub(crate) fn file_tar(
    name: &str,
    content: &[u8],
    mode: u32,
    mtime: u64,
) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Regular);
    header.set_size(content.len() as u64);
    header.set_mode(mode & 0o7777);
    header.set_mtime(mtime);
    header.set_uid(0);
    header.set_gid(0);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, name, content)?;
    builder.into_inner()
}

/// The one regular file of an archive the engine sent for `path`.
pub(crate) fn read_file_tar(archive: &[u8], path: &str) -> anyhow::Result<SavedFile> {
    let mut ar = tar::Archive::new(archive);
    let entries = ar
        .entries()
        .map_err(|e| anyhow!("reading the archive of {path}: {e}"))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| anyhow!("reading the archive of {path}: {e}"))?;
        let header = entry.header();
        match header.entry_type() {
            tar::EntryType::XGlobalHeader => continue,
            tar::EntryType::Regular | tar::EntryType::Continuous => {}
            _ => bail!("{path} is not a regular file"),
        }
        let size = header
            .size()
            .map_err(|e| anyhow!("reading the archive of {path}: {e}"))?;
        if size > MAX_FILE {
            bail!("{path} is larger than 1 MiB");
        }
        let mode = header
            .mode()
            .map_err(|e| anyhow!("reading the archive of {path}: {e}"))?
            & 0o7777;
        let mut content = Vec::with_capacity(size as usize);
        entry
            .read_to_end(&mut content)
            .map_err(|e| anyhow!("reading the archive of {path}: {e}"))?;
        return Ok(SavedFile { mode, content });
    }
    bail!("reading {path}: the engine sent an empty archive")
}

/// The file at `path`, or `None` when there is nothing there.
async fn read_one(
    docker: &Client,
    container: &str,
    path: &str,
) -> anyhow::Result<Option<SavedFile>> {
    let stream = archive::download(docker, container, path);
    let fetch = async {
        let mut stream = std::pin::pin!(stream);
        let mut buf = Vec::new();
        while let Some(chunk) = stream.next().await {
            match chunk {
                Ok(bytes) => {
                    buf.extend_from_slice(&bytes);
                    if buf.len() > MAX_ARCHIVE {
                        // A directory sends all of it: say what it is.
                        return match read_file_tar(&buf, path) {
                            Err(e) if e.to_string().ends_with("not a regular file") => Err(e),
                            _ => Err(anyhow!("{path} is larger than 1 MiB")),
                        };
                    }
                }
                Err(DownloadError::NoSuchPath) => return Ok(None),
                Err(DownloadError::Engine(e)) => return Err(anyhow!("reading {path}: {e}")),
            }
        }
        read_file_tar(&buf, path).map(Some)
    };
    tokio::time::timeout(REQUEST_TIMEOUT, fetch)
        .await
        .map_err(|_| {
            anyhow!("reading {path}: no answer from the engine within {REQUEST_TIMEOUT:?}")
        })?
}

/// Writes one file (root-owned, `mode`) through the archive API.
async fn write_one(
    docker: &Client,
    container: &str,
    path: &str,
    content: &[u8],
    mode: u32,
) -> anyhow::Result<()> {
    check_path(path).map_err(|e| anyhow!("path {e}"))?;
    let (dir, name) = split_path(path);
    let mtime = chrono::Utc::now().timestamp().max(0) as u64;
    let archive =
        file_tar(name, content, mode, mtime).map_err(|e| anyhow!("packing {path}: {e}"))?;
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        archive::upload(docker, container, dir, archive),
    )
    .await
    .map_err(|_| anyhow!("writing {path}: no answer from the engine within {REQUEST_TIMEOUT:?}"))?
    .map_err(|e| anyhow!("writing {path}: {e}"))
}

/// The end of an exec's output for an error message: the last 300
/// characters of stderr, or of stdout when stderr is empty.
fn output_tail(stdout: &str, stderr: &str) -> String {
    let s = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    }
    .trim();
    let skip = s.chars().count().saturating_sub(300);
    s.chars().skip(skip).collect()
}

/// Reads `paths` in the container (absent files are `None`).
pub async fn snapshot(docker: &Client, container: &str, paths: &[&str]) -> anyhow::Result<Saved> {
    let mut saved = Saved::new();
    for path in paths {
        check_path(path).map_err(|e| anyhow!("path {e}"))?;
        let file = read_one(docker, container, path).await?;
        saved.insert((*path).to_owned(), file);
    }
    Ok(saved)
}

/// Writes each `(path, content)` (mode 0644) into the container.
pub async fn place(
    docker: &Client,
    container: &str,
    files: &[(&str, &[u8])],
) -> anyhow::Result<()> {
    for (path, _) in files {
        check_path(path).map_err(|e| anyhow!("path {e}"))?;
    }
    for (path, content) in files {
        write_one(docker, container, path, content, 0o644).await?;
    }
    Ok(())
}

/// Puts back what `saved` holds: files rewritten with their mode, absent
/// ones removed. Tries every path, then reports what failed.
pub async fn restore(docker: &Client, container: &str, saved: &Saved) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    for (path, file) in saved {
        let result = match file {
            Some(f) => write_one(docker, container, path, &f.content, f.mode).await,
            None => remove(docker, container, path).await,
        };
        if let Err(e) = result {
            errors.push(e.to_string());
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        bail!("restoring: {}", errors.join("; "))
    }
}

/// `rm -f path` in the container (argv, no shell).
async fn remove(docker: &Client, container: &str, path: &str) -> anyhow::Result<()> {
    check_path(path).map_err(|e| anyhow!("path {e}"))?;
    let argv = vec!["rm".to_owned(), "-f".to_owned(), path.to_owned()];
    let r = exec(docker, container, &argv, EXEC_TIMEOUT)
        .await
        .map_err(|e| anyhow!("removing {path}: {e}"))?;
    if r.timed_out {
        bail!("removing {path}: rm did not finish within {EXEC_TIMEOUT:?}");
    }
    if r.exit_code != Some(0) {
        let code = r
            .exit_code
            .map_or_else(|| "?".to_owned(), |c| c.to_string());
        bail!(
            "removing {path}: rm exited {code}: {}",
            output_tail(&r.stdout, &r.stderr)
        );
    }
    Ok(())
}

/// Runs the reload argv in the container; a non-zero exit is an error with
/// the end of its output. An empty argv does nothing.
pub async fn reload(docker: &Client, container: &str, argv: &[String]) -> anyhow::Result<()> {
    if argv.is_empty() {
        return Ok(());
    }
    let cmd = argv.join(" ");
    let r = exec(docker, container, argv, EXEC_TIMEOUT)
        .await
        .map_err(|e| anyhow!("reload {cmd}: {e}"))?;
    if r.timed_out {
        bail!(
            "reload {cmd} did not finish within {EXEC_TIMEOUT:?}: {}",
            output_tail(&r.stdout, &r.stderr)
        );
    }
    if r.exit_code != Some(0) {
        let code = r
            .exit_code
            .map_or_else(|| "?".to_owned(), |c| c.to_string());
        bail!(
            "reload {cmd} exited {code}: {}",
            output_tail(&r.stdout, &r.stderr)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        for ok in [
            "/a",
            "/usr/share/nginx/html/index.html",
            "/etc/nginx/conf.d/x.conf",
            "/a/.hidden",
            "/a/b..c",
        ] {
            assert_eq!(check_path(ok), Ok(()), "{ok}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH));
        for bad in [
            "",
            "a/b",
            "./a",
            "/",
            "/a/",
            "/a/../b",
            "/a/./b",
            "/..",
            "/a//b",
            "/a\0b",
            long.as_str(),
        ] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        assert_eq!(
            check_path("x").unwrap_err(),
            "must be absolute (start with /): \"x\""
        );
        assert_eq!(split_path("/a/b/c.html"), ("/a/b", "c.html"));
        assert_eq!(split_path("/c"), ("/", "c"));
    }

    #[test]
    fn one_file_archives_round_trip() {
        let content = b"<h1>maintenance</h1>\n".to_vec();
        let bytes = file_tar("index.html", &content, 0o644, 1_700_000_000).unwrap();
        assert_eq!(bytes.len() % 512, 0);
        let mut ar = tar::Archive::new(&bytes[..]);
        let mut count = 0;
        for e in ar.entries().unwrap() {
            let mut e = e.unwrap();
            count += 1;
            assert_eq!(e.path().unwrap().to_str(), Some("index.html"));
            assert_eq!(e.header().entry_type(), tar::EntryType::Regular);
            assert_eq!(e.header().mode().unwrap(), 0o644);
            assert_eq!(e.header().mtime().unwrap(), 1_700_000_000);
            assert_eq!(e.header().uid().unwrap(), 0);
            let mut read = Vec::new();
            e.read_to_end(&mut read).unwrap();
            assert_eq!(read, content);
        }
        assert_eq!(count, 1);

        // What snapshot reads back (mode without the file type bits).
        let bytes = file_tar("x.conf", b"", 0o100_4755, 0).unwrap();
        let f = read_file_tar(&bytes, "/etc/x.conf").unwrap();
        assert_eq!(
            f,
            SavedFile {
                mode: 0o4755,
                content: Vec::new()
            }
        );
        let long_name = "n".repeat(200);
        let bytes = file_tar(&long_name, b"abc", 0o600, 0).unwrap();
        assert_eq!(read_file_tar(&bytes, "/x").unwrap().content, b"abc");
    }

    #[test]
    fn directories_links_and_big_files_are_refused() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        h.set_mode(0o755);
        b.append_data(&mut h, "html", &b""[..]).unwrap();
        let dir = b.into_inner().unwrap();
        let e = read_file_tar(&dir, "/www/html").unwrap_err().to_string();
        assert_eq!(e, "/www/html is not a regular file");

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "index.html", "/elsewhere").unwrap();
        let link = b.into_inner().unwrap();
        let e = read_file_tar(&link, "/www/index.html")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "/www/index.html is not a regular file");

        let big = vec![0u8; MAX_FILE as usize + 1];
        let bytes = file_tar("big", &big, 0o644, 0).unwrap();
        let e = read_file_tar(&bytes, "/big").unwrap_err().to_string();
        assert_eq!(e, "/big is larger than 1 MiB");
        // The header alone says so (snapshot stops reading early).
        let e = read_file_tar(&bytes[..MAX_ARCHIVE.min(bytes.len()) / 2], "/big")
            .unwrap_err()
            .to_string();
        assert_eq!(e, "/big is larger than 1 MiB");
        assert!(read_file_tar(&[0u8; 1024], "/e").is_err());
    }

    #[test]
    fn saved_files_are_base64_in_json() {
        let mut saved = Saved::new();
        saved.insert(
            "/a".into(),
            Some(SavedFile {
                mode: 0o644,
                content: b"hi\0".to_vec(),
            }),
        );
        saved.insert("/b".into(), None);
        let json = serde_json::to_string(&saved).unwrap();
        assert_eq!(json, r#"{"/a":{"mode":420,"content":"aGkA"},"/b":null}"#);
        assert_eq!(serde_json::from_str::<Saved>(&json).unwrap(), saved);
    }

    #[test]
    fn output_tails() {
        assert_eq!(output_tail("out\n", ""), "out");
        assert_eq!(output_tail("out", " err \n"), "err");
        let long = format!("{}{}", "a".repeat(10), "é".repeat(300));
        assert_eq!(output_tail("", &long), "é".repeat(300));
    }
}
