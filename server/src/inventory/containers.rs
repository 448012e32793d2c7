//! Mapping services to containers ([`ContainerIndex`]) and the run-state
//! summary of a service's containers ([`summarise`], [`overview`]).

use std::collections::HashMap;

use opsdeck_wire::{ContainerInfo, EngineState, RunState, ServiceOverview};

use super::{Fields, Snapshot};
use crate::docker::EngineHub;

impl Fields {
    /// Whether container `c` is one of this service's: its compose project
    /// and service, or its name, match, on the service's engine if it names
    /// one (the rule [`ContainerIndex::containers_of`] applies through its
    /// indexes).
    pub fn maps_to(&self, c: &ContainerInfo) -> bool {
        let compose = matches!(
            (&self.compose_project, &self.compose_service, &c.compose_project, &c.compose_service),
            (Some(p), Some(s), Some(cp), Some(cs)) if p == cp && s == cs
        );
        let named = self.container_name.as_ref() == Some(&c.name);
        (compose || named) && self.engine.as_ref().is_none_or(|e| &c.engine == e)
    }
}

/// Index of the hub's containers for mapping services to containers.
pub struct ContainerIndex {
    /// Every cached container, copied once.
    all: Vec<ContainerInfo>,
    /// Positions in `all` by compose (project, service) and by name.
    by_compose: HashMap<(String, String), Vec<usize>>,
    by_name: HashMap<String, Vec<usize>>,
    engine_state: HashMap<String, EngineState>,
}

impl ContainerIndex {
    pub fn build(hub: &EngineHub) -> ContainerIndex {
        let mut idx = ContainerIndex {
            all: Vec::new(),
            by_compose: HashMap::new(),
            by_name: HashMap::new(),
            engine_state: HashMap::new(),
        };
        for e in hub.engines() {
            idx.engine_state.insert(e.name.clone(), e.status().state);
            e.with_containers(|cs| {
                for c in cs.values() {
                    let at = idx.all.len();
                    if let (Some(p), Some(s)) = (&c.compose_project, &c.compose_service) {
                        idx.by_compose
                            .entry((p.clone(), s.clone()))
                            .or_default()
                            .push(at);
                    }
                    idx.by_name.entry(c.name.clone()).or_default().push(at);
                    idx.all.push(c.clone());
                }
            });
        }
        idx
    }

    /// The containers a service maps to, sorted by name.
    pub fn containers_of(&self, f: &Fields) -> Vec<ContainerInfo> {
        let mut at: Vec<usize> = Vec::new();
        if let (Some(p), Some(s)) = (&f.compose_project, &f.compose_service) {
            if let Some(v) = self.by_compose.get(&(p.clone(), s.clone())) {
                at.extend(v);
            }
        }
        if let Some(n) = &f.container_name {
            at.extend(self.by_name.get(n).into_iter().flatten());
        }
        // A container matched both ways is one container.
        at.sort_unstable();
        at.dedup();
        let mut out: Vec<ContainerInfo> = at
            .into_iter()
            .map(|i| &self.all[i])
            .filter(|c| f.engine.as_ref().is_none_or(|e| &c.engine == e))
            .cloned()
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out
    }

    /// Summarised state of a service's containers.
    pub fn run_state(&self, f: &Fields, containers: &[ContainerInfo]) -> RunState {
        if f.compose_service.is_none() && f.container_name.is_none() {
            return RunState::Unmapped;
        }
        let engines_ok = match &f.engine {
            Some(e) => self.engine_state.get(e) == Some(&EngineState::Connected),
            None => {
                !self.engine_state.is_empty()
                    && self
                        .engine_state
                        .values()
                        .all(|s| *s == EngineState::Connected)
            }
        };
        let stale = containers
            .iter()
            .any(|c| self.engine_state.get(&c.engine) != Some(&EngineState::Connected));
        if stale || (containers.is_empty() && !engines_ok) {
            return RunState::Unknown;
        }
        summarise(containers)
    }
}

/// The state of a set of containers, from the engine's states and health.
pub fn summarise(containers: &[ContainerInfo]) -> RunState {
    if containers.is_empty() {
        return RunState::Missing;
    }
    let count = |s: &str| containers.iter().filter(|c| c.state == s).count();
    let running = count("running");
    if containers.iter().any(|c| c.state == "restarting") {
        RunState::Restarting
    } else if running == containers.len() {
        if containers
            .iter()
            .any(|c| c.health.as_deref() == Some("unhealthy"))
        {
            RunState::Degraded
        } else {
            RunState::Running
        }
    } else if count("paused") == containers.len() {
        RunState::Paused
    } else if running > 0 || count("paused") > 0 {
        RunState::Degraded
    } else {
        RunState::Stopped
    }
}

/// Every service with its containers and state.
pub fn overview(snapshot: &Snapshot, hub: &EngineHub) -> Vec<ServiceOverview> {
    let idx = ContainerIndex::build(hub);
    snapshot
        .to_wire()
        .into_iter()
        .zip(&snapshot.services)
        .map(|(service, row)| {
            let containers = idx.containers_of(&row.fields);
            let run_state = idx.run_state(&row.fields, &containers);
            ServiceOverview {
                service,
                run_state,
                containers,
            }
        })
        .collect()
}
