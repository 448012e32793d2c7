//! The inventory on a real engine: the private dockerd runs a busybox
//! stand-in of the MosAIc stack. Discovery from compose labels, the
//! events-driven container cache, actions (restart, stop with confirmation,
//! pause, kill, stack restart in dependency order as the engine's own events
//! show it), logs (tail, filter, live follow), exec, stats, inspect with
//! secrets masked, and an engine that goes away mid-session and comes back.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::query_parameters::EventsOptionsBuilder;
use futures::StreamExt;
use opsdeck_e2e::flows::containers::wait_engine;
use opsdeck_e2e::relay::Relay;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{ServiceSpec, Stack, DOCS, MOSAIC, SECRET_ENV, SECRET_VALUE, SHOP};
use opsdeck_e2e::util::{engine, error_code, expect_error, ok_json, poll, release, sse_until};
use opsdeck_wire::{
    ActionOutcome, ActionRecord, AuditPage, ContainerStats, DiscoveredProject, Engine, EngineState,
    ExecResult, GraphQueryResult, ImportPlan, Role, RunState, Service, ServiceOverview,
};
use serde_json::json;

const WAIT: Duration = Duration::from_secs(60);

async fn register(admin: &Api, name: &str, endpoint: &str) -> Engine {
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": name, "endpoint": endpoint}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering engine {name}");
    res.json().await.expect("engine")
}

async fn overview(api: &Api) -> BTreeMap<String, ServiceOverview> {
    let list: Vec<ServiceOverview> = api.json("/api/v1/services").await;
    list.into_iter()
        .map(|o| (o.service.name.clone(), o))
        .collect()
}

/// Polls until each named service is in `state`.
async fn wait_state(
    api: &Api,
    names: &[&str],
    state: RunState,
) -> BTreeMap<String, ServiceOverview> {
    poll(WAIT, &format!("{names:?} {state:?}"), async || {
        let all = overview(api).await;
        let off: Vec<String> = names
            .iter()
            .filter(|n| all.get(**n).map(|o| o.run_state) != Some(state))
            .map(|n| format!("{n}: {:?}", all.get(*n).map(|o| o.run_state)))
            .collect();
        if off.is_empty() {
            Ok(all)
        } else {
            Err(off.join(", "))
        }
    })
    .await
}

/// Imports a stack's compose file as its project, on `engine`.
async fn import(admin: &Api, stack: &Stack, engine: &str) -> ImportPlan {
    let res = admin
        .post(
            "/api/v1/inventory/compose",
            &json!({"content": stack.compose_yaml(), "project": stack.project,
                    "engine": engine, "apply": true}),
        )
        .await;
    ok_json(res, "importing the stack").await
}

async fn action(api: &Api, id: i64, body: serde_json::Value) -> reqwest::Response {
    api.post(&format!("/api/v1/services/{id}/actions"), &body)
        .await
}

fn succeeded(record: &ActionRecord) {
    assert_eq!(
        record.outcome,
        ActionOutcome::Succeeded,
        "the action failed: {record:#?}"
    );
    assert!(record.steps.iter().all(|s| s.ok), "{record:#?}");
    assert!(record.finished_at.is_some() && record.duration_ms.is_some());
}

fn names(specs: &[ServiceSpec]) -> Vec<&'static str> {
    specs.iter().map(|s| s.name).collect()
}

/// `seconds.nanoseconds` for the engine's `since`/`until`.
fn docker_time(t: chrono::DateTime<chrono::Utc>) -> String {
    format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosaic_discovery_actions_and_stack_order() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;

    // Registered first: the cache learns the stack from the events stream.
    let main = register(&admin, "main", &engine.host()).await;
    let connected = wait_engine(&viewer, "main", EngineState::Connected).await;
    assert!(connected.version.is_some() && connected.api_version.is_some());
    assert!(connected.last_error.is_none());

    let mut stack = Stack::mosaic(&engine).await.expect("bringing up MosAIc");
    let plan = import(&admin, &stack, "main").await;
    assert_eq!(plan.changes.len(), MOSAIC.len());

    // Every service maps to its one running container.
    let all = wait_state(&viewer, &names(MOSAIC), RunState::Running).await;
    for s in MOSAIC {
        let o = &all[s.name];
        assert_eq!(o.containers.len(), 1, "{}: {o:#?}", s.name);
        let c = &o.containers[0];
        assert_eq!(c.name, stack.container(s.name));
        assert_eq!(c.engine, "main");
        assert_eq!(c.state, "running");
        assert_eq!(c.compose_project.as_deref(), Some(stack.project.as_str()));
        assert!(c.started_at.is_some());
    }
    let listed: Vec<opsdeck_wire::ContainerInfo> = viewer
        .json(&format!("/api/v1/engines/{}/containers", main.id))
        .await;
    for s in MOSAIC {
        assert!(
            listed.iter().any(|c| c.name == stack.container(s.name)),
            "the engine's container list has {}",
            s.name
        );
    }

    // Discovery: the project, its services and dependencies from labels.
    let project = stack.project.clone();
    let found: DiscoveredProject = poll(WAIT, "the project in discovery", async || {
        let list: Vec<DiscoveredProject> = viewer.json("/api/v1/inventory/discovered").await;
        list.into_iter()
            .find(|p| p.project == project && p.engine == "main")
            .ok_or_else(|| "not listed".to_owned())
    })
    .await;
    assert_eq!(found.services.len(), MOSAIC.len(), "{found:#?}");
    for s in &found.services {
        let spec = MOSAIC
            .iter()
            .find(|m| m.name == s.name)
            .expect("a MosAIc service");
        let mut deps: Vec<String> = spec.requires.iter().map(|d| d.to_string()).collect();
        deps.sort();
        assert_eq!(s.depends_on, deps, "{}", s.name);
        assert!(s.in_inventory, "{} was imported", s.name);
        assert_eq!((s.containers, s.running), (1, 1), "{}", s.name);
    }

    // A second, un-imported project is discovered and added from its labels.
    let docs = Stack::up(&engine, "docs", DOCS).await.expect("docs stack");
    let docs_project = docs.project.clone();
    let found: DiscoveredProject = poll(WAIT, "the docs project in discovery", async || {
        let list: Vec<DiscoveredProject> = viewer.json("/api/v1/inventory/discovered").await;
        list.into_iter()
            .find(|p| p.project == docs_project && p.services.len() == 2)
            .ok_or_else(|| "not listed (yet)".to_owned())
    })
    .await;
    let d = found
        .services
        .iter()
        .find(|s| s.name == "docs")
        .expect("docs");
    assert_eq!(d.depends_on, vec!["search".to_owned()]);
    assert!(!d.in_inventory);
    let body = json!({"engine": "main", "project": docs.project, "apply": false});
    let preview: ImportPlan = ok_json(
        admin.post("/api/v1/inventory/discovered", &body).await,
        "discovered preview",
    )
    .await;
    assert!(
        !preview.applied && preview.changes.len() == 2,
        "{preview:#?}"
    );
    assert!(
        !overview(&viewer).await.contains_key("docs"),
        "a preview changes nothing"
    );
    let body = json!({"engine": "main", "project": docs.project, "apply": true});
    let applied: ImportPlan = ok_json(
        admin.post("/api/v1/inventory/discovered", &body).await,
        "discovered import",
    )
    .await;
    assert!(applied.applied);
    let all = wait_state(&viewer, &["docs", "search"], RunState::Running).await;
    assert_eq!(all["docs"].service.requires, vec!["search".to_owned()]);
    assert_eq!(all["docs"].service.source, "discovered");
    assert_eq!(all["docs"].service.engine.as_deref(), Some("main"));
    let res = admin
        .post(
            "/api/v1/inventory/discovered",
            &json!({"engine": "main", "project": "no-such-project", "apply": true}),
        )
        .await;
    assert_eq!(res.status(), 404);
    drop(docs);

    // Restart one service: a new start time, still running, in the activity list.
    let gitea = all["gitea"].clone();
    let before = gitea.containers[0].started_at.expect("started_at");
    let record: ActionRecord = ok_json(
        action(
            &operator,
            gitea.service.id,
            json!({"action": "restart", "timeout_secs": 1}),
        )
        .await,
        "restart gitea",
    )
    .await;
    succeeded(&record);
    assert_eq!(record.kind, "container.restart");
    assert_eq!(record.target, "gitea");
    assert_eq!(record.steps.len(), 1);
    assert_eq!(record.steps[0].container, stack.container("gitea"));
    let now: ServiceOverview = viewer
        .json(&format!("/api/v1/services/{}", gitea.service.id))
        .await;
    assert_eq!(now.run_state, RunState::Running);
    let after = now.containers[0].started_at.expect("started_at");
    assert!(after > before, "started_at moved: {before} → {after}");
    let activity: Vec<ActionRecord> = viewer
        .json(&format!("/api/v1/services/{}/activity", gitea.service.id))
        .await;
    assert_eq!(
        activity.first().map(|r| r.id),
        Some(record.id),
        "{activity:#?}"
    );
    assert!(activity[0].duration_ms.is_some_and(|d| d >= 0));
    assert_eq!(activity[0].actor, "operator-user");
    stack
        .wait_healthy(WAIT)
        .await
        .expect("gitea answers again after its restart");

    // A crash loop shows in the restart count: the cache follows the
    // engine's events (nobody asks the engine for this container). Started
    // only now, so the engine's restart backoff (doubling from 100 ms) is short.
    let flaky = stack
        .add_crashing("flaky")
        .await
        .expect("the crashing container");
    let flaky_svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "flaky", "container_name": flaky, "engine": "main"}),
            )
            .await,
        "create flaky",
    )
    .await;
    let restarts = async || -> Result<i64, String> {
        let o: ServiceOverview = viewer
            .json(&format!("/api/v1/services/{}", flaky_svc.id))
            .await;
        o.containers
            .first()
            .map(|c| c.restart_count)
            .ok_or_else(|| format!("no container: {o:?}"))
    };
    let first = poll(WAIT, "flaky restarted once", async || {
        restarts().await.and_then(|n| {
            if n >= 1 {
                Ok(n)
            } else {
                Err(format!("restart_count {n}"))
            }
        })
    })
    .await;
    poll(WAIT, "flaky's restart count grew", async || {
        restarts().await.and_then(|n| {
            if n > first {
                Ok(n)
            } else {
                Err(format!("restart_count {n}"))
            }
        })
    })
    .await;

    // Stopping a critical service needs its name typed.
    let postgres = &all["postgres"].service;
    let res = action(
        &operator,
        postgres.id,
        json!({"action": "stop", "timeout_secs": 1}),
    )
    .await;
    assert_eq!(res.status(), 428);
    assert_eq!(error_code(res).await, "confirmation_required");
    let res = action(
        &operator,
        postgres.id,
        json!({"action": "stop", "timeout_secs": 1, "confirm": "postgre"}),
    )
    .await;
    assert_eq!(res.status(), 428);
    assert_eq!(
        overview(&viewer).await["postgres"].run_state,
        RunState::Running,
        "refused actions do nothing"
    );
    let record: ActionRecord = ok_json(
        action(
            &operator,
            postgres.id,
            json!({"action": "stop", "timeout_secs": 1, "confirm": "postgres"}),
        )
        .await,
        "stop postgres",
    )
    .await;
    succeeded(&record);
    wait_state(&viewer, &["postgres"], RunState::Stopped).await;
    // woodpecker is impacted; the root cause is postgres.
    let rc: GraphQueryResult = viewer
        .json("/api/v1/graph/query?kind=root_cause&services=woodpecker")
        .await;
    assert_eq!(rc.services, vec!["postgres".to_owned()]);
    let record: ActionRecord = ok_json(
        action(&operator, postgres.id, json!({"action": "start"})).await,
        "start postgres",
    )
    .await;
    succeeded(&record);
    wait_state(&viewer, &["postgres"], RunState::Running).await;

    // Stack restart: stops dependents first, starts dependencies first, as
    // the engine's own start events show.
    let path = format!("/api/v1/stacks/{}/actions", stack.project);
    let res = operator
        .post(&path, &json!({"action": "restart", "timeout_secs": 1}))
        .await;
    assert_eq!(res.status(), 428, "the stack holds critical services");
    let t0 = chrono::Utc::now();
    let record: ActionRecord = ok_json(
        operator
            .post(
                &path,
                &json!({"action": "restart", "timeout_secs": 1, "confirm": stack.project}),
            )
            .await,
        "stack restart",
    )
    .await;
    let t1 = chrono::Utc::now() + chrono::Duration::seconds(1);
    succeeded(&record);
    assert_eq!(record.kind, "stack.restart");
    assert_eq!(record.steps.len(), 2 * MOSAIC.len(), "{record:#?}");
    let filters = HashMap::from([
        ("type", vec!["container".to_owned()]),
        ("event", vec!["start".to_owned()]),
        (
            "label",
            vec![format!("com.docker.compose.project={}", stack.project)],
        ),
    ]);
    let options = EventsOptionsBuilder::default()
        .since(&docker_time(t0))
        .until(&docker_time(t1))
        .filters(&filters)
        .build();
    let events: Vec<_> = tokio::time::timeout(
        Duration::from_secs(30),
        stack.docker().events(Some(options)).collect::<Vec<_>>(),
    )
    .await
    .expect("the engine's events within 30 s");
    let mut starts: Vec<(i64, String)> = events
        .into_iter()
        .map(|e| e.expect("an event"))
        .filter(|e| e.action.as_deref() == Some("start"))
        .filter_map(|e| {
            let svc = e
                .actor?
                .attributes?
                .get("com.docker.compose.service")?
                .clone();
            Some((e.time_nano.unwrap_or_default(), svc))
        })
        .collect();
    starts.sort();
    let order: Vec<String> = starts.into_iter().map(|(_, s)| s).collect();
    assert_eq!(
        order.len(),
        MOSAIC.len(),
        "one start per service: {order:?}"
    );
    let pos = |n: &str| order.iter().position(|s| s == n).unwrap_or(usize::MAX);
    for s in MOSAIC {
        for dep in s.requires {
            assert!(
                pos(dep) < pos(s.name),
                "{dep} must start before {}: engine order {order:?}",
                s.name
            );
        }
    }
    assert!(pos("mariadb") < pos("gitea") && pos("redis") < pos("gitea"));
    assert!(pos("gitea") < pos("woodpecker") && pos("postgres") < pos("woodpecker"));
    wait_state(&viewer, &names(MOSAIC), RunState::Running).await;
    let activity: Vec<ActionRecord> = viewer
        .json(&format!("/api/v1/stacks/{}/activity", stack.project))
        .await;
    assert_eq!(activity.first().map(|r| r.id), Some(record.id));

    // Every action is audited.
    let page: AuditPage = admin
        .json("/api/v1/audit?action=container.&limit=200")
        .await;
    for (a, target) in [
        ("container.restart", "service:gitea"),
        ("container.stop", "service:postgres"),
        ("container.start", "service:postgres"),
    ] {
        assert!(
            page.entries
                .iter()
                .any(|e| e.action == a && e.target.as_deref() == Some(target)),
            "no audit entry {a} {target}: {page:#?}"
        );
    }
    let page: AuditPage = admin.json("/api/v1/audit?action=stack.restart").await;
    assert_eq!(page.entries.len(), 1, "{page:#?}");
    assert_eq!(
        page.entries[0].target.as_deref(),
        Some(format!("stack:{}", stack.project).as_str())
    );
    let page: AuditPage = admin.json("/api/v1/audit?action=request.unaudited").await;
    assert!(page.entries.is_empty(), "{page:#?}");

    drop(stack);
    server.stop().await;
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_exec_stats_inspect_and_other_actions() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    register(&admin, "main", &engine.host()).await;
    let forge = [ServiceSpec {
        requires: &[],
        ..MOSAIC[3]
    }];
    assert_eq!(forge[0].name, "gitea");
    let stack = Stack::up(&engine, "forge", &forge)
        .await
        .expect("forge stack");
    wait_engine(&viewer, "main", EngineState::Connected).await;
    import(&admin, &stack, "main").await;
    let all = wait_state(&viewer, &["gitea"], RunState::Running).await;
    let id = all["gitea"].service.id;
    let container = stack.container("gitea");

    // Logs: the tail, a filter, timestamps, a download.
    let res = operator
        .get(&format!("/api/v1/services/{id}/logs?tail=1000"))
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("logs");
    assert!(text.lines().any(|l| l == "gitea starting"), "{text}");
    let res = operator
        .get(&format!(
            "/api/v1/services/{id}/logs?tail=1000&filter=STARTING"
        ))
        .await;
    let text = res.text().await.expect("filtered logs");
    assert!(!text.is_empty(), "the filter keeps the startup line");
    assert!(
        text.lines().all(|l| l.to_lowercase().contains("starting")),
        "{text}"
    );
    let res = operator
        .get(&format!(
            "/api/v1/services/{id}/logs?tail=1&timestamps=true"
        ))
        .await;
    let text = res.text().await.expect("logs with timestamps");
    let stamp = text.split_whitespace().next().unwrap_or_default();
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok(),
        "a timestamp first: {text:?}"
    );
    let res = operator
        .get(&format!("/api/v1/services/{id}/logs?download=true"))
        .await;
    let disposition = res
        .headers()
        .get(reqwest::header::CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        disposition.starts_with("attachment;") && disposition.contains("gitea-"),
        "{disposition}"
    );
    let res = operator
        .get(&format!("/api/v1/services/{id}/logs?tail=20000"))
        .await;
    expect_error(res, 400).await;

    // Follow: a line written after subscribing arrives as an SSE `line`.
    let res = operator
        .get(&format!("/api/v1/services/{id}/logs?follow=true&tail=0"))
        .await;
    assert_eq!(res.status(), 200);
    let marker = format!("marker-{}", stack.project);
    let writer = {
        let (operator, marker) = (operator.clone(), marker.clone());
        tokio::spawn(async move {
            // Repeated until the reader has it: the engine attaches the
            // follow stream a moment after the response headers.
            loop {
                let r: ExecResult = ok_json(
                    operator
                        .post(
                            &format!("/api/v1/services/{id}/exec"),
                            &json!({"argv": ["sh", "-c", format!("echo {marker} > /proc/1/fd/1")]}),
                        )
                        .await,
                    "exec writing to the container's stdout",
                )
                .await;
                assert_eq!(r.exit_code, Some(0), "{r:?}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    let (_, line) = sse_until(res, WAIT, "log follow", |e, d| e == "line" && d == marker).await;
    writer.abort();
    assert_eq!(line, marker);

    // Exec: output and exit codes, argv only.
    let exec = async |argv: serde_json::Value| -> ExecResult {
        ok_json(
            operator
                .post(
                    &format!("/api/v1/services/{id}/exec"),
                    &json!({"argv": argv}),
                )
                .await,
            "exec",
        )
        .await
    };
    let r = exec(json!(["echo", "hello"])).await;
    assert_eq!(
        (r.stdout.as_str(), r.stderr.as_str(), r.exit_code),
        ("hello\n", "", Some(0))
    );
    // The container it ran in, by name.
    assert_eq!(r.container, all["gitea"].containers[0].name);
    assert!(!r.timed_out && !r.truncated);
    let r = exec(json!(["sh", "-c", "exit 3"])).await;
    assert_eq!(r.exit_code, Some(3));
    let r = exec(json!(["sh", "-c", "echo oops >&2; exit 2"])).await;
    assert_eq!((r.stderr.as_str(), r.exit_code), ("oops\n", Some(2)));
    // No shell unless asked for: the argument is one word.
    let r = exec(json!(["echo", "$HOME; id"])).await;
    assert_eq!(r.stdout, "$HOME; id\n");
    let res = operator
        .post(&format!("/api/v1/services/{id}/exec"), &json!({"argv": []}))
        .await;
    expect_error(res, 400).await;
    let res = operator
        .post(
            &format!("/api/v1/services/{id}/exec"),
            &json!({"argv": ["sleep", "30"], "timeout_secs": 1}),
        )
        .await;
    let r: ExecResult = ok_json(res, "exec with a timeout").await;
    assert!(r.timed_out && r.exit_code.is_none(), "{r:?}");
    let page: AuditPage = admin
        .json("/api/v1/audit?action=container.exec&limit=200")
        .await;
    assert!(
        page.entries
            .iter()
            .any(|e| e.params["argv"] == json!(["sh", "-c", "exit 3"])
                && e.detail.as_deref() == Some("exit code 3")),
        "exec is audited with its argv and exit code"
    );

    // Stats of the running container.
    let stats: Vec<ContainerStats> = viewer.json(&format!("/api/v1/services/{id}/stats")).await;
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert_eq!(stats[0].name, container);
    assert!(stats[0].memory_bytes > 0, "{stats:?}");
    assert!(stats[0].pids >= 2, "sh and httpd at least: {stats:?}");

    // Inspect masks secret-looking environment values (operators only).
    assert_eq!(
        viewer
            .get(&format!("/api/v1/services/{id}/inspect"))
            .await
            .status(),
        403
    );
    let res = operator
        .get(&format!("/api/v1/services/{id}/inspect"))
        .await;
    assert_eq!(res.status(), 200);
    let text = res.text().await.expect("inspect");
    assert!(!text.contains(SECRET_VALUE), "the secret leaked: {text}");
    let docs: Vec<serde_json::Value> = serde_json::from_str(&text).expect("JSON");
    let env: Vec<&str> = docs[0]["Config"]["Env"]
        .as_array()
        .expect("Config.Env")
        .iter()
        .filter_map(|v| v.as_str())
        .collect();
    assert!(
        env.contains(&format!("{SECRET_ENV}=***").as_str()),
        "{env:?}"
    );
    assert!(
        env.contains(&"GITEA__server__DOMAIN=git.example"),
        "{env:?}"
    );
    assert_eq!(docs[0]["Name"], format!("/{container}"));

    // Pause and unpause; kill (a signal from the list only) and start.
    let run = async |body: serde_json::Value| -> ActionRecord {
        let r: ActionRecord = ok_json(action(&operator, id, body.clone()).await, "action").await;
        succeeded(&r);
        r
    };
    // An action on a service with an open incident shows on the incident's
    // timeline (incidents lends actions that knowledge through the hook it
    // registers; actions does not import incidents).
    let incident = opsdeck_e2e::flows::incidents::declare(
        &operator,
        json!({"title": "forge is slow", "severity": "P3", "services": [id]}),
    )
    .await;
    run(json!({"action": "pause"})).await;
    wait_state(&viewer, &["gitea"], RunState::Paused).await;
    let detail = opsdeck_e2e::flows::incidents::detail(&viewer, incident.id).await;
    assert!(
        detail.timeline.iter().any(|e| e.kind == "action"),
        "the action is on the open incident's timeline: {:?}",
        detail.timeline
    );
    run(json!({"action": "unpause"})).await;
    wait_state(&viewer, &["gitea"], RunState::Running).await;
    let res = action(
        &operator,
        id,
        json!({"action": "kill", "signal": "SIGBOGUS"}),
    )
    .await;
    expect_error(res, 400).await;
    let res = action(&operator, id, json!({"action": "explode"})).await;
    assert!(res.status().is_client_error(), "{}", res.status());
    let r = run(json!({"action": "kill"})).await;
    assert_eq!(r.params["signal"], "SIGKILL");
    let stopped = wait_state(&viewer, &["gitea"], RunState::Stopped).await;
    assert!(stopped["gitea"].containers[0]
        .status
        .starts_with("exited (137)"));
    // Logs of a stopped container still read; exec needs a running one.
    let res = operator.get(&format!("/api/v1/services/{id}/logs")).await;
    assert_eq!(res.status(), 200);
    // Viewers see states, not logs.
    let res = viewer.get(&format!("/api/v1/services/{id}/logs")).await;
    assert_eq!(res.status(), 403);
    let res = operator
        .post(
            &format!("/api/v1/services/{id}/exec"),
            &json!({"argv": ["true"]}),
        )
        .await;
    assert_eq!(res.status(), 409);
    run(json!({"action": "start"})).await;
    wait_state(&viewer, &["gitea"], RunState::Running).await;
    stack.wait_healthy(WAIT).await.expect("gitea answers again");
    let page: AuditPage = admin
        .json("/api/v1/audit?action=container.&limit=200")
        .await;
    for a in [
        "container.pause",
        "container.unpause",
        "container.kill",
        "container.start",
        "container.exec",
    ] {
        assert!(
            page.entries
                .iter()
                .any(|e| e.action == a && e.target.as_deref() == Some("service:gitea")),
            "no audit entry {a}"
        );
    }

    drop(stack);
    server.stop().await;
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_engine_that_goes_away_fails_fast_and_comes_back() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let dir = tempfile::Builder::new()
        .prefix("odk-relay-")
        .tempdir_in("/tmp")
        .expect("relay dir");
    let socket = dir.path().join("docker.sock");
    let mut relay = Relay::new(&socket, &engine.dir().join("docker.sock"));
    relay.start();

    register(&admin, "main", &engine.host()).await;
    register(&admin, "relay", &format!("unix://{}", socket.display())).await;
    let docs = Stack::up(&engine, "docs", DOCS).await.expect("docs stack");
    let shop = Stack::up(&engine, "shop", SHOP).await.expect("shop stack");
    wait_engine(&admin, "main", EngineState::Connected).await;
    wait_engine(&admin, "relay", EngineState::Connected).await;
    import(&admin, &docs, "main").await;
    import(&admin, &shop, "relay").await;
    let all = wait_state(
        &admin,
        &["docs", "search", "shop", "shopdb"],
        RunState::Running,
    )
    .await;
    assert_eq!(all["shop"].containers[0].engine, "relay");
    assert_eq!(all["docs"].containers[0].engine, "main");
    let shop_id = all["shop"].service.id;

    // The engine goes away mid-session.
    relay.stop();
    let down = wait_engine(&admin, "relay", EngineState::Unreachable).await;
    assert!(
        down.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "{down:?}"
    );
    assert_eq!(
        wait_engine(&admin, "main", EngineState::Connected)
            .await
            .name,
        "main"
    );

    // Actions on its services fail at once with a clear error.
    let res = action(
        &operator,
        shop_id,
        json!({"action": "restart", "timeout_secs": 1}),
    )
    .await;
    let msg = expect_error(res, 503).await;
    assert!(msg.contains("\"relay\""), "names the engine: {msg}");
    let res = operator
        .post(
            &format!("/api/v1/services/{shop_id}/exec"),
            &json!({"argv": ["true"]}),
        )
        .await;
    expect_error(res, 503).await;
    let res = operator
        .get(&format!("/api/v1/services/{shop_id}/logs"))
        .await;
    expect_error(res, 503).await;
    let res = operator
        .post(
            &format!("/api/v1/stacks/{}/actions", shop.project),
            &json!({"action": "start"}),
        )
        .await;
    expect_error(res, 503).await;
    let activity: Vec<ActionRecord> = operator
        .json(&format!("/api/v1/services/{shop_id}/activity"))
        .await;
    assert!(
        activity.is_empty(),
        "nothing ran, nothing recorded: {activity:#?}"
    );

    // The rest of the panel is fine.
    let all = overview(&operator).await;
    assert_eq!(all["docs"].run_state, RunState::Running);
    assert_eq!(all["search"].run_state, RunState::Running);
    assert_eq!(
        all["shop"].run_state,
        RunState::Unknown,
        "stale, not guessed"
    );
    assert_eq!(
        all["shop"].containers.len(),
        1,
        "the last known state is kept"
    );
    let record: ActionRecord = ok_json(
        action(
            &operator,
            all["search"].service.id,
            json!({"action": "restart", "timeout_secs": 1}),
        )
        .await,
        "restart on the healthy engine",
    )
    .await;
    succeeded(&record);
    assert_eq!(admin.get("/api/v1/me").await.status(), 200);

    // The engine comes back by itself.
    relay.start();
    let up = wait_engine(&admin, "relay", EngineState::Connected).await;
    assert!(up.last_error.is_none(), "{up:?}");
    wait_state(&admin, &["shop", "shopdb"], RunState::Running).await;
    let record: ActionRecord = ok_json(
        action(
            &operator,
            shop_id,
            json!({"action": "restart", "timeout_secs": 1}),
        )
        .await,
        "restart after recovery",
    )
    .await;
    succeeded(&record);
    wait_state(&admin, &["shop"], RunState::Running).await;

    let page: AuditPage = admin.json("/api/v1/audit?action=container.restart").await;
    let targets: Vec<&str> = page
        .entries
        .iter()
        .filter_map(|e| e.target.as_deref())
        .collect();
    assert!(
        targets.contains(&"service:shop") && targets.contains(&"service:search"),
        "{targets:?}"
    );
    let page: AuditPage = admin.json("/api/v1/audit?action=request.failed").await;
    let refused = format!("POST /api/v1/services/{shop_id}/actions");
    assert!(
        page.entries
            .iter()
            .any(|e| e.target.as_deref() == Some(refused.as_str()) && e.params["status"] == 503),
        "the refused action is audited as a failed request: {page:#?}"
    );

    drop(relay);
    drop((docs, shop));
    server.stop().await;
    release(engine).await;
}

/// An engine over TCP with mutual TLS (the private engine's second
/// listener, `--tlsverify`, certificates made by `openssl` for the run):
/// registered with the CA, client certificate and key paths it connects,
/// negotiates and caches the same containers as over the Unix socket; the
/// same endpoint without the client certificate, or with a wrong CA, stays
/// unreachable with the reason shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_over_tcp_with_client_certificates() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let tls = engine.tls().clone();
    let path = |p: &std::path::Path| p.display().to_string();
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "tls", "endpoint": tls.url, "tls_ca": path(&tls.ca),
                    "tls_cert": path(&tls.cert), "tls_key": path(&tls.key)}),
        )
        .await;
    assert_eq!(res.status(), 201, "registering the TLS engine");
    let registered: Engine = res.json().await.expect("engine");
    assert!(registered.tls, "the engine is shown as using TLS");
    register(&admin, "plain", &engine.host()).await;
    let tls_engine = wait_engine(&admin, "tls", EngineState::Connected).await;
    let plain = wait_engine(&admin, "plain", EngineState::Connected).await;
    assert_eq!(tls_engine.version, plain.version, "the same engine");
    assert!(tls_engine.api_version.is_some());
    // The same containers through both doors (the count can move while
    // other tests run; compare the sets a moment apart).
    let ids = |list: Vec<opsdeck_wire::ContainerInfo>| -> std::collections::BTreeSet<String> {
        list.into_iter().map(|c| c.id).collect()
    };
    poll(
        WAIT,
        "the same containers over TLS and the socket",
        async || {
            let a = ids(admin
                .json(&format!("/api/v1/engines/{}/containers", tls_engine.id))
                .await);
            let b = ids(admin
                .json(&format!("/api/v1/engines/{}/containers", plain.id))
                .await);
            if a == b {
                Ok(())
            } else {
                Err(format!("tls {} vs socket {}", a.len(), b.len()))
            }
        },
    )
    .await;

    // No client certificate: the engine refuses the connection.
    register(&admin, "no-cert", &tls.url).await;
    let refused = wait_engine(&admin, "no-cert", EngineState::Unreachable).await;
    assert!(
        refused.last_error.as_deref().is_some_and(|e| !e.is_empty()),
        "{refused:?}"
    );
    // A CA that did not sign the server's certificate: Opsdeck refuses it.
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "wrong-ca", "endpoint": tls.url, "tls_ca": path(&tls.cert),
                    "tls_cert": path(&tls.cert), "tls_key": path(&tls.key)}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let wrong = wait_engine(&admin, "wrong-ca", EngineState::Unreachable).await;
    assert!(wrong.last_error.is_some(), "{wrong:?}");
    // TLS settings are all-or-nothing, and only for tcp://.
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "half", "endpoint": tls.url, "tls_ca": path(&tls.ca)}),
        )
        .await;
    expect_error(res, 400).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "unix-tls", "endpoint": engine.host(), "tls_ca": path(&tls.ca),
                    "tls_cert": path(&tls.cert), "tls_key": path(&tls.key)}),
        )
        .await;
    expect_error(res, 400).await;
    server.stop().await;
    release(engine).await;
}
