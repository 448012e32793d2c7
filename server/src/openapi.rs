//! The OpenAPI document, generated from the routes' `#[utoipa::path]`
//! annotations and the wire types. A copy is committed at
//! `server/openapi.json`; a test fails when the two differ (regenerate with
//! `UPDATE_OPENAPI=1 cargo test -p opsdeck openapi`).
//!
//! Security requirements name the minimum role as the scope
//! (`"session": ["operator"]`); routes without one are public.

use axum::http::header;
use axum::response::IntoResponse;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi;
use utoipa::{Modify, OpenApi as _};

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Opsdeck API", description = "Opsdeck: operations handbook as a control panel."),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Logging in and out, the current user"),
        (name = "users", description = "User accounts (admin)"),
        (name = "tokens", description = "API tokens for automation (admin)"),
        (name = "audit", description = "The append-only audit log (admin)"),
        (name = "engines", description = "Docker Engines: registration, reachability, containers"),
        (name = "inventory", description = "Services, the dependency graph, imports and discovery"),
        (name = "actions", description = "Container and stack actions, logs, stats, inspect, exec"),
        (name = "logs", description = "Log search across services, stacks and time"),
        (name = "resources", description = "Resource history of services and the host, forecasts"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(
                crate::auth::SESSION_COOKIE,
            ))),
        );
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The whole document: the info, tags and security schemes here, the
/// paths `crate::http` collected from its routers (passed in, so this
/// module does not import the router that serves it).
pub fn document(paths: OpenApi) -> OpenApi {
    let mut doc = ApiDoc::openapi();
    doc.merge(paths);
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    doc
}

/// `GET /api/v1/openapi.json`: the document made from `paths`, rendered
/// once per process.
pub fn serve(paths: OpenApi) -> impl IntoResponse + Clone {
    static DOC: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let json = DOC
        .get_or_init(|| document(paths).to_pretty_json().unwrap_or_default())
        .clone();
    ([(header::CONTENT_TYPE, "application/json")], json)
}

#[cfg(test)]
mod tests {
    #[test]
    fn openapi_committed_copy_is_current() {
        let (_, paths) = crate::http::api_router().split_for_parts();
        let generated = super::document(paths).to_pretty_json().unwrap() + "\n";
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.json");
        if std::env::var_os("UPDATE_OPENAPI").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let committed = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            committed == generated,
            "server/openapi.json is out of date; regenerate with UPDATE_OPENAPI=1 cargo test -p opsdeck openapi"
        );
    }
}
