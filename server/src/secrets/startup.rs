//! Loading the key and checking it against the database at start.
//!
//! The key: `OPSDECK_SECRET_KEY` (base64 of 32 bytes) wins; otherwise the
//! key file `<data dir>/secret.key`. Then, under a table lock (replicas
//! starting together):
//! - the database already holds sealed secrets (`secrets_state` has its
//!   row): without a key, or with a key that does not open the stored key
//!   check, the start is **refused** with a message that says which key the
//!   database wants. Nothing is read or written.
//! - it does not yet (a new install, or the first start after the upgrade
//!   that introduced sealing): without a key, a key file is created (mode
//!   600, never overwritten); then every plaintext secret is sealed and the
//!   state row written **in one transaction** (decision: sealing at start
//!   rather than in the SQL migration, because the database must never see
//!   the key; a crash before the commit leaves everything plaintext and the
//!   next start does it again).
//!
//! A rotation that committed but was stopped before it renamed its key
//! files (see [`super::rotate`]) is finished here: `secret.key.new` opens
//! the check, so it becomes `secret.key` (the old one is kept as
//! `secret.key.<old id>.bak`).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use sqlx::PgPool;

use super::{store, Field, Key};
use crate::config::Settings;

/// The text sealed into `secrets_state.key_check`.
pub(super) const CHECK_TEXT: &[u8] = b"opsdeck secrets key check";
/// The row of the key check in its associated data.
pub(super) const CHECK_ROW: &str = "secrets_state";

/// The key file in the data directory.
pub fn key_file(settings: &Settings) -> PathBuf {
    settings.data_dir.join("secret.key")
}

/// Where a key came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    Env,
    File(PathBuf),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Env => f.write_str("OPSDECK_SECRET_KEY"),
            Source::File(p) => write!(f, "key file {}", p.display()),
        }
    }
}

/// The configured key, if any (variable, else an existing key file).
pub fn load_key(settings: &Settings) -> anyhow::Result<Option<(Key, Source)>> {
    if let Some(text) = &settings.secret_key {
        let key = Key::parse(text.expose())
            .map_err(|e| anyhow!("OPSDECK_SECRET_KEY is not a key ({e}): base64 of 32 bytes, e.g. `openssl rand -base64 32`"))?;
        return Ok(Some((key, Source::Env)));
    }
    let path = key_file(settings);
    read_key_file(&path).map(|k| k.map(|k| (k, Source::File(path))))
}

fn read_key_file(path: &Path) -> anyhow::Result<Option<Key>> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            warn_if_open(path);
            Key::parse(&text)
                .map(Some)
                .map_err(|e| anyhow!("the key file {} is not a key ({e})", path.display()))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading the key file {}", path.display())),
    }
}

#[cfg(unix)]
fn warn_if_open(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(path) {
        if m.permissions().mode() & 0o077 != 0 {
            tracing::warn!(file = %path.display(), "the secrets key file is readable by others than its owner: chmod 600 it");
        }
    }
}

#[cfg(not(unix))]
fn warn_if_open(_: &Path) {}

/// Writes a new key file (mode 600); refuses to overwrite one.
pub fn write_key_file(path: &Path, key: &Key) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("creating the data directory {}", dir.display()))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .with_context(|| format!("creating the key file {}", path.display()))?;
    file.write_all(format!("{}\n", key.encode()).as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Does `key` open the database's key check?
pub(super) fn opens_check(key: &Key, check: &str) -> bool {
    key.open(Field::ServerKey, CHECK_ROW, check)
        .is_ok_and(|t| t == CHECK_TEXT)
}

/// Loads the key, refuses a missing or wrong one, seals plaintext secrets
/// on the first start, and installs the key in the process. Returns it.
pub async fn start(pool: &PgPool, settings: &Settings) -> anyhow::Result<Key> {
    let mut tx = pool.begin().await?;
    store::lock(&mut tx).await?;
    let state = store::state(&mut tx).await?;
    let loaded = load_key(settings)?;
    let key = match (state, loaded) {
        (Some((want, _)), None) => bail!(
            "the database holds secrets sealed with key {want}, but no key was given: set \
             OPSDECK_SECRET_KEY or restore the key file {} (see docs/security/secrets.md). \
             Refusing to start.",
            key_file(settings).display()
        ),
        (Some((want, check)), Some((key, source))) => {
            if opens_check(&key, &check) {
                key
            } else if let Some(key) = finish_rotation(settings, &source, &check)? {
                key
            } else {
                bail!(
                    "the secrets key from {source} (id {}) is not the key the database's secrets \
                     are sealed with (id {want}): give the right OPSDECK_SECRET_KEY or key file \
                     {} (see docs/security/secrets.md). Refusing to start.",
                    key.id(),
                    key_file(settings).display()
                )
            }
        }
        (None, loaded) => {
            let key = match loaded {
                Some((key, _)) => key,
                None => {
                    let key = Key::generate();
                    let path = key_file(settings);
                    write_key_file(&path, &key)?;
                    tracing::warn!(file = %path.display(), key_id = key.id(),
                        "created the secrets key file: back it up, secrets cannot be read without it");
                    key
                }
            };
            let sealing = key.clone();
            let n = store::walk(&mut tx, true, &mut |field, row, value| {
                Ok(sealing.seal(field, row, value))
            })
            .await?;
            let check = key.seal(Field::ServerKey, CHECK_ROW, CHECK_TEXT);
            store::insert_state(&mut tx, key.id(), &check).await?;
            if n > 0 {
                tracing::info!(values = n, key_id = key.id(), "sealed the stored secrets");
            }
            key
        }
    };
    tx.commit().await?;
    super::install(key.clone()).map_err(|e| anyhow!(e))?;
    Ok(key)
}

/// A rotation committed but stopped before renaming its files: the new
/// key is in `secret.key.new` and opens the check. Finishes the renames.
fn finish_rotation(
    settings: &Settings,
    source: &Source,
    check: &str,
) -> anyhow::Result<Option<Key>> {
    let Source::File(path) = source else {
        return Ok(None);
    };
    let new_path = super::rotate::new_key_file(settings);
    let Some(new) = read_key_file(&new_path)? else {
        return Ok(None);
    };
    if !opens_check(&new, check) {
        return Ok(None);
    }
    let old = read_key_file(path)?;
    super::rotate::swap_key_files(settings, old.as_ref())?;
    tracing::warn!(
        key_id = new.id(),
        "finished an interrupted secrets key rotation"
    );
    Ok(Some(new))
}
