//! The audit log's SQL (compile-checked). The hash chains themselves are
//! the insert trigger's work (`audit_log_chain`, `audit_entry_hash`).

use chrono::{DateTime, Utc};
use futures::stream::BoxStream;
use serde_json::Value;
use sqlx::{PgConnection, PgPool};

use super::NewEntry;

/// Appends `entry` (its secrets already masked).
pub async fn insert(conn: &mut PgConnection, entry: &NewEntry, outcome: &str) -> sqlx::Result<()> {
    sqlx::query!(
        r#"INSERT INTO audit_log (actor_id, actor, actor_kind, action, target, params, source, outcome, detail)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"#,
        entry.actor.id,
        entry.actor.name,
        entry.actor.kind,
        entry.action,
        entry.target,
        entry.params,
        entry.source,
        outcome,
        entry.detail,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// One entry of a chain: its place, stored and recomputed hashes.
pub struct Link {
    pub chain: i16,
    pub link: i64,
    pub seq: i64,
    pub prev_hash: Vec<u8>,
    pub hash: Vec<u8>,
    pub recomputed: Vec<u8>,
}

/// Every entry, chain by chain, in link order.
pub fn chain(pool: &PgPool) -> BoxStream<'_, sqlx::Result<Link>> {
    sqlx::query_as!(
        Link,
        r#"SELECT chain, link, seq, prev_hash, hash,
                  audit_entry_hash(prev_hash, seq, at, actor_id, actor, actor_kind, action, target,
                                   params, source, outcome, detail) AS "recomputed!"
           FROM audit_log ORDER BY chain, link"#
    )
    .fetch(pool)
}

/// Which entries a page shows (patterns already LIKE-escaped).
pub struct PageFilter<'a> {
    pub before: Option<i64>,
    pub actor: Option<&'a str>,
    pub action_prefix: Option<&'a str>,
    pub outcome: Option<&'a str>,
    pub q: Option<&'a str>,
}

pub struct Row {
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_kind: String,
    pub action: String,
    pub target: Option<String>,
    pub params: Value,
    pub source: Option<String>,
    pub outcome: String,
    pub detail: Option<String>,
}

/// Up to `limit` entries matching `f`, newest first.
pub async fn page(pool: &PgPool, f: PageFilter<'_>, limit: i64) -> sqlx::Result<Vec<Row>> {
    sqlx::query_as!(
        Row,
        r#"SELECT seq, at, actor, actor_kind, action, target, params, source, outcome, detail
           FROM audit_log
           WHERE ($1::bigint IS NULL OR seq < $1)
             AND ($2::text IS NULL OR actor = $2)
             AND ($3::text IS NULL OR action LIKE $3)
             AND ($4::text IS NULL OR outcome = $4)
             AND ($5::text IS NULL OR target ILIKE $5 OR detail ILIKE $5 OR params::text ILIKE $5)
           ORDER BY seq DESC LIMIT $6"#,
        f.before,
        f.actor,
        f.action_prefix,
        f.outcome,
        f.q,
        limit,
    )
    .fetch_all(pool)
    .await
}

/// Each chain's newest entry: (chain, link, hash), by chain.
pub async fn heads(pool: &PgPool) -> sqlx::Result<Vec<(i16, i64, Vec<u8>)>> {
    let rows = sqlx::query!(
        "SELECT DISTINCT ON (chain) chain, link, hash FROM audit_log ORDER BY chain, link DESC"
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.chain, r.link, r.hash))
        .collect())
}

/// The stored hash of link `link` of chain `chain`.
pub async fn hash_at(pool: &PgPool, chain: i16, link: i64) -> sqlx::Result<Option<Vec<u8>>> {
    sqlx::query_scalar!(
        "SELECT hash FROM audit_log WHERE chain = $1 AND link = $2",
        chain,
        link
    )
    .fetch_optional(pool)
    .await
}
