//! The `cleanup` step: removes exactly the items of a preview, containers
//! first (which may free images), then images, then volumes. Right before
//! each kind it lists the engine's containers again and skips (and
//! reports) an item that came into use since the preview: a container
//! running again, an image a container was created from, a volume a
//! container mounts. Nothing is forced, so the engine refuses an item that
//! came into use in between too; that is reported as skipped as well.
//!
//! Outputs: `removed`, `skipped`, `freed_bytes` (the preview's sizes of the
//! removed items), `removed_items` and `skipped_items` (each with its
//! reason). An engine error on an item does not stop the others; the step
//! fails at the end, saying how many items it could not handle.

use opsdeck_wire::CleanupItem;
use serde_json::json;

use super::{preview, store};
use crate::docker::usage::{self, Container, Removal};
use crate::runbooks::step::{StepCx, StepResult};

fn skip(item: &CleanupItem, reason: String) -> CleanupItem {
    CleanupItem {
        reason,
        ..item.clone()
    }
}

fn users(list: &[Container], f: impl Fn(&Container) -> bool) -> Vec<&str> {
    list.iter()
        .filter(|c| f(c))
        .map(|c| c.name.as_str())
        .collect()
}

/// Runs the step for preview `preview` (its id, as the run's parameter).
pub async fn run(cx: &StepCx<'_>, preview: &str) -> StepResult {
    let id: i64 = preview
        .trim()
        .parse()
        .map_err(|_| format!("preview: \"{preview}\" is not a clean-up preview id"))?;
    let mut conn = cx.state.pool.acquire().await.map_err(|e| e.to_string())?;
    let row = store::preview(&mut conn, id, false)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no clean-up preview {id}"))?;
    // One run per preview, also for a run started by hand.
    let holder = store::claim_for_run(&mut conn, id, cx.run_id)
        .await
        .map_err(|e| e.to_string())?;
    if holder != cx.run_id {
        return Err(format!(
            "clean-up preview {id} was applied by run {holder}; make a new preview"
        ));
    }
    drop(conn);
    let (engine, client) = preview::engine(cx.state, row.engine_id).map_err(|e| e.to_string())?;
    cx.out.line(format!(
        "clean-up preview {id} of engine {}: {} items",
        engine.name,
        row.items.len()
    ));
    let mut removed: Vec<CleanupItem> = Vec::new();
    let mut skipped: Vec<CleanupItem> = Vec::new();
    let mut failed = 0usize;
    let mut listed: Option<(String, Vec<Container>)> = None;
    for item in &row.items {
        // The containers as they are now, listed again when the kind changes
        // (removed containers may have freed images and volumes).
        if listed.as_ref().is_none_or(|(k, _)| *k != item.kind) {
            let list = usage::containers(&client)
                .await
                .map_err(|e| format!("{e:#}"))?;
            listed = Some((item.kind.clone(), list));
        }
        let list = listed.as_ref().map(|(_, l)| l.as_slice()).unwrap_or(&[]);
        let in_use = match item.kind.as_str() {
            "container" => match list.iter().find(|c| c.id == item.id) {
                None => Some("already gone".to_owned()),
                Some(c) if !c.stopped() => Some(format!("in use: {} now", c.state)),
                Some(_) => None,
            },
            "image" => {
                let u = users(list, |c| c.image_id == item.id);
                (!u.is_empty()).then(|| format!("in use by container {}", u.join(", ")))
            }
            "volume" => {
                let u = users(list, |c| c.volumes.contains(&item.id));
                (!u.is_empty()).then(|| format!("in use by container {}", u.join(", ")))
            }
            other => Some(format!("unknown kind {other}")),
        };
        if let Some(why) = in_use {
            cx.out
                .line(format!("skipped {} {}: {why}", item.kind, item.name));
            skipped.push(skip(item, why));
            continue;
        }
        let done = match item.kind.as_str() {
            "container" => usage::remove_container(&client, &item.id).await,
            "image" => usage::remove_image(&client, &item.id).await,
            _ => usage::remove_volume(&client, &item.id).await,
        };
        match done {
            Ok(Removal::Removed) => {
                cx.out.line(format!(
                    "removed {} {} ({} bytes)",
                    item.kind, item.name, item.size_bytes
                ));
                removed.push(item.clone());
            }
            Ok(Removal::Gone) => {
                cx.out
                    .line(format!("skipped {} {}: already gone", item.kind, item.name));
                skipped.push(skip(item, "already gone".into()));
            }
            Ok(Removal::InUse(m)) => {
                cx.out
                    .line(format!("skipped {} {}: in use: {m}", item.kind, item.name));
                skipped.push(skip(item, format!("in use: {m}")));
            }
            Err(e) => {
                failed += 1;
                cx.out
                    .line(format!("failed {} {}: {e:#}", item.kind, item.name));
                skipped.push(skip(item, format!("error: {e:#}")));
            }
        }
    }
    let freed: i64 = removed.iter().map(|i| i.size_bytes).sum();
    cx.out.line(format!(
        "removed {}, skipped {}, freed {freed} bytes",
        removed.len(),
        skipped.len()
    ));
    if failed > 0 {
        return Err(format!(
            "{failed} of {} items could not be removed (engine errors; see the output)",
            row.items.len()
        ));
    }
    Ok(json!({
        "preview": id,
        "removed": removed.len(),
        "skipped": skipped.len(),
        "freed_bytes": freed,
        "removed_items": removed,
        "skipped_items": skipped,
    }))
}
