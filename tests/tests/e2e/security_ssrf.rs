//! Issue 19, finding 7: HTTP checks and runbook `http` steps must not
//! reach link-local addresses and cloud metadata services (a check with
//! `body_regex` and "Run now" reads them a bit per request). The shared
//! guard (`net::guard`) refuses them at creation (a field error), before a
//! probe, on every redirect hop and in DNS answers; loopback and private
//! ranges stay allowed; `OPSDECK_CHECKS_ALLOW_LINK_LOCAL` lifts it.
//!
//! What is tested where: IP literals, metadata names and a loopback target
//! redirecting to the metadata address run here end to end. A host *name*
//! whose DNS answer is link-local cannot be set up honestly on a test
//! machine without a network or an edited `/etc/hosts`, so that path is a
//! unit test of the guard with an injected resolver
//! (`net::guard::tests::resolver_drops_link_local_answers_of_an_injected_lookup`)
//! plus the probe's unit test of redirects to a metadata *name*.

use opsdeck_e2e::flows::runbooks::{create, start, wait_status};
use opsdeck_e2e::server::TestServer;
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::util::{expect_error, ok_json};
use opsdeck_wire::{Check, CheckStatus, ProbeResult, Role, RunStatus};
use serde_json::{json, Value};

const METADATA: &str = "http://169.254.169.254/latest/meta-data/iam/security-credentials/";

fn http_check(name: &str, url: &str) -> Value {
    json!({"name": name, "interval_s": 86_400, "timeout_ms": 3000,
           "fail_after": 1, "recover_after": 1,
           "spec": {"kind": "http", "url": url, "max_redirects": 3, "body_regex": "^A"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_and_http_steps_do_not_reach_the_metadata_service() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;

    // Refused at creation, with the field named.
    for url in [
        METADATA,
        "http://[fd00:ec2::254]/latest/",
        "http://[fe80::1]:8080/",
        "http://169.254.10.1/",
        "http://2852039166/",
        "http://metadata.google.internal/computeMetadata/v1/",
    ] {
        let res = op.post("/api/v1/checks", &http_check("meta", url)).await;
        assert_eq!(res.status(), 400, "{url} must be refused");
        let body: Value = res.json().await.expect("error body");
        assert_eq!(body["error"]["field"], "url", "{url}: {body}");
        let msg = body["error"]["message"].as_str().unwrap_or_default();
        assert!(msg.contains("checks_allow_link_local"), "{url}: {msg}");
    }
    // ... and when changed to it later.
    let fine = Target::start(Behaviour::Ok("All good".into()));
    let check: Check = ok_json(
        op.post("/api/v1/checks", &http_check("loopback", &fine.url()))
            .await,
        "a check on loopback is allowed",
    )
    .await;
    let r: ProbeResult = ok_json(
        op.post(&format!("/api/v1/checks/{}/run", check.id), &json!({}))
            .await,
        "running the loopback check",
    )
    .await;
    assert_eq!(r.status, CheckStatus::Ok, "{r:?}");
    let res = op
        .patch(
            &format!("/api/v1/checks/{}", check.id),
            &json!({"spec": {"kind": "http", "url": METADATA}}),
        )
        .await;
    expect_error(res, 400).await;

    // A loopback target redirecting to the metadata service: not followed.
    let redirect = Target::start(Behaviour::Redirect(METADATA.into()));
    let check: Check = ok_json(
        op.post("/api/v1/checks", &http_check("redirector", &redirect.url()))
            .await,
        "a check on a redirecting loopback target",
    )
    .await;
    let r: ProbeResult = ok_json(
        op.post(&format!("/api/v1/checks/{}/run", check.id), &json!({}))
            .await,
        "running the redirecting check",
    )
    .await;
    assert_eq!(r.status, CheckStatus::Critical, "{r:?}");
    assert!(
        r.message
            .starts_with("refused: redirect target 169.254.169.254 is the cloud metadata address"),
        "{}",
        r.message
    );

    // A runbook http step: the literal and the redirect.
    let rb = create(
        &admin,
        r#"
name: probe-url
title: Probe a URL
params:
  - name: url
    type: text
steps:
  - name: probe
    kind: http
    url: "{{params.url}}"
    timeout: 5s
"#,
    )
    .await;
    let run = start(&op, rb.id, json!({"url": METADATA})).await;
    let done = wait_status(&op, run.summary.id, RunStatus::Failed).await;
    let err = done.steps[0].error.clone().unwrap_or_default();
    assert!(
        err.starts_with("refused: 169.254.169.254 is the cloud metadata address"),
        "{err}"
    );
    let run = start(
        &op,
        rb.id,
        json!({"url": "http://metadata.google.internal/"}),
    )
    .await;
    let done = wait_status(&op, run.summary.id, RunStatus::Failed).await;
    let err = done.steps[0].error.clone().unwrap_or_default();
    assert!(err.contains("a cloud metadata host name"), "{err}");
    // Loopback stays allowed for steps too.
    let run = start(&op, rb.id, json!({"url": fine.url()})).await;
    wait_status(&op, run.summary.id, RunStatus::Succeeded).await;
    server.stop().await;

    // The server setting (never the API) lifts the refusal.
    let server = TestServer::start_with(|s| s.checks_allow_link_local = true).await;
    let op = server.user(Role::Operator).await;
    let res = op
        .post("/api/v1/checks", &http_check("meta", METADATA))
        .await;
    assert_eq!(res.status(), 201, "allowed with checks_allow_link_local");
    server.stop().await;
}
