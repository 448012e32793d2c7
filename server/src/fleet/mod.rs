//! The fleet views: the engines overview, one row per engine's host
//! (`GET /api/v1/engines/overview`), put together from what other parts
//! already hold: the engines and their container caches
//! ([`crate::engines`], [`crate::docker::EngineHub`]), the host checks'
//! latest results ([`crate::checks`]), the services on each engine
//! ([`crate::inventory::ContainerIndex`]) and the image update statuses
//! ([`crate::updates::status`]).
//!
//! It sits on the top floor: it reads those parts and nothing reads it.
//! Everything comes from caches (the engines', the health engine's, the
//! inventory's) and one read of the services with updates; no engine is
//! asked, so a hung engine never delays it.

mod api;

use std::collections::{BTreeSet, HashMap};

use opsdeck_wire::{CheckStatus, DiskUse, EngineOverview, HostFigures, Resource};

pub use api::router;

use crate::state::AppState;

/// Every engine with its host figures, services and pending updates, by
/// engine name.
pub async fn overview(state: &AppState) -> sqlx::Result<Vec<EngineOverview>> {
    let engines = crate::engines::list_wire(state).await?;
    let inventory = state
        .inventory_cache()
        .overviews(&state.pool, &state.engines)
        .await?;
    let mut conn = state.pool.acquire().await?;
    let with_update: BTreeSet<i64> = crate::updates::status::with_updates(&mut conn)
        .await?
        .into_iter()
        .collect();
    drop(conn);

    // Services on each engine: their containers run there, or they name it.
    let mut services_on: HashMap<&str, BTreeSet<i64>> = HashMap::new();
    for (s, (_, containers)) in inventory.snapshot.services.iter().zip(&inventory.rows) {
        if let Some(e) = &s.fields.engine {
            services_on.entry(e).or_default().insert(s.id);
        }
        for c in containers {
            services_on.entry(&c.engine).or_default().insert(s.id);
        }
    }
    let checks = state.health().host_results();

    Ok(engines
        .into_iter()
        .map(|engine| {
            let running = state
                .engines
                .get(engine.id)
                .map(|c| {
                    c.containers()
                        .iter()
                        .filter(|c| c.state == "running")
                        .count()
                })
                .unwrap_or(0);
            let on = services_on.get(engine.name.as_str());
            let services = on.map_or(0, BTreeSet::len);
            let updates = on.map_or(0, |ids| ids.intersection(&with_update).count());
            let local = engine.endpoint.starts_with("unix://");
            let host = host_figures(&engine.name, local, &checks);
            EngineOverview {
                engine,
                running,
                services,
                updates,
                host,
            }
        })
        .collect())
}

/// The figures of the enabled host checks naming `engine`; for an engine
/// on a local socket without checks of its own, the Opsdeck host's checks
/// (that engine runs on this host).
fn host_figures(
    engine: &str,
    local: bool,
    checks: &[(
        opsdeck_wire::HostCheck,
        CheckStatus,
        Option<opsdeck_wire::ProbeResult>,
    )],
) -> HostFigures {
    let of = |want: Option<&str>| {
        checks
            .iter()
            .filter(|(h, ..)| h.engine.as_deref() == want)
            .map(|(h, status, last)| (h, *status, last.as_ref()))
            .collect::<Vec<_>>()
    };
    let mut mine = of(Some(engine));
    if mine.is_empty() && local {
        mine = of(None);
    }
    let mut f = HostFigures {
        status: None,
        checks: mine.len() as u32,
        cpu_pct: None,
        memory_pct: None,
        load_pct: None,
        disk: None,
        uptime_s: None,
        at: None,
    };
    for (h, status, last) in mine {
        f.status = f.status.max(Some(status));
        let Some(last) = last else { continue };
        let value = |name: &str| {
            last.metrics
                .iter()
                .find(|m| m.name == name)
                .map(|m| m.value)
        };
        // The uptime of the newest reading.
        if f.at.is_none_or(|at| last.at >= at) {
            f.at = Some(last.at);
            f.uptime_s = value("uptime_s").or(f.uptime_s);
        }
        match h.resource {
            Resource::Cpu => f.cpu_pct = value("cpu_pct").or(f.cpu_pct),
            Resource::Memory => f.memory_pct = value("memory_pct").or(f.memory_pct),
            Resource::Load => f.load_pct = value("load_pct").or(f.load_pct),
            Resource::Disk | Resource::Inodes => {
                let (metric, kind) = if h.resource == Resource::Disk {
                    ("disk_pct", "disk")
                } else {
                    ("inodes_pct", "inodes")
                };
                if let Some(pct) = value(metric) {
                    if f.disk.as_ref().is_none_or(|d| pct > d.pct) {
                        f.disk = Some(DiskUse {
                            path: h.path.clone().unwrap_or_else(|| "/".into()),
                            pct,
                            kind: kind.into(),
                        });
                    }
                }
            }
        }
    }
    f
}
