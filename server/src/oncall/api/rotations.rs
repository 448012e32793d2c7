//! Rotations, their overrides, and who is on call:
//! `/api/v1/rotations…`, `/api/v1/oncall`.
//!
//! A rotation is validated at the boundary: name 1–100 characters (unique,
//! 409), `handoff` `daily` or `weekly`, `handoff_weekday` 1–7 for weekly
//! and absent for daily, `handoff_time` `HH:MM`, `time_zone` an IANA name
//! (stored in its canonical spelling), `starts_on` 2000–2100, 1–100
//! distinct members that exist (turn order = list order; replaced as a
//! whole on PUT). Overrides ("holidays") name a person (anyone, not only a
//! member), `ends_at` after `starts_at` and in the future, at most 366
//! days; a reason up to 500 characters. Reads list current and future
//! overrides. The math is [`super::rotation`].

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, Utc};
use opsdeck_wire::{OnCall, OverrideInput, PersonRef, Rotation, RotationInput, RotationOverride};
use serde_json::{json, Value};
use sqlx::PgConnection;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{unique, validate};
use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::oncall::{broken, lock, rotation_specs, still_intact, store, who_is_on_call};
use crate::state::AppState;

/// Most members in a rotation.
const MAX_MEMBERS: usize = 100;
/// Longest override.
const MAX_OVERRIDE: TimeDelta = TimeDelta::days(366);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(create_override))
        .routes(routes!(delete_override))
        .routes(routes!(oncall))
}

async fn load_overrides(
    conn: &mut PgConnection,
    ids: &[i64],
    now: DateTime<Utc>,
) -> sqlx::Result<Vec<(i64, RotationOverride)>> {
    let rows = store::overrides(conn, ids, now).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.rotation_id,
                RotationOverride {
                    id: r.id,
                    person: PersonRef {
                        id: r.person_id,
                        name: r.name,
                    },
                    starts_at: r.starts_at,
                    ends_at: r.ends_at,
                    reason: r.reason,
                    created_by: r.created_by,
                },
            )
        })
        .collect())
}

async fn load(conn: &mut PgConnection, ids: Option<&[i64]>) -> sqlx::Result<Vec<Rotation>> {
    let specs = rotation_specs(&mut *conn, ids).await?;
    let ids: Vec<i64> = specs.iter().map(|s| s.id).collect();
    let mut overrides = load_overrides(&mut *conn, &ids, Utc::now()).await?;
    Ok(specs
        .into_iter()
        .map(|s| {
            let mine: Vec<RotationOverride> = overrides
                .extract_if(.., |(r, _)| *r == s.id)
                .map(|(_, o)| o)
                .collect();
            Rotation {
                id: s.id,
                name: s.name,
                team_id: s.team_id,
                handoff: s.handoff,
                handoff_time: s.handoff_time.format("%H:%M").to_string(),
                handoff_weekday: s.handoff_weekday,
                time_zone: s.time_zone,
                starts_on: s.starts_on,
                members: s.members,
                overrides: mine,
            }
        })
        .collect())
}

async fn load_one(conn: &mut PgConnection, id: i64) -> ApiResult<Rotation> {
    load(conn, Some(&[id]))
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("rotation {id}")))
}

struct Checked {
    name: String,
    team_id: Option<i64>,
    handoff: &'static str,
    handoff_time: chrono::NaiveTime,
    handoff_weekday: Option<i16>,
    time_zone: String,
    starts_on: NaiveDate,
    members: Vec<(i64, String)>,
}

impl Checked {
    fn fields(&self) -> store::RotationFields<'_> {
        store::RotationFields {
            name: &self.name,
            team_id: self.team_id,
            handoff: self.handoff,
            handoff_time: self.handoff_time,
            handoff_weekday: self.handoff_weekday,
            time_zone: &self.time_zone,
            starts_on: self.starts_on,
        }
    }
}

async fn check(conn: &mut PgConnection, r: &RotationInput) -> ApiResult<Checked> {
    let name = validate::name("name", &r.name)?;
    let (handoff, weekday) = validate::handoff(&r.handoff, r.handoff_weekday)?;
    let handoff_time = validate::handoff_time(&r.handoff_time)?;
    let tz = validate::time_zone(&r.time_zone)?;
    if !(2000..=2100).contains(&r.starts_on.year()) {
        return Err(ApiError::BadRequest(
            "starts_on: a date between 2000 and 2100".into(),
        ));
    }
    if r.members.is_empty() {
        return Err(ApiError::BadRequest(
            "members: at least one person takes turns".into(),
        ));
    }
    if r.members.len() > MAX_MEMBERS {
        return Err(ApiError::BadRequest(format!(
            "members: at most {MAX_MEMBERS}"
        )));
    }
    validate::no_duplicates("members", &r.members)?;
    let names = validate::people(&mut *conn, "members", &r.members).await?;
    if let Some(team) = r.team_id {
        if !store::team_exists(&mut *conn, team).await? {
            return Err(ApiError::BadRequest(format!(
                "team_id: no team with id {team}"
            )));
        }
    }
    Ok(Checked {
        name,
        team_id: r.team_id,
        handoff,
        handoff_time,
        handoff_weekday: weekday.map(|w| w.number_from_monday() as i16),
        time_zone: tz.name().to_owned(),
        starts_on: r.starts_on,
        members: r
            .members
            .iter()
            .map(|id| (*id, names.get(id).cloned().unwrap_or_default()))
            .collect(),
    })
}

async fn set_members(
    conn: &mut PgConnection,
    id: i64,
    members: &[(i64, String)],
) -> sqlx::Result<()> {
    let ids: Vec<i64> = members.iter().map(|(p, _)| *p).collect();
    store::set_rotation_members(conn, id, &ids).await?;
    Ok(())
}

fn params(c: &Checked) -> Value {
    json!({
        "name": c.name,
        "team_id": c.team_id,
        "handoff": c.handoff,
        "handoff_time": c.handoff_time.format("%H:%M").to_string(),
        "handoff_weekday": c.handoff_weekday,
        "time_zone": c.time_zone,
        "starts_on": c.starts_on,
        "members": c.members.iter().map(|(_, n)| n).collect::<Vec<_>>(),
    })
}

/// Rotations with members and current/future overrides, by name.
#[utoipa::path(get, path = "/api/v1/rotations", tag = "oncall",
    responses((status = 200, body = Vec<Rotation>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Rotation>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load(&mut conn, None).await?))
}

/// One rotation.
#[utoipa::path(get, path = "/api/v1/rotations/{id}", tag = "oncall",
    responses((status = 200, body = Rotation), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_one(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Rotation>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load_one(&mut conn, id).await?))
}

/// Add a rotation.
#[utoipa::path(post, path = "/api/v1/rotations", tag = "oncall", request_body = RotationInput,
    responses((status = 201, body = Rotation), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(r): Json<RotationInput>,
) -> ApiResult<(StatusCode, Json<Rotation>)> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let c = check(&mut tx, &r).await?;
    let id = store::insert_rotation(&mut tx, &c.fields())
        .await
        .map_err(unique)?;
    set_members(&mut tx, id, &c.members).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "rotation.create",
        Some(format!("rotation:{id}")),
        params(&c),
    )
    .await?;
    let out = load_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Replace a rotation (members as a whole; overrides stay).
#[utoipa::path(put, path = "/api/v1/rotations/{id}", tag = "oncall", request_body = RotationInput,
    responses((status = 200, body = Rotation), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(r): Json<RotationInput>,
) -> ApiResult<Json<Rotation>> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let c = check(&mut tx, &r).await?;
    let found = store::update_rotation(&mut tx, id, &c.fields())
        .await
        .map_err(unique)?;
    if !found {
        return Err(ApiError::NotFound(format!("rotation {id}")));
    }
    set_members(&mut tx, id, &c.members).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "rotation.update",
        Some(format!("rotation:{id}")),
        params(&c),
    )
    .await?;
    let out = load_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(out))
}

/// Delete a rotation (its overrides and escalation targets go with it).
/// Refused (409) when an escalation level relies on it alone.
#[utoipa::path(delete, path = "/api/v1/rotations/{id}", tag = "oncall",
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
    let before = broken(&mut tx).await?;
    let name: Option<String> = store::delete_rotation(&mut tx, id).await?;
    let name = name.ok_or_else(|| ApiError::NotFound(format!("rotation {id}")))?;
    still_intact(&mut tx, &before, &format!("delete rotation \"{name}\"")).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "rotation.delete",
        Some(format!("rotation:{id}")),
        json!({ "name": name }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Add an override: someone else is on call for a while (holiday, swap).
/// The latest-created override covering an instant wins.
#[utoipa::path(post, path = "/api/v1/rotations/{id}/overrides", tag = "oncall",
    request_body = OverrideInput,
    responses((status = 201, body = RotationOverride), (status = 400), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create_override(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(o): Json<OverrideInput>,
) -> ApiResult<(StatusCode, Json<RotationOverride>)> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let rotation: Option<String> = store::rotation_name(&mut tx, id).await?;
    let rotation = rotation.ok_or_else(|| ApiError::NotFound(format!("rotation {id}")))?;
    let names = validate::people(&mut tx, "person_id", &[o.person_id]).await?;
    let person = names.get(&o.person_id).cloned().unwrap_or_default();
    if o.ends_at <= o.starts_at {
        return Err(ApiError::BadRequest(
            "ends_at: must be after starts_at".into(),
        ));
    }
    if o.ends_at - o.starts_at > MAX_OVERRIDE {
        return Err(ApiError::BadRequest(
            "ends_at: an override lasts at most a year (366 days)".into(),
        ));
    }
    if o.ends_at <= Utc::now() {
        return Err(ApiError::BadRequest("ends_at: already in the past".into()));
    }
    let reason = validate::text("reason", &o.reason, 500)?;
    let oid = store::insert_override(
        &mut tx,
        &store::NewOverride {
            rotation: id,
            person: o.person_id,
            starts_at: o.starts_at,
            ends_at: o.ends_at,
            reason: &reason,
            created_by: &auth.principal.username,
        },
    )
    .await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "rotation.override.create",
        Some(format!("rotation:{id}")),
        json!({
            "rotation": rotation,
            "override_id": oid,
            "person": person,
            "starts_at": o.starts_at,
            "ends_at": o.ends_at,
            "reason": reason,
        }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok((
        StatusCode::CREATED,
        Json(RotationOverride {
            id: oid,
            person: PersonRef {
                id: o.person_id,
                name: person,
            },
            starts_at: o.starts_at,
            ends_at: o.ends_at,
            reason,
            created_by: auth.principal.username.clone(),
        }),
    ))
}

/// Remove an override.
#[utoipa::path(delete, path = "/api/v1/rotations/{id}/overrides/{override_id}", tag = "oncall",
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_override(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path((id, override_id)): Path<(i64, i64)>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let row = store::delete_override(&mut tx, id, override_id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("override {override_id} of rotation {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "rotation.override.delete",
        Some(format!("rotation:{id}")),
        json!({
            "rotation": row.rotation,
            "override_id": override_id,
            "person": row.person,
            "starts_at": row.starts_at,
            "ends_at": row.ends_at,
        }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Who is on call now and next, for every rotation (overrides applied).
#[utoipa::path(get, path = "/api/v1/oncall", tag = "oncall",
    responses((status = 200, body = Vec<OnCall>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn oncall(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<OnCall>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(who_is_on_call(&mut conn, Utc::now()).await?))
}
