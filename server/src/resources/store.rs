//! The SQL of resource history: series ids, batched rollup writes (minute
//! and hour in one transaction), retention, points for the charts, the
//! forecast sums and the capacity report's aggregates.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use opsdeck_wire::ResourcePoint;
use sqlx::PgPool;

use super::SeriesKey;

/// Column arrays of a batch of rollup rows (one per series and minute).
#[derive(Debug, Default)]
pub struct RollupCols {
    pub series: Vec<i64>,
    pub bucket: Vec<DateTime<Utc>>,
    pub samples: Vec<i32>,
    pub cpu_sum: Vec<f64>,
    pub cpu_max: Vec<Option<f64>>,
    pub mem_sum: Vec<f64>,
    pub mem_max: Vec<Option<i64>>,
    pub mem_limit: Vec<Option<i64>>,
    pub net_rx: Vec<i64>,
    pub net_tx: Vec<i64>,
    pub blk_read: Vec<i64>,
    pub blk_write: Vec<i64>,
    pub disk_used: Vec<Option<i64>>,
    pub disk_total: Vec<Option<i64>>,
}

/// The ids of `keys`' series, created when missing. A key whose service
/// or engine is gone has no id.
pub async fn resolve(pool: &PgPool, keys: &[SeriesKey]) -> sqlx::Result<HashMap<SeriesKey, i64>> {
    let mut kinds = Vec::new();
    let mut services = Vec::new();
    let mut engines = Vec::new();
    let mut mounts = Vec::new();
    for k in keys {
        let (s, e, m) = k.columns();
        kinds.push(k.kind().to_owned());
        services.push(s);
        engines.push(e);
        mounts.push(m);
    }
    sqlx::query!(
        r#"INSERT INTO resource_series (kind, service_id, engine_id, mount)
           SELECT k.kind, k.service_id, k.engine_id, k.mount
           FROM UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[]) AS k(kind, service_id, engine_id, mount)
           WHERE (k.service_id IS NULL OR EXISTS (SELECT 1 FROM services s WHERE s.id = k.service_id))
             AND (k.engine_id IS NULL OR EXISTS (SELECT 1 FROM engines e WHERE e.id = k.engine_id))
           ON CONFLICT (kind, COALESCE(service_id, 0), COALESCE(engine_id, 0), COALESCE(mount, ''))
           DO NOTHING"#,
        &kinds,
        &services as &[Option<i64>],
        &engines as &[Option<i64>],
        &mounts as &[Option<String>],
    )
    .execute(pool)
    .await?;
    let rows = sqlx::query!(
        r#"SELECT s.id, s.kind, s.service_id, s.engine_id, s.mount
           FROM resource_series s
           JOIN UNNEST($1::text[], $2::int8[], $3::int8[], $4::text[]) AS k(kind, service_id, engine_id, mount)
             ON s.kind = k.kind AND COALESCE(s.service_id, 0) = COALESCE(k.service_id, 0)
            AND COALESCE(s.engine_id, 0) = COALESCE(k.engine_id, 0)
            AND COALESCE(s.mount, '') = COALESCE(k.mount, '')"#,
        &kinds,
        &services as &[Option<i64>],
        &engines as &[Option<i64>],
        &mounts as &[Option<String>],
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            Some((
                SeriesKey::from_columns(&r.kind, r.service_id, r.engine_id, r.mount)?,
                r.id,
            ))
        })
        .collect())
}

/// Adds a batch into the minute and hour tables (one statement each, in
/// one transaction); rows of series deleted meanwhile are skipped. Returns
/// the minute rows written.
pub async fn write_rollups(pool: &PgPool, c: &RollupCols) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let n = sqlx::query!(
        r#"INSERT INTO resource_rollups_minute AS r (series_id, bucket, samples, cpu_sum, cpu_max,
                mem_sum, mem_max, mem_limit, net_rx, net_tx, blk_read, blk_write, disk_used, disk_total)
           SELECT u.id, u.bucket, u.samples, u.cpu_sum, u.cpu_max, u.mem_sum, u.mem_max, u.mem_limit,
                  u.net_rx, u.net_tx, u.blk_read, u.blk_write, u.disk_used, u.disk_total
           FROM UNNEST($1::int8[], $2::timestamptz[], $3::int4[], $4::float8[], $5::float8[],
                       $6::float8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[],
                       $12::int8[], $13::int8[], $14::int8[])
                AS u(id, bucket, samples, cpu_sum, cpu_max, mem_sum, mem_max, mem_limit, net_rx, net_tx,
                     blk_read, blk_write, disk_used, disk_total)
           JOIN resource_series s ON s.id = u.id
           ON CONFLICT (series_id, bucket) DO UPDATE SET
             samples = r.samples + excluded.samples,
             cpu_sum = r.cpu_sum + excluded.cpu_sum,
             cpu_max = GREATEST(r.cpu_max, excluded.cpu_max),
             mem_sum = r.mem_sum + excluded.mem_sum,
             mem_max = GREATEST(r.mem_max, excluded.mem_max),
             mem_limit = GREATEST(r.mem_limit, excluded.mem_limit),
             net_rx = r.net_rx + excluded.net_rx,
             net_tx = r.net_tx + excluded.net_tx,
             blk_read = r.blk_read + excluded.blk_read,
             blk_write = r.blk_write + excluded.blk_write,
             disk_used = GREATEST(r.disk_used, excluded.disk_used),
             disk_total = GREATEST(r.disk_total, excluded.disk_total)"#,
        &c.series,
        &c.bucket,
        &c.samples,
        &c.cpu_sum,
        &c.cpu_max as &[Option<f64>],
        &c.mem_sum,
        &c.mem_max as &[Option<i64>],
        &c.mem_limit as &[Option<i64>],
        &c.net_rx,
        &c.net_tx,
        &c.blk_read,
        &c.blk_write,
        &c.disk_used as &[Option<i64>],
        &c.disk_total as &[Option<i64>],
    )
    .execute(&mut *tx)
    .await?
    .rows_affected();
    sqlx::query!(
        r#"INSERT INTO resource_rollups_hour AS r (series_id, bucket, samples, cpu_sum, cpu_max,
                mem_sum, mem_max, mem_limit, net_rx, net_tx, blk_read, blk_write, disk_used, disk_total)
           SELECT u.id, date_trunc('hour', u.bucket), sum(u.samples)::int4, sum(u.cpu_sum), max(u.cpu_max),
                  sum(u.mem_sum), max(u.mem_max), max(u.mem_limit), sum(u.net_rx)::int8,
                  sum(u.net_tx)::int8, sum(u.blk_read)::int8, sum(u.blk_write)::int8,
                  max(u.disk_used), max(u.disk_total)
           FROM UNNEST($1::int8[], $2::timestamptz[], $3::int4[], $4::float8[], $5::float8[],
                       $6::float8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[], $11::int8[],
                       $12::int8[], $13::int8[], $14::int8[])
                AS u(id, bucket, samples, cpu_sum, cpu_max, mem_sum, mem_max, mem_limit, net_rx, net_tx,
                     blk_read, blk_write, disk_used, disk_total)
           JOIN resource_series s ON s.id = u.id
           GROUP BY u.id, date_trunc('hour', u.bucket)
           ON CONFLICT (series_id, bucket) DO UPDATE SET
             samples = r.samples + excluded.samples,
             cpu_sum = r.cpu_sum + excluded.cpu_sum,
             cpu_max = GREATEST(r.cpu_max, excluded.cpu_max),
             mem_sum = r.mem_sum + excluded.mem_sum,
             mem_max = GREATEST(r.mem_max, excluded.mem_max),
             mem_limit = GREATEST(r.mem_limit, excluded.mem_limit),
             net_rx = r.net_rx + excluded.net_rx,
             net_tx = r.net_tx + excluded.net_tx,
             blk_read = r.blk_read + excluded.blk_read,
             blk_write = r.blk_write + excluded.blk_write,
             disk_used = GREATEST(r.disk_used, excluded.disk_used),
             disk_total = GREATEST(r.disk_total, excluded.disk_total)"#,
        &c.series,
        &c.bucket,
        &c.samples,
        &c.cpu_sum,
        &c.cpu_max as &[Option<f64>],
        &c.mem_sum,
        &c.mem_max as &[Option<i64>],
        &c.mem_limit as &[Option<i64>],
        &c.net_rx,
        &c.net_tx,
        &c.blk_read,
        &c.blk_write,
        &c.disk_used as &[Option<i64>],
        &c.disk_total as &[Option<i64>],
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(n)
}

/// Removes rows past the check rollups' retention (`health_settings`:
/// minute rows 2 days, hour rows 400 days by default).
pub async fn purge(pool: &PgPool) -> sqlx::Result<u64> {
    let minute = sqlx::query!(
        "DELETE FROM resource_rollups_minute
         WHERE bucket < now() - make_interval(days => (SELECT minute_retention_days FROM health_settings))"
    )
    .execute(pool)
    .await?
    .rows_affected();
    let hour = sqlx::query!(
        "DELETE FROM resource_rollups_hour
         WHERE bucket < now() - make_interval(days => (SELECT hour_retention_days FROM health_settings))"
    )
    .execute(pool)
    .await?
    .rows_affected();
    Ok(minute + hour)
}

/// A series and what the pages call it.
#[derive(Debug, Clone)]
pub struct SeriesRow {
    pub id: i64,
    pub kind: String,
    pub service_id: Option<i64>,
    pub mount: Option<String>,
    pub label: String,
}

/// The series of a service (none before its first sample).
pub async fn service_series(pool: &PgPool, service_id: i64) -> sqlx::Result<Vec<SeriesRow>> {
    let rows = sqlx::query!(
        r#"SELECT r.id, r.kind, r.service_id, r.mount, s.name
           FROM resource_series r JOIN services s ON s.id = r.service_id
           WHERE r.kind = 'service' AND r.service_id = $1"#,
        service_id
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| SeriesRow {
            id: r.id,
            kind: r.kind,
            service_id: r.service_id,
            mount: r.mount,
            label: r.name,
        })
        .collect())
}

/// The host's series: the host, its mounts, then each engine's containers.
pub async fn host_series(pool: &PgPool) -> sqlx::Result<Vec<SeriesRow>> {
    let rows = sqlx::query!(
        r#"SELECT r.id, r.kind, r.service_id, r.mount, e.name AS "engine?"
           FROM resource_series r LEFT JOIN engines e ON e.id = r.engine_id
           WHERE r.kind IN ('host', 'mount', 'engine')
           ORDER BY CASE r.kind WHEN 'host' THEN 0 WHEN 'mount' THEN 1 ELSE 2 END, r.mount, e.name"#
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let label = match r.kind.as_str() {
                "host" => "host".to_owned(),
                "mount" => r.mount.clone().unwrap_or_default(),
                _ => format!("engine {}", r.engine.clone().unwrap_or_default()),
            };
            SeriesRow {
                id: r.id,
                kind: r.kind,
                service_id: r.service_id,
                mount: r.mount,
                label,
            }
        })
        .collect())
}

struct PointRow {
    series_id: i64,
    bucket: DateTime<Utc>,
    samples: i32,
    cpu_sum: f64,
    cpu_max: Option<f64>,
    mem_sum: f64,
    mem_max: Option<i64>,
    mem_limit: Option<i64>,
    net_rx: i64,
    net_tx: i64,
    blk_read: i64,
    blk_write: i64,
    disk_used: Option<i64>,
    disk_total: Option<i64>,
}

impl PointRow {
    /// The wire point; rates over a bucket of `secs` seconds.
    fn point(self, secs: f64) -> (i64, ResourcePoint) {
        let n = self.samples.max(0) as u32;
        let per = |v: i64| v as f64 / secs;
        (
            self.series_id,
            ResourcePoint {
                at: self.bucket,
                samples: n,
                cpu_avg: (n > 0 && self.cpu_max.is_some()).then(|| self.cpu_sum / n as f64),
                cpu_max: self.cpu_max,
                mem_avg: (n > 0 && self.mem_max.is_some()).then(|| self.mem_sum / n as f64),
                mem_max: self.mem_max,
                mem_limit: self.mem_limit,
                net_rx_bps: per(self.net_rx),
                net_tx_bps: per(self.net_tx),
                blk_read_bps: per(self.blk_read),
                blk_write_bps: per(self.blk_write),
                disk_used: self.disk_used,
                disk_total: self.disk_total,
            },
        )
    }
}

/// The points of `series` since `since`, per minute or per hour.
pub async fn points(
    pool: &PgPool,
    series: &[i64],
    hourly: bool,
    since: DateTime<Utc>,
) -> sqlx::Result<Vec<(i64, ResourcePoint)>> {
    let (rows, secs) = if hourly {
        let rows = sqlx::query_as!(
            PointRow,
            r#"SELECT series_id, bucket, samples, cpu_sum, cpu_max, mem_sum, mem_max, mem_limit,
                      net_rx, net_tx, blk_read, blk_write, disk_used, disk_total
               FROM resource_rollups_hour WHERE series_id = ANY($1) AND bucket >= $2
               ORDER BY series_id, bucket"#,
            series,
            since
        )
        .fetch_all(pool)
        .await?;
        (rows, 3600.0)
    } else {
        let rows = sqlx::query_as!(
            PointRow,
            r#"SELECT series_id, bucket, samples, cpu_sum, cpu_max, mem_sum, mem_max, mem_limit,
                      net_rx, net_tx, blk_read, blk_write, disk_used, disk_total
               FROM resource_rollups_minute WHERE series_id = ANY($1) AND bucket >= $2
               ORDER BY series_id, bucket"#,
            series,
            since
        )
        .fetch_all(pool)
        .await?;
        (rows, 60.0)
    };
    Ok(rows.into_iter().map(|r| r.point(secs)).collect())
}

/// A series' hourly points over a forecast window, as sums.
#[derive(Debug, Clone)]
pub struct ForecastRow {
    pub kind: String,
    pub service_id: Option<i64>,
    pub mount: Option<String>,
    pub label: String,
    pub sums: super::forecast::Sums,
    /// The latest hourly value and capacity.
    pub last: Option<f64>,
    pub capacity: Option<f64>,
    /// Days between the first point and now.
    pub span_days: f64,
}

/// Which series a forecast query covers.
#[derive(Debug, Clone, Default)]
pub struct ForecastFilter {
    pub service_id: Option<i64>,
    /// `mount`, `service` or `host`; every one of them when `None`.
    pub kind: Option<&'static str>,
    pub mount: Option<String>,
}

/// The forecast sums of the memory (services, the host) and disk (mounts)
/// series over the `days` before `now`: x = days relative to `now`, y = the
/// hour's average memory or largest disk use, in bytes.
pub async fn forecast_sums(
    pool: &PgPool,
    now: DateTime<Utc>,
    days: i32,
    f: &ForecastFilter,
) -> sqlx::Result<Vec<ForecastRow>> {
    let rows = sqlx::query!(
        r#"WITH h AS (
             SELECT r.series_id, r.bucket,
                    (EXTRACT(EPOCH FROM (r.bucket - $1::timestamptz)) / 86400.0)::float8 AS x,
                    CASE WHEN s.kind = 'mount' THEN r.disk_used::float8
                         WHEN r.mem_max IS NULL THEN NULL
                         ELSE r.mem_sum / NULLIF(r.samples, 0) END AS y,
                    CASE WHEN s.kind = 'mount' THEN r.disk_total ELSE r.mem_limit END AS cap
             FROM resource_rollups_hour r JOIN resource_series s ON s.id = r.series_id
             WHERE r.bucket >= $1 - make_interval(days => $2) AND r.bucket <= $1
               AND s.kind IN ('service', 'host', 'mount')
               AND ($3::text IS NULL OR s.kind = $3)
               AND ($4::int8 IS NULL OR s.service_id = $4)
               AND ($5::text IS NULL OR s.mount = $5))
           SELECT s.kind, s.service_id, s.mount, sv.name AS "service?",
                  count(*)::float8 AS "n!", sum(h.x) AS "sx!", sum(h.y) AS "sy!",
                  sum(h.x * h.x) AS "sxx!", sum(h.x * h.y) AS "sxy!", sum(h.y * h.y) AS "syy!",
                  min(h.x) AS "min_x!",
                  (array_agg(h.y ORDER BY h.bucket DESC))[1] AS last,
                  (array_agg(h.cap::float8 ORDER BY h.bucket DESC) FILTER (WHERE h.cap IS NOT NULL))[1] AS capacity
           FROM h JOIN resource_series s ON s.id = h.series_id
           LEFT JOIN services sv ON sv.id = s.service_id
           WHERE h.y IS NOT NULL
           GROUP BY s.id, sv.name
           ORDER BY s.kind, sv.name, s.mount"#,
        now,
        days,
        f.kind,
        f.service_id,
        f.mount
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let label = match r.kind.as_str() {
                "mount" => format!("disk {}", r.mount.clone().unwrap_or_default()),
                "host" => "memory of the host".to_owned(),
                _ => format!("memory of {}", r.service.clone().unwrap_or_default()),
            };
            ForecastRow {
                kind: r.kind,
                service_id: r.service_id,
                mount: r.mount,
                label,
                sums: super::forecast::Sums {
                    n: r.n,
                    sx: r.sx,
                    sy: r.sy,
                    sxx: r.sxx,
                    sxy: r.sxy,
                    syy: r.syy,
                },
                last: r.last,
                capacity: r.capacity,
                span_days: -r.min_x,
            }
        })
        .collect())
}

/// One series' figures over a month and the month before.
#[derive(Debug, Clone)]
pub struct MonthRow {
    pub kind: String,
    pub service_id: Option<i64>,
    pub label: String,
    pub hours: i64,
    pub cpu_avg: Option<f64>,
    pub cpu_peak: Option<f64>,
    pub mem_avg: Option<f64>,
    pub mem_peak: Option<i64>,
    pub mem_limit: Option<i64>,
    pub disk_first: Option<i64>,
    pub disk_last: Option<i64>,
    pub disk_total: Option<i64>,
    pub prev_cpu_avg: Option<f64>,
    pub prev_mem_avg: Option<f64>,
    pub prev_disk_last: Option<i64>,
}

/// Every service, host and mount series with hourly rows in
/// [`start`, `end`), with the month before (`prev`..`start`).
pub async fn month(
    pool: &PgPool,
    prev: DateTime<Utc>,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> sqlx::Result<Vec<MonthRow>> {
    let rows = sqlx::query!(
        r#"SELECT s.kind, s.service_id, s.mount, sv.name AS "service?",
                  count(*) FILTER (WHERE r.bucket >= $2) AS "hours!",
                  sum(r.cpu_sum) FILTER (WHERE r.bucket >= $2 AND r.cpu_max IS NOT NULL)
                    / NULLIF(sum(r.samples) FILTER (WHERE r.bucket >= $2 AND r.cpu_max IS NOT NULL), 0) AS cpu_avg,
                  max(r.cpu_max) FILTER (WHERE r.bucket >= $2) AS cpu_peak,
                  sum(r.mem_sum) FILTER (WHERE r.bucket >= $2 AND r.mem_max IS NOT NULL)
                    / NULLIF(sum(r.samples) FILTER (WHERE r.bucket >= $2 AND r.mem_max IS NOT NULL), 0) AS mem_avg,
                  max(r.mem_max) FILTER (WHERE r.bucket >= $2) AS mem_peak,
                  max(r.mem_limit) FILTER (WHERE r.bucket >= $2) AS mem_limit,
                  (array_agg(r.disk_used ORDER BY r.bucket) FILTER (WHERE r.bucket >= $2 AND r.disk_used IS NOT NULL))[1] AS disk_first,
                  (array_agg(r.disk_used ORDER BY r.bucket DESC) FILTER (WHERE r.bucket >= $2 AND r.disk_used IS NOT NULL))[1] AS disk_last,
                  (array_agg(r.disk_total ORDER BY r.bucket DESC) FILTER (WHERE r.bucket >= $2 AND r.disk_total IS NOT NULL))[1] AS disk_total,
                  sum(r.cpu_sum) FILTER (WHERE r.bucket < $2 AND r.cpu_max IS NOT NULL)
                    / NULLIF(sum(r.samples) FILTER (WHERE r.bucket < $2 AND r.cpu_max IS NOT NULL), 0) AS prev_cpu_avg,
                  sum(r.mem_sum) FILTER (WHERE r.bucket < $2 AND r.mem_max IS NOT NULL)
                    / NULLIF(sum(r.samples) FILTER (WHERE r.bucket < $2 AND r.mem_max IS NOT NULL), 0) AS prev_mem_avg,
                  (array_agg(r.disk_used ORDER BY r.bucket DESC) FILTER (WHERE r.bucket < $2 AND r.disk_used IS NOT NULL))[1] AS prev_disk_last
           FROM resource_rollups_hour r
           JOIN resource_series s ON s.id = r.series_id
           LEFT JOIN services sv ON sv.id = s.service_id
           WHERE r.bucket >= $1 AND r.bucket < $3 AND s.kind IN ('service', 'host', 'mount')
           GROUP BY s.id, sv.name
           HAVING count(*) FILTER (WHERE r.bucket >= $2) > 0"#,
        prev,
        start,
        end
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| MonthRow {
            label: match r.kind.as_str() {
                "mount" => format!("disk {}", r.mount.clone().unwrap_or_default()),
                "host" => "host".to_owned(),
                _ => r.service.clone().unwrap_or_default(),
            },
            kind: r.kind,
            service_id: r.service_id,
            hours: r.hours,
            cpu_avg: r.cpu_avg,
            cpu_peak: r.cpu_peak,
            mem_avg: r.mem_avg,
            mem_peak: r.mem_peak,
            mem_limit: r.mem_limit,
            disk_first: r.disk_first,
            disk_last: r.disk_last,
            disk_total: r.disk_total,
            prev_cpu_avg: r.prev_cpu_avg,
            prev_mem_avg: r.prev_mem_avg,
            prev_disk_last: r.prev_disk_last,
        })
        .collect())
}

/// Whether a service exists.
pub async fn service_exists(pool: &PgPool, id: i64) -> sqlx::Result<bool> {
    sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM services WHERE id = $1) AS "exists!""#,
        id
    )
    .fetch_one(pool)
    .await
}
