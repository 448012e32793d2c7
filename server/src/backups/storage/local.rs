//! A local directory target: objects written to `<key>.partial`, synced and
//! renamed into place (see the parent module for the decisions).

use super::*;

/// A local directory target.
#[derive(Debug, Clone)]
pub struct LocalStore {
    pub root: PathBuf,
}

/// A local object being written (`<key>.partial`, renamed at `finish`).
pub struct LocalUpload {
    pub(super) file: Option<BufWriter<tokio::fs::File>>,
    pub(super) partial: PathBuf,
    pub(super) target: PathBuf,
    pub(super) key: String,
    /// Renamed into place or removed: nothing for `Drop` to clean.
    pub(super) done: bool,
}

impl LocalStore {
    /// Checks the path (absolute, no `..`) and creates the directory (0700)
    /// when missing.
    pub async fn open(path: &str) -> Result<LocalStore, String> {
        let raw = path.trim();
        if raw.is_empty() {
            return Err("path: must not be empty".into());
        }
        if raw.contains('\0') {
            return Err("path: must not contain NUL characters".into());
        }
        let p = Path::new(raw);
        if !p.is_absolute() {
            return Err("path: must be absolute".into());
        }
        if p.components().any(|c| matches!(c, Component::ParentDir)) {
            return Err("path: must not contain \"..\"".into());
        }
        let root: PathBuf = p.components().collect();
        match tokio::fs::metadata(&root).await {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(format!("path: {} is not a directory", root.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut b = tokio::fs::DirBuilder::new();
                b.recursive(true).mode(0o700);
                b.create(&root).await.map_err(|e| {
                    format!("path: cannot create {}: {}", root.display(), io_msg(&e))
                })?;
            }
            Err(e) => return Err(format!("path: {}: {}", root.display(), io_msg(&e))),
        }
        Ok(LocalStore { root })
    }

    /// Starts writing `key` (relative, `[A-Za-z0-9._/-]`, no `..`).
    pub async fn create(&self, key: &str) -> anyhow::Result<Upload> {
        let target = self.path_of(key)?;
        let partial = partial_of(&target);
        if let Some(parent) = target.parent() {
            let mut b = tokio::fs::DirBuilder::new();
            b.recursive(true).mode(0o700);
            b.create(parent)
                .await
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let file = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&partial)
            .await
            .with_context(|| format!("creating {}", partial.display()))?;
        Ok(Upload::Local(LocalUpload {
            file: Some(BufWriter::with_capacity(WRITE_BUF, file)),
            partial,
            target,
            key: key.to_string(),
            done: false,
        }))
    }

    /// Reads a stored object.
    pub async fn read(&self, key: &str) -> anyhow::Result<ObjectReader> {
        let path = self.path_of(key)?;
        let file = tokio::fs::File::open(&path).await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                anyhow!("object {key} not found in {}", self.root.display())
            } else {
                anyhow!("reading {}: {}", path.display(), io_msg(&e))
            }
        })?;
        Ok(Box::new(file))
    }

    /// Removes an object (and its partial file); absent is fine.
    pub async fn delete(&self, key: &str) -> anyhow::Result<()> {
        let path = self.path_of(key)?;
        for p in [partial_of(&path), path] {
            match tokio::fs::remove_file(&p).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => bail!("removing {}: {}", p.display(), io_msg(&e)),
            }
        }
        Ok(())
    }

    pub(super) fn path_of(&self, key: &str) -> anyhow::Result<PathBuf> {
        check_key(key).map_err(|e| anyhow!(e))?;
        Ok(self.root.join(key))
    }
}

impl LocalUpload {
    pub(super) async fn write(&mut self, buf: &[u8]) -> anyhow::Result<()> {
        let Some(f) = self.file.as_mut() else {
            bail!("object {}: write after the upload ended", self.key);
        };
        f.write_all(buf)
            .await
            .map_err(|e| anyhow!("writing {}: {}", self.partial.display(), io_msg(&e)))
    }

    /// Syncs and renames into place.
    pub(super) async fn finish(mut self) -> anyhow::Result<()> {
        // Any error below leaves `done` false: `Drop` removes the partial.
        let Some(mut f) = self.file.take() else {
            bail!("object {}: the upload already ended", self.key);
        };
        let what = || format!("writing {}", self.partial.display());
        f.flush().await.with_context(what)?;
        let file = f.into_inner();
        file.sync_all().await.with_context(what)?;
        drop(file);
        tokio::fs::rename(&self.partial, &self.target)
            .await
            .with_context(|| format!("renaming {} into place", self.partial.display()))?;
        self.done = true;
        if let Some(dir) = self.target.parent() {
            let synced = async { tokio::fs::File::open(dir).await?.sync_all().await }.await;
            if let Err(e) = synced {
                // Not durable: no object rather than one that may vanish.
                let _ = tokio::fs::remove_file(&self.target).await;
                bail!("syncing {}: {}", dir.display(), io_msg(&e));
            }
        }
        Ok(())
    }

    /// Removes the partial file.
    pub(super) async fn abort(mut self) {
        self.file.take();
        let _ = tokio::fs::remove_file(&self.partial).await;
        self.done = true;
    }
}

impl Drop for LocalUpload {
    fn drop(&mut self) {
        if !self.done {
            self.file.take();
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}
