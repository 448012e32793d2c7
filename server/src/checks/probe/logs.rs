//! The log-pattern probe: matching lines of a service's containers counted
//! over a window ("≥ 5 ERROR lines in 5 min").
//!
//! Unlike the other probes it needs memory, so the health engine keeps one
//! [`LogWatch`] per check (in the probing process only). A watch follows
//! each container's log live through its engine (`follow`, timestamps),
//! from the moment it starts: old lines are never re-read each round. When
//! a follow ends (the container stopped or restarted, the engine went
//! away) it is opened again after a backoff (1 s doubling to 30 s) from the
//! last line seen, skipping what was already counted, so a restart or an
//! engine reconnect loses nothing and counts nothing twice. Each round the
//! probe only counts the remembered match times inside the window.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt;
use opsdeck_wire::{CheckStatus, LogPatternCheck};
use tokio::task::JoinHandle;

use super::{grade_above, Probe};
use crate::docker::ops::{self, LogQuery};
use crate::docker::Client;
use crate::logs::matcher::Matcher;

/// Most match times remembered per check (the count saturates there).
const MAX_REMEMBERED: usize = 100_000;
/// Matching lines shown with the check's result (and on its incident).
const SHOWN_LINES: usize = 3;
/// Longest part of a line shown.
const SHOWN_CHARS: usize = 200;
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// A matching line.
#[derive(Debug, Clone)]
struct Seen {
    ts: DateTime<Utc>,
    container: String,
    line: String,
}

#[derive(Debug, Default)]
struct Matches {
    times: VecDeque<DateTime<Utc>>,
    last: VecDeque<Seen>,
    /// Container name → why its log cannot be followed now.
    errors: HashMap<String, String>,
}

impl Matches {
    fn add(&mut self, seen: Seen) {
        if self.times.len() == MAX_REMEMBERED {
            self.times.pop_front();
        }
        // Lines of several containers arrive interleaved: keep times sorted.
        let at = self.times.partition_point(|t| *t <= seen.ts);
        self.times.insert(at, seen.ts);
        if self.last.len() == SHOWN_LINES {
            self.last.pop_front();
        }
        self.last.push_back(seen);
    }

    fn forget_before(&mut self, t: DateTime<Utc>) {
        while self.times.front().is_some_and(|x| *x <= t) {
            self.times.pop_front();
        }
    }
}

/// A container to follow: its engine's client, id and name.
pub struct Target {
    pub engine_id: i64,
    pub id: String,
    pub name: String,
    pub client: Client,
}

/// One log-pattern check's followers and what they saw.
pub struct LogWatch {
    spec: LogPatternCheck,
    matcher: Arc<Matcher>,
    seen: Arc<Mutex<Matches>>,
    followers: HashMap<(i64, String), JoinHandle<()>>,
}

impl Drop for LogWatch {
    fn drop(&mut self) {
        for h in self.followers.values() {
            h.abort();
        }
    }
}

fn lock(m: &Mutex<Matches>) -> std::sync::MutexGuard<'_, Matches> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl LogWatch {
    pub fn new(spec: &LogPatternCheck) -> Result<LogWatch, String> {
        Ok(LogWatch {
            matcher: Arc::new(Matcher::new(&spec.pattern, spec.regex, spec.level)?),
            spec: spec.clone(),
            seen: Arc::default(),
            followers: HashMap::new(),
        })
    }

    /// Whether this watch counts what `spec` asks (else make a new one).
    pub fn is_for(&self, spec: &LogPatternCheck) -> bool {
        self.spec.pattern == spec.pattern
            && self.spec.regex == spec.regex
            && self.spec.level == spec.level
    }

    /// Follows exactly `targets`: new containers from now on, gone ones
    /// stopped (a restarted container keeps its id and its follower).
    pub fn follow(&mut self, targets: Vec<Target>) {
        let keys: Vec<(i64, String)> = targets
            .iter()
            .map(|t| (t.engine_id, t.id.clone()))
            .collect();
        self.followers.retain(|k, h| {
            let keep = keys.contains(k) && !h.is_finished();
            if !keep {
                h.abort();
            }
            keep
        });
        for t in targets {
            let key = (t.engine_id, t.id.clone());
            if self.followers.contains_key(&key) {
                continue;
            }
            let task = follow(t, self.matcher.clone(), self.seen.clone());
            self.followers.insert(key, tokio::spawn(task));
        }
        let names: Vec<String> = self.followers.keys().map(|(_, id)| id.clone()).collect();
        lock(&self.seen)
            .errors
            .retain(|k, _| names.iter().any(|n| n == k));
    }

    /// The round's result: matches in the window against the thresholds,
    /// the newest matching lines in the message.
    pub fn grade(&self, now: DateTime<Utc>, spec: &LogPatternCheck) -> Probe {
        let window = chrono::Duration::seconds(i64::from(spec.window_s));
        let mut seen = lock(&self.seen);
        seen.forget_before(now - window);
        let count = seen.times.len();
        let status = grade_above(
            count as f64,
            f64::from(spec.warning_count),
            f64::from(spec.critical_count),
        );
        let what = describe(spec);
        let mut message = match count {
            0 => format!("no {what} in the last {}", span(spec.window_s)),
            n => format!(
                "{}{n} {what} in the last {}{}",
                if n == MAX_REMEMBERED { "at least " } else { "" },
                span(spec.window_s),
                match status {
                    CheckStatus::Critical => format!(" (critical from {})", spec.critical_count),
                    CheckStatus::Warning => format!(" (warning from {})", spec.warning_count),
                    _ => String::new(),
                }
            ),
        };
        if count > 0 {
            for s in seen.last.iter().rev().filter(|s| s.ts > now - window) {
                let line: String = s.line.chars().take(SHOWN_CHARS).collect();
                message.push_str(&format!(
                    "\n{} {}: {line}",
                    s.ts.format("%H:%M:%S"),
                    s.container
                ));
            }
        }
        let mut errors: Vec<String> = seen
            .errors
            .values()
            .map(|e| e.chars().take(SHOWN_CHARS).collect())
            .collect();
        errors.sort();
        if let Some(e) = errors.first() {
            message.push_str(&format!("\n(not followed now: {e})"));
        }
        Probe::new(status, message).metric("matches", count as f64)
    }
}

fn describe(spec: &LogPatternCheck) -> String {
    let level = spec.level.map(|l| format!("{} or worse ", l.as_str()));
    match (spec.pattern.is_empty(), level) {
        (true, Some(l)) => format!("{l}lines"),
        (false, l) => format!(
            "{}lines matching \"{}\"",
            l.unwrap_or_default(),
            spec.pattern.chars().take(60).collect::<String>()
        ),
        (true, None) => "lines".into(),
    }
}

fn span(secs: u32) -> String {
    match secs {
        s if s % 3600 == 0 => format!("{} h", s / 3600),
        s if s % 60 == 0 => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

/// Follows one container's log for as long as the watch wants it.
async fn follow(t: Target, matcher: Arc<Matcher>, seen: Arc<Mutex<Matches>>) {
    let started = Utc::now();
    // Lines at or before this were counted (or came before the watch).
    let mut counted_to = started;
    let mut first = true;
    let mut backoff = Duration::from_secs(1);
    loop {
        let query = LogQuery {
            tail: None,
            timestamps: true,
            follow: true,
            since: Some(counted_to.timestamp()),
            until: None,
        };
        let mut lines = std::pin::pin!(ops::log_lines(&t.client, &t.id, &query));
        while let Some(line) = lines.next().await {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    lock(&seen)
                        .errors
                        .insert(t.id.clone(), format!("{}: {e:#}", t.name));
                    break;
                }
            };
            let Some(l) = ops::split_timestamp(&line) else {
                continue;
            };
            let old = if first {
                l.ts < counted_to
            } else {
                l.ts <= counted_to
            };
            if old {
                continue;
            }
            counted_to = l.ts;
            first = false;
            backoff = Duration::from_secs(1);
            lock(&seen).errors.remove(&t.id);
            if matcher.is_hit(&l.text) {
                lock(&seen).add(Seen {
                    ts: l.ts,
                    container: t.name.clone(),
                    line: l.text,
                });
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(warning: u32, critical: u32) -> LogPatternCheck {
        LogPatternCheck {
            pattern: "error".into(),
            regex: false,
            level: None,
            window_s: 300,
            warning_count: warning,
            critical_count: critical,
        }
    }

    fn watch(spec: &LogPatternCheck) -> LogWatch {
        LogWatch::new(spec).unwrap()
    }

    #[test]
    fn matches_in_the_window_are_graded_and_shown() {
        let s = spec(2, 4);
        let w = watch(&s);
        let now: DateTime<Utc> = "2026-12-07T12:00:00Z".parse().unwrap();
        let at = |secs: i64| now - chrono::Duration::seconds(secs);
        {
            let mut m = lock(&w.seen);
            // One outside the window, three inside, arriving out of order.
            for (secs, line) in [
                (400, "old ERROR"),
                (10, "ERROR b"),
                (100, "ERROR a"),
                (5, "ERROR c"),
            ] {
                m.add(Seen {
                    ts: at(secs),
                    container: "web-1".into(),
                    line: line.into(),
                });
            }
        }
        let p = w.grade(now, &s);
        assert_eq!(p.status, CheckStatus::Warning);
        let mut lines = p.message.lines();
        assert_eq!(
            lines.next(),
            Some("3 lines matching \"error\" in the last 5 min (warning from 2)")
        );
        assert_eq!(lines.next(), Some("11:59:55 web-1: ERROR c"));
        assert_eq!(p.metrics[0].value, 3.0);
        // Later, everything has left the window.
        let p = w.grade(now + chrono::Duration::seconds(301), &s);
        assert_eq!(p.status, CheckStatus::Ok);
        assert_eq!(p.message, "no lines matching \"error\" in the last 5 min");
    }

    #[test]
    fn the_count_saturates_and_critical_is_named() {
        let s = spec(1, 2);
        let w = watch(&s);
        let now = Utc::now();
        {
            let mut m = lock(&w.seen);
            for _ in 0..MAX_REMEMBERED + 5 {
                m.add(Seen {
                    ts: now,
                    container: "c".into(),
                    line: "ERROR".into(),
                });
            }
        }
        let p = w.grade(now, &s);
        assert_eq!(p.status, CheckStatus::Critical);
        assert!(
            p.message
                .starts_with(&format!("at least {MAX_REMEMBERED} lines")),
            "{}",
            p.message
        );
        assert!(p.message.contains("(critical from 2)"));
    }

    #[test]
    fn a_level_only_check_describes_itself() {
        let s = LogPatternCheck {
            pattern: String::new(),
            level: Some(opsdeck_wire::LogLevel::Error),
            window_s: 3600,
            ..spec(1, 2)
        };
        let p = watch(&s).grade(Utc::now(), &s);
        assert_eq!(p.message, "no error or worse lines in the last 1 h");
        assert!(watch(&s).is_for(&s) && !watch(&s).is_for(&spec(1, 2)));
    }
}
