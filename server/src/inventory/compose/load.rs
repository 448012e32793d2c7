//! The Compose Specification's loading model: from [`Sources`] (the files
//! of a project, by path relative to the project directory) to the merged
//! model of its active services, as `docker compose config` (compose-go v2)
//! builds it.
//!
//! Order of work, as in compose-go: the env files are read (the
//! environment given in [`Sources::environment`] wins over them); each
//! compose file is parsed (duplicate keys refused with their line), its `<<`
//! merge keys applied, its string values interpolated, its `extends`
//! resolved, its `include`s loaded and added (a service defined both in a
//! file and in what it includes is an error), and the files are merged in
//! order ([`super::merge`]). Then the profiles select the active services,
//! the project name is chosen, and the merged model goes through the same
//! typed validation as a single file ([`super::parse`]).
//!
//! Decisions where the issue was silent:
//! * Relative bind-mount sources of included files and of files named by
//!   `extends.file` are rewritten relative to the project directory
//!   (`./sub/data:/data`), so one model describes the whole project;
//!   compose makes them absolute.
//! * The project name is the caller's, then `COMPOSE_PROJECT_NAME` (the
//!   environment, then the env files), then `name:`, then the directory's
//!   name normalised like compose (lowercase, only `[a-z0-9_-]`, leading
//!   `_`/`-` trimmed). This is compose's own precedence (checked against
//!   the reference binary): the variable wins over `name:`.
//! * A dependency on a service outside the active profiles is an error, as
//!   in compose, unless it is marked `required: false`; then the edge is
//!   dropped (the dependency is not imported).

use std::collections::{BTreeMap, BTreeSet};

use serde_norway::{Mapping, Value};

use super::dotenv::read_env_file;
use super::interpolate::{interpolate_value, key_text, Vars};
use super::merge::{merge, split_volume};
use super::{
    check_document, convert_error, find_line, parse, ComposeError, ComposeFile, Loaded, Sources,
    Step,
};

/// compose's default file names, in its order of preference.
const DEFAULT_FILES: [&str; 4] = [
    "compose.yaml",
    "compose.yml",
    "docker-compose.yml",
    "docker-compose.yaml",
];

/// compose's override file names, in its order of preference.
const OVERRIDE_FILES: [&str; 4] = [
    "compose.override.yml",
    "compose.override.yaml",
    "docker-compose.override.yml",
    "docker-compose.override.yaml",
];

/// Loads a compose project the way `docker compose` does (see the module
/// documentation).
pub fn load(src: &Sources) -> Result<Loaded, ComposeError> {
    let mut ctx = Ctx::new(src);
    // The env files, then the environment over them.
    let env_files: Vec<String> = if src.env_files.is_empty() {
        ctx.texts
            .contains_key(".env")
            .then(|| ".env".to_owned())
            .into_iter()
            .collect()
    } else {
        src.env_files.iter().map(|f| normalize(f)).collect()
    };
    let mut vars = Vars::new();
    for f in &env_files {
        let text = ctx.text(f, "env file")?;
        read_env_file(text, &src.environment, &mut vars)
            .map_err(|(line, msg)| located(f, Some(line), None, msg))?;
    }
    vars.extend(src.environment.iter().map(|(k, v)| (k.clone(), v.clone())));

    let compose_files = ctx.compose_files(src, &vars)?;
    let mut chain = Vec::new();
    let mut model = ctx.load_model(&compose_files, "", &vars, &mut chain)?;
    let Value::Mapping(top) = &mut model else {
        unreachable!("load_model returns a mapping")
    };

    let profiles: BTreeSet<String> = if src.profiles.is_empty() {
        vars.get("COMPOSE_PROFILES")
            .map(|p| {
                p.split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default()
    } else {
        src.profiles.iter().cloned().collect()
    };
    let inactive = ctx.select_profiles(top, &profiles)?;

    let name_in_files = top.get("name").map(key_text);
    let project = match vars.get("COMPOSE_PROJECT_NAME").filter(|n| !n.is_empty()) {
        Some(n) => {
            let valid = n
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-')
                && n.as_bytes()[0].is_ascii_alphanumeric();
            if !valid {
                return Err(ComposeError::new(
                    format!("invalid project name {n:?} in COMPOSE_PROJECT_NAME: lowercase letters, digits, '-' and '_', starting with a letter or digit"),
                    None,
                    None,
                ));
            }
            Some((n.clone(), "COMPOSE_PROJECT_NAME"))
        }
        None => match &name_in_files {
            Some(n) => Some((n.clone(), "name")),
            None => src
                .directory
                .as_deref()
                .map(normalize_project_name)
                .filter(|n| !n.is_empty())
                .map(|n| (n, "directory")),
        },
    };

    let services_left = top
        .get("services")
        .and_then(Value::as_mapping)
        .is_some_and(|m| !m.is_empty());
    let file = if services_left || inactive.is_empty() {
        let text = serde_norway::to_string(&model)
            .map_err(|e| ComposeError::new(e.to_string(), None, None))?;
        parse(&text).map_err(|e| ctx.relocate(e))?
    } else {
        // Every service is behind an inactive profile.
        ComposeFile {
            name: name_in_files,
            services: BTreeMap::new(),
        }
    };
    Ok(Loaded {
        file,
        project,
        files: ctx.read,
        inactive,
    })
}

/// A project name from a directory name, as compose normalises it.
pub fn normalize_project_name(dir: &str) -> String {
    let base = dir
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let lower: String = base
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_' || *c == '-')
        .collect();
    lower.trim_start_matches(['_', '-']).to_owned()
}

/// A path without `.` and `x/..` segments and without a leading `./`
/// (a leading `..` is kept).
pub fn normalize(path: &str) -> String {
    let absolute = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let joined = parts.join("/");
    if absolute {
        format!("/{joined}")
    } else {
        joined
    }
}

/// `rel` relative to the directory `dir` ("" is the project directory).
pub fn join(dir: &str, rel: &str) -> String {
    if rel.starts_with('/') || dir.is_empty() {
        normalize(rel)
    } else {
        normalize(&format!("{dir}/{rel}"))
    }
}

/// The directory of a file path ("" for the project directory).
pub fn dir_of(path: &str) -> String {
    path.rsplit_once('/')
        .map(|(d, _)| d.to_owned())
        .unwrap_or_default()
}

pub(super) fn located(
    file: &str,
    line: Option<usize>,
    field: Option<String>,
    message: String,
) -> ComposeError {
    let mut e = ComposeError::new(message, line, field);
    e.file = Some(file.to_owned());
    e
}

/// The line of a dotted field path (`services.web.ports[1]`), searching
/// with fewer steps when the full path is not found.
pub(super) fn locate(text: &str, field: &str, extra: Option<&str>) -> Option<usize> {
    let keys: Vec<&str> = field
        .split('.')
        .map(|k| k.split_once('[').map_or(k, |(k, _)| k))
        .filter(|k| !k.is_empty())
        .collect();
    for n in (1..=keys.len()).rev() {
        let mut steps: Vec<Step<'_>> = keys[..n].iter().map(|k| Step::Key(k)).collect();
        if n == keys.len() {
            if let Some(t) = extra {
                steps.push(Step::Text(t));
            }
        }
        if let Some(line) = find_line(text, &steps) {
            return Some(line);
        }
    }
    None
}

/// The state of one load: the uploaded texts and the files read so far.
pub(super) struct Ctx<'a> {
    pub(super) texts: BTreeMap<String, &'a str>,
    pub(super) read: Vec<String>,
}

impl<'a> Ctx<'a> {
    fn new(src: &'a Sources) -> Self {
        Ctx {
            texts: src
                .files
                .iter()
                .map(|(p, t)| (normalize(p), t.as_str()))
                .collect(),
            read: Vec::new(),
        }
    }

    pub(super) fn text(&self, path: &str, what: &str) -> Result<&'a str, ComposeError> {
        self.texts.get(path).copied().ok_or_else(|| {
            ComposeError::new(
                format!("{what} {path:?} is not among the files given"),
                None,
                None,
            )
        })
    }

    /// `-f` files, else `COMPOSE_FILE`, else the default file and its
    /// override.
    fn compose_files(&self, src: &Sources, vars: &Vars) -> Result<Vec<String>, ComposeError> {
        if !src.compose_files.is_empty() {
            return Ok(src.compose_files.iter().map(|f| normalize(f)).collect());
        }
        if let Some(list) = vars.get("COMPOSE_FILE").filter(|l| !l.is_empty()) {
            let sep = vars
                .get("COMPOSE_PATH_SEPARATOR")
                .map_or(":", String::as_str);
            return Ok(list
                .split(sep)
                .filter(|f| !f.is_empty())
                .map(normalize)
                .collect());
        }
        let main = DEFAULT_FILES
            .iter()
            .find(|f| self.texts.contains_key(**f))
            .ok_or_else(|| {
                ComposeError::new(
                    "no compose file: expected compose.yaml (or compose.yml, docker-compose.yml, docker-compose.yaml)".to_owned(),
                    None,
                    None,
                )
            })?;
        let mut files = vec![(*main).to_owned()];
        if let Some(o) = OVERRIDE_FILES.iter().find(|f| self.texts.contains_key(**f)) {
            files.push((*o).to_owned());
        }
        Ok(files)
    }

    pub(super) fn note_read(&mut self, path: &str) {
        if !self.read.iter().any(|r| r == path) {
            self.read.push(path.to_owned());
        }
    }

    /// The files merged in order, each with its extends and includes.
    pub(super) fn load_model(
        &mut self,
        files: &[String],
        workdir: &str,
        vars: &Vars,
        chain: &mut Vec<String>,
    ) -> Result<Value, ComposeError> {
        let mut acc = Value::Mapping(Mapping::new());
        for f in files {
            let v = self.load_file(f, workdir, vars, chain)?;
            acc = merge(acc, v, &[]).map_err(|m| {
                let line = locate(
                    self.texts[f.as_str()],
                    m.trim_start_matches("cannot override "),
                    None,
                );
                located(f, line, None, m)
            })?;
        }
        Ok(acc)
    }

    /// One file parsed, merge keys applied, interpolated; relative paths
    /// rebased from `workdir`.
    pub(super) fn parse_file(
        &mut self,
        path: &str,
        workdir: &str,
        vars: &Vars,
    ) -> Result<Mapping, ComposeError> {
        let text = self.text(path, "compose file")?;
        self.note_read(path);
        let at = |p: super::YamlProblem| located(path, p.line, p.field, p.message);
        check_document(text).map_err(at)?;
        let mut v: Value = serde_norway::from_str(text).map_err(|e| at(convert_error(&e)))?;
        v.apply_merge().map_err(|e| at(convert_error(&e)))?;
        let Value::Mapping(mut top) = v else {
            return Err(located(
                path,
                Some(1),
                None,
                "a compose file must be a mapping".to_owned(),
            ));
        };
        let mut field = Vec::new();
        let mut whole = Value::Mapping(std::mem::take(&mut top));
        interpolate_value(&mut whole, vars, &mut field)
            .map_err(|(f, e)| located(path, locate(text, &f, None), Some(f), e.0))?;
        let Value::Mapping(mut top) = whole else {
            unreachable!()
        };
        if !workdir.is_empty() {
            if let Some(Value::Mapping(services)) = top.get_mut("services") {
                for (_, svc) in services.iter_mut() {
                    rebase(svc, workdir);
                }
            }
        }
        Ok(top)
    }

    fn load_file(
        &mut self,
        path: &str,
        workdir: &str,
        vars: &Vars,
        chain: &mut Vec<String>,
    ) -> Result<Value, ComposeError> {
        let mut top = self.parse_file(path, workdir, vars)?;
        // extends, within this file's services.
        if let Some(Value::Mapping(services)) = top.get("services") {
            let raw = services.clone();
            let mut resolved = Mapping::new();
            for (name, _) in &raw {
                let name = key_text(name);
                let svc = self.extend(path, &raw, &name, vars, &mut Vec::new())?;
                resolved.insert(Value::String(name), svc);
            }
            top.insert("services".into(), Value::Mapping(resolved));
        }
        if let Some(inc) = top.remove("include") {
            chain.push(path.to_owned());
            let r = self.include(path, workdir, inc, vars, chain, &mut top);
            chain.pop();
            r?;
        }
        Ok(Value::Mapping(top))
    }

    /// Moves the services outside the active profiles out of the model and
    /// drops the optional dependencies on them.
    fn select_profiles(
        &self,
        top: &mut Mapping,
        active: &BTreeSet<String>,
    ) -> Result<Vec<(String, Vec<String>)>, ComposeError> {
        let Some(Value::Mapping(services)) = top.get_mut("services") else {
            return Ok(Vec::new());
        };
        let mut inactive = Vec::new();
        let names: Vec<Value> = services.keys().cloned().collect();
        for k in names {
            let profiles: Vec<String> = match services.get(&k).and_then(|s| s.get("profiles")) {
                Some(Value::Sequence(p)) => p.iter().map(key_text).collect(),
                _ => Vec::new(),
            };
            let on = profiles.is_empty()
                || active.contains("*")
                || profiles.iter().any(|p| active.contains(p));
            if !on {
                services.remove(&k);
                inactive.push((key_text(&k), profiles));
            }
        }
        for (name, svc) in services.iter_mut() {
            let Some(Value::Mapping(deps)) = svc.get_mut("depends_on") else {
                // The list form has no `required: false`: checked below.
                if let Some(Value::Sequence(deps)) = svc.get("depends_on") {
                    for d in deps {
                        let d = key_text(d);
                        if let Some((_, p)) = inactive.iter().find(|(n, _)| *n == d) {
                            return Err(self.inactive_dep(&key_text(name), &d, p));
                        }
                    }
                }
                continue;
            };
            let keys: Vec<Value> = deps.keys().cloned().collect();
            for k in keys {
                let d = key_text(&k);
                let Some((_, p)) = inactive.iter().find(|(n, _)| *n == d) else {
                    continue;
                };
                let required = deps
                    .get(&k)
                    .and_then(|c| c.get("required"))
                    .and_then(Value::as_bool)
                    .unwrap_or(true);
                if required {
                    return Err(self.inactive_dep(&key_text(name), &d, p));
                }
                deps.remove(&k);
            }
        }
        Ok(inactive)
    }

    fn inactive_dep(&self, name: &str, dep: &str, profiles: &[String]) -> ComposeError {
        let mut e = ComposeError::new(
            format!(
                "service {name:?} depends on {dep:?}, which is only in profile(s) {} (not active): activate one, or mark the dependency `required: false`",
                profiles.join(", ")
            ),
            None,
            Some(format!("services.{name}.depends_on")),
        );
        self.place(&mut e, Some(dep));
        e
    }

    /// Finds the file and line of an error's field, latest file first:
    /// the first file where the whole path is found, else the first where
    /// a part of it is.
    fn place(&self, e: &mut ComposeError, extra: Option<&str>) {
        let Some(field) = e.field.clone() else { return };
        let full: Vec<Step<'_>> = field
            .split('.')
            .map(|k| Step::Key(k.split_once('[').map_or(k, |(k, _)| k)))
            .chain(extra.map(Step::Text))
            .collect();
        let text = |f: &String| self.texts.get(f.as_str()).copied().unwrap_or_default();
        let found = self
            .read
            .iter()
            .rev()
            .find_map(|f| find_line(text(f), &full).map(|l| (f, l)))
            .or_else(|| {
                self.read
                    .iter()
                    .rev()
                    .find_map(|f| locate(text(f), &field, extra).map(|l| (f, l)))
            });
        e.line = found.map(|(_, l)| l);
        e.file = found.map(|(f, _)| f.clone());
    }

    /// An error of the typed validation of the merged model, placed in the
    /// file that wrote the field.
    fn relocate(&self, mut e: ComposeError) -> ComposeError {
        let dep = e
            .message
            .strip_prefix("unknown service \"")
            .or_else(|| e.message.strip_prefix("service \""))
            .and_then(|r| r.split('"').next())
            .map(str::to_owned);
        let extra = if e
            .field
            .as_deref()
            .is_some_and(|f| f.ends_with(".depends_on"))
        {
            dep
        } else {
            None
        };
        if e.field.is_none() {
            // The line would be one of the merged text, not of a file.
            e.line = None;
        }
        self.place(&mut e, extra.as_deref());
        e
    }
}

/// Rewrites the relative bind sources of a service's volumes from `dir`
/// to the project directory.
fn rebase(svc: &mut Value, dir: &str) {
    let Some(Value::Sequence(vols)) = svc.get_mut("volumes") else {
        return;
    };
    let is_path = |s: &str| s.starts_with('.');
    let fix = |s: &str| {
        let p = join(dir, s);
        if p.starts_with("..") || p.starts_with('/') {
            p
        } else {
            format!("./{p}")
        }
    };
    for v in vols.iter_mut() {
        match v {
            Value::String(s) => {
                let parts = split_volume(s);
                if parts.len() >= 2 && is_path(parts[0]) {
                    let mut out = vec![fix(parts[0])];
                    out.extend(parts[1..].iter().map(|p| (*p).to_owned()));
                    *s = out.join(":");
                }
            }
            Value::Mapping(m) => {
                if let Some(Value::String(src)) = m.get_mut("source") {
                    if is_path(src) {
                        *src = fix(src);
                    }
                }
            }
            _ => {}
        }
    }
}
