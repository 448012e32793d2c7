//! Log search across services and time on the private engine: busybox
//! containers write known lines; the answer's hits, merge order, regex,
//! level guess, context, time bounds and truncation are checked against
//! them, as are a container restarting during a search and an engine
//! going away in the middle of one (partial results with a clear error),
//! the text download, the refusals and the audit entry.

use std::time::Duration;

use chrono::{DateTime, Utc};
use opsdeck::config::Secret;
use opsdeck_e2e::dockerd::PrivateDockerd;
use opsdeck_e2e::flows::containers::connect_engine;
use opsdeck_e2e::relay::Relay;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::Stack;
use opsdeck_e2e::util::{engine, expect_error, ok_json, poll, release};
use opsdeck_wire::{
    AuditPage, CheckStatus, LogEvent, LogHit, LogLevel, LogSearchEnd, LogSourceError, Report,
    ReportItem, Role, Service, ServiceOverview,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(60);

/// 200 requests, every 20th failing (10 `ERROR request N failed`), then a
/// marker, a pause, and a late error.
const API: &str = r#"trap 'exit 0' TERM
i=0
while [ $i -lt 200 ]; do
  i=$((i+1))
  echo "INFO request $i ok"
  if [ $((i % 20)) -eq 0 ]; then echo "ERROR request $i failed code=503"; fi
done
echo "api phase one done"
sleep 2
echo "ERROR late failure after the pause"
sleep 3600 & wait $!"#;

/// A warning, a JSON error line and 20 ticks interleaved with `ticker`.
const WORKER: &str = r#"trap 'exit 0' TERM
echo "WARN queue slow"
echo '{"level":"error","msg":"job 7 failed"}'
for i in $(seq 1 20); do echo "tick worker $i"; sleep 0.1; done
sleep 3600 & wait $!"#;

const TICKER: &str = r#"trap 'exit 0' TERM
sleep 0.05
for i in $(seq 1 20); do echo "tick ticker $i"; sleep 0.1; done
sleep 3600 & wait $!"#;

/// 30,000 lines with a needle every 10,000 (3 needles), read through a slow relay.
const BIG: &str = r#"trap 'exit 0' TERM
seq 1 30000 | sed -e 's/^/filler line /' -e 's/0000$/0000 needle/'
sleep 3600 & wait $!"#;

/// The events of one search's answer.
struct Answer {
    lines: Vec<LogHit>,
    errors: Vec<LogSourceError>,
    end: LogSearchEnd,
}

impl Answer {
    fn hits(&self) -> Vec<&LogHit> {
        self.lines.iter().filter(|l| l.hit).collect()
    }
    fn texts(&self) -> Vec<&str> {
        self.hits().iter().map(|l| l.line.as_str()).collect()
    }
}

fn parse(body: &str) -> Answer {
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    let mut end = None;
    for raw in body.lines() {
        assert!(end.is_none(), "an event after the end: {raw}");
        match serde_json::from_str::<LogEvent>(raw).expect("an NDJSON event") {
            LogEvent::Line(h) => lines.push(h),
            LogEvent::Error(e) => errors.push(e),
            LogEvent::End(e) => end = Some(e),
        }
    }
    Answer {
        lines,
        errors,
        end: end.expect("the answer ends with an end event"),
    }
}

async fn search(api: &Api, body: Value) -> Answer {
    let res = api.post("/api/v1/logs/search", &body).await;
    let status = res.status();
    let kind = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let text = res.text().await.unwrap_or_default();
    assert_eq!(status, 200, "search {body}: {text}");
    assert_eq!(kind, "application/x-ndjson");
    parse(&text)
}

fn in_order(lines: &[LogHit]) {
    for w in lines.windows(2) {
        assert!(
            w[0].ts <= w[1].ts,
            "out of order: {:?} then {:?}",
            w[0],
            w[1]
        );
    }
}

async fn create_service(admin: &Api, name: &str, engine: &str, project: &str) -> Service {
    ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": name, "engine": engine, "compose_project": project,
                        "compose_service": name}),
            )
            .await,
        "creating a service",
    )
    .await
}

/// Waits until every named service has its container in the cache.
async fn wait_containers(api: &Api, names: &[&str]) {
    poll(WAIT, "the services' containers", async || {
        let all: Vec<ServiceOverview> = api.json("/api/v1/services").await;
        let missing: Vec<&&str> = names
            .iter()
            .filter(|n| {
                !all.iter()
                    .any(|o| o.service.name == **n && !o.containers.is_empty())
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(format!("no container yet: {missing:?}"))
        }
    })
    .await;
}

/// The three loggers (`api`, `worker`, `ticker`) of a new project on the
/// engine registered as `main`, once their first lines are written.
pub struct Loggers {
    pub stack: Stack,
    pub api: Service,
    pub worker: Service,
}

pub async fn loggers(admin: &Api, operator: &Api, engine: &PrivateDockerd) -> Loggers {
    connect_engine(admin, "main", &engine.host()).await;
    let mut stack = Stack::up(engine, "logs", &[]).await.expect("a project");
    let project = stack.project.clone();
    for (name, script) in [("api", API), ("worker", WORKER), ("ticker", TICKER)] {
        stack.add_script(name, script).await.expect("a logger");
    }
    let api = create_service(admin, "api", "main", &project).await;
    let worker = create_service(admin, "worker", "main", &project).await;
    create_service(admin, "ticker", "main", &project).await;
    wait_containers(operator, &["api", "worker", "ticker"]).await;
    // Every script has written its lines (the api its late one).
    poll(WAIT, "the loggers' lines", async || {
        let a = search(
            operator,
            json!({"projects": [project], "query": "late failure|tick (worker|ticker) 20$", "regex": true}),
        )
        .await;
        (a.end.counts.iter().map(|c| c.hits).sum::<u64>() == 3)
            .then_some(())
            .ok_or_else(|| format!("{:?}", a.texts()))
    })
    .await;
    Loggers { stack, api, worker }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_merges_filters_and_bounds_lines_across_services() {
    let Some(engine) = engine().await else { return };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let Loggers {
        stack,
        api: api_svc,
        worker: worker_svc,
    } = loggers(&admin, &operator, &engine).await;
    let project = stack.project.clone();

    // A regex over one service: the ten failures, in order, with their service.
    let a = search(
        &operator,
        json!({"services": [api_svc.id], "query": r"ERROR request \d+ failed", "regex": true}),
    )
    .await;
    let want: Vec<String> = (1..=10)
        .map(|k| format!("ERROR request {} failed code=503", k * 20))
        .collect();
    assert_eq!(a.texts(), want);
    assert!(a.hits().iter().all(|h| h.service == "api"
        && h.service_id == api_svc.id
        && h.container == stack.container("api")
        && h.level == Some(LogLevel::Error)));
    in_order(&a.lines);
    assert!(!a.end.truncated && a.errors.is_empty() && a.end.errors.is_empty());
    assert_eq!(a.end.containers, 1);
    assert_eq!(a.end.counts.len(), 1);
    assert_eq!(a.end.counts[0].hits, 10);
    assert_eq!(a.end.counts[0].scanned, 200 + 10 + 2);

    // Text is case-insensitive and literal; the whole stack; the JSON line's level.
    let a = search(&operator, json!({"projects": [project], "query": "FAILED"})).await;
    assert_eq!(a.hits().len(), 11, "{:?}", a.texts());
    let job = a
        .hits()
        .into_iter()
        .find(|h| h.service == "worker")
        .expect("the worker's JSON line");
    assert_eq!(job.level, Some(LogLevel::Error));
    let counts: Vec<(String, u64)> = a
        .end
        .counts
        .iter()
        .map(|c| (c.service.clone(), c.hits))
        .collect();
    assert!(counts.contains(&("api".into(), 10)) && counts.contains(&("worker".into(), 1)));
    assert!(counts.contains(&("ticker".into(), 0)), "{counts:?}");
    // `.` is not a wildcard in a text search.
    let none = search(
        &operator,
        json!({"projects": [project], "query": "request 2. failed"}),
    )
    .await;
    assert!(none.hits().is_empty());

    // Merged by timestamp across containers: the ticks interleave.
    let a = search(&operator, json!({"projects": [project], "query": "tick "})).await;
    assert_eq!(a.hits().len(), 40);
    in_order(&a.lines);
    let switches = a
        .lines
        .windows(2)
        .filter(|w| w[0].container != w[1].container)
        .count();
    assert!(
        switches >= 20,
        "the two tickers' lines should interleave: {switches} switches"
    );

    // A level: warnings and worse, no query.
    let a = search(
        &operator,
        json!({"services": [api_svc.id, worker_svc.id], "level": "warn"}),
    )
    .await;
    assert_eq!(a.hits().len(), 10 + 1 + 1 + 1, "{:?}", a.texts());
    assert!(a.texts().contains(&"WARN queue slow"));

    // Context: one line around each failure, none twice.
    let a = search(
        &operator,
        json!({"services": [api_svc.id], "query": "request 40 failed", "context": 1}),
    )
    .await;
    let around: Vec<(&str, bool)> = a.lines.iter().map(|l| (l.line.as_str(), l.hit)).collect();
    assert_eq!(
        around,
        [
            ("INFO request 40 ok", false),
            ("ERROR request 40 failed code=503", true),
            ("INFO request 41 ok", false),
        ]
    );

    // The cap: the first three hits, then `truncated`.
    let a = search(
        &operator,
        json!({"services": [api_svc.id], "query": "failed", "limit": 3}),
    )
    .await;
    assert_eq!(a.hits().len(), 3);
    assert!(a.end.truncated);
    assert_eq!(a.texts()[0], "ERROR request 20 failed code=503");

    // Time bounds: from just after "phase one done", only the late line.
    let marker = search(
        &operator,
        json!({"services": [api_svc.id], "query": "phase one done"}),
    )
    .await;
    let t: DateTime<Utc> = marker.hits()[0].ts + chrono::Duration::milliseconds(1);
    let a = search(
        &operator,
        json!({"services": [api_svc.id], "since": t.to_rfc3339(), "query": "error"}),
    )
    .await;
    assert_eq!(a.texts(), ["ERROR late failure after the pause"]);
    assert!(a.end.since == t);
    let until = search(
        &operator,
        json!({"services": [api_svc.id], "until": t.to_rfc3339(), "query": "late"}),
    )
    .await;
    assert!(until.hits().is_empty());

    // The download: grep's format.
    let res = operator
        .post(
            "/api/v1/logs/search?format=text",
            &json!({"services": [api_svc.id], "query": "request 60 failed", "context": 1}),
        )
        .await;
    assert_eq!(res.status(), 200);
    assert!(res
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("attachment;")));
    let text = res.text().await.unwrap();
    let body: Vec<&str> = text.lines().collect();
    assert_eq!(body.len(), 4, "{text}");
    let api_c = stack.container("api");
    assert!(
        body[0].ends_with(&format!("{api_c}- INFO request 60 ok")),
        "{text}"
    );
    assert!(
        body[1].ends_with(&format!("{api_c}: ERROR request 60 failed code=503")),
        "{text}"
    );
    assert!(body[3].starts_with("# 1 hits in 1 containers"), "{text}");

    // Refusals: a bad regex, a bad range, an unknown service, a viewer.
    let res = operator
        .post(
            "/api/v1/logs/search",
            &json!({"query": "(open", "regex": true}),
        )
        .await;
    let m = expect_error(res, 400).await;
    assert!(m.starts_with("query: not a regular expression"), "{m}");
    let res = operator
        .post(
            "/api/v1/logs/search",
            &json!({"since": "1h", "until": "2h"}),
        )
        .await;
    let m = expect_error(res, 400).await;
    assert!(m.contains("since: must be before until"), "{m}");
    let res = operator
        .post("/api/v1/logs/search", &json!({"services": [999_999]}))
        .await;
    let m = expect_error(res, 404).await;
    assert!(m.contains("service 999999"), "{m}");
    let res = viewer
        .post("/api/v1/logs/search", &json!({"query": "x"}))
        .await;
    assert_eq!(res.status(), 403);

    // The daily report's log summary: error lines per service over 24 h.
    let report: Report = ok_json(
        operator.post("/api/v1/reports", &json!({})).await,
        "generating a report",
    )
    .await;
    let logs: Vec<&ReportItem> = report
        .items
        .iter()
        .filter(|i| i.section == "logs")
        .collect();
    let api_item = logs.iter().find(|i| i.name == "api").expect("api's errors");
    assert_eq!(api_item.status, CheckStatus::Warning);
    assert!(
        api_item
            .detail
            .starts_with("11 error lines in 24 h; newest: ")
            && api_item
                .detail
                .ends_with("ERROR late failure after the pause"),
        "{}",
        api_item.detail
    );
    let worker_item = logs
        .iter()
        .find(|i| i.name == "worker")
        .expect("worker's errors");
    assert!(
        worker_item.detail.starts_with("1 error line in 24 h")
            && worker_item.detail.contains("job 7 failed"),
        "{}",
        worker_item.detail
    );
    assert!(
        logs.iter().any(|i| i.status == CheckStatus::Ok
            && i.detail == "1 service logged no error lines in 24 h"),
        "{logs:?}"
    );

    // Audited with the query.
    let page: AuditPage = admin
        .json("/api/v1/audit?action=logs.search&limit=50")
        .await;
    assert!(page.entries.iter().any(|e| e.actor == "operator-user"
        && e.params["query"] == r"ERROR request \d+ failed"
        && e.params["regex"] == true));

    drop(stack);
    server.stop().await;
    release(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_mid_search_is_read_through_and_an_engine_gone_mid_search_is_reported() {
    let Some(engine) = engine().await else { return };
    const TOKEN: &str = "scrape-me-0123456789abcdef";
    let server = TestServer::start_with(|s| s.metrics_token = Some(Secret::new(TOKEN))).await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    // About 200 KB/s on a TCP port (a remote engine for Opsdeck: read
    // through the logs API): the big log (~1.5 MB with frames and
    // timestamps) takes several seconds to read.
    let mut relay = Relay::slow_tcp(&engine.dir().join("docker.sock"), 200 * 1024);
    relay.start();
    for (name, endpoint) in [("main", engine.host()), ("slow", relay.endpoint())] {
        connect_engine(&admin, name, &endpoint).await;
    }
    let mut stack = Stack::up(&engine, "logs-big", &[])
        .await
        .expect("a project");
    let project = stack.project.clone();
    let big_c = stack.add_script("big", BIG).await.expect("the big logger");
    stack.add_script("api", API).await.expect("a logger");
    let big = create_service(&admin, "big", "slow", &project).await;
    let api = create_service(&admin, "api", "main", &project).await;
    wait_containers(&operator, &["big", "api"]).await;
    poll(WAIT, "the big log written", async || {
        let a = search(
            &operator,
            json!({"services": [api.id], "query": "late failure"}),
        )
        .await;
        (a.hits().len() == 1)
            .then_some(())
            .ok_or("not yet".to_owned())
    })
    .await;
    let docker = stack.docker().clone();
    poll(WAIT, "30000 lines logged", async || {
        let logs = read_all(&docker, &big_c).await;
        logs.contains("filler line 30000 needle")
            .then_some(())
            .ok_or("not yet".to_owned())
    })
    .await;

    // The same container as a service of the local engine: read from its
    // log file, the answer is the API's, line for line and time for time.
    let direct: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "big-direct", "engine": "main", "compose_project": project,
                        "compose_service": "big"}),
            )
            .await,
        "creating a second service on the same container",
    )
    .await;
    wait_containers(&operator, &["big-direct"]).await;
    let window = json!({"query": "needle|line 1\\d{3}$", "regex": true, "context": 1, "limit": 2000,
                        "since": "1h", "until": Utc::now().to_rfc3339()});
    let mut through_api = window.clone();
    through_api["services"] = json!([big.id]);
    let mut from_file = window;
    from_file["services"] = json!([direct.id]);
    let (a, f) = (
        search(&operator, through_api).await,
        search(&operator, from_file).await,
    );
    assert!(
        a.errors.is_empty() && f.errors.is_empty(),
        "{:?} {:?}",
        a.errors,
        f.errors
    );
    assert!(a.lines.len() > 1_000, "{} lines", a.lines.len());
    let key = |l: &LogHit| (l.ts, l.line.clone(), l.hit);
    assert!(
        a.lines.iter().map(key).eq(f.lines.iter().map(key)),
        "the API's and the file's answers differ"
    );
    assert_eq!(a.end.counts[0].scanned, f.end.counts[0].scanned);
    let scraper = Api::with_token(&server.base, TOKEN);
    let metrics = scraper
        .get("/metrics")
        .await
        .text()
        .await
        .unwrap_or_default();
    for via in ["file", "api"] {
        let series = format!("opsdeck_log_search_sources_total{{via=\"{via}\"}} ");
        assert!(metrics.contains(&series), "no {series} in {metrics}");
    }
    let removed = admin
        .delete(&format!("/api/v1/services/{}", direct.id))
        .await;
    assert!(removed.status().is_success(), "{}", removed.status());

    // A restart while the slow engine is still sending: the search reads on.
    let mut res = operator
        .post(
            "/api/v1/logs/search",
            &json!({"services": [big.id], "query": "needle"}),
        )
        .await;
    assert_eq!(res.status(), 200);
    let first = res.chunk().await.expect("reading").expect("a first event");
    let restart = docker.restart_container(
        &big_c,
        Some(
            bollard::query_parameters::RestartContainerOptionsBuilder::default()
                .t(0)
                .build(),
        ),
    );
    restart.await.expect("restarting mid-search");
    let mut body = String::from_utf8_lossy(&first).into_owned();
    while let Some(chunk) = res.chunk().await.expect("reading on") {
        body.push_str(&String::from_utf8_lossy(&chunk));
    }
    let a = parse(&body);
    assert!(a.errors.is_empty(), "{:?}", a.errors);
    assert_eq!(
        a.texts(),
        [
            "filler line 10000 needle",
            "filler line 20000 needle",
            "filler line 30000 needle"
        ]
    );
    assert!(a.end.counts[0].scanned >= 30_000);

    // The slow engine goes away mid-search: the main engine's hits arrive,
    // the big container's error says what broke, and the answer ends.
    let mut res = operator
        .post(
            "/api/v1/logs/search",
            &json!({"services": [big.id, api.id], "query": "needle|failed", "regex": true}),
        )
        .await;
    assert_eq!(res.status(), 200);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    relay.stop();
    let mut body = String::new();
    let read = tokio::time::timeout(WAIT, async {
        while let Some(chunk) = res.chunk().await.expect("reading on") {
            body.push_str(&String::from_utf8_lossy(&chunk));
        }
    });
    read.await
        .expect("the answer ends after the engine went away");
    let a = parse(&body);
    let api_hits = a.hits().iter().filter(|h| h.service == "api").count();
    assert_eq!(api_hits, 10, "the other engine's hits: {:?}", a.texts());
    assert_eq!(a.end.errors.len(), 1, "{:?}", a.end.errors);
    let e = &a.end.errors[0];
    assert_eq!(
        (e.service.as_str(), e.container.as_str()),
        ("big", big_c.as_str())
    );
    assert!(e.message.contains("engine \"slow\""), "{}", e.message);
    assert_eq!(a.errors, a.end.errors);
    assert!(
        a.hits().iter().filter(|h| h.service == "big").count() < 3,
        "the big log was cut before its end"
    );

    drop(stack);
    drop(relay);
    server.stop().await;
    release(engine).await;
}

/// The container's whole log, straight from the engine.
async fn read_all(docker: &bollard::Docker, container: &str) -> String {
    use futures::StreamExt;
    let mut out = String::new();
    let mut s = docker.logs(
        container,
        Some(
            bollard::query_parameters::LogsOptionsBuilder::default()
                .stdout(true)
                .stderr(true)
                .tail("5")
                .build(),
        ),
    );
    while let Some(Ok(chunk)) = s.next().await {
        out.push_str(&chunk.to_string());
    }
    out
}
