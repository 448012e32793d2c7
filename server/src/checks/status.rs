//! The status model: from check states and the dependency graph to each
//! service's health (pure functions; the engine feeds them).
//!
//! 1. A service's own state is the worst settled state of its enabled checks.
//! 2. A service whose own state is critical and none of whose (transitive)
//!    dependencies is critical is **down**: a root cause.
//! 3. A service with a down dependency anywhere below it is **impacted by**
//!    the root causes below it, whatever its own checks say: its failures
//!    are symptoms, not separate alarms.
//! 4. Otherwise warning → degraded, ok → operational, no settled check →
//!    unknown.
//!
//! The overall state is an outage when a critical-tier service is down,
//! degraded when anything is down, impacted or degraded, **unmonitored**
//! when no service has a known state (no services, no checks, or only
//! unknown services: nothing says the stack is fine), else operational.
//! A service under maintenance counts as known.
//! `Maintenance` is reserved for the maintenance-mode capability.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use opsdeck_wire::{CheckStatus, Overall, ServiceHealth, Tier};

/// A service as the status model needs it.
#[derive(Debug, Clone)]
pub struct SvcInfo {
    pub id: i64,
    pub name: String,
    pub tier: Tier,
    /// Ids of the services it requires.
    pub requires: Vec<i64>,
}

/// A check's settled state as the status model needs it.
#[derive(Debug, Clone)]
pub struct CheckView {
    pub service_id: i64,
    pub name: String,
    pub status: CheckStatus,
    pub since: Option<DateTime<Utc>>,
    pub message: String,
}

/// A service's computed health.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub health: ServiceHealth,
    /// Root causes (names, sorted) when impacted.
    pub impacted_by: Vec<String>,
    /// "check: message" of the failing checks.
    pub problems: Vec<String>,
    pub checks: u32,
    /// Latest change among the checks that decide the state.
    pub since: Option<DateTime<Utc>>,
}

/// Computes every service's health. `services` must form an acyclic graph
/// (the inventory guarantees it); a cycle would only be cut, not looped on.
pub fn compute(services: &[SvcInfo], checks: &[CheckView]) -> HashMap<i64, Health> {
    type Own = (CheckStatus, u32, Option<DateTime<Utc>>, Vec<String>);
    let mut own: HashMap<i64, Own> = HashMap::with_capacity(services.len());
    for c in checks {
        let e = own
            .entry(c.service_id)
            .or_insert((CheckStatus::Unknown, 0, None, Vec::new()));
        e.1 += 1;
        if c.status > e.0 {
            e.0 = c.status;
            e.2 = c.since;
        } else if c.status == e.0 && c.since > e.2 {
            e.2 = c.since;
        }
        if c.status >= CheckStatus::Warning {
            e.3.push(format!("{}: {}", c.name, c.message));
        }
    }
    let by_id: HashMap<i64, &SvcInfo> = services.iter().map(|s| (s.id, s)).collect();
    let own_status = |id: i64| own.get(&id).map_or(CheckStatus::Unknown, |o| o.0);

    // roots[s]: the down services below s (not s itself).
    let mut roots: HashMap<i64, BTreeSet<i64>> = HashMap::with_capacity(services.len());
    fn visit(
        id: i64,
        by_id: &HashMap<i64, &SvcInfo>,
        own_status: &dyn Fn(i64) -> CheckStatus,
        roots: &mut HashMap<i64, BTreeSet<i64>>,
        on_path: &mut Vec<i64>,
    ) {
        if roots.contains_key(&id) || on_path.contains(&id) {
            return;
        }
        on_path.push(id);
        let mut below = BTreeSet::new();
        if let Some(s) = by_id.get(&id) {
            for &d in &s.requires {
                visit(d, by_id, own_status, roots, on_path);
                let rd = roots.get(&d).cloned().unwrap_or_default();
                if own_status(d) == CheckStatus::Critical && rd.is_empty() {
                    below.insert(d);
                } else {
                    below.extend(rd);
                }
            }
        }
        on_path.pop();
        roots.insert(id, below);
    }
    let mut path = Vec::new();
    for s in services {
        visit(s.id, &by_id, &own_status, &mut roots, &mut path);
    }

    services
        .iter()
        .map(|s| {
            let (status, n, since, problems) =
                own.get(&s.id)
                    .cloned()
                    .unwrap_or((CheckStatus::Unknown, 0, None, Vec::new()));
            let below = roots.remove(&s.id).unwrap_or_default();
            let health = if !below.is_empty() {
                ServiceHealth::Impacted
            } else {
                match status {
                    CheckStatus::Critical => ServiceHealth::Down,
                    CheckStatus::Warning => ServiceHealth::Degraded,
                    CheckStatus::Ok => ServiceHealth::Operational,
                    CheckStatus::Unknown => ServiceHealth::Unknown,
                }
            };
            let mut impacted_by: Vec<String> = below
                .iter()
                .filter_map(|id| by_id.get(id).map(|s| s.name.clone()))
                .collect();
            impacted_by.sort();
            let since = if health == ServiceHealth::Impacted {
                below
                    .iter()
                    .filter_map(|id| own.get(id).and_then(|o| o.2))
                    .max()
            } else {
                since
            };
            (
                s.id,
                Health {
                    health,
                    impacted_by,
                    problems,
                    checks: n,
                    since,
                },
            )
        })
        .collect()
}

/// The banner of the dashboard.
pub fn overall<'a>(items: impl IntoIterator<Item = (Tier, ServiceHealth)> + 'a) -> Overall {
    let mut overall = Overall::Operational;
    let mut known = false;
    for (tier, h) in items {
        known |= h != ServiceHealth::Unknown;
        match h {
            ServiceHealth::Down if tier == Tier::Critical => return Overall::Outage,
            ServiceHealth::Down | ServiceHealth::Impacted | ServiceHealth::Degraded => {
                overall = Overall::Degraded
            }
            _ => {}
        }
    }
    if known {
        overall
    } else {
        Overall::Unmonitored
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(id: i64, name: &str, tier: Tier, requires: &[i64]) -> SvcInfo {
        SvcInfo {
            id,
            name: name.into(),
            tier,
            requires: requires.to_vec(),
        }
    }
    fn chk(service_id: i64, status: CheckStatus) -> CheckView {
        CheckView {
            service_id,
            name: format!("c{service_id}"),
            status,
            since: Some(Utc::now()),
            message: "m".into(),
        }
    }

    /// postgres ← gitea ← woodpecker; npm ← gitea; redis alone.
    fn stack() -> Vec<SvcInfo> {
        vec![
            svc(1, "postgres", Tier::Critical, &[]),
            svc(2, "npm", Tier::Critical, &[]),
            svc(3, "gitea", Tier::Application, &[1, 2]),
            svc(4, "woodpecker", Tier::Application, &[3]),
            svc(5, "redis", Tier::Support, &[]),
        ]
    }

    #[test]
    fn a_down_dependency_makes_dependents_impacted_not_down() {
        let checks = vec![
            chk(1, CheckStatus::Critical),
            chk(2, CheckStatus::Ok),
            chk(3, CheckStatus::Critical),
            chk(4, CheckStatus::Ok),
            chk(5, CheckStatus::Ok),
        ];
        let h = compute(&stack(), &checks);
        assert_eq!(h[&1].health, ServiceHealth::Down);
        assert_eq!(h[&3].health, ServiceHealth::Impacted);
        assert_eq!(h[&3].impacted_by, ["postgres"]);
        assert_eq!(h[&4].health, ServiceHealth::Impacted, "transitively");
        assert_eq!(h[&4].impacted_by, ["postgres"]);
        assert_eq!(h[&2].health, ServiceHealth::Operational);
        assert_eq!(h[&5].health, ServiceHealth::Operational);
        let o = overall(stack().iter().map(|s| (s.tier, h[&s.id].health)));
        assert_eq!(o, Overall::Outage);
    }

    #[test]
    fn root_causes_are_the_deepest_failures() {
        let checks = vec![
            chk(1, CheckStatus::Critical),
            chk(2, CheckStatus::Critical),
            chk(3, CheckStatus::Critical),
            chk(4, CheckStatus::Critical),
        ];
        let h = compute(&stack(), &checks);
        assert_eq!(h[&4].impacted_by, ["npm", "postgres"]);
        assert_eq!(h[&3].impacted_by, ["npm", "postgres"]);
    }

    #[test]
    fn own_state_is_the_worst_check() {
        let checks = vec![
            chk(3, CheckStatus::Ok),
            chk(3, CheckStatus::Warning),
            chk(5, CheckStatus::Unknown),
        ];
        let h = compute(&stack(), &checks);
        assert_eq!(h[&3].health, ServiceHealth::Degraded);
        assert_eq!(h[&3].checks, 2);
        assert_eq!(h[&3].problems.len(), 1);
        assert_eq!(h[&5].health, ServiceHealth::Unknown);
        assert_eq!(h[&1].health, ServiceHealth::Unknown, "no checks");
        let o = overall(stack().iter().map(|s| (s.tier, h[&s.id].health)));
        assert_eq!(o, Overall::Degraded);
    }

    #[test]
    fn a_support_service_down_is_degraded_overall() {
        let h = compute(&stack(), &[chk(5, CheckStatus::Critical)]);
        assert_eq!(h[&5].health, ServiceHealth::Down);
        let o = overall(stack().iter().map(|s| (s.tier, h[&s.id].health)));
        assert_eq!(o, Overall::Degraded);
    }

    #[test]
    fn nothing_known_is_unmonitored_not_operational() {
        let o = |items: &[(Tier, ServiceHealth)]| overall(items.iter().copied());
        assert_eq!(o(&[]), Overall::Unmonitored, "no services");
        let h = compute(&stack(), &[]);
        let all = overall(stack().iter().map(|s| (s.tier, h[&s.id].health)));
        assert_eq!(all, Overall::Unmonitored, "services without checks");
        let h = compute(&stack(), &[chk(3, CheckStatus::Unknown)]);
        let all = overall(stack().iter().map(|s| (s.tier, h[&s.id].health)));
        assert_eq!(all, Overall::Unmonitored, "checks not settled yet");
        // One known service decides; the unknown ones do not spoil it.
        let h = compute(&stack(), &[chk(3, CheckStatus::Ok)]);
        let all = overall(stack().iter().map(|s| (s.tier, h[&s.id].health)));
        assert_eq!(all, Overall::Operational);
        assert_eq!(
            o(&[(Tier::Critical, ServiceHealth::Maintenance)]),
            Overall::Operational,
            "maintenance is a known state"
        );
    }
}
