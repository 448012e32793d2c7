//! The services page read a page at a time (`GET /api/v1/services/page`):
//! search, the problems filter and the order are applied here, so a fleet
//! of thousands of services never travels to the browser at once. Every
//! service's run state is computed (the problems count covers all), but
//! only the page's services are turned into their wire form.

use std::collections::{HashMap, HashSet};

use opsdeck_wire::{ContainerInfo, RunState, ServiceOverview, ServicePage};

use super::cache::Overviews;
use super::ServiceRow;

/// Rows per page when the request does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// The most rows one page may ask for.
pub const MAX_LIMIT: usize = 500;

/// A state that needs attention: not running, and mapped to containers
/// (the services page's "problems").
pub fn needs_attention(s: RunState) -> bool {
    !matches!(s, RunState::Running | RunState::Unmapped)
}

/// What to show: `query` (case-insensitive, matched as one string)
/// against name, description, image, project and the containers' images.
#[derive(Debug, Default)]
pub struct PageQuery {
    pub query: String,
    pub problems_only: bool,
    pub offset: usize,
    pub limit: usize,
}

fn matches(row: &ServiceRow, containers: &[ContainerInfo], q: &str) -> bool {
    let has = |t: &str| t.to_lowercase().contains(q);
    let f = &row.fields;
    q.is_empty()
        || has(&row.name)
        || has(&f.description)
        || f.image.as_deref().is_some_and(has)
        || f.compose_project.as_deref().is_some_and(has)
        || containers.iter().any(|c| has(&c.image))
}

/// The page `p` of the inventory, ordered by tier (critical first), then
/// name ([`Overviews::order`]).
pub fn page(o: &Overviews, p: &PageQuery) -> ServicePage {
    let q = p.query.trim().to_lowercase();
    let mut problems = 0;
    let mut hits = Vec::new();
    for &at in &o.order {
        let (row, (state, containers)) = (&o.snapshot.services[at], &o.rows[at]);
        let problem = needs_attention(*state);
        problems += usize::from(problem);
        if (!p.problems_only || problem) && matches(row, containers, &q) {
            hits.push((row, *state, containers));
        }
    }
    let matched = hits.len();
    let limit = p.limit.clamp(1, MAX_LIMIT);
    let shown: Vec<_> = hits.into_iter().skip(p.offset).take(limit).collect();
    let ids: HashSet<i64> = shown.iter().map(|(r, ..)| r.id).collect();
    let mut wire: HashMap<i64, _> = o
        .snapshot
        .wire_where(|r| ids.contains(&r.id))
        .into_iter()
        .map(|s| (s.id, s))
        .collect();
    let items = shown
        .into_iter()
        .filter_map(|(row, run_state, containers)| {
            Some(ServiceOverview {
                service: wire.remove(&row.id)?,
                run_state,
                containers: containers.clone(),
            })
        })
        .collect();
    ServicePage {
        items,
        total: o.snapshot.services.len(),
        matched,
        problems,
        offset: p.offset,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::docker::EngineHub;
    use crate::inventory::{ContainerIndex, Fields, Snapshot};
    use opsdeck_wire::Tier;

    /// With no engine, a service mapped to containers is `unknown` (a
    /// problem); an unmapped one is not.
    fn row(id: i64, name: &str, tier: Tier, mapped: bool) -> ServiceRow {
        let at = chrono::Utc::now();
        ServiceRow {
            id,
            name: name.into(),
            fields: Fields {
                tier,
                container_name: mapped.then(|| format!("{name}-1")),
                ..Fields::default()
            },
            source: "manual".into(),
            edited_fields: Vec::new(),
            created_at: at,
            updated_at: at,
        }
    }

    fn names(p: &ServicePage) -> Vec<&str> {
        p.items.iter().map(|o| o.service.name.as_str()).collect()
    }

    #[test]
    fn pages_are_ordered_by_tier_then_name_and_counted_before_slicing() {
        let snapshot = Snapshot {
            services: vec![
                row(1, "api", Tier::Application, true),
                row(2, "cache", Tier::Support, false),
                row(3, "db", Tier::Critical, true),
                row(4, "web", Tier::Application, false),
            ],
            edges: Vec::new(),
        };
        let idx = ContainerIndex::build(&EngineHub::default());
        let o = Overviews::compute(Arc::new(snapshot), &idx);
        let get = |query: PageQuery| page(&o, &query);

        let p = get(PageQuery {
            offset: 1,
            limit: 2,
            ..Default::default()
        });
        assert_eq!(names(&p), ["api", "web"]);
        assert_eq!((p.total, p.matched, p.problems), (4, 4, 2));
        assert_eq!(p.items[0].run_state, RunState::Unknown);

        let p = get(PageQuery {
            problems_only: true,
            limit: 10,
            ..Default::default()
        });
        assert_eq!(names(&p), ["db", "api"]);
        assert_eq!(p.matched, 2);

        let p = get(PageQuery {
            query: " WE ".into(),
            limit: 0,
            ..Default::default()
        });
        assert_eq!(names(&p), ["web"], "limit 0 is raised to 1");
        assert_eq!((p.matched, p.limit), (1, 1));
    }
}
