//! The public status page (`GET /status`): server-rendered with askama, no
//! login, no JavaScript.
//!
//! Only services an operator opted in (`services.public_status`) appear,
//! under their public name, with a public wording of their state and their
//! 24-hour uptime. Nothing else leaves: no hosts, URLs, check names, error
//! messages, dependency names ("impacted by" may name a private service),
//! or internal service names when a public name is set. Askama escapes all
//! text (the template is `.html`).

use askama::Template;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use opsdeck_wire::ServiceHealth;

use crate::state::AppState;

struct PublicService {
    name: String,
    class: &'static str,
    text: &'static str,
    uptime: Option<String>,
}

#[derive(Template)]
#[template(path = "status.html")]
struct StatusPage {
    title: &'static str,
    overall_class: &'static str,
    overall_text: &'static str,
    services: Vec<PublicService>,
    updated: String,
}

/// The public wording of a health.
pub fn public_state(h: ServiceHealth) -> (&'static str, &'static str) {
    match h {
        ServiceHealth::Operational => ("ok", "Operational"),
        ServiceHealth::Degraded => ("warn", "Degraded performance"),
        ServiceHealth::Impacted | ServiceHealth::Down => ("bad", "Outage"),
        ServiceHealth::Maintenance => ("maint", "Under maintenance"),
        ServiceHealth::Unknown => ("none", "No data"),
    }
}

pub async fn page(State(state): State<AppState>) -> Response {
    let (_, statuses) = state.health().statuses();
    let mut services: Vec<(String, ServiceHealth, Option<f64>)> = statuses
        .into_iter()
        .filter(|s| s.public)
        .map(|s| (s.public_name.unwrap_or(s.name), s.health, s.uptime.day))
        .collect();
    services.sort_by_key(|a| a.0.to_lowercase());
    let worst = services
        .iter()
        .map(|(_, h, _)| public_state(*h).0)
        .fold("ok", |acc, c| match (acc, c) {
            ("bad", _) | (_, "bad") => "bad",
            ("warn", _) | (_, "warn") => "warn",
            ("maint", _) | (_, "maint") => "maint",
            _ => "ok",
        });
    // Published services none of which has a settled check: nothing says
    // they are fine, so the page does not say "operational" either.
    let unmonitored = services
        .iter()
        .all(|(_, h, _)| *h == ServiceHealth::Unknown);
    let (overall_class, overall_text) = match (services.is_empty(), worst) {
        (true, _) => ("none", "No services are published"),
        _ if unmonitored => ("none", "Not monitored yet"),
        (_, "bad") => ("bad", "Some systems are down"),
        (_, "warn") => ("warn", "Some systems are degraded"),
        (_, "maint") => ("maint", "Scheduled maintenance in progress"),
        _ => ("ok", "All systems operational"),
    };
    let page = StatusPage {
        title: "System status",
        overall_class,
        overall_text,
        services: services
            .into_iter()
            .map(|(name, h, up)| {
                let (class, text) = public_state(h);
                PublicService {
                    name,
                    class,
                    text,
                    uptime: up.map(|u| format!("{u:.2} %")),
                }
            })
            .collect(),
        updated: chrono::Utc::now().format("%Y-%m-%d %H:%M").to_string(),
    };
    match page.render() {
        Ok(html) => (
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            html,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "rendering the status page failed");
            (StatusCode::INTERNAL_SERVER_ERROR, "status page unavailable").into_response()
        }
    }
}

pub async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        include_str!("../../../templates/status.css"),
    )
        .into_response()
}
