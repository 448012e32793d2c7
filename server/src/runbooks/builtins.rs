//! The built-in runbooks: the handbooks' procedures ("Service down",
//! "Database connection issues", weekly maintenance, the checklists, …)
//! shipped as YAML definitions in `server/runbooks/`, one file per runbook.
//!
//! They are seeded once (version 1, `builtin = true`) and are ordinary,
//! editable runbooks from then on: [`seed`] never overwrites a runbook that
//! exists.

use opsdeck_wire::RunbookDef;
use sqlx::PgPool;

/// Who the seeded versions are attributed to.
pub const CREATED_BY: &str = "opsdeck";

/// `(file stem, YAML text)` of every shipped definition, in seeding order.
pub const FILES: &[(&str, &str)] = &[
    (
        "daily-health-check",
        include_str!("../../runbooks/daily-health-check.yaml"),
    ),
    (
        "service-down",
        include_str!("../../runbooks/service-down.yaml"),
    ),
    (
        "db-connection-issues",
        include_str!("../../runbooks/db-connection-issues.yaml"),
    ),
    (
        "db-pool-exhaustion",
        include_str!("../../runbooks/db-pool-exhaustion.yaml"),
    ),
    (
        "db-locks-report",
        include_str!("../../runbooks/db-locks-report.yaml"),
    ),
    (
        "weekly-maintenance",
        include_str!("../../runbooks/weekly-maintenance.yaml"),
    ),
    (
        "certificate-expiry-check",
        include_str!("../../runbooks/certificate-expiry-check.yaml"),
    ),
    (
        "scale-service",
        include_str!("../../runbooks/scale-service.yaml"),
    ),
    (
        "database-failover",
        include_str!("../../runbooks/database-failover.yaml"),
    ),
    (
        "morning-checklist",
        include_str!("../../runbooks/morning-checklist.yaml"),
    ),
    (
        "evening-checklist",
        include_str!("../../runbooks/evening-checklist.yaml"),
    ),
    (
        "maintenance-enable",
        include_str!("../../runbooks/maintenance-enable.yaml"),
    ),
    (
        "maintenance-disable",
        include_str!("../../runbooks/maintenance-disable.yaml"),
    ),
    ("backup-run", include_str!("../../runbooks/backup-run.yaml")),
    (
        "backup-drill",
        include_str!("../../runbooks/backup-drill.yaml"),
    ),
    (
        "backup-delete",
        include_str!("../../runbooks/backup-delete.yaml"),
    ),
    (
        "backup-verify",
        include_str!("../../runbooks/backup-verify.yaml"),
    ),
    (
        "backup-restore",
        include_str!("../../runbooks/backup-restore.yaml"),
    ),
    (
        "docker-cleanup",
        include_str!("../../runbooks/docker-cleanup.yaml"),
    ),
    (
        "image-update",
        include_str!("../../runbooks/image-update.yaml"),
    ),
    (
        "stack-update",
        include_str!("../../runbooks/stack-update.yaml"),
    ),
];

/// Parses one shipped file. The files are part of the build and checked by
/// the tests, so a failure here is a bug of Opsdeck itself.
fn parse(stem: &str, yaml: &str) -> RunbookDef {
    super::def::from_yaml(yaml)
        .unwrap_or_else(|e| panic!("built-in runbook {stem}.yaml does not parse: {e}"))
}

/// The shipped definitions (include_str! of each YAML file), parsed.
pub fn all() -> Vec<RunbookDef> {
    FILES.iter().map(|(stem, yaml)| parse(stem, yaml)).collect()
}

/// Inserts every built-in whose name is not in `runbooks` yet (version 1,
/// builtin = true, created_by "opsdeck"), in one transaction; returns how
/// many were added. Never overwrites: operators may have edited them.
///
/// Safe when several servers start at once: the insert of the name is
/// `ON CONFLICT DO NOTHING` (a concurrent seeder waits on the unique index,
/// then sees the row and skips it), and a version is only written for a row
/// this transaction created. Names are inserted in a fixed order, so two
/// seeders cannot deadlock.
pub async fn seed(pool: &PgPool) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    let mut added = 0u64;
    for (stem, yaml) in FILES {
        let def = parse(stem, yaml);
        let definition =
            serde_json::to_value(&def).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
        let id: Option<i64> = sqlx::query_scalar!(
            "INSERT INTO runbooks (name, builtin, current_version) VALUES ($1, true, 1) \
             ON CONFLICT (name) DO NOTHING RETURNING id",
            def.name,
        )
        .fetch_optional(&mut *tx)
        .await?;
        let Some(id) = id else { continue };
        sqlx::query!(
            "INSERT INTO runbook_versions (runbook_id, version, definition, yaml, created_by) \
             VALUES ($1, 1, $2, $3, $4)",
            id,
            definition,
            *yaml,
            CREATED_BY,
        )
        .execute(&mut *tx)
        .await?;
        added += 1;
    }
    tx.commit().await?;
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    use opsdeck_wire::{DbOp, OnFailure, ParamKind, Role, StepAction};
    use serde_json::Value;

    fn get(name: &str) -> RunbookDef {
        all()
            .into_iter()
            .find(|d| d.name == name)
            .unwrap_or_else(|| panic!("no built-in runbook {name}"))
    }

    fn kinds(d: &RunbookDef) -> Vec<&'static str> {
        d.steps.iter().map(|s| s.action.kind()).collect()
    }

    #[test]
    fn every_file_parses_and_validates() {
        for (stem, yaml) in FILES {
            let d = crate::runbooks::def::from_yaml(yaml)
                .unwrap_or_else(|e| panic!("{stem}.yaml: {e}"));
            crate::runbooks::def::validate(&d).unwrap_or_else(|e| panic!("{stem}.yaml: {e}"));
            assert!(!d.description.trim().is_empty(), "{stem}: a description");
            for s in d.steps.iter().chain(&d.rollback) {
                assert!(!s.title.trim().is_empty(), "{stem}.{}: a title", s.name);
                assert!(
                    !s.title.contains("{{"),
                    "{stem}.{}: titles are not templates",
                    s.name
                );
            }
            // What the server stores and exports reads back the same.
            let again = crate::runbooks::def::from_yaml(&crate::runbooks::def::to_yaml(&d))
                .unwrap_or_else(|e| panic!("{stem}: round trip: {e}"));
            assert_eq!(again, d, "{stem}: YAML round trip");
            let json: RunbookDef =
                serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
            assert_eq!(json, d, "{stem}: JSON round trip");
        }
    }

    /// Every key written in a file is one the definition knows: serde ignores
    /// unknown fields, so a typo (`on_falure:`) would silently vanish.
    #[test]
    fn files_have_no_unknown_keys() {
        fn walk(path: &str, written: &Value, parsed: &Value) {
            match (written, parsed) {
                (Value::Object(w), Value::Object(p)) => {
                    for (k, v) in w {
                        let here = format!("{path}.{k}");
                        let Some(pv) = p.get(k) else {
                            panic!("{here}: unknown key (or a value equal to its default)")
                        };
                        walk(&here, v, pv);
                    }
                }
                (Value::Array(w), Value::Array(p)) => {
                    assert_eq!(w.len(), p.len(), "{path}: length");
                    for (i, (a, b)) in w.iter().zip(p).enumerate() {
                        walk(&format!("{path}[{i}]"), a, b);
                    }
                }
                _ => {}
            }
        }
        for (stem, yaml) in FILES {
            let written: Value = serde_norway::from_str(yaml).expect("yaml");
            let parsed = serde_json::to_value(parse(stem, yaml)).expect("json");
            walk(stem, &written, &parsed);
        }
    }

    #[test]
    fn names_are_unique_and_equal_to_the_file_stem() {
        let mut seen = HashSet::new();
        for (stem, yaml) in FILES {
            let d = parse(stem, yaml);
            assert_eq!(&d.name, stem);
            assert!(seen.insert(d.name.clone()), "{stem} twice");
        }
        assert_eq!(all().len(), FILES.len());
    }

    #[test]
    fn every_yaml_file_in_the_directory_is_shipped() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("server/runbooks")
            .filter_map(|e| {
                let p = e.ok()?.path();
                (p.extension()? == "yaml")
                    .then(|| p.file_stem()?.to_str().map(str::to_owned))
                    .flatten()
            })
            .collect();
        on_disk.sort();
        let mut shipped: Vec<String> = FILES.iter().map(|(s, _)| (*s).to_owned()).collect();
        shipped.sort();
        assert_eq!(on_disk, shipped);
    }

    #[test]
    fn the_required_runbooks_exist() {
        let names: HashSet<String> = all().into_iter().map(|d| d.name).collect();
        for n in [
            "daily-health-check",
            "service-down",
            "db-connection-issues",
            "db-pool-exhaustion",
            "db-locks-report",
            "weekly-maintenance",
            "certificate-expiry-check",
            "scale-service",
            "database-failover",
            "morning-checklist",
            "evening-checklist",
        ] {
            assert!(names.contains(n), "{n} is missing");
        }
    }

    #[test]
    fn service_down_follows_the_handbook() {
        let d = get("service-down");
        assert_eq!(d.target_param.as_deref(), Some("service"));
        assert_eq!(
            kinds(&d)[..5],
            ["status", "logs", "container", "wait_healthy", "checks"]
        );
        assert!(matches!(
            d.steps[1].action,
            StepAction::Logs { lines: 100, .. }
        ));
        assert!(
            matches!(&d.steps[2].action, StepAction::Container { action, .. } if action == "restart")
        );
        for s in &d.steps[2..5] {
            assert_eq!(s.on_failure, OnFailure::Escalate, "{}", s.name);
        }
        assert!(matches!(d.params[0].kind, ParamKind::Service));
    }

    fn db_ops(d: &RunbookDef) -> Vec<(DbOp, Option<String>)> {
        d.steps
            .iter()
            .filter_map(|s| match &s.action {
                StepAction::Database { op, older_than, .. } => Some((*op, older_than.clone())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn database_runbooks_use_the_catalogue() {
        let d = get("db-connection-issues");
        assert_eq!(
            db_ops(&d),
            [
                (DbOp::ConnectionCounts, None),
                (DbOp::TerminateIdle, Some("1h".into())),
                (DbOp::ConnectionCounts, None),
            ]
        );

        let d = get("db-pool-exhaustion");
        assert!(db_ops(&d).contains(&(DbOp::TerminateActive, Some("{{params.older_than}}".into()))));
        let p = d.params.iter().find(|p| p.name == "older_than").unwrap();
        assert_eq!(
            p.kind,
            ParamKind::Duration {
                min: Some("1m".into()),
                max: None
            }
        );
        assert_eq!(p.default, Some(Value::from("5m")));

        let d = get("db-locks-report");
        assert_eq!(db_ops(&d)[0].0, DbOp::BlockingLocks);

        let d = get("daily-health-check");
        let ops: Vec<DbOp> = db_ops(&d).into_iter().map(|(o, _)| o).collect();
        assert_eq!(ops, [DbOp::ConnectionCounts, DbOp::CacheHitRatio]);
        assert!(d.steps.iter().any(|s| matches!(
            &s.action,
            StepAction::Checks { service: None, check_kind: Some(k) } if k == "host"
        )));
        assert!(matches!(d.params[0].kind, ParamKind::Database));
    }

    #[test]
    fn approval_gated_runbooks_carry_their_policy() {
        let d = get("weekly-maintenance");
        assert!(d.approval.is_none(), "only the prunes wait");
        let prunes: Vec<_> = d
            .steps
            .iter()
            .filter(|s| matches!(s.action, StepAction::Prune { .. }))
            .collect();
        assert_eq!(prunes.len(), 2, "images and volumes");
        for s in prunes {
            let p = s
                .approval
                .as_ref()
                .unwrap_or_else(|| panic!("{}: approval", s.name));
            assert!(p.required >= 1);
        }
        assert_eq!(db_ops(&d)[0].0, DbOp::VacuumAnalyze);
        let exec = d
            .steps
            .iter()
            .find_map(|s| match &s.action {
                StepAction::Exec { argv, .. } => Some(argv.clone()),
                _ => None,
            })
            .expect("log cleanup");
        assert_eq!(exec[0], "find");
        assert!(exec.iter().any(|a| a == "-delete"));

        let d = get("database-failover");
        let p = d.approval.as_ref().expect("runbook-level approval");
        assert_eq!(p.required, 1);
        assert_eq!(p.roles, [Role::Admin]);
        assert_eq!(kinds(&d)[0], "status");
        assert!(db_ops(&d).iter().any(|(o, _)| *o == DbOp::Promote));
        assert!(kinds(&d).contains(&"notify"));
        let standby = d.params.iter().find(|p| p.name == "standby").unwrap();
        assert!(matches!(standby.kind, ParamKind::Database));
    }

    #[test]
    fn the_other_runbooks_have_their_shape() {
        let d = get("certificate-expiry-check");
        assert!(matches!(
            &d.steps[0].action,
            StepAction::Checks { service: None, check_kind: Some(k) } if k == "tls"
        ));

        let d = get("scale-service");
        assert!(kinds(&d).contains(&"scale"));
        let r = d.params.iter().find(|p| p.name == "replicas").unwrap();
        assert_eq!(
            r.kind,
            ParamKind::Integer {
                min: Some(1),
                max: Some(10)
            }
        );

        for name in ["morning-checklist", "evening-checklist"] {
            let d = get(name);
            let k = kinds(&d);
            assert!(k.iter().filter(|k| **k == "manual").count() >= 3, "{name}");
            assert!(k.contains(&"checks"), "{name}: automatable items run");
        }
        // The checklist items are quoted from the handbook.
        let d = get("morning-checklist");
        assert!(d.steps.iter().any(|s| matches!(
            &s.action,
            StepAction::Manual { instructions } if instructions.contains("Check Grafana dashboard for overnight anomalies")
        )));
    }
}
