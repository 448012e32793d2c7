//! Imports as plans: a desired state (from a compose file, discovered
//! containers, or the inventory YAML) is compared with the stored inventory,
//! giving an [`ImportPlan`] the user previews; applying it writes the whole
//! plan in one transaction, or nothing.
//!
//! Compose imports and discovery are scoped to one compose project and
//! *merge*: they set only the fields a compose file knows (image, ports,
//! volumes, labels, container mapping, `depends_on` as compose edges) and
//! skip fields edited by hand. The inventory YAML is *authoritative*: the
//! inventory becomes exactly the document (engines included), so
//! export → import → export is the identity.
//!
//! Files: this one (the plan types, computing a plan, running an import),
//! `sources` (desired states from compose, discovery and YAML), `store`
//! (loading engines, applying a plan, export).

mod sources;
mod store;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use opsdeck_wire::{ChangeKind, FieldChange, ImportPlan, PlanChange};
use serde_json::json;

pub use sources::{
    compose_project, describe_load, desired_from_compose, desired_from_yaml, discover, guess_tier,
    image_repository,
};
pub use store::{apply, engine_plan, export, load_engines};

use super::{lock, yaml, Fields, InventoryError, Snapshot, FIELD_NAMES};
use crate::audit::{self, Actor, NewEntry};

/// One service as an import wants it.
#[derive(Debug, Clone)]
pub struct DesiredService {
    pub name: String,
    pub fields: Fields,
    /// The fields this import sets (the others are left as they are).
    pub provided: Vec<&'static str>,
    /// Dependencies this import sets.
    pub requires: BTreeSet<String>,
}

/// What an import wants the inventory to be.
#[derive(Debug, Clone)]
pub struct Desired {
    pub services: Vec<DesiredService>,
    /// `Some(project)`: a compose project (merge, edges sourced `compose`);
    /// `None`: the whole inventory (authoritative).
    pub project: Option<String>,
    /// `source` of services this import creates.
    pub source: &'static str,
    /// For the authoritative import: the engines (name → endpoint, TLS).
    pub engines: Option<Vec<yaml::EngineDoc>>,
}

/// A computed plan and what applying it writes.
pub struct Computed {
    pub plan: ImportPlan,
    desired: Desired,
    remove: Vec<i64>,
    /// name → (existing id, final fields, edited marks) for adds and updates.
    writes: Vec<(Option<i64>, String, Fields, Vec<String>)>,
    /// Services whose edges this import sets.
    edges_for: BTreeSet<String>,
}

fn is_authoritative(d: &Desired) -> bool {
    d.project.is_none()
}

/// Compares `desired` with `snapshot`, validates the result (acyclic), and
/// returns the plan.
pub fn compute(snapshot: &Snapshot, desired: Desired) -> Result<Computed, InventoryError> {
    let authoritative = is_authoritative(&desired);
    let wire = snapshot.to_wire();
    let existing: HashMap<&str, (&super::ServiceRow, &opsdeck_wire::Service)> = snapshot
        .services
        .iter()
        .zip(&wire)
        .map(|(r, w)| (r.name.as_str(), (r, w)))
        .collect();
    // Current edges by service name, split by source.
    let by_id = snapshot.by_id();
    let mut compose_edges: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut manual_edges: HashMap<String, BTreeSet<String>> = HashMap::new();
    for e in &snapshot.edges {
        if let (Some(a), Some(b)) = (by_id.get(&e.service_id), by_id.get(&e.requires_id)) {
            let map = if e.source == "compose" {
                &mut compose_edges
            } else {
                &mut manual_edges
            };
            map.entry(a.name.clone())
                .or_default()
                .insert(b.name.clone());
        }
    }

    // A compose project never takes over another project's services:
    // service names are global, so the same file imported under a second
    // project name (staging next to production) is refused, naming them.
    if let Some(project) = &desired.project {
        let taken: Vec<String> = desired
            .services
            .iter()
            .filter_map(|d| {
                let (row, _) = existing.get(d.name.as_str())?;
                let other = row.fields.compose_project.as_deref()?;
                (other != project).then(|| format!("{} (project {other})", d.name))
            })
            .collect();
        if !taken.is_empty() {
            return Err(InventoryError::Conflict(format!(
                "these services belong to another compose project: {}; service names are unique, \
                 so rename them in the file or remove them from the other project first",
                taken.join(", ")
            )));
        }
    }

    let mut changes = Vec::new();
    let mut writes = Vec::new();
    let mut edges_for = BTreeSet::new();
    let wanted: BTreeSet<&str> = desired.services.iter().map(|d| d.name.as_str()).collect();
    for d in &desired.services {
        match existing.get(d.name.as_str()) {
            None => {
                let fields = d.fields.clone();
                let mut fc: Vec<FieldChange> = FIELD_NAMES
                    .iter()
                    .filter(|f| !fields.show(f).is_empty())
                    .map(|f| FieldChange {
                        field: (*f).to_owned(),
                        old: String::new(),
                        new: fields.show(f),
                    })
                    .collect();
                if !d.requires.is_empty() {
                    fc.push(FieldChange {
                        field: "requires".into(),
                        old: String::new(),
                        new: join(&d.requires),
                    });
                }
                changes.push(PlanChange {
                    kind: ChangeKind::Add,
                    service: d.name.clone(),
                    fields: fc,
                    kept_manual: vec![],
                    // A tier no label or document gave was guessed from the image.
                    guessed: if d.provided.contains(&"tier") {
                        Vec::new()
                    } else {
                        vec!["tier".to_owned()]
                    },
                });
                writes.push((None, d.name.clone(), fields, vec![]));
                edges_for.insert(d.name.clone());
            }
            Some((row, w)) => {
                let mut fields = row.fields.clone();
                let mut fc = Vec::new();
                let mut kept = Vec::new();
                for f in &d.provided {
                    let (old, new) = (row.fields.show(f), d.fields.show(f));
                    if old == new {
                        continue;
                    }
                    if !authoritative && row.edited_fields.iter().any(|e| e == f) {
                        kept.push((*f).to_owned());
                        continue;
                    }
                    fields.take(&d.fields, f);
                    fc.push(FieldChange {
                        field: (*f).to_owned(),
                        old,
                        new,
                    });
                }
                let current: BTreeSet<String> = if authoritative {
                    w.requires.iter().cloned().collect()
                } else {
                    compose_edges.get(&d.name).cloned().unwrap_or_default()
                };
                if current != d.requires {
                    if !authoritative && row.edited_fields.iter().any(|e| e == "requires") {
                        kept.push("requires".into());
                    } else {
                        fc.push(FieldChange {
                            field: "requires".into(),
                            old: join(&current),
                            new: join(&d.requires),
                        });
                        edges_for.insert(d.name.clone());
                    }
                }
                let edited = if authoritative {
                    vec![]
                } else {
                    row.edited_fields.clone()
                };
                let kind = if fc.is_empty() && (edited == row.edited_fields) {
                    ChangeKind::Unchanged
                } else {
                    ChangeKind::Update
                };
                if kind == ChangeKind::Update || authoritative {
                    writes.push((Some(row.id), d.name.clone(), fields, edited));
                }
                changes.push(PlanChange {
                    kind,
                    service: d.name.clone(),
                    fields: fc,
                    kept_manual: kept,
                    guessed: Vec::new(),
                });
            }
        }
    }
    // Removals: in scope but not wanted.
    let mut remove = Vec::new();
    for row in &snapshot.services {
        let in_scope = match &desired.project {
            None => true,
            Some(p) => {
                row.fields.compose_project.as_deref() == Some(p.as_str())
                    && (row.source == "compose" || row.source == "discovered")
            }
        };
        if in_scope && !wanted.contains(row.name.as_str()) {
            remove.push(row.id);
            changes.push(PlanChange {
                kind: ChangeKind::Remove,
                service: row.name.clone(),
                fields: vec![],
                kept_manual: vec![],
                guessed: Vec::new(),
            });
        }
    }
    // The resulting graph must be acyclic.
    let removed: BTreeSet<&str> = remove
        .iter()
        .filter_map(|id| by_id.get(id).map(|r| r.name.as_str()))
        .collect();
    let mut names: BTreeSet<String> = snapshot
        .services
        .iter()
        .map(|s| s.name.clone())
        .filter(|n| !removed.contains(n.as_str()))
        .collect();
    names.extend(desired.services.iter().map(|d| d.name.clone()));
    let desired_by_name: HashMap<&str, &DesiredService> = desired
        .services
        .iter()
        .map(|d| (d.name.as_str(), d))
        .collect();
    let mut edges = Vec::new();
    for n in &names {
        let mut reqs: BTreeSet<String> = BTreeSet::new();
        let set_here = edges_for.contains(n);
        if set_here {
            if let Some(d) = desired_by_name.get(n.as_str()) {
                reqs.extend(d.requires.iter().cloned());
            }
            if !authoritative {
                reqs.extend(manual_edges.get(n).cloned().unwrap_or_default());
            }
        } else {
            reqs.extend(compose_edges.get(n).cloned().unwrap_or_default());
            reqs.extend(manual_edges.get(n).cloned().unwrap_or_default());
        }
        for r in reqs {
            if !names.contains(&r) {
                if removed.contains(r.as_str()) {
                    // An edge to a removed service disappears with it.
                    continue;
                }
                return Err(InventoryError::Invalid(format!(
                    "{n}: requires unknown service \"{r}\""
                )));
            }
            edges.push((n.clone(), r));
        }
    }
    super::check_graph(names, edges)?;

    changes.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(Computed {
        plan: ImportPlan {
            project: desired.project.clone(),
            project_source: None,
            changes,
            applied: false,
            files: Vec::new(),
            inactive: Vec::new(),
            checks: Vec::new(),
        },
        desired,
        remove,
        writes,
        edges_for,
    })
}

fn engine_changes(current: &[yaml::EngineDoc], wanted: &[yaml::EngineDoc]) -> Vec<PlanChange> {
    let mut out = Vec::new();
    for w in wanted {
        match current.iter().find(|c| c.name == w.name) {
            None => out.push(PlanChange {
                kind: ChangeKind::Add,
                service: format!("engine:{}", w.name),
                fields: vec![FieldChange {
                    field: "endpoint".into(),
                    old: String::new(),
                    new: w.endpoint.clone(),
                }],
                kept_manual: vec![],
                guessed: Vec::new(),
            }),
            Some(c) if c != w => out.push(PlanChange {
                kind: ChangeKind::Update,
                service: format!("engine:{}", w.name),
                fields: vec![FieldChange {
                    field: "endpoint".into(),
                    old: c.endpoint.clone(),
                    new: w.endpoint.clone(),
                }],
                kept_manual: vec![],
                guessed: Vec::new(),
            }),
            Some(_) => {}
        }
    }
    for c in current {
        if !wanted.iter().any(|w| w.name == c.name) {
            out.push(PlanChange {
                kind: ChangeKind::Remove,
                service: format!("engine:{}", c.name),
                fields: vec![],
                kept_manual: vec![],
                guessed: Vec::new(),
            });
        }
    }
    out
}

/// The engines as stored, in the YAML model.
fn join(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(", ")
}
/// Runs an import: computes the plan under the inventory lock and, when
/// `apply`, writes it with an audit entry by `actor`. Used by the API and
/// the CLI.
pub async fn run_import(
    pool: &sqlx::PgPool,
    desired: Desired,
    apply_it: bool,
    actor: Actor,
    action: &str,
    source: Option<String>,
    slots: Option<&crate::auth::RequestSlots>,
) -> Result<ImportPlan, InventoryError> {
    let mut tx = pool.begin().await?;
    let plan = plan_in(&mut tx, desired, apply_it).await?;
    audit_import(&mut tx, &plan, actor, action, source, json!({})).await?;
    tx.commit().await?;
    if let Some(s) = slots {
        s.mark_audited();
    }
    Ok(plan)
}

/// The plan of an import inside the caller's transaction: takes the
/// inventory lock, checks the engines services name, computes the plan and,
/// when `apply_it`, writes it. Writes no audit entry ([`audit_import`]
/// does) and does not commit: a caller above the inventory (`onboard`)
/// adds its own writes to the same transaction.
pub async fn plan_in(
    tx: &mut sqlx::PgConnection,
    desired: Desired,
    apply_it: bool,
) -> Result<ImportPlan, InventoryError> {
    lock(&mut *tx).await?;
    // Engines named by services must exist (or come with the document),
    // in the preview as in the apply.
    let engines: BTreeSet<String> = match &desired.engines {
        Some(doc) => doc.iter().map(|e| e.name.clone()).collect(),
        None => load_engines(&mut *tx)
            .await?
            .into_iter()
            .map(|e| e.name)
            .collect(),
    };
    for d in &desired.services {
        if let Some(e) = &d.fields.engine {
            if !engines.contains(e) {
                return Err(InventoryError::Invalid(format!(
                    "services.{}.engine: no engine named \"{e}\"",
                    d.name
                )));
            }
        }
    }
    let snapshot = Snapshot::load(&mut *tx).await?;
    let mut computed = compute(&snapshot, desired)?;
    engine_plan(&mut *tx, &mut computed).await?;
    if apply_it {
        apply(&mut *tx, &mut computed).await?;
    }
    Ok(computed.plan)
}

/// The audit entry of an import (`<action>.apply` or `<action>.preview`),
/// with the count of changes per kind and `extra` merged into its params.
pub async fn audit_import(
    tx: &mut sqlx::PgConnection,
    plan: &ImportPlan,
    actor: Actor,
    action: &str,
    source: Option<String>,
    extra: serde_json::Value,
) -> Result<(), InventoryError> {
    let summary: BTreeMap<&str, usize> = plan.changes.iter().fold(BTreeMap::new(), |mut m, c| {
        let k = match c.kind {
            ChangeKind::Add => "added",
            ChangeKind::Update => "updated",
            ChangeKind::Remove => "removed",
            ChangeKind::Unchanged => "unchanged",
        };
        *m.entry(k).or_default() += 1;
        m
    });
    let mut params = json!({"changes": summary});
    if let (Some(p), serde_json::Value::Object(extra)) = (params.as_object_mut(), extra) {
        p.extend(extra);
    }
    audit::record(
        tx,
        NewEntry {
            actor,
            action: format!(
                "{action}.{}",
                if plan.applied { "apply" } else { "preview" }
            ),
            target: plan.project.clone().map(|p| format!("project:{p}")),
            params,
            source,
            outcome: opsdeck_wire::Outcome::Success,
            detail: None,
        },
    )
    .await?;
    Ok(())
}
