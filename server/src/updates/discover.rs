//! Update discovery: for every service with containers, what its image's
//! registry says now, written to `image_status`.
//!
//! One pass ([`discover`]):
//! 1. Services with containers (the hub's container cache, through
//!    `inventory::ContainerIndex`) and a policy other than `none` (those
//!    are never offered: their old status is removed). A service's image is
//!    its first running container's (by name).
//! 2. The image each such container runs, from the engine (image inspect:
//!    `RepoDigests`, created), at most [`CONCURRENCY`] at once.
//! 3. **One registry request per distinct image reference**: the services
//!    are grouped by their normalised `registry/repository:tag`, and each
//!    group asks the engine of its first service for the registry's digest
//!    (`docker::distribution`; the engine's own registry settings apply).
//!    Tag lists (`registry`) are read once per repository, only for
//!    semver-like tags whose policy allows a move; the registry's image
//!    creation time once per new digest. At most [`CONCURRENCY`] registry
//!    requests at once, each with its own timeout.
//! 4. Errors stay per service (`error`): an unreachable or rate-limited
//!    registry never fails the pass, and the routes read the table, never
//!    the registries, so a slow registry never slows the panel.
//!
//! **Built locally.** An image without `RepoDigests` (never pulled or
//! pushed) whose reference the registry does not know (not found, or
//! access denied, which is Docker Hub's answer for a repository that does
//! not exist) is `local_only`, without an error. A reference that is an
//! image id or unreadable is local too.
//!
//! **Running digest unknown** (an image built here under a name the
//! registry also has): `update_available` stays false; the latest digest is
//! still shown.
//!
//! **Notify.** A service with policy `notify` whose latest digest differs
//! from its running one and from `notified_digest` gets one message on the
//! webhook, Slack and Teams channels whose rules take P4
//! (`notify::enqueue_notice`), and `notified_digest` is set in the same
//! transaction by a conditional update, so two processes running discovery
//! at once send it once.
//!
//! **Schedule** ([`task`]): every engine is checked once per
//! `update_check_interval` (default a day, `OPSDECK_UPDATE_CHECK_INTERVAL`),
//! at an offset inside the interval derived from a hash of the engine's id,
//! so engines are spread over the day rather than all asking at midnight.
//! An engine is due when the newest slot time (`k·interval + offset`) is
//! later than its services' oldest `checked_at`, or when one of them was
//! never checked. The task ticks every minute in one process.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::{stream, StreamExt};
use opsdeck_wire::{ImageStatus, SemverMoves, Severity, UpdatePolicy};

use super::reference::ImageRef;
use super::registry::Registries;
use super::status;
use super::tags;
use crate::docker::distribution::{self, ContainerImage, DistributionError};
use crate::inventory::{ContainerIndex, Snapshot};
use crate::jobs::{Pace, Scope, Task};
use crate::state::AppState;

/// Engine and registry requests in flight at once.
pub const CONCURRENCY: usize = 8;
/// How often the schedule looks for due engines.
const TICK: Duration = Duration::from_secs(60);

/// What can go wrong in a discovery pass as a whole (per-service problems
/// are stored, not returned).
#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// One service to check.
#[derive(Debug, Clone)]
struct Target {
    service_id: i64,
    service: String,
    engine_id: i64,
    container_id: String,
    image_ref: String,
    policy: UpdatePolicy,
    moves: SemverMoves,
}

/// What the registry said about one reference.
#[derive(Debug, Clone)]
struct Answer {
    digest: Result<String, DistributionError>,
}

/// The services discovery looks at now, and those it skips (policy none).
async fn targets(
    state: &AppState,
    only: Option<&[i64]>,
) -> Result<(Vec<Target>, Vec<i64>), DiscoverError> {
    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    let policies = status::all_policies(&mut conn).await?;
    drop(conn);
    let idx = ContainerIndex::build(&state.engines);
    let mut out = Vec::new();
    let mut skipped = Vec::new();
    for row in &snapshot.services {
        if only.is_some_and(|ids| !ids.contains(&row.id)) {
            continue;
        }
        let (policy, moves) = policies
            .get(&row.id)
            .copied()
            .unwrap_or((UpdatePolicy::Notify, SemverMoves::Patch));
        if policy == UpdatePolicy::None {
            skipped.push(row.id);
            continue;
        }
        let containers = idx.containers_of(&row.fields);
        let Some(c) = containers
            .iter()
            .find(|c| c.state == "running")
            .or(containers.first())
        else {
            continue;
        };
        out.push(Target {
            service_id: row.id,
            service: row.name.clone(),
            engine_id: c.engine_id,
            container_id: c.id.clone(),
            image_ref: c.image.clone(),
            policy,
            moves,
        });
    }
    Ok((out, skipped))
}

/// Runs one discovery pass over every service (or those in `only`), writes
/// `image_status`, sends the notifications due, and returns the statuses
/// of the services checked.
pub async fn discover(
    state: &AppState,
    only: Option<&[i64]>,
) -> Result<Vec<ImageStatus>, DiscoverError> {
    let (targets, skipped) = targets(state, only).await?;
    let hub = state.engines.clone();

    // The running images, from the engines.
    let wanted: Vec<(i64, String)> = targets
        .iter()
        .map(|t| (t.engine_id, t.container_id.clone()))
        .collect();
    let images: Vec<Result<ContainerImage, String>> = stream::iter(wanted)
        .map(|(engine_id, container_id)| {
            let hub = hub.clone();
            async move {
                let conn = hub
                    .get(engine_id)
                    .ok_or_else(|| "the engine is no longer registered".to_owned())?;
                let client = conn.client().map_err(|e| e.to_string())?;
                distribution::container_image(&client, &container_id)
                    .await
                    .map_err(|e| format!("{e:#}"))
            }
        })
        .buffered(CONCURRENCY)
        .collect()
        .await;

    // One registry request per distinct reference.
    let refs: Vec<Option<ImageRef>> = targets
        .iter()
        .map(|t| {
            if t.image_ref.starts_with("sha256:") {
                None
            } else {
                ImageRef::parse(&t.image_ref)
            }
        })
        .collect();
    let mut asked: HashMap<String, i64> = HashMap::new();
    for (t, r) in targets.iter().zip(&refs) {
        if let Some(key) = r.as_ref().and_then(ImageRef::tagged) {
            asked.entry(key).or_insert(t.engine_id);
        }
    }
    let answers: HashMap<String, Answer> = stream::iter(asked)
        .map(|(key, engine_id)| {
            let hub = hub.clone();
            async move {
                let digest = match hub.get(engine_id).map(|c| c.client()) {
                    Some(Ok(client)) => distribution::registry_digest(&client, &key).await,
                    Some(Err(e)) => Err(DistributionError::Other(e.to_string())),
                    None => Err(DistributionError::Other(
                        "the engine is no longer registered".into(),
                    )),
                };
                (key, Answer { digest })
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    // Tag lists, once per repository that needs one.
    let registries = Registries::default();
    let mut repos: HashMap<String, ImageRef> = HashMap::new();
    for (t, r) in targets.iter().zip(&refs) {
        if let Some(r) = r {
            let semver = r.tag.as_deref().and_then(tags::parse).is_some();
            if semver && t.moves != SemverMoves::None {
                repos.entry(r.name()).or_insert_with(|| r.clone());
            }
        }
    }
    let tag_lists: HashMap<String, Result<Vec<String>, String>> = stream::iter(repos)
        .map(|(name, r)| {
            let registries = registries.clone();
            async move { (name, registries.tags(&r).await.map_err(|e| e.to_string())) }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    // Statuses.
    let now = Utc::now();
    let mut out: Vec<ImageStatus> = Vec::with_capacity(targets.len());
    for ((t, r), image) in targets.iter().zip(&refs).zip(&images) {
        out.push(status_of(t, r.as_ref(), image, &answers, &tag_lists, now));
    }

    // Creation time of new digests, once per (repository, digest).
    let mut created_wanted: HashMap<(String, String), ImageRef> = HashMap::new();
    for (s, r) in out.iter().zip(&refs) {
        if let (true, Some(d), Some(r)) = (s.update_available, &s.latest_digest, r) {
            created_wanted
                .entry((r.name(), d.clone()))
                .or_insert_with(|| r.clone());
        }
    }
    let created: HashMap<(String, String), DateTime<Utc>> = stream::iter(created_wanted)
        .map(|(key, r)| {
            let registries = registries.clone();
            async move {
                // Best effort: the age is shown where the registry says.
                let at = registries.created(&r, &key.1).await.ok().flatten();
                (key, at)
            }
        })
        .buffer_unordered(CONCURRENCY)
        .filter_map(|(k, at)| async move { at.map(|a| (k, a)) })
        .collect()
        .await;
    for (s, r) in out.iter_mut().zip(&refs) {
        if let (true, Some(d), Some(r)) = (s.update_available, &s.latest_digest, r) {
            s.latest_created = created.get(&(r.name(), d.clone())).copied();
        }
    }

    // Write, and notify once per new digest.
    let mut tx = state.pool.begin().await?;
    if !skipped.is_empty() {
        status::remove(&mut tx, &skipped).await?;
    }
    let mut queued = false;
    for (s, t) in out.iter().zip(&targets) {
        status::upsert(&mut tx, s).await?;
        if t.policy == UpdatePolicy::Notify && s.update_available {
            if let Some(latest) = &s.latest_digest {
                if status::claim_notification(&mut tx, s.service_id, latest).await? {
                    let (subject, body) = message(s);
                    let sent =
                        crate::notify::enqueue_notice(&mut tx, None, Severity::P4, &subject, &body)
                            .await?;
                    queued |= !sent.is_empty();
                }
            }
        }
    }
    tx.commit().await?;
    if queued {
        crate::notify::wake();
    }
    out.sort_by(|a, b| a.service.cmp(&b.service));
    Ok(out)
}

/// `sha256:0123456789ab` (12 hex digits).
pub fn short(digest: &str) -> String {
    let (algo, hex) = digest.split_once(':').unwrap_or(("", digest));
    let hex: String = hex.chars().take(12).collect();
    if algo.is_empty() {
        hex
    } else {
        format!("{algo}:{hex}")
    }
}

fn message(s: &ImageStatus) -> (String, String) {
    let subject = format!("Image update available: {} ({})", s.service, s.image_ref);
    let mut body = format!(
        "The registry has a new image for {} (service {}).\nRunning: {}\nLatest:  {}",
        s.image_ref,
        s.service,
        s.running_digest.as_deref().map(short).unwrap_or_default(),
        s.latest_digest.as_deref().map(short).unwrap_or_default(),
    );
    if let Some(at) = s.latest_created {
        body.push_str(&format!("\nCreated: {}", at.format("%Y-%m-%d %H:%M UTC")));
    }
    if !s.newer_tags.is_empty() {
        body.push_str(&format!("\nNewer tags: {}", s.newer_tags.join(", ")));
    }
    (subject, body)
}

fn status_of(
    t: &Target,
    r: Option<&ImageRef>,
    image: &Result<ContainerImage, String>,
    answers: &HashMap<String, Answer>,
    tag_lists: &HashMap<String, Result<Vec<String>, String>>,
    now: DateTime<Utc>,
) -> ImageStatus {
    let mut s = ImageStatus {
        service_id: t.service_id,
        service: t.service.clone(),
        image_ref: t.image_ref.clone(),
        running_digest: None,
        latest_digest: None,
        latest_created: None,
        update_available: false,
        newer_tags: Vec::new(),
        local_only: false,
        error: None,
        checked_at: now,
    };
    let image = match image {
        Ok(i) => i,
        Err(e) => {
            s.error = Some(format!("reading the running image: {e}"));
            return s;
        }
    };
    let Some(r) = r else {
        // An image id or an unreadable name: nothing to ask a registry.
        s.local_only = true;
        return s;
    };
    s.running_digest = image.repo_digests.iter().find_map(|d| r.digest_in(d));
    let mut errors: Vec<String> = Vec::new();
    if let Some(key) = r.tagged() {
        match answers.get(&key).map(|a| &a.digest) {
            Some(Ok(d)) => s.latest_digest = Some(d.clone()),
            Some(Err(DistributionError::NotFound(_) | DistributionError::Unauthorized(_)))
                if image.repo_digests.is_empty() =>
            {
                s.local_only = true;
            }
            Some(Err(e)) => errors.push(e.to_string()),
            None => {}
        }
    }
    s.update_available =
        status::update_available(s.running_digest.as_deref(), s.latest_digest.as_deref());
    if !s.update_available && s.latest_digest.is_some() && s.latest_digest == s.running_digest {
        s.latest_created = image.created;
    }
    if let (Some(tag), false) = (r.tag.as_deref(), s.local_only) {
        match tag_lists.get(&r.name()) {
            Some(Ok(all)) => s.newer_tags = tags::newer_tags(tag, all, t.moves),
            Some(Err(e)) if s.latest_digest.is_some() => errors.push(format!("listing tags: {e}")),
            // The digest's error already says the registry failed.
            _ => {}
        }
    }
    if !errors.is_empty() {
        s.error = Some(errors.join("; "));
    }
    s
}

/// The offset of engine `id`'s checks inside the interval (a hash of its
/// id, so it stays put across restarts).
pub fn offset_of(engine_id: i64, interval: Duration) -> Duration {
    // Stable across builds: FNV-1a over the id's bytes.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in engine_id.to_le_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    }
    let secs = interval.as_secs().max(1);
    Duration::from_secs(h % secs)
}

/// The newest slot time (`k·interval + offset`) not after `now`.
pub fn last_slot(now: DateTime<Utc>, interval: Duration, offset: Duration) -> DateTime<Utc> {
    let i = interval.as_secs().max(1) as i64;
    let o = offset.as_secs() as i64;
    let t = now.timestamp();
    let k = (t - o).div_euclid(i);
    DateTime::from_timestamp(k * i + o, 0).unwrap_or(now)
}

/// Whether an engine is due: some service never checked, or the oldest
/// check is before the newest slot.
pub fn engine_due(
    checked: &[Option<DateTime<Utc>>],
    now: DateTime<Utc>,
    interval: Duration,
    offset: Duration,
) -> bool {
    if checked.is_empty() {
        return false;
    }
    if checked.iter().any(Option::is_none) {
        return true;
    }
    let oldest = checked.iter().flatten().min().copied();
    oldest.is_some_and(|o| o < last_slot(now, interval, offset))
}

/// One scheduled tick: checks the services of every due engine.
async fn tick(state: &AppState, interval: Duration) -> anyhow::Result<()> {
    let (targets, _) = targets(state, None).await?;
    if targets.is_empty() {
        return Ok(());
    }
    let mut conn = state.pool.acquire().await?;
    let checked = status::checked_at(&mut conn).await?;
    drop(conn);
    let now = Utc::now();
    let mut by_engine: HashMap<i64, Vec<&Target>> = HashMap::new();
    for t in &targets {
        by_engine.entry(t.engine_id).or_default().push(t);
    }
    let mut due: HashSet<i64> = HashSet::new();
    for (engine, ts) in &by_engine {
        let seen: Vec<Option<DateTime<Utc>>> = ts
            .iter()
            .map(|t| checked.get(&t.service_id).copied())
            .collect();
        if engine_due(&seen, now, interval, offset_of(*engine, interval)) {
            due.extend(ts.iter().map(|t| t.service_id));
        }
    }
    if due.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = due.into_iter().collect();
    let statuses = discover(state, Some(&ids)).await?;
    let failed = statuses.iter().filter(|s| s.error.is_some()).count();
    tracing::info!(
        services = statuses.len(),
        failed,
        "update discovery: checked the due engines"
    );
    Ok(())
}

/// The schedule (see the module doc); `None` when the interval is off.
pub fn task(state: AppState) -> Option<Task> {
    let interval = state.settings.update_check_interval?;
    Some(
        Task::every(
            "updates.discover",
            TICK.min(interval),
            Scope::OneProcess,
            state,
            move |state| async move {
                tick(&state, interval).await?;
                Ok(Pace::Normal)
            },
        )
        .delay_first(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn engines_are_spread_over_the_interval() {
        let day = Duration::from_secs(86_400);
        let offsets: HashSet<u64> = (1..=20).map(|id| offset_of(id, day).as_secs()).collect();
        assert!(offsets.len() >= 18, "offsets collide: {offsets:?}");
        assert!(offsets.iter().all(|o| *o < 86_400));
        assert_eq!(offset_of(7, day), offset_of(7, day));
    }

    #[test]
    fn an_engine_is_due_once_per_slot() {
        let day = Duration::from_secs(86_400);
        let off = Duration::from_secs(3 * 3600); // 03:00 UTC
        let now = at("2026-12-07T10:00:00Z");
        assert_eq!(last_slot(now, day, off), at("2026-12-07T03:00:00Z"));
        let before = at("2026-12-07T02:00:00Z");
        let after = at("2026-12-07T04:00:00Z");
        assert!(engine_due(&[Some(before)], now, day, off));
        assert!(!engine_due(&[Some(after)], now, day, off));
        assert!(engine_due(&[Some(after), None], now, day, off));
        assert!(engine_due(&[Some(after), Some(before)], now, day, off));
        assert!(!engine_due(&[], now, day, off));
    }

    #[test]
    fn digests_are_shortened() {
        assert_eq!(short("sha256:0123456789abcdef0123"), "sha256:0123456789ab");
        assert_eq!(short("abc"), "abc");
    }
}
