//! Recording: each result through its damper, settled changes written in
//! batches, per-minute rollups flushed once a minute (minute and hour
//! tables), sparklines and 24-hour uptime from the rollups.

use super::*;

impl HealthHub {
    pub(super) fn record(&self, check: &CheckRt, result: ProbeResult) -> ProbeResult {
        let def = &check.def;
        let changed = {
            let mut rt = lock(&check.rt);
            rt.last = Some(result.clone());
            rt.damper
                .observe(result.status, def.fail_after, def.recover_after, result.at)
        };
        let slot = match result.status {
            CheckStatus::Ok => 0,
            CheckStatus::Warning => 1,
            CheckStatus::Critical => 2,
            CheckStatus::Unknown => 3,
        };
        lock(&self.stats.per_check).entry(def.id).or_default()[slot] += 1;
        if result.status != CheckStatus::Unknown {
            lock(&self.rollups)
                .entry((def.id, minute_of(result.at)))
                .or_default()
                .add(result.status, result.latency_ms);
        }
        if let Some(from) = changed {
            let _ = self.changes_tx.send(Change {
                check_id: def.id,
                from,
                result: result.clone(),
            });
        }
        result
    }

    pub(super) async fn writer(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Change>) {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 1000).await > 0 {
            if let Err(e) = self.write_changes(&batch).await {
                tracing::error!(error = %e, changes = batch.len(), "writing check state changes failed");
            }
            batch.clear();
            self.mark_dirty();
        }
    }

    async fn write_changes(&self, batch: &[Change]) -> anyhow::Result<()> {
        let mut cols = store::ChangeCols::default();
        for c in batch {
            cols.ids.push(c.check_id);
            cols.ats.push(c.result.at);
            cols.froms.push(c.from.as_str().to_owned());
            cols.tos.push(c.result.status.as_str().to_owned());
            cols.messages.push(c.result.message.clone());
            cols.results.push(serde_json::to_value(&c.result)?);
        }
        let n = store::write_changes(&self.pool, &cols).await?;
        self.stats.events.fetch_add(n, Ordering::Relaxed);
        Ok(())
    }

    /// Writes the rollups of finished minutes (all minutes when `all`).
    pub async fn flush_rollups(&self, all: bool) -> anyhow::Result<u64> {
        let current = minute_of(Utc::now());
        let done: Vec<((i64, i64), Acc)> = {
            let mut map = lock(&self.rollups);
            let keys: Vec<_> = map
                .keys()
                .filter(|(_, m)| all || *m < current)
                .copied()
                .collect();
            keys.into_iter()
                .filter_map(|k| map.remove(&k).map(|a| (k, a)))
                .collect()
        };
        if done.is_empty() {
            return Ok(0);
        }
        // Sparklines: the finished minutes' average latency.
        {
            let checks = read(&self.checks);
            for ((id, minute), acc) in &done {
                if let Some(c) = checks.get(id) {
                    let avg = (acc.lat_count > 0).then(|| acc.lat_sum / acc.lat_count as f64);
                    let mut rt = lock(&c.rt);
                    push_spark(&mut rt.spark, *minute, avg);
                }
            }
        }
        let mut cols = store::RollupCols::default();
        for ((id, minute), a) in &done {
            cols.push(
                *id,
                DateTime::from_timestamp(minute * 60, 0).unwrap_or_default(),
                a,
            );
        }
        store::add_rollups(&self.pool, &cols).await?;
        let n = done.len() as u64;
        self.stats.rollup_rows.fetch_add(n, Ordering::Relaxed);
        Ok(n)
    }

    pub(super) async fn load_sparklines(&self) -> anyhow::Result<()> {
        let rows = store::recent_latency(&self.pool, SPARK_MINUTES as i32).await?;
        let checks = read(&self.checks);
        for (id, at, sum, count) in rows {
            let Some(c) = checks.get(&id) else { continue };
            let avg = (count > 0).then(|| sum / count as f64);
            push_spark(&mut lock(&c.rt).spark, minute_of(at), avg);
        }
        Ok(())
    }

    /// 24-hour uptime of every check, from the hourly rollups.
    pub(super) async fn refresh_uptime(&self) -> anyhow::Result<()> {
        let mut up: HashMap<i64, f64> = HashMap::new();
        for (id, good, total) in store::day_counts(&self.pool).await? {
            if total > 0.0 {
                up.insert(id, 100.0 * good / total);
            }
        }
        for (id, c) in read(&self.checks).iter() {
            lock(&c.rt).uptime_day = up.get(id).copied();
        }
        Ok(())
    }

    pub(super) async fn minutely(self: Arc<Self>) {
        let mut last_retention: Option<Instant> = None;
        loop {
            // A few seconds past each minute, so the minute is complete.
            let now = Utc::now();
            let next = (now + TimeDelta::minutes(1))
                .duration_trunc(TimeDelta::minutes(1))
                .unwrap_or(now)
                + TimeDelta::seconds(2);
            tokio::time::sleep((next - now).to_std().unwrap_or(Duration::from_secs(60))).await;
            if !self.is_leader() {
                self.follow().await;
                continue;
            }
            if let Err(e) = self.flush_rollups(false).await {
                tracing::error!(error = %e, "writing check rollups failed");
            }
            if let Err(e) = self.refresh_uptime().await {
                tracing::warn!(error = %e, "refreshing uptime failed");
            }
            self.mark_dirty();
            let _ = self.events.send(Push::Refresh);
            if last_retention.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                match crate::checks::prune(&self.pool).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(rows = n, "pruned old check rollups and events")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "pruning check history failed"),
                }
                last_retention = Some(Instant::now());
            }
        }
    }
}

fn push_spark(spark: &mut VecDeque<(i64, Option<f64>)>, minute: i64, avg: Option<f64>) {
    match spark.iter_mut().find(|(m, _)| *m == minute) {
        Some(e) => {
            if avg.is_some() {
                e.1 = avg;
            }
        }
        None => {
            spark.push_back((minute, avg));
            spark.make_contiguous().sort_by_key(|(m, _)| *m);
        }
    }
    while spark.len() > SPARK_MINUTES {
        spark.pop_front();
    }
}

impl store::RollupCols {
    fn push(&mut self, id: i64, bucket: DateTime<Utc>, a: &Acc) {
        self.id.push(id);
        self.bucket.push(bucket);
        self.p.push(a.probes);
        self.o.push(a.ok);
        self.w.push(a.warning);
        self.c.push(a.critical);
        self.lmin.push(a.lat_min);
        self.lmax.push(a.lat_max);
        self.ls.push(a.lat_sum);
        self.lc.push(a.lat_count);
    }
}
