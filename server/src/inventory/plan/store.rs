//! The SQL of imports: the engines as stored, writing a computed plan in
//! the caller's transaction, and the inventory as a YAML document.

use std::collections::HashMap;

use sqlx::PgConnection;

use super::super::{write_service, yaml, InventoryError, Snapshot};
use super::{engine_changes, is_authoritative, Computed, DesiredService};

/// The engines as stored, in the YAML model.
pub async fn load_engines(conn: &mut PgConnection) -> sqlx::Result<Vec<yaml::EngineDoc>> {
    let rows =
        sqlx::query!("SELECT name, endpoint, tls_ca, tls_cert, tls_key FROM engines ORDER BY name")
            .fetch_all(conn)
            .await?;
    Ok(rows
        .into_iter()
        .map(|r| yaml::EngineDoc {
            name: r.name,
            endpoint: r.endpoint,
            tls_ca: r.tls_ca,
            tls_cert: r.tls_cert,
            tls_key: r.tls_key,
        })
        .collect())
}

/// Adds the engine changes to a computed plan.
pub async fn engine_plan(conn: &mut PgConnection, c: &mut Computed) -> sqlx::Result<()> {
    if let Some(wanted) = &c.desired.engines {
        let current = load_engines(conn).await?;
        c.plan
            .changes
            .retain(|ch| !ch.service.starts_with("engine:"));
        c.plan.changes.extend(engine_changes(&current, wanted));
        c.plan.changes.sort_by(|a, b| a.service.cmp(&b.service));
    }
    Ok(())
}

/// Writes a computed plan on `tx` (which holds the inventory lock).
pub async fn apply(tx: &mut PgConnection, c: &mut Computed) -> Result<(), InventoryError> {
    let authoritative = is_authoritative(&c.desired);
    if let Some(wanted) = &c.desired.engines {
        let current = load_engines(tx).await?;
        for cur in &current {
            if !wanted.iter().any(|w| w.name == cur.name) {
                sqlx::query!("DELETE FROM engines WHERE name = $1", cur.name)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        for w in wanted {
            crate::engines::validate(&w.endpoint, &w.tls_ca, &w.tls_cert, &w.tls_key)?;
            sqlx::query!(
                r#"INSERT INTO engines (name, endpoint, tls_ca, tls_cert, tls_key)
                   VALUES ($1, $2, $3, $4, $5)
                   ON CONFLICT (name) DO UPDATE SET endpoint = EXCLUDED.endpoint,
                     tls_ca = EXCLUDED.tls_ca, tls_cert = EXCLUDED.tls_cert, tls_key = EXCLUDED.tls_key"#,
                w.name,
                w.endpoint,
                w.tls_ca,
                w.tls_cert,
                w.tls_key
            )
            .execute(&mut *tx)
            .await?;
        }
    }
    if !c.remove.is_empty() {
        sqlx::query!("DELETE FROM services WHERE id = ANY($1)", &c.remove)
            .execute(&mut *tx)
            .await?;
    }
    for (id, name, fields, edited) in &c.writes {
        let source = match id {
            None => c.desired.source,
            Some(_) if authoritative => "yaml",
            Some(_) => "",
        };
        let source = if source.is_empty() {
            // Keep the existing source on a merge update.
            sqlx::query_scalar!("SELECT source FROM services WHERE id = $1", *id)
                .fetch_one(&mut *tx)
                .await?
        } else {
            source.to_owned()
        };
        write_service(tx, *id, name, fields, &source, edited).await?;
    }
    let ids: HashMap<String, i64> = sqlx::query!("SELECT id, name FROM services")
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .map(|r| (r.name, r.id))
        .collect();
    let by_name: HashMap<&str, &DesiredService> = c
        .desired
        .services
        .iter()
        .map(|d| (d.name.as_str(), d))
        .collect();
    for name in &c.edges_for {
        let (Some(&sid), Some(d)) = (ids.get(name), by_name.get(name.as_str())) else {
            continue;
        };
        let wanted: Vec<i64> = d
            .requires
            .iter()
            .filter_map(|r| ids.get(r).copied())
            .collect();
        if authoritative {
            sqlx::query!(
                "DELETE FROM service_dependencies WHERE service_id = $1",
                sid
            )
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query!(
                "DELETE FROM service_dependencies WHERE service_id = $1 AND source = 'compose' AND NOT (requires_id = ANY($2))",
                sid,
                &wanted
            )
            .execute(&mut *tx)
            .await?;
        }
        let source = if authoritative { "manual" } else { "compose" };
        sqlx::query!(
            r#"INSERT INTO service_dependencies (service_id, requires_id, source)
               SELECT $1, unnest($2::bigint[]), $3 ON CONFLICT DO NOTHING"#,
            sid,
            &wanted,
            source
        )
        .execute(&mut *tx)
        .await?;
    }
    c.plan.applied = true;
    Ok(())
}

/// The inventory as a YAML document.
pub async fn export(conn: &mut PgConnection) -> sqlx::Result<String> {
    let snapshot = Snapshot::load(conn).await?;
    let engines = load_engines(conn).await?;
    let services = snapshot
        .to_wire()
        .into_iter()
        .map(|s| yaml::ServiceDoc {
            name: s.name,
            description: s.description,
            tier: s.tier.as_str().to_owned(),
            owner_team: s.owner_team,
            docs_url: s.docs_url,
            repo_url: s.repo_url,
            engine: s.engine,
            compose_project: s.compose_project,
            compose_service: s.compose_service,
            container_name: s.container_name,
            image: s.image,
            ports: s.ports,
            volumes: s.volumes,
            labels: s.labels,
            requires: s.requires,
        })
        .collect();
    Ok(yaml::render(&yaml::InventoryDoc { engines, services }))
}
