//! `extends` (same file or `file:`) as compose resolves it: the base
//! service, its own `extends` followed first, merged under the extending
//! service by the merge rules ([`super::merge`]); `file:` is relative to
//! the extending file; a cycle is an error.

use serde_norway::{Mapping, Value};

use super::interpolate::{key_text, Vars};
use super::load::{dir_of, join, locate, located, Ctx};
use super::merge::{merge, strip_tags};
use super::ComposeError;

impl Ctx<'_> {
    /// Service `name` of `services` (from `file`) with its `extends` chain
    /// merged in.
    pub(super) fn extend(
        &mut self,
        file: &str,
        services: &Mapping,
        name: &str,
        vars: &Vars,
        seen: &mut Vec<(String, String)>,
    ) -> Result<Value, ComposeError> {
        let field = format!("services.{name}.extends");
        let err = |ctx: &Self, msg: String| {
            located(
                file,
                locate(
                    ctx.texts.get(file).copied().unwrap_or_default(),
                    &field,
                    None,
                ),
                Some(field.clone()),
                msg,
            )
        };
        let Some(svc) = services.get(name) else {
            return Err(err(self, format!("service {name:?} not found")));
        };
        let Some(ext) = svc.get("extends") else {
            return Ok(svc.clone());
        };
        let (base_name, base_file) = match ext {
            Value::String(s) => (s.clone(), None),
            Value::Mapping(m) => match m.get("service") {
                Some(Value::String(s)) => (s.clone(), m.get("file").map(key_text)),
                _ => return Err(err(self, "extends needs a `service`".to_owned())),
            },
            _ => {
                return Err(err(
                    self,
                    "extends must be a service name or a mapping".to_owned(),
                ))
            }
        };
        if seen.iter().any(|(f, n)| f == file && n == name) {
            return Err(err(
                self,
                format!("circular extends through service {name:?}"),
            ));
        }
        seen.push((file.to_owned(), name.to_owned()));
        let base = match base_file {
            Some(f) => {
                let other = join(&dir_of(file), &f);
                let other_top = self.parse_file(&other, &dir_of(&other), vars)?;
                let other_services = match other_top.get("services") {
                    Some(Value::Mapping(m)) => m.clone(),
                    _ => Mapping::new(),
                };
                if !other_services.contains_key(base_name.as_str()) {
                    return Err(err(self, format!("cannot extend service {name:?}: service {base_name:?} not found in {other}")));
                }
                self.extend(&other, &other_services, &base_name, vars, seen)?
            }
            None => {
                if !services.contains_key(base_name.as_str()) {
                    return Err(err(
                        self,
                        format!("cannot extend service {name:?}: service {base_name:?} not found"),
                    ));
                }
                self.extend(file, services, &base_name, vars, seen)?
            }
        };
        seen.pop();
        let mut own = svc.clone();
        if let Value::Mapping(m) = &mut own {
            m.remove("extends");
        }
        let base = strip_tags(base);
        merge(base, own, &["services".to_owned(), name.to_owned()]).map_err(|m| err(self, m))
    }
}
