//! Putting back a good state: the rollback of one container ([`restore`])
//! and crash recovery ([`recover`]) of the journal rows an ended run left
//! unfinished.
//!
//! Recovery works from names and ids, not from the recorded phase alone,
//! so a crash between an engine step and its journal write is covered: the
//! container under the original name that is not the old one is the new
//! one, whatever the row says.
//!
//! For each orphaned row (see [`store::journal_orphans`]):
//! - the old container is gone: the gate had passed (the old container is
//!   only removed after it), so the new one is kept (started if stopped);
//! - the new container exists, runs, and passes one [`gate::look`]: it is
//!   kept and the `-opsdeck-prev` container removed;
//! - its HEALTHCHECK is still `starting` and the row changed less than
//!   [`SETTLE`] ago: left for the next round;
//! - otherwise the new container (if any) is removed, the old one renamed
//!   back and started.
//!
//! The version row of the run becomes `interrupted` (current when the new
//! container was kept), and an `image.recover` audit entry is written by
//! the system actor `updates`.

use std::time::Duration;

use opsdeck_wire::Outcome;
use serde_json::json;

use super::gate;
use super::store::{self, JournalRow};
use crate::audit::{self, Actor, NewEntry};
use crate::docker::{images, Client};
use crate::state::AppState;

/// How long a new container's `starting` HEALTHCHECK is waited for.
pub const SETTLE: Duration = Duration::from_secs(300);

/// The suffix of the old container's name while it is replaced.
pub const PREV_SUFFIX: &str = "-opsdeck-prev";

/// Puts the old container back under `name`: removes whatever else holds
/// the name, renames the old one back, starts it. Safe at any phase and
/// when repeated.
pub async fn restore(client: &Client, name: &str, old_id: &str) -> anyhow::Result<()> {
    if let Some(c) = images::container(client, name).await? {
        if c.id != old_id {
            images::remove(client, &c.id).await?;
        }
    }
    let old = images::container(client, old_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the old container {old_id} no longer exists"))?;
    if old.name != name {
        images::rename(client, old_id, name).await?;
    }
    images::start(client, old_id).await
}

/// Recovers every orphaned journal row (all services, or one). Returns how
/// many rows were finished.
pub async fn recover(state: &AppState, service: Option<i64>, this_run: Option<i64>) -> usize {
    let rows = match store::journal_orphans(&state.pool, service, this_run).await {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "reading the image update journal failed");
            return 0;
        }
    };
    let mut done = 0;
    for row in rows {
        match recover_row(state, &row).await {
            Ok(Some(kept)) => {
                done += 1;
                tracing::warn!(
                    row = row.id,
                    container = %row.container_name,
                    kept,
                    "recovered an interrupted image update"
                );
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(
                row = row.id,
                container = %row.container_name,
                error = %format!("{e:#}"),
                "recovering an interrupted image update failed (tried again later)"
            ),
        }
    }
    done
}

/// Recovers one row: `Some("new" | "old")` when finished, `None` when left
/// for later.
async fn recover_row(state: &AppState, row: &JournalRow) -> anyhow::Result<Option<&'static str>> {
    let Some(conn) = state.engines.get(row.engine_id) else {
        return Ok(None);
    };
    let Ok(client) = conn.client() else {
        return Ok(None);
    };
    let name = row.container_name.as_str();
    let old = images::container(&client, &row.old_container_id).await?;
    let at_name = images::container(&client, name).await?;
    let new = at_name.filter(|c| c.id != row.old_container_id);
    let kept = match (&old, &new) {
        (None, Some(n)) => {
            images::start(&client, &n.id).await?;
            "new"
        }
        (None, None) => anyhow::bail!("neither the old nor the new container of {name} exists"),
        (Some(_), Some(n)) => match gate::look(state, &client, &n.id, row.service_id).await {
            Ok(()) => {
                images::remove(&client, &row.old_container_id).await?;
                "new"
            }
            Err(_)
                if n.health.as_deref() == Some("starting")
                    && chrono::Utc::now() - row.updated_at
                        < chrono::Duration::from_std(SETTLE).unwrap_or_default() =>
            {
                return Ok(None)
            }
            Err(_) => {
                restore(&client, name, &row.old_container_id).await?;
                "old"
            }
        },
        (Some(_), None) => {
            restore(&client, name, &row.old_container_id).await?;
            "old"
        }
    };
    let phase = if kept == "new" {
        "recovered_new"
    } else {
        "recovered_old"
    };
    store::journal_finish(&state.pool, row.id, phase).await?;
    store::version_end(
        &state.pool,
        row.service_id,
        row.run_id,
        "interrupted",
        kept == "new",
    )
    .await?;
    let mut tx = state.pool.begin().await?;
    audit::record(
        &mut tx,
        NewEntry {
            actor: Actor::system("updates"),
            action: "image.recover".into(),
            target: Some(format!("container:{name}")),
            params: json!({
                "run_id": row.run_id, "service_id": row.service_id, "phase": row.phase,
                "kept": kept, "old_image_id": row.old_image_id, "new_image_id": row.new_image_id,
                "new_container_id": row.new_container_id,
            }),
            source: None,
            outcome: Outcome::Success,
            detail: None,
        },
    )
    .await?;
    tx.commit().await?;
    let _ = conn.refresh_container(&client, &row.old_container_id).await;
    Ok(Some(kept))
}
