//! What a clean-up removes, decided from the engine's listings alone (pure,
//! unit-tested): [`plan`] returns the items to remove and those that
//! matched the request but are kept, each with its reason.
//!
//! Decisions where the issue was silent:
//! * Dangling images and old unused images both require that no container
//!   (running or stopped) was created from them; an image in use is
//!   neither removed nor listed as kept (it is not a candidate).
//! * "Older than N days" is the image's creation time as the engine says
//!   (its build time), the only age the engine keeps; an image pulled
//!   today but built long ago is old.
//! * A stopped container belongs to a service when the inventory maps it
//!   to one (compose project and service labels, or container name) on
//!   this engine or on no engine in particular. Opsdeck's own helper
//!   containers (backups, host files) are kept: their owners remove them.
//! * A backup plan's volume source without an engine names that volume on
//!   every engine (the backup resolves it to the only one when it runs).
//! * Images kept for rollback: every version of an update the gate has
//!   not decided yet, and each service's two newest versions.

use std::collections::HashMap;

use opsdeck_wire::{CleanupItem, CleanupRequest};

use crate::docker::usage::{Container, Image, Usage, Volume};
use crate::inventory::ServiceRow;

const DAY: i64 = 86_400;
/// Labels of Opsdeck's own helper containers.
const HELPER_LABELS: &[&str] = &[
    crate::docker::volumes::HELPER_LABEL,
    crate::docker::hostfiles::HELPER_LABEL,
];

/// Why an image must stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protection {
    /// An update to or from it is not confirmed yet.
    Unconfirmed,
    /// One of the service's two newest versions.
    Recent,
}

/// An image a service may roll back to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protected {
    pub image_id: String,
    pub service: String,
    pub why: Protection,
}

/// What a plan is computed from.
pub struct Inputs<'a> {
    /// The engine's name (services and backup plans name engines).
    pub engine: &'a str,
    pub usage: &'a Usage,
    pub services: &'a [ServiceRow],
    /// (backup plan, volume) on this engine.
    pub backup_volumes: &'a [(String, String)],
    pub protected: &'a [Protected],
    /// Now, Unix seconds.
    pub now: i64,
}

/// The items to remove and the kept candidates, containers first, then
/// images, then volumes (the order a clean-up removes them in), each kind
/// by name.
pub fn plan(req: &CleanupRequest, inp: &Inputs<'_>) -> (Vec<CleanupItem>, Vec<CleanupItem>) {
    let mut items = Vec::new();
    let mut kept = Vec::new();
    if req.stopped_containers {
        for c in inp.usage.containers.iter().filter(|c| c.stopped()) {
            let item = |reason: String| container_item(c, reason);
            if let Some(s) = owner(c, inp.engine, inp.services) {
                kept.push(item(format!("belongs to service {s}")));
            } else if let Some(l) = HELPER_LABELS.iter().find(|l| c.labels.contains_key(**l)) {
                kept.push(item(format!(
                    "an Opsdeck helper container ({l}): its owner removes it"
                )));
            } else {
                items.push(item(format!(
                    "stopped ({}), belongs to no service",
                    c.state
                )));
            }
        }
    }
    let old_days = req.unused_images_older_than_days.map(i64::from);
    for i in inp.usage.images.iter().filter(|i| i.containers == 0) {
        let age_days = (inp.now - i.created).max(0) / DAY;
        let reason = if req.dangling_images && i.dangling {
            "dangling (no tag), no container uses it".to_owned()
        } else if let Some(n) = old_days.filter(|n| inp.now - i.created > n * DAY) {
            format!("no container uses it, created {age_days} days ago (more than {n})")
        } else {
            continue;
        };
        match protection(i, inp.protected) {
            Some(p) => kept.push(image_item(i, p)),
            None => items.push(image_item(i, reason)),
        }
    }
    if req.volumes {
        let named: HashMap<&str, &str> = inp
            .backup_volumes
            .iter()
            .map(|(plan, v)| (v.as_str(), plan.as_str()))
            .collect();
        for v in inp.usage.volumes.iter().filter(|v| v.containers == 0) {
            match named.get(v.name.as_str()) {
                Some(plan) => kept.push(volume_item(v, format!("named by backup plan {plan}"))),
                None => items.push(volume_item(v, "no container uses it".into())),
            }
        }
    }
    for list in [&mut items, &mut kept] {
        list.sort_by(|a, b| {
            (kind_rank(&a.kind), &a.name, &a.id).cmp(&(kind_rank(&b.kind), &b.name, &b.id))
        });
    }
    (items, kept)
}

fn kind_rank(kind: &str) -> u8 {
    match kind {
        "container" => 0,
        "image" => 1,
        _ => 2,
    }
}

/// The service a container belongs to, by the inventory's mapping.
pub fn owner<'a>(c: &Container, engine: &str, services: &'a [ServiceRow]) -> Option<&'a str> {
    let project = c.labels.get("com.docker.compose.project");
    let service = c.labels.get("com.docker.compose.service");
    services
        .iter()
        .find(|s| {
            let f = &s.fields;
            f.engine.as_deref().is_none_or(|e| e == engine)
                && ((f.compose_project.is_some()
                    && f.compose_service.is_some()
                    && f.compose_project.as_ref() == project
                    && f.compose_service.as_ref() == service)
                    || f.container_name.as_deref() == Some(c.name.as_str()))
        })
        .map(|s| s.name.as_str())
}

fn protection(i: &Image, protected: &[Protected]) -> Option<String> {
    let mine: Vec<&Protected> = protected.iter().filter(|p| p.image_id == i.id).collect();
    if let Some(p) = mine.iter().find(|p| p.why == Protection::Unconfirmed) {
        return Some(format!(
            "service {} may roll back to it: its update is not confirmed yet",
            p.service
        ));
    }
    mine.first().map(|p| {
        format!(
            "one of service {}'s two newest versions (kept for going back)",
            p.service
        )
    })
}

fn container_item(c: &Container, reason: String) -> CleanupItem {
    CleanupItem {
        kind: "container".into(),
        id: c.id.clone(),
        name: c.name.clone(),
        size_bytes: c.size_rw,
        reason,
    }
}

fn image_item(i: &Image, reason: String) -> CleanupItem {
    let short = i.id.trim_start_matches("sha256:");
    CleanupItem {
        kind: "image".into(),
        id: i.id.clone(),
        name: if i.tags.is_empty() {
            format!("<none> ({})", &short[..short.len().min(12)])
        } else {
            i.tags.join(", ")
        },
        size_bytes: i.size,
        reason,
    }
}

fn volume_item(v: &Volume, reason: String) -> CleanupItem {
    CleanupItem {
        kind: "volume".into(),
        id: v.name.clone(),
        name: v.name.clone(),
        size_bytes: v.size,
        reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::Fields;
    use chrono::Utc;

    const NOW: i64 = 1_800_000_000;

    fn image(id: &str, tags: &[&str], age_days: i64, containers: usize) -> Image {
        Image {
            id: id.into(),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            created: NOW - age_days * DAY - 60,
            size: 100,
            shared_size: 0,
            dangling: tags.is_empty(),
            containers,
        }
    }

    fn container(name: &str, state: &str, labels: &[(&str, &str)]) -> Container {
        Container {
            id: format!("id-{name}"),
            name: name.into(),
            state: state.into(),
            image_id: "sha256:x".into(),
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            size_rw: 5,
            volumes: vec![],
        }
    }

    fn volume(name: &str, containers: usize) -> Volume {
        Volume {
            name: name.into(),
            size: 7,
            containers,
            labels: HashMap::new(),
        }
    }

    fn service(name: &str, fields: Fields) -> ServiceRow {
        ServiceRow {
            id: 1,
            name: name.into(),
            fields,
            source: "manual".into(),
            edited_fields: vec![],
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    fn names(v: &[CleanupItem]) -> Vec<(String, String)> {
        v.iter().map(|i| (i.kind.clone(), i.name.clone())).collect()
    }

    fn pair(k: &str, n: &str) -> (String, String) {
        (k.to_owned(), n.to_owned())
    }

    fn world() -> (Usage, Vec<ServiceRow>) {
        let usage = Usage {
            layers_size: 0,
            images: vec![
                image("sha256:dangling", &[], 1, 0),
                image("sha256:dangling-used", &[], 1, 1),
                image("sha256:old", &["old:1"], 40, 0),
                image("sha256:young", &["young:1"], 2, 0),
                image("sha256:old-used", &["used:1"], 40, 1),
                image("sha256:rollback", &["app:1"], 40, 0),
            ],
            containers: vec![
                container("leftover", "exited", &[]),
                container("running", "running", &[]),
                container(
                    "web-1",
                    "exited",
                    &[
                        ("com.docker.compose.project", "shop"),
                        ("com.docker.compose.service", "web"),
                    ],
                ),
                container("db", "created", &[]),
                container("helper", "created", &[("opsdeck.backup-helper", "1")]),
                container(
                    "elsewhere",
                    "exited",
                    &[
                        ("com.docker.compose.project", "far"),
                        ("com.docker.compose.service", "x"),
                    ],
                ),
            ],
            volumes: vec![volume("free", 0), volume("mounted", 1), volume("pgdata", 0)],
            build_cache: vec![],
        };
        let services = vec![
            service(
                "web",
                Fields {
                    compose_project: Some("shop".into()),
                    compose_service: Some("web".into()),
                    ..Fields::default()
                },
            ),
            service(
                "db",
                Fields {
                    container_name: Some("db".into()),
                    engine: Some("main".into()),
                    ..Fields::default()
                },
            ),
            // On another engine: does not own `elsewhere` here.
            service(
                "far",
                Fields {
                    compose_project: Some("far".into()),
                    compose_service: Some("x".into()),
                    engine: Some("other".into()),
                    ..Fields::default()
                },
            ),
        ];
        (usage, services)
    }

    #[test]
    fn the_plan_removes_exactly_the_unused_candidates_and_says_what_it_keeps() {
        let (usage, services) = world();
        let backups = vec![("nightly".to_owned(), "pgdata".to_owned())];
        let protected = vec![Protected {
            image_id: "sha256:rollback".into(),
            service: "web".into(),
            why: Protection::Unconfirmed,
        }];
        let inp = Inputs {
            engine: "main",
            usage: &usage,
            services: &services,
            backup_volumes: &backups,
            protected: &protected,
            now: NOW,
        };
        let all = CleanupRequest {
            dangling_images: true,
            unused_images_older_than_days: Some(30),
            stopped_containers: true,
            volumes: true,
        };
        let (items, kept) = plan(&all, &inp);
        assert_eq!(
            names(&items),
            vec![
                pair("container", "elsewhere"),
                pair("container", "leftover"),
                pair("image", "<none> (dangling)"),
                pair("image", "old:1"),
                pair("volume", "free"),
            ]
        );
        assert_eq!(
            names(&kept),
            vec![
                pair("container", "db"),
                pair("container", "helper"),
                pair("container", "web-1"),
                pair("image", "app:1"),
                pair("volume", "pgdata"),
            ]
        );
        let reason = |n: &str| kept.iter().find(|i| i.name == n).unwrap().reason.clone();
        assert_eq!(reason("web-1"), "belongs to service web");
        assert_eq!(reason("db"), "belongs to service db");
        assert_eq!(reason("pgdata"), "named by backup plan nightly");
        assert!(
            reason("app:1").contains("not confirmed"),
            "{}",
            reason("app:1")
        );

        // Volumes only when asked; images only by the kinds asked.
        let some = CleanupRequest {
            dangling_images: true,
            ..CleanupRequest::default()
        };
        let (items, kept) = plan(&some, &inp);
        assert_eq!(names(&items), vec![pair("image", "<none> (dangling)")]);
        assert!(kept.is_empty());
        let old = CleanupRequest {
            unused_images_older_than_days: Some(1),
            ..CleanupRequest::default()
        };
        let (items, _) = plan(&old, &inp);
        assert_eq!(
            names(&items),
            vec![
                pair("image", "<none> (dangling)"),
                pair("image", "old:1"),
                pair("image", "young:1"),
            ]
        );
        // Recent versions are kept too, with their own reason.
        let recent = vec![Protected {
            image_id: "sha256:old".into(),
            service: "web".into(),
            why: Protection::Recent,
        }];
        let inp = Inputs {
            protected: &recent,
            ..inp
        };
        let (items, kept) = plan(&all, &inp);
        assert!(!names(&items).contains(&pair("image", "old:1")));
        assert!(kept
            .iter()
            .any(|i| i.name == "old:1" && i.reason.contains("two newest")));
    }
}
