//! Tar archives of Docker volumes and host files: counted as they stream
//! into a backup ([`Scan`]), every entry checked before anything is
//! written ([`check_entries`], [`check_tree`]), and extracted into a
//! directory only after the whole archive passed ([`extract`]).
//!
//! Decisions:
//! * **What is refused.** An entry whose name is absolute or contains
//!   `..`; an entry below a symbolic link of the archive (a link, then a
//!   write through it: the Portainer CVE-2026-44885 pattern); a symbolic
//!   link whose target is absolute, has a `..` after a name (`a/../..`:
//!   only leading `..` are allowed, so the target resolves the same
//!   lexically and on disk) or resolves outside the root; a hard link
//!   whose target is not an earlier regular file of the archive (inside
//!   the root, not below a link); character and block devices; GNU sparse
//!   and unknown entry types. FIFOs are allowed (harmless inside the
//!   target). PAX global headers are skipped. A truncated archive (no end
//!   marker, short entry data) is refused too.
//! * **The root.** [`check_entries`] takes the archive's own root (the
//!   directory it is extracted into). Opsdeck's archives hold one
//!   top-level entry (`volume/` for a volume, the basename of a host path
//!   for files), and their checks use [`check_tree`]: every entry below
//!   that one name and links contained in it, so a restored volume or
//!   directory has no link pointing out of itself.
//! * **Check, then write.** A restore reads the object twice: the first
//!   pass checks every entry and writes nothing; the second writes, and
//!   checks every entry again before writing it (an object swapped between
//!   the passes cannot get further than the first bad entry, and never
//!   outside the target).
//! * **Extraction** ([`extract`]) writes into a fresh staging directory
//!   next to the destination and swaps it into place at the end (the old
//!   content is renamed away and removed), so the destination is never
//!   half-restored. Files are created with `O_EXCL | O_NOFOLLOW`; modes
//!   and modification times are restored, owners too when Opsdeck runs as
//!   root. Directory modes are applied last (a read-only directory does
//!   not stop its own extraction).
//! * **Counting** ([`Scan`]) parses tar headers as the bytes pass (no
//!   buffering): regular files, their bytes, directories, links. The same
//!   figures come out of [`check_entries`], so verification compares the
//!   stored archive with what was counted at dump time.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tar::EntryType;

use super::storage::ObjectReader;

mod check;
mod extract;

#[allow(unused_imports)]
use check::*;
pub use check::{check_entries, check_object, check_tree, decoded, link_stays_inside, Checked};
#[allow(unused_imports)]
use extract::*;
pub use extract::{extract, rewrite};

const BLOCK: usize = 512;
/// Largest PAX extended header read.
const MAX_PAX: usize = 1 << 20;

/// What an archive holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TarStats {
    /// Regular files.
    pub files: i64,
    /// Their bytes.
    pub bytes: i64,
    pub dirs: i64,
    pub symlinks: i64,
    pub hardlinks: i64,
    /// FIFOs and other harmless specials.
    pub others: i64,
}

impl TarStats {
    /// The catalog's `stats` of a tar artifact.
    pub fn to_map(&self) -> BTreeMap<String, i64> {
        let mut m = BTreeMap::from([
            ("files".to_string(), self.files),
            ("bytes".to_string(), self.bytes),
            ("dirs".to_string(), self.dirs),
            ("symlinks".to_string(), self.symlinks),
            ("hardlinks".to_string(), self.hardlinks),
        ]);
        if self.others > 0 {
            m.insert("others".into(), self.others);
        }
        m
    }

    fn count(&mut self, kind: EntryType, size: u64) {
        match kind {
            EntryType::Regular | EntryType::Continuous => {
                self.files += 1;
                self.bytes += size as i64;
            }
            EntryType::Directory => self.dirs += 1,
            EntryType::Symlink => self.symlinks += 1,
            EntryType::Link => self.hardlinks += 1,
            _ => self.others += 1,
        }
    }
}

/// Compares an archive's figures with those counted at dump time.
pub fn compare(expected: &BTreeMap<String, i64>, got: &TarStats) -> Result<(), String> {
    let got = got.to_map();
    for key in ["files", "bytes", "dirs", "symlinks", "hardlinks", "others"] {
        let (e, g) = (
            expected.get(key).copied().unwrap_or(0),
            got.get(key).copied().unwrap_or(0),
        );
        if e != g {
            return Err(format!(
                "the archive holds {g} {key}, {e} were counted at dump time"
            ));
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ counting

/// A pass-through reader that counts a tar stream's entries as it flows
/// and fails when the stream ends before the tar end marker.
pub struct Scan<R> {
    inner: R,
    stats: Arc<Mutex<TarStats>>,
    header: [u8; BLOCK],
    fill: usize,
    /// Bytes of entry data (with padding) still to pass.
    skip: u64,
    /// Collecting a PAX extended header's data.
    pax: Option<Vec<u8>>,
    pax_left: u64,
    /// Size from the last PAX header, for the next entry.
    pax_size: Option<u64>,
    ended: bool,
}

impl<R: Read> Scan<R> {
    /// The reader and the figures it fills in (complete once it returned
    /// end of file without an error).
    pub fn new(inner: R) -> (Scan<R>, Arc<Mutex<TarStats>>) {
        let stats = Arc::new(Mutex::new(TarStats::default()));
        (
            Scan {
                inner,
                stats: stats.clone(),
                header: [0; BLOCK],
                fill: 0,
                skip: 0,
                pax: None,
                pax_left: 0,
                pax_size: None,
                ended: false,
            },
            stats,
        )
    }

    fn feed(&mut self, mut data: &[u8]) -> std::io::Result<()> {
        while !data.is_empty() && !self.ended {
            if self.skip > 0 {
                let n = (self.skip.min(data.len() as u64)) as usize;
                if let Some(p) = self.pax.as_mut() {
                    let keep = (self.pax_left.min(n as u64)) as usize;
                    p.extend_from_slice(&data[..keep]);
                    self.pax_left -= keep as u64;
                }
                self.skip -= n as u64;
                data = &data[n..];
                if self.skip == 0 {
                    if let Some(p) = self.pax.take() {
                        self.pax_size = pax_value(&p, b"size").and_then(|v| v.parse().ok());
                    }
                }
                continue;
            }
            let n = (BLOCK - self.fill).min(data.len());
            self.header[self.fill..self.fill + n].copy_from_slice(&data[..n]);
            self.fill += n;
            data = &data[n..];
            if self.fill == BLOCK {
                self.fill = 0;
                self.on_header()?;
            }
        }
        Ok(())
    }

    fn on_header(&mut self) -> std::io::Result<()> {
        if self.header.iter().all(|&b| b == 0) {
            self.ended = true;
            return Ok(());
        }
        let h = tar::Header::from_byte_slice(&self.header);
        let sum: u32 = self.header[..148]
            .iter()
            .chain(&self.header[156..])
            .map(|&b| b as u32)
            .sum::<u32>()
            + 8 * 32;
        if h.cksum().ok() != Some(sum) {
            return Err(bad("a tar header's checksum does not match"));
        }
        let kind = h.entry_type();
        let mut size = h
            .entry_size()
            .map_err(|e| bad(&format!("a tar header's size: {e}")))?;
        match kind {
            EntryType::XHeader => {
                if size as usize > MAX_PAX {
                    return Err(bad("a PAX header larger than 1 MiB"));
                }
                self.pax = Some(Vec::with_capacity(size as usize));
                self.pax_left = size;
            }
            EntryType::XGlobalHeader | EntryType::GNULongName | EntryType::GNULongLink => {}
            _ => {
                if let Some(p) = self.pax_size.take() {
                    size = p;
                }
                self.stats
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .count(kind, size);
            }
        }
        self.skip = size.div_ceil(BLOCK as u64) * BLOCK as u64;
        if self.skip == 0 {
            if let Some(p) = self.pax.take() {
                self.pax_size = pax_value(&p, b"size").and_then(|v| v.parse().ok());
            }
        }
        Ok(())
    }
}

impl<R: Read> Read for Scan<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        if n == 0 {
            if !self.ended {
                return Err(bad("the archive ended before its end marker (truncated)"));
            }
            return Ok(0);
        }
        self.feed(&buf[..n])?;
        Ok(n)
    }
}

fn bad(msg: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg.to_string())
}

/// The value of `key` in PAX extended header records (`<len> key=value\n`).
fn pax_value(data: &[u8], key: &[u8]) -> Option<String> {
    let mut rest = data;
    let mut found = None;
    while !rest.is_empty() {
        let sp = rest.iter().position(|&b| b == b' ')?;
        let len: usize = std::str::from_utf8(&rest[..sp]).ok()?.parse().ok()?;
        if len <= sp || len > rest.len() {
            return None;
        }
        let rec = &rest[sp + 1..len];
        let rec = rec.strip_suffix(b"\n").unwrap_or(rec);
        if let Some(eq) = rec.iter().position(|&b| b == b'=') {
            if &rec[..eq] == key {
                found = Some(String::from_utf8_lossy(&rec[eq + 1..]).into_owned());
            }
        }
        rest = &rest[len..];
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made entry: raw name and link bytes, any type, data.
    struct E<'a> {
        name: &'a [u8],
        kind: EntryType,
        link: Option<&'a [u8]>,
        data: &'a [u8],
    }

    fn e<'a>(name: &'a str, kind: EntryType) -> E<'a> {
        E {
            name: name.as_bytes(),
            kind,
            link: None,
            data: b"",
        }
    }
    fn file<'a>(name: &'a str, data: &'a [u8]) -> E<'a> {
        E {
            name: name.as_bytes(),
            kind: EntryType::Regular,
            link: None,
            data,
        }
    }
    fn sym<'a>(name: &'a str, to: &'a str) -> E<'a> {
        E {
            name: name.as_bytes(),
            kind: EntryType::Symlink,
            link: Some(to.as_bytes()),
            data: b"",
        }
    }
    fn hard<'a>(name: &'a str, to: &'a str) -> E<'a> {
        E {
            name: name.as_bytes(),
            kind: EntryType::Link,
            link: Some(to.as_bytes()),
            data: b"",
        }
    }

    /// Writes headers by hand (the tar crate's builder refuses `..`).
    fn tar(entries: &[E]) -> Vec<u8> {
        let mut out = Vec::new();
        for x in entries {
            let mut h = tar::Header::new_ustar();
            {
                let raw = h.as_mut_bytes();
                raw[..x.name.len()].copy_from_slice(x.name);
            }
            h.set_entry_type(x.kind);
            h.set_mode(if x.kind == EntryType::Directory {
                0o755
            } else {
                0o644
            });
            h.set_size(x.data.len() as u64);
            h.set_mtime(1_700_000_000);
            if let Some(l) = x.link {
                let raw = h.as_mut_bytes();
                raw[157..157 + l.len()].copy_from_slice(l);
            }
            h.set_cksum();
            out.extend_from_slice(h.as_bytes());
            out.extend_from_slice(x.data);
            let pad = (BLOCK - x.data.len() % BLOCK) % BLOCK;
            out.extend(std::iter::repeat_n(0u8, pad));
        }
        out.extend([0u8; 1024]);
        out
    }

    fn refused(entries: &[E], why: &str) {
        let t = tar(entries);
        let err = check_entries(&t[..]).unwrap_err();
        assert!(err.contains(why), "{err}");
        let err = check_tree(&t[..], None).unwrap_err();
        assert!(err.contains(why) || err.contains("top-level"), "{err}");
    }

    #[test]
    fn evil_archives_are_refused() {
        refused(&[file("../evil", b"x")], "\"..\"");
        refused(&[file("data/../../evil", b"x")], "\"..\"");
        refused(&[file("/etc/passwd", b"x")], "absolute");
        refused(
            &[sym("data/l", "/etc"), file("data/l/passwd", b"x")],
            "absolute",
        );
        refused(
            &[sym("data/l", "../.."), file("data/x", b"x")],
            "leaves the archive",
        );
        refused(&[e("data/tty", EntryType::Char)], "device");
        refused(&[e("data/sda", EntryType::Block)], "device");
        refused(&[hard("data/h", "/etc/shadow")], "absolute");
        refused(
            &[hard("data/h", "data/missing")],
            "not an earlier regular file",
        );
        refused(&[sym("data/a", "b/../../..")], "after a name");
    }

    #[test]
    fn link_then_write_through_the_link_is_refused() {
        // Portainer CVE-2026-44885: a link inside the root that is harmless
        // by itself, then an entry written through it.
        let t = tar(&[
            e("data/", EntryType::Directory),
            sym("data/sub", "."),
            file("data/sub/x", b"through"),
        ]);
        let err = check_tree(&t[..], None).unwrap_err();
        assert!(
            err.contains("below the symbolic link \"data/sub\""),
            "{err}"
        );
        // The classic form: a link out, then a write through it.
        let t = tar(&[
            sym("data/etc", "../../../etc"),
            file("data/etc/cron.d/x", b""),
        ]);
        assert!(check_entries(&t[..]).is_err());
        // A chain: `a -> .`, then `b -> a/../..` (lexically inside, really
        // outside): refused for the `..` after a name.
        let t = tar(&[
            e("data/", EntryType::Directory),
            sym("data/a", "."),
            sym("data/b", "a/../x"),
        ]);
        let err = check_tree(&t[..], None).unwrap_err();
        assert!(err.contains("after a name"), "{err}");
        // A hard link to a path below a link.
        let t = tar(&[
            e("data/", EntryType::Directory),
            e("data/d/", EntryType::Directory),
            file("data/d/f", b"x"),
            sym("data/d", "."),
            hard("data/h", "data/d/f"),
        ]);
        assert!(check_tree(&t[..], None).is_err());
    }

    #[test]
    fn links_must_stay_inside_the_top_level_name() {
        // Inside the archive root but outside the volume: fine for the
        // archive, not for a tree.
        let t = tar(&[e("data/", EntryType::Directory), sym("data/l", "../other")]);
        assert!(check_entries(&t[..]).is_ok());
        let err = check_tree(&t[..], None).unwrap_err();
        assert!(err.contains("leaves the archive root"), "{err}");
        // Two top-level names.
        let t = tar(&[file("data/a", b"1"), file("other/b", b"2")]);
        let err = check_tree(&t[..], None).unwrap_err();
        assert!(
            err.contains("outside the archive's top-level \"data\""),
            "{err}"
        );
        let err = check_tree(&tar(&[file("x", b"")])[..], Some("volume")).unwrap_err();
        assert!(err.contains("outside"), "{err}");
    }

    #[test]
    fn good_archives_pass_with_their_figures() {
        let t = tar(&[
            e("./data/", EntryType::Directory),
            e("data/sub/", EntryType::Directory),
            file("data/sub/a.txt", b"hello"),
            file("data/b.bin", &[7u8; 1000]),
            sym("data/sub/up", "../b.bin"),
            sym("data/rel", "sub/./a.txt"),
            hard("data/h", "data/b.bin"),
            e("data/pipe", EntryType::Fifo),
        ]);
        let want = TarStats {
            files: 2,
            bytes: 1005,
            dirs: 2,
            symlinks: 2,
            hardlinks: 1,
            others: 1,
        };
        assert_eq!(check_entries(&t[..]).unwrap(), want);
        let (s, top) = check_tree(&t[..], Some("data")).unwrap();
        assert_eq!((s, top), (want.clone(), PathBuf::from("data")));
        // The streaming count agrees.
        let (mut scan, stats) = Scan::new(&t[..]);
        std::io::copy(&mut scan, &mut std::io::sink()).unwrap();
        assert_eq!(*stats.lock().unwrap(), want);
        assert!(compare(&want.to_map(), &want).is_ok());
        let mut fewer = want.to_map();
        fewer.insert("files".into(), 3);
        assert_eq!(
            compare(&fewer, &want).unwrap_err(),
            "the archive holds 2 files, 3 were counted at dump time"
        );
    }

    #[test]
    fn truncated_archives_are_refused() {
        let t = tar(&[file("data/a", &[1u8; 3000]), file("data/b", b"x")]);
        // Cut inside the first entry's data, and right before the end marker.
        for cut in [1200, t.len() - 1024] {
            let err = check_entries(&t[..cut]).unwrap_err();
            assert!(err.contains("truncated"), "{cut}: {err}");
            let (mut scan, _) = Scan::new(&t[..cut]);
            let err = std::io::copy(&mut scan, &mut std::io::sink()).unwrap_err();
            assert!(err.to_string().contains("truncated"), "{err}");
        }
        // A corrupted header.
        let mut bad = t.clone();
        bad[10] ^= 1;
        assert!(check_entries(&bad[..]).unwrap_err().contains("checksum"));
        let (mut scan, _) = Scan::new(&bad[..]);
        assert!(std::io::copy(&mut scan, &mut std::io::sink()).is_err());
    }

    #[test]
    fn long_names_and_pax_sizes_are_counted_alike() {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("data/{}/file.txt", "d".repeat(150));
        let mut h = tar::Header::new_gnu();
        h.set_size(12);
        h.set_mode(0o600);
        b.append_data(&mut h, &long, &b"twelve bytes"[..]).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(EntryType::Symlink);
        h.set_size(0);
        b.append_link(&mut h, "data/l", format!("{}/file.txt", "d".repeat(150)))
            .unwrap();
        // A PAX header carrying the size.
        let mut h = tar::Header::new_ustar();
        h.set_size(3);
        h.set_mode(0o644);
        b.append_pax_extensions([("size", &b"3"[..])]).unwrap();
        b.append_data(&mut h, "data/p", &b"abc"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let (s, _) = check_tree(&t[..], Some("data")).unwrap();
        assert_eq!((s.files, s.bytes, s.symlinks), (2, 15, 1));
        let (mut scan, stats) = Scan::new(&t[..]);
        std::io::copy(&mut scan, &mut std::io::sink()).unwrap();
        assert_eq!(*stats.lock().unwrap(), s);
    }

    #[test]
    fn extraction_writes_only_after_the_check_and_swaps_into_place() {
        let tmp = tempfile::tempdir().unwrap();
        let dest = tmp.path().join("restored");
        std::fs::create_dir(&dest).unwrap();
        std::fs::write(dest.join("stale"), b"old").unwrap();
        let t = tar(&[
            e("data/", EntryType::Directory),
            e("data/sub/", EntryType::Directory),
            file("data/sub/a.txt", b"hello"),
            sym("data/link", "sub/a.txt"),
            hard("data/h", "data/sub/a.txt"),
        ]);
        let s = extract(&t[..], "data", &dest).unwrap();
        assert_eq!((s.files, s.dirs, s.symlinks, s.hardlinks), (1, 2, 1, 1));
        assert!(!dest.join("stale").exists(), "the old content is replaced");
        assert_eq!(std::fs::read(dest.join("sub/a.txt")).unwrap(), b"hello");
        assert_eq!(std::fs::read(dest.join("link")).unwrap(), b"hello");
        assert_eq!(
            std::fs::read_link(dest.join("link")).unwrap(),
            PathBuf::from("sub/a.txt")
        );
        assert_eq!(std::fs::read(dest.join("h")).unwrap(), b"hello");
        let mode = std::fs::metadata(dest.join("sub/a.txt"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
        // Nothing but the destination is left next to it.
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["restored"]);

        // An evil archive: nothing changes, nothing is left behind.
        let evil = tar(&[
            e("data/", EntryType::Directory),
            file("data/fine", b"1"),
            sym("data/esc", "../../outside"),
        ]);
        let err = extract(&evil[..], "data", &dest).unwrap_err();
        assert!(err.contains("leaves the archive root"), "{err}");
        assert_eq!(std::fs::read(dest.join("sub/a.txt")).unwrap(), b"hello");
        assert!(!dest.join("fine").exists());
        let names: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["restored"]);
    }

    #[test]
    fn rewriting_keeps_the_checked_entries() {
        let t = tar(&[
            e("volume/", EntryType::Directory),
            file("volume/a", b"abc"),
            sym("volume/l", "a"),
            hard("volume/h", "volume/a"),
        ]);
        let mut out = Vec::new();
        let s = rewrite(&t[..], "volume", &mut out).unwrap();
        let (again, _) = check_tree(&out[..], Some("volume")).unwrap();
        assert_eq!(s, again);
        let evil = tar(&[file("volume/a", b"abc"), file("volume/../x", b"")]);
        assert!(rewrite(&evil[..], "volume", std::io::sink()).is_err());
    }
}
