//! Restores end to end: `POST /api/v1/backups/{id}/restore` queues a run
//! of the built-in `backup-restore` runbook that waits for a second
//! person's approval; then the stored object is checked, a safety backup of
//! the original is taken, dependents are stopped (when asked) and the
//! backup restored with the real `pg_restore` on the test cluster; the data
//! is compared table by table. A corrupted object refuses the restore with
//! nothing touched; a runbook changed to run without an approval is
//! refused both by the API and by the step. Dependents are real containers
//! on the private dockerd, stopped and started again in dependency order.

use std::collections::BTreeMap;
use std::time::Duration;

use opsdeck_e2e::fixtures::{
    backup_ids_from, cluster_conn, content_digest, create_db, drop_db, fill_ledger, row_counts,
    tcp_to_cluster, unique, LEDGER_TABLES,
};
use opsdeck_e2e::flows::audit::audit;
use opsdeck_e2e::flows::backups::{
    backups, cluster_service, create_plan, create_target, detail, finished, postgres_plan,
    run_plan, run_text, started,
};
use opsdeck_e2e::flows::runbooks::{pending_approval, wait_status};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{ServiceSpec, Stack};
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release};
use opsdeck_wire::{
    ActionRecord, Approval, BackupStatus, Check, Outcome, PrunePreview, Role, Run, RunState,
    RunStatus, RunbookSummary, ServiceOverview, Verification,
};
use serde_json::{json, Value};
use sqlx::{Connection, Executor, PgConnection};

mod approvals;
mod archives;
mod browser;
mod dependents;

/// Every ledger table's content digest.
async fn digests(conn: &mut PgConnection) -> BTreeMap<&'static str, String> {
    let mut out = BTreeMap::new();
    for t in LEDGER_TABLES {
        out.insert(*t, content_digest(conn, t).await);
    }
    out
}

/// Changes made after the backup: rows changed, deleted and added, and a
/// table the backup does not know.
async fn change(conn: &mut PgConnection) {
    conn.execute(
        r#"
UPDATE public.customers SET name = 'changed ' || id WHERE id <= 10;
DELETE FROM shop.events WHERE id % 2 = 0;
INSERT INTO public.empty_one SELECT generate_series(1, 5);
CREATE TABLE public.after_backup (x int);
INSERT INTO public.after_backup VALUES (42);
"#,
    )
    .await
    .expect("changing the ledger");
}

async fn request(api: &Api, backup: i64, body: Value) -> reqwest::Response {
    api.post(&format!("/api/v1/backups/{backup}/restore"), &body)
        .await
}

/// Approves the run's pending request as `who`.
async fn approve(who: &Api, ap: &Approval) -> reqwest::Response {
    who.post(
        &format!("/api/v1/approvals/{}/approve", ap.id),
        &json!({"binding": ap.binding, "reason": "checked the backup"}),
    )
    .await
}

/// Requests a restore as `requester`, lets `approver` approve it and waits
/// for the run's end.
async fn restore_approved(requester: &Api, approver: &Api, backup: i64, body: Value) -> Run {
    let run = started(request(requester, backup, body).await, "restore").await;
    let ap = pending_approval(requester, run).await;
    ok_json::<Approval>(approve(approver, &ap).await, "approve").await;
    finished(requester, run).await
}
