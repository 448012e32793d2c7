//! The router and the middleware every request passes.
//!
//! Order, outermost first: HTTP latency metrics → request id → tracing →
//! compression → timeout → body limit → Host allow-list → per-source rate
//! limits (`edge`) → security headers → CSRF check → request slots and
//! audit of mutating requests → route. Anonymous refusals are audited once
//! per source and minute (`refusals`). Each capability module contributes an
//! `OpenApiRouter`; they are merged here and the OpenAPI document is the
//! by-product (see `openapi.rs`).

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use opsdeck_wire::Outcome;
use serde_json::json;
use tower::ServiceBuilder;
use tower_http::compression::CompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;

use crate::audit::{self, Actor, NewEntry};
use crate::auth::{self, RequestSlots};
use crate::error::error_response;
use crate::state::AppState;

pub mod edge;
pub mod refusals;

use edge::Edge;

/// Largest request body accepted (JSON API).
pub const BODY_LIMIT: usize = 1024 * 1024;
/// Default request timeout: requests taking longer are answered 408 (long
/// work runs as background jobs; container actions and exec finish and
/// audit in a detached task, see `actions::run`). `OPSDECK_REQUEST_TIMEOUT_SECS`
/// changes it (`Settings::request_timeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Every API route, with its OpenAPI description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(auth::routes::router())
        .merge(auth::tokens::router())
        .merge(crate::users::router())
        .merge(auth::audit_log::router())
        .merge(crate::engines::router())
        .merge(crate::fleet::router())
        .merge(crate::inventory::router())
        .merge(crate::onboard::router())
        .merge(crate::actions::router())
        .merge(crate::logs::router())
        .merge(crate::checks::router())
        .merge(crate::runbooks::api::router())
        .merge(crate::runbooks::approvals::router())
        .merge(crate::runbooks::schedules::router())
        .merge(crate::runbooks::bindings::api::router())
        .merge(crate::incidents::router())
        .merge(crate::oncall::api::router())
        .merge(crate::notify::router())
        .merge(crate::maintenance::api::router())
        .merge(crate::backups::api::router())
        .merge(crate::cleanup::router())
        .merge(crate::updates::router())
        .merge(crate::resources::router())
}

/// The whole application.
pub fn app(state: AppState) -> Router {
    let (api, paths) = api_router().split_for_parts();
    let openapi = crate::openapi::serve(paths);
    let request_id = HeaderName::from_static("x-request-id");
    let edge = Edge::new(state.clone());
    Router::new()
        .merge(api)
        .route("/api/v1/openapi.json", get(move || async move { openapi }))
        .route("/healthz", get(crate::health::healthz))
        .route("/readyz", get(crate::health::readyz))
        .route("/status", get(crate::checks::page))
        .route("/status.css", get(crate::checks::css))
        .fallback(crate::web::fallback)
        .method_not_allowed_fallback(|| async {
            error_response(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "method not allowed on this route")
        })
        .layer(middleware::from_fn_with_state(edge.clone(), audit_requests))
        .layer(middleware::from_fn_with_state(edge.clone(), csrf))
        // Heartbeats come from cron jobs with a capability URL: no session,
        // no CSRF surface, recorded as probe results (see `checks`).
        .route(
            "/api/v1/heartbeat/{token}",
            get(crate::checks::heartbeat).post(crate::checks::heartbeat),
        )
        // Acknowledge links are capability URLs opened from e-mail and chat:
        // no session, GET shows a confirmation, the form POSTs without a
        // cookie (see `notify::acklink`).
        .route(
            "/ack/{token}",
            get(crate::notify::api::acklink::page).post(crate::incidents::api::ack::confirm),
        )
        // Prometheus scrapes with its own bearer token, an API token of
        // scope `metrics:read`, or on the separate metrics listener: no
        // session, GET only, outside the OpenAPI document (see `metrics`).
        .route("/metrics", get(crate::scrape::main_listener))
        .layer(middleware::from_fn_with_state(state.clone(), security_headers))
        .layer(middleware::from_fn_with_state(edge.clone(), edge::limit))
        .layer(middleware::from_fn_with_state(edge.clone(), edge::check_host))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(TraceLayer::new_for_http().make_span_with(|req: &Request| {
                    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                    // Capability tokens in paths never reach the log.
                    let path = edge::loggable_path(req.uri().path());
                    tracing::info_span!("http", method = %req.method(), path = %path, request_id = %id)
                }))
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(CompressionLayer::new())
                .layer(RequestBodyLimitLayer::new(BODY_LIMIT))
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, state.settings.request_timeout)),
        )
        // Outermost: every answer (timeouts, rejections included) is timed
        // under its route template.
        .layer(middleware::from_fn_with_state(state.metrics.clone(), crate::metrics::track_http))
        .with_state(state)
}

fn is_mutating(m: &Method) -> bool {
    !matches!(
        *m,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    )
}

/// Security headers on every answer.
async fn security_headers(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    if let Ok(csp) = HeaderValue::from_str(&state.web().csp) {
        h.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static("camera=(), microphone=(), geolocation=()"),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if state.settings.secure_cookies {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    res
}

/// CSRF defence for state-changing requests that could carry the session
/// cookie: a present `Origin` must be this panel's; and the request must have
/// a JSON content type or the non-simple `X-Requested-With` header, which a
/// cross-site form cannot send without a CORS preflight (and Opsdeck answers
/// no preflight). Requests authenticated only by a bearer token carry no
/// ambient credentials and are exempt.
async fn csrf(State(edge): State<Edge>, req: Request, next: Next) -> Response {
    let state = &edge.state;
    if !is_mutating(req.method()) {
        return next.run(req).await;
    }
    let headers = req.headers();
    let bearer_only = headers.contains_key(header::AUTHORIZATION)
        && auth::session_cookie(headers, state.settings.secure_cookies).is_none();
    if bearer_only {
        return next.run(req).await;
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or_default().to_ascii_lowercase();
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default()
            .to_ascii_lowercase();
        let same_host = origin == format!("http://{host}") || origin == format!("https://{host}");
        let public = state.settings.public_origin.as_deref() == Some(origin.as_str());
        if !(same_host || public) {
            return reject_csrf(&edge, &req, "cross-origin request refused").await;
        }
    }
    if headers
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes() == b"cross-site")
    {
        return reject_csrf(&edge, &req, "cross-site request refused").await;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
        });
    if !json && !headers.contains_key("x-requested-with") {
        return reject_csrf(
            &edge,
            &req,
            "state-changing requests need Content-Type: application/json",
        )
        .await;
    }
    next.run(req).await
}

fn reject_csrf(
    edge: &Edge,
    req: &Request,
    message: &'static str,
) -> impl std::future::Future<Output = Response> + Send + 'static {
    let entry = NewEntry {
        actor: Actor::anonymous(),
        action: "request.rejected".into(),
        target: Some(format!("{} {}", req.method(), req.uri().path())),
        params: json!({"status": 403}),
        source: auth::source_of(
            req.headers(),
            req.extensions(),
            &edge.state.settings.trusted_proxies,
        ),
        outcome: Outcome::Denied,
        detail: Some(message.into()),
    };
    let refusals = edge.refusals.clone();
    async move {
        refusals.record(entry).await;
        error_response(StatusCode::FORBIDDEN, "csrf_rejected", message)
    }
}

/// Gives handlers their [`RequestSlots`] and makes sure every mutating request
/// leaves an audit entry: handlers record their own (in the change's
/// transaction); when a mutating request ends without one — refused, invalid,
/// or failed — this records `request.denied` / `request.failed`. A successful
/// mutating request without an entry is recorded as `request.unaudited`
/// (a bug the test suite looks for).
async fn audit_requests(State(edge): State<Edge>, mut req: Request, next: Next) -> Response {
    let state = &edge.state;
    let slots = RequestSlots::default();
    req.extensions_mut().insert(slots.clone());
    if !is_mutating(req.method()) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let ctx = auth::request_ctx(&parts, &state.settings.trusted_proxies);
    let target = format!("{} {}", parts.method, parts.uri.path());
    let res = next.run(Request::from_parts(parts, body)).await;
    if slots.is_audited() {
        return res;
    }
    let status = res.status();
    let (action, outcome) = if status.is_success() || status.is_redirection() {
        tracing::error!(%target, "mutating request succeeded without an audit entry");
        ("request.unaudited", Outcome::Success)
    } else if matches!(
        status,
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        ("request.denied", Outcome::Denied)
    } else {
        ("request.failed", Outcome::Failure)
    };
    let principal = slots.principal.get();
    let anonymous = principal.is_none();
    let actor = principal.map(Actor::of).unwrap_or_else(Actor::anonymous);
    let entry = NewEntry {
        actor,
        action: action.into(),
        target: Some(target),
        params: json!({"status": status.as_u16()}),
        source: ctx.source,
        outcome,
        detail: status.canonical_reason().map(str::to_owned),
    };
    if anonymous && action != "request.unaudited" {
        // Anyone can send these as fast as they like: one entry per source
        // and minute, with a count (see `refusals`).
        edge.refusals.record(entry).await;
    } else {
        write_fallback_entry(state, entry).await;
    }
    res
}

async fn write_fallback_entry(state: &AppState, entry: NewEntry) {
    let result = async {
        let mut conn = state.pool.acquire().await?;
        audit::record(&mut conn, entry).await
    }
    .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "could not write audit entry for a refused or failed request");
    }
}
