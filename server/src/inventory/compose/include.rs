//! `include` as compose resolves it: each entry's files loaded as a
//! project of their own (its directory, its env files; the including
//! project's variables win), then its services, volumes, networks, secrets
//! and configs added to the including file; a service defined on both
//! sides is an error.

use serde_norway::{Mapping, Value};

use super::dotenv::read_env_file;
use super::interpolate::{key_text, Vars};
use super::load::{dir_of, join, locate, located, Ctx};
use super::ComposeError;

impl Ctx<'_> {
    /// The `include` entries of `file`, loaded and added to `top`.
    pub(super) fn include(
        &mut self,
        file: &str,
        workdir: &str,
        inc: Value,
        vars: &Vars,
        chain: &mut Vec<String>,
        top: &mut Mapping,
    ) -> Result<(), ComposeError> {
        let text = self.texts.get(file).copied().unwrap_or_default();
        let err = |msg: String| {
            located(
                file,
                locate(text, "include", None),
                Some("include".to_owned()),
                msg,
            )
        };
        let Value::Sequence(items) = inc else {
            return Err(err("include must be a list".to_owned()));
        };
        let strings = |v: Option<&Value>| -> Vec<String> {
            match v {
                Some(Value::Sequence(s)) => s.iter().map(key_text).collect(),
                Some(Value::Null) | None => Vec::new(),
                Some(other) => vec![key_text(other)],
            }
        };
        for item in items {
            let (paths, project_dir, env_files) = match &item {
                Value::String(s) => (vec![s.clone()], None, Vec::new()),
                Value::Mapping(m) => (
                    strings(m.get("path")),
                    m.get("project_directory").map(key_text),
                    strings(m.get("env_file")),
                ),
                _ => {
                    return Err(err(
                        "an include entry is a path or a mapping with `path`".to_owned()
                    ))
                }
            };
            if paths.is_empty() {
                return Err(err("an include entry needs a `path`".to_owned()));
            }
            let paths: Vec<String> = paths.iter().map(|p| join(workdir, p)).collect();
            if chain.contains(&paths[0]) {
                return Err(err(format!(
                    "include cycle: {} includes {}",
                    file, paths[0]
                )));
            }
            let dir = project_dir.map_or_else(|| dir_of(&paths[0]), |d| join(workdir, &d));
            let env_files: Vec<String> = if env_files.is_empty() {
                let dot = join(&dir, ".env");
                self.texts
                    .contains_key(&dot)
                    .then_some(dot)
                    .into_iter()
                    .collect()
            } else {
                env_files.iter().map(|f| join(workdir, f)).collect()
            };
            // The including project's variables win; the include's env
            // files only add what is not set.
            let mut own = Vars::new();
            for f in &env_files {
                let t = self.text(f, "env file")?;
                read_env_file(t, vars, &mut own)
                    .map_err(|(line, msg)| located(f, Some(line), None, msg))?;
            }
            let mut inc_vars = vars.clone();
            for (k, v) in own {
                inc_vars.entry(k).or_insert(v);
            }
            let Value::Mapping(imported) = self.load_model(&paths, &dir, &inc_vars, chain)? else {
                unreachable!()
            };
            for (section, content) in imported {
                let Value::Mapping(content) = content else {
                    continue;
                };
                let key = key_text(&section);
                if !matches!(
                    key.as_str(),
                    "services" | "volumes" | "networks" | "secrets" | "configs"
                ) {
                    continue;
                }
                let target = top
                    .entry(section)
                    .or_insert_with(|| Value::Mapping(Mapping::new()));
                if target.is_null() {
                    *target = Value::Mapping(Mapping::new());
                }
                let Value::Mapping(target) = target else {
                    continue;
                };
                for (k, v) in content {
                    if let Some(existing) = target.get(&k) {
                        if key == "services" || *existing != v {
                            let name = key_text(&k);
                            return Err(located(
                                file,
                                locate(text, &format!("{key}.{name}"), None),
                                Some(format!("{key}.{name}")),
                                format!(
                                    "{key} {name:?} is defined both here and in the included {}",
                                    paths[0]
                                ),
                            ));
                        }
                    }
                    target.insert(k, v);
                }
            }
        }
        Ok(())
    }
}
