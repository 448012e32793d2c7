//! The services page read a page at a time (`GET /api/v1/services/page`):
//! search, the problems filter and the order are applied here, so a fleet
//! of thousands of services never travels to the browser at once.

use opsdeck_wire::{RunState, ServiceOverview, ServicePage};

/// Rows per page when the request does not say.
pub const DEFAULT_LIMIT: usize = 100;
/// The most rows one page may ask for.
pub const MAX_LIMIT: usize = 500;

/// A state that needs attention: not running, and mapped to containers
/// (the services page's "problems"; the SPA's `is_problem` agrees).
pub fn needs_attention(s: RunState) -> bool {
    !matches!(s, RunState::Running | RunState::Unmapped)
}

/// What to show: `query` (lower-cased words are matched as one string)
/// against name, description, image, project and the containers' images.
#[derive(Debug, Default)]
pub struct PageQuery {
    pub query: String,
    pub problems_only: bool,
    pub offset: usize,
    pub limit: usize,
}

fn matches(o: &ServiceOverview, q: &str) -> bool {
    let s = &o.service;
    let has = |t: &str| t.to_lowercase().contains(q);
    q.is_empty()
        || has(&s.name)
        || has(&s.description)
        || s.image.as_deref().is_some_and(has)
        || s.compose_project.as_deref().is_some_and(has)
        || o.containers.iter().any(|c| has(&c.image))
}

/// The page `p` of `all`, ordered by tier (critical first), then name.
pub fn page(mut all: Vec<ServiceOverview>, p: &PageQuery) -> ServicePage {
    let total = all.len();
    let problems = all.iter().filter(|o| needs_attention(o.run_state)).count();
    let q = p.query.trim().to_lowercase();
    all.retain(|o| (!p.problems_only || needs_attention(o.run_state)) && matches(o, &q));
    let matched = all.len();
    all.sort_by(|a, b| (a.service.tier, &a.service.name).cmp(&(b.service.tier, &b.service.name)));
    let limit = p.limit.clamp(1, MAX_LIMIT);
    let items = all.into_iter().skip(p.offset).take(limit).collect();
    ServicePage {
        items,
        total,
        matched,
        problems,
        offset: p.offset,
        limit,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opsdeck_wire::{Service, Tier};

    fn svc(name: &str, tier: Tier, state: RunState) -> ServiceOverview {
        let at = chrono::Utc::now();
        ServiceOverview {
            service: Service {
                id: 1,
                name: name.into(),
                description: String::new(),
                tier,
                owner_team: None,
                docs_url: None,
                repo_url: None,
                engine: None,
                compose_project: None,
                compose_service: None,
                container_name: None,
                image: None,
                ports: Vec::new(),
                volumes: Vec::new(),
                labels: Default::default(),
                requires: Vec::new(),
                supports: Vec::new(),
                source: "manual".into(),
                edited_fields: Vec::new(),
                created_at: at,
                updated_at: at,
            },
            run_state: state,
            containers: Vec::new(),
        }
    }

    #[test]
    fn pages_are_ordered_by_tier_then_name_and_counted_before_slicing() {
        let all = vec![
            svc("web", Tier::Application, RunState::Running),
            svc("db", Tier::Critical, RunState::Stopped),
            svc("cache", Tier::Support, RunState::Running),
            svc("api", Tier::Application, RunState::Missing),
        ];
        let p = page(
            all.clone(),
            &PageQuery {
                offset: 1,
                limit: 2,
                ..Default::default()
            },
        );
        let names: Vec<&str> = p.items.iter().map(|o| o.service.name.as_str()).collect();
        assert_eq!(names, ["api", "web"]);
        assert_eq!((p.total, p.matched, p.problems), (4, 4, 2));

        let p = page(
            all.clone(),
            &PageQuery {
                problems_only: true,
                limit: 10,
                ..Default::default()
            },
        );
        let names: Vec<&str> = p.items.iter().map(|o| o.service.name.as_str()).collect();
        assert_eq!(names, ["db", "api"]);
        assert_eq!(p.matched, 2);

        let p = page(
            all,
            &PageQuery {
                query: " WE ".into(),
                limit: 0,
                ..Default::default()
            },
        );
        assert_eq!(p.items.len(), 1, "limit 0 is raised to 1");
        assert_eq!((p.matched, p.limit), (1, 1));
    }
}
