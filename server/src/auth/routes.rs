//! `/api/v1/auth/*` and `/api/v1/me*`: logging in and out, who am I, and
//! changing one's own password.

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{AppendHeaders, IntoResponse};
use opsdeck_wire::{ChangePasswordRequest, LoginRequest, Me, Outcome};
use serde_json::json;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::{password, sessions, store, throttle, Authenticated, RequestCtx, Via};
use crate::audit::Actor;
use crate::error::{ApiError, ApiResult, Json};
use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
}

fn me_of(p: &super::Principal) -> Me {
    Me {
        id: p.user_id,
        username: p.username.clone(),
        display_name: p.display_name.clone(),
        role: p.role,
        must_change_password: p.must_change_password,
        via: p.via(),
    }
}

/// Log in with username and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Me), (status = 401, description = "invalid credentials"),
              (status = 429, description = "too many failed attempts; see Retry-After")))]
async fn login(
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<LoginRequest>,
) -> ApiResult<impl IntoResponse> {
    let username = req.username.trim().to_ascii_lowercase();
    if username.is_empty() || username.len() > 64 || req.password.len() > 1024 {
        return Err(ApiError::InvalidCredentials);
    }
    let source = ctx.source.clone().unwrap_or_else(|| "unknown".into());
    let user = store::login_user(&state.pool, &username).await?;
    let known = match &user {
        Some(u) => throttle::is_known_source(&state.pool, u.id, &source).await?,
        None => false,
    };
    if let Some(wait) = throttle::admit(&state.pool, &source, &username, known).await? {
        // No entry of its own: the audit middleware records the refusal,
        // folded into one entry per source and minute (see `http::refusals`).
        return Err(ApiError::TooManyAttempts { retry_after: wait });
    }
    let ok = password::verify(req.password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let user = match user {
        Some(u) if ok && u.disabled_at.is_none() => u,
        other => {
            // Already counted by `admit`.
            let reason = match other {
                None => "unknown user",
                Some(u) if u.disabled_at.is_some() => "account disabled",
                Some(_) => "wrong password",
            };
            let mut tx = state.pool.begin().await?;
            ctx.audit_as(
                &mut tx,
                Actor::anonymous(),
                "auth.login",
                Some(format!("user:{username}")),
                json!({}),
                Outcome::Failure,
                Some(reason.into()),
            )
            .await?;
            ctx.commit(tx).await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    throttle::record_success(&state.pool, &source, &username, user.id).await?;
    let mut tx = state.pool.begin().await?;
    let token = sessions::create(
        &mut tx,
        &state.settings,
        user.id,
        ctx.source.as_deref(),
        ctx.user_agent.as_deref(),
    )
    .await?;
    store::touch_login(&mut tx, user.id).await?;
    let actor = Actor {
        id: Some(user.id),
        name: user.username.clone(),
        kind: "user",
    };
    ctx.audit_as(
        &mut tx,
        actor,
        "auth.login",
        Some(format!("user:{}", user.username)),
        json!({}),
        Outcome::Success,
        None,
    )
    .await?;
    ctx.commit(tx).await?;
    let me = Me {
        id: user.id,
        username: user.username,
        display_name: user.display_name,
        role: user.role.into(),
        must_change_password: user.must_change_password,
        via: opsdeck_wire::AuthVia::Session,
    };
    Ok((
        AppendHeaders([(
            header::SET_COOKIE,
            sessions::cookie(&state.settings, &token),
        )]),
        Json(me),
    ))
}

/// End the current session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401)),
    security(("session" = ["viewer"])))]
async fn logout(
    Authenticated(p): Authenticated,
    ctx: RequestCtx,
    State(state): State<AppState>,
) -> ApiResult<impl IntoResponse> {
    let Via::Session { token_hash } = &p.via else {
        return Err(ApiError::BadRequest(
            "API tokens have no session to end; revoke the token instead".into(),
        ));
    };
    let mut tx = state.pool.begin().await?;
    sessions::end(&mut tx, token_hash).await?;
    ctx.audit(
        &mut tx,
        &p,
        "auth.logout",
        Some(format!("user:{}", p.username)),
        json!({}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(header::SET_COOKIE, sessions::clear_cookie(&state.settings))]),
    ))
}

/// Who am I.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses((status = 200, body = Me), (status = 401)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn me(Authenticated(p): Authenticated) -> Json<Me> {
    Json(me_of(&p))
}

/// Change my password. Ends all my sessions and starts a fresh one for this browser.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", request_body = ChangePasswordRequest,
    responses((status = 204), (status = 400), (status = 401)),
    security(("session" = ["viewer"])))]
async fn change_password(
    Authenticated(p): Authenticated,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(req): Json<ChangePasswordRequest>,
) -> ApiResult<impl IntoResponse> {
    if !matches!(p.via, Via::Session { .. }) {
        return Err(ApiError::Forbidden(
            "an API token cannot change a password".into(),
        ));
    }
    let stored = store::password_hash(&state.pool, p.user_id).await?;
    if req.current_password.len() > 1024
        || !password::verify(req.current_password.clone(), Some(stored)).await?
    {
        return Err(ApiError::BadRequest(
            "the current password is not correct".into(),
        ));
    }
    if req.new_password == req.current_password {
        return Err(ApiError::BadRequest(
            "the new password must differ from the current one".into(),
        ));
    }
    password::check_policy(&req.new_password, &p.username)?;
    let hash = password::hash(req.new_password).await?;
    let mut tx = state.pool.begin().await?;
    let ended = password::set(&mut tx, p.user_id, &hash, false).await?;
    let token = sessions::create(
        &mut tx,
        &state.settings,
        p.user_id,
        ctx.source.as_deref(),
        ctx.user_agent.as_deref(),
    )
    .await?;
    ctx.audit(
        &mut tx,
        &p,
        "user.password_change",
        Some(format!("user:{}", p.username)),
        json!({"sessions_ended": ended}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok((
        StatusCode::NO_CONTENT,
        AppendHeaders([(
            header::SET_COOKIE,
            sessions::cookie(&state.settings, &token),
        )]),
    ))
}
