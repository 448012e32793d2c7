//! Host file sources: a file or directory on the Opsdeck host, archived
//! as tar in a blocking thread and streamed into the pipeline (no
//! temporary file), and restored with [`archive::extract`].
//!
//! Decisions:
//! * **The path** is absolute, without `..`, not `/`, and must exist when
//!   the backup runs. The archive holds one top-level entry named after
//!   it (`/etc/nginx` → `nginx/…`), as `tar -C /etc nginx` would. The path
//!   itself is followed when it is a link; everything below it is archived
//!   as it is: **symbolic links as links, never followed**.
//! * Links must stay inside the path, as a restore refuses any other
//!   ([`archive`]): an absolute link into the path is stored relative
//!   (`/etc/nginx/sites-enabled/default -> /etc/nginx/sites-available/default`
//!   becomes `../sites-available/default`, the same file once restored in
//!   place); a link pointing outside it (`/etc/localtime ->
//!   /usr/share/zoneinfo/…`) is left out and named on the run page, so the
//!   backup stays restorable and the operator sees what to recreate.
//! * Regular files, directories and symbolic links are archived with
//!   their mode, owner ids and modification time (GNU long names for long
//!   paths). Sockets, FIFOs and devices are skipped and counted (shown on
//!   the run page); hard-linked files are archived as separate files. A
//!   file or directory that vanishes while the archive is built is
//!   skipped; one that cannot be read fails the backup (a backup that
//!   silently misses files is not good).
//! * A file that changes size while it is read keeps the size its header
//!   announced (cut, or padded with zeros) so the archive stays readable;
//!   such files are counted as `changed` on the run page.
//! * The archive is produced by a plain thread into a bounded channel (4
//!   chunks of 1 MiB); its reader fails on the writer's error and on a
//!   writer that went away without finishing, never a short clean end.
//!   When the pipeline stops reading, the thread's next send fails and it
//!   stops.
//! * A **restore** ([`restore`]) checks the whole archive first, then
//!   extracts it to a staging directory next to the destination and swaps
//!   it into place ([`archive::extract`]).

use std::future::Future;
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Mutex};

use tar::{EntryType, Header, HeaderMode};

use super::archive::{self, Scan, TarStats};
use super::pipeline::Input;
use super::storage::ObjectReader;

const CHUNK: usize = 1 << 20;
const CHANNEL: usize = 4;

/// Checks a source or restore path: absolute, no `..`, not `/`, no NUL.
/// Returns it normalised.
pub fn check_path(raw: &str) -> Result<PathBuf, String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err("must not be empty".into());
    }
    if raw.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    // PATH_MAX: a longer path cannot name a file on the host.
    if raw.len() > 4096 {
        return Err("at most 4096 bytes".into());
    }
    let p = Path::new(raw);
    if !p.is_absolute() {
        return Err("must be an absolute path".into());
    }
    if p.components().any(|c| matches!(c, Component::ParentDir)) {
        return Err("must not contain \"..\"".into());
    }
    let norm: PathBuf = p.components().collect();
    if norm.parent().is_none() {
        return Err("must not be / (name a directory or file below it)".into());
    }
    Ok(norm)
}

/// The top-level name of the archive of `path`.
pub fn top_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "root".into())
}

/// What the archive writer skipped or saw change.
#[derive(Debug, Default)]
pub struct Notes {
    /// Sockets, FIFOs, devices.
    pub skipped: AtomicU64,
    /// Files that vanished while the archive was built.
    pub vanished: AtomicU64,
    /// Files whose size changed while they were read.
    pub changed: AtomicU64,
    /// Symbolic links left out because they point outside the path
    /// (`link -> target`, the first 20).
    pub outside_links: Mutex<Vec<String>>,
    /// How many there were.
    pub outside: AtomicU64,
    /// Absolute links into the path, stored relative.
    pub relativised: AtomicU64,
}

/// A host path being archived: the pipeline's input, the figures it fills
/// in, and what the writer skipped.
pub struct Dump {
    pub input: Input,
    pub stats: Arc<Mutex<TarStats>>,
    pub notes: Arc<Notes>,
}

/// Starts archiving `path` (checked, must exist).
pub fn dump(path: &str) -> Result<Dump, String> {
    let root = check_path(path).map_err(|e| format!("path {path}: {e}"))?;
    let meta =
        std::fs::metadata(&root).map_err(|e| format!("{}: {}", root.display(), io_msg(&e)))?;
    if !meta.is_dir() && !meta.is_file() {
        return Err(format!(
            "{}: not a regular file or a directory",
            root.display()
        ));
    }
    let (tx, rx) = sync_channel::<Msg>(CHANNEL);
    let notes = Arc::new(Notes::default());
    let notes_t = notes.clone();
    let top = top_name(&root);
    std::thread::Builder::new()
        .name("backup-files".into())
        .spawn(move || {
            let mut w = ChanWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            let res = write_tar(&root, &top, &mut w, &notes_t);
            let _ = tx.send(match res {
                Ok(()) => Msg::Done,
                Err(e) => Msg::Fail(e),
            });
        })
        .map_err(|e| format!("cannot start the archive thread: {e}"))?;
    let reader = ChanReader {
        rx,
        cur: Vec::new(),
        pos: 0,
        done: false,
    };
    let (scan, stats) = Scan::new(reader);
    Ok(Dump {
        input: Input::reader(format!("the archive of {path}"), scan),
        stats,
        notes,
    })
}

enum Msg {
    Data(Vec<u8>),
    Fail(String),
    Done,
}

struct ChanWriter {
    tx: SyncSender<Msg>,
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
        self.tx.send(Msg::Data(chunk)).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the backup stopped reading")
        })
    }
}

struct ChanReader {
    rx: Receiver<Msg>,
    cur: Vec<u8>,
    pos: usize,
    done: bool,
}

impl Read for ChanReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if self.pos < self.cur.len() {
                let n = buf.len().min(self.cur.len() - self.pos);
                buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
                self.pos += n;
                return Ok(n);
            }
            if self.done {
                return Ok(0);
            }
            match self.rx.recv() {
                Ok(Msg::Data(d)) => {
                    self.cur = d;
                    self.pos = 0;
                }
                Ok(Msg::Done) => self.done = true,
                Ok(Msg::Fail(e)) => return Err(std::io::Error::other(e)),
                Err(_) => {
                    return Err(std::io::Error::other(
                        "the archive writer stopped before finishing",
                    ))
                }
            }
        }
    }
}

fn io_msg(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Writes the tar of `root` (named `top`) to `out`.
fn write_tar(root: &Path, top: &str, out: &mut ChanWriter, notes: &Notes) -> Result<(), String> {
    let mut b = tar::Builder::new(out);
    let meta =
        std::fs::metadata(root).map_err(|e| format!("{}: {}", root.display(), io_msg(&e)))?;
    if meta.is_file() {
        add_file(&mut b, root, Path::new(top), &meta, notes)?;
    } else {
        add_dir(&mut b, root, root, PathBuf::from(top), &meta, notes)?;
    }
    let out = b
        .into_inner()
        .map_err(|e| format!("writing the archive: {e}"))?;
    out.flush().map_err(|e| format!("writing the archive: {e}"))
}

fn header_of(meta: &std::fs::Metadata, kind: EntryType) -> Header {
    let mut h = Header::new_gnu();
    h.set_metadata_in_mode(meta, HeaderMode::Complete);
    h.set_entry_type(kind);
    h
}

fn add_dir(
    b: &mut tar::Builder<&mut ChanWriter>,
    root: &Path,
    dir: &Path,
    name: PathBuf,
    meta: &std::fs::Metadata,
    notes: &Notes,
) -> Result<(), String> {
    let mut h = header_of(meta, EntryType::Directory);
    h.set_size(0);
    b.append_data(&mut h, &name, std::io::empty())
        .map_err(|e| format!("writing the archive: {e}"))?;
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.vanished.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        Err(e) => return Err(format!("{}: {}", dir.display(), io_msg(&e))),
    };
    let mut entries: Vec<_> = rd
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: {}", dir.display(), io_msg(&e)))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let path = e.path();
        let child = name.join(e.file_name());
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(m) => m,
            Err(x) if x.kind() == std::io::ErrorKind::NotFound => {
                notes.vanished.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            Err(x) => return Err(format!("{}: {}", path.display(), io_msg(&x))),
        };
        let ft = meta.file_type();
        if ft.is_dir() {
            add_dir(b, root, &path, child, &meta, notes)?;
        } else if ft.is_file() {
            add_file(b, &path, &child, &meta, notes)?;
        } else if ft.is_symlink() {
            let target = match std::fs::read_link(&path) {
                Ok(t) => t,
                Err(x) if x.kind() == std::io::ErrorKind::NotFound => {
                    notes.vanished.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                Err(x) => return Err(format!("{}: {}", path.display(), io_msg(&x))),
            };
            let Some(target) = link_inside(root, &child, &target, notes) else {
                notes.outside.fetch_add(1, Ordering::Relaxed);
                let mut l = notes
                    .outside_links
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if l.len() < 20 {
                    l.push(format!("{} -> {}", path.display(), target.display()));
                }
                continue;
            };
            let mut h = header_of(&meta, EntryType::Symlink);
            h.set_size(0);
            b.append_link(&mut h, &child, &target)
                .map_err(|e| format!("writing the archive: {e}"))?;
        } else {
            notes.skipped.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// The target a symbolic link is archived with, or `None` when it points
/// outside `root` (a restore would refuse it): relative targets as they
/// are, absolute ones into `root` made relative (`/etc/nginx/a` from
/// `/etc/nginx/b/l` becomes `../a`). `name` is the link's archive path
/// (the top-level name first).
fn link_inside(root: &Path, name: &Path, target: &Path, notes: &Notes) -> Option<PathBuf> {
    let stored = if target.is_absolute() {
        if target
            .components()
            .any(|c| matches!(c, Component::ParentDir))
        {
            return None;
        }
        let norm: PathBuf = target.components().collect();
        let inside = norm.strip_prefix(root).ok()?;
        let ups = name.components().count().saturating_sub(2);
        let mut rel = PathBuf::new();
        for _ in 0..ups {
            rel.push("..");
        }
        rel.push(inside);
        if rel.as_os_str().is_empty() {
            rel.push(".");
        }
        notes.relativised.fetch_add(1, Ordering::Relaxed);
        rel
    } else {
        target.to_path_buf()
    };
    use std::os::unix::ffi::OsStrExt;
    archive::link_stays_inside(name, stored.as_os_str().as_bytes()).ok()?;
    Some(stored)
}

fn add_file(
    b: &mut tar::Builder<&mut ChanWriter>,
    path: &Path,
    name: &Path,
    meta: &std::fs::Metadata,
    notes: &Notes,
) -> Result<(), String> {
    let f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            notes.vanished.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        Err(e) => return Err(format!("{}: {}", path.display(), io_msg(&e))),
    };
    // The file opened may differ from the one listed (replaced meanwhile).
    let meta_now = f
        .metadata()
        .map_err(|e| format!("{}: {}", path.display(), io_msg(&e)))?;
    if !meta_now.is_file() {
        notes.skipped.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    let _ = meta;
    let size = meta_now.len();
    let mut h = header_of(&meta_now, EntryType::Regular);
    h.set_size(size);
    let mut data = Exact {
        inner: f,
        left: size,
        short: false,
        err: None,
    };
    b.append_data(&mut h, name, &mut data)
        .map_err(|e| match data.err.take() {
            Some(r) => format!("reading {}: {}", path.display(), io_msg(&r)),
            None => format!("writing the archive: {e}"),
        })?;
    // More data than announced: the file grew.
    let mut probe = [0u8; 1];
    let grew = matches!(data.inner.read(&mut probe), Ok(n) if n > 0);
    if data.short || grew {
        notes.changed.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}

/// Exactly `left` bytes of a file: its bytes, then zeros if it shrank.
struct Exact {
    inner: std::fs::File,
    left: u64,
    short: bool,
    /// A read error (kept for the message).
    err: Option<std::io::Error>,
}

impl Read for Exact {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = (self.left.min(buf.len() as u64)) as usize;
        let n = if self.short {
            0
        } else {
            loop {
                match self.inner.read(&mut buf[..want]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        let msg = e.to_string();
                        self.err = Some(e);
                        return Err(std::io::Error::other(msg));
                    }
                }
            }
        };
        if n == 0 {
            self.short = true;
            buf[..want].fill(0);
            self.left -= want as u64;
            return Ok(want);
        }
        self.left -= n as u64;
        Ok(n)
    }
}

/// Restores a files archive to `dest` (replaced when it exists), reading
/// the object twice through `open`: the whole check first, then the
/// extraction into a staging copy swapped into place. `dest` is checked
/// like a source path; its parent must exist.
pub async fn restore<F, Fut>(dest: &str, open: F) -> Result<TarStats, String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = anyhow::Result<ObjectReader>>,
{
    let dest = check_path(dest).map_err(|e| format!("restore path {dest}: {e}"))?;
    let first = open().await.map_err(|e| format!("{e:#}"))?;
    let (checked, top) = archive::check_object(first, None)
        .await
        .map_err(|e| format!("the archive is refused: {e}"))?;
    let parent = dest.parent().expect("checked: not /").to_path_buf();
    match tokio::fs::metadata(&parent).await {
        Ok(m) if m.is_dir() => {}
        _ => {
            return Err(format!(
                "{}: the parent directory does not exist",
                dest.display()
            ))
        }
    }
    let second = archive::decoded(open().await.map_err(|e| format!("{e:#}"))?);
    let top = top.to_string_lossy().into_owned();
    let written = tokio::task::spawn_blocking(move || archive::extract(second, &top, &dest))
        .await
        .map_err(|e| format!("the restore thread failed: {e}"))??;
    if written != checked {
        return Err(format!(
            "the archive changed between the check and the restore ({written:?} written, {checked:?} checked)"
        ));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn paths_are_absolute_without_dotdot() {
        assert_eq!(
            check_path(" /etc/nginx/ ").unwrap(),
            PathBuf::from("/etc/nginx")
        );
        assert!(check_path("etc").unwrap_err().contains("absolute"));
        assert!(check_path("/etc/../root").unwrap_err().contains(".."));
        assert!(check_path("/").unwrap_err().contains("must not be /"));
        assert!(check_path("").is_err());
        assert_eq!(top_name(Path::new("/etc/nginx")), "nginx");
    }

    #[test]
    fn a_directory_streams_as_a_checked_tar_and_restores() {
        let tmp = tempfile::tempdir().unwrap();
        let src = tmp.path().join("conf");
        std::fs::create_dir_all(src.join("sites/enabled")).unwrap();
        std::fs::write(src.join("main.conf"), b"worker 4;\n").unwrap();
        std::fs::write(src.join("sites/a.conf"), vec![b'x'; 300_000]).unwrap();
        std::fs::set_permissions(
            src.join("main.conf"),
            std::fs::Permissions::from_mode(0o640),
        )
        .unwrap();
        std::os::unix::fs::symlink("../a.conf", src.join("sites/enabled/a.conf")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", src.join("outside")).unwrap();
        std::os::unix::fs::symlink("../../..", src.join("sites/up")).unwrap();
        std::os::unix::fs::symlink(src.join("main.conf"), src.join("sites/enabled/abs")).unwrap();
        let sock = std::os::unix::net::UnixListener::bind(src.join("s.sock")).unwrap();

        let d = dump(src.to_str().unwrap()).unwrap();
        let Input::Reader { mut reader, .. } = d.input else {
            panic!("a reader")
        };
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        drop(sock);
        let stats = d.stats.lock().unwrap().clone();
        assert_eq!(
            (stats.files, stats.bytes, stats.dirs, stats.symlinks),
            (2, 300_010, 3, 2)
        );
        assert_eq!(d.notes.skipped.load(Ordering::Relaxed), 1, "the socket");
        // Links out of the path are left out and named; an absolute link
        // into it is stored relative.
        assert_eq!(d.notes.outside.load(Ordering::Relaxed), 2);
        let out = d.notes.outside_links.lock().unwrap().join(", ");
        assert!(out.contains("outside -> /etc/passwd"), "{out}");
        assert!(out.contains("up -> ../../.."), "{out}");
        assert_eq!(d.notes.relativised.load(Ordering::Relaxed), 1);
        // The checks pass and count the same.
        assert_eq!(archive::check_entries(&bytes[..]).unwrap(), stats);
        let (s, top) = archive::check_tree(&bytes[..], None).unwrap();
        assert_eq!(top, PathBuf::from("conf"));
        assert_eq!(s, stats, "the streaming count and the check agree");
        let dest = tmp.path().join("restored");
        let w = archive::extract(&bytes[..], "conf", &dest).unwrap();
        assert_eq!(w, s);
        assert_eq!(
            std::fs::read(dest.join("main.conf")).unwrap(),
            b"worker 4;\n"
        );
        let mode = std::fs::metadata(dest.join("main.conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(
            std::fs::read_link(dest.join("sites/enabled/a.conf")).unwrap(),
            PathBuf::from("../a.conf")
        );
        assert_eq!(
            std::fs::read(dest.join("sites/enabled/a.conf"))
                .unwrap()
                .len(),
            300_000
        );
        assert_eq!(
            std::fs::read_link(dest.join("sites/enabled/abs")).unwrap(),
            PathBuf::from("../../main.conf")
        );
        assert_eq!(
            std::fs::read(dest.join("sites/enabled/abs")).unwrap(),
            b"worker 4;\n"
        );
        assert!(!dest.join("outside").exists() && !dest.join("sites/up").exists());
    }

    #[test]
    fn a_single_file_and_errors() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("hosts");
        std::fs::write(&f, b"127.0.0.1 localhost\n").unwrap();
        let d = dump(f.to_str().unwrap()).unwrap();
        let Input::Reader { mut reader, .. } = d.input else {
            panic!("a reader")
        };
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        let (s, top) = archive::check_tree(&bytes[..], None).unwrap();
        assert_eq!((s.files, s.bytes, top), (1, 20, PathBuf::from("hosts")));
        let dest = tmp.path().join("hosts.restored");
        archive::extract(&bytes[..], "hosts", &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), b"127.0.0.1 localhost\n");

        let missing = tmp.path().join("nope");
        let err = dump(missing.to_str().unwrap()).err().unwrap();
        assert!(err.contains("does not exist"), "{err}");
    }

    #[test]
    fn a_writer_that_dies_is_an_error_not_an_end() {
        let (tx, rx) = sync_channel::<Msg>(1);
        tx.send(Msg::Data(b"abc".to_vec())).unwrap();
        drop(tx);
        let mut r = ChanReader {
            rx,
            cur: Vec::new(),
            pos: 0,
            done: false,
        };
        let mut out = Vec::new();
        let err = r.read_to_end(&mut out).unwrap_err();
        assert!(
            err.to_string().contains("stopped before finishing"),
            "{err}"
        );
        assert_eq!(out, b"abc");
    }
}
