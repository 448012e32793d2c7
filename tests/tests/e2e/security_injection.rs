//! Issue 19, finding 10: stored-payload injection, replayed from peers'
//! advisories (Komodo, Dokploy, Coolify: names and fields that reach
//! `sh -c`, stored and fired later by a scheduler).
//!
//! Shell and SQL metacharacters, newlines, a NUL, a very long string and
//! Unicode tricks (RTL override, homoglyphs, zero-width) go into every
//! stored field that later reaches a tool or the engine: service, container
//! and image names, the compose project, channel and schedule names,
//! schedule and run parameters, backup target paths, backup plan names,
//! files paths, volume and database names, maintenance reasons, proxy page
//! paths and reload argv. Each answer must be a success or a clear 400 —
//! never a 5xx; a NUL must be a 400 naming the field; the long string a 400;
//! what is accepted must read back byte-exact. Then the scheduler and the
//! engine fire what uses them (a schedule every second, runs, a maintenance
//! period, and on a real engine exec steps fed the payloads) and the test
//! proves nothing was executed or interpreted: the canary file never
//! appears on the host or in the container, and no table was dropped.

use std::time::Duration;

use opsdeck_e2e::flows::runbooks::{create, start, wait_run};
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::stack::{ServiceSpec, Stack, MOSAIC};
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::util::{engine, ok_json, poll, release};
use opsdeck_wire::{ExecResult, Role, Run, ServiceOverview, StepStatus};
use serde_json::{json, Value};

/// The payloads; `{canary}` is the canary file's path.
fn payloads(canary: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "shell-semicolon",
            format!("x; touch {canary}; rm -rf /tmp/x"),
        ),
        ("shell-subst", format!("$(touch {canary})")),
        ("shell-backtick", format!("`touch {canary}`")),
        (
            "shell-pipe",
            format!("x | touch {canary} && touch {canary} || true"),
        ),
        ("sql-or", "x' OR 1=1 --".to_owned()),
        ("sql-drop", "x'); DROP TABLE services; --".to_owned()),
        ("newline", format!("x\ntouch {canary}\r\n")),
        ("rtl-override", "invoice\u{202e}gpj.exe".to_owned()),
        ("homoglyph", "раураl-аdmin".to_owned()),
        ("zero-width", "ad\u{200b}min\u{feff}".to_owned()),
        ("quotes", r#"a"b'c\d%s{{params.x}}${HOME}"#.to_owned()),
        ("nul", "x\u{0}y".to_owned()),
        ("long", "a".repeat(100_000)),
    ]
}

/// Whether `v` holds the string `want` anywhere, byte-exact — as the whole
/// value or as the last part of a path written as `…/inj/<payload>`.
/// Surrounding white space is trimmed by design for names and paths, so
/// the trimmed payload counts too.
fn holds(v: &Value, want: &str) -> bool {
    match v {
        Value::String(s) => [want, want.trim()]
            .iter()
            .any(|w| s == w || s.rsplit_once("/inj/").map(|(_, t)| t) == Some(w)),
        Value::Array(a) => a.iter().any(|x| holds(x, want)),
        Value::Object(m) => m.values().any(|x| holds(x, want)),
        _ => false,
    }
}

/// One stored field: how to write a payload into it, and where to read it
/// back (`None`: the write's answer is the read-back).
struct Field {
    what: &'static str,
    method: reqwest::Method,
    path: String,
    body: Box<dyn Fn(&str) -> Value>,
    read: Option<String>,
}

fn field(
    what: &'static str,
    method: reqwest::Method,
    path: impl Into<String>,
    read: Option<&str>,
    body: impl Fn(&str) -> Value + 'static,
) -> Field {
    Field {
        what,
        method,
        path: path.into(),
        body: Box::new(body),
        read: read.map(str::to_owned),
    }
}

/// Writes every payload into every field; the problems found.
async fn probe(api: &Api, fields: &[Field], payloads: &[(&str, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for f in fields {
        for (i, (name, p)) in payloads.iter().enumerate() {
            // Unique per attempt where names must be unique.
            let p = if f.what.ends_with("name") && !matches!(*name, "nul" | "long") {
                format!("{p}{i}")
            } else {
                p.clone()
            };
            let res = api.send(f.method.clone(), &f.path, &(f.body)(&p)).await;
            let status = res.status().as_u16();
            let body: Value = res.json().await.unwrap_or(Value::Null);
            let at = format!("{} <- {name}", f.what);
            if status >= 500 {
                problems.push(format!("{at}: {status} {body}"));
                continue;
            }
            match *name {
                "nul" => {
                    if status != 400 || body["error"]["field"].as_str().is_none_or(str::is_empty) {
                        problems.push(format!("{at}: want 400 with a field, got {status} {body}"));
                    }
                    continue;
                }
                "long" => {
                    if status != 400 {
                        problems.push(format!("{at}: want a length error (400), got {status}"));
                    }
                    continue;
                }
                _ => {}
            }
            if !(200..300).contains(&status) {
                if status != 400 && status != 409 && status != 404 {
                    problems.push(format!("{at}: unexpected {status} {body}"));
                }
                continue;
            }
            let stored = match &f.read {
                Some(path) => {
                    let path = path.replace("{id}", &body["id"].to_string());
                    api.json::<Value>(&path).await
                }
                None => body.clone(),
            };
            if !holds(&stored, &p) {
                problems.push(format!("{at}: accepted but does not read back byte-exact"));
            }
        }
    }
    problems
}

const NOTE_RUNBOOK: &str = r#"
name: payload-carrier
title: Carries a payload
params:
  - name: url
    type: text
  - name: note
    type: text
steps:
  - name: probe
    kind: http
    url: "{{params.url}}"
    contains: "{{params.note}}"
    on_failure: continue
  - name: nap
    kind: sleep
    duration: 10ms
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_payloads_are_data_never_code() {
    let canary = format!("/tmp/opsdeck-pwned-{}", std::process::id());
    let _ = std::fs::remove_file(&canary);
    let payloads = payloads(&canary);
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let target = Target::start(Behaviour::Ok("plain".into()));
    let runbook = create(&admin, NOTE_RUNBOOK).await;
    let rb = runbook.id;
    let url = target.url();
    ok_json::<Value>(
        admin
            .post(
                "/api/v1/backup-targets",
                &json!({"name": "t", "kind": "local", "path": "/tmp/opsdeck-inj-target"}),
            )
            .await,
        "a backup target",
    )
    .await;

    use reqwest::Method as M;
    let u = url.clone();
    let fields = vec![
        field(
            "service name",
            M::POST,
            "/api/v1/services",
            Some("/api/v1/services/{id}"),
            |p| json!({"name": p, "tier": "application"}),
        ),
        field(
            "service container_name",
            M::POST,
            "/api/v1/services",
            Some("/api/v1/services/{id}"),
            |p| json!({"name": format!("c{}", p.len() % 97), "container_name": p}),
        ),
        field(
            "service compose_project",
            M::POST,
            "/api/v1/services",
            Some("/api/v1/services/{id}"),
            |p| json!({"name": format!("p{}", p.len() % 97), "compose_project": p, "compose_service": "web"}),
        ),
        field(
            "service image",
            M::POST,
            "/api/v1/services",
            Some("/api/v1/services/{id}"),
            |p| json!({"name": format!("i{}", p.len() % 97), "image": p}),
        ),
        field(
            "channel name",
            M::POST,
            "/api/v1/channels",
            Some("/api/v1/channels/{id}"),
            |p| json!({"name": p, "kind": "webhook", "config": {"url": "http://127.0.0.1:9/hook"}}),
        ),
        field(
            "schedule name",
            M::POST,
            "/api/v1/schedules",
            Some("/api/v1/schedules/{id}"),
            move |p| {
                json!({"runbook_id": rb, "name": p, "cron": "0 0 1 1 *", "enabled": false,
                            "params": {"url": "http://127.0.0.1:9/", "note": "n"}})
            },
        ),
        field(
            "schedule params",
            M::POST,
            "/api/v1/schedules",
            Some("/api/v1/schedules/{id}"),
            move |p| {
                json!({"runbook_id": rb, "name": format!("s{}", p.len()), "cron": "0 0 1 1 *",
                            "enabled": false, "params": {"url": "http://127.0.0.1:9/", "note": p}})
            },
        ),
        field(
            "run params",
            M::POST,
            format!("/api/v1/runbooks/{rb}/runs"),
            Some("/api/v1/runs/{id}"),
            move |p| json!({"params": {"url": u, "note": p}, "reason": "payload"}),
        ),
        field(
            "backup target name",
            M::POST,
            "/api/v1/backup-targets",
            None,
            |p| json!({"name": p, "kind": "local", "path": "/tmp/opsdeck-inj-target2"}),
        ),
        field(
            "backup target path",
            M::POST,
            "/api/v1/backup-targets",
            None,
            |p| json!({"name": format!("tp{}", p.len()), "kind": "local", "path": format!("/tmp/opsdeck-inj-{}/inj/{p}", std::process::id())}),
        ),
        field(
            "backup plan name",
            M::POST,
            "/api/v1/backup-plans",
            None,
            |p| json!({"name": p, "target": "t", "sources": [{"kind": "files", "path": "/etc/hostname"}]}),
        ),
        field(
            "backup files path",
            M::POST,
            "/api/v1/backup-plans",
            None,
            |p| {
                json!({"name": format!("f{}", p.len()), "target": "t",
                       "sources": [{"kind": "files", "path": format!("/tmp/opsdeck-inj-{}/inj/{p}", std::process::id())}]})
            },
        ),
        field(
            "backup volume name",
            M::POST,
            "/api/v1/backup-plans",
            None,
            |p| {
                json!({"name": format!("v{}", p.len()), "target": "t",
                       "sources": [{"kind": "volume", "volume": p}]})
            },
        ),
        field(
            "backup database name",
            M::POST,
            "/api/v1/backup-plans",
            None,
            |p| {
                json!({"name": format!("d{}", p.len()), "target": "t",
                       "sources": [{"kind": "postgres", "service": "db", "databases": [p]}]})
            },
        ),
        field(
            "maintenance reason",
            M::POST,
            "/api/v1/maintenance/periods",
            None,
            |p| {
                json!({"scope": {"kind": "services", "services": ["gitea"]}, "reason": p,
                       "until": (chrono::Utc::now() + chrono::Duration::minutes(5))})
            },
        ),
        field(
            "maintenance page_path",
            M::PUT,
            "/api/v1/maintenance/actuators/shop",
            None,
            |p| {
                json!({"mode": "proxy", "proxy": {"service": "web", "page_path": format!("/usr/share/nginx/{p}"),
                                                  "reload": ["nginx", "-s", "reload"]}})
            },
        ),
        field(
            "maintenance reload argv",
            M::PUT,
            "/api/v1/maintenance/actuators/shop",
            None,
            |p| {
                json!({"mode": "proxy", "proxy": {"service": "web", "page_path": "/srv/maint.html",
                                                  "reload": ["nginx", p]}})
            },
        ),
    ];
    let problems = probe(&admin, &fields, &payloads).await;

    // Fire what uses them: a schedule every second carrying every payload,
    // runs, a maintenance period (written above), and wait for the runs.
    let mut fired = Vec::new();
    let mut accepted = Vec::new();
    for (i, (name, p)) in payloads.iter().enumerate() {
        if matches!(*name, "nul" | "long") {
            continue;
        }
        let res = admin
            .post(
                "/api/v1/schedules",
                &json!({"runbook_id": rb, "name": format!("fire-{i}"),
                        // One run of the runbook at a time: each schedule
                        // fires once a minute at a second of its own.
                        "cron": format!("{} * * * * *", (i * 5) % 60),
                        "params": {"url": url, "note": p}}),
            )
            .await;
        match res.status().as_u16() {
            200..=299 => {
                let s: Value = res.json().await.expect("schedule");
                fired.push(s["id"].as_i64().expect("schedule id"));
                accepted.push(p.clone());
            }
            // A clear refusal of the value (e.g. a newline in a text
            // parameter) is fine; the probe above checked it is no 5xx.
            400 => {}
            s => panic!("schedule fire-{i} ({name}): {s}"),
        }
    }
    assert!(
        fired.len() >= 8,
        "most payloads are stored as data: {fired:?}"
    );
    // An ended run once seen counts (a later tick may have queued another).
    let seen = std::sync::Mutex::new(std::collections::HashSet::new());
    poll(
        Duration::from_secs(100),
        "every schedule fired and its run ended",
        async || {
            let mut waiting = Vec::new();
            for id in &fired {
                if seen.lock().unwrap().contains(id) {
                    continue;
                }
                let s: Value = admin.json(&format!("/api/v1/schedules/{id}")).await;
                let ended = match s["last_run_id"].as_i64() {
                    None => false,
                    Some(run) => {
                        let r: Run = admin.json(&format!("/api/v1/runs/{run}")).await;
                        !r.summary.status.is_active()
                    }
                };
                if ended {
                    seen.lock().unwrap().insert(*id);
                } else {
                    let page: Value = admin
                        .json("/api/v1/audit?action=schedule.run&limit=50")
                        .await;
                    let why: Vec<Value> = page["entries"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|e| e["params"]["schedule_id"] == json!(id))
                        .map(|e| e["detail"].clone())
                        .take(1)
                        .collect();
                    waiting.push((*id, s["name"].clone(), why));
                }
            }
            waiting
                .is_empty()
                .then_some(())
                .ok_or_else(|| format!("schedules still without an ended run: {waiting:?}"))
        },
    )
    .await;
    for p in &accepted {
        let run = start(&admin, rb, json!({"url": url, "note": p})).await;
        let done = wait_run(&admin, run.summary.id, "the run ends", |r| {
            !r.summary.status.is_active()
        })
        .await;
        assert_eq!(
            done.params["note"],
            json!(p),
            "run params round-trip byte-exact"
        );
    }

    assert!(
        !std::path::Path::new(&canary).exists(),
        "a payload was executed on the host: {canary} exists"
    );
    for table in [
        "services",
        "runs",
        "schedules",
        "audit_log",
        "backup_plans",
        "channels",
    ] {
        let exists: Option<String> = sqlx::query_scalar("SELECT to_regclass($1)::text")
            .bind(table)
            .fetch_one(&server.pool)
            .await
            .expect("to_regclass");
        assert!(exists.is_some(), "table {table} was dropped");
    }
    let services: i64 = sqlx::query_scalar("SELECT count(*) FROM services")
        .fetch_one(&server.pool)
        .await
        .expect("services still readable");
    assert!(services > 0);
    assert!(
        problems.is_empty(),
        "problems found:\n{}",
        problems.join("\n")
    );
    server.stop().await;
}

/// On a real engine: exec steps fed every payload through run parameters,
/// and the container afterwards holds no canary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_reach_the_engine_as_single_argv_elements() {
    let Some(engine) = engine().await else { return };
    let canary = format!("/tmp/opsdeck-pwned-{}", std::process::id());
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let res = admin
        .post(
            "/api/v1/engines",
            &json!({"name": "main", "endpoint": engine.host()}),
        )
        .await;
    assert_eq!(res.status(), 201);
    let forge = [ServiceSpec {
        requires: &[],
        ..MOSAIC[3]
    }];
    let stack = Stack::up(&engine, "sec-inj", &forge)
        .await
        .expect("forge stack");
    ok_json::<Value>(
        admin
            .post(
                "/api/v1/inventory/compose",
                &json!({"content": stack.compose_yaml(), "project": stack.project,
                        "engine": "main", "apply": true, "checks": []}),
            )
            .await,
        "importing the stack",
    )
    .await;
    let gitea = poll(Duration::from_secs(60), "gitea running", async || {
        let list: Vec<ServiceOverview> = admin.json("/api/v1/services").await;
        list.into_iter()
            .find(|o| {
                o.service.name == "gitea" && o.containers.iter().any(|c| c.state == "running")
            })
            .ok_or_else(|| "not yet".to_string())
    })
    .await;
    let rb = create(
        &admin,
        r#"
name: echo-note
title: Echo a note
params:
  - name: note
    type: text
steps:
  - name: echo
    kind: exec
    service: gitea
    argv: ["echo", "{{params.note}}"]
  - name: sh
    kind: exec
    service: gitea
    argv: ["sh", "-c", "printf '%s' \"$1\"", "sh", "{{params.note}}"]
"#,
    )
    .await;
    for (name, p) in payloads(&canary)
        .into_iter()
        .filter(|(n, _)| !matches!(*n, "nul" | "long"))
    {
        let res = admin
            .post(
                &format!("/api/v1/runbooks/{}/runs", rb.id),
                &json!({"params": {"note": p}, "reason": "payload"}),
            )
            .await;
        if res.status() == 400 {
            continue; // refused clearly (e.g. a newline in a text parameter)
        }
        let run: Run = ok_json(res, "starting a run").await;
        let done: Run = wait_run(&admin, run.summary.id, "the run ends", |r| {
            !r.summary.status.is_active()
        })
        .await;
        // Output is stored line by line, after a header line naming the
        // command (`$ echo '…' (in …)`): the payload's lines end it.
        let want: String = p.lines().map(|l| format!("{l}\n")).collect();
        for s in &done.steps {
            assert_eq!(s.status, StepStatus::Succeeded, "{name}: {s:?}");
            assert!(
                s.output.ends_with(&want),
                "{name}: {} prints the payload as one argument, never runs it: {:?}",
                s.name,
                s.output
            );
        }
    }
    let ls: ExecResult = ok_json(
        admin
            .post(
                &format!("/api/v1/services/{}/exec", gitea.service.id),
                &json!({"argv": ["ls", "/tmp"]}),
            )
            .await,
        "listing /tmp in the container",
    )
    .await;
    assert!(
        !ls.stdout.contains("opsdeck-pwned"),
        "a payload was executed in the container: {}",
        ls.stdout
    );
    assert!(!std::path::Path::new(&canary).exists());
    drop(stack);
    server.stop().await;
    release(engine).await;
}
