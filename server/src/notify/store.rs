//! The notification channels' SQL (channels, their severity rules, test
//! messages, the outbox listing), compile-checked against the schema. The
//! outbox's own claims and writes are in [`super::outbox`].

use opsdeck_wire::{Channel, Notification, Severity};
use serde_json::Value;
use sqlx::PgConnection;

use crate::secrets::{self, Field};

/// A channel as read, with its severity rules.
struct ChannelRow {
    id: i64,
    name: String,
    kind: String,
    config: Value,
    has_secret: bool,
    enabled: bool,
    severities: Vec<i16>,
}

impl From<ChannelRow> for Channel {
    fn from(r: ChannelRow) -> Channel {
        Channel {
            id: r.id,
            name: r.name,
            kind: r.kind,
            config: serde_json::from_value(r.config).unwrap_or_default(),
            has_secret: r.has_secret,
            enabled: r.enabled,
            severities: r
                .severities
                .into_iter()
                .filter_map(Severity::from_level)
                .collect(),
        }
    }
}

/// One channel.
pub async fn channel(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<Channel>> {
    let row = sqlx::query_as!(
        ChannelRow,
        r#"SELECT c.id, c.name, c.kind, c.config, c.secret IS NOT NULL AS "has_secret!", c.enabled,
                  coalesce(array_agg(r.severity ORDER BY r.severity)
                           FILTER (WHERE r.severity IS NOT NULL), '{}') AS "severities!"
           FROM channels c LEFT JOIN channel_rules r ON r.channel_id = c.id
           WHERE c.id = $1 GROUP BY c.id"#,
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(Channel::from))
}

/// Every channel, by name.
pub async fn channels(conn: &mut PgConnection) -> sqlx::Result<Vec<Channel>> {
    let rows = sqlx::query_as!(
        ChannelRow,
        r#"SELECT c.id, c.name, c.kind, c.config, c.secret IS NOT NULL AS "has_secret!", c.enabled,
                  coalesce(array_agg(r.severity ORDER BY r.severity)
                           FILTER (WHERE r.severity IS NOT NULL), '{}') AS "severities!"
           FROM channels c LEFT JOIN channel_rules r ON r.channel_id = c.id
           GROUP BY c.id ORDER BY c.name"#
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Channel::from).collect())
}

/// Replaces a channel's severity rules.
pub async fn set_rules(conn: &mut PgConnection, id: i64, levels: &[i16]) -> sqlx::Result<()> {
    sqlx::query!("DELETE FROM channel_rules WHERE channel_id = $1", id)
        .execute(&mut *conn)
        .await?;
    sqlx::query!(
        "INSERT INTO channel_rules (severity, channel_id) SELECT unnest($2::smallint[]), $1",
        id,
        levels
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// A channel's stored fields.
pub struct ChannelFields<'a> {
    pub name: &'a str,
    pub kind: &'a str,
    pub config: Value,
    pub enabled: bool,
}

pub async fn insert_channel(
    conn: &mut PgConnection,
    c: &ChannelFields<'_>,
    secret: Option<&str>,
) -> sqlx::Result<i64> {
    // The id first: the secret is sealed bound to its row (`crate::secrets`).
    let id: i64 =
        sqlx::query_scalar!(r#"SELECT nextval(pg_get_serial_sequence('channels', 'id')) AS "id!""#)
            .fetch_one(&mut *conn)
            .await?;
    let sealed = secret
        .map(|s| secrets::seal(Field::ChannelSecret, id, s))
        .transpose()
        .map_err(secrets::as_sqlx)?;
    sqlx::query_scalar!(
        "INSERT INTO channels (id, name, kind, config, secret, enabled)
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        id,
        c.name,
        c.kind,
        c.config,
        sealed,
        c.enabled
    )
    .fetch_one(conn)
    .await
}

/// Updates a channel; the secret only when `secret` is `Some` (`Some(None)`
/// clears it). False when there is no such channel.
pub async fn update_channel(
    conn: &mut PgConnection,
    id: i64,
    c: &ChannelFields<'_>,
    secret: Option<Option<&str>>,
) -> sqlx::Result<bool> {
    let sealed = match secret {
        Some(Some(s)) => Some(Some(
            secrets::seal(Field::ChannelSecret, id, s).map_err(secrets::as_sqlx)?,
        )),
        Some(None) => Some(None),
        None => None,
    };
    let secret = sealed.as_ref().map(|s| s.as_deref());
    let updated = sqlx::query_scalar!(
        "UPDATE channels SET name = $2, kind = $3, config = $4, enabled = $5,
                secret = CASE WHEN $6 THEN $7 ELSE secret END, updated_at = now()
         WHERE id = $1 RETURNING id",
        id,
        c.name,
        c.kind,
        c.config,
        c.enabled,
        secret.is_some(),
        secret.flatten()
    )
    .fetch_optional(conn)
    .await?;
    Ok(updated.is_some())
}

/// Deletes a channel; its name and kind, if there was one.
pub async fn delete_channel(
    conn: &mut PgConnection,
    id: i64,
) -> sqlx::Result<Option<(String, String)>> {
    let row = sqlx::query!(
        "DELETE FROM channels WHERE id = $1 RETURNING name, kind",
        id
    )
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| (r.name, r.kind)))
}

/// A fresh notification id (a test message is sent before it is stored).
pub async fn next_notification_id(conn: &mut PgConnection) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT nextval(pg_get_serial_sequence('notifications', 'id')) AS "id!""#)
        .fetch_one(conn)
        .await
}

/// A test message as sent.
pub struct TestMessage<'a> {
    pub id: i64,
    pub channel_id: i64,
    pub channel_name: &'a str,
    pub channel_kind: &'a str,
    pub address: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
    pub ok: bool,
    pub detail: &'a str,
    pub duration_ms: i32,
}

/// Records a test message and its one attempt.
pub async fn record_test(conn: &mut PgConnection, m: &TestMessage<'_>) -> sqlx::Result<()> {
    let status = if m.ok { "sent" } else { "failed" };
    sqlx::query!(
        "INSERT INTO notifications (id, kind, channel_id, channel_name, channel_kind, address,
                                    severity, subject, body, status, attempts, last_error, sent_at)
         VALUES ($1, 'test', $2, $3, $4, $5, 4, $6, $7, $8, 1, $9,
                 CASE WHEN $8 = 'sent' THEN now() END)",
        m.id,
        m.channel_id,
        m.channel_name,
        m.channel_kind,
        m.address,
        m.subject,
        m.body,
        status,
        (!m.ok).then_some(m.detail)
    )
    .execute(&mut *conn)
    .await?;
    sqlx::query!(
        "INSERT INTO notification_attempts (notification_id, attempt, outcome, detail, duration_ms)
         VALUES ($1, 1, $2, $3, $4)",
        m.id,
        status,
        m.detail,
        m.duration_ms
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Outbox rows newest first (optionally one incident's).
pub async fn notifications(
    conn: &mut PgConnection,
    incident_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Notification>> {
    sqlx::query_as!(
        Notification,
        "SELECT id, kind, incident_id, level, channel_name AS channel, channel_kind,
                person_name AS person, address, status, attempts, last_error, sent_at, created_at
         FROM notifications
         WHERE ($1::bigint IS NULL OR incident_id = $1)
         ORDER BY id DESC LIMIT $2",
        incident_id,
        limit
    )
    .fetch_all(conn)
    .await
}
