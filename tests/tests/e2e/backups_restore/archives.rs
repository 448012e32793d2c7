//! Archives: a directory and a volume restored over the original (unsafe
//! archives refused), a MariaDB database restored with a safety backup.

use super::*;

/// Paths below `root` with type, mode, size and content digest, or link
/// target.
fn tree(root: &std::path::Path) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    fn walk(dir: &std::path::Path, root: &std::path::Path, out: &mut Vec<String>) {
        let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            let m = std::fs::symlink_metadata(&p).unwrap();
            if m.file_type().is_symlink() {
                out.push(format!(
                    "{rel} -> {}",
                    std::fs::read_link(&p).unwrap().display()
                ));
            } else if m.is_dir() {
                out.push(format!("{rel}/ {:o}", m.permissions().mode() & 0o7777));
                walk(&p, root, out);
            } else {
                let data = std::fs::read(&p).unwrap();
                out.push(format!(
                    "{rel} {:o} {} {}",
                    m.permissions().mode() & 0o7777,
                    data.len(),
                    &opsdeck_e2e::fixtures::sha256_hex(&data)[..16]
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out
}

/// A ustar archive written by hand (names as given, even `..`), zstd'd by
/// the CLI.
async fn raw_tar_zst(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut tar = Vec::new();
    for (name, data) in entries {
        let mut h = [0u8; 512];
        h[..name.len()].copy_from_slice(name.as_bytes());
        h[100..107].copy_from_slice(b"0000644");
        h[108..115].copy_from_slice(b"0000000");
        h[116..123].copy_from_slice(b"0000000");
        h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
        h[136..147].copy_from_slice(b"00000000000");
        h[156] = if name.ends_with('/') { b'5' } else { b'0' };
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|b| u32::from(*b)).sum();
        h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
        tar.extend_from_slice(&h);
        tar.extend_from_slice(data);
        tar.resize(tar.len().div_ceil(512) * 512, 0);
    }
    tar.resize(tar.len() + 1024, 0);
    let mut c = tokio::process::Command::new("zstd");
    c.args(["-q", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = c.spawn().expect("zstd");
    let mut stdin = child.stdin.take().unwrap();
    tokio::io::AsyncWriteExt::write_all(&mut stdin, &tar)
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    assert!(out.status.success());
    out.stdout
}

/// A host directory: restored over the original (its changed state kept
/// in a `files_tar` safety backup, itself restored into a new path and
/// compared); an archive with a `..` entry whose checksum matches the
/// catalog is refused before anything is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_restores_over_the_original_and_an_unsafe_archive_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_400).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("app-config");
    std::fs::create_dir_all(dir.join("sites")).unwrap();
    std::fs::write(dir.join("main.conf"), b"workers 4;\n").unwrap();
    std::fs::set_permissions(
        dir.join("main.conf"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(dir.join("sites/a.conf"), vec![b'a'; 100_000]).unwrap();
    std::os::unix::fs::symlink("../main.conf", dir.join("sites/main-link")).unwrap();
    let before = tree(&dir);
    let store = tmp.path().join("store");
    create_target(&admin, "local", &store).await;
    let plan = create_plan(
        &admin,
        json!({"name": "config", "target": "local", "verify": false,
               "sources": [{"kind": "files", "path": dir.display().to_string()}]}),
    )
    .await;
    let r = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let b = backups(&operator, "").await[0].clone();
    let a = detail(&operator, b.id).await.artifacts[0].clone();
    assert_eq!(a.kind, "files_tar");

    std::fs::write(dir.join("main.conf"), b"workers 99;\n").unwrap();
    std::fs::remove_file(dir.join("sites/a.conf")).unwrap();
    std::fs::write(dir.join("new.conf"), b"later").unwrap();
    let changed = tree(&dir);

    let t0 = std::time::Instant::now();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 0, "into": "original"}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{text}");
    eprintln!("directory restore: {:?}", t0.elapsed());
    assert!(
        text.contains("every entry of the archive is safe to write"),
        "{text}"
    );
    assert!(text.contains("2/5 safety backup #"), "{text}");
    assert_eq!(tree(&dir), before, "the backup's tree, nothing more");
    let safety = backups(&operator, "")
        .await
        .into_iter()
        .find(|x| x.trigger == "safety")
        .expect("a safety backup");
    let copy = tmp.path().join("app-config-before");
    let r = restore_approved(
        &operator,
        &second,
        safety.id,
        json!({"artifact": 0, "into": {"new": {"name": copy.display().to_string()}}}),
    )
    .await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    assert_eq!(
        tree(&copy),
        changed,
        "the safety backup holds the state before"
    );

    // An unsafe archive with the catalog's checksum: refused, nothing written.
    let evil = raw_tar_zst(&[
        ("app-config/", b""),
        ("app-config/ok.conf", b"fine"),
        ("app-config/../../escaped.conf", b"owned"),
    ])
    .await;
    std::fs::write(store.join(&a.object_key), &evil).unwrap();
    sqlx::query(
        "UPDATE backup_artifacts SET sha256 = $1, bytes = $2 WHERE backup_id = $3 AND idx = 0",
    )
    .bind(opsdeck_e2e::fixtures::sha256_hex(&evil))
    .bind(evil.len() as i64)
    .bind(b.id)
    .execute(&s.pool)
    .await
    .unwrap();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 0, "into": "original"}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Failed, "{text}");
    assert!(text.contains("1/5 check: sha256 and size match"), "{text}");
    assert!(
        text.contains("the archive is refused, nothing was touched"),
        "{text}"
    );
    assert_eq!(tree(&dir), before, "untouched");
    assert!(!tmp.path().join("escaped.conf").exists());
    assert!(!tmp.path().parent().unwrap().join("escaped.conf").exists());
    assert_eq!(
        backups(&operator, "").await.len(),
        2,
        "no second safety backup"
    );
}

/// A Docker volume on the private engine: restored over the original
/// (emptied, then the backup's entries), its changed state kept in a
/// `volume_tar` safety backup.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_restores_over_the_original_with_a_safety_backup() {
    let Some(engine) = engine().await else { return };
    let build = engine.clone();
    tokio::task::spawn_blocking(move || build.build_busybox_image("busybox:latest"))
        .await
        .unwrap()
        .expect("building busybox:latest");
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_500).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "local", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the engine");
    poll(Duration::from_secs(60), "engine connected", async || {
        let list: Vec<opsdeck_wire::Engine> = admin.json("/api/v1/engines").await;
        match list.iter().find(|e| e.name == "local") {
            Some(e) if e.state == opsdeck_wire::EngineState::Connected => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    let docker = |args: Vec<String>| {
        let mut c = engine.cli();
        c.args(&args);
        async move {
            let out = tokio::task::spawn_blocking(move || c.output())
                .await
                .unwrap()
                .expect("docker");
            assert!(
                out.status.success(),
                "docker {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        }
    };
    let in_volume = |vol: String, script: &str| {
        docker(
            [
                "run",
                "--rm",
                "--network",
                "none",
                "-v",
                &format!("{vol}:/d"),
                "busybox:latest",
                "sh",
                "-c",
                script,
            ]
            .map(String::from)
            .to_vec(),
        )
    };
    let manifest = "cd /d && find . | sort | while IFS= read -r f; do \
        if [ -L \"$f\" ]; then echo \"$f link $(readlink \"$f\")\"; \
        elif [ -d \"$f\" ]; then echo \"$f dir $(stat -c '%a %u:%g' \"$f\")\"; \
        else echo \"$f file $(stat -c '%a %u:%g %s' \"$f\") $(md5sum < \"$f\" | cut -c1-32)\"; fi; done";
    let vol = unique("restore_vol");
    docker(vec!["volume".into(), "create".into(), vol.clone()]).await;
    in_volume(
        vol.clone(),
        "set -e; cd /d; mkdir -p data/sub; printf 'v1\\n' > data/a.txt; chmod 640 data/a.txt; \
         chown 1234:5678 data/a.txt; head -c 300000 /dev/urandom > data/sub/blob; ln -s a.txt data/alias",
    )
    .await;
    let before = in_volume(vol.clone(), manifest).await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let plan = create_plan(
        &admin,
        json!({"name": "vol", "target": "local", "verify": false,
               "sources": [{"kind": "volume", "volume": vol}]}),
    )
    .await;
    let r = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let b = backups(&operator, "").await[0].clone();

    in_volume(
        vol.clone(),
        "set -e; cd /d; printf 'v2\\n' > data/a.txt; rm data/sub/blob; echo later > data/new.txt",
    )
    .await;
    let changed = in_volume(vol.clone(), manifest).await;
    assert_ne!(changed, before);
    let t0 = std::time::Instant::now();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 0, "into": "original"}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{text}");
    eprintln!("volume restore: {:?}", t0.elapsed());
    assert!(
        text.contains("every entry of the archive is safe to write"),
        "{text}"
    );
    assert!(text.contains(&format!("emptying volume {vol}")), "{text}");
    assert_eq!(in_volume(vol.clone(), manifest).await, before);
    let safety = backups(&operator, "")
        .await
        .into_iter()
        .find(|x| x.trigger == "safety")
        .expect("a safety backup");
    let sd = detail(&operator, safety.id).await;
    assert_eq!(sd.artifacts[0].kind, "volume_tar");
    assert_eq!(
        sd.artifacts[0].stats.get("files"),
        Some(&2),
        "{:?}",
        sd.artifacts[0].stats
    );

    docker(vec!["volume".into(), "rm".into(), vol.clone()]).await;
    drop(s);
    release(engine).await;
}

/// A MariaDB database on the harness's server: restored over the original
/// (a `mysqldump` safety backup first), and the safety backup restored
/// into a new database holds the changed rows; the password appears
/// nowhere in the runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mariadb_database_restores_over_the_original_with_a_safety_backup() {
    use opsdeck_e2e::mariadb::MariaDb;
    let Ok(maria) = tokio::task::spawn_blocking(MariaDb::shared).await.unwrap() else {
        return;
    };
    let s = TestServer::start().await;
    backup_ids_from(&s.pool, 8_600).await;
    let admin = s.user(Role::Admin).await;
    let operator = s.user(Role::Operator).await;
    s.create_user("second", Role::Operator).await;
    let second = s.login("second").await;
    let db = unique("rs_shop");
    let copy = format!("{db}_before");
    let (user, password) = ("opsdeck_rs", "rs-pass-8c1d-secret");
    let sql = move |q: String| tokio::task::spawn_blocking(move || maria.sql_as_root(&q));
    sql(format!(
        "CREATE USER IF NOT EXISTS '{user}'@'127.0.0.1' IDENTIFIED BY '{password}';
         GRANT ALL PRIVILEGES ON *.* TO '{user}'@'127.0.0.1';
         CREATE DATABASE `{db}` CHARACTER SET utf8mb4;
         CREATE TABLE `{db}`.orders (id INT PRIMARY KEY, note VARCHAR(100) NOT NULL);
         USE `{db}`;
         INSERT INTO orders SELECT seq, CONCAT('order ', seq, ' «ü»') FROM seq_1_to_500;"
    ))
    .await
    .unwrap()
    .unwrap();
    let digest = |d: String| {
        sql(format!(
            "SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT(id, ':', note))), 0) FROM `{d}`.orders"
        ))
    };
    let before = digest(db.clone()).await.unwrap().unwrap();
    let svc: opsdeck_wire::Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "shop", "tier": "critical", "requires": []}),
            )
            .await,
        "service",
    )
    .await;
    ok_json::<Check>(
        admin
            .post(
                "/api/v1/checks",
                &json!({"name": "shop-db", "service_id": svc.id, "interval_s": 86_400,
                        "timeout_ms": 5000, "password": password,
                        "spec": {"kind": "mysql",
                                 "url": format!("mysql://{user}@127.0.0.1:{}/", maria.port())}}),
            )
            .await,
        "check",
    )
    .await;
    let tmp = tempfile::tempdir().unwrap();
    create_target(&admin, "local", &tmp.path().join("store")).await;
    let plan = create_plan(
        &admin,
        json!({"name": "shop", "target": "local", "verify": false,
               "sources": [{"kind": "mariadb", "service": "shop", "databases": [db]}]}),
    )
    .await;
    let r = finished(&operator, run_plan(&operator, plan.id).await).await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    let b = backups(&operator, "").await[0].clone();
    assert_eq!(detail(&operator, b.id).await.artifacts[0].kind, "mysqldump");

    sql(format!(
        "UPDATE `{db}`.orders SET note = 'changed' WHERE id <= 50;
         DELETE FROM `{db}`.orders WHERE id > 450;
         CREATE TABLE `{db}`.after_backup (x INT); INSERT INTO `{db}`.after_backup VALUES (1);"
    ))
    .await
    .unwrap()
    .unwrap();
    let changed = digest(db.clone()).await.unwrap().unwrap();
    assert_ne!(changed, before);

    let t0 = std::time::Instant::now();
    let r = restore_approved(
        &operator,
        &second,
        b.id,
        json!({"artifact": 0, "into": "original"}),
    )
    .await;
    let text = run_text(&r);
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{text}");
    eprintln!("mariadb restore: {:?}", t0.elapsed());
    assert!(!text.contains(password), "{text}");
    assert!(
        text.contains("4/5 restored: the 1 figures taken at dump time match"),
        "{text}"
    );
    assert_eq!(digest(db.clone()).await.unwrap().unwrap(), before);
    let kept = sql(format!("SELECT COUNT(*) FROM `{db}`.after_backup"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(kept.trim(), "1", "a table the dump does not know stays");

    let safety = backups(&operator, "")
        .await
        .into_iter()
        .find(|x| x.trigger == "safety")
        .expect("a safety backup");
    let r = restore_approved(
        &operator,
        &second,
        safety.id,
        json!({"artifact": 0, "into": {"new": {"name": copy}}}),
    )
    .await;
    assert_eq!(r.summary.status, RunStatus::Succeeded, "{}", run_text(&r));
    assert_eq!(digest(copy.clone()).await.unwrap().unwrap(), changed);
    let audit_text = serde_json::to_string(&audit(&admin, "backup.restored").await).unwrap();
    assert!(!audit_text.contains(password));

    // Tidying the shared server, not awaited: the names are this test's own
    // (`unique`), so a database left behind disturbs no other test, and the
    // server goes with the test process. Twice a fresh-clone run failed here,
    // after every assertion above had passed, with the panic at this await
    // (its message was not in the kept log); the drop now runs on its own
    // blocking thread and reports a refusal on stderr.
    let _detached = tokio::task::spawn_blocking(move || {
        let q = format!("DROP DATABASE `{db}`; DROP DATABASE `{copy}`;");
        if let Err(e) = maria.sql_as_root(&q) {
            eprintln!("dropping {db} and {copy} on the shared MariaDB: {e:#}");
        }
    });
}
