//! Exec steps: argv taken literally, a non-zero exit failing the step.

use super::*;

const EXEC: &str = r#"
name: look-and-exec
title: Logs, status and exec
params:
  - name: service
    type: service
  - name: note
    type: text
steps:
  - name: logs
    kind: logs
    service: "{{params.service}}"
    lines: 20
  - name: status
    kind: status
    service: "{{params.service}}"
  - name: literal
    kind: exec
    service: "{{params.service}}"
    argv: ["echo", "$(id); touch /tmp/pwned; rm -rf /"]
  - name: from_params
    kind: exec
    service: "{{params.service}}"
    argv: ["echo", "{{params.note}}", "{{steps.status.health}}"]
  - name: exits
    kind: exec
    service: "{{params.service}}"
    argv: ["sh", "-c", "exit 3"]
  - name: never
    kind: sleep
    duration: 10ms
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_takes_argv_literally_and_fails_on_a_non_zero_exit() {
    let Some(engine) = engine().await else { return };
    let env = setup(&engine, "rb-exec", FORGE).await;
    let name = env.stack.container("gitea");
    let rb = create(&env.admin, EXEC).await;
    let note = "`touch /tmp/pwned`; $(id) && rm -rf / | cat /etc/passwd";
    let run = start(&env.op, rb.id, json!({"service": "gitea", "note": note})).await;
    let done = wait_status(&env.op, run.summary.id, RunStatus::Failed).await;

    // Logs: the container's lines, with the engine's timestamps.
    let logs = step(&done, "logs");
    assert_eq!(logs.status, StepStatus::Succeeded);
    assert!(
        logs.result["lines"].as_u64().unwrap_or(0) >= 1,
        "{:?}",
        logs.result
    );
    assert_eq!(logs.result["containers"], 1);
    let line = logs
        .output
        .lines()
        .find(|l| l.ends_with("gitea starting"))
        .unwrap_or_else(|| panic!("no startup line: {}", logs.output));
    let stamp = line.split_whitespace().next().unwrap_or_default();
    assert!(DateTime::parse_from_rfc3339(stamp).is_ok(), "{line}");
    // Status: the board's health, as a named output.
    let status = step(&done, "status");
    let health = status.result["health"]
        .as_str()
        .unwrap_or_else(|| panic!("no health: {:?}", status.result))
        .to_owned();
    assert!(
        [
            "operational",
            "unknown",
            "degraded",
            "down",
            "impacted",
            "maintenance"
        ]
        .contains(&health.as_str()),
        "{health}"
    );
    assert!(
        status.output.starts_with(&format!("gitea: {health}")),
        "{}",
        status.output
    );

    // The argv element is one word: no shell saw it.
    let literal = step(&done, "literal");
    assert_eq!(literal.status, StepStatus::Succeeded);
    assert_eq!(
        literal.result["stdout"],
        "$(id); touch /tmp/pwned; rm -rf /"
    );
    assert_eq!(literal.result["exit_code"], 0);
    assert_eq!(literal.result["container"], json!(name));
    assert!(
        literal
            .output
            .contains("$(id); touch /tmp/pwned; rm -rf /\n"),
        "{}",
        literal.output
    );
    // A parameter and an earlier step's output are values in argv too.
    let fed = step(&done, "from_params");
    assert_eq!(fed.status, StepStatus::Succeeded);
    assert_eq!(fed.result["stdout"], json!(format!("{note} {health}")));

    // A non-zero exit fails the step and stops the run.
    let exits = step(&done, "exits");
    assert_eq!(exits.status, StepStatus::Failed);
    assert_eq!(exits.error.as_deref(), Some("exit code 3"));
    assert_eq!(step(&done, "never").status, StepStatus::Skipped);
    assert!(
        done.error.as_deref().unwrap_or("").contains("exit code 3"),
        "{:?}",
        done.error
    );

    // Nothing the text asked for happened in the container.
    let id = service(&env.op, "gitea").await.expect("gitea").service.id;
    let r: ExecResult = ok_json(
        env.op
            .post(
                &format!("/api/v1/services/{id}/exec"),
                &json!({"argv": ["ls", "/tmp/pwned", "/www/healthz", "/bin/sh"]}),
            )
            .await,
        "exec ls",
    )
    .await;
    assert_eq!(r.exit_code, Some(1), "only /tmp/pwned is missing: {r:?}");
    assert!(r.stderr.contains("/tmp/pwned"), "{r:?}");
    assert!(
        r.stdout.contains("/www/healthz") && r.stdout.contains("/bin/sh"),
        "{r:?}"
    );
    env.stack
        .wait_healthy(Duration::from_secs(10))
        .await
        .expect("gitea still answers");

    drop(env);
    release(engine).await;
}
