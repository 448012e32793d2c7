//! A running compose project's own files, read from its engine's host, so
//! an import of a discovered project models what actually runs (its
//! override files, includes, profiles and `.env`), not only what the
//! container labels say.
//!
//! `docker compose` labels every container with the project's working
//! directory, its `-f` files and its env files. [`sources_of`] reads those
//! through the engine ([`crate::docker::hostfiles`]), then the files they
//! name (`include`, `extends.file`) and the project's `.env`, and returns
//! them as [`compose::Sources`] for the ordinary compose loader.
//!
//! Decisions:
//! * Files named by `include`/`extends` are read only when they lie inside
//!   the project directory or a directory of one of its `-f` files: a
//!   compose file cannot make the panel read arbitrary host files.
//! * At most [`MAX_FILES`] files in at most [`MAX_ROUNDS`] rounds (each
//!   round one helper container).
//! * A `-f` file that cannot be read fails the import with the reason; a
//!   missing `.env` is not an error (compose does not need one).
//! * Paths are given to the loader relative to the project directory;
//!   a file outside it keeps its absolute path.

use std::collections::BTreeSet;

use opsdeck_wire::{DiscoveredProject, ImportPlan};

use super::compose::{self, refs::references};
use super::plan::{desired_from_compose, discover, run_import};
use super::{InventoryError, Snapshot};
use crate::audit::Actor;
use crate::auth::RequestSlots;
use crate::docker::hostfiles;
use crate::state::AppState;

/// The compose project `project` running on engine `engine`, as discovery
/// sees it (404 when nothing runs under that name).
pub async fn find(
    state: &AppState,
    engine: &str,
    project: &str,
) -> Result<DiscoveredProject, InventoryError> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    drop(conn);
    discover(state, &snapshot)
        .into_iter()
        .find(|p| p.engine == engine && p.project == project)
        .ok_or_else(|| {
            InventoryError::NotFound(format!(
                "compose project \"{project}\" on engine \"{engine}\""
            ))
        })
}

/// Previews or applies a discovered project from what its containers'
/// labels say: images and dependencies only (no ports, volumes, labels).
pub async fn import_from_labels(
    state: &AppState,
    project: &DiscoveredProject,
    apply: bool,
    actor: Actor,
    source: Option<String>,
    slots: Option<&RequestSlots>,
) -> Result<ImportPlan, InventoryError> {
    let names: BTreeSet<&str> = project.services.iter().map(|s| s.name.as_str()).collect();
    let file = compose::ComposeFile {
        name: Some(project.project.clone()),
        services: project
            .services
            .iter()
            .map(|s| {
                (
                    s.name.clone(),
                    compose::ComposeService {
                        image: Some(s.image.clone()).filter(|i| !i.is_empty()),
                        depends_on: s
                            .depends_on
                            .iter()
                            .filter(|d| names.contains(d.as_str()))
                            .cloned()
                            .collect(),
                        ..Default::default()
                    },
                )
            })
            .collect(),
    };
    let mut desired =
        desired_from_compose(&file, &project.project, Some(&project.engine), "discovered")?;
    // Discovery knows images and dependencies, not ports, volumes or labels.
    for d in &mut desired.services {
        d.provided
            .retain(|f| !matches!(*f, "ports" | "volumes" | "labels" | "container_name"));
    }
    run_import(
        &state.pool,
        desired,
        apply,
        actor,
        "inventory.discovered",
        source,
        slots,
    )
    .await
}

/// A discovered project loaded from its own files ([`sources_of`]), with
/// `profiles` active; without them, the profiles of the services that have
/// containers (the first profile of each, read with every profile active),
/// so the model is what runs.
pub async fn load(
    state: &AppState,
    project: &DiscoveredProject,
    profiles: Option<&[String]>,
) -> Result<compose::Loaded, InventoryError> {
    let files = sources_of(state, &project.engine, &project.project).await?;
    let mut sources = files.sources;
    let bad = |e: compose::ComposeError| {
        InventoryError::Invalid(format!(
            "compose files of project \"{}\" in {}: {e}",
            project.project, files.working_dir
        ))
    };
    sources.profiles = match profiles {
        Some(p) => p.to_vec(),
        None => {
            sources.profiles = vec!["*".to_owned()];
            let all = compose::load(&sources).map_err(bad)?;
            let running: BTreeSet<&str> =
                project.services.iter().map(|s| s.name.as_str()).collect();
            all.file
                .services
                .iter()
                .filter(|(name, _)| running.contains(name.as_str()))
                .filter_map(|(_, s)| s.profiles.first().cloned())
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect()
        }
    };
    compose::load(&sources).map_err(bad)
}

/// The most files read for one project.
pub const MAX_FILES: usize = 64;
/// The most rounds of following references.
pub const MAX_ROUNDS: usize = 4;

/// What was read for a discovered project.
#[derive(Debug, Clone)]
pub struct ProjectFiles {
    /// The files, ready for [`compose::load`] (no profiles chosen yet).
    pub sources: compose::Sources,
    /// The project directory on the host.
    pub working_dir: String,
}

/// Reads the files of compose project `project` on engine `engine`.
pub async fn sources_of(
    state: &AppState,
    engine: &str,
    project: &str,
) -> Result<ProjectFiles, InventoryError> {
    let conn = state
        .engines
        .by_name(engine)
        .ok_or_else(|| InventoryError::NotFound(format!("engine \"{engine}\"")))?;
    let mut containers: Vec<_> = conn
        .containers()
        .into_iter()
        .filter(|c| c.compose_project.as_deref() == Some(project))
        .collect();
    // A running container first: its labels are the current definition.
    containers.sort_by_key(|c| (c.state != "running", c.name.clone()));
    let first = containers.first().ok_or_else(|| {
        InventoryError::NotFound(format!(
            "compose project \"{project}\" on engine \"{engine}\""
        ))
    })?;
    let unavailable =
        |e: anyhow::Error| InventoryError::Unavailable(format!("engine \"{engine}\": {e:#}"));
    let client = conn
        .client()
        .map_err(|e| unavailable(anyhow::anyhow!("{e}")))?;
    let origin = hostfiles::compose_origin(&client, &first.id)
        .await
        .map_err(unavailable)?;
    if origin.config_files.is_empty() {
        return Err(InventoryError::Invalid(format!(
            "project \"{project}\": its containers do not name their compose files \
             (label com.docker.compose.project.config_files); import the files instead"
        )));
    }
    let working_dir = origin
        .working_dir
        .clone()
        .unwrap_or_else(|| parent(&origin.config_files[0]).to_owned());
    for f in origin.config_files.iter().chain(&origin.env_files) {
        if !f.starts_with('/') {
            return Err(InventoryError::Invalid(format!(
                "project \"{project}\": file {f:?} in its labels is not an absolute path"
            )));
        }
    }
    let roots: BTreeSet<String> = std::iter::once(working_dir.clone())
        .chain(origin.config_files.iter().map(|f| parent(f).to_owned()))
        .collect();

    let required: BTreeSet<String> = origin
        .config_files
        .iter()
        .chain(&origin.env_files)
        .map(|f| normalise(f))
        .collect();
    let mut wanted: Vec<String> = required.iter().cloned().collect();
    let dot_env = normalise(&format!("{working_dir}/.env"));
    if !wanted.contains(&dot_env) {
        wanted.push(dot_env);
    }
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut files: Vec<(String, String)> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let batch: Vec<String> = wanted
            .iter()
            .filter(|p| !done.contains(*p))
            .cloned()
            .collect();
        if batch.is_empty() {
            break;
        }
        if done.len() + batch.len() > MAX_FILES {
            return Err(InventoryError::Invalid(format!(
                "project \"{project}\": more than {MAX_FILES} compose files"
            )));
        }
        let read = hostfiles::read(&client, &first.image, &batch)
            .await
            .map_err(unavailable)?;
        for (path, text) in read {
            done.insert(path.clone());
            let text = match text {
                Ok(t) => t,
                Err(why) if required.contains(&path) => {
                    return Err(InventoryError::Invalid(format!(
                        "project \"{project}\": {path}: {why}"
                    )))
                }
                // An included file that cannot be read: the loader names
                // it when it needs it.
                Err(_) => continue,
            };
            if !is_env_file(&path) {
                for r in references(&text) {
                    let abs = if r.starts_with('/') {
                        normalise(&r)
                    } else {
                        normalise(&format!("{}/{r}", parent(&path)))
                    };
                    if roots.iter().any(|root| within(&abs, root)) && !wanted.contains(&abs) {
                        wanted.push(abs);
                    }
                }
            }
            files.push((relative(&path, &working_dir), text));
        }
    }
    let sources = compose::Sources {
        files,
        compose_files: origin
            .config_files
            .iter()
            .map(|f| relative(&normalise(f), &working_dir))
            .collect(),
        env_files: origin
            .env_files
            .iter()
            .map(|f| relative(&normalise(f), &working_dir))
            .collect(),
        profiles: Vec::new(),
        directory: Some(basename(&working_dir).to_owned()),
        environment: Default::default(),
    };
    Ok(ProjectFiles {
        sources,
        working_dir,
    })
}

fn is_env_file(path: &str) -> bool {
    let name = basename(path);
    name == ".env" || name.ends_with(".env")
}

fn parent(p: &str) -> &str {
    match p.rfind('/') {
        Some(0) => "/",
        Some(i) => &p[..i],
        None => ".",
    }
}

fn basename(p: &str) -> &str {
    p.trim_end_matches('/').rsplit('/').next().unwrap_or(p)
}

/// `/a/./b/../c` → `/a/c` (never above `/`).
fn normalise(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    format!("/{}", parts.join("/"))
}

fn within(path: &str, root: &str) -> bool {
    root == "/" || path == root || path.starts_with(&format!("{}/", root.trim_end_matches('/')))
}

/// `path` relative to `dir` when inside it, else `path` itself.
fn relative(path: &str, dir: &str) -> String {
    let dir = dir.trim_end_matches('/');
    path.strip_prefix(&format!("{dir}/"))
        .map(str::to_owned)
        .unwrap_or_else(|| path.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_normalised_and_kept_inside_the_roots() {
        assert_eq!(
            normalise("/srv/app/./mon/../compose.yaml"),
            "/srv/app/compose.yaml"
        );
        assert_eq!(normalise("/srv/../../etc/passwd"), "/etc/passwd");
        assert!(within("/srv/app/mon/a.yaml", "/srv/app"));
        assert!(!within("/srv/apple/a.yaml", "/srv/app"));
        assert!(!within("/etc/passwd", "/srv/app"));
        assert_eq!(relative("/srv/app/mon/a.yaml", "/srv/app"), "mon/a.yaml");
        assert_eq!(relative("/opt/x.yaml", "/srv/app"), "/opt/x.yaml");
        assert_eq!(basename("/srv/My App"), "My App");
        assert!(is_env_file("/srv/app/.env") && is_env_file("/srv/app/prod.env"));
    }
}
