//! Incidents over HTTP on a real server and Postgres: the life cycle with
//! its timeline and audit entries, validation, post-mortems, automatic
//! incidents from health checks (one per root cause, symptoms attached,
//! recovery proposed) and from Alertmanager, links to runs, reports and
//! CSV, and the live detail stream.

use std::time::Duration;

use chrono::{Duration as ChronoDuration, Utc};
use opsdeck_e2e::flows::incidents::{declare, detail};
use opsdeck_e2e::flows::services::create_service;
use opsdeck_e2e::server::{Api, TestServer};
use opsdeck_e2e::targets::{Behaviour, Target};
use opsdeck_e2e::util::{expect_error, ok_json, poll, sse_until};
use opsdeck_wire::{
    Check, Incident, IncidentDetail, IncidentList, IncidentReport, IncidentStatus, Postmortem,
    Role, Severity,
};
use serde_json::{json, Value};

const DAY: u64 = 86_400;

async fn act(api: &Api, id: i64, what: &str, note: &str) -> reqwest::Response {
    api.post(
        &format!("/api/v1/incidents/{id}/{what}"),
        &json!({ "note": note }),
    )
    .await
}

async fn audit_actions(server: &TestServer, target: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT action FROM audit_log WHERE target = $1 ORDER BY seq")
        .bind(target)
        .fetch_all(&server.pool)
        .await
        .expect("audit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incident_life_cycle_keeps_timeline_timers_and_audit() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let db = create_service(&admin, "postgres", "critical", &[]).await;

    // Validation at the boundary.
    expect_error(
        op.post(
            "/api/v1/incidents",
            &json!({"title": "  ", "severity": "P1"}),
        )
        .await,
        400,
    )
    .await;
    expect_error(
        op.post(
            "/api/v1/incidents",
            &json!({"title": "x", "severity": "P5"}),
        )
        .await,
        400,
    )
    .await;
    let msg = expect_error(
        op.post(
            "/api/v1/incidents",
            &json!({"title": "x", "severity": "P2", "services": [987654]}),
        )
        .await,
        400,
    )
    .await;
    assert!(msg.contains("987654"), "{msg}");
    // Viewers read, never write.
    expect_error(
        viewer
            .post(
                "/api/v1/incidents",
                &json!({"title": "x", "severity": "P2"}),
            )
            .await,
        403,
    )
    .await;

    let i = declare(
        &op,
        json!({"title": "Checkout is down", "severity": "P1", "services": [db.id],
               "summary": "502 from the proxy"}),
    )
    .await;
    assert_eq!(i.status, IncidentStatus::Triggered);
    assert_eq!(i.severity, Severity::P1);
    assert_eq!(i.services.len(), 1);
    assert_eq!(i.services[0].name, "postgres");
    // P1 has the handbook's five targets: ack 5 min … post-mortem 24 h.
    let targets: Vec<(String, i64)> = i
        .sla
        .iter()
        .map(|t| (t.milestone.clone(), t.target_secs))
        .collect();
    assert_eq!(
        targets,
        vec![
            ("ack".into(), 300),
            ("diagnose".into(), 900),
            ("mitigate".into(), 1800),
            ("resolve".into(), 7200),
            ("postmortem".into(), 86400)
        ]
    );
    assert!(i.sla.iter().all(|t| !t.breached && t.met_at.is_none()));

    // Invalid transitions are refused with the reason.
    let msg = expect_error(act(&op, i.id, "reopen", "").await, 409).await;
    assert!(msg.contains("triggered"), "{msg}");
    expect_error(act(&viewer, i.id, "acknowledge", "").await, 403).await;

    let acked: Incident = ok_json(act(&op, i.id, "acknowledge", "on it").await, "ack").await;
    assert_eq!(acked.status, IncidentStatus::Acknowledged);
    assert!(acked.acknowledged_at.is_some());
    assert!(acked.next_escalation_at.is_none());
    expect_error(act(&op, i.id, "acknowledge", "").await, 409).await;
    // An empty body is fine for the status actions.
    let res = op
        .client
        .post(server.url(&format!("/api/v1/incidents/{}/diagnose", i.id)))
        .header("X-Requested-With", "opsdeck-test")
        .send()
        .await
        .unwrap();
    let diag: Incident = ok_json(res, "diagnose without a body").await;
    assert!(diag.diagnosed_at.is_some());
    let _: Incident = ok_json(act(&op, i.id, "mitigate", "failed over").await, "mitigate").await;
    let note = op
        .post(
            &format!("/api/v1/incidents/{}/notes", i.id),
            &json!({"text": "replica promoted"}),
        )
        .await;
    assert_eq!(note.status(), 201);
    expect_error(
        op.post(
            &format!("/api/v1/incidents/{}/notes", i.id),
            &json!({"text": "   "}),
        )
        .await,
        400,
    )
    .await;
    // Severity change with a reason; commander.
    let me: Value = op.json("/api/v1/me").await;
    let changed: Incident = ok_json(
        op.patch(
            &format!("/api/v1/incidents/{}", i.id),
            &json!({"severity": "P2", "reason": "only checkout affected",
                    "commander_id": me["id"]}),
        )
        .await,
        "patch",
    )
    .await;
    assert_eq!(changed.severity, Severity::P2);
    assert_eq!(changed.commander.as_deref(), me["username"].as_str());
    let resolved: Incident = ok_json(act(&op, i.id, "resolve", "").await, "resolve").await;
    assert_eq!(resolved.status, IncidentStatus::Resolved);
    // Met milestones stay met, and in time.
    assert!(resolved
        .sla
        .iter()
        .filter(|t| t.milestone != "postmortem")
        .all(|t| t.met_at.is_some() && !t.breached));

    // The post-mortem starts as a template from the timeline.
    let pm: Postmortem = viewer
        .json(&format!("/api/v1/incidents/{}/postmortem", i.id))
        .await;
    assert!(pm.updated_at.is_none());
    assert!(pm.timeline.contains("replica promoted"), "{}", pm.timeline);
    assert!(pm.timeline.contains("Severity P1 → P2"), "{}", pm.timeline);
    assert!(pm.impact.contains("postgres"), "{}", pm.impact);
    let mut edited = pm.clone();
    edited.root_cause = "disk full on the primary".into();
    edited.action_items = vec![opsdeck_wire::ActionItem {
        what: "alert at 80% disk".into(),
        owner: "dba".into(),
        due: None,
        done: false,
    }];
    expect_error(
        viewer
            .send(
                reqwest::Method::PUT,
                &format!("/api/v1/incidents/{}/postmortem", i.id),
                &serde_json::to_value(&edited).unwrap(),
            )
            .await,
        403,
    )
    .await;
    let saved: Postmortem = ok_json(
        op.send(
            reqwest::Method::PUT,
            &format!("/api/v1/incidents/{}/postmortem", i.id),
            &serde_json::to_value(&edited).unwrap(),
        )
        .await,
        "save post-mortem",
    )
    .await;
    assert!(saved.updated_at.is_some());
    let md = viewer
        .get(&format!("/api/v1/incidents/{}/postmortem/markdown", i.id))
        .await;
    assert_eq!(md.status(), 200);
    assert!(md.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/markdown"));
    let md = md.text().await.unwrap();
    assert!(
        md.contains("## Root cause\n\ndisk full on the primary"),
        "{md}"
    );
    assert!(md.contains("| alert at 80% disk | dba |"), "{md}");
    let done: Incident = ok_json(
        act(&op, i.id, "postmortem/done", "").await,
        "post-mortem done",
    )
    .await;
    assert_eq!(done.status, IncidentStatus::PostmortemDone);

    // Every step is on the timeline, in order, and in the audit log.
    let d = detail(&viewer, i.id).await;
    let kinds: Vec<&str> = d.timeline.iter().map(|e| e.kind.as_str()).collect();
    for k in [
        "created",
        "acknowledged",
        "diagnosed",
        "mitigated",
        "note",
        "severity",
        "commander",
        "resolved",
        "postmortem",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert_eq!(kinds[0], "created");
    let audit = audit_actions(&server, &format!("incident:{}", i.id)).await;
    for a in [
        "incident.open",
        "incident.create",
        "incident.acknowledge",
        "incident.diagnose",
        "incident.mitigate",
        "incident.note",
        "incident.update",
        "incident.resolve",
        "incident.postmortem.save",
        "incident.postmortem_done",
    ] {
        assert!(audit.contains(&a.to_string()), "{a} missing from {audit:?}");
    }
    // Timeline rows cannot be edited (append-only trigger).
    let r = sqlx::query("UPDATE timeline_events SET message = 'x' WHERE subject_type = 'incident'")
        .execute(&server.pool)
        .await;
    assert!(r.is_err(), "timeline must be append-only");

    // Lists filter by status, severity and text.
    let open: IncidentList = viewer.json("/api/v1/incidents").await;
    assert_eq!(open.total, 0);
    let all: IncidentList = viewer.json("/api/v1/incidents?status=all&q=checkout").await;
    assert_eq!(all.total, 1);
    let none: IncidentList = viewer
        .json("/api/v1/incidents?status=all&severity=P4")
        .await;
    assert_eq!(none.total, 0);
    expect_error(viewer.get("/api/v1/incidents?status=nope").await, 400).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_cause_opens_one_incident_and_symptoms_attach_to_it() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let pg = create_service(&admin, "postgres", "critical", &[]).await;
    let gitea = create_service(&admin, "gitea", "application", &["postgres"]).await;
    let db_target = Target::start(Behaviour::Ok("ok".into()));
    let app_target = Target::start(Behaviour::Ok("ok".into()));
    let id_of = |n: &str| if n == "postgres" { pg.id } else { gitea.id };
    let mut checks = Vec::new();
    for (svc, t) in [("postgres", &db_target), ("gitea", &app_target)] {
        let c: Check = ok_json(
            op.post(
                "/api/v1/checks",
                &json!({"service_id": id_of(svc), "name": "http", "interval_s": DAY,
                        "timeout_ms": 2000, "fail_after": 1, "recover_after": 1,
                        "spec": {"kind": "http", "url": t.url()}}),
            )
            .await,
            "check",
        )
        .await;
        checks.push(c.id);
    }
    let run_all = async || {
        for id in &checks {
            let r = op
                .post(&format!("/api/v1/checks/{id}/run"), &json!({}))
                .await;
            assert_eq!(r.status(), 200);
        }
    };
    run_all().await;
    // The database fails, and so does the app that needs it.
    db_target.set(Behaviour::Status(500));
    app_target.set(Behaviour::Status(502));
    run_all().await;
    let incident = poll(
        Duration::from_secs(20),
        "an incident for the root cause",
        async || {
            let l: IncidentList = op.json("/api/v1/incidents").await;
            match l.items.as_slice() {
                [i] if i.services.len() == 2 => Ok(i.clone()),
                other => Err(format!("{other:#?}")),
            }
        },
    )
    .await;
    assert_eq!(incident.title, "postgres is down");
    assert_eq!(incident.source, "health");
    assert_eq!(incident.severity, Severity::P1, "critical tier → P1");
    let roles: Vec<(String, String)> = incident
        .services
        .iter()
        .map(|s| (s.name.clone(), s.role.clone()))
        .collect();
    assert!(
        roles.contains(&("postgres".into(), "root".into())),
        "{roles:?}"
    );
    assert!(
        roles.contains(&("gitea".into(), "symptom".into())),
        "{roles:?}"
    );
    let d = detail(&op, incident.id).await;
    let detected = d.timeline.iter().find(|e| e.kind == "detected").unwrap();
    assert!(detected.message.contains("500"), "{}", detected.message);
    assert!(d
        .timeline
        .iter()
        .any(|e| e.kind == "symptom" && e.message.contains("gitea is impacted by postgres")));

    // Still failing: no second incident.
    run_all().await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let l: IncidentList = op.json("/api/v1/incidents?status=all").await;
    assert_eq!(l.total, 1, "{:#?}", l.items);

    // Recovery proposes resolution (the default policy) and resolves nothing.
    db_target.set(Behaviour::Ok("ok".into()));
    app_target.set(Behaviour::Ok("ok".into()));
    run_all().await;
    let recovered = poll(Duration::from_secs(20), "recovery marked", async || {
        let d = detail(&op, incident.id).await;
        d.incident
            .recovered_at
            .map(|_| d.clone())
            .ok_or(format!("{:?}", d.incident.status))
    })
    .await;
    assert!(recovered.incident.status.is_open());
    assert_eq!(
        recovered
            .timeline
            .iter()
            .filter(|e| e.kind == "recovered")
            .count(),
        1
    );

    // Down again clears the mark on the same incident.
    db_target.set(Behaviour::Status(500));
    run_all().await;
    poll(Duration::from_secs(20), "down again", async || {
        let d = detail(&op, incident.id).await;
        d.incident
            .recovered_at
            .is_none()
            .then_some(())
            .ok_or("still recovered".to_string())
    })
    .await;
    // With on_recovery = resolve, recovery resolves it.
    let mut settings: Value = op.json("/api/v1/incident-settings").await;
    settings["on_recovery"] = json!("resolve");
    expect_error(
        op.send(reqwest::Method::PUT, "/api/v1/incident-settings", &settings)
            .await,
        403,
    )
    .await;
    let res = admin
        .send(reqwest::Method::PUT, "/api/v1/incident-settings", &settings)
        .await;
    assert_eq!(res.status(), 200);
    db_target.set(Behaviour::Ok("ok".into()));
    run_all().await;
    poll(
        Duration::from_secs(20),
        "resolved by recovery",
        async || {
            let d = detail(&op, incident.id).await;
            (d.incident.status == IncidentStatus::Resolved)
                .then_some(())
                .ok_or(format!("{:?}", d.incident.status))
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_alerts_group_by_fingerprint() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    create_service(&admin, "mosquitto", "critical", &[]).await;
    let token_for = async |role: &str| -> String {
        let t: Value = ok_json(
            admin
                .post(
                    "/api/v1/tokens",
                    &json!({"name": format!("am-{role}"), "role": role}),
                )
                .await,
            "token",
        )
        .await;
        t["token"].as_str().unwrap().to_owned()
    };
    let am = Api::with_token(&server.base, &token_for("operator").await);
    let viewer_token = Api::with_token(&server.base, &token_for("viewer").await);
    let payload = |status: &str, fp: &str| {
        json!({
            "version": "4", "groupKey": "{}:{alertname=\"ServiceDown\"}", "status": status,
            "receiver": "opsdeck", "commonLabels": {"alertname": "ServiceDown"},
            "externalURL": "http://alertmanager:9093",
            "alerts": [{
                "status": status,
                "labels": {"alertname": "ServiceDown", "severity": "critical", "job": "mosquitto"},
                "annotations": {"summary": "Service mosquitto is down", "description": "MQTT broker unreachable"},
                "startsAt": "2026-11-23T01:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph", "fingerprint": fp
            }]
        })
    };
    expect_error(
        viewer_token
            .post(
                "/api/v1/integrations/alertmanager",
                &payload("firing", "aaa"),
            )
            .await,
        403,
    )
    .await;
    let r: Value = ok_json(
        am.post(
            "/api/v1/integrations/alertmanager",
            &payload("firing", "aaa"),
        )
        .await,
        "firing",
    )
    .await;
    let id = r["opened"][0].as_i64().expect("opened");
    // Alertmanager repeats the notification: same incident.
    let r: Value = ok_json(
        am.post(
            "/api/v1/integrations/alertmanager",
            &payload("firing", "aaa"),
        )
        .await,
        "repeat",
    )
    .await;
    assert_eq!(r["opened"], json!([]));
    assert_eq!(r["updated"], json!([id]));
    let i = detail(&admin, id).await.incident;
    assert_eq!(i.title, "Service mosquitto is down");
    assert_eq!(i.severity, Severity::P1);
    assert_eq!(i.source, "alertmanager");
    assert_eq!(i.services[0].name, "mosquitto");
    // Another fingerprint is another incident.
    let r: Value = ok_json(
        am.post(
            "/api/v1/integrations/alertmanager",
            &payload("firing", "bbb"),
        )
        .await,
        "second",
    )
    .await;
    assert_ne!(r["opened"][0].as_i64(), Some(id));
    // Resolved marks recovery (default policy: propose).
    let _: Value = ok_json(
        am.post(
            "/api/v1/integrations/alertmanager",
            &payload("resolved", "aaa"),
        )
        .await,
        "resolved",
    )
    .await;
    let d = detail(&admin, id).await;
    assert!(d.incident.recovered_at.is_some());
    assert!(d.timeline.iter().any(|e| e.kind == "recovered"));
    // Garbage is refused clearly.
    expect_error(
        am.post(
            "/api/v1/integrations/alertmanager",
            &json!({"alerts": [{"status": "burning", "fingerprint": "x"}]}),
        )
        .await,
        400,
    )
    .await;
    let audit: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'incident.alertmanager' AND outcome = 'success'",
    )
    .fetch_one(&server.pool)
    .await
    .unwrap();
    assert_eq!(audit, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_link_to_incidents_and_the_page_updates_live() {
    let server = TestServer::start().await;
    let admin = server.user(Role::Admin).await;
    let op = server.user(Role::Operator).await;
    let viewer = server.user(Role::Viewer).await;
    let i = declare(&op, json!({"title": "Slow pages", "severity": "P3"})).await;

    // The detail stream sends the incident at once and again on a note.
    let events = viewer
        .get(&format!("/api/v1/incidents/{}/events", i.id))
        .await;
    assert_eq!(events.status(), 200);
    let note_task = {
        let op_base = op.clone();
        let id = i.id;
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(500)).await;
            op_base
                .post(
                    &format!("/api/v1/incidents/{id}/notes"),
                    &json!({"text": "looking at the proxy"}),
                )
                .await
        })
    };
    let (_, data) = sse_until(
        events,
        Duration::from_secs(15),
        "the note on the live stream",
        |event, data| event == "incident" && data.contains("looking at the proxy"),
    )
    .await;
    let live: IncidentDetail = serde_json::from_str(&data).unwrap();
    assert!(live.timeline.iter().any(|e| e.kind == "note"));
    assert_eq!(note_task.await.unwrap().status(), 201);

    // A run started for the incident is linked and on its timeline.
    let rb = opsdeck_e2e::flows::runbooks::create(
        &admin,
        "name: triage\ntitle: Triage\nsteps:\n  - name: look\n    kind: manual\n    instructions: Look around\n",
    )
    .await;
    let run: Value = ok_json(
        op.post(
            &format!("/api/v1/runbooks/{}/runs", rb.id),
            &json!({"params": {}, "reason": "triage", "incident": format!("#{}", i.id)}),
        )
        .await,
        "start run",
    )
    .await;
    let d = detail(&viewer, i.id).await;
    assert_eq!(d.runs.len(), 1, "{:#?}", d.runs);
    assert_eq!(Some(d.runs[0].id), run["id"].as_i64());
    assert!(d
        .timeline
        .iter()
        .any(|e| e.kind == "run" && e.message.contains("triage")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_count_mtta_mttr_and_breaches_and_export_csv() {
    let server = TestServer::start().await;
    let viewer = server.user(Role::Viewer).await;
    let admin = server.user(Role::Admin).await;
    let db = create_service(&admin, "postgres", "critical", &[]).await;
    let now = Utc::now();
    let t0 = now - ChronoDuration::days(3);
    // P1 acknowledged after 2 min, resolved after 60 min (in time);
    // P1 acknowledged after 10 min (ack breached), resolved after 3 h
    // (resolve breached); P3 still open, not acknowledged after 3 days
    // (ack 1 h breached, resolve 3 d just breached by the minute).
    // (title, severity, minutes after t0, ack after s, resolved after s)
    type Row<'a> = (&'a str, i16, i64, Option<i64>, Option<i64>);
    let rows: [Row; 3] = [
        ("=cmd|' /C calc'!A0", 1, 0, Some(120), Some(3600)),
        ("disk full, again", 1, 60, Some(600), Some(10_800)),
        ("slow search", 3, 120, None, None),
    ];
    for (title, sev, offset_min, ack, res) in rows {
        let trig = t0 + ChronoDuration::minutes(offset_min);
        let status = if res.is_some() {
            "resolved"
        } else {
            "triggered"
        };
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO incidents (title, severity, status, triggered_at, acknowledged_at,
                                    diagnosed_at, mitigated_at, resolved_at, created_by)
             VALUES ($1, $2, $3, $4, $5, $5, $6, $6, 'test') RETURNING id",
        )
        .bind(title)
        .bind(sev)
        .bind(status)
        .bind(trig)
        .bind(ack.map(|s| trig + ChronoDuration::seconds(s)))
        .bind(res.map(|s| trig + ChronoDuration::seconds(s)))
        .fetch_one(&server.pool)
        .await
        .unwrap();
        sqlx::query("INSERT INTO incident_services (incident_id, service_id) VALUES ($1, $2)")
            .bind(id)
            .bind(db.id)
            .execute(&server.pool)
            .await
            .unwrap();
    }
    let from = (now - ChronoDuration::days(7)).to_rfc3339();
    let to = now.to_rfc3339();
    let q = format!("from={}&to={}", urlencode(&from), urlencode(&to));
    let r: IncidentReport = viewer.json(&format!("/api/v1/reports/incidents?{q}")).await;
    assert_eq!(r.total, 3);
    assert_eq!(r.mtta_secs, Some(360.0), "mean of 120 s and 600 s");
    assert_eq!(r.mttr_secs, Some(7200.0), "mean of 1 h and 3 h");
    let p1 = r.by_severity.iter().find(|x| x.key == "P1").unwrap();
    assert_eq!(p1.incidents, 2);
    // First P1: mitigated with the resolution after 1 h (> 30 min) and no
    // post-mortem (24 h) → 2. Second: ack after 10 min (> 5), mitigated and
    // resolved after 3 h (> 30 min, > 2 h), no post-mortem → 4; diagnosis
    // at 10 min is in time.
    assert_eq!(p1.sla_breaches, 2 + 4);
    let p3 = r.by_severity.iter().find(|x| x.key == "P3").unwrap();
    assert_eq!(p3.incidents, 1);
    // Open for 2 d 22 h: ack (1 h), diagnose (4 h), mitigate (1 d) late;
    // resolve (3 d) not yet due.
    assert_eq!(p3.sla_breaches, 3, "{p3:?}");
    let svc = r.by_service.iter().find(|x| x.key == "postgres").unwrap();
    assert_eq!(svc.incidents, 3);
    assert_eq!(r.weeks.iter().map(|w| w.count).sum::<i64>(), 3);
    assert_eq!(r.breaches, p1.sla_breaches + p3.sla_breaches);

    let csv = viewer
        .get(&format!("/api/v1/reports/incidents/csv?{q}"))
        .await;
    assert_eq!(csv.status(), 200);
    let csv = csv.text().await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].starts_with("id,title,severity"));
    // A title starting with '=' is never a formula; commas are quoted.
    assert!(csv.contains("'=cmd|' /C calc'!A0"), "{csv}");
    assert!(csv.contains("\"disk full, again\""), "{csv}");
    expect_error(
        viewer
            .get(&format!(
                "/api/v1/reports/incidents?from={}&to={}",
                urlencode(&to),
                urlencode(&from)
            ))
            .await,
        400,
    )
    .await;
}

fn urlencode(s: &str) -> String {
    s.replace('+', "%2B").replace(':', "%3A")
}
