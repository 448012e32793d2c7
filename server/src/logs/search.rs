//! One search: which containers (a [`Plan`]), and the stream of its answer
//! ([`run`]).
//!
//! Every container is read by its own reader (in parallel, never more
//! than its bounded channel ahead of the reader of the answer), which
//! keeps hits and their context and sends them to the
//! [merge](super::merge). A container of a local engine logging to
//! `json-file` is read from its log files on a thread of its own
//! ([`logfile`]: the engine's own decoding is the cost of a search through
//! the API); any other through its engine's logs API with the time range.
//! Nothing is collected: memory is bounded by the number of containers,
//! whatever the size of the logs. Dropping the stream (the client went
//! away, cancel) aborts every API reader and closes every channel, which
//! ends the file readers at their next line.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use futures::{Stream, StreamExt};
use opsdeck_wire::{
    ContainerInfo, LogCount, LogEvent, LogHit, LogSearch, LogSearchEnd, LogSourceError,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::matcher::{guess_level, parse_time, Matcher};
use super::merge::{Item, Merge, Merged};
use super::LogError;
use crate::docker::logfile::{self, LocalLog};
use crate::docker::ops::{self, LogQuery};
use crate::inventory::{overview, Snapshot};
use crate::state::AppState;

/// Default and largest number of hits.
pub const DEFAULT_LIMIT: u32 = 1000;
pub const MAX_LIMIT: u32 = 10_000;
/// Largest number of context lines around a hit.
pub const MAX_CONTEXT: u32 = 20;
/// Most containers one search reads.
pub const MAX_CONTAINERS: usize = 500;
/// Default time range when `since` is not given.
pub const DEFAULT_RANGE: &str = "1h";
/// A reader tells the merge how far it has read after this many lines.
const PROGRESS_EVERY: u32 = 512;
/// Items a reader may be ahead of the answer.
const CHANNEL: usize = 64;
/// Stack of a thread reading a local log file (parsing and matching need
/// little; a search may start hundreds).
const READER_STACK: usize = 512 * 1024;

/// One container to read, with its service.
#[derive(Debug, Clone)]
pub struct Source {
    pub service_id: i64,
    pub service: String,
    pub container: ContainerInfo,
}

/// A validated search, with the containers it reads.
#[derive(Debug)]
pub struct Plan {
    pub sources: Vec<Source>,
    /// Services chosen that have no container on a reachable engine.
    pub missing: Vec<LogSourceError>,
    /// Every service chosen, in the order of the answer's counts.
    pub services: Vec<(i64, String)>,
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub matcher: Matcher,
    pub context: usize,
    pub limit: u64,
}

/// Checks a search and finds its containers (every service when neither
/// services nor stacks are named).
pub async fn plan(state: &AppState, q: &LogSearch) -> Result<Plan, LogError> {
    let now = Utc::now();
    let since = parse_time("since", q.since.as_deref().unwrap_or(DEFAULT_RANGE), now)
        .map_err(LogError::Invalid)?;
    let until = match q.until.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(u) => parse_time("until", u, now).map_err(LogError::Invalid)?,
        None => now,
    };
    if since >= until {
        return Err(LogError::Invalid("since: must be before until".into()));
    }
    if q.context > MAX_CONTEXT {
        return Err(LogError::Invalid(format!(
            "context: at most {MAX_CONTEXT} lines"
        )));
    }
    let limit = q.limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(LogError::Invalid(format!("limit: 1 to {MAX_LIMIT}")));
    }
    let matcher = Matcher::new(&q.query, q.regex, q.level).map_err(LogError::Invalid)?;

    let mut conn = state.pool.acquire().await?;
    let snapshot = Snapshot::load(&mut conn).await?;
    drop(conn);
    let all = overview(&snapshot, &state.engines);
    let wanted_ids: HashSet<i64> = q.services.iter().copied().collect();
    for id in &wanted_ids {
        if !all.iter().any(|o| o.service.id == *id) {
            return Err(LogError::NotFound(format!("service {id}")));
        }
    }
    for p in &q.projects {
        if !all
            .iter()
            .any(|o| o.service.compose_project.as_deref() == Some(p.as_str()))
        {
            return Err(LogError::NotFound(format!("stack \"{p}\"")));
        }
    }
    let everything = wanted_ids.is_empty() && q.projects.is_empty();
    let mut plan = Plan {
        sources: Vec::new(),
        missing: Vec::new(),
        services: Vec::new(),
        since,
        until,
        matcher,
        context: q.context as usize,
        limit: u64::from(limit),
    };
    let mut seen = HashSet::new();
    for o in all {
        let chosen = everything
            || wanted_ids.contains(&o.service.id)
            || o.service
                .compose_project
                .as_ref()
                .is_some_and(|p| q.projects.contains(p));
        if !chosen {
            continue;
        }
        plan.services.push((o.service.id, o.service.name.clone()));
        if o.containers.is_empty() {
            plan.missing.push(LogSourceError {
                service: o.service.name.clone(),
                container: String::new(),
                message: "maps to no container on a reachable engine".into(),
            });
        }
        for c in o.containers {
            // A container shared by two services is read once.
            if seen.insert((c.engine_id, c.id.clone())) {
                plan.sources.push(Source {
                    service_id: o.service.id,
                    service: o.service.name.clone(),
                    container: c,
                });
            }
        }
    }
    if plan.sources.len() > MAX_CONTAINERS {
        return Err(LogError::Invalid(format!(
            "services: {} containers; a search reads at most {MAX_CONTAINERS}: choose fewer services",
            plan.sources.len()
        )));
    }
    Ok(plan)
}

/// Aborts the readers when the answer is dropped.
struct Readers(Vec<JoinHandle<()>>);

impl Drop for Readers {
    fn drop(&mut self) {
        for h in &self.0 {
            h.abort();
        }
    }
}

struct Run {
    merge: Merge,
    _readers: Readers,
    scanned: Vec<(i64, Arc<AtomicU64>)>,
    hits: BTreeMap<i64, u64>,
    total_hits: u64,
    errors: Vec<LogSourceError>,
    plan_end: Option<PlanEnd>,
    done: bool,
}

struct PlanEnd {
    services: Vec<(i64, String)>,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    containers: u32,
    limit: u64,
}

/// The answer: lines (hits and context) in timestamp order over every
/// container, errors as they happen, and always an `end` last. After
/// `limit` hits, context lines still come until the next hit, which is not
/// sent: the end says `truncated`.
pub fn run(state: &AppState, plan: Plan) -> impl Stream<Item = LogEvent> + Send + 'static {
    let matcher = Arc::new(plan.matcher);
    let mut receivers = Vec::new();
    let mut handles = Vec::new();
    let mut scanned = Vec::new();
    let mut errors = Vec::new();
    let mut first = VecDeque::new();
    for e in plan.missing {
        first.push_back(LogEvent::Error(e.clone()));
        errors.push(e);
    }
    for src in &plan.sources {
        let counter = Arc::new(AtomicU64::new(0));
        scanned.push((src.service_id, counter.clone()));
        let (tx, rx) = mpsc::channel(CHANNEL);
        receivers.push(rx);
        let scan = Scan {
            src: src.clone(),
            since: plan.since,
            until: plan.until,
            matcher: matcher.clone(),
            context: plan.context,
            before: VecDeque::with_capacity(plan.context),
            spare: Vec::new(),
            after: 0,
            since_progress: 0,
            scanned: 0,
            counter,
        };
        let engine = state
            .engines
            .get(src.container.engine_id)
            .ok_or_else(|| format!("engine \"{}\" is not registered", src.container.engine))
            .and_then(|conn| Ok((conn.client().map_err(|e| e.to_string())?, conn)));
        let metrics = state.metrics.clone();
        handles.push(tokio::spawn(async move {
            let (client, conn) = match engine {
                Ok(e) => e,
                Err(message) => {
                    let _ = tx.send(Item::Error(scan.error(message))).await;
                    return;
                }
            };
            let Some(log) = logfile::find(&conn, &client, &scan.src.container.id).await else {
                metrics.log_source_read("api");
                return scan.read_api(&client, tx).await;
            };
            metrics.log_source_read("file");
            let failed = (tx.clone(), scan.error(String::new()));
            let thread = std::thread::Builder::new()
                .name("log-read".into())
                .stack_size(READER_STACK)
                .spawn(move || scan.read_file(log, tx));
            if let Err(e) = thread {
                let (tx, error) = failed;
                let message = format!("could not start a reader: {e}");
                let _ = tx
                    .send(Item::Error(LogSourceError { message, ..error }))
                    .await;
            }
        }));
    }
    let run = Run {
        merge: Merge::new(receivers),
        _readers: Readers(handles),
        scanned,
        hits: BTreeMap::new(),
        total_hits: 0,
        errors,
        plan_end: Some(PlanEnd {
            services: plan.services,
            since: plan.since,
            until: plan.until,
            containers: plan.sources.len() as u32,
            limit: plan.limit,
        }),
        done: false,
    };
    futures::stream::iter(first).chain(futures::stream::unfold(run, |mut run| async move {
        if run.done {
            return None;
        }
        let limit = run.plan_end.as_ref().map_or(0, |p| p.limit);
        let truncated = match run.merge.next().await {
            Some(Merged::Line(h)) if h.hit && run.total_hits >= limit => true,
            Some(Merged::Line(h)) => {
                if h.hit {
                    run.total_hits += 1;
                    *run.hits.entry(h.service_id).or_default() += 1;
                }
                return Some((LogEvent::Line(h), run));
            }
            Some(Merged::Error(e)) => {
                run.errors.push(e.clone());
                return Some((LogEvent::Error(e), run));
            }
            None => false,
        };
        run.done = true;
        let end = run.end(truncated);
        Some((LogEvent::End(end), run))
    }))
}

impl Run {
    fn end(&mut self, truncated: bool) -> LogSearchEnd {
        let p = self.plan_end.take().expect("the end is made once");
        let mut scanned: BTreeMap<i64, u64> = BTreeMap::new();
        for (id, n) in &self.scanned {
            *scanned.entry(*id).or_default() += n.load(Ordering::Relaxed);
        }
        LogSearchEnd {
            counts: p
                .services
                .into_iter()
                .map(|(id, service)| LogCount {
                    service_id: id,
                    service,
                    hits: self.hits.get(&id).copied().unwrap_or(0),
                    scanned: scanned.get(&id).copied().unwrap_or(0),
                })
                .collect(),
            truncated,
            errors: std::mem::take(&mut self.errors),
            since: p.since,
            until: p.until,
            containers: p.containers,
        }
    }
}

/// What one container's reader decides line by line, the same for both
/// sources (the engine's API, the local log file): the range cut, the
/// matcher, context before and after a hit, progress marks.
struct Scan {
    src: Source,
    since: DateTime<Utc>,
    until: DateTime<Utc>,
    matcher: Arc<Matcher>,
    context: usize,
    /// Up to `context` lines before the next hit; `spare` keeps the
    /// strings of lines that left it, so a line is copied, not allocated.
    before: VecDeque<(DateTime<Utc>, String)>,
    spare: Vec<String>,
    after: usize,
    since_progress: u32,
    scanned: u64,
    counter: Arc<AtomicU64>,
}

impl Scan {
    fn error(&self, message: String) -> LogSourceError {
        LogSourceError {
            service: self.src.service.clone(),
            container: self.src.container.name.clone(),
            message,
        }
    }

    fn item(&self, ts: DateTime<Utc>, text: String, hit: bool) -> Item {
        Item::Line(LogHit {
            ts,
            service_id: self.src.service_id,
            service: self.src.service.clone(),
            container: self.src.container.name.clone(),
            level: guess_level(&text),
            line: text,
            hit,
        })
    }

    /// Takes one line; pushes what is to be sent (context before a hit,
    /// the hit, context after it, or a progress mark) to `out`.
    fn line(&mut self, ts: DateTime<Utc>, text: &str, out: &mut Vec<Item>) {
        if ts < self.since || ts >= self.until {
            return;
        }
        self.scanned += 1;
        self.since_progress += 1;
        if self.matcher.is_hit(text) {
            while let Some((t, b)) = self.before.pop_front() {
                out.push(self.item(t, b, false));
            }
            self.after = self.context;
            out.push(self.item(ts, text.to_owned(), true));
        } else if self.after > 0 {
            self.after -= 1;
            out.push(self.item(ts, text.to_owned(), false));
        } else if self.context > 0 {
            let mut kept = if self.before.len() == self.context {
                self.before.pop_front().map(|(_, s)| s)
            } else {
                self.spare.pop()
            }
            .unwrap_or_default();
            kept.clear();
            kept.push_str(text);
            self.before.push_back((ts, kept));
        }
        if !out.is_empty() {
            self.since_progress = 0;
        } else if self.since_progress >= PROGRESS_EVERY {
            self.since_progress = 0;
            self.counter.store(self.scanned, Ordering::Relaxed);
            out.push(Item::Progress(ts));
        }
    }

    fn finish(&self) {
        self.counter.store(self.scanned, Ordering::Relaxed);
    }

    /// Reads through the engine's logs API; returns when the log is read,
    /// on an error, or when the answer is gone.
    async fn read_api(mut self, client: &crate::docker::Client, tx: mpsc::Sender<Item>) {
        // The engine counts whole seconds: ask a little wider, then cut
        // exactly by the lines' own timestamps.
        let query = LogQuery {
            tail: None,
            timestamps: true,
            follow: false,
            since: Some(self.since.timestamp()),
            until: Some((self.until + Duration::seconds(1)).timestamp()),
        };
        let mut lines = std::pin::pin!(ops::log_lines(client, &self.src.container.id, &query));
        let mut out = Vec::new();
        while let Some(line) = lines.next().await {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    self.finish();
                    let message = format!(
                        "the log broke off on engine \"{}\": {e:#}",
                        self.src.container.engine
                    );
                    let _ = tx.send(Item::Error(self.error(message))).await;
                    return;
                }
            };
            let Some((ts, text)) = ops::split_timestamp_ref(&line) else {
                continue;
            };
            self.line(ts, text, &mut out);
            for item in out.drain(..) {
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        }
        self.finish();
    }

    /// Reads the engine's log files on a thread of its own (blocking
    /// reads); ends like [`Scan::read_api`], and when the answer is gone.
    fn read_file(mut self, log: LocalLog, tx: mpsc::Sender<Item>) {
        let mut out = Vec::new();
        let (since, until) = (self.since, self.until);
        let read = log.read(since, until, |ts, text| {
            self.line(ts, text, &mut out);
            out.drain(..).all(|item| tx.blocking_send(item).is_ok()) && !tx.is_closed()
        });
        self.finish();
        if let Err(e) = read {
            let message = format!("reading the log file: {e}");
            let _ = tx.blocking_send(Item::Error(self.error(message)));
        }
    }
}
