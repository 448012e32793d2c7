//! Acknowledge links: signed, expiring, single-use capability URLs in
//! escalation messages (`<public base>/ack/<token>`).
//!
//! **Minting** (when an escalation message is sent, in its own committed
//! transaction so the link works as soon as the message arrives): a random
//! 16-byte nonce; a row in `ack_links` with the incident, the notification,
//! the person, `sha256(nonce)` and `expires_at = now() +
//! incident_settings.ack_link_ttl_secs` (whole seconds). The token is
//! `<id>.<expires unix>.<nonce b64url>.<sig b64url>` with `sig =
//! HMAC-SHA256(key, "<id>.<expires unix>.<nonce b64url>")`. The key is the
//! `server_keys` row `ack_links`: 32 random bytes made on first use (`INSERT
//! … ON CONFLICT DO NOTHING`, then read back, so concurrent processes agree
//! on one key). A retried message gets a fresh link; each is single-use.
//!
//! **Checking** a token: four parts, the signature verified in constant
//! time (`Mac::verify_slice`), the embedded expiry in the future, then the
//! row: same nonce hash, `expires_at` in the future, `used_at` empty. A
//! malformed or tampered token (any character of id, expiry, nonce or
//! signature changed) is *invalid* (400); a past expiry (embedded or
//! stored) is *expired* (410); a consumed link is *used* (410). Every answer
//! is a small server-rendered page (askama `ack.html`, styled by the public
//! status page's stylesheet), no JSON, no session needed.
//!
//! **GET never acknowledges**: mail scanners and chat unfurlers fetch links.
//! It shows the incident (title, severity, status) and a form that POSTs to
//! the same URL. **POST** checks again and then, in one transaction,
//! consumes the link (`UPDATE … SET used_at = now() WHERE id = $1 AND
//! used_at IS NULL AND expires_at > now() AND nonce_hash = $2`: two
//! concurrent POSTs cannot both win) and acknowledges the incident when it
//! is still `triggered` (timeline, audit entry, escalation stopped, live
//! update). A link for an incident someone else already acknowledged is
//! consumed and says so. The routes live outside the session and CSRF
//! middleware (like heartbeats): the 128-bit nonce is the credential, and a
//! cross-site form cannot forge a token it does not know.
//!
//! This file is the domain (mint, check, take); the pages and the GET
//! handler are in `notify::api::acklink`. The POST handler is
//! `incidents::api::ack::confirm`: acknowledging is the incidents' rule,
//! and notify does not call up into incidents; it offers [`take`] (consume
//! in the caller's transaction) and the pages.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use opsdeck_wire::Severity;
use rand::RngCore;
use sha2::{Digest, Sha256};
use sqlx::PgConnection;

/// `server_keys.name` of the HMAC key.
pub const KEY_NAME: &str = "ack_links";
/// Longest token accepted (a real one is about 90 characters).
const MAX_TOKEN: usize = 256;

/// The HMAC key, made on first use (every process reads the same row).
/// Stored sealed (`server_keys.sealed`, see `crate::secrets`).
pub async fn server_key(conn: &mut PgConnection) -> sqlx::Result<Vec<u8>> {
    let open = |sealed: String| {
        crate::secrets::key()
            .and_then(|k| k.open(crate::secrets::Field::ServerKey, KEY_NAME, &sealed))
            .map_err(|e| sqlx::Error::Decode(Box::new(e)))
    };
    let existing = sqlx::query_scalar!("SELECT sealed FROM server_keys WHERE name = $1", KEY_NAME)
        .fetch_optional(&mut *conn)
        .await?
        .flatten();
    if let Some(sealed) = existing {
        return open(sealed);
    }
    let mut key = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    let sealed = crate::secrets::key()
        .map(|k| k.seal(crate::secrets::Field::ServerKey, KEY_NAME, &key))
        .map_err(crate::secrets::as_sqlx)?;
    sqlx::query!(
        "INSERT INTO server_keys (name, sealed) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        KEY_NAME,
        sealed
    )
    .execute(&mut *conn)
    .await?;
    let stored = sqlx::query_scalar!("SELECT sealed FROM server_keys WHERE name = $1", KEY_NAME)
        .fetch_one(&mut *conn)
        .await?
        .ok_or_else(|| sqlx::Error::RowNotFound)?;
    open(stored)
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length")
}

/// A minted link.
#[derive(Debug, Clone)]
pub struct Minted {
    pub id: i64,
    pub token: String,
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// Mints a link for `incident_id` (see the module documentation). `base`
/// is the panel's public base URL without a trailing slash.
pub async fn mint(
    conn: &mut PgConnection,
    base: &str,
    incident_id: i64,
    notification_id: Option<i64>,
    person_id: Option<i64>,
    person_name: Option<&str>,
) -> sqlx::Result<Minted> {
    let key = server_key(conn).await?;
    let mut nonce = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut nonce);
    let nonce_hash = Sha256::digest(nonce).to_vec();
    let row = sqlx::query!(
        "INSERT INTO ack_links (incident_id, notification_id, person_id, person_name, nonce_hash, expires_at)
         VALUES ($1, $2, $3, $4, $5,
                 date_trunc('second', now()) + make_interval(secs => coalesce(
                     (SELECT ack_link_ttl_secs FROM incident_settings LIMIT 1), 86400)))
         RETURNING id, expires_at",
        incident_id,
        notification_id,
        person_id,
        person_name,
        &nonce_hash
    )
    .fetch_one(&mut *conn)
    .await?;
    let (id, expires_at) = (row.id, row.expires_at);
    let payload = format!("{id}.{}.{}", expires_at.timestamp(), B64.encode(nonce));
    let mut m = mac(&key);
    m.update(payload.as_bytes());
    let sig = B64.encode(m.finalize().into_bytes());
    let token = format!("{payload}.{sig}");
    Ok(Minted {
        id,
        url: format!("{}/ack/{token}", base.trim_end_matches('/')),
        token,
        expires_at,
    })
}

/// A token whose signature verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub id: i64,
    pub expires: i64,
    pub nonce_hash: Vec<u8>,
}

/// Parses a token and verifies its signature; `None` for anything
/// malformed or tampered with.
pub fn verify_signature(token: &str, key: &[u8]) -> Option<Signed> {
    if token.len() > MAX_TOKEN {
        return None;
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [id, expires, nonce, sig] = parts[..] else {
        return None;
    };
    let sig = B64.decode(sig).ok()?;
    let mut m = mac(key);
    m.update(format!("{id}.{expires}.{nonce}").as_bytes());
    m.verify_slice(&sig).ok()?;
    let nonce = B64.decode(nonce).ok()?;
    if nonce.len() != 16 {
        return None;
    }
    Some(Signed {
        id: id.parse().ok()?,
        expires: expires.parse().ok()?,
        nonce_hash: Sha256::digest(&nonce).to_vec(),
    })
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The incident as the pages show it.
#[derive(Debug, Clone)]
pub struct IncidentView {
    pub id: i64,
    pub title: String,
    pub severity: String,
    pub severity_meaning: String,
    pub severity_class: &'static str,
    pub status: String,
    pub acknowledged_by: Option<String>,
}

/// What a token stands for.
#[derive(Debug, Clone)]
pub enum LinkState {
    Invalid,
    Expired(Option<IncidentView>),
    Used(Option<IncidentView>),
    Valid {
        signed: Signed,
        incident: IncidentView,
        /// Who the link was for (the person, or the channel's name).
        who: String,
    },
}

fn incident_view_of(
    id: i64,
    title: String,
    severity: i16,
    status: &str,
    acknowledged_by: Option<String>,
) -> IncidentView {
    let severity = Severity::from_level(severity).unwrap_or(Severity::P1);
    IncidentView {
        id,
        title,
        severity: severity.as_str().to_owned(),
        severity_meaning: severity.meaning().to_owned(),
        severity_class: match severity {
            Severity::P1 | Severity::P2 => "bad",
            Severity::P3 => "warn",
            Severity::P4 => "none",
        },
        status: status.replace('_', " "),
        acknowledged_by,
    }
}

/// Judges a token against the key and the stored link.
pub async fn check(conn: &mut PgConnection, token: &str) -> sqlx::Result<LinkState> {
    let key = server_key(conn).await?;
    let Some(signed) = verify_signature(token, &key) else {
        return Ok(LinkState::Invalid);
    };
    let row = sqlx::query!(
        r#"SELECT l.incident_id, l.nonce_hash, l.used_at, l.expires_at <= now() AS "expired!",
                  coalesce(l.person_name, 'a recipient of ' || n.channel_name, 'an acknowledge link') AS "who!",
                  i.title, i.severity, i.status, i.acknowledged_by
           FROM ack_links l
           JOIN incidents i ON i.id = l.incident_id
           LEFT JOIN notifications n ON n.id = l.notification_id
           WHERE l.id = $1"#,
        signed.id
    )
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(LinkState::Invalid);
    };
    if !same(&row.nonce_hash, &signed.nonce_hash) {
        return Ok(LinkState::Invalid);
    }
    let incident = incident_view_of(
        row.incident_id,
        row.title,
        row.severity,
        &row.status,
        row.acknowledged_by,
    );
    if row.used_at.is_some() {
        return Ok(LinkState::Used(Some(incident)));
    }
    if row.expired || signed.expires <= Utc::now().timestamp() {
        return Ok(LinkState::Expired(Some(incident)));
    }
    Ok(LinkState::Valid {
        signed,
        who: row.who,
        incident,
    })
}

/// Whether a token has the shape of one (length, alphabet), before any
/// database work.
pub fn token_ok(token: &str) -> bool {
    token.len() <= MAX_TOKEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
}

/// What taking a link left: refused, or consumed (the link is used in
/// the caller's transaction) for this incident on someone's behalf.
pub enum Taken {
    Refused(LinkState),
    Won {
        incident_id: i64,
        who: String,
    },
    /// Another request consumed it (or it expired) in between: check the
    /// token again outside this transaction to say which.
    Raced,
}

/// Consumes a link in the caller's transaction: checks it, then marks it
/// used (`UPDATE … WHERE used_at IS NULL …`: two concurrent POSTs cannot
/// both win). The caller acknowledges the incident in the same transaction
/// (`POST /ack/{token}` lives with the incidents, which own that rule).
pub async fn take(tx: &mut PgConnection, token: &str) -> sqlx::Result<Taken> {
    let (signed, who) = match check(&mut *tx, token).await? {
        LinkState::Valid { signed, who, .. } => (signed, who),
        other => return Ok(Taken::Refused(other)),
    };
    let incident_id = sqlx::query_scalar!(
        "UPDATE ack_links SET used_at = now()
         WHERE id = $1 AND used_at IS NULL AND expires_at > now() AND nonce_hash = $2
         RETURNING incident_id",
        signed.id,
        &signed.nonce_hash
    )
    .fetch_optional(&mut *tx)
    .await?;
    Ok(match incident_id {
        Some(incident_id) => Taken::Won { incident_id, who },
        None => Taken::Raced,
    })
}

/// The incident as the pages show it, now.
pub async fn view(conn: &mut PgConnection, incident_id: i64) -> sqlx::Result<IncidentView> {
    let r = sqlx::query!(
        "SELECT id, title, severity, status, acknowledged_by FROM incidents WHERE id = $1",
        incident_id
    )
    .fetch_one(conn)
    .await?;
    Ok(incident_view_of(
        r.id,
        r.title,
        r.severity,
        &r.status,
        r.acknowledged_by,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(key: &[u8], id: i64, expires: i64, nonce: &[u8; 16]) -> String {
        let payload = format!("{id}.{expires}.{}", B64.encode(nonce));
        let mut m = mac(key);
        m.update(payload.as_bytes());
        format!("{payload}.{}", B64.encode(m.finalize().into_bytes()))
    }

    #[test]
    fn signatures_verify_and_tampering_fails() {
        let key = [7u8; 32];
        let t = token(&key, 42, 1_900_000_000, &[1; 16]);
        let s = verify_signature(&t, &key).expect("valid");
        assert_eq!(s.id, 42);
        assert_eq!(s.expires, 1_900_000_000);
        assert_eq!(s.nonce_hash, Sha256::digest([1u8; 16]).to_vec());
        // Another key.
        assert!(verify_signature(&t, &[8u8; 32]).is_none());
        // Any single character changed.
        for i in 0..t.len() {
            let mut b = t.clone().into_bytes();
            if b[i] == b'.' {
                continue;
            }
            b[i] = if b[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(b).unwrap();
            if changed == t {
                continue;
            }
            assert!(
                verify_signature(&changed, &key).is_none(),
                "position {i}: {changed}"
            );
        }
        // Another expiry with the old signature.
        let parts: Vec<&str> = t.split('.').collect();
        let moved = format!("{}.{}.{}.{}", parts[0], 1_999_999_999, parts[2], parts[3]);
        assert!(verify_signature(&moved, &key).is_none());
        // Malformed.
        for bad in ["", "1.2.3", "a.b.c.d", "1.2.3.4.5", &"x".repeat(300)] {
            assert!(verify_signature(bad, &key).is_none(), "{bad}");
        }
    }
}
