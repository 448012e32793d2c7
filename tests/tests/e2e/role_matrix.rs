//! Every API route × anonymous / viewer / operator / admin → the expected answer.
//!
//! The routes are enumerated from the running server's OpenAPI document, which
//! is generated from the router itself: a route added without a rule here
//! fails `every_route_has_a_rule`.
//!
//! API tokens are also walked by scope (`every_route_checks_token_scopes`):
//! a route accepts `full` tokens, `read` tokens when it is a GET, and the
//! narrow scopes only on the one route named in [`SCOPED_ROUTES`].

use std::collections::BTreeSet;

use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_wire::Role;
use reqwest::Method;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Access {
    Public,
    /// Any logged-in user, even one who must change the password.
    Authenticated,
    Role(Role),
}

/// The rule for each route. Adding a route means adding its rule here.
const RULES: &[(&str, &str, Access)] = &[
    ("POST", "/api/v1/auth/login", Access::Public),
    ("POST", "/api/v1/auth/logout", Access::Authenticated),
    ("GET", "/api/v1/me", Access::Authenticated),
    ("POST", "/api/v1/me/password", Access::Authenticated),
    ("GET", "/api/v1/users", Access::Role(Role::Admin)),
    ("POST", "/api/v1/users", Access::Role(Role::Admin)),
    ("PATCH", "/api/v1/users/{id}", Access::Role(Role::Admin)),
    (
        "POST",
        "/api/v1/users/{id}/password",
        Access::Role(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/users/{id}/sessions",
        Access::Role(Role::Admin),
    ),
    ("GET", "/api/v1/tokens", Access::Role(Role::Admin)),
    ("POST", "/api/v1/tokens", Access::Role(Role::Admin)),
    ("DELETE", "/api/v1/tokens/{id}", Access::Role(Role::Admin)),
    ("GET", "/api/v1/audit", Access::Role(Role::Admin)),
    ("GET", "/api/v1/audit/verify", Access::Role(Role::Admin)),
    // Docker engines: viewers see them, admins add and remove.
    ("GET", "/api/v1/engines", Access::Role(Role::Viewer)),
    (
        "GET",
        "/api/v1/engines/overview",
        Access::Role(Role::Viewer),
    ),
    ("POST", "/api/v1/engines", Access::Role(Role::Admin)),
    (
        "POST",
        "/api/v1/engines/ssh-host-keys",
        Access::Role(Role::Admin),
    ),
    ("DELETE", "/api/v1/engines/{id}", Access::Role(Role::Admin)),
    (
        "GET",
        "/api/v1/engines/{id}/containers",
        Access::Role(Role::Viewer),
    ),
    // Docker clean-up: viewers see disk usage, operators preview and apply.
    (
        "GET",
        "/api/v1/engines/{id}/disk",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/engines/{id}/cleanup/preview",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/engines/{id}/cleanup",
        Access::Role(Role::Operator),
    ),
    // Log search: operators, like a service's own logs.
    ("POST", "/api/v1/logs/search", Access::Role(Role::Operator)),
    // The inventory: viewers read, admins write and import.
    ("GET", "/api/v1/services", Access::Role(Role::Viewer)),
    ("GET", "/api/v1/services/page", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/services", Access::Role(Role::Admin)),
    ("GET", "/api/v1/services/{id}", Access::Role(Role::Viewer)),
    ("PATCH", "/api/v1/services/{id}", Access::Role(Role::Admin)),
    ("DELETE", "/api/v1/services/{id}", Access::Role(Role::Admin)),
    ("GET", "/api/v1/graph", Access::Role(Role::Viewer)),
    ("GET", "/api/v1/graph/query", Access::Role(Role::Viewer)),
    (
        "GET",
        "/api/v1/inventory/events",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/inventory/discovered",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/inventory/discovered",
        Access::Role(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/inventory/compose",
        Access::Role(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/inventory/import",
        Access::Role(Role::Admin),
    ),
    ("GET", "/api/v1/inventory/export", Access::Role(Role::Admin)),
    // Containers: viewers read activity and stats; operators read logs and act.
    (
        "POST",
        "/api/v1/services/{id}/actions",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/stacks/{project}/actions",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/services/{id}/activity",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/services/{id}/image-versions",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/stacks/{project}/activity",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/services/{id}/logs",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/services/{id}/stats",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/services/{id}/inspect",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/services/{id}/exec",
        Access::Role(Role::Operator),
    ),
    // Health checks: viewers read, operators change and run, admins tune the engine.
    ("GET", "/api/v1/checks", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/checks", Access::Role(Role::Operator)),
    ("GET", "/api/v1/checks/{id}", Access::Role(Role::Viewer)),
    ("PATCH", "/api/v1/checks/{id}", Access::Role(Role::Operator)),
    (
        "DELETE",
        "/api/v1/checks/{id}",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/checks/{id}/run",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/checks/{id}/history",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/checks/{id}/heartbeat",
        Access::Role(Role::Operator),
    ),
    // A Prometheus rules file as checks: operators, as adding a check.
    (
        "POST",
        "/api/v1/checks/import-rules/preview",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/checks/import-rules/apply",
        Access::Role(Role::Operator),
    ),
    ("GET", "/api/v1/checks/engine", Access::Role(Role::Admin)),
    ("GET", "/api/v1/checks/settings", Access::Role(Role::Admin)),
    ("PUT", "/api/v1/checks/settings", Access::Role(Role::Admin)),
    ("GET", "/api/v1/status", Access::Role(Role::Viewer)),
    ("GET", "/api/v1/status/events", Access::Role(Role::Viewer)),
    (
        "PUT",
        "/api/v1/services/{id}/public",
        Access::Role(Role::Operator),
    ),
    ("GET", "/api/v1/reports", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/reports", Access::Role(Role::Operator)),
    ("GET", "/api/v1/reports/{id}", Access::Role(Role::Viewer)),
    // Resource history, forecasts and the capacity report: viewers
    // (managers) read; nothing writes.
    (
        "GET",
        "/api/v1/services/{id}/resources",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/hosts/local/resources",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/resources/forecasts",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/reports/capacity",
        Access::Role(Role::Viewer),
    ),
    // Runbooks: viewers read, operators run, admins define.
    ("GET", "/api/v1/runbooks", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/runbooks", Access::Role(Role::Admin)),
    ("POST", "/api/v1/runbooks/import", Access::Role(Role::Admin)),
    ("GET", "/api/v1/runbooks/{id}", Access::Role(Role::Viewer)),
    ("PUT", "/api/v1/runbooks/{id}", Access::Role(Role::Admin)),
    ("DELETE", "/api/v1/runbooks/{id}", Access::Role(Role::Admin)),
    (
        "GET",
        "/api/v1/runbooks/{id}/versions",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/runbooks/{id}/export",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/runbooks/{id}/runs",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/runbooks/{id}/dry-run",
        Access::Role(Role::Operator),
    ),
    ("GET", "/api/v1/runs", Access::Role(Role::Viewer)),
    ("GET", "/api/v1/runs/{id}", Access::Role(Role::Viewer)),
    (
        "GET",
        "/api/v1/runs/{id}/events",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/runs/{id}/cancel",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/runs/{id}/resume",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/runs/{id}/rerun",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/runs/{id}/close",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/runs/{id}/steps/{idx}/complete",
        Access::Role(Role::Operator),
    ),
    // Approvals: operators vote; the badge count is for everyone.
    ("GET", "/api/v1/approvals", Access::Role(Role::Operator)),
    ("GET", "/api/v1/approvals/count", Access::Role(Role::Viewer)),
    (
        "POST",
        "/api/v1/approvals/{id}/approve",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/approvals/{id}/deny",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/approval-policies",
        Access::Role(Role::Viewer),
    ),
    (
        "PUT",
        "/api/v1/approval-policies/{kind}",
        Access::Role(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/approval-policies/{kind}",
        Access::Role(Role::Admin),
    ),
    // Schedules: viewers read, admins write.
    // Runbooks bound to alerts: viewers read, admins bind.
    (
        "GET",
        "/api/v1/runbook-bindings",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/runbook-bindings",
        Access::Role(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/runbook-bindings/{id}",
        Access::Role(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/incidents/{id}/runbooks",
        Access::Role(Role::Viewer),
    ),
    ("GET", "/api/v1/schedules", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/schedules", Access::Role(Role::Admin)),
    (
        "GET",
        "/api/v1/schedules/preview",
        Access::Role(Role::Viewer),
    ),
    ("GET", "/api/v1/schedules/{id}", Access::Role(Role::Viewer)),
    ("PUT", "/api/v1/schedules/{id}", Access::Role(Role::Admin)),
    (
        "DELETE",
        "/api/v1/schedules/{id}",
        Access::Role(Role::Admin),
    ),
    ("GET", "/api/v1/incidents", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/incidents", Access::Role(Role::Operator)),
    (
        "GET",
        "/api/v1/incidents/events",
        Access::Role(Role::Viewer),
    ),
    ("GET", "/api/v1/incidents/{id}", Access::Role(Role::Viewer)),
    (
        "PATCH",
        "/api/v1/incidents/{id}",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/incidents/{id}/events",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/acknowledge",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/diagnose",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/mitigate",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/resolve",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/reopen",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/postmortem/done",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/notes",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/log-excerpt",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/incidents/{id}/services",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/incidents/{id}/postmortem",
        Access::Role(Role::Viewer),
    ),
    (
        "PUT",
        "/api/v1/incidents/{id}/postmortem",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/incidents/{id}/postmortem/markdown",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/incident-settings",
        Access::Role(Role::Viewer),
    ),
    (
        "PUT",
        "/api/v1/incident-settings",
        Access::Role(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/integrations/alertmanager",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/reports/incidents",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/reports/incidents/csv",
        Access::Role(Role::Viewer),
    ),
    ("GET", "/api/v1/people", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/people", Access::Role(Role::Admin)),
    ("GET", "/api/v1/people/{id}", Access::Role(Role::Viewer)),
    ("PUT", "/api/v1/people/{id}", Access::Role(Role::Admin)),
    ("DELETE", "/api/v1/people/{id}", Access::Role(Role::Admin)),
    ("GET", "/api/v1/teams", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/teams", Access::Role(Role::Admin)),
    ("GET", "/api/v1/teams/{id}", Access::Role(Role::Viewer)),
    ("PUT", "/api/v1/teams/{id}", Access::Role(Role::Admin)),
    ("DELETE", "/api/v1/teams/{id}", Access::Role(Role::Admin)),
    ("GET", "/api/v1/rotations", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/rotations", Access::Role(Role::Admin)),
    ("GET", "/api/v1/rotations/{id}", Access::Role(Role::Viewer)),
    ("PUT", "/api/v1/rotations/{id}", Access::Role(Role::Admin)),
    (
        "DELETE",
        "/api/v1/rotations/{id}",
        Access::Role(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/rotations/{id}/overrides",
        Access::Role(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/rotations/{id}/overrides/{override_id}",
        Access::Role(Role::Admin),
    ),
    ("GET", "/api/v1/oncall", Access::Role(Role::Viewer)),
    (
        "GET",
        "/api/v1/escalation-policies",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/escalation-policies",
        Access::Role(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/escalation-policies/{id}",
        Access::Role(Role::Viewer),
    ),
    (
        "PUT",
        "/api/v1/escalation-policies/{id}",
        Access::Role(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/escalation-policies/{id}",
        Access::Role(Role::Admin),
    ),
    ("GET", "/api/v1/channels", Access::Role(Role::Admin)),
    ("POST", "/api/v1/channels", Access::Role(Role::Admin)),
    ("GET", "/api/v1/channels/{id}", Access::Role(Role::Admin)),
    ("PUT", "/api/v1/channels/{id}", Access::Role(Role::Admin)),
    ("DELETE", "/api/v1/channels/{id}", Access::Role(Role::Admin)),
    (
        "POST",
        "/api/v1/channels/{id}/test",
        Access::Role(Role::Admin),
    ),
    ("GET", "/api/v1/notifications", Access::Role(Role::Viewer)),
    // Maintenance: viewers read, operators start, end and schedule, admins
    // set a stack's actuator.
    (
        "GET",
        "/api/v1/maintenance/periods",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/maintenance/periods",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/maintenance/periods/{id}",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/maintenance/periods/{id}/end",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/maintenance/periods/{id}/extend",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/maintenance/windows",
        Access::Role(Role::Viewer),
    ),
    (
        "POST",
        "/api/v1/maintenance/windows",
        Access::Role(Role::Operator),
    ),
    (
        "PUT",
        "/api/v1/maintenance/windows/{id}",
        Access::Role(Role::Operator),
    ),
    (
        "DELETE",
        "/api/v1/maintenance/windows/{id}",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/maintenance/windows/preview",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/maintenance/stacks",
        Access::Role(Role::Viewer),
    ),
    (
        "PUT",
        "/api/v1/maintenance/actuators/{stack}",
        Access::Role(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/maintenance/actuators/{stack}",
        Access::Role(Role::Admin),
    ),
    (
        "GET",
        "/api/v1/maintenance/page",
        Access::Role(Role::Viewer),
    ),
    // Backups: viewers browse, operators run, verify and download, admins
    // manage targets and plans and delete backups.
    ("GET", "/api/v1/backup-targets", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/backup-targets", Access::Role(Role::Admin)),
    (
        "PUT",
        "/api/v1/backup-targets/{id}",
        Access::Role(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/backup-targets/{id}",
        Access::Role(Role::Admin),
    ),
    ("GET", "/api/v1/backup-plans", Access::Role(Role::Viewer)),
    ("POST", "/api/v1/backup-plans", Access::Role(Role::Admin)),
    (
        "PUT",
        "/api/v1/backup-plans/{id}",
        Access::Role(Role::Admin),
    ),
    (
        "DELETE",
        "/api/v1/backup-plans/{id}",
        Access::Role(Role::Admin),
    ),
    (
        "POST",
        "/api/v1/backup-plans/{id}/run",
        Access::Role(Role::Operator),
    ),
    ("GET", "/api/v1/backups", Access::Role(Role::Viewer)),
    (
        "GET",
        "/api/v1/backups/attention",
        Access::Role(Role::Viewer),
    ),
    (
        "GET",
        "/api/v1/backup-plans/{id}/prune",
        Access::Role(Role::Viewer),
    ),
    ("GET", "/api/v1/backups/{id}", Access::Role(Role::Viewer)),
    ("DELETE", "/api/v1/backups/{id}", Access::Role(Role::Admin)),
    (
        "POST",
        "/api/v1/backups/{id}/verify",
        Access::Role(Role::Operator),
    ),
    (
        "POST",
        "/api/v1/backups/{id}/restore",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/backups/{id}/artifacts/{idx}",
        Access::Role(Role::Operator),
    ),
    // Image updates: discovery and settings.
    ("GET", "/api/v1/updates", Access::Role(Role::Viewer)),
    (
        "POST",
        "/api/v1/updates/check",
        Access::Role(Role::Operator),
    ),
    (
        "GET",
        "/api/v1/services/{id}/update-settings",
        Access::Role(Role::Viewer),
    ),
    (
        "PUT",
        "/api/v1/services/{id}/update-settings",
        Access::Role(Role::Operator),
    ),
];

/// The routes that accept a narrow token scope (besides `full`), and which.
const SCOPED_ROUTES: &[(&str, &str, &str)] = &[
    ("POST", "/api/v1/integrations/alertmanager", "alerts:write"),
    ("POST", "/api/v1/checks/{id}/heartbeat", "heartbeat"),
];

/// Routes outside the OpenAPI document, all public and read-only.
///
/// `/metrics` is outside the document and this matrix on purpose: it is the
/// Prometheus exposition, not part of the JSON API, and no session opens it —
/// a scraper presents its own bearer token (`OPSDECK_METRICS_TOKEN` or an
/// API token with the `metrics:read` scope, checked in
/// `every_route_checks_token_scopes`) or reads a separate address
/// (`OPSDECK_METRICS_LISTEN`); without either it answers 404. `metrics.rs`
/// tests it.
const PLAIN_ROUTES: &[&str] = &[
    "/healthz",
    "/readyz",
    "/api/v1/openapi.json",
    "/",
    "/login",
    "/status",
    "/status.css",
];

async fn routes_in_openapi(server: &TestServer) -> BTreeSet<(String, String)> {
    let doc: serde_json::Value = Api::new(&server.base).json("/api/v1/openapi.json").await;
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            if ["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                out.insert((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_has_a_rule() {
    let server = TestServer::start().await;
    let routes = routes_in_openapi(&server).await;
    let rules: BTreeSet<(String, String)> = RULES
        .iter()
        .map(|(m, p, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = routes.difference(&rules).collect();
    let stale: Vec<_> = rules.difference(&routes).collect();
    assert!(
        missing.is_empty(),
        "routes without a role rule in role_matrix.rs: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "rules for routes that no longer exist: {stale:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_refuses_lower_roles() {
    let server = TestServer::start().await;
    for role in Role::ALL {
        server
            .create_user(&format!("{}-user", role.as_str()), role)
            .await;
    }
    let mut checked = 0;
    for (method, path, access) in RULES {
        let path = concrete(path);
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        for caller in [
            None,
            Some(Role::Viewer),
            Some(Role::Operator),
            Some(Role::Admin),
        ] {
            // A fresh session per call: some routes (logout, password) end it.
            let api = match caller {
                None => Api::new(&server.base),
                Some(r) => server.login(&format!("{}-user", r.as_str())).await,
            };
            // Only the status is read: a stream (SSE) answers with its
            // headers and is dropped unread.
            let status = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                api.send(method.clone(), &path, &serde_json::json!({})),
            )
            .await
            .unwrap_or_else(|_| panic!("{method} {path}: no answer within 30 s"))
            .status()
            .as_u16();
            let allowed = match (access, caller) {
                (Access::Public, _) => true,
                (_, None) => false,
                (Access::Authenticated, Some(_)) => true,
                (Access::Role(need), Some(have)) => have >= *need,
            };
            let who = caller.map(|r| r.as_str()).unwrap_or("anonymous");
            if allowed {
                assert!(
                    ![401, 403].contains(&status) && status < 500,
                    "{method} {path} as {who}: expected to be let through, got {status}"
                );
            } else {
                let expected = if caller.is_none() { 401 } else { 403 };
                assert_eq!(
                    status, expected,
                    "{method} {path} as {who}: expected {expected}, got {status}"
                );
            }
            checked += 1;
        }
    }
    assert_eq!(checked, RULES.len() * 4);
    for path in PLAIN_ROUTES {
        let status = Api::new(&server.base).get(path).await.status();
        assert_eq!(status, 200, "GET {path} is public");
    }
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "999999")
        .replace("{idx}", "999999")
        .replace("{override_id}", "999999")
        .replace("{project}", "nope")
        .replace("{kind}", "nope")
        .replace("{stack}", "nope")
}

/// Every route × one admin-role token per scope: a `read` token is refused
/// on every mutating route, an `alerts:write` token everywhere but the
/// Alertmanager webhook, a `heartbeat` token everywhere but heartbeats by
/// id, a `metrics:read` token on every API route (it opens `/metrics`
/// only), and a `full` token nowhere its role allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_checks_token_scopes() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let scopes = ["full", "read", "alerts:write", "heartbeat", "metrics:read"];
    let mut tokens = Vec::new();
    for scope in scopes {
        let res = admin
            .post(
                "/api/v1/tokens",
                &serde_json::json!({"name": format!("scope {scope}"), "role": "admin", "scopes": [scope]}),
            )
            .await;
        assert_eq!(res.status(), 201, "creating a {scope} token");
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["info"]["scopes"], serde_json::json!([scope]));
        tokens.push((scope, body["token"].as_str().unwrap().to_owned()));
    }
    let mut checked = 0;
    for (method, path, access) in RULES {
        if *access == Access::Public {
            continue;
        }
        let narrow = SCOPED_ROUTES
            .iter()
            .find(|(m, p, _)| m == method && p == path)
            .map(|(_, _, s)| *s);
        let url = concrete(path);
        let method = Method::from_bytes(method.as_bytes()).expect("method");
        for (scope, token) in &tokens {
            let allowed = match *scope {
                "full" => true,
                "read" => method == Method::GET,
                other => narrow == Some(other),
            };
            let api = Api::with_token(&server.base, token);
            let status = tokio::time::timeout(
                std::time::Duration::from_secs(30),
                api.send(method.clone(), &url, &serde_json::json!({})),
            )
            .await
            .unwrap_or_else(|_| panic!("{method} {url}: no answer within 30 s"))
            .status()
            .as_u16();
            if allowed {
                assert!(
                    ![401, 403].contains(&status) && status < 500,
                    "{method} {url} with a {scope} token: expected to be let through, got {status}"
                );
            } else {
                assert_eq!(
                    status, 403,
                    "{method} {url} with a {scope} token: expected 403, got {status}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked > 5 * 100, "only {checked} calls");

    // The role still counts: an alerts:write token of a viewer cannot post alerts.
    let res = admin
        .post(
            "/api/v1/tokens",
            &serde_json::json!({"name": "viewer alerts", "role": "viewer", "scopes": ["alerts:write"]}),
        )
        .await;
    let body: serde_json::Value = res.json().await.unwrap();
    let viewer_alerts = Api::with_token(&server.base, body["token"].as_str().unwrap());
    let res = viewer_alerts
        .post(
            "/api/v1/integrations/alertmanager",
            &serde_json::json!({"alerts": []}),
        )
        .await;
    assert_eq!(res.status(), 403);

    // `/metrics` (outside the document): metrics:read and full open it, other scopes do not.
    for (scope, token) in &tokens {
        let status = Api::with_token(&server.base, token)
            .get("/metrics")
            .await
            .status()
            .as_u16();
        let expected = if ["full", "metrics:read"].contains(scope) {
            200
        } else {
            403
        };
        assert_eq!(status, expected, "GET /metrics with a {scope} token");
    }
}
