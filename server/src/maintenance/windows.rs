//! Scheduled windows: stored definitions, and starting each occurrence once.
//!
//! An occurrence becomes a period when the ticker first sees it in progress
//! (`recurrence::current`); the unique index on `(window_id,
//! occurrence_start)` makes that once, whatever the number of servers. A
//! server that was down at the start still opens an occurrence in progress;
//! one that is over is not replayed. Editing or deleting a window leaves a
//! period already opened alone (it ends at its own end).

use super::model::{self, NewPeriod};
use super::recurrence::{self, Spec};
use super::store::{self, WindowRow};
use crate::audit::Actor;
use crate::state::AppState;
use chrono::{DateTime, Utc};
use opsdeck_wire::{MaintenanceScope, MaintenanceWindow, Repeat, WindowWrite};

fn repeat_of(s: &str) -> Repeat {
    match s {
        "daily" => Repeat::Daily,
        "weekly" => Repeat::Weekly,
        _ => Repeat::Once,
    }
}

pub fn repeat_str(r: Repeat) -> &'static str {
    match r {
        Repeat::Once => "once",
        Repeat::Daily => "daily",
        Repeat::Weekly => "weekly",
    }
}

pub fn def_of(r: &WindowRow) -> WindowWrite {
    WindowWrite {
        title: r.title.clone(),
        reason: r.reason.clone(),
        scope: serde_json::from_value(r.scope.clone()).unwrap_or(MaintenanceScope::Services {
            services: Vec::new(),
        }),
        actuate: r.actuate,
        starts_at: r.starts_at,
        ends_at: r.ends_at,
        repeat: repeat_of(&r.repeat),
        weekdays: r.weekdays.clone(),
        time_zone: r.time_zone.clone(),
        until: r.until,
        enabled: r.enabled,
    }
}

/// A stored window with its next occurrences.
pub fn to_wire(r: WindowRow, now: DateTime<Utc>) -> MaintenanceWindow {
    let def = def_of(&r);
    let (next, summary) = match recurrence::validate(&def) {
        Ok(spec) => (
            recurrence::occurrences(&spec, now, 5),
            recurrence::summary(&spec),
        ),
        Err(e) => (Vec::new(), format!("invalid: {e}")),
    };
    MaintenanceWindow {
        id: r.id,
        def,
        created_by: r.created_by,
        created_at: r.created_at,
        next,
        summary,
    }
}

/// Checks a window's title and timing (its scope is checked against the
/// inventory by the caller).
pub fn validate(w: &mut WindowWrite) -> Result<Spec, String> {
    w.title = w.title.trim().to_owned();
    if w.title.is_empty() || w.title.chars().count() > 200 {
        return Err("title: 1 to 200 characters".into());
    }
    model::check_reason(&w.reason)?;
    let spec = recurrence::validate(w)?;
    w.weekdays = spec
        .weekdays
        .iter()
        .map(|d| d.to_string().to_lowercase())
        .collect();
    Ok(spec)
}

/// Opens the period of every enabled window's occurrence in progress at
/// `now` that has none yet. Returns the new periods.
pub async fn start_due(state: &AppState, now: DateTime<Utc>) -> anyhow::Result<Vec<i64>> {
    let rows = store::windows(&state.pool, true).await?;
    let mut started = Vec::new();
    for r in rows {
        let def = def_of(&r);
        let Ok(spec) = recurrence::validate(&def) else {
            continue;
        };
        let Some(occ) = recurrence::current(&spec, now) else {
            continue;
        };
        let window_id = r.id;
        if store::occurrence_opened(&state.pool, window_id, occ.starts_at).await? {
            continue;
        }
        let mut tx = state.pool.begin().await?;
        let resolved = match model::resolve_scope(&mut tx, &def.scope).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(window = window_id, error = %e, "maintenance window cannot start");
                continue;
            }
        };
        let actor = Actor::system("maintenance-window");
        let opened = model::open(
            state,
            &mut tx,
            NewPeriod {
                window: Some((window_id, occ.starts_at)),
                title: def.title.clone(),
                reason: def.reason.clone(),
                resolved,
                actuate: def.actuate,
                actor: &actor,
                user: r.created_by_id,
                starts_at: occ.starts_at,
                ends_at: occ.ends_at,
            },
        )
        .await
        .map_err(|e| anyhow::anyhow!("opening window {window_id}'s period: {e}"))?;
        tx.commit().await?;
        if let Some((period, run)) = opened {
            state.runs().changed(run).await;
            started.push(period);
        }
    }
    Ok(started)
}
