//! Where a desired state comes from: a compose file (with `opsdeck.*`
//! labels and a tier guessed from the image), compose projects discovered on
//! the engines, or the inventory YAML.

use std::collections::{BTreeMap, BTreeSet};

use opsdeck_wire::{DiscoveredProject, DiscoveredService, ImportPlan, InactiveService, Tier};

use super::super::{
    compose, parse_tier, yaml, Fields, InventoryError, ServiceName, Snapshot, FIELD_NAMES,
};
use super::{Desired, DesiredService};
use crate::state::AppState;

/// Images whose repository name (the last path segment, without registry,
/// tag or digest) makes a service critical: databases and the reverse
/// proxies in front of everything. Listed in docs/import/tiers.md.
pub const CRITICAL_IMAGES: &[&str] = &[
    "postgres",
    "postgis",
    "timescaledb",
    "mariadb",
    "mysql",
    "percona-server",
    "mongo",
    "nginx",
    "openresty",
    "traefik",
    "caddy",
    "haproxy",
    "envoy",
];

/// Images whose repository name makes a service support: caches, admin
/// tools, updaters and the monitoring stack.
pub const SUPPORT_IMAGES: &[&str] = &[
    "redis",
    "valkey",
    "keydb",
    "memcached",
    "adminer",
    "phpmyadmin",
    "pgadmin4",
    "portainer",
    "portainer-ce",
    "watchtower",
    "prometheus",
    "alertmanager",
    "node-exporter",
    "cadvisor",
    "grafana",
    "loki",
    "promtail",
];

/// The repository name of an image reference: the last path segment
/// without tag or digest (`docker.io/library/postgres:16` → `postgres`,
/// `ghcr.io/acme/postgres-meta@sha256:…` → `postgres-meta`), lowercased.
pub fn image_repository(image: &str) -> String {
    let no_digest = image.split('@').next().unwrap_or_default();
    let last = no_digest.rsplit('/').next().unwrap_or_default();
    let name = last.split(':').next().unwrap_or_default();
    name.trim().to_ascii_lowercase()
}

/// Guesses a tier from the image's repository name only (never the
/// service name, never a substring): an exact match in
/// [`CRITICAL_IMAGES`] is critical, in [`SUPPORT_IMAGES`] support, anything
/// else (or no image) application. `postgres-meta` is not `postgres`.
pub fn guess_tier(image: Option<&str>) -> Tier {
    let Some(repo) = image.map(image_repository) else {
        return Tier::Application;
    };
    if CRITICAL_IMAGES.contains(&repo.as_str()) {
        Tier::Critical
    } else if SUPPORT_IMAGES.contains(&repo.as_str()) {
        Tier::Support
    } else {
        Tier::Application
    }
}

/// Labels that set Opsdeck fields from a compose file.
const LABEL_PREFIX: &str = "opsdeck.";

/// The desired state of a compose project.
pub fn desired_from_compose(
    file: &compose::ComposeFile,
    project: &str,
    engine: Option<&str>,
    source: &'static str,
) -> Result<Desired, InventoryError> {
    let mut services = Vec::new();
    for (name, svc) in &file.services {
        ServiceName::parse(name)
            .map_err(|e| InventoryError::Invalid(format!("services.{name}: {e}")))?;
        let mut provided = vec![
            "compose_project",
            "compose_service",
            "container_name",
            "image",
            "ports",
            "volumes",
            "labels",
        ];
        let mut fields = Fields {
            tier: guess_tier(svc.image.as_deref()),
            compose_project: Some(project.to_owned()),
            compose_service: Some(name.clone()),
            container_name: svc.container_name.clone(),
            image: svc.image.clone(),
            ports: svc.ports.clone(),
            volumes: svc.volumes.clone(),
            labels: svc
                .labels
                .iter()
                .filter(|(k, _)| !k.starts_with(LABEL_PREFIX))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..Fields::default()
        };
        if let Some(e) = engine {
            fields.engine = Some(e.to_owned());
            provided.push("engine");
        }
        for (key, value) in svc
            .labels
            .iter()
            .filter(|(k, _)| k.starts_with(LABEL_PREFIX))
        {
            let field =
                |m: String| InventoryError::Invalid(format!("services.{name}.labels.{key}: {m}"));
            match &key[LABEL_PREFIX.len()..] {
                "tier" => {
                    fields.tier = parse_tier(value).map_err(field)?;
                    provided.push("tier");
                }
                "description" => {
                    fields.description = value.clone();
                    provided.push("description");
                }
                "owner" | "owner_team" => {
                    fields.owner_team = Some(value.clone()).filter(|v| !v.is_empty());
                    provided.push("owner_team");
                }
                "docs" | "docs_url" => {
                    fields.docs_url = Some(value.clone()).filter(|v| !v.is_empty());
                    provided.push("docs_url");
                }
                "repo" | "repo_url" => {
                    fields.repo_url = Some(value.clone()).filter(|v| !v.is_empty());
                    provided.push("repo_url");
                }
                other => {
                    return Err(field(format!(
                        "unknown Opsdeck label \"{other}\" (known: tier, description, owner, docs, repo)"
                    )))
                }
            }
        }
        fields
            .validate()
            .map_err(|e| InventoryError::Invalid(format!("services.{name}: {e}")))?;
        services.push(DesiredService {
            name: name.clone(),
            fields,
            provided,
            requires: svc.depends_on.iter().cloned().collect(),
        });
    }
    Ok(Desired {
        services,
        project: Some(project.to_owned()),
        source,
        engines: None,
    })
}

/// The desired state of the whole inventory from its YAML document.
pub fn desired_from_yaml(doc: &yaml::InventoryDoc) -> Result<Desired, InventoryError> {
    let mut services = Vec::new();
    for s in &doc.services {
        let fields = Fields {
            description: s.description.clone(),
            tier: parse_tier(&s.tier)
                .map_err(|e| InventoryError::Invalid(format!("services.{}.tier: {e}", s.name)))?,
            owner_team: s.owner_team.clone(),
            docs_url: s.docs_url.clone(),
            repo_url: s.repo_url.clone(),
            engine: s.engine.clone(),
            compose_project: s.compose_project.clone(),
            compose_service: s.compose_service.clone(),
            container_name: s.container_name.clone(),
            image: s.image.clone(),
            ports: s.ports.clone(),
            volumes: s.volumes.clone(),
            labels: s.labels.clone(),
        };
        fields
            .validate()
            .map_err(|e| InventoryError::Invalid(format!("services.{}: {e}", s.name)))?;
        services.push(DesiredService {
            name: s.name.clone(),
            fields,
            provided: FIELD_NAMES.to_vec(),
            requires: s.requires.iter().cloned().collect(),
        });
    }
    Ok(Desired {
        services,
        project: None,
        source: "yaml",
        engines: Some(doc.engines.clone()),
    })
}

/// The project name of a loaded compose project and where it came from:
/// the caller's (`given`), else what compose would choose
/// ([`compose::Loaded::project`]); an error when nothing names it.
pub fn compose_project(
    given: Option<&str>,
    loaded: &compose::Loaded,
) -> Result<(String, &'static str), InventoryError> {
    let (p, source) = match given.map(str::trim).filter(|s| !s.is_empty()) {
        Some(g) => (g.to_owned(), "given"),
        None => loaded.project.clone().ok_or_else(|| {
            InventoryError::Invalid(
                "project: the files have no top-level name, COMPOSE_PROJECT_NAME is not set and \
                 no directory was given; give the compose project name"
                    .into(),
            )
        })?,
    };
    ServiceName::parse(&p).map_err(|e| InventoryError::Invalid(format!("project: {e}")))?;
    Ok((p, source))
}

/// Adds what the load found to a compose import's plan: the files read,
/// the services left out by their profiles, where the project name came
/// from.
pub fn describe_load(plan: &mut ImportPlan, loaded: &compose::Loaded, project_source: &str) {
    plan.project_source = Some(project_source.to_owned());
    plan.files = loaded.files.clone();
    plan.inactive = loaded
        .inactive
        .iter()
        .map(|(name, profiles)| InactiveService {
            name: name.clone(),
            profiles: profiles.clone(),
        })
        .collect();
}

/// Compose projects found on the engines from container labels.
pub fn discover(state: &AppState, snapshot: &Snapshot) -> Vec<DiscoveredProject> {
    let mut projects: BTreeMap<(String, String), BTreeMap<String, DiscoveredService>> =
        BTreeMap::new();
    let mapped: BTreeSet<(String, String)> = snapshot
        .services
        .iter()
        .filter_map(|s| {
            Some((
                s.fields.compose_project.clone()?,
                s.fields.compose_service.clone()?,
            ))
        })
        .collect();
    for engine in state.engines.engines() {
        engine.with_containers(|cs| {
            for c in cs.values() {
                let (Some(p), Some(s)) = (&c.compose_project, &c.compose_service) else {
                    continue;
                };
                let entry = projects
                    .entry((engine.name.clone(), p.clone()))
                    .or_default()
                    .entry(s.clone())
                    .or_insert_with(|| DiscoveredService {
                        name: s.clone(),
                        image: c.image.clone(),
                        containers: 0,
                        running: 0,
                        depends_on: vec![],
                        in_inventory: mapped.contains(&(p.clone(), s.clone())),
                    });
                entry.containers += 1;
                if c.state == "running" {
                    entry.running += 1;
                }
            }
        });
        // Dependencies come from the `com.docker.compose.depends_on` label.
        for ((e, p), services) in projects.iter_mut() {
            if *e != engine.name {
                continue;
            }
            for (s, d) in services.iter_mut() {
                d.depends_on = engine.compose_depends_on(p, s);
            }
        }
    }
    projects
        .into_iter()
        .map(|((engine, project), services)| DiscoveredProject {
            engine,
            project,
            services: services.into_values().collect(),
        })
        .collect()
}

#[cfg(test)]
mod tier_tests {
    use super::*;

    #[test]
    fn tier_from_the_repository_name_only() {
        let t = |i: &str| guess_tier(Some(i));
        assert_eq!(t("docker.io/library/postgres:16"), Tier::Critical);
        assert_eq!(t("postgres"), Tier::Critical);
        assert_eq!(t("ghcr.io/acme/postgres-meta"), Tier::Application);
        assert_eq!(t("supabase/postgres-meta:v0.80"), Tier::Application);
        assert_eq!(t("registry.local:5000/nginx@sha256:abc"), Tier::Critical);
        assert_eq!(t("localhost:5000/mirror/traefik:v3"), Tier::Critical);
        assert_eq!(t("ghcr.io/acme/image-proxy:1"), Tier::Application);
        assert_eq!(t("jwilder/nginx-proxy"), Tier::Application);
        assert_eq!(t("valkey/valkey:8"), Tier::Support);
        assert_eq!(t("REDIS:7"), Tier::Support);
        assert_eq!(t("bitnami/redis-exporter"), Tier::Application);
        assert_eq!(guess_tier(None), Tier::Application);
    }
}
