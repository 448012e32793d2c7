//! The `image` step kind: pull, recreate with the same configuration,
//! health gate, automatic rollback.
//!
//! # `op: update` (target: a service)
//!
//! 1. Leftovers of an earlier, ended update of the service are recovered
//!    first ([`super::recover`]).
//! 2. `to` says what to move to: empty → the service's own reference again
//!    (the newest image of its tag); a tag → `repo:tag`; `sha256:…` → the
//!    local image with that id when the engine has it (going back to a
//!    version needs no registry), else the registry digest `repo@sha256:…`.
//!    The image is pulled on every engine of the service (progress lines
//!    stream to the run's output) **before any container is touched**: a
//!    registry that is down fails the step and leaves the service as it was.
//! 3. Containers already on the pulled image: "already up to date".
//! 4. Otherwise, one container at a time, each engine step preceded by its
//!    journal phase (`stopping`, `renaming`, `creating`, `starting`,
//!    `gating`): stop the old container (its stop grace), rename it
//!    `<name>-opsdeck-prev`, create the new one under the original name
//!    with the old one's configuration ([`crate::docker::images::recreate`]),
//!    start it, then the health gate ([`super::gate`]) within `gate`
//!    (default: the service's `gate_seconds`, else 120 s).
//! 5. Every container passed: the `-prev` containers are removed (phase
//!    `removing_old`), the rows finish `done`, the version is `confirmed`.
//!    One failed (gate or engine step): every container replaced so far is
//!    rolled back (phase `rolling_back`: the new one removed, the old one
//!    renamed back and started, then its health waited for), the version is
//!    `rolled_back`, an incident is opened on the service (deduplicated per
//!    service), a `high` notification goes out through the run, and the step
//!    fails: "v3 failed its health gate: …; rolled back to sha256:…".
//!
//! The previous *image* is never removed by an update (only the old
//! container), so a rollback or a later "go back" always finds it.
//!
//! # `op: stack` (target: a compose project)
//!
//! Every service of the project, dependencies first
//! ([`crate::inventory::graph::DepGraph::start_order`]), each as above with
//! the same `to` and `gate`; the first service that fails or rolls back
//! stops the rollout. The step's outputs (and its failure message) list each
//! service's outcome.
//!
//! # Never without a container
//!
//! - The old container is never removed before the new one passed the gate:
//!   until then it exists, stopped, under `<name>-opsdeck-prev`, and only the
//!   `removing_old` phase (entered after the gate passed) removes it.
//! - A journal row (`image_update_journal`) is committed before the first
//!   engine step on a container, and its phase before each following one.
//! - If Opsdeck dies mid-update (kill -9, power loss), the run's lease runs
//!   out and the run becomes `interrupted`; [`super::recover`] (at start-up
//!   and every 10 s, one process at a time, see [`super::tasks`]) then finds
//!   the unfinished row and keeps the new container only if it runs and
//!   passes one look of the gate, else puts the old one back under its name
//!   and starts it. Both outcomes leave exactly one container under the
//!   original name, on the old or the new image.
//! - The only state without a container under the name (between the rename
//!   and the create) is covered by the same recovery: the old container is
//!   still there under `-prev`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use opsdeck_wire::{ContainerInfo, Outcome, StepAction};
use serde_json::{json, Value};

use super::recover::{self, PREV_SUFFIX};
use super::{gate, store};
use crate::actions;
use crate::audit::{self, NewEntry};
use crate::docker::{images, Client, EngineConn};
use crate::runbooks::def::parse_duration;
use crate::runbooks::step::{StepCx, StepKind, StepResult};

/// The `image` step kind, registered with the runbook engine at start-up.
pub struct ImageStep;

impl StepKind for ImageStep {
    fn kind(&self) -> &'static str {
        "image"
    }

    fn execute<'a>(
        &'a self,
        cx: &'a StepCx<'a>,
        action: &'a StepAction,
    ) -> BoxFuture<'a, StepResult> {
        Box::pin(async move {
            match action {
                StepAction::Image {
                    op,
                    target,
                    to,
                    gate,
                } => step(cx, op, target.trim(), to.trim(), gate.trim()).await,
                other => Err(format!("not an image step: {}", other.kind())),
            }
        })
    }
}

async fn step(cx: &StepCx<'_>, op: &str, target: &str, to: &str, gate: &str) -> StepResult {
    actions::ensure_writable(cx.state, "an image step").map_err(|e| e.to_string())?;
    let gate = if gate.is_empty() {
        None
    } else {
        Some(parse_duration(gate).map_err(|e| format!("gate: {e}"))?)
    };
    check_to(to)?;
    match op {
        "update" => {
            let r = update_service(cx, target, to, gate).await?;
            r.into_result()
        }
        "stack" => super::stack::stack(cx, target, to, gate).await,
        other => Err(format!(
            "op \"{}\": update or stack",
            other.escape_default()
        )),
    }
}

/// `to` is a tag, a `sha256:` digest or image id, or empty.
fn check_to(to: &str) -> Result<(), String> {
    if to.is_empty() {
        return Ok(());
    }
    if let Some(hex) = to.strip_prefix("sha256:") {
        if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            return Ok(());
        }
        return Err(format!(
            "to: \"{}\" is not a sha256 digest (64 hex digits)",
            to.escape_default()
        ));
    }
    let ok = to.len() <= 128
        && to
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && to
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "to: \"{}\" is neither a tag nor a sha256 digest",
            to.escape_default()
        ))
    }
}

/// `repo` of a reference (`host:port/path/name:tag@digest` → `host:port/path/name`).
pub fn repository(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// What a service moves to: the reference the new containers name, and what
/// to pull (none: the engine has the image).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Want {
    reference: String,
    pull: Option<String>,
}

/// Resolves `to` against the service's current reference (see the module
/// docs); `local` answers whether an image id is on the engine.
fn want(current: &str, to: &str, local: Option<&images::ImageFacts>) -> Want {
    let repo = repository(current);
    if to.is_empty() {
        let reference = if current.contains('@') || current.rfind(':') > current.rfind('/') {
            current.to_owned()
        } else {
            format!("{current}:latest")
        };
        return Want {
            pull: Some(reference.clone()),
            reference,
        };
    }
    if to.starts_with("sha256:") {
        if let Some(img) = local {
            // A tag or digest of the same repository names it best.
            let prefix = format!("{repo}:");
            let by = format!("{repo}@");
            let reference = img
                .repo_tags
                .iter()
                .find(|t| t.starts_with(&prefix))
                .or_else(|| img.repo_digests.iter().find(|d| d.starts_with(&by)))
                .cloned()
                .unwrap_or_else(|| img.id.clone());
            return Want {
                reference,
                pull: None,
            };
        }
        let reference = format!("{repo}@{to}");
        return Want {
            pull: Some(reference.clone()),
            reference,
        };
    }
    let reference = format!("{repo}:{to}");
    Want {
        pull: Some(reference.clone()),
        reference,
    }
}

/// How one service's update ended.
#[derive(Debug, Clone)]
pub(super) struct Report {
    service: String,
    /// up_to_date, confirmed, rolled_back.
    pub(super) outcome: &'static str,
    from_image: String,
    to_image: String,
    reference: String,
    digest: Option<String>,
    containers: Vec<String>,
    pub(super) message: String,
}

impl Report {
    pub(super) fn json(&self) -> Value {
        json!({
            "service": self.service, "outcome": self.outcome, "from_image": self.from_image,
            "to_image": self.to_image, "reference": self.reference, "digest": self.digest,
            "containers": self.containers, "message": self.message,
        })
    }

    fn into_result(self) -> StepResult {
        if self.outcome == "rolled_back" {
            Err(self.message)
        } else {
            Ok(self.json())
        }
    }
}

/// A container being replaced.
struct Replacing {
    row: i64,
    conn: std::sync::Arc<EngineConn>,
    client: Client,
    name: String,
    old_id: String,
}

/// Updates one service (see the module docs). `Err` when nothing was
/// changed or the update could not even be rolled back cleanly;
/// `Ok(report)` with outcome `rolled_back` when the gate failed.
pub(super) async fn update_service(
    cx: &StepCx<'_>,
    service: &str,
    to: &str,
    gate: Option<Duration>,
) -> Result<Report, String> {
    let state = cx.state;
    let out = cx.out;
    let t = actions::service_target(state, service)
        .await
        .map_err(|e| e.to_string())?;
    let recovered = recover::recover(state, Some(t.id), Some(cx.run_id)).await;
    if recovered > 0 {
        out.line(format!(
            "{service}: recovered {recovered} container(s) an earlier update left half done"
        ));
    }
    let t = actions::service_target(state, service)
        .await
        .map_err(|e| e.to_string())?;
    let mut containers: Vec<ContainerInfo> = t.containers.clone();
    containers.sort_by(|a, b| a.name.cmp(&b.name));
    containers.retain(|c| !c.name.ends_with(PREV_SUFFIX));
    if containers.is_empty() {
        return Err(actions::no_containers(service).to_string());
    }
    let gate = match gate {
        Some(g) => g,
        None => Duration::from_secs(u64::from(
            store::gate_seconds(&state.pool, t.id)
                .await
                .map_err(|e| format!("reading the update settings: {e}"))?,
        )),
    };

    // Pull on every engine first: nothing is touched when it fails.
    let first = &containers[0];
    let (_, client0) = actions::engine_of(state, first).map_err(|e| e.to_string())?;
    let cur = images::container(&client0, &first.id)
        .await
        .map_err(|e| format!("{service}: {e:#}"))?
        .ok_or_else(|| format!("{service}: container {} vanished", first.name))?;
    let local = if to.starts_with("sha256:") {
        images::image(&client0, to)
            .await
            .map_err(|e| format!("{service}: {e:#}"))?
    } else {
        None
    };
    if cur.image_ref.starts_with("sha256:") && local.is_none() {
        return Err(format!(
            "{service}: its containers were created from the image id {}, not from a \
             repository reference: there is nothing to pull; give a local image id in `to`",
            cur.image_ref
        ));
    }
    let want = want(&cur.image_ref, to, local.as_ref());
    let mut new_image: Option<images::ImageFacts> = None;
    let mut pulled: HashSet<i64> = HashSet::new();
    for c in &containers {
        if !pulled.insert(c.engine_id) {
            continue;
        }
        let (_, client) = actions::engine_of(state, c).map_err(|e| e.to_string())?;
        if let Some(p) = &want.pull {
            out.line(format!("{service}: pulling {p} on {}", c.engine));
            images::pull(&client, p, |l| out.line(format!("  {l}")))
                .await
                .map_err(|e| format!("{service}: {e:#}; the service was not changed"))?;
        }
        let img = images::image(&client, &want.reference)
            .await
            .map_err(|e| format!("{service}: {e:#}"))?
            .ok_or_else(|| {
                format!(
                    "{service}: the engine {} has no image {}; the service was not changed",
                    c.engine, want.reference
                )
            })?;
        if let Some(prev) = &new_image {
            if prev.id != img.id {
                return Err(format!(
                    "{service}: {} is {} on one engine and {} on another; the service was not changed",
                    want.reference, prev.id, img.id
                ));
            }
        }
        new_image = Some(img);
    }
    let new_image = new_image.unwrap_or_else(|| unreachable!("at least one container"));
    let repo = repository(&want.reference).to_owned();
    let digest = new_image
        .repo_digests
        .iter()
        .find(|d| repository(d) == repo)
        .and_then(|d| d.split_once('@').map(|(_, x)| x.to_owned()));
    let old_digest = local_digest(&client0, &cur.image_id, &repo).await;
    let mut report = Report {
        service: service.to_owned(),
        outcome: "up_to_date",
        from_image: cur.image_id.clone(),
        to_image: new_image.id.clone(),
        reference: want.reference.clone(),
        digest: digest.clone(),
        containers: Vec::new(),
        message: String::new(),
    };
    let mut todo = Vec::new();
    for c in &containers {
        let (_, client) = actions::engine_of(state, c).map_err(|e| e.to_string())?;
        let f = images::container(&client, &c.id)
            .await
            .map_err(|e| format!("{service}: {e:#}"))?
            .ok_or_else(|| format!("{service}: container {} vanished", c.name))?;
        if f.image_id != new_image.id {
            todo.push((c.clone(), f));
        }
    }
    // A leftover `-prev` container stops the update before anything moves.
    for (c, f) in &todo {
        let (_, client) = actions::engine_of(state, c).map_err(|e| e.to_string())?;
        let prev = format!("{}{PREV_SUFFIX}", f.name);
        if images::container(&client, &prev)
            .await
            .map_err(|e| format!("{service}: {e:#}"))?
            .is_some()
        {
            return Err(format!(
                "{service}: a container named {prev} already exists (an earlier update did not \
                 finish); remove or rename it first; the service was not changed"
            ));
        }
    }
    if todo.is_empty() {
        report.message = format!(
            "{service}: already up to date ({} is {})",
            want.reference, new_image.id
        );
        out.line(&report.message);
        let _ = store::observe_current(
            &state.pool,
            t.id,
            &want.reference,
            digest.as_deref(),
            &new_image.id,
        )
        .await;
        return Ok(report);
    }
    store::observe_current(
        &state.pool,
        t.id,
        &cur.image_ref,
        old_digest.as_deref(),
        &cur.image_id,
    )
    .await
    .map_err(|e| format!("recording the version history: {e}"))?;
    store::version_begin(
        &state.pool,
        t.id,
        &want.reference,
        digest.as_deref(),
        &new_image.id,
        cx.run_id,
        &cx.actor.name,
    )
    .await
    .map_err(|e| format!("recording the version history: {e}"))?;

    let mut replaced: Vec<Replacing> = Vec::new();
    let mut failure: Option<String> = None;
    for (c, f) in &todo {
        report.containers.push(c.name.clone());
        match replace_one(
            cx,
            &t,
            c,
            f,
            &want.reference,
            &new_image.id,
            gate,
            &mut replaced,
        )
        .await
        {
            Ok(()) => out.line(format!("{}: passed the health gate", c.name)),
            Err(why) => {
                failure = Some(why);
                break;
            }
        }
    }
    match failure {
        None => {
            for r in &replaced {
                let prev = format!("{}{PREV_SUFFIX}", r.name);
                let _ = store::journal_phase(&state.pool, r.row, "removing_old").await;
                if let Err(e) = images::remove(&r.client, &r.old_id).await {
                    out.line(format!("{}: could not remove {prev}: {e:#}", r.name));
                } else {
                    out.line(format!("{}: removed the old container {prev}", r.name));
                }
                let _ = store::journal_finish(&state.pool, r.row, "done").await;
                let _ = r.conn.refresh_container(&r.client, &r.old_id).await;
            }
            store::version_end(&state.pool, t.id, Some(cx.run_id), "confirmed", true)
                .await
                .map_err(|e| format!("recording the version history: {e}"))?;
            report.outcome = "confirmed";
            report.message = format!(
                "{service}: now on {} ({}), confirmed by the health gate",
                want.reference,
                digest.as_deref().unwrap_or(&new_image.id)
            );
            out.line(&report.message);
            audit_update(cx, &t.name, &report, Outcome::Success).await;
            Ok(report)
        }
        Some(why) => {
            let back_to = old_digest.clone().unwrap_or_else(|| cur.image_id.clone());
            let mut problems = Vec::new();
            for r in replaced.iter().rev() {
                let _ = store::journal_phase(&state.pool, r.row, "rolling_back").await;
                out.line(format!("{}: rolling back to {}", r.name, cur.image_id));
                match recover::restore(&r.client, &r.name, &r.old_id).await {
                    Ok(()) => {
                        let _ = store::journal_finish(&state.pool, r.row, "rolled_back").await;
                        let healthy = gate::wait(
                            state,
                            &r.client,
                            &r.old_id,
                            t.id,
                            Instant::now() + gate,
                            |s| out.line(format!("{}: {s}", r.name)),
                        )
                        .await;
                        match healthy {
                            Ok(()) => out.line(format!("{}: the old version is healthy", r.name)),
                            Err(e) => problems
                                .push(format!("{} not healthy after the rollback: {e}", r.name)),
                        }
                    }
                    Err(e) => problems.push(format!("{}: rollback failed: {e:#}", r.name)),
                }
                let _ = r.conn.refresh_container(&r.client, &r.old_id).await;
            }
            store::version_end(&state.pool, t.id, Some(cx.run_id), "rolled_back", false)
                .await
                .map_err(|e| format!("recording the version history: {e}"))?;
            let label = want
                .reference
                .strip_prefix(&format!("{repo}:"))
                .unwrap_or(&want.reference)
                .to_owned();
            report.outcome = "rolled_back";
            report.message = format!(
                "{label} failed its health gate: {why}; rolled back to {back_to}{}",
                if problems.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", problems.join("; "))
                }
            );
            out.line(format!("{service}: {}", report.message));
            audit_update(cx, &t.name, &report, Outcome::Failure).await;
            match super::raise(state, cx.run_id, t.id, &t.name, t.tier, &report.message).await {
                Ok(line) => out.line(line),
                Err(e) => out.line(format!("opening the incident failed: {e:#}")),
            }
            if let Err(e) = crate::runbooks::notify::send(
                state,
                cx.run_id,
                "high",
                &format!("Image update of {service} rolled back: {}", report.message),
            )
            .await
            {
                out.line(format!("the notification failed: {e:#}"));
            }
            Ok(report)
        }
    }
}

/// The manifest digest a local image was pulled by, for `repo`.
async fn local_digest(client: &Client, image_id: &str, repo: &str) -> Option<String> {
    let img = images::image(client, image_id).await.ok()??;
    img.repo_digests
        .iter()
        .find(|d| repository(d) == repo)
        .and_then(|d| d.split_once('@').map(|(_, x)| x.to_owned()))
}

/// Replaces one container and gates it. Pushes it on `replaced` as soon as
/// its old container was touched, so the caller rolls it back on failure.
#[allow(clippy::too_many_arguments)]
async fn replace_one(
    cx: &StepCx<'_>,
    t: &actions::Target,
    c: &ContainerInfo,
    old: &images::ContainerFacts,
    reference: &str,
    new_image_id: &str,
    gate: Duration,
    replaced: &mut Vec<Replacing>,
) -> Result<(), String> {
    let state = cx.state;
    let out = cx.out;
    let pool = &state.pool;
    let (conn, client) = actions::engine_of(state, c).map_err(|e| e.to_string())?;
    let name = old.name.clone();
    let prev = format!("{name}{PREV_SUFFIX}");
    let db = |e: sqlx::Error| format!("writing the update journal: {e}");
    let row = store::journal_open(
        pool,
        &store::NewRow {
            run_id: cx.run_id,
            service_id: t.id,
            engine_id: c.engine_id,
            container_name: &name,
            old_container_id: &old.id,
            old_image_id: &old.image_id,
            new_image_id,
            phase: "stopping",
        },
    )
    .await
    .map_err(db)?;
    replaced.push(Replacing {
        row,
        conn: conn.clone(),
        client: client.clone(),
        name: name.clone(),
        old_id: old.id.clone(),
    });
    let e = |e: anyhow::Error| format!("{e:#}");
    out.line(format!("{name}: stopping (grace {} s)", old.stop_grace));
    images::stop(&client, &old.id, old.stop_grace)
        .await
        .map_err(e)?;
    store::journal_phase(pool, row, "renaming")
        .await
        .map_err(db)?;
    images::rename(&client, &old.id, &prev).await.map_err(e)?;
    store::journal_phase(pool, row, "creating")
        .await
        .map_err(db)?;
    out.line(format!(
        "{name}: creating from {reference} with the same configuration"
    ));
    let labels = [(
        "com.docker.compose.image".to_owned(),
        new_image_id.to_owned(),
    )];
    let new_id = images::recreate(&client, &old.id, &name, reference, &labels)
        .await
        .map_err(e)?;
    store::journal_new_container(pool, row, &new_id)
        .await
        .map_err(db)?;
    store::journal_phase(pool, row, "starting")
        .await
        .map_err(db)?;
    images::start(&client, &new_id).await.map_err(e)?;
    let _ = conn.refresh_container(&client, &new_id).await;
    store::journal_phase(pool, row, "gating")
        .await
        .map_err(db)?;
    out.line(format!("{name}: health gate (up to {} s)", gate.as_secs()));
    let started = Instant::now();
    gate::wait(state, &client, &new_id, t.id, started + gate, |s| {
        out.line(format!("[{:>4}s] {name}: {s}", started.elapsed().as_secs()))
    })
    .await
}

async fn audit_update(cx: &StepCx<'_>, service: &str, r: &Report, outcome: Outcome) {
    let go = async {
        let mut tx = cx.state.pool.begin().await?;
        audit::record(
            &mut tx,
            NewEntry {
                actor: cx.actor.clone(),
                action: "image.update".into(),
                target: Some(format!("service:{service}")),
                params: json!({"run_id": cx.run_id, "report": r.json()}),
                source: None,
                outcome,
                detail: (outcome == Outcome::Failure).then(|| r.message.clone()),
            },
        )
        .await?;
        tx.commit().await
    };
    if let Err(e) = go.await {
        tracing::warn!(error = %e, "auditing an image update failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_keep_registry_ports() {
        assert_eq!(repository("127.0.0.1:5000/app:v1"), "127.0.0.1:5000/app");
        assert_eq!(repository("127.0.0.1:5000/app"), "127.0.0.1:5000/app");
        assert_eq!(repository("redis:7.2@sha256:ab"), "redis");
        assert_eq!(repository("a/b/c@sha256:ab"), "a/b/c");
    }

    #[test]
    fn to_names_a_tag_a_digest_or_a_local_image() {
        let cur = "127.0.0.1:5000/app:v1";
        assert_eq!(
            want(cur, "", None).pull.as_deref(),
            Some("127.0.0.1:5000/app:v1")
        );
        assert_eq!(want(cur, "v2", None).reference, "127.0.0.1:5000/app:v2");
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(
            want(cur, &d, None).pull,
            Some(format!("127.0.0.1:5000/app@{d}"))
        );
        let local = images::ImageFacts {
            id: d.clone(),
            repo_tags: vec!["other:x".into(), "127.0.0.1:5000/app:v0".into()],
            repo_digests: vec![],
        };
        let w = want(cur, &d, Some(&local));
        assert_eq!(w.pull, None);
        assert_eq!(w.reference, "127.0.0.1:5000/app:v0");
        assert_eq!(want("busybox", "", None).reference, "busybox:latest");
    }

    #[test]
    fn bad_to_values_are_refused() {
        assert!(check_to("v2").is_ok());
        assert!(check_to("").is_ok());
        assert!(check_to(&format!("sha256:{}", "0".repeat(64))).is_ok());
        assert!(check_to("sha256:zz").is_err());
        assert!(check_to("v2; rm -rf /").is_err());
        assert!(check_to("../x").is_err());
    }
}
