//! The clean-up's SQL: previews (`cleanup_previews`), and what a preview
//! must keep: the volumes backup plans name and the images services may
//! roll back to (`image_versions`).

use chrono::{DateTime, Utc};
use opsdeck_wire::{BackupSource, CleanupItem, CleanupRequest};
use serde_json::Value;
use sqlx::PgConnection;

use super::plan::{Protected, Protection};

/// A stored preview.
pub struct PreviewRow {
    pub id: i64,
    pub engine_id: i64,
    pub request: CleanupRequest,
    pub items: Vec<CleanupItem>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub run_id: Option<i64>,
}

fn decode<T: serde::de::DeserializeOwned>(v: Value, what: &str) -> sqlx::Result<T> {
    serde_json::from_value(v).map_err(|e| sqlx::Error::Decode(format!("{what}: {e}").into()))
}

fn encode<T: serde::Serialize>(v: &T) -> sqlx::Result<Value> {
    serde_json::to_value(v).map_err(|e| sqlx::Error::Encode(Box::new(e)))
}

/// Stores a preview; returns its id and time.
pub async fn insert_preview(
    conn: &mut PgConnection,
    engine_id: i64,
    request: &CleanupRequest,
    items: &[CleanupItem],
    created_by: &str,
) -> sqlx::Result<(i64, DateTime<Utc>)> {
    let r = sqlx::query!(
        "INSERT INTO cleanup_previews (engine_id, request, items, created_by)
         VALUES ($1, $2, $3, $4) RETURNING id, created_at",
        engine_id,
        encode(request)?,
        encode(&items)?,
        created_by,
    )
    .fetch_one(conn)
    .await?;
    Ok((r.id, r.created_at))
}

/// A preview, its row locked when `lock` (applying it).
pub async fn preview(
    conn: &mut PgConnection,
    id: i64,
    lock: bool,
) -> sqlx::Result<Option<PreviewRow>> {
    let row = if lock {
        sqlx::query!(
            "SELECT id, engine_id, request, items, created_by, created_at, run_id
             FROM cleanup_previews WHERE id = $1 FOR UPDATE",
            id
        )
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| {
            (
                r.id,
                r.engine_id,
                r.request,
                r.items,
                r.created_by,
                r.created_at,
                r.run_id,
            )
        })
    } else {
        sqlx::query!(
            "SELECT id, engine_id, request, items, created_by, created_at, run_id
             FROM cleanup_previews WHERE id = $1",
            id
        )
        .fetch_optional(&mut *conn)
        .await?
        .map(|r| {
            (
                r.id,
                r.engine_id,
                r.request,
                r.items,
                r.created_by,
                r.created_at,
                r.run_id,
            )
        })
    };
    let Some((id, engine_id, request, items, created_by, created_at, run_id)) = row else {
        return Ok(None);
    };
    Ok(Some(PreviewRow {
        id,
        engine_id,
        request: decode(request, "cleanup_previews.request")?,
        items: decode(items, "cleanup_previews.items")?,
        created_by,
        created_at,
        run_id,
    }))
}

/// Ties a preview to the run applying it, unless another run has it.
/// Returns the run that has it now.
pub async fn claim_for_run(conn: &mut PgConnection, id: i64, run_id: i64) -> sqlx::Result<i64> {
    let r = sqlx::query_scalar!(
        "UPDATE cleanup_previews SET run_id = $2 WHERE id = $1 AND run_id IS NULL RETURNING run_id",
        id,
        run_id
    )
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(Some(r)) = r {
        return Ok(r);
    }
    let now: Option<Option<i64>> =
        sqlx::query_scalar!("SELECT run_id FROM cleanup_previews WHERE id = $1", id)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(now.flatten().unwrap_or(0))
}

/// The Docker volumes backup plans name on engine `engine` (a source
/// without an engine names the volume on every engine): (plan, volume).
/// Disabled plans count too: they still mean the volume matters.
pub async fn backup_volumes(
    conn: &mut PgConnection,
    engine: &str,
) -> sqlx::Result<Vec<(String, String)>> {
    let rows = sqlx::query!("SELECT name, sources FROM backup_plans ORDER BY name")
        .fetch_all(conn)
        .await?;
    let mut out = Vec::new();
    for r in rows {
        let sources: Vec<BackupSource> = decode(r.sources, "backup_plans.sources")?;
        for s in sources {
            if let BackupSource::Volume { volume, engine: e } = s {
                if e.as_deref().is_none_or(|e| e == engine) {
                    out.push((r.name.clone(), volume));
                }
            }
        }
    }
    Ok(out)
}

/// The images services on engine `engine_id` (or on no engine in
/// particular) may go back to: every version whose update is not decided
/// yet (`running`), and each service's two newest versions.
pub async fn protected_images(
    conn: &mut PgConnection,
    engine_id: i64,
) -> sqlx::Result<Vec<Protected>> {
    let rows = sqlx::query!(
        r#"SELECT v.image_id AS "image_id!", s.name AS "service!", v.outcome AS "outcome!",
                  v.rank AS "rank!"
           FROM (SELECT image_id, service_id, outcome,
                        row_number() OVER (PARTITION BY service_id ORDER BY started_at DESC, id DESC) AS rank
                 FROM image_versions) v
           JOIN services s ON s.id = v.service_id
           WHERE (v.outcome = 'running' OR v.rank <= 2)
             AND (s.engine_id IS NULL OR s.engine_id = $1)
           ORDER BY s.name, v.rank"#,
        engine_id
    )
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| Protected {
            image_id: r.image_id,
            service: r.service,
            why: if r.outcome == "running" {
                Protection::Unconfirmed
            } else {
                Protection::Recent
            },
        })
        .collect())
}

/// An engine's name.
pub async fn engine_name(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("SELECT name FROM engines WHERE id = $1", id)
        .fetch_optional(conn)
        .await
}

/// The id of a runbook by name.
pub async fn runbook_id(conn: &mut PgConnection, name: &str) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!("SELECT id FROM runbooks WHERE name = $1", name)
        .fetch_optional(conn)
        .await
}
