//! Probing: one check under its timeout and "sustained for" window, the
//! container and container-resource probes (they read the engine hub), and
//! heartbeats; pure grading of containers and heartbeats.

use super::*;

impl HealthHub {
    pub(super) async fn probe(&self, check: &CheckRt) -> ProbeResult {
        let def = &check.def;
        let started = Instant::now();
        let fut = self.dispatch(check);
        let p = match tokio::time::timeout(def.timeout, fut).await {
            Ok(p) => p,
            Err(_) => Probe::critical(format!("timed out after {} ms", def.timeout.as_millis())),
        };
        self.stats.probes.fetch_add(1, Ordering::Relaxed);
        let mut p = p;
        // Sustained windows (resource checks).
        let window = match &def.spec {
            CheckSpec::Host(h) => h.sustained_s,
            CheckSpec::ContainerResources(c) => c.sustained_s,
            CheckSpec::Prometheus(c) => c.sustained_s,
            CheckSpec::Scrape(c) => c.sustained_s,
            _ => 0,
        };
        if window > 0 {
            let (status, held) = lock(&check.rt).sustain.apply(
                p.status,
                Duration::from_secs(window as u64),
                started,
            );
            if status < p.status {
                p.message = format!(
                    "{} (for {} s of the {} s it must last)",
                    p.message,
                    held.unwrap_or_default().as_secs(),
                    window
                );
                p.status = status;
            }
        }
        ProbeResult {
            status: p.status,
            at: Utc::now(),
            latency_ms: p.latency_ms,
            message: p.message,
            metrics: p.metrics,
        }
    }

    async fn dispatch(&self, check: &CheckRt) -> Probe {
        let def = &check.def;
        // Stored sealed; opened here, where it is used, and dropped after.
        let secret = match crate::secrets::open_opt(
            crate::secrets::Field::CheckPassword,
            def.id,
            def.secret.as_deref(),
        ) {
            Ok(s) => s,
            Err(e) => return Probe::critical(format!("the stored password cannot be used: {e}")),
        };
        let secret = secret.as_deref();
        match &def.spec {
            CheckSpec::Http(c) => self.http.probe(c, def.timeout).await,
            CheckSpec::Tcp(c) => probe::net::tcp(c, def.timeout).await,
            CheckSpec::Tls(c) => probe::net::tls(c, def.timeout).await,
            CheckSpec::Postgres(c) => probe::sql::postgres(c, secret, def.timeout).await,
            CheckSpec::Mysql(c) => probe::sql::mysql(c, secret, def.timeout).await,
            CheckSpec::Redis(c) => probe::redis::redis(c, secret, def.timeout).await,
            CheckSpec::Host(c) if c.engine.is_some() => {
                probe::host_engine::probe(self.host.remote(), &self.engines, c).await
            }
            CheckSpec::Host(c) => self.host.probe(c).await,
            CheckSpec::Container(c) => self.container_probe(check, c),
            CheckSpec::ContainerResources(c) => self.container_resources(def, c).await,
            CheckSpec::Heartbeat(c) => {
                let last = lock(&check.rt).last_heartbeat;
                heartbeat_probe(c, last, def.created_at, Utc::now())
            }
            CheckSpec::LogPattern(c) => self.log_pattern(def, c),
            CheckSpec::Prometheus(c) => {
                probe::prometheus::probe(&self.http, c, secret, def.timeout).await
            }
            CheckSpec::Scrape(c) => {
                probe::scrape::probe(&self.http, c, &check.scrape, secret, def.timeout).await
            }
            CheckSpec::Forecast(c) => probe::forecast::probe(&self.pool, def.service_id, c).await,
        }
    }

    /// Counts what the check's [`LogWatch`](probe::logs::LogWatch) saw,
    /// after pointing it at the service's current containers.
    fn log_pattern(&self, def: &CheckDef, c: &opsdeck_wire::LogPatternCheck) -> Probe {
        let Some(fields) = self.service_fields(def) else {
            return Probe::new(CheckStatus::Unknown, "not a service check");
        };
        let idx = crate::inventory::ContainerIndex::build(&self.engines);
        let containers = idx.containers_of(&fields);
        let targets: Vec<probe::logs::Target> = containers
            .iter()
            .filter_map(|ci| {
                let client = self.engines.get(ci.engine_id)?.client().ok()?;
                Some(probe::logs::Target {
                    engine_id: ci.engine_id,
                    id: ci.id.clone(),
                    name: ci.name.clone(),
                    client,
                })
            })
            .collect();
        let mut watches = lock(&self.log_watches);
        if watches.get(&def.id).is_none_or(|w| !w.is_for(c)) {
            match probe::logs::LogWatch::new(c) {
                Ok(w) => {
                    watches.insert(def.id, w);
                }
                Err(e) => return Probe::critical(e),
            }
        }
        let Some(watch) = watches.get_mut(&def.id) else {
            return Probe::critical("no log watch");
        };
        let followed = targets.len();
        watch.follow(targets);
        let p = watch.grade(Utc::now(), c);
        if followed == 0 {
            return p.at_least(
                CheckStatus::Unknown,
                "no container of the service to follow on a reachable engine",
            );
        }
        p
    }

    fn service_fields(&self, def: &CheckDef) -> Option<crate::inventory::Fields> {
        read(&self.catalog).fields.get(&def.service_id?).cloned()
    }

    fn container_probe(&self, check: &CheckRt, c: &opsdeck_wire::ContainerCheck) -> Probe {
        let Some(fields) = self.service_fields(&check.def) else {
            return Probe::new(CheckStatus::Unknown, "not a service check");
        };
        let idx = crate::inventory::ContainerIndex::build(&self.engines);
        let containers = idx.containers_of(&fields);
        let state = idx.run_state(&fields, &containers);
        let now = Instant::now();
        let restarts: i64 = {
            let mut rt = lock(&check.rt);
            rt.restarts
                .retain(|id, _| containers.iter().any(|c| &c.id == id));
            containers
                .iter()
                .map(|c| {
                    let samples = rt.restarts.entry(c.id.clone()).or_default();
                    while samples
                        .front()
                        .is_some_and(|(t, _)| now.duration_since(*t) > RESTART_WINDOW)
                    {
                        samples.pop_front();
                    }
                    samples.push_back((now, c.restart_count));
                    c.restart_count - samples.front().map_or(c.restart_count, |s| s.1)
                })
                .sum()
        };
        container_grade(state, &containers, restarts, c)
    }

    async fn container_resources(
        &self,
        def: &CheckDef,
        c: &opsdeck_wire::ContainerResourcesCheck,
    ) -> Probe {
        let Some(fields) = self.service_fields(def) else {
            return Probe::new(CheckStatus::Unknown, "not a service check");
        };
        let idx = crate::inventory::ContainerIndex::build(&self.engines);
        let containers: Vec<_> = idx
            .containers_of(&fields)
            .into_iter()
            .filter(|c| c.state == "running")
            .collect();
        if containers.is_empty() {
            return Probe::new(CheckStatus::Unknown, "no running container");
        }
        let mut worst: Option<(f64, String)> = None;
        for ci in &containers {
            let Some(conn) = self.engines.get(ci.engine_id) else {
                continue;
            };
            let Ok(docker) = conn.client() else {
                return Probe::new(
                    CheckStatus::Unknown,
                    format!("engine {} unreachable", ci.engine),
                );
            };
            let stats = match crate::docker::ops::stats(&conn, &docker, &ci.id, &ci.name).await {
                Ok(s) => s,
                Err(e) => return Probe::critical(format!("stats of {}: {e}", ci.name)),
            };
            let value = match c.resource {
                opsdeck_wire::Resource::Cpu => stats.cpu_percent,
                _ if stats.memory_limit_bytes > 0 => {
                    Some(100.0 * stats.memory_bytes as f64 / stats.memory_limit_bytes as f64)
                }
                _ => None,
            };
            if let Some(v) = value {
                if worst.as_ref().is_none_or(|(w, _)| v > *w) {
                    worst = Some((v, ci.name.clone()));
                }
            }
        }
        let Some((v, name)) = worst else {
            return Probe::new(CheckStatus::Unknown, "no reading yet");
        };
        let what = if c.resource == opsdeck_wire::Resource::Cpu {
            "cpu"
        } else {
            "memory"
        };
        let status = probe::grade_above(v, c.warning_pct, c.critical_pct);
        Probe::new(status, format!("{name}: {what} {v:.1} %")).metric(&format!("{what}_pct"), v)
    }

    /// A heartbeat for check `id` (sent with an API token of scope
    /// `heartbeat`); false when `id` is no heartbeat check.
    pub async fn heartbeat_by_id(self: &Arc<Self>, id: i64) -> anyhow::Result<bool> {
        let now = Utc::now();
        let id = store::heartbeat_by_id(&self.pool, id, now).await?;
        self.pinged(id, now).await
    }

    /// A heartbeat arrived for `token`; returns false when no check has it.
    pub async fn heartbeat(self: &Arc<Self>, token: &str) -> anyhow::Result<bool> {
        let now = Utc::now();
        let id = store::heartbeat(&self.pool, token, now).await?;
        self.pinged(id, now).await
    }

    /// The ping is stored (`id` is the check it reached, if any): the
    /// leader settles the check at once.
    async fn pinged(self: &Arc<Self>, id: Option<i64>, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let Some(id) = id else { return Ok(false) };
        let check = read(&self.checks).get(&id).cloned();
        if let Some(check) = check {
            lock(&check.rt).last_heartbeat = Some(now);
            if check.def.enabled && self.is_leader() {
                let result = self.probe(&check).await;
                self.record(&check, result);
            }
        }
        Ok(true)
    }
}

/// Grades a service's containers: not running → critical, unhealthy or a
/// restart loop → by the restart thresholds.
pub fn container_grade(
    state: opsdeck_wire::RunState,
    containers: &[opsdeck_wire::ContainerInfo],
    restarts: i64,
    c: &opsdeck_wire::ContainerCheck,
) -> Probe {
    use opsdeck_wire::RunState as R;
    let running = containers.iter().filter(|c| c.state == "running").count();
    let mut p = match state {
        R::Running => Probe::ok(format!("{running}/{} running", containers.len())),
        R::Degraded => {
            let unhealthy: Vec<&str> = containers
                .iter()
                .filter(|c| c.health.as_deref() == Some("unhealthy") || c.state != "running")
                .map(|c| c.name.as_str())
                .collect();
            Probe::critical(format!("not healthy: {}", unhealthy.join(", ")))
        }
        R::Restarting => Probe::critical("restarting"),
        R::Paused => Probe::critical("paused"),
        R::Stopped => Probe::critical("stopped"),
        R::Missing => Probe::critical("no container"),
        R::Unknown => Probe::new(CheckStatus::Unknown, "engine unreachable: state unknown"),
        R::Unmapped => Probe::new(CheckStatus::Unknown, "the service maps to no container"),
    };
    if restarts > 0 {
        let grade = probe::grade_above(
            restarts as f64,
            c.restarts_warning as f64,
            c.restarts_critical as f64,
        );
        p = p.at_least(
            grade,
            format!("{restarts} restarts in 10 min (restart loop)"),
        );
    }
    p.metric("running", running as f64)
        .metric("restarts_10m", restarts as f64)
}

/// Grades a heartbeat check: no ping within period + grace (since the last
/// ping, or since the check was created) is critical.
pub fn heartbeat_probe(
    c: &opsdeck_wire::HeartbeatCheck,
    last: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Probe {
    let allowed = TimeDelta::seconds(c.period_s as i64 + c.grace_s as i64);
    match last {
        Some(t) => {
            let age = (now - t).num_seconds().max(0);
            let p = if now - t > allowed {
                Probe::critical(format!(
                    "no ping for {age} s (expected every {} s + {} s grace)",
                    c.period_s, c.grace_s
                ))
            } else {
                Probe::ok(format!("last ping {age} s ago"))
            };
            p.metric("since_last_s", age as f64)
        }
        None if now - created > allowed => Probe::critical("never pinged"),
        None => Probe::new(CheckStatus::Unknown, "waiting for the first ping"),
    }
}

/// A metric's value in a probe result.
pub fn metric(result: &ProbeResult, name: &str) -> Option<f64> {
    result
        .metrics
        .iter()
        .find(|m: &&Metric| m.name == name)
        .map(|m| m.value)
}
