//! API tokens for automation.
//!
//! A token is `odk_` + 256 random bits; only its SHA-256 is stored, with the
//! first characters kept as a recognisable prefix. A token acts as its creator
//! with the lower of its own role and the creator's current role, and stops
//! working when it is revoked, expires, or its creator is disabled. Its
//! scopes ([`super::scope`]) narrow what it may do within that role; a token
//! created without scopes is `full`.

use axum::extract::State;
use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use opsdeck_wire::{ApiToken, CreateApiTokenRequest, CreatedApiToken, Role, TokenScope};
use serde_json::json;
use sqlx::PgPool;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{
    random_token, scope, store, token_hash, Admin, Auth, DbRole, Principal, RequestCtx, Via,
};
use crate::error::{ApiError, ApiResult, Json, Path};
use crate::state::AppState;

const PREFIX: &str = "odk_";
const TOUCH_EVERY: TimeDelta = TimeDelta::seconds(60);

/// The principal behind a bearer token, if the token is valid.
pub async fn lookup(pool: &PgPool, token: &str) -> sqlx::Result<Option<Principal>> {
    if !token.starts_with(PREFIX) {
        return Ok(None);
    }
    let hash = token_hash(token);
    let row = store::token_by_hash(pool, &hash).await?;
    let Some(row) = row else { return Ok(None) };
    let now = Utc::now();
    if row.revoked_at.is_some()
        || row.disabled_at.is_some()
        || row.expires_at.is_some_and(|e| e <= now)
    {
        return Ok(None);
    }
    if row.last_used_at.is_none_or(|t| now - t > TOUCH_EVERY) {
        store::touch_token(pool, row.id).await?;
    }
    let role = Role::from(row.role).min(Role::from(row.owner_role));
    Ok(Some(Principal {
        user_id: row.user_id,
        username: row.username,
        display_name: row.display_name,
        role,
        must_change_password: false,
        via: Via::Token {
            id: row.id,
            name: row.name,
            scopes: scope::parse_stored(&row.scopes),
        },
    }))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

async fn fetch_all(pool: &PgPool, id: Option<i64>) -> sqlx::Result<Vec<ApiToken>> {
    let rows = store::tokens(pool, id).await?;
    Ok(rows
        .into_iter()
        .map(|r| ApiToken {
            id: r.id,
            name: r.name,
            role: r.role.into(),
            prefix: r.prefix,
            created_by: r.created_by,
            created_at: r.created_at,
            last_used_at: r.last_used_at,
            expires_at: r.expires_at,
            revoked_at: r.revoked_at,
            scopes: scope::parse_stored(&r.scopes),
        })
        .collect())
}

/// List API tokens (active first).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens",
    responses((status = 200, body = Vec<ApiToken>)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn list(_auth: Auth<Admin>, State(state): State<AppState>) -> ApiResult<Json<Vec<ApiToken>>> {
    Ok(Json(fetch_all(&state.pool, None).await?))
}

/// Create an API token; the secret is in this answer only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = CreateApiTokenRequest,
    responses((status = 201, body = CreatedApiToken), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<CreateApiTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedApiToken>)> {
    let name = req.name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(
            "name must be 1 to 100 printable characters".into(),
        ));
    }
    if req.role > auth.principal.role {
        return Err(ApiError::Forbidden(
            "a token cannot have a higher role than its creator".into(),
        ));
    }
    let scopes = scopes_of(&req.scopes)?;
    let expires_at = match req.expires_in_days {
        Some(0) | Some(3651..) => {
            return Err(ApiError::BadRequest(
                "expires_in_days must be between 1 and 3650".into(),
            ))
        }
        Some(d) => Some(Utc::now() + TimeDelta::days(d.into())),
        None => None,
    };
    let secret = format!("{PREFIX}{}", random_token());
    let prefix: String = secret.chars().take(PREFIX.len() + 6).collect();
    let mut tx = state.pool.begin().await?;
    let id = store::insert_token(
        &mut tx,
        store::NewToken {
            name,
            hash: token_hash(&secret),
            prefix: &prefix,
            role: DbRole::from(req.role),
            scopes: &scopes,
            created_by: auth.principal.user_id,
            expires_at,
        },
    )
    .await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "token.create",
        Some(format!("token:{name}")),
        json!({"id": id, "role": req.role, "scopes": scopes, "expires_at": expires_at}),
    )
    .await?;
    ctx.commit(tx).await?;
    let info = fetch_all(&state.pool, Some(id))
        .await?
        .pop()
        .ok_or_else(|| ApiError::NotFound("token".into()))?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiToken {
            token: secret,
            info,
        }),
    ))
}

/// The scopes of a new token as stored: sorted, without repeats; `full`
/// alone when none are given. `full` with another scope is refused: it
/// would read as narrower than it is.
fn scopes_of(req: &[TokenScope]) -> Result<Vec<String>, ApiError> {
    let mut scopes: Vec<TokenScope> = req.to_vec();
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        scopes.push(TokenScope::Full);
    }
    if scopes.len() > 1 && scopes.contains(&TokenScope::Full) {
        return Err(ApiError::invalid_field(
            "scopes",
            "`full` already allows everything the role does; give it alone",
        ));
    }
    Ok(scopes.iter().map(|s| s.as_str().to_owned()).collect())
}

/// Revoke an API token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens",
    params(("id" = i64, Path, description = "token id")),
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn revoke(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let name = store::revoke_token(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("API token {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "token.revoke",
        Some(format!("token:{name}")),
        json!({"id": id}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}
