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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use axum::extract::State;
use axum::response::IntoResponse;
use opsdeck_wire::{
    ChangeKind, ComposeImportRequest, DiscoveredImportRequest, DiscoveredProject,
    DiscoveredService, FieldChange, ImportPlan, InventoryImportRequest, PlanChange, Tier,
};
use serde_json::json;
use sqlx::PgConnection;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    compose, lock, parse_tier, write_service, yaml, Fields, ServiceName, Snapshot, FIELD_NAMES,
};
use crate::audit::{self, Actor, NewEntry};
use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;

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
pub fn compute(snapshot: &Snapshot, desired: Desired) -> ApiResult<Computed> {
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
            return Err(ApiError::Conflict(format!(
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
                return Err(ApiError::BadRequest(format!(
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
            changes,
            applied: false,
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
            });
        }
    }
    out
}

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

fn join(s: &BTreeSet<String>) -> String {
    s.iter().cloned().collect::<Vec<_>>().join(", ")
}

/// Writes a computed plan on `tx` (which holds the inventory lock).
pub async fn apply(tx: &mut PgConnection, c: &mut Computed) -> ApiResult<()> {
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

/// Guesses a tier from an image name, for services a compose import adds
/// without an `opsdeck.tier` label: proxies and databases are critical,
/// caches and admin tools support, the rest application.
pub fn guess_tier(image: Option<&str>, name: &str) -> Tier {
    let hay = format!("{} {}", image.unwrap_or_default(), name).to_ascii_lowercase();
    let any = |words: &[&str]| words.iter().any(|w| hay.contains(w));
    if any(&[
        "postgres",
        "mariadb",
        "mysql",
        "nginx",
        "traefik",
        "caddy",
        "haproxy",
        "timescale",
        "mongo",
        "proxy",
    ]) {
        Tier::Critical
    } else if any(&[
        "redis",
        "memcached",
        "portainer",
        "valkey",
        "adminer",
        "watchtower",
    ]) {
        Tier::Support
    } else {
        Tier::Application
    }
}

/// Labels that set Opsdeck fields from a compose file.
const LABEL_PREFIX: &str = "opsdeck.";

/// The desired state of a compose project.
pub fn desired_from_compose(
    file: &compose::ComposeFile,
    project: &str,
    engine: Option<&str>,
    source: &'static str,
) -> ApiResult<Desired> {
    let mut services = Vec::new();
    for (name, svc) in &file.services {
        ServiceName::parse(name)
            .map_err(|e| ApiError::BadRequest(format!("services.{name}: {e}")))?;
        let mut provided = vec![
            "compose_project",
            "compose_service",
            "container_name",
            "image",
            "ports",
            "volumes",
            "labels",
        ];
        let mut fields = Fields {
            tier: guess_tier(svc.image.as_deref(), name),
            compose_project: Some(project.to_owned()),
            compose_service: Some(name.clone()),
            container_name: svc.container_name.clone(),
            image: svc.image.clone(),
            ports: svc.ports.clone(),
            volumes: svc.volumes.clone(),
            labels: svc
                .labels
                .iter()
                .filter(|(k, _)| !k.starts_with(LABEL_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Fields::default()
        };
        if let Some(e) = engine {
            fields.engine = Some(e.to_owned());
            provided.push("engine");
        }
        for (key, value) in svc
            .labels
            .iter()
            .filter(|(k, _)| k.starts_with(LABEL_PREFIX))
        {
            let field =
                |m: String| ApiError::BadRequest(format!("services.{name}.labels.{key}: {m}"));
            match &key[LABEL_PREFIX.len()..] {
                "tier" => {
                    fields.tier = parse_tier(value).map_err(field)?;
                    provided.push("tier");
                }
                "description" => {
                    fields.description = value.clone();
                    provided.push("description");
                }
                "owner" | "owner_team" => {
                    fields.owner_team = Some(value.clone()).filter(|v| !v.is_empty());
                    provided.push("owner_team");
                }
                "docs" | "docs_url" => {
                    fields.docs_url = Some(value.clone()).filter(|v| !v.is_empty());
                    provided.push("docs_url");
                }
                "repo" | "repo_url" => {
                    fields.repo_url = Some(value.clone()).filter(|v| !v.is_empty());
                    provided.push("repo_url");
                }
                other => {
                    return Err(field(format!(
                        "unknown Opsdeck label \"{other}\" (known: tier, description, owner, docs, repo)"
                    )))
                }
            }
        }
        fields
            .validate()
            .map_err(|e| ApiError::BadRequest(format!("services.{name}: {e}")))?;
        services.push(DesiredService {
            name: name.clone(),
            fields,
            provided,
            requires: svc.depends_on.iter().cloned().collect(),
        });
    }
    Ok(Desired {
        services,
        project: Some(project.to_owned()),
        source,
        engines: None,
    })
}

/// The desired state of the whole inventory from its YAML document.
pub fn desired_from_yaml(doc: &yaml::InventoryDoc) -> ApiResult<Desired> {
    let mut services = Vec::new();
    for s in &doc.services {
        let fields = Fields {
            description: s.description.clone(),
            tier: parse_tier(&s.tier)
                .map_err(|e| ApiError::BadRequest(format!("services.{}.tier: {e}", s.name)))?,
            owner_team: s.owner_team.clone(),
            docs_url: s.docs_url.clone(),
            repo_url: s.repo_url.clone(),
            engine: s.engine.clone(),
            compose_project: s.compose_project.clone(),
            compose_service: s.compose_service.clone(),
            container_name: s.container_name.clone(),
            image: s.image.clone(),
            ports: s.ports.clone(),
            volumes: s.volumes.clone(),
            labels: s.labels.clone(),
        };
        fields
            .validate()
            .map_err(|e| ApiError::BadRequest(format!("services.{}: {e}", s.name)))?;
        services.push(DesiredService {
            name: s.name.clone(),
            fields,
            provided: FIELD_NAMES.to_vec(),
            requires: s.requires.iter().cloned().collect(),
        });
    }
    Ok(Desired {
        services,
        project: None,
        source: "yaml",
        engines: Some(doc.engines.clone()),
    })
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

/// Parses a compose file, naming line and field on error.
pub fn parse_compose(text: &str) -> ApiResult<compose::ComposeFile> {
    compose::parse(text).map_err(|e| ApiError::BadRequest(format!("compose file: {e}")))
}

/// The project name of a compose import: given, else the file's `name`.
pub fn project_name(given: Option<&str>, file: &compose::ComposeFile) -> ApiResult<String> {
    let p = given
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| file.name.clone())
        .ok_or_else(|| {
            ApiError::BadRequest(
                "project: the file has no top-level name; give the compose project name".into(),
            )
        })?;
    ServiceName::parse(&p).map_err(|e| ApiError::BadRequest(format!("project: {e}")))?;
    Ok(p)
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
) -> ApiResult<ImportPlan> {
    let mut tx = pool.begin().await?;
    lock(&mut tx).await?;
    // Engines named by services must exist (or come with the document),
    // in the preview as in the apply.
    let engines: BTreeSet<String> = match &desired.engines {
        Some(doc) => doc.iter().map(|e| e.name.clone()).collect(),
        None => load_engines(&mut tx)
            .await?
            .into_iter()
            .map(|e| e.name)
            .collect(),
    };
    for d in &desired.services {
        if let Some(e) = &d.fields.engine {
            if !engines.contains(e) {
                return Err(ApiError::BadRequest(format!(
                    "services.{}.engine: no engine named \"{e}\"",
                    d.name
                )));
            }
        }
    }
    let snapshot = Snapshot::load(&mut tx).await?;
    let mut computed = compute(&snapshot, desired)?;
    engine_plan(&mut tx, &mut computed).await?;
    if apply_it {
        apply(&mut tx, &mut computed).await?;
    }
    let summary: BTreeMap<&str, usize> =
        computed
            .plan
            .changes
            .iter()
            .fold(BTreeMap::new(), |mut m, c| {
                let k = match c.kind {
                    ChangeKind::Add => "added",
                    ChangeKind::Update => "updated",
                    ChangeKind::Remove => "removed",
                    ChangeKind::Unchanged => "unchanged",
                };
                *m.entry(k).or_default() += 1;
                m
            });
    audit::record(
        &mut tx,
        NewEntry {
            actor,
            action: format!("{action}.{}", if apply_it { "apply" } else { "preview" }),
            target: computed
                .plan
                .project
                .clone()
                .map(|p| format!("project:{p}")),
            params: json!({"changes": summary}),
            source,
            outcome: opsdeck_wire::Outcome::Success,
            detail: None,
        },
    )
    .await?;
    tx.commit().await?;
    if let Some(s) = slots {
        s.mark_audited();
    }
    Ok(computed.plan)
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(import_compose))
        .routes(routes!(export_inventory))
        .routes(routes!(import_inventory))
        .routes(routes!(list_discovered, import_discovered))
}

/// Preview (`apply: false`) or apply a docker-compose file.
#[utoipa::path(post, path = "/api/v1/inventory/compose", tag = "inventory",
    request_body = ComposeImportRequest,
    responses((status = 200, body = ImportPlan), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn import_compose(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<ComposeImportRequest>,
) -> ApiResult<Json<ImportPlan>> {
    let file = parse_compose(&req.content)?;
    let project = project_name(req.project.as_deref(), &file)?;
    let engine = req
        .engine
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty());
    let desired = desired_from_compose(&file, &project, engine, "compose")?;
    let plan = run_import(
        &state.pool,
        desired,
        req.apply,
        Actor::of(&auth.principal),
        "inventory.compose",
        ctx.source.clone(),
        Some(&ctx.slots),
    )
    .await?;
    crate::fanout::inventory_changed(&state).await;
    Ok(Json(plan))
}

/// The whole inventory as YAML (config as code).
#[utoipa::path(get, path = "/api/v1/inventory/export", tag = "inventory",
    responses((status = 200, content_type = "application/yaml", body = serde_json::Value, description = "the inventory as a YAML document")),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn export_inventory(
    _auth: Auth<Admin>,
    State(state): State<AppState>,
) -> ApiResult<impl IntoResponse> {
    let mut conn = state.pool.acquire().await?;
    let text = export(&mut conn).await?;
    Ok(super::text_download(
        text,
        "application/yaml",
        "opsdeck-inventory.yaml",
    ))
}

/// Preview or apply an inventory YAML document: the inventory becomes it.
#[utoipa::path(post, path = "/api/v1/inventory/import", tag = "inventory",
    request_body = InventoryImportRequest,
    responses((status = 200, body = ImportPlan), (status = 400)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn import_inventory(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<InventoryImportRequest>,
) -> ApiResult<Json<ImportPlan>> {
    let doc = yaml::parse(&req.content)
        .map_err(|e| ApiError::BadRequest(format!("inventory file: {e}")))?;
    let desired = desired_from_yaml(&doc)?;
    let plan = run_import(
        &state.pool,
        desired,
        req.apply,
        Actor::of(&auth.principal),
        "inventory.yaml",
        ctx.source.clone(),
        Some(&ctx.slots),
    )
    .await?;
    if req.apply {
        crate::engines::sync_hub(&state).await?;
        crate::fanout::publish(&state, crate::fanout::Change::Engines).await;
    }
    crate::fanout::inventory_changed(&state).await;
    Ok(Json(plan))
}

/// Compose projects found on the engines from container labels.
pub fn discover(state: &AppState, snapshot: &Snapshot) -> Vec<DiscoveredProject> {
    let mut projects: BTreeMap<(String, String), BTreeMap<String, DiscoveredService>> =
        BTreeMap::new();
    let mapped: BTreeSet<(String, String)> = snapshot
        .services
        .iter()
        .filter_map(|s| {
            Some((
                s.fields.compose_project.clone()?,
                s.fields.compose_service.clone()?,
            ))
        })
        .collect();
    for engine in state.engines.engines() {
        engine.with_containers(|cs| {
            for c in cs.values() {
                let (Some(p), Some(s)) = (&c.compose_project, &c.compose_service) else {
                    continue;
                };
                let entry = projects
                    .entry((engine.name.clone(), p.clone()))
                    .or_default()
                    .entry(s.clone())
                    .or_insert_with(|| DiscoveredService {
                        name: s.clone(),
                        image: c.image.clone(),
                        containers: 0,
                        running: 0,
                        depends_on: vec![],
                        in_inventory: mapped.contains(&(p.clone(), s.clone())),
                    });
                entry.containers += 1;
                if c.state == "running" {
                    entry.running += 1;
                }
            }
        });
        // Dependencies come from the `com.docker.compose.depends_on` label.
        for ((e, p), services) in projects.iter_mut() {
            if *e != engine.name {
                continue;
            }
            for (s, d) in services.iter_mut() {
                d.depends_on = engine.compose_depends_on(p, s);
            }
        }
    }
    projects
        .into_iter()
        .map(|((engine, project), services)| DiscoveredProject {
            engine,
            project,
            services: services.into_values().collect(),
        })
        .collect()
}

/// Compose projects running on the engines, and whether they are in the inventory.
#[utoipa::path(get, path = "/api/v1/inventory/discovered", tag = "inventory",
    responses((status = 200, body = Vec<DiscoveredProject>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_discovered(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<DiscoveredProject>>> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    Ok(Json(discover(&state, &snapshot)))
}

/// Preview or apply adding a discovered compose project to the inventory.
#[utoipa::path(post, path = "/api/v1/inventory/discovered", tag = "inventory",
    request_body = DiscoveredImportRequest,
    responses((status = 200, body = ImportPlan), (status = 400), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn import_discovered(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<DiscoveredImportRequest>,
) -> ApiResult<Json<ImportPlan>> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    drop(conn);
    let project = discover(&state, &snapshot)
        .into_iter()
        .find(|p| p.engine == req.engine && p.project == req.project)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "compose project \"{}\" on engine \"{}\"",
                req.project, req.engine
            ))
        })?;
    let names: BTreeSet<&str> = project.services.iter().map(|s| s.name.as_str()).collect();
    let file = compose::ComposeFile {
        name: Some(project.project.clone()),
        services: project
            .services
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    compose::ComposeService {
                        image: Some(s.image.clone()).filter(|i| !i.is_empty()),
                        depends_on: s
                            .depends_on
                            .iter()
                            .filter(|d| names.contains(d.as_str()))
                            .cloned()
                            .collect(),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    };
    let mut desired =
        desired_from_compose(&file, &project.project, Some(&req.engine), "discovered")?;
    // Discovery knows images and dependencies, not ports, volumes or labels.
    for d in &mut desired.services {
        d.provided
            .retain(|f| !matches!(*f, "ports" | "volumes" | "labels" | "container_name"));
    }
    let plan = run_import(
        &state.pool,
        desired,
        req.apply,
        Actor::of(&auth.principal),
        "inventory.discovered",
        ctx.source.clone(),
        Some(&ctx.slots),
    )
    .await?;
    crate::fanout::inventory_changed(&state).await;
    Ok(Json(plan))
}
