//! Fuzzing the API with schemathesis (PyPI, installed by
//! `scripts/install-test-deps.sh` into `~/.cache/opsdeck/tools/schemathesis`,
//! or `OPSDECK_SCHEMATHESIS`) against `/api/v1/openapi.json` of a real
//! `opsdeck serve`, logged in as an admin: no answer may be a 5xx and every
//! answer must match the document. Deterministic generation (the same cases
//! on every run), at most [`MAX_EXAMPLES`] examples per operation and phase,
//! all four phases (examples, coverage, fuzzing, stateful); the test prints
//! how many cases ran and refuses a run of fewer than [`MIN_CASES`].
//!
//! Left out of the fuzzing, and why (each is tested by its own tests):
//! * operations that make Opsdeck contact a host the request names — checks
//!   (probes), engines, notification channels, running runbooks (their
//!   http/TLS steps) and schedules that would — since tests send traffic to
//!   loopback only;
//! * backup targets: a local target creates its directory on this machine;
//! * operations that end the fuzzer's own session or change accounts
//!   (logout, password, users, sessions, API tokens);
//! * event streams (they never end).
//!
//! The process runs with `DOCKER_HOST` pointing nowhere: no container can be
//! touched whatever the fuzzer sends.
//!
//! Findings so far, each fixed and kept as a regression test below:
//! `GET /api/v1/maintenance/stacks` answered 500 when an actuator's stack
//! had no services; a NUL character (`\u0000`) in any text answered 500
//! (Postgres refuses it: now 400); the YAML exports declared a string
//! schema for a YAML document.

use std::path::PathBuf;
use std::process::Stdio;

use opsdeck_e2e::process::OpsdeckProcess;
use opsdeck_e2e::server::TestServer;
use opsdeck_e2e::util::{expect_error, ok_json};
use opsdeck_wire::{Incident, MaintenanceStack, Role};
use serde_json::json;

/// Examples per operation and phase.
const MAX_EXAMPLES: u32 = 10;
/// A run that generated fewer cases did not really fuzz.
const MIN_CASES: u64 = 3_000;

const EXCLUDE: &str = "/events$|/auth/logout|/me/password|/users|/sessions|/tokens|/backup-targets|/channels|/checks|/engines|/runbooks/\\{id\\}/run|/runbooks/import|^/api/v1/runbooks$|/runs/|/schedules";

fn schemathesis() -> PathBuf {
    if let Ok(p) = std::env::var("OPSDECK_SCHEMATHESIS") {
        return PathBuf::from(p);
    }
    let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
    let venv = PathBuf::from(home).join(".cache/opsdeck/tools/schemathesis/bin/schemathesis");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("schemathesis")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_server_error_and_no_schema_violation() {
    let bin = schemathesis();
    if opsdeck_e2e::require::part(
        bin.is_file() || opsdeck_e2e::require::have("schemathesis"),
        "schemathesis (the API fuzzer)",
        "make test-deps installs it into ~/.cache/opsdeck/tools/schemathesis",
    )
    .is_err()
    {
        return;
    }
    let (database, options) = opsdeck_e2e::pg::fresh_database().await;
    let url = opsdeck_e2e::pg::url(&database);
    let pool = opsdeck::db::pool(options).await.expect("pool");
    opsdeck_e2e::util::add_admin(&pool, "fuzz").await;
    let p =
        OpsdeckProcess::start(&url, &[("DOCKER_HOST", "unix:///nonexistent/docker.sock")]).await;
    p.wait_ready().await;
    let res = reqwest::Client::new()
        .post(p.url("/api/v1/auth/login"))
        .json(&json!({"username": "fuzz", "password": opsdeck_e2e::server::PASSWORD}))
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), 200, "login");
    let cookie = res
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("opsdeck_session="))
        .and_then(|v| v.split(';').next())
        .expect("a session cookie")
        .to_owned();

    let out = tokio::process::Command::new(&bin)
        .arg("run")
        .arg(p.url("/api/v1/openapi.json"))
        .args(["-H", &format!("Cookie: {cookie}")])
        .args(["-H", "X-Requested-With: schemathesis"])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--max-examples",
            &MAX_EXAMPLES.to_string(),
            "--generation-deterministic",
            "--exclude-path-regex",
            EXCLUDE,
            "--no-color",
        ])
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdin(Stdio::null())
        .output()
        .await
        .expect("running schemathesis");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let cases: u64 = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_suffix(" passed")
                .and_then(|l| l.split_once(" generated"))
        })
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or(0);
    println!("schemathesis: {cases} cases generated");
    assert!(
        out.status.success(),
        "schemathesis found failures (exit {:?}):\n{text}\n--- server log ---\n{}",
        out.status.code(),
        p.log_tail(6000)
    );
    assert!(
        cases >= MIN_CASES,
        "only {cases} cases ran (at least {MIN_CASES} expected):\n{text}"
    );
    p.stop().await;
}

/// The fuzzer's findings, kept fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_findings_stay_fixed() {
    let s = TestServer::start().await;
    let admin = s.user(Role::Admin).await;
    let op = s.user(Role::Operator).await;

    // An actuator for a stack without services: listed, with none.
    let res = admin
        .send(
            reqwest::Method::PUT,
            "/api/v1/maintenance/actuators/lonely",
            &json!({"mode": "none"}),
        )
        .await;
    assert_eq!(res.status(), 200, "actuator");
    let stacks: Vec<MaintenanceStack> =
        ok_json(op.get("/api/v1/maintenance/stacks").await, "stacks").await;
    let lonely = stacks
        .iter()
        .find(|x| x.stack == "lonely")
        .expect("the stack");
    assert!(lonely.services.is_empty(), "{lonely:?}");

    // A NUL character in text: a clear 400, nothing stored (services refuse
    // control characters themselves; the post-mortem's jsonb is where
    // Postgres refused it with a 500 before).
    let msg = expect_error(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "nul", "tier": "support", "description": "a\u{0}b"}),
            )
            .await,
        400,
    )
    .await;
    assert!(msg.contains("control characters"), "{msg}");
    let i: Incident = ok_json(
        op.post(
            "/api/v1/incidents",
            &json!({"title": "Fuzzed", "severity": "P4"}),
        )
        .await,
        "declare",
    )
    .await;
    let msg = expect_error(
        op.send(
            reqwest::Method::PUT,
            &format!("/api/v1/incidents/{}/postmortem", i.id),
            &json!({"summary": "x\u{0}", "impact": "", "timeline": "", "root_cause": "",
                    "went_well": "", "went_badly": "", "action_items": []}),
        )
        .await,
        400,
    )
    .await;
    assert!(msg.contains("NUL"), "{msg}");
    let services: Vec<serde_json::Value> = admin.json("/api/v1/services").await;
    assert!(services.iter().all(|x| x["name"] != "nul"));
}
