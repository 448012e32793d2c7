//! The SQL of the `engines` table.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};

use crate::docker::{Endpoint, SshAuth, TlsPaths};

/// An engine as the API lists it.
pub struct EngineRow {
    pub id: i64,
    pub name: String,
    pub endpoint: String,
    pub tls: bool,
    pub ssh_host_key: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// What an engine is registered with.
pub struct NewEngine<'a> {
    pub name: &'a str,
    pub endpoint: &'a str,
    pub tls: (&'a Option<String>, &'a Option<String>, &'a Option<String>),
    pub ssh_host_key: Option<&'a str>,
    pub ssh_key: Option<&'a str>,
}

/// The engines table, for the hub: (id, name, endpoint).
pub async fn load(pool: &PgPool) -> sqlx::Result<Vec<(i64, String, Endpoint)>> {
    let rows = sqlx::query!(
        "SELECT id, name, endpoint, tls_ca, tls_cert, tls_key, ssh_host_key, ssh_key FROM engines ORDER BY id"
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let tls = match (r.tls_ca, r.tls_cert, r.tls_key) {
                (Some(ca), Some(cert), Some(key)) => Some(TlsPaths { ca, cert, key }),
                _ => None,
            };
            (
                r.id,
                r.name,
                Endpoint {
                    url: r.endpoint,
                    tls,
                    ssh: r.ssh_host_key.map(|host_key| SshAuth {
                        host_key,
                        key: r.ssh_key,
                    }),
                },
            )
        })
        .collect())
}

pub async fn rows(pool: &PgPool) -> sqlx::Result<Vec<EngineRow>> {
    sqlx::query_as!(
        EngineRow,
        r#"SELECT id, name, endpoint, tls_ca IS NOT NULL AS "tls!", ssh_host_key, created_at
           FROM engines ORDER BY name"#
    )
    .fetch_all(pool)
    .await
}

/// Takes the lock that serialises registering the default engine.
pub async fn lock_default(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('opsdeck.engines.default'))")
        .execute(tx)
        .await?;
    Ok(())
}

/// Registers `local` at `endpoint` when no engine exists; its id if added.
pub async fn insert_default(tx: &mut PgConnection, endpoint: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        r#"INSERT INTO engines (name, endpoint)
           SELECT 'local', $1 WHERE NOT EXISTS (SELECT 1 FROM engines) RETURNING id"#,
        endpoint
    )
    .fetch_optional(tx)
    .await
}

pub async fn insert(tx: &mut PgConnection, e: NewEngine<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO engines (name, endpoint, tls_ca, tls_cert, tls_key, ssh_host_key, ssh_key)
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        e.name,
        e.endpoint,
        e.tls.0.as_deref(),
        e.tls.1.as_deref(),
        e.tls.2.as_deref(),
        e.ssh_host_key,
        e.ssh_key
    )
    .fetch_one(tx)
    .await
}

/// Deletes an engine; its name when it existed.
pub async fn delete(tx: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("DELETE FROM engines WHERE id = $1 RETURNING name", id)
        .fetch_optional(tx)
        .await
}
