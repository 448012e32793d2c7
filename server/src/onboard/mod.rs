//! Onboarding a compose project: the inventory import and the checks it
//! proposes, previewed together and applied in one transaction.
//!
//! This module sits above `inventory` and `checks` (neither imports the
//! other): it runs the inventory's plan inside its own transaction
//! ([`crate::inventory::plan::plan_in`]), adds the proposed checks
//! ([`propose`]) the request selects, and writes the import's audit entry
//! plus one `check.create` entry per check in the same transaction, so a
//! failure leaves neither services nor checks behind. Check passwords are
//! sealed bound to their row, as the checks API stores them.
//!
//! Used by `POST /api/v1/inventory/compose` ([`api`]) and
//! `opsdeck import compose` (`cli`). The caller wakes the health engine
//! for the checks created ([`Applied::check_ids`]) after the commit.

pub mod api;
pub mod propose;

use std::collections::{BTreeMap, BTreeSet};

use opsdeck_wire::ImportPlan;
use serde_json::json;
use sqlx::{PgConnection, PgPool};

pub use api::router;

use crate::audit::{self, Actor, NewEntry};
use crate::checks::defs::{audit_params, validate_def, validate_target, CheckError, Valid};
use crate::checks::{
    store as check_store, DEFAULT_FAIL_AFTER, DEFAULT_INTERVAL_S, DEFAULT_RECOVER_AFTER,
    DEFAULT_TIMEOUT_MS,
};
use crate::inventory::compose::Loaded;
use crate::inventory::plan::{self, desired_from_compose, load_engines};
use crate::inventory::InventoryError;

/// What can go wrong; `error.rs` turns it into an answer.
#[derive(Debug, thiserror::Error)]
pub enum OnboardError {
    /// Input that breaks a rule (400); the message starts with the field.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Inventory(#[from] InventoryError),
    #[error(transparent)]
    Check(#[from] CheckError),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

/// A compose import with its checks.
pub struct ComposeImport<'a> {
    pub loaded: &'a Loaded,
    /// `compose` (files given) or `discovered` (read from a running
    /// project's host): the services' source and the audit action
    /// `inventory.<via>.{preview,apply}`.
    pub via: &'static str,
    /// The project name, already chosen and validated.
    pub project: String,
    /// Where the project name came from (`given`, `name`, …).
    pub project_source: Option<String>,
    pub engine: Option<String>,
    pub apply: bool,
    /// Keys of the proposals to create; `None`: the default rule (see
    /// [`propose::select`]).
    pub checks: Option<Vec<String>>,
    /// Passwords of database proposals, by key.
    pub passwords: BTreeMap<String, String>,
    /// Proposals left out after the selection (the CLI's `--skip-check`).
    pub unticked: Vec<String>,
    /// `OPSDECK_CHECKS_ALLOW_LINK_LOCAL`: HTTP checks are judged as the
    /// checks API judges them.
    pub allow_link_local: bool,
}

/// The result of an import.
pub struct Applied {
    pub plan: ImportPlan,
    /// Checks created (empty for a preview): the caller wakes the engine.
    pub check_ids: Vec<i64>,
}

/// Previews or applies a compose import and its proposed checks in one
/// transaction, audited as `actor` (`inventory.compose.{preview,apply}`,
/// plus `check.create` per check created).
pub async fn import_compose(
    pool: &PgPool,
    input: ComposeImport<'_>,
    actor: Actor,
    source: Option<String>,
    slots: Option<&crate::auth::RequestSlots>,
) -> Result<Applied, OnboardError> {
    let file = &input.loaded.file;
    let desired = desired_from_compose(file, &input.project, input.engine.as_deref(), input.via)?;
    let mut tx = pool.begin().await?;
    let mut plan = plan::plan_in(&mut tx, desired, input.apply).await?;
    let project_source = input.project_source.as_deref().unwrap_or("given");
    plan::describe_load(&mut plan, input.loaded, project_source);

    let endpoint = match &input.engine {
        Some(e) => load_engines(&mut tx)
            .await?
            .into_iter()
            .find(|d| &d.name == e)
            .map(|d| d.endpoint),
        None => None,
    };
    let host = propose::engine_host(endpoint.as_deref());
    let names: Vec<String> = file.services.keys().cloned().collect();
    let existing = existing_kinds(&mut tx, &names).await?;
    let mut checks = propose::propose(&file.services, &host, &existing);
    propose::select(&mut checks, input.checks.as_deref(), &input.passwords)
        .map_err(OnboardError::Invalid)?;
    propose::untick(&mut checks, &input.unticked).map_err(OnboardError::Invalid)?;

    let ids = service_ids(&mut tx, &names).await?;
    let mut created = Vec::new();
    for c in checks.iter().filter(|c| c.selected) {
        let mut v = Valid {
            service_id: ids.get(&c.service).copied(),
            name: c.name.clone(),
            spec: c.spec.clone(),
            interval_s: DEFAULT_INTERVAL_S,
            timeout_ms: DEFAULT_TIMEOUT_MS.min(DEFAULT_INTERVAL_S * 1000),
            fail_after: DEFAULT_FAIL_AFTER,
            recover_after: DEFAULT_RECOVER_AFTER,
            enabled: true,
        };
        let at = |e: CheckError| match e {
            CheckError::Invalid(m) => OnboardError::Invalid(format!("checks.{}: {m}", c.key)),
            other => other.into(),
        };
        // A preview of a new service has no id yet: validate the spec
        // alone (a container check needs its service, which the apply has).
        if v.service_id.is_none() && !input.apply {
            let mut s = v.spec.clone();
            crate::checks::validate_spec(&mut s)
                .map_err(|m| OnboardError::Invalid(format!("checks.{}: {m}", c.key)))?;
        } else {
            validate_def(&mut v).map_err(at)?;
        }
        validate_target(&v.spec, input.allow_link_local).map_err(at)?;
        if !input.apply {
            continue;
        }
        let password = input.passwords.get(&c.key).filter(|p| !p.is_empty());
        let id = check_store::insert(
            &mut tx,
            v.service_id,
            v.spec.kind(),
            v.columns().map_err(at)?,
            password.map(String::as_str),
            None,
        )
        .await
        .map_err(|e| at(CheckError::on_write(e, &v.name)))?;
        let mut params = audit_params(&v);
        params["id"] = json!(id);
        params["password_set"] = json!(password.is_some());
        params["import"] = json!({"project": input.project, "key": c.key});
        audit::record(
            &mut tx,
            NewEntry {
                actor: actor.clone(),
                action: "check.create".into(),
                target: Some(format!("check:{id}")),
                params,
                source: source.clone(),
                outcome: opsdeck_wire::Outcome::Success,
                detail: None,
            },
        )
        .await?;
        created.push(id);
    }
    plan.checks = checks;
    let selected: Vec<&str> = plan
        .checks
        .iter()
        .filter(|c| c.selected)
        .map(|c| c.key.as_str())
        .collect();
    plan::audit_import(
        &mut tx,
        &plan,
        actor,
        &format!("inventory.{}", input.via),
        source,
        json!({"checks": selected}),
    )
    .await?;
    tx.commit().await?;
    if let Some(s) = slots {
        s.mark_audited();
    }
    Ok(Applied {
        plan,
        check_ids: created,
    })
}

/// `(service, kind)` of every check the named services already have.
async fn existing_kinds(
    conn: &mut PgConnection,
    names: &[String],
) -> sqlx::Result<BTreeSet<(String, String)>> {
    let rows = sqlx::query!(
        r#"SELECT s.name, c.kind FROM checks c JOIN services s ON s.id = c.service_id
           WHERE s.name = ANY($1)"#,
        names
    )
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(|r| (r.name, r.kind)).collect())
}

/// Ids of the named services (those that exist).
async fn service_ids(
    conn: &mut PgConnection,
    names: &[String],
) -> sqlx::Result<BTreeMap<String, i64>> {
    let rows = sqlx::query!("SELECT id, name FROM services WHERE name = ANY($1)", names)
        .fetch_all(conn)
        .await?;
    Ok(rows.into_iter().map(|r| (r.name, r.id)).collect())
}
