//! The audit log through the API.

use opsdeck_wire::AuditPage;

use crate::server::Api;

/// The entries of `action` (the newest 200), as `admin` reads them.
pub async fn audit(admin: &Api, action: &str) -> Vec<opsdeck_wire::AuditEntry> {
    let page: AuditPage = admin
        .json(&format!("/api/v1/audit?action={action}&limit=200"))
        .await;
    page.entries
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}
