//! Third-party secrets at rest: sealed with an AEAD under a key kept
//! outside the database.
//!
//! What is sealed (every column is listed in [`Field`]): database check
//! passwords (`checks.secret`, also used by backups, restores and database
//! steps), the heartbeat token's display copy (`checks.heartbeat_token`;
//! pings are looked up by `checks.heartbeat_token_hash`, SHA-256 of the
//! token, so the ping path never decrypts), notification channel secrets
//! (`channels.secret`: webhook HMAC key, SMTP password, gateway token), S3
//! secret access keys (`backup_targets.secret`) and the ack-link HMAC key
//! (`server_keys.sealed`).
//!
//! **Cipher.** XChaCha20-Poly1305 (RustCrypto `chacha20poly1305`): its
//! 192-bit nonce is safe to draw at random for every seal (no counter to
//! keep across replicas and restarts, which AES-GCM's 96-bit nonce would
//! want), and it is constant-time in software on hosts without AES-NI.
//!
//! **Format** (text, fits the existing `text` columns):
//! `v1:<key id>:<nonce, base64url>:<ciphertext+tag, base64url>`. The key id
//! is the first 8 hex digits of SHA-256 of the key: it names the key
//! without revealing it. The associated data is
//! `opsdeck:v1:<table>.<column>:<row>`, so a ciphertext copied to another
//! row or column does not open.
//!
//! **The key** comes from `OPSDECK_SECRET_KEY` (base64 of 32 bytes) or the
//! key file `<OPSDECK_DATA_DIR>/secret.key` (the same base64 text, mode
//! 600), created on first start when the database holds no ciphertext yet.
//! See [`startup`] for the start-up rules and [`rotate`] for rotation.
//!
//! **Why a process-wide keyring** rather than a field of `AppState`: the
//! secrets are opened deep inside the probe loop, the outbox sender, step
//! kinds and storage back-ends, and a process has exactly one key. It is
//! installed once by [`startup::start`] (every in-process server of a test
//! binary uses the same key); opening before that is an error, never a
//! silent plaintext fallback.

pub mod rotate;
pub mod startup;
pub mod store;

use std::fmt;
use std::sync::OnceLock;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD as B64};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// A column that holds sealed values; part of the associated data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `checks.secret`: a database check's password.
    CheckPassword,
    /// `checks.heartbeat_token`: the token, kept only to show the URL again.
    HeartbeatToken,
    /// `channels.secret`.
    ChannelSecret,
    /// `backup_targets.secret`: an S3 secret access key.
    TargetSecret,
    /// `server_keys.sealed` (row = the key's name).
    ServerKey,
}

impl Field {
    pub fn column(self) -> &'static str {
        match self {
            Field::CheckPassword => "checks.secret",
            Field::HeartbeatToken => "checks.heartbeat_token",
            Field::ChannelSecret => "channels.secret",
            Field::TargetSecret => "backup_targets.secret",
            Field::ServerKey => "server_keys.sealed",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("no secrets key is loaded in this process")]
    NoKey,
    #[error("stored secret in {0} is not in the sealed format")]
    Format(&'static str),
    #[error(
        "stored secret in {column} was sealed with key {key_id}, which this process does not have"
    )]
    UnknownKey {
        column: &'static str,
        key_id: String,
    },
    #[error(
        "stored secret in {0} does not open with the key (wrong key, or moved from another row)"
    )]
    Open(&'static str),
}

/// One 32-byte key.
#[derive(Clone)]
pub struct Key {
    id: String,
    bytes: [u8; 32],
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({})", self.id)
    }
}

impl Key {
    pub fn from_bytes(bytes: [u8; 32]) -> Key {
        let digest = Sha256::digest(bytes);
        let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
        Key { id, bytes }
    }

    /// A fresh random key.
    pub fn generate() -> Key {
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        Key::from_bytes(bytes)
    }

    /// Parses the base64 text of `OPSDECK_SECRET_KEY` or the key file.
    pub fn parse(text: &str) -> Result<Key, String> {
        let raw = STANDARD
            .decode(text.trim())
            .or_else(|_| B64.decode(text.trim().trim_end_matches('=')))
            .map_err(|_| "not base64".to_owned())?;
        let bytes: [u8; 32] = raw
            .try_into()
            .map_err(|v: Vec<u8>| format!("{} bytes, need 32", v.len()))?;
        Ok(Key::from_bytes(bytes))
    }

    /// The base64 text (what the key file and the variable hold).
    pub fn encode(&self) -> String {
        STANDARD.encode(self.bytes)
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new((&self.bytes).into())
    }

    /// Seals `plaintext` for `field` of `row`.
    pub fn seal(&self, field: Field, row: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(field, row);
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .expect("XChaCha20-Poly1305 seals any length we store");
        format!("v1:{}:{}:{}", self.id, B64.encode(nonce), B64.encode(ct))
    }

    /// Opens a value sealed by [`Key::seal`] with this key.
    pub fn open(&self, field: Field, row: &str, sealed: &str) -> Result<Vec<u8>, SecretsError> {
        let (key_id, nonce, ct) = split(field, sealed)?;
        if key_id != self.id {
            return Err(SecretsError::UnknownKey {
                column: field.column(),
                key_id: key_id.to_owned(),
            });
        }
        let aad = aad(field, row);
        self.cipher()
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ct,
                    aad: &aad,
                },
            )
            .map_err(|_| SecretsError::Open(field.column()))
    }
}

fn aad(field: Field, row: &str) -> Vec<u8> {
    format!("opsdeck:v1:{}:{row}", field.column()).into_bytes()
}

/// Is `value` in the sealed format (any key)?
pub fn is_sealed(value: &str) -> bool {
    split(Field::CheckPassword, value).is_ok()
}

/// The key id a sealed value names.
pub fn key_id_of(value: &str) -> Option<&str> {
    let mut parts = value.splitn(4, ':');
    (parts.next() == Some("v1")).then(|| parts.next()).flatten()
}

fn split(field: Field, sealed: &str) -> Result<(&str, Vec<u8>, Vec<u8>), SecretsError> {
    let bad = || SecretsError::Format(field.column());
    let mut parts = sealed.splitn(4, ':');
    if parts.next() != Some("v1") {
        return Err(bad());
    }
    let key_id = parts.next().ok_or_else(bad)?;
    let nonce = B64
        .decode(parts.next().ok_or_else(bad)?)
        .map_err(|_| bad())?;
    let ct = B64
        .decode(parts.next().ok_or_else(bad)?)
        .map_err(|_| bad())?;
    if key_id.len() != 8 || nonce.len() != 24 || ct.len() < 16 {
        return Err(bad());
    }
    Ok((key_id, nonce, ct))
}

static KEY: OnceLock<Key> = OnceLock::new();

/// Installs the process's key; a second call must bring the same key.
pub fn install(key: Key) -> Result<(), String> {
    let installed = KEY.get_or_init(|| key.clone());
    if installed.id != key.id {
        return Err(format!(
            "this process already uses secrets key {}, not {}",
            installed.id, key.id
        ));
    }
    Ok(())
}

/// The process's key, once installed.
pub fn key() -> Result<&'static Key, SecretsError> {
    KEY.get().ok_or(SecretsError::NoKey)
}

/// Seals `plaintext` for `field` of `row` with the process's key.
pub fn seal(field: Field, row: impl fmt::Display, plaintext: &str) -> Result<String, SecretsError> {
    Ok(key()?.seal(field, &row.to_string(), plaintext.as_bytes()))
}

/// Opens a stored value of `field` of `row`; call only where it is used.
pub fn open(field: Field, row: impl fmt::Display, sealed: &str) -> Result<String, SecretsError> {
    let bytes = key()?.open(field, &row.to_string(), sealed)?;
    String::from_utf8(bytes).map_err(|_| SecretsError::Open(field.column()))
}

/// Opens an optional stored value.
pub fn open_opt(
    field: Field,
    row: impl fmt::Display,
    sealed: Option<&str>,
) -> Result<Option<String>, SecretsError> {
    sealed.map(|s| open(field, &row, s)).transpose()
}

/// A sealing failure inside a store function (no key installed: a bug)
/// as the database error those functions return.
pub fn as_sqlx(e: SecretsError) -> sqlx::Error {
    sqlx::Error::Encode(Box::new(e))
}

/// SHA-256 of a high-entropy token (heartbeat): what the database stores
/// and looks pings up by. A salt or a slow hash adds nothing for 32 random
/// bytes.
pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_open_only_for_their_row_and_key() {
        let k = Key::generate();
        let s = k.seal(Field::CheckPassword, "7", b"hunter2");
        assert!(is_sealed(&s));
        assert!(!s.contains("hunter2"));
        assert_eq!(k.open(Field::CheckPassword, "7", &s).unwrap(), b"hunter2");
        assert!(matches!(
            k.open(Field::CheckPassword, "8", &s),
            Err(SecretsError::Open(_))
        ));
        assert!(k.open(Field::ChannelSecret, "7", &s).is_err());
        let other = Key::generate();
        assert!(matches!(
            other.open(Field::CheckPassword, "7", &s),
            Err(SecretsError::UnknownKey { .. })
        ));
        // Two seals of the same text differ (random nonce).
        assert_ne!(s, k.seal(Field::CheckPassword, "7", b"hunter2"));
        assert!(!is_sealed("hunter2"));
        assert!(!is_sealed("v1:abc:def"));
    }

    #[test]
    fn key_text_round_trips() {
        let k = Key::generate();
        let p = Key::parse(&k.encode()).unwrap();
        assert_eq!(p.id(), k.id());
        assert!(Key::parse("c2hvcnQ=").is_err());
        assert!(Key::parse("not base64 !").is_err());
        assert_eq!(format!("{k:?}"), format!("Key({})", k.id()));
    }
}
