//! `/metrics`: the bearer token on the main listener (required, wrong ones
//! and sessions refused, GETs never audited), the separate listener of a
//! real `opsdeck serve` configured by environment variables (no auth,
//! nothing else served, off on the main listener), and the metric families
//! with plausible values after checks, runbook runs, an incident with an
//! escalation, backups and HTTP requests.

use std::collections::BTreeMap;
use std::time::Duration;

use opsdeck::config::Secret;
use opsdeck::incidents::escalation;
use opsdeck_e2e::flows::incidents::declare;
use opsdeck_e2e::flows::runbooks::{create, start, wait_run, wait_status};
use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::receiver::Receiver;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::util::{ok_json, poll};
use opsdeck_wire::{Check, Role, RunStatus};
use serde_json::json;

const TOKEN: &str = "scrape-me-0123456789abcdef";

/// One sample of the exposition.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format's samples (label values here have no `,` or `"`).
fn parse(text: &str) -> Vec<Sample> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (head, value) = l.rsplit_once(' ').expect("sample: name value");
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => {
                    let inner = rest.strip_suffix('}').expect("closing brace");
                    let labels = inner
                        .split("\",")
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (k, v) = p.split_once("=\"").expect("label");
                            (k.to_owned(), v.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (n.to_owned(), labels)
                }
                None => (head.to_owned(), BTreeMap::new()),
            };
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|e| panic!("value of {l:?}: {e}")),
            };
            Sample {
                name,
                labels,
                value,
            }
        })
        .collect()
}

/// The value of the one sample named `name` whose labels include `with`.
fn value(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> Option<f64> {
    let found: Vec<&Sample> = samples
        .iter()
        .filter(|s| {
            s.name == name
                && with
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect();
    assert!(
        found.len() <= 1,
        "{name} {with:?} matches several samples: {found:#?}"
    );
    found.first().map(|s| s.value)
}

fn must(samples: &[Sample], name: &str, with: &[(&str, &str)]) -> f64 {
    value(samples, name, with).unwrap_or_else(|| {
        let same: Vec<&Sample> = samples.iter().filter(|s| s.name == name).collect();
        panic!("no {name} {with:?}; samples of that name: {same:#?}")
    })
}

async fn scrape(api: &Api, path: &str) -> (String, Vec<Sample>) {
    let res = api.get(path).await;
    assert_eq!(res.status(), 200, "GET {path}");
    let ct = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let text = res.text().await.expect("body");
    assert!(text.ends_with("# EOF\n"), "the exposition ends with EOF");
    let samples = parse(&text);
    (text, samples)
}

async fn run_check(api: &Api, id: i64) {
    let res = api
        .post(&format!("/api/v1/checks/{id}/run"), &json!({}))
        .await;
    assert_eq!(res.status(), 200, "run check {id}");
}

const NAP: &str = r#"
name: metrics-nap
title: A short nap
steps:
  - name: nap
    kind: sleep
    duration: 10ms
"#;

const WAITS: &str = r#"
name: metrics-waits
title: Waits for a person
steps:
  - name: tick
    kind: manual
    instructions: "Look at the dashboard"
"#;

fn failing(url: &str) -> String {
    format!(
        r#"
name: metrics-fails
title: Fails on an HTTP 500
steps:
  - name: probe
    kind: http
    url: "{url}"
    expect_status: 200
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_need_the_token_and_count_what_happened() {
    let server = TestServer::start_with(|s| {
        s.metrics_token = Some(Secret::new(TOKEN));
        // The test fires escalation levels with its own clock.
        s.escalations = false;
    })
    .await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let anon = Api::new(&server.base);

    // Refused without the token, with a wrong one, and with a session.
    let res = anon.get("/metrics").await;
    assert_eq!(res.status(), 401);
    assert!(res
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer")));
    let wrong = Api::with_token(&server.base, "scrape-me-0123456789abcdeX");
    assert_eq!(wrong.get("/metrics").await.status(), 401);
    assert_eq!(admin.get("/metrics").await.status(), 401);
    let scraper = Api::with_token(&server.base, TOKEN);
    let (_, first) = scrape(&scraper, "/metrics").await;
    assert_eq!(must(&first, "opsdeck_build_info", &[]), 1.0, "build info");
    assert_eq!(must(&first, "opsdeck_read_only", &[]), 0.0);
    assert_eq!(must(&first, "opsdeck_metrics_scrape_errors", &[]), 0.0);
    for sev in ["P1", "P2", "P3", "P4"] {
        assert_eq!(
            must(
                &first,
                "opsdeck_incidents_open",
                &[("severity", sev), ("status", "triggered")]
            ),
            0.0
        );
    }

    // Checks: an HTTP check, probed twice while ok, then once failing.
    let target = Target::start(Behaviour::Ok("fine".into()));
    let check: Check = ok_json(
        op.post(
            "/api/v1/checks",
            &json!({"name": "web", "spec": {"kind": "http", "url": target.url()},
                    "interval_s": 86_400, "timeout_ms": 2000,
                    "fail_after": 1, "recover_after": 1}),
        )
        .await,
        "create check",
    )
    .await;
    run_check(&op, check.id).await;
    run_check(&op, check.id).await;
    let (_, s) = scrape(&scraper, "/metrics").await;
    let web = [("check", "web"), ("kind", "http")];
    assert_eq!(must(&s, "opsdeck_check_engine_leader", &[]), 1.0);
    assert_eq!(must(&s, "opsdeck_check_up", &web), 1.0);
    assert_eq!(
        must(
            &s,
            "opsdeck_check_status",
            &[("check", "web"), ("status", "ok")]
        ),
        1.0
    );
    assert_eq!(
        must(
            &s,
            "opsdeck_check_status",
            &[("check", "web"), ("status", "critical")]
        ),
        0.0
    );
    let took = must(&s, "opsdeck_check_last_duration_seconds", &web);
    assert!(took > 0.0 && took < 2.0, "last duration {took}");
    let at = must(&s, "opsdeck_check_last_probe_timestamp_seconds", &web);
    assert!(
        (chrono::Utc::now().timestamp() as f64 - at).abs() < 60.0,
        "last probe at {at}"
    );
    assert!(
        must(
            &s,
            "opsdeck_check_probes_total",
            &[("check", "web"), ("result", "ok")]
        ) >= 2.0
    );
    target.set(Behaviour::Status(500));
    run_check(&op, check.id).await;
    let (_, s) = scrape(&scraper, "/metrics").await;
    assert_eq!(must(&s, "opsdeck_check_up", &web), 0.0, "down after a 500");
    assert_eq!(
        must(
            &s,
            "opsdeck_check_status",
            &[("check", "web"), ("status", "critical")]
        ),
        1.0
    );
    assert!(
        must(
            &s,
            "opsdeck_check_probes_total",
            &[("check", "web"), ("result", "critical")]
        ) >= 1.0
    );

    // Runbook runs: one succeeds, one fails, one waits and is cancelled.
    let nap = create(&admin, NAP).await;
    let run = start(&op, nap.id, json!({})).await;
    wait_status(&op, run.summary.id, RunStatus::Succeeded).await;
    let fails = create(&admin, &failing(&target.url())).await;
    let run = start(&op, fails.id, json!({})).await;
    wait_status(&op, run.summary.id, RunStatus::Failed).await;
    let waits = create(&admin, WAITS).await;
    let parked = start(&op, waits.id, json!({})).await;
    wait_status(&op, parked.summary.id, RunStatus::Waiting).await;
    let (_, s) = scrape(&scraper, "/metrics").await;
    for name in ["metrics-nap", "metrics-fails", "metrics-waits"] {
        assert_eq!(
            must(
                &s,
                "opsdeck_runbook_runs_started_total",
                &[("runbook", name)]
            ),
            1.0,
            "{name}"
        );
    }
    assert_eq!(
        must(
            &s,
            "opsdeck_runbook_runs_finished_total",
            &[("runbook", "metrics-nap"), ("outcome", "succeeded")]
        ),
        1.0
    );
    assert_eq!(
        must(
            &s,
            "opsdeck_runbook_runs_finished_total",
            &[("runbook", "metrics-fails"), ("outcome", "failed")]
        ),
        1.0
    );
    assert_eq!(
        must(&s, "opsdeck_runbook_runs_active", &[("status", "waiting")]),
        1.0
    );
    assert_eq!(
        must(&s, "opsdeck_runbook_runs_active", &[("status", "running")]),
        0.0
    );
    assert_eq!(
        must(
            &s,
            "opsdeck_runbook_runs_active_by_runbook",
            &[("runbook", "metrics-waits"), ("status", "waiting")]
        ),
        1.0
    );
    let res = op
        .post(
            &format!("/api/v1/runs/{}/cancel", parked.summary.id),
            &json!({}),
        )
        .await;
    assert_eq!(res.status(), 200, "cancel the waiting run");
    wait_run(&op, parked.summary.id, "cancelled", |r| {
        r.summary.status == RunStatus::Cancelled
    })
    .await;
    let (_, s) = scrape(&scraper, "/metrics").await;
    assert_eq!(
        must(
            &s,
            "opsdeck_runbook_runs_finished_total",
            &[("runbook", "metrics-waits"), ("outcome", "cancelled")]
        ),
        1.0,
        "a run withdrawn while waiting counts as finished"
    );
    assert_eq!(
        must(&s, "opsdeck_runbook_runs_active", &[("status", "waiting")]),
        0.0
    );

    // Incidents and escalations: a P2 opens, its first level fires once.
    let receiver = Receiver::start().await;
    opsdeck_e2e::flows::escalation::set_up_paging(&server.pool, &[0, 900], &receiver.url("/hook"))
        .await;
    let incident = declare(&op, json!({"title": "Shop slow", "severity": "P2"})).await;
    let fired = escalation::tick(&server.state, incident.triggered_at)
        .await
        .expect("tick");
    assert_eq!(fired.fired, vec![(incident.id, 0)]);
    let (_, s) = scrape(&scraper, "/metrics").await;
    assert_eq!(
        must(
            &s,
            "opsdeck_incidents_open",
            &[("severity", "P2"), ("status", "triggered")]
        ),
        1.0
    );
    assert_eq!(
        must(
            &s,
            "opsdeck_incidents_open",
            &[("severity", "P1"), ("status", "triggered")]
        ),
        0.0
    );
    assert_eq!(
        must(&s, "opsdeck_escalations_fired_total", &[("level", "1")]),
        1.0
    );
    assert_eq!(
        value(&s, "opsdeck_escalations_fired_total", &[("level", "2")]),
        None
    );

    // Backups: read from the catalog at scrape time. The rows are written
    // directly: what is measured is the catalog, not the backup runner.
    let target_id: i64 = sqlx::query_scalar(
        "INSERT INTO backup_targets (name, kind, config) VALUES ('metrics-disk', 'local', $1) RETURNING id",
    )
    .bind(json!({"path": "/nonexistent"}))
    .fetch_one(&server.pool)
    .await
    .expect("target");
    let mut plans = BTreeMap::new();
    for name in ["nightly", "weekly"] {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO backup_plans (name, sources, target_id, created_by)
             VALUES ($1, '[]', $2, 'test') RETURNING id",
        )
        .bind(name)
        .bind(target_id)
        .fetch_one(&server.pool)
        .await
        .expect("plan");
        plans.insert(name, id);
    }
    for (status, ago_secs, bytes) in [
        ("succeeded", 7200, 123_456i64),
        ("failed", 300, 0),
        ("running", 10, 0),
    ] {
        sqlx::query(
            "INSERT INTO backups (plan_id, plan_name, target_id, requested_by, status,
                                  started_at, finished_at, bytes)
             VALUES ($1, 'nightly', $2, 'test', $3, now() - make_interval(secs => $4 + 60),
                     CASE WHEN $3 = 'running' THEN NULL ELSE now() - make_interval(secs => $4) END, $5)",
        )
        .bind(plans["nightly"])
        .bind(target_id)
        .bind(status)
        .bind(f64::from(ago_secs))
        .bind(bytes)
        .execute(&server.pool)
        .await
        .expect("backup row");
    }
    let (_, s) = scrape(&scraper, "/metrics").await;
    assert_eq!(
        must(
            &s,
            "opsdeck_backup_last_success_size_bytes",
            &[("plan", "nightly")]
        ),
        123_456.0
    );
    let age = must(
        &s,
        "opsdeck_backup_last_success_age_seconds",
        &[("plan", "nightly")],
    );
    assert!((7200.0..7300.0).contains(&age), "age {age}");
    assert_eq!(
        must(
            &s,
            "opsdeck_backup_last_outcome",
            &[("plan", "nightly"), ("outcome", "failed")]
        ),
        1.0,
        "the newest finished backup failed (the running one is not finished)"
    );
    assert_eq!(
        must(
            &s,
            "opsdeck_backup_last_outcome",
            &[("plan", "nightly"), ("outcome", "succeeded")]
        ),
        0.0
    );
    assert_eq!(
        value(
            &s,
            "opsdeck_backup_last_success_size_bytes",
            &[("plan", "weekly")]
        ),
        None,
        "no successful backup yet"
    );
    for outcome in ["succeeded", "failed", "interrupted"] {
        assert_eq!(
            must(
                &s,
                "opsdeck_backup_last_outcome",
                &[("plan", "weekly"), ("outcome", outcome)]
            ),
            0.0
        );
    }

    // HTTP latencies: per route template and status class.
    assert_eq!(anon.get("/api/v1/no-such-route").await.status(), 404);
    let (_, s) = scrape(&scraper, "/metrics").await;
    let run_now = [
        ("method", "POST"),
        ("route", "/api/v1/checks/{id}/run"),
        ("status", "2xx"),
    ];
    let count = must(&s, "opsdeck_http_request_duration_seconds_count", &run_now);
    assert!(count >= 3.0, "three runs now: {count}");
    let mut inf = run_now.to_vec();
    inf.push(("le", "+Inf"));
    assert_eq!(
        must(&s, "opsdeck_http_request_duration_seconds_bucket", &inf),
        count
    );
    let sum = must(&s, "opsdeck_http_request_duration_seconds_sum", &run_now);
    assert!(sum > 0.0 && sum < count * 30.0, "sum {sum}");
    assert!(
        must(
            &s,
            "opsdeck_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/metrics"), ("status", "4xx")]
        ) >= 3.0,
        "the refused scrapes"
    );
    assert!(
        must(
            &s,
            "opsdeck_http_request_duration_seconds_count",
            &[
                ("method", "GET"),
                ("route", "(fallback)"),
                ("status", "4xx")
            ]
        ) >= 1.0,
        "unknown URLs share one label"
    );
    assert!(
        !s.iter()
            .any(|x| x.labels.get("route").is_some_and(|r| r.contains("no-such"))),
        "no series per URL"
    );
    assert_eq!(must(&s, "opsdeck_metrics_scrape_errors", &[]), 0.0);

    // Scrapes are GETs: never audited; and nothing went unaudited.
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE target LIKE '%/metrics%' OR action = 'request.unaudited'",
    )
    .fetch_one(&server.pool)
    .await
    .expect("audit");
    assert_eq!(audited, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_separate_listener_serves_metrics_without_auth() {
    let (database, _) = opsdeck_e2e::pg::fresh_database().await;
    let port = opsdeck_e2e::proc::free_port();
    let listen = format!("127.0.0.1:{port}");
    let process = OpsdeckProcess::start(
        &opsdeck_e2e::pg::url(&database),
        &[
            ("OPSDECK_METRICS_LISTEN", listen.as_str()),
            ("OPSDECK_READ_ONLY", "true"),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
        ],
    )
    .await;
    process.wait_ready().await;
    let main = Api::new(process.base());
    // Without a token /metrics is off on the main listener.
    let res = main.get("/metrics").await;
    assert_eq!(res.status(), 404);
    let v: serde_json::Value = res.json().await.expect("JSON error");
    assert_eq!(v["error"]["code"], "not_found");

    let side = Api::new(&format!("http://{listen}"));
    let s = poll(Duration::from_secs(30), "the health lease", async || {
        let (_, s) = scrape(&side, "/metrics").await;
        if value(&s, "opsdeck_check_engine_leader", &[]) == Some(1.0) {
            Ok(s)
        } else {
            Err("not the leader yet".into())
        }
    })
    .await;
    assert_eq!(
        must(&s, "opsdeck_read_only", &[]),
        1.0,
        "set by OPSDECK_READ_ONLY"
    );
    assert_eq!(
        must(&s, "opsdeck_docker_engine_up", &[("engine", "local")]),
        0.0,
        "the local engine's socket does not exist"
    );
    assert_eq!(must(&s, "opsdeck_metrics_scrape_errors", &[]), 0.0);
    // The main listener's traffic is measured (the readiness polls).
    assert!(
        must(
            &s,
            "opsdeck_http_request_duration_seconds_count",
            &[("method", "GET"), ("route", "/readyz"), ("status", "2xx")]
        ) >= 1.0
    );
    // The metrics address serves nothing else.
    assert_eq!(side.get("/api/v1/me").await.status(), 404);
    assert_eq!(side.get("/").await.status(), 404);
    // A graceful stop ends the metrics listener too.
    let status = process.stop().await;
    assert!(status.success(), "exit {status}");
}
