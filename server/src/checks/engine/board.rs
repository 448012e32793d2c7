//! The status board: recomputed on change (debounced), serialised once,
//! changes broadcast to SSE clients; read views of the engine for the API.

use std::collections::BTreeMap;

use super::*;

impl HealthHub {
    pub(super) async fn board_task(self: Arc<Self>) {
        let mut inventory = self.engines.subscribe();
        loop {
            tokio::select! {
                _ = self.board_dirty.notified() => {}
                r = inventory.changed() => {
                    if r.is_err() { return; }
                    self.inventory_dirty.store(true, Ordering::SeqCst);
                }
            }
            tokio::time::sleep(BOARD_DEBOUNCE).await;
            if self.inventory_dirty.swap(false, Ordering::SeqCst) {
                if let Err(e) = self.reload_catalog().await {
                    tracing::warn!(error = %e, "reloading the inventory for the status board failed");
                    self.inventory_dirty.store(true, Ordering::SeqCst);
                }
            }
            self.recompute_board();
        }
    }

    /// Recomputes every service's status; broadcasts the ones that changed.
    pub fn recompute_board(&self) {
        let catalog = read(&self.catalog);
        let checks = read(&self.checks);
        let mut views = Vec::with_capacity(checks.len());
        let mut per_service: HashMap<i64, Vec<Arc<CheckRt>>> = HashMap::new();
        for c in checks.values() {
            let Some(sid) = c.def.service_id else {
                continue;
            };
            per_service.entry(sid).or_default().push(c.clone());
            if !c.def.enabled {
                continue;
            }
            let rt = lock(&c.rt);
            views.push(CheckView {
                service_id: sid,
                name: c.def.name.clone(),
                status: rt.damper.status,
                since: rt.damper.since,
                message: rt
                    .last
                    .as_ref()
                    .map(|l| l.message.clone())
                    .unwrap_or_default(),
            });
        }
        drop(checks);
        let health = status::compute(&catalog.services, &views);
        let maintenance = read(&self.maintenance);
        let current_minute = minute_of(Utc::now());
        let mut statuses = HashMap::with_capacity(catalog.services.len());
        for s in &catalog.services {
            let Some(h) = health.get(&s.id) else { continue };
            let checks = per_service.get(&s.id).map(Vec::as_slice).unwrap_or(&[]);
            let (spark, uptime) = service_series(checks, current_minute);
            let (public, public_name) = catalog.public.get(&s.id).cloned().unwrap_or((false, None));
            // Maintenance shows over what the checks say (kept in the mark).
            let mark = maintenance.marks.get(&s.id).map(|m| MaintenanceMark {
                observed: h.health,
                ..m.clone()
            });
            statuses.insert(
                s.id,
                ServiceStatus {
                    service_id: s.id,
                    name: s.name.clone(),
                    tier: s.tier,
                    health: if mark.is_some() {
                        ServiceHealth::Maintenance
                    } else {
                        h.health
                    },
                    since: h.since,
                    impacted_by: h.impacted_by.clone(),
                    problems: h.problems.clone(),
                    checks: h.checks,
                    sparkline: spark,
                    uptime: Uptime {
                        day: uptime,
                        week: None,
                        month: None,
                    },
                    public,
                    public_name,
                    maintenance: mark,
                },
            );
        }
        drop(maintenance);
        drop(catalog);
        let mut board = write(&self.board);
        let changed: Vec<ServiceStatus> = statuses
            .values()
            .filter(|s| {
                board.statuses.get(&s.service_id).is_none_or(|old| {
                    old.health != s.health
                        || old.impacted_by != s.impacted_by
                        || old.problems != s.problems
                        || old.public != s.public
                        || old.public_name != s.public_name
                        || old.maintenance != s.maintenance
                })
            })
            .cloned()
            .collect();
        let removed = board.statuses.keys().any(|id| !statuses.contains_key(id));
        board.statuses = statuses;
        // Host checks and engines are part of the JSON too: rebuild it.
        board.json = None;
        if changed.is_empty() && !removed {
            return;
        }
        board.version += 1;
        let overall = status::overall(board.statuses.values().map(|s| (s.tier, s.health)));
        let event = StatusChange {
            version: board.version,
            overall,
            services: changed,
        };
        drop(board);
        if let Ok(json) = serde_json::to_vec(&event) {
            let _ = self.events.send(Push::Change(Bytes::from(json)));
        }
    }

    /// Re-reads sparklines and 24-hour uptime from the rollups (start-up
    /// does the same) and rebuilds the board.
    pub async fn reload_history(&self) -> anyhow::Result<()> {
        self.load_sparklines().await?;
        self.refresh_uptime().await?;
        self.recompute_board();
        let _ = self.events.send(Push::Refresh);
        Ok(())
    }

    /// Takes the maintenance in effect (from `crate::maintenance`): marks the
    /// covered services and tells every client to refetch the board (its
    /// banner list changed too). Nothing happens when nothing changed.
    pub fn set_maintenance(
        &self,
        marks: HashMap<i64, MaintenanceMark>,
        banners: Vec<MaintenanceBanner>,
    ) {
        let next = Maintenance { marks, banners };
        {
            let mut m = write(&self.maintenance);
            if *m == next {
                return;
            }
            *m = next;
        }
        self.recompute_board();
        {
            // A board JSON built meanwhile has the old banners.
            let mut board = write(&self.board);
            board.version += 1;
            board.json = None;
        }
        let _ = self.events.send(Push::Refresh);
    }

    /// The banner lines of the maintenance in effect.
    pub fn maintenance_banners(&self) -> Vec<MaintenanceBanner> {
        read(&self.maintenance).banners.clone()
    }

    /// Receives every status change, pre-serialised (`StatusChange`).
    pub fn subscribe(&self) -> broadcast::Receiver<Push> {
        self.events.subscribe()
    }

    /// The services' statuses, sorted by tier then name.
    pub fn statuses(&self) -> (u64, Vec<ServiceStatus>) {
        let board = read(&self.board);
        let mut v: Vec<ServiceStatus> = board.statuses.values().cloned().collect();
        v.sort_by(|a, b| {
            tier_rank(a.tier)
                .cmp(&tier_rank(b.tier))
                .then_with(|| a.name.cmp(&b.name))
        });
        (board.version, v)
    }

    /// The dashboard's first screen: each tier's first `n` services in the
    /// dashboard's order (worst health first, then name, case-insensitive,
    /// then id), and how many services each tier has. Only the rows chosen
    /// are cloned.
    pub fn first_statuses(&self, n: usize) -> (u64, Vec<ServiceStatus>, BTreeMap<Tier, u32>) {
        let board = read(&self.board);
        let mut all: Vec<&ServiceStatus> = board.statuses.values().collect();
        all.sort_by_cached_key(|s| {
            (
                tier_rank(s.tier),
                std::cmp::Reverse(s.health),
                s.name.to_lowercase(),
                s.service_id,
            )
        });
        let mut totals = BTreeMap::new();
        let mut chosen = Vec::new();
        for s in all {
            let seen = totals.entry(s.tier).or_insert(0u32);
            if (*seen as usize) < n {
                chosen.push(s.clone());
            }
            *seen += 1;
        }
        (board.version, chosen, totals)
    }

    /// The overall state and the number of services per health, over every
    /// service.
    pub fn overall_and_counts(&self) -> (opsdeck_wire::Overall, BTreeMap<String, u32>) {
        let board = read(&self.board);
        let all = || board.statuses.values();
        let mut counts = BTreeMap::new();
        for s in all() {
            *counts.entry(s.health.as_str().to_owned()).or_insert(0) += 1;
        }
        (status::overall(all().map(|s| (s.tier, s.health))), counts)
    }

    pub fn status_of(&self, service_id: i64) -> Option<ServiceStatus> {
        read(&self.board).statuses.get(&service_id).cloned()
    }

    /// The dashboard's JSON when it is still current.
    pub fn cached_board(&self) -> Option<Bytes> {
        read(&self.board).json.clone()
    }

    /// Keeps the dashboard's JSON built for `version` until the next change.
    pub fn store_board(&self, version: u64, json: Bytes) {
        let mut board = write(&self.board);
        if board.version == version {
            board.json = Some(json);
        }
    }

    /// Re-reads the inventory and recomputes the board now.
    pub async fn refresh_inventory(&self) -> anyhow::Result<()> {
        self.reload_catalog().await?;
        self.recompute_board();
        Ok(())
    }

    /// Host-level checks (no service), from memory.
    pub fn host_checks(&self) -> Vec<Check> {
        let mut v: Vec<Check> = read(&self.checks)
            .values()
            .filter(|c| c.def.service_id.is_none())
            .map(|c| {
                let rt = lock(&c.rt);
                let d = &c.def;
                Check {
                    id: d.id,
                    service_id: None,
                    service: None,
                    name: d.name.clone(),
                    spec: d.spec.clone(),
                    interval_s: d.interval.as_secs() as u32,
                    timeout_ms: d.timeout.as_millis() as u32,
                    fail_after: d.fail_after,
                    recover_after: d.recover_after,
                    enabled: d.enabled,
                    has_password: d.secret.is_some(),
                    heartbeat_path: None,
                    status: rt.damper.status,
                    status_since: rt.damper.since,
                    last: rt.last.clone(),
                    created_at: d.created_at,
                }
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// The hosts of the host checks (see [`HostStatus`]): the Opsdeck host
    /// first, then engines' hosts by name; each with the services on it.
    pub fn hosts(&self) -> Vec<HostStatus> {
        #[derive(Default)]
        struct Acc {
            worst: Option<CheckStatus>,
            problems: Vec<(CheckStatus, String)>,
            checks: u32,
        }
        let mut by_host: std::collections::BTreeMap<Option<String>, Acc> = Default::default();
        for c in read(&self.checks).values() {
            let CheckSpec::Host(h) = &c.def.spec else {
                continue;
            };
            if c.def.service_id.is_some() || !c.def.enabled {
                continue;
            }
            let rt = lock(&c.rt);
            let a = by_host.entry(h.engine.clone()).or_default();
            let status = rt.damper.status;
            a.checks += 1;
            a.worst = a.worst.max(Some(status));
            if status >= CheckStatus::Warning {
                let message = rt.last.as_ref().map_or("", |l| l.message.as_str());
                // The uptime the result ends with is no problem.
                let message = message.split("; host up ").next().unwrap_or_default();
                a.problems
                    .push((status, format!("{}: {message}", c.def.name)));
            }
        }
        if by_host.keys().all(Option::is_none) {
            return by_host
                .into_iter()
                .map(|(engine, a)| host_status(engine, a.worst, a.problems, Vec::new(), a.checks))
                .collect();
        }
        let idx = crate::inventory::ContainerIndex::build(&self.engines);
        let catalog = read(&self.catalog);
        by_host
            .into_iter()
            .map(|(engine, a)| {
                let services = engine.as_deref().map_or_else(Vec::new, |e| {
                    catalog
                        .services
                        .iter()
                        .filter(|s| {
                            catalog.fields.get(&s.id).is_some_and(|f| {
                                f.engine.as_deref() == Some(e)
                                    || idx.containers_of(f).iter().any(|c| c.engine == e)
                            })
                        })
                        .map(|s| s.name.clone())
                        .collect()
                });
                host_status(engine, a.worst, a.problems, services, a.checks)
            })
            .collect()
    }

    // ---------------------------------------------------------------- views

    pub fn fill(&self, check: &mut Check) {
        if let Some(c) = read(&self.checks).get(&check.id).cloned() {
            let rt = lock(&c.rt);
            check.status = rt.damper.status;
            check.status_since = rt.damper.since;
            check.last = rt.last.clone();
        }
    }

    /// Every enabled host check's spec, settled state and latest result
    /// (the engines overview).
    pub fn host_results(&self) -> Vec<(opsdeck_wire::HostCheck, CheckStatus, Option<ProbeResult>)> {
        read(&self.checks)
            .values()
            .filter(|c| c.def.enabled)
            .filter_map(|c| match &c.def.spec {
                CheckSpec::Host(h) => {
                    let rt = lock(&c.rt);
                    Some((h.clone(), rt.damper.status, rt.last.clone()))
                }
                _ => None,
            })
            .collect()
    }

    /// Host-level checks' latest results by id.
    pub fn latest_metrics(&self) -> Vec<(CheckDef, CheckStatus, Option<ProbeResult>)> {
        read(&self.checks)
            .values()
            .map(|c| {
                let rt = lock(&c.rt);
                (c.def.clone(), rt.damper.status, rt.last.clone())
            })
            .collect()
    }

    pub fn stats(&self) -> CheckEngineStats {
        let mut lags: Vec<f64> = lock(&self.stats.lags).iter().copied().collect();
        lags.sort_by(|a, b| a.total_cmp(b));
        let pct = |p: f64| -> f64 {
            if lags.is_empty() {
                0.0
            } else {
                lags[((lags.len() as f64 - 1.0) * p).round() as usize]
            }
        };
        CheckEngineStats {
            leader: self.is_leader(),
            checks: read(&self.checks).len() as u32,
            probes_total: self.stats.probes.load(Ordering::Relaxed),
            in_flight: self.stats.in_flight.load(Ordering::Relaxed),
            lag_p50_ms: pct(0.5),
            lag_p99_ms: pct(0.99),
            lag_max_ms: lags.last().copied().unwrap_or(0.0),
            rollup_rows_written: self.stats.rollup_rows.load(Ordering::Relaxed),
            events_written: self.stats.events.load(Ordering::Relaxed),
            event_probes_total: self.stats.event_probes.load(Ordering::Relaxed),
        }
    }

    /// Probes recorded by this process per check since it started: ok,
    /// warning, critical, unknown (for `/metrics`).
    pub fn probe_counts(&self) -> HashMap<i64, [u64; 4]> {
        lock(&self.stats.per_check).clone()
    }

    /// Host check sampler (the daily report reads disk and memory).
    pub fn host(&self) -> &HostSampler {
        &self.host
    }
}

fn host_status(
    engine: Option<String>,
    worst: Option<CheckStatus>,
    mut problems: Vec<(CheckStatus, String)>,
    mut services: Vec<String>,
    checks: u32,
) -> HostStatus {
    problems.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    services.sort();
    HostStatus {
        name: engine
            .as_deref()
            .map_or_else(|| "Opsdeck host".to_owned(), |e| format!("host {e}")),
        engine,
        status: worst.unwrap_or_default(),
        problems: problems.into_iter().map(|(_, p)| p).collect(),
        services,
        checks,
    }
}

fn tier_rank(t: Tier) -> u8 {
    match t {
        Tier::Critical => 0,
        Tier::Application => 1,
        Tier::Support => 2,
    }
}

/// A service's sparkline (average over its checks per minute, last
/// [`SPARK_MINUTES`] finished minutes) and 24-hour uptime (mean of its checks').
fn service_series(checks: &[Arc<CheckRt>], current_minute: i64) -> (Vec<Option<f64>>, Option<f64>) {
    let mut sums = vec![(0.0f64, 0u32); SPARK_MINUTES];
    let mut up = (0.0, 0u32);
    for c in checks {
        if !c.def.enabled {
            continue;
        }
        let rt = lock(&c.rt);
        for (m, avg) in &rt.spark {
            let age = current_minute - 1 - m;
            if (0..SPARK_MINUTES as i64).contains(&age) {
                if let Some(a) = avg {
                    let slot = &mut sums[SPARK_MINUTES - 1 - age as usize];
                    slot.0 += a;
                    slot.1 += 1;
                }
            }
        }
        if let Some(u) = rt.uptime_day {
            up.0 += u;
            up.1 += 1;
        }
    }
    let spark = sums
        .into_iter()
        .map(|(s, n)| (n > 0).then(|| (s / n as f64 * 10.0).round() / 10.0))
        .collect();
    (spark, (up.1 > 0).then(|| up.0 / up.1 as f64))
}
