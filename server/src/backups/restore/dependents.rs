//! Phases 3 and 5 of a restore: the dependent services stopped and started
//! again, and the guard that starts them when the step is dropped.

use super::*;

/// The services to stop for a restore of `src`: a database's service's
/// transitive dependents; for a volume, the services whose containers use
/// it and their dependents.
async fn to_stop(cx: &StepCx<'_>, src: &Source) -> Result<(Vec<String>, String), String> {
    let state = cx.state;
    let mut conn = state.pool.acquire().await.map_err(|e| e.to_string())?;
    let snapshot = Snapshot::load(&mut conn).await.map_err(|e| e.to_string())?;
    drop(conn);
    let g = snapshot.graph().map_err(|e| e.to_string())?;
    let (set, why) = match src {
        Source::Postgres { service, .. } | Source::Mariadb { service, .. } => {
            let deps = g
                .impact(std::slice::from_ref(service))
                .map_err(|_| format!("service \"{service}\" is not in the inventory"))?;
            (deps, format!("the services that depend on {service}"))
        }
        Source::Volume { engine, volume } => {
            let (_, docker) = volumes::engine(state, Some(engine)).await?;
            let list = crate::docker::list::containers(
                &docker,
                crate::docker::list::ListBy::Volume(volume),
            )
            .await
            .map_err(|e| format!("listing the containers that use volume {volume}: {e:#}"))?;
            let ids: HashSet<String> = list
                .into_iter()
                .filter(|c| !c.labels.contains_key(crate::docker::volumes::HELPER_LABEL))
                .map(|c| c.id)
                .collect();
            let users: Vec<String> = crate::inventory::overview(&snapshot, &state.engines)
                .into_iter()
                .filter(|o| o.containers.iter().any(|c| ids.contains(&c.id)))
                .map(|o| o.service.name)
                .collect();
            let mut all = users.clone();
            all.extend(g.impact(&users).map_err(|e| e.to_string())?);
            (
                all,
                format!("the services that use volume {volume} and their dependents"),
            )
        }
        Source::Files { path } => {
            return Err(format!(
                "{path} belongs to no service: no dependents to stop"
            ))
        }
    };
    let order = g.stop_order(&set).map_err(|e| e.to_string())?;
    Ok((order, why))
}

/// Phase 3: stops the services of [`to_stop`] that run, dependents first;
/// each one stopped goes into the guard before the next is asked.
pub(super) async fn stop_dependents(
    cx: &StepCx<'_>,
    src: &Source,
    guard: &mut Guard,
) -> Result<(), String> {
    let state = cx.state;
    let (order, why) = to_stop(cx, src).await?;
    if order.is_empty() {
        cx.out.line(format!("3/5 dependents: none ({why})"));
        return Ok(());
    }
    cx.out.line(format!(
        "3/5 stopping {why}, in this order: {}",
        order.join(", ")
    ));
    for name in order {
        let mut t = actions::service_target(state, &name)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        t.containers.retain(|c| c.state == "running");
        if t.containers.is_empty() {
            cx.out
                .line(format!("3/5 {name}: not running, left as it is"));
            continue;
        }
        let ids: HashSet<String> = t.containers.iter().map(|c| c.id.clone()).collect();
        let by = Invoker {
            actor: cx.actor.clone(),
            ctx: None,
        };
        let record = actions::run_service_action(
            state,
            &by,
            t,
            &ContainerActionRequest {
                action: ContainerActionKind::Stop,
                timeout_secs: None,
                signal: None,
                confirm: None,
            },
        )
        .await
        .map_err(|e| format!("stopping {name}: {e}"))?;
        // Even a partly failed stop may have stopped some: they are started
        // again (those still running are left alone then).
        guard.stopped.push((name.clone(), ids));
        guard.params["stopped"] = json!(guard.stopped.iter().map(|s| &s.0).collect::<Vec<_>>());
        if let Some(e) = record.error {
            return Err(format!(
                "stopping {name} failed, so nothing was restored: {e}"
            ));
        }
        cx.out.line(format!("3/5 {name}: stopped"));
    }
    Ok(())
}

/// Starts the given services again in dependency order, only the containers
/// that were stopped; a service whose dependency failed to start is left
/// stopped. Returns the services started, or what failed.
pub(super) async fn start_services(
    state: &AppState,
    actor: &Actor,
    stopped: &[(String, HashSet<String>)],
    out: &Output,
) -> Result<Vec<String>, String> {
    let names: Vec<String> = stopped.iter().map(|s| s.0.clone()).collect();
    let mut conn = state.pool.acquire().await.map_err(|e| e.to_string())?;
    let snapshot = Snapshot::load(&mut conn).await.map_err(|e| e.to_string())?;
    drop(conn);
    // A service removed from the inventory meanwhile still gets started, last.
    let order = match snapshot.graph() {
        Ok(g) => {
            let known: Vec<String> = names.iter().filter(|n| g.contains(n)).cloned().collect();
            let mut o = g.start_order(&known).unwrap_or(known);
            o.extend(names.iter().filter(|n| !g.contains(n)).cloned());
            o.into_iter()
                .map(|n| {
                    let req = g.requires(&n);
                    (n, req)
                })
                .collect::<Vec<_>>()
        }
        Err(_) => names.iter().map(|n| (n.clone(), Vec::new())).collect(),
    };
    out.line(format!(
        "5/5 starting again in this order: {}",
        order
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    let ids: HashMap<&str, &HashSet<String>> =
        stopped.iter().map(|s| (s.0.as_str(), &s.1)).collect();
    let mut failed: HashSet<String> = HashSet::new();
    let mut problems = Vec::new();
    let mut started = Vec::new();
    for (name, requires) in order {
        if requires.iter().any(|r| failed.contains(r)) {
            out.line(format!(
                "5/5 {name}: not started, a dependency failed to start"
            ));
            problems.push(format!("{name} was not started (a dependency failed)"));
            failed.insert(name);
            continue;
        }
        let res = async {
            let mut t = actions::service_target(state, &name)
                .await
                .map_err(|e| e.to_string())?;
            let want = ids.get(name.as_str()).copied();
            t.containers
                .retain(|c| want.is_some_and(|w| w.contains(&c.id)) && c.state != "running");
            if t.containers.is_empty() {
                return Ok(());
            }
            let by = Invoker {
                actor: actor.clone(),
                ctx: None,
            };
            let record = actions::run_service_action(
                state,
                &by,
                t,
                &ContainerActionRequest {
                    action: ContainerActionKind::Start,
                    timeout_secs: None,
                    signal: None,
                    confirm: None,
                },
            )
            .await
            .map_err(|e| e.to_string())?;
            match record.error {
                Some(e) => Err(e),
                None => Ok(()),
            }
        }
        .await;
        match res {
            Ok(()) => {
                out.line(format!("5/5 {name}: started"));
                started.push(name);
            }
            Err(e) => {
                out.line(format!("5/5 {name}: starting failed: {e}"));
                problems.push(format!("starting {name} failed: {e}"));
                failed.insert(name);
            }
        }
    }
    if problems.is_empty() {
        Ok(started)
    } else {
        Err(problems.join("; "))
    }
}

/// What phase 5 and the audit entry need, also when the step is dropped
/// halfway (cancel, timeout, lost lease): then the stopped services are
/// started again and the failure is audited from a detached task.
pub(super) struct Guard {
    pub(super) state: AppState,
    pub(super) actor: Actor,
    pub(super) out: Output,
    pub(super) backup: i64,
    pub(super) params: Value,
    /// (service, the ids of its containers that ran before the stop), in
    /// stop order.
    pub(super) stopped: Vec<(String, HashSet<String>)>,
    pub(super) done: bool,
}

impl Guard {
    pub(super) fn new(cx: &StepCx<'_>, p: &Params) -> Guard {
        Guard {
            state: cx.state.clone(),
            actor: cx.actor.clone(),
            out: cx.out.handle(),
            backup: p.backup,
            params: json!({
                "run": cx.run_id,
                "artifact": p.artifact,
                "into": p.into,
                "stop_dependents": p.stop_dependents,
            }),
            stopped: Vec::new(),
            done: false,
        }
    }

    pub(super) async fn start_again(&mut self, out: &Output) -> Result<Vec<String>, String> {
        if self.stopped.is_empty() {
            if self.params["stop_dependents"] == json!(true) {
                out.line("5/5 nothing to start again");
            }
            return Ok(Vec::new());
        }
        let stopped = std::mem::take(&mut self.stopped);
        start_services(&self.state, &self.actor, &stopped, out).await
    }

    pub(super) async fn audit(
        mut self,
        state: &AppState,
        outcome: Outcome,
        detail: Option<String>,
    ) {
        self.done = true;
        record_result(
            state,
            &self.actor,
            self.backup,
            &self.params,
            outcome,
            detail,
        )
        .await;
    }
}

pub(super) async fn record_result(
    state: &AppState,
    actor: &Actor,
    backup: i64,
    params: &Value,
    outcome: Outcome,
    detail: Option<String>,
) {
    let res = async {
        let mut conn = state.pool.acquire().await?;
        audit::record(
            &mut conn,
            NewEntry {
                actor: actor.clone(),
                action: "backup.restored".into(),
                target: Some(format!("backup:{backup}")),
                params: params.clone(),
                source: None,
                outcome,
                detail,
            },
        )
        .await
    }
    .await;
    if let Err(e) = res {
        tracing::warn!(backup, error = %e, "auditing a restore");
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let state = self.state.clone();
        let actor = self.actor.clone();
        let out = self.out.handle();
        let backup = self.backup;
        let params = self.params.clone();
        let stopped = std::mem::take(&mut self.stopped);
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn(async move {
            let mut why =
                "the run stopped (cancelled, timed out or its lease lost) before the restore finished"
                    .to_owned();
            if !stopped.is_empty() {
                if let Err(e) = start_services(&state, &actor, &stopped, &out).await {
                    tracing::warn!(backup, error = %e, "starting services again after a stopped restore");
                    why.push_str(&format!("; {e}"));
                }
            }
            record_result(&state, &actor, backup, &params, Outcome::Failure, Some(why)).await;
        });
    }
}
