//! Collecting a compose project's files from disk, for the CLI
//! (`opsdeck import compose -f … --env-file … --profile …`): the same
//! [`Sources`] the API receives as uploads, so the CLI and the API give the
//! same plan. The server itself never reads compose files from its disk.
//!
//! The project directory is `--project-directory`, else the directory of
//! the first `-f` file, else the current directory (as compose). Files are
//! named relative to it. Without `-f`, every default and override file name
//! present there is read (the loader picks as compose does, and
//! `COMPOSE_FILE` from the environment or `.env` is honoured); then the
//! `include` entries (their files, `env_file`s and default `.env`) and the
//! `extends.file` references are followed. A file that cannot be read is
//! left out: the loader then names it as missing, with the file that
//! refers to it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Component, Path, PathBuf};

use serde_norway::Value;

use super::interpolate::key_text;
use super::load::{dir_of, join};
use super::Sources;

/// The command line's view of a project.
#[derive(Debug, Clone, Default)]
pub struct DiskProject {
    /// `-f` files, in order (empty: compose's default names).
    pub files: Vec<PathBuf>,
    /// `--env-file`, in order (empty: `.env` in the project directory).
    pub env_files: Vec<PathBuf>,
    /// `--profile`.
    pub profiles: Vec<String>,
    /// `--project-directory`.
    pub project_directory: Option<PathBuf>,
}

const CANDIDATES: [&str; 8] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// `path` relative to `base` (both absolute), with `..` where needed.
fn relative(path: &Path, base: &Path) -> String {
    let p: Vec<Component<'_>> = path.components().collect();
    let b: Vec<Component<'_>> = base.components().collect();
    let common = p.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out: Vec<String> = vec!["..".to_owned(); b.len() - common];
    out.extend(
        p[common..]
            .iter()
            .map(|c| c.as_os_str().to_string_lossy().into_owned()),
    );
    out.join("/")
}

/// Reads the project's files; `environment` is the caller's own (it wins
/// over the env files in interpolation).
pub fn sources_from_disk(
    project: &DiskProject,
    environment: BTreeMap<String, String>,
) -> Result<Sources, String> {
    let abs = |p: &Path| std::path::absolute(p).map_err(|e| format!("{}: {e}", p.display()));
    let dir = match (&project.project_directory, project.files.first()) {
        (Some(d), _) => abs(d)?,
        (None, Some(f)) => abs(f)?.parent().map(Path::to_path_buf).unwrap_or_default(),
        (None, None) => abs(Path::new("."))?,
    };
    let dir = PathBuf::from(super::load::normalize(&dir.to_string_lossy()));
    let rel = |p: &Path| -> Result<String, String> {
        let a = abs(p)?;
        Ok(relative(
            Path::new(&super::load::normalize(&a.to_string_lossy())),
            &dir,
        ))
    };
    let compose_files: Vec<String> = project
        .files
        .iter()
        .map(|f| rel(f))
        .collect::<Result<_, _>>()?;
    let env_files: Vec<String> = project
        .env_files
        .iter()
        .map(|f| rel(f))
        .collect::<Result<_, _>>()?;

    let mut files: BTreeMap<String, String> = BTreeMap::new();
    let read = |files: &mut BTreeMap<String, String>, path: &str| -> bool {
        if files.contains_key(path) {
            return true;
        }
        let full = if path.starts_with('/') {
            PathBuf::from(path)
        } else {
            dir.join(path)
        };
        match std::fs::read_to_string(&full) {
            Ok(t) => {
                files.insert(path.to_owned(), t);
                true
            }
            Err(_) => false,
        }
    };
    for f in &env_files {
        if !read(&mut files, f) {
            return Err(format!("cannot read the env file {f}"));
        }
    }
    if env_files.is_empty() {
        read(&mut files, ".env");
    }
    // (file, working directory of its include paths)
    let mut queue: Vec<(String, String)> = Vec::new();
    if compose_files.is_empty() {
        for c in CANDIDATES {
            if read(&mut files, c) {
                queue.push((c.to_owned(), String::new()));
            }
        }
        let from_env = environment.get("COMPOSE_FILE").cloned().or_else(|| {
            files
                .get(".env")
                .and_then(|t| t.lines().find_map(|l| l.strip_prefix("COMPOSE_FILE=")))
                .map(|v| v.trim().trim_matches(['"', '\'']).to_owned())
        });
        for f in from_env
            .iter()
            .flat_map(|l| l.split(':'))
            .filter(|f| !f.is_empty())
        {
            let f = super::load::normalize(f);
            if read(&mut files, &f) {
                queue.push((f, String::new()));
            }
        }
    } else {
        for f in &compose_files {
            if !read(&mut files, f) {
                return Err(format!("cannot read the compose file {f}"));
            }
            queue.push((f.clone(), String::new()));
        }
    }
    let mut seen = BTreeSet::new();
    while let Some((file, workdir)) = queue.pop() {
        if !seen.insert(file.clone()) {
            continue;
        }
        let Some(text) = files.get(&file) else {
            continue;
        };
        let Ok(value) = serde_norway::from_str::<Value>(text) else {
            continue;
        };
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::Sequence(s)) => s.iter().map(key_text).collect(),
                Some(Value::Null) | None => Vec::new(),
                Some(other) => vec![key_text(other)],
            }
        };
        if let Some(Value::Sequence(items)) = value.get("include") {
            for item in items {
                let (paths, pdir, envs) = match item {
                    Value::String(s) => (vec![s.clone()], None, Vec::new()),
                    Value::Mapping(m) => (
                        strings(m.get("path")),
                        m.get("project_directory").map(key_text),
                        strings(m.get("env_file")),
                    ),
                    _ => continue,
                };
                let paths: Vec<String> = paths.iter().map(|p| join(&workdir, p)).collect();
                let Some(first) = paths.first() else { continue };
                let inc_dir = pdir.map_or_else(|| dir_of(first), |d| join(&workdir, &d));
                if envs.is_empty() {
                    read(&mut files, &join(&inc_dir, ".env"));
                }
                for e in envs {
                    read(&mut files, &join(&workdir, &e));
                }
                for p in &paths {
                    if read(&mut files, p) {
                        queue.push((p.clone(), inc_dir.clone()));
                    }
                }
            }
        }
        if let Some(Value::Mapping(services)) = value.get("services") {
            for (_, svc) in services {
                if let Some(Value::String(f)) = svc.get("extends").and_then(|e| e.get("file")) {
                    let p = join(&dir_of(&file), f);
                    if read(&mut files, &p) {
                        queue.push((p.clone(), dir_of(&p)));
                    }
                }
            }
        }
    }
    Ok(Sources {
        files: files.into_iter().collect(),
        compose_files,
        env_files,
        profiles: project.profiles.clone(),
        directory: dir.file_name().map(|n| n.to_string_lossy().into_owned()),
        environment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/a/b/c.yml"), Path::new("/a")),
            "b/c.yml"
        );
        assert_eq!(
            relative(Path::new("/x/c.yml"), Path::new("/a/b")),
            "../../x/c.yml"
        );
    }

    /// The corpus's three-file project, read from disk as the CLI does,
    /// loads to the same model as from the uploaded files.
    #[test]
    fn disk_sources_load_like_uploads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/compose/stack");
        let project = DiskProject {
            profiles: vec!["gpu".into()],
            project_directory: Some(dir.clone()),
            ..DiskProject::default()
        };
        let src = sources_from_disk(&project, BTreeMap::new()).unwrap();
        let paths: Vec<&str> = src.files.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(
            paths,
            vec![
                ".env",
                "compose.override.yaml",
                "compose.yaml",
                "monitoring/compose.yaml"
            ]
        );
        let loaded = super::super::load(&src).unwrap();
        assert_eq!(
            loaded.project,
            Some(("stack".into(), "COMPOSE_PROJECT_NAME"))
        );
        assert_eq!(
            loaded.files,
            vec![
                "compose.yaml",
                "monitoring/compose.yaml",
                "compose.override.yaml"
            ]
        );
        assert!(loaded.file.services.contains_key("worker-gpu"));
        assert_eq!(
            loaded.inactive,
            vec![("pgadmin".to_owned(), vec!["debug".to_owned()])]
        );
        // -f with a path outside the current directory names files from
        // the first file's directory.
        let project = DiskProject {
            files: vec![dir.join("compose.yaml")],
            ..DiskProject::default()
        };
        let src = sources_from_disk(&project, BTreeMap::new()).unwrap();
        assert_eq!(src.compose_files, vec!["compose.yaml"]);
        assert_eq!(src.directory.as_deref(), Some("stack"));
    }
}
