//! People and teams: `/api/v1/people…`, `/api/v1/teams…`.
//!
//! A person is someone who can be notified (not necessarily an Opsdeck
//! user; `user_id` links one). Contact details are validated at the
//! boundary: e-mail `local@domain.tld`; phone `+`, then digits, spaces and
//! dashes; blank means none. A team is a named set of people; its members
//! are replaced as a whole on PUT. Deleting a person or a team, or emptying
//! a team, is refused (409) when it would leave a rotation without members
//! or an escalation level reaching nobody (see the module documentation).

use axum::extract::State;
use axum::http::StatusCode;
use opsdeck_wire::{Person, PersonInput, PersonRef, Team, TeamInput};
use serde_json::{json, Value};
use sqlx::PgConnection;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{unique, validate};
use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::oncall::{broken, lock, still_intact, store};
use crate::state::AppState;

/// Most members a team can have.
const MAX_TEAM_MEMBERS: usize = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_people, create_person))
        .routes(routes!(get_person, update_person, delete_person))
        .routes(routes!(list_teams, create_team))
        .routes(routes!(get_team, update_team, delete_team))
}

// ------------------------------------------------------------------- people

async fn load_person(conn: &mut PgConnection, id: i64) -> ApiResult<Person> {
    store::person(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("person {id}")))
}

/// A person's input, checked.
struct CheckedPerson {
    name: String,
    title: String,
    email: Option<String>,
    phone: Option<String>,
    chat_handle: Option<String>,
    user_id: Option<i64>,
}

async fn check_person(conn: &mut PgConnection, p: &PersonInput) -> ApiResult<CheckedPerson> {
    let c = CheckedPerson {
        name: validate::name("name", &p.name)?,
        title: validate::text("title", &p.title, 100)?,
        email: validate::email(&p.email)?,
        phone: validate::phone(&p.phone)?,
        chat_handle: validate::chat_handle(&p.chat_handle)?,
        user_id: p.user_id,
    };
    if let Some(u) = c.user_id {
        if !store::user_exists(conn, u).await? {
            return Err(ApiError::BadRequest(format!(
                "user_id: no user with id {u}"
            )));
        }
    }
    Ok(c)
}

impl CheckedPerson {
    fn row(&self) -> store::PersonRow<'_> {
        store::PersonRow {
            name: &self.name,
            title: &self.title,
            email: self.email.as_deref(),
            phone: self.phone.as_deref(),
            chat_handle: self.chat_handle.as_deref(),
            user_id: self.user_id,
        }
    }
}

/// Names and settings, never the contact details themselves.
fn person_params(c: &CheckedPerson) -> Value {
    let contact: Vec<&str> = [
        ("email", c.email.is_some()),
        ("phone", c.phone.is_some()),
        ("chat_handle", c.chat_handle.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, set)| set.then_some(k))
    .collect();
    json!({
        "name": c.name,
        "title": c.title,
        "user_id": c.user_id,
        "contact_fields": contact,
    })
}

/// People, by name.
#[utoipa::path(get, path = "/api/v1/people", tag = "contacts",
    responses((status = 200, body = Vec<Person>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_people(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Person>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(store::people(&mut conn).await?))
}

/// One person.
#[utoipa::path(get, path = "/api/v1/people/{id}", tag = "contacts",
    responses((status = 200, body = Person), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_person(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Person>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load_person(&mut conn, id).await?))
}

/// Add a person.
#[utoipa::path(post, path = "/api/v1/people", tag = "contacts", request_body = PersonInput,
    responses((status = 201, body = Person), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create_person(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(p): Json<PersonInput>,
) -> ApiResult<(StatusCode, Json<Person>)> {
    let mut tx = state.pool.begin().await?;
    let c = check_person(&mut tx, &p).await?;
    let id = store::insert_person(&mut tx, &c.row())
        .await
        .map_err(unique)?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "person.create",
        Some(format!("person:{id}")),
        person_params(&c),
    )
    .await?;
    let out = load_person(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Replace a person's details.
#[utoipa::path(put, path = "/api/v1/people/{id}", tag = "contacts", request_body = PersonInput,
    responses((status = 200, body = Person), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update_person(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(p): Json<PersonInput>,
) -> ApiResult<Json<Person>> {
    let mut tx = state.pool.begin().await?;
    let c = check_person(&mut tx, &p).await?;
    let found = store::update_person(&mut tx, id, &c.row())
        .await
        .map_err(unique)?;
    if !found {
        return Err(ApiError::NotFound(format!("person {id}")));
    }
    ctx.audit(
        &mut tx,
        &auth.principal,
        "person.update",
        Some(format!("person:{id}")),
        person_params(&c),
    )
    .await?;
    let out = load_person(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(out))
}

/// Delete a person (their team memberships, rotation turns, overrides and
/// escalation targets go with them). Refused (409) when they are the last
/// member of a rotation or the last one an escalation level reaches.
#[utoipa::path(delete, path = "/api/v1/people/{id}", tag = "contacts",
    responses((status = 204), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_person(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let before = broken(&mut tx).await?;
    let name = store::delete_person(&mut tx, id).await?;
    let name = name.ok_or_else(|| ApiError::NotFound(format!("person {id}")))?;
    still_intact(&mut tx, &before, &format!("delete person \"{name}\"")).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "person.delete",
        Some(format!("person:{id}")),
        json!({ "name": name }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

// -------------------------------------------------------------------- teams

async fn load_teams(conn: &mut PgConnection, id: Option<i64>) -> sqlx::Result<Vec<Team>> {
    let rows = store::teams(&mut *conn, id).await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let members = store::team_members(&mut *conn, &ids).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            let id = r.id;
            Team {
                id,
                name: r.name,
                description: r.description,
                members: members
                    .iter()
                    .filter(|(t, _, _)| *t == id)
                    .map(|(_, pid, name)| PersonRef {
                        id: *pid,
                        name: name.clone(),
                    })
                    .collect(),
            }
        })
        .collect())
}

async fn load_team(conn: &mut PgConnection, id: i64) -> ApiResult<Team> {
    load_teams(conn, Some(id))
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound(format!("team {id}")))
}

struct CheckedTeam {
    name: String,
    description: String,
    /// (id, name) in input order.
    members: Vec<(i64, String)>,
}

async fn check_team(conn: &mut PgConnection, t: &TeamInput) -> ApiResult<CheckedTeam> {
    let name = validate::name("name", &t.name)?;
    let description = validate::text("description", &t.description, 1000)?;
    if t.members.len() > MAX_TEAM_MEMBERS {
        return Err(ApiError::BadRequest(format!(
            "members: at most {MAX_TEAM_MEMBERS}"
        )));
    }
    validate::no_duplicates("members", &t.members)?;
    let names = validate::people(conn, "members", &t.members).await?;
    Ok(CheckedTeam {
        name,
        description,
        members: t
            .members
            .iter()
            .map(|id| (*id, names.get(id).cloned().unwrap_or_default()))
            .collect(),
    })
}

async fn set_members(
    conn: &mut PgConnection,
    team: i64,
    members: &[(i64, String)],
) -> sqlx::Result<()> {
    let ids: Vec<i64> = members.iter().map(|(id, _)| *id).collect();
    store::set_team_members(conn, team, &ids).await?;
    Ok(())
}

fn team_params(c: &CheckedTeam) -> Value {
    json!({
        "name": c.name,
        "description": c.description,
        "members": c.members.iter().map(|(_, n)| n).collect::<Vec<_>>(),
    })
}

/// Teams with their members, by name.
#[utoipa::path(get, path = "/api/v1/teams", tag = "contacts",
    responses((status = 200, body = Vec<Team>)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_teams(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<Team>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load_teams(&mut conn, None).await?))
}

/// One team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "contacts",
    responses((status = 200, body = Team), (status = 404)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn get_team(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Team>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load_team(&mut conn, id).await?))
}

/// Add a team.
#[utoipa::path(post, path = "/api/v1/teams", tag = "contacts", request_body = TeamInput,
    responses((status = 201, body = Team), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create_team(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(t): Json<TeamInput>,
) -> ApiResult<(StatusCode, Json<Team>)> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let c = check_team(&mut tx, &t).await?;
    let id = store::insert_team(&mut tx, &c.name, &c.description)
        .await
        .map_err(unique)?;
    set_members(&mut tx, id, &c.members).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "team.create",
        Some(format!("team:{id}")),
        team_params(&c),
    )
    .await?;
    let out = load_team(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(out)))
}

/// Replace a team (its members as a whole). Refused (409) when emptying it
/// leaves an escalation level reaching nobody.
#[utoipa::path(put, path = "/api/v1/teams/{id}", tag = "contacts", request_body = TeamInput,
    responses((status = 200, body = Team), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update_team(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(t): Json<TeamInput>,
) -> ApiResult<Json<Team>> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let c = check_team(&mut tx, &t).await?;
    let before = broken(&mut tx).await?;
    let found = store::update_team(&mut tx, id, &c.name, &c.description)
        .await
        .map_err(unique)?;
    if !found {
        return Err(ApiError::NotFound(format!("team {id}")));
    }
    set_members(&mut tx, id, &c.members).await?;
    still_intact(&mut tx, &before, &format!("update team \"{}\"", c.name)).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "team.update",
        Some(format!("team:{id}")),
        team_params(&c),
    )
    .await?;
    let out = load_team(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(out))
}

/// Delete a team (its rotations stay, without the link). Refused (409) when
/// it is what an escalation level relies on.
#[utoipa::path(delete, path = "/api/v1/teams/{id}", tag = "contacts",
    responses((status = 204), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete_team(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    lock(&mut tx).await?;
    let before = broken(&mut tx).await?;
    let name = store::delete_team(&mut tx, id).await?;
    let name = name.ok_or_else(|| ApiError::NotFound(format!("team {id}")))?;
    still_intact(&mut tx, &before, &format!("delete team \"{name}\"")).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "team.delete",
        Some(format!("team:{id}")),
        json!({ "name": name }),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}
