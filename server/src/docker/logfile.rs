//! A local engine's `json-file` logs, read by Opsdeck itself.
//!
//! Through the logs API the engine decodes every JSON line, formats its
//! timestamp and frames it again, and that work, not the search, is what a
//! log search over gigabytes waits for (one busy engine core per search,
//! measured in BENCHMARKS.md). When the engine runs on this machine and
//! the container logs with the default `json-file` driver, a search reads
//! the same files the engine would read, in the same order, with the same
//! timestamps: rotated files oldest first (`<id>-json.log.N` … `.1`), then
//! the current one, starting near `since` by a binary search over the
//! file's time-ordered lines, stopping after `until`.
//!
//! [`find`] decides, and says no (the caller reads through the API) for an
//! engine not reached by a local socket, another log driver, compressed
//! rotations, a path that is not `<full id>-json.log` (an engine socket
//! forwarded from another machine gives paths that mean nothing here), or a
//! file this process cannot open.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use bollard::query_parameters::InspectContainerOptions;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::ops::MAX_LINE_BYTES;
use super::{Client, EngineConn};

/// Read buffer per file.
const BUFFER: usize = 256 * 1024;
/// How far a line's time may run behind the line before it: the engine
/// stamps stdout and stderr in two copiers, so the file is time-ordered
/// only to within a moment. Seeking and stopping leave this margin; the
/// caller still cuts every line by its own time.
const SLACK_S: i64 = 2;

/// One container's log files on this machine, oldest first.
#[derive(Debug, Clone)]
pub struct LocalLog {
    files: Vec<PathBuf>,
}

/// The container's `json-file` log, when Opsdeck can read it here.
pub async fn find(conn: &EngineConn, client: &Client, container: &str) -> Option<LocalLog> {
    let url = conn.endpoint.url.as_str();
    if !(url.starts_with("unix://") || url.starts_with('/')) {
        return None;
    }
    let i = tokio::time::timeout(
        super::REQUEST_TIMEOUT,
        client
            .inner
            .inspect_container(container, None::<InspectContainerOptions>),
    )
    .await
    .ok()?
    .ok()?;
    let driver = i.host_config.as_ref()?.log_config.as_ref()?.typ.as_deref();
    if driver != Some("json-file") {
        return None;
    }
    let (id, path) = (i.id?, PathBuf::from(i.log_path?));
    tokio::task::spawn_blocking(move || files(&id, &path).ok().flatten())
        .await
        .ok()?
}

/// The current file and its rotations, oldest first; `None` when a
/// rotation is compressed or the path is not this container's.
fn files(id: &str, current: &Path) -> io::Result<Option<LocalLog>> {
    let name = format!("{id}-json.log");
    if id.len() != 64 || current.file_name().and_then(|n| n.to_str()) != Some(name.as_str()) {
        return Ok(None);
    }
    File::open(current)?;
    let dir = current.parent().unwrap_or(Path::new("/"));
    let mut rotated = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let file = entry?.file_name();
        let Some(rest) = file.to_str().and_then(|f| f.strip_prefix(&name)) else {
            continue;
        };
        let Some(n) = rest.strip_prefix('.') else {
            continue;
        };
        match n.parse::<u32>() {
            Ok(n) => rotated.push((n, dir.join(&file))),
            // `.1.gz` (compress=true): the API reads those.
            Err(_) => return Ok(None),
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    files.push(current.to_path_buf());
    Ok(Some(LocalLog { files }))
}

/// One line of the engine's `json-file` log. The engine writes `log`,
/// `stream`, `attrs` (with log labels), `time`; only two are needed.
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow)]
    time: Cow<'a, str>,
}

fn entry_time(e: &Entry<'_>) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&e.time)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl LocalLog {
    /// Calls `line` with every log line from `since` on (the engine's
    /// timestamp and the text without its newline; lines split by the
    /// engine are joined, up to [`MAX_LINE_BYTES`]) until a line is past
    /// `until` or `line` returns `false`. Blocking: run it on a thread of
    /// its own.
    pub fn read(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        mut line: impl FnMut(DateTime<Utc>, &str) -> bool,
    ) -> io::Result<()> {
        let slack = Duration::seconds(SLACK_S);
        // A rotation between listing and opening shifts names by one: a
        // file may be met twice, so a later file starts after the last time
        // already given.
        let mut floor: Option<DateTime<Utc>> = None;
        let mut buf = Vec::with_capacity(1024);
        let mut pending = String::new();
        for (i, path) in self.files.iter().enumerate() {
            let last = i + 1 == self.files.len();
            let mut file = match File::open(path) {
                Ok(f) => f,
                // Rotated away since the listing: its lines are elsewhere now.
                Err(e) if e.kind() == io::ErrorKind::NotFound && !last => continue,
                Err(e) => return Err(e),
            };
            let meta = file.metadata()?;
            if !last {
                if let Ok(m) = meta.modified() {
                    if DateTime::<Utc>::from(m) + slack < since {
                        continue;
                    }
                }
            }
            let start = seek_since(&mut file, meta.len(), since - slack)?;
            file.seek(SeekFrom::Start(start))?;
            let mut reader = BufReader::with_capacity(BUFFER, file);
            let mut pending_ts = None;
            let mut newest = floor;
            loop {
                buf.clear();
                if reader.read_until(b'\n', &mut buf)? == 0 || buf.last() != Some(&b'\n') {
                    // The end, or a line the engine is still writing.
                    break;
                }
                let Ok(e) = serde_json::from_slice::<Entry<'_>>(&buf) else {
                    continue;
                };
                let Some(ts) = entry_time(&e) else {
                    continue;
                };
                if ts > until + slack {
                    return Ok(());
                }
                if floor.is_some_and(|f| ts <= f) {
                    continue;
                }
                newest = newest.max(Some(ts));
                let whole = e.log.ends_with('\n');
                if !whole || !pending.is_empty() {
                    // Split by the engine (16 KiB parts): join, bounded.
                    let room = MAX_LINE_BYTES.saturating_sub(pending.len());
                    pending.push_str(cut(&e.log, room));
                    let ts = *pending_ts.get_or_insert(ts);
                    if !whole && pending.len() < MAX_LINE_BYTES {
                        continue;
                    }
                    let go_on = line(ts, trim_newline(&pending));
                    pending.clear();
                    pending_ts = None;
                    if !go_on {
                        return Ok(());
                    }
                    continue;
                }
                if !line(ts, trim_newline(&e.log)) {
                    return Ok(());
                }
            }
            floor = newest;
        }
        Ok(())
    }
}

fn trim_newline(s: &str) -> &str {
    let s = s.strip_suffix('\n').unwrap_or(s);
    s.strip_suffix('\r').unwrap_or(s)
}

/// The longest prefix of `s` of at most `max` bytes on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The offset of a line at or before the first line stamped `at` or later
/// (the file's lines are in time order), by binary search over line
/// starts; 0 when unsure.
fn seek_since(file: &mut File, len: u64, at: DateTime<Utc>) -> io::Result<u64> {
    let (mut lo, mut hi) = (0u64, len);
    let mut probe = Vec::new();
    // Invariant: the line starting at `lo` (or the first after it) is
    // before `at`, or lo = 0; no line wholly after `hi` is before `at`.
    while hi - lo > BUFFER as u64 {
        let mid = lo + (hi - lo) / 2;
        match time_after(file, mid, &mut probe)? {
            Some((start, ts)) if ts < at => lo = start,
            Some(_) => hi = mid,
            None => hi = mid,
        }
    }
    Ok(lo)
}

/// The start and time of the first whole line after `offset`.
fn time_after(
    file: &mut File,
    offset: u64,
    probe: &mut Vec<u8>,
) -> io::Result<Option<(u64, DateTime<Utc>)>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut reader = BufReader::with_capacity(64 * 1024, file.take(4 * MAX_LINE_BYTES as u64));
    probe.clear();
    let skipped = reader.read_until(b'\n', probe)? as u64;
    probe.clear();
    if reader.read_until(b'\n', probe)? == 0 || probe.last() != Some(&b'\n') {
        return Ok(None);
    }
    let ts = serde_json::from_slice::<Entry<'_>>(probe)
        .ok()
        .and_then(|e| entry_time(&e));
    Ok(ts.map(|ts| (offset + skipped, ts)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn write_log(dir: &Path, name: &str, lines: &[(&str, &str)]) -> PathBuf {
        let path = dir.join(name);
        let mut f = File::create(&path).unwrap();
        for (time, log) in lines {
            let e = serde_json::json!({"log": log, "stream": "stdout", "time": time});
            writeln!(f, "{e}").unwrap();
        }
        path
    }

    fn read_all(log: &LocalLog, since: &str, until: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        log.read(at(since), at(until), |ts, text| {
            out.push((ts.to_rfc3339(), text.to_owned()));
            true
        })
        .unwrap();
        out
    }

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    #[test]
    fn reads_rotations_oldest_first_joins_parts_and_unescapes() {
        let dir = tempfile::tempdir().unwrap();
        let name = format!("{ID}-json.log");
        write_log(
            dir.path(),
            &format!("{name}.2"),
            &[("2026-12-07T08:00:00.1Z", "one\n")],
        );
        write_log(
            dir.path(),
            &format!("{name}.1"),
            &[
                ("2026-12-07T08:00:01Z", "two \"quoted\" \u{e9}\r\n"),
                ("2026-12-07T08:00:02Z", "three, part "),
                ("2026-12-07T08:00:02.5Z", "two\n"),
            ],
        );
        let current = write_log(dir.path(), &name, &[("2026-12-07T08:00:03Z", "four\n")]);
        let log = files(ID, &current).unwrap().unwrap();
        let got = read_all(&log, "2026-12-07T07:00:00Z", "2026-12-07T09:00:00Z");
        let texts: Vec<&str> = got.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(
            texts,
            ["one", "two \"quoted\" \u{e9}", "three, part two", "four"]
        );
        assert_eq!(
            got[2].0, "2026-12-07T08:00:02+00:00",
            "a joined line has its first part's time"
        );
    }

    #[test]
    fn a_file_met_twice_gives_its_lines_once() {
        let dir = tempfile::tempdir().unwrap();
        let lines = [
            ("2026-12-07T08:00:00Z", "a\n"),
            ("2026-12-07T08:00:01Z", "b\n"),
        ];
        let one = write_log(dir.path(), "x.1", &lines);
        let two = write_log(dir.path(), "x", &lines);
        let log = LocalLog {
            files: vec![one, two],
        };
        let got = read_all(&log, "2026-12-07T07:00:00Z", "2026-12-07T09:00:00Z");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn seeks_near_since_and_stops_after_until() {
        let dir = tempfile::tempdir().unwrap();
        let start = at("2026-12-07T00:00:00Z");
        let times: Vec<String> = (0..20_000)
            .map(|i| {
                (start + Duration::seconds(i)).to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
            })
            .collect();
        let texts: Vec<String> = (0..20_000)
            .map(|i| format!("line {i:05} {}\n", "x".repeat(40)))
            .collect();
        let lines: Vec<(&str, &str)> = times
            .iter()
            .zip(&texts)
            .map(|(t, l)| (t.as_str(), l.as_str()))
            .collect();
        let path = write_log(dir.path(), "x", &lines);
        let mut f = File::open(&path).unwrap();
        let len = f.metadata().unwrap().len();
        assert!(len > 4 * BUFFER as u64, "the file is big enough to seek in");
        let since = start + Duration::seconds(15_000);
        let off = seek_since(&mut f, len, since).unwrap();
        assert!(off > len / 2, "seeks past the first half ({off} of {len})");
        // Every line from `since` on is still read (from a little before,
        // the caller cuts), and reading stops after `until` and its margin.
        let log = LocalLog { files: vec![path] };
        let got = read_all(&log, "2026-12-07T04:10:00Z", "2026-12-07T04:20:00Z");
        let number = |t: &str| t[5..10].parse::<u32>().unwrap();
        let first = number(&got.first().unwrap().1);
        assert!(
            (12_000..15_000 - SLACK_S as u32).contains(&first),
            "first line {first}"
        );
        assert_eq!(number(&got.last().unwrap().1), 15_600 + SLACK_S as u32);
    }

    #[test]
    fn refuses_paths_that_are_not_the_containers_own() {
        let dir = tempfile::tempdir().unwrap();
        let other = write_log(dir.path(), "other-json.log", &[]);
        assert!(files(ID, &other).unwrap().is_none());
        let name = format!("{ID}-json.log");
        let current = write_log(dir.path(), &name, &[]);
        write_log(dir.path(), &format!("{name}.1.gz"), &[]);
        assert!(
            files(ID, &current).unwrap().is_none(),
            "compressed rotations go through the API"
        );
    }
}
