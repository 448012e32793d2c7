//! The SQL of health checks: definitions, state changes, rollups, events,
//! settings and the services' public opt-in. Every statement is
//! compile-checked (`query!`/`query_as!`); the two rollup tables have one
//! statement each rather than a table name spliced in.
//!
//! The engine's lease (`pg_try_advisory_lock` on its own connection) stays
//! with the lease code in `engine.rs`.

use chrono::{DateTime, Utc};
use opsdeck_wire::{CheckEvent, CheckStatus, HealthSettings, Rollup, Uptime};
use sqlx::{PgConnection, PgPool};

use crate::secrets::{self, Field};

/// A check as the API reads it (joined with its service's name).
pub struct CheckRow {
    pub id: i64,
    pub service_id: Option<i64>,
    pub service: Option<String>,
    pub name: String,
    pub spec: serde_json::Value,
    pub has_secret: bool,
    pub token: Option<String>,
    pub interval_s: i32,
    pub timeout_ms: i32,
    pub fail_after: i32,
    pub recover_after: i32,
    pub enabled: bool,
    pub status: String,
    pub status_since: Option<DateTime<Utc>>,
    pub last_result: Option<serde_json::Value>,
    pub created_at: DateTime<Utc>,
}

/// Every check (of one service, or host checks with `service_id = 0`).
pub async fn list(pool: &PgPool, service_id: Option<i64>) -> sqlx::Result<Vec<CheckRow>> {
    sqlx::query_as!(
        CheckRow,
        r#"SELECT c.id, c.service_id, s.name AS "service?", c.name, c.spec,
                  c.secret IS NOT NULL AS "has_secret!", c.heartbeat_token AS token, c.interval_s,
                  c.timeout_ms, c.fail_after, c.recover_after, c.enabled, c.status, c.status_since,
                  c.last_result, c.created_at
           FROM checks c LEFT JOIN services s ON s.id = c.service_id
           WHERE $1::bigint IS NULL OR COALESCE(c.service_id, 0) = $1
           ORDER BY s.name NULLS FIRST, c.name"#,
        service_id
    )
    .fetch_all(pool)
    .await
}

pub async fn get(pool: &PgPool, id: i64) -> sqlx::Result<Option<CheckRow>> {
    sqlx::query_as!(
        CheckRow,
        r#"SELECT c.id, c.service_id, s.name AS "service?", c.name, c.spec,
                  c.secret IS NOT NULL AS "has_secret!", c.heartbeat_token AS token, c.interval_s,
                  c.timeout_ms, c.fail_after, c.recover_after, c.enabled, c.status, c.status_since,
                  c.last_result, c.created_at
           FROM checks c LEFT JOIN services s ON s.id = c.service_id
           WHERE c.id = $1"#,
        id
    )
    .fetch_optional(pool)
    .await
}

pub async fn service_exists(conn: &mut PgConnection, id: i64) -> sqlx::Result<bool> {
    Ok(
        sqlx::query_scalar!("SELECT id FROM services WHERE id = $1", id)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

pub async fn exists(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    Ok(
        sqlx::query_scalar!("SELECT id FROM checks WHERE id = $1", id)
            .fetch_optional(pool)
            .await?
            .is_some(),
    )
}

/// The columns of a check that the API writes.
pub struct CheckWrite<'a> {
    pub name: &'a str,
    pub spec: serde_json::Value,
    pub interval_s: i32,
    pub timeout_ms: i32,
    pub fail_after: i32,
    pub recover_after: i32,
    pub enabled: bool,
}

/// Inserts a check. The id is reserved first so the password and token
/// are sealed bound to their row (see `crate::secrets`); the token is also
/// stored as its SHA-256 for pings.
pub async fn insert(
    conn: &mut PgConnection,
    service_id: Option<i64>,
    kind: &str,
    w: CheckWrite<'_>,
    password: Option<&str>,
    token: Option<&str>,
) -> sqlx::Result<i64> {
    let id: i64 =
        sqlx::query_scalar!(r#"SELECT nextval(pg_get_serial_sequence('checks', 'id')) AS "id!""#)
            .fetch_one(&mut *conn)
            .await?;
    let sealed = password
        .map(|p| secrets::seal(Field::CheckPassword, id, p))
        .transpose()
        .map_err(secrets::as_sqlx)?;
    let sealed_token = token
        .map(|t| secrets::seal(Field::HeartbeatToken, id, t))
        .transpose()
        .map_err(secrets::as_sqlx)?;
    let hash = token.map(secrets::token_hash);
    sqlx::query_scalar!(
        r#"INSERT INTO checks (id, service_id, name, kind, spec, secret, heartbeat_token,
                               heartbeat_token_hash, interval_s, timeout_ms, fail_after,
                               recover_after, enabled)
           OVERRIDING SYSTEM VALUE
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING id"#,
        id,
        service_id,
        w.name,
        kind,
        w.spec,
        sealed,
        sealed_token,
        hash,
        w.interval_s,
        w.timeout_ms,
        w.fail_after,
        w.recover_after,
        w.enabled
    )
    .fetch_one(conn)
    .await
}

/// `password`: `None` keeps the stored one, `Some(None)` removes it.
pub async fn update(
    conn: &mut PgConnection,
    id: i64,
    w: CheckWrite<'_>,
    password: Option<Option<&str>>,
) -> sqlx::Result<()> {
    let sealed = match password {
        Some(Some(p)) => Some(Some(
            secrets::seal(Field::CheckPassword, id, p).map_err(secrets::as_sqlx)?,
        )),
        Some(None) => Some(None),
        None => None,
    };
    let password = sealed.as_ref().map(|p| p.as_deref());
    sqlx::query!(
        r#"UPDATE checks SET name = $2, spec = $3, interval_s = $4, timeout_ms = $5, fail_after = $6,
                  recover_after = $7, enabled = $8,
                  secret = CASE WHEN $9 THEN $10 ELSE secret END, updated_at = now()
           WHERE id = $1"#,
        id,
        w.name,
        w.spec,
        w.interval_s,
        w.timeout_ms,
        w.fail_after,
        w.recover_after,
        w.enabled,
        password.is_some(),
        password.flatten()
    )
    .execute(conn)
    .await
    .map(drop)
}

/// Deletes a check with its history; its name when it existed.
pub async fn delete(conn: &mut PgConnection, id: i64) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!("DELETE FROM checks WHERE id = $1 RETURNING name", id)
        .fetch_optional(conn)
        .await
}

struct RollupRow {
    bucket: DateTime<Utc>,
    probes: i32,
    ok: i32,
    warning: i32,
    critical: i32,
    latency_min: Option<f64>,
    latency_max: Option<f64>,
    latency_sum: f64,
    latency_count: i32,
}

/// A check's rollups of the last `days` days, per minute or per hour.
pub async fn rollups(pool: &PgPool, id: i64, hourly: bool, days: i32) -> sqlx::Result<Vec<Rollup>> {
    let rows = if hourly {
        sqlx::query_as!(
            RollupRow,
            r#"SELECT bucket, probes, ok, warning, critical, latency_min, latency_max, latency_sum, latency_count
               FROM check_rollups_hour WHERE check_id = $1 AND bucket > now() - make_interval(days => $2)
               ORDER BY bucket"#,
            id,
            days
        )
        .fetch_all(pool)
        .await?
    } else {
        sqlx::query_as!(
            RollupRow,
            r#"SELECT bucket, probes, ok, warning, critical, latency_min, latency_max, latency_sum, latency_count
               FROM check_rollups_minute WHERE check_id = $1 AND bucket > now() - make_interval(days => $2)
               ORDER BY bucket"#,
            id,
            days
        )
        .fetch_all(pool)
        .await?
    };
    Ok(rows
        .into_iter()
        .map(|r| Rollup {
            at: r.bucket,
            probes: r.probes as u32,
            ok: r.ok as u32,
            warning: r.warning as u32,
            critical: r.critical as u32,
            latency_min_ms: r.latency_min,
            latency_avg_ms: (r.latency_count > 0).then(|| r.latency_sum / r.latency_count as f64),
            latency_max_ms: r.latency_max,
        })
        .collect())
}

/// A check's state changes of the last `days` days, newest first (500 at most).
pub async fn events(pool: &PgPool, id: i64, days: i32) -> sqlx::Result<Vec<CheckEvent>> {
    let rows = sqlx::query!(
        r#"SELECT id, check_id, at, from_status, to_status, message FROM check_events
           WHERE check_id = $1 AND at > now() - make_interval(days => $2)
           ORDER BY at DESC, id DESC LIMIT 500"#,
        id,
        days
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| CheckEvent {
            id: r.id,
            check_id: r.check_id,
            at: r.at,
            from: CheckStatus::parse(&r.from_status).unwrap_or_default(),
            to: CheckStatus::parse(&r.to_status).unwrap_or_default(),
            message: r.message,
        })
        .collect())
}

/// Uptime over 24 h / 7 d / 30 d from the hourly rollups.
pub async fn uptime_of(pool: &PgPool, id: i64) -> sqlx::Result<Uptime> {
    let r = sqlx::query!(
        r#"SELECT
             sum(ok + warning) FILTER (WHERE bucket > now() - interval '24 hours')::float8 AS g1,
             sum(probes) FILTER (WHERE bucket > now() - interval '24 hours')::float8 AS t1,
             sum(ok + warning) FILTER (WHERE bucket > now() - interval '7 days')::float8 AS g7,
             sum(probes) FILTER (WHERE bucket > now() - interval '7 days')::float8 AS t7,
             sum(ok + warning)::float8 AS g30, sum(probes)::float8 AS t30
           FROM check_rollups_hour WHERE check_id = $1 AND bucket > now() - interval '30 days'"#,
        id
    )
    .fetch_one(pool)
    .await?;
    let pct = |good: Option<f64>, total: Option<f64>| -> Option<f64> {
        total
            .filter(|t| *t > 0.0)
            .map(|t| 100.0 * good.unwrap_or(0.0) / t)
    };
    Ok(Uptime {
        day: pct(r.g1, r.t1),
        week: pct(r.g7, r.t7),
        month: pct(r.g30, r.t30),
    })
}

pub async fn settings(pool: &PgPool) -> sqlx::Result<HealthSettings> {
    let r = sqlx::query!(
        "SELECT minute_retention_days, hour_retention_days, event_retention_days, report_time FROM health_settings"
    )
    .fetch_one(pool)
    .await?;
    Ok(HealthSettings {
        minute_retention_days: r.minute_retention_days as u32,
        hour_retention_days: r.hour_retention_days as u32,
        event_retention_days: r.event_retention_days as u32,
        report_time: r.report_time,
    })
}

pub async fn put_settings(conn: &mut PgConnection, s: &HealthSettings) -> sqlx::Result<()> {
    sqlx::query!(
        r#"UPDATE health_settings SET minute_retention_days = $1, hour_retention_days = $2,
                  event_retention_days = $3, report_time = $4"#,
        s.minute_retention_days as i32,
        s.hour_retention_days as i32,
        s.event_retention_days as i32,
        s.report_time
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// Deletes rollups and events older than the retention settings.
pub async fn prune(pool: &PgPool) -> sqlx::Result<u64> {
    let s = settings(pool).await?;
    let minute = sqlx::query!(
        "DELETE FROM check_rollups_minute WHERE bucket < now() - make_interval(days => $1)",
        s.minute_retention_days as i32
    )
    .execute(pool)
    .await?
    .rows_affected();
    let hour = sqlx::query!(
        "DELETE FROM check_rollups_hour WHERE bucket < now() - make_interval(days => $1)",
        s.hour_retention_days as i32
    )
    .execute(pool)
    .await?
    .rows_affected();
    let events = sqlx::query!(
        "DELETE FROM check_events WHERE at < now() - make_interval(days => $1)",
        s.event_retention_days as i32
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(minute + hour + events)
}

/// Sets a service's public opt-in; the service's name when it exists.
pub async fn set_public(
    conn: &mut PgConnection,
    service_id: i64,
    public: bool,
    public_name: Option<&str>,
) -> sqlx::Result<Option<String>> {
    sqlx::query_scalar!(
        "UPDATE services SET public_status = $2, public_name = $3 WHERE id = $1 RETURNING name",
        service_id,
        public,
        public_name
    )
    .fetch_optional(conn)
    .await
}

// ------------------------------------------------------------------ engine

/// A check's definition and persisted state, as the engine loads it.
pub struct DefRow {
    pub id: i64,
    pub service_id: Option<i64>,
    pub name: String,
    pub spec: serde_json::Value,
    pub secret: Option<String>,
    pub heartbeat_token: Option<String>,
    pub interval_s: i32,
    pub timeout_ms: i32,
    pub fail_after: i32,
    pub recover_after: i32,
    pub enabled: bool,
    pub status: String,
    pub status_since: Option<DateTime<Utc>>,
    pub last_result: Option<serde_json::Value>,
    pub last_heartbeat_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Every check's definition, or one check's.
pub async fn defs(pool: &PgPool, id: Option<i64>) -> sqlx::Result<Vec<DefRow>> {
    sqlx::query_as!(
        DefRow,
        r#"SELECT id, service_id, name, spec, secret, heartbeat_token, interval_s, timeout_ms,
                  fail_after, recover_after, enabled, status, status_since, last_result,
                  last_heartbeat_at, created_at
           FROM checks WHERE $1::bigint IS NULL OR id = $1"#,
        id
    )
    .fetch_all(pool)
    .await
}

/// Each service's public opt-in: (id, public, public name).
pub async fn public_settings(
    conn: &mut PgConnection,
) -> sqlx::Result<Vec<(i64, bool, Option<String>)>> {
    Ok(
        sqlx::query!("SELECT id, public_status, public_name FROM services")
            .fetch_all(conn)
            .await?
            .into_iter()
            .map(|r| (r.id, r.public_status, r.public_name))
            .collect(),
    )
}

/// Notes a heartbeat ping; the check's id when a check has `token`
/// (looked up by its SHA-256: the ping path never decrypts).
pub async fn heartbeat(pool: &PgPool, token: &str, at: DateTime<Utc>) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "UPDATE checks SET last_heartbeat_at = $2 WHERE heartbeat_token_hash = $1 RETURNING id",
        secrets::token_hash(token),
        at
    )
    .fetch_optional(pool)
    .await
}

/// A heartbeat by check id (the scoped-token route): like [`heartbeat`],
/// for a heartbeat check (one that has a token) only.
pub async fn heartbeat_by_id(
    pool: &PgPool,
    id: i64,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<i64>> {
    sqlx::query_scalar!(
        "UPDATE checks SET last_heartbeat_at = $2
          WHERE id = $1 AND heartbeat_token_hash IS NOT NULL RETURNING id",
        id,
        at
    )
    .fetch_optional(pool)
    .await
}

/// Settled state changes, column-wise (one row per change).
#[derive(Default)]
pub struct ChangeCols {
    pub ids: Vec<i64>,
    pub ats: Vec<DateTime<Utc>>,
    pub froms: Vec<String>,
    pub tos: Vec<String>,
    pub messages: Vec<String>,
    pub results: Vec<serde_json::Value>,
}

/// Writes a batch of state changes in one transaction (`check_events` rows
/// and the checks' settled state); returns the events written. Checks
/// deleted meanwhile drop out through the join.
pub async fn write_changes(pool: &PgPool, c: &ChangeCols) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query!(
        r#"INSERT INTO check_events (check_id, at, from_status, to_status, message)
           SELECT u.id, u.at, u.f, u.t, u.m
           FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[])
                AS u(id, at, f, t, m)
           JOIN checks c ON c.id = u.id"#,
        &c.ids,
        &c.ats,
        &c.froms,
        &c.tos,
        &c.messages
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query!(
        r#"UPDATE checks c SET status = u.t, status_since = u.at, last_result = u.r
           FROM UNNEST($1::bigint[], $2::timestamptz[], $3::text[], $4::jsonb[]) AS u(id, at, t, r)
           WHERE c.id = u.id"#,
        &c.ids,
        &c.ats,
        &c.tos,
        &c.results
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Finished minutes of rollups, column-wise (one row per check and minute).
#[derive(Default)]
pub struct RollupCols {
    pub id: Vec<i64>,
    pub bucket: Vec<DateTime<Utc>>,
    pub p: Vec<i32>,
    pub o: Vec<i32>,
    pub w: Vec<i32>,
    pub c: Vec<i32>,
    pub lmin: Vec<Option<f64>>,
    pub lmax: Vec<Option<f64>>,
    pub ls: Vec<f64>,
    pub lc: Vec<i32>,
}

/// Adds finished minutes to the minute and hour rollups in one transaction
/// (sum + count, so partial flushes add up).
pub async fn add_rollups(pool: &PgPool, cols: &RollupCols) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query!(
        r#"INSERT INTO check_rollups_minute AS r (check_id, bucket, probes, ok, warning, critical,
                                latency_min, latency_max, latency_sum, latency_count)
           SELECT u.id, u.bucket, sum(u.p), sum(u.o), sum(u.w), sum(u.c),
                  min(u.lmin), max(u.lmax), sum(u.ls), sum(u.lc)
           FROM UNNEST($1::bigint[], $2::timestamptz[], $3::int[], $4::int[], $5::int[], $6::int[],
                       $7::float8[], $8::float8[], $9::float8[], $10::int[])
                AS u(id, bucket, p, o, w, c, lmin, lmax, ls, lc)
           JOIN checks ch ON ch.id = u.id
           GROUP BY u.id, u.bucket
           ON CONFLICT (check_id, bucket) DO UPDATE SET
             probes = r.probes + excluded.probes,
             ok = r.ok + excluded.ok,
             warning = r.warning + excluded.warning,
             critical = r.critical + excluded.critical,
             latency_min = LEAST(r.latency_min, excluded.latency_min),
             latency_max = GREATEST(r.latency_max, excluded.latency_max),
             latency_sum = r.latency_sum + excluded.latency_sum,
             latency_count = r.latency_count + excluded.latency_count"#,
        &cols.id,
        &cols.bucket,
        &cols.p,
        &cols.o,
        &cols.w,
        &cols.c,
        &cols.lmin as &[Option<f64>],
        &cols.lmax as &[Option<f64>],
        &cols.ls,
        &cols.lc
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        r#"INSERT INTO check_rollups_hour AS r (check_id, bucket, probes, ok, warning, critical,
                                latency_min, latency_max, latency_sum, latency_count)
           SELECT u.id, date_trunc('hour', u.bucket), sum(u.p), sum(u.o), sum(u.w), sum(u.c),
                  min(u.lmin), max(u.lmax), sum(u.ls), sum(u.lc)
           FROM UNNEST($1::bigint[], $2::timestamptz[], $3::int[], $4::int[], $5::int[], $6::int[],
                       $7::float8[], $8::float8[], $9::float8[], $10::int[])
                AS u(id, bucket, p, o, w, c, lmin, lmax, ls, lc)
           JOIN checks ch ON ch.id = u.id
           GROUP BY u.id, date_trunc('hour', u.bucket)
           ON CONFLICT (check_id, bucket) DO UPDATE SET
             probes = r.probes + excluded.probes,
             ok = r.ok + excluded.ok,
             warning = r.warning + excluded.warning,
             critical = r.critical + excluded.critical,
             latency_min = LEAST(r.latency_min, excluded.latency_min),
             latency_max = GREATEST(r.latency_max, excluded.latency_max),
             latency_sum = r.latency_sum + excluded.latency_sum,
             latency_count = r.latency_count + excluded.latency_count"#,
        &cols.id,
        &cols.bucket,
        &cols.p,
        &cols.o,
        &cols.w,
        &cols.c,
        &cols.lmin as &[Option<f64>],
        &cols.lmax as &[Option<f64>],
        &cols.ls,
        &cols.lc
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Per-minute latency of the last `minutes` minutes: (check, bucket, sum, count).
pub async fn recent_latency(
    pool: &PgPool,
    minutes: i32,
) -> sqlx::Result<Vec<(i64, DateTime<Utc>, f64, i32)>> {
    Ok(sqlx::query!(
        r#"SELECT check_id, bucket, latency_sum, latency_count
           FROM check_rollups_minute WHERE bucket > now() - make_interval(mins => $1)
           ORDER BY bucket"#,
        minutes
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.check_id, r.bucket, r.latency_sum, r.latency_count))
    .collect())
}

/// Each check's good and total probes over the last 24 hours.
pub async fn day_counts(pool: &PgPool) -> sqlx::Result<Vec<(i64, f64, f64)>> {
    Ok(sqlx::query!(
        r#"SELECT check_id, sum(ok + warning)::float8 AS "good!", sum(probes)::float8 AS "total!"
           FROM check_rollups_hour WHERE bucket > now() - interval '24 hours'
           GROUP BY check_id"#
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .map(|r| (r.check_id, r.good, r.total))
    .collect())
}

/// A stored Prometheus check as a rules import compares it: its server,
/// query and name.
pub struct PromRow {
    pub id: i64,
    pub service_id: Option<i64>,
    pub name: String,
    pub url: String,
    pub query: String,
}

/// Every Prometheus check (a rules import never creates one twice).
pub async fn prometheus_checks(conn: &mut PgConnection) -> sqlx::Result<Vec<PromRow>> {
    sqlx::query_as!(
        PromRow,
        r#"SELECT id, service_id, name, spec->>'url' AS "url!", spec->>'query' AS "query!"
           FROM checks WHERE kind = 'prometheus' ORDER BY id"#
    )
    .fetch_all(conn)
    .await
}

/// `(service id or 0, name)` of every check with one of `names`.
pub async fn names_taken(
    conn: &mut PgConnection,
    names: &[String],
) -> sqlx::Result<Vec<(i64, String)>> {
    let rows = sqlx::query!(
        r#"SELECT COALESCE(service_id, 0) AS "service_id!", name FROM checks
           WHERE name = ANY($1)"#,
        names
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.service_id, r.name)).collect())
}

/// Every service's id and name.
pub async fn service_names(conn: &mut PgConnection) -> sqlx::Result<Vec<(i64, String)>> {
    let rows = sqlx::query!("SELECT id, name FROM services ORDER BY name")
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.id, r.name)).collect())
}
