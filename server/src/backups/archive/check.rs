//! Checking archive entries before anything is written: paths normal and
//! relative, links staying inside, no devices, one top-level entry.

use super::*;

/// The root entries are checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Root {
    /// The directory the archive is extracted into.
    Archive,
    /// One top-level name; taken from the first entry when `None`.
    Top(Option<PathBuf>),
}

/// What a checked entry is.
#[derive(Debug, Clone)]
pub struct Checked {
    /// Normalised relative path (no `.`, no `..`, no trailing `/`); empty
    /// for the archive root itself (`./`).
    pub path: PathBuf,
    pub kind: EntryType,
    /// Symlink target as stored, or hard link target normalised.
    pub link: Option<PathBuf>,
}

/// The checking state across entries.
#[derive(Debug)]
pub(super) struct Tracker {
    pub(super) root: Root,
    pub(super) symlinks: HashSet<PathBuf>,
    pub(super) files: HashSet<PathBuf>,
}

impl Tracker {
    pub(super) fn new(root: Root) -> Tracker {
        Tracker {
            root,
            symlinks: HashSet::new(),
            files: HashSet::new(),
        }
    }

    /// The top-level name ([`Root::Top`]) once known.
    pub(super) fn top(&self) -> Option<&Path> {
        match &self.root {
            Root::Top(Some(t)) => Some(t),
            _ => None,
        }
    }

    pub(super) fn check(
        &mut self,
        raw_path: &[u8],
        kind: EntryType,
        raw_link: Option<&[u8]>,
    ) -> Result<Checked, String> {
        let shown = String::from_utf8_lossy(raw_path).into_owned();
        let path = normal_path(raw_path).map_err(|e| format!("entry \"{shown}\": {e}"))?;
        let err = |m: String| format!("entry \"{shown}\": {m}");
        // The root.
        let depth_base = match &mut self.root {
            Root::Archive => 0,
            Root::Top(top) => {
                let first = match path.components().next() {
                    Some(Component::Normal(c)) => PathBuf::from(c),
                    _ => {
                        return Err(err(
                            "the archive root itself; expected one top-level name".into()
                        ))
                    }
                };
                match top {
                    None => *top = Some(first),
                    Some(t) if *t == first => {}
                    Some(t) => {
                        return Err(err(format!(
                            "outside the archive's top-level \"{}\"",
                            t.display()
                        )))
                    }
                }
                1
            }
        };
        if path.as_os_str().is_empty() && kind != EntryType::Directory {
            return Err(err("the archive root must be a directory".into()));
        }
        // Nothing below a link of the archive.
        let mut prefix = PathBuf::new();
        let comps: Vec<&OsStr> = path.iter().collect();
        for c in comps.iter().take(comps.len().saturating_sub(1)) {
            prefix.push(c);
            if self.symlinks.contains(&prefix) {
                return Err(err(format!(
                    "below the symbolic link \"{}\" of the archive (a write through a link)",
                    prefix.display()
                )));
            }
        }
        let mut link = None;
        match kind {
            EntryType::Regular | EntryType::Continuous | EntryType::Directory | EntryType::Fifo => {
            }
            EntryType::Symlink => {
                if path.components().count() <= depth_base {
                    return Err(err("the top-level entry must not be a link".into()));
                }
                let target = raw_link.ok_or_else(|| err("a link without a target".into()))?;
                check_symlink(&path, target, depth_base).map_err(err)?;
                link = Some(PathBuf::from(OsStr::from_bytes(target)));
            }
            EntryType::Link => {
                let target = raw_link.ok_or_else(|| err("a hard link without a target".into()))?;
                let t = normal_path(target).map_err(|e| err(format!("hard link target: {e}")))?;
                if t.as_os_str().is_empty() || !self.files.contains(&t) {
                    return Err(err(format!(
                        "hard link to \"{}\", which is not an earlier regular file of the archive",
                        String::from_utf8_lossy(target)
                    )));
                }
                let mut p = PathBuf::new();
                for c in t.iter() {
                    if self.symlinks.contains(&p) && !p.as_os_str().is_empty() {
                        return Err(err("hard link target below a symbolic link".into()));
                    }
                    p.push(c);
                }
                if let Some(top) = self.top() {
                    if !t.starts_with(top) {
                        return Err(err(
                            "hard link target outside the archive's top-level name".into()
                        ));
                    }
                }
                link = Some(t);
            }
            EntryType::Char | EntryType::Block => {
                return Err(err("a device file".into()));
            }
            EntryType::GNUSparse => return Err(err("a sparse file (not supported)".into())),
            other => {
                return Err(err(format!(
                    "an unsupported entry type ({:?})",
                    other.as_byte() as char
                )))
            }
        }
        // The entry replaces whatever was at its path.
        if kind == EntryType::Symlink {
            self.symlinks.insert(path.clone());
        } else {
            self.symlinks.remove(&path);
        }
        if matches!(kind, EntryType::Regular | EntryType::Continuous) {
            self.files.insert(path.clone());
        } else if kind != EntryType::Link {
            self.files.remove(&path);
        }
        Ok(Checked { path, kind, link })
    }
}

/// A relative, normalised path: no root, no `..`, `.` dropped.
pub(super) fn normal_path(raw: &[u8]) -> Result<PathBuf, String> {
    if raw.is_empty() {
        return Err("an empty name".into());
    }
    let p = Path::new(OsStr::from_bytes(raw));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            Component::ParentDir => return Err("the name contains \"..\"".into()),
            Component::RootDir | Component::Prefix(_) => {
                return Err("an absolute name".into());
            }
        }
    }
    Ok(out)
}

/// Whether a symbolic link at archive path `path` (top-level name first)
/// to `target` passes [`check_tree`].
pub fn link_stays_inside(path: &Path, target: &[u8]) -> Result<(), String> {
    check_symlink(path, target, 1)
}

/// A symbolic link at `path` to `target` stays inside the root: relative,
/// `..` only leading, and not above `depth_base` components.
pub(super) fn check_symlink(path: &Path, target: &[u8], depth_base: usize) -> Result<(), String> {
    let shown = String::from_utf8_lossy(target);
    if target.is_empty() {
        return Err("a symbolic link with an empty target".into());
    }
    let t = Path::new(OsStr::from_bytes(target));
    let mut depth = path.components().count() as i64 - 1; // the link's directory
    let mut named = false;
    for c in t.components() {
        match c {
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "symbolic link to the absolute path \"{shown}\" (leaves the archive)"
                ))
            }
            Component::CurDir => {}
            Component::ParentDir if named => {
                return Err(format!(
                    "symbolic link to \"{shown}\": \"..\" after a name is not allowed"
                ))
            }
            Component::ParentDir => {
                depth -= 1;
                if depth < depth_base as i64 {
                    return Err(format!(
                        "symbolic link to \"{shown}\" leaves the archive root"
                    ));
                }
            }
            Component::Normal(_) => {
                named = true;
                depth += 1;
            }
        }
    }
    Ok(())
}

/// Sees whether the underlying reader reached its end.
pub(super) struct EofWatch<R> {
    pub(super) inner: R,
    pub(super) eof: Arc<AtomicBool>,
}

impl<R: Read> Read for EofWatch<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 && !buf.is_empty() {
            self.eof.store(true, Ordering::Relaxed);
        }
        Ok(n)
    }
}

/// Walks an archive, calling `each` with every checked entry (its data
/// still unread); refuses the first bad entry. Returns the figures.
pub(super) fn walk<R: Read>(
    reader: R,
    root: Root,
    mut each: impl FnMut(&Checked, &mut tar::Entry<'_, EofWatch<R>>) -> Result<(), String>,
) -> Result<(TarStats, Option<PathBuf>), String> {
    let eof = Arc::new(AtomicBool::new(false));
    let mut ar = tar::Archive::new(EofWatch {
        inner: reader,
        eof: eof.clone(),
    });
    let mut tracker = Tracker::new(root);
    let mut stats = TarStats::default();
    let entries = ar
        .entries()
        .map_err(|e| format!("reading the archive: {e}"))?;
    for e in entries {
        let mut e = e.map_err(|e| format!("reading the archive: {e}"))?;
        let kind = e.header().entry_type();
        if kind == EntryType::XGlobalHeader {
            continue;
        }
        let path = e.path_bytes().into_owned();
        let link = e.link_name_bytes().map(|l| l.into_owned());
        let checked = tracker.check(&path, kind, link.as_deref())?;
        let size = e.size();
        each(&checked, &mut e)?;
        // Whatever `each` left unread, to the end (a short entry is an error).
        let mut rest = 0u64;
        let mut buf = [0u8; 8192];
        loop {
            match e.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => rest += n as u64,
                Err(x) if x.kind() == std::io::ErrorKind::Interrupted => {}
                Err(x) => return Err(format!("reading the archive: {x}")),
            }
        }
        let _ = rest;
        if eof.load(Ordering::Relaxed) {
            return Err(format!(
                "entry \"{}\": the archive ends inside its data (truncated)",
                String::from_utf8_lossy(&path)
            ));
        }
        stats.count(kind, size);
    }
    if eof.load(Ordering::Relaxed) {
        return Err("the archive ends without its end marker (truncated)".into());
    }
    Ok((stats, tracker.top().map(Path::to_path_buf)))
}

/// Checks every entry of an archive against its own root (see the module
/// doc) without writing anything. Returns its figures.
pub fn check_entries(reader: impl Read) -> Result<TarStats, String> {
    walk(reader, Root::Archive, |_, _| Ok(())).map(|(s, _)| s)
}

/// Like [`check_entries`], for Opsdeck's archives: one top-level name
/// (`top`, or whichever the first entry has) that every entry is below and
/// no link leaves. Returns the figures and the top-level name.
pub fn check_tree(reader: impl Read, top: Option<&str>) -> Result<(TarStats, PathBuf), String> {
    let (stats, found) = walk(reader, Root::Top(top.map(PathBuf::from)), |_, _| Ok(()))?;
    let found = found.ok_or_else(|| "the archive is empty".to_string())?;
    Ok((stats, found))
}

/// A blocking reader of a stored object's decompressed bytes (create it
/// on the async side, read it in a blocking thread).
pub fn decoded(object: ObjectReader) -> impl Read + Send {
    let bridge = tokio_util::io::SyncIoBridge::new(object);
    ZstdRead {
        dec: None,
        src: Some(std::io::BufReader::with_capacity(256 << 10, bridge)),
    }
}

pub(super) type Bridge = std::io::BufReader<tokio_util::io::SyncIoBridge<ObjectReader>>;

/// A zstd decoder made on first read (its constructor may fail).
pub(super) struct ZstdRead {
    pub(super) dec: Option<zstd::stream::read::Decoder<'static, Bridge>>,
    pub(super) src: Option<Bridge>,
}

impl Read for ZstdRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.dec.is_none() {
            let src = self
                .src
                .take()
                .ok_or_else(|| std::io::Error::other("the decoder failed"))?;
            self.dec = Some(zstd::stream::read::Decoder::with_buffer(src)?);
        }
        self.dec.as_mut().expect("set above").read(buf)
    }
}

/// [`check_tree`] of a stored (zstd) object, in a blocking thread.
pub async fn check_object(
    object: ObjectReader,
    top: Option<&str>,
) -> Result<(TarStats, PathBuf), String> {
    let r = decoded(object);
    let top = top.map(str::to_owned);
    tokio::task::spawn_blocking(move || check_tree(r, top.as_deref()))
        .await
        .map_err(|e| format!("the archive check failed: {e}"))?
}
