//! Phases 1 and 4 of a restore: where it writes (resolved from the request),
//! the check of the stored object, and the restore proper per artifact kind.

use super::*;

/// Where a restore writes, resolved.
pub(super) enum Dest {
    Postgres {
        t: PgTarget,
        service: String,
        db: String,
        new: bool,
    },
    Mariadb {
        t: MyTarget,
        service: String,
        db: String,
        new: bool,
    },
    Volume {
        engine: String,
        volume: String,
        new: bool,
        exists: bool,
    },
    Files {
        path: String,
        new: bool,
        exists: bool,
    },
}

impl Dest {
    pub(super) fn what(&self) -> String {
        match self {
            Dest::Postgres { db, service, .. } | Dest::Mariadb { db, service, .. } => {
                format!("database {db} of {service}")
            }
            Dest::Volume { volume, engine, .. } => format!("volume {volume} on {engine}"),
            Dest::Files { path, .. } => path.clone(),
        }
    }

    pub(super) fn is_new(&self) -> bool {
        match self {
            Dest::Postgres { new, .. }
            | Dest::Mariadb { new, .. }
            | Dest::Volume { new, .. }
            | Dest::Files { new, .. } => *new,
        }
    }

    /// What to back up before overwriting: (label, kind, work, tool), or
    /// nothing for a new destination or one that does not exist.
    pub(super) async fn safety(
        &self,
        state: &AppState,
    ) -> Result<Option<(String, &'static str, Work, String)>, String> {
        Ok(match self {
            Dest::Postgres {
                t,
                service,
                db,
                new: false,
            } => Some((
                format!("postgres:{service}/{db}"),
                "pg_dump",
                Work::PgDump(t.clone(), db.clone()),
                postgres::tool_version().await,
            )),
            Dest::Mariadb {
                t,
                service,
                db,
                new: false,
            } => Some((
                format!("mariadb:{service}/{db}"),
                "mysqldump",
                Work::MyDump(t.clone(), db.clone()),
                mariadb::tool_version().await,
            )),
            Dest::Volume {
                engine,
                volume,
                new: false,
                exists: true,
            } => {
                let version = state
                    .engines
                    .by_name(engine)
                    .and_then(|c| c.status().version)
                    .unwrap_or_else(|| "version unknown".into());
                Some((
                    format!("volume:{engine}/{volume}"),
                    "volume_tar",
                    Work::Volume {
                        volume: volume.clone(),
                        engine: engine.clone(),
                    },
                    format!(
                        "Docker Engine {version} archive API, helper {}",
                        volumes::helper_image()
                    ),
                ))
            }
            Dest::Files {
                path,
                new: false,
                exists: true,
            } => Some((
                format!("files:{path}"),
                "files_tar",
                Work::Files { path: path.clone() },
                format!("tar (Opsdeck {})", env!("CARGO_PKG_VERSION")),
            )),
            _ => None,
        })
    }
}

/// The destination of a restore, checked: a new one must not exist, an
/// original database must (its dump restores into a database).
pub(super) async fn resolve(
    state: &AppState,
    src: &Source,
    into: &RestoreInto,
) -> Result<Dest, String> {
    let (name, new) = match into {
        RestoreInto::Original => (None, false),
        RestoreInto::New { name } => (Some(name.clone()), true),
    };
    let gone =
        |what: String| format!("{what} no longer exists: restore into a new database of that name");
    let taken = |what: String| {
        format!("{what} already exists: pick another name, or restore over the original")
    };
    Ok(match src {
        Source::Postgres { service, database } => {
            let t = postgres::lookup(state, service).await?;
            let db = name.unwrap_or_else(|| database.clone());
            let exists = postgres::database_exists(&t, &db).await?;
            let what = format!("database {db} on {}:{}", t.host, t.port);
            match (new, exists) {
                (true, true) => return Err(taken(what)),
                (false, false) => return Err(gone(what)),
                _ => {}
            }
            Dest::Postgres {
                t,
                service: service.clone(),
                db,
                new,
            }
        }
        Source::Mariadb { service, database } => {
            let t = mariadb::lookup(state, service).await?;
            let db = name.unwrap_or_else(|| database.clone());
            let exists = mariadb::database_exists(&t, &db).await?;
            let what = format!("database {db} of {service}");
            match (new, exists) {
                (true, true) => return Err(taken(what)),
                (false, false) => return Err(gone(what)),
                _ => {}
            }
            Dest::Mariadb {
                t,
                service: service.clone(),
                db,
                new,
            }
        }
        Source::Volume { engine, volume } => {
            let volume = name.unwrap_or_else(|| volume.clone());
            let exists = volumes::exists(state, Some(engine), &volume).await?;
            if new && exists {
                return Err(format!(
                    "volume {volume} already exists on {engine}: pick another name, or restore over the original"
                ));
            }
            Dest::Volume {
                engine: engine.clone(),
                volume,
                new,
                exists,
            }
        }
        Source::Files { path } => {
            let path = name.unwrap_or_else(|| path.clone());
            let p = files::check_path(&path).map_err(|e| format!("{path}: {e}"))?;
            let exists = tokio::fs::symlink_metadata(&p).await.is_ok();
            if new && exists {
                return Err(format!(
                    "{} already exists: pick another path, or restore over the original",
                    p.display()
                ));
            }
            Dest::Files {
                path: p.to_string_lossy().into_owned(),
                new,
                exists,
            }
        }
    })
}

/// Counts the bytes and hashes them as they are read.
pub(super) struct Hashing<R> {
    pub(super) inner: R,
    pub(super) hasher: Sha256,
    pub(super) bytes: u64,
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &r {
            let fresh = &buf.filled()[before..];
            self.bytes += fresh.len() as u64;
            let me = &mut *self;
            me.hasher.update(fresh);
        }
        r
    }
}

/// Phase 1: the stored object is read in full; its SHA-256 and size must
/// be the catalog's. An archive's entries are checked in the same read
/// (the rest of the object is read to its end for the checksum).
pub(super) async fn check(cx: &StepCx<'_>, store: &Store, a: &Art) -> Result<(), String> {
    cx.out.line(format!("1/5 check: reading {} back", a.key));
    let file = store
        .read(&a.key)
        .await
        .map_err(|e| format!("{}: cannot read {}: {e:#}", a.source, a.key))?;
    let archive = a.kind.ends_with("_tar");
    let (sum, n, entries) = if archive {
        // The checker reads through a hashing reader; what it leaves
        // (padding after the end marker) is read to the end afterwards.
        let (tx, rx) = tokio::sync::oneshot::channel::<Hashing<ObjectReader>>();
        let reader = TakeBack {
            inner: Some(Hashing {
                inner: file,
                hasher: Sha256::new(),
                bytes: 0,
            }),
            back: Some(tx),
        };
        let top = match a.kind.as_str() {
            "volume_tar" => Some(volumes::TOP),
            _ => None,
        };
        let checked = archive::check_object(Box::new(reader), top).await;
        let mut h = rx
            .await
            .map_err(|_| format!("{}: reading back: the reader was lost", a.source))?;
        tokio::io::copy(&mut h, &mut tokio::io::sink())
            .await
            .map_err(|e| format!("{}: reading back: {e}", a.source))?;
        let sum = hex::encode(h.hasher.finalize());
        (sum, h.bytes, Some(checked))
    } else {
        let (sum, n) = pipeline::checksum(file)
            .await
            .map_err(|e| format!("{}: reading back: {e:#}", a.source))?;
        (sum, n, None)
    };
    if a.sha256.as_deref() != Some(sum.as_str()) || n as i64 != a.bytes {
        return Err(format!(
            "{}: checksum mismatch (stored {n} bytes, sha256 {}; catalog {} bytes, sha256 {}): \
             the stored object is not what was backed up; nothing was touched",
            a.source,
            &sum[..16.min(sum.len())],
            a.bytes,
            a.sha256
                .as_deref()
                .map(|w| &w[..16.min(w.len())])
                .unwrap_or("none")
        ));
    }
    cx.out.line(format!(
        "1/5 check: sha256 and size match the catalog ({})",
        human_bytes(n)
    ));
    if let Some(checked) = entries {
        let (stats, _) = checked.map_err(|e| {
            format!(
                "{}: the archive is refused, nothing was touched: {e}",
                a.source
            )
        })?;
        cx.out.line(format!(
            "1/5 check: every entry of the archive is safe to write ({} files, {} directories, {} links)",
            stats.files,
            stats.dirs,
            stats.symlinks + stats.hardlinks
        ));
    }
    Ok(())
}

/// Hands its reader back when dropped (after the archive check is done
/// with it), so the rest can be read for the checksum.
pub(super) struct TakeBack<R> {
    pub(super) inner: Option<R>,
    pub(super) back: Option<tokio::sync::oneshot::Sender<R>>,
}

impl<R: AsyncRead + Unpin> AsyncRead for TakeBack<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        match self.inner.as_mut() {
            Some(r) => Pin::new(r).poll_read(cx, buf),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl<R> Drop for TakeBack<R> {
    fn drop(&mut self) {
        if let (Some(r), Some(tx)) = (self.inner.take(), self.back.take()) {
            let _ = tx.send(r);
        }
    }
}

/// Phase 4, per kind.
pub(super) async fn restore_into(
    cx: &StepCx<'_>,
    store: &Store,
    a: &Art,
    dest: &Dest,
) -> StepResult {
    let open = || store.read(&a.key);
    match dest {
        Dest::Postgres { t, db, new, .. } => {
            let scrub = |m: String| postgres::scrub(t, m);
            if *new {
                postgres::create_new_database(t, db).await?;
                cx.out.line(format!(
                    "4/5 created database {db}; pg_restore into it (one transaction)"
                ));
            } else {
                cx.out.line(format!(
                    "4/5 pg_restore --clean --if-exists over database {db} (one transaction)"
                ));
            }
            let cmd = if *new {
                postgres::restore_new_cmd(t, db)
            } else {
                postgres::restore_over_cmd(t, db)
            };
            let res = feed(open, cmd, &scrub).await;
            if let Err(e) = res {
                let mut msg = format!(
                    "{}: the restore into database {db} failed (one transaction: nothing of it was kept): {e}",
                    a.source
                );
                if *new {
                    if let Err(d) = postgres::drop_new_database(t, db).await {
                        msg.push_str(&format!("; removing the new database {db} failed too: {d}"));
                    }
                }
                return Err(scrub(msg));
            }
            let got = postgres::row_counts(t, db).await;
            Ok(json!({ "database": db, "new": new, "counts": counts(cx, &a.stats, got) }))
        }
        Dest::Mariadb { t, db, new, .. } => {
            let scrub = |m: String| mariadb::scrub(t, m);
            if *new {
                mariadb::create_database(t, db, true).await?;
                cx.out
                    .line(format!("4/5 created database {db}; mariadb < dump"));
            } else {
                cx.out.line(format!(
                    "4/5 mariadb < dump over database {db} (its tables are dropped and created again)"
                ));
            }
            if let Err(e) = feed(open, mariadb::restore_cmd(t, db), &scrub).await {
                let mut msg = format!("{}: the restore into database {db} failed: {e}", a.source);
                if *new {
                    if let Err(d) = mariadb::drop_database(t, db, true).await {
                        msg.push_str(&format!("; removing the new database {db} failed too: {d}"));
                    }
                } else {
                    msg.push_str(" (MariaDB restores are not one transaction: the database may be half restored; the safety backup holds what was there before)");
                }
                return Err(scrub(msg));
            }
            let got = mariadb::row_counts(t, db).await;
            Ok(json!({ "database": db, "new": new, "counts": counts(cx, &a.stats, got) }))
        }
        Dest::Volume {
            engine,
            volume,
            new,
            exists,
        } => {
            cx.out.line(format!(
                "4/5 {} volume {volume}, then writing the checked entries",
                if *exists { "emptying" } else { "creating" }
            ));
            match volumes::restore(cx.state, Some(engine), volume, open).await {
                Ok(stats) => {
                    let got = Ok(stats.to_map());
                    Ok(json!({ "volume": volume, "engine": engine, "new": new,
                               "counts": counts(cx, &a.stats, got) }))
                }
                Err(e) => {
                    let mut msg =
                        format!("{}: the restore into volume {volume} failed: {e}", a.source);
                    if !*exists {
                        if let Err(d) = volumes::remove(cx.state, Some(engine), volume).await {
                            msg.push_str(&format!("; removing the new volume failed too: {d}"));
                        }
                    } else {
                        msg.push_str(" (the volume may be half restored; the safety backup holds what was there before)");
                    }
                    Err(msg)
                }
            }
        }
        Dest::Files { path, new, .. } => {
            cx.out.line(format!(
                "4/5 extracting into a staging copy next to {path}, then swapping it into place"
            ));
            let stats = files::restore(path, open)
                .await
                .map_err(|e| format!("{}: the restore into {path} failed: {e}", a.source))?;
            Ok(json!({ "path": path, "new": new,
                       "counts": counts(cx, &a.stats, Ok(stats.to_map())) }))
        }
    }
}

/// Decompresses the object into a tool's stdin.
pub(super) async fn feed<F, Fut>(
    open: F,
    cmd: tokio::process::Command,
    scrub: &(dyn Fn(String) -> String + Sync),
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<ObjectReader>>,
{
    let file = open()
        .await
        .map_err(|e| format!("reading the backup: {e:#}"))?;
    pipeline::restore_into(file, cmd, scrub)
        .await
        .map_err(|e| format!("{e:#}"))
}

/// Compares what was restored with the figures taken at dump time
/// (information only: a line on the output and in the result).
pub(super) fn counts(
    cx: &StepCx<'_>,
    expected: &BTreeMap<String, i64>,
    got: Result<BTreeMap<String, i64>, String>,
) -> Value {
    match got {
        Ok(got) => {
            let differ: Vec<String> = expected
                .iter()
                .filter(|(k, n)| got.get(*k) != Some(*n))
                .map(|(k, n)| match got.get(k) {
                    Some(m) => format!("{k}: {m} now, {n} at dump time"),
                    None => format!("{k}: missing"),
                })
                .collect();
            if differ.is_empty() {
                cx.out.line(format!(
                    "4/5 restored: the {} figures taken at dump time match",
                    expected.len()
                ));
            } else {
                cx.out.line(format!(
                    "4/5 restored, but figures differ from those taken at dump time (taken a moment before the dump): {}",
                    differ.join("; ")
                ));
            }
            json!({ "checked": expected.len(), "differ": differ })
        }
        Err(e) => {
            cx.out.line(format!("4/5 restored; counting failed: {e}"));
            json!({ "error": e })
        }
    }
}
