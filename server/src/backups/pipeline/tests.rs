//! The pipeline's tests: real processes, pipes and files.

use super::*;
use crate::backups::storage::LocalStore;
use std::sync::atomic::AtomicUsize;

fn sh(script: &str) -> Command {
    let mut c = Command::new("sh");
    c.args(["-c", script]);
    c
}

fn no_scrub(s: String) -> String {
    s.replace("hunter2", "***")
}

fn leftovers(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            out.extend(leftovers(&e.path()));
        } else {
            out.push(e.path().display().to_string());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dump_checksum_restore_round_trip() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::open(tmp.path().join("store").to_str().unwrap())
        .await
        .unwrap();
    // Random bytes, then compressible text: both paths of the encoder.
    let src = tmp.path().join("src.bin");
    let script = format!(
        "head -c 3000000 /dev/urandom > {p}; yes 'some log line 12345' | head -c 5000000 >> {p}; \
         printf tail >> {p}; cat {p}",
        p = src.display()
    );
    let calls = Arc::new(AtomicUsize::new(0));
    let last = Arc::new(Mutex::new((0u64, 0u64)));
    let (c2, l2) = (calls.clone(), last.clone());
    let progress: Progress = Arc::new(move |raw, stored| {
        c2.fetch_add(1, Ordering::Relaxed);
        *l2.lock().unwrap() = (raw, stored);
    });
    let up = store.create("p/1/db.dump.zst").await.unwrap();
    let got = dump_to(sh(&script), 3, up, progress, &no_scrub)
        .await
        .unwrap();
    let original = std::fs::read(&src).unwrap();
    assert_eq!(got.raw_bytes, original.len() as u64);
    assert!(got.bytes < got.raw_bytes, "{got:?}");
    assert!(calls.load(Ordering::Relaxed) >= 1);
    assert_eq!(*last.lock().unwrap(), (got.raw_bytes, got.bytes));
    assert_eq!(
        leftovers(&store.root),
        vec![store.root.join("p/1/db.dump.zst").display().to_string()]
    );

    let (sum, size) = checksum(store.read("p/1/db.dump.zst").await.unwrap())
        .await
        .unwrap();
    assert_eq!((sum.as_str(), size), (got.sha256.as_str(), got.bytes));
    let disk = std::fs::read(store.root.join("p/1/db.dump.zst")).unwrap();
    assert_eq!(hex::encode(Sha256::digest(&disk)), got.sha256);
    // A plain zstd frame (the CLI can read it too).
    assert_eq!(zstd::decode_all(&disk[..]).unwrap(), original);

    let out = tmp.path().join("restored.bin");
    let f = store.read("p/1/db.dump.zst").await.unwrap();
    restore_into(f, sh(&format!("cat > {}", out.display())), &no_scrub)
        .await
        .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), original);
}

#[tokio::test]
async fn empty_output_is_a_valid_object() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::open(tmp.path().to_str().unwrap())
        .await
        .unwrap();
    let up = store.create("empty").await.unwrap();
    let got = dump_to(sh("true"), 1, up, Arc::new(|_, _| {}), &no_scrub)
        .await
        .unwrap();
    assert_eq!(got.raw_bytes, 0);
    assert!(got.bytes > 0);
    let out = tmp.path().join("out");
    restore_into(
        store.read("empty").await.unwrap(),
        sh(&format!("cat > {}", out.display())),
        &no_scrub,
    )
    .await
    .unwrap();
    assert_eq!(std::fs::read(&out).unwrap(), b"");
}

#[tokio::test]
async fn a_failing_tool_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::open(tmp.path().to_str().unwrap())
        .await
        .unwrap();
    let up = store.create("x/fail.zst").await.unwrap();
    let script = "head -c 500000 /dev/urandom; echo 'boom hunter2' >&2; exit 3";
    let err = dump_to(sh(script), 3, up, Arc::new(|_, _| {}), &no_scrub)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "sh exited 3: boom ***");
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );

    let up = store.create("y").await.unwrap();
    let err = dump_to(sh("kill -9 $$"), 3, up, Arc::new(|_, _| {}), &no_scrub)
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "sh was killed by signal 9");

    let up = store.create("z").await.unwrap();
    let err = dump_to(
        Command::new("/nonexistent/pg_dump"),
        3,
        up,
        Arc::new(|_, _| {}),
        &no_scrub,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("cannot start pg_dump"), "{err}");
    assert!(
        leftovers(tmp.path()).is_empty(),
        "{:?}",
        leftovers(tmp.path())
    );
}

/// A reader that gives `n` bytes, then fails or ends.
struct Feed {
    left: usize,
    fail: bool,
}

impl Read for Feed {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return if self.fail {
                Err(std::io::Error::other("the engine went away"))
            } else {
                Ok(0)
            };
        }
        let n = buf.len().min(self.left);
        buf[..n].fill(b'z');
        self.left -= n;
        Ok(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_is_an_input_and_its_error_leaves_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::open(tmp.path().to_str().unwrap())
        .await
        .unwrap();
    let up = store.create("r/ok").await.unwrap();
    let got = dump_to(
        Input::reader(
            "a volume",
            Feed {
                left: 3_000_000,
                fail: false,
            },
        ),
        3,
        up,
        Arc::new(|_, _| {}),
        &no_scrub,
    )
    .await
    .unwrap();
    assert_eq!(got.raw_bytes, 3_000_000);
    let disk = std::fs::read(store.root.join("r/ok")).unwrap();
    assert_eq!(zstd::decode_all(&disk[..]).unwrap(), vec![b'z'; 3_000_000]);
    assert_eq!(hex::encode(Sha256::digest(&disk)), got.sha256);

    let up = store.create("r/bad").await.unwrap();
    let err = dump_to(
        Input::reader(
            "volume data",
            Feed {
                left: 2_500_000,
                fail: true,
            },
        ),
        3,
        up,
        Arc::new(|_, _| {}),
        &no_scrub,
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(err, "reading volume data: the engine went away");
    assert_eq!(
        leftovers(tmp.path()),
        vec![store.root.join("r/ok").display().to_string()]
    );
}

#[tokio::test]
async fn long_stderr_keeps_its_end() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::open(tmp.path().to_str().unwrap())
        .await
        .unwrap();
    let up = store.create("x").await.unwrap();
    let script = "i=0; while [ $i -lt 2000 ]; do echo \"line $i\" >&2; i=$((i+1)); done; exit 1";
    let err = dump_to(sh(script), 3, up, Arc::new(|_, _| {}), &no_scrub)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("sh exited 1: …line "), "{err}");
    assert!(err.ends_with("line 1999"), "{err}");
    assert!(err.len() < TAIL * 5 / 4, "{}", err.len());
}

#[tokio::test]
async fn restore_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let store = LocalStore::open(tmp.path().to_str().unwrap())
        .await
        .unwrap();
    let up = store.create("ok").await.unwrap();
    dump_to(sh("seq 1 200000"), 3, up, Arc::new(|_, _| {}), &no_scrub)
        .await
        .unwrap();
    // The tool fails.
    let err = restore_into(
        store.read("ok").await.unwrap(),
        sh("cat >/dev/null; echo 'restore failed hunter2' >&2; exit 2"),
        &no_scrub,
    )
    .await
    .unwrap_err()
    .to_string();
    assert_eq!(err, "sh exited 2: restore failed ***");
    // The tool stops reading early but says it succeeded.
    let err = restore_into(store.read("ok").await.unwrap(), sh("exit 0"), &no_scrub)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("before reading all"), "{err}");
    // Corrupted data: the tool is killed before it sees an end.
    let mut bytes = std::fs::read(store.root.join("ok")).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    std::fs::write(tmp.path().join("bad"), &bytes).unwrap();
    let marker = tmp.path().join("completed");
    let err = restore_into(
        store.read("bad").await.unwrap(),
        sh(&format!("cat >/dev/null && touch {}", marker.display())),
        &no_scrub,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.starts_with("reading the backup:"), "{err}");
    assert!(!marker.exists());
}
