//! Signed checkpoints of the audit chain's head, kept outside the database.
//!
//! The hash chain ([`super::verify`]) shows an edited or removed entry in
//! the middle, but not a removal of the newest entries, nor a chain edited
//! and then re-hashed by someone who can write the table (the database
//! owner can switch the triggers off). A checkpoint closes both: it records
//! the head (`seq`, `hash`) with an HMAC-SHA256 under a key the database
//! does not hold, in a file the database does not hold. The log is 16
//! chains (see [`super`]); a checkpoint signs every chain's head (chain,
//! link, hash). A checkpoint written before the chains (one `seq` and
//! `hash`) is still read, as chain 0's head.
//!
//! - **Key**: `OPSDECK_AUDIT_KEY` (at least 32 characters; read from the
//!   environment only, never from the TOML file or the database; empty is
//!   unset), else the
//!   file `audit-checkpoint.key` in the data directory, created by
//!   `opsdeck serve` on first use (32 random bytes, hex, mode 600).
//! - **Checkpoint**: `audit-checkpoint.json` in the data directory, replaced
//!   atomically (temporary file, fsync, rename, fsync of the directory), and
//!   the same line logged at info level (target `opsdeck::audit::checkpoint`)
//!   so a log shipper keeps a copy off the host.
//! - **When** (decided here): the `audit.checkpoint` task of `opsdeck serve`
//!   looks at the head every [`PERIOD`] and writes a checkpoint when it
//!   moved. Entries younger than that period are not yet covered. Before
//!   replacing a checkpoint the task checks that the chain still extends
//!   it (the entry at the old `seq` still has the old hash, and nothing
//!   was removed); when it does not, it keeps the old checkpoint and logs an
//!   error, so a tampered chain never becomes the new reference.
//! - **Verify** ([`verify`], `opsdeck audit verify`, `GET
//!   /api/v1/audit/verify`): the chain walk, then the checkpoint: a bad
//!   signature, a head older than the checkpoint (truncation), or a
//!   different hash at the checkpoint's entry (a forged, re-hashed chain)
//!   fail. No checkpoint file (a fresh install, or a server run without a
//!   data directory) is reported, not failed, unless the caller requires
//!   one (`opsdeck audit verify --require-checkpoint`).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use opsdeck_wire::AuditVerifyReport;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use sqlx::PgPool;

use super::{store, AuditError};
use crate::jobs::{Pace, Scope, Task};

/// How often `opsdeck serve` looks at the chain's head.
pub const PERIOD: Duration = Duration::from_secs(5);
/// The checkpoint's file name in the data directory.
pub const FILE: &str = "audit-checkpoint.json";
/// The key's file name in the data directory (when `OPSDECK_AUDIT_KEY` is unset).
pub const KEY_FILE: &str = "audit-checkpoint.key";
/// The environment variable holding the key (takes precedence over the file).
pub const KEY_ENV: &str = "OPSDECK_AUDIT_KEY";
const DOMAIN: &str = "opsdeck-audit-checkpoint-v2";
/// The signature's domain of a checkpoint written before the chains.
const DOMAIN_V1: &str = "opsdeck-audit-checkpoint-v1";

/// A chain's newest entry, as signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Head {
    pub chain: i16,
    pub link: i64,
    /// The entry's hash, hex.
    pub hash: String,
}

/// The signed heads of the chains, as stored in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Every chain's newest entry, by chain.
    #[serde(default)]
    pub heads: Vec<Head>,
    pub at: DateTime<Utc>,
    /// HMAC-SHA256 of the other fields under the checkpoint key, hex.
    pub mac: String,
    /// A checkpoint from before the chains: its head's `seq` (chain 0's
    /// link) and hash. Read, never written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

/// Where a checkpoint and its key live.
#[derive(Debug, Clone)]
pub struct Place {
    pub data_dir: PathBuf,
}

impl Place {
    pub fn new(data_dir: &Path) -> Place {
        Place {
            data_dir: data_dir.to_owned(),
        }
    }
    fn file(&self) -> PathBuf {
        self.data_dir.join(FILE)
    }
    fn key_file(&self) -> PathBuf {
        self.data_dir.join(KEY_FILE)
    }

    /// The key: the environment's, else the key file's; `create` makes the
    /// file when neither exists.
    pub fn key(&self, create: bool) -> anyhow::Result<Option<Vec<u8>>> {
        if let Some(k) = std::env::var(KEY_ENV).ok().filter(|k| !k.trim().is_empty()) {
            let k = k.trim();
            anyhow::ensure!(k.len() >= 32, "{KEY_ENV} must be at least 32 characters");
            return Ok(Some(k.as_bytes().to_vec()));
        }
        let path = self.key_file();
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = hex::decode(text.trim())
                    .map_err(|_| anyhow::anyhow!("{} is not a hex key", path.display()))?;
                anyhow::ensure!(key.len() >= 32, "{} holds a short key", path.display());
                Ok(Some(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
                let mut key = vec![0u8; 32];
                rand::rngs::OsRng.fill_bytes(&mut key);
                std::fs::create_dir_all(&self.data_dir)?;
                write_atomically(&path, hex::encode(&key).as_bytes())?;
                tracing::info!(path = %path.display(), "created the audit checkpoint key");
                Ok(Some(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }

    /// The stored checkpoint, if there is one.
    pub fn read(&self) -> anyhow::Result<Option<Checkpoint>> {
        match std::fs::read(self.file()) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!("{} is not a checkpoint: {e}", self.file().display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", self.file().display())),
        }
    }

    fn write(&self, cp: &Checkpoint) -> anyhow::Result<()> {
        let mut text = serde_json::to_vec(cp)?;
        text.push(b'\n');
        write_atomically(&self.file(), &text)
    }
}

/// Writes `path` so that a reader sees the old or the new content, never a
/// part: a temporary file (mode 600) in the same directory, fsync, rename,
/// fsync of the directory.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}

fn hmac(key: &[u8], text: &str) -> String {
    let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    m.update(text.as_bytes());
    hex::encode(m.finalize().into_bytes())
}

fn mac(key: &[u8], heads: &[Head], at: &DateTime<Utc>) -> String {
    let mut text = format!("{DOMAIN}\n{}\n", at.to_rfc3339());
    for h in heads {
        text.push_str(&format!("{}:{}:{}\n", h.chain, h.link, h.hash));
    }
    hmac(key, &text)
}

impl Checkpoint {
    fn sign(key: &[u8], heads: Vec<Head>) -> Checkpoint {
        let at = Utc::now();
        Checkpoint {
            mac: mac(key, &heads, &at),
            heads,
            at,
            seq: None,
            hash: None,
        }
    }

    /// The heads it signs (a checkpoint from before the chains: chain 0's).
    pub fn signed_heads(&self) -> Vec<Head> {
        match (&self.seq, &self.hash) {
            (Some(seq), Some(hash)) if self.heads.is_empty() => vec![Head {
                chain: 0,
                link: *seq,
                hash: hash.clone(),
            }],
            _ => self.heads.clone(),
        }
    }

    fn signature_ok(&self, key: &[u8]) -> bool {
        let expected = match (&self.seq, &self.hash) {
            (Some(seq), Some(hash)) if self.heads.is_empty() => hmac(
                key,
                &format!("{DOMAIN_V1}\n{seq}\n{hash}\n{}", self.at.to_rfc3339()),
            ),
            (None, None) => mac(key, &self.heads, &self.at),
            _ => return false,
        };
        // Digest comparison: the time taken tells nothing about the MAC.
        use sha2::Digest;
        Sha256::digest(expected.as_bytes()) == Sha256::digest(self.mac.as_bytes())
    }

    /// Heads as the file shows them: `chain:link`, comma-separated.
    fn summary(&self) -> String {
        self.signed_heads()
            .iter()
            .map(|h| format!("{}:{}", h.chain, h.link))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// How the chains stand against a checkpoint.
#[derive(Debug, PartialEq)]
pub enum Standing {
    /// Every chain still holds the checkpoint's head.
    Extends,
    /// A chain ends before the checkpoint's head of it.
    Truncated { chain: i16, head: i64, signed: i64 },
    /// A checkpoint's head has another hash: edited and re-hashed.
    Forged { chain: i16, link: i64 },
}

async fn standing(pool: &PgPool, cp: &Checkpoint) -> sqlx::Result<Standing> {
    let now: std::collections::HashMap<i16, i64> = store::heads(pool)
        .await?
        .into_iter()
        .map(|(chain, link, _)| (chain, link))
        .collect();
    for h in cp.signed_heads() {
        let head = now.get(&h.chain).copied().unwrap_or(0);
        if head < h.link {
            return Ok(Standing::Truncated {
                chain: h.chain,
                head,
                signed: h.link,
            });
        }
        match store::hash_at(pool, h.chain, h.link).await? {
            Some(hash) if hex::encode(&hash) == h.hash => {}
            _ => {
                return Ok(Standing::Forged {
                    chain: h.chain,
                    link: h.link,
                })
            }
        }
    }
    Ok(Standing::Extends)
}

/// One tick of the task: a new checkpoint when a head moved on from the
/// last checkpoint (and every chain still extends it).
pub async fn tick(pool: &PgPool, place: &Place) -> anyhow::Result<()> {
    let Some(key) = place.key(true)? else {
        return Ok(());
    };
    let heads: Vec<Head> = store::heads(pool)
        .await?
        .into_iter()
        .map(|(chain, link, hash)| Head {
            chain,
            link,
            hash: hex::encode(hash),
        })
        .collect();
    if heads.is_empty() {
        return Ok(());
    }
    let last = place.read()?;
    if let Some(last) = &last {
        if last.signed_heads() == heads {
            return Ok(());
        }
        if !last.signature_ok(&key) {
            tracing::error!(path = %place.file().display(),
                "the audit checkpoint's signature is wrong (file edited, or another key): it is kept as is; run `opsdeck audit verify`");
            return Ok(());
        }
        match standing(pool, last).await? {
            Standing::Extends => {}
            s => {
                tracing::error!(checkpoint = %last.summary(), standing = ?s,
                    "the audit chain no longer extends its last checkpoint: the checkpoint is kept; run `opsdeck audit verify`");
                return Ok(());
            }
        }
    }
    let cp = Checkpoint::sign(&key, heads);
    place.write(&cp)?;
    let heads = serde_json::to_string(&cp.heads)?;
    tracing::info!(heads = %heads, at = %cp.at.to_rfc3339(), mac = %cp.mac, "audit checkpoint");
    Ok(())
}

/// The `audit.checkpoint` task (every process: each keeps its own file in
/// its own data directory).
pub fn task(pool: PgPool, data_dir: &Path) -> Task {
    let place = Place::new(data_dir);
    Task::every(
        "audit.checkpoint",
        PERIOD,
        Scope::EveryProcess,
        (pool, place),
        |(pool, place)| async move {
            tick(&pool, &place).await?;
            Ok(Pace::Normal)
        },
    )
}

/// The chain walk ([`super::verify`]) and then the checkpoint in `place`.
/// `require`: a missing checkpoint fails instead of being reported.
pub async fn verify(
    pool: &PgPool,
    place: &Place,
    require: bool,
) -> Result<(AuditVerifyReport, Option<String>), AuditError> {
    let report = super::verify(pool).await?;
    if !report.ok {
        return Ok((report, None));
    }
    let fail = |problem: String| {
        Ok((
            AuditVerifyReport {
                ok: false,
                checked: report.checked,
                problem: Some(problem),
            },
            None,
        ))
    };
    let cp = match place.read() {
        Ok(cp) => cp,
        Err(e) => return fail(format!("the audit checkpoint cannot be read: {e:#}")),
    };
    let Some(cp) = cp else {
        let note = format!(
            "no audit checkpoint in {} (only the chain was checked)",
            place.data_dir.display()
        );
        if require {
            return fail(note);
        }
        return Ok((report, Some(note)));
    };
    let key = match place.key(false) {
        Ok(Some(k)) => k,
        Ok(None) => {
            return fail(format!(
            "the audit checkpoint cannot be checked: no key ({KEY_ENV} unset, no {KEY_FILE} in {})",
            place.data_dir.display()
        ))
        }
        Err(e) => return fail(format!("the audit checkpoint key cannot be read: {e:#}")),
    };
    if !cp.signature_ok(&key) {
        return fail(
            "the audit checkpoint's signature is wrong: the checkpoint file was edited or another key is in use"
                .into(),
        );
    }
    match standing(pool, &cp).await? {
        Standing::Extends => Ok((
            report,
            Some(format!(
                "checkpoint of {} matches (chain:link {})",
                cp.at.to_rfc3339(),
                cp.summary()
            )),
        )),
        Standing::Truncated {
            chain,
            head,
            signed,
        } => fail(format!(
            "the chain was truncated: chain {chain} ends at link {head}, but the signed checkpoint of {} covers link {signed} ({} newest entries removed)",
            cp.at.to_rfc3339(),
            signed - head
        )),
        Standing::Forged { chain, link } => fail(format!(
            "the chain was forged: link {link} of chain {chain} does not match the signed checkpoint of {} (entries were edited and the chain re-hashed)",
            cp.at.to_rfc3339()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(chain: i16, link: i64, hash: &str) -> Head {
        Head {
            chain,
            link,
            hash: hash.into(),
        }
    }

    #[test]
    fn signature_covers_every_field() {
        let key = [7u8; 32];
        let cp = Checkpoint::sign(&key, vec![head(0, 12, "010203"), head(5, 3, "0a")]);
        assert!(cp.signature_ok(&key));
        assert!(!cp.signature_ok(&[8u8; 32]));
        let with = |heads: Vec<Head>| Checkpoint {
            heads,
            ..cp.clone()
        };
        for edit in [
            with(vec![head(0, 13, "010203"), head(5, 3, "0a")]),
            with(vec![head(1, 12, "010203"), head(5, 3, "0a")]),
            with(vec![head(0, 12, "0102"), head(5, 3, "0a")]),
            with(vec![head(0, 12, "010203")]),
            Checkpoint {
                at: cp.at + chrono::TimeDelta::seconds(1),
                ..cp.clone()
            },
            Checkpoint {
                seq: Some(12),
                hash: Some("010203".into()),
                ..cp.clone()
            },
        ] {
            assert!(!edit.signature_ok(&key), "{edit:?}");
        }
    }

    #[test]
    fn a_checkpoint_from_before_the_chains_is_chain_0s_head() {
        let key = [7u8; 32];
        let at = Utc::now();
        let text = format!("{DOMAIN_V1}\n{}\n{}\n{}", 41, "beef", at.to_rfc3339());
        let old: Checkpoint = serde_json::from_value(serde_json::json!({
            "seq": 41, "hash": "beef", "at": at, "mac": hmac(&key, &text),
        }))
        .unwrap();
        assert!(old.signature_ok(&key));
        assert_eq!(old.signed_heads(), vec![head(0, 41, "beef")]);
        let moved = Checkpoint {
            seq: Some(42),
            ..old.clone()
        };
        assert!(!moved.signature_ok(&key));
    }

    #[test]
    fn files_are_replaced_whole_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let place = Place::new(dir.path());
        let key = place.key(true).unwrap().unwrap();
        assert_eq!(place.key(false).unwrap().unwrap(), key, "the key is kept");
        let mode = std::fs::metadata(dir.path().join(KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let cp = Checkpoint::sign(&key, vec![head(0, 1, "09")]);
        place.write(&cp).unwrap();
        let cp2 = Checkpoint::sign(&key, vec![head(0, 2, "0a"), head(3, 1, "0b")]);
        place.write(&cp2).unwrap();
        assert_eq!(place.read().unwrap().unwrap(), cp2);
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty());
    }
}
