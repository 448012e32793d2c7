//! Writing a checked archive out: extracted into a staging directory and
//! swapped into place, or re-serialised as a tar stream.

use super::*;

/// Extracts a checked archive (its top-level entry becomes `dest`) into a
/// staging path next to `dest`, then swaps it into place; see the module
/// doc. `reader` is the *second* read of an archive that passed
/// [`check_tree`]; every entry is checked again as it is written.
pub fn extract(reader: impl Read, top: &str, dest: &Path) -> Result<TarStats, String> {
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .ok_or_else(|| format!("{}: no parent directory", dest.display()))?;
    let name = dest
        .file_name()
        .ok_or_else(|| format!("{}: no file name", dest.display()))?;
    let tag = format!("{:08x}", rand::random::<u32>());
    let staging = parent.join(format!(".{}.opsdeck-restore-{tag}", name.to_string_lossy()));
    let old = parent.join(format!(".{}.opsdeck-old-{tag}", name.to_string_lossy()));
    let res = write_all(reader, top, &staging);
    let stats = match res {
        Ok(s) => s,
        Err(e) => {
            remove_any(&staging);
            return Err(e);
        }
    };
    // Swap: the old content aside, the new one in, the old one removed.
    let had_old = match std::fs::symlink_metadata(dest) {
        Ok(_) => {
            if let Err(e) = std::fs::rename(dest, &old) {
                remove_any(&staging);
                return Err(format!("moving {} aside: {e}", dest.display()));
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            remove_any(&staging);
            return Err(format!("{}: {e}", dest.display()));
        }
    };
    if let Err(e) = std::fs::rename(&staging, dest) {
        if had_old {
            let _ = std::fs::rename(&old, dest);
        }
        remove_any(&staging);
        return Err(format!(
            "moving the restored copy to {}: {e}",
            dest.display()
        ));
    }
    if had_old {
        remove_any(&old);
    }
    Ok(stats)
}

pub(super) fn remove_any(p: &Path) {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => {
            // A read-only directory inside would stop remove_dir_all.
            let _ = make_writable(p);
            let _ = std::fs::remove_dir_all(p);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(p);
        }
        Err(_) => {}
    }
}

pub(super) fn make_writable(dir: &Path) -> std::io::Result<()> {
    let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    for e in std::fs::read_dir(dir)?.flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            let _ = make_writable(&e.path());
        }
    }
    Ok(())
}

/// A directory's metadata, applied after everything inside it is written.
pub(super) struct DirMeta {
    pub(super) at: PathBuf,
    pub(super) mode: u32,
    pub(super) mtime: Option<u64>,
    pub(super) owner: Option<(u64, u64)>,
}

/// Writes every entry below `top` to `staging` (which must not exist).
pub(super) fn write_all(reader: impl Read, top: &str, staging: &Path) -> Result<TarStats, String> {
    let root_is_root = nix::unistd::geteuid().is_root();
    // Directories get their mode and time after everything inside them.
    let mut dirs: Vec<DirMeta> = Vec::new();
    let mut made_root = false;
    let (stats, _) = walk(reader, Root::Top(Some(PathBuf::from(top))), |c, e| {
        let rel = c.path.strip_prefix(top).expect("checked below top");
        let at = if rel.as_os_str().is_empty() {
            staging.to_path_buf()
        } else {
            staging.join(rel)
        };
        let h = e.header();
        let mode = h.mode().unwrap_or(0o644) & 0o7777;
        let mtime = h.mtime().ok();
        let owner = match (h.uid(), h.gid()) {
            (Ok(u), Ok(g)) if root_is_root => Some((u, g)),
            _ => None,
        };
        let io = |what: &str, x: std::io::Error| format!("{what} {}: {x}", rel_shown(rel));
        if !made_root && at != staging {
            // No entry for the top directory itself: make it.
            std::fs::DirBuilder::new()
                .mode(0o700)
                .create(staging)
                .map_err(|x| io("creating", x))?;
            made_root = true;
        }
        if at != staging {
            if let Some(p) = at.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(p)
                    .map_err(|x| io("creating the directory of", x))?;
            }
        }
        match c.kind {
            EntryType::Directory => {
                match std::fs::symlink_metadata(&at) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        std::fs::remove_file(&at).map_err(|x| io("replacing", x))?;
                        std::fs::DirBuilder::new()
                            .mode(0o700)
                            .create(&at)
                            .map_err(|x| io("creating", x))?;
                    }
                    Err(_) => std::fs::DirBuilder::new()
                        .mode(0o700)
                        .create(&at)
                        .map_err(|x| io("creating", x))?,
                }
                if at == staging {
                    made_root = true;
                }
                dirs.push(DirMeta {
                    at,
                    mode,
                    mtime,
                    owner,
                });
                return Ok(());
            }
            _ => replace(&at).map_err(|x| io("replacing", x))?,
        }
        match c.kind {
            EntryType::Regular | EntryType::Continuous => {
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(nix::libc::O_NOFOLLOW)
                    .open(&at)
                    .map_err(|x| io("creating", x))?;
                std::io::copy(e, &mut f).map_err(|x| io("writing", x))?;
                f.flush().map_err(|x| io("writing", x))?;
                if let Some((u, g)) = owner {
                    std::os::unix::fs::fchown(&f, Some(u as u32), Some(g as u32))
                        .map_err(|x| io("setting the owner of", x))?;
                }
                f.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(|x| io("setting the mode of", x))?;
                drop(f);
                set_mtime(&at, mtime);
            }
            EntryType::Symlink => {
                let target = c.link.as_ref().expect("checked");
                std::os::unix::fs::symlink(target, &at).map_err(|x| io("creating the link", x))?;
                if let Some((u, g)) = owner {
                    let _ = std::os::unix::fs::lchown(&at, Some(u as u32), Some(g as u32));
                }
            }
            EntryType::Link => {
                let t = c.link.as_ref().expect("checked");
                let t = staging.join(t.strip_prefix(top).expect("checked below top"));
                match std::fs::symlink_metadata(&t) {
                    Ok(m) if m.is_file() => {}
                    _ => {
                        return Err(format!(
                            "{}: hard link target is not a file",
                            rel_shown(rel)
                        ))
                    }
                }
                std::fs::hard_link(&t, &at).map_err(|x| io("creating the hard link", x))?;
            }
            EntryType::Fifo => {
                nix::unistd::mkfifo(&at, nix::sys::stat::Mode::from_bits_truncate(mode & 0o777))
                    .map_err(|x| format!("creating the FIFO {}: {x}", rel_shown(rel)))?;
            }
            _ => unreachable!("refused by the check"),
        }
        if at == staging {
            made_root = true;
        }
        Ok(())
    })?;
    if !made_root {
        return Err("the archive is empty".into());
    }
    for d in dirs.into_iter().rev() {
        if let Some((u, g)) = d.owner {
            let _ = std::os::unix::fs::lchown(&d.at, Some(u as u32), Some(g as u32));
        }
        std::fs::set_permissions(&d.at, std::fs::Permissions::from_mode(d.mode))
            .map_err(|x| format!("setting the mode of {}: {x}", d.at.display()))?;
        set_mtime(&d.at, d.mtime);
    }
    Ok(stats)
}

pub(super) fn rel_shown(rel: &Path) -> String {
    if rel.as_os_str().is_empty() {
        "the top-level entry".into()
    } else {
        rel.display().to_string()
    }
}

/// Removes a non-directory at `at` (a later entry replaces an earlier one).
pub(super) fn replace(at: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(at) {
        Ok(m) if m.is_dir() => {
            make_writable(at)?;
            std::fs::remove_dir_all(at)
        }
        Ok(_) => std::fs::remove_file(at),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub(super) fn set_mtime(at: &Path, mtime: Option<u64>) {
    use nix::sys::stat::{utimensat, UtimensatFlags};
    use nix::sys::time::TimeSpec;
    if let Some(t) = mtime {
        let ts = TimeSpec::new(t as i64, 0);
        let _ = utimensat(None, at, &ts, &ts, UtimensatFlags::NoFollowSymlink);
    }
}

// --------------------------------------------------------- re-serialising

/// Writes the checked entries of an archive again (only them, with their
/// mode, owner and time) to `out`: the second pass of a restore that an
/// engine extracts. A bad entry stops it with an error before anything of
/// that entry is written.
pub fn rewrite(reader: impl Read, top: &str, out: impl Write) -> Result<TarStats, String> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Complete);
    let (stats, _) = walk(reader, Root::Top(Some(PathBuf::from(top))), |c, e| {
        let mut h = e.header().clone();
        let io = |x: std::io::Error| format!("writing the archive: {x}");
        match c.kind {
            EntryType::Symlink | EntryType::Link => {
                let t = c.link.clone().expect("checked");
                h.set_size(0);
                b.append_link(&mut h, &c.path, &t).map_err(io)
            }
            EntryType::Directory | EntryType::Fifo => {
                h.set_size(0);
                b.append_data(&mut h, &c.path, std::io::empty()).map_err(io)
            }
            _ => {
                let size = e.size();
                h.set_size(size);
                b.append_data(&mut h, &c.path, e).map_err(io)
            }
        }
    })?;
    b.into_inner()
        .map_err(|x| format!("writing the archive: {x}"))?
        .flush()
        .map_err(|x| format!("writing the archive: {x}"))?;
    Ok(stats)
}
