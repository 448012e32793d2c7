//! Audit entries for anonymous refused or failed requests, folded to one
//! entry per source and minute.
//!
//! Every refused mutating request must leave a trace, but one row per
//! request lets anyone without an account grow the append-only log (and
//! contend for the chain's lock) as fast as they can send. So the first
//! such request from an address in a minute is recorded as before
//! (`request.denied`, `request.failed`, `request.rejected`); the following
//! ones in that minute are only counted, and one `request.denied_repeats`
//! entry (params `{"count": n, "minute": "…"}`) records the count once the
//! minute is over: written by a flusher every 10 s, or by the source's next
//! refusal, whichever comes first. A count still in memory when the process
//! stops is lost (at most a minute's worth of repeats of logged entries).
//!
//! Refusals of a signed-in principal (a viewer trying an operator action)
//! are not folded: they name a user and stay one entry each.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use chrono::{DateTime, Utc};
use opsdeck_wire::Outcome;
use serde_json::json;
use sqlx::PgPool;

use crate::audit::{self, Actor, NewEntry};

/// Sources tracked at once; beyond it the rest share one key.
const MAX_SOURCES: usize = 10_000;

struct Minute {
    minute: i64,
    repeats: u64,
}

/// The per-source counters of the current minute.
pub struct Refusals {
    pool: PgPool,
    sources: Mutex<HashMap<String, Minute>>,
}

fn minute_now() -> i64 {
    Utc::now().timestamp().div_euclid(60)
}

fn repeats_entry(source: &str, minute: i64, count: u64) -> NewEntry {
    let at = DateTime::<Utc>::from_timestamp(minute * 60, 0).unwrap_or_default();
    NewEntry {
        actor: Actor::anonymous(),
        action: "request.denied_repeats".into(),
        target: None,
        params: json!({"count": count, "minute": at.to_rfc3339()}),
        source: (source != "*").then(|| source.to_owned()),
        outcome: Outcome::Denied,
        detail: Some(format!(
            "{count} more refused anonymous requests from this source in this minute"
        )),
    }
}

impl Refusals {
    /// The counters and their flusher (which ends with the last handle).
    pub fn start(pool: PgPool) -> Arc<Refusals> {
        let this = Arc::new(Refusals {
            pool,
            sources: Mutex::new(HashMap::new()),
        });
        let weak: Weak<Refusals> = Arc::downgrade(&this);
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(10));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(this) = weak.upgrade() else { return };
                    this.flush().await;
                }
            });
        }
        this
    }

    /// Records `entry` (an anonymous refusal) if it is its source's first
    /// this minute; otherwise only counts it.
    pub async fn record(&self, entry: NewEntry) {
        let now = minute_now();
        let mut writes = Vec::with_capacity(2);
        {
            let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            let mut key = entry.source.clone().unwrap_or_else(|| "*".into());
            if sources.len() >= MAX_SOURCES && !sources.contains_key(&key) {
                key = "*".into();
            }
            match sources.get_mut(&key) {
                Some(m) if m.minute == now => m.repeats += 1,
                other => {
                    if let Some(old) = other {
                        if old.repeats > 0 {
                            writes.push(repeats_entry(&key, old.minute, old.repeats));
                        }
                    }
                    sources.insert(
                        key,
                        Minute {
                            minute: now,
                            repeats: 0,
                        },
                    );
                    writes.push(entry);
                }
            }
        }
        for e in writes {
            self.write(e).await;
        }
    }

    /// Writes the counts of minutes that are over and forgets them.
    pub async fn flush(&self) {
        let now = minute_now();
        let mut writes = vec![];
        {
            let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
            sources.retain(|source, m| {
                if m.minute == now {
                    return true;
                }
                if m.repeats > 0 {
                    writes.push(repeats_entry(source, m.minute, m.repeats));
                }
                false
            });
        }
        for e in writes {
            self.write(e).await;
        }
    }

    async fn write(&self, entry: NewEntry) {
        let result = async {
            let mut conn = self.pool.acquire().await?;
            audit::record(&mut conn, entry).await
        }
        .await;
        if let Err(e) = result {
            tracing::error!(error = %e, "could not write audit entry for a refused request");
        }
    }
}
