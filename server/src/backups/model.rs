//! Reading the catalog, and checking targets and plans at the boundary.

use std::collections::BTreeMap;

use opsdeck_wire::{
    BackupArtifact, BackupSource, BackupStatus, BackupSummary, BackupTarget, PlanWrite, S3Settings,
    TargetKind, TargetWrite, Verification,
};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use crate::error::{ApiError, ApiResult};

pub const SUMMARY: &str =
    "SELECT b.id, b.plan_name, coalesce(t.name, '(removed)') AS target, b.status, b.verification,
        b.trigger, b.requested_by, b.started_at, b.finished_at, b.bytes, b.raw_bytes, b.error,
        b.verify_error, b.run_id, b.verified_at
     FROM backups b LEFT JOIN backup_targets t ON t.id = b.target_id";

pub fn summary_of(r: &PgRow) -> BackupSummary {
    BackupSummary {
        id: r.get("id"),
        plan: r.get("plan_name"),
        target: r.get("target"),
        status: BackupStatus::parse(r.get("status")).unwrap_or(BackupStatus::Failed),
        verification: Verification::parse(r.get("verification")).unwrap_or(Verification::Failed),
        trigger: r.get("trigger"),
        requested_by: r.get("requested_by"),
        started_at: r.get("started_at"),
        finished_at: r.get("finished_at"),
        bytes: r.get("bytes"),
        raw_bytes: r.get("raw_bytes"),
        error: r.get("error"),
        verify_error: r.get("verify_error"),
        run_id: r.get("run_id"),
    }
}

pub async fn artifacts(conn: &mut PgConnection, backup: i64) -> sqlx::Result<Vec<BackupArtifact>> {
    let rows = sqlx::query(
        "SELECT idx, source, kind, object_key, bytes, raw_bytes, sha256, tool, duration_ms, stats,
                status, error
         FROM backup_artifacts WHERE backup_id = $1 ORDER BY idx",
    )
    .bind(backup)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .iter()
        .map(|r| BackupArtifact {
            idx: r.get("idx"),
            source: r.get("source"),
            kind: r.get("kind"),
            object_key: r.get("object_key"),
            bytes: r.get("bytes"),
            raw_bytes: r.get("raw_bytes"),
            sha256: r.get("sha256"),
            tool: r.get("tool"),
            duration_ms: r.get("duration_ms"),
            stats: serde_json::from_value::<BTreeMap<String, i64>>(r.get("stats"))
                .unwrap_or_default(),
            status: r.get("status"),
            error: r.get("error"),
        })
        .collect())
}

/// A target row (`id, name, kind, config, secret_set, created_at`) as the
/// API shows it: never the secret.
pub fn target_of(r: &PgRow) -> BackupTarget {
    let config: serde_json::Value = r.get("config");
    let kind: String = r.get("kind");
    let (kind, path, s3) = match kind.as_str() {
        "s3" => (
            TargetKind::S3,
            String::new(),
            serde_json::from_value::<S3Settings>(config).ok(),
        ),
        _ => (
            TargetKind::Local,
            config
                .get("path")
                .and_then(|p| p.as_str())
                .unwrap_or_default()
                .to_owned(),
            None,
        ),
    };
    BackupTarget {
        id: r.get("id"),
        def: TargetWrite {
            name: r.get("name"),
            kind,
            path,
            s3,
            secret_access_key: None,
        },
        secret_set: r.get("secret_set"),
        created_at: r.get("created_at"),
    }
}

/// A checked target, ready to store.
pub struct CheckedTarget {
    /// `local` or `s3`.
    pub kind: &'static str,
    pub config: serde_json::Value,
    /// S3: the secret access key to store (the new one, or the stored one
    /// kept); `None` for local targets.
    pub secret: Option<String>,
}

pub fn name_ok(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= 63
        && chars
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Checks a target. A local directory must be absolute without `..`, and
/// is created (0700) when missing. An S3 target needs its settings and a
/// secret access key (`stored` is the one kept on update when none is
/// given); a probe object is written, read back and removed, so a target
/// that cannot store backups is refused with the reason.
pub async fn check_target(
    t: &mut TargetWrite,
    stored: Option<String>,
) -> Result<CheckedTarget, String> {
    t.name = t.name.trim().to_owned();
    if !name_ok(&t.name) {
        return Err("name: lower-case letters, digits, . _ - (at most 63)".into());
    }
    match t.kind {
        TargetKind::Local => {
            t.path = t.path.trim().to_owned();
            t.s3 = None;
            t.secret_access_key = None;
            super::storage::LocalStore::open(&t.path)
                .await
                .map_err(|e| {
                    if e.starts_with("path") {
                        e
                    } else {
                        format!("path: {e}")
                    }
                })?;
            Ok(CheckedTarget {
                kind: "local",
                config: serde_json::json!({ "path": t.path }),
                secret: None,
            })
        }
        TargetKind::S3 => {
            t.path = String::new();
            let Some(s3) = t.s3.as_mut() else {
                return Err("s3: the endpoint, bucket and access key of the S3 target".into());
            };
            let given = t.secret_access_key.take().filter(|s| !s.is_empty());
            let secret = given.or(stored).ok_or_else(|| {
                "secret_access_key: the secret access key of the S3 target".to_owned()
            })?;
            let store = super::storage::S3Store::new(s3, &secret)?;
            // Stored as checked: trimmed, the default region filled in.
            *s3 = store.settings();
            store.probe().await?;
            let config = serde_json::to_value(&*s3).map_err(|e| format!("s3: {e}"))?;
            Ok(CheckedTarget {
                kind: "s3",
                config,
                secret: Some(secret),
            })
        }
    }
}

/// Checks a plan against the inventory: its target exists; a Postgres or
/// MariaDB source names a service with such a check, a volume source a
/// Docker volume name and a registered engine (or none when only one is
/// registered: resolved when the backup runs), a files source an absolute
/// path without `..` (normalised; it must exist only when the backup
/// runs). Returns the target id.
pub async fn check_plan(conn: &mut PgConnection, p: &mut PlanWrite) -> ApiResult<i64> {
    p.name = p.name.trim().to_owned();
    if !name_ok(&p.name) {
        return Err(ApiError::invalid_field(
            "name",
            "lower-case letters, digits, . _ - (at most 63)",
        ));
    }
    if !(1..=19).contains(&p.zstd_level) {
        return Err(ApiError::invalid_field("zstd_level", "1 to 19"));
    }
    if p.sources.is_empty() || p.sources.len() > 50 {
        return Err(ApiError::invalid_field("sources", "1 to 50 sources"));
    }
    for (i, s) in p.sources.iter_mut().enumerate() {
        match s {
            BackupSource::Postgres { service, databases } => {
                *service = service.trim().to_owned();
                let has_check: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM checks c JOIN services s ON s.id = c.service_id
                                    WHERE s.name = $1 AND c.kind = 'postgres')",
                )
                .bind(&*service)
                .fetch_one(&mut *conn)
                .await?;
                if !has_check {
                    return Err(ApiError::invalid_field(
                        format!("sources[{i}].service"),
                        format!(
                            "\"{}\" is not a service with a Postgres check",
                            service.escape_default()
                        ),
                    ));
                }
                databases.retain(|d| !d.trim().is_empty());
                if databases.iter().any(|d| d.len() > 63 || d.contains('\0')) {
                    return Err(ApiError::invalid_field(
                        format!("sources[{i}].databases"),
                        "names of at most 63 bytes",
                    ));
                }
            }
            BackupSource::Mariadb { service, databases } => {
                *service = service.trim().to_owned();
                let has_check: bool = sqlx::query_scalar(
                    "SELECT EXISTS (SELECT 1 FROM checks c JOIN services s ON s.id = c.service_id
                                    WHERE s.name = $1 AND c.kind = 'mysql')",
                )
                .bind(&*service)
                .fetch_one(&mut *conn)
                .await?;
                if !has_check {
                    return Err(ApiError::invalid_field(
                        format!("sources[{i}].service"),
                        format!(
                            "\"{}\" is not a service with a MariaDB/MySQL check",
                            service.escape_default()
                        ),
                    ));
                }
                databases.retain(|d| !d.trim().is_empty());
                if let Some(d) = databases.iter().find(|d| !super::mariadb::valid_db_name(d)) {
                    return Err(ApiError::invalid_field(
                        format!("sources[{i}].databases"),
                        format!("\"{}\" is not a MariaDB database name", d.escape_default()),
                    ));
                }
            }
            BackupSource::Volume { volume, engine } => {
                *volume = volume.trim().to_owned();
                if !super::volumes::valid_volume_name(volume) {
                    return Err(ApiError::invalid_field(
                        format!("sources[{i}].volume"),
                        "a Docker volume name ([A-Za-z0-9][A-Za-z0-9_.-]*)",
                    ));
                }
                *engine = engine
                    .as_deref()
                    .map(str::trim)
                    .filter(|e| !e.is_empty())
                    .map(str::to_owned);
                let engines: Vec<String> =
                    sqlx::query_scalar("SELECT name FROM engines ORDER BY id")
                        .fetch_all(&mut *conn)
                        .await?;
                match engine {
                    Some(e) if !engines.contains(e) => {
                        return Err(ApiError::invalid_field(
                            format!("sources[{i}].engine"),
                            format!("no Docker engine named \"{}\"", e.escape_default()),
                        ))
                    }
                    None if engines.len() > 1 => {
                        return Err(ApiError::invalid_field(
                            format!("sources[{i}].engine"),
                            "several engines are registered; name one",
                        ))
                    }
                    _ => {}
                }
            }
            BackupSource::Files { path } => {
                let p = super::files::check_path(path).map_err(|e| {
                    ApiError::invalid_field(format!("sources[{i}].path"), format!("{e}"))
                })?;
                *path = p.to_string_lossy().into_owned();
            }
        }
    }
    let target: Option<i64> = sqlx::query_scalar("SELECT id FROM backup_targets WHERE name = $1")
        .bind(p.target.trim())
        .fetch_optional(&mut *conn)
        .await?;
    target.ok_or_else(|| {
        ApiError::invalid_field(
            "target",
            format!("no backup target named \"{}\"", p.target.escape_default()),
        )
    })
}

/// A file name for an object key part: `[a-z0-9._-]`, others become `_`.
pub fn key_part(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('.')
        .chars()
        .take(100)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_parts_are_safe_file_names() {
        assert_eq!(
            key_part("postgres:ledger/Ledger DB"),
            "postgres_ledger_ledger_db"
        );
        assert_eq!(key_part("../../etc"), "_.._etc");
        assert!(!key_part("..").contains(".."));
        assert_eq!(key_part("a.b-c_d"), "a.b-c_d");
    }

    #[test]
    fn names_follow_the_inventory_format() {
        assert!(name_ok("nightly-db.1"));
        assert!(!name_ok("Nightly"));
        assert!(!name_ok("-x"));
        assert!(!name_ok(""));
        assert!(!name_ok(&"a".repeat(64)));
    }
}
