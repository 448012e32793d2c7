//! The SQL of sealed columns: the state row and one walk over every sealed
//! value (used by the first start's sealing and by rotation, both inside
//! one transaction the caller holds).

use sqlx::PgConnection;

use super::{token_hash, Field};

/// The state row: (key id, key check), when secrets are sealed.
pub async fn state(conn: &mut PgConnection) -> sqlx::Result<Option<(String, String)>> {
    Ok(sqlx::query!("SELECT key_id, key_check FROM secrets_state")
        .fetch_optional(conn)
        .await?
        .map(|r| (r.key_id, r.key_check)))
}

/// Serialises first starts and rotations (replicas starting together).
pub async fn lock(conn: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("LOCK TABLE secrets_state IN EXCLUSIVE MODE")
        .execute(conn)
        .await?;
    Ok(())
}

pub async fn insert_state(conn: &mut PgConnection, key_id: &str, check: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO secrets_state (key_id, key_check) VALUES ($1, $2)",
        key_id,
        check
    )
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn update_state(conn: &mut PgConnection, key_id: &str, check: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE secrets_state SET key_id = $1, key_check = $2, rotated_at = now()",
        key_id,
        check
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What a walk does to one stored value: `(column, row, stored bytes)` →
/// the new sealed text.
pub type Reseal<'a> = dyn FnMut(Field, &str, &[u8]) -> anyhow::Result<String> + Send + 'a;

/// Rewrites every stored secret through `f`, rows locked. `plaintext`: the
/// values are the pre-sealing plaintext (the first start), so heartbeat
/// tokens also get their hash. Returns how many values were rewritten.
pub async fn walk(
    conn: &mut PgConnection,
    plaintext: bool,
    f: &mut Reseal<'_>,
) -> anyhow::Result<u64> {
    let mut n = 0u64;
    let checks = sqlx::query!(
        "SELECT id, secret, heartbeat_token FROM checks
         WHERE secret IS NOT NULL OR heartbeat_token IS NOT NULL ORDER BY id FOR UPDATE"
    )
    .fetch_all(&mut *conn)
    .await?;
    for c in checks {
        let row = c.id.to_string();
        let secret = match &c.secret {
            Some(s) => Some(f(Field::CheckPassword, &row, s.as_bytes())?),
            None => None,
        };
        let token = match &c.heartbeat_token {
            Some(t) => Some(f(Field::HeartbeatToken, &row, t.as_bytes())?),
            None => None,
        };
        let hash = c
            .heartbeat_token
            .as_deref()
            .filter(|_| plaintext)
            .map(token_hash);
        n += secret.is_some() as u64 + token.is_some() as u64;
        sqlx::query!(
            "UPDATE checks SET secret = $2, heartbeat_token = $3,
                    heartbeat_token_hash = COALESCE($4, heartbeat_token_hash)
             WHERE id = $1",
            c.id,
            secret,
            token,
            hash
        )
        .execute(&mut *conn)
        .await?;
    }
    let channels =
        sqlx::query!("SELECT id, secret AS \"secret!\" FROM channels WHERE secret IS NOT NULL ORDER BY id FOR UPDATE")
            .fetch_all(&mut *conn)
            .await?;
    for c in channels {
        let sealed = f(Field::ChannelSecret, &c.id.to_string(), c.secret.as_bytes())?;
        sqlx::query!(
            "UPDATE channels SET secret = $2 WHERE id = $1",
            c.id,
            sealed
        )
        .execute(&mut *conn)
        .await?;
        n += 1;
    }
    let targets = sqlx::query!(
        "SELECT id, secret AS \"secret!\" FROM backup_targets WHERE secret IS NOT NULL ORDER BY id FOR UPDATE"
    )
    .fetch_all(&mut *conn)
    .await?;
    for t in targets {
        let sealed = f(Field::TargetSecret, &t.id.to_string(), t.secret.as_bytes())?;
        sqlx::query!(
            "UPDATE backup_targets SET secret = $2 WHERE id = $1",
            t.id,
            sealed
        )
        .execute(&mut *conn)
        .await?;
        n += 1;
    }
    let keys = sqlx::query!("SELECT name, key, sealed FROM server_keys ORDER BY name FOR UPDATE")
        .fetch_all(&mut *conn)
        .await?;
    for k in keys {
        let current: &[u8] = match (plaintext, &k.key, &k.sealed) {
            (true, Some(key), _) => key,
            (false, _, Some(sealed)) => sealed.as_bytes(),
            _ => continue,
        };
        let sealed = f(Field::ServerKey, &k.name, current)?;
        sqlx::query!(
            "UPDATE server_keys SET key = NULL, sealed = $2 WHERE name = $1",
            k.name,
            sealed
        )
        .execute(&mut *conn)
        .await?;
        n += 1;
    }
    Ok(n)
}
