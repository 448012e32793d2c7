//! Proxy mode: for every running container of the proxy service, save
//! what is at the page and snippet paths (in the actuator's `saved`, with
//! state `enabling`, committed before the first write), place the rendered
//! page and the snippet, run the reload argv. Any error restores what was
//! saved in every container, reloads, sets the state back to `off` and
//! fails the step. Disabling restores the saved files byte for byte.

use std::collections::BTreeMap;

use chrono::Utc;
use opsdeck_wire::ProxyActuation;

use super::note;
use super::stack::set_state;
use crate::maintenance::page;
use crate::maintenance::proxy::{self, Saved};
use crate::runbooks::step::StepCx;
use crate::state::AppState;

/// Restores every container's saved files and reloads it; returns the
/// errors. A container that no longer exists (or whose engine was removed)
/// is skipped with a line; one that cannot be reached now is an error, so
/// the saved state is kept for the next try.
pub(super) async fn restore_all(
    cx: &StepCx<'_>,
    saved: &BTreeMap<String, Saved>,
    reload: &[String],
) -> Vec<String> {
    let mut errors = Vec::new();
    for (key, files) in saved {
        let (engine, container) = parse_key(key);
        let docker = match reach(cx.state, engine, container).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                cx.out.line(format!(
                    "container {} is gone: nothing to restore there",
                    short(container)
                ));
                continue;
            }
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        let r = async {
            proxy::restore(&docker, container, files).await?;
            proxy::reload(&docker, container, reload).await
        };
        match r.await {
            Ok(()) => cx.out.line(format!(
                "restored {} file(s) in {}",
                files.len(),
                short(container)
            )),
            Err(e) => errors.push(format!("restoring {}: {e:#}", short(container))),
        }
    }
    errors
}

pub(super) fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// `saved` is keyed by `<engine id>/<container id>`.
pub(super) fn saved_key(engine_id: i64, container: &str) -> String {
    format!("{engine_id}/{container}")
}

pub(super) fn parse_key(key: &str) -> (Option<i64>, &str) {
    match key.split_once('/') {
        Some((e, c)) => (e.parse().ok(), c),
        None => (None, key),
    }
}

/// The engine client for a saved container: `None` when the container (or
/// its engine's registration) is gone for good; an error when it cannot be
/// told now (engine disconnected, no answer).
pub(super) async fn reach(
    state: &AppState,
    engine: Option<i64>,
    container: &str,
) -> Result<Option<crate::docker::Client>, String> {
    let Some(conn) = engine.and_then(|e| state.engines.get(e)) else {
        return Ok(None);
    };
    let docker = conn.client().map_err(|e| {
        format!(
            "engine {} is not reachable ({e}); the saved files are kept for the next try",
            conn.name
        )
    })?;
    match crate::docker::ops::container_exists(&docker, container).await {
        Ok(true) => Ok(Some(docker)),
        Ok(false) => Ok(None),
        Err(e) => Err(format!("engine {}: {e}", conn.name)),
    }
}

/// The snippet with its placeholders filled.
pub fn render_snippet(cfg: &ProxyActuation) -> String {
    let (dir, file) = cfg
        .page_path
        .rsplit_once('/')
        .map(|(d, f)| (if d.is_empty() { "/" } else { d }, f))
        .unwrap_or(("/", cfg.page_path.as_str()));
    cfg.snippet
        .replace("{{page_path}}", &cfg.page_path)
        .replace("{{page_dir}}", dir)
        .replace("{{page_file}}", file)
}

pub(super) async fn proxy_enable(
    cx: &StepCx<'_>,
    stack: &str,
    cfg: &ProxyActuation,
    period: i64,
) -> Result<(), String> {
    // Placing the page writes into the proxy's containers. Restoring (disable)
    // stays allowed: a panel switched to read-only mid-maintenance must still
    // be able to take its page down.
    crate::actions::ensure_writable(cx.state, "the maintenance page (proxy mode)")
        .map_err(|e| e.to_string())?;
    let target = crate::actions::service_target(cx.state, &cfg.service)
        .await
        .map_err(|e| format!("proxy service {}: {e}", cfg.service))?;
    let running: Vec<_> = target
        .containers
        .into_iter()
        .filter(|c| c.state == "running")
        .collect();
    if running.is_empty() {
        return Err(format!(
            "proxy service {} has no running container",
            cfg.service
        ));
    }
    let until: chrono::DateTime<Utc> = sqlx::query_scalar!(
        "SELECT ends_at FROM maintenance_periods WHERE id = $1",
        period
    )
    .fetch_one(&cx.state.pool)
    .await
    .map_err(|e| e.to_string())?;
    let page = page::render(until);
    let snippet = render_snippet(cfg);
    let mut paths = vec![cfg.page_path.as_str()];
    if let Some(s) = cfg.snippet_path.as_deref() {
        paths.push(s);
    }
    // 1. What is there now, saved before anything changes.
    let mut saved: BTreeMap<String, Saved> = BTreeMap::new();
    let mut dockers = Vec::new();
    for c in &running {
        let (_, docker) = crate::actions::engine_of(cx.state, c).map_err(|e| e.to_string())?;
        let s = proxy::snapshot(&docker, &c.id, &paths)
            .await
            .map_err(|e| format!("reading {} in {}: {e:#}", paths.join(", "), c.name))?;
        saved.insert(saved_key(c.engine_id, &c.id), s);
        dockers.push((c, docker));
    }
    let saved_json = serde_json::to_value(&saved).map_err(|e| e.to_string())?;
    set_state(cx.state, stack, "enabling", Some(&saved_json), None).await?;
    // 2. Place and reload, container by container.
    let mut files: Vec<(&str, &[u8])> = vec![(cfg.page_path.as_str(), page.as_bytes())];
    if let Some(s) = cfg.snippet_path.as_deref() {
        files.push((s, snippet.as_bytes()));
    }
    for (c, docker) in &dockers {
        let r = async {
            proxy::place(docker, &c.id, &files).await?;
            cx.out
                .line(format!("placed the maintenance page in {}", c.name));
            proxy::reload(docker, &c.id, &cfg.reload).await?;
            if !cfg.reload.is_empty() {
                cx.out
                    .line(format!("reloaded {} ({})", c.name, cfg.reload.join(" ")));
            }
            anyhow::Ok(())
        };
        if let Err(e) = r.await {
            let e = format!("{} in {}: {e:#}", "placing the page", c.name);
            cx.out
                .line(format!("failed: {e}; restoring every proxy container"));
            let errors = restore_all(cx, &saved, &cfg.reload).await;
            if errors.is_empty() {
                set_state(cx.state, stack, "off", None, Some(&e)).await?;
                return Err(e);
            }
            let all = format!("{e}; restoring failed too: {}", errors.join("; "));
            set_state(cx.state, stack, "disabling", Some(&saved_json), Some(&all)).await?;
            return Err(all);
        }
    }
    set_state(cx.state, stack, "on", Some(&saved_json), None).await?;
    note(
        cx.state,
        period,
        cx.actor,
        "actuation",
        &format!(
            "Proxy {}: maintenance page placed in {} container(s) and reloaded",
            cfg.service,
            dockers.len()
        ),
    )
    .await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(page: &str, snippet: &str) -> ProxyActuation {
        ProxyActuation {
            service: "proxy".into(),
            page_path: page.into(),
            snippet_path: Some("/etc/nginx/conf.d/maintenance.conf".into()),
            snippet: snippet.into(),
            reload: vec!["nginx".into(), "-s".into(), "reload".into()],
        }
    }

    #[test]
    fn snippet_placeholders_name_the_page() {
        let c = cfg(
            "/usr/share/nginx/html/maintenance.html",
            "root {{page_dir}}; try {{page_file}}; at {{page_path}}",
        );
        assert_eq!(
            render_snippet(&c),
            "root /usr/share/nginx/html; try maintenance.html; at /usr/share/nginx/html/maintenance.html"
        );
        // A page at the root: the directory is "/".
        assert_eq!(render_snippet(&cfg("/index.html", "{{page_dir}}")), "/");
        // Text without placeholders is left alone (no other template syntax).
        assert_eq!(
            render_snippet(&cfg("/a.html", "{{other}} $x")),
            "{{other}} $x"
        );
    }

    #[test]
    fn saved_keys_name_engine_and_container() {
        let k = saved_key(7, "4f2a9c");
        assert_eq!(parse_key(&k), (Some(7), "4f2a9c"));
        // No engine: treated as unreachable for good (skipped on restore).
        assert_eq!(parse_key("4f2a9c"), (None, "4f2a9c"));
    }
}
