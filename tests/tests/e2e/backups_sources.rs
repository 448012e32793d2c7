//! Backup sources other than Postgres, end to end with real parts: a
//! MariaDB database on the harness's MariaDB server (real `mariadb-dump`,
//! verification by a real test restore), a Docker volume on the private
//! dockerd (the engine's archive API, a busybox helper, a scratch-volume
//! test restore), and a directory on this host; each backup is restored
//! for real (the server's own restore functions, which the restore runbook
//! uses, or the plain tools) and the data compared. Archives with entries
//! that leave their root are refused before anything is written. The new
//! source kinds are validated at the API.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use opsdeck::backups::storage::ObjectReader;
use opsdeck_e2e::fixtures::{backup_ids_from, files_under, sha256_hex, unique, unzstd};
use opsdeck_e2e::flows::audit::audit;
use opsdeck_e2e::flows::backups::{
    backups, create_plan, create_target, detail, finished, run_plan, run_text,
};
use opsdeck_e2e::mariadb::MariaDb;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release};
use opsdeck_wire::{BackupStatus, Engine, EngineState, Role, RunStatus, Service, Verification};
use serde_json::json;

/// A service `name` with a MariaDB check on the harness's server, as `user`.
async fn maria_service(admin: &Api, name: &str, url: &str, password: &str) -> Service {
    opsdeck_e2e::flows::backups::db_service(admin, name, "mysql", url, Some(password)).await
}

async fn root_sql(maria: &'static MariaDb, sql: String) -> String {
    tokio::task::spawn_blocking(move || maria.sql_as_root(&sql))
        .await
        .unwrap()
        .unwrap_or_else(|e| panic!("{e:#}"))
}

/// `mariadb --database=<db>` as root over the socket, `sql` on stdin.
async fn root_feed(maria: &'static MariaDb, db: &str, sql: Vec<u8>) {
    let mut c = tokio::process::Command::new(client());
    c.arg("--no-defaults")
        .arg(format!("--socket={}", maria.socket().display()))
        .args(["--user=root", "--batch"])
        .arg(format!("--database={db}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = c.spawn().expect("running mariadb");
    let mut stdin = child.stdin.take().unwrap();
    let feed = tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        stdin.write_all(&sql).await.unwrap();
    });
    let out = child.wait_with_output().await.unwrap();
    feed.await.unwrap();
    assert!(
        out.status.success(),
        "mariadb < dump: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn client() -> PathBuf {
    for p in ["/usr/bin/mariadb", "/usr/bin/mysql"] {
        if Path::new(p).is_file() {
            return PathBuf::from(p);
        }
    }
    PathBuf::from("mariadb")
}

/// Opens a stored object again, as the restore runbook does.
fn opener(
    path: PathBuf,
) -> impl Fn() -> futures::future::BoxFuture<'static, anyhow::Result<ObjectReader>> {
    move || {
        let p = path.clone();
        Box::pin(async move {
            let f = tokio::fs::File::open(&p).await?;
            Ok(Box::new(f) as ObjectReader)
        })
    }
}

/// A MariaDB database with awkward names, binary and JSON data, a trigger,
/// a routine, an event and a view; backup (real `mariadb-dump`) →
/// verification (test restore into a scratch database, row counts) → the
/// stored dump restored with the real client into another database, every
/// table's checksum compared; the password nowhere in the run or the audit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_backup_verifies_and_restores_into_another_database() {
    let Ok(maria) = tokio::task::spawn_blocking(MariaDb::shared).await.unwrap() else {
        return;
    };
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 7_000).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let db = unique("bk_shop");
    let copy = format!("{db}_copy");
    let user = "opsdeck_bk";
    let password = "bk-pass-5f3e-secret";
    root_sql(
        maria,
        format!(
            "CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
             GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1';
             CREATE DATABASE `{db}` CHARACTER SET utf8mb4;
             USE `{db}`;
             CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(200) NOT NULL, note TEXT,
                                     since DATETIME(3), touched INT NOT NULL DEFAULT 0);
             INSERT INTO customers (id, name, note, since)
               SELECT seq, CONCAT('Customer ', seq, ' «Ünïcødé» ''q'' \\\\ ', CHAR(10), 'line two'),
                      IF(seq % 7 = 0, NULL, REPEAT(MD5(seq), 3)),
                      TIMESTAMP('2024-01-01 00:00:00') + INTERVAL seq MINUTE
               FROM seq_1_to_300;
             CREATE TABLE `Order Items` (id BIGINT PRIMARY KEY, customer INT NOT NULL,
                                         payload LONGTEXT, raw VARBINARY(64), amount DECIMAL(12,2),
                                         FOREIGN KEY (customer) REFERENCES customers (id));
             INSERT INTO `Order Items`
               SELECT seq, 1 + seq % 300,
                      JSON_OBJECT('sku', CONCAT('SKU-', LPAD(seq, 6, '0')), 'qty', seq % 9,
                                  'tags', JSON_ARRAY(CONCAT('t', seq % 5), seq % 3 = 0)),
                      UNHEX(SHA2(seq, 256)), ROUND(seq * 3.17, 2)
               FROM seq_1_to_3000;
             CREATE TABLE empty_one (x INT);
             CREATE TRIGGER customers_touch BEFORE UPDATE ON customers
               FOR EACH ROW SET NEW.touched = OLD.touched + 1;
             CREATE PROCEDURE order_count(OUT n INT) SELECT COUNT(*) INTO n FROM `Order Items`;
             CREATE EVENT nightly_cleanup ON SCHEDULE EVERY 1 DAY DO DELETE FROM empty_one;
             CREATE VIEW big_orders AS SELECT * FROM `Order Items` WHERE amount > 9000;"
        ),
    )
    .await;
    let expected: BTreeMap<String, i64> = [
        ("customers".to_string(), 300),
        ("Order Items".to_string(), 3000),
        ("empty_one".to_string(), 0),
    ]
    .into();
    maria_service(
        &admin,
        "shop",
        &format!("mysql://{user}@127.0.0.1:{}/", maria.port()),
        password,
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let plan = create_plan(
        &admin,
        json!({"name": "shop-nightly", "target": "local",
               "sources": [{"kind": "mariadb", "service": " shop ", "databases": [db]}]}),
    )
    .await;
    assert_eq!(
        serde_json::to_value(&plan.def.sources).unwrap(),
        json!([{"kind": "mariadb", "service": "shop", "databases": [db]}])
    );

    let started = std::time::Instant::now();
    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    let took = started.elapsed();
    let text = run_text(&run);
    assert_eq!(run.summary.status, RunStatus::Succeeded, "{text}");
    assert!(text.contains("test restore ok, 3 tables"), "{text}");
    assert!(!text.contains(password), "{text}");
    let list = backups(&operator, "").await;
    assert_eq!(list.len(), 1);
    let b = &list[0];
    assert!(b.id >= 7_000, "{b:?}");
    assert_eq!(
        (b.status, b.verification),
        (BackupStatus::Succeeded, Verification::Verified),
        "{b:?}"
    );
    let d = detail(&operator, b.id).await;
    assert_eq!(d.artifacts.len(), 1, "{:?}", d.artifacts);
    let a = &d.artifacts[0];
    assert_eq!(
        (a.kind.as_str(), a.source.clone()),
        ("mysqldump", format!("mariadb:shop/{db}"))
    );
    assert_eq!(
        a.object_key,
        format!("shop-nightly/{}/0-mariadb_shop_{db}.mysqldump.zst", b.id)
    );
    assert_eq!(a.stats, expected, "row counts taken at dump time");
    assert!(
        a.tool.starts_with("mariadb-dump") || a.tool.starts_with("mysqldump"),
        "{}",
        a.tool
    );
    let file = std::fs::read(store.join(&a.object_key)).unwrap();
    assert_eq!(sha256_hex(&file), a.sha256.clone().unwrap());
    assert_eq!(files_under(&store), std::slice::from_ref(&a.object_key));
    let scratch = root_sql(
        maria,
        format!("SHOW DATABASES LIKE 'opsdeck\\_verify\\_{}\\_%'", b.id),
    )
    .await;
    assert_eq!(scratch.trim(), "", "the scratch database is dropped");

    // The dump: plain SQL of the one database (no CREATE DATABASE / USE),
    // with the trigger, the routine and the event.
    let sql = unzstd(&store.join(&a.object_key)).await;
    assert_eq!(sql.len() as i64, a.raw_bytes);
    let text_sql = String::from_utf8_lossy(&sql);
    assert!(!text_sql.contains("CREATE DATABASE"), "no CREATE DATABASE");
    assert!(!text_sql.contains("\nUSE "), "no USE");
    for want in [
        "customers_touch",
        "order_count",
        "nightly_cleanup",
        "big_orders",
    ] {
        assert!(text_sql.contains(want), "{want} is in the dump");
    }
    // A real restore into another database, data compared table by table.
    root_sql(
        maria,
        format!("CREATE DATABASE `{copy}` CHARACTER SET utf8mb4"),
    )
    .await;
    root_feed(maria, &copy, sql).await;
    for table in ["customers", "Order Items", "empty_one"] {
        let sum = |d: &str| format!("CHECKSUM TABLE `{d}`.`{table}` EXTENDED");
        let a1 = root_sql(maria, sum(&db)).await;
        let a2 = root_sql(maria, sum(&copy)).await;
        let (c1, c2) = (
            a1.split('\t').nth(1).unwrap_or_default().trim().to_string(),
            a2.split('\t').nth(1).unwrap_or_default().trim().to_string(),
        );
        assert!(!c1.is_empty() && c1 == c2, "{table}: {a1} vs {a2}");
    }
    let objects = root_sql(
        maria,
        format!(
            "SELECT (SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = '{copy}'),
                    (SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = '{copy}'),
                    (SELECT COUNT(*) FROM information_schema.events WHERE event_schema = '{copy}'),
                    (SELECT COUNT(*) FROM information_schema.views WHERE table_schema = '{copy}')"
        ),
    )
    .await;
    assert_eq!(
        objects.trim(),
        "1\t1\t1\t1",
        "trigger, routine, event, view"
    );

    // The password is in no audit entry.
    let entries: Vec<_> = [
        audit(&admin, "backup.plan.create").await,
        audit(&admin, "backup.run").await,
        audit(&admin, "backup.created").await,
        audit(&admin, "backup.verified").await,
    ]
    .concat();
    assert!(entries.len() >= 4, "{entries:?}");
    assert!(!format!("{entries:?}").contains(password));

    // A database that does not exist: the backup fails with the reason,
    // and nothing is left on the target.
    let bad = create_plan(
        &admin,
        json!({"name": "shop-missing", "target": "local",
               "sources": [{"kind": "mariadb", "service": "shop", "databases": ["nope_nope"]}]}),
    )
    .await;
    let run = finished(&operator, run_plan(&operator, bad.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed, "{}", run_text(&run));
    let failed = &backups(&operator, "?plan=shop-missing").await[0];
    assert_eq!(failed.status, BackupStatus::Failed);
    let e = failed.error.clone().unwrap_or_default();
    assert!(e.contains("\"nope_nope\" not found"), "{e}");
    assert!(files_under(&store.join("shop-missing")).is_empty());

    root_sql(
        maria,
        format!("DROP DATABASE `{db}`; DROP DATABASE `{copy}`"),
    )
    .await;
    eprintln!("mariadb backup + verification: {took:?}");
}

// ------------------------------------------------------------------ volumes

/// `docker …` on the private engine, blocking, must succeed; its stdout.
async fn docker(engine: &opsdeck_e2e::dockerd::PrivateDockerd, args: Vec<String>) -> String {
    let mut c = engine.cli();
    c.args(&args);
    let out = tokio::task::spawn_blocking(move || c.output())
        .await
        .unwrap()
        .expect("running docker");
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `script` in a busybox container with `volume` at /d.
async fn in_volume(
    engine: &opsdeck_e2e::dockerd::PrivateDockerd,
    volume: &str,
    script: &str,
) -> String {
    docker(
        engine,
        [
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &format!("{volume}:/d"),
            "busybox:latest",
            "sh",
            "-c",
            script,
        ]
        .map(String::from)
        .to_vec(),
    )
    .await
}

/// Every path of a volume with its type, mode, owner, size, link count,
/// link target and content digest (and time, for files): what a restore
/// must give back.
async fn volume_manifest(engine: &opsdeck_e2e::dockerd::PrivateDockerd, volume: &str) -> String {
    in_volume(
        engine,
        volume,
        "cd /d && find . | sort | while IFS= read -r f; do \
           if [ -L \"$f\" ]; then echo \"$f link $(readlink \"$f\")\"; \
           elif [ -d \"$f\" ]; then echo \"$f dir $(stat -c '%a %u:%g' \"$f\")\"; \
           else echo \"$f file $(stat -c '%a %u:%g %s %h %Y' \"$f\") $(md5sum < \"$f\" | cut -c1-32)\"; fi; \
         done",
    )
    .await
}

/// A hand-written tar (names and link targets as given) compressed with
/// the zstd CLI: archives the tar crate's builder would refuse to write.
async fn evil_tar_zst(entries: &[(&str, u8, &str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, kind, link, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"14000000000");
        h[156] = *kind;
        h[157..157 + link.len()].copy_from_slice(link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| b as u32).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out.extend(std::iter::repeat_n(0u8, (512 - data.len() % 512) % 512));
    }
    out.extend([0u8; 1024]);
    let mut c = tokio::process::Command::new("zstd");
    c.args(["-q", "-c"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped());
    let mut child = c.spawn().expect("zstd");
    let mut stdin = child.stdin.take().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        stdin.write_all(&out).await.unwrap();
    });
    let o = child.wait_with_output().await.unwrap();
    assert!(o.status.success());
    o.stdout
}

/// A volume with nested directories, modes, owners, a hard link, relative
/// symbolic links, odd names and 2 MB of random bytes: backup through the
/// engine's archive API → verification (archive walk, test restore into a
/// scratch volume, read back) → restored with the server's restore
/// function into a new volume and over a volume with stale files: the
/// same files, modes, owners, links and contents. No helper container or
/// scratch volume is left. An archive with a link-then-write-through entry
/// is refused and the volume is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_backup_verifies_and_round_trips_on_the_private_engine() {
    let Some(engine) = engine().await else {
        return;
    };
    let build = engine.clone();
    tokio::task::spawn_blocking(move || build.build_busybox_image("busybox:latest"))
        .await
        .unwrap()
        .expect("building busybox:latest");
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 7_100).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "local", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    poll(Duration::from_secs(60), "engine connected", async || {
        let list: Vec<Engine> = admin.json("/api/v1/engines").await;
        match list.iter().find(|e| e.name == "local") {
            Some(e) if e.state == EngineState::Connected => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    let vol = unique("bk_vol");
    docker(&engine, vec!["volume".into(), "create".into(), vol.clone()]).await;
    in_volume(
        &engine,
        &vol,
        "set -e; cd /d; mkdir -p conf/sub empty 'name with space'; \
         printf 'hello\\n' > conf/a.txt; chmod 640 conf/a.txt; chown 1234:5678 conf/a.txt; \
         head -c 2000000 /dev/urandom > big.bin; ln big.bin hard.bin; \
         ln -s ../../big.bin conf/sub/link; ln -s a.txt conf/alias; chmod 750 conf/sub; \
         printf x > 'name with space/ü.txt'; touch -d '2024-05-06 07:08:09' conf/a.txt",
    )
    .await;
    let before = volume_manifest(&engine, &vol).await;
    assert!(
        before.contains("./conf/a.txt file 640 1234:5678 6 1"),
        "{before}"
    );

    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let plan = create_plan(
        &admin,
        json!({"name": "vol-nightly", "target": "local",
               "sources": [{"kind": "volume", "volume": vol}]}),
    )
    .await;
    let started = std::time::Instant::now();
    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    let took = started.elapsed();
    let text = run_text(&run);
    assert_eq!(run.summary.status, RunStatus::Succeeded, "{text}");
    assert!(text.contains("archive checked, 3 files"), "{text}");
    assert!(
        text.contains("test restore into volume opsdeck-verify-"),
        "{text}"
    );
    let b = &backups(&operator, "").await[0];
    assert_eq!(
        (b.status, b.verification),
        (BackupStatus::Succeeded, Verification::Verified),
        "{b:?}"
    );
    let d = detail(&operator, b.id).await;
    let a = &d.artifacts[0];
    assert_eq!(
        (a.kind.as_str(), a.source.clone()),
        ("volume_tar", format!("volume:local/{vol}"))
    );
    let want: BTreeMap<String, i64> = [
        ("files", 3),
        ("bytes", 2_000_007),
        ("dirs", 5),
        ("symlinks", 2),
        ("hardlinks", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(a.stats, want, "figures counted while streaming");
    assert!(
        a.tool.contains("archive API, helper busybox:latest"),
        "{}",
        a.tool
    );
    // The stored object is a plain zstd'd tar of volume/.
    let tar = unzstd(&store.join(&a.object_key)).await;
    assert_eq!(tar.len() as i64, a.raw_bytes);
    assert_eq!(&tar[..7], b"volume/");
    // Nothing left behind on the engine.
    let helpers = docker(
        &engine,
        ["ps", "-a", "-q", "--filter", "label=opsdeck.backup-helper"]
            .map(String::from)
            .to_vec(),
    )
    .await;
    assert_eq!(helpers.trim(), "", "helper containers are removed");
    let vols = docker(&engine, ["volume", "ls", "-q"].map(String::from).to_vec()).await;
    assert!(!vols.contains("opsdeck-verify-"), "{vols}");

    // Restore into a new volume, and over one with stale content.
    let object = store.join(&a.object_key);
    let fresh = format!("{vol}_restored");
    let stats =
        opsdeck::backups::volumes::restore(&s.state, Some("local"), &fresh, opener(object.clone()))
            .await
            .expect("restore into a new volume");
    assert_eq!(stats.files, 3);
    assert_eq!(volume_manifest(&engine, &fresh).await, before);
    let stale = format!("{vol}_stale");
    docker(
        &engine,
        vec!["volume".into(), "create".into(), stale.clone()],
    )
    .await;
    in_volume(
        &engine,
        &stale,
        "echo old > /d/stale.txt; mkdir /d/conf; echo x > /d/.hidden",
    )
    .await;
    opsdeck::backups::volumes::restore(&s.state, Some("local"), &stale, opener(object.clone()))
        .await
        .expect("restore over a volume");
    assert_eq!(
        volume_manifest(&engine, &stale).await,
        before,
        "stale files are gone"
    );

    // A link to /etc, then a write through it: refused, nothing touched.
    let evil = tmp.path().join("evil.tar.zst");
    std::fs::write(
        &evil,
        evil_tar_zst(&[
            ("volume/", b'5', "", b""),
            ("volume/ok.txt", b'0', "", b"fine"),
            ("volume/etc", b'2', "/etc", b""),
            (
                "volume/etc/cron.d/evil",
                b'0',
                "",
                b"* * * * * root sh -c 'id'\n",
            ),
        ])
        .await,
    )
    .unwrap();
    let err = opsdeck::backups::volumes::restore(&s.state, Some("local"), &stale, opener(evil))
        .await
        .unwrap_err();
    assert!(err.contains("refused") && err.contains("absolute"), "{err}");
    assert_eq!(volume_manifest(&engine, &stale).await, before, "untouched");

    // A volume that does not exist: the backup fails with the reason.
    let missing = create_plan(
        &admin,
        json!({"name": "vol-missing", "target": "local",
               "sources": [{"kind": "volume", "volume": "no_such_volume", "engine": "local"}]}),
    )
    .await;
    let run = finished(&operator, run_plan(&operator, missing.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed, "{}", run_text(&run));
    let f = &backups(&operator, "?plan=vol-missing").await[0];
    let e = f.error.clone().unwrap_or_default();
    assert!(
        e.contains("no volume \"no_such_volume\" on engine local"),
        "{e}"
    );

    for v in [&vol, &fresh, &stale] {
        docker(&engine, vec!["volume".into(), "rm".into(), v.to_string()]).await;
    }
    eprintln!("volume backup + verification: {took:?}");
    drop(s);
    release(engine).await;
}

// -------------------------------------------------------------- host files

/// Paths below `root` with type, mode, size, content digest or link target.
fn tree(root: &Path) -> Vec<String> {
    fn walk(dir: &Path, root: &Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let mode = m.permissions().mode() & 0o7777;
            if m.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if m.is_dir() {
                out.push(format!("{rel}/ {mode:o}"));
                walk(&p, root, out);
            } else if m.is_file() {
                let data = std::fs::read(&p).unwrap();
                let mtime = m
                    .modified()
                    .unwrap()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_secs();
                out.push(format!(
                    "{rel} {mode:o} {} {} {mtime}",
                    data.len(),
                    &sha256_hex(&data)[..16]
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// A directory on this host (nested, modes, relative links, a long path,
/// an empty directory, a non-ASCII name, 3 MB of random bytes, a socket):
/// backup (tar built while streaming) → verification → the stored archive
/// is a standard tar (GNU tar lists it) → restored with the server's
/// restore function over a changed copy: the same tree. A socket is
/// skipped and said so; a path that is not there fails the backup; an
/// archive with `..` is refused with the destination untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_directory_backup_verifies_and_restores() {
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 7_200).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("app-config");
    let deep = src.join("d".repeat(60)).join("e".repeat(60));
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::create_dir_all(src.join("empty")).unwrap();
    std::fs::create_dir_all(src.join("sites")).unwrap();
    std::fs::write(deep.join("long.txt"), b"deep").unwrap();
    std::fs::write(src.join("main.conf"), b"workers 4;\n").unwrap();
    std::fs::set_permissions(
        src.join("main.conf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let random: Vec<u8> = (0..3_000_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(src.join("sites/blob.bin"), &random).unwrap();
    std::fs::write(src.join("sites/ünïcødé name.conf"), b"x").unwrap();
    std::os::unix::fs::symlink("../main.conf", src.join("sites/main-link")).unwrap();
    // An absolute link into the directory (stored relative) and one out of
    // it (left out, named on the run page).
    std::os::unix::fs::symlink(src.join("main.conf"), src.join("sites/abs-link")).unwrap();
    std::os::unix::fs::symlink("/etc/hostname", src.join("localtime")).unwrap();
    std::fs::set_permissions(src.join("sites"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let _sock = std::os::unix::net::UnixListener::bind(src.join("app.sock")).unwrap();
    let before = tree(&src);

    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let plan = create_plan(
        &admin,
        json!({"name": "config", "target": "local",
               "sources": [{"kind": "files", "path": format!("{}/", src.display())}]}),
    )
    .await;
    assert_eq!(
        serde_json::to_value(&plan.def.sources).unwrap(),
        json!([{"kind": "files", "path": src.display().to_string()}]),
        "the path is normalised"
    );
    let started = std::time::Instant::now();
    let run = finished(&operator, run_plan(&operator, plan.id).await).await;
    let took = started.elapsed();
    let text = run_text(&run);
    assert_eq!(run.summary.status, RunStatus::Succeeded, "{text}");
    assert!(
        text.contains("skipped 1 sockets, FIFOs or devices"),
        "{text}"
    );
    assert!(
        text.contains("1 absolute symbolic links into") && text.contains("stored as relative"),
        "{text}"
    );
    assert!(
        text.contains("left out 1 symbolic links pointing outside")
            && text.contains("localtime -> /etc/hostname"),
        "{text}"
    );
    assert!(text.contains("archive checked, 4 files"), "{text}");
    let b = &backups(&operator, "").await[0];
    assert_eq!(
        (b.status, b.verification),
        (BackupStatus::Succeeded, Verification::Verified),
        "{b:?}"
    );
    let a = &detail(&operator, b.id).await.artifacts[0];
    assert_eq!(
        (a.kind.as_str(), a.source.clone()),
        ("files_tar", format!("files:{}", src.display()))
    );
    assert_eq!(a.stats["files"], 4);
    assert_eq!(a.stats["bytes"], 3_000_000 + 4 + 11 + 1);
    assert_eq!(a.stats["hardlinks"], 0);
    assert_eq!(a.stats["dirs"], 5);
    assert_eq!(a.stats["symlinks"], 2);
    assert!(a.raw_bytes > a.bytes, "{a:?}");

    // GNU tar reads it: one top-level name, the long path intact.
    let object = store.join(&a.object_key);
    let tar = unzstd(&object).await;
    let tar_file = tmp.path().join("plain.tar");
    std::fs::write(&tar_file, &tar).unwrap();
    let listed = std::process::Command::new("tar")
        .arg("-tf")
        .arg(&tar_file)
        .output()
        .unwrap();
    assert!(listed.status.success());
    let listed = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.lines().all(|l| l.starts_with("app-config")),
        "{listed}"
    );
    assert!(
        listed.contains(&format!(
            "app-config/{}/{}/long.txt",
            "d".repeat(60),
            "e".repeat(60)
        )),
        "{listed}"
    );

    // Restore over a changed copy: the tree as it was backed up.
    let dest = tmp.path().join("restored");
    std::fs::create_dir_all(dest.join("junk")).unwrap();
    std::fs::write(dest.join("stale.txt"), b"old").unwrap();
    let got = opsdeck::backups::files::restore(dest.to_str().unwrap(), opener(object.clone()))
        .await
        .expect("restore");
    assert_eq!(got.files, 4);
    let mut want = before.clone();
    want.retain(|l| !l.starts_with("localtime"));
    for l in want.iter_mut() {
        if l.starts_with("sites/abs-link") {
            *l = "sites/abs-link -> ../main.conf".into();
        }
    }
    assert_eq!(tree(&dest), want);
    let leftovers: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("opsdeck-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // `..` in an archive: refused before anything is written.
    let evil = tmp.path().join("evil.tar.zst");
    std::fs::write(
        &evil,
        evil_tar_zst(&[
            ("app-config/", b'5', "", b""),
            ("app-config/ok", b'0', "", b"1"),
            ("app-config/../../escaped", b'0', "", b"pwned"),
        ])
        .await,
    )
    .unwrap();
    let err = opsdeck::backups::files::restore(dest.to_str().unwrap(), opener(evil))
        .await
        .unwrap_err();
    assert!(err.contains("refused") && err.contains("\"..\""), "{err}");
    assert_eq!(tree(&dest), want, "untouched");
    assert!(!tmp.path().join("escaped").exists());
    assert!(!dest.join("ok").exists());

    // A path that is not there: the backup fails with the reason.
    let gone = create_plan(
        &admin,
        json!({"name": "gone", "target": "local",
               "sources": [{"kind": "files", "path": tmp.path().join("nope").display().to_string()}]}),
    )
    .await;
    let run = finished(&operator, run_plan(&operator, gone.id).await).await;
    assert_eq!(run.summary.status, RunStatus::Failed, "{}", run_text(&run));
    let f = &backups(&operator, "?plan=gone").await[0];
    assert_eq!(f.status, BackupStatus::Failed);
    assert!(
        f.error
            .clone()
            .unwrap_or_default()
            .contains("does not exist"),
        "{f:?}"
    );
    assert!(files_under(&store.join("gone")).is_empty());
    eprintln!("host files backup + verification: {took:?}");
}

/// The new kinds at the API: each field checked with a reason naming it,
/// values normalised, only admins write plans, changes audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_source_kinds_are_validated_and_only_admins_write_them() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    let viewer = s.user(Role::Viewer).await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    opsdeck_e2e::flows::backups::pg_service(&admin, "pg", "postgres://u@127.0.0.1:1/x", None).await;
    maria_service(&admin, "my", "mysql://u@127.0.0.1:1/", "pw").await;
    let plan =
        |sources: serde_json::Value| json!({"name": "p", "target": "local", "sources": sources});
    let cases = [
        (
            json!([{"kind": "mariadb", "service": "pg"}]),
            "sources[0].service: \"pg\" is not a service with a MariaDB/MySQL check",
        ),
        (
            json!([{"kind": "postgres", "service": "my"}]),
            "sources[0].service: \"my\" is not a service with a Postgres check",
        ),
        (
            json!([{"kind": "mariadb", "service": "my", "databases": ["a.b"]}]),
            "sources[0].databases: \"a.b\" is not a MariaDB database name",
        ),
        (
            json!([{"kind": "volume", "volume": "../etc"}]),
            "sources[0].volume: a Docker volume name",
        ),
        (
            json!([{"kind": "volume", "volume": "data", "engine": "nowhere"}]),
            "sources[0].engine: no Docker engine named \"nowhere\"",
        ),
        (
            json!([{"kind": "files", "path": "etc/nginx"}]),
            "sources[0].path: must be an absolute path",
        ),
        (
            json!([{"kind": "files", "path": "/etc/../root"}]),
            "sources[0].path: must not contain \"..\"",
        ),
        (
            json!([{"kind": "files", "path": "/"}]),
            "sources[0].path: must not be /",
        ),
        (
            json!([{"kind": "files", "path": "/etc"}, {"kind": "files", "path": ""}]),
            "sources[1].path: must not be empty",
        ),
        (json!([{"kind": "tape", "path": "/etc"}]), "tape"),
    ];
    for (sources, want) in cases {
        let res = admin
            .post("/api/v1/backup-plans", &plan(sources.clone()))
            .await;
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        assert!(status == 400 || status == 422, "{sources}: {status} {body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let msg = v["error"]["message"].as_str().unwrap_or(&body).to_string();
        assert!(msg.contains(want), "{sources}: {msg}");
    }
    // Normalised values.
    let p: opsdeck_wire::BackupPlan = ok_json(
        admin
            .post(
                "/api/v1/backup-plans",
                &plan(json!([
                    {"kind": "mariadb", "service": " my ", "databases": ["shop", " "]},
                    {"kind": "volume", "volume": " data ", "engine": " "},
                    {"kind": "files", "path": " /etc/nginx/ "}
                ])),
            )
            .await,
        "create plan",
    )
    .await;
    assert_eq!(
        serde_json::to_value(&p.def.sources).unwrap(),
        json!([
            {"kind": "mariadb", "service": "my", "databases": ["shop"]},
            {"kind": "volume", "volume": "data", "engine": null},
            {"kind": "files", "path": "/etc/nginx"}
        ])
    );
    let body = plan(json!([{"kind": "files", "path": "/srv"}]));
    for (who, api) in [("operator", &operator), ("viewer", &viewer)] {
        let res = api.post("/api/v1/backup-plans", &body).await;
        expect_error(res, 403).await;
        let res = api
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/backup-plans/{}", p.id),
                &body,
            )
            .await;
        assert_eq!(res.status(), 403, "{who}");
    }
    let e = audit(&admin, "backup.plan.create").await;
    let ok: Vec<_> = e
        .iter()
        .filter(|e| e.outcome == opsdeck_wire::Outcome::Success)
        .collect();
    assert_eq!(ok.len(), 1, "{e:?}");
}

/// The plan form's source editor: four kinds, each with its own fields;
/// an admin adds a host-files plan in the browser, runs it, and the
/// backup's page shows the archive's contents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_adds_a_files_plan_in_the_browser_and_sees_its_contents() {
    use opsdeck_e2e::browser::Browser;
    use opsdeck_e2e::server::PASSWORD;
    if opsdeck_e2e::server::spa().is_err() {
        return;
    }
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 7_300).await;
    s.create_user("ada", Role::Admin).await;
    let ada = s.login("ada").await;
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("etc-app");
    std::fs::create_dir_all(src.join("conf.d")).unwrap();
    std::fs::write(src.join("app.conf"), b"listen 8080;\n").unwrap();
    std::fs::write(src.join("conf.d/extra.conf"), b"gzip on;\n").unwrap();
    create_target(&ada, "local", &tmp.path().join("store")).await;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&s.url("/login"), "ada", PASSWORD).await;
    b.goto(&s.url("/backups")).await;
    b.wait_for("[data-testid=plan-new]")
        .await
        .click()
        .await
        .expect("New plan");
    b.wait_for("[data-testid=plan-form]").await;
    let kinds = b
        .execute(
            "return [...document.querySelectorAll('[data-testid=plan-source-kind-0] option')] \
             .map(o => o.value).join(',');",
        )
        .await;
    assert_eq!(kinds, "postgres,mariadb,volume,files");
    let set_kind = |i: usize, kind: &'static str| {
        let b = &b;
        async move {
            b.execute(&format!(
                "const s = document.querySelector('[data-testid=plan-source-kind-{i}]'); \
                 s.value = '{kind}'; s.dispatchEvent(new Event('change', {{bubbles: true}})); return null;"
            ))
            .await;
        }
    };
    // A second source, as a volume: its own fields; then removed again.
    b.wait_for("[data-testid=plan-source-add]")
        .await
        .click()
        .await
        .unwrap();
    set_kind(1, "volume").await;
    b.wait_for("[data-testid=plan-source-volume-1]").await;
    b.wait_for("[data-testid=plan-source-engine-1]").await;
    assert!(!b.exists("[data-testid=plan-source-service-1]").await);
    b.wait_for("[data-testid=plan-source-remove-1]")
        .await
        .click()
        .await
        .unwrap();
    // The first source: host files.
    set_kind(0, "files").await;
    b.wait_for("[data-testid=plan-source-path-0]")
        .await
        .send_keys("relative/path")
        .await
        .unwrap();
    b.wait_for("[data-testid=plan-name]")
        .await
        .send_keys("app-config")
        .await
        .unwrap();
    b.wait_for("[data-testid=plan-save]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_contains("[data-testid=plan-error]", "sources[0].path")
        .await;
    assert_eq!(
        b.execute(
            "return document.querySelector('[data-testid=plan-source-path-0]').getAttribute('aria-invalid');"
        )
        .await,
        "true"
    );
    b.execute(&format!(
        "const i = document.querySelector('[data-testid=plan-source-path-0]'); \
         i.value = '{}'; i.dispatchEvent(new Event('input', {{bubbles: true}})); return null;",
        src.display()
    ))
    .await;
    b.wait_for("[data-testid=plan-save]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_contains(
        "[data-testid=plan-sources-app-config]",
        &format!("Host files {}", src.display()),
    )
    .await;
    let plans: Vec<opsdeck_wire::BackupPlan> = ada.json("/api/v1/backup-plans").await;
    assert_eq!(
        serde_json::to_value(&plans[0].def.sources).unwrap(),
        json!([{"kind": "files", "path": src.display().to_string()}])
    );
    b.wait_for("[data-testid=plan-run-app-config]")
        .await
        .click()
        .await
        .unwrap();
    let done = poll(
        Duration::from_secs(60),
        "the backup verified",
        async || match backups(&ada, "").await.first() {
            Some(b) if b.verification == Verification::Verified => Ok(b.clone()),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    b.goto(&s.url(&format!("/backups/{}", done.id))).await;
    b.wait_for_contains("[data-testid=artifact-0]", "host files archive (tar)")
        .await;
    b.wait_for_contains(
        "[data-testid=artifact-counts-0]",
        "Contents of etc-app (2 files",
    )
    .await;
    b.close().await;
}
