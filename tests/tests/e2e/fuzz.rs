//! Fuzzing the API with schemathesis (PyPI, installed by
//! `scripts/install-test-deps.sh` into `~/.cache/opsdeck/tools/schemathesis`,
//! or `OPSDECK_SCHEMATHESIS`) against `/api/v1/openapi.json` of a real
//! `opsdeck serve` on a throwaway database (the harness's own), as an admin
//! API token: no answer may be a 5xx and every answer must match the
//! document. Deterministic generation (the same cases on every run), at most
//! [`MAX_EXAMPLES`] examples per operation and phase, all four phases
//! (examples, coverage, fuzzing, stateful); the test prints how many cases
//! ran and refuses a run of fewer than [`MIN_CASES`].
//!
//! Every route is fuzzed except the event streams (they never end; the role
//! matrix and their own tests cover them) and the engine's disk usage and
//! clean-up preview: they ask the engine at once, and the fuzz server's
//! only engine is unreachable on purpose (below), so their documented
//! answer to every valid request is 503; their validation is tested in
//! `cleanup.rs`. What made the others unsafe to
//! fuzz is contained instead of excluded:
//! * operations that make Opsdeck contact a host the request names (checks,
//!   engines, notification channels, runbook runs and schedules): the server
//!   and the fuzzer run in a network namespace of their own with only
//!   loopback, so nothing leaves the machine whatever the fuzzer names
//!   (the database is the harness cluster's Unix socket);
//! * backup targets (a local target creates its directory): as root, the
//!   server runs as the `postgres` account (the harness cluster's owner,
//!   the one account that can reach its socket), which can create
//!   directories only where that account may write;
//! * operations that end the fuzzer's session or change accounts (logout,
//!   passwords, users, sessions, tokens): the fuzzer authenticates with an
//!   API token whose id and owner's id are far above anything it creates,
//!   so neither revoking a token nor disabling a user it makes up reaches
//!   its own credential, and a token survives password changes and ended
//!   sessions.
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

use opsdeck_e2e::server::TestServer;
use opsdeck_e2e::util::{expect_error, ok_json};
use opsdeck_wire::{Incident, MaintenanceStack, Role};
use serde_json::json;

/// Examples per operation and phase.
const MAX_EXAMPLES: u32 = 20;
/// A run that generated fewer cases did not really fuzz.
const MIN_CASES: u64 = 6_000;

/// Only the event streams and the two routes that ask the engine at once
/// stay out (see the module docs).
const EXCLUDE: &str = r"/events$|/engines/\{id\}/(disk|cleanup/preview)$";

/// The fuzzer's API token and the ids that keep it out of the fuzzer's reach.
const TOKEN: &str = "odk_fuzz-0123456789abcdefghijklmnopqrstuvwxyz";
const FAR_ID: i64 = 987_654_321;

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

/// Runs inside the network namespace: loopback up, the server (as `$RUN_AS`
/// when set), readiness, the fuzzer, the server stopped. Exit 97: the
/// sandbox could not be set up.
const SANDBOX: &str = r#"
set -u
ip link set lo up || exit 97
if [ -n "$RUN_AS" ]; then
  HOME=/nonexistent setpriv --reuid="$RUN_AS" --regid="$RUN_AS" --clear-groups --inh-caps=-all "$OPSDECK" serve >"$LOG" 2>&1 &
else
  "$OPSDECK" serve >"$LOG" 2>&1 &
fi
server=$!
ready=""
for _ in $(seq 1 600); do
  if curl -sf "$BASE/readyz" >/dev/null 2>&1; then ready=1; break; fi
  kill -0 "$server" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$ready" ]; then echo "opsdeck did not become ready"; kill "$server" 2>/dev/null; exit 98; fi
"$@"
rc=$?
kill -TERM "$server"
wait "$server"
exit $rc
"#;

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
    let root = nix::unistd::Uid::effective().is_root();
    let (database, options) = opsdeck_e2e::pg::fresh_database().await;
    let url = opsdeck_e2e::pg::url(&database);
    let pool = opsdeck::db::pool(options).await.expect("pool");
    // The fuzzer's admin and token, with ids it will not reach.
    for sql in [
        format!("ALTER TABLE users ALTER COLUMN id RESTART WITH {FAR_ID}"),
        format!("ALTER TABLE api_tokens ALTER COLUMN id RESTART WITH {FAR_ID}"),
    ] {
        sqlx::query(&sql).execute(&pool).await.expect(&sql);
    }
    opsdeck_e2e::util::add_admin(&pool, "fuzz").await;
    sqlx::query(
        "INSERT INTO api_tokens (name, token_hash, prefix, role, created_by)
         SELECT 'fuzz', sha256(convert_to($1, 'UTF8')), 'odk_fuzz', 'admin', id FROM users WHERE username = 'fuzz'",
    )
    .bind(TOKEN)
    .execute(&pool)
    .await
    .expect("the fuzzer's token");
    for sql in [
        "ALTER TABLE users ALTER COLUMN id RESTART WITH 1",
        "ALTER TABLE api_tokens ALTER COLUMN id RESTART WITH 1",
    ] {
        sqlx::query(sql).execute(&pool).await.expect(sql);
    }

    // The server's files: a directory the server's account owns, with the
    // binary linked in (the build directory may be closed to that account).
    let dir = tempfile::Builder::new()
        .prefix("opsdeck-fuzz-")
        .tempdir()
        .expect("temporary directory");
    let run_as = if root { "postgres" } else { "" };
    if root {
        // The directory only: the binary linked in below stays root's.
        let status = std::process::Command::new("chown")
            .arg("postgres:postgres")
            .arg(dir.path())
            .status()
            .expect("chown");
        assert!(status.success(), "chown of the sandbox directory");
    }
    let opsdeck = dir.path().join("opsdeck");
    let built = opsdeck_e2e::process::opsdeck_bin();
    assert!(
        built.is_file(),
        "{} is missing: build it first",
        built.display()
    );
    if std::fs::hard_link(&built, &opsdeck).is_err() {
        std::fs::copy(&built, &opsdeck).expect("copying the binary");
    }
    let port = opsdeck_e2e::proc::free_port();
    let base = format!("http://127.0.0.1:{port}");
    let log = dir.path().join("opsdeck.log");

    // Root gets a plain network namespace; others a user namespace with one.
    let mut cmd = tokio::process::Command::new("unshare");
    if root {
        cmd.arg("--net");
    } else {
        cmd.args(["--user", "--map-root-user", "--net"]);
    }
    cmd.args(["--", "sh", "-c", SANDBOX, "sandbox"])
        .arg(&bin)
        .arg("run")
        .arg(format!("{base}/api/v1/openapi.json"))
        .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
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
        .env("OPSDECK", &opsdeck)
        .env("RUN_AS", run_as)
        .env("LOG", &log)
        .env("BASE", &base)
        .env("DATABASE_URL", &url)
        .env("OPSDECK_LISTEN", format!("127.0.0.1:{port}"))
        .env("OPSDECK_WEB_ROOT", opsdeck_e2e::server::web_root())
        .env("OPSDECK_DATA_DIR", dir.path().join("data"))
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .env("RUST_LOG", "warn")
        .env_remove("OPSDECK_CONFIG")
        .env_remove("OPSDECK_ADMIN_PASSWORD")
        .env("SCHEMATHESIS_TELEMETRY", "false")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let started = std::time::Instant::now();
    let out = cmd
        .output()
        .await
        .expect("running schemathesis in its sandbox");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let server_log = std::fs::read_to_string(&log).unwrap_or_default();
    let tail: String = {
        let chars: Vec<char> = server_log.chars().collect();
        chars[chars.len().saturating_sub(6000)..].iter().collect()
    };
    assert!(
        !matches!(out.status.code(), Some(97) | Some(98)),
        "the fuzzing sandbox (network namespace{}) could not be set up:\n{text}\n--- server log ---\n{tail}",
        if root { ", postgres account" } else { "" }
    );
    let cases: u64 = text
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_suffix(" passed")
                .and_then(|l| l.split_once(" generated"))
        })
        .and_then(|(n, _)| n.trim().parse().ok())
        .unwrap_or(0);
    println!(
        "schemathesis: {cases} cases generated in {:.0} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        out.status.success(),
        "schemathesis found failures (exit {:?}):\n{text}\n--- server log ---\n{tail}",
        out.status.code(),
    );
    assert!(
        cases >= MIN_CASES,
        "only {cases} cases ran (at least {MIN_CASES} expected):\n{text}"
    );
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

    // A NUL character in text: a clear 400 naming the field, nothing stored
    // (the JSON extractor refuses NUL anywhere in a body; the post-mortem's
    // jsonb is where Postgres refused it with a 500 before).
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
    assert!(msg.contains("description") && msg.contains("NUL"), "{msg}");
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
