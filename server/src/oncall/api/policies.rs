//! Escalation policies: `/api/v1/escalation-policies…`.
//!
//! A policy is a list of levels; level *n* is notified `delay_secs` after
//! the incident was triggered if nobody has acknowledged by then (the
//! handbook's "primary on-call immediately, secondary after 15 min, manager
//! after 30"). A write is validated as a whole: 1–10 levels, delays ≥ 0,
//! non-decreasing, at most 7 days; 1–20 distinct targets per level, each a
//! `person`, `rotation` or `team` that exists (400 naming the missing one:
//! `levels[1].targets[0]: no rotation with id 7`), and a level must reach
//! someone (not only teams without members). PUT replaces the levels as a
//! whole, in one transaction with the policy row and the audit entry.
//! `is_default: true` unsets the previous default in the same transaction.
//! Deleting a policy that open incidents escalate with is refused (409):
//! move them to another policy first. Reads fill `EscalationTarget.name`.

use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{EscalationLevel, EscalationPolicy, EscalationPolicyInput, EscalationTarget};
use serde_json::{json, Value};
use sqlx::PgConnection;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{unique, validate};
use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::oncall::{lock, store};
use crate::state::AppState;

/// Most levels in a policy.
pub const MAX_LEVELS: usize = 10;
/// Most targets in a level.
pub const MAX_TARGETS: usize = 20;
/// Longest delay of a level.
pub const MAX_DELAY_SECS: i64 = 7 * 86_400;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::from_validation(msg.into())
}

async fn load(conn: &mut PgConnection, id: Option<i64>) -> sqlx::Result<Vec<EscalationPolicy>> {
    let rows = store::policies(&mut *conn, id).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let levels = store::policy_levels(&mut *conn, &ids).await?;
    let targets = store::policy_targets(&mut *conn, &ids).await?;
    let mut by_level: BTreeMap<(i64, i32), Vec<EscalationTarget>> = BTreeMap::new();
    for t in &targets {
        let (kind, id) = match (t.person_id, t.rotation_id, t.team_id) {
            (Some(p), _, _) => ("person", p),
            (_, Some(r), _) => ("rotation", r),
            (_, _, Some(tm)) => ("team", tm),
            _ => continue,
        };
        by_level
            .entry((t.policy_id, t.level))
            .or_default()
            .push(EscalationTarget {
                kind: kind.into(),
                id,
                name: t.name.clone(),
            });
    }
    Ok(rows
        .into_iter()
        .map(|r| {
            let id = r.id;
            EscalationPolicy {
                id,
                name: r.name,
                description: r.description,
                is_default: r.is_default,
                levels: levels
                    .iter()
                    .filter(|(p, _, _)| *p == id)
                    .map(|(_, level, delay)| EscalationLevel {
                        delay_secs: i64::from(*delay),
                        targets: by_level.remove(&(id, *level)).unwrap_or_default(),
                    })
                    .collect(),
            }
        })
        .collect())
}

async fn load_one(conn: &mut PgConnection, id: i64) -> ApiResult<EscalationPolicy> {
    load(conn, Some(id))
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("escalation policy {id}")))
}

/// A target, checked: kind, id, name.
#[derive(Debug, Clone)]
struct Target {
    kind: &'static str,
    id: i64,
    name: String,
}

struct Checked {
    name: String,
    description: String,
    is_default: bool,
    levels: Vec<(i64, Vec<Target>)>,
}

/// (name, reaches someone) of the people, rotations and teams with these ids.
async fn known(
    conn: &mut PgConnection,
    kind: &str,
    ids: &[i64],
) -> sqlx::Result<BTreeMap<i64, (String, bool)>> {
    let rows = store::known(conn, kind, ids).await?;
    Ok(rows.into_iter().map(|(id, n, r)| (id, (n, r))).collect())
}

async fn check(conn: &mut PgConnection, p: &EscalationPolicyInput) -> ApiResult<Checked> {
    let name = validate::name("name", &p.name)?;
    let description = validate::text("description", &p.description, 1000)?;
    if p.levels.is_empty() || p.levels.len() > MAX_LEVELS {
        return Err(bad(format!("levels: 1–{MAX_LEVELS} levels")));
    }
    let mut wanted: BTreeMap<&'static str, BTreeSet<i64>> = BTreeMap::new();
    let mut shaped: Vec<(i64, Vec<(&'static str, i64)>)> = Vec::new();
    let mut previous = 0;
    for (i, level) in p.levels.iter().enumerate() {
        let d = level.delay_secs;
        if d < 0 {
            return Err(bad(format!("levels[{i}].delay_secs: must not be negative")));
        }
        if d > MAX_DELAY_SECS {
            return Err(bad(format!(
                "levels[{i}].delay_secs: at most {MAX_DELAY_SECS} (7 days)"
            )));
        }
        if d < previous {
            return Err(bad(format!(
                "levels[{i}].delay_secs: {d} is less than the previous level's {previous}; \
                 delays count from the trigger and must not decrease"
            )));
        }
        previous = d;
        if level.targets.is_empty() {
            return Err(bad(format!(
                "levels[{i}].targets: at least one person, rotation or team"
            )));
        }
        if level.targets.len() > MAX_TARGETS {
            return Err(bad(format!("levels[{i}].targets: at most {MAX_TARGETS}")));
        }
        let mut seen = BTreeSet::new();
        let mut targets = Vec::new();
        for (j, t) in level.targets.iter().enumerate() {
            let kind = match t.kind.trim() {
                "person" => "person",
                "rotation" => "rotation",
                "team" => "team",
                other => {
                    return Err(bad(format!(
                        "levels[{i}].targets[{j}].kind: \"{other}\" is not person, rotation or team"
                    )))
                }
            };
            if !seen.insert((kind, t.id)) {
                return Err(bad(format!(
                    "levels[{i}].targets[{j}]: {kind} {} is listed twice in this level",
                    t.id
                )));
            }
            wanted.entry(kind).or_default().insert(t.id);
            targets.push((kind, t.id));
        }
        shaped.push((d, targets));
    }
    let mut found: BTreeMap<&'static str, BTreeMap<i64, (String, bool)>> = BTreeMap::new();
    for (kind, ids) in &wanted {
        let ids: Vec<i64> = ids.iter().copied().collect();
        found.insert(*kind, known(&mut *conn, kind, &ids).await?);
    }
    let mut levels = Vec::new();
    for (i, (delay, targets)) in shaped.into_iter().enumerate() {
        let mut checked = Vec::new();
        let mut reaches = false;
        for (j, (kind, id)) in targets.into_iter().enumerate() {
            let Some((name, r)) = found.get(kind).and_then(|m| m.get(&id)) else {
                return Err(bad(format!(
                    "levels[{i}].targets[{j}]: no {kind} with id {id}"
                )));
            };
            reaches |= *r;
            checked.push(Target {
                kind,
                id,
                name: name.clone(),
            });
        }
        if !reaches {
            let names: Vec<String> = checked
                .iter()
                .map(|t| format!("{} \"{}\"", t.kind, t.name))
                .collect();
            return Err(bad(format!(
                "levels[{i}].targets: reach nobody ({} without members)",
                names.join(", ")
            )));
        }
        levels.push((delay, checked));
    }
    Ok(Checked {
        name,
        description,
        is_default: p.is_default,
        levels,
    })
}

/// Writes the levels of policy `id` (after removing the old ones).
async fn write_levels(conn: &mut PgConnection, id: i64, c: &Checked) -> ApiResult<()> {
    store::clear_levels(&mut *conn, id).await?;
    for (level, (delay, targets)) in c.levels.iter().enumerate() {
        let level = level as i32;
        store::insert_level(&mut *conn, id, level, *delay as i32).await?;
        for t in targets {
            let pick = |k: &str| (t.kind == k).then_some(t.id);
            store::insert_target(
                &mut *conn,
                id,
                level,
                (pick("person"), pick("rotation"), pick("team")),
            )
            .await?;
        }
    }
    Ok(())
}

/// Unsets the default flag of every policy but `keep`.
async fn unset_default(conn: &mut PgConnection, keep: Option<i64>) -> sqlx::Result<()> {
    store::unset_default(conn, keep).await
}

fn params(c: &Checked) -> Value {
    json!({
        "name": c.name,
        "description": c.description,
        "is_default": c.is_default,
        "levels": c.levels.iter().map(|(delay, targets)| json!({
            "delay_secs": delay,
            "targets": targets.iter().map(|t| format!("{} {}", t.kind, t.name)).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
    })
}

/// Escalation policies with their levels, by name.
#[utoipa::path(get, path = "/api/v1/escalation-policies", tag = "escalation",
    responses((status = 200, body = Vec<EscalationPolicy>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<EscalationPolicy>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load(&mut conn, None).await?))
}

/// One escalation policy.
#[utoipa::path(get, path = "/api/v1/escalation-policies/{id}", tag = "escalation",
    responses((status = 200, body = EscalationPolicy), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_one(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<EscalationPolicy>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load_one(&mut conn, id).await?))
}

/// Add an escalation policy.
#[utoipa::path(post, path = "/api/v1/escalation-policies", tag = "escalation",
    request_body = EscalationPolicyInput,
    responses((status = 201, body = EscalationPolicy), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(p): Json<EscalationPolicyInput>,
) -> ApiResult<(StatusCode, Json<EscalationPolicy>)> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let c = check(&mut tx, &p).await?;
    if c.is_default {
        unset_default(&mut tx, None).await?;
    }
    let id = store::insert_policy(&mut tx, &c.name, &c.description, c.is_default)
        .await
        .map_err(unique)?;
    write_levels(&mut tx, id, &c).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "escalation_policy.create",
        Some(format!("escalation_policy:{id}")),
        params(&c),
    )
    .await?;
    let out = load_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Replace an escalation policy; its levels are replaced as a whole.
#[utoipa::path(put, path = "/api/v1/escalation-policies/{id}", tag = "escalation",
    request_body = EscalationPolicyInput,
    responses((status = 200, body = EscalationPolicy), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(p): Json<EscalationPolicyInput>,
) -> ApiResult<Json<EscalationPolicy>> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let c = check(&mut tx, &p).await?;
    let exists = store::policy_for_update(&mut tx, id).await?;
    if exists.is_none() {
        return Err(ApiError::NotFound(format!("escalation policy {id}")));
    }
    if c.is_default {
        unset_default(&mut tx, Some(id)).await?;
    }
    store::update_policy(&mut tx, id, &c.name, &c.description, c.is_default)
        .await
        .map_err(unique)?;
    write_levels(&mut tx, id, &c).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "escalation_policy.update",
        Some(format!("escalation_policy:{id}")),
        params(&c),
    )
    .await?;
    let out = load_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(out))
}

/// Delete an escalation policy. Refused (409) while open incidents
/// escalate with it.
#[utoipa::path(delete, path = "/api/v1/escalation-policies/{id}", tag = "escalation",
    responses((status = 204), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let name: Option<String> = store::policy_for_update(&mut tx, id).await?;
    let name = name.ok_or_else(|| ApiError::NotFound(format!("escalation policy {id}")))?;
    let open = store::open_incidents_with(&mut tx, id).await?;
    if open > 0 {
        return Err(ApiError::Conflict(format!(
            "cannot delete escalation policy \"{name}\": {open} open incident{} escalate{} with it; \
             give {} another policy first",
            if open == 1 { "" } else { "s" },
            if open == 1 { "s" } else { "" },
            if open == 1 { "it" } else { "them" },
        )));
    }
    store::delete_policy(&mut tx, id).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "escalation_policy.delete",
        Some(format!("escalation_policy:{id}")),
        json!({ "name": name }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}
