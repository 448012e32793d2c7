//! The panel's own database is never a backup source: its dumps would hand
//! operators the users, sessions and sealed secrets (issue 19). It is
//! recognised by the cluster's `system_identifier` plus the database name,
//! whatever host name or port reaches it; a server that does not answer
//! `pg_control_system()` is taken to be another one. Administrators back
//! it up with `pg_dump` (see docs/security/secrets.md).

/// The panel's own database: (cluster `system_identifier`, database name).
pub async fn own_database(pool: &sqlx::PgPool) -> Option<(i64, String)> {
    sqlx::query!(
        r#"SELECT (SELECT system_identifier FROM pg_control_system()) AS "id!",
                  current_database()::text AS "db!""#
    )
    .fetch_one(pool)
    .await
    .ok()
    .map(|r| (r.id, r.db))
}
