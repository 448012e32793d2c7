//! The update's rows: the crash journal (`image_update_journal`, one row
//! per container being replaced, its `phase` written before each engine
//! step) and the version history (`image_versions`).
//!
//! Version rows: the version a service runs has `ended_at` NULL. An update
//! adds a `running` row for the new image; the gate turns it `confirmed`
//! (and ends the previous row) or `rolled_back` (ended: the previous row
//! stays the current one); recovery after a crash turns it `interrupted`,
//! ended or not depending on which container it kept. A service updated for
//! the first time gets an `observed` row for the image it ran before, so
//! "go back to this version" has something to point at.

use chrono::{DateTime, Utc};
use opsdeck_wire::ImageVersion;
use sqlx::PgPool;

/// Default gate when a service has no settings row (seconds).
pub const DEFAULT_GATE_SECONDS: u32 = 120;

/// The service's gate time (`service_update_settings.gate_seconds`, else
/// [`DEFAULT_GATE_SECONDS`]).
pub async fn gate_seconds(pool: &PgPool, service_id: i64) -> sqlx::Result<u32> {
    let s: Option<i32> = sqlx::query_scalar!(
        "SELECT gate_seconds FROM service_update_settings WHERE service_id = $1",
        service_id
    )
    .fetch_optional(pool)
    .await?;
    Ok(s.and_then(|s| u32::try_from(s).ok())
        .unwrap_or(DEFAULT_GATE_SECONDS))
}

/// One unfinished journal row.
#[derive(Debug, Clone)]
pub struct JournalRow {
    pub id: i64,
    pub run_id: Option<i64>,
    pub service_id: i64,
    pub engine_id: i64,
    pub container_name: String,
    pub old_container_id: String,
    pub old_image_id: String,
    pub new_container_id: Option<String>,
    pub new_image_id: Option<String>,
    pub phase: String,
    pub updated_at: DateTime<Utc>,
}

/// What a new journal row records.
pub struct NewRow<'a> {
    pub run_id: i64,
    pub service_id: i64,
    pub engine_id: i64,
    pub container_name: &'a str,
    pub old_container_id: &'a str,
    pub old_image_id: &'a str,
    pub new_image_id: &'a str,
    pub phase: &'a str,
}

/// Writes a journal row (before the first engine step on its container).
pub async fn journal_open(pool: &PgPool, r: &NewRow<'_>) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO image_update_journal
             (run_id, service_id, engine_id, container_name, old_container_id, old_image_id,
              new_image_id, phase)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        r.run_id,
        r.service_id,
        r.engine_id,
        r.container_name,
        r.old_container_id,
        r.old_image_id,
        r.new_image_id,
        r.phase,
    )
    .fetch_one(pool)
    .await
}

/// Records the phase a row enters (before its engine step).
pub async fn journal_phase(pool: &PgPool, id: i64, phase: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE image_update_journal SET phase = $2, updated_at = now() WHERE id = $1",
        id,
        phase
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Records the new container's id.
pub async fn journal_new_container(pool: &PgPool, id: i64, container: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE image_update_journal SET new_container_id = $2, updated_at = now() WHERE id = $1",
        id,
        container
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Finishes a row with its final phase.
pub async fn journal_finish(pool: &PgPool, id: i64, phase: &str) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE image_update_journal SET phase = $2, finished = true, updated_at = now()
         WHERE id = $1",
        id,
        phase
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Unfinished rows whose run no longer runs (ended, or deleted), or — with
/// `service` — every unfinished row of that service whose run is not
/// running or is `this_run` (a resumed run recovers its own leftovers).
pub async fn journal_orphans(
    pool: &PgPool,
    service: Option<i64>,
    this_run: Option<i64>,
) -> sqlx::Result<Vec<JournalRow>> {
    let rows = sqlx::query!(
        "SELECT j.id, j.run_id, j.service_id, j.engine_id, j.container_name, j.old_container_id,
                j.old_image_id, j.new_container_id, j.new_image_id, j.phase, j.updated_at
         FROM image_update_journal j LEFT JOIN runs r ON r.id = j.run_id
         WHERE NOT j.finished
           AND ($1::bigint IS NULL OR j.service_id = $1)
           AND (r.id IS NULL OR r.status NOT IN ('queued', 'running', 'waiting')
                OR r.id = $2::bigint)
         ORDER BY j.id",
        service,
        this_run,
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| JournalRow {
            id: r.id,
            run_id: r.run_id,
            service_id: r.service_id,
            engine_id: r.engine_id,
            container_name: r.container_name,
            old_container_id: r.old_container_id,
            old_image_id: r.old_image_id,
            new_container_id: r.new_container_id,
            new_image_id: r.new_image_id,
            phase: r.phase,
            updated_at: r.updated_at,
        })
        .collect())
}

/// Adds an `observed` row for the image a service runs when it has no
/// current version yet.
pub async fn observe_current(
    pool: &PgPool,
    service_id: i64,
    image_ref: &str,
    digest: Option<&str>,
    image_id: &str,
) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO image_versions (service_id, image_ref, digest, image_id, actor, outcome)
         SELECT $1, $2, $3, $4, 'observed', 'observed'
         WHERE NOT EXISTS (SELECT 1 FROM image_versions WHERE service_id = $1 AND ended_at IS NULL)",
        service_id,
        image_ref,
        digest,
        image_id,
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Adds the `running` row of the version an update moves to.
pub async fn version_begin(
    pool: &PgPool,
    service_id: i64,
    image_ref: &str,
    digest: Option<&str>,
    image_id: &str,
    run_id: i64,
    actor: &str,
) -> sqlx::Result<i64> {
    sqlx::query_scalar!(
        "INSERT INTO image_versions (service_id, image_ref, digest, image_id, run_id, actor, outcome)
         VALUES ($1, $2, $3, $4, $5, $6, 'running') RETURNING id",
        service_id,
        image_ref,
        digest,
        image_id,
        run_id,
        actor,
    )
    .fetch_one(pool)
    .await
}

/// Ends the version row(s) of a move: `kept` makes the new version the
/// current one (the others end now); otherwise it ends itself. Applied to
/// the `running` rows of `run_id` on the service.
pub async fn version_end(
    pool: &PgPool,
    service_id: i64,
    run_id: Option<i64>,
    outcome: &str,
    kept: bool,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let ids: Vec<i64> = sqlx::query_scalar!(
        "UPDATE image_versions SET outcome = $3,
             ended_at = CASE WHEN $4 THEN NULL ELSE now() END
         WHERE service_id = $1 AND run_id IS NOT DISTINCT FROM $2 AND outcome = 'running'
         RETURNING id",
        service_id,
        run_id,
        outcome,
        kept,
    )
    .fetch_all(&mut *tx)
    .await?;
    if kept && !ids.is_empty() {
        sqlx::query!(
            "UPDATE image_versions SET ended_at = now()
             WHERE service_id = $1 AND ended_at IS NULL AND NOT (id = ANY($2))",
            service_id,
            &ids,
        )
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await
}

/// A service's versions, newest first.
pub async fn versions(pool: &PgPool, service_id: i64) -> sqlx::Result<Vec<ImageVersion>> {
    sqlx::query_as!(
        ImageVersion,
        "SELECT id, service_id, image_ref, digest, image_id, started_at, ended_at, run_id, actor,
                outcome
         FROM image_versions WHERE service_id = $1 ORDER BY started_at DESC, id DESC",
        service_id
    )
    .fetch_all(pool)
    .await
}

/// Whether a service exists.
pub async fn service_exists(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM services WHERE id = $1) AS "e!""#,
        id
    )
    .fetch_one(pool)
    .await
}

/// The enabled checks of a service: (id, name).
pub async fn service_checks(pool: &PgPool, service_id: i64) -> sqlx::Result<Vec<(i64, String)>> {
    Ok(sqlx::query!(
        "SELECT id, name FROM checks WHERE service_id = $1 AND enabled ORDER BY name",
        service_id
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.id, r.name))
    .collect())
}
