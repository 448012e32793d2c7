//! The scheduler: one task, one binary heap of `(due, check, generation)`;
//! each due check runs on its own task under one of the in-flight permits.

use super::*;

impl HealthHub {
    pub(super) async fn scheduler(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<(i64, u64)>) {
        let mut heap: BinaryHeap<Reverse<(tokio::time::Instant, i64, u64)>> = BinaryHeap::new();
        let start = tokio::time::Instant::now();
        loop {
            let next = heap.peek().map(|Reverse((t, _, _))| *t);
            tokio::select! {
                msg = rx.recv() => {
                    let Some((id, generation)) = msg else { return };
                    let interval = read(&self.checks).get(&id).map(|c| c.def.interval);
                    if let Some(interval) = interval {
                        let first = start.max(tokio::time::Instant::now()) + first_offset(id, interval).min(interval);
                        heap.push(Reverse((first, id, generation)));
                    }
                }
                _ = async { tokio::time::sleep_until(next.unwrap()).await }, if next.is_some() => {
                    let now = tokio::time::Instant::now();
                    while let Some(Reverse((due, id, generation))) = heap.peek().copied() {
                        if due > now { break; }
                        heap.pop();
                        let Some(check) = read(&self.checks).get(&id).cloned() else { continue };
                        if check.generation != generation { continue; }
                        // Next due time: keep the phase; skip missed rounds.
                        let mut next_due = due + check.def.interval;
                        while next_due <= now { next_due += check.def.interval; }
                        heap.push(Reverse((next_due, id, generation)));
                        if check.def.enabled && self.is_leader() {
                            let hub = self.clone();
                            tokio::spawn(async move { hub.run_scheduled(check, due).await });
                        }
                    }
                }
            }
        }
    }

    async fn run_scheduled(self: Arc<Self>, check: Arc<CheckRt>, due: tokio::time::Instant) {
        let Ok(_permit) = self.permits.clone().acquire_owned().await else {
            return;
        };
        let lag = tokio::time::Instant::now().saturating_duration_since(due);
        {
            let mut lags = lock(&self.stats.lags);
            if lags.len() >= 10_000 {
                lags.pop_front();
            }
            lags.push_back(lag.as_secs_f64() * 1000.0);
        }
        self.stats.in_flight.fetch_add(1, Ordering::Relaxed);
        let result = self.probe(&check).await;
        self.stats.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.record(&check, result);
    }

    /// Runs a check now (the "Run now" button) and records the result when
    /// this instance holds the lease.
    pub async fn run_now(self: &Arc<Self>, id: i64) -> Option<ProbeResult> {
        let check = read(&self.checks).get(&id).cloned()?;
        let result = self.probe(&check).await;
        if self.is_leader() {
            // The check may have been reloaded while it was probed (the
            // change notification of its creation or edit): record into the
            // current runtime, or the result is lost from memory.
            let current = read(&self.checks).get(&id).cloned().unwrap_or(check);
            Some(self.record(&current, result))
        } else {
            Some(result)
        }
    }
}
