//! `/api/v1/channels…` and `/api/v1/notifications`.
//!
//! Channels are admin-only in full (a Slack or Teams webhook URL is a
//! credential): list, create (201), get, replace (`PUT`), delete (204),
//! and `POST …/{id}/test`, which sends a test message synchronously (within
//! the 15 s delivery deadline, the SSRF guard applies) and records it as a
//! `kind = 'test'` notification with its attempt. Writes are validated at
//! the boundary (messages name the field): name 1–100 characters, unique
//! (409); kind webhook|slack|teams|email|sms; URL kinds need an http(s) URL
//! that passes [`super::guard::check_url`]; e-mail needs `smtp_host`
//! (checked like URL hosts), `smtp_tls` none|starttls|tls (default
//! starttls; the port defaults to 25/587/465 by it) and a `from` mailbox.
//! Only the kind's own config fields are stored. The secret is write-only:
//! `None` keeps it, `""` clears it; reads say `has_secret`. A channel's
//! severities are its `channel_rules` rows, replaced in the same
//! transaction. Audit entries (`channel.create|update|delete|test`) carry
//! name, kind, enabled and severities only: never URLs, addresses of SMTP
//! servers' users, or secrets.
//!
//! `GET /api/v1/notifications?incident_id=&limit=` (viewers) lists outbox
//! rows newest first (hosts, never URLs).
//!
//! [`acklink`]: the acknowledge link's pages and `GET /ack/{token}`.

pub mod acklink;

use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use lettre::message::Mailbox;
use opsdeck_wire::{
    Channel, ChannelConfig, ChannelInput, ChannelTestRequest, ChannelTestResult, Notification,
    Outcome, Severity,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sqlx::PgConnection;
use utoipa::IntoParams;
use utoipa_axum::{router::OpenApiRouter, routes};

use super::send::{self, Outgoing};
use super::{guard, outbox, public_base, store};
use crate::audit::Actor;
use crate::auth::{Admin, Auth, RequestCtx, Viewer};
use crate::error::{ApiError, ApiResult, Json, Path, Query};
use crate::state::AppState;

pub const KINDS: [&str; 5] = ["webhook", "slack", "teams", "email", "sms"];

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get_one, update, delete))
        .routes(routes!(test_channel))
        .routes(routes!(list_notifications))
}

// ----------------------------------------------------------------- validation

/// A write, checked and normalised.
#[derive(Debug)]
struct Checked {
    name: String,
    kind: String,
    config: ChannelConfig,
    severities: Vec<Severity>,
}

fn bad(field: &str, msg: impl std::fmt::Display) -> ApiError {
    ApiError::BadRequest(format!("{field}: {msg}"))
}

fn check(input: &ChannelInput, allow_link_local: bool) -> ApiResult<Checked> {
    let name = input.name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > 100 {
        return Err(bad("name", "1–100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(bad("name", "no control characters"));
    }
    let kind = input.kind.trim();
    if !KINDS.contains(&kind) {
        return Err(bad("kind", format!("one of {}", KINDS.join(", "))));
    }
    if let Some(s) = &input.secret {
        if s.len() > 4096 {
            return Err(bad("secret", "at most 4096 characters"));
        }
    }
    let c = &input.config;
    let config = if kind == "email" {
        let host = c.smtp_host.as_deref().map(str::trim).unwrap_or_default();
        guard::check_smtp_host(host, allow_link_local).map_err(|e| bad("smtp_host", e))?;
        let tls = c
            .smtp_tls
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .unwrap_or("starttls");
        if !["none", "starttls", "tls"].contains(&tls) {
            return Err(bad("smtp_tls", "one of none, starttls, tls"));
        }
        let port = match c.smtp_port {
            Some(0) => return Err(bad("smtp_port", "1–65535")),
            Some(p) => p,
            None => send::default_smtp_port(tls),
        };
        let username = c
            .smtp_username
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty());
        if username.is_some_and(|u| u.len() > 320 || u.chars().any(char::is_control)) {
            return Err(bad(
                "smtp_username",
                "at most 320 characters, no control characters",
            ));
        }
        let from = c.from.as_deref().map(str::trim).unwrap_or_default();
        if from.is_empty() {
            return Err(bad("from", "required (e.g. Opsdeck <opsdeck@example.com>)"));
        }
        let mailbox: Mailbox = from.parse().map_err(|_| {
            bad(
                "from",
                "not a valid e-mail address (e.g. Opsdeck <opsdeck@example.com>)",
            )
        })?;
        ChannelConfig {
            smtp_host: Some(host.to_owned()),
            smtp_port: Some(port),
            smtp_tls: Some(tls.to_owned()),
            smtp_username: username.map(str::to_owned),
            from: Some(mailbox.to_string()),
            ..Default::default()
        }
    } else {
        let url = c.url.as_deref().unwrap_or_default();
        let parsed = guard::check_url(url, allow_link_local).map_err(|e| bad("url", e))?;
        ChannelConfig {
            url: Some(parsed.to_string()),
            ..Default::default()
        }
    };
    let mut severities = input.severities.clone();
    severities.sort();
    severities.dedup();
    Ok(Checked {
        name: name.to_owned(),
        kind: kind.to_owned(),
        config,
        severities,
    })
}

/// Where a channel's secret is sent: the kind and the URL's origin
/// (scheme, host, port), or the SMTP server, port, TLS mode and user name.
/// A path change keeps the place (issue 19, finding 1).
fn secret_place(kind: &str, c: &ChannelConfig) -> String {
    if kind == "email" {
        return format!(
            "email|{:?}|{:?}|{:?}|{:?}",
            c.smtp_host.as_deref().map(str::to_ascii_lowercase),
            c.smtp_port,
            c.smtp_tls,
            c.smtp_username
        );
    }
    let url = c.url.as_deref().unwrap_or_default();
    match reqwest::Url::parse(url) {
        Ok(u) => format!(
            "{kind}|{}|{}|{:?}",
            u.scheme(),
            u.host_str().unwrap_or_default().to_ascii_lowercase(),
            u.port_or_known_default()
        ),
        Err(_) => format!("{kind}|{url}"),
    }
}

/// A write's database error as an answer (a duplicate name is a 409,
/// mapped in `crate::error`).
fn unique_name(e: sqlx::Error) -> ApiError {
    super::error::NotifyError::Db(e).into()
}

/// Audit parameters: never the URL, SMTP server or secret.
fn audit_params(c: &Checked, enabled: bool, credentials: &str) -> Value {
    json!({
        "name": c.name,
        "kind": c.kind,
        "enabled": enabled,
        "severities": c.severities.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "credentials": credentials,
    })
}

// ---------------------------------------------------------------------- reads

async fn load_one(conn: &mut PgConnection, id: i64) -> ApiResult<Channel> {
    store::channel(conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("channel {id}")))
}

async fn write_rules(
    conn: &mut PgConnection,
    id: i64,
    severities: &[Severity],
) -> sqlx::Result<()> {
    let levels: Vec<i16> = severities.iter().map(|s| s.level()).collect();
    store::set_rules(conn, id, &levels).await
}

impl Checked {
    fn fields(&self, enabled: bool) -> store::ChannelFields<'_> {
        store::ChannelFields {
            name: &self.name,
            kind: &self.kind,
            config: serde_json::to_value(&self.config).unwrap_or_default(),
            enabled,
        }
    }
}

/// Notification channels (URLs included: admins only).
#[utoipa::path(get, path = "/api/v1/channels", tag = "channels",
    responses((status = 200, body = Vec<Channel>)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn list(_auth: Auth<Admin>, State(state): State<AppState>) -> ApiResult<Json<Vec<Channel>>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(store::channels(&mut conn).await?))
}

/// One channel.
#[utoipa::path(get, path = "/api/v1/channels/{id}", tag = "channels",
    responses((status = 200, body = Channel), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn get_one(
    _auth: Auth<Admin>,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Channel>> {
    let mut conn = state.pool.acquire().await?;
    Ok(Json(load_one(&mut conn, id).await?))
}

// --------------------------------------------------------------------- writes

/// Add a channel.
#[utoipa::path(post, path = "/api/v1/channels", tag = "channels", request_body = ChannelInput,
    responses((status = 201, body = Channel), (status = 400), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn create(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Json(input): Json<ChannelInput>,
) -> ApiResult<(StatusCode, Json<Channel>)> {
    let c = check(&input, state.settings.notify_allow_link_local)?;
    let secret = input.secret.clone().filter(|s| !s.is_empty());
    let mut tx = state.pool.begin().await?;
    let id = store::insert_channel(&mut tx, &c.fields(input.enabled), secret.as_deref())
        .await
        .map_err(unique_name)?;
    write_rules(&mut tx, id, &c.severities).await?;
    let credentials = if secret.is_some() { "set" } else { "none" };
    ctx.audit(
        &mut tx,
        &auth.principal,
        "channel.create",
        Some(format!("channel:{id}")),
        audit_params(&c, input.enabled, credentials),
    )
    .await?;
    let channel = load_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok((StatusCode::CREATED, Json(channel)))
}

/// Replace a channel (the secret is kept unless given; `""` clears it).
#[utoipa::path(put, path = "/api/v1/channels/{id}", tag = "channels", request_body = ChannelInput,
    responses((status = 200, body = Channel), (status = 400), (status = 404), (status = 409)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn update(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(input): Json<ChannelInput>,
) -> ApiResult<Json<Channel>> {
    let c = check(&input, state.settings.notify_allow_link_local)?;
    let mut tx = state.pool.begin().await?;
    // The stored secret never follows a channel to another server: a new
    // URL origin or SMTP server needs it again in the same request.
    if let Some(cur) = store::channel(&mut tx, id).await? {
        if cur.has_secret
            && input.secret.is_none()
            && secret_place(&cur.kind, &cur.config) != secret_place(&c.kind, &c.config)
        {
            return Err(ApiError::invalid_field(
                "secret",
                "required again because the URL's host or the SMTP server changed \
                 (or send \"\" to remove it)",
            ));
        }
    }
    let (secret, credentials) = match input.secret.as_deref() {
        None => (None, "kept"),
        Some("") => (Some(None), "cleared"),
        Some(s) => (Some(Some(s)), "set"),
    };
    let found = store::update_channel(&mut tx, id, &c.fields(input.enabled), secret)
        .await
        .map_err(unique_name)?;
    if !found {
        return Err(ApiError::NotFound(format!("channel {id}")));
    }
    write_rules(&mut tx, id, &c.severities).await?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "channel.update",
        Some(format!("channel:{id}")),
        audit_params(&c, input.enabled, credentials),
    )
    .await?;
    let channel = load_one(&mut tx, id).await?;
    ctx.commit(tx).await?;
    Ok(Json(channel))
}

/// Delete a channel (queued messages for it are cancelled when due; sent
/// ones stay in the history with the channel's name).
#[utoipa::path(delete, path = "/api/v1/channels/{id}", tag = "channels",
    responses((status = 204), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn delete(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    let mut tx = state.pool.begin().await?;
    let (name, kind) = store::delete_channel(&mut tx, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("channel {id}")))?;
    ctx.audit(
        &mut tx,
        &auth.principal,
        "channel.delete",
        Some(format!("channel:{id}")),
        json!({"name": name, "kind": kind}),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Send a test message through a channel now (e-mail and SMS need `to`).
#[utoipa::path(post, path = "/api/v1/channels/{id}/test", tag = "channels",
    request_body = ChannelTestRequest,
    responses((status = 200, body = ChannelTestResult), (status = 400), (status = 404)),
    security(("session" = ["admin"]), ("token" = ["admin"])))]
async fn test_channel(
    auth: Auth<Admin>,
    ctx: RequestCtx,
    State(state): State<AppState>,
    Path(id): Path<i64>,
    Json(req): Json<ChannelTestRequest>,
) -> ApiResult<Json<ChannelTestResult>> {
    let mut conn = state.pool.acquire().await?;
    let channel = outbox::load_channel(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("channel {id}")))?;
    let to = req.to.as_deref().map(str::trim).unwrap_or_default();
    let address = match channel.kind.as_str() {
        "email" => {
            if to.is_empty() {
                return Err(bad(
                    "to",
                    "required for an e-mail channel (the address to send the test to)",
                ));
            }
            let mb: Mailbox = to
                .parse()
                .map_err(|_| bad("to", "not a valid e-mail address"))?;
            mb.to_string()
        }
        "sms" => {
            let digits = to.chars().filter(char::is_ascii_digit).count();
            if to.is_empty()
                || to.len() > 32
                || digits < 3
                || !to
                    .chars()
                    .all(|ch| ch.is_ascii_digit() || matches!(ch, '+' | ' ' | '-' | '(' | ')'))
            {
                return Err(bad("to", "a phone number (digits, +, spaces, dashes)"));
            }
            to.to_owned()
        }
        _ => channel
            .config
            .url
            .as_deref()
            .map(guard::host_of)
            .unwrap_or_default(),
    };
    let notification_id = store::next_notification_id(&mut conn).await?;
    drop(conn);
    let user = &auth.principal.username;
    let subject = format!("Opsdeck test notification ({})", channel.name);
    let body = format!(
        "This is a test of the {} channel \"{}\", sent by {user} at {} UTC. No action is needed.",
        send::kind_label(&channel.kind),
        channel.name,
        Utc::now().format("%Y-%m-%d %H:%M:%S"),
    );
    let out = Outgoing {
        notification_id,
        kind: "test".into(),
        incident: None,
        run_id: None,
        person_name: None,
        address: address.clone(),
        severity: Severity::P4,
        subject: subject.clone(),
        body: body.clone(),
        ack_url: None,
        base: public_base(&state.settings),
    };
    let started = std::time::Instant::now();
    let result = send::deliver(&channel, &out, state.settings.notify_allow_link_local).await;
    let duration_ms = started.elapsed().as_millis().min(i32::MAX as u128) as i32;
    let (ok, detail) = match &result {
        Ok(d) => (true, d.clone()),
        Err(e) => (false, e.to_string()),
    };
    let mut tx = state.pool.begin().await?;
    store::record_test(
        &mut tx,
        &store::TestMessage {
            id: notification_id,
            channel_id: channel.id,
            channel_name: &channel.name,
            channel_kind: &channel.kind,
            address: &address,
            subject: &subject,
            body: &body,
            ok,
            detail: &detail,
            duration_ms,
        },
    )
    .await?;
    ctx.audit_as(
        &mut tx,
        Actor::of(&auth.principal),
        "channel.test",
        Some(format!("channel:{}", channel.id)),
        json!({"name": channel.name, "kind": channel.kind, "notification_id": notification_id}),
        if ok {
            Outcome::Success
        } else {
            Outcome::Failure
        },
        Some(detail.clone()),
    )
    .await?;
    ctx.commit(tx).await?;
    Ok(Json(ChannelTestResult { ok, detail }))
}

/// Filters for `GET /api/v1/notifications`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationFilter {
    /// Only this incident's messages.
    pub incident_id: Option<i64>,
    /// 1–500 (default 100).
    pub limit: Option<i64>,
}

/// Outbox messages, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "channels", params(NotificationFilter),
    responses((status = 200, body = Vec<Notification>), (status = 400)),
    security(("session" = ["viewer"]), ("token" = ["viewer"])))]
async fn list_notifications(
    _auth: Auth<Viewer>,
    State(state): State<AppState>,
    Query(f): Query<NotificationFilter>,
) -> ApiResult<Json<Vec<Notification>>> {
    let limit = f.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(bad("limit", "between 1 and 500"));
    }
    let mut conn = state.pool.acquire().await?;
    Ok(Json(list_for(&mut conn, f.incident_id, limit).await?))
}

/// Outbox rows newest first (optionally one incident's): also for the
/// incident page.
pub async fn list_for(
    conn: &mut PgConnection,
    incident_id: Option<i64>,
    limit: i64,
) -> sqlx::Result<Vec<Notification>> {
    store::notifications(conn, incident_id, limit).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(kind: &str, config: ChannelConfig) -> ChannelInput {
        ChannelInput {
            name: " ops ".into(),
            kind: kind.into(),
            config,
            secret: None,
            enabled: true,
            severities: vec![Severity::P2, Severity::P1, Severity::P2],
        }
    }

    #[test]
    fn writes_are_checked_and_normalised() {
        let c = check(
            &input(
                "slack",
                ChannelConfig {
                    url: Some("https://hooks.example.com/services/x".into()),
                    smtp_host: Some("ignored".into()),
                    ..Default::default()
                },
            ),
            false,
        )
        .unwrap();
        assert_eq!(c.name, "ops");
        assert_eq!(c.severities, vec![Severity::P1, Severity::P2]);
        assert_eq!(c.config.smtp_host, None, "only the kind's fields are kept");
        let e = check(
            &input(
                "email",
                ChannelConfig {
                    smtp_host: Some("smtp.example.com".into()),
                    smtp_tls: Some("tls".into()),
                    from: Some("Opsdeck <ops@example.com>".into()),
                    ..Default::default()
                },
            ),
            false,
        )
        .unwrap();
        assert_eq!(e.config.smtp_port, Some(465));
        for (kind, cfg, field) in [
            ("pager", ChannelConfig::default(), "kind"),
            ("webhook", ChannelConfig::default(), "url"),
            (
                "email",
                ChannelConfig {
                    smtp_host: Some("smtp.example.com".into()),
                    smtp_tls: Some("ssl".into()),
                    from: Some("a@b.c".into()),
                    ..Default::default()
                },
                "smtp_tls",
            ),
            (
                "email",
                ChannelConfig {
                    smtp_host: Some("smtp.example.com".into()),
                    from: Some("not an address".into()),
                    ..Default::default()
                },
                "from",
            ),
        ] {
            let err = check(&input(kind, cfg), false).unwrap_err().to_string();
            assert!(err.starts_with(field), "{field}: {err}");
        }
    }
}
