//! Incidents in headless Chromium: an operator sees an incident declared
//! through the API appear in the list live, opens it, acknowledges it (the
//! status pill changes), adds a note (it appears on the timeline), then a
//! second operator's note added through the API arrives live (SSE, no
//! reload); resolves it, starts the post-mortem, sees the report. A viewer
//! sees the incident but no action.
//!
//! Screenshots land in `<workspace>/target/screenshots/`.

use opsdeck_e2e::browser::{screenshots, Browser};
use opsdeck_e2e::server::{TestServer, PASSWORD};
use opsdeck_e2e::util::ok_json;
use opsdeck_wire::{Incident, Role, RunbookBinding, Service};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_acknowledges_and_notes_an_incident_live() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    server.create_user("alice", Role::Operator).await;
    server.create_user("bob", Role::Operator).await;
    server.create_user("vera", Role::Viewer).await;
    let bob = server.login("bob").await;
    let mut ids = Vec::new();
    for name in ["gitea", "postgres"] {
        let svc: Service = ok_json(
            admin
                .post(
                    "/api/v1/services",
                    &json!({"name": name, "tier": "critical"}),
                )
                .await,
            "service",
        )
        .await;
        ids.push(svc.id);
    }
    let older: Incident = ok_json(
        bob.post(
            "/api/v1/incidents",
            &json!({"title": "Wiki pages load slowly", "severity": "P3",
                    "summary": "Pages take 8 s to render.", "services": []}),
        )
        .await,
        "incident",
    )
    .await;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&server.url("/login"), "alice", PASSWORD).await;
    b.goto(&server.url("/incidents")).await;
    b.wait_for(&format!(
        "[data-testid=incident-row-{}][data-status=triggered]",
        older.id
    ))
    .await;
    assert!(
        b.exists("[data-testid=declare-incident]").await,
        "an operator can declare an incident"
    );

    // Declared through the API by somebody else: it appears without a reload.
    let marker: String = b
        .execute("window.__opsdeck_marker = 'same page'; return window.__opsdeck_marker;")
        .await;
    assert_eq!(marker, "same page");
    let inc: Incident = ok_json(
        bob.post(
            "/api/v1/incidents",
            &json!({"title": "Git hosting answers 502", "severity": "P1",
                    "summary": "Pushes fail; the web UI answers 502 Bad Gateway.",
                    "services": ids}),
        )
        .await,
        "incident",
    )
    .await;
    let row = format!("[data-testid=incident-row-{}]", inc.id);
    b.wait_for(&row).await;
    b.wait_for_contains(&row, "Git hosting answers 502").await;
    let still: String = b
        .execute("return window.__opsdeck_marker || 'reloaded';")
        .await;
    assert_eq!(
        still, "same page",
        "the new incident arrived without a reload"
    );
    b.screenshot(&screenshots().join("incidents-list.png"))
        .await;

    // The incident page: acknowledge, then a note.
    b.wait_for(&format!("{row} a[href='/incidents/{}']", inc.id))
        .await
        .click()
        .await
        .expect("opening the incident");
    b.wait_for_path(&format!("/incidents/{}", inc.id)).await;
    b.wait_for("[data-testid=incident-status][data-status=triggered]")
        .await;
    b.wait_for("[data-testid=incident-severity][data-severity=P1]")
        .await;
    b.wait_for("[data-testid=sla-ack]").await;
    b.wait_for("[data-testid=timeline-event]").await;
    b.wait_for("[data-testid=ack-incident]")
        .await
        .click()
        .await
        .expect("clicking Acknowledge");
    b.wait_for("[data-testid=incident-status][data-status=acknowledged]")
        .await;
    b.wait_for("[data-testid=timeline-event][data-kind=acknowledged]")
        .await;
    assert!(
        !b.exists("[data-testid=ack-incident]").await,
        "Acknowledge is gone once acknowledged"
    );
    b.wait_for("[data-testid=resolve-incident]").await;
    b.wait_for("[data-testid=sla-ack][data-state=met]").await;
    let marker: String = b
        .execute("window.__opsdeck_marker = 'same page'; return window.__opsdeck_marker;")
        .await;
    assert_eq!(marker, "same page");
    b.wait_for("[data-testid=note-input]")
        .await
        .send_keys("Disk on db01 is full; freeing space.")
        .await
        .expect("typing the note");
    b.wait_for("[data-testid=add-note]")
        .await
        .click()
        .await
        .expect("clicking Add note");
    b.wait_for_contains(
        "[data-testid=timeline-event][data-kind=note]",
        "Disk on db01 is full; freeing space.",
    )
    .await;

    // Another operator's note arrives live.
    let res = bob
        .post(
            &format!("/api/v1/incidents/{}/notes", inc.id),
            &json!({"text": "Rotated the WAL archive; postgres is starting."}),
        )
        .await;
    assert_eq!(
        res.status(),
        201,
        "bob's note: {}",
        res.text().await.unwrap_or_default()
    );
    b.wait_for_contains(
        "[data-testid=timeline-event][data-kind=note]",
        "Rotated the WAL archive; postgres is starting.",
    )
    .await;
    let still: String = b
        .execute("return window.__opsdeck_marker || 'reloaded';")
        .await;
    assert_eq!(still, "same page", "bob's note arrived without a reload");
    b.wait_for("[data-testid=postmortem-link]").await;
    b.screenshot(&screenshots().join("incident.png")).await;

    // Resolve (it asks first), then the post-mortem template and the report.
    b.wait_for("[data-testid=resolve-incident]")
        .await
        .click()
        .await
        .expect("clicking Resolve");
    b.wait_for("[data-testid=act-note]")
        .await
        .send_keys("Freed 40 GB on db01.")
        .await
        .expect("typing the resolve note");
    b.wait_for("[data-testid=act-confirm]")
        .await
        .click()
        .await
        .expect("confirming Resolve");
    b.wait_for("[data-testid=incident-status][data-status=resolved]")
        .await;
    b.wait_for("[data-testid=reopen-incident]").await;
    b.wait_for_contains(
        "[data-testid=timeline-event][data-kind=resolved]",
        "Freed 40 GB on db01.",
    )
    .await;
    b.wait_for("[data-testid=postmortem-link]")
        .await
        .click()
        .await
        .expect("opening the post-mortem");
    b.wait_for_path(&format!("/incidents/{}/postmortem", inc.id))
        .await;
    b.wait_for("[data-testid=pm-template]").await;
    let summary = b.wait_for("[data-testid=pm-summary]").await;
    summary.clear().await.expect("clearing the summary");
    summary
        .send_keys("Postgres stopped: its disk on db01 was full; Git hosting answered 502.")
        .await
        .expect("typing the summary");
    b.wait_for("[data-testid=pm-save]")
        .await
        .click()
        .await
        .expect("saving the post-mortem");
    b.wait_for("[data-testid=pm-saved]").await;
    b.screenshot(&screenshots().join("incident-postmortem.png"))
        .await;
    b.goto(&server.url("/reports/incidents?days=7")).await;
    b.wait_for_text("[data-testid=report-total]", "2").await;
    b.screenshot(&screenshots().join("incident-reports.png"))
        .await;

    // A viewer sees the incident and its timeline, and no action.
    b.wait_for("[data-testid=logout]")
        .await
        .click()
        .await
        .expect("logging out");
    b.wait_for_path("/login").await;
    b.submit_login("vera", PASSWORD).await;
    b.wait_for_path("/").await;
    b.goto(&server.url(&format!("/incidents/{}", inc.id))).await;
    b.wait_for("[data-testid=incident-status][data-status=resolved]")
        .await;
    b.wait_for_contains("[data-testid=incident-timeline]", "Rotated the WAL archive")
        .await;
    for action in [
        "ack-incident",
        "diagnose-incident",
        "mitigate-incident",
        "resolve-incident",
        "reopen-incident",
        "postmortem-done",
        "change-severity",
        "take-command",
        "edit-summary",
        "add-service",
        "note-input",
        "add-note",
    ] {
        assert!(
            !b.exists(&format!("[data-testid={action}]")).await,
            "a viewer is offered {action}"
        );
    }
    // Resolved: listed under closed (and all), not under open.
    b.goto(&server.url("/incidents?status=closed")).await;
    b.wait_for(&format!("{row}[data-status=resolved]")).await;
    assert!(
        !b.exists(&format!("[data-testid=incident-row-{}]", older.id))
            .await,
        "the open incident is not listed under closed"
    );
    assert!(
        !b.exists("[data-testid=declare-incident]").await,
        "a viewer cannot declare an incident"
    );
    b.close().await;
}

/// A runbook bound to alerts as a suggestion shows on the incident page
/// with its parameters filled in from the incident, and one click starts it
/// for that incident as the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suggested_runbook_starts_from_the_incident_page() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    server.create_user("alice", Role::Operator).await;
    let alice = server.login("alice").await;
    let svc: Service = ok_json(
        admin
            .post(
                "/api/v1/services",
                &json!({"name": "gitea", "tier": "application"}),
            )
            .await,
        "service",
    )
    .await;
    let rb = opsdeck_e2e::flows::runbooks::create(
        &admin,
        r#"
name: service-status
title: Service status
target_param: service
params:
  - name: service
    type: service
steps:
  - name: status
    kind: status
    service: "{{params.service}}"
"#,
    )
    .await;
    let binding: RunbookBinding = ok_json(
        admin
            .post(
                "/api/v1/runbook-bindings",
                &json!({"runbook": "service-status", "mode": "suggested",
                        "trigger": {"severity": 2}}),
            )
            .await,
        "binding",
    )
    .await;
    let inc: Incident = ok_json(
        alice
            .post(
                "/api/v1/incidents",
                &json!({"title": "Git pushes fail", "severity": "P2",
                        "summary": "", "services": [svc.id]}),
            )
            .await,
        "incident",
    )
    .await;

    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&server.url("/login"), "alice", PASSWORD).await;
    b.goto(&server.url(&format!("/incidents/{}", inc.id))).await;
    let item = format!("[data-testid=bound-{}]", binding.id);
    b.wait_for_contains(&item, "Service status").await;
    b.wait_for_contains(&item, "service=gitea").await;
    b.wait_for_contains(&item, "severity P2 or worse").await;
    b.screenshot(&screenshots().join("incident-bound-runbooks.png"))
        .await;
    b.wait_for(&format!("[data-testid=start-bound-{}]", binding.id))
        .await
        .click()
        .await
        .expect("clicking Start");
    let run: i64 = opsdeck_e2e::util::poll(
        std::time::Duration::from_secs(30),
        "the started run",
        async || {
            sqlx::query_scalar::<_, i64>("SELECT id FROM runs WHERE runbook_id = $1")
                .bind(rb.id)
                .fetch_optional(&server.pool)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "none yet".to_owned())
        },
    )
    .await;
    b.wait_for_path(&format!("/runs/{run}")).await;
    let (by, incident, params): (String, Option<i64>, serde_json::Value) =
        sqlx::query_as("SELECT requested_by, incident_id, params FROM runs WHERE id = $1")
            .bind(run)
            .fetch_one(&server.pool)
            .await
            .unwrap();
    assert_eq!(by, "alice");
    assert_eq!(incident, Some(inc.id), "started for the incident");
    assert_eq!(params, json!({"service": "gitea"}));
    b.close().await;
}

/// The contacts admin in the browser: adding a person through the form
/// reports "Added <name>." and lists them; adding the same name again shows
/// the API's refusal in the form and adds nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_adds_a_person_and_sees_a_duplicate_refused() {
    let spa = opsdeck_e2e::server::spa();
    if spa.is_err() {
        return;
    }
    let server = TestServer::start().await;
    server.create_user("ada", Role::Admin).await;
    let Ok(b) = Browser::start().await else {
        return;
    };
    b.set_window_size(1400, 1000).await;
    b.sign_in(&server.url("/login"), "ada", PASSWORD).await;
    b.goto(&server.url("/admin/contacts")).await;
    for attempt in 0..2 {
        b.wait_for("[data-testid=add-person]")
            .await
            .click()
            .await
            .expect("clicking Add person");
        b.wait_for("[data-testid=person-name]")
            .await
            .send_keys("Grace Hopper")
            .await
            .expect("typing the name");
        b.wait_for("[data-testid=save-person]")
            .await
            .click()
            .await
            .expect("saving");
        if attempt == 0 {
            b.wait_for_contains("[data-testid=contacts-notice]", "Added Grace Hopper.")
                .await;
        } else {
            b.wait_for_contains("[data-testid=person-form] [role=alert]", "exists")
                .await;
        }
    }
    let people: Vec<opsdeck_wire::Person> = server.login("ada").await.json("/api/v1/people").await;
    assert_eq!(people.len(), 1, "{people:#?}");
    b.close().await;
}
