//! A Prometheus rules file imported as Prometheus-query checks, against a
//! real Prometheus scraping a target whose traffic the test controls.
//!
//! - `rules_import_preview_apply_and_follow_the_error_rate`: the
//!   handbooks' error-rate rules (warning > 1 %, critical > 5 %) merge into
//!   one check on the ratio, a complex rule fires on any series, a
//!   recording rule and a templated annotation are listed; a viewer is
//!   refused; a rule with bad PromQL is refused naming the rule; apply
//!   creates the checks, which follow the error rate ok → warning →
//!   critical and the queue ok → warning; a re-import says `exists` and
//!   creates nothing; a bearer token is stored and audited as set only;
//!   the import and each check are audited.
//! - `rules_import_page`: the page in headless Chromium: upload, preview,
//!   a service chosen, apply with confirmation (screenshot
//!   `rules-import.png`).

use std::time::Duration;

use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::flows::audit::audit;
use opsdeck_e2e::flows::checks::run_until;
use opsdeck_e2e::prometheus::{MetricsTarget, Prometheus};
use opsdeck_e2e::server::{web_root, Api, TestServer, PASSWORD};
use opsdeck_e2e::util::{expect_error, ok_json, poll};
use opsdeck_wire::{
    Check, CheckStatus, FiringLevel, ProbeResult, Role, RuleCheckState, RulesImportPlan, Service,
};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(90);
const RATIO: &str =
    r#"sum(rate(http_requests_total{code="500"}[5s])) / sum(rate(http_requests_total[5s]))"#;

fn rules_file() -> String {
    format!(
        r#"groups:
  - name: api
    interval: 5s
    rules:
      - alert: ApiErrorRate
        expr: {RATIO} > 0.01
        for: 2s
        labels:
          severity: warning
          service: api
        annotations:
          summary: "Error rate {{{{ $value | humanizePercentage }}}} on {{{{ $labels.instance }}}}"
      - alert: ApiErrorRate
        expr: {RATIO} > 0.05
        for: 2s
        labels:
          severity: critical
          service: api
      - alert: QueueBacklog
        expr: app_queue_length > 10 and on() up == 1
        labels:
          severity: warning
          service: api
      - record: job:http_requests:rate5s
        expr: sum by (job) (rate(http_requests_total[5s]))
"#
    )
}

async fn until(api: &Api, id: i64, status: CheckStatus, needle: &str) -> ProbeResult {
    run_until(api, id, WAIT, status, needle).await
}

async fn start_prometheus(target: &MetricsTarget) -> Option<Prometheus> {
    let host = target.host();
    tokio::task::spawn_blocking(move || Prometheus::start(&[host]))
        .await
        .expect("starting prometheus")
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_import_preview_apply_and_follow_the_error_rate() {
    let target = MetricsTarget::start().await;
    target.set_rates(100.0, 0.0);
    let Some(prom) = start_prometheus(&target).await else {
        return;
    };
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let operator = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "api", "tier": "critical"}),
            )
            .await,
        "creating the service",
    )
    .await;
    let body = |yaml: &str| json!({"yaml": yaml, "url": prom.url()});
    let preview = "/api/v1/checks/import-rules/preview";
    let apply = "/api/v1/checks/import-rules/apply";

    // A viewer may neither preview nor apply.
    expect_error(viewer.post(preview, &body(&rules_file())).await, 403).await;
    expect_error(viewer.post(apply, &body(&rules_file())).await, 403).await;

    // The preview: one merged check, one firing check, the rest listed.
    let plan: RulesImportPlan = ok_json(
        operator.post(preview, &body(&rules_file())).await,
        "preview",
    )
    .await;
    assert!(!plan.applied);
    assert_eq!((plan.groups, plan.alerting_rules), (1, 3));
    assert_eq!(plan.checks.len(), 2, "{:?}", plan.checks);
    let rate = &plan.checks[0];
    assert_eq!(rate.key, "api/ApiErrorRate");
    assert_eq!(rate.alerts, ["ApiErrorRate", "ApiErrorRate"]);
    assert_eq!(rate.spec.query, RATIO);
    assert_eq!((rate.spec.warning, rate.spec.critical), (0.01, 0.05));
    assert_eq!(rate.spec.firing, None);
    assert_eq!(rate.spec.sustained_s, 2);
    assert_eq!(rate.interval_s, 5);
    assert_eq!(rate.service_id, Some(svc.id));
    assert_eq!(rate.state, RuleCheckState::New);
    assert!(rate.selected && rate.query_error.is_none());
    let queue = &plan.checks[1];
    assert_eq!(queue.key, "api/QueueBacklog");
    assert_eq!(queue.spec.firing, Some(FiringLevel::Warning));
    assert_eq!(queue.spec.query, "app_queue_length > 10 and on() up == 1");
    let reasons: Vec<String> = plan
        .unsupported
        .iter()
        .map(|n| format!("{}: {}", n.rule, n.reason))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.starts_with("job:http_requests:rate5s: recording rule")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("templated") && r.contains("{{ $labels.instance }}")),
        "{reasons:?}"
    );
    // A preview writes nothing but its audit entry.
    let none: Vec<Check> = admin.json("/api/v1/checks").await;
    assert!(none.is_empty());

    // A rule whose PromQL the server refuses: shown in the preview, and
    // an apply is refused naming the rule; nothing is created.
    let broken = format!(
        "{}      - alert: Broken\n        expr: sum(rate(http_requests_total[5s]) > 1\n",
        rules_file()
    );
    let plan: RulesImportPlan =
        ok_json(operator.post(preview, &body(&broken)).await, "preview").await;
    let b = plan
        .checks
        .iter()
        .find(|c| c.key == "api/Broken")
        .expect("the broken rule is proposed");
    assert!(!b.selected, "{b:?}");
    assert!(
        b.query_error
            .as_deref()
            .is_some_and(|e| e.contains("bad_data")),
        "{b:?}"
    );
    let m = expect_error(operator.post(apply, &body(&broken)).await, 400).await;
    assert!(m.contains("alert Broken (group api)"), "{m}");
    assert!(m.contains("bad_data"), "{m}");
    let none: Vec<Check> = admin.json("/api/v1/checks").await;
    assert!(none.is_empty(), "a refused import creates nothing");
    // A YAML syntax error is a 400 with its place.
    let m = expect_error(
        operator
            .post(preview, &body("groups:\n  - name: a\n    rules: [\n"))
            .await,
        400,
    )
    .await;
    assert!(m.starts_with("yaml: line "), "{m}");

    // Apply: both checks, in one go.
    let done: RulesImportPlan =
        ok_json(operator.post(apply, &body(&rules_file())).await, "apply").await;
    assert!(done.applied);
    let ids: Vec<i64> = done.checks.iter().filter_map(|c| c.check_id).collect();
    assert_eq!(ids.len(), 2, "{:?}", done.checks);
    let checks: Vec<Check> = admin.json("/api/v1/checks").await;
    let rate_check = checks
        .iter()
        .find(|c| c.name == "ApiErrorRate")
        .expect("the merged check");
    assert_eq!(rate_check.service_id, Some(svc.id));
    assert_eq!(rate_check.interval_s, 5);
    assert!(!rate_check.has_password);
    let queue_check = checks
        .iter()
        .find(|c| c.name == "QueueBacklog")
        .expect("the firing check");

    // The merged check follows the error rate: ok → warning → critical.
    until(&operator, rate_check.id, CheckStatus::Ok, "{} 0").await;
    target.set_rates(97.0, 3.0);
    until(
        &operator,
        rate_check.id,
        CheckStatus::Warning,
        "(warning ≥ 0.01)",
    )
    .await;
    target.set_rates(90.0, 10.0);
    until(
        &operator,
        rate_check.id,
        CheckStatus::Critical,
        "(critical ≥ 0.05)",
    )
    .await;
    target.set_rates(100.0, 0.0);
    // The complex rule fires while its expression returns a series.
    until(
        &operator,
        queue_check.id,
        CheckStatus::Ok,
        "no series firing",
    )
    .await;
    target.set_queue(50.0);
    let r = until(
        &operator,
        queue_check.id,
        CheckStatus::Warning,
        "1 series firing (warning)",
    )
    .await;
    assert!(r.message.contains("50"), "{}", r.message);

    // A re-import creates nothing twice.
    let again: RulesImportPlan = ok_json(
        operator.post(preview, &body(&rules_file())).await,
        "re-preview",
    )
    .await;
    assert!(
        again
            .checks
            .iter()
            .all(|c| c.state == RuleCheckState::Exists && !c.selected),
        "{:?}",
        again.checks
    );
    assert_eq!(again.checks[0].existing_check_id, Some(rate_check.id));
    let none: RulesImportPlan =
        ok_json(operator.post(apply, &body(&rules_file())).await, "re-apply").await;
    assert!(none.checks.iter().all(|c| c.check_id.is_none()));
    let mut pick = body(&rules_file());
    pick["selected"] = json!(["api/ApiErrorRate"]);
    let m = expect_error(operator.post(apply, &pick).await, 400).await;
    assert!(m.contains("exists"), "{m}");
    assert_eq!(admin.json::<Vec<Check>>("/api/v1/checks").await.len(), 2);

    // A token is stored sealed with the check, a host-level choice kept,
    // and neither the token nor its text reaches the audit log.
    let token = "tok-rules-import-5f1c";
    let down = "groups:\n  - name: infra\n    rules:\n      - alert: TargetDown\n        expr: up == 0\n        labels: {severity: critical, service: api}\n";
    let mut req = body(down);
    req["token"] = json!(token);
    req["services"] = json!({"infra/TargetDown": Value::Null});
    let done: RulesImportPlan =
        ok_json(operator.post(apply, &req).await, "apply with a token").await;
    let id = done.checks[0].check_id.expect("created");
    let c: Check = admin.json(&format!("/api/v1/checks/{id}")).await;
    assert!(c.has_password);
    assert_eq!(c.service_id, None, "the request chose no service");
    until(&operator, id, CheckStatus::Ok, "no series firing").await;

    // Audited: each import (preview and apply) and each check created.
    let applies = audit(&admin, "check.rules_import.apply").await;
    assert_eq!(applies.len(), 3, "{applies:?}");
    assert!(!audit(&admin, "check.rules_import.preview").await.is_empty());
    let creates = audit(&admin, "check.create").await;
    assert_eq!(creates.len(), 3);
    assert!(creates
        .iter()
        .all(|e| e.params["import"]["rules"].is_string()));
    let all: Value = admin.json("/api/v1/audit?limit=200").await;
    assert!(
        !all.to_string().contains(token),
        "the token is in the audit log"
    );

    drop(prom);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_import_page() {
    if opsdeck_e2e::require::part(
        web_root().join("index.html").is_file(),
        "the built SPA (frontend/dist/index.html, or OPSDECK_WEB_ROOT)",
        "make frontend",
    )
    .is_err()
    {
        return;
    }
    let target = MetricsTarget::start().await;
    target.set_rates(100.0, 0.0);
    let Some(prom) = start_prometheus(&target).await else {
        return;
    };
    let server = TestServer::start().await;
    server.create_user("alice", Role::Operator).await;
    let admin = server.user(Role::Admin).await;
    for name in ["api", "wiki"] {
        let _: Service = ok_json(
            admin
                .post(
                    "/api/v1/services",
                    &json!({"name": name, "tier": "critical"}),
                )
                .await,
            "creating a service",
        )
        .await;
    }
    let Ok(b) = Browser::start().await else {
        return;
    };
    b.sign_in(&server.url("/login"), "alice", PASSWORD).await;
    b.goto(&server.url("/checks")).await;
    b.wait_for("[data-testid=import-rules]")
        .await
        .click()
        .await
        .expect("opening the import");
    b.wait_for_path("/checks/import-rules").await;

    // The file uploaded as a user picks it.
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("api-rules.yml");
    std::fs::write(&path, rules_file()).expect("writing the rules file");
    b.wait_for("[data-testid=rules-file]")
        .await
        .send_keys(&path.display().to_string())
        .await
        .expect("choosing the file");
    poll(WAIT, "the file in the text area", async || {
        let v = b
            .execute("return document.querySelector('[data-testid=rules-yaml]').value;")
            .await;
        v.contains("ApiErrorRate").then_some(()).ok_or(v)
    })
    .await;
    b.wait_for("[data-testid=rules-url]")
        .await
        .send_keys(&prom.url())
        .await
        .expect("typing the URL");
    b.wait_for("[data-testid=rules-preview]")
        .await
        .click()
        .await
        .expect("preview");
    b.wait_for("[data-testid=rules-table]").await;
    let grading = b
        .wait_for("[data-testid='rule-grading-api/ApiErrorRate']")
        .await
        .text()
        .await
        .expect("grading");
    assert_eq!(grading, "warning ≥ 0.01, critical ≥ 0.05");
    b.wait_for_contains("[data-testid=rules-unsupported]", "recording rule")
        .await;
    b.wait_for_contains("[data-testid=rules-summary]", "2 checks: 2 new")
        .await;
    // The queue check goes to wiki instead of the matched api.
    let wiki_id = b
        .execute(
            "const s = document.querySelector(\"[data-testid='rule-service-api/QueueBacklog']\");\
             const o = [...s.options].find(o => o.text === 'wiki');\
             s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true})); return o.value;",
        )
        .await;
    b.set_window_size(1400, 1000).await;
    b.execute(
        "document.querySelector('[data-testid=rules-plan]').scrollIntoView({block: 'start'}); return 'ok';",
    )
    .await;
    b.screenshot(&screenshots().join("rules-import.png")).await;

    b.wait_for("[data-testid=rules-apply]")
        .await
        .click()
        .await
        .expect("apply");
    b.wait_for("[data-testid=confirm]")
        .await
        .click()
        .await
        .expect("confirm");
    b.wait_for_contains("[data-testid=rules-applied]", "Created 2 checks")
        .await;
    let checks: Vec<Check> = admin.json("/api/v1/checks").await;
    let queue = checks
        .iter()
        .find(|c| c.name == "QueueBacklog")
        .expect("created");
    assert_eq!(
        queue.service_id.map(|i| i.to_string()),
        Some(wiki_id.trim_matches('"').to_string())
    );
    b.screenshot(&screenshots().join("rules-import-applied.png"))
        .await;
    b.close().await;
    drop(prom);
    server.stop().await;
}
