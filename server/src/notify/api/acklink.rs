//! The acknowledge link's pages (askama `ack.html`, styled by the public
//! status page's stylesheet) and `GET /ack/{token}`, the confirmation page
//! (never acknowledges). The link itself (mint, check, take) is
//! [`crate::notify::acklink`]; the POST is `incidents::api::ack::confirm`.

use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::notify::acklink::{check, token_ok, IncidentView, LinkState};
use crate::state::AppState;

#[derive(Template)]
#[template(path = "ack.html")]
pub struct AckPage {
    pub heading: String,
    pub class: &'static str,
    pub state: &'static str,
    pub message: String,
    pub incident: Option<IncidentView>,
    pub action: Option<String>,
    pub footer: &'static str,
}

pub const FOOTER: &str =
    "Opsdeck acknowledge link · each link works once and expires; log in to Opsdeck for more.";

pub fn render(status: StatusCode, page: AckPage) -> Response {
    match page.render() {
        Ok(html) => (
            status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the acknowledge page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "page unavailable").into_response()
        }
    }
}

pub fn refused_page(state: &LinkState) -> Response {
    let (status, heading, tag, message, incident) = match state {
        LinkState::Expired(i) => (
            StatusCode::GONE,
            "Link expired",
            "expired",
            "This acknowledge link has expired. Acknowledge the incident in Opsdeck instead.",
            i.clone(),
        ),
        LinkState::Used(i) => (
            StatusCode::GONE,
            "Link already used",
            "used",
            "This acknowledge link was already used; each link works once.",
            i.clone(),
        ),
        _ => (
            StatusCode::BAD_REQUEST,
            "Invalid link",
            "invalid",
            "This acknowledge link is not valid (it may have been cut off or changed). Acknowledge the incident in Opsdeck instead.",
            None,
        ),
    };
    render(
        status,
        AckPage {
            heading: heading.into(),
            class: if tag == "invalid" { "bad" } else { "none" },
            state: tag,
            message: message.into(),
            incident,
            action: None,
            footer: FOOTER,
        },
    )
}

pub fn failure_page() -> Response {
    render(
        StatusCode::SERVICE_UNAVAILABLE,
        AckPage {
            heading: "Try again".into(),
            class: "warn",
            state: "error",
            message: "Opsdeck cannot check this link right now (its database is unavailable). Try again in a moment.".into(),
            incident: None,
            action: None,
            footer: FOOTER,
        },
    )
}

/// `GET /ack/{token}`: the confirmation page (never acknowledges).
pub async fn page(
    State(state): State<AppState>,
    axum::extract::Path(token): axum::extract::Path<String>,
) -> Response {
    if !token_ok(&token) {
        return refused_page(&LinkState::Invalid);
    }
    let checked = async {
        let mut conn = state.pool.acquire().await?;
        check(&mut conn, &token).await
    }
    .await;
    match checked {
        Ok(LinkState::Valid { incident, who, .. }) => {
            let open = incident.status == "triggered";
            let message = if open {
                format!(
                    "Acknowledge this incident as {who}? Escalation stops once it is acknowledged."
                )
            } else {
                format!(
                    "This incident is already {}; there is nothing to acknowledge.",
                    incident.status
                )
            };
            render(
                StatusCode::OK,
                AckPage {
                    heading: "Acknowledge incident".into(),
                    class: if open { "warn" } else { "ok" },
                    state: if open { "confirm" } else { "not_triggered" },
                    message,
                    incident: Some(incident),
                    action: open.then(|| format!("/ack/{token}")),
                    footer: FOOTER,
                },
            )
        }
        Ok(other) => refused_page(&other),
        Err(e) => {
            tracing::warn!(error = %e, "checking an acknowledge link failed");
            failure_page()
        }
    }
}
