//! The inventory's SQL: the write lock, reading the whole inventory, writing
//! a service and its dependencies. Every statement is compile-checked.

use std::collections::{BTreeSet, HashMap};

use serde_json::json;
use sqlx::PgConnection;

use super::{DbTier, EdgeRow, Fields, InventoryError, ServiceRow, Snapshot};

/// Takes the inventory's write lock for the rest of the transaction.
pub async fn lock(tx: &mut PgConnection) -> sqlx::Result<()> {
    sqlx::query!("SELECT pg_advisory_xact_lock(hashtext('opsdeck.inventory'))")
        .execute(tx)
        .await?;
    Ok(())
}

impl Snapshot {
    pub async fn load(conn: &mut PgConnection) -> sqlx::Result<Snapshot> {
        let rows = sqlx::query!(
            r#"SELECT s.id, s.name, s.description, s.tier AS "tier: DbTier", s.owner_team, s.docs_url,
                      s.repo_url, e.name AS "engine?", s.compose_project, s.compose_service,
                      s.container_name, s.image, s.ports, s.volumes, s.labels, s.source,
                      s.edited_fields, s.created_at, s.updated_at
               FROM services s LEFT JOIN engines e ON e.id = s.engine_id
               ORDER BY s.name"#
        )
        .fetch_all(&mut *conn)
        .await?;
        let services = rows
            .into_iter()
            .map(|r| ServiceRow {
                id: r.id,
                name: r.name,
                fields: Fields {
                    description: r.description,
                    tier: r.tier.into(),
                    owner_team: r.owner_team,
                    docs_url: r.docs_url,
                    repo_url: r.repo_url,
                    engine: r.engine,
                    compose_project: r.compose_project,
                    compose_service: r.compose_service,
                    container_name: r.container_name,
                    image: r.image,
                    ports: serde_json::from_value(r.ports).unwrap_or_default(),
                    volumes: serde_json::from_value(r.volumes).unwrap_or_default(),
                    labels: serde_json::from_value(r.labels).unwrap_or_default(),
                },
                source: r.source,
                edited_fields: r.edited_fields,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect();
        let edges = sqlx::query_as!(
            EdgeRow,
            "SELECT service_id, requires_id, source FROM service_dependencies ORDER BY service_id, requires_id"
        )
        .fetch_all(&mut *conn)
        .await?;
        Ok(Snapshot { services, edges })
    }
}

/// Resolves an engine name to its id (or `None` for any engine).
pub async fn engine_id(
    conn: &mut PgConnection,
    name: Option<&str>,
) -> Result<Option<i64>, InventoryError> {
    let Some(name) = name else { return Ok(None) };
    sqlx::query_scalar!("SELECT id FROM engines WHERE name = $1", name)
        .fetch_optional(conn)
        .await?
        .map(Some)
        .ok_or_else(|| InventoryError::Invalid(format!("engine: no engine named \"{name}\"")))
}

/// Inserts or updates a service's row; returns its id.
pub async fn write_service(
    conn: &mut PgConnection,
    id: Option<i64>,
    name: &str,
    f: &Fields,
    source: &str,
    edited: &[String],
) -> Result<i64, InventoryError> {
    let engine = engine_id(conn, f.engine.as_deref()).await?;
    let tier: DbTier = f.tier.into();
    let ports = json!(f.ports);
    let volumes = json!(f.volumes);
    let labels = json!(f.labels);
    let id = match id {
        None => sqlx::query_scalar!(
            r#"INSERT INTO services (name, description, tier, owner_team, docs_url, repo_url, engine_id,
                   compose_project, compose_service, container_name, image, ports, volumes, labels,
                   source, edited_fields)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
               RETURNING id"#,
            name,
            f.description,
            tier as DbTier,
            f.owner_team,
            f.docs_url,
            f.repo_url,
            engine,
            f.compose_project,
            f.compose_service,
            f.container_name,
            f.image,
            ports,
            volumes,
            labels,
            source,
            edited,
        )
        .fetch_one(&mut *conn)
        .await?,
        Some(id) => sqlx::query_scalar!(
            r#"UPDATE services SET name = $2, description = $3, tier = $4, owner_team = $5, docs_url = $6,
                   repo_url = $7, engine_id = $8, compose_project = $9, compose_service = $10,
                   container_name = $11, image = $12, ports = $13, volumes = $14, labels = $15,
                   source = $16, edited_fields = $17, updated_at = now()
               WHERE id = $1 RETURNING id"#,
            id,
            name,
            f.description,
            tier as DbTier,
            f.owner_team,
            f.docs_url,
            f.repo_url,
            engine,
            f.compose_project,
            f.compose_service,
            f.container_name,
            f.image,
            ports,
            volumes,
            labels,
            source,
            edited,
        )
        .fetch_optional(&mut *conn)
        .await?
        .ok_or_else(|| InventoryError::NotFound(format!("service {id}")))?,
    };
    Ok(id)
}

/// Sets a service's dependencies to exactly `requires` (names of services
/// in `snapshot`, read before the write: a service never requires itself):
/// edges no longer wanted go whatever their source, existing ones keep
/// theirs, new ones are manual.
pub async fn set_requires(
    tx: &mut PgConnection,
    snapshot: &Snapshot,
    id: i64,
    requires: &BTreeSet<String>,
) -> Result<(), InventoryError> {
    let ids: HashMap<&str, i64> = snapshot
        .services
        .iter()
        .map(|s| (s.name.as_str(), s.id))
        .collect();
    let mut wanted = Vec::new();
    for r in requires {
        let rid = *ids
            .get(r.as_str())
            .ok_or_else(|| InventoryError::Invalid(format!("requires: unknown service \"{r}\"")))?;
        wanted.push(rid);
    }
    sqlx::query!(
        "DELETE FROM service_dependencies WHERE service_id = $1 AND NOT (requires_id = ANY($2))",
        id,
        &wanted
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"INSERT INTO service_dependencies (service_id, requires_id, source)
           SELECT $1, unnest($2::bigint[]), 'manual' ON CONFLICT DO NOTHING"#,
        id,
        &wanted
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Deletes a service (its edges and checks go with it); its name when it existed.
pub async fn delete_service(tx: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("DELETE FROM services WHERE id = $1 RETURNING name", id)
        .fetch_optional(tx)
        .await
}
